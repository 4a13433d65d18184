/*
 * test_detvfs.c - deterministic time and randomness: per-row values differ,
 * two independent replicas applying the same items agree, different seeds or
 * timestamps differ; 'now' in expressions, DEFAULT clauses and triggers.
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

#include <dirent.h>
#include <unistd.h>

#include "apply.h"
#include "detvfs.h"
#include "metronome.h"
#include "util.h"
#include "../testutil.h"

/* ---- Fixture: three replicas (a and b get the same items; c may not) ---- */

struct fx {
	char dir[3][64];
	struct apply *r[3];
	uint64_t inst[3];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	for (int i = 0; i < 3; i++) {
		if (testutil_mkdtemp(f->dir[i], sizeof f->dir[i], "mtr-detvfs") != 0)
			return -1;
		struct apply_config cfg = {.dir = f->dir[i]};
		if (apply_open(&cfg, &f->r[i]) != 0)
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++) {
		apply_close(f->r[i]);
		assert_int_equal(testutil_rmtree(f->dir[i]), 0);
	}
	free(f);
	return 0;
}

/* ---- Helpers ---- */

static void cb(void *arg, size_t index, const struct wire_item *item, const struct apply_result *res)
{
	(void)index;
	(void)item;
	*(int *)arg = res->code;
	if (res->code)
		print_message("# item failed: %s\n", res->stmts[res->failed].errmsg);
}

/* Apply sql as one item with (ts, seed) on replica i; the item must succeed. */
static void run(struct fx *f, int i, const char *sql, int64_t ts, uint64_t seed)
{
	struct wire_stmt st = {.sql = sql, .sql_len = (uint32_t)strlen(sql)};
	struct wire_item it = {.stream = 1, .seq = f->inst[i] + 1, .timestamp_us = ts, .seed = seed, .nstmt = 1,
			       .stmts = &st};
	int code = -1;
	assert_int_equal(apply_instance(f->r[i], ++f->inst[i], &it, 1, cb, &code), 0);
	assert_int_equal(code, SQLITE_OK);
}


/* Apply sql with the same (ts, seed) to replicas a and b, and with
 * (ts2, seed2) to c. */
static void run3(struct fx *f, const char *sql, int64_t ts, uint64_t seed, int64_t ts2, uint64_t seed2)
{
	run(f, 0, sql, ts, seed);
	run(f, 1, sql, ts, seed);
	run(f, 2, sql, ts2, seed2);
}

/* The concatenated text of a one-column query on replica i (malloc'd). */
static char *dump(struct fx *f, int i, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(apply_open_reader(f->r[i], &db), 0);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	char *out = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return out;
}

static int64_t qint(struct fx *f, int i, const char *sql)
{
	char *s = dump(f, i, sql);
	int64_t v = strtoll(s, NULL, 10);
	free(s);
	return v;
}

