/*
 * bench_wire.c - `mtrbench wire`: the cost of the datagram format on one core.
 *
 * Figures (medians of 5 repetitions of about 0.1 s each):
 *   - framing + checking full datagrams (--mtu bytes, default 1472) with the
 *     XXH3-64 trailer and with the SipHash-2-4 MAC: datagrams/s and MB/s;
 *   - packing small items (an INSERT with an INT, a REAL and a 16-byte TEXT
 *     parameter) into datagrams and iterating them back, statements and
 *     parameters included: items/s each way;
 *   - reassembling a 16 MiB item from shuffled fragments: MB/s.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "metronome.h"
#include "reasm.h"
#include "wire.h"

#define REPS 5

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Datagrams framed and checked per second, with or without a key. */
static double dgram_rate(size_t mtu, const struct wire_key *key)
{
	uint8_t *buf = calloc(1, mtu);
	struct wire_from from = { .cluster = 1, .sender = 2, .key = key };
	struct wire_hdr out;
	unsigned long n = 0;
	int bad = 0;
	double t0 = now_s(), t;
	do {
		for (int i = 0; i < 256; i++, n++) {
			buf[WIRE_HDR_SIZE] = (uint8_t)n;
			size_t len = wire_frame_finish(buf, &from, WIRE_T_ITEMS, (uint32_t)(mtu - WIRE_OVERHEAD));
			bad |= wire_dgram_check(buf, len, 1, key, &out);
		}
		t = now_s() - t0;
	} while (t < 0.1);
	free(buf);
	if (bad)
		fprintf(stderr, "wire: a framed datagram failed its check\n");
	return (double)n / t;
}

/* Items packed per second (*pack) and iterated per second (*iter). */
static void item_rates(size_t mtu, double *pack, double *iter)
{
	struct wire_value v[3] = { { .type = WIRE_V_INT, .u.i = 123456 },
				   { .type = WIRE_V_REAL, .u.r = 2.5 },
				   { .type = WIRE_V_TEXT, .u.b = { "0123456789abcdef", 16 } } };
	struct wire_stmt st = { .sql = "INSERT INTO t(a,b,c) VALUES(?1,?2,?3)", .sql_len = 37, .nparams = 3, .params = v };
	struct wire_item it = { .stream = 1, .seq = 1, .timestamp_us = 1, .seed = 1, .nstmt = 1, .stmts = &st };
	uint8_t *buf = malloc(mtu);
	/* pack: items per second, including framing */
	struct wire_packer pk;
	wire_packer_init(&pk, buf, mtu, &(struct wire_from){ 1, 2, NULL });
	unsigned long n = 0;
	double t0 = now_s(), t;
	do {
		for (int i = 0; i < 1024; i++, n++) {
			it.seq = n + 1;
			if (wire_packer_add(&pk, &it) == MTR_EFULL) {
				wire_packer_finish(&pk);
				wire_packer_add(&pk, &it);
			}
		}
		t = now_s() - t0;
	} while (t < 0.1);
	*pack = (double)n / t;
	/* iterate: one full datagram, decoded again and again */
	wire_packer_finish(&pk);
	wire_packer_init(&pk, buf, mtu, &(struct wire_from){ 1, 2, NULL });
	while (wire_packer_add(&pk, &it) == 0)
		;
	size_t len = wire_packer_finish(&pk);
	struct wire_hdr h;
	volatile uint64_t sink = 0;
	if (wire_dgram_check(buf, len, 1, NULL, &h) != 0)
		fprintf(stderr, "wire: the packed datagram failed its check\n");
	n = 0;
	t0 = now_s();
	do {
		for (int i = 0; i < 64; i++) {
			const uint8_t *p = buf + WIRE_HDR_SIZE, *end = p + h.length;
			struct wire_item d;
			while (wire_items_next(&p, end, &d) == 1) {
				struct wire_stmt_iter si;
				struct wire_stmt s;
				const uint8_t *pp;
				wire_stmt_begin(&d, &si);
				while (wire_stmt_next(&si, &s, &pp))
					for (unsigned k = 0; k < s.nparams; k++) {
						struct wire_value x;
						wire_param_next(&pp, &x);
						sink += x.type;
					}
				n++;
			}
		}
		t = now_s() - t0;
	} while (t < 0.1);
	(void)sink;
	*iter = (double)n / t;
	free(buf);
}

