/*
 * client.c - libmetronome, the connection half: URI, handle, the TCP
 * connection to a proxy, requests in flight, failover, error state.
 *
 * A handle holds one non-blocking TCP connection.  Requests are QUERY frames
 * (cproto.h) kept, whole, in a FIFO of unanswered requests until their
 * ANSWER arrives (matched by request id: answers of requests given up after
 * a timeout are recognised and dropped).  Everything that waits goes through
 * client_pump(), which writes what is queued, reads frames, completes
 * requests, expires deadlines and, when the connection dies or a request
 * timed out on it, connects to the next address and queues every
 * unanswered frame again (same request ids: see "Failover" in metronome.h
 * and doc/client.md for what that does and does not guarantee).  Nothing
 * spins: the pump sleeps in poll().
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "client_int.h"
#include "log.h"
#include "util.h"

/* ---- error state ---- */

int client_err(mtr *db, int code, const char *fmt, ...)
{
	va_list ap;
	db->errcode = code;
	db->ext = 0;
	va_start(ap, fmt);
	vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

int client_err_at(mtr *db, int code, uint32_t line, uint32_t col, const char *msg, size_t len)
{
	if (!line)
		return client_err(db, code, "%.*s", (int)len, msg);
	/* The front end's messages say "... at line L, column C[: hint]":
	 * move the position to the front instead of saying it twice. */
	char at[64];
	int al = snprintf(at, sizeof at, " at line %u, column %u", line, col);
	const char *hit = memmem(msg, len, at, (size_t)al);
	/* lines of TEMP definitions sent in front of the caller's text */
	if (line > db->line_shift)
		line -= db->line_shift;
	if (!hit)
		return client_err(db, code, "line %u, column %u: %.*s", line, col, (int)len, msg);
	size_t before = (size_t)(hit - msg), after = len - before - (size_t)al;
	return client_err(db, code, "line %u, column %u: %.*s%.*s", line, col, (int)before, msg, (int)after,
			  hit + al);
}

void client_ok(mtr *db)
{
	db->errcode = 0;
	db->ext = 0;
	db->errmsg[0] = 0;
}

MTR_API int mtr_errcode(mtr *db)
{
	return db ? db->errcode : MTR_ENOMEM;
}

MTR_API int mtr_extended_errcode(mtr *db)
{
	return db && db->errcode == MTR_ESQL ? db->ext : 0;
}

MTR_API const char *mtr_errmsg(mtr *db)
{
	if (!db)
		return mtr_strerror(MTR_ENOMEM);
	if (db->errcode == 0)
		return "not an error";
	return db->errmsg[0] ? db->errmsg : mtr_strerror(db->errcode);
}

MTR_API void mtr_free(void *p)
{
	free(p);
}

MTR_API int64_t mtr_changes(mtr *db)
{
	return db->changes;
}

MTR_API int64_t mtr_last_insert_rowid(mtr *db)
{
	return db->last_rowid;
}

MTR_API uint64_t mtr_last_instance(mtr *db)
{
	return db->last_instance;
}

MTR_API int mtr_set_min_instance(mtr *db, uint64_t instance)
{
	if (!db)
		return MTR_EINVAL;
	if (instance > db->last_instance)
		db->last_instance = instance;
	return 0;
}

MTR_API int mtr_busy_timeout(mtr *db, int ms)
{
	db->busy_ms = ms > 0 ? ms : 0;
	return 0;
}

MTR_API int mtr_set_timeout(mtr *db, int ms)
{
	db->timeout_ms = ms > 0 ? ms : 0;
	return 0;
}

MTR_API int mtr_pending(mtr *db)
{
	return db->npending_async;
}

/* ---- URI ---- */


/* Parse a non-negative decimal of at most 9 digits (milliseconds). */
static int parse_ms(const char *s, size_t n, int *out)
{
	if (n == 0 || n > 9)
		return -1;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* One "host[:port]" (or "[v6]:port") of n bytes. */
static int uri_addr(mtr *db, const char *s, size_t n, struct client_addr *a)
{
	const char *host = s, *port = NULL;
	size_t hlen = n, plen = 0;
	if (n && s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		if (!rb)
			return client_err(db, MTR_EINVAL, "bad address '%.*s' in URI: missing ']'", (int)n, s);
		host = s + 1;
		hlen = (size_t)(rb - s) - 1;
		if (rb + 1 < s + n) {
			if (rb[1] != ':')
				return client_err(db, MTR_EINVAL, "bad address '%.*s' in URI", (int)n, s);
			port = rb + 2;
			plen = (size_t)(s + n - port);
		}
	} else {
		const char *colon = memchr(s, ':', n);
		if (colon) {
			hlen = (size_t)(colon - s);
			port = colon + 1;
			plen = (size_t)(s + n - port);
		}
	}
	if (hlen == 0 || hlen >= sizeof a->host)
		return client_err(db, MTR_EINVAL, "bad address '%.*s' in URI: empty or too long host", (int)n, s);
	memcpy(a->host, host, hlen);
	a->host[hlen] = 0;
	int p = CPROTO_DEFAULT_PORT;
	if (port && (parse_ms(port, plen, &p) != 0 || p < 1 || p > 65535))
		return client_err(db, MTR_EINVAL, "bad port in '%.*s' (1..65535)", (int)n, s);
	snprintf(a->port, sizeof a->port, "%d", p);
	return 0;
}

int client_uri_option(mtr *db, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	if (!eq)
		return client_err(db, MTR_EINVAL, "URI option '%.*s' has no value", (int)n, s);
	size_t klen = (size_t)(eq - s), vlen = n - klen - 1;
	const char *v = eq + 1;
#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(s, k, klen) == 0)
#define VAL_IS(k) (vlen == sizeof(k) - 1 && memcmp(v, k, vlen) == 0)
	if (KEY_IS("consistency")) {
		if (VAL_IS("none"))
			db->consistency = CPROTO_CONS_NONE;
		else if (VAL_IS("session"))
			db->consistency = CPROTO_CONS_SESSION;
		else if (VAL_IS("linearizable"))
			db->consistency = CPROTO_CONS_LINEARIZABLE;
		else
			return client_err(db, MTR_EINVAL, "consistency must be none, session or linearizable, not '%.*s'",
					  (int)vlen, v);
	} else if (KEY_IS("min_instance")) {
		uint64_t m = 0;
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9' || m > (UINT64_MAX - 9) / 10)
				return client_err(db, MTR_EINVAL, "min_instance must be an instance number, not '%.*s'",
						  (int)vlen, v);
			m = m * 10 + (uint64_t)(v[i] - '0');
		}
		if (vlen == 0)
			return client_err(db, MTR_EINVAL, "min_instance must be an instance number, not ''");
		mtr_set_min_instance(db, m);
	} else if (KEY_IS("timeout")) {
		if (parse_ms(v, vlen, &db->timeout_ms) != 0)
			return client_err(db, MTR_EINVAL, "timeout must be milliseconds, not '%.*s'", (int)vlen, v);
	} else if (KEY_IS("busy")) {
		if (parse_ms(v, vlen, &db->busy_ms) != 0)
			return client_err(db, MTR_EINVAL, "busy must be milliseconds, not '%.*s'", (int)vlen, v);
	} else if (KEY_IS("key")) {
		if (vlen != 32)
			return client_err(db, MTR_EINVAL, "key must be 32 hex digits");
		for (int i = 0; i < 16; i++) {
			int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return client_err(db, MTR_EINVAL, "key must be 32 hex digits");
			db->key.k[i] = (uint8_t)(hi << 4 | lo);
		}
		db->key.set = 1;
	} else {
		int rc = client_tls_option(db, s, klen, v, vlen);
		if (rc <= 0)
			return rc;
		return client_err(db, MTR_EINVAL, "unknown URI option '%.*s'", (int)klen, s);
	}
#undef KEY_IS
#undef VAL_IS
	return 0;
}

/* Percent-decode n bytes at s into a new string (*out, malloc'ed); what
 * names the part in messages.  0 or an error recorded on db. */
static int uri_decode(mtr *db, const char *s, size_t n, const char *what, char **out)
{
	char *d = malloc(n + 1);
	if (!d)
		return client_err(db, MTR_ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			d[k++] = s[i];
			continue;
		}
		int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
		int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(d);
			return client_err(db, MTR_EINVAL,
					  "bad %%-escape in the URI's %s: write %%XX with two hex digits (not %%00)", what);
		}
		d[k++] = (char)(hi << 4 | lo);
		i += 2;
	}
	d[k] = 0;
	*out = d;
	return 0;
}

