/*
 * test_sql_slt.c - agreement of the SQL front end with SQLite itself (plain
 * TAP), over three sources of SQL, in this order:
 *
 * 1. the records of the differential test's generator (tests/slt/gen.h,
 *    seed $MTR_DIFF_SEED or 1, $MTR_DIFF_COUNT records or 3000): needs
 *    nothing outside the repository, so a fresh clone runs it;
 * 2. the SQL scripts of $MTR_SRCDIR/tests/sql (*.sql): what the corpus
 *    lacks (CTEs, windows, upsert, RETURNING, ...);
 * 3. the sqllogictest files in $MTR_SLT_DIR (default
 *    $MTR_SRCDIR/../shared/slt), an optional extra: skipped with a reason
 *    when absent.  Every `statement` and `query` record that would run on
 *    SQLite (skipif/onlyif honoured, halt obeyed) is used.
 *
 * Each statement is prepared by sqlite3 in an in-memory database (one per
 * file or run), and executed so that the schema evolves; each is then
 * parsed by sql_parse_ex() in the same order.  Every statement that
 * sqlite3_prepare_v2() accepts must be accepted by our parser, and our
 * read-only flag must equal sqlite3_stmt_readonly().  The generator's
 * refusal records (doc/sql.md "Refused constructs") must be refused, with a
 * message.  The counts are printed as TAP diagnostics.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gen.h"
#include "sql.h"

struct counts {
	unsigned statements; /* records run */
	unsigned sqlite_ok;  /* prepared by sqlite3 */
	unsigned both_ok;    /* ... and accepted by us */
	unsigned ro_agree;   /* ... with the same read-only flag */
	unsigned shown;
	unsigned rejected;   /* not prepared by sqlite3 */
};

