/*
 * test_apply.c - the apply module: exactly-once, per-item savepoints,
 * transaction items, parameters, results, statement cache, digest,
 * apply_wait, snapshot/restore, WAL bound, replica-local errors, the write
 * budget (VM steps, PRAGMA mtr_max_steps, stop).
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "apply.h"
#include "result.h"
#include "metronome.h"
#include "util.h"
#include "wire.h"
#include "../testutil.h"
#include "../testutil_fs.h"

/* ---- Fixture ---- */

struct fx {
	char dir[64];
	char dir2[64];
	struct apply *a;
};

static void rm_dir(const char *dir)
{
	assert_int_equal(testutil_rmtree(dir), 0);
}

static struct apply *open_dir(const char *dir, unsigned wal_pages)
{
	struct apply_config cfg = {.dir = dir, .durability = APPLY_SYNC_NORMAL, .wal_pages = wal_pages};
	struct apply *a = NULL;
	assert_int_equal(apply_open(&cfg, &a), 0);
	return a;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/mtr-apply-XXXXXX");
	strcpy(f->dir2, "/tmp/mtr-apply2-XXXXXX");
	if (mkdtemp(f->dir) == NULL || mkdtemp(f->dir2) == NULL)
		return -1;
	f->a = open_dir(f->dir, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	apply_close(f->a);
	rm_dir(f->dir);
	rm_dir(f->dir2);
	free(f);
	return 0;
}

/* ---- Helpers ---- */

/* Results captured by the callback (copies). */
struct cap {
	size_t n;
	struct {
		bool raw; /* a resend answered with the kept result */
		int code;
		uint32_t failed, nstmt;
		char msg[256];
		int64_t changes, rowid;
		uint32_t nrows, ncols;
		uint8_t rows[512];
		size_t rows_len;
	} r[8];
};

static void on_result(void *arg, size_t index, const struct wire_item *it, const struct apply_result *res)
{
	(void)it;
	struct cap *c = arg;
	assert_int_equal(index, c->n);
	assert_true(c->n < 8);
	c->r[c->n].code = res->code;
	c->r[c->n].failed = res->failed;
	c->r[c->n].nstmt = res->nstmt;
	c->r[c->n].raw = res->raw != NULL;
	struct apply_stmt_result kept;
	if (res->raw) {
		/* the kept bytes: the same figures, decoded */
		struct result_view v;
		struct result_stmt rs;
		assert_int_equal(result_decode(res->raw, res->raw_len, &v), 0);
		c->r[c->n].code = v.code;
		c->r[c->n].failed = v.failed;
		c->r[c->n].nstmt = v.nstmt;
		for (uint32_t k = 0; result_next(&v, &rs) && k <= (v.code ? v.failed : v.nstmt - 1); k++)
			kept = (struct apply_stmt_result){.code = rs.code, .changes = rs.changes,
							  .last_rowid = rs.last_rowid, .ncols = rs.ncols,
							  .nrows = rs.nrows, .rows = rs.rows, .rows_len = rs.rows_len};
		static char msg[256];
		snprintf(msg, sizeof msg, "%.*s", (int)rs.errmsg_len, rs.errmsg ? rs.errmsg : "");
		kept.errmsg = msg;
	}
	/* the last statement's figures (or the failing one's) */
	const struct apply_stmt_result *s = res->raw ? &kept : &res->stmts[res->code ? res->failed : res->nstmt - 1];
	snprintf(c->r[c->n].msg, sizeof c->r[c->n].msg, "%s", s->errmsg ? s->errmsg : "");
	c->r[c->n].changes = s->changes;
	c->r[c->n].rowid = s->last_rowid;
	c->r[c->n].nrows = s->nrows;
	c->r[c->n].ncols = s->ncols;
	c->r[c->n].rows_len = MIN(s->rows_len, sizeof c->r[c->n].rows);
	if (s->rows_len)
		memcpy(c->r[c->n].rows, s->rows, c->r[c->n].rows_len);
	c->n++;
}

static struct wire_stmt stmt(const char *sql)
{
	struct wire_stmt s = {.sql = sql, .sql_len = (uint32_t)strlen(sql)};
	return s;
}

/* Apply one instance of items given as one SQL text each. */
static int apply_sqls(struct apply *a, uint64_t inst, struct cap *c, int n, const char **sqls)
{
	struct wire_stmt st[8];
	struct wire_item it[8];
	memset(it, 0, sizeof it);
	for (int i = 0; i < n; i++) {
		st[i] = stmt(sqls[i]);
		it[i].stream = 1;
		it[i].seq = inst * 10 + (uint64_t)i;
		it[i].timestamp_us = 1700000000000000 + (int64_t)inst;
		it[i].seed = inst;
		it[i].nstmt = 1;
		it[i].stmts = &st[i];
	}
	if (c)
		memset(c, 0, sizeof *c);
	return apply_instance(a, inst, it, (size_t)n, c ? on_result : NULL, c);
}

static int apply_sql(struct apply *a, uint64_t inst, const char *sql)
{
	return apply_sqls(a, inst, NULL, 1, &sql);
}

static int64_t query_int(struct apply *a, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(apply_open_reader(a, &db), 0);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* ---- exactly once ---- */

static void test_exactly_once(void **state)
{
	struct fx *f = *state;
	assert_int_equal(apply_applied(f->a), 0);
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	assert_int_equal(apply_sql(f->a, 2, "INSERT INTO t(v) VALUES('a')"), 0);
	assert_int_equal(apply_sql(f->a, 2, "INSERT INTO t(v) VALUES('a')"), MTR_EDUPLICATE);
	assert_int_equal(apply_sql(f->a, 1, "INSERT INTO t(v) VALUES('a')"), MTR_EDUPLICATE);
	assert_int_equal(apply_sql(f->a, 4, "INSERT INTO t(v) VALUES('a')"), MTR_EINVAL);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 1);
	apply_close(f->a);
	f->a = open_dir(f->dir, 0);
	assert_int_equal(apply_applied(f->a), 2);
	assert_int_equal(apply_sql(f->a, 2, "INSERT INTO t(v) VALUES('a')"), MTR_EDUPLICATE);
	assert_int_equal(apply_sql(f->a, 3, "INSERT INTO t(v) VALUES('b')"), 0);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 2);
	assert_int_equal(query_int(f->a, "SELECT value FROM mtr_meta WHERE key='applied'"), 3);
}

/* Membership: a configuration recorded with its instance (mtr_conf), in
 * the instance's transaction, kept across a reopen, protected from items. */
static int conf_cb(void *arg, uint64_t inst, const uint8_t *conf, size_t len)
{
	int *n = arg;
	assert_int_equal(inst, 2);
	assert_int_equal(len, 3);
	assert_memory_equal(conf, "abc", 3);
	(*n)++;
	return 0;
}

static void test_conf_recorded(void **state)
{
	struct fx *f = *state;
	assert_int_equal(apply_set_conf(f->a, 2, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	int n = 0;
	assert_int_equal(apply_confs(f->a, conf_cb, &n), 0);
	assert_int_equal(n, 0); /* not instance 1's */
	assert_int_equal(apply_sql(f->a, 2, "INSERT INTO t(v) VALUES('a')"), 0);
	assert_int_equal(apply_confs(f->a, conf_cb, &n), 0);
	assert_int_equal(n, 1);
	apply_close(f->a);
	f->a = open_dir(f->dir, 0);
	n = 0;
	assert_int_equal(apply_confs(f->a, conf_cb, &n), 0);
	assert_int_equal(n, 1);
	struct cap c;
	const char *q[] = {"DELETE FROM mtr_conf"};
	assert_int_equal(apply_sqls(f->a, 3, &c, 1, q), 0);
	assert_int_equal(c.r[0].code, SQLITE_AUTH);
	assert_int_equal(apply_set_conf(f->a, 4, NULL, 0), MTR_EINVAL);
}

/* An item cannot touch mtr_meta (the instance record). */
static void test_meta_protected(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const char *q[] = {"UPDATE mtr_meta SET value = 99 WHERE key = 'applied'"};
	assert_int_equal(apply_sqls(f->a, 1, &c, 1, q), 0);
	assert_int_equal(c.r[0].code, SQLITE_AUTH);
	assert_non_null(strstr(c.r[0].msg, "mtr_meta"));
	assert_int_equal(apply_applied(f->a), 1);
}

/* ---- item isolation ---- */

static void test_failing_item_alone(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)"), 0);
	const char *q[] = {"INSERT INTO t VALUES(1, 'one')", "INSERT INTO t VALUES(1, 'dup')",
			   "INSERT INTO t VALUES(3, 'three')"};
	assert_int_equal(apply_sqls(f->a, 2, &c, 3, q), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[1].code, SQLITE_CONSTRAINT_PRIMARYKEY);
	assert_non_null(strstr(c.r[1].msg, "UNIQUE constraint failed"));
	assert_int_equal(c.r[2].code, SQLITE_OK);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 2);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t WHERE v = 'dup'"), 0);
	assert_int_equal(query_int(f->a, "SELECT sum(id) FROM t"), 4);
}

static void test_txn_all_or_nothing(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)"), 0);
	struct wire_stmt ok[2] = {stmt("INSERT INTO t VALUES(1, 'a')"), stmt("INSERT INTO t VALUES(2, 'b')")};
	struct wire_stmt bad[2] = {stmt("INSERT INTO t VALUES(3, 'c')"), stmt("INSERT INTO t VALUES(4, NULL)")};
	struct wire_item it[2] = {
		{.stream = 1, .seq = 1, .flags = WIRE_ITEM_TXN, .nstmt = 2, .stmts = ok},
		{.stream = 1, .seq = 2, .flags = WIRE_ITEM_TXN, .nstmt = 2, .stmts = bad},
	};
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_instance(f->a, 2, it, 2, on_result, &c), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[0].nstmt, 2);
	assert_int_equal(c.r[1].code, SQLITE_CONSTRAINT_NOTNULL);
	assert_int_equal(c.r[1].failed, 1);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 2);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t WHERE id = 3"), 0);
}

