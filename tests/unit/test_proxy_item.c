/*
 * test_proxy_item.c - the proxy's request-to-item builder: parameter mapping
 * (checked against sqlite3_bind_parameter_index on the same text), reads,
 * multi-statement items, BEGIN/COMMIT/ROLLBACK groups, refusals and errors
 * with positions, and the stream id.  Every built item is decoded back with
 * wire_item_decode and compared statement by statement.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "metronome.h"
#include "proxy_item.h"
#include "sql.h"
#include "wire.h"

#define MAXS 8
#define MAXP 16

/* A decoded item: its fixed fields, statements and parameters. */
struct dec {
	struct wire_item it;
	unsigned n;
	char sql[MAXS][256];
	unsigned np[MAXS];
	struct wire_value p[MAXS][MAXP];
};

static int build(const char *sql, const struct cproto_bind *b, size_t nb, struct proxy_item_out *out,
		 struct proxy_err *err)
{
	struct proxy_item_in in = {.sql = sql, .len = strlen(sql), .binds = b, .nbinds = nb, .stream = 7, .seq = 8,
				   .request = 9, .now_us = 1700000000123456LL, .seed = 0x5eedULL};
	return proxy_item_build(&in, out, err);
}

/* Decode out->buf fully into *d and free it. */
static void decode(struct proxy_item_out *out, struct dec *d)
{
	memset(d, 0, sizeof *d);
	assert_non_null(out->buf);
	long r = wire_item_decode(out->buf, out->len, &d->it);
	assert_int_equal(r, (long)out->len);
	assert_int_equal(d->it.stream, 7);
	assert_int_equal(d->it.seq, 8);
	assert_int_equal(d->it.request, 9);
	assert_int_equal(d->it.timestamp_us, 1700000000123456LL);
	assert_int_equal(d->it.seed, 0x5eedULL);
	assert_int_equal(d->it.flags, out->flags);
	assert_int_equal(d->it.nstmt, out->nstmt);
	struct wire_stmt_iter si;
	struct wire_stmt st;
	const uint8_t *pp;
	wire_stmt_begin(&d->it, &si);
	while (wire_stmt_next(&si, &st, &pp)) {
		assert_true(d->n < MAXS);
		assert_true(st.sql_len < sizeof d->sql[0]);
		memcpy(d->sql[d->n], st.sql, st.sql_len);
		assert_true(st.nparams <= MAXP);
		d->np[d->n] = st.nparams;
		for (unsigned k = 0; k < st.nparams; k++)
			wire_param_next(&pp, &d->p[d->n][k]);
		d->n++;
	}
	assert_int_equal(d->n, out->nstmt);
	free(out->buf);
	out->buf = NULL;
}

static struct cproto_bind bint(int index, const char *name, int64_t v)
{
	struct cproto_bind b = {.index = index, .name = name};
	b.v.type = WIRE_V_INT;
	b.v.u.i = v;
	return b;
}

/* ---- single statements and parameters ---- */

static void test_write_item(void **state)
{
	(void)state;
	struct cproto_bind b[2] = {bint(1, NULL, 42), {.name = ":a"}};
	b[1].v.type = WIRE_V_TEXT;
	b[1].v.u.b.p = "hey";
	b[1].v.u.b.n = 3;
	struct proxy_item_out out;
	struct proxy_err err;
	assert_int_equal(build("INSERT INTO t VALUES(?1, :a, ?)", b, 2, &out, &err), 0);
	assert_int_equal(out.flags, 0);
	struct dec d;
	decode(&out, &d);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.sql[0], "INSERT INTO t VALUES(?1, :a, ?)");
	assert_int_equal(d.np[0], 3);
	assert_int_equal(d.p[0][0].type, WIRE_V_INT);
	assert_int_equal(d.p[0][0].u.i, 42);
	assert_int_equal(d.p[0][1].type, WIRE_V_TEXT);
	assert_int_equal(d.p[0][1].u.b.n, 3);
	assert_memory_equal(d.p[0][1].u.b.p, "hey", 3);
	assert_int_equal(d.p[0][2].type, WIRE_V_NULL); /* unbound: NULL, as SQLite */
}

