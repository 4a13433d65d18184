/*
 * test_seglog.c - the segment log: append and read back (buffered, written,
 * direct), rolling, recovery (intact records found again, torn tails and
 * flipped bytes cut), compaction by unref, the state blob, memory mode, a
 * full disk (a small tmpfs: MTR_ENOSPACE, nothing lost, written later).
 */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "metronome.h"
#include "seglog.h"
#include "../testutil.h"
#include "../testutil_fs.h"

/* ---- Fixture ---- */

static char dir[256];

/* 1: open_log writes through the page cache (seglog_opts.no_direct): the
 * tests given a state (cmocka_unit_test_prestate_setup_teardown) */
static int no_direct;

static int setup(void **state)
{
	no_direct = *state != NULL;
	if (testutil_mkdtemp(dir, sizeof dir - 8, "mtr-seglog") != 0)
		return -1;
	strcat(dir, "/items"); /* seglog creates it (and only it) */
	return 0;
}

static int teardown(void **state)
{
	char *slash = strrchr(dir, '/');
	*slash = 0;
	testutil_rmtree(dir);
	return 0;
}

/* ---- Helpers ---- */

static void fill(uint8_t *b, uint64_t stream, uint64_t seq, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		b[i] = (uint8_t)(stream * 131 + seq * 31 + i * 7);
}


static struct seglog *open_log(enum seglog_mode mode, uint64_t seg_size, uint32_t wbuf)
{
	struct seglog_opts o = { .mode = mode, .dir = dir, .seg_size = seg_size, .wbuf_size = wbuf,
				 .no_direct = no_direct };
	struct seglog *log;
	assert_int_equal(seglog_open(&o, &log), 0);
	return log;
}

static void append(struct seglog *log, uint64_t stream, uint64_t seq, uint32_t n, struct seglog_loc *loc)
{
	static uint8_t b[1 << 16];
	fill(b, stream, seq, n);
	assert_int_equal(seglog_append(log, stream, seq, b, n, loc), 0);
}

static void check(struct seglog *log, const struct seglog_loc *loc, uint64_t stream, uint64_t seq)
{
	static uint8_t want[1 << 16];
	static uint8_t *scratch;
	static size_t scap;
	const uint8_t *p;
	if (!log) { /* no log: free the scratch buffer */
		free(scratch);
		scratch = NULL;
		scap = 0;
		return;
	}
	fill(want, stream, seq, loc->len);
	assert_int_equal(seglog_read(log, loc, &p, &scratch, &scap), 0);
	assert_memory_equal(p, want, loc->len);
}

static int count_segments(void)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

static char *seg_file(uint32_t id)
{
	static char p[512];
	snprintf(p, sizeof p, "%s/%012u.seg", dir, id);
	return p;
}

/* Recovery visitor: records what it saw. */
struct seen {
	int n;
	uint64_t stream[256], seq[256];
	struct seglog_loc loc[256];
};

static int visit(void *arg, uint64_t stream, uint64_t seq, const struct seglog_loc *loc)
{
	struct seen *s = arg;
	if (s->n < 256) {
		s->stream[s->n] = stream;
		s->seq[s->n] = seq;
		s->loc[s->n] = *loc;
	}
	s->n++;
	return 1;
}

/* Open the log again: recovery finds n records and no torn one. */
static struct seglog *reopen_all(uint64_t seg_size, uint32_t wbuf, int n)
{
	struct seen seen = {0};
	struct seglog *log = open_log(SEGLOG_DISK, seg_size, wbuf);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, n);
	struct seglog_stats st;
	seglog_stats(log, &st);
	assert_int_equal(st.torn, 0);
	return log;
}

/* ---- seglog_append / seglog_read ---- */

