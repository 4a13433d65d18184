/*
 * mtrforge.c - send crafted datagrams to a node, for the hostile-input suite
 * (tests/integration/hostile.sh).  Loopback test clusters only.
 *
 *   mtrforge [OPTIONS] items STREAM SEQ SQL     one ITEMS datagram: one item, one statement
 *   mtrforge [OPTIONS] read STREAM RID SQL      a READ (consistency none)
 *   mtrforge [OPTIONS] prepare BALLOT           a PAXOS PREPARE for instances >= 1
 *   mtrforge [OPTIONS] chosen INST STREAM FIRST LAST
 *                                               a PAXOS CHOSEN: instance INST is the
 *                                               batch (STREAM, FIRST..LAST)
 *   mtrforge [OPTIONS] status                   a STATUS claiming leadership
 *   mtrforge [OPTIONS] heartbeats N             N HEARTBEATs, each of a fresh random stream
 *   mtrforge capture FILE SECONDS PORT_LO PORT_HI
 *                                               record the Metronome datagrams sent to
 *                                               127.0.0.1:PORT_LO..PORT_HI (needs root:
 *                                               a packet socket on lo)
 *   mtrforge [OPTIONS] replay FILE              send every recorded datagram again to
 *                                               its destination, from its original source
 *                                               address with --spoof, else from ours
 *
 * OPTIONS: --to IP:PORT (the destination; required but for capture and
 * replay), --key HEX32 (MAC the datagrams with this key; default: none, an
 * XXH3 trailer like an insecure cluster's), --cluster ID (default 1),
 * --sender ID (the header's sender id; default 256, a proxy's), --spoof
 * IP:PORT (send from that source address through a raw socket: root).
 *
 * Prints one line "sent N" and exits 0, or 1 with a reason.  Nothing here
 * validates what it sends: that is the point.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "metronome.h"
#include "paxos.h"
#include "paxos_codec.h"
#include "transport.h"
#include "util.h"
#include "wire.h"
#include "wire_server.h"

static struct transport_addr to, spoof;
static int has_to, has_spoof;
static struct wire_key key;
static struct wire_from from = {.cluster = 1, .sender = 256, .key = &key};
static int sock = -1;

__attribute__((format(printf, 1, 2))) static int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "mtrforge: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return 1;
}

/* Send buf[0..len) to dst, from src when src is given (raw socket). */
static int send_dgram(const uint8_t *buf, size_t len, const struct transport_addr *dst,
		      const struct transport_addr *src)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(dst->port), .sin_addr.s_addr = htonl(dst->ip)};
	if (!src) {
		if (sock < 0)
			sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		return sendto(sock, buf, len, 0, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)len ? 0 : -1;
	}
	static int raw = -1;
	if (raw < 0)
		raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (raw < 0 || len > WIRE_MAX_DGRAM)
		return -1;
	static uint8_t pkt[65536];
	struct iphdr *ip = (struct iphdr *)pkt;
	struct udphdr *udp = (struct udphdr *)(pkt + sizeof *ip);
	size_t total = sizeof *ip + sizeof *udp + len;
	memset(pkt, 0, sizeof *ip + sizeof *udp);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((uint16_t)total);
	ip->saddr = htonl(src->ip);
	ip->daddr = htonl(dst->ip);
	udp->source = htons(src->port);
	udp->dest = htons(dst->port);
	udp->len = htons((uint16_t)(sizeof *udp + len));
	udp->check = 0; /* optional in IPv4 */
	memcpy(pkt + sizeof *ip + sizeof *udp, buf, len);
	return sendto(raw, pkt, total, 0, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)total ? 0 : -1;
}

static int send_one(const uint8_t *buf, size_t len)
{
	if (send_dgram(buf, len, &to, has_spoof ? &spoof : NULL) != 0) {
		fprintf(stderr, "mtrforge: send: %s\n", strerror(errno));
		return 1;
	}
	printf("sent 1\n");
	return 0;
}

static uint64_t num(const char *s) { return strtoull(s, NULL, 0); }

/* One item record of stream/seq with one statement. */
static long make_item(uint8_t *buf, size_t cap, uint64_t stream, uint64_t seq, const char *sql)
{
	struct wire_stmt st = {.sql = sql, .sql_len = (uint32_t)strlen(sql)};
	struct wire_item it = {.stream = stream, .seq = seq, .request = seq, .timestamp_us = 1700000000000000ll,
			       .seed = 42, .nstmt = 1, .stmts = &st};
	return wire_item_encode(buf, cap, &it);
}

