/*
 * wire.h - the datagram format shared by every transport, proxy and server.
 *
 * doc/protocol.md describes every byte; this header is the C face of it.
 * All integers are little-endian.  A datagram is
 *
 *   header (WIRE_HDR_SIZE = 24 bytes) | payload (length bytes) | trailer (8)
 *
 * and the trailer is, when the datagram flag WIRE_F_MAC is set (a cluster
 * key is configured), SipHash-2-4 keyed with the cluster key over
 * header+payload (libsodium's crypto_shorthash), or XXH3-64 of the same
 * bytes in a cluster run with cluster.insecure.  Nothing is trusted before
 * wire_dgram_check() has passed.
 *
 * Message types are declared once, in WIRE_TYPE_MAP: the enum wire_type
 * (WIRE_T_ITEMS, ...) and wire_type_name() are generated from it, nothing
 * else.  Each payload's encoder and decoder is written by hand: below for
 * ITEMS, FRAGMENT, HEARTBEAT and RESEND, in wire_server.h for RESULT,
 * RESULT_REQUEST, RESULT_UNKNOWN, READ, CANCEL_READ, STATUS and STATS, in
 * src/server/paxos_codec.h for PAXOS.
 *
 * A typed value (struct wire_value) has one encoding wherever it appears:
 * item parameters here, bound values in client QUERY frames (cproto.h) and
 * the values of result rows (result.h).  wire_value_size/put/skip/get below
 * (and wire_value_head) are its only encoder and decoder.
 */
#ifndef MTR_WIRE_H
#define MTR_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC 0x4E52544Du /* bytes 'M' 'T' 'R' 'N' */
#define WIRE_VERSION 1
#define WIRE_HDR_SIZE 24
#define WIRE_TRAILER_SIZE 8
#define WIRE_OVERHEAD (WIRE_HDR_SIZE + WIRE_TRAILER_SIZE)
#define WIRE_MAX_DGRAM 65507u     /* largest UDP/IPv4 payload */
#define WIRE_MIN_MTU 256u         /* smallest datagram size we configure */
#define WIRE_DEFAULT_MTU 1472u    /* Ethernet 1500 - IPv4 20 - UDP 8 */
#define WIRE_DEFAULT_MAX_ITEM (64u << 20) /* 64 MiB; configurable */

/* Datagram flags (header bytes 6-7). */
#define WIRE_F_MAC 0x0001u /* trailer is a keyed SipHash-2-4, not XXH3 */

#define WIRE_KEY_SIZE 16 /* bytes of a cluster key (crypto_shorthash_KEYBYTES) */

/*
 * Message types: X(NAME, value, summary).  Values are part of the protocol;
 * new types are appended with new values, never renumbered.
 */
#define WIRE_TYPE_MAP(X)                                                   \
	X(ITEMS, 1, "one or more whole items of a proxy stream")           \
	X(FRAGMENT, 2, "one fragment of an item too large for a datagram") \
	X(HEARTBEAT, 3, "proxy heartbeat: stream and highest seq sent")    \
	X(RESEND, 4, "request to resend a range of a stream's items")      \
	X(PAXOS, 5, "one Paxos message (paxos codec bytes)")               \
	X(RESULT, 6, "a replica's results (or chunks) for items of a stream") \
	X(RESULT_REQUEST, 7, "a proxy asks again for the result of an item") \
	X(READ, 8, "a proxy asks one server to run a read (none/session)") \
	X(STATUS, 9, "a server's state: role, leader, chosen, applied") \
	X(STATS, 10, "some of a server's counters, by name") \
	X(RESULT_UNKNOWN, 11, "items a replica applied but keeps no result for") \
	X(CANCEL_READ, 12, "a proxy no longer needs a READ it sent: stop it") \
	X(MEMBERSHIP, 13, "a membership change asked of the leader, and its answer") \
	X(READS, 40, "several READs of one stream to one server in one datagram")

enum wire_type {
#define WIRE__TYPE_ENUM(name, value, text) WIRE_T_##name = value,
	WIRE_TYPE_MAP(WIRE__TYPE_ENUM)
#undef WIRE__TYPE_ENUM
};

