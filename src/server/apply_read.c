/*
 * apply_read.c - the reading side of a replica (apply.h): waiting for an
 * instance, reader connections and reads (READ datagrams), the digest, and
 * snapshots (writing one, installing one).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include "util.h"

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

int apply_wait_read(struct apply *a, uint64_t instance, uint64_t deadline_ns, const atomic_int *cancel)
{
	struct timespec dl;
	if (deadline_ns) {
		/* now_mono_ns() is CLOCK_MONOTONIC, the condition's clock too */
		dl.tv_sec = (time_t)(deadline_ns / 1000000000u);
		dl.tv_nsec = (long)(deadline_ns % 1000000000u);
	}
	int rc = 0;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		if (a->applied >= instance)
			break;
		if (a->closing || atomic_load(&a->stop_req)) {
			rc = MTR_ECLOSED;
			break;
		}
		if (cancel && atomic_load(cancel)) {
			rc = MTR_EABORT;
			break;
		}
		if (!deadline_ns) {
			pthread_cond_wait(&a->cv, &a->mu);
		} else if (pthread_cond_timedwait(&a->cv, &a->mu, &dl) == ETIMEDOUT && a->applied < instance) {
			rc = MTR_ETIMEDOUT;
			break;
		}
	}
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
	if (apply_conn_setup(db, a->cfg.provider, 1) != 0) {
		sqlite3_close(db);
		return MTR_ESQL;
	}
	*out = db;
	return 0;
}

/* ---- reads on a reader connection ---- */

/* A reader: a struct apply whose connection is a read-only one (its own
 * statement cache and arena), so reads run through the same apply_run_record()
 * and apply_deliver() as applied items. */
struct apply_reader {
	struct apply a;
	uint64_t deadline_ns; /* apply_reader_limits */
	uint32_t deadline_ms;
	const atomic_int *cancel;
	int armed; /* the read's own statements run (not BEGIN, not mtr_meta) */
	/* BEGIN, the applied instance, ROLLBACK: prepared once (three parses
	 * per read were a tenth of a point read's SQLite time) */
	sqlite3_stmt *st_begin, *st_meta, *st_end;
	uint64_t quick_ns; /* apply_reader_quick: the time budget of a read (0: none) */
	uint64_t t0_ns;    /* when the read began (quick readers) */
};

/* The reader's progress handler (every APPLY_READ_GRAIN VM steps): stop the
 * read once its deadline passed or its cancel flag is set. */
static int reader_progress(void *ud)
{
	struct apply_reader *r = ud;
	struct apply *a = &r->a;
	if (!r->armed)
		return 0;
	if (a->rd_stop)
		return 1;
	if (r->quick_ns && now_mono_ns() - r->t0_ns >= r->quick_ns) {
		a->rd_stop = APPLY_READ_LONG;
		snprintf(a->rd_msg, sizeof a->rd_msg, "read handed to a reader thread");
		return 1;
	}
	int why = r->cancel ? atomic_load_explicit(r->cancel, memory_order_relaxed) : 0;
	if (!why && r->deadline_ns && now_mono_ns() >= r->deadline_ns)
		why = APPLY_READ_DEADLINE;
	if (!why)
		return 0;
	a->rd_stop = why;
	if (why == APPLY_READ_DEADLINE)
		snprintf(a->rd_msg, sizeof a->rd_msg,
			 "read exceeded its deadline of %u ms (proxy.read_timeout) and was stopped", r->deadline_ms);
	else if (why == APPLY_READ_STOPPING)
		snprintf(a->rd_msg, sizeof a->rd_msg, "read cancelled: the server is stopping; retry");
	else
		snprintf(a->rd_msg, sizeof a->rd_msg, "read cancelled");
	return 1;
}

void apply_reader_limits(struct apply_reader *r, uint64_t deadline_ns, uint32_t deadline_ms, const atomic_int *cancel)
{
	r->deadline_ns = deadline_ns;
	r->deadline_ms = deadline_ms;
	r->cancel = cancel;
}

