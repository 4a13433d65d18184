/*
 * test_server.c - three server objects (server.h) on loopback ports, each
 * running in its own thread of this process, fed by a test sender that plays
 * the proxy: it builds items with proxy_item_build, packs them into ITEMS
 * datagrams, sends them to every server (dropping some on purpose), sends
 * heartbeats, answers RESEND and collects the RESULT datagrams.  Checks that
 * every item gets a result, that all replicas apply the same instances and
 * reach equal digests, that the cluster tables show the cluster, that a READ
 * is answered, that a stopped server recovers and catches up, and that a
 * forged PREPARE with the ballot 0xffffffffffffff01, or a server restarted
 * with that promise on disk (issue 12), does not stop the writes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "clusterconf.h"
#include "conf.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "paxos_codec.h"
#include "proxy_item.h"
#include "pstore.h"
#include "result.h"
#include "server.h"
#include "../testutil.h"
#include "transport.h"
#include "util.h"
#include "wire.h"
#include "wire_server.h"

#define NSRV 3
#define STREAM 0x5eed000000000001ull
#define PROXY_ID 256
/* the cluster key of every server and of the test proxy */
#define KEY_HEX "00112233445566778899aabbccddeeff"
static const struct wire_key KEY = { .set = 1,
				      .k = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
					     0xcc, 0xdd, 0xee, 0xff } };
static const struct wire_from PROXY_FROM = { 1, PROXY_ID, &KEY }; /* the test proxy's datagrams */
#define MAX_ITEMS 20000

/* ---- Fixture ---- */

struct srv {
	struct server *s;
	pthread_t th;
	int running;
	int rc;
};

struct fix {
	char dir[256];
	uint16_t ports[NSRV];
	struct srv srv[NSRV];
	struct transport *t; /* the test proxy */
	/* items sent, by seq (1-based) */
	uint8_t *item[MAX_ITEMS + 1];
	size_t ilen[MAX_ITEMS + 1];
	uint64_t high;
	/* results: per seq, a bit per server that answered (by sender id) */
	uint8_t got[MAX_ITEMS + 1];
	int code[MAX_ITEMS + 1];
	uint64_t read_rid;
	int read_code;
	int64_t read_value;
	char read_name[32]; /* the first column name of the last read */
	int drop_every; /* drop every n-th datagram to server 2 (0: none) */
	int compact_lag; /* server.compact_lag (0: default) */
	int disk;        /* data.durability = disk (else memory) */
	unsigned sent_dgrams;
	unsigned resends;
	uint64_t released; /* seqs up to this one are not resent (a proxy's outbuf release) */
};

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &l) != 0)
		return 0;
	close(fd);
	return ntohs(sa.sin_port);
}

static const struct conf_key keys[] = {CLUSTERCONF_KEYS, SERVER_KEYS};

static void *srv_main(void *arg)
{
	struct srv *v = arg;
	v->rc = server_run(v->s);
	return NULL;
}

/* Configure server i through the same path metronomed uses. */
static void srv_start(struct fix *f, int i)
{
	char err[512], kv[512];
	struct conf *c = NULL;
	assert_int_equal(conf_load(NULL, keys, ARRAY_SIZE(keys), &c, err, sizeof err), 0);
	snprintf(kv, sizeof kv, "cluster.servers=127.0.0.1:%u,127.0.0.1:%u,127.0.0.1:%u", f->ports[0], f->ports[1],
		 f->ports[2]);
	assert_int_equal(conf_set(c, kv, err, sizeof err), 0);
	assert_int_equal(conf_set(c, "cluster.key=" KEY_HEX, err, sizeof err), 0);
	snprintf(kv, sizeof kv, "server.id=%d", i);
	assert_int_equal(conf_set(c, kv, err, sizeof err), 0);
	snprintf(kv, sizeof kv, "data.dir=%s/s%d", f->dir, i);
	assert_int_equal(conf_set(c, kv, err, sizeof err), 0);
	assert_int_equal(conf_set(c, f->disk ? "data.durability=disk" : "data.durability=memory", err, sizeof err), 0);
	assert_int_equal(conf_set(c, "paxos.heartbeat=20ms", err, sizeof err), 0);
	assert_int_equal(conf_set(c, "paxos.election=200ms", err, sizeof err), 0);
	assert_int_equal(conf_set(c, "server.status_period=50ms", err, sizeof err), 0);
	if (f->compact_lag) {
		snprintf(kv, sizeof kv, "server.compact_lag=%d", f->compact_lag);
		assert_int_equal(conf_set(c, kv, err, sizeof err), 0);
	}
	struct server_config cfg;
	int rc = server_config_read(c, &cfg, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "config: %s\n", err);
	assert_int_equal(rc, 0);
	struct srv *v = &f->srv[i];
	assert_int_equal(server_open(&cfg, &v->s), 0);
	assert_int_equal(pthread_create(&v->th, NULL, srv_main, v), 0);
	v->running = 1;
	conf_free(c);
}

static void srv_stop(struct fix *f, int i)
{
	struct srv *v = &f->srv[i];
	if (!v->running)
		return;
	server_stop(v->s);
	pthread_join(v->th, NULL);
	assert_int_equal(v->rc, 0);
	server_close(v->s);
	v->s = NULL;
	v->running = 0;
}

static int setup_lag(void **state, int lag, int disk)
{
	struct fix *f = calloc(1, sizeof *f);
	f->compact_lag = lag;
	f->disk = disk;
	assert_non_null(f);
	assert_int_equal(testutil_mkdtemp(f->dir, sizeof f->dir, "test_server"), 0);
	for (int i = 0; i < NSRV; i++) {
		f->ports[i] = free_port();
		assert_true(f->ports[i] != 0);
	}
	struct transport_config tc;
	transport_config_init(&tc);
	tc.bind.ip = 0x7f000001;
	tc.bind.port = 0;
	tc.cluster = 1;
	tc.key = KEY;
	for (int i = 0; i < NSRV; i++)
		tc.dests[i] = (struct transport_addr){0x7f000001, f->ports[i]};
	tc.ndests = NSRV;
	tc.mtu = WIRE_MAX_DGRAM;
	assert_int_equal(transport_open(&tc, &f->t), 0);
	for (int i = 0; i < NSRV; i++)
		srv_start(f, i);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_lag(state, 0, 0); }

/* Servers that fdatasync items and Paxos state. */
static int setup_disk(void **state) { return setup_lag(state, 0, 1); }

/* Servers that release everything more than 20 instances old. */
static int setup_small_lag(void **state) { return setup_lag(state, 20, 0); }

