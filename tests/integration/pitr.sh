#!/bin/sh
# pitr.sh - point-in-time restore (doc/operations.md "Point-in-time
# restore"): a 3-server cluster (small item segments, so that the log rolls
# and compacts; server 2 keeps no log: server.log_retain_bytes = 0) takes
# rows, a .backup, more rows, then a table is dropped by mistake and more
# writes follow.  From the backup and server 0's retained log:
#   * --until INSTANCE (the last instance before the drop) and --until TIME
#     (a time between the last write and the drop) give a file with exactly
#     the rows acknowledged before the drop, and the user digest a replica
#     had at that instance (mtrdigest);
#   * --until an instance after the drop shows the drop and the later rows;
#   * the same after server 0 restarted (the retained log is recovered);
#   * metronomed -c ... --init-from BACKUP --replay-from ... makes a new
#     replica of that content;
#   * errors: a target before the backup, a target past the end of the log,
#     a bad target, and server 2's log (compacted away) that does not reach
#     back to the backup.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy tests/tools/mtrdigest shell/mtrsql
command -v sqlite3 >/dev/null 2>&1 || skip_all "no sqlite3 command (package sqlite3)"
TMP=$(mktemp -d)
at_exit '[ -n "${MTR_KEEP:-}" ] && echo "# kept $TMP" || rm -rf "$TMP"'
BASE=$(port_block)
M=$B/shell/mtrsql
D=$TMP
MD=$B/src/metronomed

plan 13

SERVERS=$(local_servers $BASE 3)
for i in 0 1 2; do
	server_conf "$D" $i "$SERVERS"
	echo 'data.segment_size = 64K' >>"$D/s$i.conf"
done
echo 'server.log_retain_bytes = 0' >>"$D/s2.conf"
for i in 0 1 2; do
	spawn "$D/s$i.log" "$MD" -c "$D/s$i.conf" >/dev/null
	spids="$spids $!"
done
start_proxies "$D" 1 "$SERVERS" "$BASE"
URI="mtr://127.0.0.1:$((BASE + 11))"
q() { "$M" "$URI" -c "$1" 2>&1; }
wait_for 30 leader_in "$D" >/dev/null
wait_for 30 sh -c "'$M' '$URI' -c 'SELECT 1' >/dev/null 2>&1"

# write K N: rows K..N, one write (one instance or so) each, 3000 bytes of
# SQL per row so that the 64 KiB segments roll; prints the ids acknowledged
PAD=$(head -c 3000 /dev/zero | tr '\0' a)
write() {
	_k=$1
	while [ "$_k" -le "$2" ]; do
		q "INSERT INTO t VALUES($_k, '$PAD', randomblob(8))" >/dev/null && echo "$_k"
		_k=$((_k + 1))
	done
}
user_digest() { "$B/tests/tools/mtrdigest" --user "$1" | awk '{print $3}'; }
live_instance() { "$B/tests/tools/mtrdigest" --live "$1" | awk '{print $3}'; }
# rows FILE: the ids of t in FILE, comma-separated
rows() { sqlite3 "$1" "SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY id)" 2>&1; }
# settled DIR: DIR's replica applied what the cluster has and stays there
settled() {
	_a=$(live_instance "$1"); sleep 1
	[ -n "$_a" ] && [ "$_a" = "$(live_instance "$1")" ]
}

q "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, r BLOB)" >/dev/null
acked=$(write 1 40)
"$M" "$URI" -c ".backup $D/backup.db" >"$D/backup.out" 2>&1
BI=$(sqlite3 "$D/backup.db" "SELECT value FROM mtr_meta WHERE key = 'backup_instance'")
acked="$acked $(write 41 100)"
wait_for 20 settled "$D/d0"
T1=$(live_instance "$D/d0")
DIG1=$(user_digest "$D/d0")
TIME1=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 1.2
q "DROP TABLE t" >/dev/null
q "CREATE TABLE later(x)" >/dev/null
q "INSERT INTO later VALUES(1)" >/dev/null
wait_for 20 settled "$D/d0"
T2=$(live_instance "$D/d0")
want=$(echo $acked | tr ' ' ',')
diag "backup at instance $BI; last instance before the drop $T1 ($TIME1, user digest $DIG1); after: $T2"
"$MD" --pitr-list "$D/d0" | sed 's/^/# d0: /'

# ---- restore to the instance before the drop ----
"$MD" --init-from "$D/backup.db" --replay-from "$D/d0" --until "$T1" --out "$D/r1.db" >"$D/r1.out" 2>&1
rc=$?
sed 's/^/# /' "$D/r1.out"
check "--until $T1 (the instance before the drop): exit $rc" [ $rc = 0 ]
check "its rows are exactly the 100 acknowledged before the drop" [ "$(rows "$D/r1.db")" = "$want" ]
check "its user digest is a replica's at instance $T1 ($DIG1)" [ "$(user_digest "$D/r1.db")" = "$DIG1" ]
ok_integrity() { [ "$(sqlite3 "$1" 'PRAGMA integrity_check')" = ok ]; }
check "the file opens in sqlite3, integrity_check ok, at instance $T1 in mtr_meta" \
	ok_integrity "$D/r1.db" && [ "$(sqlite3 "$D/r1.db" "SELECT value FROM mtr_meta WHERE key = 'applied'")" = "$T1" ]

