/*
 * client_stmt.c - libmetronome, the SQL half: prepared statements,
 * bindings, stepping through result rows, column values, the client-side
 * collection of BEGIN ... COMMIT, mtr_exec and mtr_submit.
 *
 * mtr_prepare checks the text with the SQL front end the proxy runs
 * (sql/sql.h), which also gives the statement's extent (the tail), its
 * parameters (numbers and names, as SQLite numbers them) and its kind.
 * Bindings are kept in the statement; names are turned into numbers here,
 * so a request always carries index-numbered values.  The first step sends
 * the request and waits for the whole result; the rows are then read from
 * the answer bytes (result.h) one step at a time.
 *
 * Transactions are collected (metronome.h, "Transactions"): between BEGIN
 * and COMMIT a step copies the statement and its values into the handle and
 * answers MTR_DONE; COMMIT sends "BEGIN; s1; s2; ...; COMMIT" as one
 * request, with each statement's parameter numbers shifted by the
 * parameters of the statements before it (the numbering proxy_item_build
 * uses, doc/proxy.md).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client_int.h"
#include "util.h"

enum { ST_READY = 0, ST_ROWS, ST_DONE };

struct mtr_stmt {
	mtr *db;
	struct mtr_stmt *next, *prev; /* the handle's list */
	char *sql;                    /* NUL-terminated copy of the statement */
	uint32_t sql_len;
	enum sql_kind kind;
	enum sql_txn txn;
	bool readonly, insert;
	bool temp;         /* CREATE TEMP VIEW / TRIGGER (client_temp.c) */
	bool drop;         /* DROP ...: of a kept TEMP object? */
	char object_type;  /* CREATE / DROP: 'v' view, 'r' trigger, ... */
	char *object;      /* and the object's name */
	int nparams;
	char **pnames;           /* [1..nparams]: name as written, or NULL */
	struct wire_value *vals; /* [0..nparams): bound values (NULL type when unbound) */

	int state;
	uint8_t *payload; /* the ANSWER payload while rows are read */
	const uint8_t *rowp, *rowend;
	uint32_t ncols;
	char **colnames; /* ncols names, one allocation */
	bool has_row;
	struct wire_value *row; /* the current row: ncols values */
	uint32_t rowcap;
	char **text; /* ncols text forms (NULL for NULL) in tbuf */
	int *tlen;
	char *tbuf;
	size_t tbuf_cap;
};

/* ---- prepare / finalize ---- */

/* Does the statement start with the keyword kw? */
static bool starts_with(const char *s, size_t n, const char *kw)
{
	size_t l = strlen(kw);
	if (n < l || strncasecmp(s, kw, l) != 0)
		return false;
	if (n == l)
		return true;
	char c = (char)(s[l] | 0x20);
	return !(c >= 'a' && c <= 'z') && !(s[l] >= '0' && s[l] <= '9') && s[l] != '_';
}

static void bind_free_one(struct wire_value *v)
{
	if (v->type == WIRE_V_TEXT || v->type == WIRE_V_BLOB)
		free((void *)v->u.b.p);
	v->type = WIRE_V_NULL;
}

MTR_API int mtr_prepare(mtr *db, const char *sql, int nbytes, mtr_stmt **out, const char **tail)
{
	if (out)
		*out = NULL;
	if (tail)
		*tail = sql;
	if (!db || !sql || !out)
		return db ? client_err(db, MTR_EINVAL, "mtr_prepare: NULL argument") : MTR_EINVAL;
	size_t len = nbytes < 0 ? strlen(sql) : strnlen(sql, (size_t)nbytes);
	struct sql_result *res = NULL;
	if (sql_parse(sql, len, &res) != 0)
		return client_err(db, MTR_ENOMEM, "out of memory");
	if (res->n_stmts == 0) {
		sql_result_free(res);
		if (tail)
			*tail = sql + len;
		client_ok(db);
		return 0;
	}
	const struct sql_stmt *s = &res->stmts[0];
	if (s->kind == SQL_ERROR || s->kind == SQL_REFUSED) {
		int code = s->kind == SQL_ERROR ? MTR_ESYNTAX : MTR_EREFUSED;
		const char *m = s->error ? s->error : mtr_strerror(code);
		client_err_at(db, code, s->error_pos.line, s->error_pos.col, m, strlen(m));
		sql_result_free(res);
		return code;
	}
	mtr_stmt *st = calloc(1, sizeof *st);
	if (!st)
		goto nomem;
	st->db = db;
	st->sql_len = s->end - s->start;
	st->sql = malloc(st->sql_len + 1);
	st->nparams = s->max_param > 0 ? s->max_param : 0;
	st->pnames = calloc((size_t)st->nparams + 1, sizeof *st->pnames);
	st->vals = calloc((size_t)st->nparams + 1, sizeof *st->vals);
	if (!st->sql || !st->pnames || !st->vals)
		goto nomem;
	memcpy(st->sql, sql + s->start, st->sql_len);
	st->sql[st->sql_len] = 0;
	st->kind = s->kind;
	st->txn = s->txn;
	st->readonly = s->readonly;
	st->insert = s->kind == SQL_WRITE &&
		     (starts_with(st->sql, st->sql_len, "INSERT") || starts_with(st->sql, st->sql_len, "REPLACE"));
	st->temp = s->temp;
	st->drop = s->kind == SQL_SCHEMA && starts_with(st->sql, st->sql_len, "DROP");
	st->object_type = s->object_type;
	if (s->object && !(st->object = strdup(s->object)))
		goto nomem;
	for (unsigned i = 0; i < s->n_params; i++) {
		const struct sql_param *p = &s->params[i];
		if (p->name && p->number >= 1 && p->number <= st->nparams && !st->pnames[p->number]) {
			st->pnames[p->number] = strdup(p->name);
			if (!st->pnames[p->number])
				goto nomem;
		}
	}
	if (tail)
		*tail = res->n_stmts > 1 ? sql + res->stmts[1].start : sql + len;
	sql_result_free(res);
	st->next = db->stmts;
	if (db->stmts)
		db->stmts->prev = st;
	db->stmts = st;
	*out = st;
	client_ok(db);
	return 0;
nomem:
	sql_result_free(res);
	if (st) {
		if (st->pnames)
			for (int i = 0; i <= st->nparams; i++)
				free(st->pnames[i]);
		free(st->pnames);
		free(st->vals);
		free(st->object);
		free(st->sql);
		free(st);
	}
	if (tail)
		*tail = sql;
	return client_err(db, MTR_ENOMEM, "out of memory");
}

