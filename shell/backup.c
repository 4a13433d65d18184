/*
 * backup.c - mtrsql's .backup (mtr_backup, with progress) and .restore (a
 * SQLite file loaded into an empty cluster through ordered writes): see
 * backup.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "backup.h"
#include "util.h"

/* Say what went wrong in err and fail. */
#define fail(err, errlen, ...) (errbuf_set((err), (errlen), __VA_ARGS__), -1)

/* A transaction of .restore holds at most this many bytes of values (or
 * BATCH_ROWS rows): one item each, well below the proxy's buffer. */
#define BATCH_BYTES (4u << 20)
#define BATCH_ROWS 20000

/* ---- progress on a terminal ---- */

struct progress {
	int tty;
	const char *what;
	uint64_t last_ns;
};

static void progress_show(struct progress *pg, uint64_t done, uint64_t total, int final)
{
	if (!pg->tty)
		return;
	uint64_t now = now_mono_ns();
	if (!final && now - pg->last_ns < 250000000u)
		return;
	pg->last_ns = now;
	if (total)
		fprintf(stderr, "\r%s: %.1f of %.1f MiB (%u%%)   ", pg->what, done / 1048576.0, total / 1048576.0,
			(unsigned)(done * 100 / total));
	else
		fprintf(stderr, "\r%s: waiting for the server's copy...   ", pg->what);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

static int backup_progress(void *arg, uint64_t done, uint64_t total, uint64_t instance)
{
	(void)instance;
	progress_show(arg, done, total, 0);
	return 0;
}

int backup_run(mtr *db, const char *path, int tty, char *err, size_t errlen)
{
	struct progress pg = {.tty = tty, .what = ".backup"};
	int rc = mtr_backup(db, path, backup_progress, &pg);
	if (rc != 0) {
		if (tty)
			fputc('\n', stderr);
		return fail(err, errlen, "%s", mtr_errmsg(db));
	}
	struct stat sb;
	uint64_t size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	progress_show(&pg, size, size, 1);
	if (tty)
		fprintf(stderr, "%s: %.1f MiB, as of instance %llu\n", path, size / 1048576.0,
			(unsigned long long)mtr_last_instance(db));
	return 0;
}

/* ---- .restore ---- */

struct restore {
	mtr *db;
	sqlite3 *src;
	const char *path;
	char *err;
	size_t errlen;
	struct progress pg;
	uint64_t total, done; /* bytes of values loaded, of the file's size */
	uint64_t rows;
};

/* Run one statement on the cluster (no rows expected). */
static int r_exec(struct restore *r, const char *sql)
{
	mtr_stmt *st = NULL;
	int rc = mtr_prepare(r->db, sql, -1, &st, NULL);
	if (rc == 0 && st)
		rc = mtr_step(st);
	mtr_finalize(st);
	if (rc < 0)
		return fail(r->err, r->errlen, "%.60s...: %s", sql, mtr_errmsg(r->db));
	return 0;
}

/* The cluster must have no table, view, index or trigger of its own. */
static int r_check_empty(struct restore *r)
{
	mtr_stmt *st = NULL;
	int rc = mtr_prepare(r->db,
			     "SELECT count(*), group_concat(name, ', ') FROM (SELECT name FROM sqlite_schema WHERE "
			     "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'mtr\\_%' ESCAPE '\\' LIMIT 5)",
			     -1, &st, NULL);
	if (rc == 0)
		rc = mtr_step(st);
	if (rc != MTR_ROW) {
		mtr_finalize(st);
		return fail(r->err, r->errlen, "reading the cluster's schema: %s", mtr_errmsg(r->db));
	}
	long long n = mtr_column_int64(st, 0);
	char names[300];
	snprintf(names, sizeof names, "%s", n ? (const char *)mtr_column_text(st, 1) : "");
	mtr_finalize(st);
	if (n)
		return fail(r->err, r->errlen,
			    "the cluster is not empty (it has %s%s): .restore loads into an empty cluster only; drop "
			    "them, or start a new cluster with metronomed --init-from %s",
			    names, n >= 5 ? ", ..." : "", r->path);
	return 0;
}

/* Run fn(r, row) for each row of sql on the source file. */
static int r_each(struct restore *r, const char *sql, int (*fn)(struct restore *r, sqlite3_stmt *row, void *arg),
		  void *arg)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(r->src, sql, -1, &s, NULL) != SQLITE_OK)
		return fail(r->err, r->errlen, "%s: %s", r->path, sqlite3_errmsg(r->src));
	int rc, x = 0;
	while (x == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
		x = fn(r, s, arg);
	if (x == 0 && rc != SQLITE_DONE)
		x = fail(r->err, r->errlen, "%s: %s", r->path, sqlite3_errmsg(r->src));
	sqlite3_finalize(s);
	return x;
}

