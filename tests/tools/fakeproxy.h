/*
 * fakeproxy.h - a fake Metronome proxy for client tests (header-only).
 *
 * One thread plays two proxies (two listening sockets on loopback) speaking
 * the client protocol (cproto.h).  It runs every QUERY on one SQLite
 * database, as a replica would (statements in order, BEGIN/COMMIT run but
 * not reported, parameters numbered across statements as doc/proxy.md says,
 * a failing request rolled back), and answers with result bytes (result.h).
 * It is not the proxy: no items, no cluster, no determinism checks.
 *
 * Markers in the SQL make it misbehave: a comment hang (slash-star "hang"
 * star-slash) inside the statement is never answered, unless the client
 * sends CANCEL for it (then it is answered as the proxy answers a
 * cancelled read: SQLITE_INTERRUPT "read cancelled"; F.cancels counts
 * every CANCEL); busy is answered
 * MTR_EBUSY while busy_left > 0; refuse is refused with a position.
 * die_on_query[i] > 0 makes proxy i drop the connection on a QUERY without
 * answering it; kill_after[i] > 0 makes proxy i close its listener and every
 * connection after answering that many queries (a dead proxy); hold[i] set
 * makes proxy i answer nothing while it keeps the connection (a proxy whose
 * answers wait behind one that never comes).  The fake
 * records what it saw (HELLOs, request ids, client ids) under F.mu.
 *
 * The includer defines FAKE_CHECK(cond) (an assertion) before including
 * this file; used by tests/unit/test_client.c and tests/tools/mtrfakeproxy.c.
 */
#ifndef MTR_FAKEPROXY_H
#define MTR_FAKEPROXY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sqlite3.h>

#include "metronome.h"
#include "cproto.h"
#include "result.h"
#include "util.h"

#define FAKE_MAXCONN 16

struct fake_conn {
	int fd;
	int proxy; /* 0 or 1: which listener accepted it */
	uint64_t hung; /* request id of the last hung query, 0: none */
	uint8_t *in;
	size_t len, cap;
};

struct fake {
	int lfd[2];
	int port[2];
	int stop[2]; /* pipe: write a byte to stop the thread */
	pthread_t th;
	sqlite3 *db;
	uint64_t instance;
	struct fake_conn conns[FAKE_MAXCONN];
	pthread_mutex_t mu; /* guards everything below */
	int die_on_query[2];
	int kill_after[2];
	int hold[2];
	int busy_left;
	int hellos[2];
	int queries[2];
	uint64_t client_id[2];
	uint8_t consistency[2];
	uint64_t last_request[2];
	uint64_t last_min_instance;
	int cancels;
	uint64_t last_cancel;
};

static struct fake F;

/* A growable byte buffer for rows. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static void bytes_put(struct bytes *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap - b->len < n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		FAKE_CHECK((b->p) != NULL);
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Append the current row of s in the row format of doc/apply.md. */
static void row_put(struct bytes *b, sqlite3_stmt *s)
{
	int n = sqlite3_column_count(s);
	uint8_t h[9];
	st16(h, (uint16_t)n);
	bytes_put(b, h, 2);
	for (int i = 0; i < n; i++) {
		switch (sqlite3_column_type(s, i)) {
		case SQLITE_INTEGER:
			h[0] = WIRE_V_INT;
			st64(h + 1, (uint64_t)sqlite3_column_int64(s, i));
			bytes_put(b, h, 9);
			break;
		case SQLITE_FLOAT: {
			double d = sqlite3_column_double(s, i);
			h[0] = WIRE_V_REAL;
			memcpy(h + 1, &d, 8);
			bytes_put(b, h, 9);
			break;
		}
		case SQLITE_TEXT:
		case SQLITE_BLOB: {
			int text = sqlite3_column_type(s, i) == SQLITE_TEXT;
			const void *p = text ? (const void *)sqlite3_column_text(s, i) : sqlite3_column_blob(s, i);
			uint32_t len = (uint32_t)sqlite3_column_bytes(s, i);
			h[0] = text ? WIRE_V_TEXT : WIRE_V_BLOB;
			st32(h + 1, len);
			bytes_put(b, h, 5);
			if (len)
				bytes_put(b, p, len);
			break;
		}
		default:
			h[0] = WIRE_V_NULL;
			bytes_put(b, h, 1);
		}
	}
}

