/*
 * test_proxy.c - the proxy object end to end on loopback: a proxy runs in a
 * thread against three fake servers (UDP transports driven by a thread of
 * the test) and TCP clients speaking the client protocol.
 *
 * The fake servers: every item reaches all three (fan-out), server 0
 * "applies" items strictly in seq order and sends one RESULT per item whose
 * last_rowid is the item's request id (so a client can tell which request an
 * answer belongs to).  On purpose it can drop the first copy of some items
 * (then it asks the proxy with RESEND, as a real server does on a gap or a
 * heartbeat ahead of it) and the first RESULT of some items (the proxy must
 * ask again with RESULT_REQUEST, which any fake server answers).  READs are
 * answered at once by whichever server gets them, with last_rowid =
 * request + READ_MARK, so that reads overtake writes inside the proxy and
 * the proxy has to restore the request order.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cproto.h"
#include "log.h"
#include "metrics.h"
#include "metronome.h"
#include "proxy.h"
#include "proxy_auth.h"
#include "reasm.h"
#include "result.h"
#include "transport.h"
#include "util.h"
#include "wire_server.h"

#define NSRV 3
#define MAXSEQ 200000
#define READ_MARK 1000000000ll

/* ---- Fixture: fake servers ---- */

struct fake {
	struct transport *t[NSRV];
	pthread_t th;
	atomic_int stop;
	/* behaviour */
	unsigned drop_item_mod;   /* drop the first copy of seq % mod == 0 (0: never) */
	unsigned drop_result_mod; /* drop the first RESULT of seq % mod == 0 (0: never) */
	unsigned read_pad;        /* bytes of padding text in read results */
	int ignore_reads;         /* never answer a READ */
	unsigned lost_mod;        /* results of seq % mod == 0 are never sent (0: none) */
	int lost_unknown;         /* ... and a RESULT_REQUEST of one gets RESULT_UNKNOWN (else silence) */
	struct reasm *ra;         /* server 0's fragments */
	/* state of server 0 (the only thread touching it is the fake's) */
	uint64_t stream;
	struct transport_addr proxy;
	int has_proxy;
	uint8_t *held;     /* per seq: 1 held */
	uint8_t *dropped;  /* per seq: first copy dropped already */
	uint8_t *rdropped; /* per seq: first result dropped already */
	uint64_t *request; /* per seq */
	uint64_t applied, max_seen;
	uint64_t last_resend_ms;
	/* counters (read by the test after stop) */
	atomic_uint items_dropped, results_dropped, resends, result_requests, reads, applied_items, dups;
	atomic_uint reads_by[NSRV]; /* READs received per server */
	atomic_uint reads_batched;  /* READs that came in READS datagrams */
	atomic_uint cancels_by[NSRV]; /* CANCEL_READs received per server */
	atomic_ullong last_cancel_rid;
	atomic_uint members_by[NSRV]; /* MEMBERSHIP requests received per server */
};

static struct fake F;
static struct proxy *P;
static pthread_t proxy_th;
static struct transport_addr P_listen;

static uint64_t ms_now(void) { return now_mono_ns() / 1000000u; }

static void fake_send(struct fake *f, int i, uint8_t *buf, size_t len, const struct transport_addr *to)
{
	struct transport_msg m = {.buf = buf, .len = (uint32_t)len, .peer = *to};
	transport_send_to(f->t[i], &m, 1);
}

/* Send the RESULT of seq (from server i) unless it is dropped on purpose. */
static void fake_result(struct fake *f, int i, uint64_t seq, int may_drop)
{
	if (f->lost_mod && seq % f->lost_mod == 0)
		return;
	if (may_drop && f->drop_result_mod && seq % f->drop_result_mod == 0 && !f->rdropped[seq]) {
		f->rdropped[seq] = 1;
		f->results_dropped++;
		return;
	}
	struct apply_stmt_result sr = {.code = 0, .changes = 1, .last_rowid = (int64_t)f->request[seq]};
	struct apply_result r = {.code = 0, .nstmt = 1, .stmts = &sr};
	uint8_t res[256];
	long n = result_encode(&r, res, sizeof res);
	assert_true(n > 0);
	struct wire_result wr = {.seq = seq, .request = f->request[seq], .instance = seq, .data = res,
				 .len = (uint32_t)n};
	uint8_t dg[WIRE_DEFAULT_MTU];
	size_t idx = 0;
	uint32_t off = 0;
	size_t len;
	const struct wire_from from = { 1, (uint32_t)i, NULL };
	while ((len = wire_result_build(dg, sizeof dg, &from, f->stream, &wr, 1, &idx, &off)) > 0)
		fake_send(f, i, dg, len, &f->proxy);
}

static void fake_apply(struct fake *f)
{
	while (f->applied + 1 < MAXSEQ && f->held[f->applied + 1]) {
		f->applied++;
		f->applied_items++;
		fake_result(f, 0, f->applied, 1);
	}
}

/* Ask for the gap (or the tail a heartbeat revealed), at most every 20 ms. */
static void fake_gap(struct fake *f, uint64_t high)
{
	uint64_t now = ms_now();
	if (high <= f->applied || now - f->last_resend_ms < 20 || !f->has_proxy)
		return;
	f->last_resend_ms = now;
	uint8_t dg[64];
	struct wire_resend r = {.stream = f->stream, .first = f->applied + 1, .last = high};
	size_t n = wire_resend_build(dg, &(struct wire_from){ 1, 0, NULL }, &r);
	fake_send(f, 0, dg, n, &f->proxy);
	f->resends++;
}

/* One item received by server 0: held, or dropped on purpose. */
static void fake_take(struct fake *f, const struct wire_item *itp)
{
	const struct wire_item it = *itp;
	assert_true(it.seq < MAXSEQ);
	if (f->stream == 0)
		f->stream = it.stream;
	assert_int_equal(it.stream, f->stream);
	if (f->drop_item_mod && it.seq % f->drop_item_mod == 0 && !f->dropped[it.seq]) {
		f->dropped[it.seq] = 1;
		f->items_dropped++;
		return;
	}
	if (f->held[it.seq]) {
		f->dups++;
		return;
	}
	f->held[it.seq] = 1;
	f->request[it.seq] = it.request;
	if (it.seq > f->max_seen)
		f->max_seen = it.seq;
}

static void fake_items(struct fake *f, const struct transport_msg *m)
{
	const uint8_t *p = m->buf + WIRE_HDR_SIZE, *end = p + m->hdr.length;
	struct wire_item it;
	int rc;
	while ((rc = wire_items_next(&p, end, &it)) == 1)
		fake_take(f, &it);
	assert_int_equal(rc, 0);
	fake_apply(f);
	fake_gap(f, f->max_seen);
}

static void fake_fragment(struct fake *f, const struct transport_msg *m)
{
	struct wire_frag fr;
	assert_int_equal(wire_frag_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, 1 << 24, &fr), 0);
	if (fr.seq < MAXSEQ && f->held[fr.seq])
		return;
	uint8_t *item;
	size_t len;
	if (reasm_add(f->ra, &fr, now_mono_ns(), &item, &len) == 1) {
		struct wire_item it;
		assert_true(wire_item_decode(item, len, &it) > 0);
		fake_take(f, &it);
		free(item);
		fake_apply(f);
		fake_gap(f, f->max_seen);
	}
}

