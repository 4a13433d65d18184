/*
 * test_ingest.c - a server's receive state: out-of-order and duplicated
 * arrival against a simple model (seeded PRNG), watermarks and gaps, tail
 * loss through a heartbeat's high, retry timers, durability (disk watermark
 * moves only at sync), recovery after a crash and after torn or damaged
 * segments, compaction keeping the directory bounded, and the hostile-input
 * bounds.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "seglog.h"
#include "../testutil.h"

/* ---- Fixture ---- */

static char top[256], dir[300];

static int setup(void **state)
{
	if (testutil_mkdtemp(top, sizeof top, "mtr-ingest") != 0)
		return -1;
	snprintf(dir, sizeof dir, "%s/items", top);
	return 0;
}

static int teardown(void **state)
{
	testutil_rmtree(top);
	return 0;
}

/* ---- Helpers ---- */

static uint64_t rng_state;
static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

/* Length and contents of item (stream, seq): deterministic. */
static uint32_t item_len(uint64_t stream, uint64_t seq)
{
	return 20 + (uint32_t)((stream * 7 + seq * 13) % 200);
}

static void item_fill(uint8_t *b, uint64_t stream, uint64_t seq)
{
	uint32_t n = item_len(stream, seq);
	for (uint32_t i = 0; i < n; i++)
		b[i] = (uint8_t)(stream * 131 + seq * 31 + i * 7);
}

static int add(struct ingest *ing, uint64_t stream, uint64_t seq)
{
	uint8_t b[256];
	item_fill(b, stream, seq);
	return ingest_add(ing, stream, seq, b, item_len(stream, seq));
}

static void check_item(struct ingest *ing, uint64_t stream, uint64_t seq)
{
	uint8_t want[256];
	const uint8_t *p;
	uint32_t len;
	item_fill(want, stream, seq);
	assert_int_equal(ingest_get(ing, stream, seq, &p, &len), 0);
	assert_int_equal(len, item_len(stream, seq));
	assert_memory_equal(p, want, len);
}

static struct ingest *open_ing(enum ingest_durability d, uint64_t seg_size)
{
	struct ingest_opts o = { .durability = d, .dir = dir, .seg_size = seg_size, .retry_ns = 100 };
	struct ingest *ing;
	assert_int_equal(ingest_open(&o, &ing), 0);
	return ing;
}

static int count_segments(void)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

/* Byte offset of record seq's header in segment 1 when items 1..seq-1 of
 * `stream` were appended in order before it (and nothing else). */
static off_t rec_off(uint64_t stream, uint64_t seq)
{
	off_t off = SEGLOG_SEG_HDR_SIZE;
	for (uint64_t q = 1; q < seq; q++)
		off += SEGLOG_REC_HDR_SIZE + item_len(stream, q);
	return off;
}

/* ---- ingest_add against a model ---- */

enum { S = 3, N = 400 };

