/*
 * output.c - mtrsql's output modes (output.h), after sqlite3 3.40's
 * shell_callback and exec_prepared_stmt_columnar.  Streaming modes write
 * each row as it comes.  The columnar modes keep every cell: a cell is
 * shown as lines (a newline in the value starts a line, a tab is spaces to
 * the next multiple of 8, any other control byte is ^X) wrapped at the
 * column's width (.width, else --wrap), so no value can break the grid.
 * Two deliberate differences from sqlite3: numbers are right-justified in
 * the columnar modes, and csv rows end with \n, not \r\n.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "output.h"

static const char *const mode_names[OUT_NMODES] = {
	"list", "csv", "table", "box", "line", "json", "column", "markdown",
	"html", "insert", "quote", "tabs", "ascii", "tcl", "qbox",
};

static int columnar(enum out_mode m)
{
	return m == OUT_TABLE || m == OUT_BOX || m == OUT_COLUMN || m == OUT_MARKDOWN || m == OUT_QBOX;
}

void out_opts_init(struct out_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = OUT_LIST;
	strcpy(o->colsep, "|");
	strcpy(o->rowsep, "\n");
	o->wrap = 60;
	strcpy(o->table, "\"table\"");
}

const char *out_mode_name(enum out_mode m)
{
	return (unsigned)m < OUT_NMODES ? mode_names[m] : "?";
}

void out_mode_describe(const struct out_opts *o, char *buf, size_t n)
{
	if (columnar(o->mode))
		snprintf(buf, n, "%s --wrap %d --wordwrap %s --%squote", o->mode == OUT_QBOX ? "box" : out_mode_name(o->mode),
			 o->wrap, o->wordwrap ? "on" : "off", o->quote ? "" : "no");
	else if (o->mode == OUT_INSERT)
		snprintf(buf, n, "insert %s", o->table);
	else
		snprintf(buf, n, "%s", out_mode_name(o->mode));
}

static void seps(struct out_opts *o, const char *col, const char *row)
{
	if (col)
		snprintf(o->colsep, sizeof(o->colsep), "%s", col);
	if (row)
		snprintf(o->rowsep, sizeof(o->rowsep), "%s", row);
}

int out_mode_set(struct out_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	int mode = -1, wrap = -1, ww = -1, quote = -1;
	const char *table = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--wrap") && i + 1 < argc)
			wrap = atoi(argv[++i]);
		else if (!strcmp(a, "--wordwrap") && i + 1 < argc)
			ww = !strcmp(argv[i + 1], "on") || !strcmp(argv[i + 1], "1") || !strcmp(argv[i + 1], "yes"), i++;
		else if (!strcmp(a, "--ww"))
			ww = 1;
		else if (!strcmp(a, "--quote"))
			quote = 1;
		else if (!strcmp(a, "--noquote"))
			quote = 0;
		else if (a[0] == '-' && a[1] == '-') {
			snprintf(err, errlen, "unknown .mode option %s", a);
			return -1;
		} else if (mode < 0) {
			for (int m = 0; m < OUT_NMODES; m++)
				if (!strcmp(a, mode_names[m]))
					mode = m;
			if (mode < 0) {
				snprintf(err, errlen, "unknown mode \"%s\"; one of: list csv column table box markdown "
					 "line json html insert quote tabs ascii tcl qbox", a);
				return -1;
			}
		} else if (mode == OUT_INSERT && !table) {
			table = a;
		} else {
			snprintf(err, errlen, "extra argument to .mode: \"%s\"", a);
			return -1;
		}
	}
	if (mode < 0) {
		snprintf(err, errlen, "current output mode: %s", out_mode_name(o->mode));
		return -1;
	}
	o->mode = (enum out_mode)mode;
	switch (o->mode) {
	case OUT_LIST: seps(o, "|", "\n"); break;
	case OUT_CSV: seps(o, ",", "\n"); break;
	case OUT_TABS: seps(o, "\t", "\n"); break;
	case OUT_QUOTE: seps(o, ",", "\n"); break;
	case OUT_TCL: seps(o, " ", "\n"); break;
	case OUT_ASCII: seps(o, "\x1f", "\x1e"); break;
	case OUT_LINE: seps(o, NULL, "\n"); break;
	case OUT_INSERT: {
		char *q = out_ident(table ? table : "table");
		snprintf(o->table, sizeof(o->table), "%s", q ? q : "\"table\"");
		free(q);
		break;
	}
	default: break;
	}
	if (columnar(o->mode)) {
		o->wrap = wrap >= 0 ? wrap : 60;
		o->wordwrap = ww >= 0 ? ww : 0;
		o->quote = quote >= 0 ? quote : o->mode == OUT_QBOX;
		if (o->mode == OUT_COLUMN && !o->headers_set)
			o->headers = 1;
	}
	return 0;
}

/* ---- literals --------------------------------------------------------- */

