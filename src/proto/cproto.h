/*
 * cproto.h - the client <-> proxy protocol over TCP (doc/protocol.md,
 * "Client protocol").
 *
 * A connection carries frames in both directions:
 *
 *   u32 len (bytes after this field, 1 .. CPROTO_MAX_FRAME) | u8 type | payload
 *
 * Frame types (CPROTO_TYPE_MAP):
 *   HELLO   client -> proxy, first frame: magic, version, client id, the
 *           connection's default read consistency
 *   WELCOME proxy -> client: version, the proxy's stream id, its largest frame
 *   QUERY   client -> proxy: request id, consistency, the session's last seen
 *           instance, SQL text, bound values
 *   ANSWER  proxy -> client: request id, instance, status, error position and
 *           message, result bytes (result.h)
 *   PING / PONG: liveness, echo a token
 *   BYE     proxy -> client before closing: status and message (protocol
 *           error, shutdown)
 *   AUTH    client -> proxy, right after a HELLO with CPROTO_HELLO_AUTH: the
 *           user name and password (in the clear unless the connection is
 *           TLS); the proxy answers WELCOME once they are verified
 *   CANCEL  client -> proxy: a request id; a read of that id still running
 *           is cancelled on the servers and answered at once with SQLite's
 *           SQLITE_INTERRUPT "read cancelled"; a write (already ordered) or
 *           an answered request is not affected
 *   BACKUP  client -> proxy: a copy of the database (mtr_backup)
 *   BACKUP_PART proxy -> client: the copy's header, its bytes in parts, and
 *           its end (status and message)
 *   MEMBERSHIP client -> proxy: add a server, promote a learner, remove a
 *           server; proxy -> client: its answer (struct wire_member: the
 *           payload is the MEMBERSHIP datagram's, wire_server.h)
 *
 * Requests may be pipelined: a client may send many QUERY frames before
 * reading the ANSWERs; answers come in request order per connection.
 * Encoders append to a growable struct cproto_buf; decoders validate the
 * whole payload and never read outside it.  Pure: no I/O.
 */
#ifndef MTR_CPROTO_H
#define MTR_CPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define CPROTO_MAGIC 0x4352544Du /* bytes 'M' 'T' 'R' 'C' */
#define CPROTO_VERSION 1
#define CPROTO_MAX_FRAME (64u << 20) /* largest frame accepted by default */
#define CPROTO_DEFAULT_PORT 7400

/* Frame types: X(NAME, value, summary).  Append, never renumber. */
#define CPROTO_TYPE_MAP(X)                                                   \
	X(HELLO, 1, "client greeting: magic, version, client id, consistency") \
	X(WELCOME, 2, "proxy greeting: version, stream id, largest frame")     \
	X(QUERY, 3, "one request: SQL text and bound values")                  \
	X(ANSWER, 4, "the answer to one request")                              \
	X(PING, 5, "liveness probe, echoed")                                   \
	X(PONG, 6, "echo of a PING token")                                     \
	X(BYE, 7, "the proxy closes the connection: status and reason")        \
	X(AUTH, 8, "client credentials: user name and password") \
	X(CANCEL, 9, "client -> proxy: stop the request with this id (a read)") \
	X(BACKUP, 10, "a copy of the database, for the client's backup")       \
	X(BACKUP_PART, 11, "one part of that copy: header, bytes, or end") \
	X(MEMBERSHIP, 12, "a membership change (client -> proxy) and its answer (proxy -> client)")

enum cproto_type {
#define CPROTO__TYPE_ENUM(name, value, text) CPROTO_T_##name = value,
	CPROTO_TYPE_MAP(CPROTO__TYPE_ENUM)
#undef CPROTO__TYPE_ENUM
};

/* Name of a frame type ("QUERY"), "?" when unknown. */
const char *cproto_type_name(unsigned type);

/* Read consistency (DESIGN.md "Reads"); DEFAULT in a QUERY means the
 * connection's (from HELLO), and in HELLO means SESSION. */
enum cproto_consistency {
	CPROTO_CONS_DEFAULT = 0,
	CPROTO_CONS_NONE = 1,
	CPROTO_CONS_SESSION = 2,
	CPROTO_CONS_LINEARIZABLE = 3,
};

/* "none", "session", "linearizable" (and "default"); NULL when unknown. */
const char *cproto_consistency_name(unsigned c);
/* Parse one of those names; the value or MTR_EINVAL. */
int cproto_consistency_parse(const char *name);

/* A growable output buffer (frames are appended).  Zero-initialize; free
 * with cproto_buf_free. */
