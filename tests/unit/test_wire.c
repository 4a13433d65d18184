/*
 * test_wire.c - the datagram format: the value codec, item round trips for
 * every field and value type, packing, fragments, control messages, the MAC,
 * and rejection of every single-bit flip and every truncation of a datagram.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "metronome.h"
#include "util.h"
#include "wire.h"

/* ---- Helpers ---- */

static const uint8_t blob[] = { 0, 1, 2, 0xff, 0 };

/* Every value type with its edge cases. */
static const struct wire_value sample_params[] = {
	{ .type = WIRE_V_NULL },
	{ .type = WIRE_V_INT, .u.i = INT64_MIN },
	{ .type = WIRE_V_INT, .u.i = INT64_MAX },
	{ .type = WIRE_V_INT, .u.i = 0 },
	{ .type = WIRE_V_REAL, .u.r = -0.0 },
	{ .type = WIRE_V_REAL, .u.r = 3.141592653589793 },
	{ .type = WIRE_V_TEXT, .u.b = { "", 0 } },
	{ .type = WIRE_V_TEXT, .u.b = { "h\0llo", 5 } },
	{ .type = WIRE_V_BLOB, .u.b = { blob, sizeof blob } },
	{ .type = WIRE_V_BLOB, .u.b = { NULL, 0 } },
};
#define NSAMPLE (sizeof sample_params / sizeof sample_params[0])

static struct wire_item sample_item(struct wire_stmt *st, uint64_t seq)
{
	st[0] = (struct wire_stmt){ .sql = "INSERT INTO t VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
				    .sql_len = 52,
				    .nparams = NSAMPLE,
				    .params = sample_params };
	st[1] = (struct wire_stmt){ .sql = "DELETE FROM t; SELECT 1", .sql_len = 23 };
	return (struct wire_item){ .stream = 0x1122334455667788ull,
				   .seq = seq,
				   .request = 0xfedcba9876543210ull,
				   .timestamp_us = -1234567,
				   .seed = 0xdeadbeefcafef00dull,
				   .client = 0x0102030405060708ull,
				   .floor = 0x0a0b0c0d0e0f1011ull,
				   .flags = WIRE_ITEM_TXN,
				   .nstmt = 2,
				   .stmts = st };
}

static int value_equal(const struct wire_value *a, const struct wire_value *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case WIRE_V_INT:
		return a->u.i == b->u.i;
	case WIRE_V_REAL:
		return memcmp(&a->u.r, &b->u.r, 8) == 0;
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		return a->u.b.n == b->u.b.n && (a->u.b.n == 0 || memcmp(a->u.b.p, b->u.b.p, a->u.b.n) == 0);
	default:
		return 1;
	}
}

/* A valid datagram of every type into buf; returns its length. */
static size_t sample_dgram(uint8_t *buf, int type, const struct wire_key *key)
{
	struct wire_stmt st[2];
	struct wire_item it = sample_item(st, 7);
	struct wire_packer pk;
	const struct wire_from from = { 42, 3, key };
	switch (type) {
	case WIRE_T_ITEMS:
		wire_packer_init(&pk, buf, 1472, &from);
		assert_int_equal(wire_packer_add(&pk, &it), 0);
		return wire_packer_finish(&pk);
	case WIRE_T_FRAGMENT: {
		static uint8_t item[3000];
		for (size_t i = 0; i < sizeof item; i++)
			item[i] = (uint8_t)i;
		return wire_frag_build(buf, 1472, &from, 9, 10, item, sizeof item, 1);
	}
	case WIRE_T_HEARTBEAT:
		return wire_heartbeat_build(buf, &from, &(struct wire_heartbeat){ 9, 100 });
	default:
		return wire_resend_build(buf, &from, &(struct wire_resend){ 9, 5, 8 });
	}
}

/* ---- wire_item_encode / wire_item_decode ---- */

/* The value codec: exact bytes of each type, round trips, and
 * wire_value_skip() on every truncation and an unknown type. */
