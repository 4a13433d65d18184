/*
 * cproto.c - client <-> proxy frames over TCP (cproto.h, doc/protocol.md
 * "Client protocol (TCP)").
 *
 * Encoders reserve the whole frame once in the caller's growable buffer (its
 * capacity doubles, so appending is amortized O(1) and a steady connection
 * stops allocating) and write it in place.  Decoders check every length
 * against the bytes left before reading, so a payload is never read past its
 * end, and reject trailing bytes.  Pure: no I/O.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cproto.h"
#include "metronome.h"
#include "result.h"
#include "util.h"
#include "wire_server.h"

/* a server's largest result fits in an ANSWER frame with room to spare */
_Static_assert(RESULT_MAX_BYTES + 65536 <= CPROTO_MAX_FRAME, "RESULT_MAX_BYTES too large for CPROTO_MAX_FRAME");

#define HELLO_SIZE 17
#define WELCOME_SIZE 14
#define QUERY_FIXED 31 /* request, consistency, min_instance, floor, sql_len, nbinds */
#define ANSWER_FIXED 36
#define BYE_FIXED 8

const char *cproto_type_name(unsigned type)
{
	switch (type) {
#define CPROTO__TYPE_NAME(name, value, text) \
	case value:                          \
		return #name;
		CPROTO_TYPE_MAP(CPROTO__TYPE_NAME)
#undef CPROTO__TYPE_NAME
	}
	return "?";
}

static const char *const cons_names[] = { "default", "none", "session", "linearizable" };

const char *cproto_consistency_name(unsigned c)
{
	return c < ARRAY_SIZE(cons_names) ? cons_names[c] : NULL;
}

int cproto_consistency_parse(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(cons_names); i++)
		if (strcmp(name, cons_names[i]) == 0)
			return (int)i;
	return MTR_EINVAL;
}

/* ---- output buffer ---------------------------------------------------- */

void cproto_buf_free(struct cproto_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void cproto_buf_consume(struct cproto_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/*
 * Start a frame of type with payload bytes: check the size, make room
 * (doubling the capacity) and write the length and type.  Returns where the
 * payload goes, or NULL with *rc set.
 */
static uint8_t *frame_begin(struct cproto_buf *b, uint8_t type, size_t payload, int *rc)
{
	if (payload >= CPROTO_MAX_FRAME) {
		*rc = MTR_ETOOBIG;
		return NULL;
	}
	size_t need = b->len + 5 + payload;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (p == NULL) {
			*rc = MTR_ENOMEM;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	uint8_t *q = b->p + b->len;
	st32(q, (uint32_t)(payload + 1));
	q[4] = type;
	b->len = need;
	return q + 5;
}

int cproto_put_hello(struct cproto_buf *b, const struct cproto_hello *m)
{
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_HELLO, HELLO_SIZE, &rc);
	if (q == NULL)
		return rc;
	st32(q, CPROTO_MAGIC);
	st16(q + 4, m->version);
	st16(q + 6, m->flags);
	st64(q + 8, m->client_id);
	q[16] = m->consistency;
	return 0;
}

int cproto_put_welcome(struct cproto_buf *b, const struct cproto_welcome *m)
{
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_WELCOME, WELCOME_SIZE, &rc);
	if (q == NULL)
		return rc;
	st16(q, m->version);
	st64(q + 2, m->stream);
	st32(q + 10, m->max_frame);
	return 0;
}

int cproto_put_query(struct cproto_buf *b, const struct cproto_query *m)
{
	size_t n = QUERY_FIXED + (size_t)m->sql_len;
	for (uint16_t i = 0; i < m->nbinds; i++) {
		const struct cproto_bind *x = &m->binds[i];
		size_t nl = x->index > 0 || !x->name ? 0 : strlen(x->name);
		size_t vs = wire_value_size(&x->v);
		if (x->index < 0 || vs == 0 || (x->index == 0 && nl == 0))
			return MTR_EINVAL;
		if (nl > 0xffff)
			return MTR_ETOOBIG;
		n += 6 + nl + vs;
	}
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_QUERY, n, &rc);
	if (q == NULL)
		return rc;
	st64(q, m->request);
	q[8] = m->consistency;
	st64(q + 9, m->min_instance);
	st64(q + 17, m->floor);
	st32(q + 25, m->sql_len);
	q += 29;
	if (m->sql_len)
		memcpy(q, m->sql, m->sql_len);
	q += m->sql_len;
	st16(q, m->nbinds);
	q += 2;
	for (uint16_t i = 0; i < m->nbinds; i++) {
		const struct cproto_bind *x = &m->binds[i];
		size_t nl = x->index > 0 ? 0 : strlen(x->name);
		st32(q, (uint32_t)x->index);
		st16(q + 4, (uint16_t)nl);
		if (nl)
			memcpy(q + 6, x->name, nl);
		q = wire_value_put(q + 6 + nl, &x->v);
	}
	return 0;
}