static void bind_one(sqlite3_stmt *s, int idx, const struct wire_value *v)
{
	switch (v->type) {
	case WIRE_V_INT:
		sqlite3_bind_int64(s, idx, v->u.i);
		break;
	case WIRE_V_REAL:
		sqlite3_bind_double(s, idx, v->u.r);
		break;
	case WIRE_V_TEXT:
		sqlite3_bind_text(s, idx, v->u.b.p, (int)v->u.b.n, SQLITE_TRANSIENT);
		break;
	case WIRE_V_BLOB:
		sqlite3_bind_blob(s, idx, v->u.b.n ? v->u.b.p : "", (int)v->u.b.n, SQLITE_TRANSIENT);
		break;
	default:
		sqlite3_bind_null(s, idx);
	}
}

#define FAKE_MAXSTMT 64

/*
 * Run a request's SQL on the fake's database like a replica runs an item:
 * statements in order, BEGIN/COMMIT executed but not reported, parameters
 * numbered across statements (doc/proxy.md), a failure rolls the whole
 * request back.  Appends the result bytes to out.
 */
static void fake_run(const char *sql, uint32_t sql_len, const struct cproto_bind *binds, uint16_t nbinds,
		     struct bytes *out)
{
	struct apply_stmt_result res[FAKE_MAXSTMT];
	struct bytes rows[FAKE_MAXSTMT];
	const char **names[FAKE_MAXSTMT];
	sqlite3_stmt *stmts[FAKE_MAXSTMT];
	unsigned n = 0;
	int code = 0;
	uint32_t failed = 0;
	int offset = 0;
	const char *p = sql, *end = sql + sql_len;
	memset(rows, 0, sizeof rows);
	sqlite3_exec(F.db, "SAVEPOINT item", NULL, NULL, NULL);
	while (p < end && n < FAKE_MAXSTMT) {
		sqlite3_stmt *s = NULL;
		const char *tail;
		int rc = sqlite3_prepare_v2(F.db, p, (int)(end - p), &s, &tail);
		if (rc == SQLITE_OK && !s)
			break;
		p = tail;
		const char *txt = s ? sqlite3_sql(s) : "";
		if (s && (strncasecmp(txt, "BEGIN", 5) == 0 || strncasecmp(txt, "COMMIT", 6) == 0)) {
			sqlite3_finalize(s);
			continue;
		}
		memset(&res[n], 0, sizeof res[n]);
		stmts[n] = s;
		names[n] = NULL;
		if (rc == SQLITE_OK) {
			int np = sqlite3_bind_parameter_count(s);
			for (uint16_t k = 0; k < nbinds; k++) {
				int idx = binds[k].index > 0 ? binds[k].index - offset
							     : sqlite3_bind_parameter_index(s, binds[k].name);
				if (idx >= 1 && idx <= np)
					bind_one(s, idx, &binds[k].v);
			}
			offset += np;
			while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
				row_put(&rows[n], s);
				res[n].nrows++;
			}
			if (rc == SQLITE_DONE)
				rc = SQLITE_OK;
		}
		res[n].code = rc == SQLITE_OK ? 0 : sqlite3_extended_errcode(F.db);
		res[n].errmsg = rc == SQLITE_OK ? NULL : sqlite3_errmsg(F.db);
		res[n].changes = sqlite3_changes64(F.db);
		res[n].last_rowid = sqlite3_last_insert_rowid(F.db);
		if (s) {
			res[n].ncols = (uint32_t)sqlite3_column_count(s);
			names[n] = calloc(res[n].ncols + 1, sizeof(char *));
			for (uint32_t c = 0; c < res[n].ncols; c++)
				names[n][c] = sqlite3_column_name(s, (int)c);
			res[n].names = names[n];
		}
		res[n].rows = rows[n].p;
		res[n].rows_len = rows[n].len;
		n++;
		if (rc != SQLITE_OK) {
			code = res[n - 1].code;
			failed = n - 1;
			break;
		}
	}
	if (code)
		sqlite3_exec(F.db, "ROLLBACK TO item", NULL, NULL, NULL);
	sqlite3_exec(F.db, "RELEASE item", NULL, NULL, NULL);
	struct apply_result r = {.code = code, .failed = failed, .nstmt = n, .stmts = res};
	size_t need = result_size(&r);
	uint8_t *buf = malloc(need);
	FAKE_CHECK((buf) != NULL);
	FAKE_CHECK((result_encode(&r, buf, need)) == (long)need);
	bytes_put(out, buf, need);
	free(buf);
	for (unsigned i = 0; i < n; i++) {
		free(rows[i].p);
		free(names[i]);
		sqlite3_finalize(stmts[i]);
	}
}

