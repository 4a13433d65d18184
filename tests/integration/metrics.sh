#!/bin/bash
# metrics.sh - health and figures of a running cluster (doc/operations.md):
# three servers (one named by host name, "localhost") and a proxy, each with
# its HTTP endpoint (server.metrics_listen, proxy.metrics_listen) and a
# log.file.  /metrics of every process is Prometheus text that the format
# checker (promcheck.awk) accepts, and promtool too when it is installed,
# with every counter of the stats maps and the latency histograms filled by
# real requests; /readyz and /livez answer 200 on a healthy cluster;
# /readyz fails within 2 s after two of the three servers are stopped
# (SIGSTOP) and recovers after they continue, both measured; peer down and
# majority lost are logged at WARN; SIGHUP reopens log.file (logrotate) and
# does not stop the daemon; bad settings (an unresolvable host name, a bad
# metrics address) stop the start with a message naming the key.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy shell/mtrsql
command -v curl >/dev/null 2>&1 || skip_all "no curl (package curl)"
CHECK="$MTR_SRCDIR/tests/integration/promcheck.awk"

TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)
# servers BASE..BASE+2, their HTTP BASE+10..12, proxy BASE+5, its HTTP BASE+15
SERVERS="127.0.0.1:$BASE,localhost:$((BASE + 1)),127.0.0.1:$((BASE + 2))"
SH=(http://127.0.0.1:$((BASE + 10)) http://127.0.0.1:$((BASE + 11)) http://127.0.0.1:$((BASE + 12)))
PH=http://127.0.0.1:$((BASE + 15))

plan 32

# the checker can fail: a histogram whose +Inf bucket is not its count, a
# counter not named *_total
printf '# HELP x_seconds h\n# TYPE x_seconds histogram\nx_seconds_bucket{le="1"} 1\nx_seconds_bucket{le="+Inf"} 2\nx_seconds_sum 1\nx_seconds_count 3\n# HELP y h\n# TYPE y counter\ny 1\n' >"$TMP/bad.txt"
awk -f "$CHECK" "$TMP/bad.txt" >"$TMP/bad.out"
check "the format checker rejects a wrong page (+Inf != _count, a counter without _total)" \
	sh -c "grep -q '_count 3 != +Inf' '$TMP/bad.out' && grep -q 'not named \*_total' '$TMP/bad.out'"

for i in 0 1 2; do
	server_conf "$TMP" $i "$SERVERS"
	printf 'server.metrics_listen = 127.0.0.1:%d\nlog.file = %s/s%d.log\npaxos.heartbeat = 20ms\npaxos.election = 200ms\n' \
		$((BASE + 10 + i)) "$TMP" $i >>"$TMP/s$i.conf"
	spawn "$TMP/s$i.err" "$B/src/metronomed" -c "$TMP/s$i.conf" >/dev/null
	eval "spid_$i=$!"
done
proxy_conf "$TMP" 1 "$SERVERS" $((BASE + 5))
printf 'proxy.metrics_listen = localhost:%d\nlog.file = %s/p.log\n' $((BASE + 15)) "$TMP" >>"$TMP/p1.conf"
spawn "$TMP/p.err" "$B/src/mtrproxy" -c "$TMP/p1.conf" >/dev/null
ppid=$!

# code URL: the HTTP status of a GET (000 when no answer within 3 s)
code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1"; }
ready() { [ "$(code "$1/readyz")" = 200 ]; }
all_ready() { ready "${SH[0]}" && ready "${SH[1]}" && ready "${SH[2]}" && ready "$PH"; }
# now: seconds since the epoch with fractions
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

wait_for 30 all_ready
check "a healthy cluster is ready: /readyz 200 on the three servers and the proxy" all_ready
diag "server 0: $(curl -s -m 3 "${SH[0]}/readyz")"
diag "proxy: $(curl -s -m 5 "$PH/readyz")"
check "server 1, named localhost in cluster.servers, joined (it hears a majority)" \
	sh -c "curl -s -m 3 '${SH[1]}/readyz' | grep -q 'hears 3 of 3'"
check "/livez 200 on every process" \
	sh -c "[ \$(curl -s -o /dev/null -m 3 -w '%{http_code}' ${SH[0]}/livez) = 200 ] && [ \$(curl -s -o /dev/null -m 3 -w '%{http_code}' ${SH[2]}/livez) = 200 ] && [ \$(curl -s -o /dev/null -m 3 -w '%{http_code}' $PH/livez) = 200 ]"

# some writes and reads, so that the histograms hold observations
URI="mtr://127.0.0.1:$((BASE + 5))"
{
	echo "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);"
	for k in $(seq 1 50); do echo "INSERT INTO t VALUES($k, 'v$k');"; done
	for k in $(seq 1 20); do echo "SELECT count(*) FROM t WHERE k <= $k;"; done
} | "$B/shell/mtrsql" "$URI" >"$TMP/sql.out" 2>&1
check "writes and reads through the proxy succeed" grep -qx 20 "$TMP/sql.out"
sleep 1.5 # the servers publish their counters once a second

for i in 0 1 2; do curl -s -m 5 "${SH[$i]}/metrics" >"$TMP/m$i.txt"; done
curl -s -m 5 "$PH/metrics" >"$TMP/mp.txt"
for f in m0 m1 m2 mp; do
	awk -f "$CHECK" "$TMP/$f.txt" >"$TMP/$f.chk" 2>&1
	check "/metrics of $f passes the format checker ($(grep -c '^[a-z]' "$TMP/$f.txt") samples)" test ! -s "$TMP/$f.chk"
	sed 's/^/#   /' "$TMP/$f.chk" | head -5
done
if command -v promtool >/dev/null 2>&1; then
	for f in m0 mp; do
		promtool check metrics <"$TMP/$f.txt" >"$TMP/$f.prom" 2>&1
		check "promtool check metrics accepts /metrics of $f" test $? = 0
		sed 's/^/#   /' "$TMP/$f.prom" | head -5
	done
else
	ok "# SKIP promtool is not installed (Debian package prometheus)"
	ok "# SKIP promtool is not installed (Debian package prometheus)"
fi
# every counter of the maps (a sample of each map) and the histograms
check "server /metrics has the counters of every map (ingest, paxos, apply, server.drop, transport)" \
	sh -c "grep -q '^metronome_ingest_added_total ' '$TMP/m0.txt' && grep -q '^metronome_paxos_elections_total ' '$TMP/m0.txt' &&
	       grep -q '^metronome_apply_instances_total ' '$TMP/m0.txt' && grep -q '^metronome_server_drop_paxos_sender_total ' '$TMP/m0.txt' &&
	       grep -q '^metronome_transport_drop_integrity_total ' '$TMP/m0.txt' && grep -q '^metronome_ingest_items_held ' '$TMP/m0.txt'"
nmap=$(grep -c '^	X(' "$MTR_SRCDIR/src/server/paxos.h" "$MTR_SRCDIR/src/server/apply.h" "$MTR_SRCDIR/src/server/ingest.h" | awk -F: '{s += $2} END {print s}')
nsrv=$(grep -cE '^metronome_(paxos|apply|ingest)_' "$TMP/m0.txt")
check "every counter of the PAXOS, APPLY and INGEST maps is exposed ($nsrv samples, at least $nmap map entries)" test "$nsrv" -ge "$nmap"
check "server /metrics has the apply histogram with observations" \
	sh -c "grep -qE '^metronome_apply_instance_seconds_count [1-9]' '$TMP/m0.txt'"
check "proxy /metrics has the counters of PROXY_STATS_MAP and PROXY_DROP_MAP" \
	sh -c "grep -q '^metronome_proxy_requests_total ' '$TMP/mp.txt' && grep -q '^metronome_proxy_drop_result_dup_total ' '$TMP/mp.txt' &&
	       grep -q '^metronome_transport_dgrams_out_total ' '$TMP/mp.txt'"
check "proxy /metrics has write and read latency histograms with observations" \
	sh -c "grep -qE '^metronome_proxy_write_seconds_count [1-9]' '$TMP/mp.txt' && grep -qE '^metronome_proxy_read_seconds_count [1-9]' '$TMP/mp.txt'"
check "an unknown path is 404, a POST is 405" \
	sh -c "[ \$(curl -s -o /dev/null -m 3 -w '%{http_code}' ${SH[0]}/nope) = 404 ] && [ \$(curl -s -o /dev/null -m 3 -w '%{http_code}' -X POST -d x=1 ${SH[0]}/metrics) = 405 ]"

# SIGHUP: logrotate renames the file, the daemon reopens it and lives on
mv "$TMP/s0.log" "$TMP/s0.log.1"
mv "$TMP/p.log" "$TMP/p.log.1"
kill -HUP "$spid_0" "$ppid"
wait_for 5 test -f "$TMP/s0.log" -a -f "$TMP/p.log"
check "SIGHUP reopens log.file: a new file appears (server and proxy)" test -f "$TMP/s0.log" -a -f "$TMP/p.log"
sleep 0.5
check "SIGHUP does not stop the daemons" kill -0 "$spid_0" "$ppid"

# majority lost: SIGSTOP two of the three servers
# measure ok|fail: from now, poll /readyz of server 0 and of the proxy every
# 0.1 s (for up to about 10 s) until each is ok (200) or fail (not 200); ts
# and tp get the seconds each took ("" if never)
is() { if [ "$1" = ok ]; then ready "$2"; else ! ready "$2"; fi; }
measure() {
	t0=$(now)
	ts=""
	tp=""
	k=0
	while [ $k -lt 100 ] && { [ -z "$ts" ] || [ -z "$tp" ]; }; do
		[ -z "$ts" ] && is "$1" "${SH[0]}" && ts=$(elapsed "$t0" "$(now)")
		[ -z "$tp" ] && is "$1" "$PH" && tp=$(elapsed "$t0" "$(now)")
		sleep 0.1
		k=$((k + 1))
	done
}
kill -STOP "$spid_1" "$spid_2"
measure fail
diag "after SIGSTOP of servers 1 and 2: server 0 not ready after ${ts:-never} s, the proxy after ${tp:-never} s"
diag "server 0: $(curl -s -m 3 "${SH[0]}/readyz")"
diag "proxy: $(curl -s -m 5 "$PH/readyz")"
check "server 0 /readyz fails within 2 s of the majority's loss (${ts:-never} s)" \
	awk -v t="${ts:-99}" 'BEGIN { exit !(t <= 2.0) }'
check "proxy /readyz fails within 2 s of the majority's loss (${tp:-never} s)" \
	awk -v t="${tp:-99}" 'BEGIN { exit !(t <= 2.0) }'
check "server 0 /livez still 200 (alive, only not ready)" test "$(code "${SH[0]}/livez")" = 200
check "proxy /metrics still answers at once while the cluster is not ready" \
	test "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$PH/metrics")" = 200