static void test_txn_control_refused(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	const char *q[] = {"INSERT INTO t VALUES(1, 'a')", "BEGIN; INSERT INTO t VALUES(2, 'b'); COMMIT",
			   "INSERT INTO t VALUES(3, 'c')", "RELEASE mtr_item", "ROLLBACK",
			   "INSERT OR ROLLBACK INTO t VALUES(1, 'again')", "INSERT INTO t VALUES(4, 'd')"};
	assert_int_equal(apply_sqls(f->a, 2, &c, 7, q), 0);
	assert_int_equal(c.n, 7);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[1].code, SQLITE_AUTH);
	assert_non_null(strstr(c.r[1].msg, "transaction control"));
	assert_int_equal(c.r[2].code, SQLITE_OK);
	assert_int_equal(c.r[3].code, SQLITE_AUTH);
	assert_non_null(strstr(c.r[3].msg, "reserved"));
	assert_int_equal(c.r[4].code, SQLITE_AUTH);
	/* INSERT OR ROLLBACK ends the whole transaction: that item fails alone */
	assert_int_equal(c.r[5].code & 0xff, SQLITE_CONSTRAINT);
	assert_int_equal(c.r[6].code, SQLITE_OK);
	/* that restart was counted (and logged at warn with the statement) */
	struct apply_stats st;
	apply_stats(f->a, &st);
	assert_int_equal(st.restarts, 1);
	assert_int_equal(st.local_errors, 0);
	sqlite3 *db;
	assert_int_equal(apply_open_reader(f->a, &db), 0);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(id, ',') FROM (SELECT id FROM t ORDER BY id)",
					    -1, &s, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "1,3,4");
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_int_equal(apply_applied(f->a), 2);
	/* a user's savepoints nest inside the item's */
	const char *sp[] = {"SAVEPOINT s1; INSERT INTO t VALUES(5, 'e'); ROLLBACK TO s1; "
			    "INSERT INTO t VALUES(6, 'f'); RELEASE s1",
			    "SAVEPOINT s2; INSERT INTO t VALUES(7, 'g'); INSERT INTO t VALUES(7, 'dup')"};
	assert_int_equal(apply_sqls(f->a, 3, &c, 2, sp), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[1].code, SQLITE_CONSTRAINT_PRIMARYKEY);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t WHERE id IN (5, 7)"), 0);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t WHERE id = 6"), 1);
}

/* ---- parameters and results ---- */

/* Decode one value of the row format; returns the bytes used. */
static size_t row_value(const uint8_t *p, struct wire_value *v)
{
	v->type = p[0];
	switch (p[0]) {
	case WIRE_V_INT:
		v->u.i = (int64_t)ld64(p + 1);
		return 9;
	case WIRE_V_REAL: {
		uint64_t u = ld64(p + 1);
		memcpy(&v->u.r, &u, 8);
		return 9;
	}
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		v->u.b.n = ld32(p + 1);
		v->u.b.p = p + 5;
		return 5 + v->u.b.n;
	default:
		return 1;
	}
}

static void test_params_and_returning(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE p(id INTEGER PRIMARY KEY, i, r, t, b, n)"), 0);
	static const uint8_t blob[3] = {0, 0xff, 7};
	struct wire_value pv[5];
	memset(pv, 0, sizeof pv);
	pv[0].type = WIRE_V_INT;
	pv[0].u.i = -1234567890123LL;
	pv[1].type = WIRE_V_REAL;
	pv[1].u.r = 2.5;
	pv[2].type = WIRE_V_TEXT;
	pv[2].u.b.p = "héllo";
	pv[2].u.b.n = (uint32_t)strlen("héllo");
	pv[3].type = WIRE_V_BLOB;
	pv[3].u.b.p = blob;
	pv[3].u.b.n = 3;
	pv[4].type = WIRE_V_NULL;
	struct wire_stmt st = stmt("INSERT INTO p(i, r, t, b, n) VALUES(?1, ?2, ?3, ?4, ?5) RETURNING id, i, r, t, b, n");
	st.nparams = 5;
	st.params = pv;
	struct wire_item it = {.stream = 1, .seq = 1, .nstmt = 1, .stmts = &st};
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_instance(f->a, 2, &it, 1, on_result, &c), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[0].changes, 1);
	assert_int_equal(c.r[0].rowid, 1);
	assert_int_equal(c.r[0].nrows, 1);
	assert_int_equal(c.r[0].ncols, 6);
	const uint8_t *p = c.r[0].rows;
	assert_int_equal(ld16(p), 6);
	p += 2;
	struct wire_value v;
	memset(&v, 0, sizeof v);
	p += row_value(p, &v);
	assert_int_equal(v.type, WIRE_V_INT);
	assert_int_equal(v.u.i, 1);
	p += row_value(p, &v);
	assert_int_equal(v.type, WIRE_V_INT);
	assert_true(v.u.i == -1234567890123LL);
	p += row_value(p, &v);
	assert_int_equal(v.type, WIRE_V_REAL);
	assert_true(v.u.r == 2.5);
	p += row_value(p, &v);
	assert_int_equal(v.type, WIRE_V_TEXT);
	assert_int_equal(v.u.b.n, strlen("héllo"));
	assert_memory_equal(v.u.b.p, "héllo", v.u.b.n);
	p += row_value(p, &v);
	assert_int_equal(v.type, WIRE_V_BLOB);
	assert_int_equal(v.u.b.n, 3);
	assert_memory_equal(v.u.b.p, blob, 3);
	p += row_value(p, &v);
	assert_int_equal(v.type, WIRE_V_NULL);
	assert_int_equal((size_t)(p - c.r[0].rows), c.r[0].rows_len);
	assert_int_equal(query_int(f->a, "SELECT typeof(i)='integer' AND typeof(r)='real' AND typeof(t)='text' "
					 "AND typeof(b)='blob' AND n IS NULL FROM p"),
			 1);

	/* the same statement again: a cache hit, new bindings, rowid 2 */
	struct apply_stats s0, s1;
	apply_stats(f->a, &s0);
	pv[0].u.i = 7;
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_instance(f->a, 3, &it, 1, on_result, &c), 0);
	apply_stats(f->a, &s1);
	assert_int_equal(s1.cache_hits, s0.cache_hits + 1);
	assert_int_equal(c.r[0].rowid, 2);
	assert_int_equal(query_int(f->a, "SELECT i FROM p WHERE id = 2"), 7);

	/* UPDATE: changes counts rows; a bad parameter count is an error */
	const char *q[] = {"UPDATE p SET n = 1", "SELECT count(*) FROM p"};
	assert_int_equal(apply_sqls(f->a, 4, &c, 2, q), 0);
	assert_int_equal(c.r[0].changes, 2);
	assert_int_equal(c.r[1].nrows, 1);
	assert_int_equal(c.r[1].ncols, 1);
}

static void test_multi_statement_and_decoded(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const char *q[] = {"CREATE TABLE a(x); INSERT INTO a VALUES(1); INSERT INTO a VALUES(2);\n  "};
	assert_int_equal(apply_sqls(f->a, 1, &c, 1, q), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[0].rowid, 2);
	assert_int_equal(query_int(f->a, "SELECT sum(x) FROM a"), 3);

	/* through the wire encoding */
	struct wire_value pv = {.type = WIRE_V_INT, .u.i = 40};
	struct wire_stmt st[2] = {stmt("INSERT INTO a VALUES(?1)"), stmt("INSERT INTO a VALUES(2); INSERT INTO a VALUES(x'00')")};
	st[0].nparams = 1;
	st[0].params = &pv;
	struct wire_item in = {.stream = 9, .seq = 1, .timestamp_us = 5, .seed = 6, .nstmt = 2, .stmts = st};
	uint8_t buf[512];
	long len = wire_item_encode(buf, sizeof buf, &in);
	assert_true(len > 0);
	struct wire_item out;
	assert_int_equal(wire_item_decode(buf, (size_t)len, &out), len);
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_instance(f->a, 2, &out, 1, on_result, &c), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[0].nstmt, 2);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM a"), 5);
	assert_int_equal(query_int(f->a, "SELECT sum(x) FROM a WHERE typeof(x) = 'integer'"), 45);
}

/*
 * An item of one INSERT/UPDATE/DELETE runs without its savepoint; when one
 * fails, the instance runs again with savepoints, so that an item that
 * failed halfway (OR FAIL keeps the rows before the failure) still leaves
 * nothing behind, exactly as with its savepoint.
 */
static void test_item_without_savepoint(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	const char *q[] = {"INSERT INTO t VALUES(1, 'a')",
			   "INSERT OR FAIL INTO t(id, v) SELECT column1, 'b' FROM (VALUES (20), (1), (30))",
			   "UPDATE t SET v = 'c' WHERE id = 1", "insert into t values(40, 'd')"};
	assert_int_equal(apply_sqls(f->a, 2, &c, 4, q), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[1].code & 0xff, SQLITE_CONSTRAINT);
	assert_int_equal(c.r[2].code, SQLITE_OK);
	assert_int_equal(c.r[2].changes, 1);
	assert_int_equal(c.r[3].code, SQLITE_OK);
	assert_int_equal(c.r[3].rowid, 40);
	/* row 20, inserted before the failure, went with the item */
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t WHERE id IN (20, 30)"), 0);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 2);
	struct apply_stats st;
	apply_stats(f->a, &st);
	assert_int_equal(st.sp_restarts, 1);
	assert_int_equal(st.restarts, 0);
	/* for a while every item takes its savepoint: a failure costs no
	 * restart */
	const char *q2[] = {"INSERT INTO t VALUES(1, 'again')", "INSERT INTO t VALUES(50, 'e')"};
	assert_int_equal(apply_sqls(f->a, 3, &c, 2, q2), 0);
	assert_int_equal(c.r[0].code & 0xff, SQLITE_CONSTRAINT);
	assert_int_equal(c.r[1].code, SQLITE_OK);
	apply_stats(f->a, &st);
	assert_int_equal(st.sp_restarts, 1);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 3);
}

/* ---- resends: a write is applied at most once per (client, request) ---- */

/* Apply one instance of one item of client/request/floor at time ts. */
static int apply_req(struct apply *a, uint64_t inst, struct cap *c, uint64_t client, uint64_t request,
		     uint64_t floor, int64_t ts, const char *sql)
{
	struct wire_stmt st = stmt(sql);
	struct wire_item it = {.stream = 2, .seq = inst, .request = request, .client = client, .floor = floor,
			       .timestamp_us = ts, .seed = inst, .nstmt = 1, .stmts = &st};
	memset(c, 0, sizeof *c);
	return apply_instance(a, inst, &it, 1, on_result, c);
}

/* The proxy's lookup of (stream, seq, client, request) finds a result of
 * one statement that succeeded with changes, rowid and nrows. */
