/*
 * server_int.h - the private header of the server object (server.h): the
 * struct server all its parts share, the small types on it, the tunables,
 * and the functions one part calls in another.  Only src/server/server*.c
 * include it.  The parts:
 *
 *   server.c        configuration, open / run / stop / close, the network
 *                   loop and the release of applied items
 *   server_net.c    outgoing datagrams, the stream table, datagram dispatch
 *                   (items, fragments, RESEND repair, STATUS, PAXOS, READ,
 *                   RESULT_REQUEST) and the Paxos I/O vtable
 *   server_apply.c  the apply queue, the apply and reader threads, their
 *                   results (outbox, result cache, RESULT datagrams)
 *   server_snap.c   the snapshot side channel over TCP: serving, fetching,
 *                   installing
 *   server_vt.c     publishing the server's state (server_info, the
 *                   cluster tables of clustervt)
 *   server_disk.c   a full data.dir as a state: standby, probe, resume
 *   server_health.c health and figures: /metrics, /readyz, /livez answers
 *                   for the HTTP thread, and the operator's log lines on
 *                   peers, majority and lag
 *   server_members.c membership changes asked by operators (MEMBERSHIP
 *                   datagrams from proxies: the leader calls paxos_change)
 *
 * Threads and ownership:
 *
 *   network thread (server_run's caller) owns the transport(s), the ingest
 *     store, the reassembler, the Paxos core, its pstore, the stream table,
 *     the peer table, the result cache and the release bookkeeping, and a
 *     quick reader connection for short reads it answers itself (qreader,
 *     doc/server.md "Quick reads").  Nothing on it is shared, so its hot
 *     path takes no lock.
 *   apply thread owns the apply connection.  It receives chosen instances
 *     through the apply queue *with copies of their item bytes*: the ingest
 *     store is single-threaded, so the network thread copies the records of
 *     an instance out of it once every range is held ("resolving" the
 *     entry), and only then marks the entry ready.  The apply thread never
 *     touches the ingest store; items are released later, by the network
 *     thread, once every member that matters has applied them.
 *   reader threads (READERS) each own a reader connection; they run the
 *     READs the network thread did not answer, and send the answers
 *     themselves (transport_send_to_mt) where the transport allows.
 *   snapshot threads: one serves snapshots to peers over TCP (on the
 *     server's own ip:port), one fetches a snapshot when the core asks for
 *     one; the network thread installs it (doc/server.md, "Snapshot
 *     transfer").
 *
 * The apply thread (and a reader whose transport cannot send from its
 * thread, or a RESULT_REQUEST's lookup) hands results back through the outbox
 * (a mutex-protected list, plus an eventfd that wakes the network thread):
 * the network thread sends the RESULT datagrams (it owns the transport and
 * knows each stream's proxy address) and keeps them in the result cache.
 *
 * Back-pressure: the apply queue is soft-bounded.  chosen() must take every
 * instance, so when the queue holds more than AQ_HIGH entries the server
 * stops *accepting* (holds() answers false, the core defers accepts) until
 * it drains; a majority of slow appliers therefore stops new instances.
 *
 * The cursor a restart needs for paxos_install is read from the replica
 * database (table mtr_cursor, written in each instance's transaction by
 * apply.c), so it always matches the applied instance, snapshots included.
 */
#ifndef MTR_SERVER_INT_H
#define MTR_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apply.h"
#include "batch.h"
#include "clustervt.h"
#include "ingest.h"
#include "metrics.h"
#include "paxos.h"
#include "pstore.h"
#include "reasm.h"
#include "server.h"
#include "statstab.h"
#include "transport.h"
#include "wire.h"
#include "wire_server.h"

