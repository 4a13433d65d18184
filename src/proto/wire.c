/*
 * wire.c - encode, decode and validate the datagrams of wire.h.
 *
 * Decoders never trust a length: every read is preceded by a check against
 * the bytes that remain, written so that the arithmetic cannot overflow
 * (compare a length with what remains, never add to a pointer first).  An
 * item record is validated whole by wire_item_decode(), so the statement and
 * parameter iterators that follow need no checks.
 */
#include "config.h"

#include <string.h>
#include <sodium.h>
#include <xxhash.h>

#include "metronome.h"
#include "util.h"
#include "wire.h"

#define ITEM_FIXED 68u   /* record length field + fixed fields */
#define STMT_MAX_PARAMS 32766u

const char *wire_type_name(unsigned type)
{
	switch (type) {
#define X(name, value, text) \
	case value:          \
		return #name;
		WIRE_TYPE_MAP(X)
#undef X
	}
	return "?";
}

/* ---- datagrams ------------------------------------------------------- */

_Static_assert(WIRE_KEY_SIZE == crypto_shorthash_KEYBYTES && WIRE_TRAILER_SIZE == crypto_shorthash_BYTES,
	       "the trailer is one crypto_shorthash (SipHash-2-4) under a 16-byte key");

/* Write the trailer of buf[0..n) at buf + n: SipHash-2-4 under key k (its
 * 8 bytes are the little-endian u64 of the algorithm), or XXH3-64. */
static void trailer_put(uint8_t *buf, size_t n, const uint8_t *k)
{
	if (k)
		crypto_shorthash(buf + n, buf, n, k);
	else
		st64(buf + n, XXH3_64bits(buf, n));
}

/* Whether the trailer at buf + n is right for buf[0..n): the MAC under the
 * key (then its next key), compared in constant time, or XXH3-64. */
static int trailer_ok(const uint8_t *buf, size_t n, const struct wire_key *key)
{
	if (!(key && key->set))
		return ld64(buf + n) == XXH3_64bits(buf, n);
	uint8_t mac[WIRE_TRAILER_SIZE];
	crypto_shorthash(mac, buf, n, key->k);
	if (sodium_memcmp(mac, buf + n, sizeof mac) == 0)
		return 1;
	if (!key->next_set)
		return 0;
	crypto_shorthash(mac, buf, n, key->next);
	return sodium_memcmp(mac, buf + n, sizeof mac) == 0;
}

size_t wire_frame_finish(uint8_t *buf, const struct wire_from *f, uint8_t type, uint32_t length)
{
	const struct wire_key *key = f->key;
	st32(buf, WIRE_MAGIC);
	buf[4] = WIRE_VERSION;
	buf[5] = type;
	st16(buf + 6, key && key->set ? WIRE_F_MAC : 0);
	st32(buf + 8, f->cluster);
	st32(buf + 12, f->sender);
	st32(buf + 16, length);
	st32(buf + 20, 0);
	size_t n = WIRE_HDR_SIZE + (size_t)length;
	trailer_put(buf, n, key && key->set ? key->k : NULL);
	return n + WIRE_TRAILER_SIZE;
}

int wire_dgram_check(const uint8_t *buf, size_t len, uint32_t cluster, const struct wire_key *key,
		     struct wire_hdr *out)
{
	if (len < WIRE_OVERHEAD)
		return MTR_ETRUNCATED;
	if (ld32(buf) != WIRE_MAGIC)
		return MTR_EMAGIC;
	if (buf[4] != WIRE_VERSION)
		return MTR_EVERSION;
	uint32_t plen = ld32(buf + 16);
	if (plen > len - WIRE_OVERHEAD)
		return MTR_ETRUNCATED;
	if (plen < len - WIRE_OVERHEAD)
		return MTR_EMALFORMED;
	if (ld32(buf + 20) != 0)
		return MTR_EMALFORMED;
	uint16_t flags = ld16(buf + 6);
	int keyed = key && key->set;
	if (!!(flags & WIRE_F_MAC) != keyed)
		return MTR_EINTEGRITY;
	size_t n = WIRE_HDR_SIZE + (size_t)plen;
	if (!trailer_ok(buf, n, key))
		return MTR_EINTEGRITY;
	if (ld32(buf + 8) != cluster)
		return MTR_ECLUSTER;
	out->version = buf[4];
	out->type = buf[5];
	out->flags = flags;
	out->cluster = cluster;
	out->sender = ld32(buf + 12);
	out->length = plen;
	return 0;
}

