/*
 * client_temp.c - libmetronome: the session's TEMP views and triggers.
 *
 * A temp object lives in one SQLite connection, and a replica has no
 * connection per client: reads go to any replica, writes run on every
 * replica's apply connection.  So the handle keeps the definitions instead
 * (CREATE TEMP VIEW / CREATE TEMP TRIGGER, as written) and sends, in front
 * of every request, the definitions that request needs: the objects it
 * names, and what those name in turn.  The replica creates them, runs the
 * request and drops them (the read transaction is rolled back; an ordered
 * item is flagged WIRE_ITEM_TEMP and the replica drops its temp objects
 * before the item's RELEASE, doc/apply.md).  Results of the definitions are
 * skipped; positions in messages are moved back by the lines they took.
 *
 * CREATE TEMP is sent once, with the definitions its name collides with, so
 * that SQLite itself says "already exists" (or, IF NOT EXISTS, nothing);
 * only then is the definition kept.  DROP VIEW / DROP TRIGGER of a kept
 * object is answered here.  doc/client.md "TEMP views and triggers".
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_int.h"

struct client_temp {
	char *name;     /* as the front end gives it (de-quoted) */
	char type;      /* 'v' view, 'r' trigger */
	char *on;       /* a trigger's table; NULL for a view */
	char *sql;      /* the CREATE statement, NUL-terminated */
	uint32_t sql_len;
	char **refs;    /* the tables and views it reads or writes */
	unsigned nrefs;
};

/* A growing list of names (not owned). */
struct names {
	const char **v;
	size_t n, cap;
};

static bool names_has(const struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcasecmp(s->v[i], name) == 0)
			return true;
	return false;
}

static int names_add(struct names *s, const char *name)
{
	if (names_has(s, name))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		const char **v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return MTR_ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = name;
	return 0;
}

/* Add what statement st names: the tables it reads and writes, and the
 * object it creates or drops. */
static int names_add_stmt(struct names *s, const struct sql_stmt *st)
{
	int rc = 0;
	for (unsigned i = 0; i < st->n_tables_read && !rc; i++)
		rc = names_add(s, st->tables_read[i]);
	for (unsigned i = 0; i < st->n_tables_written && !rc; i++)
		rc = names_add(s, st->tables_written[i]);
	if (!rc && st->object)
		rc = names_add(s, st->object);
	return rc;
}

static void temp_free(struct client_temp *t)
{
	free(t->name);
	free(t->on);
	free(t->sql);
	for (unsigned i = 0; i < t->nrefs; i++)
		free(t->refs[i]);
	free(t->refs);
}

void client_temp_clear(mtr *db)
{
	for (size_t i = 0; i < db->ntemps; i++)
		temp_free(&db->temps[i]);
	free(db->temps);
	db->temps = NULL;
	db->ntemps = db->temps_cap = 0;
}

static struct client_temp *temp_find(mtr *db, char type, const char *name)
{
	for (size_t i = 0; i < db->ntemps; i++)
		if (db->temps[i].type == type && strcasecmp(db->temps[i].name, name) == 0)
			return &db->temps[i];
	return NULL;
}

bool client_temp_kept(mtr *db, char type, const char *name)
{
	return name && temp_find(db, type, name) != NULL;
}

