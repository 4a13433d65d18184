#!/bin/bash
# metronomed.sh - the metronomed program as a process: options and exit
# codes, three servers on loopback electing a leader, the log lines other
# tests grep, a clean stop on SIGTERM (exit 0), a restart that recovers, and
# doc/config.md in step with --print-config-doc; the cluster key: --gen-key,
# no key is refused (both daemons), cluster.insecure = yes starts with a
# warning.  Items and results are
# covered in-process by tests/unit/test_server and end to end by the
# cluster suites.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

BIN="$MTR_BUILDDIR/src/metronomed"
[ -x "$BIN" ] || skip_all "no $BIN (build first)"
plan 17

TMP=$(mktemp -d "${TMPDIR:-/tmp}/metronomed-XXXXXX")
at_exit rm -rf "$TMP"
BASE=$((20000 + RANDOM % 30000))
SERVERS="127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2))"
for i in 0 1 2; do
	cat >"$TMP/s$i.conf" <<EOC
# test server $i
cluster.servers = $SERVERS
cluster.key = $MTR_KEY
server.id = $i
data.dir = $TMP/d$i
paxos.heartbeat = 20ms
paxos.election = 200ms
EOC
done

# wait_log FILE PATTERN SECONDS
wait_log() {
	local i=0
	while [ $i -lt $(($3 * 10)) ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

"$BIN" --help >"$TMP/help" 2>&1
check "--help exits 0 and lists the keys" grep -q "server.compact_lag" "$TMP/help"

k1=$("$BIN" --gen-key) && k2=$("$MTR_BUILDDIR/src/mtrproxy" --gen-key)
check "--gen-key prints 32 hex digits, a new key each time (both daemons)" \
	sh -c "echo '$k1' | grep -qx '[0-9a-f]\{32\}' && echo '$k2' | grep -qx '[0-9a-f]\{32\}' && [ '$k1' != '$k2' ]"

"$BIN" -c "$TMP/s0.conf" -o cluster.key= >"$TMP/nokey" 2>&1
rc=$?
check "no cluster.key: metronomed exits 1 naming cluster.key and --gen-key" \
	test $rc = 1 -a -n "$(grep 'cluster.key is not set.*--gen-key' "$TMP/nokey")"
"$MTR_BUILDDIR/src/mtrproxy" -c /dev/null -o cluster.servers="$SERVERS" >"$TMP/nokey.p" 2>&1
rc=$?
check "no cluster.key: mtrproxy exits 1 naming cluster.key" test $rc = 1 -a -n "$(grep 'cluster.key is not set' "$TMP/nokey.p")"
"$BIN" -c "$TMP/s0.conf" -o cluster.key=0123 >"$TMP/shortkey" 2>&1
rc=$?
check "a cluster.key that is not 32 hex digits exits 1" test $rc = 1 -a -n "$(grep 'cluster.key: expected 32' "$TMP/shortkey")"

"$BIN" -c "$TMP/s0.conf" -o no.such.key=1 >"$TMP/bad" 2>&1
rc=$?
check "an unknown key exits 1 naming the key" test $rc = 1 -a -n "$(grep no.such.key "$TMP/bad")"

"$BIN" -c "$TMP/s0.conf" -o server.id=3 >"$TMP/bad2" 2>&1
rc=$?
check "server.id out of range exits 1" test $rc = 1 -a -n "$(grep server.id "$TMP/bad2")"

for i in 0 1 2; do
	spawn "$TMP/l$i.log" "$BIN" -c "$TMP/s$i.conf" >/dev/null
	pid[$i]=$!
done
ok_start=1
for i in 0 1 2; do
	wait_log "$TMP/l$i.log" "listening on 127.0.0.1:$((BASE + i)) as server $i of 3" 10 || ok_start=0
	grep -q "recovered: applied instance 0" "$TMP/l$i.log" || ok_start=0
done
check "three servers start and log listening/recovered" test $ok_start = 1

leader=0
for t in $(seq 1 100); do
	grep -q "became leader (ballot" "$TMP"/l?.log && { leader=1; break; }
	sleep 0.1
done
check "one of them logs 'became leader (ballot B)'" test $leader = 1

"$BIN" -c "$TMP/s0.conf" -o data.dir="$TMP/other" >"$TMP/dup" 2>&1
rc=$?
check "a second server on a bound address exits 2" test $rc = 2

"$BIN" -c "$TMP/s1.conf" -o cluster.servers="$SERVERS,127.0.0.1:$((BASE + 3))" -o server.id=3 >"$TMP/dup2" 2>&1
rc=$?
check "a second server on a data directory in use exits 2" test $rc = 2 -a -n "$(grep 'in use' "$TMP/dup2")"

all0=1
for i in 0 1 2; do
	kill -TERM "${pid[$i]}"
	wait "${pid[$i]}"
	rc=$?
	[ $rc = 0 ] || { all0=0; diag "server $i exited $rc"; }
done
check "SIGTERM stops every server with exit 0" test $all0 = 1
check "the stop is logged" grep -q "stopped" "$TMP/l0.log"

spawn "$TMP/r0.log" "$BIN" -c "$TMP/s0.conf" -o data.durability=memory >/dev/null
p=$!
check "a restart on the same data recovers" wait_log "$TMP/r0.log" "recovered: applied instance" 10
kill -INT "$p"
wait "$p"
rc=$?
check "SIGINT stops it with exit 0" test $rc = 0

spawn "$TMP/i0.log" "$BIN" -c "$TMP/s0.conf" -o cluster.key= -o cluster.insecure=yes -o data.durability=memory >/dev/null
p=$!
check "cluster.insecure = yes: starts without a key and warns" wait_log "$TMP/i0.log" "INSECURE: no cluster.key" 10
stop_pid "$p"

"$BIN" --print-config-doc >"$TMP/keys.md"
missing=0
while IFS= read -r line; do
	grep -qF -- "$line" "$MTR_SRCDIR/doc/config.md" || { missing=1; diag "doc/config.md lacks: $line"; }
done <"$TMP/keys.md"
check "doc/config.md holds the table --print-config-doc prints" test $missing = 0
