#!/bin/sh
# dpdk_netns.sh - the DPDK transport on a network-namespace topology (root).
#
# Topology (built here, torn down on exit even on failure):
#   namespace mtr<id>: bridge br0 (multicast snooping off; lib.sh netns_bridge)
#   namespaces mtr<id>P (proxy) and mtr<id>S1..3 (servers), each with a veth
#   pair whose eth0 end is in the host namespace and whose other end is a
#   bridge port.  Addresses 10.99.0.0/24 exist only inside these namespaces.
#
# Checks, transport level first, then a whole cluster:
#   1. a socket (udp) sender in the proxy multicasts N items; three DPDK
#      receivers (net_af_packet on eth0) get every item intact;
#   2. a DPDK sender in the proxy; three socket receivers get every item;
#   3. SIGTERM releases a DPDK port, a second run starts cleanly;
#   4. a cluster: three metronomed on DPDK (net_af_packet; their addresses
#      exist only in DPDK, not in the kernel), mtrproxy on kernel sockets,
#      mtrload through it; every replica converges to the same digest;
#   5. mixed the other way: servers 1-2 on DPDK, server 3 on sockets (Paxos
#      between the two stacks), and mtrproxy on DPDK.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_root
command -v ip >/dev/null 2>&1 || skip_all "no ip(8) (iproute2)"
M="$MTR_BUILDDIR/tests/integration/mtrdgram"
[ -x "$M" ] || skip_all "mtrdgram not built (DPDK build only)"
if [ -n "${MTR_SANITIZE:-}" ] && [ "${MTR_SANITIZE}" != 0 ]; then
	skip_all "runs in the normal build only (DPDK under ASan: see doc/dpdk.md)"
fi

ID=$$
P=mtr${ID}P
S="mtr${ID}S1 mtr${ID}S2 mtr${ID}S3"
N=2000
GROUP=239.99.0.1:7400
EAL=$DPDK_EAL
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'

netns_bridge "mtr$ID" P S1 S2 S3 || skip_all "cannot create network namespaces here"

# addr NS IP: give the namespace's eth0 a kernel address and a multicast route
addr() {
	ip -n "$1" addr add "$2/24" dev eth0
	ip -n "$1" route add 224.0.0.0/4 dev eth0
}
# wait_ready LOG: until the receiver says it listens (at most 15 s)
wait_ready() {
	k=0
	while ! grep -q '^ready' "$1" 2>/dev/null && [ $k -lt 150 ]; do sleep 0.1; k=$((k + 1)); done
	grep -q '^ready' "$1"
}

plan 14

# ---- 1. socket sender -> DPDK receivers (af_packet) -----------------------
addr "$P" 10.99.0.10
pids=""
i=0
for ns in $S; do
	i=$((i + 1))
	spawn "$TMP/r$i.log" ip netns exec "$ns" "$M" recv --kind dpdk \
		--port "net_af_packet$i,iface=eth0,framecnt=4096" --eal "$EAL" \
		--bind 10.99.0.1$i:7400 --group $GROUP --count $N --timeout 30 >/dev/null
	pids="$pids $!"
done
ready=1
for i in 1 2 3; do wait_ready "$TMP/r$i.log" || ready=0; done
check "three DPDK receivers (net_af_packet) listening" [ $ready = 1 ]
ip netns exec "$P" "$M" send --kind udp --bind 10.99.0.10:7400 --group $GROUP --count $N \
	>"$TMP/s1.log" 2>&1
all=1
i=0
for pid in $pids; do
	i=$((i + 1))
	wait "$pid" 2>/dev/null || all=0
	diag "server $i: $(grep '^items' "$TMP/r$i.log")"
done
grep -q "^items $N .*bad 0" "$TMP/r1.log" && grep -q "^items $N .*bad 0" "$TMP/r2.log" &&
	grep -q "^items $N .*bad 0" "$TMP/r3.log" || all=0
check "socket sender -> 3 DPDK receivers: all $N items intact on each" [ $all = 1 ]
check "DPDK receivers released their ports (clean close logged)" \
	grep -q 'close net_af_packet' "$TMP/r1.log"

# ---- 2. DPDK sender -> socket receivers ------------------------------------
ip -n "$P" addr flush dev eth0
ip -n "$P" route flush dev eth0 2>/dev/null || true
i=0
for ns in $S; do i=$((i + 1)); addr "$ns" 10.99.0.1$i; done
pids=""
i=0
for ns in $S; do
	i=$((i + 1))
	spawn "$TMP/u$i.log" ip netns exec "$ns" "$M" recv --kind udp \
		--bind 0.0.0.0:7400 --group $GROUP --count $N --timeout 30 >/dev/null
	pids="$pids $!"
done
ready=1
for i in 1 2 3; do wait_ready "$TMP/u$i.log" || ready=0; done
check "three socket receivers listening" [ $ready = 1 ]
ip netns exec "$P" "$M" send --kind dpdk --port "net_af_packet0,iface=eth0" --eal "$EAL" \
	--bind 10.99.0.10:7400 --group $GROUP --count $N >"$TMP/s2.log" 2>&1
check "DPDK sender (net_af_packet) ran" grep -q "^sent dgrams" "$TMP/s2.log"
all=1
i=0
for pid in $pids; do
	i=$((i + 1))
	wait "$pid" 2>/dev/null || all=0
	diag "server $i: $(grep '^items' "$TMP/u$i.log")"
done
grep -q "^items $N .*bad 0" "$TMP/u1.log" && grep -q "^items $N .*bad 0" "$TMP/u2.log" &&
	grep -q "^items $N .*bad 0" "$TMP/u3.log" || all=0
