/*
 * apply_int.h - what the parts of the apply module share (apply.h is the
 * public side).  The parts:
 *
 *   apply.c           open/close, hooks (authorizer, WAL hook, checkpointer),
 *                     replica-local errors, and the instance loop
 *                     (apply_instance: attempts, restarts, retries);
 *   apply_exec.c      running an item: the statement cache, the result
 *                     arena, binding, stepping, the item's result;
 *   apply_requests.c  resends: results kept per client in mtr_requests
 *                     (doc/apply.md "Resends");
 *   apply_read.c      readers, reads, digest, snapshot and restore.
 *
 * Everything here runs on the apply thread (one struct apply), except what
 * apply_read.c does on reader connections (each its own struct).
 */
#ifndef MTR_APPLY_INT_H
#define MTR_APPLY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "apply.h"
#include "detvfs.h"

#define DEFAULT_CACHE 128
#define DEFAULT_WAL_PAGES 1000
#define BUSY_MS 5000
/* The WAL bound, in multiples of wal_pages: the apply thread restarts the
 * WAL (a RESTART checkpoint between two instances, copying what the
 * checkpointer's passes left) once it is WAL_RESTART_X x wal_pages long, and
 * at WAL_LIMIT_X x waits for the checkpointer's running pass to do so. */
#define WAL_RESTART_X 2
#define WAL_LIMIT_X 4
/* A checkpointer pass is asked for once wal_pages / CK_STEP_DIV frames are
 * left to copy (apply.c wal_hook): a pass per commit cost two fsyncs each
 * and copied hot pages again and again (doc/performance.md). */
#define CK_STEP_DIV 4
#define DEFAULT_LOCAL_RETRIES 3
#define DEFAULT_RETRY_MS 10
#define DEFAULT_FULL_RETRY_MS 500 /* a full disk: the instance is tried again this often */

/* What one attempt at an instance ended with, besides 0 and MTR_* (< 0). */
#define ATTEMPT_FORCED 1 /* an item rolled back the transaction: restart it marked failed */
#define ATTEMPT_LOCAL 2  /* a replica-local error: roll back, retry the same attempt */
#define ATTEMPT_STOP 3   /* apply_interrupt(): roll back and give the instance up (MTR_ECLOSED) */
#define ATTEMPT_SAVEPOINTS 4 /* an item run without its savepoint failed: restart with savepoints */

/* After a restart for savepoints, this many instances take a savepoint for
 * every item (a client whose writes keep failing costs at most one extra
 * attempt per this many instances). */
#define APPLY_SP_STICKY 64

/* A cluster PRAGMA the authorizer saw while a statement was prepared:
 * a->pragma is GET or SET, a->pragma_which says which one. */
#define APPLY_PRAGMA_GET 1 /* PRAGMA X */
#define APPLY_PRAGMA_SET 2 /* PRAGMA X = V */
#define APPLY_PRAGMA_MAX_STEPS 0    /* mtr_max_steps: mtr_meta('max_steps') */
#define APPLY_PRAGMA_FOREIGN_KEYS 1 /* foreign_keys: mtr_meta('foreign_keys') */

/* ---- statement cache: hash by SQL text, LRU list ---- */

struct centry {
	char *sql;
	uint32_t len;
	uint64_t h;
	sqlite3_stmt *st;
	struct centry *hnext;
	struct centry *prev, *next; /* LRU: head.next is the most recent */
};

/* One statement result while the instance runs (offsets into the arena). */
struct sres {
	int code;
	long msg; /* arena offset of a NUL-terminated message, or -1 */
	int64_t changes, rowid;
	uint32_t ncols, nrows;
	size_t off, len;
	long names; /* offset in the name arena of ncols NUL-terminated column names, or -1 */
};

struct ires {
	int code;
	uint32_t failed;
	size_t first; /* index in sres */
	uint32_t nstmt;
	long raw;          /* a resend: arena offset of the kept result bytes, or -1 */
	uint32_t raw_len;
	long long steps;   /* VM steps the budget counted for it */
};

