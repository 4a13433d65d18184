/*
 * siphash.h - SipHash-2-4, a keyed 64-bit pseudo-random function (Aumasson
 * and Bernstein, 2012), used as the datagram MAC when a cluster key is set.
 */
#ifndef MTR_SIPHASH_H
#define MTR_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of data[0..len) under the 16-byte key. */
uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
