/*
 * build.c - the builder behind the grammar, the classifier and the driver.
 *
 * sql_parse() runs the tokenizer over the text and feeds the lemon parser
 * (parse.y) token by token.  Grammar actions call the build_* functions
 * below, which make the (small) AST in the parse's arena and record, for the
 * statement being parsed, what the proxy needs: kind, tables, functions,
 * parameters, non-deterministic constructs, refusals.  build_stmt_end()
 * closes a statement and copies its facts into the result.  After a syntax
 * error the parser is reset and the driver skips to the end of the statement
 * (the END; of a CREATE TRIGGER body), so that every statement of the text
 * gets its own line in the result.
 *
 * All memory comes from one arena per parse; nothing here reads a clock or
 * does I/O.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "localsrc.h"
#include "metronome.h"
#include "sql.h"
#include "sql_int.h"
#include "parse.h"

/* ------------------------------------------------------------ the arena */

struct sql_block {
	struct sql_block *next;
	size_t used, cap;
	max_align_t data[];
};

struct sql_arena {
	struct sql_block *head;
};

struct sql_arena *sql_arena_new(void)
{
	return calloc(1, sizeof(struct sql_arena));
}

void *sql_arena_alloc(struct sql_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct sql_block *b = a->head;
	if (!b || b->cap - b->used < n) {
		size_t cap = b ? b->cap * 2 : 16384;
		if (cap < n)
			cap = n;
		if (cap > (1u << 20) && n < (1u << 20))
			cap = 1u << 20;
		struct sql_block *nb = malloc(sizeof *nb + cap);
		if (!nb)
			return NULL;
		nb->next = b;
		nb->used = 0;
		nb->cap = cap;
		a->head = nb;
		b = nb;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

void sql_arena_free(struct sql_arena *a)
{
	if (!a)
		return;
	for (struct sql_block *b = a->head, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	free(a);
}

/* ------------------------------------------------------- the context */

/* A growable array in the arena (old storage is left to the arena).  For
 * sets of strings, h is an open-addressing index (slot = element + 1) over
 * the case-folded names, so that hostile statements with many names stay
 * linear. */
struct vec {
	void *v;
	unsigned n, cap;
	unsigned *h;
	unsigned hcap;
	bool exact;   /* a set compared case-sensitively (parameter names) */
};

struct sql_ctx {
	struct sql_arena *arena;
	const char *text;
	size_t len;
	const struct sql_schema *schema;
	bool nomem;
	void *parser;       /* the lemon parser (for expected-token hints) */

	/* offsets where lines 2, 3, ... start (positions by binary search) */
	uint32_t *lines;
	uint32_t n_lines;

	/* the statement being parsed */
	bool in_stmt;       /* a token of it has been seen */
	bool has_cmd;       /* a kind was set (not an empty ';') */
	bool failed;        /* a syntax error was reported */
	uint32_t start, last_end; /* span of its tokens so far */
	struct sql_token cur_tok; /* token being fed (for positions) */
	struct sql_stmt st;
	bool maybe_readonly; /* IF [NOT] EXISTS made it a no-op */
	uint32_t temp_off;   /* where TEMP was written (st.temp) */
	uint32_t local_off[LOCAL_SOURCES]; /* where each replica-local source was named + 1 (0: not) */
	bool txn_write;
	struct vec rd, wr, fn, par, nd, cte; /* of const char * / sql_param / sql_nondet */
	struct vec pn, pnum; /* parameter names (exact set) and their numbers (int) */
	bool virtual_semi;  /* the SEMI being fed was added at the end of text */

	/* the result */
	struct vec stmts;
};

static void *ctx_alloc(struct sql_ctx *c, size_t n)
{
	void *p = sql_arena_alloc(c->arena, n);
	if (!p)
		c->nomem = true;
	return p;
}

static void *vec_push(struct sql_ctx *c, struct vec *v, size_t elt)
{
	if (v->n == v->cap) {
		unsigned cap = v->cap ? v->cap * 2 : 8;
		void *nv = ctx_alloc(c, cap * elt);
		if (!nv)
			return NULL;
		if (v->n)
			memcpy(nv, v->v, v->n * elt);
		v->v = nv;
		v->cap = cap;
	}
	return (char *)v->v + (v->n++) * elt;
}

static struct sql_pos pos_of(struct sql_ctx *c, uint32_t off)
{
	/* the number of line starts <= off */
	uint32_t lo = 0, hi = c->n_lines;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->lines[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint32_t start = lo ? c->lines[lo - 1] : 0;
	return (struct sql_pos){ off, lo + 1, off - start + 1 };
}

static uint32_t off_of(struct sql_ctx *c, struct sql_token t)
{
	return t.z ? (uint32_t)(t.z - c->text) : (uint32_t)c->len;
}

static char *ctx_printf(struct sql_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *ctx_printf(struct sql_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = ctx_alloc(c, (size_t)n + 1);
	if (!s)
		return (char *)"out of memory";
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* An identifier without its quotes ("a""b" -> a"b, [x] -> x). */
static char *dequote(struct sql_ctx *c, struct sql_token t, bool lower)
{
	char *s = ctx_alloc(c, t.n + 1);
	if (!s)
		return (char *)"";
	uint32_t j = 0;
	char q = t.n ? t.z[0] : 0;
	if (q == '"' || q == '\'' || q == '`') {
		for (uint32_t i = 1; i + 1 < t.n; i++) {
			s[j++] = t.z[i];
			if (t.z[i] == q)
				i++;
		}
	} else if (q == '[') {
		memcpy(s, t.z + 1, t.n >= 2 ? t.n - 2 : 0);
		j = t.n >= 2 ? t.n - 2 : 0;
	} else {
		memcpy(s, t.z, t.n);
		j = t.n;
	}
	s[j] = 0;
	if (lower)
		for (uint32_t i = 0; i < j; i++)
			if (s[i] >= 'A' && s[i] <= 'Z')
				s[i] = (char)(s[i] + 32);
	return s;
}

/* Record the first refusal of the statement (later ones add nothing). */
static void refuse_at(struct sql_ctx *c, uint32_t off, const char *msg)
{
	c->has_cmd = true;
	if (c->st.error)
		return;
	c->st.error_pos = pos_of(c, off);
	c->st.error = ctx_printf(c, "%s at line %u, column %u", msg,
				 (unsigned)c->st.error_pos.line, (unsigned)c->st.error_pos.col);
	c->st.kind = SQL_REFUSED;
}

static unsigned name_hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch + 32);
		h = (h ^ ch) * 16777619u;
	}
	return h;
}

/* Index of s in the string set v (case-insensitive), or -1. */
static int set_find(const struct vec *v, const char *s)
{
	if (!v->hcap)
		return -1;
	const char **a = v->v;
	for (unsigned i = name_hash(s) & (v->hcap - 1);; i = (i + 1) & (v->hcap - 1)) {
		if (!v->h[i])
			return -1;
		if ((v->exact ? strcmp(a[v->h[i] - 1], s) : strcasecmp(a[v->h[i] - 1], s)) == 0)
			return (int)(v->h[i] - 1);
	}
}

/* Add s to a string set (case-insensitive) unless it is there. */
static void set_add(struct sql_ctx *c, struct vec *v, const char *s)
{
	if (set_find(v, s) >= 0)
		return;
	if (2 * (v->n + 1) > v->hcap) {
		unsigned hcap = v->hcap ? v->hcap * 2 : 16;
		unsigned *h = ctx_alloc(c, hcap * sizeof *h);
		if (!h)
			return;
		memset(h, 0, hcap * sizeof *h);
		const char **a = v->v;
		for (unsigned k = 0; k < v->n; k++) {
			unsigned i = name_hash(a[k]) & (hcap - 1);
			while (h[i])
				i = (i + 1) & (hcap - 1);
			h[i] = k + 1;
		}
		v->h = h;
		v->hcap = hcap;
	}
	const char **slot = vec_push(c, v, sizeof *slot);
	if (!slot)
		return;
	*slot = s;
	unsigned i = name_hash(s) & (v->hcap - 1);
	while (v->h[i])
		i = (i + 1) & (v->hcap - 1);
	v->h[i] = v->n;
}

static void stmt_reset(struct sql_ctx *c)
{
	memset(&c->st, 0, sizeof c->st);
	memset(&c->rd, 0, sizeof c->rd);
	memset(&c->wr, 0, sizeof c->wr);
	memset(&c->fn, 0, sizeof c->fn);
	memset(&c->par, 0, sizeof c->par);
	memset(&c->nd, 0, sizeof c->nd);
	memset(&c->cte, 0, sizeof c->cte);
	memset(&c->pn, 0, sizeof c->pn);
	memset(&c->pnum, 0, sizeof c->pnum);
	c->pn.exact = true;
	c->in_stmt = c->has_cmd = c->failed = false;
	c->maybe_readonly = c->txn_write = false;
	memset(c->local_off, 0, sizeof c->local_off);
}

/* ------------------------------------------------------- statements */

static const char **set_copy(struct vec *v, unsigned *n)
{
	*n = v->n;
	return v->v;
}

/* Remember where a replica-local source (src/common/localsrc.h) was first
 * named in the statement. */
static void local_note(struct sql_ctx *c, const char *name, bool function, uint32_t off)
{
	int k = local_source_find(name, function);
	if (k >= 0 && !c->local_off[k])
		c->local_off[k] = off + 1;
}

/* A write that reads a replica-local source is refused at the first such
 * name (a table that a WITH clause of the statement defines is none).
 * CREATE VIEW reads nothing when it runs: a view over one serves reads (a
 * write through it meets the replica's refusal).  A trigger's body runs
 * inside writes, so CREATE TRIGGER is refused like a write. */
static void refuse_local_tables(struct sql_ctx *c)
{
	if (c->st.kind == SQL_READ || c->st.kind == SQL_REFUSED || c->st.explain || c->st.object_type == 'v')
		return;
	int first = -1;
	for (int i = 0; i < LOCAL_SOURCES; i++)
		if (c->local_off[i] &&
		    (local_sources[i].kind == LOCAL_FUNCTION || set_find(&c->cte, local_sources[i].name) < 0) &&
		    (first < 0 || c->local_off[i] < c->local_off[first]))
			first = i;
	if (first < 0)
		return;
	char msg[512];
	local_source_msg(first, msg, sizeof msg);
	refuse_at(c, c->local_off[first] - 1, ctx_printf(c, "%s", msg));
}

/* Close the statement: derive readonly, drop CTE names, append it. */
static void stmt_finish(struct sql_ctx *c, bool error)
{
	if (!error)
		refuse_local_tables(c);
	struct sql_stmt *st = &c->st;
	st->start = c->start;
	st->end = c->last_end;
	st->pos = pos_of(c, c->start);
	if (!error && st->kind != SQL_REFUSED) {
		switch (st->kind) {
		case SQL_READ:
			break; /* set by build_pragma / build_kind */
		case SQL_TXN:
			st->readonly = !c->txn_write;
			break;
		default:
			st->readonly = c->maybe_readonly;
			break;
		}
	}
	/* a table name that a WITH clause of the statement defines is no table */
	if (c->cte.n) {
		const char **rd = c->rd.v;
		unsigned k = 0;
		for (unsigned i = 0; i < c->rd.n; i++)
			if (set_find(&c->cte, rd[i]) < 0)
				rd[k++] = rd[i];
		c->rd.n = k;
	}
	st->tables_read = set_copy(&c->rd, &st->n_tables_read);
	st->tables_written = set_copy(&c->wr, &st->n_tables_written);
	st->functions = set_copy(&c->fn, &st->n_functions);
	st->params = c->par.v;
	st->n_params = c->par.n;
	st->nondet = c->nd.v;
	st->n_nondet = c->nd.n;
	struct sql_stmt *slot = vec_push(c, &c->stmts, sizeof *slot);
	if (slot)
		*slot = *st;
	stmt_reset(c);
}

void build_stmt_end(struct sql_ctx *c)
{
	/* the driver closes statements (see sql_parse_ex) */
	(void)c;
}

void build_explain(struct sql_ctx *c)
{
	c->st.explain = true;
}

void build_kind(struct sql_ctx *c, enum sql_kind kind)
{
	c->has_cmd = true;
	if (c->st.kind == SQL_REFUSED || c->failed)
		return;
	c->st.kind = kind;
	if (kind == SQL_READ)
		c->st.readonly = true;
	if (c->st.explain) {
		/* EXPLAIN is compiled like its statement (sqlite3_stmt_readonly
		 * answers for the inner statement); it only reads */
		c->st.kind = SQL_READ;
		if (kind == SQL_TXN)
			c->st.readonly = !c->txn_write;
		else if (kind != SQL_READ)
			c->st.readonly = false;
	}
}

void build_txn(struct sql_ctx *c, enum sql_txn txn)
{
	build_kind(c, SQL_TXN);
	c->st.txn = txn;
}

void build_txn_write(struct sql_ctx *c)
{
	c->txn_write = true;
}

/* How a token is named in "expected ..." hints. */
static const char *token_display(int code)
{
	switch (code) {
	case TK_ID: return "a name";
	case TK_STRING: return "a string";
	case TK_INTEGER: return "a number";
	case TK_LP: return "\"(\"";
	case TK_RP: return "\")\"";
	case TK_COMMA: return "\",\"";
	case TK_SEMI: return "\";\"";
	case TK_DOT: return "\".\"";
	case TK_EQ: return "\"=\"";
	case TK_STAR: return "\"*\"";
	case TK_VARIABLE: return "a parameter";
	case TK_JOIN_KW: return "a join keyword";
	case TK_LIKE_KW: return "LIKE";
	case TK_CTIME_KW: return "CURRENT_TIME";
	case TK_COLUMNKW: return "COLUMN";
	case TK_AUTOINCR: return "AUTOINCREMENT";
	case TK_FLOAT: case TK_BLOB: case TK_ANY: case TK_INDEXED:
	case TK_SPACE: case TK_COMMENT: case TK_ILLEGAL:
		return NULL;
	default:
		return sql_token_name(code);
	}
}

void build_syntax_error(struct sql_ctx *c, int major, struct sql_token t, const char *hint)
{
	(void)major;
	if (c->failed)
		return;
	c->failed = true;
	c->has_cmd = true;
	(void)hint;
	struct sql_stmt *st = &c->st;
	uint32_t off = off_of(c, t);
	st->kind = SQL_ERROR;
	st->readonly = false;
	st->error_pos = pos_of(c, off);

	/* what the parser could have shifted instead */
	char exp[256] = "";
	int codes[256];
	int n = c->parser ? sql_parser_expected(c->parser, codes, 256) : 0;
	bool expr = false;
	for (int i = 0; i < n; i++)
		if (codes[i] == TK_INTEGER)
			for (int j = 0; j < n; j++)
				if (codes[j] == TK_LP)
					expr = true;
	if (expr) {
		snprintf(exp, sizeof exp, "expected an expression");
	} else if (n > 0) {
		size_t k = (size_t)snprintf(exp, sizeof exp, "expected ");
		int shown = 0;
		for (int i = 0; i < n && k < sizeof exp - 40; i++) {
			const char *d = token_display(codes[i]);
			if (!d)
				continue;
			if (shown == 6) {
				k += (size_t)snprintf(exp + k, sizeof exp - k, ", ...");
				break;
			}
			k += (size_t)snprintf(exp + k, sizeof exp - k, "%s%s", shown ? ", " : "", d);
			shown++;
		}
		if (!shown)
			exp[0] = 0;
	}
	if (c->virtual_semi || !t.z)
		st->error = ctx_printf(c, "incomplete input at line %u, column %u%s%s",
				       (unsigned)st->error_pos.line, (unsigned)st->error_pos.col,
				       exp[0] ? ": " : "", exp);
	else
		st->error = ctx_printf(c, "near \"%.*s\": syntax error at line %u, column %u%s%s",
				       (int)(t.n > 64 ? 64 : t.n), t.z,
				       (unsigned)st->error_pos.line, (unsigned)st->error_pos.col,
				       exp[0] ? ": " : "", exp);
}

void build_overflow(struct sql_ctx *c)
{
	if (c->failed)
		return;
	c->failed = true;
	c->has_cmd = true;
	c->st.kind = SQL_ERROR;
	c->st.error_pos = pos_of(c, off_of(c, c->cur_tok));
	c->st.error = ctx_printf(c, "parser stack overflow (expression nested too deeply) at line %u, column %u",
				 (unsigned)c->st.error_pos.line, (unsigned)c->st.error_pos.col);
}

/* ------------------------------------------------------- names and tables */

/* Only the main schema exists on a replica; temp and attached ones are
 * replica-local. */
void build_schema_name(struct sql_ctx *c, struct sql_token *db)
{
	if (!db)
		return;
	char *s = dequote(c, *db, true);
	if (strcmp(s, "main") == 0)
		return;
	if (strcmp(s, "temp") == 0)
		refuse_at(c, off_of(c, *db), "the temp schema is replica-local: temp objects are refused");
	else
		refuse_at(c, off_of(c, *db), ctx_printf(c, "schema \"%s\": only the main schema exists on a replica (ATTACH is refused)", s));
}

static const char *table_name(struct sql_ctx *c, struct sql_token *db, struct sql_token name)
{
	build_schema_name(c, db);
	if (db)
		return ctx_printf(c, "%s.%s", dequote(c, *db, false), dequote(c, name, false));
	return dequote(c, name, false);
}

void build_table_read(struct sql_ctx *c, struct sql_token *db, struct sql_token name)
{
	/* eponymous table-valued functions may be named without arguments */
	if ((name.n > 7 && strncasecmp(name.z, "pragma_", 7) == 0) ||
	    (name.n == 9 && (strncasecmp(name.z, "json_each", 9) == 0 || strncasecmp(name.z, "json_tree", 9) == 0))) {
		build_table_function(c, db, name);
		return;
	}
	const char *t = table_name(c, db, name);
	if (db == NULL || strcasecmp(dequote(c, *db, false), "main") == 0)
		local_note(c, dequote(c, name, false), false, off_of(c, name));
	set_add(c, &c->rd, t);
}

void build_table_written(struct sql_ctx *c, struct sql_token *db, struct sql_token name)
{
	set_add(c, &c->wr, table_name(c, db, name));
}

void build_cte(struct sql_ctx *c, struct sql_token name)
{
	set_add(c, &c->cte, dequote(c, name, false));
}

/* TEMP before TABLE, VIEW or TRIGGER: which one is known later
 * (build_create, build_create_trigger). */
void build_temp(struct sql_ctx *c, struct sql_token t)
{
	c->st.temp = true;
	c->temp_off = off_of(c, t);
}

void build_refuse_vacuum(struct sql_ctx *c, struct sql_token t)
{
	refuse_at(c, off_of(c, t),
		  "VACUUM is refused: a replica applies every write inside one transaction, where SQLite cannot "
		  "vacuum (it would fail on every replica)");
}

void build_refuse(struct sql_ctx *c, struct sql_token t, const char *what)
{
	refuse_at(c, off_of(c, t), ctx_printf(c, "%s is refused: it cannot be made deterministic", what));
}

static bool schema_exists(struct sql_ctx *c, char type, const char *name)
{
	if (!c->schema || !c->schema->exists)
		return false;
	return c->schema->exists(c->schema->arg, type, name);
}

void build_create(struct sql_ctx *c, char type, int if_not_exists, struct sql_token *db, struct sql_token name)
{
	build_kind(c, SQL_SCHEMA);
	build_table_written(c, db, name);
	c->st.object = dequote(c, name, false);
	c->st.object_type = type;
	if (type == 't' && c->st.temp)
		refuse_at(c, c->temp_off,
			  "CREATE TEMP TABLE is refused: its rows would live on one replica only "
			  "(TEMP VIEW and TEMP TRIGGER are kept for the client's session)");
	(void)if_not_exists; /* SQLite 3.40 compiles these as writes either way */
}

void build_create_index(struct sql_ctx *c, int if_not_exists, struct sql_token *db, struct sql_token name, struct sql_token table)
{
	build_kind(c, SQL_SCHEMA);
	build_schema_name(c, db);
	build_table_written(c, db, table);
	c->st.object = dequote(c, name, false);
	c->st.object_type = 'i';
	(void)if_not_exists; /* a write either way, as in SQLite 3.40 */
}

void build_create_trigger(struct sql_ctx *c, int if_not_exists, struct sql_token *db, struct sql_token name, struct sql_node *table)
{
	build_kind(c, SQL_SCHEMA);
	build_schema_name(c, db);
	/* the trigger's table first: tables_written[0] (sql.h) */
	if (table)
		build_table_written(c, NULL, table->t);
	c->st.object = dequote(c, name, false);
	c->st.object_type = 'r';
	if (if_not_exists && c->schema)
		c->maybe_readonly = schema_exists(c, 'r', dequote(c, name, false));
}

void build_drop(struct sql_ctx *c, char type, int if_exists, struct sql_node *name)
{
	build_kind(c, SQL_SCHEMA);
	if (!name)
		return;
	build_table_written(c, NULL, name->t);
	c->st.object = dequote(c, name->t, false);
	c->st.object_type = type;
	/* SQLite 3.40 compiles DROP TRIGGER IF EXISTS of a missing trigger as
	 * a read-only no-op; every other DROP is a write either way */
	if (type == 'r' && if_exists && c->schema)
		c->maybe_readonly = !schema_exists(c, type, dequote(c, name->t, false));
}

/*
 * PRAGMAs: allowed ones read the schema or change replicated state; the
 * others change replica-local state or read the file system and are refused
 * (doc/sql.md lists each with its reason).  'r' read only, 'w' may be set
 * (a replicated write), 'q' read only but takes an argument, 'm' a
 * Metronome PRAGMA: cluster state a replica keeps in mtr_meta, read, or set
 * by an ordered item (doc/sql.md "Cluster PRAGMAs"); no pragma_X form.
 */
static const struct {
	const char *name;
	char mode;
} pragmas_allowed[] = {
	{ "application_id", 'w' }, { "collation_list", 'r' },
	{ "compile_options", 'r' }, { "foreign_key_check", 'q' },
	{ "foreign_key_list", 'q' }, { "function_list", 'r' },
	{ "index_info", 'q' }, { "index_list", 'q' }, { "index_xinfo", 'q' },
	{ "integrity_check", 'q' }, { "module_list", 'r' },
	{ "pragma_list", 'r' }, { "quick_check", 'q' },
	{ "schema_version", 'r' }, { "table_info", 'q' }, { "table_list", 'q' },
	{ "table_xinfo", 'q' }, { "user_version", 'w' }, { "encoding", 'r' },
	{ "mtr_max_steps", 'm' }, { "foreign_keys", 'm' },
};

void build_pragma(struct sql_ctx *c, struct sql_token *db, struct sql_token name, bool has_value)
{
	build_kind(c, SQL_READ);
	build_schema_name(c, db);
	char *s = dequote(c, name, true);
	for (size_t i = 0; i < sizeof pragmas_allowed / sizeof pragmas_allowed[0]; i++) {
		if (strcmp(s, pragmas_allowed[i].name) != 0)
			continue;
		char m = pragmas_allowed[i].mode;
		if (has_value && m == 'r')
			break; /* setting a read-only one: refused below */
		if (has_value && (m == 'w' || m == 'm')) {
			build_kind(c, SQL_WRITE);
			c->st.readonly = false;
		}
		return;
	}
	refuse_at(c, off_of(c, name), ctx_printf(c, "PRAGMA %s%s is refused: it changes replica-local state, reads the file system or is unknown",
					       s, has_value ? " with a value" : ""));
}

void build_likeop(struct sql_ctx *c, struct sql_token op)
{
	if (op.n == 6 && strncasecmp(op.z, "regexp", 6) == 0) {
		set_add(c, &c->fn, "regexp");
		refuse_at(c, off_of(c, op), "REGEXP needs the user function regexp(), which a Metronome server does not provide");
	}
}

/*
 * Table-valued functions: json_each/json_tree are known functions;
 * pragma_NAME follows the PRAGMA allow-list (read forms only); anything else
 * is an unknown function.
 */
void build_table_function(struct sql_ctx *c, struct sql_token *db, struct sql_token name)
{
	build_schema_name(c, db);
	char *fname = dequote(c, name, true);
	uint32_t off = off_of(c, name);
	set_add(c, &c->fn, fname);
	local_note(c, fname, false, off);
	if (strncmp(fname, "pragma_", 7) == 0) {
		for (size_t i = 0; i < sizeof pragmas_allowed / sizeof pragmas_allowed[0]; i++)
			if (strcmp(fname + 7, pragmas_allowed[i].name) == 0 && pragmas_allowed[i].mode != 'm')
				return;
		refuse_at(c, off, ctx_printf(c, "%s() is refused: PRAGMA %s changes replica-local state, reads the file system or is unknown",
					     fname, fname + 7));
	} else if (strcmp(fname, "json_each") != 0 && strcmp(fname, "json_tree") != 0) {
		refuse_at(c, off, ctx_printf(c, "unknown table-valued function %s(): a Metronome server does not provide it", fname));
	}
}

void build_default_nondet(struct sql_ctx *c, struct sql_node *e)
{
	/* Functions and CURRENT_* inside a DEFAULT were recorded when they were
	 * parsed; nothing else to do, the hook makes the grammar explicit. */
	(void)c;
	(void)e;
}

/* ------------------------------------------------------- expressions */

struct sql_node *build_node(struct sql_ctx *c, int op, struct sql_node *a, struct sql_node *b)
{
	struct sql_node *n = ctx_alloc(c, sizeof *n);
	if (!n)
		return NULL;
	n->op = op;
	n->t.z = NULL;
	n->t.n = 0;
	n->a = a;
	n->b = b;
	n->next = NULL;
	return n;
}

struct sql_node *build_leaf(struct sql_ctx *c, int op, struct sql_token t)
{
	struct sql_node *n = build_node(c, op, NULL, NULL);
	if (n)
		n->t = t;
	return n;
}

struct sql_node *build_select(struct sql_ctx *c)
{
	return build_node(c, N_SELECT, NULL, NULL);
}

struct sql_node *build_list(struct sql_ctx *c, struct sql_node *list, struct sql_node *e)
{
	if (!list) {
		list = build_node(c, N_LIST, NULL, NULL);
		if (!list)
			return NULL;
	}
	if (!e)
		e = build_node(c, N_EXPR, NULL, NULL);
	if (!e)
		return list;
	if (list->b)
		list->b->next = e;
	else
		list->a = e;
	list->b = e;
	return list;
}

/*
 * Parameters are numbered as SQLite numbers them: ?NNN is NNN, a name seen
 * before reuses its number, anything else takes the largest number so far
 * plus one (sqlite3ExprAssignVarNumber).
 */
struct sql_node *build_param(struct sql_ctx *c, struct sql_token t)
{
	struct sql_param *p = NULL;
	int number = 0;
	const char *name = NULL;
	if (t.n == 1) {
		number = c->st.max_param + 1;
	} else if (t.z[0] == '?') {
		long v = 0;
		for (uint32_t i = 1; i < t.n && v <= 32766; i++)
			v = v * 10 + (t.z[i] - '0');
		if (v < 1 || v > 32766) {
			c->failed = true;
			c->has_cmd = true;
			c->st.kind = SQL_ERROR;
			c->st.error_pos = pos_of(c, off_of(c, t));
			c->st.error = ctx_printf(c, "variable number must be between ?1 and ?32766 at line %u, column %u",
						 (unsigned)c->st.error_pos.line, (unsigned)c->st.error_pos.col);
			return build_leaf(c, TK_VARIABLE, t);
		}
		number = (int)v;
		name = ctx_printf(c, "%.*s", (int)t.n, t.z);
	} else {
		name = ctx_printf(c, "%.*s", (int)t.n, t.z);
		int k = set_find(&c->pn, name);
		if (k >= 0 && (unsigned)k < c->pnum.n) {
			number = ((int *)c->pnum.v)[k];
		} else {
			number = c->st.max_param + 1;
			unsigned before = c->pn.n;
			set_add(c, &c->pn, name);
			int *slot = c->pn.n > before ? vec_push(c, &c->pnum, sizeof *slot) : NULL;
			if (slot)
				*slot = number;
		}
	}
	if (number > c->st.max_param)
		c->st.max_param = number;
	p = vec_push(c, &c->par, sizeof *p);
	if (p) {
		p->name = name;
		p->number = number;
		p->pos = pos_of(c, off_of(c, t));
	}
	return build_leaf(c, TK_VARIABLE, t);
}

static void nondet_add(struct sql_ctx *c, uint32_t off, const char *what)
{
	struct sql_nondet *d = vec_push(c, &c->nd, sizeof *d);
	if (d) {
		d->what = what;
		d->pos = pos_of(c, off);
	}
}

struct sql_node *build_ctime(struct sql_ctx *c, struct sql_token t)
{
	char *s = dequote(c, t, false);
	for (char *p = s; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	nondet_add(c, off_of(c, t), s);
	return build_leaf(c, N_EXPR, t);
}

/* True when node e is the string literal 'now' (any case, as SQLite). */
static bool is_now(const struct sql_node *e)
{
	return e && e->op == TK_STRING && e->t.n == 5 && strncasecmp(e->t.z + 1, "now", 3) == 0;
}

struct sql_node *build_func(struct sql_ctx *c, struct sql_token name, struct sql_node *args, bool star)
{
	char *fname = dequote(c, name, true);
	uint32_t off = off_of(c, name);
	(void)star;
	set_add(c, &c->fn, fname);
	local_note(c, fname, true, off);
	unsigned nargs = 0;
	struct sql_node *a0 = NULL, *a1 = NULL;
	if (args) {
		a0 = args->a;
		a1 = a0 ? a0->next : NULL;
		for (struct sql_node *e = args->a; e; e = e->next)
			nargs++;
	}
	if (strcmp(fname, "load_extension") == 0) {
		refuse_at(c, off, "load_extension() is refused: a replica loads no code");
	} else if (!sql_function_known(fname, strlen(fname))) {
		refuse_at(c, off, ctx_printf(c, "unknown function %s(): a Metronome server does not provide it", fname));
	} else if (strcmp(fname, "random") == 0 || strcmp(fname, "randomblob") == 0) {
		nondet_add(c, off, ctx_printf(c, "%s()", fname));
	} else if (strcmp(fname, "date") == 0 || strcmp(fname, "time") == 0 ||
		   strcmp(fname, "datetime") == 0 || strcmp(fname, "julianday") == 0 ||
		   strcmp(fname, "unixepoch") == 0) {
		if (nargs == 0)
			nondet_add(c, off, ctx_printf(c, "%s()", fname));
		else if (is_now(a0))
			nondet_add(c, off, ctx_printf(c, "%s('now')", fname));
	} else if (strcmp(fname, "strftime") == 0) {
		if (nargs == 1)
			nondet_add(c, off, "strftime(format)");
		else if (is_now(a1))
			nondet_add(c, off, "strftime(format, 'now')");
	}
	struct sql_node *n = build_node(c, N_FUNC, args, NULL);
	if (n)
		n->t = name;
	return n;
}

/* ------------------------------------------------------- known functions */

/* The functions a Metronome server provides: SQLite 3.40's built-ins,
 * aggregates, window functions, math, date/time and JSON1. */
static const char *const known_functions[] = {
	"abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "avg",
	"ceil", "ceiling", "changes", "char", "coalesce", "cos", "cosh", "count",
	"cume_dist", "date", "datetime", "degrees", "dense_rank", "exp",
	"first_value", "floor", "format", "glob", "group_concat", "hex", "ifnull",
	"iif", "instr", "json", "json_array", "json_array_length", "json_each",
	"json_extract", "json_group_array", "json_group_object", "json_insert",
	"json_object", "json_patch", "json_quote", "json_remove", "json_replace",
	"json_set", "json_tree", "json_type", "json_valid", "julianday", "lag",
	"last_insert_rowid", "last_value", "lead", "length", "like", "likelihood",
	"likely", "ln", "load_extension", "log", "log10", "log2", "lower",
	"ltrim", "max", "min", "mod", "nth_value", "ntile", "nullif",
	"percent_rank", "pi", "pow", "power", "printf", "quote", "radians",
	"random", "randomblob", "rank", "replace", "round", "row_number", "rtrim",
	"sign", "sin", "sinh", "sqlite_compileoption_get",
	"sqlite_compileoption_used", "sqlite_source_id", "sqlite_version", "sqrt",
	"strftime", "substr", "substring", "sum", "tan", "tanh", "time", "total",
	"total_changes", "trim", "trunc", "typeof", "unicode", "unixepoch",
	"unlikely", "upper", "zeroblob",
};

bool sql_function_known(const char *name, size_t len)
{
	if (len == 0 || len > 32)
		return false;
	char low[33];
	for (size_t i = 0; i < len; i++)
		low[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
	low[len] = 0;
	size_t lo = 0, hi = sizeof known_functions / sizeof known_functions[0];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(low, known_functions[mid]);
		if (r == 0)
			return true;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/* ------------------------------------------------------- the driver */

static void feed(struct sql_ctx *c, void *parser, int code, struct sql_token t)
{
	c->cur_tok = t;
	c->parser = parser;
	sqlParser(parser, code, t, c);
}

/* The code of the next token that is no space or comment (0 at the end). */
static int next_code(const char *text, size_t len, size_t pos)
{
	while (pos < len) {
		uint32_t n;
		int code = sql_token(text + pos, len - pos, &n);
		if (code != TK_SPACE && code != TK_COMMENT)
			return code;
		pos += n;
	}
	return 0;
}

static size_t skip_space(const char *text, size_t len, size_t pos)
{
	while (pos < len) {
		uint32_t n;
		int code = sql_token(text + pos, len - pos, &n);
		if (code != TK_SPACE && code != TK_COMMENT)
			break;
		pos += n;
	}
	return pos;
}

static bool idlike(int code)
{
	return code == TK_ID || code == TK_STRING || code == TK_JOIN_KW || code == TK_INDEXED;
}

/*
 * WINDOW, OVER and FILTER are keywords only where the context says so (as in
 * SQLite, which cannot use %fallback for them without ambiguity): WINDOW
 * when a name and AS follow, OVER after ')' when '(' or a name follows,
 * FILTER after ')' when '(' follows.  Elsewhere they are identifiers.
 */
static int window_keyword(const char *text, size_t len, size_t after, int code, int prev)
{
	int n1 = next_code(text, len, after);
	if (code == TK_WINDOW) {
		if (n1 == 0 || n1 == TK_SEMI || n1 == TK_LP || n1 == TK_RP || n1 == TK_COMMA)
			return TK_ID;
		size_t p = skip_space(text, len, after);
		uint32_t n;
		(void)sql_token(text + p, len - p, &n);
		return next_code(text, len, p + n) == TK_AS ? TK_WINDOW : TK_ID;
	}
	if (prev != TK_RP)
		return TK_ID;
	if (code == TK_OVER)
		return (n1 == TK_LP || idlike(n1)) ? TK_OVER : TK_ID;
	return n1 == TK_LP ? TK_FILTER : TK_ID;
}

const char *sql_kind_name(enum sql_kind kind)
{
	static const char *const names[] = { "read", "write", "schema", "txn", "refused", "error" };
	return (unsigned)kind < 6 ? names[kind] : "error";
}

int sql_parse(const char *text, size_t len, struct sql_result **out)
{
	return sql_parse_ex(text, len, NULL, out);
}

int sql_parse_ex(const char *text, size_t len, const struct sql_schema *schema,
		 struct sql_result **out)
{
	if (!out || (!text && len))
		return MTR_EINVAL;
	*out = NULL;
	if (len > UINT32_MAX - 1)
		return MTR_ETOOBIG;
	struct sql_ctx c;
	memset(&c, 0, sizeof c);
	c.arena = sql_arena_new();
	if (!c.arena)
		return MTR_ENOMEM;
	c.text = text ? text : "";
	c.len = len;
	c.schema = schema;
	for (size_t i = 0; i < len; i++)
		if (c.text[i] == '\n')
			c.n_lines++;
	if (c.n_lines) {
		c.lines = ctx_alloc(&c, c.n_lines * sizeof *c.lines);
		if (!c.lines) {
			sql_arena_free(c.arena);
			return MTR_ENOMEM;
		}
		uint32_t k = 0;
		for (size_t i = 0; i < len; i++)
			if (c.text[i] == '\n')
				c.lines[k++] = (uint32_t)(i + 1);
	}
	stmt_reset(&c);
	void *parser = sqlParserAlloc(malloc);
	if (!parser) {
		sql_arena_free(c.arena);
		return MTR_ENOMEM;
	}

	/*
	 * Statement boundaries are found here, not by the grammar's reduction
	 * of "ecmd ::= cmdx SEMI" (lemon performs it only when the next token
	 * arrives): a ';' ends the statement unless it is inside the body of a
	 * CREATE TRIGGER, which ends at the END that closes no CASE.
	 */
	size_t pos = 0;
	unsigned ntok = 0, case_depth = 0;
	int tok1 = 0, tok2 = 0; /* the first significant tokens (EXPLAIN skipped) */
	bool trigger = false, body_done = false;
	int prev_code = 0;
	while (pos < len && !c.nomem) {
		uint32_t n;
		int code = sql_token(c.text + pos, len - pos, &n);
		struct sql_token t = { c.text + pos, n };
		if (code == TK_SPACE || code == TK_COMMENT) {
			pos += n;
			continue;
		}
		if (!c.in_stmt) {
			c.in_stmt = true;
			c.start = (uint32_t)pos;
			ntok = case_depth = 0;
			tok1 = tok2 = 0;
			trigger = body_done = false;
		}
		if (code != TK_EXPLAIN && code != TK_QUERY && code != TK_PLAN && code != TK_SEMI) {
			if (ntok == 0)
				tok1 = code;
			else if (ntok == 1)
				tok2 = code;
			else if (ntok == 2 && tok1 == TK_CREATE && tok2 == TK_TEMP)
				tok2 = code;
			ntok++;
			trigger = tok1 == TK_CREATE && tok2 == TK_TRIGGER;
			if (trigger && code == TK_CASE)
				case_depth++;
			else if (trigger && code == TK_END)
				body_done = case_depth == 0 ? true : (case_depth--, false);
		}
		bool ends = code == TK_SEMI && (!trigger || body_done);
		pos += n;
		if (code == TK_WINDOW || code == TK_OVER || code == TK_FILTER)
			code = window_keyword(c.text, len, pos, code, prev_code);
		prev_code = code;
		if (code != TK_SEMI)
			c.last_end = (uint32_t)pos;
		if (code == TK_ILLEGAL) {
			c.failed = true;
			c.has_cmd = true;
			c.st.kind = SQL_ERROR;
			c.st.error_pos = pos_of(&c, off_of(&c, t));
			c.st.error = ctx_printf(&c, "unrecognized token: \"%.*s\" at line %u, column %u",
						(int)(n > 64 ? 64 : n), t.z,
						(unsigned)c.st.error_pos.line, (unsigned)c.st.error_pos.col);
		} else if (!c.failed) {
			feed(&c, parser, code, t);
		}
		if (!ends)
			continue;
		if (c.failed) {
			stmt_finish(&c, true);
			sql_parser_reset(parser);
		} else if (c.has_cmd) {
			stmt_finish(&c, false);
		} else {
			stmt_reset(&c);
		}
	}
	if (c.in_stmt && !c.nomem) {
		/* a last statement without ';' */
		struct sql_token t = { NULL, 0 };
		c.virtual_semi = true;
		if (!c.failed)
			feed(&c, parser, TK_SEMI, t);
		if (c.failed)
			stmt_finish(&c, true);
		else if (c.has_cmd)
			stmt_finish(&c, false);
		else
			stmt_reset(&c);
	}
	if (!c.nomem && !c.failed) {
		struct sql_token t = { NULL, 0 };
		feed(&c, parser, 0, t);
	}
	sqlParserFree(parser, free);

	struct sql_result *res = ctx_alloc(&c, sizeof *res);
	if (c.nomem || !res) {
		sql_arena_free(c.arena);
		return MTR_ENOMEM;
	}
	memset(res, 0, sizeof *res);
	res->arena = c.arena;
	res->stmts = c.stmts.v;
	res->n_stmts = c.stmts.n;
	res->ok = true;
	bool begin = false;
	for (unsigned i = 0; i < res->n_stmts; i++) {
		if (res->stmts[i].kind == SQL_ERROR || res->stmts[i].kind == SQL_REFUSED)
			res->ok = false;
		if (res->stmts[i].txn == SQL_TXN_BEGIN)
			begin = true;
	}
	res->one_item = res->n_stmts > 1 || begin;
	*out = res;
	return 0;
}

void sql_result_free(struct sql_result *res)
{
	if (res)
		sql_arena_free(res->arena); /* res itself lives in the arena */
}

/* ------------------------------------------------------- JSON */

struct jbuf {
	char *p;
	size_t cap, n;
};

static void jc(struct jbuf *b, char ch)
{
	if (b->n + 1 < b->cap)
		b->p[b->n] = ch;
	b->n++;
}

static void js(struct jbuf *b, const char *s)
{
	while (*s)
		jc(b, *s++);
}

/* A JSON string: quotes, backslash and control characters escaped; bytes
 * >= 0x80 are passed through (the input is taken as UTF-8). */
static void jstr(struct jbuf *b, const char *s)
{
	jc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			jc(b, '\\');
			jc(b, (char)*p);
		} else if (*p == '\n') {
			js(b, "\\n");
		} else if (*p == '\t') {
			js(b, "\\t");
		} else if (*p == '\r') {
			js(b, "\\r");
		} else if (*p < 0x20 || *p == 0x7f) {
			char u[8];
			snprintf(u, sizeof u, "\\u%04x", *p);
			js(b, u);
		} else {
			jc(b, (char)*p);
		}
	}
	jc(b, '"');
}

static void jarr(struct jbuf *b, const char *key, const char **a, unsigned n)
{
	jc(b, '"');
	js(b, key);
	js(b, "\":[");
	for (unsigned i = 0; i < n; i++) {
		if (i)
			jc(b, ',');
		jstr(b, a[i]);
	}
	jc(b, ']');
}

size_t sql_stmt_json(const struct sql_stmt *st, char *buf, size_t cap)
{
	struct jbuf b = { buf, cap, 0 };
	char num[64];
	snprintf(num, sizeof num, "{\"line\":%u,\"col\":%u,\"kind\":", (unsigned)st->pos.line, (unsigned)st->pos.col);
	js(&b, num);
	jstr(&b, sql_kind_name(st->kind));
	jc(&b, ',');
	jarr(&b, "tables_read", st->tables_read, st->n_tables_read);
	jc(&b, ',');
	jarr(&b, "tables_written", st->tables_written, st->n_tables_written);
	jc(&b, ',');
	jarr(&b, "functions", st->functions, st->n_functions);
	js(&b, ",\"nondeterministic\":[");
	for (unsigned i = 0; i < st->n_nondet; i++) {
		if (i)
			jc(&b, ',');
		js(&b, "{\"what\":");
		jstr(&b, st->nondet[i].what);
		snprintf(num, sizeof num, ",\"line\":%u,\"col\":%u}",
			 (unsigned)st->nondet[i].pos.line, (unsigned)st->nondet[i].pos.col);
		js(&b, num);
	}
	js(&b, st->temp ? "],\"temp\":true,\"error\":" : "],\"error\":");
	if (st->error)
		jstr(&b, st->error);
	else
		js(&b, "null");
	jc(&b, '}');
	if (cap)
		b.p[b.n < cap ? b.n : cap - 1] = 0;
	return b.n;
}
