/*
 * batch.h - the value of one Paxos instance: an ordered list of ranges
 * (stream, first, last), plus the per-stream "ordered through" cursor used to
 * check invariant 3 (contiguity).
 *
 * A valid batch has its ranges sorted by stream, no stream twice, and
 * 1 <= first <= last for every range.  The empty batch (n = 0) is the no-op.
 * A batch may also carry a cluster configuration (doc/paxos.md,
 * "Membership"): the members in force alpha instances after the instance
 * that chose it.
 *
 * Encoding (little-endian, doc/paxos.md):
 *
 *   u32 count | count * (u64 stream, u64 first, u64 last) | [configuration]
 *
 * Bit 31 of count (BATCH_CONF_FLAG) says that a configuration follows the
 * ranges: u8 members (1..16), then per member u8 id (0..63, strictly
 * increasing), u8 flags (bit 0: voter; other bits 0), u8 address length
 * (0..63) and that many bytes of address (printable ASCII, no space).  At
 * least one member is a voter.
 *
 * As a Paxos value a range is read cumulatively (doc/paxos.md, "The
 * leader's batching rule"): the stream is ordered up to last (its mark),
 * first is the proposer's hint; the core hands the host the part above its
 * cursor.
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

/* Bit 31 of the encoded count: a configuration follows the ranges. */
#define BATCH_CONF_FLAG 0x80000000u
/* Most members of a configuration, node ids (0 .. BATCH_ID_MAX - 1), and
 * the longest member address. */
#define BATCH_CONF_MAX 16u
#define BATCH_ID_MAX 64u
#define BATCH_ADDR_MAX 63u

/* One member of a configuration.  addr is NUL-terminated. */
struct batch_member {
	uint8_t id;
	uint8_t voter; /* 1: its promises and accepts count; 0: a learner */
	char addr[BATCH_ADDR_MAX + 1];
};

/* A cluster configuration: members sorted by id. */
struct batch_conf {
	uint32_t n;
	struct batch_member m[BATCH_CONF_MAX];
};

/* One range of a stream's items, inclusive. */
struct batch_range {
	uint64_t stream;
	uint64_t first;
	uint64_t last;
};

/* A batch.  r and conf are owned by the batch (malloc'd) and freed by
 * batch_free(); conf is NULL when the batch carries no configuration. */
struct batch {
	uint32_t n;
	struct batch_range *r;
	struct batch_conf *conf;
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
 * BATCH_MAX_RANGES ranges, its configuration if any valid), else MTR_EINVAL. */
int batch_validate(const struct batch *b);

/* 0 if c is a valid configuration (1..BATCH_CONF_MAX members, ids strictly
 * increasing and < BATCH_ID_MAX, voter 0 or 1, at least one voter,
 * addresses printable ASCII without spaces), else MTR_EINVAL. */
int batch_conf_validate(const struct batch_conf *c);

/* Bit masks of c's members by id: every member, the voters only. */
uint64_t batch_conf_members(const struct batch_conf *c);
uint64_t batch_conf_voters(const struct batch_conf *c);

/* The member of c with this id, or NULL. */
const struct batch_member *batch_conf_find(const struct batch_conf *c, uint32_t id);

/* Set b's configuration to a copy of c (NULL: none); 0 or MTR_ENOMEM. */
int batch_set_conf(struct batch *b, const struct batch_conf *c);

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

/* True when a and b hold the same ranges and the same configuration. */
bool batch_equal(const struct batch *a, const struct batch *b);

/* Free the ranges and the configuration; b becomes the empty batch. */
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
