/*
 * proxy_client.c - the client side of the proxy (proxy_int.h): TCP
 * connections (accept, attach, read, write, close, what epoll watches),
 * the frames of the client protocol (HELLO, QUERY, PING), a QUERY turned
 * into an item (numbered in the outbuf) or a READ (proxy_net.c sends it),
 * and the answers, which leave each connection in request order: every
 * request has a `struct pend` in its connection's FIFO and only the done
 * prefix is written.
 *
 * Connection hygiene (doc/security.md "Clients"): a connection must finish
 * its handshake (HELLO, and AUTH when proxy.users is set) within
 * proxy.handshake_timeout, may stay without a whole frame at most
 * proxy.idle_timeout, sends at most PRELOGIN_FRAME bytes per frame before
 * it is welcomed, and its input buffer grows with the bytes that arrive,
 * never with the length a frame announces.  A failed login is answered with
 * BYE AUTH_FAIL_MS after its AUTH (a timer, the loop never sleeps).  Every
 * refusal is counted (proxy.drop.client_*) and the first of each reason in
 * a minute is logged at warn.  The socket is read and written only by
 * cli_recv / cli_send.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cproto.h"
#include "log.h"
#include "metronome.h"
#include "outbuf.h"
#include "proxy.h"
#include "proxy_int.h"
#include "proxy_item.h"
#include "result.h"
#include "util.h"
#include "wire_server.h"

/* ---- item seeds ----------------------------------------------------------- */

/* splitmix64: the per-proxy PRNG for item seeds (seeded by getrandom). */
static uint64_t prng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* ---- socket I/O: the only calls that read or write a client socket ------- */

/* Through TLS when the connection has it (proxy_tls.c). */
static ssize_t cli_recv(struct client *c, void *buf, size_t n)
{
	return pxtls_recv(c, buf, n);
}

static ssize_t cli_send(struct client *c, const void *buf, size_t n)
{
	return pxtls_send(c, buf, n);
}

/* ---- refusals ---------------------------------------------------------------- */

static const char *const drop_name[] = {
#define PROXY__DROP_NAME(name, text) #name,
	PROXY_DROP_MAP(PROXY__DROP_NAME)
#undef PROXY__DROP_NAME
};

/* Count a refusal of c (why) and log it: at warn the first of its reason in
 * a minute, at debug the others. */
