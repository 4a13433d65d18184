/*
 * apply.c - apply chosen instances to the replica's SQLite database.
 *
 * One instance = one transaction: BEGIN IMMEDIATE, per item SAVEPOINT /
 * statements / RELEASE (or ROLLBACK TO on error), UPDATE mtr_meta with the
 * instance, COMMIT.  Results are collected in an arena during the transaction
 * and handed to the callback only after COMMIT (invariant 7: nothing is
 * reported that is not durable in the order).
 *
 * The authorizer (sqlite3_set_authorizer) runs while user statements are
 * prepared: it denies transaction control (BEGIN, COMMIT, ROLLBACK),
 * savepoints named mtr_*, ATTACH/DETACH and writes to mtr_meta, so such an item
 * fails alone with SQLITE_AUTH and a fixed message.  A user's own savepoints
 * nest inside the item's (names mtr_* are reserved).  A statement that rolls
 * back the whole transaction anyway (INSERT OR ROLLBACK, RAISE(ROLLBACK) in a
 * trigger) is detected (the connection is back in autocommit): the instance
 * is restarted with that item marked failed, which every replica does alike.
 *
 * A replica-local error (apply_local_error: I/O, disk full, out of memory,
 * ...) depends on this replica, not on the items: it is never an item's
 * result.  It is logged at error with its extended code, errno and
 * statement, counted, and the whole attempt is rolled back and retried
 * (cfg.local_retries, growing delays); if it persists apply_instance returns
 * MTR_EIO and the server stops rather than let this replica diverge.
 *
 * The WAL hook runs after every commit on the apply connection: it publishes
 * the applied instance to apply_wait() and asks the checkpointer thread (own
 * connection) for a PASSIVE checkpoint when the WAL exceeds wal_pages; above
 * 4 x wal_pages the apply thread checkpoints itself (back-pressure).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "apply.h"
#include "detvfs.h"
#include "log.h"
#include "metronome.h"
#include "result.h"
#include "util.h"

#define DEFAULT_CACHE 128
#define DEFAULT_WAL_PAGES 1000
#define BUSY_MS 5000
#define DEFAULT_LOCAL_RETRIES 3
#define DEFAULT_RETRY_MS 10

/* What one attempt at an instance ended with, besides 0 and MTR_* (< 0). */
#define ATTEMPT_FORCED 1 /* an item rolled back the transaction: restart it marked failed */
#define ATTEMPT_LOCAL 2  /* a replica-local error: roll back, retry the same attempt */

static const char deny_txn_msg[] = "transaction control (BEGIN, COMMIT, END, ROLLBACK) is not allowed inside an item";
static const char deny_sp_msg[] = "savepoint names beginning with mtr_ are reserved by the replica";
static const char deny_attach_msg[] = "ATTACH and DETACH are not allowed in replicated statements";
/* The replica's own tables: items may read them, not write them. */
static const struct {
	const char *name, *msg;
} replica_tables[] = {
	{"mtr_meta", "mtr_meta is maintained by the replica and cannot be modified"},
	{"mtr_cursor", "mtr_cursor is maintained by the replica and cannot be modified"},
	{"mtr_requests", "mtr_requests is maintained by the replica and cannot be modified"},
};

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
};

/* An item forced to fail because it rolled back the whole transaction. */
struct forced {
	size_t index;
	int code;
	char *msg;
};

struct apply {
	struct apply_config cfg;
	char *path;
	sqlite3 *db;
	struct detvfs_rng rng;
	sqlite3_stmt *set_applied;
	sqlite3_stmt *set_cursor; /* upsert mtr_cursor(stream, last) */
	sqlite3_stmt *sp_begin, *sp_release, *sp_rollback; /* the item savepoint */
	sqlite3_stmt *rq_get, *rq_load, *rq_put, *rq_floor, *rq_forget, *rq_prune; /* mtr_requests */
	struct rq_client *rq; /* clients seen: a cache of mtr_requests (open addressing) */
	size_t rq_cap, rq_n;
	uint64_t rq_gen;      /* the instance attempt being applied */
	size_t *rq_touched;   /* slots of the clients it touched */
	size_t rq_ntouched, rq_tcap;
	int rq_reload;        /* rows were pruned: empty the cache after the commit */
	int user;             /* user statements are being prepared/run */
	const char *deny_msg; /* set by the authorizer when it denies */

	struct centry **buckets;
	unsigned nbuckets, count, cap;
	struct centry lru;

	pthread_mutex_t mu;
	pthread_cond_t cv;  /* applied advanced or closing */
	pthread_cond_t ckcv; /* checkpointer work */
	uint64_t applied, pending;
	int closing, ck_want, ck_started;
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
};

/* Empty the apply thread's cache of mtr_requests (rq_client): it is
 * loaded again from the table as clients come. */
static void rq_forget_all(struct apply *a)
{
	for (size_t k = 0; k < a->rq_cap; k++)
		free(a->rq[k].buf);
	if (a->rq)
		memset(a->rq, 0, a->rq_cap * sizeof *a->rq);
	a->rq_n = 0;
}

/* ---- arena ---- */

static int arena_reserve(struct apply *a, size_t n)
{
	if (a->alen + n <= a->acap)
		return 0;
	size_t c = a->acap ? a->acap : 4096;
	while (c < a->alen + n)
		c *= 2;
	uint8_t *p = realloc(a->arena, c);
	if (p == NULL)
		return MTR_ENOMEM;
	a->arena = p;
	a->acap = c;
	return 0;
}

static long arena_str(struct apply *a, const char *s)
{
	size_t n = strlen(s) + 1;
	if (arena_reserve(a, n) != 0)
		return -1;
	memcpy(a->arena + a->alen, s, n);
	a->alen += n;
	return (long)(a->alen - n);
}

/* Append the current row of s in the row format (doc/apply.md). */
static int arena_row(struct apply *a, sqlite3_stmt *s)
{
	int n = sqlite3_column_count(s);
	if (arena_reserve(a, 2) != 0)
		return MTR_ENOMEM;
	st16(a->arena + a->alen, (uint16_t)n);
	a->alen += 2;
	for (int i = 0; i < n; i++) {
		struct wire_value v = {.type = WIRE_V_NULL};
		switch (sqlite3_column_type(s, i)) {
		case SQLITE_INTEGER:
			v.type = WIRE_V_INT;
			v.u.i = sqlite3_column_int64(s, i);
			break;
		case SQLITE_FLOAT:
			v.type = WIRE_V_REAL;
			v.u.r = sqlite3_column_double(s, i);
			break;
		case SQLITE_TEXT:
			v.type = WIRE_V_TEXT;
			v.u.b.p = sqlite3_column_text(s, i);
			v.u.b.n = (uint32_t)sqlite3_column_bytes(s, i);
			break;
		case SQLITE_BLOB:
			v.type = WIRE_V_BLOB;
			v.u.b.p = sqlite3_column_blob(s, i);
			v.u.b.n = (uint32_t)sqlite3_column_bytes(s, i);
			break;
		}
		if (arena_reserve(a, wire_value_size(&v)) != 0)
			return MTR_ENOMEM;
		a->alen = (size_t)(wire_value_put(a->arena + a->alen, &v) - a->arena);
	}
	return 0;
}

static struct sres *sres_new(struct apply *a)
{
	if (a->nsres == a->csres) {
		size_t c = a->csres ? a->csres * 2 : 64;
		struct sres *p = realloc(a->sres, c * sizeof *p);
		if (p == NULL)
			return NULL;
		a->sres = p;
		a->csres = c;
	}
	struct sres *r = &a->sres[a->nsres++];
	memset(r, 0, sizeof *r);
	r->msg = -1;
	r->names = -1;
	r->off = a->alen;
	return r;
}

/* ---- statement cache ---- */

