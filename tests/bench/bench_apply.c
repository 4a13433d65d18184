/*
 * bench_apply.c - `mtrbench apply`: items applied per second by the apply
 * module (src/server/apply.c) into a replica database in a temporary directory.
 *
 * Each item is one INSERT of (?1 integer, ?2 100-byte text) with a cached
 * prepared statement; instances of B items each (B = 1, 100, 1000 by
 * default), synchronous=NORMAL, for about --seconds (default 2) per batch
 * size.  Also the same with random() and datetime('now') in the statement,
 * to show the cost of the deterministic hooks, and with the items of 64
 * clients that each have 512 requests in flight (client id, request id and
 * floor set: the cost of keeping results for resends, doc/apply.md
 * "Resends"); and insert_64ranges, the same with the ids of each client in
 * a range of its own (as tests/tools/mtrload writes them: 64 places in the
 * table's B-tree take rows, and an instance dirties a page or more at
 * each).  Options: --seconds S,
 * --full (synchronous=FULL), --dir D (parent of the temporary directory),
 * --only NAME (one of insert, insert_det, insert_64clients, insert_64ranges,
 * raw), --batch B (the instance size of insert_64clients and
 * insert_64ranges,
 * 1000; e2e runs at 64 x 512 make 3,000-7,000 items an instance).
 *
 * The reference, in the same run: raw, one plain SQLite connection (WAL,
 * the same synchronous setting) running the same prepared INSERT with bound
 * values, 1,000 per transaction.  Besides items/s (wall clock), every run
 * prints apply_NAME_batchB_cpu_us_per_item: the CPU time of the process
 * (every thread: the checkpointer too) per item, which a loaded machine
 * disturbs far less than the wall clock; and the 1000-item runs print
 * apply_NAME_cost_us_per_item, that CPU time minus the raw run's: what
 * applying costs per item on top of SQLite executing the statement.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "apply.h"
#include "bench.h"
#include "util.h"

/* CPU time of the process (all threads), in ns. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double raw_cpu_us = 0; /* the raw run's CPU us per item, once measured */

static int mk_dir(const char *parent, char *dir, size_t n)
{
	snprintf(dir, n, "%s/mtrbench-apply-XXXXXX", parent);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	return 0;
}

static void rm_dir(const char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void report(const char *name, unsigned batch, uint64_t n, uint64_t instances, double el, uint64_t cpu)
{
	char fig[96];
	snprintf(fig, sizeof fig, "apply_%s_batch%u", name, batch);
	bench_figure(fig, (double)n / el, "items/s");
	snprintf(fig, sizeof fig, "apply_%s_batch%u_instances", name, batch);
	bench_figure(fig, (double)instances / el, "instances/s");
	double us = (double)cpu / 1e3 / (double)n;
	snprintf(fig, sizeof fig, "apply_%s_batch%u_cpu_us_per_item", name, batch);
	bench_figure(fig, us, "us");
	if (batch == 1000 && strcmp(name, "raw") == 0)
		raw_cpu_us = us;
	else if (batch == 1000 && raw_cpu_us > 0) {
		snprintf(fig, sizeof fig, "apply_%s_cost_us_per_item", name);
		bench_figure(fig, us - raw_cpu_us, "us");
	}
}

/* The reference: plain SQLite, the same prepared INSERT, 1,000 a transaction. */
static int run_raw(const char *parent, int full, double seconds)
{
	char dir[256], path[300];
	if (mk_dir(parent, dir, sizeof dir))
		return 1;
	snprintf(path, sizeof path, "%s/raw.db", dir);
	sqlite3 *db;
	sqlite3_stmt *ins = NULL;
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"
				  : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, k, v, r, at)", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO t(k, v) VALUES(?1, ?2)", -1, &ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "raw: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	char text[101];
	memset(text, 'x', 100);
	text[100] = 0;
	uint64_t n = 0, inst = 0, seq = 1;
	uint64_t t0 = now_mono_ns(), c0 = cpu_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
	while (now_mono_ns() < deadline) {
		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		for (unsigned i = 0; i < 1000; i++) {
			sqlite3_bind_int64(ins, 1, (sqlite3_int64)++seq);
			sqlite3_bind_text(ins, 2, text, 100, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE) {
				fprintf(stderr, "raw: %s\n", sqlite3_errmsg(db));
				return 1;
			}
			sqlite3_reset(ins);
		}
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			fprintf(stderr, "raw: %s\n", sqlite3_errmsg(db));
			return 1;
		}
		n += 1000;
		inst++;
	}
	double el = (double)(now_mono_ns() - t0) / 1e9;
	uint64_t cpu = cpu_ns() - c0;
	sqlite3_finalize(ins);
	sqlite3_close(db);
	report("raw", 1000, n, inst, el, cpu);
	rm_dir(dir);
	return 0;
}

