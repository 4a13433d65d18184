/*
 * test_batch.c - batches of ranges: encode/decode round trips, validation,
 * decoding of hostile bytes, and the contiguity cursor (invariant 3); also
 * the Paxos message codec built on them.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "metronome.h"
#include "paxos_codec.h"

/* ---- helpers ---- */

static struct batch make(unsigned n, const uint64_t (*r)[3])
{
	struct batch b = { 0 };
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(batch_push(&b, r[i][0], r[i][1], r[i][2]), 0);
	return b;
}

/* ---- batch_validate ---- */

static void test_validate(void **state)
{
	(void)state;
	static const uint64_t good[][3] = { { 1, 1, 10 }, { 2, 5, 5 }, { 9, 100, 200 } };
	static const uint64_t unsorted[][3] = { { 2, 1, 10 }, { 1, 1, 10 } };
	static const uint64_t dup[][3] = { { 1, 1, 10 }, { 1, 11, 12 } };
	static const uint64_t backwards[][3] = { { 1, 10, 9 } };
	static const uint64_t zero[][3] = { { 1, 0, 9 } };
	struct batch b = make(3, good);
	assert_int_equal(batch_validate(&b), 0);
	batch_free(&b);
	struct batch empty = { 0 };
	assert_int_equal(batch_validate(&empty), 0);
	b = make(2, unsorted);
	assert_int_equal(batch_validate(&b), MTR_EINVAL);
	batch_free(&b);
	b = make(2, dup);
	assert_int_equal(batch_validate(&b), MTR_EINVAL);
	batch_free(&b);
	b = make(1, backwards);
	assert_int_equal(batch_validate(&b), MTR_EINVAL);
	batch_free(&b);
	b = make(1, zero);
	assert_int_equal(batch_validate(&b), MTR_EINVAL);
	batch_free(&b);
}

/* ---- batch_encode / batch_decode ---- */

static void test_round_trip(void **state)
{
	(void)state;
	static const uint64_t r[][3] = { { 1, 42, 2000 }, { 2, 314, 159200 }, { UINT64_MAX, 1, UINT64_MAX } };
	for (unsigned n = 0; n <= 3; n++) {
		struct batch b = make(n, r), d = { 0 };
		uint8_t buf[128];
		int len = batch_encode(&b, buf, sizeof buf);
		assert_int_equal(len, 4 + 24 * n);
		assert_int_equal((size_t)len, batch_encoded_size(&b));
		size_t used = 0;
		assert_int_equal(batch_decode(&d, buf, (size_t)len, &used), 0);
		assert_int_equal(used, (size_t)len);
		assert_true(batch_equal(&b, &d));
		/* every truncation is refused */
		for (int cut = 0; cut < len; cut++) {
			struct batch t = { 0 };
			assert_int_equal(batch_decode(&t, buf, (size_t)cut, NULL), MTR_ETRUNCATED);
			assert_null(t.r);
		}
		assert_int_equal(batch_encode(&b, buf, (size_t)len - 1 + (len == 0)), len ? MTR_ETOOBIG : len);
		batch_free(&b);
		batch_free(&d);
	}
	/* little-endian, byte by byte */
	struct batch one = make(1, r);
	uint8_t buf[28];
	batch_encode(&one, buf, sizeof buf);
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[4], 1);
	assert_int_equal(buf[12], 42);
	assert_int_equal(buf[20], 2000 & 0xff);
	assert_int_equal(buf[21], 2000 >> 8);
	batch_free(&one);
}

static void test_decode_hostile(void **state)
{
	(void)state;
	uint8_t buf[4 + 24 * 2] = { 0 };
	struct batch d;
	/* count too large */
	buf[0] = 0xff;
	buf[1] = 0xff;
	assert_int_equal(batch_decode(&d, buf, sizeof buf, NULL), MTR_EMALFORMED);
	/* count says 2 but ranges are invalid (first = 0) */
	memset(buf, 0, sizeof buf);
	buf[0] = 2;
	assert_int_equal(batch_decode(&d, buf, sizeof buf, NULL), MTR_EMALFORMED);
	assert_null(d.r);
	assert_int_equal(d.n, 0);
}

/* ---- configurations (doc/paxos.md, "Membership") ---- */

