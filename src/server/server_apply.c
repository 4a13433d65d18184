/*
 * server_apply.c - the apply side of the server object (server_int.h): the
 * apply queue (a chosen instance is queued by the Paxos core's chosen()
 * callback and resolved, i.e. given copies of its items, by the network
 * thread), the apply thread that runs each instance on the replica
 * database, the reader threads that run READ requests, and the way back:
 * results are encoded into done records, posted to the outbox, and sent by
 * the network thread as RESULT datagrams (applied instances are kept in the
 * result cache for RESULT_REQUEST).  Also the start and stop of the apply
 * and reader threads.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "batch.h"
#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "pitr.h"
#include "result.h"
#include "server.h"
#include "server_int.h"
#include "util.h"
#include "wire.h"
#include "wire_server.h"

/* ---- apply queue ---- */

/* The chosen history for point-in-time restore (pitr.h): one record per
 * instance in the item log, durable with the next ingest_sync of items or
 * the idle one within a second (server.c), never with a sync of its own:
 * that was one more fdatasync per write (doc/storage.md "History records").  A record
 * that cannot be written leaves a gap that a restore reports; it is
 * counted (ingest.log_failed) and told at most once a minute. */
static void log_chosen(struct server *s, uint64_t inst, const struct batch *value)
{
	size_t cap = PITR_RECORD_HDR + batch_encoded_size(value);
	uint8_t *buf = malloc(cap);
	int n = buf ? pitr_record_encode(buf, cap, (uint64_t)now_wall_ms(), value) : MTR_ENOMEM;
	int rc = n < 0 ? n : ingest_log_record(s->ing, inst, buf, (uint32_t)n);
	free(buf);
	if (rc != 0 && s->now_ms >= s->history_warn_ms) {
		s->history_warn_ms = s->now_ms + 60000;
		mtr_log(LOG_WARN,
			"server %u: instance %llu not written to the chosen history (%s): a point-in-time restore "
			"from this data.dir cannot pass it",
			s->cfg.id, (unsigned long long)inst, mtr_strerror(rc));
	}
}

void srvapply_px_chosen(void *data, uint64_t inst, const struct batch *value)
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
	e->chosen_ns = now_mono_ns();
	if (s->commit_ns != 0 && value->n > 0)
		metrics_hist_observe(&s->stage.order, (e->chosen_ns - s->commit_ns) / 1000u);
	if (inst == s->propose_inst && s->propose_ns != 0) {
		if (value->n > 0)
			metrics_hist_observe(&s->stage.round, (e->chosen_ns - s->propose_ns) / 1000u);
		s->propose_ns = 0;
	}
	log_chosen(s, inst, value);
	for (uint32_t i = 0; i < value->n; i++)
		srvnet_stream_find(s, value->r[i].stream, 1);
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

/* Copy the items of the first unresolved queue entries out of the ingest
 * store (in order; stop at the first whose items are not all held, and ask
 * for those). */
void srvapply_queue_clear(struct server *s)
{
	while (s->qhead) {
		struct aq_entry *e = s->qhead;
		s->qhead = e->next;
		batch_free(&e->b);
		free(e->buf);
		free(e);
	}
	s->qtail = s->qresolve = NULL;
	s->qlen = 0;
}

void srvapply_resolve_queue(struct server *s)
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

void srvapply_done_free(struct done *d)
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
	return mtr_grow(&d->bytes, &d->bcap, d->blen + bytes, 4096) == 0 ? 0 : MTR_ENOMEM;
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
void srvapply_send_results(struct server *s, uint64_t stream, const struct wire_result *r, size_t n,
			   const struct transport_addr *to)
{
	const struct clusterconf *cc = &s->cfg.cc;
	size_t idx = 0;
	uint32_t off = 0;
	while (idx < n) {
		uint8_t *b = srvnet_out_buf(s);
		size_t len = wire_result_build(b, cc->mtu, &s->from, stream, r, n, &idx, &off);
		if (len == 0)
			break;
		srvnet_out_push(s, len, to);
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
		struct stream *st = srvnet_stream_find(s, stream, 0);
		size_t k = 0;
		while (i < d->n && d->it[i].stream == stream) {
			const struct res_item *ri = &d->it[i];
			wr[k++] = (struct wire_result){.seq = ri->seq, .request = ri->request, .instance = d->inst,
						       .data = d->bytes + ri->off, .len = ri->len};
			i++;
			if (k == ARRAY_SIZE(wr)) {
				if (st && st->has_proxy)
					srvapply_send_results(s, stream, wr, k, &st->proxy);
				k = 0;
			}
		}
		if (k && st && st->has_proxy)
			srvapply_send_results(s, stream, wr, k, &st->proxy);
	}
}