/* Bind source column i of row to parameter k of st; returns the bytes. */
static size_t r_bind(mtr_stmt *st, int k, sqlite3_stmt *row, int i)
{
	int n = sqlite3_column_bytes(row, i);
	switch (sqlite3_column_type(row, i)) {
	case SQLITE_INTEGER:
		mtr_bind_int64(st, k, sqlite3_column_int64(row, i));
		return 8;
	case SQLITE_FLOAT:
		mtr_bind_double(st, k, sqlite3_column_double(row, i));
		return 8;
	case SQLITE_TEXT:
		mtr_bind_text(st, k, (const char *)sqlite3_column_text(row, i), n);
		return (size_t)n;
	case SQLITE_BLOB: {
		const void *b = sqlite3_column_blob(row, i);
		mtr_bind_blob(st, k, b ? b : "", n); /* an empty blob stays a blob */
		return (size_t)n;
	}
	default:
		mtr_bind_null(st, k);
		return 1;
	}
}

/* The columns an INSERT takes (not generated) and whether the rowid must
 * be given: a rowid table without an INTEGER PRIMARY KEY column. */
struct cols {
	sqlite3_str *list;  /* "a", "b" */
	int n;
	int rowid;
	char rowid_name[8]; /* rowid, _rowid_ or oid: one no column is named */
};

static int r_cols(struct restore *r, const char *table, int without_rowid, struct cols *c)
{
	char *q = sqlite3_mprintf("SELECT name, type, pk, hidden FROM pragma_table_xinfo(%Q)", table);
	sqlite3_stmt *s;
	if (q == NULL || sqlite3_prepare_v2(r->src, q, -1, &s, NULL) != SQLITE_OK) {
		sqlite3_free(q);
		return fail(r->err, r->errlen, "%s: columns of %s: %s", r->path, table, sqlite3_errmsg(r->src));
	}
	sqlite3_free(q);
	c->list = sqlite3_str_new(NULL);
	int npk = 0, ipk = 0, names = 0;
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		const char *type = (const char *)sqlite3_column_text(s, 1);
		if (sqlite3_column_int(s, 2) > 0) {
			npk++;
			ipk = type && sqlite3_stricmp(type, "INTEGER") == 0;
		}
		for (int k = 0; k < 3; k++)
			if (name && sqlite3_stricmp(name, (const char *[]){"rowid", "_rowid_", "oid"}[k]) == 0)
				names |= 1 << k;
		if (sqlite3_column_int(s, 3) != 0)
			continue; /* generated (or hidden): computed again */
		sqlite3_str_appendf(c->list, "%s\"%w\"", c->n ? ", " : "", name ? name : "");
		c->n++;
	}
	sqlite3_finalize(s);
	c->rowid = !without_rowid && !(npk == 1 && ipk);
	c->rowid_name[0] = 0;
	for (int k = 0; k < 3 && c->rowid; k++)
		if (!(names & (1 << k))) {
			snprintf(c->rowid_name, sizeof c->rowid_name, "%s", (const char *[]){"rowid", "_rowid_", "oid"}[k]);
			break;
		}
	if (c->rowid && !c->rowid_name[0])
		c->rowid = 0; /* every alias is a column: the rowid cannot be kept */
	return 0;
}