static void test_conf(void **state)
{
	(void)state;
	static const uint64_t r[][3] = { { 3, 7, 9 } };
	struct batch b = make(1, r), d = { 0 };
	struct batch_conf c = { .n = 3,
				.m = { { .id = 0, .voter = 1, .addr = "10.0.0.1:7000" },
				       { .id = 2, .voter = 1, .addr = "db2.example:7000" },
				       { .id = 5, .voter = 0, .addr = "" } } };
	assert_int_equal(batch_set_conf(&b, &c), 0);
	assert_int_equal(batch_validate(&b), 0);
	assert_int_equal(batch_conf_members(&c), 0x25);
	assert_int_equal(batch_conf_voters(&c), 0x5);
	assert_non_null(batch_conf_find(&c, 5));
	assert_null(batch_conf_find(&c, 1));
	uint8_t buf[256];
	int len = batch_encode(&b, buf, sizeof buf);
	/* count with bit 31, one range, then 1 + (3 + 13) + (3 + 16) + 3 */
	assert_int_equal(len, 4 + 24 + 1 + 16 + 19 + 3);
	assert_int_equal((size_t)len, batch_encoded_size(&b));
	assert_int_equal(buf[3], 0x80);
	assert_int_equal(buf[28], 3);
	assert_int_equal(buf[29], 0);
	assert_int_equal(buf[30], 1);
	assert_int_equal(buf[31], 13);
	size_t used = 0;
	assert_int_equal(batch_decode(&d, buf, (size_t)len, &used), 0);
	assert_int_equal(used, (size_t)len);
	assert_true(batch_equal(&b, &d));
	assert_string_equal(d.conf->m[1].addr, "db2.example:7000");
	for (int cut = 0; cut < len; cut++) {
		struct batch t = { 0 };
		assert_int_equal(batch_decode(&t, buf, (size_t)cut, NULL), MTR_ETRUNCATED);
		assert_null(t.conf);
	}
	/* a copy is deep; another configuration is not equal */
	struct batch e = { 0 };
	assert_int_equal(batch_copy(&e, &b), 0);
	assert_true(batch_equal(&e, &b));
	e.conf->m[2].voter = 1;
	assert_false(batch_equal(&e, &b));
	assert_int_equal(d.conf->m[2].voter, 0);
	batch_free(&d);
	/* hostile configurations: no member, 17 members, ids out of order,
	 * voter 2, no voter, a space or a NUL in an address */
	uint8_t h[64];
	memcpy(h, buf, 29);
	h[28] = 0;
	assert_int_equal(batch_decode(&d, h, 29, NULL), MTR_EMALFORMED);
	h[28] = 17;
	assert_int_equal(batch_decode(&d, h, 29, NULL), MTR_EMALFORMED);
	static const uint8_t bad[][8] = {
		{ 2, 4, 1, 0, 3, 1, 0 }, /* ids 4 then 3 */
		{ 1, 0, 2, 0 },          /* voter 2 */
		{ 1, 0, 0, 0 },          /* no voter */
		{ 1, 0, 1, 2, 'a', ' ' },/* a space */
		{ 1, 0, 1, 2, 'a', 0 },  /* a NUL */
		{ 1, 64, 1, 0 },         /* id 64 */
	};
	for (unsigned k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		memcpy(h + 28, bad[k], 8);
		size_t n = 28 + 1 + 3 + (bad[k][0] == 2 ? 3 : bad[k][3]);
		assert_int_equal(batch_decode(&d, h, n, NULL), MTR_EMALFORMED);
		assert_null(d.conf);
	}
	batch_free(&b);
	batch_free(&e);
}

/* ---- batch_order: the contiguity checker ---- */

static void test_contiguity(void **state)
{
	(void)state;
	static const uint64_t i1[][3] = { { 1, 1, 10 }, { 2, 1, 5 } };
	static const uint64_t i2[][3] = { { 1, 11, 20 } };
	static const uint64_t gap[][3] = { { 2, 7, 9 } };
	static const uint64_t overlap[][3] = { { 1, 15, 30 } };
	static const uint64_t late_start[][3] = { { 3, 2, 4 } };
	struct batch_order o = { 0 };
	struct batch b = make(2, i1);
	assert_int_equal(batch_order_apply(&o, &b), 0);
	batch_free(&b);
	assert_int_equal(batch_order_last(&o, 1), 10);
	assert_int_equal(batch_order_last(&o, 2), 5);
	assert_int_equal(batch_order_last(&o, 3), 0);
	b = make(1, i2);
	assert_int_equal(batch_order_apply(&o, &b), 0);
	batch_free(&b);
	b = make(1, gap);
	assert_int_equal(batch_order_apply(&o, &b), MTR_EINVAL);
	assert_int_equal(batch_order_last(&o, 2), 5); /* unchanged */
	batch_free(&b);
	b = make(1, overlap);
	assert_int_equal(batch_order_check(&o, &b), MTR_EINVAL);
	batch_free(&b);
	b = make(1, late_start);
	assert_int_equal(batch_order_check(&o, &b), MTR_EINVAL);
	batch_free(&b);
	struct batch noop = { 0 };
	assert_int_equal(batch_order_apply(&o, &noop), 0);
	/* many streams inserted out of order stay sorted */
	for (uint64_t s = 100; s > 3; s--)
		assert_int_equal(batch_order_set(&o, s * 7 % 101 + 3, s), 0);
	for (uint32_t i = 1; i < o.n; i++)
		assert_true(o.v[i - 1].stream < o.v[i].stream);
	struct batch_order c = { 0 };
	assert_int_equal(batch_order_copy(&c, &o), 0);
	assert_int_equal(c.n, o.n);
	batch_order_free(&c);
	batch_order_free(&o);
}

