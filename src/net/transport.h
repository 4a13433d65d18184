/*
 * transport.h - one interface for moving datagrams, whatever carries them.
 *
 * A transport sends datagrams to the group (every server: a multicast group,
 * or a fan-out list of unicast addresses) or to one peer, and receives
 * batches of datagrams.  Two implementations: "udp" (kernel sockets with
 * sendmmsg/recvmmsg, transport_udp.c) and "dpdk" (kernel bypass,
 * transport_dpdk.c).  Both carry the same UDP/IPv4 datagrams.
 *
 * Integrity is checked here, once for every transport: transport_recv()
 * returns only datagrams that passed wire_dgram_check(); the others are
 * dropped and counted by reason (counters below).
 *
 * Threading: a transport is used by one thread at a time.
 */
#ifndef MTR_TRANSPORT_H
#define MTR_TRANSPORT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "wire.h"

/* An IPv4 endpoint, both fields in host byte order. */
struct transport_addr {
	uint32_t ip;
	uint16_t port;
};

/* Parse "a.b.c.d:port" (or "a.b.c.d" with default_port).  0 or MTR_EINVAL. */
int transport_addr_parse(const char *s, uint16_t default_port, struct transport_addr *out);

/*
 * Like transport_addr_parse, but the host part may also be a name
 * ("db1.example:7501", "localhost"), resolved now to its first IPv4
 * address with getaddrinfo (the resolver's files, /etc/hosts, DNS; may
 * block while DNS answers).  0, or MTR_EINVAL with a sentence in err
 * (the syntax, or the resolver's reason for a name it cannot resolve).
 */
int transport_addr_resolve(const char *s, uint16_t default_port, struct transport_addr *out, char *err,
			   size_t errlen);

/* The local IPv4 address the kernel uses toward dst (a connected UDP
 * socket's getsockname; nothing is sent), in host order in *ip.  0, or
 * MTR_EIO when there is no route. */
int transport_local_addr(const struct transport_addr *dst, uint32_t *ip);

/* The MTU in bytes (IP header included) of the kernel's route toward dst
 * (a connected UDP socket's IP_MTU: the interface's MTU, or a smaller path
 * MTU the kernel learned; nothing is sent), or 0 when there is no route or
 * the system cannot tell. */
unsigned transport_route_mtu(const struct transport_addr *dst);

/* Format as "a.b.c.d:port" into buf (at least 22 bytes); returns buf. */
char *transport_addr_format(const struct transport_addr *a, char *buf, size_t size);

/* One datagram.  On send, buf/len are the caller's (peer used by
 * transport_send_to).  On receive, buf points into the transport's own memory,
 * valid until the next transport_recv() or transport_close(). */
struct transport_msg {
	uint8_t *buf;
	uint32_t len;
	struct transport_addr peer;
	struct wire_hdr hdr; /* receive: the checked header */
};

/* Why a received datagram was dropped: X(NAME, summary). */
#define TRANSPORT_DROP_MAP(X)                                          \
	X(TRUNCATED, "shorter than its header says, or than a header") \
	X(MAGIC, "not a Metronome datagram")                           \
	X(VERSION, "unsupported protocol version")                     \
	X(MALFORMED, "inconsistent header")                            \
	X(INTEGRITY, "hash or MAC mismatch")                           \
	X(CLUSTER, "from another cluster")                             \
	X(OVERFLOW, "lost in a full receive queue (kernel or NIC)")    \
	X(NOTIP, "not IPv4/UDP to our port (DPDK)")

enum transport_drop {
#define TRANSPORT__DROP_ENUM(name, text) TRANSPORT_DROP_##name,
	TRANSPORT_DROP_MAP(TRANSPORT__DROP_ENUM)
#undef TRANSPORT__DROP_ENUM
	TRANSPORT_DROP__COUNT
};

/* Name of a drop reason, lower case ("integrity"). */
const char *transport_drop_name(unsigned reason);

/* dgrams_in/bytes_in: datagrams that passed the check (delivered);
 * dgrams_out/bytes_out: datagrams put on the wire (a fan-out to k
 * destinations counts k); drops: by reason, never delivered. */