#define STREAM_CAP 2048u       /* stream table slots (ingest keeps <= 1024 streams) */
#define STREAM_SWEEP_MS 1000u  /* a full stream table looks for dead streams at most this often */
#define DROP_WARN_MS 60000u    /* the first drop of each reason in this long is logged at warn */
#define RECV_BATCH 64u         /* datagrams per transport_recv */
#define RECV_ROUNDS 16         /* recv calls per loop iteration before the rest of the work */
#define OUT_SLOTS 64u          /* outgoing datagrams buffered before a send */
#define AQ_HIGH 64u            /* apply queue entries above which we stop accepting */
#define READQ_MAX 1024u        /* READ requests waiting */
#define RESEND_MAX_ITEMS 4096u /* items sent for one RESEND */
#define PSTORE_LIMIT (64ull << 20) /* compact the Paxos log above this size */
#define RECENT_INSTANCES 64u   /* rows of mtr_instances */
#define READ_WAIT_MS 5000      /* a READ waits this long for min_instance (within its deadline) */
#define QUICK_READ_US 50      /* a quick read is handed to a reader after this long (at a grain) */
#define QUICK_ROUND_US 500     /* quick reads per receive round: at most this long in all */
#define QUICK_SLOW_US 1000     /* a quick read this slow (I/O, one costly VM step) ... */
#define QUICK_OFF_MS 100       /* ... turns quick reads off this long */
#define QUICK_PACK_MAX 16384u  /* a quick answer larger than this is sent at once, not packed */
#define READERS_MAX 64         /* server.readers at most */
#define LOOP_MS 5              /* longest sleep of the network loop */
#define STATS_PERIOD_MS 1000   /* own counters published and sent as STATS */
#define STATS_MAX_AGE_MS 60000 /* mtr_stats forgets a process not heard for this long */
#define FULL_RETRY_MS 500u     /* a full data.dir is probed this often (server_disk.c) */
#define FULL_PROBE_BYTES (256u << 10) /* the probe's size: the room a retry needs at least */

/*
 * Why the network thread dropped a datagram or a part of one that passed the
 * transport's check (DESIGN.md invariant 9: a counted drop): X(name,
 * meaning).  Shown in mtr_stats as "server.drop.NAME".
 */
#define SERVER_DROP_MAP(X)                                                               \
	X(type, "a datagram type servers do not take")                                   \
	X(items, "an ITEMS record that does not decode (and the rest of its datagram)")   \
	X(fragment, "a FRAGMENT that does not decode")                                   \
	X(reassembly, "a fragment the reassembler refused (bounds, disagreeing copies)")   \
	X(reassembled, "a reassembled item that does not decode")                        \
	X(heartbeat, "a HEARTBEAT that does not decode")                                 \
	X(resend, "a RESEND that does not decode or names an empty range")               \
	X(result_request, "a RESULT_REQUEST that does not decode")                       \
	X(result_queue, "a RESULT_REQUEST not looked up: READQ_MAX requests wait already, or no memory") \
	X(items_sender, "an ITEMS or FRAGMENT with a server's id, not from that server's address") \
	X(heartbeat_sender, "a HEARTBEAT with a server's id (only proxies send them)")   \
	X(resend_sender, "a RESEND not from another configured server at its address")   \
	X(status, "a STATUS that does not decode")                                       \
	X(status_sender, "a STATUS not from another configured server at its address")   \
	X(paxos_sender, "a PAXOS message not from another configured server at its address") \
	X(paxos, "a PAXOS message that does not decode")                                 \
	X(read, "a READ (or a record of READS) that does not decode")                   \
	X(read_nomem, "a READ dropped for want of memory")                               \
	X(read_queue, "a READ dropped because READQ_MAX reads wait already")             \
	X(cancel_read, "a CANCEL_READ that does not decode")                             \
	X(stats, "a STATS that does not decode")                                         \
	X(stats_sender, "a STATS with a server's id (or ours), not from that server's address") \
	X(stream_table, "a datagram of a stream the stream table had no room for (its results go unsent)") \
	X(snapshot, "a snapshot request refused (not from a configured server's address, or failed authentication)") \
	X(disk_full, "an item not stored: data.dir is full (repaired from the proxy or a peer afterwards)") \
	X(origin, "a PAXOS message of a server not heard yet, or whose STATUS shows other content (origin; not logged here)") \
	X(membership, "a MEMBERSHIP that does not decode, is not a request, or comes from a server id")

enum server_drop {
#define SERVER__DROP_ENUM(name, text) SERVER_DROP_##name,
	SERVER_DROP_MAP(SERVER__DROP_ENUM)
#undef SERVER__DROP_ENUM
	SERVER_DROP__COUNT
};

/*
 * The reads of this server (shown in mtr_stats as "reads.NAME"): X(name,
 * meaning).  Counted under rmu by the network and reader threads; running
 * and queued are gauges.
 */
