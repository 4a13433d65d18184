/*
 * parse.y - the lemon grammar of the SQLite 3.40 dialect for Metronome.
 *
 * Processed at build time by lemon into parse.c/parse.h in the build
 * directory (never committed).  Actions are one-line calls into the builder
 * (sql/build.c, declared in sql/sql_int.h); there is no logic here.  The
 * dialect accepted, and where it is stricter or looser than SQLite, is in
 * doc/sql.md.
 *
 * Conventions: nonterminals are lower case, terminals upper case.  Keywords
 * that SQLite lets users write as identifiers are listed in %fallback ID, so
 * the parser turns them into ID wherever the keyword itself cannot be shifted.
 */

%token_prefix TK_
%token_type {struct sql_token}
%default_type {struct sql_node *}
%extra_argument {struct sql_ctx *ctx}
%name sqlParser
%start_symbol input
%stack_size 400

%syntax_error {
  build_syntax_error(ctx, yymajor, TOKEN, NULL);
}
%stack_overflow {
  build_overflow(ctx);
}

%include {
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "sql_int.h"
#define YYNOERRORRECOVERY 1
#define YYPARSEFREENEVERNULL 1
}

/* Tokens the tokenizer produces but the grammar never shifts. */
%token SPACE COMMENT ILLEGAL.

/* Keywords usable as identifiers (as in SQLite: when the keyword cannot be
 * shifted where it stands, it is taken as an ID). */
%fallback ID
  ABORT ACTION AFTER ANALYZE ASC ATTACH BEFORE BEGIN BY CASCADE CAST COLUMNKW
  CONFLICT DATABASE DEFERRED DESC DETACH DO EACH END EXCLUSIVE EXPLAIN FAIL FOR
  IGNORE IMMEDIATE INITIALLY INSTEAD LIKE_KW MATCH NO PLAN
  QUERY KEY OF OFFSET PRAGMA RAISE RECURSIVE RELEASE REPLACE RESTRICT ROW ROWS
  ROLLBACK SAVEPOINT TEMP TRIGGER VACUUM VIEW VIRTUAL WITH WITHOUT
  NULLS FIRST LAST
  CURRENT FOLLOWING PARTITION PRECEDING RANGE UNBOUNDED
  EXCLUDE GROUPS OTHERS TIES
  GENERATED ALWAYS
  MATERIALIZED
  REINDEX RENAME CTIME_KW IF
  .
%wildcard ANY.

/* Operator precedence, lowest first (as SQLite orders it). */
%left OR.
%left AND.
%right NOT.
%left IS MATCH LIKE_KW BETWEEN IN ISNULL NOTNULL NE EQ.
%left GT LE LT GE.
%right ESCAPE.
%left BITAND BITOR LSHIFT RSHIFT.
%left PLUS MINUS.
%left STAR SLASH REM.
%left CONCAT PTR.
%left COLLATE.
%right BITNOT.
%nonassoc ON.

/* SQLite's identifier-like token classes (JOIN_KW and STRING are accepted
 * as names in most places). */
%token_class id  ID|INDEXED.
%token_class ids  ID|STRING.

/* ------------------------------------------------------------ statements */

input ::= cmdlist.
cmdlist ::= cmdlist ecmd.
cmdlist ::= ecmd.
ecmd ::= SEMI.                    { build_stmt_end(ctx); }
ecmd ::= cmdx SEMI.               { build_stmt_end(ctx); }
ecmd ::= explain cmdx SEMI.       { build_stmt_end(ctx); }
explain ::= EXPLAIN.              { build_explain(ctx); }
explain ::= EXPLAIN QUERY PLAN.   { build_explain(ctx); }
cmdx ::= cmd.

