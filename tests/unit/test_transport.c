/*
 * test_transport.c - the common transport part and the UDP transport on
 * loopback: address parsing and printing, configuration checks, fan-out to
 * three receivers in one process, batched receive, send_to, the integrity
 * filter (bit flips, other clusters, wrong or missing keys, short and
 * oversize datagrams are dropped and counted by reason while good ones get
 * through), multicast on loopback when the kernel routes it, and a wait()
 * that times out without spinning.
 *
 * Receivers bind 127.0.0.1 port 0 and read back the port the kernel chose
 * (t->cfg.bind), so parallel runs never collide.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "metronome.h"
#include "transport.h"
#include "util.h"
#include "wire.h"

#define LOOPBACK 0x7f000001u
#define CLUSTER 7u

/* ---- helpers ------------------------------------------------------------ */

/* A receiving UDP transport on 127.0.0.1, any port. */
static struct transport *open_rx(uint32_t cluster, const struct wire_key *key, size_t mtu, unsigned batch)
{
	struct transport_config c;
	transport_config_init(&c);
	c.bind.ip = LOOPBACK;
	c.cluster = cluster;
	if (key)
		c.key = *key;
	if (mtu)
		c.mtu = mtu;
	if (batch)
		c.batch = batch;
	c.rcvbuf = 1 << 20;
	struct transport *t = NULL;
	assert_int_equal(transport_open(&c, &t), 0);
	assert_non_null(t);
	assert_int_not_equal(t->cfg.bind.port, 0);
	return t;
}

/* A heartbeat datagram (stream 1, high = seq) in buf; returns its length. */
static uint32_t make_dgram(uint8_t *buf, uint32_t cluster, const struct wire_key *key, uint64_t seq)
{
	struct wire_heartbeat hb = { .stream = 1, .high = seq };
	return (uint32_t)wire_heartbeat_build(buf, &(struct wire_from){ cluster, 42, key }, &hb);
}

/* The seq a received heartbeat carries (0 if it does not decode). */
static uint64_t dgram_seq(const struct transport_msg *m)
{
	struct wire_heartbeat hb;
	if (m->hdr.type != WIRE_T_HEARTBEAT ||
	    wire_heartbeat_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &hb) < 0)
		return 0;
	return hb.high;
}

/*
 * Receive until want datagrams came or timeout_ms passed with nothing new;
 * store their seqs in seqs (at most cap).  Returns the count.  max_batch
 * records the largest count one transport_recv() returned.
 */
static unsigned recv_some(struct transport *t, unsigned want, uint64_t *seqs, unsigned cap, int timeout_ms,
			  unsigned *max_batch)
{
	struct transport_msg m[64];
	unsigned got = 0;
	while (got < want) {
		int r = transport_recv(t, m, 64);
		assert_true(r >= 0);
		if (r == 0) {
			if (transport_wait(t, timeout_ms) == 0)
				break;
			continue;
		}
		if (max_batch && (unsigned)r > *max_batch)
			*max_batch = (unsigned)r;
		for (int i = 0; i < r; i++) {
			assert_int_equal(m[i].peer.ip, LOOPBACK);
			if (got < cap)
				seqs[got] = dgram_seq(&m[i]);
			got++;
		}
	}
	return got;
}

static uint64_t drops_total(const struct transport *t)
{
	struct transport_counters c;
	transport_counters(t, &c);
	uint64_t s = 0;
	for (unsigned i = 0; i < TRANSPORT_DROP__COUNT; i++)
		s += c.drops[i];
	return s;
}

/* ---- transport_addr_parse / transport_addr_format ------------------------ */

