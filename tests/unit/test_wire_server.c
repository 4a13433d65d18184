/*
 * test_wire_server.c - unit tests for the PAXOS, RESULT, RESULT_REQUEST,
 * RESULT_UNKNOWN, READ and STATUS datagrams (src/proto/wire_server.c): round trips through wire_dgram_check, every
 * truncation of each payload rejected, chunking of a result larger than a
 * datagram, and decoding garbage without crashing.
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

#include "metronome.h"
#include "paxos_codec.h"
#include "util.h"
#include "wire_server.h"

#define CLUSTER 7u
#define SENDER 3u
/* the sender of every datagram built here */
static const struct wire_from FROM = { CLUSTER, SENDER, NULL };

static uint8_t buf[WIRE_MAX_DGRAM];

/* Check a built datagram and return its payload and header. */
static const uint8_t *check(size_t n, unsigned type, struct wire_hdr *h)
{
	assert_int_equal(wire_dgram_check(buf, n, CLUSTER, NULL, h), 0);
	assert_int_equal(h->type, type);
	assert_int_equal(h->sender, SENDER);
	return buf + WIRE_HDR_SIZE;
}

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(wire_type_name(WIRE_T_PAXOS), "PAXOS");
	assert_string_equal(wire_type_name(WIRE_T_RESULT), "RESULT");
	assert_string_equal(wire_type_name(WIRE_T_RESULT_REQUEST), "RESULT_REQUEST");
}

static void test_paxos_roundtrip(void **state)
{
	(void)state;
	struct paxos_msg m = { .type = PAXOS_CATCHUP, .inst = 41, .last = 99 };
	long n = wire_paxos_build(buf, sizeof buf, &FROM, &m);
	assert_true(n > WIRE_OVERHEAD);
	struct wire_hdr h;
	const uint8_t *p = check((size_t)n, WIRE_T_PAXOS, &h);
	struct paxos_msg d;
	assert_int_equal(paxos_msg_decode(&d, p, h.length), 0);
	assert_int_equal(d.type, PAXOS_CATCHUP);
	assert_int_equal(d.inst, 41);
	assert_int_equal(d.last, 99);
	paxos_msg_free(&d);
	for (size_t k = 0; k < h.length; k++) {
		uint8_t copy[64];
		memcpy(copy, p, k);
		assert_true(paxos_msg_decode(&d, copy, k) < 0);
	}
	/* too small a buffer */
	assert_int_equal(wire_paxos_build(buf, WIRE_OVERHEAD + 2, &FROM, &m), MTR_ETOOBIG);
}

static void test_result_request(void **state)
{
	(void)state;
	struct wire_rreq_rec recs[3] = { { 12345, 0xaabbccdd00112233ull, 7 }, { 12346, 0, 0 }, { 99, 1, 2 } };
	struct wire_result_request m = { .stream = 0x1122334455667788ull, .nrec = 3, .recs = recs }, d;
	uint32_t packed = 0;
	size_t n = wire_result_request_build(buf, sizeof buf, &FROM, &m, &packed);
	assert_int_equal(packed, 3);
	struct wire_hdr h;
	const uint8_t *p = check(n, WIRE_T_RESULT_REQUEST, &h);
	assert_int_equal(h.length, WIRE_RREQ_HDR_SIZE + 3 * WIRE_RREQ_REC_SIZE);
	assert_int_equal(wire_result_request_decode(p, h.length, &d), 0);
	assert_true(d.stream == m.stream && d.nrec == 3);
	for (uint32_t i = 0; i < 3; i++) {
		struct wire_rreq_rec r;
		wire_rreq_rec_get(&d, i, &r);
		assert_true(r.seq == recs[i].seq && r.client == recs[i].client && r.request == recs[i].request);
	}
	/* every other length is wrong */
	uint8_t copy[256];
	for (size_t k = 0; k < h.length + 8; k++) {
		if (k == h.length)
			continue;
		memset(copy, 0, sizeof copy);
		memcpy(copy, p, k < h.length ? k : h.length);
		assert_int_equal(wire_result_request_decode(copy, k, &d), MTR_EMALFORMED);
	}
	/* stream 0, seq 0, nrec 0 or too many */
	memcpy(copy, p, h.length);
	memset(copy, 0, 8);
	assert_int_equal(wire_result_request_decode(copy, h.length, &d), MTR_EMALFORMED);
	memcpy(copy, p, h.length);
	memset(copy + WIRE_RREQ_HDR_SIZE + WIRE_RREQ_REC_SIZE, 0, 8);
	assert_int_equal(wire_result_request_decode(copy, h.length, &d), MTR_EMALFORMED);
	memcpy(copy, p, h.length);
	memset(copy + 8, 0, 4);
	assert_int_equal(wire_result_request_decode(copy, WIRE_RREQ_HDR_SIZE, &d), MTR_EMALFORMED);
	/* a small datagram packs what fits; the rest goes in the next */
	size_t cap = WIRE_OVERHEAD + WIRE_RREQ_HDR_SIZE + 2 * WIRE_RREQ_REC_SIZE + 5;
	n = wire_result_request_build(buf, cap, &FROM, &m, &packed);
	assert_int_equal(packed, 2);
	assert_true(n <= cap);
	assert_int_equal(wire_result_request_build(buf, WIRE_OVERHEAD + 20, &FROM, &m, &packed), 0);
	assert_int_equal(packed, 0);
}