/* transactions */
cmd ::= BEGIN transtype trans_opt.      { build_txn(ctx, SQL_TXN_BEGIN); }
trans_opt ::= .
trans_opt ::= TRANSACTION.
trans_opt ::= TRANSACTION nm.
transtype ::= .
transtype ::= DEFERRED.
transtype ::= IMMEDIATE.                  { build_txn_write(ctx); }
transtype ::= EXCLUSIVE.                  { build_txn_write(ctx); }
cmd ::= COMMIT trans_opt.               { build_txn(ctx, SQL_TXN_COMMIT); }
cmd ::= END trans_opt.                  { build_txn(ctx, SQL_TXN_COMMIT); }
cmd ::= ROLLBACK trans_opt.             { build_txn(ctx, SQL_TXN_ROLLBACK); }
savepoint_opt ::= SAVEPOINT.
savepoint_opt ::= .
cmd ::= SAVEPOINT nm.                   { build_txn(ctx, SQL_TXN_SAVEPOINT); }
cmd ::= RELEASE savepoint_opt nm.       { build_txn(ctx, SQL_TXN_RELEASE); }
cmd ::= ROLLBACK trans_opt TO savepoint_opt nm. { build_txn(ctx, SQL_TXN_ROLLBACK_TO); }

/* CREATE TABLE */
cmd ::= create_table create_table_args.
create_table ::= createkw temp TABLE ifnotexists(E) nm(N) dbnm(D). { build_create(ctx, 't', E, D.n ? &N : NULL, D.n ? D : N); }
createkw ::= CREATE.
%type ifnotexists {int}
ifnotexists(A) ::= .                      { A = 0; }
ifnotexists(A) ::= IF NOT EXISTS.         { A = 1; }
temp ::= TEMP(T).                         { build_temp(ctx, T); }
temp ::= .
create_table_args ::= LP columnlist conslist_opt RP table_option_set.
create_table_args ::= AS select.
table_option_set ::= .
table_option_set ::= table_option.
table_option_set ::= table_option_set COMMA table_option.
table_option ::= WITHOUT nm.
table_option ::= nm.
columnlist ::= columnlist COMMA columnname carglist.
columnlist ::= columnname carglist.
columnname ::= nm typetoken.

nm(A) ::= id(X).                          { A = X; }
nm(A) ::= JOIN_KW(X).                     { A = X; }
nm(A) ::= STRING(X).                      { A = X; }
%type nm {struct sql_token}
%type dbnm {struct sql_token}
dbnm(A) ::= .                             { A.z = NULL; A.n = 0; }
dbnm(A) ::= DOT nm(X).                    { A = X; }

typetoken ::= .
typetoken ::= typename.
typetoken ::= typename LP signed RP.
typetoken ::= typename LP signed COMMA signed RP.
typename ::= ids.
typename ::= typename ids.
signed ::= plus_num.
signed ::= minus_num.
carglist ::= carglist ccons.
carglist ::= .
ccons ::= CONSTRAINT nm.
ccons ::= DEFAULT scantok term(X).        { build_default_nondet(ctx, X); }
ccons ::= DEFAULT LP expr(X) RP.          { build_default_nondet(ctx, X); }
ccons ::= DEFAULT PLUS scantok term(X).   { build_default_nondet(ctx, X); }
ccons ::= DEFAULT MINUS scantok term(X).  { build_default_nondet(ctx, X); }
ccons ::= DEFAULT scantok id.
ccons ::= NULL onconf.
ccons ::= NOT NULL onconf.
ccons ::= PRIMARY KEY sortorder onconf autoinc.
ccons ::= UNIQUE onconf.
ccons ::= CHECK LP expr RP.
ccons ::= REFERENCES nm eidlist_opt refargs.
ccons ::= defer_subclause.
ccons ::= COLLATE ids.
ccons ::= GENERATED ALWAYS AS generated.
ccons ::= AS generated.
generated ::= LP expr RP.
generated ::= LP expr RP ID.
scantok ::= .
autoinc ::= .
autoinc ::= AUTOINCR.
refargs ::= .
refargs ::= refargs refarg.
refarg ::= MATCH nm.
refarg ::= ON INSERT refact.
refarg ::= ON DELETE refact.
refarg ::= ON UPDATE refact.
refact ::= SET NULL.
refact ::= SET DEFAULT.
refact ::= CASCADE.
refact ::= RESTRICT.
refact ::= NO ACTION.
defer_subclause ::= NOT DEFERRABLE init_deferred_pred_opt.
defer_subclause ::= DEFERRABLE init_deferred_pred_opt.
init_deferred_pred_opt ::= .
init_deferred_pred_opt ::= INITIALLY DEFERRED.
init_deferred_pred_opt ::= INITIALLY IMMEDIATE.
conslist_opt ::= .
conslist_opt ::= COMMA conslist.
conslist ::= conslist tconscomma tcons.
conslist ::= tcons.
tconscomma ::= COMMA.
tconscomma ::= .
tcons ::= CONSTRAINT nm.
tcons ::= PRIMARY KEY LP sortlist autoinc RP onconf.
tcons ::= UNIQUE LP sortlist RP onconf.
tcons ::= CHECK LP expr RP onconf.
tcons ::= FOREIGN KEY LP eidlist RP REFERENCES nm eidlist_opt refargs defer_subclause_opt.
defer_subclause_opt ::= .
defer_subclause_opt ::= defer_subclause.
onconf ::= .
onconf ::= ON CONFLICT resolvetype.
orconf ::= .
orconf ::= OR resolvetype.
resolvetype ::= raisetype.
resolvetype ::= IGNORE.
resolvetype ::= REPLACE.

