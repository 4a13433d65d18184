# src/net: the transport interface and the UDP socket transport
# (doc/transport.md), and the configuration keys both daemons share.
libmtrnet_la_SOURCES += src/net/transport.c src/net/transport.h src/net/transport_udp.c \
	src/net/clusterconf.c src/net/clusterconf.h
EXTRA_DIST += doc/transport.md doc/performance.md doc/security.md
