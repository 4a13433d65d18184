-- features.sql: SQLite 3.40 features the slt corpus lacks.  Each statement
-- is prepared and run by sqlite3 and parsed by Metronome in the same order
-- (tests/unit/test_sql_slt.c); every one must be accepted, with the same
-- read-only flag.
CREATE TABLE t1(a INTEGER PRIMARY KEY AUTOINCREMENT, b TEXT NOT NULL DEFAULT 'x' COLLATE NOCASE,
  c REAL CHECK (c >= 0) DEFAULT 0.5, d BLOB DEFAULT x'00ff', e INT UNIQUE ON CONFLICT REPLACE,
  f TEXT DEFAULT CURRENT_TIMESTAMP, g INT GENERATED ALWAYS AS (a * 2) VIRTUAL, h INT AS (a + 1) STORED);