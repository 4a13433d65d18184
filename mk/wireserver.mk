# wireserver: PAXOS, RESULT and RESULT_REQUEST datagrams (doc/protocol.md).
libmtrcore_la_SOURCES += src/wire_server.c src/wire_server.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_wire_server
TESTS += tests/unit/test_wire_server
endif
