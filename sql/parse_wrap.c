/*
 * parse_wrap.c - compiles the lemon-generated parser (parse.c, made from
 * parse.y in the build directory) with the few warnings its template trips
 * silenced here rather than globally, and adds the helpers build.c needs
 * from the parser's private tables: reset after an error, the set of
 * tokens the current state can shift (for "expected ..." hints), and the
 * names of the tokens (tokname.h, generated from parse.h).
 */
#include "config.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "parse.c"
#pragma GCC diagnostic pop

void sql_parser_reset(void *p)
{
	sqlParserFinalize(p);
	sqlParserInit(p);
}

int sql_parser_expected(void *p, int *codes, int cap)
{
	yyParser *pp = p;
	int st = pp->yytos->stateno;
	int n = 0;
	if (st > YY_MAX_SHIFT || st > YY_SHIFT_COUNT)
		return 0;
	for (int tok = 1; tok < YYNTOKEN && n < cap; tok++) {
		int i = yy_shift_ofst[st] + tok;
		if (i >= 0 && i < (int)YY_NLOOKAHEAD && yy_lookahead[i] == tok &&
		    i < (int)(sizeof yy_action / sizeof yy_action[0]) &&
		    yy_action[i] != YY_ERROR_ACTION)
			codes[n++] = tok;
	}
	return n;
}

static const char *const token_names[] = {
#include "tokname.h"
};

const char *sql_token_name(int code)
{
	if (code <= 0 || code >= (int)(sizeof token_names / sizeof token_names[0]))
		return "?";
	return token_names[code] ? token_names[code] : "?";
}