static void test_result_unknown(void **state)
{
	(void)state;
	assert_string_equal(wire_type_name(WIRE_T_RESULT_UNKNOWN), "RESULT_UNKNOWN");
	struct wire_runk_rec recs[2] = { { 5, 50 }, { 6, 60 } };
	struct wire_result_unknown m = { .stream = 77, .instance = 1234, .nrec = 2, .recs = recs }, d;
	uint32_t packed = 0;
	size_t n = wire_result_unknown_build(buf, sizeof buf, &FROM, &m, &packed);
	assert_int_equal(packed, 2);
	struct wire_hdr h;
	const uint8_t *p = check(n, WIRE_T_RESULT_UNKNOWN, &h);
	assert_int_equal(wire_result_unknown_decode(p, h.length, &d), 0);
	assert_true(d.stream == 77 && d.instance == 1234 && d.nrec == 2);
	struct wire_runk_rec r;
	wire_runk_rec_get(&d, 1, &r);
	assert_true(r.seq == 6 && r.request == 60);
	for (size_t k = 0; k < h.length; k++)
		assert_int_equal(wire_result_unknown_decode(p, k, &d), MTR_EMALFORMED);
	/* a full batch of WIRE_RREQ_MAX_RECS is split by the MTU */
	struct wire_runk_rec many[WIRE_RREQ_MAX_RECS];
	for (uint32_t i = 0; i < WIRE_RREQ_MAX_RECS; i++)
		many[i] = (struct wire_runk_rec){ i + 1, i + 100 };
	m.recs = many;
	m.nrec = WIRE_RREQ_MAX_RECS;
	uint32_t total = 0, dgrams = 0;
	while (m.nrec) {
		n = wire_result_unknown_build(buf, 1472, &FROM, &m, &packed);
		assert_true(n > 0 && n <= 1472);
		p = check(n, WIRE_T_RESULT_UNKNOWN, &h);
		assert_int_equal(wire_result_unknown_decode(p, h.length, &d), 0);
		wire_runk_rec_get(&d, 0, &r);
		assert_int_equal(r.seq, total + 1);
		total += packed;
		m.recs += packed;
		m.nrec -= packed;
		dgrams++;
	}
	assert_int_equal(total, WIRE_RREQ_MAX_RECS);
	assert_true(dgrams > 1);
}

/* Send results r[0..n) at mtu, decode every datagram and reassemble each
 * result into out[i] (callers' buffers of r[i].len bytes); returns the
 * number of datagrams. */
