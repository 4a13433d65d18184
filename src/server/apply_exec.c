/*
 * apply_exec.c - running one item on the apply connection (apply_int.h):
 * the prepared-statement cache (hash by SQL text, LRU), the arena that
 * collects results while the instance's transaction runs, binding and
 * stepping each statement record, and turning the item's outcome into its
 * struct apply_result after COMMIT.  Also the write budget (the progress
 * handler, the step counters, doc/determinism.md "The write budget") and
 * PRAGMA mtr_max_steps.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* The level for a log line about a failure a client's statement caused:
 * warn for the first in a minute (with how many were quiet before it),
 * debug for the rest, so a client cannot flood the log with them. */
static int apply_user_warn_level(struct apply *a, int kind, unsigned *quiet)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	*quiet = 0;
	if (now >= a->user_warn[kind].next_ms) {
		a->user_warn[kind].next_ms = now + 60000;
		*quiet = a->user_warn[kind].quiet;
		a->user_warn[kind].quiet = 0;
		return LOG_WARN;
	}
	a->user_warn[kind].quiet++;
	return LOG_DEBUG;
}

/* ---- arena ---- */

int apply_arena_reserve(struct apply *a, size_t n)
{
	return mtr_grow(&a->arena, &a->acap, a->alen + n, 4096) == 0 ? 0 : MTR_ENOMEM;
}

static long arena_str(struct apply *a, const char *s)
{
	size_t n = strlen(s) + 1;
	if (apply_arena_reserve(a, n) != 0)
		return -1;
	memcpy(a->arena + a->alen, s, n);
	a->alen += n;
	return (long)(a->alen - n);
}

/* Append the current row of s in the row format (doc/apply.md). */
static int arena_row(struct apply *a, sqlite3_stmt *s)
{
	int n = sqlite3_column_count(s);
	if (apply_arena_reserve(a, 2) != 0)
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
		if (apply_arena_reserve(a, wire_value_size(&v)) != 0)
			return MTR_ENOMEM;
		a->alen = (size_t)(wire_value_put(a->arena + a->alen, &v) - a->arena);
	}
	return 0;
}

static struct sres *apply_sres_new(struct apply *a)
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

void apply_cache_clear(struct apply *a)
{
	while (a->count > 0)
		cache_remove(a, a->lru.prev);
}

/* ---- executing an item ---- */


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
 * in place of SQLite's "not authorized" (SQLITE_AUTH, or SQLITE_ERROR "not
 * authorized to use function: X" for a denied function). */