/* Forget the result of the last run (rows, answer bytes). */
static void stmt_clear_run(mtr_stmt *st)
{
	free(st->payload);
	st->payload = NULL;
	st->rowp = st->rowend = NULL;
	st->has_row = false;
	st->state = ST_READY;
}

/* The statements of the open transaction that st collected no longer go
 * to st (it is finalized, reset, or collects again). */
static void txn_disown(mtr_stmt *st)
{
	mtr *db = st->db;
	for (size_t i = 0; i < db->ntxn; i++)
		if (db->txn[i].owner == st)
			db->txn[i].owner = NULL;
}

MTR_API int mtr_finalize(mtr_stmt *st)
{
	if (!st)
		return 0;
	mtr *db = st->db;
	if (st->prev)
		st->prev->next = st->next;
	else
		db->stmts = st->next;
	if (st->next)
		st->next->prev = st->prev;
	stmt_clear_run(st);
	txn_disown(st);
	for (int i = 0; i < st->nparams; i++)
		bind_free_one(&st->vals[i]);
	for (int i = 0; i <= st->nparams; i++)
		free(st->pnames[i]);
	free(st->pnames);
	free(st->vals);
	free(st->colnames);
	free(st->row);
	free(st->text);
	free(st->tlen);
	free(st->tbuf);
	free(st->object);
	free(st->sql);
	free(st);
	return 0;
}

void client_stmts_free(mtr *db)
{
	while (db->stmts)
		mtr_finalize(db->stmts);
}

MTR_API int mtr_reset(mtr_stmt *st)
{
	stmt_clear_run(st);
	txn_disown(st);
	return 0;
}

MTR_API int mtr_stmt_busy(mtr_stmt *st)
{
	return st && st->state == ST_ROWS;
}

MTR_API int mtr_get_autocommit(mtr *db)
{
	return db && !db->in_txn;
}

MTR_API const char *mtr_sql(mtr_stmt *st)
{
	return st->sql;
}

MTR_API int mtr_stmt_readonly(mtr_stmt *st)
{
	return st->readonly;
}

/* ---- bindings ---- */

/* May parameter index be bound now?  0 or the error.  The old value stays. */
static int bind_ok(mtr_stmt *st, int index)
{
	if (st->state == ST_ROWS)
		return client_err(st->db, MTR_EBUSY, "statement is running: mtr_reset it before binding");
	if (index < 1 || index > st->nparams)
		return client_err(st->db, MTR_EINVAL, "bind index %d out of range (1..%d)", index, st->nparams);
	return 0;
}

static int bind_check(mtr_stmt *st, int index)
{
	int rc = bind_ok(st, index);
	if (rc == 0)
		bind_free_one(&st->vals[index - 1]);
	return rc;
}

MTR_API int mtr_bind_int64(mtr_stmt *st, int index, int64_t value)
{
	int rc = bind_check(st, index);
	if (rc)
		return rc;
	st->vals[index - 1].type = WIRE_V_INT;
	st->vals[index - 1].u.i = value;
	return 0;
}

MTR_API int mtr_bind_double(mtr_stmt *st, int index, double value)
{
	int rc = bind_check(st, index);
	if (rc)
		return rc;
	st->vals[index - 1].type = WIRE_V_REAL;
	st->vals[index - 1].u.r = value;
	return 0;
}

MTR_API int mtr_bind_int(mtr_stmt *st, int index, int value)
{
	return mtr_bind_int64(st, index, value);
}

/* The copy goes into the old value's buffer when it is one and as large
 * (a statement bound again and again, as mtrsql's .import does, allocates
 * nothing more). */
