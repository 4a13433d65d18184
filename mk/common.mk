# src/common: logging, error codes, config files, small helpers.
# The bottom library: it uses nothing of ours.
libmtrcommon_la_SOURCES += src/common/log.c src/common/log.h src/common/error.c src/common/util.h \
	src/common/conf.c src/common/conf.h \
	src/common/stats.h src/common/metrics.c src/common/metrics.h \
	src/common/localsrc.c src/common/localsrc.h src/common/secret.c src/common/secret.h
# What the two daemons share around their object (daemon.c) with their HTTP
# endpoint (httpd.c, libmicrohttpd): compiled into metronomed and mtrproxy,
# never into a library (the client library stays without libmicrohttpd).
DAEMON_SRC = src/common/daemon.c src/common/daemon.h src/common/httpd.c src/common/httpd.h
include_HEADERS += include/metronome.h