static void lru_unlink(struct centry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_front(struct apply *a, struct centry *e)
{
	e->next = a->lru.next;
	e->prev = &a->lru;
	a->lru.next->prev = e;
	a->lru.next = e;
}

static struct centry *cache_find(struct apply *a, const char *sql, uint32_t len, uint64_t h)
{
	for (struct centry *e = a->buckets[h & (a->nbuckets - 1)]; e; e = e->hnext)
		if (e->h == h && e->len == len && memcmp(e->sql, sql, len) == 0)
			return e;
	return NULL;
}

static void cache_remove(struct apply *a, struct centry *e)
{
	struct centry **pp = &a->buckets[e->h & (a->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	sqlite3_finalize(e->st);
	free(e->sql);
	free(e);
	a->count--;
}

/* Insert (takes st; finalizes it on failure). */
static void cache_put(struct apply *a, const char *sql, uint32_t len, uint64_t h, sqlite3_stmt *st)
{
	struct centry *e = calloc(1, sizeof *e);
	char *copy = malloc(len ? len : 1);
	if (e == NULL || copy == NULL) {
		free(e);
		free(copy);
		sqlite3_finalize(st);
		return;
	}
	memcpy(copy, sql, len);
	e->sql = copy;
	e->len = len;
	e->h = h;
	e->st = st;
	if (a->count >= a->cap)
		cache_remove(a, a->lru.prev);
	e->hnext = a->buckets[h & (a->nbuckets - 1)];
	a->buckets[h & (a->nbuckets - 1)] = e;
	lru_front(a, e);
	a->count++;
}

static void cache_clear(struct apply *a)
{
	while (a->count > 0)
		cache_remove(a, a->lru.prev);
}

/* ---- errors ---- */

int apply_local_error(int code)
{
	switch (code & 0xff) {
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_NOTADB:
	case SQLITE_NOMEM:
	case SQLITE_BUSY:
	case SQLITE_PROTOCOL:
		return 1;
	case SQLITE_CORRUPT:
		/* the others follow from what the tables hold: alike everywhere */
		return code != SQLITE_CORRUPT_VTAB && code != SQLITE_CORRUPT_SEQUENCE;
	default:
		return 0;
	}
}

#define CODE_NAME(c) {c, #c}
static const struct {
	int code;
	const char *name;
} code_names[] = {
	CODE_NAME(SQLITE_IOERR_READ), CODE_NAME(SQLITE_IOERR_SHORT_READ), CODE_NAME(SQLITE_IOERR_WRITE),
	CODE_NAME(SQLITE_IOERR_FSYNC), CODE_NAME(SQLITE_IOERR_DIR_FSYNC), CODE_NAME(SQLITE_IOERR_TRUNCATE),
	CODE_NAME(SQLITE_IOERR_FSTAT), CODE_NAME(SQLITE_IOERR_UNLOCK), CODE_NAME(SQLITE_IOERR_RDLOCK),
	CODE_NAME(SQLITE_IOERR_DELETE), CODE_NAME(SQLITE_IOERR_NOMEM), CODE_NAME(SQLITE_IOERR_ACCESS),
	CODE_NAME(SQLITE_IOERR_CHECKRESERVEDLOCK), CODE_NAME(SQLITE_IOERR_LOCK), CODE_NAME(SQLITE_IOERR_CLOSE),
	CODE_NAME(SQLITE_IOERR_SHMOPEN), CODE_NAME(SQLITE_IOERR_SHMSIZE), CODE_NAME(SQLITE_IOERR_SHMLOCK),
	CODE_NAME(SQLITE_IOERR_SHMMAP), CODE_NAME(SQLITE_IOERR_SEEK), CODE_NAME(SQLITE_IOERR_DELETE_NOENT),
	CODE_NAME(SQLITE_IOERR_MMAP), CODE_NAME(SQLITE_IOERR_GETTEMPPATH), CODE_NAME(SQLITE_IOERR_CONVPATH),
	CODE_NAME(SQLITE_IOERR_DATA), CODE_NAME(SQLITE_IOERR_CORRUPTFS), CODE_NAME(SQLITE_IOERR),
	CODE_NAME(SQLITE_FULL), CODE_NAME(SQLITE_CANTOPEN), CODE_NAME(SQLITE_NOTADB), CODE_NAME(SQLITE_NOMEM),
	CODE_NAME(SQLITE_BUSY), CODE_NAME(SQLITE_BUSY_SNAPSHOT), CODE_NAME(SQLITE_PROTOCOL),
	CODE_NAME(SQLITE_CORRUPT), CODE_NAME(SQLITE_ABORT_ROLLBACK), CODE_NAME(SQLITE_CONSTRAINT_TRIGGER),
};

/* "SQLITE_IOERR_WRITE (778)" for the logs. */
static void code_str(int code, char *buf, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(code_names); i++)
		if (code_names[i].code == code) {
			snprintf(buf, n, "%s (%d)", code_names[i].name, code);
			return;
		}
	snprintf(buf, n, "code %d (%s)", code, sqlite3_errstr(code));
}

/* A one-line excerpt of sql[0..len) into buf: control characters become
 * spaces, "..." marks a cut. */
static void excerpt(char *buf, size_t n, const char *sql, size_t len)
{
	size_t o = 0;
	while (len > 0 && (*sql == ' ' || *sql == '\n' || *sql == '\t' || *sql == '\r')) {
		sql++;
		len--;
	}
	for (size_t i = 0; i < len && o + 4 < n; i++)
		buf[o++] = (unsigned char)sql[i] < ' ' ? ' ' : sql[i];
	if (o + 4 >= n && o < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
}

/* Log (error) and count a replica-local error; the statement is a->err_stmt. */
static void local_incident(struct apply *a, int code, const char *msg)
{
	char cs[64], where[64] = "";
	code_str(code, cs, sizeof cs);
	struct apply *c = a->counts ? a->counts : a;
	if (c != a)
		snprintf(where, sizeof where, "read: ");
	else if (a->cur_instance != 0 && a->cur_item != SIZE_MAX)
		snprintf(where, sizeof where, "instance %llu item %zu: ", (unsigned long long)a->cur_instance,
			 a->cur_item);
	else if (a->cur_instance != 0)
		snprintf(where, sizeof where, "instance %llu: ", (unsigned long long)a->cur_instance);
	mtr_log(LOG_ERROR, "[apply] %sreplica-local error %s: %s (errno %d: %s) in: %s", where, cs, msg,
		a->err_errno, a->err_errno ? strerror(a->err_errno) : "none", a->err_stmt);
	pthread_mutex_lock(&c->mu);
	c->st.local_errors++;
	pthread_mutex_unlock(&c->mu);
}

/*
 * An internal statement (sql) of the attempt failed.  A replica-local error
 * is an incident: ATTEMPT_LOCAL (roll back and retry).  Anything else is
 * logged and MTR_ESQL (the caller gives up).
 */
static int sql_fail(struct apply *a, const char *sql)
{
	int code = sqlite3_extended_errcode(a->db);
	a->err_errno = sqlite3_system_errno(a->db);
	excerpt(a->err_stmt, sizeof a->err_stmt, sql, strlen(sql));
	if (apply_local_error(code)) {
		local_incident(a, code, sqlite3_errmsg(a->db));
		return ATTEMPT_LOCAL;
	}
	mtr_log(LOG_ERROR, "[apply] %s: %s", sql, sqlite3_errmsg(a->db));
	return MTR_ESQL;
}

/* ---- hooks ---- */

static int authorizer(void *ud, int action, const char *a1, const char *a2, const char *dbn, const char *trig)
{
	(void)a2;
	(void)dbn;
	(void)trig;
	struct apply *a = ud;
	if (!a->user)
		return SQLITE_OK;
	switch (action) {
	case SQLITE_TRANSACTION:
		a->deny_msg = deny_txn_msg;
		return SQLITE_DENY;
	case SQLITE_SAVEPOINT:
		/* A user's savepoints nest inside the item's; the names of ours
		 * (mtr_*) are reserved, so an item cannot release or roll back
		 * to the replica's savepoint. */
		if (a2 == NULL || sqlite3_strnicmp(a2, "mtr_", 4) == 0) {
			a->deny_msg = deny_sp_msg;
			return SQLITE_DENY;
		}
		return SQLITE_OK;
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
		a->deny_msg = deny_attach_msg;
		return SQLITE_DENY;
	case SQLITE_INSERT:
	case SQLITE_UPDATE:
	case SQLITE_DELETE:
	case SQLITE_DROP_TABLE:
	case SQLITE_ALTER_TABLE:
	case SQLITE_CREATE_INDEX:
	case SQLITE_CREATE_TRIGGER:
	{
		/* a1 is the table for these, except ALTER (a2 is the table) */
		const char *table = action == SQLITE_ALTER_TABLE ? a2 : a1;
		for (size_t i = 0; table && i < ARRAY_SIZE(replica_tables); i++)
			if (sqlite3_stricmp(table, replica_tables[i].name) == 0) {
				a->deny_msg = replica_tables[i].msg;
				return SQLITE_DENY;
			}
		return SQLITE_OK;
	}
	default:
		return SQLITE_OK;
	}
}

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
	(void)name;
	struct apply *a = ud;
	int self = 0;
	pthread_mutex_lock(&a->mu);
	if (a->pending > a->applied) {
		a->applied = a->pending;
		pthread_cond_broadcast(&a->cv);
	}
	if ((unsigned)pages >= a->cfg.wal_pages) {
		a->ck_want = 1;
		pthread_cond_signal(&a->ckcv);
		self = (unsigned)pages >= 4 * a->cfg.wal_pages;
	}
	pthread_mutex_unlock(&a->mu);
	if (self) {
		/* The checkpointer did not keep up: back-pressure on apply. */
		int nlog = 0, nck = 0;
		int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &nlog, &nck);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
			/* after the commit: the instance stands, the WAL just grows */
			char cs[64];
			code_str(sqlite3_extended_errcode(db), cs, sizeof cs);
			mtr_log(LOG_ERROR, "[apply] checkpoint in the apply thread failed: %s: %s (errno %d)", cs,
				sqlite3_errmsg(db), sqlite3_system_errno(db));
			pthread_mutex_lock(&a->mu);
			a->st.local_errors++;
			pthread_mutex_unlock(&a->mu);
		}
		mtr_log(LOG_DEBUG, "[apply] WAL at %d pages: checkpoint in apply thread (%d/%d)", pages, nck,
			nlog);
	}
	return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
	struct apply *a = arg;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(a->path, &db, SQLITE_OPEN_READWRITE, DETVFS_NAME) != SQLITE_OK) {
		mtr_log(LOG_ERROR, "[apply] checkpointer cannot open %s: %s", a->path, sqlite3_errmsg(db));
		sqlite3_close(db);
		db = NULL;
	}
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->ck_want && !a->closing)
			pthread_cond_wait(&a->ckcv, &a->mu);
		if (a->closing)
			break;
		a->ck_want = 0;
		pthread_mutex_unlock(&a->mu);
		if (db != NULL) {
			int nlog = 0, nck = 0;
			int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &nlog, &nck);
			/* Everything copied: try to restart the WAL now, without
			 * waiting (no busy handler: BUSY if apply is writing). */
			int rc2 = SQLITE_OK;
			if (rc == SQLITE_OK && nlog == nck)
				rc2 = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_RESTART, NULL, NULL);
			if ((rc != SQLITE_OK && rc != SQLITE_BUSY) || (rc2 != SQLITE_OK && rc2 != SQLITE_BUSY)) {
				int code = sqlite3_extended_errcode(db);
				char cs[64];
				code_str(code, cs, sizeof cs);
				mtr_log(LOG_ERROR, "[apply] checkpoint failed: %s: %s (errno %d)", cs,
					sqlite3_errmsg(db), sqlite3_system_errno(db));
				pthread_mutex_lock(&a->mu);
				a->st.local_errors++;
				pthread_mutex_unlock(&a->mu);
			}
			mtr_log(LOG_TRACE, "[apply] checkpoint rc=%d %d/%d frames", rc, nck, nlog);
		}
		pthread_mutex_lock(&a->mu);
		a->st.checkpoints++;
	}
	pthread_mutex_unlock(&a->mu);
	sqlite3_close(db);
	return NULL;
}

