/*
 * test_slt.c - mtrslt's core: MD5 (RFC 1321 vectors), value formatting by
 * type letter, sorting, hashing and comparison with expected lines, the
 * record reader (conditions, CRLF, halt, thresholds, labels) and the plain
 * SQLite backend.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "md5.h"
#include "metronome.h"
#include "slt.h"

/* ---- helpers ---- */

static void md5_of(const char *s, char hex[33])
{
	struct md5 m;
	md5_init(&m);
	md5_update(&m, s, strlen(s));
	md5_final_hex(&m, hex);
}

/* A fake statement: one row of cells, each NULL, an integer, a real or text. */
struct cell {
	char kind; /* 'N' 'I' 'R' 'T' */
	int64_t i;
	double d;
	const char *t;
};

static bool f_null(void *st, int c)
{
	return ((struct cell *)st)[c].kind == 'N';
}

static int64_t f_int(void *st, int c)
{
	struct cell *x = &((struct cell *)st)[c];
	return x->kind == 'I' ? x->i : x->kind == 'R' ? (int64_t)x->d : x->t ? atoll(x->t) : 0;
}

static double f_dbl(void *st, int c)
{
	struct cell *x = &((struct cell *)st)[c];
	return x->kind == 'R' ? x->d : x->kind == 'I' ? (double)x->i : x->t ? atof(x->t) : 0;
}

static const char *f_text(void *st, int c)
{
	return ((struct cell *)st)[c].t;
}

/* 'V' needs the type (SQLite's codes) and blobs: kind 'B' is a blob of
 * the bytes of t (its length in i). */
static int f_type(void *st, int c)
{
	switch (((struct cell *)st)[c].kind) {
	case 'I': return 1;
	case 'R': return 2;
	case 'T': return 3;
	case 'B': return 4;
	default: return 5;
	}
}

static const void *f_blob(void *st, int c, int *len)
{
	struct cell *x = &((struct cell *)st)[c];
	*len = (int)x->i;
	return x->t;
}

static const struct slt_columns fake = { f_null, f_int, f_dbl, f_text, NULL, NULL };
static const struct slt_columns fake_v = { f_null, f_int, f_dbl, f_text, f_type, f_blob };

/* ---- md5 ---- */

