/*
 * test_clustervt.c - the cluster tables: rows from a fake provider, WHERE,
 * read-only, present on the apply connection and on readers, and mtr_digest
 * equal on two replicas with the same history.
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

#include "apply.h"
#include "clustervt.h"
#include "metronome.h"
#include "../testutil.h"

/* ---- a fake provider ---- */

struct fake {
	int fills;
	int fail;
};

static struct wire_value vint(int64_t i)
{
	struct wire_value v = {.type = WIRE_V_INT};
	v.u.i = i;
	return v;
}

static struct wire_value vtext(const char *s)
{
	struct wire_value v = {.type = WIRE_V_TEXT};
	v.u.b.p = s;
	v.u.b.n = (uint32_t)strlen(s);
	return v;
}

static int fake_fill(void *arg, enum clustervt_table t, struct clustervt_sink *s)
{
	struct fake *fk = arg;
	fk->fills++;
	if (fk->fail)
		return MTR_EAGAIN;
	char addr[32];
	switch (t) {
	case CLUSTERVT_MEMBERS:
		for (int i = 1; i <= 3; i++) {
			snprintf(addr, sizeof addr, "10.0.0.%d:7000", i);
			struct wire_value row[8] = {vint(i), vtext(addr), vtext(i == 1 ? "leader" : "acceptor"),
						    vint(i != 3), vint(100), vint(100 - i), vtext(i == 2 ? "disk full" : "ok"),
						    vtext(i == 3 ? "learner" : "voter")};
			assert_int_equal(clustervt_sink_row(s, row, 8), 0);
		}
		/* a wrong column count is refused */
		assert_int_equal(clustervt_sink_row(s, NULL, 2), MTR_EINVAL);
		return 0;
	case CLUSTERVT_STREAMS:
		for (int i = 1; i <= 2; i++) {
			struct wire_value row[3] = {vint(i), vint(77), vint(1000 * i)};
			assert_int_equal(clustervt_sink_row(s, row, 3), 0);
		}
		return 0;
	case CLUSTERVT_INSTANCES: {
		struct wire_value row[6] = {vint(100), vtext("[(77,1,2000)]"), vint(2000), vint(1500), vint(7000), vint(3000)};
		return clustervt_sink_row(s, row, 6);
	}
	case CLUSTERVT_STATS:
		for (int i = 0; i < 3; i++) {
			snprintf(addr, sizeof addr, "server %d", i);
			struct wire_value row[4] = {vtext(addr), vtext("transport.drop.integrity"), vint(10 * i),
						    vint(i * 500)};
			assert_int_equal(clustervt_sink_row(s, row, 4), 0);
		}
		return 0;
	}
	return MTR_EINVAL;
}

/* ---- Fixture ---- */

struct fx {
	char dir[2][64];
	struct apply *r[2];
	struct fake fk;
	struct clustervt_provider p;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	f->p.arg = &f->fk;
	f->p.fill = fake_fill;
	for (int i = 0; i < 2; i++) {
		if (testutil_mkdtemp(f->dir[i], sizeof f->dir[i], "mtr-cvt") != 0)
			return -1;
		struct apply_config cfg = {.dir = f->dir[i], .provider = &f->p};
		if (apply_open(&cfg, &f->r[i]) != 0)
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 2; i++) {
		apply_close(f->r[i]);
		assert_int_equal(testutil_rmtree(f->dir[i]), 0);
	}
	free(f);
	return 0;
}

/* ---- Helpers ---- */

/* First column of the first row as text (malloc'd), or NULL on error. */
static char *q1(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return NULL;
	char *out = NULL;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		out = strdup(sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0) : "NULL");
	else if (rc == SQLITE_DONE)
		out = strdup("");
	sqlite3_finalize(s);
	return out;
}

