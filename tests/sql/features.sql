-- features.sql: SQLite 3.40 features the slt corpus lacks.  Each statement
-- is prepared and run by sqlite3 and parsed by Metronome in the same order
-- (tests/unit/test_sql_slt.c); every one must be accepted, with the same
-- read-only flag.
CREATE TABLE t1(a INTEGER PRIMARY KEY AUTOINCREMENT, b TEXT NOT NULL DEFAULT 'x' COLLATE NOCASE,
  c REAL CHECK (c >= 0) DEFAULT 0.5, d BLOB DEFAULT x'00ff', e INT UNIQUE ON CONFLICT REPLACE,
  f TEXT DEFAULT CURRENT_TIMESTAMP, g INT GENERATED ALWAYS AS (a * 2) VIRTUAL, h INT AS (a + 1) STORED);
CREATE TABLE t2(x INT, y TEXT, z ANY, PRIMARY KEY(x, y)) WITHOUT ROWID, STRICT;
CREATE TABLE IF NOT EXISTS "quoted ""name"""([col one] INT, `col two` TEXT, "col three" VARCHAR(10, 2));
CREATE TABLE t3(p INT REFERENCES t1(a) ON DELETE CASCADE ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED,
  q INT, CONSTRAINT fk FOREIGN KEY (q) REFERENCES t1(a) MATCH SIMPLE, CONSTRAINT pk PRIMARY KEY (p DESC));
CREATE TABLE t4 AS SELECT a, b FROM t1 WHERE 0;
CREATE TABLE t5(key, value, rowid_alias INTEGER PRIMARY KEY DESC);
CREATE INDEX t1b ON t1(b COLLATE BINARY DESC, lower(b)) WHERE c > 0;
CREATE UNIQUE INDEX IF NOT EXISTS t2xy ON t2(x, y);
CREATE VIEW v1(m, n) AS SELECT a, b FROM t1 UNION ALL SELECT x, y FROM t2;
CREATE VIEW IF NOT EXISTS v2 AS WITH w AS (SELECT a FROM t1) SELECT * FROM w;
CREATE TRIGGER tr1 AFTER INSERT ON t1 FOR EACH ROW WHEN new.a > 0 BEGIN
  INSERT INTO t4(a, b) VALUES (new.a, CASE WHEN new.b IS NULL THEN 'n' ELSE new.b END);
  UPDATE t5 SET value = datetime('now') WHERE key = new.a;
  DELETE FROM t2 WHERE x = new.a;
  SELECT RAISE(IGNORE) WHERE new.a < 0;
END;
CREATE TRIGGER IF NOT EXISTS tr2 BEFORE UPDATE OF b, c ON t1 BEGIN SELECT RAISE(ABORT, 'no'); END;
CREATE TRIGGER IF NOT EXISTS tr2 BEFORE UPDATE OF b, c ON t1 BEGIN SELECT RAISE(ABORT, 'no'); END;
CREATE TRIGGER tr3 INSTEAD OF DELETE ON v1 BEGIN DELETE FROM t1 WHERE a = old.m; END;
INSERT INTO t1(b, c, e) VALUES ('one', 1.5, 1), ('two', 2e3, 2), ('three', .25, 3);
INSERT OR IGNORE INTO t1(b) VALUES ('x');
REPLACE INTO t2 VALUES (1, 'a', 0x1F), (2, 'b', -1);
INSERT INTO t2 VALUES (1, 'a', 5) ON CONFLICT (x, y) DO UPDATE SET z = excluded.z WHERE z < 10;
INSERT INTO t2 VALUES (1, 'a', 5) ON CONFLICT DO NOTHING;
INSERT INTO t2(x, y, z) SELECT a, b, c FROM t1 WHERE true ON CONFLICT(x, y) DO NOTHING RETURNING x, y AS yy, *;
INSERT INTO t5 DEFAULT VALUES;
INSERT INTO t5(key, value) VALUES (?, :v), (?5, @w), ($x, $y::z(1)) RETURNING rowid_alias;
WITH RECURSIVE cnt(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM cnt WHERE i < 10)
  INSERT INTO t5(key) SELECT i FROM cnt;
