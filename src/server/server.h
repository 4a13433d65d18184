/*
 * server.h - metronomed as a library object: one replica server (ingest,
 * acceptor, learner, replica) joined from the built modules as doc/server.md
 * describes.  server_open() binds and opens everything, server_run() runs
 * the network loop on the calling thread (with apply, reader and snapshot
 * threads of its own) until server_stop(), server_close() joins and frees.
 * Several servers can live in one process (the unit test runs three), since
 * nothing here is global.
 */
#ifndef MTR_SERVER_H
#define MTR_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "clusterconf.h"
#include "conf.h"

/* The keys of metronomed besides CLUSTERCONF_KEYS (struct conf_key
 * initializers).  metronomed --help and doc/config.md print this table. */
#define SERVER_KEYS                                                                                           \
	{ "server.id", CONF_INT, NULL,                                                                        \
	  "this server's node id: its index in cluster.servers, or a new id (0..63) given by mtrctl add-server; required" }, \
	{ "server.address", CONF_STRING, NULL,                                                                 \
	  "IP:PORT this server binds; default: its cluster.servers entry (required for an id beyond cluster.servers)" }, \
	{ "data.dir", CONF_STRING, NULL, "data directory (created if missing); required" },                   \
	{ "data.durability", CONF_STRING, "disk",                                                             \
	  "disk: items and Paxos state are fdatasync'ed (group commit); memory: no fsync" },                  \
	{ "apply.sync", CONF_STRING, "normal", "replica database synchronous mode: normal or full" },          \
	{ "paxos.heartbeat", CONF_DURATION, "50ms", "leader heartbeat and retransmission period" },           \
	{ "paxos.election", CONF_DURATION, "500ms", "election timeout T (a follower waits T..2T)" },           \
	{ "paxos.pipeline", CONF_INT, "1", "fresh instances the leader keeps in flight (1 .. 8; 1: one round at a time)" }, \
	{ "server.status_period", CONF_DURATION, "100ms", "period of STATUS datagrams to peers and proxies" }, \
	{ "server.result_cache", CONF_INT, "256", "instances whose results are kept for RESULT_REQUEST" },    \
	{ "server.compact_lag", CONF_INT, "10000",                                                            \
	  "instances a member may fall behind before the others compact without it (it then needs a snapshot)" }, \
	{ "server.stream_idle", CONF_DURATION, "10m",                                                         \
	  "a stream without items or heartbeats this long is dead: a full stream table evicts it" },           \
	{ "server.readers", CONF_INT, "4",                                                                    \
	  "reader threads (READ requests run in parallel; doc/server.md \"Reads\")" },                         \
	{ "server.log_retain_time", CONF_DURATION, "1440m",                                                   \
	  "keep applied items and the chosen history this long for point-in-time restore (0: not at all)" },  \
	{ "server.log_retain_bytes", CONF_SIZE, "1G",                                                        \
	  "... and at most this many bytes of them, oldest dropped first (0: not at all)" },                 \
	{ "data.segment_size", CONF_SIZE, "64M",                                                             \
	  "size at which the item log starts a new segment file (compaction and retention go by whole files)" }, \
	{ "log.level", CONF_STRING, "info", "error, warn, info, debug or trace (the MTR_LOG variable overrides)" }

/* The checked configuration of one server. */
struct server_config {
	struct clusterconf cc;     /* the shared keys (clusterconf_read) */
	uint32_t id;               /* node id: an index into cc.servers, or a newer id (0..63) */
	int has_address;           /* server.address given */
	struct transport_addr address; /* ... its value; else cc.servers[id] */
	char data_dir[4096];       /* created if missing */
	int durability_memory;     /* 1: data.durability = memory */
	int apply_sync_full;       /* 1: apply.sync = full */
	uint32_t heartbeat_ms;     /* paxos.heartbeat */
	uint32_t election_ms;      /* paxos.election */
	uint32_t pipeline;         /* paxos.pipeline (1 .. PAXOS_CONF_DELAY) */
	uint32_t status_period_ms; /* server.status_period */
	uint32_t result_cache;     /* server.result_cache (instances) */
	uint64_t compact_lag;      /* server.compact_lag (instances) */
	uint64_t stream_idle_ms;   /* server.stream_idle */
	uint32_t readers;          /* server.readers (1..READERS_MAX) */
	uint64_t retain_ms;        /* server.log_retain_time (0: no retention) */
	uint64_t retain_bytes;     /* server.log_retain_bytes (0: no retention) */
	uint64_t segment_size;     /* data.segment_size */
	int log_level;             /* log.level as enum log_level */
	/* metronomed --init-from FILE: create the replica from this SQLite
	 * file (apply_init_from; refused when data.dir holds a replica);
	 * empty: none.  Not a configuration key: a one-time action. */
	char init_from[4096];
	/* metronomed --init-from-peer: create an empty replica that waits for
	 * its content from a peer (apply_init_pending; doc/server.md "Origin"). */
	int init_from_peer;
	/* 1: init_from is a point-in-time restore's output (metronomed
	 * --replay-from): removed once the replica is made of it. */
	int init_from_remove;
};

