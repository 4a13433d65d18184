/*
 * test_sql.c - the SQL front end: tokenizer (every quoting form, numbers,
 * blobs, comments, parameters), classification (kind, read-only, tables,
 * functions), error messages and positions, refusals, non-determinism,
 * parameter numbering checked against sqlite3 itself, statement grouping
 * and the JSON line of mtrparse.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "metronome.h"
#include "sql.h"
#include "parse.h"

/* ---- helpers ---- */

/* Parse text that must hold exactly one statement. */
static struct sql_result *parse1(const char *sql)
{
	struct sql_result *res = NULL;
	assert_int_equal(sql_parse(sql, strlen(sql), &res), 0);
	assert_non_null(res);
	if (res->n_stmts != 1)
		fail_msg("%s: %u statements", sql, res->n_stmts);
	return res;
}

/* The names of a string array joined with ',' (static buffer). */
static const char *join(const char **a, unsigned n)
{
	static char buf[4][512];
	static int k;
	char *b = buf[k++ & 3];
	b[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i)
			strcat(b, ",");
		strncat(b, a[i], 500 - strlen(b));
	}
	return b;
}

/* ---- sql_token ---- */

static void test_tokens(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int code;
		uint32_t len;
	} cases[] = {
		{ "'it''s' x", TK_STRING, 7 },
		{ "\"a\"\"b\" x", TK_ID, 6 },
		{ "`a``b` x", TK_ID, 6 },
		{ "[a b] x", TK_ID, 5 },
		{ "x'0aFF' y", TK_BLOB, 7 },
		{ "X'' y", TK_BLOB, 3 },
		{ "x'0' y", TK_ILLEGAL, 4 },
		{ "x'zz' y", TK_ILLEGAL, 5 },
		{ "'open", TK_ILLEGAL, 5 },
		{ "\"open", TK_ILLEGAL, 5 },
		{ "[open", TK_ILLEGAL, 5 },
		{ "123 x", TK_INTEGER, 3 },
		{ "0x1F x", TK_INTEGER, 4 },
		{ "0X1f x", TK_INTEGER, 4 },
		{ "1e5 x", TK_FLOAT, 3 },
		{ "1E-5 x", TK_FLOAT, 4 },
		{ "1.5e+3 x", TK_FLOAT, 6 },
		{ ".5 x", TK_FLOAT, 2 },
		{ "5. x", TK_FLOAT, 2 },
		{ "1_000", TK_ILLEGAL, 5 },
		{ "12abc", TK_ILLEGAL, 5 },
		{ "0x", TK_ILLEGAL, 2 },
		{ "-- c\nx", TK_COMMENT, 4 },
		{ "/* c */x", TK_COMMENT, 7 },
		{ "/* open", TK_COMMENT, 7 },
		{ "?", TK_VARIABLE, 1 },
		{ "?12 x", TK_VARIABLE, 3 },
		{ ":a1 x", TK_VARIABLE, 3 },
		{ "@a x", TK_VARIABLE, 2 },
		{ "$a x", TK_VARIABLE, 2 },
		{ "$a::b(c) x", TK_VARIABLE, 8 },
		{ ": x", TK_ILLEGAL, 1 },
		{ "#1", TK_ILLEGAL, 1 },
		{ "->> x", TK_PTR, 3 },
		{ "-> x", TK_PTR, 2 },
		{ "|| x", TK_CONCAT, 2 },
		{ "<> x", TK_NE, 2 },
		{ "!= x", TK_NE, 2 },
		{ "== x", TK_EQ, 2 },
		{ "<< x", TK_LSHIFT, 2 },
		{ ">= x", TK_GE, 2 },
		{ "! x", TK_ILLEGAL, 1 },
		{ "SeLeCt x", TK_SELECT, 6 },
		{ "current_timestamp x", TK_CTIME_KW, 17 },
		{ "left x", TK_JOIN_KW, 4 },
		{ "temporary x", TK_TEMP, 9 },
		{ "selectx x", TK_ID, 7 },
		{ "sel x", TK_ID, 3 },
		{ "\xc3\xa9t\xc3\xa9 x", TK_ID, 5 },
		{ " \t\r\n x", TK_SPACE, 5 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint32_t len = 0;
		int code = sql_token(cases[i].text, strlen(cases[i].text), &len);
		if (code != cases[i].code || len != cases[i].len)
			fail_msg("'%s': code %d len %u, want %d len %u", cases[i].text, code, len,
				 cases[i].code, cases[i].len);
	}
}

