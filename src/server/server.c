/*
 * server.c - metronomed as a library object: the network thread, the apply
 * thread and the reader thread of one replica server (doc/server.md).
 *
 * Threads and ownership:
 *
 *   network thread (server_run's caller) owns the transport(s), the ingest
 *     store, the reassembler, the Paxos core, its pstore, the stream table,
 *     the peer table, the result cache and the release bookkeeping.  Nothing
 *     on it is shared, so its hot path takes no lock.
 *   apply thread owns the apply connection.  It receives chosen instances
 *     through the apply queue *with copies of their item bytes*: the ingest
 *     store is single-threaded, so the network thread copies the records of
 *     an instance out of it once every range is held ("resolving" the
 *     entry), and only then marks the entry ready.  The apply thread never
 *     touches the ingest store; items are released later, by the network
 *     thread, once every member that matters has applied them.
 *   reader threads (READERS) each own a reader connection; they run READ
 *     datagrams.
 *   snapshot threads: one serves snapshots to peers over TCP (on the
 *     server's own ip:port), one fetches a snapshot when the core asks for
 *     one; the network thread installs it (doc/server.md, "Snapshot
 *     transfer").
 *
 * The apply and reader threads hand their results back through the outbox
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
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "apply.h"
#include "batch.h"
#include "clustervt.h"
#include "digest.h"
#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "paxos_codec.h"
#include "pstore.h"
#include "reasm.h"
#include "result.h"
#include "siphash.h"
#include "server.h"
#include "transport.h"
#include "util.h"
#include "wire.h"
#include "wire_server.h"

_Static_assert(WIRE_ROLE_FOLLOWER == (int)PAXOS_FOLLOWER && WIRE_ROLE_CANDIDATE == (int)PAXOS_CANDIDATE &&
		       WIRE_ROLE_LEADER == (int)PAXOS_LEADER, "STATUS carries enum paxos_role");
_Static_assert(CLUSTERCONF_MAX_SERVERS == PAXOS_MAX_NODES, "a cluster's servers are the Paxos core's nodes");

#define STREAM_CAP 2048u       /* stream table slots (ingest keeps <= 1024 streams) */
#define RECV_BATCH 64u         /* datagrams per transport_recv */
#define RECV_ROUNDS 16         /* recv calls per loop iteration before the rest of the work */
#define OUT_SLOTS 64u          /* outgoing datagrams buffered before a send */
#define AQ_HIGH 64u            /* apply queue entries above which we stop accepting */
#define READQ_MAX 1024u        /* READ requests waiting */
#define RESEND_MAX_ITEMS 4096u /* items sent for one RESEND */
#define PSTORE_LIMIT (64ull << 20) /* compact the Paxos log above this size */
#define RECENT_INSTANCES 64u   /* rows of mtr_instances */
#define READ_WAIT_MS 5000      /* a READ waits this long for min_instance */
#define READERS 2              /* reader threads (a read waiting for its instance blocks only one) */
#define LOOP_MS 5              /* longest sleep of the network loop */

/* ---- small types ---- */

struct stream {
	uint64_t id; /* 0: free slot */
	struct transport_addr proxy;
	int has_proxy;
	uint32_t tries; /* gap requests since gap_wm (proxy first, then peers too) */
	uint64_t gap_wm; /* the watermark when the current gap was first asked for */
	uint64_t peer_wm[PAXOS_MAX_NODES]; /* watermarks peers reported (WATERMARK) */
};

struct peer {
	int heard;
	uint64_t last_ms;
	struct wire_status st;
};

/* A chosen instance on its way to the apply thread. */
struct aq_entry {
	uint64_t inst;
	struct batch b;
	uint8_t *buf; /* the item records, concatenated (set when ready) */
	size_t len;
	int ready;
	struct aq_entry *next;
};

/* One result inside a done record. */
struct res_item {
	uint64_t stream, seq, request;
	size_t off;
	uint32_t len;
};

/* Results handed from the apply or reader thread to the network thread.
 * inst != 0: an applied instance (kept in the result cache); inst == 0: the
 * answer to a READ (to, stream, rid, seen). */
struct done {
	uint64_t inst;
	struct res_item *it;
	size_t n, cap;
	uint8_t *bytes;
	size_t blen, bcap;
	struct transport_addr to;
	uint64_t stream, rid, seen;
	struct done *next;
};

struct read_req {
	struct transport_addr from;
	uint64_t stream, rid, min_inst;
	uint8_t *item;
	uint32_t len;
	struct read_req *next;
};

/* An instance waiting for its items to be released everywhere. */
struct rel {
	uint64_t inst;
	struct batch b;
};

struct recent {
	uint64_t inst;
	uint32_t ranges;
	uint64_t items, apply_us;
	char text[96];
};

struct server {
	struct server_config cfg;
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
	struct peer peers[PAXOS_MAX_NODES];
	int added, marks_dirty, backpressure, last_role;
	uint64_t last_ballot_logged;
	uint64_t now_ms, next_status_ms;
	uint64_t epoch_ms;      /* the Paxos core's clock starts at 0 here (no election at the first tick) */
	uint64_t last_eager_ms; /* last eager WATERMARK to the leader */
	int eager_pending;      /* watermarks moved since it */
	uint64_t next_publish_ms; /* next copy of the watermarks for mtr_streams */
	uint32_t peer_rr;

	/* release bookkeeping (network thread) */
	struct rel *rel;
	size_t rel_head, rel_n, rel_cap;
	uint64_t released, applied_net, items_applied;

	/* apply queue */
	pthread_mutex_t qmu;
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

	pthread_t apply_th, reader_th[READERS];
	int apply_started, reader_started; /* reader_started: how many readers run */

	/* snapshot side channel (TCP on the server's own ip:port) */
	int snap_lfd;              /* listening socket, or -1 */
	pthread_t snap_srv_th;
	int snap_srv_started;
	atomic_int snap_srv_stop;
	pthread_t snap_fetch_th;
	atomic_int snap_state;     /* SNAP_IDLE, SNAP_FETCHING, SNAP_READY, SNAP_FAILED */
	uint32_t snap_from;
	uint64_t snap_retry_ms;

	/* result cache: the last cfg.result_cache applied instances */
	struct done **cache;
	unsigned ccap, cn, chead;

	/* published state (clustervt, server_info) */
	pthread_mutex_t imu;
	struct server_info info;
	struct paxos_status pst;
	struct peer pub_peers[PAXOS_MAX_NODES];
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
};

/* ---- configuration ---- */

int server_config_read(const struct conf *c, struct server_config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int rc = clusterconf_read(c, &out->cc, err, errlen);
	if (rc != 0)
		return rc;
	const char *id = conf_str(c, "server.id");
	if (id == NULL) {
		snprintf(err, errlen, "server.id is not set: set it to this server's index in cluster.servers (0..%u)",
			 out->cc.nservers - 1);
		return MTR_ECONFIG;
	}
	int64_t v = conf_int(c, "server.id");
	if (v < 0 || v >= (int64_t)out->cc.nservers) {
		snprintf(err, errlen, "server.id: %lld is not an index into cluster.servers; use 0..%u", (long long)v,
			 out->cc.nservers - 1);
		return MTR_ECONFIG;
	}
	out->id = (uint32_t)v;
	const char *dir = conf_str(c, "data.dir");
	if (dir == NULL || *dir == '\0') {
		snprintf(err, errlen, "data.dir is not set: set it to this server's data directory");
		return MTR_ECONFIG;
	}
	if (strlen(dir) >= sizeof out->data_dir - 64) {
		snprintf(err, errlen, "data.dir: the path is too long; use a shorter one");
		return MTR_ECONFIG;
	}
	snprintf(out->data_dir, sizeof out->data_dir, "%s", dir);
	const char *d = conf_str(c, "data.durability");
	if (strcmp(d, "disk") == 0)
		out->durability_memory = 0;
	else if (strcmp(d, "memory") == 0)
		out->durability_memory = 1;
	else {
		snprintf(err, errlen, "data.durability: '%s' is not a mode; use disk or memory", d);
		return MTR_ECONFIG;
	}
	const char *sy = conf_str(c, "apply.sync");
	if (strcmp(sy, "normal") == 0)
		out->apply_sync_full = 0;
	else if (strcmp(sy, "full") == 0)
		out->apply_sync_full = 1;
	else {
		snprintf(err, errlen, "apply.sync: '%s' is not a mode; use normal or full", sy);
		return MTR_ECONFIG;
	}
	struct {
		const char *key;
		int64_t lo, hi;
		int64_t *dst;
	} nums[5];
	int64_t hb, el, sp, rcache, lag;
	nums[0] = (typeof(nums[0])){"paxos.heartbeat", 1, 60000, &hb};
	nums[1] = (typeof(nums[0])){"paxos.election", 2, 600000, &el};
	nums[2] = (typeof(nums[0])){"server.status_period", 1, 60000, &sp};
	nums[3] = (typeof(nums[0])){"server.result_cache", 1, 1 << 20, &rcache};
	nums[4] = (typeof(nums[0])){"server.compact_lag", 1, INT64_MAX, &lag};
	for (unsigned i = 0; i < ARRAY_SIZE(nums); i++) {
		*nums[i].dst = conf_int(c, nums[i].key);
		if (*nums[i].dst < nums[i].lo || *nums[i].dst > nums[i].hi) {
			snprintf(err, errlen, "%s: %lld is out of range; use %lld .. %lld", nums[i].key,
				 (long long)*nums[i].dst, (long long)nums[i].lo, (long long)nums[i].hi);
			return MTR_ECONFIG;
		}
	}
	if (el <= hb) {
		snprintf(err, errlen, "paxos.election (%lld ms) must be longer than paxos.heartbeat (%lld ms)",
			 (long long)el, (long long)hb);
		return MTR_ECONFIG;
	}
	out->heartbeat_ms = (uint32_t)hb;
	out->election_ms = (uint32_t)el;
	out->status_period_ms = (uint32_t)sp;
	out->result_cache = (uint32_t)rcache;
	out->compact_lag = (uint64_t)lag;
	const char *lv = conf_str(c, "log.level");
	out->log_level = log_level_parse(lv);
	if (out->log_level < 0) {
		snprintf(err, errlen, "log.level: '%s' is not a level; use error, warn, info, debug or trace", lv);
		return MTR_ECONFIG;
	}
	return 0;
}

