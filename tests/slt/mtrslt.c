/*
 * mtrslt.c - the sqllogictest runner: runs test files through Metronome's
 * client library and checks every record (doc/mtrslt.md).
 *
 *   mtrslt [--sqlite | --uri URI] [--local-dir DIR] [--bindir DIR] [-v] [-q] PATH...
 *   mtrslt --gen N [--seed S] [--dump] [--sqlite | --uri URI] [--local-dir DIR] ...
 *
 * PATH is a .test file or a directory (its *.test files, sorted).  Every
 * file runs on plain SQLite (in-memory, in this process) and, unless
 * --sqlite, on Metronome (the cluster at URI, or a private local cluster
 * started for the run and stopped after it).  With Metronome a record counts
 * as failed only when SQLite passes it and Metronome does not; a record
 * SQLite itself fails counts as skipped, as do records excluded by
 * skipif/onlyif.  With --sqlite the records SQLite fails count as failed
 * (that mode checks the runner).  Output, on stdout: one line per file
 * "FILE: N passed, N failed, N skipped", then "N passed, N failed".  The
 * reasons for failures go to stderr.  Exit status: 0 when nothing failed,
 * 1 otherwise, 2 on a usage or setup error.
 *
 * --gen N runs the generated differential test instead of files: N records
 * of the seeded generator (gen.h), compared between plain SQLite and
 * Metronome (difftest.h); --dump only prints their SQL.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "difftest.h"
#include "localcluster.h"
#include "metronome.h"
#include "slt.h"

/* The engine name skipif/onlyif lines are matched against (Metronome is
 * SQLite as far as the corpus is concerned). */
#define SLT_ENGINE "sqlite"

/* The hash threshold of a file that sets none (select1.test relies on it;
 * the reference runner's default too). */
#define SLT_DEFAULT_THRESHOLD 8

struct totals {
	unsigned long passed, failed, skipped;
	unsigned long sqlite_failed; /* Metronome runs: records SQLite fails */
};

/* A label of one file and the hash of its first result, per engine. */
struct label {
	char name[64];
	char hash[33];
};

struct labels {
	struct label *v;
	size_t n, cap;
};

struct run {
	struct slt_backend *lite; /* always */
	struct slt_backend *mtr;  /* NULL with --sqlite */
	int verbose;
	int quiet;
	struct slt_result res;
	struct labels lab_lite, lab_mtr;
};

/* Set by SIGINT/SIGTERM: stop after the current record, then clean up (a
 * local cluster started for the run must not be left behind). */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *s = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? 2 * cap : 262144;
			char *p = realloc(s, cap + 1);
			if (!p) {
				free(s);
				fclose(f);
				return NULL;
			}
			s = p;
		}
		size_t k = fread(s + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		free(s);
		return NULL;
	}
	s[n] = 0;
	return s;
}

/* Compare (or remember) the result hash of a labelled query. */
static bool label_check(struct labels *l, const char *name, const char *hash, char *why, size_t whylen)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, name) != 0)
			continue;
		if (strcmp(l->v[i].hash, hash) == 0)
			return true;
		snprintf(why, whylen, "%s: result hash %s differs from the earlier %s", name, hash, l->v[i].hash);
		return false;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct label *p = realloc(l->v, cap * sizeof *p);
		if (!p)
			return true; /* cannot remember: do not fail the record for it */
		l->v = p;
		l->cap = cap;
	}
	snprintf(l->v[l->n].name, sizeof l->v[l->n].name, "%s", name);
	memcpy(l->v[l->n].hash, hash, 33);
	l->n++;
	return true;
}