static void test_md5_rfc1321(void **state)
{
	(void)state;
	static const char *const v[][2] = {
		{ "", "d41d8cd98f00b204e9800998ecf8427e" },
		{ "a", "0cc175b9c0f1b6a831c399e269772661" },
		{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
		{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
		{ "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		  "d174ab98d277d9f5a5611c2c9f419d9f" },
		{ "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
		  "57edf4a22be3c955ac49da2e2107b67a" },
	};
	char hex[33];
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		md5_of(v[i][0], hex);
		assert_string_equal(hex, v[i][1]);
	}
}

static void test_md5_chunks(void **state)
{
	(void)state;
	/* every split of a 200-byte message gives the one-shot digest */
	char msg[200], whole[33], part[33];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (char)(i * 7 + 3);
	struct md5 m;
	md5_init(&m);
	md5_update(&m, msg, sizeof msg);
	md5_final_hex(&m, whole);
	for (size_t cut = 0; cut <= sizeof msg; cut += 13) {
		md5_init(&m);
		md5_update(&m, msg, cut);
		md5_update(&m, msg + cut, sizeof msg - cut);
		md5_final_hex(&m, part);
		assert_string_equal(part, whole);
	}
	/* lengths around the padding boundary (55, 56, 63, 64 bytes) differ */
	char a[33], b[33];
	memset(msg, 'x', sizeof msg);
	for (size_t n = 54; n < 66; n++) {
		md5_init(&m);
		md5_update(&m, msg, n);
		md5_final_hex(&m, a);
		md5_init(&m);
		md5_update(&m, msg, n + 1);
		md5_final_hex(&m, b);
		assert_string_not_equal(a, b);
	}
}

/* ---- formatting ---- */

static void test_format_real(void **state)
{
	(void)state;
	char out[400];
	slt_format_real(1.5, out, sizeof out);
	assert_string_equal(out, "1.500");
	slt_format_real(-2.0 / 3.0, out, sizeof out);
	assert_string_equal(out, "-0.667");
	slt_format_real(0, out, sizeof out);
	assert_string_equal(out, "0.000");
	slt_format_real(1234567890123.4567, out, sizeof out);
	assert_string_equal(out, "1234567890123.457");
	/* beyond 16 significant digits: rounded, then zeros (as SQLite) */
	slt_format_real(-9223372036854775808.0, out, sizeof out);
	assert_string_equal(out, "-9223372036854776000.000");
	slt_format_real(-18446744073709551616.0, out, sizeof out);
	assert_string_equal(out, "-18446744073709550000.000");
	slt_format_real(12345678901234.567, out, sizeof out);
	assert_string_equal(out, "12345678901234.570");
	slt_format_real(1e20, out, sizeof out);
	assert_string_equal(out, "100000000000000000000.000");
	slt_format_real(1.7976931348623157e308, out, sizeof out);
	assert_int_equal(strlen(out), 309 + 4);
}

static void test_add_row(void **state)
{
	(void)state;
	struct slt_result res = { 0 };
	struct cell row[] = {
		{ 'N', 0, 0, NULL }, { 'I', -42, 0, NULL }, { 'R', 0, 2.25, NULL }, { 'T', 0, 0, "" },
		{ 'T', 0, 0, "a\tb\x7f\xc3\xa9" }, { 'R', 0, 2.7, NULL }, { 'T', 0, 0, "12abc" }, { 'I', 5, 0, NULL },
	};
	assert_int_equal(slt_result_add_row(&res, "IIRTTITR", &fake, row), 0);
	assert_int_equal(res.n, 8);
	assert_string_equal(res.values[0], "NULL");
	assert_string_equal(res.values[1], "-42");
	assert_string_equal(res.values[2], "2.250");
	assert_string_equal(res.values[3], "(empty)");
	assert_string_equal(res.values[4], "a@b@@@");
	assert_string_equal(res.values[5], "2"); /* a real read as I */
	assert_string_equal(res.values[6], "12abc");
	assert_string_equal(res.values[7], "5.000");
	assert_int_equal(slt_result_add_row(&res, "X", &fake, row + 1), MTR_EINVAL);
	assert_int_equal(slt_result_add_row(&res, "V", &fake, row + 1), MTR_EINVAL); /* no type accessor */
	slt_result_free(&res);
	assert_null(res.values);
}

/* 'V' (mtrslt --gen): every value with its type, exactly */
static void test_add_row_typed(void **state)
{
	(void)state;
	struct slt_result res = { 0 };
	struct cell row[] = {
		{ 'N', 0, 0, NULL }, { 'I', -42, 0, NULL }, { 'R', 0, 0.1, NULL }, { 'T', 0, 0, "" },
		{ 'T', 0, 0, "a\tb\\\xc3\xa9" }, { 'B', 3, 0, "\x00\xff" "a" }, { 'B', 0, 0, NULL }, { 'R', 0, -0.0, NULL },
	};
	assert_int_equal(slt_result_add_row(&res, "VVVVVVVV", &fake_v, row), 0);
	assert_int_equal(res.n, 8);
	assert_string_equal(res.values[0], "NULL");
	assert_string_equal(res.values[1], "i:-42");
	assert_string_equal(res.values[2], "r:0.10000000000000001");
	assert_string_equal(res.values[3], "t:");
	assert_string_equal(res.values[4], "t:a\\x09b\\x5c\\xc3\\xa9");
	assert_string_equal(res.values[5], "b:00ff61");
	assert_string_equal(res.values[6], "b:");
	assert_string_equal(res.values[7], "r:-0");
	slt_result_free(&res);
}

/* ---- sort, hash, check ---- */

static void fill(struct slt_result *res, unsigned ncols, const char *const *v, size_t n)
{
	slt_result_clear(res);
	res->ncols = ncols;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(slt_result_add(res, v[i]), 0);
}

static void test_sort(void **state)
{
	(void)state;
	static const char *const v[] = { "b", "2", "a", "9", "b", "1", "a", "10" };
	struct slt_result res = { 0 };
	fill(&res, 2, v, 8);
	slt_result_sort(&res, SLT_ROWSORT);
	static const char *const rows[] = { "a", "10", "a", "9", "b", "1", "b", "2" };
	for (int i = 0; i < 8; i++)
		assert_string_equal(res.values[i], rows[i]);
	fill(&res, 2, v, 8);
	slt_result_sort(&res, SLT_VALUESORT);
	static const char *const vals[] = { "1", "10", "2", "9", "a", "a", "b", "b" };
	for (int i = 0; i < 8; i++)
		assert_string_equal(res.values[i], vals[i]);
	fill(&res, 2, v, 8);
	slt_result_sort(&res, SLT_NOSORT);
	for (int i = 0; i < 8; i++)
		assert_string_equal(res.values[i], v[i]);
	slt_result_free(&res);
}

static void test_hash(void **state)
{
	(void)state;
	static const char *const v[] = { "1", "NULL", "(empty)" };
	struct slt_result res = { 0 };
	char a[33], b[33];
	fill(&res, 1, v, 3);
	slt_result_hash(&res, a);
	md5_of("1\nNULL\n(empty)\n", b);
	assert_string_equal(a, b);
	fill(&res, 1, v, 0);
	slt_result_hash(&res, a);
	assert_string_equal(a, "d41d8cd98f00b204e9800998ecf8427e");
	slt_result_free(&res);
}

static void test_check(void **state)
{
	(void)state;
	static const char *const v[] = { "3", "1", "2" };
	static const char *const sorted[] = { "1", "2", "3" };
	struct slt_result res = { 0 };
	struct slt_record rec = { .kind = SLT_QUERY, .types = "I", .sort = SLT_ROWSORT,
				  .expected = sorted, .n_expected = 3 };
	char why[256], h[33];
	fill(&res, 1, v, 3);
	assert_true(slt_result_check(&res, &rec, 8, h, why, sizeof why));
	/* nosort keeps the order: 3 1 2 differs */
	rec.sort = SLT_NOSORT;
	fill(&res, 1, v, 3);
	assert_false(slt_result_check(&res, &rec, 8, h, why, sizeof why));
	assert_non_null(strstr(why, "value 1"));
	/* too few / too many values */
	rec.sort = SLT_VALUESORT;
	fill(&res, 1, v, 2);
	assert_false(slt_result_check(&res, &rec, 8, NULL, why, sizeof why));
	rec.n_expected = 2;
	fill(&res, 1, v, 3);
	assert_false(slt_result_check(&res, &rec, 8, NULL, why, sizeof why));
	/* above the threshold: the hash line; at or below it: the values */
	char line[128], hx[33];
	fill(&res, 1, sorted, 3);
	slt_result_hash(&res, hx);
	snprintf(line, sizeof line, "3 values hashing to %s", hx);
	const char *hl[] = { line };
	rec.expected = hl;
	rec.n_expected = 1;
	fill(&res, 1, v, 3);
	assert_true(slt_result_check(&res, &rec, 2, h, why, sizeof why));
	assert_string_equal(h, hx);
	fill(&res, 1, v, 3);
	assert_false(slt_result_check(&res, &rec, 3, h, why, sizeof why));
	fill(&res, 1, v, 3);
	assert_false(slt_result_check(&res, &rec, 0, h, why, sizeof why)); /* 0: never hash */
	line[strlen(line) - 1] ^= 1;
	fill(&res, 1, v, 3);
	assert_false(slt_result_check(&res, &rec, 2, h, why, sizeof why));
	/* not a whole number of rows */
	rec.expected = sorted;
	rec.n_expected = 3;
	fill(&res, 2, v, 3);
	assert_false(slt_result_check(&res, &rec, 8, h, why, sizeof why));
	slt_result_free(&res);
}

/* ---- reader ---- */

static void test_reader(void **state)
{
	(void)state;
	char text[] = "# comment\n"
		      "hash-threshold 4\n"
		      "\n"
		      "statement ok\r\n"
		      "CREATE TABLE t(a,\r\n"
		      "  b)\r\n"
		      "\r\n"
		      "skipif mysql # a comment\n"
		      "statement error\n"
		      "SELECT nothing\n"
		      "\n"
		      "onlyif mssql\n"
		      "query I nosort\n"
		      "SELECT 1\n"
		      "----\n"
		      "1\n"
		      "\n"
		      "query ITR rowsort label-7\n"
		      "SELECT 1, 'x',\n"
		      "2.5\n"
		      "----\n"
		      "1\n"
		      "x\n"
		      "2.500\n"
		      "\n"
		      "query T valuesort\n"
		      "SELECT ''\n"
		      "\n"
		      "bogus line\n"
		      "more\n"
		      "\n"
		      "statement maybe\n"
		      "SELECT 1\n"
		      "\n"
		      "skipif sqlite\n"
		      "halt\n"
		      "\n"
		      "statement ok\n"
		      "SELECT 2\n"
		      "\n"
		      "onlyif sqlite\n"
		      "halt\n"
		      "\n"
		      "statement ok\n"
		      "SELECT 3\n";
	struct slt_reader r;
	struct slt_record rec;
	slt_reader_init(&r, text, "sqlite");
	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_HASH_THRESHOLD);
	assert_int_equal(rec.threshold, 4);
	assert_int_equal(rec.line, 2);

	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_STATEMENT_OK);
	assert_false(rec.skip);
	assert_string_equal(rec.sql, "CREATE TABLE t(a,\n  b)");
	assert_int_equal(rec.line, 4);

	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_STATEMENT_ERROR);
	assert_false(rec.skip); /* skipif another engine */
	assert_string_equal(rec.sql, "SELECT nothing");

	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_QUERY);
	assert_true(rec.skip); /* onlyif another engine */

	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_QUERY);
	assert_false(rec.skip);
	assert_string_equal(rec.types, "ITR");
	assert_int_equal(rec.sort, SLT_ROWSORT);
	assert_string_equal(rec.label, "label-7");
	assert_string_equal(rec.sql, "SELECT 1, 'x',\n2.5");
	assert_int_equal(rec.n_expected, 3);
	assert_string_equal(rec.expected[2], "2.500");

	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_QUERY);
	assert_int_equal(rec.sort, SLT_VALUESORT);
	assert_null(rec.label);
	assert_int_equal(rec.n_expected, 0);

	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_UNKNOWN);
	assert_string_equal(rec.text, "bogus line");
	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_UNKNOWN);
	assert_string_equal(rec.text, "statement maybe");

	/* the skipped halt is consumed; the next one ends the file */
	assert_int_equal(slt_reader_next(&r, &rec), 1);
	assert_int_equal(rec.kind, SLT_STATEMENT_OK);
	assert_string_equal(rec.sql, "SELECT 2");
	assert_false(r.halted);
	assert_int_equal(slt_reader_next(&r, &rec), 0);
	assert_true(r.halted);
	slt_reader_free(&r);

	char empty[] = "\n\n# only a comment\n";
	slt_reader_init(&r, empty, "sqlite");
	assert_int_equal(slt_reader_next(&r, &rec), 0);
	assert_false(r.halted);
	slt_reader_free(&r);
}

