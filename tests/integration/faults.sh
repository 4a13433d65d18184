#!/bin/sh
# faults.sh - the fault suite (issue 14, doc/faults.md): a cluster in network
# namespaces under load, one fault at a time, and checkers for safety and
# liveness after each.  Needs root (namespaces, iptables); skips without.
#
# Topology (lib.sh netns_bridge; deleted on every exit path): namespace
# mf<pid> holds bridge br0; mf<pid>s0..s4 (servers), mf<pid>p1, p2 (proxies)
# and mf<pid>c (the clients) each have eth0 on it, with addresses in
# 10.77.0.0/24 that exist only inside these namespaces.
#
# Each scenario starts a fresh cluster (3 servers, 5 for five_two), two
# proxies, two mtrload (3 connections each, one per proxy first, failing over
# to the other) and mtrbank (2 writers, 2 linearizable readers), lets the load
# run, applies the fault, heals it, watches 5 s, stops the load and the
# servers and checks (see doc/faults.md):
#   fault    the fault took effect (rule counters, mtrnfq's counts, ...);
#   safety   equal digests; every acknowledged write present on every
#            replica (a primary key: at most once), nothing unsent present;
#            bank: total constant, each account's balance equal to its
#            transfers, every acknowledged transfer present, no reader saw a
#            violation;
#   liveness every connection open before the fault had a request sent
#            after the heal answered within 5 s of it, and the writes/s of a
#            1 s window within 5 s of the heal are at least half of the
#            rate before the fault;
# plus checks of their own in some scenarios (writes went on during a
# minority fault, no leadership change after a rejoin, a full disk resumed).
#
# Environment: MTR_FAULT_SEED (replay a run: the seed is printed first),
# MTR_FAULT_SCENARIOS (a comma/space list; default all), MTR_FAULT_SOAK=1
# (the long version: longer faults, loops repeated), MTR_FAULT_NET
# (auto, netem or iptables: how loss, duplication and delay are made),
# MTR_FAULT_LOG (a log.level for every daemon, e.g. debug).
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_root
for c in ip iptables sqlite3 mount; do
	command -v $c >/dev/null 2>&1 || skip_all "no $c(8) here (setup.sh PACKAGES)"
done
need_built src/metronomed src/mtrproxy tests/tools/mtrload tests/tools/mtrbank tests/tools/mtrdigest
B=$MTR_BUILDDIR
# pipelined ordering on (doc/paxos.md "The leader's batching rule"): kills,
# stops and partitions of the leader then meet several instances in flight
MTR_PIPELINE=${MTR_PIPELINE:-4}
NFQ=$B/tests/tools/mtrnfq
[ -x "$NFQ" ] || NFQ=

ALL="leader_kill leader_stop follower_part leader_part proxy_cut loss20 dup delay_reorder corrupt
power_disk power_mem disk_full proxy_kill five_two"
# The sanitizer build runs every process several times slower and the test
# command runs both builds: there a subset (one of each kind: a crash, a
# partition of a proxy, corruption, a power loss in each durability mode)
# keeps the suite within the CI's time; the normal build runs them all.
# MTR_FAULT_SCENARIOS overrides either.
SANITIZE_SET="leader_kill proxy_cut corrupt power_disk power_mem"
if [ -z "${MTR_FAULT_SCENARIOS:-}" ] && [ -n "${MTR_SANITIZE:-}" ] && [ "${MTR_SANITIZE}" != 0 ]; then
	MTR_FAULT_SCENARIOS=$SANITIZE_SET
	echo "# sanitizer build: scenarios $SANITIZE_SET (the normal build runs all; MTR_FAULT_SCENARIOS=... for others)"
fi
SCENARIOS=$(echo "${MTR_FAULT_SCENARIOS:-$ALL}" | tr ',' ' ')
for s in $SCENARIOS; do
	case " $(echo $ALL) " in *" $s "*) ;; *) echo "faults.sh: unknown scenario '$s' (known: $(echo $ALL))" >&2; exit 2 ;; esac
done
if [ -n "${MTR_FAULT_SEED:-}" ]; then
	SEED=$MTR_FAULT_SEED
elif [ "${CI:-}" = true ]; then
	SEED=1 # CI's verdict must not depend on the draw
else
	SEED=$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')