static void refused(struct proxy *p, const struct client *c, enum proxy_drop why, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void refused(struct proxy *p, const struct client *c, enum proxy_drop why, const char *fmt, ...)
{
	p->drops[why]++;
	uint64_t now = proxy_mono_ms();
	int warn = now >= p->drop_warn_ms[why];
	if (warn)
		p->drop_warn_ms[why] = now + CLIENT_WARN_MS;
	if (!warn && log_threshold < LOG_DEBUG)
		return;
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mtr_log(warn ? LOG_WARN : LOG_DEBUG, "proxy: client %s refused: %s (proxy.drop.%s%s)", c->src, msg,
		drop_name[why], warn ? "; the others of this minute are only counted" : "");
}

/* Make deadline (ms, 0: none) the next client timer if it is sooner. */
static void cli_arm(struct proxy *p, uint64_t deadline)
{
	if (deadline && (p->next_cli_ms == 0 || deadline < p->next_cli_ms))
		p->next_cli_ms = deadline;
}

/* ---- clients: output ------------------------------------------------------ */

void pxcli_mark_dirty(struct proxy *p, struct client *c)
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

static void put_answer(struct proxy *p, struct client *c, uint64_t request, uint64_t instance, int32_t status,
		       uint32_t line, uint32_t col, const char *msg, uint32_t msg_len, const uint8_t *res,
		       uint32_t res_len)
{
	struct cproto_answer a = {.request = request, .instance = instance, .status = status, .line = line,
				  .col = col, .msg = msg, .msg_len = msg_len, .result = res, .result_len = res_len};
	if (c->out.len == 0 && c->out_ns == 0)
		c->out_ns = now_mono_ns();
	int rc = cproto_put_answer(&c->out, &a);
	if (rc == MTR_ETOOBIG) {
		const char *m = "the answer exceeds the largest frame";
		struct cproto_answer e = {.request = request, .instance = instance, .status = MTR_ETOOBIG,
					  .msg = m, .msg_len = (uint32_t)strlen(m)};
		rc = cproto_put_answer(&c->out, &e);
	}
	if (rc != 0) {
		pxcli_close(p, c, "out of memory for an answer");
		return;
	}
	if (instance > c->max_inst)
		c->max_inst = instance;
	p->st.answers++;
	pxcli_mark_dirty(p, c);
}

static void pend_free(struct pend *q)
{
	free(q->msg);
	free(q->res);
	free(q->item);
	pxnet_rbuf_free(q->rb);
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
void pxcli_pend_complete(struct proxy *p, struct pend *q, int32_t status, const char *msg, uint64_t instance,
			 uint8_t *res, uint32_t res_len, int owned)
{
	struct client *c = q->c;
	if (q->kind == PEND_WRITE || q->kind == PEND_READ) {
		uint64_t now = now_mono_ns();
		metrics_hist_observe(q->kind == PEND_WRITE ? &p->write_hist : &p->read_hist, (now - q->t0_ns) / 1000u);
		if (q->kind == PEND_WRITE && q->sent_ns != 0 && status == 0) {
			metrics_hist_observe(&p->stage.send, (q->sent_ns - q->t0_ns) / 1000u);
			metrics_hist_observe(&p->stage.servers, (now - q->sent_ns) / 1000u);
		}
	}
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
	q->t0_ns = now_mono_ns();
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
		ssize_t w = cli_send(c, c->out.p, c->out.len);
		(void)w; /* best effort: the connection closes next */
	}
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
				   .floor = q.floor, .now_us = proxy_wall_us(), .seed = prng_next(&p->prng),
				   .cache = &p->pcache};
	rc = proxy_item_build(&in, &out, &err);
	int ordered_read = rc == PROXY_ITEM_READ;
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
		r->server = pxnet_read_pick(p, r->min_inst, p->rr++);
		r->hnext = p->rtab[r->rid % RHASH];
		p->rtab[r->rid % RHASH] = r;
		pxnet_read_list_append(p, r);
		pxnet_read_send(p, r);
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
	s->client = c->client_id;
	s->request = q.request;
	s->read = (uint8_t)ordered_read;
	s->first_ms = s->sent_ms = p->now_ms;
	if (w)
		w->seq = seq;
	p->st.items++;
	if (p->next_hb_ms > p->now_ms + p->cfg.heartbeat_ms)
		p->next_hb_ms = p->now_ms + p->cfg.heartbeat_ms;
	return w ? 0 : MTR_ENOMEM;
}

/* The handshake is over: WELCOME, and the idle timer starts. */
static int welcome(struct proxy *p, struct client *c)
{
	c->hello = 1;
	c->auth = CLI_AUTH_NONE;
	c->last_ms = p->now_ms;
	struct cproto_welcome w = {.version = CPROTO_VERSION, .stream = p->stream, .max_frame = p->cfg.max_frame};
	if (cproto_put_welcome(&c->out, &w))
		return MTR_ENOMEM;
	if (p->cfg.idle_ms)
		cli_arm(p, c->last_ms + p->cfg.idle_ms);
	pxcli_mark_dirty(p, c);
	return 0;
}

/* The login of c failed (missing: it gave no user name): its BYE goes out
 * AUTH_FAIL_MS after the frame that decided it (pxcli_timers). */
static void login_failed(struct proxy *p, struct client *c, int missing)
{
	c->auth = CLI_AUTH_FAILED;
	if (missing) {
		c->user[0] = 0;
		c->fail_ms = p->now_ms + AUTH_FAIL_MS;
	}
	if (c->fail_ms < p->now_ms)
		c->fail_ms = p->now_ms;
	cli_arm(p, c->fail_ms);
	pxcli_mark_dirty(p, c);
}

#define CLI_HOLD 1 /* handle_frame: not consumed, handled again later (auth_hold) */