static void lookup_expect(struct apply *a, uint64_t stream, uint64_t seq, uint64_t client, uint64_t request,
			  int64_t changes, int64_t rowid, uint32_t nrows)
{
	struct apply_lookup q = {.stream = stream, .seq = seq, .client = client, .request = request};
	uint64_t seen = 0;
	struct apply_reader *rd;
	assert_int_equal(apply_reader_open(a, &rd), 0);
	assert_int_equal(apply_lookup(rd, &q, 1, &seen), 0);
	apply_reader_close(rd);
	assert_int_equal(q.state, APPLY_LOOKUP_FOUND);
	struct result_view v;
	struct result_stmt rs;
	assert_int_equal(result_decode(q.bytes, q.len, &v), 0);
	assert_int_equal(v.code, SQLITE_OK);
	assert_true(result_next(&v, &rs));
	assert_int_equal(rs.changes, changes);
	assert_int_equal(rs.last_rowid, rowid);
	assert_int_equal(rs.nrows, nrows);
	free(q.bytes);
}

/* A plain result is kept in a run and read back whole. */
static void test_resend_compact(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const int64_t T = 1700000000000000;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	assert_int_equal(apply_req(f->a, 2, &c, 77, 1, 1, T, "INSERT INTO t(id, v) VALUES(100, 'p')"), 0);
	assert_false(c.r[0].raw);
	/* 12 bytes of record header, changes 1 and rowid 100 as uvarints */
	assert_int_equal(query_int(f->a, "SELECT length(result) FROM mtr_requests WHERE client = 77 AND request = 1"),
			 15);
	assert_int_equal(apply_req(f->a, 3, &c, 77, 1, 1, T + 1, "INSERT INTO t(id, v) VALUES(100, 'p')"), 0);
	assert_true(c.r[0].raw);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[0].nstmt, 1);
	assert_int_equal(c.r[0].changes, 1);
	assert_int_equal(c.r[0].rowid, 100);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 1);
	/* the proxy's lookup of a lost result finds the same bytes */
	lookup_expect(f->a, 2, 2, 77, 1, 1, 100, 0);
}

/*
 * One client's results in one instance: plain ones in runs (a gap in the
 * requests or a result with rows starts another), each read back as it
 * was, by a resend in a later instance and by the proxy's lookup; and a
 * compact record written by an older replica is still read.
 */
static void test_resend_runs(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const int64_t T = 1700000000000000;
	const uint64_t C = 4242;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	const char *sql[7] = {
		"INSERT INTO t(id, v) VALUES(1000, 'a')",
		"INSERT INTO t(id, v) VALUES(-5, 'b')",                  /* a rowid below the last */
		"INSERT INTO t(id, v) VALUES(9223372036854775807, 'c')", /* the largest */
		"INSERT INTO t(id, v) VALUES(7, 'd') RETURNING id",      /* rows: a record of its own */
		"UPDATE t SET v = 'e' WHERE id > 0",                     /* 3 changes, rowid as before */
		"INSERT INTO t(id, v) VALUES(8, 'f')",                   /* request 7: after a gap */
		"INSERT INTO t(id, v) VALUES(9, 'g')",
	};
	const uint64_t req[7] = {1, 2, 3, 4, 5, 7, 8};
	struct wire_stmt st[7];
	struct wire_item it[7];
	for (int i = 0; i < 7; i++) {
		st[i] = stmt(sql[i]);
		it[i] = (struct wire_item){.stream = 2, .seq = (uint64_t)i + 1, .request = req[i], .client = C,
					   .floor = 1, .timestamp_us = T, .nstmt = 1, .stmts = &st[i]};
	}
	struct cap first;
	memset(&first, 0, sizeof first);
	assert_int_equal(apply_instance(f->a, 2, it, 7, on_result, &first), 0);
	for (int i = 0; i < 7; i++) {
		assert_false(first.r[i].raw);
		assert_int_equal(first.r[i].code, SQLITE_OK);
	}
	assert_int_equal(first.r[4].changes, 3);
	/* runs 1-3 and 5, the record of 4, the run 7-8: shorter than the six
	 * compact records the plain results took before runs (6 x 28) */
	assert_true(query_int(f->a, "SELECT length(result) FROM mtr_requests WHERE client = 4242 AND request = 1") <
		    6 * 28);
	/* every one again, from another stream, in reverse order */
	struct wire_item again[7];
	for (int i = 0; i < 7; i++) {
		again[i] = it[6 - i];
		again[i].stream = 3;
		again[i].seq = (uint64_t)i + 1;
	}
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_instance(f->a, 3, again, 7, on_result, &c), 0);
	for (int i = 0; i < 7; i++) {
		int o = 6 - i;
		assert_true(c.r[i].raw);
		assert_int_equal(c.r[i].code, first.r[o].code);
		assert_int_equal(c.r[i].changes, first.r[o].changes);
		assert_int_equal(c.r[i].rowid, first.r[o].rowid);
		assert_int_equal(c.r[i].nrows, first.r[o].nrows);
	}
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 6);
	/* request 6 was never written: not found, so it runs */
	assert_int_equal(apply_req(f->a, 4, &c, C, 6, 1, T + 1, "INSERT INTO t(id, v) VALUES(10, 'h')"), 0);
	assert_false(c.r[0].raw);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 7);
	/* the proxy's lookup: each of the first instance's */
	for (int i = 0; i < 7; i++)
		lookup_expect(f->a, 2, (uint64_t)i + 1, C, req[i], first.r[i].changes, first.r[i].rowid,
			      first.r[i].nrows);

	/* a compact record (u64 request, u32 0x80000000 | 16, i64 changes,
	 * i64 rowid) of an older replica: client 99, request 1 */
	char path[128];
	snprintf(path, sizeof path, "%s/replica.db", f->dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	uint8_t rec[28];
	st64(rec, 1);
	st32(rec + 8, 0x80000000u | 16);
	st64(rec + 12, 2);
	st64(rec + 20, 555);
	sqlite3_stmt *ins;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO mtr_requests(client, request, ts, result, top) VALUES"
					    "(99, 1, ?1, ?2, 1), (99, 0, ?1, 1, 1)",
					    -1, &ins, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(ins, 1, T);
	sqlite3_bind_blob(ins, 2, rec, sizeof rec, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
	sqlite3_finalize(ins);
	sqlite3_close(db);
	assert_int_equal(apply_req(f->a, 5, &c, 99, 1, 1, T + 2, "INSERT INTO t(id, v) VALUES(555, 'x')"), 0);
	assert_true(c.r[0].raw);
	assert_int_equal(c.r[0].changes, 2);
	assert_int_equal(c.r[0].rowid, 555);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t WHERE id = 555"), 0);
}

static void test_resends(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const int64_t T = 1700000000000000;
	const uint64_t C = 0x9e3779b97f4a7c15u; /* above INT64_MAX: stored as its two's complement */
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	assert_int_equal(apply_req(f->a, 2, &c, C, 1, 1, T, "INSERT INTO t(v) VALUES('a') RETURNING id"), 0);
	assert_false(c.r[0].raw);
	assert_int_equal(c.r[0].rowid, 1);
	/* the resend (through another proxy: another stream) gets the kept
	 * result, rows included, and does not run */
	assert_int_equal(apply_req(f->a, 3, &c, C, 1, 1, T + 5, "INSERT INTO t(v) VALUES('a') RETURNING id"), 0);
	assert_true(c.r[0].raw);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[0].changes, 1);
	assert_int_equal(c.r[0].rowid, 1);
	assert_int_equal(c.r[0].nrows, 1);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 1);
	/* the next request moves the floor: request 1 is forgotten */
	assert_int_equal(apply_req(f->a, 4, &c, C, 2, 2, T + 10, "INSERT INTO t(v) VALUES('b')"), 0);
	assert_false(c.r[0].raw);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM mtr_requests WHERE request = 1"), 0);
	assert_int_equal(query_int(f->a, "SELECT result FROM mtr_requests WHERE request = 0"), 2);
	/* ... and a late copy of request 1 is refused, not applied */
	assert_int_equal(apply_req(f->a, 5, &c, C, 1, 1, T + 15, "INSERT INTO t(v) VALUES('a')"), 0);
	assert_int_equal(c.r[0].code, SQLITE_ERROR);
	assert_non_null(strstr(c.r[0].msg, "answered already"));
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 2);
	/* a failed write's resend gets the same failure */
	assert_int_equal(apply_req(f->a, 6, &c, C, 3, 3, T + 20, "INSERT INTO nosuch VALUES(1)"), 0);
	char first[256];
	snprintf(first, sizeof first, "%s", c.r[0].msg);
	assert_int_equal(apply_req(f->a, 7, &c, C, 3, 3, T + 25, "INSERT INTO nosuch VALUES(1)"), 0);
	assert_true(c.r[0].raw);
	assert_int_equal(c.r[0].code, SQLITE_ERROR);
	assert_string_equal(c.r[0].msg, first);
	/* twice in one instance: the second copy is the resend */
	struct wire_stmt st = stmt("INSERT INTO t(v) VALUES('c')");
	struct wire_item two[2] = {
		{.stream = 2, .seq = 100, .request = 4, .client = C, .floor = 4, .timestamp_us = T + 30, .nstmt = 1, .stmts = &st},
		{.stream = 3, .seq = 1, .request = 4, .client = C, .floor = 4, .timestamp_us = T + 31, .nstmt = 1, .stmts = &st},
	};
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_instance(f->a, 8, two, 2, on_result, &c), 0);
	assert_false(c.r[0].raw);
	assert_true(c.r[1].raw);
	assert_int_equal(c.r[1].rowid, c.r[0].rowid);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 3);
	/* without a client id, or a floor, nothing is de-duplicated */
	assert_int_equal(apply_req(f->a, 9, &c, 0, 5, 5, T + 40, "INSERT INTO t(v) VALUES('d')"), 0);
	assert_int_equal(apply_req(f->a, 10, &c, 0, 5, 5, T + 41, "INSERT INTO t(v) VALUES('d')"), 0);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t WHERE v = 'd'"), 2);
	/* the table is the replica's */
	const char *q[] = {"DELETE FROM mtr_requests"};
	assert_int_equal(apply_sqls(f->a, 11, &c, 1, q), 0);
	assert_int_equal(c.r[0].code, SQLITE_AUTH);
	assert_non_null(strstr(c.r[0].msg, "maintained by the replica"));
	/* a client idle for a day is forgotten at the next 4096th instance */
	assert_int_equal(apply_req(f->a, 12, &c, 77, 1, 1, T + 50, "SELECT 1"), 0);
	for (uint64_t i = 13; i < 4096; i++)
		assert_int_equal(apply_instance(f->a, i, NULL, 0, NULL, NULL), 0);
	assert_int_equal(apply_req(f->a, 4096, &c, 78, 1, 1, T + APPLY_CLIENT_IDLE_US + 40, "SELECT 1"), 0);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM mtr_requests WHERE client = 77"), 2);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM mtr_requests WHERE client = 78"), 2);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM mtr_requests WHERE client = -7046029254386353131"), 0);
}