struct transport_counters {
	uint64_t dgrams_in, bytes_in;
	uint64_t dgrams_out, bytes_out;
	uint64_t drops[TRANSPORT_DROP__COUNT];
};

#define TRANSPORT_MAX_DESTS 32 /* the members of two configurations */

/* Configuration (zero it, then set what you need; transport_config_init()
 * gives the defaults). */
struct transport_config {
	const char *kind;           /* "udp" (default) or "dpdk" */
	struct transport_addr bind; /* local address and port to receive on;
				     * port 0: any free port, and after
				     * transport_open t->cfg.bind holds the
				     * address actually bound (udp) */
	/* The group: a multicast address (group.ip in 224.0.0.0/4) or, when
	 * ndests > 0, a fan-out list of unicast destinations. */
	struct transport_addr group;
	struct transport_addr dests[TRANSPORT_MAX_DESTS];
	unsigned ndests;
	uint32_t mcast_iface; /* interface address for multicast (0: any) */
	int mcast_ttl;        /* default 1 */
	int mcast_loop;       /* deliver our own multicast locally; default 1 */
	int no_recv;          /* send-only (a proxy that need not bind) */
	size_t mtu;           /* datagram size limit, default WIRE_DEFAULT_MTU */
	int rcvbuf, sndbuf;   /* socket buffer sizes in bytes (0: 8 MiB / 4 MiB) */
	unsigned batch;       /* datagrams per recv call, default 64 */
	uint32_t cluster;     /* our cluster id: others are dropped */
	struct wire_key key;  /* cluster key (MAC) if set */
	/* dpdk: EAL arguments (space separated), port (vdev or PCI address),
	 * mbufs, queues, busy polling.  See doc/transport.md. */
	const char *dpdk_eal;
	const char *dpdk_port;
	unsigned dpdk_mbufs;
	unsigned dpdk_queues;
	int busy_poll;
};

void transport_config_init(struct transport_config *cfg);

struct transport;

/* Operations an implementation provides (see transport_* below).
 * recv_raw returns raw datagrams (buf, len, peer); transport_recv() runs
 * transport_filter() on them, implementations do not.  The wrappers have
 * already checked the arguments and, for sends, that no len exceeds
 * cfg.mtu. */
struct transport_ops {
	const char *name;
	int (*send_group)(struct transport *t, const struct transport_msg *m, unsigned n);
	int (*send_to)(struct transport *t, const struct transport_msg *m, unsigned n);
	/* send_to from any thread, beside the owner's calls (NULL: cannot) */
	int (*send_to_mt)(struct transport *t, const struct transport_msg *m, unsigned n);
	int (*recv_raw)(struct transport *t, struct transport_msg *m, unsigned n);
	int (*wait)(struct transport *t, int fd, int timeout_ms); /* fd: also wake on it; -1 none */
	int (*fd)(struct transport *t);
	void (*close)(struct transport *t);
};

/* The common part every implementation embeds first. */
struct transport {
	const struct transport_ops *ops;
	struct transport_config cfg;
	struct transport_counters ctr;
	/* next drop of each reason logged at warn (monotonic ms); the last slot:
	 * integrity drops whose MAC flag disagrees with our key (a node with
	 * and one without a key), told apart from a wrong key */
	uint64_t warn_ms[TRANSPORT_DROP__COUNT + 1];
	/* what transport_send_to_mt sent (other threads: atomic), added to
	 * dgrams_out/bytes_out in every snapshot of the counters */
	_Atomic uint64_t mt_dgrams_out, mt_bytes_out;
};

/* Open a transport of cfg->kind.  On success *out is the transport (close it
 * with transport_close) and 0 is returned; else a negative MTR_E* code and a
 * logged line saying what was wrong (MTR_ENOTSUP: unknown kind, or "dpdk" in
 * a build without DPDK; MTR_ECONFIG: a value out of range; MTR_EEXIST: the
 * bind address is in use).  Zero fields of *cfg take their defaults, and the
 * implementation receives that completed copy. */
int transport_open(const struct transport_config *cfg, struct transport **out);

