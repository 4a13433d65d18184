/*
 * ingest.c - per-stream receive state over the segment log (see ingest.h and
 * doc/storage.md).
 *
 * Index: each stream has a ring of slots, capacity a power of two, slot of
 * seq at ring[seq & (cap - 1)], covering the seqs base+1 .. base+cap.  Since
 * the position depends only on seq, moving base (release) needs no copying;
 * growing copies the live window once.  A slot is empty when loc.seg == 0
 * (segment ids start at 1).
 *
 * Streams are found by an open-addressing hash of their id, with a
 * one-entry cache for the common case of consecutive items of one stream.
 * A stream that ever held an item is never removed; when the table is full,
 * the streams that never did (known only from a heartbeat or a request:
 * nothing stored, nothing released, so nothing to lose) are forgotten and
 * the hash rebuilt, so that a flood of made-up stream ids cannot lock real
 * proxies out.
 *
 * Durability: contig moves as items arrive; in disk mode the watermark only
 * catches up with contig in ingest_sync(), after the fdatasync, for the
 * streams on the dirty list.  In memory mode the watermark is contig.
 *
 * The release points (base of every stream) are saved in the log's state
 * blob before any segment is deleted: otherwise, after a restart, the seqs of
 * deleted segments would look missing.  Stale release points are harmless:
 * the records above them are still in the segments that were not deleted.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "seglog.h"
#include "util.h"

struct slot {
	struct seglog_loc loc; /* loc.seg == 0: empty */
	uint64_t asked;        /* when last requested (0: never) */
};

struct istream {
	uint64_t id;
	uint64_t base, contig, durable;
	uint64_t high_seen, high_note;
	uint64_t gap_due; /* no gap can be due before this time */
	struct slot *ring;
	uint64_t cap; /* power of two, or 0 */
	int dirty;    /* on the dirty list (contig moved since the last sync) */
};

struct ingest {
	struct ingest_opts o;
	struct seglog *log;
	struct istream **tab; /* hash table, tab_cap slots */
	uint32_t tab_cap;
	struct istream **all; /* every stream, creation order */
	uint32_t nstreams;
	struct istream *last; /* lookup cache */
	struct istream **dirty;
	uint32_t ndirty;
	uint32_t gap_rr;
	int state_dirty; /* a base moved since the state blob was saved */
	uint8_t *scratch;
	size_t scap;
	struct seglog_loc *aux; /* acceptor records found by recovery (ingest_aux_each) */
	uint64_t *aux_key;
	size_t naux, aux_cap;
	struct ingest_stats st;
};

/* ---- streams ----------------------------------------------------------- */

