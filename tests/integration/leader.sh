#!/bin/sh
# leader.sh - a stable leader (issue 14, doc/paxos.md "A stable leader").
#
# 3 servers and a proxy on loopback with the default timings (heartbeat
# 50 ms, election timeout 500 ms), under a steady write load (mtrload):
#
#   A. start: an election (two if two servers time out at once), then no
#      leadership change for 5 s under load (issue 14 saw one 2 s after
#      start on a loaded machine);
#   B. a follower is cut off for 30 s - a UDP partition of its port on
#      loopback (iptables, when root and iptables work), else SIGSTOP, which
#      stands in for it: the process neither hears nor sends - then comes
#      back: no leadership change, writes went on, and it catches up;
#   C. the leader is stopped (SIGSTOP) for 10 s: the other two elect one
#      new leader while it is away (liveness); it is continued (SIGCONT) and
#      rejoins: no leadership change after that.
#
# A leadership change is a "became leader" line in any server's log (also
# the same server at a new ballot).  Afterwards the load stops, the servers
# stop, and every replica has the same instance and digest (mtrdigest).
# MTR_LEADER_PART (default 30) and MTR_LEADER_PAUSE (default 10) set the
# seconds of B and C; MTR_LEADER_CUT=sigstop uses SIGSTOP in B even where
# iptables works.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
# pipelined ordering on (doc/paxos.md "The leader's batching rule"): the
# leader changes of this suite then meet several fresh instances in flight
MTR_PIPELINE=${MTR_PIPELINE:-4}
for p in src/metronomed src/mtrproxy tests/tools/mtrload tests/tools/mtrdigest; do
	[ -x "$B/$p" ] || skip_all "$p is not built"
done
PART=${MTR_LEADER_PART:-30}
PAUSE=${MTR_LEADER_PAUSE:-10}
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)

plan 10

servers=$(local_servers $BASE 3)
start_servers "$TMP" 3 "$servers"
i=0
for s in $spids; do eval "spid_$i=$s"; i=$((i + 1)); done
cont_all() { for s in $spids; do kill -CONT "$s" 2>/dev/null; done; }
at_exit cont_all
proxy_conf "$TMP" 1 "$servers" $((BASE + 11))
spawn "$TMP/p1.log" "$B/src/mtrproxy" -c "$TMP/p1.conf" >/dev/null

# "became leader" lines of every server, and the server of the last one
changes() { leader_changes "$TMP"; }
leader() { leader_of "$TMP"; }
acked() { cat "$TMP/acked" 2>/dev/null | wc -l; }
applied() { "$B/tests/tools/mtrdigest" --live "$TMP/d$1" 2>/dev/null | awk '{print $3}'; }
acked_at_least() { [ "$(acked)" -ge "$1" ]; }
leaders_since() { [ "$(changes)" -gt "$1" ]; }
show_changes() { grep -h "became leader\|stepping down\|no tick for" "$TMP"/s*.log | sort | sed 's/^/#   /'; }

# A. one election, then quiet under load
wait_for 20 leader_in "$TMP"
check "a leader was elected" leader_in "$TMP"
L=$(leader)
"$B/tests/tools/mtrload" --uri "mtr://127.0.0.1:$((BASE + 11))" --clients 2 --pipeline 4 --rows 100000000 \
	--acked "$TMP/acked" >"$TMP/load.out" 2>"$TMP/load.err" &
lpid=$!
_pids="$_pids $lpid"
wait_for 20 acked_at_least 100
n0=$(changes)
sleep 5
a0=$(acked)
check "start: $n0 election(s) before the first writes, then no leadership change for 5 s under load ($a0 writes acked)" \
	[ "$n0" -ge 1 -a "$(changes)" = "$n0" -a "$a0" -ge 100 ]

# B. a follower cut off for $PART s
F=$(((L + 1) % 3))
FPORT=$((BASE + F))
how=SIGSTOP
if [ "${MTR_LEADER_CUT:-}" != sigstop ] && [ "$(id -u)" = 0 ] && command -v iptables >/dev/null 2>&1 && iptables -S INPUT >/dev/null 2>&1; then
	how=iptables
	TAG="mtr-leader-$$"
	unpart() {
		iptables -D INPUT -i lo -p udp --dport "$FPORT" -m comment --comment "$TAG" -j DROP 2>/dev/null
		iptables -D INPUT -i lo -p udp --sport "$FPORT" -m comment --comment "$TAG" -j DROP 2>/dev/null
		true
	}
	at_exit unpart
	iptables -I INPUT -i lo -p udp --dport "$FPORT" -m comment --comment "$TAG" -j DROP &&
		iptables -I INPUT -i lo -p udp --sport "$FPORT" -m comment --comment "$TAG" -j DROP || how=failed
else
	eval "kill -STOP \$spid_$F"
fi
diag "B: server $F (leader $L) cut off by $how for $PART s"
a1=$(acked)
sleep 2
i1=$(applied "$F")
sleep $((PART - 2))
i2=$(applied "$F")
il=$(applied "$L")
a2=$(acked)
if [ $how = SIGSTOP ]; then eval "kill -CONT \$spid_$F"; else unpart; fi
sleep 5
check "B: writes went on while follower $F was cut off ($((a2 - a1)) acked; it stayed at instance $i2, the leader reached $il)" \
	[ $((a2 - a1)) -gt 0 -a "$i1" = "$i2" -a "$il" -gt "$i2" ]
check "B: follower $F came back after $PART s: no leadership change (server $(leader) leads)" \
	[ "$(changes)" = "$n0" -a "$(leader)" = "$L" ]
[ "$(changes)" = "$n0" ] || show_changes

# C. the leader stopped for $PAUSE s
n1=$(changes)
L=$(leader)
eval "kill -STOP \$spid_$L"
diag "C: leader $L stopped for $PAUSE s"
wait_for "$PAUSE" leaders_since "$n1"
elected=$(($(changes) - n1))
L2=$(leader)
a3=$(acked)
sleep "$PAUSE"
a4=$(acked)
check "C: while leader $L was stopped, server $L2 was elected ($elected change(s)) and writes went on ($((a4 - a3)) acked)" \
	[ "$elected" -ge 1 -a "$L2" != "$L" -a $((a4 - a3)) -gt 0 ]
n2=$(changes)
eval "kill -CONT \$spid_$L"
sleep 5
a5=$(acked)
check "C: the old leader $L came back: no leadership change (server $(leader) leads)" \
	[ "$(changes)" = "$n2" -a "$(leader)" = "$L2" ]
[ "$(changes)" = "$n2" ] || show_changes
check "C: writes go on after it came back ($((a5 - a4)) acked)" [ $((a5 - a4)) -gt 0 ]
n3=$(changes)
check "over the whole run: $n3 leadership changes, $((n3 - n0)) after the first writes, all while the leader was stopped" \
	[ $((n3 - n0)) = "$elected" ]

# the end: stop the load, let the replicas catch up, stop, compare
stop_pid $lpid 5
sleep 3
for s in $spids; do stop_pid "$s" 20; done
check "every replica has the same instance, digest and row count" same_digests "$TMP/d0" "$TMP/d1" "$TMP/d2"
rows=$("$B/tests/tools/mtrdigest" "$TMP/d0" | awk '{print $7}')
check "the replicas hold every acknowledged write ($(acked) acked, $rows rows)" [ "${rows:-0}" -ge "$(acked)" ]
if [ $_tap_fail -gt 0 ]; then
	for f in "$TMP"/s*.log "$TMP"/load.err; do
		diag "$f:"; grep -v " INFO " "$f" | tail -15 | sed 's/^/#   /'
	done
fi
exit 0
