/*
 * apply.h - the apply side of a replica (doc/apply.md).
 *
 * A replica database is one SQLite file, DIR/replica.db, in WAL mode.  Chosen
 * instances are applied strictly in order, each in one SQLite transaction
 * (BEGIN IMMEDIATE ... COMMIT) that also records the instance number in the
 * table mtr_meta (exactly-once, DESIGN.md invariant 5).  Each item runs in its
 * own SAVEPOINT, so a failing item rolls back alone, identically everywhere.
 * 'now' and random()/randomblob() are deterministic per item (detvfs.h).
 *
 * Threading: apply_instance(), apply_close() on one thread (the apply
 * thread).  apply_wait(), apply_applied(), apply_digest(), apply_snapshot()
 * and apply_open_reader() may be called from any thread; they use their own
 * connections.  A checkpointer thread owned by the struct apply keeps the WAL
 * bounded.
 */
#ifndef MTR_APPLY_H
#define MTR_APPLY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "clusterconf.h"
#include "clustervt.h"
#include "digest.h"
#include "result.h"
#include "stats.h"
#include "wire.h"

/* The file name of the replica database inside the data directory. */
#define APPLY_DB_NAME CLUSTERCONF_REPLICA_DB
/* Version of the replica's own tables (mtr_meta, mtr_cursor, mtr_requests),
 * stored as mtr_meta('schema_version').  2 added mtr_requests; a version 1
 * database is brought to 2 when it is opened. */
#define APPLY_SCHEMA_VERSION 2
/* A client that sent no write for this long (by the items' timestamps) is
 * forgotten by the de-duplication of resends (doc/apply.md "Resends").  A
 * cluster-wide constant: every replica must forget alike. */
#define APPLY_CLIENT_IDLE_US (24LL * 3600 * 1000000)
/* Results larger than this are not kept for a resend; a resend of such a
 * write is answered with an error saying so. */
#define APPLY_KEEP_RESULT_MAX (1u << 20)

/*
 * The write budget (doc/apply.md "The write budget", doc/determinism.md):
 * an item may run at most mtr_max_steps SQLite VM steps, counted on the
 * apply connection in grains of APPLY_STEP_GRAIN through
 * sqlite3_progress_handler; above it its statement fails with
 * SQLITE_INTERRUPT and APPLY_BUDGET_MSG on every replica.  The limit is
 * cluster state, set by the ordered item PRAGMA mtr_max_steps = N and kept
 * in mtr_meta('max_steps'); absent, it is APPLY_MAX_STEPS_DEFAULT (a
 * compile-time constant for that reason, like APPLY_CLIENT_IDLE_US).
 */
#define APPLY_STEP_GRAIN 1000
#define APPLY_MAX_STEPS_DEFAULT 100000000LL
#define APPLY_MAX_STEPS_MIN 1000LL
#define APPLY_MAX_STEPS_MAX 1000000000000000LL
/* printf format of the error, with the limit */
#define APPLY_BUDGET_MSG "statement exceeded mtr_max_steps (%lld VM steps): split it or raise the limit (PRAGMA mtr_max_steps = N)"

enum apply_durability {
	APPLY_SYNC_NORMAL = 0, /* synchronous=NORMAL: a commit may be lost at a power cut, never torn */
	APPLY_SYNC_FULL = 1,   /* synchronous=FULL: the WAL is synced at every commit */
};

struct apply_config {
	const char *dir;              /* data directory (must exist); not owned */
	enum apply_durability durability;
	unsigned stmt_cache;          /* prepared statements kept (LRU); 0: 128 */
	unsigned wal_pages;           /* checkpoint when the WAL exceeds this; 0: 1000 */
	const struct clustervt_provider *provider; /* cluster tables; may be NULL; not owned */
	/* A replica-local error (apply_local_error) rolls the instance back and
	 * retries it this many times, after retry_ms, 10 x retry_ms, ... ;
	 * then apply_instance() returns MTR_EIO (doc/apply.md).  0: 3 and 10 ms. */
	unsigned local_retries;
	unsigned retry_ms;
	/* A full disk (apply_disk_full) is not counted against local_retries:
	 * the instance is rolled back and tried again every full_retry_ms for
	 * as long as it takes (apply_full() says so meanwhile).  0: 500 ms. */
	unsigned full_retry_ms;
};

