/*
 * proxy.c - the proxy: clients over TCP in, items to every server out,
 * results back to the clients, all on one thread with one epoll loop.
 *
 * One loop iteration:
 *   epoll_wait (timeout: 0 when work is queued, else the next timer)
 *   accept / attach / read clients -> decode frames -> QUERY:
 *       proxy_item_build; errors and "nothing to do" answer at once;
 *       writes (and linearizable reads) -> outbuf_put, numbered in a batch;
 *       none/session reads -> READ datagram to one server
 *   drain the transport: RESULT (answers), RESEND (repair), STATUS (routing)
 *   pack the batch into ITEMS / FRAGMENT datagrams: one send_group call
 *   timers: heartbeat, RESULT_REQUEST for late results, read retries
 *   write the clients' answers, adjust what epoll watches
 *
 * Answers leave in request order per connection: every request of a
 * connection has a `struct pend` in the connection's FIFO, and only the done
 * prefix of the FIFO is written.  Writes wait in `slots` (a ring indexed by
 * seq) for their first whole RESULT; the outbuf is released up to the
 * highest seq below which every seq has a result.  Push-back: when
 * outbuf_put says MTR_EFULL the frame stays in its client's input buffer and
 * no client is read until a release makes room.  doc/proxy.md explains it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cproto.h"
#include "log.h"
#include "metronome.h"
#include "outbuf.h"
#include "proxy.h"
#include "proxy_item.h"
#include "result.h"
#include "util.h"
#include "wire_server.h"

#define SENDQ_CAP 256u         /* datagrams per send call */
#define RECV_BATCH 64u         /* datagrams per transport_recv */
#define RECV_ROUNDS 32u        /* transport_recv calls per iteration at most */
#define READ_CHUNK (256u << 10) /* client input read per event at least */
#define MAX_PEND 65536u        /* unanswered requests per connection */
#define RESEND_MAX 4096u       /* items resent for one RESEND at most */
#define RREQ_SCAN 4096u        /* slots scanned for late results per tick */
#define RREQ_MAX 64u           /* RESULT_REQUESTs per tick at most */
#define IDLE_HEARTBEAT_MS 1000u
#define ALIVE_MS 1000u         /* a server is alive when its STATUS is this recent */
#define RHASH 1024u            /* buckets of the read table */

/* ---- partial results: chunks reassembled by offset -------------------- */

/* Bytes [0, total) of one result, received in chunks that may overlap or
 * repeat (several replicas send the same bytes, split differently). */
struct rbuf {
	uint8_t *data;
	uint32_t total;
	uint32_t niv, civ;
	struct rbuf_iv {
		uint32_t a, b;
	} *iv; /* received [a, b), sorted and disjoint */
};

static void rbuf_free(struct rbuf *r)
{
	if (r == NULL)
		return;
	free(r->data);
	free(r->iv);
	free(r);
}

/* Add one chunk.  1: the result is complete; 0: not yet; negative: no
 * memory, or a chunk that disagrees with the others on the size. */
static int rbuf_add(struct rbuf *r, const struct wire_result_rec *rec)
{
	if (r->data == NULL) {
		r->data = malloc(rec->total ? rec->total : 1);
		if (r->data == NULL)
			return MTR_ENOMEM;
		r->total = rec->total;
	}
	if (rec->total != r->total)
		return MTR_EMALFORMED;
	if (rec->len == 0)
		return r->niv == 1 && r->iv[0].a == 0 && r->iv[0].b == r->total;
	memcpy(r->data + rec->offset, rec->data, rec->len);
	if (r->niv == r->civ) {
		uint32_t n = r->civ ? r->civ * 2 : 4;
		struct rbuf_iv *iv = realloc(r->iv, n * sizeof *iv);
		if (iv == NULL)
			return MTR_ENOMEM;
		r->iv = iv;
		r->civ = n;
	}
	uint32_t a = rec->offset, b = rec->offset + rec->len, i = 0;
	while (i < r->niv && r->iv[i].a < a)
		i++;
	memmove(r->iv + i + 1, r->iv + i, (r->niv - i) * sizeof *r->iv);
	r->iv[i].a = a;
	r->iv[i].b = b;
	r->niv++;
	/* merge touching or overlapping neighbours */
	uint32_t w = 0;
	for (uint32_t k = 1; k < r->niv; k++) {
		if (r->iv[k].a <= r->iv[w].b) {
			if (r->iv[k].b > r->iv[w].b)
				r->iv[w].b = r->iv[k].b;
		} else {
			r->iv[++w] = r->iv[k];
		}
	}
	r->niv = w + 1;
	return r->niv == 1 && r->iv[0].a == 0 && r->iv[0].b == r->total;
}

/* ---- state ---------------------------------------------------------------- */

struct client;

/* One request of a connection, from its QUERY until its ANSWER is queued. */
struct pend {
	struct pend *next; /* the connection's FIFO */
	struct client *c;
	uint64_t request;
	int kind; /* PEND_WRITE (waits in a slot), PEND_READ (in the read table), PEND_DONE */
	uint64_t seq;
	/* the answer, once done */
	int32_t status;
	uint32_t line, col;
	char *msg;
	uint32_t msg_len;
	uint8_t *res;
	uint32_t res_len;
	uint64_t instance;
	/* a READ in flight */
	uint64_t rid, min_inst;
	uint8_t *item;
	uint32_t item_len;
	unsigned server;
	uint64_t first_ms, sent_ms;
	struct pend *hnext;          /* read table bucket */
	struct pend *rprev, *rnext;  /* read list, oldest send first */
	struct rbuf *rb;
};
enum { PEND_WRITE = 1, PEND_READ = 2, PEND_DONE = 3 };

/* A write waiting for its result, by seq (ring of cap_items). */
struct wslot {
	struct pend *pend; /* NULL when its client is gone */
	uint64_t sent_ms;  /* last time sent or asked for */
	struct rbuf *rb;   /* chunks so far */
	uint8_t done;
};

struct client {
	int fd;
	uint64_t no;
	uint8_t *in;
	size_t inlen, inoff, incap;
	struct cproto_buf out;
	int hello;
	uint8_t cons;
	uint64_t client_id; /* HELLO's: items carry it for de-duplication */
	uint64_t max_inst;
	struct pend *qh, *qt;
	uint32_t npend;
	uint32_t ev;
	int paused; /* output above proxy.client_buffer: not read */
	int backlog; /* complete frames left unread in `in` */
	int dirty;
	int dead;
	struct client *prev, *next;
	struct client *dnext; /* dead list */
};

/* Datagrams queued for one send call, mtu bytes each. */
struct sendq {
	uint8_t *mem;
	struct transport_msg *msg;
	unsigned n;
	int group;
};

/* An ITEMS datagram being filled in a sendq slot. */
struct ipack {
	struct sendq *q;
	uint8_t *buf;
	size_t used;
	struct transport_addr peer;
};

struct srv {
	uint64_t applied;
	uint64_t seen_ms;
	int known;
};

