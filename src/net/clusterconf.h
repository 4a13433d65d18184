/*
 * clusterconf.h - the configuration both daemons share: which cluster, its
 * key, its servers, and the transport that carries datagrams.
 *
 * metronomed and mtrproxy put CLUSTERCONF_KEYS at the front of their own key
 * tables (conf.h), load the file, and call clusterconf_read() to get checked,
 * typed values; clusterconf_transport() fills a transport_config from them.
 * doc/config.md lists every key.
 */
#ifndef MTR_CLUSTERCONF_H
#define MTR_CLUSTERCONF_H

#include <stdint.h>
#include <stdio.h>

#include "conf.h"
#include "transport.h"
#include "wire.h"

/* The most servers a cluster may have (the Paxos core's PAXOS_MAX_NODES is
 * the same number; server.c checks that at compile time). */
#define CLUSTERCONF_MAX_SERVERS 16u

/* The file name of the replica database inside a server's data.dir (the
 * apply module's APPLY_DB_NAME; the local cluster reads it when stopping). */
#define CLUSTERCONF_REPLICA_DB "replica.db"

/* Default UDP port of server id i: CLUSTERCONF_SERVER_PORT + i. */
#define CLUSTERCONF_SERVER_PORT 7501

/* The shared keys, as initializers of struct conf_key (see conf.h). */
#define CLUSTERCONF_KEYS                                                                                     \
	{ "cluster.id", CONF_INT, "1", "cluster id (1..2^32-1): datagrams of other clusters are dropped" },   \
	{ "cluster.key", CONF_STRING, NULL,                                                                   \
	  "32 hex digits (--gen-key prints a new one): the key of every datagram's MAC, the same on every "   \
	  "node; required unless cluster.insecure" },                                                         \
	{ "cluster.key_next", CONF_STRING, NULL,                                                              \
	  "32 hex digits: a second key also accepted on receive, during a key rotation (doc/security.md); "   \
	  "datagrams are sent with cluster.key" },                                                            \
	{ "cluster.insecure", CONF_BOOL, "no",                                                                \
	  "yes: run without cluster.key (anyone who can send to the nodes can write, read and stop the "      \
	  "cluster); logged at warn at every start" },                                                        \
	{ "cluster.servers", CONF_LIST, NULL,                                                                 \
	  "every server's address ip:port or host:port, in server id order (id 0 first); a host name is "     \
	  "resolved once, at start (IPv4; restart to re-resolve); required" },                     \
	{ "cluster.group", CONF_STRING, NULL,                                                                 \
	  "multicast group ip:port for items; unset: proxies send each item to every server (fan-out)" },    \
	{ "transport.kind", CONF_STRING, "udp", "udp (kernel sockets) or dpdk (kernel bypass)" },             \
	{ "transport.mtu", CONF_STRING, "auto",                                                                \
	  "largest datagram this process sends, in bytes (larger items are fragmented); auto: the smallest "  \
	  "route MTU toward the servers (or cluster.group) minus 28, 1472 for dpdk" },                        \
	{ "transport.rcvbuf", CONF_SIZE, "8M", "socket receive buffer (udp)" },                               \
	{ "transport.mcast_iface", CONF_STRING, NULL, "local address of the multicast interface (udp)" },     \
	{ "transport.dpdk_eal", CONF_STRING, NULL, "EAL arguments, space separated (dpdk)" },                  \
	{ "transport.dpdk_port", CONF_STRING, NULL, "DPDK port: a vdev string or a PCI address (dpdk)" },      \
	{ "transport.busy_poll", CONF_BOOL, "no", "poll without sleeping when idle (dpdk; dedicated cores only)" }

/* The checked values of the shared keys. */
struct clusterconf {
	uint32_t cluster_id;
	struct wire_key key; /* key.set: cluster.key; key.next_set: cluster.key_next */
	int insecure;        /* no cluster.key, cluster.insecure = yes */
	unsigned nservers;
	struct transport_addr servers[CLUSTERCONF_MAX_SERVERS];
	int has_group;
	struct transport_addr group;
	char kind[16];
	uint32_t mtu; /* 0: auto (clusterconf_mtu) */
	int rcvbuf;
	uint32_t mcast_iface;
	const char *dpdk_eal;  /* borrowed from the struct conf */
	const char *dpdk_port; /* borrowed from the struct conf */
	int busy_poll;
};

/* Check and convert the shared keys of c.  0, or MTR_ECONFIG with a sentence
 * in err naming the key and what to do.  A configuration without cluster.key
 * is refused unless cluster.insecure = yes. */
int clusterconf_read(const struct conf *c, struct clusterconf *out, char *err, size_t errlen);

/* Fill tc (after transport_config_init) with the cluster id, key, kind, the
 * group (multicast) or the fan-out list (every server), rcvbuf and the dpdk
 * settings.  bind is left to the caller. */
void clusterconf_transport(const struct clusterconf *cc, struct transport_config *tc);

/* The datagram size this process sends: cc->mtu when set; for auto (0),
 * with udp, the smallest route MTU (transport_route_mtu) toward the
 * servers, or toward cluster.group when set, less the IPv4 and UDP headers
 * (28), within WIRE_MIN_MTU..WIRE_MAX_DGRAM; self (a server's own id, or
 * -1) is left out when there is another server.  WIRE_DEFAULT_MTU for dpdk
 * and when no route tells.  Receivers take any size up to WIRE_MAX_DGRAM
 * (udp), so processes may differ. */
uint32_t clusterconf_mtu(const struct clusterconf *cc, int self);

/* Log, at warn, that cc runs without authentication, when it does (each
 * daemon calls it at every start; who: "server 0", "proxy 256"). */
void clusterconf_warn_insecure(const struct clusterconf *cc, const char *who);

/* A fresh cluster key from the OS's random source (libsodium's
 * randombytes_buf), as 32 hex digits and a NUL in hex. */
void clusterconf_new_key(char hex[2 * WIRE_KEY_SIZE + 1]);

/* The daemons' --gen-key: print a fresh key and a newline on f.  Returns
 * the exit status (0, or 2 when libsodium cannot start). */
int clusterconf_gen_key_main(FILE *f);

#endif
