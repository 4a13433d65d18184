/*
 * netpkt.h - Ethernet / IPv4 / UDP / ARP frames, built and parsed by us.
 *
 * The DPDK transport (transport_dpdk.c) talks to raw Ethernet ports, so it
 * writes the headers the kernel writes for the socket transport, and it reads
 * them back on receive.  This module is pure: no I/O, no clock, no DPDK; it
 * works on byte buffers so that every rule is unit-tested (test_netpkt.c).
 *
 * Byte order: the frame is network order (big-endian); every field of the
 * structures below is in host order.  MAC addresses are 6 bytes as on the
 * wire.  doc/dpdk.md describes the frames.
 */
#ifndef MTR_NETPKT_H
#define MTR_NETPKT_H

#include <stddef.h>
#include <stdint.h>

#define NETPKT_ETH_SIZE 14
#define NETPKT_IP_SIZE 20 /* we never send IP options */
#define NETPKT_UDP_SIZE 8
#define NETPKT_HDR_SIZE (NETPKT_ETH_SIZE + NETPKT_IP_SIZE + NETPKT_UDP_SIZE) /* 42 */
#define NETPKT_ARP_SIZE (NETPKT_ETH_SIZE + 28)                               /* 42 */
#define NETPKT_MIN_FRAME 60 /* Ethernet minimum without FCS: pad shorter frames */

#define NETPKT_ETHERTYPE_IPV4 0x0800u
#define NETPKT_ETHERTYPE_ARP 0x0806u
#define NETPKT_ETHERTYPE_VLAN 0x8100u
#define NETPKT_PROTO_UDP 17u

/* What goes into the headers of an outgoing UDP frame. */
struct netpkt_udp {
	uint8_t dst_mac[6], src_mac[6];
	uint32_t src_ip, dst_ip;
	uint16_t src_port, dst_port;
	uint16_t ip_id; /* IPv4 identification (any value: we never fragment) */
	uint8_t ttl;
};

/* Flags for netpkt_udp_build. */
#define NETPKT_NO_IP_CSUM 0x1 /* leave the IPv4 checksum 0 (the port offloads it) */
#define NETPKT_UDP_CSUM 0x2   /* compute the UDP checksum (needs the payload in place) */

/*
 * Write the 42 header bytes of a UDP/IPv4 frame at frame[0..42) for a
 * payload of payload_len bytes that is (or will be) at frame + 42.  The IPv4
 * header checksum is computed unless NETPKT_NO_IP_CSUM; the UDP checksum is
 * 0 ("none", legal for IPv4: our datagrams carry their own hash) unless
 * NETPKT_UDP_CSUM, which reads the payload.  Returns the frame length
 * (42 + payload_len), or MTR_ETOOBIG when it does not fit an IPv4 datagram.
 */
long netpkt_udp_build(uint8_t *frame, const struct netpkt_udp *h, size_t payload_len, unsigned flags);

/* What a received frame is. */
enum netpkt_kind {
	NETPKT_UDP4 = 1, /* an unfragmented UDP/IPv4 datagram: payload fields valid */
	NETPKT_ARP = 2,  /* an Ethernet/IPv4 ARP request or reply: arp fields valid */
};

/* A parsed frame.  payload points into the frame given to netpkt_parse. */
struct netpkt_info {
	int kind;
	uint8_t dst_mac[6], src_mac[6];
	uint32_t src_ip, dst_ip; /* UDP: IP addresses; ARP: sender / target IP */
	uint16_t src_port, dst_port;
	const uint8_t *payload;
	uint32_t payload_len;
	uint16_t arp_op; /* ARP: 1 request, 2 reply */
};

/* Flags for netpkt_parse. */
#define NETPKT_IP_CSUM_GOOD 0x1 /* the port already verified the IPv4 checksum */
#define NETPKT_UDP_CSUM_CHECK 0x2 /* verify a nonzero UDP checksum in software */

/*
 * Parse a received frame of len bytes (Ethernet II, one optional 802.1Q tag).
 * Returns 0 with *out filled for a UDP/IPv4 datagram or an ARP packet;
 * MTR_ENOTSUP for any other frame (other ethertypes, other IP protocols, IP
 * fragments); MTR_EMALFORMED for a frame whose headers are inconsistent or
 * whose IPv4 header checksum (or UDP checksum, when checked) is wrong;
 * MTR_ETRUNCATED when it is shorter than its headers say.  Ethernet padding
 * after the IP datagram is ignored.  Never reads outside frame[0..len).
 */
int netpkt_parse(const uint8_t *frame, size_t len, unsigned flags, struct netpkt_info *out);

/*
 * Write an ARP frame (NETPKT_ARP_SIZE bytes; pad to NETPKT_MIN_FRAME when
 * sending).  op 1 (request: who has target_ip? target_mac ignored, sent to
 * broadcast) or 2 (reply to target_mac/target_ip).  Returns its length.
 */
size_t netpkt_arp_build(uint8_t *frame, unsigned op, const uint8_t src_mac[6], uint32_t src_ip,
			const uint8_t target_mac[6], uint32_t target_ip);

/* The Ethernet multicast MAC of an IPv4 multicast group: 01:00:5e + the low
 * 23 bits of the address (RFC 1112). */
void netpkt_mcast_mac(uint32_t group_ip, uint8_t mac[6]);

/* 1 if ip is in 224.0.0.0/4. */
int netpkt_ip_is_mcast(uint32_t ip);

/* Internet checksum (RFC 1071) of buf[0..len), folded, not inverted, added
 * to the partial sum sum (start with 0). */
uint32_t netpkt_csum_add(uint32_t sum, const uint8_t *buf, size_t len);

/* Fold a partial sum to 16 bits and invert it: the checksum field value. */
uint16_t netpkt_csum_finish(uint32_t sum);

/* Parse "aa:bb:cc:dd:ee:ff" into mac.  0 or MTR_EINVAL. */
int netpkt_mac_parse(const char *s, uint8_t mac[6]);

/* Format mac as "aa:bb:cc:dd:ee:ff" into buf (at least 18 bytes); returns buf. */
char *netpkt_mac_format(const uint8_t mac[6], char *buf, size_t size);

#endif
