# ingest module: a server's per-stream receive state (ingest), the segment log
# under it (seglog), and the proxy's send buffer (outbuf).  doc/storage.md.
libmtrcore_la_SOURCES += src/seglog.c src/seglog.h src/ingest.c src/ingest.h src/outbuf.c src/outbuf.h
EXTRA_DIST += doc/storage.md

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_outbuf
TESTS += tests/unit/test_outbuf
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_seglog
TESTS += tests/unit/test_seglog
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_ingest
TESTS += tests/unit/test_ingest
endif

# libFuzzer: recovery from arbitrary segment bytes
FUZZ_TARGETS += tests/fuzz/fuzz_seglog
EXTRA_DIST += tests/fuzz/fuzz_seglog.c tests/fuzz/corpus/seglog
tests/fuzz/fuzz_seglog: $(srcdir)/tests/fuzz/fuzz_seglog.c $(srcdir)/src/seglog.c $(srcdir)/src/ingest.c \
		$(srcdir)/src/log.c
	@mkdir -p tests/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_seglog.c \
		$(srcdir)/src/seglog.c $(srcdir)/src/ingest.c $(srcdir)/src/log.c $(FUZZ_LIBS)

# mtrbench store
tests_bench_mtrbench_SOURCES += tests/bench/bench_store.c
