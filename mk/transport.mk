# transport module: the common transport interface (transport.c) and the UDP
# socket transport (transport_udp.c), their unit test, and `mtrbench
# transport`.  See Makefile.am for the variables fragments add to.
libmtrcore_la_SOURCES += src/transport.c src/transport.h src/transport_udp.c
EXTRA_DIST += doc/transport.md doc/performance.md

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_transport
TESTS += tests/unit/test_transport
endif

# mtrbench transport
tests_bench_mtrbench_SOURCES += tests/bench/bench_transport.c

# fuzz target: address parsing and the integrity filter
FUZZ_TARGETS += tests/fuzz/fuzz_transport
EXTRA_DIST += tests/fuzz/fuzz_transport.c tests/fuzz/corpus/transport
tests/fuzz/fuzz_transport: $(srcdir)/tests/fuzz/fuzz_transport.c $(srcdir)/src/transport.c \
		$(srcdir)/src/transport_udp.c $(srcdir)/src/wire.c $(srcdir)/src/siphash.c \
		$(srcdir)/src/log.c $(srcdir)/src/error.c
	@mkdir -p tests/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_transport.c \
		$(srcdir)/src/transport.c $(srcdir)/src/transport_udp.c $(srcdir)/src/wire.c \
		$(srcdir)/src/siphash.c $(srcdir)/src/log.c $(srcdir)/src/error.c $(FUZZ_LIBS)
