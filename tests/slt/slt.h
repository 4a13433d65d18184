/*
 * slt.h - the sqllogictest core of mtrslt: a reader that splits a test file
 * into records, and the result rules (formatting of values by type letter,
 * rowsort/valuesort, MD5 hashing above the hash threshold, comparison with
 * the expected lines).  No I/O, no clock: the caller loads the file and runs
 * the SQL through a backend (backend.h).  The format and the rules are
 * described in doc/mtrslt.md.
 */
#ifndef MTR_SLT_H
#define MTR_SLT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a record asks for. */
enum slt_kind {
	SLT_STATEMENT_OK,    /* the SQL must succeed */
	SLT_STATEMENT_ERROR, /* the SQL must fail */
	SLT_QUERY,           /* the SQL must give the expected values */
	SLT_HASH_THRESHOLD,  /* "hash-threshold N": rec.threshold = N */
	SLT_UNKNOWN,         /* a line that starts no known record (a failure) */
};

/* How a query's values are ordered before the comparison. */
enum slt_sort {
	SLT_NOSORT,    /* as returned */
	SLT_ROWSORT,   /* rows sorted, comparing values left to right (strcmp) */
	SLT_VALUESORT, /* every value sorted on its own (strcmp) */
};

/*
 * One record.  Every pointer points into the reader (the file text or its
 * SQL buffer) and stays valid until the next slt_reader_next call.
 */
struct slt_record {
	enum slt_kind kind;
	unsigned line;        /* 1-based line of the record's keyword line */
	bool skip;            /* skipif/onlyif exclude it for the reader's engine */
	const char *sql;      /* statement or query text, lines joined by '\n' */
	const char *types;    /* query: the type letters, one per column ("ITR") */
	enum slt_sort sort;   /* query: the sort mode */
	const char *label;    /* query: the label ("label-3") or NULL */
	const char *const *expected; /* query: the lines after "----" */
	size_t n_expected;    /* ... how many */
	unsigned threshold;   /* SLT_HASH_THRESHOLD: the value */
	const char *text;     /* SLT_UNKNOWN: the offending line */
};

/* Reader state; fill with slt_reader_init, release with slt_reader_free. */
struct slt_reader {
	char *text;           /* the file text, split in place (owned by the caller) */
	char *pos;            /* next unread byte */
	unsigned lineno;      /* lines consumed */
	const char *engine;   /* our name in skipif/onlyif (e.g. "sqlite") */
	bool halted;          /* an unskipped "halt" ended the file */
	char *sql;            /* SQL buffer (owned) */
	size_t sql_cap;
	const char **exp;     /* expected-line pointers (owned array) */
	size_t exp_cap;
	char types[64];       /* the record's type letters */
	char label[64];       /* the record's label */
};

/*
 * Start reading text (NUL-terminated; modified in place, must outlive the
 * reader; CRLF and LF line ends both work).  engine is the name matched by
 * skipif/onlyif (static or outliving the reader).
 */
void slt_reader_init(struct slt_reader *r, char *text, const char *engine);

/*
 * The next record into rec: 1, or 0 at the end of the file or after an
 * unskipped "halt" (r->halted says which), or MTR_ENOMEM.  Comments ('#'),
 * blank lines and condition lines are consumed; conditions set rec->skip.
 */
int slt_reader_next(struct slt_reader *r, struct slt_record *rec);

/* Free the reader's buffers (not the text). */
void slt_reader_free(struct slt_reader *r);

/* The formatted values of one query, in the order produced.  Zero-init. */
struct slt_result {
	char **values;        /* malloc'd strings, owned */
	size_t n, cap;
	unsigned ncols;       /* columns per row (the number of type letters) */
};

/*
 * How slt_result_add_row reads one column of the current row of a backend's
 * statement; the accessors follow sqlite3_column_* (their conversions).
 */
struct slt_columns {
	bool (*is_null)(void *stmt, int col);
	int64_t (*int64)(void *stmt, int col);
	double (*dbl)(void *stmt, int col);
	const char *(*text)(void *stmt, int col); /* NULL taken as "" */
	/* for 'V' only (may be NULL otherwise): the value's type (SQLite's
	 * 1..5 codes) and a blob's bytes */
	int (*type)(void *stmt, int col);
	const void *(*blob)(void *stmt, int col, int *len);
};

/*
 * Append the current row: column i is formatted by types[i]: 'I' an
 * integer (%lld of the int64 value), 'R' "%.3f" of the double value, 'T'
 * the text with "(empty)" for "" and '@' for every byte outside ' '..'~';
 * 'V' (mtrslt --gen, not a sqllogictest letter) the value with its type:
 * "i:N", "r:" and %.17g (exact), "t:" and the text (bytes outside
 * ' '..'~' as \xHH), "b:" and the hex bytes; NULL is "NULL" whatever the
 * letter.  0 or MTR_ENOMEM, MTR_EINVAL (another letter, or 'V' without
 * the type and blob accessors).
 */
int slt_result_add_row(struct slt_result *res, const char *types, const struct slt_columns *ops,
		       void *stmt);

/*
 * Format a real as the corpus expects: "%.3f" with at most 16 significant
 * digits (rounded; zeros after them), like SQLite's printf.  outlen >= 400
 * holds any double.
 */
void slt_format_real(double v, char *out, size_t outlen);

/* Append one already formatted value (copied).  0 or MTR_ENOMEM. */
int slt_result_add(struct slt_result *res, const char *value);

/* Forget the values (keeps the array for reuse). */
void slt_result_clear(struct slt_result *res);

/* Free everything; res is zeroed. */
void slt_result_free(struct slt_result *res);

/* Sort the values in place by mode (rows of res->ncols values for rowsort). */
void slt_result_sort(struct slt_result *res, enum slt_sort mode);

/* MD5 of every value followed by "\n", as 32 hex digits into hex[33]. */
void slt_result_hash(const struct slt_result *res, char hex[33]);

/*
 * Sort res by rec's mode and compare it with rec's expected lines: when
 * threshold > 0 and there are more values than threshold, the expected text
 * is the single line "N values hashing to H"; otherwise one value per line.
 * Returns true on a match; otherwise false with a sentence in why.  hash
 * (may be NULL) receives the MD5 of the sorted values, for labels.
 */
bool slt_result_check(struct slt_result *res, const struct slt_record *rec, unsigned threshold,
		      char hash[33], char *why, size_t whylen);

#endif
