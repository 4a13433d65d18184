/*
 * tlsconn.c - TLS for the client protocol over OpenSSL's libssl
 * (tlsconn.h).  The contexts fix the policy (versions, options, what is
 * verified); a connection wraps an SSL object over our own socket BIO,
 * which uses send(MSG_NOSIGNAL) and recv so that neither the proxy nor an
 * application linking libmetronome can get SIGPIPE from TLS, and turns
 * OpenSSL's error queue into one sentence.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "metronome.h"
#include "tlsconn.h"

struct tlsctx {
	SSL_CTX *ctx;
};

struct tlsconn {
	SSL *ssl;
	int fd;
	int client;  /* the client side: checks the first byte the peer sends */
	int seen;    /* the client side saw the peer's first bytes: they look like TLS */
	int want;    /* TLSCONN_WANT_* after MTR_EAGAIN */
	int not_tls; /* the peer's first byte is no TLS record */
	int failed;  /* a fatal error happened: every later call fails with why */
	unsigned char first; /* the peer's first byte */
	int eof;     /* recv returned 0 (BIO_eof: OpenSSL tells EOF from an error by it) */
	char why[256];
};

/* ---- the socket BIO ------------------------------------------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *buf, int len)
{
	struct tlsconn *c = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t w = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_write(b);
		return -1;
	}
	return (int)w;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct tlsconn *c = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (c->client && !c->seen) {
		/* a proxy without TLS answers our ClientHello with a frame of
		 * the client protocol: look before OpenSSL reads it, to say so
		 * instead of "wrong version number" (and leave it to be read) */
		unsigned char p[2];
		ssize_t n = recv(c->fd, p, sizeof p, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0) {
			c->first = p[0];
			if ((p[0] != 0x16 && p[0] != 0x15) || (n == 2 && p[1] != 0x03)) {
				c->not_tls = 1;
				return -1; /* no retry: the handshake fails */
			}
			c->seen = 1;
		}
	}
	ssize_t r = recv(c->fd, buf, (size_t)len, MSG_DONTWAIT);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_read(b);
		return -1;
	}
	if (r == 0)
		c->eof = 1;
	return (int)r;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	(void)ptr;
	if (cmd == BIO_CTRL_EOF) {
		struct tlsconn *c = BIO_get_data(b);
		return c->eof;
	}
	return cmd == BIO_CTRL_FLUSH || cmd == BIO_CTRL_DUP;
}

static void bio_init_once(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "metronome socket");
	if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
	    BIO_meth_set_ctrl(m, bio_ctrl))
		bio_method = m;
	else
		BIO_meth_free(m);
}

/* ---- errors ----------------------------------------------------------------- */

/* The reason of the newest error in the queue ("key values mismatch"), or
 * dflt; empties the queue. */
static const char *ssl_reason(const char *dflt)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : dflt;
}

/* "2027-01-31 12:00:00 UTC" */
static void asn1_date(const ASN1_TIME *t, char *out, size_t n)
{
	struct tm tm;
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, n, "(unreadable date)");
}

/* ---- contexts ---------------------------------------------------------------- */

/* The policy both sides share. */
static SSL_CTX *ctx_new(const SSL_METHOD *m)
{
	SSL_CTX *ctx = SSL_CTX_new(m);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* no compression (CRIME), no renegotiation, no tickets (we never
	 * resume); an EOF without close_notify is an EOF: every message of
	 * the client protocol is framed, so a truncation cannot pass as one */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

static int readable(const char *what, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot read '%s': %s", what, path, strerror(errno));
		return MTR_ECONFIG;
	}
	fclose(f);
	return 0;
}

