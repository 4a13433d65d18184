/*
 * sltproxy.c - a stand-in proxy for testing mtrslt's Metronome backend
 * before the daemons exist: it speaks the client protocol (cproto.h) on
 * 127.0.0.1 and runs every QUERY on one in-memory SQLite database, the way
 * a replica runs an item (its statements in order inside a savepoint, all
 * undone when one fails), answering with result bytes (result.h).  So
 * `mtrslt --uri` against it exercises libmetronome, its SQL front end and
 * backend_mtr.c end to end; the cluster itself is not involved.
 *
 *   sltproxy [PORT]        (0 or none: any free port)
 *
 * Prints "port N" on stdout once listening, then serves until SIGTERM or
 * SIGINT.  Bound parameters are not supported (mtrslt binds none).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sqlite3.h>

#include "apply.h"
#include "cproto.h"
#include "metronome.h"
#include "result.h"
#include "util.h"

#define MAXCONN 16
#define MAXSTMT 64

struct conn {
	int fd;
	uint8_t *in;
	size_t len, cap;
};

struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static volatile sig_atomic_t stop;
static sqlite3 *db;
static uint64_t instance;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int bytes_put(struct bytes *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap - b->len < n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q)
			return MTR_ENOMEM;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* Append the current row of s in the row format of doc/apply.md. */
static int row_put(struct bytes *b, sqlite3_stmt *s)
{
	int n = sqlite3_column_count(s), rc = 0;
	uint8_t h[9];
	st16(h, (uint16_t)n);
	rc |= bytes_put(b, h, 2);
	for (int i = 0; i < n; i++) {
		int t = sqlite3_column_type(s, i);
		if (t == SQLITE_INTEGER) {
			h[0] = WIRE_V_INT;
			st64(h + 1, (uint64_t)sqlite3_column_int64(s, i));
			rc |= bytes_put(b, h, 9);
		} else if (t == SQLITE_FLOAT) {
			double d = sqlite3_column_double(s, i);
			h[0] = WIRE_V_REAL;
			memcpy(h + 1, &d, 8);
			rc |= bytes_put(b, h, 9);
		} else if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
			const void *p = t == SQLITE_TEXT ? (const void *)sqlite3_column_text(s, i)
							 : sqlite3_column_blob(s, i);
			uint32_t len = (uint32_t)sqlite3_column_bytes(s, i);
			h[0] = t == SQLITE_TEXT ? WIRE_V_TEXT : WIRE_V_BLOB;
			st32(h + 1, len);
			rc |= bytes_put(b, h, 5);
			if (len)
				rc |= bytes_put(b, p, len);
		} else {
			h[0] = WIRE_V_NULL;
			rc |= bytes_put(b, h, 1);
		}
	}
	return rc ? MTR_ENOMEM : 0;
}

/* Run the SQL of one request like a replica runs an item; result bytes to out. */
static int run_sql(const char *sql, uint32_t sql_len, struct bytes *out)
{
	struct apply_stmt_result res[MAXSTMT];
	struct bytes rows[MAXSTMT];
	const char **names[MAXSTMT];
	sqlite3_stmt *stmts[MAXSTMT];
	char *msgs[MAXSTMT];
	unsigned n = 0;
	int code = 0, rc = 0;
	uint32_t failed = 0;
	const char *p = sql, *end = sql + sql_len;
	memset(rows, 0, sizeof rows);
	sqlite3_exec(db, "SAVEPOINT item", NULL, NULL, NULL);
	while (p < end && n < MAXSTMT) {
		sqlite3_stmt *s = NULL;
		const char *tail = end;
		int src = sqlite3_prepare_v2(db, p, (int)(end - p), &s, &tail);
		if (src == SQLITE_OK && !s)
			break;
		p = tail;
		memset(&res[n], 0, sizeof res[n]);
		stmts[n] = s;
		names[n] = NULL;
		msgs[n] = NULL;
		if (src == SQLITE_OK) {
			while ((src = sqlite3_step(s)) == SQLITE_ROW) {
				if (row_put(&rows[n], s) != 0)
					rc = MTR_ENOMEM;
				res[n].nrows++;
			}
			if (src == SQLITE_DONE)
				src = SQLITE_OK;
		}
		if (src != SQLITE_OK) {
			res[n].code = sqlite3_extended_errcode(db);
			msgs[n] = strdup(sqlite3_errmsg(db));
			res[n].errmsg = msgs[n] ? msgs[n] : "error";
		}
		res[n].changes = sqlite3_changes64(db);
		res[n].last_rowid = sqlite3_last_insert_rowid(db);
		if (s) {
			res[n].ncols = (uint32_t)sqlite3_column_count(s);
			names[n] = calloc(res[n].ncols + 1, sizeof(char *));
			for (uint32_t c = 0; names[n] && c < res[n].ncols; c++)
				names[n][c] = sqlite3_column_name(s, (int)c);
			res[n].names = names[n];
		}
		res[n].rows = rows[n].p;
		res[n].rows_len = rows[n].len;
		n++;
		if (src != SQLITE_OK) {
			code = res[n - 1].code;
			failed = n - 1;
			break;
		}
	}
	if (code)
		sqlite3_exec(db, "ROLLBACK TO item", NULL, NULL, NULL);
	sqlite3_exec(db, "RELEASE item", NULL, NULL, NULL);
	apply_drop_temp(db); /* a session's TEMP definitions live for one request */
	struct apply_result r = { .code = code, .failed = failed, .nstmt = n, .stmts = res };
	size_t need = result_size(&r);
	uint8_t *buf = malloc(need);
	if (!buf || result_encode(&r, buf, need) != (long)need || bytes_put(out, buf, need) != 0)
		rc = MTR_ENOMEM;
	free(buf);
	for (unsigned i = 0; i < n; i++) {
		free(rows[i].p);
		free(names[i]);
		free(msgs[i]);
		sqlite3_finalize(stmts[i]);
	}
	return rc;
}

