/*
 * difftest.c - mtrslt --gen: the generated differential test.  Records of
 * the generator (gen.h) run on plain SQLite and on Metronome, one by one,
 * and every outcome is compared: success or the same error (SQLite's
 * message must appear in Metronome's), and for queries every value with
 * its type (difftest.h, doc/mtrslt.md "Generated differential test").
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "difftest.h"
#include "gen.h"
#include "metronome.h"

struct outcome {
	bool ok;
	int rc;
	char err[512];
	struct slt_result res;
};

struct cat {
	const char *name;
	unsigned long n, failed;
	unsigned long errors; /* records that failed on SQLite (expected or not) */
};

#define MAX_CATS 64

static void run_one(struct slt_backend *b, const struct gen_rec *r, struct outcome *o)
{
	b->params = r->params;
	b->nparams = r->nparams;
	slt_result_clear(&o->res);
	o->err[0] = 0;
	if (r->kind == GEN_EXEC) {
		o->rc = b->exec(b, r->sql);
	} else {
		o->rc = b->query(b, r->sql, "*", &o->res);
		if (o->rc == 0 && b->step_failed)
			o->rc = MTR_ESQL;
	}
	o->ok = o->rc == 0;
	if (!o->ok)
		snprintf(o->err, sizeof o->err, "%s", b->err);
	b->params = NULL;
	b->nparams = 0;
	/* a group that failed half-way: SQLite keeps the transaction open
	 * (Metronome applied nothing of it); end it the same way on both */
	if (r->txn && !o->ok)
		b->exec(b, "ROLLBACK");
}

static void show_params(const struct gen_rec *r)
{
	for (unsigned i = 0; i < r->nparams; i++) {
		const struct slt_param *v = &r->params[i];
		fprintf(stderr, "    param %u: ", i + 1);
		switch (v->type) {
		case 'I': fprintf(stderr, "%" PRId64 "\n", v->i); break;
		case 'R': fprintf(stderr, "%.17g\n", v->r); break;
		case 'T': fprintf(stderr, "'%.*s'\n", v->n, v->p); break;
		case 'B': fprintf(stderr, "blob of %d bytes\n", v->n); break;
		default: fprintf(stderr, "NULL\n"); break;
		}
	}
}

static void show_values(const char *who, const struct slt_result *res)
{
	fprintf(stderr, "    %s: %zu values:", who, res->n);
	for (size_t i = 0; i < res->n && i < 24; i++)
		fprintf(stderr, "%s%s", i % (res->ncols ? res->ncols : 1) ? " | " : "\n      ", res->values[i]);
	fprintf(stderr, "%s\n", res->n > 24 ? "\n      ..." : "");
}

/* Compare the two outcomes of r: true when they agree; else why. */
static bool compare(const struct gen_rec *r, struct outcome *a, struct outcome *b, char *why, size_t whylen)
{
	if (a->ok != b->ok) {
		snprintf(why, whylen, "sqlite %s, metronome %s", a->ok ? "succeeded" : "failed",
			 b->ok ? "succeeded" : "failed");
		return false;
	}
	if (!a->ok) {
		if (b->rc != MTR_ESQL && b->rc != MTR_ESYNTAX) {
			snprintf(why, whylen, "metronome failed with %s, not an SQL error", mtr_errname(b->rc));
			return false;
		}
		if (!strstr(b->err, a->err)) {
			snprintf(why, whylen, "different errors");
			return false;
		}
		return true;
	}
	if (r->kind != GEN_QUERY)
		return true;
	slt_result_sort(&a->res, r->sort);
	slt_result_sort(&b->res, r->sort);
	if (a->res.ncols != b->res.ncols && a->res.n) {
		snprintf(why, whylen, "%u columns, metronome %u", a->res.ncols, b->res.ncols);
		return false;
	}
	if (a->res.n != b->res.n) {
		size_t i = 0;
		while (i < a->res.n && i < b->res.n && !strcmp(a->res.values[i], b->res.values[i]))
			i++;
		snprintf(why, whylen, "%zu values, metronome %zu; first difference at value %zu: sqlite %s, metronome %s",
			 a->res.n, b->res.n, i + 1, i < a->res.n ? a->res.values[i] : "(none)",
			 i < b->res.n ? b->res.values[i] : "(none)");
		return false;
	}
	for (size_t i = 0; i < a->res.n; i++)
		if (strcmp(a->res.values[i], b->res.values[i]) != 0) {
			snprintf(why, whylen, "value %zu: sqlite %s, metronome %s", i + 1, a->res.values[i],
				 b->res.values[i]);
			return false;
		}
	return true;
}