/* Send the results a reader looked up (RESULT) and the items it found
 * applied without a kept result (RESULT_UNKNOWN) to the asker. */
static void send_looked_up(struct server *s, const struct done *d)
{
	const struct clusterconf *cc = &s->cfg.cc;
	struct wire_result wr[WIRE_RREQ_MAX_RECS];
	struct wire_runk_rec lost[WIRE_RREQ_MAX_RECS];
	size_t nwr = 0;
	uint32_t nlost = 0;
	for (size_t i = 0; i < d->n && i < WIRE_RREQ_MAX_RECS; i++) {
		const struct res_item *ri = &d->it[i];
		if (ri->lost)
			lost[nlost++] = (struct wire_runk_rec){.seq = ri->seq, .request = ri->request};
		else
			wr[nwr++] = (struct wire_result){.seq = ri->seq, .request = ri->request, .instance = d->seen,
							 .data = d->bytes + ri->off, .len = ri->len};
	}
	s->results_kept += nwr;
	s->results_unknown += nlost;
	if (nwr)
		srvapply_send_results(s, d->stream, wr, nwr, &d->to);
	struct wire_result_unknown u = {.stream = d->stream, .instance = d->seen, .nrec = nlost, .recs = lost};
	while (u.nrec > 0) {
		uint32_t packed = 0;
		uint8_t *b = srvnet_out_buf(s);
		size_t n = wire_result_unknown_build(b, cc->mtu, &s->from, &u, &packed);
		if (n == 0)
			break;
		srvnet_out_push(s, n, &d->to);
		u.recs += packed;
		u.nrec -= packed;
	}
	if (nlost)
		mtr_log(LOG_INFO, "server %u: %u results of %016llx asked for again are applied here but no longer kept: "
			"answered RESULT_UNKNOWN", s->cfg.id, nlost, (unsigned long long)d->stream);
}

static void cache_put(struct server *s, struct done *d)
{
	if (s->ccap == 0) {
		srvapply_done_free(d);
		return;
	}
	if (s->cn == s->ccap) {
		srvapply_done_free(s->cache[s->chead]);
		s->cache[s->chead] = d;
		s->chead = (s->chead + 1) % s->ccap;
	} else {
		s->cache[(s->chead + s->cn) % s->ccap] = d;
		s->cn++;
	}
}

