/*
 * proxy_int.h - the private header of the proxy object (proxy.h): the
 * struct proxy its parts share, the per-request and per-connection state,
 * the tunables, and the functions one part calls in another.  Only
 * proxy.c, proxy_client.c, proxy_net.c and proxy_tls.c include it.  The parts:
 *
 *   proxy.c         configuration, the epoll loop (one iteration is
 *                   described there), open / attach / stop / close
 *   proxy_client.c  the client side: TCP connections, frames, QUERY ->
 *                   item or READ, answers in request order per connection
 *   proxy_net.c     the server side: datagrams out (ITEMS / FRAGMENT,
 *                   READ), datagrams in (RESULT, RESEND, STATUS), result
 *                   chunks, reads routing, the timers
 *   proxy_tls.c     TLS on client connections: clear or TLS by the first
 *                   bytes, the non-blocking handshake, recv/send wrappers
 *   proxy_backup.c  a client's BACKUP relayed from a server's snapshot
 *                   channel
 *   proxy_members.c a client's MEMBERSHIP change forwarded to the leader
 *                   and its answer relayed back
 *
 * Everything runs on the loop's thread; only the attach queue and the
 * published stats are shared, under mu.
 */
#ifndef MTR_PROXY_INT_H
#define MTR_PROXY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "clusterconf.h"
#include "cproto.h"
#include "metrics.h"
#include "outbuf.h"
#include "proxy.h"
#include "proxy_auth.h"
#include "proxy_item.h"
#include "tlsconn.h"
#include "transport.h"
#include "wire_server.h"

#define SENDQ_CAP 256u         /* datagrams per send call */
#define RECV_BATCH 64u         /* datagrams per transport_recv */
#define RECV_ROUNDS 32u        /* transport_recv calls per iteration at most */
#define READ_CHUNK (256u << 10) /* client input read per event at least */
#define MAX_PEND 65536u        /* unanswered requests per connection */
#define RESEND_MAX 4096u       /* items resent for one RESEND at most */
#define RREQ_SCAN 4096u        /* slots scanned for late results per tick */
#define RREQ_MAX 1024u         /* results asked for again per tick at most */
#define RREQ_BACKOFF_MAX_MS 2000u /* longest wait between two asks for one result */
#define GIVE_UP_WARN_MS 10000u /* "outcome unknown" answers logged at warn at most this often */
#define IDLE_HEARTBEAT_MS 1000u
#define STATS_PERIOD_MS 1000u /* the proxy's counters to every server (mtr_stats) */

/*
 * Why the proxy dropped a datagram (or a record of one) that passed the
 * transport's check, or refused a client connection (the client_* reasons,
 * each with a BYE; proxy_client.c) (DESIGN.md invariant 9): X(name,
 * meaning).  Shown in mtr_stats as "proxy.drop.NAME".  result_dup is the
 * normal case of every write: the first replica's result answers, the
 * others' copies are dropped.
 */
#define PROXY_DROP_MAP(X)                                                                   \
	X(type, "a datagram type proxies do not take")                                      \
	X(sender, "a RESULT, RESEND or STATUS not from a configured server's address")      \
	X(result, "a RESULT that does not decode or is for another stream")                 \
	X(result_dup, "a result for an item already answered (the other replicas' copies)") \
	X(result_range, "a result for a seq not in flight (released or never sent)")         \
	X(result_read, "a read result for a read no longer waiting (answered or timed out)") \
	X(result_chunk, "a result chunk that disagrees with the others")                    \
	X(result_unknown, "a RESULT_UNKNOWN that does not decode or is for another stream")   \
	X(nomem, "a result chunk dropped for want of memory")                               \
	X(resend, "a RESEND that does not decode or is for another stream")                 \
	X(status, "a STATUS that does not decode or names a bad node")                      \
	X(client_auth_failed, "a login with an unknown user or a wrong password")           \
	X(client_auth_missing, "a client without a user name to a proxy with proxy.users")   \
	X(client_handshake_timeout, "no HELLO (and AUTH) within proxy.handshake_timeout")    \
	X(client_idle_timeout, "no whole frame within proxy.idle_timeout")                   \
	X(client_per_source, "a connection above proxy.max_conns_per_source")                \
	X(client_max_clients, "a connection above proxy.max_clients")                        \
	X(client_request_id, "a QUERY whose request id does not increase")                   \
	X(client_frame, "a malformed frame, or one above the limit (4 KiB before login)")

