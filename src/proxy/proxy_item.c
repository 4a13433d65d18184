/*
 * proxy_item.c - turn one client request (SQL text + bound values) into one
 * encoded item record.
 *
 * Steps: sql_parse() the text; refuse it whole if any statement is an error
 * or refused; walk the statements to strip BEGIN/COMMIT/END (the group
 * becomes WIRE_ITEM_TXN) and to drop groups ended by ROLLBACK; map the
 * caller's binds onto SQLite's parameter numbers of every statement; encode
 * one wire_stmt per remaining statement, each with its own parameters.
 * Pure: no I/O, no clock.  doc/proxy.md states the rules this implements.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metronome.h"
#include "proxy_item.h"
#include "sql.h"

/* Fill *err (may be NULL) with a position and a printf-style message. */
static void err_set(struct proxy_err *err, const struct sql_pos *pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void err_set(struct proxy_err *err, const struct sql_pos *pos, const char *fmt, ...)
{
	if (!err)
		return;
	err->line = pos ? pos->line : 0;
	err->col = pos ? pos->col : 0;
	err->off = pos ? pos->off : 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
}

/* Report the first statement that is an error or refused. */
static int first_bad(const struct sql_result *res, struct proxy_err *err)
{
	for (unsigned i = 0; i < res->n_stmts; i++) {
		const struct sql_stmt *st = &res->stmts[i];
		if (st->kind != SQL_ERROR && st->kind != SQL_REFUSED)
			continue;
		err_set(err, &st->error_pos, "%s", st->error ? st->error : sql_kind_name(st->kind));
		return st->kind == SQL_ERROR ? MTR_ESYNTAX : MTR_EREFUSED;
	}
	err_set(err, NULL, "invalid statement"); /* res->ok false without a culprit: not expected */
	return MTR_ESYNTAX;
}

/*
 * Decide which statements travel.  keep[i] is set for statements that go
 * into the item.  BEGIN opens a group, COMMIT/END closes it (the item is then
 * a transaction), ROLLBACK closes it and unkeeps everything since its BEGIN.
 * SAVEPOINT, RELEASE and ROLLBACK TO stay: they nest inside the replica's
 * savepoint.  Returns 0 or MTR_EINVAL/MTR_ENOTSUP with *err set.
 */
static int plan_txn(const struct sql_result *res, bool *keep, bool *txn, struct proxy_err *err)
{
	bool in_group = false;
	unsigned begin = 0; /* index of the open group's BEGIN */
	*txn = false;
	for (unsigned i = 0; i < res->n_stmts; i++) {
		const struct sql_stmt *st = &res->stmts[i];
		keep[i] = true;
		if (st->kind != SQL_TXN)
			continue;
		switch (st->txn) {
		case SQL_TXN_BEGIN:
			if (in_group) {
				err_set(err, &st->pos, "cannot start a transaction within a transaction at line %u, column %u",
					st->pos.line, st->pos.col);
				return MTR_EINVAL;
			}
			in_group = true;
			begin = i;
			keep[i] = false;
			break;
		case SQL_TXN_COMMIT:
			if (!in_group) {
				err_set(err, &st->pos, "cannot commit - no transaction is active at line %u, column %u",
					st->pos.line, st->pos.col);
				return MTR_EINVAL;
			}
			in_group = false;
			keep[i] = false;
			*txn = true;
			break;
		case SQL_TXN_ROLLBACK:
			if (!in_group) {
				err_set(err, &st->pos, "cannot rollback - no transaction is active at line %u, column %u",
					st->pos.line, st->pos.col);
				return MTR_EINVAL;
			}
			in_group = false;
			for (unsigned j = begin; j <= i; j++)
				keep[j] = false;
			break;
		default: /* SAVEPOINT, RELEASE, ROLLBACK TO */
			break;
		}
	}
	if (in_group) {
		const struct sql_pos *p = &res->stmts[begin].pos;
		err_set(err, p,
			"BEGIN without COMMIT at line %u, column %u: a transaction must be sent whole in one request",
			p->line, p->col);
		return MTR_ENOTSUP;
	}
	return 0;
}

/* Does statement st have a parameter written `name`?  Its number, or 0. */
static int param_number(const struct sql_stmt *st, const char *name)
{
	for (unsigned k = 0; k < st->n_params; k++)
		if (st->params[k].name && strcmp(st->params[k].name, name) == 0)
			return st->params[k].number;
	return 0;
}

/*
 * Place the binds into vals (one slot per parameter of every statement, in
 * text order: statement i's ?N is vals[off[i] + N - 1]).  A bind by number
 * counts over that concatenation (for one statement it is SQLite's number);
 * a bind by name applies to every statement that uses the name.
 */
static int place_binds(const struct sql_result *res, const size_t *off, size_t total, const struct cproto_bind *binds,
		       size_t nbinds, struct wire_value *vals, struct proxy_err *err)
{
	for (size_t b = 0; b < nbinds; b++) {
		const struct cproto_bind *bd = &binds[b];
		if (bd->v.type > WIRE_V_BLOB) {
			err_set(err, NULL, "bind %zu: invalid value type %u", b, bd->v.type);
			return MTR_EINVAL;
		}
		if (bd->index > 0) {
			if ((size_t)bd->index > total) {
				err_set(err, NULL, "bind %zu: no parameter number %d (the text has %zu)", b, bd->index,
					total);
				return MTR_EINVAL;
			}
			vals[bd->index - 1] = bd->v;
			continue;
		}
		if (!bd->name || !bd->name[0]) {
			err_set(err, NULL, "bind %zu: neither a parameter number nor a name", b);
			return MTR_EINVAL;
		}
		bool found = false;
		for (unsigned i = 0; i < res->n_stmts; i++) {
			int n = param_number(&res->stmts[i], bd->name);
			if (n > 0) {
				vals[off[i] + (size_t)n - 1] = bd->v;
				found = true;
			}
		}
		if (!found) {
			err_set(err, NULL, "bind %zu: no parameter named %s", b, bd->name);
			return MTR_EINVAL;
		}
	}
	return 0;
}

void proxy_parse_cache_clear(struct proxy_parse_cache *c)
{
	for (unsigned i = 0; i < PROXY_PARSE_CACHE_SLOTS; i++) {
		free(c->slot[i].text);
		sql_result_free(c->slot[i].res);
	}
	memset(c, 0, sizeof *c);
}

/* The parse of sql[0..len): kept in c when c holds it or can keep it
 * (*kept set: the caller must not free it), else fresh.  0 or the error. */
static int parse_cached(struct proxy_parse_cache *c, const char *sql, size_t len, struct sql_result **res, bool *kept)
{
	*kept = false;
	if (!c || len > PROXY_PARSE_CACHE_MAX)
		return sql_parse(sql, len, res);
	unsigned lru = 0;
	for (unsigned i = 0; i < PROXY_PARSE_CACHE_SLOTS; i++) {
		if (c->slot[i].used && c->slot[i].len == len && memcmp(c->slot[i].text, sql, len) == 0) {
			c->slot[i].used = ++c->tick;
			c->hits++;
			*res = c->slot[i].res;
			*kept = true;
			return 0;
		}
		if (c->slot[i].used < c->slot[lru].used)
			lru = i;
	}
	c->misses++;
	int rc = sql_parse(sql, len, res);
	char *text = rc == 0 ? malloc(len ? len : 1) : NULL;
	if (!text)
		return rc; /* not kept: still a valid parse (or the error) */
	memcpy(text, sql, len);
	free(c->slot[lru].text);
	sql_result_free(c->slot[lru].res);
	c->slot[lru].text = text;
	c->slot[lru].len = len;
	c->slot[lru].res = *res;
	c->slot[lru].used = ++c->tick;
	*kept = true;
	return 0;
}

int proxy_item_build(const struct proxy_item_in *in, struct proxy_item_out *out, struct proxy_err *err)
{
	if (err)
		memset(err, 0, sizeof *err);
	if (!in || !out || !in->sql || (in->nbinds && !in->binds)) {
		err_set(err, NULL, "invalid argument");
		return MTR_EINVAL;
	}
	memset(out, 0, sizeof *out);
	const char *sql = in->sql;
	size_t len = in->len;
	if (len > UINT32_MAX) {
		err_set(err, NULL, "request text of %zu bytes is too large", len);
		return MTR_ETOOBIG;
	}

	struct sql_result *res = NULL;
	bool kept;
	int rc = parse_cached(in->cache, sql, len, &res, &kept);
	if (rc < 0) {
		err_set(err, NULL, "%s", mtr_strerror(rc));
		return rc;
	}
	bool *keep = NULL;
	size_t *off = NULL;
	struct wire_value *vals = NULL;
	struct wire_stmt *ws = NULL;

	if (res->n_stmts == 0) {
		err_set(err, NULL, "empty request: no statement");
		rc = MTR_EINVAL;
		goto done;
	}
	if (!res->ok) {
		rc = first_bad(res, err);
		goto done;
	}

	keep = calloc(res->n_stmts, sizeof *keep);
	off = calloc(res->n_stmts, sizeof *off);
	ws = calloc(res->n_stmts, sizeof *ws);
	if (!keep || !off || !ws) {
		rc = MTR_ENOMEM;
		goto done;
	}
	bool txn;
	rc = plan_txn(res, keep, &txn, err);
	if (rc < 0)
		goto done;

	size_t total = 0;
	for (unsigned i = 0; i < res->n_stmts; i++) {
		off[i] = total;
		total += res->stmts[i].max_param > 0 ? (size_t)res->stmts[i].max_param : 0;
	}
	/* calloc: every slot starts as NULL (type 0), as an unbound SQLite parameter */
	vals = calloc(total ? total : 1, sizeof *vals);
	if (!vals) {
		rc = MTR_ENOMEM;
		goto done;
	}
	rc = place_binds(res, off, total, in->binds, in->nbinds, vals, err);
	if (rc < 0)
		goto done;

	uint32_t n = 0, n_main = 0;
	bool reads_only = true, temp = false;
	for (unsigned i = 0; i < res->n_stmts; i++) {
		const struct sql_stmt *st = &res->stmts[i];
		if (!keep[i])
			continue;
		/* a session's TEMP VIEW / TRIGGER definitions change no
		 * replicated state (doc/sql.md) */
		if (st->temp)
			temp = true;
		else if (n_main++, st->kind != SQL_READ)
			reads_only = false;
		ws[n].sql = sql + st->start;
		ws[n].sql_len = st->end - st->start;
		ws[n].nparams = (uint16_t)(st->max_param > 0 ? st->max_param : 0);
		ws[n].params = vals + off[i];
		n++;
	}
	if (n == 0) {
		rc = PROXY_ITEM_NONE;
		goto done;
	}
	/* doc/sql.md: only a single read statement (not one_item) is a read,
	 * with the TEMP definitions it needs in front of it */
	bool read = reads_only && !txn && n_main <= 1 && (temp || !res->one_item);

	struct wire_item it = {
		.stream = in->stream,
		.seq = in->seq,
		.request = in->request,
		.client = read ? 0 : in->client, /* reads are not de-duplicated */
		.floor = read ? 0 : in->floor,
		.timestamp_us = in->now_us,
		.seed = in->seed,
		.flags = (txn ? WIRE_ITEM_TXN : 0u) | (read ? WIRE_ITEM_READ : 0u) | (temp ? WIRE_ITEM_TEMP : 0u),
		.nstmt = n,
		.stmts = ws,
	};
	size_t size = wire_item_size(&it);
	uint8_t *buf = malloc(size);
	if (!buf) {
		rc = MTR_ENOMEM;
		goto done;
	}
	long w = wire_item_encode(buf, size, &it);
	if (w < 0) {
		free(buf);
		err_set(err, NULL, "cannot encode the item: %s", mtr_strerror((int)w));
		rc = (int)w;
		goto done;
	}
	out->buf = buf;
	out->len = (size_t)w;
	out->flags = it.flags;
	out->nstmt = n;
	rc = read ? PROXY_ITEM_READ : 0;
done:
	if (rc == MTR_ENOMEM && err && !err->msg[0])
		err_set(err, NULL, "%s", mtr_strerror(rc));
	free(ws);
	free(vals);
	free(off);
	free(keep);
	if (!kept)
		sql_result_free(res);
	return rc;
}

uint64_t proxy_stream_id(uint64_t now_us, const uint8_t rnd[8])
{
	uint32_t r = 0;
	for (int i = 0; i < 4; i++)
		r |= (uint32_t)(rnd[i] ^ rnd[i + 4]) << (8 * i);
	/* the sub-second clock keeps two starts apart even with weak randomness */
	r ^= (uint32_t)(now_us % 1000000u);
	uint64_t id = ((uint64_t)(uint32_t)(now_us / 1000000u) << 32) | r;
	return id ? id : 1;
}
