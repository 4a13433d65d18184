/*
 * clustervt.c - eponymous read-only virtual tables showing the cluster.
 *
 * Each table is its own module name (an eponymous-only module: xCreate is
 * NULL, so the table exists on every connection the module is registered on
 * without CREATE VIRTUAL TABLE).  A scan (xFilter) takes a snapshot of all
 * rows: from the provider for members/streams/instances/stats, from the database
 * itself for mtr_digest.  No constraint is consumed in xBestIndex: SQLite
 * evaluates every WHERE term on the snapshot rows, so any WHERE works.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "clustervt.h"
#include "digest.h"
#include "metronome.h"

enum {
	T_MEMBERS = CLUSTERVT_MEMBERS,
	T_STREAMS = CLUSTERVT_STREAMS,
	T_INSTANCES = CLUSTERVT_INSTANCES,
	T_STATS = CLUSTERVT_STATS,
	T_DIGEST
};

struct tdef {
	const char *name;
	const char *schema;
	unsigned ncol;
};

static const struct tdef tdefs[] = {
	{"mtr_members", "CREATE TABLE x(id INTEGER, address TEXT, role TEXT, alive INTEGER, chosen INTEGER, "
			"applied INTEGER, state TEXT, membership TEXT)",
	 8},
	{"mtr_streams", "CREATE TABLE x(server INTEGER, stream INTEGER, watermark INTEGER)", 3},
	{"mtr_instances",
	 "CREATE TABLE x(instance INTEGER, ranges TEXT, items INTEGER, apply_us INTEGER, steps INTEGER, "
	 "max_item_steps INTEGER)",
	 6},
	{"mtr_stats", "CREATE TABLE x(process TEXT, name TEXT, value INTEGER, age_ms INTEGER)", 4},
	{"mtr_digest", "CREATE TABLE x(instance INTEGER, digest TEXT)", 2},
};

/* Per-connection, per-table module data. */
struct aux {
	int table;
	const struct clustervt_provider *p;
	int replica_state; /* the provider tables may be read on this connection */
};

struct clustervt_sink {
	unsigned ncol;
	struct wire_value *vals; /* nrows * ncol; TEXT/BLOB bytes owned */
	size_t nrows, cap;
};

struct vtab {
	sqlite3_vtab base;
	sqlite3 *db;
	struct aux *aux;
};

struct cursor {
	sqlite3_vtab_cursor base;
	struct clustervt_sink rows;
	size_t at;
};

static void sink_free(struct clustervt_sink *s)
{
	for (size_t i = 0; i < s->nrows * s->ncol; i++)
		if (s->vals[i].type == WIRE_V_TEXT || s->vals[i].type == WIRE_V_BLOB)
			free((void *)s->vals[i].u.b.p);
	free(s->vals);
	s->vals = NULL;
	s->nrows = s->cap = 0;
}

int clustervt_sink_row(struct clustervt_sink *s, const struct wire_value *vals, unsigned n)
{
	if (s == NULL || n != s->ncol || (n > 0 && vals == NULL))
		return MTR_EINVAL;
	if (s->nrows == s->cap) {
		size_t c = s->cap ? s->cap * 2 : 16;
		struct wire_value *p = realloc(s->vals, c * s->ncol * sizeof *p);
		if (p == NULL)
			return MTR_ENOMEM;
		s->vals = p;
		s->cap = c;
	}
	struct wire_value *row = &s->vals[s->nrows * s->ncol];
	for (unsigned i = 0; i < n; i++) {
		row[i] = vals[i];
		if (vals[i].type == WIRE_V_TEXT || vals[i].type == WIRE_V_BLOB) {
			void *c = malloc(vals[i].u.b.n ? vals[i].u.b.n : 1);
			if (c == NULL) {
				for (unsigned j = 0; j < i; j++)
					if (row[j].type == WIRE_V_TEXT || row[j].type == WIRE_V_BLOB)
						free((void *)row[j].u.b.p);
				return MTR_ENOMEM;
			}
			if (vals[i].u.b.n)
				memcpy(c, vals[i].u.b.p, vals[i].u.b.n);
			row[i].u.b.p = c;
		} else if (vals[i].type > WIRE_V_BLOB) {
			row[i].type = WIRE_V_NULL;
		}
	}
	s->nrows++;
	return 0;
}

static int vt_connect(sqlite3 *db, void *paux, int argc, const char *const *argv, sqlite3_vtab **out,
		      char **err)
{
	(void)argc;
	(void)argv;
	(void)err;
	struct aux *ax = paux;
	int rc = sqlite3_declare_vtab(db, tdefs[ax->table].schema);
	if (rc != SQLITE_OK)
		return rc;
	struct vtab *v = sqlite3_malloc(sizeof *v);
	if (v == NULL)
		return SQLITE_NOMEM;
	memset(v, 0, sizeof *v);
	v->db = db;
	v->aux = ax;
	sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
	*out = &v->base;
	return SQLITE_OK;
}

static int vt_disconnect(sqlite3_vtab *vt)
{
	sqlite3_free(vt);
	return SQLITE_OK;
}

static int vt_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
	(void)vt;
	info->estimatedCost = 1000;
	info->estimatedRows = 100;
	return SQLITE_OK;
}