/* ---- classification ---- */

static void test_classify(void **state)
{
	(void)state;
	static const struct {
		const char *sql;
		enum sql_kind kind;
		bool readonly;
		const char *rd, *wr;
	} cases[] = {
		{ "SELECT a FROM t1, main.t2 JOIN t3 ON x WHERE y IN (SELECT z FROM t4)", SQL_READ, true, "t1,main.t2,t3,t4", "" },
		{ "WITH c(x) AS (SELECT 1 FROM src) SELECT * FROM c JOIN real", SQL_READ, true, "src,real", "" },
		{ "INSERT INTO t(a) SELECT b FROM s", SQL_WRITE, false, "s", "t" },
		{ "REPLACE INTO t VALUES (1)", SQL_WRITE, false, "", "t" },
		{ "UPDATE t SET a = (SELECT max(b) FROM u) FROM v WHERE t.id = v.id", SQL_WRITE, false, "u,v", "t" },
		{ "DELETE FROM t WHERE a IN (SELECT a FROM u) RETURNING *", SQL_WRITE, false, "u", "t" },
		{ "CREATE TABLE t(a INT DEFAULT 1, b TEXT)", SQL_SCHEMA, false, "", "t" },
		{ "CREATE VIEW v AS SELECT * FROM t", SQL_SCHEMA, false, "t", "v" },
		{ "CREATE INDEX i ON t(a)", SQL_SCHEMA, false, "", "t" },
		{ "CREATE TRIGGER r AFTER INSERT ON t BEGIN INSERT INTO log SELECT * FROM u; END", SQL_SCHEMA, false, "u", "t,log" },
		{ "DROP TABLE IF EXISTS t", SQL_SCHEMA, false, "", "t" },
		{ "ALTER TABLE t ADD COLUMN c", SQL_SCHEMA, false, "", "t" },
		{ "BEGIN", SQL_TXN, true, "", "" },
		{ "BEGIN IMMEDIATE TRANSACTION", SQL_TXN, false, "", "" },
		{ "COMMIT", SQL_TXN, true, "", "" },
		{ "END TRANSACTION", SQL_TXN, true, "", "" },
		{ "SAVEPOINT a", SQL_TXN, true, "", "" },
		{ "ROLLBACK TO SAVEPOINT a", SQL_TXN, true, "", "" },
		{ "EXPLAIN QUERY PLAN SELECT * FROM t", SQL_READ, true, "t", "" },
		{ "EXPLAIN INSERT INTO t VALUES (1)", SQL_READ, false, "", "t" },
		{ "PRAGMA table_info(t)", SQL_READ, true, "", "" },
		{ "PRAGMA user_version = 3", SQL_WRITE, false, "", "" },
		{ "PRAGMA mtr_max_steps = 5000000", SQL_WRITE, false, "", "" },
		{ "PRAGMA main.mtr_max_steps(5000000)", SQL_WRITE, false, "", "" },
		{ "PRAGMA mtr_max_steps", SQL_READ, true, "", "" },
		{ "PRAGMA foreign_keys = ON", SQL_WRITE, false, "", "" },
		{ "PRAGMA foreign_keys(0)", SQL_WRITE, false, "", "" },
		{ "PRAGMA foreign_keys", SQL_READ, true, "", "" },
		{ "ANALYZE", SQL_SCHEMA, false, "", "" },
		{ "REINDEX t", SQL_SCHEMA, false, "", "" },
		{ "SELECT abort, action FROM replace AS \"left\"", SQL_READ, true, "replace", "" },
		{ "SELECT 1 FROM t window WHERE 1", SQL_READ, true, "t", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sql_result *res = parse1(cases[i].sql);
		const struct sql_stmt *st = &res->stmts[0];
		if (st->kind != cases[i].kind || st->readonly != cases[i].readonly)
			fail_msg("%s: kind %s readonly %d (%s)", cases[i].sql, sql_kind_name(st->kind),
				 st->readonly, st->error ? st->error : "");
		assert_string_equal(join(st->tables_read, st->n_tables_read), cases[i].rd);
		assert_string_equal(join(st->tables_written, st->n_tables_written), cases[i].wr);
		sql_result_free(res);
	}
}

static void test_functions(void **state)
{
	(void)state;
	struct sql_result *res = parse1("SELECT COUNT(*), Upper(b), upper(c), json_extract(d, '$') "
					"OVER (ORDER BY a) FROM t, json_each(t.j), pragma_table_info('t')");
	assert_string_equal(join(res->stmts[0].functions, res->stmts[0].n_functions),
			    "count,upper,json_extract,json_each,pragma_table_info");
	assert_true(res->ok);
	sql_result_free(res);
	assert_true(sql_function_known("ABS", 3));
	assert_true(sql_function_known("row_number", 10));
	assert_false(sql_function_known("nosuch", 6));
}

/* ---- errors ---- */

static void test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *sql;
		const char *msg; /* a substring of the message */
		unsigned line, col;
	} cases[] = {
		{ "SELECT *\nFROM t WHERE", "incomplete input", 2, 13 },
		{ "SELECT a,\n  b FROM FROM t", "near \"FROM\": syntax error at line 2, column 10", 2, 10 },
		{ "SELECT 1 +;", "expected an expression", 1, 11 },
		{ "CREATE TABLE (a)", "near \"(\"", 1, 14 },
		{ "SELECT 'open", "unrecognized token: \"'open\"", 1, 8 },
		{ "SELECT ?0", "variable number must be between ?1 and ?32766", 1, 8 },
		{ "INSERT INTO t VALUES (1) garbage", "near \"garbage\"", 1, 26 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sql_result *res = parse1(cases[i].sql);
		const struct sql_stmt *st = &res->stmts[0];
		if (st->kind != SQL_ERROR)
			fail_msg("%s: kind %s", cases[i].sql, sql_kind_name(st->kind));
		assert_false(res->ok);
		assert_non_null(st->error);
		if (!strstr(st->error, cases[i].msg) || st->error_pos.line != cases[i].line ||
		    st->error_pos.col != cases[i].col)
			fail_msg("%s: got '%s' at %u:%u", cases[i].sql, st->error,
				 st->error_pos.line, st->error_pos.col);
		sql_result_free(res);
	}
}

