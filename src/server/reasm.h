/*
 * reasm.h - reassembly of items that arrive as FRAGMENT datagrams.
 *
 * Pure: no clock reads (time comes in as an argument), no I/O.  Fragments of
 * one item, keyed by (stream, seq), may arrive in any order and more than
 * once; the item is handed over once, when its last missing fragment
 * arrives.  Memory is bounded: max_bytes over all partial items and at most
 * max_partials of them; when a new item would exceed a bound, the oldest
 * partial item is evicted, and if that is not enough the new item is refused.
 */
#ifndef MTR_REASM_H
#define MTR_REASM_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct reasm;

struct reasm_counters {
	uint64_t completed;  /* items handed over */
	uint64_t duplicates; /* fragments already held */
	uint64_t evicted;    /* partial items dropped for room */
	uint64_t expired;    /* partial items dropped by reasm_expire */
	uint64_t rejected;   /* fragments inconsistent with earlier ones */
	uint64_t refused;    /* new items refused for room (MTR_EFULL) */
};

/* A reassembler for items up to max_item bytes, max_bytes buffered in all,
 * max_partials items in progress.  NULL when out of memory. */
struct reasm *reasm_new(size_t max_item, size_t max_bytes, unsigned max_partials);

/*
 * Add one decoded fragment (wire_frag_decode() passed) received at now_ns.
 * Returns 1 when it completed its item: *item is a malloc'ed buffer of
 * *item_len bytes (the encoded item record) that the caller frees; 0 when the
 * item is still incomplete (or the fragment was a duplicate); MTR_EMALFORMED
 * when it disagrees with earlier fragments of the same item (total or
 * fragment size); MTR_ETOOBIG when the item exceeds max_item; MTR_EFULL when
 * a new item would exceed max_bytes or max_partials even after evicting the
 * oldest partial item (the fragment is dropped; nothing else changes);
 * MTR_ENOMEM.  Fragments of an item already handed over start a new partial
 * item: the caller drops fragments of items it already has.
 */
int reasm_add(struct reasm *r, const struct wire_frag *f, uint64_t now_ns, uint8_t **item, size_t *item_len);

/* Drop partial items whose first fragment is older than max_age_ns. */
void reasm_expire(struct reasm *r, uint64_t now_ns, uint64_t max_age_ns);

/* Bytes buffered and items in progress now. */
size_t reasm_bytes(const struct reasm *r);
unsigned reasm_partials(const struct reasm *r);

void reasm_counters(const struct reasm *r, struct reasm_counters *out);

/* Free everything, partial items included.  r may be NULL. */
void reasm_free(struct reasm *r);

#endif
