# src/proto: the formats both sides speak (doc/protocol.md): datagrams and
# their value codec (wire), server-to-proxy datagrams (wire_server), result
# bytes (result), the client <-> proxy TCP frames (cproto) and the snapshot
# channel's exchange (snapchan).  Pure codecs.
libmtrproto_la_SOURCES += src/proto/wire.c src/proto/wire.h src/proto/wire_server.c src/proto/wire_server.h \
	src/proto/result.c src/proto/result.h src/proto/cproto.c src/proto/cproto.h \
	src/proto/snapchan.c src/proto/snapchan.h
