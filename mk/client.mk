# client: libmetronome, the installed C client library (doc/client.md,
# doc/libmetronome.3), its pkg-config file, example, unit test and the
# mtrload load generator.  See Makefile.am for the variables fragments add to.
lib_LTLIBRARIES = libmetronome.la
libmetronome_la_SOURCES = src/client.c src/client_stmt.c src/client_temp.c src/client_embed.c src/client_int.h
libmetronome_la_LIBADD = libmtrcore.la $(SQLITE_LIBS) $(XXHASH_LIBS) $(PTHREAD_LIBS)
libmetronome_la_LDFLAGS = $(AM_LDFLAGS) -export-symbols-regex '^mtr_' -version-info 0:0:0

pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = metronome.pc
EXTRA_DIST += doc/client.md

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_client
TESTS += tests/unit/test_client
tests_unit_test_client_LDADD = libmetronome.la $(CORE_LIBS) $(CMOCKA_LIBS) -lm
endif

# the example of doc/client.md (run against a cluster by the integration test)
check_PROGRAMS += examples/example
examples_example_SOURCES = examples/example.c
examples_example_LDADD = libmetronome.la $(CORE_LIBS) -lm

# mtrload: the load generator (integration tests, mtrbench e2e)
noinst_PROGRAMS += tests/tools/mtrload
tests_tools_mtrload_SOURCES = tests/tools/mtrload.c
tests_tools_mtrload_LDADD = libmetronome.la $(CORE_LIBS) -lm

# the fake proxy (tests/tools/fakeproxy.h) as a process, for client.sh
check_PROGRAMS += tests/tools/mtrfakeproxy
tests_tools_mtrfakeproxy_SOURCES = tests/tools/mtrfakeproxy.c tests/tools/fakeproxy.h
tests_tools_mtrfakeproxy_LDADD = $(CORE_LIBS) -lm
TESTS += tests/integration/client.sh
EXTRA_DIST += tests/integration/client.sh

dist_man_MANS += doc/libmetronome.3

# libFuzzer: the client facing a hostile proxy (any bytes after WELCOME)
FUZZ_TARGETS += tests/fuzz/fuzz_client
EXTRA_DIST += tests/fuzz/fuzz_client.c tests/fuzz/corpus/client
CLIENT_FUZZ_SRC = $(srcdir)/src/client.c $(srcdir)/src/client_stmt.c $(srcdir)/src/client_temp.c $(srcdir)/src/client_embed.c $(srcdir)/src/cproto.c \
	$(srcdir)/src/result.c $(srcdir)/src/log.c $(srcdir)/src/error.c \
	$(srcdir)/sql/tokenize.c $(srcdir)/sql/build.c $(srcdir)/sql/parse_wrap.c
tests/fuzz/fuzz_client: $(srcdir)/tests/fuzz/fuzz_client.c $(CLIENT_FUZZ_SRC) sql/parse.c sql/parse.h sql/tokname.h
	@mkdir -p tests/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_client.c \
		$(CLIENT_FUZZ_SRC) $(FUZZ_LIBS)

# The TAP driver every suite runs under (LOG_DRIVER in Makefile.am) must be
# in the tarball for `make distcheck`; setup.sh copies it into build-aux/.
EXTRA_DIST += build-aux/tap-driver.sh

# the embedded mode (proxy inside the application; URI `local`)
TESTS += tests/integration/embedded.sh
EXTRA_DIST += tests/integration/embedded.sh
