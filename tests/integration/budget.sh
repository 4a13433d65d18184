#!/bin/sh
# budget.sh - the deterministic write budget through a real cluster (issue
# 13, "Done when", first line; doc/apply.md "The write budget").
#
# A 3-server cluster (3 metronomed, 1 mtrproxy, loopback):
#   1. PRAGMA mtr_max_steps reads the default; the infinite recursive CTE of
#      the issue, written through the proxy while mtrload (8 clients) writes,
#      fails within 10 s with the budget error; every replica logged that it
#      failed there; the other clients' writes went on (no failure; their
#      p99 is printed and must stay under 2 s); the next write succeeds.
#   2. PRAGMA mtr_max_steps = N through the proxy (an ordered item), read back.
#   3. The CTE again, now longer (the raised limit), and all three servers
#      stopped with SIGTERM while it runs: each exits within a few seconds,
#      rolled back; restarted, they apply it again and it ends with the
#      budget error on every replica, and writes are accepted again (the item
#      does not run forever).
#   4. Stopped, the replicas have the same instance and logical digest and no
#      row of the failed items.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy shell/mtrsql tests/tools/mtrload tests/tools/mtrdigest
command -v sqlite3 >/dev/null 2>&1 || skip_all "no sqlite3 command (package sqlite3)"
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)
URI="mtr://127.0.0.1:$((BASE + 11))"
CTE="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) INSERT INTO t SELECT x, 'never' FROM c WHERE x < 0"

plan 16

now_ms() { date +%s%3N; }
sql() { "$B/shell/mtrsql" "$URI" -c "$1"; }
leader_logged() { leader_in "$TMP"; }
write_ok() { sql "INSERT INTO t VALUES(-1, 'probe')" >/dev/null 2>&1; }
# every server log (of run $1) has the budget line
all_logged() {
	for s in 0 1 2; do grep -q "exceeded mtr_max_steps ($2 VM steps)" "$TMP/s$s.$1.log" || return 1; done
}
start_all() { # run
	for s in 0 1 2; do
		spawn "$TMP/s$s.$1.log" "$B/src/metronomed" -c "$TMP/s$s.conf" >/dev/null
		eval "spid_$s=$!"
	done
}

servers=$(local_servers "$BASE" 3)
for s in 0 1 2; do server_conf "$TMP" $s "$servers"; done
start_all 1
proxy_conf "$TMP" 1 "$servers" $((BASE + 11))
spawn "$TMP/p1.log" "$B/src/mtrproxy" -c "$TMP/p1.conf" >/dev/null
wait_for 20 leader_logged
check "3 servers and a proxy up, a leader elected" leader_logged
sql "CREATE TABLE t(x, y); INSERT INTO t VALUES(0, 'first')" >/dev/null 2>&1
def=$(sql "PRAGMA mtr_max_steps" 2>&1)
check "PRAGMA mtr_max_steps reads the default, 100000000 ($def)" [ "$def" = 100000000 ]

# the sanitizer build runs SQLite's VM several times slower: a tenth of the
# default budget keeps the CTE's stall as short as the default's in -O2
LIMIT=100000000
if [ -n "${MTR_SANITIZE:-}" ] && [ "${MTR_SANITIZE}" != 0 ]; then
	LIMIT=10000000
	sql "PRAGMA mtr_max_steps = $LIMIT" >/dev/null 2>&1
fi

# ---- 1. the infinite CTE under the others' load ----
# the load brackets the CTE: about 1 s before it, a few seconds after
"$B/tests/tools/mtrload" --uri "$URI" --clients 8 --rows "${MTR_BUDGET_LOAD_ROWS:-4000}" --table w --pipeline 1 \
	>"$TMP/load.out" 2>"$TMP/load.err" &
lpid=$!
sleep 1
t0=$(now_ms)
sql "$CTE" >"$TMP/cte.out" 2>"$TMP/cte.err"
rc=$?
t1=$(now_ms)
wait $lpid
lrc=$?
diag "the CTE: exit $rc after $((t1 - t0)) ms: $(head -c 300 "$TMP/cte.err")"
cte_failed() {
	[ $rc = 1 ] && [ $((t1 - t0)) -lt 10000 ] &&
		grep -q "statement exceeded mtr_max_steps ($LIMIT VM steps): split it or raise the limit" "$TMP/cte.err"
}
check "the infinite CTE fails with the budget error within 10 s ($((t1 - t0)) ms)" cte_failed
wait_for 20 all_logged 1 $LIMIT # the client heard the first replica's answer
check "every replica failed it with the budget error" all_logged 1 $LIMIT
load=$(cat "$TMP/load.out")
diag "other clients meanwhile (mtrload, 8 clients): $load"
p99=$(echo "$load" | sed -n 's/.*p99_ms \([0-9.]*\).*/\1/p')
others_ok() { [ "$lrc" = 0 ] && [ -n "$p99" ] && awk -v p="$p99" 'BEGIN { exit !(p < 2000) }'; }
check "the other clients' writes went on: none failed (exit $lrc), p99 $p99 ms < 2000 ms" others_ok
check "the next write succeeds" write_ok