/* Send n datagrams to the whole group.  Returns how many were sent (all of
 * them unless the transport was closed or failed: then a negative code;
 * MTR_ETOOBIG, nothing sent, when a datagram is longer than cfg.mtu).  A
 * datagram refused for one destination (nobody listening, no route) is lost
 * like any datagram, not an error. */
int transport_send_group(struct transport *t, const struct transport_msg *m, unsigned n);

/* Send n datagrams, each to its m[i].peer. */
int transport_send_to(struct transport *t, const struct transport_msg *m, unsigned n);

/* The same from any thread, while the transport's user goes on with its own
 * calls (a server's reader thread sends the answer of a read itself instead
 * of waking the network thread to do it).  The caller's buffers only, no
 * state of the transport but its socket and the atomic out-counters.
 * MTR_ENOTSUP when the transport cannot (dpdk: its queues belong to one
 * thread): hand the datagrams to the owning thread instead. */
int transport_send_to_mt(struct transport *t, const struct transport_msg *m, unsigned n);
/* Replace the fan-out destinations of the group (a proxy following a new
 * membership, doc/proxy.md "Servers"): 0, or MTR_EINVAL (n is 0 or over
 * TRANSPORT_MAX_DESTS).  A multicast group (no destinations) stays as it
 * is: the servers join it.  Not concurrently with a send. */
int transport_set_dests(struct transport *t, const struct transport_addr *d, unsigned n);

/* Receive up to n checked datagrams without blocking; returns the count (0
 * when none is waiting) or a negative code.  m[i].buf belongs to the
 * transport until the next call. */
int transport_recv(struct transport *t, struct transport_msg *m, unsigned n);

/* Block until a datagram may be waiting or timeout_ms passes (-1: forever).
 * Returns 1 (maybe readable), 0 (timeout) or a negative code.  Never spins:
 * implementations without an fd back off with short sleeps unless busy_poll
 * is set. */
int transport_wait(struct transport *t, int timeout_ms);

/* The same, but also return (1) as soon as fd is readable: an event loop
 * whose transport has no fd (dpdk) waits on its other work with this (an
 * epoll fd, an eventfd) instead of waking every millisecond to look. */
int transport_wait_fd(struct transport *t, int fd, int timeout_ms);

/* A file descriptor that becomes readable with traffic, for an event loop;
 * -1 when the transport has none (then use transport_wait). */
int transport_fd(struct transport *t);

/* A snapshot of the counters. */
void transport_counters(const struct transport *t, struct transport_counters *out);

/* Hand every counter to fn as "prefix.dgrams_in", ..., and one per drop
 * reason, "prefix.drop.integrity" (stats.h).  Same thread as the
 * transport's user. */
void transport_stats_each(const struct transport *t, const char *prefix, stats_fn fn, void *arg);

/* The same for a copy of the counters (transport_counters), any thread. */
void transport_counters_each(const struct transport_counters *c, const char *prefix, stats_fn fn, void *arg);

/* The meaning of a counter transport_stats_each hands out, by its name
 * without the prefix ("dgrams_in", "drop.integrity"); NULL for another
 * name.  (The /metrics HELP lines.) */
const char *transport_stats_help(const char *name);

/* Release everything.  t may be NULL. */
void transport_close(struct transport *t);

/* Implementations (transport_open dispatches on cfg->kind and passes a
 * completed configuration: call these through transport_open). */
typedef int (*transport_open_fn)(const struct transport_config *cfg, struct transport **out);
int transport_udp_open(const struct transport_config *cfg, struct transport **out);

/* Make kind "dpdk" open with fn (src/dpdk's transport_dpdk_enable() calls
 * this; until then "dpdk" is refused with MTR_ENOTSUP).  Call it once at
 * start, before any transport is opened. */
void transport_register_dpdk(transport_open_fn fn);

/* Check the raw datagrams m[0..n) in place (wire_dgram_check with
 * cfg.cluster and cfg.key), count the bad ones by reason (the first of each
 * reason in a minute is logged at warn, naming the sender's address and
 * the likely cause: "failed authentication: wrong cluster.key?"), compact the good
 * ones to the front with their headers filled, update the in-counters, and
 * return how many are good.  transport_recv() calls it on what recv_raw
 * returned. */
int transport_filter(struct transport *t, struct transport_msg *m, unsigned n);

#endif