/* ---- a result looked up again (RESULT_REQUEST, apply_lookup) ---- */

static void test_lookup(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const int64_t T = 1700000000000000;
	const uint64_t C = 0x9e3779b97f4a7c15u;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	/* stream 2, seq = instance */
	assert_int_equal(apply_req(f->a, 2, &c, C, 1, 1, T, "INSERT INTO t(v) VALUES('a') RETURNING id"), 0);
	assert_int_equal(apply_req(f->a, 3, &c, C, 2, 1, T + 1, "INSERT INTO nosuch VALUES(1)"), 0);
	struct apply_reader *rd;
	assert_int_equal(apply_reader_open(f->a, &rd), 0);
	struct apply_lookup q[5] = {
		{.stream = 2, .seq = 2, .client = C, .request = 1}, /* applied, kept: its RETURNING row */
		{.stream = 2, .seq = 3, .client = C, .request = 2}, /* applied, kept: its failure */
		{.stream = 2, .seq = 4, .client = C, .request = 3}, /* not applied (yet) */
		{.stream = 2, .seq = 3, .client = 0, .request = 2}, /* applied, no client: nothing kept */
		{.stream = 9, .seq = 1, .client = C, .request = 1}, /* a stream never applied here */
	};
	uint64_t seen = 0;
	assert_int_equal(apply_lookup(rd, q, 5, &seen), 0);
	assert_int_equal(seen, 3);
	assert_int_equal(q[0].state, APPLY_LOOKUP_FOUND);
	struct result_view v;
	struct result_stmt rs;
	assert_int_equal(result_decode(q[0].bytes, q[0].len, &v), 0);
	assert_int_equal(v.code, 0);
	assert_true(result_next(&v, &rs));
	assert_int_equal(rs.last_rowid, 1);
	assert_int_equal(rs.nrows, 1);
	assert_int_equal(q[1].state, APPLY_LOOKUP_FOUND);
	assert_int_equal(result_decode(q[1].bytes, q[1].len, &v), 0);
	assert_int_equal(v.code, SQLITE_ERROR);
	assert_int_equal(q[2].state, APPLY_LOOKUP_UNAPPLIED);
	assert_int_equal(q[3].state, APPLY_LOOKUP_LOST);
	assert_int_equal(q[4].state, APPLY_LOOKUP_UNAPPLIED);
	for (int i = 0; i < 5; i++)
		free(q[i].bytes);
	/* the client's floor passes requests 1 and 2: forgotten, lost */
	assert_int_equal(apply_req(f->a, 4, &c, C, 3, 3, T + 2, "INSERT INTO t(v) VALUES('b')"), 0);
	struct apply_lookup g[2] = {{.stream = 2, .seq = 2, .client = C, .request = 1},
				    {.stream = 2, .seq = 4, .client = C, .request = 3}};
	assert_int_equal(apply_lookup(rd, g, 2, &seen), 0);
	assert_int_equal(seen, 4);
	assert_int_equal(g[0].state, APPLY_LOOKUP_LOST);
	assert_int_equal(g[1].state, APPLY_LOOKUP_FOUND);
	free(g[1].bytes);
	apply_reader_close(rd);
}

/* ---- a session's TEMP definitions live for one item ---- */

static void test_temp_item(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const char *h[] = {"CREATE TABLE t1(x); CREATE TABLE log(x)"};
	assert_int_equal(apply_sqls(f->a, 1, &c, 1, h), 0);
	struct wire_stmt st[3] = {stmt("CREATE TEMP VIEW v2 AS SELECT x FROM t1 WHERE x > 0"),
				  stmt("CREATE TEMP TRIGGER tr AFTER INSERT ON t1 BEGIN INSERT INTO log VALUES(new.x * 10); END"),
				  stmt("INSERT INTO t1 VALUES(1), (2)")};
	struct wire_item it = {.stream = 1, .seq = 100, .timestamp_us = 5, .seed = 6, .nstmt = 3, .stmts = st,
			       .flags = WIRE_ITEM_TEMP};
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_instance(f->a, 2, &it, 1, on_result, &c), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[0].changes, 2);
	/* the trigger fired, then the definitions were dropped */
	assert_int_equal(query_int(f->a, "SELECT sum(x) FROM log"), 30);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM temp.sqlite_schema"), 0);
	/* a later item does not see them */
	const char *q[] = {"INSERT INTO t1 SELECT x FROM v2"};
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_sqls(f->a, 3, &c, 1, q), 0);
	assert_int_equal(c.r[0].code, SQLITE_ERROR);
	assert_non_null(strstr(c.r[0].msg, "no such table: v2"));
	const char *w[] = {"INSERT INTO t1 VALUES(3)"};
	assert_int_equal(apply_sqls(f->a, 4, &c, 1, w), 0);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM log"), 2);
}

/* ---- digest ---- */

static void test_digest(void **state)
{
	struct fx *f = *state;
	struct apply *b = open_dir(f->dir2, 0);
	const char *h[] = {"CREATE TABLE t(id INTEGER PRIMARY KEY, v)", "CREATE TABLE w(k TEXT PRIMARY KEY, v) WITHOUT ROWID",
			   "INSERT INTO t(v) VALUES(1.5), ('x'), (x'01'), (NULL)", "INSERT INTO w VALUES('b', 2), ('a', 1)",
			   "CREATE INDEX ti ON t(v)"};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(apply_sql(f->a, (uint64_t)i + 1, h[i]), 0);
		assert_int_equal(apply_sql(b, (uint64_t)i + 1, h[i]), 0);
	}
	struct digest d1, d2;
	uint64_t i1, i2;
	assert_int_equal(apply_digest(f->a, &i1, &d1), 0);
	assert_int_equal(apply_digest(b, &i2, &d2), 0);
	assert_int_equal(i1, 5);
	assert_int_equal(i2, 5);
	assert_memory_equal(&d1, &d2, sizeof d1);
	assert_int_equal(apply_sql(f->a, 6, "UPDATE w SET v = 3 WHERE k = 'a'"), 0);
	assert_int_equal(apply_sql(b, 6, "UPDATE w SET v = 3 WHERE k = 'b'"), 0);
	assert_int_equal(apply_digest(f->a, &i1, &d1), 0);
	assert_int_equal(apply_digest(b, &i2, &d2), 0);
	assert_memory_not_equal(&d1, &d2, sizeof d1);
	char hex[DIGEST_HEX_SIZE];
	digest_hex(&d1, hex);
	assert_int_equal(strlen(hex), 32);
	apply_close(b);
}

/* ---- apply_wait ---- */

struct waiter {
	struct apply *a;
	uint64_t inst;
	int rc;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = apply_wait(w->a, w->inst, 10000);
	return NULL;
}

static void test_wait(void **state)
{
	struct fx *f = *state;
	assert_int_equal(apply_wait(f->a, 1, 20), MTR_ETIMEDOUT);
	assert_int_equal(apply_wait(f->a, 0, 0), 0);
	struct waiter w = {.a = f->a, .inst = 2, .rc = 99};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(x)"), 0);
	assert_int_equal(apply_sql(f->a, 2, "INSERT INTO t VALUES(1)"), 0);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	assert_int_equal(apply_wait(f->a, 2, 0), 0);
}

/* ---- snapshot / restore ---- */

static void test_snapshot_restore(void **state)
{
	struct fx *f = *state;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	assert_int_equal(apply_sql(f->a, 2, "INSERT INTO t(v) SELECT randomblob(100) FROM "
					    "(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 500) SELECT i FROM c)"),
			 0);
	char snap[128];
	snprintf(snap, sizeof snap, "%s/snap.db", f->dir2);
	uint64_t si = 0;
	assert_int_equal(apply_snapshot(f->a, snap, &si), 0);
	assert_int_equal(si, 2);
	struct digest d1, d2;
	uint64_t i1, i2;
	assert_int_equal(apply_digest(f->a, &i1, &d1), 0);
	/* a later write is not in the snapshot */
	assert_int_equal(apply_sql(f->a, 3, "DELETE FROM t WHERE id < 10"), 0);

	char rdir[128];
	snprintf(rdir, sizeof rdir, "%s/r", f->dir2);
	assert_int_equal(mkdir(rdir, 0700), 0);
	/* a leftover database in the way is replaced */
	struct apply *old = open_dir(rdir, 0);
	assert_int_equal(apply_sql(old, 1, "CREATE TABLE junk(x)"), 0);
	apply_close(old);
	assert_int_equal(apply_restore(rdir, snap), 0);
	struct apply *b = open_dir(rdir, 0);
	assert_int_equal(apply_applied(b), 2);
	assert_int_equal(apply_digest(b, &i2, &d2), 0);
	assert_int_equal(i2, 2);
	assert_memory_equal(&d1, &d2, sizeof d1);
	/* and it continues where the original did */
	assert_int_equal(apply_sql(b, 3, "DELETE FROM t WHERE id < 10"), 0);
	assert_int_equal(apply_digest(f->a, &i1, &d1), 0);
	assert_int_equal(apply_digest(b, &i2, &d2), 0);
	assert_memory_equal(&d1, &d2, sizeof d1);
	apply_close(b);
	char bad[128];
	snprintf(bad, sizeof bad, "%s/nothing.db", f->dir2);
	assert_int_not_equal(apply_restore(rdir, bad), 0);
}

/* apply_init_from: a replica at instance 0 from a backup-like file (its
 * snapshot), the same origin from the same content, refusals; and
 * apply_init_pending. */