static void test_value_codec(void **state)
{
	(void)state;
	static const uint8_t real_pi[9] = { 2, 0x18, 0x2d, 0x44, 0x54, 0xfb, 0x21, 0x09, 0x40 };
	uint8_t buf[64];
	struct wire_value pi = { .type = WIRE_V_REAL, .u.r = 3.141592653589793 };
	assert_int_equal(wire_value_size(&pi), 9);
	assert_ptr_equal(wire_value_put(buf, &pi), buf + 9);
	assert_memory_equal(buf, real_pi, 9);
	struct wire_value t = { .type = WIRE_V_TEXT, .u.b = { "ab", 2 } };
	static const uint8_t text_ab[7] = { 3, 2, 0, 0, 0, 'a', 'b' };
	assert_ptr_equal(wire_value_put(buf, &t), buf + 7);
	assert_memory_equal(buf, text_ab, 7);
	assert_int_equal(wire_value_head(buf, &t), 5);
	struct wire_value bad = { .type = 5 };
	assert_int_equal(wire_value_size(&bad), 0);

	for (size_t i = 0; i < NSAMPLE; i++) {
		const struct wire_value *v = &sample_params[i];
		size_t n = wire_value_size(v);
		assert_true(n > 0 && n <= sizeof buf);
		assert_ptr_equal(wire_value_put(buf, v), buf + n);
		for (size_t cut = 0; cut < n; cut++) {
			const uint8_t *p = buf;
			assert_int_equal(wire_value_skip(&p, buf + cut), MTR_ETRUNCATED);
			assert_ptr_equal(p, buf);
		}
		const uint8_t *p = buf;
		assert_int_equal(wire_value_skip(&p, buf + n), 0);
		assert_ptr_equal(p, buf + n);
		struct wire_value w;
		p = buf;
		wire_value_get(&p, &w);
		assert_ptr_equal(p, buf + n);
		assert_int_equal(w.type, v->type);
		if (v->type == WIRE_V_TEXT || v->type == WIRE_V_BLOB) {
			assert_int_equal(w.u.b.n, v->u.b.n);
			if (v->u.b.n)
				assert_memory_equal(w.u.b.p, v->u.b.p, v->u.b.n);
		} else {
			assert_memory_equal(&w.u, &v->u, 8); /* REAL bit for bit; NULL 0 */
		}
	}
	buf[0] = 5;
	const uint8_t *p = buf;
	assert_int_equal(wire_value_skip(&p, buf + 9), MTR_EMALFORMED);
	assert_ptr_equal(p, buf);
}

static void test_item_round_trip(void **state)
{
	struct wire_stmt st[2];
	struct wire_item in = sample_item(st, 1), out;
	uint8_t buf[1024];
	long n = wire_item_encode(buf, sizeof buf, &in);
	assert_int_equal(n, (long)wire_item_size(&in));
	assert_int_equal(wire_item_decode(buf, (size_t)n, &out), n);
	assert_true(out.stream == in.stream && out.seq == in.seq && out.request == in.request);
	assert_true(out.timestamp_us == in.timestamp_us && out.seed == in.seed);
	assert_true(out.client == in.client && out.floor == in.floor);
	assert_int_equal(out.flags, in.flags);
	assert_int_equal(out.nstmt, 2);

	struct wire_stmt_iter si;
	struct wire_stmt s;
	const uint8_t *pp;
	wire_stmt_begin(&out, &si);
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(wire_stmt_next(&si, &s, &pp), 1);
		assert_int_equal(s.sql_len, st[k].sql_len);
		assert_memory_equal(s.sql, st[k].sql, s.sql_len);
		assert_int_equal(s.nparams, st[k].nparams);
		for (unsigned i = 0; i < s.nparams; i++) {
			struct wire_value v;
			wire_param_next(&pp, &v);
			assert_true(value_equal(&v, &st[k].params[i]));
		}
	}
	assert_int_equal(wire_stmt_next(&si, &s, &pp), 0);

	/* the same iterator walks the to-be-encoded form: the array itself */
	wire_stmt_begin(&in, &si);
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(wire_stmt_next(&si, &s, &pp), 1);
		assert_null(pp);
		assert_ptr_equal(s.sql, st[k].sql);
		assert_int_equal(s.nparams, st[k].nparams);
		assert_ptr_equal(s.params, st[k].params);
	}
	assert_int_equal(wire_stmt_next(&si, &s, &pp), 0);
}

