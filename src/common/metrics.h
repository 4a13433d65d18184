/*
 * metrics.h - the Prometheus text exposition format (version 0.0.4) and
 * latency histograms, for the daemons' /metrics endpoint
 * (doc/operations.md, "Figures").
 *
 * A daemon writes its page into a struct metrics_buf with one call per
 * metric family: metrics_counter / metrics_gauge (a HELP line, a TYPE line
 * and the sample), metrics_stat (a counter of a stats.h map, named from its
 * "module.member" name), metrics_hist (a histogram).  Pure: no I/O, no
 * clock; thread-safe as far as the histograms go (atomics), a buffer
 * belongs to one thread.
 *
 * Names: "metronome_" + the stats name with every byte outside
 * [a-zA-Z0-9_] turned into '_' ("ingest.drop_mem" ->
 * metronome_ingest_drop_mem_total); counters end in _total, gauges do not.
 */
#ifndef MTR_METRICS_H
#define MTR_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

#define METRICS_PREFIX "metronome_"

/* A growable text buffer.  Zero-initialize; free with metrics_buf_free.
 * After a failed allocation oom is set, later writes do nothing, and the
 * page must not be served. */
struct metrics_buf {
	char *p;
	size_t len, cap;
	int oom;
};
void metrics_buf_free(struct metrics_buf *b);
/* Append printf-formatted text. */
void metrics_printf(struct metrics_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The metric name of stats name `stat` ("paxos.elections") with suffix
 * ("_total" or "") into out (METRICS_PREFIX first); cut at outlen. */
void metrics_name(char *out, size_t outlen, const char *stat, const char *suffix);

/* One family with one sample: "# HELP name help", "# TYPE name counter",
 * "name value".  name is used as given (a full metric name). */
void metrics_counter(struct metrics_buf *b, const char *name, const char *help, uint64_t v);
void metrics_gauge(struct metrics_buf *b, const char *name, const char *help, double v);

/* A counter of a stats.h map: name from `stat` as metrics_name says; a
 * help text that contains "(gauge)" makes it a gauge (no _total).  help
 * NULL: "counter STAT". */
void metrics_stat(struct metrics_buf *b, const char *stat, const char *help, uint64_t v);

/* A stats_fn (stats.h) that writes each counter it is handed with
 * metrics_stat: arg is a struct metrics_stats whose help() names the
 * meaning of a counter (NULL: unknown). */
struct metrics_stats {
	struct metrics_buf *b;
	const char *(*help)(const char *stat);
};
void metrics_stats_put(void *arg, const char *stat, uint64_t v);

/*
 * A latency histogram: METRICS_HIST_N upper bounds in microseconds
 * (10 us .. 10 s, metrics_hist_bounds_us) and the +Inf bucket, the sum of
 * every observation and nothing else: the count is the sum of the buckets,
 * so that a page is always consistent (+Inf == _count) even while another
 * thread observes.  Zero-initialize.  One writer or several: every field is
 * atomic.
 */
#define METRICS_HIST_N 19
struct metrics_hist {
	_Atomic uint64_t bucket[METRICS_HIST_N + 1]; /* not cumulative; [N]: above the last bound */
	_Atomic uint64_t sum_us;
};
/* The upper bounds, in microseconds, increasing. */
extern const uint64_t metrics_hist_bounds_us[METRICS_HIST_N];
/* Count one observation of us microseconds. */
void metrics_hist_observe(struct metrics_hist *h, uint64_t us);
/* The family: HELP, TYPE histogram, name_bucket{le="..."} cumulative with
 * le in seconds, le="+Inf", name_sum (seconds), name_count. */
void metrics_hist(struct metrics_buf *b, const char *name, const char *help, const struct metrics_hist *h);

/* The histogram as stats (stats.h), for mtr_stats: "prefix.NAME_count",
 * "prefix.NAME_mean_us" (sum / count), "prefix.NAME_p50_us" and
 * "prefix.NAME_p99_us" (the upper bound of the bucket holding that
 * percentile; 0 without observations, the last bound + 1 above it). */
void metrics_hist_stats(const struct metrics_hist *h, const char *prefix, const char *name, stats_fn fn, void *arg);

/* The histograms of a stage map (stats.h: PROXY_STAGE_MAP, ...): struct
 * fields, the /metrics families "metronome_PROC_stage_MEMBER_seconds"
 * (HELP: the map's text) and the mtr_stats names "PROC.stage_MEMBER_*". */
#define METRICS_HIST_FIELD(member, text) struct metrics_hist member;
#define METRICS_STAGES_PAGE(MAP, proc, st, buf)                           \
	do {                                                               \
		struct metrics_buf *metrics__b = (buf);                    \
		const __typeof__(*(st)) *metrics__s = (st);                \
		const char *metrics__p = (proc);                           \
		MAP(METRICS__STAGE_PAGE)                                   \
	} while (0)
#define METRICS__STAGE_PAGE(member, text) \
	metrics_stage_page(metrics__b, metrics__p, #member, text, &metrics__s->member);
#define METRICS_STAGES_STATS(MAP, proc, st, fn, arg)                      \
	do {                                                               \
		const __typeof__(*(st)) *metrics__s = (st);                \
		const char *metrics__p = (proc);                           \
		stats_fn metrics__f = (fn);                                \
		void *metrics__a = (arg);                                  \
		MAP(METRICS__STAGE_STATS)                                  \
	} while (0)
#define METRICS__STAGE_STATS(member, text) \
	metrics_hist_stats(&metrics__s->member, metrics__p, "stage_" #member, metrics__f, metrics__a);
/* One stage's family: "metronome_PROC_stage_MEMBER_seconds". */
void metrics_stage_page(struct metrics_buf *b, const char *proc, const char *member, const char *help,
			const struct metrics_hist *h);

#endif