static int bind_bytes(mtr_stmt *st, int index, uint8_t type, const void *p, size_t n)
{
	int rc = bind_ok(st, index);
	if (rc)
		return rc;
	struct wire_value *v = &st->vals[index - 1];
	if (n > UINT32_MAX) {
		bind_free_one(v);
		return client_err(st->db, MTR_ETOOBIG, "value too large");
	}
	void *copy = NULL;
	if (v->type == WIRE_V_TEXT || v->type == WIRE_V_BLOB) {
		copy = (void *)v->u.b.p;
		v->type = WIRE_V_NULL;
		if (v->u.b.n < n) {
			void *bigger = realloc(copy, n);
			if (!bigger)
				free(copy);
			copy = bigger;
		}
	} else {
		copy = malloc(n ? n : 1);
	}
	if (!copy)
		return client_err(st->db, MTR_ENOMEM, "out of memory");
	if (n)
		memcpy(copy, p, n);
	st->vals[index - 1].type = type;
	st->vals[index - 1].u.b.p = copy;
	st->vals[index - 1].u.b.n = (uint32_t)n;
	return 0;
}

MTR_API int mtr_bind_text(mtr_stmt *st, int index, const char *text, int n)
{
	if (!text)
		return mtr_bind_null(st, index);
	return bind_bytes(st, index, WIRE_V_TEXT, text, n < 0 ? strlen(text) : (size_t)n);
}

MTR_API int mtr_bind_blob(mtr_stmt *st, int index, const void *data, int n)
{
	if (n < 0)
		return client_err(st->db, MTR_EINVAL, "negative blob size");
	if (!data && n > 0)
		return client_err(st->db, MTR_EINVAL, "NULL blob pointer");
	return bind_bytes(st, index, WIRE_V_BLOB, data, (size_t)n);
}

MTR_API int mtr_bind_null(mtr_stmt *st, int index)
{
	return bind_check(st, index);
}

MTR_API int mtr_bind_zeroblob(mtr_stmt *st, int index, int n)
{
	if (n <= 0)
		return bind_bytes(st, index, WIRE_V_BLOB, NULL, 0);
	void *z = calloc(1, (size_t)n);
	if (!z)
		return client_err(st->db, MTR_ENOMEM, "out of memory (a zeroblob of %d bytes)", n);
	int rc = bind_bytes(st, index, WIRE_V_BLOB, z, (size_t)n);
	free(z);
	return rc;
}

MTR_API int mtr_bind_parameter_count(mtr_stmt *st)
{
	return st->nparams;
}

MTR_API int mtr_bind_parameter_index(mtr_stmt *st, const char *name)
{
	if (!name)
		return 0;
	for (int i = 1; i <= st->nparams; i++)
		if (st->pnames[i] && strcmp(st->pnames[i], name) == 0)
			return i;
	return 0;
}

MTR_API const char *mtr_bind_parameter_name(mtr_stmt *st, int index)
{
	if (index < 1 || index > st->nparams)
		return NULL;
	return st->pnames[index];
}

MTR_API int mtr_clear_bindings(mtr_stmt *st)
{
	if (st->state == ST_ROWS)
		return client_err(st->db, MTR_EBUSY, "statement is running: mtr_reset it before binding");
	for (int i = 0; i < st->nparams; i++)
		bind_free_one(&st->vals[i]);
	return 0;
}

/* The statement's bound values as index-numbered cproto_binds (offset added
 * to every number).  *out is malloc'ed (NULL when none); 0 or MTR_ENOMEM. */
static int binds_build(const mtr_stmt *st, int offset, struct cproto_bind **out, uint16_t *n)
{
	*out = NULL;
	*n = 0;
	if (!st->nparams)
		return 0;
	struct cproto_bind *b = calloc((size_t)st->nparams, sizeof *b);
	if (!b)
		return MTR_ENOMEM;
	uint16_t k = 0;
	for (int i = 0; i < st->nparams; i++)
		if (st->vals[i].type != WIRE_V_NULL) {
			b[k].index = i + 1 + offset;
			b[k].v = st->vals[i];
			k++;
		}
	*out = b;
	*n = k;
	return 0;
}

/* ---- running ---- */

/*
 * Send one request and wait, retrying while the proxy says busy (up to the
 * busy timeout, with a doubling pause).  0 with the validated view in *v
 * and the payload (which *v points into) in *payload, or the error.
 */
static int request_run(mtr *db, const char *sql, uint32_t len, const struct cproto_bind *b, uint16_t nb,
		       struct result_view *v, uint8_t **payload);

/*
 * Before the first read of a session handle that has seen nothing yet (a
 * new handle): its session floor (the instance its reads must see) is 0,
 * so a replica that has not applied a write the cluster acknowledged to
 * another connection could answer.  One no-op read ordered like a write
 * sets the floor to an instance after every acknowledged write
 * (doc/client.md, "Consistency of reads").  The read itself then runs as
 * a session read, on any replica that caught up.  0 or the error.
 */