static void test_item_special_reals(void **state)
{
	double vals[] = { NAN, INFINITY, -INFINITY, -0.0, 5e-324 };
	for (unsigned i = 0; i < 5; i++) {
		struct wire_value v = { .type = WIRE_V_REAL, .u.r = vals[i] }, w;
		struct wire_stmt st = { .sql = "?", .sql_len = 1, .nparams = 1, .params = &v }, s;
		struct wire_item it = { .stream = 1, .seq = 1, .nstmt = 1, .stmts = &st }, out;
		uint8_t buf[128];
		const uint8_t *pp;
		struct wire_stmt_iter si;
		long n = wire_item_encode(buf, sizeof buf, &it);
		assert_true(n > 0);
		assert_int_equal(wire_item_decode(buf, (size_t)n, &out), n);
		wire_stmt_begin(&out, &si);
		assert_int_equal(wire_stmt_next(&si, &s, &pp), 1);
		wire_param_next(&pp, &w);
		assert_memory_equal(&w.u.r, &vals[i], 8); /* bit-exact */
	}
}

static void test_item_rejects(void **state)
{
	struct wire_stmt st[2];
	struct wire_item in = sample_item(st, 1), out;
	uint8_t buf[1024];
	long n = wire_item_encode(buf, sizeof buf, &in);
	assert_int_equal(wire_item_encode(buf, (size_t)n - 1, &in), MTR_ETOOBIG);
	for (long k = 0; k < n; k++) /* every prefix */
		assert_true(wire_item_decode(buf, (size_t)k, &out) < 0);
	/* a record length that claims less than the statements need */
	uint8_t bad[1024];
	memcpy(bad, buf, (size_t)n);
	bad[0] = (uint8_t)(bad[0] - 1);
	assert_int_equal(wire_item_decode(bad, (size_t)n, &out), MTR_EMALFORMED);
	/* an unknown value type */
	struct wire_value v = { .type = 9 };
	struct wire_stmt s1 = { .sql = "?", .sql_len = 1, .nparams = 1, .params = &v };
	struct wire_item it1 = { .stream = 1, .seq = 1, .nstmt = 1, .stmts = &s1 };
	assert_int_equal(wire_item_encode(buf, sizeof buf, &it1), MTR_EINVAL);
	/* stream 0 and seq 0 are not items */
	struct wire_stmt s2 = { .sql = "x", .sql_len = 1 };
	struct wire_item it2 = { .stream = 0, .seq = 1, .nstmt = 1, .stmts = &s2 };
	n = wire_item_encode(buf, sizeof buf, &it2);
	assert_int_equal(wire_item_decode(buf, (size_t)n, &out), MTR_EMALFORMED);
	/* no statement at all */
	it2.nstmt = 0;
	assert_int_equal(wire_item_encode(buf, sizeof buf, &it2), MTR_EINVAL);
}

/* ---- wire_packer ---- */

/* Check, iterate and count the items of one finished ITEMS datagram. */
static void flush_packer(struct wire_packer *pk, unsigned *got, unsigned *dgrams)
{
	struct wire_hdr h;
	struct wire_item out;
	size_t n = wire_packer_finish(pk);
	int k;
	assert_true(n > 0 && n <= pk->mtu);
	assert_int_equal(wire_dgram_check(pk->buf, n, 42, pk->from.key, &h), 0);
	assert_int_equal(h.type, WIRE_T_ITEMS);
	const uint8_t *p = pk->buf + WIRE_HDR_SIZE, *end = p + h.length;
	while ((k = wire_items_next(&p, end, &out)) == 1)
		assert_int_equal(out.seq, ++*got);
	assert_int_equal(k, 0);
	++*dgrams;
}

static void test_packer_fills_datagrams(void **state)
{
	uint8_t buf[1472];
	struct wire_packer pk;
	struct wire_stmt st[2];
	unsigned got = 0, dgrams = 0;
	wire_packer_init(&pk, buf, sizeof buf, &(struct wire_from){ 42, 3, NULL });
	for (uint64_t seq = 1; seq <= 100; seq++) {
		struct wire_item it = sample_item(st, seq);
		int rc = wire_packer_add(&pk, &it);
		if (rc == MTR_EFULL) {
			flush_packer(&pk, &got, &dgrams);
			rc = wire_packer_add(&pk, &it);
		}
		assert_int_equal(rc, 0);
	}
	flush_packer(&pk, &got, &dgrams);
	assert_int_equal(got, 100);
	assert_true(dgrams > 1);
	assert_int_equal(wire_packer_finish(&pk), 0);
	/* an item larger than a datagram must go by fragments */
	static char big[2000];
	memset(big, 'x', sizeof big);
	struct wire_stmt bs = { .sql = big, .sql_len = sizeof big };
	struct wire_item bi = { .stream = 1, .seq = 1, .nstmt = 1, .stmts = &bs };
	assert_int_equal(wire_packer_add(&pk, &bi), MTR_ETOOBIG);
}