# ---- 2. the limit, through the log ----
sql "PRAGMA mtr_max_steps = 400000000" >/dev/null 2>"$TMP/set.err"
got=$(sql "PRAGMA mtr_max_steps" 2>&1)
check "PRAGMA mtr_max_steps = 400000000 is an ordered write; read back: $got" [ "$got" = 400000000 ]

# ---- 3. all servers stopped while the (now longer) CTE runs ----
sql "$CTE" >/dev/null 2>&1 &
cpid=$!
sleep 1.5
slow=0
for s in 0 1 2; do
	eval "pid=\$spid_$s"
	kill -TERM "$pid"
done
t0=$(now_ms)
for s in 0 1 2; do
	eval "pid=\$spid_$s"
	k=0
	while alive "$pid" && [ $k -lt 100 ]; do sleep 0.1; k=$((k + 1)); done
	alive "$pid" && slow=$((slow + 1))
	stop_pid "$pid" 1
done
t1=$(now_ms)
interrupted=$(grep -l "interrupted by the stop" "$TMP"/s?.1.log | wc -l)
diag "SIGTERM to 3 servers while the item ran: all exited after $((t1 - t0)) ms; $interrupted logged the instance interrupted"
stopped_ok() { [ $slow = 0 ] && [ "$interrupted" -ge 1 ]; }
check "every server stopped within 10 s of SIGTERM while the item ran ($((t1 - t0)) ms), the item rolled back" \
	stopped_ok
wait $cpid 2>/dev/null
t0=$(now_ms)
start_all 2
wait_for 60 write_ok
t1=$(now_ms)
check "restarted, the cluster accepts writes again ($((t1 - t0)) ms): the item was not re-run forever" write_ok
wait_for 20 all_logged 2 400000000
check "after the restart every replica applied the item again and failed it with the budget error" \
	all_logged 2 400000000
check "the limit survived the restart" [ "$(sql "PRAGMA mtr_max_steps" 2>&1)" = 400000000 ]
# the item held each apply thread for seconds: no election meanwhile (the
# first leader of run 2, and a split vote within 3 s of it, are the start's)
log_ms() { date -d "$(echo "$1" | cut -c1-23)" +%s%3N; }
first=$(grep -h "became leader" "$TMP"/s?.2.log | sort | head -1)
late=0
if [ -n "$first" ]; then
	f_ms=$(log_ms "$first")
	for l in $(grep -h "became leader" "$TMP"/s?.2.log | cut -c1-23); do
		[ $(($(log_ms "$l") - f_ms)) -gt 3000 ] && late=$((late + 1))
	done
fi
diag "run 2: first leader at $(echo "$first" | cut -c1-23); later elections: $late"
no_late_election() { [ -n "$first" ] && [ "$late" = 0 ]; }
check "no election while the long item was applied after the restart ($late)" no_late_election
# mtr_instances names the instance the item held, with its VM steps
held=$(sql "SELECT max_item_steps || ' ' || steps || ' ' || apply_us FROM mtr_instances ORDER BY max_item_steps DESC LIMIT 1" 2>&1)
diag "the instance of the failed item in mtr_instances: max_item_steps, steps, apply_us: $held"
steps_shown() { [ "${held%% *}" -ge 400000000 ] 2>/dev/null && [ "${held%% *}" -le 401000000 ]; }
check "mtr_instances shows the item's VM steps: the budget, 400000000 ($held)" steps_shown

# ---- 4. the replicas agree ----
sleep 1 # the last writes reach every replica
for s in 0 1 2; do eval "stop_pid \$spid_$s 20"; done
digests=$("$B/tests/tools/mtrdigest" "$TMP/d0" "$TMP/d1" "$TMP/d2" 2>&1)
echo "$digests" | sed "s|$TMP/||; s/^/# /"
nd=$(echo "$digests" | awk '{print $3, $5}' | sort -u | wc -l)
check "every replica at the same instance with the same digest" [ "$nd" = 1 ]
never=$(sqlite3 "$TMP/d0/replica.db" "SELECT count(*) FROM t WHERE y = 'never'" 2>&1)
check "no row of the failed items ($never)" [ "$never" = 0 ]
lim=$(sqlite3 "$TMP/d1/replica.db" "SELECT value FROM mtr_meta WHERE key = 'max_steps'" 2>&1)
check "mtr_meta('max_steps') = 400000000 on the replica ($lim)" [ "$lim" = 400000000 ]
exit 0