static int session_floor(mtr *db)
{
	if (db->consistency != CPROTO_CONS_SESSION || db->last_instance != 0)
		return 0;
	struct result_view v;
	uint8_t *payload;
	db->once_consistency = CPROTO_CONS_LINEARIZABLE;
	int rc = request_run(db, "SELECT 1", 8, NULL, 0, &v, &payload);
	db->once_consistency = 0;
	if (rc) {
		/* the cause is in db->errmsg, which client_err writes: copy it */
		char why[sizeof db->errmsg];
		snprintf(why, sizeof why, "%s", mtr_errmsg(db));
		return client_err(db, rc,
				  "a new session could not learn the cluster's position (%s): its reads would not be "
				  "sure to see every acknowledged write; retry, or read with consistency=none",
				  why);
	}
	free(payload);
	return 0;
}

/* request_run() with the TEMP definitions it needs in front; their results
 * are skipped: *v starts at the first statement of sql. */
static int request_run_temp(mtr *db, const char *sql, uint32_t len, const struct cproto_bind *b, uint16_t nb,
			    struct result_view *v, uint8_t **payload)
{
	struct client_prelude pre;
	*payload = NULL;
	int rc = client_temp_prelude(db, sql, len, &pre);
	if (rc)
		return rc;
	if (!pre.text)
		return request_run(db, sql, len, b, nb, v, payload);
	db->line_shift = pre.lines;
	rc = request_run(db, pre.text, pre.len, b, nb, v, payload);
	db->line_shift = 0;
	free(pre.text);
	if (rc == MTR_ESQL) /* count the caller's statements only */
		db->failed_stmt = db->failed_stmt >= pre.nstmts ? db->failed_stmt - pre.nstmts : 0;
	struct result_stmt s;
	for (unsigned i = 0; rc == 0 && i < pre.nstmts; i++)
		result_next(v, &s);
	return rc;
}

static int request_run(mtr *db, const char *sql, uint32_t len, const struct cproto_bind *b, uint16_t nb,
		       struct result_view *v, uint8_t **payload)
{
	uint64_t busy_until = db->busy_ms ? now_mono_ns() + (uint64_t)db->busy_ms * 1000000ull : 0;
	long pause_ms = 1;
	for (;;) {
		size_t plen;
		int ext;
		*payload = NULL;
		int rc = client_request_sync(db, sql, len, b, nb, payload, &plen);
		if (rc)
			return rc;
		rc = client_answer(db, *payload, plen, v, &ext);
		if (rc == 0)
			return 0;
		free(*payload);
		*payload = NULL;
		if ((rc != MTR_EBUSY && rc != MTR_EFULL) || !busy_until ||
		    now_mono_ns() + (uint64_t)pause_ms * 1000000ull >= busy_until)
			return rc;
		struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		pause_ms = MIN(pause_ms * 2, 100);
	}
}

/* Make the text forms of the current row's values (in one buffer). */
static int row_texts(mtr_stmt *st)
{
	size_t need = 0;
	for (uint32_t i = 0; i < st->ncols; i++) {
		const struct wire_value *v = &st->row[i];
		need += v->type == WIRE_V_TEXT || v->type == WIRE_V_BLOB ? (size_t)v->u.b.n + 1 : 40;
	}
	if (need > st->tbuf_cap) {
		char *n = realloc(st->tbuf, need);
		if (!n)
			return MTR_ENOMEM;
		st->tbuf = n;
		st->tbuf_cap = need;
	}
	char *p = st->tbuf;
	for (uint32_t i = 0; i < st->ncols; i++) {
		const struct wire_value *v = &st->row[i];
		int n = 0;
		st->text[i] = p;
		switch (v->type) {
		case WIRE_V_INT:
			n = snprintf(p, 40, "%lld", (long long)v->u.i);
			break;
		case WIRE_V_REAL:
			/* As SQLite prints a REAL: 15 significant digits, and
			 * ".0" when that looks like an integer. */
			n = snprintf(p, 40, "%.15g", v->u.r);
			if (!strpbrk(p, ".eEnNiI"))
				n += snprintf(p + n, (size_t)(40 - n), ".0");
			break;
		case WIRE_V_TEXT:
		case WIRE_V_BLOB:
			if (v->u.b.n)
				memcpy(p, v->u.b.p, v->u.b.n);
			p[v->u.b.n] = 0;
			n = (int)v->u.b.n;
			break;
		default:
			st->text[i] = NULL;
			st->tlen[i] = 0;
			continue;
		}
		st->tlen[i] = n;
		p += n + 1;
	}
	return 0;
}

static int stmt_next_row(mtr_stmt *st)
{
	if (st->rowp && st->rowp < st->rowend) {
		unsigned n = result_row_next(&st->rowp, st->rowend, st->row, st->ncols);
		/* A row shorter than the column count reads as NULLs. */
		for (unsigned i = n; i < st->ncols; i++)
			st->row[i].type = WIRE_V_NULL;
		if (row_texts(st) != 0) {
			stmt_clear_run(st);
			st->state = ST_DONE;
			return client_err(st->db, MTR_ENOMEM, "out of memory");
		}
		st->has_row = true;
		return MTR_ROW;
	}
	stmt_clear_run(st);
	st->state = ST_DONE;
	return MTR_DONE;
}

