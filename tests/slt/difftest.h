/*
 * difftest.h - mtrslt --gen: the generated differential test (difftest.c,
 * doc/mtrslt.md "Generated differential test").
 */
#ifndef MTR_SLT_DIFFTEST_H
#define MTR_SLT_DIFFTEST_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

struct diff_opts {
	uint64_t seed;
	unsigned long count;  /* records to generate */
	bool quiet;
	bool paranoid; /* compare every table after every write (slow; finds the first bad write) */
};

/*
 * Generate o->count records from o->seed and run each on lite and (unless
 * NULL) on mtr, comparing the outcomes; mismatches are explained on stderr
 * (the first 20), per-category counts and "N passed, N failed" go to
 * stdout; with mtr, waits at the end until every member reports the same
 * applied instance (for the digest comparison of the caller).  Stops
 * early when *interrupted.  Returns the number of failed records.
 */
unsigned long diff_run(struct slt_backend *lite, struct slt_backend *mb, const struct diff_opts *o,
		       volatile sig_atomic_t *interrupted);

/* Print the o->count records of o->seed as SQL text on stdout. */
void diff_dump(const struct diff_opts *o);

#endif
