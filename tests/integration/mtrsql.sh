#!/bin/sh
# mtrsql.sh - the shell, non-interactive, against a real local cluster
# started by mtrsql itself (in a temporary MTR_LOCAL_DIR): a piped script,
# -c, output modes, errors with position and exit status, -bail, --keep and
# attaching again, stopping what it started (and only that: at exit, on
# SIGTERM), .import's messages, quoted dot-command arguments.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

M=$MTR_BUILDDIR/shell/mtrsql
[ -x "$M" ] || skip_all "mtrsql is not built"
[ -x "$MTR_BUILDDIR/src/metronomed" ] || skip_all "metronomed is not built"
TMP=$(mktemp -d)
export MTR_LOCAL_DIR="$TMP/local" MTR_BINDIR="$MTR_BUILDDIR/src"
export MTR_LOCAL_PORT=$(($(port_block) + 12))
cleanup() {
	for f in "$TMP"/local/*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" 10; done
	rm -rf "$TMP"
}
at_exit cleanup

plan 30

printf 'CREATE TABLE fruit(id INTEGER PRIMARY KEY,\n  name TEXT, price REAL);\nINSERT INTO fruit VALUES(1, %s, 0.5), (2, %s, NULL);\nSELECT * FROM fruit;\n' "'apple'" "'pear'" |
	"$M" >"$TMP/o1" 2>"$TMP/e1"
rc=$?
check "a piped script (multi-line CREATE, INSERT, SELECT) exits 0" [ $rc = 0 ]
check "... and prints the rows" diff "$TMP/o1" - <<'OUT'
1|apple|0.5
2|pear|
OUT
r=0; grep -q "started the local cluster" "$TMP/e1" && ! pgrep -f "$MTR_LOCAL_DIR/server" >/dev/null && r=1
check "it said it started the local cluster, and stopped it at exit" [ $r = 1 ]

"$M" --keep -c ".mode csv" -c ".headers on" -c "SELECT name, price FROM fruit ORDER BY id" >"$TMP/o2" 2>"$TMP/e2"
check "the second run finds the data of the first; csv with headers" diff "$TMP/o2" - <<'OUT'
name,price
apple,0.5
pear,
OUT
grep -q apple "$TMP/o2" || sed 's/^/#   e2: /' "$TMP/e2"
check "--keep leaves the cluster running" pgrep -f "$MTR_LOCAL_DIR/server-0.conf"
"$M" -c ".mode json" -c "SELECT id, name FROM fruit ORDER BY id" >"$TMP/o3" 2>"$TMP/e3"
check "json mode; attached to the running cluster" diff "$TMP/o3" - <<'OUT'
[{"id":1,"name":"apple"},
{"id":2,"name":"pear"}]
OUT
grep -q "attached to the local cluster" "$TMP/e3" || diag "$(cat "$TMP/e3")"
MTR_LOG=error "$M" -c "SELECT 1" >"$TMP/o3b" 2>"$TMP/e3b"
quiet_answer() { [ "$(cat "$TMP/o3b")" = 1 ] && [ ! -s "$TMP/e3b" ]; }
check "MTR_LOG=error: the answer and nothing on stderr (no notice about the local cluster)" quiet_answer
[ -s "$TMP/e3b" ] && sed 's/^/#   e3b: /' "$TMP/e3b"
"$M" -c ".mode box" -c "SELECT id, name FROM fruit ORDER BY id" >"$TMP/o4" 2>&1
check "box mode" grep -q '│  1 │ apple │' "$TMP/o4"
"$M" -c ".nullvalue NULL" -c ".mode line" -c "SELECT price FROM fruit WHERE id = 2" >"$TMP/o5" 2>"$TMP/e5"
check "line mode and .nullvalue" grep -q '^price = NULL$' "$TMP/o5"
grep -q '^price = NULL$' "$TMP/o5" || sed 's/^/#   e5: /' "$TMP/e5"

"$M" -c "SELECT 1;" -c "SELEC 2" -c "SELECT 3" >"$TMP/o6" 2>"$TMP/e6"
rc=$?
r=0; [ $rc = 1 ] && grep -q '^3$' "$TMP/o6" && r=1
check "a syntax error: exit status 1, later statements still run" [ $r = 1 ]
check "the error names line and column and points at it" grep -q 'line 1, column 1' "$TMP/e6"
"$M" -bail -c "SELEC 2" -c "SELECT 3" >"$TMP/o7" 2>/dev/null
rc=$?
r=0; [ $rc = 1 ] && ! grep -q '^3$' "$TMP/o7" && r=1
check "-bail stops at the first error" [ $r = 1 ]
# (a cluster started a moment ago may not have elected its leader yet)
k=0
while :; do
	"$M" -c ".tables" -c ".schema fruit" -c ".cluster" >"$TMP/o8" 2>&1
	nl=$(grep -cE '\| leader +\|' "$TMP/o8") nf=$(grep -cE '\| follower +\|' "$TMP/o8")
	[ "$nl" = 0 ] && [ $k -lt 20 ] || break
	sleep 0.5; k=$((k + 1))
done
r=0; grep -q '^fruit$' "$TMP/o8" && grep -q 'CREATE TABLE fruit' "$TMP/o8" && [ "$nl" = 1 ] && [ "$nf" = 2 ] && r=1
check ".tables, .schema and .cluster (one leader, two followers)" [ $r = 1 ]
[ $r = 1 ] || sed "s/^/#   /" "$TMP/o8"
[ $r = 1 ] || grep -h "leader\|ballot\|elect" "$MTR_LOCAL_DIR"/*.log | sed "s/^/#   /" | tail -20
"$M" -c "SELECT random() FROM fruit" -c ".parse SELECT random()" >"$TMP/o9" 2>&1
check ".parse shows the non-deterministic call" grep -q '"nondeterministic":\[{"what":"random()"' "$TMP/o9"
printf 'name,qty,note\nbolt,10,"a, b"\nnut,20,"say ""hi"""\n' >"$TMP/inv.csv"
"$M" -c ".import $TMP/inv.csv inv" -c ".mode csv" -c "SELECT * FROM inv" >"$TMP/o10" 2>"$TMP/e10"
check ".import: a CSV file with quotes and commas, table created from its header" diff "$TMP/o10" - <<'OUT'
bolt,10,"a, b"
nut,20,"say ""hi"""
OUT
"$M" -c ".dump" >"$TMP/dump.sql" 2>/dev/null
MTR_LOCAL_DIR="$TMP/other" MTR_LOCAL_PORT=$((MTR_LOCAL_PORT + 4)) "$M" <"$TMP/dump.sql" >/dev/null 2>"$TMP/replay.err"
MTR_LOCAL_DIR="$TMP/other" MTR_LOCAL_PORT=$((MTR_LOCAL_PORT + 4)) "$M" -c ".dump" >"$TMP/dump2.sql" 2>/dev/null
check ".dump replayed into another cluster dumps the same" diff "$TMP/dump.sql" "$TMP/dump2.sql"
cmp -s "$TMP/dump.sql" "$TMP/dump2.sql" || sed 's/^/#   replay: /' "$TMP/replay.err"
# a session's TEMP view and trigger: kept by the client, used by reads and
# by ordered writes, gone with DROP and invisible to another session
"$M" >"$TMP/o11" 2>"$TMP/e11" <<'SQL'
CREATE TABLE audit(name TEXT);
CREATE TEMP VIEW cheap AS SELECT name FROM fruit WHERE price < 1;
CREATE TEMP VIEW cheap AS SELECT 1;
CREATE TEMP TRIGGER log_ins AFTER INSERT ON fruit BEGIN INSERT INTO audit VALUES(new.name); END;
CREATE TEMP VIEW cheap_names AS SELECT upper(name) AS n FROM cheap;
SELECT * FROM cheap;
SELECT * FROM cheap_names;
INSERT INTO fruit VALUES(3, 'fig', 0.25);
SELECT name FROM cheap ORDER BY name;
SELECT count(*) FROM audit;
DROP TRIGGER log_ins;
INSERT INTO fruit VALUES(4, 'kiwi', 0.75);
SELECT group_concat(name) FROM audit;
DROP VIEW cheap;
SELECT * FROM cheap;
SQL
check "TEMP VIEW and TEMP TRIGGER last for the session, DROP ends them" diff "$TMP/o11" - <<'OUT'
apple
APPLE
apple
fig
1
fig
OUT
r=0; grep -q 'view cheap already exists' "$TMP/e11" && grep -q 'no such table: cheap' "$TMP/e11" && r=1
check "... with SQLite's errors for a second CREATE and after DROP" [ $r = 1 ]
[ $r = 1 ] || sed "s/^/#   /" "$TMP/e11"

# rows of SELECTs inside BEGIN ... COMMIT print after the COMMIT, in order;
# a failing statement of a transaction is named
"$M" >"$TMP/o13" 2>"$TMP/e13" <<'SQL'
CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER CHECK (bal >= 0));
INSERT INTO acct VALUES(1, 15), (2, 0);
BEGIN;
UPDATE acct SET bal = bal - 10 WHERE id = 1;
SELECT 'inside', bal FROM acct WHERE id = 1;
UPDATE acct SET bal = bal + 10 WHERE id = 2 RETURNING bal;
COMMIT;
SELECT 'after', sum(bal) FROM acct;
BEGIN;
UPDATE acct SET bal = bal - 10 WHERE id = 1;
SELECT 'never';
COMMIT;
SELECT 'unchanged', bal FROM acct WHERE id = 1;
SQL
check "rows of a transaction's SELECT and RETURNING print after its COMMIT" diff "$TMP/o13" - <<'OUT'
inside|5
10
after|15
unchanged|5
OUT
check "... and a failing statement is named (statement 1 of the transaction ...: CHECK constraint failed)" \
	grep -q "statement 1 of the transaction (UPDATE acct SET bal = bal - 10 WHERE id = 1) failed: CHECK constraint failed" "$TMP/e13"
[ -s "$TMP/e13" ] && sed "s/^/#   /" "$TMP/e13"

# .backup: a SQLite file equal to the cluster's tables, consistent at one
# instance even while transactions write two tables together
"$M" -c "PRAGMA user_version = 7" -c ".backup $TMP/copy.db" >"$TMP/o12" 2>"$TMP/e12"
rc=$?
"$M" -c ".mode csv" -c "SELECT * FROM fruit ORDER BY id" -c "SELECT * FROM inv ORDER BY rowid" >"$TMP/want.csv" 2>/dev/null
{ sqlite3 -csv "$TMP/copy.db" "SELECT * FROM fruit ORDER BY id; SELECT * FROM inv ORDER BY rowid;"
  sqlite3 "$TMP/copy.db" "PRAGMA user_version; PRAGMA integrity_check;
    SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema WHERE name LIKE 'mtr%' AND type = 'table' ORDER BY name);
    SELECT count(*) FROM mtr_meta WHERE key = 'backup_instance' AND value > 0;"
} >"$TMP/got.csv" 2>&1
printf '7\nok\nmtr_cursor,mtr_meta,mtr_requests\n1\n' >>"$TMP/want.csv"
check ".backup FILE: the same rows, user_version, a sound file; of the replica's tables mtr_meta (settings, backup_instance), and mtr_cursor and mtr_requests for a point-in-time restore (exit $rc)" \
	diff "$TMP/want.csv" "$TMP/got.csv"
"$M" -c "CREATE TABLE pa(x); CREATE TABLE pb(x)" >/dev/null 2>&1
i=0
while [ $i -lt 400 ]; do echo "BEGIN; INSERT INTO pa VALUES($i); INSERT INTO pb VALUES($i); COMMIT;"; i=$((i + 1)); done >"$TMP/pairs.sql"
"$M" <"$TMP/pairs.sql" >/dev/null 2>&1 &
wpid=$!
good=0 tries=0
while alive $wpid && [ $tries -lt 20 ]; do
	tries=$((tries + 1))
	"$M" -c ".backup $TMP/c$tries.db" >/dev/null 2>&1 || continue
	n=$(sqlite3 "$TMP/c$tries.db" "SELECT (SELECT count(*) FROM pa) || ' ' || (SELECT count(*) FROM pb)")
	[ "${n% *}" = "${n#* }" ] && good=$((good + 1)) || diag "copy $tries: pa and pb differ: $n"
done
wait $wpid
check ".backup during writes: every copy has both halves of every transaction ($good of $tries)" [ $good = $tries -a $tries -gt 0 ]
"$M" -c ".backup $TMP/no/such/dir/x.db" >/dev/null 2>"$TMP/e13"
r=$?
grep -q "Error: .backup: cannot create" "$TMP/e13" || r="$r (no message)"
check ".backup into a missing directory: exit 1 and a message" [ "$r" = 1 ]

# quoted dot-command arguments are unquoted, as sqlite3 does
"$M" -c "CREATE TABLE \"my table\"(x)" -c "INSERT INTO \"my table\" VALUES(NULL)" >/dev/null 2>&1
"$M" -c ".nullvalue ''" -c ".mode csv" -c "SELECT x, 'a' FROM \"my table\"" -c ".schema 'my table'" \
	-c '.dump "my table"' >"$TMP/o14" 2>&1
r=0; grep -q '^,a$' "$TMP/o14" && [ "$(grep -c '^CREATE TABLE IF NOT EXISTS "my table"(x);$' "$TMP/o14")" = 2 ] &&
	grep -q '^INSERT INTO "my table" VALUES(NULL);$' "$TMP/o14" && r=1
check ".nullvalue '', .schema 'my table', .dump \"my table\": the quotes go" [ $r = 1 ]
[ $r = 1 ] || sed 's/^/#   /' "$TMP/o14"

# .import: a message per bad row, the rest imported, a summary, exit 1
printf 'id,v\n1,a\n2,b\n1,dup\n3,c\n' >"$TMP/bad.csv"
"$M" -c "CREATE TABLE imp(id INTEGER PRIMARY KEY, v)" -c ".import --csv --skip 1 $TMP/bad.csv imp" \
	-c "SELECT group_concat(v, '') FROM imp" >"$TMP/o15" 2>"$TMP/e15"
rc=$?
r=0; [ $rc = 1 ] && grep -q '^abc$' "$TMP/o15" && grep -q "bad.csv:4: INSERT failed: UNIQUE constraint failed: imp.id" "$TMP/e15" &&
	grep -q "imported 3 rows into imp; 1 rows failed" "$TMP/e15" && r=1
check ".import names the bad row (FILE:LINE and the error), imports the rest, says how many (exit $rc)" [ $r = 1 ]
[ $r = 1 ] || sed 's/^/#   /' "$TMP/o15" "$TMP/e15"

# .import: rows that keep failing stop it after 100 in a row; failures
# with good rows between them do not (a failed batch is split and its
# parts sent together: the report still comes in line order)
awk 'BEGIN { print "id,v"; for (i = 1; i <= 3000; i++) print i "," ((i % 7 == 0 && i < 1000) || (i >= 2000 && i < 2150) ? "" : "x" i) }' \
	>"$TMP/many.csv"
"$M" -c "CREATE TABLE many(id INTEGER PRIMARY KEY, v TEXT CHECK (v <> ''))" -c ".import --csv --skip 1 $TMP/many.csv many" \
	-c "SELECT count(*), min(id), max(id) FROM many" >"$TMP/o16" 2>"$TMP/e16"
rc=$?
grep -o '^[^ ]*many.csv:[0-9]*' "$TMP/e16" | sed 's/.*://' >"$TMP/l16"
awk 'BEGIN { for (i = 1; i <= 3000; i++) if ((i % 7 == 0 && i < 1000)) print i + 1; for (i = 2000; i < 2100; i++) print i + 1 }' >"$TMP/w16"
r=0; [ $rc = 1 ] && cmp -s "$TMP/l16" "$TMP/w16" && grep -q "100 rows in a row failed; stopped" "$TMP/e16" && r=1
check ".import: 142 scattered bad rows reported in line order, then 100 failures in a row stop it (exit $rc)" [ $r = 1 ]
[ $r = 1 ] || { sed 's/^/#   /' "$TMP/o16"; head -5 "$TMP/e16" | sed 's/^/#   /'; diff "$TMP/w16" "$TMP/l16" | head -10 | sed 's/^/#   /'; }

# a cluster found half-dead: the shell restarts what is missing and at exit
# stops only that
pid_alive() { [ -f "$1" ] && alive "$(cat "$1")"; }
p1=$(cat "$MTR_LOCAL_DIR/server-1.pid")
stop_pid "$p1" 10
# .cluster through the proxy (a URI: attaching to "local" would restart it)
# tells the dead server as unreachable, with no lag
dead_shown() {
	"$M" "mtr://127.0.0.1:$MTR_LOCAL_PORT" -c ".cluster" >"$TMP/o15c" 2>&1 &&
		awk -F'|' '{ for (i = 2; i <= 8; i++) gsub(/^ +| +$/, "", $i) }
			$2 == 1 && $4 == "unreachable" && $5 == 0 && $8 == "" { dead++ }
			$4 == "leader" && $5 == 1 { leaders++ }
			END { exit !(dead == 1 && leaders == 1) }' "$TMP/o15c"
}
wait_for 15 dead_shown
check ".cluster: a stopped server is unreachable (no lag), one live leader" dead_shown
dead_shown || sed 's/^/#   /' "$TMP/o15c"
"$M" -c "SELECT 1" >/dev/null 2>"$TMP/e16"
r=0; pid_alive "$MTR_LOCAL_DIR/server-0.pid" && pid_alive "$MTR_LOCAL_DIR/proxy.pid" && ! pid_alive "$MTR_LOCAL_DIR/server-1.pid" &&
	grep -q "restarted 1 of its 4 processes" "$TMP/e16" && grep -q "stopped a server (pid" "$TMP/e16" && r=1
check "a half-dead cluster: the server it restarted is stopped at exit, the others are left" [ $r = 1 ]
[ $r = 1 ] || sed 's/^/#   /' "$TMP/e16"

# SIGTERM (and SIGHUP: mtrsql_tmux.sh) stop the cluster the shell started
for f in "$MTR_LOCAL_DIR"/*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" 10; done
sleep 60 | "$M" >/dev/null 2>"$TMP/e17" &
mpid=$!
k=0
while ! grep -q "started the local cluster" "$TMP/e17" && [ $k -lt 300 ]; do sleep 0.1; k=$((k + 1)); done
kill -TERM $mpid
# the shell ends after it printed that it stopped the cluster (the daemons
# can be gone before it says so: wait for the shell, not for them)
k=0
while alive $mpid && [ $k -lt 300 ]; do sleep 0.1; k=$((k + 1)); done
r=0; ! pgrep -f "$MTR_LOCAL_DIR/(server-[0-9]|proxy).conf" >/dev/null && grep -q "stopped the local cluster" "$TMP/e17" && r=1
check "SIGTERM: the shell stops the cluster it started, then ends" [ $r = 1 ]
if [ $r = 0 ]; then # what the shell and the daemons were doing (it failed once in a while)
	sed 's/^/#   /' "$TMP/e17"
	ps -o pid,stat,etime,wchan:24,args -p "$mpid" $(pgrep -f "$MTR_LOCAL_DIR/(server-[0-9]|proxy).conf") 2>&1 |
		sed 's/^/#   /'
	for t in /proc/$mpid/task/*; do
		[ -r "$t/stack" ] && echo "#   thread $(basename "$t"): $(head -3 "$t/stack" | tr '\n' ' ')"
	done
	for f in "$MTR_LOCAL_DIR"/*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" 10; done
fi

# a script's errors name its lines
printf 'SELECT 1;\n\nSELEC 2;\nINSERT INTO imp VALUES(1, %s);\n' "'again'" >"$TMP/err.sql"
"$M" <"$TMP/err.sql" >/dev/null 2>"$TMP/e18"
r=0; grep -q '^Parse error near line 3, column 1: near "SELEC"' "$TMP/e18" &&
	grep -q '^Runtime error near line 4: UNIQUE constraint failed: imp.id' "$TMP/e18" && r=1
check "errors in a script: \"Parse error near line 3\", \"Runtime error near line 4\"" [ $r = 1 ]
[ $r = 1 ] || sed 's/^/#   /' "$TMP/e18"
exit 0