/*
 * The URI's "USER[:PASSWORD]@" (n bytes before the '@'): db->user, and
 * db->password from the URI or else $MTR_PASSWORD.  Without either the
 * open fails: only mtrsql asks for a password (doc/client.md).
 */
static int uri_userinfo(mtr *db, const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t ul = colon ? (size_t)(colon - s) : n;
	int rc = uri_decode(db, s, ul, "user name", &db->user);
	if (rc)
		return rc;
	if (!cproto_user_valid(db->user, strlen(db->user)))
		return client_err(db, MTR_EINVAL,
				  "bad user name in the URI: 1 to %d bytes, no ':' and no control character",
				  CPROTO_MAX_USER);
	if (colon) {
		rc = uri_decode(db, colon + 1, n - ul - 1, "password", &db->password);
		if (rc)
			return rc;
	} else if (getenv("MTR_PASSWORD")) {
		db->password = strdup(getenv("MTR_PASSWORD"));
		if (!db->password)
			return client_err(db, MTR_ENOMEM, "out of memory");
	} else {
		return client_err(db, MTR_EAUTH,
				  "no password for user %s: put it in the URI (mtr://%s:PASSWORD@host:port) or in "
				  "the MTR_PASSWORD environment variable",
				  db->user, db->user);
	}
	if (strlen(db->password) > CPROTO_MAX_PASSWORD)
		return client_err(db, MTR_EINVAL, "the password is longer than %d bytes", CPROTO_MAX_PASSWORD);
	return 0;
}

/* uri with the password of its userinfo replaced by "***" (for messages). */
static char *uri_redact(const char *uri)
{
	const char *p = strstr(uri, "://");
	p = p ? p + 3 : uri;
	size_t alen = strcspn(p, "?");
	const char *at = NULL;
	for (const char *c = p; c < p + alen; c++)
		if (*c == '@')
			at = c;
	const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
	if (!colon)
		return strdup(uri);
	size_t head = (size_t)(colon + 1 - uri);
	size_t len = head + 3 + strlen(at) + 1;
	char *r = malloc(len);
	if (r)
		snprintf(r, len, "%.*s***%s", (int)head, uri, at);
	return r;
}