static void run_model(enum ingest_durability d, uint64_t seed)
{
	struct ingest *ing = open_ing(d, 16384);
	rng_state = seed;
	/* deliveries: every (stream, seq) 0..3 times, shuffled; those delivered
	 * 0 times are repaired at the end */
	static uint64_t dl[S * N * 3][2];
	int n = 0;
	for (uint64_t s = 1; s <= S; s++)
		for (uint64_t q = 1; q <= N; q++) {
			int copies = (int)(rnd() % 10);
			copies = copies == 0 ? 0 : copies < 7 ? 1 : copies < 9 ? 2 : 3;
			for (int c = 0; c < copies; c++) {
				dl[n][0] = s;
				dl[n][1] = q;
				n++;
			}
		}
	for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
		int j = (int)(rnd() % (uint32_t)(i + 1));
		uint64_t t0 = dl[i][0], t1 = dl[i][1];
		dl[i][0] = dl[j][0], dl[i][1] = dl[j][1];
		dl[j][0] = t0, dl[j][1] = t1;
	}
	static uint8_t have[S + 1][N + 2];
	memset(have, 0, sizeof have);
	uint64_t synced_wm[S + 1] = { 0 }, high[S + 1] = { 0 };
	uint64_t dups = 0, now = 1000;
	for (int i = 0; i < n; i++) {
		uint64_t s = dl[i][0], q = dl[i][1];
		int rc = add(ing, s, q);
		if (have[s][q]) {
			assert_int_equal(rc, MTR_EDUPLICATE);
			dups++;
		} else {
			assert_int_equal(rc, 0);
			have[s][q] = 1;
		}
		if (q > high[s])
			high[s] = q;
		if (rnd() % 8 == 0 || i == n - 1) {
			assert_int_equal(ingest_sync(ing), 0);
			for (uint64_t t = 1; t <= S; t++) {
				uint64_t w = 0;
				while (w < N && have[t][w + 1])
					w++;
				synced_wm[t] = w;
			}
		}
		/* watermarks: held = synced (disk) or stored (memory) */
		for (uint64_t t = 1; t <= S; t++) {
			uint64_t w = 0;
			while (w < N && have[t][w + 1])
				w++;
			uint64_t want = d == INGEST_DISK ? synced_wm[t] : w;
			assert_int_equal(ingest_watermark(ing, t), want);
			assert_true(ingest_holds(ing, t, want));
			assert_false(ingest_holds(ing, t, want + 1));
		}
		/* gaps of stream s: exactly the model's missing ranges below high */
		if (i % 17 == 0) {
			now += 1000; /* everything due again */
			struct ingest_range r[N];
			int k = ingest_gaps(ing, s, now, r, N);
			int m = 0;
			for (uint64_t x = 1; x <= high[s]; x++) {
				if (have[s][x] || (x > 1 && !have[s][x - 1] && m > 0 && r[m - 1].last >= x))
					continue;
				uint64_t y = x;
				while (y < high[s] && !have[s][y + 1])
					y++;
				assert_true(m < k);
				assert_int_equal(r[m].stream, s);
				assert_int_equal(r[m].first, x);
				assert_int_equal(r[m].last, y);
				m++;
			}
			assert_int_equal(m, k);
		}
	}
	/* repair: deliver what never came, then everything is held */
	for (uint64_t s = 1; s <= S; s++)
		for (uint64_t q = 1; q <= N; q++)
			if (!have[s][q])
				assert_int_equal(add(ing, s, q), 0);
	assert_int_equal(ingest_sync(ing), 0);
	for (uint64_t s = 1; s <= S; s++) {
		assert_int_equal(ingest_watermark(ing, s), N);
		struct ingest_range r[4];
		assert_int_equal(ingest_gaps(ing, s, now + 10000, r, 4), 0);
		for (uint64_t q = 1; q <= N; q += 7)
			check_item(ing, s, q);
	}
	struct ingest_stats st;
	ingest_stats(ing, &st);
	assert_int_equal(st.added, S * N);
	assert_int_equal(st.dup, dups);
	assert_int_equal(st.items_held, S * N);
	ingest_close(ing);
}

static void test_model_memory(void **state)
{
	run_model(INGEST_MEMORY, 1);
	run_model(INGEST_MEMORY, 2);
}

static void test_model_disk(void **state)
{
	run_model(INGEST_DISK, 3);
}

/* ---- ingest_note_high / ingest_gaps ---- */

static void test_tail_loss_heartbeat(void **state)
{
	struct ingest *ing = open_ing(INGEST_MEMORY, 0);
	struct ingest_range r[4];
	for (uint64_t q = 1; q <= 5; q++)
		assert_int_equal(add(ing, 9, q), 0);
	assert_int_equal(ingest_gaps(ing, 9, 1000, r, 4), 0);
	/* the proxy says it sent up to 8: 6..8 were lost at the tail */
	assert_int_equal(ingest_note_high(ing, 9, 8), 0);
	assert_int_equal(ingest_gaps(ing, 9, 1000, r, 4), 1);
	assert_int_equal(r[0].stream, 9);
	assert_int_equal(r[0].first, 6);
	assert_int_equal(r[0].last, 8);
	assert_int_equal(add(ing, 9, 7), 0);
	assert_int_equal(ingest_gaps(ing, 9, 2000, r, 4), 2);
	assert_int_equal(r[0].first, 6);
	assert_int_equal(r[0].last, 6);
	assert_int_equal(r[1].first, 8);
	assert_int_equal(r[1].last, 8);
	/* an older heartbeat changes nothing; a heartbeat of a new stream
	 * makes all of it a gap */
	assert_int_equal(ingest_note_high(ing, 9, 3), 0);
	assert_int_equal(ingest_note_high(ing, 10, 2), 0);
	assert_int_equal(ingest_gaps_all(ing, 3000, r, 4), 3);
	ingest_close(ing);
}

