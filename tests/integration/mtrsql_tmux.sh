#!/bin/sh
# mtrsql_tmux.sh - mtrsql at a real terminal (tmux send-keys / capture-pane):
# a multi-line CREATE TABLE and INSERTs, tab completion of a table name,
# .mode box and a SELECT, .cluster, Ctrl-C at the prompt and during a long
# read (which mtr_interrupt stops on the servers: mtr_stats shows no read
# running afterwards), history written as it is typed, .quit; then closing the pane and
# a double Ctrl-C, each stopping the cluster the shell started; checks what
# is on the screen and which processes are left.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

M=$MTR_BUILDDIR/shell/mtrsql
[ -x "$M" ] || skip_all "mtrsql is not built"
command -v tmux >/dev/null 2>&1 || skip_all "no tmux (package tmux)"
TMP=$(mktemp -d)
SOCK=mtr$$
LOCAL="$TMP/local"
PORT=$(($(port_block) + 14))
cleanup() {
	tmux -L "$SOCK" kill-server 2>/dev/null
	for f in "$LOCAL"/*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" 10; done
	rm -rf "$TMP"
}
at_exit cleanup

screen() { tmux -L "$SOCK" capture-pane -p -t t; }
# wait_screen SECONDS PATTERN: until the pane shows PATTERN (grep -E)
wait_screen() {
	k=0
	while ! screen | grep -qE "$2" && [ $k -lt $(($1 * 10)) ]; do sleep 0.1; k=$((k + 1)); done
	screen | grep -qE "$2"
}
# keys ARG...: Enter and Tab are keys, anything else literal text (tmux takes
# an argument ending in ';' as a command separator: escape it)
keys() {
	for a in "$@"; do
		case $a in
		Enter | Tab | C-c) tmux -L "$SOCK" send-keys -t t "$a" ;;
		*\;) tmux -L "$SOCK" send-keys -t t -l "${a%;}\\;" ;;
		*) tmux -L "$SOCK" send-keys -t t -l "$a" ;;
		esac
		sleep 0.1
	done
}

# cluster_gone SECONDS: until no process of the cluster is left
cluster_gone() {
	k=0
	while pgrep -f "$LOCAL/(server-[0-9]|proxy).conf" >/dev/null && [ $k -lt $(($1 * 10)) ]; do sleep 0.1; k=$((k + 1)); done
	! pgrep -f "$LOCAL/(server-[0-9]|proxy).conf" >/dev/null
}
# start_shell: a new pane running mtrsql (then EXIT=status), once the
# cluster it starts answers
start_shell() {
	tmux -L "$SOCK" kill-server 2>/dev/null
	tmux -L "$SOCK" new-session -d -s t -x 150 -y 45 \
		"env MTR_LOCAL_DIR='$LOCAL' MTR_LOCAL_PORT=$PORT MTR_BINDIR='$MTR_BUILDDIR/src' MTR_HISTORY='$TMP/hist' '$M'; echo EXIT=\$?; sleep 30"
	wait_screen 40 '^mtrsql>'
}

plan 15
tmux -L "$SOCK" new-session -d -s t -x 150 -y 45 \
	"env MTR_LOCAL_DIR='$LOCAL' MTR_LOCAL_PORT=$PORT MTR_BINDIR='$MTR_BUILDDIR/src' MTR_HISTORY='$TMP/hist' '$M'; sleep 30"
check "mtrsql starts the local cluster and shows its prompt" wait_screen 40 '^mtrsql>'

keys 'CREATE TABLE inventory(' Enter '  id INTEGER PRIMARY KEY,' Enter '  item TEXT);' Enter
keys "INSERT INTO inventory VALUES(1, 'bolt'),"  Enter "  (2, 'nut');" Enter
check "a multi-line statement shows the continuation prompt" wait_screen 10 '^   \.\.\.>'
# tab completion of the table name, then finish the query
keys 'SELECT item FROM inven' Tab
check "Tab completes the table name" wait_screen 10 'SELECT item FROM inventory'
keys 'ORDER BY id;' Enter
check "the SELECT prints the inserted rows" wait_screen 10 '^nut$'
keys '.mode box' Enter 'SELECT * FROM inventory;' Enter
check ".mode box draws the result" wait_screen 10 '│  2 │ nut  │'
keys '.cluster' Enter
check ".cluster lists the members with their roles" wait_screen 10 "│  2 │ 127\.0\.0\.1:$((PORT + 3)) │ (leader|follower)"
keys 'clear' Enter
sleep 0.3
tmux -L "$SOCK" send-keys -t t C-l
keys "SELECT 'never' ||" Enter "  'run'" C-c
sleep 0.3
keys ".print after-ctrl-c" Enter
r=0; wait_screen 10 '^after-ctrl-c$' && screen | grep -q "'run'\^C$" && ! screen | grep -q '^neverrun$' && r=1
check "Ctrl-C at the prompt clears the statement being typed and keeps the shell" [ $r = 1 ]
keys 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000000) SELECT count(*) FROM c;' Enter
sleep 1.5
keys C-c
check "Ctrl-C during a long read stops the wait: 'interrupted'" wait_screen 5 '^Error: interrupted$'
keys ".print still here" Enter
check "... and the shell goes on" wait_screen 10 '^still here$'
# mtr_interrupt stopped the read on the server: the reader gauges of every
# server (published each second) show no read running, and one was cancelled
sleep 1.5
keys "SELECT 'running=' || sum(value) FROM mtr_stats WHERE name = 'reads.running' AND process LIKE 'server %';" Enter
check "... and the read no longer runs on the servers (reads.running is 0)" wait_screen 10 'running=0( |$)'
keys "SELECT 'cancelled=' || (sum(value) > 0) FROM mtr_stats WHERE name = 'reads.cancelled';" Enter
check "... the server counted it cancelled (reads.cancelled)" wait_screen 10 'cancelled=1( |$)'
r=0; grep -q '^\.print still here$' "$TMP/hist" && grep -q '^CREATE TABLE inventory($' "$TMP/hist" && r=1
check "the history file holds the lines typed so far, before the shell exits" [ $r = 1 ]
keys '.quit' Enter
check ".quit stops the local cluster the shell started" cluster_gone 40

start_shell
tmux -L "$SOCK" kill-pane -t t
check "closing the pane (SIGHUP) stops the cluster the shell started" cluster_gone 20
start_shell
wait_screen 20 '^mtrsql>' # the prompt: the shell is reading
tmux -L "$SOCK" send-keys -t t C-c
# two SIGINTs that arrive before the first is handled are one signal: the
# second comes 0.3 s later, still within the second
sleep 0.3
tmux -L "$SOCK" send-keys -t t C-c
r=0; wait_screen 20 '^EXIT=130$' && cluster_gone 20 && r=1
check "two Ctrl-C within a second end the shell and stop its cluster" [ $r = 1 ]
if [ $_tap_fail -gt 0 ]; then diag "screen:"; screen | sed "s/^/#   /"; pgrep -fa "$LOCAL" | sed "s/^/#   /"; fi
exit 0