int tlsctx_server(const char *cert, const char *key, char *err, size_t errlen, char *warn, size_t warnlen,
		  struct tlsctx **out)
{
	*out = NULL;
	if (warn && warnlen)
		warn[0] = 0;
	ERR_clear_error();
	if (readable("proxy.tls_cert", cert, err, errlen) || readable("proxy.tls_key", key, err, errlen))
		return MTR_ECONFIG;
	SSL_CTX *ctx = ctx_new(TLS_server_method());
	if (ctx == NULL)
		return MTR_ENOMEM;
	EVP_PKEY *pk = NULL;
	int rc = MTR_ECONFIG;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "proxy.tls_cert: '%s' holds no usable PEM certificate (%s)", cert,
			 ssl_reason("no certificate"));
		goto fail;
	}
	FILE *f = fopen(key, "r");
	if (f) {
		pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (pk == NULL) {
		snprintf(err, errlen, "proxy.tls_key: '%s' holds no usable PEM private key (%s); an encrypted key "
				      "is not supported", key, ssl_reason("no key"));
		goto fail;
	}
	X509 *x = SSL_CTX_get0_certificate(ctx);
	if (X509_check_private_key(x, pk) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "proxy.tls_key: the key in '%s' does not match the certificate in '%s' "
				      "(proxy.tls_cert); give the key the certificate was made for", key, cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "proxy.tls_key: '%s' cannot be used with '%s' (%s)", key, cert,
			 ssl_reason("unusable key"));
		goto fail;
	}
	char d[64];
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		asn1_date(X509_get0_notBefore(x), d, sizeof d);
		snprintf(err, errlen, "proxy.tls_cert: the certificate in '%s' is not valid before %s; check the "
				      "clock or give a valid certificate", cert, d);
		goto fail;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
		asn1_date(X509_get0_notAfter(x), d, sizeof d);
		snprintf(err, errlen, "proxy.tls_cert: the certificate in '%s' expired on %s; renew it", cert, d);
		goto fail;
	}
	time_t soon = time(NULL) + 30 * 86400;
	if (warn && warnlen && X509_cmp_time(X509_get0_notAfter(x), &soon) < 0) {
		asn1_date(X509_get0_notAfter(x), d, sizeof d);
		snprintf(warn, warnlen, "proxy.tls_cert: the certificate in '%s' expires on %s; renew it soon", cert,
			 d);
	}
	struct tlsctx *t = malloc(sizeof *t);
	if (t == NULL) {
		rc = MTR_ENOMEM;
		goto fail;
	}
	EVP_PKEY_free(pk);
	t->ctx = ctx;
	*out = t;
	return 0;
fail:
	EVP_PKEY_free(pk);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

int tlsctx_client(const char *ca, int verify, char *err, size_t errlen, struct tlsctx **out)
{
	*out = NULL;
	ERR_clear_error();
	SSL_CTX *ctx = ctx_new(TLS_client_method());
	if (ctx == NULL)
		return MTR_ENOMEM;
	if (ca) {
		FILE *f = fopen(ca, "r");
		if (f == NULL) {
			snprintf(err, errlen, "ca=%s: cannot read it: %s", ca, strerror(errno));
			SSL_CTX_free(ctx);
			return MTR_EINVAL;
		}
		fclose(f);
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			snprintf(err, errlen, "ca=%s: no PEM certificate in it (%s)", ca, ssl_reason("unreadable"));
			SSL_CTX_free(ctx);
			return MTR_EINVAL;
		}
	} else if (verify && SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "cannot load the system's trust store (%s); give ca=FILE",
			 ssl_reason("unknown"));
		SSL_CTX_free(ctx);
		return MTR_EINVAL;
	}
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	struct tlsctx *t = malloc(sizeof *t);
	if (t == NULL) {
		SSL_CTX_free(ctx);
		return MTR_ENOMEM;
	}
	t->ctx = ctx;
	*out = t;
	return 0;
}

void tlsctx_free(struct tlsctx *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* ---- connections -------------------------------------------------------------- */

struct tlsconn *tlsconn_new(struct tlsctx *t, int fd, const char *host)
{
	pthread_once(&bio_once, bio_init_once);
	if (bio_method == NULL)
		return NULL;
	struct tlsconn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->client = host != NULL;
	ERR_clear_error();
	c->ssl = SSL_new(t->ctx);
	BIO *b = BIO_new(bio_method);
	if (c->ssl == NULL || b == NULL) {
		BIO_free(b);
		goto fail;
	}
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	SSL_set_bio(c->ssl, b, b);
	if (host) {
		SSL_set_connect_state(c->ssl);
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		/* an IP address is checked against the certificate's IP SANs,
		 * a name against its DNS names (and sent in SNI) */
		X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
			ERR_clear_error();
			if (SSL_set1_host(c->ssl, host) != 1 || SSL_set_tlsext_host_name(c->ssl, host) != 1)
				goto fail;
		}
	} else {
		SSL_set_accept_state(c->ssl);
	}
	return c;
fail:
	ERR_clear_error();
	tlsconn_free(c);
	return NULL;
}

