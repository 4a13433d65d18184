/*
 * server_net.c - the network thread's datagrams (server_int.h): the
 * outgoing datagram buffer, the stream table (where each stream's proxy
 * sends from), the ingest side (ITEMS, FRAGMENT, HEARTBEAT; gap repair with
 * RESEND to the proxy, then peers; serving a peer's RESEND), the watermarks
 * told to the Paxos core and eagerly to the leader, the Paxos I/O vtable
 * (send, persist, holds, fetch), STATUS, and the dispatch of every datagram
 * type received (READ goes to the reader queue, RESULT_REQUEST to the
 * result cache and, for what it misses, to the reader queue too).
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "paxos_codec.h"
#include "pstore.h"
#include "reasm.h"
#include "server_int.h"
#include "transport.h"
#include "util.h"
#include "wire.h"
#include "wire_server.h"

/* ---- outgoing datagrams ---- */

void srvnet_out_flush(struct server *s)
{
	if (s->nout == 0)
		return;
	int rc = transport_send_to(s->t, s->out, s->nout);
	if (rc < 0)
		mtr_log(LOG_WARN, "server %u: send of %u datagrams: %s", s->cfg.id, s->nout, mtr_strerror(rc));
	s->nout = 0;
}

/* The buffer of the next outgoing datagram (WIRE_MAX_DGRAM bytes). */
uint8_t *srvnet_out_buf(struct server *s)
{
	if (s->nout == OUT_SLOTS)
		srvnet_out_flush(s);
	return s->obuf + (size_t)s->nout * WIRE_MAX_DGRAM;
}

/* Queue the datagram built in srvnet_out_buf() for `to`. */
void srvnet_out_push(struct server *s, size_t len, const struct transport_addr *to)
{
	struct transport_msg *m = &s->out[s->nout++];
	m->buf = s->obuf + (size_t)(m - s->out) * WIRE_MAX_DGRAM;
	m->len = (uint32_t)len;
	m->peer = *to;
}

/* Queue a copy of buf[0..len) for `to`. */
static void out_copy(struct server *s, const uint8_t *buf, size_t len, const struct transport_addr *to)
{
	uint8_t *b = srvnet_out_buf(s);
	memcpy(b, buf, len);
	srvnet_out_push(s, len, to);
}

/* ---- drops and senders ---- */

static const char *const drop_text[] = {
#define SERVER__DROP_TEXT(name, text) text,
	SERVER_DROP_MAP(SERVER__DROP_TEXT)
#undef SERVER__DROP_TEXT
};
static const char *const drop_name[] = {
#define SERVER__DROP_NAME(name, text) #name,
	SERVER_DROP_MAP(SERVER__DROP_NAME)
#undef SERVER__DROP_NAME
};

void srvnet_drop(struct server *s, enum server_drop why, const struct transport_msg *m)
{
	s->drops[why]++;
	uint64_t now = now_mono_ns() / 1000000u;
	if (now < s->drop_warn_ms[why])
		return;
	s->drop_warn_ms[why] = now + DROP_WARN_MS;
	char a[32] = "?";
	if (m)
		transport_addr_format(&m->peer, a, sizeof a);
	mtr_log(LOG_WARN,
		"server %u: dropped %s from %s (sender id %u): %s (counted in server.drop.%s; the next ones of this "
		"minute only counted)",
		s->cfg.id, m ? wire_type_name(m->hdr.type) : "a datagram", a, m ? m->hdr.sender : 0, drop_text[why],
		drop_name[why]);
}

bool srvnet_from_peer(const struct server *s, const struct transport_msg *m)
{
	const struct transport_addr *a = srvnet_peer_addr(s, m->hdr.sender);
	return a != NULL && a->ip == m->peer.ip && a->port == m->peer.port;
}

/* ---- the peer table ---- */

static uint64_t id_bit(uint32_t id)
{
	return id < PAXOS_MAX_ID ? UINT64_C(1) << id : 0;
}

const struct transport_addr *srvnet_peer_addr(const struct server *s, uint32_t id)
{
	if (id == s->cfg.id || !(s->pt.members & id_bit(id)))
		return NULL;
	return &s->pt.addr[id];
}

bool srvnet_is_server(const struct server *s, uint32_t id)
{
	return (s->pt.servers & id_bit(id)) != 0;
}

/* Add the members of c to the table: the address a member carries, else
 * its cluster.servers entry; a member with neither is left out (logged). */
static void peers_add(struct server *s, const struct batch_conf *c)
{
	const struct clusterconf *cc = &s->cfg.cc;
	struct peer_table *pt = &s->pt;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct batch_member *bm = &c->m[i];
		uint32_t j = bm->id;
		pt->servers |= id_bit(j);
		if (pt->members & id_bit(j))
			continue;
		struct transport_addr a;
		if (bm->addr[0] && transport_addr_parse(bm->addr, 0, &a) == 0 && a.port != 0) {
			pt->addr[j] = a;
		} else if (j < cc->nservers) {
			pt->addr[j] = cc->servers[j];
		} else {
			mtr_log(LOG_WARN,
				"server %u: member %u of the configuration has no usable address (\"%s\"): nothing is "
				"sent to it or taken from it",
				s->cfg.id, j, bm->addr);
			continue;
		}
		pt->members |= id_bit(j);
	}
}

