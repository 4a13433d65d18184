#!/bin/sh
# slt_cluster.sh - the sqllogictest corpus (../shared/slt, or $MTR_SLT_DIR;
# an optional extra: skipped without it, sql_diff.sh is the default SQL
# conformance check) through the
# client library against a real 3-server cluster (the local cluster, in a
# temporary directory), compared record by record with plain SQLite
# (doc/mtrslt.md).  Every record SQLite passes must pass through Metronome,
# CREATE TEMP VIEW included (a session's TEMP definitions, doc/client.md).
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

SLT=${MTR_SLT_DIR:-$MTR_SRCDIR/../shared/slt}
R=$MTR_BUILDDIR/tests/slt/mtrslt
[ -x "$R" ] || skip_all "mtrslt is not built"
[ -x "$MTR_BUILDDIR/src/metronomed" ] || skip_all "metronomed is not built"
ls "$SLT"/*.test >/dev/null 2>&1 ||
	skip_all "no sqllogictest corpus at $SLT: an optional extra (set MTR_SLT_DIR); tests/integration/sql_diff.sh is the default conformance check"

TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
export MTR_LOCAL_DIR="$TMP/local" MTR_BINDIR="$MTR_BUILDDIR/src"
export MTR_LOCAL_PORT=$(($(port_block) + 16))

plan 3
"$R" --local-dir "$MTR_LOCAL_DIR" "$SLT" >"$TMP/out" 2>"$TMP/err"
rc=$?
sed 's/^/# /' "$TMP/out"
grep -v ' INFO ' "$TMP/err" | sed 's/^/#   /' | head -20
check "mtrslt ran the corpus against a 3-server cluster" grep -q '^[0-9]* passed, [0-9]* failed$' "$TMP/out"
bad=$(grep '^[^ ]*: [0-9]* passed, ' "$TMP/out" | grep -v ' 0 failed' | grep -c . )
check "every file: 0 failed (exit $rc)" [ "$bad" = 0 -a "$rc" = 0 ]
check "slt_lang_createview.test (CREATE TEMP VIEW): 0 failed" grep -q '^slt_lang_createview.test: .* 0 failed' "$TMP/out"
[ -z "$(pgrep -f "$MTR_LOCAL_DIR/")" ] || { diag "processes left running:"; pgrep -fa "$MTR_LOCAL_DIR/" | sed 's/^/#   /'; }
exit 0