static int teardown(void **state)
{
	struct fix *f = *state;
	for (int i = 0; i < NSRV; i++)
		srv_stop(f, i);
	transport_close(f->t);
	for (int i = 0; i <= MAX_ITEMS; i++)
		free(f->item[i]);
	testutil_rmtree(f->dir);
	free(f);
	return 0;
}

/* ---- Helpers: the test proxy ---- */

static uint64_t now_ms(void) { return now_mono_ns() / 1000000u; }

/* Build item seq with sql and up to two integer binds. */
static void make_item(struct fix *f, uint64_t seq, const char *sql, int nb, int64_t v1, int64_t v2)
{
	struct cproto_bind b[2] = {{.index = 1, .v = {.type = WIRE_V_INT, .u.i = v1}},
				  {.index = 2, .v = {.type = WIRE_V_INT, .u.i = v2}}};
	struct proxy_item_out out;
	struct proxy_err err;
	struct proxy_item_in in = {.sql = sql, .len = strlen(sql), .binds = b, .nbinds = (size_t)nb, .stream = STREAM,
				   .seq = seq, .request = seq * 10, .now_us = 1700000000000000 + (int64_t)seq,
				   .seed = seq * 7919};
	int rc = proxy_item_build(&in, &out, &err);
	if (rc != 0)
		fprintf(stderr, "proxy_item_build: %d %s\n", rc, err.msg);
	assert_int_equal(rc, 0);
	assert_true(seq <= MAX_ITEMS);
	free(f->item[seq]);
	f->item[seq] = out.buf;
	f->ilen[seq] = out.len;
}

static int server_index(struct fix *f, const struct transport_addr *a);

/* Send items first..last packed into ITEMS datagrams of mtu bytes, to the
 * group (every server) or to one address (a RESEND answer).  Drops every
 * drop_every-th datagram to server 2 when sending to the group. */
static void send_items(struct fix *f, uint64_t first, uint64_t last, const struct transport_addr *to)
{
	uint8_t buf[WIRE_DEFAULT_MTU];
	size_t used = 0, room = sizeof buf - WIRE_OVERHEAD;
	for (uint64_t seq = first; seq <= last + 1; seq++) {
		int flush = seq > last || (used && used + f->ilen[seq] > room);
		if (flush && used) {
			size_t n = wire_frame_finish(buf, &PROXY_FROM, WIRE_T_ITEMS, (uint32_t)used);
			if (to) {
				struct transport_msg m = {.buf = buf, .len = (uint32_t)n, .peer = *to};
				transport_send_to(f->t, &m, 1);
			} else {
				f->sent_dgrams++;
				for (int i = 0; i < NSRV; i++) {
					if (i == 2 && f->drop_every && f->sent_dgrams % (unsigned)f->drop_every == 0)
						continue;
					struct transport_msg m = {.buf = buf, .len = (uint32_t)n,
								  .peer = {0x7f000001, f->ports[i]}};
					transport_send_to(f->t, &m, 1);
				}
			}
			used = 0;
		}
		if (seq > last)
			break;
		if (f->ilen[seq] > room) {
			/* too big for a datagram: fragments (the previous datagram was
			 * flushed above, since used + ilen > room) */
			uint32_t nf = wire_frag_count(f->ilen[seq], sizeof buf);
			for (uint32_t k = 0; k < nf; k++) {
				uint8_t fb[WIRE_DEFAULT_MTU];
				size_t n = wire_frag_build(fb, sizeof fb, &PROXY_FROM, STREAM, seq, f->item[seq],
							   f->ilen[seq], k);
				for (int i = 0; i < NSRV; i++) {
					if (to && i != server_index(f, to))
						continue;
					if (!to && i == 2 && f->drop_every && k % 3 == 1)
						continue; /* lose some fragments to server 2 */
					struct transport_msg m = {.buf = fb, .len = (uint32_t)n,
								  .peer = {0x7f000001, f->ports[i]}};
					transport_send_to(f->t, &m, 1);
				}
			}
			continue;
		}
		memcpy(buf + WIRE_HDR_SIZE + used, f->item[seq], f->ilen[seq]);
		used += f->ilen[seq];
	}
	if (last > f->high)
		f->high = last;
}

static void send_heartbeat(struct fix *f)
{
	uint8_t buf[64];
	struct wire_heartbeat hb = {.stream = STREAM, .high = f->high};
	size_t n = wire_heartbeat_build(buf, &PROXY_FROM, &hb);
	for (int i = 0; i < NSRV; i++) {
		struct transport_msg m = {.buf = buf, .len = (uint32_t)n, .peer = {0x7f000001, f->ports[i]}};
		transport_send_to(f->t, &m, 1);
	}
}

static int server_index(struct fix *f, const struct transport_addr *a)
{
	for (int i = 0; i < NSRV; i++)
		if (a->port == f->ports[i])
			return i;
	return -1;
}

/* Handle what the servers sent: RESEND, RESULT (whole records only: the
 * test's results are small). */
static void pump(struct fix *f, int timeout_ms)
{
	transport_wait(f->t, timeout_ms);
	struct transport_msg m[64];
	int n;
	while ((n = transport_recv(f->t, m, 64)) > 0) {
		for (int i = 0; i < n; i++) {
			const uint8_t *p = m[i].buf + WIRE_HDR_SIZE;
			if (m[i].hdr.type == WIRE_T_RESEND) {
				struct wire_resend r;
				if (wire_resend_decode(p, m[i].hdr.length, &r) == 0 && r.stream == STREAM &&
				    r.first >= 1 && r.last <= f->high && r.first <= r.last) {
					uint64_t first = MAX(r.first, f->released + 1);
					f->resends++;
					if (first <= r.last)
						send_items(f, first, r.last, &m[i].peer);
				}
			} else if (m[i].hdr.type == WIRE_T_RESULT) {
				struct wire_result_msg rm;
				assert_int_equal(wire_result_decode(p, m[i].hdr.length, 1u << 20, &rm), 0);
				assert_int_equal(rm.stream, STREAM);
				struct wire_result_rec rec;
				int si = server_index(f, &m[i].peer);
				assert_true(si >= 0);
				while (wire_result_next(&rm, &rec)) {
					assert_int_equal(rec.offset, 0);
					assert_int_equal(rec.len, rec.total);
					struct result_view v;
					assert_int_equal(result_decode(rec.data, rec.len, &v), 0);
					if (rec.seq == 0) {
						/* a READ answer */
						f->read_rid = rec.request;
						f->read_code = v.code;
						struct result_stmt st;
						int has = result_next(&v, &st);
						if (has && st.errmsg)
							fprintf(stderr, "# read error: %.*s\n", (int)st.errmsg_len, st.errmsg);
						f->read_name[0] = '\0';
						if (has && st.ncols > 0) {
							const uint8_t *np = st.names;
							uint16_t nl;
							const char *nm = result_name_next(&np, &nl);
							snprintf(f->read_name, sizeof f->read_name, "%.*s", (int)nl, nm);
						}
						if (has && st.nrows == 1) {
							const uint8_t *rp = st.rows;
							struct wire_value val;
							if (result_row_next(&rp, st.rows + st.rows_len, &val, 1) == 1 &&
							    val.type == WIRE_V_INT)
								f->read_value = val.u.i;
							else if (val.type == WIRE_V_TEXT)
								fprintf(stderr, "# read text: %.*s\n", (int)val.u.b.n,
									(const char *)val.u.b.p);
						}
						continue;
					}
					assert_true(rec.seq <= f->high);
					assert_int_equal(rec.request, rec.seq * 10);
					if (f->got[rec.seq] & (1u << si))
						continue;
					if (f->got[rec.seq] == 0)
						f->code[rec.seq] = v.code;
					else
						assert_int_equal(f->code[rec.seq], v.code); /* determinism */
					f->got[rec.seq] |= (uint8_t)(1u << si);
				}
			}
		}
	}
}

