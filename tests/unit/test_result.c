/*
 * test_result.c - unit tests for the result bytes (src/proto/result.c): round trips
 * with rows of every value type (REAL bit for bit), column names (given and
 * absent), errors and empty results; result_encode_error; every truncation
 * and a trailing byte rejected; malformed rows, counts and value types
 * rejected; decoding garbage without crashing.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metronome.h"
#include "result.h"
#include "util.h"

/* ---- Helpers ---- */

/* Append one row of n values in the row format of doc/apply.md. */
static size_t row_put(uint8_t *p, const struct wire_value *v, unsigned n)
{
	uint8_t *q = p;
	st16(q, (uint16_t)n);
	q += 2;
	for (unsigned i = 0; i < n; i++) {
		*q++ = v[i].type;
		switch (v[i].type) {
		case WIRE_V_INT:
			st64(q, (uint64_t)v[i].u.i);
			q += 8;
			break;
		case WIRE_V_REAL: {
			uint64_t b;
			memcpy(&b, &v[i].u.r, 8);
			st64(q, b);
			q += 8;
			break;
		}
		case WIRE_V_TEXT:
		case WIRE_V_BLOB:
			st32(q, v[i].u.b.n);
			memcpy(q + 4, v[i].u.b.p, v[i].u.b.n);
			q += 4 + v[i].u.b.n;
			break;
		default:
			break;
		}
	}
	return (size_t)(q - p);
}

static void value_equal(const struct wire_value *a, const struct wire_value *b)
{
	assert_int_equal(a->type, b->type);
	switch (a->type) {
	case WIRE_V_INT:
		assert_true(a->u.i == b->u.i);
		break;
	case WIRE_V_REAL:
		assert_memory_equal(&a->u.r, &b->u.r, 8);
		break;
	case WIRE_V_TEXT:
	case WIRE_V_BLOB:
		assert_int_equal(a->u.b.n, b->u.b.n);
		if (a->u.b.n)
			assert_memory_equal(a->u.b.p, b->u.b.p, a->u.b.n);
		break;
	default:
		break;
	}
}

/* Fixture: two statements; the first returns 3 rows of 5 columns with
 * names, the second a failing statement with an error and no rows. */
static uint8_t rows[512];
static struct wire_value vals[3][5];
static const char *const names[5] = { "id", "r", "", "t_long_name", "b" };
static struct apply_stmt_result stmts[3];
static struct apply_result res;

static void fixture(void)
{
	static const uint8_t blob[] = { 0, 1, 2, 0xff };
	double nz = -0.0, nanv;
	uint64_t nanbits = 0x7ff8000000000123ull;
	memcpy(&nanv, &nanbits, 8);
	double reals[3] = { 3.141592653589793, nz, nanv };
	size_t off = 0;
	for (int r = 0; r < 3; r++) {
		vals[r][0] = (struct wire_value){ .type = WIRE_V_INT, .u.i = r == 0 ? INT64_MIN : r * 1000 - 1 };
		vals[r][1] = (struct wire_value){ .type = WIRE_V_REAL, .u.r = reals[r] };
		vals[r][2] = (struct wire_value){ .type = WIRE_V_NULL };
		vals[r][3] = (struct wire_value){ .type = WIRE_V_TEXT, .u.b = { "héllo", (uint32_t)(r == 1 ? 0 : 6) } };
		vals[r][4] = (struct wire_value){ .type = WIRE_V_BLOB, .u.b = { blob, sizeof blob } };
		off += row_put(rows + off, vals[r], 5);
	}
	stmts[0] = (struct apply_stmt_result){ .code = 0, .changes = 3, .last_rowid = -7, .ncols = 5, .names = names,
					       .nrows = 3, .rows = rows, .rows_len = off };
	stmts[1] = (struct apply_stmt_result){ .code = 0, .changes = 0, .last_rowid = INT64_MAX };
	stmts[2] = (struct apply_stmt_result){ .code = 2067, .errmsg = "UNIQUE constraint failed: t.id" };
	res = (struct apply_result){ .code = 2067, .failed = 2, .nstmt = 3, .stmts = stmts };
}

static uint8_t *encode(const struct apply_result *r, size_t *len)
{
	size_t n = result_size(r);
	uint8_t *b = malloc(n + 1);
	assert_non_null(b);
	assert_int_equal(result_encode(r, b, n - 1 + (n == 0)), n ? MTR_ETOOBIG : 0);
	assert_int_equal(result_encode(r, b, n), (long)n);
	*len = n;
	return b;
}

/* ---- result_encode / result_decode ---- */

