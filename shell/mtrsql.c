/*
 * mtrsql.c - the interactive shell of Metronome (doc/mtrsql.1).
 *
 *   mtrsql [URI] [-c SQL]... [-bail] [--keep] [--mode M] [--headers] [--echo]
 *
 * With no URI it attaches to the local cluster of the Quick start, starting
 * it when it is not running (src/client/localcluster.h), and stops what it started
 * when it exits unless --keep is given.  Statements are collected across
 * lines until complete (sqlite3_complete), run through the client library
 * (include/metronome.h) and printed in one of the output modes of
 * shell/output.c.  Interactive use gets readline: editing, a history file,
 * and completion of SQL keywords, table and column names, dot-commands and
 * file names.  Exit status: 0, or 1 when any statement failed (2: usage or
 * connection error).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>
#include <sqlite3.h>

#include "localcluster.h"
#include "log.h"
#include "metronome.h"
#include "backup.h"
#include "output.h"
#include "sql.h"

struct shell {
	mtr *db;
	struct out_opts out;
	FILE *outf;      /* .output target (stdout by default) */
	int bail, echo, timer, changes;
	int failed;      /* any statement failed */
	int interactive;
	char uri[600];
	struct localcluster lc;
	int local, keep;
};

static struct shell *g_shell; /* for the readline completion callbacks */

/* ---- running SQL ------------------------------------------------------ */

/* Print an error; when the message has "line L, column C" show the line of
 * the statement with a caret under the column. */
static void print_error(const char *sql, const char *msg)
{
	fprintf(stderr, "Error: %s\n", msg);
	unsigned line, col;
	const char *at = strstr(msg, "line ");
	if (!at || sscanf(at, "line %u, column %u", &line, &col) != 2 || !line || !col)
		return;
	const char *p = sql;
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

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Run every statement of sql; rows printed in the current mode.  0, or -1
 * when a statement failed (the rest of the text is skipped). */
static int run_sql(struct shell *sh, const char *sql)
{
	const char *p = sql;
	double t0 = now_s();
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';')
			p++;
		if (!*p)
			break;
		mtr_stmt *st = NULL;
		const char *tail = NULL;
		int rc = mtr_prepare(sh->db, p, -1, &st, &tail);
		if (rc) {
			print_error(p, mtr_errmsg(sh->db));
			return -1;
		}
		if (!st) { /* only a comment */
			p = tail && tail > p ? tail : p + strlen(p);
			continue;
		}
		if (sh->echo)
			fprintf(sh->outf, "%.*s\n", (int)(tail - p), p);
		struct out_table t;
		out_begin(&t, &sh->out, sh->outf);
		int ncol = mtr_column_count(st);
		int named = 0;
		while ((rc = mtr_step(st)) == MTR_ROW) {
			ncol = mtr_column_count(st);
			if (!named) {
				for (int i = 0; i < ncol; i++)
					out_column(&t, mtr_column_name(st, i));
				named = 1;
			}
			for (int i = 0; i < ncol; i++) {
				int ty = mtr_column_type(st, i);
				const char *txt = ty == MTR_NULL ? NULL : (const char *)mtr_column_text(st, i);
				out_value(&t, ty == MTR_INTEGER || ty == MTR_FLOAT ? OUT_NUMBER
					      : ty == MTR_NULL			 ? OUT_NULL
					      : ty == MTR_BLOB			 ? OUT_BLOB
										 : OUT_TEXT,
					  txt, mtr_column_bytes(st, i));
			}
			out_row_end(&t);
		}
		out_end(&t);
		if (rc != MTR_DONE) {
			print_error(p, mtr_errmsg(sh->db));
			mtr_finalize(st);
			return -1;
		}
		if (sh->changes && !mtr_stmt_readonly(st))
			fprintf(sh->outf, "changes: %lld   total_changes: -   last_insert_rowid: %lld\n",
				(long long)mtr_changes(sh->db), (long long)mtr_last_insert_rowid(sh->db));
		mtr_finalize(st);
		p = tail && tail > p ? tail : p + strlen(p);
	}
	if (sh->timer)
		fprintf(sh->outf, "Run Time: real %.3f (instance %llu)\n", now_s() - t0,
			(unsigned long long)mtr_last_instance(sh->db));
	fflush(sh->outf);
	return 0;
}

/* Run a query whose rows are printed as plain lines (for dot-commands). */
static int run_query_lines(struct shell *sh, const char *sql, const char *fmt_prefix)
{
	mtr_stmt *st;
	if (mtr_prepare(sh->db, sql, -1, &st, NULL) || !st) {
		print_error(sql, mtr_errmsg(sh->db));
		return -1;
	}
	int rc;
	while ((rc = mtr_step(st)) == MTR_ROW) {
		const unsigned char *v = mtr_column_text(st, 0);
		fprintf(sh->outf, "%s%s\n", fmt_prefix, v ? (const char *)v : "");
	}
	if (rc != MTR_DONE)
		print_error(sql, mtr_errmsg(sh->db));
	mtr_finalize(st);
	return rc == MTR_DONE ? 0 : -1;
}

