# wire: the datagram format (doc/protocol.md), the datagram MAC, reassembly.
libmtrcore_la_SOURCES += src/wire.c src/wire.h src/siphash.c src/siphash.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_wire
TESTS += tests/unit/test_wire
tests_unit_test_wire_SOURCES = tests/unit/test_wire.c
tests_unit_test_wire_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_wire_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS) -lm
endif

libmtrcore_la_SOURCES += src/reasm.c src/reasm.h
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_reasm
TESTS += tests/unit/test_reasm
tests_unit_test_reasm_SOURCES = tests/unit/test_reasm.c
tests_unit_test_reasm_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_reasm_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS)
endif