enum proxy_drop {
#define PROXY__DROP_ENUM(name, text) PROXY_DROP_##name,
	PROXY_DROP_MAP(PROXY__DROP_ENUM)
#undef PROXY__DROP_ENUM
	PROXY_DROP__COUNT
};
/*
 * TLS on client connections (proxy_tls.c), X(name, meaning): shown in
 * mtr_stats as "proxy.tls.NAME".  Every kind but handshakes is a refused
 * or dropped connection, the first of each in a minute logged at warn.
 */
#define PROXY_TLS_MAP(X)                                                                          \
	X(handshakes, "TLS handshakes completed")                                                   \
	X(plain_refused, "plain-TCP connections refused with BYE: proxy.tls = require")             \
	X(unexpected, "TLS ClientHellos refused with BYE: proxy.tls = off")                         \
	X(handshake_failed, "TLS handshakes that failed (no common version, the client rejected "   \
				 "our certificate, not TLS after all, closed)")                            \
	X(io_failed, "connections closed on a TLS error after the handshake (bad record or MAC)")

enum proxy_tls_count {
#define PROXY__TLS_ENUM(name, text) PROXY_TLS_##name,
	PROXY_TLS_MAP(PROXY__TLS_ENUM)
#undef PROXY__TLS_ENUM
	PROXY_TLS__COUNT
};

#define ALIVE_MS 1000u         /* a server is alive when its STATUS is this recent */
#define SILENT_WARN_MS 5000u   /* no STATUS from any server this long: warn (once a minute) */
#define RHASH 1024u            /* buckets of the read table */
#define AUTH_FAIL_MS 1000u     /* a failed login is answered this long after its AUTH */
#define PRELOGIN_FRAME 4096u   /* largest frame before WELCOME (HELLO, AUTH) */
#define AUTH_PER_SOURCE 2u     /* logins of one source address in the verifier at once */
#define CLIENT_WARN_MS 60000u  /* one warning per refusal reason and minute */

/* ---- state ---------------------------------------------------------------- */

struct client;
struct rbuf; /* a result received in chunks (proxy_net.c) */
struct pxbackup; /* a backup being relayed (proxy_backup.c) */

/* A membership change of a client on its way to the leader (proxy_members.c). */
#define PXMEM_MAX 16u
#define PXMEM_RETRY_MS 1000u    /* no answer this long: send again (the same token) */
#define PXMEM_DEADLINE_MS 30000u /* no answer this long: the client is told */
#define PXMEM_NO_LEADER 0xffffffffu
struct pxmem {
	struct client *c;       /* NULL: free, or its client went away */
	uint64_t ctoken;        /* the client's token (its answer carries it) */
	uint64_t token;         /* ours, towards the servers: unique per proxy */
	uint8_t op, id, addr_len;
	char addr[64];
	uint64_t first_ms, sent_ms;
	uint32_t server;        /* sent to last */
	int sent;               /* sent at least once: a change not answered may have been made */
};

/* One request of a connection, from its QUERY until its ANSWER is queued. */
struct pend {
	struct pend *next; /* the connection's FIFO */
	struct client *c;
	uint64_t request;
	int kind; /* PEND_WRITE (waits in a slot), PEND_READ (in the read table), PEND_DONE */
	uint64_t seq;
	/* the answer, once done */
	int32_t status;
	uint32_t line, col;
	char *msg;
	uint32_t msg_len;
	uint8_t *res;
	uint32_t res_len;
	uint64_t instance;
	/* a READ in flight */
	uint64_t rid, min_inst;
	uint8_t *item;
	uint32_t item_len;
	unsigned server;
	uint64_t first_ms, sent_ms;
	uint64_t t0_ns;              /* the QUERY handled at (latency histograms) */
	uint64_t sent_ns;            /* a write: its item first handed to the transport (stages) */
	struct pend *hnext;          /* read table bucket */
	struct pend *rprev, *rnext;  /* read list, oldest send first */
	struct rbuf *rb;
};
enum { PEND_WRITE = 1, PEND_READ = 2, PEND_DONE = 3 };

/* A client connection's TLS state: clear (decided, or attached), its first
 * bytes not seen yet, in the handshake, encrypted. */
