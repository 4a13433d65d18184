/*
 * run.c - running SQL in mtrsql (shell.h): statement by statement through
 * the client library, rows printed in the current output mode (output.h),
 * errors named by their place (the script line "near line N" as sqlite3
 * says it, or the statement with a caret), the .parameter bindings, the
 * query plan (.eqp, EXPLAIN QUERY PLAN) as a tree, and the wait for the
 * cluster that Ctrl-C can end (intr.c).
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "shell.h"

/* ---- errors ----------------------------------------------------------- */

/* The script line of position p in text (which starts on sh->line). */
static int line_at(const struct shell *sh, const char *text, const char *p)
{
	int l = sh->line;
	for (; text < p; text++)
		l += *text == '\n';
	return l;
}

/*
 * Report a failed statement (stmt points at it inside text).  In a script
 * the message names the script line, as sqlite3's "Parse error near line
 * N: ..."; a message that has a position ("line L, column C: ...", relative
 * to the statement) gets the script line of that position.  The statement
 * line is shown with a caret under the column.
 */
static void report(struct shell *sh, const char *text, const char *stmt, const char *kind, const char *msg)
{
	unsigned line = 0, col = 0;
	int used = 0;
	if (sscanf(msg, "line %u, column %u: %n", &line, &col, &used) < 2 || !used)
		line = col = 0;
	fflush(sh->outf); /* the rows before it first, when both go to one file */
	if (!sh->line)
		fprintf(stderr, "Error: %s\n", msg);
	else if (line)
		fprintf(stderr, "%s near line %d, column %u: %s\n", kind, line_at(sh, text, stmt) + (int)line - 1, col,
			msg + used);
	else
		fprintf(stderr, "%s near line %d: %s\n", kind, line_at(sh, text, stmt), msg);
	if (!line || !col)
		return;
	const char *p = stmt;
	for (unsigned l = 1; l < line && p; l++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!p)
		return;
	const char *e = strchr(p, '\n');
	int len = e ? (int)(e - p) : (int)strlen(p);
	if (len > 200 || (int)col > len + 1)
		return;
	fprintf(stderr, "  %.*s\n  %*s^\n", len, p, (int)col - 1, "");
}

/* ---- connection and the interruptible wait ---------------------------- */

int shell_reconnect(struct shell *sh, const char *consistency)
{
	char uri[700];
	if (consistency) {
		const char *q = strchr(sh->uri, '?');
		if (strncmp(sh->uri, "mtr://", 6)) {
			shell_error(".consistency needs an mtr:// URI");
			return -1;
		}
		/* the URI's other options (tls=, ca=, timeout= ...) stay */
		size_t n = (size_t)snprintf(uri, sizeof(uri), "%.*s?consistency=%s",
					    q ? (int)(q - sh->uri) : (int)strlen(sh->uri), sh->uri, consistency);
		for (const char *o = q ? q + 1 : NULL; o && *o && n < sizeof(uri);) {
			size_t len = strcspn(o, "&");
			if (strncmp(o, "consistency=", 12) != 0)
				n += (size_t)snprintf(uri + n, sizeof(uri) - n, "&%.*s", (int)len, o);
			o += len + (o[len] == '&');
		}
	} else {
		snprintf(uri, sizeof(uri), "%s", sh->uri);
	}
	mtr *db;
	int rc = mtr_open(uri, &db);
	if (rc && sh->db) { /* keep the connection we have */
		shell_error("%s", mtr_errmsg(db));
		mtr_close(db);
		return -1;
	}
	if (rc)
		shell_error("cannot connect again: %s (the next statement tries again)", db ? mtr_errmsg(db) : "out of memory");
	mtr_close(sh->db); /* and the statements held for its transaction */
	sh->nheld = 0;
	sh->db = db;
	snprintf(sh->uri, sizeof(sh->uri), "%.*s", (int)sizeof(sh->uri) - 1, uri);
	return rc ? -1 : 0;
}

int shell_step(struct shell *sh, mtr_stmt *st)
{
	int readonly = mtr_stmt_readonly(st);
	int cancelled = 0;
	int rc = intr_step(sh->db, st, &cancelled);
	if (cancelled && rc == MTR_ESQL && mtr_extended_errcode(sh->db) == SQLITE_INTERRUPT) {
		/* cancelled on the cluster (mtr_interrupt): the connection stays */
		mtr_finalize(st);
		sh->interrupts++;
		fflush(sh->outf);
		fprintf(stderr, "%sError: interrupted\n", sh->interactive ? "\n" : "");
		return SHELL_EINTR;
	}
	if (rc != SHELL_EINTR)
		return rc;
	/* the old handle (and st) now belong to the abandoned worker */
	sh->db = NULL;
	sh->interrupts++;
	fflush(sh->outf);
	fprintf(stderr, "%sError: interrupted%s\n", sh->interactive ? "\n" : "",
		readonly ? "" : " (the write may still be applied)");
	if (!intr_quit)
		shell_reconnect(sh, NULL);
	return SHELL_EINTR;
}

