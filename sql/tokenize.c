/*
 * tokenize.c - the hand-written SQL tokenizer.
 *
 * One call reads one token and returns its code (TK_* from the generated
 * parse.h).  It follows the token rules of SQLite 3.40: every quoting form
 * ('str', "id", `id`, [id]), blobs x'hex', decimal, real and hex (0x...)
 * numbers, comments (-- and C style, an unterminated C comment runs to the
 * end), parameters (?, ?NNN, :name, @name, $name, #name, with the TCL forms
 * $a::b and $a(x)) and the operators.  Keywords are found with a small
 * hash table built once at load time; no allocation happens per token.
 */
#include "config.h"

#include <string.h>

#include "sql.h"
#include "sql_int.h"
#include "parse.h"

/* Character classes, indexed by byte. */
enum { C_OTHER = 0, C_SPACE, C_DIGIT, C_ALPHA, C_HIGH };
static unsigned char cls[256];

/* True for bytes that may continue an identifier. */
static inline int idchar(unsigned char c)
{
	return cls[c] == C_DIGIT || cls[c] == C_ALPHA || cls[c] == C_HIGH || c == '$';
}

static inline unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static inline int hexdigit(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ---- keywords ---- */

static const struct kw {
	const char *name;
	int code;
} keywords[] = {
	{ "ABORT", TK_ABORT }, { "ACTION", TK_ACTION }, { "ADD", TK_ADD },
	{ "AFTER", TK_AFTER }, { "ALL", TK_ALL }, { "ALTER", TK_ALTER },
	{ "ALWAYS", TK_ALWAYS }, { "ANALYZE", TK_ANALYZE }, { "AND", TK_AND },
	{ "AS", TK_AS }, { "ASC", TK_ASC }, { "ATTACH", TK_ATTACH },
	{ "AUTOINCREMENT", TK_AUTOINCR }, { "BEFORE", TK_BEFORE },
	{ "BEGIN", TK_BEGIN }, { "BETWEEN", TK_BETWEEN }, { "BY", TK_BY },
	{ "CASCADE", TK_CASCADE }, { "CASE", TK_CASE }, { "CAST", TK_CAST },
	{ "CHECK", TK_CHECK }, { "COLLATE", TK_COLLATE },
	{ "COLUMN", TK_COLUMNKW }, { "COMMIT", TK_COMMIT },
	{ "CONFLICT", TK_CONFLICT }, { "CONSTRAINT", TK_CONSTRAINT },
	{ "CREATE", TK_CREATE }, { "CROSS", TK_JOIN_KW },
	{ "CURRENT", TK_CURRENT }, { "CURRENT_DATE", TK_CTIME_KW },
	{ "CURRENT_TIME", TK_CTIME_KW }, { "CURRENT_TIMESTAMP", TK_CTIME_KW },
	{ "DATABASE", TK_DATABASE }, { "DEFAULT", TK_DEFAULT },
	{ "DEFERRABLE", TK_DEFERRABLE }, { "DEFERRED", TK_DEFERRED },
	{ "DELETE", TK_DELETE }, { "DESC", TK_DESC }, { "DETACH", TK_DETACH },
	{ "DISTINCT", TK_DISTINCT }, { "DO", TK_DO }, { "DROP", TK_DROP },
	{ "EACH", TK_EACH }, { "ELSE", TK_ELSE }, { "END", TK_END },
	{ "ESCAPE", TK_ESCAPE }, { "EXCEPT", TK_EXCEPT },
	{ "EXCLUDE", TK_EXCLUDE }, { "EXCLUSIVE", TK_EXCLUSIVE },
	{ "EXISTS", TK_EXISTS }, { "EXPLAIN", TK_EXPLAIN }, { "FAIL", TK_FAIL },
	{ "FILTER", TK_FILTER }, { "FIRST", TK_FIRST },
	{ "FOLLOWING", TK_FOLLOWING }, { "FOR", TK_FOR },
	{ "FOREIGN", TK_FOREIGN }, { "FROM", TK_FROM }, { "FULL", TK_JOIN_KW },
	{ "GENERATED", TK_GENERATED }, { "GLOB", TK_LIKE_KW },
	{ "GROUP", TK_GROUP }, { "GROUPS", TK_GROUPS }, { "HAVING", TK_HAVING },
	{ "IF", TK_IF }, { "IGNORE", TK_IGNORE }, { "IMMEDIATE", TK_IMMEDIATE },
	{ "IN", TK_IN }, { "INDEX", TK_INDEX }, { "INDEXED", TK_INDEXED },
	{ "INITIALLY", TK_INITIALLY }, { "INNER", TK_JOIN_KW },
	{ "INSERT", TK_INSERT }, { "INSTEAD", TK_INSTEAD },
	{ "INTERSECT", TK_INTERSECT }, { "INTO", TK_INTO }, { "IS", TK_IS },
	{ "ISNULL", TK_ISNULL }, { "JOIN", TK_JOIN }, { "KEY", TK_KEY },
	{ "LAST", TK_LAST }, { "LEFT", TK_JOIN_KW }, { "LIKE", TK_LIKE_KW },
	{ "LIMIT", TK_LIMIT }, { "MATCH", TK_MATCH },
	{ "MATERIALIZED", TK_MATERIALIZED }, { "NATURAL", TK_JOIN_KW },
	{ "NO", TK_NO }, { "NOT", TK_NOT }, { "NOTHING", TK_NOTHING },
	{ "NOTNULL", TK_NOTNULL }, { "NULL", TK_NULL }, { "NULLS", TK_NULLS },
	{ "OF", TK_OF }, { "OFFSET", TK_OFFSET }, { "ON", TK_ON }, { "OR", TK_OR },
	{ "ORDER", TK_ORDER }, { "OTHERS", TK_OTHERS }, { "OUTER", TK_JOIN_KW },
	{ "OVER", TK_OVER }, { "PARTITION", TK_PARTITION }, { "PLAN", TK_PLAN },
	{ "PRAGMA", TK_PRAGMA }, { "PRECEDING", TK_PRECEDING },
	{ "PRIMARY", TK_PRIMARY }, { "QUERY", TK_QUERY }, { "RAISE", TK_RAISE },
	{ "RANGE", TK_RANGE }, { "RECURSIVE", TK_RECURSIVE },
	{ "REFERENCES", TK_REFERENCES }, { "REGEXP", TK_LIKE_KW },
	{ "REINDEX", TK_REINDEX }, { "RELEASE", TK_RELEASE },
	{ "RENAME", TK_RENAME }, { "REPLACE", TK_REPLACE },
	{ "RESTRICT", TK_RESTRICT }, { "RETURNING", TK_RETURNING },
	{ "RIGHT", TK_JOIN_KW }, { "ROLLBACK", TK_ROLLBACK }, { "ROW", TK_ROW },
	{ "ROWS", TK_ROWS }, { "SAVEPOINT", TK_SAVEPOINT },
	{ "SELECT", TK_SELECT }, { "SET", TK_SET }, { "TABLE", TK_TABLE },
	{ "TEMP", TK_TEMP }, { "TEMPORARY", TK_TEMP }, { "THEN", TK_THEN },
	{ "TIES", TK_TIES }, { "TO", TK_TO }, { "TRANSACTION", TK_TRANSACTION },
	{ "TRIGGER", TK_TRIGGER }, { "UNBOUNDED", TK_UNBOUNDED },
	{ "UNION", TK_UNION }, { "UNIQUE", TK_UNIQUE }, { "UPDATE", TK_UPDATE },
	{ "USING", TK_USING }, { "VACUUM", TK_VACUUM }, { "VALUES", TK_VALUES },
	{ "VIEW", TK_VIEW }, { "VIRTUAL", TK_VIRTUAL }, { "WHEN", TK_WHEN },
	{ "WHERE", TK_WHERE }, { "WINDOW", TK_WINDOW }, { "WITH", TK_WITH },
	{ "WITHOUT", TK_WITHOUT },
};

/*
 * Open-addressing table of indexes into keywords[] (+1; 0 = empty), 512
 * slots for 147 keywords.  The hash mixes the length and three bytes folded
 * to lower case, so that a lookup costs a few loads and one memcmp-like loop.
 */
#define KW_SLOTS 512
static unsigned char kw_table[KW_SLOTS];
static unsigned char kw_len[sizeof keywords / sizeof keywords[0]];

static inline unsigned kw_hash(const unsigned char *z, uint32_t n)
{
	return (n * 67u + lower(z[0]) * 7u + lower(z[n - 1]) * 3u + lower(z[n / 2]) * 131u) & (KW_SLOTS - 1);
}

__attribute__((constructor)) static void tokenize_init(void)
{
	for (int c = 0; c < 256; c++) {
		if (c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r')
			cls[c] = C_SPACE;
		else if (c >= '0' && c <= '9')
			cls[c] = C_DIGIT;
		else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
			cls[c] = C_ALPHA;
		else if (c >= 0x80)
			cls[c] = C_HIGH;
	}
	for (unsigned i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
		const unsigned char *z = (const unsigned char *)keywords[i].name;
		uint32_t n = (uint32_t)strlen(keywords[i].name);
		kw_len[i] = (unsigned char)n;
		unsigned h = kw_hash(z, n);
		while (kw_table[h])
			h = (h + 1) & (KW_SLOTS - 1);
		kw_table[h] = (unsigned char)(i + 1);
	}
}

/* The keyword code of z[0..n) or TK_ID. */
static int keyword_code(const unsigned char *z, uint32_t n)
{
	if (n < 2 || n > 17)
		return TK_ID;
	for (unsigned h = kw_hash(z, n);; h = (h + 1) & (KW_SLOTS - 1)) {
		unsigned k = kw_table[h];
		if (!k)
			return TK_ID;
		k--;
		if (kw_len[k] != n)
			continue;
		const char *w = keywords[k].name;
		uint32_t i = 0;
		while (i < n && (z[i] & ~0x20u) == (unsigned char)w[i])
			i++;
		/* the & ~0x20 fold maps some non-letters onto letters: check */
		if (i == n) {
			for (i = 0; i < n; i++)
				if (cls[z[i]] != C_ALPHA)
					return TK_ID;
			return keywords[k].code;
		}
	}
}

/* ---- the tokenizer ---- */

int sql_token(const char *text, size_t len, uint32_t *tlen)
{
	const unsigned char *z = (const unsigned char *)text;
	size_t i;
	unsigned char c = z[0];
#define AT(k) ((k) < len ? z[k] : 0)

	switch (c) {
	case ' ': case '\t': case '\n': case '\f': case '\r':
		for (i = 1; i < len && cls[z[i]] == C_SPACE; i++)
			;
		*tlen = (uint32_t)i;
		return TK_SPACE;
	case '-':
		if (AT(1) == '-') {
			for (i = 2; i < len && z[i] != '\n'; i++)
				;
			*tlen = (uint32_t)i;
			return TK_COMMENT;
		}
		if (AT(1) == '>') {
			*tlen = AT(2) == '>' ? 3 : 2;
			return TK_PTR;
		}
		*tlen = 1;
		return TK_MINUS;
	case '(': *tlen = 1; return TK_LP;
	case ')': *tlen = 1; return TK_RP;
	case ';': *tlen = 1; return TK_SEMI;
	case '+': *tlen = 1; return TK_PLUS;
	case '*': *tlen = 1; return TK_STAR;
	case '%': *tlen = 1; return TK_REM;
	case ',': *tlen = 1; return TK_COMMA;
	case '&': *tlen = 1; return TK_BITAND;
	case '~': *tlen = 1; return TK_BITNOT;
	case '/':
		if (AT(1) != '*') {
			*tlen = 1;
			return TK_SLASH;
		}
		for (i = 3; i < len && !(z[i - 1] == '*' && z[i] == '/'); i++)
			;
		*tlen = (uint32_t)(i < len ? i + 1 : len);
		return TK_COMMENT;
	case '=':
		*tlen = AT(1) == '=' ? 2 : 1;
		return TK_EQ;
	case '<':
		c = AT(1);
		if (c == '=') { *tlen = 2; return TK_LE; }
		if (c == '>') { *tlen = 2; return TK_NE; }
		if (c == '<') { *tlen = 2; return TK_LSHIFT; }
		*tlen = 1;
		return TK_LT;
	case '>':
		c = AT(1);
		if (c == '=') { *tlen = 2; return TK_GE; }
		if (c == '>') { *tlen = 2; return TK_RSHIFT; }
		*tlen = 1;
		return TK_GT;
	case '!':
		if (AT(1) == '=') { *tlen = 2; return TK_NE; }
		*tlen = 1;
		return TK_ILLEGAL;
	case '|':
		if (AT(1) == '|') { *tlen = 2; return TK_CONCAT; }
		*tlen = 1;
		return TK_BITOR;
	case '\'': case '"': case '`': {
		/* a doubled delimiter stands for one; unterminated is illegal */
		unsigned char q = c;
		for (i = 1; i < len; i++) {
			if (z[i] == q) {
				if (i + 1 < len && z[i + 1] == q) {
					i++;
					continue;
				}
				break;
			}
		}
		if (i >= len) {
			*tlen = (uint32_t)len;
			return TK_ILLEGAL;
		}
		*tlen = (uint32_t)(i + 1);
		return q == '\'' ? TK_STRING : TK_ID;
	}
	case '[':
		for (i = 1; i < len && z[i] != ']'; i++)
			;
		*tlen = (uint32_t)(i < len ? i + 1 : len);
		return i < len ? TK_ID : TK_ILLEGAL;
	case '.':
		if (cls[AT(1)] != C_DIGIT) {
			*tlen = 1;
			return TK_DOT;
		}
		/* fall through: a number like .5 */
		/* FALLTHRU */
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9': {
		int code = TK_INTEGER;
		i = 0;
		if (c == '0' && (AT(1) == 'x' || AT(1) == 'X') && hexdigit(AT(2))) {
			for (i = 3; i < len && hexdigit(z[i]); i++)
				;
		} else {
			while (i < len && cls[z[i]] == C_DIGIT)
				i++;
			if (i < len && z[i] == '.') {
				code = TK_FLOAT;
				for (i++; i < len && cls[z[i]] == C_DIGIT; i++)
					;
			}
			if (i < len && (z[i] == 'e' || z[i] == 'E') &&
			    (cls[AT(i + 1)] == C_DIGIT ||
			     ((AT(i + 1) == '+' || AT(i + 1) == '-') && cls[AT(i + 2)] == C_DIGIT))) {
				code = TK_FLOAT;
				for (i += 2; i < len && cls[z[i]] == C_DIGIT; i++)
					;
			}
		}
		/* a number glued to identifier characters is no token (1abc) */
		while (i < len && idchar(z[i])) {
			code = TK_ILLEGAL;
			i++;
		}
		*tlen = (uint32_t)i;
		return code;
	}
	case '?':
		for (i = 1; i < len && cls[z[i]] == C_DIGIT; i++)
			;
		*tlen = (uint32_t)i;
		return TK_VARIABLE;
	case '#':
		if (cls[AT(1)] == C_DIGIT) {
			*tlen = 1;
			return TK_ILLEGAL;
		}
		/* FALLTHRU */
	case ':': case '@': case '$': {
		/* :name, @name, $name, #name; TCL forms $a::b and $a(any) */
		int code = TK_VARIABLE;
		uint32_t n = 0;
		for (i = 1; i < len; i++) {
			c = z[i];
			if (idchar(c)) {
				n++;
			} else if (c == '(' && n > 0) {
				do {
					i++;
				} while (i < len && cls[z[i]] != C_SPACE && z[i] != ')');
				if (i < len && z[i] == ')')
					i++;
				else
					code = TK_ILLEGAL;
				break;
			} else if (c == ':' && AT(i + 1) == ':') {
				i++;
			} else {
				break;
			}
		}
		if (n == 0)
			code = TK_ILLEGAL;
		*tlen = (uint32_t)(i < len ? i : len);
		return code;
	}
	case 'x': case 'X':
		if (AT(1) == '\'') {
			for (i = 2; i < len && hexdigit(z[i]); i++)
				;
			if (i < len && z[i] == '\'' && (i % 2) == 0) {
				*tlen = (uint32_t)(i + 1);
				return TK_BLOB;
			}
			while (i < len && z[i] != '\'')
				i++;
			*tlen = (uint32_t)(i < len ? i + 1 : len);
			return TK_ILLEGAL;
		}
		/* FALLTHRU */
	default:
		if (cls[c] != C_ALPHA && cls[c] != C_HIGH) {
			*tlen = 1;
			return TK_ILLEGAL;
		}
		for (i = 1; i < len && idchar(z[i]); i++)
			;
		*tlen = (uint32_t)i;
		return cls[c] == C_ALPHA ? keyword_code(z, (uint32_t)i) : TK_ID;
	}
#undef AT
}