/* Every named parameter lands where sqlite3_bind_parameter_index says. */
static void test_params_match_sqlite(void **state)
{
	(void)state;
	static const char *texts[] = {
		"SELECT :a, ?, @b, ?5, $c, :a, ?, ?2",
		"SELECT ?3, :x, ?, $y, :x, @z",
		"INSERT INTO t VALUES(:p, @q, $r, ?, ?7, :p)",
	};
	sqlite3 *db;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(a,b,c,d,e,f)", NULL, NULL, NULL), SQLITE_OK);
	for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
		const char *txt = texts[t];
		sqlite3_stmt *ps;
		assert_int_equal(sqlite3_prepare_v2(db, txt, -1, &ps, NULL), SQLITE_OK);
		int count = sqlite3_bind_parameter_count(ps);
		/* bind every named slot by name with value 100 + its SQLite index */
		struct cproto_bind b[MAXP];
		size_t nb = 0;
		for (int i = 1; i <= count; i++) {
			const char *nm = sqlite3_bind_parameter_name(ps, i);
			if (!nm || nm[0] == '?')
				continue;
			assert_int_equal(sqlite3_bind_parameter_index(ps, nm), i);
			b[nb++] = bint(0, nm, 100 + i);
		}
		/* and every nameless slot by number */
		for (int i = 1; i <= count; i++)
			if (!sqlite3_bind_parameter_name(ps, i) || sqlite3_bind_parameter_name(ps, i)[0] == '?')
				b[nb++] = bint(i, NULL, 100 + i);
		struct proxy_item_out out;
		struct proxy_err err;
		int rc = build(txt, b, nb, &out, &err);
		assert_true(rc == 0 || rc == PROXY_ITEM_READ);
		assert_int_equal(rc == PROXY_ITEM_READ, strncmp(txt, "SELECT", 6) == 0);
		struct dec d;
		decode(&out, &d);
		assert_int_equal(d.n, 1);
		assert_int_equal(d.np[0], count);
		for (int i = 1; i <= count; i++) {
			/* slots SQLite counts but the text never names (?5 skips 3, 4) stay unbound */
			const char *nm = sqlite3_bind_parameter_name(ps, i);
			if (!nm) {
				assert_int_equal(d.p[0][i - 1].type, WIRE_V_INT);
			}
			if (d.p[0][i - 1].type == WIRE_V_INT)
				assert_int_equal(d.p[0][i - 1].u.i, 100 + i);
		}
		/* named slots got their values through the name */
		for (int i = 1; i <= count; i++) {
			const char *nm = sqlite3_bind_parameter_name(ps, i);
			if (nm && nm[0] != '?') {
				assert_int_equal(d.p[0][i - 1].type, WIRE_V_INT);
				assert_int_equal(d.p[0][i - 1].u.i, 100 + i);
			}
		}
		sqlite3_finalize(ps);
	}
	sqlite3_close(db);
}

static void test_bind_errors(void **state)
{
	(void)state;
	struct proxy_item_out out;
	struct proxy_err err;
	struct cproto_bind b = bint(0, ":nope", 1);
	assert_int_equal(build("INSERT INTO t VALUES(:a)", &b, 1, &out, &err), MTR_EINVAL);
	assert_null(out.buf);
	assert_non_null(strstr(err.msg, ":nope"));
	b = bint(3, NULL, 1);
	assert_int_equal(build("INSERT INTO t VALUES(?, ?)", &b, 1, &out, &err), MTR_EINVAL);
	assert_non_null(strstr(err.msg, "number 3"));
	b = bint(0, NULL, 1);
	assert_int_equal(build("INSERT INTO t VALUES(?)", &b, 1, &out, &err), MTR_EINVAL);
	b = bint(1, NULL, 1);
	b.v.type = 9;
	assert_int_equal(build("INSERT INTO t VALUES(?)", &b, 1, &out, &err), MTR_EINVAL);
	/* a name is matched as SQLite matches it: with its prefix */
	b = bint(0, "a", 1);
	assert_int_equal(build("INSERT INTO t VALUES(:a)", &b, 1, &out, &err), MTR_EINVAL);
	assert_int_equal(build("", NULL, 0, &out, &err), MTR_EINVAL);
}

static void test_refused_and_syntax(void **state)
{
	(void)state;
	struct proxy_item_out out;
	struct proxy_err err;
	assert_int_equal(build("SELECT 1;\n  SELEC 2", NULL, 0, &out, &err), MTR_ESYNTAX);
	assert_null(out.buf);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 3);
	assert_non_null(strstr(err.msg, "line 2"));
	assert_int_equal(build("INSERT INTO t VALUES(1);\nATTACH 'x.db' AS x", NULL, 0, &out, &err), MTR_EREFUSED);
	assert_null(out.buf);
	assert_int_equal(err.line, 2);
	assert_true(err.col >= 1);
	assert_true(err.msg[0] != 0);
}

