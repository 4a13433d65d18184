/*
 * test_cproto.c - unit tests for the client <-> proxy frames (src/proto/cproto.c):
 * round trips of every frame and every bound value type (REAL bit for bit),
 * every truncation of every payload rejected, trailing bytes rejected,
 * cproto_frame_next on every split point of a pipelined stream, max_frame
 * enforcement, field validation, cproto_query_binds, buffer growth.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cproto.h"
#include "wire_server.h"
#include "metronome.h"
#include "util.h"

/* ---- Helpers ---- */

/* The one frame in b (it must hold exactly one). */
static struct cproto_frame one_frame(const struct cproto_buf *b)
{
	struct cproto_frame f;
	assert_int_equal(cproto_frame_next(b->p, b->len, CPROTO_MAX_FRAME, &f), (long)b->len);
	return f;
}

/* Decode f with the decoder of its type; the decoded struct is discarded. */
static int get_any(const struct cproto_frame *f)
{
	struct cproto_hello h;
	struct cproto_welcome w;
	struct cproto_query q;
	struct cproto_answer a;
	struct cproto_bye y;
	uint64_t t;
	switch (f->type) {
	case CPROTO_T_HELLO:
		return cproto_get_hello(f, &h);
	case CPROTO_T_WELCOME:
		return cproto_get_welcome(f, &w);
	case CPROTO_T_QUERY:
		return cproto_get_query(f, &q);
	case CPROTO_T_ANSWER:
		return cproto_get_answer(f, &a);
	case CPROTO_T_PING:
	case CPROTO_T_PONG:
		return cproto_get_ping(f, &t);
	case CPROTO_T_BYE:
		return cproto_get_bye(f, &y);
	case CPROTO_T_AUTH: {
		struct cproto_auth au;
		return cproto_get_auth(f, &au);
	}
	case CPROTO_T_CANCEL:
		return cproto_get_cancel(f, &t);
	case CPROTO_T_BACKUP:
		return cproto_get_backup(f, &t);
	case CPROTO_T_BACKUP_PART: {
		struct cproto_part pt;
		return cproto_get_part(f, &pt);
	}
	case CPROTO_T_MEMBERSHIP: {
		struct wire_member wm;
		return cproto_get_member(f, &wm);
	}
	}
	return -1;
}

/* Every shorter payload is rejected, and one more byte too. */
static void check_truncations(const struct cproto_buf *b)
{
	struct cproto_frame f = one_frame(b);
	assert_int_equal(get_any(&f), 0);
	for (uint32_t n = 0; n < f.len; n++) {
		struct cproto_frame g = f;
		g.len = n;
		int rc = get_any(&g);
		assert_true(rc == MTR_ETRUNCATED || rc == MTR_EMALFORMED);
	}
	uint8_t *c = malloc(f.len + 1);
	memcpy(c, f.payload, f.len);
	c[f.len] = 0;
	struct cproto_frame g = { .type = f.type, .payload = c, .len = f.len + 1 };
	assert_int_equal(get_any(&g), MTR_EMALFORMED);
	free(c);
}

/* ---- names ---- */

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(cproto_type_name(CPROTO_T_QUERY), "QUERY");
	assert_string_equal(cproto_type_name(CPROTO_T_BYE), "BYE");
	assert_string_equal(cproto_type_name(0), "?");
	assert_string_equal(cproto_type_name(200), "?");
	for (unsigned c = 0; c <= CPROTO_CONS_LINEARIZABLE; c++)
		assert_int_equal(cproto_consistency_parse(cproto_consistency_name(c)), (int)c);
	assert_null(cproto_consistency_name(4));
	assert_int_equal(cproto_consistency_parse("strong"), MTR_EINVAL);
	assert_int_equal(cproto_consistency_parse(NULL), MTR_EINVAL);
}

/* ---- HELLO / WELCOME ---- */

