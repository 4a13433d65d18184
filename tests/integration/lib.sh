# lib.sh - helpers for integration suites (TAP).  Source it:
#   . "$MTR_SRCDIR/tests/integration/lib.sh"
# Every process started with spawn is killed (by pid, TERM then KILL after a
# timeout) when the script exits, whatever happens.
MTR_SRCDIR=${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MTR_BUILDDIR=${MTR_BUILDDIR:-$(pwd)}
_tap_n=0
_tap_fail=0
_pids=""
_cleanups=""

plan() { echo "1..$1"; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_fail=$((_tap_fail + 1)); echo "not ok $_tap_n - $*"; }
# check DESCRIPTION COMMAND...: ok if the command succeeds
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
diag() { echo "# $*"; }

# spawn LOGFILE COMMAND...: start in the background, remember the pid
spawn() { log=$1; shift; "$@" >"$log" 2>&1 & _pids="$_pids $!"; echo $!; }

# alive PID: the process exists and is not a zombie (PID 1 may not reap
# orphans here, and kill -0 succeeds on a zombie)
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^[ZX]'; }

# stop_pid PID [TIMEOUT_S]: TERM, wait up to TIMEOUT (default 10 s), then KILL
# (its variables are prefixed: callers loop with i, pid and t themselves)
stop_pid() {
	_sp_pid=$1; _sp_t=${2:-10}
	kill -TERM "$_sp_pid" 2>/dev/null || return 0
	_sp_i=0
	while alive "$_sp_pid" && [ $_sp_i -lt $((_sp_t * 10)) ]; do sleep 0.1; _sp_i=$((_sp_i + 1)); done
	kill -KILL "$_sp_pid" 2>/dev/null || true
	wait "$_sp_pid" 2>/dev/null || true
}

# port_block: the first port of a block of 20 (in 20000..31999, below the
# ephemeral range) that nothing listens on or sends from now: the block the
# pid picks, else the next free one, so that two suites (or a cluster left
# running by hand) do not meet on the same ports
port_block() {
	_pb_used=$(ss -Htuan 2>/dev/null | awk '{n = split($5, a, ":"); print a[n]}')
	_pb_i=0
	while [ $_pb_i -lt 600 ]; do
		_pb=$((20000 + (($$ + _pb_i * 7) % 600) * 20))
		if [ -z "$(echo "$_pb_used" | awk -v lo=$_pb -v hi=$((_pb + 19)) '$1 >= lo && $1 <= hi' | head -1)" ]; then
			echo $_pb
			return 0
		fi
		_pb_i=$((_pb_i + 1))
	done
	echo $((20000 + ($$ % 600) * 20))
}

# MTR_KEY: the cluster key of this test run (daemons refuse to start without
# one): made by the daemon's own --gen-key, or from /dev/urandom before the
# daemons are built
MTR_KEY=$("$MTR_BUILDDIR/src/metronomed" --gen-key 2>/dev/null ||
	od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

# server_conf DIR I SERVERS: DIR/sI.conf for server I of the cluster SERVERS
# (comma-separated host:port), its data in DIR/dI, key $MTR_KEY, and
# paxos.pipeline = $MTR_PIPELINE when that is set
server_conf() {
	printf 'cluster.servers = %s\ncluster.key = %s\nserver.id = %d\ndata.dir = %s/d%d\n' "$3" "$MTR_KEY" "$2" \
		"$1" "$2" >"$1/s$2.conf"
	# MTR_PIPELINE: paxos.pipeline of the servers (unset: the default)
	[ -z "${MTR_PIPELINE:-}" ] || echo "paxos.pipeline = $MTR_PIPELINE" >>"$1/s$2.conf"
}
# proxy_conf DIR K SERVERS PORT [HOST]: DIR/pK.conf for proxy K (id 255 + K)
# of the cluster SERVERS, listening for clients on HOST:PORT (HOST default
# 127.0.0.1), key $MTR_KEY
proxy_conf() {
	printf 'cluster.servers = %s\ncluster.key = %s\nproxy.listen = %s:%d\nproxy.id = %d\n' "$3" "$MTR_KEY" \
		"${5:-127.0.0.1}" "$4" $((255 + $2)) >"$1/p$2.conf"
}

# local_servers BASE N: the cluster.servers of N servers on loopback ports
# BASE, BASE+1, ...
local_servers() {
	_ls=""
	_ls_i=0
	while [ $_ls_i -lt "$2" ]; do
		_ls="$_ls${_ls:+,}127.0.0.1:$(($1 + _ls_i))"
		_ls_i=$((_ls_i + 1))
	done
	echo "$_ls"
}

# start_servers DIR N SERVERS: write DIR/sI.conf and start metronomed I
# (log DIR/sI.log) for I in 0..N-1; their pids are in $spids
start_servers() {
	spids=""
	_ss_i=0
	while [ $_ss_i -lt "$2" ]; do
		server_conf "$1" $_ss_i "$3"
		spawn "$1/s$_ss_i.log" "$MTR_BUILDDIR/src/metronomed" -c "$1/s$_ss_i.conf" >/dev/null
		spids="$spids $!"
		_ss_i=$((_ss_i + 1))
	done
}

# start_proxies DIR N SERVERS BASE: proxies 1..N of those servers in DIR,
# proxy k on port BASE+10+k (its pid in ppid_k, its log DIR/pk.log)
start_proxies() {
	_pr_k=1
	while [ $_pr_k -le "$2" ]; do
		proxy_conf "$1" $_pr_k "$3" $(($4 + 10 + _pr_k))
		spawn "$1/p$_pr_k.log" "$MTR_BUILDDIR/src/mtrproxy" -c "$1/p$_pr_k.conf" >/dev/null
		eval "ppid_$_pr_k=$!"
		_pr_k=$((_pr_k + 1))
	done
}

# stop_servers_last SPIDS: stop every spawned process, the servers (SPIDS)
# last, 2 s after the others (their last results are applied)
stop_servers_last() {
	for _sl in $_pids; do
		case " $1 " in *" $_sl "*) ;; *) stop_pid "$_sl" 5 ;; esac
	done
	sleep 2
	for _sl in $1; do stop_pid "$_sl" 20; done
}