/* DROP TABLE / VIEW */
cmd ::= DROP TABLE ifexists(E) fullname(X). { build_drop(ctx, 't', E, X); }
%type ifexists {int}
ifexists(A) ::= IF EXISTS.                { A = 1; }
ifexists(A) ::= .                         { A = 0; }
cmd ::= createkw temp VIEW ifnotexists(E) nm(N) dbnm(D) eidlist_opt AS select. { build_create(ctx, 'v', E, D.n ? &N : NULL, D.n ? D : N); }
cmd ::= DROP VIEW ifexists(E) fullname(X). { build_drop(ctx, 'v', E, X); }

/* SELECT */
cmd ::= select.                           { build_kind(ctx, SQL_READ); }
select ::= WITH wqlist selectnowith.
select ::= WITH RECURSIVE wqlist selectnowith.
select ::= selectnowith.
selectnowith ::= oneselect.
selectnowith ::= selectnowith multiselect_op oneselect.
multiselect_op ::= UNION.
multiselect_op ::= UNION ALL.
multiselect_op ::= EXCEPT|INTERSECT.
oneselect ::= SELECT distinct selcollist from where_opt groupby_opt having_opt orderby_opt limit_opt.
oneselect ::= SELECT distinct selcollist from where_opt groupby_opt having_opt window_clause orderby_opt limit_opt.
oneselect ::= values.
values ::= VALUES LP nexprlist RP.
values ::= values COMMA LP nexprlist RP.
distinct ::= DISTINCT.
distinct ::= ALL.
distinct ::= .
sclp ::= selcollist COMMA.
sclp ::= .
selcollist ::= sclp scanpt expr scanpt as.
selcollist ::= sclp scanpt STAR.
selcollist ::= sclp scanpt nm DOT STAR.
scanpt ::= .
as ::= AS nm.
as ::= ids.
as ::= .
from ::= .
from ::= FROM seltablist.
stl_prefix ::= seltablist joinop.
stl_prefix ::= .
seltablist ::= stl_prefix nm(N) dbnm(D) as on_using.                    { build_table_read(ctx, D.n ? &N : NULL, D.n ? D : N); }
seltablist ::= stl_prefix nm(N) dbnm(D) as indexed_by on_using.         { build_table_read(ctx, D.n ? &N : NULL, D.n ? D : N); }
seltablist ::= stl_prefix nm(N) dbnm(D) LP exprlist RP as on_using.     { build_table_function(ctx, D.n ? &N : NULL, D.n ? D : N); }
seltablist ::= stl_prefix LP select RP as on_using.
seltablist ::= stl_prefix LP seltablist RP as on_using.
%type fullname {struct sql_node *}
fullname(A) ::= nm(N).                    { A = build_leaf(ctx, N_NAME, N); }
fullname(A) ::= nm(D) DOT nm(N).          { build_schema_name(ctx, &D); A = build_leaf(ctx, N_NAME, N); }
xfullname ::= nm(N).                      { build_table_written(ctx, NULL, N); }
xfullname ::= nm(D) DOT nm(N).            { build_table_written(ctx, &D, N); }
xfullname ::= nm(D) DOT nm(N) AS nm.      { build_table_written(ctx, &D, N); }
xfullname ::= nm(N) AS nm.                { build_table_written(ctx, NULL, N); }
joinop ::= COMMA.
joinop ::= JOIN.
joinop ::= JOIN_KW JOIN.
joinop ::= JOIN_KW nm JOIN.
joinop ::= JOIN_KW nm nm JOIN.
on_using ::= ON expr.
on_using ::= USING LP idlist RP.
on_using ::= . [OR]
indexed_opt ::= .
indexed_opt ::= indexed_by.
indexed_by ::= INDEXED BY nm.
indexed_by ::= NOT INDEXED.
orderby_opt ::= .
orderby_opt ::= ORDER BY sortlist.
sortlist ::= sortlist COMMA expr sortorder nulls.
sortlist ::= expr sortorder nulls.
sortorder ::= ASC.
sortorder ::= DESC.
sortorder ::= .
nulls ::= NULLS FIRST.
nulls ::= NULLS LAST.
nulls ::= .
groupby_opt ::= .
groupby_opt ::= GROUP BY nexprlist.
having_opt ::= .
having_opt ::= HAVING expr.
limit_opt ::= .
limit_opt ::= LIMIT expr.
limit_opt ::= LIMIT expr OFFSET expr.
limit_opt ::= LIMIT expr COMMA expr.

