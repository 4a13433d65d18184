# src/server: the replica server (doc/server.md): the Paxos core (pure) with
# its batch value and message codec (doc/paxos.md), the durable acceptor
# state (pstore, doc/pstore.md), the ingest log (seglog, ingest, reasm,
# doc/storage.md), the apply side (apply, detvfs, digest, clustervt,
# doc/apply.md), the server object (server.c with server_net.c,
# server_apply.c, server_snap.c, server_vt.c, server_disk.c behind
# server_int.h), and the metronomed daemon.
libmtrserver_la_SOURCES += src/server/batch.c src/server/batch.h src/server/paxos.c src/server/paxos.h \
	src/server/paxos_codec.c src/server/paxos_codec.h src/server/pstore.c src/server/pstore.h \
	src/server/seglog.c src/server/seglog.h src/server/ingest.c src/server/ingest.h \
	src/server/reasm.c src/server/reasm.h src/server/apply.c src/server/apply.h src/server/apply_int.h src/server/apply_exec.c \
	src/server/apply_requests.c src/server/apply_read.c src/server/apply_init.c src/server/pitr.c src/server/pitr.h \
	src/server/detvfs.c src/server/detvfs.h src/server/walbuf.c src/server/walbuf.h src/server/digest.c src/server/digest.h \
	src/server/clustervt.c src/server/clustervt.h src/server/statstab.c src/server/statstab.h \
	src/server/server.c src/server/server.h src/server/server_int.h src/server/server_net.c \
	src/server/server_apply.c src/server/server_snap.c src/server/server_vt.c src/server/server_disk.c \
	src/server/server_health.c src/server/server_members.c
# built as src/metronomed, next to src/mtrproxy (mk/proxy.mk)
bin_PROGRAMS += src/metronomed
src_metronomed_SOURCES = src/server/metronomed.c $(DAEMON_SRC)
src_metronomed_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS)
src_metronomed_LDADD = libmtrserver.la $(DPDK_LA) $(NET_LIBS) $(SQLITE_LIBS) $(XXHASH_LIBS) $(SODIUM_LIBS) \
	$(MHD_LIBS) -lm
dist_man_MANS += doc/metronomed.8
EXTRA_DIST += doc/paxos.md doc/pstore.md doc/storage.md doc/apply.md doc/server.md doc/config.md \
	doc/metronomed.conf