struct proxy {
	struct proxy_config cfg;
	uint64_t stream;
	struct transport *t;
	int tfd;
	int lfd;
	int efd;
	int ep;
	struct transport_addr laddr;
	size_t mtu;

	struct outbuf ob;
	struct wslot *slots;
	uint32_t cap;
	uint64_t rel;         /* every seq <= rel has its result (released) */
	uint64_t batch_first; /* items [batch_first, next) not sent yet */
	int blocked;          /* outbuf full: no client is read */
	struct client *full_client; /* whose request found the outbuf full */
	int released_any;

	struct pend *rtab[RHASH];
	struct pend *rhead, *rtail;
	uint64_t next_rid;

	struct srv srv[CLUSTERCONF_MAX_SERVERS];
	unsigned rr;

	struct client *clients;
	uint32_t nclients;
	uint64_t next_no;
	struct client **dirty;
	uint32_t ndirty, cdirty;
	struct client *dead;

	struct sendq gq, tq;
	uint8_t empty_result[64]; /* the answer of BEGIN; COMMIT: no statement */
	uint32_t empty_result_len;
	uint64_t prng;
	uint64_t now_ms;
	uint64_t next_hb_ms;
	uint64_t next_rr_ms;

	atomic_int stop;
	pthread_mutex_t mu; /* attach queue and published stats */
	int *attach;
	unsigned nattach, cattach;
	int closing;
	struct proxy_stats st, pub;
};

static uint64_t mono_ms(void) { return now_mono_ns() / 1000000u; }

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* splitmix64: the per-proxy PRNG for item seeds (seeded by getrandom). */
static uint64_t prng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* ---- configuration -------------------------------------------------------- */

void proxy_config_defaults(struct proxy_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->cc.cluster_id = 1;
	strcpy(cfg->cc.kind, "udp");
	cfg->cc.mtu = WIRE_DEFAULT_MTU;
	cfg->cc.rcvbuf = 8 << 20;
	transport_addr_parse("127.0.0.1:7400", CPROTO_DEFAULT_PORT, &cfg->listen);
	cfg->id = 256;
	cfg->buffer_bytes = 64u << 20;
	cfg->buffer_items = 262144;
	cfg->heartbeat_ms = 10;
	cfg->result_timeout_ms = 500;
	cfg->read_timeout_ms = 5000;
	cfg->max_clients = 1024;
	cfg->client_buffer = 16u << 20;
	cfg->max_frame = CPROTO_MAX_FRAME;
	cfg->log_level = LOG_INFO;
}

static int range_key(const struct conf *c, const char *key, int64_t lo, int64_t hi, const char *what, int64_t *v,
		     char *err, size_t errlen)
{
	*v = conf_int(c, key);
	if (*v < lo || *v > hi) {
		snprintf(err, errlen, "%s: %lld is out of range; use %s", key, (long long)*v, what);
		return MTR_ECONFIG;
	}
	return 0;
}

int proxy_config_read(const struct conf *c, struct proxy_config *out, char *err, size_t errlen)
{
	proxy_config_defaults(out);
	int rc = clusterconf_read(c, &out->cc, err, errlen);
	if (rc)
		return rc;
	const char *l = conf_str(c, "proxy.listen");
	if (l == NULL || *l == 0 || strcmp(l, "none") == 0) {
		out->no_listen = 1;
	} else if (transport_addr_parse(l, CPROTO_DEFAULT_PORT, &out->listen)) {
		snprintf(err, errlen, "proxy.listen: '%s' is not an address; write a.b.c.d:port", l);
		return MTR_ECONFIG;
	}
	const char *b = conf_str(c, "proxy.bind");
	if (transport_addr_parse(b ? b : "", 0, &out->bind)) {
		snprintf(err, errlen, "proxy.bind: '%s' is not an address; write a.b.c.d:port (port 0: any)", b);
		return MTR_ECONFIG;
	}
	int64_t v;
	if ((rc = range_key(c, "proxy.id", 16, UINT32_MAX, "16 .. 4294967295 (0..15 are server ids)", &v, err,
			    errlen)))
		return rc;
	out->id = (uint32_t)v;
	if ((rc = range_key(c, "proxy.buffer", 64 << 10, INT64_MAX, "at least 64K", &v, err, errlen)))
		return rc;
	out->buffer_bytes = (uint64_t)v;
	if ((rc = range_key(c, "proxy.buffer_items", 16, 1 << 26, "16 .. 67108864", &v, err, errlen)))
		return rc;
	out->buffer_items = (uint32_t)v;
	if ((rc = range_key(c, "proxy.heartbeat", 1, 60000, "1ms .. 60s", &v, err, errlen)))
		return rc;
	out->heartbeat_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.result_timeout", 1, 3600000, "1ms .. 1h", &v, err, errlen)))
		return rc;
	out->result_timeout_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.read_timeout", 5, 3600000, "5ms .. 1h", &v, err, errlen)))
		return rc;
	out->read_timeout_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.max_clients", 1, 1000000, "1 .. 1000000", &v, err, errlen)))
		return rc;
	out->max_clients = (uint32_t)v;
	if ((rc = range_key(c, "proxy.client_buffer", 4096, INT64_MAX, "at least 4K", &v, err, errlen)))
		return rc;
	out->client_buffer = (uint64_t)v;
	const char *lv = conf_str(c, "log.level");
	out->log_level = log_level_parse(lv ? lv : "info");
	if (out->log_level < 0) {
		snprintf(err, errlen, "log.level: '%s' is unknown; use error, warn, info, debug or trace", lv);
		return MTR_ECONFIG;
	}
	return 0;
}

/* ---- sending datagrams ---------------------------------------------------- */

static void sendq_flush(struct proxy *p, struct sendq *q)
{
	if (q->n == 0)
		return;
	int rc = q->group ? transport_send_group(p->t, q->msg, q->n) : transport_send_to(p->t, q->msg, q->n);
	if (rc < 0)
		mtr_log(LOG_WARN, "proxy: send of %u datagrams failed: %s", q->n, mtr_strerror(rc));
	q->n = 0;
}

/* The buffer of the next datagram (mtu bytes): flushes first when full.
 * Only one slot may be open (obtained, not committed) at a time. */
static uint8_t *sendq_slot(struct proxy *p, struct sendq *q)
{
	if (q->n == SENDQ_CAP)
		sendq_flush(p, q);
	return q->mem + (size_t)q->n * p->mtu;
}

static void sendq_commit(struct sendq *q, size_t len, const struct transport_addr *peer)
{
	struct transport_msg *m = &q->msg[q->n++];
	m->len = (uint32_t)len;
	if (peer)
		m->peer = *peer;
}

static void ipack_finish(struct proxy *p, struct ipack *ip)
{
	if (ip->buf == NULL)
		return;
	struct wire_hdr h = {.type = WIRE_T_ITEMS, .cluster = p->cfg.cc.cluster_id, .sender = p->cfg.id,
			     .length = (uint32_t)ip->used};
	size_t n = wire_dgram_finish(ip->buf, &h, &p->cfg.cc.key);
	sendq_commit(ip->q, n, &ip->peer);
	ip->buf = NULL;
	ip->used = 0;
}