/* ---- the value codec ------------------------------------------------ */

size_t wire_value_size(const struct wire_value *v)
{
	switch (v->type) {
	case WIRE_V_NULL:
		return 1;
	case WIRE_V_INT:
	case WIRE_V_REAL:
		return 9;
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		return 5 + (size_t)v->u.b.n;
	default:
		return 0;
	}
}

size_t wire_value_head(uint8_t *p, const struct wire_value *v)
{
	uint64_t bits;
	p[0] = v->type;
	switch (v->type) {
	case WIRE_V_INT:
		st64(p + 1, (uint64_t)v->u.i);
		return 9;
	case WIRE_V_REAL:
		memcpy(&bits, &v->u.r, 8);
		st64(p + 1, bits);
		return 9;
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		st32(p + 1, v->u.b.n);
		return 5;
	default: /* NULL */
		return 1;
	}
}

uint8_t *wire_value_put(uint8_t *p, const struct wire_value *v)
{
	size_t h = wire_value_head(p, v);
	if ((v->type == WIRE_V_TEXT || v->type == WIRE_V_BLOB) && v->u.b.n) {
		memcpy(p + h, v->u.b.p, v->u.b.n);
		h += v->u.b.n;
	}
	return p + h;
}

int wire_value_skip(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *q = *p;
	if (q >= end)
		return MTR_ETRUNCATED;
	uint8_t t = *q++;
	size_t need;
	switch (t) {
	case WIRE_V_NULL:
		need = 0;
		break;
	case WIRE_V_INT:
	case WIRE_V_REAL:
		need = 8;
		break;
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		if (end - q < 4)
			return MTR_ETRUNCATED;
		need = ld32(q);
		q += 4;
		break;
	default:
		return MTR_EMALFORMED;
	}
	if ((size_t)(end - q) < need)
		return MTR_ETRUNCATED;
	*p = q + need;
	return 0;
}

void wire_value_get(const uint8_t **p, struct wire_value *v)
{
	const uint8_t *q = *p;
	uint64_t bits;
	v->type = *q++;
	v->u.i = 0; /* NULL: a defined, zero value */
	switch (v->type) {
	case WIRE_V_INT:
		v->u.i = (int64_t)ld64(q);
		q += 8;
		break;
	case WIRE_V_REAL:
		bits = ld64(q);
		memcpy(&v->u.r, &bits, 8);
		q += 8;
		break;
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		v->u.b.n = ld32(q);
		v->u.b.p = q + 4;
		q += 4 + (size_t)v->u.b.n;
		break;
	default:
		break;
	}
	*p = q;
}

/* ---- items ----------------------------------------------------------- */

size_t wire_item_size(const struct wire_item *it)
{
	size_t n = ITEM_FIXED;
	for (uint32_t s = 0; s < it->nstmt; s++) {
		const struct wire_stmt *st = &it->stmts[s];
		n += 4 + (size_t)st->sql_len + 2;
		for (unsigned i = 0; i < st->nparams; i++)
			n += wire_value_size(&st->params[i]);
	}
	return n;
}

long wire_item_encode(uint8_t *buf, size_t cap, const struct wire_item *it)
{
	size_t n = wire_item_size(it);
	if (n > cap || n - 4 > UINT32_MAX)
		return MTR_ETOOBIG;
	if (it->nstmt == 0)
		return MTR_EINVAL;
	uint8_t *p = buf;
	st32(p, (uint32_t)(n - 4));
	st32(p + 4, it->flags);
	st64(p + 8, it->stream);
	st64(p + 16, it->seq);
	st64(p + 24, it->request);
	st64(p + 32, (uint64_t)it->timestamp_us);
	st64(p + 40, it->seed);
	st64(p + 48, it->client);
	st64(p + 56, it->floor);
	st32(p + 64, it->nstmt);
	p += ITEM_FIXED;
	for (uint32_t s = 0; s < it->nstmt; s++) {
		const struct wire_stmt *st = &it->stmts[s];
		if (st->nparams > STMT_MAX_PARAMS)
			return MTR_EINVAL;
		st32(p, st->sql_len);
		if (st->sql_len)
			memcpy(p + 4, st->sql, st->sql_len);
		p += 4 + st->sql_len;
		st16(p, st->nparams);
		p += 2;
		for (unsigned i = 0; i < st->nparams; i++) {
			if (wire_value_size(&st->params[i]) == 0)
				return MTR_EINVAL;
			p = wire_value_put(p, &st->params[i]);
		}
	}
	return (long)(p - buf);
}