static void same_digest(struct fx *f, int expect_c_equal)
{
	struct digest d[3];
	uint64_t in[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(apply_digest(f->r[i], &in[i], &d[i]), 0);
	assert_memory_equal(&d[0], &d[1], sizeof d[0]);
	if (expect_c_equal)
		assert_memory_equal(&d[0], &d[2], sizeof d[0]);
	else
		assert_memory_not_equal(&d[0], &d[2], sizeof d[0]);
}

#define FILL1000                                                                                  \
	"INSERT INTO t(id) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 1000) " \
	"SELECT i FROM c"

/* ---- PRNG ---- */

static void test_rng(void **state)
{
	(void)state;
	struct detvfs_rng a, b, c;
	detvfs_rng_seed(&a, 42);
	detvfs_rng_seed(&b, 42);
	detvfs_rng_seed(&c, 43);
	int diff = 0;
	for (int i = 0; i < 100; i++) {
		uint64_t x = detvfs_rng_next(&a);
		assert_true(x == detvfs_rng_next(&b));
		diff += x != detvfs_rng_next(&c);
	}
	assert_true(diff > 95);
	uint8_t buf[13];
	memset(buf, 0, sizeof buf);
	detvfs_rng_fill(&a, buf, sizeof buf);
	int nz = 0;
	for (size_t i = 0; i < sizeof buf; i++)
		nz += buf[i] != 0;
	assert_true(nz > 5);
}

/* ---- random() / randomblob() ---- */

static void test_random_per_row(void **state)
{
	struct fx *f = *state;
	run3(f, "CREATE TABLE t(id INTEGER PRIMARY KEY, r, b)", 1, 1, 1, 1);
	run3(f, FILL1000, 2, 2, 2, 2);
	same_digest(f, 1);
	run3(f, "UPDATE t SET r = random()", 1000, 77, 1000, 78);
	assert_int_equal(qint(f, 0, "SELECT count(DISTINCT r) FROM t"), 1000);
	assert_int_equal(qint(f, 0, "SELECT count(*) FROM t WHERE typeof(r) = 'integer'"), 1000);
	char *a = dump(f, 0, "SELECT group_concat(r) FROM (SELECT r FROM t ORDER BY id)");
	char *b = dump(f, 1, "SELECT group_concat(r) FROM (SELECT r FROM t ORDER BY id)");
	char *c = dump(f, 2, "SELECT group_concat(r) FROM (SELECT r FROM t ORDER BY id)");
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	free(a);
	free(b);
	free(c);
	same_digest(f, 0);
}

static void test_randomblob_per_row(void **state)
{
	struct fx *f = *state;
	run3(f, "CREATE TABLE t(id INTEGER PRIMARY KEY, r, b)", 1, 1, 1, 1);
	run3(f, FILL1000, 2, 2, 2, 2);
	run3(f, "UPDATE t SET b = randomblob(16), r = randomblob(0)", 5, 9, 5, 10);
	assert_int_equal(qint(f, 0, "SELECT count(DISTINCT b) FROM t"), 1000);
	assert_int_equal(qint(f, 0, "SELECT min(length(b)) = 16 AND max(length(r)) = 1 FROM t"), 1);
	char *a = dump(f, 0, "SELECT hex(group_concat(b, x'')) FROM (SELECT b FROM t ORDER BY id)");
	char *b = dump(f, 1, "SELECT hex(group_concat(b, x'')) FROM (SELECT b FROM t ORDER BY id)");
	char *c = dump(f, 2, "SELECT hex(group_concat(b, x'')) FROM (SELECT b FROM t ORDER BY id)");
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	free(a);
	free(b);
	free(c);
	same_digest(f, 0);
}

/* The same seed in two items gives the same values (reset per item); a
 * default-clause random() is covered too. */
static void test_random_reset_per_item(void **state)
{
	struct fx *f = *state;
	run(f, 0, "CREATE TABLE t(id INTEGER PRIMARY KEY, r DEFAULT (random()), u)", 1, 1);
	run(f, 0, "INSERT INTO t(id) VALUES(1)", 1, 5);
	run(f, 0, "INSERT INTO t(id) VALUES(2)", 1, 5);
	run(f, 0, "INSERT INTO t(id) VALUES(3)", 1, 6);
	assert_int_equal(qint(f, 0, "SELECT (SELECT r FROM t WHERE id=1) = (SELECT r FROM t WHERE id=2)"), 1);
	assert_int_equal(qint(f, 0, "SELECT (SELECT r FROM t WHERE id=1) = (SELECT r FROM t WHERE id=3)"), 0);
}

/* SQLite's own PRNG (here: the random rowid chosen once the largest rowid
 * is taken) reseeds from the VFS's xRandomness per item. */
static void test_sqlite_prng_via_vfs(void **state)
{
	struct fx *f = *state;
	run3(f, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)", 1, 1, 1, 1);
	run3(f, "INSERT INTO t VALUES(9223372036854775807, 0)", 1, 1, 1, 1);
	run3(f, "INSERT INTO t(v) VALUES(1)", 1, 11, 1, 12);
	run3(f, "INSERT INTO t(v) VALUES(2)", 1, 13, 1, 14);
	int64_t a = qint(f, 0, "SELECT sum(id % 1000003) FROM t WHERE v > 0");
	int64_t b = qint(f, 1, "SELECT sum(id % 1000003) FROM t WHERE v > 0");
	int64_t c = qint(f, 2, "SELECT sum(id % 1000003) FROM t WHERE v > 0");
	assert_true(a == b);
	assert_true(a != c);
	same_digest(f, 0);
}

/* ---- 'now' ---- */

static void test_now_forms(void **state)
{
	struct fx *f = *state;
	/* 2023-11-14 22:13:20.123456 UTC */
	const int64_t ts = 1700000000123456;
	run3(f,
	     "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, c, d, e, dflt DEFAULT CURRENT_TIMESTAMP, "
	     "dd DEFAULT (datetime('now')), trig)",
	     ts, 1, ts, 1);
	run3(f, "CREATE TABLE log(id INTEGER PRIMARY KEY, at, jd)", ts, 1, ts, 1);
	run3(f,
	     "CREATE TRIGGER tr AFTER INSERT ON t BEGIN "
	     "INSERT INTO log(at, jd) VALUES(CURRENT_TIMESTAMP, julianday('now')); "
	     "UPDATE t SET trig = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = new.id; END",
	     ts, 1, ts, 1);
	run3(f,
	     "INSERT INTO t(id, a, b, c, d, e) VALUES(1, datetime('now'), CURRENT_TIMESTAMP, "
	     "julianday('now'), unixepoch('now'), strftime('%s%f', 'now'))",
	     ts, 3, ts + 86400000000, 3);
	char *s = dump(f, 0, "SELECT a || '|' || b || '|' || d || '|' || dflt || '|' || dd || '|' || trig FROM t");
	assert_string_equal(s, "2023-11-14 22:13:20|2023-11-14 22:13:20|1700000000|2023-11-14 22:13:20|"
			       "2023-11-14 22:13:20|2023-11-14 22:13:20.123");
	free(s);
	s = dump(f, 0, "SELECT at FROM log");
	assert_string_equal(s, "2023-11-14 22:13:20");
	free(s);
	same_digest(f, 0);
	s = dump(f, 2, "SELECT a FROM t");
	assert_string_equal(s, "2023-11-15 22:13:20");
	free(s);
	/* Items apply in one transaction but each sees its own time. */
	run(f, 0, "INSERT INTO t(id) VALUES(2)", ts + 1000000, 1);
	s = dump(f, 0, "SELECT dflt FROM t WHERE id = 2");
	assert_string_equal(s, "2023-11-14 22:13:21");
	free(s);
}

/* Without a current item (another thread, a reader) 'now' is the real clock. */
static void test_real_clock_outside_items(void **state)
{
	struct fx *f = *state;
	int64_t before = now_wall_ms() / 1000;
	int64_t v = qint(f, 0, "SELECT unixepoch('now')");
	assert_true(v >= before - 1 && v <= before + 5);
	detvfs_item_begin(86400000000, 1); /* 1970-01-02 on this thread */
	v = qint(f, 0, "SELECT unixepoch('now')");
	detvfs_item_end();
	assert_int_equal(v, 86400);
}

/* ---- temporary files (issue 18) ---- */

/* The fds of this process whose target is a deleted file, as "fd path"
 * lines (malloc'd). */
static char *deleted_fds(void)
{
	size_t cap = 4096, len = 0;
	char *out = calloc(1, cap);
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char link[300], target[1024];
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strstr(target, " (deleted)") == NULL)
			continue;
		size_t need = strlen(e->d_name) + strlen(target) + 3;
		if (len + need >= cap) {
			cap = 2 * (len + need);
			out = realloc(out, cap);
		}
		len += (size_t)sprintf(out + len, "%s %s\n", e->d_name, target);
	}
	closedir(d);
	return out;
}