/* ---- outgoing datagrams ---- */

static void out_flush(struct server *s)
{
	if (s->nout == 0)
		return;
	int rc = transport_send_to(s->t, s->out, s->nout);
	if (rc < 0)
		mtr_log(LOG_WARN, "server %u: send of %u datagrams: %s", s->cfg.id, s->nout, mtr_strerror(rc));
	s->nout = 0;
}

/* The buffer of the next outgoing datagram (WIRE_MAX_DGRAM bytes). */
static uint8_t *out_buf(struct server *s)
{
	if (s->nout == OUT_SLOTS)
		out_flush(s);
	return s->obuf + (size_t)s->nout * WIRE_MAX_DGRAM;
}

/* Queue the datagram built in out_buf() for `to`. */
static void out_push(struct server *s, size_t len, const struct transport_addr *to)
{
	struct transport_msg *m = &s->out[s->nout++];
	m->buf = s->obuf + (size_t)(m - s->out) * WIRE_MAX_DGRAM;
	m->len = (uint32_t)len;
	m->peer = *to;
}

/* Queue a copy of buf[0..len) for `to`. */
static void out_copy(struct server *s, const uint8_t *buf, size_t len, const struct transport_addr *to)
{
	uint8_t *b = out_buf(s);
	memcpy(b, buf, len);
	out_push(s, len, to);
}

/* ---- streams ---- */

static struct stream *stream_find(struct server *s, uint64_t id, int create)
{
	if (id == 0)
		return NULL;
	uint32_t h = (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 40) & (STREAM_CAP - 1);
	for (unsigned k = 0; k < STREAM_CAP; k++) {
		struct stream *st = &s->streams[(h + k) & (STREAM_CAP - 1)];
		if (st->id == id)
			return st;
		if (st->id == 0) {
			if (!create || s->nstreams >= STREAM_CAP / 2)
				return NULL;
			memset(st, 0, sizeof *st);
			st->id = id;
			s->nstreams++;
			return st;
		}
	}
	return NULL;
}

/* Remember where a stream's proxy sends from (results and RESENDs go
 * there).  Only datagrams from non-servers name a proxy. */
static void stream_note_proxy(struct server *s, uint64_t id, const struct transport_msg *m)
{
	if (m->hdr.sender < s->cfg.cc.nservers)
		return;
	struct stream *st = stream_find(s, id, 1);
	if (st == NULL)
		return;
	if (!st->has_proxy || st->proxy.ip != m->peer.ip || st->proxy.port != m->peer.port) {
		char a[32];
		mtr_log(LOG_DEBUG, "server %u: stream %016llx from proxy %s", s->cfg.id, (unsigned long long)id,
			transport_addr_format(&m->peer, a, sizeof a));
	}
	st->proxy = m->peer;
	st->has_proxy = 1;
}

/* ---- ingest side ---- */

static void item_add(struct server *s, uint64_t stream, uint64_t seq, const uint8_t *rec, uint32_t len)
{
	int rc = ingest_add(s->ing, stream, seq, rec, len);
	if (rc == 0) {
		s->added = 1;
	} else if (rc == MTR_EIO) {
		mtr_log(LOG_ERROR, "server %u: ingest store failed: %s", s->cfg.id, mtr_strerror(rc));
		atomic_store(&s->fatal, 1);
	}
}

static void on_items(struct server *s, const struct transport_msg *m)
{
	const uint8_t *p = m->buf + WIRE_HDR_SIZE, *end = p + m->hdr.length;
	struct wire_item it;
	uint64_t last_stream = 0;
	for (;;) {
		const uint8_t *rec = p;
		int rc = wire_items_next(&p, end, &it);
		if (rc <= 0)
			break;
		if (it.stream != last_stream) {
			stream_note_proxy(s, it.stream, m);
			last_stream = it.stream;
		}
		item_add(s, it.stream, it.seq, rec, (uint32_t)(p - rec));
	}
}

static void on_fragment(struct server *s, const struct transport_msg *m)
{
	struct wire_frag f;
	if (wire_frag_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, INGEST_DEFAULT_MAX_ITEM, &f) != 0)
		return;
	stream_note_proxy(s, f.stream, m);
	if (ingest_watermark(s->ing, f.stream) >= f.seq)
		return; /* already held */
	uint8_t *item = NULL;
	size_t len = 0;
	int rc = reasm_add(s->ra, &f, now_mono_ns(), &item, &len);
	if (rc != 1)
		return;
	struct wire_item it;
	long n = wire_item_decode(item, len, &it);
	if (n == (long)len && it.stream == f.stream && it.seq == f.seq)
		item_add(s, f.stream, f.seq, item, (uint32_t)len);
	else
		mtr_log(LOG_DEBUG, "server %u: reassembled item %llu of %016llx is malformed: dropped", s->cfg.id,
			(unsigned long long)f.seq, (unsigned long long)f.stream);
	free(item);
}

static void on_heartbeat(struct server *s, const struct transport_msg *m)
{
	struct wire_heartbeat hb;
	if (wire_heartbeat_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &hb) != 0)
		return;
	stream_note_proxy(s, hb.stream, m);
	if (hb.high > 0)
		ingest_note_high(s->ing, hb.stream, hb.high);
}

/* Send the stored items first..last of stream to `to` (a peer repairing a
 * gap): whole records packed into ITEMS datagrams of the item MTU, larger
 * ones as fragments. */
static void send_items(struct server *s, uint64_t stream, uint64_t first, uint64_t last,
		       const struct transport_addr *to)
{
	const struct clusterconf *cc = &s->cfg.cc;
	size_t mtu = cc->mtu, room = mtu - WIRE_OVERHEAD;
	uint8_t *dg = NULL;
	size_t used = 0;
	unsigned count = 0;
	if (last - first >= RESEND_MAX_ITEMS)
		last = first + RESEND_MAX_ITEMS - 1;
	for (uint64_t seq = first; seq <= last && seq != 0; seq++) {
		const uint8_t *p;
		uint32_t len;
		if (ingest_get(s->ing, stream, seq, &p, &len) != 0)
			continue;
		if (len > room) {
			if (count) {
				struct wire_hdr h = {.type = WIRE_T_ITEMS, .cluster = cc->cluster_id, .sender = s->cfg.id,
						     .length = (uint32_t)used};
				out_push(s, wire_dgram_finish(dg, &h, cc->key.set ? &cc->key : NULL), to);
				dg = NULL;
				used = count = 0;
			}
			uint32_t nf = wire_frag_count(len, mtu);
			for (uint32_t i = 0; i < nf; i++) {
				uint8_t *b = out_buf(s);
				/* out_buf may have flushed: p stays valid (no ingest call) */
				size_t n = wire_frag_build(b, mtu, cc->cluster_id, s->cfg.id, cc->key.set ? &cc->key : NULL,
							   stream, seq, p, len, i);
				out_push(s, n, to);
			}
			continue;
		}
		if (dg != NULL && len > room - used) {
			struct wire_hdr h = {.type = WIRE_T_ITEMS, .cluster = cc->cluster_id, .sender = s->cfg.id,
					     .length = (uint32_t)used};
			out_push(s, wire_dgram_finish(dg, &h, cc->key.set ? &cc->key : NULL), to);
			dg = NULL;
			used = count = 0;
		}
		if (dg == NULL)
			dg = out_buf(s);
		memcpy(dg + WIRE_HDR_SIZE + used, p, len);
		used += len;
		count++;
	}
	if (count) {
		struct wire_hdr h = {.type = WIRE_T_ITEMS, .cluster = cc->cluster_id, .sender = s->cfg.id,
				     .length = (uint32_t)used};
		out_push(s, wire_dgram_finish(dg, &h, cc->key.set ? &cc->key : NULL), to);
	}
}

static void on_resend(struct server *s, const struct transport_msg *m)
{
	struct wire_resend r;
	if (wire_resend_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &r) != 0 || r.first == 0 || r.last < r.first)
		return;
	send_items(s, r.stream, r.first, r.last, &m->peer);
}

/* Ask for the missing items of one range: the proxy on the first try, then
 * the proxy and a peer that reported holding the range (else the next peer
 * in turn). */
static void request_range(struct server *s, const struct ingest_range *r)
{
	const struct clusterconf *cc = &s->cfg.cc;
	struct stream *st = stream_find(s, r->stream, 1);
	struct wire_resend rs = {.stream = r->stream, .first = r->first, .last = r->last};
	if (st) {
		/* a new gap (the watermark moved since the last request):
		 * the proxy alone first */
		uint64_t w = ingest_watermark(s->ing, r->stream);
		if (w != st->gap_wm) {
			st->gap_wm = w;
			st->tries = 0;
		}
	}
	uint32_t tries = st ? st->tries++ : 1;
	if (st && st->has_proxy) {
		uint8_t *b = out_buf(s);
		out_push(s, wire_resend_build(b, cc->cluster_id, s->cfg.id, cc->key.set ? &cc->key : NULL, &rs),
			 &st->proxy);
	}
	if ((st && st->has_proxy && tries == 0) || cc->nservers < 2)
		return;
	uint32_t peer = PAXOS_MAX_NODES;
	for (uint32_t k = 0; k < cc->nservers && st; k++) {
		uint32_t j = (s->peer_rr + k) % cc->nservers;
		if (j != s->cfg.id && st->peer_wm[j] >= r->last) {
			peer = j;
			break;
		}
	}
	if (peer == PAXOS_MAX_NODES) {
		do
			peer = s->peer_rr++ % cc->nservers;
		while (peer == s->cfg.id);
	} else {
		s->peer_rr = peer + 1;
	}
	uint8_t *b = out_buf(s);
	out_push(s, wire_resend_build(b, cc->cluster_id, s->cfg.id, cc->key.set ? &cc->key : NULL, &rs),
		 &cc->servers[peer]);
}

