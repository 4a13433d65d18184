#!/bin/sh
# cluster.sh - whole clusters on loopback under load, with servers killed
# (issue 4's "Done when").
#
#   A. 3 servers, 2 proxies, 8 clients (4 per proxy) write MTR_CLUSTER_ROWS
#      rows (default 100000; 30000 in the sanitizer build); halfway the
#      leader is killed with SIGKILL and restarted.
#   B. the same with 5 servers, the leader and one more killed and restarted.
#
# Afterwards every server is stopped (SIGTERM) and each replica is read with
# mtrdigest and sqlite3: equal applied instance and logical digest on every
# replica, every acknowledged id present exactly once, no row that was not
# acknowledged, and the restarted servers recovered from disk.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
for p in src/metronomed src/mtrproxy tests/tools/mtrload tests/tools/mtrdigest examples/example shell/mtrsql; do
	[ -x "$B/$p" ] || skip_all "$p is not built"
done
command -v sqlite3 >/dev/null 2>&1 || skip_all "no sqlite3 command (package sqlite3)"

if [ -n "${MTR_SANITIZE:-}" ] && [ "${MTR_SANITIZE}" != 0 ]; then
	ROWS=${MTR_CLUSTER_ROWS:-30000}
else
	ROWS=${MTR_CLUSTER_ROWS:-100000}
fi
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
# ports: a block of 20 per run, away from the defaults and below the
# ephemeral range (32768..), where proxies' and clients' own ports come from
BASE=$(port_block)

plan 17

lines() { cat "$@" 2>/dev/null | wc -l; }
acked_at_least() { [ "$(lines "$D"/acked1 "$D"/acked2)" -ge "$1" ]; }
leader_logged() { leader_in "$D"; }
# the server that logged "became leader" last
leader() { grep -h "became leader" "$D"/s*.log | sort | tail -1 | sed 's/.*\[server \([0-9]*\)\].*/\1/'; }

start_server() {
	spawn "$D/s$1.$2.log" "$B/src/metronomed" -c "$D/s$1.conf" >/dev/null
	eval "spid_$1=$!"
}

# stop every process of the current run (servers already stopped are skipped)
stop_all() {
	# (stop_pid uses $i itself: loop with another name)
	sv=0
	while [ $sv -lt "$n" ]; do eval "stop_pid \$spid_$sv 20"; sv=$((sv + 1)); done
	for pk in 1 2; do eval "stop_pid \$ppid_$pk 10"; done
}

