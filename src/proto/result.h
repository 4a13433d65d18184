/*
 * result.h - the result of one item (or one read) as bytes.
 *
 * One format end to end: a replica encodes the struct apply_result of an item
 * with result_encode() and sends the bytes to the proxy in RESULT datagrams
 * (wire_server.h); the proxy passes the same bytes to its client in an
 * ANSWER frame (cproto.h); the client library decodes them with
 * result_decode().  doc/protocol.md ("Result bytes") gives the layout:
 *
 *   i32 code | u32 failed | u32 nstmt | nstmt x statement
 *   statement: i32 code | i64 changes | i64 last_rowid | u32 errmsg_len |
 *              errmsg bytes | u32 ncols | ncols x (u16 len, name bytes) |
 *              u32 nrows | u32 rows_len | rows
 *
 * (column names are empty strings when the apply result had none)
 *
 * rows are in the row format of doc/apply.md (per row: u16 ncols, then per
 * value u8 type and its bytes).  Little-endian.  Pure: no I/O.
 */
#ifndef MTR_RESULT_H
#define MTR_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* The outcome of one statement record of an item.  Valid only during the
 * result callback (apply.h). */
struct apply_stmt_result {
	int code;            /* SQLite extended result code: SQLITE_OK or the error */
	const char *errmsg;  /* NULL when code == SQLITE_OK */
	int64_t changes;     /* sqlite3_changes64() after the record */
	int64_t last_rowid;  /* sqlite3_last_insert_rowid() after the record */
	uint32_t ncols;      /* columns of the result rows (0: none) */
	const char *const *names; /* ncols column names (sqlite3_column_name), or NULL */
	uint32_t nrows;      /* rows returned (RETURNING, SELECT) */
	const uint8_t *rows; /* nrows rows in the row format of doc/apply.md */
	size_t rows_len;
};

/* The outcome of one item.  Valid only during the result callback. */
struct apply_result {
	int code;              /* SQLITE_OK, or the code of the failing statement */
	uint32_t failed;       /* index of the failing statement (when code != 0) */
	uint32_t nstmt;        /* statements executed (results below) */
	const struct apply_stmt_result *stmts;
	/* A resent write found already applied (doc/apply.md "Resends"): its
	 * result bytes as first encoded (result.h), stmts unused; NULL else. */
	const uint8_t *raw;
	size_t raw_len;
};

/* The largest result a server sends: an ANSWER frame must carry it
 * (CPROTO_MAX_FRAME, 64 MiB).  A larger one is replaced by an error saying
 * so (SQLITE_TOOBIG). */
#define RESULT_MAX_BYTES ((size_t)63 << 20)

/* Bytes result_encode() writes for r. */
size_t result_size(const struct apply_result *r);

/* Encode r into buf (cap bytes).  Returns the bytes written or MTR_ETOOBIG
 * when cap is too small. */
long result_encode(const struct apply_result *r, uint8_t *buf, size_t cap);

/* SQLite's SQLITE_INTERRUPT (the value sqlite3.h gives it; the proxy and
 * the client do not include sqlite3.h): the code of a read that was
 * stopped before its end (cancelled, past its deadline, server stopping). */
#define RESULT_SQLITE_INTERRUPT 9

/* A result that is only an error: code (SQLite extended code) and msg,
 * one failing statement, whose storage the caller gives in *s. */
struct apply_result result_error(int code, const char *msg, struct apply_stmt_result *s);

/* Encode a result that is only an error (no statement ran): code is the
 * SQLite extended code, msg the message (NUL-terminated).  Same layout with
 * nstmt 1 and that one statement failing.  Returns bytes or MTR_ETOOBIG. */
long result_encode_error(int code, const char *msg, uint8_t *buf, size_t cap);

/* One decoded statement; pointers point into the decoded bytes. */
struct result_stmt {
	int code;
	int64_t changes;
	int64_t last_rowid;
	const char *errmsg; /* errmsg_len bytes, NOT NUL-terminated; NULL when 0 */
	uint32_t errmsg_len;
	uint32_t ncols, nrows;
	const uint8_t *names; /* ncols x (u16 len, bytes): read with result_name_next */
	const uint8_t *rows;  /* rows_len bytes, validated row format */
	uint32_t rows_len;
};

/* A validated result; iterate its statements with result_next(). */
struct result_view {
	int code;        /* the item's code (SQLITE_OK or the failing statement's) */
	uint32_t failed; /* index of the failing statement when code != 0 */
	uint32_t nstmt;
	const uint8_t *p, *end; /* statements not yet read */
};

/* Validate all of buf[0..len) (every statement, every row and value, no
 * trailing bytes) and fill *v.  0, MTR_ETRUNCATED or MTR_EMALFORMED. */
int result_decode(const uint8_t *buf, size_t len, struct result_view *v);

/* The next statement of a validated view: 1, or 0 at the end. */
int result_next(struct result_view *v, struct result_stmt *s);

/* The next column name of a validated statement: *p starts at s->names;
 * returns a pointer to the name's bytes (not NUL-terminated) and its length
 * in *len, and advances *p.  Call at most ncols times. */
const char *result_name_next(const uint8_t **p, uint16_t *len);

/* Iterate the rows of a validated statement: *p starts at s->rows, end is
 * s->rows + s->rows_len.  Fills vals[0..ncols) (TEXT/BLOB point into the
 * rows; at most max values are stored, the rest skipped) and returns the
 * row's column count, or 0 at the end. */
unsigned result_row_next(const uint8_t **p, const uint8_t *end, struct wire_value *vals, unsigned max);

#endif