static void test_addr_parse(void **state)
{
	struct transport_addr a;
	assert_int_equal(transport_addr_parse("127.0.0.1:9000", 1, &a), 0);
	assert_int_equal(a.ip, LOOPBACK);
	assert_int_equal(a.port, 9000);
	assert_int_equal(transport_addr_parse("239.1.2.3", 7400, &a), 0);
	assert_int_equal(a.ip, 0xef010203u);
	assert_int_equal(a.port, 7400);
	assert_int_equal(transport_addr_parse("0.0.0.0:0", 5, &a), 0);
	assert_int_equal(a.ip, 0);
	assert_int_equal(a.port, 0);
	assert_int_equal(transport_addr_parse("255.255.255.255:65535", 0, &a), 0);
	assert_int_equal(a.ip, 0xffffffffu);
	assert_int_equal(a.port, 65535);

	static const char *bad[] = { "",          "1.2.3",       "1.2.3.4.5",  "256.1.1.1",  "1.2.3.4:",
				     "1.2.3.4:65536", "1.2.3.4:-1", "01.2.3.4",   "1.2.3.4x",   " 1.2.3.4",
				     "1..3.4",    "1.2.3.4:80x", "a.b.c.d",    "1.2.3.4:99999999999" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		a.ip = 99;
		assert_int_equal(transport_addr_parse(bad[i], 1, &a), MTR_EINVAL);
		assert_int_equal(a.ip, 99); /* untouched on error */
	}
	assert_int_equal(transport_addr_parse(NULL, 1, &a), MTR_EINVAL);
}

/* host names: resolved at once; an address stays an address */
static void test_addr_resolve(void **state)
{
	struct transport_addr a;
	char err[256];
	assert_int_equal(transport_addr_resolve("10.1.2.3:7", 1, &a, err, sizeof err), 0);
	assert_int_equal(a.ip, 0x0a010203u);
	assert_int_equal(a.port, 7);
	assert_int_equal(transport_addr_resolve("localhost:7502", 1, &a, err, sizeof err), 0);
	assert_int_equal(a.ip >> 24, 127);
	assert_int_equal(a.port, 7502);
	assert_int_equal(transport_addr_resolve("localhost", 7400, &a, err, sizeof err), 0);
	assert_int_equal(a.port, 7400);
	static const char *bad[] = {"", ":7", "localhost:", "localhost:x", "localhost:65536", "bad host:1",
				    "a/b:1"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = 0;
		assert_int_equal(transport_addr_resolve(bad[i], 1, &a, err, sizeof err), MTR_EINVAL);
		assert_true(err[0] != 0);
	}
	/* .invalid never resolves (RFC 6761) */
	assert_int_equal(transport_addr_resolve("no-such-host.invalid:1", 1, &a, err, sizeof err), MTR_EINVAL);
	assert_non_null(strstr(err, "cannot resolve host 'no-such-host.invalid'"));
}

static void test_addr_format(void **state)
{
	char buf[24];
	struct transport_addr a = { 0xc0a80a01u, 7400 };
	assert_string_equal(transport_addr_format(&a, buf, sizeof buf), "192.168.10.1:7400");
	a = (struct transport_addr){ 0xffffffffu, 65535 };
	assert_string_equal(transport_addr_format(&a, buf, sizeof buf), "255.255.255.255:65535");
	/* round trip */
	struct transport_addr b;
	assert_int_equal(transport_addr_parse(buf, 0, &b), 0);
	assert_int_equal(b.ip, a.ip);
	assert_int_equal(b.port, a.port);
	/* a short buffer is truncated, still terminated */
	char small[6];
	assert_string_equal(transport_addr_format(&a, small, sizeof small), "255.2");
}

/* ---- configuration, dispatch, names ------------------------------------- */

static void test_config_and_open_errors(void **state)
{
	struct transport_config c;
	transport_config_init(&c);
	assert_string_equal(c.kind, "udp");
	assert_int_equal(c.mtu, WIRE_DEFAULT_MTU);
	assert_int_equal(c.mcast_ttl, 1);
	assert_int_equal(c.mcast_loop, 1);
	assert_true(c.batch > 0);
	assert_true(c.rcvbuf > 0 && c.sndbuf > 0);

	struct transport *t = (struct transport *)&c; /* must be reset to NULL on failure */
	c.kind = "carrier-pigeon";
	assert_int_equal(transport_open(&c, &t), MTR_ENOTSUP);
	assert_null(t);
	/* without transport_dpdk_enable() (the client library's case) "dpdk" is
	 * refused, whether or not this build has DPDK */
	c.kind = "dpdk";
	assert_int_equal(transport_open(&c, &t), MTR_ENOTSUP);
	assert_null(t);
	transport_config_init(&c);
	c.mtu = 100;
	assert_int_equal(transport_open(&c, &t), MTR_ECONFIG);
	c.mtu = 70000;
	assert_int_equal(transport_open(&c, &t), MTR_ECONFIG);
	transport_config_init(&c);
	c.ndests = TRANSPORT_MAX_DESTS + 1;
	assert_int_equal(transport_open(&c, &t), MTR_ECONFIG);

	/* a zeroed configuration opens a UDP receiver on any port */
	memset(&c, 0, sizeof c);
	c.bind.ip = LOOPBACK;
	assert_int_equal(transport_open(&c, &t), 0);
	assert_string_equal(t->ops->name, "udp");
	assert_int_equal(t->cfg.mtu, WIRE_DEFAULT_MTU);
	assert_true(transport_fd(t) >= 0);
	/* the same port twice: refused, not shared */
	struct transport_config c2 = c;
	c2.bind = t->cfg.bind;
	struct transport *t2 = NULL;
	assert_int_equal(transport_open(&c2, &t2), MTR_EEXIST);
	assert_null(t2);
	/* sending to a group that is not configured */
	uint8_t buf[64];
	struct transport_msg m = { .buf = buf, .len = make_dgram(buf, 0, NULL, 1) };
	assert_int_equal(transport_send_group(t, &m, 1), MTR_ECONFIG);
	transport_close(t);
	transport_close(NULL);
}

