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
 * The write budget: a progress handler counts the VM steps of the item's
 * statements (apply_exec.c); an item over mtr_max_steps fails alike on every
 * replica (SQLITE_INTERRUPT, a fixed message).  PRAGMA mtr_max_steps [= N]
 * is recognised by the authorizer (SQLITE_PRAGMA) and run by apply_exec.c.
 * apply_interrupt() (a server stopping) abandons the running instance.
 *
 * A replica-local error (apply_local_error: I/O, disk full, out of memory,
 * ...) depends on this replica, not on the items: it is never an item's
 * result.  It is logged at error with its extended code, errno and
 * statement, counted, and the whole attempt is rolled back and retried
 * (cfg.local_retries, growing delays); if it persists apply_instance returns
 * MTR_EIO and the server stops rather than let this replica diverge.  A
 * full disk (apply_disk_full) is the exception: nothing is wrong with the
 * replica, only room is missing, so the attempt is rolled back and retried
 * every cfg.full_retry_ms for as long as it takes, without a limit and
 * without an error line per attempt (the server reports the state, doc/
 * server.md "A full disk"); the applied instance stays the last consistent
 * one meanwhile.
 *
 * The WAL hook runs after every commit on the apply connection: it publishes
 * the applied instance to apply_wait() and asks the checkpointer thread (own
 * connection) for a PASSIVE checkpoint once wal_pages / CK_STEP_DIV frames
 * are left to copy; at WAL_RESTART_X x wal_pages the apply thread restarts
 * the WAL between two instances (see "The WAL bound" below).
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
#include "apply_int.h"
#include "detvfs.h"
#include "log.h"
#include "metronome.h"
#include "result.h"
#include "localsrc.h"
#include "util.h"

static const char deny_txn_msg[] = "transaction control (BEGIN, COMMIT, END, ROLLBACK) is not allowed inside an item";
static const char deny_sp_msg[] = "savepoint names beginning with mtr_ are reserved by the replica";
static const char deny_attach_msg[] = "ATTACH and DETACH are not allowed in replicated statements";
static const char deny_pragma_msg[] = "unknown Metronome PRAGMA (the PRAGMAs named mtr_* are the cluster's: mtr_max_steps)";
/* The replica's own tables: items may read them, not write them. */
static const struct {
	const char *name, *msg;
} replica_tables[] = {
	{"mtr_meta", "mtr_meta is maintained by the replica and cannot be modified"},
	{"mtr_cursor", "mtr_cursor is maintained by the replica and cannot be modified"},
	{"mtr_requests", "mtr_requests is maintained by the replica and cannot be modified"},
	{"mtr_conf", "mtr_conf is maintained by the replica and cannot be modified"},
};

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

int apply_disk_full(int code, int sys_errno)
{
	if ((code & 0xff) == SQLITE_FULL)
		return 1;
	return (code & 0xff) == SQLITE_IOERR && (sys_errno == ENOSPC || sys_errno == EDQUOT);
}

