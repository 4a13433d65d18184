#!/bin/sh
# dpdk_netns.sh - the DPDK transport on a network-namespace topology (root).
#
# Topology (built here, torn down on exit even on failure):
#   namespace mtrB<id>: bridge br0 (multicast snooping off)
#   namespaces mtrP<id> (proxy) and mtrS<id>1..3 (servers), each with a veth
#   pair whose eth0 end is in the host namespace and whose other end is a
#   bridge port.  Addresses 10.99.0.0/24 exist only inside these namespaces.
#
# Until the servers exist this checks the transport level, both ways:
#   1. a socket (udp) sender in the proxy multicasts N items; three DPDK
#      receivers (net_af_packet on eth0) get every item intact;
#   2. a DPDK sender in the proxy; three socket receivers get every item.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_root
command -v ip >/dev/null 2>&1 || skip_all "no ip(8) (iproute2)"
M="$MTR_BUILDDIR/tests/integration/mtrdgram"
[ -x "$M" ] || skip_all "mtrdgram not built (DPDK build only)"
if [ -n "${MTR_SANITIZE:-}" ] && [ "${MTR_SANITIZE}" != 0 ]; then
	skip_all "runs in the normal build only (DPDK under ASan: see doc/dpdk.md)"
fi

ID=$$
BR=mtrB$ID
P=mtrP$ID
S="mtrS${ID}1 mtrS${ID}2 mtrS${ID}3"
N=2000
GROUP=239.99.0.1:7400
EAL="--no-huge --no-shconf --no-telemetry --no-pci -m 128 --log-level=*:warning"
TMP=$(mktemp -d)

teardown() {
	for ns in $P $S $BR; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$TMP"
}
at_exit teardown

ip netns add "$BR" || skip_all "cannot create network namespaces here"
ip -n "$BR" link add br0 type bridge mcast_snooping 0
ip -n "$BR" link set br0 up
i=0
for ns in $P $S; do
	i=$((i + 1))
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add eth0 type veth peer name p$i netns "$BR"
	ip -n "$BR" link set p$i master br0
	ip -n "$BR" link set p$i up
	ip -n "$ns" link set eth0 up
done

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

plan 8

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
spawn "$TMP/t.log" ip netns exec mtrS${ID}1 "$M" recv --kind dpdk \
	--port "net_af_packet9,iface=eth0" --eal "$EAL" --bind 10.99.0.11:7400 --group $GROUP --count 1 --timeout 30 >/dev/null
pid=$!
wait_ready "$TMP/t.log"
stop_pid "$pid" 10
check "SIGTERM: DPDK receiver closed its port and exited" grep -q 'close net_af_packet9' "$TMP/t.log"
spawn "$TMP/t2.log" ip netns exec mtrS${ID}1 "$M" recv --kind dpdk \
	--port "net_af_packet9,iface=eth0" --eal "$EAL" --bind 10.99.0.11:7400 --group $GROUP --count 1 --timeout 30 >/dev/null
pid=$!
check "a second DPDK run on the same interface starts" wait_ready "$TMP/t2.log"
stop_pid "$pid" 10

if [ $_tap_fail -gt 0 ]; then
	for f in "$TMP"/*.log; do diag "$(basename "$f"):"; sed 's/^/#   /' "$f" | head -20; done
fi
exit 0
