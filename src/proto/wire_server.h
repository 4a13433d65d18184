/*
 * wire_server.h - server-to-proxy datagrams: replica results.
 *
 * The message types of the datagram format (src/proto/wire.h, doc/protocol.md)
 * that servers and proxies exchange besides items (PAXOS datagrams, which
 * only servers exchange, are built in paxos_codec.h):
 *   RESULT          a replica's results for items of one stream, as records
 *                   that may carry a whole result or one chunk of it (a
 *                   result larger than a datagram is split into chunks);
 *   RESULT_REQUEST  a proxy asks for the results of items of one stream
 *                   again, naming each by (seq, client, request);
 *   RESULT_UNKNOWN  a server's answer for items it applied but whose
 *                   result it no longer holds;
 *   READ, CANCEL_READ  a proxy asks one server to run a read, or to stop it;
 *   STATUS, STATS   a server's state and counters.
 * Builders write complete datagrams (wire_frame_finish); decoders validate a
 * checked payload completely and never read outside it.
 */
#ifndef MTR_WIRE_SERVER_H
#define MTR_WIRE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* ---- RESULT ----------------------------------------------------------- */

/*
 * RESULT payload: stream u64, nrec u32 (>= 1), then nrec records of
 *   seq u64, request u64, instance u64, total u32, offset u32, len u32,
 *   bytes[len]
 * carrying bytes [offset, offset+len) of the total-byte result of item
 * (stream, seq).  A record with offset 0 and len == total is a whole result.
 */
#define WIRE_RESULT_HDR_SIZE 12
#define WIRE_RESULT_REC_SIZE 36

/* One result to send (not owned): the apply result bytes of an item. */
struct wire_result {
	uint64_t seq, request, instance;
	const uint8_t *data;
	uint32_t len;
};

/*
 * Build the next RESULT datagram for results r[0..n) of stream in buf (mtu
 * bytes, WIRE_MIN_MTU..WIRE_MAX_DGRAM).  The cursor (*idx, *off: next result
 * and byte offset into it, start at 0, 0) is advanced past what was packed;
 * whole results are packed while they fit, and a result that does not fit
 * what is left is split at the datagram's end.  Returns the datagram length,
 * or 0 when *idx >= n (nothing left).
 */
size_t wire_result_build(uint8_t *buf, size_t mtu, const struct wire_from *f, uint64_t stream,
			 const struct wire_result *r, size_t n, size_t *idx, uint32_t *off);

/* One decoded record; data points into the payload. */
struct wire_result_rec {
	uint64_t seq, request, instance;
	uint32_t total, offset, len;
	const uint8_t *data;
};

/* A validated RESULT payload, iterated with wire_result_next(). */
struct wire_result_msg {
	uint64_t stream;
	uint32_t nrec;
	const uint8_t *p, *end; /* the records not yet read */
};

/* Validate a whole RESULT payload: stream != 0, nrec >= 1, every record with
 * seq != 0 or (seq 0, the answer to a READ) request != 0, total <= max_result, offset + len <= total, a chunk empty only
 * for an empty result, no bytes left over.  0, MTR_ETRUNCATED,
 * MTR_EMALFORMED or MTR_ETOOBIG (total > max_result). */
int wire_result_decode(const uint8_t *p, size_t len, size_t max_result, struct wire_result_msg *m);

/* Next record of a validated message: 1, or 0 at the end (cannot fail). */
int wire_result_next(struct wire_result_msg *m, struct wire_result_rec *rec);

/* ---- RESULT_REQUEST --------------------------------------------------- */

/*
 * RESULT_REQUEST payload: stream u64 (non-zero), nrec u32 (1 ..
 * WIRE_RREQ_MAX_RECS), then nrec records of seq u64 (non-zero), client u64,
 * request u64: the items of stream whose results the proxy asks for again,
 * with the client and request ids each item carries (client 0: the item
 * names no client).  A server answers each record from its result cache,
 * else from mtr_requests (doc/protocol.md "RESULT_REQUEST").
 */
#define WIRE_RREQ_HDR_SIZE 12
#define WIRE_RREQ_REC_SIZE 24
#define WIRE_RREQ_MAX_RECS 256u

/* One record of a RESULT_REQUEST. */
struct wire_rreq_rec {
	uint64_t seq, client, request;
};