static void fake_read_one(struct fake *f, int i, const struct transport_msg *m, const struct wire_read *rdp)
{
	const struct wire_read rd = *rdp;
	struct wire_item it;
	assert_true(wire_item_decode(rd.item, rd.item_len, &it) > 0);
	f->reads++;
	f->reads_by[i]++;
	/* a read result with one row of one TEXT column (read_pad bytes) */
	static uint8_t rows[70000];
	uint32_t pad = f->read_pad;
	st16(rows, 1);
	rows[2] = WIRE_V_TEXT;
	st32(rows + 3, pad);
	memset(rows + 7, 'x', pad);
	static const char *const names[] = {"v"};
	struct apply_stmt_result sr = {.code = 0, .last_rowid = (int64_t)it.request + READ_MARK, .ncols = 1,
				       .names = names, .nrows = 1, .rows = rows, .rows_len = 7 + pad};
	struct apply_result r = {.code = 0, .nstmt = 1, .stmts = &sr};
	static uint8_t res[80000];
	long n = result_encode(&r, res, sizeof res);
	assert_true(n > 0);
	struct wire_result wr = {.seq = 0, .request = rd.rid, .instance = f->applied, .data = res,
				 .len = (uint32_t)n};
	uint8_t dg[WIRE_DEFAULT_MTU];
	size_t idx = 0;
	uint32_t off = 0;
	size_t len;
	const struct wire_from from = { 1, (uint32_t)i, NULL };
	while ((len = wire_result_build(dg, sizeof dg, &from, rd.stream, &wr, 1, &idx, &off)) > 0)
		fake_send(f, i, dg, len, &m->peer);
}

/* A READ, or each record of a READS (doc/protocol.md) */
static void fake_read(struct fake *f, int i, const struct transport_msg *m)
{
	struct wire_read rd;
	if (m->hdr.type == WIRE_T_READ) {
		assert_int_equal(wire_read_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &rd), 0);
		fake_read_one(f, i, m, &rd);
		return;
	}
	const uint8_t *start = m->buf + WIRE_HDR_SIZE, *end = start + m->hdr.length, *p = start;
	int rc, n = 0;
	while ((rc = wire_reads_next(&p, start, end, &rd)) == 1) {
		fake_read_one(f, i, m, &rd);
		n++;
	}
	assert_int_equal(rc, 0);
	assert_true(n >= 2); /* a batch of one is a READ */
	f->reads_batched += (unsigned)n;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd pf[NSRV];
	for (int i = 0; i < NSRV; i++) {
		pf[i].fd = transport_fd(f->t[i]);
		pf[i].events = POLLIN;
	}
	struct transport_msg msgs[64];
	while (!atomic_load(&f->stop)) {
		poll(pf, NSRV, 5);
		for (int i = 0; i < NSRV; i++) {
			int n = transport_recv(f->t[i], msgs, 64);
			for (int k = 0; k < n; k++) {
				const struct transport_msg *m = &msgs[k];
				if (i == 0 && !f->has_proxy && m->hdr.sender >= 16) {
					f->proxy = m->peer;
					f->has_proxy = 1;
				}
				switch (m->hdr.type) {
				case WIRE_T_ITEMS:
					if (i == 0)
						fake_items(f, m);
					break;
				case WIRE_T_HEARTBEAT:
					if (i == 0) {
						struct wire_heartbeat hb;
						assert_int_equal(wire_heartbeat_decode(m->buf + WIRE_HDR_SIZE,
										      m->hdr.length, &hb), 0);
						if (f->stream == 0)
							f->stream = hb.stream;
						fake_gap(f, hb.high);
					}
					break;
				case WIRE_T_RESULT_REQUEST: {
					struct wire_result_request rq;
					assert_int_equal(wire_result_request_decode(m->buf + WIRE_HDR_SIZE,
										   m->hdr.length, &rq), 0);
					f->result_requests++;
					struct wire_runk_rec unk[WIRE_RREQ_MAX_RECS];
					uint32_t nunk = 0;
					for (uint32_t r = 0; r < rq.nrec; r++) {
						struct wire_rreq_rec rr;
						wire_rreq_rec_get(&rq, r, &rr);
						assert_true(rr.seq < MAXSEQ);
						if (rr.seq > f->applied)
							continue;
						/* the ids the proxy names are the item's */
						assert_true(rr.client == 42 && rr.request == f->request[rr.seq]);
						if (f->lost_mod && rr.seq % f->lost_mod == 0) {
							if (f->lost_unknown)
								unk[nunk++] = (struct wire_runk_rec){rr.seq, rr.request};
							continue;
						}
						fake_result(f, i, rr.seq, 0);
					}
					if (nunk) {
						struct wire_result_unknown u = {.stream = f->stream, .instance = f->applied,
										.nrec = nunk, .recs = unk};
						uint8_t dg[WIRE_DEFAULT_MTU];
						uint32_t packed;
						const struct wire_from from = { 1, (uint32_t)i, NULL };
						while (u.nrec) {
							size_t un = wire_result_unknown_build(dg, sizeof dg, &from, &u, &packed);
							assert_true(un > 0);
							fake_send(f, i, dg, un, &f->proxy);
							u.recs += packed;
							u.nrec -= packed;
						}
					}
					break;
				}
				case WIRE_T_READ:
				case WIRE_T_READS:
					if (!f->ignore_reads)
						fake_read(f, i, m);
					else
						f->reads_by[i]++;
					break;
				case WIRE_T_CANCEL_READ: {
					struct wire_cancel_read cr;
					assert_int_equal(wire_cancel_read_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length,
										 &cr), 0);
					f->cancels_by[i]++;
					f->last_cancel_rid = cr.rid;
					break;
				}
				case WIRE_T_FRAGMENT:
					if (i == 0)
						fake_fragment(f, m);
					break;
				case WIRE_T_MEMBERSHIP: {
					/* server 1 leads: it adds the server as id 7 at
					 * instance 99; the others are not the leader */
					struct wire_member rq;
					assert_int_equal(wire_member_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &rq), 0);
					assert_true(rq.kind == WIRE_MEMBER_REQUEST && rq.op == WIRE_MEMBER_ADD);
					f->members_by[i]++;
					struct wire_member a = {.kind = WIRE_MEMBER_ANSWER, .token = rq.token,
								.status = i == 1 ? 0 : MTR_EAGAIN, .id = i == 1 ? 7 : 0,
								.instance = i == 1 ? 99 : 0, .msg = "x", .msg_len = 1};
					uint8_t dg[WIRE_MEMBER_MAX + WIRE_OVERHEAD];
					long an = wire_member_build(dg, &(struct wire_from){1, (uint32_t)i, NULL}, &a);
					assert_true(an > 0);
					fake_send(f, i, dg, (size_t)an, &m->peer);
					break;
				}
				default:
					break;
				}
			}
		}
	}
	return NULL;
}

