/*
 * proxy.h - the proxy as a library object: clients in over TCP (the client
 * protocol, cproto.h), items out to every server (transport.h), results back
 * to the clients.
 *
 * proxy_open() binds the client listener and the transport and draws a new
 * stream id (invariant 1); proxy_run() runs the whole proxy on the calling
 * thread (one epoll loop, no other thread) until proxy_stop();
 * proxy_close() frees everything.  proxy_attach() hands the proxy an
 * already-connected socket (one end of a socketpair): that is how an
 * application embeds the proxy (the client library's embedded mode) without
 * a listening port.  The daemon mtrproxy (mtrproxy.c) is main() around this.
 * doc/proxy.md ("How the proxy works") explains the loop, push-back,
 * ordering, repair and read routing.
 */
#ifndef MTR_PROXY_H
#define MTR_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "clusterconf.h"
#include "conf.h"
#include "stats.h"
#include "transport.h"

/* The keys of mtrproxy besides CLUSTERCONF_KEYS (struct conf_key
 * initializers); mtrproxy --help prints them. */
#define PROXY_KEYS                                                                                              \
	{ "proxy.listen", CONF_STRING, "127.0.0.1:7400", "TCP address ip:port for clients" },                     \
	{ "proxy.id", CONF_INT, "256", "sender id in datagrams (server ids are 0..63; give each proxy its own, >= 64)" },     \
	{ "proxy.bind", CONF_STRING, NULL,                                                                       \
	  "UDP address ip:port for RESULT, RESEND and STATUS datagrams; unset: the local address the kernel "     \
	  "uses toward server 0, any port" },                                                                     \
	{ "proxy.buffer", CONF_SIZE, "64M", "bytes of items kept until their results arrive (push-back beyond)" },  \
	{ "proxy.buffer_items", CONF_INT, "262144", "items kept until their results arrive (push-back beyond)" },  \
	{ "proxy.heartbeat", CONF_DURATION, "10ms", "heartbeat period while items wait for results" },            \
	{ "proxy.result_timeout", CONF_DURATION, "500ms", "ask a server again for a result missing this long" },   \
	{ "proxy.read_timeout", CONF_DURATION, "5s", "a read without an answer this long fails and is cancelled (its deadline)" }, \
	{ "proxy.write_timeout", CONF_DURATION, "8s",                                                           \
	  "a write without a result this long is answered 'outcome unknown' (MTR_EUNKNOWN)" },                  \
	{ "proxy.max_clients", CONF_INT, "1024", "client connections at once (more are refused with BYE)" },       \
	{ "proxy.client_buffer", CONF_SIZE, "16M",                                                              \
	  "answers queued for one client before the proxy stops reading its requests" },                        \
	{ "proxy.users", CONF_STRING, NULL,                                                                      \
	  "file of NAME:HASH lines (mtrproxy --hash-password NAME); set: every client must log in" },            \
	{ "proxy.admins", CONF_STRING, NULL,                                                                     \
	  "users (of proxy.users, comma-separated) who may change the membership; unset: every user" },         \
	{ "proxy.insecure", CONF_BOOL, "no",                                                                     \
	  "yes: listen on a non-loopback address without proxy.users (anyone who reaches it may write)" },       \
	{ "proxy.handshake_timeout", CONF_DURATION, "5s",                                                        \
	  "a connection must finish HELLO (and AUTH) this soon after it is accepted" },                          \
	{ "proxy.idle_timeout", CONF_DURATION, "0",                                                              \
	  "close a connection that sent no whole frame this long and waits for no answer (0: never)" },          \
	{ "proxy.max_conns_per_source", CONF_INT, "64",                                                          \
	  "TCP connections at once from one source address (more are refused with BYE; 0: no limit)" },          \
	{ "proxy.tls", CONF_STRING, NULL,                                                                        \
	  "TLS for clients: off, allow (TLS and plain TCP) or require; unset: require when proxy.tls_cert "     \
	  "is set, else off" },                                                                                 \
	{ "proxy.tls_cert", CONF_STRING, NULL,                                                                   \
	  "PEM file: the proxy's TLS certificate, then its intermediates (read at start and on SIGHUP)" },   \
	{ "proxy.tls_key", CONF_STRING, NULL, "PEM file: the unencrypted private key of proxy.tls_cert (mode 0600)" }, \
	{ "log.level", CONF_STRING, "info", "error, warn, info, debug or trace (the MTR_LOG variable overrides)" }