static void test_hello_welcome(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	struct cproto_hello h = { .version = CPROTO_VERSION, .client_id = 0x0102030405060708ull,
				  .consistency = CPROTO_CONS_LINEARIZABLE },
			    h2;
	assert_int_equal(cproto_put_hello(&b, &h), 0);
	assert_int_equal(b.len, 4 + 1 + 17);
	assert_memory_equal(b.p + 5, "MTRC", 4);
	struct cproto_frame f = one_frame(&b);
	assert_int_equal(f.type, CPROTO_T_HELLO);
	assert_int_equal(cproto_get_hello(&f, &h2), 0);
	assert_int_equal(h2.version, CPROTO_VERSION);
	assert_true(h2.client_id == h.client_id);
	assert_int_equal(h2.consistency, CPROTO_CONS_LINEARIZABLE);
	check_truncations(&b);
	/* bad magic, version, flags, consistency; wrong frame type */
	uint8_t *pl = b.p + 5;
	pl[0] ^= 1;
	assert_int_equal(cproto_get_hello(&f, &h2), MTR_EMALFORMED);
	pl[0] ^= 1;
	pl[4] = 2;
	assert_int_equal(cproto_get_hello(&f, &h2), MTR_EVERSION);
	pl[4] = 1;
	pl[6] = 1; /* CPROTO_HELLO_AUTH */
	assert_int_equal(cproto_get_hello(&f, &h2), 0);
	assert_int_equal(h2.flags, CPROTO_HELLO_AUTH);
	pl[6] = 2; /* no such flag */
	assert_int_equal(cproto_get_hello(&f, &h2), MTR_EMALFORMED);
	pl[6] = 0;
	pl[16] = 4;
	assert_int_equal(cproto_get_hello(&f, &h2), MTR_EMALFORMED);
	pl[16] = 0;
	assert_int_equal(cproto_get_hello(&f, &h2), 0);
	f.type = CPROTO_T_WELCOME;
	assert_int_equal(cproto_get_hello(&f, &h2), MTR_EMALFORMED);

	b.len = 0;
	struct cproto_welcome w = { .version = CPROTO_VERSION, .stream = 0xfeedull << 32, .max_frame = 1u << 20 }, w2;
	assert_int_equal(cproto_put_welcome(&b, &w), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_welcome(&f, &w2), 0);
	assert_true(w2.stream == w.stream);
	assert_int_equal(w2.max_frame, w.max_frame);
	check_truncations(&b);
	b.p[5] = 9;
	assert_int_equal(cproto_get_welcome(&f, &w2), MTR_EVERSION);
	b.len = 0;
	w.stream = 0;
	assert_int_equal(cproto_put_welcome(&b, &w), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_welcome(&f, &w2), MTR_EMALFORMED);
	cproto_buf_free(&b);
	assert_null(b.p);
}

/* ---- AUTH ---- */

static void test_auth(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	struct cproto_auth a = { .user = "alice", .user_len = 5, .password = "p@ss:w%rd", .password_len = 9 }, a2;
	assert_int_equal(cproto_put_auth(&b, &a), 0);
	assert_int_equal(b.len, 4 + 1 + 2 + 5 + 2 + 9);
	struct cproto_frame f = one_frame(&b);
	assert_int_equal(f.type, CPROTO_T_AUTH);
	assert_int_equal(cproto_get_auth(&f, &a2), 0);
	assert_int_equal(a2.user_len, 5);
	assert_memory_equal(a2.user, "alice", 5);
	assert_int_equal(a2.password_len, 9);
	assert_memory_equal(a2.password, "p@ss:w%rd", 9);
	check_truncations(&b);
	/* a ':' or a control character in the name, NUL in the password */
	b.p[5 + 2 + 1] = ':';
	assert_int_equal(cproto_get_auth(&f, &a2), MTR_EMALFORMED);
	b.p[5 + 2 + 1] = '\n';
	assert_int_equal(cproto_get_auth(&f, &a2), MTR_EMALFORMED);
	b.p[5 + 2 + 1] = 'l';
	b.p[5 + 2 + 5 + 2] = 0;
	assert_int_equal(cproto_get_auth(&f, &a2), MTR_EMALFORMED);
	cproto_buf_free(&b);
	/* the encoder refuses what the decoder would */
	struct cproto_auth bad = { .user = "", .user_len = 0 };
	assert_int_equal(cproto_put_auth(&b, &bad), MTR_EINVAL);
	bad.user = "a:b";
	bad.user_len = 3;
	assert_int_equal(cproto_put_auth(&b, &bad), MTR_EINVAL);
	char longname[CPROTO_MAX_USER + 1];
	memset(longname, 'x', sizeof longname);
	bad.user = longname;
	bad.user_len = CPROTO_MAX_USER + 1;
	assert_int_equal(cproto_put_auth(&b, &bad), MTR_EINVAL);
	bad.user_len = CPROTO_MAX_USER;
	assert_int_equal(cproto_put_auth(&b, &bad), 0);
	/* an empty password is a valid frame (the proxy says no) */
	b.len = 0;
	struct cproto_auth empty = { .user = "bob", .user_len = 3 };
	assert_int_equal(cproto_put_auth(&b, &empty), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_auth(&f, &a2), 0);
	assert_int_equal(a2.password_len, 0);
	cproto_buf_free(&b);
}