#define SERVER_READ_STATS_MAP(X)                                                              \
	X(run, "READ requests a reader thread took (ran, or answered at once)")                  \
	X(repeats, "READ datagrams ignored: a copy of a read still waiting or running here")     \
	X(cancelled, "reads stopped or forgotten on a CANCEL_READ (their proxy no longer needs them)") \
	X(deadline, "reads stopped because their deadline passed (running, waiting or queued)")  \
	X(stopped, "reads stopped because the server was stopping")                              \
	X(running, "reads a reader thread holds now (running or waiting for their instance)")    \
	X(queued, "reads waiting for a reader thread now")                                       \
	X(quick, "READ requests the network thread answered itself (short reads, doc/server.md \"Reads\")") \
	X(handed, "reads the network thread began and handed to a reader thread (not short)")

struct server_read_stats {
	SERVER_READ_STATS_MAP(STATS_FIELD)
};

/* ---- small types ---- */

/* One slot of the stream table (network thread): a proxy's stream, where its
 * proxy sends from, and the state of its gap repair.  Open addressing with
 * linear probing; a full table evicts streams dead for cfg.stream_idle_ms
 * (srvnet_stream_find). */
struct stream {
	uint64_t id; /* 0: free slot */
	uint64_t last_ms; /* created, or last ITEMS/FRAGMENT/HEARTBEAT/RESULT_REQUEST of its proxy */
	struct transport_addr proxy;
	int has_proxy;
	uint32_t tries; /* gap requests since gap_wm (proxy first, then peers too) */
	uint64_t gap_wm; /* the watermark when the current gap was first asked for */
	uint64_t peer_wm[PAXOS_MAX_ID]; /* watermarks peers reported (WATERMARK), per node id */
	uint64_t eager_wm; /* the watermark this server last reported eagerly to the leader */
};

/* What this server knows of another server: its last STATUS and when. */
struct peer {
	int heard;
	uint64_t last_ms;
	struct wire_status st;
	uint64_t origin_warn_ms; /* next origin mismatch of this peer logged (doc/server.md "Origin") */
	int disk_known;   /* its STATS carried server.disk_full */
	uint64_t disk_full; /* ... and its value (1: its data.dir is full) */
};

/* The peer table (doc/server.md "Peers"): who the other servers are, per
 * node id, from the configurations the Paxos core knows (in force and
 * pending, doc/paxos.md "Membership"); cluster.servers is the initial
 * configuration and gives the address of a member whose entry names none.
 * Kept by the network thread (srvnet_peers_refresh), which copies it under
 * imu for the other threads (pub_pt) whenever it changes. */
struct peer_table {
	uint64_t servers; /* ids that are servers', never a proxy's: cluster.servers,
			   * every member in force or pending, the removed ids */
	uint64_t members; /* ids to talk to: members in force or pending with an address */
	uint64_t voters;  /* voters of the configuration in force */
	uint64_t in_force; /* members (voters and learners) of the configuration in force */
	struct transport_addr addr[PAXOS_MAX_ID]; /* of each id in members */
	/* the core's status at the last refresh: another one refreshes */
	int valid;
	uint64_t seen_members, seen_voters, seen_removed, seen_next;
};

/* Where a full disk was met (server_disk.c): bits of struct server.full. */
enum { FULL_INGEST = 1u, FULL_PAXOS = 2u, FULL_APPLY = 4u, FULL_SNAPSHOT = 8u };
/* What the network thread last logged of the cluster's health
 * (server_health.c): each peer up (1), down (0) or not yet judged (-1),
 * the majority likewise, and whether this server was logged as behind;
 * with the earliest time the next line of each may be written (a
 * flapping link gives one line per HEALTH_LOG_MS, not one per flap). */
struct health_log {
	int peer[PAXOS_MAX_ID];
	uint64_t peer_next_ms[PAXOS_MAX_ID];
	unsigned peer_flaps[PAXOS_MAX_ID]; /* changes not logged since the last line */
	int majority;
	uint64_t majority_next_ms;
	int behind;
	uint64_t behind_next_ms;
	uint64_t start_ms;
};

/* A chosen instance on its way to the apply thread. */
struct aq_entry {
	uint64_t inst;
	struct batch b;
	uint8_t *buf; /* the item records, concatenated (set when ready) */
	size_t len;
	int ready;
	uint64_t chosen_ns; /* when it was chosen here (stage "queue") */
	struct aq_entry *next;
};

/* One result inside a done record (lost: a looked-up item applied here
 * whose result is not kept, no bytes). */
struct res_item {
	uint64_t stream, seq, request;
	size_t off;
	uint32_t len;
	int lost;
};