check "DPDK sender -> 3 socket receivers: all $N items intact on each" [ $all = 1 ]

# ---- 3. SIGTERM releases everything; a second run starts cleanly ----------
spawn "$TMP/t.log" ip netns exec mtr${ID}S1 "$M" recv --kind dpdk \
	--port "net_af_packet9,iface=eth0" --eal "$EAL" --bind 10.99.0.11:7400 --group $GROUP --count 1 --timeout 30 >/dev/null
pid=$!
wait_ready "$TMP/t.log"
stop_pid "$pid" 10
check "SIGTERM: DPDK receiver closed its port and exited" grep -q 'close net_af_packet9' "$TMP/t.log"
spawn "$TMP/t2.log" ip netns exec mtr${ID}S1 "$M" recv --kind dpdk \
	--port "net_af_packet9,iface=eth0" --eal "$EAL" --bind 10.99.0.11:7400 --group $GROUP --count 1 --timeout 30 >/dev/null
pid=$!
check "a second DPDK run on the same interface starts" wait_ready "$TMP/t2.log"
stop_pid "$pid" 10

# ---- 4-5. whole clusters ----------------------------------------------------
D=$MTR_BUILDDIR/src/metronomed
PX=$MTR_BUILDDIR/src/mtrproxy
LOAD=$MTR_BUILDDIR/tests/tools/mtrload
DIG=$MTR_BUILDDIR/tests/tools/mtrdigest
SERVERS=10.99.0.11:7501,10.99.0.12:7501,10.99.0.13:7501
for ns in $S; do ip -n "$ns" addr flush dev eth0; ip -n "$ns" route flush dev eth0 2>/dev/null || true; done
ip -n "$P" addr flush dev eth0 2>/dev/null || true
dev=20
# run_cluster NAME PROXY_KIND KIND1 KIND2 KIND3
run_cluster() {
	name=$1; pkind=$2; shift 2
	C=$TMP/$name
	mkdir -p "$C"
	i=0
	for kind in "$@"; do
		ns=mtr${ID}S$((i + 1))
		ip -n "$ns" addr flush dev eth0 2>/dev/null || true
		if [ "$kind" = udp ]; then addr "$ns" 10.99.0.1$((i + 1)); fi
		dev=$((dev + 1))
		{
			echo "cluster.servers = $SERVERS"
		echo "cluster.key = $MTR_KEY"
			echo "server.id = $i"
			echo "data.dir = $C/d$i"
			transport_lines "$kind" $dev
		} >"$C/s$i.conf"
		spawn "$C/s$i.log" ip netns exec "$ns" "$D" -c "$C/s$i.conf" >/dev/null
		eval "cpid_$i=$!"
		i=$((i + 1))
	done
	ip -n "$P" addr flush dev eth0 2>/dev/null || true
	dev=$((dev + 1))
	{
		echo "cluster.servers = $SERVERS"
		echo "cluster.key = $MTR_KEY"
		echo "proxy.listen = 127.0.0.1:7400"
		echo "proxy.bind = 10.99.0.10:7600"
		transport_lines "$pkind" $dev
	} >"$C/p.conf"
	[ "$pkind" = udp ] && addr "$P" 10.99.0.10
	spawn "$C/p.log" ip netns exec "$P" "$PX" -c "$C/p.conf" >/dev/null
	ppid=$!
	k=0
	while ! grep -qh "became leader" "$C"/s*.log 2>/dev/null && [ $k -lt 300 ]; do sleep 0.1; k=$((k + 1)); done
	check "$name: servers ($*) elected a leader" grep -qh "became leader" "$C"/s0.log "$C"/s1.log "$C"/s2.log
	ip netns exec "$P" timeout 120 "$LOAD" --uri mtr://127.0.0.1:7400 --clients 4 --rows 3000 \
		--pipeline 8 >"$C/load.out" 2>"$C/load.err"
	diag "$name: $(cat "$C/load.out")"
	check "$name: 3000 writes acknowledged through mtrproxy ($pkind)" grep -q '^acked 3000 failed 0' "$C/load.out"
	sleep 2
	stop_pid $ppid 10
	sv=0 # (stop_pid uses $i itself)
	while [ $sv -lt 3 ]; do eval "stop_pid \$cpid_$sv 20"; sv=$((sv + 1)); done
	"$DIG" "$C/d0" "$C/d1" "$C/d2" 2>/dev/null >"$C/dig.out"
	sed "s|$C/||; s/^/# $name: /" "$C/dig.out"
	n=$(awk '{print $3, $5, $7}' "$C/dig.out" | sort -u | wc -l)
	same=0
	[ "$n" = 1 ] && grep -q 'rows 3000$' "$C/dig.out" && same=1
	check "$name: the three replicas converged (same instance, digest, 3000 rows)" [ $same = 1 ]
}
if [ -x "$D" ] && [ -x "$PX" ] && [ -x "$LOAD" ] && [ -x "$DIG" ]; then
	run_cluster dpdk3 udp dpdk dpdk dpdk
	run_cluster mixed dpdk dpdk dpdk udp
else
	for k in 1 2 3 4 5 6; do ok "# SKIP the daemons or tools are not built"; done
fi

if [ $_tap_fail -gt 0 ]; then
	for f in "$TMP"/*.log "$TMP"/*/*.log "$TMP"/*/load.err; do
		[ -f "$f" ] || continue
		diag "$f:"; grep -v ' INFO ' "$f" | sed 's/^/#   /' | head -20
	done
fi
exit 0
