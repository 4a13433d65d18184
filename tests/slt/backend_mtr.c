/*
 * backend_mtr.c - the Metronome backend of mtrslt (backend.h): SQL goes
 * through the client library (include/metronome.h) to a cluster.
 *
 * A fresh cluster per test file would take seconds each, so "reset" empties
 * the replicated database instead: it reads sqlite_master through the
 * client and drops every view and table (their indexes and triggers go with
 * them) except the reserved mtr_ and sqlite_ objects, then checks that
 * nothing is left.  The drops are ordinary replicated writes, so every
 * replica ends empty too.  The file's own names can then be used as they
 * are; doc/mtrslt.md explains why this beats renaming.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "metronome.h"

struct mtr_backend {
	struct slt_backend b; /* first: the public part */
	mtr *db;
};

static int mtr_fail(struct mtr_backend *m, int rc)
{
	int ext = mtr_extended_errcode(m->db);
	if (ext)
		snprintf(m->b.err, sizeof m->b.err, "%s: %s (SQLite extended code %d)", mtr_errname(rc),
			 mtr_errmsg(m->db), ext);
	else
		snprintf(m->b.err, sizeof m->b.err, "%s: %s", mtr_errname(rc), mtr_errmsg(m->db));
	return rc;
}

/* Bind b->params to st's parameters (backend.h). */
static int be_bind(struct slt_backend *b, mtr_stmt *st)
{
	int n = mtr_bind_parameter_count(st), rc = 0;
	for (int i = 0; i < n && i < (int)b->nparams && rc == 0; i++) {
		const struct slt_param *v = &b->params[i];
		switch (v->type) {
		case 'I': rc = mtr_bind_int64(st, i + 1, v->i); break;
		case 'R': rc = mtr_bind_double(st, i + 1, v->r); break;
		case 'T': rc = mtr_bind_text(st, i + 1, v->p, v->n); break;
		case 'B': rc = mtr_bind_blob(st, i + 1, v->p, v->n); break;
		default: rc = mtr_bind_null(st, i + 1); break;
		}
	}
	return rc;
}

static int be_exec(struct slt_backend *b, const char *sql)
{
	struct mtr_backend *m = (struct mtr_backend *)b;
	const char *p = sql;
	while (*p) {
		mtr_stmt *st = NULL;
		const char *tail = NULL;
		int rc = mtr_prepare(m->db, p, -1, &st, &tail);
		if (rc)
			return mtr_fail(m, rc);
		if (!st)
			break;
		if ((rc = be_bind(b, st)) != 0) {
			mtr_fail(m, rc);
			mtr_finalize(st);
			return rc;
		}
		while ((rc = mtr_step(st)) == MTR_ROW)
			;
		if (rc != MTR_DONE) {
			mtr_fail(m, rc);
			mtr_finalize(st);
			return rc;
		}
		mtr_finalize(st);
		if (!tail || tail <= p)
			break;
		p = tail;
	}
	return 0;
}

static bool col_null(void *st, int i)
{
	return mtr_column_type(st, i) == MTR_NULL;
}

static int64_t col_int64(void *st, int i)
{
	return mtr_column_int64(st, i);
}

static double col_double(void *st, int i)
{
	return mtr_column_double(st, i);
}

static const char *col_text(void *st, int i)
{
	return (const char *)mtr_column_text(st, i);
}

static int col_type(void *st, int i)
{
	return mtr_column_type(st, i);
}

static const void *col_blob(void *st, int i, int *len)
{
	const void *p = mtr_column_blob(st, i);
	*len = mtr_column_bytes(st, i);
	return p;
}

static const struct slt_columns mtr_columns = { col_null, col_int64, col_double, col_text, col_type, col_blob };

static int be_query(struct slt_backend *b, const char *sql, const char *types, struct slt_result *res)
{
	struct mtr_backend *m = (struct mtr_backend *)b;
	mtr_stmt *st = NULL;
	char all[64];
	bool any = strcmp(types, "*") == 0;
	b->step_failed = false;
	res->ncols = (unsigned)strlen(types);
	int rc = mtr_prepare(m->db, sql, -1, &st, NULL);
	if (rc)
		return mtr_fail(m, rc);
	if (!st) {
		snprintf(b->err, sizeof b->err, "no statement");
		return MTR_EINVAL;
	}
	if ((rc = be_bind(b, st)) != 0) {
		mtr_fail(m, rc);
		mtr_finalize(st);
		return rc;
	}
	bool first = true;
	while ((rc = mtr_step(st)) == MTR_ROW) {
		if (first) {
			/* the column count is known after the first step */
			int n = mtr_column_count(st);
			if (any && n > 0 && n < (int)sizeof all) {
				memset(all, 'V', (size_t)n);
				all[n] = 0;
				types = all;
				res->ncols = (unsigned)n;
			}
			if (n != (int)res->ncols) {
				snprintf(b->err, sizeof b->err, "the query has %d columns, the record %u", n,
					 res->ncols);
				mtr_finalize(st);
				return MTR_EINVAL;
			}
			first = false;
		}
		int e = slt_result_add_row(res, types, &mtr_columns, st);
		if (e) {
			snprintf(b->err, sizeof b->err, "%s", e == MTR_EINVAL ? "bad type letter" : "out of memory");
			mtr_finalize(st);
			return e;
		}
	}
	if (first && any)
		res->ncols = (unsigned)mtr_column_count(st);
	if (first && !any && rc == MTR_DONE && mtr_column_count(st) > 0 && mtr_column_count(st) != (int)res->ncols) {
		snprintf(b->err, sizeof b->err, "the query has %d columns, the record %u", mtr_column_count(st),
			 res->ncols);
		mtr_finalize(st);
		return MTR_EINVAL;
	}
	/* SQLite's error while running the query (MTR_ESQL) ends the rows, as
	 * in the SQLite backend; anything else (refused, timed out, no proxy)
	 * fails the query. */
	if (rc != MTR_DONE && rc != MTR_ESQL) {
		mtr_fail(m, rc);
		mtr_finalize(st);
		return rc;
	}
	if (rc == MTR_ESQL) {
		b->step_failed = true;
		mtr_fail(m, rc);
	}
	mtr_finalize(st);
	return 0;
}

