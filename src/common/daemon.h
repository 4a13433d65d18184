/*
 * daemon.h - what metronomed and mtrproxy share around their object: the
 * log set-up, the signals, and the exit status.
 *
 * A daemon's main() reads its configuration and hands daemon_main() the
 * four calls of its object.  SIGTERM and SIGINT are blocked while open()
 * creates the object, so a stop request that arrives meanwhile is
 * delivered once the object exists; they then call stop() (which must be
 * async-signal-safe: server_stop, proxy_stop).  SIGPIPE is ignored.  run()
 * is expected to create its threads with every signal blocked, so that only
 * the main thread receives the stop signals.
 */
#ifndef MTR_DAEMON_H
#define MTR_DAEMON_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"

struct daemon_ops {
	int (*open)(const void *cfg, void **obj); /* 0 or a negative MTR_E* code */
	int (*run)(void *obj);                    /* until stopped: 0, or a code */
	void (*stop)(void *obj);                  /* from the signal handler */
	void (*close)(void *obj);
};

/*
 * Set the log threshold to log_level (unless MTR_LOG is set) and the log
 * tag, install the signal handlers, then open, run and close the object
 * made from cfg (not owned; it may be freed once daemon_main returns).
 * Returns the process exit status: 0 after a clean stop, 1 when open()
 * failed with MTR_ECONFIG, 2 on any other failure; each is logged.
 */
int daemon_main(const struct daemon_ops *ops, const void *cfg, int log_level, const char *tag);

/* The --help text of a daemon: its usage lines, what (a sentence or two,
 * newline-terminated), the keys[0..n) table, --gen-key and the exit
 * statuses. */
void daemon_usage(FILE *f, const char *name, const char *what, const struct conf_key *keys, size_t n);

#endif