/* A frame before WELCOME: HELLO, then AUTH when HELLO announced one. */
static int handle_handshake(struct proxy *p, struct client *c, const struct cproto_frame *f)
{
	int rc;
	if (c->auth == CLI_AUTH_WAIT) {
		struct cproto_auth a;
		if (f->type != CPROTO_T_AUTH || (rc = cproto_get_auth(f, &a)) != 0) {
			refused(p, c, PROXY_DROP_client_frame, "malformed AUTH");
			bye(c, MTR_EMALFORMED, "a HELLO with the AUTH flag must be followed by a valid AUTH frame");
			return MTR_EMALFORMED;
		}
		memcpy(c->user, a.user, a.user_len);
		c->user[a.user_len] = 0;
		if (p->auth == NULL) {
			/* no users here: the credentials are not needed */
			mtr_log(LOG_DEBUG, "proxy: client %s sent user '%s'; no proxy.users: not checked", c->src,
				c->user);
			explicit_bzero((void *)f->payload, f->len);
			return welcome(p, c);
		}
		if (c->src_ip) {
			/* one address gets a bounded share of the verifier */
			unsigned busy = 0;
			for (struct client *x = p->clients; x; x = x->next)
				busy += x->src_ip == c->src_ip && x->auth == CLI_AUTH_VERIFYING;
			if (busy >= AUTH_PER_SOURCE) {
				c->auth_hold = 1;
				return CLI_HOLD;
			}
		}
		c->job = pxauth_submit(p->auth, c, a.user, a.user_len, a.password, a.password_len);
		explicit_bzero((void *)f->payload, f->len); /* the password leaves our buffer */
		if (c->job == NULL) {
			bye(c, MTR_ENOMEM, "out of memory");
			return MTR_ENOMEM;
		}
		c->auth = CLI_AUTH_VERIFYING;
		c->fail_ms = p->now_ms + AUTH_FAIL_MS; /* a failure is answered then, whatever the verifier takes */
		return 0;
	}
	struct cproto_hello h;
	if (f->type != CPROTO_T_HELLO) {
		refused(p, c, PROXY_DROP_client_frame, "first frame %s, not HELLO", cproto_type_name(f->type));
		bye(c, MTR_EMALFORMED, "the first frame must be HELLO");
		return MTR_EMALFORMED;
	}
	rc = cproto_get_hello(f, &h);
	if (rc) {
		refused(p, c, PROXY_DROP_client_frame, "%s HELLO", rc == MTR_EVERSION ? "unsupported" : "malformed");
		bye(c, rc, rc == MTR_EVERSION ? "unsupported client protocol version" : "malformed HELLO");
		return rc;
	}
	c->cons = h.consistency ? h.consistency : CPROTO_CONS_SESSION;
	c->client_id = h.client_id;
	if (h.flags & CPROTO_HELLO_AUTH) {
		c->auth = CLI_AUTH_WAIT;
		return 0;
	}
	if (p->auth && !c->attached) { /* an in-process connection is the process's own */
		login_failed(p, c, 1);
		return 0;
	}
	return welcome(p, c);
}

/*
 * CANCEL: the client stops its request `request`.  A read still waiting for
 * a server is cancelled there (CANCEL_READ) and answered now, in its place
 * in the connection's order, like a read a server stopped: SQLite's
 * SQLITE_INTERRUPT, "read cancelled".  A write is ordered already (its
 * answer comes as usual); an answered or unknown request: nothing.
 */
static void handle_cancel(struct proxy *p, struct client *c, uint64_t request)
{
	struct pend *q = c->qh;
	while (q && q->request != request)
		q = q->next;
	if (q == NULL || q->kind != PEND_READ)
		return;
	pxnet_read_unlink(p, q);
	pxnet_read_cancel(p, q);
	p->st.reads_cancelled++;
	uint8_t res[128];
	long n = result_encode_error(RESULT_SQLITE_INTERRUPT, "read cancelled", res, sizeof res);
	pxcli_pend_complete(p, q, n > 0 ? 0 : MTR_EABORT, n > 0 ? NULL : "read cancelled", 0, n > 0 ? res : NULL,
			    n > 0 ? (uint32_t)n : 0, 0);
}

/* One frame.  0: consumed; MTR_EFULL: not consumed (push-back); CLI_HOLD:
 * not consumed (an AUTH waits for the verifier); other negative: close the
 * connection (a BYE has been queued). */