/* Run one record on one backend: true when it passes; else why says why. */
static bool run_record(struct run *r, struct slt_backend *b, struct labels *lab, const struct slt_record *rec,
		       unsigned threshold, char *why, size_t whylen)
{
	int rc;
	switch (rec->kind) {
	case SLT_STATEMENT_OK:
		rc = b->exec(b, rec->sql);
		if (rc == 0)
			return true;
		snprintf(why, whylen, "statement failed: %s", b->err);
		return false;
	case SLT_STATEMENT_ERROR:
		if (b->exec(b, rec->sql) != 0)
			return true;
		snprintf(why, whylen, "statement succeeded, an error was expected");
		return false;
	case SLT_QUERY: {
		char hash[33];
		slt_result_clear(&r->res);
		rc = b->query(b, rec->sql, rec->types, &r->res);
		if (rc) {
			snprintf(why, whylen, "query failed: %s", b->err);
			return false;
		}
		if (!slt_result_check(&r->res, rec, threshold, hash, why, whylen))
			return false;
		return rec->label ? label_check(lab, rec->label, hash, why, whylen) : true;
	}
	default:
		snprintf(why, whylen, "not a record: %.80s", rec->text ? rec->text : "?");
		return false;
	}
}

static void show_failure(const struct run *r, const char *file, const struct slt_record *rec, const char *engine,
			 const char *why)
{
	if (r->quiet)
		return;
	fprintf(stderr, "%s:%u: %s: %s\n", file, rec->line, engine, why);
	if (r->verbose && rec->sql)
		fprintf(stderr, "    %.*s\n", 400, rec->sql);
}

/* Run one file; adds to t. 0, or -1 when the file cannot be read or a
 * backend cannot be reset (a setup error, counted and shown as one failed
 * record of the file). */
static int run_file(struct run *r, const char *path, const char *shown, struct totals *t)
{
	struct totals f = { 0 };
	char *text = slurp(path);
	if (!text) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
		printf("%s: 0 passed, 1 failed, 0 skipped\n", shown);
		t->failed++;
		return -1;
	}
	struct slt_backend *bs[2] = { r->lite, r->mtr };
	for (int i = 0; i < 2; i++) {
		if (bs[i] && bs[i]->reset(bs[i]) != 0) {
			fprintf(stderr, "%s: %s: cannot reset the database: %s\n", shown, bs[i]->name, bs[i]->err);
			printf("%s: 0 passed, 1 failed, 0 skipped\n", shown);
			free(text);
			t->failed++;
			return -1;
		}
	}
	r->lab_lite.n = r->lab_mtr.n = 0;
	struct slt_reader rd;
	struct slt_record rec;
	unsigned threshold = SLT_DEFAULT_THRESHOLD;
	int got = 0;
	slt_reader_init(&rd, text, SLT_ENGINE);
	while (!interrupted && (got = slt_reader_next(&rd, &rec)) == 1) {
		if (rec.kind == SLT_HASH_THRESHOLD) {
			if (!rec.skip)
				threshold = rec.threshold;
			continue;
		}
		if (rec.skip) {
			f.skipped++;
			continue;
		}
		char why[1024];
		bool lite_ok = run_record(r, r->lite, &r->lab_lite, &rec, threshold, why, sizeof why);
		if (!r->mtr) {
			if (lite_ok) {
				f.passed++;
			} else {
				f.failed++;
				show_failure(r, shown, &rec, "sqlite", why);
			}
			continue;
		}
		if (!lite_ok && r->verbose)
			fprintf(stderr, "%s:%u: sqlite fails it (skipped): %s\n", shown, rec.line, why);
		bool mtr_ok = run_record(r, r->mtr, &r->lab_mtr, &rec, threshold, why, sizeof why);
		if (!lite_ok) {
			f.skipped++;
			f.sqlite_failed++;
		} else if (mtr_ok) {
			f.passed++;
		} else {
			f.failed++;
			show_failure(r, shown, &rec, "metronome", why);
		}
	}
	if (got < 0) {
		fprintf(stderr, "%s: out of memory\n", shown);
		f.failed++;
	}
	slt_reader_free(&rd);
	free(text);
	printf("%s: %lu passed, %lu failed, %lu skipped\n", shown, f.passed, f.failed, f.skipped);
	fflush(stdout);
	if (f.sqlite_failed)
		fprintf(stderr, "%s: %lu records that SQLite itself fails are counted as skipped\n", shown,
			f.sqlite_failed);
	t->passed += f.passed;
	t->failed += f.failed;
	t->skipped += f.skipped;
	t->sqlite_failed += f.sqlite_failed;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run a file, or every *.test file of a directory in name order. */
