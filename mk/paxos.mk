# paxos module: see Makefile.am for the variables fragments add to.
# The consensus core (pure), its batch value and message codec.
libmtrcore_la_SOURCES += src/batch.c src/batch.h src/paxos.c src/paxos.h \
	src/paxos_codec.c src/paxos_codec.h
EXTRA_DIST += doc/paxos.md

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_batch tests/unit/test_paxos_sim
TESTS += tests/unit/test_batch tests/unit/test_paxos_sim
endif

FUZZ_TARGETS += tests/fuzz/fuzz_paxos
EXTRA_DIST += tests/fuzz/fuzz_paxos.c tests/fuzz/corpus/paxos
tests/fuzz/fuzz_paxos: $(srcdir)/tests/fuzz/fuzz_paxos.c $(srcdir)/src/paxos_codec.c $(srcdir)/src/batch.c \
		$(srcdir)/src/paxos.c $(srcdir)/src/log.c
	@mkdir -p tests/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_paxos.c \
		$(srcdir)/src/paxos_codec.c $(srcdir)/src/batch.c $(srcdir)/src/paxos.c $(srcdir)/src/log.c $(FUZZ_LIBS)
