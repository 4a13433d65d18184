/*
 * schema.c - .tables, .indexes, .schema and .dump (shell.h), written to
 * print what sqlite3 3.40 prints for the same database, byte for byte
 * (tests/integration/mtrsql_sqlite.sh compares them), with two
 * differences: the replica's own tables (mtr_*) are never shown, and .dump
 * does not begin with PRAGMA foreign_keys=OFF (in a cluster that is a
 * cluster-wide setting, agreed through the log: replaying the script would
 * switch foreign keys off for every client).
 *
 * Patterns are LIKE patterns as in sqlite3 (.schema switches to GLOB when
 * the pattern has * ? or [).  Each query is one statement; at most one
 * statement is open at a time, so an interrupted wait (shell_step) leaves
 * nothing behind to finalize.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "shell.h"

#define NOT_MTR "name NOT LIKE 'mtr\\_%' ESCAPE '\\'"
#define NOT_MTR_FMT "name NOT LIKE 'mtr\\_%%' ESCAPE '\\'" /* (in a format) */

/* Prepare sql, bind ?1 to bind1 (when not NULL) and take the first step.
 * 0 with *st and *rc set, -1 (reported), or -2 (interrupted). */
static int query_start(struct shell *sh, const char *sql, const char *bind1, mtr_stmt **st, int *rc)
{
	*st = NULL;
	if (!sh->db || mtr_prepare(sh->db, sql, -1, st, NULL) || !*st) {
		shell_error("%s", sh->db ? mtr_errmsg(sh->db) : "not connected");
		mtr_finalize(*st);
		*st = NULL;
		return -1;
	}
	if (bind1)
		mtr_bind_text(*st, 1, bind1, -1);
	*rc = shell_step(sh, *st);
	if (*rc == SHELL_EINTR) {
		*st = NULL;
		return -2;
	}
	return 0;
}

/* Finish a query: -1 (reported) unless it ran to MTR_DONE. */
static int query_end(struct shell *sh, mtr_stmt *st, int rc)
{
	if (rc != MTR_DONE)
		shell_error("%s", mtr_errmsg(sh->db));
	mtr_finalize(st);
	return rc == MTR_DONE ? 0 : -1;
}

struct strs {
	char **v;
	size_t n;
};

static void strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int strs_add(struct strs *s, const char *v)
{
	char **v2 = realloc(s->v, (s->n + 1) * sizeof(*v2));
	if (!v2)
		return -1;
	s->v = v2;
	if (!(s->v[s->n] = strdup(v ? v : "")))
		return -1;
	s->n++;
	return 0;
}

/* Every row's columns 0..ncol-1 as text, row after row, into out.  0, -1
 * (reported) or -2 (interrupted). */
static int query_strs(struct shell *sh, const char *sql, const char *bind1, int ncol, struct strs *out)
{
	mtr_stmt *st;
	int rc, r = query_start(sh, sql, bind1, &st, &rc);
	if (r)
		return r;
	for (; rc == MTR_ROW; rc = mtr_step(st))
		for (int i = 0; i < ncol; i++)
			if (strs_add(out, (const char *)mtr_column_text(st, i))) {
				rc = MTR_ENOMEM;
				break;
			}
	return query_end(sh, st, rc);
}

/* ---- .tables, .indexes ------------------------------------------------ */