/* ---- dot-commands ----------------------------------------------------- */

static const char *const dot_help[] = {
	".backup FILE           a consistent SQLite copy of the database (at one instance) into FILE",
	".bail on|off           stop at the first error",
	".changes on|off        show the changes of each write",
	".cluster               members, roles and lag (mtr_members, mtr_streams)",
	".consistency [MODE]    show or set read consistency: none, session, linearizable (reconnects)",
	".dump [TABLE]          the schema and rows as SQL text (a script that rebuilds them)",
	".echo on|off           print each statement before running it",
	".exit, .quit           leave (stops the local cluster if this shell started it)",
	".headers on|off        column names in list, csv and line modes",
	".help                  this text",
	".import FILE TABLE     load CSV rows into TABLE (created from the header row if missing)",
	".indexes [TABLE]       index names",
	".mode MODE             list, csv, table, box, line, json",
	".nullvalue TEXT        how NULL is shown",
	".output [FILE]         send output to FILE, or back to the screen",
	".parse SQL             what the proxy makes of SQL: kind, tables, non-determinism",
	".read FILE             run the SQL in FILE",
	".schema [TABLE]        CREATE statements",
	".tables                table and view names",
	".timer on|off          time each statement",
	NULL,
};

static int onoff(const char *a, int *v)
{
	if (!a)
		return -1;
	if (!strcasecmp(a, "on") || !strcmp(a, "1") || !strcasecmp(a, "yes"))
		*v = 1;
	else if (!strcasecmp(a, "off") || !strcmp(a, "0") || !strcasecmp(a, "no"))
		*v = 0;
	else
		return -1;
	return 0;
}

static int run_file(struct shell *sh, FILE *f);

static int dot_parse(struct shell *sh, const char *text)
{
	struct sql_result *res;
	if (sql_parse(text, strlen(text), &res)) {
		fprintf(stderr, "Error: out of memory\n");
		return -1;
	}
	char buf[8192];
	for (unsigned i = 0; i < res->n_stmts; i++) {
		sql_stmt_json(&res->stmts[i], buf, sizeof(buf));
		fprintf(sh->outf, "%s\n", buf);
	}
	int ok = res->ok;
	sql_result_free(res);
	return ok ? 0 : -1;
}

static int reconnect(struct shell *sh, const char *consistency)
{
	char uri[700];
	const char *q = strchr(sh->uri, '?');
	if (!strncmp(sh->uri, "mtr://", 6))
		snprintf(uri, sizeof(uri), "%.*s?consistency=%s", q ? (int)(q - sh->uri) : (int)strlen(sh->uri),
			 sh->uri, consistency);
	else {
		fprintf(stderr, "Error: .consistency needs an mtr:// URI\n");
		return -1;
	}
	mtr *db;
	if (mtr_open(uri, &db)) {
		fprintf(stderr, "Error: %s\n", mtr_errmsg(db));
		mtr_close(db);
		return -1;
	}
	mtr_close(sh->db);
	sh->db = db;
	snprintf(sh->uri, sizeof(sh->uri), "%.*s", (int)sizeof(sh->uri) - 1, uri);
	return 0;
}


/* ---- .dump and .import -------------------------------------------------- */

/* One value of the current row as an SQL literal. */
static void dump_literal(FILE *f, mtr_stmt *st, int i)
{
	int ty = mtr_column_type(st, i);
	if (ty == MTR_NULL) {
		fputs("NULL", f);
	} else if (ty == MTR_INTEGER) {
		fprintf(f, "%lld", (long long)mtr_column_int64(st, i));
	} else if (ty == MTR_FLOAT) {
		char b[64];
		snprintf(b, sizeof(b), "%.17g", mtr_column_double(st, i));
		/* keep it a REAL when it prints like an integer */
		fprintf(f, "%s%s", b, strpbrk(b, ".eEni") ? "" : ".0");
	} else if (ty == MTR_BLOB) {
		const unsigned char *b = mtr_column_blob(st, i);
		int n = mtr_column_bytes(st, i);
		fputs("X'", f);
		for (int k = 0; k < n; k++)
			fprintf(f, "%02x", b[k]);
		fputc('\'', f);
	} else {
		const char *t = (const char *)mtr_column_text(st, i);
		int n = mtr_column_bytes(st, i);
		fputc('\'', f);
		for (int k = 0; k < n; k++) {
			if (t[k] == '\'')
				fputc('\'', f);
			fputc(t[k], f);
		}
		fputc('\'', f);
	}
}