# replicas_agree DIR ROWS: the stopped replicas DIR/d0..d2 have the same
# instance, digest and row count, and that count is ROWS (the digests are
# printed as TAP comments)
replicas_agree() {
	_ra=$("$MTR_BUILDDIR/tests/tools/mtrdigest" "$1/d0" "$1/d1" "$1/d2")
	echo "$_ra" | sed "s|$1/||; s/^/# /"
	equal_digests "$_ra" && [ "$(echo "$_ra" | head -1 | awk '{print $7}')" = "$2" ]
}

# leader_in DIR: a server whose log is in DIR logged "became leader"
leader_in() { grep -qh "became leader" "$1"/s*.log 2>/dev/null; }
# leader_of DIR: the id of the server that logged the latest "became leader"
# in DIR/s*.log (log lines begin with their time)
leader_of() {
	grep -h "became leader" "$1"/s*.log 2>/dev/null | sort | tail -1 | sed 's/.*\[server \([0-9]*\)\].*/\1/'
}
# leader_changes DIR: how many "became leader" lines DIR/s*.log hold
leader_changes() { cat "$1"/s*.log 2>/dev/null | grep -c "became leader"; }

# need_built PROGRAM...: skip the whole suite unless every program (a path
# under the build tree) is built
need_built() { for _nb in "$@"; do [ -x "$MTR_BUILDDIR/$_nb" ] || skip_all "$_nb is not built"; done; }

# wait_for SECONDS COMMAND...: poll every 0.2 s until the command succeeds
wait_for() {
	t=$1; shift
	k=0
	while ! "$@" && [ $k -lt $((t * 5)) ]; do sleep 0.2; k=$((k + 1)); done
	"$@"
}

# replica_digests DIR: stop every process spawned but the servers ($spids),
# then the servers, and print mtrdigest's line for each replica DIR/dI
# (instance, digest, rows); equal_digests LINES: those lines all agree
replica_digests() {
	stop_servers_last "$spids"
	"$MTR_BUILDDIR/tests/tools/mtrdigest" "$1"/d[0-9]*
}
equal_digests() { [ "$(echo "$1" | awk '{print $3, $5, $7}' | sort -u | wc -l)" = 1 ]; }