/* ---- wire_dgram_check ---- */

static void test_every_bit_flip_rejected(void **state)
{
	struct wire_key key = { .set = 1, .k = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } };
	uint8_t buf[1472];
	struct wire_hdr h;
	unsigned checked = 0;
	for (int keyed = 0; keyed < 2; keyed++)
		for (int type = WIRE_T_ITEMS; type <= WIRE_T_RESEND; type++) {
			const struct wire_key *k = keyed ? &key : NULL;
			size_t n = sample_dgram(buf, type, k);
			assert_int_equal(wire_dgram_check(buf, n, 42, k, &h), 0);
			for (size_t bit = 0; bit < n * 8; bit++) {
				buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				assert_true(wire_dgram_check(buf, n, 42, k, &h) < 0);
				buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				checked++;
			}
			assert_int_equal(wire_dgram_check(buf, n, 42, k, &h), 0);
		}
	assert_true(checked > 10000);
}

static void test_every_truncation_rejected(void **state)
{
	uint8_t buf[1472];
	struct wire_hdr h;
	for (int type = WIRE_T_ITEMS; type <= WIRE_T_RESEND; type++) {
		size_t n = sample_dgram(buf, type, NULL);
		for (size_t k = 0; k < n; k++) {
			uint8_t *copy = malloc(k ? k : 1); /* exact size: ASan sees any overread */
			memcpy(copy, buf, k);
			assert_true(wire_dgram_check(copy, k, 42, NULL, &h) < 0);
			free(copy);
		}
	}
}

static void test_dgram_errors_by_kind(void **state)
{
	struct wire_key key = { .set = 1, .k = { 7 } }, other = { .set = 1, .k = { 8 } };
	uint8_t buf[1472];
	struct wire_hdr h;
	size_t n = sample_dgram(buf, WIRE_T_HEARTBEAT, NULL);
	assert_int_equal(wire_dgram_check(buf, n, 43, NULL, &h), MTR_ECLUSTER);
	assert_int_equal(wire_dgram_check(buf, n, 42, &key, &h), MTR_EINTEGRITY); /* key required */
	assert_int_equal(wire_dgram_check(buf, n, 42, NULL, &h), 0);
	assert_int_equal(h.sender, 3);
	assert_string_equal(wire_type_name(h.type), "HEARTBEAT");
	assert_string_equal(wire_type_name(200), "?");
	n = sample_dgram(buf, WIRE_T_HEARTBEAT, &key);
	assert_int_equal(wire_dgram_check(buf, n, 42, &other, &h), MTR_EINTEGRITY);
	assert_int_equal(wire_dgram_check(buf, n, 42, NULL, &h), MTR_EINTEGRITY);
	assert_int_equal(wire_dgram_check(buf, n, 42, &key, &h), 0);
	buf[0] ^= 1;
	assert_int_equal(wire_dgram_check(buf, n, 42, &key, &h), MTR_EMAGIC);
	buf[0] ^= 1;
	buf[4] = 2;
	assert_int_equal(wire_dgram_check(buf, n, 42, &key, &h), MTR_EVERSION);
	uint8_t big[2000] = { 0 };
	n = sample_dgram(big, WIRE_T_HEARTBEAT, NULL);
	assert_int_equal(wire_dgram_check(big, n + 5, 42, NULL, &h), MTR_EMALFORMED); /* trailing junk */
}

/* ---- fragments and control messages ---- */

static void test_fragment_build_decode(void **state)
{
	static uint8_t item[5000], got[5000];
	uint8_t buf[1472];
	struct wire_hdr h;
	struct wire_frag f;
	const struct wire_from from = { 1, 2, NULL };
	for (size_t i = 0; i < sizeof item; i++)
		item[i] = (uint8_t)(i * 7);
	uint32_t nf = wire_frag_count(sizeof item, sizeof buf);
	assert_int_equal(nf, (sizeof item + wire_frag_size(1472) - 1) / wire_frag_size(1472));
	for (uint32_t i = 0; i < nf; i++) {
		size_t n = wire_frag_build(buf, sizeof buf, &from, 5, 6, item, sizeof item, i);
		assert_true(n <= sizeof buf);
		assert_int_equal(wire_dgram_check(buf, n, 1, NULL, &h), 0);
		assert_int_equal(h.type, WIRE_T_FRAGMENT);
		assert_int_equal(wire_frag_decode(buf + WIRE_HDR_SIZE, h.length, 1 << 20, &f), 0);
		assert_int_equal(f.index, i);
		memcpy(got + (size_t)i * f.frag_size, f.data, f.len);
		assert_int_equal(wire_frag_decode(buf + WIRE_HDR_SIZE, h.length, 100, &f), MTR_ETOOBIG);
		assert_int_equal(wire_frag_decode(buf + WIRE_HDR_SIZE, h.length - 1, 1 << 20, &f), MTR_EMALFORMED);
	}
	assert_memory_equal(got, item, sizeof item);
}

