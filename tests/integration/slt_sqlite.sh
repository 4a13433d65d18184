#!/bin/bash
# slt_sqlite.sh - mtrslt checks itself: every sqllogictest file of the shared
# corpus ($MTR_SLT_DIR, default $MTR_SRCDIR/../shared/slt; an optional
# extra, those tests skip without it) run on plain SQLite (--sqlite) must
# pass, and the runner must notice a wrong result (always run).
# Then the Metronome backend runs the corpus through libmetronome against
# sltproxy, a stand-in proxy with plain SQLite behind the client protocol
# (the lead adds the run on a real 3-server cluster once the daemons exist).
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

SLT=${MTR_SLT_DIR:-$MTR_SRCDIR/../shared/slt}
BIN=$MTR_BUILDDIR/tests/slt/mtrslt
[ -x "$BIN" ] || skip_all "mtrslt not built ($BIN)"
# The corpus is an optional extra: without it the runner's own checks (3-4)
# still run; tests/integration/sql_diff.sh is the default conformance check.
nocorpus="no sqllogictest corpus at $SLT: an optional extra (set MTR_SLT_DIR); tests/integration/sql_diff.sh is the default conformance check"
corpus=1
ls "$SLT"/*.test >/dev/null 2>&1 || corpus=0

plan 6
tmp=$(mktemp -d)
at_exit "rm -rf '$tmp'"

# 1-2: the whole corpus, bounded in time
if [ $corpus = 0 ]; then
	ok "# SKIP $nocorpus"
	ok "# SKIP $nocorpus"
else
	start=$(date +%s.%N)
	timeout 300 "$BIN" --sqlite "$SLT" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	end=$(date +%s.%N)
	total=$(tail -1 "$tmp/out")
	diag "mtrslt --sqlite $SLT: $total ($(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s)"
	sed 's/^/# /' "$tmp/out" | head -40
	grep -v ' 0 failed' "$tmp/out" >/dev/null && sed 's/^/# /' "$tmp/err" | head -20
	if [ $rc -eq 0 ] && echo "$total" | grep -Eq '^[1-9][0-9]* passed, 0 failed$'; then
		ok "every record of the corpus passes on plain SQLite"
	else
		not_ok "every record of the corpus passes on plain SQLite (exit $rc: $total)"
	fi
	nfiles=$(ls "$SLT"/*.test | wc -l)
	check "one line per file ($nfiles files)" \
		test "$(grep -Ec '^[^ ]+\.test: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$tmp/out")" -eq "$nfiles"
fi

# 3: a wrong expected value, a wrong hash and a statement that should fail
cat >"$tmp/bad.test" <<'SLT'
statement ok
CREATE TABLE t(a INTEGER, b TEXT)

statement ok
INSERT INTO t VALUES(1,'x'),(2,''),(3,NULL)

query IT rowsort
SELECT a, b FROM t
----
1
x
2
(empty)
3
NULL

query I nosort
SELECT a FROM t ORDER BY a
----
1
2
4

query I valuesort
SELECT a FROM t UNION ALL SELECT a FROM t UNION ALL SELECT a FROM t
----
9 values hashing to 00000000000000000000000000000000

statement error
SELECT 1

skipif sqlite
query I nosort
SELECT 1
----
2
SLT
"$BIN" --sqlite "$tmp/bad.test" >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
check "a wrong value, a wrong hash and a wrong statement fail (exit 1)" \
	test $rc -eq 1 -a "$(head -1 "$tmp/bad.out")" = "bad.test: 3 passed, 3 failed, 1 skipped"

# 4: a missing file is an error, not a pass
"$BIN" --sqlite "$tmp/missing.test" >/dev/null 2>&1
check "a missing file fails" test $? -ne 0

# 5-6: through libmetronome (and its SQL front end) against sltproxy
PROXY=$MTR_BUILDDIR/tests/slt/sltproxy
if [ $corpus = 0 ]; then
	ok "# SKIP $nocorpus"
	ok "# SKIP $nocorpus"
	exit 0
fi
if [ ! -x "$PROXY" ]; then
	ok "# SKIP sltproxy not built"
	ok "# SKIP sltproxy not built"
	exit 0
fi
spawn "$tmp/proxy.out" "$PROXY" >/dev/null
i=0
while ! grep -q '^port ' "$tmp/proxy.out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
port=$(awk '/^port /{print $2}' "$tmp/proxy.out")
uri="mtr://127.0.0.1:$port"
timeout 300 "$BIN" --uri "$uri" "$SLT"/*.test >"$tmp/fake.out" 2>"$tmp/fake.err"
rc=$?
diag "mtrslt --uri sltproxy: $(tail -1 "$tmp/fake.out")"
grep -v ' 0 failed' "$tmp/fake.out" >/dev/null && sed 's/^/# /' "$tmp/fake.err" | head -20
check "the corpus through libmetronome and sltproxy: 0 failed" \
	test $rc -eq 0 -a -n "$port"
check "slt_lang_createview.test (CREATE TEMP VIEW, session-scoped) through sltproxy: 0 failed" \
	grep -q '^slt_lang_createview.test: [0-9]* passed, 0 failed' "$tmp/fake.out"
