/*
 * bench_parse.c - `mtrbench parse`: statements per second of our SQL parser
 * (sql_parse: tokenizer, parser, builder, classifier) and of
 * sqlite3_prepare_v2 on the same statements, in the same run.
 *
 * The statements are every `statement` and `query` record of the
 * sqllogictest files (--dir, default $MTR_SLT_DIR or
 * $MTR_SRCDIR/../shared/slt, else ../shared/slt) that sqlite3 prepares.  To
 * give sqlite3 the schema each statement needs, every file is first replayed
 * once into its own in-memory database (statements executed); the timed
 * loops then prepare (and finalize) each statement against the database of
 * its file with the final schema, and parse the same text with ours.
 * Statements whose prepare fails against the final schema (a table dropped
 * later in the file) are left out of both.  Several repetitions; medians.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "bench.h"
#include "sql.h"

struct bstmt {
	char *sql;
	size_t len;
	sqlite3 *db;
};

static struct bstmt *stmts;
static size_t n_stmts, cap_stmts;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_stmt(sqlite3 *db, const char *sql, size_t len)
{
	if (n_stmts == cap_stmts) {
		cap_stmts = cap_stmts ? cap_stmts * 2 : 1024;
		stmts = realloc(stmts, cap_stmts * sizeof *stmts);
		if (!stmts)
			exit(2);
	}
	stmts[n_stmts].sql = strndup(sql, len);
	stmts[n_stmts].len = len;
	stmts[n_stmts].db = db;
	n_stmts++;
}

/* Replay one slt file into db and collect its statements. */
static void load_file(const char *path, sqlite3 *db)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[8192], sql[65536];
	bool skip = false, in = false, stmt = false;
	size_t n = 0;
	for (;;) {
		char *l = fgets(line, sizeof line, f);
		size_t ll = l ? strlen(l) : 0;
		while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r'))
			line[--ll] = 0;
		if (in && (!l || ll == 0 || strncmp(line, "----", 4) == 0)) {
			sql[n] = 0;
			if (!skip) {
				sqlite3_stmt *st;
				const char *tail;
				if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) == SQLITE_OK && st) {
					add_stmt(db, sql, (size_t)(tail - sql));
					if (stmt)
						while (sqlite3_step(st) == SQLITE_ROW)
							;
					sqlite3_finalize(st);
				}
			}
			in = false;
			skip = false;
			n = 0;
		}
		if (!l)
			break;
		if (in) {
			if (n + ll + 2 < sizeof sql) {
				memcpy(sql + n, line, ll);
				n += ll;
				sql[n++] = '\n';
			}
			continue;
		}
		if (ll == 0) {
			skip = false;
		} else if (strncmp(line, "skipif ", 7) == 0) {
			skip |= strncmp(line + 7, "sqlite", 6) == 0;
		} else if (strncmp(line, "onlyif ", 7) == 0) {
			skip |= strncmp(line + 7, "sqlite", 6) != 0;
		} else if (strcmp(line, "halt") == 0 && !skip) {
			break;
		} else if (strncmp(line, "statement ", 10) == 0 || strncmp(line, "query ", 6) == 0) {
			in = true;
			stmt = line[0] == 's';
		}
	}
	fclose(f);
}

int bench_parse(int argc, char **argv)
{
	char dir[4096];
	unsigned reps = 7;
	const char *d = getenv("MTR_SLT_DIR"), *src = getenv("MTR_SRCDIR");
	if (d)
		snprintf(dir, sizeof dir, "%s", d);
	else
		snprintf(dir, sizeof dir, "%s/../shared/slt", src ? src : ".");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			snprintf(dir, sizeof dir, "%s", argv[++i]);
		} else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
			reps = (unsigned)atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: mtrbench parse [--dir SLTDIR] [--reps N]\n");
			return strcmp(argv[i], "--help") == 0 ? 0 : 2;
		}
	}
	if (reps < 1 || reps > 100)
		reps = 7;
	DIR *dh = opendir(dir);
	if (!dh && !d && !src) {
		snprintf(dir, sizeof dir, "../shared/slt");
		dh = opendir(dir);
	}
	if (!dh) {
		fprintf(stderr, "mtrbench parse: no sqllogictest corpus at %s (use --dir)\n", dir);
		return 2;
	}
	sqlite3 *dbs[256];
	unsigned ndb = 0;
	struct dirent *e;
	while ((e = readdir(dh)) && ndb < 256) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".test") != 0)
			continue;
		char path[8192];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		sqlite3_open(":memory:", &dbs[ndb]);
		load_file(path, dbs[ndb]);
		ndb++;
	}
	closedir(dh);
	/* keep only what prepares against the final schema */
	size_t k = 0;
	for (size_t i = 0; i < n_stmts; i++) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(stmts[i].db, stmts[i].sql, (int)stmts[i].len, &st, NULL) == SQLITE_OK && st) {
			stmts[k++] = stmts[i];
		} else {
			free(stmts[i].sql);
		}
		sqlite3_finalize(st);
	}
	n_stmts = k;
	fprintf(stderr, "mtrbench parse: %zu statements from %u files, %u repetitions\n", n_stmts, ndb, reps);
	if (!n_stmts)
		return 2;

	double ours[100], theirs[100];
	size_t total = 0;
	for (unsigned r = 0; r < reps; r++) {
		/* each repetition runs the corpus enough times to last ~0.2 s */
		unsigned loops = 20;
		double t0 = now_s();
		for (unsigned l = 0; l < loops; l++)
			for (size_t i = 0; i < n_stmts; i++) {
				struct sql_result *res;
				if (sql_parse(stmts[i].sql, stmts[i].len, &res) == 0) {
					total += res->n_stmts;
					sql_result_free(res);
				}
			}
		double t1 = now_s();
		for (unsigned l = 0; l < loops; l++)
			for (size_t i = 0; i < n_stmts; i++) {
				sqlite3_stmt *st;
				sqlite3_prepare_v2(stmts[i].db, stmts[i].sql, (int)stmts[i].len, &st, NULL);
				sqlite3_finalize(st);
			}
		double t2 = now_s();
		ours[r] = (double)loops * (double)n_stmts / (t1 - t0);
		theirs[r] = (double)loops * (double)n_stmts / (t2 - t1);
	}
	double mo = bench_median(ours, reps), mt = bench_median(theirs, reps);
	bench_figure("parse_statements", (double)n_stmts, "statements");
	bench_figure("parse_ours_stmts_per_s", mo, "stmt/s");
	bench_figure("parse_sqlite_stmts_per_s", mt, "stmt/s");
	bench_figure("parse_ratio", mo / mt, "x");
	for (size_t i = 0; i < n_stmts; i++)
		free(stmts[i].sql);
	free(stmts);
	for (unsigned i = 0; i < ndb; i++)
		sqlite3_close(dbs[i]);
	return total ? 0 : 1;
}