static void expect(sqlite3 *db, const char *sql, const char *want)
{
	char *got = q1(db, sql);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* The outcome of the one item of an apply1 call. */
struct outcome {
	int code;
	char msg[256];
};

static void on_result(void *arg, size_t index, const struct wire_item *item, const struct apply_result *res)
{
	(void)index;
	(void)item;
	struct outcome *o = arg;
	o->code = res->code;
	if (res->code && res->nstmt && res->stmts[res->nstmt - 1].errmsg)
		snprintf(o->msg, sizeof o->msg, "%s", res->stmts[res->nstmt - 1].errmsg);
}

static void apply1(struct apply *a, uint64_t inst, const char *sql, struct outcome *out)
{
	struct wire_stmt st = {.sql = sql, .sql_len = (uint32_t)strlen(sql)};
	struct wire_item it = {.stream = 1, .seq = inst, .nstmt = 1, .stmts = &st};
	assert_int_equal(apply_instance(a, inst, &it, 1, out ? on_result : NULL, out), 0);
}

/* ---- tables ---- */

static void test_members_where(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	assert_int_equal(apply_open_reader(f->r[0], &db), 0);
	expect(db, "SELECT count(*) FROM mtr_members", "3");
	expect(db, "SELECT address FROM mtr_members WHERE role = 'leader'", "10.0.0.1:7000");
	expect(db, "SELECT group_concat(id) FROM mtr_members WHERE alive AND applied < chosen", "1,2");
	expect(db, "SELECT group_concat(id) FROM mtr_members WHERE state = 'disk full'", "2");
	expect(db, "SELECT group_concat(id) FROM mtr_members WHERE membership = 'voter'", "1,2");
	expect(db, "SELECT sum(watermark) FROM mtr_streams WHERE stream = 77", "3000");
	expect(db,
	       "SELECT ranges || ' ' || items || ' ' || apply_us || ' ' || steps || ' ' || max_item_steps FROM "
	       "mtr_instances WHERE instance = 100",
	       "[(77,1,2000)] 2000 1500 7000 3000");
	expect(db, "SELECT m.address FROM mtr_members m JOIN mtr_streams s ON s.server = m.id WHERE s.watermark = 2000",
	       "10.0.0.2:7000");
	expect(db, "SELECT sum(value) || ' ' || max(age_ms) FROM mtr_stats WHERE name = 'transport.drop.integrity'",
	       "30 1000");
	expect(db, "SELECT value FROM mtr_stats WHERE process = 'server 2'", "20");
	assert_true(f->fk.fills >= 6);
	/* read-only */
	assert_null(q1(db, "DELETE FROM mtr_members"));
	/* a provider error fails the query with a message */
	f->fk.fail = 1;
	assert_null(q1(db, "SELECT * FROM mtr_members"));
	assert_non_null(strstr(sqlite3_errmsg(db), "mtr_members"));
	f->fk.fail = 0;
	sqlite3_close(db);
}

static void test_on_apply_connection(void **state)
{
	struct fx *f = *state;
	/* An item may not read the tables of one replica's own state (DESIGN.md
	 * invariant 6): each replica would write something else.  Every such
	 * table is refused with a message, even with count(*) (no column). */
	static const char *const own[] = {"mtr_members", "mtr_streams", "mtr_instances", "mtr_stats"};
	uint64_t inst = 0;
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
		char sql[128];
		snprintf(sql, sizeof sql, "CREATE TABLE snap AS SELECT count(*) AS n FROM %s", own[i]);
		struct outcome o = {0};
		apply1(f->r[0], ++inst, sql, &o);
		assert_int_equal(o.code, SQLITE_ERROR);
		assert_non_null(strstr(o.msg, own[i]));
		assert_non_null(strstr(o.msg, "consistency none or session"));
	}
	/* mtr_digest is computed from the database itself: the same everywhere */
	struct outcome o = {0};
	apply1(f->r[0], ++inst, "CREATE TABLE snap AS SELECT instance, digest FROM mtr_digest", &o);
	assert_int_equal(o.code, SQLITE_OK);
	sqlite3 *db;
	assert_int_equal(apply_open_reader(f->r[0], &db), 0);
	expect(db, "SELECT count(*) FROM snap", "1");
	expect(db, "SELECT count(*) FROM mtr_members", "3"); /* a reader shows them */
	sqlite3_close(db);
}

/* The other replica-local sources (src/common/localsrc.h): the front end
 * refuses them by name; a view hides the name (and an item that did not
 * come through the front end names them), so the apply connection denies
 * them too.  (SQLite itself refuses a virtual table such as dbstat inside
 * a view on a connection that does not trust the schema.)  A reader may
 * use them. */
static void test_local_sources_on_apply_connection(void **state)
{
	struct fx *f = *state;
	static const char *const cases[][3] = {
		{"CREATE VIEW v1 AS SELECT sqlite_version() AS x", "CREATE TABLE s1 AS SELECT x FROM v1", "sqlite_version()"},
		{"CREATE VIEW v2 AS SELECT total_changes() AS x", "CREATE TABLE s2 AS SELECT x FROM v2", "total_changes()"},
		{"CREATE VIEW v3 AS SELECT sqlite_compileoption_used('THREADSAFE') AS x",
		 "CREATE TABLE s3 AS SELECT x FROM v3", "sqlite_compileoption_used()"},
		{NULL, "CREATE TABLE s4 AS SELECT pgsize FROM dbstat", "dbstat"},
		{NULL, "CREATE TABLE s5 AS SELECT name FROM pragma_function_list", "pragma_function_list"},
		{NULL, "CREATE TABLE s6 AS SELECT * FROM pragma_integrity_check", "pragma_integrity_check"},
	};
	uint64_t inst = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct outcome o = {0};
		if (cases[i][0] != NULL) {
			apply1(f->r[0], ++inst, cases[i][0], &o);
			assert_int_equal(o.code, SQLITE_OK); /* defining one reads nothing */
		}
		memset(&o, 0, sizeof o);
		apply1(f->r[0], ++inst, cases[i][1], &o);
		if (o.code == SQLITE_OK || !strstr(o.msg, "is replica-local") || !strstr(o.msg, cases[i][2]))
			fail_msg("%s: code %d: %s", cases[i][1], o.code, o.msg);
	}
	sqlite3 *db;
	assert_int_equal(apply_open_reader(f->r[0], &db), 0);
	expect(db, "SELECT count(*) FROM sqlite_master WHERE name GLOB 's[0-9]'", "0");
	expect(db, "SELECT x = sqlite_version() FROM v1", "1"); /* a read may */
	sqlite3_close(db);
}