/* ---- QUERY ---- */

static const uint8_t blob[] = { 0, 0xff, 7 };

static void fill_binds(struct cproto_bind *bs, double *real)
{
	uint64_t nanbits = 0x7ff4000000000abcull; /* a signalling NaN payload */
	memcpy(real, &nanbits, 8);
	bs[0] = (struct cproto_bind){ .index = 1, .v = { .type = WIRE_V_INT, .u.i = INT64_MIN } };
	bs[1] = (struct cproto_bind){ .index = 2, .v = { .type = WIRE_V_REAL, .u.r = *real } };
	bs[2] = (struct cproto_bind){ .index = 0, .name = ":txt", .v = { .type = WIRE_V_TEXT, .u.b = { "héllo", 6 } } };
	bs[3] = (struct cproto_bind){ .index = 0, .name = "@b", .v = { .type = WIRE_V_BLOB, .u.b = { blob, 3 } } };
	bs[4] = (struct cproto_bind){ .index = 7, .name = "ignored", .v = { .type = WIRE_V_NULL } };
	bs[5] = (struct cproto_bind){ .index = 3, .v = { .type = WIRE_V_TEXT, .u.b = { "", 0 } } };
	bs[6] = (struct cproto_bind){ .index = 4, .v = { .type = WIRE_V_REAL, .u.r = -0.0 } };
}

static void test_query(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	struct cproto_bind bs[7];
	double real;
	fill_binds(bs, &real);
	const char *sql = "INSERT INTO t VALUES (?1, ?2, :txt, @b, ?7, ?3, ?4)";
	struct cproto_query q = { .request = 42, .consistency = CPROTO_CONS_SESSION, .min_instance = 99, .floor = 40,
				  .sql = sql, .sql_len = (uint32_t)strlen(sql), .nbinds = 7, .binds = bs },
			    q2;
	assert_int_equal(cproto_put_query(&b, &q), 0);
	struct cproto_frame f = one_frame(&b);
	assert_int_equal(cproto_get_query(&f, &q2), 0);
	assert_true(q2.request == 42 && q2.min_instance == 99 && q2.floor == 40);
	assert_int_equal(q2.consistency, CPROTO_CONS_SESSION);
	assert_int_equal(q2.sql_len, q.sql_len);
	assert_memory_equal(q2.sql, sql, q.sql_len);
	assert_int_equal(q2.nbinds, 7);
	assert_null(q2.binds);

	struct cproto_bind *out;
	assert_int_equal(cproto_query_binds(&q2, &out), 0);
	assert_non_null(out);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(out[i].index, bs[i].index);
		if (bs[i].index > 0)
			assert_null(out[i].name);
		else
			assert_string_equal(out[i].name, bs[i].name);
		assert_int_equal(out[i].v.type, bs[i].v.type);
	}
	assert_true(out[0].v.u.i == INT64_MIN);
	assert_memory_equal(&out[1].v.u.r, &real, 8);
	assert_int_equal(out[2].v.u.b.n, 6);
	assert_memory_equal(out[2].v.u.b.p, "héllo", 6);
	assert_int_equal(out[3].v.u.b.n, 3);
	assert_memory_equal(out[3].v.u.b.p, blob, 3);
	assert_int_equal(out[5].v.u.b.n, 0);
	double nz = -0.0;
	assert_memory_equal(&out[6].v.u.r, &nz, 8);
	/* the copies do not point into the frame: it can be reused */
	memset(b.p, 0xaa, b.len);
	assert_memory_equal(out[3].v.u.b.p, blob, 3);
	assert_string_equal(out[2].name, ":txt");
	free(out);

	b.len = 0;
	assert_int_equal(cproto_put_query(&b, &q), 0);
	check_truncations(&b);

	/* no binds, empty SQL */
	b.len = 0;
	struct cproto_query e = { .request = 1 };
	assert_int_equal(cproto_put_query(&b, &e), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_query(&f, &q2), 0);
	assert_int_equal(q2.nbinds, 0);
	out = (struct cproto_bind *)&e;
	assert_int_equal(cproto_query_binds(&q2, &out), 0);
	assert_null(out);
	cproto_buf_free(&b);
}