int cproto_put_answer(struct cproto_buf *b, const struct cproto_answer *m)
{
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_ANSWER, ANSWER_FIXED + (size_t)m->msg_len + m->result_len, &rc);
	if (q == NULL)
		return rc;
	st64(q, m->request);
	st64(q + 8, m->instance);
	st32(q + 16, (uint32_t)m->status);
	st32(q + 20, m->line);
	st32(q + 24, m->col);
	st32(q + 28, m->msg_len);
	q += 32;
	if (m->msg_len)
		memcpy(q, m->msg, m->msg_len);
	q += m->msg_len;
	st32(q, m->result_len);
	if (m->result_len)
		memcpy(q + 4, m->result, m->result_len);
	return 0;
}

int cproto_put_ping(struct cproto_buf *b, enum cproto_type type, uint64_t token)
{
	if (type != CPROTO_T_PING && type != CPROTO_T_PONG)
		return MTR_EINVAL;
	int rc = 0;
	uint8_t *q = frame_begin(b, (uint8_t)type, 8, &rc);
	if (q == NULL)
		return rc;
	st64(q, token);
	return 0;
}

int cproto_put_cancel(struct cproto_buf *b, uint64_t request)
{
	if (request == 0)
		return MTR_EINVAL;
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_CANCEL, 8, &rc);
	if (q == NULL)
		return rc;
	st64(q, request);
	return 0;
}

int cproto_put_bye(struct cproto_buf *b, const struct cproto_bye *m)
{
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_BYE, BYE_FIXED + (size_t)m->msg_len, &rc);
	if (q == NULL)
		return rc;
	st32(q, (uint32_t)m->status);
	st32(q + 4, m->msg_len);
	if (m->msg_len)
		memcpy(q + 8, m->msg, m->msg_len);
	return 0;
}

int cproto_put_backup(struct cproto_buf *b, uint64_t min_instance)
{
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_BACKUP, 8, &rc);
	if (q == NULL)
		return rc;
	st64(q, min_instance);
	return 0;
}

#define PART_BEGIN_SIZE 21 /* kind, instance, size, server */

int cproto_put_part(struct cproto_buf *b, const struct cproto_part *m)
{
	size_t n = m->kind == CPROTO_PART_BEGIN  ? PART_BEGIN_SIZE
		   : m->kind == CPROTO_PART_DATA ? 1 + (size_t)m->len
						 : 1 + BYE_FIXED + (size_t)m->msg_len;
	if (m->kind > CPROTO_PART_END)
		return MTR_EINVAL;
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_BACKUP_PART, n, &rc);
	if (q == NULL)
		return rc;
	q[0] = m->kind;
	if (m->kind == CPROTO_PART_BEGIN) {
		st64(q + 1, m->instance);
		st64(q + 9, m->size);
		st32(q + 17, m->server);
	} else if (m->kind == CPROTO_PART_DATA) {
		if (m->len)
			memcpy(q + 1, m->data, m->len);
	} else {
		st32(q + 1, (uint32_t)m->status);
		st32(q + 5, m->msg_len);
		if (m->msg_len)
			memcpy(q + 9, m->msg, m->msg_len);
	}
	return 0;
}

int cproto_user_valid(const char *s, size_t n)
{
	if (n == 0 || n > CPROTO_MAX_USER)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == ':')
			return 0;
	}
	return 1;
}

