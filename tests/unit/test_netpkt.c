/*
 * test_netpkt.c - Ethernet/IPv4/UDP/ARP frames: checksums against known
 * values, build/parse round trips, and every way a received frame can be
 * wrong (truncated, bad checksum, not UDP, fragment, inconsistent lengths).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metronome.h"
#include "netpkt.h"

/* ---- Helpers ---- */

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static const uint8_t mac_a[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t mac_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };

/* A frame of a UDP datagram from 10.99.0.1:4000 to 10.99.0.2:5000. */
static long make_frame(uint8_t *frame, const char *payload, unsigned flags)
{
	struct netpkt_udp h = { .src_ip = IP(10, 99, 0, 1), .dst_ip = IP(10, 99, 0, 2),
				.src_port = 4000, .dst_port = 5000, .ip_id = 7, .ttl = 1 };
	memcpy(h.src_mac, mac_a, 6);
	memcpy(h.dst_mac, mac_b, 6);
	size_t n = strlen(payload);
	memcpy(frame + NETPKT_HDR_SIZE, payload, n);
	return netpkt_udp_build(frame, &h, n, flags);
}

/* ---- netpkt_csum_* ---- */

static void test_csum_known_header(void **state)
{
	(void)state;
	/* a classic IPv4 header whose checksum is 0xb861 */
	uint8_t ip[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			   0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	assert_int_equal(netpkt_csum_finish(netpkt_csum_add(0, ip, 20)), 0xb861);
	ip[10] = 0xb8;
	ip[11] = 0x61;
	assert_int_equal(netpkt_csum_finish(netpkt_csum_add(0, ip, 20)), 0);
}

static void test_csum_odd_length(void **state)
{
	(void)state;
	const uint8_t b[3] = { 0x01, 0x02, 0x03 };
	/* 0x0102 + 0x0300 = 0x0402, inverted 0xfbfd */
	assert_int_equal(netpkt_csum_finish(netpkt_csum_add(0, b, 3)), 0xfbfd);
	/* split sums add up (even split) */
	uint8_t big[1000];
	for (unsigned i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 37 + 1);
	uint32_t whole = netpkt_csum_add(0, big, sizeof big);
	uint32_t parts = netpkt_csum_add(netpkt_csum_add(0, big, 400), big + 400, 600);
	assert_int_equal(netpkt_csum_finish(whole), netpkt_csum_finish(parts));
}

/* ---- netpkt_udp_build / netpkt_parse ---- */

static void test_udp_round_trip(void **state)
{
	(void)state;
	uint8_t frame[256];
	long n = make_frame(frame, "hello metronome", NETPKT_UDP_CSUM);
	assert_int_equal(n, NETPKT_HDR_SIZE + 15);
	/* fixed fields on the wire */
	assert_int_equal(frame[12], 0x08);
	assert_int_equal(frame[13], 0x00);
	assert_int_equal(frame[14], 0x45);
	assert_int_equal(frame[14 + 9], 17);
	assert_int_equal(frame[14 + 8], 1); /* ttl */
	assert_int_equal(frame[14 + 2] << 8 | frame[14 + 3], 20 + 8 + 15);

	struct netpkt_info pi;
	assert_int_equal(netpkt_parse(frame, (size_t)n, NETPKT_UDP_CSUM_CHECK, &pi), 0);
	assert_int_equal(pi.kind, NETPKT_UDP4);
	assert_memory_equal(pi.src_mac, mac_a, 6);
	assert_memory_equal(pi.dst_mac, mac_b, 6);
	assert_int_equal(pi.src_ip, IP(10, 99, 0, 1));
	assert_int_equal(pi.dst_ip, IP(10, 99, 0, 2));
	assert_int_equal(pi.src_port, 4000);
	assert_int_equal(pi.dst_port, 5000);
	assert_int_equal(pi.payload_len, 15);
	assert_memory_equal(pi.payload, "hello metronome", 15);
	assert_ptr_equal(pi.payload, frame + NETPKT_HDR_SIZE);
}

static void test_udp_padding_ignored(void **state)
{
	(void)state;
	uint8_t frame[128] = { 0 };
	long n = make_frame(frame, "x", 0);
	assert_true(n < NETPKT_MIN_FRAME);
	struct netpkt_info pi;
	/* a short frame padded to 60 bytes by the sender: payload is still 1 */
	assert_int_equal(netpkt_parse(frame, NETPKT_MIN_FRAME, 0, &pi), 0);
	assert_int_equal(pi.payload_len, 1);
}

static void test_udp_bad_checksums(void **state)
{
	(void)state;
	uint8_t frame[256];
	struct netpkt_info pi;
	long n = make_frame(frame, "payload!", NETPKT_UDP_CSUM);
	frame[14 + 12] ^= 1; /* source IP: breaks both checksums */
	assert_int_equal(netpkt_parse(frame, (size_t)n, 0, &pi), MTR_EMALFORMED);
	/* the port says the IP checksum is good: then only UDP's can catch it */
	assert_int_equal(netpkt_parse(frame, (size_t)n, NETPKT_IP_CSUM_GOOD, &pi), 0);
	assert_int_equal(netpkt_parse(frame, (size_t)n, NETPKT_IP_CSUM_GOOD | NETPKT_UDP_CSUM_CHECK, &pi),
			 MTR_EMALFORMED);
	frame[14 + 12] ^= 1;
	frame[NETPKT_HDR_SIZE] ^= 0x40; /* payload */
	assert_int_equal(netpkt_parse(frame, (size_t)n, 0, &pi), 0);
	assert_int_equal(netpkt_parse(frame, (size_t)n, NETPKT_UDP_CSUM_CHECK, &pi), MTR_EMALFORMED);
	/* checksum 0 means none: not checked */
	n = make_frame(frame, "payload!", 0);
	frame[NETPKT_HDR_SIZE] ^= 0x40;
	assert_int_equal(netpkt_parse(frame, (size_t)n, NETPKT_UDP_CSUM_CHECK, &pi), 0);
}

static void test_udp_no_ip_csum_flag(void **state)
{
	(void)state;
	uint8_t frame[128];
	long n = make_frame(frame, "abc", NETPKT_NO_IP_CSUM);
	assert_int_equal(frame[14 + 10], 0);
	assert_int_equal(frame[14 + 11], 0);
	struct netpkt_info pi;
	assert_int_equal(netpkt_parse(frame, (size_t)n, NETPKT_IP_CSUM_GOOD, &pi), 0);
}

static void test_parse_truncated(void **state)
{
	(void)state;
	uint8_t frame[256];
	struct netpkt_info pi;
	long n = make_frame(frame, "0123456789", 0);
	for (long len = 0; len < n; len++)
		assert_true(netpkt_parse(frame, (size_t)len, 0, &pi) < 0);
	assert_int_equal(netpkt_parse(frame, 10, 0, &pi), MTR_ETRUNCATED);
	assert_int_equal(netpkt_parse(frame, (size_t)n - 1, 0, &pi), MTR_ETRUNCATED);
}

static void test_parse_inconsistent(void **state)
{
	(void)state;
	uint8_t frame[256];
	struct netpkt_info pi;
	long n = make_frame(frame, "0123456789", 0);
	/* UDP length larger than the IP datagram */
	frame[NETPKT_ETH_SIZE + 20 + 5] += 1;
	assert_int_equal(netpkt_parse(frame, (size_t)n, 0, &pi), MTR_EMALFORMED);
	/* UDP length below its header */
	n = make_frame(frame, "0123456789", 0);
	frame[NETPKT_ETH_SIZE + 20 + 4] = 0;
	frame[NETPKT_ETH_SIZE + 20 + 5] = 4;
	assert_int_equal(netpkt_parse(frame, (size_t)n, 0, &pi), MTR_EMALFORMED);
	/* IP version 6 in an IPv4 ethertype */
	n = make_frame(frame, "0123456789", 0);
	frame[NETPKT_ETH_SIZE] = 0x65;
	assert_int_equal(netpkt_parse(frame, (size_t)n, 0, &pi), MTR_EMALFORMED);
}

static void test_parse_not_udp(void **state)
{
	(void)state;
	uint8_t frame[256];
	struct netpkt_info pi;
	long n = make_frame(frame, "0123456789", 0);
	/* IPv6 ethertype */
	frame[12] = 0x86;
	frame[13] = 0xdd;
	assert_int_equal(netpkt_parse(frame, (size_t)n, 0, &pi), MTR_ENOTSUP);
	/* TCP: protocol 6 (checksum recomputed so that it is not the reason) */
	n = make_frame(frame, "0123456789", NETPKT_NO_IP_CSUM);
	frame[14 + 9] = 6;
	assert_int_equal(netpkt_parse(frame, (size_t)n, NETPKT_IP_CSUM_GOOD, &pi), MTR_ENOTSUP);
	/* a fragment: more-fragments bit */
	n = make_frame(frame, "0123456789", NETPKT_NO_IP_CSUM);
	frame[14 + 6] = 0x20;
	assert_int_equal(netpkt_parse(frame, (size_t)n, NETPKT_IP_CSUM_GOOD, &pi), MTR_ENOTSUP);
}

static void test_parse_vlan(void **state)
{
	(void)state;
	uint8_t plain[256], tagged[260];
	long n = make_frame(plain, "vlan", 0);
	memcpy(tagged, plain, 12);
	tagged[12] = 0x81;
	tagged[13] = 0x00;
	tagged[14] = 0x00;
	tagged[15] = 0x05;
	memcpy(tagged + 16, plain + 12, (size_t)n - 12);
	struct netpkt_info pi;
	assert_int_equal(netpkt_parse(tagged, (size_t)n + 4, 0, &pi), 0);
	assert_int_equal(pi.payload_len, 4);
	assert_memory_equal(pi.payload, "vlan", 4);
}

static void test_build_too_big(void **state)
{
	(void)state;
	static uint8_t frame[NETPKT_HDR_SIZE];
	struct netpkt_udp h = { 0 };
	assert_int_equal(netpkt_udp_build(frame, &h, 65536, 0), MTR_ETOOBIG);
}

/* ---- ARP ---- */

static void test_arp_round_trip(void **state)
{
	(void)state;
	uint8_t frame[64];
	struct netpkt_info pi;
	size_t n = netpkt_arp_build(frame, 1, mac_a, IP(10, 99, 0, 1), NULL, IP(10, 99, 0, 2));
	assert_int_equal(n, NETPKT_ARP_SIZE);
	assert_int_equal(netpkt_parse(frame, n, 0, &pi), 0);
	assert_int_equal(pi.kind, NETPKT_ARP);
	assert_int_equal(pi.arp_op, 1);
	assert_memory_equal(pi.dst_mac, "\xff\xff\xff\xff\xff\xff", 6);
	assert_memory_equal(pi.src_mac, mac_a, 6);
	assert_int_equal(pi.src_ip, IP(10, 99, 0, 1));
	assert_int_equal(pi.dst_ip, IP(10, 99, 0, 2));

	n = netpkt_arp_build(frame, 2, mac_b, IP(10, 99, 0, 2), mac_a, IP(10, 99, 0, 1));
	assert_int_equal(netpkt_parse(frame, n, 0, &pi), 0);
	assert_int_equal(pi.arp_op, 2);
	assert_memory_equal(pi.dst_mac, mac_a, 6);
	assert_memory_equal(pi.src_mac, mac_b, 6);
	assert_int_equal(pi.src_ip, IP(10, 99, 0, 2));
	assert_int_equal(netpkt_parse(frame, n - 1, 0, &pi), MTR_ETRUNCATED);
	frame[14 + 7] = 9; /* unknown op */
	assert_int_equal(netpkt_parse(frame, n, 0, &pi), MTR_ENOTSUP);
}

/* ---- addresses ---- */

static void test_mcast_mac(void **state)
{
	(void)state;
	uint8_t mac[6];
	netpkt_mcast_mac(IP(239, 129, 2, 3), mac); /* the high bit of .129 is dropped */
	assert_memory_equal(mac, "\x01\x00\x5e\x01\x02\x03", 6);
	netpkt_mcast_mac(IP(224, 0, 0, 251), mac);
	assert_memory_equal(mac, "\x01\x00\x5e\x00\x00\xfb", 6);
	assert_true(netpkt_ip_is_mcast(IP(239, 1, 1, 1)));
	assert_true(netpkt_ip_is_mcast(IP(224, 0, 0, 1)));
	assert_false(netpkt_ip_is_mcast(IP(10, 99, 0, 1)));
	assert_false(netpkt_ip_is_mcast(IP(240, 0, 0, 1)));
}

static void test_mac_parse_format(void **state)
{
	(void)state;
	uint8_t mac[6];
	char buf[18];
	assert_int_equal(netpkt_mac_parse("02:aB:00:ff:10:09", mac), 0);
	assert_memory_equal(mac, "\x02\xab\x00\xff\x10\x09", 6);
	assert_string_equal(netpkt_mac_format(mac, buf, sizeof buf), "02:ab:00:ff:10:09");
	assert_int_equal(netpkt_mac_parse("02:ab:00:ff:10", mac), MTR_EINVAL);
	assert_int_equal(netpkt_mac_parse("02:ab:00:ff:10:09:", mac), MTR_EINVAL);
	assert_int_equal(netpkt_mac_parse("02-ab-00-ff-10-09", mac), MTR_EINVAL);
	assert_int_equal(netpkt_mac_parse("0g:ab:00:ff:10:09", mac), MTR_EINVAL);
	assert_int_equal(netpkt_mac_parse("", mac), MTR_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_known_header),
		cmocka_unit_test(test_csum_odd_length),
		cmocka_unit_test(test_udp_round_trip),
		cmocka_unit_test(test_udp_padding_ignored),
		cmocka_unit_test(test_udp_bad_checksums),
		cmocka_unit_test(test_udp_no_ip_csum_flag),
		cmocka_unit_test(test_parse_truncated),
		cmocka_unit_test(test_parse_inconsistent),
		cmocka_unit_test(test_parse_not_udp),
		cmocka_unit_test(test_parse_vlan),
		cmocka_unit_test(test_build_too_big),
		cmocka_unit_test(test_arp_round_trip),
		cmocka_unit_test(test_mcast_mac),
		cmocka_unit_test(test_mac_parse_format),
	};
	return cmocka_run_group_tests_name("netpkt", tests, NULL, NULL);
}