/* Pump until every item 1..last has results from the servers in mask, or
 * timeout; heartbeats every 20 ms.  Returns 1 when complete. */
static int wait_results(struct fix *f, uint64_t last, unsigned mask, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms, next_hb = 0;
	for (;;) {
		uint64_t seq;
		for (seq = 1; seq <= last; seq++)
			if ((f->got[seq] & mask) != mask)
				break;
		if (seq > last)
			return 1;
		uint64_t now = now_ms();
		if (now > end) {
			fprintf(stderr, "missing result for seq %llu (got mask %x)\n", (unsigned long long)seq,
				f->got[seq]);
			return 0;
		}
		if (now >= next_hb) {
			send_heartbeat(f);
			next_hb = now + 20;
		}
		pump(f, 5);
	}
}

/* Wait until every running server has applied `inst`. */
static void wait_applied(struct fix *f, uint64_t inst, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int ok = 1;
		for (int i = 0; i < NSRV; i++) {
			struct server_info in;
			if (!f->srv[i].running)
				continue;
			server_info(f->srv[i].s, &in);
			if (in.applied < inst)
				ok = 0;
		}
		if (ok)
			return;
		assert_true(now_ms() < end);
		pump(f, 5);
	}
}

static uint64_t max_applied(struct fix *f)
{
	uint64_t m = 0;
	for (int i = 0; i < NSRV; i++) {
		struct server_info in;
		if (!f->srv[i].running)
			continue;
		server_info(f->srv[i].s, &in);
		if (in.applied > m)
			m = in.applied;
	}
	return m;
}

/* Every running server at the same instance with the same digest.  The
 * cluster may still choose instances after the last result (a leader's
 * no-ops, a configuration coming into force): read again until every
 * server reports the same instance (5 s at most), then compare. */
static void check_digests(struct fix *f)
{
	for (int attempt = 0;; attempt++) {
		uint64_t inst = max_applied(f);
		wait_applied(f, inst, 5000);
		char hex[NSRV][33];
		uint64_t in[NSRV];
		int first = -1, same = 1;
		for (int i = 0; i < NSRV; i++) {
			if (!f->srv[i].running)
				continue;
			assert_int_equal(server_digest(f->srv[i].s, &in[i], hex[i]), 0);
			if (first < 0)
				first = i;
			else if (in[i] != in[first])
				same = 0;
		}
		if (first < 0)
			return;
		if (!same && attempt < 50) {
			usleep(100000);
			continue;
		}
		for (int i = first + 1; i < NSRV; i++) {
			if (!f->srv[i].running)
				continue;
			assert_int_equal(in[i], in[first]);
			assert_string_equal(hex[i], hex[first]);
		}
		return;
	}
}

static void load(struct fix *f, uint64_t first, uint64_t last, int64_t base)
{
	for (uint64_t seq = first; seq <= last; seq++)
		make_item(f, seq, "INSERT INTO t(id, v) VALUES(?1, ?2)", 2, base + (int64_t)seq, (int64_t)seq * 3);
}

/* Send a READ of sql to server i (run once it has applied min_inst, within
 * deadline_ms) without waiting for its answer. */
/* Items first..last (load) sent to every server; true when the servers
 * of mask answered them all within 10 s. */
static bool write_range(struct fix *f, uint64_t first, uint64_t last, unsigned mask)
{
	load(f, first, last, 0);
	send_items(f, first, last, NULL);
	return wait_results(f, last, mask, 10000);
}

/* Table t (item 1) and items 2..last in it, answered by every server. */
static void table_and_rows(struct fix *f, uint64_t last)
{
	make_item(f, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)", 0, 0, 0);
	send_items(f, 1, 1, NULL);
	assert_true(write_range(f, 2, last, 0x7));
}

static void send_read(struct fix *f, int i, const char *sql, uint64_t min_inst, uint64_t rid, uint32_t deadline_ms)
{
	struct proxy_item_out out;
	struct proxy_item_in in = {.sql = sql, .len = strlen(sql), .stream = STREAM, .request = rid,
				   .now_us = 1700000000000000, .seed = 1};
	int rc = proxy_item_build(&in, &out, NULL);
	assert_int_equal(rc, PROXY_ITEM_READ);
	uint8_t buf[4096];
	struct wire_read r = {.stream = STREAM, .rid = rid, .min_instance = min_inst, .deadline_ms = deadline_ms,
			      .item = out.buf, .item_len = (uint32_t)out.len};
	long n = wire_read_build(buf, sizeof buf, &PROXY_FROM, &r);
	free(out.buf);
	assert_true(n > 0);
	struct transport_msg m = {.buf = buf, .len = (uint32_t)n, .peer = {0x7f000001, f->ports[i]}};
	assert_int_equal(transport_send_to(f->t, &m, 1), 1);
	f->read_value = -1;
}

/* Wait up to ms for the answer of READ rid: 1 (f->read_code, read_value
 * hold it) or 0. */
static int wait_read(struct fix *f, uint64_t rid, uint64_t ms)
{
	uint64_t end = now_ms() + ms;
	while (f->read_rid != rid && now_ms() < end)
		pump(f, 5);
	return f->read_rid == rid;
}

/* Send a READ of sql to server i (run once it has applied min_inst) and
 * return the integer in the first column of its one row. */
static int64_t do_read(struct fix *f, int i, const char *sql, uint64_t min_inst, uint64_t rid)
{
	send_read(f, i, sql, min_inst, rid, 5000);
	assert_true(wait_read(f, rid, 5000));
	assert_int_equal(f->read_code, 0);
	return f->read_value;
}

