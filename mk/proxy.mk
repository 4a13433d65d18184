# proxy: the proxy object (src/proxy.c, also embedded by the client library)
# and its daemon mtrproxy; doc/proxy.md "How the proxy works".
libmtrcore_la_SOURCES += src/proxy.c src/proxy.h
bin_PROGRAMS += src/mtrproxy
src_mtrproxy_SOURCES = src/mtrproxy.c
src_mtrproxy_LDADD = $(CORE_LIBS)
EXTRA_DIST += doc/mtrproxy.conf
dist_man_MANS += doc/mtrproxy.8

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_proxy
TESTS += tests/unit/test_proxy
endif

# mtrbench proxy: requests/s through the proxy against a fake server
tests_bench_mtrbench_SOURCES += tests/bench/bench_proxy.c
