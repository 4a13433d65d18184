# wire: the datagram format (doc/protocol.md), the datagram MAC, reassembly.
libmtrcore_la_SOURCES += src/wire.c src/wire.h src/siphash.c src/siphash.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_wire
TESTS += tests/unit/test_wire
endif

libmtrcore_la_SOURCES += src/reasm.c src/reasm.h
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_reasm
TESTS += tests/unit/test_reasm
endif

# libFuzzer target for the datagram decoders (make fuzz)
FUZZ_TARGETS += tests/fuzz/fuzz_wire
EXTRA_DIST += tests/fuzz/fuzz_wire.c tests/fuzz/corpus/wire
tests/fuzz/fuzz_wire: $(srcdir)/tests/fuzz/fuzz_wire.c $(srcdir)/src/wire.c $(srcdir)/src/siphash.c $(srcdir)/src/reasm.c \
		$(srcdir)/src/wire_server.c $(srcdir)/src/paxos_codec.c $(srcdir)/src/batch.c $(srcdir)/src/paxos.c \
		$(srcdir)/src/log.c
	@mkdir -p tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_wire.c $(srcdir)/src/wire.c \
		$(srcdir)/src/siphash.c $(srcdir)/src/reasm.c $(srcdir)/src/wire_server.c $(srcdir)/src/paxos_codec.c \
		$(srcdir)/src/batch.c $(srcdir)/src/paxos.c $(srcdir)/src/log.c $(FUZZ_LIBS)

# mtrbench wire
tests_bench_mtrbench_SOURCES += tests/bench/bench_wire.c