/* ---- Tests ---- */

/* Items sent to three servers (with loss towards one) are ordered and
 * applied everywhere: results for every item, equal digests. */
static void test_cluster_applies(void **state)
{
	struct fix *f = *state;
	f->drop_every = 7;
	make_item(f, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)", 0, 0, 0);
	send_items(f, 1, 1, NULL);
	assert_true(wait_results(f, 1, 0x7, 10000));
	assert_int_equal(f->code[1], 0);

	/* MTR_TEST_ITEMS raises the count for a longer measurement */
	uint64_t n = 5000;
	const char *env = getenv("MTR_TEST_ITEMS");
	if (env && strtoull(env, NULL, 10) >= 100)
		n = MIN(strtoull(env, NULL, 10), MAX_ITEMS - 10);
	load(f, 2, n + 1, 0);
	uint64_t t0 = now_mono_ns();
	for (uint64_t s = 2; s <= n + 1; s += 500) {
		uint64_t e = s + 499 > n + 1 ? n + 1 : s + 499;
		send_items(f, s, e, NULL);
		pump(f, 0);
	}
	assert_true(wait_results(f, n + 1, 0x7, 15000));
	double secs = (double)(now_mono_ns() - t0) / 1e9;
	for (uint64_t s = 1; s <= n + 1; s++)
		assert_int_equal(f->code[s], 0);
	fprintf(stderr, "# %llu items through 3 in-process servers in %.3f s: %.0f items/s (%u RESENDs answered)\n",
		(unsigned long long)n, secs, (double)n / secs, f->resends);
	check_digests(f);

	/* large items travel as fragments (some lost towards server 2) */
	static char big[6000];
	memset(big, 'x', sizeof big - 1);
	for (uint64_t seq = n + 2; seq <= n + 4; seq++) {
		struct cproto_bind b[2] = {{.index = 1, .v = {.type = WIRE_V_INT, .u.i = (int64_t)seq + 100000}},
					  {.index = 2, .v = {.type = WIRE_V_TEXT, .u.b = {big, (uint32_t)strlen(big)}}}};
		struct proxy_item_out out;
		const char *sql = "INSERT INTO t(id, v) VALUES(?1, ?2)";
		struct proxy_item_in in = {.sql = sql, .len = strlen(sql), .binds = b, .nbinds = 2, .stream = STREAM,
					   .seq = seq, .request = seq * 10, .now_us = 1700000000000000, .seed = seq};
		assert_int_equal(proxy_item_build(&in, &out, NULL), 0);
		f->item[seq] = out.buf;
		f->ilen[seq] = out.len;
	}
	send_items(f, n + 2, n + 4, NULL);
	assert_true(wait_results(f, n + 4, 0x7, 10000));
	for (uint64_t s = n + 2; s <= n + 4; s++)
		assert_int_equal(f->code[s], 0);
	check_digests(f);
	n += 3;

	/* a duplicate key fails alone, identically everywhere */
	make_item(f, n + 2, "INSERT INTO t(id, v) VALUES(?1, ?2)", 2, 5, 0);
	send_items(f, n + 2, n + 2, NULL);
	assert_true(wait_results(f, n + 2, 0x7, 10000));
	assert_int_equal(f->code[n + 2] & 0xff, SQLITE_CONSTRAINT);
	check_digests(f);
}

/* The cluster tables and a READ datagram. */
static void test_read_and_tables(void **state)
{
	struct fix *f = *state;
	table_and_rows(f, 11);
	uint64_t inst = max_applied(f);
	wait_applied(f, inst, 5000);

	/* READ: count the rows on server 1 once it has applied inst */
	assert_int_equal(do_read(f, 1, "SELECT count(*) AS n FROM t", inst, 77), 10);
	assert_string_equal(f->read_name, "n"); /* column names travel with the result */
	/* the cluster tables, from the server's own state */
	assert_int_equal(do_read(f, 0, "SELECT count(*) FROM mtr_members WHERE alive = 1", 0, 78), 3);
	assert_int_equal(do_read(f, 2, "SELECT count(*) FROM mtr_members WHERE role = 'leader'", 0, 79), 1);
	/* the configuration in force: cluster.servers, all voters */
	assert_int_equal(do_read(f, 1, "SELECT count(*) FROM mtr_members WHERE membership = 'voter'", 0, 80), 3);
	/* mtr_streams is refreshed every 20 ms: ask until it shows the last item */
	int64_t wm = 0;
	for (uint64_t rid = 200; rid < 300 && wm != 11; rid++)
		wm = do_read(f, 0, "SELECT watermark FROM mtr_streams", 0, rid);
	assert_int_equal(wm, 11);
	assert_true(do_read(f, 0, "SELECT sum(items) FROM mtr_instances", 0, 81) >= 11);

	/* deadlines: an endless read and one waiting for an instance nobody
	 * applies end with SQLITE_INTERRUPT at their deadline */
	static const char endless[] = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";
	uint64_t t0 = now_ms();
	send_read(f, 1, endless, 0, 90, 300);
	assert_true(wait_read(f, 90, 5000));
	assert_int_equal(f->read_code, SQLITE_INTERRUPT);
	assert_true(now_ms() - t0 >= 250);
	t0 = now_ms();
	send_read(f, 1, "SELECT 1", inst + 1000, 91, 200);
	assert_true(wait_read(f, 91, 5000));
	assert_int_equal(f->read_code, SQLITE_INTERRUPT);
	assert_true(now_ms() - t0 < 3000);
	/* CANCEL_READ stops a running read (no answer comes) and a repeat of a
	 * READ still held is ignored */
	send_read(f, 2, endless, 0, 92, 60000);
	send_read(f, 2, endless, 0, 92, 60000);
	pump(f, 200);
	uint8_t cbuf[WIRE_CANCEL_READ_SIZE + WIRE_OVERHEAD];
	struct wire_cancel_read cr = {.stream = STREAM, .rid = 92};
	struct transport_msg cm = {.buf = cbuf, .len = (uint32_t)wire_cancel_read_build(cbuf, &PROXY_FROM, &cr),
				   .peer = {0x7f000001, f->ports[2]}};
	assert_int_equal(transport_send_to(f->t, &cm, 1), 1);
	assert_false(wait_read(f, 92, 500));
	int64_t cancelled = 0, repeats = 0, running = 1;
	for (uint64_t rid = 300; rid < 400 && (cancelled != 1 || running != 0); rid += 3) {
		pump(f, 100);
		cancelled = do_read(f, 2, "SELECT value FROM mtr_stats WHERE process = 'server 2' AND name = 'reads.cancelled'", 0, rid);
		repeats = do_read(f, 2, "SELECT value FROM mtr_stats WHERE process = 'server 2' AND name = 'reads.repeats'", 0, rid + 1);
		running = do_read(f, 2, "SELECT value FROM mtr_stats WHERE process = 'server 2' AND name = 'reads.running'", 0, rid + 2);
	}
	assert_int_equal(cancelled, 1);
	assert_int_equal(repeats, 1);
	assert_int_equal(running, 0);
	/* short reads (SELECT 1: under one grain of VM steps) are answered by
	 * the network thread itself; the endless one was begun there twice
	 * (the READ and its repeat) and handed to a reader each time
	 * (doc/server.md "Quick reads") */
	int64_t quick = 0, handed = 0;
	for (uint64_t rid = 400; rid < 600 && (quick < 3 || handed < 2); rid += 3) {
		pump(f, 100);
		assert_int_equal(do_read(f, 2, "SELECT 1", 0, rid), 1);
		quick = do_read(f, 2, "SELECT value FROM mtr_stats WHERE process = 'server 2' AND name = 'reads.quick'", 0, rid + 1);
		handed = do_read(f, 2, "SELECT value FROM mtr_stats WHERE process = 'server 2' AND name = 'reads.handed'", 0, rid + 2);
	}
	assert_true(quick >= 3);
	assert_true(handed >= 2);

	struct server_info in;
	server_info(f->srv[0].s, &in);
	assert_true(in.applied >= inst);
	assert_true(in.items_applied >= 11);
	/* one leader (an old one steps down when it hears the new ballot) */
	int leaders = 0;
	uint64_t end = now_ms() + 5000;
	do {
		pump(f, 10);
		leaders = 0;
		for (int i = 0; i < NSRV; i++) {
			server_info(f->srv[i].s, &in);
			leaders += in.role == 2;
		}
	} while (leaders != 1 && now_ms() < end);
	assert_int_equal(leaders, 1);
}