static void test_append_read(void **state)
{
	struct seglog *log = open_log(SEGLOG_DISK, 1 << 20, 4096);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	struct seglog_loc loc[100];
	for (int i = 0; i < 100; i++)
		append(log, 7, (uint64_t)i + 1, 10 + (uint32_t)i * 3, &loc[i]);
	append(log, 8, 1, 20000, &loc[0]); /* larger than the buffer: direct write */
	for (int i = 1; i < 100; i++)
		check(log, &loc[i], 7, (uint64_t)i + 1);
	check(log, &loc[0], 8, 1);
	assert_int_equal(seglog_sync(log), 0);
	for (int i = 1; i < 100; i++)
		check(log, &loc[i], 7, (uint64_t)i + 1);
	struct seglog_stats st;
	seglog_stats(log, &st);
	assert_int_equal(st.appended, 101);
	assert_true(st.writes >= 2 && st.writes < 20); /* buffered, not one per record */
	assert_int_equal(st.syncs, 1);
	uint8_t b[4] = { 0 };
	assert_int_equal(seglog_append(log, 1, 1, b, 0, &loc[0]), MTR_EINVAL);
	seglog_close(log);
	check(NULL, NULL, 0, 0); /* frees the scratch */
}

static void test_roll_and_recover(void **state)
{
	struct seglog *log = open_log(SEGLOG_DISK, 4096, 4096);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	struct seglog_loc loc[200];
	for (int i = 0; i < 200; i++)
		append(log, 1 + (uint64_t)i % 3, (uint64_t)i + 1, 100, &loc[i]);
	assert_int_equal(seglog_sync(log), 0);
	int nseg = count_segments();
	assert_true(nseg >= 5); /* 200 * 132 bytes over 4 KiB segments */
	seglog_close(log);

	struct seen seen = { 0 };
	log = open_log(SEGLOG_DISK, 4096, 4096);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, 200);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(seen.stream[i], 1 + (uint64_t)i % 3);
		assert_int_equal(seen.seq[i], (uint64_t)i + 1);
		assert_memory_equal(&seen.loc[i], &loc[i], sizeof loc[i]);
		check(log, &seen.loc[i], seen.stream[i], seen.seq[i]);
	}
	/* appends continue in the last segment */
	struct seglog_loc l2;
	append(log, 9, 9, 50, &l2);
	assert_int_equal(l2.seg, loc[199].seg);
	assert_int_equal(seglog_sync(log), 0);
	seglog_close(log);
	check(NULL, NULL, 0, 0);
}

/* ---- recovery of damaged segments ---- */

static void make_log(int n, struct seglog_loc *loc)
{
	struct seglog *log = open_log(SEGLOG_DISK, 1 << 20, 4096);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	for (int i = 0; i < n; i++)
		append(log, 5, (uint64_t)i + 1, 40 + (uint32_t)i, &loc[i]);
	assert_int_equal(seglog_sync(log), 0);
	seglog_close(log);
}

static void test_torn_tail(void **state)
{
	struct seglog_loc loc[20];
	make_log(20, loc);
	/* cut the file in the middle of record 15 (index 14) */
	assert_int_equal(truncate(seg_file(loc[14].seg), (off_t)(loc[14].off + 5)), 0);
	struct seen seen = { 0 };
	struct seglog *log = open_log(SEGLOG_DISK, 1 << 20, 4096);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, 14);
	for (int i = 0; i < 14; i++)
		assert_int_equal(seen.seq[i], (uint64_t)i + 1);
	struct seglog_stats st;
	seglog_stats(log, &st);
	assert_int_equal(st.torn, 1);
	/* the file was cut back to the intact prefix; a new append follows it */
	struct stat sb;
	assert_int_equal(stat(seg_file(loc[14].seg), &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, loc[13].off + loc[13].len);
	struct seglog_loc l;
	append(log, 5, 15, 54, &l);
	assert_int_equal(l.off, loc[14].off);
	assert_int_equal(seglog_sync(log), 0);
	seglog_close(log);
	seen.n = 0;
	log = open_log(SEGLOG_DISK, 1 << 20, 4096);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, 15);
	seglog_close(log);
}

static void test_flipped_byte(void **state)
{
	struct seglog_loc loc[20];
	make_log(20, loc);
	/* flip one byte of record 8's item bytes (index 7) */
	int fd = open(seg_file(loc[7].seg), O_RDWR);
	assert_true(fd >= 0);
	uint8_t c;
	assert_int_equal(pread(fd, &c, 1, (off_t)loc[7].off + 3), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)loc[7].off + 3), 1);
	close(fd);
	struct seen seen = { 0 };
	struct seglog *log = open_log(SEGLOG_DISK, 1 << 20, 4096);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, 7);
	for (int i = 0; i < 7; i++)
		check(log, &seen.loc[i], 5, (uint64_t)i + 1);
	seglog_close(log);
}