static unsigned send_all(size_t mtu, const struct wire_result *r, size_t n, uint8_t **out)
{
	size_t idx = 0;
	uint32_t off = 0, have[8] = { 0 };
	unsigned dgrams = 0;
	size_t len;
	while ((len = wire_result_build(buf, mtu, &FROM, 9, r, n, &idx, &off)) > 0) {
		assert_true(len <= mtu);
		struct wire_hdr h;
		const uint8_t *p = check(len, WIRE_T_RESULT, &h);
		struct wire_result_msg m;
		assert_int_equal(wire_result_decode(p, h.length, 1u << 20, &m), 0);
		assert_int_equal(m.stream, 9);
		struct wire_result_rec rec;
		uint32_t count = 0;
		while (wire_result_next(&m, &rec)) {
			size_t i = 0;
			while (i < n && r[i].seq != rec.seq)
				i++;
			assert_true(i < n);
			assert_int_equal(rec.request, r[i].request);
			assert_int_equal(rec.instance, r[i].instance);
			assert_int_equal(rec.total, r[i].len);
			assert_int_equal(rec.offset, have[i]); /* chunks arrive in order */
			memcpy(out[i] + rec.offset, rec.data, rec.len);
			have[i] += rec.len;
			count++;
		}
		assert_int_equal(count, m.nrec);
		/* every truncation of this payload is rejected */
		for (size_t k = 0; k < h.length; k++)
			assert_true(wire_result_decode(p, k, 1u << 20, &m) < 0);
		dgrams++;
		assert_true(dgrams < 1000);
	}
	for (size_t i = 0; i < n; i++)
		assert_int_equal(have[i], r[i].len);
	return dgrams;
}

static void test_result_roundtrip(void **state)
{
	(void)state;
	static uint8_t big[5000], out_big[5000];
	uint8_t small[10] = "abcdefghij", out_small[10], out_empty[1];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 31 + 7);
	struct wire_result r[3] = {
		{ .seq = 1, .request = 100, .instance = 5, .data = small, .len = sizeof small },
		{ .seq = 2, .request = 101, .instance = 5, .data = big, .len = sizeof big },
		{ .seq = 3, .request = 102, .instance = 6, .data = NULL, .len = 0 },
	};
	uint8_t *out[3] = { out_small, out_big, out_empty };

	/* one big datagram holds all three */
	assert_int_equal(send_all(WIRE_DEFAULT_MTU * 8, r, 3, out), 1);
	assert_memory_equal(out_small, small, sizeof small);
	assert_memory_equal(out_big, big, sizeof big);

	/* small datagrams: the big result is chunked */
	memset(out_big, 0, sizeof out_big);
	unsigned d = send_all(WIRE_MIN_MTU, r, 3, out);
	assert_true(d >= sizeof big / (WIRE_MIN_MTU - WIRE_OVERHEAD));
	assert_memory_equal(out_big, big, sizeof big);

	memset(out_big, 0, sizeof out_big);
	assert_true(send_all(WIRE_DEFAULT_MTU, r, 3, out) >= 4);
	assert_memory_equal(out_big, big, sizeof big);

	/* nothing to send */
	size_t idx = 3;
	uint32_t off = 0;
	assert_int_equal(wire_result_build(buf, WIRE_DEFAULT_MTU, &FROM, 9, r, 3, &idx, &off), 0);
}