/* MB/s of reassembling a 16 MiB item from shuffled fragments. */
static double reasm_rate(size_t mtu)
{
	size_t len = 16u << 20;
	uint8_t *item = malloc(len), *buf = malloc(mtu), *out;
	size_t out_len;
	for (size_t i = 0; i < len; i++)
		item[i] = (uint8_t)(i * 31);
	uint32_t nf = wire_frag_count(len, mtu);
	uint32_t *order = malloc(nf * sizeof *order);
	uint64_t rng = 88172645463325252ull;
	for (uint32_t i = 0; i < nf; i++)
		order[i] = i;
	for (uint32_t i = nf - 1; i > 0; i--) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		uint32_t j = (uint32_t)(rng % (i + 1)), x = order[i];
		order[i] = order[j];
		order[j] = x;
	}
	struct reasm *r = reasm_new(64u << 20, 128u << 20, 4);
	double t0 = now_s();
	int done = 0;
	for (uint32_t i = 0; i < nf; i++) {
		struct wire_hdr h;
		struct wire_frag f;
		size_t n = wire_frag_build(buf, mtu, &(struct wire_from){ 1, 2, NULL }, 1, 1, item, len, order[i]);
		if (wire_dgram_check(buf, n, 1, NULL, &h) != 0 || wire_frag_decode(buf + WIRE_HDR_SIZE, h.length, 64u << 20, &f) != 0)
			break;
		if (reasm_add(r, &f, 0, &out, &out_len) == 1) {
			done = out_len == len && memcmp(out, item, len) == 0;
			free(out);
		}
	}
	double t = now_s() - t0;
	if (!done)
		fprintf(stderr, "wire: reassembly did not complete\n");
	reasm_free(r);
	free(order);
	free(buf);
	free(item);
	return (double)len / t / 1e6;
}

int bench_wire(int argc, char **argv)
{
	size_t mtu = WIRE_DEFAULT_MTU;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mtu") == 0 && i + 1 < argc) {
			mtu = strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: mtrbench wire [--mtu BYTES]\n");
			return 2;
		}
	}
	if (mtu < WIRE_MIN_MTU || mtu > WIRE_MAX_DGRAM) {
		fprintf(stderr, "wire: --mtu must be %u..%u\n", WIRE_MIN_MTU, WIRE_MAX_DGRAM);
		return 2;
	}
	static const struct wire_key key = { .set = 1, .k = "0123456789abcdef" };
	double xx[REPS], sip[REPS], pack[REPS], iter[REPS], ra[REPS];
	for (int i = 0; i < REPS; i++) {
		xx[i] = dgram_rate(mtu, NULL);
		sip[i] = dgram_rate(mtu, &key);
		item_rates(mtu, &pack[i], &iter[i]);
		ra[i] = reasm_rate(mtu);
	}
	double x = bench_median(xx, REPS), s = bench_median(sip, REPS);
	bench_figure("wire_dgram_xxh3", x, "datagrams/s");
	bench_figure("wire_dgram_xxh3_bytes", x * (double)mtu / 1e6, "MB/s");
	bench_figure("wire_dgram_siphash", s, "datagrams/s");
	bench_figure("wire_dgram_siphash_bytes", s * (double)mtu / 1e6, "MB/s");
	bench_figure("wire_items_pack", bench_median(pack, REPS), "items/s");
	bench_figure("wire_items_iterate", bench_median(iter, REPS), "items/s");
	bench_figure("wire_reasm_16mib", bench_median(ra, REPS), "MB/s");
	return 0;
}