/* proxy.tls (doc/protocol.md, "TLS"): what a TCP client's first bytes may be. */
enum proxy_tls_mode {
	PROXY_TLS_OFF = 0, /* clear only; a TLS ClientHello gets BYE */
	PROXY_TLS_ALLOW,   /* TLS or clear, the client's choice */
	PROXY_TLS_REQUIRE, /* TLS only; clear gets BYE */
};

/* The checked configuration of a proxy. */
struct proxy_config {
	struct clusterconf cc;        /* the shared keys (clusterconf_read) */
	struct transport_addr listen; /* proxy.listen */
	int no_listen;                /* 1: no listener (embedded: proxy_attach only) */
	uint32_t id;                  /* proxy.id: sender id of our datagrams */
	struct transport_addr bind;   /* proxy.bind */
	int bind_auto;                /* proxy.bind unset: proxy_open binds the local
				       * address toward server 0 when bind.ip is 0 */
	uint64_t buffer_bytes;        /* proxy.buffer */
	uint32_t buffer_items;        /* proxy.buffer_items */
	uint32_t heartbeat_ms;        /* proxy.heartbeat */
	uint32_t result_timeout_ms;   /* proxy.result_timeout */
	uint32_t read_timeout_ms;     /* proxy.read_timeout */
	uint32_t write_timeout_ms;    /* proxy.write_timeout */
	uint32_t max_clients;         /* proxy.max_clients */
	uint64_t client_buffer;       /* proxy.client_buffer */
	uint32_t max_frame;           /* largest client frame (CPROTO_MAX_FRAME) */
	char users[512];              /* proxy.users: the users file ("": no authentication) */
	char admins[512];             /* proxy.admins: "a,b,c" ("": every user may change the membership) */
	int insecure;                 /* proxy.insecure */
	uint32_t handshake_ms;        /* proxy.handshake_timeout (0: none) */
	uint32_t idle_ms;             /* proxy.idle_timeout (0: none) */
	uint32_t max_per_source;      /* proxy.max_conns_per_source (0: no limit) */
	int tls_mode;                 /* proxy.tls: enum proxy_tls_mode */
	char tls_cert[1024];          /* proxy.tls_cert ("" unset) */
	char tls_key[1024];           /* proxy.tls_key ("" unset) */
	int log_level;                /* log.level as enum log_level */
};

/* Fill *cfg with the defaults of every proxy key (for an embedded proxy:
 * set cc.servers/nservers, cc.cluster_id, cc.key and no_listen afterwards;
 * bind_auto is set: without a bind address the proxy binds its own address
 * toward server 0, not 0.0.0.0).
 * cc gets cluster id 1, udp, transport.mtu auto (0), no servers. */
void proxy_config_defaults(struct proxy_config *cfg);

/* Check and convert the keys of c (loaded with CLUSTERCONF_KEYS and
 * PROXY_KEYS) into *out.  0, or MTR_ECONFIG with one sentence in err naming
 * the key and what to do. */
int proxy_config_read(const struct conf *c, struct proxy_config *out, char *err, size_t errlen);

struct proxy;

/*
 * Create the proxy of cfg (copied; the dpdk strings of cfg->cc are borrowed
 * and must outlive the proxy): the outbuf, the transport bound to cfg->bind,
 * the client listener (unless no_listen), a new stream id.  Logs
 * `listening on IP:PORT for clients, stream S` (S in hex).  *out is owned
 * by the caller (proxy_close).  0, MTR_ECONFIG, MTR_EEXIST (address in use),
 * MTR_EIO, MTR_ENOMEM; the reason is logged.
 */
int proxy_open(const struct proxy_config *cfg, struct proxy **out);

/* Run the loop on the calling thread until proxy_stop().  0 after a stop, or
 * a negative code after a fatal runtime error (logged). */
int proxy_run(struct proxy *p);

/* Ask proxy_run() to return soon.  Async-signal-safe (one write(2) to an
 * eventfd); callable from any thread or a signal handler. */
void proxy_stop(struct proxy *p);

/* Ask the loop to read proxy.tls_cert and proxy.tls_key again (after a
 * renewal): new connections then use them, established ones keep theirs.
 * A file that fails the checks of proxy_config_read is logged at error and
 * the certificate in use is kept.  Nothing happens when TLS is off.
 * Async-signal-safe (mtrproxy calls it on SIGHUP). */
