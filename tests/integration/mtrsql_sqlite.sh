#!/bin/sh
# mtrsql_sqlite.sh - mtrsql held against the sqlite3 shell on the same
# database: one script builds the same schema and rows in a cluster (the
# local cluster mtrsql starts, in a temporary MTR_LOCAL_DIR) and in a
# SQLite file; then .tables, .indexes, .schema and .dump with patterns and
# quoted names, every output mode, the query plan, .parameter, script
# errors "near line N" and .import with bad rows must print what sqlite3
# prints.  Known differences, filtered here and said in doc/mtrsql.1: .dump
# writes no PRAGMA foreign_keys=OFF line, csv rows end with \n, numbers are
# right-justified in the columnar modes.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

M=$MTR_BUILDDIR/shell/mtrsql
[ -x "$M" ] || skip_all "mtrsql is not built"
[ -x "$MTR_BUILDDIR/src/metronomed" ] || skip_all "metronomed is not built"
command -v sqlite3 >/dev/null 2>&1 || skip_all "no sqlite3 shell (package sqlite3)"
TMP=$(mktemp -d)
export MTR_LOCAL_DIR="$TMP/local" MTR_BINDIR="$MTR_BUILDDIR/src"
export MTR_LOCAL_PORT=$(($(port_block) + 16))
cleanup() {
	for f in "$TMP"/local/*.pid "$TMP"/local2/*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" 10; done
	rm -rf "$TMP"
}
at_exit cleanup
cd "$TMP" || exit 1

plan 13

# same_as DESCRIPTION WANT GOT: ok when the files are equal, else the diff
same_as() {
	if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1"; diff "$2" "$3" | head -40 | sed 's/^/#   /'; fi
}
# both CMDFILE OUT: each line of CMDFILE as one command, through sqlite3 on
# s.db (OUT.want) and through mtrsql (OUT.got); "== command" before each
both() {
	: >"$2.want"
	: >"$2.got"
	while IFS= read -r c; do
		echo "== $c" >>"$2.want"
		sqlite3 s.db "$c" 2>&1 | grep -av '^PRAGMA foreign_keys=OFF;$' >>"$2.want"
		echo "== $c" >>"$2.got"
		"$M" -c "$c" 2>&1 | grep -av '^mtrsql: attached' >>"$2.got"
	done <"$1"
}

cat >schema.sql <<'EOF'
CREATE TABLE fruit(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, data BLOB);
CREATE TABLE "my table"("a b" TEXT, c INT DEFAULT 0, "order" TEXT);
CREATE TABLE "order"(x, y);
CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
CREATE TABLE notes(id INTEGER PRIMARY KEY, -- the key
  body TEXT);
CREATE INDEX fruit_name ON fruit(name);
CREATE UNIQUE INDEX "my index" ON "my table"("a b");
CREATE VIEW cheap AS SELECT id, name FROM fruit WHERE price < 1;
CREATE VIEW "my view" AS SELECT "a b", c AS "the c" FROM "my table";
CREATE TRIGGER fruit_ins AFTER INSERT ON fruit BEGIN INSERT INTO seq(v) VALUES(new.name); END;
CREATE TRIGGER "my trigger" AFTER DELETE ON "my table" BEGIN
  DELETE FROM "order" WHERE x = old.c; -- keep them in step
END;
INSERT INTO fruit VALUES(1, 'apple', 0.5, NULL), (2, 'pear', 0.1, X'00ff10'), (3, 'it''s', 2.0, NULL),
  (4, 'two
lines', -1e300, X''), (5, 'tab	and cr' || char(13) || 'x', 1e-7, NULL), (6, 'é ünïcode', 3, NULL);
INSERT INTO "my table" VALUES('x y', 1, 'first'), ('z', NULL, NULL);
INSERT INTO "order" VALUES(1, 2.5), ('a', X'41');
INSERT INTO seq(v) VALUES('manual');
INSERT INTO notes VALUES(1, 'has -- dashes'), (2, NULL);
EOF
sqlite3 s.db <schema.sql
"$M" --keep <schema.sql >o0 2>e0
check "the schema script runs through mtrsql (exit 0)" [ $? = 0 ]
[ -s e0 ] && sed 's/^/#   e0: /' e0 | grep -v started

cat >c1 <<'EOF'
.tables
.tables f%
.tables 'my%'
.tables "my table"
.indexes
.indexes fruit
.indexes 'my table'
EOF
both c1 r1
same_as ".tables and .indexes, with patterns and quoted names, print what sqlite3 prints" r1.want r1.got

cat >c2 <<'EOF'
.schema
.schema fruit
.schema 'my table'
.schema "my%"
.schema --nosys
.schema m*
.schema sqlite_schema
EOF
both c2 r2
same_as ".schema (tables before their triggers, views with their columns, patterns): as sqlite3" r2.want r2.got

cat >c3 <<'EOF'
.dump
.dump fruit
.dump 'my table'
.dump "my%" "order"
.dump --data-only
.dump --nosys
.dump --newlines fruit
EOF
both c3 r3
same_as ".dump (quoting, newlines, floats, blobs, sqlite_sequence, patterns): as sqlite3 (less its PRAGMA line)" r3.want r3.got

# what mtrsql writes, sqlite3 reads back into the same database
"$M" -c ".dump" 2>/dev/null | sqlite3 back.db >back.err 2>&1
sqlite3 s.db .dump >w4
sqlite3 back.db .dump >g4
r=0; [ ! -s back.err ] && cmp -s w4 g4 && r=1
check ".dump piped into sqlite3 rebuilds the database (its .dump is the same)" [ $r = 1 ]
[ $r = 1 ] || { sed 's/^/#   /' back.err; diff w4 g4 | head -20 | sed 's/^/#   /'; }
"$M" -c ".schema --nosys" 2>/dev/null | sqlite3 schema.db >schema.err 2>&1
r=0; [ ! -s schema.err ] && [ "$(sqlite3 schema.db 'SELECT count(*) FROM sqlite_schema')" = 12 ] && r=1
check ".schema --nosys | sqlite3 creates every table, index, view and trigger" [ $r = 1 ]
[ $r = 1 ] || sed 's/^/#   /' schema.err

# a real SQLite database's dump, piped into mtrsql, loads into an empty
# cluster (its PRAGMA foreign_keys=OFF is a cluster write now): the same
# rows, generated columns (stored and virtual), AUTOINCREMENT's counter
# with its gap, quoted names, empty blobs
sqlite3 g.db <<'EOF'
PRAGMA foreign_keys = ON;
CREATE TABLE a(id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT, g INT GENERATED ALWAYS AS (length(v)) STORED,
  h GENERATED ALWAYS AS (v || '!') VIRTUAL);
INSERT INTO a(v) VALUES('x'), ('yy'), ('zzz');
DELETE FROM a WHERE id = 3;
CREATE TABLE "my t"("a b" PRIMARY KEY, c BLOB, aid REFERENCES a(id));
INSERT INTO "my t" VALUES('q', X'', 1), ('r', NULL, 2), ('it''s', X'00', NULL);
CREATE INDEX ia ON a(v);
CREATE VIEW va AS SELECT * FROM a;
CREATE TRIGGER ta AFTER INSERT ON a BEGIN INSERT INTO "my t" VALUES(new.v, NULL, new.id); END;
EOF
sqlite3 g.db .dump >g.dump
MTR_LOCAL_DIR="$TMP/local2" MTR_LOCAL_PORT=$((MTR_LOCAL_PORT + 5)) "$M" --keep <g.dump >g.out 2>g.err
grc=$?
MTR_LOCAL_DIR="$TMP/local2" MTR_LOCAL_PORT=$((MTR_LOCAL_PORT + 5)) "$M" -c ".dump" 2>/dev/null >g.got
grep -av '^PRAGMA foreign_keys=OFF;$' g.dump >g.want
r=0; [ $grc = 0 ] && cmp -s g.want g.got && r=1
check "sqlite3 .dump | mtrsql into an empty cluster: its .dump is the source's (generated columns, AUTOINCREMENT, quoted names, empty blobs)" [ $r = 1 ]
[ $r = 1 ] || { sed 's/^/#   g.err: /' g.err | grep -v started; diff g.want g.got | head -20 | sed 's/^/#   /'; }

# every output mode of sqlite3 3.40's ".help mode", headers on and off
Q="SELECT id, name, price, data, NULL AS nil FROM fruit ORDER BY id"
: >m.want
: >m.got
for m in list csv line json html "insert fruit_copy" quote tabs ascii tcl; do
	for h in on off; do
		echo "== $m $h" | tee -a m.want >>m.got
		sqlite3 s.db ".headers $h" ".mode $m" ".nullvalue NIL" "$Q" 2>&1 | { [ "$m" = csv ] && sed 's/\r$//' || cat; } >>m.want
		"$M" -c ".headers $h" -c ".mode $m" -c ".nullvalue NIL" -c "$Q" 2>/dev/null >>m.got
	done
done
same_as "list csv line json html insert quote tabs ascii tcl: as sqlite3 (csv: rows end with \\n)" m.want m.got
# the columnar modes on text columns (numbers are right-justified in mtrsql):
# a cell with a newline spans lines, --wrap and --wordwrap cut as sqlite3
QT="SELECT name, typeof(price) AS \"the type\", 'x' || id AS k FROM fruit WHERE id <> 5 ORDER BY id"
: >t.want
: >t.got
for m in markdown table box column qbox "box --wrap 5" "table --wrap 6 --ww" "column --quote" "markdown --wrap 4 --ww"; do
	echo "== $m" | tee -a t.want >>t.got
	sqlite3 s.db ".mode $m" ".width 0 3" "$QT" >>t.want 2>&1
	"$M" -c ".mode $m" -c ".width 0 3" -c "$QT" 2>/dev/null >>t.got
done
same_as "markdown table box column qbox, .width, --wrap, --wordwrap, --quote: as sqlite3" t.want t.got
"$M" -c ".mode box" -c "SELECT 'a' || char(1) || 'b' AS x, 'c' || char(9) || 'd' AS y" >t2.got 2>/dev/null
check "box mode shows a control byte as ^A and a tab as spaces, the grid intact" diff t2.got - <<'EOF'
┌──────┬───────────┐
│  x   │     y     │
├──────┼───────────┤
│ a^Ab │ c       d │
└──────┴───────────┘
EOF

cat >c5.sql <<'EOF'
.eqp on
SELECT f.name FROM fruit f JOIN "my table" m ON m.c = f.id WHERE f.name > 'a';
.eqp off
EXPLAIN QUERY PLAN SELECT * FROM fruit WHERE name = 'x' UNION SELECT id, v, 1, 2 FROM seq;
.parameter set :n 2
.parameter set @s 'hello world'
.parameter set $t hello
.parameter list
SELECT :n + 1, @s, $t, ?4;
.nullvalue ''
.print "a\tb" 'c d' e\x
SELECT NULL, 'x';
.once o.txt
SELECT 42;
SELECT 43;
.shell cat o.txt
EOF
sqlite3 s.db <c5.sql >r5.want 2>&1
"$M" <c5.sql 2>&1 | grep -av '^mtrsql: attached' >r5.got
same_as ".eqp and EXPLAIN QUERY PLAN as a tree, .parameter, quoted arguments, .print, .once, .shell: as sqlite3" r5.want r5.got

printf 'SELECT 1;\n\n-- a comment\nSELECT 2; SELEC 3;\nSELECT\n  4,\n  nosuchcol FROM fruit;\nINSERT INTO fruit(id, name) VALUES(1, %s);\nSELECT 5;\n' "'dup'" >e.sql
sqlite3 s.db <e.sql 2>&1 | grep -o '^[A-Za-z]* error near line [0-9]*' >e.want
"$M" <e.sql 2>&1 | grep -o '^[A-Za-z]* error near line [0-9]*' >e.got
sed -i 's/^Runtime error near line 5$/Parse error near line 5/' e.got # (the replica finds the column)
same_as "errors in a script name the line of the script, parse and runtime errors alike, as sqlite3" e.want e.got

# .import: bad rows are named FILE:LINE as sqlite3 names them, the rest goes
# in; 30,000 rows make many batches of one size (shell/import.c), with bad
# rows in the first, middle and last ones and a row of 300 KB that closes
# its batch early.  (Each bad row repeats a key of a batch without one: a
# key first seen in a failing batch and repeated in a batch sent before the
# failure came back is kept from the later row, unlike sqlite3; see
# doc/mtrsql.1, .import.)
{
	echo "id,name,qty"
	awk 'BEGIN { big = "x"; while (length(big) < 300000) big = big big
		for (i = 1; i <= 30000; i++)
			if (i == 1000 || i == 2500) print "7,dup " i "," i
			else if (i == 14000) print "5000,dup " i "," i
			else if (i == 29990) print "20001,dup " i "," i
			else if (i == 1700) print i ",short"
			else if (i == 2000) print i ",long,1,2"
			else if (i == 20000) print i "," big "," i
			else print i ",\"name, " i "\"," i }'
	echo "30001,\"two"
	echo "lines\",1"
} >imp.csv
cat >c6.sql <<'EOF'
CREATE TABLE imp(id INTEGER PRIMARY KEY, name TEXT, qty INT);
.import --csv --skip 1 imp.csv imp
.mode tabs
.import imp.csv created
.schema created
SELECT count(*), sum(qty), substr(max(name), 1, 20), sum(length(name)), total(id * qty), sum(typeof(qty) = 'integer') FROM imp;
EOF
sqlite3 s.db <c6.sql >r6.want 2>&1
"$M" <c6.sql 2>&1 | grep -av '^mtrsql: \|^imported' >r6.got
same_as ".import: the same messages per bad row (FILE:LINE), the same rows; .separator from .mode" r6.want r6.got
exit 0