/* Called once per item, in item order, after the instance has committed. */
typedef void (*apply_result_fn)(void *arg, size_t index, const struct wire_item *item,
				const struct apply_result *res);

struct apply;

/* Counters (monotonic since open): X(member, meaning). */
#define APPLY_STATS_MAP(X)                                                    \
	X(instances, "instances applied")                                     \
	X(items, "items applied")                                             \
	X(items_failed, "items whose statement failed (rolled back alone)")   \
	X(cache_hits, "prepared statements found in the cache")               \
	X(cache_misses, "statements prepared")                                \
	X(checkpoints, "checkpoints run by the checkpointer thread")          \
	X(wal_restarts, "WAL restarts: RESTART checkpoints run by the apply thread between two instances") \
	X(resends, "writes found applied already: kept result answered")     \
	X(local_errors, "replica-local errors (I/O, full, ...) in apply or a read: incidents") \
	X(local_retries, "instance attempts rolled back and retried after one") \
	X(disk_full, "instance attempts rolled back because the disk is full (retried until there is space)") \
	X(restarts, "instance attempts restarted: an item rolled back the transaction") \
	X(sp_restarts, "instance attempts restarted because an item run without its savepoint failed") \
	X(budget_exceeded, "items that failed because they exceeded mtr_max_steps (VM steps)")

struct apply_stats {
	APPLY_STATS_MAP(STATS_FIELD)
};

/*
 * Whether an SQLite (extended) result code describes this replica's
 * environment rather than the statement and the logical database:
 * SQLITE_IOERR (every extended code), SQLITE_FULL, SQLITE_CANTOPEN,
 * SQLITE_NOTADB, SQLITE_NOMEM, SQLITE_BUSY, SQLITE_PROTOCOL, and
 * SQLITE_CORRUPT except CORRUPT_VTAB / CORRUPT_SEQUENCE (which follow from
 * table contents).  Such an error is never an item's result (doc/apply.md
 * "Replica-local errors").
 */
int apply_local_error(int code);

/*
 * Whether a replica-local error means the disk is full: SQLITE_FULL, or an
 * I/O error whose errno (sqlite3_system_errno) is ENOSPC or EDQUOT (SQLite
 * reports a write that hit a quota as SQLITE_IOERR_WRITE).  Such an attempt
 * is rolled back and retried until there is space (doc/apply.md "A full
 * disk").
 */
int apply_disk_full(int code, int sys_errno);

/* 1 while the apply thread waits for space: the instance it applies was
 * rolled back on a full disk and is tried again every cfg.full_retry_ms;
 * 0 again after it committed (any thread). */
int apply_full(struct apply *a);

/*
 * Open (or create) the replica database of cfg->dir and start its
 * checkpointer.  *out is owned by the caller: apply_close() frees it.
 * Returns 0, MTR_EINVAL, MTR_ENOMEM, MTR_EIO (cannot open) or MTR_ESQL.
 */
int apply_open(const struct apply_config *cfg, struct apply **out);

/* Stop the checkpointer, wake waiters with MTR_ECLOSED, close.  NULL is ok. */
void apply_close(struct apply *a);

/*
 * on = 1: the instance being applied (or the next one) is abandoned at the
 * next VM step grain or item: rolled back, nothing recorded, no result, and
 * apply_instance() returns MTR_ECLOSED until on = 0.  For a server that
 * stops while a long item runs (SIGTERM); a restart applies the instance
 * again.  Any thread; a->db is not touched.
 */
void apply_interrupt(struct apply *a, int on);

