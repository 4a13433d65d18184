/*
 * result.c - the result of an item (or a read) as bytes (result.h,
 * doc/protocol.md "Result bytes").
 *
 * The replica encodes, the proxy forwards the bytes untouched, the client
 * library decodes.  result_decode() validates every byte once (counts
 * against the bytes left, value types, the row format, column counts, no
 * trailing bytes), so the iterators after it cannot fail and never check
 * anything again.  Pure: no I/O, no allocation.
 */
#include "config.h"

#include <string.h>

#include "metronome.h"
#include "result.h"
#include "util.h"

#define RESULT_HDR_SIZE 12  /* code, failed, nstmt */
#define RESULT_STMT_MIN 36  /* a statement without message, names or rows */
#define RESULT_NAME_MAX 0xffffu

static size_t name_len(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n > RESULT_NAME_MAX ? RESULT_NAME_MAX : n; /* longer names are cut */
}

static size_t stmt_size(const struct apply_stmt_result *s)
{
	size_t n = RESULT_STMT_MIN + (s->errmsg ? strlen(s->errmsg) : 0) + (size_t)s->ncols * 2 + s->rows_len;
	if (s->names)
		for (uint32_t i = 0; i < s->ncols; i++)
			n += name_len(s->names[i]);
	return n;
}

size_t result_size(const struct apply_result *r)
{
	if (r->raw)
		return r->raw_len;
	size_t n = RESULT_HDR_SIZE;
	for (uint32_t i = 0; i < r->nstmt; i++)
		n += stmt_size(&r->stmts[i]);
	return n;
}

long result_encode(const struct apply_result *r, uint8_t *buf, size_t cap)
{
	size_t need = result_size(r);
	if (need > cap || need > (size_t)INT32_MAX)
		return MTR_ETOOBIG;
	if (r->raw) {
		memcpy(buf, r->raw, r->raw_len);
		return (long)r->raw_len;
	}
	uint8_t *q = buf;
	st32(q, (uint32_t)r->code);
	st32(q + 4, r->failed);
	st32(q + 8, r->nstmt);
	q += RESULT_HDR_SIZE;
	for (uint32_t i = 0; i < r->nstmt; i++) {
		const struct apply_stmt_result *s = &r->stmts[i];
		size_t el = s->errmsg ? strlen(s->errmsg) : 0;
		st32(q, (uint32_t)s->code);
		st64(q + 4, (uint64_t)s->changes);
		st64(q + 12, (uint64_t)s->last_rowid);
		st32(q + 20, (uint32_t)el);
		q += 24;
		if (el)
			memcpy(q, s->errmsg, el);
		q += el;
		st32(q, s->ncols);
		q += 4;
		for (uint32_t c = 0; c < s->ncols; c++) {
			size_t nl = s->names ? name_len(s->names[c]) : 0;
			st16(q, (uint16_t)nl);
			if (nl)
				memcpy(q + 2, s->names[c], nl);
			q += 2 + nl;
		}
		st32(q, s->nrows);
		st32(q + 4, (uint32_t)s->rows_len);
		q += 8;
		if (s->rows_len)
			memcpy(q, s->rows, s->rows_len);
		q += s->rows_len;
	}
	return (long)(q - buf);
}

struct apply_result result_error(int code, const char *msg, struct apply_stmt_result *s)
{
	*s = (struct apply_stmt_result){.code = code, .errmsg = msg};
	return (struct apply_result){.code = code, .failed = 0, .nstmt = 1, .stmts = s};
}

long result_encode_error(int code, const char *msg, uint8_t *buf, size_t cap)
{
	struct apply_stmt_result s;
	struct apply_result r = result_error(code, msg, &s);
	return result_encode(&r, buf, cap);
}

/*
 * Validate nrows rows of exactly ncols values each filling rows[0..len)
 * exactly.  Every count is checked against the bytes left before use.
 */
