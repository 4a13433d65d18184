#!/bin/sh
# membership.sh - membership changes while writes run (issue 15,
# doc/paxos.md "Membership", doc/operations.md "Add a server").
#
# 3 servers (ids 0..2) and a proxy on loopback; a write load (mtrload, runs
# of MTR_MEMBERSHIP_RUN rows each, one after the other, every acked id
# appended to one file) goes on during all of this:
#
#   1. server 3 is started empty under a new id (server.address,
#      --init-from-peer) and `mtrctl add-server` adds it as a learner,
#      waits until it has caught up and makes it a voter;
#   2. server 0, the leader (it is started first, so it wins the first
#      election; if another won, the leader is paused until 0 leads), is
#      removed with `mtrctl remove-server 0`: another server is elected;
#   3. server 1 is killed (SIGKILL) and replaced: a fresh server 4 (empty
#      directory, new id) is added (learner, then voter), and 1 is removed;
#      refusals: an id removed already, one never a member, a bad address;
#   4. the load stops: every run finished with no failed write, every acked
#      id is present exactly once and nothing else, and the members 2, 3 and
#      4 have the same instance, digest and row count;
#   5. server 0, removed, is restarted: it says that it was removed, and
#      the members refuse it politely and log that; server 1, removed while
#      it was down (killed), is restarted too: refused, it learns from the
#      members that it was removed and logs it.
# The membership is checked in mtr_members (mtrctl members) on the way.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy shell/mtrctl tests/tools/mtrload tests/tools/mtrdigest
command -v sqlite3 >/dev/null || skip_all "sqlite3 is not installed"
RUN=${MTR_MEMBERSHIP_RUN:-1000}
# sanitizer builds are several times slower
W=${MTR_SANITIZE:+3}
W=${W:-1}
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)
PORT=$((BASE + 11))
URL="mtr://127.0.0.1:$PORT"

plan 24

servers=$(local_servers $BASE 3)
# start_server ID [EXTRA ARG]: server ID (a new id binds BASE+ID, with
# server.address) with its log in sID.log (appended)
start_server() {
	server_conf "$TMP" "$1" "$servers"
	if [ "$1" -ge 3 ]; then echo "server.address = 127.0.0.1:$((BASE + $1))" >>"$TMP/s$1.conf"; fi
	"$B/src/metronomed" -c "$TMP/s$1.conf" ${2:+"$2"} >>"$TMP/s$1.log" 2>&1 &
	_pids="$_pids $!"
	eval "spid_$1=$!"
}
ctl() { "$B/shell/mtrctl" "$URL" "$@"; }
members() { ctl members 2>/dev/null; }
# is ID ROLE: mtr_members shows server ID as ROLE (voter, learner, removed)
is() { members | awk -F'|' -v id="$1" -v m="$2" '$1 == id && $3 == m {f = 1} END {exit !f}'; }
acked() { cat "$TMP/acked" 2>/dev/null | wc -l; }
acked_at_least() { [ "$(acked)" -ge "$1" ]; }
leader() { leader_of "$TMP"; }
leader_is() { [ "$(leader)" = "$1" ]; }
leader_not() { leader_in "$TMP" && [ "$(leader)" != "$1" ]; }
show() { diag "$1:"; members | sed 's/^/#   /'; }

# 1. the cluster: server 0 first (it wins the first election), then 1, 2
start_server 0
sleep 1
start_server 1
start_server 2
wait_for $((20 * W)) leader_in "$TMP"
# make_0_lead: while another server leads, pause it (SIGSTOP) until
# another is elected, then continue it; at most 8 times
make_0_lead() {
	tries=0
	while ! leader_is 0 && [ $tries -lt 8 ]; do
		L=$(leader)
		diag "server $L leads: pausing it until another server does"
		eval "kill -STOP \$spid_$L"
		wait_for $((10 * W)) leader_not "$L"
		eval "kill -CONT \$spid_$L"
		tries=$((tries + 1))
	done
}
make_0_lead
check "server 0 leads the cluster (after $tries pause(s) of another leader)" leader_is 0