static void test_init_from(void **state)
{
	struct fx *f = *state;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	assert_int_equal(apply_sql(f->a, 2, "INSERT INTO t(v) VALUES(x''), (1), ('a')"), 0);
	char snap[128], r1[128], r2[128], r3[128], err[512];
	snprintf(snap, sizeof snap, "%s/snap.db", f->dir2);
	uint64_t si = 0;
	assert_int_equal(apply_snapshot(f->a, snap, &si), 0);
	snprintf(r1, sizeof r1, "%s/r1", f->dir2);
	snprintf(r2, sizeof r2, "%s/r2", f->dir2);
	snprintf(r3, sizeof r3, "%s/r3", f->dir2);
	assert_int_equal(mkdir(r1, 0700), 0);
	assert_int_equal(mkdir(r2, 0700), 0);
	assert_int_equal(mkdir(r3, 0700), 0);
	uint64_t o1 = 0, o2 = 0;
	assert_int_equal(apply_init_from(r1, snap, &o1, err, sizeof err), 0);
	assert_int_equal(apply_init_from(r2, snap, &o2, err, sizeof err), 0);
	assert_true(o1 == o2 && o1 != 0 && o1 != APPLY_ORIGIN_PENDING);
	struct apply *b = open_dir(r1, 0);
	assert_int_equal(apply_applied(b), 0);
	assert_true(apply_origin(b) == o1);
	/* the user content is the source's; the replica's own tables are new */
	sqlite3 *db;
	assert_int_equal(apply_open_reader(b, &db), 0);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT (SELECT count(*) FROM t), (SELECT typeof(v) FROM t WHERE id = 1), "
					    "(SELECT value FROM mtr_meta WHERE key = 'restored_instance'), "
					    "(SELECT count(*) FROM mtr_cursor)",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 3);
	assert_string_equal((const char *)sqlite3_column_text(st, 1), "blob");
	assert_int_equal(sqlite3_column_int(st, 2), 2);
	assert_int_equal(sqlite3_column_int(st, 3), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* it applies instance 1 next */
	assert_int_equal(apply_sql(b, 1, "INSERT INTO t(v) VALUES(2)"), 0);
	apply_close(b);
	/* refused: a replica there, not a database, a reserved name */
	assert_int_equal(apply_init_from(r1, snap, &o1, err, sizeof err), MTR_EEXIST);
	assert_non_null(strstr(err, "already holds a replica"));
	assert_int_equal(apply_init_pending(r1, err, sizeof err), MTR_EEXIST);
	char junk[128];
	snprintf(junk, sizeof junk, "%s/junk.db", f->dir2);
	FILE *j = fopen(junk, "w");
	assert_non_null(j);
	fputs("this is not a database, but it is long enough to look at.................", j);
	fclose(j);
	assert_int_not_equal(apply_init_from(r3, junk, &o1, err, sizeof err), 0);
	unlink(junk);
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(junk, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "CREATE TABLE mtr_mine(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
	assert_int_equal(apply_init_from(r3, junk, &o1, err, sizeof err), MTR_EINVAL);
	assert_non_null(strstr(err, "mtr_mine"));
	/* nothing left behind: a pending replica can still be made there */
	assert_int_equal(apply_init_pending(r3, err, sizeof err), 0);
	b = open_dir(r3, 0);
	assert_true(apply_origin(b) == APPLY_ORIGIN_PENDING);
	apply_close(b);
}

/* ---- WAL bound ---- */

static void test_wal_bounded(void **state)
{
	struct fx *f = *state;
	apply_close(f->a);
	f->a = open_dir(f->dir, 64);
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	char wal[128];
	snprintf(wal, sizeof wal, "%s/%s-wal", f->dir, APPLY_DB_NAME);
	off_t maxsz = 0;
	for (uint64_t i = 2; i <= 1500; i++) {
		assert_int_equal(apply_sql(f->a, i, "INSERT INTO t(v) VALUES(randomblob(600))"), 0);
		struct stat st;
		if (stat(wal, &st) == 0 && st.st_size > maxsz)
			maxsz = st.st_size;
	}
	struct apply_stats s;
	apply_stats(f->a, &s);
	/* 1500 instances of ~1-2 pages each would be > 12 MB of WAL unbounded;
	 * the bound is 4 x 64 pages plus one transaction, with slack. */
	print_message("# WAL max %lld bytes, %llu checkpoints, %llu WAL restarts\n", (long long)maxsz,
		      (unsigned long long)s.checkpoints, (unsigned long long)s.wal_restarts);
	assert_true(maxsz > 0);
	assert_true(maxsz < 6 * 64 * (4096 + 24) + 65536);
	assert_true(s.wal_restarts > 0); /* restarted by the apply thread, not only truncated at close */
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 1499);
}

static off_t file_size(const char *dir, const char *name)
{
	char p[256];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return stat(p, &st) == 0 ? st.st_size : 0;
}

/* The checkpointer copies frames into the database on its own: with the WAL
 * between wal_pages and WAL_RESTART_X x wal_pages the apply thread never
 * checkpoints, yet the database file grows (a checkpointer whose connection
 * never opened the WAL copied nothing: issue 17). */
static void test_checkpointer_copies(void **state)
{
	struct fx *f = *state;
	apply_close(f->a);
	f->a = open_dir(f->dir, 64);
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	off_t before = file_size(f->dir, APPLY_DB_NAME);
	/* just over wal_pages (64) frames, well under 2 x: the apply thread
	 * leaves the WAL to the checkpointer */
	uint64_t i = 2;
	for (; i < 200 && file_size(f->dir, APPLY_DB_NAME "-wal") <= 32 + 64 * (4096 + 24); i++)
		assert_int_equal(apply_sql(f->a, i, "INSERT INTO t(v) VALUES(randomblob(600))"), 0);
	assert_true(i > 10 && i < 200);
	off_t after = before;
	struct apply_stats s;
	apply_stats(f->a, &s);
	/* the file grows during the pass, the count after it */
	for (int k = 0; k < 500 && (after < before + 2 * 4096 || s.checkpoints == 0); k++) {
		usleep(10000);
		after = file_size(f->dir, APPLY_DB_NAME);
		apply_stats(f->a, &s);
	}
	print_message("# %llu instances, WAL %lld bytes; database %lld -> %lld bytes, %llu checkpoints, %llu WAL restarts\n",
		      (unsigned long long)i, (long long)file_size(f->dir, APPLY_DB_NAME "-wal"), (long long)before,
		      (long long)after, (unsigned long long)s.checkpoints, (unsigned long long)s.wal_restarts);
	assert_true(s.checkpoints > 0);
	assert_int_equal(s.wal_restarts, 0);
	assert_true(after >= before + 2 * 4096); /* 20 rows of 600 bytes, 6 a page */
}

/* A reader on a WAL snapshot holds the restart off (the apply thread waits
 * RESTART_BUSY_MS at most for it, then carries on): the WAL grows past its
 * bound while the reader stays, and restarts once it is gone. */