/* Results handed from the apply or reader thread to the network thread.
 * inst != 0: an applied instance (kept in the result cache); inst == 0: the
 * answer to a READ (to, stream, rid, seen), or with lookup set the results
 * of a RESULT_REQUEST looked up in mtr_requests (to, stream, seen). */
struct done {
	int lookup;
	uint64_t inst;
	struct res_item *it;
	size_t n, cap;
	uint8_t *bytes;
	size_t blen, bcap;
	struct transport_addr to;
	uint64_t stream, rid, seen;
	uint64_t applied_ns; /* an instance's: when it was applied (stage "result") */
	struct done *next;
};

/* The answer of a quick read, waiting for the end of the receive round
 * (bytes at off in server.qbytes). */
struct quick_ans {
	uint64_t stream, rid, seen;
	struct transport_addr to;
	size_t off;
	uint32_t len;
};

/* A READ datagram waiting for a reader thread (the item bytes are a copy),
 * or with look set the records of a RESULT_REQUEST the result cache did not
 * have, to be looked up in mtr_requests (apply_lookup). */
struct read_req {
	struct apply_lookup *look;
	uint32_t nlook;
	struct transport_addr from;
	uint64_t stream, rid, min_inst;
	uint64_t deadline_ns; /* monotonic: arrival + deadline_ms */
	uint32_t deadline_ms;
	uint8_t *item;
	uint32_t len;
	struct read_req *next;
};

/* One reader thread and the read it holds (rid 0: none).  stream, rid and
 * from are written under rmu; cancel is what the network thread (a
 * CANCEL_READ) or the stop sets to make the read stop (APPLY_READ_*). */
struct reader_slot {
	struct server *s;
	pthread_t th;
	uint64_t stream, rid;
	struct transport_addr from;
	atomic_int cancel;
};

/* An instance waiting for its items to be released everywhere. */
struct rel {
	uint64_t inst;
	struct batch b;
};

/* One row of mtr_instances: an applied instance, its ranges as text. */
struct recent {
	uint64_t inst;
	uint32_t ranges;
	uint64_t items, apply_us;
	long long steps, max_item_steps; /* VM steps of its items: the sum, the largest */
	char text[96];
};

/* One replica server: everything the parts share (ownership per thread as
 * described at the top of this file). */
struct server {
	struct server_config cfg;
	struct wire_from from; /* cluster, cfg.id, cfg.cc.key: every datagram we build */
	struct transport *t;  /* bound to cc.servers[id] */
	struct transport *tg; /* the multicast group (receive only), or NULL */
	struct ingest *ing;
	struct reasm *ra;
	struct pstore *ps;
	struct paxos *px;
	struct apply *ap;
	int efd;
	int lockfd; /* DATA/lock, flock'ed while the server lives */
	atomic_int stop;
	atomic_int fatal;

	struct stream *streams;
	unsigned nstreams;
	uint64_t next_sweep_ms;  /* a full stream table is swept for dead streams no earlier */
	uint64_t full_warn_ms;   /* next "stream table full" warning */
	struct peer peers[PAXOS_MAX_ID]; /* per node id */
	struct peer_table pt;
	int added, marks_dirty, backpressure, last_role;
	uint64_t history_warn_ms; /* next warning of an unwritten history record (server_apply.c) */
	uint64_t retain_tick_ms;  /* next idle ingest_sync, for retention (server.c) */
	uint64_t last_ballot_logged;
	uint64_t now_ms, next_status_ms;
	uint64_t epoch_ms;      /* the Paxos core's clock starts at 0 here (no election at the first tick) */
	uint64_t last_eager_ns; /* last eager WATERMARK to the leader (monotonic ns) */
	int eager_pending;      /* watermarks moved since it */
	uint64_t next_publish_ms; /* next copy of the watermarks for mtr_streams */
	uint32_t peer_rr;

	/* release bookkeeping (network thread) */
	struct rel *rel;
	size_t rel_head, rel_n, rel_cap;
	uint64_t released, applied_net, items_applied;

	/* apply queue */
	pthread_mutex_t qmu;
	/* s->ap while the snapshot server thread makes a copy (read, tried)
	 * and while srvsnap_install replaces it (write) */
	pthread_rwlock_t ap_lock;
	pthread_cond_t qcv;
	struct aq_entry *qhead, *qtail, *qresolve;
	unsigned qlen;
	int qstop;

	/* outbox */
	pthread_mutex_t omu;
	struct done *ohead, *otail;