proxy_conf "$TMP" 1 "$servers" $PORT
spawn "$TMP/p1.log" "$B/src/mtrproxy" -c "$TMP/p1.conf" >/dev/null
proxy_up() { members | grep -q '^id|'; }
wait_for $((20 * W)) proxy_up

# the load: runs of RUN rows, one after another, until $TMP/stop exists
(
	first=1
	while [ ! -e "$TMP/stop" ]; do
		"$B/tests/tools/mtrload" --uri "$URL" --clients 2 --pipeline 4 --rows "$RUN" --first-id $first \
			--acked "$TMP/acked" >>"$TMP/load.out" 2>>"$TMP/load.err" || echo "run $first failed" >>"$TMP/load.bad"
		echo "$first $((first + RUN - 1))" >>"$TMP/runs"
		first=$((first + RUN))
	done
) &
lpid=$!
wait_for $((30 * W)) acked_at_least 200
check "writes are acked ($(acked))" acked_at_least 200

# 2. add server 3 (new id, empty) while writes run
start_server 3 --init-from-peer
ctl add-server --wait $((300 * W)) "127.0.0.1:$((BASE + 3))" >"$TMP/add3.out" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/add3.out"
check "mtrctl add-server 127.0.0.1:$((BASE + 3)): server 3 added, caught up and made a voter (exit $rc)" \
	grep -q "server 3 is a voter" "$TMP/add3.out"
wait_for $((20 * W)) is 3 voter
check "mtr_members shows server 3 as a voter" is 3 voter
grep -h "installed snapshot\|took the promise" "$TMP/s3.log" | cut -c1-160 | sed 's/^/#   /'
check "server 3 installed a peer's snapshot and took that peer's promise with it" \
	grep -q "took the promise .* of server [0-2] with its snapshot" "$TMP/s3.log"
show "after adding server 3"

# 3. remove server 0, the leader
make_0_lead
a0=$(acked)
check "server 0 leads before its removal (after $tries pause(s) of another leader)" leader_is 0
ctl remove-server 0 >"$TMP/rm0.out" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/rm0.out"
check "mtrctl remove-server 0 (the leader): done (exit $rc)" grep -q "server 0 removed" "$TMP/rm0.out"
wait_for $((30 * W)) leader_not 0
check "another server was elected: server $(leader)" leader_not 0
wait_for $((30 * W)) grep -q "this node was removed from the cluster" "$TMP/s0.log"
check "server 0 logged that it was removed" grep -q "this node was removed from the cluster" "$TMP/s0.log"
wait_for $((30 * W)) acked_at_least $((a0 + 200))
check "writes go on after the removal ($(( $(acked) - a0 )) acked since)" acked_at_least $((a0 + 200))

# 4. replace server 1: killed, a fresh server 4 added, 1 removed
kill -KILL $spid_1
diag "killed server 1 (SIGKILL) at $(acked) acks"
start_server 4 --init-from-peer
ctl add-server --wait $((300 * W)) "127.0.0.1:$((BASE + 4))" >"$TMP/add4.out" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/add4.out"
check "replacement: server 4 added, caught up and made a voter (exit $rc)" grep -q "server 4 is a voter" "$TMP/add4.out"
"$B/shell/mtrsql" "$URL" -c ".remove-server 1" >"$TMP/rm1.out" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/rm1.out"
check "replacement: the dead server 1 removed with mtrsql's .remove-server (exit $rc)" grep -q "server 1 removed" "$TMP/rm1.out"
voters_234() { is 2 voter && is 3 voter && is 4 voter && ! is 0 voter && ! is 1 voter; }
wait_for $((30 * W)) voters_234
show "after the replacement"
check "mtr_members: the voters are 2, 3 and 4" voters_234
# refusals, each with its reason
refusal() { # EXPECTED-TEXT COMMAND...: fails (exit 1) saying EXPECTED-TEXT
	_want=$1; shift
	"$@" >"$TMP/ref.out" 2>&1 && return 1
	sed 's/^/#   /' "$TMP/ref.out"
	grep -q "$_want" "$TMP/ref.out"
}
check "refused: removing server 0 again (ids are never reused)" refusal "was removed from the cluster" ctl remove-server 0
check "refused: an id that is not a member" refusal "server 9 is not a member" ctl remove-server 9
check "refused: an address that does not parse" refusal "is not an address" ctl add-server --learner "no.such:x"
a1=$(acked)
wait_for $((30 * W)) acked_at_least $((a1 + 200))