enum { PXTLS_PLAIN = 0, PXTLS_SNIFF, PXTLS_HANDSHAKE, PXTLS_ON };
enum { PXTLS_READ_NEEDS_WRITE = 1, PXTLS_WRITE_NEEDS_READ = 2 };

/* A write waiting for its result, by seq (ring of cap_items). */
struct wslot {
	struct pend *pend; /* NULL when its client is gone or was answered "outcome unknown" */
	uint64_t client, request; /* the item's ids (RESULT_REQUEST names them) */
	uint64_t first_ms; /* numbered (proxy.write_timeout counts from here) */
	uint64_t sent_ms;  /* last time sent or asked for */
	struct rbuf *rb;   /* chunks so far */
	uint32_t tries;    /* RESULT_REQUESTs for it: the next waits result_timeout << tries (capped) */
	uint8_t done;
	uint8_t read;      /* a read ordered like a write */
	uint8_t gave_up;   /* answered "outcome unknown" after proxy.write_timeout */
};

/* One client connection: its input and output buffers, its HELLO, and the
 * FIFO of its unanswered requests. */
struct client {
	int fd;
	uint64_t no;
	uint32_t src_ip;    /* the peer's IPv4 address (host order); 0: attached or not IPv4 */
	int attached;       /* handed over in-process (proxy_attach: the embedded mode, /readyz): no login */
	char src[48];       /* the peer "ip:port" for messages ("attached") */
	uint64_t start_ms;  /* accepted */
	uint64_t last_ms;   /* the last whole frame */
	int auth;           /* CLI_AUTH_*: where the login stands */
	uint64_t fail_ms;   /* CLI_AUTH_FAILED: when the BYE goes out */
	char user[CPROTO_MAX_USER + 1];
	struct pxauth_job *job; /* CLI_AUTH_VERIFYING */
	int auth_hold;          /* its AUTH waits: AUTH_PER_SOURCE others of its address are verified */
	uint64_t last_request; /* the highest request id so far */
	uint8_t *in;
	size_t inlen, inoff, incap;
	struct cproto_buf out;
	uint64_t out_ns; /* an answer went into the empty output then (stage "answer"); 0: none */
	int hello; /* 1: WELCOME sent */
	uint8_t cons;
	uint64_t client_id; /* HELLO's: items carry it for de-duplication */
	uint64_t max_inst;
	struct pend *qh, *qt;
	uint32_t npend;
	uint32_t ev;
	int paused; /* output above proxy.client_buffer: not read */
	int backlog; /* complete frames left unread in `in` */
	int dirty;
	int dead;
	int tls_state;       /* PXTLS_* (proxy_tls.c) */
	int tls_rw;          /* PXTLS_READ_NEEDS_WRITE | PXTLS_WRITE_NEEDS_READ */
	int tls_failed;      /* a TLS error after the handshake (counted at close) */
	struct tlsconn *tls; /* NULL: clear */
	struct pxbackup *bk; /* its backup being relayed, or NULL (not read meanwhile) */
	struct client *prev, *next;
	struct client *dnext; /* dead list */
};

enum { CLI_AUTH_NONE = 0, CLI_AUTH_WAIT = 1, CLI_AUTH_VERIFYING = 2, CLI_AUTH_FAILED = 3 };

/* Datagrams queued for one send call, mtu bytes each. */
struct sendq {
	uint8_t *mem;
	struct transport_msg *msg;
	unsigned n;
	int group;
};

/* An ITEMS datagram being filled in a sendq slot. */
struct ipack {
	struct sendq *q;
	uint8_t *buf;
	size_t used;
	struct transport_addr peer;
};

/* READs to one server being batched in one datagram (pxnet_read_send,
 * sent by pxnet_reads_flush at the end of the loop iteration). */
#define RSTAGE_MAX 8 /* servers with a batch open at once */
struct rstage {
	unsigned server;
	struct wire_reads_pk pk;
};

/* Node ids of servers: 0 .. PROXY_SERVER_IDS - 1 (doc/paxos.md "Membership"). */
#define PROXY_SERVER_IDS WIRE_MEMBER_ID_MAX

/* What the proxy knows of one server, from its STATUS (reads routing). */
struct srv {
	uint64_t applied;
	uint64_t seen_ms;
	int known;
};

/* The proxy: everything the parts share, all on the loop's thread except
 * what mu guards. */
