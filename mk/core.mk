# core: logging, error codes, small shared helpers.
libmtrcore_la_SOURCES += src/log.c src/log.h src/error.c src/util.h
include_HEADERS += include/metronome.h
EXTRA_DIST += tests/testutil.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_error
TESTS += tests/unit/test_error
endif

libmtrcore_la_SOURCES += src/conf.c src/conf.h
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_conf
TESTS += tests/unit/test_conf
endif