static void test_result_invalid(void **state)
{
	(void)state;
	uint8_t p[64] = { 0 };
	struct wire_result_msg m;
	/* stream 0 */
	p[8] = 1;
	assert_int_equal(wire_result_decode(p, 12 + 36, 100, &m), MTR_EMALFORMED);
	p[0] = 9;
	/* seq 0 and request 0 */
	assert_int_equal(wire_result_decode(p, 12 + 36, 100, &m), MTR_EMALFORMED);
	/* seq 0 with a request: the answer to a READ */
	p[12 + 8] = 5;
	assert_int_equal(wire_result_decode(p, 12 + 36, 100, &m), 0);
	p[12 + 8] = 0;
	p[12] = 1;
	/* empty result, valid */
	assert_int_equal(wire_result_decode(p, 12 + 36, 100, &m), 0);
	/* trailing byte */
	assert_int_equal(wire_result_decode(p, 12 + 37, 100, &m), MTR_EMALFORMED);
	/* nrec 0 */
	p[8] = 0;
	assert_int_equal(wire_result_decode(p, 12, 100, &m), MTR_EMALFORMED);
	p[8] = 1;
	/* total 10, offset 8, len 4: beyond total */
	p[12 + 24] = 10, p[12 + 28] = 8, p[12 + 32] = 4;
	assert_int_equal(wire_result_decode(p, 12 + 36 + 4, 100, &m), MTR_EMALFORMED);
	/* len 0 of a non-empty result */
	p[12 + 32] = 0;
	assert_int_equal(wire_result_decode(p, 12 + 36, 100, &m), MTR_EMALFORMED);
	/* total over the limit */
	p[12 + 32] = 2;
	assert_int_equal(wire_result_decode(p, 12 + 36 + 2, 100, &m), 0);
	assert_int_equal(wire_result_decode(p, 12 + 36 + 2, 9, &m), MTR_ETOOBIG);
	/* huge len does not overflow */
	p[12 + 24] = 0xff, p[12 + 25] = 0xff, p[12 + 26] = 0xff, p[12 + 27] = 0xff;
	p[12 + 28] = 0, p[12 + 32] = 0xff, p[12 + 33] = 0xff, p[12 + 34] = 0xff, p[12 + 35] = 0xff;
	assert_int_equal(wire_result_decode(p, 12 + 36 + 2, SIZE_MAX, &m), MTR_ETRUNCATED);
}

/* ---- READ ---- */

static void test_read(void **state)
{
	(void)state;
	uint8_t item[100];
	for (int i = 0; i < 100; i++)
		item[i] = (uint8_t)(i ^ 0x5a);
	struct wire_read r = { .stream = 11, .rid = 12, .min_instance = 13, .deadline_ms = 4321, .item = item,
			       .item_len = 100 }, r2;
	long n = wire_read_build(buf, sizeof buf, &FROM, &r);
	assert_int_equal(n, WIRE_OVERHEAD + WIRE_READ_HDR_SIZE + 100);
	struct wire_hdr h;
	const uint8_t *p = check((size_t)n, WIRE_T_READ, &h);
	assert_int_equal(wire_read_decode(p, h.length, &r2), 0);
	assert_true(r2.stream == 11 && r2.rid == 12 && r2.min_instance == 13 && r2.deadline_ms == 4321);
	assert_int_equal(r2.item_len, 100);
	assert_memory_equal(r2.item, item, 100);
	/* a payload without item bytes is malformed (the item bytes themselves
	 * are validated by wire_item_decode) */
	for (size_t k = 0; k <= WIRE_READ_HDR_SIZE; k++)
		assert_int_equal(wire_read_decode(p, k, &r2), MTR_EMALFORMED);
	/* stream 0, rid 0 */
	uint8_t c[WIRE_READ_HDR_SIZE + 1];
	memcpy(c, p, sizeof c);
	memset(c, 0, 8);
	assert_int_equal(wire_read_decode(c, sizeof c, &r2), MTR_EMALFORMED);
	memcpy(c, p, sizeof c);
	memset(c + 8, 0, 8);
	assert_int_equal(wire_read_decode(c, sizeof c, &r2), MTR_EMALFORMED);
	/* deadline 0, above the maximum, at the maximum */
	memcpy(c, p, sizeof c);
	memset(c + 24, 0, 4);
	assert_int_equal(wire_read_decode(c, sizeof c, &r2), MTR_EMALFORMED);
	uint32_t dl = WIRE_READ_DEADLINE_MAX + 1;
	for (int i = 0; i < 4; i++)
		c[24 + i] = (uint8_t)(dl >> (8 * i));
	assert_int_equal(wire_read_decode(c, sizeof c, &r2), MTR_EMALFORMED);
	c[24] = (uint8_t)(c[24] - 1);
	assert_int_equal(wire_read_decode(c, sizeof c, &r2), 0);
	assert_int_equal(r2.deadline_ms, WIRE_READ_DEADLINE_MAX);
	/* too big for the buffer or a datagram */
	assert_int_equal(wire_read_build(buf, WIRE_OVERHEAD + WIRE_READ_HDR_SIZE + 99, &FROM, &r),
			 MTR_ETOOBIG);
	r.item_len = WIRE_MAX_DGRAM;
	assert_int_equal(wire_read_build(buf, sizeof buf, &FROM, &r), MTR_ETOOBIG);
	assert_int_equal(wire_read_build(buf, 10, &FROM, &r), MTR_ETOOBIG);
}

