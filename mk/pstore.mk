# pstore module: the durable acceptor state of the Paxos core (DATA/paxos/log).
libmtrcore_la_SOURCES += src/pstore.c src/pstore.h
EXTRA_DIST += doc/pstore.md

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_pstore
TESTS += tests/unit/test_pstore
endif

FUZZ_TARGETS += tests/fuzz/fuzz_pstore
EXTRA_DIST += tests/fuzz/fuzz_pstore.c tests/fuzz/corpus/pstore
tests/fuzz/fuzz_pstore: $(srcdir)/tests/fuzz/fuzz_pstore.c $(srcdir)/src/pstore.c $(srcdir)/src/batch.c \
		$(srcdir)/src/log.c $(srcdir)/src/error.c $(srcdir)/src/paxos.c $(srcdir)/src/paxos_codec.c
	@mkdir -p tests/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_pstore.c \
		$(srcdir)/src/pstore.c $(srcdir)/src/batch.c $(srcdir)/src/log.c $(srcdir)/src/error.c \
		$(srcdir)/src/paxos.c $(srcdir)/src/paxos_codec.c $(FUZZ_LIBS)

tests_bench_mtrbench_SOURCES += tests/bench/bench_pstore.c