int run_exec(struct shell *sh, const char *sql, int rep)
{
	mtr_stmt *st = NULL;
	if (!sh->db || mtr_prepare(sh->db, sql, -1, &st, NULL) || !st) {
		if (rep)
			shell_error("%s", sh->db ? mtr_errmsg(sh->db) : "not connected");
		return -1;
	}
	int rc = shell_step(sh, st);
	if (rc == SHELL_EINTR)
		return -1;
	while (rc == MTR_ROW)
		rc = mtr_step(st);
	if (rc != MTR_DONE && rep)
		shell_error("%s", mtr_errmsg(sh->db));
	mtr_finalize(st);
	return rc == MTR_DONE ? 0 : -1;
}

/* ---- .parameter ------------------------------------------------------- */

static int params_open(struct shell *sh)
{
	if (sh->params)
		return 0;
	if (sqlite3_open_v2(":memory:", &sh->params, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) != SQLITE_OK ||
	    sqlite3_exec(sh->params, "CREATE TABLE p(key TEXT PRIMARY KEY ON CONFLICT REPLACE, value) WITHOUT ROWID", NULL, NULL,
			 NULL) != SQLITE_OK) {
		shell_error("cannot create the parameter table");
		sqlite3_close(sh->params);
		sh->params = NULL;
		return -1;
	}
	return 0;
}

void shell_bind_params(struct shell *sh, mtr_stmt *st)
{
	int n = mtr_bind_parameter_count(st);
	sqlite3_stmt *q = NULL;
	if (!n || !sh->params || sqlite3_prepare_v2(sh->params, "SELECT value FROM p WHERE key = ?1", -1, &q, NULL))
		return;
	for (int i = 1; i <= n; i++) {
		char num[16];
		const char *name = mtr_bind_parameter_name(st, i);
		if (!name) {
			snprintf(num, sizeof num, "?%d", i);
			name = num;
		}
		sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(q) == SQLITE_ROW) {
			switch (sqlite3_column_type(q, 0)) {
			case SQLITE_INTEGER: mtr_bind_int64(st, i, sqlite3_column_int64(q, 0)); break;
			case SQLITE_FLOAT: mtr_bind_double(st, i, sqlite3_column_double(q, 0)); break;
			case SQLITE_TEXT:
				mtr_bind_text(st, i, (const char *)sqlite3_column_text(q, 0), sqlite3_column_bytes(q, 0));
				break;
			case SQLITE_BLOB: mtr_bind_blob(st, i, sqlite3_column_blob(q, 0), sqlite3_column_bytes(q, 0)); break;
			default: mtr_bind_null(st, i); break;
			}
		}
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
}

int shell_parameter(struct shell *sh, int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (params_open(sh))
		return -1;
	if (argc == 2 && (!strcmp(c, "init") || !strcmp(c, "clear")))
		return sqlite3_exec(sh->params, "DELETE FROM p", NULL, NULL, NULL) ? -1 : 0;
	if (argc == 2 && !strcmp(c, "list")) {
		sqlite3_stmt *q;
		if (sqlite3_prepare_v2(sh->params,
				       "SELECT key, quote(value), min(40, (SELECT max(length(key)) FROM p)) FROM p", -1,
				       &q, NULL))
			return -1;
		while (sqlite3_step(q) == SQLITE_ROW)
			fprintf(sh->outf, "%-*s %s\n", sqlite3_column_int(q, 2), sqlite3_column_text(q, 0),
				sqlite3_column_text(q, 1));
		sqlite3_finalize(q);
		return 0;
	}
	if (argc == 3 && !strcmp(c, "unset")) {
		char *q = sqlite3_mprintf("DELETE FROM p WHERE key = %Q", argv[2]);
		int rc = q ? sqlite3_exec(sh->params, q, NULL, NULL, NULL) : SQLITE_NOMEM;
		sqlite3_free(q);
		return rc ? -1 : 0;
	}
	if (argc == 4 && !strcmp(c, "set")) {
		/* VALUE is an SQL expression (evaluated here, once), else text */
		char *q = sqlite3_mprintf("INSERT INTO p VALUES(%Q, %s)", argv[2], argv[3]);
		int rc = q ? sqlite3_exec(sh->params, q, NULL, NULL, NULL) : SQLITE_NOMEM;
		sqlite3_free(q);
		if (rc) {
			q = sqlite3_mprintf("INSERT INTO p VALUES(%Q, %Q)", argv[2], argv[3]);
			rc = q ? sqlite3_exec(sh->params, q, NULL, NULL, NULL) : SQLITE_NOMEM;
			sqlite3_free(q);
		}
		if (rc)
			shell_error("%s", sqlite3_errmsg(sh->params));
		return rc ? -1 : 0;
	}
	shell_error("usage: .parameter clear|init|list|set NAME VALUE|unset NAME");
	return -1;
}