/* A server stopped while the others go on recovers its instance from its
 * files, catches up (CATCHUP + item RESEND) and reaches the same digest. */
/* Disk mode (invariant 4, doc/storage.md "One commit per accept"): every
 * ACCEPTED a server sent was checked when it left, and none left before
 * its accept record and every item it names were durable. */
static void check_durable_answers(struct fix *f)
{
	uint64_t checked = 0;
	for (int i = 0; i < NSRV; i++) {
		if (f->srv[i].s == NULL)
			continue;
		struct server_info in;
		server_info(f->srv[i].s, &in);
		assert_int_equal(in.acc_early, 0);
		checked += in.acc_checked;
	}
	assert_true(checked > 0);
}

static void test_restart_catches_up(void **state)
{
	struct fix *f = *state;
	table_and_rows(f, 501);
	check_digests(f);
	check_durable_answers(f);
	struct server_info before;
	server_info(f->srv[2].s, &before);
	srv_stop(f, 2);

	load(f, 502, 1501, 0);
	uint64_t t0 = now_mono_ns();
	send_items(f, 502, 1501, NULL);
	assert_true(wait_results(f, 1501, 0x3, 10000));
	fprintf(stderr, "# 1000 items through 2 of 3 servers, disk durability: %.0f items/s\n",
		1000.0 / ((double)(now_mono_ns() - t0) / 1e9));

	srv_start(f, 2);
	struct server_info after;
	server_info(f->srv[2].s, &after);
	assert_int_equal(after.applied, before.applied); /* recovered from the replica database */
	uint64_t inst = max_applied(f);
	wait_applied(f, inst, 10000);
	check_digests(f);
	check_durable_answers(f);
}

/* The peer table follows the configuration (doc/server.md "Peers"): with
 * mtr_conf recording, at instance 1, the servers 0..2 and a learner 5 at
 * a socket of the test, the restarted servers send to 5 (the leader's Paxos
 * broadcasts, every server's STATUS carrying the membership). */
static void test_peer_table_follows_conf(void **state)
{
	struct fix *f = *state;
	make_item(f, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)", 0, 0, 0);
	send_items(f, 1, 1, NULL);
	assert_true(wait_results(f, 1, 0x7, 10000));
	/* server 5: a socket of the cluster (same key) */
	struct transport_config tc;
	transport_config_init(&tc);
	tc.bind.ip = 0x7f000001;
	tc.cluster = 1;
	tc.key = KEY;
	tc.mtu = WIRE_MAX_DGRAM;
	struct transport *x;
	assert_int_equal(transport_open(&tc, &x), 0);
	struct batch_conf c = {.n = 4};
	for (uint8_t i = 0; i < NSRV; i++)
		c.m[i] = (struct batch_member){.id = i, .voter = 1}; /* no address: cluster.servers' */
	c.m[3] = (struct batch_member){.id = 5, .voter = 0};
	snprintf(c.m[3].addr, sizeof c.m[3].addr, "127.0.0.1:%u", x->cfg.bind.port);
	struct batch b = {0};
	assert_int_equal(batch_set_conf(&b, &c), 0);
	uint8_t enc[1024];
	int n = batch_encode(&b, enc, sizeof enc);
	assert_true(n > 0);
	batch_free(&b);
	for (int i = 0; i < NSRV; i++) {
		srv_stop(f, i);
		char path[512];
		snprintf(path, sizeof path, "%s/s%d/replica.db", f->dir, i);
		sqlite3 *db;
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO mtr_conf VALUES(1, ?1)", -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_blob(st, 1, enc, n, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	for (int i = 0; i < NSRV; i++)
		srv_start(f, i);
	/* 5 hears Paxos and STATUS from every server; STATUS names 5 at its address */
	unsigned paxos_from = 0, status_from = 0;
	int named = 0;
	uint64_t end = now_mono_ns() + 10000000000ull;
	struct transport_msg msgs[64];
	while (now_mono_ns() < end && !(paxos_from && status_from == 0x7 && named)) {
		transport_wait(x, 20);
		int k = transport_recv(x, msgs, 64);
		for (int i = 0; i < k; i++) {
			const struct transport_msg *m = &msgs[i];
			if (m->hdr.sender >= NSRV)
				continue;
			if (m->hdr.type == WIRE_T_PAXOS)
				paxos_from |= 1u << m->hdr.sender;
			struct wire_status ws;
			if (m->hdr.type != WIRE_T_STATUS || wire_status_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &ws))
				continue;
			status_from |= 1u << m->hdr.sender;
			/* in force from 1 + PAXOS_CONF_DELAY: version 2 * 9 + 1 once applied there, 2 * 9 before */
			if ((ws.conf == 2 * (1 + PAXOS_CONF_DELAY) || ws.conf == 2 * (1 + PAXOS_CONF_DELAY) + 1) &&
			    ws.nmembers == 4 && ws.m[3].id == 5 && ws.m[3].flags == 0 && ws.m[3].ip == 0x7f000001 &&
			    ws.m[3].port == x->cfg.bind.port && ws.m[0].port == f->ports[0])
				named = 1;
		}
	}
	assert_true(paxos_from != 0); /* the leader's broadcasts (heartbeats) */
	assert_int_equal(status_from, 0x7);
	assert_true(named);
	/* the cluster still works (5 never answers: a learner) */
	load(f, 2, 50, 0);
	send_items(f, 2, 50, NULL);
	assert_true(wait_results(f, 50, 0x7, 10000));
	check_digests(f);
	transport_close(x);
}