# 5. the end of the load, and the checks
touch "$TMP/stop"
wait $lpid
diag "load: $(acked) acked in $(wc -l <"$TMP/runs") runs of $RUN; $(grep -c . "$TMP/load.bad" 2>/dev/null || echo 0) failed"
check "every load run finished with no failed write" [ ! -s "$TMP/load.bad" ]
live() { "$B/tests/tools/mtrdigest" --live "$TMP/d2" "$TMP/d3" "$TMP/d4" 2>/dev/null; }
live_same() { _l=$(live) && [ "$(echo "$_l" | wc -l)" = 3 ] && equal_digests "$_l"; }
wait_for $((60 * W)) live_same
for i in 2 3 4; do eval "stop_pid \$spid_$i 20"; done
check "the members 2, 3 and 4 have the same instance, digest and row count" same_digests "$TMP/d2" "$TMP/d3" "$TMP/d4"
total=$(acked)
res=$(acked_check "$TMP/d2" "$TMP/acked")
diag "acked|acked-missing|extra|duplicates = $res"
check "every acknowledged write present exactly once, nothing else ($total acked)" [ "$res" = "$total|0|0|0" ]

# 6. the removed servers come back: 0 (it knew it was removed) and 1
# (killed, then removed while down: it learns it from the members)
stop_pid $spid_0 20
n0=$(grep -c "removed from the cluster" "$TMP/s0.log")
start_server 0
start_server 1
start_server 2
start_server 3
start_server 4
refused() {
	grep -q "from node $1 refused: that node was removed\|removed server $1 is back" "$TMP/s2.log" "$TMP/s3.log" \
		"$TMP/s4.log"
}
wait_for $((30 * W)) refused 0
check "server 0, restarted, is refused by the members, who log it" refused 0
again() { [ "$(grep -c "removed from the cluster" "$TMP/s0.log")" -gt "$n0" ]; }
wait_for $((10 * W)) again
check "server 0, restarted, logs again that it was removed" again
wait_for $((30 * W)) refused 1
check "server 1, removed while it was down, is refused when it comes back" refused 1
wait_for $((60 * W)) grep -q "removed from the cluster" "$TMP/s1.log"
check "server 1 learns from the members that it was removed, and logs it" grep -q "removed from the cluster" "$TMP/s1.log"
grep -h "WARN.*\(removed from the cluster\|is back\|refused: that node\)" "$TMP"/s[0-4].log | sort | tail -8 | cut -c1-200 |
	sed 's/^/#   /'

# every daemon stopped: none reported a sanitizer error (build-asan)
for p in $_pids; do stop_pid "$p" 20; done
no_reports() { ! grep -l "Sanitizer\|runtime error:" "$TMP"/s*.log "$TMP"/p1.log; }
check "no daemon reported a sanitizer error or leak" no_reports

if [ $_tap_fail -gt 0 ]; then
	for f in "$TMP"/s*.log "$TMP"/p1.log "$TMP"/load.err; do
		diag "$f:"; grep -v " INFO " "$f" | tail -20 | sed 's/^/#   /'
	done
fi
exit 0
