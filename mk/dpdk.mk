# dpdk module: the DPDK transport and its pure frame code (netpkt), built only
# when configure found libdpdk.  See Makefile.am for the variables fragments
# add to.  DPDK headers come in as -isystem (configure.ac), so only the
# convenience library libmtrdpdk.la sees DPDK_CFLAGS.
if HAVE_DPDK
noinst_LTLIBRARIES += libmtrdpdk.la
libmtrdpdk_la_SOURCES = src/netpkt.c src/netpkt.h src/transport_dpdk.c
libmtrdpdk_la_CFLAGS = $(AM_CFLAGS) $(DPDK_CFLAGS)
libmtrcore_la_LIBADD += libmtrdpdk.la $(DPDK_LIBS)
CORE_LIBS += $(DPDK_LIBS)
EXTRA_DIST += doc/dpdk.md

# the integration suite's sender/receiver (either transport)
check_PROGRAMS += tests/integration/mtrdgram
tests_integration_mtrdgram_SOURCES = tests/integration/mtrdgram.c
tests_integration_mtrdgram_LDADD = $(CORE_LIBS)
TESTS += tests/integration/dpdk_netns.sh
EXTRA_DIST += tests/integration/dpdk_netns.sh

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_netpkt
TESTS += tests/unit/test_netpkt

check_PROGRAMS += tests/unit/test_transport_dpdk
TESTS += tests/unit/test_transport_dpdk
endif
endif

# mtrbench ingest (built in every tree; without DPDK it says so and fails)
tests_bench_mtrbench_SOURCES += tests/bench/bench_ingest.c