char out_quote_char(const char *name)
{
	if (!isalpha((unsigned char)name[0]) && name[0] != '_')
		return '"';
	int i;
	for (i = 0; name[i]; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_')
			return '"';
	return sqlite3_keyword_check(name, i) ? '"' : 0;
}

char *out_ident(const char *name)
{
	char *q = out_quote_char(name) ? sqlite3_mprintf("\"%w\"", name) : sqlite3_mprintf("%s", name);
	char *r = q ? strdup(q) : NULL;
	sqlite3_free(q);
	return r;
}

/* A string not in z: a, b, else "(aN)" (sqlite3's unused_string). */
static const char *unused_string(const char *z, const char *a, const char *b, char *buf, size_t n)
{
	if (!strstr(z, a))
		return a;
	if (!strstr(z, b))
		return b;
	for (unsigned i = 0;; i++) {
		snprintf(buf, n, "(%s%u)", a, i);
		if (!strstr(z, buf))
			return buf;
	}
}

void out_sql_string(FILE *f, const char *z, size_t n, int escape_nl)
{
	size_t nl = 0, cr = 0;
	for (size_t i = 0; i < n && escape_nl; i++) {
		nl += z[i] == '\n';
		cr += z[i] == '\r';
	}
	char b1[24], b2[24];
	const char *znl = NULL, *zcr = NULL;
	if (nl) {
		fputs("replace(", f);
		znl = unused_string(z, "\\n", "\\012", b1, sizeof b1);
	}
	if (cr) {
		fputs("replace(", f);
		zcr = unused_string(z, "\\r", "\\015", b2, sizeof b2);
	}
	fputc('\'', f);
	for (size_t i = 0; i < n; i++) {
		if (z[i] == '\'')
			fputc('\'', f);
		if (znl && z[i] == '\n')
			fputs(znl, f);
		else if (zcr && z[i] == '\r')
			fputs(zcr, f);
		else
			fputc(z[i], f);
	}
	fputc('\'', f);
	if (cr)
		fprintf(f, ",'%s',char(13))", zcr);
	if (nl)
		fprintf(f, ",'%s',char(10))", znl);
}

void out_sql_double(FILE *f, double d, int insert_style)
{
	char z[64];
	if (d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
		fputs(d > 0 ? "1e999" : "-1e999", f);
		return;
	}
	if (insert_style && d > -9.2e18 && d < 9.2e18 && d == (double)(int64_t)d)
		sqlite3_snprintf(sizeof z, z, "%lld.0", (long long)(int64_t)d);
	else
		sqlite3_snprintf(sizeof z, z, "%!.20g", d);
	fputs(z, f);
}

void out_sql_blob(FILE *f, const void *b, size_t n)
{
	const unsigned char *p = b;
	fputs("X'", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
	fputc('\'', f);
}

void out_c_string(FILE *f, const char *z, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)z[i];
		if (c == '\\' || c == '"')
			fprintf(f, "\\%c", c);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c < 0x20 || c >= 0x7f) /* (non-ASCII too: isprint in the C locale) */
			fprintf(f, "\\%03o", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* RFC 4180 field as sqlite3's output_csv: quoted when it is empty or holds
 * a blank, a quote, a control or non-ASCII byte, or the separator. */
static void csv_field(FILE *f, const char *s, size_t n, const char *sep)
{
	int quote = n == 0;
	for (size_t i = 0; i < n && !quote; i++) {
		unsigned char c = (unsigned char)s[i];
		quote = c <= ' ' || c == '"' || c == '\'' || c >= 0x7f;
	}
	size_t sl = strlen(sep);
	for (size_t i = 0; sl && i + sl <= n && !quote; i++)
		quote = !memcmp(s + i, sep, sl);
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
		else if (c == '\b')
			fputs("\\b", f);
		else if (c == '\f')
			fputs("\\f", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void html_string(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(s[i], f);
		}
	}
}

/* ---- streaming modes -------------------------------------------------- */

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
	t->cols[t->ncols] = strdup(name ? name : "");
	if (t->cols[t->ncols])
		t->ncols++;
}

static size_t width(const char *s)
{
	size_t w = 0;
	for (; s && *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* The header line of the streaming modes, before the first value. */
static void stream_header(struct out_table *t)
{
	const struct out_opts *o = t->o;
	FILE *f = t->f;
	if (!o->headers && o->mode != OUT_HTML)
		return;
	if (o->mode == OUT_HTML) {
		if (!o->headers)
			return;
		fputs("<TR>", f);
		for (size_t i = 0; i < t->ncols; i++) {
			fputs("<TH>", f);
			html_string(f, t->cols[i], strlen(t->cols[i]));
			fputs("</TH>\n", f);
		}
		fputs("</TR>\n", f);
		return;
	}
	if (o->mode != OUT_LIST && o->mode != OUT_CSV && o->mode != OUT_TABS && o->mode != OUT_ASCII &&
	    o->mode != OUT_QUOTE && o->mode != OUT_TCL)
		return;
	for (size_t i = 0; i < t->ncols; i++) {
		const char *c = t->cols[i];
		if (i)
			fputs(o->colsep, f);
		if (o->mode == OUT_CSV)
			csv_field(f, c, strlen(c), o->colsep);
		else if (o->mode == OUT_QUOTE)
			out_sql_string(f, c, strlen(c), 0);
		else if (o->mode == OUT_TCL)
			out_c_string(f, c, strlen(c));
		else
			fputs(c, f);
	}
	fputs(o->rowsep, f);
}

/* A columnar cell: the value as shown (NULL value, --quote). */
static char *cell_text(const struct out_opts *o, enum out_vtype type, const char *s, size_t n)
{
	if (!o->quote || type == OUT_INTEGER || type == OUT_FLOAT)
		return type == OUT_NULL ? strdup(o->nullvalue) : strndup(s, n);
	if (type == OUT_NULL)
		return strdup("NULL");
	char *r = malloc(n * 2 + 4);
	if (!r)
		return NULL;
	size_t k = 0;
	if (type == OUT_BLOB) {
		k += (size_t)sprintf(r, "x'");
		for (size_t i = 0; i < n; i++)
			k += (size_t)sprintf(r + k, "%02x", (unsigned char)s[i]);
	} else {
		r[k++] = '\'';
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '\'')
				r[k++] = '\'';
			r[k++] = s[i];
		}
	}
	r[k++] = '\'';
	r[k] = 0;
	return r;
}

void out_value(struct out_table *t, enum out_vtype type, const char *text, int len, double d)
{
	const struct out_opts *o = t->o;
	FILE *f = t->f;
	size_t n = type == OUT_NULL || !text || len < 0 ? 0 : (size_t)len;
	const char *s = type == OUT_NULL || !text ? "" : text;
	const char *shown = s;
	size_t shown_n = n;
	if (type == OUT_NULL) {
		shown = o->nullvalue;
		shown_n = strlen(shown);
	}
	size_t i = t->col++;
	/* the text modes show a value as sqlite3 does, as a C string: up to
	 * its first NUL (a blob's bytes go out raw; quote, insert and json
	 * show all of it) */
	if (o->mode != OUT_QUOTE && o->mode != OUT_INSERT && o->mode != OUT_JSON && !(columnar(o->mode) && o->quote))
		n = strnlen(s, n), shown_n = type == OUT_NULL ? shown_n : n;
	if (columnar(o->mode)) {
		if (t->ncells == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 256;
			struct out_cell *c = realloc(t->cells, cap * sizeof(*c));
			if (!c)
				return;
			t->cells = c;
			t->cap = cap;
		}
		struct out_cell *c = &t->cells[t->ncells++];
		c->s = cell_text(o, type, s, n);
		c->right = type == OUT_INTEGER || type == OUT_FLOAT;
		return;
	}
	if (i == 0 && t->nrows == 0)
		stream_header(t);
	const char *name = i < t->ncols ? t->cols[i] : "";
	switch (o->mode) {
	case OUT_LIST:
	case OUT_TABS:
	case OUT_ASCII:
		if (i)
			fputs(o->colsep, f);
		fwrite(shown, 1, shown_n, f);
		break;
	case OUT_CSV:
		if (i)
			fputs(o->colsep, f);
		if (type == OUT_NULL)
			fwrite(shown, 1, shown_n, f);
		else
			csv_field(f, s, n, o->colsep);
		break;
	case OUT_TCL:
		if (i)
			fputs(o->colsep, f);
		out_c_string(f, shown, shown_n);
		break;
	case OUT_QUOTE:
	case OUT_INSERT:
		if (o->mode == OUT_QUOTE && i)
			fputs(o->colsep, f);
		if (o->mode == OUT_INSERT && i == 0) {
			fprintf(f, "INSERT INTO %s", o->table);
			if (o->headers) {
				for (size_t k = 0; k < t->ncols; k++) {
					char *q = out_ident(t->cols[k]);
					fprintf(f, "%s%s", k ? "," : "(", q ? q : "");
					free(q);
				}
				fputc(')', f);
			}
			fputs(" VALUES(", f);
		} else if (o->mode == OUT_INSERT) {
			fputc(',', f);
		}
		if (type == OUT_NULL)
			fputs("NULL", f);
		else if (type == OUT_TEXT)
			out_sql_string(f, s, n, o->mode == OUT_INSERT);
		else if (type == OUT_FLOAT)
			out_sql_double(f, d, o->mode == OUT_INSERT);
		else if (type == OUT_BLOB)
			out_sql_blob(f, s, n);
		else
			fwrite(s, 1, n, f);
		break;
	case OUT_LINE: {
		size_t w = 5;
		for (size_t k = 0; k < t->ncols; k++)
			w = width(t->cols[k]) > w ? width(t->cols[k]) : w;
		if (i == 0 && t->nrows)
			fputs(o->rowsep, f);
		fprintf(f, "%*s = ", (int)w, name);
		fwrite(shown, 1, shown_n, f);
		fputs(o->rowsep, f);
		break;
	}
	case OUT_HTML:
		fputs(i ? "<TD>" : "<TR><TD>", f);
		html_string(f, shown, shown_n);
		fputs("</TD>\n", f);
		break;
	case OUT_JSON:
		fputs(i ? "," : (t->nrows ? ",\n{" : "[{"), f);
		json_string(f, name, strlen(name));
		fputc(':', f);
		if (type == OUT_NULL)
			fputs("null", f);
		else if (type == OUT_FLOAT)
			out_sql_double(f, d, 0);
		else if (type == OUT_INTEGER)
			fwrite(s, 1, n, f);
		else
			json_string(f, s, n);
		break;
	default:
		break;
	}
}

void out_row_end(struct out_table *t)
{
	const struct out_opts *o = t->o;
	switch (o->mode) {
	case OUT_LIST:
	case OUT_CSV:
	case OUT_TABS:
	case OUT_ASCII:
	case OUT_QUOTE:
	case OUT_TCL:
		fputs(o->rowsep, t->f);
		break;
	case OUT_INSERT:
		fputs(");\n", t->f);
		break;
	case OUT_HTML:
		fputs("</TR>\n", t->f);
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

/* ---- columnar modes --------------------------------------------------- */

/*
 * The lines a cell is shown as, joined by '\n', each at most mx columns
 * (0: no limit): a newline (or CR LF) in the value ends a line, a tab is
 * spaces up to the next multiple of 8, another control byte is ^X; a line
 * longer than mx is cut there, or with wordwrap where sqlite3 cuts it
 * (after the last blank of its second half, else at the last change
 * between a letter or digit and anything else).  A malloc'ed string;
 * *nlines gets the line count.
 */
static char *display_lines(const char *z, int mx, int wordwrap, size_t *nlines)
{
	size_t cap = strlen(z) * 2 + 16, o = 0;
	char *r = malloc(cap);
	if (!r)
		return NULL;
	*nlines = 1;
	const unsigned char *u = (const unsigned char *)z;
	size_t i = 0;
	for (;;) {
		int n = 0, plain = 1;
		size_t start = i, line_out = o;
		while (!mx || n < mx) {
			unsigned char c = u[i];
			if (!c || c == '\n' || (c == '\r' && u[i + 1] == '\n'))
				break;
			if (o + 16 > cap) {
				char *r2 = realloc(r, cap *= 2);
				if (!r2) {
					free(r);
					return NULL;
				}
				r = r2;
			}
			if (c == '\t') {
				plain = 0;
				do
					r[o++] = ' ';
				while (++n % 8 && (!mx || n < mx));
				i++;
			} else if (c < 0x20 || c == 0x7f) {
				if (mx && n + 2 > mx && n)
					break;
				plain = 0;
				r[o++] = '^';
				r[o++] = (char)(c ^ 0x40);
				n += 2;
				i++;
			} else {
				do
					r[o++] = z[i++];
				while ((u[i] & 0xc0) == 0x80);
				n++;
			}
		}
		unsigned char c = u[i];
		int wrapped = c && c != '\n' && !(c == '\r' && u[i + 1] == '\n');
		if (wrapped && wordwrap && plain) {
			const unsigned char *l = u + start;
			size_t len = i - start, k;
			for (k = len; k > len / 2 && l[k - 1] != ' '; k--)
				;
			if (k <= len / 2)
				for (k = len; k > len / 2; k--)
					if (!!isalnum(l[k - 1]) != !!isalnum(l[k]) && (l[k] & 0xc0) != 0x80)
						break;
			if (k > len / 2) {
				o = line_out + k;
				i = start + k;
				while (u[i] == ' ')
					i++;
			}
		}
		c = u[i];
		if (!c)
			break;
		if (c == '\n')
			i++;
		else if (c == '\r' && u[i + 1] == '\n')
			i += 2;
		if (!u[i])
			break;
		r[o++] = '\n';
		(*nlines)++;
	}
	r[o] = 0;
	return r;
}

/* Line k (0-based) of a '\n'-joined cell: start and length. */
static const char *line_of(const char *s, size_t k, size_t *len)
{
	while (s && k && (s = strchr(s, '\n')))
		s++, k--;
	if (!s || k) {
		*len = 0;
		return "";
	}
	const char *e = strchr(s, '\n');
	*len = e ? (size_t)(e - s) : strlen(s);
	return s;
}

static size_t nwidth(const char *s, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		w += ((unsigned char)s[i] & 0xc0) != 0x80;
	return w;
}

/* s (n bytes, nw columns) in a field of w columns: left, right or centred. */
static void pad(FILE *f, const char *s, size_t n, size_t w, int how)
{
	size_t nw = nwidth(s, n), sp = nw < w ? w - nw : 0;
	size_t before = how > 0 ? sp : how == 0 ? sp / 2 : 0;
	fprintf(f, "%*s", (int)before, "");
	fwrite(s, 1, n, f);
	fprintf(f, "%*s", (int)(sp - before), "");
}

static void dashes(FILE *f, size_t n, const char *dash)
{
	while (n--)
		fputs(dash, f);
}

/* A horizontal rule: which 0 top, 1 under the header / between rows, 2 bottom. */
static void rule(const struct out_table *t, const size_t *w, int which)
{
	int box = t->o->mode == OUT_BOX || t->o->mode == OUT_QBOX;
	static const char *const bl[3] = { "┌", "├", "└" }, *const bm[3] = { "┬", "┼", "┴" },
				 *const br[3] = { "┐", "┤", "┘" };
	const char *edge = t->o->mode == OUT_MARKDOWN ? "|" : "+";
	fputs(box ? bl[which] : edge, t->f);
	for (size_t c = 0; c < t->ncols; c++) {
		dashes(t->f, w[c] + 2, box ? "─" : "-");
		fputs(box ? (c + 1 < t->ncols ? bm[which] : br[which]) : edge, t->f);
	}
	fputc('\n', t->f);
}

static void print_columnar(struct out_table *t)
{
	const struct out_opts *o = t->o;
	size_t nc = t->ncols, nr = nc ? t->ncells / nc : 0;
	if (!nc || !nr)
		return;
	FILE *f = t->f;
	size_t *w = calloc(nc, sizeof(*w)), *nl = calloc(t->ncells, sizeof(*nl));
	char **hdr = calloc(nc, sizeof(*hdr)), **lines = calloc(t->ncells, sizeof(*lines));
	int *mx = calloc(nc, sizeof(*mx));
	if (!w || !nl || !hdr || !lines || !mx)
		goto out;
	for (size_t c = 0; c < nc; c++) {
		int uw = c < (size_t)o->nwidth ? o->width[c] : 0;
		mx[c] = uw ? abs(uw) : o->wrap;
		w[c] = (size_t)abs(uw);
		size_t one;
		hdr[c] = display_lines(t->cols[c], mx[c], o->wordwrap, &one);
		if (hdr[c] && strchr(hdr[c], '\n'))
			*strchr(hdr[c], '\n') = 0; /* a header shows its first line */
		size_t hw = width(hdr[c]);
		w[c] = hw > w[c] ? hw : w[c];
	}
	int multi = 0;
	for (size_t k = 0; k < nr * nc; k++) {
		size_t c = k % nc;
		lines[k] = display_lines(t->cells[k].s ? t->cells[k].s : "", mx[c], o->wordwrap, &nl[k]);
		multi |= nl[k] > 1;
		for (size_t l = 0; l < nl[k]; l++) {
			size_t len;
			const char *s = line_of(lines[k], l, &len);
			size_t lw = nwidth(s, len);
			w[c] = lw > w[c] ? lw : w[c];
		}
	}
	int box = o->mode == OUT_BOX || o->mode == OUT_QBOX;
	const char *bar = box ? "│" : "|";
	int col_mode = o->mode == OUT_COLUMN;
	/* header */
	if (col_mode) {
		if (o->headers) {
			for (size_t c = 0; c < nc; c++) {
				int uw = c < (size_t)o->nwidth ? o->width[c] : 0;
				pad(f, hdr[c], strlen(hdr[c]), w[c], uw < 0 ? 1 : -1);
				fputs(c + 1 < nc ? "  " : "\n", f);
			}
			for (size_t c = 0; c < nc; c++) {
				dashes(f, w[c], "-");
				fputs(c + 1 < nc ? "  " : "\n", f);
			}
		}
	} else {
		if (o->mode != OUT_MARKDOWN)
			rule(t, w, 0);
		for (size_t c = 0; c < nc; c++) {
			fprintf(f, "%s ", bar);
			pad(f, hdr[c], strlen(hdr[c]), w[c], 0);
			fputc(' ', f);
		}
		fprintf(f, "%s\n", bar);
		rule(t, w, 1);
	}
	/* rows */
	for (size_t r = 0; r < nr; r++) {
		size_t h = 1;
		for (size_t c = 0; c < nc; c++)
			h = nl[r * nc + c] > h ? nl[r * nc + c] : h;
		for (size_t l = 0; l < h; l++) {
			for (size_t c = 0; c < nc; c++) {
				size_t k = r * nc + c, len;
				const char *s = line_of(lines[k], l, &len);
				int uw = c < (size_t)o->nwidth ? o->width[c] : 0;
				int how = uw < 0 || t->cells[k].right ? 1 : -1;
				if (!col_mode)
					fprintf(f, "%s ", bar);
				pad(f, s, len, w[c], how);
				if (col_mode)
					fputs(c + 1 < nc ? "  " : "\n", f);
				else
					fputc(' ', f);
			}
			if (!col_mode)
				fprintf(f, "%s\n", bar);
		}
		if (multi && r + 1 < nr) {
			if (col_mode)
				fputc('\n', f);
			else if (o->mode != OUT_MARKDOWN)
				rule(t, w, 1);
		}
	}
	if (!col_mode && o->mode != OUT_MARKDOWN)
		rule(t, w, 2);
out:
	for (size_t c = 0; hdr && c < nc; c++)
		free(hdr[c]);
	for (size_t k = 0; lines && k < nr * nc; k++)
		free(lines[k]);
	free(hdr);
	free(lines);
	free(w);
	free(nl);
	free(mx);
}

void out_end(struct out_table *t)
{
	if (columnar(t->o->mode))
		print_columnar(t);
	else if (t->o->mode == OUT_JSON && t->nrows)
		fputs("]\n", t->f);
	for (size_t i = 0; i < t->ncols; i++)
		free(t->cols[i]);
	free(t->cols);
	for (size_t k = 0; k < t->ncells; k++)
		free(t->cells[k].s);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
