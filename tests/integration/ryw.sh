#!/bin/sh
# ryw.sh - read-your-writes across connections (issue 16; doc/client.md
# "Consistency of reads"): a write acknowledged to one connection is seen by
# every connection opened after it, with the default consistency (session),
# through the same proxy and through another.
#
# 3 servers and 2 proxies on loopback.  tests/tools/mtrryw runs rounds of
# "open a handle, write in a transaction, close; open a new handle, count
# the round's rows": 1,000 rounds through one proxy, 1,000 from proxy 1 to
# proxy 2, and rounds of 5,000-row transactions (the case the issue saw go
# stale: a large write that a lagging replica has not applied yet).  Any
# count short of the rows written is a stale read.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy tests/tools/mtrryw
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)
ROUNDS=${MTR_RYW_ROUNDS:-1000}

plan 4

servers=$(local_servers $BASE 3)
start_servers "$TMP" 3 "$servers"
start_proxies "$TMP" 2 "$servers" "$BASE"
P1=mtr://127.0.0.1:$((BASE + 11))
P2=mtr://127.0.0.1:$((BASE + 12))
wait_for 20 leader_in "$TMP"
check "3 servers and 2 proxies up, a leader elected" leader_in "$TMP"

# run_ryw NAME ARGS...: one mtrryw run, its figures as a diagnostic
run_ryw() {
	name=$1
	shift
	t0=$(date +%s%3N)
	"$B/tests/tools/mtrryw" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	rc=$?
	t1=$(date +%s%3N)
	diag "$name: $(cat "$TMP/$name.out") in $((t1 - t0)) ms (exit $rc)"
	head -5 "$TMP/$name.err" | sed 's/^/#   /'
	return $rc
}
check "$ROUNDS rounds, write and read on new connections through one proxy: 0 stale reads" \
	run_ryw one --write "$P1" --read "$P1" --rounds "$ROUNDS"
check "$ROUNDS rounds, written through proxy 1, read on a new connection through proxy 2: 0 stale reads" \
	run_ryw two --write "$P1" --read "$P2" --rounds "$ROUNDS"
check "20 rounds of 5,000-row transactions through proxy 2, read through proxy 1: 0 stale reads" \
	run_ryw big --write "$P2" --read "$P1" --rounds 20 --rows 5000
exit 0