/* ---- the SQLite backend ---- */

static void test_sqlite_backend(void **state)
{
	(void)state;
	struct slt_backend *b;
	char err[256];
	struct slt_result res = { 0 };
	assert_int_equal(slt_sqlite_open(&b, err, sizeof err), 0);
	assert_string_equal(b->name, "sqlite");
	assert_int_equal(b->exec(b, "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES(1,'x'),(2,NULL);"), 0);
	assert_int_equal(b->query(b, "SELECT a, b FROM t ORDER BY a", "IT", &res), 0);
	assert_int_equal(res.ncols, 2);
	assert_int_equal(res.n, 4);
	assert_string_equal(res.values[3], "NULL");
	/* wrong column count, bad SQL, a failing statement */
	slt_result_clear(&res);
	assert_int_equal(b->query(b, "SELECT a FROM t", "II", &res), MTR_EINVAL);
	assert_int_not_equal(b->query(b, "SELECT FROM", "I", &res), 0);
	assert_int_not_equal(b->exec(b, "INSERT INTO nosuch VALUES(1)"), 0);
	assert_non_null(strstr(b->err, "nosuch"));
	/* an error while stepping ends the rows, it is not a failure */
	slt_result_clear(&res);
	assert_int_equal(b->exec(b, "CREATE TABLE o(x); INSERT INTO o VALUES(9223372036854775807),(1)"), 0);
	assert_int_equal(b->query(b, "SELECT sum(x) FROM o", "I", &res), 0);
	assert_int_equal(res.n, 0);
	/* reset: a new empty database */
	assert_int_equal(b->reset(b), 0);
	assert_int_not_equal(b->query(b, "SELECT a FROM t", "I", &res), 0);
	slt_result_clear(&res);
	assert_int_equal(b->query(b, "SELECT count(*) FROM sqlite_master", "I", &res), 0);
	assert_string_equal(res.values[0], "0");
	slt_result_free(&res);
	b->close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md5_rfc1321), cmocka_unit_test(test_md5_chunks),
		cmocka_unit_test(test_format_real), cmocka_unit_test(test_add_row),
		cmocka_unit_test(test_add_row_typed),
		cmocka_unit_test(test_sort),        cmocka_unit_test(test_hash),
		cmocka_unit_test(test_check),       cmocka_unit_test(test_reader),
		cmocka_unit_test(test_sqlite_backend),
	};
	return cmocka_run_group_tests_name("slt", tests, NULL, NULL);
}
