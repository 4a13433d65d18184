/*
 * slt.c - reading sqllogictest records and checking query results (see
 * slt.h; the rules are written out in doc/mtrslt.md).
 *
 * The reader splits the file text in place: each line's end becomes a NUL
 * (a CR before it too), so expected lines are pointers into the text.  The
 * SQL of a record may span lines; it is copied into a buffer with '\n'
 * between the lines.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metronome.h"
#include "md5.h"
#include "slt.h"

/* ---- reader ---- */

void slt_reader_init(struct slt_reader *r, char *text, const char *engine)
{
	memset(r, 0, sizeof *r);
	r->text = text;
	r->pos = text;
	r->engine = engine;
}

void slt_reader_free(struct slt_reader *r)
{
	free(r->sql);
	free(r->exp);
	r->sql = NULL;
	r->exp = NULL;
	r->sql_cap = r->exp_cap = 0;
}

/* The next line (NUL-terminated in place, CR stripped) or NULL at the end. */
static char *next_line(struct slt_reader *r)
{
	if (!*r->pos)
		return NULL;
	char *line = r->pos;
	char *nl = strchr(line, '\n');
	if (nl) {
		*nl = 0;
		r->pos = nl + 1;
	} else {
		r->pos = line + strlen(line);
	}
	size_t n = strlen(line);
	if (n && line[n - 1] == '\r')
		line[n - 1] = 0;
	r->lineno++;
	return line;
}

/* The next line without consuming it: its first byte, or 0 at the end. */
static bool at_blank(const struct slt_reader *r)
{
	const char *p = r->pos;
	return !*p || *p == '\n' || (*p == '\r' && p[1] == '\n') || (*p == '\r' && !p[1]);
}

static bool starts_word(const char *line, const char *word)
{
	size_t n = strlen(word);
	return strncmp(line, word, n) == 0 && (line[n] == 0 || line[n] == ' ' || line[n] == '\t');
}

/* Copy the i-th space-separated word of s (from 0) into out; false if none. */
static bool word_at(const char *s, unsigned i, char *out, size_t outlen)
{
	for (unsigned k = 0;; k++) {
		s += strspn(s, " \t");
		if (!*s)
			return false;
		size_t n = strcspn(s, " \t");
		if (k == i) {
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, s, n);
			out[n] = 0;
			return true;
		}
		s += n;
	}
}

static int sql_append(struct slt_reader *r, size_t *len, const char *line)
{
	size_t l = strlen(line);
	if (*len + l + 2 > r->sql_cap) {
		size_t cap = r->sql_cap ? r->sql_cap : 1024;
		while (cap < *len + l + 2)
			cap *= 2;
		char *p = realloc(r->sql, cap);
		if (!p)
			return MTR_ENOMEM;
		r->sql = p;
		r->sql_cap = cap;
	}
	if (*len)
		r->sql[(*len)++] = '\n';
	memcpy(r->sql + *len, line, l);
	*len += l;
	r->sql[*len] = 0;
	return 0;
}

static int exp_append(struct slt_reader *r, size_t *n, const char *line)
{
	if (*n == r->exp_cap) {
		size_t cap = r->exp_cap ? 2 * r->exp_cap : 64;
		const char **p = realloc(r->exp, cap * sizeof *p);
		if (!p)
			return MTR_ENOMEM;
		r->exp = p;
		r->exp_cap = cap;
	}
	r->exp[(*n)++] = line;
	return 0;
}

/* Read SQL lines up to a blank line (or "----" when dashes). */
static int read_sql(struct slt_reader *r, bool dashes)
{
	size_t len = 0;
	if (sql_append(r, &len, "") != 0)
		return MTR_ENOMEM;
	while (!at_blank(r)) {
		if (dashes && strncmp(r->pos, "----", 4) == 0)
			break;
		if (sql_append(r, &len, next_line(r)) != 0)
			return MTR_ENOMEM;
	}
	return 0;
}

