/*
 * batch.c - batches of ranges (the Paxos value) and the contiguity cursor.
 * See batch.h for the format; everything here is pure and bounds-checked.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "metronome.h"
#include "util.h"

int batch_conf_validate(const struct batch_conf *c)
{
	if (c->n == 0 || c->n > BATCH_CONF_MAX)
		return MTR_EINVAL;
	bool voter = false;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct batch_member *m = &c->m[i];
		if (m->id >= BATCH_ID_MAX || m->voter > 1 || (i > 0 && c->m[i - 1].id >= m->id))
			return MTR_EINVAL;
		size_t len = strnlen(m->addr, sizeof m->addr);
		if (len > BATCH_ADDR_MAX)
			return MTR_EINVAL;
		for (size_t k = 0; k < len; k++)
			if (m->addr[k] <= ' ' || m->addr[k] > '~')
				return MTR_EINVAL;
		voter = voter || m->voter;
	}
	return voter ? 0 : MTR_EINVAL;
}

int batch_validate(const struct batch *b)
{
	if (b->n > BATCH_MAX_RANGES || (b->n > 0 && b->r == NULL))
		return MTR_EINVAL;
	for (uint32_t i = 0; i < b->n; i++) {
		const struct batch_range *r = &b->r[i];
		if (r->first == 0 || r->first > r->last)
			return MTR_EINVAL;
		if (i > 0 && b->r[i - 1].stream >= r->stream)
			return MTR_EINVAL;
	}
	return b->conf != NULL ? batch_conf_validate(b->conf) : 0;
}

uint64_t batch_conf_members(const struct batch_conf *c)
{
	uint64_t m = 0;
	for (uint32_t i = 0; i < c->n && i < BATCH_CONF_MAX; i++)
		if (c->m[i].id < BATCH_ID_MAX)
			m |= UINT64_C(1) << c->m[i].id;
	return m;
}

uint64_t batch_conf_voters(const struct batch_conf *c)
{
	uint64_t m = 0;
	for (uint32_t i = 0; i < c->n && i < BATCH_CONF_MAX; i++)
		if (c->m[i].id < BATCH_ID_MAX && c->m[i].voter)
			m |= UINT64_C(1) << c->m[i].id;
	return m;
}

const struct batch_member *batch_conf_find(const struct batch_conf *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n && i < BATCH_CONF_MAX; i++)
		if (c->m[i].id == id)
			return &c->m[i];
	return NULL;
}

int batch_set_conf(struct batch *b, const struct batch_conf *c)
{
	free(b->conf);
	b->conf = NULL;
	if (c == NULL)
		return 0;
	b->conf = malloc(sizeof *b->conf);
	if (b->conf == NULL)
		return MTR_ENOMEM;
	*b->conf = *c;
	return 0;
}

/* Encoded size of a configuration: u8 count, then per member 3 bytes and
 * the address. */
static size_t conf_size(const struct batch_conf *c)
{
	size_t s = 1;
	for (uint32_t i = 0; i < c->n && i < BATCH_CONF_MAX; i++)
		s += 3 + strnlen(c->m[i].addr, BATCH_ADDR_MAX);
	return s;
}

size_t batch_encoded_size(const struct batch *b)
{
	return BATCH_HDR_SIZE + (size_t)b->n * BATCH_RANGE_SIZE + (b->conf != NULL ? conf_size(b->conf) : 0);
}

int batch_encode(const struct batch *b, uint8_t *buf, size_t cap)
{
	size_t need = batch_encoded_size(b);
	if (cap < need)
		return MTR_ETOOBIG;
	st32(buf, b->n | (b->conf != NULL ? BATCH_CONF_FLAG : 0));
	uint8_t *p = buf + BATCH_HDR_SIZE;
	for (uint32_t i = 0; i < b->n; i++, p += BATCH_RANGE_SIZE) {
		st64(p, b->r[i].stream);
		st64(p + 8, b->r[i].first);
		st64(p + 16, b->r[i].last);
	}
	if (b->conf != NULL) {
		const struct batch_conf *c = b->conf;
		*p++ = (uint8_t)MIN(c->n, BATCH_CONF_MAX);
		for (uint32_t i = 0; i < c->n && i < BATCH_CONF_MAX; i++) {
			size_t len = strnlen(c->m[i].addr, BATCH_ADDR_MAX);
			*p++ = c->m[i].id;
			*p++ = c->m[i].voter;
			*p++ = (uint8_t)len;
			memcpy(p, c->m[i].addr, len);
			p += len;
		}
	}
	return (int)need;
}