void proxy_reload(struct proxy *p);

/*
 * Serve a client over fd, an already-connected stream socket (TCP or one end
 * of a socketpair).  The proxy owns fd from this call on (it closes it),
 * also on failure.  Thread-safe: callable while proxy_run() runs in another
 * thread (the fd is queued and picked up by the loop).  0, MTR_ECLOSED (the
 * proxy is stopping) or MTR_ENOMEM.  An attached connection is the
 * process's own: it needs no login even when proxy.users is set (the
 * embedded mode, mtrproxy's /readyz probe); never attach a socket accepted
 * from outside.
 */
int proxy_attach(struct proxy *p, int fd);

/* Free everything (closes every client).  Call after proxy_run() returned or
 * without having run it.  NULL is fine. */
void proxy_close(struct proxy *p);

/* The stream id of this proxy incarnation. */
uint64_t proxy_stream(const struct proxy *p);

/* The bound client address (the real port when proxy.listen had port 0) and
 * UDP address.  Either pointer may be NULL. */
void proxy_addrs(const struct proxy *p, struct transport_addr *listen, struct transport_addr *udp);

/* Counters (a copy published by the loop; thread-safe): X(member, meaning). */
#define PROXY_STATS_MAP(X)                                            \
	X(clients, "connections accepted or attached")                \
	X(requests, "QUERY frames handled")                           \
	X(answers, "ANSWER frames queued")                            \
	X(items, "items numbered and sent")                           \
	X(reads, "READ requests (none/session reads)")                \
	X(read_repeats, "READs sent again to the same server (a lost datagram)") \
	X(read_moves, "READs sent to another server (the first dead or behind)") \
	X(read_timeouts, "reads answered MTR_ETIMEDOUT at proxy.read_timeout") \
	X(reads_cancelled, "reads cancelled by their client (CANCEL frame or disconnect)") \
	X(cancel_reads, "CANCEL_READ datagrams sent to servers")     \
	X(reads_batched, "READs sent with others to their server in one READS datagram") \
	X(dgrams_out, "item datagrams sent (ITEMS + FRAGMENT)")       \
	X(resent, "items resent on RESEND")                           \
	X(result_requests, "RESULT_REQUEST datagrams sent")           \
	X(results_asked, "results asked for again (RESULT_REQUEST records)") \
	X(results_unknown, "writes answered MTR_EUNKNOWN: a server said RESULT_UNKNOWN") \
	X(write_timeouts, "writes answered MTR_EUNKNOWN after proxy.write_timeout") \
	X(pushback, "times the outbuf was full (reading paused)")     \
	X(released, "highest seq released")                           \
	X(client_pauses, "times a slow client stopped being read")    \
	X(logins, "clients that logged in with a user name")         \
	X(backups, "backups relayed to clients completely (BACKUP)")  \
	X(backup_failures, "backups that ended with an error or whose client went")

struct proxy_stats {
	PROXY_STATS_MAP(STATS_FIELD)
};
void proxy_stats(struct proxy *p, struct proxy_stats *st);

struct metrics_buf;

/*
 * Health and figures, for the HTTP thread of mtrproxy (any thread but the
 * proxy's loop; they never wait for the loop):
 *   proxy_metrics  appends the /metrics page: every counter of PROXY_STATS_MAP,
 *                  PROXY_DROP_MAP and the transport, the latency histograms
 *                  of writes and reads (QUERY to ANSWER), servers heard;
 *   proxy_ready    1 when a linearizable no-op ("SELECT 1", ordered through
 *                  the log like a write) sent through a connection the proxy
 *                  attached to itself is answered within PROXY_PROBE_MS; a
 *                  verdict is reused for PROXY_PROBE_CACHE_MS; at most one
 *                  probe is in flight (a later call waits on it again);
 *   proxy_live     1 when the loop passed within the last 5 s.
 * why gets one line.  doc/operations.md explains each figure.
 */
#define PROXY_PROBE_MS 1000u
#define PROXY_PROBE_CACHE_MS 250u
void proxy_metrics(struct proxy *p, struct metrics_buf *b);
int proxy_ready(struct proxy *p, char *why, size_t n);
int proxy_live(struct proxy *p, char *why, size_t n);

#endif
