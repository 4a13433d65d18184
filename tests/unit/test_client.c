/*
 * test_client.c - libmetronome against a fake proxy.
 *
 * Fixture: a thread plays two proxies on loopback (tests/tools/fakeproxy.h)
 * speaking the client protocol and running every request on an in-memory
 * SQLite database; markers in the SQL make it hang, say busy or refuse,
 * and it can drop connections to test failover.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metronome.h"

/* ---- Fixture: the fake proxy (tests/tools/fakeproxy.h) ---- */

#define FAKE_CHECK(cond) assert_true(cond)
#include "../tools/fakeproxy.h"

static int setup(void **state)
{
	memset(&F, 0, sizeof F);
	for (int i = 0; i < FAKE_MAXCONN; i++)
		F.conns[i].fd = -1;
	pthread_mutex_init(&F.mu, NULL);
	if (sqlite3_open(":memory:", &F.db) != SQLITE_OK)
		return -1;
	for (int i = 0; i < 2; i++)
		if ((F.lfd[i] = fake_listen(&F.port[i])) < 0)
			return -1;
	if (pipe(F.stop) != 0 || pthread_create(&F.th, NULL, fake_main, NULL) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	if (write(F.stop[1], "x", 1) != 1)
		return -1;
	pthread_join(F.th, NULL);
	for (int i = 0; i < FAKE_MAXCONN; i++)
		if (F.conns[i].fd >= 0)
			fake_drop(&F.conns[i]);
	close(F.lfd[0]);
	close(F.lfd[1]);
	close(F.stop[0]);
	close(F.stop[1]);
	sqlite3_close(F.db);
	pthread_mutex_destroy(&F.mu);
	return 0;
}

/* ---- Helpers ---- */

/* Open a handle on proxy 0 (and 1 when both), with extra URI options. */
static mtr *open_fake(int both, const char *opts)
{
	char uri[256];
	if (both)
		snprintf(uri, sizeof uri, "mtr://127.0.0.1:%d,127.0.0.1:%d%s%s", F.port[0], F.port[1],
			 opts ? "?" : "", opts ? opts : "");
	else
		snprintf(uri, sizeof uri, "mtr://127.0.0.1:%d%s%s", F.port[0], opts ? "?" : "", opts ? opts : "");
	mtr *db = NULL;
	int rc = mtr_open(uri, &db);
	if (rc)
		fail_msg("mtr_open(%s): %s", uri, mtr_errmsg(db));
	return db;
}

static int fake_get(int *field)
{
	pthread_mutex_lock(&F.mu);
	int v = *field;
	pthread_mutex_unlock(&F.mu);
	return v;
}

/* The single integer a query returns (run directly on the fake's db). */
static int64_t fake_scalar(const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;
	pthread_mutex_lock(&F.mu);
	if (sqlite3_prepare_v2(F.db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	pthread_mutex_unlock(&F.mu);
	return v;
}

/* ---- mtr_open ---- */

static void test_open_bad_uri(void **state)
{
	static const char *const bad[] = {
		"http://x",       "mtr://",          "mtr://h:0",           "mtr://h:99999",
		"mtr://h?x=1",    "mtr://h?timeout", "mtr://h?timeout=abc", "mtr://h?consistency=strong",
		"mtr://h?key=12", "mtr://[::1",      "mtr://a,,b",
		/* TLS: a bad mode, ca= without tls=, an unreadable or empty ca= */
		"mtr://h?tls=yes", "mtr://h?ca=/etc/hostname", "mtr://h?tls=require&ca=/nonexistent/ca.pem",
		"mtr://h?tls=require&ca=", "mtr://h?tls=require&ca=/etc/hostname",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		mtr *db = NULL;
		int rc = mtr_open(bad[i], &db);
		if (rc != MTR_EINVAL)
			fail_msg("%s: %s", bad[i], mtr_errname(rc));
		assert_non_null(db);
		assert_int_equal(mtr_errcode(db), MTR_EINVAL);
		assert_true(strlen(mtr_errmsg(db)) > 5);
		mtr_close(db);
	}
	mtr *db;
	/* embedded mode without a server list */
	assert_int_equal(mtr_open("mtr+embedded://", &db), MTR_EINVAL);
	assert_non_null(strstr(mtr_errmsg(db), "names no server"));
	mtr_close(db);
	/* the embedded mode needs no TLS and refuses its options */
	assert_int_equal(mtr_open("mtr+embedded://127.0.0.1:1?tls=require", &db), MTR_EINVAL);
	assert_non_null(strstr(mtr_errmsg(db), "needs no TLS"));
	mtr_close(db);
	assert_int_equal(mtr_open("mtr://h?tls=require&ca=/nonexistent/ca.pem", &db), MTR_EINVAL);
	assert_non_null(strstr(mtr_errmsg(db), "cannot read it"));
	mtr_close(db);
	assert_int_equal(mtr_open("mtr+embedded://127.0.0.1:1?cluster=0", &db), MTR_ECONFIG);
	assert_non_null(strstr(mtr_errmsg(db), "cluster.id"));
	mtr_close(db);
}

static void test_open_refused(void **state)
{
	/* A port nobody listens on: take one and close it. */
	int port;
	int fd = fake_listen(&port);
	assert_true(fd >= 0);
	close(fd);
	char uri[64];
	snprintf(uri, sizeof uri, "mtr://127.0.0.1:%d?timeout=500", port);
	mtr *db;
	assert_int_equal(mtr_open(uri, &db), MTR_ECONNECT);
	assert_int_equal(mtr_errcode(db), MTR_ECONNECT);
	assert_non_null(strstr(mtr_errmsg(db), "cannot connect"));
	mtr_close(db);
	/* an IPv6 address in brackets parses (and nobody listens on port 1) */
	assert_int_equal(mtr_open("mtr://[::1]:1?timeout=500", &db), MTR_ECONNECT);
	mtr_close(db);
}

static void test_open_hello(void **state)
{
	mtr *db = open_fake(0, "consistency=linearizable&timeout=2000&key=000102030405060708090a0b0c0d0e0f");
	assert_int_equal(fake_get(&F.hellos[0]), 1);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.consistency[0], CPROTO_CONS_LINEARIZABLE);
	assert_true(F.client_id[0] != 0);
	pthread_mutex_unlock(&F.mu);
	assert_int_equal(mtr_errcode(db), 0);
	assert_string_equal(mtr_errmsg(db), "not an error");
	mtr_close(db);
}

/* ---- mtr_exec ---- */

struct collected {
	int rows;
	char text[512];
};

static int collect(void *arg, int n, char **vals, char **names)
{
	struct collected *c = arg;
	size_t l = strlen(c->text);
	for (int i = 0; i < n; i++)
		l += (size_t)snprintf(c->text + l, sizeof c->text - l, "%s%s=%s", i ? "," : "", names[i],
				      vals[i] ? vals[i] : "NULL");
	snprintf(c->text + l, sizeof c->text - l, ";");
	c->rows++;
	return 0;
}

static int stop_at_first(void *arg, int n, char **vals, char **names)
{
	(*(int *)arg)++;
	return 1;
}

static void test_exec_callback(void **state)
{
	mtr *db = open_fake(0, NULL);
	char *err = (char *)1;
	assert_int_equal(mtr_exec(db, "CREATE TABLE e(a INTEGER, b TEXT); INSERT INTO e VALUES(1,'x'),(2,NULL);", NULL,
				  NULL, &err),
			 0);
	assert_null(err);
	assert_int_equal(mtr_changes(db), 2);
	struct collected c = {0};
	assert_int_equal(mtr_exec(db, "SELECT a, b AS bee FROM e ORDER BY a; SELECT 2.5 AS r", collect, &c, NULL), 0);
	assert_int_equal(c.rows, 3);
	assert_string_equal(c.text, "a=1,bee=x;a=2,bee=NULL;r=2.5;");
	int calls = 0;
	assert_int_equal(mtr_exec(db, "SELECT a FROM e", stop_at_first, &calls, &err), MTR_EABORT);
	assert_int_equal(calls, 1);
	assert_non_null(err);
	mtr_free(err);
	assert_int_equal(mtr_exec(db, "INSERT INTO nosuch VALUES(1)", NULL, NULL, &err), MTR_ESQL);
	assert_non_null(strstr(err, "no such table"));
	mtr_free(err);
	assert_true(mtr_last_instance(db) > 0);
	mtr_close(db);
}

/* ---- prepare / bind / step / column ---- */

static void test_bind_every_type(void **state)
{
	mtr *db = open_fake(0, NULL);
	assert_int_equal(mtr_exec(db, "CREATE TABLE v(i, r, t, b, n)", NULL, NULL, NULL), 0);
	mtr_stmt *st;
	const char *sql = "INSERT INTO v VALUES(?1, :r, @t, $b, ?5)";
	assert_int_equal(mtr_prepare(db, sql, -1, &st, NULL), 0);
	assert_int_equal(mtr_bind_parameter_count(st), 5);
	assert_int_equal(mtr_bind_parameter_index(st, ":r"), 2);
	assert_int_equal(mtr_bind_parameter_index(st, "@t"), 3);
	assert_int_equal(mtr_bind_parameter_index(st, "$b"), 4);
	assert_int_equal(mtr_bind_parameter_index(st, ":nope"), 0);
	assert_string_equal(mtr_bind_parameter_name(st, 2), ":r");
	assert_string_equal(mtr_bind_parameter_name(st, 1), "?1");
	assert_null(mtr_bind_parameter_name(st, 9));
	assert_int_equal(mtr_bind_int64(st, 6, 1), MTR_EINVAL);
	assert_int_equal(mtr_bind_int64(st, 0, 1), MTR_EINVAL);

	static const uint8_t blob[] = {0, 1, 2, 0xff, 0};
	assert_int_equal(mtr_bind_int64(st, 1, INT64_MIN + 7), 0);
	assert_int_equal(mtr_bind_double(st, mtr_bind_parameter_index(st, ":r"), -1.25), 0);
	assert_int_equal(mtr_bind_text(st, mtr_bind_parameter_index(st, "@t"), "héllo world", 6), 0);
	assert_int_equal(mtr_bind_blob(st, mtr_bind_parameter_index(st, "$b"), blob, sizeof blob), 0);
	assert_int_equal(mtr_bind_null(st, 5), 0);
	assert_int_equal(mtr_step(st), MTR_DONE);
	assert_int_equal(mtr_changes(db), 1);
	assert_int_equal(mtr_last_insert_rowid(db), 1);
	/* Step again after DONE: runs again with the same bindings. */
	assert_int_equal(mtr_bind_text(st, 3, "second", -1), 0);
	assert_int_equal(mtr_step(st), MTR_DONE);
	assert_int_equal(mtr_last_insert_rowid(db), 2);
	assert_int_equal(mtr_finalize(st), 0);

	assert_int_equal(mtr_prepare(db, "SELECT i, r, t, b, n, 42 AS k FROM v ORDER BY rowid", -1, &st, NULL), 0);
	assert_int_equal(mtr_step(st), MTR_ROW);
	assert_int_equal(mtr_column_count(st), 6);
	assert_string_equal(mtr_column_name(st, 5), "k");
	assert_null(mtr_column_name(st, 6));
	assert_int_equal(mtr_column_type(st, 0), MTR_INTEGER);
	assert_true(mtr_column_int64(st, 0) == INT64_MIN + 7);
	assert_int_equal(mtr_column_type(st, 1), MTR_FLOAT);
	assert_true(mtr_column_double(st, 1) == -1.25);
	assert_string_equal((const char *)mtr_column_text(st, 1), "-1.25");
	assert_int_equal(mtr_column_int64(st, 1), -1);
	assert_int_equal(mtr_column_type(st, 2), MTR_TEXT);
	assert_string_equal((const char *)mtr_column_text(st, 2), "h\xc3\xa9llo");
	assert_int_equal(mtr_column_bytes(st, 2), 6);
	assert_int_equal(mtr_column_type(st, 3), MTR_BLOB);
	assert_int_equal(mtr_column_bytes(st, 3), sizeof blob);
	assert_memory_equal(mtr_column_blob(st, 3), blob, sizeof blob);
	assert_int_equal(mtr_column_type(st, 4), MTR_NULL);
	assert_null(mtr_column_text(st, 4));
	assert_int_equal(mtr_column_bytes(st, 4), 0);
	assert_int_equal(mtr_column_int64(st, 4), 0);
	assert_string_equal((const char *)mtr_column_text(st, 5), "42");
	assert_int_equal(mtr_column_bytes(st, 5), 2);
	assert_true(mtr_column_double(st, 5) == 42.0);
	/* binding while rows are being read */
	assert_int_equal(mtr_bind_int64(st, 1, 1), MTR_EBUSY); /* rows are being read */
	assert_int_equal(mtr_step(st), MTR_ROW);
	assert_string_equal((const char *)mtr_column_text(st, 2), "second");
	assert_int_equal(mtr_step(st), MTR_DONE);
	assert_int_equal(mtr_column_type(st, 0), MTR_NULL); /* no current row */
	assert_int_equal(mtr_reset(st), 0);
	assert_int_equal(mtr_step(st), MTR_ROW);
	assert_int_equal(mtr_finalize(st), 0);

	/* a value bound again reuses its buffer: longer, shorter, empty, and
	 * text over blob; each run sends what was bound last */
	assert_int_equal(mtr_prepare(db, "INSERT INTO v(t, b) VALUES(?, ?)", -1, &st, NULL), 0);
	static const char *texts[] = {"ab", "a much longer text than before", "xyz", "", "last one"};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(mtr_bind_text(st, 1, texts[i], -1), 0);
		if (i % 2)
			assert_int_equal(mtr_bind_blob(st, 2, texts[4 - i], (int)strlen(texts[4 - i])), 0);
		else
			assert_int_equal(mtr_bind_text(st, 2, texts[4 - i], -1), 0);
		assert_int_equal(mtr_step(st), MTR_DONE);
	}
	assert_int_equal(mtr_finalize(st), 0);
	assert_int_equal(mtr_prepare(db, "SELECT t, typeof(b), CAST(b AS TEXT) FROM v WHERE rowid > 2 ORDER BY rowid", -1,
				     &st, NULL),
			 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(mtr_step(st), MTR_ROW);
		assert_string_equal((const char *)mtr_column_text(st, 0), texts[i]);
		assert_string_equal((const char *)mtr_column_text(st, 1), i % 2 ? "blob" : "text");
		assert_string_equal((const char *)mtr_column_text(st, 2), texts[4 - i]);
	}
	assert_int_equal(mtr_step(st), MTR_DONE);
	assert_int_equal(mtr_finalize(st), 0);

	/* text to number conversions, and whole-number REAL text */
	assert_int_equal(mtr_prepare(db, "SELECT ' 12abc', '3.5e1', 2.0, 1e300", -1, &st, NULL), 0);
	assert_int_equal(mtr_step(st), MTR_ROW);
	assert_int_equal(mtr_column_int64(st, 0), 12);
	assert_true(mtr_column_double(st, 1) == 35.0);
	assert_string_equal((const char *)mtr_column_text(st, 2), "2.0");
	assert_true(mtr_column_int64(st, 3) == INT64_MAX);
	mtr_finalize(st);

	/* SQLite's int and zeroblob binds, int column and data count */
	assert_int_equal(mtr_prepare(db, "SELECT ?1, typeof(?2), length(?2), hex(?2), typeof(?3), 4294967298", -1, &st,
				     NULL),
			 0);
	assert_int_equal(mtr_data_count(st), 0); /* not run yet */
	assert_int_equal(mtr_bind_int(st, 1, -123456), 0);
	assert_int_equal(mtr_bind_zeroblob(st, 2, 3), 0);
	assert_int_equal(mtr_bind_zeroblob(st, 3, -1), 0);
	assert_int_equal(mtr_step(st), MTR_ROW);
	assert_int_equal(mtr_data_count(st), 6);
	assert_int_equal(mtr_column_int(st, 0), -123456);
	assert_string_equal((const char *)mtr_column_text(st, 1), "blob");
	assert_int_equal(mtr_column_int(st, 2), 3);
	assert_string_equal((const char *)mtr_column_text(st, 3), "000000");
	assert_string_equal((const char *)mtr_column_text(st, 4), "blob");
	assert_int_equal(mtr_column_int(st, 5), 2); /* the low 32 bits, as sqlite3_column_int */
	assert_int_equal(mtr_step(st), MTR_DONE);
	assert_int_equal(mtr_data_count(st), 0);
	mtr_finalize(st);
	mtr_close(db);
}

static void test_bind_busy_and_clear(void **state)
{
	mtr *db = open_fake(0, NULL);
	mtr_stmt *st;
	assert_int_equal(mtr_prepare(db, "SELECT ?1 UNION ALL SELECT ?1", -1, &st, NULL), 0);
	assert_int_equal(mtr_bind_int64(st, 1, 5), 0);
	assert_int_equal(mtr_step(st), MTR_ROW);
	assert_int_equal(mtr_column_int64(st, 0), 5);
	assert_int_equal(mtr_bind_int64(st, 1, 6), MTR_EBUSY);
	assert_int_equal(mtr_clear_bindings(st), MTR_EBUSY);
	assert_int_equal(mtr_reset(st), 0);
	assert_int_equal(mtr_clear_bindings(st), 0);
	assert_int_equal(mtr_step(st), MTR_ROW);
	assert_int_equal(mtr_column_type(st, 0), MTR_NULL);
	mtr_finalize(st);
	/* statements left open are freed by mtr_close */
	assert_int_equal(mtr_prepare(db, "SELECT 1", -1, &st, NULL), 0);
	mtr_close(db);
}

static void test_prepare_tail(void **state)
{
	mtr *db = open_fake(0, NULL);
	const char *sql = "SELECT 1; SELECT 2 ;  -- end\n";
	mtr_stmt *st;
	const char *tail;
	assert_int_equal(mtr_prepare(db, sql, -1, &st, &tail), 0);
	assert_string_equal(mtr_sql(st), "SELECT 1");
	assert_true(mtr_stmt_readonly(st));
	assert_string_equal(tail, "SELECT 2 ;  -- end\n");
	mtr_finalize(st);
	assert_int_equal(mtr_prepare(db, tail, -1, &st, &tail), 0);
	assert_string_equal(mtr_sql(st), "SELECT 2");
	mtr_finalize(st);
	assert_int_equal(mtr_prepare(db, tail, -1, &st, &tail), 0);
	assert_null(st);
	assert_int_equal(*tail, 0);
	/* nbytes cuts the text */
	assert_int_equal(mtr_prepare(db, "SELECT 7; garbage here", 8, &st, NULL), 0);
	assert_string_equal(mtr_sql(st), "SELECT 7");
	mtr_finalize(st);
	/* nothing was sent by prepare */
	assert_int_equal(fake_get(&F.queries[0]), 0);
	mtr_close(db);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
	mtr *db = open_fake(0, NULL);
	mtr_stmt *st;
	assert_int_equal(mtr_prepare(db, "SELECT 1;\nSELEKT 2", -1, &st, NULL), 0);
	mtr_finalize(st);
	assert_int_equal(mtr_prepare(db, "\n  SELEKT 2", -1, &st, NULL), MTR_ESYNTAX);
	assert_null(st);
	assert_int_equal(mtr_errcode(db), MTR_ESYNTAX);
	assert_true(strncmp(mtr_errmsg(db), "line 2, column 3: near \"SELEKT\": syntax error", 45) == 0);
	assert_null(strstr(mtr_errmsg(db), " at line"));
	assert_int_equal(mtr_prepare(db, "INSERT INTO t VALUES(random())", -1, &st, NULL), 0);
	mtr_finalize(st);
	assert_int_equal(mtr_prepare(db, "SELECT /*refuse*/ 1", -1, &st, NULL), 0);
	assert_int_equal(mtr_step(st), MTR_EREFUSED);
	assert_string_equal(mtr_errmsg(db), "line 1, column 8: refused here");
	assert_int_equal(mtr_extended_errcode(db), 0);
	mtr_finalize(st);

	assert_int_equal(mtr_exec(db, "CREATE TABLE pk(id INTEGER PRIMARY KEY, v TEXT NOT NULL)", NULL, NULL, NULL),
			 0);
	assert_int_equal(mtr_exec(db, "INSERT INTO pk VALUES(1, 'a')", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_exec(db, "INSERT INTO pk VALUES(1, 'b')", NULL, NULL, NULL), MTR_ESQL);
	assert_int_equal(mtr_errcode(db), MTR_ESQL);
	assert_int_equal(mtr_extended_errcode(db), SQLITE_CONSTRAINT_PRIMARYKEY);
	assert_non_null(strstr(mtr_errmsg(db), "UNIQUE constraint failed"));
	assert_int_equal(mtr_exec(db, "INSERT INTO pk VALUES(2, NULL)", NULL, NULL, NULL), MTR_ESQL);
	assert_int_equal(mtr_extended_errcode(db), SQLITE_CONSTRAINT_NOTNULL);
	/* success clears the error */
	assert_int_equal(mtr_exec(db, "SELECT 1", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_errcode(db), 0);
	assert_int_equal(mtr_extended_errcode(db), 0);
	mtr_close(db);
}

/* ---- transactions ---- */

struct acks {
	int done, failed;
	int64_t rowid_sum;
};

static void on_done(void *arg, int rc, int ext, int64_t changes, int64_t rowid)
{
	struct acks *a = arg;
	if (rc == 0 && changes == 1) {
		a->done++;
		a->rowid_sum += rowid;
	} else {
		a->failed++;
	}
}


static void test_transaction(void **state)
{
	mtr *db = open_fake(0, NULL);
	assert_int_equal(mtr_exec(db, "CREATE TABLE x(id INTEGER PRIMARY KEY, v)", NULL, NULL, NULL), 0);
	int before = fake_get(&F.queries[0]);
	assert_int_equal(mtr_exec(db, "COMMIT", NULL, NULL, NULL), MTR_EINVAL);
	assert_int_equal(mtr_exec(db, "ROLLBACK", NULL, NULL, NULL), MTR_EINVAL);
	assert_int_equal(mtr_exec(db, "SAVEPOINT a", NULL, NULL, NULL), MTR_ENOTSUP);

	mtr_stmt *ins;
	assert_int_equal(mtr_exec(db, "BEGIN", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_exec(db, "BEGIN", NULL, NULL, NULL), MTR_EINVAL);
	assert_int_equal(mtr_prepare(db, "INSERT INTO x VALUES(?1, :v)", -1, &ins, NULL), 0);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(mtr_bind_int64(ins, 1, i * 10), 0);
		assert_int_equal(mtr_bind_text(ins, mtr_bind_parameter_index(ins, ":v"), i == 2 ? "two" : "x", -1), 0);
		assert_int_equal(mtr_step(ins), MTR_DONE);
	}
	assert_int_equal(mtr_exec(db, "UPDATE x SET v = 'y' WHERE id = 30", NULL, NULL, NULL), 0);
	/* collected, not sent */
	assert_int_equal(fake_get(&F.queries[0]), before);
	assert_int_equal(fake_scalar("SELECT count(*) FROM x"), 0);
	assert_int_equal(mtr_exec(db, "COMMIT", NULL, NULL, NULL), 0);
	assert_int_equal(fake_get(&F.queries[0]), before + 1);
	assert_int_equal(fake_scalar("SELECT count(*) FROM x"), 3);
	assert_int_equal(fake_scalar("SELECT count(*) FROM x WHERE id = 20 AND v = 'two'"), 1);
	assert_int_equal(fake_scalar("SELECT count(*) FROM x WHERE id = 30 AND v = 'y'"), 1);
	assert_int_equal(mtr_last_insert_rowid(db), 30);
	assert_int_equal(mtr_changes(db), 1);

	/* a whole transaction in one mtr_exec text is one request too */
	int n1 = fake_get(&F.queries[0]);
	assert_int_equal(mtr_exec(db, "BEGIN; INSERT INTO x VALUES(41, 'p') -- one\n; SAVEPOINT s;"
				      "INSERT INTO x VALUES(42, 'q'); ROLLBACK TO s; SELECT * FROM x; COMMIT",
				  NULL, NULL, NULL),
			 0);
	assert_int_equal(fake_get(&F.queries[0]), n1 + 1);
	assert_int_equal(fake_scalar("SELECT count(*) FROM x WHERE id IN (41, 42)"), 1);
	assert_int_equal(mtr_exec(db, "DELETE FROM x WHERE id = 41", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_changes(db), 1);

	/* ROLLBACK discards */
	int n2 = fake_get(&F.queries[0]);
	assert_int_equal(mtr_exec(db, "BEGIN; INSERT INTO x VALUES(40, 'z'); ROLLBACK", NULL, NULL, NULL), 0);
	assert_int_equal(fake_get(&F.queries[0]), n2);
	assert_int_equal(fake_scalar("SELECT count(*) FROM x"), 3);

	/* a failing statement fails COMMIT and nothing is applied */
	assert_int_equal(mtr_exec(db, "BEGIN", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_bind_int64(ins, 1, 50), 0);
	assert_int_equal(mtr_step(ins), MTR_DONE);
	assert_int_equal(mtr_bind_int64(ins, 1, 10), 0); /* duplicate key */
	assert_int_equal(mtr_step(ins), MTR_DONE);
	assert_int_equal(mtr_exec(db, "COMMIT", NULL, NULL, NULL), MTR_ESQL);
	assert_int_equal(mtr_extended_errcode(db), SQLITE_CONSTRAINT_PRIMARYKEY);
	/* the message names the statement that failed */
	if (!strstr(mtr_errmsg(db), "statement 2 of the transaction (INSERT INTO x VALUES(?1, :v)) failed: "))
		fail_msg("COMMIT's error: %s", mtr_errmsg(db));
	assert_int_equal(fake_scalar("SELECT count(*) FROM x"), 3);
	/* the transaction is over */
	assert_int_equal(mtr_exec(db, "COMMIT", NULL, NULL, NULL), MTR_EINVAL);
	/* an empty transaction sends nothing */
	int n = fake_get(&F.queries[0]);
	assert_int_equal(mtr_exec(db, "BEGIN; COMMIT", NULL, NULL, NULL), 0);
	assert_int_equal(fake_get(&F.queries[0]), n);
	/* submit is refused inside a transaction */
	assert_int_equal(mtr_exec(db, "BEGIN", NULL, NULL, NULL), 0);
	struct acks none = {0};
	assert_int_equal(mtr_submit(ins, on_done, &none), MTR_EINVAL);
	assert_int_equal(none.done + none.failed, 0);
	assert_int_equal(mtr_exec(db, "ROLLBACK", NULL, NULL, NULL), 0);
	mtr_finalize(ins);

	/* rows of statements inside a transaction: mtr_exec calls back after
	 * the COMMIT, in order; a prepared SELECT steps its rows after COMMIT */
	struct collected c = {0};
	assert_int_equal(mtr_exec(db, "BEGIN; INSERT INTO x VALUES(60, 'n'); SELECT id FROM x WHERE id >= 30 ORDER BY id;"
				      "SELECT count(*) AS n FROM x; COMMIT",
				  collect, &c, NULL),
			 0);
	assert_string_equal(c.text, "id=30;id=60;n=4;");
	mtr_stmt *sel;
	assert_int_equal(mtr_exec(db, "BEGIN", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_exec(db, "INSERT INTO x VALUES(70, 'm')", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_prepare(db, "SELECT v FROM x WHERE id = 70", -1, &sel, NULL), 0);
	assert_int_equal(mtr_step(sel), MTR_DONE); /* not run yet */
	assert_int_equal(mtr_exec(db, "COMMIT", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_step(sel), MTR_ROW);
	assert_string_equal((const char *)mtr_column_text(sel, 0), "m");
	assert_int_equal(mtr_step(sel), MTR_DONE);
	/* stepped again: runs again, on its own */
	assert_int_equal(mtr_step(sel), MTR_ROW);
	assert_int_equal(mtr_step(sel), MTR_DONE);
	/* reset inside the transaction: no rows come back to it */
	assert_int_equal(mtr_exec(db, "BEGIN", NULL, NULL, NULL), 0);
	assert_int_equal(mtr_step(sel), MTR_DONE);
	mtr_reset(sel);
	assert_int_equal(mtr_exec(db, "COMMIT", NULL, NULL, NULL), 0);
	mtr_finalize(sel);
	mtr_close(db);
}

/* ---- pipelining ---- */

/* A handle on the fake proxy, the table create made, insert prepared. */
static mtr *open_table(mtr_stmt **st, const char *create, const char *insert)
{
	mtr *db = open_fake(0, NULL);
	assert_int_equal(mtr_exec(db, create, NULL, NULL, NULL), 0);
	assert_int_equal(mtr_prepare(db, insert, -1, st, NULL), 0);
	return db;
}

static void test_pipeline(void **state)
{
	mtr_stmt *st;
	mtr *db = open_table(&st, "CREATE TABLE p(id INTEGER PRIMARY KEY, s)", "INSERT INTO p VALUES(?, ?)");
	struct acks a = {0};
	int64_t want = 0;
	for (int i = 1; i <= 200; i++) {
		assert_int_equal(mtr_bind_int64(st, 1, i), 0);
		assert_int_equal(mtr_bind_text(st, 2, "payload", -1), 0);
		assert_int_equal(mtr_submit(st, on_done, &a), 0);
		want += i;
	}
	/* one duplicate fails, and is reported with SQLite's code */
	assert_int_equal(mtr_submit(st, on_done, &a), 0);
	assert_true(mtr_pending(db) > 0);
	while (mtr_pending(db) > 0)
		assert_true(mtr_poll(db, 2000) >= 0);
	assert_int_equal(a.done, 200);
	assert_int_equal(a.failed, 1);
	assert_true(a.rowid_sum == want);
	assert_int_equal(fake_scalar("SELECT count(*) FROM p"), 200);
	assert_int_equal(mtr_poll(db, 10), 0);
	/* pending requests get MTR_ECLOSED at close */
	assert_int_equal(mtr_submit(st, on_done, &a), 0);
	mtr_close(db);
	assert_int_equal(a.failed, 2);
}

/*
 * A request submitted alone leaves at once; one submitted while others are
 * in flight waits for the next call that waits for answers (mtr_poll), so
 * that the requests submitted between two polls leave together; mtr_close
 * sends what still waits.
 */
static void test_submit_together(void **state)
{
	mtr_stmt *st;
	mtr *db = open_table(&st, "CREATE TABLE q(id INTEGER PRIMARY KEY)", "INSERT INTO q VALUES(?)");
	struct acks a = {0};
	assert_int_equal(mtr_bind_int64(st, 1, 1), 0);
	assert_int_equal(mtr_submit(st, on_done, &a), 0);
	/* alone: the proxy has it without a poll */
	for (int i = 0; i < 200 && fake_scalar("SELECT count(*) FROM q") != 1; i++)
		usleep(5000);
	assert_int_equal(fake_scalar("SELECT count(*) FROM q"), 1);
	/* behind it (its answer not taken yet): held until the poll */
	for (int i = 2; i <= 4; i++) {
		assert_int_equal(mtr_bind_int64(st, 1, i), 0);
		assert_int_equal(mtr_submit(st, on_done, &a), 0);
	}
	usleep(100000);
	assert_int_equal(fake_scalar("SELECT count(*) FROM q"), 1);
	while (mtr_pending(db) > 0)
		assert_true(mtr_poll(db, 2000) >= 0);
	assert_int_equal(a.done, 4);
	assert_int_equal(fake_scalar("SELECT count(*) FROM q"), 4);
	/* held ones leave at close (their callbacks report the close) */
	for (int i = 5; i <= 6; i++) {
		assert_int_equal(mtr_bind_int64(st, 1, i), 0);
		assert_int_equal(mtr_submit(st, on_done, &a), 0);
	}
	mtr_finalize(st);
	mtr_close(db);
	assert_int_equal(a.failed, 2);
	for (int i = 0; i < 200 && fake_scalar("SELECT count(*) FROM q") != 6; i++)
		usleep(5000);
	assert_int_equal(fake_scalar("SELECT count(*) FROM q"), 6);
}

/* ---- failover ---- */

static void test_failover(void **state)
{
	mtr *db = open_fake(1, "timeout=5000");
	assert_int_equal(fake_get(&F.hellos[0]), 1);
	assert_int_equal(mtr_exec(db, "CREATE TABLE f(id INTEGER PRIMARY KEY)", NULL, NULL, NULL), 0);
	pthread_mutex_lock(&F.mu);
	F.die_on_query[0] = 1;
	pthread_mutex_unlock(&F.mu);
	assert_int_equal(mtr_exec(db, "INSERT INTO f VALUES(7)", NULL, NULL, NULL), 0);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.hellos[1], 1);
	assert_int_equal(F.queries[1], 1);
	/* the resend carries the same request id and client id */
	assert_true(F.last_request[1] == F.last_request[0]);
	assert_true(F.client_id[1] == F.client_id[0]);
	/* the session's last instance travels with the request */
	assert_true(F.last_min_instance > 0);
	pthread_mutex_unlock(&F.mu);
	assert_int_equal(fake_scalar("SELECT count(*) FROM f"), 1);
	/* later requests go to the second proxy */
	assert_int_equal(mtr_exec(db, "INSERT INTO f VALUES(8)", NULL, NULL, NULL), 0);
	assert_int_equal(fake_get(&F.queries[1]), 2);

	/* pipelined requests in flight are resent in order */
	pthread_mutex_lock(&F.mu);
	F.die_on_query[1] = 1;
	pthread_mutex_unlock(&F.mu);
	mtr_stmt *st;
	assert_int_equal(mtr_prepare(db, "INSERT INTO f VALUES(?)", -1, &st, NULL), 0);
	struct acks a = {0};
	for (int i = 100; i < 110; i++) {
		assert_int_equal(mtr_bind_int64(st, 1, i), 0);
		assert_int_equal(mtr_submit(st, on_done, &a), 0);
	}
	while (mtr_pending(db) > 0)
		assert_true(mtr_poll(db, 2000) >= 0);
	assert_int_equal(a.done + a.failed, 10);
	assert_int_equal(fake_scalar("SELECT count(*) FROM f WHERE id >= 100"), 10);
	mtr_finalize(st);
	mtr_close(db);
}

static void test_failover_all_dead(void **state)
{
	int port;
	int fd = fake_listen(&port);
	char uri[96];
	snprintf(uri, sizeof uri, "mtr://127.0.0.1:%d,127.0.0.1:%d?timeout=300", F.port[0], port);
	mtr *db;
	assert_int_equal(mtr_open(uri, &db), 0);
	close(fd); /* the second address is dead too */
	pthread_mutex_lock(&F.mu);
	F.die_on_query[0] = 1000000;
	pthread_mutex_unlock(&F.mu);
	uint64_t t0 = now_mono_ns();
	int rc = mtr_exec(db, "SELECT 1", NULL, NULL, NULL);
	/* proxy 0 keeps dropping, the other refuses: bounded by the timeout */
	assert_true(rc == MTR_ECONNECT || rc == MTR_ETIMEDOUT);
	assert_true(now_mono_ns() - t0 < 20000000000ull); /* bounded, not a speed target */
	/* the read of a new session failed in its floor no-op: the message says
	 * so once, with the cause whole (it is built from the cause) */
	const char *m = mtr_errmsg(db), *learn = strstr(m, "could not learn the cluster's position (");
	assert_non_null(learn);
	assert_null(strstr(learn + 1, "could not learn"));
	assert_true(strstr(m, "(cannot connect to any proxy") || strstr(m, "(no answer within"));
	mtr_close(db);
}

/* ---- timeouts and busy ---- */

static void test_timeout(void **state)
{
	mtr *db = open_fake(0, "timeout=200");
	uint64_t t0 = now_mono_ns();
	assert_int_equal(mtr_exec(db, "SELECT /*hang*/ 1", NULL, NULL, NULL), MTR_ETIMEDOUT);
	uint64_t ms = (now_mono_ns() - t0) / 1000000;
	assert_true(ms >= 150 && ms < 20000); /* the deadline, not a speed target */
	assert_int_equal(mtr_errcode(db), MTR_ETIMEDOUT);
	/* the connection is still usable */
	struct collected c = {0};
	assert_int_equal(mtr_exec(db, "SELECT 3 AS t", collect, &c, NULL), 0);
	assert_string_equal(c.text, "t=3;");
	/* async requests time out through their callback */
	mtr_stmt *st;
	assert_int_equal(mtr_prepare(db, "SELECT /*hang*/ 1", -1, &st, NULL), 0);
	struct acks a = {0};
	assert_int_equal(mtr_submit(st, on_done, &a), 0);
	while (mtr_pending(db) > 0)
		assert_true(mtr_poll(db, -1) >= 0);
	assert_int_equal(a.failed, 1);
	mtr_finalize(st);
	mtr_close(db);
}

/* A request that timed out makes the handle reconnect (the next address)
 * and resend what is still unanswered with the same ids: a proxy that
 * answers in request order holds every answer behind a missing one. */
/* mtr_config_log: the library's lines, to the application's function */
struct logs {
	int n, warn;
	char last[256];
};

static void on_log(void *arg, int level, const char *msg)
{
	struct logs *l = arg;
	l->n++;
	l->warn += level == MTR_LOG_WARN;
	snprintf(l->last, sizeof l->last, "%s", msg);
}

static void test_timeout_reconnect(void **state)
{
	static struct logs logs; /* the sink outlives the test's frame: reset below */
	memset(&logs, 0, sizeof logs);
	assert_int_equal(mtr_config_log(on_log, &logs, MTR_LOG_WARN), 0);
	assert_int_equal(mtr_config_log(on_log, &logs, 7), MTR_EINVAL);
	mtr *db = open_fake(1, "timeout=400");
	assert_int_equal(mtr_exec(db, "CREATE TABLE r(id INTEGER PRIMARY KEY)", NULL, NULL, NULL), 0);
	pthread_mutex_lock(&F.mu);
	F.hold[0] = 1;
	int hellos1 = F.hellos[1];
	pthread_mutex_unlock(&F.mu);
	mtr_stmt *st;
	assert_int_equal(mtr_prepare(db, "INSERT INTO r VALUES(?)", -1, &st, NULL), 0);
	struct acks a = {0};
	assert_int_equal(mtr_bind_int64(st, 1, 1), 0);
	assert_int_equal(mtr_submit(st, on_done, &a), 0); /* times out at 400 ms */
	uint64_t t0 = now_mono_ns();
	while (now_mono_ns() - t0 < 200000000ull)
		assert_true(mtr_poll(db, 50) >= 0);
	assert_int_equal(mtr_bind_int64(st, 1, 2), 0);
	assert_int_equal(mtr_submit(st, on_done, &a), 0); /* in flight when the first times out */
	while (mtr_pending(db) > 0)
		assert_true(mtr_poll(db, 2000) >= 0);
	assert_int_equal(a.failed, 1);
	assert_int_equal(a.done, 1);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.hellos[1], hellos1 + 1);
	/* the second request, resent with its id, is the only one proxy 1 ran */
	assert_true(F.last_request[1] == F.last_request[0]);
	F.hold[0] = 0;
	pthread_mutex_unlock(&F.mu);
	assert_int_equal(fake_scalar("SELECT count(*) FROM r WHERE id = 2"), 1);
	assert_int_equal(fake_scalar("SELECT count(*) FROM r WHERE id = 1"), 0);
	mtr_finalize(st);
	mtr_close(db);
	/* the reconnection was told to the application's function, at warn,
	 * one line without timestamp or newline */
	assert_int_equal(mtr_config_log(NULL, NULL, MTR_LOG_WARN), 0);
	assert_true(logs.warn >= 1);
	if (!strstr(logs.last, "failing over") || strchr(logs.last, '\n'))
		fail_msg("last line logged: '%s'", logs.last);
}

/* ---- mtr_interrupt ---- */

static mtr *interrupt_db;

static void on_alarm(int sig)
{
	(void)sig;
	mtr_interrupt(interrupt_db);
}

static void *interrupt_later(void *arg)
{
	usleep(100000);
	mtr_interrupt(arg);
	return NULL;
}

static void test_interrupt(void **state)
{
	(void)state;
	mtr *db = open_fake(0, NULL);
	/* from a signal handler (the timer fires while mtr_exec waits) */
	interrupt_db = db;
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	struct itimerval it = {.it_value = {.tv_usec = 100000}};
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	uint64_t t0 = now_mono_ns();
	assert_int_equal(mtr_exec(db, "SELECT /*hang*/ 1", NULL, NULL, NULL), MTR_ESQL);
	assert_true((now_mono_ns() - t0) / 1000000 < 5000);
	assert_int_equal(mtr_extended_errcode(db), 9); /* SQLITE_INTERRUPT */
	assert_string_equal(mtr_errmsg(db), "read cancelled");
	assert_int_equal(fake_get(&F.cancels), 1);
	sigaction(SIGALRM, &old, NULL);
	/* from another thread, through a prepared statement */
	mtr_stmt *st;
	assert_int_equal(mtr_prepare(db, "SELECT /*hang*/ 2", -1, &st, NULL), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, interrupt_later, db), 0);
	assert_int_equal(mtr_step(st), MTR_ESQL);
	pthread_join(th, NULL);
	assert_int_equal(mtr_extended_errcode(db), 9);
	assert_int_equal(fake_get(&F.cancels), 2);
	mtr_finalize(st);
	/* an interrupt while nothing runs does not touch the next statement */
	mtr_interrupt(db);
	struct collected c = {0};
	assert_int_equal(mtr_exec(db, "SELECT 4 AS t", collect, &c, NULL), 0);
	assert_string_equal(c.text, "t=4;");
	assert_int_equal(fake_get(&F.cancels), 2);
	mtr_interrupt(NULL); /* nothing happens */
	mtr_close(db);
	/* a request given up at its timeout is cancelled too */
	db = open_fake(0, "timeout=200");
	assert_int_equal(mtr_exec(db, "SELECT /*hang*/ 1", NULL, NULL, NULL), MTR_ETIMEDOUT);
	for (int k = 0; k < 200 && fake_get(&F.cancels) < 3; k++)
		usleep(10000);
	assert_int_equal(fake_get(&F.cancels), 3);
	mtr_close(db);
}

static void test_busy(void **state)
{
	mtr *db = open_fake(0, NULL);
	pthread_mutex_lock(&F.mu);
	F.busy_left = 1;
	pthread_mutex_unlock(&F.mu);
	assert_int_equal(mtr_exec(db, "SELECT /*busy*/ 1", NULL, NULL, NULL), MTR_EBUSY);
	assert_string_equal(mtr_errmsg(db), "proxy busy");
	pthread_mutex_lock(&F.mu);
	F.busy_left = 3;
	pthread_mutex_unlock(&F.mu);
	assert_int_equal(mtr_busy_timeout(db, 2000), 0);
	int before = fake_get(&F.queries[0]);
	assert_int_equal(mtr_exec(db, "SELECT /*busy*/ 1", NULL, NULL, NULL), 0);
	assert_int_equal(fake_get(&F.queries[0]), before + 4);
	mtr_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_bad_uri),
		cmocka_unit_test(test_open_refused),
		cmocka_unit_test_setup_teardown(test_open_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_every_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_busy_and_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipeline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover_all_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt, setup, teardown),
	};
	return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
