#!/bin/sh
# reads_cpu.sh - what a point read costs each process (doc/performance.md,
# "Session reads at 64 clients").
#
#   tests/bench/reads_cpu.sh BUILDDIR PORT [ROUNDS (1)] [LOADS ("s64 s1 l64")]
#
# Starts 3 metronomed (memory mode) and one mtrproxy (clients on PORT+10)
# from BUILDDIR in a temporary directory, writes 60,000 rows (16 clients x 16
# in flight), then per round and load reads each row once with
# tests/tools/mtrload --read: s64 = session reads, 64 clients; s1 = session,
# 1 client; l64 = linearizable, 64 clients (one read in flight a client).
# For each run it prints mtrload's reads/s, p50 and p99, and per read: the
# CPU time of the three servers together, of the proxy and of mtrload (us),
# and the context switches of the servers and of the proxy (voluntary and
# not, every thread).  CPU time per read holds still on a loaded machine
# where reads/s does not: it is the figure to compare builds by.
set -u
B=${1:?usage: reads_cpu.sh BUILDDIR PORT [ROUNDS] [LOADS]}
P=${2:?port}
ROUNDS=${3:-1}
LOADS=${4:-s64 s1 l64}
ROWS=60000
D=$(mktemp -d /tmp/mtr-readscpu-XXXXXX)
KEY=$("$B/src/metronomed" --gen-key)
CS="cluster.servers=127.0.0.1:$P,127.0.0.1:$((P + 1)),127.0.0.1:$((P + 2))"
SP=
for i in 0 1 2; do
	"$B/src/metronomed" -c /dev/null -o "$CS" -o cluster.key="$KEY" -o server.id=$i -o data.dir="$D/d$i" \
		-o data.durability=memory >"$D/s$i.log" 2>&1 &
	SP="$SP $!"
done
"$B/src/mtrproxy" -c /dev/null -o "$CS" -o cluster.key="$KEY" -o proxy.listen=127.0.0.1:$((P + 10)) >"$D/p.log" 2>&1 &
PP=$!
sleep 1.5 # the election
U="mtr://127.0.0.1:$((P + 10))"
"$B/tests/tools/mtrload" --uri "$U" --clients 16 --rows $ROWS --pipeline 16 >/dev/null
# CPU ns (schedstat) and context switches of every thread of the processes $*
cpu() {
	s=0
	for p in "$@"; do for t in /proc/$p/task/*; do s=$((s + $(cut -d' ' -f1 "$t/schedstat"))); done; done
	echo $s
}
csw() {
	s=0
	for p in "$@"; do
		for t in /proc/$p/task/*; do s=$((s + $(awk '/ctxt_switches/ {n += $2} END {print n}' "$t/status"))); done
	done
	echo $s
}
r=0
while [ $r -lt "$ROUNDS" ]; do
	r=$((r + 1))
	for l in $LOADS; do
		case $l in
		s64) c=64 q= ;;
		s1) c=1 q= ;;
		l64) c=64 q="?consistency=linearizable" ;;
		*) echo "reads_cpu.sh: unknown load $l (s64, s1, l64)" >&2; continue ;;
		esac
		a1=$(cpu $SP) a2=$(cpu $PP) a3=$(csw $SP) a4=$(csw $PP)
		# mtrload's CPU: its shell's cutime + cstime once it was waited for (ticks)
		out=$(sh -c '"$@" | tail -1; awk -v hz="$(getconf CLK_TCK)" "{print \"cpu\", (\$16 + \$17) / hz}" /proc/$$/stat' \
			sh "$B/tests/tools/mtrload" --uri "$U$q" --clients $c --rows $ROWS --read 2>&1 | tr '\n' ' ')
		b1=$(cpu $SP) b2=$(cpu $PP) b3=$(csw $SP) b4=$(csw $PP)
		echo "$out" | awk -v l=$l -v la="$(cut -d' ' -f1 /proc/loadavg)" -v s=$((b1 - a1)) -v p=$((b2 - a2)) \
			-v sc=$((b3 - a3)) -v pc=$((b4 - a4)) '{
			n = $2; for (i = 1; i <= NF; i++) if ($i == "cpu") cl = $(i + 1) * 1e6
			printf "%s load %s reads_per_s %s p50_ms %s p99_ms %s servers_us %.1f proxy_us %.1f client_us %.1f servers_csw %.2f proxy_csw %.2f\n",
				l, la, $8, $10, $12, s / 1000 / n, p / 1000 / n, cl / n, sc / n, pc / n }'
	done
done
for pid in $SP $PP; do kill "$pid"; done
wait
rm -rf "$D"
