-- tricky.sql: corner cases of the SQLite 3.40 grammar and tokenizer, checked
-- against sqlite3 by tests/unit/test_sql_slt.c like features.sql.
CREATE TABLE "select"("from" INT, [where] TEXT, `group` REAL, key, action, plan, query, row, rows, do, nulls, first, last, generated, always, current, range);
INSERT INTO "select" VALUES (1, 'a', 1.0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
SELECT "from", [where], `group`, key, action, plan, query, row, rows, do, nulls, first, last, generated, always, current, range FROM "select";
SELECT key AS abort, action fail, plan AS ignore FROM "select" AS replace WHERE replace.key = 1;
CREATE TABLE kv(key TEXT PRIMARY KEY, val, cnt INT DEFAULT 0, ts DEFAULT (datetime('now')), r DEFAULT (random())) WITHOUT ROWID;
INSERT INTO kv(key, val) VALUES ('a', 1)
  ON CONFLICT (key) WHERE key > '' DO UPDATE SET cnt = cnt + 1
  ON CONFLICT DO NOTHING;
INSERT INTO kv(key, val) SELECT 'b', 2 WHERE 1 ON CONFLICT(key) DO UPDATE SET val = excluded.val RETURNING key, val;
WITH a AS (SELECT 1 AS x), b AS MATERIALIZED (SELECT x + 1 AS y FROM a), c(z) AS NOT MATERIALIZED (SELECT y FROM b)
  SELECT * FROM a, b, c;
WITH RECURSIVE t(n) AS (VALUES(1) UNION ALL SELECT n + 1 FROM t LIMIT 5) SELECT group_concat(n, ',') FROM t;
WITH x AS (SELECT 1) UPDATE kv SET val = (SELECT * FROM x);
WITH x AS (SELECT 'a') DELETE FROM kv WHERE key IN x;
SELECT * FROM (VALUES (1, 2), (3, 4)) AS v;
SELECT 1 UNION ALL VALUES (2) UNION SELECT 3 ORDER BY 1;
SELECT CASE 1 WHEN 1 THEN 'one' WHEN 2 THEN 'two' END, CASE WHEN 0 THEN 1 END;
SELECT - - 1, + + 1, ~ ~ 1, NOT NOT 1, 1 - -1, 1--comment
  ;
SELECT 1 IS NOT NULL, NULL IS NULL, 1 IS 1, 1 IS NOT 2, 'a' COLLATE NOCASE = 'A' COLLATE BINARY;
SELECT 1 BETWEEN 0 AND 2 AND 3 NOT BETWEEN 4 AND 5 OR 0;
SELECT 'abc' LIKE 'a%' ESCAPE '!' , 'abc' NOT GLOB 'x*', 'x' NOT LIKE 'y' ESCAPE 'z';
SELECT (1, 2) < (1, 3), (SELECT 1, 2) = (1, 2), (1, 2) IN (VALUES (1, 2));
SELECT x'AbCd' || x'', 0x7fffffffffffffff, 9223372036854775808, 1e308, 1.e1, 00012, 0.0e0;
SELECT json('{"a":1}') -> 'a', '[1,2]' ->> 1, json_array_length('[1]'), json_type('1'), json_valid('x'), json_quote(1), json_patch('{}','{}'), json_remove('[1]','$[0]'), json_insert('{}','$.a',1), json_replace('{}','$.a',1), json_set('{}','$.a',1), json_array(1), json_group_object('k', 1);
SELECT count(DISTINCT x), max(x) FILTER (WHERE x > 0), min(x) OVER (), sum(x) FILTER (WHERE 1) OVER (ORDER BY x) FROM (SELECT 1 AS x);
SELECT first_value(x) OVER w1, last_value(x) OVER (w1 ROWS UNBOUNDED PRECEDING), nth_value(x, 1) OVER (w1 RANGE BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), percent_rank() OVER w1, cume_dist() OVER w1, dense_rank() OVER w1, lead(x) OVER w1
  FROM (SELECT 1 AS x) WINDOW w1 AS (PARTITION BY x ORDER BY x), w2 AS (w1);
CREATE TABLE g(a INT, b INT GENERATED ALWAYS AS (a + 1), c AS (b * 2) STORED, d TEXT CHECK (length(d) < 5) COLLATE RTRIM, UNIQUE (a, b) ON CONFLICT IGNORE, CHECK (a > 0));
CREATE TABLE s(a INTEGER PRIMARY KEY ASC ON CONFLICT FAIL, b TEXT NOT NULL ON CONFLICT ABORT, c BLOB, d ANY) STRICT, WITHOUT ROWID;
CREATE TABLE typed(a UNSIGNED BIG INT, b VARYING CHARACTER(255), c DOUBLE PRECISION, d DECIMAL(10, 5), e NATIVE CHARACTER(70), f INT(+5), g FLOAT(-1));
CREATE INDEX gi ON g(a + b, c COLLATE NOCASE DESC) WHERE a IS NOT NULL AND b > 0;
CREATE VIEW gv AS SELECT a, b FROM g WHERE a IN (SELECT a FROM s) ORDER BY 1 LIMIT 10;
CREATE TRIGGER gt BEFORE DELETE ON g FOR EACH ROW WHEN old.a > 0 BEGIN
  INSERT OR REPLACE INTO s(a, b) VALUES (old.a, 'x') ON CONFLICT DO NOTHING;
  UPDATE OR IGNORE s SET b = (SELECT CASE WHEN 1 THEN 'y' END) WHERE a = old.a;
  DELETE FROM kv WHERE key NOT IN (SELECT key FROM kv WHERE cnt > 0);
  SELECT RAISE(FAIL, 'nope') WHERE old.a < 0;
END;
CREATE TRIGGER gvt INSTEAD OF UPDATE OF a ON gv BEGIN UPDATE g SET a = new.a WHERE a = old.a; END;
CREATE VIRTUAL TABLE ft USING fts5(title, body, tokenize = 'porter ascii');
INSERT INTO ft(title, body) VALUES ('hello', 'world');
SELECT title FROM ft WHERE ft MATCH 'hello' ORDER BY rank;
SELECT * FROM g NOT INDEXED JOIN s ON g.a = s.a LEFT JOIN kv ON 1 WHERE g.a IS NOT DISTINCT FROM s.a;
SELECT * FROM g, s AS ss CROSS JOIN (SELECT 1) NATURAL LEFT OUTER JOIN kv;
SELECT typeof(?), typeof(:a), typeof(@b), typeof($c), typeof(?7), typeof(:a);
PRAGMA table_xinfo = g;
PRAGMA index_xinfo('gi');
PRAGMA quick_check(10);
PRAGMA main.user_version = -3;
PRAGMA application_id;
SAVEPOINT "outer";
RELEASE "outer";
BEGIN;
ROLLBACK TRANSACTION;
ALTER TABLE g ADD e TEXT NOT NULL DEFAULT 'x' CHECK (e <> '');
ALTER TABLE "g" RENAME COLUMN "e" TO "f";
REINDEX NOCASE;
ANALYZE main;
DROP TRIGGER IF EXISTS gt;
DROP TABLE main.typed;