static void test_garbage_segment(void **state)
{
	struct seglog_loc loc[3];
	make_log(3, loc);
	/* a second segment with no valid header is dropped whole */
	FILE *f = fopen(seg_file(loc[0].seg + 1), "w");
	assert_non_null(f);
	fputs("not a segment", f);
	fclose(f);
	struct seen seen = { 0 };
	struct seglog *log = open_log(SEGLOG_DISK, 1 << 20, 4096);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_int_equal(count_segments(), 1);
	struct seglog_loc l;
	append(log, 5, 4, 10, &l);
	assert_int_equal(seglog_sync(log), 0);
	seglog_close(log);
	check(NULL, NULL, 0, 0);
}

/* ---- seglog_unref: compaction ---- */

static void test_unref_deletes(void **state)
{
	struct seglog *log = open_log(SEGLOG_DISK, 2048, 4096);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	struct seglog_loc loc[1000];
	int released = 0;
	for (int i = 0; i < 1000; i++) {
		append(log, 1, (uint64_t)i + 1, 100, &loc[i]);
		/* release everything but the last 30 records */
		while (released < i - 30)
			seglog_unref(log, loc[released++].seg);
		if (i % 10 == 0) {
			assert_int_equal(seglog_sync(log), 0);
			assert_true(count_segments() <= 5);
		}
	}
	assert_int_equal(seglog_sync(log), 0);
	struct seglog_stats st;
	seglog_stats(log, &st);
	assert_true(st.segs_created > 50);
	assert_int_equal(st.segs_deleted + st.segs_live, st.segs_created);
	assert_true(st.segs_live <= 3);
	for (int i = released; i < 1000; i++)
		check(log, &loc[i], 1, (uint64_t)i + 1);
	seglog_close(log);
	check(NULL, NULL, 0, 0);
}

/* ---- retention (seglog_opts.retain_*, seglog_set_now, seglog_scan_file) ---- */

static int count_visit(void *arg, uint64_t stream, uint64_t seq, const struct seglog_loc *loc)
{
	(void)stream, (void)seq, (void)loc;
	(*(int *)arg)++;
	return 0;
}

static void test_retention(void **state)
{
	(void)state;
	struct seglog_opts o = {.mode = SEGLOG_DISK, .dir = dir, .seg_size = 2048, .wbuf_size = 4096,
				.retain_bytes = 5 * 2048, .retain_ms = 1000};
	struct seglog *log;
	assert_int_equal(seglog_open(&o, &log), 0);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	seglog_set_now(log, 10000);
	struct seglog_loc loc[300];
	int released = 0;
	for (int i = 0; i < 300; i++) {
		append(log, 1, (uint64_t)i + 1, 100, &loc[i]);
		while (released < i - 10)
			seglog_unref(log, loc[released++].seg);
		if (i % 10 == 0)
			assert_int_equal(seglog_sync(log), 0);
	}
	assert_int_equal(seglog_sync(log), 0);
	struct seglog_stats st;
	seglog_stats(log, &st);
	/* the bytes bound: as many dead segments as fit in 5 * 2048 */
	assert_true(st.retained_segs >= 4);
	assert_true(st.retained_bytes <= o.retain_bytes);
	assert_true(st.segs_deleted > 0);
	assert_int_equal(count_segments(), (int)st.segs_live);
	/* a retained segment reads whole, without being changed (the one
	 * before the last released record's, which is the active one) */
	uint32_t first = loc[released - 1].seg - 1;
	struct stat sb1, sb2;
	assert_int_equal(stat(seg_file(first), &sb1), 0);
	int nrec = 0;
	uint64_t good = 0;
	assert_int_equal(seglog_scan_file(seg_file(first), first, 0, count_visit, &nrec, &good), 0);
	assert_true(nrec > 5);
	assert_int_equal(good, (uint64_t)sb1.st_size);
	assert_int_equal(stat(seg_file(first), &sb2), 0);
	assert_int_equal(sb2.st_size, sb1.st_size);
	assert_int_equal(seglog_scan_file(seg_file(first), first + 1, 0, count_visit, &nrec, &good), 0);
	assert_int_equal(good, 0); /* the id must match the header */
	assert_int_equal(seglog_scan_file("/nonexistent/x.seg", 1, 0, NULL, NULL, NULL), MTR_EIO);
	/* a segment died: the owner is asked to save its release points once */
	assert_true(seglog_delete_pending(log));
	assert_int_equal(seglog_state_save(log, "x", 1), 0);
	/* the time bound: nothing is due yet, then everything is */
	assert_false(seglog_delete_pending(log));
	seglog_set_now(log, 10000 + 1001);
	assert_true(seglog_delete_pending(log));
	assert_int_equal(seglog_sync(log), 0);
	seglog_stats(log, &st);
	assert_int_equal(st.retained_segs, 0);
	for (int i = released; i < 300; i++)
		check(log, &loc[i], 1, (uint64_t)i + 1);
	seglog_close(log);

	check(NULL, NULL, 0, 0);
}

