#!/bin/sh
# lost_results.sh - results that cannot be lost for good (issue 14, item 1;
# doc/proxy.md "Late results", doc/protocol.md "RESULT_REQUEST").
#
# 3 servers whose result cache holds only 2 instances (server.result_cache),
# so that a result asked for again must come from mtr_requests, and 3
# proxies on loopback.  Ten rounds in a row of the proxy cut: two mtrload
# processes write through proxies 1 and 2; every UDP datagram into proxy 1
# is dropped for 5 s (iptables on lo: its RESULT datagrams are lost, its
# items still reach the servers and are applied); then the rule goes.
# After each heal:
#   - every connection of the load through proxy 1 (open before the cut)
#     gets an answer to a new request within 5 s (no hung connection); the
#     time from the heal to the first answer is printed;
#   - a new connection through proxy 1 is served within 5 s, and proxy 1
#     releases everything it numbered once the load stops (not paused);
# and at the end: every acknowledged write is present exactly once on every
# replica, the digests are equal, and the servers answered from mtr_requests
# (server.results_kept > 0).
# Then "outcome unknown": proxy 3 (proxy.write_timeout = 1s) is cut off in
# both directions; a write through it gets MTR_EUNKNOWN ("outcome unknown")
# within the bound, not silence; after the heal the row (which the proxy
# kept and the servers then got) is there exactly once.
#
# Needs root and a usable iptables (skipped with the reason otherwise).  Every
# rule added is removed on every exit path.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy shell/mtrsql tests/tools/mtrload tests/tools/mtrdigest
command -v sqlite3 >/dev/null 2>&1 || skip_all "no sqlite3 command (package sqlite3)"
[ "$(id -u)" = 0 ] || skip_all "needs root (iptables rules on lo); CI runs as root"
command -v iptables >/dev/null 2>&1 || skip_all "no iptables command (package iptables)"
iptables -L INPUT -n >/dev/null 2>&1 || skip_all "iptables is not usable here: $(iptables -L INPUT -n 2>&1 | head -1)"

ROUNDS=${MTR_LOST_ROUNDS:-10}
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)
M=$B/shell/mtrsql

# ---- iptables rules: every one added is remembered and removed at exit ----
RULES=$TMP/rules
: >"$RULES"
TAG=mtr-lost-results-$$ # a comment on our rules: whose they are
rule_add() { iptables -I INPUT -i lo -p udp "$@" -m comment --comment "$TAG" -j DROP && echo "$*" >>"$RULES"; }
rule_del() {
	iptables -D INPUT -i lo -p udp "$@" -m comment --comment "$TAG" -j DROP 2>/dev/null
	grep -vxF -- "$*" "$RULES" >"$RULES.new"; mv "$RULES.new" "$RULES"
}
rules_clear() {
	[ -f "$RULES" ] || return 0
	while read -r r; do
		# shellcheck disable=SC2086
		iptables -D INPUT -i lo -p udp $r -m comment --comment "$TAG" -j DROP 2>/dev/null
	done <"$RULES"
	: >"$RULES"
}
# first in the cleanups: before the files go
_cleanups="rules_clear$_cleanups"
# a rule of our kind can be added (the comment match included), on a port
# of our block that nothing uses
if ! rule_add --dport $((BASE + 19)) 2>"$TMP/ipt.err"; then
	skip_all "iptables cannot add a DROP rule here: $(head -1 "$TMP/ipt.err")"
fi
rule_del --dport $((BASE + 19))

plan $((ROUNDS * 2 + 8))

servers=$(local_servers $BASE 3)
i=0
spids=""
while [ $i -lt 3 ]; do
	server_conf "$TMP" $i "$servers"
	echo "server.result_cache = 2" >>"$TMP/s$i.conf"
	spawn "$TMP/s$i.log" "$B/src/metronomed" -c "$TMP/s$i.conf" >/dev/null
	spids="$spids $!"
	i=$((i + 1))
done
for k in 1 2 3; do
	proxy_conf "$TMP" $k "$servers" $((BASE + 10 + k))
	echo "proxy.bind = 127.0.0.1:$((BASE + 13 + k))" >>"$TMP/p$k.conf"
	[ $k = 3 ] && echo "proxy.write_timeout = 1s" >>"$TMP/p$k.conf"
	spawn "$TMP/p$k.log" "$B/src/mtrproxy" -c "$TMP/p$k.conf" >/dev/null
	eval "ppid_$k=$!"