/* Copy every row of one table, in rowid (or key) order, in transactions. */
static int r_rows(struct restore *r, sqlite3_stmt *trow, void *arg)
{
	(void)arg;
	const char *table = (const char *)sqlite3_column_text(trow, 0);
	int wr = sqlite3_column_int(trow, 1);
	struct cols c = {0};
	if (r_cols(r, table, wr, &c) != 0)
		return -1;
	char *cl = sqlite3_str_finish(c.list);
	sqlite3_str *ph = sqlite3_str_new(NULL);
	for (int i = 0; i < c.n + c.rowid; i++)
		sqlite3_str_appendf(ph, "%s?", i ? ", " : "");
	char *phs = sqlite3_str_finish(ph);
	char *ins = sqlite3_mprintf("INSERT INTO \"%w\"(%s%s%s) VALUES(%s)", table, c.rowid ? c.rowid_name : "",
				    c.rowid && c.n ? ", " : "", cl ? cl : "", phs ? phs : "");
	char *sel = sqlite3_mprintf("SELECT %s%s%s FROM \"%w\"%s", c.rowid ? c.rowid_name : "",
				    c.rowid && c.n ? ", " : "", cl ? cl : "", table, wr ? "" : " ORDER BY _rowid_");
	sqlite3_free(cl);
	sqlite3_free(phs);
	int x = 0;
	mtr_stmt *st = NULL;
	sqlite3_stmt *s = NULL;
	if (!ins || !sel || mtr_prepare(r->db, ins, -1, &st, NULL) != 0 || !st)
		x = fail(r->err, r->errlen, "inserting into %s: %s", table, mtr_errmsg(r->db));
	else if (sqlite3_prepare_v2(r->src, sel, -1, &s, NULL) != SQLITE_OK)
		x = fail(r->err, r->errlen, "%s: reading %s: %s", r->path, table, sqlite3_errmsg(r->src));
	size_t batch = 0;
	int nrows = 0, open = 0, rc = SQLITE_DONE;
	while (x == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!open && (x = r_exec(r, "BEGIN")) != 0)
			break;
		open = 1;
		for (int i = 0; i < c.n + c.rowid; i++)
			batch += r_bind(st, i + 1, s, i);
		if (mtr_step(st) < 0) {
			x = fail(r->err, r->errlen, "inserting into %s: %s", table, mtr_errmsg(r->db));
			break;
		}
		r->rows++;
		if (++nrows >= BATCH_ROWS || batch >= BATCH_BYTES) {
			x = r_exec(r, "COMMIT");
			open = 0;
			r->done += batch;
			batch = 0;
			nrows = 0;
			progress_show(&r->pg, r->done < r->total ? r->done : r->total, r->total, 0);
		}
	}
	if (x == 0 && rc != SQLITE_DONE)
		x = fail(r->err, r->errlen, "%s: reading %s: %s", r->path, table, sqlite3_errmsg(r->src));
	if (open)
		x = x ? (r_exec(r, "ROLLBACK"), x) : r_exec(r, "COMMIT");
	r->done += batch;
	sqlite3_finalize(s);
	mtr_finalize(st);
	sqlite3_free(ins);
	sqlite3_free(sel);
	return x;
}

/* Run a schema row's CREATE text on the cluster. */
static int r_create(struct restore *r, sqlite3_stmt *row, void *arg)
{
	(void)arg;
	const char *type = (const char *)sqlite3_column_text(row, 0);
	const char *name = (const char *)sqlite3_column_text(row, 1);
	const char *sql = (const char *)sqlite3_column_text(row, 2);
	if (sql && sqlite3_strnicmp(sql, "CREATE VIRTUAL", 14) == 0)
		return fail(r->err, r->errlen,
			    "%s has the virtual table %s: .restore cannot load it; start a new cluster from the file "
			    "with metronomed --init-from",
			    r->path, name);
	if (r_exec(r, sql) != 0) {
		char why[512];
		snprintf(why, sizeof why, "%s", r->err);
		return fail(r->err, r->errlen, "creating %s %s: %s", type, name, why);
	}
	return 0;
}

/* sqlite_sequence: the file's rows, with their rowids. */
static int r_sequence(struct restore *r, sqlite3_stmt *row, void *arg)
{
	mtr_stmt *st = arg;
	for (int i = 0; i < 3; i++)
		r_bind(st, i + 1, row, i);
	if (mtr_step(st) < 0)
		return fail(r->err, r->errlen, "restoring sqlite_sequence: %s", mtr_errmsg(r->db));
	return 0;
}

/* The settings a backup carries in mtr_meta, as the cluster's PRAGMAs;
 * and the file's user_version and application_id. */
static int r_setting(struct restore *r, sqlite3_stmt *row, void *arg)
{
	(void)arg;
	const char *key = (const char *)sqlite3_column_text(row, 0);
	long long v = sqlite3_column_int64(row, 1);
	char sql[96];
	if (key && strcmp(key, "max_steps") == 0)
		snprintf(sql, sizeof sql, "PRAGMA mtr_max_steps = %lld", v);
	else if (key && strcmp(key, "foreign_keys") == 0)
		snprintf(sql, sizeof sql, "PRAGMA foreign_keys = %s", v ? "ON" : "OFF");
	else if (key && (strcmp(key, "user_version") == 0 || strcmp(key, "application_id") == 0))
		snprintf(sql, sizeof sql, "PRAGMA %s = %lld", key, v);
	else
		return 0;
	return r_exec(r, sql);
}