static void test_query_invalid(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	struct cproto_bind bs[1] = { { .index = 0, .name = ":a", .v = { .type = WIRE_V_INT, .u.i = 5 } } };
	struct cproto_query q = { .request = 3, .sql = "?", .sql_len = 1, .nbinds = 1, .binds = bs }, q2;
	assert_int_equal(cproto_put_query(&b, &q), 0);
	struct cproto_frame f = one_frame(&b);
	assert_int_equal(cproto_get_query(&f, &q2), 0);
	uint8_t *pl = b.p + 5;
	size_t bind_at = 29 + 1 + 2;
	/* request 0 */
	st64(pl, 0);
	assert_int_equal(cproto_get_query(&f, &q2), MTR_EMALFORMED);
	st64(pl, 3);
	/* consistency out of range */
	pl[8] = 4;
	assert_int_equal(cproto_get_query(&f, &q2), MTR_EMALFORMED);
	pl[8] = 0;
	/* a floor above the request */
	st64(pl + 17, 4);
	assert_int_equal(cproto_get_query(&f, &q2), MTR_EMALFORMED);
	st64(pl + 17, 3);
	/* sql_len beyond the payload */
	st32(pl + 25, 0xffffffffu);
	assert_int_equal(cproto_get_query(&f, &q2), MTR_ETRUNCATED);
	st32(pl + 25, 1);
	/* negative index; by number with a name; by name without one */
	st32(pl + bind_at, (uint32_t)-1);
	assert_int_equal(cproto_get_query(&f, &q2), MTR_EMALFORMED);
	st32(pl + bind_at, 2);
	assert_int_equal(cproto_get_query(&f, &q2), MTR_EMALFORMED);
	st32(pl + bind_at, 0);
	/* a NUL inside the name */
	pl[bind_at + 7] = 0;
	assert_int_equal(cproto_get_query(&f, &q2), MTR_EMALFORMED);
	pl[bind_at + 7] = 'a';
	/* bad value type */
	pl[bind_at + 8] = 5;
	assert_int_equal(cproto_get_query(&f, &q2), MTR_EMALFORMED);
	pl[bind_at + 8] = WIRE_V_INT;
	/* more binds than bytes */
	st16(pl + 30, 2);
	assert_int_equal(cproto_get_query(&f, &q2), MTR_ETRUNCATED);
	st16(pl + 30, 1);
	assert_int_equal(cproto_get_query(&f, &q2), 0);
	/* wrong frame type */
	f.type = CPROTO_T_ANSWER;
	assert_int_equal(cproto_get_query(&f, &q2), MTR_EMALFORMED);

	/* encoder refusals */
	b.len = 0;
	bs[0].name = NULL;
	assert_int_equal(cproto_put_query(&b, &q), MTR_EINVAL);
	bs[0].index = 1;
	bs[0].v.type = 9;
	assert_int_equal(cproto_put_query(&b, &q), MTR_EINVAL);
	assert_int_equal(b.len, 0);
	cproto_buf_free(&b);
}

/* ---- ANSWER / PING / PONG / BYE ---- */

