#!/bin/bash
# stats.sh - mtr_stats on a running cluster: every server's and the proxy's
# counters, drops by reason included (doc/server.md "Counters").
#
# 3 servers and a proxy on loopback; writes go through the proxy, and a few
# datagrams that are not Metronome's are sent to server 0 (bash /dev/udp,
# loopback only).  One SELECT through the proxy, answered by one replica,
# must then show for each server its transport drop counters by reason,
# the server's own drop reasons, and the Paxos and apply counters; the
# counters of the proxy; and server 0's transport.drop.magic must count the
# foreign datagrams.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy shell/mtrsql tests/tools/mtrforge
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)
M=$B/shell/mtrsql

plan 8

servers=$(local_servers $BASE 3)
start_servers "$TMP" 3 "$servers"
proxy_conf "$TMP" 1 "$servers" $((BASE + 11))
spawn "$TMP/p1.log" "$B/src/mtrproxy" -c "$TMP/p1.conf" >/dev/null
P=mtr://127.0.0.1:$((BASE + 11))
wait_for 20 leader_in "$TMP"
"$M" "$P" -c "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2); INSERT INTO t SELECT x + 2 FROM t" >"$TMP/w" 2>&1
check "writes through the proxy" [ $? = 0 ]

# 5 datagrams without the Metronome magic (longer than a header and a
# trailer, or they would count as truncated), to server 0's port
for k in 1 2 3 4 5; do
	echo "this is not a Metronome datagram, number $k, and it is long enough" >/dev/udp/127.0.0.1/$BASE
done

# a STATUS with the cluster key but not from a server's address, to the
# proxy: it must be dropped and counted (proxy.drop.sender)
PU=$(sed -n 's/.*proxy: udp \([0-9.]*:[0-9]*\),.*/\1/p' "$TMP/p1.log" | head -1)
"$B/tests/tools/mtrforge" --to "$PU" --key "$MTR_KEY" --sender 0 status >"$TMP/forge" 2>&1

q() { "$M" "$P" -c "$1" 2>>"$TMP/q.err"; }
# every server's counters reach the replica that answers within about 2 s
all_in() { [ "$(q "SELECT count(DISTINCT process) FROM mtr_stats WHERE process LIKE 'server %' AND age_ms < 5000")" = 3 ]; }
magic_counted() { [ "$(q "SELECT value FROM mtr_stats WHERE process = 'server 0' AND name = 'transport.drop.magic'")" = 5 ]; }
wait_for 20 all_in
wait_for 10 magic_counted
q "SELECT * FROM mtr_stats" >"$TMP/stats"
diag "$(wc -l <"$TMP/stats") rows, e.g.: $(grep -E 'server 1\|(paxos.delivered|apply.instances|transport.drop.integrity)\|' "$TMP/stats" | tr '\n' ' ')"

per_server() { # per_server NAME: every server has a row NAME
	[ "$(awk -F'|' -v n="$1" '$2 == n && $1 ~ /^server [012]$/ {print $1}' "$TMP/stats" | sort -u | wc -l)" = 3 ]
}
check "every server shows its transport drops by reason (integrity, magic, cluster, ...)" \
	sh -c "$(declare -f per_server); TMP='$TMP'; per_server transport.drop.integrity && per_server transport.drop.magic && per_server transport.drop.cluster"
check "every server shows its own drop reasons (server.drop.*)" \
	sh -c "$(declare -f per_server); TMP='$TMP'; per_server server.drop.type && per_server server.drop.paxos_sender"
positive() { # positive NAME: every server's NAME is above 0
	[ "$(awk -F'|' -v n="$1" '$2 == n && $1 ~ /^server [012]$/ && $3 > 0 {print $1}' "$TMP/stats" | sort -u | wc -l)" = 3 ]
}
check "every server's Paxos delivered and apply instances are counted (> 0)" \
	sh -c "$(declare -f positive); TMP='$TMP'; positive paxos.delivered && positive apply.instances && positive paxos.msgs_in"
check "server 0 counted the 5 foreign datagrams as transport.drop.magic" magic_counted
check "the proxy's counters are there (proxy.requests > 0)" \
	awk -F'|' '$1 ~ /^proxy / && $2 == "proxy.requests" && $3 > 0 {f = 1} END {exit !f}' "$TMP/stats"
sender_counted() {
	[ "$(q "SELECT max(value) FROM mtr_stats WHERE process LIKE 'proxy %' AND name = 'proxy.drop.sender'")" -ge 1 ] 2>/dev/null
}
wait_for 5 sender_counted
check "the proxy counted a STATUS that was not from a server's address ($PU: $(cat "$TMP/forge"))" sender_counted
check "a write cannot read mtr_stats (per-replica state, DESIGN.md invariant 6)" \
	sh -c "! '$M' '$P' -c 'INSERT INTO t SELECT value FROM mtr_stats' >/dev/null 2>&1"