/*
 * One client of mtr_requests as the apply thread knows it: its floor and the
 * highest request it has kept, as committed, and as the instance being
 * applied has moved them (valid when gen is the attempt's).  The floor row
 * and the deletion of rows below it are written once per client per
 * instance (rq_finish), not per item.
 */
struct rq_client {
	uint64_t client; /* 0: a free slot */
	uint64_t floor, maxreq;
	uint64_t pfloor, pmaxreq;
	int64_t pts;
	uint64_t gen;
	int written;  /* a write of the client ran in this attempt */
	/* the results of its writes in this attempt, kept as one row by
	 * rq_finish: records (u64 request, u32 len, result bytes) */
	uint8_t *buf;
	size_t blen, bcap;
	uint64_t bfirst, blast; /* lowest and highest request in buf */
	/* the run record being extended (apply_requests.c "runs"): its
	 * offset in buf + 1 (0: none), the request that would extend it and
	 * the last rowid in it */
	size_t run_at;
	uint64_t run_next;
	int64_t run_rowid;
};

/* An item forced to fail because it rolled back the whole transaction. */
struct forced {
	size_t index;
	int code;
	char *msg;
	long long steps;
};

struct apply {
	struct apply_config cfg;
	/* Statement failures a client causes are logged at warn at most once a
	 * minute per kind (apply_user_warn_level), the others of that minute at
	 * debug: [0] over the budget, [1] a rollback that restarts the instance. */
	struct {
		int64_t next_ms;
		unsigned quiet;
	} user_warn[2];
	char *path;
	sqlite3 *db;
	uint64_t origin; /* mtr_meta('origin') at open (apply_origin) */
	struct detvfs_rng rng;
	sqlite3_stmt *set_applied;
	sqlite3_stmt *set_cursor; /* upsert mtr_cursor(stream, last) */
	uint8_t *conf;            /* apply_set_conf(): what instance conf_inst records in mtr_conf */
	size_t conf_len;
	uint64_t conf_inst;
	sqlite3_stmt *sp_begin, *sp_release, *sp_rollback; /* the item savepoint */
	sqlite3_stmt *zero_changes; /* a no-op UPDATE: sqlite3_changes() = 0 */
	sqlite3_stmt *rq_get, *rq_load, *rq_put, *rq_floor, *rq_forget, *rq_prune; /* mtr_requests */
	struct rq_client *rq; /* clients seen: a cache of mtr_requests (open addressing) */
	size_t rq_cap, rq_n;
	uint64_t rq_gen;      /* the instance attempt being applied */
	size_t *rq_touched;   /* slots of the clients it touched */
	size_t rq_ntouched, rq_tcap;
	int rq_reload;        /* rows were pruned: empty the cache after the commit */
	int user;             /* user statements are being prepared/run */
	const char *deny_msg; /* set by the authorizer when it denies */
	char deny_buf[320];   /* a deny_msg built for the occasion */
	int pragma;           /* APPLY_PRAGMA_GET/SET seen by the authorizer in the last prepare, or 0 */
	int pragma_which;     /* and which: APPLY_PRAGMA_MAX_STEPS, APPLY_PRAGMA_FOREIGN_KEYS */
	int fk_on;            /* foreign keys enforced on this connection (the apply connection's) */
	unsigned sp_all;      /* > 0: every item takes its savepoint (instances left; apply_item_needs_sp) */
	int fk_touched;       /* an item set foreign_keys: load it after the commit */
	char pragma_val[32];  /* its value (SET), "" if it did not fit */

	/*
	 * The write budget (doc/determinism.md "The write budget").  The
	 * progress handler (every APPLY_STEP_GRAIN VM steps of any statement of
	 * the connection) adds a grain to steps while counting is set, i.e.
	 * while a user statement is stepped; above max_steps it sets over and
	 * interrupts.  A stop request (apply_interrupt) interrupts too and sets
	 * stopped.  Prepared statements' VM step counters are reset before they
	 * run so that the points where the handler fires do not depend on what
	 * ran before (the statement cache, a restart); foreign is set when
	 * statements other than ours live on the connection (virtual-table
	 * modules keep some), whose counters are then reset before every item.
	 */
	long long max_steps;  /* the limit of the running item */
	long long steps;      /* steps counted for it */
	int counting, over, stopped;
	int limit_dirty;      /* mtr_meta('max_steps') may differ from max_steps: read it before the next item */
	int limit_touched;    /* the attempt wrote it: read it again if the attempt is rolled back */
	atomic_int stop_req;
	int rd_stop;          /* a reader: why its read was stopped (APPLY_READ_*), 0 while it runs */
	char rd_msg[128];     /* ... and the statement's error message then */
	int foreign;
	int schema_check;     /* the schema may have been reset: load it before a cached statement runs */
	size_t own_stmts;     /* our persistent statements (the cache aside) */
	sqlite3_stmt *head;   /* the newest statement of the connection, as last seen */
	char budget_msg[160];