	/* READ requests */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	struct read_req *rhead, *rtail;
	unsigned rlen;
	int rstop;

	struct server_read_stats rst; /* under rmu */
	struct reader_slot *readers;  /* cfg.readers slots */
	/* quick reads, network thread (srvapply_read_quick) */
	struct apply_reader *qreader; /* NULL: every read goes to the queue */
	struct done *qdone;           /* the answer being built, reused */
	uint8_t *qitem;               /* the item's copy, reused */
	size_t qitem_cap;
	struct quick_ans *qans;       /* answers of this round, sent packed (srvapply_quick_flush) */
	size_t nqans, cqans;
	uint8_t *qbytes;              /* their result bytes */
	size_t qblen, qbcap;
	uint64_t quick_ns;            /* spent on quick reads in this receive round (wall, or CPU once checked) */
	uint64_t quick_cpu0;          /* this thread's CPU time at the round's first quick read (0: none yet) */
	int quick_spent;              /* the round's CPU budget was checked and is spent */
	uint64_t quick_off_ms;        /* no quick reads before (after a slow one) */

	pthread_t apply_th;
	int apply_started, reader_started; /* reader_started: how many readers run */

	/* snapshot side channel (TCP on the server's own ip:port) */
	int snap_lfd;              /* listening socket, or -1 */
	pthread_t snap_srv_th;
	int snap_srv_started;
	atomic_int snap_srv_stop;
	pthread_t snap_fetch_th;
	atomic_int snap_state;     /* SNAP_IDLE, SNAP_FETCHING, SNAP_READY, SNAP_FAILED */
	uint32_t snap_from;
	struct transport_addr snap_from_addr; /* its address, set before the fetch thread starts */
	uint64_t snap_retry_ms;
	atomic_uint_fast64_t snap_refused; /* requests refused (server.drop.snapshot) */
	uint64_t origin;                   /* apply_origin() of the replica (network thread) */
	/* the replica waits for a peer's content (origin pending, or an empty
	 * start that saw a restored peer): not announced to proxies, no
	 * snapshot served; cleared by srvsnap_install */
	atomic_int no_content;
	atomic_uint_fast64_t lookup_warn_ms; /* reader threads: next failed result lookup logged at warn */
	uint64_t snap_warn_ms;             /* snapshot server thread: next refusal logged at warn */

	/* result cache: the last cfg.result_cache applied instances */
	struct done **cache;
	unsigned ccap, cn, chead;

	/* published state (clustervt, server_info) */
	pthread_mutex_t imu;
	struct server_info info;
	struct paxos_status pst;
	struct batch_conf pub_conf; /* the configuration in force (doc/paxos.md "Membership") */
	struct peer pub_peers[PAXOS_MAX_ID];
	struct peer_table pub_pt;
	struct batch_mark *pub_marks;
	unsigned pub_nmarks;
	struct recent recent[RECENT_INSTANCES];
	unsigned nrecent;
	struct clustervt_provider prov;

	/* outgoing datagrams */
	uint8_t *obuf;
	struct transport_msg out[OUT_SLOTS];
	unsigned nout;

	struct batch_mark *marks; /* scratch for paxos_watermarks */

	/* counters (network thread) and mtr_stats (thread-safe) */
	uint64_t drops[SERVER_DROP__COUNT];
	/* RESULT_REQUEST records answered from the result cache, from
	 * mtr_requests, and as RESULT_UNKNOWN (mtr_stats server.results_*) */
	uint64_t results_cached, results_kept, results_unknown;
	uint64_t drop_warn_ms[SERVER_DROP__COUNT]; /* next drop of each reason logged at warn */
	uint64_t next_stats_ms;
	struct statstab *stats;

	/* disk mode, one commit per accept (server_disk.c, doc/storage.md
	 * "One commit per accept"): accept records written to the item log
	 * and not yet merged into the Paxos log, the first append since the
	 * last commit (0: none), and the ACCEPTED answers checked against
	 * durability (acc_early counts those sent too soon: always 0) */
	struct acc_rec *accq;
	size_t accq_n, accq_cap;
	uint64_t added_ns;
	int received;    /* items stored since the last watermark push */
	int ps_unsynced; /* merged records not yet synced in the Paxos log */
	int ps_missing;  /* the Paxos log's file lacks records of its state (a full disk): rewritten whole */
	uint64_t acc_checked, acc_early;