int schema_names(struct shell *sh, int indexes, const char *pattern)
{
	struct strs names = { 0 };
	const char *q = indexes ? "SELECT name FROM sqlite_schema WHERE type='index' AND tbl_name LIKE ?1 ORDER BY 1"
				: "SELECT name FROM sqlite_schema WHERE type IN ('table','view') "
				  "AND name NOT LIKE 'sqlite_%' AND " NOT_MTR " AND name LIKE ?1 ORDER BY 1";
	if (query_strs(sh, q, pattern ? pattern : "%", 1, &names))
		return -1;
	/* in columns down then across, 80 characters wide (sqlite3's layout) */
	int maxlen = 0;
	for (size_t i = 0; i < names.n; i++)
		maxlen = (int)strlen(names.v[i]) > maxlen ? (int)strlen(names.v[i]) : maxlen;
	int ncol = 80 / (maxlen + 2);
	if (ncol < 1)
		ncol = 1;
	size_t nrow = (names.n + (size_t)ncol - 1) / (size_t)ncol;
	for (size_t i = 0; i < nrow; i++) {
		for (size_t j = i; j < names.n; j += nrow)
			fprintf(sh->outf, "%s%-*s", j < nrow ? "" : "  ", maxlen, names.v[j]);
		fputc('\n', sh->outf);
	}
	strs_free(&names);
	return 0;
}

/* ---- .schema ---------------------------------------------------------- */

/* Print a CREATE statement and tail as sqlite3's printSchemaLine: a
 * statement ending in a comment gets what closes it before the ';', and a
 * table with a quoted name is written CREATE TABLE IF NOT EXISTS. */
static void schema_line(FILE *f, const char *z, const char *tail)
{
	char *fixed = NULL;
	if (tail[0] == ';' && (strstr(z, "/*") || strstr(z, "--"))) {
		static const char *const term[] = { "", "*/", "\n" };
		for (int i = 0; i < 3 && !fixed; i++) {
			char *t = sqlite3_mprintf("%s%s;", z, term[i]);
			if (t && sqlite3_complete(t)) {
				t[strlen(t) - 1] = 0;
				fixed = t;
				z = t;
			} else {
				sqlite3_free(t);
			}
		}
	}
	if (sqlite3_strglob("CREATE TABLE ['\"]*", z) == 0)
		fprintf(f, "CREATE TABLE IF NOT EXISTS %s%s", z + 13, tail);
	else
		fprintf(f, "%s%s", z, tail);
	sqlite3_free(fixed);
}

/* "/" "* v(a,b) *" "/" after a view, as sqlite3's shellFakeSchema. */
static char *view_columns(struct shell *sh, const char *view)
{
	struct strs cols = { 0 };
	if (query_strs(sh, "SELECT name FROM pragma_table_info(?1)", view, 1, &cols) || !cols.n) {
		strs_free(&cols);
		return NULL;
	}
	sqlite3_str *s = sqlite3_str_new(NULL);
	char *q = out_ident(view);
	sqlite3_str_appendf(s, "/* %s", q ? q : view);
	free(q);
	for (size_t i = 0; i < cols.n; i++) {
		q = out_ident(cols.v[i]);
		sqlite3_str_appendf(s, "%c%s", i ? ',' : '(', q ? q : cols.v[i]);
		free(q);
	}
	sqlite3_str_appendall(s, ") */");
	strs_free(&cols);
	return sqlite3_str_finish(s);
}