/* Parse uri into db (addresses and options). */
static int uri_parse(mtr *db, const char *uri)
{
	static const char scheme[] = "mtr://";
	if (strncmp(uri, scheme, sizeof scheme - 1) != 0)
		return client_err(db, MTR_EINVAL,
				  "URI must start with mtr:// or mtr+embedded://, or be 'local': '%s'", db->uri_shown);
	const char *p = uri + sizeof scheme - 1;
	const char *q = strchr(p, '?');
	const char *hend = q ? q : p + strlen(p);
	const char *at = NULL;
	for (const char *c = p; c < hend; c++)
		if (*c == '@')
			at = c; /* the last one: a raw '@' in a password still works */
	if (at) {
		int rc = uri_userinfo(db, p, (size_t)(at - p));
		if (rc)
			return rc;
		p = at + 1;
	}
	unsigned n = 1;
	for (const char *c = p; c < hend; c++)
		n += *c == ',';
	db->addrs = calloc(n, sizeof *db->addrs);
	if (!db->addrs)
		return client_err(db, MTR_ENOMEM, "out of memory");
	while (p <= hend) {
		const char *comma = memchr(p, ',', (size_t)(hend - p));
		const char *e = comma ? comma : hend;
		int rc = uri_addr(db, p, (size_t)(e - p), &db->addrs[db->naddrs]);
		if (rc)
			return rc;
		db->naddrs++;
		p = e + 1;
	}
	if (q) {
		p = q + 1;
		while (*p) {
			const char *amp = strchr(p, '&');
			size_t len = amp ? (size_t)(amp - p) : strlen(p);
			int rc = client_uri_option(db, p, len);
			if (rc)
				return rc;
			p += len + (amp ? 1 : 0);
		}
	}
	return 0;
}

/* ---- connection ---- */

static void conn_close(mtr *db)
{
	client_tls_close(db);
	if (db->fd >= 0)
		close(db->fd);
	db->fd = -1;
	db->out.len = 0;
	db->in_len = 0;
	db->in_unparsed = false;
}

/* Milliseconds left until deadline (monotonic ns; 0: none -> -1). */
static int ms_left(uint64_t deadline)
{
	if (!deadline)
		return -1;
	uint64_t now = now_mono_ns();
	if (now >= deadline)
		return 0;
	uint64_t ms = (deadline - now + 999999) / 1000000;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

int client_ms_left(uint64_t deadline) { return ms_left(deadline); }

/* Read from db->fd into db->in (growing it).  >0 bytes, 0 EOF, or -errno
 * style MTR_EAGAIN / MTR_EIO / MTR_ENOMEM. */
static long conn_read(mtr *db)
{
	if (db->in_cap - db->in_len < 65536) {
		size_t cap = db->in_cap ? db->in_cap * 2 : 131072;
		uint8_t *n = realloc(db->in, cap);
		if (!n)
			return MTR_ENOMEM;
		db->in = n;
		db->in_cap = cap;
	}
	ssize_t r = client_tls_recv(db, db->in + db->in_len, db->in_cap - db->in_len);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? MTR_EAGAIN : MTR_EIO;
	db->in_len += (size_t)r;
	return r;
}

/* Write what is queued in db->out.  0 (maybe partially), or MTR_EIO. */
static int conn_write(mtr *db)
{
	while (db->out.len) {
		ssize_t w = client_tls_send(db, db->out.p, db->out.len);
		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : MTR_EIO;
		cproto_buf_consume(&db->out, (size_t)w);
	}
	return 0;
}

/* Append raw bytes to db->out. */
static int out_append(mtr *db, const uint8_t *p, size_t n)
{
	if (db->out.cap - db->out.len < n) {
		size_t cap = db->out.cap ? db->out.cap : 4096;
		while (cap - db->out.len < n)
			cap *= 2;
		uint8_t *q = realloc(db->out.p, cap);
		if (!q)
			return MTR_ENOMEM;
		db->out.p = q;
		db->out.cap = cap;
	}
	memcpy(db->out.p + db->out.len, p, n);
	db->out.len += n;
	return 0;
}


/*
 * Connect to one address, say HELLO and wait for WELCOME, all before
 * deadline (0: none).  On success db->fd is the connection.  On failure a
 * message is in why.
 */
static int conn_open_one(mtr *db, const struct client_addr *a, uint64_t deadline, char *why, size_t cap)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int g = getaddrinfo(a->host, a->port, &hints, &res);
	if (g) {
		snprintf(why, cap, "%s: %s", a->host, gai_strerror(g));
		return MTR_ECONNECT;
	}
	int fd = -1;
	snprintf(why, cap, "%s:%s: no usable address", a->host, a->port);
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		int err = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			err = errno;
			if (err == EINPROGRESS) {
				struct pollfd pfd = {.fd = fd, .events = POLLOUT};
				int pr = poll(&pfd, 1, ms_left(deadline));
				socklen_t sl = sizeof err;
				if (pr <= 0)
					err = pr == 0 ? ETIMEDOUT : errno;
				else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
					err = errno;
			}
		}
		if (err == 0)
			break;
		snprintf(why, cap, "%s:%s: %s", a->host, a->port, strerror(err));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return MTR_ECONNECT;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char label[300];
	snprintf(label, sizeof label, "%s:%s", a->host, a->port);
	int rc = db->tls_ctx ? client_tls_start(db, fd, a->host, label, deadline, why, cap) : 0;
	return rc ? rc : client_handshake(db, fd, label, deadline, why, cap);
}

/*
 * Say HELLO on the connected stream fd (taken over: closed on failure) and
 * wait for WELCOME (or BYE) before deadline.  On success db->fd is fd.
 * label names the peer in messages.
 */