static void conn_drop(struct conn *c)
{
	close(c->fd);
	free(c->in);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

static int send_all(struct conn *c, struct cproto_buf *b)
{
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = send(c->fd, b->p + off, b->len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	b->len = 0;
	return 0;
}

/* One frame; -1 drops the connection. */
static int on_frame(struct conn *c, const struct cproto_frame *f)
{
	struct cproto_buf b = { 0 };
	int rc = 0;
	if (f->type == CPROTO_T_HELLO) {
		struct cproto_hello h;
		struct cproto_welcome w = { .version = CPROTO_VERSION, .stream = 1, .max_frame = CPROTO_MAX_FRAME };
		if (cproto_get_hello(f, &h) != 0 || cproto_put_welcome(&b, &w) != 0 || send_all(c, &b) != 0)
			rc = -1;
	} else if (f->type == CPROTO_T_QUERY) {
		struct cproto_query q;
		struct bytes r = { 0 };
		if (cproto_get_query(f, &q) != 0) {
			rc = -1;
		} else {
			struct cproto_answer a = { .request = q.request };
			if (q.nbinds) {
				a.status = MTR_ENOTSUP;
				a.msg = "sltproxy: parameters are not supported";
				a.msg_len = (uint32_t)strlen(a.msg);
			} else if (run_sql(q.sql, q.sql_len, &r) != 0) {
				a.status = MTR_ENOMEM;
				a.msg = "sltproxy: out of memory";
				a.msg_len = (uint32_t)strlen(a.msg);
			} else {
				a.instance = ++instance;
				a.result = r.p;
				a.result_len = (uint32_t)r.len;
			}
			if (cproto_put_answer(&b, &a) != 0 || send_all(c, &b) != 0)
				rc = -1;
		}
		free(r.p);
	} else if (f->type == CPROTO_T_PING) {
		uint64_t token;
		if (cproto_get_ping(f, &token) != 0 || cproto_put_ping(&b, CPROTO_T_PONG, token) != 0 ||
		    send_all(c, &b) != 0)
			rc = -1;
	} else if (f->type == CPROTO_T_BYE) {
		rc = -1;
	}
	cproto_buf_free(&b);
	return rc;
}

static void on_readable(struct conn *c)
{
	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 131072;
		uint8_t *p = realloc(c->in, cap);
		if (!p) {
			conn_drop(c);
			return;
		}
		c->in = p;
		c->cap = cap;
	}
	ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
	if (r < 0 && errno == EINTR)
		return;
	if (r <= 0) {
		conn_drop(c);
		return;
	}
	c->len += (size_t)r;
	size_t off = 0;
	for (;;) {
		struct cproto_frame f;
		long used = cproto_frame_next(c->in + off, c->len - off, CPROTO_MAX_FRAME, &f);
		if (used < 0) {
			conn_drop(c);
			return;
		}
		if (used == 0)
			break;
		off += (size_t)used;
		if (on_frame(c, &f) != 0) {
			conn_drop(c);
			return;
		}
	}
	memmove(c->in, c->in + off, c->len - off);
	c->len -= off;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 0;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
		fprintf(stderr, "sltproxy: cannot open SQLite\n");
		return 1;
	}
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
		fprintf(stderr, "sltproxy: cannot listen on port %d: %s\n", port, strerror(errno));
		return 1;
	}
	printf("port %d\n", ntohs(a.sin_port));
	fflush(stdout);
	struct conn conns[MAXCONN];
	for (int i = 0; i < MAXCONN; i++)
		conns[i] = (struct conn){ .fd = -1 };
	while (!stop) {
		struct pollfd pfd[1 + MAXCONN];
		int map[1 + MAXCONN];
		int n = 0;
		pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < MAXCONN; i++)
			if (conns[i].fd >= 0) {
				map[n] = i;
				pfd[n++] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
			}
		if (poll(pfd, (nfds_t)n, 1000) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			int fd = accept(lfd, NULL, NULL);
			int k = 0;
			while (fd >= 0 && k < MAXCONN && conns[k].fd >= 0)
				k++;
			if (fd >= 0 && k < MAXCONN)
				conns[k].fd = fd;
			else if (fd >= 0)
				close(fd);
		}
		for (int j = 1; j < n; j++)
			if (pfd[j].revents)
				on_readable(&conns[map[j]]);
	}
	for (int i = 0; i < MAXCONN; i++)
		if (conns[i].fd >= 0)
			conn_drop(&conns[i]);
	close(lfd);
	sqlite3_close(db);
	return 0;
}
