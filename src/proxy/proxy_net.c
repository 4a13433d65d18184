/*
 * proxy_net.c - the server side of the proxy (proxy_int.h): datagrams out
 * (the items numbered in an iteration packed into ITEMS / FRAGMENT
 * datagrams in one send to the group; READ datagrams to one server, picked
 * by what it has applied), datagrams in (RESULT, reassembled from chunks
 * when a result spans several; RESEND answered from the outbuf; STATUS for
 * reads routing), the release of the outbuf, and the timers (heartbeat,
 * RESULT_REQUEST for late results, read retries).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metronome.h"
#include "outbuf.h"
#include "proxy.h"
#include "proxy_int.h"
#include "util.h"
#include "wire.h"
#include "wire_server.h"

/* ---- partial results: chunks reassembled by offset -------------------- */

/* Bytes [0, total) of one result, received in chunks that may overlap or
 * repeat (several replicas send the same bytes, split differently). */
struct rbuf {
	uint8_t *data;
	uint32_t total;
	uint32_t niv, civ;
	struct rbuf_iv {
		uint32_t a, b;
	} *iv; /* received [a, b), sorted and disjoint */
};

void pxnet_rbuf_free(struct rbuf *r)
{
	if (r == NULL)
		return;
	free(r->data);
	free(r->iv);
	free(r);
}

/* Add one chunk.  1: the result is complete; 0: not yet; negative: no
 * memory, or a chunk that disagrees with the others on the size. */
static int rbuf_add(struct rbuf *r, const struct wire_result_rec *rec)
{
	if (r->data == NULL) {
		r->data = malloc(rec->total ? rec->total : 1);
		if (r->data == NULL)
			return MTR_ENOMEM;
		r->total = rec->total;
	}
	if (rec->total != r->total)
		return MTR_EMALFORMED;
	if (rec->len == 0)
		return r->niv == 1 && r->iv[0].a == 0 && r->iv[0].b == r->total;
	memcpy(r->data + rec->offset, rec->data, rec->len);
	if (r->niv == r->civ) {
		uint32_t n = r->civ ? r->civ * 2 : 4;
		struct rbuf_iv *iv = realloc(r->iv, n * sizeof *iv);
		if (iv == NULL)
			return MTR_ENOMEM;
		r->iv = iv;
		r->civ = n;
	}
	uint32_t a = rec->offset, b = rec->offset + rec->len, i = 0;
	while (i < r->niv && r->iv[i].a < a)
		i++;
	memmove(r->iv + i + 1, r->iv + i, (r->niv - i) * sizeof *r->iv);
	r->iv[i].a = a;
	r->iv[i].b = b;
	r->niv++;
	/* merge touching or overlapping neighbours */
	uint32_t w = 0;
	for (uint32_t k = 1; k < r->niv; k++) {
		if (r->iv[k].a <= r->iv[w].b) {
			if (r->iv[k].b > r->iv[w].b)
				r->iv[w].b = r->iv[k].b;
		} else {
			r->iv[++w] = r->iv[k];
		}
	}
	r->niv = w + 1;
	return r->niv == 1 && r->iv[0].a == 0 && r->iv[0].b == r->total;
}

/* ---- sending datagrams ---------------------------------------------------- */

void pxnet_sendq_flush(struct proxy *p, struct sendq *q)
{
	if (q->n == 0)
		return;
	int rc = q->group ? transport_send_group(p->t, q->msg, q->n) : transport_send_to(p->t, q->msg, q->n);
	if (rc < 0)
		mtr_log(LOG_WARN, "proxy: send of %u datagrams failed: %s", q->n, mtr_strerror(rc));
	q->n = 0;
}

/* The buffer of the next datagram (mtu bytes): flushes first when full.
 * Only one slot may be open (obtained, not committed) at a time. */
static uint8_t *sendq_slot(struct proxy *p, struct sendq *q)
{
	if (q->n == SENDQ_CAP)
		pxnet_sendq_flush(p, q);
	return q->mem + (size_t)q->n * p->mtu;
}

static void sendq_commit(struct sendq *q, size_t len, const struct transport_addr *peer)
{
	struct transport_msg *m = &q->msg[q->n++];
	m->len = (uint32_t)len;
	if (peer)
		m->peer = *peer;
}

void pxnet_send_to_server(struct proxy *p, const uint8_t *dg, size_t n, uint32_t j)
{
	if (j >= PROXY_SERVER_IDS || !(p->servers & (UINT64_C(1) << j)) || n > p->mtu)
		return;
	uint8_t *b = sendq_slot(p, &p->tq);
	memcpy(b, dg, n);
	sendq_commit(&p->tq, n, &p->saddr[j]);
}