/* --paranoid: after a write, every table must be equal (finds the write
 * that made them differ, when a later read shows it). */
static bool paranoid_check(struct slt_backend *lite, struct slt_backend *mb, char *why, size_t whylen)
{
	struct outcome a = { 0 }, b = { 0 };
	bool ok = true;
	static const char *const q[] = { "SELECT * FROM t0", "SELECT * FROM t1", "SELECT * FROM t2",
					 "SELECT * FROM t3", "SELECT * FROM lg",
					 "SELECT id, typeof(r), length(b), length(d) FROM nd" };
	for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
		struct gen_rec r = { .kind = GEN_QUERY, .sort = SLT_ROWSORT, .sql = q[i] };
		run_one(lite, &r, &a);
		run_one(mb, &r, &b);
		if (!compare(&r, &a, &b, why, whylen)) {
			size_t l = strlen(why);
			snprintf(why + l, whylen - l, " (after it, in: %s)", q[i]);
			ok = false;
			break;
		}
	}
	slt_result_free(&a.res);
	slt_result_free(&b.res);
	return ok;
}

static struct cat *cat_of(struct cat *cats, unsigned *ncats, const char *name)
{
	for (unsigned i = 0; i < *ncats; i++)
		if (!strcmp(cats[i].name, name))
			return &cats[i];
	if (*ncats == MAX_CATS)
		return &cats[MAX_CATS - 1];
	cats[*ncats] = (struct cat){ .name = name };
	return &cats[(*ncats)++];
}

static int cmp_cat(const void *x, const void *y)
{
	return strcmp(((const struct cat *)x)->name, ((const struct cat *)y)->name);
}

void diff_dump(const struct diff_opts *o)
{
	struct gen *g = gen_new(o->seed);
	if (!g)
		return;
	for (unsigned long i = 1; i <= o->count; i++) {
		const struct gen_rec *r = gen_next(g);
		if (!r)
			break;
		printf("-- %lu %s%s\n", i, r->cat,
		       r->expect == GEN_FAIL ? " (must fail)" : r->expect == GEN_REFUSED ? " (refused)" : "");
		for (unsigned k = 0; k < r->nparams; k++) {
			const struct slt_param *v = &r->params[k];
			if (v->type == 'I')
				printf("-- ?%u = %" PRId64 "\n", k + 1, v->i);
			else if (v->type == 'R')
				printf("-- ?%u = %.17g\n", k + 1, v->r);
			else if (v->type == 'T')
				printf("-- ?%u = '%.*s'\n", k + 1, v->n, v->p);
			else
				printf("-- ?%u = %s\n", k + 1, v->type == 'B' ? "(blob)" : "NULL");
		}
		printf("%s;\n", r->sql);
	}
	gen_free(g);
}

/* Wait until every member reports the same applied instance. */
static void settle(struct slt_backend *m)
{
	struct slt_result res = { 0 };
	char last[128] = "";
	for (int i = 0; i < 100; i++) {
		slt_result_clear(&res);
		if (m->query(m, "SELECT count(*), min(applied), max(applied) FROM mtr_members", "*", &res) != 0 ||
		    m->step_failed)
			break; /* not a cluster (sltproxy) */
		if (res.n == 3) {
			snprintf(last, sizeof last, "%s members, applied %s..%s", res.values[0] + 2, res.values[1] + 2,
				 res.values[2] + 2);
			if (!strcmp(res.values[1], res.values[2]))
				break;
		}
		usleep(200000);
	}
	printf("replicas: %s\n", last[0] ? last : "unknown");
	slt_result_free(&res);
}