static void test_control_messages(void **state)
{
	uint8_t buf[256];
	struct wire_hdr h;
	struct wire_heartbeat hb;
	struct wire_resend rs;
	const struct wire_from from = { 1, 2, NULL };
	size_t n = wire_heartbeat_build(buf, &from, &(struct wire_heartbeat){ 77, 99 });
	assert_int_equal(wire_dgram_check(buf, n, 1, NULL, &h), 0);
	assert_int_equal(wire_heartbeat_decode(buf + WIRE_HDR_SIZE, h.length, &hb), 0);
	assert_true(hb.stream == 77 && hb.high == 99);
	assert_int_equal(wire_heartbeat_decode(buf + WIRE_HDR_SIZE, h.length - 1, &hb), MTR_EMALFORMED);
	n = wire_resend_build(buf, &from, &(struct wire_resend){ 77, 3, 9 });
	assert_int_equal(wire_dgram_check(buf, n, 1, NULL, &h), 0);
	assert_int_equal(wire_resend_decode(buf + WIRE_HDR_SIZE, h.length, &rs), 0);
	assert_true(rs.stream == 77 && rs.first == 3 && rs.last == 9);
	n = wire_resend_build(buf, &from, &(struct wire_resend){ 77, 9, 3 });
	assert_int_equal(wire_resend_decode(buf + WIRE_HDR_SIZE, 24, &rs), MTR_EMALFORMED);
}

/* ---- the MAC: libsodium's crypto_shorthash is SipHash-2-4 ---- */

static uint64_t shorthash(const uint8_t key[16], const uint8_t *msg, size_t n)
{
	uint8_t out[crypto_shorthash_BYTES];
	crypto_shorthash(out, msg, n, key);
	return ld64(out);
}