int client_handshake(mtr *db, int fd, const char *label, uint64_t deadline, char *why, size_t cap)
{
	int rc = MTR_ECONNECT;
	db->fd = fd;
	db->out.len = 0;
	db->in_len = 0;
	struct cproto_hello h = {.version = CPROTO_VERSION, .client_id = db->client_id, .consistency = db->consistency,
				 .flags = db->user ? CPROTO_HELLO_AUTH : 0};
	struct cproto_auth au = {.user = db->user, .user_len = db->user ? (uint16_t)strlen(db->user) : 0,
				 .password = db->password,
				 .password_len = db->password ? (uint16_t)strlen(db->password) : 0};
	if (cproto_put_hello(&db->out, &h) != 0 || (db->user && cproto_put_auth(&db->out, &au) != 0)) {
		conn_close(db);
		snprintf(why, cap, "out of memory");
		return MTR_ENOMEM;
	}
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN | (db->out.len ? POLLOUT : 0)};
		int pr = poll(&pfd, 1, ms_left(deadline));
		if (pr == 0) {
			snprintf(why, cap, "%s: no WELCOME in time", label);
			rc = MTR_ECONNECT;
			break;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0 || conn_write(db) != 0) {
			snprintf(why, cap, "%s: %s", label, strerror(errno));
			rc = MTR_ECONNECT;
			break;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		long r = conn_read(db);
		if (r == MTR_EAGAIN)
			continue;
		if (r <= 0) {
			snprintf(why, cap, "%s: closed before WELCOME", label);
			rc = r == MTR_ENOMEM ? MTR_ENOMEM : MTR_ECONNECT;
			break;
		}
		struct cproto_frame f;
		long used = cproto_frame_next(db->in, db->in_len, CPROTO_MAX_FRAME, &f);
		if (used == 0)
			continue;
		struct cproto_welcome w;
		struct cproto_bye b;
		if (used > 0 && f.type == CPROTO_T_WELCOME && cproto_get_welcome(&f, &w) == 0) {
			db->stream = w.stream;
			db->max_frame = w.max_frame ? w.max_frame : CPROTO_MAX_FRAME;
			memmove(db->in, db->in + used, db->in_len - (size_t)used);
			db->in_len -= (size_t)used;
			db->in_unparsed = db->in_len > 0;
			mtr_log(LOG_DEBUG, "client: connected to %s (proxy stream %llu)", label,
				(unsigned long long)w.stream);
			return 0;
		}
		if (used > 0 && f.type == CPROTO_T_BYE && cproto_get_bye(&f, &b) == 0) {
			snprintf(why, cap, "%s: proxy said: %.*s", label, (int)b.msg_len, b.msg);
			if (b.status == MTR_EAUTH) {
				rc = MTR_EAUTH; /* another proxy of the URI would say the same */
				break;
			}
		} else
			snprintf(why, cap, "%s: no valid WELCOME", label);
		rc = MTR_ECONNECT;
		break;
	}
	conn_close(db);
	return rc;
}

/*
 * Make sure the handle is connected: try every address once, starting at
 * db->cur, and when deadline is set keep trying rounds (100 ms apart) until
 * it passes.  After connecting, every unanswered request is queued again,
 * in order, with its request id.  0 or MTR_ECONNECT (recorded on db).
 */
static int conn_ensure(mtr *db, uint64_t deadline)
{
	if (db->fd >= 0)
		return 0;
	if (db->naddrs == 0)
		return client_err(db, MTR_ECONNECT, "connection lost and no address to reconnect to");
	char why[300] = "no address";
	/*
	 * A proxy that accepts and drops us at once must not make us spin:
	 * after repeated losses without any answer in between, pause first
	 * (2, 4, 8 ... up to 200 ms, within the deadline).
	 */
	if (db->losses > 1) {
		long pause = MIN(200L, 1L << MIN(db->losses, 8u));
		int left = ms_left(deadline);
		if (left >= 0)
			pause = MIN(pause, (long)left);
		struct timespec ts = {0, pause * 1000000L};
		nanosleep(&ts, NULL);
	}
	for (;;) {
		for (unsigned k = 0; k < db->naddrs; k++) {
			unsigned i = (db->cur + k) % db->naddrs;
			int rc = conn_open_one(db, &db->addrs[i], deadline, why, sizeof why);
			if (rc == MTR_ENOMEM)
				return client_err(db, rc, "out of memory");
			if (rc == MTR_EAUTH)
				return client_err(db, rc, "%s", why);
			if (rc == 0) {
				db->cur = i;
				for (struct client_req *r = db->head; r; r = r->next)
					if (out_append(db, r->frame, r->frame_len) != 0 ||
					    (r->cancelled && cproto_put_cancel(&db->out, r->id) != 0)) {
						conn_close(db);
						return client_err(db, MTR_ENOMEM, "out of memory");
					}
				if (db->head)
					mtr_log(LOG_INFO, "client: resending unanswered requests from %llu to %s:%s",
						(unsigned long long)db->head->id, db->addrs[i].host, db->addrs[i].port);
				return 0;
			}
			mtr_log(LOG_DEBUG, "client: cannot connect: %s", why);
		}
		int left = ms_left(deadline);
		if (left <= 0)
			break;
		struct timespec ts = {0, (long)MIN(left, 100) * 1000000L};
		nanosleep(&ts, NULL);
	}
	return client_err(db, MTR_ECONNECT, "cannot connect to any proxy (last: %s)", why);
}

/* The connection died (or a request timed out on it): close it and try
 * the next address first. */
static void conn_lost(mtr *db, const char *why)
{
	if (db->naddrs)
		mtr_log(LOG_WARN, "client: connection to %s:%s lost (%s); failing over", db->addrs[db->cur].host,
			db->addrs[db->cur].port, why);
	else
		mtr_log(LOG_WARN, "client: connection lost (%s)", why);
	conn_close(db);
	db->losses++;
	if (db->naddrs > 1)
		db->cur = (db->cur + 1) % db->naddrs;
}

/* ---- requests ---- */

static void req_unlink(mtr *db, struct client_req *r)
{
	struct client_req **pp = &db->head, *prev = NULL;
	while (*pp && *pp != r) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = r->next;
	if (db->tail == r)
		db->tail = prev;
	r->next = NULL;
}

static void req_free(struct client_req *r)
{
	if (!r)
		return;
	free(r->frame);
	free(r->payload);
	free(r);
}