# acked_check DATADIR ACKED...: "acked|acked-missing|extra|duplicates" of
# table t(id) of the stopped replica DATADIR against the ids in the files
# ACKED (one per line): all written exactly once and nothing else is
# "N|0|0|0"
acked_check() {
	_ac_d=$1; shift
	{ echo "CREATE TEMP TABLE a(id INTEGER PRIMARY KEY);"; echo "BEGIN;"
	  cat "$@" | sed 's/.*/INSERT OR IGNORE INTO a VALUES(&);/'; echo "COMMIT;"
	  echo "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM a WHERE id NOT IN (SELECT id FROM t)),"
	  echo "  (SELECT count(*) FROM t WHERE id NOT IN (SELECT id FROM a)), (SELECT count(*) - count(DISTINCT id) FROM t);"
	} | sqlite3 "file:$_ac_d/replica.db?mode=ro" 2>&1
}

# at_exit COMMAND: run at exit (after processes are stopped)
at_exit() { _cleanups="$_cleanups
$*"; }

_lib_exit() {
	for p in $_pids; do stop_pid "$p" 5; done
	eval "$_cleanups"
}
trap _lib_exit EXIT
trap 'exit 1' INT TERM

# need_built PATH...: skip the suite unless each program (a path in the
# build directory) is built
need_built() {
	for _nb in "$@"; do [ -x "$MTR_BUILDDIR/$_nb" ] || skip_all "$_nb is not built"; done
}

# netns_bridge PREFIX NAME...: network namespaces for a test topology: PREFIX
# holds bridge br0 (multicast snooping off), and each PREFIX<NAME> has lo up
# and eth0, one end of a veth pair whose other end is a port of br0.  No
# addresses (the caller gives them); every namespace is deleted at exit.
# Returns 1 when namespaces cannot be made here.
#
# transport_lines KIND DEV: the transport.* lines of a daemon's config on
# KIND (udp or dpdk); dpdk: the af_packet port net_af_packetDEV on eth0 with
# EAL arguments for these machines (no hugepages, no shared config, no PCI)
DPDK_EAL="--no-huge --no-shconf --no-telemetry --no-pci -m 128 --log-level=*:warning"
transport_lines() {
	echo "transport.kind = $1"
	if [ "$1" = dpdk ]; then
		echo "transport.dpdk_port = net_af_packet$2,iface=eth0,framecnt=4096"
		echo "transport.dpdk_eal = $DPDK_EAL"
	fi
}
netns_bridge() {
	_nb_pfx=$1; shift
	ip netns add "$_nb_pfx" 2>/dev/null || return 1
	at_exit "ip netns del '$_nb_pfx' 2>/dev/null"
	ip -n "$_nb_pfx" link add br0 type bridge mcast_snooping 0 || return 1
	ip -n "$_nb_pfx" link set br0 up
	_nb_i=0
	for _nb in "$@"; do
		_nb_i=$((_nb_i + 1))
		ip netns add "$_nb_pfx$_nb" || return 1
		at_exit "ip netns del '$_nb_pfx$_nb' 2>/dev/null"
		ip -n "$_nb_pfx$_nb" link set lo up
		ip -n "$_nb_pfx$_nb" link add eth0 type veth peer name p$_nb_i netns "$_nb_pfx" || return 1
		ip -n "$_nb_pfx" link set p$_nb_i master br0
		ip -n "$_nb_pfx" link set p$_nb_i up
		ip -n "$_nb_pfx$_nb" link set eth0 up
	done
}

need_root() { [ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces); CI runs as root"; }

# same_digests DATADIR...: print each replica's instance, digest and row
# count (mtrdigest, as TAP comments) and succeed when they are all equal
same_digests() {
	_sd=$("$MTR_BUILDDIR/tests/tools/mtrdigest" "$@" 2>&1)
	echo "$_sd" | sed "s|${TMP:-/nonexistent}/||; s/^/# /"
	equal_digests "$_sd"
}