/* Take the columns of a result statement (names copied). */
static int stmt_columns(mtr_stmt *st, const struct result_stmt *s)
{
	size_t names_len = 0;
	const uint8_t *np = s->names;
	for (uint32_t i = 0; i < s->ncols; i++) {
		uint16_t l;
		result_name_next(&np, &l);
		names_len += (size_t)l + 1;
	}
	free(st->colnames);
	st->colnames = NULL;
	st->ncols = 0;
	if (s->ncols > st->rowcap) {
		free(st->row);
		free(st->text);
		free(st->tlen);
		st->row = calloc(s->ncols, sizeof *st->row);
		st->text = calloc(s->ncols, sizeof *st->text);
		st->tlen = calloc(s->ncols, sizeof *st->tlen);
		st->rowcap = s->ncols;
		if (!st->row || !st->text || !st->tlen) {
			st->rowcap = 0;
			return MTR_ENOMEM;
		}
	}
	if (s->ncols) {
		st->colnames = malloc(s->ncols * sizeof(char *) + names_len);
		if (!st->colnames)
			return MTR_ENOMEM;
		char *p = (char *)(st->colnames + s->ncols);
		np = s->names;
		for (uint32_t i = 0; i < s->ncols; i++) {
			uint16_t l;
			const char *nm = result_name_next(&np, &l);
			memcpy(p, nm, l);
			p[l] = 0;
			st->colnames[i] = p;
			p += l + 1;
		}
	}
	st->ncols = s->ncols;
	return 0;
}

/* Send the statement and read its answer; then the first row or done. */
static int stmt_run(mtr_stmt *st)
{
	mtr *db = st->db;
	if (st->readonly && session_floor(db) != 0) {
		st->state = ST_DONE;
		return db->errcode;
	}
	struct cproto_bind *b;
	uint16_t nb;
	if (binds_build(st, 0, &b, &nb) != 0)
		return client_err(db, MTR_ENOMEM, "out of memory");
	struct result_view v;
	uint8_t *payload;
	int rc = request_run_temp(db, st->sql, st->sql_len, b, nb, &v, &payload);
	free(b);
	if (rc) {
		st->state = ST_DONE;
		return rc;
	}
	struct result_stmt s;
	if (!result_next(&v, &s)) {
		free(payload);
		st->state = ST_DONE;
		client_ok(db);
		return MTR_DONE;
	}
	if (stmt_columns(st, &s) != 0) {
		free(payload);
		st->state = ST_DONE;
		return client_err(db, MTR_ENOMEM, "out of memory");
	}
	if (st->kind == SQL_WRITE)
		db->changes = s.changes;
	if (st->insert && s.changes > 0)
		db->last_rowid = s.last_rowid;
	st->payload = payload;
	st->rowp = s.rows;
	st->rowend = s.rows + s.rows_len;
	st->state = ST_ROWS;
	client_ok(db);
	return stmt_next_row(st);
}

/* ---- transactions ---- */

void client_txn_clear(mtr *db)
{
	for (size_t i = 0; i < db->ntxn; i++) {
		free(db->txn[i].sql);
		free(db->txn[i].binds);
		free(db->txn[i].vbuf);
	}
	db->ntxn = 0;
	db->in_txn = false;
}

/* Copy the statement and its values into the transaction being collected. */
static int txn_collect(mtr_stmt *st)
{
	mtr *db = st->db;
	if (db->ntxn == db->txn_cap) {
		size_t cap = db->txn_cap ? db->txn_cap * 2 : 16;
		struct client_txn_stmt *n = realloc(db->txn, cap * sizeof *n);
		if (!n)
			return client_err(db, MTR_ENOMEM, "out of memory");
		db->txn = n;
		db->txn_cap = cap;
	}
	txn_disown(st);
	struct client_txn_stmt *t = &db->txn[db->ntxn];
	memset(t, 0, sizeof *t);
	size_t vlen = 0;
	for (int i = 0; i < st->nparams; i++)
		if (st->vals[i].type == WIRE_V_TEXT || st->vals[i].type == WIRE_V_BLOB)
			vlen += st->vals[i].u.b.n;
	t->sql = malloc(st->sql_len + 1);
	t->vbuf = malloc(vlen ? vlen : 1);
	if (!t->sql || !t->vbuf || binds_build(st, 0, &t->binds, &t->nbinds) != 0) {
		free(t->sql);
		free(t->vbuf);
		return client_err(db, MTR_ENOMEM, "out of memory");
	}
	memcpy(t->sql, st->sql, st->sql_len + 1);
	t->sql_len = st->sql_len;
	t->max_param = st->nparams;
	t->write = st->kind == SQL_WRITE;
	t->insert = st->insert;
	t->owner = st;
	uint8_t *p = t->vbuf;
	for (uint16_t k = 0; k < t->nbinds; k++) {
		struct wire_value *v = &t->binds[k].v;
		if (v->type == WIRE_V_TEXT || v->type == WIRE_V_BLOB) {
			if (v->u.b.n)
				memcpy(p, v->u.b.p, v->u.b.n);
			v->u.b.p = p;
			p += v->u.b.n;
		}
	}
	db->ntxn++;
	st->state = ST_DONE;
	client_ok(db);
	return MTR_DONE;
}