/* ---- CANCEL_READ ---- */

static void test_cancel_read(void **state)
{
	(void)state;
	struct wire_cancel_read m = { .stream = 0x1122334455667788ull, .rid = 99 }, m2;
	size_t n = wire_cancel_read_build(buf, &FROM, &m);
	assert_int_equal(n, WIRE_OVERHEAD + WIRE_CANCEL_READ_SIZE);
	struct wire_hdr h;
	const uint8_t *p = check(n, WIRE_T_CANCEL_READ, &h);
	assert_int_equal(wire_cancel_read_decode(p, h.length, &m2), 0);
	assert_true(m2.stream == m.stream && m2.rid == 99);
	for (size_t k = 0; k < WIRE_CANCEL_READ_SIZE + 2; k++)
		if (k != WIRE_CANCEL_READ_SIZE)
			assert_int_equal(wire_cancel_read_decode(p, k, &m2), MTR_EMALFORMED);
	uint8_t c[WIRE_CANCEL_READ_SIZE];
	memcpy(c, p, sizeof c);
	memset(c, 0, 8);
	assert_int_equal(wire_cancel_read_decode(c, sizeof c, &m2), MTR_EMALFORMED);
	memcpy(c, p, sizeof c);
	memset(c + 8, 0, 8);
	assert_int_equal(wire_cancel_read_decode(c, sizeof c, &m2), MTR_EMALFORMED);
}

/* ---- MEMBERSHIP ---- */

static void test_member(void **state)
{
	(void)state;
	struct wire_member m = { .kind = WIRE_MEMBER_REQUEST, .token = 77, .op = WIRE_MEMBER_REMOVE, .id = 2 }, r;
	long n = wire_member_build(buf, &FROM, &m);
	assert_int_equal(n, WIRE_OVERHEAD + WIRE_MEMBER_REQ_FIXED);
	struct wire_hdr h;
	const uint8_t *p = check((size_t)n, WIRE_T_MEMBERSHIP, &h);
	assert_int_equal(wire_member_decode(p, h.length, &r), 0);
	assert_true(r.kind == WIRE_MEMBER_REQUEST && r.token == 77 && r.op == WIRE_MEMBER_REMOVE && r.id == 2);
	for (size_t k = 0; k < WIRE_MEMBER_REQ_FIXED; k++)
		assert_int_equal(wire_member_decode(p, k, &r), MTR_ETRUNCATED);
	assert_string_equal(wire_member_op_name(WIRE_MEMBER_ADD), "add");
	struct wire_member a = { .kind = WIRE_MEMBER_ANSWER, .token = 77, .id = 2, .instance = 40, .msg = "ok",
				 .msg_len = 2 };
	n = wire_member_build(buf, &FROM, &a);
	assert_int_equal(n, WIRE_OVERHEAD + WIRE_MEMBER_ANS_FIXED + 2);
	p = check((size_t)n, WIRE_T_MEMBERSHIP, &h);
	assert_int_equal(wire_member_decode(p, h.length, &r), 0);
	assert_true(r.kind == WIRE_MEMBER_ANSWER && r.status == 0 && r.instance == 40 && r.msg_len == 2);
	uint8_t c[WIRE_MEMBER_ANS_FIXED + 3];
	memcpy(c, p, h.length);
	c[h.length] = 'x';
	assert_int_equal(wire_member_decode(c, h.length + 1, &r), MTR_EMALFORMED); /* a trailing byte */
	a.msg = "a\0b";
	a.msg_len = 3;
	assert_int_equal(wire_member_build(buf, &FROM, &a), MTR_EINVAL); /* a NUL in the message */
}