/* last_insert_rowid() inside an item sees the item's own inserts only: the
 * connection's value would depend on what ran before on this replica (none
 * after a restart). */
static void test_last_insert_rowid_per_item(void **state)
{
	struct fx *f = *state;
	uint64_t inst = 0;
	apply1(f->r[0], ++inst, "CREATE TABLE t(a INTEGER PRIMARY KEY, b)", NULL);
	apply1(f->r[0], ++inst, "INSERT INTO t(a, b) VALUES (41, 'x')", NULL);
	apply1(f->r[0], ++inst, "INSERT INTO t(b) VALUES (last_insert_rowid())", NULL);
	struct wire_stmt st[2] = {
		{.sql = "INSERT INTO t(a, b) VALUES (50, 'y')", .sql_len = 36},
		{.sql = "INSERT INTO t(b) VALUES (last_insert_rowid())", .sql_len = 45},
	};
	struct wire_item it = {.stream = 1, .seq = ++inst, .nstmt = 2, .stmts = st};
	assert_int_equal(apply_instance(f->r[0], inst, &it, 1, NULL, NULL), 0);
	sqlite3 *db;
	assert_int_equal(apply_open_reader(f->r[0], &db), 0);
	expect(db, "SELECT group_concat(a || ':' || b, ' ') FROM t", "41:x 42:0 50:y 51:50");
	sqlite3_close(db);
}

static void test_digest_table(void **state)
{
	struct fx *f = *state;
	const char *h[] = {"CREATE TABLE t(id INTEGER PRIMARY KEY, v)", "INSERT INTO t(v) VALUES('a'), (2), (3.5)"};
	for (int i = 0; i < 2; i++) {
		apply1(f->r[0], (uint64_t)i + 1, h[i], NULL);
		apply1(f->r[1], (uint64_t)i + 1, h[i], NULL);
	}
	sqlite3 *a, *b;
	assert_int_equal(apply_open_reader(f->r[0], &a), 0);
	assert_int_equal(apply_open_reader(f->r[1], &b), 0);
	char *da = q1(a, "SELECT instance || ' ' || digest FROM mtr_digest");
	char *db = q1(b, "SELECT instance || ' ' || digest FROM mtr_digest");
	assert_non_null(da);
	assert_non_null(db);
	assert_string_equal(da, db);
	assert_int_equal(strncmp(da, "2 ", 2), 0);
	assert_int_equal(strlen(da), 2 + 32);
	/* the same as apply_digest */
	struct digest d;
	uint64_t inst;
	char hex[DIGEST_HEX_SIZE];
	assert_int_equal(apply_digest(f->r[0], &inst, &d), 0);
	digest_hex(&d, hex);
	assert_string_equal(da + 2, hex);
	free(da);
	free(db);
	apply1(f->r[1], 3, "DELETE FROM t WHERE id = 2", NULL);
	apply1(f->r[0], 3, "DELETE FROM t WHERE id = 3", NULL);
	da = q1(a, "SELECT digest FROM mtr_digest");
	db = q1(b, "SELECT digest FROM mtr_digest");
	assert_string_not_equal(da, db);
	free(da);
	free(db);
	sqlite3_close(a);
	sqlite3_close(b);
}

/* Without a provider the tables exist and are empty. */
static void test_no_provider(void **state)
{
	(void)state;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(clustervt_register(db, NULL, 1), 0);
	expect(db, "SELECT count(*) FROM mtr_members", "0");
	expect(db, "SELECT count(*) FROM mtr_streams", "0");
	expect(db, "SELECT instance IS NULL FROM mtr_digest", "1");
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_members_where, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_apply_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_sources_on_apply_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_insert_rowid_per_item, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_table, setup, teardown),
		cmocka_unit_test(test_no_provider),
	};
	return cmocka_run_group_tests_name("clustervt", tests, NULL, NULL);
}