static uint32_t knob_max_clients; /* 0: default */
static uint32_t knob_write_timeout_ms; /* 0: default */

static void *proxy_main(void *arg)
{
	(void)arg;
	assert_int_equal(proxy_run(P), 0);
	return NULL;
}

/* Start fake servers and a proxy: buffer_items (0: default), client_buffer
 * (0: default). */
static void start(unsigned drop_items, unsigned drop_results, uint32_t buffer_items, uint64_t client_buffer)
{
	memset(&F, 0, sizeof F);
	F.drop_item_mod = drop_items;
	F.drop_result_mod = drop_results;
	F.read_pad = 16;
	F.held = calloc(MAXSEQ, 1);
	F.ra = reasm_new(1 << 24, 1 << 26, 64);
	F.dropped = calloc(MAXSEQ, 1);
	F.rdropped = calloc(MAXSEQ, 1);
	F.request = calloc(MAXSEQ, sizeof *F.request);
	assert_non_null(F.held);
	struct proxy_config cfg;
	proxy_config_defaults(&cfg);
	for (int i = 0; i < NSRV; i++) {
		struct transport_config tc;
		transport_config_init(&tc);
		tc.kind = "udp";
		assert_int_equal(transport_addr_parse("127.0.0.1:0", 0, &tc.bind), 0);
		tc.cluster = 1;
		tc.mtu = WIRE_MAX_DGRAM; /* as a server: any datagram the proxy sends */
		assert_int_equal(transport_open(&tc, &F.t[i]), 0);
		cfg.cc.servers[i] = F.t[i]->cfg.bind;
	}
	cfg.cc.nservers = NSRV;
	cfg.cc.mtu = WIRE_DEFAULT_MTU; /* as on Ethernet (auto is loopback's 65507): items fragment */
	assert_int_equal(transport_addr_parse("127.0.0.1:0", 0, &cfg.listen), 0);
	assert_int_equal(transport_addr_parse("127.0.0.1:0", 0, &cfg.bind), 0);
	cfg.result_timeout_ms = 50;
	cfg.read_timeout_ms = 2000;
	if (buffer_items)
		cfg.buffer_items = buffer_items;
	if (client_buffer)
		cfg.client_buffer = client_buffer;
	cfg.buffer_bytes = 1 << 20;
	if (knob_max_clients)
		cfg.max_clients = knob_max_clients;
	if (knob_write_timeout_ms)
		cfg.write_timeout_ms = knob_write_timeout_ms;
	assert_int_equal(proxy_open(&cfg, &P), 0);
	proxy_addrs(P, &P_listen, NULL);
	assert_int_not_equal(P_listen.port, 0);
	assert_int_equal(pthread_create(&F.th, NULL, fake_main, &F), 0);
	assert_int_equal(pthread_create(&proxy_th, NULL, proxy_main, NULL), 0);
}

static void stop(void)
{
	proxy_stop(P);
	pthread_join(proxy_th, NULL);
	atomic_store(&F.stop, 1);
	pthread_join(F.th, NULL);
	proxy_close(P);
	P = NULL;
	for (int i = 0; i < NSRV; i++)
		transport_close(F.t[i]);
	free(F.held);
	reasm_free(F.ra);
	free(F.dropped);
	free(F.rdropped);
	free(F.request);
}

/* ---- Helpers: a client ---- */

struct cli {
	int fd;
	uint8_t *in;
	size_t len, cap;
};

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		assert_true(w > 0);
		p += w;
		len -= (size_t)w;
	}
}

/* Read the next frame (5 s at most); returns its type, payload in *f (valid
 * until the next call). */
static int cli_frame(struct cli *c, struct cproto_frame *f)
{
	for (;;) {
		long n = cproto_frame_next(c->in, c->len, CPROTO_MAX_FRAME, f);
		assert_true(n >= 0);
		if (n > 0) {
			/* keep the payload valid: copy it out of the way */
			static uint8_t *keep;
			static size_t keepcap;
			if (keepcap < f->len + 1) {
				free(keep);
				keepcap = f->len + 1;
				keep = malloc(keepcap);
			}
			memcpy(keep, f->payload, f->len);
			f->payload = keep;
			memmove(c->in, c->in + n, c->len - (size_t)n);
			c->len -= (size_t)n;
			return f->type;
		}
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&pf, 1, 5000);
		assert_int_equal(pr, 1);
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 1 << 17;
			c->in = realloc(c->in, c->cap);
			assert_non_null(c->in);
		}
		ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
		assert_true(r > 0);
		c->len += (size_t)r;
	}
}

static int cli_rcvbuf; /* SO_RCVBUF of the next cli_open (0: default) */

static void cli_open(struct cli *c)
{
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	if (cli_rcvbuf)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &cli_rcvbuf, sizeof cli_rcvbuf);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(P_listen.port),
				 .sin_addr.s_addr = htonl(P_listen.ip)};
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
	struct cproto_buf b = {0};
	struct cproto_hello h = {.version = CPROTO_VERSION, .client_id = 42, .consistency = CPROTO_CONS_SESSION};
	assert_int_equal(cproto_put_hello(&b, &h), 0);
	send_all(c->fd, b.p, b.len);
	cproto_buf_free(&b);
	struct cproto_frame f;
	assert_int_equal(cli_frame(c, &f), CPROTO_T_WELCOME);
	struct cproto_welcome w;
	assert_int_equal(cproto_get_welcome(&f, &w), 0);
	assert_int_equal(w.stream, proxy_stream(P));
}

static void cli_close(struct cli *c)
{
	close(c->fd);
	free(c->in);
}

/* Append one QUERY (a write of value request, or a read) to b. */
static void put_query(struct cproto_buf *b, uint64_t request, int read, uint8_t cons)
{
	struct cproto_bind bind = {.index = 1, .v = {.type = WIRE_V_INT, .u.i = (int64_t)request}};
	const char *sql = read ? "SELECT 1" : "INSERT INTO t VALUES(?1)";
	struct cproto_query q = {.request = request, .consistency = cons, .sql = sql,
				 .sql_len = (uint32_t)strlen(sql), .nbinds = read ? 0 : 1, .binds = read ? NULL : &bind};
	assert_int_equal(cproto_put_query(b, &q), 0);
}

/* Read one ANSWER; returns its status, the first statement's last_rowid in
 * *rowid (0 when none). */
static int32_t get_answer(struct cli *c, uint64_t *request, int64_t *rowid, struct cproto_answer *out)
{
	struct cproto_frame f;
	assert_int_equal(cli_frame(c, &f), CPROTO_T_ANSWER);
	struct cproto_answer a;
	assert_int_equal(cproto_get_answer(&f, &a), 0);
	*request = a.request;
	*rowid = 0;
	if (a.status == 0) {
		struct result_view v;
		assert_int_equal(result_decode(a.result, a.result_len, &v), 0);
		struct result_stmt s;
		if (result_next(&v, &s))
			*rowid = s.last_rowid;
	}
	if (out)
		*out = a;
	return a.status;
}