int slt_reader_next(struct slt_reader *r, struct slt_record *rec)
{
	bool skip = false;
	char *line;
	while ((line = next_line(r))) {
		if (!*line || line[0] == '#')
			continue;
		char word[64];
		if (starts_word(line, "skipif") || starts_word(line, "onlyif")) {
			if (!word_at(line, 1, word, sizeof word))
				word[0] = 0;
			bool same = strcasecmp(word, r->engine) == 0;
			if (line[0] == 's' ? same : !same)
				skip = true;
			continue;
		}
		if (starts_word(line, "halt")) {
			if (skip) {
				skip = false;
				continue;
			}
			r->halted = true;
			return 0;
		}
		memset(rec, 0, sizeof *rec);
		rec->line = r->lineno;
		rec->skip = skip;
		if (starts_word(line, "hash-threshold")) {
			rec->kind = SLT_HASH_THRESHOLD;
			rec->threshold = word_at(line, 1, word, sizeof word) ? (unsigned)strtoul(word, NULL, 10) : 0;
			return 1;
		}
		if (starts_word(line, "statement")) {
			if (!word_at(line, 1, word, sizeof word) ||
			    (strcmp(word, "ok") != 0 && strcmp(word, "error") != 0)) {
				rec->kind = SLT_UNKNOWN;
				rec->text = line;
				while (!at_blank(r)) /* its SQL goes with it */
					next_line(r);
				return 1;
			}
			rec->kind = strcmp(word, "ok") == 0 ? SLT_STATEMENT_OK : SLT_STATEMENT_ERROR;
			if (read_sql(r, false) != 0)
				return MTR_ENOMEM;
			rec->sql = r->sql;
			return 1;
		}
		if (starts_word(line, "query")) {
			rec->kind = SLT_QUERY;
			if (!word_at(line, 1, r->types, sizeof r->types))
				r->types[0] = 0;
			rec->types = r->types;
			rec->sort = SLT_NOSORT;
			if (word_at(line, 2, word, sizeof word)) {
				if (strcmp(word, "rowsort") == 0)
					rec->sort = SLT_ROWSORT;
				else if (strcmp(word, "valuesort") == 0)
					rec->sort = SLT_VALUESORT;
				else if (strcmp(word, "nosort") != 0)
					rec->kind = SLT_UNKNOWN;
			}
			if (word_at(line, 3, r->label, sizeof r->label))
				rec->label = r->label;
			if (rec->kind == SLT_UNKNOWN)
				rec->text = line; /* still consume the record below */
			if (read_sql(r, true) != 0)
				return MTR_ENOMEM;
			rec->sql = r->sql;
			size_t n = 0;
			if (strncmp(r->pos, "----", 4) == 0) {
				next_line(r);
				while (!at_blank(r))
					if (exp_append(r, &n, next_line(r)) != 0)
						return MTR_ENOMEM;
			}
			rec->expected = r->exp;
			rec->n_expected = n;
			return 1;
		}
		/* not a record: report it, then skip to the next blank line */
		rec->kind = SLT_UNKNOWN;
		rec->text = line;
		while (!at_blank(r))
			next_line(r);
		return 1;
	}
	return 0;
}

/* ---- results ---- */

int slt_result_add(struct slt_result *res, const char *value)
{
	if (res->n == res->cap) {
		size_t cap = res->cap ? 2 * res->cap : 64;
		char **p = realloc(res->values, cap * sizeof *p);
		if (!p)
			return MTR_ENOMEM;
		res->values = p;
		res->cap = cap;
	}
	char *v = strdup(value);
	if (!v)
		return MTR_ENOMEM;
	res->values[res->n++] = v;
	return 0;
}

/*
 * "%.3f", but with at most 16 significant digits: the corpus was made with
 * SQLite's printf, which stops at 16 digits and writes zeros after them
 * (sum() of -2^63 as R is "-9223372036854776000.000"), while the C
 * library prints every digit.  Below 10^13 "%.3f" has at most 16 digits
 * anyway; above, the 16 digits come rounded from "%.15e".
 */
