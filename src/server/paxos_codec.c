/*
 * paxos_codec.c - encode, decode and print Paxos messages (see
 * paxos_codec.h).  Generic over PAXOS_FIELD_MAP: each field kind has one
 * size, one encoder, one decoder and one printer below.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metronome.h"
#include "paxos_codec.h"
#include "util.h"
#include "wire.h"

#define ENTRY_HDR 16u /* u64 inst, u64 ballot, then the batch */
#define MARK_SIZE 16u /* u64 stream, u64 seq */

const char *paxos_msg_name(unsigned type)
{
	switch (type) {
#define NAME(name, value, fields, text) \
	case value:                     \
		return #name;
		PAXOS_MSG_MAP(NAME)
#undef NAME
	}
	return "?";
}

unsigned paxos_msg_fields(unsigned type)
{
	switch (type) {
#define FIELDS(name, value, fields, text) \
	case value:                       \
		return (fields);
		PAXOS_MSG_MAP(FIELDS)
#undef FIELDS
	}
	return 0;
}

/* ---- sizes ---- */

static size_t size_u64(const struct paxos_msg *m) { (void)m; return 8; }
static size_t size_u8(const struct paxos_msg *m) { (void)m; return 1; }
static size_t size_value(const struct paxos_msg *m) { return batch_encoded_size(&m->value); }
static size_t size_entries(const struct paxos_msg *m)
{
	size_t s = 4;
	for (uint32_t i = 0; i < m->n_entries; i++)
		s += ENTRY_HDR + batch_encoded_size(&m->entries[i].value);
	return s;
}
static size_t size_marks(const struct paxos_msg *m) { return 4 + (size_t)m->n_marks * MARK_SIZE; }