struct proxy {
	struct proxy_config cfg;
	struct wire_from from; /* cluster, cfg.id, cfg.cc.key: every datagram we build */
	uint64_t stream;
	struct transport *t;
	int tfd;
	int lfd;
	int efd;
	int ep;
	struct transport_addr laddr;
	size_t mtu;
	struct proxy_parse_cache pcache; /* the loop thread's (proxy_item.h) */

	struct outbuf ob;
	struct wslot *slots;
	uint32_t cap;
	uint64_t rel;         /* every seq <= rel has its result or was given up (released) */
	uint64_t ordered;     /* every seq <= ordered is applied on some replica (a result of it or a later one came) */
	uint64_t gu_next;     /* next seq the write_timeout check looks at */
	uint64_t gu_warn_ms;  /* next "outcome unknown" warning */
	uint64_t gu_unwarned; /* writes given up since the last warning */
	int ask_now;          /* servers heard again after a silence: ask for every late result at once */
	uint64_t batch_first; /* items [batch_first, next) not sent yet */
	int blocked;          /* outbuf full: no client is read */
	struct client *full_client; /* whose request found the outbuf full */
	int released_any;

	struct pend *rtab[RHASH];
	struct pend *rhead, *rtail;
	uint64_t next_rid;

	/* The servers, per node id (doc/proxy.md "Servers"): cluster.servers
	 * at start, then the newest membership a STATUS carried. */
	struct srv srv[PROXY_SERVER_IDS];
	uint64_t servers;      /* ids with an address */
	uint64_t servers_conf; /* version of the membership followed (0: cluster.servers) */
	struct transport_addr saddr[PROXY_SERVER_IDS];
	unsigned rr;

	struct client *clients;
	uint32_t nclients;
	uint64_t next_no;
	struct client **dirty;
	uint32_t ndirty, cdirty;
	struct client *dead;

	struct sendq gq, tq;
	uint8_t *rsmem; /* RSTAGE_MAX datagrams of mtu bytes: the batches of READs */
	struct rstage rstage[RSTAGE_MAX];
	unsigned nrstage;
	uint8_t empty_result[64]; /* the answer of BEGIN; COMMIT: no statement */
	uint32_t empty_result_len;
	uint64_t prng;
	uint64_t now_ms;
	uint64_t next_hb_ms;
	uint64_t next_rr_ms;
	uint64_t next_stats_ms; /* next STATS to every server */
	uint64_t drops[PROXY_DROP__COUNT]; /* loop thread */
	uint64_t drop_warn_ms[PROXY_DROP__COUNT]; /* next refusal of each reason logged at warn */
	struct pxauth *auth;    /* proxy.users set: the users and the verifier */
	uint64_t next_cli_ms;   /* next client deadline check (0: none due) */
	struct tlsctx *tls;                /* NULL: no TLS (proxy.tls = off) */
	uint64_t tls_counts[PROXY_TLS__COUNT]; /* loop thread */
	uint64_t tls_warn_ms[PROXY_TLS__COUNT]; /* next warning of each kind */
	uint64_t status_ms;     /* last STATUS from any server (proxy_open: the start) */
	uint64_t silent_warn_ms; /* next "no STATUS" warning */
	struct pxbackup *backups; /* backups being relayed (and ended ones until pxbk_sweep) */
	struct pxmem mem[PXMEM_MAX]; /* membership changes being relayed */
	uint64_t mem_token;     /* the last token given to one */
	uint32_t leader;        /* the server last seen leading (STATUS), or PXMEM_NO_LEADER */
	uint64_t mem_warn_ms;   /* next refused membership change logged at warn */

	atomic_int stop;
	atomic_int reload; /* proxy_reload asked: the TLS files are read again */
	pthread_mutex_t mu; /* attach queue and published stats */
	int *attach;
	unsigned nattach, cattach;
	int closing;
	struct proxy_stats st, pub;

