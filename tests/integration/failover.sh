#!/bin/sh
# failover.sh - a write resent after a proxy failover is applied once
# (doc/client.md "Failover and idempotency", doc/apply.md "Resends").
#
# 3 servers, 2 proxies on loopback.  The servers are stopped (SIGSTOP), a
# client whose URI names both proxies sends an INSERT ... RETURNING to the
# first, which multicasts the item; that proxy is killed (SIGKILL) before
# any answer can exist and the servers continue (SIGCONT).  The client
# fails over to the second proxy and resends the request with the same
# client and request ids, so both copies reach the order: the replicas apply
# the first, answer the second with the kept result, and the row is there
# once.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy shell/mtrsql
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)
M=$B/shell/mtrsql

plan 6

servers=$(local_servers $BASE 3)
start_servers "$TMP" 3 "$servers"
start_proxies "$TMP" 2 "$servers" "$BASE"
P1=127.0.0.1:$((BASE + 11)) P2=127.0.0.1:$((BASE + 12))
cont() { for s in $spids; do kill -CONT "$s" 2>/dev/null; done; }
at_exit cont
wait_for 20 leader_in "$TMP"
check "3 servers and 2 proxies up, a leader elected" leader_in "$TMP"

"$M" "mtr://$P1" -c "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)" >"$TMP/o1" 2>&1
check "CREATE TABLE through the first proxy" [ $? = 0 ]

# the write reaches the servers' sockets through proxy 1, which then dies
for s in $spids; do kill -STOP "$s"; done
"$M" "mtr://$P1,$P2?timeout=30000" -c "INSERT INTO t(v) VALUES('once') RETURNING id" >"$TMP/o2" 2>"$TMP/e2" &
cpid=$!
sleep 1
eval "kill -KILL \$ppid_1"
sleep 0.5
cont
wait $cpid
rc=$?
got=$(cat "$TMP/o2")
check "the client failed over and got its answer, the row id (exit $rc, '$got')" [ $rc = 0 -a "$got" = 1 ]
[ $rc = 0 ] || sed 's/^/#   /' "$TMP/e2"

"$M" "mtr://$P2?consistency=linearizable" -c "SELECT count(*) FROM t" >"$TMP/o3" 2>&1
n=$(cat "$TMP/o3")
check "the row is there once (count: $n)" [ "$n" = 1 ]
seen=0
for i in 0 1 2; do grep -q "request [0-9]* of client [0-9a-f]* was applied before" "$TMP/s$i.log" && seen=$((seen + 1)); done
check "every replica recognised the resend ($seen of 3)" [ $seen = 3 ]

# the servers agree (digests through the cluster's own view)
"$M" "mtr://$P2" -c "SELECT count(*) FROM t WHERE v = 'once'" >"$TMP/o4" 2>&1
check "a read through the surviving proxy agrees" [ "$(cat "$TMP/o4")" = 1 ]
exit 0