/* ---- open / close ---- */

/* 0, or as sql_fail(). */
static int exec(struct apply *a, const char *sql)
{
	int rc = sqlite3_exec(a->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(a, sql);
	return 0;
}

/* Run a prepared control statement (SAVEPOINT, RELEASE, ROLLBACK TO): 0, or
 * as sql_fail(). */
static int ctl(struct apply *a, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		rc = sql_fail(a, sqlite3_sql(st));
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

static char *db_path(const char *dir)
{
	size_t n = strlen(dir) + sizeof(APPLY_DB_NAME) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, APPLY_DB_NAME);
	return p;
}

/* Read mtr_meta(key) as an integer into *v (0 when absent).  db may be any
 * connection on a replica database. */
static int meta_get(sqlite3 *db, const char *key, uint64_t *v)
{
	sqlite3_stmt *s;
	*v = 0;
	if (sqlite3_prepare_v2(db, "SELECT value FROM mtr_meta WHERE key = ?1", -1, &s, NULL) != SQLITE_OK)
		return MTR_ESQL;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*v = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : MTR_ESQL;
}

/* The apply connection refuses the cluster tables that show this replica's
 * own state (a write must not read them: DESIGN.md invariant 6); readers
 * show them. */
static int conn_setup(sqlite3 *db, const struct clustervt_provider *p, int replica_state)
{
	sqlite3_busy_timeout(db, BUSY_MS);
	sqlite3_extended_result_codes(db, 1);
	return clustervt_register(db, p, replica_state);
}

/*
 * mtr_requests (doc/apply.md "Resends").  Per client (the id of its HELLO)
 * and instance that ran its writes, one row (client, first, ts, results,
 * top): the result bytes of those writes as records (u64 request, u32
 * length, bytes), first and top the lowest and highest request among them;
 * and the row (client, 0, ts, floor, top): requests below the floor were
 * answered and are never applied again, top is the highest request kept.
 * Keyed by client first: a client's rows are one contiguous run, appended
 * at one end and forgotten at the other, one row each per instance.
 */
static int requests_prepare(struct apply *a)
{
	static const char *const sql[] = {
		"SELECT result FROM mtr_requests WHERE client = ?1 AND request > 0 AND request <= ?2 AND top >= ?2",
		"SELECT result, top FROM mtr_requests WHERE client = ?1 AND request = 0",
		"INSERT INTO mtr_requests(client, request, ts, result, top) VALUES(?1, ?2, ?3, ?4, ?5)",
		"INSERT INTO mtr_requests(client, request, ts, result, top) VALUES(?1, 0, ?2, ?3, ?4) "
		"ON CONFLICT(client, request) DO UPDATE SET ts = excluded.ts, result = excluded.result, top = excluded.top",
		"DELETE FROM mtr_requests WHERE client = ?1 AND request > 0 AND request < ?2 AND top < ?2",
		"DELETE FROM mtr_requests WHERE client IN "
		"(SELECT client FROM mtr_requests WHERE request = 0 AND ts < ?1)",
	};
	sqlite3_stmt **st[] = {&a->rq_get, &a->rq_load, &a->rq_put, &a->rq_floor, &a->rq_forget, &a->rq_prune};
	for (size_t i = 0; i < ARRAY_SIZE(sql); i++)
		if (sqlite3_prepare_v3(a->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, st[i], NULL) != SQLITE_OK) {
			mtr_log(LOG_ERROR, "[apply] %s: %s", sql[i], sqlite3_errmsg(a->db));
			return MTR_ESQL;
		}
	return 0;
}

int apply_open(const struct apply_config *cfg, struct apply **out)
{
	if (cfg == NULL || cfg->dir == NULL || out == NULL)
		return MTR_EINVAL;
	int rc = detvfs_register();
	if (rc != 0)
		return rc;
	struct apply *a = calloc(1, sizeof *a);
	if (a == NULL)
		return MTR_ENOMEM;
	a->cfg = *cfg;
	a->cfg.dir = NULL;
	if (a->cfg.stmt_cache == 0)
		a->cfg.stmt_cache = DEFAULT_CACHE;
	if (a->cfg.wal_pages == 0)
		a->cfg.wal_pages = DEFAULT_WAL_PAGES;
	if (a->cfg.local_retries == 0)
		a->cfg.local_retries = DEFAULT_LOCAL_RETRIES;
	if (a->cfg.retry_ms == 0)
		a->cfg.retry_ms = DEFAULT_RETRY_MS;
	a->cur_item = SIZE_MAX;
	a->counts = a;
	a->cap = a->cfg.stmt_cache;
	a->nbuckets = 16;
	while (a->nbuckets < 2 * a->cap)
		a->nbuckets *= 2;
	a->buckets = calloc(a->nbuckets, sizeof *a->buckets);
	a->lru.next = a->lru.prev = &a->lru;
	a->path = db_path(cfg->dir);
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&a->ckcv, NULL);
	if (a->buckets == NULL || a->path == NULL) {
		apply_close(a);
		return MTR_ENOMEM;
	}
	/* only the apply thread uses this connection: no connection mutex */
	if (sqlite3_open_v2(a->path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, DETVFS_NAME) !=
	    SQLITE_OK) {
		mtr_log(LOG_ERROR, "[apply] cannot open %s: %s", a->path, sqlite3_errmsg(a->db));
		apply_close(a);
		return MTR_EIO;
	}
	char pragmas[256];
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA journal_size_limit=%lld;",
		 cfg->durability == APPLY_SYNC_FULL ? "FULL" : "NORMAL", (long long)a->cfg.wal_pages * 2 * 4096);
	if (conn_setup(a->db, cfg->provider, 0) != 0 || detvfs_functions_register(a->db, &a->rng) != 0 ||
	    exec(a, pragmas) != 0 ||
	    exec(a, "BEGIN IMMEDIATE;"
		    "CREATE TABLE IF NOT EXISTS mtr_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
		    "INSERT OR IGNORE INTO mtr_meta VALUES('applied', 0);"
		    "INSERT OR IGNORE INTO mtr_meta VALUES('schema_version', 1);"
		    "CREATE TABLE IF NOT EXISTS mtr_cursor(stream INTEGER PRIMARY KEY, last INTEGER NOT NULL);"
		    "CREATE TABLE IF NOT EXISTS mtr_requests(client INTEGER NOT NULL, request INTEGER NOT NULL,"
		    " ts INTEGER NOT NULL, result, top INTEGER, PRIMARY KEY(client, request)) WITHOUT ROWID;"
		    "UPDATE mtr_meta SET value = 2 WHERE key = 'schema_version' AND value = 1;"
		    "COMMIT") != 0) {
		apply_close(a);
		return MTR_ESQL;
	}
	uint64_t ver = 0;
	if (meta_get(a->db, "applied", &a->applied) != 0 || meta_get(a->db, "schema_version", &ver) != 0 ||
	    ver != APPLY_SCHEMA_VERSION) {
		mtr_log(LOG_ERROR, "[apply] %s: bad mtr_meta (schema version %llu)", a->path,
			(unsigned long long)ver);
		apply_close(a);
		return MTR_ESQL;
	}
	a->pending = a->applied;
	if (sqlite3_prepare_v3(a->db, "UPDATE mtr_meta SET value = ?1 WHERE key = 'applied'", -1,
			       SQLITE_PREPARE_PERSISTENT, &a->set_applied, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(a->db,
			       "INSERT INTO mtr_cursor VALUES(?1, ?2) ON CONFLICT(stream) DO UPDATE SET "
			       "last = max(last, excluded.last)",
			       -1, SQLITE_PREPARE_PERSISTENT, &a->set_cursor, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(a->db, "SAVEPOINT mtr_item", -1, SQLITE_PREPARE_PERSISTENT, &a->sp_begin, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v3(a->db, "RELEASE mtr_item", -1, SQLITE_PREPARE_PERSISTENT, &a->sp_release, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v3(a->db, "ROLLBACK TO mtr_item", -1, SQLITE_PREPARE_PERSISTENT, &a->sp_rollback,
			       NULL) != SQLITE_OK ||
	    requests_prepare(a) != 0) {
		apply_close(a);
		return MTR_ESQL;
	}
	sqlite3_set_authorizer(a->db, authorizer, a);
	sqlite3_wal_hook(a->db, wal_hook, a);
	if (pthread_create(&a->ck, NULL, checkpointer, a) != 0) {
		apply_close(a);
		return MTR_ENOMEM;
	}
	a->ck_started = 1;
	mtr_log(LOG_INFO, "[apply] opened %s at instance %llu", a->path, (unsigned long long)a->applied);
	*out = a;
	return 0;
}

void apply_close(struct apply *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->closing = 1;
	pthread_cond_broadcast(&a->cv);
	pthread_cond_broadcast(&a->ckcv);
	pthread_mutex_unlock(&a->mu);
	if (a->ck_started)
		pthread_join(a->ck, NULL);
	if (a->buckets)
		cache_clear(a);
	sqlite3_finalize(a->set_applied);
	sqlite3_finalize(a->set_cursor);
	sqlite3_finalize(a->sp_begin);
	sqlite3_finalize(a->sp_release);
	sqlite3_finalize(a->sp_rollback);
	sqlite3_finalize(a->rq_get);
	sqlite3_finalize(a->rq_load);
	sqlite3_finalize(a->rq_put);
	sqlite3_finalize(a->rq_floor);
	sqlite3_finalize(a->rq_forget);
	sqlite3_finalize(a->rq_prune);
	rq_forget_all(a);
	free(a->rq);
	free(a->rq_touched);
	sqlite3_close(a->db);
	pthread_cond_destroy(&a->cv);
	pthread_cond_destroy(&a->ckcv);
	pthread_mutex_destroy(&a->mu);
	free(a->buckets);
	free(a->path);
	free(a->arena);
	free(a->narena);
	free(a->sres);
	free(a->ires);
	for (size_t i = 0; i < a->nforced; i++)
		free(a->forced[i].msg);
	free(a->forced);
	free(a);
}

uint64_t apply_applied(struct apply *a)
{
	pthread_mutex_lock(&a->mu);
	uint64_t v = a->applied;
	pthread_mutex_unlock(&a->mu);
	return v;
}

void apply_stats(struct apply *a, struct apply_stats *st)
{
	pthread_mutex_lock(&a->mu);
	*st = a->st;
	pthread_mutex_unlock(&a->mu);
}

/* ---- executing an item ---- */

/* Parameter source: either an encode-side array or decoded bytes. */
struct psrc {
	const struct wire_value *arr;
	const uint8_t *p;
	unsigned i;
};

static void param_next(struct psrc *ps, struct wire_value *v)
{
	if (ps->arr)
		*v = ps->arr[ps->i++];
	else
		wire_param_next(&ps->p, v);
}

static int bind_params(sqlite3_stmt *st, unsigned n, struct psrc *ps)
{
	int rc = SQLITE_OK;
	for (unsigned i = 0; i < n && rc == SQLITE_OK; i++) {
		struct wire_value v;
		param_next(ps, &v);
		int k = (int)i + 1;
		switch (v.type) {
		case WIRE_V_INT:
			rc = sqlite3_bind_int64(st, k, v.u.i);
			break;
		case WIRE_V_REAL:
			rc = sqlite3_bind_double(st, k, v.u.r);
			break;
		case WIRE_V_TEXT:
			rc = sqlite3_bind_text64(st, k, v.u.b.p ? v.u.b.p : "", v.u.b.n, SQLITE_STATIC,
						 SQLITE_UTF8);
			break;
		case WIRE_V_BLOB:
			rc = sqlite3_bind_blob64(st, k, v.u.b.p ? v.u.b.p : "", v.u.b.n, SQLITE_STATIC);
			break;
		default:
			rc = sqlite3_bind_null(st, k);
			break;
		}
	}
	return rc;
}

static void set_error(struct apply *a, struct sres *r, int code, const char *msg)
{
	r->code = code;
	r->msg = arena_str(a, msg);
}

/* The error of the last failed prepare/step, with the authorizer's message
 * in place of SQLite's "not authorized". */
static void set_db_error(struct apply *a, struct sres *r)
{
	int code = sqlite3_extended_errcode(a->db);
	a->err_errno = sqlite3_system_errno(a->db);
	if (code == SQLITE_OK)
		code = SQLITE_ERROR;
	if (code == SQLITE_AUTH && a->deny_msg)
		set_error(a, r, code, a->deny_msg);
	else
		set_error(a, r, code, sqlite3_errmsg(a->db));
}

/* Keep the column names of st for r (the statement that gave its rows);
 * out of memory only loses the names. */
static void record_names(struct apply *a, sqlite3_stmt *st, struct sres *r)
{
	int n = sqlite3_column_count(st);
	size_t need = 0;
	for (int i = 0; i < n; i++) {
		const char *nm = sqlite3_column_name(st, i);
		need += strlen(nm ? nm : "") + 1;
	}
	if (a->nlen + need > a->ncap) {
		size_t c = a->ncap ? a->ncap : 1024;
		while (c < a->nlen + need)
			c *= 2;
		char *p = realloc(a->narena, c);
		if (p == NULL) {
			r->names = -1;
			return;
		}
		a->narena = p;
		a->ncap = c;
	}
	r->names = (long)a->nlen;
	for (int i = 0; i < n; i++) {
		const char *nm = sqlite3_column_name(st, i);
		size_t l = strlen(nm ? nm : "") + 1;
		memcpy(a->narena + a->nlen, nm ? nm : "", l);
		a->nlen += l;
	}
}

/* Step st to the end, collecting rows into r.  Returns SQLITE_DONE or the
 * error (recorded in r). */
static int step_all(struct apply *a, sqlite3_stmt *st, struct sres *r)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (arena_row(a, st) != 0) {
			sqlite3_reset(st);
			set_error(a, r, SQLITE_NOMEM, "out of memory collecting result rows");
			return SQLITE_NOMEM;
		}
		r->ncols = (uint32_t)sqlite3_column_count(st);
		r->nrows++;
	}
	if (rc != SQLITE_DONE)
		set_db_error(a, r);
	else if (r->nrows > 0)
		record_names(a, st, r);
	sqlite3_reset(st);
	return rc;
}

static int only_space(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';')
			return 0;
	return 1;
}

