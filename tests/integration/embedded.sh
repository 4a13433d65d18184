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

plan 8
for i in 0 1 2; do
	spawn "$TMP/s$i.log" "$B/src/metronomed" -c /dev/null -o cluster.servers=$S -o cluster.key=$MTR_KEY \
		-o server.id=$i -o data.dir="$TMP/d$i" >/dev/null
done
timeout 30 "$B/examples/example" "mtr+embedded://$S?key=$MTR_KEY" >"$TMP/ex.out" 2>&1
check "example over mtr+embedded:// (no proxy daemon)" grep -q '^2 pear' "$TMP/ex.out"
timeout 60 "$B/tests/tools/mtrload" --uri "mtr+embedded://$S?key=$MTR_KEY" --clients 2 --rows 2000 --pipeline 8 \
	>"$TMP/load.out" 2>&1
diag "$(cat "$TMP/load.out" | tail -1)"
check "2000 writes through two embedded proxies, none failed" grep -q '^acked 2000 failed 0' "$TMP/load.out"
timeout 30 "$B/examples/example" "mtr+embedded://$S?key=$MTR_KEY&cluster=77&timeout=1500" >"$TMP/bad.out" 2>&1
check "another cluster id: the open or first request fails with a timeout, not a hang" grep -q 'TIMEDOUT' "$TMP/bad.out"
timeout 30 "$B/examples/example" "mtr+embedded://$S" >"$TMP/nokey.out" 2>&1
check "mtr+embedded:// without key= is refused, naming cluster.key" grep -q 'cluster.key is not set' "$TMP/nokey.out"

export MTR_LOCAL_DIR="$TMP/local" MTR_LOCAL_PORT=$((BASE + 10)) MTR_BINDIR="$B/src"
timeout 60 "$B/examples/example" local >"$TMP/l1.out" 2>&1
check "URI local: starts the local cluster and runs the example" grep -q '^2 pear' "$TMP/l1.out"
check "the local cluster has a key of its own in every config" \
	sh -c "[ \$(grep -h '^cluster.key = [0-9a-f]\{32\}\$' '$TMP'/local/*.conf | sort -u | wc -l) = 1 ] && \
		! grep -q '$MTR_KEY' '$TMP'/local/proxy.conf"
pids1=$(cat "$TMP"/local/*.pid | tr '\n' ' ')
timeout 60 "$B/examples/example" local >"$TMP/l2.out" 2>&1
pids2=$(cat "$TMP"/local/*.pid | tr '\n' ' ')
same=0
[ "$pids1" = "$pids2" ] && grep -q '^2 pear' "$TMP/l2.out" && same=1
check "URI local again: attaches to the same processes" [ $same = 1 ]
check "the local cluster keeps its data in MTR_LOCAL_DIR" test -f "$TMP/local/server-0/replica.db"
exit 0