/* Check and convert the keys of c (loaded with CLUSTERCONF_KEYS and
 * SERVER_KEYS) into *out.  0, or MTR_ECONFIG with one sentence in err naming
 * the key and what to do. */
int server_config_read(const struct conf *c, struct server_config *out, char *err, size_t errlen);

struct server;

/*
 * Create the server of cfg (copied): data directory, ingest store, Paxos
 * state (pstore), replica database, transport bound to server.address or
 * cc.servers[id].  Logs `listening on IP:PORT as server ID of N` and
 * `recovered: applied instance I`.  *out is owned by the caller
 * (server_close).  0, MTR_ECONFIG, MTR_EEXIST (address in use), MTR_EIO
 * (data directory unusable), MTR_ENOMEM; the reason is logged.
 */
int server_open(const struct server_config *cfg, struct server **out);

/*
 * Run the network loop on the calling thread (and start the apply and
 * reader threads) until server_stop().  Returns 0 after a stop, or a
 * negative code after a fatal runtime error (logged).
 */
int server_run(struct server *s);

/* Ask server_run() to return soon.  Async-signal-safe (one write(2) to an
 * eventfd), callable from any thread or a signal handler. */
void server_stop(struct server *s);

/* Join the threads, sync and close every file, free s.  Call after
 * server_run() returned (or without having run it).  NULL is fine. */
void server_close(struct server *s);

/* What a test or the cluster tables see of a server. */
struct server_info {
	uint32_t id;
	int role;          /* enum paxos_role */
	uint64_t ballot;
	uint64_t chosen;   /* highest instance known chosen */
	uint64_t applied;  /* highest instance applied to the replica */
	uint64_t released; /* items and instances <= this are released */
	uint64_t items_applied;
	uint16_t port;     /* the bound UDP port */
	int disk_full;     /* 1 while data.dir is full (doc/server.md "A full disk") */
	/* disk mode: ACCEPTED answers checked when sent, and those of them
	 * sent before their accept record or an item they name was durable
	 * (invariant 4: always 0; doc/storage.md "One commit per accept") */
	uint64_t acc_checked, acc_early;
};

/* Fill *info (thread-safe: a copy published by the network thread). */
void server_info(struct server *s, struct server_info *info);

struct metrics_buf;

/*
 * Health and figures, for the HTTP thread of metronomed (any thread; they
 * read only what the server publishes, never wait for its loop):
 *   server_metrics  appends the /metrics page (Prometheus text): gauges of
 *                   the Paxos and apply state, the apply time histogram,
 *                   and every counter of mtr_stats "server ID" (at most
 *                   STATS_PERIOD_MS old);
 *   server_ready    1 when this server hears a majority of the servers
 *                   (STATUS within max(3 status periods, 1 s)) with a
 *                   leader among them, else 0; why gets one line;
 *   server_live     1 when the network loop passed in the last 5 s and
 *                   the apply thread is not stuck on one instance for 60 s.
 * doc/operations.md explains each figure.
 */
void server_metrics(struct server *s, struct metrics_buf *b);
int server_ready(struct server *s, char *why, size_t n);
int server_live(struct server *s, char *why, size_t n);

/* Digest of the replica database and the instance it is at (thread-safe;
 * see apply_digest). */
int server_digest(struct server *s, uint64_t *instance, char hex[33]);

#endif