static void request_gaps(struct server *s)
{
	struct ingest_range r[32];
	int n = ingest_gaps_all(s->ing, now_mono_ns(), r, (int)ARRAY_SIZE(r));
	for (int i = 0; i < n; i++)
		request_range(s, &r[i]);
}

static void px_send(void *data, uint32_t to, const struct paxos_msg *msg);
static void eager_report(struct server *s);

/* Tell the core our watermarks (every stream we know). */
static void push_watermarks(struct server *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < STREAM_CAP && n < PAXOS_MAX_MARKS; i++) {
		struct stream *st = &s->streams[i];
		if (st->id == 0)
			continue;
		uint64_t w = ingest_watermark(s->ing, st->id);
		if (w == 0)
			continue;
		s->marks[n].stream = st->id;
		s->marks[n].seq = w;
		n++;
	}
	paxos_watermarks(s->px, s->marks, n);
	/*
	 * Eager report: the core sends WATERMARK to the leader once per
	 * heartbeat period, so a fresh batch would wait up to that long for a
	 * majority to be known.  A follower whose watermarks moved also sends
	 * the same message itself, at most once a millisecond: the leader
	 * handles it like the periodic one, and batches at once.
	 */
	if (n > 0)
		s->eager_pending = 1;
	eager_report(s);
}

/* Send the pending eager WATERMARK (see push_watermarks) unless one left
 * in this millisecond; the loop then sleeps at most 1 ms and retries. */
static void eager_report(struct server *s)
{
	if (!s->eager_pending || s->now_ms == s->last_eager_ms)
		return;
	s->eager_pending = 0;
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	if (ps.role == PAXOS_LEADER || ps.leader >= s->cfg.cc.nservers || ps.leader == s->cfg.id)
		return;
	unsigned n = 0;
	for (unsigned i = 0; i < STREAM_CAP && n < PAXOS_MAX_MARKS; i++) {
		struct stream *st = &s->streams[i];
		uint64_t w = st->id ? ingest_watermark(s->ing, st->id) : 0;
		if (w == 0)
			continue;
		s->marks[n].stream = st->id;
		s->marks[n].seq = w;
		n++;
	}
	struct paxos_msg m = {.type = PAXOS_WATERMARK, .n_marks = n, .marks = s->marks};
	px_send(s, ps.leader, &m);
	s->last_eager_ms = s->now_ms;
}

/* ---- Paxos host side ---- */

static void px_send(void *data, uint32_t to, const struct paxos_msg *msg)
{
	struct server *s = data;
	const struct clusterconf *cc = &s->cfg.cc;
	uint8_t *b = out_buf(s);
	long n = wire_paxos_build(b, WIRE_MAX_DGRAM, cc->cluster_id, s->cfg.id, cc->key.set ? &cc->key : NULL, msg);
	if (n < 0) {
		mtr_log(LOG_WARN, "server %u: %s message not sent: %s", s->cfg.id, paxos_msg_name(msg->type),
			mtr_strerror((int)n));
		return;
	}
	if (to != PAXOS_BROADCAST) {
		if (to < cc->nservers && to != s->cfg.id)
			out_push(s, (size_t)n, &cc->servers[to]);
		return;
	}
	/*
	 * The first peer gets the built slot, the others copies of it.  The
	 * copies cannot overwrite the source: a flush happens at most once
	 * here (at most 15 copies), and only when the source sits in one of
	 * the last slots, while the copies after it fill the first ones.
	 */
	int first = 1;
	for (uint32_t j = 0; j < cc->nservers; j++) {
		if (j == s->cfg.id)
			continue;
		if (first)
			out_push(s, (size_t)n, &cc->servers[j]);
		else
			out_copy(s, b, (size_t)n, &cc->servers[j]);
		first = 0;
	}
}

static int px_persist(void *data, const struct paxos_persist *change)
{
	struct server *s = data;
	return pstore_persist(s->ps, change);
}

static bool px_holds(void *data, uint64_t stream, uint64_t last)
{
	struct server *s = data;
	if (s->backpressure)
		return false;
	return ingest_holds(s->ing, stream, last) != 0;
}

static void px_fetch(void *data, uint64_t stream, uint64_t first, uint64_t last)
{
	struct server *s = data;
	(void)first;
	if (s->backpressure && ingest_holds(s->ing, stream, last))
		return;
	/* The ingest gap machinery (retry interval, proxy then peers) asks. */
	stream_find(s, stream, 1);
	ingest_note_high(s->ing, stream, last);
}

static void px_chosen(void *data, uint64_t inst, const struct batch *value)
{
	struct server *s = data;
	struct aq_entry *e = calloc(1, sizeof *e);
	struct rel r = {.inst = inst};
	if (e == NULL || batch_copy(&e->b, value) != 0 || batch_copy(&r.b, value) != 0) {
		mtr_log(LOG_ERROR, "server %u: out of memory queueing instance %llu", s->cfg.id,
			(unsigned long long)inst);
		if (e)
			batch_free(&e->b);
		free(e);
		atomic_store(&s->fatal, 1);
		return;
	}
	e->inst = inst;
	for (uint32_t i = 0; i < value->n; i++)
		stream_find(s, value->r[i].stream, 1);
	if (s->rel_n == s->rel_cap) {
		size_t nc = s->rel_cap ? s->rel_cap * 2 : 256;
		struct rel *nr = malloc(nc * sizeof *nr);
		if (nr == NULL) {
			batch_free(&r.b);
		} else {
			for (size_t i = 0; i < s->rel_n; i++)
				nr[i] = s->rel[(s->rel_head + i) % s->rel_cap];
			free(s->rel);
			s->rel = nr;
			s->rel_cap = nc;
			s->rel_head = 0;
		}
	}
	if (s->rel_n < s->rel_cap) {
		s->rel[(s->rel_head + s->rel_n) % s->rel_cap] = r;
		s->rel_n++;
	}
	pthread_mutex_lock(&s->qmu);
	if (s->qtail)
		s->qtail->next = e;
	else
		s->qhead = e;
	s->qtail = e;
	if (s->qresolve == NULL)
		s->qresolve = e;
	s->qlen++;
	pthread_mutex_unlock(&s->qmu);
	mtr_log(LOG_TRACE, "server %u: instance %llu chosen (%u ranges)", s->cfg.id, (unsigned long long)inst,
		value->n);
}

/* ---- snapshots: a TCP side channel (doc/server.md, "Snapshot transfer") ---- */

enum { SNAP_IDLE = 0, SNAP_FETCHING = 1, SNAP_READY = 2, SNAP_FAILED = 3 };

#define SNAP_REQ_SIZE 32
#define SNAP_HDR_SIZE 24
#define SNAP_IO_TIMEOUT_S 10

static const char snap_req_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'Q'};
static const char snap_resp_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'R'};

/* The check value of the first 24 bytes of a request: SipHash-2-4 under the
 * cluster key, XXH3-64 without one. */
static uint64_t snap_req_mac(const struct clusterconf *cc, const uint8_t *req)
{
	return cc->key.set ? siphash24(cc->key.k, req, 24) : XXH3_64bits(req, 24);
}

/* The trailer of a response: binds nonce, instance, size and the XXH3-128
 * of the bytes (keyed with the cluster key when there is one). */
static uint64_t snap_trailer(const struct clusterconf *cc, uint64_t nonce, uint64_t inst, uint64_t size,
			     XXH128_hash_t h)
{
	uint8_t b[40];
	st64(b, nonce);
	st64(b + 8, inst);
	st64(b + 16, size);
	st64(b + 24, h.low64);
	st64(b + 32, h.high64);
	return cc->key.set ? siphash24(cc->key.k, b, sizeof b) : XXH3_64bits(b, sizeof b);
}

static int io_full(int fd, void *buf, size_t n, int wr)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = wr ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return MTR_EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void sock_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = SNAP_IO_TIMEOUT_S};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Serve one snapshot request on connection fd. */
static void snap_serve(struct server *s, int fd)
{
	const struct clusterconf *cc = &s->cfg.cc;
	uint8_t req[SNAP_REQ_SIZE];
	sock_timeouts(fd);
	if (io_full(fd, req, sizeof req, 0) != 0 || memcmp(req, snap_req_magic, 8) != 0 ||
	    ld32(req + 8) != cc->cluster_id || ld64(req + 24) != snap_req_mac(cc, req)) {
		mtr_log(LOG_WARN, "server %u: snapshot request refused (bad magic, cluster or check value)", s->cfg.id);
		return;
	}
	uint32_t who = ld32(req + 12);
	uint64_t nonce = ld64(req + 16);
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.send", s->cfg.data_dir);
	uint64_t inst = 0;
	int rc = apply_snapshot(s->ap, path, &inst);
	FILE *f = rc == 0 ? fopen(path, "rb") : NULL;
	if (f == NULL) {
		mtr_log(LOG_ERROR, "server %u: cannot make a snapshot for server %u: %s", s->cfg.id, who,
			rc ? mtr_strerror(rc) : strerror(errno));
		unlink(path);
		return;
	}
	fseeko(f, 0, SEEK_END);
	uint64_t size = (uint64_t)ftello(f);
	fseeko(f, 0, SEEK_SET);
	uint8_t hdr[SNAP_HDR_SIZE];
	memcpy(hdr, snap_resp_magic, 8);
	st64(hdr + 8, inst);
	st64(hdr + 16, size);
	XXH3_state_t *xs = XXH3_createState();
	XXH3_128bits_reset(xs);
	rc = io_full(fd, hdr, sizeof hdr, 1);
	uint8_t buf[65536];
	size_t k;
	while (rc == 0 && (k = fread(buf, 1, sizeof buf, f)) > 0) {
		XXH3_128bits_update(xs, buf, k);
		rc = io_full(fd, buf, k, 1);
	}
	if (rc == 0) {
		uint8_t tr[8];
		st64(tr, snap_trailer(cc, nonce, inst, size, XXH3_128bits_digest(xs)));
		rc = io_full(fd, tr, 8, 1);
	}
	XXH3_freeState(xs);
	fclose(f);
	unlink(path);
	mtr_log(LOG_INFO, "server %u: %s snapshot at instance %llu (%llu bytes) to server %u", s->cfg.id,
		rc == 0 ? "sent" : "failed to send", (unsigned long long)inst, (unsigned long long)size, who);
}

