/*
 * backup.c - mtrsql's .backup (backup.h): the cluster's database, read by
 * one SELECT at one instance, written into a local SQLite file.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "backup.h"
#include "util.h"

#define MAX_TABLES 499 /* SQLITE_MAX_COMPOUND_SELECT is 500: one part is the schema */

/* A table of the cluster's database: name, the columns an INSERT takes
 * (not generated ones), and whether it has a rowid. */
struct table {
	char *name;
	char **cols;
	int ncols;
	int rowid;
	sqlite3_stmt *ins; /* the local INSERT, prepared on first use */
};

struct plan {
	struct table *t;
	int n;
	int width;        /* columns of the union: tag + the widest part */
	int sequence;     /* sqlite_sequence exists */
	char *schema_sig; /* the schema as read in step 1 */
};

/* Say what went wrong in err and fail. */
#define fail(err, errlen, ...) (errbuf_set((err), (errlen), __VA_ARGS__), -1)

static void plan_free(struct plan *p)
{
	for (int i = 0; i < p->n; i++) {
		for (int k = 0; k < p->t[i].ncols; k++)
			free(p->t[i].cols[k]);
		free(p->t[i].cols);
		free(p->t[i].name);
		sqlite3_finalize(p->t[i].ins);
	}
	free(p->t);
	free(p->schema_sig);
	memset(p, 0, sizeof *p);
}

/* Append "type name tbl_name sql;" of one schema row to a signature. */
static int sig_add(char **sig, const char *type, const char *name, const char *tbl, const char *sql)
{
	char *n = sqlite3_mprintf("%s%s\x1f%s\x1f%s\x1f%s\x1e", *sig ? *sig : "", type, name, tbl, sql);
	if (!n)
		return -1;
	free(*sig);
	*sig = strdup(n);
	sqlite3_free(n);
	return *sig ? 0 : -1;
}

static const char schema_where[] = "sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
				   "AND name NOT LIKE 'mtr\\_%' ESCAPE '\\'";