void srvnet_peers_refresh(struct server *s, int force)
{
	struct peer_table *pt = &s->pt;
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	if (!force && pt->valid && ps.members == pt->seen_members && ps.voters == pt->seen_voters &&
	    ps.removed == pt->seen_removed && ps.conf_next == pt->seen_next)
		return;
	struct peer_table old = *pt;
	struct batch_conf now, latest;
	paxos_conf_at(s->px, ps.applied + 1, &now);
	paxos_conf_at(s->px, UINT64_MAX, &latest);
	uint32_t n = s->cfg.cc.nservers;
	pt->servers = (n >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1) | ps.removed;
	pt->members = 0;
	peers_add(s, &now);
	peers_add(s, &latest);
	pt->members &= ~ps.removed;
	pt->voters = ps.voters;
	pt->in_force = ps.members;
	pt->valid = 1;
	pt->seen_members = ps.members;
	pt->seen_voters = ps.voters;
	pt->seen_removed = ps.removed;
	pt->seen_next = ps.conf_next;
	s->ids_used |= pt->servers;
	/* for the other threads (snapshot server, cluster tables, health) at
	 * once: a peer's snapshot request may come before the first publish */
	pthread_mutex_lock(&s->imu);
	s->pub_pt = *pt;
	pthread_mutex_unlock(&s->imu);
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++) {
		uint64_t b = id_bit(j);
		if ((pt->members & b) == (old.members & b) &&
		    (!(b & pt->members) || (pt->addr[j].ip == old.addr[j].ip && pt->addr[j].port == old.addr[j].port)))
			continue;
		/* a new peer starts unheard; a gone one is forgotten */
		s->peers[j] = (struct peer){0};
		s->hl.peer[j] = -1;
		if (!old.valid)
			continue;
		char a[32] = "";
		if (pt->members & b)
			transport_addr_format(&pt->addr[j], a, sizeof a);
		mtr_log(LOG_INFO, "server %u: peer table: server %u %s%s%s", s->cfg.id, j,
			(pt->members & b) ? "at " : "", a, (pt->members & b) ? "" : "left (not a member any more)");
	}
}

/* ---- streams ---- */

static unsigned stream_home(uint64_t id)
{
	return (unsigned)((id * 0x9E3779B97F4A7C15ull) >> 40) & (STREAM_CAP - 1);
}

/* Empty slot i and close the gap it leaves in its probe chain (backward
 * shift: a later entry whose home is not cyclically in (i, j] moves back). */
static void stream_remove(struct server *s, unsigned i)
{
	for (unsigned j = i;;) {
		j = (j + 1) & (STREAM_CAP - 1);
		if (s->streams[j].id == 0)
			break;
		unsigned h = stream_home(s->streams[j].id);
		int stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (!stays) {
			s->streams[i] = s->streams[j];
			i = j;
		}
	}
	memset(&s->streams[i], 0, sizeof s->streams[i]);
	s->nstreams--;
}

/* Evict every stream dead for cfg.stream_idle_ms (no ITEMS, FRAGMENT,
 * HEARTBEAT or RESULT_REQUEST of it); the ingest store forgets those that
 * never held an item (a flood of made-up streams leaves no gaps to repair).
 * Returns how many. */
static unsigned stream_sweep(struct server *s)
{
	uint64_t *gone = malloc(STREAM_CAP * sizeof *gone);
	unsigned n = 0;
	for (unsigned i = 0; i < STREAM_CAP;) {
		struct stream *st = &s->streams[i];
		if (st->id != 0 && s->now_ms - st->last_ms > s->cfg.stream_idle_ms) {
			mtr_log(LOG_DEBUG, "server %u: stream %016llx dead for %llu ms: evicted", s->cfg.id,
				(unsigned long long)st->id, (unsigned long long)(s->now_ms - st->last_ms));
			if (gone)
				gone[n] = st->id;
			stream_remove(s, i);
			n++;
			continue; /* slot i may hold a shifted entry now */
		}
		i++;
	}
	if (gone) {
		ingest_forget_empty(s->ing, gone, n);
		free(gone);
	}
	return n;
}

/* A full table evicts its dead streams, at most once a STREAM_SWEEP_MS.
 * Returns how many. */
static unsigned stream_make_room(struct server *s)
{
	if (s->nstreams < STREAM_CAP / 2 || s->now_ms < s->next_sweep_ms)
		return 0;
	s->next_sweep_ms = s->now_ms + STREAM_SWEEP_MS;
	unsigned n = stream_sweep(s);
	if (n > 0)
		mtr_log(LOG_INFO, "server %u: stream table full: evicted %u streams dead for %llu ms or more", s->cfg.id,
			n, (unsigned long long)s->cfg.stream_idle_ms);
	return n;
}

struct stream *srvnet_stream_find(struct server *s, uint64_t id, int create)
{
	if (id == 0)
		return NULL;
	for (int again = 0; again < 2; again++) {
		unsigned h = stream_home(id);
		for (unsigned k = 0; k < STREAM_CAP; k++) {
			struct stream *st = &s->streams[(h + k) & (STREAM_CAP - 1)];
			if (st->id == id)
				return st;
			if (st->id != 0)
				continue;
			if (!create)
				return NULL;
			if (s->nstreams < STREAM_CAP / 2) {
				memset(st, 0, sizeof *st);
				st->id = id;
				st->last_ms = s->now_ms;
				s->nstreams++;
				return st;
			}
			break;
		}
		/* full: evict dead streams, then look again */
		if (again || stream_make_room(s) == 0)
			break;
	}
	if (create && s->now_ms >= s->full_warn_ms) {
		s->full_warn_ms = s->now_ms + DROP_WARN_MS;
		mtr_log(LOG_WARN,
			"server %u: stream table full (%u streams, none silent for server.stream_idle = %llu ms): new "
			"streams are refused until some go silent (counted in server.drop.stream_table)",
			s->cfg.id, s->nstreams, (unsigned long long)s->cfg.stream_idle_ms);
	}
	return NULL;
}

