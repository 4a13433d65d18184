/*
 * reasm.c - reassembly of fragmented items.
 *
 * Partial items live in a doubly linked list in arrival order (the oldest is
 * evicted first) and in an open-addressing hash table keyed by (stream, seq).
 * Each has its buffer of total bytes, allocated on the first fragment, and a
 * bitmap of the fragments received.  The table is small (max_partials), so
 * deletion rebuilds the probe chain by reinserting the rest of the cluster.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "metronome.h"
#include "reasm.h"

struct partial {
	uint64_t stream, seq;
	uint32_t total, frag_size, nfrag, have;
	uint64_t first_ns;
	uint8_t *buf;
	uint64_t *bits;
	struct partial *prev, *next; /* arrival order */
};

struct reasm {
	size_t max_item, max_bytes, bytes;
	unsigned max_partials, npartial;
	unsigned cap; /* hash slots: power of two, >= 2 * max_partials */
	struct partial **slots;
	struct partial *oldest, *newest;
	struct reasm_counters ctr;
};

static unsigned slot_of(const struct reasm *r, uint64_t stream, uint64_t seq)
{
	uint64_t h = stream * 0x9E3779B97F4A7C15ull ^ seq * 0xC2B2AE3D27D4EB4Full;
	h ^= h >> 29;
	return (unsigned)(h & (r->cap - 1));
}

struct reasm *reasm_new(size_t max_item, size_t max_bytes, unsigned max_partials)
{
	struct reasm *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	if (max_partials == 0)
		max_partials = 1;
	r->max_item = max_item;
	r->max_bytes = max_bytes;
	r->max_partials = max_partials;
	r->cap = 16;
	while (r->cap < 2 * max_partials)
		r->cap *= 2;
	r->slots = calloc(r->cap, sizeof *r->slots);
	if (!r->slots) {
		free(r);
		return NULL;
	}
	return r;
}

static long find(const struct reasm *r, uint64_t stream, uint64_t seq)
{
	for (unsigned i = slot_of(r, stream, seq);; i = (i + 1) & (r->cap - 1)) {
		struct partial *p = r->slots[i];
		if (!p)
			return -1;
		if (p->stream == stream && p->seq == seq)
			return i;
	}
}

static void insert(struct reasm *r, struct partial *p)
{
	unsigned i = slot_of(r, p->stream, p->seq);
	while (r->slots[i])
		i = (i + 1) & (r->cap - 1);
	r->slots[i] = p;
}

/* Unlink p from the table and the list and free it. */
static void drop(struct reasm *r, struct partial *p, int free_buf)
{
	long s = find(r, p->stream, p->seq);
	if (s >= 0) {
		r->slots[s] = NULL;
		for (unsigned i = ((unsigned)s + 1) & (r->cap - 1); r->slots[i]; i = (i + 1) & (r->cap - 1)) {
			struct partial *q = r->slots[i];
			r->slots[i] = NULL;
			insert(r, q);
		}
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		r->oldest = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		r->newest = p->prev;
	r->bytes -= p->total;
	r->npartial--;
	if (free_buf)
		free(p->buf);
	free(p->bits);
	free(p);
}

int reasm_add(struct reasm *r, const struct wire_frag *f, uint64_t now_ns, uint8_t **item, size_t *item_len)
{
	struct partial *p;
	long s = find(r, f->stream, f->seq);

	if (f->total > r->max_item)
		return MTR_ETOOBIG;
	if (s >= 0) {
		p = r->slots[s];
		if (p->total != f->total || p->frag_size != f->frag_size) {
			r->ctr.rejected++;
			return MTR_EMALFORMED;
		}
	} else {
		/*
		 * Make room by evicting the oldest partial item, but only that
		 * one: if the newcomer still does not fit, it is refused
		 * (MTR_EFULL) rather than allowed to wipe out every item in
		 * progress - one large or hostile item must not starve the rest.
		 */
		int over = r->npartial >= r->max_partials || f->total > r->max_bytes - r->bytes;
		if (over && r->oldest) {
			struct partial *o = r->oldest;
			int fits = r->npartial - 1 < r->max_partials && f->total <= r->max_bytes - (r->bytes - o->total);
			if (!fits) {
				r->ctr.refused++;
				return MTR_EFULL;
			}
			drop(r, o, 1);
			r->ctr.evicted++;
		} else if (over) {
			r->ctr.refused++;
			return MTR_EFULL; /* larger than max_bytes on its own */
		}
		p = calloc(1, sizeof *p);
		if (!p)
			return MTR_ENOMEM;
		p->stream = f->stream;
		p->seq = f->seq;
		p->total = f->total;
		p->frag_size = f->frag_size;
		p->nfrag = (uint32_t)(((uint64_t)f->total + f->frag_size - 1) / f->frag_size);
		p->first_ns = now_ns;
		p->buf = malloc(f->total);
		p->bits = calloc((p->nfrag + 63) / 64, sizeof *p->bits);
		if (!p->buf || !p->bits) {
			free(p->buf);
			free(p->bits);
			free(p);
			return MTR_ENOMEM;
		}
		insert(r, p);
		p->prev = r->newest;
		if (r->newest)
			r->newest->next = p;
		else
			r->oldest = p;
		r->newest = p;
		r->bytes += p->total;
		r->npartial++;
	}
	uint64_t bit = 1ull << (f->index % 64);
	if (p->bits[f->index / 64] & bit) {
		r->ctr.duplicates++;
		return 0;
	}
	p->bits[f->index / 64] |= bit;
	memcpy(p->buf + (size_t)f->index * p->frag_size, f->data, f->len);
	if (++p->have < p->nfrag)
		return 0;
	*item = p->buf;
	*item_len = p->total;
	drop(r, p, 0);
	r->ctr.completed++;
	return 1;
}

void reasm_expire(struct reasm *r, uint64_t now_ns, uint64_t max_age_ns)
{
	while (r->oldest && now_ns >= r->oldest->first_ns && now_ns - r->oldest->first_ns > max_age_ns) {
		drop(r, r->oldest, 1);
		r->ctr.expired++;
	}
}

size_t reasm_bytes(const struct reasm *r)
{
	return r->bytes;
}

unsigned reasm_partials(const struct reasm *r)
{
	return r->npartial;
}

void reasm_counters(const struct reasm *r, struct reasm_counters *out)
{
	*out = r->ctr;
}

void reasm_free(struct reasm *r)
{
	if (!r)
		return;
	while (r->oldest)
		drop(r, r->oldest, 1);
	free(r->slots);
	free(r);
}
