/*
 * bench_proxy.c - `mtrbench proxy`: requests/s through the proxy object.
 *
 * A proxy runs in a thread against one fake server (a UDP transport in
 * this process that answers every item at once with a RESULT, packing the
 * results of a received datagram into as few RESULT datagrams as fit), and
 * K client threads each keep D pipelined single-row INSERTs in flight over
 * TCP until N requests are answered in all.  What is measured is the
 * proxy's own cost (parse, item build, outbuf, packing, answers) plus the
 * loopback network; no Paxos, no SQLite.
 *
 *   mtrbench proxy [--clients K (4)] [--requests N (200000)] [--pipeline D (64)]
 *
 * Figures: proxy_requests_per_s, proxy_items_per_datagram (batching).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "cproto.h"
#include "log.h"
#include "metronome.h"
#include "proxy.h"
#include "result.h"
#include "transport.h"
#include "util.h"
#include "wire_server.h"

static struct transport *srv;
static atomic_int srv_stop;
static struct transport_addr plisten;
static unsigned pipeline_depth = 64;
static atomic_long failures;

static void *srv_main(void *arg)
{
	(void)arg;
	struct apply_stmt_result sr = {.code = 0, .changes = 1, .last_rowid = 1};
	struct apply_result r = {.code = 0, .nstmt = 1, .stmts = &sr};
	uint8_t res[128];
	long rlen = result_encode(&r, res, sizeof res);
	struct transport_msg msgs[64];
	struct wire_result wr[512];
	uint8_t dg[WIRE_DEFAULT_MTU];
	uint64_t inst = 0;
	while (!atomic_load(&srv_stop)) {
		transport_wait(srv, 10);
		int n = transport_recv(srv, msgs, 64);
		for (int k = 0; k < n; k++) {
			if (msgs[k].hdr.type != WIRE_T_ITEMS)
				continue;
			const uint8_t *p = msgs[k].buf + WIRE_HDR_SIZE, *end = p + msgs[k].hdr.length;
			struct wire_item it;
			size_t nr = 0;
			uint64_t stream = 0;
			while (nr < 512 && wire_items_next(&p, end, &it) == 1) {
				stream = it.stream;
				wr[nr++] = (struct wire_result){.seq = it.seq, .request = it.request, .instance = ++inst,
							       .data = res, .len = (uint32_t)rlen};
			}
			size_t idx = 0;
			uint32_t off = 0, len;
			const struct wire_from from = { 1, 0, NULL };
			while ((len = (uint32_t)wire_result_build(dg, sizeof dg, &from, stream, wr, nr, &idx,
								  &off)) > 0) {
				struct transport_msg m = {.buf = dg, .len = len, .peer = msgs[k].peer};
				transport_send_to(srv, &m, 1);
			}
		}
	}
	return NULL;
}

struct cl {
	pthread_t th;
	unsigned n; /* requests to make */
};

static int send_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void *cl_main(void *arg)
{
	struct cl *c = arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(plisten.port),
				 .sin_addr.s_addr = htonl(plisten.ip)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		atomic_fetch_add(&failures, 1);
		return NULL;
	}
	struct cproto_buf b = {0};
	struct cproto_hello h = {.version = CPROTO_VERSION};
	cproto_put_hello(&b, &h);
	size_t cap = 1 << 20, have = 0;
	uint8_t *in = malloc(cap);
	unsigned sent = 0, got = 0, welcome = 0;
	const char *sql = "INSERT INTO t VALUES(?1, ?2)";
	while (got < c->n) {
		while (sent < c->n && sent - got < pipeline_depth) {
			struct cproto_bind bd[2] = {{.index = 1, .v = {.type = WIRE_V_INT, .u.i = sent}},
						   {.index = 2, .v = {.type = WIRE_V_TEXT, .u.b = {"payload", 7}}}};
			struct cproto_query q = {.request = sent + 1, .sql = sql, .sql_len = (uint32_t)strlen(sql),
						 .nbinds = 2, .binds = bd};
			cproto_put_query(&b, &q);
			sent++;
		}
		if (b.len) {
			if (send_all(fd, b.p, b.len) != 0)
				break;
			b.len = 0;
		}
		ssize_t r = recv(fd, in + have, cap - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
		size_t off = 0;
		struct cproto_frame f;
		long n;
		while ((n = cproto_frame_next(in + off, have - off, CPROTO_MAX_FRAME, &f)) > 0) {
			if (f.type == CPROTO_T_WELCOME)
				welcome = 1;
			else if (f.type == CPROTO_T_ANSWER)
				got++;
			off += (size_t)n;
		}
		memmove(in, in + off, have - off);
		have -= off;
	}
	if (got < c->n || !welcome)
		atomic_fetch_add(&failures, 1);
	free(in);
	cproto_buf_free(&b);
	close(fd);
	return NULL;
}

