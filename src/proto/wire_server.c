/*
 * wire_server.c - RESULT, RESULT_REQUEST, RESULT_UNKNOWN, READ, CANCEL_READ,
 * STATUS and STATS datagrams (wire_server.h, doc/protocol.md "RESULT",
 * "RESULT_REQUEST", "RESULT_UNKNOWN", "READ", "CANCEL_READ", "STATUS").
 * Pure: no I/O, no clock.
 */
#include "config.h"

#include <string.h>

#include "metronome.h"
#include "util.h"
#include "wire_server.h"

size_t wire_result_build(uint8_t *buf, size_t mtu, const struct wire_from *f, uint64_t stream,
			 const struct wire_result *r, size_t n, size_t *idx, uint32_t *off)
{
	if (*idx >= n)
		return 0;
	if (mtu > WIRE_MAX_DGRAM)
		mtu = WIRE_MAX_DGRAM;
	uint8_t *pl = buf + WIRE_HDR_SIZE;
	size_t room = mtu - WIRE_OVERHEAD; /* payload bytes available */
	size_t used = WIRE_RESULT_HDR_SIZE;
	uint32_t nrec = 0;

	/*
	 * Each record needs its 36-byte header plus at least one byte (or none
	 * for an empty result).  mtu >= WIRE_MIN_MTU leaves room for the first
	 * record and some bytes of it, so every datagram makes progress.
	 */
	while (*idx < n) {
		const struct wire_result *x = &r[*idx];
		uint32_t rest = x->len - *off;
		if (used + WIRE_RESULT_REC_SIZE > room)
			break;
		size_t space = room - used - WIRE_RESULT_REC_SIZE;
		if (rest > 0 && space == 0)
			break;
		uint32_t chunk = rest < space ? rest : (uint32_t)space;
		uint8_t *q = pl + used;
		st64(q, x->seq);
		st64(q + 8, x->request);
		st64(q + 16, x->instance);
		st32(q + 24, x->len);
		st32(q + 28, *off);
		st32(q + 32, chunk);
		if (chunk)
			memcpy(q + WIRE_RESULT_REC_SIZE, x->data + *off, chunk);
		used += WIRE_RESULT_REC_SIZE + chunk;
		nrec++;
		if (chunk == rest) {
			(*idx)++;
			*off = 0;
		} else {
			*off += chunk;
			break; /* the datagram is full */
		}
	}
	st64(pl, stream);
	st32(pl + 8, nrec);
	return wire_frame_finish(buf, f, WIRE_T_RESULT, (uint32_t)used);
}

int wire_result_decode(const uint8_t *p, size_t len, size_t max_result, struct wire_result_msg *m)
{
	if (len < WIRE_RESULT_HDR_SIZE)
		return MTR_ETRUNCATED;
	m->stream = ld64(p);
	m->nrec = ld32(p + 8);
	if (!m->stream || !m->nrec)
		return MTR_EMALFORMED;
	const uint8_t *q = p + WIRE_RESULT_HDR_SIZE, *end = p + len;
	m->p = q;
	m->end = end;
	for (uint32_t i = 0; i < m->nrec; i++) {
		if ((size_t)(end - q) < WIRE_RESULT_REC_SIZE)
			return MTR_ETRUNCATED;
		uint64_t seq = ld64(q), request = ld64(q + 8);
		uint32_t total = ld32(q + 24), offset = ld32(q + 28), n = ld32(q + 32);
		if (!seq && !request) /* seq 0 is the answer to READ request */
			return MTR_EMALFORMED;
		if (total > max_result)
			return MTR_ETOOBIG;
		if (offset > total || n > total - offset || (n == 0 && total != 0))
			return MTR_EMALFORMED;
		q += WIRE_RESULT_REC_SIZE;
		if ((size_t)(end - q) < n)
			return MTR_ETRUNCATED;
		q += n;
	}
	return q == end ? 0 : MTR_EMALFORMED;
}

int wire_result_next(struct wire_result_msg *m, struct wire_result_rec *rec)
{
	if (m->p >= m->end)
		return 0;
	const uint8_t *q = m->p;
	rec->seq = ld64(q);
	rec->request = ld64(q + 8);
	rec->instance = ld64(q + 16);
	rec->total = ld32(q + 24);
	rec->offset = ld32(q + 28);
	rec->len = ld32(q + 32);
	rec->data = q + WIRE_RESULT_REC_SIZE;
	m->p = q + WIRE_RESULT_REC_SIZE + rec->len;
	return 1;
}