fi
case "$SEED" in '' | *[!0-9]*) echo "faults.sh: MTR_FAULT_SEED must be a number" >&2; exit 2 ;; esac
SOAK=${MTR_FAULT_SOAK:-0}
if [ "$SOAK" = 1 ]; then
	FAULT_S=30 LOOPS=10 CUTS=10
else
	FAULT_S=5 LOOPS=3 CUTS=1
fi
LIVE_MS=5000 # the liveness window after a heal

TMP=$(mktemp -d)
if [ -n "${MTR_FAULT_KEEP:-}" ]; then
	echo "# files kept in $TMP (MTR_FAULT_KEEP)"
else
	at_exit 'rm -rf "$TMP"'
fi
NS=mf$$
# shellcheck disable=SC2046
netns_bridge "$NS" s0 s1 s2 s3 s4 p1 p2 c || skip_all "cannot create network namespaces here"
i=0
while [ $i -lt 5 ]; do ip -n "${NS}s$i" addr add "10.77.0.$((11 + i))/24" dev eth0; i=$((i + 1)); done
ip -n "${NS}p1" addr add 10.77.0.21/24 dev eth0
ip -n "${NS}p2" addr add 10.77.0.22/24 dev eth0
ip -n "${NS}c" addr add 10.77.0.30/24 dev eth0
ip netns exec "${NS}s0" iptables -S OUTPUT >/dev/null 2>&1 || skip_all "iptables does not work in a namespace here"
NODES="s0 s1 s2 s3 s4 p1 p2"
URI1=mtr://10.77.0.21:7400,10.77.0.22:7400
URI2=mtr://10.77.0.22:7400,10.77.0.21:7400

# How loss, duplication and delay are made: tc netem when this kernel has
# it (a probe), otherwise iptables (statistic, TEE) and mtrnfq (NFQUEUE).
NET=${MTR_FAULT_NET:-auto}
if [ "$NET" != iptables ]; then
	if ip netns exec "${NS}s4" tc qdisc add dev eth0 root netem delay 1ms 2>/dev/null; then
		ip netns exec "${NS}s4" tc qdisc del dev eth0 root 2>/dev/null
		NET=netem
	elif [ "$NET" = netem ]; then
		skip_all "MTR_FAULT_NET=netem but this kernel has no sch_netem"
	else
		NET=iptables
	fi
fi
echo "# seed $SEED (replay: MTR_FAULT_SEED=$SEED), faults by $NET${NFQ:+, mtrnfq}, soak $SOAK"
echo "# scenarios: $(echo $SCENARIOS)"

n=0
for s in $SCENARIOS; do n=$((n + 1)); done
# every scenario: fault, safety, liveness; some one or two more (below)
extra=0
for s in $SCENARIOS; do
	case $s in leader_stop | follower_part | leader_part | disk_full | five_two | leader_kill | proxy_kill) extra=$((extra + 1)) ;; esac
	case $s in disk_full) extra=$((extra + 1)) ;; esac
done
plan $((n * 3 + extra))

# ---- helpers ---------------------------------------------------------------
now_ms() { date +%s%3N; }
nsx() { _nx=$1; shift; ip netns exec "$NS$_nx" "$@"; }
# rand N: RND = the next number in 0..N-1 of the scenario's seeded sequence
# (a variable, not output: $(rand) would draw in a subshell, the same again)
rand() { _r=$(((_r * 1103515245 + 12345) % 2147483648)); RND=$(((_r / 65536) % $1)); }