	/* health and figures (proxy_health.c), read by the HTTP thread */
	uint64_t pub_drops[PROXY_DROP__COUNT]; /* under mu: a copy of drops */
	uint64_t pub_tls[PROXY_TLS__COUNT];    /* under mu: a copy of tls_counts */
	struct transport_counters pub_tc;      /* under mu: the transport's counters */
	unsigned pub_heard;                    /* under mu: servers whose STATUS is younger than ALIVE_MS */
	unsigned pub_servers;                  /* under mu: servers the proxy follows */
	_Atomic uint64_t loop_ms;              /* the loop's last pass (monotonic ms): /livez */
	struct metrics_hist write_hist;        /* QUERY to ANSWER of writes (linearizable reads included) */
	struct metrics_hist read_hist;         /* QUERY to ANSWER of none/session reads */
	struct proxy_stages {
		PROXY_STAGE_MAP(METRICS_HIST_FIELD)
	} stage; /* the stages of a write (stats.h) */
	pthread_mutex_t hmu;                   /* the readiness probe (one at a time) */
	struct pxprobe {
		int fd;            /* our end of an attached socketpair, or -1 */
		uint8_t in[4096];  /* bytes read, not yet a whole frame */
		size_t inlen;
		uint64_t req;      /* the last request id sent */
		int pending;       /* req has no answer yet */
		uint64_t sent_ms;
		int ok;            /* the last answer's verdict, cached for PROBE_CACHE_MS */
		uint64_t done_ms;
		char why[160];
	} probe;
};

/* ---- proxy_members.c ---- */

/* A MEMBERSHIP frame of c: 0, or a negative code (malformed: a BYE was queued). */
int pxmem_on_frame(struct proxy *p, struct client *c, const struct cproto_frame *f);
/* A MEMBERSHIP datagram of server `from` (already checked to be one). */
void pxmem_on_answer(struct proxy *p, uint32_t from, const uint8_t *payload, size_t len);
/* Send, send again, give up (every loop). */
void pxmem_tick(struct proxy *p);
/* c is closing: its changes are answered to nobody. */
void pxmem_client_gone(struct proxy *p, struct client *c);

/* ---- proxy.c ---- */

/* The monotonic clock in milliseconds. */
uint64_t proxy_mono_ms(void);
/* The wall clock in microseconds (an item's fixed time). */
int64_t proxy_wall_us(void);

/* ---- proxy_net.c (used by the other parts) ---- */

/* Queue a datagram (n bytes, built by the caller) to server j. */
void pxnet_send_to_server(struct proxy *p, const uint8_t *dg, size_t n, uint32_t j);

/* ---- proxy_health.c ---- */

/* Close the readiness probe's socket (proxy_close). */
void pxhealth_free(struct proxy *p);

/* ---- proxy_client.c ---- */

/* Queue c for the end-of-iteration pass (output, epoll interest). */
void pxcli_mark_dirty(struct proxy *p, struct client *c);
/* The request q has its answer: res (res_len bytes) is borrowed unless owned (then q takes it). */
void pxcli_pend_complete(struct proxy *p, struct pend *q, int32_t status, const char *msg, uint64_t instance,
			 uint8_t *res, uint32_t res_len, int owned);
/* Whether c is not read: too many answer bytes unread or too many requests unanswered. */
int pxcli_paused(const struct proxy *p, const struct client *c);
/* Handle the complete frames in c's input buffer. */
void pxcli_process(struct proxy *p, struct client *c);
/* Read what c sent, then handle it. */
void pxcli_read(struct proxy *p, struct client *c);
/* Write c's queued output as far as the socket takes it. */
void pxcli_write(struct proxy *p, struct client *c);
/* Set what epoll watches for c. */
void pxcli_events(struct proxy *p, struct client *c);
/* Close c (why is logged): its pending answers are dropped, it is freed at the end of the iteration. */
void pxcli_close(struct proxy *p, struct client *c, const char *why);
/* Take fd as a new client (how: "connected", "attached"); refused above proxy.max_clients. */
void pxcli_add(struct proxy *p, int fd, const char *how);
/* Accept every waiting connection on the listening socket. */
void pxcli_accept_all(struct proxy *p);
/* Handle the logins the verifier finished (proxy.users). */
void pxcli_auth_done(struct proxy *p);
/* Close the connections past their handshake or idle timeout, send the
 * BYE of failed logins whose delay is over. */
void pxcli_timers(struct proxy *p);
/* Milliseconds until the next client deadline (-1: none). */
int pxcli_next_timeout(const struct proxy *p);

/* ---- proxy_tls.c ---- */

/* The server TLS context from cfg (nothing when proxy.tls is off or there
 * is no listener).  0 or MTR_ECONFIG / MTR_ENOMEM (logged). */
int pxtls_open(struct proxy *p);
/* Free the context. */
void pxtls_close(struct proxy *p);
/* Read the certificate and key again: the new context serves new
 * connections; on a failure (logged) the old one stays. */