/* How many records of rec_size fit in cap bytes after a header of
 * hdr_size (and the datagram's overhead), at most want and the maximum. */
static uint32_t recs_fit(size_t cap, size_t hdr_size, size_t rec_size, uint32_t want)
{
	if (cap > WIRE_MAX_DGRAM)
		cap = WIRE_MAX_DGRAM;
	if (cap < WIRE_OVERHEAD + hdr_size + rec_size)
		return 0;
	size_t n = (cap - WIRE_OVERHEAD - hdr_size) / rec_size;
	if (n > want)
		n = want;
	if (n > WIRE_RREQ_MAX_RECS)
		n = WIRE_RREQ_MAX_RECS;
	return (uint32_t)n;
}

size_t wire_result_request_build(uint8_t *buf, size_t cap, const struct wire_from *f,
				 const struct wire_result_request *m, uint32_t *packed)
{
	uint32_t n = recs_fit(cap, WIRE_RREQ_HDR_SIZE, WIRE_RREQ_REC_SIZE, m->nrec);
	*packed = n;
	if (n == 0)
		return 0;
	uint8_t *pl = buf + WIRE_HDR_SIZE;
	st64(pl, m->stream);
	st32(pl + 8, n);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *q = pl + WIRE_RREQ_HDR_SIZE + (size_t)i * WIRE_RREQ_REC_SIZE;
		st64(q, m->recs[i].seq);
		st64(q + 8, m->recs[i].client);
		st64(q + 16, m->recs[i].request);
	}
	return wire_frame_finish(buf, f, WIRE_T_RESULT_REQUEST,
				 (uint32_t)(WIRE_RREQ_HDR_SIZE + (size_t)n * WIRE_RREQ_REC_SIZE));
}

/* The common shape of RESULT_REQUEST and RESULT_UNKNOWN: a header whose
 * last field is nrec u32, then nrec records whose first field is a
 * non-zero seq u64. */
static int recs_check(const uint8_t *p, size_t len, size_t hdr_size, size_t rec_size, uint32_t *nrec)
{
	if (len < hdr_size)
		return MTR_EMALFORMED;
	uint32_t n = ld32(p + hdr_size - 4);
	if (n == 0 || n > WIRE_RREQ_MAX_RECS || len != hdr_size + (size_t)n * rec_size || ld64(p) == 0)
		return MTR_EMALFORMED;
	for (uint32_t i = 0; i < n; i++)
		if (ld64(p + hdr_size + (size_t)i * rec_size) == 0)
			return MTR_EMALFORMED;
	*nrec = n;
	return 0;
}

int wire_result_request_decode(const uint8_t *p, size_t len, struct wire_result_request *m)
{
	int rc = recs_check(p, len, WIRE_RREQ_HDR_SIZE, WIRE_RREQ_REC_SIZE, &m->nrec);
	if (rc)
		return rc;
	m->stream = ld64(p);
	m->recs = NULL;
	m->p = p + WIRE_RREQ_HDR_SIZE;
	return 0;
}

void wire_rreq_rec_get(const struct wire_result_request *m, uint32_t i, struct wire_rreq_rec *out)
{
	const uint8_t *q = m->p + (size_t)i * WIRE_RREQ_REC_SIZE;
	out->seq = ld64(q);
	out->client = ld64(q + 8);
	out->request = ld64(q + 16);
}

size_t wire_result_unknown_build(uint8_t *buf, size_t cap, const struct wire_from *f,
				 const struct wire_result_unknown *m, uint32_t *packed)
{
	uint32_t n = recs_fit(cap, WIRE_RUNK_HDR_SIZE, WIRE_RUNK_REC_SIZE, m->nrec);
	*packed = n;
	if (n == 0)
		return 0;
	uint8_t *pl = buf + WIRE_HDR_SIZE;
	st64(pl, m->stream);
	st64(pl + 8, m->instance);
	st32(pl + 16, n);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *q = pl + WIRE_RUNK_HDR_SIZE + (size_t)i * WIRE_RUNK_REC_SIZE;
		st64(q, m->recs[i].seq);
		st64(q + 8, m->recs[i].request);
	}
	return wire_frame_finish(buf, f, WIRE_T_RESULT_UNKNOWN,
				 (uint32_t)(WIRE_RUNK_HDR_SIZE + (size_t)n * WIRE_RUNK_REC_SIZE));
}