static int drop_visit(void *arg, uint64_t stream, uint64_t seq, const struct seglog_loc *loc)
{
	(void)arg, (void)stream, (void)loc;
	return seq > 290; /* the rest was released */
}

static void test_retention_restart(void **state)
{
	(void)state;
	struct seglog_opts o = {.mode = SEGLOG_DISK, .dir = dir, .seg_size = 2048, .wbuf_size = 4096,
				.retain_bytes = 1 << 20, .retain_ms = 3600 * 1000};
	struct seglog *log;
	assert_int_equal(seglog_open(&o, &log), 0);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	struct seglog_loc loc;
	for (int i = 0; i < 300; i++)
		append(log, 1, (uint64_t)i + 1, 100, &loc);
	assert_int_equal(seglog_sync(log), 0);
	seglog_close(log);
	int before = count_segments();
	assert_true(before > 10);

	/* recovery finds most of it released: kept, their files being new */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	assert_int_equal(seglog_open(&o, &log), 0);
	seglog_set_now(log, now);
	assert_int_equal(seglog_recover(log, drop_visit, NULL), 0);
	assert_int_equal(seglog_state_save(log, "x", 1), 0);
	assert_false(seglog_delete_pending(log));
	assert_int_equal(seglog_sync(log), 0);
	assert_int_equal(count_segments(), before);
	/* a full disk: retention gives way */
	seglog_retain_drop(log);
	assert_true(seglog_delete_pending(log));
	assert_int_equal(seglog_sync(log), 0);
	struct seglog_stats st;
	seglog_stats(log, &st);
	assert_int_equal(st.retained_segs, 0);
	assert_true(count_segments() < before && count_segments() <= 2);
	seglog_close(log);
}

/* ---- state blob ---- */

static void test_state_blob(void **state)
{
	struct seglog *log = open_log(SEGLOG_DISK, 0, 0);
	const void *p;
	size_t n;
	seglog_state_get(log, &p, &n);
	assert_int_equal(n, 0);
	assert_int_equal(seglog_state_save(log, "hello", 5), 0);
	assert_int_equal(seglog_state_save(log, "world!", 6), 0);
	seglog_close(log);
	log = open_log(SEGLOG_DISK, 0, 0);
	seglog_state_get(log, &p, &n);
	assert_int_equal(n, 6);
	assert_memory_equal(p, "world!", 6);
	seglog_close(log);
	/* damage it: ignored */
	char path[600];
	snprintf(path, sizeof path, "%s/state", dir);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "W", 1, 16), 1);
	close(fd);
	log = open_log(SEGLOG_DISK, 0, 0);
	seglog_state_get(log, &p, &n);
	assert_int_equal(n, 0);
	seglog_close(log);
}

/* ---- a full disk (doc/storage.md "A full disk") ---- */