void srvapply_drain_outbox(struct server *s)
{
	pthread_mutex_lock(&s->omu);
	struct done *d = s->ohead;
	s->ohead = s->otail = NULL;
	pthread_mutex_unlock(&s->omu);
	while (d) {
		struct done *next = d->next;
		d->next = NULL;
		if (d->lookup) {
			send_looked_up(s, d);
			srvapply_done_free(d);
		} else if (d->inst != 0) {
			send_done(s, d);
			if (d->n > 0 && d->applied_ns != 0)
				metrics_hist_observe(&s->stage.result, (now_mono_ns() - d->applied_ns) / 1000u);
			if (d->inst > s->applied_net)
				s->applied_net = d->inst;
			s->items_applied += d->n;
			cache_put(s, d);
		} else {
			if (d->n == 1) {
				struct wire_result wr = {.seq = 0, .request = d->rid, .instance = d->seen,
							 .data = d->bytes + d->it[0].off, .len = d->it[0].len};
				srvapply_send_results(s, d->stream, &wr, 1, &d->to);
			}
			srvapply_done_free(d);
		}
		d = next;
	}
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
	r->steps = r->max_item_steps = 0;
	for (size_t i = 0; i < nitems; i++) {
		long long st = apply_item_steps(s->ap, i);
		r->steps += st;
		if (st > r->max_item_steps)
			r->max_item_steps = st;
	}
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
	mtr_thread_name("mtr-apply");
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
			/* the items were checked when they came in (ingest) */
			if (!mtr_assert(w > 0, "server %u: instance %llu holds a malformed item at byte %zu", s->cfg.id,
					(unsigned long long)e->inst, off))
				goto fatal;
			off += (size_t)w;
			n++;
		}
		if (e->b.conf != NULL) {
			/* a configuration: recorded with the instance (mtr_conf) */
			struct batch cb = {.conf = e->b.conf};
			uint8_t cbuf[BATCH_HDR_SIZE + 1 + BATCH_CONF_MAX * (3 + BATCH_ADDR_MAX)];
			int clen = batch_encode(&cb, cbuf, sizeof cbuf);
			if (clen < 0 || apply_set_conf(s->ap, e->inst, cbuf, (size_t)clen) != 0)
				goto fatal;
		}
		struct done *d = calloc(1, sizeof *d);
		if (d == NULL)
			goto fatal;
		d->inst = e->inst;
		struct apply_ctx c = {.s = s, .d = d};
		uint64_t t0 = now_mono_ns();
		if (n > 0)
			metrics_hist_observe(&s->stage.queue, (t0 - e->chosen_ns) / 1000u);
		atomic_store(&s->apply_busy_ms, t0 / 1000000u ? t0 / 1000000u : 1); /* /livez */
		int rc = apply_instance(s->ap, e->inst, items, n, apply_cb, &c);
		uint64_t us = (now_mono_ns() - t0) / 1000u;
		atomic_store(&s->apply_busy_ms, 0);
		/* Invariant 5: the core delivers instances in order, each once, so
		 * the queue's next is always the replica's next (a duplicate
		 * comes only from a snapshot installed meanwhile).  Skipping one
		 * would be a gap: abort in debug builds; in release it stops. */
		mtr_assert(rc != MTR_EINVAL, "server %u: instance %llu is not the next after applied %llu", s->cfg.id,
			   (unsigned long long)e->inst, (unsigned long long)apply_applied(s->ap));
		if (rc == MTR_EDUPLICATE) {
			srvapply_done_free(d);
		} else if (rc == MTR_ECLOSED) {
			/* the stop interrupted it (srvapply_stop_threads): rolled
			 * back, nothing recorded; the entry stays for queue_clear */
			mtr_log(LOG_INFO, "server %u: instance %llu interrupted by the stop; applied again after a restart",
				s->cfg.id, (unsigned long long)e->inst);
			srvapply_done_free(d);
			break;
		} else if (rc != 0) {
			mtr_log(LOG_ERROR, "server %u: applying instance %llu failed: %s", s->cfg.id,
				(unsigned long long)e->inst, mtr_strerror(rc));
			srvapply_done_free(d);
			goto fatal;
		} else {
			if (c.err != 0)
				mtr_log(LOG_WARN, "server %u: results of instance %llu not kept: %s", s->cfg.id,
					(unsigned long long)e->inst, mtr_strerror(c.err));
			note_recent(s, e, n, us);
			metrics_hist_observe(&s->apply_hist, us);
			d->applied_ns = now_mono_ns();
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

/* ---- reader threads ---- */

_Static_assert(RESULT_SQLITE_INTERRUPT == SQLITE_INTERRUPT, "a stopped read's code is SQLite's");

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

/* A RESULT_REQUEST's records the result cache missed: look them up in
 * mtr_requests on the reader's connection and post what was found (RESULT)
 * or is applied but not kept (RESULT_UNKNOWN) to the outbox; an item not
 * applied here gets no answer (another replica may have it, and the proxy
 * gives up after proxy.write_timeout). */
static void reader_lookup(struct server *s, struct apply_reader *db, struct read_req *q)
{
	uint64_t seen = 0;
	int rc = db ? apply_lookup(db, q->look, q->nlook, &seen) : MTR_EIO;
	if (rc != 0) {
		/* at most once a minute (DROP_WARN_MS): the reader connection is
		 * broken, READs fail alike */
		uint64_t now = now_mono_ns() / 1000000u, next = atomic_load(&s->lookup_warn_ms);
		if (now >= next && atomic_compare_exchange_strong(&s->lookup_warn_ms, &next, now + DROP_WARN_MS))
			mtr_log(LOG_WARN, "server %u: looking up %u results of %016llx failed: %s (the next failures "
				"of this minute are not logged)", s->cfg.id, q->nlook, (unsigned long long)q->stream,
				mtr_strerror(rc));
		return;
	}
	struct done *d = calloc(1, sizeof *d);
	for (uint32_t i = 0; i < q->nlook; i++) {
		struct apply_lookup *x = &q->look[i];
		if (d != NULL && x->state != APPLY_LOOKUP_UNAPPLIED && done_reserve(d, x->len) == 0) {
			d->it[d->n++] = (struct res_item){.stream = x->stream, .seq = x->seq, .request = x->request,
							  .off = d->blen, .len = x->len,
							  .lost = x->state == APPLY_LOOKUP_LOST};
			if (x->len)
				memcpy(d->bytes + d->blen, x->bytes, x->len);
			d->blen += x->len;
		}
		free(x->bytes);
		x->bytes = NULL;
	}
	if (d == NULL)
		return;
	if (d->n == 0) {
		srvapply_done_free(d);
		return;
	}
	d->lookup = 1;
	d->to = q->from;
	d->stream = q->stream;
	d->seen = seen;
	outbox_post(s, d);
}

/* The answer of a read that did not run: one SQLite error for its request. */
static void read_fail(struct done *d, const struct read_req *q, int code, const char *msg)
{
	long w = 0;
	if (done_reserve(d, 512) == 0)
		w = result_encode_error(code, msg, d->bytes, d->bcap);
	if (w > 0) {
		d->it[0] = (struct res_item){.stream = q->stream, .request = q->rid, .off = 0, .len = (uint32_t)w};
		d->n = 1;
		d->blen = (size_t)w;
	}
}

/*
 * Run one read on the reader db with its deadline and the slot's cancel
 * flag; its answer goes into d.  Returns why it was stopped early
 * (APPLY_READ_*) or 0.
 */
static int read_run(struct server *s, struct reader_slot *sl, struct apply_reader *db, const struct read_req *q,
		    struct done *d)
{
	char msg[200];
	int why = 0;
	int rc = now_mono_ns() >= q->deadline_ns ? MTR_ETIMEDOUT
		 : apply_wait_read(s->ap, q->min_inst, MIN(q->deadline_ns, now_mono_ns() + READ_WAIT_MS * 1000000ull),
				   &sl->cancel);
	struct wire_item it;
	if (rc == 0 && db == NULL)
		rc = MTR_EIO;
	if (rc == 0 && wire_item_decode(q->item, q->len, &it) != (long)q->len)
		rc = MTR_EMALFORMED;
	if (rc == 0) {
		struct read_ctx c = {.d = d};
		uint64_t seen = 0;
		apply_reader_limits(db, q->deadline_ns, q->deadline_ms, &sl->cancel);
		rc = apply_read(db, &it, &seen, read_cb, &c);
		apply_reader_limits(db, 0, 0, NULL);
		why = apply_reader_stopped(db);
		d->seen = seen;
		if (rc == 0 && c.err != 0)
			rc = c.err;
	}
	if (rc == MTR_EABORT || rc == MTR_ECLOSED)
		why = atomic_load(&sl->cancel) ? atomic_load(&sl->cancel) : APPLY_READ_STOPPING;
	else if (rc == MTR_ETIMEDOUT && now_mono_ns() >= q->deadline_ns)
		why = APPLY_READ_DEADLINE;
	if (rc != 0 && d->n == 0) {
		int code = SQLITE_ERROR;
		if (why == APPLY_READ_DEADLINE) {
			code = SQLITE_INTERRUPT;
			snprintf(msg, sizeof msg, "read exceeded its deadline of %u ms (proxy.read_timeout) before it ran%s",
				 q->deadline_ms, q->min_inst ? ": this replica had not applied the instance it needs" : "");
		} else if (why == APPLY_READ_STOPPING) {
			code = SQLITE_INTERRUPT;
			snprintf(msg, sizeof msg, "read cancelled: the server is stopping; retry");
		} else if (why == APPLY_READ_CANCELLED) {
			code = SQLITE_INTERRUPT;
			snprintf(msg, sizeof msg, "read cancelled");
		} else if (rc == MTR_ETIMEDOUT) {
			code = SQLITE_BUSY;
			snprintf(msg, sizeof msg, "this replica has not reached instance %llu within %d ms; retry",
				 (unsigned long long)q->min_inst, READ_WAIT_MS);
		} else {
			snprintf(msg, sizeof msg, "the read could not run: %s", mtr_strerror(rc));
		}
		d->seen = apply_applied(s->ap);
		read_fail(d, q, code, msg);
	}
	return why;
}

/*
 * Send a read's answer from the reader thread itself (transport_send_to_mt):
 * the RESULT datagrams leave at once, without waking the network thread
 * through the outbox (a context switch per read, the largest cost of a
 * point read on a busy machine).  0, or MTR_ENOTSUP (dpdk) and any send
 * failure: the caller posts d to the outbox instead.
 */
#define READ_SEND_SLOTS 8u
static int read_send_direct(struct server *s, uint8_t *buf, const struct done *d)
{
	if (buf == NULL || d->n != 1)
		return MTR_ENOTSUP;
	size_t mtu = s->cfg.cc.mtu;
	struct wire_result wr = {.seq = 0, .request = d->rid, .instance = d->seen, .data = d->bytes + d->it[0].off,
				 .len = d->it[0].len};
	struct transport_msg m[READ_SEND_SLOTS];
	size_t idx = 0;
	uint32_t off = 0;
	int sent = 0;
	while (idx < 1) {
		unsigned k = 0;
		for (; k < READ_SEND_SLOTS && idx < 1; k++) {
			size_t len = wire_result_build(buf + k * mtu, mtu, &s->from, d->stream, &wr, 1, &idx, &off);
			if (len == 0)
				break;
			m[k] = (struct transport_msg){.buf = buf + k * mtu, .len = (uint32_t)len, .peer = d->to};
		}
		if (k == 0)
			break;
		int rc = transport_send_to_mt(s->t, m, k);
		if (rc < 0)
			/* nothing sent yet: the outbox does it; else lost
			 * like a datagram (the proxy repeats the READ) */
			return sent ? 0 : rc;
		sent = 1;
	}
	return 0;
}

static int addr_eq(const struct transport_addr *a, const struct transport_addr *b);

/* Keep a quick read's answer for srvapply_quick_flush: 0, or MTR_ETOOBIG /
 * MTR_ENOMEM (send it at once). */
static int quick_keep(struct server *s, const struct wire_read *r, const struct transport_addr *from, uint64_t seen,
		      const uint8_t *bytes, uint32_t len)
{
	if (len > QUICK_PACK_MAX)
		return MTR_ETOOBIG;
	if (s->nqans == s->cqans) {
		size_t nc = s->cqans ? s->cqans * 2 : 64;
		struct quick_ans *p = realloc(s->qans, nc * sizeof *p);
		if (p == NULL)
			return MTR_ENOMEM;
		s->qans = p;
		s->cqans = nc;
	}
	if (s->qblen + len > s->qbcap) {
		size_t nc = MAX(s->qbcap * 2, s->qblen + len + 4096);
		uint8_t *p = realloc(s->qbytes, nc);
		if (p == NULL)
			return MTR_ENOMEM;
		s->qbytes = p;
		s->qbcap = nc;
	}
	memcpy(s->qbytes + s->qblen, bytes, len);
	s->qans[s->nqans++] = (struct quick_ans){.stream = r->stream, .rid = r->rid, .seen = seen, .to = *from,
						 .off = s->qblen, .len = len};
	s->qblen += len;
	return 0;
}

void srvapply_quick_flush(struct server *s)
{
	struct wire_result wr[64];
	for (size_t i = 0; i < s->nqans; i++) {
		struct quick_ans *a = &s->qans[i];
		if (a->len == UINT32_MAX)
			continue; /* sent with an earlier one */
		uint64_t stream = a->stream;
		struct transport_addr to = a->to;
		size_t k = 0;
		for (size_t j = i; j < s->nqans; j++) {
			struct quick_ans *b = &s->qans[j];
			if (b->len == UINT32_MAX || b->stream != stream || !addr_eq(&b->to, &to))
				continue;
			wr[k++] = (struct wire_result){.seq = 0, .request = b->rid, .instance = b->seen,
						       .data = s->qbytes + b->off, .len = b->len};
			b->len = UINT32_MAX;
			if (k == ARRAY_SIZE(wr)) {
				srvapply_send_results(s, stream, wr, k, &to);
				k = 0;
			}
		}
		if (k)
			srvapply_send_results(s, stream, wr, k, &to);
	}
	s->nqans = 0;
	s->qblen = 0;
}

/* CPU time of the calling thread, ns. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int srvapply_read_quick(struct server *s, const struct wire_read *r, const struct transport_addr *from,
			uint64_t deadline_ns)
{
	if (s->qreader == NULL || s->now_ms < s->quick_off_ms || apply_applied(s->ap) < r->min_instance)
		return MTR_EAGAIN;
	if (s->quick_cpu0 == 0)
		s->quick_cpu0 = thread_cpu_ns() | 1u;
	if (s->quick_ns >= QUICK_ROUND_US * 1000ull) {
		/* wall time: on a loaded machine mostly other processes' turns;
		 * what counts is what this thread spent in the round */
		if (!s->quick_spent)
			s->quick_ns = thread_cpu_ns() - s->quick_cpu0;
		s->quick_spent = 1;
		if (s->quick_ns >= QUICK_ROUND_US * 1000ull)
			return MTR_EAGAIN;
		s->quick_spent = 0;
	}
	if (r->item_len > s->qitem_cap) {
		uint8_t *p = realloc(s->qitem, r->item_len);
		if (p == NULL)
			return MTR_EAGAIN;
		s->qitem = p;
		s->qitem_cap = r->item_len;
	}
	memcpy(s->qitem, r->item, r->item_len);
	/* not part of the stream's numbering: seq 0 accepted (as on_read) */
	if (r->item_len >= 24 && ld64(s->qitem + 16) == 0)
		st64(s->qitem + 16, 1);
	struct wire_item it;
	if (wire_item_decode(s->qitem, r->item_len, &it) != (long)r->item_len)
		return MTR_EAGAIN; /* a reader answers it with the error */
	struct done *d = s->qdone;
	d->n = 0;
	d->blen = 0;
	struct read_ctx c = {.d = d};
	uint64_t seen = 0, t0 = now_mono_ns();
	apply_reader_limits(s->qreader, deadline_ns, r->deadline_ms, NULL);
	int rc = apply_read(s->qreader, &it, &seen, read_cb, &c);
	apply_reader_limits(s->qreader, 0, 0, NULL);
	int why = apply_reader_stopped(s->qreader);
	uint64_t dt = now_mono_ns() - t0;
	s->quick_ns += dt;
	/* slow: in wall time, and in this thread's time too (not merely a
	 * turn of another process on a loaded machine) */
	if (dt > QUICK_SLOW_US * 1000ull && thread_cpu_ns() - s->quick_cpu0 > QUICK_SLOW_US * 1000ull) {
		s->quick_off_ms = s->now_ms + QUICK_OFF_MS;
		mtr_log(LOG_DEBUG, "server %u: a quick read took %llu us: reads go to the reader threads for %d ms",
			s->cfg.id, (unsigned long long)(dt / 1000u), QUICK_OFF_MS);
	}
	if (rc != 0 || c.err != 0 || why == APPLY_READ_LONG || d->n != 1) {
		pthread_mutex_lock(&s->rmu);
		s->rst.handed++;
		pthread_mutex_unlock(&s->rmu);
		return MTR_EAGAIN;
	}
	if (quick_keep(s, r, from, seen, d->bytes + d->it[0].off, d->it[0].len) != 0) {
		struct wire_result wr = {.seq = 0, .request = r->rid, .instance = seen,
					 .data = d->bytes + d->it[0].off, .len = d->it[0].len};
		srvapply_send_results(s, r->stream, &wr, 1, from);
	}
	pthread_mutex_lock(&s->rmu);
	s->rst.quick++;
	if (why == APPLY_READ_DEADLINE)
		s->rst.deadline++;
	pthread_mutex_unlock(&s->rmu);
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader_slot *sl = arg;
	mtr_thread_name("mtr-reader");
	struct server *s = sl->s;
	struct apply_reader *db = NULL;
	if (apply_reader_open(s->ap, &db) != 0)
		mtr_log(LOG_ERROR, "server %u: no reader connection: READ requests will fail", s->cfg.id);
	/* datagrams of the answers this thread sends itself (none: the outbox) */
	uint8_t *sbuf = transport_send_to_mt(s->t, NULL, 0) == 0 ? malloc(READ_SEND_SLOTS * s->cfg.cc.mtu) : NULL;
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
		s->rst.queued = s->rlen;
		if (q->look != NULL) { /* results looked up (RESULT_REQUEST): not a read */
			pthread_mutex_unlock(&s->rmu);
			reader_lookup(s, db, q);
			free(q->look);
			free(q);
			continue;
		}
		sl->stream = q->stream;
		sl->rid = q->rid;
		sl->from = q->from;
		atomic_store(&sl->cancel, 0);
		s->rst.run++;
		s->rst.running++;
		pthread_mutex_unlock(&s->rmu);

		struct done *d = calloc(1, sizeof *d);
		int why = 0;
		if (d != NULL) {
			d->to = q->from;
			d->stream = q->stream;
			d->rid = q->rid;
			why = read_run(s, sl, db, q, d);
		}
		pthread_mutex_lock(&s->rmu);
		sl->rid = 0;
		s->rst.running--;
		if (why == APPLY_READ_CANCELLED)
			s->rst.cancelled++;
		else if (why == APPLY_READ_DEADLINE)
			s->rst.deadline++;
		else if (why == APPLY_READ_STOPPING)
			s->rst.stopped++;
		pthread_mutex_unlock(&s->rmu);
		if (why)
			mtr_log(LOG_DEBUG, "server %u: read %llu of stream %016llx stopped (%s)", s->cfg.id,
				(unsigned long long)q->rid, (unsigned long long)q->stream,
				why == APPLY_READ_CANCELLED ? "cancelled" : why == APPLY_READ_DEADLINE ? "deadline" : "stopping");
		if (d != NULL && why == APPLY_READ_CANCELLED)
			srvapply_done_free(d); /* its proxy no longer waits for it */
		else if (d != NULL && read_send_direct(s, sbuf, d) == 0)
			srvapply_done_free(d);
		else if (d != NULL)
			outbox_post(s, d);
		free(q->item);
		free(q);
	}
	free(sbuf);
	apply_reader_close(db);
	return NULL;
}