static void test_wal_reader_holds_restart(void **state)
{
	struct fx *f = *state;
	apply_close(f->a);
	f->a = open_dir(f->dir, 64);
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), 0);
	assert_int_equal(apply_sql(f->a, 2, "INSERT INTO t(v) VALUES(1)"), 0);
	sqlite3 *rd;
	assert_int_equal(apply_open_reader(f->a, &rd), 0);
	assert_int_equal(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM t", NULL, NULL, NULL), SQLITE_OK);
	struct apply_stats s0, s1, s2;
	apply_stats(f->a, &s0);
	uint64_t i = 3;
	uint64_t t0 = now_mono_ns();
	for (; i <= 300; i++)
		assert_int_equal(apply_sql(f->a, i, "INSERT INTO t(v) VALUES(randomblob(600))"), 0);
	double ms = (double)(now_mono_ns() - t0) / 1e6;
	apply_stats(f->a, &s1);
	off_t held = file_size(f->dir, APPLY_DB_NAME "-wal");
	assert_int_equal(sqlite3_exec(rd, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(rd);
	for (; i <= 900; i++)
		assert_int_equal(apply_sql(f->a, i, "INSERT INTO t(v) VALUES(randomblob(600))"), 0);
	apply_stats(f->a, &s2);
	print_message("# with a reader: WAL %lld bytes, %llu restarts, 298 instances in %.0f ms; after: %llu restarts\n",
		      (long long)held, (unsigned long long)(s1.wal_restarts - s0.wal_restarts), ms,
		      (unsigned long long)(s2.wal_restarts - s1.wal_restarts));
	assert_int_equal(s1.wal_restarts, s0.wal_restarts);
	assert_true(held > 6 * 64 * (4096 + 24)); /* past the bound: the reader pins the WAL */
	assert_true(s2.wal_restarts > s1.wal_restarts);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 899);
}

/* ---- replica-local errors (issue 18) ---- */

static void test_local_error_class(void **state)
{
	(void)state;
	assert_true(apply_local_error(SQLITE_IOERR));
	assert_true(apply_local_error(SQLITE_IOERR_WRITE));
	assert_true(apply_local_error(SQLITE_IOERR_SHMMAP));
	assert_true(apply_local_error(SQLITE_FULL));
	assert_true(apply_local_error(SQLITE_NOMEM));
	assert_true(apply_local_error(SQLITE_CANTOPEN));
	assert_true(apply_local_error(SQLITE_CORRUPT));
	assert_false(apply_local_error(SQLITE_CORRUPT_VTAB));
	assert_false(apply_local_error(SQLITE_OK));
	assert_false(apply_local_error(SQLITE_ERROR));
	assert_false(apply_local_error(SQLITE_CONSTRAINT_PRIMARYKEY));
	assert_false(apply_local_error(SQLITE_AUTH));
	assert_false(apply_local_error(SQLITE_LOCKED));
	assert_false(apply_local_error(SQLITE_TOOBIG));
	assert_false(apply_local_error(SQLITE_INTERRUPT));
}

struct lift {
	struct apply *a;
	struct rlimit lim;
};

/* Lift the file-size limit once apply has met its first I/O error. */
static void *lift_after_error(void *arg)
{
	struct lift *l = arg;
	for (int i = 0; i < 10000; i++) {
		struct apply_stats st;
		apply_stats(l->a, &st);
		if (st.local_errors > 0)
			break;
		usleep(1000);
	}
	setrlimit(RLIMIT_FSIZE, &l->lim);
	return NULL;
}

static void count_result(void *arg, size_t index, const struct wire_item *it, const struct apply_result *res)
{
	(void)index;
	(void)it;
	int *r = arg;
	r[0]++;
	r[1] = res->code;
}

/* Instance 2: the one item sql (an insert of a blob); res as
 * count_result fills it (reset first). */
static int apply_blob(struct apply *a, const char *sql, int res[2])
{
	struct wire_stmt st = stmt(sql);
	struct wire_item it = {.stream = 1, .seq = 2, .timestamp_us = 1, .seed = 2, .nstmt = 1, .stmts = &st};
	res[0] = 0;
	res[1] = -1;
	return apply_instance(a, 2, &it, 1, count_result, res);
}

/*
 * In a child process (the limit is per process): every write past a
 * file-size limit fails with EFBIG (SQLITE_IOERR_WRITE) while an item
 * writes 3 MB.  transient: the limit is lifted after the first error.
 * Returns 0 or the number of the failed check (the parent asserts it).
 */
static int ioerr_child(const char *dir, int transient)
{
	signal(SIGXFSZ, SIG_IGN);
	struct apply_config cfg = {.dir = dir, .local_retries = 2, .retry_ms = 20};
	struct apply *a = NULL;
	if (apply_open(&cfg, &a) != 0)
		return 1;
	if (apply_sql(a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)") != 0)
		return 2;
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	off_t big = MAX(file_size(dir, "replica.db"), file_size(dir, "replica.db-wal"));
	lim.rlim_cur = (rlim_t)big + 256 * 1024;
	if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
		return 3;
	struct lift l = {.a = a, .lim = old};
	pthread_t th;
	if (transient && pthread_create(&th, NULL, lift_after_error, &l) != 0)
		return 4;
	const char *sql = "INSERT INTO t VALUES(1, zeroblob(3000000))";
	int res[2];
	int rc = apply_blob(a, sql, res);
	if (transient)
		pthread_join(th, NULL);
	struct apply_stats s;
	apply_stats(a, &s);
	if (transient) {
		/* retried and applied: the item's result is the real one */
		if (rc != 0 || res[0] != 1 || res[1] != SQLITE_OK || apply_applied(a) != 2)
			return 10;
		if (s.local_errors < 1 || s.local_retries < 1 || s.local_retries > 2)
			return 11;
	} else {
		/* every attempt failed: nothing recorded, no result reported */
		if (rc != MTR_EIO || res[0] != 0 || apply_applied(a) != 1)
			return 20;
		if (s.local_errors != 3 || s.local_retries != 2)
			return 21;
		setrlimit(RLIMIT_FSIZE, &old);
		/* the disk is back: a restart applies the instance again */
		apply_close(a);
		if (apply_open(&cfg, &a) != 0 || apply_applied(a) != 1)
			return 22;
		if (apply_blob(a, sql, res) != 0 || res[0] != 1 || res[1] != SQLITE_OK)
			return 23;
	}
	if (query_int(a, "SELECT count(*) FROM t") != 1)
		return 30;
	apply_close(a);
	return 0;
}

/* Run fn(f->dir2, arg) in a child process and return its exit status.
 * No other thread may hold an SQLite mutex across the fork: the fixture's
 * apply (and its checkpointer) is closed meanwhile. */
static int in_child(struct fx *f, int (*fn)(const char *dir, int arg), int arg)
{
	apply_close(f->a);
	f->a = NULL;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(f->dir2, arg));
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	f->a = open_dir(f->dir, 0);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void run_ioerr_child(struct fx *f, int transient)
{
	assert_int_equal(in_child(f, ioerr_child, transient), 0);
}

/* An I/O error while applying is never the item's result: the instance is
 * rolled back and retried, and applies normally once the disk is back. */
static void test_ioerr_retried(void **state)
{
	run_ioerr_child(*state, 1);
}

/* An I/O error that persists: MTR_EIO after the retries, nothing recorded
 * and nothing reported; reopened with the disk back, the instance applies. */
static void test_ioerr_persistent(void **state)
{
	run_ioerr_child(*state, 0);
}

/* ---- a full disk (doc/apply.md "A full disk") ---- */

static void test_disk_full_class(void **state)
{
	(void)state;
	assert_true(apply_disk_full(SQLITE_FULL, 0));
	assert_true(apply_disk_full(SQLITE_IOERR_WRITE, ENOSPC));
	assert_true(apply_disk_full(SQLITE_IOERR_WRITE, EDQUOT));
	assert_false(apply_disk_full(SQLITE_IOERR_WRITE, EIO));
	assert_false(apply_disk_full(SQLITE_IOERR_FSYNC, EFBIG));
	assert_false(apply_disk_full(SQLITE_CONSTRAINT, ENOSPC));
}

struct unfill {
	struct apply *a;
	const char *filler;
	int seen_full;
	struct apply_stats at;
};

/* Once apply waits for space, let it wait through several retries (more
 * than local_retries), then free the space. */
static void *unfill_later(void *arg)
{
	struct unfill *u = arg;
	for (int i = 0; i < 10000 && !apply_full(u->a); i++)
		usleep(1000);
	u->seen_full = apply_full(u->a);
	usleep(800 * 1000);
	apply_stats(u->a, &u->at);
	unlink(u->filler);
	return NULL;
}

/*
 * In a child with a 2 MiB tmpfs as the data directory, filled: an instance
 * that writes 300 KB is rolled back and tried again every 100 ms past
 * local_retries (2) without an error line or MTR_EIO, apply_full() says so
 * meanwhile; the space freed, it applies with its real result.  A snapshot
 * restored onto the full disk fails and leaves the replica whole.  0, 77
 * (no tmpfs: skip) or the failed step.
 */
static int full_child(const char *dir, int arg)
{
	(void)arg;
	if (testutil_small_fs(dir, 2048) != 0)
		return 77;
	struct apply_config cfg = {.dir = dir, .local_retries = 2, .retry_ms = 20, .full_retry_ms = 100};
	struct apply *a = NULL;
	if (apply_open(&cfg, &a) != 0)
		return 1;
	if (apply_sql(a, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)") != 0)
		return 2;
	char filler[128];
	snprintf(filler, sizeof filler, "%s/filler", dir);
	if (testutil_fill(filler) != 0)
		return 3;
	struct unfill u = {.a = a, .filler = filler};
	pthread_t th;
	if (pthread_create(&th, NULL, unfill_later, &u) != 0)
		return 4;
	int res[2];
	int rc = apply_blob(a, "INSERT INTO t VALUES(1, zeroblob(300000))", res);
	pthread_join(th, NULL);
	struct apply_stats s;
	apply_stats(a, &s);
	if (!u.seen_full || u.at.disk_full <= cfg.local_retries)
		return 10; /* it waited, past the retries of other errors */
	if (rc != 0 || res[0] != 1 || res[1] != SQLITE_OK || apply_applied(a) != 2 || apply_full(a))
		return 11;
	if (s.local_errors != 0 || s.local_retries != 0)
		return 12; /* not an incident */
	if (query_int(a, "SELECT count(*) FROM t") != 1)
		return 13;
	/* a snapshot restored onto the full disk: MTR_ENOSPACE, the replica
	 * as it was; with room, restored */
	char snap[128];
	snprintf(snap, sizeof snap, "/tmp/mtr-apply-full-%d.db", (int)getpid());
	uint64_t inst = 0;
	if (apply_snapshot(a, snap, &inst) != 0 || inst != 2)
		return 14;
	apply_close(a);
	a = NULL;
	if (testutil_fill(filler) != 0)
		return 15;
	rc = apply_restore(dir, snap);
	unlink(filler);
	if (rc != MTR_ENOSPACE)
		return 16;
	if (apply_open(&cfg, &a) != 0 || apply_applied(a) != 2 || query_int(a, "SELECT count(*) FROM t") != 1)
		return 17;
	apply_close(a);
	rc = apply_restore(dir, snap);
	unlink(snap);
	if (rc != 0 || apply_open(&cfg, &a) != 0 || apply_applied(a) != 2)
		return 18;
	apply_close(a);
	return 0;
}

static void test_disk_full_waited(void **state)
{
	int rc = in_child(*state, full_child, 0);
	if (rc == 77)
		skip(); /* neither root nor a user namespace: no tmpfs of our own */
	assert_int_equal(rc, 0);
}

/* ---- the write budget (doc/determinism.md "The write budget") ---- */

static const char infinite_cte[] =
	"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) INSERT INTO t SELECT x, 'never' FROM c WHERE x < 0";

/* The first INT of the first row of a captured result. */
static int64_t row_int(const struct cap *c, size_t i)
{
	assert_true(c->r[i].nrows >= 1);
	assert_true(c->r[i].rows_len >= 2 + 1 + 8);
	assert_int_equal(c->r[i].rows[2], WIRE_V_INT);
	uint64_t v = 0;
	for (int k = 7; k >= 0; k--)
		v = (v << 8) | c->r[i].rows[3 + k];
	return (int64_t)v;
}

/* changes() and a result's change count do not depend on the replica's
 * history (doc/determinism.md): the result of a statement that is no
 * INSERT, UPDATE or DELETE counts 0 changes, and changes() starts from 0
 * in every instance, on a replica that ran before as on one just opened
 * (after a restart or a snapshot install: the membership.sh divergence). */
static void test_changes_deterministic(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(a)"), 0);
	const char *ins[] = {"INSERT INTO t VALUES(1), (2), (3)", "SELECT changes()", "CREATE TABLE u(b)",
			     "UPDATE t SET a = a WHERE 0"};
	assert_int_equal(apply_sqls(f->a, 2, &c, 4, ins), 0);
	assert_int_equal(c.r[0].changes, 3);
	assert_int_equal(row_int(&c, 1), 3); /* within an instance: the item before */
	assert_int_equal(c.r[1].changes, 0);
	assert_int_equal(c.r[2].changes, 0); /* DDL: not the INSERT's 3 */
	assert_int_equal(c.r[3].changes, 0);
	/* the next instance (the one before ended with the replica's own
	 * writes), then the same replica reopened as after a restart */
	assert_int_equal(apply_sql(f->a, 3, "INSERT INTO t VALUES(4), (5)"), 0);
	const char *next[] = {"SELECT changes()", "CREATE TABLE v(c)"};
	assert_int_equal(apply_sqls(f->a, 4, &c, 2, next), 0);
	assert_int_equal(row_int(&c, 0), 0);
	assert_int_equal(c.r[1].changes, 0);
	apply_close(f->a);
	f->a = open_dir(f->dir, 0);
	const char *again[] = {"SELECT changes()", "CREATE TABLE w(c)"};
	assert_int_equal(apply_sqls(f->a, 5, &c, 2, again), 0);
	assert_int_equal(row_int(&c, 0), 0);
	assert_int_equal(c.r[1].changes, 0);
}

/* One instance of one item: a statement with one INT parameter. */
static int apply_param(struct apply *a, uint64_t inst, struct cap *c, const char *sql, int64_t v)
{
	struct wire_value pv = {.type = WIRE_V_INT, .u.i = v};
	struct wire_stmt st = stmt(sql);
	st.nparams = 1;
	st.params = &pv;
	struct wire_item it = {.stream = 1, .seq = inst, .timestamp_us = 1, .seed = inst, .nstmt = 1, .stmts = &st};
	memset(c, 0, sizeof *c);
	return apply_instance(a, inst, &it, 1, on_result, c);
}

/* The infinite CTE of issue 13 fails with the budget error (default limit)
 * within seconds, its item rolls back, the next item of the same instance
 * and the next instance apply. */
static void test_budget_infinite_cte(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_max_steps(f->a), APPLY_MAX_STEPS_DEFAULT);
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(x, y)"), 0);
	const char *q[] = {"INSERT INTO t VALUES(1, 'before')", infinite_cte, "INSERT INTO t VALUES(2, 'after')",
			   "SELECT count(*) FROM t"};
	uint64_t t0 = now_mono_ns();
	assert_int_equal(apply_sqls(f->a, 2, &c, 4, q), 0);
	double s = (double)(now_mono_ns() - t0) / 1e9;
	print_message("# infinite CTE stopped by the default budget (%lld VM steps) in %.2f s\n",
		      (long long)APPLY_MAX_STEPS_DEFAULT, s);
	assert_true(s < 10);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[1].code, SQLITE_INTERRUPT);
	char want[200];
	snprintf(want, sizeof want, APPLY_BUDGET_MSG, (long long)APPLY_MAX_STEPS_DEFAULT);
	assert_string_equal(c.r[1].msg, want);
	assert_non_null(strstr(c.r[1].msg, "statement exceeded mtr_max_steps (100000000 VM steps)"));
	assert_int_equal(c.r[2].code, SQLITE_OK);
	assert_int_equal(c.r[3].code, SQLITE_OK);
	assert_int_equal(row_int(&c, 3), 2);
	assert_int_equal(apply_sql(f->a, 3, "INSERT INTO t VALUES(3, 'next instance')"), 0);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 3);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t WHERE y = 'never'"), 0);
	struct apply_stats st;
	apply_stats(f->a, &st);
	assert_int_equal(st.budget_exceeded, 1);

	/* a read-only statement over budget fails alone (no transaction
	 * rollback): same error */
	const char *r[] = {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
			   "INSERT INTO t VALUES(4, 'after the read')"};
	assert_int_equal(apply_sql(f->a, 4, "PRAGMA mtr_max_steps = 1000000"), 0);
	assert_int_equal(apply_sqls(f->a, 5, &c, 2, r), 0);
	assert_int_equal(c.r[0].code, SQLITE_INTERRUPT);
	assert_non_null(strstr(c.r[0].msg, "exceeded mtr_max_steps (1000000 VM steps)"));
	assert_int_equal(c.r[1].code, SQLITE_OK);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 4);
}