static void test_drop_names(void **state)
{
	assert_string_equal(transport_drop_name(TRANSPORT_DROP_TRUNCATED), "truncated");
	assert_string_equal(transport_drop_name(TRANSPORT_DROP_INTEGRITY), "integrity");
	assert_string_equal(transport_drop_name(TRANSPORT_DROP_CLUSTER), "cluster");
	assert_string_equal(transport_drop_name(TRANSPORT_DROP_OVERFLOW), "overflow");
	assert_string_equal(transport_drop_name(TRANSPORT_DROP_NOTIP), "notip");
	assert_string_equal(transport_drop_name(TRANSPORT_DROP__COUNT), "?");
}

/* ---- fan-out and batches ------------------------------------------------ */

#define FAN_N 40u

static void test_fanout_three_receivers(void **state)
{
	struct transport *rx[3];
	rx[0] = open_rx(CLUSTER, NULL, 0, 0);
	rx[1] = open_rx(CLUSTER, NULL, 0, 0);
	rx[2] = open_rx(CLUSTER, NULL, 0, 8); /* small batches */

	struct transport_config c;
	transport_config_init(&c);
	c.no_recv = 1;
	c.cluster = CLUSTER;
	c.ndests = 3;
	for (int i = 0; i < 3; i++)
		c.dests[i] = rx[i]->cfg.bind;
	struct transport *tx = NULL;
	assert_int_equal(transport_open(&c, &tx), 0);

	static uint8_t bufs[FAN_N][64];
	struct transport_msg m[FAN_N];
	for (unsigned i = 0; i < FAN_N; i++) {
		m[i] = (struct transport_msg){ .buf = bufs[i] };
		m[i].len = make_dgram(bufs[i], CLUSTER, NULL, i + 1);
	}
	/* in two calls, to see batches of the sender too */
	assert_int_equal(transport_send_group(tx, m, 25), 25);
	assert_int_equal(transport_send_group(tx, m + 25, FAN_N - 25), FAN_N - 25);

	struct transport_counters ct;
	transport_counters(tx, &ct);
	assert_int_equal(ct.dgrams_out, 3 * FAN_N);
	assert_int_equal(ct.bytes_out, 3ull * FAN_N * m[0].len);
	/* a send-only transport does not receive */
	assert_int_equal(transport_recv(tx, m, 1), MTR_ENOTSUP);

	for (int r = 0; r < 3; r++) {
		uint64_t seqs[FAN_N];
		unsigned maxb = 0;
		unsigned got = recv_some(rx[r], FAN_N, seqs, FAN_N, 1000, &maxb);
		assert_int_equal(got, FAN_N);
		for (unsigned i = 0; i < FAN_N; i++)
			assert_int_equal(seqs[i], i + 1); /* loopback keeps order */
		if (r == 2)
			assert_true(maxb <= 8);
		else
			assert_true(maxb >= 1);
		struct transport_counters cr;
		transport_counters(rx[r], &cr);
		assert_int_equal(cr.dgrams_in, FAN_N);
		assert_int_equal(cr.bytes_in, (uint64_t)FAN_N * m[0].len);
		assert_int_equal(drops_total(rx[r]), 0);
		/* nothing more */
		struct transport_msg x[4];
		assert_int_equal(transport_recv(rx[r], x, 4), 0);
	}
	transport_close(tx);
	for (int r = 0; r < 3; r++)
		transport_close(rx[r]);
}

