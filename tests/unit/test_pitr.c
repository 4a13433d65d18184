/*
 * test_pitr.c - point-in-time restore (pitr.h): the history record, and
 * pitr_restore / pitr_list over a synthetic item log whose instances are
 * empty batches chosen at known times (instance i at i seconds), from a
 * backup at instance 2: targets by instance and by time, and every refusal
 * (before the backup, past the end, a gap, a log that does not reach back,
 * an item compacted away, an existing output, a file that is no backup).
 */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>
#include "batch.h"
#include "log.h"
#include "metronome.h"
#include "pitr.h"
#include "seglog.h"
#include "../testutil.h"
#include "../testutil_fs.h"

/* ---- Fixture ---- */

static char top[256], items[300], backup[300], out[300];

static int setup(void **state)
{
	(void)state;
	if (testutil_mkdtemp(top, sizeof top - 16, "mtr-pitr") != 0)
		return -1;
	snprintf(items, sizeof items, "%s/items", top);
	snprintf(backup, sizeof backup, "%s/backup.db", top);
	snprintf(out, sizeof out, "%s/out.db", top);
	sqlite3 *db;
	if (sqlite3_open(backup, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "CREATE TABLE mtr_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
			 "INSERT INTO mtr_meta VALUES('backup_instance', 2);"
			 "CREATE TABLE t(x); INSERT INTO t VALUES(1);",
			 NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	sqlite3_close(db);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	testutil_rmtree(top);
	return 0;
}

/* ---- Helpers ---- */

/* The history of instances first..last (all but skip), instance i chosen
 * at i seconds, empty batches except instance with_items, which names
 * items 1..3 of stream 9 that the log does not hold. */
static void make_log(uint64_t first, uint64_t last, uint64_t skip, uint64_t with_items)
{
	struct seglog_opts o = {.mode = SEGLOG_DISK, .dir = items, .seg_size = 4096};
	struct seglog *log;
	assert_int_equal(seglog_open(&o, &log), 0);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	for (uint64_t i = first; i <= last; i++) {
		if (i == skip)
			continue;
		struct batch b = {0};
		if (i == with_items)
			assert_int_equal(batch_push(&b, 9, 1, 3), 0);
		uint8_t buf[128];
		int n = pitr_record_encode(buf, sizeof buf, i * 1000, &b);
		assert_true(n > 0);
		struct seglog_loc loc;
		assert_int_equal(seglog_append(log, i, 0, buf, (uint32_t)n, &loc), 0);
		batch_free(&b);
	}
	assert_int_equal(seglog_sync(log), 0);
	seglog_close(log);
}

static char err[1024];

static int restore(const char *until, struct pitr_result *r)
{
	struct pitr_opts o = {.backup = backup, .logdir = top, .until = until, .out = out};
	err[0] = 0;
	return pitr_restore(&o, r, err, sizeof err);
}

static long long applied(void)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long v = -1;
	assert_int_equal(sqlite3_open_v2(out, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM mtr_meta WHERE key = 'applied'", -1, &st, NULL),
			 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void refused(const char *until, int code, const char *says)
{
	struct pitr_result r;
	assert_int_equal(restore(until, &r), code);
	if (strstr(err, says) == NULL)
		fail_msg("'%s' does not say '%s'", err, says);
	if (code != MTR_EEXIST) /* nothing left behind (else it was there before) */
		assert_int_not_equal(access(out, F_OK), 0);
}

/* ---- pitr_record_encode / pitr_record_decode ---- */

static void test_record(void **state)
{
	(void)state;
	struct batch b = {0}, d;
	assert_int_equal(batch_push(&b, 3, 1, 10), 0);
	assert_int_equal(batch_push(&b, 7, 5, 5), 0);
	uint8_t buf[256];
	int n = pitr_record_encode(buf, sizeof buf, 123456789, &b);
	assert_int_equal(n, (int)(PITR_RECORD_HDR + batch_encoded_size(&b)));
	uint64_t ms;
	assert_int_equal(pitr_record_decode(buf, (size_t)n, &ms, &d), 0);
	assert_int_equal(ms, 123456789);
	assert_true(batch_equal(&b, &d));
	batch_free(&d);
	assert_int_equal(pitr_record_encode(buf, 8, 1, &b), MTR_ETOOBIG);
	assert_int_equal(pitr_record_decode(buf, 5, &ms, &d), MTR_ETRUNCATED);
	buf[n] = 0;
	assert_int_equal(pitr_record_decode(buf, (size_t)n + 1, &ms, &d), MTR_EMALFORMED); /* trailing byte */
	buf[0] = 2;
	assert_int_equal(pitr_record_decode(buf, (size_t)n, &ms, &d), MTR_EMALFORMED); /* version */
	batch_free(&b);
}

/* ---- pitr_restore: targets ---- */

static void test_until_instance_and_time(void **state)
{
	(void)state;
	make_log(1, 10, 0, 0);
	struct pitr_result r;
	assert_int_equal(restore("5", &r), 0);
	assert_int_equal(r.from, 2);
	assert_int_equal(r.until, 5);
	assert_int_equal(r.until_ms, 5000);
	assert_int_equal(applied(), 5);
	unlink(out);
	/* the last instance chosen at or before the time */
	assert_int_equal(restore("@4.999", &r), 0);
	assert_int_equal(r.until, 4);
	unlink(out);
	assert_int_equal(restore("1970-01-01T00:00:07Z", &r), 0);
	assert_int_equal(r.until, 7);
	unlink(out);
	/* the backup itself, by instance and by its own time */
	assert_int_equal(restore("2", &r), 0);
	assert_int_equal(r.until, 2);
	assert_int_equal(applied(), 2);
	unlink(out);
	assert_int_equal(restore("@2.5", &r), 0);
	assert_int_equal(r.until, 2);
	/* the output exists now */
	refused("5", MTR_EEXIST, "exists");
	unlink(out);
	FILE *f = tmpfile();
	assert_int_equal(pitr_list(top, f, err, sizeof err), 0);
	rewind(f);
	char line[256];
	assert_non_null(fgets(line, sizeof line, f));
	assert_non_null(strstr(line, "instances 1 .. 10"));
	fclose(f);
}

/* ---- pitr_restore: refusals ---- */

static void test_refusals(void **state)
{
	(void)state;
	make_log(1, 10, 0, 0);
	refused("1", MTR_EINVAL, "before the backup's instance 2");
	refused("@1.5", MTR_EINVAL, "before the backup's instance 2");
	refused("11", MTR_ENOENT, "ends at instance 10");
	refused("@10", MTR_ENOENT, "ends at instance 10"); /* nothing chosen after: cannot tell */
	refused("tomorrow", MTR_EINVAL, "give an instance");
	refused("1970-13-01T00:00:00Z", MTR_EINVAL, "give an instance");
	struct pitr_opts o = {.backup = items, .logdir = top, .until = "3", .out = out};
	assert_int_not_equal(pitr_restore(&o, &(struct pitr_result){0}, err, sizeof err), 0);
	o.backup = "/nonexistent/backup.db";
	assert_int_equal(pitr_restore(&o, &(struct pitr_result){0}, err, sizeof err), MTR_EIO);
	o.backup = backup;
	o.logdir = "/nonexistent";
	assert_int_equal(pitr_restore(&o, &(struct pitr_result){0}, err, sizeof err), MTR_EIO);
}

static void test_gap(void **state)
{
	(void)state;
	make_log(1, 10, 7, 0);
	struct pitr_result r;
	assert_int_equal(restore("6", &r), 0); /* before the gap */
	unlink(out);
	refused("9", MTR_ENOENT, "has a gap after instance 6");
	refused("7", MTR_ENOENT, "has a gap after instance 6"); /* not "ends": 8 .. 10 follow */
	FILE *f = tmpfile();
	assert_int_equal(pitr_list(top, f, err, sizeof err), 0);
	rewind(f);
	char all[1024] = "";
	size_t n = fread(all, 1, sizeof all - 1, f);
	all[n] = 0;
	fclose(f);
	assert_non_null(strstr(all, "gap: instances 7 .. 7"));
}

static void test_log_does_not_reach_back(void **state)
{
	(void)state;
	make_log(5, 10, 0, 0);
	refused("8", MTR_ENOENT, "does not reach back to the backup's instance 2");
}

static void test_item_compacted_away(void **state)
{
	(void)state;
	make_log(1, 10, 0, 6);
	struct pitr_result r;
	assert_int_equal(restore("5", &r), 0);
	unlink(out);
	refused("6", MTR_ENOENT, "compacted away");
}

static void test_log_ends_at_backup(void **state)
{
	(void)state;
	make_log(1, 2, 0, 0);
	refused("3", MTR_ENOENT, "ends at the backup's instance 2");
	refused("@5", MTR_ENOENT, "ends at the backup's instance 2");
}

static void test_no_history(void **state)
{
	(void)state;
	assert_int_equal(mkdir(items, 0700), 0);
	refused("3", MTR_ENOENT, "holds no chosen history");
}

int main(void)
{
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record),
		cmocka_unit_test_setup_teardown(test_until_instance_and_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_does_not_reach_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_item_compacted_away, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_ends_at_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_history, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