void srvnet_stream_tick(struct server *s)
{
	stream_make_room(s);
}

/* Remember where a stream's proxy sends from (results and RESENDs go
 * there) and that the stream is alive.  Only datagrams from non-servers
 * name a proxy.  false: the stream table has no room for the stream
 * (counted). */
static bool stream_note_proxy(struct server *s, uint64_t id, const struct transport_msg *m)
{
	if (srvnet_is_server(s, m->hdr.sender))
		return true;
	struct stream *st = srvnet_stream_find(s, id, 1);
	if (st == NULL) {
		srvnet_drop(s, SERVER_DROP_stream_table, m);
		return false;
	}
	if (!st->has_proxy || st->proxy.ip != m->peer.ip || st->proxy.port != m->peer.port) {
		char a[32];
		mtr_log(LOG_DEBUG, "server %u: stream %016llx from proxy %s", s->cfg.id, (unsigned long long)id,
			transport_addr_format(&m->peer, a, sizeof a));
	}
	st->proxy = m->peer;
	st->has_proxy = 1;
	st->last_ms = s->now_ms;
	return true;
}

/* Items (ITEMS, FRAGMENT) come from proxies (ids that are not servers') or,
 * for repair, from a peer server at its own address. */
static bool items_sender_ok(struct server *s, const struct transport_msg *m)
{
	if (!srvnet_is_server(s, m->hdr.sender) || srvnet_from_peer(s, m))
		return true;
	srvnet_drop(s, SERVER_DROP_items_sender, m);
	return false;
}

/* ---- ingest side ---- */

static void item_add(struct server *s, uint64_t stream, uint64_t seq, const uint8_t *rec, uint32_t len)
{
	if (srvdisk_full(s)) {
		s->drops[SERVER_DROP_disk_full]++; /* counted only: the state is logged once (server_disk.c) */
		return;
	}
	int rc = ingest_add(s->ing, stream, seq, rec, len);
	if (rc == 0) {
		s->added = 1;
		s->received = 1;
	} else if (rc == MTR_ENOSPACE) {
		s->drops[SERVER_DROP_disk_full]++;
		srvdisk_note(s, FULL_INGEST);
	} else if (rc == MTR_EIO) {
		mtr_log(LOG_ERROR, "server %u: ingest store failed: %s", s->cfg.id, mtr_strerror(rc));
		atomic_store(&s->fatal, 1);
	}
}

static void on_items(struct server *s, const struct transport_msg *m)
{
	if (!items_sender_ok(s, m))
		return;
	const uint8_t *p = m->buf + WIRE_HDR_SIZE, *end = p + m->hdr.length;
	struct wire_item it;
	uint64_t last_stream = 0;
	for (;;) {
		const uint8_t *rec = p;
		int rc = wire_items_next(&p, end, &it);
		if (rc < 0)
			srvnet_drop(s, SERVER_DROP_items, m);
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
	if (!items_sender_ok(s, m))
		return;
	if (wire_frag_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, INGEST_DEFAULT_MAX_ITEM, &f) != 0) {
		srvnet_drop(s, SERVER_DROP_fragment, m);
		return;
	}
	stream_note_proxy(s, f.stream, m);
	if (ingest_watermark(s->ing, f.stream) >= f.seq)
		return; /* already held */
	uint8_t *item = NULL;
	size_t len = 0;
	int rc = reasm_add(s->ra, &f, now_mono_ns(), &item, &len);
	if (rc < 0)
		srvnet_drop(s, SERVER_DROP_reassembly, m);
	if (rc != 1)
		return;
	struct wire_item it;
	long n = wire_item_decode(item, len, &it);
	if (n == (long)len && it.stream == f.stream && it.seq == f.seq) {
		item_add(s, f.stream, f.seq, item, (uint32_t)len);
	} else {
		srvnet_drop(s, SERVER_DROP_reassembled, m);
		mtr_log(LOG_DEBUG, "server %u: reassembled item %llu of %016llx is malformed: dropped", s->cfg.id,
			(unsigned long long)f.seq, (unsigned long long)f.stream);
	}
	free(item);
}

static void on_heartbeat(struct server *s, const struct transport_msg *m)
{
	struct wire_heartbeat hb;
	if (srvnet_is_server(s, m->hdr.sender)) {
		srvnet_drop(s, SERVER_DROP_heartbeat_sender, m);
		return;
	}
	if (wire_heartbeat_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &hb) != 0) {
		srvnet_drop(s, SERVER_DROP_heartbeat, m);
		return;
	}
	/* a stream without room in the table is not followed at all: no
	 * tail-loss repair for it (the table evicts it later otherwise) */
	if (stream_note_proxy(s, hb.stream, m) && hb.high > 0)
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
				srvnet_out_push(s, wire_frame_finish(dg, &s->from, WIRE_T_ITEMS, (uint32_t)used), to);
				dg = NULL;
				used = count = 0;
			}
			uint32_t nf = wire_frag_count(len, mtu);
			for (uint32_t i = 0; i < nf; i++) {
				uint8_t *b = srvnet_out_buf(s);
				/* srvnet_out_buf may have flushed: p stays valid (no ingest call) */
				size_t n = wire_frag_build(b, mtu, &s->from, stream, seq, p, len, i);
				srvnet_out_push(s, n, to);
			}
			continue;
		}
		if (dg != NULL && len > room - used) {
			srvnet_out_push(s, wire_frame_finish(dg, &s->from, WIRE_T_ITEMS, (uint32_t)used), to);
			dg = NULL;
			used = count = 0;
		}
		if (dg == NULL)
			dg = srvnet_out_buf(s);
		memcpy(dg + WIRE_HDR_SIZE + used, p, len);
		used += len;
		count++;
	}
	if (count) {
		srvnet_out_push(s, wire_frame_finish(dg, &s->from, WIRE_T_ITEMS, (uint32_t)used), to);
	}
}