/* The outcome of an asynchronous request: call its callback and free it. */
static void req_complete_async(mtr *db, struct client_req *r, const uint8_t *payload, size_t len, int rc)
{
	int ext = 0;
	int64_t changes = 0, rowid = 0;
	if (rc == 0) {
		struct result_view v;
		rc = client_answer(db, payload, len, &v, &ext);
		if (rc == 0) {
			struct result_stmt s;
			while (result_next(&v, &s)) {
				changes = s.changes;
				rowid = s.last_rowid;
			}
			if (r->write)
				db->changes = changes;
			if (r->insert && changes > 0)
				db->last_rowid = rowid;
		}
	} else if (rc == MTR_ETIMEDOUT) {
		client_err(db, rc, "no answer within %d ms", db->timeout_ms);
	} else if (db->errcode != rc) {
		client_err(db, rc, "%s", mtr_strerror(rc));
	}
	db->npending_async--;
	r->done(r->arg, rc, ext, changes, rowid);
	req_free(r);
}

/* Finish request r (unlinked) with rc, or with an answer payload. */
static int req_finish(mtr *db, struct client_req *r, const uint8_t *payload, size_t len, int rc)
{
	if (r->done) {
		req_complete_async(db, r, payload, len, rc);
		return 1;
	}
	r->finished = true;
	r->rc = rc;
	if (rc == 0) {
		r->payload = malloc(len ? len : 1);
		if (!r->payload)
			r->rc = MTR_ENOMEM;
		else
			memcpy(r->payload, payload, len);
		r->payload_len = len;
	}
	return 0;
}

/* Fail every unanswered request with rc. */
static int reqs_fail_all(mtr *db, int rc)
{
	int fired = 0;
	while (db->head) {
		struct client_req *r = db->head;
		req_unlink(db, r);
		fired += req_finish(db, r, NULL, 0, rc);
	}
	return fired;
}

/* Handle the frames in db->in.  Returns callbacks fired, or MTR_EIO when
 * the connection must be dropped (why says why). */
static int conn_frames(mtr *db, char *why, size_t cap)
{
	int fired = 0;
	size_t off = 0;
	int rc = 0;
	while (off < db->in_len) {
		struct cproto_frame f;
		long used = cproto_frame_next(db->in + off, db->in_len - off, CPROTO_MAX_FRAME, &f);
		if (used == 0)
			break;
		if (used < 0) {
			snprintf(why, cap, "bad frame: %s", mtr_strerror((int)used));
			rc = MTR_EIO;
			break;
		}
		off += (size_t)used;
		if (f.type == CPROTO_T_ANSWER) {
			struct cproto_answer a;
			if (cproto_get_answer(&f, &a) != 0) {
				snprintf(why, cap, "malformed ANSWER");
				rc = MTR_EIO;
				break;
			}
			struct client_req *r = db->head;
			while (r && r->id != a.request)
				r = r->next;
			db->losses = 0;
			if (!r) /* given up after a timeout, or unknown: drop */
				continue;
			req_unlink(db, r);
			fired += req_finish(db, r, f.payload, f.len, 0);
		} else if (f.type == CPROTO_T_PING) {
			uint64_t token;
			if (cproto_get_ping(&f, &token) == 0 && cproto_put_ping(&db->out, CPROTO_T_PONG, token) != 0) {
				snprintf(why, cap, "out of memory");
				rc = MTR_EIO;
				break;
			}
		} else if (f.type == CPROTO_T_BYE) {
			struct cproto_bye b;
			if (cproto_get_bye(&f, &b) == 0)
				snprintf(why, cap, "proxy said bye: %s: %.*s", mtr_strerror(b.status), (int)b.msg_len,
					 b.msg);
			else
				snprintf(why, cap, "malformed BYE");
			rc = MTR_EIO;
			break;
		} else if (f.type != CPROTO_T_PONG) {
			snprintf(why, cap, "unexpected %s frame", cproto_type_name(f.type));
			rc = MTR_EIO;
			break;
		}
	}
	if (rc == 0) {
		memmove(db->in, db->in + off, db->in_len - off);
		db->in_len -= off;
	}
	return rc ? rc : fired;
}

/*
 * mtr_interrupt was called: a CANCEL frame for every unanswered request not
 * cancelled yet.  The proxy answers a cancelled read at once ("read
 * cancelled"); a write goes on and its answer comes as usual.
 */
static void interrupt_pending(mtr *db)
{
	for (struct client_req *r = db->head; r; r = r->next) {
		if (r->cancelled)
			continue;
		r->cancelled = true;
		if (db->fd >= 0 && cproto_put_cancel(&db->out, r->id) != 0)
			r->cancelled = false; /* out of memory: the request runs on */
		else
			mtr_log(LOG_DEBUG, "client: request %llu cancelled (mtr_interrupt)", (unsigned long long)r->id);
	}
	if (db->fd >= 0 && db->out.len && conn_write(db) != 0)
		conn_lost(db, strerror(errno));
}

MTR_API void mtr_interrupt(mtr *db)
{
	if (!db)
		return;
	int e = errno; /* a signal handler's caller keeps its errno */
	atomic_store(&db->interrupt, 1);
	if (db->ifd >= 0) {
		uint64_t one = 1;
		ssize_t w = write(db->ifd, &one, sizeof one);
		(void)w; /* a full counter wakes the pump just as well */
	}
	errno = e;
}

/*
 * The I/O loop.  Runs until `want` (a synchronous request) is finished, or,
 * when want is NULL, until at least one callback ran, nothing is pending,
 * or `until` (monotonic ns; 0: none) passed (after at least one poll).  Expires requests whose
 * deadline passed (MTR_ETIMEDOUT), fails over when the connection dies.
 * Returns the callbacks fired (want == NULL), 0 (want finished: see its
 * rc), or MTR_ETIMEDOUT (want's deadline passed: it is unlinked, the caller
 * frees it).
 */