/* A RESULT_REQUEST; decode: recs points into the payload (records to read
 * with wire_rreq_rec_get), build: recs is an array of nrec records. */
struct wire_result_request {
	uint64_t stream;
	uint32_t nrec;
	const struct wire_rreq_rec *recs; /* build only */
	const uint8_t *p;                 /* decode only: the first record */
};

/* Build in buf (cap bytes); records beyond what cap (or
 * WIRE_RREQ_MAX_RECS) holds are left out: *packed says how many went in.
 * Returns the datagram length (0 when not even one fits). */
size_t wire_result_request_build(uint8_t *buf, size_t cap, const struct wire_from *f,
				 const struct wire_result_request *m, uint32_t *packed);
/* 0 or MTR_EMALFORMED (stream 0, nrec 0 or above the maximum, a length that
 * is not exactly nrec records, a record with seq 0). */
int wire_result_request_decode(const uint8_t *p, size_t len, struct wire_result_request *m);
/* Record i (< nrec) of a decoded message. */
void wire_rreq_rec_get(const struct wire_result_request *m, uint32_t i, struct wire_rreq_rec *out);

/* ---- RESULT_UNKNOWN --------------------------------------------------- */

/*
 * RESULT_UNKNOWN payload: stream u64 (non-zero), instance u64 (the applied
 * instance the server looked at), nrec u32 (1 .. WIRE_RREQ_MAX_RECS), then
 * nrec records of seq u64 (non-zero), request u64: items of stream this
 * replica has applied (its mtr_cursor for the stream is at or above seq)
 * but whose result it no longer holds, neither in its result cache nor in
 * mtr_requests.  The answer to a RESULT_REQUEST; the proxy fails those
 * writes with MTR_EUNKNOWN (doc/protocol.md "RESULT_UNKNOWN").
 */
#define WIRE_RUNK_HDR_SIZE 20
#define WIRE_RUNK_REC_SIZE 16

/* One record of a RESULT_UNKNOWN. */
struct wire_runk_rec {
	uint64_t seq, request;
};

/* A RESULT_UNKNOWN; like struct wire_result_request (recs to build, p
 * decoded). */
struct wire_result_unknown {
	uint64_t stream, instance;
	uint32_t nrec;
	const struct wire_runk_rec *recs;
	const uint8_t *p;
};

/* Build in buf (cap bytes); as wire_result_request_build. */
size_t wire_result_unknown_build(uint8_t *buf, size_t cap, const struct wire_from *f,
				 const struct wire_result_unknown *m, uint32_t *packed);
/* 0 or MTR_EMALFORMED (stream 0, nrec 0 or above the maximum, a length
 * that is not exactly nrec records, a record with seq 0). */
int wire_result_unknown_decode(const uint8_t *p, size_t len, struct wire_result_unknown *m);
/* Record i (< nrec) of a decoded message. */
void wire_runk_rec_get(const struct wire_result_unknown *m, uint32_t i, struct wire_runk_rec *out);

/* ---- READ ------------------------------------------------------------- */

/*
 * READ payload: stream u64 (the asking proxy's stream: the answer goes to
 * the datagram's source), rid u64 (read id, non-zero, unique per stream),
 * min_instance u64 (run it once this replica has applied at least that
 * instance: 0 for consistency none), deadline_ms u32 (1..WIRE_READ_DEADLINE_MAX:
 * how long the server may spend on it, waiting for min_instance included,
 * counted from when the datagram arrives; relative, so that no clock needs
 * to agree with another host's), then one encoded item record (the read
 * statements, as proxy_item_build made them).  The answer is a RESULT
 * datagram whose record has seq 0, request = rid, instance = the applied
 * instance the read saw.  A READ of a (stream, rid) the server still holds
 * (waiting or running) is a repeat of a datagram that may have been lost:
 * the server ignores it.
 */
#define WIRE_READ_HDR_SIZE 28
#define WIRE_READ_DEADLINE_MAX 3600000u /* 1 h, proxy.read_timeout's upper bound */
struct wire_read {
	uint64_t stream, rid, min_instance;
	uint32_t deadline_ms;
	const uint8_t *item; /* decode: points into the payload */
	uint32_t item_len;
};