static void test_retry_timer(void **state)
{
	struct ingest *ing = open_ing(INGEST_MEMORY, 0); /* retry 100 ns */
	struct ingest_range r[8];
	assert_int_equal(add(ing, 1, 1), 0);
	assert_int_equal(add(ing, 1, 5), 0);
	assert_int_equal(ingest_gaps(ing, 1, 1000, r, 8), 1);
	assert_int_equal(r[0].first, 2);
	assert_int_equal(r[0].last, 4);
	assert_int_equal(ingest_gaps(ing, 1, 1050, r, 8), 0); /* asked 50 ns ago */
	assert_int_equal(ingest_gaps(ing, 1, 1099, r, 8), 0);
	assert_int_equal(ingest_gaps(ing, 1, 1100, r, 8), 1);
	assert_int_equal(add(ing, 1, 3), 0);
	assert_int_equal(ingest_gaps(ing, 1, 1200, r, 8), 2);
	/* a new gap is due at once; the old ones are not */
	assert_int_equal(add(ing, 1, 10), 0);
	assert_int_equal(ingest_gaps(ing, 1, 1210, r, 8), 1);
	assert_int_equal(r[0].first, 6);
	assert_int_equal(r[0].last, 9);
	assert_int_equal(ingest_gaps(ing, 1, 1300, r, 8), 2); /* 2 and 4 */
	assert_int_equal(r[0].first, 2);
	assert_int_equal(r[1].first, 4);
	assert_int_equal(ingest_gaps(ing, 1, 1310, r, 8), 1); /* 6..9 */
	/* max bounds the ranges returned; the rest stays due */
	assert_int_equal(ingest_gaps(ing, 1, 5000, r, 1), 1);
	assert_int_equal(r[0].first, 2);
	assert_int_equal(ingest_gaps(ing, 1, 5000, r, 8), 2);
	struct ingest_stats st;
	ingest_stats(ing, &st);
	assert_true(st.resend_ranges >= 9);
	ingest_close(ing);
}

/* ---- durability ---- */

static void test_disk_watermark_after_sync(void **state)
{
	struct ingest *ing = open_ing(INGEST_DISK, 0);
	for (uint64_t q = 1; q <= 10; q++)
		assert_int_equal(add(ing, 4, q), 0);
	assert_int_equal(ingest_watermark(ing, 4), 0);
	assert_false(ingest_holds(ing, 4, 1));
	assert_true(ingest_holds(ing, 4, 0));
	check_item(ing, 4, 3); /* readable before it is held */
	assert_int_equal(ingest_sync(ing), 0);
	assert_int_equal(ingest_watermark(ing, 4), 10);
	assert_true(ingest_holds(ing, 4, 10));
	assert_false(ingest_holds(ing, 4, 11));
	assert_int_equal(add(ing, 4, 11), 0);
	assert_int_equal(ingest_watermark(ing, 4), 10);
	assert_int_equal(ingest_sync(ing), 0);
	assert_int_equal(ingest_watermark(ing, 4), 11);
	ingest_close(ing);
	testutil_rmtree(dir);

	ing = open_ing(INGEST_MEMORY, 0);
	for (uint64_t q = 1; q <= 10; q++)
		assert_int_equal(add(ing, 4, q), 0);
	assert_int_equal(ingest_watermark(ing, 4), 10);
	ingest_close(ing);
	assert_int_equal(count_segments(), 0);
}

/* Acceptor records (ingest_log_aux): durable with the items before them at
 * one sync, found again by recovery above aux_min in log order, never
 * indexed as items; the ones not synced are gone with their items. */
struct aux_seen {
	int n;
	uint64_t key[8];
	char body[8][8];
};

static int aux_cb(void *arg, uint64_t key, const uint8_t *body, uint32_t len)
{
	struct aux_seen *a = arg;
	assert_true(a->n < 8 && len < 8);
	a->key[a->n] = key;
	memcpy(a->body[a->n], body, len);
	a->body[a->n][len] = 0;
	a->n++;
	return 0;
}