size_t paxos_msg_encoded_size(const struct paxos_msg *m)
{
	unsigned f = paxos_msg_fields(m->type);
	if (f == 0)
		return 0;
	size_t s = 1;
#define SIZE(flag, member, kind) \
	if (f & PF_##flag)       \
		s += size_##kind(m);
	PAXOS_FIELD_MAP(SIZE)
#undef SIZE
	return s;
}

/* ---- encoders: write at *p (space already checked), advance *p ---- */

static void enc_u64(uint8_t **p, uint64_t v) { st64(*p, v); *p += 8; }
static void enc_u8(uint8_t **p, uint8_t v) { **p = v; *p += 1; }
static void enc_value(uint8_t **p, struct batch v)
{
	*p += batch_encode(&v, *p, batch_encoded_size(&v));
}
static void enc_entries(uint8_t **p, const struct paxos_msg *m)
{
	st32(*p, m->n_entries);
	*p += 4;
	for (uint32_t i = 0; i < m->n_entries; i++) {
		enc_u64(p, m->entries[i].inst);
		enc_u64(p, m->entries[i].ballot);
		enc_value(p, m->entries[i].value);
	}
}
static void enc_marks(uint8_t **p, const struct paxos_msg *m)
{
	st32(*p, m->n_marks);
	*p += 4;
	for (uint32_t i = 0; i < m->n_marks; i++) {
		enc_u64(p, m->marks[i].stream);
		enc_u64(p, m->marks[i].seq);
	}
}
#define ENC_u64(member) enc_u64(&p, m->member)
#define ENC_u8(member) enc_u8(&p, m->member)
#define ENC_value(member) enc_value(&p, m->member)
#define ENC_entries(member) enc_entries(&p, m)
#define ENC_marks(member) enc_marks(&p, m)

int paxos_msg_encode(const struct paxos_msg *m, uint8_t *buf, size_t cap)
{
	unsigned f = paxos_msg_fields(m->type);
	if (f == 0 || m->n_entries > PAXOS_MAX_ENTRIES || m->n_marks > PAXOS_MAX_MARKS ||
	    m->value.n > BATCH_MAX_RANGES)
		return MTR_EINVAL;
	for (uint32_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].value.n > BATCH_MAX_RANGES)
			return MTR_EINVAL;
	size_t need = paxos_msg_encoded_size(m);
	if (need > cap || need > INT32_MAX)
		return MTR_ETOOBIG;
	uint8_t *p = buf;
	enc_u8(&p, m->type);
#define ENC(flag, member, kind) \
	if (f & PF_##flag)      \
		ENC_##kind(member);
	PAXOS_FIELD_MAP(ENC)
#undef ENC
	return (int)(p - buf);
}

/* ---- decoders: read from *p with *left bytes remaining ---- */

struct rd {
	const uint8_t *p;
	size_t left;
};

static int dec_u64(struct rd *r, uint64_t *v)
{
	if (r->left < 8)
		return MTR_ETRUNCATED;
	*v = ld64(r->p);
	r->p += 8;
	r->left -= 8;
	return 0;
}
static int dec_u8(struct rd *r, uint8_t *v)
{
	if (r->left < 1)
		return MTR_ETRUNCATED;
	*v = *r->p;
	r->p++;
	r->left--;
	return 0;
}
static int dec_value(struct rd *r, struct batch *b)
{
	size_t used = 0;
	int rc = batch_decode(b, r->p, r->left, &used);
	if (rc != 0)
		return rc;
	r->p += used;
	r->left -= used;
	return 0;
}
static int dec_count(struct rd *r, uint32_t *n, uint32_t max, size_t min_each)
{
	if (r->left < 4)
		return MTR_ETRUNCATED;
	*n = ld32(r->p);
	r->p += 4;
	r->left -= 4;
	if (*n > max)
		return MTR_EMALFORMED;
	if (r->left / min_each < *n)
		return MTR_ETRUNCATED;
	return 0;
}
static int dec_entries(struct rd *r, struct paxos_msg *m)
{
	uint32_t n;
	int rc = dec_count(r, &n, PAXOS_MAX_ENTRIES, ENTRY_HDR + BATCH_HDR_SIZE);
	if (rc != 0)
		return rc;
	if (n == 0)
		return 0;
	m->entries = calloc(n, sizeof *m->entries);
	if (m->entries == NULL)
		return MTR_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct paxos_entry *e = &m->entries[i];
		if ((rc = dec_u64(r, &e->inst)) != 0 || (rc = dec_u64(r, &e->ballot)) != 0)
			return rc;
		rc = dec_value(r, &e->value);
		if (rc != 0)
			return rc;
		m->n_entries = i + 1; /* so that paxos_msg_free frees what we have */
	}
	return 0;
}
static int dec_marks(struct rd *r, struct paxos_msg *m)
{
	uint32_t n;
	int rc = dec_count(r, &n, PAXOS_MAX_MARKS, MARK_SIZE);
	if (rc != 0)
		return rc;
	if (n == 0)
		return 0;
	m->marks = malloc((size_t)n * sizeof *m->marks);
	if (m->marks == NULL)
		return MTR_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		dec_u64(r, &m->marks[i].stream); /* space checked by dec_count */
		dec_u64(r, &m->marks[i].seq);
	}
	m->n_marks = n;
	return 0;
}
#define DEC_u64(member) dec_u64(&r, &m->member)
#define DEC_u8(member) dec_u8(&r, &m->member)
#define DEC_value(member) dec_value(&r, &m->member)
#define DEC_entries(member) dec_entries(&r, m)
#define DEC_marks(member) dec_marks(&r, m)