	struct centry **buckets;
	unsigned nbuckets, count, cap;
	struct centry lru;

	pthread_mutex_t mu;
	pthread_cond_t cv;  /* applied advanced or closing */
	pthread_cond_t ckcv; /* checkpointer work */
	uint64_t applied, pending;
	int closing, ck_want, ck_started;
	/* The WAL bound (apply.c wal_hook): ck_running while the checkpointer
	 * copies; ck_hold asks it not to start another pass (the apply thread
	 * restarts the WAL); ck_copied the WAL frames its last pass left
	 * backfilled (0 after a restart). */
	int ck_running, ck_hold;
	unsigned ck_copied;
	unsigned wal_frames; /* the WAL's frames after the last commit (wal_hook) */
	uint64_t ck_passes;  /* passes the checkpointer finished */
	uint64_t rs_failed;  /* ck_passes + 1 when the apply thread's restart last met a reader (BUSY) */
	pthread_t ck;
	struct apply_stats st;

	uint8_t *arena;
	size_t alen, acap;
	char *narena; /* column names of the results (kept apart from the rows) */
	size_t nlen, ncap;
	struct sres *sres;
	size_t nsres, csres;
	struct ires *ires;
	size_t cires;
	struct forced *forced;
	size_t nforced;

	/* For the logs of an incident: the instance and item being run (0 and
	 * SIZE_MAX outside), errno and an excerpt of the statement of the last
	 * failing SQLite call. */
	uint64_t cur_instance;
	size_t cur_item;
	struct apply *counts; /* whose counters an incident goes to: itself, or a reader's apply */
	int err_errno;
	char err_stmt[256];
	/* A full disk (apply_disk_full): full_hit marks the attempt that met
	 * it (apply thread); full is 1 while the instance waits for space
	 * (apply_full(), any thread). */
	int full_hit;
	atomic_int full;
};


/* Parameter source: either an encode-side array or decoded bytes. */
struct psrc {
	const struct wire_value *arr;
	const uint8_t *p;
	unsigned i;
};

/* Scratch space for building an item's struct apply_result. */
struct res_scratch {
	struct apply_stmt_result *sr;
	size_t cap;
	const char **names; /* the name pointers of one item's statements */
	size_t ncap;
};

/* ---- apply.c ---- */

/* An (extended) result code as "SQLITE_IOERR_WRITE (778)" (or "code N (text)"). */
void apply_code_str(int code, char *buf, size_t n);
/* A one-line excerpt of sql[0..len) into buf (n bytes) for a log line. */
void apply_excerpt(char *buf, size_t n, const char *sql, size_t len);
/* A replica-local error (apply_local_error): log at error with the code,
 * errno and statement, count it (doc/apply.md "Replica-local errors"). */
void apply_local_incident(struct apply *a, int code, const char *msg);
/* An internal statement (sql) failed: a replica-local error is an incident
 * (ATTEMPT_LOCAL), anything else is logged at error (MTR_ESQL). */
int apply_sql_fail(struct apply *a, const char *sql);
/* Run one internal statement (no rows): 0 or apply_sql_fail's code. */
int apply_exec_sql(struct apply *a, const char *sql);
/* Step and reset one prepared control statement (savepoints): 0 or
 * apply_sql_fail's code. */