/* Add one encoded item record (ITEMS payloads are records back to back):
 * into the open ITEMS datagram, or as fragments when it needs more than one
 * datagram.  Returns the datagrams used (for counters). */
static unsigned ipack_add(struct proxy *p, struct ipack *ip, uint64_t seq, const uint8_t *rec, uint32_t len)
{
	size_t room = p->mtu - WIRE_OVERHEAD;
	if (len > room) {
		ipack_finish(p, ip);
		uint32_t nf = wire_frag_count(len, p->mtu);
		for (uint32_t i = 0; i < nf; i++) {
			uint8_t *b = sendq_slot(p, ip->q);
			size_t n = wire_frag_build(b, p->mtu, p->cfg.cc.cluster_id, p->cfg.id, &p->cfg.cc.key,
						   p->stream, seq, rec, len, i);
			sendq_commit(ip->q, n, &ip->peer);
		}
		return nf;
	}
	unsigned fresh = 0;
	if (ip->buf && ip->used + len > room)
		ipack_finish(p, ip);
	if (ip->buf == NULL) {
		ip->buf = sendq_slot(p, ip->q);
		ip->used = 0;
		fresh = 1;
	}
	memcpy(ip->buf + WIRE_HDR_SIZE + ip->used, rec, len);
	ip->used += len;
	return fresh;
}

/* Send the items numbered in this iteration to the group. */
static void flush_items(struct proxy *p)
{
	uint64_t next = outbuf_next_seq(&p->ob);
	if (p->batch_first >= next)
		return;
	struct ipack ip = {.q = &p->gq};
	for (uint64_t s = p->batch_first; s < next; s++) {
		const uint8_t *rec;
		uint32_t len;
		if (outbuf_get(&p->ob, s, &rec, &len) != 0)
			continue;
		p->st.dgrams_out += ipack_add(p, &ip, s, rec, len);
	}
	ipack_finish(p, &ip);
	sendq_flush(p, &p->gq);
	p->batch_first = next;
}

/* ---- clients: output ------------------------------------------------------ */

static void mark_dirty(struct proxy *p, struct client *c)
{
	if (c->dirty || c->dead)
		return;
	if (p->ndirty == p->cdirty) {
		uint32_t n = p->cdirty ? p->cdirty * 2 : 64;
		struct client **d = realloc(p->dirty, n * sizeof *d);
		if (d == NULL)
			return; /* its events are refreshed at its next I/O */
		p->dirty = d;
		p->cdirty = n;
	}
	c->dirty = 1;
	p->dirty[p->ndirty++] = c;
}

static void client_close(struct proxy *p, struct client *c, const char *why);

static void put_answer(struct proxy *p, struct client *c, uint64_t request, uint64_t instance, int32_t status,
		       uint32_t line, uint32_t col, const char *msg, uint32_t msg_len, const uint8_t *res,
		       uint32_t res_len)
{
	struct cproto_answer a = {.request = request, .instance = instance, .status = status, .line = line,
				  .col = col, .msg = msg, .msg_len = msg_len, .result = res, .result_len = res_len};
	int rc = cproto_put_answer(&c->out, &a);
	if (rc == MTR_ETOOBIG) {
		const char *m = "the answer exceeds the largest frame";
		struct cproto_answer e = {.request = request, .instance = instance, .status = MTR_ETOOBIG,
					  .msg = m, .msg_len = (uint32_t)strlen(m)};
		rc = cproto_put_answer(&c->out, &e);
	}
	if (rc != 0) {
		client_close(p, c, "out of memory for an answer");
		return;
	}
	if (instance > c->max_inst)
		c->max_inst = instance;
	p->st.answers++;
	mark_dirty(p, c);
}

static void pend_free(struct pend *q)
{
	free(q->msg);
	free(q->res);
	free(q->item);
	rbuf_free(q->rb);
	free(q);
}

/* Write the done prefix of the connection's FIFO. */
static void client_flush_done(struct proxy *p, struct client *c)
{
	while (c->qh && c->qh->kind == PEND_DONE && !c->dead) {
		struct pend *q = c->qh;
		c->qh = q->next;
		if (c->qh == NULL)
			c->qt = NULL;
		c->npend--;
		put_answer(p, c, q->request, q->instance, q->status, q->line, q->col, q->msg, q->msg_len, q->res,
			   q->res_len);
		pend_free(q);
	}
}

/* The request q has its answer.  res (res_len bytes) is borrowed unless
 * owned is set (then q takes it). */
static void pend_complete(struct proxy *p, struct pend *q, int32_t status, const char *msg, uint64_t instance,
			  uint8_t *res, uint32_t res_len, int owned)
{
	struct client *c = q->c;
	q->kind = PEND_DONE;
	q->status = status;
	q->instance = instance;
	if (c->qh == q) {
		/* the head: straight into the output, no copy */
		c->qh = q->next;
		if (c->qh == NULL)
			c->qt = NULL;
		c->npend--;
		put_answer(p, c, q->request, instance, status, 0, 0, msg, msg ? (uint32_t)strlen(msg) : 0, res,
			   res_len);
		if (owned)
			free(res);
		pend_free(q);
		client_flush_done(p, c);
		return;
	}
	if (msg) {
		q->msg = strdup(msg);
		q->msg_len = q->msg ? (uint32_t)strlen(q->msg) : 0;
	}
	if (owned) {
		q->res = res;
	} else if (res_len) {
		q->res = malloc(res_len);
		if (q->res == NULL) {
			q->status = MTR_ENOMEM;
			res_len = 0;
		} else {
			memcpy(q->res, res, res_len);
		}
	}
	q->res_len = q->res ? res_len : 0;
}

static struct pend *pend_new(struct client *c, uint64_t request, int kind)
{
	struct pend *q = calloc(1, sizeof *q);
	if (q == NULL)
		return NULL;
	q->c = c;
	q->request = request;
	q->kind = kind;
	if (c->qt)
		c->qt->next = q;
	else
		c->qh = q;
	c->qt = q;
	c->npend++;
	return q;
}

/* An answer known at once (error, or nothing to apply): in order. */
static int answer_now(struct proxy *p, struct client *c, uint64_t request, int32_t status,
		      const struct proxy_err *err, const uint8_t *res, uint32_t res_len)
{
	const char *msg = NULL;
	if (status != 0)
		msg = err && err->msg[0] ? err->msg : mtr_strerror(status);
	if (c->qh == NULL) {
		put_answer(p, c, request, 0, status, err ? err->line : 0, err ? err->col : 0, msg,
			   msg ? (uint32_t)strlen(msg) : 0, res, res_len);
		return 0;
	}
	struct pend *q = pend_new(c, request, PEND_DONE);
	if (q == NULL)
		return MTR_ENOMEM;
	q->status = status;
	if (err) {
		q->line = err->line;
		q->col = err->col;
	}
	if (msg) {
		q->msg = strdup(msg);
		q->msg_len = q->msg ? (uint32_t)strlen(q->msg) : 0;
	}
	if (res_len) {
		q->res = malloc(res_len);
		if (q->res)
			memcpy(q->res, res, res_len);
		q->res_len = q->res ? res_len : 0;
	}
	return 0;
}