/* The records appended, for the child's own checks (no cmocka there). */
static int rec_ok(struct seglog *log, const struct seglog_loc *loc, uint64_t seq, uint32_t n)
{
	static uint8_t want[256], *scratch;
	static size_t scap;
	const uint8_t *p;
	fill(want, 5, seq, n);
	return seglog_read(log, loc, &p, &scratch, &scap) == 0 && loc->len == n && memcmp(p, want, n) == 0;
}

/*
 * In a child with a 256 KiB tmpfs under the log: records appended while the
 * disk is full stay readable from the buffer, the flush fails with
 * MTR_ENOSPACE (a partial write included) and keeps them, an append that
 * needs a flush stores nothing; with the space back, the same sync writes
 * them, and recovery finds every stored record.  Returns 0, 77 (no tmpfs
 * here: skip) or the number of the failed step.
 */
static int full_child(void)
{
	char top[256];
	snprintf(top, sizeof top, "%s", dir);
	*strrchr(top, '/') = 0;
	if (testutil_small_fs(top, 256) != 0)
		return 77;
	struct seglog_opts o = { .mode = SEGLOG_DISK, .dir = dir, .seg_size = 1 << 20, .wbuf_size = 4096 };
	struct seglog *log;
	if (seglog_open(&o, &log) != 0 || seglog_recover(log, NULL, NULL) != 0)
		return 1;
	static struct seglog_loc loc[400];
	static uint8_t b[256];
	uint64_t n = 0;
	for (; n < 10; n++) {
		fill(b, 5, n + 1, 100);
		if (seglog_append(log, 5, n + 1, b, 100, &loc[n]) != 0)
			return 2;
	}
	if (seglog_sync(log) != 0)
		return 3;
	char filler[300];
	snprintf(filler, sizeof filler, "%s/filler", top);
	if (testutil_fill(filler) != 0)
		return 4;
	for (; n < 40; n++) { /* 30 x 132 bytes: in the buffer */
		fill(b, 5, n + 1, 100);
		if (seglog_append(log, 5, n + 1, b, 100, &loc[n]) != 0)
			return 5;
	}
	if (seglog_sync(log) != MTR_ENOSPACE)
		return 6;
	struct seglog_stats st;
	seglog_stats(log, &st);
	if (st.write_full < 1)
		return 7;
	for (uint64_t i = 0; i < n; i++)
		if (!rec_ok(log, &loc[i], i + 1, 100))
			return 8;
	int rc = 0;
	for (; n < 400; n++) { /* until an append needs the full disk */
		fill(b, 5, n + 1, 100);
		rc = seglog_append(log, 5, n + 1, b, 100, &loc[n]);
		if (rc != 0)
			break;
	}
	if (rc != MTR_ENOSPACE || n < 40 || seglog_sync(log) != MTR_ENOSPACE)
		return 9;
	if (unlink(filler) != 0 || seglog_sync(log) != 0)
		return 10;
	for (uint64_t i = 0; i < n; i++)
		if (!rec_ok(log, &loc[i], i + 1, 100))
			return 11;
	seglog_close(log);
	struct seen s = { 0 };
	if (seglog_open(&o, &log) != 0 || seglog_recover(log, visit, &s) != 0 || s.n != (int)n)
		return 12;
	for (int i = 0; i < s.n && i < 256; i++)
		if (s.seq[i] != (uint64_t)i + 1 || !rec_ok(log, &s.loc[i], (uint64_t)i + 1, 100))
			return 13;
	seglog_close(log);
	return 0;
}

static void test_disk_full(void **state)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(full_child());
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip(); /* neither root nor a user namespace: no tmpfs of our own */
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- memory mode ---- */

static void test_memory_mode(void **state)
{
	struct seglog *log = open_log(SEGLOG_MEMORY, 4096, 0);
	struct seglog_loc loc[300];
	for (int i = 0; i < 300; i++)
		append(log, 2, (uint64_t)i + 1, 60, &loc[i]);
	append(log, 2, 301, 10000, &loc[0]); /* bigger than a chunk */
	check(log, &loc[0], 2, 301);
	for (int i = 1; i < 300; i++)
		check(log, &loc[i], 2, (uint64_t)i + 1);
	for (int i = 1; i < 250; i++)
		seglog_unref(log, loc[i].seg);
	struct seglog_stats st;
	seglog_stats(log, &st);
	assert_true(st.segs_deleted >= 2);
	assert_int_equal(st.syncs, 0);
	assert_int_equal(seglog_sync(log), 0);
	for (int i = 250; i < 300; i++)
		check(log, &loc[i], 2, (uint64_t)i + 1);
	seglog_close(log);
	assert_int_equal(access(dir, F_OK), -1); /* nothing written */
	check(NULL, NULL, 0, 0);
}