wait_for 5 grep -q "WARN.*majority lost" "$TMP/s0.log"
check "server 0 logs 'peer down' at WARN" grep -q "WARN .*peer down: server 1" "$TMP/s0.log"
check "server 0 logs 'majority lost' at WARN" grep -q "WARN .*majority lost" "$TMP/s0.log"
check "the reopened log file says so (log file ... reopened (SIGHUP))" grep -q "reopened (SIGHUP)" "$TMP/s0.log"

kill -CONT "$spid_1" "$spid_2"
measure ok
rs=$ts
rp=$tp
diag "after SIGCONT: server 0 ready after ${rs:-never} s, the proxy after ${rp:-never} s"
check "server 0 /readyz recovers within 10 s (${rs:-never} s)" test -n "$rs"
check "proxy /readyz recovers within 10 s (${rp:-never} s)" test -n "$rp"
wait_for 5 grep -q "majority regained" "$TMP/s0.log"
check "server 0 logs 'majority regained'" grep -q "majority regained" "$TMP/s0.log"

# start-up errors name the key
"$B/src/metronomed" -c /dev/null -o cluster.servers=no-such-host.invalid:7501 -o cluster.key="$MTR_KEY" \
	-o server.id=0 -o data.dir="$TMP/x" >"$TMP/badhost" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/badhost"
check "an unresolvable host in cluster.servers: exit 1, 'cannot resolve host'" \
	sh -c "[ $rc = 1 ] && grep -q \"cluster.servers: server 0: cannot resolve host 'no-such-host.invalid'\" '$TMP/badhost'"
"$B/src/mtrproxy" -c "$TMP/p1.conf" -o proxy.listen=127.0.0.1:0 -o proxy.metrics_listen=127.0.0.1 -o log.file= >"$TMP/badm" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/badm"
check "proxy.metrics_listen without a port: exit 1 naming the key" \
	sh -c "[ $rc = 1 ] && grep -q 'proxy.metrics_listen' '$TMP/badm'"
"$B/src/metronomed" -c "$TMP/s0.conf" -o data.dir="$TMP/y" -o log.file= -o server.metrics_listen=127.0.0.1:$((BASE + 10)) \
	-o cluster.servers="$SERVERS,127.0.0.1:$((BASE + 3))" -o server.id=3 >"$TMP/busy" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/busy" | tail -2
check "server.metrics_listen on a busy port: exit 2 naming the key" \
	sh -c "[ $rc = 2 ] && grep -q 'server.metrics_listen: cannot serve HTTP' '$TMP/busy'"