/* The rules of an AUTH's fields (cproto.h). */
static int auth_valid(const struct cproto_auth *m)
{
	return cproto_user_valid(m->user, m->user_len) && m->password_len <= CPROTO_MAX_PASSWORD &&
	       (m->password_len == 0 || memchr(m->password, 0, m->password_len) == NULL);
}

int cproto_put_auth(struct cproto_buf *b, const struct cproto_auth *m)
{
	if (!auth_valid(m))
		return MTR_EINVAL;
	int rc = 0;
	uint8_t *q = frame_begin(b, CPROTO_T_AUTH, 4 + (size_t)m->user_len + m->password_len, &rc);
	if (q == NULL)
		return rc;
	st16(q, m->user_len);
	memcpy(q + 2, m->user, m->user_len);
	q += 2 + m->user_len;
	st16(q, m->password_len);
	if (m->password_len)
		memcpy(q + 2, m->password, m->password_len);
	return 0;
}

/* ---- decoding --------------------------------------------------------- */

long cproto_frame_next(const uint8_t *buf, size_t len, uint32_t max_frame, struct cproto_frame *f)
{
	if (len < 4)
		return 0;
	uint32_t n = ld32(buf);
	if (n == 0)
		return MTR_EMALFORMED;
	if (n > max_frame)
		return MTR_ETOOBIG;
	if (len - 4 < n)
		return 0;
	f->type = buf[4];
	f->payload = buf + 5;
	f->len = n - 1;
	return (long)n + 4;
}

/* A fixed-size payload: shorter is truncated, longer has trailing bytes. */
static int fixed_len(const struct cproto_frame *f, unsigned type, uint32_t size)
{
	if (f->type != type)
		return MTR_EMALFORMED;
	if (f->len < size)
		return MTR_ETRUNCATED;
	return f->len > size ? MTR_EMALFORMED : 0;
}

int cproto_get_hello(const struct cproto_frame *f, struct cproto_hello *m)
{
	int rc = fixed_len(f, CPROTO_T_HELLO, HELLO_SIZE);
	if (rc)
		return rc;
	const uint8_t *p = f->payload;
	if (ld32(p) != CPROTO_MAGIC)
		return MTR_EMALFORMED;
	m->version = ld16(p + 4);
	m->flags = ld16(p + 6);
	m->client_id = ld64(p + 8);
	m->consistency = p[16];
	if (m->version != CPROTO_VERSION)
		return MTR_EVERSION;
	if ((m->flags & ~CPROTO_HELLO_AUTH) != 0 || m->consistency > CPROTO_CONS_LINEARIZABLE)
		return MTR_EMALFORMED;
	return 0;
}

int cproto_get_welcome(const struct cproto_frame *f, struct cproto_welcome *m)
{
	int rc = fixed_len(f, CPROTO_T_WELCOME, WELCOME_SIZE);
	if (rc)
		return rc;
	const uint8_t *p = f->payload;
	m->version = ld16(p);
	m->stream = ld64(p + 2);
	m->max_frame = ld32(p + 10);
	if (m->version != CPROTO_VERSION)
		return MTR_EVERSION;
	return m->stream != 0 && m->max_frame != 0 ? 0 : MTR_EMALFORMED;
}

/*
 * Validate n binds at p (end: payload end).  Returns the bytes they take,
 * or a negative code.  The NUL check keeps the copied names C strings.
 */
static long binds_check(const uint8_t *p, const uint8_t *end, uint16_t n)
{
	const uint8_t *q = p;
	for (uint16_t i = 0; i < n; i++) {
		if (end - q < 7)
			return MTR_ETRUNCATED;
		int32_t index = (int32_t)ld32(q);
		uint16_t nl = ld16(q + 4);
		q += 6;
		if (index < 0 || (index > 0) != (nl == 0))
			return MTR_EMALFORMED;
		if (end - q < (ptrdiff_t)nl + 1)
			return MTR_ETRUNCATED;
		if (nl && memchr(q, 0, nl) != NULL)
			return MTR_EMALFORMED;
		q += nl;
		int rc = wire_value_skip(&q, end);
		if (rc)
			return rc;
	}
	return q - p;
}