	/* the disk-full state (network thread; server_disk.c) */
	unsigned full;          /* FULL_* sources met and not yet cleared */
	int full_on;            /* in the state: logged, Paxos on standby */
	unsigned full_what;     /* the source that started it (for the log line) */
	uint64_t full_since_ms, full_next_ms, full_left_ms;
	uint64_t full_events, full_ms; /* times entered; ms spent in it before the current one */
	atomic_int snap_full;   /* the snapshot fetch thread failed for want of space */
	/* health and figures (server_health.c): written by the network and
	 * apply threads, read by the HTTP thread */
	_Atomic uint64_t loop_ms;       /* the network loop's last pass (monotonic ms): /livez */
	_Atomic uint64_t apply_busy_ms; /* the apply thread started its current instance at (0: idle) */
	struct metrics_hist apply_hist; /* apply time per instance */
	struct server_stages {
		SERVER_STAGE_MAP(METRICS_HIST_FIELD)
	} stage;                  /* the stages of a write (stats.h) */
	uint64_t commit_ns;       /* network thread: the last ingest commit with new items (stage "order") */
	uint64_t propose_inst, propose_ns; /* network thread: the last fresh ACCEPT sent (stages "propose", "round") */
	pthread_mutex_t mmu;            /* guards pub_stats */
	struct wire_stats_list *pub_stats; /* own counters, a copy every STATS_PERIOD_MS (NULL: none yet) */
	struct health_log hl;           /* network thread: what was logged of peers, majority, lag */

	/* membership changes (server_members.c, network thread) */
	uint64_t ids_used;    /* every node id the cluster ever had (mtr_conf, the core): new ids go above */
	struct member_req {
		int active;               /* a change asked here waits to be chosen */
		uint64_t token;
		struct transport_addr to; /* the proxy that asked */
		uint8_t op, id;
		uint64_t members, voters; /* the configuration asked for */
		uint64_t since_conf, next_conf; /* the core's conf_since, conf_next when it was asked */
		uint64_t start_ms;
	} mreq;
	struct member_ans {
		uint64_t token;           /* 0: none */
		struct transport_addr to;
		int32_t status;
		uint8_t id;
		uint64_t instance;
		char msg[256];
	} mlast;                      /* the last answer, sent again to a repeated request */
	uint64_t mwarn_ms;            /* next refusal logged at warn */
	uint64_t gone_known;          /* removed ids whose PAXOS came from gone_addr (polite refusal) */
	struct transport_addr gone_addr[PAXOS_MAX_ID];
	uint64_t gone_status_ms[PAXOS_MAX_ID]; /* next STATUS to a removed server that spoke */
	uint64_t gone_warn_ms[PAXOS_MAX_ID];   /* next "removed server is back" line */
	int told_removed;     /* a member's STATUS membership does not name us: we were removed */
};

/* snap_state: the snapshot fetch (server_snap.c) and its hand-over to the
 * network thread. */
enum { SNAP_IDLE = 0, SNAP_FETCHING = 1, SNAP_READY = 2, SNAP_FAILED = 3 };

/* ---- server.c ---- */

/* Tell the Paxos core what the replica has applied: its instance and the
 * per-stream cursor of mtr_cursor, which *cur receives (the caller frees it
 * with batch_order_free, also on error).  0 or an MTR_E* code. */
int server_install_applied(struct server *s, struct batch_order *cur);

/* ---- server_net.c (network thread) ---- */

/* Send the buffered outgoing datagrams. */
void srvnet_out_flush(struct server *s);
/* The buffer of the next outgoing datagram (WIRE_MAX_DGRAM bytes); may flush. */
uint8_t *srvnet_out_buf(struct server *s);
/* Queue the datagram built in srvnet_out_buf() (len bytes) for `to`. */
void srvnet_out_push(struct server *s, size_t len, const struct transport_addr *to);
/* The stream table slot of stream id (created when create and there is room), or NULL. */
struct stream *srvnet_stream_find(struct server *s, uint64_t id, int create);
/* A full stream table evicts its dead streams (at most once a
 * STREAM_SWEEP_MS), also when no new stream asks for room. */
void srvnet_stream_tick(struct server *s);
/* Ask the proxy, then peers, for the items missing from every stream. */
void srvnet_request_gaps(struct server *s);
/* Tell the Paxos core this server's watermarks, and report them eagerly to the leader. */
void srvnet_push_watermarks(struct server *s);
/* Send the pending eager WATERMARK to the leader, at most one every
 * EAGER_MIN_US microseconds. */