/* ---- send_to and the peer address --------------------------------------- */

static void test_send_to_reply(void **state)
{
	struct transport *a = open_rx(CLUSTER, NULL, 0, 0);
	struct transport *b = open_rx(CLUSTER, NULL, 0, 0);
	uint8_t buf[64];
	struct transport_msg m = { .buf = buf, .peer = b->cfg.bind };
	m.len = make_dgram(buf, CLUSTER, NULL, 5);
	assert_int_equal(transport_send_to(a, &m, 1), 1);

	struct transport_msg in[4];
	assert_int_equal(transport_wait(b, 1000), 1);
	assert_int_equal(transport_recv(b, in, 4), 1);
	assert_int_equal(dgram_seq(&in[0]), 5);
	assert_int_equal(in[0].hdr.sender, 42);
	assert_int_equal(in[0].hdr.cluster, CLUSTER);
	/* the peer is a's bound address: answer it */
	assert_int_equal(in[0].peer.ip, a->cfg.bind.ip);
	assert_int_equal(in[0].peer.port, a->cfg.bind.port);
	m.peer = in[0].peer;
	m.len = make_dgram(buf, CLUSTER, NULL, 6);
	assert_int_equal(transport_send_to(b, &m, 1), 1);
	assert_int_equal(transport_wait(a, 1000), 1);
	assert_int_equal(transport_recv(a, in, 4), 1);
	assert_int_equal(dgram_seq(&in[0]), 6);

	/* longer than the mtu: refused before anything is sent */
	static uint8_t big[WIRE_DEFAULT_MTU + 1];
	struct transport_msg mb[2] = { m, { .buf = big, .len = sizeof big, .peer = m.peer } };
	assert_int_equal(transport_send_to(b, mb, 2), MTR_ETOOBIG);
	struct transport_counters c;
	transport_counters(b, &c);
	assert_int_equal(c.dgrams_out, 1);
	transport_close(a);
	transport_close(b);
}

/* ---- the integrity filter ----------------------------------------------- */

