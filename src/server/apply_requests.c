/*
 * apply_requests.c - resends (doc/apply.md "Resends"): the result of every
 * write is kept per (client, request) in mtr_requests, in the instance's own
 * transaction, so that a write resent after a proxy failover is answered
 * with its first result instead of running again; a client's floor drops
 * what it will never ask for again.  The same rows answer a proxy whose
 * RESULT datagrams were lost (apply_rq_lookup, on a reader connection).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "apply.h"
#include "apply_int.h"
#include "detvfs.h"
#include "log.h"
#include "metronome.h"
#include "result.h"
#include "util.h"

/* Empty the apply thread's cache of mtr_requests (rq_client): it is
 * loaded again from the table as clients come. */
void apply_rq_forget_all(struct apply *a)
{
	for (size_t k = 0; k < a->rq_cap; k++)
		free(a->rq[k].buf);
	if (a->rq)
		memset(a->rq, 0, a->rq_cap * sizeof *a->rq);
	a->rq_n = 0;
}

/* ---- resends: mtr_requests (doc/apply.md "Resends") ---- */

#define RQ_CACHE_MAX 65536 /* clients cached; beyond, the cache starts again */

static void rq_bind_ids(sqlite3_stmt *st, uint64_t client, uint64_t request)
{
	sqlite3_bind_int64(st, 1, (sqlite3_int64)client);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)request);
}