done
P1=127.0.0.1:$((BASE + 11)) P2=127.0.0.1:$((BASE + 12)) P3=127.0.0.1:$((BASE + 13))
U1=$((BASE + 14)) U3=$((BASE + 16))
wait_for 20 leader_in "$TMP"
check "3 servers (result cache of 2 instances) and 3 proxies up, a leader elected" leader_in "$TMP"
"$M" "mtr://$P2" -c "CREATE TABLE t(id INTEGER PRIMARY KEY, client INTEGER, payload TEXT); CREATE TABLE probe(x)" \
	>"$TMP/create.out" 2>&1
check "tables created" [ $? = 0 ]

lines() { cat "$@" 2>/dev/null | wc -l; }
ms() { echo $(($(date +%s%N) / 1000000)); }
CLIENTS=4
ROWS=400000 # per load and round: more than it can write before it is stopped
SHARE=$((ROWS / CLIENTS))
# worker_counts FILE FIRST: acked ids per worker of a load that started at FIRST
worker_counts() {
	awk -v f="$2" -v s=$SHARE -v n=$CLIENTS '{w = int(($1 - f) / s); if (w < n) c[w]++}
		END {for (i = 0; i < n; i++) printf "%d ", c[i] + 0}' "$1" 2>/dev/null
}
# all_grew BEFORE AFTER: every worker's count grew
all_grew() {
	echo "$1|$2" | awk -F'|' '{n = split($1, a, " "); split($2, b, " "); for (i = 1; i <= n; i++) if (b[i] <= a[i]) exit 1}'
}
# proxy 1's counters as the servers show them (mtr_stats, sent every second)
p1_stat() {
	"$M" "mtr://$P2?consistency=none" -c \
		"SELECT max(value) FROM mtr_stats WHERE process LIKE 'proxy 256@%' AND name = 'proxy.$1'" 2>/dev/null
}
p1_drained() {
	[ "$("$M" "mtr://$P2?consistency=none" -c "SELECT (SELECT max(value) FROM mtr_stats WHERE process LIKE
		'proxy 256@%' AND name = 'proxy.released') = (SELECT max(value) FROM mtr_stats WHERE process LIKE
		'proxy 256@%' AND name = 'proxy.items')" 2>/dev/null)" = 1 ]
}

heal_ms_all=""
hung=0
paused=0
r=1
while [ $r -le "$ROUNDS" ]; do
	F1=$((r * 1000000)) F2=$((r * 1000000 + 500000))
	"$B/tests/tools/mtrload" --uri "mtr://$P1" --clients $CLIENTS --rows $ROWS --first-id $F1 --pipeline 16 \
		--payload 50 --acked "$TMP/acked1.$r" >"$TMP/load1.$r.out" 2>"$TMP/load1.$r.err" &
	l1=$!
	"$B/tests/tools/mtrload" --uri "mtr://$P2" --clients $CLIENTS --rows $ROWS --first-id $F2 --pipeline 16 \
		--payload 50 --acked "$TMP/acked2.$r" >"$TMP/load2.$r.out" 2>"$TMP/load2.$r.err" &
	l2=$!
	# both loads under way on every connection
	k=0
	while [ $k -lt 100 ]; do
		c1=$(worker_counts "$TMP/acked1.$r" $F1)
		case " $c1" in *" 0 "*) ;; *) [ "$(lines "$TMP/acked2.$r")" -gt 0 ] && break ;; esac
		sleep 0.1
		k=$((k + 1))
	done
	sleep 1
	rule_add --dport $U1
	sleep 5
	before=$(worker_counts "$TMP/acked1.$r" $F1)
	n0=$(lines "$TMP/acked1.$r")
	rule_del --dport $U1
	t0=$(ms)
	first=""
	after=$before
	while [ $(($(ms) - t0)) -lt 5000 ]; do
		[ -z "$first" ] && [ "$(lines "$TMP/acked1.$r")" -gt "$n0" ] && first=$(($(ms) - t0))
		after=$(worker_counts "$TMP/acked1.$r" $F1)
		all_grew "$before" "$after" && break
		sleep 0.05
	done
	[ -z "$first" ] && [ "$(lines "$TMP/acked1.$r")" -gt "$n0" ] && first=$(($(ms) - t0))
	if all_grew "$before" "$after"; then
		ok "round $r: every connection through the cut proxy answered within 5 s of the heal (first answer after ${first} ms; acked per connection $before -> $after)"
		heal_ms_all="$heal_ms_all $first"
	else
		not_ok "round $r: a connection through the cut proxy got no answer within 5 s of the heal (acked per connection $before -> $after)"
		hung=$((hung + 1))
	fi
	t1=$(ms)
	"$M" "mtr://$P1?timeout=5000" -c "INSERT INTO probe VALUES($r)" >"$TMP/probe.$r" 2>&1
	prc=$?
	took=$(($(ms) - t1))
	kill -KILL $l1 $l2 2>/dev/null
	wait $l1 $l2 2>/dev/null
	# with the load stopped, proxy 1 releases all it numbered (its
	# counters reach the servers every second)
	if [ $prc = 0 ] && wait_for 15 p1_drained; then
		ok "round $r: a new connection through proxy 1 served in $took ms; proxy 1 released every item it numbered ($(p1_stat released))"
	else
		not_ok "round $r: proxy 1 not serving (probe exit $prc after $took ms: $(head -1 "$TMP/probe.$r")) or not drained (released $(p1_stat released) of $(p1_stat items))"
		paused=$((paused + 1))
	fi
	r=$((r + 1))