static void *snap_server_main(void *arg)
{
	struct server *s = arg;
	while (!atomic_load(&s->snap_srv_stop)) {
		struct pollfd pf = {.fd = s->snap_lfd, .events = POLLIN};
		if (poll(&pf, 1, 200) <= 0)
			continue;
		int fd = accept4(s->snap_lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		snap_serve(s, fd);
		close(fd);
	}
	return NULL;
}

/* Listen for snapshot requests on TCP at this server's address.  Not fatal
 * when impossible (logged): the server then cannot serve snapshots. */
static void snap_listen(struct server *s)
{
	const struct transport_addr *a = &s->cfg.cc.servers[s->cfg.id];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(s->t->cfg.bind.port),
				 .sin_addr.s_addr = htonl(a->ip)};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4) != 0) {
		char b[32];
		mtr_log(LOG_WARN, "server %u: no snapshot channel on tcp %s: %s", s->cfg.id,
			transport_addr_format(a, b, sizeof b), strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	s->snap_lfd = fd;
}

static void *snap_fetch_main(void *arg)
{
	struct server *s = arg;
	const struct clusterconf *cc = &s->cfg.cc;
	const struct transport_addr *a = &cc->servers[s->snap_from];
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.recv", s->cfg.data_dir);
	int ok = 0;
	FILE *f = NULL;
	XXH3_state_t *xs = XXH3_createState();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(a->port), .sin_addr.s_addr = htonl(a->ip)};
	if (fd < 0 || xs == NULL)
		goto out;
	sock_timeouts(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	uint8_t req[SNAP_REQ_SIZE];
	uint64_t nonce = now_mono_ns() ^ ((uint64_t)s->cfg.id << 56);
	memcpy(req, snap_req_magic, 8);
	st32(req + 8, cc->cluster_id);
	st32(req + 12, s->cfg.id);
	st64(req + 16, nonce);
	st64(req + 24, snap_req_mac(cc, req));
	uint8_t hdr[SNAP_HDR_SIZE];
	if (io_full(fd, req, sizeof req, 1) != 0 || io_full(fd, hdr, sizeof hdr, 0) != 0 ||
	    memcmp(hdr, snap_resp_magic, 8) != 0)
		goto out;
	uint64_t inst = ld64(hdr + 8), size = ld64(hdr + 16), left = size;
	f = fopen(path, "wb");
	if (f == NULL)
		goto out;
	XXH3_128bits_reset(xs);
	uint8_t buf[65536];
	while (left > 0) {
		size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
		if (io_full(fd, buf, k, 0) != 0 || fwrite(buf, 1, k, f) != k)
			goto out;
		XXH3_128bits_update(xs, buf, k);
		left -= k;
	}
	uint8_t tr[8];
	if (io_full(fd, tr, 8, 0) != 0 || ld64(tr) != snap_trailer(cc, nonce, inst, size, XXH3_128bits_digest(xs))) {
		mtr_log(LOG_WARN, "server %u: snapshot from server %u failed its check", s->cfg.id, s->snap_from);
		goto out;
	}
	if (fflush(f) != 0 || fdatasync(fileno(f)) != 0)
		goto out;
	mtr_log(LOG_INFO, "server %u: received snapshot at instance %llu (%llu bytes) from server %u", s->cfg.id,
		(unsigned long long)inst, (unsigned long long)size, s->snap_from);
	ok = 1;
out:
	if (!ok)
		mtr_log(LOG_WARN, "server %u: snapshot transfer from server %u failed (%s); will retry", s->cfg.id,
			s->snap_from, strerror(errno));
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	XXH3_freeState(xs);
	atomic_store(&s->snap_state, ok ? SNAP_READY : SNAP_FAILED);
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof one);
	(void)w;
	return NULL;
}

static void px_snapshot_needed(void *data, uint32_t from, uint64_t inst)
{
	struct server *s = data;
	if (atomic_load(&s->snap_state) != SNAP_IDLE || s->now_ms < s->snap_retry_ms || from >= s->cfg.cc.nservers)
		return;
	mtr_log(LOG_INFO, "server %u: server %u compacted instances <= %llu that this server lacks: fetching a snapshot",
		s->cfg.id, from, (unsigned long long)inst);
	s->snap_from = from;
	atomic_store(&s->snap_state, SNAP_FETCHING);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&s->snap_fetch_th, NULL, snap_fetch_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		atomic_store(&s->snap_state, SNAP_IDLE);
}

static int start_threads(struct server *s);
static void stop_threads(struct server *s);
static void drain_outbox(struct server *s);
static int cursor_add(void *arg, uint64_t stream, uint64_t last);

/*
 * Install a received snapshot (network thread): stop the apply and reader
 * threads, drop the apply queue, close the replica, apply_restore, reopen,
 * and restart the core's delivery after the snapshot's instance with the
 * snapshot's cursor (paxos_install).  Items up to the cursor are released.
 */
static int snap_install(struct server *s)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.recv", s->cfg.data_dir);
	stop_threads(s);
	drain_outbox(s);
	pthread_mutex_lock(&s->qmu);
	while (s->qhead) {
		struct aq_entry *e = s->qhead;
		s->qhead = e->next;
		batch_free(&e->b);
		free(e->buf);
		free(e);
	}
	s->qtail = s->qresolve = NULL;
	s->qlen = 0;
	s->qstop = 0;
	pthread_mutex_unlock(&s->qmu);
	s->rstop = 0;
	struct apply_config ac = {.dir = s->cfg.data_dir,
				  .durability = s->cfg.apply_sync_full ? APPLY_SYNC_FULL : APPLY_SYNC_NORMAL,
				  .provider = &s->prov};
	apply_close(s->ap);
	s->ap = NULL;
	int rc = apply_restore(s->cfg.data_dir, path);
	if (rc != 0)
		mtr_log(LOG_ERROR, "server %u: installing the snapshot: %s", s->cfg.id, mtr_strerror(rc));
	unlink(path);
	int orc = apply_open(&ac, &s->ap);
	if (orc != 0) {
		mtr_log(LOG_ERROR, "server %u: reopening the replica database: %s", s->cfg.id, mtr_strerror(orc));
		return orc;
	}
	uint64_t inst = apply_applied(s->ap);
	struct batch_order cur = {0};
	rc = apply_cursor(s->ap, cursor_add, &cur);
	if (rc == 0)
		rc = paxos_install(s->px, inst, &cur);
	if (rc == 0) {
		for (uint32_t i = 0; i < cur.n; i++) {
			stream_find(s, cur.v[i].stream, 1);
			ingest_forget(s->ing, cur.v[i].stream, cur.v[i].seq);
		}
		while (s->rel_n > 0 && s->rel[s->rel_head].inst <= inst) {
			batch_free(&s->rel[s->rel_head].b);
			s->rel_head = (s->rel_head + 1) % s->rel_cap;
			s->rel_n--;
		}
		if (inst > s->applied_net)
			s->applied_net = inst;
		mtr_log(LOG_INFO, "server %u: installed snapshot: applied instance %llu", s->cfg.id,
			(unsigned long long)inst);
	}
	batch_order_free(&cur);
	if (rc != 0)
		return rc;
	return start_threads(s);
}

/* Copy the items of the first unresolved queue entries out of the ingest
 * store (in order; stop at the first whose items are not all held, and ask
 * for those). */
static void resolve_queue(struct server *s)
{
	for (;;) {
		pthread_mutex_lock(&s->qmu);
		struct aq_entry *e = s->qresolve;
		pthread_mutex_unlock(&s->qmu);
		if (e == NULL)
			return;
		int held = 1;
		for (uint32_t i = 0; i < e->b.n; i++) {
			const struct batch_range *r = &e->b.r[i];
			if (!ingest_holds(s->ing, r->stream, r->last)) {
				held = 0;
				ingest_note_high(s->ing, r->stream, r->last);
			}
		}
		if (!held)
			return;
		size_t cap = 0, len = 0;
		uint8_t *buf = NULL;
		for (uint32_t i = 0; i < e->b.n; i++) {
			const struct batch_range *r = &e->b.r[i];
			for (uint64_t seq = r->first; seq <= r->last; seq++) {
				const uint8_t *p;
				uint32_t n;
				int rc = ingest_get(s->ing, r->stream, seq, &p, &n);
				if (rc != 0) {
					mtr_log(LOG_ERROR, "server %u: item %llu of stream %016llx of instance %llu: %s",
						s->cfg.id, (unsigned long long)seq, (unsigned long long)r->stream,
						(unsigned long long)e->inst, mtr_strerror(rc));
					free(buf);
					atomic_store(&s->fatal, 1);
					return;
				}
				if (len + n > cap) {
					size_t nc = cap ? cap * 2 : 65536;
					while (nc < len + n)
						nc *= 2;
					uint8_t *nb = realloc(buf, nc);
					if (nb == NULL) {
						free(buf);
						atomic_store(&s->fatal, 1);
						return;
					}
					buf = nb;
					cap = nc;
				}
				memcpy(buf + len, p, n);
				len += n;
			}
		}
		pthread_mutex_lock(&s->qmu);
		e->buf = buf;
		e->len = len;
		e->ready = 1;
		s->qresolve = e->next;
		pthread_cond_broadcast(&s->qcv);
		pthread_mutex_unlock(&s->qmu);
	}
}