/*
 * Open a temporary file (no name: SQLite's statement journal, sorter and
 * temp database open theirs so) through the VFS while an item (ts, seed)
 * is current, as the apply thread does; return the path it got (malloc'd).
 * SQLite deletes such a file right after opening it: the path is read from
 * /proc/self/fd while it is open.
 */
static char *temp_path_in_item(int64_t ts, uint64_t seed)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(DETVFS_NAME);
	assert_non_null(vfs);
	sqlite3_file *file = calloc(1, (size_t)vfs->szOsFile);
	char *before = deleted_fds();
	detvfs_item_begin(ts, seed);
	int out = 0;
	int rc = vfs->xOpen(vfs, NULL, file,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE |
				    SQLITE_OPEN_DELETEONCLOSE | SQLITE_OPEN_SUBJOURNAL,
			    &out);
	detvfs_item_end();
	assert_int_equal(rc, SQLITE_OK);
	assert_true(out & SQLITE_OPEN_READWRITE);
	assert_int_equal(file->pMethods->xWrite(file, "x", 1, 65536), SQLITE_OK);
	char *after = deleted_fds();
	char *path = NULL;
	for (char *line = strtok(after, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(before, line) == NULL) {
			path = strdup(strchr(line, ' ') + 1);
			*strstr(path, " (deleted)") = '\0';
		}
	file->pMethods->xClose(file);
	free(before);
	free(after);
	free(file);
	assert_non_null(path);
	return path;
}

