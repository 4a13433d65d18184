# fuzz: libFuzzer targets (clang), one per parser of outside bytes, built by
# `make fuzz` outside the normal build.  They link one instrumented copy of
# the libraries (every library's sources but DPDK's, compiled with the fuzz
# flags into tests/fuzz/libmtrfuzz.a), so a target's source list is only its
# own file.  Corpora: tests/fuzz/corpus/NAME for tests/fuzz/fuzz_NAME.
FUZZ_CC = $(CLANG)
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined -DMTR_FUZZ -I$(top_builddir) \
	$(MTR_INCLUDES) $(SQLITE_CFLAGS) $(XXHASH_CFLAGS) $(SODIUM_CFLAGS) $(OPENSSL_CFLAGS)
FUZZ_LINK = -fsanitize=fuzzer,address,undefined
FUZZ_LIBS = $(SQLITE_LIBS) $(XXHASH_LIBS) $(SODIUM_LIBS) $(OPENSSL_LIBS) $(PTHREAD_LIBS) -lm
FUZZ_NAMES = client cproto paxos pstore seglog sql transport uri wire
FUZZ_TARGETS = $(FUZZ_NAMES:%=tests/fuzz/fuzz_%)
FUZZ_LIB_SRCS = $(filter %.c,$(libmtrcommon_la_SOURCES) $(libmtrproto_la_SOURCES) $(libmtrnet_la_SOURCES) \
	$(libmtrsql_la_SOURCES) $(libmtrproxy_la_SOURCES) $(libmtrclient_la_SOURCES) $(libmtrserver_la_SOURCES))
FUZZ_LIB_OBJS = $(FUZZ_LIB_SRCS:%.c=tests/fuzz/obj/%.o)

# -MMD: an object is compiled again when a header it includes changed (a
# stale object, built with an older struct layout, overflowed its stack)
tests/fuzz/obj/%.o: $(srcdir)/%.c config.h
	@mkdir -p $(@D)
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
-include $(FUZZ_LIB_OBJS:%.o=%.d)
tests/fuzz/obj/sql/parse_wrap.o tests/fuzz/obj/sql/build.o tests/fuzz/obj/sql/tokenize.o: \
	sql/parse.c sql/parse.h sql/tokname.h
tests/fuzz/libmtrfuzz.a: $(FUZZ_LIB_OBJS)
	$(AM_V_GEN)rm -f $@ && $(AR) rcs $@ $(FUZZ_LIB_OBJS)
tests/fuzz/fuzz_%: $(srcdir)/tests/fuzz/fuzz_%.c tests/fuzz/libmtrfuzz.a
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LINK) -o $@ $< tests/fuzz/libmtrfuzz.a $(FUZZ_LIBS)

fuzz: $(FUZZ_TARGETS)
.PHONY: fuzz
CLEANFILES += $(FUZZ_TARGETS) tests/fuzz/libmtrfuzz.a
clean-local: clean-fuzz
clean-fuzz:
	rm -rf tests/fuzz/obj
.PHONY: clean-fuzz
EXTRA_DIST += $(FUZZ_NAMES:%=tests/fuzz/fuzz_%.c) $(FUZZ_NAMES:%=tests/fuzz/corpus/%)