static void test_aux_records(void **state)
{
	struct ingest *ing = open_ing(INGEST_DISK, 0);
	for (uint64_t q = 1; q <= 5; q++)
		assert_int_equal(add(ing, 4, q), 0);
	assert_int_equal(ingest_received(ing, 4), 5);
	assert_int_equal(ingest_watermark(ing, 4), 0);
	assert_true(ingest_unsynced(ing));
	assert_int_equal(ingest_log_aux(ing, 2, "old", 3), 0);
	assert_int_equal(ingest_log_aux(ing, 7, "A7", 2), 0);
	assert_int_equal(add(ing, 4, 6), 0);
	assert_int_equal(ingest_log_aux(ing, 8, "B8", 2), 0);
	assert_int_equal(ingest_log_aux(ing, 0, "x", 1), MTR_EINVAL);
	assert_int_equal(ingest_sync(ing), 0);
	assert_false(ingest_unsynced(ing));
	assert_int_equal(ingest_watermark(ing, 4), 6);
	/* appended, never synced: lost with the item before it at a crash
	 * (seglog_close writes nothing) */
	assert_int_equal(add(ing, 4, 7), 0);
	assert_int_equal(ingest_log_aux(ing, 9, "C9", 2), 0);
	struct ingest_stats st;
	ingest_stats(ing, &st);
	assert_int_equal(st.aux_records, 4);
	ingest_close(ing);

	struct ingest_opts o = { .durability = INGEST_DISK, .dir = dir, .retry_ns = 100, .aux_min = 5 };
	assert_int_equal(ingest_open(&o, &ing), 0);
	assert_int_equal(ingest_watermark(ing, 4), 6); /* the records are not items */
	struct aux_seen a = { 0 };
	assert_int_equal(ingest_aux_each(ing, aux_cb, &a), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.key[0], 7);
	assert_string_equal(a.body[0], "A7");
	assert_int_equal(a.key[1], 8);
	assert_string_equal(a.body[1], "B8");
	a.n = 0; /* once */
	assert_int_equal(ingest_aux_each(ing, aux_cb, &a), 0);
	assert_int_equal(a.n, 0);
	ingest_close(ing);
	testutil_rmtree(dir);

	ing = open_ing(INGEST_MEMORY, 0);
	assert_int_equal(ingest_log_aux(ing, 7, "A7", 2), MTR_EINVAL);
	ingest_close(ing);
	(void)state;
}

static void test_recovery_after_crash(void **state)
{
	struct ingest *ing = open_ing(INGEST_DISK, 0);
	for (uint64_t q = 1; q <= 50; q++) {
		assert_int_equal(add(ing, 1, q), 0);
		if (q % 2)
			assert_int_equal(add(ing, 2, q), 0);
	}
	assert_int_equal(ingest_sync(ing), 0);
	for (uint64_t q = 51; q <= 60; q++)
		assert_int_equal(add(ing, 1, q), 0);
	ingest_close(ing); /* a crash: 51..60 were never synced */

	ing = open_ing(INGEST_DISK, 0);
	assert_int_equal(ingest_watermark(ing, 1), 50);
	assert_int_equal(ingest_watermark(ing, 2), 1);
	for (uint64_t q = 1; q <= 50; q++)
		check_item(ing, 1, q);
	const uint8_t *p;
	uint32_t len;
	assert_int_equal(ingest_get(ing, 1, 51, &p, &len), MTR_ENOENT);
	assert_int_equal(add(ing, 1, 50), MTR_EDUPLICATE);
	struct ingest_range r[30];
	assert_int_equal(ingest_gaps(ing, 2, 1000, r, 30), 24); /* 2, 4, ... 48 */
	struct ingest_stats st;
	ingest_stats(ing, &st);
	assert_int_equal(st.recovered, 75);
	ingest_close(ing);
}

