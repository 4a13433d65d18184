#!/bin/sh
# stages.sh - where the time of one write goes (doc/performance.md, "Where
# the time of one write goes").
#
#   tests/bench/stages.sh BUILDDIR memory|disk PORT [ROWS (2000)]
#
# Starts 3 metronomed (data.durability as given, /metrics on PORT+20..22)
# and one mtrproxy (clients on PORT+10, /metrics on PORT+30) from BUILDDIR in
# a temporary directory, writes ROWS rows from one client with one request
# in flight (tests/tools/mtrload), reads /metrics of the proxy and of every
# server, stops them, and prints mtrload's line and then, per process and
# histogram (the stage histograms, the proxy's write time, the apply time),
# "PROCESS NAME mean_us M count N" (mean = _sum / _count).  Needs curl.
set -u
B=${1:?usage: stages.sh BUILDDIR memory|disk PORT [ROWS]}
DUR=${2:?durability}
P=${3:?port}
ROWS=${4:-2000}
command -v curl >/dev/null 2>&1 || { echo "stages.sh: needs curl (package curl)" >&2; exit 2; }
D=$(mktemp -d /tmp/mtr-stages-XXXXXX)
KEY=$("$B/src/metronomed" --gen-key)
CS="cluster.servers=127.0.0.1:$P,127.0.0.1:$((P + 1)),127.0.0.1:$((P + 2))"
PIDS=
for i in 0 1 2; do
	"$B/src/metronomed" -c /dev/null -o "$CS" -o cluster.key="$KEY" -o server.id=$i -o data.dir="$D/d$i" \
		-o data.durability="$DUR" -o server.metrics_listen=127.0.0.1:$((P + 20 + i)) >"$D/s$i.log" 2>&1 &
	PIDS="$PIDS $!"
done
"$B/src/mtrproxy" -c /dev/null -o "$CS" -o cluster.key="$KEY" -o proxy.listen=127.0.0.1:$((P + 10)) \
	-o proxy.metrics_listen=127.0.0.1:$((P + 30)) >"$D/p.log" 2>&1 &
PIDS="$PIDS $!"
sleep 1.5 # the election
"$B/tests/tools/mtrload" --uri "mtr://127.0.0.1:$((P + 10))" --clients 1 --rows "$ROWS" --pipeline 1 --payload 100
curl -s -m 5 "http://127.0.0.1:$((P + 30))/metrics" >"$D/proxy.txt"
for i in 0 1 2; do curl -s -m 5 "http://127.0.0.1:$((P + 20 + i))/metrics" >"$D/s$i.txt"; done
for pid in $PIDS; do kill "$pid"; done
wait
for f in proxy s0 s1 s2; do
	awk -v f=$f '/_seconds_sum /{n=$1; sub(/_sum$/, "", n); s[n]=$2}
		/_seconds_count /{n=$1; sub(/_count$/, "", n); c[n]=$2}
		END{for (n in s) if ((n ~ /stage|write_seconds|apply_instance/) && c[n] > 0)
			printf "%s %s mean_us %.1f count %d\n", f, n, s[n] / c[n] * 1e6, c[n]}' "$D/$f.txt" | sort
done
rm -rf "$D"