void slt_format_real(double v, char *out, size_t outlen)
{
	char e[64];
	snprintf(e, sizeof e, "%.15e", v);
	const char *x = strchr(e, 'e');
	int exp10 = x ? atoi(x + 1) : 0;
	if (!x || exp10 < 13 || !isfinite(v)) {
		snprintf(out, outlen, "%.3f", v);
		return;
	}
	/* e is "[-]D.DDDDDDDDDDDDDDDe+XX": 16 digits, the point after the first */
	char digits[17], buf[400];
	const char *p = e + (e[0] == '-');
	size_t nd = 0;
	for (; p < x && nd < 16; p++)
		if (*p != '.')
			digits[nd++] = *p;
	size_t n = 0;
	if (e[0] == '-')
		buf[n++] = '-';
	for (int i = 0; i <= exp10 && n < sizeof buf - 8; i++)
		buf[n++] = (size_t)i < nd ? digits[i] : '0';
	buf[n++] = '.';
	for (int i = exp10 + 1; i < exp10 + 4; i++)
		buf[n++] = (size_t)i < nd ? digits[i] : '0';
	buf[n] = 0;
	snprintf(out, outlen, "%s", buf);
}

/* One 'V' value: its type and an exact text form (slt.h). */
static int add_typed(struct slt_result *res, const struct slt_columns *ops, void *stmt, int i)
{
	static const char hex[] = "0123456789abcdef";
	int t = ops->type(stmt, i);
	char num[64];
	if (t == 1) { /* SQLITE_INTEGER */
		snprintf(num, sizeof num, "i:%" PRId64, ops->int64(stmt, i));
		return slt_result_add(res, num);
	}
	if (t == 2) { /* SQLITE_FLOAT */
		snprintf(num, sizeof num, "r:%.17g", ops->dbl(stmt, i));
		return slt_result_add(res, num);
	}
	int n = 0;
	const unsigned char *p;
	if (t == 4) { /* SQLITE_BLOB */
		p = ops->blob(stmt, i, &n);
	} else {
		p = (const unsigned char *)ops->text(stmt, i);
		n = p ? (int)strlen((const char *)p) : 0;
	}
	char *s = malloc(4 * (size_t)n + 3), *q = s;
	if (!s)
		return MTR_ENOMEM;
	*q++ = t == 4 ? 'b' : 't';
	*q++ = ':';
	for (int k = 0; k < n; k++) {
		if (t == 4) {
			*q++ = hex[p[k] >> 4];
			*q++ = hex[p[k] & 15];
		} else if (p[k] < ' ' || p[k] > '~' || p[k] == '\\') {
			*q++ = '\\';
			*q++ = 'x';
			*q++ = hex[p[k] >> 4];
			*q++ = hex[p[k] & 15];
		} else {
			*q++ = (char)p[k];
		}
	}
	*q = 0;
	int rc = slt_result_add(res, s);
	free(s);
	return rc;
}

int slt_result_add_row(struct slt_result *res, const char *types, const struct slt_columns *ops,
		       void *stmt)
{
	for (int i = 0; types[i]; i++) {
		char num[400];
		if (ops->is_null(stmt, i)) {
			if (slt_result_add(res, "NULL") != 0)
				return MTR_ENOMEM;
			continue;
		}
		switch (types[i]) {
		case 'I':
			snprintf(num, sizeof num, "%" PRId64, ops->int64(stmt, i));
			if (slt_result_add(res, num) != 0)
				return MTR_ENOMEM;
			break;
		case 'R':
			slt_format_real(ops->dbl(stmt, i), num, sizeof num);
			if (slt_result_add(res, num) != 0)
				return MTR_ENOMEM;
			break;
		case 'T': {
			const char *t = ops->text(stmt, i);
			if (!t || !*t) {
				if (slt_result_add(res, "(empty)") != 0)
					return MTR_ENOMEM;
				break;
			}
			if (slt_result_add(res, t) != 0)
				return MTR_ENOMEM;
			for (char *p = res->values[res->n - 1]; *p; p++)
				if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
					*p = '@';
			break;
		}
		case 'V':
			if (!ops->type || !ops->blob)
				return MTR_EINVAL;
			if (add_typed(res, ops, stmt, i) != 0)
				return MTR_ENOMEM;
			break;
		default:
			return MTR_EINVAL;
		}
	}
	return 0;
}

