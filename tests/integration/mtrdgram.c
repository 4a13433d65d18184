/*
 * mtrdgram.c - send or receive numbered items over either transport, for the
 * integration suites (tests/integration/dpdk_netns.sh).
 *
 *   mtrdgram send --kind udp|dpdk --bind IP:PORT --group IP:PORT
 *            [--dest IP:PORT]... [--port DEVARGS] [--eal ARGS]
 *            [--count N] [--size BYTES] [--stream S] [--repeat R]
 *   mtrdgram recv (same options) [--timeout SECONDS]
 *
 * The sender packs items (stream S, seq 1..N, one INSERT statement with a
 * blob parameter of BYTES bytes whose content is derived from the seq) into
 * ITEMS datagrams and sends them to the group R times, paced so that a
 * veth/af_packet path is not flooded.  The receiver checks every item
 * (statement text and blob bytes), counts distinct seqs, prints
 * "ready" on stderr once it listens and "items N dgrams D bad B" on stdout
 * at the end, and exits 0 only when all N items arrived intact before the
 * timeout.  SIGTERM/SIGINT stop either side cleanly (the transport is
 * closed, which releases every DPDK resource).
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metronome.h"
#include "transport.h"
#include "util.h"
#include "transport_dpdk.h"
#include "wire.h"

#define SQL "INSERT INTO t(v) VALUES(?1)"
#define CLUSTER 4242u

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static uint8_t pattern(uint64_t seq, uint32_t i) { return (uint8_t)(seq * 31 + i * 7 + 1); }

static void usage(void)
{
	fprintf(stderr, "usage: mtrdgram send|recv --kind udp|dpdk --bind IP:PORT --group IP:PORT [--dest IP:PORT]...\n"
			"       [--port DEVARGS] [--eal ARGS] [--count N] [--size BYTES] [--stream S]\n"
			"       [--repeat R] [--timeout SECONDS]\n");
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static int do_send(struct transport *t, unsigned long count, uint32_t size, uint64_t stream, unsigned repeat)
{
	size_t mtu = t->cfg.mtu;
	uint8_t *blob = malloc(size ? size : 1);
	uint8_t *bufs = malloc(32 * mtu);
	struct transport_msg m[32];
	if (!blob || !bufs) {
		free(blob);
		free(bufs);
		return MTR_ENOMEM;
	}
	const struct wire_from from = { CLUSTER, (uint32_t)stream, NULL };
	int rc = 0;
	for (unsigned r = 0; r < repeat && !stop && rc >= 0; r++) {
		unsigned nm = 0;
		struct wire_packer pk;
		wire_packer_init(&pk, bufs, mtu, &from);
		for (unsigned long seq = 1; seq <= count && !stop; seq++) {
			for (uint32_t i = 0; i < size; i++)
				blob[i] = pattern(seq, i);
			struct wire_value v = { .type = WIRE_V_BLOB, .u.b = { blob, size } };
			struct wire_stmt st = { .sql = SQL, .sql_len = sizeof SQL - 1, .nparams = 1, .params = &v };
			struct wire_item it = { .stream = stream, .seq = seq, .request = seq, .nstmt = 1, .stmts = &st };
			int a = wire_packer_add(&pk, &it);
			if (a == MTR_EFULL) {
				m[nm].buf = pk.buf;
				m[nm].len = (uint32_t)wire_packer_finish(&pk);
				if (++nm == 32) {
					if ((rc = transport_send_group(t, m, nm)) < 0)
						break;
					nm = 0;
					sleep_us(2000); /* pacing: ~16k datagrams/s at most */
				}
				wire_packer_init(&pk, bufs + nm * mtu, mtu, &from);
				a = wire_packer_add(&pk, &it);
			}
			if (a < 0) {
				fprintf(stderr, "mtrdgram: item %lu: %s\n", seq, mtr_strerror(a));
				rc = a;
				break;
			}
		}
		if (rc >= 0 && pk.count) {
			m[nm].buf = pk.buf;
			m[nm].len = (uint32_t)wire_packer_finish(&pk);
			nm++;
		}
		if (rc >= 0 && nm)
			rc = transport_send_group(t, m, nm);
		sleep_us(20000);
	}
	struct transport_counters c;
	transport_counters(t, &c);
	printf("sent dgrams %llu\n", (unsigned long long)c.dgrams_out);
	free(blob);
	free(bufs);
	return rc < 0 ? rc : 0;
}

