/*
 * batch.h - the value of one Paxos instance: an ordered list of ranges
 * (stream, first, last), plus the per-stream "ordered through" cursor used to
 * check invariant 3 (contiguity).
 *
 * A valid batch has its ranges sorted by stream, no stream twice, and
 * 1 <= first <= last for every range.  The empty batch (n = 0) is the no-op.
 * Encoding (little-endian, doc/paxos.md):
 *
 *   u32 count | count * (u64 stream, u64 first, u64 last)
 *
 * A cursor (struct batch_order) records, per stream, the last seq ordered so
 * far; a batch is contiguous with it when every range starts right after the
 * stream's last ordered seq (at 1 for a stream never ordered).
 */
#ifndef MTR_BATCH_H
#define MTR_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest number of ranges in one batch (bounds decoding). */
#define BATCH_MAX_RANGES 4096u
/* Encoded size of one range and of the count prefix. */
#define BATCH_RANGE_SIZE 24u
#define BATCH_HDR_SIZE 4u

/* One range of a stream's items, inclusive. */
struct batch_range {
	uint64_t stream;
	uint64_t first;
	uint64_t last;
};

/* A batch.  r is owned by the batch (malloc'd) and freed by batch_free(). */
struct batch {
	uint32_t n;
	struct batch_range *r;
};

/* A (stream, seq) pair: a cursor entry or a watermark. */
struct batch_mark {
	uint64_t stream;
	uint64_t seq;
};

/* Per-stream last ordered seq, sorted by stream.  v is owned (malloc'd). */
struct batch_order {
	uint32_t n, cap;
	struct batch_mark *v;
};

/* 0 if b is valid (sorted, no duplicate stream, 1 <= first <= last, at most
 * BATCH_MAX_RANGES ranges), else MTR_EINVAL. */
int batch_validate(const struct batch *b);

/* Bytes batch_encode() writes for b. */
size_t batch_encoded_size(const struct batch *b);

/* Encode b into buf (capacity cap); returns the bytes written or
 * MTR_ETOOBIG when cap is too small.  b is not validated here. */
int batch_encode(const struct batch *b, uint8_t *buf, size_t cap);

/* Decode a batch from buf[0..len); *used receives the bytes consumed.
 * On success b owns a fresh array (batch_free); on error b is empty and the
 * result is MTR_ETRUNCATED, MTR_EMALFORMED (invalid batch) or MTR_ENOMEM. */
int batch_decode(struct batch *b, const uint8_t *buf, size_t len, size_t *used);

/* Deep copy src into dst (dst's old contents are freed first); 0 or
 * MTR_ENOMEM (dst is then empty). */
int batch_copy(struct batch *dst, const struct batch *src);

/* Append a range (no validation); 0 or MTR_ENOMEM. */
int batch_push(struct batch *b, uint64_t stream, uint64_t first, uint64_t last);

/* True when a and b hold the same ranges. */
bool batch_equal(const struct batch *a, const struct batch *b);

/* Free the ranges; b becomes the empty batch. */
void batch_free(struct batch *b);

/* Last ordered seq of stream in o (0 when never ordered). */
uint64_t batch_order_last(const struct batch_order *o, uint64_t stream);

/* Set the last ordered seq of stream; 0 or MTR_ENOMEM. */
int batch_order_set(struct batch_order *o, uint64_t stream, uint64_t last);

/* 0 when every range of b starts right after o's last seq for its stream
 * (invariant 3), else MTR_EINVAL.  b must be valid. */
int batch_order_check(const struct batch_order *o, const struct batch *b);

/* Check b against o, then advance o past b; 0, MTR_EINVAL (o unchanged) or
 * MTR_ENOMEM. */
int batch_order_apply(struct batch_order *o, const struct batch *b);

/* Deep copy; 0 or MTR_ENOMEM. */
int batch_order_copy(struct batch_order *dst, const struct batch_order *src);

/* Free the cursor; it becomes empty. */
void batch_order_free(struct batch_order *o);

#endif