static void test_bad_datagrams_dropped(void **state)
{
	struct wire_key key = { .set = 1, .k = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } };
	struct wire_key other = key;
	other.k[0] ^= 0x80;
	struct transport *plain = open_rx(CLUSTER, NULL, 512, 0);
	struct transport *keyed = open_rx(CLUSTER, &key, 512, 0);

	struct transport_config c;
	transport_config_init(&c);
	c.no_recv = 1;
	c.mtu = 2000; /* can send what the receivers (mtu 512) cannot take */
	struct transport *tx = NULL;
	assert_int_equal(transport_open(&c, &tx), 0);

	/* to plain: good 1, flipped payload bit, other cluster, bad magic,
	 * short, oversize, good 2 */
	static uint8_t b[8][2000];
	struct transport_msg m[8];
	unsigned n = 0;
	m[n] = (struct transport_msg){ .buf = b[n], .len = make_dgram(b[n], CLUSTER, NULL, 1) };
	n++;
	m[n] = (struct transport_msg){ .buf = b[n], .len = make_dgram(b[n], CLUSTER, NULL, 2) };
	b[n][WIRE_HDR_SIZE + 3] ^= 0x10;
	n++;
	m[n] = (struct transport_msg){ .buf = b[n], .len = make_dgram(b[n], CLUSTER + 1, NULL, 3) };
	n++;
	m[n] = (struct transport_msg){ .buf = b[n], .len = make_dgram(b[n], CLUSTER, NULL, 4) };
	b[n][0] ^= 0xff;
	n++;
	m[n] = (struct transport_msg){ .buf = b[n], .len = 10 };
	memset(b[n], 'M', 10);
	n++;
	/* oversize for the receiver: a well-formed 1000-byte datagram would do,
	 * but any 1000 bytes show the kernel truncation path */
	m[n] = (struct transport_msg){ .buf = b[n], .len = 1000 };
	memset(b[n], 0xab, 1000);
	n++;
	m[n] = (struct transport_msg){ .buf = b[n], .len = make_dgram(b[n], CLUSTER, NULL, 7) };
	n++;
	for (unsigned i = 0; i < n; i++)
		m[i].peer = plain->cfg.bind;
	assert_int_equal(transport_send_to(tx, m, n), (int)n);

	uint64_t seqs[8];
	unsigned got = recv_some(plain, 2, seqs, 8, 1000, NULL);
	assert_int_equal(got, 2);
	assert_int_equal(seqs[0], 1);
	assert_int_equal(seqs[1], 7);
	/* the drops follow the good one that came last; give them a moment */
	struct transport_counters cp;
	for (int i = 0; i < 50 && drops_total(plain) < 5; i++)
		if (transport_wait(plain, 20) > 0)
			assert_int_equal(transport_recv(plain, m, 8), 0);
	transport_counters(plain, &cp);
	assert_int_equal(cp.drops[TRANSPORT_DROP_INTEGRITY], 1);
	assert_int_equal(cp.drops[TRANSPORT_DROP_CLUSTER], 1);
	assert_int_equal(cp.drops[TRANSPORT_DROP_MAGIC], 1);
	assert_int_equal(cp.drops[TRANSPORT_DROP_TRUNCATED], 2); /* short + oversize */
	assert_int_equal(cp.drops[TRANSPORT_DROP_OVERFLOW], 0);
	assert_int_equal(cp.dgrams_in, 2);

	/* to keyed: unkeyed (hash only), wrong key, right key */
	n = 0;
	m[n] = (struct transport_msg){ .buf = b[n], .len = make_dgram(b[n], CLUSTER, NULL, 11) };
	n++;
	m[n] = (struct transport_msg){ .buf = b[n], .len = make_dgram(b[n], CLUSTER, &other, 12) };
	n++;
	m[n] = (struct transport_msg){ .buf = b[n], .len = make_dgram(b[n], CLUSTER, &key, 13) };
	n++;
	for (unsigned i = 0; i < n; i++)
		m[i].peer = keyed->cfg.bind;
	assert_int_equal(transport_send_to(tx, m, n), (int)n);
	got = recv_some(keyed, 1, seqs, 8, 1000, NULL);
	assert_int_equal(got, 1);
	assert_int_equal(seqs[0], 13);
	struct transport_counters ck;
	transport_counters(keyed, &ck);
	assert_int_equal(ck.dgrams_in, 1);
	assert_int_equal(drops_total(keyed), 2);
	assert_int_equal(ck.drops[TRANSPORT_DROP_INTEGRITY] + ck.drops[TRANSPORT_DROP_MALFORMED], 2);

	transport_close(tx);
	transport_close(plain);
	transport_close(keyed);
}

/* transport_filter on its own, as the DPDK transport uses it. */
static void test_filter_compacts(void **state)
{
	struct transport *t = open_rx(CLUSTER, NULL, 0, 0);
	static uint8_t b[5][64];
	struct transport_msg m[5];
	for (unsigned i = 0; i < 5; i++) {
		m[i] = (struct transport_msg){ .buf = b[i], .len = make_dgram(b[i], CLUSTER, NULL, i + 1) };
		m[i].peer.port = (uint16_t)(100 + i);
	}
	b[0][WIRE_HDR_SIZE] ^= 1; /* integrity */
	m[2].len -= 1;            /* truncated or integrity, by where the check sees it */
	b[3][4] ^= 0xff;          /* version byte */
	assert_int_equal(transport_filter(t, m, 5), 2);
	assert_int_equal(dgram_seq(&m[0]), 2);
	assert_int_equal(m[0].peer.port, 101);
	assert_int_equal(dgram_seq(&m[1]), 5);
	assert_int_equal(m[1].peer.port, 104);
	assert_int_equal(m[1].hdr.sender, 42);
	struct transport_counters c;
	transport_counters(t, &c);
	assert_int_equal(c.dgrams_in, 2);
	assert_int_equal(drops_total(t), 3);
	assert_int_equal(c.drops[TRANSPORT_DROP_VERSION], 1);
	transport_close(t);
}

/* ---- multicast on loopback ---------------------------------------------- */