/* Decode a configuration from buf[0..len) into *c; *used gets its size.
 * MTR_ETRUNCATED or MTR_EMALFORMED (count out of range, address too long;
 * the rest is batch_conf_validate()'s). */
static int conf_decode(struct batch_conf *c, const uint8_t *buf, size_t len, size_t *used)
{
	memset(c, 0, sizeof *c);
	if (len < 1)
		return MTR_ETRUNCATED;
	uint32_t n = buf[0];
	if (n == 0 || n > BATCH_CONF_MAX)
		return MTR_EMALFORMED;
	size_t off = 1;
	for (uint32_t i = 0; i < n; i++) {
		if (len - off < 3)
			return MTR_ETRUNCATED;
		uint8_t alen = buf[off + 2];
		if (alen > BATCH_ADDR_MAX)
			return MTR_EMALFORMED;
		if (len - off - 3 < alen)
			return MTR_ETRUNCATED;
		c->m[i].id = buf[off];
		c->m[i].voter = buf[off + 1];
		memcpy(c->m[i].addr, buf + off + 3, alen);
		c->m[i].addr[alen] = 0;
		/* a NUL inside the address would not re-encode the same */
		if (strlen(c->m[i].addr) != alen)
			return MTR_EMALFORMED;
		off += 3 + (size_t)alen;
	}
	c->n = n;
	*used = off;
	return 0;
}

int batch_decode(struct batch *b, const uint8_t *buf, size_t len, size_t *used)
{
	b->n = 0;
	b->r = NULL;
	b->conf = NULL;
	if (len < BATCH_HDR_SIZE)
		return MTR_ETRUNCATED;
	uint32_t n = ld32(buf);
	bool has_conf = (n & BATCH_CONF_FLAG) != 0;
	n &= ~BATCH_CONF_FLAG;
	if (n > BATCH_MAX_RANGES)
		return MTR_EMALFORMED;
	/* n <= 4096, so the product cannot overflow. */
	if (len - BATCH_HDR_SIZE < (size_t)n * BATCH_RANGE_SIZE)
		return MTR_ETRUNCATED;
	if (n > 0) {
		b->r = malloc((size_t)n * sizeof *b->r);
		if (b->r == NULL)
			return MTR_ENOMEM;
	}
	const uint8_t *p = buf + BATCH_HDR_SIZE;
	for (uint32_t i = 0; i < n; i++, p += BATCH_RANGE_SIZE) {
		b->r[i].stream = ld64(p);
		b->r[i].first = ld64(p + 8);
		b->r[i].last = ld64(p + 16);
	}
	b->n = n;
	size_t off = BATCH_HDR_SIZE + (size_t)n * BATCH_RANGE_SIZE, cused = 0;
	if (has_conf) {
		b->conf = malloc(sizeof *b->conf);
		if (b->conf == NULL) {
			batch_free(b);
			return MTR_ENOMEM;
		}
		int rc = conf_decode(b->conf, buf + off, len - off, &cused);
		if (rc != 0) {
			batch_free(b);
			return rc;
		}
	}
	if (batch_validate(b) != 0) {
		batch_free(b);
		return MTR_EMALFORMED;
	}
	if (used != NULL)
		*used = off + cused;
	return 0;
}