/* Wait (2 s at most) until the published counters satisfy ok(). */
static void wait_stats(struct proxy_stats *st, int (*ok)(const struct proxy_stats *, uint64_t), uint64_t arg)
{
	uint64_t t0 = ms_now();
	do {
		proxy_stats(P, st);
		if (ok(st, arg))
			return;
		usleep(2000);
	} while (ms_now() - t0 < 8000);
}
static int released_is(const struct proxy_stats *st, uint64_t n) { return st->released == n; }
static int paused_some(const struct proxy_stats *st, uint64_t n) { return st->client_pauses >= n; }

/* ---- a write, an error, an empty transaction ---- */

static void test_write_answered(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	put_query(&b, 7, 0, 0);
	send_all(c.fd, b.p, b.len);
	uint64_t req;
	int64_t rowid;
	struct cproto_answer a;
	assert_int_equal(get_answer(&c, &req, &rowid, &a), 0);
	assert_int_equal(req, 7);
	assert_int_equal(rowid, 7);
	assert_true(a.instance >= 1);
	/* BEGIN; COMMIT: nothing to apply, success at once */
	b.len = 0;
	struct cproto_query q = {.request = 8, .sql = "BEGIN; COMMIT", .sql_len = 13};
	assert_int_equal(cproto_put_query(&b, &q), 0);
	send_all(c.fd, b.p, b.len);
	assert_int_equal(get_answer(&c, &req, &rowid, NULL), 0);
	assert_int_equal(req, 8);
	cproto_buf_free(&b);
	cli_close(&c);
	stop();
	assert_int_equal(F.applied_items, 1);
}

static void test_syntax_error_position(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	const char *sql = "INSERT INTO t VALUES(1);\n  INSERT INTO t VALUES(2,,3)";
	struct cproto_query q = {.request = 1, .sql = sql, .sql_len = (uint32_t)strlen(sql)};
	assert_int_equal(cproto_put_query(&b, &q), 0);
	send_all(c.fd, b.p, b.len);
	uint64_t req;
	int64_t rowid;
	struct cproto_answer a;
	assert_int_equal(get_answer(&c, &req, &rowid, &a), MTR_ESYNTAX);
	assert_int_equal(req, 1);
	assert_int_equal(a.line, 2);
	assert_true(a.col > 3);
	assert_true(a.msg_len > 0);
	assert_int_equal(a.result_len, 0);
	cproto_buf_free(&b);
	cli_close(&c);
	stop();
	assert_int_equal(F.applied_items, 0);
}

/* ---- pipelining: answers in request order across reads and writes ---- */

static void test_pipeline_order(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	enum { N = 300 };
	/* every third a write; reads: none, session (default) or, every
	 * fifth request, linearizable (ordered like a write: no READ) */
	unsigned writes = 0, lin = 0;
	for (uint64_t r = 1; r <= N; r++) {
		int read = r % 3 != 0;
		uint8_t cons = r % 5 == 0 ? CPROTO_CONS_LINEARIZABLE : r % 2 ? CPROTO_CONS_NONE : 0;
		put_query(&b, r, read, cons);
		writes += !read;
		lin += read && cons == CPROTO_CONS_LINEARIZABLE;
	}
	send_all(c.fd, b.p, b.len);
	for (uint64_t r = 1; r <= N; r++) {
		uint64_t req;
		int64_t rowid;
		assert_int_equal(get_answer(&c, &req, &rowid, NULL), 0);
		assert_int_equal(req, r);
		int routed = r % 3 != 0 && r % 5 != 0;
		assert_int_equal(rowid, (int64_t)r + (routed ? READ_MARK : 0));
	}
	cproto_buf_free(&b);
	cli_close(&c);
	stop();
	assert_int_equal(F.applied_items, writes + lin);
	assert_int_equal(F.reads, N - writes - lin);
}

/* ---- results larger than a datagram: chunks reassembled ---- */

static void test_chunked_results(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	F.read_pad = 60000; /* about 42 RESULT datagrams per answer */
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	for (uint64_t r = 1; r <= 20; r++)
		put_query(&b, r, r % 2, CPROTO_CONS_NONE);
	send_all(c.fd, b.p, b.len);
	for (uint64_t r = 1; r <= 20; r++) {
		uint64_t req;
		int64_t rowid;
		struct cproto_answer a;
		assert_int_equal(get_answer(&c, &req, &rowid, &a), 0);
		assert_int_equal(req, r);
		if (r % 2 == 0)
			continue;
		assert_int_equal(rowid, (int64_t)r + READ_MARK);
		struct result_view v;
		struct result_stmt st;
		assert_int_equal(result_decode(a.result, a.result_len, &v), 0);
		assert_int_equal(result_next(&v, &st), 1);
		const uint8_t *p = st.rows;
		struct wire_value val;
		assert_int_equal(result_row_next(&p, st.rows + st.rows_len, &val, 1), 1);
		assert_int_equal(val.type, WIRE_V_TEXT);
		assert_int_equal(val.u.b.n, 60000);
		assert_true(memchr(val.u.b.p, 0, val.u.b.n) == NULL);
		assert_int_equal(((const char *)val.u.b.p)[59999], 'x');
	}
	cproto_buf_free(&b);
	cli_close(&c);
	stop();
}

/* ---- loss: items repaired by RESEND, results by RESULT_REQUEST ---- */

static void run_writes(unsigned n)
{
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	for (uint64_t r = 1; r <= n; r++)
		put_query(&b, r, 0, 0);
	send_all(c.fd, b.p, b.len);
	for (uint64_t r = 1; r <= n; r++) {
		uint64_t req;
		int64_t rowid;
		assert_int_equal(get_answer(&c, &req, &rowid, NULL), 0);
		assert_int_equal(req, r);
		assert_int_equal(rowid, (int64_t)r);
	}
	cproto_buf_free(&b);
	cli_close(&c);
}

static void test_item_loss_resend(void **state)
{
	(void)state;
	start(7, 0, 0, 0);
	run_writes(500);
	struct proxy_stats st;
	wait_stats(&st, released_is, 500);
	stop();
	assert_true(F.items_dropped > 0);
	assert_true(F.resends > 0);
	assert_true(st.resent > 0);
	assert_int_equal(F.applied_items, 500);
	assert_int_equal(st.released, 500);
}

static void test_result_loss_request(void **state)
{
	(void)state;
	start(0, 5, 0, 0);
	run_writes(200);
	struct proxy_stats st;
	wait_stats(&st, released_is, 200);
	stop();
	assert_true(F.results_dropped > 0);
	assert_true(F.result_requests > 0);
	assert_true(st.result_requests > 0);
	assert_int_equal(st.released, 200);
}

/* ---- results lost for good: "outcome unknown", nothing held up ---- */

/* n writes on one connection, every lost_mod-th result never comes: each is
 * answered, in order, the lost ones with MTR_EUNKNOWN.  Returns how long
 * the whole took (ms). */