/* ---- STATUS ---- */

static void test_status(void **state)
{
	(void)state;
	struct wire_status s = { .node = 3, .role = PAXOS_LEADER, .leader = PAXOS_BROADCAST,
				 .ballot = 0x1122334455667788ull, .chosen = 1000, .applied = 999, .compacted = 500,
				 .origin = 0x0102030405060708ull },
			   s2;
	size_t n = wire_status_build(buf, &FROM, &s);
	assert_int_equal(n, WIRE_OVERHEAD + WIRE_STATUS_SIZE);
	struct wire_hdr h;
	const uint8_t *p = check(n, WIRE_T_STATUS, &h);
	assert_int_equal(wire_status_decode(p, h.length, &s2), 0);
	assert_int_equal(s2.node, 3);
	assert_int_equal(s2.role, PAXOS_LEADER);
	assert_int_equal(s2.leader, PAXOS_BROADCAST);
	assert_true(s2.ballot == s.ballot && s2.chosen == 1000 && s2.applied == 999 && s2.compacted == 500);
	assert_true(s2.origin == s.origin);
	/* the older payload without the origin decodes with origin 0 */
	assert_int_equal(wire_status_decode(p, WIRE_STATUS_SIZE_V1, &s2), 0);
	assert_true(s2.compacted == 500 && s2.origin == 0);
	for (size_t k = 0; k < WIRE_STATUS_SIZE; k++)
		if (k != WIRE_STATUS_SIZE_V1)
			assert_int_equal(wire_status_decode(p, k, &s2), MTR_EMALFORMED);
	assert_int_equal(wire_status_decode(p, WIRE_STATUS_SIZE + 1, &s2), MTR_EMALFORMED);
	uint8_t c[WIRE_STATUS_SIZE];
	memcpy(c, p, sizeof c);
	c[4] = 3;
	assert_int_equal(wire_status_decode(c, sizeof c, &s2), MTR_EMALFORMED);
}

/* STATUS with the membership (doc/protocol.md "STATUS"): round trip, the
 * exact bytes, and every rule of the decoder. */