int apply_ctl(struct apply *a, sqlite3_stmt *st);
/* Roll back the open transaction, if any. */
void apply_rollback(struct apply *a);
/* DIR/replica.db, malloc'ed (NULL when out of memory). */
char *apply_db_path(const char *dir);
/* mtr_meta's value of key (0 when absent); 0 or MTR_ESQL. */
int apply_meta_get(sqlite3 *db, const char *key, uint64_t *v);
/* Busy timeout, extended codes and the cluster tables on a connection
 * (replica_state: clustervt_register); 0 or MTR_ESQL. */
int apply_conn_setup(sqlite3 *db, const struct clustervt_provider *p, int replica_state);
/* The authorizer of the apply connection (ud: its struct apply); readers
 * install it too, for the cluster PRAGMAs only (their user is 0). */
int apply_authorizer(void *ud, int action, const char *a1, const char *a2, const char *dbn, const char *trig);
/* Read mtr_meta('max_steps') into a->max_steps (the default when absent):
 * 0, ATTEMPT_LOCAL or MTR_ESQL (apply_sql_fail). */
int apply_limit_load(struct apply *a);
int apply_fk_load(struct apply *a);

/* ---- apply_exec.c ---- */

/* Room for n more bytes in the result arena; 0 or MTR_ENOMEM. */
int apply_arena_reserve(struct apply *a, size_t n);
/* Finalize every cached prepared statement. */
void apply_cache_clear(struct apply *a);
/* The progress handler of the apply connection (ud: its struct apply). */
int apply_progress(void *ud);
/* Reset the VM step counter of every statement of the connection; clears
 * a->foreign when only ours are left. */
void apply_stmts_reset(struct apply *a);
/* Run every statement of it (either form), each record's result in the
 * arena, stopping at the first failure (ir->code, ir->failed); 0 or
 * MTR_ENOMEM.  The caller sets up the item (savepoint, detvfs). */
int apply_run_stmts(struct apply *a, const struct wire_item *it, struct ires *ir);
/* Run item idx of the attempt inside its savepoint: 0, a negative code,
 * ATTEMPT_FORCED or ATTEMPT_LOCAL. */
int apply_run_item_body(struct apply *a, size_t idx, const struct wire_item *it);
/* Item ir fails without running: one statement result with code and msg.
 * 0 or MTR_ENOMEM. */
int apply_item_fail(struct apply *a, struct ires *ir, int code, const char *msg);
/* Record the last seq of every stream the items reach in mtr_cursor,
 * inside the instance's transaction. */
int apply_record_cursor(struct apply *a, const struct wire_item *items, size_t n);
/* The struct apply_result of item ir, built in x (apply_scratch_free). */
int apply_item_result(struct apply *a, const struct ires *ir, struct res_scratch *x, struct apply_result *res);
void apply_scratch_free(struct res_scratch *x);
/* Call cb once per item with its result (after COMMIT). */
int apply_deliver(struct apply *a, const struct wire_item *items, size_t n, apply_result_fn cb, void *arg);

/* ---- apply_requests.c ---- */

/* Empty the cache of mtr_requests (it is loaded again as clients come). */
void apply_rq_forget_all(struct apply *a);
/* Start an attempt at an instance of n items: room for n more clients. */
int apply_rq_begin(struct apply *a, size_t n);
/* Run item idx: a resend already applied is answered with its kept result,
 * a copy below its client's floor is dropped, else apply_run_item_body;
 * then the result is kept for a resend. */
int apply_run_item(struct apply *a, size_t idx, const struct wire_item *it);
/* Write the floors and kept results of the clients the attempt touched. */
int apply_rq_finish(struct apply *a);
/* After COMMIT: the attempt's view of the clients becomes the committed one. */
void apply_rq_committed(struct apply *a);
/* On db (a reader connection, inside a read transaction): the outcome of
 * each q[i] (apply_lookup).  0, MTR_ESQL or MTR_ENOMEM. */
int apply_rq_lookup(sqlite3 *db, struct apply_lookup *q, size_t n);
/* Forget the clients idle for APPLY_CLIENT_IDLE_US, every 4096th instance,
 * by the timestamp of its last item (deterministic). */
int apply_rq_prune(struct apply *a, uint64_t instance, const struct wire_item *items, size_t n);

/* Remove the database file path and its -wal, -shm and -journal files
 * (those that exist). */
void apply_unlink_db(const char *path);

#endif
