/*
 * client_tls.c - libmetronome's TLS to the proxy (doc/client.md, "TLS"):
 * the URI options tls= and ca=, the handshake after connect (bounded by
 * the connection's deadline), and recv/send through TLS for client.c.
 *
 *   tls=off       clear TCP (the default)
 *   tls=require   TLS; the proxy's certificate must chain to ca=FILE (or
 *                 the system's trust store) and carry the URI's host name
 *                 or IP address
 *   tls=insecure  TLS without any check of the certificate: encrypted, but
 *                 anyone in the path can pose as the proxy (tests only)
 *
 * Failures name the reason, as OpenSSL's verifier words it ("certificate
 * verify failed: hostname mismatch"), and a proxy that answers in clear is
 * named as one that does not speak TLS.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_int.h"
#include "log.h"
#include "tlsconn.h"

int client_tls_option(mtr *db, const char *k, size_t klen, const char *v, size_t vlen)
{
	if (klen == 3 && memcmp(k, "tls", 3) == 0) {
		if (vlen == 3 && memcmp(v, "off", 3) == 0)
			db->tls_mode = CLIENT_TLS_OFF;
		else if (vlen == 7 && memcmp(v, "require", 7) == 0)
			db->tls_mode = CLIENT_TLS_REQUIRE;
		else if (vlen == 8 && memcmp(v, "insecure", 8) == 0)
			db->tls_mode = CLIENT_TLS_INSECURE;
		else
			return client_err(db, MTR_EINVAL, "tls must be off, require or insecure, not '%.*s'", (int)vlen,
					  v);
		return 0;
	}
	if (klen == 2 && memcmp(k, "ca", 2) == 0) {
		if (vlen == 0)
			return client_err(db, MTR_EINVAL, "ca= needs a file name (PEM certificates to trust)");
		char *ca = strndup(v, vlen);
		if (!ca)
			return client_err(db, MTR_ENOMEM, "out of memory");
		free(db->tls_ca);
		db->tls_ca = ca;
		return 0;
	}
	return 1;
}

int client_tls_setup(mtr *db)
{
	if (db->tls_mode == CLIENT_TLS_OFF) {
		if (db->tls_ca)
			return client_err(db, MTR_EINVAL, "ca=%s is given but TLS is not: add tls=require to the URI",
					  db->tls_ca);
		return 0;
	}
	char err[400];
	int rc = tlsctx_client(db->tls_mode == CLIENT_TLS_REQUIRE ? db->tls_ca : NULL,
			       db->tls_mode == CLIENT_TLS_REQUIRE, err, sizeof err, &db->tls_ctx);
	if (rc)
		return client_err(db, rc, "%s", rc == MTR_ENOMEM ? "out of memory" : err);
	if (db->tls_mode == CLIENT_TLS_INSECURE)
		mtr_log(LOG_WARN, "client: tls=insecure: the proxy's certificate is not checked (anyone in the path "
				  "can pose as the proxy)");
	client_tls_thread_done(db);
	return 0;
}

/* After a handshake that found a peer speaking clear: why, with what the
 * proxy said if its answer is a BYE frame. */
static void not_tls(int fd, const char *label, char *why, size_t cap)
{
	uint8_t buf[1024];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
	struct cproto_frame f;
	struct cproto_bye b;
	if (n > 0 && cproto_frame_next(buf, (size_t)n, CPROTO_MAX_FRAME, &f) > 0 && f.type == CPROTO_T_BYE &&
	    cproto_get_bye(&f, &b) == 0) {
		if (b.status == MTR_ENOTSUP)
			snprintf(why, cap, "the proxy at %s does not speak TLS (it said: %.*s)", label, (int)b.msg_len,
				 b.msg);
		else
			snprintf(why, cap, "%s: proxy said: %.*s", label, (int)b.msg_len, b.msg);
		return;
	}
	snprintf(why, cap, "the proxy at %s does not speak TLS (it answered in clear)", label);
}

int client_tls_start(mtr *db, int fd, const char *host, const char *label, uint64_t deadline, char *why,
		     size_t cap)
{
	db->tls = tlsconn_new(db->tls_ctx, fd, host);
	if (!db->tls) {
		close(fd);
		snprintf(why, cap, "out of memory");
		return MTR_ENOMEM;
	}
	for (;;) {
		int rc = tlsconn_handshake(db->tls);
		if (rc == 0) {
			mtr_log(LOG_DEBUG, "client: %s: %s, %s", label, tlsconn_version(db->tls),
				tlsconn_cipher(db->tls));
			client_tls_thread_done(db);
			return 0;
		}
		if (rc != MTR_EAGAIN) {
			if (tlsconn_not_tls(db->tls))
				not_tls(fd, label, why, cap);
			else
				snprintf(why, cap, "%s: %s", label, tlsconn_why(db->tls));
			break;
		}
		struct pollfd pfd = {.fd = fd,
				     .events = tlsconn_want(db->tls) == TLSCONN_WANT_WRITE ? POLLOUT : POLLIN};
		int pr = poll(&pfd, 1, client_ms_left(deadline));
		if (pr == 0) {
			snprintf(why, cap, "%s: no TLS answer in time (does the proxy speak TLS?)", label);
			break;
		}
		if (pr < 0 && errno != EINTR) {
			snprintf(why, cap, "%s: %s", label, strerror(errno));
			break;
		}
	}
	tlsconn_free(db->tls);
	db->tls = NULL;
	close(fd);
	client_tls_thread_done(db);
	return MTR_ECONNECT;
}

/* A tlsconn read/write result as recv/send's: bytes, or -1 with errno
 * (EAGAIN, or EPROTO after a TLS failure, which is logged). */
static ssize_t tls_result(mtr *db, long r)
{
	if (r >= 0)
		return r;
	if (r == MTR_EIO)
		mtr_log(LOG_WARN, "client: %s", tlsconn_why(db->tls));
	errno = r == MTR_EAGAIN ? EAGAIN : EPROTO;
	return -1;
}

ssize_t client_tls_recv(mtr *db, void *buf, size_t n)
{
	return db->tls ? tls_result(db, tlsconn_read(db->tls, buf, n)) : recv(db->fd, buf, n, 0);
}

ssize_t client_tls_send(mtr *db, const void *buf, size_t n)
{
	return db->tls ? tls_result(db, tlsconn_write(db->tls, buf, n)) : send(db->fd, buf, n, MSG_NOSIGNAL);
}

short client_tls_poll(mtr *db, short events)
{
	if (db->tls && tlsconn_want(db->tls) == TLSCONN_WANT_WRITE)
		events |= POLLOUT;
	return events;
}

int client_tls_pending(mtr *db)
{
	return db->tls && tlsconn_pending(db->tls);
}

void client_tls_close(mtr *db)
{
	tlsconn_free(db->tls);
	db->tls = NULL;
}

void client_tls_free(mtr *db)
{
	client_tls_close(db);
	if (db->tls_ctx) {
		tlsctx_free(db->tls_ctx);
		tlsconn_thread_done();
	}
	db->tls_ctx = NULL;
	free(db->tls_ca);
	db->tls_ca = NULL;
}

void client_tls_thread_done(mtr *db)
{
	if (db->tls_ctx)
		tlsconn_thread_done();
}
