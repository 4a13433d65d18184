/*
 * proxy_tls.c - TLS on the proxy's client connections (proxy_int.h; the
 * rule is doc/protocol.md, "TLS", the settings doc/config.md).
 *
 * A connection accepted on proxy.listen starts in SNIFF: its first bytes
 * are peeked (never consumed).  0x16 0x03 is a TLS ClientHello record;
 * anything else is the client protocol in clear (a HELLO frame's length
 * never starts with those bytes: doc/protocol.md).  By proxy.tls:
 *
 *   off      clear: served; TLS: BYE in clear, "does not speak TLS", closed
 *   allow    clear: served; TLS: handshake
 *   require  clear: BYE in clear, "requires TLS", closed; TLS: handshake
 *
 * The handshake runs on the loop without blocking: each call advances it
 * as far as the socket allows and the connection waits in epoll for the
 * direction OpenSSL asked for (pxtls_events).  After it, every byte of the
 * connection goes through pxtls_recv / pxtls_send, which behave like
 * recv(2) / send(2) with MSG_DONTWAIT so that proxy_client.c keeps one code
 * path.  Attached connections (the embedded mode) are always clear.
 * Failures are counted (PROXY_TLS_MAP, "proxy.tls.*" in mtr_stats) and the
 * first of each kind in a minute is logged at warn with the peer's address.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "cproto.h"
#include "log.h"
#include "metronome.h"
#include "proxy_int.h"
#include "tlsconn.h"

#define TLS_WARN_MS 60000u /* one warning per kind and minute */

int pxtls_open(struct proxy *p)
{
	if (p->cfg.tls_mode == PROXY_TLS_OFF || p->cfg.no_listen)
		return 0;
	char err[512], warn[512];
	int rc = tlsctx_server(p->cfg.tls_cert, p->cfg.tls_key, err, sizeof err, warn, sizeof warn, &p->tls);
	if (rc) {
		mtr_log(LOG_ERROR, "proxy: %s", err);
		return rc;
	}
	if (warn[0])
		mtr_log(LOG_WARN, "proxy: %s", warn);
	return 0;
}

void pxtls_reload(struct proxy *p)
{
	if (p->tls == NULL) {
		mtr_log(LOG_INFO, "proxy: SIGHUP: no TLS to reload (proxy.tls is off)");
		return;
	}
	char err[512], warn[512];
	struct tlsctx *t = NULL;
	if (tlsctx_server(p->cfg.tls_cert, p->cfg.tls_key, err, sizeof err, warn, sizeof warn, &t) != 0) {
		mtr_log(LOG_ERROR, "proxy: reload: %s; the certificate in use stays", err);
		return;
	}
	/* connections in progress hold their own reference to the old one */
	tlsctx_free(p->tls);
	p->tls = t;
	if (warn[0])
		mtr_log(LOG_WARN, "proxy: %s", warn);
	mtr_log(LOG_INFO, "proxy: reloaded %s and %s for new TLS connections", p->cfg.tls_cert, p->cfg.tls_key);
}

void pxtls_close(struct proxy *p)
{
	tlsctx_free(p->tls);
	p->tls = NULL;
}

void pxtls_client_init(struct proxy *p, struct client *c, int accepted)
{
	c->tls_state = accepted ? PXTLS_SNIFF : PXTLS_PLAIN;
	(void)p;
}

