# paxos module: see Makefile.am for the variables fragments add to.
# The consensus core (pure), its batch value and message codec.
libmtrcore_la_SOURCES += src/batch.c src/batch.h src/paxos.c src/paxos.h \
	src/paxos_codec.c src/paxos_codec.h
EXTRA_DIST += doc/paxos.md

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_batch tests/unit/test_paxos_sim
TESTS += tests/unit/test_batch tests/unit/test_paxos_sim
tests_unit_test_batch_SOURCES = tests/unit/test_batch.c
tests_unit_test_batch_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_batch_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS)
tests_unit_test_paxos_sim_SOURCES = tests/unit/test_paxos_sim.c
tests_unit_test_paxos_sim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_paxos_sim_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS)
endif

FUZZ_TARGETS += tests/fuzz/fuzz_paxos
EXTRA_DIST += tests/fuzz/fuzz_paxos.c tests/fuzz/corpus/paxos
tests/fuzz/fuzz_paxos: $(srcdir)/tests/fuzz/fuzz_paxos.c $(srcdir)/src/paxos_codec.c $(srcdir)/src/batch.c \
		$(srcdir)/src/paxos.c $(srcdir)/src/log.c
	@mkdir -p tests/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_paxos.c \
		$(srcdir)/src/paxos_codec.c $(srcdir)/src/batch.c $(srcdir)/src/paxos.c $(srcdir)/src/log.c $(FUZZ_LIBS)