int apply_full(struct apply *a)
{
	return atomic_load(&a->full);
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
void apply_code_str(int code, char *buf, size_t n)
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
void apply_excerpt(char *buf, size_t n, const char *sql, size_t len)
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
void apply_local_incident(struct apply *a, int code, const char *msg)
{
	char cs[64], where[64] = "";
	apply_code_str(code, cs, sizeof cs);
	struct apply *c = a->counts ? a->counts : a;
	if (c != a)
		snprintf(where, sizeof where, "read: ");
	else if (a->cur_instance != 0 && a->cur_item != SIZE_MAX)
		snprintf(where, sizeof where, "instance %llu item %zu: ", (unsigned long long)a->cur_instance,
			 a->cur_item);
	else if (a->cur_instance != 0)
		snprintf(where, sizeof where, "instance %llu: ", (unsigned long long)a->cur_instance);
	if (c == a && apply_disk_full(code, a->err_errno)) {
		/* the state, not an incident: told once (warn) when it starts */
		a->full_hit = 1;
		mtr_log(atomic_load(&a->full) ? LOG_DEBUG : LOG_WARN,
			"[apply] %sdisk full: %s %s (errno %d: %s) in: %s: rolled back, tried again every %u ms", where,
			cs, msg, a->err_errno, a->err_errno ? strerror(a->err_errno) : "none", a->err_stmt,
			a->cfg.full_retry_ms);
		return;
	}
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
int apply_sql_fail(struct apply *a, const char *sql)
{
	int code = sqlite3_extended_errcode(a->db);
	a->err_errno = sqlite3_system_errno(a->db);
	apply_excerpt(a->err_stmt, sizeof a->err_stmt, sql, strlen(sql));
	if (apply_local_error(code)) {
		apply_local_incident(a, code, sqlite3_errmsg(a->db));
		return ATTEMPT_LOCAL;
	}
	mtr_log(LOG_ERROR, "[apply] %s: %s", sql, sqlite3_errmsg(a->db));
	return MTR_ESQL;
}

/* ---- hooks ---- */

/*
 * The cluster PRAGMAs, mtr_max_steps [= N] and foreign_keys [= B]: SQLite
 * compiles an unknown PRAGMA to a no-op (and foreign_keys, inside the
 * instance's transaction, to one that cannot change it), after asking the
 * authorizer (SQLITE_PRAGMA, name, value), which is where a replica learns
 * that the statement just prepared is one of ours: the caller
 * (apply_exec.c) runs it in place of what SQLite made of it.  On every
 * connection (readers too: their user flag is 0), whoever prepares.
 */
static int authorize_pragma(struct apply *a, const char *name, const char *value)
{
	if (sqlite3_stricmp(name, "mtr_max_steps") == 0) {
		a->pragma_which = APPLY_PRAGMA_MAX_STEPS;
	} else if (sqlite3_stricmp(name, "foreign_keys") == 0) {
		a->pragma_which = APPLY_PRAGMA_FOREIGN_KEYS;
	} else {
		a->deny_msg = deny_pragma_msg;
		return SQLITE_DENY;
	}
	a->pragma = value ? APPLY_PRAGMA_SET : APPLY_PRAGMA_GET;
	if (value == NULL || strlen(value) >= sizeof a->pragma_val)
		a->pragma_val[0] = '\0'; /* too long for a valid value */
	else
		memcpy(a->pragma_val, value, strlen(value) + 1);
	return SQLITE_OK;
}

int apply_authorizer(void *ud, int action, const char *a1, const char *a2, const char *dbn, const char *trig)
{
	(void)dbn;
	(void)trig;
	struct apply *a = ud;
	if (action == SQLITE_PRAGMA && a1 != NULL &&
	    (sqlite3_strnicmp(a1, "mtr_", 4) == 0 || sqlite3_stricmp(a1, "foreign_keys") == 0))
		return authorize_pragma(a, a1, a2);
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
	case SQLITE_READ:     /* a1: the table (dbstat, pragma_X through a view) */
	case SQLITE_FUNCTION: /* a2: the function */
	{
		/* The front end refuses these by name; a view hides the name
		 * (src/common/localsrc.h).  The cluster tables refuse
		 * themselves (clustervt.c), with the same message. */
		const char *name = action == SQLITE_READ ? a1 : a2;
		int k = name ? local_source_find(name, action == SQLITE_FUNCTION) : -1;
		if (k < 0 || local_sources[k].kind == LOCAL_CLUSTER_TABLE)
			return SQLITE_OK;
		local_source_msg(k, a->deny_buf, sizeof a->deny_buf);
		a->deny_msg = a->deny_buf;
		return SQLITE_DENY;
	}
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

/* Log a failed checkpoint of db (who: "" or " in the apply thread") and count
 * it: a full disk is a state the server reports (the next checkpoint copies
 * what this one could not), anything else a replica-local incident.  The
 * checkpoint runs outside any instance: the instances stand, the WAL grows. */
static void ckpt_failed(struct apply *a, sqlite3 *db, const char *who)
{
	char cs[64];
	int code = sqlite3_extended_errcode(db), e = sqlite3_system_errno(db);
	apply_code_str(code, cs, sizeof cs);
	int full = apply_disk_full(code, e);
	mtr_log(full ? LOG_DEBUG : LOG_ERROR, "[apply] checkpoint%s failed: %s: %s (errno %d)", who, cs,
		sqlite3_errmsg(db), e);
	pthread_mutex_lock(&a->mu);
	a->st.local_errors += !full;
	pthread_mutex_unlock(&a->mu);
}

/*
 * The WAL bound.  SQLite writes a WAL from its start again only when a writer
 * begins a transaction with every frame copied into the database and no
 * reader on a WAL snapshot; under a steady load the checkpointer's PASSIVE
 * passes never catch up with apply (it commits while they copy), so the WAL
 * would grow without end.  The apply thread, the only writer, closes the gap
 * between two instances: once the WAL is WAL_RESTART_X x wal_pages long it
 * holds the checkpointer (no new pass) and, when the checkpointer is idle and
 * its last pass left at most wal_pages frames to copy, runs a RESTART
 * checkpoint itself: it copies that rest, waits RESTART_BUSY_MS at most for
 * the readers still on a WAL snapshot, and the next instance's transaction
 * writes the WAL from its start (truncated to journal_size_limit).  At
 * WAL_LIMIT_X x wal_pages (back-pressure) it waits for the running pass to
 * end rather than for a moment the checkpointer is idle.  A restart that met
 * a reader (BUSY) is tried again after the checkpointer's next pass.
 */
#define RESTART_BUSY_MS 5

/* Frames left to copy from which a checkpointer pass is asked for. */
static unsigned ck_step(const struct apply *a)
{
	return a->cfg.wal_pages / CK_STEP_DIV ? a->cfg.wal_pages / CK_STEP_DIV : 1;
}

/* Of a WAL of n frames, those the checkpointer's last pass left to copy
 * (a->mu held). */
static unsigned ck_left(const struct apply *a, unsigned n)
{
	return n - (a->ck_copied < n ? a->ck_copied : n);
}

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
	(void)name;
	struct apply *a = ud;
	unsigned w = a->cfg.wal_pages, n = pages > 0 ? (unsigned)pages : 0;
	int restart = 0, limit = n >= WAL_LIMIT_X * w;
	pthread_mutex_lock(&a->mu);
	a->wal_frames = n;
	unsigned left = ck_left(a, n);
	if (a->pending > a->applied) {
		a->applied = a->pending;
		pthread_cond_broadcast(&a->cv);
	}
	if (n >= WAL_RESTART_X * w && !a->closing && a->rs_failed != a->ck_passes + 1) {
		if (limit) {
			a->ck_hold = 1;
			while (a->ck_running && !a->closing)
				pthread_cond_wait(&a->ckcv, &a->mu);
			restart = !a->closing;
		} else if (a->ck_running) {
			a->ck_hold = 1; /* no new pass: restart when this one ends */
		} else if (left <= w) {
			a->ck_hold = 1;
			restart = 1;
		} else {
			a->ck_hold = 0; /* too much left: one more pass first */
		}
	}
	if (left >= ck_step(a) && !a->ck_hold && !a->ck_running) {
		a->ck_want = 1;
		pthread_cond_signal(&a->ckcv);
	}
	pthread_mutex_unlock(&a->mu);
	if (!restart)
		return SQLITE_OK;
	int nlog = 0, nck = 0;
	uint64_t t0 = now_mono_ns();
	sqlite3_busy_timeout(db, RESTART_BUSY_MS);
	int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_RESTART, &nlog, &nck);
	sqlite3_busy_timeout(db, BUSY_MS);
	uint64_t us = (now_mono_ns() - t0) / 1000;
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		ckpt_failed(a, db, " in the apply thread");
	pthread_mutex_lock(&a->mu);
	a->ck_hold = 0;
	if (rc == SQLITE_OK) {
		a->ck_copied = 0;
		a->st.wal_restarts++;
	} else {
		/* a reader on a WAL snapshot (BUSY) or an error: the
		 * checkpointer copies on; try again after its next pass */
		a->rs_failed = a->ck_passes + 1;
		if (nck > 0)
			a->ck_copied = (unsigned)nck;
		a->ck_want = 1;
		pthread_cond_signal(&a->ckcv);
	}
	pthread_mutex_unlock(&a->mu);
	mtr_log(LOG_DEBUG, "[apply] WAL at %u pages: restart in the apply thread rc=%d (%d/%d frames, %llu us%s)", n,
		rc, nck, nlog, (unsigned long long)us, limit ? ", back-pressure" : "");
	return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
	struct apply *a = arg;
	mtr_thread_name("mtr-checkpoint");
	sqlite3 *db = NULL;
	/* Read once: a connection opens the WAL with its first read, and a
	 * checkpoint on a connection that has not opened it copies nothing
	 * (SQLITE_OK with -1 frames). */
	int rc = sqlite3_open_v2(a->path, &db, SQLITE_OPEN_READWRITE, DETVFS_NAME);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, BUSY_MS); /* that read only: PASSIVE never waits */
		rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		mtr_log(LOG_ERROR, "[apply] checkpointer cannot open %s: %s", a->path, sqlite3_errmsg(db));
		sqlite3_close(db);
		db = NULL;
	}
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while ((!a->ck_want || a->ck_hold) && !a->closing)
			pthread_cond_wait(&a->ckcv, &a->mu);
		if (a->closing)
			break;
		a->ck_want = 0;
		a->ck_running = 1;
		unsigned had = a->ck_copied;
		pthread_mutex_unlock(&a->mu);
		int nlog = 0, nck = 0;
		if (db != NULL) {
			rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &nlog, &nck);
			if (rc != SQLITE_OK && rc != SQLITE_BUSY)
				ckpt_failed(a, db, "");
			mtr_log(LOG_TRACE, "[apply] checkpoint rc=%d %d/%d frames", rc, nck, nlog);
		}
		pthread_mutex_lock(&a->mu);
		a->ck_running = 0;
		if (nck > 0)
			a->ck_copied = (unsigned)nck;
		a->ck_passes++;
		a->st.checkpoints++;
		/* the commits during the pass found it running and asked for
		 * nothing: when they left a step to copy, another pass, as long
		 * as this one got somewhere (a reader on an old snapshot stops
		 * it copying; the next commit asks again then) */
		if (nck > 0 && (unsigned)nck > had && !a->ck_hold && ck_left(a, a->wal_frames) >= ck_step(a))
			a->ck_want = 1;
		pthread_cond_broadcast(&a->ckcv); /* the apply thread may wait for the pass */
	}
	pthread_mutex_unlock(&a->mu);
	sqlite3_close(db);
	return NULL;
}