/* Item 1 creates table t; wait until every server applied it. */
static void create_table(struct fix *f)
{
	make_item(f, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)", 0, 0, 0);
	send_items(f, 1, 1, NULL);
	assert_true(wait_results(f, 1, 0x7, 10000));
}

/* ---- Membership changes (server_members.c) ---- */

struct mans {
	int leader;        /* the server that answered other than "not the leader" */
	int32_t status;
	uint8_t id;
	uint64_t instance;
	char msg[WIRE_MEMBER_MSG_MAX + 1];
};

/* Ask every server for a change (as a proxy forwards it to the leader)
 * until one answers other than MTR_EAGAIN (10 s at most); its answer in *a. */
static void member_ask(struct fix *f, uint8_t op, uint8_t id, const char *addr, struct mans *a)
{
	static uint64_t token = 1000;
	uint64_t end = now_ms() + 10000;
	a->leader = -1;
	while (a->leader < 0 && now_ms() < end) {
		struct wire_member rq = {.kind = WIRE_MEMBER_REQUEST, .token = ++token, .op = op, .id = id, .addr = addr,
					 .addr_len = (uint8_t)(addr ? strlen(addr) : 0)};
		uint8_t dg[WIRE_MEMBER_MAX + WIRE_OVERHEAD];
		long n = wire_member_build(dg, &PROXY_FROM, &rq);
		assert_true(n > 0);
		for (int i = 0; i < NSRV; i++) {
			struct transport_msg m = {.buf = dg, .len = (uint32_t)n, .peer = {0x7f000001, f->ports[i]}};
			if (f->srv[i].running)
				assert_int_equal(transport_send_to(f->t, &m, 1), 1);
		}
		uint64_t wait_end = now_ms() + 3000;
		while (a->leader < 0 && now_ms() < wait_end) {
			transport_wait(f->t, 20);
			struct transport_msg ms[64];
			int k = transport_recv(f->t, ms, 64);
			for (int i = 0; i < k; i++) {
				struct wire_member an;
				if (ms[i].hdr.type != WIRE_T_MEMBERSHIP ||
				    wire_member_decode(ms[i].buf + WIRE_HDR_SIZE, ms[i].hdr.length, &an) != 0 ||
				    an.kind != WIRE_MEMBER_ANSWER || an.token != token || an.status == MTR_EAGAIN)
					continue;
				a->leader = server_index(f, &ms[i].peer);
				a->status = an.status;
				a->id = an.id;
				a->instance = an.instance;
				snprintf(a->msg, sizeof a->msg, "%.*s", (int)an.msg_len, an.msg);
			}
		}
	}
	assert_true(a->leader >= 0);
	fprintf(stderr, "# %s %u%s%s: %s (server %d)\n", wire_member_op_name(op), id, addr ? " " : "", addr ? addr : "",
		a->msg, a->leader);
}

/* As member_ask, asked again while a change is pending (MTR_EBUSY with
 * "pending"). */
static void member_ask_settled(struct fix *f, uint8_t op, uint8_t id, const char *addr, struct mans *a)
{
	uint64_t end = now_ms() + 10000;
	for (;;) {
		member_ask(f, op, id, addr, a);
		if (a->status != MTR_EBUSY || !strstr(a->msg, "pending") || now_ms() >= end)
			break;
		usleep(100000);
	}
}

/* The leader's checks of a membership change, and a learner added and
 * removed: an unknown id, a bad address, a voter promoted again, a learner
 * not caught up, a removed id, and a removal that would leave fewer voters
 * up than a majority. */
static void test_membership_changes(void **state)
{
	struct fix *f = *state;
	create_table(f);
	struct mans a;
	member_ask(f, WIRE_MEMBER_REMOVE, 9, NULL, &a);
	assert_int_equal(a.status, MTR_ENOENT);
	member_ask(f, WIRE_MEMBER_ADD, 0, "not-an-address", &a);
	assert_int_equal(a.status, MTR_EINVAL);
	member_ask(f, WIRE_MEMBER_PROMOTE, 0, NULL, &a);
	assert_int_equal(a.status, 0); /* a voter already */
	/* a learner at an address nobody listens on: id 3, the next one */
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%u", free_port());
	member_ask(f, WIRE_MEMBER_ADD, 0, addr, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.id, 3);
	assert_true(a.instance > 0);
	member_ask_settled(f, WIRE_MEMBER_PROMOTE, 3, NULL, &a);
	assert_int_equal(a.status, MTR_EBUSY);
	assert_non_null(strstr(a.msg, "not caught up"));
	member_ask_settled(f, WIRE_MEMBER_REMOVE, 3, NULL, &a);
	assert_int_equal(a.status, 0);
	member_ask_settled(f, WIRE_MEMBER_REMOVE, 3, NULL, &a);
	assert_int_equal(a.status, MTR_EINVAL);
	assert_non_null(strstr(a.msg, "was removed"));
	/* the cluster still writes */
	load(f, 2, 20, 0);
	send_items(f, 2, 20, NULL);
	assert_true(wait_results(f, 20, 0x7, 10000));
	/* a follower stopped, and seen down by the leader once the health
	 * window (1 s here) has passed without its STATUS: removing the other
	 * follower would leave 1 voter up of 2 */
	int L = a.leader, F1 = (L + 1) % NSRV, F2 = (L + 2) % NSRV;
	srv_stop(f, F1);
	usleep(2000000);
	member_ask(f, WIRE_MEMBER_REMOVE, (uint8_t)F2, NULL, &a);
	assert_int_equal(a.status, MTR_EINVAL);
	assert_non_null(strstr(a.msg, "fewer than a majority"));
	srv_start(f, F1);
}

/* A server that fell behind more than compact_lag instances while the
 * others compacted gets a snapshot over the TCP side channel, installs it
 * and continues with the others. */