int wire_result_unknown_decode(const uint8_t *p, size_t len, struct wire_result_unknown *m)
{
	int rc = recs_check(p, len, WIRE_RUNK_HDR_SIZE, WIRE_RUNK_REC_SIZE, &m->nrec);
	if (rc)
		return rc;
	m->stream = ld64(p);
	m->instance = ld64(p + 8);
	m->recs = NULL;
	m->p = p + WIRE_RUNK_HDR_SIZE;
	return 0;
}

void wire_runk_rec_get(const struct wire_result_unknown *m, uint32_t i, struct wire_runk_rec *out)
{
	const uint8_t *q = m->p + (size_t)i * WIRE_RUNK_REC_SIZE;
	out->seq = ld64(q);
	out->request = ld64(q + 8);
}

long wire_read_build(uint8_t *buf, size_t cap, const struct wire_from *f, const struct wire_read *m)
{
	if (cap > WIRE_MAX_DGRAM)
		cap = WIRE_MAX_DGRAM;
	if (cap < WIRE_OVERHEAD + WIRE_READ_HDR_SIZE || m->item_len > cap - WIRE_OVERHEAD - WIRE_READ_HDR_SIZE)
		return MTR_ETOOBIG;
	uint8_t *pl = buf + WIRE_HDR_SIZE;
	st64(pl, m->stream);
	st64(pl + 8, m->rid);
	st64(pl + 16, m->min_instance);
	st32(pl + 24, m->deadline_ms);
	if (m->item_len)
		memcpy(pl + WIRE_READ_HDR_SIZE, m->item, m->item_len);
	return (long)wire_frame_finish(buf, f, WIRE_T_READ, WIRE_READ_HDR_SIZE + m->item_len);
}

int wire_read_decode(const uint8_t *p, size_t len, struct wire_read *m)
{
	if (len <= WIRE_READ_HDR_SIZE || len - WIRE_READ_HDR_SIZE > UINT32_MAX)
		return MTR_EMALFORMED;
	m->stream = ld64(p);
	m->rid = ld64(p + 8);
	m->min_instance = ld64(p + 16);
	m->deadline_ms = ld32(p + 24);
	m->item = p + WIRE_READ_HDR_SIZE;
	m->item_len = (uint32_t)(len - WIRE_READ_HDR_SIZE);
	return m->stream && m->rid && m->deadline_ms && m->deadline_ms <= WIRE_READ_DEADLINE_MAX ? 0 : MTR_EMALFORMED;
}

size_t wire_cancel_read_build(uint8_t *buf, const struct wire_from *f, const struct wire_cancel_read *m)
{
	st64(buf + WIRE_HDR_SIZE, m->stream);
	st64(buf + WIRE_HDR_SIZE + 8, m->rid);
	return wire_frame_finish(buf, f, WIRE_T_CANCEL_READ, WIRE_CANCEL_READ_SIZE);
}

void wire_reads_begin(struct wire_reads_pk *pk, uint8_t *buf, size_t cap, uint64_t stream)
{
	pk->buf = buf;
	pk->cap = cap > WIRE_MAX_DGRAM ? WIRE_MAX_DGRAM : cap;
	pk->used = 8;
	pk->n = 0;
	st64(buf + WIRE_HDR_SIZE, stream);
}

size_t wire_reads_rec_size(uint32_t item_len)
{
	return WIRE_READS_REC_HDR + (size_t)item_len;
}

int wire_reads_add(struct wire_reads_pk *pk, const struct wire_read *m)
{
	if (m->item_len < 4 || 4u + (size_t)ld32(m->item) != m->item_len)
		return MTR_EINVAL;
	size_t need = wire_reads_rec_size(m->item_len);
	if (pk->cap < WIRE_OVERHEAD || need > pk->cap - WIRE_OVERHEAD - pk->used)
		return MTR_ETOOBIG;
	uint8_t *q = pk->buf + WIRE_HDR_SIZE + pk->used;
	st64(q, m->rid);
	st64(q + 8, m->min_instance);
	st32(q + 16, m->deadline_ms);
	memcpy(q + WIRE_READS_REC_HDR, m->item, m->item_len);
	pk->used += need;
	pk->n++;
	return 0;
}