static uint64_t run_writes_lost(unsigned n, unsigned lost_mod)
{
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	uint64_t t0 = ms_now();
	for (uint64_t r = 1; r <= n; r++)
		put_query(&b, r, 0, 0);
	send_all(c.fd, b.p, b.len);
	for (uint64_t r = 1; r <= n; r++) {
		uint64_t req;
		int64_t rowid;
		struct cproto_answer a;
		int32_t st = get_answer(&c, &req, &rowid, &a);
		assert_int_equal(req, r);
		/* seq r carries request r: one connection, nothing else numbered */
		if (r % lost_mod == 0) {
			assert_int_equal(st, MTR_EUNKNOWN);
			assert_non_null(memmem(a.msg, a.msg_len, "outcome unknown", 15));
		} else {
			assert_int_equal(st, 0);
			assert_int_equal(rowid, (int64_t)r);
		}
	}
	uint64_t took = ms_now() - t0;
	cproto_buf_free(&b);
	cli_close(&c);
	return took;
}

/* One run of run_writes_lost against a proxy with write_timeout_ms and
 * buffer_items (0: default) whose fake servers never send every mod-th
 * result and answer a RESULT_REQUEST of one with RESULT_UNKNOWN when
 * unknown is set (silence otherwise); n - 1 must not be a multiple of mod.
 * Every seq is released in the end.  Returns the time taken (ms). */
static uint64_t lost_case(uint32_t write_timeout_ms, uint32_t buffer_items, unsigned mod, int unknown, unsigned n,
			  struct proxy_stats *st)
{
	knob_write_timeout_ms = write_timeout_ms;
	start(0, 0, buffer_items, 0);
	F.lost_mod = mod;
	F.lost_unknown = unknown;
	uint64_t took = run_writes_lost(n, mod);
	wait_stats(st, released_is, n);
	knob_write_timeout_ms = 0;
	stop();
	assert_true(st->released == n && st->results_asked > 0);
	return took;
}

static void test_result_lost_give_up(void **state)
{
	(void)state;
	struct proxy_stats st;
	/* a buffer of 16 items: the given-up seqs must be released (the last
	 * seq, 101, has its result: every seq before it is applied), or the
	 * proxy would stop reading every client after 16 */
	uint64_t took = lost_case(100, 16, 10, 0, 101, &st);
	assert_int_equal(st.write_timeouts, 10);
	assert_int_equal(st.results_unknown, 0);
	assert_true(took >= 100);
}

static void test_result_lost_unknown(void **state)
{
	(void)state;
	struct proxy_stats st;
	/* write_timeout never reached: RESULT_UNKNOWN answers first */
	uint64_t took = lost_case(60000, 0, 7, 1, 100, &st);
	assert_int_equal(st.results_unknown, 14);
	assert_int_equal(st.write_timeouts, 0);
	assert_true(took < 30000);
}

/* ---- push-back: a tiny buffer, nothing lost ---- */

static void test_pushback(void **state)
{
	(void)state;
	start(0, 0, 16, 0);
	run_writes(1000);
	struct proxy_stats st;
	wait_stats(&st, released_is, 1000);
	stop();
	assert_true(st.pushback > 0);
	assert_int_equal(F.applied_items, 1000);
	assert_int_equal(F.dups, 0);
	assert_int_equal(st.answers, 1000);
}

/* ---- a client that never reads does not stall another ---- */

static void test_slow_client(void **state)
{
	(void)state;
	start(0, 0, 0, 8192);
	F.read_pad = 1000;
	struct cli slow, fast;
	cli_rcvbuf = 4096; /* the kernel holds little for the slow client */
	cli_open(&slow);
	cli_rcvbuf = 0;
	cli_open(&fast);
	/* the slow client sends reads (1 KB answers) and never reads: the proxy
	 * must stop reading it once proxy.client_buffer is exceeded */
	int fl = fcntl(slow.fd, F_GETFL);
	fcntl(slow.fd, F_SETFL, fl | O_NONBLOCK);
	struct cproto_buf b = {0};
	for (uint64_t r = 1; r <= 20000; r++)
		put_query(&b, r, r % 4 != 0, 0);
	size_t off = 0;
	uint64_t t0 = ms_now();
	struct proxy_stats st;
	proxy_stats(P, &st);
	while (off < b.len && st.client_pauses == 0 && ms_now() - t0 < 5000) {
		ssize_t w = send(slow.fd, b.p + off, b.len - off, MSG_NOSIGNAL);
		if (w > 0)
			off += (size_t)w;
		else
			usleep(2000);
		proxy_stats(P, &st);
	}
	wait_stats(&st, paused_some, 1);
	assert_true(st.client_pauses >= 1);
	cproto_buf_free(&b);
	/* the other client is served */
	struct cproto_buf b2 = {0};
	for (uint64_t r = 1; r <= 50; r++)
		put_query(&b2, r, r % 2, 0);
	send_all(fast.fd, b2.p, b2.len);
	for (uint64_t r = 1; r <= 50; r++) {
		uint64_t req;
		int64_t rowid;
		assert_int_equal(get_answer(&fast, &req, &rowid, NULL), 0);
		assert_int_equal(req, r);
	}
	cproto_buf_free(&b2);
	cli_close(&slow); /* dies with answers pending: dropped, no harm */
	/* and still served after the slow one died */
	struct cproto_buf b3 = {0};
	put_query(&b3, 51, 0, 0);
	send_all(fast.fd, b3.p, b3.len);
	uint64_t req;
	int64_t rowid;
	assert_int_equal(get_answer(&fast, &req, &rowid, NULL), 0);
	assert_int_equal(req, 51);
	cproto_buf_free(&b3);
	cli_close(&fast);
	stop();
}

/* ---- protocol errors ---- */

static void test_malformed_bye(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	struct cli c;
	cli_open(&c);
	uint8_t junk[9] = {5, 0, 0, 0, 3, 1, 2, 3, 4}; /* a QUERY of 4 bytes */
	send_all(c.fd, junk, sizeof junk);
	struct cproto_frame f;
	assert_int_equal(cli_frame(&c, &f), CPROTO_T_BYE);
	struct cproto_bye bye;
	assert_int_equal(cproto_get_bye(&f, &bye), 0);
	assert_true(bye.status < 0);
	char x;
	struct pollfd pf = {.fd = c.fd, .events = POLLIN};
	assert_int_equal(poll(&pf, 1, 2000), 1);
	assert_int_equal(recv(c.fd, &x, 1, 0), 0); /* closed */
	cli_close(&c);
	/* attach: a socketpair end is served like a TCP client */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(proxy_attach(P, sv[1]), 0);
	struct cli a = {.fd = sv[0]};
	struct cproto_buf b = {0};
	struct cproto_hello h = {.version = CPROTO_VERSION};
	assert_int_equal(cproto_put_hello(&b, &h), 0);
	put_query(&b, 1, 0, 0);
	send_all(a.fd, b.p, b.len);
	assert_int_equal(cli_frame(&a, &f), CPROTO_T_WELCOME);
	uint64_t req;
	int64_t rowid;
	assert_int_equal(get_answer(&a, &req, &rowid, NULL), 0);
	assert_int_equal(rowid, 1);
	cproto_buf_free(&b);
	cli_close(&a);
	stop();
}