static void torn_case(int flip)
{
	struct ingest *ing = open_ing(INGEST_DISK, 0);
	for (uint64_t q = 1; q <= 20; q++)
		assert_int_equal(add(ing, 3, q), 0);
	assert_int_equal(ingest_sync(ing), 0);
	ingest_close(ing);
	char path[400];
	snprintf(path, sizeof path, "%s/000000000001.seg", dir);
	if (flip) { /* one flipped bit in record 8's item bytes */
		int fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		off_t at = rec_off(3, 8) + SEGLOG_REC_HDR_SIZE + 5;
		uint8_t c;
		assert_int_equal(pread(fd, &c, 1, at), 1);
		c ^= 1;
		assert_int_equal(pwrite(fd, &c, 1, at), 1);
		close(fd);
	} else { /* a torn append: record 15 half written */
		assert_int_equal(truncate(path, rec_off(3, 15) + SEGLOG_REC_HDR_SIZE + 3), 0);
	}
	uint64_t keep = flip ? 7 : 14;
	ing = open_ing(INGEST_DISK, 0);
	assert_int_equal(ingest_watermark(ing, 3), keep);
	for (uint64_t q = 1; q <= keep; q++)
		check_item(ing, 3, q);
	const uint8_t *p;
	uint32_t len;
	assert_int_equal(ingest_get(ing, 3, keep + 1, &p, &len), MTR_ENOENT);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, rec_off(3, keep + 1)); /* cut to the intact prefix */
	/* the proxy's heartbeat reveals the lost tail; repair restores it */
	assert_int_equal(ingest_note_high(ing, 3, 20), 0);
	struct ingest_range r[2];
	assert_int_equal(ingest_gaps(ing, 3, 1000, r, 2), 1);
	assert_int_equal(r[0].first, keep + 1);
	assert_int_equal(r[0].last, 20);
	for (uint64_t q = keep + 1; q <= 20; q++)
		assert_int_equal(add(ing, 3, q), 0);
	assert_int_equal(ingest_sync(ing), 0);
	ingest_close(ing);
	ing = open_ing(INGEST_DISK, 0);
	assert_int_equal(ingest_watermark(ing, 3), 20);
	for (uint64_t q = 1; q <= 20; q++)
		check_item(ing, 3, q);
	ingest_close(ing);
}

static void test_recovery_torn_tail(void **state)
{
	torn_case(0);
}

static void test_recovery_flipped_byte(void **state)
{
	torn_case(1);
}

/* ---- ingest_forget: compaction ---- */

static void test_compaction_bounded(void **state)
{
	struct ingest *ing = open_ing(INGEST_DISK, 8192);
	int max_segs = 0;
	uint64_t q;
	for (q = 1; q <= 6000; q++) {
		assert_int_equal(add(ing, 1, q), 0);
		assert_int_equal(add(ing, 2, q), 0);
		if (q % 50 == 0) {
			assert_int_equal(ingest_sync(ing), 0);
			/* applied everywhere up to 200 behind */
			if (q > 200) {
				assert_int_equal(ingest_forget(ing, 1, q - 200), 0);
				assert_int_equal(ingest_forget(ing, 2, q - 200), 0);
			}
			int n = count_segments();
			max_segs = n > max_segs ? n : max_segs;
		}
	}
	assert_int_equal(ingest_sync(ing), 0);
	/* live: at most 300 items of ~152 bytes per stream (200 behind, 50
	 * between releases, 50 until the next sync deletes): ~90 KiB, 8 KiB
	 * segments; without compaction there would be about 220 */
	print_message("# at most %d segments\n", max_segs);
	assert_true(max_segs <= 16);
	struct ingest_stats st;
	ingest_stats(ing, &st);
	assert_int_equal(st.items_held, 400);
	assert_int_equal(st.released, 11600);
	const uint8_t *p;
	uint32_t len;
	assert_int_equal(ingest_get(ing, 1, 5800, &p, &len), MTR_ENOENT);
	check_item(ing, 1, 5801);
	assert_int_equal(add(ing, 1, 17), MTR_EDUPLICATE); /* late copy of a released item */
	ingest_close(ing);

	/* after a restart the released prefix stays released: no gaps */
	ing = open_ing(INGEST_DISK, 8192);
	assert_int_equal(ingest_watermark(ing, 1), 6000);
	assert_int_equal(ingest_watermark(ing, 2), 6000);
	struct ingest_range r[4];
	assert_int_equal(ingest_gaps_all(ing, 1000, r, 4), 0);
	check_item(ing, 2, 6000);
	assert_int_equal(add(ing, 2, 5), MTR_EDUPLICATE);
	ingest_close(ing);
}

static void test_forget_beyond_contig(void **state)
{
	struct ingest *ing = open_ing(INGEST_MEMORY, 0);
	assert_int_equal(add(ing, 1, 1), 0);
	assert_int_equal(add(ing, 1, 12), 0);
	assert_int_equal(ingest_forget(ing, 1, 10), 0);
	assert_int_equal(ingest_watermark(ing, 1), 10);
	assert_int_equal(add(ing, 1, 5), MTR_EDUPLICATE);
	assert_int_equal(add(ing, 1, 11), 0);
	assert_int_equal(ingest_watermark(ing, 1), 12);
	/* a stream released before any item arrived */
	assert_int_equal(ingest_forget(ing, 7, 100), 0);
	assert_true(ingest_holds(ing, 7, 100));
	assert_int_equal(add(ing, 7, 100), MTR_EDUPLICATE);
	assert_int_equal(add(ing, 7, 101), 0);
	ingest_close(ing);
}