static void fake_send(struct fake_conn *c, struct cproto_buf *b)
{
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = send(c->fd, b->p + off, b->len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	b->len = 0;
}

static void fake_drop(struct fake_conn *c)
{
	close(c->fd);
	c->fd = -1;
	free(c->in);
	c->in = NULL;
	c->len = c->cap = 0;
}

/* Proxy i dies: its listener and every connection it accepted close. */
static void fake_kill(int i)
{
	if (F.lfd[i] >= 0)
		close(F.lfd[i]);
	F.lfd[i] = -1;
	for (int k = 0; k < FAKE_MAXCONN; k++)
		if (F.conns[k].fd >= 0 && F.conns[k].proxy == i)
			fake_drop(&F.conns[k]);
}

/* Handle one frame; returns 0, or -1 when the connection was dropped. */
static int fake_frame(struct fake_conn *c, const struct cproto_frame *f)
{
	struct cproto_buf b = {0};
	if (f->type == CPROTO_T_HELLO) {
		struct cproto_hello h;
		FAKE_CHECK((cproto_get_hello(f, &h)) == 0);
		pthread_mutex_lock(&F.mu);
		F.hellos[c->proxy]++;
		F.client_id[c->proxy] = h.client_id;
		F.consistency[c->proxy] = h.consistency;
		pthread_mutex_unlock(&F.mu);
		struct cproto_welcome w = {.version = CPROTO_VERSION, .stream = 77 + (uint64_t)c->proxy,
					   .max_frame = CPROTO_MAX_FRAME};
		FAKE_CHECK((cproto_put_welcome(&b, &w)) == 0);
		fake_send(c, &b);
	} else if (f->type == CPROTO_T_CANCEL) {
		uint64_t req;
		FAKE_CHECK((cproto_get_cancel(f, &req)) == 0);
		pthread_mutex_lock(&F.mu);
		F.cancels++;
		F.last_cancel = req;
		pthread_mutex_unlock(&F.mu);
		if (req == c->hung) {
			uint8_t res[64];
			long n = result_encode_error(RESULT_SQLITE_INTERRUPT, "read cancelled", res, sizeof res);
			FAKE_CHECK(n > 0);
			struct cproto_answer a = {.request = req, .result = res, .result_len = (uint32_t)n};
			FAKE_CHECK((cproto_put_answer(&b, &a)) == 0);
			fake_send(c, &b);
			c->hung = 0;
		}
	} else if (f->type == CPROTO_T_QUERY) {
		struct cproto_query q;
		FAKE_CHECK((cproto_get_query(f, &q)) == 0);
		pthread_mutex_lock(&F.mu);
		F.queries[c->proxy]++;
		F.last_request[c->proxy] = q.request;
		F.last_min_instance = q.min_instance;
		int die = F.die_on_query[c->proxy] > 0, hold = F.hold[c->proxy];
		if (die)
			F.die_on_query[c->proxy]--;
		int busy = F.busy_left > 0 && memmem(q.sql, q.sql_len, "/*busy*/", 8);
		if (busy)
			F.busy_left--;
		pthread_mutex_unlock(&F.mu);
		if (die) {
			fake_drop(c);
			return -1;
		}
		if (hold || memmem(q.sql, q.sql_len, "/*hang*/", 8)) {
			if (!hold)
				c->hung = q.request;
			return 0;
		}
		struct cproto_answer a = {.request = q.request};
		struct bytes r = {0};
		if (busy) {
			a.status = MTR_EBUSY;
			a.msg = "proxy busy";
			a.msg_len = 10;
		} else if (memmem(q.sql, q.sql_len, "/*refuse*/", 10)) {
			a.status = MTR_EREFUSED;
			a.line = 1;
			a.col = 8;
			a.msg = "refused here at line 1, column 8";
			a.msg_len = (uint32_t)strlen(a.msg);
		} else {
			struct cproto_bind *binds = NULL;
			FAKE_CHECK((cproto_query_binds(&q, &binds)) == 0);
			fake_run(q.sql, q.sql_len, binds, q.nbinds, &r);
			free(binds);
			a.instance = ++F.instance;
			a.result = r.p;
			a.result_len = (uint32_t)r.len;
		}
		FAKE_CHECK((cproto_put_answer(&b, &a)) == 0);
		free(r.p);
		fake_send(c, &b);
		pthread_mutex_lock(&F.mu);
		int kill = F.kill_after[c->proxy] > 0 && F.queries[c->proxy] >= F.kill_after[c->proxy];
		pthread_mutex_unlock(&F.mu);
		if (kill) {
			cproto_buf_free(&b);
			fake_kill(c->proxy);
			return -1;
		}
	}
	cproto_buf_free(&b);
	return 0;
}

static void fake_read(struct fake_conn *c)
{
	if (c->cap - c->len < 65536) {
		c->cap = c->cap ? c->cap * 2 : 131072;
		c->in = realloc(c->in, c->cap);
	}
	ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
	if (r <= 0) {
		fake_drop(c);
		return;
	}
	c->len += (size_t)r;
	size_t off = 0;
	for (;;) {
		struct cproto_frame f;
		long used = cproto_frame_next(c->in + off, c->len - off, CPROTO_MAX_FRAME, &f);
		if (used <= 0) {
			if (used < 0) {
				fake_drop(c);
				return;
			}
			break;
		}
		off += (size_t)used;
		if (fake_frame(c, &f) != 0)
			return;
	}
	memmove(c->in, c->in + off, c->len - off);
	c->len -= off;
}

static void *fake_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pfd[3 + FAKE_MAXCONN];
		int map[3 + FAKE_MAXCONN];
		int n = 0;
		pfd[n++] = (struct pollfd){.fd = F.stop[0], .events = POLLIN};
		for (int i = 0; i < 2; i++)
			pfd[n++] = (struct pollfd){.fd = F.lfd[i], .events = POLLIN};
		for (int i = 0; i < FAKE_MAXCONN; i++)
			if (F.conns[i].fd >= 0) {
				map[n] = i;
				pfd[n++] = (struct pollfd){.fd = F.conns[i].fd, .events = POLLIN};
			}
		if (poll(pfd, (nfds_t)n, -1) < 0)
			continue;
		if (pfd[0].revents)
			break;
		for (int i = 0; i < 2; i++)
			if (pfd[1 + i].revents & POLLIN) {
				int fd = accept(F.lfd[i], NULL, NULL);
				if (fd < 0)
					continue;
				int k = 0;
				while (k < FAKE_MAXCONN && F.conns[k].fd >= 0)
					k++;
				if (k == FAKE_MAXCONN) {
					close(fd);
					continue;
				}
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				F.conns[k] = (struct fake_conn){.fd = fd, .proxy = i};
			}
		for (int j = 3; j < n; j++)
			if (pfd[j].revents && F.conns[map[j]].fd == pfd[j].fd)
				fake_read(&F.conns[map[j]]);
	}
	return NULL;
}

static int fake_listen(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) != 0)
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

#endif
