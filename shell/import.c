/*
 * import.c - .import (shell.h, doc/mtrsql.1): CSV or ASCII-separated rows
 * into a table, with sqlite3 3.40's options (--csv, --ascii, --skip N,
 * --schema S, -v) and messages ("FILE:LINE: INSERT failed: ...", "expected
 * N columns but found M - ..."), in batches sized for speed.
 *
 * sqlite3 inserts row by row in one local transaction; through a cluster
 * every request is a round trip through the log, so rows go in batches:
 * one multi-row INSERT (the first of up to BATCH_BYTES of values and at
 * most 32,766 parameters, every later one of as many rows, so that all
 * have one SQL text), which the servers apply atomically, and up to DEPTH
 * batches are sent before the first answer is awaited (mtr_submit), so
 * the proxy, the servers and the shell work at once (doc/performance.md,
 * ".import": 64 KiB and 16 were the fastest on the test machine).  When a
 * batch fails because of a row (a constraint, a type), it is split into
 * SPLIT ranges sent together, the failing ranges again, down to the single
 * row, which is reported with its file line; the other rows go in.  A bad
 * row therefore costs about SPLIT*log_SPLIT(rows per batch) requests in
 * log_SPLIT(rows per batch) round trips (3 for 64 KiB batches), and the
 * rows of a failed batch go in after those of the batches sent before its
 * answer came, its ranges in the order of their answers.  Any other error
 * (no such table, no connection, Ctrl-C) stops the import; the batches
 * already applied stay.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shell.h"

#define BATCH_BYTES (64 << 10)  /* values per INSERT (bytes of text) */
#define MAX_PARAMS 32766        /* SQLite's default SQLITE_MAX_VARIABLE_NUMBER */
#define MAX_FAILED_IN_A_ROW 100 /* then the failures are not about rows */
#define DEPTH 16                 /* batches sent and not yet answered, at most */
#define SPLIT 16                 /* ranges a failed batch is split into, sent together */
#define PARTS_AHEAD 64           /* ... of which at most this many in flight */

/* ---- the reader (sqlite3's csv_read_one_field / ascii_read_one_field) - */

struct reader {
	FILE *f;
	const char *name;
	int csv;          /* RFC 4180 quoting; else ASCII: no quoting */
	int colsep, rowsep;
	long line;        /* the current line (1-based) */
	int term;         /* what ended the last field: colsep, rowsep or EOF */
	int not_first;    /* a field was read (a BOM is skipped before the first) */
	char *z;          /* the last field */
	size_t n, cap;
};

static int put_grow(struct reader *r, int c)
{
	size_t cap = r->cap ? r->cap * 2 : 256;
	char *z = realloc(r->z, cap);
	if (!z)
		return -1;
	r->z = z;
	r->cap = cap;
	r->z[r->n++] = (char)c;
	return 0;
}

static inline int put(struct reader *r, int c)
{
	if (__builtin_expect(r->n + 1 >= r->cap, 0))
		return put_grow(r, c);
	r->z[r->n++] = (char)c;
	return 0;
}

/* Read one field into r->z (NUL-terminated); NULL at the end of the input
 * (or out of memory).  As sqlite3: in CSV a quoted field may hold the
 * separators, newlines and "" for a quote; a CR before the row separator
 * is dropped; a UTF-8 byte order mark at the start is skipped. */
static char *read_field(struct reader *r)
{
	FILE *f = r->f;
	r->n = 0;
	int c = getc_unlocked(f);
	if (c == EOF) {
		r->term = EOF;
		return NULL;
	}
	if (r->csv && c == '"') {
		int pc = 0, ppc = 0;
		long start = r->line;
		for (;;) {
			c = getc_unlocked(f);
			if (c == r->rowsep)
				r->line++;
			if (c == '"' && pc == '"') {
				pc = 0;
				continue;
			}
			if ((c == r->colsep && pc == '"') || (c == r->rowsep && pc == '"') ||
			    (c == r->rowsep && pc == '\r' && ppc == '"') || (c == EOF && pc == '"')) {
				do
					r->n--;
				while (r->z[r->n] != '"');
				r->term = c;
				break;
			}
			if (pc == '"' && c != '\r')
				fprintf(stderr, "%s:%ld: unescaped \" character\n", r->name, r->line);
			if (c == EOF) {
				fprintf(stderr, "%s:%ld: unterminated \"-quoted field\n", r->name, start);
				r->term = EOF;
				break;
			}
			if (put(r, c))
				return NULL;
			ppc = pc;
			pc = c;
		}
	} else {
		if (c == 0xef && !r->not_first) {
			put(r, c);
			if ((c = getc_unlocked(f)) == 0xbb) {
				put(r, c);
				if ((c = getc_unlocked(f)) == 0xbf) {
					r->not_first = 1;
					return read_field(r);
				}
			}
		}
		while (c != EOF && c != r->colsep && c != r->rowsep) {
			if (put(r, c))
				return NULL;
			c = getc_unlocked(f);
		}
		if (c == r->rowsep) {
			r->line++;
			if (r->n && r->z[r->n - 1] == '\r')
				r->n--;
		}
		r->term = c;
	}
	r->not_first = 1;
	if (put(r, 0))
		return NULL;
	return r->z;
}

