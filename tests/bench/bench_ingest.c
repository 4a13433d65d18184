/*
 * bench_ingest.c - `mtrbench ingest`: items and datagrams received, decoded
 * and stored per second by one receiver, DPDK (net_memif) against the socket
 * transport (UDP over loopback), 64-byte and 1000-byte items, in one run.
 *
 * One process: a sender thread sends pre-built ITEMS datagrams as fast as
 * its transport takes them; the main thread receives for --seconds, walks
 * every item (wire_items_next) and hands it to a store callback.  The ingest
 * log is not wired in yet: the store copies the item into an in-memory
 * arena (a 64 MiB ring) and counts it.  Figures ("name: value unit") on
 * stdout; ingest_ratio is DPDK/UDP items per second for 64-byte items.
 *
 * What limits the figures on the test machines: two shared cores for sender
 * and receiver (and for the other engineers); see doc/performance.md.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "log.h"
#include "metronome.h"
#include "transport.h"
#include "util.h"
#include "transport_dpdk.h"
#include "wire.h"

#define ING_CLUSTER 99u
#define ING_NDGRAM 64 /* pre-built datagrams the sender cycles through */
#define ING_ARENA (64u << 20)

struct ing_sender {
	struct transport *t;
	struct transport_msg m[ING_NDGRAM];
	volatile int stop;
	uint64_t sent;
};

struct ing_result {
	double items_s, dgrams_s, loss_pct;
};

/* The store callback: copy the item into the arena ring and count it. */
struct ing_store {
	uint8_t *arena;
	size_t off;
	uint64_t items;
};

static void ing_store_item(struct ing_store *s, const struct wire_item *it, const uint8_t *rec, size_t len)
{
	(void)it;
	if (s->off + len > ING_ARENA)
		s->off = 0;
	memcpy(s->arena + s->off, rec, len);
	s->off += len;
	s->items++;
}

static void *ing_send_main(void *arg)
{
	struct ing_sender *snd = arg;
	unsigned i = 0;
	while (!snd->stop) {
		int n = transport_send_group(snd->t, &snd->m[i], 32);
		if (n < 0)
			break;
		snd->sent += (uint64_t)n;
		i = (i + 32) % ING_NDGRAM;
	}
	return NULL;
}

/* Fill ING_NDGRAM datagrams with items of item_bytes encoded bytes each. */
static unsigned ing_build(uint8_t *bufs, size_t mtu, size_t item_bytes, struct transport_msg *m)
{
	char sql[2048];
	struct wire_stmt st = { .sql = sql, .sql_len = 0 };
	struct wire_item it = { .stream = 1, .nstmt = 1, .stmts = &st };
	size_t base = wire_item_size(&it);
	size_t pad = item_bytes > base ? item_bytes - base : 0;
	if (pad >= sizeof sql)
		pad = sizeof sql - 1;
	memset(sql, ' ', pad);
	memcpy(sql, "INSERT", pad < 6 ? pad : 6);
	st.sql_len = (uint32_t)pad;
	unsigned per = 0;
	uint64_t seq = 1;
	for (unsigned d = 0; d < ING_NDGRAM; d++) {
		struct wire_packer pk;
		wire_packer_init(&pk, bufs + d * mtu, mtu, &(struct wire_from){ ING_CLUSTER, 1, NULL });
		for (;;) {
			it.seq = seq;
			if (wire_packer_add(&pk, &it) != 0)
				break;
			seq++;
		}
		if (d == 0)
			per = pk.count;
		m[d].buf = bufs + d * mtu;
		m[d].len = (uint32_t)wire_packer_finish(&pk);
	}
	return per;
}

static int ing_run(struct transport *rx, struct transport *tx, size_t item_bytes, double secs, struct ing_store *st,
		   struct ing_result *res)
{
	size_t mtu = tx->cfg.mtu;
	uint8_t *bufs = malloc(ING_NDGRAM * mtu);
	if (!bufs)
		return MTR_ENOMEM;
	struct ing_sender snd = { .t = tx };
	unsigned per = ing_build(bufs, mtu, item_bytes, snd.m);
	pthread_t th;
	if (pthread_create(&th, NULL, ing_send_main, &snd) != 0) {
		free(bufs);
		return MTR_EIO;
	}
	struct transport_msg m[64];
	uint64_t t0 = now_mono_ns(), warm = t0 + 200000000ull, end = warm + (uint64_t)(secs * 1e9);
	uint64_t items0 = 0, dgrams = 0, dgrams0 = 0, sent0 = 0;
	int measuring = 0;
	for (;;) {
		uint64_t now = now_mono_ns();
		if (!measuring && now >= warm) {
			measuring = 1;
			items0 = st->items;
			dgrams0 = dgrams;
			sent0 = snd.sent;
		}
		if (now >= end)
			break;
		int n = transport_recv(rx, m, 64);
		if (n == 0) {
			transport_wait(rx, 10);
			continue;
		}
		for (int i = 0; i < n; i++) {
			const uint8_t *p = m[i].buf + WIRE_HDR_SIZE, *e = p + m[i].hdr.length;
			struct wire_item it;
			const uint8_t *rec = p;
			while (wire_items_next(&p, e, &it) == 1) {
				ing_store_item(st, &it, rec, (size_t)(p - rec));
				rec = p;
			}
			dgrams++;
		}
	}
	double el = (double)(now_mono_ns() - warm) / 1e9;
	uint64_t sent = snd.sent - sent0;
	snd.stop = 1;
	pthread_join(th, NULL);
	/* drain what is still queued so the next run starts empty */
	for (int k = 0; k < 50; k++) {
		if (transport_wait(rx, 10) <= 0)
			break;
		while (transport_recv(rx, m, 64) > 0)
			;
	}
	res->items_s = (double)(st->items - items0) / el;
	res->dgrams_s = (double)(dgrams - dgrams0) / el;
	res->loss_pct = sent ? 100.0 * (1.0 - (double)(dgrams - dgrams0) / (double)sent) : 0;
	if (res->loss_pct < 0)
		res->loss_pct = 0;
	fprintf(stderr, "ingest: %s %zu-byte items: %u per datagram, sent %llu datagrams, received %llu\n",
		rx->ops->name, item_bytes, per, (unsigned long long)sent, (unsigned long long)(dgrams - dgrams0));
	free(bufs);
	return 0;
}

