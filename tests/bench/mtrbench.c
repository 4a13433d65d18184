/*
 * mtrbench.c - the benchmark harness: `mtrbench SUBCOMMAND [options]`.
 * Dispatches to the subcommands of BENCH_MAP (bench.h); figures go to stdout
 * as "name: value unit", one per line, and nothing else does.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} benches[] = {
#define BENCH__ROW(name, summary) { #name, bench_##name, summary },
	BENCH_MAP(BENCH__ROW)
#undef BENCH__ROW
	{ NULL, NULL, NULL },
};

void bench_figure(const char *name, double value, const char *unit)
{
	if (value == floor(value) && fabs(value) < 1e15)
		printf("%s: %.0f %s\n", name, value, unit);
	else
		printf("%s: %.4g %s\n", name, value, unit);
	fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(double *v, unsigned n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrbench SUBCOMMAND [options]   (SUBCOMMAND --help for its options)\n\nsubcommands:\n");
	for (size_t i = 0; benches[i].name; i++)
		fprintf(f, "  %-12s %s\n", benches[i].name, benches[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; benches[i].name; i++)
		if (strcmp(argv[1], benches[i].name) == 0)
			return benches[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mtrbench: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