/* ---- open / close ---- */

/* 0, or as apply_sql_fail(). */
int apply_exec_sql(struct apply *a, const char *sql)
{
	int rc = sqlite3_exec(a->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return apply_sql_fail(a, sql);
	return 0;
}

/* Run a prepared control statement (SAVEPOINT, RELEASE, ROLLBACK TO): 0, or
 * as apply_sql_fail(). */
int apply_ctl(struct apply *a, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		rc = apply_sql_fail(a, sqlite3_sql(st));
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

char *apply_db_path(const char *dir)
{
	size_t n = strlen(dir) + sizeof(APPLY_DB_NAME) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, APPLY_DB_NAME);
	return p;
}

/* Read mtr_meta(key) as an integer into *v (0 when absent).  db may be any
 * connection on a replica database. */
int apply_meta_get(sqlite3 *db, const char *key, uint64_t *v)
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
int apply_conn_setup(sqlite3 *db, const struct clustervt_provider *p, int replica_state)
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
	if (a->cfg.full_retry_ms == 0)
		a->cfg.full_retry_ms = DEFAULT_FULL_RETRY_MS;
	a->cur_item = SIZE_MAX;
	a->counts = a;
	a->cap = a->cfg.stmt_cache;
	a->nbuckets = 16;
	while (a->nbuckets < 2 * a->cap)
		a->nbuckets *= 2;
	a->buckets = calloc(a->nbuckets, sizeof *a->buckets);
	a->lru.next = a->lru.prev = &a->lru;
	a->path = apply_db_path(cfg->dir);
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
	/* the WAL restarts at about WAL_RESTART_X x wal_pages (wal_hook): keep
	 * that much allocated rather than shrink and regrow the file each time */
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA journal_size_limit=%lld;",
		 cfg->durability == APPLY_SYNC_FULL ? "FULL" : "NORMAL",
		 (long long)a->cfg.wal_pages * (WAL_RESTART_X + 1) * 4096);
	if (apply_conn_setup(a->db, cfg->provider, 0) != 0 || detvfs_functions_register(a->db, &a->rng) != 0 ||
	    apply_exec_sql(a, pragmas) != 0 ||
	    apply_exec_sql(a, "BEGIN IMMEDIATE;"
		    "CREATE TABLE IF NOT EXISTS mtr_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
		    "INSERT OR IGNORE INTO mtr_meta VALUES('applied', 0);"
		    "INSERT OR IGNORE INTO mtr_meta VALUES('schema_version', 1);"
		    "CREATE TABLE IF NOT EXISTS mtr_cursor(stream INTEGER PRIMARY KEY, last INTEGER NOT NULL);"
		    "CREATE TABLE IF NOT EXISTS mtr_requests(client INTEGER NOT NULL, request INTEGER NOT NULL,"
		    " ts INTEGER NOT NULL, result, top INTEGER, PRIMARY KEY(client, request)) WITHOUT ROWID;"
		    "CREATE TABLE IF NOT EXISTS mtr_conf(inst INTEGER PRIMARY KEY, conf BLOB NOT NULL);"
		    "UPDATE mtr_meta SET value = 2 WHERE key = 'schema_version' AND value = 1;"
		    "COMMIT") != 0) {
		apply_close(a);
		return MTR_ESQL;
	}
	uint64_t ver = 0;
	if (apply_meta_get(a->db, "applied", &a->applied) != 0 || apply_meta_get(a->db, "schema_version", &ver) != 0 ||
	    apply_meta_get(a->db, "origin", &a->origin) != 0 ||
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
	    sqlite3_prepare_v3(a->db, "UPDATE mtr_meta SET value = value WHERE 0", -1, SQLITE_PREPARE_PERSISTENT,
			       &a->zero_changes, NULL) != SQLITE_OK ||
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
	if (apply_limit_load(a) != 0 || apply_fk_load(a) != 0) {
		apply_close(a);
		return MTR_ESQL;
	}
	for (sqlite3_stmt *p = sqlite3_next_stmt(a->db, NULL); p; p = sqlite3_next_stmt(a->db, p))
		a->own_stmts++;
	a->head = sqlite3_next_stmt(a->db, NULL);
	sqlite3_set_authorizer(a->db, apply_authorizer, a);
	sqlite3_progress_handler(a->db, APPLY_STEP_GRAIN, apply_progress, a);
	sqlite3_wal_hook(a->db, wal_hook, a);
	if (pthread_create(&a->ck, NULL, checkpointer, a) != 0) {
		apply_close(a);
		return MTR_ENOMEM;
	}
	a->ck_started = 1;
	/* The VM step budget is counted in SQLite's bytecode: every server of a
	 * cluster must run the same SQLite (doc/determinism.md). */
	mtr_log(LOG_INFO, "[apply] opened %s at instance %llu (SQLite %s %.30s, mtr_max_steps %lld)", a->path,
		(unsigned long long)a->applied, sqlite3_libversion(), sqlite3_sourceid(), a->max_steps);
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
		apply_cache_clear(a);
	sqlite3_finalize(a->set_applied);
	sqlite3_finalize(a->set_cursor);
	free(a->conf);
	sqlite3_finalize(a->zero_changes);
	sqlite3_finalize(a->sp_begin);
	sqlite3_finalize(a->sp_release);
	sqlite3_finalize(a->sp_rollback);
	sqlite3_finalize(a->rq_get);
	sqlite3_finalize(a->rq_load);
	sqlite3_finalize(a->rq_put);
	sqlite3_finalize(a->rq_floor);
	sqlite3_finalize(a->rq_forget);
	sqlite3_finalize(a->rq_prune);
	apply_rq_forget_all(a);
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

void apply_interrupt(struct apply *a, int on)
{
	if (a != NULL) {
		atomic_store(&a->stop_req, on ? 1 : 0);
		if (on)
			apply_wake(a); /* reads waiting for an instance end too */
	}
}

void apply_wake(struct apply *a)
{
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

long long apply_item_steps(struct apply *a, size_t index)
{
	return index < a->cires ? a->ires[index].steps : 0;
}

long long apply_max_steps(struct apply *a)
{
	if (a->limit_dirty) /* set by the last item: what the next one gets */
		apply_limit_load(a);
	return a->max_steps;
}

/* *v = mtr_meta(key) as an integer, 0 when absent.  0 or MTR_*. */
static int meta_get(struct apply *a, const char *key, long long *v)
{
	static const char sql[] = "SELECT value FROM mtr_meta WHERE key = ?1";
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(a->db, sql, -1, &s, NULL) != SQLITE_OK)
		return apply_sql_fail(a, sql);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : apply_sql_fail(a, sql);
	sqlite3_finalize(s);
	return rc;
}

/*
 * PRAGMA foreign_keys, cluster state in mtr_meta('foreign_keys') (absent:
 * off, SQLite's default): SQLite changes the setting only outside a
 * transaction, so the apply connection takes it up after the COMMIT of the
 * instance whose item set it, and at open: it applies from the next
 * instance on, at the same instance on every replica.
 */
int apply_fk_load(struct apply *a)
{
	long long v;
	int rc = meta_get(a, "foreign_keys", &v);
	if (rc != 0)
		return rc;
	a->fk_touched = 0;
	int on = v != 0;
	if (on == a->fk_on)
		return 0;
	const char *set = on ? "PRAGMA foreign_keys = ON" : "PRAGMA foreign_keys = OFF";
	if (sqlite3_exec(a->db, set, NULL, NULL, NULL) != SQLITE_OK)
		return apply_sql_fail(a, set);
	a->fk_on = on;
	mtr_log(LOG_INFO, "[apply] foreign keys %s from instance %llu on", on ? "enforced" : "not enforced",
		(unsigned long long)a->cur_instance + 1);
	return 0;
}

int apply_limit_load(struct apply *a)
{
	long long v;
	int rc = meta_get(a, "max_steps", &v);
	if (rc != 0)
		return rc;
	/* only PRAGMA mtr_max_steps writes it, within the bounds */
	a->max_steps = v >= APPLY_MAX_STEPS_MIN && v <= APPLY_MAX_STEPS_MAX ? v : APPLY_MAX_STEPS_DEFAULT;
	a->limit_dirty = 0;
	return 0;
}

uint64_t apply_applied(struct apply *a)
{
	pthread_mutex_lock(&a->mu);
	uint64_t v = a->applied;
	pthread_mutex_unlock(&a->mu);
	return v;
}

uint64_t apply_origin(struct apply *a)
{
	return a->origin;
}

void apply_stats(struct apply *a, struct apply_stats *st)
{
	pthread_mutex_lock(&a->mu);
	*st = a->st;
	pthread_mutex_unlock(&a->mu);
}

void apply_rollback(struct apply *a)
{
	if (!sqlite3_get_autocommit(a->db))
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * One attempt at the instance: BEGIN IMMEDIATE, the items, the replica's
 * own rows, COMMIT.  0 (committed), ATTEMPT_FORCED, ATTEMPT_LOCAL, or MTR_*
 * (< 0).  The caller rolls back whatever did not commit.
 */
/* The configuration instance chose (apply_set_conf), recorded in the
 * instance's transaction: mtr_conf(inst, conf).  0 or MTR_ESQL. */
static int record_conf(struct apply *a, uint64_t instance)
{
	if (a->conf == NULL || a->conf_inst != instance)
		return 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(a->db, "INSERT OR REPLACE INTO mtr_conf VALUES(?1, ?2)", -1, &st, NULL) != SQLITE_OK)
		return apply_sql_fail(a, "INSERT INTO mtr_conf");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)instance);
	sqlite3_bind_blob(st, 2, a->conf, (int)a->conf_len, SQLITE_STATIC);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : apply_sql_fail(a, "INSERT INTO mtr_conf");
	sqlite3_finalize(st);
	return rc;
}

