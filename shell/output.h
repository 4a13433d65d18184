/*
 * output.h - how mtrsql prints rows: the output modes of sqlite3 3.40
 * (doc/mtrsql.1, "Output modes").  Pure formatting: the caller names the
 * columns, then feeds values row by row; the streaming modes print each
 * row at once, the columnar ones (column, table, box, markdown, qbox)
 * keep the result to size their columns.
 */
#ifndef MTR_SHELL_OUTPUT_H
#define MTR_SHELL_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

/* The modes, in the order of out_mode_name(). */
enum out_mode {
	OUT_LIST = 0, OUT_CSV, OUT_TABLE, OUT_BOX, OUT_LINE, OUT_JSON, OUT_COLUMN, OUT_MARKDOWN,
	OUT_HTML, OUT_INSERT, OUT_QUOTE, OUT_TABS, OUT_ASCII, OUT_TCL, OUT_QBOX, OUT_NMODES
};
enum out_vtype { OUT_NULL = 0, OUT_INTEGER, OUT_FLOAT, OUT_TEXT, OUT_BLOB };

#define OUT_MAX_WIDTHS 100

struct out_opts {
	enum out_mode mode;
	int headers;            /* column names (list, csv, tabs, quote, html, tcl, ascii, column, insert) */
	int headers_set;        /* .headers was given: .mode column leaves it alone */
	char nullvalue[64];     /* how NULL is shown (json, quote and insert: null / NULL) */
	char colsep[20], rowsep[20]; /* .separator (list, csv, tabs, quote, tcl, ascii; rowsep of line) */
	int width[OUT_MAX_WIDTHS]; /* .width: columnar minimum and wrap width; < 0 right-justifies */
	int nwidth;
	int wrap;               /* columnar --wrap N (0: none) */
	int wordwrap;           /* columnar --wordwrap on */
	int quote;              /* columnar --quote: cells as SQL literals */
	char table[128];        /* insert mode: the table named in INSERT INTO (quoted if need be) */
};

/* list mode, no headers, NULL shown as the empty string (as sqlite3). */
void out_opts_init(struct out_opts *o);

/* Set the mode from a .mode argument list (argv[0] the mode name, then
 * --wrap N, --wordwrap B, --ww, --quote, --noquote, or insert's TABLE).
 * 0, or -1 with a sentence in err. */
int out_mode_set(struct out_opts *o, int argc, char **argv, char *err, size_t errlen);

/* The name of a mode ("list", ...). */
const char *out_mode_name(enum out_mode m);

/* The description .show prints of the mode ("box --wrap 60 ..."). */
void out_mode_describe(const struct out_opts *o, char *buf, size_t n);

/* One result being printed (internal fields). */
struct out_cell {
	char *s;                /* the text as shown (columnar: after quoting) */
	unsigned char right;    /* right-justified (a number) */
};
struct out_table {
	const struct out_opts *o;
	FILE *f;
	char **cols;
	size_t ncols;
	struct out_cell *cells; /* columnar modes: every value, row-major */
	size_t ncells, cap;
	size_t col;             /* index of the next value in the current row */
	size_t nrows;
};

void out_begin(struct out_table *t, const struct out_opts *o, FILE *f);
/* Name the next column (call for every column before the first value). */
void out_column(struct out_table *t, const char *name);
/* The next value of the current row: text is its text form, len bytes
 * (the raw bytes for a blob; NULL for OUT_NULL); d its value as a double
 * (OUT_FLOAT: quote, insert and json print it with 20 digits, as sqlite3). */
void out_value(struct out_table *t, enum out_vtype type, const char *text, int len, double d);
void out_row_end(struct out_table *t);
/* Finish (columnar modes print here; json closes its array) and free. */
void out_end(struct out_table *t);

/* Helpers the shell shares with .dump and .show. */
/* z as an SQL string literal, '' doubled; in dump style (escape_nl) a
 * newline or CR becomes replace(...,'\n',char(10)) as sqlite3 writes it. */
void out_sql_string(FILE *f, const char *z, size_t n, int escape_nl);
/* A double as sqlite3 writes it in quote, insert and json modes. */
void out_sql_double(FILE *f, double d, int insert_style);
/* X'hex' of n bytes. */
void out_sql_blob(FILE *f, const void *b, size_t n);
/* z as a C string literal ("...", escapes), as tcl mode and .show do. */
void out_c_string(FILE *f, const char *z, size_t n);
/* The quote character an identifier needs ('"'), or 0 (sqlite3's quoteChar). */
char out_quote_char(const char *name);
/* name, quoted with '"' when it needs it, into a new string (free()). */
char *out_ident(const char *name);

#endif