int schema_show(struct shell *sh, int argc, char **argv)
{
	const char *name = NULL;
	int nosys = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--nosys") || !strcmp(argv[i], "-nosys"))
			nosys = 1;
		else if (argv[i][0] == '-' || name) {
			shell_error("usage: .schema ?--nosys? ?LIKE-PATTERN?");
			return -1;
		} else
			name = argv[i];
	}
	if (name && (sqlite3_strlike(name, "sqlite_master", '\\') == 0 ||
		     sqlite3_strlike(name, "sqlite_schema", '\\') == 0 ||
		     sqlite3_strlike(name, "main.sqlite_master", '\\') == 0 ||
		     sqlite3_strlike(name, "main.sqlite_schema", '\\') == 0))
		fputs("CREATE TABLE sqlite_schema (\n  type text,\n  name text,\n  tbl_name text,\n"
		      "  rootpage integer,\n  sql text\n);\n",
		      sh->outf);
	sqlite3_str *q = sqlite3_str_new(NULL);
	sqlite3_str_appendall(q, "SELECT sql, type, name FROM sqlite_schema WHERE ");
	if (name) {
		int glob = strpbrk(name, "*?[") != NULL;
		sqlite3_str_appendf(q, "%s %s %Q%s AND ",
				    strchr(name, '.') ? "lower('main.' || tbl_name)" : "lower(tbl_name)",
				    glob ? "GLOB" : "LIKE", name, glob ? "" : " ESCAPE '\\'");
	}
	if (nosys)
		sqlite3_str_appendall(q, "name NOT LIKE 'sqlite_%' AND ");
	sqlite3_str_appendall(q, "sql IS NOT NULL AND " NOT_MTR " ORDER BY rowid");
	char *sql = sqlite3_str_finish(q);
	struct strs rows = { 0 };
	int rc = sql ? query_strs(sh, sql, NULL, 3, &rows) : -1;
	sqlite3_free(sql);
	unsigned intr0 = sh->interrupts;
	for (size_t i = 0; rc == 0 && i + 2 < rows.n && sh->interrupts == intr0; i += 3) {
		char *fake = !strcmp(rows.v[i + 1], "view") ? view_columns(sh, rows.v[i + 2]) : NULL;
		if (fake) {
			char *z = sqlite3_mprintf("%s\n%s", rows.v[i], fake);
			schema_line(sh->outf, z ? z : rows.v[i], ";\n");
			sqlite3_free(z);
		} else {
			schema_line(sh->outf, rows.v[i], ";\n");
		}
		sqlite3_free(fake);
	}
	strs_free(&rows);
	return rc;
}

/* ---- .dump ------------------------------------------------------------ */

/* INSERT statements for every row of table (its columns as PRAGMA
 * table_info lists them: generated columns are left out).  0, -1 or -2
 * (interrupted). */
static int dump_rows(struct shell *sh, const char *table, int newlines)
{
	struct strs cols = { 0 };
	int r = query_strs(sh, "SELECT name FROM pragma_table_info(?1)", table, 1, &cols);
	if (r)
		return r;
	if (!cols.n)
		return 0;
	sqlite3_str *s = sqlite3_str_new(NULL);
	sqlite3_str_appendall(s, "SELECT ");
	for (size_t i = 0; i < cols.n; i++) {
		char *c = out_ident(cols.v[i]);
		sqlite3_str_appendf(s, "%s%s", i ? "," : "", c ? c : "");
		free(c);
	}
	char *tq = out_ident(table);
	sqlite3_str_appendf(s, " FROM %s", tq ? tq : "");
	strs_free(&cols);
	char *sql = sqlite3_str_finish(s);
	mtr_stmt *st;
	int rc;
	r = sql && tq ? query_start(sh, sql, NULL, &st, &rc) : -1;
	if (r) {
		sqlite3_free(sql);
		free(tq);
		return r;
	}
	sqlite3_free(sql);
	FILE *f = sh->outf;
	for (; rc == MTR_ROW && !intr_int && !intr_quit; rc = mtr_step(st)) {
		fprintf(f, "INSERT INTO %s VALUES(", tq);
		for (int i = 0; i < mtr_column_count(st); i++) {
			if (i)
				fputc(',', f);
			switch (mtr_column_type(st, i)) {
			case MTR_NULL: fputs("NULL", f); break;
			case MTR_INTEGER: fputs((const char *)mtr_column_text(st, i), f); break;
			case MTR_FLOAT: out_sql_double(f, mtr_column_double(st, i), 1); break;
			case MTR_BLOB: out_sql_blob(f, mtr_column_blob(st, i), (size_t)mtr_column_bytes(st, i)); break;
			default:
				out_sql_string(f, (const char *)mtr_column_text(st, i), (size_t)mtr_column_bytes(st, i),
					       !newlines);
			}
		}
		fputs(");\n", f);
	}
	free(tq);
	if (rc == MTR_ROW) { /* stopped by Ctrl-C */
		mtr_finalize(st);
		shell_error("interrupted");
		intr_int = 0;
		sh->interrupts++;
		return -2;
	}
	return query_end(sh, st, rc);
}

