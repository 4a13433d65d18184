/*
 * fuzz_wire.c - libFuzzer target for everything that decodes datagrams.
 *
 * Byte 0 of the input chooses the mode: even - the rest is a raw datagram,
 * checked with and without a key as it is (a random trailer almost never
 * matches, so this covers the checks before the trailer), then again with its
 * last 8 bytes replaced by the trailer its other bytes call for (hash, or MAC
 * when bit 1 of byte 0 is set), so that the checks after the trailer and the
 * decoders see fuzzed headers; odd - byte 1 is a message type and the rest
 * a payload that is framed with a correct trailer first, so that the payload
 * decoders (items, statements, parameters, fragments with reassembly,
 * heartbeat, resend, result, result request and result unknown, a
 * membership change that must encode to the same bytes, READ and READS,
 * ...) see
 * arbitrary bytes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <xxhash.h>

#include "reasm.h"
#include "util.h"
#include "wire.h"
#include "paxos_codec.h"
#include "wire_server.h"

static struct reasm *reasm_state;

static void decode_payload(const struct wire_hdr *h, const uint8_t *p)
{
	switch (h->type) {
	case WIRE_T_ITEMS: {
		const uint8_t *q = p, *end = p + h->length;
		struct wire_item it;
		while (wire_items_next(&q, end, &it) == 1) {
			struct wire_stmt_iter si;
			struct wire_stmt st;
			const uint8_t *pp;
			wire_stmt_begin(&it, &si);
			while (wire_stmt_next(&si, &st, &pp)) {
				volatile uint8_t sink = 0;
				for (uint32_t i = 0; i < st.sql_len; i++)
					sink ^= (uint8_t)st.sql[i];
				for (unsigned i = 0; i < st.nparams; i++) {
					struct wire_value v;
					wire_param_next(&pp, &v);
					if ((v.type == WIRE_V_TEXT || v.type == WIRE_V_BLOB) && v.u.b.n)
						sink ^= ((const uint8_t *)v.u.b.p)[v.u.b.n - 1];
				}
				(void)sink;
			}
		}
		break;
	}
	case WIRE_T_FRAGMENT: {
		struct wire_frag f;
		uint8_t *item;
		size_t len;
		if (wire_frag_decode(p, h->length, 1u << 20, &f) == 0 && reasm_add(reasm_state, &f, 0, &item, &len) == 1) {
			struct wire_item it;
			wire_item_decode(item, len, &it);
			free(item);
		}
		break;
	}
	case WIRE_T_HEARTBEAT: {
		struct wire_heartbeat m;
		wire_heartbeat_decode(p, h->length, &m);
		break;
	}
	case WIRE_T_RESEND: {
		struct wire_resend m;
		wire_resend_decode(p, h->length, &m);
		break;
	}
	case WIRE_T_PAXOS: {
		struct paxos_msg m;
		if (paxos_msg_decode(&m, p, h->length) == 0)
			paxos_msg_free(&m);
		break;
	}
	case WIRE_T_RESULT: {
		struct wire_result_msg m;
		struct wire_result_rec rec;
		if (wire_result_decode(p, h->length, 1u << 20, &m) == 0) {
			volatile uint8_t sink = 0;
			while (wire_result_next(&m, &rec))
				if (rec.len)
					sink ^= rec.data[rec.len - 1];
			(void)sink;
		}
		break;
	}
	case WIRE_T_RESULT_REQUEST: {
		struct wire_result_request m;
		if (wire_result_request_decode(p, h->length, &m) == 0) {
			volatile uint64_t sink = 0;
			for (uint32_t i = 0; i < m.nrec; i++) {
				struct wire_rreq_rec r;
				wire_rreq_rec_get(&m, i, &r);
				sink += r.seq ^ r.client ^ r.request;
			}
			(void)sink;
		}
		break;
	}
	case WIRE_T_RESULT_UNKNOWN: {
		struct wire_result_unknown m;
		if (wire_result_unknown_decode(p, h->length, &m) == 0) {
			volatile uint64_t sink = m.instance;
			for (uint32_t i = 0; i < m.nrec; i++) {
				struct wire_runk_rec r;
				wire_runk_rec_get(&m, i, &r);
				sink += r.seq ^ r.request;
			}
			(void)sink;
		}
		break;
	}
	case WIRE_T_READ: {
		struct wire_read m;
		struct wire_item it;
		if (wire_read_decode(p, h->length, &m) == 0)
			wire_item_decode(m.item, m.item_len, &it);
		break;
	}
	case WIRE_T_READS: {
		/* each record as a READ; a payload whose records all decode is
		 * built again, byte for byte, by wire_reads_add */
		const uint8_t *q = p, *end = p + h->length;
		struct wire_read m;
		struct wire_item it;
		static uint8_t again[WIRE_MAX_DGRAM];
		struct wire_reads_pk pk;
		int rc, fits = h->length + WIRE_OVERHEAD <= sizeof again;
		if (fits && h->length >= 8)
			wire_reads_begin(&pk, again, sizeof again, ld64(p));
		while ((rc = wire_reads_next(&q, p, end, &m)) == 1) {
			wire_item_decode(m.item, m.item_len, &it);
			if (fits && h->length >= 8 && wire_reads_add(&pk, &m) != 0)
				abort();
		}
		if (rc == 0 && fits && (pk.used != h->length || memcmp(again + WIRE_HDR_SIZE, p, h->length) != 0))
			abort();
		break;
	}
	case WIRE_T_CANCEL_READ: {
		struct wire_cancel_read m;
		wire_cancel_read_decode(p, h->length, &m);
		break;
	}
	case WIRE_T_STATUS: {
		/* a decoded STATUS (with its membership) encodes to the same bytes */
		struct wire_status m;
		static uint8_t again[WIRE_STATUS_MAX + WIRE_OVERHEAD];
		if (wire_status_decode(p, h->length, &m) == 0 && h->length >= WIRE_STATUS_SIZE) {
			static const struct wire_from from = {.cluster = 1, .sender = 0, .key = NULL};
			size_t n = wire_status_build(again, &from, &m);
			if (n != WIRE_OVERHEAD + h->length || memcmp(again + WIRE_HDR_SIZE, p, h->length) != 0)
				abort();
		}
		break;
	}
	case WIRE_T_MEMBERSHIP: {
		/* a decoded MEMBERSHIP (request or answer) encodes to the same bytes */
		struct wire_member m;
		static uint8_t again[WIRE_MEMBER_MAX + WIRE_OVERHEAD];
		if (wire_member_decode(p, h->length, &m) == 0) {
			static const struct wire_from from = {.cluster = 1, .sender = 0, .key = NULL};
			long n = wire_member_build(again, &from, &m);
			if (n != (long)(WIRE_OVERHEAD + h->length) || memcmp(again + WIRE_HDR_SIZE, p, h->length) != 0)
				abort();
		}
		break;
	}
	case WIRE_T_STATS: {
		struct wire_stats_msg m;
		struct wire_stat s;
		if (wire_stats_decode(p, h->length, &m) == 0) {
			volatile uint64_t sink = 0;
			while (wire_stats_next(&m, &s))
				sink += s.value + (uint8_t)s.name[s.name_len - 1];
			(void)sink;
		}
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct wire_key key = { .set = 1, .k = "0123456789abcdef" };
	static const struct wire_key rolling = { .set = 1, .k = "fedcba9876543210", .next_set = 1,
						 .next = "0123456789abcdef" };
	struct wire_hdr h;

	if (!reasm_state)
		reasm_state = reasm_new(1u << 20, 4u << 20, 16);
	if (size < 1)
		return 0;
	if (data[0] % 2 == 0) {
		/* exact-size copy so that any overread is caught */
		uint8_t *buf = malloc(size - 1 ? size - 1 : 1);
		memcpy(buf, data + 1, size - 1);
		if (wire_dgram_check(buf, size - 1, 42, NULL, &h) == 0)
			decode_payload(&h, buf + WIRE_HDR_SIZE);
		if (wire_dgram_check(buf, size - 1, 42, &key, &h) == 0)
			decode_payload(&h, buf + WIRE_HDR_SIZE);
		if (wire_dgram_check(buf, size - 1, 42, &rolling, &h) == 0) /* cluster.key_next */
			decode_payload(&h, buf + WIRE_HDR_SIZE);
		if (size - 1 >= WIRE_OVERHEAD) {
			/* the trailer-recomputing variant */
			size_t n = size - 1 - WIRE_TRAILER_SIZE;
			const struct wire_key *k = data[0] & 2 ? &key : NULL;
			if (k)
				crypto_shorthash(buf + n, buf, n, k->k);
			else
				st64(buf + n, XXH3_64bits(buf, n));
			if (wire_dgram_check(buf, size - 1, 42, k, &h) == 0)
				decode_payload(&h, buf + WIRE_HDR_SIZE);
		}
		free(buf);
		return 0;
	}
	if (size < 2 || size - 2 > WIRE_MAX_DGRAM - WIRE_OVERHEAD)
		return 0;
	size_t plen = size - 2;
	uint8_t *buf = malloc(plen + WIRE_OVERHEAD);
	memcpy(buf + WIRE_HDR_SIZE, data + 2, plen);
	struct wire_from from = { .cluster = 42, .sender = 1, .key = data[0] & 2 ? &key : NULL };
	size_t n = wire_frame_finish(buf, &from, data[1], (uint32_t)plen);
	if (wire_dgram_check(buf, n, 42, data[0] & 2 ? &key : NULL, &h) != 0)
		abort(); /* a datagram we framed must pass */
	decode_payload(&h, buf + WIRE_HDR_SIZE);
	free(buf);
	return 0;
}