static void bye(struct client *c, int32_t status, const char *why)
{
	struct cproto_bye b = {.status = status, .msg = why, .msg_len = (uint32_t)strlen(why)};
	if (cproto_put_bye(&c->out, &b) == 0 && c->out.len) {
		ssize_t w = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w; /* best effort: the connection closes next */
	}
}

/* ---- reads ---------------------------------------------------------------- */

static void read_unlink(struct proxy *p, struct pend *q)
{
	struct pend **pp = &p->rtab[q->rid % RHASH];
	while (*pp && *pp != q)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = q->hnext;
	if (q->rprev)
		q->rprev->rnext = q->rnext;
	else
		p->rhead = q->rnext;
	if (q->rnext)
		q->rnext->rprev = q->rprev;
	else
		p->rtail = q->rprev;
	q->rprev = q->rnext = q->hnext = NULL;
}

static void read_list_append(struct proxy *p, struct pend *q)
{
	q->rnext = NULL;
	q->rprev = p->rtail;
	if (p->rtail)
		p->rtail->rnext = q;
	else
		p->rhead = q;
	p->rtail = q;
}

/* The server for a read: one alive that has applied min_inst (round robin
 * from `from`), else simply the next one. */
static unsigned read_pick(struct proxy *p, uint64_t min_inst, unsigned from)
{
	unsigned n = p->cfg.cc.nservers;
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (from + k) % n;
		struct srv *s = &p->srv[i];
		if (s->known && p->now_ms - s->seen_ms < ALIVE_MS && s->applied >= min_inst)
			return i;
	}
	return from % n;
}

static void read_send(struct proxy *p, struct pend *q)
{
	uint8_t *b = sendq_slot(p, &p->tq);
	struct wire_read m = {.stream = p->stream, .rid = q->rid, .min_instance = q->min_inst, .item = q->item,
			      .item_len = q->item_len};
	long n = wire_read_build(b, p->mtu, p->cfg.cc.cluster_id, p->cfg.id, &p->cfg.cc.key, &m);
	if (n > 0)
		sendq_commit(&p->tq, (size_t)n, &p->cfg.cc.servers[q->server]);
	q->sent_ms = p->now_ms;
}

/* ---- clients: requests ---------------------------------------------------- */

static int handle_query(struct proxy *p, struct client *c, const struct cproto_frame *f)
{
	struct cproto_query q;
	int rc = cproto_get_query(f, &q);
	if (rc)
		return rc;
	struct cproto_bind *binds = NULL;
	if (cproto_query_binds(&q, &binds) != 0)
		return MTR_ENOMEM;
	uint8_t cons = q.consistency ? q.consistency : c->cons;
	if (cons > CPROTO_CONS_LINEARIZABLE) {
		free(binds);
		return MTR_EMALFORMED;
	}
	uint64_t seq = outbuf_next_seq(&p->ob);
	struct proxy_item_out out = {0};
	struct proxy_err err;
	memset(&err, 0, sizeof err);
	struct proxy_item_in in = {.sql = q.sql, .len = q.sql_len, .binds = binds, .nbinds = q.nbinds,
				   .stream = p->stream, .seq = seq, .request = q.request, .client = c->client_id,
				   .floor = q.floor, .now_us = wall_us(), .seed = prng_next(&p->prng)};
	rc = proxy_item_build(&in, &out, &err);
	free(binds);
	p->st.requests++;
	if (rc < 0)
		return answer_now(p, c, q.request, rc, &err, NULL, 0);
	if (rc == PROXY_ITEM_NONE) {
		free(out.buf);
		return answer_now(p, c, q.request, 0, NULL, p->empty_result, p->empty_result_len);
	}
	if (rc == PROXY_ITEM_READ && cons != CPROTO_CONS_LINEARIZABLE &&
	    WIRE_READ_HDR_SIZE + out.len + WIRE_OVERHEAD <= p->mtu) {
		struct pend *r = pend_new(c, q.request, PEND_READ);
		if (r == NULL) {
			free(out.buf);
			return MTR_ENOMEM;
		}
		r->rid = ++p->next_rid;
		r->item = out.buf;
		r->item_len = (uint32_t)out.len;
		r->min_inst = cons == CPROTO_CONS_NONE ? 0 : MAX(q.min_instance, c->max_inst);
		r->first_ms = p->now_ms;
		r->server = read_pick(p, r->min_inst, p->rr++);
		r->hnext = p->rtab[r->rid % RHASH];
		p->rtab[r->rid % RHASH] = r;
		read_list_append(p, r);
		read_send(p, r);
		p->st.reads++;
		return 0;
	}
	/* a write, or a read ordered like one (linearizable, or too big for a
	 * READ datagram: ordering it is stronger than asked, never weaker) */
	rc = outbuf_put(&p->ob, seq, out.buf, (uint32_t)out.len);
	free(out.buf);
	if (rc == MTR_EFULL) {
		p->st.requests--; /* handled again once the buffer has room */
		return MTR_EFULL;
	}
	if (rc < 0) {
		struct proxy_err e2 = {0};
		snprintf(e2.msg, sizeof e2.msg, "%s (item of %zu bytes, proxy.buffer is %llu)", mtr_strerror(rc),
			 out.len, (unsigned long long)p->cfg.buffer_bytes);
		return answer_now(p, c, q.request, rc, &e2, NULL, 0);
	}
	struct pend *w = pend_new(c, q.request, PEND_WRITE);
	struct wslot *s = &p->slots[seq % p->cap];
	memset(s, 0, sizeof *s);
	s->pend = w; /* NULL without memory: the item still applies, the client waits for nothing */
	s->sent_ms = p->now_ms;
	if (w)
		w->seq = seq;
	p->st.items++;
	if (p->next_hb_ms > p->now_ms + p->cfg.heartbeat_ms)
		p->next_hb_ms = p->now_ms + p->cfg.heartbeat_ms;
	return w ? 0 : MTR_ENOMEM;
}

/* One frame.  0: consumed; MTR_EFULL: not consumed (push-back); other
 * negative: close the connection (a BYE has been queued). */
