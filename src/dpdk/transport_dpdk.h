/*
 * transport_dpdk.h - the DPDK transport (kernel bypass), a library of its own.
 *
 * Only the daemons and the tools that want kind "dpdk" link src/dpdk (and so
 * DPDK's libraries); they call transport_dpdk_enable() once at start, after
 * which transport_open() (transport.h) opens kind "dpdk" with
 * transport_dpdk_open().  The client library never links it.  In a build
 * without DPDK (configure found no libdpdk) enabling does nothing and kind
 * "dpdk" stays refused with MTR_ENOTSUP.  doc/dpdk.md.
 */
#ifndef MTR_TRANSPORT_DPDK_H
#define MTR_TRANSPORT_DPDK_H

#include "transport.h"

#ifdef HAVE_DPDK
/* Register transport_dpdk_open() for kind "dpdk" (transport_register_dpdk). */
void transport_dpdk_enable(void);

/* Open a DPDK transport from a completed configuration; call it through
 * transport_open(). */
int transport_dpdk_open(const struct transport_config *cfg, struct transport **out);
#else
static inline void transport_dpdk_enable(void)
{
}
#endif

#endif