static int addr_eq(const struct transport_addr *a, const struct transport_addr *b)
{
	return a->ip == b->ip && a->port == b->port;
}

/* Network thread: a READ arrived.  Ignore it when the same read (stream,
 * rid from the same address) still waits or runs here: a repeat sent in
 * case the first datagram was lost.  Else queue it (0), or MTR_EFULL. */
int srvapply_read_queue(struct server *s, struct read_req *q)
{
	int rc = 0;
	pthread_mutex_lock(&s->rmu);
	/* a READ the proxy repeated while this server still holds it is one
	 * read (a lookup of results, q->look, is never a repeat) */
	for (const struct read_req *o = s->rhead; o && rc == 0 && q->look == NULL; o = o->next)
		if (o->look == NULL && o->rid == q->rid && o->stream == q->stream && addr_eq(&o->from, &q->from))
			rc = MTR_EDUPLICATE;
	for (int i = 0; i < s->reader_started && rc == 0 && q->look == NULL; i++) {
		const struct reader_slot *sl = &s->readers[i];
		if (sl->rid == q->rid && sl->stream == q->stream && addr_eq(&sl->from, &q->from))
			rc = MTR_EDUPLICATE;
	}
	if (rc == 0 && s->rlen >= READQ_MAX)
		rc = MTR_EFULL;
	if (rc == MTR_EDUPLICATE) {
		s->rst.repeats++;
	} else if (rc == 0) {
		if (s->rtail)
			s->rtail->next = q;
		else
			s->rhead = q;
		s->rtail = q;
		s->rlen++;
		s->rst.queued = s->rlen;
		pthread_cond_signal(&s->rcv);
	}
	pthread_mutex_unlock(&s->rmu);
	if (rc == MTR_EDUPLICATE) {
		free(q->item);
		free(q);
		return 0;
	}
	return rc;
}