static void ipack_finish(struct proxy *p, struct ipack *ip)
{
	if (ip->buf == NULL)
		return;
	size_t n = wire_frame_finish(ip->buf, &p->from, WIRE_T_ITEMS, (uint32_t)ip->used);
	sendq_commit(ip->q, n, &ip->peer);
	ip->buf = NULL;
	ip->used = 0;
}

/* Add one encoded item record (ITEMS payloads are records back to back):
 * into the open ITEMS datagram, or as fragments when it needs more than one
 * datagram.  Returns the datagrams used (for counters). */
static unsigned ipack_add(struct proxy *p, struct ipack *ip, uint64_t seq, const uint8_t *rec, uint32_t len)
{
	size_t room = p->mtu - WIRE_OVERHEAD;
	if (len > room) {
		ipack_finish(p, ip);
		uint32_t nf = wire_frag_count(len, p->mtu);
		for (uint32_t i = 0; i < nf; i++) {
			uint8_t *b = sendq_slot(p, ip->q);
			size_t n = wire_frag_build(b, p->mtu, &p->from, p->stream, seq, rec, len, i);
			sendq_commit(ip->q, n, &ip->peer);
		}
		return nf;
	}
	unsigned fresh = 0;
	if (ip->buf && ip->used + len > room)
		ipack_finish(p, ip);
	if (ip->buf == NULL) {
		ip->buf = sendq_slot(p, ip->q);
		ip->used = 0;
		fresh = 1;
	}
	memcpy(ip->buf + WIRE_HDR_SIZE + ip->used, rec, len);
	ip->used += len;
	return fresh;
}

/* Send the items numbered in this iteration to the group. */
void pxnet_flush_items(struct proxy *p)
{
	uint64_t next = outbuf_next_seq(&p->ob);
	if (p->batch_first >= next)
		return;
	struct ipack ip = {.q = &p->gq};
	for (uint64_t s = p->batch_first; s < next; s++) {
		const uint8_t *rec;
		uint32_t len;
		if (outbuf_get(&p->ob, s, &rec, &len) != 0)
			continue;
		p->st.dgrams_out += ipack_add(p, &ip, s, rec, len);
	}
	ipack_finish(p, &ip);
	pxnet_sendq_flush(p, &p->gq);
	uint64_t now = now_mono_ns();
	for (uint64_t s = p->batch_first; s < next; s++) {
		struct pend *q = p->slots[s % p->cap].pend;
		if (q != NULL && q->sent_ns == 0)
			q->sent_ns = now;
	}
	p->batch_first = next;
}

/* ---- reads ---------------------------------------------------------------- */

void pxnet_read_unlink(struct proxy *p, struct pend *q)
{
	struct pend **pp = &p->rtab[q->rid % RHASH];
	while (*pp && *pp != q)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = q->hnext;
	if (q->rprev)
		q->rprev->rnext = q->rnext;
	else
		p->rhead = q->rnext;
	if (q->rnext)
		q->rnext->rprev = q->rprev;
	else
		p->rtail = q->rprev;
	q->rprev = q->rnext = q->hnext = NULL;
}

void pxnet_read_list_append(struct proxy *p, struct pend *q)
{
	q->rnext = NULL;
	q->rprev = p->rtail;
	if (p->rtail)
		p->rtail->rnext = q;
	else
		p->rhead = q;
	p->rtail = q;
}

/* ---- the servers (doc/proxy.md "Servers") ---- */

void pxnet_servers_init(struct proxy *p)
{
	p->servers = 0;
	p->servers_conf = 0;
	for (unsigned j = 0; j < p->cfg.cc.nservers && j < PROXY_SERVER_IDS; j++) {
		p->saddr[j] = p->cfg.cc.servers[j];
		p->servers |= UINT64_C(1) << j;
	}
}

unsigned pxnet_server_next(const struct proxy *p, unsigned from)
{
	unsigned n = (unsigned)__builtin_popcountll(p->servers), k = n ? from % n : 0;
	for (unsigned i = 0; i < PROXY_SERVER_IDS; i++)
		if ((p->servers & (UINT64_C(1) << i)) && k-- == 0)
			return i;
	return 0; /* never: the list is never empty */
}

