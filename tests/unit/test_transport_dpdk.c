/*
 * test_transport_dpdk.c - the "dpdk" transport on virtual ports, no root:
 * net_ring (a port that loops its TX back to its RX) and a net_memif
 * server/client pair in this one process.  Datagrams arrive intact, bad ones
 * are dropped and counted, unicast resolves the peer's MAC by ARP, waiting
 * times out, configuration errors are reported, ports can be reopened.
 *
 * EAL starts once per process and cannot restart after its last port is
 * closed, so the group fixture keeps one ring port open for the whole run.
 * It runs under ASan+UBSan too (MTR_SANITIZE=1), without LeakSanitizer's
 * exit-time scan: see doc/dpdk.md.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "metronome.h"
#include "transport.h"
#include "util.h"
#include "transport_dpdk.h"
#include "wire.h"

#define EAL "--no-huge --no-shconf --no-telemetry --no-pci -m 256 --log-level=*:error"
#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define CLUSTER 77u
#define PORT 7100

/* ---- Fixture ---- */

static struct transport *keeper; /* holds EAL up for the whole group */

/* MTR_SANITIZE is set in the ASan+UBSan build's test run. */
static int sanitized(void);

static void config_for(struct transport_config *c, const char *port, uint32_t ip)
{
	transport_config_init(c);
	c->kind = "dpdk";
	c->dpdk_eal = EAL;
	c->dpdk_port = port;
	c->bind.ip = ip;
	c->bind.port = PORT;
	c->group.ip = IP(239, 99, 0, 1);
	c->group.port = PORT;
	c->cluster = CLUSTER;
}

static int group_setup(void **state)
{
	(void)state;
	struct transport_config c;
	config_for(&c, "net_ring_keep", IP(10, 99, 9, 9));
	return transport_open(&c, &keeper) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	/* the last close: EAL cleanup.  Not under the sanitizers: see main() */
	if (!sanitized())
		transport_close(keeper);
	return 0;
}

/* ---- Helpers ---- */

/* A valid datagram whose payload is len bytes of a pattern from seed. */
static uint32_t make_dgram(uint8_t *buf, uint32_t sender, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		buf[WIRE_HDR_SIZE + i] = (uint8_t)(seed * 131 + i * 7);
	return (uint32_t)wire_frame_finish(buf, &(struct wire_from){ CLUSTER, sender, NULL }, WIRE_T_ITEMS, len);
}

static int payload_ok(const struct transport_msg *m, unsigned seed)
{
	for (uint32_t i = 0; i < m->hdr.length; i++)
		if (m->buf[WIRE_HDR_SIZE + i] != (uint8_t)(seed * 131 + i * 7))
			return 0;
	return 1;
}

/* Receive until want datagrams came or timeout_ms passed; checks each one
 * with check(seed = its position). */
static unsigned recv_n(struct transport *t, unsigned want, int timeout_ms, uint32_t len, uint32_t sender,
		       unsigned *bad)
{
	unsigned got = 0;
	uint64_t end = now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	struct transport_msg m[64];
	while (got < want && now_mono_ns() < end) {
		if (transport_wait(t, 50) <= 0)
			continue;
		int n = transport_recv(t, m, 64);
		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			if (m[i].hdr.length != len || m[i].hdr.sender != sender || !payload_ok(&m[i], got))
				(*bad)++;
			got++;
		}
	}
	return got;
}

static int sanitized(void)
{
	const char *s = getenv("MTR_SANITIZE");
	return s && *s && strcmp(s, "0") != 0;
}

/* ---- send_group / recv on net_ring ---- */

static void test_ring_group_round_trip(void **state)
{
	(void)state;
	struct transport_config c;
	struct transport *t;
	config_for(&c, "net_ring_a", IP(10, 99, 0, 1));
	assert_int_equal(transport_open(&c, &t), 0);
	assert_int_equal(transport_fd(t), -1);

	static uint8_t bufs[200][WIRE_DEFAULT_MTU];
	struct transport_msg out[200];
	for (unsigned i = 0; i < 200; i++) {
		out[i].buf = bufs[i];
		out[i].len = make_dgram(bufs[i], 5, 100, i);
	}
	assert_int_equal(transport_send_group(t, out, 200), 200);
	unsigned bad = 0;
	assert_int_equal(recv_n(t, 200, 2000, 100, 5, &bad), 200);
	assert_int_equal(bad, 0);
	struct transport_counters ctr;
	transport_counters(t, &ctr);
	assert_int_equal(ctr.dgrams_out, 200);
	assert_int_equal(ctr.dgrams_in, 200);
	assert_int_equal(ctr.bytes_in, 200 * (100 + WIRE_OVERHEAD));
	transport_close(t);
}