/* ---- results ---- */

static void done_free(struct done *d)
{
	if (d == NULL)
		return;
	free(d->it);
	free(d->bytes);
	free(d);
}

static int done_reserve(struct done *d, size_t bytes)
{
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 64;
		struct res_item *p = realloc(d->it, nc * sizeof *p);
		if (p == NULL)
			return MTR_ENOMEM;
		d->it = p;
		d->cap = nc;
	}
	if (d->blen + bytes > d->bcap) {
		size_t nc = d->bcap ? d->bcap * 2 : 4096;
		while (nc < d->blen + bytes)
			nc *= 2;
		uint8_t *p = realloc(d->bytes, nc);
		if (p == NULL)
			return MTR_ENOMEM;
		d->bytes = p;
		d->bcap = nc;
	}
	return 0;
}

/* Append the encoded result of one item (or read) to d. */
static int done_add(struct done *d, uint64_t stream, uint64_t seq, uint64_t request, const struct apply_result *res)
{
	size_t n = result_size(res);
	char msg[200];
	struct apply_stmt_result es;
	struct apply_result big;
	if (n > RESULT_MAX_BYTES) {
		snprintf(msg, sizeof msg,
			 "the result (%zu bytes) is larger than an answer can carry (%zu bytes): "
			 "select fewer rows at a time, e.g. with LIMIT and OFFSET",
			 n, RESULT_MAX_BYTES);
		big = result_error(SQLITE_TOOBIG, msg, &es);
		res = &big;
		n = result_size(res);
	}
	if (done_reserve(d, n) != 0)
		return MTR_ENOMEM;
	long w = result_encode(res, d->bytes + d->blen, n);
	if (w < 0)
		return (int)w;
	d->it[d->n++] = (struct res_item){.stream = stream, .seq = seq, .request = request, .off = d->blen,
					  .len = (uint32_t)w};
	d->blen += (size_t)w;
	return 0;
}

static void outbox_post(struct server *s, struct done *d)
{
	pthread_mutex_lock(&s->omu);
	if (s->otail)
		s->otail->next = d;
	else
		s->ohead = d;
	s->otail = d;
	pthread_mutex_unlock(&s->omu);
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof one);
	(void)w;
}

/* Send results r[0..n) of stream to addr as RESULT datagrams. */
static void send_results(struct server *s, uint64_t stream, const struct wire_result *r, size_t n,
			 const struct transport_addr *to)
{
	const struct clusterconf *cc = &s->cfg.cc;
	size_t idx = 0;
	uint32_t off = 0;
	while (idx < n) {
		uint8_t *b = out_buf(s);
		size_t len = wire_result_build(b, cc->mtu, cc->cluster_id, s->cfg.id, cc->key.set ? &cc->key : NULL,
					       stream, r, n, &idx, &off);
		if (len == 0)
			break;
		out_push(s, len, to);
	}
}

/* Send the results of an applied instance, grouped by stream, to each
 * stream's proxy. */
static void send_done(struct server *s, const struct done *d)
{
	struct wire_result wr[256];
	size_t i = 0;
	while (i < d->n) {
		uint64_t stream = d->it[i].stream;
		struct stream *st = stream_find(s, stream, 0);
		size_t k = 0;
		while (i < d->n && d->it[i].stream == stream) {
			const struct res_item *ri = &d->it[i];
			wr[k++] = (struct wire_result){.seq = ri->seq, .request = ri->request, .instance = d->inst,
						       .data = d->bytes + ri->off, .len = ri->len};
			i++;
			if (k == ARRAY_SIZE(wr)) {
				if (st && st->has_proxy)
					send_results(s, stream, wr, k, &st->proxy);
				k = 0;
			}
		}
		if (k && st && st->has_proxy)
			send_results(s, stream, wr, k, &st->proxy);
	}
}

static void cache_put(struct server *s, struct done *d)
{
	if (s->ccap == 0) {
		done_free(d);
		return;
	}
	if (s->cn == s->ccap) {
		done_free(s->cache[s->chead]);
		s->cache[s->chead] = d;
		s->chead = (s->chead + 1) % s->ccap;
	} else {
		s->cache[(s->chead + s->cn) % s->ccap] = d;
		s->cn++;
	}
}

static void on_result_request(struct server *s, const struct transport_msg *m)
{
	struct wire_result_request rq;
	if (wire_result_request_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &rq) != 0)
		return;
	stream_note_proxy(s, rq.stream, m);
	for (unsigned k = s->cn; k-- > 0;) {
		const struct done *d = s->cache[(s->chead + k) % s->ccap];
		for (size_t i = 0; i < d->n; i++) {
			const struct res_item *ri = &d->it[i];
			if (ri->stream == rq.stream && ri->seq == rq.seq) {
				struct wire_result wr = {.seq = ri->seq, .request = ri->request, .instance = d->inst,
							 .data = d->bytes + ri->off, .len = ri->len};
				send_results(s, rq.stream, &wr, 1, &m->peer);
				return;
			}
		}
	}
	mtr_log(LOG_DEBUG, "server %u: RESULT_REQUEST %016llx/%llu: not in the result cache", s->cfg.id,
		(unsigned long long)rq.stream, (unsigned long long)rq.seq);
}

static void drain_outbox(struct server *s)
{
	pthread_mutex_lock(&s->omu);
	struct done *d = s->ohead;
	s->ohead = s->otail = NULL;
	pthread_mutex_unlock(&s->omu);
	while (d) {
		struct done *next = d->next;
		d->next = NULL;
		if (d->inst != 0) {
			send_done(s, d);
			if (d->inst > s->applied_net)
				s->applied_net = d->inst;
			s->items_applied += d->n;
			cache_put(s, d);
		} else {
			if (d->n == 1) {
				struct wire_result wr = {.seq = 0, .request = d->rid, .instance = d->seen,
							 .data = d->bytes + d->it[0].off, .len = d->it[0].len};
				send_results(s, d->stream, &wr, 1, &d->to);
			}
			done_free(d);
		}
		d = next;
	}
}

/* ---- release ---- */

/* Release items and Paxos instances applied by every member that is not
 * more than compact_lag behind us (those will need a snapshot). */
static void release(struct server *s)
{
	uint64_t mine = s->applied_net, r = mine;
	for (uint32_t j = 0; j < s->cfg.cc.nservers; j++) {
		if (j == s->cfg.id)
			continue;
		uint64_t a = s->peers[j].heard ? s->peers[j].st.applied : 0;
		if (a + s->cfg.compact_lag >= mine && a < r)
			r = a;
	}
	if (r <= s->released)
		return;
	while (s->rel_n > 0) {
		struct rel *e = &s->rel[s->rel_head];
		if (e->inst > r)
			break;
		for (uint32_t i = 0; i < e->b.n; i++)
			ingest_forget(s->ing, e->b.r[i].stream, e->b.r[i].last);
		batch_free(&e->b);
		s->rel_head = (s->rel_head + 1) % s->rel_cap;
		s->rel_n--;
	}
	paxos_compact(s->px, r);
	if (pstore_size(s->ps) > PSTORE_LIMIT) {
		int rc = pstore_compact(s->ps, r);
		if (rc != 0)
			mtr_log(LOG_WARN, "server %u: compacting the Paxos log: %s", s->cfg.id, mtr_strerror(rc));
	}
	s->released = r;
}

/* ---- status ---- */

static void send_status(struct server *s)
{
	const struct clusterconf *cc = &s->cfg.cc;
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	struct wire_status st = {.node = s->cfg.id, .role = (uint8_t)ps.role, .leader = ps.leader, .ballot = ps.ballot,
				 .chosen = ps.chosen, .applied = s->applied_net, .compacted = s->released};
	uint8_t dg[WIRE_STATUS_SIZE + WIRE_OVERHEAD];
	size_t n = wire_status_build(dg, cc->cluster_id, s->cfg.id, cc->key.set ? &cc->key : NULL, &st);
	for (uint32_t j = 0; j < cc->nservers; j++)
		if (j != s->cfg.id)
			out_copy(s, dg, n, &cc->servers[j]);
	/* every distinct proxy address (a few proxies, many streams: dedupe) */
	struct transport_addr sent[64];
	unsigned ns = 0;
	for (unsigned i = 0; i < STREAM_CAP; i++) {
		struct stream *x = &s->streams[i];
		if (x->id == 0 || !x->has_proxy)
			continue;
		unsigned k;
		for (k = 0; k < ns; k++)
			if (sent[k].ip == x->proxy.ip && sent[k].port == x->proxy.port)
				break;
		if (k < ns || ns == ARRAY_SIZE(sent))
			continue;
		sent[ns++] = x->proxy;
		out_copy(s, dg, n, &x->proxy);
	}
}

static void on_status(struct server *s, const struct transport_msg *m)
{
	struct wire_status st;
	if (wire_status_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &st) != 0)
		return;
	uint32_t j = m->hdr.sender;
	if (j >= s->cfg.cc.nservers || j == s->cfg.id || st.node != j)
		return;
	s->peers[j].heard = 1;
	s->peers[j].last_ms = s->now_ms;
	s->peers[j].st = st;
}

