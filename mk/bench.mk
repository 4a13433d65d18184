# mtrbench: the benchmark harness (not installed).  Subcommands add their
# source with tests_bench_mtrbench_SOURCES += ... in their own fragment and a
# row in BENCH_MAP (tests/bench/bench.h).
noinst_PROGRAMS += tests/bench/mtrbench
tests_bench_mtrbench_SOURCES = tests/bench/mtrbench.c tests/bench/bench.h
tests_bench_mtrbench_LDADD = $(CORE_LIBS) -lm