/* Build in buf (cap bytes); returns the datagram length or MTR_ETOOBIG. */
long wire_read_build(uint8_t *buf, size_t cap, const struct wire_from *f, const struct wire_read *m);
/* 0 or MTR_EMALFORMED (stream or rid 0, deadline_ms 0 or above
 * WIRE_READ_DEADLINE_MAX, no item bytes). The item itself is validated by
 * wire_item_decode. */
int wire_read_decode(const uint8_t *p, size_t len, struct wire_read *m);

/* ---- READS ------------------------------------------------------------ */

/*
 * READS payload: stream u64 (non-zero), then one or more records back to
 * back, each a READ without its stream: rid u64 (non-zero), min_instance
 * u64, deadline_ms u32 (1..WIRE_READ_DEADLINE_MAX), one item record (its
 * own u32 length field delimits it).  The payload ends exactly after the
 * last record.  Each record is a READ of its own to the server (answered,
 * repeated, cancelled alike).  A batch of one is sent as a READ: the same
 * payload bytes under type READ.
 */
#define WIRE_READS_REC_HDR 20 /* rid, min_instance, deadline_ms */

/* A READS (or READ) datagram being built in buf. */
struct wire_reads_pk {
	uint8_t *buf;
	size_t cap; /* datagram bytes at most (mtu) */
	size_t used; /* payload bytes so far */
	unsigned n;
};

/* Begin a batch of reads of stream in buf (cap bytes). */
void wire_reads_begin(struct wire_reads_pk *pk, uint8_t *buf, size_t cap, uint64_t stream);
/* The bytes a read with an item of item_len bytes adds to a batch. */
size_t wire_reads_rec_size(uint32_t item_len);
/* Add m (its stream ignored; m->item exactly one item record): 0, or
 * MTR_ETOOBIG (it does not fit what is left: finish the batch, begin
 * another), MTR_EINVAL (the item is not exactly one record). */
int wire_reads_add(struct wire_reads_pk *pk, const struct wire_read *m);
/* Finish the batch: a READS datagram, or a READ for a batch of one; returns
 * its length (0 for an empty batch). */
size_t wire_reads_finish(struct wire_reads_pk *pk, const struct wire_from *f);
/* Iterate a READS payload: *p starts at the payload, end is its end.  1 and
 * *m filled (m->item points into the payload; validate it with
 * wire_item_decode), 0 at the end, MTR_EMALFORMED (stream or rid 0, a
 * deadline out of range, a record cut short, an empty payload).  On the
 * first call *p must be the payload's start. */
int wire_reads_next(const uint8_t **p, const uint8_t *start, const uint8_t *end, struct wire_read *m);

/* ---- CANCEL_READ ------------------------------------------------------ */

/*
 * CANCEL_READ payload: stream u64, rid u64 (both non-zero): the proxy of
 * that stream no longer needs the READ rid (its client cancelled it or went
 * away, its deadline passed, or it was sent to another server).  A server
 * forgets the read if it still waits and interrupts it if it runs
 * (sqlite3's progress handler); no answer is sent for it.  Honoured only
 * from the address the READ came from.
 */
#define WIRE_CANCEL_READ_SIZE 16
struct wire_cancel_read {
	uint64_t stream, rid;
};
/* Build in buf (at least WIRE_CANCEL_READ_SIZE + WIRE_OVERHEAD bytes);
 * returns the length. */
size_t wire_cancel_read_build(uint8_t *buf, const struct wire_from *f, const struct wire_cancel_read *m);
/* 0 or MTR_EMALFORMED (wrong length, stream or rid 0). */
int wire_cancel_read_decode(const uint8_t *p, size_t len, struct wire_cancel_read *m);

/* ---- MEMBERSHIP ------------------------------------------------------- */

/*
 * A membership change (doc/paxos.md "Membership", doc/protocol.md
 * "MEMBERSHIP"): asked by a client of the proxy (client frame MEMBERSHIP),
 * forwarded by the proxy to the leader (datagram MEMBERSHIP, the same
 * payload), answered by the leader to the proxy and by the proxy to the
 * client.  Payload, little-endian:
 *   request: u8 kind (0), u64 token (non-zero), u8 op (WIRE_MEMBER_ADD,
 *            _PROMOTE, _REMOVE), u8 id (ADD: 0; else the server's id, < 64),
 *            u8 addr_len (ADD: 1 .. WIRE_MEMBER_ADDR_MAX, else 0), addr
 *            (IP:PORT, no NUL)
 *   answer:  u8 kind (1), u64 token (the request's), i32 status (0 or an
 *            MTR_E* code), u8 id (the server concerned: ADD's new id; < 64),
 *            u64 instance (where the configuration was chosen; 0 on an
 *            error), u16 msg_len (<= WIRE_MEMBER_MSG_MAX), msg (no NUL)
 * Pointers of a decoded message point into the payload.
 */