/* .dump [TABLE]: CREATE statements, then every row as an INSERT, then the
 * indexes, triggers and views, in one transaction. */
static int dot_dump(struct shell *sh, const char *like)
{
	mtr_stmt *st;
	char *q = sqlite3_mprintf("SELECT name, sql FROM sqlite_schema WHERE type='table' AND sql IS NOT NULL "
				  "AND name NOT LIKE 'sqlite_%%' AND name NOT LIKE 'mtr_%%' AND name LIKE %Q ORDER BY rowid",
				  like ? like : "%");
	int rc = q ? mtr_prepare(sh->db, q, -1, &st, NULL) : MTR_ENOMEM;
	sqlite3_free(q);
	if (rc || !st) {
		fprintf(stderr, "Error: %s\n", mtr_errmsg(sh->db));
		return -1;
	}
	char **tables = NULL;
	size_t nt = 0;
	/* (no PRAGMA foreign_keys=OFF as sqlite3 writes: the proxy refuses
	 * replica-local pragmas) */
	fputs("BEGIN TRANSACTION;\n", sh->outf);
	while ((rc = mtr_step(st)) == MTR_ROW) {
		fprintf(sh->outf, "%s;\n", (const char *)mtr_column_text(st, 1));
		char **t2 = realloc(tables, (nt + 1) * sizeof(*t2));
		if (t2) {
			tables = t2;
			tables[nt++] = strdup((const char *)mtr_column_text(st, 0));
		}
	}
	mtr_finalize(st);
	int bad = rc != MTR_DONE;
	for (size_t k = 0; k < nt && !bad; k++) {
		char *sel = sqlite3_mprintf("SELECT * FROM \"%w\"", tables[k]);
		if (!sel || mtr_prepare(sh->db, sel, -1, &st, NULL) || !st) {
			sqlite3_free(sel);
			bad = 1;
			break;
		}
		sqlite3_free(sel);
		while ((rc = mtr_step(st)) == MTR_ROW) {
			char *ins = sqlite3_mprintf("INSERT INTO \"%w\" VALUES(", tables[k]);
			fputs(ins ? ins : "", sh->outf);
			sqlite3_free(ins);
			for (int i = 0; i < mtr_column_count(st); i++) {
				if (i)
					fputc(',', sh->outf);
				dump_literal(sh->outf, st, i);
			}
			fputs(");\n", sh->outf);
		}
		bad |= rc != MTR_DONE;
		mtr_finalize(st);
	}
	for (size_t k = 0; k < nt; k++)
		free(tables[k]);
	free(tables);
	if (!bad) {
		q = sqlite3_mprintf("SELECT sql || ';' FROM sqlite_schema WHERE type IN ('index','trigger','view') "
				    "AND sql IS NOT NULL AND name NOT LIKE 'sqlite_%%' AND tbl_name LIKE %Q "
				    "ORDER BY rowid",
				    like ? like : "%");
		bad = q ? run_query_lines(sh, q, "") != 0 : 1;
		sqlite3_free(q);
	}
	if (bad) {
		fprintf(stderr, "Error: .dump: %s\n", mtr_errmsg(sh->db));
		return -1;
	}
	fputs("COMMIT;\n", sh->outf);
	return 0;
}

/* Read one CSV record (RFC 4180: quoted fields, "" inside quotes, newlines
 * inside quotes) from f into fields (NUL-terminated copies in *buf).
 * Returns the field count, 0 at the end of the file. */
static int csv_record(FILE *f, char **buf, size_t *cap, char ***fields, size_t *fcap)
{
	size_t len = 0;
	int n = 0, c, quoted = 0, any = 0;
	size_t start = 0;
	for (;;) {
		c = fgetc(f);
		if (c == EOF && !any)
			return 0;
		any = 1;
		if (len + 2 > *cap) {
			size_t nc = *cap ? *cap * 2 : 1024;
			char *b = realloc(*buf, nc);
			if (!b)
				return -1;
			*buf = b;
			*cap = nc;
		}
		if (quoted) {
			if (c == EOF)
				quoted = 0;
			else if (c == '"') {
				int d = fgetc(f);
				if (d == '"') {
					(*buf)[len++] = '"';
					continue;
				}
				quoted = 0;
				if (d != EOF)
					ungetc(d, f);
				continue;
			} else {
				(*buf)[len++] = (char)c;
				continue;
			}
		}
		if (c == '"' && len == start) {
			quoted = 1;
			continue;
		}
		if (c == ',' || c == '\n' || c == EOF) {
			if (len > start && (*buf)[len - 1] == '\r' && c != ',')
				len--;
			(*buf)[len++] = 0;
			if ((size_t)n + 1 > *fcap) {
				size_t nc = *fcap ? *fcap * 2 : 16;
				char **fl = realloc(*fields, nc * sizeof(*fl));
				if (!fl)
					return -1;
				*fields = fl;
				*fcap = nc;
			}
			(*fields)[n++] = (char *)(uintptr_t)start; /* offsets now, pointers below */
			start = len;
			if (c != ',')
				break;
			continue;
		}
		(*buf)[len++] = (char)c;
	}
	for (int i = 0; i < n; i++)
		(*fields)[i] = *buf + (uintptr_t)(*fields)[i];
	return n;
}