void pxnet_servers_follow(struct proxy *p, const struct wire_status *s)
{
	if (s->conf <= p->servers_conf)
		return;
	uint64_t was = p->servers;
	p->servers = 0;
	struct transport_addr dests[WIRE_STATUS_MEMBERS_MAX];
	unsigned nd = 0;
	char list[WIRE_STATUS_MEMBERS_MAX * 28] = "";
	size_t used = 0;
	for (unsigned i = 0; i < s->nmembers; i++) {
		const struct wire_status_member *e = &s->m[i];
		struct transport_addr a = {.ip = e->ip, .port = e->port};
		if (p->saddr[e->id].ip != a.ip || p->saddr[e->id].port != a.port || !(was & (UINT64_C(1) << e->id)))
			p->srv[e->id] = (struct srv){0}; /* another server under that id: unknown yet */
		p->saddr[e->id] = a;
		p->servers |= UINT64_C(1) << e->id;
		dests[nd++] = a;
		char ab[24];
		if (used < sizeof list)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s%u=%s%s", i ? " " : "", e->id,
						 transport_addr_format(&a, ab, sizeof ab),
						 (e->flags & WIRE_MEMBER_LEAVING) ? "(leaving)"
						 : (e->flags & WIRE_MEMBER_VOTER) ? ""
										   : "(learner)");
	}
	for (unsigned j = 0; j < PROXY_SERVER_IDS; j++)
		if ((was & ~p->servers) & (UINT64_C(1) << j))
			p->srv[j] = (struct srv){0};
	p->servers_conf = s->conf;
	int rc = transport_set_dests(p->t, dests, nd);
	mtr_log(rc == 0 ? LOG_INFO : LOG_WARN, "proxy: servers now %s (membership %llu from server %u)%s%s", list,
		(unsigned long long)s->conf, s->node, rc == 0 ? "" : "; the transport kept its destinations: ",
		rc == 0 ? "" : mtr_strerror(rc));
}

/* The server for a read: one alive that has applied min_inst (round robin
 * from `from`), else simply the next one. */
unsigned pxnet_read_pick(struct proxy *p, uint64_t min_inst, unsigned from)
{
	unsigned n = (unsigned)__builtin_popcountll(p->servers);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = pxnet_server_next(p, from + k);
		struct srv *s = &p->srv[i];
		if (s->known && p->now_ms - s->seen_ms < ALIVE_MS && s->applied >= min_inst)
			return i;
	}
	return pxnet_server_next(p, from);
}

static int srv_alive(const struct proxy *p, unsigned i)
{
	return p->srv[i].known && p->now_ms - p->srv[i].seen_ms < ALIVE_MS;
}

static void stage_send(struct proxy *p, struct rstage *st)
{
	size_t n = wire_reads_finish(&st->pk, &p->from);
	if (n == 0)
		return;
	uint8_t *b = sendq_slot(p, &p->tq);
	memcpy(b, st->pk.buf, n);
	sendq_commit(&p->tq, n, &p->saddr[st->server]);
	if (st->pk.n > 1)
		p->st.reads_batched += st->pk.n;
}

void pxnet_reads_flush(struct proxy *p)
{
	for (unsigned i = 0; i < p->nrstage; i++)
		stage_send(p, &p->rstage[i]);
	p->nrstage = 0;
}

/* Add the READ m to the batch of its server (doc/proxy.md "Reads"): 0, or
 * MTR_ETOOBIG / MTR_EINVAL (send it alone). */
static int stage_add(struct proxy *p, unsigned server, const struct wire_read *m)
{
	struct rstage *st = NULL;
	for (unsigned i = 0; i < p->nrstage && st == NULL; i++)
		if (p->rstage[i].server == server)
			st = &p->rstage[i];
	if (st == NULL) {
		if (p->nrstage == RSTAGE_MAX)
			pxnet_reads_flush(p);
		st = &p->rstage[p->nrstage];
		st->server = server;
		wire_reads_begin(&st->pk, p->rsmem + (size_t)p->nrstage * p->mtu, p->mtu, p->stream);
		p->nrstage++;
	}
	int rc = wire_reads_add(&st->pk, m);
	if (rc == MTR_ETOOBIG && st->pk.n > 0) {
		stage_send(p, st);
		wire_reads_begin(&st->pk, st->pk.buf, p->mtu, p->stream);
		rc = wire_reads_add(&st->pk, m);
	}
	return rc;
}

void pxnet_read_send(struct proxy *p, struct pend *q)
{
	/* the server may spend what is left of proxy.read_timeout on it */
	uint64_t end = q->first_ms + p->cfg.read_timeout_ms;
	uint32_t left = end > p->now_ms ? (uint32_t)MIN(end - p->now_ms, WIRE_READ_DEADLINE_MAX) : 1;
	struct wire_read m = {.stream = p->stream, .rid = q->rid, .min_instance = q->min_inst, .deadline_ms = left,
			      .item = q->item, .item_len = q->item_len};
	q->sent_ms = p->now_ms;
	if (stage_add(p, q->server, &m) == 0)
		return;
	uint8_t *b = sendq_slot(p, &p->tq);
	long n = wire_read_build(b, p->mtu, &p->from, &m);
	if (n > 0)
		sendq_commit(&p->tq, (size_t)n, &p->saddr[q->server]);
}

