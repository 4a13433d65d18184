# slt: mtrslt, the sqllogictest runner (doc/mtrslt.md), its unit test and the
# integration script that runs it over ../shared/slt on plain SQLite.
# See Makefile.am for the variables fragments add to.
SLT_CORE = tests/slt/slt.c tests/slt/slt.h tests/slt/md5.c tests/slt/md5.h

check_PROGRAMS += tests/slt/mtrslt
tests_slt_mtrslt_SOURCES = tests/slt/mtrslt.c tests/slt/backend.h tests/slt/backend_sqlite.c \
	tests/slt/backend_mtr.c $(SLT_CORE)
tests_slt_mtrslt_LDADD = libmetronome.la $(CORE_LIBS)
tests_slt_mtrslt_LDFLAGS = $(AM_LDFLAGS) -no-install

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_slt
TESTS += tests/unit/test_slt
tests_unit_test_slt_SOURCES = tests/unit/test_slt.c tests/slt/backend.h tests/slt/backend_sqlite.c $(SLT_CORE)
tests_unit_test_slt_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/slt
# needs nothing of libmtrcore: it keeps building while the core is in flux
tests_unit_test_slt_LDADD = $(SQLITE_LIBS) $(CMOCKA_LIBS) -lm
endif

TESTS += tests/integration/slt_sqlite.sh
EXTRA_DIST += tests/integration/slt_sqlite.sh doc/mtrslt.md

# sltproxy: a stand-in proxy (client protocol in front of one in-memory
# SQLite) so that the Metronome backend can be tested without the daemons.
check_PROGRAMS += tests/slt/sltproxy
tests_slt_sltproxy_SOURCES = tests/slt/sltproxy.c
tests_slt_sltproxy_LDADD = $(CORE_LIBS)