void srvapply_read_cancel(struct server *s, uint64_t stream, uint64_t rid, const struct transport_addr *from)
{
	struct read_req *gone = NULL;
	int woke = 0;
	pthread_mutex_lock(&s->rmu);
	for (struct read_req **pp = &s->rhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
		struct read_req *o = *pp;
		if (o->look == NULL && o->rid == rid && o->stream == stream && addr_eq(&o->from, from)) {
			*pp = o->next;
			if (s->rtail == o)
				s->rtail = prev;
			s->rlen--;
			s->rst.queued = s->rlen;
			s->rst.cancelled++;
			gone = o;
			break;
		}
	}
	for (int i = 0; i < s->reader_started && !gone; i++) {
		struct reader_slot *sl = &s->readers[i];
		if (sl->rid == rid && sl->stream == stream && addr_eq(&sl->from, from)) {
			atomic_store(&sl->cancel, APPLY_READ_CANCELLED);
			woke = 1;
		}
	}
	pthread_mutex_unlock(&s->rmu);
	if (woke)
		apply_wake(s->ap); /* in case it waits for its instance */
	if (gone) {
		free(gone->item);
		free(gone);
	}
}

void srvapply_read_stats(struct server *s, struct server_read_stats *out)
{
	pthread_mutex_lock(&s->rmu);
	*out = s->rst;
	pthread_mutex_unlock(&s->rmu);
}