/* The rows of statement s of a transaction that ran, for the handle that
 * collected it: its next mtr_step returns them (doc/client.md,
 * "Transactions").  0 or the error. */
static int txn_rows(mtr_stmt *st, const struct result_stmt *s)
{
	stmt_clear_run(st);
	uint8_t *copy = malloc(s->rows_len ? s->rows_len : 1);
	if (!copy || stmt_columns(st, s) != 0) {
		free(copy);
		return client_err(st->db, MTR_ENOMEM, "out of memory");
	}
	if (s->rows_len)
		memcpy(copy, s->rows, s->rows_len);
	st->payload = copy;
	st->rowp = copy;
	st->rowend = copy + s->rows_len;
	st->state = ST_ROWS;
	return 0;
}

/* COMMIT: send the collected statements as one request. */
static int txn_commit(mtr *db)
{
	if (db->ntxn == 0) {
		client_txn_clear(db);
		client_ok(db);
		return MTR_DONE;
	}
	static const char head[] = "BEGIN;\n", sep[] = "\n;\n", foot[] = "COMMIT";
	size_t len = sizeof head - 1 + sizeof foot - 1, nb = 0;
	for (size_t i = 0; i < db->ntxn; i++) {
		len += db->txn[i].sql_len + sizeof sep - 1;
		nb += db->txn[i].nbinds;
	}
	if (nb > UINT16_MAX) {
		client_txn_clear(db);
		return client_err(db, MTR_ETOOBIG, "transaction has %zu bound values (at most %u)", nb,
				  (unsigned)UINT16_MAX);
	}
	if (len > UINT32_MAX) {
		client_txn_clear(db);
		return client_err(db, MTR_ETOOBIG, "transaction too large");
	}
	char *sql = malloc(len + 1);
	struct cproto_bind *b = calloc(nb ? nb : 1, sizeof *b);
	if (!sql || !b) {
		free(sql);
		free(b);
		client_txn_clear(db);
		return client_err(db, MTR_ENOMEM, "out of memory");
	}
	char *p = sql;
	memcpy(p, head, sizeof head - 1);
	p += sizeof head - 1;
	size_t k = 0;
	int offset = 0;
	for (size_t i = 0; i < db->ntxn; i++) {
		const struct client_txn_stmt *t = &db->txn[i];
		memcpy(p, t->sql, t->sql_len);
		p += t->sql_len;
		memcpy(p, sep, sizeof sep - 1);
		p += sizeof sep - 1;
		for (uint16_t j = 0; j < t->nbinds; j++) {
			b[k] = t->binds[j];
			b[k].index += offset;
			k++;
		}
		offset += t->max_param;
	}
	memcpy(p, foot, sizeof foot - 1);
	p += sizeof foot - 1;
	*p = 0;

	struct result_view v;
	uint8_t *payload;
	int rc = request_run_temp(db, sql, (uint32_t)len, b, (uint16_t)nb, &v, &payload);
	free(sql);
	free(b);
	if (rc == 0) {
		struct result_stmt s;
		for (size_t i = 0; i < db->ntxn && result_next(&v, &s); i++) {
			if (db->txn[i].write)
				db->changes = s.changes;
			if (db->txn[i].insert && s.changes > 0)
				db->last_rowid = s.last_rowid;
			if (db->txn[i].owner && s.ncols > 0 && rc == 0)
				rc = txn_rows(db->txn[i].owner, &s);
		}
		free(payload);
		if (rc == 0)
			client_ok(db);
	} else if (rc == MTR_ESQL && db->failed_stmt < db->ntxn) {
		/* name the statement that failed: the transaction was sent whole */
		const struct client_txn_stmt *t = &db->txn[db->failed_stmt];
		char msg[sizeof db->errmsg];
		snprintf(msg, sizeof msg, "%s", db->errmsg);
		int ext = db->ext;
		int n = (int)MIN(t->sql_len, 60);
		while (n > 0 && (t->sql[n - 1] == ' ' || t->sql[n - 1] == '\n'))
			n--;
		client_err(db, MTR_ESQL, "statement %u of the transaction (%.*s%s) failed: %s", db->failed_stmt + 1, n,
			   t->sql, t->sql_len > 60 ? "..." : "", msg);
		db->ext = ext;
	}
	client_txn_clear(db);
	return rc ? rc : MTR_DONE;
}

/* BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO. */
static int stmt_txn(mtr_stmt *st)
{
	mtr *db = st->db;
	st->state = ST_DONE;
	switch (st->txn) {
	case SQL_TXN_BEGIN:
		if (db->in_txn)
			return client_err(db, MTR_EINVAL, "cannot start a transaction within a transaction");
		db->in_txn = true;
		client_ok(db);
		return MTR_DONE;
	case SQL_TXN_COMMIT:
		if (!db->in_txn)
			return client_err(db, MTR_EINVAL, "cannot commit - no transaction is active");
		return txn_commit(db);
	case SQL_TXN_ROLLBACK:
		if (!db->in_txn)
			return client_err(db, MTR_EINVAL, "cannot rollback - no transaction is active");
		client_txn_clear(db);
		client_ok(db);
		return MTR_DONE;
	default:
		if (db->in_txn)
			return txn_collect(st);
		return client_err(db, MTR_ENOTSUP,
				  "SAVEPOINT, RELEASE and ROLLBACK TO are supported only inside BEGIN ... COMMIT");
	}
}