static void on_resend(struct server *s, const struct transport_msg *m)
{
	struct wire_resend r;
	if (!srvnet_from_peer(s, m)) { /* proxies never ask servers to resend */
		srvnet_drop(s, SERVER_DROP_resend_sender, m);
		return;
	}
	if (wire_resend_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &r) != 0 || r.first == 0 || r.last < r.first) {
		srvnet_drop(s, SERVER_DROP_resend, m);
		return;
	}
	send_items(s, r.stream, r.first, r.last, &m->peer);
}

/* Ask for the missing items of one range: the proxy on the first try, then
 * the proxy and a peer that reported holding the range (else the next peer
 * in turn). */
static void request_range(struct server *s, const struct ingest_range *r)
{
	/* no create: a stream the table evicted as dead stays evicted */
	struct stream *st = srvnet_stream_find(s, r->stream, 0);
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
		uint8_t *b = srvnet_out_buf(s);
		srvnet_out_push(s, wire_resend_build(b, &s->from, &rs), &st->proxy);
	}
	uint64_t others = s->pt.members & ~(UINT64_C(1) << s->cfg.id);
	if ((st && st->has_proxy && tries == 0) || others == 0)
		return;
	/* the peers in turn from peer_rr: one that reported holding the
	 * range first, else the next one */
	uint32_t peer = PAXOS_MAX_ID, next = PAXOS_MAX_ID;
	for (uint32_t k = 0; k < PAXOS_MAX_ID; k++) {
		uint32_t j = (s->peer_rr + k) % PAXOS_MAX_ID;
		if (!(others & (UINT64_C(1) << j)))
			continue;
		if (next == PAXOS_MAX_ID)
			next = j;
		if (st && st->peer_wm[j] >= r->last) {
			peer = j;
			break;
		}
	}
	if (peer == PAXOS_MAX_ID)
		peer = next;
	s->peer_rr = peer + 1;
	uint8_t *b = srvnet_out_buf(s);
	srvnet_out_push(s, wire_resend_build(b, &s->from, &rs), &s->pt.addr[peer]);
}

void srvnet_request_gaps(struct server *s)
{
	struct ingest_range r[32];
	int n = ingest_gaps_all(s->ing, now_mono_ns(), r, (int)ARRAY_SIZE(r));
	for (int i = 0; i < n; i++)
		request_range(s, &r[i]);
}

/* Tell the core our watermarks (every stream we know): what is received
 * (ingest_received), durable or not.  The leader may propose on it; each
 * acceptor makes the items durable with its accept record before it
 * answers (server_disk.c, doc/storage.md "One commit per accept"). */