/* Name of a message type ("ITEMS"), or "?" for an unknown value. */
const char *wire_type_name(unsigned type);

/* The fixed header of a datagram, decoded. */
struct wire_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t cluster; /* cluster id: datagrams of other clusters are dropped */
	uint32_t sender;  /* node id of the sender (proxy or server) */
	uint32_t length;  /* payload bytes */
};

/*
 * A cluster key for the keyed MAC; set == 0 means "no key: use XXH3"
 * (cluster.insecure).  Datagrams are sent with k; on receive a datagram
 * whose MAC fails under k is also tried under next when next_set
 * (cluster.key_next: the key a rolling rotation moves to).
 */
struct wire_key {
	int set;
	uint8_t k[WIRE_KEY_SIZE];
	int next_set;
	uint8_t next[WIRE_KEY_SIZE];
};

/*
 * Who sends a datagram: every builder takes one.  cluster and sender go into
 * the header; key NULL or unset (key->set == 0): XXH3 trailer, else the
 * keyed MAC and WIRE_F_MAC.  Fill it once per process (server, proxy).
 */
struct wire_from {
	uint32_t cluster;
	uint32_t sender;
	const struct wire_key *key;
};

/*
 * Frame a datagram in place.  buf holds the payload at buf + WIRE_HDR_SIZE
 * (length bytes) and has room for the trailer after it.  Writes the header
 * (magic, WIRE_VERSION, type, flags WIRE_F_MAC when f->key is set, cluster,
 * sender, length) and the trailer.
 * Returns the datagram length (length + WIRE_OVERHEAD).
 */
size_t wire_frame_finish(uint8_t *buf, const struct wire_from *f, uint8_t type, uint32_t length);

/*
 * Validate a received datagram of len bytes: size, magic, version, reserved
 * bytes, payload length, trailer (hash, or MAC when key is set: a datagram
 * without WIRE_F_MAC is then rejected; the MAC is compared in constant time,
 * under key->k and then key->next), and cluster id.  Fills *out.
 * Returns 0, or MTR_ETRUNCATED, MTR_EMAGIC, MTR_EVERSION, MTR_EMALFORMED,
 * MTR_EINTEGRITY, MTR_ECLUSTER.  Never reads outside buf[0..len).
 * The payload is at buf + WIRE_HDR_SIZE, out->length bytes.
 */
int wire_dgram_check(const uint8_t *buf, size_t len, uint32_t cluster, const struct wire_key *key,
		     struct wire_hdr *out);

/* ---- items ------------------------------------------------------------ */

/* Value types (one byte on the wire). */
enum wire_vtype { WIRE_V_NULL = 0, WIRE_V_INT = 1, WIRE_V_REAL = 2, WIRE_V_TEXT = 3, WIRE_V_BLOB = 4 };

/* A typed value: an item parameter, a client's bound value, a value of a
 * result row.  For TEXT and BLOB, p/n point at the bytes (not owned; TEXT
 * is not NUL-terminated on the wire). */
struct wire_value {
	uint8_t type;
	union {
		int64_t i;
		double r;
		struct {
			const void *p;
			uint32_t n;
		} b;
	} u;
};

/*
 * The value codec.  Encoding: u8 type, then INT i64, REAL the 8 bytes of the
 * IEEE-754 binary64 bit for bit, TEXT/BLOB u32 length and the bytes, NULL
 * nothing.  Little-endian.
 */

/* Encoded size of v (type byte included): 1, 9 or 5 + length; 0 when
 * v->type is not a WIRE_V_* type (such a value cannot be encoded). */
size_t wire_value_size(const struct wire_value *v);

/* Write the head of v at p and return its length (at most
 * WIRE_VALUE_HEAD_MAX): the type byte, then for INT/REAL the 8 bytes (the
 * whole value), for TEXT/BLOB the u32 length; the TEXT/BLOB bytes are not
 * written (they follow the head: for a caller that streams them, e.g. into
 * a hash).  v->type must be a WIRE_V_* type. */