void pxnet_read_cancel(struct proxy *p, struct pend *q)
{
	pxnet_reads_flush(p); /* a READ still in a batch leaves before its cancel */
	uint8_t *b = sendq_slot(p, &p->tq);
	struct wire_cancel_read m = {.stream = p->stream, .rid = q->rid};
	sendq_commit(&p->tq, wire_cancel_read_build(b, &p->from, &m), &p->saddr[q->server]);
	p->st.cancel_reads++;
}

/* ---- datagrams in ------------------------------------------------------- */

/*
 * Release the prefix of seqs that need nothing more: those with their
 * result, and those given up (answered "outcome unknown") once they are
 * known to be applied somewhere, so that no server can still need them from
 * us (a result for a later seq of the stream proves it: a stream's items
 * are ordered as a prefix, invariant 3).  A given-up seq not known applied
 * stays: its item may exist nowhere else yet.
 */
static void release_done(struct proxy *p)
{
	uint64_t next = outbuf_next_seq(&p->ob), old = p->rel;
	while (p->rel + 1 < next) {
		struct wslot *s = &p->slots[(p->rel + 1) % p->cap];
		if (!s->done && !(s->gave_up && p->rel + 1 <= p->ordered))
			break;
		if (s->rb) {
			pxnet_rbuf_free(s->rb);
			s->rb = NULL;
		}
		s->done = 0;
		s->gave_up = 0;
		s->pend = NULL;
		p->rel++;
	}
	if (p->rel != old) {
		outbuf_release(&p->ob, p->rel);
		p->released_any = 1;
		p->st.released = p->rel;
	}
}

/* The answer of a write whose result no server has any more (RESULT_UNKNOWN,
 * or proxy.write_timeout passed): MTR_EUNKNOWN, or for a read ordered like
 * a write a plain time-out (running it again is harmless). */
static void answer_unknown(struct proxy *p, struct wslot *s, uint64_t instance, const char *why)
{
	struct pend *q = s->pend;
	s->pend = NULL;
	if (q == NULL)
		return;
	char msg[256];
	if (s->read)
		snprintf(msg, sizeof msg, "the result of this read was lost (%s); run it again", why);
	else
		snprintf(msg, sizeof msg,
			 "outcome unknown: the write may or may not have been applied (%s); check the row", why);
	pxcli_pend_complete(p, q, s->read ? MTR_ETIMEDOUT : MTR_EUNKNOWN, msg, instance, NULL, 0, 0);
}

static void on_result(struct proxy *p, const uint8_t *pl, size_t len)
{
	struct wire_result_msg m;
	if (wire_result_decode(pl, len, p->cfg.max_frame, &m) != 0 || m.stream != p->stream) {
		p->drops[PROXY_DROP_result]++;
		return;
	}
	struct wire_result_rec rec;
	int released = 0;
	while (wire_result_next(&m, &rec)) {
		int whole = rec.offset == 0 && rec.len == rec.total;
		if (rec.seq == 0) {
			struct pend *q = p->rtab[rec.request % RHASH];
			while (q && q->rid != rec.request)
				q = q->hnext;
			if (q == NULL) {
				p->drops[PROXY_DROP_result_read]++;
				continue;
			}
			if (whole) {
				pxnet_read_unlink(p, q);
				pxcli_pend_complete(p, q, 0, NULL, rec.instance, (uint8_t *)rec.data, rec.len, 0);
				continue;
			}
			if (q->rb == NULL && (q->rb = calloc(1, sizeof *q->rb)) == NULL) {
				p->drops[PROXY_DROP_nomem]++;
				continue;
			}
			int ra = rbuf_add(q->rb, &rec);
			if (ra < 0)
				p->drops[PROXY_DROP_result_chunk]++;
			if (ra == 1) {
				struct rbuf *rb = q->rb;
				q->rb = NULL;
				pxnet_read_unlink(p, q);
				pxcli_pend_complete(p, q, 0, NULL, rec.instance, rb->data, rb->total, 1);
				rb->data = NULL;
				pxnet_rbuf_free(rb);
			}
			continue;
		}
		if (rec.seq <= p->rel || rec.seq >= outbuf_next_seq(&p->ob)) {
			p->drops[rec.seq <= p->rel ? PROXY_DROP_result_dup : PROXY_DROP_result_range]++;
			continue;
		}
		if (rec.seq > p->ordered)
			p->ordered = rec.seq;
		struct wslot *s = &p->slots[rec.seq % p->cap];
		if (s->done) {
			p->drops[PROXY_DROP_result_dup]++;
			continue;
		}
		uint8_t *data = (uint8_t *)rec.data;
		uint32_t dlen = rec.len;
		struct rbuf *rb = NULL;
		if (!whole) {
			if (s->rb == NULL && (s->rb = calloc(1, sizeof *s->rb)) == NULL) {
				p->drops[PROXY_DROP_nomem]++;
				continue;
			}
			int ra = rbuf_add(s->rb, &rec);
			if (ra < 0)
				p->drops[PROXY_DROP_result_chunk]++;
			if (ra != 1)
				continue;
			rb = s->rb;
			s->rb = NULL;
			data = rb->data;
			dlen = rb->total;
		} else if (s->rb) {
			pxnet_rbuf_free(s->rb);
			s->rb = NULL;
		}
		s->done = 1;
		struct pend *q = s->pend;
		s->pend = NULL;
		if (q)
			pxcli_pend_complete(p, q, 0, NULL, rec.instance, data, dlen, rb != NULL);
		if (rb) {
			if (q)
				rb->data = NULL; /* handed to the answer */
			pxnet_rbuf_free(rb);
		}
		released = 1;
	}
	if (released || p->ordered > p->rel)
		release_done(p);
}