int cproto_get_query(const struct cproto_frame *f, struct cproto_query *m)
{
	if (f->type != CPROTO_T_QUERY)
		return MTR_EMALFORMED;
	const uint8_t *p = f->payload, *end = p + f->len;
	if (f->len < QUERY_FIXED)
		return MTR_ETRUNCATED;
	m->request = ld64(p);
	m->consistency = p[8];
	m->min_instance = ld64(p + 9);
	m->floor = ld64(p + 17);
	m->sql_len = ld32(p + 25);
	if (m->request == 0 || m->consistency > CPROTO_CONS_LINEARIZABLE || m->floor > m->request)
		return MTR_EMALFORMED;
	p += 29;
	if ((size_t)(end - p) < (size_t)m->sql_len + 2)
		return MTR_ETRUNCATED;
	m->sql = (const char *)p;
	p += m->sql_len;
	m->nbinds = ld16(p);
	p += 2;
	m->binds = NULL;
	long n = binds_check(p, end, m->nbinds);
	if (n < 0)
		return (int)n;
	if (p + n != end)
		return MTR_EMALFORMED;
	m->bind_bytes = p;
	m->bind_len = (uint32_t)n;
	return 0;
}

int cproto_query_binds(const struct cproto_query *q, struct cproto_bind **out)
{
	*out = NULL;
	if (q->nbinds == 0)
		return 0;
	/*
	 * The bind bytes are validated, so this walk cannot fail.  Bytes needed
	 * beyond the array: each name plus its NUL, each TEXT/BLOB's bytes;
	 * bind_len bounds that sum, so it is simply bind_len.
	 */
	size_t arr = (size_t)q->nbinds * sizeof(struct cproto_bind);
	struct cproto_bind *b = malloc(arr + q->bind_len);
	if (b == NULL)
		return MTR_ENOMEM;
	char *heap = (char *)b + arr;
	const uint8_t *p = q->bind_bytes;
	for (uint16_t i = 0; i < q->nbinds; i++) {
		struct cproto_bind *x = &b[i];
		x->index = (int32_t)ld32(p);
		uint16_t nl = ld16(p + 4);
		p += 6;
		if (nl) {
			memcpy(heap, p, nl);
			heap[nl] = '\0';
			x->name = heap;
			heap += nl + 1;
		} else {
			x->name = NULL;
		}
		p += nl;
		wire_value_get(&p, &x->v);
		if (x->v.type == WIRE_V_TEXT || x->v.type == WIRE_V_BLOB) {
			/* copy the bytes: the binds outlive the frame */
			if (x->v.u.b.n)
				memcpy(heap, x->v.u.b.p, x->v.u.b.n);
			x->v.u.b.p = heap;
			heap += x->v.u.b.n;
		}
	}
	*out = b;
	return 0;
}

int cproto_get_answer(const struct cproto_frame *f, struct cproto_answer *m)
{
	if (f->type != CPROTO_T_ANSWER)
		return MTR_EMALFORMED;
	const uint8_t *p = f->payload, *end = p + f->len;
	if (f->len < ANSWER_FIXED)
		return MTR_ETRUNCATED;
	m->request = ld64(p);
	m->instance = ld64(p + 8);
	m->status = (int32_t)ld32(p + 16);
	m->line = ld32(p + 20);
	m->col = ld32(p + 24);
	m->msg_len = ld32(p + 28);
	p += 32;
	if ((size_t)(end - p) < (size_t)m->msg_len + 4)
		return MTR_ETRUNCATED;
	m->msg = (const char *)p;
	p += m->msg_len;
	m->result_len = ld32(p);
	p += 4;
	if ((size_t)(end - p) < m->result_len)
		return MTR_ETRUNCATED;
	m->result = p;
	if (p + m->result_len != end)
		return MTR_EMALFORMED;
	/* a refusal (status < 0) carries no result bytes */
	if (m->request == 0 || m->status > 0 || (m->status != 0 && m->result_len != 0))
		return MTR_EMALFORMED;
	return 0;
}

int cproto_get_ping(const struct cproto_frame *f, uint64_t *token)
{
	int rc = fixed_len(f, f->type == CPROTO_T_PONG ? CPROTO_T_PONG : CPROTO_T_PING, 8);
	if (rc)
		return rc;
	*token = ld64(f->payload);
	return 0;
}