/* CREATE TEMP VIEW / TRIGGER: a replica checks it (with the kept
 * definitions it collides with), then the handle keeps it. */
static int temp_create(mtr_stmt *st)
{
	mtr *db = st->db;
	st->state = ST_DONE;
	if (db->in_txn)
		return client_err(db, MTR_ENOTSUP,
				  "CREATE TEMP inside BEGIN ... COMMIT is not supported: create the temp object before BEGIN");
	struct result_view v;
	uint8_t *payload;
	int rc = request_run_temp(db, st->sql, st->sql_len, NULL, 0, &v, &payload);
	if (rc)
		return rc;
	free(payload);
	rc = client_temp_keep(db, st->sql, st->sql_len);
	if (rc)
		return rc;
	client_ok(db);
	return MTR_DONE;
}

/* DROP VIEW / DROP TRIGGER of a kept TEMP object (it shadows main's). */
static bool temp_dropping(mtr_stmt *st)
{
	return st->drop && (st->object_type == 'v' || st->object_type == 'r') &&
	       client_temp_kept(st->db, st->object_type, st->object);
}

MTR_API int mtr_step(mtr_stmt *st)
{
	if (!st)
		return MTR_EINVAL;
	if (st->state == ST_ROWS)
		return stmt_next_row(st);
	stmt_clear_run(st);
	if (st->kind == SQL_TXN)
		return stmt_txn(st);
	if (st->temp)
		return temp_create(st);
	if (temp_dropping(st)) {
		st->state = ST_DONE;
		if (st->db->in_txn)
			return client_err(st->db, MTR_ENOTSUP,
					  "dropping a TEMP object inside BEGIN ... COMMIT is not supported: drop it after COMMIT");
		client_temp_drop(st->db, st->object_type, st->object);
		client_ok(st->db);
		return MTR_DONE;
	}
	if (st->db->in_txn)
		return txn_collect(st);
	return stmt_run(st);
}

MTR_API int mtr_submit(mtr_stmt *st, mtr_done_fn done, void *arg)
{
	mtr *db = st->db;
	if (!done)
		return client_err(db, MTR_EINVAL, "mtr_submit needs a callback");
	if (st->kind == SQL_TXN || db->in_txn)
		return client_err(db, MTR_EINVAL, "mtr_submit is not available for or inside BEGIN ... COMMIT");
	if (st->temp || temp_dropping(st))
		return client_err(db, MTR_EINVAL, "mtr_submit is not available for CREATE or DROP of a TEMP object: use mtr_step");
	if (st->readonly && session_floor(db) != 0)
		return db->errcode;
	struct cproto_bind *b;
	uint16_t nb;
	if (binds_build(st, 0, &b, &nb) != 0)
		return client_err(db, MTR_ENOMEM, "out of memory");
	struct client_prelude pre;
	int rc = client_temp_prelude(db, st->sql, st->sql_len, &pre);
	if (rc == 0)
		rc = client_request_async(db, pre.text ? pre.text : st->sql, pre.text ? pre.len : st->sql_len, b, nb,
					  st->kind == SQL_WRITE, st->insert, done, arg);
	free(pre.text);
	free(b);
	if (rc == 0)
		client_ok(db);
	return rc;
}

/* ---- columns ---- */

MTR_API int mtr_column_count(mtr_stmt *st)
{
	return (int)st->ncols;
}

MTR_API int mtr_data_count(mtr_stmt *st)
{
	return st && st->has_row ? (int)st->ncols : 0;
}

MTR_API const char *mtr_column_name(mtr_stmt *st, int i)
{
	if (i < 0 || (uint32_t)i >= st->ncols || !st->colnames)
		return NULL;
	return st->colnames[i];
}

/* The current row's value i, or NULL when there is none. */
static const struct wire_value *col(mtr_stmt *st, int i)
{
	if (!st->has_row || i < 0 || (uint32_t)i >= st->ncols)
		return NULL;
	return &st->row[i];
}

MTR_API int mtr_column_type(mtr_stmt *st, int i)
{
	const struct wire_value *v = col(st, i);
	if (!v)
		return MTR_NULL;
	switch (v->type) {
	case WIRE_V_INT:
		return MTR_INTEGER;
	case WIRE_V_REAL:
		return MTR_FLOAT;
	case WIRE_V_TEXT:
		return MTR_TEXT;
	case WIRE_V_BLOB:
		return MTR_BLOB;
	default:
		return MTR_NULL;
	}
}