static void test_status_members(void **state)
{
	(void)state;
	struct wire_status s = {.node = 4, .role = PAXOS_FOLLOWER, .leader = 1, .ballot = 7, .chosen = 30,
				.applied = 29, .compacted = 10, .origin = 0, .conf = 2 * 25, .nmembers = 3},
			   s2;
	s.m[0] = (struct wire_status_member){.id = 1, .flags = WIRE_MEMBER_VOTER, .ip = 0x7f000001, .port = 7501};
	s.m[1] = (struct wire_status_member){.id = 2, .flags = WIRE_MEMBER_LEAVING, .ip = 0x7f000002, .port = 7502};
	s.m[2] = (struct wire_status_member){.id = 4, .flags = 0, .ip = 0x0a000004, .port = 0x1234};
	size_t n = wire_status_build(buf, &FROM, &s);
	assert_int_equal(n, WIRE_OVERHEAD + WIRE_STATUS_SIZE + 9 + 3 * WIRE_STATUS_MEMBER_SIZE);
	struct wire_hdr h;
	const uint8_t *p = check(n, WIRE_T_STATUS, &h);
	static const uint8_t tail[] = {50, 0, 0, 0, 0, 0, 0, 0, 3, /* conf 50, 3 members */
				       1, 1, 1, 0, 0, 0x7f, 0x4d, 0x1d,   /* 1 voter 127.0.0.1:7501 */
				       2, 2, 2, 0, 0, 0x7f, 0x4e, 0x1d,   /* 2 leaving 127.0.0.2:7502 */
				       4, 0, 4, 0, 0, 0x0a, 0x34, 0x12};  /* 4 learner 10.0.0.4:0x1234 */
	assert_int_equal(h.length, WIRE_STATUS_SIZE + sizeof tail);
	assert_memory_equal(p + WIRE_STATUS_SIZE, tail, sizeof tail);
	assert_int_equal(wire_status_decode(p, h.length, &s2), 0);
	assert_true(s2.conf == 50 && s2.nmembers == 3 && s2.applied == 29);
	for (unsigned i = 0; i < 3; i++)
		assert_true(s2.m[i].id == s.m[i].id && s2.m[i].flags == s.m[i].flags && s2.m[i].ip == s.m[i].ip &&
			    s2.m[i].port == s.m[i].port);
	/* without a membership: conf and nmembers read 0 */
	struct wire_status plain = s;
	plain.conf = 0;
	n = wire_status_build(buf, &FROM, &plain);
	assert_int_equal(n, WIRE_OVERHEAD + WIRE_STATUS_SIZE);
	p = check(n, WIRE_T_STATUS, &h);
	s2.conf = 9;
	s2.nmembers = 9;
	assert_int_equal(wire_status_decode(p, h.length, &s2), 0);
	assert_true(s2.conf == 0 && s2.nmembers == 0);
	/* the rules, one broken at a time */
	uint8_t good[WIRE_STATUS_SIZE + sizeof tail], c[sizeof good];
	memset(good, 0, WIRE_STATUS_SIZE);
	memcpy(good + WIRE_STATUS_SIZE, tail, sizeof tail);
	assert_int_equal(wire_status_decode(good, sizeof good, &s2), 0);
	for (size_t k = WIRE_STATUS_SIZE + 1; k < sizeof good; k++)
		assert_int_equal(wire_status_decode(good, k, &s2), MTR_EMALFORMED); /* cut anywhere */
	struct {
		size_t off;
		uint8_t v;
	} bad[] = {
		{WIRE_STATUS_SIZE, 1},          /* conf 1: the initial one is never carried */
		{WIRE_STATUS_SIZE + 8, 0},      /* no member */
		{WIRE_STATUS_SIZE + 8, 4},      /* count beyond the bytes */
		{WIRE_STATUS_SIZE + 9, 64},     /* id 64 */
		{WIRE_STATUS_SIZE + 17, 1},     /* ids not increasing */
		{WIRE_STATUS_SIZE + 10, 4},     /* an unknown flag */
		{WIRE_STATUS_SIZE + 15, 0},     /* port 0 (with the next byte) */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memcpy(c, good, sizeof c);
		c[bad[i].off] = bad[i].v;
		if (i == ARRAY_SIZE(bad) - 1)
			c[bad[i].off + 1] = 0;
		assert_int_equal(wire_status_decode(c, sizeof c, &s2), MTR_EMALFORMED);
	}
	/* every member leaving */
	memcpy(c, good, sizeof c);
	c[WIRE_STATUS_SIZE + 10] = WIRE_MEMBER_LEAVING;
	c[WIRE_STATUS_SIZE + 26] = WIRE_MEMBER_LEAVING;
	assert_int_equal(wire_status_decode(c, sizeof c, &s2), MTR_EMALFORMED);
	c[WIRE_STATUS_SIZE + 26] = WIRE_MEMBER_VOTER;
	assert_int_equal(wire_status_decode(c, sizeof c, &s2), 0);
	/* the most members */
	s.nmembers = WIRE_STATUS_MEMBERS_MAX;
	for (unsigned i = 0; i < WIRE_STATUS_MEMBERS_MAX; i++)
		s.m[i] = (struct wire_status_member){.id = (uint8_t)(2 * i), .flags = WIRE_MEMBER_VOTER, .ip = i + 1,
						     .port = 1};
	n = wire_status_build(buf, &FROM, &s);
	assert_int_equal(n, WIRE_OVERHEAD + WIRE_STATUS_MAX);
	p = check(n, WIRE_T_STATUS, &h);
	assert_int_equal(wire_status_decode(p, h.length, &s2), 0);
	assert_int_equal(s2.nmembers, WIRE_STATUS_MEMBERS_MAX);
	assert_int_equal(s2.m[WIRE_STATUS_MEMBERS_MAX - 1].id, 62);
}