/* Step 1: the tables, their columns and the schema's signature. */
static int plan_read(mtr *db, struct plan *p, char *err, size_t errlen)
{
	mtr_stmt *st;
	const char *q = "SELECT t.name, t.wr, x.name FROM pragma_table_list AS t, pragma_table_xinfo(t.name) AS x "
			"WHERE t.schema = 'main' AND t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
			"AND t.name NOT LIKE 'mtr\\_%' ESCAPE '\\' AND x.hidden = 0 ORDER BY t.name, x.cid";
	if (mtr_prepare(db, q, -1, &st, NULL) || !st)
		return fail(err, errlen, "reading the table list: %s", mtr_errmsg(db));
	int rc;
	while ((rc = mtr_step(st)) == MTR_ROW) {
		const char *name = (const char *)mtr_column_text(st, 0);
		const char *col = (const char *)mtr_column_text(st, 2);
		if (!name || !col)
			continue;
		struct table *t = p->n ? &p->t[p->n - 1] : NULL;
		if (!t || strcmp(t->name, name) != 0) {
			if (p->n == MAX_TABLES) {
				mtr_finalize(st);
				return fail(err, errlen, "more than %d tables: use .dump", MAX_TABLES);
			}
			struct table *nt = realloc(p->t, (size_t)(p->n + 1) * sizeof *nt);
			if (!nt)
				break;
			p->t = nt;
			t = &p->t[p->n++];
			memset(t, 0, sizeof *t);
			t->name = strdup(name);
			t->rowid = mtr_column_int64(st, 1) == 0;
		}
		char **nc = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof *nc);
		if (!nc || !t->name)
			break;
		t->cols = nc;
		t->cols[t->ncols] = strdup(col);
		if (!t->cols[t->ncols++])
			break;
	}
	mtr_finalize(st);
	if (rc != MTR_DONE)
		return fail(err, errlen, rc == MTR_ROW ? "out of memory" : "reading the table list: %s", mtr_errmsg(db));
	p->width = 5;
	for (int i = 0; i < p->n; i++)
		if (1 + p->t[i].rowid + p->t[i].ncols > p->width)
			p->width = 1 + p->t[i].rowid + p->t[i].ncols;
	char *sq = sqlite3_mprintf("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE %s", schema_where);
	if (!sq || mtr_prepare(db, sq, -1, &st, NULL) || !st) {
		sqlite3_free(sq);
		return fail(err, errlen, "reading the schema: %s", mtr_errmsg(db));
	}
	sqlite3_free(sq);
	while ((rc = mtr_step(st)) == MTR_ROW)
		if (sig_add(&p->schema_sig, (const char *)mtr_column_text(st, 0), (const char *)mtr_column_text(st, 1),
			    (const char *)mtr_column_text(st, 2), (const char *)mtr_column_text(st, 3)) != 0)
			break;
	mtr_finalize(st);
	if (rc != MTR_DONE)
		return fail(err, errlen, "reading the schema: %s", mtr_errmsg(db));
	if (mtr_prepare(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'", -1, &st, NULL) || !st)
		return fail(err, errlen, "reading the schema: %s", mtr_errmsg(db));
	if (mtr_step(st) == MTR_ROW)
		p->sequence = mtr_column_int64(st, 0) > 0;
	mtr_finalize(st);
	return 0;
}

/* Append text formatted by sqlite3_mprintf (%w, %Q...) to *q. */
static void qcat(char **q, const char *fmt, ...)
{
	if (!*q)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *add = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	char *n = add ? sqlite3_mprintf("%s%s", *q, add) : NULL;
	sqlite3_free(add);
	sqlite3_free(*q);
	*q = n;
}

static void pad(char **q, int used, int width)
{
	for (int k = used; k < width; k++)
		qcat(q, ", NULL");
}

/* Step 2's SELECT: tag -1 schema rows, -2 the pragmas, -3 sqlite_sequence,
 * i >= 0 the rows of table i (rowid first when it has one). */
static char *union_sql(const struct plan *p)
{
	char *q = sqlite3_mprintf("SELECT -1, type, name, tbl_name, sql");
	pad(&q, 5, p->width);
	qcat(&q, " FROM sqlite_schema WHERE %s", schema_where);
	qcat(&q, " UNION ALL SELECT -2, (SELECT user_version FROM pragma_user_version), "
		 "(SELECT application_id FROM pragma_application_id)");
	pad(&q, 3, p->width);
	if (p->sequence) {
		qcat(&q, " UNION ALL SELECT -3, name, seq");
		pad(&q, 3, p->width);
		qcat(&q, " FROM sqlite_sequence");
	}
	for (int i = 0; i < p->n; i++) {
		const struct table *t = &p->t[i];
		qcat(&q, " UNION ALL SELECT %d", i);
		if (t->rowid)
			qcat(&q, ", rowid");
		for (int k = 0; k < t->ncols; k++)
			qcat(&q, ", \"%w\"", t->cols[k]);
		pad(&q, 1 + t->rowid + t->ncols, p->width);
		qcat(&q, " FROM main.\"%w\"", t->name);
	}
	return q;
}

/* The schema rows of step 2, kept until the data starts. */
struct schema_row {
	char *type, *name, *tbl, *sql;
};

struct copy {
	sqlite3 *out;
	struct schema_row *s;
	int ns;
	char *sig;
	int created;
	int64_t user_version, application_id;
};

static int table_known(const struct plan *p, const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->t[i].name, name) == 0)
			return 1;
	return 0;
}

static int exec_out(struct copy *c, const char *sql, char *err, size_t errlen)
{
	char *m = NULL;
	if (sqlite3_exec(c->out, sql, NULL, NULL, &m) != SQLITE_OK) {
		errbuf_set(err, errlen, "writing the copy: %s (in: %.80s)", m ? m : "error", sql);
		sqlite3_free(m);
		return -1;
	}
	return 0;
}

/* The tables (before the rows) or the rest of the schema (after them):
 * indexes and triggers of copied tables, views. */