/* .import FILE TABLE: CSV rows inserted in transactions of 1,000 (each one
 * item: the client library collects BEGIN..COMMIT).  A missing table is
 * created from the header row (TEXT columns). */
static int dot_import(struct shell *sh, const char *file, const char *table)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "Error: cannot open \"%s\": %s\n", file, strerror(errno));
		return -1;
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	rewind(f);
	char *buf = NULL, **fld = NULL;
	size_t cap = 0, fcap = 0;
	int rc = 0, exists = 0;
	mtr_stmt *st = NULL;
	char *q = sqlite3_mprintf("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name=%Q", table);
	if (q && !mtr_prepare(sh->db, q, -1, &st, NULL) && st && mtr_step(st) == MTR_ROW)
		exists = mtr_column_int64(st, 0) > 0;
	mtr_finalize(st);
	sqlite3_free(q);
	int ncol = csv_record(f, &buf, &cap, &fld, &fcap);
	if (ncol <= 0) {
		fprintf(stderr, "Error: %s is empty\n", file);
		rc = -1;
		goto out;
	}
	long rows = 0;
	if (!exists) {
		sqlite3_str *c = sqlite3_str_new(NULL);
		sqlite3_str_appendf(c, "CREATE TABLE \"%w\"(", table);
		for (int i = 0; i < ncol; i++)
			sqlite3_str_appendf(c, "%s\"%w\" TEXT", i ? ", " : "", fld[i]);
		sqlite3_str_appendall(c, ")");
		char *ddl = sqlite3_str_finish(c);
		if (!ddl || mtr_exec(sh->db, ddl, NULL, NULL, NULL)) {
			fprintf(stderr, "Error: cannot create %s: %s\n", table, mtr_errmsg(sh->db));
			sqlite3_free(ddl);
			rc = -1;
			goto out;
		}
		sqlite3_free(ddl);
		ncol = csv_record(f, &buf, &cap, &fld, &fcap);
	}
	sqlite3_str *ins = sqlite3_str_new(NULL);
	sqlite3_str_appendf(ins, "INSERT INTO \"%w\" VALUES(", table);
	int width = ncol;
	for (int i = 0; i < width; i++)
		sqlite3_str_appendf(ins, "%s?%d", i ? "," : "", i + 1);
	sqlite3_str_appendall(ins, ")");
	char *isql = sqlite3_str_finish(ins);
	st = NULL;
	if (ncol > 0 && (!isql || mtr_prepare(sh->db, isql, -1, &st, NULL) || !st)) {
		fprintf(stderr, "Error: %s\n", mtr_errmsg(sh->db));
		sqlite3_free(isql);
		rc = -1;
		goto out;
	}
	sqlite3_free(isql);
	int tty = isatty(2), in_txn = 0;
	for (; ncol > 0; ncol = csv_record(f, &buf, &cap, &fld, &fcap)) {
		if (!in_txn) {
			if (mtr_exec(sh->db, "BEGIN", NULL, NULL, NULL))
				break;
			in_txn = 1;
		}
		for (int i = 0; i < width; i++)
			mtr_bind_text(st, i + 1, i < ncol ? fld[i] : NULL, -1);
		if (mtr_step(st) != MTR_DONE) {
			fprintf(stderr, "Error: %s line %ld: %s\n", file, rows + 2, mtr_errmsg(sh->db));
			rc = -1;
			break;
		}
		mtr_reset(st);
		if (++rows % 1000 == 0) {
			if (mtr_exec(sh->db, "COMMIT", NULL, NULL, NULL)) {
				rc = -1;
				break;
			}
			in_txn = 0;
			if (tty && size > 0)
				fprintf(stderr, "\rimporting %s: %ld rows, %3.0f%%", file, rows,
					100.0 * (double)ftell(f) / (double)size);
		}
	}
	if (in_txn && mtr_exec(sh->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL) && !rc) {
		fprintf(stderr, "Error: %s\n", mtr_errmsg(sh->db));
		rc = -1;
	}
	if (tty)
		fprintf(stderr, "\r%*s\r", 60, "");
	if (!rc)
		fprintf(stderr, "imported %ld rows into %s\n", rows, table);
	mtr_finalize(st);
