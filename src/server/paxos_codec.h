/*
 * paxos_codec.h - Paxos messages to and from payload bytes.
 *
 * Layout (little-endian, doc/paxos.md): u8 type, then the fields the type
 * carries (PAXOS_MSG_MAP) in PAXOS_FIELD_MAP order.  Decoding validates
 * everything (known type, batches valid, counts bounded, no trailing bytes)
 * and never reads out of bounds.  Encoder, decoder and printer all come from
 * the two X-macro tables in paxos.h.
 */
#ifndef MTR_PAXOS_CODEC_H
#define MTR_PAXOS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "paxos.h"
#include "wire.h"

/* Field flags (PF_*) carried by a type, or 0 for an unknown type. */
unsigned paxos_msg_fields(unsigned type);

/* Bytes paxos_msg_encode() writes for m (0 for an unknown type). */
size_t paxos_msg_encoded_size(const struct paxos_msg *m);

/* Encode m into buf; returns the bytes written, MTR_EINVAL (unknown type or
 * too many entries/marks) or MTR_ETOOBIG (cap too small). */
int paxos_msg_encode(const struct paxos_msg *m, uint8_t *buf, size_t cap);

/* Decode buf[0..len) into *m, which then owns its arrays (paxos_msg_free).
 * 0, MTR_ETRUNCATED, MTR_EMALFORMED or MTR_ENOMEM; on error *m is empty. */
int paxos_msg_decode(struct paxos_msg *m, const uint8_t *buf, size_t len);

/* Free what a decoded message owns; *m becomes empty. */
void paxos_msg_free(struct paxos_msg *m);

/* One-line description of m for traces, written into buf (always
 * NUL-terminated); returns buf. */
char *paxos_msg_print(const struct paxos_msg *m, char *buf, size_t cap);

/* The PAXOS datagram (doc/protocol.md): payload = the codec bytes above. */
/* Build m as a PAXOS datagram in buf (cap bytes, at most WIRE_MAX_DGRAM are
 * used).  Returns the datagram length, or MTR_EINVAL / MTR_ETOOBIG from the
 * codec (MTR_ETOOBIG also when it exceeds cap or a datagram). */
long wire_paxos_build(uint8_t *buf, size_t cap, const struct wire_from *f, const struct paxos_msg *m);

#endif