static int client_pump(mtr *db, struct client_req *want, uint64_t until)
{
	int fired = 0;
	bool polled = false;
	for (;;) {
		if (want && want->finished)
			return 0;
		if (!want && (fired > 0 || !db->head))
			return fired;
		uint64_t now = now_mono_ns();
		uint64_t next = until;
		uint64_t expired = 0;
		bool want_expired = false;
		for (struct client_req *r = db->head, *nx; r; r = nx) {
			nx = r->next;
			if (r->deadline_ns && r->deadline_ns <= now) {
				req_unlink(db, r);
				mtr_log(LOG_DEBUG, "client: request %llu timed out", (unsigned long long)r->id);
				/* nobody waits for it any more: the proxy stops a read
				 * (a write goes on; its answer is dropped) */
				if (db->fd >= 0 && cproto_put_cancel(&db->out, r->id) == 0 && conn_write(db) != 0)
					conn_lost(db, strerror(errno));
				if (!expired)
					expired = r->id;
				if (r == want)
					want_expired = true;
				else
					fired += req_finish(db, r, NULL, 0, MTR_ETIMEDOUT);
			} else if (r->deadline_ns && (!next || r->deadline_ns < next)) {
				next = r->deadline_ns;
			}
		}
		/*
		 * A request that got no answer in time makes its connection
		 * suspect: answers leave a proxy in request order, so one that
		 * never comes holds up every later one.  Reconnect (the next
		 * address first, when the URI has several) and resend what is
		 * still unanswered with the same ids; the replicas apply each
		 * (client, request) once (doc/client.md "Failover").  A handle
		 * without an address (embedded, attached) keeps its connection.
		 */
		if (expired && db->fd >= 0 && db->naddrs > 0) {
			char why[96];
			snprintf(why, sizeof why, "no answer to request %llu within %d ms", (unsigned long long)expired,
				 db->timeout_ms);
			conn_lost(db, why);
		}
		if (want_expired) {
			client_err(db, MTR_ETIMEDOUT, "no answer within %d ms", db->timeout_ms);
			return MTR_ETIMEDOUT;
		}
		if (fired && !want)
			return fired;
		if (!want && until && polled && now >= until)
			return fired;
		if (db->fd < 0) {
			int rc = conn_ensure(db, next);
			if (rc) {
				char msg[sizeof db->errmsg];
				snprintf(msg, sizeof msg, "%s", db->errmsg);
				fired += reqs_fail_all(db, rc);
				client_err(db, rc, "%s", msg);
				if (want && want->finished)
					return 0;
				return fired;
			}
		}
		if (db->in_unparsed) {
			/* Frames that came in the same read as the WELCOME. */
			char why[300];
			db->in_unparsed = false;
			int n = conn_frames(db, why, sizeof why);
			if (n < 0)
				conn_lost(db, why);
			else
				fired += n;
			continue;
		}
		if (atomic_exchange(&db->interrupt, 0)) {
			interrupt_pending(db);
			continue;
		}
		/* write first: a socket with room needs no poll for POLLOUT (one
		 * poll and one empty read less per request) */
		if (db->out.len && conn_write(db) != 0) {
			conn_lost(db, strerror(errno));
			continue;
		}
		struct pollfd pfd[2] = {
			{.fd = db->fd, .events = client_tls_poll(db, POLLIN | (db->out.len ? POLLOUT : 0))},
			{.fd = db->ifd, .events = POLLIN}};
		int pr;
		if (client_tls_pending(db)) { /* decrypted bytes wait: read them first */
			pr = 1;
			pfd[0].revents = POLLIN;
			pfd[1].revents = 0;
		} else {
			pr = poll(pfd, db->ifd >= 0 ? 2 : 1, ms_left(next));
		}
		polled = true;
		if (pr < 0 && errno != EINTR) {
			conn_lost(db, strerror(errno));
			continue;
		}
		if (pr > 0 && db->ifd >= 0 && (pfd[1].revents & POLLIN)) {
			uint64_t junk;
			ssize_t rd = read(db->ifd, &junk, sizeof junk);
			(void)rd; /* the flag says what to do */
		}
		if (pr <= 0 || !(pfd[0].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR)))
			continue;
		int had_out = db->out.len != 0;
		if ((pfd[0].revents & POLLOUT) && conn_write(db) != 0) {
			conn_lost(db, strerror(errno));
			continue;
		}
		/* POLLOUT with nothing to write: a TLS read waited for it */
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) || ((pfd[0].revents & POLLOUT) && !had_out)) {
			long r = conn_read(db);
			if (r == MTR_EAGAIN)
				continue;
			if (r == MTR_ENOMEM) {
				fired += reqs_fail_all(db, MTR_ENOMEM);
				client_err(db, MTR_ENOMEM, "out of memory");
				conn_close(db);
				continue;
			}
			if (r <= 0) {
				conn_lost(db, r == 0 ? "closed by the proxy" : "read error");
				continue;
			}
			char why[300];
			int n = conn_frames(db, why, sizeof why);
			if (n < 0)
				conn_lost(db, why);
			else
				fired += n;
			if (db->fd >= 0 && db->out.len && conn_write(db) != 0)
				conn_lost(db, strerror(errno));
		}
	}
}