out:
	free(buf);
	free(fld);
	fclose(f);
	return rc;
}

/* Run one dot-command line.  0 ok, -1 error, 1 quit. */
static int dot_command(struct shell *sh, char *line)
{
	char *argv[4] = { 0 };
	int argc = 0;
	char *rest = NULL;
	char *p = line + 1;
	while (argc < 4 && *p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (argc == 1)
			rest = p;
		argv[argc++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = 0;
	}
	if (!argc)
		return 0;
	const char *c = argv[0];
	if (!strcmp(c, "quit") || !strcmp(c, "exit") || !strcmp(c, "q"))
		return 1;
	if (!strcmp(c, "help")) {
		for (int i = 0; dot_help[i]; i++)
			fprintf(sh->outf, "%s\n", dot_help[i]);
		return 0;
	}
	if (!strcmp(c, "mode")) {
		if (!argv[1] || out_mode_parse(argv[1], &sh->out.mode)) {
			fprintf(stderr, "Error: .mode wants one of: list csv table box line json\n");
			return -1;
		}
		return 0;
	}
	if (!strcmp(c, "headers") || !strcmp(c, "header"))
		return onoff(argv[1], &sh->out.headers) ? (fprintf(stderr, "Error: .headers on|off\n"), -1) : 0;
	if (!strcmp(c, "bail"))
		return onoff(argv[1], &sh->bail) ? (fprintf(stderr, "Error: .bail on|off\n"), -1) : 0;
	if (!strcmp(c, "echo"))
		return onoff(argv[1], &sh->echo) ? (fprintf(stderr, "Error: .echo on|off\n"), -1) : 0;
	if (!strcmp(c, "timer"))
		return onoff(argv[1], &sh->timer) ? (fprintf(stderr, "Error: .timer on|off\n"), -1) : 0;
	if (!strcmp(c, "changes"))
		return onoff(argv[1], &sh->changes) ? (fprintf(stderr, "Error: .changes on|off\n"), -1) : 0;
	if (!strcmp(c, "nullvalue")) {
		snprintf(sh->out.nullvalue, sizeof(sh->out.nullvalue), "%s", argv[1] ? argv[1] : "");
		return 0;
	}
	if (!strcmp(c, "tables"))
		return run_query_lines(sh,
				       "SELECT name FROM sqlite_schema WHERE type IN ('table','view') "
				       "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'mtr_%' ORDER BY 1",
				       "");
	if (!strcmp(c, "schema") || !strcmp(c, "indexes") || !strcmp(c, "indices")) {
		int idx = c[0] == 'i';
		char q[600];
		char *lit = sqlite3_mprintf("%Q", argv[1] ? argv[1] : "%");
		snprintf(q, sizeof(q),
			 idx ? "SELECT name FROM sqlite_schema WHERE type='index' AND tbl_name LIKE %s ORDER BY 1"
			     : "SELECT sql || ';' FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'mtr_%%' "
			       "AND tbl_name LIKE %s ORDER BY tbl_name, type DESC, name",
			 lit);
		sqlite3_free(lit);
		return run_query_lines(sh, q, "");
	}
	if (!strcmp(c, "cluster")) {
		struct out_opts save = sh->out;
		sh->out.mode = sh->out.mode == OUT_BOX ? OUT_BOX : OUT_TABLE;
		sh->out.headers = 1;
		int rc = run_sql(sh, "SELECT id, address, role, alive, chosen, applied, chosen - applied AS lag "
				     "FROM mtr_members ORDER BY id");
		if (!rc)
			rc = run_sql(sh, "SELECT server, count(*) AS streams, max(watermark) AS max_watermark "
					 "FROM mtr_streams GROUP BY server ORDER BY server");
		sh->out = save;
		return rc;
	}
	if (!strcmp(c, "consistency")) {
		if (!argv[1]) {
			const char *q = strstr(sh->uri, "consistency=");
			fprintf(sh->outf, "%s\n", q ? q + 12 : "session");
			return 0;
		}
		if (strcmp(argv[1], "none") && strcmp(argv[1], "session") && strcmp(argv[1], "linearizable")) {
			fprintf(stderr, "Error: .consistency wants none, session or linearizable\n");
			return -1;
		}
		return reconnect(sh, argv[1]);
	}
	if (!strcmp(c, "parse")) {
		if (!rest) {
			fprintf(stderr, "Error: .parse SQL\n");
			return -1;
		}
		/* the arguments were split: rebuild the text after ".parse" */
		for (char *q = rest; q < p; q++)
			if (!*q)
				*q = ' ';
		return dot_parse(sh, rest);
	}
	if (!strcmp(c, "read")) {
		FILE *f = argv[1] ? fopen(argv[1], "r") : NULL;
		if (!f) {
			fprintf(stderr, "Error: cannot open \"%s\": %s\n", argv[1] ? argv[1] : "", strerror(errno));
			return -1;
		}
		int rc = run_file(sh, f);
		fclose(f);
		return rc < 0 ? -1 : rc;
	}
	if (!strcmp(c, "dump"))
		return dot_dump(sh, argv[1]);
	if (!strcmp(c, "backup") || !strcmp(c, "save")) {
		if (!argv[1]) {
			fprintf(stderr, "Error: .backup FILE\n");
			return -1;
		}
		char err[512];
		struct backup_stats bs;
		if (backup_run(sh->db, argv[1], &bs, err, sizeof err) != 0) {
			fprintf(stderr, "Error: .backup: %s\n", err);
			return -1;
		}
		if (sh->interactive)
			fprintf(stderr, "%s: %u tables, %llu rows, as of instance %llu\n", argv[1], bs.tables,
				(unsigned long long)bs.rows, (unsigned long long)bs.instance);
		return 0;
	}
	if (!strcmp(c, "import")) {
		if (!argv[1] || !argv[2]) {
			fprintf(stderr, "Error: .import FILE TABLE\n");
			return -1;
		}
		return dot_import(sh, argv[1], argv[2]);
	}
	if (!strcmp(c, "output")) {
		if (sh->outf != stdout)
			fclose(sh->outf);
		sh->outf = stdout;
		if (argv[1] && strcmp(argv[1], "stdout")) {
			FILE *f = fopen(argv[1], "w");
			if (!f) {
				fprintf(stderr, "Error: cannot write \"%s\": %s\n", argv[1], strerror(errno));
				return -1;
			}
			sh->outf = f;
		}
		return 0;
	}
	fprintf(stderr, "Error: unknown command \".%s\"; .help lists them\n", c);
	return -1;
}

/* ---- input ------------------------------------------------------------ */

/* Append line to the statement buffer. */
static int buf_add(char **buf, size_t *len, size_t *cap, const char *line)
{
	size_t n = strlen(line);
	if (*len + n + 2 > *cap) {
		size_t c = (*cap ? *cap * 2 : 4096) + n;
		char *b = realloc(*buf, c);
		if (!b)
			return -1;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, line, n);
	*len += n;
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = 0;
	return 0;
}

/* Handle one complete input unit (dot-command line or SQL text).  Returns
 * 1 to quit, 0 to go on. */
static int handle(struct shell *sh, char *text, int is_dot)
{
	int rc = is_dot ? dot_command(sh, text) : run_sql(sh, text);
	if (rc == 1)
		return 1;
	if (rc < 0) {
		sh->failed = 1;
		if (sh->bail)
			return 1;
	}
	return 0;
}

/* Read a script from f (non-interactive).  Returns 1 when asked to quit. */
static int run_file(struct shell *sh, FILE *f)
{
	char *buf = NULL, *line = NULL;
	size_t len = 0, cap = 0, lcap = 0;
	ssize_t n;
	int quit = 0;
	while (!quit && (n = getline(&line, &lcap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (len == 0 && line[strspn(line, " \t")] == '.') {
			quit = handle(sh, line + strspn(line, " \t"), 1);
			continue;
		}
		if (buf_add(&buf, &len, &cap, line))
			break;
		if (sqlite3_complete(buf)) {
			quit = handle(sh, buf, 0);
			len = 0;
		}
	}
	if (!quit && len && buf[strspn(buf, " \t\n")]) {
		fprintf(stderr, "Error: incomplete SQL at the end of the input: %s\n", buf);
		sh->failed = 1;
	}
	free(buf);
	free(line);
	return quit;
}

/* ---- readline completion ---------------------------------------------- */

static const char *const sql_words[] = {
	"ABORT", "ALTER", "AND", "AS", "ASC", "BEGIN", "BETWEEN", "BY", "CASE", "CHECK", "COLLATE", "COMMIT",
	"CREATE", "CROSS", "DEFAULT", "DELETE", "DESC", "DISTINCT", "DROP", "ELSE", "END", "EXISTS", "EXPLAIN",
	"FOREIGN", "FROM", "GROUP", "HAVING", "IF", "IN", "INDEX", "INNER", "INSERT", "INTEGER", "INTO", "IS",
	"JOIN", "KEY", "LEFT", "LIKE", "LIMIT", "NOT", "NULL", "OFFSET", "ON", "OR", "ORDER", "PRIMARY",
	"REAL", "REFERENCES", "REPLACE", "RETURNING", "ROLLBACK", "SELECT", "SET", "TABLE", "TEXT", "THEN",
	"TRIGGER", "UNION", "UNIQUE", "UPDATE", "USING", "VALUES", "VIEW", "WHEN", "WHERE", "WITH", "BLOB",
	NULL,
};

static char **names;   /* tables and columns of the cluster's schema */
static size_t nnames;

static void load_names(struct shell *sh)
{
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	names = NULL;
	nnames = 0;
	mtr_stmt *st;
	const char *q = "SELECT DISTINCT name FROM (SELECT m.name AS name FROM sqlite_schema m "
			"WHERE m.type IN ('table','view') AND m.name NOT LIKE 'sqlite_%' UNION ALL "
			"SELECT p.name FROM sqlite_schema m, pragma_table_info(m.name) p "
			"WHERE m.type IN ('table','view') AND m.name NOT LIKE 'sqlite_%')";
	if (mtr_prepare(sh->db, q, -1, &st, NULL) || !st)
		return;
	while (mtr_step(st) == MTR_ROW) {
		const unsigned char *v = mtr_column_text(st, 0);
		char **n2 = v ? realloc(names, (nnames + 1) * sizeof(*names)) : NULL;
		if (!n2)
			continue;
		names = n2;
		names[nnames] = strdup((const char *)v);
		if (names[nnames])
			nnames++;
	}
	mtr_finalize(st);
}

static char *complete_word(const char *text, int state)
{
	static size_t i, phase;
	static size_t tlen;
	if (!state) {
		i = 0;
		phase = 0;
		tlen = strlen(text);
	}
	while (phase < 2) {
		if (phase == 0) {
			while (i < nnames) {
				const char *w = names[i++];
				if (!strncasecmp(w, text, tlen))
					return strdup(w);
			}
		} else {
			while (sql_words[i]) {
				const char *w = sql_words[i++];
				if (!strncasecmp(w, text, tlen)) {
					/* keep the case the user typed */
					char *r = strdup(w);
					if (r && tlen && text[0] >= 'a' && text[0] <= 'z')
						for (char *c = r; *c; c++)
							*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
					return r;
				}
			}
		}
		phase++;
		i = 0;
	}
	return NULL;
}

static char *complete_dot(const char *text, int state)
{
	static int i;
	static size_t tlen;
	if (!state) {
		i = 0;
		tlen = strlen(text);
	}
	while (dot_help[i]) {
		const char *h = dot_help[i++];
		size_t n = strcspn(h, " ,");
		if (n >= tlen && !strncmp(h, text, tlen)) {
			char *r = strndup(h, n);
			return r;
		}
	}
	return NULL;
}

static char **shell_complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;
	/* the first word of a line that starts with '.': a dot-command */
	if (start == 0 && text[0] == '.')
		return rl_completion_matches(text, complete_dot);
	/* after a dot-command that takes a file: file names */
	if (rl_line_buffer[0] == '.' &&
	    (!strncmp(rl_line_buffer, ".read", 5) || !strncmp(rl_line_buffer, ".output", 7) ||
	     !strncmp(rl_line_buffer, ".backup", 7) || (!strncmp(rl_line_buffer, ".import", 7) && start <= 8 + (int)strcspn(rl_line_buffer + 8, " ")))) {
		rl_attempted_completion_over = 0;
		return NULL;
	}
	if (g_shell && !nnames)
		load_names(g_shell);
	return rl_completion_matches(text, complete_word);
}

static void history_path(char *buf, size_t n)
{
	const char *h = getenv("MTR_HISTORY");
	if (h)
		snprintf(buf, n, "%s", h);
	else
		snprintf(buf, n, "%s/.mtrsql_history", getenv("HOME") ? getenv("HOME") : ".");
}

static void run_interactive(struct shell *sh)
{
	char hist[1024];
	history_path(hist, sizeof(hist));
	using_history();
	read_history(hist);
	rl_readline_name = "mtrsql";
	rl_attempted_completion_function = shell_complete;
	rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,";
	printf("mtrsql %s: connected to %s\nEnter \".help\" for usage hints.\n", PACKAGE_VERSION, sh->uri);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		char *line = readline(len ? "   ...> " : "mtrsql> ");
		if (!line) {
			putchar('\n');
			break;
		}
		if (*line)
			add_history(line);
		int quit = 0;
		if (len == 0 && line[strspn(line, " \t")] == '.') {
			quit = dot_command(sh, line + strspn(line, " \t")) == 1;
		} else if (!buf_add(&buf, &len, &cap, line) && sqlite3_complete(buf)) {
			if (run_sql(sh, buf))
				sh->failed = 1;
			len = 0;
			/* the schema may have changed: reload names at the next completion */
			for (size_t i = 0; i < nnames; i++)
				free(names[i]);
			nnames = 0;
		}
		free(line);
		if (quit)
			break;
	}
	free(buf);
	write_history(hist);
	history_truncate_file(hist, 2000);
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrsql [URI] [-c SQL]... [-bail] [--keep] [--mode MODE] [--headers] [--echo]\n"
		   "  URI        mtr://HOST:PORT[,HOST:PORT...][?consistency=...] (doc/client.md);\n"
		   "             none: the local cluster (started if needed, stopped at exit)\n"
		   "  -c SQL     run SQL (repeatable), then exit\n"
		   "  -bail      stop at the first error\n"
		   "  --keep     leave a local cluster this shell started running at exit\n"
		   "  --mode M   list (default), csv, table, box, line, json\n"
		   "  --headers  print column names\n"
		   "Without -c, reads SQL from standard input (a script when it is not a terminal).\n"
		   "Exit status: 0, 1 when a statement failed, 2 on a usage or connection error.\n");
}

