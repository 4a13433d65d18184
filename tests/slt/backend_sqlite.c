/*
 * backend_sqlite.c - the plain SQLite backend of mtrslt: a private
 * in-memory database, replaced by a new one at every reset (so each file
 * starts empty, as in SQLite's own sqllogictest runner).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "backend.h"
#include "metronome.h"

struct sqlite_backend {
	struct slt_backend b; /* first: the public part */
	sqlite3 *db;
};

static int sqlite_fail(struct sqlite_backend *s, int code)
{
	snprintf(s->b.err, sizeof s->b.err, "%s", s->db ? sqlite3_errmsg(s->db) : "no database");
	return code;
}

static int sqlite_reset(struct slt_backend *b)
{
	struct sqlite_backend *s = (struct sqlite_backend *)b;
	sqlite3_close(s->db);
	s->db = NULL;
	if (sqlite3_open(":memory:", &s->db) != SQLITE_OK)
		return sqlite_fail(s, MTR_EIO);
	return 0;
}

/* Bind b->params to st's parameters (backend.h). */
static void sqlite_bind(struct slt_backend *b, sqlite3_stmt *st)
{
	int n = sqlite3_bind_parameter_count(st);
	for (int i = 0; i < n && i < (int)b->nparams; i++) {
		const struct slt_param *v = &b->params[i];
		switch (v->type) {
		case 'I': sqlite3_bind_int64(st, i + 1, v->i); break;
		case 'R': sqlite3_bind_double(st, i + 1, v->r); break;
		case 'T': sqlite3_bind_text(st, i + 1, v->p, v->n, SQLITE_TRANSIENT); break;
		case 'B': sqlite3_bind_blob(st, i + 1, v->p, v->n, SQLITE_TRANSIENT); break;
		default: sqlite3_bind_null(st, i + 1); break;
		}
	}
}

static int sqlite_exec(struct slt_backend *b, const char *sql)
{
	struct sqlite_backend *s = (struct sqlite_backend *)b;
	const char *p = sql;
	while (*p) {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		if (sqlite3_prepare_v2(s->db, p, -1, &st, &tail) != SQLITE_OK)
			return sqlite_fail(s, MTR_ESQL);
		if (!st) /* white space or a comment */
			break;
		sqlite_bind(b, st);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE) {
			sqlite_fail(s, MTR_ESQL);
			sqlite3_finalize(st);
			return MTR_ESQL;
		}
		sqlite3_finalize(st);
		p = tail;
	}
	return 0;
}

static bool col_null(void *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL;
}

static int64_t col_int64(void *st, int i)
{
	return sqlite3_column_int64(st, i);
}

static double col_double(void *st, int i)
{
	return sqlite3_column_double(st, i);
}

static const char *col_text(void *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static int col_type(void *st, int i)
{
	return sqlite3_column_type(st, i);
}

static const void *col_blob(void *st, int i, int *len)
{
	const void *p = sqlite3_column_blob(st, i);
	*len = sqlite3_column_bytes(st, i);
	return p;
}

static const struct slt_columns sqlite_columns = { col_null, col_int64, col_double, col_text, col_type, col_blob };

static int sqlite_query(struct slt_backend *b, const char *sql, const char *types, struct slt_result *res)
{
	struct sqlite_backend *s = (struct sqlite_backend *)b;
	sqlite3_stmt *st = NULL;
	char all[64];
	b->step_failed = false;
	res->ncols = (unsigned)strlen(types);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return sqlite_fail(s, MTR_ESQL);
	if (!st) {
		snprintf(b->err, sizeof b->err, "no statement");
		return MTR_EINVAL;
	}
	sqlite_bind(b, st);
	int n = sqlite3_column_count(st);
	if (strcmp(types, "*") == 0 && n > 0 && n < (int)sizeof all) {
		memset(all, 'V', (size_t)n);
		all[n] = 0;
		types = all;
		res->ncols = (unsigned)n;
	}
	if (n != (int)res->ncols) {
		snprintf(b->err, sizeof b->err, "the query has %d columns, the record %u", n, res->ncols);
		sqlite3_finalize(st);
		return MTR_EINVAL;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int e = slt_result_add_row(res, types, &sqlite_columns, st);
		if (e) {
			snprintf(b->err, sizeof b->err, "%s", e == MTR_EINVAL ? "bad type letter" : "out of memory");
			sqlite3_finalize(st);
			return e;
		}
	}
	/* An error while stepping (say "integer overflow" in sum()) ends the
	 * rows and is not a failure: that is how the reference runner reads
	 * the corpus, which expects an empty result there. */
	if (rc != SQLITE_DONE) {
		b->step_failed = true;
		sqlite_fail(s, MTR_ESQL);
	}
	sqlite3_finalize(st);
	return 0;
}

static void sqlite_close(struct slt_backend *b)
{
	struct sqlite_backend *s = (struct sqlite_backend *)b;
	sqlite3_close(s->db);
	free(s);
}

int slt_sqlite_open(struct slt_backend **out, char *err, size_t errlen)
{
	struct sqlite_backend *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return MTR_ENOMEM;
	}
	s->b.name = "sqlite";
	s->b.reset = sqlite_reset;
	s->b.exec = sqlite_exec;
	s->b.query = sqlite_query;
	s->b.close = sqlite_close;
	int rc = sqlite_reset(&s->b);
	if (rc) {
		snprintf(err, errlen, "sqlite: %s", s->b.err);
		sqlite_close(&s->b);
		return rc;
	}
	*out = &s->b;
	return 0;
}