/* ranges: the first parameter is the row id, client c's from c x 2^32 on */
static int run(const char *parent, int full, double seconds, unsigned batch, const char *sql, const char *name,
	       unsigned clients, int ranges)
{
	char dir[256];
	if (mk_dir(parent, dir, sizeof dir))
		return 1;
	struct apply_config cfg = {.dir = dir, .durability = full ? APPLY_SYNC_FULL : APPLY_SYNC_NORMAL,};
	struct apply *a;
	if (apply_open(&cfg, &a) != 0)
		return 1;
	struct wire_stmt ddl = {.sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, k, v, r, at)",
				.sql_len = (uint32_t)strlen("CREATE TABLE t(id INTEGER PRIMARY KEY, k, v, r, at)")};
	struct wire_item it0 = {.stream = 1, .seq = 1, .nstmt = 1, .stmts = &ddl};
	if (apply_instance(a, 1, &it0, 1, NULL, NULL) != 0)
		return 1;
	char text[101];
	memset(text, 'x', 100);
	text[100] = 0;
	struct wire_item *items = calloc(batch, sizeof *items);
	struct wire_stmt *st = calloc(batch, sizeof *st);
	struct wire_value *pv = calloc(2 * (size_t)batch, sizeof *pv);
	if (!items || !st || !pv)
		return 1;
	uint64_t inst = 1, n = 0, seq = 1;
	uint64_t req[64] = {0};
	uint64_t c0 = cpu_ns(), t0 = now_mono_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
	while (now_mono_ns() < deadline) {
		for (unsigned i = 0; i < batch; i++) {
			pv[2 * i].type = WIRE_V_INT;
			pv[2 * i].u.i = (int64_t)seq;
			pv[2 * i + 1].type = WIRE_V_TEXT;
			pv[2 * i + 1].u.b.p = text;
			pv[2 * i + 1].u.b.n = 100;
			st[i].sql = sql;
			st[i].sql_len = (uint32_t)strlen(sql);
			st[i].nparams = 2;
			st[i].params = &pv[2 * i];
			items[i].stream = 1;
			items[i].seq = ++seq;
			items[i].timestamp_us = 1700000000000000 + (int64_t)seq;
			items[i].seed = seq;
			items[i].nstmt = 1;
			items[i].stmts = &st[i];
			if (clients) {
				unsigned c = (unsigned)(seq % clients);
				items[i].client = 0x5eed0000u + c;
				items[i].request = ++req[c];
				items[i].floor = req[c] > 512 ? req[c] - 511 : 1;
				if (ranges)
					pv[2 * i].u.i = (int64_t)(((uint64_t)c << 32) + req[c]);
			}
		}
		if (apply_instance(a, ++inst, items, batch, NULL, NULL) != 0) {
			fprintf(stderr, "apply failed\n");
			return 1;
		}
		n += batch;
	}
	double el = (double)(now_mono_ns() - t0) / 1e9;
	uint64_t cpu = cpu_ns() - c0;
	report(name, batch, n, inst - 1, el, cpu);
	apply_close(a);
	free(items);
	free(st);
	free(pv);
	rm_dir(dir);
	return 0;
}

int bench_apply(int argc, char **argv)
{
	double seconds = 2;
	int full = 0;
	unsigned batch64 = 1000;
	const char *parent = "/tmp", *only = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--full") == 0)
			full = 1;
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			parent = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
			batch64 = (unsigned)atoi(argv[++i]);
	}
#define WANT(name) (!only || strcmp(only, name) == 0)
	if (run_raw(parent, full, seconds) != 0)
		return 1;
	static const unsigned batches[] = {1, 100, 1000};
	for (size_t b = 0; b < ARRAY_SIZE(batches) && WANT("insert"); b++)
		if (run(parent, full, seconds, batches[b], "INSERT INTO t(k, v) VALUES(?1, ?2)", "insert", 0, 0) != 0)
			return 1;
	if (WANT("insert_det") && run(parent, full, seconds, 1000,
		"INSERT INTO t(k, v, r, at) VALUES(?1, ?2, random(), datetime('now'))", "insert_det", 0, 0) != 0)
		return 1;
	if (WANT("insert_64clients") &&
	    run(parent, full, seconds, batch64, "INSERT INTO t(k, v) VALUES(?1, ?2)", "insert_64clients", 64, 0) != 0)
		return 1;
	if (WANT("insert_64ranges") &&
	    run(parent, full, seconds, batch64, "INSERT INTO t(id, v) VALUES(?1, ?2)", "insert_64ranges", 64, 1) != 0)
		return 1;
	return 0;
}