/* The page cache of the active segment: pages more than cache_keep bytes
 * behind its end are given back (mincore() on a mapping of the file says
 * whether a page is in the page cache), the last cache_keep bytes stay,
 * and an item whose pages were given back still reads whole. */
static void test_page_cache_kept(void **state)
{
	(void)state;
	struct seglog_opts o = {.mode = SEGLOG_DISK, .dir = dir, .seg_size = 64u << 20, .cache_keep = 4u << 20,
				.no_direct = 1};
	struct seglog *log;
	assert_int_equal(seglog_open(&o, &log), 0);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	struct seglog_loc first, loc;
	/* 12 MB, synced every 256 KB as a server's group commits do: pages
	 * are clean (on the disk) long before they fall behind */
	for (uint64_t i = 0; i < 3000; i++) {
		append(log, 3, i + 1, 4000, i == 0 ? &first : &loc);
		if (i % 64 == 63)
			assert_int_equal(seglog_sync(log), 0);
	}
	assert_int_equal(seglog_sync(log), 0);
	struct seglog_stats st;
	seglog_stats(log, &st);
	uint64_t end = loc.off + loc.len;
	print_message("# %llu of %llu bytes given back\n", (unsigned long long)st.cache_dropped,
		      (unsigned long long)end);
	assert_true(st.cache_dropped >= end - (4u << 20) - SEGLOG_CACHE_STEP - (1u << 20));
	assert_true(st.cache_dropped <= end - (4u << 20));
	int fd = open(seg_file(1), O_RDONLY);
	assert_true(fd >= 0);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), npg = (size_t)(end + pg - 1) / pg;
	void *m = mmap(NULL, npg * pg, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	unsigned char *vec = malloc(npg);
	assert_non_null(vec);
	assert_int_equal(mincore(m, npg * pg, vec), 0);
	size_t front = 0, back = 0, nfront = (size_t)(st.cache_dropped / pg), nback = (size_t)((4u << 20) / pg);
	for (size_t i = 0; i < nfront; i++)
		front += vec[i] & 1;
	for (size_t i = npg - nback; i < npg; i++)
		back += vec[i] & 1;
	print_message("# resident: %zu of the first %zu pages, %zu of the last %zu\n", front, nfront, back, nback);
	assert_true(front < nfront / 20);
	assert_true(back > nback * 9 / 10);
	free(vec);
	munmap(m, npg * pg);
	close(fd);
	check(log, &first, 3, 1); /* from the disk */
	check(log, &loc, 3, 3000);
	seglog_close(log);
	check(NULL, NULL, 0, 0);
}

/* The active segment's file is allocated ahead of its end
 * (SEGLOG_PREALLOC_STEP): its size does not move with each sync, recovery
 * takes the zeros after the records for no torn record and writes on after
 * them, a sealed segment is cut to its records, and bytes written after the
 * records (a torn append into the allocation) are cut, counted alone. */