#define WIRE_VALUE_HEAD_MAX 9
size_t wire_value_head(uint8_t *p, const struct wire_value *v);

/* Write v at p, wire_value_size(v) bytes (the caller made room and checked
 * that size is not 0).  Returns p advanced past the value. */
uint8_t *wire_value_put(uint8_t *p, const struct wire_value *v);

/* Validate the value at *p, which must end by end, and advance *p past it.
 * Returns 0, MTR_ETRUNCATED (it does not fit) or MTR_EMALFORMED (unknown
 * type); *p is unchanged on error.  Never reads at or after end. */
int wire_value_skip(const uint8_t **p, const uint8_t *end);

/* Decode the value at *p into *v and advance *p.  No checks: only for bytes
 * wire_value_skip() has accepted.  NULL sets v->u.i to 0; TEXT/BLOB point
 * into the bytes. */
void wire_value_get(const uint8_t **p, struct wire_value *v);

/* One SQL statement (or several separated by ';' when it has no parameters)
 * with its positional parameters ?1..?nparams.  Not owned. */
struct wire_stmt {
	const char *sql;
	uint32_t sql_len;
	uint16_t nparams;
	const struct wire_value *params;
};

/* Item flags. */
#define WIRE_ITEM_TXN 0x0001u  /* an explicit BEGIN..COMMIT group: all or nothing */
#define WIRE_ITEM_READ 0x0002u /* a linearizable read ordered like a write */
#define WIRE_ITEM_TEMP 0x0004u /* has TEMP definitions: the replica drops its
				  temp objects after the item (doc/apply.md) */

/*
 * An item: the unit the servers order and apply.  The proxy fills the fixed
 * fields; stmts/nstmt are what to execute, in order, as one unit.
 *
 * timestamp_us: the proxy's clock (microseconds since the Unix epoch) that
 * every replica uses for 'now'; seed: the per-item random seed every replica
 * uses for random()/randomblob() (doc/determinism.md).
 */
struct wire_item {
	uint64_t stream;
	uint64_t seq;
	uint64_t request;
	int64_t timestamp_us;
	uint64_t seed;
	uint64_t client; /* the client handle's id (HELLO); 0: no de-duplication */
	uint64_t floor;  /* the client's lowest unanswered request id: it will
			    never resend one below (doc/apply.md "Resends") */
	uint32_t flags;
	uint32_t nstmt;
	const struct wire_stmt *stmts; /* encode: nstmt statements; decode: NULL */
	const uint8_t *body;           /* decode: the validated statement bytes */
	uint32_t body_len;
};

/* Encoded size of an item (its record in an ITEMS payload). */
size_t wire_item_size(const struct wire_item *it);

/* Encode an item record into buf (cap bytes).  Returns the bytes written, or
 * MTR_ETOOBIG if cap is too small, MTR_EINVAL for an invalid value type. */
long wire_item_encode(uint8_t *buf, size_t cap, const struct wire_item *it);

/*
 * Decode and fully validate one item record at p (at most len bytes).  On
 * success fills *it (body points into p; stmts is NULL) and returns the bytes
 * consumed; else MTR_ETRUNCATED or MTR_EMALFORMED.  After success, iterating
 * the statements and parameters cannot fail.
 */
long wire_item_decode(const uint8_t *p, size_t len, struct wire_item *it);

/* Iterate the statements of an item in either form: decoded (body set,
 * stmts NULL) or to be encoded (stmts set). */
struct wire_stmt_iter {
	const uint8_t *p, *end;
	const struct wire_stmt *arr; /* the to-be-encoded form, else NULL */
	uint32_t left;
};
void wire_stmt_begin(const struct wire_item *it, struct wire_stmt_iter *si);

/* The next statement: fills *st and returns 1, or 0 at the end.  Decoded
 * form: st->params is NULL and the parameters are read with
 * wire_param_next() from *params; to-be-encoded form: st->params is the
 * array of st->nparams values and *params is NULL. */
int wire_stmt_next(struct wire_stmt_iter *si, struct wire_stmt *st, const uint8_t **params);