servers_of() {
	_so=""
	_k=0
	while [ $_k -lt "$1" ]; do _so="$_so${_so:+,}10.77.0.$((11 + _k)):7501"; _k=$((_k + 1)); done
	echo "$_so"
}
# start_server I: start server I of the current cluster in its namespace
# (a restart logs to a new file, so that the old log stays)
start_server() {
	_ss_n=$(ls "$C"/s"$1"*.log 2>/dev/null | wc -l)
	spawn "$C/s$1.$_ss_n.log" ip netns exec "${NS}s$1" "$B/src/metronomed" -c "$C/s$1.conf" >/dev/null
	eval "spid_$1=$!"
}
start_proxy() {
	spawn "$C/p$1.log" ip netns exec "${NS}p$1" "$B/src/mtrproxy" -c "$C/p$1.conf" >/dev/null
	eval "ppid_$1=$!"
}
spid() { eval "echo \$spid_$1"; }
# srv_alive I: server I of the current cluster runs (lib.sh alive: not a zombie)
srv_alive() { alive "$(spid "$1")"; }
applied() { "$B/tests/tools/mtrdigest" --live "$C/d$1" 2>/dev/null | awk '{print $3}'; }
leader() { leader_of "$C"; }
# the instance every running server has applied, when they agree
agreed() {
	_ag=""
	_k=0
	while [ $_k -lt "$NSRV" ]; do
		_a=$(applied $_k)
		[ -n "$_a" ] || return 1
		[ -z "$_ag" ] || [ "$_ag" = "$_a" ] || return 1
		_ag=$_a
		_k=$((_k + 1))
	done
}
acks_since() { cat "$C"/l1.trace "$C"/l2.trace 2>/dev/null | awk -v t="$1" '$1 == "a" && $5 >= t' | wc -l; }
acks_at_least() { [ "$(acks_since 0)" -ge "$1" ]; }

# clear_faults: every rule, qdisc and mtrnfq of the scenario removed
clear_faults() {
	for _n in $NODES; do
		nsx $_n iptables -F 2>/dev/null
		nsx $_n iptables -t mangle -F 2>/dev/null
		[ $NET = netem ] && nsx $_n tc qdisc del dev eth0 root 2>/dev/null
	done
	for _p in $nfq_pids; do kill -TERM "$_p" 2>/dev/null; wait "$_p" 2>/dev/null; done
	nfq_pids=""
	true
}
at_exit clear_faults
cont_all() { for _k in 0 1 2 3 4; do _p=$(spid $_k); [ -n "$_p" ] && kill -CONT "$_p" 2>/dev/null; done; true; }
at_exit cont_all
mounts=""
at_exit 'for m in $mounts; do umount -l "$m" 2>/dev/null; done'

# udp_cut NODE: NODE sends and hears no UDP (its TCP, clients to a proxy, stays)
udp_cut() {
	nsx "$1" iptables -I INPUT -p udp -j DROP
	nsx "$1" iptables -I OUTPUT -p udp -j DROP
}
# matched NODE: packets the DROP/TEE/NFQUEUE rules of NODE matched
matched() {
	{
		nsx "$1" iptables -L -v -x -n
		nsx "$1" iptables -t mangle -L -v -x -n
	} 2>/dev/null | awk '$3 == "DROP" || $3 == "TEE" || $3 == "NFQUEUE" {n += $1} END {print n + 0}'
}
matched_all() { _m=0; for _n in $NODES; do _m=$((_m + $(matched $_n))); done; echo $_m; }
# on_all_nodes COMMAND...: the same fault in every server's and proxy's namespace
on_all_nodes() { for _n in $(cluster_nodes); do nsx $_n "$@"; done; }
cluster_nodes() { _k=0; while [ $_k -lt "$NSRV" ]; do printf 's%d ' $_k; _k=$((_k + 1)); done; echo p1 p2; }
# nfq_all ARGS...: mtrnfq in every node's namespace, their UDP queued to it
nfq_all() {
	for _n in $(cluster_nodes); do
		rand 1000000
		ip netns exec "$NS$_n" "$NFQ" --queue 0 --seed "$RND" "$@" >"$C/nfq.$_n.out" 2>&1 &
		nfq_pids="$nfq_pids $!"
		_pids="$_pids $!"
	done
	for _n in $(cluster_nodes); do
		wait_for 5 grep -qs ready "$C/nfq.$_n.out"
		nsx $_n iptables -A OUTPUT -p udp -j NFQUEUE --queue-num 0 --queue-bypass
	done
}
nfq_counts() { cat "$C"/nfq.*.out 2>/dev/null | awk '$1 == "packets" {p += $2; h += $4; f += $6} END {print p + 0, h + 0, f + 0}'; }

healed() { HEAL=$(now_ms); }

