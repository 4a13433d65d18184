#!/bin/sh
# e2e_netns.sh - end-to-end writes through the DPDK transport against the
# same cluster over kernel UDP sockets, on the network-namespace topology of
# tests/integration/dpdk_netns.sh (root; the DPDK build).  issue 17,
# doc/performance.md "DPDK end to end".
#
#   tests/bench/e2e_netns.sh [--rounds N] [--clients C] [--pipeline D] [--rows R]
#
# Run from the build directory (or with MTR_BUILDDIR set).  Topology, built
# here and torn down on exit: a bridge in namespace mtr<id>, namespaces for
# the proxy (and its mtrload) and three servers, each on a veth pair whose
# eth0 end is a bridge port; addresses 10.99.0.0/24 exist only there.
#
# Each round starts two clusters one after the other, same topology, same
# settings (disk durability), and drives each with the same mtrload:
#   udp   the three servers and the proxy on kernel sockets;
#   dpdk  the three servers and the proxy on DPDK (net_af_packet on eth0:
#         their addresses exist only in DPDK, not in the kernel).
# First C clients with D requests in flight (throughput), then one client
# without pipelining (latency).  The CPU time of each daemon (utime+stime
# from /proc) is reported per acknowledged write.  Figures, one per line
# as `name: value unit`, medians over the rounds; `e2e_dpdk_ratio` is the
# median of the per-round ratios (the two runs of a round are minutes
# apart at most, so the machine's load is much the same for both).
set -u
MTR_BUILDDIR=${MTR_BUILDDIR:-$PWD}
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

ROUNDS=3 CLIENTS=16 PIPE=32 ROWS=30000 LROWS=2000
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--clients) CLIENTS=$2; shift 2 ;;
	--pipeline) PIPE=$2; shift 2 ;;
	--rows) ROWS=$2; shift 2 ;;
	-h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "e2e_netns.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
done

[ "$(id -u)" = 0 ] || { echo "e2e_netns.sh: needs root (network namespaces)" >&2; exit 2; }
D=$MTR_BUILDDIR/src/metronomed
PX=$MTR_BUILDDIR/src/mtrproxy
LOAD=$MTR_BUILDDIR/tests/tools/mtrload
for b in "$D" "$PX" "$LOAD"; do
	[ -x "$b" ] || { echo "e2e_netns.sh: $b is not built (run it from the build directory)" >&2; exit 2; }
done
[ -x "$MTR_BUILDDIR/tests/integration/mtrdgram" ] ||
	{ echo "e2e_netns.sh: this build has no DPDK (configure found no libdpdk)" >&2; exit 2; }

ID=$$
P=mtr${ID}P
SERVERS=10.99.0.11:7501,10.99.0.12:7501,10.99.0.13:7501
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
netns_bridge "mtr$ID" P S1 S2 S3 || { echo "e2e_netns.sh: cannot create network namespaces" >&2; exit 2; }

# cpu PID: utime+stime in clock ticks
cpu() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
HZ=$(getconf CLK_TCK)
dev=20