void tlsconn_free(struct tlsconn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	free(c);
}

/* Interpret a return value ret <= 0 of an SSL call made during `during`:
 * MTR_EAGAIN (want set), 0 (the peer closed cleanly) or MTR_EIO (why set). */
static int ssl_fail(struct tlsconn *c, int ret, const char *during)
{
	int saved = errno;
	if (c->failed)
		return MTR_EIO;
	int e = SSL_get_error(c->ssl, ret);
	c->want = 0;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		c->want = e == SSL_ERROR_WANT_READ ? TLSCONN_WANT_READ : TLSCONN_WANT_WRITE;
		ERR_clear_error();
		return MTR_EAGAIN;
	}
	/* the peer closed after the handshake (with or without close_notify) */
	if (SSL_is_init_finished(c->ssl) && (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && c->eof))) {
		ERR_clear_error();
		return 0;
	}
	long vr = c->client ? SSL_get_verify_result(c->ssl) : X509_V_OK;
	unsigned long ee = ERR_peek_last_error();
	if (vr != X509_V_OK && ERR_GET_REASON(ee) == SSL_R_CERTIFICATE_VERIFY_FAILED)
		snprintf(c->why, sizeof c->why, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
	else if (ee)
		snprintf(c->why, sizeof c->why, "%s: %s", during, ssl_reason("error"));
	else if (e == SSL_ERROR_SYSCALL && ret < 0 && saved)
		snprintf(c->why, sizeof c->why, "%s: %s", during, strerror(saved));
	else
		snprintf(c->why, sizeof c->why, "%s: the peer closed the connection", during);
	ERR_clear_error();
	c->failed = 1;
	return MTR_EIO;
}

int tlsconn_handshake(struct tlsconn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->want = 0;
		return 0;
	}
	if (c->not_tls) {
		ERR_clear_error();
		c->failed = 1;
		c->want = 0;
		snprintf(c->why, sizeof c->why, "the peer does not speak TLS (its first byte is 0x%02x, no TLS record)",
			 c->first);
		return MTR_EIO;
	}
	int rc = ssl_fail(c, r, "TLS handshake failed");
	return rc == 0 ? MTR_EIO : rc;
}

long tlsconn_read(struct tlsconn *c, void *buf, size_t n)
{
	size_t got = 0;
	c->want = 0;
	while (got < n && (got == 0 || n - got >= TLSCONN_RECORD_MAX)) {
		size_t part = 0;
		ERR_clear_error();
		int r = SSL_read_ex(c->ssl, (char *)buf + got, n - got, &part);
		if (r == 1) {
			got += part;
			continue;
		}
		int rc = ssl_fail(c, r, "TLS read failed");
		if (got > 0)
			break; /* the bytes now; EOF, EAGAIN or the error on the next call */
		return rc;
	}
	return (long)got;
}

long tlsconn_write(struct tlsconn *c, const void *buf, size_t n)
{
	size_t put = 0;
	ERR_clear_error();
	int r = SSL_write_ex(c->ssl, buf, n, &put);
	if (r == 1) {
		c->want = 0;
		return (long)put;
	}
	int rc = ssl_fail(c, r, "TLS write failed");
	return rc == 0 ? MTR_EIO : rc;
}

void tlsconn_thread_done(void) { OPENSSL_thread_stop(); }

int tlsconn_want(const struct tlsconn *c) { return c->want; }

/* SSL_pending, not SSL_has_pending: a record received in part is not
 * readable yet, and its rest comes through the socket (epoll sees it) */
int tlsconn_pending(const struct tlsconn *c) { return SSL_pending(c->ssl) > 0; }

const char *tlsconn_why(const struct tlsconn *c) { return c->why[0] ? c->why : "no error"; }

int tlsconn_not_tls(const struct tlsconn *c) { return c->not_tls; }

const char *tlsconn_version(const struct tlsconn *c) { return SSL_get_version(c->ssl); }

const char *tlsconn_cipher(const struct tlsconn *c) { return SSL_get_cipher_name(c->ssl); }