void srvnet_push_watermarks(struct server *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < STREAM_CAP && n < PAXOS_MAX_MARKS; i++) {
		struct stream *st = &s->streams[i];
		if (st->id == 0)
			continue;
		uint64_t w = ingest_received(s->ing, st->id);
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
	 * the same message itself, at most one every EAGER_MIN_US (200 us):
	 * the leader handles it like the periodic one, and batches at once.
	 * (Once a millisecond, as before, held one write in flight to one
	 * write a millisecond: its items came within the millisecond of the
	 * last write's report; doc/performance.md.)  Only a
	 * watermark that moved since the last eager report counts: a push
	 * for anything else (a release, a chosen instance) would otherwise
	 * spend the millisecond's report, and the next write's items, arriving
	 * in the same millisecond, would wait for the next one (the `propose`
	 * stage, doc/performance.md).
	 */
	for (unsigned i = 0; i < STREAM_CAP && !s->eager_pending; i++) {
		const struct stream *st = &s->streams[i];
		if (st->id != 0 && ingest_received(s->ing, st->id) > st->eager_wm)
			s->eager_pending = 1;
	}
	srvnet_eager_report(s);
}

/* Send the pending eager WATERMARK (see srvnet_push_watermarks) unless one left
 * less than EAGER_MIN_US ago; the loop then sleeps at most 1 ms and retries. */
void srvnet_eager_report(struct server *s)
{
	uint64_t now = now_mono_ns();
	if (!s->eager_pending || now - s->last_eager_ns < EAGER_MIN_US * 1000u)
		return;
	s->eager_pending = 0;
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	if (ps.role == PAXOS_LEADER || srvnet_peer_addr(s, ps.leader) == NULL)
		return;
	unsigned n = 0;
	for (unsigned i = 0; i < STREAM_CAP && n < PAXOS_MAX_MARKS; i++) {
		struct stream *st = &s->streams[i];
		uint64_t w = st->id ? ingest_received(s->ing, st->id) : 0;
		if (w == 0)
			continue;
		s->marks[n].stream = st->id;
		s->marks[n].seq = w;
		st->eager_wm = w;
		n++;
	}
	struct paxos_msg m = {.type = PAXOS_WATERMARK, .n_marks = n, .marks = s->marks};
	srvnet_px_send(s, ps.leader, &m);
	s->last_eager_ns = now;
}

/* ---- Paxos host side ---- */

void srvnet_px_send(void *data, uint32_t to, const struct paxos_msg *msg)
{
	struct server *s = data;
	if (msg->type == PAXOS_ACCEPT && msg->inst > s->propose_inst) { /* a fresh proposal (stages) */
		s->propose_inst = msg->inst;
		s->propose_ns = now_mono_ns();
		if (s->commit_ns != 0 && msg->value.n > 0)
			metrics_hist_observe(&s->stage.propose, (s->propose_ns - s->commit_ns) / 1000u);
	}
	if (msg->type == PAXOS_ACCEPTED && !s->cfg.durability_memory)
		srvdisk_check_answer(s, msg->inst);
	uint8_t *b = srvnet_out_buf(s);
	long n = wire_paxos_build(b, WIRE_MAX_DGRAM, &s->from, msg);
	if (n < 0) {
		mtr_log(LOG_WARN, "server %u: %s message not sent: %s", s->cfg.id, paxos_msg_name(msg->type),
			mtr_strerror((int)n));
		return;
	}
	if (to != PAXOS_BROADCAST) {
		const struct transport_addr *a = srvnet_peer_addr(s, to);
		if (a == NULL) { /* a configuration not in the table yet */
			srvnet_peers_refresh(s, 0);
			a = srvnet_peer_addr(s, to);
		}
		if (a == NULL && (s->gone_known & id_bit(to))) /* a removed server, told so */
			a = &s->gone_addr[to];
		if (a != NULL)
			srvnet_out_push(s, (size_t)n, a);
		return;
	}
	/*
	 * To the core's audience (members in force or pending but us).  The
	 * first peer gets the built slot, the others copies of it.  The
	 * copies cannot overwrite the source: a flush happens at most once
	 * here (at most PAXOS_MAX_ID - 2 copies, fewer than OUT_SLOTS), and
	 * only when the source sits in one of the last slots, while the
	 * copies after it fill the first ones.
	 */
	uint64_t aud = paxos_audience(s->px);
	if (aud & ~s->pt.members)
		srvnet_peers_refresh(s, 0);
	int first = 1;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++) {
		const struct transport_addr *a = (aud & (UINT64_C(1) << j)) ? srvnet_peer_addr(s, j) : NULL;
		if (a == NULL)
			continue;
		if (first)
			srvnet_out_push(s, (size_t)n, a);
		else
			out_copy(s, b, (size_t)n, a);
		first = 0;
	}
}

int srvnet_px_persist(void *data, const struct paxos_persist *change)
{
	struct server *s = data;
	if (srvdisk_full(s))
		return MTR_ENOSPACE; /* no promise or accept it could not keep */
	if (change->kind == PAXOS_PERSIST_ACCEPT && !s->cfg.durability_memory)
		return srvdisk_accept(s, change); /* durable at the group commit */
	uint64_t t0 = change->kind == PAXOS_PERSIST_ACCEPT ? now_mono_ns() : 0;
	int rc = pstore_persist(s->ps, change);
	if (t0 != 0 && rc == 0)
		metrics_hist_observe(&s->stage.persist, (now_mono_ns() - t0) / 1000u);
	if (rc == MTR_ENOSPACE) {
		srvdisk_note(s, FULL_PAXOS); /* the record was cut off again: the log is as before */
	} else if (rc == MTR_EIO) {
		/* a failed fdatasync or a cut that failed: the log's state on
		 * disk is unknown, and the store refuses every later write */
		mtr_log(LOG_ERROR, "server %u: the Paxos log cannot be written: stopping (a restart recovers it)",
			s->cfg.id);
		atomic_store(&s->fatal, 1);
	}
	return rc;
}

bool srvnet_px_holds(void *data, uint64_t stream, uint64_t last)
{
	struct server *s = data;
	if (s->backpressure || srvdisk_full(s))
		return false;
	/* received is enough: disk mode syncs the items with the accept
	 * record before the answer (srvdisk_commit) */
	return ingest_received(s->ing, stream) >= last;
}

void srvnet_px_fetch(void *data, uint64_t stream, uint64_t first, uint64_t last)
{
	struct server *s = data;
	(void)first;
	if (s->backpressure && ingest_holds(s->ing, stream, last))
		return;
	/* The ingest gap machinery (retry interval, proxy then peers) asks. */
	srvnet_stream_find(s, stream, 1);
	ingest_note_high(s->ing, stream, last);
}

/* ---- the read queue (READ, and RESULT_REQUEST records to look up) ---- */

/* ---- RESULT_REQUEST: the result cache, else mtr_requests ---- */

/* A record of a RESULT_REQUEST, by seq (cache_scan). */
struct rreq_want {
	struct wire_rreq_rec r;
	int hit;
};

static int want_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct rreq_want *)a)->r.seq, y = ((const struct rreq_want *)b)->r.seq;
	return x < y ? -1 : x > y;
}

/* Fill wr with the results of w[0..n) (sorted by seq) the result cache
 * holds and mark them hit: one pass over the cache, a binary search per
 * cached item of the stream (not a pass per record).  Returns how many. */