long wire_item_decode(const uint8_t *p, size_t len, struct wire_item *it)
{
	if (len < 4)
		return MTR_ETRUNCATED;
	uint32_t reclen = ld32(p);
	if (reclen > len - 4)
		return MTR_ETRUNCATED;
	if (reclen < ITEM_FIXED - 4)
		return MTR_EMALFORMED;
	const uint8_t *q = p + ITEM_FIXED;
	const uint8_t *end = p + 4 + reclen;
	uint32_t nstmt = ld32(p + 64);
	if (nstmt == 0)
		return MTR_EMALFORMED;
	/* Each statement needs at least 6 bytes: bound nstmt before looping. */
	if (nstmt > (size_t)(end - q) / 6)
		return MTR_EMALFORMED;
	for (uint32_t s = 0; s < nstmt; s++) {
		if ((size_t)(end - q) < 4)
			return MTR_EMALFORMED;
		uint32_t sl = ld32(q);
		q += 4;
		if (sl > (size_t)(end - q) || (size_t)(end - q) - sl < 2)
			return MTR_EMALFORMED;
		q += sl;
		uint16_t np = ld16(q);
		q += 2;
		if (np > STMT_MAX_PARAMS)
			return MTR_EMALFORMED;
		for (unsigned i = 0; i < np; i++)
			if (wire_value_skip(&q, end) != 0)
				return MTR_EMALFORMED;
	}
	if (q != end)
		return MTR_EMALFORMED;
	uint64_t stream = ld64(p + 8), seq = ld64(p + 16);
	if (stream == 0 || seq == 0)
		return MTR_EMALFORMED;
	it->flags = ld32(p + 4);
	it->stream = stream;
	it->seq = seq;
	it->request = ld64(p + 24);
	it->timestamp_us = (int64_t)ld64(p + 32);
	it->seed = ld64(p + 40);
	it->client = ld64(p + 48);
	it->floor = ld64(p + 56);
	it->nstmt = nstmt;
	it->stmts = NULL;
	it->body = p + ITEM_FIXED;
	it->body_len = reclen - (ITEM_FIXED - 4);
	return (long)(4 + (size_t)reclen);
}

void wire_stmt_begin(const struct wire_item *it, struct wire_stmt_iter *si)
{
	si->arr = it->stmts;
	si->p = it->stmts ? NULL : it->body;
	si->end = it->stmts ? NULL : it->body + it->body_len;
	si->left = it->nstmt;
}

int wire_stmt_next(struct wire_stmt_iter *si, struct wire_stmt *st, const uint8_t **params)
{
	if (si->left == 0)
		return 0;
	si->left--;
	if (si->arr) {
		*st = *si->arr++;
		*params = NULL;
		return 1;
	}
	const uint8_t *q = si->p;
	st->sql_len = ld32(q);
	st->sql = (const char *)q + 4;
	q += 4 + st->sql_len;
	st->nparams = ld16(q);
	st->params = NULL;
	q += 2;
	*params = q;
	/* skip the parameters to reach the next statement */
	for (unsigned i = 0; i < st->nparams; i++) {
		struct wire_value v;
		wire_value_get(&q, &v);
	}
	si->p = q;
	return 1;
}

void wire_param_next(const uint8_t **params, struct wire_value *v)
{
	wire_value_get(params, v);
}

/* ---- packer ---------------------------------------------------------- */

void wire_packer_init(struct wire_packer *pk, uint8_t *buf, size_t mtu, const struct wire_from *f)
{
	memset(pk, 0, sizeof *pk);
	pk->buf = buf;
	pk->mtu = mtu;
	pk->from = *f;
}

int wire_packer_add(struct wire_packer *pk, const struct wire_item *it)
{
	size_t room = pk->mtu - WIRE_OVERHEAD;
	size_t n = wire_item_size(it);
	if (n > room)
		return MTR_ETOOBIG;
	if (n > room - pk->used)
		return MTR_EFULL;
	long w = wire_item_encode(pk->buf + WIRE_HDR_SIZE + pk->used, room - pk->used, it);
	if (w < 0)
		return (int)w;
	pk->used += (size_t)w;
	pk->count++;
	return 0;
}

