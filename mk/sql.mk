# sql module: the SQL front end (tokenizer, lemon grammar, builder and
# classifier) in libmtrcore, the mtrparse tool, its tests, fuzz target and
# benchmark.  See Makefile.am for the variables fragments add to.

# parse.c/parse.h are generated in the build directory from parse.y (never in
# the source tree); tokname.h maps token codes to names for error hints.
sql/parse.c: $(srcdir)/sql/parse.y
	@mkdir -p sql
	$(AM_V_GEN)$(LEMON) -T$(LEMPAR) -q -dsql $(srcdir)/sql/parse.y
sql/parse.h: sql/parse.c
	@test -f $@ || { rm -f sql/parse.c; $(MAKE) $(AM_MAKEFLAGS) sql/parse.c; }
sql/tokname.h: sql/parse.h
	$(AM_V_GEN)sed -n 's/^#define TK_\([A-Z_]*\) *\([0-9]*\)$$/  [\2] = "\1",/p' sql/parse.h > $@
BUILT_SOURCES += sql/parse.c sql/parse.h sql/tokname.h
CLEANFILES += sql/parse.c sql/parse.h sql/tokname.h sql/parse.out
EXTRA_DIST += sql/parse.y

libmtrcore_la_SOURCES += sql/sql.h sql/sql_int.h sql/tokenize.c sql/build.c sql/parse_wrap.c
# explicit, so that targets built without BUILT_SOURCES (make fuzz) work too
sql/parse_wrap.lo: sql/parse.c sql/parse.h sql/tokname.h
sql/build.lo sql/tokenize.lo: sql/parse.h

bin_PROGRAMS += sql/mtrparse
sql_mtrparse_SOURCES = sql/mtrparse.c
sql_mtrparse_LDADD = $(CORE_LIBS)

# slt agreement (plain TAP; needs no cmocka)
check_PROGRAMS += tests/unit/test_sql_slt
TESTS += tests/unit/test_sql_slt
tests_unit_test_sql_slt_LDADD = $(CORE_LIBS)
EXTRA_DIST += tests/sql

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_sql
TESTS += tests/unit/test_sql
endif

# libFuzzer: tokenizer + parser + classifier (`make fuzz`)
FUZZ_TARGETS += tests/fuzz/fuzz_sql
EXTRA_DIST += tests/fuzz/fuzz_sql.c tests/fuzz/corpus/sql
tests/fuzz/fuzz_sql: $(srcdir)/tests/fuzz/fuzz_sql.c $(srcdir)/sql/tokenize.c $(srcdir)/sql/build.c \
		$(srcdir)/sql/parse_wrap.c sql/parse.c sql/parse.h sql/tokname.h
	@mkdir -p tests/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_sql.c \
		$(srcdir)/sql/tokenize.c $(srcdir)/sql/build.c $(srcdir)/sql/parse_wrap.c $(FUZZ_LIBS)

# mtrbench parse
tests_bench_mtrbench_SOURCES += tests/bench/bench_parse.c

TESTS += tests/integration/mtrparse.sh
EXTRA_DIST += tests/integration/mtrparse.sh

dist_man_MANS += doc/mtrparse.1
EXTRA_DIST += doc/sql.md doc/determinism.md
