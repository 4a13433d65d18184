/*
 * metrics.c - the Prometheus text exposition format and latency
 * histograms (metrics.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

const uint64_t metrics_hist_bounds_us[METRICS_HIST_N] = {
	10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

void metrics_buf_free(struct metrics_buf *b)
{
	free(b->p);
	*b = (struct metrics_buf){0};
}

void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 8192;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void metrics_name(char *out, size_t outlen, const char *stat, const char *suffix)
{
	size_t n = (size_t)snprintf(out, outlen, "%s%s%s", METRICS_PREFIX, stat, suffix);
	if (n >= outlen)
		n = outlen - 1;
	for (size_t i = sizeof METRICS_PREFIX - 1; i < n; i++) {
		char c = out[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			out[i] = '_';
	}
}

/* HELP text: backslash and newline escaped, as the format asks. */
static void put_help(struct metrics_buf *b, const char *name, const char *help, const char *type)
{
	metrics_printf(b, "# HELP %s ", name);
	for (const char *c = help; *c; c++) {
		if (*c == '\\')
			metrics_printf(b, "\\\\");
		else if (*c == '\n')
			metrics_printf(b, "\\n");
		else
			metrics_printf(b, "%c", *c);
	}
	metrics_printf(b, "\n# TYPE %s %s\n", name, type);
}

void metrics_counter(struct metrics_buf *b, const char *name, const char *help, uint64_t v)
{
	put_help(b, name, help, "counter");
	metrics_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

void metrics_gauge(struct metrics_buf *b, const char *name, const char *help, double v)
{
	put_help(b, name, help, "gauge");
	metrics_printf(b, "%s %.17g\n", name, v);
}

void metrics_stat(struct metrics_buf *b, const char *stat, const char *help, uint64_t v)
{
	char name[160], dflt[128];
	if (help == NULL) {
		snprintf(dflt, sizeof dflt, "counter %s", stat);
		help = dflt;
	}
	int gauge = strstr(help, "(gauge)") != NULL;
	metrics_name(name, sizeof name, stat, gauge ? "" : "_total");
	if (gauge)
		metrics_gauge(b, name, help, (double)v);
	else
		metrics_counter(b, name, help, v);
}

void metrics_stats_put(void *arg, const char *stat, uint64_t v)
{
	struct metrics_stats *m = arg;
	metrics_stat(m->b, stat, m->help ? m->help(stat) : NULL, v);
}

void metrics_hist_observe(struct metrics_hist *h, uint64_t us)
{
	unsigned i = 0;
	while (i < METRICS_HIST_N && us > metrics_hist_bounds_us[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void metrics_hist(struct metrics_buf *b, const char *name, const char *help, const struct metrics_hist *h)
{
	put_help(b, name, help, "histogram");
	uint64_t cum = 0;
	for (unsigned i = 0; i <= METRICS_HIST_N; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		if (i < METRICS_HIST_N)
			metrics_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)metrics_hist_bounds_us[i] / 1e6,
				       (unsigned long long)cum);
		else
			metrics_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	metrics_printf(b, "%s_sum %.6f\n%s_count %llu\n", name,
		       (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
		       (unsigned long long)cum);
}

void metrics_hist_stats(const struct metrics_hist *h, const char *prefix, const char *name, stats_fn fn, void *arg)
{
	uint64_t b[METRICS_HIST_N + 1], n = 0;
	for (unsigned i = 0; i <= METRICS_HIST_N; i++)
		n += b[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
	uint64_t sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
	static const struct {
		const char *suffix;
		unsigned pct;
	} q[] = {{"p50_us", 50}, {"p99_us", 99}};
	char full[80];
	snprintf(full, sizeof full, "%s_count", name);
	stats_put(fn, arg, prefix, full, n);
	snprintf(full, sizeof full, "%s_mean_us", name);
	stats_put(fn, arg, prefix, full, n ? sum / n : 0);
	for (unsigned k = 0; k < sizeof q / sizeof q[0]; k++) {
		uint64_t v = 0;
		if (n > 0) {
			/* the rank of the percentile, 1-based, rounded up */
			uint64_t rank = (n * q[k].pct + 99) / 100, acc = 0;
			unsigned i = 0;
			while (i < METRICS_HIST_N && (acc += b[i]) < rank)
				i++;
			v = i < METRICS_HIST_N ? metrics_hist_bounds_us[i] : metrics_hist_bounds_us[METRICS_HIST_N - 1] + 1;
		}
		snprintf(full, sizeof full, "%s_%s", name, q[k].suffix);
		stats_put(fn, arg, prefix, full, v);
	}
}

void metrics_stage_page(struct metrics_buf *b, const char *proc, const char *member, const char *help,
			const struct metrics_hist *h)
{
	char name[128];
	snprintf(name, sizeof name, METRICS_PREFIX "%s_stage_%s_seconds", proc, member);
	metrics_hist(b, name, help, h);
}
