/*
 * test_walbuf.c - WAL files opened through detvfs (walbuf.c): a commit's
 * frames reach the file in few writes, and after every commit the files on
 * disk hold it all (what a crash right then would leave), whatever the
 * transaction's shape: small, larger than the buffer, spilling pages from
 * a small cache and writing frames again.
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

#include <fcntl.h>
#include <unistd.h>

#include "detvfs.h"
#include "walbuf.h"
#include "../testutil.h"

struct fx {
	char dir[256];
	char path[300];
	sqlite3 *db, *rd;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (f == NULL || testutil_mkdtemp(f->dir, sizeof f->dir, "mtr-walbuf") != 0 || detvfs_register() != 0)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/w.db", f->dir);
	if (sqlite3_open_v2(f->path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, DETVFS_NAME) != SQLITE_OK ||
	    sqlite3_exec(f->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;"
			 "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, b BLOB); CREATE INDEX tk ON t(k)",
			 NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_open_v2(f->path, &f->rd, SQLITE_OPEN_READONLY, DETVFS_NAME) != SQLITE_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	sqlite3_close(f->rd);
	sqlite3_close(f->db);
	int rc = testutil_rmtree(f->dir);
	free(f);
	return rc;
}

static void exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
}

static int64_t qint(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(in >= 0 && out >= 0);
	char b[65536];
	ssize_t n;
	while ((n = read(in, b, sizeof b)) > 0)
		assert_int_equal(write(out, b, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

/* What the files on disk hold now, read by the plain unix VFS from a copy
 * (as after a crash: SQLite recovers the WAL from the file alone): the
 * sum of k, and the integrity check passes. */
static int64_t on_disk_sum(struct fx *f)
{
	char wal[320], cdb[320], cwal[330], shm[330];
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	snprintf(cdb, sizeof cdb, "%s/copy.db", f->dir);
	snprintf(cwal, sizeof cwal, "%s-wal", cdb);
	snprintf(shm, sizeof shm, "%s-shm", cdb);
	copy_file(f->path, cdb);
	copy_file(wal, cwal);
	unlink(shm);
	sqlite3 *c;
	assert_int_equal(sqlite3_open_v2(cdb, &c, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(c, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	int64_t s = qint(c, "SELECT total(k) FROM t");
	sqlite3_close(c);
	unlink(cdb);
	unlink(cwal);
	return s;
}

/* A transaction of about 40 frames: at most two writes (its first commit
 * also writes the WAL header), the reader and a copy of the files see it. */
static void test_commit_one_write(void **state)
{
	struct fx *f = *state;
	int64_t sum = 0;
	for (int round = 0; round < 5; round++) {
		unsigned long long w0 = walbuf_writes();
		exec(f->db, "BEGIN");
		for (int i = 0; i < 100; i++) {
			char sql[160];
			snprintf(sql, sizeof sql, "INSERT INTO t(k, b) VALUES(%d, randomblob(900))", round * 1000 + i);
			exec(f->db, sql);
			sum += round * 1000 + i;
		}
		exec(f->db, "COMMIT");
		unsigned long long w = walbuf_writes() - w0;
		print_message("# round %d: %llu writes for the commit\n", round, w);
		assert_true(w >= 1 && w <= 2);
		assert_int_equal(qint(f->rd, "SELECT total(k) FROM t"), sum);
		assert_int_equal(on_disk_sum(f), sum);
	}
}

/* Transactions larger than WALBUF_MAX, and a small page cache that spills
 * frames before the commit and writes some frames of the transaction again:
 * every commit is whole on disk and for the reader. */
static void test_large_and_spilling(void **state)
{
	struct fx *f = *state;
	exec(f->db, "PRAGMA cache_size=8");
	int64_t sum = 0;
	for (int round = 0; round < 4; round++) {
		exec(f->db, "BEGIN");
		/* 3 MB of new rows, then updates of rows written earlier in
		 * this transaction (pages already in the WAL) */
		for (int i = 0; i < 1500; i++) {
			char sql[160];
			snprintf(sql, sizeof sql, "INSERT INTO t(k, b) VALUES(%d, randomblob(2000))", i);
			exec(f->db, sql);
			sum += i;
		}
		exec(f->db, "UPDATE t SET k = k + 1 WHERE id % 7 = 0");
		exec(f->db, "COMMIT");
		sum += 1500 * (round + 1) / 7; /* ids 1..1500 x rounds */
		/* not read through the writer first: its read would write
		 * what it kept */
		assert_int_equal(qint(f->rd, "SELECT total(k) FROM t"), sum);
		assert_int_equal(on_disk_sum(f), sum);
		if (round == 1) {
			/* the WAL from its start again: a new header and salts */
			exec(f->db, "PRAGMA wal_checkpoint(RESTART)");
		}
	}
	/* and a transaction that fails halfway leaves nothing */
	exec(f->db, "BEGIN");
	exec(f->db, "INSERT INTO t(k, b) VALUES(5, randomblob(300000))");
	exec(f->db, "ROLLBACK");
	assert_int_equal(qint(f->rd, "SELECT total(k) FROM t"), sum);
	assert_int_equal(on_disk_sum(f), sum);
}

/* A connection opened on a WAL written before (its header not seen by
 * this connection's file): the page size and salts come from the file. */
static void test_reopened(void **state)
{
	struct fx *f = *state;
	exec(f->db, "INSERT INTO t(k, b) VALUES(1, randomblob(5000))");
	sqlite3 *db2;
	assert_int_equal(sqlite3_open_v2(f->path, &db2, SQLITE_OPEN_READWRITE, DETVFS_NAME), SQLITE_OK);
	exec(db2, "PRAGMA synchronous=NORMAL");
	unsigned long long w0 = walbuf_writes();
	exec(db2, "BEGIN");
	for (int i = 0; i < 50; i++)
		exec(db2, "INSERT INTO t(k, b) VALUES(2, randomblob(1000))");
	exec(db2, "COMMIT");
	assert_true(walbuf_writes() - w0 <= 2);
	assert_int_equal(on_disk_sum(f), 101);
	assert_int_equal(qint(f->db, "SELECT total(k) FROM t"), 101);
	sqlite3_close(db2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_one_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_and_spilling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopened, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