static void test_multicast_loopback(void **state)
{
	/* a group and port of our own, so parallel runs do not meet */
	unsigned pid = (unsigned)getpid();
	struct transport_config c;
	transport_config_init(&c);
	c.group.ip = 0xefff0000u | (pid & 0xffff); /* 239.255.x.y */
	c.group.port = (uint16_t)(40000 + pid % 20000);
	c.mcast_iface = LOOPBACK;
	c.cluster = CLUSTER;
	c.rcvbuf = 1 << 20;
	struct transport *rx[2] = { NULL, NULL };
	int rc = transport_open(&c, &rx[0]); /* a failed join logs a line */
	if (rc < 0) {
		print_message("# skip multicast: joining a group on 127.0.0.1 failed (%s)\n", mtr_strerror(rc));
		skip();
	}
	assert_int_equal(transport_open(&c, &rx[1]), 0);

	struct transport_config s = c;
	s.no_recv = 1;
	struct transport *tx = NULL;
	assert_int_equal(transport_open(&s, &tx), 0);
	uint8_t buf[3][64];
	struct transport_msg m[3];
	for (unsigned i = 0; i < 3; i++)
		m[i] = (struct transport_msg){ .buf = buf[i], .len = make_dgram(buf[i], CLUSTER, NULL, i + 1) };
	assert_int_equal(transport_send_group(tx, m, 3), 3);
	struct transport_counters ct;
	transport_counters(tx, &ct);
	if (ct.dgrams_out == 0) {
		print_message("# skip multicast: the kernel refused to send to the group (no multicast route?)\n");
		transport_close(tx);
		transport_close(rx[0]);
		transport_close(rx[1]);
		skip();
	}
	assert_int_equal(ct.dgrams_out, 3); /* one message per datagram, not per receiver */
	for (int r = 0; r < 2; r++) {
		uint64_t seqs[3];
		assert_int_equal(recv_some(rx[r], 3, seqs, 3, 1000, NULL), 3);
		for (unsigned i = 0; i < 3; i++)
			assert_int_equal(seqs[i], i + 1);
	}
	transport_close(tx);
	transport_close(rx[0]);
	transport_close(rx[1]);
}

/* ---- wait ---------------------------------------------------------------- */

static void test_wait_timeout(void **state)
{
	struct transport *t = open_rx(CLUSTER, NULL, 0, 0);
	struct transport_msg m[4];
	assert_int_equal(transport_recv(t, m, 4), 0);
	/* blocks for the timeout (a lower bound only: the machine is shared),
	 * using next to no CPU meanwhile */
	clock_t cpu0 = clock();
	uint64_t t0 = now_mono_ns();
	assert_int_equal(transport_wait(t, 120), 0);
	uint64_t el = now_mono_ns() - t0;
	clock_t cpu = clock() - cpu0;
	assert_true(el >= 100 * 1000000ull);
	assert_true(cpu < CLOCKS_PER_SEC / 20); /* no spinning: well under 50 ms of CPU */
	assert_int_equal(transport_wait(t, 0), 0);
	transport_close(t);
}

/* transport_wait_fd: a readable fd ends the wait (1) although no datagram
 * came; an fd with nothing to read does not (0 at the timeout) */
static void test_wait_fd_wakes(void **state)
{
	struct transport *t = open_rx(CLUSTER, NULL, 0, 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(transport_wait_fd(t, efd, 20), 0);
	uint64_t one = 1;
	assert_int_equal(write(efd, &one, sizeof one), (ssize_t)sizeof one);
	assert_int_equal(transport_wait_fd(t, efd, 60000), 1);
	struct transport_msg m[4];
	assert_int_equal(transport_recv(t, m, 4), 0);
	close(efd);
	transport_close(t);
}

int main(void)
{
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_addr_resolve),
		cmocka_unit_test(test_addr_format),
		cmocka_unit_test(test_config_and_open_errors),
		cmocka_unit_test(test_drop_names),
		cmocka_unit_test(test_fanout_three_receivers),
		cmocka_unit_test(test_send_to_reply),
		cmocka_unit_test(test_bad_datagrams_dropped),
		cmocka_unit_test(test_filter_compacts),
		cmocka_unit_test(test_multicast_loopback),
		cmocka_unit_test(test_wait_timeout),
		cmocka_unit_test(test_wait_fd_wakes),
	};
	return cmocka_run_group_tests_name("transport", tests, NULL, NULL);
}