# ---- restore to a time ----
"$MD" --init-from "$D/backup.db" --replay-from "$D/d0" --until "$TIME1" --out "$D/r2.db" >"$D/r2.out" 2>&1
rc=$?
sed 's/^/# /' "$D/r2.out"
check "--until $TIME1 (between the last write and the drop): exit $rc, the same rows and digest" \
	[ $rc = 0 -a "$(rows "$D/r2.db")" = "$want" -a "$(user_digest "$D/r2.db")" = "$DIG1" ]

# ---- past the drop ----
"$MD" --init-from "$D/backup.db" --replay-from "$D/d0" --until "$T2" --out "$D/r3.db" >"$D/r3.out" 2>&1
rc=$?
after() { [ "$(sqlite3 "$D/r3.db" "SELECT count(*) FROM later; SELECT count(*) FROM sqlite_schema WHERE name = 't'")" = "1
0" ]; }
check "--until $T2 (after the drop): exit $rc, t is gone and the later rows are there, digest of d0" \
	[ $rc = 0 ] && after && [ "$(user_digest "$D/r3.db")" = "$(user_digest "$D/d0")" ]

# ---- errors ----
"$MD" --init-from "$D/backup.db" --replay-from "$D/d0" --until $((BI - 1)) --out "$D/e1.db" >"$D/e1.out" 2>&1
rc=$?
sed 's/^/# /' "$D/e1.out"
check "a target before the backup: exit $rc, says so, no file" \
	[ $rc != 0 ] && grep -q "before the backup's instance $BI" "$D/e1.out" && [ ! -e "$D/e1.db" ]
"$MD" --init-from "$D/backup.db" --replay-from "$D/d0" --until 99999999 --out "$D/e2.db" >"$D/e2.out" 2>&1
rc=$?
sed 's/^/# /' "$D/e2.out"
check "a target past the end of the log: exit $rc, says where the log ends" \
	[ $rc != 0 ] && grep -q "instance 99999999 is past it" "$D/e2.out" && [ ! -e "$D/e2.db" ]
"$MD" --init-from "$D/backup.db" --replay-from "$D/d0" --until yesterday --out "$D/e3.db" >"$D/e3.out" 2>&1
rc=$?
check "a target that is neither an instance nor a time: exit $rc, says what to give" \
	[ $rc != 0 ] && grep -q "give an instance" "$D/e3.out"
"$MD" --pitr-list "$D/d2" | sed 's/^/# d2: /'
"$MD" --init-from "$D/backup.db" --replay-from "$D/d2" --until "$T1" --out "$D/e4.db" >"$D/e4.out" 2>&1
rc=$?
sed 's/^/# /' "$D/e4.out"
check "server 2 keeps no log (server.log_retain_bytes = 0): its log does not reach back to the backup; exit $rc, says so" \
	[ $rc != 0 ] && grep -q "does not reach back to the backup's instance $BI" "$D/e4.out" && [ ! -e "$D/e4.db" ]

# ---- the retained log survives a restart ----
spid0=$(echo $spids | awk '{print $1}')
stop_pid "$spid0" 20
spawn "$D/s0.log.2" "$MD" -c "$D/s0.conf" >/dev/null
spids="$! $(echo $spids | cut -d' ' -f2-)"
wait_for 30 grep -q "recovered" "$D/s0.log.2"
"$MD" --init-from "$D/backup.db" --replay-from "$D/d0" --until "$T1" --out "$D/r4.db" >"$D/r4.out" 2>&1
rc=$?
check "after a restart of server 0, its log still restores instance $T1: exit $rc, the same digest" \
	[ $rc = 0 -a "$(user_digest "$D/r4.db")" = "$DIG1" ]

# ---- a new replica made of the restore ----
mkdir -p "$D/new"
server_conf "$D/new" 0 "$(local_servers $((BASE + 5)) 3)"
spawn "$D/new/s0.log" "$MD" -c "$D/new/s0.conf" --init-from "$D/backup.db" --replay-from "$D/d0" --until "$T1" \
	>/dev/null
npid=$!
wait_for 30 grep -q "replica created from" "$D/new/s0.log"
stop_pid $npid 20
check "metronomed -c CONF --init-from BACKUP --replay-from d0 --until $T1: a new replica with that content" \
	[ "$(user_digest "$D/new/d0")" = "$DIG1" -a ! -e "$D/new/d0/pitr-restore.db" ]

# ---- the cluster itself is unharmed ----
stop_servers_last "$spids"
retained=$(cat "$D"/d0/items/*.seg | wc -c)
diag "server 0 keeps $retained bytes of item log"
check "the three replicas agree at the end" same_digests "$D/d0" "$D/d1" "$D/d2"