#define EAGER_MIN_US 200
void srvnet_eager_report(struct server *s);
/* Paxos I/O vtable (data is the server): send a message to a server or PAXOS_BROADCAST. */
void srvnet_px_send(void *data, uint32_t to, const struct paxos_msg *msg);
/* Paxos I/O vtable: make the acceptor state change durable (pstore). */
int srvnet_px_persist(void *data, const struct paxos_persist *change);
/* Paxos I/O vtable: whether items ..last of stream are held (false under back-pressure). */
bool srvnet_px_holds(void *data, uint64_t stream, uint64_t last);
/* Paxos I/O vtable: fetch missing items (through the ingest gap machinery). */
void srvnet_px_fetch(void *data, uint64_t stream, uint64_t first, uint64_t last);
/* Send STATUS to every peer and to every distinct proxy address. */
void srvnet_send_status(struct server *s);
/* Receive and dispatch what is waiting on t (a bounded number of batches). */
void srvnet_recv_all(struct server *s, struct transport *t);

/* ---- server_apply.c ---- */

/* Paxos I/O vtable: queue a chosen instance for the apply thread and for release. */
void srvapply_px_chosen(void *data, uint64_t inst, const struct batch *value);
/* Free every entry of the apply queue (the apply thread is stopped; the
 * caller holds qmu when others could look). */
void srvapply_queue_clear(struct server *s);
/* Network thread: copy the items of the queue's unresolved entries out of the ingest store. */
void srvapply_resolve_queue(struct server *s);
/* Free a done record (NULL is fine). */
void srvapply_done_free(struct done *d);
/* Send results r[0..n) of stream to `to` as RESULT datagrams. */
void srvapply_send_results(struct server *s, uint64_t stream, const struct wire_result *r, size_t n,
			   const struct transport_addr *to);
/* Network thread: send what the apply and reader threads posted, keep applied instances in the result cache. */
void srvapply_drain_outbox(struct server *s);
/* Network thread: queue the READ q (taken over): 0 (queued, or ignored as
 * a repeat of a read still held here: freed) or MTR_EFULL (READQ_MAX
 * waiting: the caller frees q). */
int srvapply_read_queue(struct server *s, struct read_req *q);
/* Network thread: answer the READ r from `from` at once when it is short
 * (doc/server.md "Reads": applied far enough, done within one grain of VM
 * steps, a time budget per receive round): 0, answered (the RESULT is
 * queued for the loop's send); else MTR_EAGAIN, queue it for a reader. */
int srvapply_read_quick(struct server *s, const struct wire_read *r, const struct transport_addr *from,
			uint64_t deadline_ns);
/* Network thread, at the end of a receive round: send the answers of its
 * quick reads, those of one stream and address packed in RESULT datagrams
 * (several records each: one datagram for many reads). */
void srvapply_quick_flush(struct server *s);
/* Network thread: a CANCEL_READ of (stream, rid) from `from`: forget the
 * read if it waits, stop it if it runs (no answer is sent for it). */
void srvapply_read_cancel(struct server *s, uint64_t stream, uint64_t rid, const struct transport_addr *from);
/* A copy of the read counters (any thread). */
void srvapply_read_stats(struct server *s, struct server_read_stats *out);
/* Start the apply and reader threads (and the snapshot server) with every signal blocked; 0 or MTR_ENOMEM. */
int srvapply_start_threads(struct server *s);
/* Stop and join the apply and reader threads. */
void srvapply_stop_threads(struct server *s);

/* ---- server_snap.c ---- */

/* Listen for snapshot requests on TCP at this server's address (logged when impossible). */
void srvsnap_listen(struct server *s);
/* Thread body: serve snapshot requests until snap_srv_stop. */
void *srvsnap_server_main(void *arg);
/* Paxos I/O vtable: start fetching a snapshot from server `from` (one at a time). */
void srvsnap_px_snapshot_needed(void *data, uint32_t from, uint64_t inst);
/* Network thread: install the received snapshot and restart the threads; 0 or an MTR_E* code. */
int srvsnap_install(struct server *s);

/* Network thread: count a drop (enum server_drop) of datagram m (NULL: not
 * from one); the first of each reason in DROP_WARN_MS is logged at warn
 * with the sender's address. */
void srvnet_drop(struct server *s, enum server_drop why, const struct transport_msg *m);
/* Whether m comes from configured server j = its sender id, j != us, and
 * from j's configured address (ip and port). */