static void on_paxos(struct server *s, const struct transport_msg *m)
{
	uint32_t from = m->hdr.sender;
	if (from >= s->cfg.cc.nservers || from == s->cfg.id)
		return;
	struct paxos_msg pm;
	if (paxos_msg_decode(&pm, m->buf + WIRE_HDR_SIZE, m->hdr.length) != 0)
		return;
	if (pm.type == PAXOS_WATERMARK)
		for (uint32_t i = 0; i < pm.n_marks; i++) {
			struct stream *st = stream_find(s, pm.marks[i].stream, 1);
			if (st)
				st->peer_wm[from] = pm.marks[i].seq;
		}
	paxos_recv(s->px, from, &pm);
	paxos_msg_free(&pm);
}

static void on_read(struct server *s, const struct transport_msg *m)
{
	struct wire_read r;
	if (wire_read_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &r) != 0)
		return;
	struct read_req *q = calloc(1, sizeof *q);
	if (q == NULL)
		return;
	q->item = malloc(r.item_len);
	if (q->item == NULL) {
		free(q);
		return;
	}
	memcpy(q->item, r.item, r.item_len);
	q->len = r.item_len;
	/* A read is not part of a stream's numbering: accept seq 0 in its
	 * record (wire_item_decode insists on a non-zero seq). */
	if (q->len >= 24 && ld64(q->item + 16) == 0)
		st64(q->item + 16, 1);
	q->from = m->peer;
	q->stream = r.stream;
	q->rid = r.rid;
	q->min_inst = r.min_instance;
	pthread_mutex_lock(&s->rmu);
	if (s->rlen >= READQ_MAX) {
		pthread_mutex_unlock(&s->rmu);
		free(q->item);
		free(q);
		return;
	}
	if (s->rtail)
		s->rtail->next = q;
	else
		s->rhead = q;
	s->rtail = q;
	s->rlen++;
	pthread_cond_signal(&s->rcv);
	pthread_mutex_unlock(&s->rmu);
}

static void dispatch(struct server *s, const struct transport_msg *m)
{
	switch (m->hdr.type) {
	case WIRE_T_ITEMS:
		on_items(s, m);
		break;
	case WIRE_T_FRAGMENT:
		on_fragment(s, m);
		break;
	case WIRE_T_HEARTBEAT:
		on_heartbeat(s, m);
		break;
	case WIRE_T_RESEND:
		on_resend(s, m);
		break;
	case WIRE_T_PAXOS:
		on_paxos(s, m);
		break;
	case WIRE_T_RESULT_REQUEST:
		on_result_request(s, m);
		break;
	case WIRE_T_READ:
		on_read(s, m);
		break;
	case WIRE_T_STATUS:
		on_status(s, m);
		break;
	default:
		break;
	}
}

/* ---- publishing (clustervt, server_info) ---- */

static void publish(struct server *s)
{
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	if (ps.role == PAXOS_LEADER && (s->last_role != PAXOS_LEADER || ps.ballot != s->last_ballot_logged)) {
		mtr_log(LOG_INFO, "became leader (ballot %llu)", (unsigned long long)ps.ballot);
		s->last_ballot_logged = ps.ballot;
	}
	if (s->last_role != (int)ps.role)
		s->next_status_ms = 0; /* tell peers and proxies at once */
	s->last_role = (int)ps.role;
	pthread_mutex_lock(&s->imu);
	s->pst = ps;
	s->info.role = (int)ps.role;
	s->info.ballot = ps.ballot;
	s->info.chosen = ps.chosen;
	s->info.applied = s->applied_net;
	s->info.released = s->released;
	s->info.items_applied = s->items_applied;
	memcpy(s->pub_peers, s->peers, sizeof s->peers);
	if (s->now_ms < s->next_publish_ms) {
		pthread_mutex_unlock(&s->imu);
		return;
	}
	/* the stream table: at most every 20 ms (a scan of every slot) */
	s->next_publish_ms = s->now_ms + 20;
	unsigned n = 0;
	for (unsigned i = 0; i < STREAM_CAP && n < PAXOS_MAX_MARKS; i++) {
		struct stream *st = &s->streams[i];
		if (st->id == 0)
			continue;
		s->pub_marks[n].stream = st->id;
		s->pub_marks[n].seq = ingest_watermark(s->ing, st->id);
		n++;
	}
	s->pub_nmarks = n;
	pthread_mutex_unlock(&s->imu);
}

static const char *role_name(int r)
{
	return r == PAXOS_LEADER ? "leader" : r == PAXOS_CANDIDATE ? "candidate" : "follower";
}

static int vt_fill(void *arg, enum clustervt_table t, struct clustervt_sink *sink)
{
	struct server *s = arg;
	int rc = 0;
	uint64_t now = now_mono_ns() / 1000000u;
	pthread_mutex_lock(&s->imu);
	if (t == CLUSTERVT_MEMBERS) {
		for (uint32_t j = 0; j < s->cfg.cc.nservers && rc == 0; j++) {
			char addr[32];
			transport_addr_format(&s->cfg.cc.servers[j], addr, sizeof addr);
			const char *role;
			int64_t alive, chosen, applied;
			if (j == s->cfg.id) {
				role = role_name(s->pst.role);
				alive = 1;
				chosen = (int64_t)s->pst.chosen;
				applied = (int64_t)s->info.applied;
			} else {
				const struct peer *p = &s->pub_peers[j];
				role = p->heard ? role_name(p->st.role) : "unknown";
				/* who leads, this server knows better than a peer's
				 * last STATUS (sent before an election, say) */
				if (s->pst.leader == j)
					role = "leader";
				else if (p->heard && p->st.role == PAXOS_LEADER && s->pst.leader < s->cfg.cc.nservers)
					role = "follower";
				alive = p->heard && now - p->last_ms <= 3ull * s->cfg.status_period_ms;
				chosen = (int64_t)p->st.chosen;
				applied = (int64_t)p->st.applied;
			}
			struct wire_value v[6] = {
				{.type = WIRE_V_INT, .u.i = j},
				{.type = WIRE_V_TEXT, .u.b = {addr, (uint32_t)strlen(addr)}},
				{.type = WIRE_V_TEXT, .u.b = {role, (uint32_t)strlen(role)}},
				{.type = WIRE_V_INT, .u.i = alive},
				{.type = WIRE_V_INT, .u.i = chosen},
				{.type = WIRE_V_INT, .u.i = applied},
			};
			rc = clustervt_sink_row(sink, v, 6);
		}
	} else if (t == CLUSTERVT_STREAMS) {
		for (unsigned i = 0; i < s->pub_nmarks && rc == 0; i++) {
			struct wire_value v[3] = {
				{.type = WIRE_V_INT, .u.i = s->cfg.id},
				{.type = WIRE_V_INT, .u.i = (int64_t)s->pub_marks[i].stream},
				{.type = WIRE_V_INT, .u.i = (int64_t)s->pub_marks[i].seq},
			};
			rc = clustervt_sink_row(sink, v, 3);
		}
	} else if (t == CLUSTERVT_INSTANCES) {
		unsigned n = s->nrecent < RECENT_INSTANCES ? s->nrecent : RECENT_INSTANCES;
		for (unsigned k = 0; k < n && rc == 0; k++) {
			const struct recent *r = &s->recent[(s->nrecent - n + k) % RECENT_INSTANCES];
			struct wire_value v[4] = {
				{.type = WIRE_V_INT, .u.i = (int64_t)r->inst},
				{.type = WIRE_V_TEXT, .u.b = {r->text, (uint32_t)strlen(r->text)}},
				{.type = WIRE_V_INT, .u.i = (int64_t)r->items},
				{.type = WIRE_V_INT, .u.i = (int64_t)r->apply_us},
			};
			rc = clustervt_sink_row(sink, v, 4);
		}
	}
	pthread_mutex_unlock(&s->imu);
	return rc;
}

void server_info(struct server *s, struct server_info *info)
{
	pthread_mutex_lock(&s->imu);
	*info = s->info;
	pthread_mutex_unlock(&s->imu);
}

int server_digest(struct server *s, uint64_t *instance, char hex[33])
{
	struct digest d;
	int rc = apply_digest(s->ap, instance, &d);
	if (rc == 0)
		digest_hex(&d, hex);
	return rc;
}

/* ---- apply thread ---- */

struct apply_ctx {
	struct server *s;
	struct done *d;
	int err;
};

static void apply_cb(void *arg, size_t index, const struct wire_item *item, const struct apply_result *res)
{
	(void)index;
	struct apply_ctx *c = arg;
	if (c->err == 0)
		c->err = done_add(c->d, item->stream, item->seq, item->request, res);
}

static void note_recent(struct server *s, const struct aq_entry *e, size_t nitems, uint64_t us)
{
	pthread_mutex_lock(&s->imu);
	struct recent *r = &s->recent[s->nrecent % RECENT_INSTANCES];
	r->inst = e->inst;
	r->ranges = e->b.n;
	r->items = nitems;
	r->apply_us = us;
	size_t o = 0;
	r->text[0] = '\0';
	for (uint32_t i = 0; i < e->b.n && o + 48 < sizeof r->text; i++)
		o += (size_t)snprintf(r->text + o, sizeof r->text - o, "%s%016llx:%llu-%llu", i ? "," : "",
				      (unsigned long long)e->b.r[i].stream, (unsigned long long)e->b.r[i].first,
				      (unsigned long long)e->b.r[i].last);
	s->nrecent++;
	pthread_mutex_unlock(&s->imu);
}