/* RESULT_UNKNOWN: a server applied these items but keeps no result for
 * them: their writes are answered MTR_EUNKNOWN now rather than after
 * proxy.write_timeout, and their seqs can be released. */
static void on_result_unknown(struct proxy *p, const uint8_t *pl, size_t len)
{
	struct wire_result_unknown m;
	if (wire_result_unknown_decode(pl, len, &m) != 0 || m.stream != p->stream) {
		p->drops[PROXY_DROP_result_unknown]++;
		return;
	}
	uint64_t next = outbuf_next_seq(&p->ob);
	for (uint32_t i = 0; i < m.nrec; i++) {
		struct wire_runk_rec r;
		wire_runk_rec_get(&m, i, &r);
		if (r.seq <= p->rel || r.seq >= next) {
			p->drops[r.seq <= p->rel ? PROXY_DROP_result_dup : PROXY_DROP_result_range]++;
			continue;
		}
		struct wslot *s = &p->slots[r.seq % p->cap];
		if (s->done || r.request != s->request) {
			p->drops[s->done ? PROXY_DROP_result_dup : PROXY_DROP_result_unknown]++;
			continue;
		}
		if (r.seq > p->ordered)
			p->ordered = r.seq;
		s->done = 1;
		if (s->pend)
			p->st.results_unknown++;
		answer_unknown(p, s, m.instance, "it was applied, but no replica asked keeps its result any more");
	}
	release_done(p);
}

static void on_resend(struct proxy *p, const struct transport_msg *m)
{
	struct wire_resend r;
	if (wire_resend_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &r) != 0 || r.stream != p->stream) {
		p->drops[PROXY_DROP_resend]++;
		return;
	}
	uint64_t first = MAX(r.first, p->rel + 1), last = MIN(r.last, outbuf_high(&p->ob));
	if (last >= first + RESEND_MAX)
		last = first + RESEND_MAX - 1;
	if (first > last)
		return; /* released already: the servers have it from their peers */
	struct ipack ip = {.q = &p->tq, .peer = m->peer};
	for (uint64_t s = first; s <= last; s++) {
		const uint8_t *rec;
		uint32_t len;
		if (outbuf_get(&p->ob, s, &rec, &len) != 0)
			continue;
		ipack_add(p, &ip, s, rec, len);
		p->st.resent++;
	}
	ipack_finish(p, &ip);
	mtr_log(LOG_DEBUG, "proxy: RESEND %llu..%llu from %u", (unsigned long long)first, (unsigned long long)last,
		m->hdr.sender);
}

