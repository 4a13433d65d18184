# src/dpdk: the DPDK transport and its pure frame code (netpkt), built only
# when configure found libdpdk (doc/dpdk.md).  A library of its own so that
# only the programs that offer kind "dpdk" (the daemons, some tools and
# tests) link DPDK; they call transport_dpdk_enable().  DPDK headers come in
# as -isystem (configure.ac), and only this library sees DPDK_CFLAGS.
EXTRA_DIST += src/dpdk/transport_dpdk.h doc/dpdk.md
if HAVE_DPDK
noinst_LTLIBRARIES += libmtrdpdk.la
libmtrdpdk_la_SOURCES = src/dpdk/netpkt.c src/dpdk/netpkt.h src/dpdk/transport_dpdk.c src/dpdk/transport_dpdk.h
libmtrdpdk_la_CFLAGS = $(AM_CFLAGS) $(DPDK_CFLAGS)
DPDK_LA += libmtrdpdk.la $(DPDK_LIBS)
endif
