/*
 * gen.c - the SQL generator of the differential test (gen.h).
 *
 * The schema: four data tables t0..t3 (random columns of every type,
 * NOT NULL with defaults, UNIQUE, CHECK, generated columns, STRICT and
 * WITHOUT ROWID variants; column 0 is always `id INTEGER PRIMARY KEY`), a
 * trigger log `lg`, and `nd`, the only table that receives values of
 * random(), randomblob() and 'now' (they differ between Metronome and
 * plain SQLite by design, so nd is compared by count, type and length
 * only).  Then views v0..v5, indexes ix0..ix7, triggers tr0..tr5 and a
 * scratch table s0 come and go.  The model below only follows DDL that
 * cannot fail, so the text never depends on results.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

enum { TY_INT, TY_REAL, TY_TEXT, TY_BLOB, TY_NUM, TY_ANY, TY_N };

#define NTAB 4
#define MAXCOL 10
#define NVIEW 6
#define NIDX 8
#define NTRIG 6
#define MAXID 150 /* ids of ordinary rows: 1..MAXID */

struct gcol {
	char name[16];
	int ty;
	bool nn;   /* NOT NULL (with a DEFAULT) */
	bool uniq; /* UNIQUE */
	bool chk;  /* CHECK: ints > -1000, text shorter than 20 */
	bool gen;  /* generated: never written */
};

struct gtab {
	char name[16];
	int ncol; /* col[0] is id */
	struct gcol col[MAXCOL];
	bool strict, wr;
	int next_col; /* number of the next added column */
};

struct gview {
	bool live;
	int ncol; /* columns a, b, c, ... */
};

struct gidx {
	bool live;
	int tab;
};

struct gtrig {
	bool live;
	int tab;   /* table, or -1 - view for INSTEAD OF on a view */
	bool raise; /* BEFORE INSERT ... WHEN new.col = 'boom' RAISE(ABORT) */
	int col;
};

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

struct gen {
	uint64_t rng;
	uint64_t n; /* records made */
	struct sbuf sb;
	struct gen_rec rec;
	struct gtab t[NTAB];
	struct gview v[NVIEW];
	struct gidx ix[NIDX];
	struct gtrig tr[NTRIG];
	bool scratch;
	bool in_txn; /* writing the statements of a BEGIN ... group */
	unsigned nparam_text; /* parameter values' text storage in use */
	char ptext[GEN_MAX_PARAMS][32];
};

/* ---- helpers ----------------------------------------------------------- */