/* Run one statement record.  Returns SQLITE_OK or the error (in r). */
static int run_record(struct apply *a, const struct wire_stmt *ws, struct psrc *ps, struct sres *r)
{
	const char *sql = ws->sql, *end = ws->sql + ws->sql_len;
	uint64_t h = XXH3_64bits(sql, ws->sql_len);
	struct centry *e = cache_find(a, sql, ws->sql_len, h);
	int rc;
	a->deny_msg = NULL;
	if (e != NULL) {
		a->st.cache_hits++;
		lru_unlink(e);
		lru_front(a, e);
		sqlite3_stmt *st = e->st;
		rc = bind_params(st, ws->nparams, ps);
		if (rc != SQLITE_OK) {
			set_db_error(a, r);
			sqlite3_clear_bindings(st);
			return rc;
		}
		rc = step_all(a, st, r);
		sqlite3_clear_bindings(st);
		r->changes = sqlite3_changes64(a->db);
		r->rowid = sqlite3_last_insert_rowid(a->db);
		if (rc != SQLITE_DONE)
			excerpt(a->err_stmt, sizeof a->err_stmt, sql, ws->sql_len);
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	a->st.cache_misses++;
	const char *p = sql;
	int first = 1;
	for (;;) {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		rc = sqlite3_prepare_v3(a->db, p, (int)(end - p), SQLITE_PREPARE_PERSISTENT, &st, &tail);
		if (rc != SQLITE_OK) {
			set_db_error(a, r);
			excerpt(a->err_stmt, sizeof a->err_stmt, p, (size_t)(end - p));
			return rc;
		}
		if (st == NULL) /* only whitespace or comments left */
			break;
		int last = tail == NULL || only_space(tail, end);
		int cacheable = first && last;
		if (ws->nparams > 0 && !cacheable) {
			sqlite3_finalize(st);
			set_error(a, r, SQLITE_ERROR, "a statement record with parameters holds one statement");
			return SQLITE_ERROR;
		}
		if (first && ws->nparams > 0) {
			rc = bind_params(st, ws->nparams, ps);
			if (rc != SQLITE_OK) {
				set_db_error(a, r);
				sqlite3_finalize(st);
				return rc;
			}
		}
		rc = step_all(a, st, r);
		if (rc != SQLITE_DONE)
			excerpt(a->err_stmt, sizeof a->err_stmt, p, (size_t)((tail ? tail : end) - p));
		if (cacheable) {
			sqlite3_clear_bindings(st);
			cache_put(a, sql, ws->sql_len, h, st);
		} else {
			sqlite3_finalize(st);
		}
		if (rc != SQLITE_DONE)
			return rc;
		r->changes = sqlite3_changes64(a->db);
		r->rowid = sqlite3_last_insert_rowid(a->db);
		if (last)
			break;
		first = 0;
		p = tail;
	}
	r->changes = sqlite3_changes64(a->db);
	r->rowid = sqlite3_last_insert_rowid(a->db);
	return SQLITE_OK;
}

int apply_drop_temp(sqlite3 *db)
{
	/* dropping a view drops its triggers: one object at a time until none
	 * is left */
	for (int guard = 0; guard < 100000; guard++) {
		sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(db,
				       "SELECT type, name FROM temp.sqlite_schema "
				       "WHERE type IN ('table', 'view', 'trigger') LIMIT 1",
				       -1, &s, NULL) != SQLITE_OK) {
			mtr_log(LOG_ERROR, "[apply] listing temp objects: %s", sqlite3_errmsg(db));
			return MTR_ESQL;
		}
		char *sql = NULL;
		if (sqlite3_step(s) == SQLITE_ROW)
			sql = sqlite3_mprintf("DROP %s temp.\"%w\"", (const char *)sqlite3_column_text(s, 0),
					      (const char *)sqlite3_column_text(s, 1));
		int more = sql != NULL;
		sqlite3_finalize(s);
		if (!more)
			return 0;
		int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			mtr_log(LOG_ERROR, "[apply] %s: %s", sql, sqlite3_errmsg(db));
		sqlite3_free(sql);
		if (rc != SQLITE_OK)
			return MTR_ESQL;
	}
	return MTR_ESQL;
}