UPDATE OR ROLLBACK t1 SET b = upper(b), (c, e) = (SELECT 1, 99) WHERE a IN (1, 2, 3);
UPDATE t1 SET c = t2.z FROM t2 WHERE t2.x = t1.a;
UPDATE t5 SET value = random() WHERE key IS NOT NULL RETURNING key;
DELETE FROM t5 WHERE key IS DISTINCT FROM 3 AND value IS NOT DISTINCT FROM NULL;
CREATE INDEX t5k ON t5(key);
DELETE FROM t5 INDEXED BY t5k WHERE key = 1000;
DELETE FROM t4 NOT INDEXED WHERE a NOT BETWEEN 1 AND 2 RETURNING *;
SELECT a, sum(c) OVER (PARTITION BY b ORDER BY a ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS s,
  row_number() OVER w, rank() OVER (w), count(*) FILTER (WHERE c > 1) OVER ()
  FROM t1 WINDOW w AS (ORDER BY a DESC NULLS LAST);
SELECT lag(a, 1, 0) OVER (ORDER BY a RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE TIES),
  ntile(2) OVER (ORDER BY a GROUPS CURRENT ROW EXCLUDE NO OTHERS) FROM t1;
SELECT group_concat(DISTINCT b) FILTER (WHERE a > 0), total(c), avg(c) FROM t1 GROUP BY e HAVING count(*) > 0;
SELECT DISTINCT b FROM t1 NATURAL JOIN t4 LEFT OUTER JOIN t2 ON t2.x = t1.a CROSS JOIN t5
  INNER JOIN t3 ON t3.p = t1.a ORDER BY 1 COLLATE NOCASE ASC LIMIT 10 OFFSET 2;
SELECT * FROM t1 RIGHT JOIN t2 ON 1 FULL OUTER JOIN t4 ON 1;
SELECT a FROM t1 UNION SELECT x FROM t2 EXCEPT SELECT 5 INTERSECT SELECT a FROM t4 ORDER BY 1 LIMIT 3, 4;
VALUES (1, 'a'), (2, 'b');
CREATE TABLE t6(k);
SELECT 1 WHERE 1 IN t6 OR 2 NOT IN main.t6;
SELECT CAST(a AS TEXT), CAST('1.5' AS REAL), b LIKE 'o%' ESCAPE '\', b GLOB 'o*', b NOT LIKE 'x',
  (a, b) = (1, 'one'), (a, b) IN (SELECT x, y FROM t2), a IN (1, 2), a NOT IN (), EXISTS (SELECT 1), NOT a ISNULL,
  a NOTNULL, a NOT NULL, ~a, -a, +a, a << 2 >> 1 & 3 | 4, a % 2, 'a' || 'b', a == 1, a <> 2, a != 3
  FROM t1;
SELECT '{"a":[1,2]}' -> '$.a', '{"a":[1,2]}' ->> '$.a[0]', json_extract('{"x":1}', '$.x'),
  json_group_array(a), json_object('k', b) FROM t1;
SELECT * FROM json_each('[1,2,3]') AS j WHERE j.value > 1;
SELECT * FROM pragma_table_info('t1');
SELECT abs(-1), coalesce(NULL, 2), ifnull(NULL, 3), iif(1, 'y', 'n'), instr('abc', 'b'), hex(x'0a'),
  length('abc'), lower('A'), ltrim(' a'), max(1, 2), min(1, 2), nullif(1, 1), printf('%d', 5),
  format('%s', 'x'), quote('a'), replace('aa', 'a', 'b'), round(1.55, 1), rtrim('a '), sign(-2),
  substr('abc', 2), substring('abc', 1, 1), trim(' a '), typeof(1), unicode('A'), upper('a'),
  zeroblob(2), char(65), likely(1), unlikely(0), likelihood(1, 0.5), sqlite_version();
SELECT sqrt(4), pow(2, 3), power(2, 2), ln(1), log(100), log10(10), log2(8), exp(0), pi(), ceil(1.2),
  floor(1.8), trunc(1.5), mod(7, 3), degrees(pi()), radians(180), sin(0), cos(0), tan(0), atan2(1, 1);
SELECT date('now'), time('now', 'localtime'), datetime(), julianday('NOW'), unixepoch(), strftime('%s'),
  strftime('%Y', 'now'), date('2020-01-01', '+1 day'), CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP,
  random(), randomblob(4);
SELECT a FROM t1 ORDER BY random();
SELECT 1 /* a comment */ -- another
  + 2;
SELECT x'', 1e5, 1E-5, .5, 5., 0xFF, 0Xab, 'it''s', "t1"."a" FROM t1;
SELECT key, value FROM t5 WHERE key MATCH 'x' AND 0;
SELECT * FROM (SELECT a FROM t1) AS sub, (t2 JOIN t4);
SELECT count(*) FROM t1 AS replace, t2 AS "left";
SELECT abort, action, "after" FROM (SELECT 1 AS abort, 2 AS action, 3 AS after);
SELECT * FROM t1 WHERE a = ?1 AND b = :name AND c = :name AND d = ?;
BEGIN DEFERRED TRANSACTION;
SAVEPOINT sp1;
INSERT INTO t4 VALUES (1, 'x');
RELEASE SAVEPOINT sp1;
SAVEPOINT sp2;
ROLLBACK TO sp2;
COMMIT TRANSACTION;
BEGIN IMMEDIATE;
ROLLBACK;
BEGIN EXCLUSIVE;
END;
EXPLAIN SELECT * FROM t1;
EXPLAIN QUERY PLAN SELECT * FROM t1 WHERE a = 1;
EXPLAIN INSERT INTO t4 VALUES (1, 2);
EXPLAIN BEGIN;
EXPLAIN BEGIN IMMEDIATE;
EXPLAIN QUERY PLAN SAVEPOINT x;
EXPLAIN PRAGMA user_version = 1;
EXPLAIN PRAGMA table_info(t1);
EXPLAIN CREATE TABLE tx(a);
SELECT count(*) OVER win, over, filter FROM (SELECT 1 AS over, 2 AS filter) WINDOW win AS ();
SELECT window.a FROM t1 AS window WHERE window.a > 0;
ALTER TABLE t4 RENAME TO t4b;
ALTER TABLE t4b ADD COLUMN extra TEXT DEFAULT 'e';
ALTER TABLE t4b RENAME COLUMN extra TO extra2;
ALTER TABLE t4b RENAME extra2 TO extra3;
ALTER TABLE t4b DROP COLUMN extra3;
ANALYZE;
ANALYZE t1;
REINDEX;
REINDEX t1b;
PRAGMA user_version;
PRAGMA user_version = 7;
PRAGMA main.table_info(t1);
PRAGMA index_list('t1');
PRAGMA integrity_check;
PRAGMA foreign_key_list(t3);
DROP TRIGGER IF EXISTS tr3;
DROP TRIGGER IF EXISTS tr3;
DROP VIEW IF EXISTS v2;
DROP INDEX IF EXISTS t1b;
DROP TABLE IF EXISTS t4b;
DROP TABLE IF EXISTS nosuch;
