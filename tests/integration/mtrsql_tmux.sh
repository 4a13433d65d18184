#!/bin/sh
# mtrsql_tmux.sh - mtrsql at a real terminal (tmux send-keys / capture-pane):
# a multi-line CREATE TABLE and INSERTs, tab completion of a table name,
# .mode box and a SELECT, .cluster, .quit; checks what is on the screen.
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
		Enter | Tab) tmux -L "$SOCK" send-keys -t t "$a" ;;
		*\;) tmux -L "$SOCK" send-keys -t t -l "${a%;}\\;" ;;
		*) tmux -L "$SOCK" send-keys -t t -l "$a" ;;
		esac
		sleep 0.1
	done
}

plan 7
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
keys '.quit' Enter
k=0
while pgrep -f "$LOCAL/server-0.conf" >/dev/null && [ $k -lt 200 ]; do sleep 0.1; k=$((k + 1)); done
gone=1; pgrep -f "$LOCAL/server-0.conf" >/dev/null && gone=0
check ".quit stops the local cluster the shell started" [ $gone = 1 ]
if [ $_tap_fail -gt 0 ]; then diag "screen:"; screen | sed "s/^/#   /"; pgrep -fa "$LOCAL" | sed "s/^/#   /"; fi
exit 0