static void test_ring_full_mtu(void **state)
{
	(void)state;
	struct transport_config c;
	struct transport *t;
	config_for(&c, "net_ring_b", IP(10, 99, 0, 1));
	assert_int_equal(transport_open(&c, &t), 0);
	static uint8_t buf[WIRE_DEFAULT_MTU + 1];
	struct transport_msg m = { .buf = buf };
	m.len = make_dgram(buf, 9, WIRE_DEFAULT_MTU - WIRE_OVERHEAD, 0);
	assert_int_equal(m.len, WIRE_DEFAULT_MTU);
	assert_int_equal(transport_send_group(t, &m, 1), 1);
	unsigned bad = 0;
	assert_int_equal(recv_n(t, 1, 2000, WIRE_DEFAULT_MTU - WIRE_OVERHEAD, 9, &bad), 1);
	assert_int_equal(bad, 0);
	m.len = WIRE_DEFAULT_MTU + 1; /* above the configured mtu */
	assert_int_equal(transport_send_group(t, &m, 1), MTR_ETOOBIG);
	transport_close(t);
}

static void test_ring_drops_counted(void **state)
{
	(void)state;
	struct transport_config c;
	struct transport *t;
	config_for(&c, "net_ring_c", IP(10, 99, 0, 1));
	assert_int_equal(transport_open(&c, &t), 0);
	uint8_t good[256], corrupt[256], other[256];
	struct transport_msg m[2] = { { .buf = good }, { .buf = corrupt } };
	m[0].len = make_dgram(good, 1, 50, 0);
	m[1].len = make_dgram(corrupt, 1, 50, 0);
	corrupt[WIRE_HDR_SIZE + 3] ^= 0x10;
	assert_int_equal(transport_send_group(t, m, 2), 2);
	/* a datagram to another UDP port: not for us */
	struct transport_msg o = { .buf = other, .peer = { IP(10, 99, 0, 1), PORT + 1 } };
	o.len = make_dgram(other, 1, 50, 0);
	assert_int_equal(transport_send_to(t, &o, 1), 1);

	unsigned bad = 0;
	assert_int_equal(recv_n(t, 1, 2000, 50, 1, &bad), 1);
	assert_int_equal(bad, 0);
	/* let the other two be read and dropped */
	struct transport_msg r[8];
	for (int i = 0; i < 20; i++) {
		transport_wait(t, 10);
		assert_int_equal(transport_recv(t, r, 8), 0);
	}
	struct transport_counters ctr;
	transport_counters(t, &ctr);
	assert_int_equal(ctr.dgrams_in, 1);
	assert_int_equal(ctr.drops[TRANSPORT_DROP_INTEGRITY], 1);
	assert_int_equal(ctr.drops[TRANSPORT_DROP_NOTIP], 1);
	transport_close(t);
}

/* ---- wait ---- */

static void test_wait_times_out(void **state)
{
	(void)state;
	struct transport_config c;
	struct transport *t;
	config_for(&c, "net_ring_d", IP(10, 99, 0, 1));
	assert_int_equal(transport_open(&c, &t), 0);
	uint64_t t0 = now_mono_ns();
	assert_int_equal(transport_wait(t, 30), 0);
	uint64_t el = now_mono_ns() - t0;
	assert_true(el >= 30000000u); /* never early; no upper bound asserted */
	struct transport_msg r[4];
	assert_int_equal(transport_recv(t, r, 4), 0);
	transport_close(t);
}

/* transport_wait_fd: a readable fd ends the wait (1) although no frame
 * came; an fd with nothing to read does not (0 at the timeout) */