int apply_set_conf(struct apply *a, uint64_t instance, const uint8_t *conf, size_t len)
{
	if (a == NULL || conf == NULL || len == 0 || len > INT32_MAX)
		return MTR_EINVAL;
	uint8_t *c = malloc(len);
	if (c == NULL)
		return MTR_ENOMEM;
	memcpy(c, conf, len);
	free(a->conf);
	a->conf = c;
	a->conf_len = len;
	a->conf_inst = instance;
	return 0;
}

int apply_confs(struct apply *a, int (*fn)(void *arg, uint64_t inst, const uint8_t *conf, size_t len), void *arg)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(a->db, "SELECT inst, conf FROM mtr_conf ORDER BY inst", -1, &s, NULL) != SQLITE_OK)
		return MTR_ESQL;
	int rc, ret = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && ret == 0)
		ret = fn(arg, (uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
			 (size_t)sqlite3_column_bytes(s, 1));
	sqlite3_finalize(s);
	if (ret != 0)
		return ret;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : MTR_ESQL;
}

static int attempt(struct apply *a, uint64_t instance, const struct wire_item *items, size_t n)
{
	a->alen = 0;
	a->nlen = 0;
	a->nsres = 0;
	a->cur_item = SIZE_MAX;
	if (a->limit_touched) /* an attempt rolled back may have changed it */
		a->limit_dirty = 1;
	a->schema_check = 1;
	int rc = apply_exec_sql(a, "BEGIN IMMEDIATE");
	/* changes() starts from 0 in every attempt: the connection's count
	 * would be that of the last write it ran, the previous instance's
	 * bookkeeping on one replica, nothing on one just opened from a
	 * snapshot, a failed attempt's (doc/determinism.md). */
	if (rc == 0)
		rc = apply_ctl(a, a->zero_changes);
	if (rc == 0)
		rc = apply_rq_begin(a, n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (atomic_load(&a->stop_req)) {
			rc = ATTEMPT_STOP;
			break;
		}
		a->cur_item = i;
		rc = apply_run_item(a, i, &items[i]);
	}
	a->cur_item = SIZE_MAX;
	if (rc == 0)
		rc = apply_record_cursor(a, items, n);
	if (rc == 0)
		rc = apply_rq_finish(a);
	if (rc == 0)
		rc = apply_rq_prune(a, instance, items, n);
	if (rc == 0)
		rc = record_conf(a, instance);
	if (rc == 0) {
		sqlite3_bind_int64(a->set_applied, 1, (sqlite3_int64)instance);
		if (sqlite3_step(a->set_applied) != SQLITE_DONE)
			rc = apply_sql_fail(a, sqlite3_sql(a->set_applied));
		sqlite3_reset(a->set_applied);
	}
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&a->mu);
	a->pending = instance;
	pthread_mutex_unlock(&a->mu);
	if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		if (apply_local_error(sqlite3_extended_errcode(a->db)))
			return apply_sql_fail(a, "COMMIT");
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
		a->full_hit = 0;
		rc = attempt(a, instance, items, n);
		if (rc == 0) {
			apply_rq_committed(a);
			if (a->conf != NULL && a->conf_inst == instance) {
				free(a->conf);
				a->conf = NULL;
			}
			a->limit_touched = 0;
			if (atomic_load(&a->full)) {
				atomic_store(&a->full, 0);
				mtr_log(LOG_INFO, "[apply] instance %llu committed: the disk has room again",
					(unsigned long long)instance);
			}
			if (a->fk_touched)
				rc = apply_fk_load(a);
			break;
		}
		apply_rollback(a);
		pthread_mutex_lock(&a->mu);
		a->pending = a->applied;
		pthread_mutex_unlock(&a->mu);
		if (rc == ATTEMPT_FORCED || rc == ATTEMPT_SAVEPOINTS) /* the items marked failed are kept */
			continue;
		if (rc == ATTEMPT_STOP) {
			mtr_log(LOG_INFO,
				"[apply] instance %llu interrupted by the stop: rolled back, nothing recorded "
				"(applied stays %llu); it is applied again after a restart",
				(unsigned long long)instance, (unsigned long long)instance - 1);
			rc = MTR_ECLOSED;
			break;
		}
		if (rc != ATTEMPT_LOCAL)
			break;
		if (a->full_hit) {
			/* A full disk: wait for room, for as long as it takes (the
			 * stop ends the wait: the next attempt sees stop_req). */
			atomic_store(&a->full, 1);
			pthread_mutex_lock(&a->mu);
			a->st.disk_full++;
			pthread_mutex_unlock(&a->mu);
			for (unsigned waited = 0; waited < a->cfg.full_retry_ms && !atomic_load(&a->stop_req);
			     waited += 50) {
				struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
				while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
					;
			}
			if (atomic_load(&a->stop_req)) {
				rc = MTR_ECLOSED;
				mtr_log(LOG_INFO, "[apply] instance %llu waited for disk space until the stop; applied "
						  "again after a restart", (unsigned long long)instance);
				break;
			}
			continue;
		}
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
	if (a->sp_all > 0)
		a->sp_all--;
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
	for (size_t i = 0; i < n; i++) {
		if (a->ires[i].code != SQLITE_OK)
			a->st.items_failed++;
		if (a->ires[i].code == SQLITE_INTERRUPT && a->ires[i].raw < 0) /* only the budget interrupts an item */
			a->st.budget_exceeded++;
	}
	pthread_mutex_unlock(&a->mu);
	mtr_log(LOG_TRACE, "[apply] instance %llu: %zu items in %llu us", (unsigned long long)instance, n,
		(unsigned long long)((now_mono_ns() - t0) / 1000));
	if (cb == NULL)
		return 0;
	return apply_deliver(a, items, n, cb, arg);
}

