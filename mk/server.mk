# server: metronomed, the replica server (doc/server.md, doc/metronomed.8,
# doc/config.md).  The server object (src/server.c) is in the core library so
# that the unit test can run three servers in one process.
libmtrcore_la_SOURCES += src/server.c src/server.h
bin_PROGRAMS += src/metronomed
src_metronomed_SOURCES = src/metronomed.c
src_metronomed_LDADD = $(CORE_LIBS) -lm
dist_man_MANS += doc/metronomed.8
EXTRA_DIST += doc/server.md doc/config.md doc/metronomed.conf

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_server
TESTS += tests/unit/test_server
endif

# metronomed as a process: options, exit codes, election, log lines, signals.
TESTS += tests/integration/metronomed.sh
EXTRA_DIST += tests/integration/metronomed.sh
