/*
 * test_reasm.c - reassembly: a 16 MiB item whose fragments arrive in random
 * order and duplicated, interleaved with another item; bounds, eviction,
 * expiry and inconsistent fragments.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metronome.h"
#include "reasm.h"
#include "wire.h"

/* ---- Helpers ---- */

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define MTU 1472

/* Encode an item with one statement carrying a blob of n bytes. */
static uint8_t *make_item(uint64_t seq, size_t n, size_t *len, uint8_t **blob_out)
{
	uint8_t *blob = malloc(n);
	for (size_t i = 0; i < n; i++)
		blob[i] = (uint8_t)(next_rand() >> 56);
	struct wire_value v = { .type = WIRE_V_BLOB, .u.b = { blob, (uint32_t)n } };
	struct wire_stmt st = { .sql = "INSERT INTO big VALUES(?1)", .sql_len = 26, .nparams = 1, .params = &v };
	struct wire_item it = { .stream = 5, .seq = seq, .nstmt = 1, .stmts = &st };
	*len = wire_item_size(&it);
	uint8_t *buf = malloc(*len);
	assert_int_equal(wire_item_encode(buf, *len, &it), (long)*len);
	*blob_out = blob;
	return buf;
}

/* Build fragment i as a datagram, check it, decode it, hand it to r. */
static int feed(struct reasm *r, const uint8_t *item, size_t len, uint64_t seq, uint32_t i, uint8_t **out,
		size_t *out_len)
{
	static uint8_t dg[MTU];
	struct wire_hdr h;
	struct wire_frag f;
	size_t n = wire_frag_build(dg, MTU, &(struct wire_from){ 1, 1, NULL }, 5, seq, item, len, i);
	assert_int_equal(wire_dgram_check(dg, n, 1, NULL, &h), 0);
	assert_int_equal(wire_frag_decode(dg + WIRE_HDR_SIZE, h.length, 64u << 20, &f), 0);
	return reasm_add(r, &f, 1000 + i, out, out_len);
}

/* ---- reasm_add ---- */

static void test_16mib_random_order_duplicated(void **state)
{
	size_t len_a, len_b;
	uint8_t *blob_a, *blob_b;
	uint8_t *a = make_item(1, 16u << 20, &len_a, &blob_a);
	uint8_t *b = make_item(2, 100000, &len_b, &blob_b);
	uint32_t na = wire_frag_count(len_a, MTU), nb = wire_frag_count(len_b, MTU);
	/* schedule: every fragment of both items, a third of them twice, shuffled */
	size_t n = 0, cap = (size_t)(na + nb) * 2;
	uint64_t *sched = malloc(cap * sizeof *sched);
	for (uint32_t i = 0; i < na; i++) {
		sched[n++] = (uint64_t)1 << 32 | i;
		if (next_rand() % 3 == 0)
			sched[n++] = (uint64_t)1 << 32 | i;
	}
	for (uint32_t i = 0; i < nb; i++) {
		sched[n++] = (uint64_t)2 << 32 | i;
		if (next_rand() % 3 == 0)
			sched[n++] = (uint64_t)2 << 32 | i;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = next_rand() % (i + 1);
		uint64_t t = sched[i];
		sched[i] = sched[j];
		sched[j] = t;
	}
	struct reasm *r = reasm_new(64u << 20, 128u << 20, 64);
	uint8_t *got_a = NULL, *got_b = NULL;
	size_t got_a_len = 0, got_b_len = 0;
	unsigned done = 0;
	for (size_t k = 0; k < n; k++) {
		uint64_t seq = sched[k] >> 32;
		uint32_t idx = (uint32_t)sched[k];
		uint8_t *out;
		size_t out_len;
		int rc = feed(r, seq == 1 ? a : b, seq == 1 ? len_a : len_b, seq, idx, &out, &out_len);
		assert_true(rc == 0 || rc == 1);
		if (rc == 1) {
			done++;
			if (seq == 1) {
				assert_null(got_a);
				got_a = out;
				got_a_len = out_len;
			} else {
				assert_null(got_b);
				got_b = out;
				got_b_len = out_len;
			}
		}
	}
	/* a duplicate after completion starts a new partial; both items arrived once before that */
	assert_true(done >= 2);
	assert_int_equal(got_a_len, len_a);
	assert_memory_equal(got_a, a, len_a);
	assert_int_equal(got_b_len, len_b);
	assert_memory_equal(got_b, b, len_b);
	/* and the item decodes to the blob that was sent */
	struct wire_item it;
	struct wire_stmt_iter si;
	struct wire_stmt st;
	struct wire_value v;
	const uint8_t *pp;
	assert_int_equal(wire_item_decode(got_a, got_a_len, &it), (long)len_a);
	wire_stmt_begin(&it, &si);
	assert_int_equal(wire_stmt_next(&si, &st, &pp), 1);
	wire_param_next(&pp, &v);
	assert_int_equal(v.u.b.n, 16u << 20);
	assert_memory_equal(v.u.b.p, blob_a, 16u << 20);
	struct reasm_counters c;
	reasm_counters(r, &c);
	assert_true(c.duplicates > 0);
	assert_true(c.completed >= 2);
	reasm_free(r);
	free(got_a);
	free(got_b);
	free(a);
	free(b);
	free(blob_a);
	free(blob_b);
	free(sched);
}