# ---- scenarios: each applies its fault, sets FAULT_OK / FAULT_MSG, calls
# healed when the fault is over; EXTRA holds "description|command" checks
sc_leader_kill() {
	# (loops count in _it: lib.sh's wait_for uses k and t)
	_it=0
	elected=0
	while [ $_it -lt $LOOPS ]; do
		L=$(leader)
		n_before=$(leader_changes "$C")
		kill -KILL "$(spid "$L")"
		wait_for 10 leaders_since "$n_before" && elected=$((elected + 1))
		rand 10
		sleep 0.$RND
		start_server "$L"
		sleep 1
		_it=$((_it + 1))
	done
	healed
	FAULT_OK=0
	[ $elected = $LOOPS ] && FAULT_OK=1
	FAULT_MSG="$LOOPS kill -9 of the leader, each restarted 0-1 s after a new one was elected ($elected were)"
	EXTRA="writes went on between the kills (\$during acked)|[ \$during -gt 0 ]"
}
leaders_since() { [ "$(leader_changes "$C")" -gt "$1" ]; }
sc_leader_stop() {
	L=$(leader)
	kill -STOP "$(spid "$L")"
	sleep $FAULT_S
	n_before=$(leader_changes "$C")
	L2=$(leader)
	kill -CONT "$(spid "$L")"
	healed
	FAULT_OK=0
	[ "$L2" != "$L" ] && FAULT_OK=1
	FAULT_MSG="leader $L stopped (SIGSTOP) for ${FAULT_S} s; server $L2 was elected meanwhile"
	sleep 5
	EXTRA="the old leader $L came back (SIGCONT) without a leadership change (\$(leader_changes \$C) vs $n_before)|[ \$(leader_changes \$C) = $n_before ]"
}
sc_follower_part() {
	L=$(leader)
	rand 2
	F=$(((L + 1 + RND) % NSRV))
	n_before=$(leader_changes "$C")
	udp_cut s$F
	sleep $FAULT_S
	m=$(matched s$F)
	nsx s$F iptables -F
	healed
	FAULT_OK=$([ "$m" -gt 0 ] && echo 1 || echo 0)
	FAULT_MSG="follower $F (leader $L) cut off for ${FAULT_S} s ($m datagrams dropped)"
	sleep 5
	EXTRA="no leadership change during or after the partition (\$(leader_changes \$C) vs $n_before)|[ \$(leader_changes \$C) = $n_before ]"
}
sc_leader_part() {
	L=$(leader)
	udp_cut s$L
	sleep $FAULT_S
	m=$(matched s$L)
	L2=$(leader)
	n_before=$(leader_changes "$C")
	nsx s$L iptables -F
	healed
	FAULT_OK=$([ "$m" -gt 0 ] && [ "$L2" != "$L" ] && echo 1 || echo 0)
	FAULT_MSG="leader $L cut off for ${FAULT_S} s ($m datagrams dropped), server $L2 elected"
	sleep 5
	EXTRA="the old leader $L came back without a leadership change (\$(leader_changes \$C) vs $n_before)|[ \$(leader_changes \$C) = $n_before ]"
}
sc_proxy_cut() {
	_it=0
	m=0
	while [ $_it -lt $CUTS ]; do
		udp_cut p1
		sleep 5
		m=$((m + $(matched p1)))
		nsx p1 iptables -F
		_it=$((_it + 1))
		[ $_it -lt $CUTS ] && sleep 3
	done
	healed
	FAULT_OK=$([ "$m" -gt 0 ] && echo 1 || echo 0)
	FAULT_MSG="proxy 1 cut off from every server for 5 s, $CUTS time(s) ($m datagrams dropped)"
}
# hold: keep the fault FAULT_S s, count what it matched (m: rule matches;
# nq_*: mtrnfq's packets, held, flipped), remove it, heal
hold() {
	sleep $FAULT_S
	m=$(matched_all)
	if [ $NET = netem ]; then
		# nodes whose netem qdisc is there and has sent packets
		for _n in $(cluster_nodes); do
			nsx $_n tc -s qdisc show dev eth0 | grep -A1 netem | grep -q 'Sent [1-9]' && m=$((m + 1))
		done
	fi
	clear_faults
	set -- $(nfq_counts)
	nq_pkts=$1 nq_held=$2 nq_flipped=$3
	healed
}
sc_loss20() {
	if [ $NET = netem ]; then
		on_all_nodes tc qdisc add dev eth0 root netem loss 20%
	else
		on_all_nodes iptables -A OUTPUT -p udp -m statistic --mode random --probability 0.2 -j DROP
	fi
	hold
	FAULT_OK=0
	[ "$m" -gt 0 ] && FAULT_OK=1
	FAULT_MSG="20 % of every node's UDP dropped for ${FAULT_S} s by $NET ($m dropped)"
}
sc_dup() {
	if [ $NET = netem ]; then
		on_all_nodes tc qdisc add dev eth0 root netem duplicate 30%
	else
		for _n in $(cluster_nodes); do
			for _d in $(cluster_nodes); do
				[ $_n = $_d ] && continue
				a=$(node_addr $_d)
				nsx $_n iptables -t mangle -A OUTPUT -p udp -d "$a" -m statistic --mode random --probability 0.3 \
					-j TEE --gateway "$a"
			done
		done
	fi
	hold
	FAULT_OK=0
	[ "$m" -gt 0 ] && FAULT_OK=1
	FAULT_MSG="30 % of every node's UDP duplicated for ${FAULT_S} s by $NET ($m copies)"
}
node_addr() { case $1 in s*) echo "10.77.0.$((11 + ${1#s}))" ;; p*) echo "10.77.0.$((20 + ${1#p}))" ;; esac; }
sc_delay_reorder() {
	how=none
	if [ $NET = netem ]; then
		on_all_nodes tc qdisc add dev eth0 root netem delay 10ms 10ms reorder 25%
		how="netem: 0-20 ms, 25 % reordered"
	elif [ -n "$NFQ" ]; then
		nfq_all --delay 2 --jitter 20
		how="mtrnfq: 2-22 ms"
	fi
	hold
	FAULT_OK=0
	{ [ "$nq_held" -gt 0 ] || [ "$m" -gt 0 ]; } && FAULT_OK=1
	FAULT_MSG="every node's UDP delayed and reordered for ${FAULT_S} s ($how; mtrnfq held $nq_held of $nq_pkts)"
}
sc_corrupt() {
	# mtrnfq first: netem's corruption dies at the kernel's UDP checksum
	how=none
	if [ -n "$NFQ" ]; then
		nfq_all --flip 0.05
		how="mtrnfq: checksum cleared"
	elif [ $NET = netem ]; then
		on_all_nodes tc qdisc add dev eth0 root netem corrupt 5%
		how="netem: the kernel drops them, bad checksum"
	fi
	hold
	FAULT_OK=0
	{ [ "$nq_flipped" -gt 0 ] || { [ -z "$NFQ" ] && [ "$m" -gt 0 ]; }; } && FAULT_OK=1
	FAULT_MSG="one bit flipped in 5 % of UDP datagrams for ${FAULT_S} s ($how; $nq_flipped of $nq_pkts flipped)"
}
power_loss() {
	k=0
	FAULT_OK=1
	while [ $k -lt "$NSRV" ]; do kill -KILL "$(spid $k)" || FAULT_OK=0; k=$((k + 1)); done
	sleep 1
	k=0
	while [ $k -lt "$NSRV" ]; do start_server $k; k=$((k + 1)); done
	healed
	FAULT_MSG="kill -9 of every server ($MODE mode), restarted after 1 s"
}
sc_power_disk() { power_loss; }
sc_power_mem() { power_loss; }
sc_disk_full() {
	L=$(leader)
	rand 2
	D=$(((L + 1 + RND) % NSRV))
	dd if=/dev/zero of="$C/d$D/fill" bs=64k 2>/dev/null
	# a full server drops the log it keeps for point-in-time restore
	# (doc/storage.md "Retention"): fill what that frees too
	sleep 1
	dd if=/dev/zero of="$C/d$D/fill2" bs=64k 2>/dev/null
	full=$(df -P "$C/d$D" | awk 'NR == 2 {print $4}')
	sleep $FAULT_S
	rm -f "$C/d$D/fill" "$C/d$D/fill2"
	healed
	FAULT_OK=$([ "$full" -lt 1024 ] && echo 1 || echo 0)
	FAULT_MSG="the data.dir of server $D (tmpfs ${DF_MB}M) full for ${FAULT_S} s (${full} KiB left), then freed"
	target=$(applied "$L")
	sleep 5
	resumed=0
	srv_alive $D && [ "$(applied $D)" -ge "${target:-0}" ] && resumed=1
	state=$(srv_alive $D && echo "running, at instance $(applied $D)" || echo "exited")
	EXTRA="the cluster went on committing while the disk of server $D was full (\$during acked)|[ \$during -gt 0 ]
server $D resumed on its own: 5 s after space was freed it is $state, the leader was at $target then|[ $resumed = 1 ]"
}
sc_proxy_kill() {
	FAULT_OK=0
	kill -KILL "$ppid_1" && FAULT_OK=1
	healed
	FAULT_MSG="proxy 1 killed (kill -9); its clients fail over to proxy 2"
	sleep 3
	start_proxy 1
	EXTRA="writes went on through proxy 2 (\$(acks_since \$HEAL) acked after the kill)|[ \$(acks_since \$HEAL) -gt 0 ]"
}
sc_five_two() {
	L=$(leader)
	rand 4
	F=$(((L + 1 + RND) % 5))
	FAULT_OK=0
	kill -KILL "$(spid "$L")" "$(spid "$F")" && FAULT_OK=1
	sleep $FAULT_S
	start_server "$L"
	start_server "$F"
	healed
	FAULT_MSG="2 of 5 servers killed (leader $L, follower $F) for ${FAULT_S} s, then restarted"
	EXTRA="the other three went on committing (\$during acked)|[ \$during -gt 0 ]"
}