MTR_API int64_t mtr_column_int64(mtr_stmt *st, int i)
{
	const struct wire_value *v = col(st, i);
	if (!v)
		return 0;
	switch (v->type) {
	case WIRE_V_INT:
		return v->u.i;
	case WIRE_V_REAL:
		/* Clamp like SQLite; a cast out of range would be undefined. */
		if (v->u.r != v->u.r)
			return 0;
		if (v->u.r >= 9223372036854775807.0)
			return INT64_MAX;
		if (v->u.r <= -9223372036854775808.0)
			return INT64_MIN;
		return (int64_t)v->u.r;
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		return strtoll(st->text[i], NULL, 10);
	default:
		return 0;
	}
}

MTR_API int mtr_column_int(mtr_stmt *st, int i)
{
	return (int)(int32_t)(uint32_t)(uint64_t)mtr_column_int64(st, i);
}

MTR_API double mtr_column_double(mtr_stmt *st, int i)
{
	const struct wire_value *v = col(st, i);
	if (!v)
		return 0.0;
	switch (v->type) {
	case WIRE_V_INT:
		return (double)v->u.i;
	case WIRE_V_REAL:
		return v->u.r;
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		return strtod(st->text[i], NULL);
	default:
		return 0.0;
	}
}

MTR_API const unsigned char *mtr_column_text(mtr_stmt *st, int i)
{
	const struct wire_value *v = col(st, i);
	if (!v || v->type == WIRE_V_NULL)
		return NULL;
	return (const unsigned char *)st->text[i];
}

MTR_API const void *mtr_column_blob(mtr_stmt *st, int i)
{
	const struct wire_value *v = col(st, i);
	if (!v || v->type == WIRE_V_NULL || st->tlen[i] == 0)
		return NULL;
	return st->text[i];
}

MTR_API int mtr_column_bytes(mtr_stmt *st, int i)
{
	const struct wire_value *v = col(st, i);
	if (!v || v->type == WIRE_V_NULL)
		return 0;
	return st->tlen[i];
}

/* ---- exec ---- */

/* Step st to its end, calling cb with the text of each row.  0 or the
 * error. */
static int exec_rows(mtr_stmt *st, mtr_callback cb, void *arg, char ***cols)
{
	mtr *db = st->db;
	int rc;
	while ((rc = mtr_step(st)) == MTR_ROW) {
		if (!cb)
			continue;
		int n = mtr_column_count(st);
		free(*cols);
		*cols = malloc(2 * ((size_t)n + 1) * sizeof **cols);
		if (!*cols)
			return client_err(db, MTR_ENOMEM, "out of memory");
		char **c = *cols;
		for (int i = 0; i < n; i++) {
			c[i] = (char *)mtr_column_text(st, i);
			c[n + 1 + i] = (char *)mtr_column_name(st, i);
		}
		c[n] = c[2 * n + 1] = NULL;
		if (cb(arg, n, c, c + n + 1) != 0)
			return client_err(db, MTR_EABORT, "query aborted by the callback");
	}
	return rc == MTR_DONE ? 0 : rc;
}

/*
 * Statements inside BEGIN ... COMMIT run at the COMMIT: their handles are
 * held until then, and their rows (a SELECT's, a RETURNING's) reach the
 * callback after the COMMIT succeeded, in order.  A ROLLBACK, an error or
 * the end of the text drops them.
 */
MTR_API int mtr_exec(mtr *db, const char *sql, mtr_callback cb, void *arg, char **errmsg)
{
	if (errmsg)
		*errmsg = NULL;
	if (!db || !sql)
		return db ? client_err(db, MTR_EINVAL, "mtr_exec: NULL argument") : MTR_EINVAL;
	const char *p = sql;
	int rc = 0;
	char **cols = NULL;
	mtr_stmt **held = NULL;
	size_t nheld = 0, cheld = 0;
	while (*p) {
		mtr_stmt *st;
		const char *tail;
		rc = mtr_prepare(db, p, -1, &st, &tail);
		if (rc || !st)
			break;
		p = tail;
		bool commit = st->kind == SQL_TXN && st->txn == SQL_TXN_COMMIT;
		rc = exec_rows(st, cb, arg, &cols);
		if (rc == 0 && db->in_txn && st->kind != SQL_TXN) {
			if (nheld == cheld) {
				size_t c = cheld ? 2 * cheld : 8;
				mtr_stmt **n = realloc(held, c * sizeof *n);
				if (!n) {
					mtr_finalize(st);
					rc = client_err(db, MTR_ENOMEM, "out of memory");
					break;
				}
				held = n;
				cheld = c;
			}
			held[nheld++] = st;
			continue;
		}
		mtr_finalize(st);
		if (!db->in_txn || rc) { /* the transaction ran (COMMIT), or not */
			for (size_t i = 0; i < nheld; i++) {
				if (rc == 0 && commit && held[i]->state == ST_ROWS) /* it has rows */
					rc = exec_rows(held[i], cb, arg, &cols);
				mtr_finalize(held[i]);
			}
			nheld = 0;
		}
		if (rc)
			break;
	}
	for (size_t i = 0; i < nheld; i++)
		mtr_finalize(held[i]);
	free(held);
	free(cols);
	if (rc && errmsg)
		*errmsg = strdup(mtr_errmsg(db));
	if (!rc)
		client_ok(db);
	return rc;
}