bool srvnet_from_peer(const struct server *s, const struct transport_msg *m);
/* The peer table (struct peer_table): rebuild it when the core's
 * membership moved (force: unconditionally, after an install). */
void srvnet_peers_refresh(struct server *s, int force);
/* The address of member id, or NULL (not a member with an address, or this
 * server). */
const struct transport_addr *srvnet_peer_addr(const struct server *s, uint32_t id);
/* Whether id is a server's (a member, removed, or of cluster.servers). */
bool srvnet_is_server(const struct server *s, uint32_t id);

/* ---- server_disk.c (network thread) ---- */

/* A write of source (FULL_*) failed for want of space (MTR_ENOSPACE). */
void srvdisk_note(struct server *s, unsigned source);
/* Every loop: take the apply thread's state, enter the state (logged at
 * error once, Paxos standby), probe every FULL_RETRY_MS and write the
 * ingest buffer again, leave when all is clear.  0, or an MTR_E* code when
 * a retry failed otherwise (the server stops). */
int srvdisk_tick(struct server *s);
/* One accept record waiting for the group commit (srvdisk_accept). */
struct acc_rec {
	uint64_t inst;
	uint8_t *b; /* pstore_record() bytes */
	size_t len;
};
/* Items may wait this long for an accept to share their commit with. */
#define GROUP_WAIT_NS 1000000u
/* Disk mode, paxos_io.persist of an ACCEPT: write its record to the item
 * log (ingest_log_aux) and queue it; PAXOS_PERSIST_LATER, or an MTR_E*
 * code (not accepted). */
int srvdisk_accept(struct server *s, const struct paxos_persist *change);
/* Disk mode, every loop pass: the group commit.  When accept records are
 * queued, or items waited GROUP_WAIT_NS for one: send what is queued, one
 * ingest_sync (items and accept records), then merge the records into the
 * Paxos log (written, synced later: srvdisk_before_delete) and release the
 * core's answers (paxos_persisted); again at once when those proposed the
 * next instance.  0, or an MTR_E* code (the server stops). */
int srvdisk_commit(struct server *s);
/* ingest_opts.before_delete: sync the Paxos log's copies of the accept
 * records (arg: the server). */
int srvdisk_before_delete(void *arg);
/* Open: merge the accept records recovery found in the item log into the
 * Paxos log (pstore_merge) and sync it.  0 or an MTR_E* code. */
int srvdisk_recover_accepts(struct server *s);
/* Disk mode, an ACCEPTED for inst about to be sent: count it, and count it
 * in acc_early when its record or an item it names is not durable yet. */
void srvdisk_check_answer(struct server *s, uint64_t inst);
/* Free the queue (close). */
void srvdisk_free(struct server *s);
/* Whether no durable write may be tried (in the state or a source set). */
static inline bool srvdisk_full(const struct server *s)
{
	return s->full_on || s->full != 0;
}
/* ---- server_health.c ---- */

/* Network thread, every pass: the liveness stamp, and the operator's log
 * lines on peers up/down, majority lost/regained, falling behind. */
void srvhealth_tick(struct server *s);
/* Whether peer j's STATUS is recent (the health window). */
int srvhealth_peer_up(const struct server *s, uint32_t j);

/* ---- server_members.c (network thread) ---- */

/* A MEMBERSHIP datagram (a proxy asks for a change; doc/protocol.md). */
void srvmem_on_datagram(struct server *s, const struct transport_msg *m);
/* Every loop: answer the change asked here once chosen (or lost). */
void srvmem_tick(struct server *s);
/* Network thread: keep a copy of the server's own counters o for /metrics. */
void srvhealth_publish_stats(struct server *s, const struct wire_stats_list *o);

/* ---- server_vt.c ---- */

/* Network thread, every STATS_PERIOD_MS: put this server's counters into
 * mtr_stats and send them to the other servers as STATS datagrams. */
void srvvt_stats_tick(struct server *s);
/* Network thread: keep the counters of a STATS datagram from another
 * server or a proxy. */
void srvvt_on_stats(struct server *s, const struct transport_msg *m);

/* Network thread: copy the state readers of server_info and clustervt see. */
void srvvt_publish(struct server *s);
/* clustervt provider (arg is the server): the rows of table t. */
int srvvt_fill(void *arg, enum clustervt_table t, struct clustervt_sink *sink);

#endif