static int handle_frame(struct proxy *p, struct client *c, const struct cproto_frame *f)
{
	int rc;
	if (!c->hello) {
		struct cproto_hello h;
		if (f->type != CPROTO_T_HELLO) {
			bye(c, MTR_EMALFORMED, "the first frame must be HELLO");
			return MTR_EMALFORMED;
		}
		rc = cproto_get_hello(f, &h);
		if (rc == 0 && h.consistency > CPROTO_CONS_LINEARIZABLE)
			rc = MTR_EMALFORMED;
		if (rc) {
			bye(c, rc, rc == MTR_EVERSION ? "unsupported client protocol version" : "malformed HELLO");
			return rc;
		}
		c->hello = 1;
		c->cons = h.consistency ? h.consistency : CPROTO_CONS_SESSION;
		c->client_id = h.client_id;
		struct cproto_welcome w = {.version = CPROTO_VERSION, .stream = p->stream,
					   .max_frame = p->cfg.max_frame};
		if (cproto_put_welcome(&c->out, &w))
			return MTR_ENOMEM;
		mark_dirty(p, c);
		return 0;
	}
	switch (f->type) {
	case CPROTO_T_QUERY:
		rc = handle_query(p, c, f);
		if (rc == MTR_EFULL || rc == 0)
			return rc;
		bye(c, rc, rc == MTR_ENOMEM ? "out of memory" : "malformed QUERY");
		return rc;
	case CPROTO_T_PING: {
		uint64_t tok;
		if (cproto_get_ping(f, &tok) || cproto_put_ping(&c->out, CPROTO_T_PONG, tok)) {
			bye(c, MTR_EMALFORMED, "malformed PING");
			return MTR_EMALFORMED;
		}
		mark_dirty(p, c);
		return 0;
	}
	default: {
		char why[80];
		snprintf(why, sizeof why, "unexpected frame %s from a client", cproto_type_name(f->type));
		bye(c, MTR_EMALFORMED, why);
		return MTR_EMALFORMED;
	}
	}
}

static int client_paused(const struct proxy *p, const struct client *c)
{
	return c->out.len > p->cfg.client_buffer || c->npend >= MAX_PEND;
}

/* Handle the complete frames in c's input buffer. */
static void client_process(struct proxy *p, struct client *c)
{
	c->backlog = 0;
	while (!c->dead) {
		if (p->blocked || client_paused(p, c)) {
			struct cproto_frame f;
			if (cproto_frame_next(c->in + c->inoff, c->inlen - c->inoff, p->cfg.max_frame, &f) != 0)
				c->backlog = 1;
			break;
		}
		struct cproto_frame f;
		long n = cproto_frame_next(c->in + c->inoff, c->inlen - c->inoff, p->cfg.max_frame, &f);
		if (n == 0)
			break;
		if (n < 0) {
			bye(c, (int32_t)n, n == MTR_ETOOBIG ? "frame larger than the proxy accepts" : "malformed frame");
			client_close(p, c, "malformed frame");
			return;
		}
		int rc = handle_frame(p, c, &f);
		if (rc == MTR_EFULL) {
			if (!p->blocked) {
				p->blocked = 1;
				p->st.pushback++;
				mtr_log(LOG_DEBUG, "proxy: buffer full at seq %llu: clients paused",
					(unsigned long long)outbuf_next_seq(&p->ob));
				for (struct client *x = p->clients; x; x = x->next)
					mark_dirty(p, x);
			}
			c->backlog = 1;
			p->full_client = c;
			break;
		}
		if (rc < 0) {
			client_close(p, c, "protocol error");
			return;
		}
		c->inoff += (size_t)n;
	}
	if (c->dead)
		return;
	if (c->inoff == c->inlen) {
		c->inoff = c->inlen = 0;
	} else if (c->inoff > 0 && (c->inoff > c->incap / 2 || c->incap - c->inlen < 4096)) {
		memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
		c->inlen -= c->inoff;
		c->inoff = 0;
	}
	mark_dirty(p, c);
}

static void client_read(struct proxy *p, struct client *c)
{
	for (int round = 0; round < 4 && !c->dead; round++) {
		size_t have = c->inlen - c->inoff;
		size_t need = READ_CHUNK;
		if (have >= 4) {
			/* room for the whole frame at the head */
			uint64_t fl = (uint64_t)ld32(c->in + c->inoff) + 4;
			if (fl <= (uint64_t)p->cfg.max_frame + 4 && fl > have && fl - have > need)
				need = (size_t)(fl - have);
		}
		if (c->incap - c->inlen < need) {
			if (c->inoff) {
				memmove(c->in, c->in + c->inoff, have);
				c->inlen = have;
				c->inoff = 0;
			}
			if (c->incap - c->inlen < need) {
				size_t ncap = c->inlen + need;
				uint8_t *b = realloc(c->in, ncap);
				if (b == NULL) {
					client_close(p, c, "out of memory");
					return;
				}
				c->in = b;
				c->incap = ncap;
			}
		}
		ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, MSG_DONTWAIT);
		if (r == 0) {
			client_close(p, c, "closed by the client");
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			client_close(p, c, strerror(errno));
			return;
		}
		c->inlen += (size_t)r;
		if ((size_t)r < c->incap - c->inlen + (size_t)r)
			break; /* the socket is drained */
	}
	client_process(p, c);
}

static void client_write(struct proxy *p, struct client *c)
{
	while (c->out.len && !c->dead) {
		ssize_t w = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			client_close(p, c, strerror(errno));
			return;
		}
		cproto_buf_consume(&c->out, (size_t)w);
	}
}

