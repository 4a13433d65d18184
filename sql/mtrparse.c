/*
 * mtrparse.c - `mtrparse`: check SQL without a cluster.  Reads all of stdin,
 * parses and classifies it with the SQL front end (sql.h) and prints one
 * JSON object per statement per line (format in doc/sql.md and
 * doc/mtrparse.1).  Exit status: 0 when every statement is accepted, 1 when
 * any is an error or refused, 2 on a usage or I/O error.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metronome.h"
#include "sql.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrparse < file.sql\n"
		   "Prints one JSON object per statement: line, col, kind, tables_read,\n"
		   "tables_written, functions, nondeterministic, error.\n"
		   "Exit status 1 if a statement is an error or refused.\n");
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
		usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	size_t cap = 1 << 16, len = 0;
	char *text = malloc(cap);
	if (!text) {
		fprintf(stderr, "mtrparse: out of memory\n");
		return 2;
	}
	for (;;) {
		if (len == cap) {
			char *n = realloc(text, cap *= 2);
			if (!n) {
				fprintf(stderr, "mtrparse: out of memory\n");
				free(text);
				return 2;
			}
			text = n;
		}
		size_t r = fread(text + len, 1, cap - len, stdin);
		len += r;
		if (r == 0)
			break;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "mtrparse: cannot read stdin\n");
		free(text);
		return 2;
	}
	struct sql_result *res;
	int rc = sql_parse(text, len, &res);
	if (rc) {
		fprintf(stderr, "mtrparse: %s\n", mtr_strerror(rc));
		free(text);
		return 2;
	}
	size_t bcap = 4096;
	char *buf = malloc(bcap);
	for (unsigned i = 0; buf && i < res->n_stmts; i++) {
		size_t need = sql_stmt_json(&res->stmts[i], buf, bcap);
		if (need >= bcap) {
			free(buf);
			bcap = need + 1;
			buf = malloc(bcap);
			if (!buf)
				break;
			sql_stmt_json(&res->stmts[i], buf, bcap);
		}
		puts(buf);
	}
	int status = buf ? (res->ok ? 0 : 1) : 2;
	free(buf);
	sql_result_free(res);
	free(text);
	return status;
}
