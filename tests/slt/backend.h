/*
 * backend.h - what mtrslt runs SQL on.  A backend is a database connection
 * with four operations; mtrslt has two: plain SQLite (an in-memory database,
 * backend_sqlite.c) and a Metronome cluster through the client library
 * (backend_mtr.c).  Every operation returns 0 or a negative MTR_E* code and
 * on failure leaves a sentence in b->err.
 */
#ifndef MTR_SLT_BACKEND_H
#define MTR_SLT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slt.h"

/* A value bound to a parameter (mtrslt --gen): type 'N' NULL, 'I' i, 'R'
 * r, 'T' the text p, 'B' the n bytes at p. */
struct slt_param {
	char type;
	int64_t i;
	double r;
	const char *p;
	int n;
};

struct slt_backend {
	const char *name; /* "sqlite", "metronome" (static) */

	/* Make the database empty for the next file. */
	int (*reset)(struct slt_backend *b);

	/* Run every statement of sql in order, to completion (rows are
	 * discarded); the first failing statement ends it with its error. */
	int (*exec)(struct slt_backend *b, const char *sql);

	/* Run the first statement of sql and append every row to res,
	 * formatted by types (slt_result_add_row); a column count other than
	 * strlen(types) is an error (MTR_EINVAL).  res->ncols is set.  An SQL
	 * error while stepping ends the rows without an error (the reference
	 * runner does so, and the corpus expects an empty result from an
	 * "integer overflow" in sum()); failing to prepare is an error, and so
	 * is losing the connection.  types "*" takes every column the query
	 * has, each formatted as 'V'. */
	int (*query)(struct slt_backend *b, const char *sql, const char *types, struct slt_result *res);

	/* Close the connection and free b. */
	void (*close)(struct slt_backend *b);

	char err[512]; /* the last error's sentence */

	/* Set by the caller before exec or query (mtrslt --gen), NULL/0
	 * otherwise: every statement of the text gets params[0..] bound to
	 * its parameters 1, 2, ... (as many as it has). */
	const struct slt_param *params;
	unsigned nparams;
	/* Set by query: an SQL error while stepping ended the rows (its
	 * message is in err). */
	bool step_failed;
};

/* Open plain SQLite on a private in-memory database.  0 or MTR_ENOMEM/MTR_EIO
 * (sentence in err). The caller closes it with (*b)->close(*b). */
int slt_sqlite_open(struct slt_backend **b, char *err, size_t errlen);

/*
 * Open a Metronome connection on uri (mtr://host:port?...).  reset drops
 * every table, view, index and trigger of the database except the
 * reserved mtr_ and sqlite_ objects (doc/mtrslt.md).  MTR_ENOTSUP when
 * mtrslt was built without the client library.
 */
int slt_mtr_open(const char *uri, struct slt_backend **b, char *err, size_t errlen);

#endif