static int rows_check(const uint8_t *p, size_t len, uint32_t ncols, uint32_t nrows)
{
	const uint8_t *end = p + len;
	if (nrows == 0)
		return len == 0 ? 0 : MTR_EMALFORMED;
	if (ncols == 0 || ncols > 0xffffu)
		return MTR_EMALFORMED;
	/* each row takes at least 2 + ncols bytes: bound nrows before looping */
	if ((uint64_t)nrows * (2 + ncols) > len)
		return MTR_EMALFORMED;
	for (uint32_t r = 0; r < nrows; r++) {
		if (end - p < 2)
			return MTR_EMALFORMED;
		if (ld16(p) != ncols)
			return MTR_EMALFORMED;
		p += 2;
		for (uint32_t c = 0; c < ncols; c++)
			if (wire_value_skip(&p, end) != 0)
				return MTR_EMALFORMED;
	}
	return p == end ? 0 : MTR_EMALFORMED;
}

int result_decode(const uint8_t *buf, size_t len, struct result_view *v)
{
	if (len < RESULT_HDR_SIZE)
		return MTR_ETRUNCATED;
	const uint8_t *p = buf + RESULT_HDR_SIZE, *end = buf + len;
	int code = (int32_t)ld32(buf);
	uint32_t failed = ld32(buf + 4), nstmt = ld32(buf + 8);
	/* the failing statement is one that ran; a success names none */
	if (code != 0 ? failed >= nstmt : failed != 0)
		return MTR_EMALFORMED;
	if ((uint64_t)nstmt * RESULT_STMT_MIN > (uint64_t)(end - p))
		return MTR_ETRUNCATED;
	for (uint32_t i = 0; i < nstmt; i++) {
		if (end - p < 24)
			return MTR_ETRUNCATED;
		uint32_t el = ld32(p + 20);
		p += 24;
		if ((size_t)(end - p) < el)
			return MTR_ETRUNCATED;
		p += el;
		if (end - p < 4)
			return MTR_ETRUNCATED;
		uint32_t ncols = ld32(p);
		p += 4;
		if ((uint64_t)ncols * 2 > (uint64_t)(end - p))
			return MTR_ETRUNCATED;
		for (uint32_t c = 0; c < ncols; c++) {
			if (end - p < 2)
				return MTR_ETRUNCATED;
			uint16_t nl = ld16(p);
			p += 2;
			if ((size_t)(end - p) < nl)
				return MTR_ETRUNCATED;
			p += nl;
		}
		if (end - p < 8)
			return MTR_ETRUNCATED;
		uint32_t nrows = ld32(p), rl = ld32(p + 4);
		p += 8;
		if ((size_t)(end - p) < rl)
			return MTR_ETRUNCATED;
		int rc = rows_check(p, rl, ncols, nrows);
		if (rc)
			return rc;
		p += rl;
	}
	if (p != end)
		return MTR_EMALFORMED;
	v->code = code;
	v->failed = failed;
	v->nstmt = nstmt;
	v->p = buf + RESULT_HDR_SIZE;
	v->end = end;
	return 0;
}

int result_next(struct result_view *v, struct result_stmt *s)
{
	if (v->p >= v->end)
		return 0;
	const uint8_t *p = v->p;
	s->code = (int32_t)ld32(p);
	s->changes = (int64_t)ld64(p + 4);
	s->last_rowid = (int64_t)ld64(p + 12);
	s->errmsg_len = ld32(p + 20);
	s->errmsg = s->errmsg_len ? (const char *)p + 24 : NULL;
	p += 24 + s->errmsg_len;
	s->ncols = ld32(p);
	p += 4;
	s->names = p;
	for (uint32_t c = 0; c < s->ncols; c++)
		p += 2 + ld16(p);
	s->nrows = ld32(p);
	s->rows_len = ld32(p + 4);
	s->rows = p + 8;
	v->p = p + 8 + s->rows_len;
	return 1;
}

const char *result_name_next(const uint8_t **p, uint16_t *len)
{
	const uint8_t *q = *p;
	*len = ld16(q);
	*p = q + 2 + *len;
	return (const char *)q + 2;
}

unsigned result_row_next(const uint8_t **p, const uint8_t *end, struct wire_value *vals, unsigned max)
{
	const uint8_t *q = *p;
	if (q >= end)
		return 0;
	unsigned n = ld16(q);
	q += 2;
	for (unsigned c = 0; c < n; c++) {
		struct wire_value v;
		wire_value_get(&q, &v);
		if (c < max)
			vals[c] = v;
	}
	*p = q;
	return n;
}
