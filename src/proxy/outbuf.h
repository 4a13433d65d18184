/*
 * outbuf.h - the proxy's send buffer: every encoded item of its stream,
 * kept from the moment it is numbered until it is chosen.
 *
 * A proxy numbers its items 1, 2, 3 ... (outbuf_next_seq), encodes each with
 * that seq, and puts it here before sending it; a server that lost it asks
 * for a resend (outbuf_get), and once the item's instance is chosen the
 * proxy releases it (outbuf_release).  The buffer is bounded in bytes and in
 * items: outbuf_put returns MTR_EFULL when either bound is reached, and the
 * proxy then stops reading from its clients until a release makes room
 * (push-back).
 *
 * Items are released in seq order, so the bytes live in one circular byte
 * buffer (each item contiguous; an item that does not fit before the end
 * goes to the start) and the index is a ring of (offset, length) by seq.
 * No allocation after outbuf_init.  One thread at a time.
 */
#ifndef MTR_OUTBUF_H
#define MTR_OUTBUF_H

#include <stddef.h>
#include <stdint.h>

/* Counters (monotonic unless said otherwise). */
struct outbuf_stats {
	uint64_t puts;     /* items accepted */
	uint64_t full;     /* puts refused with MTR_EFULL */
	uint64_t resends;  /* successful outbuf_get calls */
	uint64_t released; /* items released */
	uint64_t items;    /* items held now (gauge) */
	uint64_t bytes;    /* item bytes held now (gauge) */
};

/* The buffer.  Fields are private; the struct is public so that it can be
 * embedded.  Free its memory with outbuf_free. */
struct outbuf {
	uint8_t *data;
	uint64_t cap_bytes;
	struct outbuf_ent {
		uint64_t off;
		uint32_t len;
	} *ent;
	uint32_t cap_items;
	uint64_t first; /* lowest seq held (== next when empty) */
	uint64_t next;  /* seq the next put gets */
	uint64_t head;  /* offset of the first held item's bytes */
	uint64_t tail;  /* offset where the next item goes (if it fits) */
	struct outbuf_stats st;
};

/* Allocate a buffer for at most max_items items and max_bytes item bytes;
 * the first seq is 1.  0, MTR_EINVAL (a zero bound) or MTR_ENOMEM. */
int outbuf_init(struct outbuf *ob, uint64_t max_bytes, uint32_t max_items);

/* Free the memory (the struct itself is the caller's). */
void outbuf_free(struct outbuf *ob);

/* The seq the next outbuf_put must carry. */
uint64_t outbuf_next_seq(const struct outbuf *ob);

/* The highest seq put so far (0: none), for heartbeats. */
uint64_t outbuf_high(const struct outbuf *ob);

/*
 * Keep a copy of the encoded item (item, len) numbered seq, which must be
 * outbuf_next_seq().  Returns 0; MTR_EFULL when the buffer has no room now
 * (release, then retry); MTR_ETOOBIG when len could never fit; MTR_EINVAL
 * (wrong seq, len 0).
 */
int outbuf_put(struct outbuf *ob, uint64_t seq, const void *item, uint32_t len);

/* The bytes of seq, for a resend: *p valid until that seq is released.
 * 0 or MTR_ENOENT (released already, or never put). */
int outbuf_get(struct outbuf *ob, uint64_t seq, const uint8_t **p, uint32_t *len);

/* Every item up to upto is chosen: drop them.  upto beyond the highest seq
 * releases everything put so far. */
void outbuf_release(struct outbuf *ob, uint64_t upto);

/* Copy the counters. */
void outbuf_stats(const struct outbuf *ob, struct outbuf_stats *st);

#endif
