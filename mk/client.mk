# src/client: libmetronome, the installed C client library (doc/client.md,
# doc/libmetronome.3), and the local cluster it starts for the URI `local`.
# libmtrclient holds the client's own code (so that tests/layers.sh can check
# it); libmetronome is that plus the proxy and everything under it, shared
# and static, exporting only mtr_* (include/metronome.h).
libmtrclient_la_SOURCES += src/client/client.c src/client/client_stmt.c src/client/client_temp.c \
	src/client/client_embed.c src/client/client_int.h src/client/client_tls.c src/client/localcluster.c src/client/localcluster.h

lib_LTLIBRARIES = libmetronome.la
libmetronome_la_SOURCES =
# sqlite3: only localcluster.c, which reads each replica's applied instance
# when the `local` cluster stops (doc/client.md "Linking")
libmetronome_la_LIBADD = libmtrclient.la libmtrproxy.la libmtrsql.la libmtrnet.la libmtrproto.la \
	libmtrcommon.la $(SQLITE_LIBS) $(XXHASH_LIBS) $(SODIUM_LIBS) $(OPENSSL_LIBS) $(PTHREAD_LIBS) -lm
libmetronome_la_LDFLAGS = $(AM_LDFLAGS) -export-symbols-regex '^mtr_' -version-info 0:0:0
# in-tree programs link libmetronome statically: they also call internal
# functions (log, localcluster), which the shared library does not export
CLIENT_PROGRAM_LIBS = libmetronome.la -lm
CLIENT_STATIC = $(AM_LDFLAGS) -static

pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = metronome.pc
EXTRA_DIST += doc/client.md
dist_man_MANS += doc/libmetronome.3