# ---- one scenario ----------------------------------------------------------
run() {
	name=$1
	idx=$2
	C=$TMP/$name
	mkdir -p "$C"
	_r=$(((SEED + idx * 7919) % 2147483648))
	NSRV=3
	MODE=disk
	EXTRA=""
	nfq_pids=""
	[ $name = five_two ] && NSRV=5
	[ $name = power_mem ] && MODE=memory
	servers=$(servers_of $NSRV)
	k=0
	while [ $k -lt $NSRV ]; do
		if [ $name = disk_full ]; then
			# every data.dir a small tmpfs: the one of a follower fills
			DF_MB=256
			mkdir -p "$C/d$k"
			mount -t tmpfs -o size=${DF_MB}m tmpfs "$C/d$k" && mounts="$mounts $C/d$k"
		fi
		server_conf "$C" $k "$servers"
		echo "data.durability = $MODE" >>"$C/s$k.conf"
		[ -n "${MTR_FAULT_LOG:-}" ] && echo "log.level = $MTR_FAULT_LOG" >>"$C/s$k.conf"
		start_server $k
		k=$((k + 1))
	done
	for k in 1 2; do
		proxy_conf "$C" $k "$servers" 7400 10.77.0.2$k
		echo "proxy.bind = 10.77.0.2$k:7600" >>"$C/p$k.conf"
		# the proxies listen on the namespaces' private addresses, which
		# only the suite's client namespace reaches: no users needed
		echo "proxy.insecure = yes" >>"$C/p$k.conf"
		[ -n "${MTR_FAULT_LOG:-}" ] && echo "log.level = $MTR_FAULT_LOG" >>"$C/p$k.conf"
		start_proxy $k
	done
	wait_for 20 leader_in "$C"
	spawn "$C/l1.out" ip netns exec "${NS}c" "$B/tests/tools/mtrload" --uri "$URI1" --clients 3 --pipeline 4 --rows 100000000 \
		--first-id 1 --trace "$C/l1.trace" >/dev/null
	l1=$!
	spawn "$C/l2.out" ip netns exec "${NS}c" "$B/tests/tools/mtrload" --uri "$URI2" --clients 3 --pipeline 4 --rows 100000000 \
		--first-id 1000000001 --trace "$C/l2.trace" >/dev/null
	l2=$!
	spawn "$C/bank.out" ip netns exec "${NS}c" "$B/tests/tools/mtrbank" --uri "$URI1" --accounts 10 --writers 2 --readers 2 \
		--log "$C/bank.log" --trace "$C/bank.trace" --seed "$_r" >/dev/null
	bk=$!
	wait_for 20 acks_at_least 200
	wait_for 10 grep -q ready "$C/bank.out"
	sleep 2
	FAULT=$(now_ms)
	HEAL=$FAULT
	sc_$name
	# the rest of the liveness window
	left=$((HEAL + LIVE_MS + 500 - $(now_ms)))
	[ $left -gt 0 ] && sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"
	during=$(cat "$C"/l1.trace "$C"/l2.trace | awk -v f="$FAULT" -v h="$HEAL" '$1 == "a" && $5 > f + 1000 && $5 < h' | wc -l)
	for p in $l1 $l2 $bk; do stop_pid "$p" 15; done
	# servers that died are started again, so that every replica can be checked
	dead=""
	k=0
	while [ $k -lt $NSRV ]; do
		srv_alive $k || { dead="$dead $k"; start_server $k; }
		k=$((k + 1))
	done
	[ -n "$dead" ] && diag "$name: server(s)$dead had exited: restarted for the checks"
	wait_for 20 agreed
	for k in 1 2; do eval "stop_pid \$ppid_$k 10"; done
	k=0
	while [ $k -lt $NSRV ]; do stop_pid "$(spid $k)" 20; k=$((k + 1)); done
	clear_faults

	check "$name: fault: $FAULT_MSG" [ "$FAULT_OK" = 1 ]
	check_safety
	check_liveness
	if [ -n "$EXTRA" ]; then
		while IFS='|' read -r desc cmd; do
			eval "check \"$name: $desc\" $cmd"
		done <<EOF
$EXTRA
EOF
	fi
	for m in $mounts; do umount "$m" 2>/dev/null; done
	mounts=""
}

