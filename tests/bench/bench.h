/*
 * bench.h - mtrbench subcommands.  Each measurement is one subcommand,
 * int bench_NAME(int argc, char **argv), in tests/bench/bench_NAME.c, listed
 * once in BENCH_MAP.  A subcommand prints its figures on stdout, one per line,
 * "name: value unit", with bench_figure(); anything else goes to stderr.
 */
#ifndef MTR_BENCH_H
#define MTR_BENCH_H

#include <stdint.h>

/* X(name, one-line summary); one row per subcommand, in the order of --help */
#define BENCH_MAP(X)

#define BENCH__DECL(name, summary) int bench_##name(int argc, char **argv);
BENCH_MAP(BENCH__DECL)
#undef BENCH__DECL

/* Print one figure: "name: value unit" (value with the precision it needs). */
void bench_figure(const char *name, double value, const char *unit);

/* Median of n doubles (the array is sorted in place). */
double bench_median(double *v, unsigned n);

#endif