static void test_roundtrip(void **state)
{
	(void)state;
	fixture();
	size_t n;
	uint8_t *b = encode(&res, &n);
	struct result_view v;
	assert_int_equal(result_decode(b, n, &v), 0);
	assert_int_equal(v.code, 2067);
	assert_int_equal(v.failed, 2);
	assert_int_equal(v.nstmt, 3);

	struct result_stmt s;
	assert_int_equal(result_next(&v, &s), 1);
	assert_int_equal(s.code, 0);
	assert_true(s.changes == 3 && s.last_rowid == -7);
	assert_null(s.errmsg);
	assert_int_equal(s.ncols, 5);
	assert_int_equal(s.nrows, 3);
	const uint8_t *np = s.names;
	for (int c = 0; c < 5; c++) {
		uint16_t nl;
		const char *nm = result_name_next(&np, &nl);
		assert_int_equal(nl, strlen(names[c]));
		assert_memory_equal(nm, names[c], nl);
	}
	const uint8_t *rp = s.rows, *rend = s.rows + s.rows_len;
	struct wire_value got[5];
	for (int r = 0; r < 3; r++) {
		assert_int_equal(result_row_next(&rp, rend, got, 5), 5);
		for (int c = 0; c < 5; c++)
			value_equal(&got[c], &vals[r][c]);
	}
	assert_int_equal(result_row_next(&rp, rend, got, 5), 0);
	/* fewer slots than columns: the rest is skipped, the count reported */
	rp = s.rows;
	memset(got, 0, sizeof got);
	assert_int_equal(result_row_next(&rp, rend, got, 2), 5);
	value_equal(&got[0], &vals[0][0]);
	value_equal(&got[1], &vals[0][1]);
	assert_int_equal(got[2].type, 0);
	assert_int_equal(result_row_next(&rp, rend, got, 0), 5);

	assert_int_equal(result_next(&v, &s), 1);
	assert_true(s.last_rowid == INT64_MAX);
	assert_int_equal(s.ncols, 0);
	assert_int_equal(s.rows_len, 0);
	assert_int_equal(result_next(&v, &s), 1);
	assert_int_equal(s.code, 2067);
	assert_int_equal(s.errmsg_len, strlen(stmts[2].errmsg));
	assert_memory_equal(s.errmsg, stmts[2].errmsg, s.errmsg_len);
	assert_int_equal(result_next(&v, &s), 0);
	free(b);
}

static void test_no_names(void **state)
{
	(void)state;
	fixture();
	stmts[0].names = NULL;
	res.nstmt = 1, res.code = 0, res.failed = 0;
	size_t n;
	uint8_t *b = encode(&res, &n);
	struct result_view v;
	struct result_stmt s;
	assert_int_equal(result_decode(b, n, &v), 0);
	assert_int_equal(result_next(&v, &s), 1);
	const uint8_t *np = s.names;
	for (int c = 0; c < 5; c++) {
		uint16_t nl = 99;
		(void)result_name_next(&np, &nl);
		assert_int_equal(nl, 0);
	}
	assert_int_equal(result_next(&v, &s), 0);
	free(b);
}

static void test_empty(void **state)
{
	(void)state;
	struct apply_result r = { 0 };
	size_t n;
	uint8_t *b = encode(&r, &n);
	assert_int_equal(n, 12);
	struct result_view v;
	struct result_stmt s;
	assert_int_equal(result_decode(b, n, &v), 0);
	assert_int_equal(v.nstmt, 0);
	assert_int_equal(result_next(&v, &s), 0);
	free(b);
}

static void test_encode_error(void **state)
{
	(void)state;
	uint8_t b[256];
	const char *msg = "database is locked";
	long n = result_encode_error(5, msg, b, sizeof b);
	assert_true(n > 0);
	assert_int_equal(result_encode_error(5, msg, b, (size_t)n - 1), MTR_ETOOBIG);
	struct result_view v;
	struct result_stmt s;
	assert_int_equal(result_decode(b, (size_t)n, &v), 0);
	assert_int_equal(v.code, 5);
	assert_int_equal(v.failed, 0);
	assert_int_equal(v.nstmt, 1);
	assert_int_equal(result_next(&v, &s), 1);
	assert_int_equal(s.code, 5);
	assert_int_equal(s.errmsg_len, strlen(msg));
	assert_memory_equal(s.errmsg, msg, s.errmsg_len);
	assert_int_equal(s.ncols, 0);
	assert_int_equal(s.nrows, 0);
	assert_int_equal(result_next(&v, &s), 0);
	/* NULL message */
	n = result_encode_error(1, NULL, b, sizeof b);
	assert_int_equal(result_decode(b, (size_t)n, &v), 0);
	assert_int_equal(result_next(&v, &s), 1);
	assert_null(s.errmsg);
}

/* Every prefix is rejected, and so is one byte more. */
static void test_truncation_trailing(void **state)
{
	(void)state;
	fixture();
	size_t n;
	uint8_t *b = encode(&res, &n);
	struct result_view v;
	for (size_t i = 0; i < n; i++) {
		int rc = result_decode(b, i, &v);
		assert_true(rc == MTR_ETRUNCATED || rc == MTR_EMALFORMED);
	}
	uint8_t *b2 = malloc(n + 1);
	memcpy(b2, b, n);
	b2[n] = 0;
	assert_int_equal(result_decode(b2, n + 1, &v), MTR_EMALFORMED);
	free(b2);
	free(b);
}

