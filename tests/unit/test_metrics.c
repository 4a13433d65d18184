/*
 * test_metrics.c - the Prometheus text writer and the latency histograms
 * (src/common/metrics.h): names made from stats names, HELP escaping,
 * counter and gauge families, the gauge marker, histogram buckets (bounds,
 * cumulative counts, +Inf == _count, the sum in seconds), and a buffer that
 * grows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

/* ---- metrics_name ---- */

static void test_name(void **state)
{
	char n[64];
	metrics_name(n, sizeof n, "ingest.drop_mem", "_total");
	assert_string_equal(n, "metronome_ingest_drop_mem_total");
	metrics_name(n, sizeof n, "server.drop.paxos-sender", "");
	assert_string_equal(n, "metronome_server_drop_paxos_sender");
	metrics_name(n, 16, "a.very.long.name", "_total"); /* cut, still terminated */
	assert_int_equal(strlen(n), 15);
}

/* ---- counters, gauges, metrics_stat ---- */

static void test_counter_gauge(void **state)
{
	struct metrics_buf b = {0};
	metrics_counter(&b, "metronome_x_total", "what \\ it\\ncounts\n", 42);
	metrics_gauge(&b, "metronome_y", "a level", 1.5);
	assert_false(b.oom);
	assert_string_equal(b.p, "# HELP metronome_x_total what \\\\ it\\\\ncounts\\n\n"
				 "# TYPE metronome_x_total counter\nmetronome_x_total 42\n"
				 "# HELP metronome_y a level\n# TYPE metronome_y gauge\nmetronome_y 1.5\n");
	metrics_buf_free(&b);
}

static void test_stat(void **state)
{
	struct metrics_buf b = {0};
	metrics_stat(&b, "ingest.items_held", "items stored and not released (gauge)", 7);
	metrics_stat(&b, "paxos.elections", "elections started", 3);
	metrics_stat(&b, "x.unknown", NULL, 1);
	assert_non_null(strstr(b.p, "# TYPE metronome_ingest_items_held gauge\nmetronome_ingest_items_held 7\n"));
	assert_non_null(strstr(b.p, "# TYPE metronome_paxos_elections_total counter\nmetronome_paxos_elections_total 3\n"));
	assert_non_null(strstr(b.p, "# HELP metronome_x_unknown_total counter x.unknown\n"));
	metrics_buf_free(&b);
}

/* ---- histograms ---- */

static void test_hist(void **state)
{
	static struct metrics_hist h; /* zero */
	metrics_hist_observe(&h, 50);      /* <= 100 us */
	metrics_hist_observe(&h, 100);     /* <= 100 us: bounds are inclusive */
	metrics_hist_observe(&h, 101);     /* <= 250 us */
	metrics_hist_observe(&h, 2000000); /* <= 2.5 s */
	metrics_hist_observe(&h, 99000000); /* above every bound */
	struct metrics_buf b = {0};
	metrics_hist(&b, "metronome_t_seconds", "time", &h);
	assert_false(b.oom);
	assert_non_null(strstr(b.p, "# TYPE metronome_t_seconds histogram\n"));
	assert_non_null(strstr(b.p, "metronome_t_seconds_bucket{le=\"0.0001\"} 2\n"));
	assert_non_null(strstr(b.p, "metronome_t_seconds_bucket{le=\"0.00025\"} 3\n"));
	assert_non_null(strstr(b.p, "metronome_t_seconds_bucket{le=\"1\"} 3\n"));
	assert_non_null(strstr(b.p, "metronome_t_seconds_bucket{le=\"2.5\"} 4\n"));
	assert_non_null(strstr(b.p, "metronome_t_seconds_bucket{le=\"10\"} 4\n"));
	assert_non_null(strstr(b.p, "metronome_t_seconds_bucket{le=\"+Inf\"} 5\n"));
	assert_non_null(strstr(b.p, "metronome_t_seconds_sum 101.000251\n"));
	assert_non_null(strstr(b.p, "metronome_t_seconds_count 5\n"));
	/* one bucket line per bound and +Inf */
	unsigned lines = 0;
	for (const char *p = b.p; (p = strstr(p, "_bucket{")) != NULL; p++)
		lines++;
	assert_int_equal(lines, METRICS_HIST_N + 1);
	for (unsigned i = 1; i < METRICS_HIST_N; i++)
		assert_true(metrics_hist_bounds_us[i] > metrics_hist_bounds_us[i - 1]);
	metrics_buf_free(&b);
}

/* metrics_hist_stats: count, mean, and the bucket bounds of p50 and p99 */
struct got {
	char names[8][64];
	uint64_t v[8];
	unsigned n;
};
static void got_put(void *arg, const char *name, uint64_t v)
{
	struct got *g = arg;
	assert_true(g->n < 8);
	snprintf(g->names[g->n], sizeof g->names[0], "%s", name);
	g->v[g->n++] = v;
}

static void test_hist_stats(void **state)
{
	(void)state;
	static struct metrics_hist h; /* zero */
	struct got g = {0};
	metrics_hist_stats(&h, "server", "stage_x", got_put, &g);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.names[0], "server.stage_x_count");
	assert_int_equal(g.v[0], 0);
	assert_int_equal(g.v[2], 0); /* no percentile without observations */
	for (int i = 0; i < 98; i++)
		metrics_hist_observe(&h, 40); /* <= 50 us */
	metrics_hist_observe(&h, 900);         /* <= 1 ms */
	metrics_hist_observe(&h, 99000000);    /* above every bound */
	memset(&g, 0, sizeof g);
	metrics_hist_stats(&h, "server", "stage_x", got_put, &g);
	assert_string_equal(g.names[1], "server.stage_x_mean_us");
	assert_int_equal(g.v[0], 100);
	assert_int_equal(g.v[1], (98 * 40 + 900 + 99000000) / 100);
	assert_string_equal(g.names[2], "server.stage_x_p50_us");
	assert_int_equal(g.v[2], 50);
	assert_string_equal(g.names[3], "server.stage_x_p99_us");
	assert_int_equal(g.v[3], 1000);
	metrics_hist_observe(&h, 99000000);
	memset(&g, 0, sizeof g);
	metrics_hist_stats(&h, "server", "stage_x", got_put, &g);
	assert_int_equal(g.v[3], metrics_hist_bounds_us[METRICS_HIST_N - 1] + 1); /* above the last bound */
}

/* ---- the buffer ---- */

static void test_buffer_grows(void **state)
{
	struct metrics_buf b = {0};
	char big[3000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	for (int i = 0; i < 100; i++)
		metrics_printf(&b, "%s%d\n", big, i);
	assert_false(b.oom);
	assert_int_equal(b.len, strlen(b.p));
	assert_int_equal(b.len, 100 * (sizeof big - 1) + 10 * 2 + 90 * 3);
	metrics_buf_free(&b);
	assert_null(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_counter_gauge),
		cmocka_unit_test(test_stat),
		cmocka_unit_test(test_hist),
		cmocka_unit_test(test_hist_stats),
		cmocka_unit_test(test_buffer_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