/* 1 if the item is the one the sender built for its seq. */
static int item_ok(const struct wire_item *it, uint32_t size)
{
	struct wire_stmt_iter si;
	struct wire_stmt st;
	const uint8_t *params;
	if (it->nstmt != 1)
		return 0;
	wire_stmt_begin(it, &si);
	if (!wire_stmt_next(&si, &st, &params) || st.sql_len != sizeof SQL - 1 || memcmp(st.sql, SQL, st.sql_len) ||
	    st.nparams != 1)
		return 0;
	struct wire_value v;
	wire_param_next(&params, &v);
	if (v.type != WIRE_V_BLOB || v.u.b.n != size)
		return 0;
	const uint8_t *b = v.u.b.p;
	for (uint32_t i = 0; i < size; i++)
		if (b[i] != pattern(it->seq, i))
			return 0;
	return 1;
}

static int do_recv(struct transport *t, unsigned long count, uint32_t size, uint64_t stream, int timeout_s)
{
	uint8_t *seen = calloc(count + 1, 1);
	if (!seen)
		return MTR_ENOMEM;
	unsigned long distinct = 0, dgrams = 0, bad = 0;
	uint64_t end = now_mono_ns() + (uint64_t)timeout_s * 1000000000ull;
	fprintf(stderr, "ready\n");
	struct transport_msg m[64];
	while (!stop && distinct < count && now_mono_ns() < end) {
		int w = transport_wait(t, 100);
		if (w < 0)
			break;
		int n = transport_recv(t, m, 64);
		for (int i = 0; i < n; i++) {
			dgrams++;
			if (m[i].hdr.type != WIRE_T_ITEMS) {
				bad++;
				continue;
			}
			const uint8_t *p = m[i].buf + WIRE_HDR_SIZE, *e = p + m[i].hdr.length;
			struct wire_item it;
			int r;
			while ((r = wire_items_next(&p, e, &it)) == 1) {
				if (it.stream != stream || it.seq == 0 || it.seq > count || !item_ok(&it, size)) {
					bad++;
					continue;
				}
				if (!seen[it.seq]) {
					seen[it.seq] = 1;
					distinct++;
				}
			}
			if (r < 0)
				bad++;
		}
	}
	struct transport_counters c;
	transport_counters(t, &c);
	unsigned long drops = 0;
	for (unsigned i = 0; i < TRANSPORT_DROP__COUNT; i++)
		if (i != TRANSPORT_DROP_NOTIP)
			drops += c.drops[i];
	printf("items %lu dgrams %lu bad %lu drops %lu\n", distinct, dgrams, bad, drops);
	free(seen);
	return distinct == count && bad == 0 ? 0 : MTR_EIO;
}

int main(int argc, char **argv)
{
	transport_dpdk_enable();
	if (argc < 2 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv"))) {
		usage();
		return 2;
	}
	int sending = !strcmp(argv[1], "send");
	struct transport_config cfg;
	transport_config_init(&cfg);
	cfg.cluster = CLUSTER;
	unsigned long count = 1000;
	uint32_t size = 100;
	uint64_t stream = 1;
	unsigned repeat = 1;
	int timeout_s = 20;
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			usage();
			return 2;
		}
		i++;
		int bad = 0;
		if (!strcmp(o, "--kind"))
			cfg.kind = v;
		else if (!strcmp(o, "--bind"))
			bad = transport_addr_parse(v, 0, &cfg.bind);
		else if (!strcmp(o, "--group"))
			bad = transport_addr_parse(v, 0, &cfg.group);
		else if (!strcmp(o, "--dest"))
			bad = cfg.ndests >= TRANSPORT_MAX_DESTS || transport_addr_parse(v, 0, &cfg.dests[cfg.ndests++]);
		else if (!strcmp(o, "--port"))
			cfg.dpdk_port = v;
		else if (!strcmp(o, "--eal"))
			cfg.dpdk_eal = v;
		else if (!strcmp(o, "--count"))
			count = strtoul(v, NULL, 10);
		else if (!strcmp(o, "--size"))
			size = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(o, "--stream"))
			stream = strtoull(v, NULL, 10);
		else if (!strcmp(o, "--repeat"))
			repeat = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(o, "--timeout"))
			timeout_s = atoi(v);
		else
			bad = 1;
		if (bad) {
			fprintf(stderr, "mtrdgram: bad option %s %s\n", o, v);
			usage();
			return 2;
		}
	}
	if (count == 0 || size > 1200) {
		fprintf(stderr, "mtrdgram: --count must be > 0 and --size at most 1200\n");
		return 2;
	}
	cfg.no_recv = sending && strcmp(cfg.kind, "dpdk") != 0;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct transport *t;
	int rc = transport_open(&cfg, &t);
	if (rc < 0) {
		fprintf(stderr, "mtrdgram: open %s transport: %s\n", cfg.kind, mtr_strerror(rc));
		return 1;
	}
	rc = sending ? do_send(t, count, size, stream, repeat) : do_recv(t, count, size, stream, timeout_s);
	transport_close(t);
	if (rc < 0)
		fprintf(stderr, "mtrdgram: %s\n", mtr_strerror(rc));
	return rc < 0 ? 1 : 0;
}