unsigned long diff_run(struct slt_backend *lite, struct slt_backend *mb, const struct diff_opts *o,
		       volatile sig_atomic_t *interrupted)
{
	struct gen *g = gen_new(o->seed);
	struct outcome a = { 0 }, b = { 0 };
	struct cat cats[MAX_CATS];
	unsigned ncats = 0;
	unsigned long passed = 0, failed = 0, skipped = 0, shown = 0;
	struct timespec t0, t1;
	if (!g) {
		fprintf(stderr, "mtrslt: out of memory\n");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long i = 1; i <= o->count && !*interrupted; i++) {
		const struct gen_rec *r = gen_next(g);
		if (!r) {
			fprintf(stderr, "mtrslt: out of memory\n");
			failed++;
			break;
		}
		struct cat *c = cat_of(cats, &ncats, r->cat);
		char why[1024] = "";
		bool ok;
		c->n++;
		if (r->expect == GEN_REFUSED) {
			if (!mb) {
				skipped++;
				continue;
			}
			run_one(mb, r, &b);
			ok = b.rc == MTR_EREFUSED;
			if (!ok)
				snprintf(why, sizeof why, "metronome must refuse it, got %s", b.ok ? "success" : mtr_errname(b.rc));
		} else {
			run_one(lite, r, &a);
			if (!a.ok)
				c->errors++;
			if (r->expect == GEN_FAIL && a.ok) {
				ok = false;
				snprintf(why, sizeof why, "generator: SQLite accepted a statement meant to fail");
			} else if (!mb) {
				ok = true;
			} else {
				run_one(mb, r, &b);
				ok = r->expect == GEN_ANY || compare(r, &a, &b, why, sizeof why);
			}
		}
		if (ok && o->paranoid && mb)
			ok = paranoid_check(lite, mb, why, sizeof why);
		if (ok) {
			passed++;
			continue;
		}
		failed++;
		c->failed++;
		if (o->quiet || shown++ >= 20)
			continue;
		fprintf(stderr, "record %lu (%s): %s\n    %s\n", i, r->cat, why, r->sql);
		show_params(r);
		if (r->expect != GEN_REFUSED) {
			if (a.ok && r->kind == GEN_QUERY)
				show_values("sqlite", &a.res);
			else
				fprintf(stderr, "    sqlite: %s\n", a.ok ? "ok" : a.err);
		}
		if (mb) {
			if (b.ok && r->kind == GEN_QUERY)
				show_values("metronome", &b.res);
			else
				fprintf(stderr, "    metronome: %s\n", b.ok ? "ok" : b.err);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	qsort(cats, ncats, sizeof cats[0], cmp_cat);
	printf("  %-18s %6s %6s\n", "category", "count", "errors");
	for (unsigned i = 0; i < ncats; i++)
		printf("  %-18s %6lu %6lu%s\n", cats[i].name, cats[i].n, cats[i].errors, cats[i].failed ? " FAILED" : "");
	for (unsigned i = 0; i < ncats; i++)
		if (cats[i].failed)
			printf("  %s: %lu failed\n", cats[i].name, cats[i].failed);
	printf("generated: seed %" PRIu64 ", %lu records in %.1f s\n", o->seed, passed + failed + skipped,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (mb)
		settle(mb);
	printf("%lu passed, %lu failed\n", passed, failed);
	if (skipped)
		fprintf(stderr, "mtrslt: %lu refusal records skipped (no Metronome backend)\n", skipped);
	gen_free(g);
	slt_result_free(&a.res);
	slt_result_free(&b.res);
	return failed;
}