static void test_mac_vectors(void **state)
{
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* reference vectors of the SipHash paper (key 00..0f, message 00..n-1),
	 * which our own SipHash-2-4 passed before libsodium replaced it */
	assert_true(shorthash(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(shorthash(key, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(shorthash(key, msg, 8) == 0x93f5f5799a932462ull);
	assert_true(shorthash(key, msg, 1) == 0x74f839c593dc67fdull);
	assert_true(shorthash(key, msg, 7) == 0xab0200f58b01d137ull);
	assert_true(shorthash(key, msg, 63) == 0x958a324ceb064572ull);
	/* a whole keyed datagram: the trailer the old implementation wrote
	 * (the bytes on the wire did not change) */
	static const struct wire_key k = { .set = 1, .k = "0123456789abcdef" };
	uint8_t buf[64];
	memcpy(buf + WIRE_HDR_SIZE, "hello, cluster", 14);
	size_t n = wire_frame_finish(buf, &(struct wire_from){ 7, 3, &k }, WIRE_T_HEARTBEAT, 14);
	assert_int_equal(n, 46);
	assert_true(ld64(buf + n - 8) == 0xe12efefae3722334ull);
}

/* cluster.key_next: accepted on receive besides the key. */
static void test_mac_key_next(void **state)
{
	struct wire_key old = { .set = 1, .k = { 1 } }, neu = { .set = 1, .k = { 2 } };
	struct wire_key rolling = old; /* key old, key_next new */
	rolling.next_set = 1;
	memcpy(rolling.next, neu.k, sizeof rolling.next);
	uint8_t buf[1472];
	struct wire_hdr h;
	size_t n = sample_dgram(buf, WIRE_T_HEARTBEAT, &old);
	assert_int_equal(wire_dgram_check(buf, n, 42, &rolling, &h), 0);
	n = sample_dgram(buf, WIRE_T_HEARTBEAT, &neu);
	assert_int_equal(wire_dgram_check(buf, n, 42, &rolling, &h), 0);
	assert_int_equal(wire_dgram_check(buf, n, 42, &old, &h), MTR_EINTEGRITY);
	n = sample_dgram(buf, WIRE_T_HEARTBEAT, &rolling); /* sent with the key, not key_next */
	assert_int_equal(wire_dgram_check(buf, n, 42, &old, &h), 0);
	assert_int_equal(wire_dgram_check(buf, n, 42, &neu, &h), MTR_EINTEGRITY);
}

/* ---- the fuzz seed corpus ---- */

/*
 * The seeds of tests/fuzz/corpus/wire/ in the input format of fuzz_wire.c:
 * byte 0 even - a raw datagram follows (cluster 42; the keyed ones use the
 * fuzzer's key); byte 0 odd - byte 1 is a type and a payload follows (bit 1
 * of byte 0 selects the key).  Each seed is checked here; with
 * MTR_WIRE_CORPUS=DIR in the environment the test also writes them to DIR
 * (that is how the committed corpus was made).
 */
static void seed_out(const char *name, uint8_t mode, const uint8_t *dgram, size_t n)
{
	static const struct wire_key fkey = { .set = 1, .k = "0123456789abcdef" };
	struct wire_hdr h;
	const char *dir = getenv("MTR_WIRE_CORPUS");
	assert_int_equal(wire_dgram_check(dgram, n, 42, (mode & 2) ? &fkey : NULL, &h), 0);
	if (!dir)
		return;
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputc(mode, f);
	if (mode & 1) {
		fputc(h.type, f);
		fwrite(dgram + WIRE_HDR_SIZE, 1, h.length, f);
	} else {
		fwrite(dgram, 1, n, f);
	}
	assert_int_equal(fclose(f), 0);
}

static void test_seed_corpus(void **state)
{
	static const struct wire_key fkey = { .set = 1, .k = "0123456789abcdef" };
	uint8_t buf[1472], item[1472];
	struct wire_stmt st[2];
	struct wire_item it = sample_item(st, 1);
	struct wire_packer pk;
	size_t n;
	const struct wire_from from = { 42, 1, NULL }, keyed_from = { 42, 1, &fkey };

	for (int keyed = 0; keyed < 2; keyed++) {
		wire_packer_init(&pk, buf, sizeof buf, keyed ? &keyed_from : &from);
		it.seq = 1;
		assert_int_equal(wire_packer_add(&pk, &it), 0);
		it.seq = 2;
		assert_int_equal(wire_packer_add(&pk, &it), 0);
		n = wire_packer_finish(&pk);
		seed_out(keyed ? "items-mac-raw" : "items-raw", keyed ? 2 : 0, buf, n);
		seed_out(keyed ? "items-mac-payload" : "items-payload", keyed ? 3 : 1, buf, n);
	}
	/* a middle fragment of a 3000-byte item, and a whole item in one fragment */
	static uint8_t big[3000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 13);
	n = wire_frag_build(buf, sizeof buf, &from, 1, 3, big, sizeof big, 1);
	seed_out("frag-raw", 0, buf, n);
	seed_out("frag-payload", 1, buf, n);
	long il = wire_item_encode(item, sizeof item, &it);
	assert_true(il > 0);
	n = wire_frag_build(buf, sizeof buf, &from, it.stream, it.seq, item, (size_t)il, 0);
	seed_out("frag-whole-payload", 1, buf, n);
	n = wire_heartbeat_build(buf, &from, &(struct wire_heartbeat){ 1, 10 });
	seed_out("heartbeat-raw", 0, buf, n);
	seed_out("heartbeat-payload", 1, buf, n);
	n = wire_resend_build(buf, &keyed_from, &(struct wire_resend){ 1, 2, 5 });
	seed_out("resend-mac-raw", 2, buf, n);
	seed_out("resend-payload", 3, buf, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_codec),
		cmocka_unit_test(test_item_round_trip),
		cmocka_unit_test(test_item_special_reals),
		cmocka_unit_test(test_item_rejects),
		cmocka_unit_test(test_packer_fills_datagrams),
		cmocka_unit_test(test_every_bit_flip_rejected),
		cmocka_unit_test(test_every_truncation_rejected),
		cmocka_unit_test(test_dgram_errors_by_kind),
		cmocka_unit_test(test_fragment_build_decode),
		cmocka_unit_test(test_control_messages),
		cmocka_unit_test(test_mac_vectors),
		cmocka_unit_test(test_mac_key_next),
		cmocka_unit_test(test_seed_corpus),
	};
	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