static void test_read(void **state)
{
	(void)state;
	struct proxy_item_out out;
	struct proxy_err err;
	assert_int_equal(build("SELECT * FROM t WHERE a = ?", NULL, 0, &out, &err), PROXY_ITEM_READ);
	assert_int_equal(out.flags, WIRE_ITEM_READ);
	struct dec d;
	decode(&out, &d);
	assert_int_equal(d.n, 1);
	/* several reads travel as one item, not as a read */
	assert_int_equal(build("SELECT 1; SELECT 2", NULL, 0, &out, &err), 0);
	assert_int_equal(out.flags & WIRE_ITEM_READ, 0);
	decode(&out, &d);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.sql[0], "SELECT 1");
	assert_string_equal(d.sql[1], "SELECT 2");
}

/* A session's TEMP definitions in front of a request (doc/sql.md). */
static void test_temp_prelude(void **state)
{
	(void)state;
	struct proxy_item_out out;
	struct proxy_err err;
	struct dec d;
	/* definitions + one read: still a read, flagged TEMP */
	assert_int_equal(build("CREATE TEMP VIEW v2 AS SELECT x FROM t1;\nSELECT * FROM v2", NULL, 0, &out, &err),
			 PROXY_ITEM_READ);
	assert_int_equal(out.flags, WIRE_ITEM_READ | WIRE_ITEM_TEMP);
	decode(&out, &d);
	assert_int_equal(d.n, 2);
	/* a definition alone (checking it) is a read */
	assert_int_equal(build("CREATE TEMP TRIGGER tr AFTER INSERT ON t1 BEGIN SELECT 1; END", NULL, 0, &out, &err),
			 PROXY_ITEM_READ);
	free(out.buf);
	/* definitions + a write: an ordered item, flagged TEMP */
	assert_int_equal(build("CREATE TEMP VIEW v2 AS SELECT x FROM t1;\nINSERT INTO t2 SELECT * FROM v2", NULL, 0,
			       &out, &err),
			 0);
	assert_int_equal(out.flags, WIRE_ITEM_TEMP);
	free(out.buf);
	/* definitions + two reads, or a transaction: ordered as before */
	assert_int_equal(build("CREATE TEMP VIEW v AS SELECT 1; SELECT 1; SELECT 2", NULL, 0, &out, &err), 0);
	assert_int_equal(out.flags, WIRE_ITEM_TEMP);
	free(out.buf);
	assert_int_equal(build("CREATE TEMP VIEW v AS SELECT 1; BEGIN; SELECT * FROM v; COMMIT", NULL, 0, &out, &err), 0);
	assert_int_equal(out.flags, WIRE_ITEM_TEMP | WIRE_ITEM_TXN);
	free(out.buf);
	/* a temp table is refused */
	assert_int_equal(build("CREATE TEMP TABLE x(a)", NULL, 0, &out, &err), MTR_EREFUSED);
	assert_non_null(strstr(err.msg, "TEMP TABLE"));
}

/* ---- several statements and transaction groups ---- */

static void test_multi_params_split(void **state)
{
	(void)state;
	struct cproto_bind b[3] = {bint(1, NULL, 10), bint(0, ":x", 20), bint(3, NULL, 30)};
	struct proxy_item_out out;
	struct proxy_err err;
	assert_int_equal(build("INSERT INTO t VALUES(?); INSERT INTO u VALUES(:x, ?);\nDELETE FROM v WHERE a = :x",
			       b, 3, &out, &err),
			 0);
	assert_int_equal(out.flags, 0);
	struct dec d;
	decode(&out, &d);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.sql[0], "INSERT INTO t VALUES(?)");
	assert_string_equal(d.sql[1], "INSERT INTO u VALUES(:x, ?)");
	assert_string_equal(d.sql[2], "DELETE FROM v WHERE a = :x");
	assert_int_equal(d.np[0], 1);
	assert_int_equal(d.p[0][0].u.i, 10);
	assert_int_equal(d.np[1], 2);
	assert_int_equal(d.p[1][0].u.i, 20);
	assert_int_equal(d.p[1][1].u.i, 30);
	assert_int_equal(d.np[2], 1);
	assert_int_equal(d.p[2][0].u.i, 20); /* a name binds in every statement using it */
	/* 4 slots in all (1 + 2 + 1): ?5 is unknown */
	b[0] = bint(5, NULL, 1);
	assert_int_equal(build("INSERT INTO t VALUES(?); INSERT INTO u VALUES(:x, ?);\nDELETE FROM v WHERE a = :x",
			       b, 1, &out, &err),
			 MTR_EINVAL);
}