/* Append "DROP <kind> IF EXISTS "name";" to the growing buffer *s. */
static int add_drop(char **s, size_t *len, size_t *cap, const char *kind, const char *name)
{
	size_t need = *len + strlen(kind) + 2 * strlen(name) + 32;
	if (need > *cap) {
		size_t c = *cap ? *cap : 1024;
		while (c < need)
			c *= 2;
		char *p = realloc(*s, c);
		if (!p)
			return MTR_ENOMEM;
		*s = p;
		*cap = c;
	}
	*len += (size_t)sprintf(*s + *len, "DROP %s IF EXISTS \"", kind);
	for (const char *q = name; *q; q++) {
		if (*q == '"')
			(*s)[(*len)++] = '"';
		(*s)[(*len)++] = *q;
	}
	*len += (size_t)sprintf(*s + *len, "\";\n");
	return 0;
}

#define USER_OBJECTS                                                                                   \
	"SELECT type, name FROM sqlite_master WHERE type IN ('view','table','index','trigger')"       \
	" AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'mtr\\_%' ESCAPE '\\'"          \
	" ORDER BY type = 'table', name"

static int be_reset(struct slt_backend *b)
{
	struct mtr_backend *m = (struct mtr_backend *)b;
	/* Views first, then tables (indexes and triggers go with their table);
	 * a second pass catches what a concurrent writer added meanwhile. */
	for (int pass = 0; pass < 3; pass++) {
		mtr_stmt *st = NULL;
		int rc = mtr_prepare(m->db, USER_OBJECTS, -1, &st, NULL);
		if (rc)
			return mtr_fail(m, rc);
		char *drops = NULL;
		size_t len = 0, cap = 0;
		unsigned n = 0;
		while ((rc = mtr_step(st)) == MTR_ROW) {
			const char *type = (const char *)mtr_column_text(st, 0);
			const char *name = (const char *)mtr_column_text(st, 1);
			if (!type || !name)
				continue;
			n++;
			if (strcmp(type, "view") == 0 || strcmp(type, "table") == 0)
				if (add_drop(&drops, &len, &cap, strcmp(type, "view") == 0 ? "VIEW" : "TABLE",
					     name) != 0) {
					rc = MTR_ENOMEM;
					break;
				}
		}
		if (rc != MTR_DONE) {
			if (rc == MTR_ENOMEM)
				snprintf(b->err, sizeof b->err, "out of memory");
			else
				mtr_fail(m, rc);
			mtr_finalize(st);
			free(drops);
			return rc;
		}
		mtr_finalize(st);
		if (n == 0) {
			free(drops);
			return 0;
		}
		/* only indexes or triggers left (on a reserved table?): give up below */
		if (!drops)
			break;
		rc = be_exec(b, drops);
		free(drops);
		if (rc)
			return rc;
	}
	snprintf(b->err, sizeof b->err, "objects remain in the database after dropping every table and view");
	return MTR_EEXIST;
}

static void be_close(struct slt_backend *b)
{
	struct mtr_backend *m = (struct mtr_backend *)b;
	mtr_close(m->db);
	free(m);
}

int slt_mtr_open(const char *uri, struct slt_backend **out, char *err, size_t errlen)
{
	struct mtr_backend *m = calloc(1, sizeof *m);
	*out = NULL;
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return MTR_ENOMEM;
	}
	m->b.name = "metronome";
	m->b.reset = be_reset;
	m->b.exec = be_exec;
	m->b.query = be_query;
	m->b.close = be_close;
	int rc = mtr_open(uri, &m->db);
	if (rc) {
		snprintf(err, errlen, "cannot open %s: %s: %s", uri, mtr_errname(rc),
			 m->db ? mtr_errmsg(m->db) : mtr_strerror(rc));
		be_close(&m->b);
		return rc;
	}
	*out = &m->b;
	return 0;
}