done
diag "heal to first answer (ms) per round:$heal_ms_all"
check "no hung connection and no paused proxy in $ROUNDS rounds (hung $hung, paused $paused)" [ $hung = 0 -a $paused = 0 ]
failed=$(cat "$TMP"/load*.err 2>/dev/null | grep -c 'mtrload:')
diag "errors reported by the loads (first 5 per connection): $failed"
cat "$TMP"/load*.err 2>/dev/null | grep 'mtrload:' | sort | uniq -c | sort -rn | head -5 | sed 's/^/#   /'

srv_sum() {
	"$M" "mtr://$P2?consistency=none" -c \
		"SELECT sum(value) FROM mtr_stats WHERE process LIKE 'server %' AND name = 'server.$1'" 2>/dev/null
}
kept=$(srv_sum results_kept)
diag "results asked for again, all servers: from the cache $(srv_sum results_cached), from mtr_requests $kept, RESULT_UNKNOWN $(srv_sum results_unknown)"
check "results asked for again were answered from mtr_requests (result cache of 2 instances)" [ "${kept:-0}" -gt 0 ]

# ---- outcome unknown: proxy 3 reaches no server --------------------------
rule_add --dport $U3
rule_add --sport $U3
t1=$(ms)
"$M" "mtr://$P3?timeout=20000" -c "INSERT INTO probe VALUES(-1)" >"$TMP/unk.out" 2>&1
urc=$?
took=$(($(ms) - t1))
diag "through the cut-off proxy 3: exit $urc after $took ms: $(head -1 "$TMP/unk.out")"
unknown_ok() { [ $urc != 0 ] && [ $took -lt 6000 ] && grep -q "outcome unknown" "$TMP/unk.out"; }
check "a write no server could have answered gets 'outcome unknown' within the bound (proxy.write_timeout 1 s; took $took ms)" \
	unknown_ok
rule_del --dport $U3
rule_del --sport $U3
one() { [ "$("$M" "mtr://$P2?consistency=linearizable" -c "SELECT count(*) FROM probe WHERE x = -1" 2>/dev/null)" = 1 ]; }
wait_for 15 one
check "after the heal, the write whose outcome was unknown is there exactly once (proxy 3 kept it)" one

# ---- the replicas ----------------------------------------------------------
sleep 2
for p in $spids; do stop_pid "$p" 20; done
digests=$(for i in 0 1 2; do echo "$TMP/d$i"; done | xargs "$B/tests/tools/mtrdigest")
echo "$digests" | sed "s|$TMP/||; s/^/# /"
nd=$(echo "$digests" | awk '{print $3, $5, $7}' | sort -u | wc -l)
check "every replica has the same instance, digest and row count" [ "$nd" = 1 ]
total=$(lines "$TMP"/acked1.* "$TMP"/acked2.*)
{ echo "CREATE TEMP TABLE a(id INTEGER PRIMARY KEY);"; echo "BEGIN;"
  cat "$TMP"/acked1.* "$TMP"/acked2.* | sed 's/.*/INSERT OR IGNORE INTO a VALUES(&);/'; echo "COMMIT;"
  echo "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM a WHERE id NOT IN (SELECT id FROM t)),"
  echo "  (SELECT count(*) - count(DISTINCT id) FROM t);"
} >"$TMP/check.sql"
good=1
for i in 0 1 2; do
	res=$(sqlite3 "file:$TMP/d$i/replica.db?mode=ro" <"$TMP/check.sql" 2>&1)
	diag "replica $i: acked|acked-missing|duplicates = $res"
	[ "$res" = "$total|0|0" ] || good=0
done
check "every acknowledged write ($total) present exactly once on every replica" [ $good = 1 ]

if [ $_tap_fail -gt 0 ]; then
	for f in "$TMP"/*.log; do
		diag "$f:"; grep -v " INFO " "$f" | tail -15 | sed 's/^/#   /'
	done
fi
exit 0