struct cproto_buf {
	uint8_t *p;
	size_t len, cap;
};
void cproto_buf_free(struct cproto_buf *b);
/* Drop the first n bytes (after they were written to the socket). */
void cproto_buf_consume(struct cproto_buf *b, size_t n);

/* HELLO payload: u32 magic, u16 version, u16 flags (CPROTO_HELLO_*; other
 * bits must be 0), u64 client id (random per client, 0: none), u8
 * consistency. */
#define CPROTO_HELLO_AUTH 0x0001u /* an AUTH frame follows the HELLO */
struct cproto_hello {
	uint16_t version;
	uint16_t flags;
	uint64_t client_id;
	uint8_t consistency;
};

/* WELCOME payload: u16 version, u64 stream (the proxy's stream id), u32
 * max_frame (largest frame it accepts). */
struct cproto_welcome {
	uint16_t version;
	uint64_t stream;
	uint32_t max_frame;
};

/*
 * One bound value.  By number when index > 0 (SQLite's numbering, as
 * sqlite3_bind_*); else by name, written with its prefix exactly as in the
 * text (":a", "@a", "$a", "?3"), NUL-terminated; the name is not owned.
 * v's TEXT/BLOB bytes are not owned either: they are copied into the
 * encoded item.
 */
struct cproto_bind {
	int index;
	const char *name;
	struct wire_value v;
};

/*
 * QUERY payload: u64 request (non-zero, increasing per connection), u8
 * consistency, u64 min_instance (the highest instance the client has seen:
 * session reads wait for it), u32 sql_len, sql bytes, u16 nbinds, then per
 * bind: i32 index (> 0: by number; 0: by name), u16 name_len, name bytes
 * (with its prefix, ":a"), u8 value type, value (INT i64, REAL 8 bytes,
 * TEXT/BLOB u32 len + bytes, NULL nothing).
 *
 * Encoding uses binds/nbinds; a decoded query instead points at the raw bind
 * bytes (bind_bytes) which cproto_query_binds() turns into cproto_binds.
 */
struct cproto_query {
	uint64_t request;
	uint8_t consistency;
	uint64_t min_instance;
	uint64_t floor;  /* the lowest request id not yet answered (<= request) */
	const char *sql; /* sql_len bytes, not NUL-terminated when decoded */
	uint32_t sql_len;
	uint16_t nbinds;
	const struct cproto_bind *binds; /* encode only */
	const uint8_t *bind_bytes;      /* decode only: validated */
	uint32_t bind_len;
};

/* Decode the binds of a decoded query into a malloc'ed array *out of
 * q->nbinds entries whose names (NUL-terminated copies) and TEXT/BLOB bytes
 * live in the same allocation: one free(*out) frees everything.  *out is
 * NULL when nbinds is 0.  0 or MTR_ENOMEM. */
int cproto_query_binds(const struct cproto_query *q, struct cproto_bind **out);

/*
 * ANSWER payload: u64 request, u64 instance (the instance the answer
 * reflects: a write's instance, or the applied instance a read saw; 0 when
 * nothing was applied), i32 status (0, or an MTR_E* code: the request was
 * refused or failed before SQLite ran it), u32 line, u32 col (1-based
 * position of a refusal in the SQL; 0 when none), u32 msg_len, msg bytes,
 * u32 result_len, result bytes (result.h; empty when status != 0).
 * A request that SQLite ran and failed has status 0 and the SQLite error in
 * its result bytes.
 */
struct cproto_answer {
	uint64_t request;
	uint64_t instance;
	int32_t status;
	uint32_t line, col;
	const char *msg; /* msg_len bytes, not NUL-terminated */
	uint32_t msg_len;
	const uint8_t *result; /* result_len bytes */
	uint32_t result_len;
};

/* AUTH payload: u16 user_len (1 .. CPROTO_MAX_USER), user bytes (no NUL,
 * no ':', no control character), u16 password_len (0 ..
 * CPROTO_MAX_PASSWORD), password bytes (no NUL).  Pointers of a decoded AUTH
 * point into the payload (not NUL-terminated). */
#define CPROTO_MAX_USER 64
#define CPROTO_MAX_PASSWORD 1024
struct cproto_auth {
	const char *user;
	uint16_t user_len;
	const char *password;
	uint16_t password_len;
};

/* BYE payload: i32 status, u32 msg_len, msg bytes. */
struct cproto_bye {
	int32_t status;
	const char *msg;
	uint32_t msg_len;
};

/* BACKUP payload: u64 min_instance (the highest instance the client has
 * seen: the copy is of an instance at least as recent). */

