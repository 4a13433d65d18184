/*
 * clusterconf.c - the shared configuration keys of metronomed and mtrproxy
 * (clusterconf.h): parse, check, and turn into a transport configuration.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clusterconf.h"
#include "metronome.h"
#include "util.h"


static int parse_key(const char *s, struct wire_key *k)
{
	if (strlen(s) != 32)
		return MTR_EINVAL;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return MTR_EINVAL;
		k->k[i] = (uint8_t)(hi << 4 | lo);
	}
	k->set = 1;
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
		if (transport_addr_parse(w, defport, &out->servers[out->nservers])) {
			snprintf(err, errlen, "cluster.servers: '%s' is not an address; write a.b.c.d:port", w);
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
	const char *k = conf_str(c, "cluster.key");
	if (k && *k && parse_key(k, &out->key)) {
		snprintf(err, errlen, "cluster.key: expected 32 hexadecimal digits (16 bytes), got '%s'", k);
		return MTR_ECONFIG;
	}
	const char *servers = conf_str(c, "cluster.servers");
	if (!servers || !*servers) {
		snprintf(err, errlen, "cluster.servers is not set; list every server as ip:port in id order");
		return MTR_ECONFIG;
	}
	int rc = parse_servers(servers, out, err, errlen);
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
	int64_t mtu = conf_int(c, "transport.mtu");
	if (mtu < WIRE_MIN_MTU || mtu > WIRE_MAX_DGRAM) {
		snprintf(err, errlen, "transport.mtu: %lld is out of range; use %u .. %u", (long long)mtu,
			 WIRE_MIN_MTU, WIRE_MAX_DGRAM);
		return MTR_ECONFIG;
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