static int handle_frame(struct proxy *p, struct client *c, const struct cproto_frame *f)
{
	int rc;
	if (!c->hello)
		return handle_handshake(p, c, f);
	switch (f->type) {
	case CPROTO_T_QUERY: {
		/* request ids increase per connection (doc/protocol.md): a
		 * reused one would be answered with the earlier result */
		uint64_t req = f->len >= 8 ? ld64(f->payload) : 0;
		if (req != 0 && req <= c->last_request) {
			char why[120];
			snprintf(why, sizeof why, "request id %llu does not increase (the last was %llu)",
				 (unsigned long long)req, (unsigned long long)c->last_request);
			refused(p, c, PROXY_DROP_client_request_id, "%s", why);
			bye(c, MTR_EMALFORMED, why);
			return MTR_EMALFORMED;
		}
		rc = handle_query(p, c, f);
		if (rc == 0)
			c->last_request = req;
		if (rc == MTR_EFULL || rc == 0)
			return rc;
		if (rc != MTR_ENOMEM)
			refused(p, c, PROXY_DROP_client_frame, "malformed QUERY");
		bye(c, rc, rc == MTR_ENOMEM ? "out of memory" : "malformed QUERY");
		return rc;
	}
	case CPROTO_T_BACKUP: {
		uint64_t min_inst;
		if (cproto_get_backup(f, &min_inst)) {
			bye(c, MTR_EMALFORMED, "malformed BACKUP");
			return MTR_EMALFORMED;
		}
		pxbk_start(p, c, MAX(min_inst, c->max_inst));
		return 0;
	}
	case CPROTO_T_MEMBERSHIP:
		rc = pxmem_on_frame(p, c, f);
		if (rc != 0) {
			refused(p, c, PROXY_DROP_client_frame, "malformed MEMBERSHIP");
			bye(c, rc, rc == MTR_ENOMEM ? "out of memory" : "malformed MEMBERSHIP");
		}
		return rc;
	case CPROTO_T_CANCEL: {
		uint64_t req;
		if (cproto_get_cancel(f, &req)) {
			bye(c, MTR_EMALFORMED, "malformed CANCEL");
			return MTR_EMALFORMED;
		}
		handle_cancel(p, c, req);
		return 0;
	}
	case CPROTO_T_PING: {
		uint64_t tok;
		if (cproto_get_ping(f, &tok) || cproto_put_ping(&c->out, CPROTO_T_PONG, tok)) {
			bye(c, MTR_EMALFORMED, "malformed PING");
			return MTR_EMALFORMED;
		}
		pxcli_mark_dirty(p, c);
		return 0;
	}
	default: {
		char why[80];
		snprintf(why, sizeof why, "unexpected frame %s from a client", cproto_type_name(f->type));
		refused(p, c, PROXY_DROP_client_frame, "%s", why);
		bye(c, MTR_EMALFORMED, why);
		return MTR_EMALFORMED;
	}
	}
}

/* A login is being verified or refused: nothing more is read from c. */
static int cli_held(const struct client *c)
{
	return c->auth == CLI_AUTH_VERIFYING || c->auth == CLI_AUTH_FAILED || c->auth_hold;
}

int pxcli_paused(const struct proxy *p, const struct client *c)
{
	return c->out.len > p->cfg.client_buffer || c->npend >= MAX_PEND || cli_held(c) || c->bk != NULL;
}

