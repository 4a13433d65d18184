# sql: the SQL front end (tokenizer, lemon grammar, builder and classifier,
# doc/sql.md) and the mtrparse tool.
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

libmtrsql_la_SOURCES += sql/sql.h sql/sql_int.h sql/tokenize.c sql/build.c sql/parse_wrap.c
# explicit, so that targets built without BUILT_SOURCES (make fuzz) work too
sql/parse_wrap.lo: sql/parse.c sql/parse.h sql/tokname.h
sql/build.lo sql/tokenize.lo: sql/parse.h

bin_PROGRAMS += sql/mtrparse
sql_mtrparse_SOURCES = sql/mtrparse.c
sql_mtrparse_LDADD = $(SQL_LIBS)
dist_man_MANS += doc/mtrparse.1
EXTRA_DIST += doc/sql.md doc/determinism.md
