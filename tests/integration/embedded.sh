#!/bin/sh
# embedded.sh - the client library's embedded mode (src/client/client_embed.c): the
# proxy runs inside the application; no mtrproxy daemon.
#   1. mtr+embedded://SERVERS against three metronomed: the example program
#      and a small load.
#   2. URI `local`: the local cluster is started on first use (in a
#      temporary MTR_LOCAL_DIR), found again by the second use, and its data
#      is still there.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
for p in src/metronomed src/mtrproxy examples/example tests/tools/mtrload; do
	[ -x "$B/$p" ] || skip_all "$p is not built"
done
TMP=$(mktemp -d)
BASE=$(($(port_block) + 5))
S=127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2))
stop_local() {
	for f in "$TMP"/local/*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" 10; done
	rm -rf "$TMP"
}
at_exit stop_local

plan 6
for i in 0 1 2; do
	spawn "$TMP/s$i.log" "$B/src/metronomed" -c /dev/null -o cluster.servers=$S -o server.id=$i \
		-o data.dir="$TMP/d$i" >/dev/null
done
timeout 30 "$B/examples/example" "mtr+embedded://$S" >"$TMP/ex.out" 2>&1
check "example over mtr+embedded:// (no proxy daemon)" grep -q '^2 pear' "$TMP/ex.out"
timeout 60 "$B/tests/tools/mtrload" --uri "mtr+embedded://$S" --clients 2 --rows 2000 --pipeline 8 \
	>"$TMP/load.out" 2>&1
diag "$(cat "$TMP/load.out" | tail -1)"
check "2000 writes through two embedded proxies, none failed" grep -q '^acked 2000 failed 0' "$TMP/load.out"
timeout 30 "$B/examples/example" "mtr+embedded://$S?cluster=77&timeout=1500" >"$TMP/bad.out" 2>&1
check "another cluster id: the open or first request fails with a timeout, not a hang" grep -q 'TIMEDOUT' "$TMP/bad.out"

export MTR_LOCAL_DIR="$TMP/local" MTR_LOCAL_PORT=$((BASE + 10)) MTR_BINDIR="$B/src"
timeout 60 "$B/examples/example" local >"$TMP/l1.out" 2>&1
check "URI local: starts the local cluster and runs the example" grep -q '^2 pear' "$TMP/l1.out"
pids1=$(cat "$TMP"/local/*.pid | tr '\n' ' ')
timeout 60 "$B/examples/example" local >"$TMP/l2.out" 2>&1
pids2=$(cat "$TMP"/local/*.pid | tr '\n' ' ')
same=0
[ "$pids1" = "$pids2" ] && grep -q '^2 pear' "$TMP/l2.out" && same=1
check "URI local again: attaches to the same processes" [ $same = 1 ]
check "the local cluster keeps its data in MTR_LOCAL_DIR" test -f "$TMP/local/server-0/replica.db"
exit 0