static int create(struct copy *c, const struct plan *p, int tables, char *err, size_t errlen)
{
	for (int i = 0; i < c->ns; i++) {
		const struct schema_row *r = &c->s[i];
		int is_table = strcmp(r->type, "table") == 0;
		if (tables != is_table)
			continue;
		if ((is_table || strcmp(r->type, "view") != 0) && !table_known(p, r->tbl))
			continue; /* a virtual table, its shadow tables and their indexes */
		if (exec_out(c, r->sql, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* One row of table t from the union's current row of st into the copy. */
static int copy_row(struct copy *c, struct table *t, mtr_stmt *st, char *err, size_t errlen)
{
	if (!t->ins) {
		char *q = sqlite3_mprintf("INSERT INTO main.\"%w\"(%s", t->name, t->rowid ? "rowid" : "");
		for (int k = 0; k < t->ncols; k++)
			qcat(&q, "%s\"%w\"", k || t->rowid ? ", " : "", t->cols[k]);
		qcat(&q, ") VALUES(");
		for (int k = 0; k < t->ncols + t->rowid; k++)
			qcat(&q, k ? ", ?" : "?");
		qcat(&q, ")");
		int rc = q ? sqlite3_prepare_v2(c->out, q, -1, &t->ins, NULL) : SQLITE_NOMEM;
		sqlite3_free(q);
		if (rc != SQLITE_OK)
			return fail(err, errlen, "writing the copy of %s: %s", t->name, sqlite3_errmsg(c->out));
	}
	for (int k = 0; k < t->ncols + t->rowid; k++) {
		int i = k + 1;
		switch (mtr_column_type(st, i)) {
		case MTR_INTEGER:
			sqlite3_bind_int64(t->ins, k + 1, mtr_column_int64(st, i));
			break;
		case MTR_FLOAT:
			sqlite3_bind_double(t->ins, k + 1, mtr_column_double(st, i));
			break;
		case MTR_TEXT:
			sqlite3_bind_text(t->ins, k + 1, (const char *)mtr_column_text(st, i), mtr_column_bytes(st, i),
					  SQLITE_TRANSIENT);
			break;
		case MTR_BLOB:
			sqlite3_bind_blob(t->ins, k + 1, mtr_column_blob(st, i), mtr_column_bytes(st, i),
					  SQLITE_TRANSIENT);
			break;
		default:
			sqlite3_bind_null(t->ins, k + 1);
		}
	}
	int rc = sqlite3_step(t->ins);
	sqlite3_reset(t->ins);
	if (rc != SQLITE_DONE)
		return fail(err, errlen, "writing the copy of %s: %s", t->name, sqlite3_errmsg(c->out));
	return 0;
}

static void copy_free(struct copy *c)
{
	for (int i = 0; i < c->ns; i++) {
		free(c->s[i].type);
		free(c->s[i].name);
		free(c->s[i].tbl);
		free(c->s[i].sql);
	}
	free(c->s);
	free(c->sig);
}

static char *dup_col(mtr_stmt *st, int i)
{
	const unsigned char *t = mtr_column_text(st, i);
	return strdup(t ? (const char *)t : "");
}

/* Step 2 into the open copy.  0, 1 when the schema changed since step 1
 * (try again), -1 on error. */
static int copy_all(mtr *db, struct plan *p, struct copy *c, struct backup_stats *bs, char *err, size_t errlen)
{
	char *q = union_sql(p);
	mtr_stmt *st;
	if (!q)
		return fail(err, errlen, "out of memory");
	int rc = mtr_prepare(db, q, -1, &st, NULL);
	sqlite3_free(q);
	if (rc || !st)
		return fail(err, errlen, "reading the database: %s", mtr_errmsg(db));
	int bad = 0;
	while (!bad && (rc = mtr_step(st)) == MTR_ROW) {
		int64_t tag = mtr_column_int64(st, 0);
		if (tag == -1) {
			struct schema_row *ns = realloc(c->s, (size_t)(c->ns + 1) * sizeof *ns);
			if (!ns) {
				bad = fail(err, errlen, "out of memory");
				break;
			}
			c->s = ns;
			struct schema_row *r = &c->s[c->ns++];
			r->type = dup_col(st, 1);
			r->name = dup_col(st, 2);
			r->tbl = dup_col(st, 3);
			r->sql = dup_col(st, 4);
			if (sig_add(&c->sig, r->type, r->name, r->tbl, r->sql) != 0)
				bad = fail(err, errlen, "out of memory");
			continue;
		}
		if (!c->created) {
			/* the schema is complete: is it the one the SELECT was built for? */
			if (!c->sig || !p->schema_sig || strcmp(c->sig, p->schema_sig) != 0) {
				mtr_finalize(st);
				return 1;
			}
			if (create(c, p, 1, err, errlen) != 0)
				bad = -1;
			c->created = 1;
		}
		if (bad)
			break;
		if (tag == -2) {
			c->user_version = mtr_column_int64(st, 1);
			c->application_id = mtr_column_int64(st, 2);
		} else if (tag == -3) {
			char *s = sqlite3_mprintf("INSERT INTO sqlite_sequence VALUES(%Q, %lld)",
						  (const char *)mtr_column_text(st, 1), (long long)mtr_column_int64(st, 2));
			bad = s ? exec_out(c, s, err, errlen) : fail(err, errlen, "out of memory");
			sqlite3_free(s);
		} else if (tag >= 0 && tag < p->n) {
			bad = copy_row(c, &p->t[tag], st, err, errlen);
			bs->rows++;
		}
	}
	mtr_finalize(st);
	if (bad)
		return -1;
	if (rc != MTR_DONE) {
		if (mtr_errcode(db) == MTR_ETOOBIG || mtr_extended_errcode(db) == SQLITE_TOOBIG)
			return fail(err, errlen, "the database is too large to copy in one answer (%s); .dump reads it "
				    "table by table", mtr_errmsg(db));
		return fail(err, errlen, "reading the database: %s", mtr_errmsg(db));
	}
	bs->instance = mtr_last_instance(db);
	bs->tables = (unsigned)p->n;
	if (create(c, p, 0, err, errlen) != 0)
		return -1;
	char prag[96];
	snprintf(prag, sizeof prag, "PRAGMA user_version = %lld; PRAGMA application_id = %lld;",
		 (long long)c->user_version, (long long)c->application_id);
	return exec_out(c, prag, err, errlen);
}

int backup_run(mtr *db, const char *path, struct backup_stats *bs, char *err, size_t errlen)
{
	memset(bs, 0, sizeof *bs);
	char *tmp = sqlite3_mprintf("%s.tmp", path);
	if (!tmp)
		return fail(err, errlen, "out of memory");
	int rc = 1;
	for (int attempt = 0; attempt < 5 && rc == 1; attempt++) {
		struct plan p = {0};
		struct copy c = {0};
		memset(bs, 0, sizeof *bs);
		rc = plan_read(db, &p, err, errlen);
		if (rc == 0) {
			unlink(tmp);
			if (sqlite3_open_v2(tmp, &c.out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
				rc = fail(err, errlen, "cannot create %s: %s", tmp, c.out ? sqlite3_errmsg(c.out) : "out of memory");
		}
		if (rc == 0)
			rc = exec_out(&c, "BEGIN", err, errlen);
		if (rc == 0)
			rc = copy_all(db, &p, &c, bs, err, errlen);
		if (rc == 0)
			rc = exec_out(&c, "COMMIT", err, errlen);
		plan_free(&p); /* its statements before the connection */
		if (c.out && sqlite3_close(c.out) != SQLITE_OK && rc == 0)
			rc = fail(err, errlen, "closing %s", tmp);
		copy_free(&c);
		if (rc == 0 && rename(tmp, path) != 0)
			rc = fail(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		if (rc != 0)
			unlink(tmp);
	}
	if (rc == 1)
		rc = fail(err, errlen, "the schema kept changing while it was read: try again");
	sqlite3_free(tmp);
	return rc;
}