static void *apply_main(void *arg)
{
	struct server *s = arg;
	struct wire_item *items = NULL;
	size_t icap = 0;
	for (;;) {
		pthread_mutex_lock(&s->qmu);
		while (!s->qstop && !(s->qhead && s->qhead->ready))
			pthread_cond_wait(&s->qcv, &s->qmu);
		if (s->qstop) {
			pthread_mutex_unlock(&s->qmu);
			break;
		}
		struct aq_entry *e = s->qhead;
		pthread_mutex_unlock(&s->qmu);

		size_t n = 0;
		for (size_t off = 0; off < e->len;) {
			if (n == icap) {
				size_t nc = icap ? icap * 2 : 1024;
				struct wire_item *p = realloc(items, nc * sizeof *p);
				if (p == NULL)
					goto fatal;
				items = p;
				icap = nc;
			}
			long w = wire_item_decode(e->buf + off, e->len - off, &items[n]);
			if (w <= 0) {
				mtr_log(LOG_ERROR, "server %u: instance %llu holds a malformed item", s->cfg.id,
					(unsigned long long)e->inst);
				goto fatal;
			}
			off += (size_t)w;
			n++;
		}
		struct done *d = calloc(1, sizeof *d);
		if (d == NULL)
			goto fatal;
		d->inst = e->inst;
		struct apply_ctx c = {.s = s, .d = d};
		uint64_t t0 = now_mono_ns();
		int rc = apply_instance(s->ap, e->inst, items, n, apply_cb, &c);
		uint64_t us = (now_mono_ns() - t0) / 1000u;
		if (rc == MTR_EDUPLICATE) {
			done_free(d);
		} else if (rc != 0) {
			mtr_log(LOG_ERROR, "server %u: applying instance %llu failed: %s", s->cfg.id,
				(unsigned long long)e->inst, mtr_strerror(rc));
			done_free(d);
			goto fatal;
		} else {
			if (c.err != 0)
				mtr_log(LOG_WARN, "server %u: results of instance %llu not kept: %s", s->cfg.id,
					(unsigned long long)e->inst, mtr_strerror(c.err));
			note_recent(s, e, n, us);
			outbox_post(s, d);
		}
		pthread_mutex_lock(&s->qmu);
		s->qhead = e->next;
		if (s->qhead == NULL)
			s->qtail = NULL;
		s->qlen--;
		pthread_mutex_unlock(&s->qmu);
		batch_free(&e->b);
		free(e->buf);
		free(e);
	}
	free(items);
	return NULL;
fatal:
	free(items);
	atomic_store(&s->fatal, 1);
	server_stop(s);
	return NULL;
}

/* ---- reader thread ---- */

struct read_ctx {
	struct done *d;
	int err;
};

static void read_cb(void *arg, size_t index, const struct wire_item *item, const struct apply_result *res)
{
	(void)index;
	struct read_ctx *c = arg;
	if (c->err == 0)
		c->err = done_add(c->d, item->stream, 0, item->request, res);
}

static void *reader_main(void *arg)
{
	struct server *s = arg;
	struct apply_reader *db = NULL;
	if (apply_reader_open(s->ap, &db) != 0)
		mtr_log(LOG_ERROR, "server %u: no reader connection: READ requests will fail", s->cfg.id);
	for (;;) {
		pthread_mutex_lock(&s->rmu);
		while (!s->rstop && s->rhead == NULL)
			pthread_cond_wait(&s->rcv, &s->rmu);
		if (s->rstop) {
			pthread_mutex_unlock(&s->rmu);
			break;
		}
		struct read_req *q = s->rhead;
		s->rhead = q->next;
		if (s->rhead == NULL)
			s->rtail = NULL;
		s->rlen--;
		pthread_mutex_unlock(&s->rmu);

		struct done *d = calloc(1, sizeof *d);
		if (d != NULL) {
			d->to = q->from;
			d->stream = q->stream;
			d->rid = q->rid;
			int rc = apply_wait(s->ap, q->min_inst, READ_WAIT_MS);
			struct wire_item it;
			char msg[160];
			if (rc == 0 && db == NULL) {
				rc = MTR_EIO;
			}
			if (rc == 0 && wire_item_decode(q->item, q->len, &it) != (long)q->len)
				rc = MTR_EMALFORMED;
			if (rc == 0) {
				struct read_ctx c = {.d = d};
				uint64_t seen = 0;
				rc = apply_read(db, &it, &seen, read_cb, &c);
				d->seen = seen;
				if (rc == 0 && c.err != 0)
					rc = c.err;
			}
			if (rc != 0 && d->n == 0) {
				if (rc == MTR_ETIMEDOUT)
					snprintf(msg, sizeof msg,
						 "this replica has not reached instance %llu within %d ms; retry",
						 (unsigned long long)q->min_inst, READ_WAIT_MS);
				else
					snprintf(msg, sizeof msg, "the read could not run: %s", mtr_strerror(rc));
				d->seen = apply_applied(s->ap);
				long w = 0;
				if (done_reserve(d, 512) == 0)
					w = result_encode_error(rc == MTR_ETIMEDOUT ? SQLITE_BUSY : SQLITE_ERROR, msg,
								d->bytes, d->bcap);
				if (w > 0) {
					d->it[0] = (struct res_item){.stream = q->stream, .request = q->rid, .off = 0,
								     .len = (uint32_t)w};
					d->n = 1;
					d->blen = (size_t)w;
				}
			}
			outbox_post(s, d);
		}
		free(q->item);
		free(q);
	}
	apply_reader_close(db);
	return NULL;
}

/* ---- open / run / close ---- */

static int mkdir_p(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int cursor_add(void *arg, uint64_t stream, uint64_t last)
{
	return batch_order_set(arg, stream, last);
}

int server_open(const struct server_config *cfg, struct server **out)
{
	*out = NULL;
	const struct clusterconf *cc = &cfg->cc;
	if (cfg->id >= cc->nservers || cc->nservers > PAXOS_MAX_NODES)
		return MTR_ECONFIG;
	struct server *s = calloc(1, sizeof *s);
	if (s == NULL)
		return MTR_ENOMEM;
	s->cfg = *cfg;
	s->efd = -1;
	s->lockfd = -1;
	s->snap_lfd = -1;
	s->last_role = -1;
	pthread_mutex_init(&s->qmu, NULL);
	pthread_cond_init(&s->qcv, NULL);
	pthread_mutex_init(&s->omu, NULL);
	pthread_mutex_init(&s->rmu, NULL);
	pthread_cond_init(&s->rcv, NULL);
	pthread_mutex_init(&s->imu, NULL);
	s->info.id = cfg->id;
	s->ccap = cfg->result_cache;
	s->streams = calloc(STREAM_CAP, sizeof *s->streams);
	s->obuf = malloc((size_t)OUT_SLOTS * WIRE_MAX_DGRAM);
	s->marks = calloc(PAXOS_MAX_MARKS, sizeof *s->marks);
	s->pub_marks = calloc(PAXOS_MAX_MARKS, sizeof *s->pub_marks);
	s->cache = calloc(s->ccap ? s->ccap : 1, sizeof *s->cache);
	s->ra = reasm_new(INGEST_DEFAULT_MAX_ITEM, 256u << 20, 4096);
	int rc = MTR_ENOMEM;
	if (!s->streams || !s->obuf || !s->marks || !s->pub_marks || !s->cache || !s->ra)
		goto fail;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		rc = MTR_EIO;
		goto fail;
	}

	/* transport */
	struct transport_config tc;
	transport_config_init(&tc);
	clusterconf_transport(cc, &tc);
	tc.bind = cc->servers[cfg->id];
	tc.mtu = strcmp(cc->kind, "udp") == 0 ? WIRE_MAX_DGRAM : cc->mtu;
	rc = transport_open(&tc, &s->t);
	if (rc != 0) {
		char a[32];
		mtr_log(LOG_ERROR, "server %u: cannot listen on %s: %s", cfg->id,
			transport_addr_format(&tc.bind, a, sizeof a), mtr_strerror(rc));
		goto fail;
	}
	if (cc->has_group) {
		struct transport_config tg = tc;
		tg.bind.ip = 0;
		tg.bind.port = 0; /* receive on the group itself */
		tg.ndests = 0;
		rc = transport_open(&tg, &s->tg);
		if (rc != 0) {
			mtr_log(LOG_ERROR, "server %u: cannot join the group: %s", cfg->id, mtr_strerror(rc));
			goto fail;
		}
	}
	/* data directory, locked against a second server on it */
	char path[4200];
	if (mkdir_p(cfg->data_dir) != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot create data.dir %s: %s", cfg->id, cfg->data_dir, strerror(errno));
		rc = MTR_EIO;
		goto fail;
	}
	snprintf(path, sizeof path, "%s/lock", cfg->data_dir);
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		mtr_log(LOG_ERROR, "server %u: data.dir %s is unusable or in use by another server (%s)", cfg->id,
			cfg->data_dir, strerror(errno));
		rc = MTR_EIO;
		goto fail;
	}
	snprintf(path, sizeof path, "%s/items", cfg->data_dir);
	if (!cfg->durability_memory && mkdir_p(path) != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot create %s: %s", cfg->id, path, strerror(errno));
		rc = MTR_EIO;
		goto fail;
	}
	struct ingest_opts io = {.durability = cfg->durability_memory ? INGEST_MEMORY : INGEST_DISK, .dir = path};
	rc = ingest_open(&io, &s->ing);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot open the item store %s: %s", cfg->id, path, mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}
	rc = pstore_open(cfg->data_dir, &s->ps);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot open the Paxos log under %s: %s", cfg->id, cfg->data_dir,
			mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}
	pstore_set_sync(s->ps, !cfg->durability_memory);
	s->prov.arg = s;
	s->prov.fill = vt_fill;
	struct apply_config ac = {.dir = cfg->data_dir,
				  .durability = cfg->apply_sync_full ? APPLY_SYNC_FULL : APPLY_SYNC_NORMAL,
				  .provider = &s->prov};
	rc = apply_open(&ac, &s->ap);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot open the replica database under %s: %s", cfg->id, cfg->data_dir,
			mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}

	/* Paxos: install the applied state, then the persisted acceptor state */
	uint64_t seed = now_mono_ns() ^ ((uint64_t)getpid() << 32) ^ cfg->id;
	struct paxos_config pc = {.id = cfg->id, .n = cc->nservers, .heartbeat_ms = cfg->heartbeat_ms,
				  .election_ms = cfg->election_ms, .seed = seed};
	struct paxos_io pio = {.data = s, .send = px_send, .persist = px_persist, .holds = px_holds,
			       .fetch = px_fetch, .chosen = px_chosen, .snapshot_needed = px_snapshot_needed};
	rc = paxos_create(&s->px, &pc, &pio);
	if (rc != 0)
		goto fail;
	uint64_t applied = apply_applied(s->ap);
	struct batch_order cur = {0};
	rc = apply_cursor(s->ap, cursor_add, &cur);
	if (rc == 0)
		rc = paxos_install(s->px, applied, &cur);
	if (rc == 0)
		rc = pstore_replay(s->ps, s->px);
	if (rc != 0) {
		batch_order_free(&cur);
		mtr_log(LOG_ERROR, "server %u: cannot restore the Paxos state: %s", cfg->id, mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}
	/* items up to the cursor are applied here: release them like an instance */
	s->rel_cap = 256;
	s->rel = calloc(s->rel_cap, sizeof *s->rel);
	if (s->rel == NULL) {
		batch_order_free(&cur);
		rc = MTR_ENOMEM;
		goto fail;
	}
	if (applied > 0 && cur.n > 0) {
		struct rel r = {.inst = applied};
		for (uint32_t i = 0; i < cur.n; i++)
			if (cur.v[i].seq > 0)
				batch_push(&r.b, cur.v[i].stream, 1, cur.v[i].seq);
		s->rel[0] = r;
		s->rel_n = 1;
	}
	for (uint32_t i = 0; i < cur.n; i++)
		stream_find(s, cur.v[i].stream, 1);
	batch_order_free(&cur);
	s->applied_net = applied;
	s->info.applied = applied;
	mtr_log(LOG_INFO, "recovered: applied instance %llu", (unsigned long long)applied);

	snap_listen(s);
	char a[32];
	s->info.port = s->t->cfg.bind.port;
	mtr_log(LOG_INFO, "listening on %s as server %u of %u", transport_addr_format(&s->t->cfg.bind, a, sizeof a),
		cfg->id, cc->nservers);
	*out = s;
	return 0;
fail:
	server_close(s);
	return rc;
}

