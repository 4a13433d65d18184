/*
 * clustervt.h - the cluster in SQL: eponymous, read-only virtual tables
 * present on every replica connection (doc/apply.md, "Cluster tables").
 *
 *   mtr_members(id, address, role, alive, chosen, applied, state)  -- state: 'ok', 'disk full', NULL
 *   mtr_streams(server, stream, watermark)
 *   mtr_instances(instance, ranges, items, apply_us, steps, max_item_steps)
 *   mtr_stats(process, name, value, age_ms)  -- counters of every server and proxy
 *   mtr_digest(instance, digest)      -- computed from the database itself
 *
 * The first four come from a provider filled by the server: at each scan
 * the table asks the provider for a snapshot of its rows.
 */
#ifndef MTR_CLUSTERVT_H
#define MTR_CLUSTERVT_H

#include <sqlite3.h>

#include "wire.h"

enum clustervt_table { CLUSTERVT_MEMBERS = 0, CLUSTERVT_STREAMS = 1, CLUSTERVT_INSTANCES = 2, CLUSTERVT_STATS = 3 };

/* Receives the rows of one snapshot (opaque; lives during a fill call). */
struct clustervt_sink;

/* Append one row of n values (n must be the table's column count; values
 * are copied).  Returns 0, MTR_EINVAL or MTR_ENOMEM. */
int clustervt_sink_row(struct clustervt_sink *s, const struct wire_value *vals, unsigned n);

struct clustervt_provider {
	void *arg;
	/* Fill the rows of table t with clustervt_sink_row().  Called on the
	 * querying thread (any connection's): must be thread-safe.  Returns 0
	 * or a negative MTR_E* code (the query then fails). */
	int (*fill)(void *arg, enum clustervt_table t, struct clustervt_sink *sink);
};

/*
 * Register the module and the five tables on db.  p (may be NULL: empty
 * tables) is not owned and must outlive db.  replica_state 0: a scan of a
 * provider table fails with a message saying why (the apply connection: a
 * write must not read one replica's own state, DESIGN.md invariant 6;
 * mtr_digest, computed from the database, stays readable).  Returns 0 or
 * MTR_ESQL.
 */
int clustervt_register(sqlite3 *db, const struct clustervt_provider *p, int replica_state);

#endif
