/*
 * test_outbuf.c - the proxy's send buffer: numbering, bounds (count and
 * bytes) with MTR_EFULL, resend lookups, release, wrap-around, and a seeded
 * random run against a simple model.
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
#include "outbuf.h"

/* ---- Helpers ---- */

/* Deterministic contents of item seq, n bytes. */
static void fill(uint8_t *b, uint64_t seq, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seq * 31 + i * 7);
}

static int put_seq(struct outbuf *ob, uint32_t n)
{
	uint8_t b[4096];
	uint64_t seq = outbuf_next_seq(ob);
	fill(b, seq, n);
	return outbuf_put(ob, seq, b, n);
}

static void check_item(struct outbuf *ob, uint64_t seq, uint32_t n)
{
	uint8_t want[4096];
	const uint8_t *p;
	uint32_t len;
	fill(want, seq, n);
	assert_int_equal(outbuf_get(ob, seq, &p, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(p, want, n);
}

static uint64_t rng_state;
static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

/* ---- outbuf_put / outbuf_get ---- */

static void test_numbering_and_get(void **state)
{
	struct outbuf ob;
	assert_int_equal(outbuf_init(&ob, 1 << 16, 64), 0);
	assert_int_equal(outbuf_next_seq(&ob), 1);
	assert_int_equal(outbuf_high(&ob), 0);
	for (uint32_t i = 1; i <= 10; i++)
		assert_int_equal(put_seq(&ob, 10 + i), 0);
	assert_int_equal(outbuf_high(&ob), 10);
	for (uint32_t i = 1; i <= 10; i++)
		check_item(&ob, i, 10 + i);
	const uint8_t *p;
	uint32_t len;
	assert_int_equal(outbuf_get(&ob, 0, &p, &len), MTR_ENOENT);
	assert_int_equal(outbuf_get(&ob, 11, &p, &len), MTR_ENOENT);
	/* wrong seq, empty item, item larger than the buffer */
	uint8_t b[8] = { 0 };
	assert_int_equal(outbuf_put(&ob, 5, b, 8), MTR_EINVAL);
	assert_int_equal(outbuf_put(&ob, 11, b, 0), MTR_EINVAL);
	assert_int_equal(outbuf_put(&ob, 11, b, (1 << 16) + 1), MTR_ETOOBIG);
	struct outbuf_stats st;
	outbuf_stats(&ob, &st);
	assert_int_equal(st.puts, 10);
	assert_int_equal(st.items, 10);
	assert_int_equal(st.resends, 10);
	outbuf_free(&ob);
	assert_int_equal(outbuf_init(&ob, 0, 10), MTR_EINVAL);
}

/* ---- bounds ---- */

static void test_full_by_count(void **state)
{
	struct outbuf ob;
	assert_int_equal(outbuf_init(&ob, 1 << 20, 8), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(put_seq(&ob, 100), 0);
	assert_int_equal(put_seq(&ob, 100), MTR_EFULL);
	assert_int_equal(outbuf_next_seq(&ob), 9); /* a refused put takes no number */
	outbuf_release(&ob, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(put_seq(&ob, 100), 0);
	assert_int_equal(put_seq(&ob, 100), MTR_EFULL);
	const uint8_t *p;
	uint32_t len;
	assert_int_equal(outbuf_get(&ob, 3, &p, &len), MTR_ENOENT);
	for (uint64_t s = 4; s <= 11; s++)
		check_item(&ob, s, 100);
	struct outbuf_stats st;
	outbuf_stats(&ob, &st);
	assert_int_equal(st.full, 2);
	assert_int_equal(st.released, 3);
	outbuf_free(&ob);
}

static void test_full_by_bytes_and_wrap(void **state)
{
	struct outbuf ob;
	assert_int_equal(outbuf_init(&ob, 1000, 100), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(put_seq(&ob, 300), 0);
	assert_int_equal(put_seq(&ob, 300), MTR_EFULL); /* 900 used, 100 left */
	assert_int_equal(put_seq(&ob, 100), 0);         /* exactly fills */
	assert_int_equal(put_seq(&ob, 1), MTR_EFULL);
	outbuf_release(&ob, 1); /* [0,300) free: wraps to the start */
	assert_int_equal(put_seq(&ob, 301), MTR_EFULL);
	assert_int_equal(put_seq(&ob, 300), 0);
	assert_int_equal(put_seq(&ob, 1), MTR_EFULL);
	for (uint64_t s = 2; s <= 3; s++)
		check_item(&ob, s, 300);
	check_item(&ob, 4, 100);
	check_item(&ob, 5, 300);
	outbuf_release(&ob, 1000); /* everything; empty resets to offset 0 */
	struct outbuf_stats st;
	outbuf_stats(&ob, &st);
	assert_int_equal(st.items, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(put_seq(&ob, 1000), 0);
	check_item(&ob, 6, 1000);
	outbuf_free(&ob);
}

/* ---- model ---- */

static void test_random_against_model(void **state)
{
	enum { CAPB = 10000, CAPN = 50, STEPS = 20000 };
	static uint32_t size_of[STEPS + 2];
	struct outbuf ob;
	assert_int_equal(outbuf_init(&ob, CAPB, CAPN), 0);
	rng_state = 42;
	uint64_t first = 1, next = 1, bytes = 0, accepted = 0;
	for (int step = 0; step < STEPS; step++) {
		uint32_t r = rnd() % 10;
		if (r < 6) {
			uint32_t n = 1 + rnd() % 900;
			int rc = put_seq(&ob, n);
			if (rc == 0) {
				size_of[next++] = n;
				bytes += n;
				accepted++;
			} else {
				assert_int_equal(rc, MTR_EFULL);
				/* not wrapped, the free bytes are in two pieces
				 * (one >= half); wrapped, in one, but up to an
				 * item (< 900 bytes) is wasted at the end.  So a
				 * refusal means one of these: */
				assert_true(next - first == CAPN || bytes + 2 * n > CAPB || bytes + n + 900 > CAPB);
			}
			assert_true(next - first <= CAPN);
			assert_true(bytes <= CAPB);
		} else if (r < 8 && next > first) {
			uint64_t upto = first + rnd() % (next - first);
			outbuf_release(&ob, upto);
			for (; first <= upto; first++)
				bytes -= size_of[first];
		} else if (next > first) {
			uint64_t s = first + rnd() % (next - first);
			check_item(&ob, s, size_of[s]);
		}
		struct outbuf_stats st;
		outbuf_stats(&ob, &st);
		assert_int_equal(st.items, next - first);
		assert_int_equal(st.bytes, bytes);
	}
	for (uint64_t s = first; s < next; s++)
		check_item(&ob, s, size_of[s]);
	assert_true(accepted > STEPS / 4);
	outbuf_free(&ob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbering_and_get),
		cmocka_unit_test(test_full_by_count),
		cmocka_unit_test(test_full_by_bytes_and_wrap),
		cmocka_unit_test(test_random_against_model),
	};
	return cmocka_run_group_tests_name("outbuf", tests, NULL, NULL);
}