static void test_error_recovery(void **state)
{
	(void)state;
	const char *sql = "SELECT FROM;\nSELECT 1;\nCREATE TRIGGER r AFTER INSERT ON t BEGIN oops; "
			  "SELECT CASE WHEN 1 THEN 2 END; END;\nSELECT 2";
	struct sql_result *res;
	assert_int_equal(sql_parse(sql, strlen(sql), &res), 0);
	assert_int_equal(res->n_stmts, 4);
	assert_int_equal(res->stmts[0].kind, SQL_ERROR);
	assert_int_equal(res->stmts[1].kind, SQL_READ);
	assert_int_equal(res->stmts[1].pos.line, 2);
	assert_int_equal(res->stmts[2].kind, SQL_ERROR);
	assert_int_equal(res->stmts[3].kind, SQL_READ);
	assert_int_equal(res->stmts[3].pos.line, 4);
	assert_int_equal(res->stmts[3].pos.col, 1);
	assert_memory_equal(sql + res->stmts[3].start, "SELECT 2", 8);
	assert_int_equal(res->stmts[3].end, strlen(sql));
	sql_result_free(res);
}

/* ---- refusals ---- */

static void test_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *sql;
		const char *msg;
		unsigned col;
	} cases[] = {
		{ "ATTACH 'x.db' AS x", "ATTACH", 1 },
		{ "DETACH x", "DETACH", 1 },
		{ "SELECT load_extension('x')", "load_extension", 8 },
		{ "CREATE TEMP TABLE t(a)", "TEMP TABLE", 8 },
		{ "CREATE TEMPORARY TABLE t AS SELECT 1", "TEMP TABLE", 8 },
		{ "SELECT * FROM temp.t", "temp schema", 15 },
		{ "CREATE TABLE aux.t(a)", "schema \"aux\"", 14 },
		{ "PRAGMA journal_mode = WAL", "PRAGMA journal_mode", 8 },
		{ "PRAGMA synchronous", "PRAGMA synchronous", 8 },
		{ "PRAGMA cache_size=10", "PRAGMA cache_size", 8 },
		{ "PRAGMA database_list", "PRAGMA database_list", 8 },
		{ "PRAGMA schema_version = 5", "PRAGMA schema_version", 8 },
		{ "SELECT a, my_udf(a) FROM t", "unknown function my_udf()", 11 },
		{ "VACUUM INTO 'copy.db'", "VACUUM INTO", 8 },
		{ "VACUUM", "VACUUM is refused", 1 },
		{ "VACUUM main", "VACUUM is refused", 1 },
		{ "SELECT a FROM t WHERE a REGEXP 'x'", "REGEXP", 25 },
		{ "SELECT * FROM pragma_database_list", "pragma_database_list()", 15 },
		{ "SELECT * FROM pragma_mtr_max_steps", "pragma_mtr_max_steps()", 15 },
		{ "SELECT * FROM pragma_foreign_keys", "pragma_foreign_keys()", 15 },
		{ "PRAGMA defer_foreign_keys = 1", "PRAGMA defer_foreign_keys", 8 },
		{ "PRAGMA mtr_other = 1", "PRAGMA mtr_other with a value is refused", 8 },
		{ "SELECT * FROM generate_series(1, 5)", "unknown table-valued function generate_series()", 15 },
		/* a write never reads a cluster table (DESIGN.md invariant 6) */
		{ "INSERT INTO t SELECT applied FROM mtr_members", "mtr_members is a cluster table", 35 },
		{ "UPDATE t SET a = (SELECT max(watermark) FROM mtr_streams)", "mtr_streams is a cluster table", 46 },
		{ "DELETE FROM t WHERE a IN (SELECT apply_us FROM main.mtr_instances)", "mtr_instances is a cluster", 53 },
		{ "INSERT INTO t SELECT value FROM \"MTR_STATS\"", "mtr_stats is a cluster table", 33 },
		{ "CREATE TABLE d AS SELECT digest FROM mtr_digest", "mtr_digest is a cluster table", 38 },
		{ "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x, mtr_stats", "mtr_stats is a cluster", 53 },
		{ "CREATE TRIGGER g AFTER INSERT ON t BEGIN INSERT INTO u SELECT * FROM mtr_members; END",
		  "mtr_members is a cluster", 70 },
		/* the other replica-local sources (src/common/localsrc.h) */
		{ "INSERT INTO t SELECT pgsize FROM dbstat", "dbstat is replica-local", 34 },
		{ "INSERT INTO t SELECT data FROM main.sqlite_dbpage", "sqlite_dbpage is replica-local", 37 },
		{ "INSERT INTO t VALUES (sqlite_version())", "sqlite_version() is replica-local", 23 },
		{ "UPDATE t SET a = sqlite_source_id()", "sqlite_source_id() is replica", 18 },
		{ "INSERT INTO t SELECT total_changes()", "total_changes() is replica-local", 22 },
		{ "INSERT INTO t SELECT sqlite_compileoption_get(0)", "sqlite_compileoption_get()", 22 },
		{ "DELETE FROM t WHERE a = sqlite_compileoption_used('X')", "sqlite_compileoption_used()", 25 },
		{ "INSERT INTO t SELECT * FROM pragma_compile_options", "pragma_compile_options is replica", 29 },
		{ "INSERT INTO t SELECT name FROM pragma_function_list", "pragma_function_list is", 32 },
		{ "INSERT INTO t SELECT name FROM pragma_module_list", "pragma_module_list is", 32 },
		{ "INSERT INTO t SELECT name FROM pragma_collation_list", "pragma_collation_list is", 32 },
		{ "INSERT INTO t SELECT name FROM pragma_pragma_list", "pragma_pragma_list is", 32 },
		{ "INSERT INTO t SELECT * FROM pragma_integrity_check", "pragma_integrity_check is", 29 },
		{ "INSERT INTO t SELECT * FROM pragma_quick_check", "pragma_quick_check is", 29 },
		{ "CREATE TABLE d AS SELECT sqlite_version() AS v", "sqlite_version() is", 26 },
		{ "CREATE TRIGGER g AFTER INSERT ON t BEGIN UPDATE u SET c = total_changes(); END",
		  "total_changes() is", 59 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sql_result *res = parse1(cases[i].sql);
		const struct sql_stmt *st = &res->stmts[0];
		if (st->kind != SQL_REFUSED || !st->error || !strstr(st->error, cases[i].msg) ||
		    st->error_pos.col != cases[i].col)
			fail_msg("%s: kind %s '%s' col %u", cases[i].sql, sql_kind_name(st->kind),
				 st->error ? st->error : "", st->error_pos.col);
		assert_false(res->ok);
		sql_result_free(res);
	}
}