void server_stop(struct server *s)
{
	atomic_store(&s->stop, 1);
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof one);
	(void)w;
}

static void stop_threads(struct server *s)
{
	pthread_mutex_lock(&s->qmu);
	s->qstop = 1;
	pthread_cond_broadcast(&s->qcv);
	pthread_mutex_unlock(&s->qmu);
	pthread_mutex_lock(&s->rmu);
	s->rstop = 1;
	pthread_cond_broadcast(&s->rcv);
	pthread_mutex_unlock(&s->rmu);
	if (s->apply_started)
		pthread_join(s->apply_th, NULL);
	for (int i = 0; i < s->reader_started; i++)
		pthread_join(s->reader_th[i], NULL);
	s->apply_started = s->reader_started = 0;
}

/* Stop the snapshot threads too (server_run's end, server_close). */
static void stop_all(struct server *s)
{
	stop_threads(s);
	atomic_store(&s->snap_srv_stop, 1);
	if (s->snap_srv_started)
		pthread_join(s->snap_srv_th, NULL);
	s->snap_srv_started = 0;
	if (atomic_load(&s->snap_state) != SNAP_IDLE) {
		pthread_join(s->snap_fetch_th, NULL);
		atomic_store(&s->snap_state, SNAP_IDLE);
	}
}

/* Receive and handle what is waiting on t (a bounded number of batches). */
static void recv_all(struct server *s, struct transport *t)
{
	struct transport_msg m[RECV_BATCH];
	for (int r = 0; r < RECV_ROUNDS; r++) {
		int n = transport_recv(t, m, RECV_BATCH);
		if (n <= 0) {
			if (n < 0)
				mtr_log(LOG_WARN, "server %u: receive: %s", s->cfg.id, mtr_strerror(n));
			return;
		}
		for (int i = 0; i < n; i++)
			dispatch(s, &m[i]);
	}
}

/* Start the apply and reader threads with every signal blocked (signals
 * are the caller's thread's business: metronomed's handler calls
 * server_stop). */
static int start_threads(struct server *s)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&s->apply_th, NULL, apply_main, s) == 0)
		s->apply_started = 1;
	while (s->apply_started && s->reader_started < READERS &&
	       pthread_create(&s->reader_th[s->reader_started], NULL, reader_main, s) == 0)
		s->reader_started++;
	if (s->snap_lfd >= 0 && !s->snap_srv_started && pthread_create(&s->snap_srv_th, NULL, snap_server_main, s) == 0)
		s->snap_srv_started = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!s->reader_started) {
		stop_threads(s);
		return MTR_ENOMEM;
	}
	return 0;
}

int server_run(struct server *s)
{
	int rc = start_threads(s);
	if (rc != 0)
		return rc;
	int tfd = transport_fd(s->t), gfd = s->tg ? transport_fd(s->tg) : -1;
	s->now_ms = now_mono_ns() / 1000000u;
	s->epoch_ms = s->now_ms;
	s->next_status_ms = s->now_ms;
	while (!atomic_load(&s->stop) && !atomic_load(&s->fatal)) {
		if (tfd >= 0) {
			struct pollfd pf[3] = {{.fd = s->efd, .events = POLLIN}, {.fd = tfd, .events = POLLIN},
					       {.fd = gfd, .events = POLLIN}};
			int np = poll(pf, gfd >= 0 ? 3 : 2, s->eager_pending ? 1 : LOOP_MS);
			if (np < 0 && errno != EINTR) {
				mtr_log(LOG_ERROR, "server %u: poll: %s", s->cfg.id, strerror(errno));
				atomic_store(&s->fatal, 1);
				break;
			}
		} else {
			transport_wait(s->t, 1);
		}
		uint64_t junk;
		while (read(s->efd, &junk, sizeof junk) > 0)
			;
		s->now_ms = now_mono_ns() / 1000000u;
		recv_all(s, s->t);
		if (s->tg)
			recv_all(s, s->tg);
		if (s->added) {
			rc = ingest_sync(s->ing);
			if (rc != 0) {
				mtr_log(LOG_ERROR, "server %u: ingest sync: %s", s->cfg.id, mtr_strerror(rc));
				atomic_store(&s->fatal, 1);
				break;
			}
			s->added = 0;
			s->marks_dirty = 1;
		}
		pthread_mutex_lock(&s->qmu);
		unsigned qlen = s->qlen;
		pthread_mutex_unlock(&s->qmu);
		int bp = qlen > AQ_HIGH;
		if (bp != s->backpressure) {
			s->backpressure = bp;
			if (!bp)
				s->marks_dirty = 1;
		}
		if (s->marks_dirty) {
			paxos_items_changed(s->px);
			push_watermarks(s);
			s->marks_dirty = 0;
		} else {
			eager_report(s);
		}
		int st = atomic_load(&s->snap_state);
		if (st == SNAP_READY || st == SNAP_FAILED) {
			pthread_join(s->snap_fetch_th, NULL);
			atomic_store(&s->snap_state, SNAP_IDLE);
			s->snap_retry_ms = s->now_ms + 1000;
			if (st == SNAP_READY && snap_install(s) != 0) {
				atomic_store(&s->fatal, 1);
				break;
			}
		}
		resolve_queue(s);
		request_gaps(s);
		paxos_tick(s->px, s->now_ms - s->epoch_ms);
		drain_outbox(s);
		release(s);
		publish(s);
		if (s->now_ms >= s->next_status_ms) {
			send_status(s);
			s->next_status_ms = s->now_ms + s->cfg.status_period_ms;
		}
		out_flush(s);
		reasm_expire(s->ra, now_mono_ns(), 10000000000ull);
	}
	out_flush(s);
	stop_all(s);
	drain_outbox(s);
	out_flush(s);
	if (atomic_load(&s->fatal))
		return MTR_EIO;
	return 0;
}

void server_close(struct server *s)
{
	if (s == NULL)
		return;
	stop_all(s);
	if (s->snap_lfd >= 0)
		close(s->snap_lfd);
	if (s->ing)
		ingest_sync(s->ing);
	if (s->ps)
		pstore_sync(s->ps);
	transport_close(s->tg);
	transport_close(s->t);
	paxos_destroy(s->px);
	apply_close(s->ap);
	pstore_close(s->ps);
	ingest_close(s->ing);
	reasm_free(s->ra);
	while (s->qhead) {
		struct aq_entry *e = s->qhead;
		s->qhead = e->next;
		batch_free(&e->b);
		free(e->buf);
		free(e);
	}
	while (s->ohead) {
		struct done *d = s->ohead;
		s->ohead = d->next;
		done_free(d);
	}
	while (s->rhead) {
		struct read_req *q = s->rhead;
		s->rhead = q->next;
		free(q->item);
		free(q);
	}
	for (unsigned k = 0; k < s->cn; k++)
		done_free(s->cache[(s->chead + k) % s->ccap]);
	for (size_t i = 0; i < s->rel_n; i++)
		batch_free(&s->rel[(s->rel_head + i) % s->rel_cap].b);
	free(s->rel);
	free(s->cache);
	free(s->streams);
	free(s->obuf);
	free(s->marks);
	free(s->pub_marks);
	if (s->efd >= 0)
		close(s->efd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	pthread_mutex_destroy(&s->qmu);
	pthread_cond_destroy(&s->qcv);
	pthread_mutex_destroy(&s->omu);
	pthread_mutex_destroy(&s->rmu);
	pthread_cond_destroy(&s->rcv);
	pthread_mutex_destroy(&s->imu);
	free(s);
}