/* DELETE / UPDATE / INSERT */
cmd ::= with DELETE FROM xfullname indexed_opt where_opt_ret orderby_opt limit_opt. { build_kind(ctx, SQL_WRITE); }
where_opt ::= .
where_opt ::= WHERE expr.
where_opt_ret ::= .
where_opt_ret ::= WHERE expr.
where_opt_ret ::= RETURNING selcollist.
where_opt_ret ::= WHERE expr RETURNING selcollist.
cmd ::= with UPDATE orconf xfullname indexed_opt SET setlist from where_opt_ret orderby_opt limit_opt. { build_kind(ctx, SQL_WRITE); }
setlist ::= setlist COMMA nm EQ expr.
setlist ::= setlist COMMA LP idlist RP EQ expr.
setlist ::= nm EQ expr.
setlist ::= LP idlist RP EQ expr.
cmd ::= with insert_cmd INTO xfullname idlist_opt select upsert.   { build_kind(ctx, SQL_WRITE); }
cmd ::= with insert_cmd INTO xfullname idlist_opt DEFAULT VALUES returning. { build_kind(ctx, SQL_WRITE); }
upsert ::= .
upsert ::= RETURNING selcollist.
upsert ::= ON CONFLICT LP sortlist RP where_opt DO UPDATE SET setlist where_opt upsert.
upsert ::= ON CONFLICT LP sortlist RP where_opt DO NOTHING upsert.
upsert ::= ON CONFLICT DO NOTHING returning.
upsert ::= ON CONFLICT DO UPDATE SET setlist where_opt returning.
returning ::= RETURNING selcollist.
returning ::= .
insert_cmd ::= INSERT orconf.
insert_cmd ::= REPLACE.
idlist_opt ::= .
idlist_opt ::= LP idlist RP.
idlist ::= idlist COMMA nm.
idlist ::= nm.