/* ---- the users file (proxy.users) ---- */

static void test_users_parse(void **state)
{
	(void)state;
	char h[PXAUTH_HASH_MAX];
	assert_int_equal(pxauth_hash("secret", 6, h), 0);
	assert_memory_equal(h, "$argon2id$", 10);
	char text[600];
	snprintf(text, sizeof text, "# the users\n\n  alice:%s\r\nbob:%s\n", h, h);
	struct pxauth_users u;
	char err[300];
	assert_int_equal(pxauth_users_parse(text, strlen(text), "users", &u, err, sizeof err), 0);
	assert_int_equal(u.n, 2);
	assert_string_equal(u.u[0].name, "alice");
	assert_string_equal(u.u[0].hash, h);
	assert_non_null(pxauth_users_find(&u, "bob", 3));
	assert_null(pxauth_users_find(&u, "bo", 2));
	pxauth_users_free(&u);
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{"alice $argon2id$x\n", "users line 1: no ':'"},
		{"# x\n:$argon2id$v=19$m=65536,t=2,p=1$a$b\n", "users line 2: the user name is empty"},
		{"alice:secret\n", "users line 1: the hash is not an Argon2 string"},
		{"a:$argon2id$v=19$m=65536,t=2,p=1$a$b\na:$argon2id$v=19$m=65536,t=2,p=1$a$b\n",
		 "users line 2: user 'a' is listed twice"},
		{"# nobody\n", "users: no user in the file"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(pxauth_users_parse(bad[i].text, strlen(bad[i].text), "users", &u, err, sizeof err),
				 MTR_ECONFIG);
		assert_non_null(strstr(err, bad[i].msg));
		assert_null(u.u);
	}
}

/* ---- read routing by STATUS ---- */

static void test_read_routing(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	/* servers 0 and 2 report applied 0, server 1 applied 1000, each from
	 * its own address (a proxy takes STATUS from configured servers only) */
	struct transport_addr pudp;
	proxy_addrs(P, NULL, &pudp);
	pudp.ip = 0x7f000001;
	for (uint32_t i = 0; i < NSRV; i++) {
		uint8_t dg[WIRE_STATUS_SIZE + WIRE_OVERHEAD];
		struct wire_status stt = {.node = i, .leader = 0, .applied = i == 1 ? 1000 : 0};
		struct transport_msg m = {.buf = dg, .peer = pudp};
		m.len = (uint32_t)wire_status_build(dg, &(struct wire_from){ 1, i, NULL }, &stt);
		assert_int_equal(transport_send_to(F.t[i], &m, 1), 1);
	}
	usleep(50000);
	struct cli c;
	cli_open(&c);
	/* session reads that must see instance 500: only server 1 qualifies */
	struct cproto_buf b = {0};
	for (uint64_t r = 1; r <= 20; r++) {
		struct cproto_query q = {.request = r, .consistency = CPROTO_CONS_SESSION, .min_instance = 500,
					 .sql = "SELECT 1", .sql_len = 8};
		assert_int_equal(cproto_put_query(&b, &q), 0);
	}
	send_all(c.fd, b.p, b.len);
	for (uint64_t r = 1; r <= 20; r++) {
		uint64_t req;
		int64_t rowid;
		assert_int_equal(get_answer(&c, &req, &rowid, NULL), 0);
		assert_int_equal(req, r);
	}
	assert_int_equal(F.reads_by[1], 20);
	/* 20 reads that came in one recv left in READS datagrams, not 20 READs */
	assert_true(F.reads_batched >= 2);
	/* consistency none: any server, round robin */
	b.len = 0;
	for (uint64_t r = 21; r <= 40; r++)
		put_query(&b, r, 1, CPROTO_CONS_NONE);
	send_all(c.fd, b.p, b.len);
	for (uint64_t r = 21; r <= 40; r++) {
		uint64_t req;
		int64_t rowid;
		assert_int_equal(get_answer(&c, &req, &rowid, NULL), 0);
		assert_int_equal(req, r);
	}
	assert_true(F.reads_by[0] > 0);
	assert_true(F.reads_by[2] > 0);
	cproto_buf_free(&b);
	cli_close(&c);
	stop();
}

/* ---- reads: one server at a time, cancelled when nobody waits ---- */

/* Every server says it is alive (STATUS, applied 0). */
static void all_alive(void)
{
	struct transport_addr pudp;
	proxy_addrs(P, NULL, &pudp);
	pudp.ip = 0x7f000001;
	for (uint32_t i = 0; i < NSRV; i++) {
		uint8_t dg[WIRE_STATUS_SIZE + WIRE_OVERHEAD];
		struct wire_status stt = {.node = i, .leader = 0};
		struct transport_msg m = {.buf = dg, .peer = pudp};
		m.len = (uint32_t)wire_status_build(dg, &(struct wire_from){ 1, i, NULL }, &stt);
		assert_int_equal(transport_send_to(F.t[i], &m, 1), 1);
	}
}

static unsigned sum(atomic_uint *v)
{
	unsigned n = 0;
	for (int i = 0; i < NSRV; i++)
		n += v[i];
	return n;
}

/* ---- the servers follow the membership STATUS carries ---- */

/* A STATUS of server `node` sent from transport t, with the membership ms
 * (conf 0: none). */
static uint8_t status_role; /* the role the next status_from() claims */
static void status_from(struct transport *t, uint32_t node, uint64_t conf, const struct wire_status_member *ms,
			unsigned n)
{
	struct transport_addr pudp;
	proxy_addrs(P, NULL, &pudp);
	pudp.ip = 0x7f000001;
	uint8_t dg[WIRE_STATUS_MAX + WIRE_OVERHEAD];
	struct wire_status stt = {.node = node, .role = status_role, .leader = 0, .conf = conf, .nmembers = (uint8_t)n};
	if (n)
		memcpy(stt.m, ms, n * sizeof *ms);
	struct transport_msg m = {.buf = dg, .peer = pudp};
	m.len = (uint32_t)wire_status_build(dg, &(struct wire_from){1, node, NULL}, &stt);
	assert_int_equal(transport_send_to(t, &m, 1), 1);
}

/* Whether x receives an ITEMS datagram from the proxy within ms. */
static int gets_items(struct transport *x, int ms)
{
	uint64_t end = ms_now() + (uint64_t)ms;
	struct transport_msg msgs[64];
	while (ms_now() < end) {
		transport_wait(x, 20);
		int n = transport_recv(x, msgs, 64);
		for (int k = 0; k < n; k++)
			if (msgs[k].hdr.type == WIRE_T_ITEMS)
				return 1;
	}
	return 0;
}

/* A figure of the proxy's /metrics page (-1: not there). */
static double metric(const char *name)
{
	struct metrics_buf mb = {0};
	proxy_metrics(P, &mb);
	char key[128];
	snprintf(key, sizeof key, "\n%s ", name);
	const char *at = mb.p ? strstr(mb.p, key) : NULL;
	double v = at ? strtod(at + strlen(key), NULL) : -1;
	metrics_buf_free(&mb);
	return v;
}