static const struct forced *forced_find(struct apply *a, size_t index)
{
	for (size_t i = 0; i < a->nforced; i++)
		if (a->forced[i].index == index)
			return &a->forced[i];
	return NULL;
}

/* Item ir fails without running: one statement result with code and msg.
 * 0 or MTR_ENOMEM. */
static int item_fail(struct apply *a, struct ires *ir, int code, const char *msg)
{
	ir->code = code;
	ir->failed = 0;
	ir->first = a->nsres;
	ir->nstmt = 1;
	struct sres *r = sres_new(a);
	if (r == NULL)
		return MTR_ENOMEM;
	set_error(a, r, code, msg);
	return 0;
}

/*
 * Run item number idx inside its savepoint, recording results.  Returns 0,
 * ATTEMPT_FORCED when the item ended the whole transaction (then it was
 * recorded in a->forced and the instance must restart), ATTEMPT_LOCAL after a
 * replica-local error (logged, counted: the attempt is rolled back and
 * retried, the item is not marked), or MTR_ESQL / MTR_ENOMEM.
 */
static int run_item_body(struct apply *a, size_t idx, const struct wire_item *it)
{
	struct ires *ir = &a->ires[idx];
	ir->code = SQLITE_OK;
	ir->failed = 0;
	ir->first = a->nsres;
	ir->nstmt = 0;
	const struct forced *f = forced_find(a, idx);
	if (f != NULL)
		return item_fail(a, ir, f->code, f->msg);
	detvfs_item_begin(it->timestamp_us, it->seed);
	/* A different stream from the VFS's: a function draw never shifts
	 * what SQLite's own PRNG sees. */
	detvfs_rng_seed(&a->rng, it->seed ^ UINT64_C(0x6d74722d72616e64));
	int rc = ctl(a, a->sp_begin);
	if (rc != 0) {
		detvfs_item_end();
		return rc;
	}
	struct wire_stmt_iter si;
	struct wire_stmt ws;
	const uint8_t *params = NULL;
	if (it->stmts == NULL)
		wire_stmt_begin(it, &si);
	a->user = 1;
	for (uint32_t k = 0; k < it->nstmt; k++) {
		struct psrc ps = {0};
		if (it->stmts != NULL) {
			ws = it->stmts[k];
			ps.arr = ws.params;
		} else {
			if (!wire_stmt_next(&si, &ws, &params))
				break;
			ps.p = params;
		}
		struct sres *r = sres_new(a);
		if (r == NULL) {
			a->user = 0;
			detvfs_item_end();
			return MTR_ENOMEM;
		}
		ir->nstmt++;
		int src = run_record(a, &ws, &ps, r);
		r->len = a->alen - r->off;
		if (src != SQLITE_OK) {
			ir->code = r->code;
			ir->failed = k;
			break;
		}
	}
	a->user = 0;
	detvfs_item_end();
	if (ir->code != SQLITE_OK && apply_local_error(ir->code)) {
		/* Not the item's result: this replica's disk, memory, files.
		 * (An I/O error also rolls back the whole transaction: checked
		 * first, so it is never taken for the item's own rollback.) */
		const struct sres *r = &a->sres[ir->first + ir->nstmt - 1];
		local_incident(a, ir->code, r->msg >= 0 ? (const char *)a->arena + r->msg : "");
		return ATTEMPT_LOCAL;
	}
	if (sqlite3_get_autocommit(a->db)) {
		/* The statement rolled back the instance transaction itself. */
		struct sres *r = &a->sres[ir->first + ir->nstmt - 1];
		struct forced *nf = realloc(a->forced, (a->nforced + 1) * sizeof *nf);
		if (nf == NULL)
			return MTR_ENOMEM;
		a->forced = nf;
		nf[a->nforced].index = idx;
		nf[a->nforced].code = r->code ? r->code : SQLITE_ABORT_ROLLBACK;
		nf[a->nforced].msg = strdup(r->msg >= 0 ? (const char *)a->arena + r->msg
							: "the statement rolled back the transaction");
		if (nf[a->nforced].msg == NULL)
			return MTR_ENOMEM;
		a->nforced++;
		if (ir->code == SQLITE_OK) { /* no statement failed: name the item's first */
			struct wire_stmt_iter si2;
			struct wire_stmt w0;
			const uint8_t *pp = NULL;
			if (it->stmts != NULL) {
				excerpt(a->err_stmt, sizeof a->err_stmt, it->stmts[0].sql, it->stmts[0].sql_len);
			} else {
				wire_stmt_begin(it, &si2);
				if (wire_stmt_next(&si2, &w0, &pp))
					excerpt(a->err_stmt, sizeof a->err_stmt, w0.sql, w0.sql_len);
			}
		}
		char cs[64];
		code_str(nf[a->nforced - 1].code, cs, sizeof cs);
		mtr_log(LOG_WARN,
			"[apply] instance %llu item %zu rolled back the transaction (%s: %s) in: %s: restarting "
			"the instance with the item failed",
			(unsigned long long)a->cur_instance, idx, cs, nf[a->nforced - 1].msg, a->err_stmt);
		pthread_mutex_lock(&a->mu);
		a->st.restarts++;
		pthread_mutex_unlock(&a->mu);
		return ATTEMPT_FORCED;
	}
	if (ir->code != SQLITE_OK || (it->flags & WIRE_ITEM_READ)) {
		rc = ctl(a, a->sp_rollback);
	} else if (it->flags & WIRE_ITEM_TEMP) {
		rc = apply_drop_temp(a->db);
		if (rc != 0)
			rc = sql_fail(a, "dropping the item's temp objects");
	}
	if (rc == 0)
		rc = ctl(a, a->sp_release);
	return rc;
}

/*
 * Record in mtr_cursor, inside the instance transaction, the last seq of each
 * stream the items reach (the per-stream "ordered through" cursor a restarted
 * server passes to paxos_install, doc/apply.md).  Items of one stream are
 * consecutive in an instance, so one upsert per run of a stream suffices;
 * the max() keeps the cursor monotonic whatever the order.
 */
static int record_cursor(struct apply *a, const struct wire_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].stream == 0 || (i + 1 < n && items[i + 1].stream == items[i].stream))
			continue;
		sqlite3_bind_int64(a->set_cursor, 1, (sqlite3_int64)items[i].stream);
		sqlite3_bind_int64(a->set_cursor, 2, (sqlite3_int64)items[i].seq);
		int rc = sqlite3_step(a->set_cursor);
		if (rc != SQLITE_DONE) {
			rc = sql_fail(a, sqlite3_sql(a->set_cursor));
			sqlite3_reset(a->set_cursor);
			return rc;
		}
		sqlite3_reset(a->set_cursor);
	}
	return 0;
}

int apply_cursor(struct apply *a, int (*fn)(void *arg, uint64_t stream, uint64_t last), void *arg)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(a->db, "SELECT stream, last FROM mtr_cursor ORDER BY stream", -1, &s, NULL) !=
	    SQLITE_OK)
		return MTR_ESQL;
	int rc, ret = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && ret == 0)
		ret = fn(arg, (uint64_t)sqlite3_column_int64(s, 0), (uint64_t)sqlite3_column_int64(s, 1));
	sqlite3_finalize(s);
	if (ret != 0)
		return ret;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : MTR_ESQL;
}

/* Scratch arrays for item_result(), grown as needed. */
struct res_scratch {
	struct apply_stmt_result *sr;
	size_t cap;
	const char **names; /* the name pointers of one item's statements */
	size_t ncap;
};

static void scratch_free(struct res_scratch *x)
{
	free(x->sr);
	free(x->names);
}

/*
 * The result of one item as an apply_result pointing into the arena and x:
 * valid until the arena grows or x is used again.  Used to deliver results
 * (after COMMIT) and to keep a write's result for a resend (before it).
 */
