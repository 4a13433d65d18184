/*
 * output.c - mtrsql's output modes (output.h).  Streaming modes write each
 * value as it comes; table and box keep the result's text to size their
 * columns (display width counts UTF-8 code points).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "output.h"

void out_opts_init(struct out_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = OUT_LIST;
}

int out_mode_parse(const char *name, enum out_mode *m)
{
	static const char *const names[] = { "list", "csv", "table", "box", "line", "json" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i])) {
			*m = (enum out_mode)i;
			return 0;
		}
	return -1;
}

void out_begin(struct out_table *t, const struct out_opts *o, FILE *f)
{
	memset(t, 0, sizeof(*t));
	t->o = o;
	t->f = f;
}

void out_column(struct out_table *t, const char *name)
{
	char **c = realloc(t->cols, (t->ncols + 1) * sizeof(*c));
	if (!c)
		return;
	t->cols = c;
	t->cols[t->ncols++] = strdup(name ? name : "");
}

static size_t width(const char *s)
{
	size_t w = 0;
	for (; s && *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void csv_field(FILE *f, const char *s, size_t n)
{
	int quote = n == 0 ? 0 : (s[0] == ' ' || s[n - 1] == ' ');
	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
	if (!quote) {
		fwrite(s, 1, n, f);
		return;
	}
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			fputc('"', f);
		fputc(s[i], f);
	}
	fputc('"', f);
}

static void json_string(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Header line of the streaming modes, before the first value. */
static void stream_header(struct out_table *t)
{
	if (!t->o->headers || (t->o->mode != OUT_LIST && t->o->mode != OUT_CSV))
		return;
	for (size_t i = 0; i < t->ncols; i++) {
		if (i)
			fputc(t->o->mode == OUT_CSV ? ',' : '|', t->f);
		if (t->o->mode == OUT_CSV)
			csv_field(t->f, t->cols[i], strlen(t->cols[i]));
		else
			fputs(t->cols[i], t->f);
	}
	fputc('\n', t->f);
}

void out_value(struct out_table *t, enum out_vtype type, const char *text, int len)
{
	const struct out_opts *o = t->o;
	size_t n = type == OUT_NULL || !text ? 0 : (size_t)(len < 0 ? 0 : len);
	const char *s = type == OUT_NULL || !text ? "" : text;
	if (type == OUT_NULL && o->mode != OUT_JSON) {
		s = o->nullvalue;
		n = strlen(s);
	}
	size_t i = t->col++;
	if (o->mode == OUT_TABLE || o->mode == OUT_BOX) {
		if (t->ncells == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 256;
			char **c = realloc(t->cells, cap * sizeof(*c));
			if (!c)
				return;
			t->cells = c;
			unsigned char *num = realloc(t->num, cap);
			if (!num)
				return;
			t->num = num;
			t->cap = cap;
		}
		t->num[t->ncells] = type == OUT_NUMBER;
		t->cells[t->ncells++] = strndup(s, n);
		return;
	}
	if (i == 0 && t->nrows == 0)
		stream_header(t);
	switch (o->mode) {
	case OUT_LIST:
		if (i)
			fputc('|', t->f);
		fwrite(s, 1, n, t->f);
		break;
	case OUT_CSV:
		if (i)
			fputc(',', t->f);
		csv_field(t->f, s, n);
		break;
	case OUT_LINE: {
		size_t w = 0;
		for (size_t k = 0; k < t->ncols; k++)
			w = width(t->cols[k]) > w ? width(t->cols[k]) : w;
		if (i == 0 && t->nrows)
			fputc('\n', t->f);
		fprintf(t->f, "%*s = ", (int)w, i < t->ncols ? t->cols[i] : "");
		fwrite(s, 1, n, t->f);
		fputc('\n', t->f);
		break;
	}
	case OUT_JSON:
		fputs(i ? "," : (t->nrows ? ",\n{" : "[{"), t->f);
		json_string(t->f, i < t->ncols ? t->cols[i] : "", i < t->ncols ? strlen(t->cols[i]) : 0);
		fputc(':', t->f);
		if (type == OUT_NULL)
			fputs("null", t->f);
		else if (type == OUT_NUMBER)
			fwrite(s, 1, n, t->f);
		else
			json_string(t->f, s, n);
		break;
	default:
		break;
	}
}

void out_row_end(struct out_table *t)
{
	switch (t->o->mode) {
	case OUT_LIST:
	case OUT_CSV:
		fputc('\n', t->f);
		break;
	case OUT_JSON:
		fputc('}', t->f);
		break;
	default:
		break;
	}
	t->col = 0;
	t->nrows++;
}

/* A horizontal rule of table (ascii) or box (unicode) mode: which is 0 top,
 * 1 middle, 2 bottom. */
static void rule(struct out_table *t, const size_t *w, int which)
{
	int box = t->o->mode == OUT_BOX;
	static const char *const bl[3] = { "┌", "├", "└" }, *const bm[3] = { "┬", "┼", "┴" },
				 *const br[3] = { "┐", "┤", "┘" };
	fputs(box ? bl[which] : "+", t->f);
	for (size_t c = 0; c < t->ncols; c++) {
		for (size_t k = 0; k < w[c] + 2; k++)
			fputs(box ? "─" : "-", t->f);
		fputs(c + 1 < t->ncols ? (box ? bm[which] : "+") : (box ? br[which] : "+"), t->f);
	}
	fputc('\n', t->f);
}

static void cell(struct out_table *t, const char *s, size_t w, int right)
{
	size_t pad = w - width(s);
	fputs(t->o->mode == OUT_BOX ? "│ " : "| ", t->f);
	if (right)
		fprintf(t->f, "%*s", (int)pad, "");
	fputs(s, t->f);
	if (!right)
		fprintf(t->f, "%*s", (int)pad, "");
	fputc(' ', t->f);
}

static void print_grid(struct out_table *t)
{
	if (!t->ncols || !t->nrows)
		return;
	size_t *w = calloc(t->ncols, sizeof(*w));
	if (!w)
		return;
	for (size_t c = 0; c < t->ncols; c++)
		w[c] = width(t->cols[c]);
	for (size_t k = 0; k < t->ncells; k++) {
		size_t c = k % t->ncols;
		size_t cw = width(t->cells[k]);
		w[c] = cw > w[c] ? cw : w[c];
	}
	const char *bar = t->o->mode == OUT_BOX ? "│" : "|";
	rule(t, w, 0);
	for (size_t c = 0; c < t->ncols; c++)
		cell(t, t->cols[c], w[c], 0);
	fprintf(t->f, "%s\n", bar);
	rule(t, w, 1);
	for (size_t k = 0; k < t->ncells; k++) {
		cell(t, t->cells[k] ? t->cells[k] : "", w[k % t->ncols], t->num[k]);
		if (k % t->ncols == t->ncols - 1)
			fprintf(t->f, "%s\n", bar);
	}
	rule(t, w, 2);
	free(w);
}

void out_end(struct out_table *t)
{
	if (t->o->mode == OUT_TABLE || t->o->mode == OUT_BOX)
		print_grid(t);
	else if (t->o->mode == OUT_JSON && t->nrows)
		fputs("]\n", t->f);
	for (size_t i = 0; i < t->ncols; i++)
		free(t->cols[i]);
	free(t->cols);
	for (size_t k = 0; k < t->ncells; k++)
		free(t->cells[k]);
	free(t->cells);
	free(t->num);
	memset(t, 0, sizeof(*t));
}