/* Handle the complete frames in c's input buffer. */
void pxcli_process(struct proxy *p, struct client *c)
{
	c->backlog = 0;
	while (!c->dead) {
		uint32_t maxf = c->hello ? p->cfg.max_frame : PRELOGIN_FRAME;
		if (p->blocked || pxcli_paused(p, c)) {
			struct cproto_frame f;
			if (cproto_frame_next(c->in + c->inoff, c->inlen - c->inoff, maxf, &f) != 0)
				c->backlog = 1;
			break;
		}
		struct cproto_frame f;
		long n = cproto_frame_next(c->in + c->inoff, c->inlen - c->inoff, maxf, &f);
		if (n == 0)
			break;
		if (n < 0) {
			refused(p, c, PROXY_DROP_client_frame, "%s frame of %u bytes",
				n == MTR_ETOOBIG ? "too large a" : "a malformed", ld32(c->in + c->inoff));
			bye(c, (int32_t)n,
			    n != MTR_ETOOBIG ? "malformed frame"
			    : c->hello       ? "frame larger than the proxy accepts"
					     : "frame larger than 4 KiB before the handshake is over");
			pxcli_close(p, c, "malformed frame");
			return;
		}
		int rc = handle_frame(p, c, &f);
		if (rc == CLI_HOLD) {
			c->backlog = 1;
			break;
		}
		if (rc == MTR_EFULL) {
			if (!p->blocked) {
				p->blocked = 1;
				p->st.pushback++;
				mtr_log(LOG_DEBUG, "proxy: buffer full at seq %llu: clients paused",
					(unsigned long long)outbuf_next_seq(&p->ob));
				for (struct client *x = p->clients; x; x = x->next)
					pxcli_mark_dirty(p, x);
			}
			c->backlog = 1;
			p->full_client = c;
			break;
		}
		if (rc < 0) {
			pxcli_close(p, c, "protocol error");
			return;
		}
		c->inoff += (size_t)n;
		c->last_ms = p->now_ms;
	}
	if (c->dead)
		return;
	if (c->inoff == c->inlen) {
		c->inoff = c->inlen = 0;
		if (c->incap > 4 * READ_CHUNK) {
			/* a large frame is done: do not keep its buffer */
			free(c->in);
			c->in = NULL;
			c->incap = 0;
		}
	} else if (c->inoff > 0 && (c->inoff > c->incap / 2 || c->incap - c->inlen < 4096)) {
		memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
		c->inlen -= c->inoff;
		c->inoff = 0;
	}
	pxcli_mark_dirty(p, c);
}

void pxcli_read(struct proxy *p, struct client *c)
{
	if (!pxtls_ready(p, c))
		return;
	for (int round = 0; round < 4 && !c->dead; round++) {
		size_t have = c->inlen - c->inoff;
		/*
		 * Room for what may arrive now, never for the length a frame
		 * announces: the buffer grows (doubling) with the bytes that
		 * came, so a client that announces 64 MiB and sends little
		 * costs little.  Before the handshake a frame is tiny.
		 */
		size_t need = c->hello ? READ_CHUNK : 2 * PRELOGIN_FRAME;
		if (c->incap - c->inlen < need) {
			if (c->inoff) {
				memmove(c->in, c->in + c->inoff, have);
				c->inlen = have;
				c->inoff = 0;
			}
			if (c->incap - c->inlen < need) {
				size_t ncap = MAX(c->inlen + need, 2 * c->incap);
				if (have >= 4) {
					/* doubling, but not far past the frame that is coming */
					uint64_t fl = (uint64_t)ld32(c->in) + 4 + READ_CHUNK;
					if (fl < ncap && fl >= c->inlen + need)
						ncap = (size_t)fl;
				}
				uint8_t *b = realloc(c->in, ncap);
				if (b == NULL) {
					pxcli_close(p, c, "out of memory");
					return;
				}
				c->in = b;
				c->incap = ncap;
			}
		}
		ssize_t r = cli_recv(c, c->in + c->inlen, c->incap - c->inlen);
		if (r == 0) {
			pxcli_close(p, c, "closed by the client");
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			pxcli_close(p, c, strerror(errno));
			return;
		}
		c->inlen += (size_t)r;
		if ((size_t)r < c->incap - c->inlen + (size_t)r)
			break; /* the socket is drained */
	}
	pxcli_process(p, c);
}

void pxcli_write(struct proxy *p, struct client *c)
{
	if (!pxtls_ready(p, c))
		return;
	if (pxtls_read_needs_write(c))
		pxcli_read(p, c);
	while (c->out.len && !c->dead) {
		ssize_t w = cli_send(c, c->out.p, c->out.len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			pxcli_close(p, c, strerror(errno));
			return;
		}
		cproto_buf_consume(&c->out, (size_t)w);
	}
	if (c->out.len == 0 && c->out_ns != 0) {
		metrics_hist_observe(&p->stage.answer, (now_mono_ns() - c->out_ns) / 1000u);
		c->out_ns = 0;
	}
}

