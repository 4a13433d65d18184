/*
 * daemon.h - what metronomed and mtrproxy share around their object: the
 * log set-up, the signals, and the exit status.
 *
 * A daemon's main() reads its configuration and hands daemon_main() the
 * four calls of its object.  SIGTERM, SIGINT and SIGHUP are blocked while
 * open() creates the object (threads it starts inherit that mask), so a
 * stop request that arrives meanwhile is delivered once the object exists;
 * SIGTERM and SIGINT then call stop() (which must be async-signal-safe:
 * server_stop, proxy_stop), SIGHUP reopens log.file (log_reopen) and calls
 * reload() when the object has one (proxy_reload: the TLS certificate).
 * SIGPIPE is ignored.  run() is expected to create its threads with every
 * signal blocked, so that only the main thread receives the signals.
 */
#ifndef MTR_DAEMON_H
#define MTR_DAEMON_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"

/* The keys both daemons add to their tables (struct conf_key initializers);
 * each adds its own PREFIX.metrics_listen (server., proxy.) with
 * DAEMON_METRICS_KEY. */
#define DAEMON_METRICS_KEY(prefix)                                                                        \
	{ prefix ".metrics_listen", CONF_STRING, NULL,                                                    \
	  "ip:port or host:port of the HTTP endpoint with /metrics (Prometheus text), /readyz and /livez; " \
	  "unset: none (doc/operations.md)" }
#define DAEMON_KEYS                                                                                        \
	{ "log.file", CONF_STRING, NULL,                                                                   \
	  "append log lines to this file instead of stderr; SIGHUP reopens it (logrotate); unset: stderr " \
	  "(the journal under systemd)" }

struct metrics_buf;

struct daemon_ops {
	int (*open)(const void *cfg, void **obj); /* 0 or a negative MTR_E* code */
	int (*run)(void *obj);                    /* until stopped: 0, or a code */
	void (*stop)(void *obj);                  /* from the signal handler */
	void (*close)(void *obj);
	/* The answers of the HTTP endpoint (httpd.h), called on its threads
	 * between open() and close(). */
	void (*metrics)(void *obj, struct metrics_buf *b);
	int (*ready)(void *obj, char *why, size_t n);
	int (*live)(void *obj, char *why, size_t n);
	const char *metrics_key; /* the key metrics_listen comes from, for messages */
	void (*reload)(void *obj); /* on SIGHUP after the log reopen, from the signal
				    * handler (async-signal-safe); NULL: none */
};

/*
 * Set the log threshold to log_level (unless MTR_LOG is set) and the log
 * tag, send the log to log_file (NULL: stderr; one that cannot be opened
 * is logged and returns 1), install the signal handlers, then open, run and close the object
 * made from cfg (not owned; it may be freed once daemon_main returns).
 * With metrics_listen ("ip:port" or "host:port"; NULL or "": none) the
 * HTTP endpoint serves the object's metrics/ready/live from after open()
 * until before close(); an address it cannot use is logged and returns 1
 * (unresolvable, no port) or 2 (cannot bind).
 * Returns the process exit status: 0 after a clean stop, 1 when open()
 * failed with MTR_ECONFIG, 2 on any other failure; each is logged.
 */
int daemon_main(const struct daemon_ops *ops, const void *cfg, int log_level, const char *tag,
		const char *log_file, const char *metrics_listen);

/* The --help text of a daemon: its usage lines, what (a sentence or two,
 * newline-terminated), the keys[0..n) table, --gen-key and the exit
 * statuses. */
void daemon_usage(FILE *f, const char *name, const char *what, const struct conf_key *keys, size_t n);

#endif
