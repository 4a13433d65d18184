/*
 * localsrc.h - replica-local sources: tables and functions that a read may
 * use but a write may not, because each replica would compute something
 * else (DESIGN.md invariant 6; doc/sql.md "Refused constructs").
 *
 * One list for both lines of defence: the SQL front end (sql/build.c)
 * refuses a write, DDL or trigger body that names one, with the position;
 * a replica's apply connection (src/server/apply.c) denies them in every
 * item through its authorizer, for the names a view hides from the front end.
 */
#ifndef MTR_LOCALSRC_H
#define MTR_LOCALSRC_H

enum local_kind {
	LOCAL_CLUSTER_TABLE, /* mtr_members, ...: one replica's own state */
	LOCAL_TABLE,         /* a table or eponymous virtual table (dbstat, pragma_X) */
	LOCAL_FUNCTION,      /* a scalar function (sqlite_version(), ...) */
};

struct local_source {
	const char *name; /* lower case */
	enum local_kind kind;
	const char *why;  /* completes "... is replica-local (WHY)"; NULL for cluster tables */
};

/* The number of entries of local_sources. */
#define LOCAL_SOURCES 19
extern const struct local_source local_sources[LOCAL_SOURCES];

/* The index of NAME (any case) among the tables (function == 0: cluster
 * tables and tables) or the functions (function != 0), or -1. */
int local_source_find(const char *name, int function);

/* The refusal message for entry k into buf (what a write that reads it is
 * told, on the front end and on a replica alike). */
void local_source_msg(int k, char *buf, unsigned long size);

#endif