/* ---- hostile input ---- */

static void test_bounds(void **state)
{
	struct ingest_opts o = { .durability = INGEST_MEMORY, .max_streams = 4, .window = 1000,
				 .max_item = 300, .max_mem = 64 << 10 };
	struct ingest *ing;
	assert_int_equal(ingest_open(&o, &ing), 0);
	for (uint64_t s = 1; s <= 4; s++)
		assert_int_equal(add(ing, s, 1), 0);
	assert_int_equal(add(ing, 5, 1), MTR_EFULL);
	assert_int_equal(ingest_note_high(ing, 6, 10), MTR_EFULL);
	assert_int_equal(add(ing, 1, 1000), 0);
	assert_int_equal(add(ing, 1, 1001), MTR_EFULL); /* beyond the window */
	uint8_t big[400] = { 1 };
	assert_int_equal(ingest_add(ing, 1, 2, big, 301), MTR_ETOOBIG);
	assert_int_equal(ingest_add(ing, 1, 0, big, 10), MTR_EINVAL);
	assert_int_equal(ingest_add(ing, 1, 2, big, 0), MTR_EINVAL);
	/* memory: items of 300 bytes until the bound */
	int stored = 0, rc;
	for (uint64_t q = 2; q <= 1000; q++) {
		rc = ingest_add(ing, 2, q, big, 300);
		if (rc) {
			assert_int_equal(rc, MTR_EFULL);
			break;
		}
		stored++;
	}
	assert_true(stored > 50 && stored < 300);
	struct ingest_stats st;
	ingest_stats(ing, &st);
	assert_int_equal(st.drop_streams, 2); /* the item and the heartbeat */
	assert_int_equal(st.drop_window, 1);
	assert_int_equal(st.drop_invalid, 3);
	assert_int_equal(st.drop_mem, 1);
	assert_true(st.mem <= o.max_mem);
	ingest_close(ing);
}

/* A full table forgets the streams that never held an item (made-up ids
 * from heartbeats), never one that did; ingest_forget_empty likewise. */
static void test_evict_empty(void **state)
{
	struct ingest_opts o = { .durability = INGEST_MEMORY, .max_streams = 4 };
	struct ingest *ing;
	assert_int_equal(ingest_open(&o, &ing), 0);
	assert_int_equal(add(ing, 1, 1), 0);
	for (uint64_t s = 2; s <= 4; s++)
		assert_int_equal(ingest_note_high(ing, s, 5), 0);
	assert_int_equal(add(ing, 9, 1), 0); /* full: 2, 3, 4 are forgotten */
	struct ingest_stats st;
	ingest_stats(ing, &st);
	assert_int_equal(st.evicted_streams, 3);
	assert_int_equal(st.streams, 2);
	assert_int_equal(st.drop_streams, 0);
	assert_int_equal(ingest_watermark(ing, 1), 1);
	assert_int_equal(ingest_watermark(ing, 9), 1);
	assert_int_equal(add(ing, 1, 2), 0); /* the hash still finds the kept ones */
	assert_int_equal(ingest_watermark(ing, 1), 2);
	assert_int_equal(ingest_note_high(ing, 7, 3), 0);
	uint64_t ids[] = { 7, 1, 12345 };
	assert_int_equal(ingest_forget_empty(ing, ids, 3), 1); /* 7 only: 1 holds items */
	ingest_stats(ing, &st);
	assert_int_equal(st.streams, 2);
	for (uint64_t s = 20; s <= 21; s++)
		assert_int_equal(add(ing, s, 1), 0);
	assert_int_equal(add(ing, 22, 1), MTR_EFULL); /* every stream holds items now */
	ingest_close(ing);
}

int main(void)
{
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_model_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tail_loss_heartbeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_watermark_after_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aux_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_beyond_contig, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evict_empty, setup, teardown),
	};
	return cmocka_run_group_tests_name("ingest", tests, NULL, NULL);
}