static struct proxy *P;
static void *proxy_main(void *arg)
{
	(void)arg;
	proxy_run(P);
	return NULL;
}

static double now_s(void) { return (double)now_mono_ns() / 1e9; }

int bench_proxy(int argc, char **argv)
{
	unsigned clients = 4, requests = 200000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
			clients = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
			requests = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--pipeline") == 0 && i + 1 < argc)
			pipeline_depth = (unsigned)atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: mtrbench proxy [--clients K] [--requests N] [--pipeline D]\n");
			return 2;
		}
	}
	if (clients == 0 || requests < clients || pipeline_depth == 0) {
		fprintf(stderr, "proxy: need clients >= 1, requests >= clients, pipeline >= 1\n");
		return 2;
	}
	if (getenv("MTR_LOG") == NULL)
		log_set_level(LOG_WARN);
	struct transport_config tc;
	transport_config_init(&tc);
	tc.kind = "udp";
	transport_addr_parse("127.0.0.1:0", 0, &tc.bind);
	tc.cluster = 1;
	if (transport_open(&tc, &srv) != 0)
		return 1;
	struct proxy_config cfg;
	proxy_config_defaults(&cfg);
	cfg.cc.nservers = 1;
	cfg.cc.servers[0] = srv->cfg.bind;
	transport_addr_parse("127.0.0.1:0", 0, &cfg.listen);
	transport_addr_parse("127.0.0.1:0", 0, &cfg.bind);
	if (proxy_open(&cfg, &P) != 0)
		return 1;
	proxy_addrs(P, &plisten, NULL);
	pthread_t st, pt;
	pthread_create(&st, NULL, srv_main, NULL);
	pthread_create(&pt, NULL, proxy_main, NULL);
	struct cl *cl = calloc(clients, sizeof *cl);
	double t0 = now_s();
	for (unsigned i = 0; i < clients; i++) {
		cl[i].n = requests / clients;
		pthread_create(&cl[i].th, NULL, cl_main, &cl[i]);
	}
	for (unsigned i = 0; i < clients; i++)
		pthread_join(cl[i].th, NULL);
	double t = now_s() - t0;
	struct proxy_stats ps;
	proxy_stats(P, &ps);
	proxy_stop(P);
	pthread_join(pt, NULL);
	atomic_store(&srv_stop, 1);
	pthread_join(st, NULL);
	proxy_close(P);
	transport_close(srv);
	free(cl);
	if (atomic_load(&failures)) {
		fprintf(stderr, "proxy: %ld clients failed\n", (long)atomic_load(&failures));
		return 1;
	}
	unsigned done = requests / clients * clients;
	fprintf(stderr, "proxy: %u requests, %u clients, pipeline %u, %.3f s\n", done, clients, pipeline_depth, t);
	bench_figure("proxy_requests_per_s", (double)done / t, "requests/s");
	bench_figure("proxy_items_per_datagram", ps.dgrams_out ? (double)ps.items / (double)ps.dgrams_out : 0,
		     "items");
	return 0;
}