static size_t cache_scan(const struct server *s, uint64_t stream, struct rreq_want *w, size_t n,
			 struct wire_result *wr)
{
	size_t nwr = 0;
	for (unsigned k = s->cn; k-- > 0 && nwr < n;) {
		const struct done *d = s->cache[(s->chead + k) % s->ccap];
		for (size_t i = 0; i < d->n; i++) {
			const struct res_item *ri = &d->it[i];
			if (ri->stream != stream)
				continue;
			size_t lo = 0, hi = n;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				if (w[mid].r.seq < ri->seq)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == n || w[lo].r.seq != ri->seq || w[lo].hit)
				continue;
			w[lo].hit = 1;
			wr[nwr++] = (struct wire_result){.seq = ri->seq, .request = ri->request, .instance = d->inst,
							 .data = d->bytes + ri->off, .len = ri->len};
		}
	}
	return nwr;
}

/*
 * Each record is answered from the result cache when it is there; the
 * others go to a reader thread, which looks them up in mtr_requests on its
 * own connection (the apply connection belongs to the apply thread) and
 * posts the answers to the outbox like a READ's (doc/server.md "Results
 * asked for again").
 */
static void on_result_request(struct server *s, const struct transport_msg *m)
{
	struct wire_result_request rq;
	if (wire_result_request_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &rq) != 0) {
		srvnet_drop(s, SERVER_DROP_result_request, m);
		return;
	}
	stream_note_proxy(s, rq.stream, m);
	struct rreq_want w[WIRE_RREQ_MAX_RECS];
	for (uint32_t i = 0; i < rq.nrec; i++) {
		wire_rreq_rec_get(&rq, i, &w[i].r);
		w[i].hit = 0;
	}
	qsort(w, rq.nrec, sizeof *w, want_cmp);
	struct wire_result wr[WIRE_RREQ_MAX_RECS];
	size_t nwr = cache_scan(s, rq.stream, w, rq.nrec, wr);
	struct apply_lookup *look = NULL;
	uint32_t nlook = 0;
	if (nwr < rq.nrec && (look = calloc(rq.nrec - nwr, sizeof *look)) != NULL)
		for (uint32_t i = 0; i < rq.nrec; i++)
			if (!w[i].hit)
				look[nlook++] = (struct apply_lookup){.stream = rq.stream, .seq = w[i].r.seq,
								      .client = w[i].r.client, .request = w[i].r.request};
	if (nwr) {
		s->results_cached += nwr;
		srvapply_send_results(s, rq.stream, wr, nwr, &m->peer);
	}
	if (nlook == 0) {
		free(look);
		if (nwr < rq.nrec) /* records left out for want of memory */
			srvnet_drop(s, SERVER_DROP_result_queue, m);
		return;
	}
	struct read_req *q = calloc(1, sizeof *q);
	if (q == NULL) {
		free(look);
		srvnet_drop(s, SERVER_DROP_result_queue, m);
		return;
	}
	q->look = look;
	q->nlook = nlook;
	q->from = m->peer;
	q->stream = rq.stream;
	if (srvapply_read_queue(s, q) != 0) {
		free(look);
		free(q);
		srvnet_drop(s, SERVER_DROP_result_queue, m);
		return;
	}
	mtr_log(LOG_DEBUG, "server %u: RESULT_REQUEST of %016llx: %u of %u results not in the cache, looked up",
		s->cfg.id, (unsigned long long)rq.stream, nlook, rq.nrec);
}

/* ---- status ---- */

/* Whether a majority of the configured servers, heard within 3 status
 * periods, show another origin than ours: this replica holds other content
 * than the cluster (doc/server.md "Origin") and must answer no client. */
static int origin_outvoted(const struct server *s)
{
	uint32_t other = 0;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++) {
		const struct peer *p = &s->peers[j];
		if (srvnet_peer_addr(s, j) && p->heard && s->now_ms - p->last_ms <= 3ull * s->cfg.status_period_ms &&
		    p->st.origin != s->origin)
			other++;
	}
	return other >= (uint32_t)__builtin_popcountll(s->pt.in_force) / 2 + 1;
}

/* The membership STATUS carries once the configuration changed (doc/protocol.md
 * "STATUS"): the members of the configuration in force and of a pending one,
 * with the addresses of the peer table. */
static void status_members(struct server *s, const struct paxos_status *ps, struct wire_status *st)
{
	if (ps->conf_since == 0 && ps->conf_next == 0)
		return; /* the initial configuration: cluster.servers says it */
	struct batch_conf latest;
	paxos_conf_at(s->px, UINT64_MAX, &latest);
	uint64_t newest = 0;
	for (uint32_t i = 0; i < latest.n; i++)
		newest |= UINT64_C(1) << latest.m[i].id;
	uint64_t all = (newest | ps->members) & s->pt.members;
	uint8_t n = 0;
	for (uint32_t j = 0; j < PAXOS_MAX_ID && n < WIRE_STATUS_MEMBERS_MAX; j++) {
		uint64_t b = UINT64_C(1) << j;
		if (!(all & b))
			continue;
		const struct batch_member *bm = batch_conf_find(&latest, j);
		st->m[n++] = (struct wire_status_member){.id = (uint8_t)j,
							 .flags = (uint8_t)((bm && bm->voter ? WIRE_MEMBER_VOTER : 0) |
									    (bm ? 0 : WIRE_MEMBER_LEAVING)),
							 .ip = s->pt.addr[j].ip,
							 .port = s->pt.addr[j].port};
	}
	if (n == 0 || !(all & newest))
		return; /* no member of the newest one with an address: nothing to tell */
	st->nmembers = n;
	st->conf = ps->conf_next ? 2 * ps->conf_next : 2 * ps->conf_since + 1;
}

