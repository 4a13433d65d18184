/*
 * statstab.h - the last counters of every process, for the mtr_stats table.
 *
 * The network thread of a server puts its own counters once a second and
 * the records of every STATS datagram it receives (wire_server.h) from the
 * other servers and from the proxies; any thread reads the table with
 * statstab_fill (the cluster tables' provider, clustervt.h).  Bounded
 * (DESIGN.md invariant 10): at most STATSTAB_MAX_PROCS processes, the one
 * heard from least recently is evicted first, and at most
 * STATSTAB_MAX_NAMES counters each, further names are ignored.  A mutex
 * makes every call thread-safe.
 */
#ifndef MTR_STATSTAB_H
#define MTR_STATSTAB_H

#include <stdint.h>

#include "clustervt.h"
#include "wire_server.h"

#define STATSTAB_MAX_PROCS 64
#define STATSTAB_MAX_NAMES 512
#define STATSTAB_PROC_MAX 48 /* bytes of a process name, NUL included ("proxy N@IP:PORT") */

struct statstab;

/* A new empty table, or NULL when out of memory. */
struct statstab *statstab_new(void);

/* Free it; NULL is fine. */
void statstab_free(struct statstab *t);

/* Set counter name (name_len bytes, at most WIRE_STAT_NAME_MAX) of process
 * proc ("server 1", "proxy 256") to value, at now_ms (monotonic clock).  A
 * new process may evict the least recently heard one.  0 or MTR_ENOMEM. */
int statstab_put(struct statstab *t, const char *proc, const char *name, unsigned name_len, uint64_t value,
		 uint64_t now_ms);

/* Forget process proc (a server that left, a proxy gone quiet). */
void statstab_forget(struct statstab *t, const char *proc);

/* Forget every process not heard from since before now_ms - max_age_ms. */
void statstab_expire(struct statstab *t, uint64_t now_ms, uint64_t max_age_ms);

/* Append one mtr_stats row (process, name, value, age_ms) per counter to
 * sink, processes in name order, counters in the order they first came.
 * 0 or the sink's error. */
int statstab_fill(struct statstab *t, uint64_t now_ms, struct clustervt_sink *sink);

#endif