static void test_malformed(void **state)
{
	(void)state;
	fixture();
	res.nstmt = 1, res.code = 0, res.failed = 0;
	size_t n;
	uint8_t *b = encode(&res, &n);
	struct result_view v;
	assert_int_equal(result_decode(b, n, &v), 0);
	/* layout: 12 header, 24 stmt fixed, 4 ncols, names, 8 nrows/len, rows */
	size_t names_len = 0;
	for (int c = 0; c < 5; c++)
		names_len += 2 + strlen(names[c]);
	size_t nrows_at = 12 + 24 + 4 + names_len, rows_at = nrows_at + 8;

	/* code != 0 but failed >= nstmt; code 0 with failed != 0 */
	st32(b, 1), st32(b + 4, 1);
	assert_int_equal(result_decode(b, n, &v), MTR_EMALFORMED);
	st32(b, 0);
	assert_int_equal(result_decode(b, n, &v), MTR_EMALFORMED);
	st32(b + 4, 0);
	/* huge nstmt */
	st32(b + 8, 0xffffffffu);
	assert_int_equal(result_decode(b, n, &v), MTR_ETRUNCATED);
	st32(b + 8, 1);
	/* huge ncols */
	st32(b + 36, 0xffffffffu);
	assert_int_equal(result_decode(b, n, &v), MTR_ETRUNCATED);
	st32(b + 36, 5);
	/* nrows off by one either way */
	st32(b + nrows_at, 2);
	assert_int_equal(result_decode(b, n, &v), MTR_EMALFORMED);
	st32(b + nrows_at, 4);
	assert_int_equal(result_decode(b, n, &v), MTR_EMALFORMED);
	st32(b + nrows_at, 0xffffffffu);
	assert_int_equal(result_decode(b, n, &v), MTR_EMALFORMED);
	st32(b + nrows_at, 3);
	/* a row with another column count */
	st16(b + rows_at, 4);
	assert_int_equal(result_decode(b, n, &v), MTR_EMALFORMED);
	st16(b + rows_at, 5);
	/* a bad value type */
	uint8_t t = b[rows_at + 2];
	for (int bad = 5; bad < 256; bad += 50) {
		b[rows_at + 2] = (uint8_t)bad;
		assert_int_equal(result_decode(b, n, &v), MTR_EMALFORMED);
	}
	b[rows_at + 2] = t;
	/* rows_len one byte short of the rows (the rest is trailing) */
	st32(b + nrows_at + 4, ld32(b + nrows_at + 4) - 1);
	assert_int_not_equal(result_decode(b, n, &v), 0);
	st32(b + nrows_at + 4, ld32(b + nrows_at + 4) + 1);
	assert_int_equal(result_decode(b, n, &v), 0);
	free(b);

	/* rows without columns */
	uint8_t one[2] = { 0, 0 };
	struct apply_stmt_result s0 = { .nrows = 1, .rows = one, .rows_len = 2 };
	struct apply_result r0 = { .nstmt = 1, .stmts = &s0 };
	b = encode(&r0, &n);
	assert_int_equal(result_decode(b, n, &v), MTR_EMALFORMED);
	free(b);
}

/* Random mutations of a valid encoding: decoding never crashes or reads out
 * of bounds (run it under ASan), and what it accepts iterates safely. */
static void test_garbage(void **state)
{
	(void)state;
	fixture();
	size_t n;
	uint8_t *base = encode(&res, &n);
	uint8_t *p = malloc(n);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned ok = 0;
	for (int round = 0; round < 50000; round++) {
		memcpy(p, base, n);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t len = x % 4 == 0 ? (size_t)(x >> 8) % (n + 1) : n;
		for (int k = (int)(x >> 40) % 3; k >= 0; k--) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			p[(x >> 8) % n] = (uint8_t)(x % 3 == 0 ? x >> 32 : x % 6);
		}
		struct result_view v;
		if (result_decode(p, len, &v) == 0) {
			ok++;
			struct result_stmt s;
			volatile unsigned sink = 0;
			while (result_next(&v, &s)) {
				const uint8_t *np = s.names;
				for (uint32_t c = 0; c < s.ncols; c++) {
					uint16_t nl;
					const char *nm = result_name_next(&np, &nl);
					if (nl)
						sink += (unsigned char)nm[nl - 1];
				}
				const uint8_t *rp = s.rows;
				struct wire_value w[4];
				while (result_row_next(&rp, s.rows + s.rows_len, w, 4))
					sink++;
				if (s.errmsg_len)
					sink += (unsigned char)s.errmsg[s.errmsg_len - 1];
			}
			(void)sink;
		}
	}
	assert_true(ok > 0); /* some inputs were valid: the iterators ran */
	free(p);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),     cmocka_unit_test(test_no_names),
		cmocka_unit_test(test_empty),         cmocka_unit_test(test_encode_error),
		cmocka_unit_test(test_truncation_trailing), cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests_name("result", tests, NULL, NULL);
}
