/*
 * proxy_item.h - the proxy's request-to-item builder.
 *
 * A pure core (no I/O, no clock, no global state) shared by mtrproxy and the
 * embedded client: it takes one client request (an SQL text and its bound
 * values), checks it with the SQL front end (sql/sql.h), maps the bound values
 * onto SQLite's parameter numbers, turns BEGIN ... COMMIT into an item flag,
 * and encodes the result as one item record (src/proto/wire.h).  The caller supplies
 * everything that varies: stream, seq, request id, clock and seed.  The rules
 * (grouping, transaction control, parameter mapping, return codes) are in
 * doc/proxy.md.
 */
#ifndef MTR_PROXY_ITEM_H
#define MTR_PROXY_ITEM_H

#include <stddef.h>
#include <stdint.h>

#include "cproto.h"
#include "wire.h"

/*
 * What was built.  buf is a malloc'ed encoded item record (wire_item_encode
 * output) of len bytes which the caller frees with free(); NULL when there is
 * nothing to send.  flags are the WIRE_ITEM_* set on it, nstmt its statement
 * count.
 */
struct proxy_item_out {
	uint8_t *buf;
	size_t len;
	uint32_t flags;
	uint32_t nstmt;
};

/*
 * Why a request was refused.  line/col are 1-based positions in the text
 * (bytes; 0 when the error has no position, e.g. a bind to an unknown name);
 * msg is "line L, column C: <message>" or just the message.
 */
struct proxy_err {
	uint32_t line, col, off;
	char msg[256];
};

/* Positive results of proxy_item_build besides 0 (a write item was built). */
#define PROXY_ITEM_READ 1 /* only reads: route by the read consistency mode;
			     out->buf is also built, flagged WIRE_ITEM_READ,
			     for a linearizable read */
#define PROXY_ITEM_NONE 2 /* nothing to apply (BEGIN; COMMIT or a group ended
			     by ROLLBACK): answer success, send nothing */

/*
 * One request and what the caller chooses for its item.  sql is len bytes
 * (need not be NUL-terminated); binds[0..nbinds) may be NULL when nbinds is
 * 0.  stream, seq, request, client and floor (the client's id and lowest
 * unanswered request: de-duplication of resends, 0 for none), now_us (the
 * proxy's clock: timestamp_us) and seed (64 random bits) are copied into the
 * item.  Nothing is owned.
 */
struct proxy_item_in {
	const char *sql;
	size_t len;
	const struct cproto_bind *binds;
	size_t nbinds;
	uint64_t stream;
	uint64_t seq;
	uint64_t request;
	uint64_t client;
	uint64_t floor;
	int64_t now_us;
	uint64_t seed;
	struct proxy_parse_cache *cache; /* NULL: parse every time */
};

/*
 * Parses kept for requests whose text comes again (a prepared statement run
 * many times, the same-shaped batches of mtrsql's .import): a text of
 * thousands of placeholders costs the SQL parser more than the rest of the
 * item.  sql_parse() depends on the text alone, so an item built from a
 * kept parse is byte for byte the item a fresh parse gives.  Bounded:
 * PROXY_PARSE_CACHE_SLOTS texts of at most PROXY_PARSE_CACHE_MAX bytes, the
 * least recently used replaced (a parse of 128 KiB of placeholders holds
 * about 6 MB: 25 MB at most per proxy).  All zero is empty; one cache per thread
 * (no locking); proxy_parse_cache_clear frees what it holds.
 */
#define PROXY_PARSE_CACHE_SLOTS 4
#define PROXY_PARSE_CACHE_MAX (128u << 10) /* 32,766 placeholders take 98 KB */
struct sql_result;
struct proxy_parse_cache {
	struct {
		char *text;
		size_t len;
		struct sql_result *res;
		uint64_t used; /* tick of the last hit; 0: empty */
	} slot[PROXY_PARSE_CACHE_SLOTS];
	uint64_t tick;
	uint64_t hits, misses;
};
void proxy_parse_cache_clear(struct proxy_parse_cache *c);

/*
 * Build the item of the request *in.
 * Returns 0 (write item in *out), PROXY_ITEM_READ, PROXY_ITEM_NONE, or
 * MTR_ESYNTAX / MTR_EREFUSED (the parser's message and position in *err),
 * MTR_EINVAL (bind to an unknown name or index, transaction control out of
 * place, empty text; *err says which), MTR_ENOTSUP (BEGIN without COMMIT in
 * the same request), MTR_ETOOBIG, MTR_ENOMEM.  On error out->buf is NULL.
 * err may be NULL.
 */
int proxy_item_build(const struct proxy_item_in *in, struct proxy_item_out *out, struct proxy_err *err);

/*
 * A new stream id for a proxy start (invariant 1): the wall clock in seconds
 * in the high 32 bits, random bits (rnd, from the caller's getrandom) mixed
 * with the sub-second clock in the low 32.  Pure; never returns 0.
 */
uint64_t proxy_stream_id(uint64_t now_us, const uint8_t rnd[8]);

#endif