size_t wire_reads_finish(struct wire_reads_pk *pk, const struct wire_from *f)
{
	if (pk->n == 0)
		return 0;
	return wire_frame_finish(pk->buf, f, pk->n == 1 ? WIRE_T_READ : WIRE_T_READS, (uint32_t)pk->used);
}

int wire_reads_next(const uint8_t **p, const uint8_t *start, const uint8_t *end, struct wire_read *m)
{
	if (end - start < 8 || ld64(start) == 0)
		return MTR_EMALFORMED;
	if (*p == start) {
		*p += 8;
		if (*p == end)
			return MTR_EMALFORMED; /* no record */
	}
	if (*p == end)
		return 0;
	size_t left = (size_t)(end - *p);
	if (left < WIRE_READS_REC_HDR + 4)
		return MTR_EMALFORMED;
	const uint8_t *q = *p;
	size_t ilen = 4u + (size_t)ld32(q + WIRE_READS_REC_HDR);
	if (ilen > left - WIRE_READS_REC_HDR)
		return MTR_EMALFORMED;
	m->stream = ld64(start);
	m->rid = ld64(q);
	m->min_instance = ld64(q + 8);
	m->deadline_ms = ld32(q + 16);
	m->item = q + WIRE_READS_REC_HDR;
	m->item_len = (uint32_t)ilen;
	*p = q + WIRE_READS_REC_HDR + ilen;
	return m->rid && m->deadline_ms && m->deadline_ms <= WIRE_READ_DEADLINE_MAX ? 1 : MTR_EMALFORMED;
}

int wire_cancel_read_decode(const uint8_t *p, size_t len, struct wire_cancel_read *m)
{
	if (len != WIRE_CANCEL_READ_SIZE)
		return MTR_EMALFORMED;
	m->stream = ld64(p);
	m->rid = ld64(p + 8);
	return m->stream && m->rid ? 0 : MTR_EMALFORMED;
}

size_t wire_status_build(uint8_t *buf, const struct wire_from *f, const struct wire_status *m)
{
	uint8_t *pl = buf + WIRE_HDR_SIZE;
	st32(pl, m->node);
	pl[4] = m->role;
	st32(pl + 5, m->leader);
	st64(pl + 9, m->ballot);
	st64(pl + 17, m->chosen);
	st64(pl + 25, m->applied);
	st64(pl + 33, m->compacted);
	st64(pl + 41, m->origin);
	size_t len = WIRE_STATUS_SIZE;
	if (m->conf != 0) {
		st64(pl + len, m->conf);
		pl[len + 8] = m->nmembers;
		len += 9;
		for (unsigned i = 0; i < m->nmembers; i++, len += WIRE_STATUS_MEMBER_SIZE) {
			pl[len] = m->m[i].id;
			pl[len + 1] = m->m[i].flags;
			st32(pl + len + 2, m->m[i].ip);
			st16(pl + len + 6, m->m[i].port);
		}
	}
	return wire_frame_finish(buf, f, WIRE_T_STATUS, (uint32_t)len);
}

/* The membership part of a STATUS (len bytes after the origin). */
static int status_members_decode(const uint8_t *p, size_t len, struct wire_status *m)
{
	if (len < 9)
		return MTR_EMALFORMED;
	m->conf = ld64(p);
	m->nmembers = p[8];
	if (m->conf < 2 || m->nmembers == 0 || m->nmembers > WIRE_STATUS_MEMBERS_MAX ||
	    len != 9 + (size_t)m->nmembers * WIRE_STATUS_MEMBER_SIZE)
		return MTR_EMALFORMED;
	int staying = 0;
	for (unsigned i = 0; i < m->nmembers; i++) {
		const uint8_t *q = p + 9 + (size_t)i * WIRE_STATUS_MEMBER_SIZE;
		struct wire_status_member *e = &m->m[i];
		e->id = q[0];
		e->flags = q[1];
		e->ip = ld32(q + 2);
		e->port = ld16(q + 6);
		if (e->id >= WIRE_MEMBER_ID_MAX || (i > 0 && e->id <= m->m[i - 1].id) ||
		    (e->flags & ~(WIRE_MEMBER_VOTER | WIRE_MEMBER_LEAVING)) || e->port == 0)
			return MTR_EMALFORMED;
		staying |= !(e->flags & WIRE_MEMBER_LEAVING);
	}
	return staying ? 0 : MTR_EMALFORMED;
}