# run_cluster NAME NSERVERS NKILL
run_cluster() {
	name=$1; n=$2; nkill=$3
	D=$TMP/$name
	mkdir -p "$D"
	servers=$(local_servers $BASE "$n")
	i=0
	while [ $i -lt "$n" ]; do
		server_conf "$D" $i "$servers"
		start_server $i 1
		i=$((i + 1))
	done
	for k in 1 2; do
		proxy_conf "$D" $k "$servers" $((BASE + 10 + k))
		spawn "$D/p$k.log" "$B/src/mtrproxy" -c "$D/p$k.conf" >/dev/null
		eval "ppid_$k=$!"
	done
	if ! wait_for 20 leader_logged; then
		not_ok "$name: a leader was elected"
		stop_all
		return
	fi
	ok "$name: $n servers up, leader is server $(leader)"
	if [ "$name" = three ]; then
		# the example of doc/client.md against the real cluster (issue 5)
		timeout 30 "$B/examples/example" "mtr://127.0.0.1:$((BASE + 11))" >"$D/example.out" 2>&1
		check "the example program (open, create, insert with binds, query, close) runs on the cluster" [ $? = 0 ]
		sed 's/^/#   /' "$D/example.out" | head -8
		# PRAGMA foreign_keys is the cluster's (doc/sql.md "Cluster PRAGMAs"):
		# set through one proxy, enforced and read back through the other
		m1() { "$B/shell/mtrsql" "mtr://127.0.0.1:$((BASE + 11))" -c "$1" 2>&1; }
		# (linearizable: a new connection may not see another proxy's acknowledged write yet, issue 16)
		m2() { "$B/shell/mtrsql" "mtr://127.0.0.1:$((BASE + 12))?consistency=linearizable" -c "$1" 2>&1; }
		m1 "CREATE TABLE fp(id INTEGER PRIMARY KEY); CREATE TABLE fc(pid REFERENCES fp(id));
		    INSERT INTO fc VALUES(7); PRAGMA foreign_keys = ON" >"$D/fk1.out"
		fk_read=$(m2 "PRAGMA foreign_keys")
		m2 "INSERT INTO fc VALUES(8)" >"$D/fk2.out"
		fk2=$?
		m1 "PRAGMA foreign_keys = OFF; INSERT INTO fc VALUES(9)" >>"$D/fk1.out"
		fk_rows=$(m2 "SELECT group_concat(pid) FROM fc")
		fk_ok() {
			[ "$fk_read" = 1 ] && [ "$fk2" != 0 ] && grep -q "FOREIGN KEY constraint failed" "$D/fk2.out" &&
				[ "$fk_rows" = "7,9" ]
		}
		check "PRAGMA foreign_keys = ON through one proxy: read back ($fk_read) and enforced through the other ($(head -c 80 "$D/fk2.out")); OFF again: rows $fk_rows" fk_ok
		# mtrload --append (mtrbench e2e's write loads): no id, SQLite
		# takes the next, so an empty table gets the ids 1 .. R
		"$B/tests/tools/mtrload" --uri "mtr://127.0.0.1:$((BASE + 11))" --table ap --clients 3 --rows 300 \
			--pipeline 8 --append >"$D/ap.out" 2>&1
		ap_rc=$?
		ap=$(m2 "SELECT count(*), min(id), max(id), count(DISTINCT client) FROM ap")
		check "mtrload --append: exit $ap_rc, rows/min/max/clients '$ap' (300, 1, 300, 3)" \
			[ "$ap_rc" = 0 -a "$(echo "$ap" | tr -d ' ')" = "300|1|300|3" ]
	fi

	half=$((ROWS / 2))
	"$B/tests/tools/mtrload" --uri "mtr://127.0.0.1:$((BASE + 11))" --clients 4 --rows $half \
		--first-id 1 --pipeline 16 --acked "$D/acked1" >"$D/load1.out" 2>"$D/load1.err" &
	l1=$!
	"$B/tests/tools/mtrload" --uri "mtr://127.0.0.1:$((BASE + 12))" --clients 4 --rows $((ROWS - half)) \
		--first-id $((half + 1)) --pipeline 16 --acked "$D/acked2" >"$D/load2.out" 2>"$D/load2.err" &
	l2=$!
	wait_for 120 acked_at_least $half || diag "$name: fewer than $half acked after 120 s"

	victims=$(leader)
	if [ "$nkill" -gt 1 ]; then
		other=$(( (victims + 1) % n ))
		victims="$victims $other"
	fi
	for v in $victims; do
		eval "kill -KILL \$spid_$v"
	done
	diag "$name: killed server(s) $victims with SIGKILL after $(lines "$D"/acked1 "$D"/acked2) acks"
	sleep 1
	for v in $victims; do start_server "$v" 2; done

	wait $l1; r1=$?
	wait $l2; r2=$?
	diag "$name: proxy 1: $(cat "$D/load1.out")"
	diag "$name: proxy 2: $(cat "$D/load2.out")"
	check "$name: both loads finished with no failed write" [ "$r1$r2" = 00 ]
	total=$(lines "$D"/acked1 "$D"/acked2)
	check "$name: all $ROWS writes acknowledged (got $total)" [ "$total" = "$ROWS" ]

	# let the restarted servers catch up, then stop everything cleanly
	sleep 4
	sv=0
	while [ $sv -lt "$n" ]; do
		eval "stop_pid \$spid_$sv 20"
		sv=$((sv + 1))
	done
	digests=$(i=0; while [ $i -lt "$n" ]; do echo "$D/d$i"; i=$((i + 1)); done | xargs "$B/tests/tools/mtrdigest")
	echo "$digests" | sed "s|$D/||; s/^/# $name: /"
	nd=$(echo "$digests" | awk '{print $3, $5, $7}' | sort -u | wc -l)
	check "$name: every replica has the same instance, digest and row count" [ "$nd" = 1 ]

	# every acked id exactly once, nothing else
	res=$(acked_check "$D/d0" "$D"/acked1 "$D"/acked2)
	diag "$name: acked|acked-missing|extra|duplicates = $res"
	check "$name: every acknowledged write present exactly once, nothing else" [ "$res" = "$total|0|0|0" ]

	rec=1
	for v in $victims; do grep -q "recovered: applied instance [1-9]" "$D/s$v.2.log" || rec=0; done
	check "$name: the restarted server(s) recovered from disk" [ $rec = 1 ]
	caught=1
	for v in $victims; do
		inst=$(echo "$digests" | grep "/d$v " | awk '{print $3}')
		first=$(echo "$digests" | head -1 | awk '{print $3}')
		[ "$inst" = "$first" ] || caught=0
	done
	check "$name: the restarted server(s) caught up to the same instance" [ $caught = 1 ]
	stop_all
}

run_cluster three 3 1
run_cluster five 5 2

if [ $_tap_fail -gt 0 ]; then
	for f in "$TMP"/*/*.log "$TMP"/*/load*.err; do
		[ -f "$f" ] || continue
		diag "$f:"; grep -v " INFO " "$f" | tail -15 | sed 's/^/#   /'
	done
fi
exit 0