/* capture FILE SECONDS LO HI: records of u32 src ip, u16 src port, u32 dst
 * ip, u16 dst port, u32 len, then the bytes (host order: this machine). */
static int capture(const char *file, int seconds, unsigned lo, unsigned hi)
{
	int ps = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
	if (ps < 0)
		return die("capture needs a packet socket (root): %s", strerror(errno));
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
				 .sll_ifindex = (int)if_nametoindex("lo")};
	if (bind(ps, (struct sockaddr *)&ll, sizeof ll) != 0)
		return die("cannot bind the packet socket to lo: %s", strerror(errno));
	FILE *f = fopen(file, "wb");
	if (!f)
		return die("cannot write %s", file);
	static uint8_t pkt[65536 + 64];
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned n = 0;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = seconds * 1000L - ((t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L);
		if (left <= 0)
			break;
		struct pollfd pf = {.fd = ps, .events = POLLIN};
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		struct sockaddr_ll from_ll;
		socklen_t sl = sizeof from_ll;
		ssize_t k = recvfrom(ps, pkt, sizeof pkt, 0, (struct sockaddr *)&from_ll, &sl);
		if (k < (ssize_t)(sizeof(struct iphdr) + sizeof(struct udphdr)) || from_ll.sll_pkttype == PACKET_OUTGOING)
			continue;
		const struct iphdr *ip = (const struct iphdr *)pkt;
		size_t ihl = (size_t)ip->ihl * 4;
		if (ip->protocol != IPPROTO_UDP || k < (ssize_t)(ihl + sizeof(struct udphdr)))
			continue;
		const struct udphdr *udp = (const struct udphdr *)(pkt + ihl);
		unsigned dport = ntohs(udp->dest);
		const uint8_t *pl = pkt + ihl + sizeof *udp;
		uint32_t len = (uint32_t)(k - (ssize_t)(ihl + sizeof *udp));
		if (dport < lo || dport > hi || len < WIRE_OVERHEAD || ld32(pl) != WIRE_MAGIC)
			continue;
		uint32_t sip = ntohl(ip->saddr), dip = ntohl(ip->daddr);
		uint16_t sport = ntohs(udp->source), dp = (uint16_t)dport;
		fwrite(&sip, 4, 1, f);
		fwrite(&sport, 2, 1, f);
		fwrite(&dip, 4, 1, f);
		fwrite(&dp, 2, 1, f);
		fwrite(&len, 4, 1, f);
		fwrite(pl, 1, len, f);
		n++;
	}
	fclose(f);
	close(ps);
	printf("captured %u\n", n);
	return 0;
}