/* ---- the query plan --------------------------------------------------- */

/* 1 when text starts with EXPLAIN QUERY PLAN (any case and spacing). */
static int is_eqp(const char *p)
{
	static const char *const w[] = { "explain", "query", "plan" };
	for (int i = 0; i < 3; i++) {
		while (isspace((unsigned char)*p))
			p++;
		size_t n = strlen(w[i]);
		if (strncasecmp(p, w[i], n) || isalnum((unsigned char)p[n]) || p[n] == '_')
			return 0;
		p += n;
	}
	return 1;
}

static int is_explain(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return !strncasecmp(p, "explain", 7) && !isalnum((unsigned char)p[7]);
}

struct plan_row {
	long id, parent;
	char *detail;
};

/* sqlite3's eqp_render_level: children of parent, "|--" before all but
 * the last, "`--" before the last, indented under their parent. */
static void plan_level(FILE *f, const struct plan_row *r, size_t n, long parent, char *prefix, size_t plen)
{
	for (size_t i = 0; i < n; i++) {
		if (r[i].parent != parent)
			continue;
		size_t next = i + 1;
		while (next < n && r[next].parent != parent)
			next++;
		fprintf(f, "%s%s%s\n", prefix, next < n ? "|--" : "`--", r[i].detail);
		if (plen + 4 < 200) {
			memcpy(prefix + plen, next < n ? "|  " : "   ", 4);
			plan_level(f, r, n, r[i].id, prefix, plen + 3);
			prefix[plen] = 0;
		}
	}
}

/* Print the rows of an EXPLAIN QUERY PLAN statement (first step done, rc
 * its result) as a tree.  Returns the last step's code. */
static int plan_print(struct shell *sh, mtr_stmt *st, int rc)
{
	struct plan_row *r = NULL;
	size_t n = 0;
	for (; rc == MTR_ROW; rc = mtr_step(st)) {
		struct plan_row *r2 = realloc(r, (n + 1) * sizeof(*r));
		if (!r2)
			break;
		r = r2;
		r[n].id = (long)mtr_column_int64(st, 0);
		r[n].parent = (long)mtr_column_int64(st, 1);
		const unsigned char *d = mtr_column_text(st, mtr_column_count(st) - 1);
		r[n].detail = strdup(d ? (const char *)d : "");
		n++;
	}
	if (n) {
		char prefix[208] = "";
		fprintf(sh->outf, "QUERY PLAN\n");
		plan_level(sh->outf, r, n, 0, prefix, 0);
	}
	for (size_t i = 0; i < n; i++)
		free(r[i].detail);
	free(r);
	return rc;
}

/* .eqp on: the plan of the statement text (n bytes) before it runs; a
 * statement that has no plan (or is refused) shows nothing.  -1 when
 * interrupted. */
static int plan_before(struct shell *sh, const char *text, size_t n)
{
	char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %.*s", (int)n, text);
	mtr_stmt *st = NULL;
	int rc = 0;
	if (q && !mtr_prepare(sh->db, q, -1, &st, NULL) && st) {
		shell_bind_params(sh, st);
		rc = shell_step(sh, st);
		if (rc != SHELL_EINTR) {
			plan_print(sh, st, rc);
			mtr_finalize(st);
		}
	}
	sqlite3_free(q);
	return rc == SHELL_EINTR ? -1 : 0;
}

/* ---- statements ------------------------------------------------------- */

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static enum out_vtype vtype(int ty)
{
	switch (ty) {
	case MTR_INTEGER: return OUT_INTEGER;
	case MTR_FLOAT: return OUT_FLOAT;
	case MTR_BLOB: return OUT_BLOB;
	case MTR_NULL: return OUT_NULL;
	default: return OUT_TEXT;
	}
}

/* Print the rows of st, rc being its first step's code; returns the code
 * it ended with, or SHELL_EINTR after Ctrl-C (reported). */