# run KIND ROUND: one cluster on KIND (udp or dpdk), both loads; appends
# "KIND tput p50 p99 lat_p50 lat_p99 cpu_us_per_write" to TMP/results
run() {
	kind=$1 round=$2 C=$TMP/$1.$2
	mkdir -p "$C"
	for ns in mtr${ID}S1 mtr${ID}S2 mtr${ID}S3 "$P"; do
		ip -n "$ns" addr flush dev eth0 2>/dev/null
		ip -n "$ns" route flush dev eth0 2>/dev/null
	done
	spids=""
	for i in 0 1 2; do
		ns=mtr${ID}S$((i + 1))
		dev=$((dev + 1))
		{
			echo "cluster.servers = $SERVERS"
			echo "cluster.key = $MTR_KEY"
			echo "server.id = $i"
			echo "data.dir = $C/d$i"
			transport_lines "$kind" $dev
		} >"$C/s$i.conf"
		if [ "$kind" = udp ]; then
			ip -n "$ns" addr add "10.99.0.1$((i + 1))/24" dev eth0
			ip -n "$ns" route add 224.0.0.0/4 dev eth0
		fi
		spids="$spids $(spawn "$C/s$i.log" ip netns exec "$ns" "$D" -c "$C/s$i.conf")"
	done
	dev=$((dev + 1))
	{
		echo "cluster.servers = $SERVERS"
		echo "cluster.key = $MTR_KEY"
		echo "proxy.listen = 127.0.0.1:7400"
		echo "proxy.bind = 10.99.0.10:7600"
		transport_lines "$kind" $dev
	} >"$C/p.conf"
	if [ "$kind" = udp ]; then
		ip -n "$P" addr add 10.99.0.10/24 dev eth0
		ip -n "$P" route add 224.0.0.0/4 dev eth0
	fi
	ppid=$(spawn "$C/p.log" ip netns exec "$P" "$PX" -c "$C/p.conf")
	k=0
	while ! grep -qh "became leader" "$C"/s*.log 2>/dev/null && [ $k -lt 300 ]; do sleep 0.1; k=$((k + 1)); done
	ip netns exec "$P" "$LOAD" --uri mtr://127.0.0.1:7400 --clients 1 --rows 200 >/dev/null 2>&1 # warm-up
	c0=0
	for pid in $spids $ppid; do c0=$((c0 + $(cpu "$pid"))); done
	ip netns exec "$P" timeout 300 "$LOAD" --uri mtr://127.0.0.1:7400 --clients "$CLIENTS" --rows "$ROWS" \
		--first-id 1000 --pipeline "$PIPE" >"$C/load.out" 2>"$C/load.err"
	c1=0
	for pid in $spids $ppid; do c1=$((c1 + $(cpu "$pid"))); done
	ip netns exec "$P" timeout 300 "$LOAD" --uri mtr://127.0.0.1:7400 --clients 1 --rows "$LROWS" \
		--first-id $((ROWS + 100000)) >"$C/lat.out" 2>"$C/lat.err"
	stop_pid "$ppid" 10
	for pid in $spids; do stop_pid "$pid" 20; done
	set -- $(cat "$C/load.out")
	if [ "${1:-}" != acked ] || [ "$2" != "$ROWS" ]; then
		echo "# $kind round $round: the load failed: $(cat "$C/load.out" "$C/load.err" | head -3)" >&2
		grep -h -v ' INFO ' "$C"/*.log | head -10 | sed 's/^/#   /' >&2
		return 1
	fi
	tput=$8 p50=${10} p99=${12}
	set -- $(cat "$C/lat.out")
	[ "${1:-}" = acked ] || return 1
	lp50=${10} lp99=${12}
	us=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$ROWS" 'BEGIN{printf "%.1f", t * 1e6 / hz / n}')
	echo "$kind $tput $p50 $p99 $lp50 $lp99 $us" >>"$TMP/results"
	echo "# round $round $kind: $CLIENTS x $PIPE: $tput writes/s p50 $p50 ms p99 $p99 ms;" \
		"1 client: p50 $lp50 ms p99 $lp99 ms; daemons' CPU $us us/write" >&2
}

# median KIND COLUMN
median() { awk -v k="$1" -v c="$2" '$1 == k {print $c}' "$TMP/results" | sort -g |
	awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "# e2e_netns: $ROUNDS rounds, $CLIENTS clients x $PIPE in flight, $ROWS rows; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
r=1
: >"$TMP/ratios"
while [ "$r" -le "$ROUNDS" ]; do
	run udp $r || exit 1
	run dpdk $r || exit 1
	u=$(awk '$1 == "udp" {v = $2} END {print v}' "$TMP/results")
	d=$(awk '$1 == "dpdk" {v = $2} END {print v}' "$TMP/results")
	awk -v u="$u" -v d="$d" 'BEGIN{printf "%.3f\n", d / u}' >>"$TMP/ratios"
	r=$((r + 1))
done
echo "netns_udp_writes_per_s: $(median udp 2) writes/s"
echo "netns_dpdk_writes_per_s: $(median dpdk 2) writes/s"
echo "e2e_dpdk_ratio: $(sort -g "$TMP/ratios" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}') x"
for k in udp dpdk; do
	echo "netns_${k}_p50_ms: $(median $k 3) ms"
	echo "netns_${k}_p99_ms: $(median $k 4) ms"
	echo "netns_${k}_1client_p50_ms: $(median $k 5) ms"
	echo "netns_${k}_1client_p99_ms: $(median $k 6) ms"
	echo "netns_${k}_cpu_us_per_write: $(median $k 7) us"
done