/* Reads may name the cluster tables; a CTE of the same name is no table. */
static void test_cluster_tables_in_reads(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"SELECT * FROM mtr_members",
		"SELECT name, value FROM mtr_stats WHERE value > 0",
		"SELECT * FROM main.mtr_digest",
		"WITH mtr_stats(v) AS (SELECT 1) INSERT INTO t SELECT v FROM mtr_stats",
		"CREATE VIEW v AS SELECT * FROM mtr_stats",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct sql_result *res = parse1(ok[i]);
		if (!res->ok)
			fail_msg("%s: refused: %s", ok[i], res->stmts[0].error ? res->stmts[0].error : "");
		sql_result_free(res);
	}
}

/* ---- TEMP definitions and the object of CREATE / DROP ---- */

static void test_temp_objects(void **state)
{
	(void)state;
	static const struct {
		const char *sql;
		bool temp;
		char type;
		const char *object, *written, *read;
	} cases[] = {
		{ "CREATE TEMP VIEW v2 AS SELECT x FROM t1 WHERE x>0", true, 'v', "v2", "v2", "t1" },
		{ "CREATE TEMPORARY VIEW \"V 3\" AS SELECT 1", true, 'v', "V 3", "V 3", "" },
		{ "CREATE TEMP TRIGGER tr AFTER INSERT ON t1 BEGIN INSERT INTO log VALUES(new.x); END", true,
		  'r', "tr", "t1,log", "" },
		{ "CREATE VIEW v AS SELECT * FROM t", false, 'v', "v", "v", "t" },
		{ "CREATE TABLE t(a)", false, 't', "t", "t", "" },
		{ "CREATE INDEX i ON t(a)", false, 'i', "i", "t", "" },
		{ "DROP VIEW IF EXISTS v2", false, 'v', "v2", "v2", "" },
		{ "DROP TRIGGER tr", false, 'r', "tr", "tr", "" },
		{ "SELECT 1", false, 0, NULL, "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sql_result *res = parse1(cases[i].sql);
		const struct sql_stmt *st = &res->stmts[0];
		if (!res->ok || st->temp != cases[i].temp || st->object_type != cases[i].type ||
		    (cases[i].object ? !st->object || strcmp(st->object, cases[i].object) != 0 : st->object != NULL))
			fail_msg("%s: ok %d temp %d type %c object %s", cases[i].sql, res->ok, st->temp,
				 st->object_type ? st->object_type : '0', st->object ? st->object : "(null)");
		assert_string_equal(join(st->tables_written, st->n_tables_written), cases[i].written);
		assert_string_equal(join(st->tables_read, st->n_tables_read), cases[i].read);
		if (cases[i].temp) {
			assert_int_equal(st->kind, SQL_SCHEMA);
			assert_false(st->readonly); /* as sqlite3_stmt_readonly says */
		}
		sql_result_free(res);
	}
}

/* ---- non-determinism ---- */

static void test_nondet(void **state)
{
	(void)state;
	static const struct {
		const char *sql;
		const char *what; /* joined with ',' */
	} cases[] = {
		{ "SELECT random(), randomblob(4)", "random(),randomblob()" },
		{ "SELECT date('now'), time('NOW', 'utc'), datetime(), julianday(x)", "date('now'),time('now'),datetime()" },
		{ "SELECT unixepoch(), strftime('%s'), strftime('%Y', 'now'), strftime('%Y', d)", "unixepoch(),strftime(format),strftime(format, 'now')" },
		{ "SELECT CURRENT_DATE, current_time, CURRENT_TIMESTAMP", "CURRENT_DATE,CURRENT_TIME,CURRENT_TIMESTAMP" },
		{ "SELECT a FROM t ORDER BY random()", "random()" },
		{ "CREATE TABLE t(a DEFAULT CURRENT_TIMESTAMP, b DEFAULT (random()))", "CURRENT_TIMESTAMP,random()" },
		{ "CREATE VIEW v AS SELECT date('now')", "date('now')" },
		{ "CREATE TRIGGER r AFTER INSERT ON t BEGIN UPDATE t SET x = datetime('now'); END", "datetime('now')" },
		{ "SELECT date('2020-01-01'), abs(1)", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sql_result *res = parse1(cases[i].sql);
		const struct sql_stmt *st = &res->stmts[0];
		const char *w[16];
		unsigned n = st->n_nondet < 16 ? st->n_nondet : 16;
		for (unsigned j = 0; j < n; j++)
			w[j] = st->nondet[j].what;
		if (strcmp(join(w, n), cases[i].what) != 0)
			fail_msg("%s: got %s", cases[i].sql, join(w, n));
		assert_true(res->ok); /* non-determinism is reported, not refused */
		sql_result_free(res);
	}
	struct sql_result *res = parse1("SELECT 1,\n  random()");
	assert_int_equal(res->stmts[0].nondet[0].pos.line, 2);
	assert_int_equal(res->stmts[0].nondet[0].pos.col, 3);
	sql_result_free(res);
}

/* ---- parameters, against sqlite3 itself ---- */

static void test_params(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"SELECT ?, ?, ?",
		"SELECT ?5, ?, :a, :a, ?",
		"SELECT :a, @b, $c, :a, ?2, ?",
		"SELECT ?3, ?1, ?, ?3",
		"SELECT $a::b(c), $a::b(c), ?",
		"SELECT ?, :x, ?2, :x, @y",
	};
	sqlite3 *db;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(db, cases[i], -1, &st, NULL), SQLITE_OK);
		struct sql_result *res = parse1(cases[i]);
		const struct sql_stmt *s = &res->stmts[0];
		assert_int_equal(s->max_param, sqlite3_bind_parameter_count(st));
		for (unsigned j = 0; j < s->n_params; j++) {
			const struct sql_param *p = &s->params[j];
			if (p->name && p->name[0] == '?') {
				/* ?NNN is slot NNN; sqlite names the slot "?NNN"
				 * only when no name had it before */
				assert_int_equal(p->number, atoi(p->name + 1));
			} else if (p->name) {
				if (p->number != sqlite3_bind_parameter_index(st, p->name))
					fail_msg("%s: %s is %d, sqlite says %d", cases[i], p->name,
						 p->number, sqlite3_bind_parameter_index(st, p->name));
			} else {
				assert_null(sqlite3_bind_parameter_name(st, p->number));
			}
		}
		sqlite3_finalize(st);
		sql_result_free(res);
	}
	sqlite3_close(db);
}

