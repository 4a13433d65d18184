/*
 * sql.h - the SQL front end as the rest of Metronome sees it.
 *
 * sql_parse() tokenizes and parses a text of one or more SQLite statements
 * (the dialect of SQLite 3.40, see doc/sql.md) and classifies every
 * statement: its kind, whether SQLite would call it read-only, the tables it
 * reads and writes, the functions it calls, its parameters, the
 * non-deterministic constructs it contains and, if it must be refused or is
 * wrong, why and where.  It also says whether the whole text has to travel as
 * one item (doc/determinism.md).  The front end is a pure core: no I/O, no
 * clock, no global state besides constant tables.
 *
 * Everything a result points to lives in one arena owned by the result and is
 * released by sql_result_free().
 */
#ifndef MTR_SQL_H
#define MTR_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a statement is, as the proxy needs to know it. */
enum sql_kind {
	SQL_READ = 0, /* SELECT, EXPLAIN, allowed PRAGMA reads */
	SQL_WRITE,    /* INSERT/REPLACE/UPDATE/DELETE, PRAGMA user_version=N */
	SQL_SCHEMA,   /* CREATE/DROP/ALTER, ANALYZE, REINDEX, VACUUM */
	SQL_TXN,      /* BEGIN/COMMIT/END/ROLLBACK/SAVEPOINT/RELEASE */
	SQL_REFUSED,  /* valid SQL that cannot be made deterministic */
	SQL_ERROR,    /* not valid SQL (syntax error) */
};

/* Transaction control detail of a SQL_TXN statement. */
enum sql_txn {
	SQL_TXN_NONE = 0,
	SQL_TXN_BEGIN,
	SQL_TXN_COMMIT, /* COMMIT or END */
	SQL_TXN_ROLLBACK, /* ROLLBACK without TO */
	SQL_TXN_SAVEPOINT,
	SQL_TXN_RELEASE,
	SQL_TXN_ROLLBACK_TO,
};

/* A position in the text: byte offset, 1-based line and column (bytes). */
struct sql_pos {
	uint32_t off, line, col;
};

/* One non-deterministic construct: what (e.g. "random()", "CURRENT_TIME",
 * "datetime('now')") and where it starts. */
struct sql_nondet {
	const char *what;
	struct sql_pos pos;
};

/*
 * One parameter slot, numbered as SQLite numbers them
 * (sqlite3_bind_parameter_index): ?NNN takes NNN, any other form takes the
 * largest number so far plus one, a repeated name reuses its number.  name is
 * the text as written ("?", "?3", ":a", "@a", "$a") and NULL for a bare "?".
 */
struct sql_param {
	const char *name;
	int number;
	struct sql_pos pos;
};

/* The classification of one statement.  Arrays have n_ counts; strings are
 * NUL-terminated, de-quoted identifiers (schema-qualified as "s.t"). */
struct sql_stmt {
	enum sql_kind kind;
	enum sql_txn txn;
	bool readonly;          /* agrees with sqlite3_stmt_readonly() */
	bool explain;           /* EXPLAIN [QUERY PLAN] prefix */
	bool temp;              /* CREATE TEMP VIEW / TEMP TRIGGER: a definition
				   the client keeps for its session (doc/sql.md) */
	uint32_t start, end;    /* span [start, end) in the text, ';' excluded */
	struct sql_pos pos;     /* of the first token */
	const char **tables_read;
	unsigned n_tables_read;
	const char **tables_written; /* CREATE TRIGGER: its table first */
	unsigned n_tables_written;
	const char *object;     /* CREATE / DROP: the name of the object (no schema) */
	char object_type;       /* and its type: 't' table, 'v' view, 'i' index,
				   'r' trigger; 0 for other statements */
	const char **functions; /* lower-cased, each once, in order of appearance */
	unsigned n_functions;
	struct sql_param *params;
	unsigned n_params;
	int max_param;          /* sqlite3_bind_parameter_count() */
	struct sql_nondet *nondet;
	unsigned n_nondet;
	const char *error;      /* SQL_ERROR/SQL_REFUSED: the message, else NULL */
	struct sql_pos error_pos;
};

/* The result of sql_parse(): statements in text order and the item decision. */
struct sql_result {
	struct sql_stmt *stmts;
	unsigned n_stmts;
	bool one_item;  /* true when the text must be sent as one item: it has
			   several statements or a BEGIN ... COMMIT group */
	bool ok;        /* no statement is SQL_ERROR or SQL_REFUSED */
	struct sql_arena *arena; /* private */
};

/*
 * Optional knowledge of the schema.  Only the read-only flag of
 * CREATE TRIGGER IF NOT EXISTS and DROP TRIGGER IF EXISTS depends on it
 * (SQLite 3.40 compiles them to a read-only no-op when the trigger already
 * exists, resp. does not exist; every other CREATE/DROP is a write either
 * way).  exists() answers for type 'r' trigger (other letters are reserved:
 * 't' table, 'v' view, 'i' index); without it such statements are writes.
 */
struct sql_schema {
	bool (*exists)(void *arg, char type, const char *name);
	void *arg;
};

/*
 * Parse and classify `len` bytes of `text` (need not be NUL-terminated).
 * On success *out is a result the caller frees with sql_result_free(), even
 * when statements in it are errors (those are reported per statement).
 * Returns 0, MTR_EINVAL (NULL arguments) or MTR_ENOMEM.
 */
int sql_parse(const char *text, size_t len, struct sql_result **out);

/* sql_parse() with schema knowledge (schema may be NULL). */
int sql_parse_ex(const char *text, size_t len, const struct sql_schema *schema,
		 struct sql_result **out);

/* Free a result and everything it points to (NULL is fine). */
void sql_result_free(struct sql_result *res);

/* "read", "write", "schema", "txn", "refused", "error" (static storage). */
const char *sql_kind_name(enum sql_kind kind);

/* True when `name` (any case) is a function a Metronome server provides. */
bool sql_function_known(const char *name, size_t len);

/*
 * Write the JSON line of one statement (no trailing newline) into buf of size
 * cap, as mtrparse prints it (doc/sql.md).  Returns the length it needs (like
 * snprintf): the output is complete only when that is < cap.
 */
size_t sql_stmt_json(const struct sql_stmt *st, char *buf, size_t cap);

/*
 * The tokenizer, exposed for tests and tools.  Reads one token of text[0..len)
 * and stores its length in *tlen; returns the token code (TK_* of the
 * generated parse.h, TK_SPACE/TK_COMMENT for white space and comments,
 * TK_ILLEGAL for bytes that are no token).  len must be > 0.
 */
int sql_token(const char *text, size_t len, uint32_t *tlen);

#endif /* MTR_SQL_H */