static int vt_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
	struct vtab *v = (struct vtab *)vt;
	struct cursor *c = sqlite3_malloc(sizeof *c);
	if (c == NULL)
		return SQLITE_NOMEM;
	memset(c, 0, sizeof *c);
	c->rows.ncol = tdefs[v->aux->table].ncol;
	*out = &c->base;
	return SQLITE_OK;
}

static int vt_close(sqlite3_vtab_cursor *cur)
{
	struct cursor *c = (struct cursor *)cur;
	sink_free(&c->rows);
	sqlite3_free(c);
	return SQLITE_OK;
}

/* mtr_digest's single row: the applied instance and the digest. */
static int fill_digest(sqlite3 *db, struct clustervt_sink *s)
{
	struct wire_value v[2];
	memset(v, 0, sizeof v);
	sqlite3_stmt *st;
	v[0].type = WIRE_V_NULL;
	if (sqlite3_prepare_v2(db, "SELECT value FROM mtr_meta WHERE key = 'applied'", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			v[0].type = WIRE_V_INT;
			v[0].u.i = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
	}
	struct digest d;
	int rc = digest_db(db, &d);
	if (rc != 0)
		return rc;
	char hex[DIGEST_HEX_SIZE];
	digest_hex(&d, hex);
	v[1].type = WIRE_V_TEXT;
	v[1].u.b.p = hex;
	v[1].u.b.n = 32;
	return clustervt_sink_row(s, v, 2);
}

static int vt_filter(sqlite3_vtab_cursor *cur, int idxnum, const char *idxstr, int argc, sqlite3_value **argv)
{
	(void)idxnum;
	(void)idxstr;
	(void)argc;
	(void)argv;
	struct cursor *c = (struct cursor *)cur;
	struct vtab *v = (struct vtab *)cur->pVtab;
	sink_free(&c->rows);
	c->at = 0;
	int rc = 0;
	if (v->aux->table == T_DIGEST) {
		rc = fill_digest(v->db, &c->rows);
	} else if (!v->aux->replica_state) {
		sqlite3_free(v->base.zErrMsg);
		v->base.zErrMsg = sqlite3_mprintf("%s shows one replica's own state, which a write or a linearizable "
						  "read cannot use (every replica must compute the same); read it "
						  "with consistency none or session",
						  tdefs[v->aux->table].name);
		return SQLITE_ERROR;
	} else if (v->aux->p != NULL && v->aux->p->fill != NULL)
		rc = v->aux->p->fill(v->aux->p->arg, (enum clustervt_table)v->aux->table, &c->rows);
	if (rc != 0) {
		sqlite3_free(v->base.zErrMsg);
		v->base.zErrMsg = sqlite3_mprintf("%s: %s", tdefs[v->aux->table].name, mtr_strerror(rc));
		return SQLITE_ERROR;
	}
	return SQLITE_OK;
}

static int vt_next(sqlite3_vtab_cursor *cur)
{
	((struct cursor *)cur)->at++;
	return SQLITE_OK;
}

static int vt_eof(sqlite3_vtab_cursor *cur)
{
	struct cursor *c = (struct cursor *)cur;
	return c->at >= c->rows.nrows;
}

static int vt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
	struct cursor *c = (struct cursor *)cur;
	const struct wire_value *val = &c->rows.vals[c->at * c->rows.ncol + (size_t)i];
	switch (val->type) {
	case WIRE_V_INT:
		sqlite3_result_int64(ctx, val->u.i);
		break;
	case WIRE_V_REAL:
		sqlite3_result_double(ctx, val->u.r);
		break;
	case WIRE_V_TEXT:
		sqlite3_result_text64(ctx, val->u.b.p, val->u.b.n, SQLITE_TRANSIENT, SQLITE_UTF8);
		break;
	case WIRE_V_BLOB:
		sqlite3_result_blob64(ctx, val->u.b.p, val->u.b.n, SQLITE_TRANSIENT);
		break;
	default:
		sqlite3_result_null(ctx);
		break;
	}
	return SQLITE_OK;
}

static int vt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
	*rowid = (sqlite3_int64)((struct cursor *)cur)->at + 1;
	return SQLITE_OK;
}

static const sqlite3_module module = {
	.iVersion = 0,
	.xCreate = NULL, /* eponymous-only */
	.xConnect = vt_connect,
	.xBestIndex = vt_best_index,
	.xDisconnect = vt_disconnect,
	.xDestroy = vt_disconnect,
	.xOpen = vt_open,
	.xClose = vt_close,
	.xFilter = vt_filter,
	.xNext = vt_next,
	.xEof = vt_eof,
	.xColumn = vt_column,
	.xRowid = vt_rowid,
};

int clustervt_register(sqlite3 *db, const struct clustervt_provider *p, int replica_state)
{
	for (int t = 0; t < (int)(sizeof tdefs / sizeof tdefs[0]); t++) {
		struct aux *ax = sqlite3_malloc(sizeof *ax);
		if (ax == NULL)
			return MTR_ENOMEM;
		ax->table = t;
		ax->p = p;
		ax->replica_state = replica_state;
		/* create_module_v2 frees ax (through sqlite3_free) even on failure */
		if (sqlite3_create_module_v2(db, tdefs[t].name, &module, ax, sqlite3_free) != SQLITE_OK)
			return MTR_ESQL;
	}
	return 0;
}
