#!/bin/bash
# pipeline_ab.sh - paxos.pipeline depths side by side (doc/performance.md,
# "Pipelined ordering").
#
#   tests/bench/pipeline_ab.sh BUILDDIR [PORT]
#
# Starts one 3-server cluster (and one mtrproxy) of BUILDDIR per depth of
# DEPTHS (default "1 4"), all at once, in a temporary directory; then, for
# ROUNDS rounds (5), runs mtrload (CLIENTS (64) clients x INFL (4) requests
# in flight, ROWS (20000) rows) on each cluster in turn, so that the load of
# a shared machine falls on every depth alike; prints mtrload's line per
# load, then the leaders' paxos.proposed and paxos.pipelined (mtr_stats),
# and stops everything.  DUR sets data.durability (disk).  Ports: PORT
# (default 26000 + a number from the pid) .. + 20 per depth.
set -u
B=${1:?usage: pipeline_ab.sh BUILDDIR [PORT]}
DEPTHS=${DEPTHS:-"1 4"}
ROUNDS=${ROUNDS:-5} CLIENTS=${CLIENTS:-64} INFL=${INFL:-4} ROWS=${ROWS:-20000} DUR=${DUR:-disk}
base=${2:-$((26000 + ($$ % 150) * 40))}
top=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$top"' EXIT
k=0
for d in $DEPTHS; do
	port=$((base + k * 20))
	key=$("$B/src/metronomed" --gen-key)
	cs="cluster.servers=127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
	mkdir -p "$top/c$d"
	for i in 0 1 2; do
		"$B/src/metronomed" -c /dev/null -o "$cs" -o "cluster.key=$key" -o "server.id=$i" \
			-o "data.dir=$top/c$d/d$i" -o "data.durability=$DUR" -o "paxos.pipeline=$d" \
			>"$top/c$d/s$i.log" 2>&1 &
		pids+=($!)
	done
	"$B/src/mtrproxy" -c /dev/null -o "$cs" -o "cluster.key=$key" -o "proxy.listen=127.0.0.1:$((port + 10))" \
		-o "proxy.id=$((256 + k))" >"$top/c$d/p.log" 2>&1 &
	pids+=($!)
	eval "port_$d=$((port + 10))"
	k=$((k + 1))
done
sleep 2 # the elections
first=1
for r in $(seq "$ROUNDS"); do
	for d in $DEPTHS; do
		p=$(eval echo "\$port_$d")
		out=$("$B/tests/tools/mtrload" --uri "mtr://127.0.0.1:$p" --clients "$CLIENTS" --rows "$ROWS" \
			--first-id "$first" --pipeline "$INFL" --payload 100 2>>"$top/err")
		echo "round $r depth $d load $(cut -d' ' -f1 /proc/loadavg): $out"
	done
	first=$((first + ROWS))
done
sleep 2 # the servers' counters reach every replica's mtr_stats
for d in $DEPTHS; do
	p=$(eval echo "\$port_$d")
	echo "depth $d: $("$B/shell/mtrsql" "mtr://127.0.0.1:$p" -c "SELECT process, name, value FROM mtr_stats WHERE name IN ('paxos.proposed', 'paxos.pipelined') AND value > 0" 2>&1 | tr '\n' ' ')"
done