/* Wait (up to 1 s) for a figure to reach want; its last value. */
static double metric_wait(const char *name, double want)
{
	double v = metric(name);
	for (int i = 0; i < 100 && v != want; i++) {
		usleep(10000);
		v = metric(name);
	}
	return v;
}

static struct wire_status_member member(uint8_t id, uint8_t flags, const struct transport *t)
{
	return (struct wire_status_member){.id = id, .flags = flags, .ip = t->cfg.bind.ip, .port = t->cfg.bind.port};
}

#define SERVERS "metronome_servers"
#define DROP_SENDER "metronome_proxy_drop_sender_total"

static void test_membership_follow(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	/* server 5, added to the cluster: not in cluster.servers */
	struct transport *x;
	struct transport_config tc;
	transport_config_init(&tc);
	tc.kind = "udp";
	assert_int_equal(transport_addr_parse("127.0.0.1:0", 0, &tc.bind), 0);
	tc.cluster = 1;
	tc.mtu = WIRE_MAX_DGRAM;
	assert_int_equal(transport_open(&tc, &x), 0);
	all_alive();
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	uint64_t req = 1;
	int64_t rowid;
	/* before: writes reach the servers of cluster.servers only */
	put_query(&b, req++, 0, CPROTO_CONS_NONE);
	send_all(c.fd, b.p, b.len);
	assert_int_equal(get_answer(&c, &(uint64_t){0}, &rowid, NULL), 0);
	assert_false(gets_items(x, 200));
	/* a STATUS of server 5 is refused while it is not a member */
	assert_true(metric_wait(SERVERS, 3) == 3);
	double refused = metric(DROP_SENDER);
	assert_true(refused >= 0);
	status_from(x, 5, 0, NULL, 0);
	assert_true(metric_wait(DROP_SENDER, refused + 1) == refused + 1);
	/* server 0 tells of a pending configuration: 5 joins, 2 leaves */
	struct wire_status_member pending[] = {member(0, WIRE_MEMBER_VOTER, F.t[0]), member(1, WIRE_MEMBER_VOTER, F.t[1]),
					       member(2, WIRE_MEMBER_LEAVING, F.t[2]), member(5, WIRE_MEMBER_VOTER, x)};
	status_from(F.t[0], 0, 2 * 20, pending, 4);
	usleep(50000);
	b.len = 0;
	put_query(&b, req++, 0, CPROTO_CONS_NONE);
	send_all(c.fd, b.p, b.len);
	assert_int_equal(get_answer(&c, &(uint64_t){0}, &rowid, NULL), 0);
	assert_true(gets_items(x, 2000));
	assert_true(metric_wait(SERVERS, 4) == 4);
	/* server 5's STATUS is taken now */
	refused = metric(DROP_SENDER);
	status_from(x, 5, 0, NULL, 0);
	usleep(100000);
	assert_true(metric(DROP_SENDER) == refused);
	/* in force: 2 is gone; an older membership heard later changes nothing */
	struct wire_status_member now[] = {member(0, WIRE_MEMBER_VOTER, F.t[0]), member(1, WIRE_MEMBER_VOTER, F.t[1]),
					   member(5, WIRE_MEMBER_VOTER, x)};
	status_from(F.t[1], 1, 2 * 20 + 1, now, 3);
	usleep(50000);
	struct wire_status_member old[] = {member(2, WIRE_MEMBER_VOTER, F.t[2])};
	status_from(F.t[0], 0, 2 * 10 + 1, old, 1);
	usleep(50000);
	/* reads go round robin over the members heard alive, never to 2 (nor
	 * to 5, which answers no READ: its STATUS is 1 s old by then, over
	 * the proxy's ALIVE_MS) */
	usleep(1100000);
	status_from(F.t[0], 0, 0, NULL, 0);
	status_from(F.t[1], 1, 0, NULL, 0);
	usleep(50000);
	unsigned by2 = F.reads_by[2];
	b.len = 0;
	uint64_t first = req;
	for (int i = 0; i < 20; i++)
		put_query(&b, req++, 1, CPROTO_CONS_NONE);
	send_all(c.fd, b.p, b.len);
	for (uint64_t r = first; r < req; r++) {
		uint64_t got;
		assert_int_equal(get_answer(&c, &got, &rowid, NULL), 0);
		assert_int_equal(got, r);
	}
	assert_int_equal(F.reads_by[2], by2);
	assert_true(F.reads_by[0] > 0 && F.reads_by[1] > 0);
	/* a STATUS of server 2 is refused again */
	assert_true(metric_wait(SERVERS, 3) == 3);
	refused = metric(DROP_SENDER);
	status_from(F.t[2], 2, 0, NULL, 0);
	assert_true(metric_wait(DROP_SENDER, refused + 1) == refused + 1);
	cproto_buf_free(&b);
	cli_close(&c);
	stop();
	transport_close(x);
}

/* A client's MEMBERSHIP change goes to the server the proxy believes leads
 * (server 0, by the followers' word); "not the leader" sends it to the
 * next one (server 1, by its own STATUS), whose answer reaches the client
 * with the client's token. */
static void test_membership_relay(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	all_alive();
	usleep(50000);
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	struct wire_member rq = {.kind = WIRE_MEMBER_REQUEST, .token = 1234, .op = WIRE_MEMBER_ADD,
				 .addr = "127.0.0.1:9999", .addr_len = 14};
	assert_int_equal(cproto_put_member(&b, &rq), 0);
	send_all(c.fd, b.p, b.len);
	uint64_t end = ms_now() + 5000;
	while (F.members_by[0] == 0 && ms_now() < end)
		usleep(5000);
	assert_true(F.members_by[0] >= 1 && F.members_by[1] == 0);
	status_role = WIRE_ROLE_LEADER;
	status_from(F.t[1], 1, 0, NULL, 0);
	status_role = 0;
	struct cproto_frame f;
	assert_int_equal(cli_frame(&c, &f), CPROTO_T_MEMBERSHIP);
	struct wire_member a;
	assert_int_equal(cproto_get_member(&f, &a), 0);
	assert_true(a.kind == WIRE_MEMBER_ANSWER && a.token == 1234 && a.status == 0 && a.id == 7 && a.instance == 99);
	assert_true(F.members_by[1] == 1);
	cproto_buf_free(&b);
	cli_close(&c);
	stop();
}

