# core: logging, error codes, small shared helpers.
libmtrcore_la_SOURCES += src/log.c src/log.h src/error.c src/util.h
include_HEADERS += include/metronome.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_error
TESTS += tests/unit/test_error
tests_unit_test_error_SOURCES = tests/unit/test_error.c
tests_unit_test_error_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_error_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS)
endif

libmtrcore_la_SOURCES += src/conf.c src/conf.h
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_conf
TESTS += tests/unit/test_conf
tests_unit_test_conf_SOURCES = tests/unit/test_conf.c
tests_unit_test_conf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_conf_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS)
endif