/* What epoll watches for c. */
static void client_events(struct proxy *p, struct client *c)
{
	uint32_t ev = 0;
	int paused = client_paused(p, c);
	if (paused && !c->paused) {
		p->st.client_pauses++;
		mtr_log(LOG_DEBUG, "proxy: client %llu paused: %zu answer bytes unread, %u unanswered",
			(unsigned long long)c->no, c->out.len, c->npend);
	}
	c->paused = paused;
	if (!p->blocked && !c->backlog && !paused)
		ev |= EPOLLIN;
	if (c->out.len)
		ev |= EPOLLOUT;
	if (ev == c->ev)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	if (epoll_ctl(p->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->ev = ev;
}

static void client_close(struct proxy *p, struct client *c, const char *why)
{
	if (c->dead)
		return;
	mtr_log(LOG_DEBUG, "proxy: client %llu closed: %s (%u answers dropped)", (unsigned long long)c->no, why,
		c->npend);
	c->dead = 1;
	if (p->full_client == c)
		p->full_client = NULL;
	close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	/* drop the pending answers; their items still apply */
	while (c->qh) {
		struct pend *q = c->qh;
		c->qh = q->next;
		if (q->kind == PEND_WRITE) {
			struct wslot *s = &p->slots[q->seq % p->cap];
			if (s->pend == q)
				s->pend = NULL;
		} else if (q->kind == PEND_READ) {
			read_unlink(p, q);
		}
		pend_free(q);
	}
	c->qt = NULL;
	c->npend = 0;
	if (c->prev)
		c->prev->next = c->next;
	else
		p->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	p->nclients--;
	c->dnext = p->dead; /* freed at the end of the iteration */
	p->dead = c;
}

static void client_add(struct proxy *p, int fd, const char *how)
{
	if (p->nclients >= p->cfg.max_clients) {
		struct client tmp = {.fd = fd};
		bye(&tmp, MTR_EBUSY, "too many clients (proxy.max_clients)");
		cproto_buf_free(&tmp.out);
		close(fd);
		mtr_log(LOG_WARN, "proxy: client refused: proxy.max_clients (%u) reached", p->cfg.max_clients);
		return;
	}
	struct client *c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->no = ++p->next_no;
	c->ev = EPOLLIN;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
		mtr_log(LOG_WARN, "proxy: epoll_ctl on a client: %s", strerror(errno));
		close(fd);
		free(c);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on AF_UNIX */
	c->next = p->clients;
	if (p->clients)
		p->clients->prev = c;
	p->clients = c;
	p->nclients++;
	p->st.clients++;
	mtr_log(LOG_DEBUG, "proxy: client %llu %s", (unsigned long long)c->no, how);
}

static void accept_all(struct proxy *p)
{
	for (;;) {
		int fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				mtr_log(LOG_WARN, "proxy: accept: %s", strerror(errno));
			return;
		}
		client_add(p, fd, "connected");
	}
}

/* ---- datagrams in ------------------------------------------------------- */

static void release_done(struct proxy *p)
{
	uint64_t next = outbuf_next_seq(&p->ob), old = p->rel;
	while (p->rel + 1 < next) {
		struct wslot *s = &p->slots[(p->rel + 1) % p->cap];
		if (!s->done)
			break;
		s->done = 0;
		s->pend = NULL;
		p->rel++;
	}
	if (p->rel != old) {
		outbuf_release(&p->ob, p->rel);
		p->released_any = 1;
		p->st.released = p->rel;
	}
}

static void on_result(struct proxy *p, const uint8_t *pl, size_t len)
{
	struct wire_result_msg m;
	if (wire_result_decode(pl, len, p->cfg.max_frame, &m) != 0 || m.stream != p->stream)
		return;
	struct wire_result_rec rec;
	int released = 0;
	while (wire_result_next(&m, &rec)) {
		int whole = rec.offset == 0 && rec.len == rec.total;
		if (rec.seq == 0) {
			struct pend *q = p->rtab[rec.request % RHASH];
			while (q && q->rid != rec.request)
				q = q->hnext;
			if (q == NULL)
				continue;
			if (whole) {
				read_unlink(p, q);
				pend_complete(p, q, 0, NULL, rec.instance, (uint8_t *)rec.data, rec.len, 0);
				continue;
			}
			if (q->rb == NULL && (q->rb = calloc(1, sizeof *q->rb)) == NULL)
				continue;
			if (rbuf_add(q->rb, &rec) == 1) {
				struct rbuf *rb = q->rb;
				q->rb = NULL;
				read_unlink(p, q);
				pend_complete(p, q, 0, NULL, rec.instance, rb->data, rb->total, 1);
				rb->data = NULL;
				rbuf_free(rb);
			}
			continue;
		}
		if (rec.seq <= p->rel || rec.seq >= outbuf_next_seq(&p->ob))
			continue;
		struct wslot *s = &p->slots[rec.seq % p->cap];
		if (s->done)
			continue;
		uint8_t *data = (uint8_t *)rec.data;
		uint32_t dlen = rec.len;
		struct rbuf *rb = NULL;
		if (!whole) {
			if (s->rb == NULL && (s->rb = calloc(1, sizeof *s->rb)) == NULL)
				continue;
			if (rbuf_add(s->rb, &rec) != 1)
				continue;
			rb = s->rb;
			s->rb = NULL;
			data = rb->data;
			dlen = rb->total;
		} else if (s->rb) {
			rbuf_free(s->rb);
			s->rb = NULL;
		}
		s->done = 1;
		struct pend *q = s->pend;
		s->pend = NULL;
		if (q)
			pend_complete(p, q, 0, NULL, rec.instance, data, dlen, rb != NULL);
		if (rb) {
			if (q)
				rb->data = NULL; /* handed to the answer */
			rbuf_free(rb);
		}
		released = 1;
	}
	if (released)
		release_done(p);
}

static void on_resend(struct proxy *p, const struct transport_msg *m)
{
	struct wire_resend r;
	if (wire_resend_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &r) != 0 || r.stream != p->stream)
		return;
	uint64_t first = MAX(r.first, p->rel + 1), last = MIN(r.last, outbuf_high(&p->ob));
	if (last >= first + RESEND_MAX)
		last = first + RESEND_MAX - 1;
	if (first > last)
		return; /* released already: the servers have it from their peers */
	struct ipack ip = {.q = &p->tq, .peer = m->peer};
	for (uint64_t s = first; s <= last; s++) {
		const uint8_t *rec;
		uint32_t len;
		if (outbuf_get(&p->ob, s, &rec, &len) != 0)
			continue;
		ipack_add(p, &ip, s, rec, len);
		p->st.resent++;
	}
	ipack_finish(p, &ip);
	mtr_log(LOG_DEBUG, "proxy: RESEND %llu..%llu from %u", (unsigned long long)first, (unsigned long long)last,
		m->hdr.sender);
}

static void on_status(struct proxy *p, const struct transport_msg *m)
{
	struct wire_status s;
	if (wire_status_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &s) != 0 || s.node >= p->cfg.cc.nservers)
		return;
	struct srv *v = &p->srv[s.node];
	if (s.applied > v->applied)
		v->applied = s.applied;
	v->seen_ms = p->now_ms;
	v->known = 1;
}

static int transport_drain(struct proxy *p)
{
	struct transport_msg msgs[RECV_BATCH];
	for (unsigned round = 0; round < RECV_ROUNDS; round++) {
		int n = transport_recv(p->t, msgs, RECV_BATCH);
		if (n < 0) {
			mtr_log(LOG_ERROR, "proxy: transport receive failed: %s", mtr_strerror(n));
			return n;
		}
		for (int i = 0; i < n; i++) {
			const struct transport_msg *m = &msgs[i];
			switch (m->hdr.type) {
			case WIRE_T_RESULT:
				on_result(p, m->buf + WIRE_HDR_SIZE, m->hdr.length);
				break;
			case WIRE_T_RESEND:
				on_resend(p, m);
				break;
			case WIRE_T_STATUS:
				on_status(p, m);
				break;
			default:
				break;
			}
		}
		if (n < (int)RECV_BATCH)
			break;
	}
	return 0;
}

/* ---- timers -------------------------------------------------------------- */