/* ---- paxos_msg codec ---- */

static void test_msg_round_trip(void **state)
{
	(void)state;
	static const uint64_t r[][3] = { { 1, 1, 10 }, { 4, 7, 9 } };
	struct batch v = make(2, r);
	struct paxos_entry ents[2] = { { 5, 0x305, v }, { 6, PAXOS_BALLOT_CHOSEN, { 0 } } };
	struct batch_mark marks[2] = { { 1, 10 }, { 4, 9 } };
	struct paxos_msg msgs[] = {
		{ .type = PAXOS_PREPARE, .ballot = 0x1203, .inst = 77 },
		{ .type = PAXOS_PROMISE, .ballot = 0x1203, .inst = 5, .commit = 4, .more = 1, .n_entries = 2, .entries = ents },
		{ .type = PAXOS_NACK, .ballot = 9 },
		{ .type = PAXOS_ACCEPT, .ballot = 0x1203, .inst = 5, .value = v },
		{ .type = PAXOS_ACCEPTED, .ballot = 0x1203, .inst = 5 },
		{ .type = PAXOS_HEARTBEAT, .ballot = 0x1203, .inst = 5, .commit = 6 },
		{ .type = PAXOS_CATCHUP, .inst = 3, .last = 9 },
		{ .type = PAXOS_CHOSEN, .n_entries = 1, .entries = ents + 1 },
		{ .type = PAXOS_SNAPSHOT, .inst = 100 },
		{ .type = PAXOS_WATERMARK, .n_marks = 2, .marks = marks },
		{ .type = PAXOS_WATERMARK },
		{ .type = PAXOS_PREVOTE, .ballot = 0x1301, .commit = 41 },
		{ .type = PAXOS_PREVOTE_REPLY, .ballot = 0x1301, .commit = 42, .leader = 0x1203, .grant = 0 },
		{ .type = PAXOS_PREVOTE_REPLY, .ballot = 0x1301, .commit = 40, .grant = 1 },
	};
	for (size_t k = 0; k < sizeof msgs / sizeof msgs[0]; k++) {
		uint8_t buf[512];
		int len = paxos_msg_encode(&msgs[k], buf, sizeof buf);
		assert_true(len > 0);
		assert_int_equal((size_t)len, paxos_msg_encoded_size(&msgs[k]));
		struct paxos_msg d;
		assert_int_equal(paxos_msg_decode(&d, buf, (size_t)len), 0);
		uint8_t again[512];
		assert_int_equal(paxos_msg_encode(&d, again, sizeof again), len);
		assert_memory_equal(buf, again, (size_t)len);
		char line[256];
		assert_string_equal(strtok(paxos_msg_print(&d, line, sizeof line), " "), paxos_msg_name(msgs[k].type));
		paxos_msg_free(&d);
		for (int cut = 0; cut < len; cut++)
			assert_int_not_equal(paxos_msg_decode(&d, buf, (size_t)cut), 0);
		buf[len] = 0; /* trailing byte */
		assert_int_equal(paxos_msg_decode(&d, buf, (size_t)len + 1), MTR_EMALFORMED);
	}
	uint8_t bad = 99;
	struct paxos_msg d;
	assert_int_equal(paxos_msg_decode(&d, &bad, 1), MTR_EMALFORMED);
	/* PREVOTE_REPLY: type, ballot, commit, leader, grant (0 or 1) */
	uint8_t pv[26] = { PAXOS_PREVOTE_REPLY };
	pv[25] = 1;
	assert_int_equal(paxos_msg_decode(&d, pv, sizeof pv), 0);
	assert_int_equal(d.grant, 1);
	pv[25] = 2;
	assert_int_equal(paxos_msg_decode(&d, pv, sizeof pv), MTR_EMALFORMED);
	/* the example of doc/paxos.md, byte by byte */
	static const uint8_t doc[26] = { 0x0c, 0x01, 0x13, 0, 0, 0, 0, 0, 0, 0x2a, 0, 0, 0, 0, 0, 0, 0,
					 0x03, 0x12, 0,    0, 0, 0, 0, 0, 0x00 };
	struct paxos_msg ex = { .type = PAXOS_PREVOTE_REPLY, .ballot = paxos_ballot(19, 1), .commit = 42,
				.leader = paxos_ballot(18, 3), .grant = 0 };
	uint8_t got[64];
	assert_int_equal(paxos_msg_encode(&ex, got, sizeof got), (int)sizeof doc);
	assert_memory_equal(got, doc, sizeof doc);
	assert_string_equal(paxos_msg_name(99), "?");
	batch_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_decode_hostile),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_contiguity),
		cmocka_unit_test(test_msg_round_trip),
	};
	return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