int batch_copy(struct batch *dst, const struct batch *src)
{
	if (dst == src)
		return 0;
	batch_free(dst);
	if (src->conf != NULL && batch_set_conf(dst, src->conf) != 0)
		return MTR_ENOMEM;
	if (src->n == 0)
		return 0;
	dst->r = malloc((size_t)src->n * sizeof *dst->r);
	if (dst->r == NULL) {
		batch_free(dst);
		return MTR_ENOMEM;
	}
	memcpy(dst->r, src->r, (size_t)src->n * sizeof *dst->r);
	dst->n = src->n;
	return 0;
}

int batch_push(struct batch *b, uint64_t stream, uint64_t first, uint64_t last)
{
	struct batch_range *r = realloc(b->r, ((size_t)b->n + 1) * sizeof *r);
	if (r == NULL)
		return MTR_ENOMEM;
	b->r = r;
	b->r[b->n++] = (struct batch_range){ stream, first, last };
	return 0;
}

bool batch_equal(const struct batch *a, const struct batch *b)
{
	if (a->n != b->n || (a->conf == NULL) != (b->conf == NULL))
		return false;
	if (a->conf != NULL) {
		const struct batch_conf *x = a->conf, *y = b->conf;
		if (x->n != y->n)
			return false;
		for (uint32_t i = 0; i < x->n && i < BATCH_CONF_MAX; i++)
			if (x->m[i].id != y->m[i].id || x->m[i].voter != y->m[i].voter ||
			    strcmp(x->m[i].addr, y->m[i].addr) != 0)
				return false;
	}
	return a->n == 0 || memcmp(a->r, b->r, (size_t)a->n * sizeof *a->r) == 0;
}

void batch_free(struct batch *b)
{
	free(b->r);
	free(b->conf);
	b->r = NULL;
	b->conf = NULL;
	b->n = 0;
}

/* Index of stream in o, or the insertion point (as ~index) when absent. */
static long order_find(const struct batch_order *o, uint64_t stream)
{
	uint32_t lo = 0, hi = o->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (o->v[mid].stream < stream)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < o->n && o->v[lo].stream == stream)
		return (long)lo;
	return ~(long)lo;
}

uint64_t batch_order_last(const struct batch_order *o, uint64_t stream)
{
	long i = order_find(o, stream);
	return i >= 0 ? o->v[i].seq : 0;
}

int batch_order_set(struct batch_order *o, uint64_t stream, uint64_t last)
{
	long i = order_find(o, stream);
	if (i >= 0) {
		o->v[i].seq = last;
		return 0;
	}
	uint32_t at = (uint32_t)~i;
	if (o->n == o->cap) {
		uint32_t cap = o->cap ? o->cap * 2 : 8;
		struct batch_mark *v = realloc(o->v, (size_t)cap * sizeof *v);
		if (v == NULL)
			return MTR_ENOMEM;
		o->v = v;
		o->cap = cap;
	}
	memmove(&o->v[at + 1], &o->v[at], (size_t)(o->n - at) * sizeof *o->v);
	o->v[at] = (struct batch_mark){ stream, last };
	o->n++;
	return 0;
}

int batch_order_check(const struct batch_order *o, const struct batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (b->r[i].first != batch_order_last(o, b->r[i].stream) + 1)
			return MTR_EINVAL;
	return 0;
}

int batch_order_apply(struct batch_order *o, const struct batch *b)
{
	int rc = batch_order_check(o, b);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < b->n; i++) {
		rc = batch_order_set(o, b->r[i].stream, b->r[i].last);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int batch_order_copy(struct batch_order *dst, const struct batch_order *src)
{
	if (dst == src)
		return 0;
	batch_order_free(dst);
	if (src->n == 0)
		return 0;
	dst->v = malloc((size_t)src->n * sizeof *dst->v);
	if (dst->v == NULL)
		return MTR_ENOMEM;
	memcpy(dst->v, src->v, (size_t)src->n * sizeof *dst->v);
	dst->n = dst->cap = src->n;
	return 0;
}

void batch_order_free(struct batch_order *o)
{
	free(o->v);
	o->v = NULL;
	o->n = o->cap = 0;
}