enum { WIRE_MEMBER_REQUEST = 0, WIRE_MEMBER_ANSWER = 1 };
enum { WIRE_MEMBER_ADD = 1, WIRE_MEMBER_PROMOTE = 2, WIRE_MEMBER_REMOVE = 3 };
#define WIRE_MEMBER_ADDR_MAX 63u
#define WIRE_MEMBER_MSG_MAX 512u
#define WIRE_MEMBER_REQ_FIXED 12u
#define WIRE_MEMBER_ANS_FIXED 24u
#define WIRE_MEMBER_MAX (WIRE_MEMBER_ANS_FIXED + WIRE_MEMBER_MSG_MAX)
struct wire_member {
	uint8_t kind;
	uint64_t token;
	uint8_t op, id;        /* id: request (PROMOTE, REMOVE) and answer */
	const char *addr;      /* request (ADD) */
	uint8_t addr_len;
	int32_t status;        /* answer */
	uint64_t instance;     /* answer */
	const char *msg;       /* answer */
	uint16_t msg_len;
};
/* Bytes of m's payload. */
size_t wire_member_size(const struct wire_member *m);
/* Write m's payload at p (wire_member_size bytes); 0, or MTR_EINVAL when m
 * breaks a rule above (nothing written). */
int wire_member_encode(uint8_t *p, const struct wire_member *m);
/* Decode a payload of len bytes: 0, MTR_ETRUNCATED or MTR_EMALFORMED. */
int wire_member_decode(const uint8_t *p, size_t len, struct wire_member *m);
/* Build the datagram in buf (at least WIRE_MEMBER_MAX + WIRE_OVERHEAD
 * bytes): its length, or MTR_EINVAL. */
long wire_member_build(uint8_t *buf, const struct wire_from *f, const struct wire_member *m);
/* The name of an op ("add"), "?" when unknown. */
const char *wire_member_op_name(unsigned op);

/* ---- STATUS ----------------------------------------------------------- */

/*
 * STATUS payload: node u32, role u8 (enum wire_role), leader u32
 * (PAXOS_BROADCAST: none known), ballot u64, chosen u64, applied u64,
 * compacted u64 (instances <= compacted are forgotten by this server),
 * origin u64 (the content the replica started from: 0 empty, else set by
 * metronomed --init-from; doc/server.md "Origin").  Sent by every server to
 * the other servers and to the proxies it knows, every status period:
 * liveness, catch-up and compaction decisions, and read routing (a session
 * read goes to a server that has applied enough).  A payload of the older
 * WIRE_STATUS_SIZE_V1 bytes (no origin) decodes with origin 0.
 *
 * Membership (doc/protocol.md "STATUS"; only once the cluster has changed
 * its configuration, so that a cluster that never did sends the 49 bytes):
 * conf u64 (the version: 2E + 1 for the configuration in force since
 * instance E, 2E while one in force from E is pending; >= 2), members u8
 * (1 .. WIRE_STATUS_MEMBERS_MAX), then per member id u8 (< 64, strictly
 * increasing), flags u8 (WIRE_MEMBER_VOTER, WIRE_MEMBER_LEAVING), ip u32,
 * port u16 (not 0).  At least one member is not leaving.
 */
#define WIRE_STATUS_SIZE 49
#define WIRE_STATUS_SIZE_V1 41
#define WIRE_STATUS_MEMBERS_MAX 32u /* a configuration in force and a pending one */
#define WIRE_STATUS_MEMBER_SIZE 8u
#define WIRE_STATUS_MAX (WIRE_STATUS_SIZE + 9 + WIRE_STATUS_MEMBERS_MAX * WIRE_STATUS_MEMBER_SIZE)
#define WIRE_MEMBER_ID_MAX 64u     /* ids are 0 .. this - 1 (PAXOS_MAX_ID) */
#define WIRE_MEMBER_VOTER 1u       /* votes in the newest configuration */
#define WIRE_MEMBER_LEAVING 2u     /* a member of the one in force only (a pending one drops it) */
/* A server's role in STATUS: the Paxos core's enum paxos_role, same numbers
 * (server.c checks that at compile time). */