static uint32_t hash_id(uint64_t id, uint32_t cap)
{
	return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static struct istream *stream_find(const struct ingest *ing, uint64_t id)
{
	if (ing->last && ing->last->id == id)
		return ing->last;
	for (uint32_t i = hash_id(id, ing->tab_cap);; i = (i + 1) & (ing->tab_cap - 1)) {
		struct istream *s = ing->tab[i];
		if (!s || s->id == id)
			return s;
	}
}

static int stream_empty(const struct istream *s)
{
	return s->high_seen == 0 && s->base == 0 && s->contig == 0 && !s->dirty;
}

/* Remove the streams marked in gone[] (indexes into all[]) and rebuild the
 * hash.  Returns how many. */
static uint32_t remove_marked(struct ingest *ing, const uint8_t *gone)
{
	uint32_t kept = 0, n = 0;
	for (uint32_t i = 0; i < ing->nstreams; i++) {
		struct istream *s = ing->all[i];
		if (gone[i]) {
			ing->st.mem -= sizeof *s + s->cap * sizeof(struct slot);
			free(s->ring);
			free(s);
			n++;
		} else {
			ing->all[kept++] = s;
		}
	}
	if (n == 0)
		return 0;
	ing->nstreams = kept;
	ing->st.streams = kept;
	ing->st.evicted_streams += n;
	ing->last = NULL;
	ing->gap_rr = 0;
	memset(ing->tab, 0, ing->tab_cap * sizeof *ing->tab);
	for (uint32_t i = 0; i < kept; i++) {
		uint32_t h = hash_id(ing->all[i]->id, ing->tab_cap);
		while (ing->tab[h])
			h = (h + 1) & (ing->tab_cap - 1);
		ing->tab[h] = ing->all[i];
	}
	return n;
}

/* A full table: forget every stream that never held an item (see the top
 * of the file).  Returns how many. */
static uint32_t evict_empty(struct ingest *ing)
{
	uint8_t *gone = calloc(ing->nstreams ? ing->nstreams : 1, 1);
	if (!gone)
		return 0;
	for (uint32_t i = 0; i < ing->nstreams; i++)
		gone[i] = (uint8_t)stream_empty(ing->all[i]);
	uint32_t n = remove_marked(ing, gone);
	free(gone);
	if (n)
		mtr_log(LOG_INFO, "[ingest] stream table full: forgot %u streams that never held an item", n);
	return n;
}

unsigned ingest_forget_empty(struct ingest *ing, const uint64_t *ids, unsigned n)
{
	if (n == 0 || ing->nstreams == 0)
		return 0;
	uint8_t *gone = calloc(ing->nstreams, 1);
	if (!gone)
		return 0;
	unsigned marked = 0;
	for (unsigned k = 0; k < n; k++) {
		struct istream *s = stream_find(ing, ids[k]);
		if (!s || !stream_empty(s))
			continue;
		for (uint32_t i = 0; i < ing->nstreams; i++)
			if (ing->all[i] == s) {
				gone[i] = 1;
				marked++;
				break;
			}
	}
	uint32_t r = marked ? remove_marked(ing, gone) : 0;
	free(gone);
	return r;
}

static struct istream *stream_get(struct ingest *ing, uint64_t id)
{
	struct istream *s = stream_find(ing, id);
	if (s) {
		ing->last = s;
		return s;
	}
	if (ing->nstreams >= ing->o.max_streams && evict_empty(ing) == 0) {
		ing->st.drop_streams++;
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->id = id;
	uint32_t i = hash_id(id, ing->tab_cap);
	while (ing->tab[i])
		i = (i + 1) & (ing->tab_cap - 1);
	ing->tab[i] = s;
	ing->all[ing->nstreams++] = s;
	ing->st.streams = ing->nstreams;
	ing->st.mem += sizeof *s;
	ing->last = s;
	mtr_log(LOG_DEBUG, "[ingest] new stream %llu", (unsigned long long)id);
	return s;
}

static inline struct slot *slot_of(struct istream *s, uint64_t seq)
{
	return &s->ring[seq & (s->cap - 1)];
}

/* Make the ring cover base+1 .. base+need.  0 or MTR_EFULL (memory). */
static int ring_fit(struct ingest *ing, struct istream *s, uint64_t need)
{
	if (need <= s->cap)
		return 0;
	uint64_t cap = s->cap ? s->cap : 64;
	while (cap < need)
		cap *= 2;
	uint64_t add = (cap - s->cap) * sizeof(struct slot);
	if (ing->st.mem + add > ing->o.max_mem)
		return MTR_EFULL;
	struct slot *r = calloc(cap, sizeof *r);
	if (!r)
		return MTR_EFULL;
	for (uint64_t q = s->base + 1; q <= s->base + s->cap; q++)
		r[q & (cap - 1)] = s->ring[q & (s->cap - 1)];
	free(s->ring);
	s->ring = r;
	s->cap = cap;
	ing->st.mem += add;
	s->gap_due = 0; /* seqs newly covered may be gaps */
	return 0;
}

static void mark_dirty(struct ingest *ing, struct istream *s)
{
	if (ing->o.durability == INGEST_MEMORY) {
		s->durable = s->contig;
		return;
	}
	if (!s->dirty) {
		s->dirty = 1;
		ing->dirty[ing->ndirty++] = s;
	}
}

/* Move contig over the stored slots that follow it. */
static void advance_contig(struct ingest *ing, struct istream *s)
{
	uint64_t c = s->contig;
	while (c < s->base + s->cap && slot_of(s, c + 1)->loc.seg)
		c++;
	if (c != s->contig) {
		s->contig = c;
		mark_dirty(ing, s);
	}
}

static uint64_t stream_high(const struct istream *s)
{
	return MAX(MAX(s->high_seen, s->high_note), s->contig);
}

/* ---- open / close ------------------------------------------------------- */

/*
 * State blob: u32 count, then count * (u64 stream, u64 base); only streams
 * with base > 0.  Loaded before recovery so that released records are not
 * indexed again.
 */
static int state_apply(struct ingest *ing)
{
	const void *vp;
	size_t n;
	seglog_state_get(ing->log, &vp, &n);
	const uint8_t *p = vp;
	if (n < 4)
		return 0;
	uint32_t count = ld32(p);
	if ((n - 4) / 16 < count) {
		mtr_log(LOG_WARN, "[ingest] release state is inconsistent: ignored");
		return 0;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct istream *s = stream_get(ing, ld64(p + 4 + 16 * i));
		if (!s) {
			mtr_log(LOG_WARN, "[ingest] release state names more streams than allowed");
			break;
		}
		uint64_t b = ld64(p + 12 + 16 * i);
		s->base = s->contig = s->durable = s->high_seen = MAX(s->base, b);
	}
	return 0;
}

static int state_save(struct ingest *ing)
{
	uint32_t count = 0;
	for (uint32_t i = 0; i < ing->nstreams; i++)
		count += ing->all[i]->base > 0;
	size_t n = 4 + (size_t)count * 16;
	uint8_t *buf = malloc(n);
	if (!buf)
		return MTR_ENOMEM;
	st32(buf, count);
	uint8_t *q = buf + 4;
	for (uint32_t i = 0; i < ing->nstreams; i++) {
		if (ing->all[i]->base == 0)
			continue;
		st64(q, ing->all[i]->id);
		st64(q + 8, ing->all[i]->base);
		q += 16;
	}
	int rc = seglog_state_save(ing->log, buf, n);
	free(buf);
	if (rc == 0)
		ing->state_dirty = 0;
	return rc;
}

/* Recovery visitor: index an intact record unless stale, duplicate or out of
 * bounds (then it is not live: its segment may go). */
static int recover_visit(void *arg, uint64_t stream, uint64_t seq, const struct seglog_loc *loc)
{
	struct ingest *ing = arg;
	if (seq == 0)
		return 0;
	if (stream == 0) { /* an acceptor record (ingest_log_aux): not live */
		if (seq <= ing->o.aux_min)
			return 0;
		if (ing->naux == ing->aux_cap) {
			size_t nc = ing->aux_cap ? ing->aux_cap * 2 : 64;
			struct seglog_loc *nl = realloc(ing->aux, nc * sizeof *nl);
			if (nl)
				ing->aux = nl;
			uint64_t *nk = realloc(ing->aux_key, nc * sizeof *nk);
			if (nk)
				ing->aux_key = nk;
			if (!nl || !nk)
				return MTR_ENOMEM;
			ing->aux_cap = nc;
		}
		ing->aux[ing->naux] = *loc;
		ing->aux_key[ing->naux++] = seq;
		return 0;
	}
	struct istream *s = stream_get(ing, stream);
	if (!s || seq <= s->base || seq - s->base > ing->o.window || ring_fit(ing, s, seq - s->base) != 0)
		return 0;
	struct slot *sl = slot_of(s, seq);
	if (sl->loc.seg)
		return 0;
	sl->loc = *loc;
	sl->asked = 0;
	s->high_seen = MAX(s->high_seen, seq);
	ing->st.items_held++;
	ing->st.recovered++;
	if (ing->o.durability == INGEST_MEMORY)
		ing->st.mem += SEGLOG_REC_HDR_SIZE + loc->len;
	return 1;
}

int ingest_open(const struct ingest_opts *opts, struct ingest **out)
{
	if (!opts || !out || (opts->durability != INGEST_DISK && opts->durability != INGEST_MEMORY))
		return MTR_EINVAL;
	struct ingest *ing = calloc(1, sizeof *ing);
	if (!ing)
		return MTR_ENOMEM;
	ing->o = *opts;
	if (!ing->o.max_streams)
		ing->o.max_streams = INGEST_DEFAULT_MAX_STREAMS;
	if (!ing->o.max_mem)
		ing->o.max_mem = INGEST_DEFAULT_MAX_MEM;
	if (!ing->o.window)
		ing->o.window = INGEST_DEFAULT_WINDOW;
	if (!ing->o.max_item)
		ing->o.max_item = INGEST_DEFAULT_MAX_ITEM;
	if (!ing->o.retry_ns)
		ing->o.retry_ns = INGEST_DEFAULT_RETRY_NS;
	ing->tab_cap = 16;
	while (ing->tab_cap < 2 * ing->o.max_streams)
		ing->tab_cap *= 2;
	ing->tab = calloc(ing->tab_cap, sizeof *ing->tab);
	ing->all = calloc(ing->o.max_streams, sizeof *ing->all);
	ing->dirty = calloc(ing->o.max_streams, sizeof *ing->dirty);
	if (!ing->tab || !ing->all || !ing->dirty) {
		ingest_close(ing);
		return MTR_ENOMEM;
	}
	struct seglog_opts lo = {
		.mode = opts->durability == INGEST_DISK ? SEGLOG_DISK : SEGLOG_MEMORY,
		.dir = opts->dir,
		.seg_size = opts->seg_size,
		.wbuf_size = opts->wbuf_size,
		.cache_keep = opts->cache_keep,
		.max_rec = ing->o.max_item,
		.retain_bytes = opts->retain_bytes,
		.retain_ms = opts->retain_ms,
	};
	int rc = seglog_open(&lo, &ing->log);
	if (rc == 0)
		rc = state_apply(ing);
	if (rc == 0)
		rc = seglog_recover(ing->log, recover_visit, ing);
	if (rc) {
		ingest_close(ing);
		return rc;
	}
	/* what recovery found is on disk (seglog_recover synced it): held */
	for (uint32_t i = 0; i < ing->nstreams; i++) {
		struct istream *s = ing->all[i];
		uint64_t c = s->contig;
		while (c < s->base + s->cap && slot_of(s, c + 1)->loc.seg)
			c++;
		s->contig = s->durable = c;
	}
	if (ing->st.recovered)
		mtr_log(LOG_INFO, "[ingest] recovered %llu items of %u streams", (unsigned long long)ing->st.recovered,
			ing->nstreams);
	*out = ing;
	return 0;
}

void ingest_close(struct ingest *ing)
{
	if (!ing)
		return;
	seglog_close(ing->log);
	for (uint32_t i = 0; ing->all && i < ing->nstreams; i++) {
		free(ing->all[i]->ring);
		free(ing->all[i]);
	}
	free(ing->tab);
	free(ing->all);
	free(ing->dirty);
	free(ing->scratch);
	free(ing->aux);
	free(ing->aux_key);
	free(ing);
}

/* ---- the hot path ------------------------------------------------------- */

int ingest_add(struct ingest *ing, uint64_t stream, uint64_t seq, const void *item, uint32_t len)
{
	if (seq == 0 || len == 0) {
		ing->st.drop_invalid++;
		return MTR_EINVAL;
	}
	if (len > ing->o.max_item) {
		ing->st.drop_invalid++;
		return MTR_ETOOBIG;
	}
	struct istream *s = stream_get(ing, stream);
	if (!s)
		return MTR_EFULL;
	if (seq <= s->base) {
		ing->st.dup++;
		return MTR_EDUPLICATE;
	}
	if (seq - s->base > ing->o.window) {
		ing->st.drop_window++;
		return MTR_EFULL;
	}
	if (seq - s->base > s->cap && ring_fit(ing, s, seq - s->base) != 0) {
		ing->st.drop_mem++;
		return MTR_EFULL;
	}
	struct slot *sl = slot_of(s, seq);
	if (sl->loc.seg) {
		ing->st.dup++;
		return MTR_EDUPLICATE;
	}
	uint64_t cost = ing->o.durability == INGEST_MEMORY ? SEGLOG_REC_HDR_SIZE + (uint64_t)len : 0;
	if (ing->st.mem + cost > ing->o.max_mem) {
		ing->st.drop_mem++;
		return MTR_EFULL;
	}
	int rc = seglog_append(ing->log, stream, seq, item, len, &sl->loc);
	if (rc) {
		sl->loc.seg = 0;
		ing->st.drop_full += rc == MTR_ENOSPACE;
		return rc;
	}
	ing->st.mem += cost;
	ing->st.added++;
	ing->st.bytes += len;
	ing->st.items_held++;
	/* seqs between the old high and this one are new gaps */
	if (seq > stream_high(s) + 1)
		s->gap_due = 0;
	s->high_seen = MAX(s->high_seen, seq);
	if (seq == s->contig + 1)
		advance_contig(ing, s);
	return 0;
}

int ingest_sync(struct ingest *ing)
{
	int rc;
	/* release points first: the segments about to go hold seqs below them */
	if (seglog_delete_pending(ing->log)) {
		if (ing->state_dirty) {
			rc = state_save(ing);
			if (rc)
				return rc;
		}
		/* and the owner's copies of the acceptor records they hold */
		if (ing->o.before_delete) {
			rc = ing->o.before_delete(ing->o.delete_arg);
			if (rc)
				return rc;
		}
	}
	rc = seglog_sync(ing->log);
	if (rc)
		return rc;
	if (ing->ndirty)
		ing->st.syncs++;
	for (uint32_t i = 0; i < ing->ndirty; i++) {
		struct istream *s = ing->dirty[i];
		s->durable = s->contig;
		s->dirty = 0;
	}
	ing->ndirty = 0;
	return 0;
}

/* ---- gaps --------------------------------------------------------------- */

int ingest_note_high(struct ingest *ing, uint64_t stream, uint64_t high)
{
	struct istream *s = stream_get(ing, stream);
	if (!s)
		return MTR_EFULL;
	if (high > s->high_note) {
		if (high > stream_high(s))
			s->gap_due = 0;
		s->high_note = high;
		/* cover the tail with slots (so it gets retry timers), as far as
		 * the window and the memory bound allow */
		uint64_t need = MIN(high - MIN(high, s->base), ing->o.window);
		(void)ring_fit(ing, s, need);
	}
	return 0;
}

static int stream_gaps(struct ingest *ing, struct istream *s, uint64_t now, struct ingest_range *out, int max)
{
	uint64_t hi = MIN(stream_high(s), s->base + s->cap);
	if (max <= 0 || s->contig >= hi || now < s->gap_due)
		return 0;
	int n = 0;
	uint64_t due = UINT64_MAX;
	uint64_t q;
	for (q = s->contig + 1; q <= hi; q++) {
		struct slot *sl = slot_of(s, q);
		if (sl->loc.seg)
			continue;
		if (sl->asked && now - sl->asked < ing->o.retry_ns) {
			due = MIN(due, sl->asked + ing->o.retry_ns);
			continue;
		}
		if (n > 0 && out[n - 1].last == q - 1) {
			out[n - 1].last = q;
		} else {
			if (n == max)
				break;
			out[n++] = (struct ingest_range){ s->id, q, q };
		}
		sl->asked = now;
		ing->st.resend_items++;
		due = MIN(due, now + ing->o.retry_ns);
	}
	/* stopped early: more may be due right away */
	s->gap_due = q <= hi ? 0 : due;
	ing->st.resend_ranges += (uint64_t)n;
	return n;
}

int ingest_gaps(struct ingest *ing, uint64_t stream, uint64_t now, struct ingest_range *out, int max)
{
	struct istream *s = stream_find(ing, stream);
	return s ? stream_gaps(ing, s, now, out, max) : 0;
}

int ingest_gaps_all(struct ingest *ing, uint64_t now, struct ingest_range *out, int max)
{
	int n = 0;
	for (uint32_t k = 0; k < ing->nstreams && n < max; k++) {
		uint32_t i = (ing->gap_rr + k) % ing->nstreams;
		n += stream_gaps(ing, ing->all[i], now, out + n, max - n);
	}
	if (ing->nstreams)
		ing->gap_rr = (ing->gap_rr + 1) % ing->nstreams;
	return n;
}

/* ---- lookups ------------------------------------------------------------ */

int ingest_get(struct ingest *ing, uint64_t stream, uint64_t seq, const uint8_t **p, uint32_t *len)
{
	struct istream *s = stream_find(ing, stream);
	if (!s || seq <= s->base || seq - s->base > s->cap)
		return MTR_ENOENT;
	struct slot *sl = slot_of(s, seq);
	if (!sl->loc.seg)
		return MTR_ENOENT;
	int rc = seglog_read(ing->log, &sl->loc, p, &ing->scratch, &ing->scap);
	if (rc)
		return rc;
	*len = sl->loc.len;
	return 0;
}

uint64_t ingest_watermark(const struct ingest *ing, uint64_t stream)
{
	const struct istream *s = stream_find(ing, stream);
	return s ? s->durable : 0;
}

int ingest_holds(const struct ingest *ing, uint64_t stream, uint64_t last)
{
	return ingest_watermark(ing, stream) >= last;
}

uint64_t ingest_received(const struct ingest *ing, uint64_t stream)
{
	const struct istream *s = stream_find(ing, stream);
	return s ? s->contig : 0;
}

int ingest_unsynced(const struct ingest *ing)
{
	return ing->ndirty > 0 || (ing->o.durability == INGEST_DISK && seglog_unsynced(ing->log));
}

int ingest_forget(struct ingest *ing, uint64_t stream, uint64_t upto)
{
	struct istream *s = stream_get(ing, stream);
	if (!s)
		return MTR_EFULL;
	if (upto <= s->base)
		return 0;
	uint64_t end = MIN(upto, s->base + s->cap);
	for (uint64_t q = s->base + 1; q <= end; q++) {
		struct slot *sl = slot_of(s, q);
		if (sl->loc.seg) {
			seglog_unref(ing->log, sl->loc.seg);
			if (ing->o.durability == INGEST_MEMORY)
				ing->st.mem -= SEGLOG_REC_HDR_SIZE + sl->loc.len;
			ing->st.items_held--;
			ing->st.released++;
		}
		*sl = (struct slot){ 0 };
	}
	s->base = upto;
	s->high_seen = MAX(s->high_seen, upto);
	if (s->contig < upto)
		s->contig = upto;
	/* released means applied everywhere: as good as held */
	s->durable = MAX(s->durable, upto);
	advance_contig(ing, s);
	ing->state_dirty = 1;
	return 0;
}

void ingest_stats(const struct ingest *ing, struct ingest_stats *st)
{
	*st = ing->st;
	struct seglog_stats ls;
	seglog_stats(ing->log, &ls);
	st->retained_segs = ls.retained_segs;
	st->retained_bytes = ls.retained_bytes;
}

int ingest_log_record(struct ingest *ing, uint64_t key, const void *body, uint32_t len)
{
	if (ing->o.durability == INGEST_MEMORY)
		return 0;
	struct seglog_loc loc;
	int rc = seglog_append(ing->log, key, 0, body, len, &loc);
	if (rc != 0) {
		ing->st.log_failed++;
		return rc;
	}
	seglog_unref(ing->log, loc.seg); /* not live: kept by its segment's items and the retention */
	ing->st.log_records++;
	return 0;
}

int ingest_log_aux(struct ingest *ing, uint64_t key, const void *body, uint32_t len)
{
	if (ing->o.durability == INGEST_MEMORY || key == 0)
		return MTR_EINVAL;
	struct seglog_loc loc;
	int rc = seglog_append(ing->log, 0, key, body, len, &loc);
	if (rc != 0)
		return rc;
	seglog_unref(ing->log, loc.seg); /* not live, like a history record */
	ing->st.aux_records++;
	return 0;
}

int ingest_aux_each(struct ingest *ing, int (*fn)(void *arg, uint64_t key, const uint8_t *body, uint32_t len),
		    void *arg)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < ing->naux; i++) {
		const uint8_t *p;
		rc = seglog_read(ing->log, &ing->aux[i], &p, &ing->scratch, &ing->scap);
		if (rc == 0)
			rc = fn(arg, ing->aux_key[i], p, ing->aux[i].len);
	}
	free(ing->aux);
	free(ing->aux_key);
	ing->aux = NULL;
	ing->aux_key = NULL;
	ing->naux = ing->aux_cap = 0;
	return rc;
}

void ingest_set_now(struct ingest *ing, uint64_t wall_ms)
{
	seglog_set_now(ing->log, wall_ms);
}

void ingest_retain_drop(struct ingest *ing)
{
	seglog_retain_drop(ing->log);
}