/*
 * Issue 18: every replica applies an item with the same seed, so a
 * temporary file's name drawn from SQLite's PRNG (reseeded from the item)
 * was the same path on every replica.  Replicas sharing a temp directory
 * (a local cluster, or the servers of a test in one process) raced on it:
 * the loser's O_EXCL open failed, SQLite fell back to opening the winner's
 * file read-only, and the spill of its statement journal failed with EBADF
 * (SQLITE_IOERR_WRITE) on that replica only.  Names must not depend on the
 * item.
 */
static void test_temp_names_unique(void **state)
{
	(void)state;
	assert_int_equal(detvfs_register(), 0);
	char *a = temp_path_in_item(1700000000000000, 42);
	char *b = temp_path_in_item(1700000000000000, 42);
	print_message("# temp files of two items with the same seed: %s, %s\n", a, b);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

/* Opening a temporary file draws nothing from the item's PRNG stream:
 * what SQLite draws next (a random rowid) does not depend on whether a
 * statement spilled to a temp file. */
static void test_temp_open_keeps_prng(void **state)
{
	(void)state;
	assert_int_equal(detvfs_register(), 0);
	unsigned char x[16], y[16];
	detvfs_item_begin(5, 77);
	sqlite3_randomness(sizeof x, x);
	detvfs_item_end();
	free(temp_path_in_item(5, 77)); /* the item opens a temp file first ... */
	detvfs_item_begin(5, 77);
	sqlite3_vfs *vfs = sqlite3_vfs_find(DETVFS_NAME);
	sqlite3_file *file = calloc(1, (size_t)vfs->szOsFile);
	int out = 0;
	assert_int_equal(vfs->xOpen(vfs, NULL, file,
				    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE |
					    SQLITE_OPEN_DELETEONCLOSE | SQLITE_OPEN_TEMP_JOURNAL,
				    &out),
			 SQLITE_OK);
	sqlite3_randomness(sizeof y, y); /* ... then draws */
	detvfs_item_end();
	file->pMethods->xClose(file);
	free(file);
	assert_memory_equal(x, y, sizeof x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rng),
		cmocka_unit_test_setup_teardown(test_random_per_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_randomblob_per_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_reset_per_item, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_prng_via_vfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_now_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_clock_outside_items, setup, teardown),
		cmocka_unit_test(test_temp_names_unique),
		cmocka_unit_test(test_temp_open_keeps_prng),
	};
	return cmocka_run_group_tests_name("detvfs", tests, NULL, NULL);
}