/* The default fits a large ordinary statement: 1 million rows generated,
 * then copied by INSERT ... SELECT into an indexed table (the VM steps
 * counted and the times are printed: doc/apply.md "The write budget"). */
static void test_budget_million_rows(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const char *q[] = {"CREATE TABLE src(id INTEGER PRIMARY KEY, v TEXT, r REAL)",
			   "CREATE TABLE dst(id INTEGER PRIMARY KEY, v TEXT, r REAL)", "CREATE INDEX dst_v ON dst(v)"};
	assert_int_equal(apply_sqls(f->a, 1, &c, 3, q), 0);
	const char *big[] = {
		"INSERT INTO src SELECT x, 'row ' || x, x * 0.5 FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
		"SELECT x+1 FROM c WHERE x < 1000000) SELECT x FROM c)",
		"INSERT INTO dst SELECT id, v, r FROM src",
	};
	for (int i = 0; i < 2; i++) {
		uint64_t t0 = now_mono_ns();
		assert_int_equal(apply_sqls(f->a, 2 + (uint64_t)i, &c, 1, &big[i]), 0);
		double s = (double)(now_mono_ns() - t0) / 1e9;
		assert_int_equal(c.r[0].code, SQLITE_OK);
		assert_int_equal(c.r[0].changes, 1000000);
		print_message("# 1,000,000 rows, %s: %lld VM steps counted (limit %lld), %.2f s\n",
			      i == 0 ? "generated (recursive CTE)" : "INSERT ... SELECT into an indexed table",
			      apply_item_steps(f->a, 0), (long long)APPLY_MAX_STEPS_DEFAULT, s);
		assert_true(apply_item_steps(f->a, 0) < APPLY_MAX_STEPS_DEFAULT / 2);
	}
}

/* One instance of sql(?1 = v) on replicas a and b: the steps counted, the
 * code, message and changes are the same; counts the item in *fit or
 * *over. */
static void apply_both(struct apply *a, struct apply *b, uint64_t inst, const char *sql, int64_t v, int *fit,
		       int *over)
{
	struct cap ca, cb;
	assert_int_equal(apply_param(a, inst, &ca, sql, v), 0);
	assert_int_equal(apply_param(b, inst, &cb, sql, v), 0);
	assert_int_equal(apply_item_steps(a, 0), apply_item_steps(b, 0));
	assert_int_equal(ca.r[0].code, cb.r[0].code);
	assert_string_equal(ca.r[0].msg, cb.r[0].msg);
	assert_int_equal(ca.r[0].changes, cb.r[0].changes);
	if (ca.r[0].code == SQLITE_INTERRUPT)
		(*over)++;
	else
		(*fit)++;
}

/*
 * Two replicas, one of them with a warm statement cache whose statement has
 * run before (its VM step counter is not a multiple of the grain) and one
 * reopened (cold cache) with a reader busy on the same file: items whose
 * step counts straddle the limit fail or succeed alike on both, and the
 * digests are equal.
 */
static void test_budget_replicas_agree(void **state)
{
	struct fx *f = *state;
	struct apply *b = open_dir(f->dir2, 0);
	struct apply *r[2] = {f->a, b};
	static const char ins[] =
		"INSERT INTO t SELECT x, 'r' || x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c "
		"WHERE x < ?1) SELECT x FROM c)";
	uint64_t inst = 1;
	for (int k = 0; k < 2; k++) {
		assert_int_equal(apply_sql(r[k], 1, "CREATE TABLE t(x, y)"), 0);
		assert_int_equal(apply_sql(r[k], 2, "CREATE INDEX ty ON t(y)"), 0);
		assert_int_equal(apply_sql(r[k], 3, "PRAGMA mtr_max_steps = 20000"), 0);
		assert_int_equal(apply_max_steps(r[k]), 20000);
	}
	inst = 4;
	/* warm the cached statement: 525 VM steps in 5 runs, half a grain */
	struct cap c;
	for (int64_t v = 1; v <= 5; v++) {
		assert_int_equal(apply_param(f->a, inst, &c, ins, v), 0);
		assert_int_equal(c.r[0].code, SQLITE_OK);
		assert_int_equal(apply_param(b, inst, &c, ins, v), 0);
		inst++;
	}
	apply_close(b);
	b = r[1] = open_dir(f->dir2, 0);
	sqlite3 *rd;
	assert_int_equal(apply_open_reader(b, &rd), 0);
	assert_int_equal(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM t", NULL, NULL, NULL), SQLITE_OK);
	int failed = 0, passed = 0;
	for (int64_t v = 640; v <= 760; v++) /* 29 VM steps a row: 18,600 to 22,100 */
		apply_both(f->a, b, inst++, ins, v, &passed, &failed);
	sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(rd);
	print_message("# statements straddling the limit: %d fit, %d exceeded it, alike on both replicas\n", passed,
		      failed);
	assert_true(failed > 0 && passed > 0);

	/* A virtual-table module (R*Tree) runs statements of its own, kept
	 * prepared across items: theirs count too, from the same start. */
	static const char rins[] =
		"INSERT INTO r SELECT NULL, x, x + 1 FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c "
		"WHERE x < ?1) SELECT x FROM c)";
	const char *vt[] = {"CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)", "PRAGMA mtr_max_steps = 40000"};
	for (int k = 0; k < 2; k++)
		assert_int_equal(apply_sqls(r[k], inst, NULL, 2, vt), 0);
	inst++;
	/* Each round: a write that fits leaves the module's statements of
	 * replica a with step counters at some offset; b restarts (its module
	 * statements are prepared again, at 0); then an insert near the
	 * limit: the steps counted for it are the same on both. */
	failed = passed = 0;
	for (int64_t round = 0; round < 40; round++) {
		for (int k = 0; k < 2; k++) {
			assert_int_equal(apply_param(r[k], inst, &c, rins, 3 + round % 17), 0);
			assert_int_equal(c.r[0].code, SQLITE_OK);
		}
		inst++;
		apply_close(b);
		b = r[1] = open_dir(f->dir2, 0);
		apply_both(f->a, b, inst++, rins, 150 + (round * 7) % 60, &passed, &failed);
	}
	print_message("# R*Tree inserts straddling the limit: %d fit, %d exceeded it, alike on both replicas\n", passed,
		      failed);
	assert_true(failed > 0 && passed > 0);

	/* A rollback that undoes DDL makes SQLite unload the schema; a cached
	 * statement (a) would load it again inside its step, a fresh one (b,
	 * restarted) in its prepare: not counted on either. */
	char many[300 * 40] = "";
	for (int i = 0; i < 300; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "CREATE TABLE s%d(a, b);", i);
	const char *undo[] = {"PRAGMA mtr_max_steps = 1000000", many,
			      "SAVEPOINT s; CREATE TABLE zz(a); ROLLBACK TO s; RELEASE s"};
	for (int k = 0; k < 2; k++) {
		assert_int_equal(apply_sqls(r[k], inst, NULL, 2, undo), 0);
		assert_int_equal(apply_param(r[k], inst + 1, &c, ins, 10), 0); /* cached on a */
		assert_int_equal(apply_sqls(r[k], inst + 2, &c, 1, undo + 2), 0);
		assert_int_equal(c.r[0].code, SQLITE_OK);
	}
	inst += 3;
	apply_close(b);
	b = r[1] = open_dir(f->dir2, 0);
	/* one instance: the undo, then the statement (no replica statement in
	 * between that would load the schema) */
	struct wire_value pv = {.type = WIRE_V_INT, .u.i = 2000};
	struct wire_stmt us[2] = {stmt(undo[2]), stmt(ins)};
	us[1].nparams = 1;
	us[1].params = &pv;
	struct wire_item ui[2] = {{.stream = 1, .seq = 1, .nstmt = 1, .stmts = &us[0]},
				  {.stream = 1, .seq = 2, .nstmt = 1, .stmts = &us[1]}};
	for (int k = 0; k < 2; k++) {
		memset(&c, 0, sizeof c);
		assert_int_equal(apply_instance(r[k], inst, ui, 2, on_result, &c), 0);
		assert_int_equal(c.r[1].code, SQLITE_OK);
	}
	assert_int_equal(apply_item_steps(f->a, 1), apply_item_steps(b, 1));
	inst++;
	struct digest d1, d2;
	uint64_t i1, i2;
	assert_int_equal(apply_digest(f->a, &i1, &d1), 0);
	assert_int_equal(apply_digest(b, &i2, &d2), 0);
	assert_int_equal(i1, i2);
	assert_memory_equal(&d1, &d2, sizeof d1);
	apply_close(b);
}

/* PRAGMA mtr_max_steps: an ordered item sets it in mtr_meta; it applies
 * from the next item on, rolls back with its item, survives a reopen, is
 * readable on the apply connection and on a reader. */
static void test_budget_limit_through_log(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(x, y)"), 0);
	static const char big[] = /* about 2.5 million VM steps */
		"INSERT INTO t SELECT x, 'big' FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c "
		"WHERE x < 100000) SELECT x FROM c)";
	/* set in an item, the rest of that item still has the old limit */
	struct wire_stmt t1[2] = {stmt("PRAGMA mtr_max_steps = 2000000"), stmt(big)};
	struct wire_stmt t2[1] = {stmt(big)};
	struct wire_stmt t3[1] = {stmt("PRAGMA mtr_max_steps")};
	struct wire_item it[3] = {
		{.stream = 1, .seq = 1, .flags = WIRE_ITEM_TXN, .nstmt = 2, .stmts = t1},
		{.stream = 1, .seq = 2, .nstmt = 1, .stmts = t2},
		{.stream = 1, .seq = 3, .nstmt = 1, .stmts = t3},
	};
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_instance(f->a, 2, it, 3, on_result, &c), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[1].code, SQLITE_INTERRUPT);
	assert_non_null(strstr(c.r[1].msg, "exceeded mtr_max_steps (2000000 VM steps)"));
	assert_int_equal(c.r[2].code, SQLITE_OK);
	assert_int_equal(c.r[2].ncols, 1);
	assert_int_equal(row_int(&c, 2), 2000000);
	assert_int_equal(apply_max_steps(f->a), 2000000);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 100000);
	assert_int_equal(query_int(f->a, "SELECT value FROM mtr_meta WHERE key = 'max_steps'"), 2000000);

	/* a change rolled back with its item is no change */
	const char *q[] = {"PRAGMA mtr_max_steps = 5000; INSERT INTO nosuch VALUES(1)", "PRAGMA mtr_max_steps",
			   "pragma MAIN.Mtr_Max_Steps(-5)", "PRAGMA mtr_max_steps = 'many'", "PRAGMA mtr_max_steps = 1e9",
			   "PRAGMA mtr_other = 1"};
	assert_int_equal(apply_sqls(f->a, 3, &c, 6, q), 0);
	assert_int_equal(c.r[0].code, SQLITE_ERROR);
	assert_int_equal(c.r[1].code, SQLITE_OK);
	assert_int_equal(row_int(&c, 1), 2000000);
	for (int i = 2; i < 5; i++) {
		assert_int_equal(c.r[i].code, SQLITE_ERROR);
		assert_non_null(strstr(c.r[i].msg, "PRAGMA mtr_max_steps takes an integer from 1000 to"));
	}
	assert_int_equal(c.r[5].code, SQLITE_AUTH);
	assert_non_null(strstr(c.r[5].msg, "unknown Metronome PRAGMA"));
	assert_int_equal(apply_max_steps(f->a), 2000000);

	/* a reader (a read with consistency none or session) shows it */
	struct apply_reader *rd;
	assert_int_equal(apply_reader_open(f->a, &rd), 0);
	struct wire_stmt rs[1] = {stmt("PRAGMA mtr_max_steps")};
	struct wire_item ri = {.stream = 1, .nstmt = 1, .stmts = rs, .flags = WIRE_ITEM_READ};
	uint64_t seen = 0;
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_read(rd, &ri, &seen, on_result, &c), 0);
	assert_int_equal(seen, 3);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(row_int(&c, 0), 2000000);
	apply_reader_close(rd);

	/* it is the database's: a reopened replica has it; raised, big fits */
	apply_close(f->a);
	f->a = open_dir(f->dir, 0);
	assert_int_equal(apply_max_steps(f->a), 2000000);
	const char *u[] = {"PRAGMA mtr_max_steps = 5000000", big};
	assert_int_equal(apply_sqls(f->a, 4, &c, 2, u), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[1].code, SQLITE_OK);
	assert_int_equal(c.r[1].changes, 100000);
	assert_int_equal(apply_max_steps(f->a), 5000000);
}