/* What epoll watches for c. */
void pxcli_events(struct proxy *p, struct client *c)
{
	uint32_t ev = 0;
	int paused = pxcli_paused(p, c);
	if (paused && !c->paused && !cli_held(c) && !c->bk) { /* a backup's pause is not a slow client */
		p->st.client_pauses++;
		mtr_log(LOG_DEBUG, "proxy: client %llu paused: %zu answer bytes unread, %u unanswered",
			(unsigned long long)c->no, c->out.len, c->npend);
	}
	c->paused = paused;
	if (!p->blocked && !c->backlog && !paused)
		ev |= EPOLLIN;
	if (c->out.len)
		ev |= EPOLLOUT;
	if (c->bk)
		pxbk_events(p, c->bk);
	ev = pxtls_events(c, ev);
	if (ev == c->ev)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	if (epoll_ctl(p->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->ev = ev;
}

void pxcli_close(struct proxy *p, struct client *c, const char *why)
{
	if (c->dead)
		return;
	mtr_log(LOG_DEBUG, "proxy: client %llu closed: %s (%u answers dropped)", (unsigned long long)c->no, why,
		c->npend);
	c->dead = 1;
	pxbk_client_gone(p, c);
	pxmem_client_gone(p, c);
	if (c->job) {
		pxauth_cancel(p->auth, c->job);
		c->job = NULL;
	}
	if (p->full_client == c)
		p->full_client = NULL;
	pxtls_client_close(p, c);
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
			/* nobody waits for it: free the server's reader thread */
			pxnet_read_unlink(p, q);
			pxnet_read_cancel(p, q);
			p->st.reads_cancelled++;
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

/* Take fd (accepted from sa, or attached when sa is NULL) as a client,
 * unless a limit refuses it. */
static void client_add(struct proxy *p, int fd, const char *how, const struct sockaddr_in *sa)
{
	struct client tmp = {.fd = fd};
	if (sa) {
		char ip[INET_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
		snprintf(tmp.src, sizeof tmp.src, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
		tmp.src_ip = ntohl(sa->sin_addr.s_addr);
	} else {
		snprintf(tmp.src, sizeof tmp.src, "attached");
	}
	const char *why = NULL;
	char msg[160];
	if (p->nclients >= p->cfg.max_clients) {
		snprintf(msg, sizeof msg, "too many clients (proxy.max_clients = %u)", p->cfg.max_clients);
		refused(p, &tmp, PROXY_DROP_client_max_clients, "%s", msg);
		why = msg;
	} else if (sa && p->cfg.max_per_source) {
		uint32_t same = 0;
		for (struct client *x = p->clients; x; x = x->next)
			same += x->src_ip == tmp.src_ip;
		if (same >= p->cfg.max_per_source) {
			char ip[INET_ADDRSTRLEN] = "?";
			inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
			snprintf(msg, sizeof msg, "too many connections from %s (proxy.max_conns_per_source = %u)", ip,
				 p->cfg.max_per_source);
			refused(p, &tmp, PROXY_DROP_client_per_source, "%s", msg);
			why = msg;
		}
	}
	if (why) {
		bye(&tmp, MTR_EBUSY, why);
		cproto_buf_free(&tmp.out);
		close(fd);
		return;
	}
	struct client *c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->no = ++p->next_no;
	memcpy(c->src, tmp.src, sizeof c->src);
	c->src_ip = tmp.src_ip;
	c->attached = sa == NULL;
	c->start_ms = c->last_ms = p->now_ms = proxy_mono_ms();
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
	pxtls_client_init(p, c, sa != NULL); /* accepted: its first bytes decide */
	if (p->cfg.handshake_ms)
		cli_arm(p, c->start_ms + p->cfg.handshake_ms);
	mtr_log(LOG_DEBUG, "proxy: client %llu %s (%s)", (unsigned long long)c->no, how, c->src);
}

void pxcli_add(struct proxy *p, int fd, const char *how)
{
	client_add(p, fd, how, NULL);
}

void pxcli_accept_all(struct proxy *p)
{
	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof sa;
		int fd = accept4(p->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				mtr_log(LOG_WARN, "proxy: accept: %s", strerror(errno));
			return;
		}
		client_add(p, fd, "connected", sa.sin_family == AF_INET ? &sa : NULL);
	}
}

/* ---- logins and timers --------------------------------------------------------- */

void pxcli_auth_done(struct proxy *p)
{
	struct pxauth_job *j = pxauth_take_done(p->auth);
	p->now_ms = proxy_mono_ms();
	while (j) {
		struct pxauth_job *next = j->next;
		struct client *c = j->owner;
		if (c && !c->dead) {
			c->job = NULL;
			if (j->ok) {
				p->st.logins++;
				mtr_log(LOG_DEBUG, "proxy: client %s logged in as '%s'", c->src, c->user);
				if (welcome(p, c) != 0) {
					bye(c, MTR_ENOMEM, "out of memory");
					pxcli_close(p, c, "out of memory");
				}
			} else {
				login_failed(p, c, 0);
			}
		}
		pxauth_job_free(j);
		j = next;
	}
	/* the verifier has room: the held AUTHs try again */
	for (struct client *c = p->clients; c; c = c->next)
		if (c->auth_hold) {
			c->auth_hold = 0;
			pxcli_mark_dirty(p, c);
		}
}

/* When c must have done something (ms), or 0. */
static uint64_t cli_deadline(const struct proxy *p, const struct client *c)
{
	if (c->auth == CLI_AUTH_FAILED)
		return c->fail_ms;
	if (!c->hello)
		return p->cfg.handshake_ms ? c->start_ms + p->cfg.handshake_ms : 0;
	if (p->cfg.idle_ms == 0)
		return 0;
	if (c->npend)
		return p->now_ms + MIN(p->cfg.idle_ms, 1000u); /* look again: busy is not idle */
	return c->last_ms + p->cfg.idle_ms;
}

/* c's deadline has come: refuse it with the BYE of its state. */
static void cli_expire(struct proxy *p, struct client *c)
{
	char why[160];
	if (c->auth == CLI_AUTH_FAILED && c->user[0]) {
		snprintf(why, sizeof why, "authentication failed for user %s", c->user);
		refused(p, c, PROXY_DROP_client_auth_failed, "%s", why);
		bye(c, MTR_EAUTH, why);
	} else if (c->auth == CLI_AUTH_FAILED) {
		snprintf(why, sizeof why, "this proxy requires a user name: use mtr://USER@host:port");
		refused(p, c, PROXY_DROP_client_auth_missing, "no user name");
		bye(c, MTR_EAUTH, why);
	} else if (!c->hello) {
		snprintf(why, sizeof why, "no %s within %u ms (proxy.handshake_timeout)",
			 c->auth == CLI_AUTH_VERIFYING ? "verified login" : c->auth == CLI_AUTH_WAIT ? "AUTH" : "HELLO",
			 p->cfg.handshake_ms);
		refused(p, c, PROXY_DROP_client_handshake_timeout, "%s", why);
		bye(c, MTR_ETIMEDOUT, why);
	} else {
		snprintf(why, sizeof why, "idle for %u ms (proxy.idle_timeout)", p->cfg.idle_ms);
		refused(p, c, PROXY_DROP_client_idle_timeout, "%s", why);
		bye(c, MTR_ETIMEDOUT, why);
	}
	pxcli_close(p, c, why);
}

void pxcli_timers(struct proxy *p)
{
	if (p->next_cli_ms == 0 || p->now_ms < p->next_cli_ms)
		return;
	uint64_t next = 0;
	for (struct client *c = p->clients, *n; c; c = n) {
		n = c->next;
		uint64_t d = cli_deadline(p, c);
		if (d == 0)
			continue;
		if (d <= p->now_ms) {
			cli_expire(p, c);
			continue;
		}
		if (next == 0 || d < next)
			next = d;
	}
	p->next_cli_ms = next;
}

int pxcli_next_timeout(const struct proxy *p)
{
	if (p->next_cli_ms == 0)
		return -1;
	uint64_t now = proxy_mono_ms();
	return p->next_cli_ms <= now ? 0 : (int)MIN(p->next_cli_ms - now, 60000u);
}
