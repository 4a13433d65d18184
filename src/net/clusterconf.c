/*
 * clusterconf.c - the shared configuration keys of metronomed and mtrproxy
 * (clusterconf.h): parse, check, and turn into a transport configuration.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "clusterconf.h"
#include "log.h"
#include "metronome.h"
#include "util.h"


/* 32 hex digits into out[16].  0 or MTR_EINVAL. */
static int parse_key(const char *s, uint8_t out[WIRE_KEY_SIZE])
{
	if (strlen(s) != 2 * WIRE_KEY_SIZE)
		return MTR_EINVAL;
	for (int i = 0; i < WIRE_KEY_SIZE; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return MTR_EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* cluster.key, cluster.key_next and cluster.insecure into out. */
static int read_keys(const struct conf *c, struct clusterconf *out, char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium cannot start (sodium_init failed): no datagram can be authenticated");
		return MTR_ECONFIG;
	}
	const char *k = conf_str(c, "cluster.key");
	const char *kn = conf_str(c, "cluster.key_next");
	if (k && *k) {
		if (parse_key(k, out->key.k)) {
			snprintf(err, errlen,
				 "cluster.key: expected 32 hexadecimal digits (16 bytes), got '%s'; make one with --gen-key", k);
			return MTR_ECONFIG;
		}
		out->key.set = 1;
	}
	if (kn && *kn) {
		if (parse_key(kn, out->key.next)) {
			snprintf(err, errlen,
				 "cluster.key_next: expected 32 hexadecimal digits (16 bytes), got '%s'; make one with --gen-key",
				 kn);
			return MTR_ECONFIG;
		}
		if (!out->key.set) {
			snprintf(err, errlen, "cluster.key_next is set but cluster.key is not: a rotation needs both (doc/security.md)");
			return MTR_ECONFIG;
		}
		out->key.next_set = 1;
	}
	if (!out->key.set && !conf_bool(c, "cluster.insecure")) {
		snprintf(err, errlen,
			 "cluster.key is not set: every server and proxy of a cluster needs the same key.  Make one with "
			 "`metronomed --gen-key` (or `mtrproxy --gen-key`) and add `cluster.key = KEY` to every node's "
			 "configuration, or set cluster.insecure = yes to run without authentication");
		return MTR_ECONFIG;
	}
	out->insecure = !out->key.set;
	return 0;
}

/* Split the comma-separated list into addresses. */
static int parse_servers(const char *list, struct clusterconf *out, char *err, size_t errlen)
{
	char buf[1024];
	if (strlen(list) >= sizeof(buf)) {
		snprintf(err, errlen, "cluster.servers: the list is too long (at most %zu characters)", sizeof(buf) - 1);
		return MTR_ECONFIG;
	}
	strcpy(buf, list);
	char *save = NULL;
	out->nservers = 0;
	for (char *w = strtok_r(buf, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
		if (out->nservers == CLUSTERCONF_MAX_SERVERS) {
			snprintf(err, errlen, "cluster.servers: more than %u servers; a cluster has at most %u",
				 CLUSTERCONF_MAX_SERVERS, CLUSTERCONF_MAX_SERVERS);
			return MTR_ECONFIG;
		}
		uint16_t defport = (uint16_t)(CLUSTERCONF_SERVER_PORT + out->nservers);
		char why[384];
		if (transport_addr_resolve(w, defport, &out->servers[out->nservers], why, sizeof why)) {
			snprintf(err, errlen, "cluster.servers: server %u: %s", out->nservers, why);
			return MTR_ECONFIG;
		}
		out->nservers++;
	}
	if (!out->nservers) {
		snprintf(err, errlen, "cluster.servers: the list is empty; name every server as ip:port");
		return MTR_ECONFIG;
	}
	return 0;
}

int clusterconf_read(const struct conf *c, struct clusterconf *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	int64_t id = conf_int(c, "cluster.id");
	if (id < 1 || id > UINT32_MAX) {
		snprintf(err, errlen, "cluster.id: %lld is out of range; use 1 .. 4294967295", (long long)id);
		return MTR_ECONFIG;
	}
	out->cluster_id = (uint32_t)id;
	int rc = read_keys(c, out, err, errlen);
	if (rc)
		return rc;
	const char *servers = conf_str(c, "cluster.servers");
	if (!servers || !*servers) {
		snprintf(err, errlen, "cluster.servers is not set; list every server as ip:port in id order");
		return MTR_ECONFIG;
	}
	rc = parse_servers(servers, out, err, errlen);
	if (rc)
		return rc;
	const char *g = conf_str(c, "cluster.group");
	if (g && *g) {
		if (transport_addr_parse(g, CLUSTERCONF_SERVER_PORT, &out->group) ||
		    (out->group.ip >> 28) != 0xe) {
			snprintf(err, errlen, "cluster.group: '%s' is not a multicast address (224.0.0.0/4) ip:port", g);
			return MTR_ECONFIG;
		}
		out->has_group = 1;
	}
	const char *kind = conf_str(c, "transport.kind");
	if (strcmp(kind, "udp") && strcmp(kind, "dpdk")) {
		snprintf(err, errlen, "transport.kind: '%s' is unknown; use udp or dpdk", kind);
		return MTR_ECONFIG;
	}
	snprintf(out->kind, sizeof(out->kind), "%s", kind);
	const char *mtus = conf_str(c, "transport.mtu");
	int64_t mtu = 0;
	if (mtus == NULL || strcmp(mtus, "auto") != 0) {
		if (mtus == NULL || conf_parse_value(CONF_SIZE, mtus, &mtu) != 0) {
			snprintf(err, errlen, "transport.mtu: '%s' is neither auto nor a size in bytes",
				 mtus ? mtus : "");
			return MTR_ECONFIG;
		}
		if (mtu < WIRE_MIN_MTU || mtu > WIRE_MAX_DGRAM) {
			snprintf(err, errlen, "transport.mtu: %lld is out of range; use auto or %u .. %u",
				 (long long)mtu, WIRE_MIN_MTU, WIRE_MAX_DGRAM);
			return MTR_ECONFIG;
		}
	}
	out->mtu = (uint32_t)mtu;
	int64_t rb = conf_int(c, "transport.rcvbuf");
	if (rb < 0 || rb > (1 << 30)) {
		snprintf(err, errlen, "transport.rcvbuf: %lld is out of range; use 0 .. 1G", (long long)rb);
		return MTR_ECONFIG;
	}
	out->rcvbuf = (int)rb;
	const char *mi = conf_str(c, "transport.mcast_iface");
	if (mi && *mi) {
		struct transport_addr a;
		if (transport_addr_parse(mi, 0, &a)) {
			snprintf(err, errlen, "transport.mcast_iface: '%s' is not an IPv4 address", mi);
			return MTR_ECONFIG;
		}
		out->mcast_iface = a.ip;
	}
	out->dpdk_eal = conf_str(c, "transport.dpdk_eal");
	out->dpdk_port = conf_str(c, "transport.dpdk_port");
	out->busy_poll = conf_bool(c, "transport.busy_poll");
	if (!strcmp(kind, "dpdk") && (!out->dpdk_port || !*out->dpdk_port)) {
		snprintf(err, errlen, "transport.kind is dpdk but transport.dpdk_port is not set; name a vdev or PCI address");
		return MTR_ECONFIG;
	}
	return 0;
}

void clusterconf_transport(const struct clusterconf *cc, struct transport_config *tc)
{
	tc->kind = cc->kind;
	tc->cluster = cc->cluster_id;
	tc->key = cc->key;
	if (cc->has_group) {
		tc->group = cc->group;
		tc->ndests = 0;
	} else {
		for (unsigned i = 0; i < cc->nservers && i < TRANSPORT_MAX_DESTS; i++)
			tc->dests[i] = cc->servers[i];
		tc->ndests = cc->nservers < TRANSPORT_MAX_DESTS ? cc->nservers : TRANSPORT_MAX_DESTS;
	}
	tc->rcvbuf = cc->rcvbuf;
	tc->mcast_iface = cc->mcast_iface;
	tc->dpdk_eal = cc->dpdk_eal;
	tc->dpdk_port = cc->dpdk_port;
	tc->busy_poll = cc->busy_poll;
}

uint32_t clusterconf_mtu(const struct clusterconf *cc, int self)
{
	if (cc->mtu != 0)
		return cc->mtu;
	if (strcmp(cc->kind, "udp") != 0)
		return WIRE_DEFAULT_MTU;
	unsigned least = 0;
	for (unsigned i = 0; i < (cc->has_group ? 1u : cc->nservers); i++) {
		if (!cc->has_group && (int)i == self && cc->nservers > 1)
			continue;
		unsigned m = transport_route_mtu(cc->has_group ? &cc->group : &cc->servers[i]);
		if (m != 0 && (least == 0 || m < least))
			least = m;
	}
	if (least == 0)
		return WIRE_DEFAULT_MTU;
	least = least > 28 ? least - 28 : 0;
	return least < WIRE_MIN_MTU ? WIRE_MIN_MTU : least > WIRE_MAX_DGRAM ? WIRE_MAX_DGRAM : least;
}

void clusterconf_warn_insecure(const struct clusterconf *cc, const char *who)
{
	if (!cc->key.set)
		mtr_log(LOG_WARN,
			"%s: INSECURE: no cluster.key (cluster.insecure = yes): datagrams are not authenticated, anyone who "
			"can send to this node can write, read and stop the cluster (doc/security.md)",
			who);
}

void clusterconf_new_key(char hex[2 * WIRE_KEY_SIZE + 1])
{
	uint8_t k[WIRE_KEY_SIZE];
	randombytes_buf(k, sizeof k);
	sodium_bin2hex(hex, 2 * WIRE_KEY_SIZE + 1, k, sizeof k);
	sodium_memzero(k, sizeof k);
}

int clusterconf_gen_key_main(FILE *f)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "libsodium cannot start: no key made\n");
		return 2;
	}
	char hex[2 * WIRE_KEY_SIZE + 1];
	clusterconf_new_key(hex);
	fprintf(f, "%s\n", hex);
	return fflush(f) == 0 ? 0 : 2;
}
