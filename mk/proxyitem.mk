# proxy item builder: one client request (SQL + binds) -> one encoded item.
libmtrcore_la_SOURCES += src/proxy_item.c src/proxy_item.h
EXTRA_DIST += doc/proxy.md

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_proxy_item
TESTS += tests/unit/test_proxy_item
endif