/* Our STATUS datagram into dg (WIRE_STATUS_MAX + WIRE_OVERHEAD bytes). */
static size_t status_build(struct server *s, uint8_t *dg)
{
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	struct wire_status st = {.node = s->cfg.id, .role = (uint8_t)ps.role, .leader = ps.leader, .ballot = ps.ballot,
				 .chosen = ps.chosen, .applied = s->applied_net, .compacted = s->released,
				 .origin = s->origin};
	status_members(s, &ps, &st);
	return wire_status_build(dg, &s->from, &st);
}

void srvnet_send_status(struct server *s)
{
	uint8_t dg[WIRE_STATUS_MAX + WIRE_OVERHEAD];
	size_t n = status_build(s, dg);
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
		if (srvnet_peer_addr(s, j))
			out_copy(s, dg, n, srvnet_peer_addr(s, j));
	/* proxies route reads and backups by STATUS: not to a replica that
	 * waits for its content, nor to one whose content is not the
	 * majority's */
	if (atomic_load(&s->no_content) || origin_outvoted(s))
		return;
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

/*
 * Peer j's STATUS shows another origin than ours (doc/server.md "Origin").
 * A fresh replica of ours (started empty, nothing applied or chosen) takes
 * the peer's content through the snapshot channel: that is how the other
 * servers of a cluster restored on one server with --init-from get it.
 * Otherwise the two replicas hold different content: on_paxos ignores the
 * peer, and this is logged at error once a minute per peer.
 */
static void origin_differs(struct server *s, uint32_t j)
{
	const struct wire_status *st = &s->peers[j].st;
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	int peer_fresh = st->origin == APPLY_ORIGIN_PENDING || (st->origin == 0 && st->applied == 0 && st->chosen == 0);
	/* waiting for content (--init-from-peer): from any peer that has some */
	int take = s->origin == APPLY_ORIGIN_PENDING && !peer_fresh;
	/* started empty, nothing done: the content of a restored peer */
	take |= s->origin == 0 && st->origin != 0 && st->origin != APPLY_ORIGIN_PENDING && s->applied_net == 0 &&
		ps.chosen == 0;
	if (take) {
		atomic_store(&s->no_content, 1);
		if (atomic_load(&s->snap_state) == SNAP_IDLE && s->now_ms >= s->snap_retry_ms)
			mtr_log(LOG_INFO, "server %u: this empty replica takes the content server %u was restored "
				"from (origin %016llx)", s->cfg.id, j, (unsigned long long)st->origin);
		srvsnap_px_snapshot_needed(s, j, st->applied);
		return;
	}
	/* a fresh peer fetches our content, or we wait for one: nothing to say */
	if (s->now_ms < s->peers[j].origin_warn_ms || peer_fresh || s->origin == APPLY_ORIGIN_PENDING)
		return;
	s->peers[j].origin_warn_ms = s->now_ms + 60000;
	mtr_log(LOG_ERROR,
		"server %u: ignoring server %u: its replica started from other content (origin %016llx, ours "
		"%016llx): start every server of a restored cluster with --init-from of the same file, or empty "
		"(it then fetches the content); doc/server.md \"Origin\"",
		s->cfg.id, j, (unsigned long long)st->origin, (unsigned long long)s->origin);
}

static void on_status(struct server *s, const struct transport_msg *m)
{
	struct wire_status st;
	if (!srvnet_from_peer(s, m)) {
		srvnet_drop(s, SERVER_DROP_status_sender, m);
		return;
	}
	uint32_t j = m->hdr.sender;
	if (wire_status_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &st) != 0 || st.node != j) {
		srvnet_drop(s, SERVER_DROP_status, m);
		return;
	}
	s->peers[j].heard = 1;
	s->peers[j].last_ms = s->now_ms;
	s->peers[j].st = st;
	if (st.conf != 0 && !s->told_removed) {
		/* a member's membership that does not name us: the members
		 * send STATUS only to members, and to a removed server that
		 * spoke to them (removed_paxos): we were removed */
		int named = 0;
		for (unsigned k = 0; k < st.nmembers; k++)
			named |= st.m[k].id == s->cfg.id;
		if (!named) {
			s->told_removed = 1;
			mtr_log(LOG_WARN,
				"server %u: server %u says this server was removed from the cluster (membership version "
				"%llu): the members refuse it; stop it, its id is never used again (doc/operations.md "
				"\"Remove a server\")",
				s->cfg.id, j, (unsigned long long)st.conf);
		}
	}
	if (st.origin != s->origin)
		origin_differs(s, j);
}

/*
 * A PAXOS message of a server removed from the cluster (doc/paxos.md
 * "Membership", rule 4): the core refuses it, logs that at warn (once a
 * minute) and tells the sender politely (a PREVOTE_REPLY with our commit;
 * its CATCHUP answered), so that it learns it was removed.  The answer
 * goes to the address the message came from (a removed id has none in the
 * peer table); with a key, only a holder of the key could have sent it.
 */