static int item_result(struct apply *a, const struct ires *ir, struct res_scratch *x, struct apply_result *res)
{
	memset(res, 0, sizeof *res);
	res->code = ir->code;
	res->failed = ir->failed;
	if (ir->raw >= 0) {
		res->raw = a->arena + ir->raw;
		res->raw_len = ir->raw_len;
		return 0;
	}
	if (ir->nstmt > x->cap) {
		struct apply_stmt_result *p = realloc(x->sr, ir->nstmt * sizeof *p);
		if (p == NULL)
			return MTR_ENOMEM;
		x->sr = p;
		x->cap = ir->nstmt;
	}
	size_t nn = 0;
	for (uint32_t k = 0; k < ir->nstmt; k++) {
		const struct sres *s = &a->sres[ir->first + k];
		if (s->names >= 0)
			nn += s->ncols;
	}
	if (nn > x->ncap) {
		const char **p = realloc(x->names, nn * sizeof *p);
		if (p == NULL)
			return MTR_ENOMEM;
		x->names = p;
		x->ncap = nn;
	}
	size_t used = 0;
	struct apply_stmt_result *sr = x->sr;
	for (uint32_t k = 0; k < ir->nstmt; k++) {
		const struct sres *s = &a->sres[ir->first + k];
		sr[k].code = s->code;
		sr[k].errmsg = s->msg >= 0 ? (const char *)a->arena + s->msg : NULL;
		sr[k].changes = s->changes;
		sr[k].last_rowid = s->rowid;
		sr[k].ncols = s->ncols;
		sr[k].names = NULL;
		if (s->names >= 0 && s->ncols > 0) {
			const char *q = a->narena + s->names;
			sr[k].names = x->names + used;
			for (uint32_t c = 0; c < s->ncols; c++) {
				x->names[used++] = q;
				q += strlen(q) + 1;
			}
		}
		sr[k].nrows = s->nrows;
		sr[k].rows = s->nrows ? a->arena + s->off : NULL;
		sr[k].rows_len = s->nrows ? s->len : 0;
	}
	res->nstmt = ir->nstmt;
	res->stmts = sr;
	return 0;
}

/*
 * Hand the results recorded in a->ires/a->sres/arena for items[0..n) to cb.
 * The arena is final when this runs.  Shared by apply_instance (after
 * COMMIT) and apply_read.
 */
static int deliver(struct apply *a, const struct wire_item *items, size_t n, apply_result_fn cb, void *arg)
{
	struct res_scratch x = {0};
	for (size_t i = 0; i < n; i++) {
		struct apply_result res;
		if (item_result(a, &a->ires[i], &x, &res) != 0) {
			scratch_free(&x);
			return MTR_ENOMEM;
		}
		cb(arg, i, &items[i], &res);
	}
	scratch_free(&x);
	return 0;
}

/* ---- resends: mtr_requests (doc/apply.md "Resends") ---- */

#define RQ_CACHE_MAX 65536 /* clients cached; beyond, the cache starts again */

static void rq_bind_ids(sqlite3_stmt *st, uint64_t client, uint64_t request)
{
	sqlite3_bind_int64(st, 1, (sqlite3_int64)client);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)request);
}

