# cproto: result bytes (src/result.c) and the client <-> proxy TCP frames
# (src/cproto.c); doc/protocol.md "Result bytes", "Client protocol (TCP)".
libmtrcore_la_SOURCES += src/result.c src/result.h src/cproto.c src/cproto.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_result
TESTS += tests/unit/test_result
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_cproto
TESTS += tests/unit/test_cproto
endif

# libFuzzer target for the frame and result decoders (make fuzz)
FUZZ_TARGETS += tests/fuzz/fuzz_cproto
EXTRA_DIST += tests/fuzz/fuzz_cproto.c tests/fuzz/corpus/cproto
tests/fuzz/fuzz_cproto: $(srcdir)/tests/fuzz/fuzz_cproto.c $(srcdir)/src/cproto.c $(srcdir)/src/result.c
	@mkdir -p tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_cproto.c $(srcdir)/src/cproto.c \
		$(srcdir)/src/result.c $(FUZZ_LIBS)
