# src/proxy: the proxy core (proxy.c: configuration, epoll loop, open /
# close; proxy_client.c: client protocol and answers; proxy_net.c: items,
# repair, results, reads; proxy_backup.c: backups relayed from a server's
# snapshot channel; behind proxy_int.h), the request-to-item builder
# (proxy_item.c), the send buffer (outbuf.c), and the mtrproxy daemon
# (doc/proxy.md, doc/mtrproxy.8).  TLS for the client protocol (tlsconn.c,
# over OpenSSL, used by both ends: proxy_tls.c here and libmetronome's
# client.c) lives here because only the proxy and the client need it.
# The client library embeds the same core (mtr+embedded://, local).
libmtrproxy_la_SOURCES += src/proxy/proxy.c src/proxy/proxy.h src/proxy/proxy_int.h src/proxy/proxy_client.c \
	src/proxy/proxy_net.c src/proxy/proxy_backup.c src/proxy/proxy_members.c src/proxy/proxy_auth.c src/proxy/proxy_auth.h src/proxy/proxy_item.c src/proxy/proxy_item.h \
	src/proxy/outbuf.c src/proxy/outbuf.h src/proxy/proxy_health.c src/proxy/proxy_tls.c src/proxy/tlsconn.c \
	src/proxy/tlsconn.h
# built as src/mtrproxy, next to src/metronomed: the local cluster and the
# tests find both daemons in one directory
bin_PROGRAMS += src/mtrproxy
src_mtrproxy_SOURCES = src/proxy/mtrproxy.c $(DAEMON_SRC)
src_mtrproxy_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS)
src_mtrproxy_LDADD = libmtrproxy.la libmtrsql.la $(DPDK_LA) $(NET_LIBS) $(MHD_LIBS) $(OPENSSL_LIBS)
EXTRA_DIST += doc/proxy.md doc/mtrproxy.conf
dist_man_MANS += doc/mtrproxy.8