int paxos_msg_decode(struct paxos_msg *m, const uint8_t *buf, size_t len)
{
	memset(m, 0, sizeof *m);
	if (len < 1)
		return MTR_ETRUNCATED;
	unsigned f = paxos_msg_fields(buf[0]);
	if (f == 0)
		return MTR_EMALFORMED;
	m->type = buf[0];
	struct rd r = { buf + 1, len - 1 };
	int rc = 0;
#define DEC(flag, member, kind)                      \
	if (rc == 0 && (f & PF_##flag))              \
		rc = DEC_##kind(member);
	PAXOS_FIELD_MAP(DEC)
#undef DEC
	if (rc == 0 && r.left != 0)
		rc = MTR_EMALFORMED;
	if (rc == 0 && (m->more > 1 || m->grant > 1))
		rc = MTR_EMALFORMED;
	if (rc != 0)
		paxos_msg_free(m);
	return rc;
}

void paxos_msg_free(struct paxos_msg *m)
{
	batch_free(&m->value);
	for (uint32_t i = 0; i < m->n_entries; i++)
		batch_free(&m->entries[i].value);
	free(m->entries);
	free(m->marks);
	memset(m, 0, sizeof *m);
}

/* ---- printer ---- */

struct out {
	char *buf;
	size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void out_printf(struct out *o, const char *fmt, ...)
{
	if (o->len + 1 >= o->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = MIN(o->len + (size_t)n, o->cap - 1);
}

static void print_batch(struct out *o, const struct batch *b)
{
	out_printf(o, "[");
	for (uint32_t i = 0; i < b->n && i < 8; i++)
		out_printf(o, "%s%llu:%llu..%llu", i ? " " : "", (unsigned long long)b->r[i].stream,
			   (unsigned long long)b->r[i].first, (unsigned long long)b->r[i].last);
	out_printf(o, "%s]", b->n > 8 ? " ..." : "");
	if (b->conf != NULL) {
		/* a configuration: voters as v<id>, learners as l<id> */
		out_printf(o, "+conf{");
		for (uint32_t i = 0; i < b->conf->n && i < BATCH_CONF_MAX; i++)
			out_printf(o, "%s%c%u", i ? " " : "", b->conf->m[i].voter ? 'v' : 'l', b->conf->m[i].id);
		out_printf(o, "}");
	}
}

static void print_u64(struct out *o, const char *name, uint64_t v)
{
	if (v == PAXOS_BALLOT_CHOSEN)
		out_printf(o, " %s=chosen", name);
	else if (strcmp(name, "ballot") == 0 || strcmp(name, "leader") == 0)
		out_printf(o, " %s=%llu.%u", name, (unsigned long long)paxos_ballot_round(v), paxos_ballot_node(v));
	else
		out_printf(o, " %s=%llu", name, (unsigned long long)v);
}
#define PRINT_u64(member) print_u64(&o, #member, m->member)
#define PRINT_u8(member) out_printf(&o, " " #member "=%u", m->member)
#define PRINT_value(member) (out_printf(&o, " value="), print_batch(&o, &m->value))
#define PRINT_entries(member)                                                                 \
	for (uint32_t i = 0; i < m->n_entries && i < 4; i++) {                                \
		out_printf(&o, " {%llu ", (unsigned long long)m->entries[i].inst);            \
		print_u64(&o, "b", m->entries[i].ballot);                                     \
		out_printf(&o, " ");                                                          \
		print_batch(&o, &m->entries[i].value);                                        \
		out_printf(&o, "}");                                                          \
	}                                                                                     \
	out_printf(&o, " (%u entries)", m->n_entries)
#define PRINT_marks(member)                                                                   \
	for (uint32_t i = 0; i < m->n_marks && i < 8; i++)                                    \
		out_printf(&o, " %llu@%llu", (unsigned long long)m->marks[i].stream,          \
			   (unsigned long long)m->marks[i].seq)

char *paxos_msg_print(const struct paxos_msg *m, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	if (cap == 0)
		return buf;
	buf[0] = 0;
	unsigned f = paxos_msg_fields(m->type);
	out_printf(&o, "%s", paxos_msg_name(m->type));
#define PRINT(flag, member, kind) \
	if (f & PF_##flag) {      \
		PRINT_##kind(member); \
	}
	PAXOS_FIELD_MAP(PRINT)
#undef PRINT
	return buf;
}

long wire_paxos_build(uint8_t *buf, size_t cap, const struct wire_from *f, const struct paxos_msg *m)
{
	if (cap > WIRE_MAX_DGRAM)
		cap = WIRE_MAX_DGRAM;
	if (cap < WIRE_OVERHEAD)
		return MTR_ETOOBIG;
	int n = paxos_msg_encode(m, buf + WIRE_HDR_SIZE, cap - WIRE_OVERHEAD);
	if (n < 0)
		return n;
	return (long)wire_frame_finish(buf, f, WIRE_T_PAXOS, (uint32_t)n);
}