void apply_reader_quick(struct apply_reader *r, uint64_t budget_ns)
{
	r->quick_ns = budget_ns ? budget_ns : 1;
	sqlite3_busy_timeout(r->a.db, 0);
}

int apply_reader_stopped(const struct apply_reader *r)
{
	return r->a.rd_stop;
}

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
	/* for PRAGMA mtr_max_steps only: a reader's user flag stays 0 (the
	 * write budget is the apply connection's); its progress handler is
	 * the read's deadline and cancel (apply_reader_limits) */
	if (sqlite3_prepare_v2(a->db, "BEGIN", -1, &r->st_begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(a->db, "SELECT value FROM mtr_meta WHERE key = 'applied'", -1, &r->st_meta, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(a->db, "ROLLBACK", -1, &r->st_end, NULL) != SQLITE_OK) {
		mtr_log(LOG_ERROR, "[apply] reader on %s: %s", a->path, sqlite3_errmsg(a->db));
		apply_reader_close(r);
		return MTR_ESQL;
	}
	sqlite3_set_authorizer(a->db, apply_authorizer, a);
	sqlite3_progress_handler(a->db, APPLY_READ_GRAIN, reader_progress, r);
	*out = r;
	return 0;
}

void apply_reader_close(struct apply_reader *r)
{
	if (r == NULL)
		return;
	struct apply *a = &r->a;
	if (a->buckets)
		apply_cache_clear(a);
	sqlite3_finalize(r->st_begin);
	sqlite3_finalize(r->st_meta);
	sqlite3_finalize(r->st_end);
	sqlite3_close(a->db);
	free(a->buckets);
	free(a->arena);
	free(a->narena);
	free(a->sres);
	free(a->ires);
	free(r);
}

/* Begin the read transaction of a read and read the applied instance in it
 * (the prepared statements of the reader): 0 or MTR_ESQL (rolled back). */
static int reader_begin(struct apply_reader *r, uint64_t *instance)
{
	struct apply *a = &r->a;
	*instance = 0;
	int rc = apply_ctl(a, r->st_begin);
	if (rc != 0)
		return MTR_ESQL;
	int s = sqlite3_step(r->st_meta);
	if (s == SQLITE_ROW)
		*instance = (uint64_t)sqlite3_column_int64(r->st_meta, 0);
	sqlite3_reset(r->st_meta);
	if (s != SQLITE_ROW && s != SQLITE_DONE) {
		apply_rollback(a);
		return MTR_ESQL;
	}
	return 0;
}

static void reader_end(struct apply_reader *r)
{
	if (!sqlite3_get_autocommit(r->a.db)) {
		sqlite3_step(r->st_end);
		sqlite3_reset(r->st_end);
	}
}

int apply_read(struct apply_reader *r, const struct wire_item *it, uint64_t *instance, apply_result_fn cb, void *arg)
{
	struct apply *a = &r->a;
	a->alen = 0;
	a->nlen = 0;
	a->nsres = 0;
	a->rd_stop = 0;
	/* the instance read in the same transaction as the statements */
	if (reader_begin(r, instance) != 0)
		return MTR_ESQL;
	struct ires *ir = &a->ires[0];
	ir->code = SQLITE_OK;
	ir->failed = 0;
	ir->first = 0;
	ir->raw = -1;
	ir->raw_len = 0;
	ir->nstmt = 0;
	detvfs_item_begin(it->timestamp_us, it->seed);
	if (r->quick_ns)
		r->t0_ns = now_mono_ns();
	r->armed = 1;
	int rc = apply_run_stmts(a, it, ir);
	r->armed = 0;
	detvfs_item_end();
	if (r->quick_ns && rc == 0 && (ir->code == SQLITE_BUSY || ir->code == SQLITE_LOCKED) && !a->rd_stop)
		a->rd_stop = APPLY_READ_LONG; /* would have waited: not here */
	if (a->rd_stop == APPLY_READ_LONG) {
		reader_end(r);
		return 0; /* no answer: the caller runs it again elsewhere */
	}
	if (rc == 0 && ir->code != SQLITE_OK && apply_local_error(ir->code)) {
		/* answered by this replica alone (as every read), but never silent */
		const struct sres *sr = &a->sres[ir->first + ir->nstmt - 1];
		apply_local_incident(a, ir->code, sr->msg >= 0 ? (const char *)a->arena + sr->msg : "");
	}
	reader_end(r); /* read-only: nothing to keep */
	if (rc != 0)
		return rc;
	return cb ? apply_deliver(a, it, 1, cb, arg) : 0;
}

int apply_lookup(struct apply_reader *r, struct apply_lookup *q, size_t n, uint64_t *instance)
{
	struct apply *a = &r->a;
	*instance = 0;
	for (size_t i = 0; i < n; i++) {
		q[i].state = APPLY_LOOKUP_UNAPPLIED;
		q[i].bytes = NULL;
		q[i].len = 0;
	}
	if (apply_exec_sql(a, "BEGIN") != 0)
		return MTR_ESQL;
	/* the instance and the rows from one snapshot */
	int rc = apply_meta_get(a->db, "applied", instance);
	if (rc == 0)
		rc = apply_rq_lookup(a->db, q, n);
	apply_rollback(a);
	return rc;
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
		rc = apply_meta_get(db, "applied", instance);
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

void apply_unlink_db(const char *path)
{
	static const char *const side[] = {"", "-wal", "-shm", "-journal"};
	char p[4200];
	for (size_t i = 0; i < ARRAY_SIZE(side); i++) {
		snprintf(p, sizeof p, "%s%s", path, side[i]);
		unlink(p);
	}
}

/* Copy the main database of src into a new file at path (replaced).  0,
 * MTR_ENOSPACE (a full disk: logged at debug, the caller reports it),
 * MTR_EIO or MTR_ESQL. */
static int backup_to(sqlite3 *src, const char *path, const char *mode)
{
	apply_unlink_db(path);
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
	if (rc != 0 && apply_disk_full(sqlite3_extended_errcode(dst), sqlite3_system_errno(dst)))
		rc = MTR_ENOSPACE;
	if (rc != 0)
		mtr_log(rc == MTR_ENOSPACE ? LOG_DEBUG : LOG_ERROR, "[apply] backup to %s: %s", path,
			sqlite3_errmsg(dst));
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
	if (apply_meta_get(src, "applied", &inst) != 0 || apply_meta_get(src, "schema_version", &ver) != 0 ||
	    ver != APPLY_SCHEMA_VERSION) {
		sqlite3_close(src);
		return MTR_EINVAL;
	}
	char *dpath = apply_db_path(dir);
	if (dpath == NULL) {
		sqlite3_close(src);
		return MTR_ENOMEM;
	}
	/* Into a file beside it, renamed over it once whole: a failure (a full
	 * disk) leaves the replica as it was.  No connection is open on it, so
	 * it has no WAL (the last close checkpointed it); a stale one would be
	 * read into the new file, hence removed after the rename. */
	size_t n = strlen(dpath) + 16;
	char *tmp = malloc(n);
	if (tmp == NULL) {
		sqlite3_close(src);
		free(dpath);
		return MTR_ENOMEM;
	}
	snprintf(tmp, n, "%s.restore", dpath);
	rc = backup_to(src, tmp, "WAL");
	sqlite3_close(src);
	if (rc == 0 && rename(tmp, dpath) != 0) {
		mtr_log(LOG_ERROR, "[apply] rename %s to %s: %s", tmp, dpath, strerror(errno));
		rc = MTR_EIO;
	}
	if (rc == 0) {
		char side[4096];
		snprintf(side, sizeof side, "%s-wal", dpath);
		unlink(side);
		snprintf(side, sizeof side, "%s-shm", dpath);
		unlink(side);
		mtr_log(LOG_INFO, "[apply] restored %s from %s at instance %llu", dpath, path,
			(unsigned long long)inst);
	} else {
		apply_unlink_db(tmp);
	}
	free(tmp);
	free(dpath);
	return rc;
}