static void test_bounds_eviction_expiry(void **state)
{
	size_t len, len2;
	uint8_t *blob, *blob2, *out;
	size_t out_len;
	uint8_t *a = make_item(1, 10000, &len, &blob);
	/* too big for this reassembler */
	struct reasm *small = reasm_new(1000, 1u << 20, 4);
	assert_int_equal(feed(small, a, len, 1, 0, &out, &out_len), MTR_ETOOBIG);
	reasm_free(small);

	/* room for two partial items: a third evicts the oldest */
	struct reasm *r = reasm_new(1u << 20, 1u << 20, 2);
	for (uint64_t seq = 1; seq <= 3; seq++)
		assert_int_equal(feed(r, a, len, seq, 0, &out, &out_len), 0);
	assert_int_equal(reasm_partials(r), 2);
	struct reasm_counters c;
	reasm_counters(r, &c);
	assert_int_equal(c.evicted, 1);
	assert_int_equal(reasm_bytes(r), 2 * len);
	/* inconsistent fragment for seq 2: another total */
	struct wire_frag f = { .stream = 5, .seq = 2, .total = (uint32_t)len + 1, .frag_size = 1412, .index = 0,
			       .data = a, .len = 1412 };
	assert_int_equal(reasm_add(r, &f, 5000, &out, &out_len), MTR_EMALFORMED);
	/* expiry: fragments arrived at t=1000; at t=1000+age nothing; past it everything */
	reasm_expire(r, 1500, 500);
	assert_int_equal(reasm_partials(r), 2);
	reasm_expire(r, 1501, 500);
	assert_int_equal(reasm_partials(r), 0);
	assert_int_equal(reasm_bytes(r), 0);
	reasm_counters(r, &c);
	assert_int_equal(c.expired, 2);
	reasm_free(r);

	/* max_bytes: a newcomer may evict the oldest partial item, no more */
	r = reasm_new(1u << 20, 2 * len + 100, 8);
	assert_int_equal(feed(r, a, len, 1, 0, &out, &out_len), 0);
	assert_int_equal(feed(r, a, len, 2, 0, &out, &out_len), 0);
	assert_int_equal(feed(r, a, len, 3, 0, &out, &out_len), 0); /* evicts seq 1 */
	reasm_counters(r, &c);
	assert_int_equal(c.evicted, 1);
	assert_int_equal(reasm_partials(r), 2);
	/* an item needing more than the oldest one frees is refused */
	uint8_t *b2 = make_item(1, 10000 + 200, &len2, &blob2);
	assert_int_equal(feed(r, b2, len2, 4, 0, &out, &out_len), MTR_EFULL);
	reasm_counters(r, &c);
	assert_int_equal(c.refused, 1);
	assert_int_equal(c.evicted, 1);
	assert_int_equal(reasm_partials(r), 2);
	assert_int_equal(reasm_bytes(r), 2 * len);
	/* and one larger than max_bytes on its own, with nothing to evict */
	reasm_free(r);
	r = reasm_new(1u << 20, len - 1, 8);
	assert_int_equal(feed(r, a, len, 1, 0, &out, &out_len), MTR_EFULL);
	assert_int_equal(reasm_partials(r), 0);
	reasm_free(r);
	free(b2);
	free(blob2);
	free(a);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_16mib_random_order_duplicated),
		cmocka_unit_test(test_bounds_eviction_expiry),
	};
	return cmocka_run_group_tests_name("reasm", tests, NULL, NULL);
}