static void test_wait_fd_wakes(void **state)
{
	(void)state;
	struct transport_config c;
	struct transport *t;
	config_for(&c, "net_ring_w", IP(10, 99, 0, 1));
	assert_int_equal(transport_open(&c, &t), 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(transport_wait_fd(t, efd, 20), 0);
	uint64_t one = 1;
	assert_int_equal(write(efd, &one, sizeof one), (ssize_t)sizeof one);
	assert_int_equal(transport_wait_fd(t, efd, 60000), 1);
	struct transport_msg r[4];
	assert_int_equal(transport_recv(t, r, 4), 0);
	close(efd);
	transport_close(t);
}

/* ---- memif: two ports, unicast both ways ---- */

static void test_memif_unicast_arp(void **state)
{
	(void)state;
	char sdev[160], cdev[160];
	snprintf(sdev, sizeof sdev, "net_memif_s,role=server,id=1,socket=/run/mtr-test-%d.sock", (int)getpid());
	snprintf(cdev, sizeof cdev, "net_memif_c,role=client,id=1,socket=/run/mtr-test-%d.sock", (int)getpid());
	struct transport_config sc, cc;
	struct transport *s, *cl;
	config_for(&sc, sdev, IP(10, 99, 0, 2));
	config_for(&cc, cdev, IP(10, 99, 0, 3));
	assert_int_equal(transport_open(&sc, &s), 0);
	assert_int_equal(transport_open(&cc, &cl), 0);

	/* the memif link comes up asynchronously: send until one arrives */
	uint8_t buf[256];
	struct transport_msg m = { .buf = buf, .peer = { IP(10, 99, 0, 2), PORT } };
	m.len = make_dgram(buf, 3, 40, 0);
	unsigned got = 0, bad = 0;
	for (int i = 0; i < 100 && !got; i++) {
		assert_int_equal(transport_send_to(cl, &m, 1), 1);
		got = recv_n(s, 1, 50, 40, 3, &bad);
	}
	assert_int_equal(got, 1);
	assert_int_equal(bad, 0);

	/* now a burst, client to server by unicast */
	static uint8_t bufs[100][256];
	struct transport_msg v[100];
	for (unsigned i = 0; i < 100; i++) {
		v[i].buf = bufs[i];
		v[i].len = make_dgram(bufs[i], 3, 40, i);
		v[i].peer = m.peer;
	}
	assert_int_equal(transport_send_to(cl, v, 100), 100);
	assert_int_equal(recv_n(s, 100, 2000, 40, 3, &bad), 100);
	assert_int_equal(bad, 0);

	/* a memif client hands the server its receive buffers when it polls:
	 * until then the server's TX ring is full.  Poll once (this also reads
	 * the server's ARP reply). */
	struct transport_msg rx[8];
	transport_wait(cl, 20);
	assert_true(transport_recv(cl, rx, 8) >= 0);

	/* and server to client by group (multicast MAC) */
	for (unsigned i = 0; i < 100; i++)
		v[i].len = make_dgram(bufs[i], 2, 40, i);
	assert_int_equal(transport_send_group(s, v, 100), 100);
	assert_int_equal(recv_n(cl, 100, 2000, 40, 2, &bad), 100);
	assert_int_equal(bad, 0);

	/* server to client by unicast: the server learnt the client's MAC */
	struct transport_msg r = { .buf = buf, .peer = { IP(10, 99, 0, 3), PORT } };
	r.len = make_dgram(buf, 2, 40, 0);
	assert_int_equal(transport_send_to(s, &r, 1), 1);
	assert_int_equal(recv_n(cl, 1, 2000, 40, 2, &bad), 1);
	assert_int_equal(bad, 0);

	transport_close(cl);
	transport_close(s);
}

/* ---- open / close ---- */

static void test_open_errors(void **state)
{
	(void)state;
	struct transport_config c;
	struct transport *t = (struct transport *)1;
	config_for(&c, NULL, IP(10, 99, 0, 1));
	assert_int_equal(transport_open(&c, &t), MTR_ECONFIG);
	assert_null(t);
	config_for(&c, "net_ring_e", 0);
	assert_int_equal(transport_open(&c, &t), MTR_ECONFIG);
	config_for(&c, "net_nosuchdriver0", IP(10, 99, 0, 1));
	assert_int_equal(transport_open(&c, &t), MTR_EIO);
	assert_null(t);
}

static void test_reopen_same_port(void **state)
{
	(void)state;
	if (sanitized())
		skip(); /* see main() */
	struct transport_config c;
	struct transport *t;
	config_for(&c, "net_null_f", IP(10, 99, 0, 1)); /* net_ring cannot: see doc/dpdk.md */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(transport_open(&c, &t), 0);
		transport_close(t);
	}
}

int main(void)
{
	transport_dpdk_enable();
	if (getenv("MTR_LOG") == NULL)
		log_set_level(LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_group_round_trip),
		cmocka_unit_test(test_ring_full_mtu),
		cmocka_unit_test(test_ring_drops_counted),
		cmocka_unit_test(test_wait_times_out),
		cmocka_unit_test(test_wait_fd_wakes),
		cmocka_unit_test(test_memif_unicast_arp),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_reopen_same_port),
	};
	int rc = cmocka_run_group_tests_name("transport_dpdk", tests, group_setup, group_teardown);
	if (sanitized()) {
		/* Under ASan, detaching a vdev or rte_eal_cleanup() now and then
		 * ends the process silently with status 255 (about 1 run in 10,
		 * inside DPDK, which is not built with ASan).  So this build skips
		 * the reopen test, leaves the last port and EAL up, and leaves
		 * without LeakSanitizer's exit-time scan (EAL's memory is still
		 * mapped).  See doc/dpdk.md, "Sanitizers". */
		fflush(NULL);
		_exit(rc);
	}
	return rc;
}