static uint64_t rnd(struct gen *g)
{
	/* splitmix64: one state word, good enough for choices */
	uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* 0..n-1 */
static int R(struct gen *g, int n)
{
	return n <= 1 ? 0 : (int)(rnd(g) % (uint64_t)n);
}

/* true with probability pct % */
static bool P(struct gen *g, int pct)
{
	return R(g, 100) < pct;
}

static void add(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct gen *g, const char *fmt, ...)
{
	struct sbuf *b = &g->sb;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (k < 0)
			return;
		if ((size_t)k < b->cap - b->n) {
			b->n += (size_t)k;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)k + 64;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static const char *const words[] = { "a", "b", "c", "ab", "abc", "Abc", "ABC", "", " x", "x y",
				     "10", "2.5", "a''q", "%_", "\xc3\xa9t\xc3\xa9", "zz", "b%", "0" };
static const char *const blobs[] = { "x''", "x'00'", "x'0102'", "x'ff00ff'", "x'616263'", "x'41'" };
static const char *const tyname[TY_N] = { "INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC", "" };
static const char *const strictname[TY_N] = { "INTEGER", "REAL", "TEXT", "BLOB", "ANY", "ANY" };

/* A literal of type ty (TY_NUM/TY_ANY: any type); NULL with nulls %. */
static void lit(struct gen *g, int ty, int nulls)
{
	if (P(g, nulls)) {
		add(g, "NULL");
		return;
	}
	if (ty == TY_NUM || ty == TY_ANY)
		ty = R(g, 4);
	switch (ty) {
	case TY_INT:
		/* large: two of them overflow sum() ("integer overflow" in a
		 * later group of a read: an error after rows, as in SQLite) */
		if (P(g, 3))
			add(g, "%s", P(g, 50) ? "4611686018427387903" : "-4611686018427387903");
		else
			add(g, "%d", R(g, 45) - 4);
		break;
	case TY_REAL:
		if (P(g, 5))
			add(g, "%s", P(g, 50) ? "0.1" : (P(g, 50) ? "1e300" : "-0.0"));
		else
			add(g, "%d.%s", R(g, 40) - 10, (const char *[]){ "0", "25", "5", "75" }[R(g, 4)]);
		break;
	case TY_TEXT: add(g, "'%s'", words[R(g, (int)(sizeof words / sizeof *words))]); break;
	default: add(g, "%s", blobs[R(g, (int)(sizeof blobs / sizeof *blobs))]); break;
	}
}

/* A literal fit for column c of table t (its type in a STRICT table, no
 * NULL for NOT NULL, inside its CHECK). */
static void lit_col(struct gen *g, const struct gtab *t, const struct gcol *c)
{
	int ty = c->ty;
	if (c->chk && P(g, 90)) {
		/* inside the CHECK, mostly */
		if (ty == TY_INT)
			add(g, "%d", R(g, 45) - 4);
		else
			add(g, "'%s'", words[R(g, (int)(sizeof words / sizeof *words))]);
		return;
	}
	if (!t->strict && P(g, 10))
		ty = TY_ANY;
	lit(g, ty, c->nn ? 0 : 10);
}

static const struct gcol *pick_col(struct gen *g, const struct gtab *t, bool writable)
{
	for (int tries = 0; tries < 20; tries++) {
		const struct gcol *c = &t->col[1 + R(g, t->ncol - 1)];
		if (!writable || !c->gen)
			return c;
	}
	return &t->col[1]; /* column 1 is never generated */
}

/* ---- expressions --------------------------------------------------------- */

static void expr(struct gen *g, const struct gtab *t, const char *al, int depth);

static void colref(struct gen *g, const struct gtab *t, const char *al)
{
	const struct gcol *c = P(g, 15) ? &t->col[0] : pick_col(g, t, false);
	add(g, "%s%s%s", al ? al : "", al ? "." : "", c->name);
}

static void pred(struct gen *g, const struct gtab *t, const char *al, int depth)
{
	int k = R(g, depth > 1 ? 9 : 12);
	const char *a = al ? al : "", *dot = al ? "." : "";
	switch (k) {
	case 0:
	case 1: {
		static const char *const ops[] = { "=", "<>", "<", "<=", ">", ">=", "IS", "IS NOT" };
		expr(g, t, al, depth + 1);
		add(g, " %s ", ops[R(g, 8)]);
		if (P(g, 60))
			lit(g, TY_ANY, 5);
		else
			expr(g, t, al, depth + 1);
		break;
	}
	case 2:
		colref(g, t, al);
		add(g, P(g, 50) ? " IS NULL" : " IS NOT NULL");
		break;
	case 3:
		colref(g, t, al);
		add(g, " %sBETWEEN ", P(g, 20) ? "NOT " : "");
		lit(g, TY_INT, 0);
		add(g, " AND ");
		lit(g, TY_ANY, 0);
		break;
	case 4:
		colref(g, t, al);
		add(g, " IN (");
		lit(g, TY_ANY, 5);
		add(g, ", ");
		lit(g, TY_ANY, 5);
		add(g, ", ");
		lit(g, TY_INT, 0);
		add(g, ")");
		break;
	case 5:
		colref(g, t, al);
		add(g, P(g, 50) ? " LIKE '%s'" : " GLOB '%s'",
		    (const char *[]){ "a%", "%b%", "_", "A%", "*b*", "[a-c]*", "%" }[R(g, 7)]);
		break;
	case 6: add(g, "%s%sid %% %d = %d", a, dot, 2 + R(g, 5), R(g, 2)); break;
	case 7: add(g, "%s%sid %s %d", a, dot, P(g, 50) ? "<" : ">", R(g, MAXID)); break;
	case 8:
		add(g, "coalesce(");
		colref(g, t, al);
		add(g, ", 0) %s ", P(g, 50) ? "<" : ">=");
		lit(g, TY_INT, 0);
		break;
	case 9:
		add(g, "NOT (");
		pred(g, t, al, depth + 1);
		add(g, ")");
		break;
	default:
		add(g, "(");
		pred(g, t, al, depth + 1);
		add(g, P(g, 50) ? " AND " : " OR ");
		pred(g, t, al, depth + 1);
		add(g, ")");
		break;
	}
}

/*
 * Append form with its placeholders filled: $E an expression, $P a
 * predicate, $C a column, $L a literal of any type, $I an integer literal,
 * $O a binary operator, $F a one-argument function, $G a two-argument one,
 * $N 0..2, $T a CAST type, $S a collation.
 */
static void emit(struct gen *g, const struct gtab *t, const char *al, int depth, const char *form)
{
	static const char *const ops[] = { "+", "-", "*", "/", "%", "||", "&", "|", "<<" };
	static const char *const f1[] = { "abs", "length", "upper", "lower", "typeof", "hex", "quote",
					  "trim", "ltrim", "rtrim", "unicode", "likely" };
	static const char *const f2[] = { "coalesce", "ifnull", "nullif", "min", "max", "instr" };
	static const char *const casts[] = { "INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC" };
	static const char *const colls[] = { "NOCASE", "BINARY", "RTRIM" };
#define PICK(a) a[R(g, (int)(sizeof a / sizeof *a))]
	for (const char *p = form; *p; p++) {
		if (*p != '$' || !p[1]) {
			add(g, "%c", *p);
			continue;
		}
		switch (*++p) {
		case 'E': expr(g, t, al, depth + 1); break;
		case 'P': pred(g, t, al, depth + 1); break;
		case 'C': colref(g, t, al); break;
		case 'L': lit(g, TY_ANY, 10); break;
		case 'I': lit(g, TY_INT, 10); break;
		case 'O': add(g, "%s", PICK(ops)); break;
		case 'F': add(g, "%s", PICK(f1)); break;
		case 'G': add(g, "%s", PICK(f2)); break;
		case 'N': add(g, "%d", R(g, 3)); break;
		case 'T': add(g, "%s", PICK(casts)); break;
		case 'S': add(g, "%s", PICK(colls)); break;
		default: add(g, "$%c", *p); break;
		}
	}
#undef PICK
}

static void expr(struct gen *g, const struct gtab *t, const char *al, int depth)
{
	static const char *const forms[] = {
		"$C", "$C", "$C", "$L", "($E $O $E)", "($E $O $E)", "$F($E)", "$G($E, $L)", "round($E, $N)",
		"substr($E, $N, $N)", "replace($E, 'a', 'Z')", "printf('%d|%s|%.2f', $E, $E, $E)",
		"iif($P, $E, $E)", "CASE WHEN $P THEN $E WHEN $P THEN $L ELSE $E END", "CAST($E AS $T)",
		/* never a blob in JSON: whether a row that is not output is
		 * evaluated (and fails with "JSON cannot hold BLOB values")
		 * depends on the query plan (seed 423035741: ORDER BY ... LIMIT
		 * ... OFFSET).  Errors after rows are exercised by sum() in
		 * groups instead (seed 1 record 426, doc/mtrslt.md). */
		"json_object('k', quote($E), 'n', quote($C))", "json_object('k', quote($E), 'n', quote($C)) ->> '$.k'",
		"json_array(typeof($C), $I)", "($P)", "-($E)", "($C COLLATE $S)",
	};
	if (depth > 2) {
		emit(g, t, al, depth, forms[R(g, 4)]); /* a column or a literal */
		return;
	}
	int k = R(g, 30);
	if (k >= (int)(sizeof forms / sizeof *forms)) {
		if (k == 29)
			add(g, "char(%d, %d)", 65 + R(g, 26), 97 + R(g, 26));
		else
			colref(g, t, al);
		return;
	}
	emit(g, t, al, depth, forms[k]);
}

/* ---- schema ----------------------------------------------------------- */

static void create_table(struct gen *g, int i)
{
	struct gtab *t = &g->t[i];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "t%d", i);
	t->strict = P(g, 30);
	t->wr = P(g, 25);
	t->ncol = 2 + R(g, 5);
	snprintf(t->col[0].name, sizeof t->col[0].name, "id");
	t->col[0].ty = TY_INT;
	add(g, "CREATE TABLE %s(id INTEGER PRIMARY KEY", t->name);
	for (int k = 1; k < t->ncol; k++) {
		struct gcol *c = &t->col[k];
		snprintf(c->name, sizeof c->name, "c%d", k);
		c->ty = R(g, TY_N);
		if (k < 3 || R(g, 4) != 0) {
			c->nn = k == 1 || P(g, 15);
			c->uniq = !c->nn && P(g, 15);
			c->chk = P(g, 20) && (c->ty == TY_INT || c->ty == TY_TEXT);
		} else {
			c->gen = true;
			if (t->strict)
				c->ty = TY_ANY; /* quote() gives text, length() an integer */
		}
		const char *ty = t->strict ? strictname[c->ty] : tyname[c->ty];
		add(g, ", %s%s%s", c->name, *ty ? " " : "", ty);
		if (c->gen) {
			/* an expression of column 1, never failing */
			add(g, " GENERATED ALWAYS AS (%s(c1)) %s", P(g, 50) ? "length" : "quote",
			    P(g, 50) ? "VIRTUAL" : "STORED");
			continue;
		}
		if (c->nn) {
			add(g, " NOT NULL DEFAULT ");
			if (c->chk)
				add(g, c->ty == TY_INT ? "%d" : "'d%d'", R(g, 10));
			else
				lit(g, c->ty == TY_NUM || c->ty == TY_ANY ? TY_INT : c->ty, 0);
		}
		if (c->uniq)
			add(g, " UNIQUE");
		if (c->chk)
			add(g, c->ty == TY_INT ? " CHECK (%s > -1000)" : " CHECK (length(%s) < 20)", c->name);
	}
	add(g, ")%s%s", t->wr ? " WITHOUT ROWID" : "", t->strict ? (t->wr ? ", STRICT" : " STRICT") : "");
	t->next_col = t->ncol;
}

/* ---- records ------------------------------------------------------------ */

static void rec_begin(struct gen *g, enum gen_kind kind, const char *cat)
{
	g->sb.n = 0;
	if (g->sb.p)
		g->sb.p[0] = 0;
	memset(&g->rec, 0, sizeof g->rec);
	g->rec.kind = kind;
	g->rec.cat = cat;
	g->rec.sort = SLT_ROWSORT;
	g->nparam_text = 0;
}

static struct gtab *T(struct gen *g)
{
	return &g->t[R(g, NTAB)];
}

/* A parameter value (stored in the record) of type ty. */
static void param(struct gen *g, int ty)
{
	struct slt_param *v = &g->rec.params[g->rec.nparams++];
	if (ty == TY_NUM || ty == TY_ANY)
		ty = R(g, 4);
	if (P(g, 8)) {
		v->type = 'N';
		return;
	}
	switch (ty) {
	case TY_INT:
		v->type = 'I';
		v->i = P(g, 5) ? INT64_MIN : R(g, MAXID + 10) - 5;
		break;
	case TY_REAL:
		v->type = 'R';
		v->r = P(g, 10) ? 1.0 / 3.0 : (R(g, 200) - 50) * 0.125;
		break;
	case TY_TEXT: {
		char *s = g->ptext[g->nparam_text++];
		const char *w = words[R(g, (int)(sizeof words / sizeof *words))];
		/* the literal form has '' for a quote; the value has one */
		size_t k = 0;
		for (const char *p = w; *p && k < 30; p++)
			if (!(p[0] == '\'' && p[1] == '\''))
				s[k++] = *p;
		s[k] = 0;
		v->type = 'T';
		v->p = s;
		v->n = (int)k;
		break;
	}
	default: {
		static const char bin[] = "\x00\x01\xff" "abc\x7f";
		v->type = 'B';
		v->p = bin + R(g, 3);
		v->n = R(g, 5);
		break;
	}
	}
}

/* Columns a read may list: id and 1..3 expressions. */
static void select_list(struct gen *g, const struct gtab *t, const char *al)
{
	add(g, "%s%sid", al ? al : "", al ? "." : "");
	for (int n = 1 + R(g, 3); n > 0; n--) {
		add(g, ", ");
		expr(g, t, al, 0);
	}
}

static void where(struct gen *g, const struct gtab *t, const char *al, int pct)
{
	if (P(g, pct)) {
		add(g, " WHERE ");
		pred(g, t, al, 0);
	}
}

static void q_select(struct gen *g)
{
	struct gtab *t = T(g);
	rec_begin(g, GEN_QUERY, "read.select");
	add(g, "SELECT %s", P(g, 10) ? "DISTINCT " : "");
	select_list(g, t, NULL);
	add(g, " FROM %s%s", t->name, P(g, 10) ? " NOT INDEXED" : "");
	where(g, t, NULL, 75);
}

/* Groups are also split by type: 26 and 26.0 (a column without affinity)
 * compare equal, and which of them a group reports is up to the sorter
 * (its memory and spill settings), not SQL: plain SQLite and a replica
 * disagreed on it (seed 442418382).  typeof() makes each group's value
 * one value. */
static void q_agg(struct gen *g)
{
	struct gtab *t = T(g);
	const struct gcol *k = pick_col(g, t, false), *c = pick_col(g, t, false);
	rec_begin(g, GEN_QUERY, "read.aggregate");
	if (P(g, 20)) {
		add(g, "SELECT count(*), count(%s), sum(id), min(%s), max(%s), total(%s) FROM %s", c->name, c->name,
		    c->name, c->name, t->name);
		where(g, t, NULL, 60);
		return;
	}
	add(g, "SELECT ");
	expr(g, t, NULL, 1);
	/* sum() may overflow in a later group: an error after rows */
	add(g, " AS k, count(*), sum(%s), min(%s), max(%s), avg(%s), total(%s), count(DISTINCT %s)",
	    c->name, c->name, c->name, c->name, c->name, k->name);
	if (P(g, 30))
		add(g, ", count(*) FILTER (WHERE id %% 2 = 0)");
	add(g, " FROM %s", t->name);
	where(g, t, NULL, 40);
	add(g, " GROUP BY 1, typeof(k)");
	if (P(g, 30))
		add(g, " HAVING count(*) > %d", R(g, 3));
}

static void q_join(struct gen *g)
{
	struct gtab *t = T(g), *u = T(g);
	const struct gcol *a = pick_col(g, t, false), *b = pick_col(g, u, false);
	static const char *const kinds[] = { "JOIN", "LEFT JOIN", "INNER JOIN", "LEFT OUTER JOIN", "CROSS JOIN",
					     "RIGHT JOIN", "FULL JOIN" };
	const char *kind = kinds[R(g, 7)];
	rec_begin(g, GEN_QUERY, "read.join");
	add(g, "SELECT a.id, b.id, ");
	expr(g, t, "a", 1);
	add(g, ", ");
	expr(g, u, "b", 1);
	if (P(g, 20)) {
		add(g, " FROM %s a JOIN %s b USING (id)", t->name, u->name);
	} else {
		add(g, " FROM %s a %s %s b", t->name, kind, u->name);
		if (strcmp(kind, "CROSS JOIN") != 0)
			add(g, " ON a.%s = b.%s", a->name, b->name);
	}
	if (P(g, 50)) {
		add(g, " WHERE ");
		pred(g, t, "a", 1);
	}
	add(g, " ORDER BY a.id, b.id LIMIT %d", 10 + R(g, 40));
}

static void q_sub(struct gen *g)
{
	struct gtab *t = T(g), *u = T(g);
	const struct gcol *a = pick_col(g, t, false), *b = pick_col(g, u, false);
	rec_begin(g, GEN_QUERY, "read.subquery");
	switch (R(g, 4)) {
	case 0:
		add(g, "SELECT id, %s FROM %s a WHERE a.%s %sIN (SELECT %s FROM %s", a->name, t->name, a->name,
		    P(g, 30) ? "NOT " : "", b->name, u->name);
		where(g, u, NULL, 50);
		add(g, ")");
		break;
	case 1:
		add(g, "SELECT id FROM %s a WHERE %sEXISTS (SELECT 1 FROM %s b WHERE b.%s = a.%s)", t->name,
		    P(g, 30) ? "NOT " : "", u->name, b->name, a->name);
		break;
	case 2:
		add(g, "SELECT id, (SELECT count(*) FROM %s b WHERE b.id < a.id), (SELECT max(%s) FROM %s b WHERE b.%s = a.%s) FROM %s a",
		    u->name, b->name, u->name, b->name, a->name, t->name);
		where(g, t, "a", 50);
		break;
	default:
		add(g, "SELECT * FROM (SELECT %s AS k, count(*) AS n FROM %s GROUP BY %s, typeof(%s)) WHERE n >= %d",
		    a->name, t->name, a->name, a->name, 1 + R(g, 2));
		break;
	}
}

static void q_cte(struct gen *g)
{
	struct gtab *t = T(g), *u = T(g);
	const struct gcol *a = pick_col(g, t, false);
	rec_begin(g, GEN_QUERY, "read.cte");
	switch (R(g, 4)) {
	case 0:
		add(g, "WITH x(k, n) AS (SELECT %s, count(*) FROM %s GROUP BY %s, typeof(%s)) SELECT k, n FROM x WHERE n > %d",
		    a->name, t->name, a->name, a->name, R(g, 2));
		break;
	case 1:
		add(g, "WITH RECURSIVE r(n) AS (VALUES(1) UNION ALL SELECT n + 1 FROM r WHERE n < %d) "
		       "SELECT n, (SELECT count(*) FROM %s WHERE id <= n) FROM r",
		    2 + R(g, 30), t->name);
		break;
	case 2:
		add(g, "WITH a AS %s(SELECT id, %s FROM %s", P(g, 50) ? "MATERIALIZED " : "NOT MATERIALIZED ",
		    a->name, t->name);
		where(g, t, NULL, 60);
		add(g, "), b AS (SELECT id FROM %s) SELECT a.id, a.%s FROM a JOIN b USING (id)", u->name, a->name);
		break;
	default:
		add(g, "WITH RECURSIVE c(i, s) AS (SELECT 1, '' UNION ALL SELECT i + 1, s || char(64 + i) FROM c WHERE i < %d) "
		       "SELECT i, s, (SELECT count(*) FROM %s WHERE id %% %d = i %% %d) FROM c",
		    2 + R(g, 10), t->name, 2 + R(g, 3), 2 + R(g, 3));
		break;
	}
}

/* Append text with $A and $B replaced by a and b. */
static void templ(struct gen *g, const char *text, const char *a, const char *b)
{
	for (const char *p = text; *p; p++) {
		if (p[0] == '$' && (p[1] == 'A' || p[1] == 'B')) {
			add(g, "%s", p[1] == 'A' ? a : b);
			p++;
		} else {
			add(g, "%c", *p);
		}
	}
}

static void q_window(struct gen *g)
{
	struct gtab *t = T(g);
	const struct gcol *a = pick_col(g, t, false), *b = pick_col(g, t, false);
	static const char *const fs[] = {
		"row_number() OVER w",
		"rank() OVER (ORDER BY $A)",
		"dense_rank() OVER (ORDER BY $A)",
		"sum(coalesce($B, 0) % 1000000) OVER (PARTITION BY $A ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)",
		"lag($A, 1, 'none') OVER w",
		"lead(id, 2) OVER w",
		"ntile(3) OVER w",
		"first_value($A) OVER (PARTITION BY $B ORDER BY id)",
		"last_value($B) OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND 2 FOLLOWING)",
		"count(*) OVER (PARTITION BY $A)",
		"percent_rank() OVER (ORDER BY $A)",
		"cume_dist() OVER (ORDER BY $A)",
		"sum(id) OVER (ORDER BY id RANGE BETWEEN 5 PRECEDING AND 5 FOLLOWING)",
		"count(*) OVER (ORDER BY $A GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE TIES)",
		"count(*) FILTER (WHERE id % 2 = 0) OVER w",
		"group_concat(id, '.') OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE CURRENT ROW)",
		"nth_value($B, 2) OVER w",
		"max($B) OVER (PARTITION BY id % 3 ORDER BY id)",
	};
	rec_begin(g, GEN_QUERY, "read.window");
	add(g, "SELECT id, %s", a->name);
	for (int n = 1 + R(g, 3); n > 0; n--) {
		add(g, ", ");
		templ(g, fs[R(g, (int)(sizeof fs / sizeof *fs))], a->name, b->name);
	}
	add(g, " FROM %s", t->name);
	where(g, t, NULL, 30);
	add(g, " WINDOW w AS (ORDER BY id)");
}

static void q_compound(struct gen *g)
{
	struct gtab *t = T(g), *u = T(g);
	const struct gcol *a = pick_col(g, t, false), *b = pick_col(g, u, false);
	rec_begin(g, GEN_QUERY, "read.compound");
	add(g, "SELECT %s FROM %s", a->name, t->name);
	where(g, t, NULL, 40);
	add(g, " %s SELECT %s FROM %s", (const char *[]){ "UNION", "UNION ALL", "INTERSECT", "EXCEPT" }[R(g, 4)],
	    b->name, u->name);
	where(g, u, NULL, 40);
}

static void q_order(struct gen *g)
{
	struct gtab *t = T(g);
	const struct gcol *a = pick_col(g, t, false);
	rec_begin(g, GEN_QUERY, "read.orderby");
	g->rec.sort = SLT_NOSORT; /* (a, id) is a total order */
	add(g, "SELECT ");
	select_list(g, t, NULL);
	add(g, " FROM %s", t->name);
	where(g, t, NULL, 40);
	add(g, " ORDER BY %s%s%s, id%s LIMIT %d OFFSET %d", a->name, P(g, 30) ? " COLLATE NOCASE" : "",
	    (const char *[]){ "", " DESC", " NULLS LAST", " DESC NULLS FIRST" }[R(g, 4)], P(g, 50) ? " DESC" : "",
	    1 + R(g, 20), R(g, 5));
}

static void q_view(struct gen *g)
{
	int k = R(g, NVIEW);
	if (!g->v[k].live) {
		q_select(g);
		return;
	}
	rec_begin(g, GEN_QUERY, "read.view");
	switch (R(g, 3)) {
	case 0: add(g, "SELECT * FROM v%d", k); break;
	case 1: add(g, "SELECT a, count(*) FROM v%d GROUP BY a, typeof(a)", k); break;
	default: add(g, "SELECT x.*, t.id FROM v%d x LEFT JOIN %s t ON t.id = x.a", k, T(g)->name); break;
	}
}

static void q_pragma(struct gen *g)
{
	struct gtab *t = T(g);
	rec_begin(g, GEN_QUERY, "read.pragma");
	switch (R(g, 7)) {
	case 0: add(g, "PRAGMA table_info(%s)", t->name); break;
	case 1: add(g, "PRAGMA table_xinfo(%s)", t->name); break;
	case 2: add(g, "SELECT name, \"unique\", partial FROM pragma_index_list('%s')", t->name); break;
	case 3: add(g, "PRAGMA integrity_check"); break;
	case 4: add(g, "PRAGMA user_version"); break;
	case 5: add(g, "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('%s')", t->name); break;
	default: add(g, "PRAGMA foreign_key_list(%s)", t->name); break;
	}
}

static void q_master(struct gen *g)
{
	rec_begin(g, GEN_QUERY, "read.schema");
	add(g, "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT GLOB 'mtr_*' AND name NOT GLOB 'sqlite_*'");
}

static void q_dump(struct gen *g, int which)
{
	rec_begin(g, GEN_QUERY, "read.dump");
	if (which < NTAB)
		add(g, "SELECT * FROM t%d", which);
	else if (which == NTAB)
		add(g, "SELECT * FROM lg");
	else if (g->scratch)
		add(g, "SELECT * FROM s0");
	else
		add(g, "SELECT count(*), sum(n) FROM lg");
}

static void q_nondet(struct gen *g)
{
	struct gtab *t = T(g);
	rec_begin(g, GEN_QUERY, "read.nondet");
	switch (R(g, 4)) {
	case 0:
		add(g, "SELECT typeof(random()), length(randomblob(%d)), typeof(randomblob(0)), length(datetime('now')), "
		       "date('now') >= '2024-01-01', typeof(julianday('now')), typeof(unixepoch()), length(CURRENT_TIMESTAMP), "
		       "length(strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')), length(time()), CURRENT_DATE > '2000'",
		    1 + R(g, 20));
		break;
	case 1:
		add(g, "SELECT count(*), min(random() IS NOT NULL), count(DISTINCT length(randomblob(4))) FROM (SELECT id FROM %s ORDER BY random())",
		    t->name);
		break;
	case 2:
		add(g, "SELECT count(*), count(r), min(typeof(r)), max(typeof(r)), sum(length(b)), min(length(d)), "
		       "max(length(d)), count(DISTINCT typeof(b)) FROM nd");
		break;
	default: add(g, "SELECT id, typeof(r), length(b), d IS NOT NULL, d > '2000' FROM nd"); break;
	}
}

static void q_param(struct gen *g)
{
	struct gtab *t = T(g);
	const struct gcol *a = pick_col(g, t, false);
	rec_begin(g, GEN_QUERY, "read.param");
	switch (R(g, 3)) {
	case 0:
		add(g, "SELECT id, %s FROM %s WHERE %s = ?1 OR id = ?2", a->name, t->name, a->name);
		param(g, a->ty);
		param(g, TY_INT);
		break;
	case 1:
		add(g, "SELECT :v, typeof(:v), @w || 'x', $n + 1, :v IS @w");
		param(g, TY_ANY);
		param(g, TY_ANY);
		param(g, TY_ANY);
		break;
	default:
		add(g, "SELECT count(*) FROM %s WHERE id > ?1 AND id <= ?1 + ?2", t->name);
		param(g, TY_INT);
		param(g, TY_INT);
		break;
	}
}

static void q_json(struct gen *g)
{
	struct gtab *t = T(g);
	const struct gcol *a = pick_col(g, t, false);
	rec_begin(g, GEN_QUERY, "read.json");
	switch (R(g, 3)) {
	case 0:
		add(g, "SELECT json_group_array(%s), json_group_object(CAST(id AS TEXT), %s) FROM (SELECT id, %s FROM %s ORDER BY id LIMIT 20)",
		    a->name, a->name, a->name, t->name);
		break;
	case 1: add(g, "SELECT key, value, type, atom FROM json_each(json_array(1, 'a', 2.5, NULL, json('{\"x\":[1,2]}')))"); break;
	default:
		add(g, "SELECT fullkey, type, atom FROM json_tree((SELECT json_group_array(json_object('id', id, 'v', %s)) FROM (SELECT id, %s FROM %s ORDER BY id LIMIT 5)))",
		    a->name, a->name, t->name);
		break;
	}
}

/* ---- writes (each appends one statement) --------------------------------- */

static void values_row(struct gen *g, const struct gtab *t, const int *cols, int n, int id)
{
	add(g, "(");
	for (int i = 0; i < n; i++) {
		if (i)
			add(g, ", ");
		if (cols[i] == 0)
			add(g, "%d", id);
		else
			lit_col(g, t, &t->col[cols[i]]);
	}
	add(g, ")");
}

/* A column list: id (unless omitted) and some writable columns. */
static int pick_cols(struct gen *g, const struct gtab *t, int *cols, bool with_id)
{
	int n = 0;
	if (with_id)
		cols[n++] = 0;
	for (int k = 1; k < t->ncol; k++)
		if (!t->col[k].gen && P(g, 60))
			cols[n++] = k;
	if (n == 0)
		cols[n++] = 1;
	return n;
}

static void collist(struct gen *g, const struct gtab *t, const int *cols, int n)
{
	add(g, "(");
	for (int i = 0; i < n; i++)
		add(g, "%s%s", i ? ", " : "", t->col[cols[i]].name);
	add(g, ")");
}

static void w_insert(struct gen *g, struct gtab *t)
{
	int cols[MAXCOL];
	static const char *const orx[] = { "", "", "", "OR IGNORE ", "OR REPLACE ", "OR ABORT ", "OR ROLLBACK ",
					   "OR FAIL " };
	if (!t->wr && P(g, 5)) {
		add(g, "INSERT INTO %s DEFAULT VALUES", t->name);
		return;
	}
	int n = pick_cols(g, t, cols, t->wr || P(g, 85));
	if (P(g, 10))
		add(g, "REPLACE INTO %s", t->name);
	else
		/* not OR FAIL alone: a Metronome item that fails is rolled back
		 * whole, so the rows an INSERT OR FAIL made before its failing
		 * row are lost, where SQLite's autocommit keeps them (found by
		 * this test, seed 1 record 206: doc/mtrslt.md "Known
		 * differences").  Inside a group both sides roll back. */
		add(g, "INSERT %sINTO %s", orx[R(g, g->in_txn ? 8 : 7)], t->name);
	collist(g, t, cols, n);
	add(g, " VALUES ");
	for (int r = 1 + R(g, 4); r > 0; r--) {
		values_row(g, t, cols, n, 1 + R(g, MAXID));
		if (r > 1)
			add(g, ", ");
	}
}

static void w_insert_select(struct gen *g, struct gtab *t)
{
	struct gtab *u = T(g);
	int cols[MAXCOL];
	int n = pick_cols(g, t, cols, true);
	bool upsert = P(g, 30);
	add(g, "INSERT %sINTO %s", upsert ? "" : "OR IGNORE ", t->name);
	collist(g, t, cols, n);
	add(g, " SELECT (id * %d + %d) %% %d + 1", 1 + R(g, 7), R(g, 50), MAXID);
	for (int i = 1; i < n; i++) {
		add(g, ", ");
		if (P(g, 50))
			lit_col(g, t, &t->col[cols[i]]);
		else
			expr(g, u, NULL, 2);
	}
	add(g, " FROM %s WHERE ", u->name);
	pred(g, u, NULL, 1);
	if (upsert)
		add(g, " ON CONFLICT DO NOTHING");
}

static void w_update(struct gen *g, struct gtab *t)
{
	const struct gcol *a = pick_col(g, t, true), *b = pick_col(g, t, true);
	switch (R(g, 5)) {
	case 0: {
		struct gtab *u = T(g);
		const struct gcol *c = pick_col(g, u, false);
		add(g, "UPDATE %s SET %s = x.%s FROM %s AS x WHERE %s.id = x.id AND ", t->name, a->name, c->name,
		    u->name, t->name);
		pred(g, u, "x", 1);
		return;
	}
	case 1:
		add(g, "UPDATE %s SET (%s, %s) = (", t->name, a->name, b->name);
		lit_col(g, t, a);
		add(g, ", ");
		lit_col(g, t, b);
		add(g, ") WHERE id = %d", 1 + R(g, MAXID));
		return;
	case 2:
		add(g, "UPDATE OR %s %s SET id = (id * %d) %% %d + 1 WHERE ", P(g, 50) ? "IGNORE" : "REPLACE", t->name,
		    2 + R(g, 5), MAXID);
		pred(g, t, NULL, 1);
		return;
	default:
		add(g, "UPDATE %s%s SET %s = ", P(g, 20) ? "OR IGNORE " : "", t->name, a->name);
		if (P(g, 50))
			expr(g, t, NULL, 1);
		else
			lit_col(g, t, a);
		where(g, t, NULL, 90);
		return;
	}
}

static void w_delete(struct gen *g, struct gtab *t)
{
	if (P(g, 30)) {
		struct gtab *u = T(g);
		add(g, "DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE id %% %d = %d)", t->name, u->name,
		    5 + R(g, 5), R(g, 5));
		return;
	}
	add(g, "DELETE FROM %s WHERE id %% %d = %d", t->name, 4 + R(g, 8), R(g, 4));
	if (P(g, 50)) {
		add(g, " AND ");
		pred(g, t, NULL, 1);
	}
}

static void w_upsert(struct gen *g, struct gtab *t)
{
	const struct gcol *a = pick_col(g, t, true), *u = NULL;
	for (int k = 1; k < t->ncol; k++)
		if (t->col[k].uniq)
			u = &t->col[k];
	add(g, "INSERT INTO %s(id, %s%s%s) VALUES ", t->name, a->name, u && u != a ? ", " : "",
	    u && u != a ? u->name : "");
	for (int r = 1 + R(g, 3); r > 0; r--) {
		add(g, "(%d, ", 1 + R(g, MAXID));
		lit_col(g, t, a);
		if (u && u != a) {
			add(g, ", ");
			lit_col(g, t, u);
		}
		add(g, ")%s", r > 1 ? ", " : "");
	}
	if (u && P(g, 50))
		add(g, " ON CONFLICT(%s) DO NOTHING", u->name);
	switch (R(g, 3)) {
	case 0: add(g, " ON CONFLICT DO NOTHING"); break;
	case 1:
		add(g, " ON CONFLICT(id) DO UPDATE SET %s = excluded.%s WHERE excluded.%s IS NOT %s.%s", a->name, a->name,
		    a->name, t->name, a->name);
		break;
	default:
		add(g, " ON CONFLICT(id) DO UPDATE SET %s = ", a->name);
		lit_col(g, t, a);
		break;
	}
}

static void w_nondet(struct gen *g)
{
	switch (R(g, 4)) {
	case 0: add(g, "INSERT INTO nd(r, b, d) VALUES (random(), randomblob(8), datetime('now'))"); break;
	case 1: add(g, "INSERT INTO nd(r, b) SELECT random(), randomblob(4) FROM t%d WHERE id %% 10 = %d", R(g, NTAB), R(g, 10)); break;
	case 2: add(g, "UPDATE nd SET r = random(), d = CURRENT_TIMESTAMP WHERE id %% 3 = %d", R(g, 3)); break;
	default: add(g, "DELETE FROM nd WHERE id %% 7 = %d", R(g, 7)); break;
	}
}

/* A write with parameters (one per record: they are bound to every
 * statement of the text). */
static void w_param(struct gen *g, struct gtab *t)
{
	const struct gcol *a = pick_col(g, t, true);
	switch (R(g, 3)) {
	case 0:
		add(g, "INSERT OR REPLACE INTO %s(id, %s) VALUES (?1, ?2)", t->name, a->name);
		param(g, TY_INT);
		param(g, a->ty);
		break;
	case 1:
		add(g, "UPDATE %s SET %s = :v WHERE id = :k", t->name, a->name);
		param(g, a->ty);
		param(g, TY_INT);
		break;
	default:
		add(g, "DELETE FROM %s WHERE id = ?", t->name);
		param(g, TY_INT);
		break;
	}
}

static void w_view(struct gen *g)
{
	int k = R(g, NVIEW);
	if (!g->v[k].live) {
		w_nondet(g);
		return;
	}
	add(g, "INSERT INTO v%d(a) VALUES (%d)", k, R(g, 1000));
}

/* One write statement into the text; params only when allowed. */
static void w_any(struct gen *g, bool params)
{
	struct gtab *t = T(g);
	int k = R(g, 100);
	if (k < 30)
		w_insert(g, t);
	else if (k < 40)
		w_insert_select(g, t);
	else if (k < 58)
		w_update(g, t);
	else if (k < 66)
		w_delete(g, t);
	else if (k < 80)
		w_upsert(g, t);
	else if (k < 87)
		w_nondet(g);
	else if (k < 90)
		w_view(g);
	else if (k < 97 && params)
		w_param(g, t);
	else
		add(g, "PRAGMA user_version = %d", R(g, 1000));
}

static void write_rec(struct gen *g)
{
	rec_begin(g, GEN_EXEC, "write");
	w_any(g, true);
	if (g->rec.nparams)
		g->rec.cat = "write.param";
	else if (!strncmp(g->sb.p, "INSERT INTO nd", 14) || !strncmp(g->sb.p, "UPDATE nd", 9))
		g->rec.cat = "write.nondet";
	else if (strstr(g->sb.p, "ON CONFLICT"))
		g->rec.cat = "write.upsert";
	else if (!strncmp(g->sb.p, "UPDATE", 6))
		g->rec.cat = "write.update";
	else if (!strncmp(g->sb.p, "DELETE", 6))
		g->rec.cat = "write.delete";
	else
		g->rec.cat = "write.insert";
}

static void returning_rec(struct gen *g)
{
	struct gtab *t = T(g);
	rec_begin(g, GEN_QUERY, "write.returning");
	switch (R(g, 3)) {
	case 0: w_insert(g, t); break;
	case 1: w_update(g, t); break;
	default: w_delete(g, t); break;
	}
	add(g, " RETURNING %s", P(g, 50) ? "*" : "id, typeof(id), id * 2");
}

static void txn_rec(struct gen *g)
{
	rec_begin(g, GEN_EXEC, "txn.commit");
	g->rec.txn = true;
	g->in_txn = true;
	add(g, "%s;\n", (const char *[]){ "BEGIN", "BEGIN TRANSACTION", "BEGIN IMMEDIATE", "BEGIN DEFERRED" }[R(g, 4)]);
	bool sp = P(g, 25);
	int n = 2 + R(g, 3);
	for (int i = 0; i < n; i++) {
		if (sp && i == 1)
			add(g, "SAVEPOINT sp1;\n");
		w_any(g, g->rec.nparams == 0);
		add(g, ";\n");
		if (sp && i == 1)
			add(g, "%s sp1;\n", P(g, 50) ? "ROLLBACK TO" : "RELEASE");
		if (P(g, 15)) {
			add(g, "SELECT count(*) FROM t%d;\n", R(g, NTAB));
		}
	}
	if (P(g, 15)) {
		g->rec.cat = "txn.rollback";
		g->rec.expect = GEN_ANY;
		add(g, "ROLLBACK");
	} else {
		add(g, P(g, 20) ? "END" : "COMMIT");
	}
	if (sp && g->rec.expect != GEN_ANY)
		g->rec.cat = "txn.savepoint";
	g->in_txn = false;
}

/* ---- statements that must fail ------------------------------------------- */

static void fail_rec(struct gen *g)
{
	struct gtab *t = T(g);
	rec_begin(g, GEN_EXEC, "fail.constraint");
	g->rec.expect = GEN_FAIL;
	int k = R(g, 13);
	const struct gcol *c = NULL;
	switch (k) {
	case 0: /* NOT NULL (column 1 always is) */
		add(g, "INSERT INTO %s(id, c1) VALUES (%d, NULL)", t->name, 1 + R(g, MAXID));
		return;
	case 1: { /* the same key twice in one statement */
		int id = 1000 + R(g, 10);
		add(g, "INSERT INTO %s(id) VALUES (%d), (%d)", t->name, id, id);
		return;
	}
	case 2:
		for (int i = 1; i < t->ncol; i++)
			if (t->col[i].chk)
				c = &t->col[i];
		if (!c)
			break;
		add(g, "INSERT INTO %s(id, %s) VALUES (%d, %s)", t->name, c->name, 2000 + R(g, 100),
		    c->ty == TY_INT ? "-5000" : "'a string longer than twenty bytes'");
		return;
	case 3:
		if (!t->strict)
			break;
		for (int i = 1; i < t->ncol; i++)
			if (!t->col[i].gen && (t->col[i].ty == TY_INT || t->col[i].ty == TY_REAL))
				c = &t->col[i];
		if (!c)
			break;
		g->rec.cat = "fail.strict";
		add(g, "INSERT INTO %s(id, %s) VALUES (%d, 'not a number')", t->name, c->name, 1 + R(g, MAXID));
		return;
	case 4:
		for (int i = 0; i < NTRIG; i++)
			if (g->tr[i].live && g->tr[i].raise) {
				struct gtab *u = &g->t[g->tr[i].tab];
				g->rec.cat = "fail.raise";
				add(g, "INSERT INTO %s(id, %s) VALUES (%d, 'boom')", u->name, u->col[g->tr[i].col].name,
				    3000 + R(g, 100));
				return;
			}
		break;
	case 5:
		g->rec.cat = "fail.semantic";
		add(g, "%s", (const char *[]){ "INSERT INTO nosuch VALUES (1)", "DROP TABLE nosuch", "UPDATE t0 SET nosuchcol = 1",
					      "CREATE TABLE t0(x)", "CREATE INDEX ix_bad ON nosuch(x)", "DROP VIEW nosuch",
					      "ALTER TABLE t1 ADD COLUMN id INTEGER" }[R(g, 7)]);
		return;
	case 6:
		g->rec.cat = "fail.semantic";
		g->rec.kind = GEN_QUERY;
		add(g, "%s", (const char *[]){ "SELECT nosuchcol FROM t0", "SELECT * FROM nosuch", "SELECT abs(-9223372036854775807 - 1)",
					      "SELECT sum(x) FROM (SELECT 9223372036854775807 AS x UNION ALL SELECT 1)",
					      "SELECT json('{bad')", "SELECT * FROM t0, t1 USING (nosuch)",
					      "SELECT ntile(0) OVER () FROM (SELECT 1)" }[R(g, 7)]);
		return;
	case 7: {
		/* a transaction group with a failing statement: nothing of it
		 * may stay (the dumps check it) */
		g->rec.cat = "fail.txn";
		g->rec.txn = true;
		add(g, "BEGIN;\n");
		w_insert(g, T(g));
		add(g, ";\n");
		w_update(g, T(g));
		add(g, ";\nINSERT INTO %s(id, c1) VALUES (%d, NULL);\n", t->name, 1 + R(g, MAXID));
		w_delete(g, T(g));
		add(g, ";\nCOMMIT");
		return;
	}
	case 8:
		g->rec.cat = "fail.syntax";
		add(g, "%s", (const char *[]){ "SELECT FROM t0", "INSERT INTO t0 VALUES", "UPDATE t0 SET WHERE id = 1",
					      "SELECT 1 +", "CREATE TABLE (x)" }[R(g, 5)]);
		return;
	case 9:
		add(g, "INSERT INTO %s(id, c1) VALUES (%d)", t->name, 1 + R(g, MAXID));
		g->rec.cat = "fail.semantic";
		return;
	case 10:
		if (t->wr)
			break;
		g->rec.cat = "fail.datatype";
		add(g, "INSERT INTO %s(id) VALUES ('x%d')", t->name, R(g, 9));
		return;
	case 11:
		for (int i = 1; i < t->ncol; i++)
			if (t->col[i].gen)
				c = &t->col[i];
		if (!c)
			break;
		add(g, "INSERT INTO %s(id, %s) VALUES (%d, 1)", t->name, c->name, 1 + R(g, MAXID));
		g->rec.cat = "fail.semantic";
		return;
	default:
		break;
	}
	/* fallback: NOT NULL through UPDATE of an existing-or-not row is not
	 * sure to fail; a duplicate key in one INSERT is */
	int id = 4000 + R(g, 100);
	add(g, "INSERT INTO %s(id, c1) VALUES (%d, ", t->name, id);
	lit_col(g, t, &t->col[1]);
	add(g, "), (%d, ", id);
	lit_col(g, t, &t->col[1]);
	add(g, ")");
}

/* ---- refusals (doc/sql.md "Refused constructs") -------------------------- */

static void refused_rec(struct gen *g)
{
	static const char *const r[] = {
		"ATTACH 'x.db' AS x",
		"DETACH x",
		"CREATE TEMP TABLE tt(x)",
		"VACUUM",
		"VACUUM INTO '/tmp/x.db'",
		"INSERT INTO lg(tb, v) SELECT 'members', group_concat(applied) FROM mtr_members",
		"UPDATE t0 SET id = id WHERE id IN (SELECT instance FROM mtr_instances)",
		"CREATE TABLE tz AS SELECT * FROM mtr_stats",
		"SELECT nosuchfunc(1)",
		"SELECT load_extension('x')",
		"PRAGMA cache_size = 10",
		"PRAGMA journal_mode = DELETE",
		"PRAGMA defer_foreign_keys = ON",
		"PRAGMA database_list",
		"SELECT * FROM pragma_database_list",
		"SELECT 'a' REGEXP 'b'",
		"SELECT * FROM temp.sqlite_master",
		"INSERT INTO lg(tb) SELECT digest FROM mtr_digest",
		"PRAGMA writable_schema = 1",
	};
	rec_begin(g, GEN_EXEC, "refused");
	g->rec.expect = GEN_REFUSED;
	add(g, "%s", r[R(g, (int)(sizeof r / sizeof *r))]);
}

/* ---- DDL (only what cannot fail: the model follows it) -------------------- */

static void ddl_rec(struct gen *g)
{
	rec_begin(g, GEN_EXEC, "ddl");
	int k = R(g, 10);
	if (k == 0 || k == 1) { /* index */
		int i = R(g, NIDX);
		g->rec.cat = "ddl.index";
		if (g->ix[i].live) {
			add(g, "DROP INDEX %six%d", P(g, 50) ? "IF EXISTS " : "", i);
			g->ix[i].live = false;
			return;
		}
		struct gtab *t = T(g);
		const struct gcol *a = pick_col(g, t, false), *b = pick_col(g, t, false);
		g->ix[i].live = true;
		g->ix[i].tab = (int)(t - g->t);
		switch (R(g, 4)) {
		case 0: add(g, "CREATE INDEX ix%d ON %s(%s)", i, t->name, a->name); break;
		case 1: add(g, "CREATE INDEX IF NOT EXISTS ix%d ON %s(%s DESC, %s)", i, t->name, a->name, b->name); break;
		case 2: add(g, "CREATE UNIQUE INDEX ix%d ON %s(%s, id)", i, t->name, a->name); break;
		default:
			add(g, "CREATE INDEX ix%d ON %s(lower(%s), %s) WHERE %s IS NOT NULL", i, t->name, a->name, b->name,
			    a->name);
			break;
		}
		return;
	}
	if (k == 2) { /* add a column */
		struct gtab *t = T(g);
		g->rec.cat = "ddl.alter";
		if (t->ncol >= MAXCOL) {
			add(g, "CREATE TABLE IF NOT EXISTS %s(x)", t->name);
			return;
		}
		struct gcol *c = &t->col[t->ncol++];
		memset(c, 0, sizeof *c);
		snprintf(c->name, sizeof c->name, "c%d", t->next_col++);
		c->ty = R(g, TY_N);
		const char *ty = t->strict ? strictname[c->ty] : tyname[c->ty];
		add(g, "ALTER TABLE %s ADD COLUMN %s%s%s", t->name, c->name, *ty ? " " : "", ty);
		if (P(g, 50)) {
			add(g, " DEFAULT ");
			lit(g, c->ty == TY_NUM || c->ty == TY_ANY ? TY_INT : c->ty, 0);
		}
		return;
	}
	if (k == 3 || k == 4) { /* view */
		int i = R(g, NVIEW);
		g->rec.cat = "ddl.view";
		if (g->v[i].live) {
			add(g, "DROP VIEW v%d", i);
			g->v[i].live = false;
			for (int j = 0; j < NTRIG; j++)
				if (g->tr[j].live && g->tr[j].tab == -1 - i)
					g->tr[j].live = false;
			return;
		}
		struct gtab *t = T(g), *u = T(g);
		const struct gcol *a = pick_col(g, t, false), *b = pick_col(g, u, false);
		g->v[i].live = true;
		switch (R(g, 3)) {
		case 0:
			g->v[i].ncol = 3;
			add(g, "CREATE VIEW v%d(a, b, c) AS SELECT id, %s, ", i, a->name);
			expr(g, t, NULL, 1);
			add(g, " FROM %s", t->name);
			where(g, t, NULL, 50);
			break;
		case 1:
			g->v[i].ncol = 2;
			add(g, "CREATE VIEW v%d(a, b) AS SELECT %s, count(*) FROM %s GROUP BY %s, typeof(%s)", i, a->name,
			    t->name, a->name, a->name);
			break;
		default:
			g->v[i].ncol = 3;
			add(g, "CREATE VIEW IF NOT EXISTS v%d(a, b, c) AS SELECT x.id, x.%s, y.%s FROM %s x JOIN %s y ON x.id = y.id",
			    i, a->name, b->name, t->name, u->name);
			break;
		}
		return;
	}
	if (k == 5 || k == 6) { /* trigger */
		int i = R(g, NTRIG);
		g->rec.cat = "ddl.trigger";
		if (g->tr[i].live) {
			add(g, "DROP TRIGGER %str%d", P(g, 50) ? "IF EXISTS " : "", i);
			g->tr[i].live = false;
			return;
		}
		int vi = R(g, NVIEW);
		if (P(g, 20) && g->v[vi].live) {
			g->tr[i] = (struct gtrig){ .live = true, .tab = -1 - vi };
			add(g, "CREATE TRIGGER tr%d INSTEAD OF INSERT ON v%d BEGIN INSERT INTO lg(tb, op, k) VALUES ('v%d', 'ins', new.a); END",
			    i, vi, vi);
			return;
		}
		struct gtab *t = T(g);
		const struct gcol *a = pick_col(g, t, false);
		g->tr[i] = (struct gtrig){ .live = true, .tab = (int)(t - g->t) };
		if (P(g, 20) && !t->col[1].gen && (t->col[1].ty == TY_TEXT || t->col[1].ty >= TY_NUM)) {
			g->tr[i].raise = true;
			g->tr[i].col = 1;
			add(g, "CREATE TRIGGER tr%d BEFORE INSERT ON %s WHEN new.c1 = 'boom' BEGIN SELECT RAISE(ABORT, 'boom refused'); END",
			    i, t->name);
			return;
		}
		switch (R(g, 3)) {
		case 0:
			add(g, "CREATE TRIGGER tr%d AFTER INSERT ON %s BEGIN INSERT INTO lg(tb, op, k, v) VALUES ('%s', 'ins', new.id, new.%s); END",
			    i, t->name, t->name, a->name);
			break;
		case 1:
			add(g, "CREATE TRIGGER IF NOT EXISTS tr%d AFTER UPDATE OF %s ON %s FOR EACH ROW WHEN old.%s IS NOT new.%s "
			       "BEGIN INSERT INTO lg(tb, op, k, v) VALUES ('%s', 'upd', new.id, old.%s); END",
			    i, a->name, t->name, a->name, a->name, t->name, a->name);
			break;
		default:
			add(g, "CREATE TRIGGER tr%d BEFORE DELETE ON %s BEGIN INSERT INTO lg(tb, op, k) VALUES ('%s', 'del', old.id); "
			       "DELETE FROM lg WHERE n < (SELECT max(n) - 200 FROM lg); END",
			    i, t->name, t->name);
			break;
		}
		return;
	}
	if (k == 7) { /* scratch table */
		g->rec.cat = "ddl.table";
		if (g->scratch) {
			add(g, "DROP TABLE s0");
			g->scratch = false;
			return;
		}
		struct gtab *t = T(g);
		const struct gcol *a = pick_col(g, t, false);
		g->scratch = true;
		add(g, "CREATE TABLE s0 AS SELECT id, %s AS a FROM %s WHERE id %% %d = %d", a->name, t->name, 2 + R(g, 4),
		    R(g, 2));
		return;
	}
	if (k == 8) {
		g->rec.cat = "ddl.other";
		add(g, "%s", (const char *[]){ "ANALYZE", "REINDEX", "ANALYZE t0", "REINDEX t1" }[R(g, 4)]);
		return;
	}
	g->rec.cat = "ddl.other";
	add(g, "CREATE TABLE IF NOT EXISTS t%d(x)", R(g, NTAB));
}

/* The first data of table i: a recursive CTE fills ids 1..N. */
static void fill_rec(struct gen *g, int i)
{
	struct gtab *t = &g->t[i];
	static const char *const v[TY_N] = { "n % 7", "n * 0.5", "'v' || (n % 9)", "zeroblob(n % 3)", "n % 5",
					     "iif(n % 2, n, 'w' || n)" };
	rec_begin(g, GEN_EXEC, "write.fill");
	add(g, "WITH RECURSIVE r(n) AS (VALUES(1) UNION ALL SELECT n + 1 FROM r WHERE n < %d) INSERT OR IGNORE INTO %s(id",
	    40 + R(g, 60), t->name);
	for (int k = 1; k < t->ncol; k++)
		if (!t->col[k].gen)
			add(g, ", %s", t->col[k].name);
	add(g, ") SELECT n");
	for (int k = 1; k < t->ncol; k++) {
		if (t->col[k].gen)
			continue;
		add(g, ", %s", v[t->col[k].ty]);
	}
	add(g, " FROM r");
}

const struct gen_rec *gen_next(struct gen *g)
{
	uint64_t n = g->n++;
	if (n < NTAB) {
		rec_begin(g, GEN_EXEC, "ddl.table");
		create_table(g, (int)n);
	} else if (n == NTAB) {
		rec_begin(g, GEN_EXEC, "ddl.table");
		add(g, "CREATE TABLE lg(n INTEGER PRIMARY KEY, tb TEXT, op TEXT, k, v)");
	} else if (n == NTAB + 1) {
		rec_begin(g, GEN_EXEC, "ddl.table");
		add(g, "CREATE TABLE nd(id INTEGER PRIMARY KEY, r INTEGER, b BLOB, d TEXT DEFAULT CURRENT_TIMESTAMP)");
	} else if (n < 2 * NTAB + 2) {
		fill_rec(g, (int)n - NTAB - 2);
	} else if (n % 97 == 0) {
		q_dump(g, (int)(n / 97 % (NTAB + 2)));
	} else if (n % 251 == 0) {
		q_master(g);
	} else {
		int k = R(g, 1000);
		if (k < 60)
			q_select(g);
		else if (k < 120)
			q_agg(g);
		else if (k < 180)
			q_join(g);
		else if (k < 230)
			q_sub(g);
		else if (k < 270)
			q_cte(g);
		else if (k < 320)
			q_window(g);
		else if (k < 350)
			q_compound(g);
		else if (k < 390)
			q_order(g);
		else if (k < 420)
			q_view(g);
		else if (k < 435)
			q_pragma(g);
		else if (k < 450)
			q_nondet(g);
		else if (k < 475)
			q_param(g);
		else if (k < 490)
			q_json(g);
		else if (k < 500)
			q_dump(g, R(g, NTAB + 2));
		else if (k < 740)
			write_rec(g);
		else if (k < 790)
			returning_rec(g);
		else if (k < 850)
			txn_rec(g);
		else if (k < 910)
			ddl_rec(g);
		else if (k < 975)
			fail_rec(g);
		else
			refused_rec(g);
	}
	if (g->sb.oom)
		return NULL;
	g->rec.sql = g->sb.p;
	return &g->rec;
}

struct gen *gen_new(uint64_t seed)
{
	struct gen *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->rng = seed;
	g->sb.cap = 4096;
	g->sb.p = malloc(g->sb.cap);
	if (!g->sb.p) {
		free(g);
		return NULL;
	}
	g->sb.p[0] = 0;
	return g;
}

void gen_free(struct gen *g)
{
	if (!g)
		return;
	free(g->sb.p);
	free(g);
}