static void test_txn_group(void **state)
{
	(void)state;
	struct proxy_item_out out;
	struct proxy_err err;
	struct dec d;
	assert_int_equal(build("BEGIN; INSERT INTO t VALUES(1); UPDATE t SET a = 2; COMMIT", NULL, 0, &out, &err), 0);
	assert_int_equal(out.flags, WIRE_ITEM_TXN);
	decode(&out, &d);
	assert_int_equal(d.it.flags, WIRE_ITEM_TXN);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.sql[0], "INSERT INTO t VALUES(1)");
	assert_string_equal(d.sql[1], "UPDATE t SET a = 2");

	/* END TRANSACTION closes too; savepoints stay as written */
	assert_int_equal(build("BEGIN IMMEDIATE; SAVEPOINT s; DELETE FROM t; RELEASE s; END TRANSACTION", NULL, 0,
			       &out, &err),
			 0);
	decode(&out, &d);
	assert_int_equal(d.it.flags, WIRE_ITEM_TXN);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.sql[0], "SAVEPOINT s");
	assert_string_equal(d.sql[2], "RELEASE s");

	/* a group of reads is a transaction item, not a read */
	assert_int_equal(build("BEGIN; SELECT 1; COMMIT", NULL, 0, &out, &err), 0);
	decode(&out, &d);
	assert_int_equal(d.it.flags, WIRE_ITEM_TXN);
}

static void test_rollback_drops_group(void **state)
{
	(void)state;
	struct proxy_item_out out;
	struct proxy_err err;
	struct dec d;
	assert_int_equal(build("BEGIN; INSERT INTO t VALUES(1); ROLLBACK", NULL, 0, &out, &err), PROXY_ITEM_NONE);
	assert_null(out.buf);
	assert_int_equal(build("BEGIN; COMMIT", NULL, 0, &out, &err), PROXY_ITEM_NONE);
	assert_null(out.buf);
	/* statements outside the dropped group remain; their binds still count */
	struct cproto_bind b[3] = {bint(1, NULL, 1), bint(2, NULL, 2), bint(3, NULL, 3)};
	assert_int_equal(build("INSERT INTO t VALUES(?); BEGIN; INSERT INTO t VALUES(?); ROLLBACK;"
			       " INSERT INTO t VALUES(?)",
			       b, 3, &out, &err),
			 0);
	assert_int_equal(out.flags, 0);
	decode(&out, &d);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.p[0][0].u.i, 1);
	assert_int_equal(d.p[1][0].u.i, 3);
	/* ROLLBACK TO is a savepoint rollback: kept */
	assert_int_equal(build("BEGIN; SAVEPOINT a; INSERT INTO t VALUES(1); ROLLBACK TO a; COMMIT", NULL, 0, &out,
			       &err),
			 0);
	decode(&out, &d);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.sql[2], "ROLLBACK TO a");
}

static void test_txn_errors(void **state)
{
	(void)state;
	struct proxy_item_out out;
	struct proxy_err err;
	assert_int_equal(build("INSERT INTO t VALUES(1);\n COMMIT", NULL, 0, &out, &err), MTR_EINVAL);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 2);
	assert_non_null(strstr(err.msg, "line 2, column 2"));
	assert_int_equal(build("ROLLBACK", NULL, 0, &out, &err), MTR_EINVAL);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.col, 1);
	assert_int_equal(build("BEGIN;\nINSERT INTO t VALUES(1);\n  BEGIN; COMMIT", NULL, 0, &out, &err), MTR_EINVAL);
	assert_int_equal(err.line, 3);
	assert_int_equal(err.col, 3);
	assert_int_equal(build("SELECT 1;\n BEGIN; INSERT INTO t VALUES(1)", NULL, 0, &out, &err), MTR_ENOTSUP);
	assert_null(out.buf);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 2);
}

/* ---- stream ids ---- */

