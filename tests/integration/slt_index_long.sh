#!/bin/sh
# slt_index_long.sh - the long check of issue 18: every file of the
# sqllogictest corpus's test/index directory (gregrahn/sqllogictest, a few
# hundred files, about 2.5 million records) through ONE long-lived local
# 3-server cluster, so that every file starts with mtrslt's reset (DROP of
# the previous file's indexed tables) on replicas that have applied
# everything before it.  Not in the default TESTS: it takes tens of minutes.
#
#   MTR_SLT_INDEX=/path/to/sqllogictest/test/index \
#       sh ../tests/integration/slt_index_long.sh        (from a build dir)
#
# Checks: every file 0 failed; no server log line at WARN or ERROR (an I/O
# error in apply, a forced restart, a fatal stop); every replica ends at the
# same instance with the same logical digest (mtrdigest).  Prints the
# per-file lines, the totals and the time (doc/mtrslt.md keeps the figures).
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

IDX=${MTR_SLT_INDEX:-}
B=$MTR_BUILDDIR
[ -n "$IDX" ] || skip_all "set MTR_SLT_INDEX to the corpus's test/index directory"
[ -d "$IDX" ] || skip_all "$IDX is not a directory"
for p in tests/slt/mtrslt src/metronomed src/mtrproxy tests/tools/mtrdigest; do
	[ -x "$B/$p" ] || skip_all "$p is not built"
done

TMP=$(mktemp -d)
[ -n "${MTR_KEEP:-}" ] || at_exit 'rm -rf "$TMP"'
export MTR_LOCAL_DIR="$TMP/local" MTR_BINDIR="$B/src"
export MTR_LOCAL_PORT=$(($(port_block) + 16))
find "$IDX" -name '*.test' | sort >"$TMP/files"
nfiles=$(wc -l <"$TMP/files")
[ "$nfiles" -gt 0 ] || skip_all "no .test files below $IDX"

plan 4
diag "$nfiles files below $IDX, one cluster in $MTR_LOCAL_DIR (ports from $MTR_LOCAL_PORT)"
t0=$(date +%s)
# shellcheck disable=SC2046
"$B/tests/slt/mtrslt" -q --local-dir "$MTR_LOCAL_DIR" $(cat "$TMP/files") >"$TMP/out" 2>"$TMP/err"
rc=$?
t1=$(date +%s)
sed 's/^/# /' "$TMP/out"
grep -v ' INFO ' "$TMP/err" | sed 's/^/#   /' | head -20
total=$(tail -1 "$TMP/out")
diag "total: $total; $nfiles files in $((t1 - t0)) s (mtrslt exit $rc)"
check "mtrslt ran every file ($(grep -c '^[^ ]*: [0-9]* passed, ' "$TMP/out") file lines)" \
	[ "$(grep -c '^[^ ]*: [0-9]* passed, ' "$TMP/out")" = "$nfiles" ]
bad=$(grep '^[^ ]*: [0-9]* passed, ' "$TMP/out" | grep -vc ' 0 failed')
check "every file: 0 failed ($bad files with failures)" [ "$bad" = 0 -a "$rc" = 0 ]
warn=$(cat "$MTR_LOCAL_DIR"/server-*.log | grep -c ' WARN \| ERROR ')
cat "$MTR_LOCAL_DIR"/server-*.log | grep ' WARN \| ERROR ' | head -10 | sed 's/^/#   /'
check "no server logged a warning or an error ($warn lines)" [ "$warn" = 0 ]
# mtrslt stopped its cluster: compare the replicas
digests=$("$B/tests/tools/mtrdigest" "$MTR_LOCAL_DIR"/server-0 "$MTR_LOCAL_DIR"/server-1 "$MTR_LOCAL_DIR"/server-2 2>&1)
echo "$digests" | sed "s|$MTR_LOCAL_DIR/||; s/^/# /"
nd=$(echo "$digests" | awk '{print $3, $5}' | sort -u | wc -l)
check "every replica at the same instance with the same digest" [ "$nd" = 1 ]
exit 0