static void tls_fail(struct proxy *p, struct client *c, unsigned k, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void pxtls_client_close(struct proxy *p, struct client *c)
{
	if (c->tls && c->tls_failed)
		tls_fail(p, c, PROXY_TLS_io_failed, "%s", tlsconn_why(c->tls));
	tlsconn_free(c->tls);
	c->tls = NULL;
}

/* Count a failure of kind k and log it at warn, the first of its kind in
 * a minute (at debug otherwise), with the peer's address. */
static void tls_fail(struct proxy *p, struct client *c, unsigned k, const char *fmt, ...)
{
	p->tls_counts[k]++;
	char why[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	char who[64] = "?";
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	if (getpeername(c->fd, (struct sockaddr *)&sa, &sl) == 0 && sa.sin_family == AF_INET) {
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
		snprintf(who, sizeof who, "%s:%u", ip, ntohs(sa.sin_port));
	}
	int warn = p->now_ms >= p->tls_warn_ms[k];
	if (warn)
		p->tls_warn_ms[k] = p->now_ms + TLS_WARN_MS;
	mtr_log(warn ? LOG_WARN : LOG_DEBUG, "proxy: client %llu from %s: %s (proxy.tls.%s%s)",
		(unsigned long long)c->no, who, why, pxtls_stat_name(k),
		warn ? "; more of this kind in the next minute only counted" : "");
}

/* Refuse c before any TLS: drain what it sent (so that closing sends FIN,
 * not RST, and the BYE arrives), send a BYE in clear, close. */
static void refuse_clear(struct proxy *p, struct client *c, const char *why)
{
	char junk[4096];
	ssize_t r = recv(c->fd, junk, sizeof junk, MSG_DONTWAIT);
	(void)r;
	struct cproto_buf b = {0};
	struct cproto_bye m = {.status = MTR_ENOTSUP, .msg = why, .msg_len = (uint32_t)strlen(why)};
	if (cproto_put_bye(&b, &m) == 0) {
		ssize_t w = send(c->fd, b.p, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w; /* best effort: the connection closes next */
	}
	cproto_buf_free(&b);
	shutdown(c->fd, SHUT_WR);
	pxcli_close(p, c, why);
}

int pxtls_ready(struct proxy *p, struct client *c)
{
	if (c->tls_state == PXTLS_PLAIN || c->tls_state == PXTLS_ON)
		return 1;
	if (c->dead)
		return 0;
	if (c->tls_state == PXTLS_SNIFF) {
		unsigned char b[2];
		ssize_t r = recv(c->fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
		if (r == 0) {
			pxcli_close(p, c, "closed by the client");
			return 0;
		}
		if (r < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				pxcli_close(p, c, strerror(errno));
			return 0;
		}
		int hello = b[0] == 0x16 && (r < 2 || b[1] == 0x03);
		if (!hello && p->cfg.tls_mode == PROXY_TLS_REQUIRE) {
			tls_fail(p, c, PROXY_TLS_plain_refused, "plain TCP refused: proxy.tls = require");
			refuse_clear(p, c, "this proxy requires TLS: add ?tls=require to the URI");
			return 0;
		}
		if (!hello) {
			c->tls_state = PXTLS_PLAIN;
			return 1;
		}
		if (p->tls == NULL) {
			tls_fail(p, c, PROXY_TLS_unexpected, "a TLS ClientHello refused: proxy.tls = off");
			refuse_clear(p, c, "this proxy does not speak TLS (proxy.tls = off): remove tls= from the URI");
			return 0;
		}
		c->tls = tlsconn_new(p->tls, c->fd, NULL);
		if (c->tls == NULL) {
			pxcli_close(p, c, "out of memory for TLS");
			return 0;
		}
		c->tls_state = PXTLS_HANDSHAKE;
	}
	int rc = tlsconn_handshake(c->tls);
	if (rc == MTR_EAGAIN)
		return 0; /* called on an event or in the dirty pass: pxtls_events follows */
	if (rc != 0) {
		tls_fail(p, c, PROXY_TLS_handshake_failed, "%s", tlsconn_why(c->tls));
		pxcli_close(p, c, tlsconn_why(c->tls));
		return 0;
	}
	c->tls_state = PXTLS_ON;
	p->tls_counts[PROXY_TLS_handshakes]++;
	mtr_log(LOG_DEBUG, "proxy: client %llu: %s, %s", (unsigned long long)c->no, tlsconn_version(c->tls),
		tlsconn_cipher(c->tls));
	return 1;
}

/* errno from a tlsconn result; a failure is marked for pxtls_client_close. */
static ssize_t tls_result(struct client *c, long r, int reading)
{
	int want = r == MTR_EAGAIN ? tlsconn_want(c->tls) : 0;
	if (reading)
		c->tls_rw = (c->tls_rw & ~PXTLS_READ_NEEDS_WRITE) | (want == TLSCONN_WANT_WRITE ? PXTLS_READ_NEEDS_WRITE : 0);
	else
		c->tls_rw = (c->tls_rw & ~PXTLS_WRITE_NEEDS_READ) | (want == TLSCONN_WANT_READ ? PXTLS_WRITE_NEEDS_READ : 0);
	if (r >= 0)
		return r;
	if (r == MTR_EAGAIN) {
		errno = EAGAIN;
		return -1;
	}
	c->tls_failed = 1;
	errno = EPROTO;
	return -1;
}

ssize_t pxtls_recv(struct client *c, void *buf, size_t n)
{
	if (c->tls == NULL)
		return recv(c->fd, buf, n, MSG_DONTWAIT);
	return tls_result(c, tlsconn_read(c->tls, buf, n), 1);
}

ssize_t pxtls_send(struct client *c, const void *buf, size_t n)
{
	if (c->tls == NULL)
		return send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	return tls_result(c, tlsconn_write(c->tls, buf, n), 0);
}

int pxtls_read_needs_write(const struct client *c) { return (c->tls_rw & PXTLS_READ_NEEDS_WRITE) != 0; }

uint32_t pxtls_events(const struct client *c, uint32_t ev)
{
	switch (c->tls_state) {
	case PXTLS_SNIFF:
		return EPOLLIN;
	case PXTLS_HANDSHAKE:
		return tlsconn_want(c->tls) == TLSCONN_WANT_WRITE ? EPOLLOUT : EPOLLIN;
	case PXTLS_ON:
		if (c->tls_rw & PXTLS_READ_NEEDS_WRITE)
			ev |= EPOLLOUT;
		if ((c->tls_rw & PXTLS_WRITE_NEEDS_READ) && c->out.len)
			ev |= EPOLLIN;
		return ev;
	default:
		return ev;
	}
}

const char *pxtls_stat_name(unsigned k)
{
	static const char *const names[] = {
#define PROXY__TLS_NAME(name, text) #name,
		PROXY_TLS_MAP(PROXY__TLS_NAME)
#undef PROXY__TLS_NAME
	};
	return k < sizeof names / sizeof names[0] ? names[k] : "?";
}