static void set_db_error(struct apply *a, struct sres *r)
{
	int code = sqlite3_extended_errcode(a->db);
	a->err_errno = sqlite3_system_errno(a->db);
	if (code == SQLITE_OK)
		code = SQLITE_ERROR;
	if (a->over) /* whatever a module made of the interrupt: the budget's error */
		set_error(a, r, SQLITE_INTERRUPT, a->budget_msg);
	else if (a->rd_stop) /* a reader's read cancelled, past its deadline, or stopped */
		set_error(a, r, SQLITE_INTERRUPT, a->rd_msg);
	else if ((code == SQLITE_AUTH || code == SQLITE_ERROR) && a->deny_msg)
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

/* ---- the write budget (doc/determinism.md "The write budget") ---- */

int apply_progress(void *ud)
{
	struct apply *a = ud;
	if (!a->counting)
		return 0;
	if (atomic_load_explicit(&a->stop_req, memory_order_relaxed)) {
		a->stopped = 1;
		return 1;
	}
	if (a->over)
		return 1;
	a->steps += APPLY_STEP_GRAIN;
	if (a->steps > a->max_steps) {
		a->over = 1;
		snprintf(a->budget_msg, sizeof a->budget_msg, APPLY_BUDGET_MSG, a->max_steps);
		return 1;
	}
	return 0;
}

void apply_stmts_reset(struct apply *a)
{
	size_t n = 0;
	for (sqlite3_stmt *p = sqlite3_next_stmt(a->db, NULL); p; p = sqlite3_next_stmt(a->db, p), n++)
		sqlite3_stmt_status(p, SQLITE_STMTSTATUS_VM_STEP, 1);
	if (n == a->own_stmts + a->count)
		a->foreign = 0;
	a->head = sqlite3_next_stmt(a->db, NULL);
}

/*
 * After a statement record: did a statement that is not ours appear on the
 * connection (a virtual-table module prepares and keeps its own)?  Then the
 * newest statement is neither the one seen last nor the one the record put
 * in the cache (kept, NULL if none) right after it.  A false alarm (an
 * eviction) only costs a reset walk per item until apply_stmts_reset finds
 * ours alone.
 */
static void stmts_check(struct apply *a, sqlite3_stmt *kept)
{
	if (!a->user)
		return;
	sqlite3_stmt *h = sqlite3_next_stmt(a->db, NULL);
	if (h == a->head)
		return;
	if (kept == NULL || h != kept || sqlite3_next_stmt(a->db, kept) != a->head)
		a->foreign = 1;
	a->head = h;
}

/*
 * Before a cached statement runs: make sure the schema is loaded, so that a
 * lazy reload (SQLite unloads it when a rollback undoes DDL) happens here,
 * uncounted, and not inside sqlite3_step's re-prepare, where it would be
 * counted on the replicas whose cache held the statement and not on the
 * others (a fresh statement loads it in sqlite3_prepare, uncounted).  Only
 * a rollback unloads it: after an item that failed, was rolled back (READ)
 * or ran more than one statement, at the start of an attempt, and before
 * every statement of an item after its first (schema_check).
 */
static void schema_ensure(struct apply *a)
{
	if (a->user && a->schema_check) {
		sqlite3_table_column_metadata(a->db, "main", "mtr_meta", NULL, NULL, NULL, NULL, NULL, NULL);
		a->schema_check = 0;
	}
}

/* The rows a statement just run changed, as sqlite3_changes() counts
 * them, or 0 when it was no INSERT, UPDATE or DELETE (DDL, a SELECT, a
 * PRAGMA): sqlite3_changes() then still tells the last such statement's
 * count on this connection, which may be another item's, the replica's
 * own bookkeeping, or nothing after a restart or a snapshot, and so
 * differs between replicas (doc/determinism.md).  c0 is
 * sqlite3_total_changes64() before the statement ran. */
static int64_t stmt_changes(struct apply *a, int64_t c0)
{
	return sqlite3_total_changes64(a->db) != c0 ? sqlite3_changes64(a->db) : 0;
}

/* Step st to the end, collecting rows into r.  Returns SQLITE_DONE or the
 * error (recorded in r).  A user statement counts towards the budget from
 * a step counter of 0, whatever the statement ran before. */
static int step_all(struct apply *a, sqlite3_stmt *st, struct sres *r)
{
	int rc;
	sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
	a->counting = a->user;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (arena_row(a, st) != 0) {
			a->counting = 0;
			sqlite3_reset(st);
			set_error(a, r, SQLITE_NOMEM, "out of memory collecting result rows");
			return SQLITE_NOMEM;
		}
		r->ncols = (uint32_t)sqlite3_column_count(st);
		r->nrows++;
	}
	a->counting = 0;
	if (rc == SQLITE_DONE && (a->over || a->stopped || a->rd_stop)) /* a module swallowed the interrupt */
		rc = SQLITE_INTERRUPT;
	if (rc != SQLITE_DONE) {
		/* A statement that fails after some rows is an error with no rows
		 * (the client reads an error, not half a result with no column
		 * names): drop what it collected. */
		a->alen = r->off;
		r->nrows = 0;
		r->ncols = 0;
		set_db_error(a, r);
	} else if (r->nrows > 0) {
		record_names(a, st, r);
	}
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

/* Write mtr_meta(key) = v as the replica's own write (in the item's
 * savepoint).  SQLITE_OK or the error (in r). */
static int meta_set(struct apply *a, const char *key, long long v, struct sres *r)
{
	static const char set[] = "INSERT INTO mtr_meta(key, value) VALUES(?1, ?2) "
				  "ON CONFLICT(key) DO UPDATE SET value = excluded.value";
	sqlite3_stmt *st = NULL;
	int user = a->user;
	a->user = 0; /* the replica's own write of mtr_meta */
	if (sqlite3_prepare_v2(a->db, set, -1, &st, NULL) != SQLITE_OK) {
		a->user = user;
		set_db_error(a, r);
		return r->code;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	int rc = sqlite3_step(st);
	a->user = user;
	if (rc != SQLITE_DONE)
		set_db_error(a, r);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : r->code;
}

/* A boolean as SQLite's PRAGMAs take it: on/off, yes/no, true/false, an
 * integer (non-zero is on).  0, 1, or -1 when it is none of these. */
static int pragma_bool(const char *v)
{
	static const char *const on[] = {"on", "yes", "true"}, *const off[] = {"off", "no", "false"};
	for (int i = 0; i < 3; i++) {
		if (sqlite3_stricmp(v, on[i]) == 0)
			return 1;
		if (sqlite3_stricmp(v, off[i]) == 0)
			return 0;
	}
	char *end = NULL;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	return *v == '\0' || *end != '\0' || errno != 0 ? -1 : n != 0;
}

/*
 * The cluster PRAGMAs (the authorizer saw one: what SQLite prepared is
 * finalized unrun).  Their values are cluster state in mtr_meta, set by the
 * ordered item on every replica at the same instance, in the item's
 * savepoint (rolled back with it):
 *   mtr_max_steps [= N]  mtr_meta('max_steps'), from the next item on;
 *   foreign_keys [= B]   mtr_meta('foreign_keys'), from the next instance
 *                        on (SQLite changes it only outside a transaction).
 * A read shows the value as applied in the reading transaction.  Returns
 * SQLITE_OK or the error (in r).
 */
static int run_pragma(struct apply *a, int kind, int which, struct sres *r)
{
	int fk = which == APPLY_PRAGMA_FOREIGN_KEYS;
	if (kind == APPLY_PRAGMA_GET) {
		char sql[160];
		if (fk)
			snprintf(sql, sizeof sql,
				 "SELECT coalesce((SELECT value FROM mtr_meta WHERE key = 'foreign_keys'), 0) AS "
				 "foreign_keys");
		else
			snprintf(sql, sizeof sql,
				 "SELECT coalesce((SELECT value FROM mtr_meta WHERE key = 'max_steps'), %lld) AS "
				 "mtr_max_steps",
				 APPLY_MAX_STEPS_DEFAULT);
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
			set_db_error(a, r);
			return r->code;
		}
		int rc = step_all(a, st, r);
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	const char *v = a->pragma_val;
	if (fk) {
		int on = pragma_bool(v);
		if (on < 0) {
			set_error(a, r, SQLITE_ERROR, "PRAGMA foreign_keys takes ON or OFF (also 1/0, yes/no, true/false)");
			return SQLITE_ERROR;
		}
		int rc = meta_set(a, "foreign_keys", on, r);
		if (rc == SQLITE_OK)
			a->fk_touched = 1;
		return rc;
	}
	char *end = NULL;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || n < APPLY_MAX_STEPS_MIN || n > APPLY_MAX_STEPS_MAX) {
		char msg[160];
		snprintf(msg, sizeof msg, "PRAGMA mtr_max_steps takes an integer from %lld to %lld (VM steps per item)",
			 APPLY_MAX_STEPS_MIN, APPLY_MAX_STEPS_MAX);
		set_error(a, r, SQLITE_ERROR, msg);
		return SQLITE_ERROR;
	}
	int rc = meta_set(a, "max_steps", n, r);
	if (rc == SQLITE_OK)
		a->limit_dirty = a->limit_touched = 1;
	return rc;
}

/* Run one statement record.  Returns SQLITE_OK or the error (in r). */
static int apply_run_record(struct apply *a, const struct wire_stmt *ws, struct psrc *ps, struct sres *r)
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
		schema_ensure(a);
		int64_t c0 = sqlite3_total_changes64(a->db);
		rc = step_all(a, st, r);
		sqlite3_clear_bindings(st);
		r->changes = stmt_changes(a, c0);
		r->rowid = sqlite3_last_insert_rowid(a->db);
		if (rc != SQLITE_DONE)
			apply_excerpt(a->err_stmt, sizeof a->err_stmt, sql, ws->sql_len);
		stmts_check(a, NULL);
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	a->st.cache_misses++;
	const char *p = sql;
	int first = 1;
	sqlite3_stmt *kept = NULL;
	for (;;) {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		a->pragma = 0;
		rc = sqlite3_prepare_v3(a->db, p, (int)(end - p), SQLITE_PREPARE_PERSISTENT, &st, &tail);
		int pragma = a->pragma, which = a->pragma_which;
		a->pragma = 0;
		if (rc != SQLITE_OK) {
			set_db_error(a, r);
			apply_excerpt(a->err_stmt, sizeof a->err_stmt, p, (size_t)(end - p));
			break;
		}
		if (st == NULL) /* only whitespace or comments left */
			break;
		int last = tail == NULL || only_space(tail, end);
		int cacheable = first && last && !pragma;
		if (ws->nparams > 0 && !cacheable) {
			sqlite3_finalize(st);
			set_error(a, r, SQLITE_ERROR, "a statement record with parameters holds one statement");
			rc = SQLITE_ERROR;
			break;
		}
		if (first && ws->nparams > 0) {
			rc = bind_params(st, ws->nparams, ps);
			if (rc != SQLITE_OK) {
				set_db_error(a, r);
				sqlite3_finalize(st);
				break;
			}
		}
		int64_t c0 = sqlite3_total_changes64(a->db);
		if (pragma) {
			sqlite3_finalize(st); /* the no-op SQLite made of it */
			rc = run_pragma(a, pragma, which, r);
			if (rc == SQLITE_OK)
				rc = SQLITE_DONE;
		} else {
			rc = step_all(a, st, r);
		}
		if (rc != SQLITE_DONE)
			apply_excerpt(a->err_stmt, sizeof a->err_stmt, p, (size_t)((tail ? tail : end) - p));
		if (pragma) {
			/* finalized above */
		} else if (cacheable) {
			sqlite3_clear_bindings(st);
			cache_put(a, sql, ws->sql_len, h, st);
			kept = st;
		} else {
			sqlite3_finalize(st);
		}
		if (rc != SQLITE_DONE)
			break;
		r->changes = pragma ? 0 : stmt_changes(a, c0); /* a PRAGMA's own write is not the client's */
		r->rowid = sqlite3_last_insert_rowid(a->db);
		if (last) {
			rc = SQLITE_OK;
			break;
		}
		first = 0;
		p = tail;
	}
	if (!first) /* several statements: one may have rolled back DDL */
		a->schema_check = 1;
	stmts_check(a, kept);
	if (rc == SQLITE_OK || rc == SQLITE_DONE)
		return SQLITE_OK; /* r holds the last statement's changes and rowid */
	return rc;
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
int apply_item_fail(struct apply *a, struct ires *ir, int code, const char *msg)
{
	ir->steps = 0;
	ir->code = code;
	ir->failed = 0;
	ir->first = a->nsres;
	ir->nstmt = 1;
	struct sres *r = apply_sres_new(a);
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
int apply_run_stmts(struct apply *a, const struct wire_item *it, struct ires *ir)
{
	struct wire_stmt_iter si;
	struct wire_stmt ws;
	const uint8_t *params;
	wire_stmt_begin(it, &si);
	for (uint32_t k = 0; wire_stmt_next(&si, &ws, &params); k++) {
		struct psrc ps = {.arr = ws.params, .p = params};
		struct sres *r = apply_sres_new(a);
		if (r == NULL)
			return MTR_ENOMEM;
		if (k > 0) /* the records before may have rolled back DDL */
			a->schema_check = 1;
		ir->nstmt++;
		int src = apply_run_record(a, &ws, &ps, r);
		r->len = a->alen - r->off;
		if (src != SQLITE_OK) {
			ir->code = r->code;
			ir->failed = k;
			break;
		}
	}
	return 0;
}

/*
 * Whether item it must run inside its own savepoint (SAVEPOINT mtr_item ..
 * RELEASE).  The savepoint is what makes an item all-or-nothing when it
 * fails halfway; an item that succeeds leaves the same database and the
 * same results with or without it.  So an item that is one INSERT, UPDATE,
 * DELETE or REPLACE (one statement record, one statement: no ';' before its
 * end, which also keeps out SAVEPOINT / RELEASE statements that would
 * outlive the item) runs without one, when foreign keys are off (the check
 * of deferred ones needs the savepoint's rollback) and it is no read and
 * has no temp objects.  If such an item fails, the attempt is restarted
 * with savepoints for every item (ATTEMPT_SAVEPOINTS), so a failure always
 * ends as it would have with the savepoint: an item of one statement that
 * fails with OR FAIL or RAISE(FAIL) keeps what it changed before the
 * failure, which the savepoint's rollback removes.  What a replica chooses
 * here changes the cost only, never a result: the replicas need not agree.
 */
static int apply_item_needs_sp(const struct apply *a, const struct wire_item *it)
{
	if (a->sp_all || a->fk_on || it->nstmt != 1 || (it->flags & (WIRE_ITEM_READ | WIRE_ITEM_TEMP)))
		return 1;
	struct wire_stmt_iter si;
	struct wire_stmt ws;
	const uint8_t *params;
	wire_stmt_begin(it, &si);
	if (!wire_stmt_next(&si, &ws, &params))
		return 1;
	const char *p = ws.sql, *end = ws.sql + ws.sql_len;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	static const char *const kw[] = {"INSERT", "UPDATE", "DELETE", "REPLACE"};
	size_t k = 0;
	for (; k < ARRAY_SIZE(kw); k++) {
		size_t l = strlen(kw[k]);
		if ((size_t)(end - p) > l && strncasecmp(p, kw[k], l) == 0 &&
		    (p[l] == ' ' || p[l] == '\t' || p[l] == '\n' || p[l] == '\r'))
			break;
	}
	if (k == ARRAY_SIZE(kw))
		return 1;
	const char *semi = memchr(p, ';', (size_t)(end - p));
	return semi != NULL && !only_space(semi + 1, end);
}

int apply_run_item_body(struct apply *a, size_t idx, const struct wire_item *it)
{
	struct ires *ir = &a->ires[idx];
	ir->code = SQLITE_OK;
	ir->failed = 0;
	ir->first = a->nsres;
	ir->nstmt = 0;
	ir->steps = 0;
	int rc;
	const struct forced *f = forced_find(a, idx);
	if (f != NULL) {
		rc = apply_item_fail(a, ir, f->code, f->msg);
		ir->steps = f->steps;
		return rc;
	}
	/* The budget of this item: the limit as the items before it left it,
	 * counted from 0 (doc/determinism.md "The write budget"). */
	rc = a->limit_dirty ? apply_limit_load(a) : 0;
	if (rc != 0)
		return rc;
	a->steps = 0;
	a->over = a->stopped = 0;
	if (a->foreign)
		apply_stmts_reset(a);
	detvfs_item_begin(it->timestamp_us, it->seed);
	/* A different stream from the VFS's: a function draw never shifts
	 * what SQLite's own PRNG sees. */
	detvfs_rng_seed(&a->rng, it->seed ^ UINT64_C(0x6d74722d72616e64));
	int sp = apply_item_needs_sp(a, it);
	rc = sp ? apply_ctl(a, a->sp_begin) : 0;
	if (rc != 0) {
		detvfs_item_end();
		return rc;
	}
	/* last_insert_rowid() starts from 0 in every item: the connection's
	 * value would come from whatever item ran last on this replica (another
	 * client's, or none after a restart or a snapshot), which differs
	 * between replicas (doc/determinism.md). */
	sqlite3_set_last_insert_rowid(a->db, 0);
	a->user = 1;
	rc = apply_run_stmts(a, it, ir);
	a->user = 0;
	ir->steps = a->steps;
	detvfs_item_end();
	if (rc != 0)
		return rc;
	if (a->stopped) /* apply_interrupt: not the item's result */
		return ATTEMPT_STOP;
	if (a->over && !sp && !sqlite3_get_autocommit(a->db))
		a->over = 0; /* logged when the instance runs again with savepoints */
	if (a->over) {
		unsigned quiet;
		int lvl = apply_user_warn_level(a, 0, &quiet);
		mtr_log(lvl,
			"[apply] instance %llu item %zu exceeded mtr_max_steps (%lld VM steps) in: %s: the item "
			"fails and is rolled back (%u more since the last such line, logged at debug)",
			(unsigned long long)a->cur_instance, idx, a->max_steps, a->err_stmt, quiet);
		a->over = 0;
	}
	if (ir->code != SQLITE_OK && apply_local_error(ir->code)) {
		/* Not the item's result: this replica's disk, memory, files.
		 * (An I/O error also rolls back the whole transaction: checked
		 * first, so it is never taken for the item's own rollback.) */
		const struct sres *r = &a->sres[ir->first + ir->nstmt - 1];
		apply_local_incident(a, ir->code, r->msg >= 0 ? (const char *)a->arena + r->msg : "");
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
		nf[a->nforced].steps = ir->steps;
		nf[a->nforced].code = r->code ? r->code : SQLITE_ABORT_ROLLBACK;
		nf[a->nforced].msg = strdup(r->msg >= 0 ? (const char *)a->arena + r->msg
							: "the statement rolled back the transaction");
		if (nf[a->nforced].msg == NULL)
			return MTR_ENOMEM;
		a->nforced++;
		if (ir->code == SQLITE_OK) { /* no statement failed: name the item's first */
			struct wire_stmt_iter si;
			struct wire_stmt w0;
			const uint8_t *pp;
			wire_stmt_begin(it, &si);
			if (wire_stmt_next(&si, &w0, &pp))
				apply_excerpt(a->err_stmt, sizeof a->err_stmt, w0.sql, w0.sql_len);
		}
		char cs[64];
		apply_code_str(nf[a->nforced - 1].code, cs, sizeof cs);
		unsigned quiet;
		int lvl = apply_user_warn_level(a, 1, &quiet);
		mtr_log(lvl,
			"[apply] instance %llu item %zu rolled back the transaction (%s: %s) in: %s: restarting "
			"the instance with the item failed (%u more since the last such line, logged at debug)",
			(unsigned long long)a->cur_instance, idx, cs, nf[a->nforced - 1].msg, a->err_stmt, quiet);
		pthread_mutex_lock(&a->mu);
		a->st.restarts++;
		pthread_mutex_unlock(&a->mu);
		return ATTEMPT_FORCED;
	}
	if (!sp) {
		if (ir->code == SQLITE_OK)
			return 0; /* one statement, no flags: nothing to roll back or drop */
		/* It may have failed halfway (OR FAIL): run the instance again
		 * with every item in its savepoint. */
		mtr_log(LOG_DEBUG, "[apply] instance %llu item %zu failed without its savepoint: restarting the "
				   "instance with savepoints", (unsigned long long)a->cur_instance, idx);
		a->sp_all = APPLY_SP_STICKY;
		pthread_mutex_lock(&a->mu);
		a->st.sp_restarts++;
		pthread_mutex_unlock(&a->mu);
		return ATTEMPT_SAVEPOINTS;
	}
	if (ir->code == SQLITE_OK && a->fk_on && ir->nstmt > 0) {
		/* A deferred foreign key left violated: SQLite would fail the
		 * COMMIT of the client's transaction, and the instance's COMMIT
		 * here, which is every other item's too.  The item fails alone,
		 * with SQLite's message (the savepoint's rollback restores the
		 * count). */
		int cur = 0, hi = 0;
		if (sqlite3_db_status(a->db, SQLITE_DBSTATUS_DEFERRED_FKS, &cur, &hi, 0) == SQLITE_OK && cur > 0) {
			struct sres *r = &a->sres[ir->first + ir->nstmt - 1];
			set_error(a, r, SQLITE_CONSTRAINT_FOREIGNKEY, "FOREIGN KEY constraint failed");
			ir->code = r->code;
			ir->failed = ir->nstmt - 1;
		}
	}
	if (ir->code != SQLITE_OK || (it->flags & (WIRE_ITEM_READ | WIRE_ITEM_TEMP)) || ir->nstmt > 1)
		a->schema_check = 1;
	if (ir->code != SQLITE_OK || (it->flags & WIRE_ITEM_READ)) {
		rc = apply_ctl(a, a->sp_rollback);
	} else if (it->flags & WIRE_ITEM_TEMP) {
		rc = apply_drop_temp(a->db);
		if (rc != 0)
			rc = apply_sql_fail(a, "dropping the item's temp objects");
	}
	if (rc == 0)
		rc = apply_ctl(a, a->sp_release);
	return rc;
}

/*
 * Record in mtr_cursor, inside the instance transaction, the last seq of each
 * stream the items reach (the per-stream "ordered through" cursor a restarted
 * server passes to paxos_install, doc/apply.md).  Items of one stream are
 * consecutive in an instance, so one upsert per run of a stream suffices;
 * the max() keeps the cursor monotonic whatever the order.
 */
int apply_record_cursor(struct apply *a, const struct wire_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].stream == 0 || (i + 1 < n && items[i + 1].stream == items[i].stream))
			continue;
		sqlite3_bind_int64(a->set_cursor, 1, (sqlite3_int64)items[i].stream);
		sqlite3_bind_int64(a->set_cursor, 2, (sqlite3_int64)items[i].seq);
		int rc = sqlite3_step(a->set_cursor);
		if (rc != SQLITE_DONE) {
			rc = apply_sql_fail(a, sqlite3_sql(a->set_cursor));
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

/* Scratch arrays for apply_item_result(), grown as needed. */
void apply_scratch_free(struct res_scratch *x)
{
	free(x->sr);
	free(x->names);
}

/*
 * The result of one item as an apply_result pointing into the arena and x:
 * valid until the arena grows or x is used again.  Used to deliver results
 * (after COMMIT) and to keep a write's result for a resend (before it).
 */
int apply_item_result(struct apply *a, const struct ires *ir, struct res_scratch *x, struct apply_result *res)
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
int apply_deliver(struct apply *a, const struct wire_item *items, size_t n, apply_result_fn cb, void *arg)
{
	struct res_scratch x = {0};
	for (size_t i = 0; i < n; i++) {
		struct apply_result res;
		if (apply_item_result(a, &a->ires[i], &x, &res) != 0) {
			apply_scratch_free(&x);
			return MTR_ENOMEM;
		}
		cb(arg, i, &items[i], &res);
	}
	apply_scratch_free(&x);
	return 0;
}