void slt_result_clear(struct slt_result *res)
{
	for (size_t i = 0; i < res->n; i++)
		free(res->values[i]);
	res->n = 0;
}

void slt_result_free(struct slt_result *res)
{
	slt_result_clear(res);
	free(res->values);
	memset(res, 0, sizeof *res);
}

static int cmp_value(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* qsort has no context argument: the row width travels in a static. */
static _Thread_local unsigned sort_ncols;

static int cmp_row(const void *a, const void *b)
{
	char *const *x = a, *const *y = b;
	for (unsigned i = 0; i < sort_ncols; i++) {
		int c = strcmp(x[i], y[i]);
		if (c)
			return c;
	}
	return 0;
}

void slt_result_sort(struct slt_result *res, enum slt_sort mode)
{
	if (res->n < 2 || res->values == NULL)
		return; /* nothing to sort (qsort must not get NULL, even for 0 items) */
	if (mode == SLT_VALUESORT) {
		qsort(res->values, res->n, sizeof res->values[0], cmp_value);
	} else if (mode == SLT_ROWSORT && res->ncols > 0 && res->n % res->ncols == 0) {
		sort_ncols = res->ncols;
		qsort(res->values, res->n / res->ncols, res->ncols * sizeof res->values[0], cmp_row);
	}
}

void slt_result_hash(const struct slt_result *res, char hex[33])
{
	struct md5 m;
	md5_init(&m);
	for (size_t i = 0; i < res->n; i++) {
		md5_update(&m, res->values[i], strlen(res->values[i]));
		md5_update(&m, "\n", 1);
	}
	md5_final_hex(&m, hex);
}

bool slt_result_check(struct slt_result *res, const struct slt_record *rec, unsigned threshold,
		      char hash[33], char *why, size_t whylen)
{
	char h[33];
	if (res->ncols && res->n % res->ncols != 0) {
		snprintf(why, whylen, "%zu values is not a whole number of rows of %u", res->n, res->ncols);
		return false;
	}
	slt_result_sort(res, rec->sort);
	slt_result_hash(res, h);
	if (hash)
		memcpy(hash, h, 33);
	if (threshold > 0 && res->n > threshold) {
		char line[128];
		snprintf(line, sizeof line, "%zu values hashing to %s", res->n, h);
		if (rec->n_expected == 1 && strcmp(rec->expected[0], line) == 0)
			return true;
		snprintf(why, whylen, "expected \"%s\", got \"%s\"",
			 rec->n_expected ? rec->expected[0] : "(nothing)", line);
		return false;
	}
	for (size_t i = 0; i < res->n || i < rec->n_expected; i++) {
		if (i >= res->n) {
			snprintf(why, whylen, "%zu values, expected %zu (next expected: \"%.60s\")", res->n,
				 rec->n_expected, rec->expected[i]);
			return false;
		}
		if (i >= rec->n_expected) {
			snprintf(why, whylen, "%zu values, expected %zu (next value: \"%.60s\")", res->n,
				 rec->n_expected, res->values[i]);
			return false;
		}
		if (strcmp(res->values[i], rec->expected[i]) != 0) {
			snprintf(why, whylen, "value %zu: expected \"%.60s\", got \"%.60s\"", i + 1,
				 rec->expected[i], res->values[i]);
			return false;
		}
	}
	return true;
}
