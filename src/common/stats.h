/*
 * stats.h - counters as (name, value) pairs, declared once per module.
 *
 * A module declares its counters as X(member, "meaning") in one map; the
 * struct fields come from it (STATS_FIELD) and so does the walk that hands
 * every counter to a stats_fn (STATS_EACH).  The server collects every
 * module's counters this way for the mtr_stats table (doc/apply.md,
 * "Cluster tables"), named "module.member" ("ingest.dup").
 */
#ifndef MTR_STATS_H
#define MTR_STATS_H

#include <stdint.h>
#include <stdio.h>

/* Receives one counter: name (valid during the call) and its value. */
typedef void (*stats_fn)(void *arg, const char *name, uint64_t value);

/* Struct fields from a map: struct x_stats { X_STATS_MAP(STATS_FIELD) }; */
#define STATS_FIELD(member, text) uint64_t member;

/* Hand fn the counter "prefix.name" with value v. */
static inline void stats_put(stats_fn fn, void *arg, const char *prefix, const char *name, uint64_t v)
{
	char full[96];
	if (snprintf(full, sizeof full, "%s.%s", prefix, name) >= (int)sizeof full)
		full[sizeof full - 1] = 0; /* names are short; a long one is cut */
	fn(arg, full, v);
}

/* Hand every counter of *st (a struct made from MAP) to fn as
 * "prefix.member". */
#define STATS_EACH(MAP, prefix, st, fn, arg)                                                             \
	do {                                                                                             \
		const char *stats__p = (prefix);                                                         \
		const __typeof__(*(st)) *stats__s = (st);                                                \
		stats_fn stats__f = (fn);                                                                \
		void *stats__a = (arg);                                                                  \
		MAP(STATS__PUT)                                                                          \
	} while (0)
#define STATS__PUT(member, text) stats_put(stats__f, stats__a, stats__p, #member, stats__s->member);

/*
 * The stages of one write, each a latency histogram (metrics.h,
 * METRICS_STAGES): X(member, "what is timed").  /metrics shows
 * metronome_proxy_stage_MEMBER_seconds and metronome_server_stage_
 * MEMBER_seconds; mtr_stats "proxy.stage_MEMBER_count", "..._mean_us",
 * "..._p50_us", "..._p99_us" (metrics_hist_stats).  doc/performance.md,
 * "Where the time of one write goes", reads them.  The proxy's and the
 * server's clocks are never compared: each stage is timed in one process.
 */
#define PROXY_STAGE_MAP(X)                                                                                \
	X(send, "a write's QUERY read -> its item handed to the transport")                            \
	X(servers, "a write's item sent -> its first RESULT back (the servers' part and the network)") \
	X(answer, "an answer queued for a client (its output was empty) -> the output written")
#define SERVER_STAGE_MAP(X)                                                                                \
	X(ingest, "datagrams with new items received -> the ingest commit that holds them (one per commit)") \
	X(order, "the newest ingest commit (disk: items received) -> an instance chosen here (one write in flight)") \
	X(propose, "leader: its newest ingest commit (disk: items received) -> a fresh instance proposed")  \
	X(round, "leader: a fresh instance proposed -> chosen (phase 2 with the acceptors)")                \
	X(persist, "an acceptor's accept made durable (disk: the group commit of items and accept records)") \
	X(queue, "an instance chosen -> the apply thread starts it (its items copied out of the log)")      \
	X(result, "an instance applied -> its RESULT datagrams queued for the proxies")

#endif
