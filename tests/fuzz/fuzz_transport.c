/*
 * fuzz_transport.c - libFuzzer target for the transport's common code on
 * hostile input: transport_addr_parse() (configuration text) must accept
 * exactly what transport_addr_format() prints back unchanged, and
 * transport_filter() must keep only datagrams that pass wire_dgram_check(),
 * compact them in order, and count every other one under one reason.
 *
 * Input: byte 0 picks the case.  Addresses: the rest as a string.  Filter:
 * byte 1 = flags (bit 0: a cluster key), then datagrams as [u16 len][bytes].
 */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "transport.h"
#include "util.h"
#include "wire.h"

static void fuzz_addr(const uint8_t *data, size_t size)
{
	char s[64], out[32];
	if (size >= sizeof s)
		size = sizeof s - 1;
	memcpy(s, data, size);
	s[size] = '\0';
	struct transport_addr a, b;
	if (transport_addr_parse(s, 7400, &a) < 0)
		return;
	transport_addr_format(&a, out, sizeof out);
	assert(transport_addr_parse(out, 0, &b) == 0);
	assert(a.ip == b.ip && a.port == b.port);
	/* what parses with an explicit port prints back the same text */
	if (strchr(s, ':'))
		assert(strcmp(s, out) == 0);
}

static void fuzz_filter(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	struct transport t;
	memset(&t, 0, sizeof t);
	t.cfg.cluster = 0;
	if (data[0] & 1) {
		t.cfg.key.set = 1;
		memset(t.cfg.key.k, 0x5a, sizeof t.cfg.key.k);
	}
	data++;
	size--;
	struct transport_msg m[16];
	uint8_t *copy[16];
	unsigned n = 0;
	while (n < 16 && size >= 2) {
		size_t len = ld16(data);
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		/* a copy of exactly len bytes, so ASan sees any over-read */
		copy[n] = malloc(len ? len : 1);
		memcpy(copy[n], data, len);
		m[n] = (struct transport_msg){ .buf = copy[n], .len = (uint32_t)len };
		m[n].peer.port = (uint16_t)n;
		data += len;
		size -= len;
		n++;
	}
	int good = transport_filter(&t, m, n);
	assert(good >= 0 && (unsigned)good <= n);
	uint64_t drops = 0;
	for (unsigned i = 0; i < TRANSPORT_DROP__COUNT; i++)
		drops += t.ctr.drops[i];
	assert(drops + (unsigned)good == n);
	assert(t.ctr.dgrams_in == (unsigned)good);
	for (int i = 0; i < good; i++) {
		struct wire_hdr h;
		assert(wire_dgram_check(m[i].buf, m[i].len, 0, t.cfg.key.set ? &t.cfg.key : NULL, &h) == 0);
		assert(h.length == m[i].hdr.length && h.type == m[i].hdr.type);
		if (i > 0)
			assert(m[i].peer.port > m[i - 1].peer.port); /* order kept */
	}
	for (unsigned i = 0; i < n; i++)
		free(copy[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	log_set_level(LOG_ERROR);
	if (data[0] & 1)
		fuzz_filter(data + 1, size - 1);
	else
		fuzz_addr(data + 1, size - 1);
	return 0;
}