static int rq_step(struct apply *a, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		rc = apply_sql_fail(a, sqlite3_sql(st));
	else
		rc = 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static size_t rq_slot(const struct apply *a, uint64_t client)
{
	size_t i = (size_t)(client * UINT64_C(0x9e3779b97f4a7c15) >> 20) & (a->rq_cap - 1);
	while (a->rq[i].client != 0 && a->rq[i].client != client)
		i = (i + 1) & (a->rq_cap - 1);
	return i;
}

/* Start an attempt at an instance of n items: room for n more clients
 * (the cache only grows, or starts again, between instances). */
int apply_rq_begin(struct apply *a, size_t n)
{
	a->rq_gen++;
	a->rq_ntouched = 0;
	a->rq_reload = 0;
	if (n > a->rq_tcap) {
		size_t *t = realloc(a->rq_touched, n * sizeof *t);
		if (t == NULL)
			return MTR_ENOMEM;
		a->rq_touched = t;
		a->rq_tcap = n;
	}
	if ((a->rq_n + n) * 4 <= a->rq_cap * 3)
		return 0;
	size_t cap = a->rq_cap ? a->rq_cap : 1024;
	while ((a->rq_n + n) * 4 > cap * 3)
		cap *= 2;
	struct rq_client *old = a->rq;
	size_t ocap = a->rq_cap;
	if (cap > RQ_CACHE_MAX && n * 4 <= (size_t)RQ_CACHE_MAX * 3) {
		cap = RQ_CACHE_MAX; /* start again: the cache is rebuilt from the table */
		apply_rq_forget_all(a);
	}
	struct rq_client *nt = calloc(cap, sizeof *nt);
	if (nt == NULL)
		return MTR_ENOMEM;
	a->rq = nt;
	a->rq_cap = cap;
	for (size_t k = 0; k < ocap; k++)
		if (old[k].client != 0)
			a->rq[rq_slot(a, old[k].client)] = old[k];
	free(old);
	return 0;
}

/* The client's entry, loaded from the table the first time, and made part
 * of this attempt.  NULL on error (*rc set). */
static struct rq_client *rq_client_get(struct apply *a, uint64_t client, int *rc)
{
	size_t i = rq_slot(a, client);
	struct rq_client *e = &a->rq[i];
	*rc = 0;
	if (e->client == 0) {
		uint64_t floor = 0, maxreq = 0;
		sqlite3_bind_int64(a->rq_load, 1, (sqlite3_int64)client);
		int src = sqlite3_step(a->rq_load);
		if (src == SQLITE_ROW) {
			floor = (uint64_t)sqlite3_column_int64(a->rq_load, 0);
			maxreq = (uint64_t)sqlite3_column_int64(a->rq_load, 1);
		}
		if (src != SQLITE_ROW && src != SQLITE_DONE) {
			*rc = apply_sql_fail(a, sqlite3_sql(a->rq_load));
			sqlite3_reset(a->rq_load);
			return NULL;
		}
		sqlite3_reset(a->rq_load);
		memset(e, 0, sizeof *e);
		e->client = client;
		e->floor = floor;
		e->maxreq = maxreq;
		a->rq_n++;
	}
	if (e->gen != a->rq_gen) {
		e->gen = a->rq_gen;
		e->pfloor = e->floor;
		e->pmaxreq = e->maxreq;
		e->written = 0;
		e->blen = 0;
		e->run_at = 0;
		a->rq_touched[a->rq_ntouched++] = i;
	}
	return e;
}

/* Before COMMIT: each client's row (floor, top, time), and the results
 * below a floor that moved are forgotten. */
int apply_rq_finish(struct apply *a)
{
	for (size_t k = 0; k < a->rq_ntouched; k++) {
		const struct rq_client *e = &a->rq[a->rq_touched[k]];
		if (!e->written)
			continue;
		sqlite3_bind_int64(a->rq_floor, 1, (sqlite3_int64)e->client);
		sqlite3_bind_int64(a->rq_floor, 2, e->pts);
		sqlite3_bind_int64(a->rq_floor, 3, (sqlite3_int64)e->pfloor);
		sqlite3_bind_int64(a->rq_floor, 4, (sqlite3_int64)e->pmaxreq);
		int rc = rq_step(a, a->rq_floor);
		if (rc == 0 && e->blen > 0) {
			rq_bind_ids(a->rq_put, e->client, e->bfirst);
			sqlite3_bind_int64(a->rq_put, 3, e->pts);
			sqlite3_bind_blob(a->rq_put, 4, e->buf, (int)e->blen, SQLITE_STATIC);
			sqlite3_bind_int64(a->rq_put, 5, (sqlite3_int64)e->blast);
			rc = rq_step(a, a->rq_put);
		}
		if (rc == 0 && e->pfloor > e->floor) {
			/* the batches wholly below the floor (one may straddle it) */
			rq_bind_ids(a->rq_forget, e->client, e->pfloor);
			rc = rq_step(a, a->rq_forget);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* After COMMIT: what the attempt did is what is committed. */
void apply_rq_committed(struct apply *a)
{
	if (a->rq_reload) {
		apply_rq_forget_all(a);
		return;
	}
	for (size_t k = 0; k < a->rq_ntouched; k++) {
		struct rq_client *e = &a->rq[a->rq_touched[k]];
		e->floor = e->pfloor;
		e->maxreq = e->pmaxreq;
	}
}

/*
 * A record of a batch row is (u64 request, u32 length, result bytes), or,
 * for the most common result (rq_plain: one statement that succeeded and
 * returned no rows), one of two short forms that rq_find expands to the
 * bytes result_encode makes of it:
 *
 * - a run (RQ_RUN, written since 2026-12): (u64 first request, u32 RQ_RUN
 *   | length, then per request first, first + 1, ...: uvarint changes,
 *   uvarint zigzag(last rowid - the previous one's, the first's from 0)),
 *   usually 2 bytes a result, extended while the client's next plain
 *   result is for the next request;
 * - a compact record (RQ_COMPACT, written before runs; still read):
 *   (u64 request, u32 RQ_COMPACT | 16, i64 changes, i64 last rowid).
 *
 * The batch rows, written once per client and instance, are the largest
 * cost of keeping results: their pages (doc/performance.md "Kept results
 * in runs"), so they are kept small.
 */
#define RQ_COMPACT 0x80000000u
#define RQ_RUN 0x40000000u
#define RQ_LEN_MASK 0x3fffffffu
#define RQ_COMPACT_LEN 16u
#define RQ_PLAIN_MAX 64 /* room for the expanded bytes of a short form */
#define RQ_PAIR_MAX 20  /* two uvarints of 64 bits */

static int rq_plain(const struct apply_result *r)
{
	const struct apply_stmt_result *s = r->stmts;
	return r->raw == NULL && r->code == 0 && r->failed == 0 && r->nstmt == 1 && s->code == 0 &&
	       s->errmsg == NULL && s->ncols == 0 && s->nrows == 0 && s->rows_len == 0 && s->changes >= 0;
}

static size_t uvarint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* The uvarint at *p (len bytes left) into *v: its size, or 0 when it does
 * not end within len or 10 bytes. */
static size_t uvarint_get(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < len && i < 10; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

static uint64_t zigzag(int64_t d)
{
	return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

static int64_t unzigzag(uint64_t z)
{
	return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

/* Room for more bytes in the client's batch. */
static int rq_room(struct rq_client *e, size_t more)
{
	return mtr_grow(&e->buf, &e->bcap, e->blen + more, 1024) == 0 ? 0 : MTR_ENOMEM;
}

/* A plain result into the client's batch: it extends the run being
 * written when it is for the run's next request, else starts one. */
static int rq_keep_plain(struct rq_client *e, uint64_t request, int64_t changes, int64_t rowid)
{
	if (rq_room(e, 12 + RQ_PAIR_MAX) != 0)
		return MTR_ENOMEM;
	int extend = e->run_at != 0 && request == e->run_next;
	int64_t prev = extend ? e->run_rowid : 0;
	size_t at = extend ? e->run_at - 1 : e->blen;
	if (!extend) {
		st64(e->buf + at, request);
		st32(e->buf + at + 8, RQ_RUN);
		e->blen += 12;
		e->run_at = at + 1;
	}
	size_t n = uvarint_put(e->buf + e->blen, (uint64_t)changes);
	n += uvarint_put(e->buf + e->blen + n, zigzag((int64_t)((uint64_t)rowid - (uint64_t)prev)));
	e->blen += n;
	st32(e->buf + at + 8, RQ_RUN | (uint32_t)(e->blen - at - 12));
	e->run_next = request + 1;
	e->run_rowid = rowid;
	return 0;
}

/* Keep the result of item ir (just run) in the client's batch. */
static int rq_keep(struct apply *a, struct rq_client *e, const struct wire_item *it, const struct ires *ir)
{
	struct res_scratch x = {0};
	struct apply_result res;
	if (apply_item_result(a, ir, &x, &res) != 0) {
		apply_scratch_free(&x);
		return MTR_ENOMEM;
	}
	int was_empty = e->blen == 0, rc = 0;
	if (rq_plain(&res)) {
		rc = rq_keep_plain(e, it->request, res.stmts[0].changes, res.stmts[0].last_rowid);
	} else {
		size_t n = result_size(&res);
		char msg[160];
		struct apply_stmt_result bs;
		if (n > APPLY_KEEP_RESULT_MAX) {
			snprintf(msg, sizeof msg,
				 "this write was applied before; its result (%zu bytes) was too large to keep for a resend",
				 n);
			res = result_error(SQLITE_TOOBIG, msg, &bs);
			n = result_size(&res);
		}
		long w = rq_room(e, 12 + n) != 0 ? MTR_ENOMEM : result_encode(&res, e->buf + e->blen + 12, n);
		if (w >= 0) {
			st64(e->buf + e->blen, it->request);
			st32(e->buf + e->blen + 8, (uint32_t)w);
			e->blen += 12 + (size_t)w;
			e->run_at = 0; /* a later plain result starts a run after it */
		}
		rc = w < 0 ? (int)w : 0;
	}
	apply_scratch_free(&x);
	if (rc != 0)
		return rc;
	if (was_empty || it->request < e->bfirst)
		e->bfirst = it->request;
	if (was_empty || it->request > e->blast)
		e->blast = it->request;
	return 0;
}

/* The bytes result_encode makes of a plain result, in tmp (RQ_PLAIN_MAX
 * bytes): its size, or 0. */
static uint32_t rq_expand(int64_t changes, int64_t rowid, uint8_t *tmp)
{
	struct apply_stmt_result s = {.changes = changes, .last_rowid = rowid};
	struct apply_result r = {.nstmt = 1, .stmts = &s};
	long w = result_encode(&r, tmp, RQ_PLAIN_MAX);
	return w < 0 ? 0 : (uint32_t)w;
}

/* The result of request in the run body p (len bytes) of the run that
 * starts at request first, in tmp: its size, or 0 when the run does not
 * hold it or is not well formed. */
static uint32_t rq_run_find(const uint8_t *p, size_t len, uint64_t first, uint64_t request, uint8_t *tmp)
{
	if (request < first)
		return 0;
	int64_t rowid = 0;
	for (uint64_t r = first; len > 0; r++) {
		uint64_t changes, z;
		size_t n1 = uvarint_get(p, len, &changes);
		size_t n2 = n1 ? uvarint_get(p + n1, len - n1, &z) : 0;
		if (n2 == 0)
			return 0;
		rowid = (int64_t)((uint64_t)rowid + (uint64_t)unzigzag(z));
		if (r == request)
			return rq_expand((int64_t)changes, rowid, tmp);
		p += n1 + n2;
		len -= n1 + n2;
	}
	return 0;
}

/* The record of request in a batch of records: its result bytes (in tmp,
 * RQ_PLAIN_MAX bytes, for a short form), or NULL. */
static const uint8_t *rq_find(const uint8_t *p, size_t len, uint64_t request, uint32_t *n, uint8_t *tmp)
{
	while (len >= 12) {
		uint32_t f = ld32(p + 8), l = f & RQ_LEN_MASK;
		int compact = (f & RQ_COMPACT) != 0, run = (f & RQ_RUN) != 0;
		if (l > len - 12 || (compact && (run || l != RQ_COMPACT_LEN)))
			return NULL;
		if (run) {
			uint32_t w = rq_run_find(p + 12, l, ld64(p), request, tmp);
			if (w != 0) {
				*n = w;
				return tmp;
			}
		} else if (ld64(p) == request && compact) {
			*n = rq_expand((int64_t)ld64(p + 12), (int64_t)ld64(p + 20), tmp);
			return *n ? tmp : NULL;
		} else if (ld64(p) == request) {
			*n = l;
			return p + 12;
		}
		p += 12 + l;
		len -= 12 + l;
	}
	return NULL;
}

/* A resend of a write applied before (in this attempt, or in a row of
 * the table): its kept result becomes the item's. */
static int rq_resend(struct apply *a, struct rq_client *e, const struct wire_item *it, struct ires *ir, int *found)
{
	*found = 0;
	uint32_t n = 0;
	uint8_t tmp[RQ_PLAIN_MAX];
	const uint8_t *b = rq_find(e->buf, e->blen, it->request, &n, tmp);
	int rc = 0;
	if (b == NULL) {
		rq_bind_ids(a->rq_get, it->client, it->request);
		while ((rc = sqlite3_step(a->rq_get)) == SQLITE_ROW) {
			b = rq_find(sqlite3_column_blob(a->rq_get, 0), (size_t)sqlite3_column_bytes(a->rq_get, 0),
				    it->request, &n, tmp);
			if (b != NULL)
				break;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			rc = apply_sql_fail(a, sqlite3_sql(a->rq_get));
			sqlite3_reset(a->rq_get);
			sqlite3_clear_bindings(a->rq_get);
			return rc;
		}
	}
	rc = 0;
	if (b != NULL) {
		rc = n >= 4 && apply_arena_reserve(a, n) == 0 ? 0 : MTR_ENOMEM;
		if (rc == 0) {
			memcpy(a->arena + a->alen, b, n);
			ir->raw = (long)a->alen;
			ir->raw_len = n;
			a->alen += n;
			ir->code = (int32_t)ld32(a->arena + ir->raw); /* the result's code (result.h) */
			ir->failed = 0;
			ir->first = a->nsres;
			ir->nstmt = 0;
			*found = 1;
			a->st.resends++;
			mtr_log(LOG_INFO,
				"[apply] request %llu of client %016llx was applied before: answering its kept result",
				(unsigned long long)it->request, (unsigned long long)it->client);
		}
	}
	sqlite3_reset(a->rq_get);
	sqlite3_clear_bindings(a->rq_get);
	return rc;
}

/*
 * Run item number idx.  A write that names its client (client and floor
 * non-zero) is applied at most once: a resend of one already applied gets
 * the kept result instead of running again, one below the client's floor
 * (answered, forgotten) gets an error and does not run.  Returns as
 * apply_run_item_body().
 */
int apply_run_item(struct apply *a, size_t idx, const struct wire_item *it)
{
	struct ires *ir = &a->ires[idx];
	ir->raw = -1;
	ir->raw_len = 0;
	ir->steps = 0;
	if (it->client == 0 || it->floor == 0 || (it->flags & WIRE_ITEM_READ))
		return apply_run_item_body(a, idx, it);
	int rc;
	struct rq_client *e = rq_client_get(a, it->client, &rc);
	if (e == NULL)
		return rc;
	if (it->request < e->pfloor)
		return apply_item_fail(a, ir, SQLITE_ERROR,
				 "a resend of a request that was answered already: it is not applied again");
	if (it->request <= e->pmaxreq) { /* above it, nothing was kept: new */
		int found;
		rc = rq_resend(a, e, it, ir, &found);
		if (rc != 0 || found)
			return rc;
	}
	rc = apply_run_item_body(a, idx, it);
	if (rc != 0)
		return rc;
	rc = rq_keep(a, e, it, ir);
	if (it->request > e->pmaxreq)
		e->pmaxreq = it->request;
	if (it->floor > e->pfloor)
		e->pfloor = it->floor;
	e->pts = it->timestamp_us;
	e->written = 1;
	return rc;
}

/* Forget the clients idle for APPLY_CLIENT_IDLE_US, now and then: every
 * 4096th instance, by the timestamp of its last item (deterministic). */
int apply_rq_prune(struct apply *a, uint64_t instance, const struct wire_item *items, size_t n)
{
	if (n == 0 || instance % 4096 != 0)
		return 0;
	sqlite3_bind_int64(a->rq_prune, 1, items[n - 1].timestamp_us - APPLY_CLIENT_IDLE_US);
	int rc = rq_step(a, a->rq_prune);
	if (rc == 0 && sqlite3_changes(a->db) > 0)
		a->rq_reload = 1;
	return rc;
}


/* ---- looking a result up again (RESULT_REQUEST, doc/apply.md) ---- */

static void lookup_free_all(struct apply_lookup *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(q[i].bytes);
		q[i].bytes = NULL;
		q[i].len = 0;
		q[i].state = APPLY_LOOKUP_UNAPPLIED;
	}
}

int apply_rq_lookup(sqlite3 *db, struct apply_lookup *q, size_t n)
{
	static const char cur_sql[] = "SELECT last FROM mtr_cursor WHERE stream = ?1";
	static const char get_sql[] =
		"SELECT result FROM mtr_requests WHERE client = ?1 AND request > 0 AND request <= ?2 AND top >= ?2";
	sqlite3_stmt *cur = NULL, *get = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(db, cur_sql, -1, &cur, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, get_sql, -1, &get, NULL) != SQLITE_OK) {
		mtr_log(LOG_ERROR, "[apply] result lookup: %s", sqlite3_errmsg(db));
		rc = MTR_ESQL;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct apply_lookup *x = &q[i];
		x->state = APPLY_LOOKUP_UNAPPLIED;
		x->bytes = NULL;
		x->len = 0;
		/* mtr_cursor holds the last applied seq of each stream (a
		 * stream's items are applied as a prefix, invariant 3) */
		sqlite3_bind_int64(cur, 1, (sqlite3_int64)x->stream);
		int src = sqlite3_step(cur);
		uint64_t last = src == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(cur, 0) : 0;
		sqlite3_reset(cur);
		if (src != SQLITE_ROW && src != SQLITE_DONE) {
			rc = MTR_ESQL;
			break;
		}
		if (last < x->seq)
			continue;
		x->state = APPLY_LOOKUP_LOST;
		if (x->client == 0 || x->request == 0)
			continue;
		sqlite3_bind_int64(get, 1, (sqlite3_int64)x->client);
		sqlite3_bind_int64(get, 2, (sqlite3_int64)x->request);
		while ((src = sqlite3_step(get)) == SQLITE_ROW) {
			uint32_t len = 0;
			uint8_t tmp[RQ_PLAIN_MAX];
			const uint8_t *b = rq_find(sqlite3_column_blob(get, 0), (size_t)sqlite3_column_bytes(get, 0),
						   x->request, &len, tmp);
			if (b == NULL)
				continue;
			x->bytes = malloc(len ? len : 1);
			if (x->bytes == NULL) {
				rc = MTR_ENOMEM;
				break;
			}
			memcpy(x->bytes, b, len);
			x->len = len;
			x->state = APPLY_LOOKUP_FOUND;
			break;
		}
		if (rc == 0 && src != SQLITE_ROW && src != SQLITE_DONE)
			rc = MTR_ESQL;
		sqlite3_reset(get);
	}
	if (rc == MTR_ESQL)
		mtr_log(LOG_ERROR, "[apply] result lookup: %s", sqlite3_errmsg(db));
	sqlite3_finalize(cur);
	sqlite3_finalize(get);
	if (rc != 0)
		lookup_free_all(q, n);
	return rc;
}