static void test_answer(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	uint8_t res[40];
	for (int i = 0; i < 40; i++)
		res[i] = (uint8_t)(i * 7);
	struct cproto_answer a = { .request = 7, .instance = 12345, .result = res, .result_len = 40 }, a2;
	assert_int_equal(cproto_put_answer(&b, &a), 0);
	struct cproto_frame f = one_frame(&b);
	assert_int_equal(cproto_get_answer(&f, &a2), 0);
	assert_true(a2.request == 7 && a2.instance == 12345);
	assert_int_equal(a2.status, 0);
	assert_int_equal(a2.msg_len, 0);
	assert_int_equal(a2.result_len, 40);
	assert_memory_equal(a2.result, res, 40);
	check_truncations(&b);

	/* a refusal: status, position, message, no result */
	b.len = 0;
	const char *msg = "near \"SELEC\": syntax error";
	struct cproto_answer r = { .request = 8, .status = MTR_EINVAL, .line = 3, .col = 14, .msg = msg,
				   .msg_len = (uint32_t)strlen(msg) };
	assert_int_equal(cproto_put_answer(&b, &r), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_answer(&f, &a2), 0);
	assert_int_equal(a2.status, MTR_EINVAL);
	assert_int_equal(a2.line, 3);
	assert_int_equal(a2.col, 14);
	assert_int_equal(a2.msg_len, strlen(msg));
	assert_memory_equal(a2.msg, msg, a2.msg_len);
	check_truncations(&b);

	/* status with result bytes, a positive status, request 0 */
	b.len = 0;
	r.result = res, r.result_len = 4;
	assert_int_equal(cproto_put_answer(&b, &r), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_answer(&f, &a2), MTR_EMALFORMED);
	b.len = 0;
	r.result_len = 0, r.status = 1;
	assert_int_equal(cproto_put_answer(&b, &r), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_answer(&f, &a2), MTR_EMALFORMED);
	b.len = 0;
	a.request = 0;
	assert_int_equal(cproto_put_answer(&b, &a), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_answer(&f, &a2), MTR_EMALFORMED);
	cproto_buf_free(&b);
}

static void test_ping_bye(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	uint64_t t;
	assert_int_equal(cproto_put_ping(&b, CPROTO_T_PING, 0xdeadbeefcafef00dull), 0);
	struct cproto_frame f = one_frame(&b);
	assert_int_equal(f.type, CPROTO_T_PING);
	assert_int_equal(cproto_get_ping(&f, &t), 0);
	assert_true(t == 0xdeadbeefcafef00dull);
	check_truncations(&b);
	b.len = 0;
	assert_int_equal(cproto_put_ping(&b, CPROTO_T_PONG, 5), 0);
	f = one_frame(&b);
	assert_int_equal(f.type, CPROTO_T_PONG);
	assert_int_equal(cproto_get_ping(&f, &t), 0);
	assert_true(t == 5);
	check_truncations(&b);
	assert_int_equal(cproto_put_ping(&b, CPROTO_T_BYE, 5), MTR_EINVAL);
	f.type = CPROTO_T_HELLO;
	assert_int_equal(cproto_get_ping(&f, &t), MTR_EMALFORMED);

	b.len = 0;
	struct cproto_bye y = { .status = MTR_EMALFORMED, .msg = "bad frame", .msg_len = 9 }, y2;
	assert_int_equal(cproto_put_bye(&b, &y), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_bye(&f, &y2), 0);
	assert_int_equal(y2.status, MTR_EMALFORMED);
	assert_int_equal(y2.msg_len, 9);
	assert_memory_equal(y2.msg, "bad frame", 9);
	check_truncations(&b);

	b.len = 0;
	assert_int_equal(cproto_put_cancel(&b, 0), MTR_EINVAL);
	assert_int_equal(cproto_put_cancel(&b, 77), 0);
	f = one_frame(&b);
	assert_int_equal(f.type, CPROTO_T_CANCEL);
	assert_int_equal(cproto_get_cancel(&f, &t), 0);
	assert_true(t == 77);
	check_truncations(&b);
	assert_string_equal(cproto_type_name(CPROTO_T_CANCEL), "CANCEL");
	uint8_t zero[8] = {0};
	f.payload = zero;
	assert_int_equal(cproto_get_cancel(&f, &t), MTR_EMALFORMED); /* request 0 */
	f.type = CPROTO_T_PING;
	assert_int_equal(cproto_get_cancel(&f, &t), MTR_EMALFORMED);
	cproto_buf_free(&b);
}