static int print_rows(struct shell *sh, mtr_stmt *st, int rc, const char *p)
{
	int stopped = 0;
	if (p && is_eqp(p)) {
		rc = plan_print(sh, st, rc);
	} else {
		struct out_table t;
		out_begin(&t, &sh->out, sh->outf);
		for (int named = 0; rc == MTR_ROW; rc = mtr_step(st)) {
			int ncol = mtr_column_count(st);
			for (int i = 0; !named && i < ncol; i++)
				out_column(&t, mtr_column_name(st, i));
			named = 1;
			for (int i = 0; i < ncol; i++) {
				int ty = mtr_column_type(st, i);
				const char *txt = ty == MTR_NULL ? NULL
					: ty == MTR_BLOB       ? (const char *)mtr_column_blob(st, i)
							       : (const char *)mtr_column_text(st, i);
				int len = mtr_column_bytes(st, i);
				double d = mtr_column_double(st, i);
				char num[40];
				if (ty == MTR_FLOAT) { /* SQLite's text of a REAL ("1.0e+300") */
					sqlite3_snprintf(sizeof num, num, "%!.15g", d);
					txt = num;
					len = (int)strlen(num);
				}
				out_value(&t, vtype(ty), txt, len, d);
			}
			out_row_end(&t);
			if ((stopped = intr_int || intr_quit))
				break;
		}
		out_end(&t);
	}
	if (stopped) {
		fflush(sh->outf);
		fprintf(stderr, "Error: interrupted\n");
		intr_int = 0;
		sh->interrupts++;
		return SHELL_EINTR;
	}
	return rc;
}

/* Finalize the statements held for the transaction (printing the rows the
 * COMMIT brought them first, when print). */
static void held_release(struct shell *sh, int print)
{
	for (size_t i = 0; i < sh->nheld; i++) {
		mtr_stmt *h = sh->held[i];
		if (print && mtr_stmt_busy(h) && print_rows(sh, h, mtr_step(h), NULL) == SHELL_EINTR)
			print = 0;
		mtr_finalize(h);
	}
	sh->nheld = 0;
}

/* Run one prepared statement and print its rows; 0, -1 (reported).  Inside
 * BEGIN ... COMMIT a statement is only collected by the library: it is held
 * and its rows print after the COMMIT (doc/client.md "Transactions"). */
static int run_stmt(struct shell *sh, mtr_stmt *st, const char *text, const char *p)
{
	int rc = shell_step(sh, st);
	if (rc == SHELL_EINTR) {
		sh->nheld = 0; /* they went with the old connection */
		return -1;
	}
	rc = print_rows(sh, st, rc, p);
	if (rc == SHELL_EINTR) {
		mtr_finalize(st);
		return -1;
	}
	if (rc != MTR_DONE) {
		report(sh, text, p, "Runtime error", mtr_errmsg(sh->db));
		mtr_finalize(st);
		if (mtr_get_autocommit(sh->db))
			held_release(sh, 0);
		return -1;
	}
	if (sh->changes && !mtr_stmt_readonly(st))
		fprintf(sh->outf, "changes: %lld   total_changes: -   last_insert_rowid: %lld\n",
			(long long)mtr_changes(sh->db), (long long)mtr_last_insert_rowid(sh->db));
	if (!mtr_get_autocommit(sh->db)) {
		if (sh->nheld == sh->cheld) {
			size_t c = sh->cheld ? 2 * sh->cheld : 16;
			mtr_stmt **n = realloc(sh->held, c * sizeof *n);
			if (!n) {
				mtr_finalize(st);
				shell_error("out of memory");
				return -1;
			}
			sh->held = n;
			sh->cheld = c;
		}
		sh->held[sh->nheld++] = st;
		return 0;
	}
	mtr_finalize(st);
	held_release(sh, 1); /* the COMMIT ran them (or the ROLLBACK dropped them) */
	return 0;
}

int run_sql(struct shell *sh, const char *sql)
{
	const char *p = sql;
	double t0 = now_s();
	int rc = 0;
	if (!sh->db) {
		shell_error("not connected");
		return -1;
	}
	while (*p && !rc) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';')
			p++;
		if (!*p)
			break;
		mtr_stmt *st = NULL;
		const char *tail = NULL;
		if (mtr_prepare(sh->db, p, -1, &st, &tail)) {
			report(sh, sql, p, "Parse error", mtr_errmsg(sh->db));
			return -1;
		}
		const char *next = tail && tail > p ? tail : p + strlen(p);
		if (!st) { /* only a comment */
			p = next;
			continue;
		}
		shell_bind_params(sh, st);
		if (sh->echo)
			fprintf(sh->outf, "%.*s\n", (int)(next - p), p);
		if (sh->eqp && !is_explain(p) && plan_before(sh, p, (size_t)(next - p)))
			return -1; /* interrupted: st went with the old connection */
		rc = run_stmt(sh, st, sql, p);
		p = next;
	}
	if (sh->timer && sh->db)
		fprintf(sh->outf, "Run Time: real %.3f (instance %llu)\n", now_s() - t0,
			(unsigned long long)mtr_last_instance(sh->db));
	fflush(sh->outf);
	return rc;
}