/* The VM steps the budget counted for item index of the last instance
 * apply_instance() applied (multiples of APPLY_STEP_GRAIN; identical on
 * every replica; 0 for a resend answered from mtr_requests). */
long long apply_item_steps(struct apply *a, size_t index);

/* The write budget (VM steps) the next item gets: mtr_max_steps as applied
 * (apply thread). */
long long apply_max_steps(struct apply *a);

/* The last applied instance (0: none). */
uint64_t apply_applied(struct apply *a);

/*
 * Apply instance with its n items (decoded: body set, stmts NULL; or to be
 * encoded: stmts set) in one transaction.  Returns 0 and calls cb (may be
 * NULL) once per item after COMMIT; MTR_EDUPLICATE when instance <= the
 * applied one (nothing done, no callback); MTR_EINVAL when it is not the next
 * one; MTR_EIO / MTR_ESQL when the transaction could not commit (rolled back,
 * nothing recorded, no callback).  A replica-local error is retried
 * (cfg.local_retries) before MTR_EIO: the caller must stop applying then.
 * A full disk is retried for as long as it lasts (apply_full()).
 * MTR_ECLOSED: apply_interrupt() abandoned it (rolled back, nothing
 * recorded, no callback).
 */
int apply_instance(struct apply *a, uint64_t instance, const struct wire_item *items, size_t n,
		   apply_result_fn cb, void *arg);

/*
 * The per-stream cursor of the applied state: for every stream whose items
 * were applied, the highest seq applied (table mtr_cursor, written in the
 * same transaction as the instance, so it always matches apply_applied()).
 * Calls fn(arg, stream, last) per stream in increasing stream order; a
 * non-zero return of fn stops and is returned.  Call it from the apply thread
 * (or before that thread starts: it uses the apply connection).  0, MTR_ESQL
 * or fn's code.
 */
int apply_cursor(struct apply *a, int (*fn)(void *arg, uint64_t stream, uint64_t last), void *arg);

/*
 * Membership (doc/paxos.md, "Membership"): the next apply_instance() of
 * `instance` also records that the instance chose this configuration, in
 * table mtr_conf(inst, conf) in the same transaction (so a restart or a
 * snapshot of the database knows it with the applied instance).  conf is
 * the encoding of a batch without ranges carrying the configuration
 * (batch_encode); it is copied.  0, MTR_EINVAL or MTR_ENOMEM.
 */
int apply_set_conf(struct apply *a, uint64_t instance, const uint8_t *conf, size_t len);

/* Every recorded configuration, in instance order: fn(arg, inst, conf,
 * len) with conf as given to apply_set_conf (valid during the call); a
 * non-zero return of fn stops and is returned.  Same thread rules as
 * apply_cursor().  0, MTR_ESQL or fn's code. */
int apply_confs(struct apply *a, int (*fn)(void *arg, uint64_t inst, const uint8_t *conf, size_t len), void *arg);

/* Block until instance has been applied, for at most timeout_ms (< 0:
 * forever).  0, MTR_ETIMEDOUT or MTR_ECLOSED. */
int apply_wait(struct apply *a, uint64_t instance, int timeout_ms);

/*
 * Why a read stops before its end: the values of a reader's cancel flag
 * (set by another thread: the server's network thread for a CANCEL_READ,
 * the stop for SIGTERM) and APPLY_READ_DEADLINE for a deadline that passed.
 */
enum { APPLY_READ_CANCELLED = 1, APPLY_READ_STOPPING = 2, APPLY_READ_DEADLINE = 3, APPLY_READ_LONG = 4 };

/*
 * A read's wait for its instance: as apply_wait, until deadline_ns
 * (monotonic, now_mono_ns(); 0: none) at the latest, and ending early when
 * *cancel (may be NULL) is non-zero or apply_interrupt(a, 1) was called:
 * 0, MTR_ETIMEDOUT (the deadline), MTR_ECLOSED (closing, stopping) or
 * MTR_EABORT (*cancel).  Who sets *cancel calls apply_wake() after it.
 */