enum wire_role { WIRE_ROLE_FOLLOWER = 0, WIRE_ROLE_CANDIDATE = 1, WIRE_ROLE_LEADER = 2 };

struct wire_status {
	uint32_t node;
	uint8_t role;
	uint32_t leader;
	uint64_t ballot, chosen, applied, compacted;
	uint64_t origin;
	uint64_t conf;    /* membership version; 0: none carried (the initial configuration) */
	uint8_t nmembers; /* when conf != 0 */
	struct wire_status_member {
		uint8_t id, flags;
		uint32_t ip;
		uint16_t port;
	} m[WIRE_STATUS_MEMBERS_MAX];
};
/* Build in buf (at least WIRE_STATUS_MAX + WIRE_OVERHEAD bytes); the
 * membership only when m->conf != 0 (the caller passes a valid one). */
size_t wire_status_build(uint8_t *buf, const struct wire_from *f, const struct wire_status *m);
/* 0 or MTR_EMALFORMED (length neither WIRE_STATUS_SIZE, WIRE_STATUS_SIZE_V1
 * nor that of a valid membership, role > 2, a membership against the rules
 * above).  Without one, conf and nmembers are 0. */
int wire_status_decode(const uint8_t *p, size_t len, struct wire_status *m);

/* ---- STATS ------------------------------------------------------------ */

/*
 * STATS payload: node u32, total u16 (the sender's counters in all), first
 * u16 (index of the first record below in that list), nrec u16, then nrec
 * records of name_len u8 (1..WIRE_STAT_NAME_MAX), name bytes (a-z, 0-9,
 * '_' and '.'), value u64.  Every second a server sends its counters to the
 * other servers and a proxy sends its own to every server, in as many
 * datagrams as the MTU needs; a receiver keeps the last value of each name
 * per sender (the mtr_stats table).
 */
#define WIRE_STATS_HDR_SIZE 10
#define WIRE_STAT_NAME_MAX 63

/* One counter (name not owned; decode: points into the payload, NOT
 * NUL-terminated, name_len bytes). */
struct wire_stat {
	const char *name;
	uint8_t name_len;
	uint64_t value;
};

/*
 * Build the next STATS datagram of node's counters s[0..n) in buf (mtu
 * bytes, WIRE_MIN_MTU..WIRE_MAX_DGRAM), from *idx on; *idx is advanced past
 * what was packed.  Names longer than WIRE_STAT_NAME_MAX are cut.  Returns
 * the datagram length, or 0 when *idx >= n.
 */
size_t wire_stats_build(uint8_t *buf, size_t mtu, const struct wire_from *f, uint32_t node,
			const struct wire_stat *s, size_t n, size_t *idx);

/* A list of counters to send: filled through wire_stats_list_put (a
 * stats_fn, stats.h), at most WIRE_STATS_LIST_MAX (more are ignored); the
 * names are copied (cut at WIRE_STAT_NAME_MAX). */
#define WIRE_STATS_LIST_MAX 256
struct wire_stats_list {
	struct wire_stat w[WIRE_STATS_LIST_MAX];
	char names[WIRE_STATS_LIST_MAX][WIRE_STAT_NAME_MAX + 1];
	unsigned n;
};
void wire_stats_list_put(void *list, const char *name, uint64_t value);

/* A validated STATS payload; records are read with wire_stats_next. */
struct wire_stats_msg {
	uint32_t node;
	uint16_t total, first, nrec;
	const uint8_t *p, *end; /* the next record */
};
/* 0 or MTR_EMALFORMED (short, a name empty, too long or of other bytes,
 * records that do not end exactly at the payload's end). */
int wire_stats_decode(const uint8_t *p, size_t len, struct wire_stats_msg *m);
/* The next record into *out: 1, or 0 when there is none left. */
int wire_stats_next(struct wire_stats_msg *m, struct wire_stat *out);

#endif