void srvapply_stop_threads(struct server *s)
{
	pthread_mutex_lock(&s->qmu);
	s->qstop = 1;
	pthread_cond_broadcast(&s->qcv);
	pthread_mutex_unlock(&s->qmu);
	/* An item may run for as long as its budget allows (seconds): the
	 * apply thread abandons the instance at the next step grain, rolled
	 * back; a restart applies it again (doc/server.md "Stopping"). */
	pthread_mutex_lock(&s->rmu);
	s->rstop = 1;
	/* running reads stop at their next grain of VM steps, waiting ones at once */
	for (int i = 0; i < s->reader_started; i++)
		atomic_store(&s->readers[i].cancel, APPLY_READ_STOPPING);
	pthread_cond_broadcast(&s->rcv);
	pthread_mutex_unlock(&s->rmu);
	apply_interrupt(s->ap, 1); /* also wakes the reads waiting for an instance */
	if (s->apply_started)
		pthread_join(s->apply_th, NULL);
	for (int i = 0; i < s->reader_started; i++)
		pthread_join(s->readers[i].th, NULL);
	s->apply_started = s->reader_started = 0;
	apply_reader_close(s->qreader); /* on s->ap, which may be replaced */
	s->qreader = NULL;
}

/* Start the apply and reader threads with every signal blocked (signals
 * are the caller's thread's business: metronomed's handler calls
 * server_stop). */