int apply_wait_read(struct apply *a, uint64_t instance, uint64_t deadline_ns, const atomic_int *cancel);

/* Wake every apply_wait_read() so that it looks at its flag again.  Any thread. */
void apply_wake(struct apply *a);

/* Digest of the database and the instance it is at (one read transaction). */
int apply_digest(struct apply *a, uint64_t *instance, struct digest *d);

/*
 * A read-only connection on the replica file with the same VFS, functions
 * and cluster tables.  The caller closes it with sqlite3_close().
 */
int apply_open_reader(struct apply *a, sqlite3 **out);

/*
 * Reads (READ datagrams): a reader runs the statements of a read item on its
 * own read-only connection (apply_open_reader) with the same statement code
 * as apply_instance, inside one read transaction, and reports them as one
 * struct apply_result.  One thread at a time per reader.
 */
struct apply_reader;

/* Open a reader on a's database; *out is freed with apply_reader_close().
 * 0, MTR_ENOMEM, MTR_EIO or MTR_ESQL. */
int apply_reader_open(struct apply *a, struct apply_reader **out);

/* Close the reader's connection and free it; NULL is fine. */
void apply_reader_close(struct apply_reader *r);

/*
 * Run the statements of item (decoded or to-encode, like apply_instance) in
 * one read transaction; *instance is the applied instance that transaction
 * saw.  Writes fail with SQLITE_READONLY in the result.  cb (may be NULL) is
 * called once, with index 0.  0, MTR_ESQL (no transaction) or MTR_ENOMEM.
 */
int apply_read(struct apply_reader *r, const struct wire_item *item, uint64_t *instance, apply_result_fn cb,
	       void *arg);

/*
 * Results looked up again (RESULT_REQUEST of a result no longer in the
 * server's cache, doc/apply.md "Looking a result up"): per item (stream,
 * seq) with its ids (client, request), whether this replica has applied it
 * (mtr_cursor: the stream's last applied seq is at or above seq) and, if
 * so, the result kept for (client, request) in mtr_requests.
 */
enum apply_lookup_state {
	APPLY_LOOKUP_UNAPPLIED = 0, /* not applied here (yet): no answer */
	APPLY_LOOKUP_FOUND = 1,     /* applied; bytes hold its result */
	APPLY_LOOKUP_LOST = 2,      /* applied; no result kept (client 0, below its floor, pruned) */
};
struct apply_lookup {
	uint64_t stream, seq, client, request; /* in */
	int state;                              /* out: enum apply_lookup_state */
	uint8_t *bytes;                         /* out (FOUND): malloc'ed result bytes, the caller frees */
	uint32_t len;
};

/* On a reader (apply_reader_open), in one read transaction: fill the
 * outcome of q[0..n); *instance is the applied instance that transaction
 * saw (at or above the instance of every FOUND or LOST item).  0,
 * MTR_ESQL or MTR_ENOMEM (then nothing is FOUND: no bytes to free). */
int apply_lookup(struct apply_reader *r, struct apply_lookup *q, size_t n, uint64_t *instance);

/*
 * The limits of the reader's next apply_read() calls: a progress handler
 * (every APPLY_READ_GRAIN VM steps) stops the statement with
 * SQLITE_INTERRUPT once deadline_ns (monotonic; 0: none; deadline_ms is the
 * figure the message gives) has passed or *cancel (may be NULL; owned by
 * the caller, it must outlive the read) is non-zero; the statement's error
 * then says why ("read cancelled", "read exceeded its deadline of N ms",
 * "the server is stopping").  Reads have no step budget: they change
 * nothing, so wall time is the right measure for them.
 */
#define APPLY_READ_GRAIN 1000
void apply_reader_limits(struct apply_reader *r, uint64_t deadline_ns, uint32_t deadline_ms,
			 const atomic_int *cancel);