/*
 * BACKUP_PART payload: u8 kind, then
 *   CPROTO_PART_BEGIN: u64 instance (of the copy), u64 size (its bytes), u32
 *                      server (the one that made it)
 *   CPROTO_PART_DATA:  the next bytes of the copy (any length; the parts
 *                      add up to size)
 *   CPROTO_PART_END:   i32 status (0: the copy is complete and its
 *                      trailer checked; else an MTR_E* code), u32 msg_len,
 *                      msg bytes
 * A BACKUP is answered by BEGIN, DATA..., END, or by END alone on a failure.
 */
enum { CPROTO_PART_BEGIN = 0, CPROTO_PART_DATA = 1, CPROTO_PART_END = 2 };
struct cproto_part {
	uint8_t kind;
	uint64_t instance, size; /* BEGIN */
	uint32_t server;         /* BEGIN */
	const uint8_t *data;     /* DATA: len bytes */
	uint32_t len;
	int32_t status;          /* END */
	const char *msg;         /* END: msg_len bytes, not NUL-terminated */
	uint32_t msg_len;
};

/* Append one whole frame (length prefix included) to b.  0 or MTR_ENOMEM
 * (MTR_ETOOBIG when the frame would exceed CPROTO_MAX_FRAME). */
int cproto_put_hello(struct cproto_buf *b, const struct cproto_hello *m);
int cproto_put_welcome(struct cproto_buf *b, const struct cproto_welcome *m);
int cproto_put_query(struct cproto_buf *b, const struct cproto_query *m);
int cproto_put_answer(struct cproto_buf *b, const struct cproto_answer *m);
int cproto_put_ping(struct cproto_buf *b, enum cproto_type type, uint64_t token); /* PING or PONG */
int cproto_put_bye(struct cproto_buf *b, const struct cproto_bye *m);
/* MTR_EINVAL when a length is out of range or a byte is not allowed. */
int cproto_put_auth(struct cproto_buf *b, const struct cproto_auth *m);
/* CANCEL payload: u64 request (non-zero). */
int cproto_put_cancel(struct cproto_buf *b, uint64_t request);
int cproto_put_backup(struct cproto_buf *b, uint64_t min_instance);
int cproto_put_part(struct cproto_buf *b, const struct cproto_part *m);

/* One frame found in a byte stream. */
struct cproto_frame {
	uint8_t type;
	const uint8_t *payload; /* points into the caller's bytes */
	uint32_t len;
};

/*
 * Find the first frame in buf[0..len) (bytes read from the socket so far).
 * Returns the bytes it occupies (> 0, consume them after use), 0 when more
 * bytes are needed, or MTR_ETOOBIG (length above max_frame) / MTR_EMALFORMED
 * (length 0): the connection must be closed.
 */
long cproto_frame_next(const uint8_t *buf, size_t len, uint32_t max_frame, struct cproto_frame *f);

/* Decode a frame's payload (f->type must match).  0, MTR_ETRUNCATED,
 * MTR_EMALFORMED (bad magic, trailing bytes, bad value type, request 0, ...)
 * or MTR_EVERSION (HELLO/WELCOME of another version).  Pointers in *m point
 * into the payload. */
int cproto_get_hello(const struct cproto_frame *f, struct cproto_hello *m);
int cproto_get_welcome(const struct cproto_frame *f, struct cproto_welcome *m);
int cproto_get_query(const struct cproto_frame *f, struct cproto_query *m);
int cproto_get_answer(const struct cproto_frame *f, struct cproto_answer *m);
int cproto_get_ping(const struct cproto_frame *f, uint64_t *token); /* PING or PONG */
int cproto_get_bye(const struct cproto_frame *f, struct cproto_bye *m);
int cproto_get_auth(const struct cproto_frame *f, struct cproto_auth *m);

/* Whether n bytes at s are a valid user name (1 .. CPROTO_MAX_USER bytes,
 * none a control character, ':' or NUL): the rule of AUTH and of the
 * proxy's users file.  1 or 0. */
int cproto_user_valid(const char *s, size_t n);
int cproto_get_cancel(const struct cproto_frame *f, uint64_t *request);
int cproto_get_backup(const struct cproto_frame *f, uint64_t *min_instance);
int cproto_get_part(const struct cproto_frame *f, struct cproto_part *m); /* kind > END: MTR_EMALFORMED */

/* MEMBERSHIP: the payload of struct wire_member (wire_server.h), a request
 * or an answer (m->kind).  put: 0, MTR_EINVAL (m breaks a rule) or
 * MTR_ENOMEM; get: as wire_member_decode, pointers into the payload. */
struct wire_member;
int cproto_put_member(struct cproto_buf *b, const struct wire_member *m);
int cproto_get_member(const struct cproto_frame *f, struct wire_member *m);

#endif