/* Build a request for sql/binds and queue it (connecting if need be). */
static int client_queue(mtr *db, const char *sql, uint32_t sql_len, const struct cproto_bind *binds, uint16_t nbinds,
			struct client_req **out)
{
	struct client_req *r = calloc(1, sizeof *r);
	if (!r)
		return client_err(db, MTR_ENOMEM, "out of memory");
	if (!db->head && atomic_exchange(&db->interrupt, 0) && db->ifd >= 0) {
		/* like sqlite3_interrupt: no effect on statements started after
		 * nothing was running any more */
		uint64_t junk;
		ssize_t rd = read(db->ifd, &junk, sizeof junk);
		(void)rd;
	}
	r->id = ++db->next_req;
	struct cproto_query q = {
		.request = r->id,
		.consistency = db->once_consistency ? db->once_consistency : CPROTO_CONS_DEFAULT,
		.min_instance = db->last_instance,
		/* every request before the oldest unanswered one has its answer
		 * and is never sent again (doc/client.md "Failover") */
		.floor = db->head ? db->head->id : r->id,
		.sql = sql,
		.sql_len = sql_len,
		.nbinds = nbinds,
		.binds = binds,
	};
	db->once_consistency = 0;
	struct cproto_buf b = {0};
	int rc = cproto_put_query(&b, &q);
	if (rc) {
		cproto_buf_free(&b);
		free(r);
		return client_err(db, rc, rc == MTR_ETOOBIG ? "request too large" : "out of memory");
	}
	r->frame = b.p;
	r->frame_len = b.len;
	if (db->max_frame && b.len - 4 > db->max_frame) {
		req_free(r);
		return client_err(db, MTR_ETOOBIG, "request of %zu bytes exceeds the proxy's limit of %u", b.len,
				  db->max_frame);
	}
	r->deadline_ns = db->timeout_ms ? now_mono_ns() + (uint64_t)db->timeout_ms * 1000000ull : 0;
	if (db->fd < 0) {
		rc = conn_ensure(db, r->deadline_ns);
		if (rc) {
			req_free(r);
			return rc;
		}
	}
	/* Link after conn_ensure: it re-queues the frames already linked. */
	rc = out_append(db, r->frame, r->frame_len);
	if (rc) {
		req_free(r);
		return client_err(db, rc, "out of memory");
	}
	if (db->tail)
		db->tail->next = r;
	else
		db->head = r;
	db->tail = r;
	*out = r;
	return 0;
}

int client_request_sync(mtr *db, const char *sql, uint32_t sql_len, const struct cproto_bind *binds,
			uint16_t nbinds, uint8_t **payload, size_t *len)
{
	struct client_req *r;
	int rc = client_queue(db, sql, sql_len, binds, nbinds, &r);
	if (rc)
		return rc;
	rc = client_pump(db, r, 0);
	client_tls_thread_done(db);
	if (rc == 0) {
		rc = r->rc;
		if (rc == 0) {
			*payload = r->payload;
			*len = r->payload_len;
			r->payload = NULL;
		} else if (db->errcode != rc) {
			client_err(db, rc, "%s", mtr_strerror(rc));
		}
	}
	req_free(r);
	return rc;
}

int client_request_async(mtr *db, const char *sql, uint32_t sql_len, const struct cproto_bind *binds,
			 uint16_t nbinds, bool write, bool insert, mtr_done_fn done, void *arg)
{
	struct client_req *r;
	int rc = client_queue(db, sql, sql_len, binds, nbinds, &r);
	if (rc)
		return rc;
	r->done = done;
	r->arg = arg;
	r->write = write;
	r->insert = insert;
	db->npending_async++;
	/*
	 * Alone in flight, it goes out now if the socket takes it (never wait
	 * here).  Behind others, it waits in the output buffer for the next
	 * call that waits for answers (mtr_poll, mtr_step, ...: client_pump
	 * writes first), or until SUBMIT_FLUSH_BYTES wait: the requests a
	 * caller submits between two polls then leave in one send, not one
	 * each (a third of mtrload's CPU per write at 64 x 4 was its sends:
	 * doc/performance.md "Requests submitted together leave together").
	 * Its answer can only come through such a call anyway.
	 */
	if ((db->npending_async == 1 || db->out.len >= SUBMIT_FLUSH_BYTES) && conn_write(db) != 0)
		conn_lost(db, strerror(errno));
	client_tls_thread_done(db);
	return 0;
}

MTR_API int mtr_poll(mtr *db, int timeout_ms)
{
	if (!db->head)
		return 0;
	/* until 0 means "no limit" to the pump; a zero timeout is "now". */
	uint64_t until = timeout_ms >= 0 ? now_mono_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
	int n = client_pump(db, NULL, until);
	client_tls_thread_done(db);
	return n;
}

int client_answer(mtr *db, const uint8_t *payload, size_t len, struct result_view *v, int *ext)
{
	struct cproto_frame f = {.type = CPROTO_T_ANSWER, .payload = payload, .len = (uint32_t)len};
	struct cproto_answer a;
	*ext = 0;
	if (cproto_get_answer(&f, &a) != 0)
		return client_err(db, MTR_EMALFORMED, "malformed answer from the proxy");
	if (a.instance > db->last_instance)
		db->last_instance = a.instance;
	if (a.status != 0) {
		int code = a.status < 0 ? a.status : MTR_EMALFORMED;
		if (a.msg_len)
			return client_err_at(db, code, a.line, a.col, a.msg, a.msg_len);
		return client_err(db, code, "%s", mtr_strerror(code));
	}
	if (result_decode(a.result, a.result_len, v) != 0)
		return client_err(db, MTR_EMALFORMED, "malformed result from the proxy");
	if (v->code != 0) {
		/* The message of the failing statement (v->failed). */
		struct result_view w = *v;
		struct result_stmt s;
		const char *msg = NULL;
		uint32_t mlen = 0;
		for (uint32_t i = 0; result_next(&w, &s); i++)
			if (i == v->failed || (s.code != 0 && !msg)) {
				msg = s.errmsg;
				mlen = s.errmsg_len;
				if (i == v->failed)
					break;
			}
		client_err(db, MTR_ESQL, "%.*s", (int)mlen, msg ? msg : "SQL error");
		db->failed_stmt = v->failed;
		db->ext = v->code;
		*ext = v->code;
		return MTR_ESQL;
	}
	return 0;
}

