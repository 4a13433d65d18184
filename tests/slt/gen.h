/*
 * gen.h - the differential test's SQL generator (mtrslt --gen, and the
 * front-end check of tests/unit/test_sql_slt): from a 64-bit seed, a
 * deterministic sequence of records (schema, data, reads, writes, DDL,
 * views, triggers, transactions, statements that must fail, refusals,
 * nondeterministic functions) over a small schema it keeps a model of.
 *
 * The sequence depends on the seed alone, never on results: the model is
 * only changed by statements that cannot fail (DDL whose effect is known),
 * so a replay with the same seed gives the same text on any machine.  No
 * I/O, no clock.  doc/mtrslt.md, "Generated differential test".
 */
#ifndef MTR_SLT_GEN_H
#define MTR_SLT_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "slt.h"

#define GEN_MAX_PARAMS 4

/* What is compared. */
enum gen_kind {
	GEN_EXEC,  /* every statement of sql: success, or the same error */
	GEN_QUERY, /* the first statement: its rows (all columns 'V'), or the same error */
};

/* What the generator knows of the outcome. */
enum gen_expect {
	GEN_SAME,    /* whatever SQLite does, Metronome must do */
	GEN_FAIL,    /* SQLite must fail (a constraint, RAISE, no such column...);
		      * Metronome with the same message */
	GEN_REFUSED, /* not run on SQLite; Metronome's front end or proxy must
		      * refuse it (MTR_EREFUSED), per doc/sql.md */
	GEN_ANY,     /* run on both, outcome not compared: a BEGIN ... ROLLBACK
		      * group, which the client library drops without sending
		      * while SQLite runs (and may fail) its statements; the
		      * state after it is what the next reads compare */
};

struct gen_rec {
	enum gen_kind kind;
	enum gen_expect expect;
	bool txn;           /* a BEGIN ... COMMIT/ROLLBACK group in one text */
	enum slt_sort sort; /* GEN_QUERY: SLT_ROWSORT, or SLT_NOSORT (a total ORDER BY) */
	const char *cat;    /* category, for the counts ("read.join", "write.upsert", ...) */
	struct slt_param params[GEN_MAX_PARAMS]; /* bound to every statement of sql */
	unsigned nparams;
	const char *sql; /* valid until the next gen_next */
};

struct gen;

/* A generator for seed; NULL when out of memory. */
struct gen *gen_new(uint64_t seed);

/* The next record (owned by g, valid until the next call); never NULL
 * unless out of memory. */
const struct gen_rec *gen_next(struct gen *g);

void gen_free(struct gen *g);

#endif