static int run_path(struct run *r, const char *path, struct totals *t)
{
	DIR *d = opendir(path);
	if (!d) {
		if (errno != ENOTDIR) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			t->failed++;
			return -1;
		}
		const char *base = strrchr(path, '/');
		return run_file(r, path, base ? base + 1 : path, t);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l <= 5 || strcmp(e->d_name + l - 5, ".test") != 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			char **p = realloc(names, cap * sizeof *p);
			if (!p)
				break;
			names = p;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof names[0], cmp_name);
	for (size_t i = 0; i < n; i++) {
		char full[4096];
		if (interrupted) {
			free(names[i]);
			continue;
		}
		snprintf(full, sizeof full, "%s/%s", path, names[i]);
		run_file(r, full, names[i], t);
		free(names[i]);
	}
	free(names);
	if (n == 0)
		fprintf(stderr, "%s: no .test files\n", path);
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/*
 * Where the daemons are when mtrslt runs from a build tree: it is
 * tests/slt/mtrslt and they are src/metronomed and src/mtrproxy.  Empty
 * when they are not there (localcluster then looks in $MTR_BINDIR, next to
 * the program and in $PATH).
 */
static void build_tree_bindir(char *out, size_t outlen)
{
	char self[4096], p[4200];
	ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
	out[0] = 0;
	if (k <= 0)
		return;
	self[k] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = 0;
	snprintf(p, sizeof p, "%s/../../src/metronomed", self);
	if (access(p, X_OK) != 0)
		return;
	snprintf(p, sizeof p, "%s/../../src/mtrproxy", self);
	if (access(p, X_OK) != 0)
		return;
	snprintf(out, outlen, "%s/../../src", self);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrslt [--sqlite | --uri URI] [--local-dir DIR] [--bindir DIR] [-v] [-q] PATH...\n"
		   "       mtrslt --gen N [--seed S] [--dump] [--sqlite | --uri URI] [--local-dir DIR] ...\n"
		   "  PATH             a sqllogictest file, or a directory of *.test files\n"
		   "  --gen N          run N generated records instead (the differential test)\n"
		   "  --seed S         the generator's seed (default: from the clock; printed)\n"
		   "  --dump           print the generated SQL and exit\n"
		   "  --paranoid       compare every table after every write (finds the first bad one)\n"
		   "  --sqlite         run on plain SQLite only (checks the runner)\n"
		   "  --uri URI        the Metronome cluster (mtr://host:port?consistency=session);\n"
		   "                   without it a private local cluster is started and stopped\n"
		   "  --local-dir DIR  directory of that local cluster (default: a new temporary one)\n"
		   "  --bindir DIR     where metronomed and mtrproxy are (default: the build tree,\n"
		   "                   $MTR_BINDIR, next to mtrslt, $PATH)\n"
		   "  -v               show the SQL of failed records and what SQLite fails\n"
		   "  -q               no failure details\n"
		   "Every table, view, index and trigger of the cluster's database is dropped\n"
		   "before each file.  See doc/mtrslt.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sqlite", no_argument, NULL, 's' },     { "uri", required_argument, NULL, 'u' },
		{ "local-dir", required_argument, NULL, 'd' }, { "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },      { "help", no_argument, NULL, 'h' },
		{ "bindir", required_argument, NULL, 'b' },
		{ "gen", required_argument, NULL, 'g' },  { "seed", required_argument, NULL, 'S' },
		{ "dump", no_argument, NULL, 'D' },      
		{ "paranoid", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct run r = { 0 };
	const char *uri = NULL, *local_dir = NULL, *bindir = NULL;
	bool sqlite_only = false, gen = false, dump = false, seeded = false;
	struct diff_opts dopt = { 0 };
	int c;
	while ((c = getopt_long(argc, argv, "svqhu:d:b:", opts, NULL)) != -1) {
		switch (c) {
		case 's': sqlite_only = true; break;
		case 'u': uri = optarg; break;
		case 'd': local_dir = optarg; break;
		case 'b': bindir = optarg; break;
		case 'v': r.verbose = 1; break;
		case 'q': r.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'g': gen = true; dopt.count = strtoul(optarg, NULL, 10); break;
		case 'S': seeded = true; dopt.seed = strtoull(optarg, NULL, 0); break;
		case 'D': dump = true; break;
		case 'P': dopt.paranoid = true; break;
		default: usage(stderr); return 2;
		}
	}
	if ((!gen && optind >= argc) || (gen && optind < argc) || (sqlite_only && uri)) {
		usage(stderr);
		return 2;
	}
	if (gen && !seeded) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		dopt.seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
		dopt.seed %= 1000000000u; /* short enough to type */
	}
	if (gen && dump) {
		diff_dump(&dopt);
		return 0;
	}
	if (gen) {
		printf("seed %" PRIu64 " (replay: --seed %" PRIu64 ")\n", dopt.seed, dopt.seed);
		fflush(stdout);
	}
	dopt.quiet = r.quiet;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	char err[512];
	if (slt_sqlite_open(&r.lite, err, sizeof err) != 0) {
		fprintf(stderr, "mtrslt: %s\n", err);
		return 2;
	}

	/* Metronome: the cluster at uri, or a private local one. */
	struct localcluster lc = { 0 };
	bool lc_up = false;
	char tmpdir[64] = "";
	if (!sqlite_only && !uri) {
		if (!local_dir) {
			const char *t = getenv("TMPDIR");
			snprintf(tmpdir, sizeof tmpdir, "%s/mtrslt-XXXXXX", t && strlen(t) < 40 ? t : "/tmp");
			if (!mkdtemp(tmpdir)) {
				fprintf(stderr, "mtrslt: cannot create %s: %s\n", tmpdir, strerror(errno));
				r.lite->close(r.lite);
				return 2;
			}
			local_dir = tmpdir;
		}
		char tree[4200];
		if (!bindir && !getenv("MTR_BINDIR")) {
			build_tree_bindir(tree, sizeof tree);
			if (tree[0])
				bindir = tree;
		}
		int rc = localcluster_init(&lc, local_dir, bindir);
		if (rc == 0 && !getenv("MTR_LOCAL_PORT")) {
			/* not the Quick start's ports: that cluster may be running */
			lc.proxy_port = 7450;
			lc.server_port = 7551;
		}
		if (rc == 0)
			rc = localcluster_up(&lc, 30000, err, sizeof err);
		else
			snprintf(err, sizeof err, "%s", mtr_strerror(rc));
		if (rc != 0) {
			fprintf(stderr, "mtrslt: cannot start a local cluster in %s: %s\n", local_dir, err);
			if (lc.started)
				localcluster_down(&lc, 10000);
			if (tmpdir[0])
				nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
			r.lite->close(r.lite);
			return 2;
		}
		lc_up = lc.started;
		uri = lc.uri;
	}
	if (!sqlite_only && slt_mtr_open(uri, &r.mtr, err, sizeof err) != 0) {
		fprintf(stderr, "mtrslt: %s\n", err);
		if (lc_up)
			localcluster_down(&lc, 10000);
		if (tmpdir[0])
			nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		r.lite->close(r.lite);
		return 2;
	}

	struct totals t = { 0 };
	if (gen) {
		if (r.mtr && r.mtr->reset(r.mtr) != 0) {
			fprintf(stderr, "mtrslt: cannot empty the database: %s\n", r.mtr->err);
			t.failed++;
		} else {
			t.failed += diff_run(r.lite, r.mtr, &dopt, &interrupted);
		}
		if (interrupted) {
			fprintf(stderr, "mtrslt: interrupted\n");
			t.failed++;
		}
		goto done;
	}
	for (int i = optind; i < argc && !interrupted; i++)
		run_path(&r, argv[i], &t);
	if (interrupted) {
		fprintf(stderr, "mtrslt: interrupted\n");
		t.failed++;
	}
	printf("%lu passed, %lu failed\n", t.passed, t.failed);
done:
	if (t.skipped)
		fprintf(stderr, "mtrslt: %lu records skipped (%lu of them because SQLite itself fails them)\n",
			t.skipped, t.sqlite_failed);

	if (r.mtr)
		r.mtr->close(r.mtr);
	r.lite->close(r.lite);
	if (lc_up)
		localcluster_down(&lc, 10000);
	if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	slt_result_free(&r.res);
	free(r.lab_lite.v);
	free(r.lab_mtr.v);
	return t.failed ? 1 : 0;
}