int schema_dump(struct shell *sh, int argc, char **argv)
{
	int data_only = 0, nosys = 0, newlines = 0;
	sqlite3_str *like = sqlite3_str_new(NULL);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-') {
			a += a[1] == '-' ? 2 : 1;
			if (!strcmp(a, "data-only"))
				data_only = 1;
			else if (!strcmp(a, "nosys"))
				nosys = 1;
			else if (!strcmp(a, "newlines"))
				newlines = 1;
			else {
				shell_error("unknown option \"%s\" on \".dump\"", argv[i]);
				sqlite3_free(sqlite3_str_finish(like));
				return -1;
			}
		} else {
			sqlite3_str_appendf(like, "%sname LIKE %Q ESCAPE '\\'", sqlite3_str_length(like) ? " OR " : "",
					    argv[i]);
		}
	}
	if (!sqlite3_str_length(like))
		sqlite3_str_appendall(like, "true");
	char *zlike = sqlite3_str_finish(like);
	char *q = sqlite3_mprintf("SELECT name, type, sql FROM sqlite_schema AS o WHERE (%s) AND type=='table' "
				  "AND sql NOT NULL AND " NOT_MTR_FMT " ORDER BY tbl_name='sqlite_sequence', rowid",
				  zlike);
	struct strs t = { 0 };
	int rc = q ? query_strs(sh, q, NULL, 3, &t) : -1;
	sqlite3_free(q);
	FILE *f = sh->outf;
	if (!rc && !data_only)
		fputs("BEGIN TRANSACTION;\n", f);
	int errs = 0;
	for (size_t i = 0; !rc && i + 2 < t.n; i += 3) {
		const char *name = t.v[i], *sql = t.v[i + 2];
		if (!strcmp(name, "sqlite_sequence") && !nosys) {
			if (!data_only)
				fputs("DELETE FROM sqlite_sequence;\n", f);
		} else if (sqlite3_strglob("sqlite_stat?", name) == 0 && !nosys) {
			if (!data_only)
				fputs("ANALYZE sqlite_schema;\n", f);
		} else if (!strncmp(name, "sqlite_", 7)) {
			continue;
		} else if (data_only) {
			/* rows only */
		} else if (!strncmp(sql, "CREATE VIRTUAL TABLE", 20)) {
			fprintf(f, "/* virtual table %s not dumped */\n", name);
			continue;
		} else if (sqlite3_strglob("CREATE TABLE ['\"]*", sql) == 0) {
			fprintf(f, "CREATE TABLE IF NOT EXISTS %s;\n", sql + 13);
		} else {
			schema_line(f, sql, ";\n");
		}
		int r = dump_rows(sh, name, newlines);
		errs += r != 0;
		if (r == -2)
			rc = -1;
	}
	strs_free(&t);
	if (!rc && !data_only) {
		q = sqlite3_mprintf("SELECT sql FROM sqlite_schema AS o WHERE (%s) AND sql NOT NULL "
				    "AND type IN ('index','trigger','view') AND " NOT_MTR_FMT " ORDER BY rowid",
				    zlike);
		rc = q ? query_strs(sh, q, NULL, 1, &t) : -1;
		sqlite3_free(q);
		for (size_t i = 0; !rc && i < t.n; i++) {
			const char *z = t.v[i];
			while (z[0] && (z[0] != '-' || z[1] != '-'))
				z++;
			fprintf(f, "%s%s", t.v[i], z[0] ? "\n;\n" : ";\n");
		}
		strs_free(&t);
	}
	sqlite3_free(zlike);
	if (!rc && !data_only)
		fputs(errs ? "ROLLBACK; -- due to errors\n" : "COMMIT;\n", f);
	return rc || errs ? -1 : 0;
}