# ---- checkers ----------------------------------------------------------------
check_safety() {
	why=""
	dirs=""
	k=0
	while [ $k -lt $NSRV ]; do dirs="$dirs $C/d$k"; k=$((k + 1)); done
	# shellcheck disable=SC2086
	"$B/tests/tools/mtrdigest" $dirs >"$C/digests" 2>&1 || why="$why; mtrdigest failed"
	sed "s|$C/||; s/^/# $name: /" "$C/digests"
	[ "$(awk '{print $3, $5, $7}' "$C/digests" | sort -u | wc -l)" = 1 ] || why="$why; replicas differ"
	cat "$C"/l1.trace "$C"/l2.trace | awk '$1 == "a" {print $3}' | sort >"$C/acked"
	cat "$C"/l1.trace "$C"/l2.trace | awk '$1 == "s" {print $3}' | sort >"$C/sent"
	sort "$C/bank.log" 2>/dev/null | awk '{print $1}' | sort >"$C/bank.acked"
	awk '$1 == "s" && $2 <= 2 {print $3}' "$C/bank.trace" | sort >"$C/bank.sent"
	k=0
	while [ $k -lt $NSRV ]; do
		db=$C/d$k/replica.db
		sqlite3 -readonly "$db" "SELECT id FROM t" 2>/dev/null | sort >"$C/rows$k"
		miss=$(comm -23 "$C/acked" "$C/rows$k" | wc -l)
		extra=$(comm -13 "$C/sent" "$C/rows$k" | wc -l)
		[ "$miss" = 0 ] || why="$why; server $k lacks $miss acknowledged writes (e.g. $(comm -23 "$C/acked" "$C/rows$k" | head -3 | tr '\n' ' '))"
		[ "$extra" = 0 ] || why="$why; server $k has $extra rows never sent"
		sqlite3 -readonly "$db" "SELECT id FROM xfer" 2>/dev/null | sort >"$C/xfer$k"
		bmiss=$(comm -23 "$C/bank.acked" "$C/xfer$k" | wc -l)
		bextra=$(comm -13 "$C/bank.sent" "$C/xfer$k" | wc -l)
		[ "$bmiss" = 0 ] || why="$why; server $k lacks $bmiss acknowledged transfers"
		[ "$bextra" = 0 ] || why="$why; server $k has $bextra transfers never sent"
		bank=$(sqlite3 -readonly "$db" "SELECT (SELECT sum(bal) FROM acct), (SELECT count(*) FROM acct),
			(SELECT count(*) FROM acct a WHERE a.bal != 1000
				- coalesce((SELECT sum(amt) FROM xfer WHERE src = a.id), 0)
				+ coalesce((SELECT sum(amt) FROM xfer WHERE dst = a.id), 0))" 2>&1)
		[ "$bank" = "10000|10|0" ] || why="$why; server $k bank (total|accounts|balances off their transfers): $bank"
		k=$((k + 1))
	done
	bankline=$(grep '^transfers' "$C/bank.out")
	grep -q 'violations 0$' "$C/bank.out" || why="$why; mtrbank: ${bankline:-no summary}: $(grep VIOLATION "$C/bank.out" | head -2)"
	check "$name: safety: $(wc -l <"$C/acked") writes and $(wc -l <"$C/bank.acked") transfers acknowledged, all on every replica, nothing unsent, equal digests, bank consistent${why:+ - NO:${why#;}}" [ -z "$why" ]
	diag "$name: mtrload: $(cat "$C/l1.out" | tail -1) / $(cat "$C/l2.out" | tail -1); mtrbank: $bankline"
}

check_liveness() {
	# connections: file:client pairs that sent before the fault
	cat /dev/null >"$C/conns"
	for f in l1 l2 bank; do
		awk -v f="$FAULT" -v h="$HEAL" -v w=$LIVE_MS -v tag=$f '
			$1 == "s" && $4 < f { open[$2] = 1 }
			$1 == "a" && $4 >= h && $5 <= h + w { ok[$2] = 1 }
			END { for (c in open) print tag "." c, (c in ok) ? "ok" : "silent" }' "$C/$f.trace" >>"$C/conns"
	done
	nconn=$(wc -l <"$C/conns")
	silent=$(awk '$2 == "silent" {printf "%s ", $1}' "$C/conns")
	set -- $(cat "$C"/l1.trace "$C"/l2.trace | awk -v f="$FAULT" -v h="$HEAL" '
		$1 == "a" { t = $5; if (t >= f - 2000 && t < f) pre++
			for (k = 0; k <= 8; k++) { lo = h + k * 500; if (t >= lo && t < lo + 1000) w[k]++ } }
		END { best = 0; for (k = 0; k <= 8; k++) if (w[k] > best) best = w[k]; print int(pre / 2), best + 0 }')
	pre=$1 post=$2
	lwhy=""
	[ "$nconn" -ge 10 ] || lwhy="$lwhy; only $nconn connections were open before the fault (expected 10)"
	[ -z "$silent" ] || lwhy="$lwhy; no answer within 5 s of the heal on: $silent"
	[ "$pre" -gt 0 ] || lwhy="$lwhy; no writes before the fault"
	[ $((post * 2)) -ge "$pre" ] || lwhy="$lwhy; throughput $post/s at best within 5 s of the heal, $pre/s before"
	nok=$(awk '$2 == "ok"' "$C/conns" | wc -l)
	# how long the clients went without any answer: the first write
	# acknowledged at or after the heal, and the widest silence around it
	first=$(cat "$C"/l1.trace "$C"/l2.trace | awk -v h="$HEAL" '$1 == "a" && $5 >= h {print $5 - h}' | sort -n | head -1)
	gap=$(cat "$C"/l1.trace "$C"/l2.trace | awk -v f="$FAULT" '$1 == "a" && $5 >= f - 2000 {print $5}' | sort -n |
		awk 'NR > 1 && $1 - p > g {g = $1 - p} {p = $1} END {print g + 0}')
	diag "$name: first write acknowledged ${first:-never} ms after the heal; longest time without an acknowledgement ${gap} ms"
	check "$name: liveness: $nok of $nconn connections answered within 5 s of the heal, throughput $pre/s before, best 1 s within 5 s after $post/s${lwhy:+ - NO:${lwhy#;}}" [ -z "$lwhy" ]
	[ -z "$lwhy$why" ] || show_logs
}

show_logs() {
	for f in "$C"/s*.log "$C"/p*.log; do
		diag "$name: ${f#"$C"/} (warnings and errors, last 8):"
		grep -v ' INFO \| DEBUG ' "$f" | tail -8 | sed 's/^/#   /'
	done
	for f in "$C"/l1.out "$C"/l2.out "$C"/bank.out; do
		grep -v '^ready' "$f" | head -4 | sed "s|^|#   ${f#"$C"/}: |"
	done
}

for s in $SCENARIOS; do
	# its place in ALL: a scenario run alone draws what it drew in the full run
	idx=$(echo $ALL | tr ' ' '\n' | grep -n "^$s\$" | cut -d: -f1)
	t0=$(date +%s)
	run "$s" $idx
	diag "$s: $(($(date +%s) - t0)) s"
done
exit 0
