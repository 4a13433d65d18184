/*
 * output.h - how mtrsql prints rows: the modes list, csv, table, box, line
 * and json (doc/mtrsql.1, "Output modes").  Pure formatting: the caller
 * feeds column names, then values row by row; streaming modes print each
 * row at once, table and box buffer the result to size their columns.
 */
#ifndef MTR_SHELL_OUTPUT_H
#define MTR_SHELL_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

enum out_mode { OUT_LIST = 0, OUT_CSV, OUT_TABLE, OUT_BOX, OUT_LINE, OUT_JSON };
enum out_vtype { OUT_NULL = 0, OUT_NUMBER, OUT_TEXT, OUT_BLOB };

struct out_opts {
	enum out_mode mode;
	int headers;        /* column names in list, csv (table, box, line, json always name them) */
	char nullvalue[64]; /* how NULL is shown (json: null) */
};

/* list mode, no headers, NULL shown as the empty string (as sqlite3). */
void out_opts_init(struct out_opts *o);

/* "list", "csv", "table", "box", "line", "json" -> *m; 0 or -1. */
int out_mode_parse(const char *name, enum out_mode *m);

/* One result being printed (internal fields). */
struct out_table {
	const struct out_opts *o;
	FILE *f;
	char **cols;
	size_t ncols;
	char **cells; /* table/box: every value as text, row-major */
	unsigned char *num;
	size_t ncells, cap;
	size_t col;   /* index of the next value in the current row */
	size_t nrows;
};

void out_begin(struct out_table *t, const struct out_opts *o, FILE *f);
/* Name the next column (call for every column before the first value). */
void out_column(struct out_table *t, const char *name);
/* The next value of the current row; text is len bytes (NULL for OUT_NULL). */
void out_value(struct out_table *t, enum out_vtype type, const char *text, int len);
void out_row_end(struct out_table *t);
/* Finish (table/box print here; json closes its array) and free. */
void out_end(struct out_table *t);

#endif