static void removed_paxos(struct server *s, const struct transport_msg *m)
{
	uint32_t from = m->hdr.sender;
	struct paxos_msg pm;
	if (paxos_msg_decode(&pm, m->buf + WIRE_HDR_SIZE, m->hdr.length) != 0) {
		srvnet_drop(s, SERVER_DROP_paxos, m);
		return;
	}
	s->gone_addr[from] = m->peer;
	s->gone_known |= id_bit(from);
	if (s->now_ms >= s->gone_warn_ms[from]) {
		s->gone_warn_ms[from] = s->now_ms + DROP_WARN_MS;
		char a[32];
		mtr_log(LOG_WARN,
			"server %u: removed server %u is back at %s: its messages are refused and it is told so (stop "
			"it: its id is never used again)",
			s->cfg.id, from, transport_addr_format(&m->peer, a, sizeof a));
	}
	paxos_recv(s->px, from, &pm);
	paxos_msg_free(&pm);
	/* and our STATUS, at most once a status period: a removed server that
	 * does not know it yet takes PAXOS only from peers it heard (origin),
	 * and the members send it no STATUS otherwise */
	if (s->now_ms >= s->gone_status_ms[from]) {
		s->gone_status_ms[from] = s->now_ms + s->cfg.status_period_ms;
		uint8_t dg[WIRE_STATUS_MAX + WIRE_OVERHEAD];
		size_t n = status_build(s, dg);
		out_copy(s, dg, n, &m->peer);
	}
}

static void on_paxos(struct server *s, const struct transport_msg *m)
{
	uint32_t from = m->hdr.sender;
	if (!srvnet_from_peer(s, m)) {
		if (from < PAXOS_MAX_ID && from != s->cfg.id && (s->pt.seen_removed & id_bit(from))) {
			removed_paxos(s, m);
			return;
		}
		srvnet_drop(s, SERVER_DROP_paxos_sender, m);
		return;
	}
	/* only a peer known to hold the same content takes part (origin) */
	if (!s->peers[from].heard || s->peers[from].st.origin != s->origin || s->origin == APPLY_ORIGIN_PENDING) {
		/* counted only: normal before the peer's first STATUS, and a
		 * real mismatch is logged by origin_differs() */
		s->drops[SERVER_DROP_origin]++;
		return;
	}
	struct paxos_msg pm;
	if (paxos_msg_decode(&pm, m->buf + WIRE_HDR_SIZE, m->hdr.length) != 0) {
		srvnet_drop(s, SERVER_DROP_paxos, m);
		return;
	}
	if (pm.type == PAXOS_WATERMARK)
		for (uint32_t i = 0; i < pm.n_marks; i++) {
			struct stream *st = srvnet_stream_find(s, pm.marks[i].stream, 1);
			if (st)
				st->peer_wm[from] = pm.marks[i].seq;
		}
	paxos_recv(s->px, from, &pm);
	paxos_msg_free(&pm);
}

/* One READ (alone, or a record of READS): answered at once when short,
 * else queued for a reader. */
static void read_one(struct server *s, const struct transport_msg *m, const struct wire_read *rp)
{
	const struct wire_read r = *rp;
	uint64_t deadline_ns = now_mono_ns() + (uint64_t)r.deadline_ms * 1000000u;
	if (srvapply_read_quick(s, &r, &m->peer, deadline_ns) == 0)
		return;
	struct read_req *q = calloc(1, sizeof *q);
	if (q == NULL) {
		srvnet_drop(s, SERVER_DROP_read_nomem, m);
		return;
	}
	q->item = malloc(r.item_len);
	if (q->item == NULL) {
		free(q);
		srvnet_drop(s, SERVER_DROP_read_nomem, m);
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
	q->deadline_ms = r.deadline_ms;
	q->deadline_ns = deadline_ns;
	if (srvapply_read_queue(s, q) != 0) {
		free(q->item);
		free(q);
		srvnet_drop(s, SERVER_DROP_read_queue, m);
	}
}

static void on_read(struct server *s, const struct transport_msg *m)
{
	struct wire_read r;
	if (wire_read_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &r) != 0) {
		srvnet_drop(s, SERVER_DROP_read, m);
		return;
	}
	read_one(s, m, &r);
}

/* Several READs in one datagram (doc/protocol.md "READS"): each record is
 * a READ of its own; a malformed record drops it and the rest. */
static void on_reads(struct server *s, const struct transport_msg *m)
{
	const uint8_t *start = m->buf + WIRE_HDR_SIZE, *end = start + m->hdr.length, *p = start;
	struct wire_read r;
	int rc;
	while ((rc = wire_reads_next(&p, start, end, &r)) == 1)
		read_one(s, m, &r);
	if (rc < 0)
		srvnet_drop(s, SERVER_DROP_read, m);
}

static void on_cancel_read(struct server *s, const struct transport_msg *m)
{
	struct wire_cancel_read c;
	if (wire_cancel_read_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &c) != 0) {
		srvnet_drop(s, SERVER_DROP_cancel_read, m);
		return;
	}
	srvapply_read_cancel(s, c.stream, c.rid, &m->peer);
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
	case WIRE_T_READS:
		on_reads(s, m);
		break;
	case WIRE_T_CANCEL_READ:
		on_cancel_read(s, m);
		break;
	case WIRE_T_STATUS:
		on_status(s, m);
		break;
	case WIRE_T_STATS:
		srvvt_on_stats(s, m);
		break;
	case WIRE_T_MEMBERSHIP:
		srvmem_on_datagram(s, m);
		break;
	default:
		srvnet_drop(s, SERVER_DROP_type, m);
		break;
	}
}

/* Receive and handle what is waiting on t (a bounded number of batches). */
static void recv_rounds(struct server *s, struct transport *t)
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

void srvnet_recv_all(struct server *s, struct transport *t)
{
	s->quick_ns = 0;
	s->quick_cpu0 = 0;
	s->quick_spent = 0;
	recv_rounds(s, t);
	srvapply_quick_flush(s); /* the answers of the quick reads, packed */
}