static void test_stream_id(void **state)
{
	(void)state;
	const uint8_t zero[8] = {0};
	const uint8_t r1[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	const uint8_t r2[8] = {9, 2, 3, 4, 5, 6, 7, 8};
	assert_int_not_equal(proxy_stream_id(0, zero), 0);
	uint64_t now = 1700000000123456ULL;
	uint64_t a = proxy_stream_id(now, r1), b = proxy_stream_id(now, r2);
	assert_int_not_equal(a, 0);
	assert_int_not_equal(a, b);
	assert_int_equal(a, proxy_stream_id(now, r1)); /* pure */
	assert_int_equal(a >> 32, now / 1000000);
	assert_int_not_equal(proxy_stream_id(now, zero), proxy_stream_id(now + 1, zero));
	/* no zero for any one-byte random value at time 0 */
	for (unsigned v = 0; v < 256; v++) {
		uint8_t r[8] = {(uint8_t)v, 0, 0, 0, (uint8_t)v, 0, 0, 0};
		assert_int_not_equal(proxy_stream_id(0, r), 0);
	}
}

/* Build sql with binds b through cache c (NULL: none) into a byte copy. */
static int build_cached(struct proxy_parse_cache *c, const char *sql, const struct cproto_bind *b, size_t nb,
			struct proxy_item_out *out, struct proxy_err *err)
{
	struct proxy_item_in in = {.sql = sql, .len = strlen(sql), .binds = b, .nbinds = nb, .stream = 7, .seq = 8,
				   .request = 9, .now_us = 1700000000123456LL, .seed = 0x5eedULL, .cache = c};
	return proxy_item_build(&in, out, err);
}

/* The parse cache: a hit gives the very bytes a fresh parse gives, for
 * writes, reads, errors and transactions; the least recently used text
 * is replaced; a text above PROXY_PARSE_CACHE_MAX is never kept. */
static void test_parse_cache(void **state)
{
	(void)state;
	struct proxy_parse_cache c;
	memset(&c, 0, sizeof c);
	const char *texts[] = {
		"INSERT INTO t VALUES(?1, :b), (?, ?)",
		"SELECT * FROM t WHERE a = ?",
		"BEGIN; INSERT INTO t VALUES(?); UPDATE t SET a = ?; COMMIT",
		"INSERT INTO t VALUES(random())",
		"SELEC 1",
		"SELECT load_extension('x')",
		"BEGIN; ROLLBACK",
	};
	struct cproto_bind b[2] = {bint(1, NULL, 11), bint(2, NULL, 22)};
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		for (int round = 0; round < 3; round++) {
			struct proxy_item_out o1 = {0}, o2 = {0};
			struct proxy_err e1, e2;
			b[0].v.u.i = round; /* other values, same text: still a hit */
			int r1 = build_cached(NULL, texts[i], b, 2, &o1, &e1);
			int r2 = build_cached(&c, texts[i], b, 2, &o2, &e2);
			assert_int_equal(r1, r2);
			assert_int_equal(o1.len, o2.len);
			assert_int_equal(o1.flags, o2.flags);
			if (o1.len)
				assert_memory_equal(o1.buf, o2.buf, o1.len);
			if (r1 < 0) {
				assert_string_equal(e1.msg, e2.msg);
				assert_int_equal(e1.line, e2.line);
				assert_int_equal(e1.col, e2.col);
			}
			free(o1.buf);
			free(o2.buf);
		}
	}
	assert_int_equal(c.misses, 7);
	assert_int_equal(c.hits, 14);
	/* more texts than slots: the oldest go first, the recent stay */
	char sql[64];
	for (int i = 0; i < PROXY_PARSE_CACHE_SLOTS + 2; i++) {
		snprintf(sql, sizeof sql, "INSERT INTO t VALUES(%d)", i);
		struct proxy_item_out o = {0};
		assert_int_equal(build_cached(&c, sql, NULL, 0, &o, NULL), 0);
		free(o.buf);
	}
	uint64_t misses = c.misses, hits = c.hits;
	struct proxy_item_out o = {0};
	assert_int_equal(build_cached(&c, sql, NULL, 0, &o, NULL), 0); /* the newest: kept */
	free(o.buf);
	assert_int_equal(c.hits, hits + 1);
	assert_int_equal(build_cached(&c, texts[0], b, 2, &o, NULL), 0); /* an old one: replaced */
	free(o.buf);
	assert_int_equal(c.misses, misses + 1);
	/* a text above the limit is parsed each time and never kept */
	size_t n = PROXY_PARSE_CACHE_MAX + 100;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "SELECT 1", 8);
	big[n] = 0;
	misses = c.misses;
	for (int k = 0; k < 2; k++) {
		assert_int_equal(build_cached(&c, big, NULL, 0, &o, NULL), PROXY_ITEM_READ);
		free(o.buf);
	}
	assert_int_equal(c.misses, misses);
	free(big);
	proxy_parse_cache_clear(&c);
	assert_int_equal(c.hits, 0);
	proxy_parse_cache_clear(&c); /* twice is fine */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_item),
		cmocka_unit_test(test_params_match_sqlite),
		cmocka_unit_test(test_bind_errors),
		cmocka_unit_test(test_refused_and_syntax),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_temp_prelude),
		cmocka_unit_test(test_multi_params_split),
		cmocka_unit_test(test_txn_group),
		cmocka_unit_test(test_rollback_drops_group),
		cmocka_unit_test(test_txn_errors),
		cmocka_unit_test(test_stream_id),
		cmocka_unit_test(test_parse_cache),
	};
	return cmocka_run_group_tests_name("proxy_item", tests, NULL, NULL);
}