static void test_prealloc(void **state)
{
	(void)state;
	struct seglog *log = open_log(SEGLOG_DISK, 64u << 20, 1u << 16);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	struct seglog_loc loc[200];
	for (int i = 0; i < 100; i++) {
		append(log, 1, (uint64_t)i + 1, 300, &loc[i]);
		if (i % 10 == 9)
			assert_int_equal(seglog_sync(log), 0);
	}
	struct seglog_stats st;
	seglog_stats(log, &st);
	struct stat sb;
	assert_int_equal(stat(seg_file(1), &sb), 0);
	uint64_t end = loc[99].off + loc[99].len;
	if (st.preallocs == 0) { /* a file system without fallocate: the log writes on without */
		print_message("# no preallocation here: the file is %llu bytes\n", (unsigned long long)sb.st_size);
		assert_int_equal((uint64_t)sb.st_size, end);
		seglog_close(log);
		return;
	}
	assert_int_equal(st.preallocs, 1); /* 30 KB: within one step */
	assert_int_equal((uint64_t)sb.st_size, SEGLOG_PREALLOC_STEP);
	seglog_close(log);

	/* reopened: every record, nothing torn, and the next append goes after them */
	log = reopen_all(64u << 20, 1u << 16, 100);
	seglog_stats(log, &st);
	assert_int_equal(st.disk_bytes, end);
	for (int i = 100; i < 200; i++)
		append(log, 1, (uint64_t)i + 1, 300, &loc[i]);
	assert_int_equal(loc[100].off, end + SEGLOG_REC_HDR_SIZE);
	assert_int_equal(seglog_sync(log), 0);
	for (int i = 0; i < 200; i++)
		check(log, &loc[i], 1, (uint64_t)i + 1);
	seglog_close(log);

	/* a torn append: a few bytes written into the allocation */
	end = loc[199].off + loc[199].len;
	int fd = open(seg_file(1), O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\x4d\x52\x45\x43\x07", 5, (off_t)end), 5);
	close(fd);
	struct seen seen = {0};
	log = open_log(SEGLOG_DISK, 64u << 20, 1u << 16);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, 200);
	seglog_stats(log, &st);
	assert_int_equal(st.torn, 1);
	assert_int_equal(st.torn_bytes, 5);
	assert_int_equal(stat(seg_file(1), &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, end); /* cut, allocation and all */
	/* writes on (allocating again), then a roll seals it to its records */
	append(log, 1, 201, 300, &loc[0]);
	assert_int_equal(seglog_sync(log), 0);
	assert_int_equal(stat(seg_file(1), &sb), 0);
	assert_true((uint64_t)sb.st_size > loc[0].off + loc[0].len);
	seglog_close(log);
	log = open_log(SEGLOG_DISK, 4096, 1u << 16); /* a smaller segment size: the next append rolls */
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	append(log, 1, 202, 300, &loc[1]);
	assert_int_equal(loc[1].seg, 2);
	assert_int_equal(seglog_sync(log), 0);
	assert_int_equal(stat(seg_file(1), &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, loc[0].off + loc[0].len);
	assert_int_equal(stat(seg_file(2), &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, 4096); /* allocated to the segment size, not a step */
	seglog_close(log);
	check(NULL, NULL, 0, 0);
}

/* Direct writes (doc/storage.md "Direct writes"): a ring of 64 KiB kept
 * for reads and a 16 KiB buffer, so that records wrap around the ring's
 * end; every record reads whole from the ring (around its end too), from
 * the file once the ring has moved on, after a record larger than the
 * buffer (written around the ring), and after a reopen. */
static void test_direct_ring(void **state)
{
	(void)state;
	struct seglog_opts o = {.mode = SEGLOG_DISK, .dir = dir, .seg_size = 1u << 20, .wbuf_size = 16u << 10,
				.cache_keep = 64u << 10};
	struct seglog *log;
	assert_int_equal(seglog_open(&o, &log), 0);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	static struct seglog_loc loc[3000];
	int n = 0;
	for (; n < 1500; n++) {
		append(log, 4, (uint64_t)n + 1, 50 + (uint32_t)(n * 37 % 900), &loc[n]);
		if (n % 7 == 6)
			assert_int_equal(seglog_sync(log), 0);
		if (n >= 10) /* recent ones: the ring */
			check(log, &loc[n - 10], 4, (uint64_t)n - 9);
	}
	struct seglog_stats st;
	seglog_stats(log, &st);
	if (st.direct_writes == 0) {
		print_message("# no direct writes on this file system: the page cache path ran\n");
	}
	append(log, 5, 1, 40000, &loc[n++]); /* larger than the buffer: not in the ring */
	for (; n < 2000; n++) {
		append(log, 4, (uint64_t)n, 50 + (uint32_t)(n * 37 % 900), &loc[n]);
		if (n % 5 == 4)
			assert_int_equal(seglog_sync(log), 0);
	}
	assert_int_equal(seglog_sync(log), 0);
	for (int i = 0; i < n; i++)
		check(log, &loc[i], i == 1500 ? 5 : 4, i == 1500 ? 1 : (uint64_t)(i < 1500 ? i + 1 : i));
	seglog_close(log);
	struct seen seen = {0};
	assert_int_equal(seglog_open(&o, &log), 0);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, n);
	seglog_stats(log, &st);
	assert_int_equal(st.torn, 0);
	/* appends go on after a reopen (the first block from the file) */
	for (int i = 0; i < 200; i++)
		append(log, 6, (uint64_t)i + 1, 300, &loc[n + i]);
	assert_int_equal(seglog_sync(log), 0);
	for (int i = 0; i < 200; i++)
		check(log, &loc[n + i], 6, (uint64_t)i + 1);
	check(log, &loc[1999], 4, 1999);
	seglog_close(log);
	memset(&seen, 0, sizeof seen);
	assert_int_equal(seglog_open(&o, &log), 0);
	assert_int_equal(seglog_recover(log, visit, &seen), 0);
	assert_int_equal(seen.n, n + 200);
	seglog_close(log);
	check(NULL, NULL, 0, 0);
}

/* The fd a log writes segment id through with O_DIRECT (/proc/self/fd and
 * fdinfo's flags), or -1. */
static int direct_fd(uint32_t id)
{
	char want[PATH_MAX];
	if (realpath(seg_file(id), want) == NULL)
		return -1;
	for (int fd = 3; fd < 1024; fd++) {
		char p[64], link[PATH_MAX], line[128];
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(p, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (strcmp(link, want) != 0)
			continue;
		snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
		FILE *f = fopen(p, "r");
		unsigned long flags = 0;
		while (f && fgets(line, sizeof line, f))
			if (sscanf(line, "flags: %lo", &flags) == 1)
				break;
		if (f)
			fclose(f);
		if (flags & O_DIRECT)
			return fd;
	}
	return -1;
}

/* A file system that takes the O_DIRECT open but refuses the write
 * (EINVAL): the log's direct fd is replaced by one whose writes fail so
 * (/proc/self/oom_score_adj takes only a number); the buffered records go
 * through the page cache, nothing is lost, and later writes do too. */
static void test_direct_refused(void **state)
{
	(void)state;
	struct seglog *log = open_log(SEGLOG_DISK, 1u << 20, 1u << 16);
	assert_int_equal(seglog_recover(log, NULL, NULL), 0);
	struct seglog_loc loc[300];
	for (int i = 0; i < 100; i++)
		append(log, 2, (uint64_t)i + 1, 200, &loc[i]);
	int fd = direct_fd(1);
	if (fd < 0) {
		print_message("# no direct writes on this file system: nothing to refuse\n");
		seglog_close(log);
		return;
	}
	int bad = open("/proc/self/oom_score_adj", O_WRONLY);
	assert_true(bad >= 0);
	assert_int_equal(dup2(bad, fd), fd);
	close(bad);
	assert_int_equal(seglog_sync(log), 0);
	struct seglog_stats st;
	seglog_stats(log, &st);
	assert_int_equal(st.direct_writes, 0);
	for (int i = 100; i < 300; i++) {
		append(log, 2, (uint64_t)i + 1, 200, &loc[i]);
		if (i % 50 == 0)
			assert_int_equal(seglog_sync(log), 0);
	}
	assert_int_equal(seglog_sync(log), 0);
	for (int i = 0; i < 300; i++)
		check(log, &loc[i], 2, (uint64_t)i + 1);
	seglog_close(log);
	seglog_close(reopen_all(1u << 20, 1u << 16, 300));
	check(NULL, NULL, 0, 0);
}

int main(void)
{
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_read, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_append_read, setup, teardown, (void *)1),
		cmocka_unit_test_setup_teardown(test_direct_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_cache_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prealloc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roll_and_recover, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_roll_and_recover, setup, teardown, (void *)1),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unref_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
	};
	return cmocka_run_group_tests_name("seglog", tests, NULL, NULL);
}
