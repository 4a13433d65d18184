/*
 * tlsconn.h - TLS for the client protocol (doc/protocol.md, "TLS"): a thin
 * layer over OpenSSL's libssl that both ends of a client connection use,
 * the proxy (server side, non-blocking, on its epoll loop) and
 * libmetronome (client side, poll-driven).  Nothing else of ours calls
 * OpenSSL (tests/layers.sh checks it).
 *
 * A context (struct tlsctx) holds the settings: TLS 1.2 at least (1.3
 * preferred: OpenSSL negotiates the highest), OpenSSL's default cipher
 * suites, no compression, no renegotiation, no session tickets.  A
 * connection (struct tlsconn) runs over a non-blocking stream socket it
 * does not own; its I/O goes through send(MSG_NOSIGNAL)/recv, never
 * write(2), so a peer that goes away never raises SIGPIPE in the process.
 *
 * Calls that would block return MTR_EAGAIN and tlsconn_want() says whether
 * the socket must become readable or writable; a failure returns MTR_EIO
 * with a sentence in tlsconn_why() ("certificate verify failed: hostname
 * mismatch").  OpenSSL's error queue is per thread: every call clears it
 * first and leaves it empty.
 */
#ifndef MTR_TLSCONN_H
#define MTR_TLSCONN_H

#include <stddef.h>

/* The largest plaintext of one TLS record.  tlsconn_read() given at least
 * this much room never leaves decrypted bytes buffered inside OpenSSL. */
#define TLSCONN_RECORD_MAX 16384

struct tlsctx;
struct tlsconn;

/*
 * A server context from PEM files: cert (the certificate, then any
 * intermediates) and key (its private key).  Refused, with one sentence in
 * err naming the key of the configuration (proxy.tls_cert / proxy.tls_key)
 * and what to do: a file that cannot be read or holds no PEM certificate
 * or key, a key that does not match the certificate, a certificate not yet
 * valid or expired.  A certificate that expires within 30 days is accepted
 * with a warning in warn (empty otherwise; may be NULL).  *out is owned by
 * the caller (tlsctx_free).  0 or MTR_ECONFIG (MTR_ENOMEM).
 */
int tlsctx_server(const char *cert, const char *key, char *err, size_t errlen, char *warn, size_t warnlen,
		  struct tlsctx **out);

/*
 * A client context.  ca: a PEM file of the certificates to trust (only
 * those), NULL for the system's trust store.  verify 0 skips every check of
 * the proxy's certificate (the URI's tls=insecure: encrypted, but anyone in
 * the path can pose as the proxy).  0, or MTR_EINVAL with err saying what
 * was wrong with ca (MTR_ENOMEM).
 */
int tlsctx_client(const char *ca, int verify, char *err, size_t errlen, struct tlsctx **out);

/* Free a context (NULL is fine); connections made from it keep it alive. */
void tlsctx_free(struct tlsctx *ctx);

/*
 * A TLS connection over the connected non-blocking socket fd (borrowed:
 * the caller closes it after tlsconn_free).  host NULL: the server side.
 * Otherwise the client side: host is the name (or IP address) the proxy's
 * certificate must carry, and the name sent in SNI.  NULL without memory.
 */
struct tlsconn *tlsconn_new(struct tlsctx *ctx, int fd, const char *host);

/* Free c (NULL is fine).  Sends nothing: a close_notify is not needed by
 * the client protocol, which frames its own messages. */
void tlsconn_free(struct tlsconn *c);

/* What a call that returned MTR_EAGAIN waits for. */
enum { TLSCONN_WANT_READ = 1, TLSCONN_WANT_WRITE = 2 };

/*
 * Advance the handshake.  0: done (tlsconn_read/write may be used);
 * MTR_EAGAIN: call again when tlsconn_want() is satisfied; MTR_EIO: failed
 * (tlsconn_why).  On the client side, a peer whose first byte is not a TLS
 * handshake or alert record fails at once and tlsconn_not_tls() is 1.
 */
int tlsconn_handshake(struct tlsconn *c);

/* Read up to n bytes of plaintext (reading records until the socket has no
 * more or less than TLSCONN_RECORD_MAX of room is left).  >0 bytes read, 0
 * the peer closed, MTR_EAGAIN, MTR_EIO. */
long tlsconn_read(struct tlsconn *c, void *buf, size_t n);

/* Write up to n bytes of plaintext.  >0 bytes taken, MTR_EAGAIN (call
 * again with the same bytes), MTR_EIO. */
long tlsconn_write(struct tlsconn *c, const void *buf, size_t n);

/* TLSCONN_WANT_READ or TLSCONN_WANT_WRITE after MTR_EAGAIN, else 0. */
int tlsconn_want(const struct tlsconn *c);

/* Whether decrypted bytes wait inside OpenSSL (read them before polling). */
int tlsconn_pending(const struct tlsconn *c);

/* Why the last call failed: one sentence, never NULL. */
const char *tlsconn_why(const struct tlsconn *c);

/* 1 when the handshake failed because the peer does not speak TLS. */
int tlsconn_not_tls(const struct tlsconn *c);

/* Free what OpenSSL keeps for the calling thread (its error queue, random
 * generators); OpenSSL makes them again when the thread uses it next.  For
 * a library whose caller may run one call in a short-lived thread and exit
 * the process while that thread is still ending: nothing is left behind. */
void tlsconn_thread_done(void);

/* The negotiated protocol ("TLSv1.3") and cipher suite, for logs. */
const char *tlsconn_version(const struct tlsconn *c);
const char *tlsconn_cipher(const struct tlsconn *c);

#endif