static void on_status(struct proxy *p, const struct transport_msg *m)
{
	struct wire_status s;
	if (wire_status_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &s) != 0 || s.node >= PROXY_SERVER_IDS ||
	    s.node != m->hdr.sender) {
		p->drops[PROXY_DROP_status]++;
		return;
	}
	if (s.conf)
		pxnet_servers_follow(p, &s);
	/* who leads: where membership changes go (proxy_members.c) */
	if (s.role == WIRE_ROLE_LEADER)
		p->leader = s.node;
	else if (p->leader == s.node)
		p->leader = PXMEM_NO_LEADER;
	else if (p->leader == PXMEM_NO_LEADER && s.leader < PROXY_SERVER_IDS && s.leader != s.node)
		p->leader = s.leader; /* a follower's word, until the leader's own STATUS */
	struct srv *v = &p->srv[s.node];
	if (s.applied > v->applied)
		v->applied = s.applied;
	v->seen_ms = p->now_ms;
	v->known = 1;
	/* the first STATUS after a silence (a partition healed, servers back):
	 * the results lost meanwhile are asked for at once, not after the
	 * backoff (ask_again) */
	if (p->now_ms - p->status_ms > ALIVE_MS && outbuf_high(&p->ob) > p->rel) {
		p->ask_now = 1;
		mtr_log(LOG_INFO, "proxy: servers heard again after %llu ms: asking for the late results at once",
			(unsigned long long)(p->now_ms - p->status_ms));
	}
	p->status_ms = p->now_ms;
}

/* A proxy that hears no server is either alone or mis-configured (a wrong
 * cluster.key or cluster.id: the servers drop every datagram of ours, and
 * ours theirs).  Say so, once a minute, instead of failing silently. */
static void check_silence(struct proxy *p)
{
	uint64_t now = p->now_ms;
	if (now - p->status_ms < SILENT_WARN_MS || now < p->silent_warn_ms)
		return;
	p->silent_warn_ms = now + 60000;
	mtr_log(LOG_WARN,
		"proxy %u: no STATUS from any server for %llu ms: servers down or unreachable, or a cluster.key or "
		"cluster.id that differs from theirs (look for 'failed authentication' in the servers' logs and "
		"transport.drop.integrity here)",
		p->cfg.id, (unsigned long long)(now - p->status_ms));
}

int pxnet_transport_drain(struct proxy *p)
{
	struct transport_msg msgs[RECV_BATCH];
	for (unsigned round = 0; round < RECV_ROUNDS; round++) {
		int n = transport_recv(p->t, msgs, RECV_BATCH);
		if (n < 0) {
			mtr_log(LOG_ERROR, "proxy: transport receive failed: %s", mtr_strerror(n));
			return n;
		}
		for (int i = 0; i < n; i++) {
			const struct transport_msg *m = &msgs[i];
			/* only the configured servers answer a proxy (DESIGN.md
			 * invariant 8: only a configured server speaks as one) */
			uint32_t j = m->hdr.sender;
			if (j >= PROXY_SERVER_IDS || !(p->servers & (UINT64_C(1) << j)) || p->saddr[j].ip != m->peer.ip ||
			    p->saddr[j].port != m->peer.port) {
				p->drops[m->hdr.type == WIRE_T_RESULT || m->hdr.type == WIRE_T_RESEND ||
						 m->hdr.type == WIRE_T_STATUS || m->hdr.type == WIRE_T_RESULT_UNKNOWN
					 ? PROXY_DROP_sender
					 : PROXY_DROP_type]++;
				continue;
			}
			switch (m->hdr.type) {
			case WIRE_T_RESULT:
				on_result(p, m->buf + WIRE_HDR_SIZE, m->hdr.length);
				break;
			case WIRE_T_RESULT_UNKNOWN:
				on_result_unknown(p, m->buf + WIRE_HDR_SIZE, m->hdr.length);
				break;
			case WIRE_T_RESEND:
				on_resend(p, m);
				break;
			case WIRE_T_STATUS:
				on_status(p, m);
				break;
			case WIRE_T_MEMBERSHIP:
				pxmem_on_answer(p, j, m->buf + WIRE_HDR_SIZE, m->hdr.length);
				break;
			default:
				p->drops[PROXY_DROP_type]++;
				break;
			}
		}
		if (n < (int)RECV_BATCH)
			break;
	}
	return 0;
}

/* ---- timers -------------------------------------------------------------- */

/* The proxy's counters to every server in STATS datagrams, shown there in
 * mtr_stats as "proxy ID". */