/* ---- open / close ---- */

/* A new unconnected handle with the defaults, or NULL. */
static mtr *client_new(void)
{
	mtr *db = calloc(1, sizeof *db);
	if (!db)
		return NULL;
	db->fd = -1;
	db->ifd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* -1: mtr_interrupt has no effect */
	db->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
	db->consistency = CPROTO_CONS_SESSION;
	if (getrandom(&db->client_id, sizeof db->client_id, GRND_NONBLOCK) != (ssize_t)sizeof db->client_id)
		db->client_id = now_mono_ns() ^ ((uint64_t)getpid() << 32);
	if (!db->client_id)
		db->client_id = 1;
	return db;
}

int client_open_fd(int fd, int timeout_ms, mtr **out)
{
	mtr *db = client_new();
	*out = db;
	if (!db) {
		close(fd);
		return MTR_ENOMEM;
	}
	db->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return client_err(db, MTR_EIO, "cannot make the connection non-blocking");
	}
	char why[300] = "";
	uint64_t deadline = db->timeout_ms ? now_mono_ns() + (uint64_t)db->timeout_ms * 1000000ull : 0;
	int rc = client_handshake(db, fd, "attached connection", deadline, why, sizeof why);
	if (rc)
		return client_err(db, rc, "%s", why);
	client_ok(db);
	return 0;
}

/* The library's level: warnings and errors unless MTR_LOG or mtr_config_log
 * says otherwise (the daemons, which share log.c, default to info). */
static atomic_int log_configured;

static void client_log_default(void)
{
	int no = 0;
	if (atomic_compare_exchange_strong(&log_configured, &no, 1) && !log_level_from_env())
		log_set_level(LOG_WARN);
}

struct log_user {
	mtr_log_fn fn;
	void *arg;
};
static struct log_user log_user;

static void log_to_user(void *arg, int level, const char *msg)
{
	const struct log_user *u = arg;
	u->fn(u->arg, level, msg);
}

MTR_API int mtr_config_log(mtr_log_fn fn, void *arg, int level)
{
	if (level < MTR_LOG_ERROR || level > MTR_LOG_TRACE)
		return MTR_EINVAL;
	atomic_store(&log_configured, 1);
	log_set_level(level);
	if (fn == NULL) {
		log_set_sink(NULL, NULL);
	} else {
		log_set_sink(NULL, NULL); /* no line sees a half-set user */
		log_user.fn = fn;
		log_user.arg = arg;
		log_set_sink(log_to_user, &log_user);
	}
	return 0;
}

MTR_API int mtr_open(const char *uri, mtr **out)
{
	if (!out)
		return MTR_EINVAL;
	client_log_default();
	mtr *db = client_new();
	*out = db;
	if (!db)
		return MTR_ENOMEM;
	if (!uri)
		return client_err(db, MTR_EINVAL, "no URI");
	if (client_embed_uri(uri)) {
		int erc = client_embed_open(db, uri);
		if (erc == 0)
			client_ok(db);
		return erc;
	}
	db->uri_shown = uri_redact(uri);
	if (!db->uri_shown)
		return client_err(db, MTR_ENOMEM, "out of memory");
	int rc = uri_parse(db, uri);
	if (rc || (rc = client_tls_setup(db)))
		return rc;
	/* One round over the addresses, each bounded by the timeout. */
	uint64_t deadline = db->timeout_ms ? now_mono_ns() + (uint64_t)db->timeout_ms * 1000000ull : 0;
	char why[300] = "";
	for (unsigned i = 0; i < db->naddrs; i++) {
		rc = conn_open_one(db, &db->addrs[i], deadline, why, sizeof why);
		if (rc == 0) {
			db->cur = i;
			client_ok(db);
			return 0;
		}
		if (rc == MTR_ENOMEM)
			return client_err(db, rc, "out of memory");
		if (rc == MTR_EAUTH)
			return client_err(db, rc, "%s", why);
	}
	return client_err(db, MTR_ECONNECT, "cannot connect to any proxy of '%s' (last: %s)", db->uri_shown, why);
}

MTR_API int mtr_close(mtr *db)
{
	if (!db)
		return 0;
	/* submitted requests still in the buffer go out (best effort, never
	 * waiting), as they would have before the close */
	if (db->fd >= 0 && db->out.len)
		(void)conn_write(db);
	reqs_fail_all(db, MTR_ECLOSED);
	client_stmts_free(db);
	client_txn_clear(db);
	client_temp_clear(db);
	conn_close(db);
	client_tls_free(db);
	client_embed_close(db);
	if (db->ifd >= 0)
		close(db->ifd);
	cproto_buf_free(&db->out);
	free(db->in);
	free(db->txn);
	free(db->addrs);
	free(db->user);
	if (db->password) {
		explicit_bzero(db->password, strlen(db->password));
		free(db->password);
	}
	free(db->uri_shown);
	free(db);
	return 0;
}

/* ---- the connection, for client_backup.c (client_int.h) ---- */

int client_conn_ensure(mtr *db, uint64_t deadline)
{
	return conn_ensure(db, deadline);
}

long client_conn_read(mtr *db)
{
	return conn_read(db);
}

int client_conn_write(mtr *db)
{
	return conn_write(db);
}

void client_conn_lost(mtr *db, const char *why)
{
	conn_lost(db, why);
}