int client_temp_prelude(mtr *db, const char *sql, uint32_t len, struct client_prelude *out)
{
	memset(out, 0, sizeof *out);
	if (db->ntemps == 0)
		return 0;
	struct sql_result *res = NULL;
	if (sql_parse(sql, len, &res) != 0)
		return client_err(db, MTR_ENOMEM, "out of memory");
	struct names want = {0};
	int rc = 0;
	for (unsigned i = 0; i < res->n_stmts && !rc; i++)
		rc = names_add_stmt(&want, &res->stmts[i]);
	/* what the request names, then what those name, until nothing is new */
	bool *use = calloc(db->ntemps, sizeof *use);
	if (!use)
		rc = MTR_ENOMEM;
	for (bool grew = true; grew && !rc;) {
		grew = false;
		for (size_t i = 0; i < db->ntemps && !rc; i++) {
			const struct client_temp *t = &db->temps[i];
			if (use[i] || !(names_has(&want, t->name) || (t->on && names_has(&want, t->on))))
				continue;
			use[i] = grew = true;
			for (unsigned k = 0; k < t->nrefs && !rc; k++)
				rc = names_add(&want, t->refs[k]);
		}
	}
	size_t total = 0;
	for (size_t i = 0; i < db->ntemps && !rc; i++)
		if (use[i])
			total += db->temps[i].sql_len + 2;
	if (!rc && total && (uint64_t)total + len > UINT32_MAX) {
		free(use);
		free(want.v);
		sql_result_free(res);
		return client_err(db, MTR_ETOOBIG, "request too large with the TEMP definitions it uses");
	}
	if (!rc && total) {
		out->text = malloc(total + len + 1);
		if (!out->text)
			rc = MTR_ENOMEM;
	}
	if (!rc && total) {
		/* in the order they were made: each after what it may name */
		char *p = out->text;
		for (size_t i = 0; i < db->ntemps; i++) {
			const struct client_temp *t = &db->temps[i];
			if (!use[i])
				continue;
			memcpy(p, t->sql, t->sql_len);
			p += t->sql_len;
			*p++ = ';';
			*p++ = '\n';
			out->nstmts++;
			for (uint32_t k = 0; k < t->sql_len; k++)
				out->lines += t->sql[k] == '\n';
			out->lines++;
		}
		memcpy(p, sql, len);
		p[len] = 0;
		out->len = (uint32_t)(total + len);
	}
	free(use);
	free(want.v);
	sql_result_free(res);
	if (rc) {
		free(out->text);
		memset(out, 0, sizeof *out);
		return client_err(db, rc, "out of memory");
	}
	return 0;
}

int client_temp_keep(mtr *db, const char *sql, uint32_t len)
{
	struct sql_result *res = NULL;
	if (sql_parse(sql, len, &res) != 0)
		return client_err(db, MTR_ENOMEM, "out of memory");
	int rc = MTR_EINVAL;
	const struct sql_stmt *st = res->n_stmts == 1 ? &res->stmts[0] : NULL;
	if (!st || !st->temp || !st->object || (st->object_type != 'v' && st->object_type != 'r')) {
		sql_result_free(res);
		return client_err(db, MTR_EINVAL, "not a CREATE TEMP VIEW or CREATE TEMP TRIGGER statement");
	}
	if (temp_find(db, st->object_type, st->object)) {
		/* IF NOT EXISTS of a kept one: SQLite did nothing, nor do we */
		sql_result_free(res);
		return 0;
	}
	struct names refs = {0};
	rc = names_add_stmt(&refs, st);
	if (!rc && db->ntemps == db->temps_cap) {
		size_t cap = db->temps_cap ? db->temps_cap * 2 : 8;
		struct client_temp *n = realloc(db->temps, cap * sizeof *n);
		if (!n)
			rc = MTR_ENOMEM;
		else {
			db->temps = n;
			db->temps_cap = cap;
		}
	}
	struct client_temp t = {0};
	if (!rc) {
		t.name = strdup(st->object);
		t.type = st->object_type;
		t.on = st->object_type == 'r' && st->n_tables_written ? strdup(st->tables_written[0]) : NULL;
		t.sql = malloc((size_t)(st->end - st->start) + 1);
		t.refs = calloc(refs.n ? refs.n : 1, sizeof *t.refs);
		if (!t.name || !t.sql || !t.refs || (t.type == 'r' && st->n_tables_written && !t.on))
			rc = MTR_ENOMEM;
	}
	if (!rc) {
		t.sql_len = st->end - st->start;
		memcpy(t.sql, sql + st->start, t.sql_len);
		t.sql[t.sql_len] = 0;
		for (size_t i = 0; i < refs.n && !rc; i++) {
			if (strcasecmp(refs.v[i], t.name) == 0)
				continue;
			t.refs[t.nrefs] = strdup(refs.v[i]);
			if (!t.refs[t.nrefs++])
				rc = MTR_ENOMEM;
		}
	}
	free(refs.v);
	sql_result_free(res);
	if (rc) {
		temp_free(&t);
		return client_err(db, rc, "out of memory");
	}
	db->temps[db->ntemps++] = t;
	return 0;
}

int client_temp_drop(mtr *db, char type, const char *name)
{
	struct client_temp *t = temp_find(db, type, name);
	if (!t)
		return 0;
	char *gone = t->name;
	t->name = NULL;
	/* dropping a view drops the triggers on it, as in SQLite */
	size_t k = 0;
	for (size_t i = 0; i < db->ntemps; i++) {
		struct client_temp *u = &db->temps[i];
		bool drop = u->name == NULL || (type == 'v' && u->on && strcasecmp(u->on, gone) == 0);
		if (drop)
			temp_free(u);
		else
			db->temps[k++] = *u;
	}
	db->ntemps = k;
	free(gone);
	return 1;
}