static void test_read_cancel(void **state)
{
	(void)state;
	start(0, 0, 0, 0);
	F.ignore_reads = 1;
	all_alive();
	usleep(50000);
	struct cli c;
	cli_open(&c);
	struct cproto_buf b = {0};
	put_query(&b, 1, 1, CPROTO_CONS_NONE);
	send_all(c.fd, b.p, b.len);
	/* 1.2 s with the servers alive: the READ is repeated (read_timeout / 5
	 * = 400 ms) to the same server only, never started on another */
	for (int k = 0; k < 12; k++) {
		usleep(100000);
		all_alive();
	}
	int srv = F.reads_by[0] ? 0 : F.reads_by[1] ? 1 : 2;
	assert_true(F.reads_by[srv] >= 2);
	assert_int_equal(sum(F.reads_by), F.reads_by[srv]);
	assert_int_equal(sum(F.cancels_by), 0);
	/* CANCEL: answered at once with SQLITE_INTERRUPT "read cancelled",
	 * and its server is told CANCEL_READ */
	b.len = 0;
	assert_int_equal(cproto_put_cancel(&b, 1), 0);
	send_all(c.fd, b.p, b.len);
	uint64_t req;
	int64_t rowid;
	struct cproto_answer a;
	uint64_t t0 = ms_now();
	assert_int_equal(get_answer(&c, &req, &rowid, &a), 0);
	assert_int_equal(req, 1);
	assert_true(ms_now() - t0 < 1000);
	struct result_view v;
	assert_int_equal(result_decode(a.result, a.result_len, &v), 0);
	assert_int_equal(v.code, RESULT_SQLITE_INTERRUPT);
	struct result_stmt s;
	assert_true(result_next(&v, &s));
	assert_int_equal(s.errmsg_len, strlen("read cancelled"));
	assert_memory_equal(s.errmsg, "read cancelled", s.errmsg_len);
	usleep(50000);
	assert_int_equal(F.cancels_by[srv], 1);
	assert_int_equal(sum(F.cancels_by), 1);
	/* CANCEL of an answered or unknown request, or of a write: nothing */
	b.len = 0;
	assert_int_equal(cproto_put_cancel(&b, 1), 0);
	put_query(&b, 2, 0, 0);
	assert_int_equal(cproto_put_cancel(&b, 2), 0);
	assert_int_equal(cproto_put_cancel(&b, 99), 0);
	send_all(c.fd, b.p, b.len);
	assert_int_equal(get_answer(&c, &req, &rowid, NULL), 0);
	assert_int_equal(req, 2);
	assert_int_equal(rowid, 2);
	/* a client that goes away with a read in flight: CANCEL_READ */
	b.len = 0;
	put_query(&b, 3, 1, CPROTO_CONS_NONE);
	send_all(c.fd, b.p, b.len);
	usleep(100000);
	cli_close(&c);
	t0 = ms_now();
	while (sum(F.cancels_by) < 2 && ms_now() - t0 < 2000)
		usleep(10000);
	assert_int_equal(sum(F.cancels_by), 2);
	/* no server alive: the READ moves to the next one, the first is told */
	unsigned before = sum(F.cancels_by);
	struct cli d;
	cli_open(&d);
	b.len = 0;
	put_query(&b, 4, 1, CPROTO_CONS_NONE);
	send_all(d.fd, b.p, b.len);
	/* ... and at read_timeout (2 s) it fails and its server is told */
	assert_int_equal(get_answer(&d, &req, &rowid, &a), MTR_ETIMEDOUT);
	assert_true(a.msg_len > 0 && memmem(a.msg, a.msg_len, "deadline of 2000 ms", 19) != NULL);
	usleep(50000);
	unsigned moved = 0;
	for (int i = 0; i < NSRV; i++)
		moved += F.reads_by[i] > 0;
	assert_true(moved >= 2);
	assert_true(sum(F.cancels_by) >= before + 2);
	struct proxy_stats st;
	proxy_stats(P, &st);
	assert_true(st.reads_cancelled >= 2 && st.read_timeouts >= 1 && st.read_moves >= 1 && st.read_repeats >= 2);
	cproto_buf_free(&b);
	cli_close(&d);
	stop();
}

/* ---- big items, max_clients, read timeout ---- */

static void test_fragments_clients_timeout(void **state)
{
	(void)state;
	knob_max_clients = 2;
	start(0, 0, 0, 0);
	knob_max_clients = 0;
	struct cli c, d;
	cli_open(&c);
	/* an item of ~20 KB goes as fragments */
	static char big[20000];
	memset(big, 'y', sizeof big);
	struct cproto_bind bd = {.index = 1, .v = {.type = WIRE_V_TEXT, .u.b = {big, sizeof big}}};
	const char *sql = "INSERT INTO t VALUES(?1)";
	struct cproto_query q = {.request = 5, .sql = sql, .sql_len = (uint32_t)strlen(sql), .nbinds = 1,
				 .binds = &bd};
	struct cproto_buf b = {0};
	assert_int_equal(cproto_put_query(&b, &q), 0);
	send_all(c.fd, b.p, b.len);
	uint64_t req;
	int64_t rowid;
	assert_int_equal(get_answer(&c, &req, &rowid, NULL), 0);
	assert_int_equal(rowid, 5);
	struct proxy_stats st;
	proxy_stats(P, &st);
	assert_true(st.dgrams_out >= 14);
	/* a second client is fine, a third is refused with BYE */
	cli_open(&d);
	struct cli e;
	memset(&e, 0, sizeof e);
	e.fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(P_listen.port),
				 .sin_addr.s_addr = htonl(P_listen.ip)};
	assert_int_equal(connect(e.fd, (struct sockaddr *)&sa, sizeof sa), 0);
	struct cproto_frame f;
	assert_int_equal(cli_frame(&e, &f), CPROTO_T_BYE);
	cli_close(&e);
	/* reads nobody answers fail with MTR_ETIMEDOUT after read_timeout, in order */
	F.ignore_reads = 1;
	b.len = 0;
	put_query(&b, 6, 1, 0);
	put_query(&b, 7, 0, 0);
	send_all(d.fd, b.p, b.len);
	uint64_t t0 = ms_now();
	assert_int_equal(get_answer(&d, &req, &rowid, NULL), MTR_ETIMEDOUT);
	assert_int_equal(req, 6);
	assert_true(ms_now() - t0 >= 1500);
	assert_int_equal(get_answer(&d, &req, &rowid, NULL), 0);
	assert_int_equal(req, 7);
	cproto_buf_free(&b);
	cli_close(&c);
	cli_close(&d);
	stop();
}

int main(void)
{
	if (getenv("MTR_LOG") == NULL)
		log_set_level(LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_answered),
		cmocka_unit_test(test_syntax_error_position),
		cmocka_unit_test(test_pipeline_order),
		cmocka_unit_test(test_chunked_results),
		cmocka_unit_test(test_item_loss_resend),
		cmocka_unit_test(test_result_loss_request),
		cmocka_unit_test(test_pushback),
		cmocka_unit_test(test_result_lost_give_up),
		cmocka_unit_test(test_result_lost_unknown),
		cmocka_unit_test(test_slow_client),
		cmocka_unit_test(test_malformed_bye),
		cmocka_unit_test(test_fragments_clients_timeout),
		cmocka_unit_test(test_read_routing),
		cmocka_unit_test(test_membership_follow),
		cmocka_unit_test(test_membership_relay),
		cmocka_unit_test(test_users_parse),
		cmocka_unit_test(test_read_cancel),
	};
	return cmocka_run_group_tests_name("proxy", tests, NULL, NULL);
}
