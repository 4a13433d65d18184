/*
 * sql_int.h - private to sql/: the token type, the parse context and the
 * builder functions the grammar actions call (sql/build.c).  The grammar
 * (sql/parse.y) holds no logic: every action is one call to a build_*
 * function declared here.
 *
 * Memory: every node and string is allocated from the arena of the parse
 * (struct sql_arena, one growing chain of blocks freed at once).
 */
#ifndef MTR_SQL_INT_H
#define MTR_SQL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sql.h"

/* A token as the parser sees it: a slice of the input text. */
struct sql_token {
	const char *z;
	uint32_t n;
};

/* Arena: blocks chained, bump allocation, all freed in sql_arena_free(). */
struct sql_arena;
struct sql_arena *sql_arena_new(void);
void *sql_arena_alloc(struct sql_arena *a, size_t n); /* NULL on ENOMEM */
void sql_arena_free(struct sql_arena *a);

/* AST node kinds beyond the token codes (which are < 256). */
enum {
	N_FUNC = 300,  /* function call: t = name, a = argument list */
	N_LIST,        /* list head: a = first, b = last element */
	N_SELECT,      /* a SELECT/VALUES/compound */
	N_EXPR,        /* any other expression */
	N_NAME,        /* identifier or qualified name */
};

/* One AST node.  Expressions keep only what classification needs: the kind,
 * the token (literals, names), children and the list link. */
struct sql_node {
	int op;
	struct sql_token t;
	struct sql_node *a, *b;
	struct sql_node *next;
};

/* The parse context (lemon's %extra_argument); see build.c. */
struct sql_ctx;

/* ---- builder functions: called from grammar actions only ---- */

/* statements */
/* End of a statement in the grammar (the driver closes statements). */
void build_stmt_end(struct sql_ctx *c);
/* The statement has an EXPLAIN [QUERY PLAN] prefix. */
void build_explain(struct sql_ctx *c);
/* Set the statement's kind (a refusal or an error already set wins). */
void build_kind(struct sql_ctx *c, enum sql_kind kind);
/* A transaction control statement. */
void build_txn(struct sql_ctx *c, enum sql_txn txn);
/* lemon's %syntax_error: message with position and expected tokens. */
void build_syntax_error(struct sql_ctx *c, int major, struct sql_token t, const char *hint);
/* lemon's %stack_overflow: too deeply nested. */
void build_overflow(struct sql_ctx *c);

/* names and tables */
/* A table read / written; db is the schema token or NULL. */
void build_table_read(struct sql_ctx *c, struct sql_token *db, struct sql_token name);
void build_table_written(struct sql_ctx *c, struct sql_token *db, struct sql_token name);
/* A schema qualifier: refuses anything but main (temp, attached). */
void build_schema_name(struct sql_ctx *c, struct sql_token *db);
/* A WITH clause name: not a table for this statement. */
void build_cte(struct sql_ctx *c, struct sql_token name);
/* CREATE TEMP ...: refused at t. */
void build_temp(struct sql_ctx *c, struct sql_token t);
/* Refuse the statement at t, naming `what` (static or arena string). */
void build_refuse(struct sql_ctx *c, struct sql_token t, const char *what);
/* VACUUM: no replica can run it (it cannot run inside a transaction, and a
 * replica applies every item inside the instance's transaction). */
void build_refuse_vacuum(struct sql_ctx *c, struct sql_token t);
/* CREATE TABLE/VIEW ('t'/'v'), INDEX, TRIGGER; DROP of type t/v/i/r. */
void build_create(struct sql_ctx *c, char type, int if_not_exists, struct sql_token *db, struct sql_token name);
void build_create_index(struct sql_ctx *c, int if_not_exists, struct sql_token *db, struct sql_token name, struct sql_token table);
void build_create_trigger(struct sql_ctx *c, int if_not_exists, struct sql_token *db, struct sql_token name, struct sql_node *table);
void build_drop(struct sql_ctx *c, char type, int if_exists, struct sql_node *name);
void build_txn_write(struct sql_ctx *c); /* BEGIN IMMEDIATE/EXCLUSIVE */
/* LIKE/GLOB/REGEXP/MATCH operator: REGEXP needs a user function (refused). */
void build_likeop(struct sql_ctx *c, struct sql_token op);
/* A table-valued function in FROM (json_each, pragma_table_info, ...). */
void build_table_function(struct sql_ctx *c, struct sql_token *db, struct sql_token name);
/* A PRAGMA: allowed list or refusal (doc/sql.md). */
void build_pragma(struct sql_ctx *c, struct sql_token *db, struct sql_token name, bool has_value);
/* A DEFAULT expression (its non-determinism is already recorded). */
void build_default_nondet(struct sql_ctx *c, struct sql_node *e);

/* expressions */
/* Nodes, allocated in the parse's arena (NULL on ENOMEM, which the
 * context records): inner node, leaf with a token, parameter (numbered),
 * CURRENT_* (non-deterministic), function call (checked against the known
 * functions, non-determinism recorded), list append, subquery. */
struct sql_node *build_node(struct sql_ctx *c, int op, struct sql_node *a, struct sql_node *b);
struct sql_node *build_leaf(struct sql_ctx *c, int op, struct sql_token t);
struct sql_node *build_param(struct sql_ctx *c, struct sql_token t);
struct sql_node *build_ctime(struct sql_ctx *c, struct sql_token t);
struct sql_node *build_func(struct sql_ctx *c, struct sql_token name, struct sql_node *args, bool star);
struct sql_node *build_list(struct sql_ctx *c, struct sql_node *list, struct sql_node *e);
struct sql_node *build_select(struct sql_ctx *c);

/* the generated parser (parse_wrap.c) */
/* Allocate / free a parser; feed one token (major 0 ends the input). */
void *sqlParserAlloc(void *(*malloc_fn)(size_t));
void sqlParserFree(void *p, void (*free_fn)(void *));
void sqlParser(void *p, int major, struct sql_token t, struct sql_ctx *c);
/* Reset the parser to its start state after a syntax error. */
void sql_parser_reset(void *p);
/* Token codes the parser can shift in its current state (for hints). */
int sql_parser_expected(void *p, int *codes, int cap);
/* The grammar's name for a token code ("SELECT", "ID", "LP"...). */
const char *sql_token_name(int code);

#endif /* MTR_SQL_INT_H */
