/*
 * netpkt.c - Ethernet / IPv4 / UDP / ARP headers for the DPDK transport.
 *
 * Pure byte-buffer code (see netpkt.h): the transport hands it mbuf data, the
 * unit test hands it arrays.  Multi-byte fields are big-endian on the wire;
 * the be16/be32 helpers below are the only place that knows it.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "metronome.h"
#include "util.h"
#include "netpkt.h"

static inline uint16_t ldbe16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t ldbe32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void stbe16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void stbe32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- checksums ---- */

uint32_t netpkt_csum_add(uint32_t sum, const uint8_t *buf, size_t len)
{
	/* 32-bit accumulator of 16-bit big-endian words, folded every so often
	 * so that it never overflows whatever the length. */
	uint64_t s = sum;
	size_t i = 0;
	for (; i + 1 < len; i += 2)
		s += ldbe16(buf + i);
	if (i < len)
		s += (uint32_t)buf[i] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t netpkt_csum_finish(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The UDP pseudo-header sum plus the UDP header and payload. */
static uint32_t udp_sum(uint32_t src, uint32_t dst, const uint8_t *udp, size_t udp_len)
{
	uint8_t ph[12];
	stbe32(ph, src);
	stbe32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = NETPKT_PROTO_UDP;
	stbe16(ph + 10, (uint16_t)udp_len);
	return netpkt_csum_add(netpkt_csum_add(0, ph, sizeof ph), udp, udp_len);
}

/* ---- build ---- */

long netpkt_udp_build(uint8_t *frame, const struct netpkt_udp *h, size_t payload_len, unsigned flags)
{
	if (payload_len > 65535u - NETPKT_IP_SIZE - NETPKT_UDP_SIZE)
		return MTR_ETOOBIG;
	uint8_t *eth = frame, *ip = frame + NETPKT_ETH_SIZE, *udp = ip + NETPKT_IP_SIZE;

	memcpy(eth, h->dst_mac, 6);
	memcpy(eth + 6, h->src_mac, 6);
	stbe16(eth + 12, NETPKT_ETHERTYPE_IPV4);

	ip[0] = 0x45; /* version 4, 5 words */
	ip[1] = 0;    /* DSCP/ECN */
	stbe16(ip + 2, (uint16_t)(NETPKT_IP_SIZE + NETPKT_UDP_SIZE + payload_len));
	stbe16(ip + 4, h->ip_id);
	stbe16(ip + 6, 0x4000); /* DF, offset 0: we never fragment */
	ip[8] = h->ttl ? h->ttl : 64;
	ip[9] = NETPKT_PROTO_UDP;
	stbe16(ip + 10, 0);
	stbe32(ip + 12, h->src_ip);
	stbe32(ip + 16, h->dst_ip);
	if (!(flags & NETPKT_NO_IP_CSUM))
		stbe16(ip + 10, netpkt_csum_finish(netpkt_csum_add(0, ip, NETPKT_IP_SIZE)));

	size_t udp_len = NETPKT_UDP_SIZE + payload_len;
	stbe16(udp, h->src_port);
	stbe16(udp + 2, h->dst_port);
	stbe16(udp + 4, (uint16_t)udp_len);
	stbe16(udp + 6, 0);
	if (flags & NETPKT_UDP_CSUM) {
		uint16_t c = netpkt_csum_finish(udp_sum(h->src_ip, h->dst_ip, udp, udp_len));
		stbe16(udp + 6, c ? c : 0xffff); /* 0 means "no checksum" (RFC 768) */
	}
	return (long)(NETPKT_HDR_SIZE + payload_len);
}

size_t netpkt_arp_build(uint8_t *frame, unsigned op, const uint8_t src_mac[6], uint32_t src_ip,
			const uint8_t target_mac[6], uint32_t target_ip)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t zero[6] = { 0 };
	uint8_t *arp = frame + NETPKT_ETH_SIZE;

	memcpy(frame, op == 1 ? bcast : target_mac, 6);
	memcpy(frame + 6, src_mac, 6);
	stbe16(frame + 12, NETPKT_ETHERTYPE_ARP);
	stbe16(arp, 1);                     /* hardware: Ethernet */
	stbe16(arp + 2, NETPKT_ETHERTYPE_IPV4); /* protocol: IPv4 */
	arp[4] = 6;
	arp[5] = 4;
	stbe16(arp + 6, (uint16_t)op);
	memcpy(arp + 8, src_mac, 6);
	stbe32(arp + 14, src_ip);
	memcpy(arp + 18, op == 1 ? zero : target_mac, 6);
	stbe32(arp + 24, target_ip);
	return NETPKT_ARP_SIZE;
}

/* ---- parse ---- */

static int parse_arp(const uint8_t *arp, size_t len, struct netpkt_info *out)
{
	if (len < 28)
		return MTR_ETRUNCATED;
	if (ldbe16(arp) != 1 || ldbe16(arp + 2) != NETPKT_ETHERTYPE_IPV4 || arp[4] != 6 || arp[5] != 4)
		return MTR_ENOTSUP;
	out->arp_op = ldbe16(arp + 6);
	if (out->arp_op != 1 && out->arp_op != 2)
		return MTR_ENOTSUP;
	/* sender hardware address: the one to learn (may differ from the frame's
	 * source in proxy ARP; we use the ARP field) */
	memcpy(out->src_mac, arp + 8, 6);
	out->src_ip = ldbe32(arp + 14);
	out->dst_ip = ldbe32(arp + 24);
	out->kind = NETPKT_ARP;
	return 0;
}

int netpkt_parse(const uint8_t *frame, size_t len, unsigned flags, struct netpkt_info *out)
{
	memset(out, 0, sizeof *out);
	if (len < NETPKT_ETH_SIZE)
		return MTR_ETRUNCATED;
	memcpy(out->dst_mac, frame, 6);
	memcpy(out->src_mac, frame + 6, 6);
	size_t off = 12;
	uint16_t type = ldbe16(frame + off);
	if (type == NETPKT_ETHERTYPE_VLAN) {
		if (len < off + 6)
			return MTR_ETRUNCATED;
		off += 4;
		type = ldbe16(frame + off);
	}
	off += 2;
	if (type == NETPKT_ETHERTYPE_ARP)
		return parse_arp(frame + off, len - off, out);
	if (type != NETPKT_ETHERTYPE_IPV4)
		return MTR_ENOTSUP;

	const uint8_t *ip = frame + off;
	size_t avail = len - off;
	if (avail < NETPKT_IP_SIZE)
		return MTR_ETRUNCATED;
	if (ip[0] >> 4 != 4)
		return MTR_EMALFORMED;
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
	size_t total = ldbe16(ip + 2);
	if (ihl < NETPKT_IP_SIZE || total < ihl)
		return MTR_EMALFORMED;
	if (avail < ihl || avail < total)
		return MTR_ETRUNCATED;
	if (!(flags & NETPKT_IP_CSUM_GOOD) && netpkt_csum_finish(netpkt_csum_add(0, ip, ihl)) != 0)
		return MTR_EMALFORMED;
	if (ip[9] != NETPKT_PROTO_UDP)
		return MTR_ENOTSUP;
	/* fragments (MF set or a nonzero offset): not reassembled, see doc/dpdk.md */
	if (ldbe16(ip + 6) & 0x3fff)
		return MTR_ENOTSUP;
	out->src_ip = ldbe32(ip + 12);
	out->dst_ip = ldbe32(ip + 16);

	const uint8_t *udp = ip + ihl;
	size_t ulen_avail = total - ihl; /* Ethernet padding beyond total is ignored */
	if (ulen_avail < NETPKT_UDP_SIZE)
		return MTR_ETRUNCATED;
	size_t ulen = ldbe16(udp + 4);
	if (ulen < NETPKT_UDP_SIZE || ulen > ulen_avail)
		return MTR_EMALFORMED;
	if ((flags & NETPKT_UDP_CSUM_CHECK) && ldbe16(udp + 6) != 0 &&
	    netpkt_csum_finish(udp_sum(out->src_ip, out->dst_ip, udp, ulen)) != 0)
		return MTR_EMALFORMED;
	out->src_port = ldbe16(udp);
	out->dst_port = ldbe16(udp + 2);
	out->payload = udp + NETPKT_UDP_SIZE;
	out->payload_len = (uint32_t)(ulen - NETPKT_UDP_SIZE);
	out->kind = NETPKT_UDP4;
	return 0;
}

/* ---- addresses ---- */

void netpkt_mcast_mac(uint32_t group_ip, uint8_t mac[6])
{
	mac[0] = 0x01;
	mac[1] = 0x00;
	mac[2] = 0x5e;
	mac[3] = (uint8_t)((group_ip >> 16) & 0x7f);
	mac[4] = (uint8_t)(group_ip >> 8);
	mac[5] = (uint8_t)group_ip;
}

int netpkt_ip_is_mcast(uint32_t ip) { return (ip >> 28) == 0xe; }


int netpkt_mac_parse(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
		if (lo < 0)
			return MTR_EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (i < 5 && *s++ != ':')
			return MTR_EINVAL;
	}
	return *s ? MTR_EINVAL : 0;
}

char *netpkt_mac_format(const uint8_t mac[6], char *buf, size_t size)
{
	snprintf(buf, size, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return buf;
}