/* MEMBERSHIP: a request (add, promote, remove) and an answer. */
static void test_member(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	struct wire_member m = { .kind = WIRE_MEMBER_REQUEST, .token = 9, .op = WIRE_MEMBER_ADD, .addr = "10.0.0.4:7404",
				 .addr_len = 13 },
			   r;
	assert_int_equal(cproto_put_member(&b, &m), 0);
	struct cproto_frame f = one_frame(&b);
	assert_int_equal(f.type, CPROTO_T_MEMBERSHIP);
	assert_int_equal(cproto_get_member(&f, &r), 0);
	assert_true(r.kind == WIRE_MEMBER_REQUEST && r.token == 9 && r.op == WIRE_MEMBER_ADD && r.addr_len == 13 &&
		    memcmp(r.addr, "10.0.0.4:7404", 13) == 0);
	check_truncations(&b);
	b.len = 0;
	struct wire_member a = { .kind = WIRE_MEMBER_ANSWER, .token = 9, .status = MTR_EBUSY, .id = 5,
				 .instance = 1234, .msg = "pending", .msg_len = 7 };
	assert_int_equal(cproto_put_member(&b, &a), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_member(&f, &r), 0);
	assert_true(r.kind == WIRE_MEMBER_ANSWER && r.status == MTR_EBUSY && r.id == 5 && r.instance == 1234 &&
		    r.msg_len == 7 && memcmp(r.msg, "pending", 7) == 0);
	check_truncations(&b);
	/* the rules: token 0, an op out of range, an ADD with an id or no
	 * address, a REMOVE with an address or an id >= 64, a positive status */
	struct wire_member bad[] = {
		{ .kind = WIRE_MEMBER_REQUEST, .token = 0, .op = WIRE_MEMBER_REMOVE, .id = 1 },
		{ .kind = WIRE_MEMBER_REQUEST, .token = 1, .op = 4, .id = 1 },
		{ .kind = WIRE_MEMBER_REQUEST, .token = 1, .op = WIRE_MEMBER_ADD, .id = 3, .addr = "x", .addr_len = 1 },
		{ .kind = WIRE_MEMBER_REQUEST, .token = 1, .op = WIRE_MEMBER_ADD },
		{ .kind = WIRE_MEMBER_REQUEST, .token = 1, .op = WIRE_MEMBER_REMOVE, .id = 1, .addr = "x", .addr_len = 1 },
		{ .kind = WIRE_MEMBER_REQUEST, .token = 1, .op = WIRE_MEMBER_REMOVE, .id = 64 },
		{ .kind = WIRE_MEMBER_ANSWER, .token = 1, .status = 1 },
		{ .kind = 2, .token = 1 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(cproto_put_member(&b, &bad[i]), MTR_EINVAL);
	/* ... and a decoder refuses them too: a valid REMOVE with id 64 */
	uint8_t p[WIRE_MEMBER_REQ_FIXED] = { 0, 1, 0, 0, 0, 0, 0, 0, 0, WIRE_MEMBER_REMOVE, 64, 0 };
	f = (struct cproto_frame){ .type = CPROTO_T_MEMBERSHIP, .payload = p, .len = sizeof p };
	assert_int_equal(cproto_get_member(&f, &r), MTR_EMALFORMED);
	p[10] = 63;
	assert_int_equal(cproto_get_member(&f, &r), 0);
	cproto_buf_free(&b);
}

/* BACKUP and its parts: BEGIN, DATA (any length), END. */
static void test_backup(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	uint64_t t;
	assert_int_equal(cproto_put_backup(&b, 77), 0);
	struct cproto_frame f = one_frame(&b);
	assert_int_equal(f.type, CPROTO_T_BACKUP);
	assert_int_equal(cproto_get_backup(&f, &t), 0);
	assert_true(t == 77);
	check_truncations(&b);

	b.len = 0;
	struct cproto_part p = { .kind = CPROTO_PART_BEGIN, .instance = 1ull << 40, .size = 3ull << 31, .server = 2 }, q;
	assert_int_equal(cproto_put_part(&b, &p), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_part(&f, &q), 0);
	assert_true(q.kind == CPROTO_PART_BEGIN && q.instance == p.instance && q.size == p.size && q.server == 2);
	check_truncations(&b);

	b.len = 0;
	p = (struct cproto_part){ .kind = CPROTO_PART_END, .status = MTR_EIO, .msg = "server 1 closed", .msg_len = 15 };
	assert_int_equal(cproto_put_part(&b, &p), 0);
	f = one_frame(&b);
	assert_int_equal(cproto_get_part(&f, &q), 0);
	assert_true(q.kind == CPROTO_PART_END && q.status == MTR_EIO && q.msg_len == 15);
	assert_memory_equal(q.msg, "server 1 closed", 15);
	check_truncations(&b);

	for (uint32_t n = 0; n < 3; n++) {
		b.len = 0;
		p = (struct cproto_part){ .kind = CPROTO_PART_DATA, .data = (const uint8_t *)"\0\1\2", .len = n };
		assert_int_equal(cproto_put_part(&b, &p), 0);
		f = one_frame(&b);
		assert_int_equal(cproto_get_part(&f, &q), 0);
		assert_true(q.kind == CPROTO_PART_DATA && q.len == n);
		if (n)
			assert_memory_equal(q.data, "\0\1\2", n);
	}
	/* an unknown kind, a positive status, an empty payload */
	uint8_t bad[9] = { 3 };
	struct cproto_frame g = { .type = CPROTO_T_BACKUP_PART, .payload = bad, .len = 1 };
	assert_int_equal(cproto_get_part(&g, &q), MTR_EMALFORMED);
	bad[0] = CPROTO_PART_END;
	bad[1] = 1;
	g.len = 9;
	assert_int_equal(cproto_get_part(&g, &q), MTR_EMALFORMED);
	g.len = 0;
	assert_int_equal(cproto_get_part(&g, &q), MTR_ETRUNCATED);
	p.kind = 9;
	assert_int_equal(cproto_put_part(&b, &p), MTR_EINVAL);
	cproto_buf_free(&b);
}

/* ---- cproto_frame_next ---- */

/* A pipelined stream of every frame type, cut at every point. */
static void test_frame_split(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	struct cproto_bind bs[7];
	double real;
	fill_binds(bs, &real);
	struct cproto_hello h = { .version = CPROTO_VERSION, .client_id = 1 };
	struct cproto_welcome w = { .version = CPROTO_VERSION, .stream = 2, .max_frame = 100 };
	struct cproto_query q = { .request = 1, .sql = "SELECT 1", .sql_len = 8, .nbinds = 7, .binds = bs };
	struct cproto_answer a = { .request = 1, .instance = 3, .result = (const uint8_t *)"xyz", .result_len = 3 };
	struct cproto_bye y = { .status = 0, .msg = "bye", .msg_len = 3 };
	assert_int_equal(cproto_put_hello(&b, &h), 0);
	assert_int_equal(cproto_put_welcome(&b, &w), 0);
	assert_int_equal(cproto_put_query(&b, &q), 0);
	assert_int_equal(cproto_put_answer(&b, &a), 0);
	assert_int_equal(cproto_put_ping(&b, CPROTO_T_PING, 9), 0);
	assert_int_equal(cproto_put_ping(&b, CPROTO_T_PONG, 9), 0);
	assert_int_equal(cproto_put_bye(&b, &y), 0);
	static const uint8_t types[] = { 1, 2, 3, 4, 5, 6, 7 };

	/* the boundaries */
	size_t ends[7], off = 0;
	for (int i = 0; i < 7; i++) {
		struct cproto_frame f;
		long n = cproto_frame_next(b.p + off, b.len - off, CPROTO_MAX_FRAME, &f);
		assert_true(n > 0);
		assert_int_equal(f.type, types[i]);
		assert_int_equal(get_any(&f), 0);
		off += (size_t)n;
		ends[i] = off;
	}
	assert_int_equal(off, b.len);

	/* every prefix yields exactly the frames it holds whole */
	for (size_t cut = 0; cut <= b.len; cut++) {
		uint8_t *c = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
		memcpy(c, b.p, cut);
		size_t at = 0;
		int k = 0;
		for (;;) {
			struct cproto_frame f;
			long n = cproto_frame_next(c + at, cut - at, CPROTO_MAX_FRAME, &f);
			assert_true(n >= 0);
			if (n == 0)
				break;
			assert_int_equal(f.type, types[k]);
			at += (size_t)n;
			assert_int_equal(at, ends[k]);
			k++;
		}
		int want = 0;
		while (want < 7 && ends[want] <= cut)
			want++;
		assert_int_equal(k, want);
		free(c);
	}

	/* consume drops whole frames from the front */
	cproto_buf_consume(&b, ends[1]);
	assert_int_equal(b.len, ends[6] - ends[1]);
	struct cproto_frame f;
	assert_true(cproto_frame_next(b.p, b.len, CPROTO_MAX_FRAME, &f) > 0);
	assert_int_equal(f.type, CPROTO_T_QUERY);
	cproto_buf_consume(&b, b.len + 5);
	assert_int_equal(b.len, 0);
	cproto_buf_free(&b);
}

static void test_frame_limits(void **state)
{
	(void)state;
	uint8_t p[16] = { 0 };
	struct cproto_frame f;
	/* length 0 */
	assert_int_equal(cproto_frame_next(p, 3, 100, &f), 0);
	assert_int_equal(cproto_frame_next(p, 4, 100, &f), MTR_EMALFORMED);
	/* just at and above max_frame, decided before the bytes arrive */
	st32(p, 100);
	assert_int_equal(cproto_frame_next(p, 16, 100, &f), 0);
	st32(p, 101);
	assert_int_equal(cproto_frame_next(p, 4, 100, &f), MTR_ETOOBIG);
	st32(p, 0xffffffffu);
	assert_int_equal(cproto_frame_next(p, 16, CPROTO_MAX_FRAME, &f), MTR_ETOOBIG);
	/* a frame of type only: empty payload */
	st32(p, 1);
	p[4] = CPROTO_T_PING;
	assert_int_equal(cproto_frame_next(p, 16, 100, &f), 5);
	assert_int_equal(f.len, 0);
	uint64_t t;
	assert_int_equal(cproto_get_ping(&f, &t), MTR_ETRUNCATED);

	/* the encoder refuses frames above CPROTO_MAX_FRAME without reading */
	struct cproto_buf b = { 0 };
	struct cproto_bye y = { .msg = "", .msg_len = CPROTO_MAX_FRAME };
	assert_int_equal(cproto_put_bye(&b, &y), MTR_ETOOBIG);
	struct cproto_answer a = { .request = 1, .msg = "", .msg_len = CPROTO_MAX_FRAME / 2, .result = p,
				   .result_len = CPROTO_MAX_FRAME / 2 };
	assert_int_equal(cproto_put_answer(&b, &a), MTR_ETOOBIG);
	assert_int_equal(b.len, 0);
	cproto_buf_free(&b);
}

/* The buffer grows by doubling: few reallocations for many frames. */
static void test_buf_growth(void **state)
{
	(void)state;
	struct cproto_buf b = { 0 };
	unsigned changes = 0;
	size_t cap = 0;
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(cproto_put_ping(&b, CPROTO_T_PING, (uint64_t)i), 0);
		if (b.cap != cap)
			changes++, cap = b.cap;
	}
	assert_int_equal(b.len, 10000 * 13);
	assert_true(changes < 20);
	size_t off = 0;
	for (int i = 0; i < 10000; i++) {
		struct cproto_frame f;
		uint64_t t;
		long n = cproto_frame_next(b.p + off, b.len - off, CPROTO_MAX_FRAME, &f);
		assert_int_equal(n, 13);
		assert_int_equal(cproto_get_ping(&f, &t), 0);
		assert_true(t == (uint64_t)i);
		off += 13;
	}
	cproto_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),       cmocka_unit_test(test_hello_welcome),
		cmocka_unit_test(test_query),       cmocka_unit_test(test_query_invalid),
		cmocka_unit_test(test_answer),      cmocka_unit_test(test_ping_bye),
		cmocka_unit_test(test_backup), cmocka_unit_test(test_member),
		cmocka_unit_test(test_frame_split), cmocka_unit_test(test_frame_limits),
		cmocka_unit_test(test_buf_growth),  cmocka_unit_test(test_auth),
	};
	return cmocka_run_group_tests_name("cproto", tests, NULL, NULL);
}