/* ---- grouping and JSON ---- */

static void test_grouping(void **state)
{
	(void)state;
	struct sql_result *res;
	const char *one = "  INSERT INTO t VALUES (1) ; ; -- done\n";
	assert_int_equal(sql_parse(one, strlen(one), &res), 0);
	assert_int_equal(res->n_stmts, 1);
	assert_false(res->one_item);
	assert_int_equal(res->stmts[0].start, 2);
	assert_int_equal(res->stmts[0].end, 26);
	sql_result_free(res);

	const char *txn = "BEGIN; INSERT INTO t VALUES (1); UPDATE t SET a = 2; COMMIT;";
	assert_int_equal(sql_parse(txn, strlen(txn), &res), 0);
	assert_int_equal(res->n_stmts, 4);
	assert_true(res->one_item);
	assert_true(res->ok);
	assert_int_equal(res->stmts[0].txn, SQL_TXN_BEGIN);
	assert_int_equal(res->stmts[3].txn, SQL_TXN_COMMIT);
	sql_result_free(res);

	assert_int_equal(sql_parse("", 0, &res), 0);
	assert_int_equal(res->n_stmts, 0);
	assert_true(res->ok);
	sql_result_free(res);
	assert_int_equal(sql_parse(NULL, 1, &res), MTR_EINVAL);
}

static void test_json(void **state)
{
	(void)state;
	struct sql_result *res = parse1("SELECT random() FROM \"we\"\"ird\\\x01\"");
	char buf[1024];
	size_t n = sql_stmt_json(&res->stmts[0], buf, sizeof buf);
	assert_true(n < sizeof buf);
	assert_string_equal(buf, "{\"line\":1,\"col\":1,\"kind\":\"read\",\"tables_read\":[\"we\\\"ird\\\\\\u0001\"],"
				 "\"tables_written\":[],\"functions\":[\"random\"],"
				 "\"nondeterministic\":[{\"what\":\"random()\",\"line\":1,\"col\":8}],\"error\":null}");
	char small[16];
	assert_int_equal(sql_stmt_json(&res->stmts[0], small, sizeof small), n);
	assert_int_equal(strlen(small), sizeof small - 1);
	sql_result_free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_functions),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_recovery),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_cluster_tables_in_reads),
		cmocka_unit_test(test_temp_objects),
		cmocka_unit_test(test_nondet),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_grouping),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests_name("sql", tests, NULL, NULL);
}