int main(int argc, char **argv)
{
	struct shell sh = { .outf = stdout };
	out_opts_init(&sh.out);
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },	    { "keep", no_argument, NULL, 'k' },
		{ "mode", required_argument, NULL, 'm' },   { "headers", no_argument, NULL, 'H' },
		{ "echo", no_argument, NULL, 'e' },	    { "bail", no_argument, NULL, 'b' },
		{ "version", no_argument, NULL, 'V' },	    { 0, 0, 0, 0 },
	};
	const char **cmds = calloc((size_t)argc, sizeof(*cmds));
	int ncmds = 0;
	/* accept the sqlite3-style single-dash long options too */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c"))
			i++; /* its SQL argument is never an option */
		else if (!strcmp(argv[i], "-bail"))
			argv[i] = (char *)"--bail";
		else if (!strcmp(argv[i], "-keep"))
			argv[i] = (char *)"--keep";
		else if (!strcmp(argv[i], "-echo"))
			argv[i] = (char *)"--echo";
		else if (!strcmp(argv[i], "-header") || !strcmp(argv[i], "-headers"))
			argv[i] = (char *)"--headers";
	}
	int c;
	while ((c = getopt_long(argc, argv, "c:hHm:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cmds[ncmds++] = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("mtrsql %s\n", PACKAGE_VERSION); return 0;
		case 'k': sh.keep = 1; break;
		case 'H': sh.out.headers = 1; break;
		case 'e': sh.echo = 1; break;
		case 'b': sh.bail = 1; break;
		case 'm':
			if (out_mode_parse(optarg, &sh.out.mode)) {
				fprintf(stderr, "mtrsql: unknown mode '%s'; use list, csv, table, box, line or json\n", optarg);
				return 2;
			}
			break;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind > 1) {
		usage(stderr);
		return 2;
	}
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_WARN);
	char err[600];
	if (optind < argc) {
		snprintf(sh.uri, sizeof(sh.uri), "%s", argv[optind]);
	} else {
		if (localcluster_init(&sh.lc, NULL, NULL)) {
			fprintf(stderr, "mtrsql: no directory for the local cluster; set MTR_LOCAL_DIR or HOME\n");
			return 2;
		}
		int rc = localcluster_up(&sh.lc, 30000, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "mtrsql: local cluster: %s\n", err);
			if (sh.lc.started)
				localcluster_down(&sh.lc, 10000);
			return 2;
		}
		sh.local = 1;
		fprintf(stderr, "mtrsql: %s the local cluster in %s\n", sh.lc.started ? "started" : "attached to",
			sh.lc.dir);
		snprintf(sh.uri, sizeof(sh.uri), "%s", sh.lc.uri);
	}
	int status = 0;
	if (mtr_open(sh.uri, &sh.db)) {
		fprintf(stderr, "mtrsql: cannot connect to %s: %s\n", sh.uri, mtr_errmsg(sh.db));
		status = 2;
		goto out;
	}
	g_shell = &sh;
	if (ncmds) {
		for (int i = 0; i < ncmds; i++) {
			char *copy = strdup(cmds[i]);
			int quit = copy ? handle(&sh, copy, copy[strspn(copy, " \t")] == '.') : 1;
			free(copy);
			if (quit)
				break;
		}
	} else if (isatty(0) && isatty(1)) {
		sh.interactive = 1;
		run_interactive(&sh);
	} else {
		run_file(&sh, stdin);
	}
	status = sh.failed ? 1 : 0;
out:
	mtr_close(sh.db);
	if (sh.outf != stdout)
		fclose(sh.outf);
	if (sh.local && sh.lc.started && !sh.keep) {
		localcluster_down(&sh.lc, 15000);
		fprintf(stderr, "mtrsql: stopped the local cluster (data kept in %s)\n", sh.lc.dir);
	}
	free(cmds);
	return status;
}