int wire_status_decode(const uint8_t *p, size_t len, struct wire_status *m)
{
	if ((len != WIRE_STATUS_SIZE && len != WIRE_STATUS_SIZE_V1 && len < WIRE_STATUS_SIZE + 9) ||
	    p[4] > WIRE_ROLE_LEADER)
		return MTR_EMALFORMED;
	m->conf = 0;
	m->nmembers = 0;
	if (len > WIRE_STATUS_SIZE && status_members_decode(p + WIRE_STATUS_SIZE, len - WIRE_STATUS_SIZE, m) != 0)
		return MTR_EMALFORMED;
	m->node = ld32(p);
	m->role = p[4];
	m->leader = ld32(p + 5);
	m->ballot = ld64(p + 9);
	m->chosen = ld64(p + 17);
	m->applied = ld64(p + 25);
	m->compacted = ld64(p + 33);
	m->origin = len >= WIRE_STATUS_SIZE ? ld64(p + 41) : 0;
	return 0;
}

/* ---- STATS ------------------------------------------------------------ */

static int stat_name_ok(const uint8_t *s, size_t n)
{
	if (n == 0 || n > WIRE_STAT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

size_t wire_stats_build(uint8_t *buf, size_t mtu, const struct wire_from *f, uint32_t node,
			const struct wire_stat *s, size_t n, size_t *idx)
{
	if (*idx >= n)
		return 0;
	if (mtu > WIRE_MAX_DGRAM)
		mtu = WIRE_MAX_DGRAM;
	if (n > UINT16_MAX)
		n = UINT16_MAX;
	uint8_t *pl = buf + WIRE_HDR_SIZE;
	size_t room = mtu - WIRE_OVERHEAD, used = WIRE_STATS_HDR_SIZE;
	size_t first = *idx;
	while (*idx < n) {
		size_t len = s[*idx].name_len ? s[*idx].name_len : strlen(s[*idx].name);
		if (len > WIRE_STAT_NAME_MAX)
			len = WIRE_STAT_NAME_MAX;
		if (used + 1 + len + 8 > room)
			break;
		pl[used] = (uint8_t)len;
		memcpy(pl + used + 1, s[*idx].name, len);
		st64(pl + used + 1 + len, s[*idx].value);
		used += 1 + len + 8;
		(*idx)++;
	}
	st32(pl, node);
	st16(pl + 4, (uint16_t)n);
	st16(pl + 6, (uint16_t)first);
	st16(pl + 8, (uint16_t)(*idx - first));
	return wire_frame_finish(buf, f, WIRE_T_STATS, (uint32_t)used);
}

void wire_stats_list_put(void *list, const char *name, uint64_t value)
{
	struct wire_stats_list *o = list;
	if (o->n == WIRE_STATS_LIST_MAX)
		return;
	size_t len = strlen(name);
	if (len > WIRE_STAT_NAME_MAX)
		len = WIRE_STAT_NAME_MAX;
	memcpy(o->names[o->n], name, len);
	o->names[o->n][len] = 0;
	o->w[o->n] = (struct wire_stat){.name = o->names[o->n], .name_len = (uint8_t)len, .value = value};
	o->n++;
}

int wire_stats_decode(const uint8_t *p, size_t len, struct wire_stats_msg *m)
{
	if (len < WIRE_STATS_HDR_SIZE)
		return MTR_EMALFORMED;
	m->node = ld32(p);
	m->total = ld16(p + 4);
	m->first = ld16(p + 6);
	m->nrec = ld16(p + 8);
	if ((uint32_t)m->first + m->nrec > m->total)
		return MTR_EMALFORMED;
	const uint8_t *q = p + WIRE_STATS_HDR_SIZE, *end = p + len;
	for (uint16_t i = 0; i < m->nrec; i++) {
		if (q >= end || (size_t)(end - q) < 1u + q[0] + 8u || !stat_name_ok(q + 1, q[0]))
			return MTR_EMALFORMED;
		q += 1 + q[0] + 8;
	}
	if (q != end)
		return MTR_EMALFORMED;
	m->p = p + WIRE_STATS_HDR_SIZE;
	m->end = end;
	return 0;
}

int wire_stats_next(struct wire_stats_msg *m, struct wire_stat *out)
{
	if (m->p >= m->end)
		return 0;
	out->name_len = m->p[0];
	out->name = (const char *)m->p + 1;
	out->value = ld64(m->p + 1 + out->name_len);
	m->p += 1 + out->name_len + 8;
	return 1;
}

/* ---- MEMBERSHIP ---- */

static int member_valid(const struct wire_member *m)
{
	if (m->token == 0)
		return 0;
	if (m->kind == WIRE_MEMBER_REQUEST) {
		if (m->op < WIRE_MEMBER_ADD || m->op > WIRE_MEMBER_REMOVE)
			return 0;
		if (m->op == WIRE_MEMBER_ADD)
			return m->id == 0 && m->addr_len >= 1 && m->addr_len <= WIRE_MEMBER_ADDR_MAX &&
			       memchr(m->addr, 0, m->addr_len) == NULL;
		return m->id < WIRE_MEMBER_ID_MAX && m->addr_len == 0;
	}
	if (m->kind != WIRE_MEMBER_ANSWER)
		return 0;
	return m->status <= 0 && m->id < WIRE_MEMBER_ID_MAX && m->msg_len <= WIRE_MEMBER_MSG_MAX &&
	       (m->msg_len == 0 || memchr(m->msg, 0, m->msg_len) == NULL);
}

size_t wire_member_size(const struct wire_member *m)
{
	return m->kind == WIRE_MEMBER_REQUEST ? WIRE_MEMBER_REQ_FIXED + (size_t)m->addr_len
					      : WIRE_MEMBER_ANS_FIXED + (size_t)m->msg_len;
}

int wire_member_encode(uint8_t *p, const struct wire_member *m)
{
	if (!member_valid(m))
		return MTR_EINVAL;
	p[0] = m->kind;
	st64(p + 1, m->token);
	if (m->kind == WIRE_MEMBER_REQUEST) {
		p[9] = m->op;
		p[10] = m->id;
		p[11] = m->addr_len;
		if (m->addr_len)
			memcpy(p + 12, m->addr, m->addr_len);
		return 0;
	}
	st32(p + 9, (uint32_t)m->status);
	p[13] = m->id;
	st64(p + 14, m->instance);
	st16(p + 22, m->msg_len);
	if (m->msg_len)
		memcpy(p + 24, m->msg, m->msg_len);
	return 0;
}

int wire_member_decode(const uint8_t *p, size_t len, struct wire_member *m)
{
	memset(m, 0, sizeof *m);
	if (len < 1)
		return MTR_ETRUNCATED;
	m->kind = p[0];
	if (m->kind == WIRE_MEMBER_REQUEST) {
		if (len < WIRE_MEMBER_REQ_FIXED)
			return MTR_ETRUNCATED;
		m->token = ld64(p + 1);
		m->op = p[9];
		m->id = p[10];
		m->addr_len = p[11];
		m->addr = (const char *)p + 12;
		if (len - WIRE_MEMBER_REQ_FIXED < m->addr_len)
			return MTR_ETRUNCATED;
		if (len - WIRE_MEMBER_REQ_FIXED != m->addr_len)
			return MTR_EMALFORMED;
	} else if (m->kind == WIRE_MEMBER_ANSWER) {
		if (len < WIRE_MEMBER_ANS_FIXED)
			return MTR_ETRUNCATED;
		m->token = ld64(p + 1);
		m->status = (int32_t)ld32(p + 9);
		m->id = p[13];
		m->instance = ld64(p + 14);
		m->msg_len = ld16(p + 22);
		m->msg = (const char *)p + 24;
		if (len - WIRE_MEMBER_ANS_FIXED < m->msg_len)
			return MTR_ETRUNCATED;
		if (len - WIRE_MEMBER_ANS_FIXED != m->msg_len)
			return MTR_EMALFORMED;
	} else {
		return MTR_EMALFORMED;
	}
	return member_valid(m) ? 0 : MTR_EMALFORMED;
}

long wire_member_build(uint8_t *buf, const struct wire_from *f, const struct wire_member *m)
{
	int rc = wire_member_encode(buf + WIRE_HDR_SIZE, m);
	if (rc != 0)
		return rc;
	return (long)wire_frame_finish(buf, f, WIRE_T_MEMBERSHIP, (uint32_t)wire_member_size(m));
}

const char *wire_member_op_name(unsigned op)
{
	return op == WIRE_MEMBER_ADD ? "add" : op == WIRE_MEMBER_PROMOTE ? "promote" : op == WIRE_MEMBER_REMOVE ? "remove" : "?";
}