/* Read the next parameter of a decoded statement and advance *params
 * (wire_value_get on bytes wire_item_decode() validated).  For NULL, v->u.i
 * is set to 0; TEXT/BLOB point into the datagram. */
void wire_param_next(const uint8_t **params, struct wire_value *v);

/* ---- packing items into datagrams ------------------------------------- */

/*
 * A packer fills one ITEMS datagram at a time in a caller's buffer of mtu
 * bytes (the datagram size limit, WIRE_MIN_MTU..WIRE_MAX_DGRAM).
 */
struct wire_packer {
	uint8_t *buf;
	size_t mtu;
	size_t used; /* payload bytes so far */
	unsigned count;
	struct wire_from from; /* a copy: the caller's may go away */
};

void wire_packer_init(struct wire_packer *pk, uint8_t *buf, size_t mtu, const struct wire_from *f);

/* Append an item.  Returns 0; MTR_EFULL when it does not fit in what is left
 * (finish the datagram and add it again); MTR_ETOOBIG when it would not fit
 * even an empty datagram (send it with the fragmenter instead). */
int wire_packer_add(struct wire_packer *pk, const struct wire_item *it);

/* Frame the datagram built so far and return its length (0 if it holds no
 * item); the packer is then empty again, on the same buffer. */
size_t wire_packer_finish(struct wire_packer *pk);

/* Iterate the items of a checked ITEMS payload: returns 1 and fills *it, 0 at
 * the end, or a negative MTR_E* code for a malformed record (stop there). */
int wire_items_next(const uint8_t **p, const uint8_t *end, struct wire_item *it);

/* ---- fragments -------------------------------------------------------- */

/*
 * FRAGMENT payload: stream u64, seq u64, total u32 (encoded item bytes),
 * frag_size u32 (bytes per fragment but the last), index u32, then the bytes
 * [index*frag_size, min(total, (index+1)*frag_size)).
 */
#define WIRE_FRAG_HDR_SIZE 28

/* Bytes of item per fragment for a datagram size limit. */
size_t wire_frag_size(size_t mtu);

/* Number of fragments an encoded item of item_len bytes needs. */
uint32_t wire_frag_count(size_t item_len, size_t mtu);

/* Build fragment number index of the encoded item (item, item_len) of
 * (stream, seq) as a complete datagram in buf (mtu bytes).  Returns its
 * length.  The caller guarantees index < wire_frag_count(item_len, mtu) and
 * item_len <= UINT32_MAX (in practice <= the configured maximum item). */
size_t wire_frag_build(uint8_t *buf, size_t mtu, const struct wire_from *f, uint64_t stream, uint64_t seq,
		       const uint8_t *item, size_t item_len, uint32_t index);

/* A decoded fragment header; data points into the payload. */
struct wire_frag {
	uint64_t stream, seq;
	uint32_t total, frag_size, index;
	const uint8_t *data;
	uint32_t len;
};

/* Decode and validate a FRAGMENT payload (consistency of total, frag_size,
 * index and length; total <= max_item).  0, MTR_EMALFORMED or MTR_ETOOBIG. */
int wire_frag_decode(const uint8_t *p, size_t len, size_t max_item, struct wire_frag *f);

/* ---- small control messages ------------------------------------------- */

/* HEARTBEAT payload: stream u64, highest seq sent u64 (0: none yet). */
struct wire_heartbeat {
	uint64_t stream;
	uint64_t high;
};
/* RESEND payload: stream u64, first u64, last u64 (inclusive). */
struct wire_resend {
	uint64_t stream;
	uint64_t first, last;
};

size_t wire_heartbeat_build(uint8_t *buf, const struct wire_from *f, const struct wire_heartbeat *m);
int wire_heartbeat_decode(const uint8_t *p, size_t len, struct wire_heartbeat *m);
size_t wire_resend_build(uint8_t *buf, const struct wire_from *f, const struct wire_resend *m);
int wire_resend_decode(const uint8_t *p, size_t len, struct wire_resend *m);

#endif