/* r_each over the user's objects: fmt has one %s, which becomes the
 * condition "not sqlite_*, not mtr_*". */
static int r_each_user(struct restore *r, const char *fmt, int (*fn)(struct restore *r, sqlite3_stmt *row, void *arg))
{
	char *q = sqlite3_mprintf(fmt, "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'mtr\\_%' ESCAPE '\\'");
	if (q == NULL)
		return fail(r->err, r->errlen, "out of memory");
	int x = r_each(r, q, fn, NULL);
	sqlite3_free(q);
	return x;
}

static int restore_load(struct restore *r)
{
	char res[64] = "";
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(r->src, "PRAGMA quick_check", -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		snprintf(res, sizeof res, "%s", (const char *)sqlite3_column_text(s, 0));
	else
		snprintf(res, sizeof res, "%s", sqlite3_errmsg(r->src));
	sqlite3_finalize(s);
	if (strcmp(res, "ok") != 0)
		return fail(r->err, r->errlen, "%s is not a usable SQLite database (%s)", r->path, res);
	if (r_check_empty(r) != 0)
		return -1;
	int x = r_each_user(r, "SELECT type, name, sql FROM sqlite_schema WHERE type = 'table' AND %s ORDER BY rowid",
			    r_create);
	if (x == 0)
		x = r_each_user(r,
				"SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND %s "
				"ORDER BY name",
				r_rows);
	if (x == 0 && sqlite3_table_column_metadata(r->src, "main", "sqlite_sequence", NULL, NULL, NULL, NULL, NULL,
						    NULL) == SQLITE_OK) {
		mtr_stmt *st = NULL;
		x = r_exec(r, "DELETE FROM sqlite_sequence");
		if (x == 0 && (mtr_prepare(r->db, "INSERT INTO sqlite_sequence(rowid, name, seq) VALUES(?, ?, ?)", -1, &st,
					   NULL) != 0 ||
			       !st))
			x = fail(r->err, r->errlen, "restoring sqlite_sequence: %s", mtr_errmsg(r->db));
		if (x == 0)
			x = r_each(r, "SELECT rowid, name, seq FROM sqlite_sequence ORDER BY rowid", r_sequence, st);
		mtr_finalize(st);
	}
	if (x == 0)
		x = r_each_user(r,
				"SELECT type, name, sql FROM sqlite_schema WHERE type IN ('index', 'view', 'trigger') AND "
				"sql IS NOT NULL AND %s ORDER BY rowid",
				r_create);
	if (x == 0 && sqlite3_table_column_metadata(r->src, "main", "mtr_meta", "value", NULL, NULL, NULL, NULL, NULL) ==
			      SQLITE_OK)
		x = r_each(r, "SELECT key, value FROM mtr_meta WHERE key IN ('max_steps', 'foreign_keys')", r_setting,
			   NULL);
	if (x == 0)
		x = r_each(r, "SELECT 'user_version', user_version FROM pragma_user_version WHERE user_version != 0 "
			      "UNION ALL SELECT 'application_id', application_id FROM pragma_application_id "
			      "WHERE application_id != 0",
			   r_setting, NULL);
	return x;
}

int restore_run(mtr *db, const char *path, int tty, char *err, size_t errlen)
{
	struct restore r = {.db = db, .path = path, .err = err, .errlen = errlen, .pg = {.tty = tty, .what = ".restore"}};
	struct stat sb;
	if (stat(path, &sb) != 0)
		return fail(err, errlen, "cannot open %s: no such file", path);
	r.total = (uint64_t)sb.st_size;
	if (sqlite3_open_v2(path, &r.src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		int x = fail(err, errlen, "cannot open %s: %s", path, r.src ? sqlite3_errmsg(r.src) : "out of memory");
		sqlite3_close(r.src);
		return x;
	}
	sqlite3_busy_timeout(r.src, 5000);
	/* one read transaction: the file as of one moment even if in use */
	int x = sqlite3_exec(r.src, "BEGIN", NULL, NULL, NULL) == SQLITE_OK
			? 0
			: fail(err, errlen, "%s: %s", path, sqlite3_errmsg(r.src));
	if (x == 0)
		x = restore_load(&r);
	sqlite3_exec(r.src, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(r.src);
	if (x == 0) {
		progress_show(&r.pg, r.total, r.total, 1);
		if (tty)
			fprintf(stderr, "%s: %llu rows restored\n", path, (unsigned long long)r.rows);
	} else if (tty) {
		fputc('\n', stderr);
	}
	return x;
}