size_t wire_packer_finish(struct wire_packer *pk)
{
	if (pk->count == 0)
		return 0;
	size_t n = wire_frame_finish(pk->buf, &pk->from, WIRE_T_ITEMS, (uint32_t)pk->used);
	pk->used = 0;
	pk->count = 0;
	return n;
}

int wire_items_next(const uint8_t **p, const uint8_t *end, struct wire_item *it)
{
	if (*p >= end)
		return 0;
	long n = wire_item_decode(*p, (size_t)(end - *p), it);
	if (n < 0)
		return (int)n;
	*p += n;
	return 1;
}

/* ---- fragments ------------------------------------------------------- */

size_t wire_frag_size(size_t mtu)
{
	return mtu - WIRE_OVERHEAD - WIRE_FRAG_HDR_SIZE;
}

uint32_t wire_frag_count(size_t item_len, size_t mtu)
{
	size_t fs = wire_frag_size(mtu);
	return (uint32_t)((item_len + fs - 1) / fs);
}

size_t wire_frag_build(uint8_t *buf, size_t mtu, const struct wire_from *f, uint64_t stream, uint64_t seq,
		       const uint8_t *item, size_t item_len, uint32_t index)
{
	size_t fs = wire_frag_size(mtu);
	size_t off = (size_t)index * fs;
	size_t n = MIN(fs, item_len - off);
	uint8_t *p = buf + WIRE_HDR_SIZE;
	st64(p, stream);
	st64(p + 8, seq);
	st32(p + 16, (uint32_t)item_len);
	st32(p + 20, (uint32_t)fs);
	st32(p + 24, index);
	memcpy(p + WIRE_FRAG_HDR_SIZE, item + off, n);
	return wire_frame_finish(buf, f, WIRE_T_FRAGMENT, (uint32_t)(WIRE_FRAG_HDR_SIZE + n));
}

int wire_frag_decode(const uint8_t *p, size_t len, size_t max_item, struct wire_frag *f)
{
	if (len < WIRE_FRAG_HDR_SIZE)
		return MTR_EMALFORMED;
	f->stream = ld64(p);
	f->seq = ld64(p + 8);
	f->total = ld32(p + 16);
	f->frag_size = ld32(p + 20);
	f->index = ld32(p + 24);
	f->data = p + WIRE_FRAG_HDR_SIZE;
	f->len = (uint32_t)(len - WIRE_FRAG_HDR_SIZE);
	if (f->stream == 0 || f->seq == 0 || f->total == 0 || f->frag_size == 0)
		return MTR_EMALFORMED;
	if (f->total > max_item)
		return MTR_ETOOBIG;
	uint64_t nfrag = ((uint64_t)f->total + f->frag_size - 1) / f->frag_size;
	if (f->index >= nfrag)
		return MTR_EMALFORMED;
	uint64_t off = (uint64_t)f->index * f->frag_size;
	uint64_t want = MIN((uint64_t)f->frag_size, (uint64_t)f->total - off);
	if (f->len != want)
		return MTR_EMALFORMED;
	return 0;
}

/* ---- control messages ------------------------------------------------ */

size_t wire_heartbeat_build(uint8_t *buf, const struct wire_from *f, const struct wire_heartbeat *m)
{
	st64(buf + WIRE_HDR_SIZE, m->stream);
	st64(buf + WIRE_HDR_SIZE + 8, m->high);
	return wire_frame_finish(buf, f, WIRE_T_HEARTBEAT, 16);
}

int wire_heartbeat_decode(const uint8_t *p, size_t len, struct wire_heartbeat *m)
{
	if (len != 16)
		return MTR_EMALFORMED;
	m->stream = ld64(p);
	m->high = ld64(p + 8);
	return m->stream ? 0 : MTR_EMALFORMED;
}

size_t wire_resend_build(uint8_t *buf, const struct wire_from *f, const struct wire_resend *m)
{
	st64(buf + WIRE_HDR_SIZE, m->stream);
	st64(buf + WIRE_HDR_SIZE + 8, m->first);
	st64(buf + WIRE_HDR_SIZE + 16, m->last);
	return wire_frame_finish(buf, f, WIRE_T_RESEND, 24);
}

int wire_resend_decode(const uint8_t *p, size_t len, struct wire_resend *m)
{
	if (len != 24)
		return MTR_EMALFORMED;
	m->stream = ld64(p);
	m->first = ld64(p + 8);
	m->last = ld64(p + 16);
	if (m->stream == 0 || m->first == 0 || m->first > m->last)
		return MTR_EMALFORMED;
	return 0;
}