int srvapply_start_threads(struct server *s)
{
	sigset_t all, old;
	sigfillset(&all);
	int nreaders = s->cfg.readers ? (int)MIN(s->cfg.readers, READERS_MAX) : 4;
	if (s->readers == NULL && (s->readers = calloc((size_t)nreaders, sizeof *s->readers)) == NULL)
		return MTR_ENOMEM;
	apply_interrupt(s->ap, 0);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&s->apply_th, NULL, apply_main, s) == 0)
		s->apply_started = 1;
	while (s->apply_started && s->reader_started < nreaders) {
		struct reader_slot *sl = &s->readers[s->reader_started];
		sl->s = s;
		sl->rid = 0;
		atomic_store(&sl->cancel, 0);
		if (pthread_create(&sl->th, NULL, reader_main, sl) != 0)
			break;
		s->reader_started++;
	}
	if (s->snap_lfd >= 0 && !s->snap_srv_started && pthread_create(&s->snap_srv_th, NULL, srvsnap_server_main, s) == 0)
		s->snap_srv_started = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (s->qdone == NULL)
		s->qdone = calloc(1, sizeof *s->qdone);
	if (s->qreader == NULL && s->qdone != NULL && apply_reader_open(s->ap, &s->qreader) == 0)
		apply_reader_quick(s->qreader, QUICK_READ_US * 1000ull);
	if (!s->reader_started) {
		srvapply_stop_threads(s);
		return MTR_ENOMEM;
	}
	return 0;
}