int cproto_get_cancel(const struct cproto_frame *f, uint64_t *request)
{
	int rc = fixed_len(f, CPROTO_T_CANCEL, 8);
	if (rc)
		return rc;
	*request = ld64(f->payload);
	return *request ? 0 : MTR_EMALFORMED;
}

int cproto_get_bye(const struct cproto_frame *f, struct cproto_bye *m)
{
	if (f->type != CPROTO_T_BYE)
		return MTR_EMALFORMED;
	if (f->len < BYE_FIXED)
		return MTR_ETRUNCATED;
	m->status = (int32_t)ld32(f->payload);
	m->msg_len = ld32(f->payload + 4);
	m->msg = (const char *)f->payload + 8;
	if (f->len - BYE_FIXED < m->msg_len)
		return MTR_ETRUNCATED;
	return f->len - BYE_FIXED == m->msg_len ? 0 : MTR_EMALFORMED;
}

int cproto_get_backup(const struct cproto_frame *f, uint64_t *min_instance)
{
	int rc = fixed_len(f, CPROTO_T_BACKUP, 8);
	if (rc)
		return rc;
	*min_instance = ld64(f->payload);
	return 0;
}

int cproto_get_part(const struct cproto_frame *f, struct cproto_part *m)
{
	if (f->type != CPROTO_T_BACKUP_PART)
		return MTR_EMALFORMED;
	if (f->len < 1)
		return MTR_ETRUNCATED;
	memset(m, 0, sizeof *m);
	m->kind = f->payload[0];
	const uint8_t *p = f->payload + 1;
	uint32_t n = f->len - 1;
	switch (m->kind) {
	case CPROTO_PART_BEGIN:
		if (n < PART_BEGIN_SIZE - 1)
			return MTR_ETRUNCATED;
		if (n > PART_BEGIN_SIZE - 1)
			return MTR_EMALFORMED;
		m->instance = ld64(p);
		m->size = ld64(p + 8);
		m->server = ld32(p + 16);
		return 0;
	case CPROTO_PART_DATA:
		m->data = p;
		m->len = n;
		return 0;
	case CPROTO_PART_END:
		if (n < BYE_FIXED)
			return MTR_ETRUNCATED;
		m->status = (int32_t)ld32(p);
		m->msg_len = ld32(p + 4);
		m->msg = (const char *)p + 8;
		if (n - BYE_FIXED < m->msg_len)
			return MTR_ETRUNCATED;
		if (n - BYE_FIXED != m->msg_len || m->status > 0)
			return MTR_EMALFORMED;
		return 0;
	default:
		return MTR_EMALFORMED;
	}
}

int cproto_get_auth(const struct cproto_frame *f, struct cproto_auth *m)
{
	if (f->type != CPROTO_T_AUTH)
		return MTR_EMALFORMED;
	const uint8_t *p = f->payload, *end = p + f->len;
	if (f->len < 2)
		return MTR_ETRUNCATED;
	m->user_len = ld16(p);
	p += 2;
	if ((size_t)(end - p) < (size_t)m->user_len + 2)
		return MTR_ETRUNCATED;
	m->user = (const char *)p;
	p += m->user_len;
	m->password_len = ld16(p);
	p += 2;
	if ((size_t)(end - p) < m->password_len)
		return MTR_ETRUNCATED;
	m->password = (const char *)p;
	if (p + m->password_len != end)
		return MTR_EMALFORMED;
	return auth_valid(m) ? 0 : MTR_EMALFORMED;
}

int cproto_put_member(struct cproto_buf *b, const struct wire_member *m)
{
	uint8_t tmp[WIRE_MEMBER_MAX];
	int rc = wire_member_encode(tmp, m);
	if (rc != 0)
		return rc;
	size_t n = wire_member_size(m);
	uint8_t *q = frame_begin(b, CPROTO_T_MEMBERSHIP, n, &rc);
	if (q == NULL)
		return rc;
	memcpy(q, tmp, n);
	return 0;
}

int cproto_get_member(const struct cproto_frame *f, struct wire_member *m)
{
	if (f->type != CPROTO_T_MEMBERSHIP)
		return MTR_EMALFORMED;
	return wire_member_decode(f->payload, f->len, m);
}
