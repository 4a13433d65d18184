/*
 * test_tlsconn.c - the TLS layer of the client protocol (tlsconn.h) over
 * non-blocking socketpairs, with certificates made here (OpenSSL's API: a
 * CA, leaf certificates for names and addresses, expired ones): handshake
 * and data both ways with partial writes, nothing left inside OpenSSL after
 * a read with a record's room, EOF, the verifier's reasons (host name, IP
 * address, unknown CA), a peer that does not speak TLS, and what
 * tlsctx_server refuses (unreadable, mismatched, expired, not yet valid).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "metronome.h"
#include "../testutil.h"
#include "tlsconn.h"

/* ---- Fixture: a CA, certificates in files ---- */

static char dir[256];
static EVP_PKEY *ca_key, *other_key;
static X509 *ca_cert, *other_cert;
static long serial = 1;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v;
	X509V3_set_ctx_nodb(&v);
	X509V3_set_ctx(&v, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for key, valid from `from` to `to` seconds from now, signed
 * by issuer (NULL: self-signed CA).  san: subjectAltName of a leaf. */
static X509 *cert_new(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn, const char *san,
		      long from, long to)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	if (issuer == NULL) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
		add_ext(x, issuer, NID_subject_alt_name, san);
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static void write_cert(const char *name, X509 *x)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s.pem", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s.key", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

/* A leaf NAME.pem / NAME.key signed by the CA (or the other CA). */
static void leaf(const char *name, const char *san, long from, long to, int other)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	X509 *x = cert_new(k, other ? other_cert : ca_cert, other ? other_key : ca_key, name, san, from, to);
	write_cert(name, x);
	write_key(name, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static const char *path(const char *name)
{
	static char p[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

static int setup(void **state)
{
	(void)state;
	if (testutil_mkdtemp(dir, sizeof dir, "test_tlsconn") != 0)
		return -1;
	ca_key = EVP_EC_gen("P-256");
	other_key = EVP_EC_gen("P-256");
	ca_cert = cert_new(ca_key, NULL, NULL, "test CA", NULL, -60, 86400);
	other_cert = cert_new(other_key, NULL, NULL, "other CA", NULL, -60, 86400);
	write_cert("ca", ca_cert);
	write_cert("other", other_cert);
	leaf("server", "IP:127.0.0.1,DNS:localhost", -60, 86400 * 90, 0);
	leaf("soon", "DNS:localhost", -60, 86400 * 10, 0);
	leaf("expired", "DNS:localhost", -86400, -3600, 0);
	leaf("future", "DNS:localhost", 86400, 86400 * 2, 0);
	leaf("foreign", "DNS:localhost", -60, 86400, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca_cert);
	X509_free(other_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	testutil_rmtree(dir);
	return 0;
}

/* ---- Helpers: two ends over a socketpair ---- */

struct pair {
	int fd[2];
	struct tlsctx *sctx, *cctx;
	struct tlsconn *s, *c;
};

static void pair_open(struct pair *p, const char *cert, const char *ca, int verify, const char *host)
{
	memset(p, 0, sizeof *p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	/* small socket buffers: a record does not fit, writes stop half-way */
	int small = 4096;
	setsockopt(p->fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	setsockopt(p->fd[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	char err[512];
	char name[64];
	snprintf(name, sizeof name, "%s.key", cert);
	char certf[64];
	snprintf(certf, sizeof certf, "%s.pem", cert);
	char certp[512], keyp[512];
	snprintf(certp, sizeof certp, "%s", path(certf));
	snprintf(keyp, sizeof keyp, "%s", path(name));
	if (tlsctx_server(certp, keyp, err, sizeof err, NULL, 0, &p->sctx) != 0)
		fail_msg("tlsctx_server: %s", err);
	if (tlsctx_client(ca, verify, err, sizeof err, &p->cctx) != 0)
		fail_msg("tlsctx_client: %s", err);
	p->s = tlsconn_new(p->sctx, p->fd[0], NULL);
	p->c = tlsconn_new(p->cctx, p->fd[1], host);
	assert_non_null(p->s);
	assert_non_null(p->c);
}

static void pair_close(struct pair *p)
{
	tlsconn_free(p->s);
	tlsconn_free(p->c);
	tlsctx_free(p->sctx);
	tlsctx_free(p->cctx);
	if (p->fd[0] >= 0)
		close(p->fd[0]);
	if (p->fd[1] >= 0)
		close(p->fd[1]);
}

/* Run both handshakes until neither wants more; their results in *rs, *rc. */
static void pair_handshake(struct pair *p, int *rs, int *rc)
{
	*rs = *rc = MTR_EAGAIN;
	for (int i = 0; i < 100 && (*rs == MTR_EAGAIN || *rc == MTR_EAGAIN); i++) {
		if (*rc == MTR_EAGAIN)
			*rc = tlsconn_handshake(p->c);
		if (*rs == MTR_EAGAIN)
			*rs = tlsconn_handshake(p->s);
	}
}

/* Move n bytes from one end to the other through the socketpair, writing
 * and reading in turns (the socket buffer is smaller than n: partial
 * writes and EAGAIN happen). */
static void transfer(struct tlsconn *from, struct tlsconn *to, size_t n)
{
	uint8_t *src = malloc(n), *dst = malloc(n + TLSCONN_RECORD_MAX);
	assert_non_null(src);
	assert_non_null(dst);
	for (size_t i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 131 + 7);
	size_t put = 0, got = 0;
	int eagain = 0;
	for (int round = 0; round < 100000 && got < n; round++) {
		if (put < n) {
			long w = tlsconn_write(from, src + put, n - put);
			if (w == MTR_EAGAIN)
				eagain++;
			else {
				assert_true(w > 0);
				put += (size_t)w;
			}
		}
		long r = tlsconn_read(to, dst + got, n + TLSCONN_RECORD_MAX - got);
		if (r != MTR_EAGAIN) {
			assert_true(r > 0);
			got += (size_t)r;
			/* a read with a record's room leaves nothing inside OpenSSL */
			if (n + TLSCONN_RECORD_MAX - got >= TLSCONN_RECORD_MAX)
				assert_false(tlsconn_pending(to));
		}
	}
	assert_int_equal(got, n);
	assert_memory_equal(src, dst, n);
	assert_true(eagain > 0); /* a record did not fit in the socket at least once */
	free(src);
	free(dst);
}

/* ---- tlsconn_handshake, tlsconn_read, tlsconn_write ---- */

static void test_data_both_ways(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, "server", path("ca.pem"), 1, "localhost");
	int rs, rc;
	pair_handshake(&p, &rs, &rc);
	if (rs || rc)
		fail_msg("handshake: server %d (%s), client %d (%s)", rs, tlsconn_why(p.s), rc, tlsconn_why(p.c));
	assert_string_equal(tlsconn_version(p.c), "TLSv1.3");
	assert_non_null(tlsconn_cipher(p.s));
	transfer(p.c, p.s, 3 << 20);
	transfer(p.s, p.c, 1 << 20);
	/* nothing more: EAGAIN, waiting to read */
	uint8_t b[TLSCONN_RECORD_MAX];
	assert_int_equal(tlsconn_read(p.s, b, sizeof b), MTR_EAGAIN);
	assert_int_equal(tlsconn_want(p.s), TLSCONN_WANT_READ);
	/* the client goes away: EOF is 0, not an error */
	close(p.fd[1]);
	p.fd[1] = -1;
	assert_int_equal(tlsconn_read(p.s, b, sizeof b), 0);
	pair_close(&p);
}

static void test_ip_address(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, "server", path("ca.pem"), 1, "127.0.0.1");
	int rs, rc;
	pair_handshake(&p, &rs, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
	pair_close(&p);
}

/* The client's handshake fails with `why` in its reason; the server's too. */
static void refused(const char *cert, const char *ca, const char *host, const char *why)
{
	struct pair p;
	pair_open(&p, cert, path(ca), 1, host);
	int rs, rc;
	pair_handshake(&p, &rs, &rc);
	assert_int_equal(rc, MTR_EIO);
	if (!strstr(tlsconn_why(p.c), why))
		fail_msg("%s: '%s' lacks '%s'", host, tlsconn_why(p.c), why);
	assert_false(tlsconn_not_tls(p.c));
	assert_int_equal(rs, MTR_EIO); /* the client's alert */
	assert_non_null(strstr(tlsconn_why(p.s), "alert"));
	pair_close(&p);
}

static void test_verify_reasons(void **state)
{
	(void)state;
	refused("server", "ca.pem", "db.example", "certificate verify failed: hostname mismatch");
	refused("server", "ca.pem", "10.1.2.3", "certificate verify failed: IP address mismatch");
	refused("server", "other.pem", "localhost", "certificate verify failed: unable to get local issuer");
	refused("foreign", "ca.pem", "localhost", "certificate verify failed: unable to get local issuer");
}

static void test_insecure(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, "foreign", NULL, 0, "db.example"); /* nothing matches: not checked */
	int rs, rc;
	pair_handshake(&p, &rs, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
	pair_close(&p);
}

static void test_not_tls(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, "server", path("ca.pem"), 1, "localhost");
	assert_int_equal(tlsconn_handshake(p.c), MTR_EAGAIN); /* the ClientHello is out */
	/* the "proxy" answers in clear: a frame of the client protocol */
	static const uint8_t bye[] = {0x0d, 0, 0, 0, 7, 0xfe, 0xff, 0xff, 0xff, 4, 0, 0, 0, 'n', 'o', 'p', 'e'};
	assert_int_equal(write(p.fd[0], bye, sizeof bye), (ssize_t)sizeof bye);
	assert_int_equal(tlsconn_handshake(p.c), MTR_EIO);
	assert_true(tlsconn_not_tls(p.c));
	assert_non_null(strstr(tlsconn_why(p.c), "does not speak TLS"));
	/* the bytes are still there for the caller to read (a BYE to show) */
	uint8_t b[64];
	assert_int_equal(recv(p.fd[1], b, sizeof b, MSG_DONTWAIT), (ssize_t)sizeof bye);
	pair_close(&p);
}

/* ---- tlsctx_server ---- */

static void server_refused(const char *cert, const char *key, const char *why)
{
	char err[512] = "", warn[512];
	struct tlsctx *t = NULL;
	assert_int_equal(tlsctx_server(path(cert), path(key), err, sizeof err, warn, sizeof warn, &t), MTR_ECONFIG);
	assert_null(t);
	if (!strstr(err, why))
		fail_msg("%s/%s: '%s' lacks '%s'", cert, key, err, why);
}

static void test_server_refusals(void **state)
{
	(void)state;
	server_refused("expired.pem", "expired.key", "proxy.tls_cert: the certificate in");
	server_refused("expired.pem", "expired.key", "expired on");
	server_refused("future.pem", "future.key", "is not valid before");
	server_refused("server.pem", "foreign.key", "proxy.tls_key: the key in");
	server_refused("server.pem", "nothere.key", "proxy.tls_key: cannot read");
	server_refused("nothere.pem", "server.key", "proxy.tls_cert: cannot read");
	server_refused("server.key", "server.key", "holds no usable PEM certificate");
	server_refused("server.pem", "server.pem", "holds no usable PEM private key");
	char err[512], warn[512];
	struct tlsctx *t;
	assert_int_equal(tlsctx_server(path("soon.pem"), path("soon.key"), err, sizeof err, warn, sizeof warn, &t), 0);
	assert_non_null(strstr(warn, "renew it soon"));
	tlsctx_free(t);
	assert_int_equal(tlsctx_server(path("server.pem"), path("server.key"), err, sizeof err, warn, sizeof warn, &t),
			 0);
	assert_string_equal(warn, "");
	tlsctx_free(t);
	assert_int_equal(tlsctx_client(path("nothere.pem"), 1, err, sizeof err, &t), MTR_EINVAL);
	assert_non_null(strstr(err, "cannot read it"));
	assert_int_equal(tlsctx_client(path("server.key"), 1, err, sizeof err, &t), MTR_EINVAL);
	assert_non_null(strstr(err, "no PEM certificate"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_both_ways), cmocka_unit_test(test_ip_address),
		cmocka_unit_test(test_verify_reasons), cmocka_unit_test(test_insecure),
		cmocka_unit_test(test_not_tls),        cmocka_unit_test(test_server_refusals),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	tlsconn_thread_done();
	return rc;
}