static void test_snapshot_transfer(void **state)
{
	struct fix *f = *state;
	make_item(f, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)", 0, 0, 0);
	load(f, 2, 11, 0);
	send_items(f, 1, 11, NULL);
	assert_true(wait_results(f, 11, 0x7, 10000));
	check_digests(f);
	struct server_info before;
	server_info(f->srv[2].s, &before);
	srv_stop(f, 2);

	/* one instance per item: wait for each result before the next */
	uint64_t seq;
	for (seq = 12; seq <= 80; seq++) {
		load(f, seq, seq, 0);
		send_items(f, seq, seq, NULL);
		assert_true(wait_results(f, seq, 0x3, 5000));
	}
	/* the others released past what server 2 has */
	struct server_info in;
	uint64_t end = now_ms() + 5000;
	do {
		pump(f, 10);
		server_info(f->srv[0].s, &in);
	} while (in.released <= before.applied + 1 && now_ms() < end);
	assert_true(in.released > before.applied + 1);

	srv_start(f, 2);
	/* more writes while it installs and catches up */
	load(f, 81, 100, 0);
	send_items(f, 81, 100, NULL);
	assert_true(wait_results(f, 100, 0x3, 10000));
	wait_applied(f, max_applied(f), 10000);
	check_digests(f);
	server_info(f->srv[2].s, &in);
	assert_true(in.applied > before.applied);
	assert_int_equal(do_read(f, 2, "SELECT count(*) FROM t", in.applied, 500), 99);
}

#define FORGED_BALLOT 0xffffffffffffff01ull

/* Send PAXOS PREPARE(ballot) to server i as if from server `as` (a peer that
 * holds the cluster key: this cluster has none). */
static void forge_prepare(struct fix *f, int i, uint32_t as, uint64_t ballot)
{
	uint8_t buf[256];
	struct wire_from from = { 1, as, NULL };
	struct paxos_msg pm = { .type = PAXOS_PREPARE, .ballot = ballot, .inst = 1 };
	long n = wire_paxos_build(buf, sizeof buf, &from, &pm);
	assert_true(n > 0);
	struct transport_msg m = { .buf = buf, .len = (uint32_t)n, .peer = { 0x7f000001, f->ports[i] } };
	assert_int_equal(transport_send_to(f->t, &m, 1), 1);
}

/* Send items first..last and wait for their results from the servers in
 * mask; returns the milliseconds it took. */
static uint64_t timed_write(struct fix *f, uint64_t first, uint64_t last, unsigned mask)
{
	uint64_t t0 = now_ms();
	load(f, first, last, 0);
	send_items(f, first, last, NULL);
	assert_true(wait_results(f, last, mask, 10000));
	return now_ms() - t0;
}

/* Issue 12: a PREPARE with ballot 0xffffffffffffff01 (round 2^56 - 1) from
 * a keyed insider used to be promised and persisted everywhere, after which
 * every new ballot wrapped below it: no write, ever, also after restarts.
 * Now it is beyond every server's ballot window and dropped.  Then server 2
 * is restarted with that promise on its disk (what the attack left before
 * the fix): it keeps it (a promise never goes down), cannot vote, but the
 * other two go on and it still applies everything as a learner. */
static void test_huge_ballot(void **state)
{
	struct fix *f = *state;
	create_table(f);
	timed_write(f, 2, 11, 0x7);

	/* the forged PREPARE to every server, as if from another one */
	for (int i = 0; i < NSRV; i++)
		forge_prepare(f, i, (uint32_t)(i + 1) % NSRV, FORGED_BALLOT);
	pump(f, 50);
	uint64_t ms = timed_write(f, 12, 21, 0x7);
	fprintf(stderr, "# writes after the forged PREPARE: answered in %llu ms (election timeout 200 ms)\n",
		(unsigned long long)ms);
	for (int i = 0; i < NSRV; i++) {
		struct server_info in;
		server_info(f->srv[i].s, &in);
		assert_true(paxos_ballot_round(in.ballot) < PAXOS_ROUND_CLIMB_MAX); /* never promised */
	}
	check_digests(f);

	/* server 2 restarted with the forged promise on disk */
	srv_stop(f, 2);
	char dir[300];
	snprintf(dir, sizeof dir, "%s/s2", f->dir);
	struct pstore *ps = NULL;
	assert_int_equal(pstore_open(dir, &ps), 0);
	struct paxos_persist c = { .kind = PAXOS_PERSIST_PROMISE, .ballot = FORGED_BALLOT };
	assert_int_equal(pstore_persist(ps, &c), 0);
	pstore_close(ps);
	srv_start(f, 2);
	ms = timed_write(f, 22, 121, 0x3);
	fprintf(stderr, "# writes with server 2 holding promise 0xffffffffffffff01: answered in %llu ms\n",
		(unsigned long long)ms);
	/* server 2 applies them too (CATCHUP from the leader it NACKs) */
	timed_write(f, 122, 131, 0x7);
	wait_applied(f, max_applied(f), 10000);
	check_digests(f);
	struct server_info in;
	server_info(f->srv[2].s, &in);
	assert_int_equal(in.ballot, FORGED_BALLOT); /* kept: see doc/paxos.md */
	assert_int_equal(do_read(f, 2, "SELECT count(*) FROM t", in.applied, 600), 130);
}

/* Every server stops while items first..last are in flight: the proxy has
 * released what came before (it has their results) and has sent these to
 * nobody. */
static void crash_in_flight(struct fix *f, uint64_t first, uint64_t last)
{
	f->released = first - 1;
	for (int i = 0; i < NSRV; i++)
		srv_stop(f, i);
	load(f, first, last, 0);
	send_items(f, first, last, NULL);
}

/* Issue 14, the fault suite's power_mem: every server of a memory-mode
 * cluster stops (their items are gone) while writes are in flight, and the
 * proxy, which released what has results, only heartbeats and answers
 * RESENDs afterwards: no new item comes.  The restarted servers must count
 * their applied prefix as held at once, or the resent items above it are
 * never ordered.  First with two of three back (the third is not heard:
 * releasing the prefix would wait for it), then with all three. */
static void test_power_loss_memory(void **state)
{
	struct fix *f = *state;
	create_table(f);
	timed_write(f, 2, 50, 0x7);
	crash_in_flight(f, 51, 60);
	srv_start(f, 0);
	srv_start(f, 1);
	uint64_t t0 = now_ms();
	assert_true(wait_results(f, 60, 0x3, 5000));
	fprintf(stderr, "# memory mode, 2 of 3 restarted: items in flight answered %llu ms after the restart\n",
		(unsigned long long)(now_ms() - t0));
	srv_start(f, 2);
	timed_write(f, 61, 70, 0x7);
	crash_in_flight(f, 71, 80);
	for (int i = 0; i < NSRV; i++)
		srv_start(f, i);
	t0 = now_ms();
	assert_true(wait_results(f, 80, 0x7, 5000));
	fprintf(stderr, "# memory mode, 3 of 3 restarted: items in flight answered %llu ms after the restart\n",
		(unsigned long long)(now_ms() - t0));
	check_digests(f);
	struct server_info in;
	server_info(f->srv[2].s, &in);
	assert_int_equal(do_read(f, 2, "SELECT count(*) FROM t", in.applied, 700), 79);
}

