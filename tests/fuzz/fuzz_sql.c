/*
 * fuzz_sql.c - libFuzzer target for the SQL front end: the tokenizer over
 * the whole input, then sql_parse() (parser, builder, classifier) and the
 * JSON line of every statement.  Invariants checked: every token has a
 * length within the input, statement spans and error positions lie within
 * the input, the JSON length is stable.  Then the proxy's item of the
 * input (no binds) is built without and twice with a parse cache kept
 * across inputs (proxy_item.h): the three must be the same bytes, the same
 * code and the same error.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_item.h"
#include "sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct proxy_parse_cache cache; /* kept across inputs */

static void same_items(const char *text, size_t size)
{
	struct proxy_item_in in = {.sql = text, .len = size, .stream = 1, .seq = 2, .request = 3, .now_us = 4, .seed = 5};
	struct proxy_item_out o0, o1;
	struct proxy_err e0, e1;
	int r0 = proxy_item_build(&in, &o0, &e0);
	in.cache = &cache;
	for (int k = 0; k < 2; k++) {
		int r1 = proxy_item_build(&in, &o1, &e1);
		if (r1 != r0 || o1.len != o0.len || o1.flags != o0.flags || o1.nstmt != o0.nstmt ||
		    (o0.len && memcmp(o0.buf, o1.buf, o0.len) != 0) || strcmp(e0.msg, e1.msg) != 0 ||
		    e0.line != e1.line || e0.col != e1.col)
			abort();
		free(o1.buf);
	}
	free(o0.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	for (size_t pos = 0; pos < size;) {
		uint32_t n = 0;
		(void)sql_token(text + pos, size - pos, &n);
		if (n == 0 || n > size - pos)
			abort();
		pos += n;
	}
	struct sql_result *res;
	if (sql_parse(text, size, &res) != 0)
		return 0;
	char buf[256];
	for (unsigned i = 0; i < res->n_stmts; i++) {
		const struct sql_stmt *st = &res->stmts[i];
		if (st->start > st->end || st->end > size || st->error_pos.off > size)
			abort();
		if ((st->kind == SQL_ERROR || st->kind == SQL_REFUSED) && !st->error)
			abort();
		size_t need = sql_stmt_json(st, buf, sizeof buf);
		char *big = malloc(need + 1);
		if (big) {
			if (sql_stmt_json(st, big, need + 1) != need || strlen(big) != need)
				abort();
			free(big);
		}
	}
	sql_result_free(res);
	same_items(text, size);
	return 0;
}