void pxtls_reload(struct proxy *p);
/* A new connection: accepted (1: its first bytes decide) or attached (0: clear). */
void pxtls_client_init(struct proxy *p, struct client *c, int accepted);
/* Free c's TLS state (before its fd is closed); a TLS error of its I/O is
 * counted (proxy.tls.io_failed) and warned here. */
void pxtls_client_close(struct proxy *p, struct client *c);
/* Whether c's plaintext may be read and written now: sniffs its first
 * bytes and advances the handshake as far as the socket allows.  0: not
 * yet, or c was refused and closed (c->dead). */
int pxtls_ready(struct proxy *p, struct client *c);
/* recv(2) / send(2) with MSG_DONTWAIT (and MSG_NOSIGNAL) through TLS when
 * c has it: bytes, or -1 with errno (EAGAIN; EPROTO on a TLS failure, which
 * pxtls_client_close counts). */
ssize_t pxtls_recv(struct client *c, void *buf, size_t n);
ssize_t pxtls_send(struct client *c, const void *buf, size_t n);
/* The last read waits for the socket to be writable (a TLS record to send first). */
int pxtls_read_needs_write(const struct client *c);
/* The epoll events c needs, given ev for a clear connection. */
uint32_t pxtls_events(const struct client *c, uint32_t ev);
/* "handshake_failed": a name of PROXY_TLS_MAP. */
const char *pxtls_stat_name(unsigned k);

/* ---- proxy_net.c ---- */

/* Free a result in chunks (NULL is fine). */
void pxnet_rbuf_free(struct rbuf *r);
/* Send the datagrams queued in q. */
void pxnet_sendq_flush(struct proxy *p, struct sendq *q);
/* Send the batches of READs (READS datagrams, or READ for one) into tq. */
void pxnet_reads_flush(struct proxy *p);
/* Send the items numbered in this iteration to the group. */
void pxnet_flush_items(struct proxy *p);
/* Take the READ q out of the read table and the read list. */
void pxnet_read_unlink(struct proxy *p, struct pend *q);
/* Append the READ q to the read list (oldest send first). */
void pxnet_read_list_append(struct proxy *p, struct pend *q);
/* The server for a read that needs min_inst, round robin from turn `from`
 * (the from-th server, modulo their number, in the order of the ids). */
unsigned pxnet_read_pick(struct proxy *p, uint64_t min_inst, unsigned from);
/* The servers from cluster.servers (at start). */
void pxnet_servers_init(struct proxy *p);
/* Follow the membership a STATUS carries when it is newer than the one
 * followed: the server list, and the transport's fan-out destinations. */
void pxnet_servers_follow(struct proxy *p, const struct wire_status *s);
/* The server of turn `from`: the from-th, modulo their number, in the
 * order of the ids. */
unsigned pxnet_server_next(const struct proxy *p, unsigned from);
/* Send the READ datagram of q to q->server (with what is left of its deadline). */
void pxnet_read_send(struct proxy *p, struct pend *q);
/* Tell q->server that the READ q is no longer needed (CANCEL_READ). */
void pxnet_read_cancel(struct proxy *p, struct pend *q);
/* Receive and handle the datagrams waiting (a bounded number); 0 or the transport's error. */
int pxnet_transport_drain(struct proxy *p);
/* Heartbeat, RESULT_REQUEST for late results, read retries and timeouts. */
void pxnet_timers(struct proxy *p);
/* The loop's epoll timeout in ms: 0 when items wait, else until the next timer. */
int pxnet_next_timeout(struct proxy *p);

/* ---- proxy_backup.c ---- */

/* A BACKUP frame of c: open the snapshot channel of a server that has
 * applied min_inst; the parts follow on c (an END part at once when c has
 * requests in flight or a backup already). */
void pxbk_start(struct proxy *p, struct client *c, uint64_t min_inst);
/* An epoll event on b's channel (its tag is b with the low bit set). */
void pxbk_event(struct proxy *p, struct pxbackup *b);
/* Set what epoll watches for b (after its client's output changed). */
void pxbk_events(struct proxy *p, struct pxbackup *b);
/* c closes: abandon its backup. */
void pxbk_client_gone(struct proxy *p, struct client *c);
/* End of an iteration: time out stalled backups, free the ended ones. */
void pxbk_sweep(struct proxy *p);
/* The proxy closes: end and free every backup. */
void pxbk_close_all(struct proxy *p);

#endif