/* transport.mtu: auto by default, resolved from the route toward the
 * servers (loopback carries the largest datagram); a size is kept as set;
 * anything else is refused with the key's name. */
static void test_mtu_auto(void **state)
{
	(void)state;
	static const struct conf_key cckeys[] = {CLUSTERCONF_KEYS};
	struct conf *c = NULL;
	char err[256];
	assert_int_equal(conf_load("/dev/null", cckeys, sizeof cckeys / sizeof cckeys[0], &c, err, sizeof err), 0);
	assert_int_equal(conf_set(c, "cluster.servers=127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403", err, sizeof err), 0);
	assert_int_equal(conf_set(c, "cluster.insecure=yes", err, sizeof err), 0);
	struct clusterconf cc;
	assert_int_equal(clusterconf_read(c, &cc, err, sizeof err), 0);
	assert_int_equal(cc.mtu, 0); /* auto */
	unsigned lo = transport_route_mtu(&cc.servers[0]);
	assert_true(lo >= 1500); /* lo: 65536 here, never below Ethernet's */
	uint32_t want = lo - 28 > WIRE_MAX_DGRAM ? WIRE_MAX_DGRAM : lo - 28;
	assert_int_equal(clusterconf_mtu(&cc, -1), want);
	assert_int_equal(clusterconf_mtu(&cc, 1), want);
	strcpy(cc.kind, "dpdk");
	assert_int_equal(clusterconf_mtu(&cc, -1), WIRE_DEFAULT_MTU);

	assert_int_equal(conf_set(c, "transport.mtu=8972", err, sizeof err), 0);
	assert_int_equal(clusterconf_read(c, &cc, err, sizeof err), 0);
	assert_int_equal(clusterconf_mtu(&cc, -1), 8972);
	assert_int_equal(conf_set(c, "transport.mtu=8k", err, sizeof err), 0);
	assert_int_equal(clusterconf_read(c, &cc, err, sizeof err), 0);
	assert_int_equal(cc.mtu, 8192);
	assert_int_equal(conf_set(c, "transport.mtu=big", err, sizeof err), 0);
	assert_int_equal(clusterconf_read(c, &cc, err, sizeof err), MTR_ECONFIG);
	assert_non_null(strstr(err, "transport.mtu"));
	assert_int_equal(conf_set(c, "transport.mtu=100", err, sizeof err), 0);
	assert_int_equal(clusterconf_read(c, &cc, err, sizeof err), MTR_ECONFIG);
	assert_non_null(strstr(err, "out of range"));
	conf_free(c);
}

/* ---- a full disk met by the Paxos log alone ---- */

/*
 * pwrite of the code under test goes through here (-Wl,--wrap=pwrite,
 * mk/tests.mk): while fail_paxos_dir is set, a write to a file whose path
 * holds it fails with ENOSPC, as on a full disk, while every other file
 * (the item log, the replica) is written.  That is the case of
 * src/server/server_disk.c commit_once: the accept durable in the item
 * log, its copy refused by the Paxos log's file.
 */
ssize_t __real_pwrite(int fd, const void *b, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *b, size_t n, off_t off);
static _Atomic(const char *) fail_paxos_dir;
static atomic_uint paxos_refused;

ssize_t __wrap_pwrite(int fd, const void *b, size_t n, off_t off)
{
	const char *dir = atomic_load(&fail_paxos_dir);
	if (dir != NULL) {
		char link[64], path[1024];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t l = readlink(link, path, sizeof path - 1);
		if (l > 0) {
			path[l] = 0;
			if (strstr(path, dir) != NULL) {
				atomic_fetch_add(&paxos_refused, 1);
				errno = ENOSPC;
				return -1;
			}
		}
	}
	return __real_pwrite(fd, b, n, off);
}

/* Server 1's Paxos log refuses its accepts (ENOSPC) while the item log
 * takes them: the server stays up in the full state, the other two go on,
 * and once the disk takes writes again the Paxos log is written whole, the
 * server catches up, and a restart recovers it (doc/server.md "A full
 * disk"). */
static void test_paxos_log_full(void **state)
{
	struct fix *f = *state;
	table_and_rows(f, 201);

	char dir[300];
	snprintf(dir, sizeof dir, "%s/s1/paxos/", f->dir);
	atomic_store(&paxos_refused, 0);
	atomic_store(&fail_paxos_dir, (const char *)dir);
	assert_true(write_range(f, 202, 1201, 0x5)); /* servers 0 and 2 */
	struct server_info in;
	server_info(f->srv[1].s, &in);
	assert_true(atomic_load(&paxos_refused) > 0);
	assert_int_equal(in.disk_full, 1);
	assert_true(f->srv[1].running);

	/* space again: the probe (every FULL_RETRY_MS) finds it, the file is
	 * written whole, the server leaves the state and catches up */
	atomic_store(&fail_paxos_dir, (const char *)NULL);
	uint64_t t0 = now_ms();
	do {
		pump(f, 50);
		server_info(f->srv[1].s, &in);
	} while (in.disk_full && now_ms() - t0 < 10000);
	assert_int_equal(in.disk_full, 0);
	assert_true(write_range(f, 1202, 1301, 0x7));
	wait_applied(f, max_applied(f), 10000);
	check_digests(f);

	/* and from its files after a restart */
	srv_stop(f, 1);
	srv_start(f, 1);
	assert_true(write_range(f, 1302, 1401, 0x7));
	wait_applied(f, max_applied(f), 10000);
	check_digests(f);
	check_durable_answers(f);
}

int main(void)
{
	log_set_level(getenv("MTR_LOG") ? log_level_parse(getenv("MTR_LOG")) : LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mtu_auto),
		cmocka_unit_test_setup_teardown(test_paxos_log_full, setup_disk, teardown),
		cmocka_unit_test_setup_teardown(test_cluster_applies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_and_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_catches_up, setup_disk, teardown),
		cmocka_unit_test_setup_teardown(test_peer_table_follows_conf, setup_disk, teardown),
		cmocka_unit_test_setup_teardown(test_membership_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_transfer, setup_small_lag, teardown),
		cmocka_unit_test_setup_teardown(test_huge_ballot, setup_disk, teardown),
		cmocka_unit_test_setup_teardown(test_power_loss_memory, setup, teardown),
	};
	return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