/* expressions */
expr(A) ::= term(X).                      { A = X; }
expr(A) ::= LP expr(X) RP.                { A = X; }
expr(A) ::= id(X).                        { A = build_leaf(ctx, N_NAME, X); }
expr(A) ::= JOIN_KW(X).                   { A = build_leaf(ctx, N_NAME, X); }
expr(A) ::= nm DOT nm(X).                 { A = build_leaf(ctx, N_NAME, X); }
expr(A) ::= nm DOT nm DOT nm(X).          { A = build_leaf(ctx, N_NAME, X); }
term(A) ::= NULL|FLOAT|BLOB(X).           { A = build_leaf(ctx, N_EXPR, X); }
term(A) ::= STRING(X).                    { A = build_leaf(ctx, TK_STRING, X); }
term(A) ::= INTEGER(X).                   { A = build_leaf(ctx, N_EXPR, X); }
expr(A) ::= VARIABLE(X).                  { A = build_param(ctx, X); }
expr(A) ::= expr(X) COLLATE ids.          { A = X; }
expr(A) ::= CAST LP expr(X) AS typetoken RP. { A = build_node(ctx, N_EXPR, X, NULL); }
expr(A) ::= id(N) LP distinct exprlist(L) RP. { A = build_func(ctx, N, L, false); }
expr(A) ::= id(N) LP STAR RP.            { A = build_func(ctx, N, NULL, true); }
expr(A) ::= id(N) LP distinct exprlist(L) RP filter_over. { A = build_func(ctx, N, L, false); }
expr(A) ::= id(N) LP STAR RP filter_over. { A = build_func(ctx, N, NULL, true); }
term(A) ::= CTIME_KW(X).                  { A = build_ctime(ctx, X); }
expr(A) ::= LP nexprlist(X) COMMA expr(Y) RP. { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) AND expr(Y).          { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) OR expr(Y).           { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) LT|GT|GE|LE expr(Y).  { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) EQ|NE expr(Y).        { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) BITAND|BITOR|LSHIFT|RSHIFT expr(Y). { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) PLUS|MINUS expr(Y).   { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) STAR|SLASH|REM expr(Y). { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) CONCAT expr(Y).       { A = build_node(ctx, N_EXPR, X, Y); }
likeop ::= LIKE_KW|MATCH(X).              { build_likeop(ctx, X); }
likeop ::= NOT LIKE_KW|MATCH(X).          { build_likeop(ctx, X); }
expr(A) ::= expr(X) likeop expr(Y). [LIKE_KW] { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) likeop expr(Y) ESCAPE expr. [LIKE_KW] { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) ISNULL|NOTNULL.       { A = X; }
expr(A) ::= expr(X) NOT NULL.             { A = X; }
expr(A) ::= expr(X) IS expr(Y).           { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) IS NOT expr(Y).       { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) IS NOT DISTINCT FROM expr(Y). { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= expr(X) IS DISTINCT FROM expr(Y). { A = build_node(ctx, N_EXPR, X, Y); }
expr(A) ::= NOT expr(X).                  { A = build_node(ctx, N_EXPR, X, NULL); }
expr(A) ::= BITNOT expr(X).               { A = build_node(ctx, N_EXPR, X, NULL); }
expr(A) ::= PLUS|MINUS expr(X). [BITNOT]  { A = build_node(ctx, N_EXPR, X, NULL); }
expr(A) ::= expr(X) PTR expr(Y).          { A = build_node(ctx, N_EXPR, X, Y); }
between_op ::= BETWEEN.
between_op ::= NOT BETWEEN.
expr(A) ::= expr(X) between_op expr AND expr. [BETWEEN] { A = build_node(ctx, N_EXPR, X, NULL); }
in_op ::= IN.
in_op ::= NOT IN.
expr(A) ::= expr(X) in_op LP exprlist RP. [IN] { A = build_node(ctx, N_EXPR, X, NULL); }
expr(A) ::= LP select RP.                 { A = build_select(ctx); }
expr(A) ::= expr(X) in_op LP select RP. [IN] { A = build_node(ctx, N_EXPR, X, NULL); }
expr(A) ::= expr(X) in_op nm(N) dbnm(D) paren_exprlist. [IN] { build_table_read(ctx, D.n ? &N : NULL, D.n ? D : N); A = X; }
expr(A) ::= EXISTS LP select RP.          { A = build_select(ctx); }
expr(A) ::= CASE(X) case_operand case_exprlist case_else END. { A = build_leaf(ctx, N_EXPR, X); }
case_exprlist ::= case_exprlist WHEN expr THEN expr.
case_exprlist ::= WHEN expr THEN expr.
case_else ::= ELSE expr.
case_else ::= .
case_operand ::= expr.
case_operand ::= .
exprlist(A) ::= nexprlist(X).             { A = X; }
exprlist(A) ::= .                         { A = NULL; }
nexprlist(A) ::= nexprlist(L) COMMA expr(X). { A = build_list(ctx, L, X); }
nexprlist(A) ::= expr(X).                 { A = build_list(ctx, NULL, X); }
paren_exprlist ::= .
paren_exprlist ::= LP exprlist RP.
expr(A) ::= RAISE LP IGNORE RP.           { A = build_node(ctx, N_EXPR, NULL, NULL); }
expr(A) ::= RAISE LP raisetype COMMA nm RP. { A = build_node(ctx, N_EXPR, NULL, NULL); }
raisetype ::= ROLLBACK.
raisetype ::= ABORT.
raisetype ::= FAIL.

/* CREATE / DROP INDEX */
cmd ::= createkw uniqueflag INDEX ifnotexists(E) nm(N) dbnm(D) ON nm(T) LP sortlist RP where_opt. { build_create_index(ctx, E, D.n ? &N : NULL, D.n ? D : N, T); }
uniqueflag ::= UNIQUE.
uniqueflag ::= .
eidlist_opt ::= .
eidlist_opt ::= LP eidlist RP.
eidlist ::= eidlist COMMA nm collate sortorder.
eidlist ::= nm collate sortorder.
collate ::= .
collate ::= COLLATE ids.
cmd ::= DROP INDEX ifexists(E) fullname(X). { build_drop(ctx, 'i', E, X); }

/* VACUUM / PRAGMA */
cmd ::= VACUUM(V) vinto.                  { build_kind(ctx, SQL_SCHEMA); build_refuse_vacuum(ctx, V); }
cmd ::= VACUUM(V) nm(D) vinto.            { build_kind(ctx, SQL_SCHEMA); build_schema_name(ctx, &D); build_refuse_vacuum(ctx, V); }
vinto ::= INTO(T) expr.                   { build_refuse(ctx, T, "VACUUM INTO (writes a file on the replica)"); }
vinto ::= .
cmd ::= PRAGMA nm(N) dbnm(D).             { build_pragma(ctx, D.n ? &N : NULL, D.n ? D : N, false); }
cmd ::= PRAGMA nm(N) dbnm(D) EQ nmnum.    { build_pragma(ctx, D.n ? &N : NULL, D.n ? D : N, true); }
cmd ::= PRAGMA nm(N) dbnm(D) LP nmnum RP. { build_pragma(ctx, D.n ? &N : NULL, D.n ? D : N, true); }
cmd ::= PRAGMA nm(N) dbnm(D) EQ minus_num. { build_pragma(ctx, D.n ? &N : NULL, D.n ? D : N, true); }
cmd ::= PRAGMA nm(N) dbnm(D) LP minus_num RP. { build_pragma(ctx, D.n ? &N : NULL, D.n ? D : N, true); }
nmnum ::= plus_num.
nmnum ::= nm.
nmnum ::= ON.
nmnum ::= DELETE.
nmnum ::= DEFAULT.
plus_num ::= PLUS number.
plus_num ::= number.
minus_num ::= MINUS number.
number ::= INTEGER|FLOAT.

/* CREATE / DROP TRIGGER */
cmd ::= createkw trigger_decl BEGIN trigger_cmd_list END.
trigger_decl ::= temp TRIGGER ifnotexists(E) nm(N) dbnm(D) trigger_time trigger_event ON fullname(T) foreach_clause when_clause. { build_create_trigger(ctx, E, D.n ? &N : NULL, D.n ? D : N, T); }
trigger_time ::= BEFORE|AFTER.
trigger_time ::= INSTEAD OF.
trigger_time ::= .
trigger_event ::= DELETE|INSERT.
trigger_event ::= UPDATE.
trigger_event ::= UPDATE OF idlist.
foreach_clause ::= .
foreach_clause ::= FOR EACH ROW.
when_clause ::= .
when_clause ::= WHEN expr.
trigger_cmd_list ::= trigger_cmd_list trigger_cmd SEMI.
trigger_cmd_list ::= trigger_cmd SEMI.
trnm ::= nm(N).                           { build_table_written(ctx, NULL, N); }
trnm ::= nm DOT(T) nm.                    { build_refuse(ctx, T, "qualified table name in a trigger body"); }
tridxby ::= .
tridxby ::= INDEXED BY nm.
tridxby ::= NOT INDEXED.
trigger_cmd ::= UPDATE orconf trnm tridxby SET setlist from where_opt scanpt.
trigger_cmd ::= scanpt insert_cmd INTO trnm idlist_opt select upsert scanpt.
trigger_cmd ::= DELETE FROM trnm tridxby where_opt scanpt.
trigger_cmd ::= scanpt select scanpt.
cmd ::= DROP TRIGGER ifexists(E) fullname(X). { build_drop(ctx, 'r', E, X); }

/* ATTACH / DETACH: valid SQL, always refused */
cmd ::= ATTACH(T) database_kw_opt expr AS expr key_opt. { build_refuse(ctx, T, "ATTACH"); }
cmd ::= DETACH(T) database_kw_opt expr.   { build_refuse(ctx, T, "DETACH"); }
key_opt ::= .
key_opt ::= KEY expr.
database_kw_opt ::= DATABASE.
database_kw_opt ::= .

/* REINDEX / ANALYZE */
cmd ::= REINDEX.                          { build_kind(ctx, SQL_SCHEMA); }
cmd ::= REINDEX nm(N) dbnm(D).            { build_kind(ctx, SQL_SCHEMA); build_schema_name(ctx, D.n ? &N : NULL); }
cmd ::= ANALYZE.                          { build_kind(ctx, SQL_SCHEMA); }
cmd ::= ANALYZE nm(N) dbnm(D).            { build_kind(ctx, SQL_SCHEMA); build_schema_name(ctx, D.n ? &N : NULL); }

/* ALTER TABLE */
cmd ::= ALTER TABLE fullname(X) RENAME TO nm. { build_kind(ctx, SQL_SCHEMA); build_table_written(ctx, NULL, X->t); }
cmd ::= ALTER TABLE fullname(X) ADD kwcolumn_opt columnname carglist. { build_kind(ctx, SQL_SCHEMA); build_table_written(ctx, NULL, X->t); }
cmd ::= ALTER TABLE fullname(X) DROP kwcolumn_opt nm. { build_kind(ctx, SQL_SCHEMA); build_table_written(ctx, NULL, X->t); }
cmd ::= ALTER TABLE fullname(X) RENAME kwcolumn_opt nm TO nm. { build_kind(ctx, SQL_SCHEMA); build_table_written(ctx, NULL, X->t); }
kwcolumn_opt ::= .
kwcolumn_opt ::= COLUMNKW.

/* CREATE VIRTUAL TABLE */
cmd ::= createkw VIRTUAL TABLE ifnotexists nm(N) dbnm(D) USING nm vtabargs. { build_kind(ctx, SQL_SCHEMA); build_table_written(ctx, D.n ? &N : NULL, D.n ? D : N); }
vtabargs ::= .
vtabargs ::= LP vtabarglist RP.
vtabarglist ::= vtabarg.
vtabarglist ::= vtabarglist COMMA vtabarg.
vtabarg ::= .
vtabarg ::= vtabarg vtabargtoken.
vtabargtoken ::= ANY.
vtabargtoken ::= lp anylist RP.
lp ::= LP.
anylist ::= .
anylist ::= anylist LP anylist RP.
anylist ::= anylist ANY.

/* WITH */
with ::= .
with ::= WITH wqlist.
with ::= WITH RECURSIVE wqlist.
wqas ::= AS.
wqas ::= AS MATERIALIZED.
wqas ::= AS NOT MATERIALIZED.
wqitem ::= nm(N) eidlist_opt wqas LP select RP. { build_cte(ctx, N); }
wqlist ::= wqitem.
wqlist ::= wqlist COMMA wqitem.

/* window functions */
windowdefn_list ::= windowdefn.
windowdefn_list ::= windowdefn_list COMMA windowdefn.
windowdefn ::= nm AS LP window RP.
window ::= PARTITION BY nexprlist orderby_opt frame_opt.
window ::= nm PARTITION BY nexprlist orderby_opt frame_opt.
window ::= ORDER BY sortlist frame_opt.
window ::= nm ORDER BY sortlist frame_opt.
window ::= frame_opt.
window ::= nm frame_opt.
frame_opt ::= .
frame_opt ::= range_or_rows frame_bound_s frame_exclude_opt.
frame_opt ::= range_or_rows BETWEEN frame_bound_s AND frame_bound_e frame_exclude_opt.
range_or_rows ::= RANGE|ROWS|GROUPS.
frame_bound_s ::= frame_bound.
frame_bound_s ::= UNBOUNDED PRECEDING.
frame_bound_e ::= frame_bound.
frame_bound_e ::= UNBOUNDED FOLLOWING.
frame_bound ::= expr PRECEDING|FOLLOWING.
frame_bound ::= CURRENT ROW.
frame_exclude_opt ::= .
frame_exclude_opt ::= EXCLUDE frame_exclude.
frame_exclude ::= NO OTHERS.
frame_exclude ::= CURRENT ROW.
frame_exclude ::= GROUP|TIES.
window_clause ::= WINDOW windowdefn_list.
filter_over ::= filter_clause over_clause.
filter_over ::= over_clause.
filter_over ::= filter_clause.
over_clause ::= OVER LP window RP.
over_clause ::= OVER nm.
filter_clause ::= FILTER LP WHERE expr RP.
