/*
 * siphash.c - SipHash-2-4: 2 compression rounds per 8-byte word, 4
 * finalisation rounds, little-endian word loads, the length in the top byte
 * of the last word.
 */
#include "config.h"

#include "siphash.h"
#include "util.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                       \
	do {                           \
		v0 += v1;              \
		v1 = ROTL(v1, 13);     \
		v1 ^= v0;              \
		v0 = ROTL(v0, 32);     \
		v2 += v3;              \
		v3 = ROTL(v3, 16);     \
		v3 ^= v2;              \
		v0 += v3;              \
		v3 = ROTL(v3, 21);     \
		v3 ^= v0;              \
		v2 += v1;              \
		v1 = ROTL(v1, 17);     \
		v1 ^= v2;              \
		v2 = ROTL(v2, 32);     \
	} while (0)

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t k0 = ld64(key), k1 = ld64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ull ^ k0;
	uint64_t v1 = 0x646f72616e646f6dull ^ k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ k0;
	uint64_t v3 = 0x7465646279746573ull ^ k1;
	size_t whole = len & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = ld64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)p[whole + i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}
