#!/bin/sh
# client.sh - libmetronome end to end against mtrfakeproxy (a fake proxy
# running requests on one SQLite file; tests/tools/fakeproxy.h): the example
# program, then mtrload with pipelining over two proxy addresses while the
# first proxy dies after 300 answers.  Every row is acknowledged, the acked
# file lists each id once, and the database holds exactly the acked ids.
. "$MTR_SRCDIR/tests/integration/lib.sh"
B=$MTR_BUILDDIR
for p in tests/tools/mtrfakeproxy tests/tools/mtrload examples/example; do
	[ -x "$B/$p" ] || skip_all "$p not built (make check builds it)"
done
plan 6
T=$(mktemp -d "${TMPDIR:-/tmp}/mtrclient-XXXXXX")
at_exit "rm -rf '$T'"

spawn "$T/fake.log" "$B/tests/tools/mtrfakeproxy" "$T/db" 300 >/dev/null
i=0
while ! grep -q '^ports ' "$T/fake.log" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
set -- $(grep '^ports ' "$T/fake.log")
P0=$2 P1=$3
[ -n "$P1" ] || { not_ok "fake proxy started"; exit 1; }

timeout 20 "$B/examples/example" "mtr://127.0.0.1:$P1" >"$T/example.out" 2>&1
check "example runs (open, create, insert with binds, query)" [ $? -eq 0 ]

out=$(timeout 60 "$B/tests/tools/mtrload" --uri "mtr://127.0.0.1:$P0,127.0.0.1:$P1?timeout=5000" \
	--clients 4 --rows 2000 --pipeline 8 --payload 50 --acked "$T/acked" 2>"$T/load.err"); rc=$?
diag "$out"
check "mtrload exits 0" [ $rc -eq 0 ]
case $out in "acked 2000 failed 0 seconds "*" writes_per_s "*" p50_ms "*" p99_ms "*) ok "mtrload line";;
	*) not_ok "mtrload line: $out"; sed 's/^/# /' "$T/load.err";; esac
nu=$(sort -u "$T/acked" | wc -l) na=$(wc -l < "$T/acked")
check "acked file: 2000 distinct ids ($nu distinct of $na)" [ "$nu" -eq 2000 -a "$na" -eq 2000 ]
check "clients failed over when proxy 0 died" grep -q "failing over" "$T/load.err"
if command -v sqlite3 >/dev/null 2>&1; then
	sqlite3 "$T/db" 'SELECT id FROM t ORDER BY id' > "$T/ids"
	sort -n "$T/acked" > "$T/acked.sorted"
	check "database holds exactly the acked ids" cmp -s "$T/ids" "$T/acked.sorted"
else
	ok "database holds exactly the acked ids # SKIP no sqlite3 command"
fi
exit $_tap_fail
