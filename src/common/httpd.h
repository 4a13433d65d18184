/*
 * httpd.h - the daemons' small HTTP endpoint (server.metrics_listen,
 * proxy.metrics_listen): GET /metrics (Prometheus text), /livez and
 * /readyz (doc/operations.md, "Health endpoints"), served by libmicrohttpd
 * on threads of its own.
 *
 * The callbacks run on those threads, never on the daemon's event loop:
 * they must read only what the daemon publishes for other threads (copies
 * under a mutex, atomics).  Bounded (DESIGN.md invariant 10): at most
 * HTTPD_MAX_CONNS connections at once (HTTPD_MAX_PER_IP from one address),
 * each closed after HTTPD_TIMEOUT_S idle seconds; request bodies are not
 * read.  Only GET and HEAD of the three paths are answered (404 otherwise,
 * 405 for another method).
 *
 * Linked into metronomed and mtrproxy only, with daemon.c (the libraries
 * do not use libmicrohttpd).
 */
#ifndef MTR_HTTPD_H
#define MTR_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

#define HTTPD_MAX_CONNS 16
#define HTTPD_MAX_PER_IP 8
#define HTTPD_TIMEOUT_S 10

struct httpd_ops {
	void *arg;
	/* /metrics: append the page to b (b->oom set: 500). */
	void (*metrics)(void *arg, struct metrics_buf *b);
	/* /readyz and /livez: 1 (200 "ok: why") or 0 (503 "not ready: why");
	 * why gets one line (no newline). */
	int (*ready)(void *arg, char *why, size_t n);
	int (*live)(void *arg, char *why, size_t n);
};

struct httpd;

/* Listen on addr, "a.b.c.d:port" or "host:port" (the host resolved now
 * to its first IPv4 address; the port is required), and serve.  ops is
 * copied.  *out is owned by the caller (httpd_stop).  0, MTR_ECONFIG (addr
 * is not an address or does not resolve) or MTR_EIO (cannot bind), with
 * the reason logged naming key (the setting addr came from). */
int httpd_start(const char *key, const char *addr, const struct httpd_ops *ops, struct httpd **out);

/* The bound port. */
uint16_t httpd_port(const struct httpd *h);

/* Stop serving, join the threads, free h.  NULL is fine. */
void httpd_stop(struct httpd *h);

#endif