static void timers(struct proxy *p)
{
	uint64_t now = p->now_ms;
	uint64_t high = outbuf_high(&p->ob);
	int waiting = high > p->rel;
	if (now >= p->next_hb_ms) {
		uint8_t *b = sendq_slot(p, &p->gq);
		struct wire_heartbeat hb = {.stream = p->stream, .high = high};
		sendq_commit(&p->gq, wire_heartbeat_build(b, p->cfg.cc.cluster_id, p->cfg.id, &p->cfg.cc.key, &hb),
			     NULL);
		p->next_hb_ms = now + (waiting ? p->cfg.heartbeat_ms : IDLE_HEARTBEAT_MS);
	}
	/* late results: ask a server again (round robin), a few per tick */
	if (waiting && now >= p->next_rr_ms) {
		unsigned asked = 0;
		uint64_t end = MIN(high, p->rel + RREQ_SCAN);
		for (uint64_t s = p->rel + 1; s <= end && asked < RREQ_MAX; s++) {
			struct wslot *w = &p->slots[s % p->cap];
			if (w->done || now - w->sent_ms < p->cfg.result_timeout_ms)
				continue;
			unsigned srv = p->rr++ % p->cfg.cc.nservers;
			uint8_t *b = sendq_slot(p, &p->tq);
			struct wire_result_request rq = {.stream = p->stream, .seq = s};
			size_t n = wire_result_request_build(b, p->cfg.cc.cluster_id, p->cfg.id, &p->cfg.cc.key, &rq);
			sendq_commit(&p->tq, n, &p->cfg.cc.servers[srv]);
			w->sent_ms = now;
			asked++;
			p->st.result_requests++;
		}
		if (asked)
			mtr_log(LOG_DEBUG, "proxy: asked again for %u results from seq %llu", asked,
				(unsigned long long)(p->rel + 1));
		p->next_rr_ms = now + MAX(p->cfg.result_timeout_ms / 4, 1u);
	}
	/* reads: retry another server at read_timeout / 5, fail at read_timeout */
	uint64_t retry = MAX(p->cfg.read_timeout_ms / 5, 1u);
	while (p->rhead && now - p->rhead->sent_ms >= retry) {
		struct pend *q = p->rhead;
		read_unlink(p, q);
		if (now - q->first_ms >= p->cfg.read_timeout_ms) {
			pend_complete(p, q, MTR_ETIMEDOUT, "no server answered the read in time (proxy.read_timeout)",
				      0, NULL, 0, 0);
			continue;
		}
		q->server = read_pick(p, q->min_inst, q->server + 1);
		q->hnext = p->rtab[q->rid % RHASH];
		p->rtab[q->rid % RHASH] = q;
		read_list_append(p, q);
		read_send(p, q);
	}
}

static int next_timeout(struct proxy *p)
{
	if (p->batch_first < outbuf_next_seq(&p->ob))
		return 0;
	uint64_t now = mono_ms(), t = p->next_hb_ms;
	if (outbuf_high(&p->ob) > p->rel && p->next_rr_ms < t)
		t = p->next_rr_ms;
	if (p->rhead) {
		uint64_t r = p->rhead->sent_ms + MAX(p->cfg.read_timeout_ms / 5, 1u);
		if (r < t)
			t = r;
	}
	int ms = t <= now ? 0 : (int)MIN(t - now, 1000u);
	if (p->tfd < 0 && ms > 1)
		ms = 1; /* a transport without an fd is polled */
	return ms;
}

/* ---- the loop -------------------------------------------------------------- */

#define TAG_LISTEN ((void *)1)
#define TAG_TRANSPORT ((void *)2)
#define TAG_EVENT ((void *)3)

static void take_attached(struct proxy *p)
{
	uint64_t v;
	ssize_t r = read(p->efd, &v, sizeof v);
	(void)r;
	pthread_mutex_lock(&p->mu);
	int fds[64];
	unsigned n = 0;
	while (p->nattach && n < ARRAY_SIZE(fds))
		fds[n++] = p->attach[--p->nattach];
	int more = p->nattach > 0;
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < n; i++)
		client_add(p, fds[i], "attached");
	if (more) {
		uint64_t one = 1;
		r = write(p->efd, &one, sizeof one);
	}
}

int proxy_run(struct proxy *p)
{
	struct epoll_event evs[64];
	int rc = 0;
	while (!atomic_load(&p->stop)) {
		int n = epoll_wait(p->ep, evs, ARRAY_SIZE(evs), next_timeout(p));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			mtr_log(LOG_ERROR, "proxy: epoll_wait: %s", strerror(errno));
			rc = MTR_EIO;
			break;
		}
		p->now_ms = mono_ms();
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			if (tag == TAG_LISTEN) {
				accept_all(p);
			} else if (tag == TAG_EVENT) {
				take_attached(p);
			} else if (tag != TAG_TRANSPORT) {
				struct client *c = tag;
				if (c->dead)
					continue;
				if (evs[i].events & EPOLLOUT)
					client_write(p, c);
				if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					client_read(p, c);
				mark_dirty(p, c); /* its epoll interest may change */
			}
		}
		if ((rc = transport_drain(p)) != 0)
			break;
		if (p->blocked && p->released_any) {
			/* Resume with the client whose request hit the full buffer,
			 * then the others in turn, so that push-back cannot starve
			 * the clients at the end of the list. */
			p->blocked = 0;
			struct client *start = p->full_client ? p->full_client : p->clients;
			for (struct client *c = start; c; c = c->next) {
				mark_dirty(p, c);
				if (c->backlog && !p->blocked && !c->dead)
					client_process(p, c);
			}
			for (struct client *c = p->clients; c && c != start; c = c->next) {
				mark_dirty(p, c);
				if (c->backlog && !p->blocked && !c->dead)
					client_process(p, c);
			}
		}
		p->released_any = 0;
		flush_items(p);
		timers(p);
		sendq_flush(p, &p->gq);
		sendq_flush(p, &p->tq);
		for (uint32_t i = 0; i < p->ndirty; i++) {
			struct client *c = p->dirty[i];
			c->dirty = 0;
			if (c->dead)
				continue;
			client_write(p, c);
			if (!c->dead && c->backlog && !p->blocked && !client_paused(p, c))
				client_process(p, c); /* may mark more dirty: handled below */
		}
		for (uint32_t i = 0; i < p->ndirty; i++) {
			struct client *c = p->dirty[i];
			c->dirty = 0;
			if (!c->dead)
				client_events(p, c);
		}
		p->ndirty = 0;
		while (p->dead) {
			struct client *c = p->dead;
			p->dead = c->dnext;
			free(c->in);
			cproto_buf_free(&c->out);
			free(c);
		}
		pthread_mutex_lock(&p->mu);
		p->pub = p->st;
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	p->closing = 1;
	p->pub = p->st;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* ---- open / close ----------------------------------------------------------- */

static int listen_open(struct proxy *p)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MTR_EIO;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->cfg.listen.port),
				 .sin_addr.s_addr = htonl(p->cfg.listen.ip)};
	char a[32];
	transport_addr_format(&p->cfg.listen, a, sizeof a);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 256) != 0) {
		int e = errno;
		mtr_log(LOG_ERROR, "proxy: cannot listen on %s: %s", a, strerror(e));
		close(fd);
		return e == EADDRINUSE ? MTR_EEXIST : MTR_EIO;
	}
	socklen_t sl = sizeof sa;
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	p->laddr.ip = ntohl(sa.sin_addr.s_addr);
	p->laddr.port = ntohs(sa.sin_port);
	p->lfd = fd;
	return 0;
}

