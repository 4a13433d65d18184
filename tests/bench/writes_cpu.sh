#!/bin/sh
# writes_cpu.sh - what an acknowledged write costs each process
# (doc/performance.md, "Where the CPU of one write goes").
#
#   tests/bench/writes_cpu.sh BUILDDIR PORT [ROUNDS (1)] [MTUS ("auto")]
#
# Per round and per transport.mtu of MTUS, starts 3 metronomed (disk mode)
# and one mtrproxy (clients on PORT+10) from BUILDDIR in a new temporary
# directory, with that transport.mtu on every process, and writes ROWS rows
# (MTR_ROWS, 300,000) with tests/tools/mtrload, 64 clients x 512 in flight
# (MTR_PIPELINE sets the 512),
# the load of mtrbench e2e's throughput figure.  It prints mtrload's
# writes/s, then the CPU time per acknowledged write (us: every thread,
# from schedstat) of mtrload, of the proxy, of each server and of all of
# them, then that of each kind of server thread (the network thread
# "metronomed", "mtr-apply", "mtr-checkpoint"), the mean of the three.
# CPU per write holds still on a loaded machine where writes/s does not;
# 2 cores / the sum is the most writes/s the machine can hold.
set -u
B=${1:?usage: writes_cpu.sh BUILDDIR PORT [ROUNDS] [MTUS]}
P=${2:?port}
ROUNDS=${3:-1}
MTUS=${4:-auto}
ROWS=${MTR_ROWS:-300000}
KEY=$("$B/src/metronomed" --gen-key)
CS="cluster.servers=127.0.0.1:$P,127.0.0.1:$((P + 1)),127.0.0.1:$((P + 2))"
# "NAME NS" per thread of the processes $* (comm, schedstat)
threads() {
	for p in "$@"; do for t in /proc/$p/task/*; do echo "$(cat "$t/comm") $(cut -d' ' -f1 "$t/schedstat")"; done; done
}
# CPU ns (schedstat) of every thread of the processes $*
cpu() {
	s=0
	for p in "$@"; do for t in /proc/$p/task/*; do s=$((s + $(cut -d' ' -f1 "$t/schedstat"))); done; done
	echo $s
}
per() { awk -v a="$1" -v b="$2" -v n="$ROWS" 'BEGIN { printf "%.2f", (b - a) / 1000 / n }'; }
r=0
while [ $r -lt "$ROUNDS" ]; do
	r=$((r + 1))
	for m in $MTUS; do
		D=$(mktemp -d /tmp/mtr-writescpu-XXXXXX)
		SP=
		for i in 0 1 2; do
			"$B/src/metronomed" -c /dev/null -o "$CS" -o cluster.key="$KEY" -o server.id=$i \
				-o data.dir="$D/d$i" -o transport.mtu="$m" >"$D/s$i.log" 2>&1 &
			SP="$SP $!"
		done
		"$B/src/mtrproxy" -c /dev/null -o "$CS" -o cluster.key="$KEY" -o transport.mtu="$m" \
			-o proxy.listen=127.0.0.1:$((P + 10)) >"$D/p.log" 2>&1 &
		PP=$!
		sleep 1.5 # the election
		set -- $SP
		s0=$(cpu "$1") s1=$(cpu "$2") s2=$(cpu "$3") p0=$(cpu $PP)
		threads $SP >"$D/thr0"
		# mtrload's CPU: the subshell's children times (POSIX `times`)
		(
			"$B/tests/tools/mtrload" --uri "mtr://127.0.0.1:$((P + 10))" --clients 64 --rows "$ROWS" \
				--pipeline "${MTR_PIPELINE:-512}" $([ "${MTR_APPEND:-1}" = 0 ] || echo --append) \
				>"$D/load.out" 2>&1
			times >"$D/times"
		)
		l0=0
		l1=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, t, "m"); n += t[1] * 60 + t[2] }
			printf "%.0f", n * 1e9 }' "$D/times")
		t0=$(cpu "$1") t1=$(cpu "$2") t2=$(cpu "$3") q0=$(cpu $PP)
		threads $SP >"$D/thr1"
		wps=$(awk '/writes_per_s/ { for (i = 1; i < NF; i++) if ($i == "writes_per_s") print $(i + 1) }' "$D/load.out")
		all=$(awk -v a="$(per $l0 $l1)" -v b="$(per $p0 $q0)" -v c="$(per $s0 $t0)" -v d="$(per $s1 $t1)" \
			-v e="$(per $s2 $t2)" 'BEGIN { printf "%.2f", a + b + c + d + e }')
		echo "round $r mtu $m: writes_per_s: ${wps:-?}"
		echo "round $r mtu $m: cpu_us_per_write: mtrload $(per $l0 $l1) proxy $(per $p0 $q0)" \
			"server0 $(per $s0 $t0) server1 $(per $s1 $t1) server2 $(per $s2 $t2) all $all"
		# the servers' threads by name (doc/operations.md "Threads"), mean of the three
		echo "round $r mtu $m: server_threads_us_per_write:" $(awk -v n="$ROWS" 'NR == FNR { a[$1] += $2; next }
			{ b[$1] += $2 } END { for (k in b) if ((b[k] - a[k]) / 3000 / n >= 0.005) printf "%s %.2f\n", k, (b[k] - a[k]) / 3000 / n }' \
			"$D/thr0" "$D/thr1" | sort)
		kill $SP $PP 2>/dev/null
		wait $SP $PP 2>/dev/null
		rm -rf "$D"
	done
done