/* PRAGMA foreign_keys is cluster state: ordered, taken up from the next
 * instance, read back by items and readers, kept across a reopen; a
 * deferred violation fails its item alone, never the instance's COMMIT. */
static void test_foreign_keys_cluster_wide(void **state)
{
	struct fx *f = *state;
	struct cap c;
	const char *s1[] = {"CREATE TABLE p(id INTEGER PRIMARY KEY)",
			    "CREATE TABLE ch(pid REFERENCES p(id))",
			    "CREATE TABLE dd(pid REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
			    "INSERT INTO p VALUES(1)"};
	assert_int_equal(apply_sqls(f->a, 1, &c, 4, s1), 0);
	/* off (SQLite's default): an orphan goes in; set in this instance, the
	 * next item of the same instance is not yet enforced */
	const char *s2[] = {"PRAGMA foreign_keys", "INSERT INTO ch VALUES(99)", "PRAGMA foreign_keys = ON",
			    "INSERT INTO ch VALUES(98)", "PRAGMA foreign_keys = maybe"};
	assert_int_equal(apply_sqls(f->a, 2, &c, 5, s2), 0);
	assert_int_equal(row_int(&c, 0), 0);
	assert_int_equal(c.r[1].code, SQLITE_OK);
	assert_int_equal(c.r[2].code, SQLITE_OK);
	assert_int_equal(c.r[3].code, SQLITE_OK);
	assert_int_equal(c.r[4].code, SQLITE_ERROR);
	assert_non_null(strstr(c.r[4].msg, "PRAGMA foreign_keys takes ON or OFF"));
	/* from the next instance on, enforced; a deferred violation fails its
	 * item alone and the instance commits */
	const char *s3[] = {"INSERT INTO ch VALUES(97)", "INSERT INTO ch VALUES(1)", "INSERT INTO dd VALUES(5)",
			    "INSERT INTO dd VALUES(1)", "PRAGMA foreign_keys"};
	assert_int_equal(apply_sqls(f->a, 3, &c, 5, s3), 0);
	assert_int_equal(c.r[0].code, SQLITE_CONSTRAINT_FOREIGNKEY);
	assert_int_equal(c.r[1].code, SQLITE_OK);
	assert_int_equal(c.r[2].code, SQLITE_CONSTRAINT_FOREIGNKEY);
	assert_non_null(strstr(c.r[2].msg, "FOREIGN KEY constraint failed"));
	assert_int_equal(c.r[3].code, SQLITE_OK);
	assert_int_equal(row_int(&c, 4), 1);
	assert_int_equal(apply_applied(f->a), 3);
	assert_int_equal(query_int(f->a, "SELECT group_concat(pid) FROM (SELECT pid FROM ch ORDER BY rowid)"), 99);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM ch"), 3);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM dd"), 1);
	/* a reader shows the cluster's value */
	struct apply_reader *rd;
	assert_int_equal(apply_reader_open(f->a, &rd), 0);
	struct wire_stmt rs[1] = {stmt("PRAGMA foreign_keys")};
	struct wire_item ri = {.stream = 1, .nstmt = 1, .stmts = rs, .flags = WIRE_ITEM_READ};
	uint64_t seen = 0;
	memset(&c, 0, sizeof c);
	assert_int_equal(apply_read(rd, &ri, &seen, on_result, &c), 0);
	assert_int_equal(row_int(&c, 0), 1);
	apply_reader_close(rd);
	/* a reopened replica enforces it; switched off, orphans go in again */
	apply_close(f->a);
	f->a = open_dir(f->dir, 0);
	const char *s4[] = {"INSERT INTO ch VALUES(96)", "PRAGMA foreign_keys = off"};
	assert_int_equal(apply_sqls(f->a, 4, &c, 2, s4), 0);
	assert_int_equal(c.r[0].code, SQLITE_CONSTRAINT_FOREIGNKEY);
	assert_int_equal(apply_sql(f->a, 5, "INSERT INTO ch VALUES(95)"), 0);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM ch WHERE pid = 95"), 1);
}

struct stopper {
	struct apply *a;
	int ms;
};

static void *stop_thread(void *arg)
{
	struct stopper *s = arg;
	usleep((useconds_t)s->ms * 1000);
	apply_interrupt(s->a, 1);
	return NULL;
}

/* A stop while an item runs (SIGTERM: srvapply_stop_threads): the instance
 * is abandoned at once, rolled back, nothing recorded; applied again
 * later, it ends by the budget. */
static void test_budget_stop(void **state)
{
	struct fx *f = *state;
	struct cap c;
	assert_int_equal(apply_sql(f->a, 1, "CREATE TABLE t(x, y)"), 0);
	assert_int_equal(apply_sql(f->a, 2, "PRAGMA mtr_max_steps = 1000000000000"), 0);
	const char *q[] = {"INSERT INTO t VALUES(1, 'before')", infinite_cte};
	struct stopper sp = {.a = f->a, .ms = 300};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, stop_thread, &sp), 0);
	uint64_t t0 = now_mono_ns();
	assert_int_equal(apply_sqls(f->a, 3, &c, 2, q), MTR_ECLOSED);
	double s = (double)(now_mono_ns() - t0) / 1e9;
	pthread_join(th, NULL);
	print_message("# stop honoured %.3f s after the apply started (stop at 0.3 s)\n", s);
	assert_true(s < 2);
	assert_int_equal(c.n, 0);
	assert_int_equal(apply_applied(f->a), 2);
	assert_int_equal(apply_sql(f->a, 3, "INSERT INTO t VALUES(0, 'x')"), MTR_ECLOSED);
	apply_interrupt(f->a, 0);
	apply_close(f->a); /* the restart */
	f->a = open_dir(f->dir, 0);
	assert_int_equal(apply_sql(f->a, 3, "PRAGMA mtr_max_steps = 3000000"), 0);
	assert_int_equal(apply_sqls(f->a, 4, &c, 2, q), 0);
	assert_int_equal(c.r[0].code, SQLITE_OK);
	assert_int_equal(c.r[1].code, SQLITE_INTERRUPT);
	assert_int_equal(query_int(f->a, "SELECT count(*) FROM t"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exactly_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_from, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_protected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_item_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_control_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params_and_returning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_statement_and_decoded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_temp_item, setup, teardown),
		cmocka_unit_test_setup_teardown(test_item_without_savepoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resend_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resend_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpointer_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_reader_holds_restart, setup, teardown),
		cmocka_unit_test(test_local_error_class),
		cmocka_unit_test_setup_teardown(test_ioerr_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ioerr_persistent, setup, teardown),
		cmocka_unit_test(test_disk_full_class),
		cmocka_unit_test_setup_teardown(test_disk_full_waited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_infinite_cte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_million_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_replicas_agree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_limit_through_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_keys_cluster_wide, setup, teardown),
	};
	return cmocka_run_group_tests_name("apply", tests, NULL, NULL);
}