static int replay(const char *file)
{
	FILE *f = fopen(file, "rb");
	if (!f)
		return die("cannot read %s", file);
	static uint8_t buf[65536];
	unsigned n = 0, failed = 0;
	uint32_t sip, dip, len;
	uint16_t sport, dport;
	while (fread(&sip, 4, 1, f) == 1 && fread(&sport, 2, 1, f) == 1 && fread(&dip, 4, 1, f) == 1 &&
	       fread(&dport, 2, 1, f) == 1 && fread(&len, 4, 1, f) == 1 && len <= sizeof buf &&
	       fread(buf, 1, len, f) == len) {
		struct transport_addr src = {sip, sport}, dst = {dip, dport};
		if (send_dgram(buf, len, &dst, has_spoof ? &src : NULL) != 0)
			failed++;
		n++;
		if (n % 64 == 0)
			usleep(2000); /* do not overflow the receivers' socket buffers */
	}
	fclose(f);
	printf("sent %u\n", n - failed);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--spoof") && v && v[0] != '-' && transport_addr_parse(v, 0, &spoof) == 0) {
			has_spoof = 1;
			i++;
		} else if (!strcmp(o, "--spoof")) {
			has_spoof = 1; /* replay: from each datagram's recorded source */
		} else if (!v) {
			return die("option %s needs a value", o);
		} else if (!strcmp(o, "--to")) {
			if (transport_addr_parse(v, 0, &to))
				return die("--to: '%s' is not IP:PORT", v);
			has_to = 1;
			i++;
		} else if (!strcmp(o, "--key")) {
			if (strlen(v) != 2 * WIRE_KEY_SIZE)
				return die("--key: '%s' is not 32 hex digits", v);
			for (int k = 0; k < WIRE_KEY_SIZE; k++)
				key.k[k] = (uint8_t)(hexval(v[2 * k]) << 4 | hexval(v[2 * k + 1]));
			key.set = 1;
			i++;
		} else if (!strcmp(o, "--cluster")) {
			from.cluster = (uint32_t)num(v);
			i++;
		} else if (!strcmp(o, "--sender")) {
			from.sender = (uint32_t)num(v);
			i++;
		} else {
			return die("unknown option %s (see the top of tests/tools/mtrforge.c)", o);
		}
	}
	if (i >= argc)
		return die("%s", "no command (items, read, prepare, chosen, status, heartbeats, capture, replay)");
	const char *cmd = argv[i++];
	int nargs = argc - i;
	char **a = argv + i;
	if (!strcmp(cmd, "capture") && nargs == 4)
		return capture(a[0], atoi(a[1]), (unsigned)atoi(a[2]), (unsigned)atoi(a[3]));
	if (!strcmp(cmd, "replay") && nargs == 1)
		return replay(a[0]);
	if (!has_to)
		return die("%s needs --to IP:PORT", cmd);
	static uint8_t buf[WIRE_MAX_DGRAM];
	if (!strcmp(cmd, "items") && nargs == 3) {
		long n = make_item(buf + WIRE_HDR_SIZE, sizeof buf - WIRE_OVERHEAD, num(a[0]), num(a[1]), a[2]);
		if (n < 0)
			return die("%s", "the item does not fit a datagram");
		return send_one(buf, wire_frame_finish(buf, &from, WIRE_T_ITEMS, (uint32_t)n));
	}
	if (!strcmp(cmd, "read") && nargs == 3) {
		static uint8_t item[WIRE_MAX_DGRAM];
		long n = make_item(item, sizeof item, num(a[0]), 1, a[2]);
		struct wire_read r = {.stream = num(a[0]), .rid = num(a[1]), .deadline_ms = 5000, .item = item,
				      .item_len = (uint32_t)n};
		long len = n < 0 ? n : wire_read_build(buf, sizeof buf, &from, &r);
		if (len < 0)
			return die("%s", "the read does not fit a datagram");
		return send_one(buf, (size_t)len);
	}
	if (!strcmp(cmd, "prepare") && nargs == 1) {
		struct paxos_msg m = {.type = PAXOS_PREPARE, .ballot = num(a[0]), .inst = 1};
		long len = wire_paxos_build(buf, sizeof buf, &from, &m);
		return len < 0 ? die("%s", "cannot build") : send_one(buf, (size_t)len);
	}
	if (!strcmp(cmd, "chosen") && nargs == 4) {
		struct batch_range r = {.stream = num(a[1]), .first = num(a[2]), .last = num(a[3])};
		struct paxos_entry e = {.inst = num(a[0]), .ballot = PAXOS_BALLOT_CHOSEN, .value = {.n = 1, .r = &r}};
		struct paxos_msg m = {.type = PAXOS_CHOSEN, .ballot = PAXOS_BALLOT_CHOSEN, .n_entries = 1, .entries = &e};
		long len = wire_paxos_build(buf, sizeof buf, &from, &m);
		return len < 0 ? die("%s", "cannot build") : send_one(buf, (size_t)len);
	}
	if (!strcmp(cmd, "status") && nargs == 0) {
		struct wire_status st = {.node = from.sender, .role = WIRE_ROLE_LEADER, .leader = from.sender,
					 .ballot = 0xffffffffffffff00ull, .chosen = 1000000, .applied = 1000000};
		return send_one(buf, wire_status_build(buf, &from, &st));
	}
	if (!strcmp(cmd, "heartbeats") && nargs == 1) {
		unsigned long n = strtoul(a[0], NULL, 10), sent = 0;
		for (unsigned long k = 0; k < n; k++) {
			struct wire_heartbeat hb = {.high = 1};
			if (getrandom(&hb.stream, sizeof hb.stream, 0) != sizeof hb.stream || hb.stream == 0)
				hb.stream = 0x5eed5eed00000000ull + k;
			size_t len = wire_heartbeat_build(buf, &from, &hb);
			if (send_dgram(buf, len, &to, has_spoof ? &spoof : NULL) == 0)
				sent++;
			if (k % 64 == 63)
				usleep(2000);
		}
		printf("sent %lu\n", sent);
		return sent == n ? 0 : 1;
	}
	return die("unknown command or wrong arguments: %s (see the top of tests/tools/mtrforge.c)", cmd);
}
