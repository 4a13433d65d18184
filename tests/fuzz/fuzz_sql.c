/*
 * fuzz_sql.c - libFuzzer target for the SQL front end: the tokenizer over
 * the whole input, then sql_parse() (parser, builder, classifier) and the
 * JSON line of every statement.  Invariants checked: every token has a
 * length within the input, statement spans and error positions lie within
 * the input, the JSON length is stable.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	return 0;
}