static void test_stats(void **state)
{
	(void)state;
	/* 200 counters need several datagrams at the smallest MTU */
	enum { N = 200 };
	static char names[N][40];
	struct wire_stat s[N];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "module_%d.counter_with_a_long_name", i);
		s[i] = (struct wire_stat){ .name = names[i], .value = 0x0102030405060708ull + (uint64_t)i };
	}
	size_t idx = 0, got = 0, n;
	int dgrams = 0;
	while ((n = wire_stats_build(buf, WIRE_MIN_MTU, &FROM, 4, s, N, &idx)) > 0) {
		dgrams++;
		assert_true(n <= WIRE_MIN_MTU);
		struct wire_hdr h;
		const uint8_t *p = check(n, WIRE_T_STATS, &h);
		struct wire_stats_msg m;
		assert_int_equal(wire_stats_decode(p, h.length, &m), 0);
		assert_int_equal(m.node, 4);
		assert_int_equal(m.total, N);
		assert_int_equal(m.first, got);
		struct wire_stat r;
		while (wire_stats_next(&m, &r)) {
			assert_int_equal(r.name_len, strlen(names[got]));
			assert_memory_equal(r.name, names[got], r.name_len);
			assert_true(r.value == s[got].value);
			got++;
		}
		/* every cut is refused */
		for (size_t k = 0; k < h.length; k++)
			assert_int_equal(wire_stats_decode(p, k, &m), MTR_EMALFORMED);
		/* a name with a byte outside [a-z0-9_.] is refused */
		uint8_t c[WIRE_MIN_MTU];
		memcpy(c, p, h.length);
		c[WIRE_STATS_HDR_SIZE + 1] = 'A';
		assert_int_equal(wire_stats_decode(c, h.length, &m), MTR_EMALFORMED);
		/* first + nrec beyond total is refused */
		memcpy(c, p, h.length);
		c[4] = 1;
		c[5] = 0;
		assert_int_equal(wire_stats_decode(c, h.length, &m), MTR_EMALFORMED);
	}
	assert_int_equal(got, N);
	assert_true(dgrams > 10);
	assert_int_equal(idx, N);
}

static void test_garbage(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(x % 200);
		uint8_t *p = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* mostly small values so that lengths sometimes line up */
			p[i] = (uint8_t)(x % 5 == 0 ? x >> 8 : x % 3);
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		struct wire_result_msg m;
		if (wire_result_decode(p, len, 1000, &m) == 0) {
			struct wire_result_rec rec;
			volatile uint8_t sink = 0;
			while (wire_result_next(&m, &rec))
				if (rec.len)
					sink ^= rec.data[rec.len - 1];
			(void)sink;
		}
		struct wire_result_request rq;
		if (wire_result_request_decode(p, len, &rq) == 0) {
			struct wire_rreq_rec rr;
			wire_rreq_rec_get(&rq, rq.nrec - 1, &rr);
			assert_true(rr.seq != 0);
		}
		struct wire_result_unknown ru;
		if (wire_result_unknown_decode(p, len, &ru) == 0) {
			struct wire_runk_rec rr;
			wire_runk_rec_get(&ru, ru.nrec - 1, &rr);
			assert_true(rr.seq != 0);
		}
		struct wire_read rd;
		if (wire_read_decode(p, len, &rd) == 0)
			assert_true(rd.item + rd.item_len == p + len && rd.deadline_ms > 0);
		struct wire_cancel_read cr;
		(void)wire_cancel_read_decode(p, len, &cr);
		struct wire_status st;
		(void)wire_status_decode(p, len, &st);
		struct paxos_msg pm;
		if (paxos_msg_decode(&pm, p, len) == 0)
			paxos_msg_free(&pm);
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names),     cmocka_unit_test(test_paxos_roundtrip),
		cmocka_unit_test(test_result_request), cmocka_unit_test(test_result_roundtrip),
		cmocka_unit_test(test_result_invalid), cmocka_unit_test(test_read), cmocka_unit_test(test_cancel_read),
		cmocka_unit_test(test_status),         cmocka_unit_test(test_status_members),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_stats),          cmocka_unit_test(test_result_unknown),
		cmocka_unit_test(test_member),
	};
	return cmocka_run_group_tests_name("wire_server", tests, NULL, NULL);
}