int proxy_open(const struct proxy_config *cfg, struct proxy **out)
{
	*out = NULL;
	if (cfg->cc.nservers == 0 || cfg->cc.nservers > CLUSTERCONF_MAX_SERVERS) {
		mtr_log(LOG_ERROR, "proxy: no servers configured (cluster.servers)");
		return MTR_ECONFIG;
	}
	struct proxy *p = calloc(1, sizeof *p);
	if (p == NULL)
		return MTR_ENOMEM;
	struct apply_result er = {0};
	long en = result_encode(&er, p->empty_result, sizeof p->empty_result);
	p->empty_result_len = en > 0 ? (uint32_t)en : 0;
	p->cfg = *cfg;
	if (p->cfg.max_frame == 0 || p->cfg.max_frame > CPROTO_MAX_FRAME)
		p->cfg.max_frame = CPROTO_MAX_FRAME;
	if (p->cfg.heartbeat_ms == 0)
		p->cfg.heartbeat_ms = 10;
	if (p->cfg.result_timeout_ms == 0)
		p->cfg.result_timeout_ms = 500;
	if (p->cfg.read_timeout_ms == 0)
		p->cfg.read_timeout_ms = 5000;
	if (p->cfg.max_clients == 0)
		p->cfg.max_clients = 1024;
	if (p->cfg.client_buffer == 0)
		p->cfg.client_buffer = 16u << 20;
	p->lfd = p->efd = p->ep = p->tfd = -1;
	pthread_mutex_init(&p->mu, NULL);
	int rc = MTR_ENOMEM;

	uint8_t rnd[16];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		mtr_log(LOG_ERROR, "proxy: getrandom: %s", strerror(errno));
		rc = MTR_EIO;
		goto fail;
	}
	p->stream = proxy_stream_id((uint64_t)wall_us(), rnd);
	memcpy(&p->prng, rnd + 8, 8);

	if ((rc = outbuf_init(&p->ob, cfg->buffer_bytes, cfg->buffer_items)) != 0) {
		mtr_log(LOG_ERROR, "proxy: cannot allocate the item buffer (proxy.buffer, proxy.buffer_items)");
		goto fail;
	}
	rc = MTR_ENOMEM;
	p->cap = cfg->buffer_items;
	p->slots = calloc(p->cap, sizeof *p->slots);
	if (p->slots == NULL)
		goto fail;

	struct transport_config tc;
	transport_config_init(&tc);
	clusterconf_transport(&p->cfg.cc, &tc);
	tc.bind = cfg->bind;
	tc.mtu = cfg->cc.mtu ? cfg->cc.mtu : WIRE_DEFAULT_MTU;
	if ((rc = transport_open(&tc, &p->t)) != 0)
		goto fail;
	p->mtu = p->t->cfg.mtu;
	p->tfd = transport_fd(p->t);
	rc = MTR_ENOMEM;
	p->gq.mem = malloc(SENDQ_CAP * p->mtu);
	p->tq.mem = malloc(SENDQ_CAP * p->mtu);
	p->gq.msg = calloc(SENDQ_CAP, sizeof *p->gq.msg);
	p->tq.msg = calloc(SENDQ_CAP, sizeof *p->tq.msg);
	if (!p->gq.mem || !p->tq.mem || !p->gq.msg || !p->tq.msg)
		goto fail;
	p->gq.group = 1;
	for (unsigned i = 0; i < SENDQ_CAP; i++) {
		p->gq.msg[i].buf = p->gq.mem + (size_t)i * p->mtu;
		p->tq.msg[i].buf = p->tq.mem + (size_t)i * p->mtu;
	}

	rc = MTR_EIO;
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->ep < 0 || p->efd < 0)
		goto fail;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = TAG_EVENT};
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->efd, &e) != 0)
		goto fail;
	if (p->tfd >= 0) {
		e.data.ptr = TAG_TRANSPORT;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->tfd, &e) != 0)
			goto fail;
	}
	if (!cfg->no_listen) {
		if ((rc = listen_open(p)) != 0)
			goto fail;
		e.data.ptr = TAG_LISTEN;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->lfd, &e) != 0) {
			rc = MTR_EIO;
			goto fail;
		}
	}
	p->batch_first = outbuf_next_seq(&p->ob);
	p->now_ms = mono_ms();
	p->next_hb_ms = p->now_ms;
	char la[32], ua[32];
	transport_addr_format(&p->laddr, la, sizeof la);
	transport_addr_format(&p->t->cfg.bind, ua, sizeof ua);
	if (cfg->no_listen)
		mtr_log(LOG_INFO, "proxy: embedded (no listener), stream %016llx, udp %s", (unsigned long long)p->stream,
			ua);
	else
		mtr_log(LOG_INFO, "listening on %s for clients, stream %016llx", la, (unsigned long long)p->stream);
	mtr_log(LOG_INFO, "proxy: udp %s, %u servers, mtu %zu, buffer %llu bytes / %u items", ua, cfg->cc.nservers,
		p->mtu, (unsigned long long)cfg->buffer_bytes, cfg->buffer_items);
	*out = p;
	return 0;
fail:
	proxy_close(p);
	return rc;
}

void proxy_stop(struct proxy *p)
{
	atomic_store(&p->stop, 1);
	uint64_t one = 1;
	ssize_t r = write(p->efd, &one, sizeof one);
	(void)r;
}

int proxy_attach(struct proxy *p, int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	pthread_mutex_lock(&p->mu);
	int rc = 0;
	if (p->closing || atomic_load(&p->stop)) {
		rc = MTR_ECLOSED;
	} else if (p->nattach == p->cattach) {
		unsigned n = p->cattach ? p->cattach * 2 : 8;
		int *a = realloc(p->attach, n * sizeof *a);
		if (a == NULL)
			rc = MTR_ENOMEM;
		else {
			p->attach = a;
			p->cattach = n;
		}
	}
	if (rc == 0)
		p->attach[p->nattach++] = fd;
	pthread_mutex_unlock(&p->mu);
	if (rc) {
		close(fd);
		return rc;
	}
	uint64_t one = 1;
	ssize_t r = write(p->efd, &one, sizeof one);
	(void)r;
	return 0;
}

void proxy_close(struct proxy *p)
{
	if (p == NULL)
		return;
	while (p->clients)
		client_close(p, p->clients, "proxy closing");
	while (p->dead) {
		struct client *c = p->dead;
		p->dead = c->dnext;
		free(c->in);
		cproto_buf_free(&c->out);
		free(c);
	}
	for (unsigned i = 0; i < p->nattach; i++)
		close(p->attach[i]);
	free(p->attach);
	if (p->slots) {
		for (uint32_t i = 0; i < p->cap; i++)
			rbuf_free(p->slots[i].rb);
		free(p->slots);
	}
	free(p->dirty);
	outbuf_free(&p->ob);
	transport_close(p->t);
	free(p->gq.mem);
	free(p->tq.mem);
	free(p->gq.msg);
	free(p->tq.msg);
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->efd >= 0)
		close(p->efd);
	if (p->ep >= 0)
		close(p->ep);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

uint64_t proxy_stream(const struct proxy *p) { return p->stream; }

void proxy_addrs(const struct proxy *p, struct transport_addr *listen, struct transport_addr *udp)
{
	if (listen)
		*listen = p->laddr;
	if (udp)
		*udp = p->t->cfg.bind;
}

void proxy_stats(struct proxy *p, struct proxy_stats *st)
{
	pthread_mutex_lock(&p->mu);
	*st = p->pub;
	pthread_mutex_unlock(&p->mu);
}