static bool exists_cb(void *arg, char type, const char *name)
{
	sqlite3 *db = arg;
	sqlite3_stmt *st;
	const char *q = type == 'i' ? "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?1 COLLATE NOCASE"
		      : type == 'r' ? "SELECT 1 FROM sqlite_master WHERE type='trigger' AND name=?1 COLLATE NOCASE"
				    : "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name=?1 COLLATE NOCASE";
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	bool found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

/* Check one statement text (sqlite accepted it as `st`) against our parser. */
static void check_one(sqlite3 *db, sqlite3_stmt *st, const char *sql, size_t len,
		      const char *where, struct counts *k)
{
	struct sql_schema schema = { exists_cb, db };
	struct sql_result *res;
	k->sqlite_ok++;
	if (sql_parse_ex(sql, len, &schema, &res) != 0) {
		printf("# %s: out of memory\n", where);
		return;
	}
	bool ok = res->n_stmts == 1 && res->ok;
	if (ok) {
		k->both_ok++;
		int ro = sqlite3_stmt_readonly(st);
		if ((bool)ro == res->stmts[0].readonly)
			k->ro_agree++;
		else if (k->shown++ < 20)
			printf("# %s: readonly sqlite=%d ours=%d: %.*s\n", where, ro,
			       res->stmts[0].readonly, (int)(len > 200 ? 200 : len), sql);
	} else if (k->shown++ < 20) {
		printf("# %s: sqlite accepts, we do not (%u stmts, %s): %.*s\n", where,
		       res->n_stmts, res->n_stmts ? (res->stmts[0].error ? res->stmts[0].error : "?") : "none",
		       (int)(len > 200 ? 200 : len), sql);
	}
	sql_result_free(res);
}

/* Prepare, compare and (for statements) execute one SQL text. */
static void run_sql(sqlite3 *db, const char *sql, bool execute, const char *where, struct counts *k)
{
	const char *p = sql;
	while (*p) {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		if (sqlite3_prepare_v2(db, p, -1, &st, &tail) != SQLITE_OK) {
			/* sqlite rejects: nothing is required of us (the rest of
			 * a script is skipped: its end is unknown) */
			k->statements++;
			k->rejected++;
			if (strstr(where, ".sql"))
				printf("# %s: sqlite3 rejects (%s): %.80s\n", where, sqlite3_errmsg(db), p + strspn(p, " \t\r\n"));
			sqlite3_finalize(st);
			return;
		}
		if (!st) /* only white space or comments left */
			return;
		k->statements++;
		check_one(db, st, p, (size_t)(tail - p), where, k);
		if (execute)
			while (sqlite3_step(st) == SQLITE_ROW)
				;
		sqlite3_finalize(st);
		p = tail;
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	if (s)
		s[n] = 0;
	fclose(f);
	return s;
}

/* Run the records of one sqllogictest file. */
static void run_slt(const char *path, const char *name, struct counts *k)
{
	char *text = slurp(path);
	if (!text)
		return;
	sqlite3 *db;
	sqlite3_open(":memory:", &db);
	char *line = text, *next;
	unsigned lineno = 0;
	bool skip = false;
	char sqlbuf[1 << 16];
	for (; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		size_t ll = strlen(line);
		if (ll && line[ll - 1] == '\r')
			line[--ll] = 0;
		if (ll == 0) {
			skip = false;
			continue;
		}
		if (strncmp(line, "skipif ", 7) == 0) {
			if (strncmp(line + 7, "sqlite", 6) == 0)
				skip = true;
			continue;
		}
		if (strncmp(line, "onlyif ", 7) == 0) {
			if (strncmp(line + 7, "sqlite", 6) != 0)
				skip = true;
			continue;
		}
		if (strcmp(line, "halt") == 0) {
			if (!skip)
				break;
			continue;
		}
		bool is_stmt = strncmp(line, "statement ", 10) == 0;
		bool is_query = strncmp(line, "query ", 6) == 0;
		if (!is_stmt && !is_query)
			continue;
		unsigned at = lineno;
		size_t n = 0;
		/* the SQL: lines up to a blank line or ---- */
		while (next && *next && *next != '\n' && strncmp(next, "----", 4) != 0) {
			line = next;
			next = strchr(line, '\n');
			if (next)
				*next++ = 0;
			lineno++;
			size_t l = strlen(line);
			if (n + l + 2 < sizeof sqlbuf) {
				memcpy(sqlbuf + n, line, l);
				n += l;
				sqlbuf[n++] = '\n';
			}
		}
		sqlbuf[n] = 0;
		/* skip the expected results of a query */
		while (next && *next && *next != '\n') {
			line = next;
			next = strchr(line, '\n');
			if (next)
				*next++ = 0;
			lineno++;
		}
		if (!skip) {
			char where[256];
			snprintf(where, sizeof where, "%s:%u", name, at);
			run_sql(db, sqlbuf, is_stmt, where, k);
		}
		skip = false;
	}
	sqlite3_close(db);
	free(text);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run fn over every file of dir ending in ext (sorted); returns the count. */
static unsigned each_file(const char *dir, const char *ext, bool slt, struct counts *k)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	char *names[256];
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 256) {
		size_t l = strlen(e->d_name), el = strlen(ext);
		if (l > el && strcmp(e->d_name + l - el, ext) == 0)
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_str);
	for (unsigned i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (slt) {
			run_slt(path, names[i], k);
		} else {
			char *text = slurp(path);
			sqlite3 *db;
			sqlite3_open(":memory:", &db);
			if (text)
				run_sql(db, text, true, names[i], k);
			sqlite3_close(db);
			free(text);
		}
		free(names[i]);
	}
	return n;
}

static void report(const char *what, unsigned *test, const struct counts *k)
{
	printf("# %s: %u statements, %u prepared by sqlite3, %u accepted by both (%.2f%%), %u read-only agreements (%.2f%%)\n",
	       what, k->statements, k->sqlite_ok, k->both_ok,
	       k->sqlite_ok ? 100.0 * k->both_ok / k->sqlite_ok : 100.0, k->ro_agree,
	       k->both_ok ? 100.0 * k->ro_agree / k->both_ok : 100.0);
	printf("%s %u - %s: every statement sqlite3 prepares is accepted\n",
	       k->both_ok == k->sqlite_ok && k->sqlite_ok > 0 ? "ok" : "not ok", ++*test, what);
	printf("%s %u - %s: read-only agrees with sqlite3_stmt_readonly\n",
	       k->ro_agree == k->both_ok && k->both_ok > 0 ? "ok" : "not ok", ++*test, what);
}

/* The generator's records: SQLite and the front end must agree on every
 * statement SQLite prepares; refusals must be refused.  Returns the number
 * of refusal records that were not refused (shown). */
static unsigned run_gen(uint64_t seed, unsigned long count, struct counts *k, unsigned *nrefused)
{
	struct gen *g = gen_new(seed);
	sqlite3 *db;
	unsigned bad = 0;
	*nrefused = 0;
	if (!g || sqlite3_open(":memory:", &db) != SQLITE_OK) {
		gen_free(g);
		return 1;
	}
	for (unsigned long i = 1; i <= count; i++) {
		const struct gen_rec *r = gen_next(g);
		char where[64];
		if (!r) {
			bad++;
			break;
		}
		snprintf(where, sizeof where, "generated %lu", i);
		if (r->expect == GEN_REFUSED) {
			struct sql_result *res;
			(*nrefused)++;
			if (sql_parse(r->sql, strlen(r->sql), &res) != 0) {
				bad++;
				continue;
			}
			bool refused = res->n_stmts == 1 && res->stmts[0].kind == SQL_REFUSED && res->stmts[0].error &&
				       res->stmts[0].error[0];
			if (!refused) {
				bad++;
				printf("# %s: not refused (%s): %s\n", where,
				       res->n_stmts ? sql_kind_name(res->stmts[0].kind) : "no statement", r->sql);
			}
			sql_result_free(res);
			continue;
		}
		run_sql(db, r->sql, r->kind == GEN_EXEC || strstr(r->sql, "RETURNING"), where, k);
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	gen_free(g);
	return bad;
}

int main(void)
{
	char slt[4096], sqldir[4096];
	const char *src = getenv("MTR_SRCDIR");
	const char *env = getenv("MTR_SLT_DIR");
	const char *seed_env = getenv("MTR_DIFF_SEED");
	const char *count_env = getenv("MTR_DIFF_COUNT");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 1;
	unsigned long count = count_env ? strtoul(count_env, NULL, 10) : 3000;
	if (!src)
		src = ".";
	if (env)
		snprintf(slt, sizeof slt, "%s", env);
	else
		snprintf(slt, sizeof slt, "%s/../shared/slt", src);
	snprintf(sqldir, sizeof sqldir, "%s/tests/sql", src);

	printf("1..7\n");
	unsigned test = 0;

	/* 1-3: the generated statements */
	struct counts gk = { 0 };
	unsigned nrefused;
	unsigned bad = run_gen(seed, count, &gk, &nrefused);
	printf("# generator seed %llu, %lu records ($MTR_DIFF_SEED, $MTR_DIFF_COUNT): %u refusals, %u statements sqlite3 rejects (failures the records expect)\n",
	       (unsigned long long)seed, count, nrefused, gk.rejected);
	report("generated", &test, &gk);
	printf("%s %u - generated: every refusal record (%u) is refused with a message\n",
	       bad == 0 && nrefused > 0 ? "ok" : "not ok", ++test, nrefused);

	/* 4-5: tests/sql */
	struct counts x = { 0 };
	unsigned nf = each_file(sqldir, ".sql", false, &x);
	printf("# %u SQL scripts in %s\n", nf, sqldir);
	if (x.rejected)
		x.both_ok = 0; /* the scripts must be valid SQLite: fail loudly */
	report("tests/sql", &test, &x);

	/* 6-7: the sqllogictest corpus, when there */
	DIR *d = opendir(slt);
	if (!d) {
		for (int i = 0; i < 2; i++)
			printf("ok %u # SKIP no sqllogictest corpus at %s: an optional extra (set MTR_SLT_DIR); "
			       "the generated statements above and tests/integration/sql_diff.sh are the default check\n",
			       ++test, slt);
		return 0;
	}
	closedir(d);
	struct counts k = { 0 };
	nf = each_file(slt, ".test", true, &k);
	printf("# %u sqllogictest files in %s\n", nf, slt);
	report("slt", &test, &k);
	return 0;
}