static void send_stats(struct proxy *p)
{
	struct wire_stats_list *o = calloc(1, sizeof *o);
	if (o == NULL)
		return;
	STATS_EACH(PROXY_STATS_MAP, "proxy", &p->st, wire_stats_list_put, o);
	METRICS_STAGES_STATS(PROXY_STAGE_MAP, "proxy", &p->stage, wire_stats_list_put, o);
	static const char *const drop_names[] = {
#define PROXY__DROP_NAME(name, text) "drop." #name,
		PROXY_DROP_MAP(PROXY__DROP_NAME)
#undef PROXY__DROP_NAME
	};
	for (unsigned r = 0; r < PROXY_DROP__COUNT; r++)
		stats_put(wire_stats_list_put, o, "proxy", drop_names[r], p->drops[r]);
	for (unsigned r = 0; r < PROXY_TLS__COUNT; r++)
		stats_put(wire_stats_list_put, o, "proxy.tls", pxtls_stat_name(r), p->tls_counts[r]);
	transport_stats_each(p->t, "transport", wire_stats_list_put, o);
	for (uint32_t j = 0; j < PROXY_SERVER_IDS; j++) {
		if (!(p->servers & (UINT64_C(1) << j)))
			continue;
		size_t idx = 0;
		for (;;) {
			uint8_t *b = sendq_slot(p, &p->tq);
			size_t n = wire_stats_build(b, p->mtu, &p->from, p->cfg.id, o->w, o->n, &idx);
			if (n == 0)
				break;
			sendq_commit(&p->tq, n, &p->saddr[j]);
		}
	}
	free(o);
}

/* The wait before asking for a result again after `tries` asks:
 * result_timeout, doubled per ask, at most RREQ_BACKOFF_MAX_MS (or
 * result_timeout when that is longer). */
static uint64_t ask_wait(const struct proxy *p, uint32_t tries)
{
	uint64_t w = p->cfg.result_timeout_ms;
	uint64_t cap = MAX((uint64_t)RREQ_BACKOFF_MAX_MS, w);
	for (uint32_t i = 0; i < tries && w < cap; i++)
		w *= 2;
	return MIN(w, cap);
}

/*
 * Late results: ask again for the results of writes missing for
 * ask_wait(tries), oldest first, at most RREQ_MAX per tick, in
 * RESULT_REQUEST datagrams that name each item by (seq, client, request),
 * each datagram to the next server in turn.  Given-up writes are asked for
 * too: an answer lets their seqs be released.  After a silence of the
 * servers (ask_now) every late result is asked for at once, and the
 * backoff starts again.
 */
static void ask_again(struct proxy *p)
{
	uint64_t now = p->now_ms, high = outbuf_high(&p->ob);
	uint64_t end = MIN(high, p->rel + RREQ_SCAN);
	struct wire_rreq_rec recs[WIRE_RREQ_MAX_RECS];
	uint32_t n = 0, asked = 0, dgrams = 0;
	int all = p->ask_now;
	p->ask_now = 0;
	for (uint64_t s = p->rel + 1; s <= end + 1 && asked < RREQ_MAX; s++) {
		if (s <= end) {
			struct wslot *w = &p->slots[s % p->cap];
			if (w->done || (!all && now - w->sent_ms < ask_wait(p, w->tries)))
				continue;
			if (all)
				w->tries = 0;
			recs[n++] = (struct wire_rreq_rec){.seq = s, .client = w->client, .request = w->request};
			w->sent_ms = now;
			if (w->tries < 32)
				w->tries++;
			asked++;
			if (n < WIRE_RREQ_MAX_RECS && asked < RREQ_MAX)
				continue;
		}
		/* send what is collected (full, the last asked, or the end) */
		struct wire_result_request rq = {.stream = p->stream, .nrec = n, .recs = recs};
		while (rq.nrec > 0) {
			uint32_t packed = 0;
			unsigned srv = pxnet_server_next(p, p->rr++);
			uint8_t *b = sendq_slot(p, &p->tq);
			size_t len = wire_result_request_build(b, p->mtu, &p->from, &rq, &packed);
			if (len == 0)
				break;
			sendq_commit(&p->tq, len, &p->saddr[srv]);
			rq.recs += packed;
			rq.nrec -= packed;
			dgrams++;
			p->st.result_requests++;
		}
		n = 0;
	}
	p->st.results_asked += asked;
	if (asked)
		mtr_log(LOG_DEBUG, "proxy: asked again for %u results from seq %llu (%u datagrams)", asked,
			(unsigned long long)(p->rel + 1), dgrams);
}

/*
 * proxy.write_timeout: a write without its result that long is answered
 * MTR_EUNKNOWN, so that its connection's later answers (which leave in
 * request order) are not held up for ever.  Its seq stays until it is known
 * applied (release_done).  Seqs are numbered in time order: the check stops
 * at the first one still young.
 */