/* ---- batches ---------------------------------------------------------- */

/* The rows of one batch: values back to back (NUL-terminated), one offset
 * per value (-1: NULL), the file line of each row; and, once submitted,
 * its state. */
/* The answer to one request sent with mtr_submit (on_answer). */
struct answer {
	struct import *im;
	int state; /* 0 not sent (a batch: filling), 1 submitted, 2 answered */
	int rc;    /* the answer's code */
	int ext;   /* and SQLite's extended code */
	char err[256];
};

struct batch {
	struct answer ans;
	char *buf;
	size_t len, cap;
	struct val {
		long at; /* offset in buf, -1: NULL */
		size_t n;  /* bytes before the NUL */
	} *off;
	size_t noff, offcap;
	long *line;
	size_t nrows, rowcap;
	sqlite3_str *warn; /* the column-count warnings of its rows, printed
			    * in line order with the failures at its answer */
	long *warn_line;
	size_t nwarn, warncap, warned;
};

struct import {
	struct shell *sh;
	struct reader rd;
	const char *table; /* quoted, with its schema */
	int ncol;
	struct batch b[DEPTH];
	int cur;           /* the batch being filled */
	size_t rows;       /* rows per batch, fixed by the first one (0: not yet) */
	mtr_stmt *st;      /* the INSERT of st_rows rows, kept for the next batch */
	size_t st_rows;
	long done, failed, failed_in_a_row;
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

/* The next value of the row being read (z NULL: a missing value). */
static int batch_value(struct batch *b, const char *z)
{
	if (grow((void **)&b->off, &b->offcap, b->noff + 1, sizeof *b->off))
		return -1;
	if (!z) {
		b->off[b->noff++] = (struct val){.at = -1};
		return 0;
	}
	size_t n = strlen(z); /* up to a NUL in the field, as sqlite3 binds it */
	if (grow((void **)&b->buf, &b->cap, b->len + n + 1, 1))
		return -1;
	memcpy(b->buf + b->len, z, n + 1);
	b->off[b->noff++] = (struct val){.at = (long)b->len, .n = n};
	b->len += n + 1;
	return 0;
}

/* A warning about the row of line (printed when the batch is settled). */
static void batch_warn(struct batch *b, long line, const char *fmt, ...)
{
	if (!b->warn)
		b->warn = sqlite3_str_new(NULL);
	if (grow((void **)&b->warn_line, &b->warncap, b->nwarn + 1, sizeof(long)))
		return;
	b->warn_line[b->nwarn++] = line;
	va_list ap;
	va_start(ap, fmt);
	sqlite3_str_vappendf(b->warn, fmt, ap);
	va_end(ap);
	sqlite3_str_appendchar(b->warn, 1, 0);
}

/* Print the warnings of rows before line (all: LONG_MAX). */
static void batch_warnings(struct batch *b, long line)
{
	const char *w = b->warn ? sqlite3_str_value(b->warn) : NULL;
	size_t at = 0;
	for (size_t k = 0; k < b->warned; k++)
		at += strlen(w + at) + 1;
	for (; b->warned < b->nwarn && b->warn_line[b->warned] < line; b->warned++) {
		fputs(w + at, stderr);
		at += strlen(w + at) + 1;
	}
}

static void batch_reset(struct batch *b)
{
	batch_warnings(b, LONG_MAX);
	if (b->warn)
		sqlite3_str_reset(b->warn);
	b->len = b->noff = b->nrows = b->nwarn = b->warned = 0;
	b->ans.state = 0;
}

/* Finalize st unless it is the kept statement. */
static void release(struct import *im, mtr_stmt *st)
{
	if (st != im->st)
		mtr_finalize(st);
}

/* Forget the kept statement (before the connection it belongs to closes). */
static void forget_kept(struct import *im)
{
	mtr_finalize(im->st);
	im->st = NULL;
	im->st_rows = 0;
}

/* The INSERT of rows [a, b) of batch bt, prepared and bound: one
 * multi-row INSERT ... VALUES(?,...),(?,...) with every value bound as
 * TEXT, as sqlite3 binds it.  (Rows as one JSON value read with json_each
 * spare the proxy the placeholders but cost the replicas more: slower.)
 * Every full batch has the same number of rows, hence the same text: its
 * statement is prepared once and kept (im->st; release() leaves it), and
 * the proxy's and the replicas' caches of parses and prepared statements
 * hit too. */
static int prepare_rows(struct import *im, struct batch *bt, size_t a, size_t b, mtr_stmt **st)
{
	int rc = 0;
	if (im->st && b - a == im->st_rows) {
		*st = im->st;
		mtr_reset(*st);
		goto bind;
	}
	sqlite3_str *s = sqlite3_str_new(NULL);
	sqlite3_str_appendf(s, "INSERT INTO %s VALUES", im->table);
	for (size_t r = a; r < b; r++) {
		sqlite3_str_appendall(s, r > a ? ",(" : "(");
		for (int i = 0; i < im->ncol; i++)
			sqlite3_str_appendall(s, i ? ",?" : "?");
		sqlite3_str_appendchar(s, 1, ')');
	}
	char *sql = sqlite3_str_finish(s);
	*st = NULL;
	if (!sql)
		return MTR_ENOMEM;
	rc = mtr_prepare(im->sh->db, sql, -1, st, NULL);
	sqlite3_free(sql);
	if (rc || !*st)
		return rc ? rc : MTR_ENOMEM;
	if (!im->st && b - a == im->rows) {
		im->st = *st;
		im->st_rows = b - a;
	}
bind:
	for (size_t k = a * (size_t)im->ncol, p = 1; k < b * (size_t)im->ncol && !rc; k++, p++)
		rc = bt->off[k].at < 0 ? mtr_bind_null(*st, (int)p)
				       : mtr_bind_text(*st, (int)p, bt->buf + bt->off[k].at, (int)bt->off[k].n);
	if (rc) {
		if (*st == im->st)
			forget_kept(im);
		else
			mtr_finalize(*st);
		*st = NULL;
	}
	return rc;
}

/* 1 when an INSERT failed because of a row's values (a constraint, a
 * type, a size), which halving finds; an error about the statement
 * itself (no such table, too many values) stops the import. */
static int row_error(int rc, int ext)
{
	int primary = ext & 0xff;
	return rc == MTR_ESQL && (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG);
}

static void on_answer(void *arg, int rc, int extended, int64_t changes, int64_t rowid)
{
	struct answer *a = arg;
	(void)changes, (void)rowid;
	a->rc = rc;
	a->ext = extended;
	a->state = 2;
	if (rc)
		snprintf(a->err, sizeof a->err, "%s", mtr_errmsg(a->im->sh->db));
}

/* Wait for answers (Ctrl-C ends the wait): until *state (a batch's or a
 * part's) is no longer 1 (submitted), or with state NULL until at most
 * below requests are pending.  0, or -1 when interrupted or the connection
 * failed (the connection is then closed, every submitted request answered,
 * and a new one opened). */
static int wait_answers(struct import *im, const int *state, int below)
{
	struct shell *sh = im->sh;
	while (state ? *state == 1 : mtr_pending(sh->db) > below) {
		int r = intr_int || intr_quit ? MTR_ECLOSED : mtr_poll(sh->db, 100);
		if (r < 0) {
			forget_kept(im);
			mtr_close(sh->db); /* answers ECLOSED to what is still submitted */
			sh->db = NULL;
			sh->nheld = 0;
			sh->interrupts++;
			shell_error("%s", intr_int || intr_quit ? "interrupted (a batch sent may still be applied)"
							  : "the connection failed");
			intr_int = 0;
			if (!intr_quit)
				shell_reconnect(sh, NULL);
			return -1;
		}
	}
	return 0;
}

/* ---- the rows of a failed batch --------------------------------------- */

/* One range of rows of a failed batch, sent on its own. */
struct part {
	struct answer ans;
	size_t a, b; /* rows [a, b) of the batch */
};

/* Run part p the waiting way (a busy proxy is waited out for the busy
 * timeout, as mtr_step does), when it could not be submitted or the proxy
 * was busy.  0, or -1 when interrupted. */
static int part_wait(struct import *im, struct batch *bt, struct part *p)
{
	/* nothing submitted may be pending while the shell waits on a
	 * worker (an interrupted worker keeps the handle) */
	if (wait_answers(im, NULL, 0))
		return -1;
	mtr_stmt *st;
	int rc = prepare_rows(im, bt, p->a, p->b, &st);
	if (!rc) {
		rc = shell_step(im->sh, st);
		if (rc == SHELL_EINTR) {
			/* the old handle and its statements, kept one
			 * included, now belong to the abandoned worker */
			im->st = NULL;
			im->st_rows = 0;
			return -1;
		}
		release(im, st);
	}
	p->ans.rc = rc == MTR_DONE ? 0 : rc;
	p->ans.ext = mtr_extended_errcode(im->sh->db);
	snprintf(p->ans.err, sizeof p->ans.err, "%s", mtr_errmsg(im->sh->db));
	p->ans.state = 2;
	return 0;
}

static int part_line_cmp(const void *x, const void *y)
{
	const struct part *p = x, *q = y;
	return p->a < q->a ? -1 : p->a > q->a;
}

/* Report the failed rows of batch bt (bad[0..n), single rows), in line
 * order with its column-count warnings.  0, or -1 when MAX_FAILED_IN_A_ROW
 * rows in a row failed (the import stops). */
static int report_rows(struct import *im, struct batch *bt, struct part *bad, size_t n)
{
	qsort(bad, n, sizeof *bad, part_line_cmp);
	size_t next = 0; /* the first row after the last failure seen */
	for (size_t k = 0; k < n; k++) {
		if (bad[k].a != next) /* the first row of the batch continues the run */
			im->failed_in_a_row = 0;
		next = bad[k].a + 1;
		batch_warnings(bt, bt->line[bad[k].a]);
		fprintf(stderr, "%s:%ld: INSERT failed: %s\n", im->rd.name, bt->line[bad[k].a], bad[k].ans.err);
		im->failed++;
		if (++im->failed_in_a_row >= MAX_FAILED_IN_A_ROW) {
			shell_error("%s: %d rows in a row failed; stopped", im->rd.name, MAX_FAILED_IN_A_ROW);
			return -1;
		}
	}
	if (next != bt->nrows)
		im->failed_in_a_row = 0;
	return 0;
}

/*
 * Insert rows [a, b) of batch bt, whose INSERT failed: split into up to
 * SPLIT ranges sent together (PARTS_AHEAD in flight at most), the ranges
 * that fail because of a row split again the same way, down to single
 * rows, which are reported; about log_SPLIT(rows) round trips in all,
 * while the batches sent after it stay in flight.  0, or -1 on an error
 * that stops the import (reported).
 */
static int insert_rows(struct import *im, struct batch *bt, size_t a, size_t b)
{
	size_t cap = b - a;
	struct part *cur = calloc(cap, sizeof *cur), *next = calloc(cap, sizeof *next),
		    *bad = calloc(cap, sizeof *bad);
	size_t n = 1, nbad = 0;
	int rc = 0;
	if (!cur || !next || !bad) {
		shell_error("%s: out of memory", im->rd.name);
		rc = -1;
		goto out;
	}
	cur[0] = (struct part){.ans.im = im, .a = a, .b = b};
	while (n && !rc) {
		for (size_t i = 0; i < n && !rc; i++) {
			struct part *p = &cur[i];
			if (mtr_pending(im->sh->db) >= PARTS_AHEAD && wait_answers(im, NULL, PARTS_AHEAD - 1)) {
				rc = -1;
				break;
			}
			mtr_stmt *st;
			if (prepare_rows(im, bt, p->a, p->b, &st) == 0) {
				p->ans.state = 1;
				if (mtr_submit(st, on_answer, &p->ans))
					p->ans.state = 0; /* sent the waiting way below */
				release(im, st);
			}
		}
		size_t m = 0;
		for (size_t i = 0; i < n && !rc; i++) {
			struct part *p = &cur[i];
			if (p->ans.state == 1 && wait_answers(im, &p->ans.state, 0)) {
				rc = -1;
				break;
			}
			if ((p->ans.state == 0 || p->ans.rc == MTR_EBUSY || p->ans.rc == MTR_EFULL) && part_wait(im, bt, p)) {
				rc = -1;
				break;
			}
			if (p->ans.rc == 0) {
				im->done += (long)(p->b - p->a);
			} else if (!row_error(p->ans.rc, p->ans.ext)) {
				shell_error("%s: INSERT failed: %s", im->rd.name, p->ans.err);
				rc = -1;
			} else if (p->b - p->a == 1) {
				bad[nbad++] = *p;
			} else {
				size_t rows = p->b - p->a, k = rows < SPLIT ? rows : SPLIT;
				for (size_t j = 0; j < k; j++)
					next[m++] = (struct part){.ans.im = im, .a = p->a + j * rows / k,
								  .b = p->a + (j + 1) * rows / k};
			}
		}
		/* after an error that stops the import, the rest of the level
		 * is still answered into cur (a wait that fails has closed the
		 * connection, which answers everything) */
		for (size_t i = 0; i < n && rc; i++)
			if (cur[i].ans.state == 1 && wait_answers(im, &cur[i].ans.state, 0))
				break;
		struct part *t = cur;
		cur = next;
		next = t;
		n = m;
	}
	if (!rc)
		rc = report_rows(im, bt, bad, nbad);
out:
	free(cur);
	free(next);
	free(bad);
	return rc;
}

/* Wait for batch b's answer and take it: on an SQL error (or a busy
 * proxy) its rows are inserted again one half at a time.  0 or -1. */
static int settle(struct import *im, struct batch *b)
{
	int rc = 0;
	if (b->ans.state == 1 && wait_answers(im, &b->ans.state, 0))
		return -1;
	if (b->ans.state == 2 && b->ans.rc == 0) {
		im->done += (long)b->nrows;
		im->failed_in_a_row = 0;
	} else if (b->ans.state == 2 && (row_error(b->ans.rc, b->ans.ext) || b->ans.rc == MTR_EBUSY || b->ans.rc == MTR_EFULL)) {
		rc = insert_rows(im, b, 0, b->nrows);
	} else if (b->ans.state == 2) {
		shell_error("%s: INSERT failed: %s", im->rd.name, b->ans.err);
		rc = -1;
	}
	batch_reset(b);
	return rc;
}

/* Send the batch being filled without waiting (at most DEPTH in flight),
 * and make the next one ready.  0 or -1. */
static int submit(struct import *im)
{
	struct batch *b = &im->b[im->cur];
	if (!b->nrows)
		return 0;
	mtr_stmt *st;
	int rc = prepare_rows(im, b, 0, b->nrows, &st);
	if (!rc) {
		b->ans.state = 1;
		rc = mtr_submit(st, on_answer, &b->ans);
		release(im, st);
		if (rc)
			b->ans.state = 0;
	}
	if (rc) /* the callback will not come: insert it the waiting way */
		rc = insert_rows(im, b, 0, b->nrows);
	if (b->ans.state == 0)
		batch_reset(b);
	im->cur = (im->cur + 1) % DEPTH;
	return rc || settle(im, &im->b[im->cur]) ? -1 : 0;
}

/* Submit what is left and take every answer, oldest first. */
static int finish(struct import *im, int ok)
{
	int rc = ok ? submit(im) : -1;
	for (int k = 0; k < DEPTH; k++) {
		struct batch *b = &im->b[(im->cur + k) % DEPTH];
		if (b->ans.state && (rc ? wait_answers(im, &b->ans.state, 0) : settle(im, b)))
			rc = -1;
	}
	return rc;
}

/* ---- .import ---------------------------------------------------------- */

/* The number of columns of table (0: no such table), -1 on error. */
static int table_columns(struct shell *sh, const char *schema, const char *table)
{
	char *q = sqlite3_mprintf("SELECT count(*) FROM pragma_table_info(%Q, %Q)", table, schema ? schema : "main");
	mtr_stmt *st = NULL;
	int n = -1;
	if (q && !mtr_prepare(sh->db, q, -1, &st, NULL) && st) {
		int rc = shell_step(sh, st);
		if (rc == SHELL_EINTR)
			st = NULL;
		else if (rc == MTR_ROW)
			n = (int)mtr_column_int64(st, 0);
		else
			shell_error("%s", mtr_errmsg(sh->db));
	} else {
		shell_error("%s", mtr_errmsg(sh->db));
	}
	mtr_finalize(st);
	sqlite3_free(q);
	return n;
}

static int import_file(struct import *im, const char *schema, const char *table, long skip, int verbose)
{
	struct shell *sh = im->sh;
	struct reader *rd = &im->rd;
	while (skip-- > 0)
		while (read_field(rd) && rd->term == rd->colsep)
			;
	int ncol = table_columns(sh, schema, table);
	if (ncol < 0)
		return -1;
	char *full = schema ? sqlite3_mprintf("\"%w\".\"%w\"", schema, table) : sqlite3_mprintf("\"%w\"", table);
	if (!full)
		return -1;
	im->table = full;
	int rc = 0;
	if (ncol == 0) { /* created from the first row, as sqlite3 does */
		sqlite3_str *c = sqlite3_str_new(NULL);
		sqlite3_str_appendf(c, "CREATE TABLE %s(\n", full);
		while (read_field(rd)) {
			sqlite3_str_appendf(c, "%s\"%w\" TEXT", ncol ? ", " : "", rd->z);
			ncol++;
			if (rd->term != rd->colsep)
				break;
		}
		sqlite3_str_appendall(c, ")");
		char *ddl = sqlite3_str_finish(c);
		if (!ncol) {
			shell_error("%s: empty file", rd->name);
			rc = -1;
		} else if (!ddl || run_exec(sh, ddl, 0)) {
			shell_error("cannot create %s: %s", table, sh->db ? mtr_errmsg(sh->db) : "not connected");
			rc = -1;
		}
		sqlite3_free(ddl);
	}
	im->ncol = ncol;
	size_t max_rows = (size_t)(MAX_PARAMS / (ncol > 0 ? ncol : 1));
	int tty = isatty(2) && sh->interactive;
	long lines0 = rd->line;
	struct stat sb;
	long size = fstat(fileno(rd->f), &sb) == 0 && S_ISREG(sb.st_mode) ? (long)sb.st_size : 0;
	for (int k = 0; k < DEPTH; k++)
		im->b[k].ans.im = im;
	mtr_busy_timeout(sh->db, 10000);
	while (!rc && rd->term != EOF) {
		struct batch *b = &im->b[im->cur];
		long start = rd->line;
		int i;
		size_t noff0 = b->noff, len0 = b->len;
		for (i = 0; i < ncol && !rc; i++) {
			char *z = read_field(rd);
			if (!z && i == 0)
				break;
			if (!rd->csv && (!z || !*z) && i == 0)
				break;
			if (batch_value(b, z)) {
				rc = -1;
				break;
			}
			if (i < ncol - 1 && rd->term != rd->colsep) {
				batch_warn(b, start, "%s:%ld: expected %d columns but found %d - filling the rest with NULL\n",
					   rd->name, start, ncol, i + 1);
				for (i++; i < ncol && !rc; i++)
					rc = batch_value(b, NULL);
			}
		}
		if (rd->term == rd->colsep) {
			do {
				read_field(rd);
				i++;
			} while (rd->term == rd->colsep);
			batch_warn(b, start, "%s:%ld: expected %d columns but found %d - extras ignored\n", rd->name,
				   start, ncol, i);
		}
		if (i < ncol) { /* the end of the input */
			b->noff = noff0;
			b->len = len0;
			break;
		}
		if (rc || grow((void **)&b->line, &b->rowcap, b->nrows + 1, sizeof(long))) {
			rc = -1;
			break;
		}
		b->line[b->nrows++] = start;
		/* the first batch closes at BATCH_BYTES and fixes the row count
		 * of every other (same text: see prepare_rows); a batch of much
		 * longer rows closes early, at 4 times the size */
		if (!im->rows && (b->nrows >= max_rows || b->len >= BATCH_BYTES))
			im->rows = b->nrows;
		if (im->rows && (b->nrows >= im->rows || b->len >= 4 * BATCH_BYTES)) {
			rc = submit(im);
			if (tty && size > 0)
				fprintf(stderr, "\rimporting %s: %ld rows, %3.0f%%", rd->name, im->done,
					100.0 * (double)ftell(rd->f) / (double)size);
		}
		if (intr_int || intr_quit) {
			shell_error("interrupted");
			intr_int = 0;
			sh->interrupts++;
			rc = -1;
		}
	}
	rc = finish(im, !rc);
	if (im->st && sh->db)
		forget_kept(im);
	if (sh->db)
		mtr_busy_timeout(sh->db, 0);
	if (tty)
		fprintf(stderr, "\r%*s\r", 70, "");
	if (verbose)
		fprintf(sh->outf, "Added %ld rows with %ld errors using %ld lines of input\n", im->done, im->failed,
			rd->line - lines0);
	if (im->failed)
		fprintf(stderr, "imported %ld rows into %s; %ld rows failed (listed above)\n", im->done, table, im->failed);
	else
		fprintf(stderr, "imported %ld rows into %s\n", im->done, table);
	sqlite3_free(full);
	return rc || im->failed ? -1 : 0;
}

int import_run(struct shell *sh, int argc, char **argv)
{
	const char *file = NULL, *table = NULL, *schema = NULL;
	int csv = -1, verbose = 0;
	long skip = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] == '-')
			a++;
		if (!strcmp(a, "-csv"))
			csv = 1;
		else if (!strcmp(a, "-ascii"))
			csv = 0;
		else if (!strcmp(a, "-skip") && i + 1 < argc)
			skip = atol(argv[++i]);
		else if (!strcmp(a, "-schema") && i + 1 < argc)
			schema = argv[++i];
		else if (!strcmp(a, "-v"))
			verbose = 1;
		else if (a[0] == '-' && argv[i][0] == '-' && a[1]) {
			shell_error("unknown option \"%s\" on .import", argv[i]);
			return -1;
		} else if (!file)
			file = argv[i];
		else if (!table)
			table = argv[i];
		else {
			shell_error("usage: .import [--csv|--ascii] [--skip N] [--schema S] [-v] FILE TABLE");
			return -1;
		}
	}
	if (!file || !table) {
		shell_error("usage: .import [--csv|--ascii] [--skip N] [--schema S] [-v] FILE TABLE");
		return -1;
	}
	struct import im = { .sh = sh };
	struct reader *rd = &im.rd;
	rd->name = file;
	rd->line = 1;
	const struct out_opts *o = &sh->out;
	if (csv == 1) {
		rd->csv = 1, rd->colsep = ',', rd->rowsep = '\n';
	} else if (csv == 0) {
		rd->colsep = 0x1f, rd->rowsep = 0x1e;
	} else {
		/* from .separator, as sqlite3; but list mode's default "|" reads
		 * CSV (sqlite3 would split on |) */
		if (strlen(o->colsep) != 1 || strlen(o->rowsep) > 2 || !o->rowsep[0]) {
			shell_error(".import wants a one-character column and row separator (.separator)");
			return -1;
		}
		int list_default = o->mode == OUT_LIST && !strcmp(o->colsep, "|");
		rd->colsep = list_default ? ',' : (unsigned char)o->colsep[0];
		rd->rowsep = !strcmp(o->rowsep, "\r\n") ? '\n' : (unsigned char)o->rowsep[0];
		rd->csv = !(rd->colsep == 0x1f && rd->rowsep == 0x1e);
	}
	int piped = file[0] == '|';
	rd->f = piped ? popen(file + 1, "r") : fopen(file, "r");
	if (!rd->f) {
		shell_error("cannot open \"%s\": %s", file, strerror(errno));
		return -1;
	}
	int rc = import_file(&im, schema, table, skip, verbose);
	if (piped)
		pclose(rd->f);
	else
		fclose(rd->f);
	free(rd->z);
	for (int k = 0; k < DEPTH; k++) {
		sqlite3_free(sqlite3_str_finish(im.b[k].warn));
		free(im.b[k].warn_line);
		free(im.b[k].buf);
		free(im.b[k].off);
		free(im.b[k].line);
	}
	return rc;
}