static int rq_step(struct apply *a, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		rc = sql_fail(a, sqlite3_sql(st));
	else
		rc = 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static size_t rq_slot(const struct apply *a, uint64_t client)
{
	size_t i = (size_t)(client * UINT64_C(0x9e3779b97f4a7c15) >> 20) & (a->rq_cap - 1);
	while (a->rq[i].client != 0 && a->rq[i].client != client)
		i = (i + 1) & (a->rq_cap - 1);
	return i;
}

/* Start an attempt at an instance of n items: room for n more clients
 * (the cache only grows, or starts again, between instances). */
static int rq_begin(struct apply *a, size_t n)
{
	a->rq_gen++;
	a->rq_ntouched = 0;
	a->rq_reload = 0;
	if (n > a->rq_tcap) {
		size_t *t = realloc(a->rq_touched, n * sizeof *t);
		if (t == NULL)
			return MTR_ENOMEM;
		a->rq_touched = t;
		a->rq_tcap = n;
	}
	if ((a->rq_n + n) * 4 <= a->rq_cap * 3)
		return 0;
	size_t cap = a->rq_cap ? a->rq_cap : 1024;
	while ((a->rq_n + n) * 4 > cap * 3)
		cap *= 2;
	struct rq_client *old = a->rq;
	size_t ocap = a->rq_cap;
	if (cap > RQ_CACHE_MAX && n * 4 <= (size_t)RQ_CACHE_MAX * 3) {
		cap = RQ_CACHE_MAX; /* start again: the cache is rebuilt from the table */
		rq_forget_all(a);
	}
	struct rq_client *nt = calloc(cap, sizeof *nt);
	if (nt == NULL)
		return MTR_ENOMEM;
	a->rq = nt;
	a->rq_cap = cap;
	for (size_t k = 0; k < ocap; k++)
		if (old[k].client != 0)
			a->rq[rq_slot(a, old[k].client)] = old[k];
	free(old);
	return 0;
}

/* The client's entry, loaded from the table the first time, and made part
 * of this attempt.  NULL on error (*rc set). */
static struct rq_client *rq_client_get(struct apply *a, uint64_t client, int *rc)
{
	size_t i = rq_slot(a, client);
	struct rq_client *e = &a->rq[i];
	*rc = 0;
	if (e->client == 0) {
		uint64_t floor = 0, maxreq = 0;
		sqlite3_bind_int64(a->rq_load, 1, (sqlite3_int64)client);
		int src = sqlite3_step(a->rq_load);
		if (src == SQLITE_ROW) {
			floor = (uint64_t)sqlite3_column_int64(a->rq_load, 0);
			maxreq = (uint64_t)sqlite3_column_int64(a->rq_load, 1);
		}
		if (src != SQLITE_ROW && src != SQLITE_DONE) {
			*rc = sql_fail(a, sqlite3_sql(a->rq_load));
			sqlite3_reset(a->rq_load);
			return NULL;
		}
		sqlite3_reset(a->rq_load);
		memset(e, 0, sizeof *e);
		e->client = client;
		e->floor = floor;
		e->maxreq = maxreq;
		a->rq_n++;
	}
	if (e->gen != a->rq_gen) {
		e->gen = a->rq_gen;
		e->pfloor = e->floor;
		e->pmaxreq = e->maxreq;
		e->written = 0;
		e->blen = 0;
		a->rq_touched[a->rq_ntouched++] = i;
	}
	return e;
}

/* Before COMMIT: each client's row (floor, top, time), and the results
 * below a floor that moved are forgotten. */
static int rq_finish(struct apply *a)
{
	for (size_t k = 0; k < a->rq_ntouched; k++) {
		const struct rq_client *e = &a->rq[a->rq_touched[k]];
		if (!e->written)
			continue;
		sqlite3_bind_int64(a->rq_floor, 1, (sqlite3_int64)e->client);
		sqlite3_bind_int64(a->rq_floor, 2, e->pts);
		sqlite3_bind_int64(a->rq_floor, 3, (sqlite3_int64)e->pfloor);
		sqlite3_bind_int64(a->rq_floor, 4, (sqlite3_int64)e->pmaxreq);
		int rc = rq_step(a, a->rq_floor);
		if (rc == 0 && e->blen > 0) {
			rq_bind_ids(a->rq_put, e->client, e->bfirst);
			sqlite3_bind_int64(a->rq_put, 3, e->pts);
			sqlite3_bind_blob(a->rq_put, 4, e->buf, (int)e->blen, SQLITE_STATIC);
			sqlite3_bind_int64(a->rq_put, 5, (sqlite3_int64)e->blast);
			rc = rq_step(a, a->rq_put);
		}
		if (rc == 0 && e->pfloor > e->floor) {
			/* the batches wholly below the floor (one may straddle it) */
			rq_bind_ids(a->rq_forget, e->client, e->pfloor);
			rc = rq_step(a, a->rq_forget);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* After COMMIT: what the attempt did is what is committed. */
static void rq_committed(struct apply *a)
{
	if (a->rq_reload) {
		rq_forget_all(a);
		return;
	}
	for (size_t k = 0; k < a->rq_ntouched; k++) {
		struct rq_client *e = &a->rq[a->rq_touched[k]];
		e->floor = e->pfloor;
		e->maxreq = e->pmaxreq;
	}
}

/* Keep the result of item ir (just run) in the client's batch. */
static int rq_keep(struct apply *a, struct rq_client *e, const struct wire_item *it, const struct ires *ir)
{
	struct res_scratch x = {0};
	struct apply_result res;
	if (item_result(a, ir, &x, &res) != 0) {
		scratch_free(&x);
		return MTR_ENOMEM;
	}
	size_t n = result_size(&res);
	char msg[160];
	struct apply_stmt_result bs;
	if (n > APPLY_KEEP_RESULT_MAX) {
		snprintf(msg, sizeof msg,
			 "this write was applied before; its result (%zu bytes) was too large to keep for a resend", n);
		res = result_error(SQLITE_TOOBIG, msg, &bs);
		n = result_size(&res);
	}
	if (e->blen + 12 + n > e->bcap) {
		size_t cap = e->bcap ? e->bcap : 1024;
		while (cap < e->blen + 12 + n)
			cap *= 2;
		uint8_t *p = realloc(e->buf, cap);
		if (p == NULL) {
			scratch_free(&x);
			return MTR_ENOMEM;
		}
		e->buf = p;
		e->bcap = cap;
	}
	long w = result_encode(&res, e->buf + e->blen + 12, n);
	scratch_free(&x);
	if (w < 0)
		return (int)w;
	st64(e->buf + e->blen, it->request);
	st32(e->buf + e->blen + 8, (uint32_t)w);
	e->blen += 12 + (size_t)w;
	if (e->blen == 12 + (size_t)w || it->request < e->bfirst)
		e->bfirst = it->request;
	if (it->request > e->blast || e->blen == 12 + (size_t)w)
		e->blast = it->request;
	return 0;
}

/* The record of request in a batch of records: its bytes, or NULL. */
static const uint8_t *rq_find(const uint8_t *p, size_t len, uint64_t request, uint32_t *n)
{
	while (len >= 12) {
		uint32_t l = ld32(p + 8);
		if (l > len - 12)
			return NULL;
		if (ld64(p) == request) {
			*n = l;
			return p + 12;
		}
		p += 12 + l;
		len -= 12 + l;
	}
	return NULL;
}

/* A resend of a write applied before (in this attempt, or in a row of
 * the table): its kept result becomes the item's. */
static int rq_resend(struct apply *a, struct rq_client *e, const struct wire_item *it, struct ires *ir, int *found)
{
	*found = 0;
	uint32_t n = 0;
	const uint8_t *b = rq_find(e->buf, e->blen, it->request, &n);
	int rc = 0;
	if (b == NULL) {
		rq_bind_ids(a->rq_get, it->client, it->request);
		while ((rc = sqlite3_step(a->rq_get)) == SQLITE_ROW) {
			b = rq_find(sqlite3_column_blob(a->rq_get, 0), (size_t)sqlite3_column_bytes(a->rq_get, 0),
				    it->request, &n);
			if (b != NULL)
				break;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			rc = sql_fail(a, sqlite3_sql(a->rq_get));
			sqlite3_reset(a->rq_get);
			sqlite3_clear_bindings(a->rq_get);
			return rc;
		}
	}
	rc = 0;
	if (b != NULL) {
		rc = n >= 4 && arena_reserve(a, n) == 0 ? 0 : MTR_ENOMEM;
		if (rc == 0) {
			memcpy(a->arena + a->alen, b, n);
			ir->raw = (long)a->alen;
			ir->raw_len = n;
			a->alen += n;
			ir->code = (int32_t)ld32(a->arena + ir->raw); /* the result's code (result.h) */
			ir->failed = 0;
			ir->first = a->nsres;
			ir->nstmt = 0;
			*found = 1;
			a->st.resends++;
			mtr_log(LOG_INFO,
				"[apply] request %llu of client %016llx was applied before: answering its kept result",
				(unsigned long long)it->request, (unsigned long long)it->client);
		}
	}
	sqlite3_reset(a->rq_get);
	sqlite3_clear_bindings(a->rq_get);
	return rc;
}

/*
 * Run item number idx.  A write that names its client (client and floor
 * non-zero) is applied at most once: a resend of one already applied gets
 * the kept result instead of running again, one below the client's floor
 * (answered, forgotten) gets an error and does not run.  Returns as
 * run_item_body().
 */
static int run_item(struct apply *a, size_t idx, const struct wire_item *it)
{
	struct ires *ir = &a->ires[idx];
	ir->raw = -1;
	ir->raw_len = 0;
	if (it->client == 0 || it->floor == 0 || (it->flags & WIRE_ITEM_READ))
		return run_item_body(a, idx, it);
	int rc;
	struct rq_client *e = rq_client_get(a, it->client, &rc);
	if (e == NULL)
		return rc;
	if (it->request < e->pfloor)
		return item_fail(a, ir, SQLITE_ERROR,
				 "a resend of a request that was answered already: it is not applied again");
	if (it->request <= e->pmaxreq) { /* above it, nothing was kept: new */
		int found;
		rc = rq_resend(a, e, it, ir, &found);
		if (rc != 0 || found)
			return rc;
	}
	rc = run_item_body(a, idx, it);
	if (rc != 0)
		return rc;
	rc = rq_keep(a, e, it, ir);
	if (it->request > e->pmaxreq)
		e->pmaxreq = it->request;
	if (it->floor > e->pfloor)
		e->pfloor = it->floor;
	e->pts = it->timestamp_us;
	e->written = 1;
	return rc;
}

/* Forget the clients idle for APPLY_CLIENT_IDLE_US, now and then: every
 * 4096th instance, by the timestamp of its last item (deterministic). */
static int rq_prune(struct apply *a, uint64_t instance, const struct wire_item *items, size_t n)
{
	if (n == 0 || instance % 4096 != 0)
		return 0;
	sqlite3_bind_int64(a->rq_prune, 1, items[n - 1].timestamp_us - APPLY_CLIENT_IDLE_US);
	int rc = rq_step(a, a->rq_prune);
	if (rc == 0 && sqlite3_changes(a->db) > 0)
		a->rq_reload = 1;
	return rc;
}

static void rollback(struct apply *a)
{
	if (!sqlite3_get_autocommit(a->db))
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * One attempt at the instance: BEGIN IMMEDIATE, the items, the replica's
 * own rows, COMMIT.  0 (committed), ATTEMPT_FORCED, ATTEMPT_LOCAL, or MTR_*
 * (< 0).  The caller rolls back whatever did not commit.
 */
static int attempt(struct apply *a, uint64_t instance, const struct wire_item *items, size_t n)
{
	a->alen = 0;
	a->nlen = 0;
	a->nsres = 0;
	a->cur_item = SIZE_MAX;
	int rc = exec(a, "BEGIN IMMEDIATE");
	if (rc == 0)
		rc = rq_begin(a, n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		a->cur_item = i;
		rc = run_item(a, i, &items[i]);
	}
	a->cur_item = SIZE_MAX;
	if (rc == 0)
		rc = record_cursor(a, items, n);
	if (rc == 0)
		rc = rq_finish(a);
	if (rc == 0)
		rc = rq_prune(a, instance, items, n);
	if (rc == 0) {
		sqlite3_bind_int64(a->set_applied, 1, (sqlite3_int64)instance);
		if (sqlite3_step(a->set_applied) != SQLITE_DONE)
			rc = sql_fail(a, sqlite3_sql(a->set_applied));
		sqlite3_reset(a->set_applied);
	}
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&a->mu);
	a->pending = instance;
	pthread_mutex_unlock(&a->mu);
	if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		if (apply_local_error(sqlite3_extended_errcode(a->db)))
			return sql_fail(a, "COMMIT");
		mtr_log(LOG_ERROR, "[apply] COMMIT of instance %llu: %s", (unsigned long long)instance,
			sqlite3_errmsg(a->db));
		return MTR_EIO;
	}
	return 0;
}

int apply_instance(struct apply *a, uint64_t instance, const struct wire_item *items, size_t n,
		   apply_result_fn cb, void *arg)
{
	if (a == NULL || (n > 0 && items == NULL))
		return MTR_EINVAL;
	uint64_t cur = apply_applied(a);
	if (instance <= cur)
		return MTR_EDUPLICATE;
	if (instance != cur + 1) {
		mtr_log(LOG_ERROR, "[apply] instance %llu out of order (applied %llu)",
			(unsigned long long)instance, (unsigned long long)cur);
		return MTR_EINVAL;
	}
	if (n > a->cires) {
		struct ires *p = realloc(a->ires, n * sizeof *p);
		if (p == NULL)
			return MTR_ENOMEM;
		a->ires = p;
		a->cires = n;
	}
	uint64_t t0 = now_mono_ns();
	a->cur_instance = instance;
	unsigned tries = 0, delay = a->cfg.retry_ms;
	int rc;
	for (;;) {
		rc = attempt(a, instance, items, n);
		if (rc == 0) {
			rq_committed(a);
			break;
		}
		rollback(a);
		pthread_mutex_lock(&a->mu);
		a->pending = a->applied;
		pthread_mutex_unlock(&a->mu);
		if (rc == ATTEMPT_FORCED) /* the items marked failed are kept */
			continue;
		if (rc != ATTEMPT_LOCAL)
			break;
		/*
		 * A replica-local error (logged and counted where it happened):
		 * nothing of the attempt is kept, no result is reported.  Retry
		 * the same instance after a growing delay; if the error persists,
		 * stop rather than apply it differently from the other replicas.
		 */
		if (tries >= a->cfg.local_retries) {
			mtr_log(LOG_ERROR,
				"[apply] instance %llu: replica-local error persists after %u attempts: stopping; "
				"nothing of it was recorded (applied stays %llu), a restart applies it again",
				(unsigned long long)instance, tries + 1, (unsigned long long)instance - 1);
			rc = MTR_EIO;
			break;
		}
		tries++;
		pthread_mutex_lock(&a->mu);
		a->st.local_retries++;
		pthread_mutex_unlock(&a->mu);
		mtr_log(LOG_WARN, "[apply] instance %llu rolled back after a replica-local error: retry %u of %u in %u ms",
			(unsigned long long)instance, tries, a->cfg.local_retries, delay);
		struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (long)(delay % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		delay = delay > UINT32_MAX / 10 ? delay : delay * 10;
	}
	a->cur_instance = 0;
	for (size_t i = 0; i < a->nforced; i++)
		free(a->forced[i].msg);
	a->nforced = 0;
	if (rc != 0)
		return rc < 0 ? rc : MTR_ESQL;
	/* Publish (the WAL hook did it already in WAL mode). */
	pthread_mutex_lock(&a->mu);
	if (a->applied < instance) {
		a->applied = instance;
		pthread_cond_broadcast(&a->cv);
	}
	a->st.instances++;
	a->st.items += n;
	for (size_t i = 0; i < n; i++)
		if (a->ires[i].code != SQLITE_OK)
			a->st.items_failed++;
	pthread_mutex_unlock(&a->mu);
	mtr_log(LOG_TRACE, "[apply] instance %llu: %zu items in %llu us", (unsigned long long)instance, n,
		(unsigned long long)((now_mono_ns() - t0) / 1000));
	if (cb == NULL)
		return 0;
	return deliver(a, items, n, cb, arg);
}

/* ---- readers ---- */

int apply_wait(struct apply *a, uint64_t instance, int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	if (timeout_ms > 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	int rc = 0;
	pthread_mutex_lock(&a->mu);
	while (a->applied < instance && !a->closing) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&a->cv, &a->mu);
		} else if (timeout_ms == 0 || pthread_cond_timedwait(&a->cv, &a->mu, &dl) == ETIMEDOUT) {
			if (a->applied < instance)
				rc = MTR_ETIMEDOUT;
			break;
		}
	}
	if (rc == 0 && a->applied < instance)
		rc = MTR_ECLOSED;
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int apply_open_reader(struct apply *a, sqlite3 **out)
{
	sqlite3 *db = NULL;
	*out = NULL;
	if (sqlite3_open_v2(a->path, &db, SQLITE_OPEN_READONLY, DETVFS_NAME) != SQLITE_OK) {
		mtr_log(LOG_ERROR, "[apply] reader on %s: %s", a->path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return MTR_EIO;
	}
	if (conn_setup(db, a->cfg.provider, 1) != 0) {
		sqlite3_close(db);
		return MTR_ESQL;
	}
	*out = db;
	return 0;
}

/* ---- reads on a reader connection ---- */

/* A reader: a struct apply whose connection is a read-only one (its own
 * statement cache and arena), so reads run through the same run_record()
 * and deliver() as applied items. */
struct apply_reader {
	struct apply a;
};

int apply_reader_open(struct apply *src, struct apply_reader **out)
{
	*out = NULL;
	struct apply_reader *r = calloc(1, sizeof *r);
	if (r == NULL)
		return MTR_ENOMEM;
	struct apply *a = &r->a;
	a->cfg = src->cfg;
	a->counts = src;
	a->cur_item = SIZE_MAX;
	a->cap = 32;
	a->nbuckets = 64;
	a->buckets = calloc(a->nbuckets, sizeof *a->buckets);
	a->lru.next = a->lru.prev = &a->lru;
	a->ires = calloc(1, sizeof *a->ires);
	a->cires = 1;
	if (a->buckets == NULL || a->ires == NULL) {
		apply_reader_close(r);
		return MTR_ENOMEM;
	}
	int rc = apply_open_reader(src, &a->db);
	if (rc != 0) {
		apply_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void apply_reader_close(struct apply_reader *r)
{
	if (r == NULL)
		return;
	struct apply *a = &r->a;
	if (a->buckets)
		cache_clear(a);
	sqlite3_close(a->db);
	free(a->buckets);
	free(a->arena);
	free(a->narena);
	free(a->sres);
	free(a->ires);
	free(r);
}

int apply_read(struct apply_reader *r, const struct wire_item *it, uint64_t *instance, apply_result_fn cb, void *arg)
{
	struct apply *a = &r->a;
	a->alen = 0;
	a->nlen = 0;
	a->nsres = 0;
	*instance = 0;
	if (exec(a, "BEGIN") != 0)
		return MTR_ESQL;
	/* the instance read in the same transaction as the statements */
	if (meta_get(a->db, "applied", instance) != 0) {
		rollback(a);
		return MTR_ESQL;
	}
	struct ires *ir = &a->ires[0];
	ir->code = SQLITE_OK;
	ir->failed = 0;
	ir->first = 0;
	ir->raw = -1;
	ir->raw_len = 0;
	ir->nstmt = 0;
	detvfs_item_begin(it->timestamp_us, it->seed);
	struct wire_stmt_iter si;
	struct wire_stmt ws;
	const uint8_t *params = NULL;
	if (it->stmts == NULL)
		wire_stmt_begin(it, &si);
	int rc = 0;
	for (uint32_t k = 0; k < it->nstmt; k++) {
		struct psrc ps = {0};
		if (it->stmts != NULL) {
			ws = it->stmts[k];
			ps.arr = ws.params;
		} else {
			if (!wire_stmt_next(&si, &ws, &params))
				break;
			ps.p = params;
		}
		struct sres *sr = sres_new(a);
		if (sr == NULL) {
			rc = MTR_ENOMEM;
			break;
		}
		ir->nstmt++;
		int src = run_record(a, &ws, &ps, sr);
		sr->len = a->alen - sr->off;
		if (src != SQLITE_OK) {
			ir->code = sr->code;
			ir->failed = k;
			/* answered by this replica alone (as every read), but never silent */
			if (apply_local_error(sr->code))
				local_incident(a, sr->code, sr->msg >= 0 ? (const char *)a->arena + sr->msg : "");
			break;
		}
	}
	detvfs_item_end();
	rollback(a); /* read-only: nothing to keep */
	if (rc != 0)
		return rc;
	return cb ? deliver(a, it, 1, cb, arg) : 0;
}

/*
 * Run fn on a reader connection inside one read transaction, after reading
 * the applied instance from that same snapshot: the instance and what fn sees
 * belong together (a backup of a source with an open read transaction uses
 * that transaction's snapshot too).
 */
static int at_applied_snapshot(struct apply *a, uint64_t *instance, int (*fn)(sqlite3 *db, void *arg), void *arg)
{
	sqlite3 *db;
	int rc = apply_open_reader(a, &db);
	if (rc != 0)
		return rc;
	rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : MTR_ESQL;
	if (rc == 0)
		rc = meta_get(db, "applied", instance);
	if (rc == 0)
		rc = fn(db, arg);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static int digest_fn(sqlite3 *db, void *arg)
{
	return digest_db(db, arg);
}

int apply_digest(struct apply *a, uint64_t *instance, struct digest *d)
{
	return at_applied_snapshot(a, instance, digest_fn, d);
}

/* Copy the main database of src into a new file at path (replaced). */
static int backup_to(sqlite3 *src, const char *path, const char *mode)
{
	char side[4096];
	unlink(path);
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-journal", path);
	unlink(side);
	sqlite3 *dst = NULL;
	if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		mtr_log(LOG_ERROR, "[apply] cannot create %s: %s", path, sqlite3_errmsg(dst));
		sqlite3_close(dst);
		return MTR_EIO;
	}
	int rc = MTR_ESQL;
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (b != NULL) {
		int s = sqlite3_backup_step(b, -1);
		if (sqlite3_backup_finish(b) == SQLITE_OK && s == SQLITE_DONE)
			rc = 0;
	}
	if (rc == 0) {
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
		if (sqlite3_exec(dst, sql, NULL, NULL, NULL) != SQLITE_OK)
			rc = MTR_ESQL;
	}
	if (rc != 0)
		mtr_log(LOG_ERROR, "[apply] backup to %s: %s", path, sqlite3_errmsg(dst));
	sqlite3_close(dst);
	return rc;
}

static int snapshot_fn(sqlite3 *db, void *arg)
{
	return backup_to(db, arg, "DELETE");
}

int apply_snapshot(struct apply *a, const char *path, uint64_t *instance)
{
	int rc = at_applied_snapshot(a, instance, snapshot_fn, (void *)path);
	if (rc == 0)
		mtr_log(LOG_INFO, "[apply] snapshot %s at instance %llu", path, (unsigned long long)*instance);
	return rc;
}

int apply_restore(const char *dir, const char *path)
{
	if (dir == NULL || path == NULL)
		return MTR_EINVAL;
	int rc = detvfs_register();
	if (rc != 0)
		return rc;
	sqlite3 *src = NULL;
	if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(src);
		return MTR_EIO;
	}
	uint64_t inst = 0, ver = 0;
	if (meta_get(src, "applied", &inst) != 0 || meta_get(src, "schema_version", &ver) != 0 ||
	    ver != APPLY_SCHEMA_VERSION) {
		sqlite3_close(src);
		return MTR_EINVAL;
	}
	char *dpath = db_path(dir);
	if (dpath == NULL) {
		sqlite3_close(src);
		return MTR_ENOMEM;
	}
	rc = backup_to(src, dpath, "WAL");
	sqlite3_close(src);
	if (rc == 0)
		mtr_log(LOG_INFO, "[apply] restored %s from %s at instance %llu", dpath, path,
			(unsigned long long)inst);
	free(dpath);
	return rc;
}