static void give_up_late(struct proxy *p)
{
	uint64_t now = p->now_ms, high = outbuf_high(&p->ob);
	if (p->gu_next <= p->rel)
		p->gu_next = p->rel + 1;
	unsigned n = 0;
	for (; p->gu_next <= high; p->gu_next++) {
		struct wslot *w = &p->slots[p->gu_next % p->cap];
		if (w->done || w->gave_up)
			continue;
		if (now - w->first_ms < p->cfg.write_timeout_ms)
			break;
		w->gave_up = 1;
		if (w->pend) {
			p->st.write_timeouts++;
			n++;
		}
		answer_unknown(p, w, 0, "no result within proxy.write_timeout");
	}
	p->gu_unwarned += n;
	if (p->gu_unwarned && now >= p->gu_warn_ms) {
		mtr_log(LOG_WARN,
			"proxy: %llu writes got no result within proxy.write_timeout (%u ms): answered 'outcome "
			"unknown' (MTR_EUNKNOWN; counted in proxy.write_timeouts); servers down or unreachable?",
			(unsigned long long)p->gu_unwarned, p->cfg.write_timeout_ms);
		p->gu_unwarned = 0;
		p->gu_warn_ms = now + GIVE_UP_WARN_MS;
	}
	if (n)
		release_done(p);
}

void pxnet_timers(struct proxy *p)
{
	uint64_t now = p->now_ms;
	uint64_t high = outbuf_high(&p->ob);
	int waiting = high > p->rel;
	if (now >= p->next_hb_ms) {
		uint8_t *b = sendq_slot(p, &p->gq);
		struct wire_heartbeat hb = {.stream = p->stream, .high = high};
		sendq_commit(&p->gq, wire_heartbeat_build(b, &p->from, &hb), NULL);
		p->next_hb_ms = now + (waiting ? p->cfg.heartbeat_ms : IDLE_HEARTBEAT_MS);
	}
	if (now >= p->next_stats_ms) {
		send_stats(p);
		p->next_stats_ms = now + STATS_PERIOD_MS;
		check_silence(p);
	}
	give_up_late(p);
	if (waiting && (now >= p->next_rr_ms || p->ask_now)) {
		ask_again(p);
		p->next_rr_ms = now + MAX(p->cfg.result_timeout_ms / 4, 1u);
	}
	/*
	 * Reads (doc/proxy.md "Reads"): every read_timeout / 5 without an
	 * answer the READ is sent again: to the same server while it is alive
	 * (the first datagram may have been lost; a server that holds the read
	 * ignores the copy), to another one only when it is dead, or behind
	 * the read's instance while another is not (the first is told
	 * CANCEL_READ).  So a read runs on one server at a time.  At
	 * read_timeout it fails, and its server is told to stop it.
	 */
	uint64_t retry = MAX(p->cfg.read_timeout_ms / 5, 1u);
	while (p->rhead && now - p->rhead->sent_ms >= retry) {
		struct pend *q = p->rhead;
		pxnet_read_unlink(p, q);
		if (now - q->first_ms >= p->cfg.read_timeout_ms) {
			char msg[120];
			snprintf(msg, sizeof msg,
				 "the read exceeded its deadline of %u ms (proxy.read_timeout) without an answer and was cancelled",
				 p->cfg.read_timeout_ms);
			pxnet_read_cancel(p, q);
			p->st.read_timeouts++;
			pxcli_pend_complete(p, q, MTR_ETIMEDOUT, msg, 0, NULL, 0, 0);
			continue;
		}
		unsigned cur = q->server, next = cur;
		if (!srv_alive(p, cur)) {
			next = pxnet_read_pick(p, q->min_inst, cur + 1);
		} else if (p->srv[cur].applied < q->min_inst) {
			unsigned k = pxnet_read_pick(p, q->min_inst, cur + 1);
			if (srv_alive(p, k) && p->srv[k].applied >= q->min_inst)
				next = k;
		}
		if (next != cur) {
			pxnet_read_cancel(p, q);
			q->server = next;
			p->st.read_moves++;
		} else {
			p->st.read_repeats++;
		}
		q->hnext = p->rtab[q->rid % RHASH];
		p->rtab[q->rid % RHASH] = q;
		pxnet_read_list_append(p, q);
		pxnet_read_send(p, q);
	}
}

int pxnet_next_timeout(struct proxy *p)
{
	if (p->batch_first < outbuf_next_seq(&p->ob) || p->nrstage || p->tq.n)
		return 0;
	uint64_t now = proxy_mono_ms(), t = p->next_hb_ms;
	if (outbuf_high(&p->ob) > p->rel && p->next_rr_ms < t)
		t = p->next_rr_ms;
	if (p->rhead) {
		uint64_t r = p->rhead->sent_ms + MAX(p->cfg.read_timeout_ms / 5, 1u);
		if (r < t)
			t = r;
	}
	return t <= now ? 0 : (int)MIN(t - now, 1000u); /* dpdk: proxy_run waits with transport_wait_fd */
}