/*
 * Make r a quick reader for good: apply_read() stops a read at the first
 * grain of VM steps (APPLY_READ_GRAIN) that ends after budget_ns of its
 * statements' time, or when it would wait for a lock (no busy timeout),
 * with APPLY_READ_LONG from apply_reader_stopped(), and then delivers
 * nothing (the caller runs the read again on an ordinary reader: reads
 * change nothing).  For a thread that must not be held (the server's
 * network thread answering short reads itself, doc/server.md "Reads").
 */
void apply_reader_quick(struct apply_reader *r, uint64_t budget_ns);

/* Why the last apply_read() was stopped early (APPLY_READ_*), 0 when it was not. */
int apply_reader_stopped(const struct apply_reader *r);

/* Write a consistent copy of the database to path (replaced if present; a
 * single file, rollback-journal mode) and the instance it holds.  0,
 * MTR_ENOSPACE (the disk is full), MTR_EIO or MTR_ESQL. */
int apply_snapshot(struct apply *a, const char *path, uint64_t *instance);

/*
 * Install the snapshot at path as the replica database of dir (no apply
 * open on it).  Afterwards apply_open() resumes at the snapshot's instance.
 * The copy is written beside the replica and renamed over it once whole, so
 * a failure leaves the replica as it was.  Returns 0, MTR_ENOSPACE (the
 * disk is full), MTR_EIO, MTR_ESQL or MTR_EINVAL (not a replica snapshot).
 */
int apply_restore(const char *dir, const char *path);

/*
 * Create the replica database of dir from the SQLite file from (metronomed
 * --init-from; doc/backup.md "Restore"): checked with PRAGMA
 * integrity_check, copied with the backup API (bounded memory), the
 * replica's own tables of a Metronome backup dropped except the cluster
 * settings in mtr_meta, applied instance 0, and recorded in mtr_meta:
 * restored_from (the file's real path), restored_instance (the instance of
 * a Metronome backup, else 0), restored_digest (digest_db_user, hex) and
 * origin (*origin: 64 bits of that digest, never 0).  Call before
 * apply_open() on dir.  Returns 0; MTR_EEXIST when dir already holds a
 * replica (replica.db or paxos/log); MTR_EINVAL (file not a database, fails
 * integrity_check, has tables named mtr_*), MTR_EIO, MTR_ESQL, MTR_ENOMEM:
 * with one sentence in err saying what to do.
 */
int apply_init_from(const char *dir, const char *from, uint64_t *origin, char *err, size_t errlen);

/* The origin of a replica that waits for its content from a peer
 * (metronomed --init-from-peer): it matches no other origin. */
#define APPLY_ORIGIN_PENDING UINT64_MAX

/*
 * Create an empty replica of dir whose origin is APPLY_ORIGIN_PENDING
 * (metronomed --init-from-peer): the server takes part in nothing until it
 * has installed a snapshot from a peer that has content.  Refused like
 * apply_init_from (MTR_EEXIST) when dir holds a replica.  0 or an MTR_E*
 * code with the sentence in err.
 */
int apply_init_pending(const char *dir, char *err, size_t errlen);

/*
 * The origin of the replica's content, mtr_meta('origin') as opened: 0 for
 * a cluster that started empty, else set by apply_init_from() and carried
 * by snapshots.  Servers of one cluster must agree on it (doc/server.md
 * "Origin").
 */
uint64_t apply_origin(struct apply *a);

/* Counters. */
void apply_stats(struct apply *a, struct apply_stats *st);

/*
 * Drop every object of the temp schema of db.  A client session's TEMP VIEW
 * and TEMP TRIGGER definitions travel in front of the requests that use them
 * and live for that one item (WIRE_ITEM_TEMP, doc/sql.md): apply_instance()
 * calls this before the item's RELEASE.  0 or MTR_ESQL (logged).
 */
int apply_drop_temp(sqlite3 *db);

#endif
