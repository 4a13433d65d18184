#!/bin/sh
# mtrparse.sh - the mtrparse command: one JSON line per statement, exit
# status 0 when all are accepted, 1 when one is an error or refused, the
# JSON parses (python3 when present).
. "$MTR_SRCDIR/tests/integration/lib.sh"
P="$MTR_BUILDDIR/sql/mtrparse"
[ -x "$P" ] || skip_all "mtrparse not built"
plan 6
out=$(printf 'SELECT a FROM t WHERE b > date(%s);\nINSERT INTO u SELECT * FROM t;\n' "'now'" | timeout 10 "$P"); rc=$?
check "exit 0 on valid SQL" [ $rc -eq 0 ]
check "one line per statement" [ "$(printf '%s\n' "$out" | wc -l)" -eq 2 ]
case $out in *'"kind":"write","tables_read":["t"],"tables_written":["u"]'*) ok "classification";; *) not_ok "classification: $out";; esac
out=$(printf 'SELECT * FROM;\nATTACH "x" AS y;\n' | timeout 10 "$P"); rc=$?
check "exit 1 on error or refusal" [ $rc -eq 1 ]
case $out in *'"error":"near \";\": syntax error at line 1, column 14'*) ok "error message";; *) not_ok "error message: $out";; esac
if command -v python3 >/dev/null 2>&1; then
	timeout 10 "$P" < "$MTR_SRCDIR/tests/sql/features.sql" | python3 -c 'import sys, json; [json.loads(l) for l in sys.stdin]' && ok "JSON parses" || not_ok "JSON parses"
else
	ok "JSON parses # SKIP no python3"
fi
exit $_tap_fail