static int ing_open_pair(int dpdk, int busy, struct transport **rx, struct transport **tx)
{
	static char sdev[128], cdev[128];
	struct transport_config rc, tc;
	transport_config_init(&rc);
	rc.cluster = ING_CLUSTER;
	rc.busy_poll = busy;
	if (dpdk) {
		transport_dpdk_enable();
		snprintf(sdev, sizeof sdev, "net_memif_ib,role=server,id=0,socket=/run/mtrbench-%d.sock", (int)getpid());
		snprintf(cdev, sizeof cdev, "net_memif_ic,role=client,id=0,socket=/run/mtrbench-%d.sock", (int)getpid());
		rc.kind = "dpdk";
		rc.dpdk_eal = "--no-huge --no-shconf --no-telemetry --no-pci -m 256 --log-level=*:error";
		rc.group.ip = 0xef630001; /* 239.99.0.1 */
		rc.group.port = 7500;
		tc = rc;
		rc.dpdk_port = sdev;
		rc.bind.ip = 0x0a630002; /* 10.99.0.2: only inside the memif pair */
		rc.bind.port = 7500;
		tc.dpdk_port = cdev;
		tc.bind.ip = 0x0a630001;
		tc.bind.port = 7500;
	} else {
		rc.kind = "udp";
		rc.bind.ip = 0x7f000001;
		rc.bind.port = 0; /* any free port */
	}
	int r = transport_open(&rc, rx);
	if (r < 0)
		return r;
	if (!dpdk) {
		tc = rc;
		tc.no_recv = 1;
		tc.ndests = 1;
		tc.dests[0] = (*rx)->cfg.bind; /* the port the receiver got */
		tc.bind.port = 0;
	}
	r = transport_open(&tc, tx);
	if (r < 0) {
		transport_close(*rx);
		return r;
	}
	return 0;
}

int bench_ingest(int argc, char **argv)
{
	double secs = 2;
	int busy = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (!strcmp(argv[i], "--busy-poll"))
			busy = 1;
		else {
			fprintf(stderr, "usage: mtrbench ingest [--seconds S] [--busy-poll]\n"
					"  DPDK (net_memif) vs UDP loopback sockets, 64- and 1000-byte items\n");
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_WARN);
	struct ing_store st = { .arena = malloc(ING_ARENA) };
	if (!st.arena)
		return 1;
	static const size_t sizes[2] = { 64, 1000 };
	struct ing_result res[2][2]; /* [dpdk][size] */
	memset(res, 0, sizeof res);
	int ok[2] = { 0, 0 };
	for (int dpdk = 1; dpdk >= 0; dpdk--) {
		struct transport *rx, *tx;
		int r = ing_open_pair(dpdk, busy, &rx, &tx);
		if (r < 0) {
			fprintf(stderr, "ingest: cannot open the %s pair: %s\n", dpdk ? "dpdk" : "udp", mtr_strerror(r));
			continue;
		}
		ok[dpdk] = 1;
		/* an unmeasured first run: the first second after a memif pair
		 * connects was several times slower in every trial */
		struct ing_result warm;
		ing_run(rx, tx, sizes[1], 0.5, &st, &warm);
		for (int s = 0; s < 2; s++)
			if (ing_run(rx, tx, sizes[s], secs, &st, &res[dpdk][s]) < 0)
				ok[dpdk] = 0;
		transport_close(tx);
		transport_close(rx);
	}
	free(st.arena);
	if (!ok[0] || !ok[1])
		return 1;
	bench_figure("ingest_dpdk_items_per_s", res[1][0].items_s, "items/s");
	bench_figure("ingest_udp_items_per_s", res[0][0].items_s, "items/s");
	bench_figure("ingest_ratio", res[0][0].items_s > 0 ? res[1][0].items_s / res[0][0].items_s : 0, "x");
	bench_figure("ingest_dpdk_dgrams_per_s", res[1][0].dgrams_s, "dgrams/s");
	bench_figure("ingest_udp_dgrams_per_s", res[0][0].dgrams_s, "dgrams/s");
	bench_figure("ingest_dpdk_loss", res[1][0].loss_pct, "%");
	bench_figure("ingest_udp_loss", res[0][0].loss_pct, "%");
	bench_figure("ingest_dpdk_1000_items_per_s", res[1][1].items_s, "items/s");
	bench_figure("ingest_udp_1000_items_per_s", res[0][1].items_s, "items/s");
	bench_figure("ingest_ratio_1000", res[0][1].items_s > 0 ? res[1][1].items_s / res[0][1].items_s : 0, "x");
	bench_figure("ingest_dpdk_1000_dgrams_per_s", res[1][1].dgrams_s, "dgrams/s");
	bench_figure("ingest_udp_1000_dgrams_per_s", res[0][1].dgrams_s, "dgrams/s");
	return 0;
}
