#!/bin/bash
# manpages.sh - every public function of libmetronome has a man page, and the
# man pages are sound (doc/architecture.md "Man pages").  No build needed.
#
# Checks, on the source tree:
#   1. every function declared MTR_API in include/metronome.h has a page
#      doc/man3/NAME.3: the page itself or a `.so man3/PAGE.3` link, and the
#      page it resolves to names NAME in its NAME and SYNOPSIS sections;
#   2. every `.so` request of a page under doc/ points to a real page;
#   3. every page under doc/ is installed (listed in an mk/*.mk fragment);
#   4. every MTR_E* code of MTR_ERRNO_MAP has its entry, with its value, in
#      doc/man3/mtr_errcode.3;
#   5. doc/libmetronome.3 names every function and refers to every page of
#      doc/man3;
#   6. every page of doc/man3 has the sections NAME, SYNOPSIS, DESCRIPTION,
#      RETURN VALUE and SEE ALSO;
#   7. no page warns when rendered: `man --warnings=w -l` (man-db), else
#      groff -ww, else mandoc -T lint; skipped, saying so, without any.
# Then it shows that the checks can fail: on a scratch copy of the tree with
# a function declared without a page, a dangling link, a page not installed,
# an error code without its entry and a page with a bad macro, each check
# must report exactly that.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/integration/lib.sh"

T=$(mktemp -d)
at_exit rm -rf "$T"

# The MTR_API functions of the header $1, one per line: declarations start
# a line with MTR_API and end at their ';'.
api_functions() {
	awk '/^[ \t]*MTR_API[ \t]/ { d = ""; on = 1 }
	     on { d = d " " $0; if (index($0, ";")) { on = 0
		if (match(d, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
			n = substr(d, RSTART, RLENGTH); sub(/[ \t]*\($/, "", n); print n } } }' "$1"
}

# The target of a page that is a link (`.so man3/X.3`, relative to doc/), or
# nothing when the page is a page.
so_target() { sed -n 's/^\.so[ \t]\{1,\}\([^ \t]*\).*/\1/p' "$1" | head -1; }

# The lines of section $2 (".SH $2" up to the next .SH) of page $1.
section() { awk -v s="$2" '/^\.SH/ { on = ($0 == ".SH " s || $0 == ".SH \"" s "\"") ; next } on' "$1"; }

# The pages under doc/ of tree $1: doc/*.[1-8] and doc/man3/*.3.
pages() { (cd "$1" && ls doc/*.[1-8] doc/man3/*.3 2>/dev/null); }

# Each check_* prints one line per problem found in tree $1.
check_functions() {
	api_functions "$1/include/metronome.h" | while read -r f; do
		p=$1/doc/man3/$f.3
		if [ ! -f "$p" ]; then
			echo "$f: no man page (doc/man3/$f.3 is missing: write one, or a .so link to its group's page)"
			continue
		fi
		t=$(so_target "$p")
		[ -n "$t" ] && p=$1/doc/$t
		[ -f "$p" ] || continue # check_links reports it
		section "$p" NAME | grep -qw -- "$f" ||
			echo "$f: ${p#"$1"/} does not name it in its NAME section"
		section "$p" SYNOPSIS | grep -q -- "[ *]$f(" ||
			echo "$f: ${p#"$1"/} does not declare it in its SYNOPSIS"
	done
}

check_links() {
	for p in $(pages "$1"); do
		t=$(so_target "$1/$p")
		[ -z "$t" ] && continue
		if [ ! -f "$1/doc/$t" ]; then
			echo "$p: .so $t: no such page under doc/"
		elif [ -n "$(so_target "$1/doc/$t")" ]; then
			echo "$p: .so $t: that page is itself a link"
		fi
	done
}

check_installed() {
	cat "$1"/mk/*.mk "$1/Makefile.am" >"$T/mk.txt"
	for p in $(pages "$1"); do
		grep -qF -- "$p" "$T/mk.txt" || echo "$p: not installed (list it in mk/client.mk MAN3_PAGES or MAN3_LINKS, or in the fragment of its program)"
	done
}

check_codes() {
	sed -n 's/^[ \t]*X(\([A-Z_0-9]*\),[ \t]*-\([0-9]*\),.*/\1 \2/p' "$1/include/metronome.h" | while read -r name v; do
		grep -qxF -- ".BR MTR_E$name \" (\\-$v)\"" "$1/doc/man3/mtr_errcode.3" ||
			echo "MTR_E$name (-$v): no entry '.BR MTR_E$name \" (\\-$v)\"' in doc/man3/mtr_errcode.3"
	done
}

check_overview() {
	o=$1/doc/libmetronome.3
	api_functions "$1/include/metronome.h" | while read -r f; do
		grep -qw -- "$f" "$o" || echo "$f: not named in doc/libmetronome.3"
	done
	for p in "$1"/doc/man3/*.3; do
		[ -n "$(so_target "$p")" ] && continue
		n=$(basename "$p" .3)
		grep -qxF -- ".BR $n (3)" "$o" || grep -qxF -- ".BR $n (3)," "$o" ||
			echo "doc/man3/$n.3: not in the SEE ALSO of doc/libmetronome.3"
	done
}

check_sections() {
	for p in "$1"/doc/man3/*.3; do
		[ -n "$(so_target "$p")" ] && continue
		for s in NAME SYNOPSIS DESCRIPTION "RETURN VALUE" "SEE ALSO"; do
			grep -qxE -- "\.SH \"?$s\"?" "$p" || echo "doc/man3/$(basename "$p"): no $s section"
		done
	done
}

# The warnings of rendering page $1, on stdout.
if command -v man >/dev/null && man --version 2>/dev/null | grep -q '^man '; then
	LINT="man --warnings=w -l (man-db, groff)"
	lint_page() { MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings=w -E UTF-8 -l "$1" 2>&1 >/dev/null; }
elif command -v groff >/dev/null; then
	LINT="groff -man -ww"
	lint_page() { groff -man -t -Tutf8 -ww -z "$1" 2>&1; }
elif command -v mandoc >/dev/null; then
	LINT="mandoc -T lint"
	lint_page() { mandoc -T lint -W warning "$1" 2>&1; }
else
	LINT=""
fi

check_lint() {
	for p in $(pages "$1"); do
		[ -n "$(so_target "$1/$p")" ] && continue
		lint_page "$1/$p" | sed "s|^|$p: |"
	done
}

# run NAME TREE: the problems of check NAME, in T/NAME.out
run() { "check_$1" "$2" >"$T/$1.out" 2>&1; }
# show NAME: the problems as diagnostics
show() { sed 's/^/#   /' "$T/$1.out" | head -40; }

S=$MTR_SRCDIR
[ -f "$S/include/metronome.h" ] && [ -d "$S/doc/man3" ] || skip_all "no source tree with doc/man3 in $S"
nfun=$(api_functions "$S/include/metronome.h" | wc -l)
npages=$(pages "$S" | wc -l)
diag "$nfun MTR_API functions in include/metronome.h, $npages pages under doc/"

plan 13
check "found the MTR_API functions of include/metronome.h (at least 40)" test "$nfun" -ge 40
# clean NAME DESCRIPTION: check NAME finds nothing on the tree
clean() { run "$1" "$S"; show "$1"; check "$2" test ! -s "$T/$1.out"; }
clean functions "every MTR_API function has a page or a .so link naming it"
clean links "every .so link points to a page under doc/"
clean installed "every page under doc/ is installed by an mk/*.mk fragment"
clean codes "every MTR_E* code has its entry in mtr_errcode.3"
clean overview "libmetronome.3 names every function and every page"
clean sections "every page of doc/man3 has NAME, SYNOPSIS, DESCRIPTION, RETURN VALUE, SEE ALSO"
if [ -n "$LINT" ]; then
	clean lint "no page warns under $LINT"
else
	ok "# SKIP no man (man-db), groff or mandoc to render the pages with (apt-get install groff-base)"
fi

# The checks can fail: a scratch copy of the tree, spoiled five ways.
X=$T/tree
mkdir -p "$X"
cp -r "$S/include" "$S/doc" "$S/mk" "$S/Makefile.am" "$X/"
printf '/* a function without a page */\nMTR_API int mtr_nopage(mtr *db,\n\tint flags);\n' >>"$X/include/metronome.h"
printf '.so man3/mtr_gone.3\n' >"$X/doc/man3/mtr_dangling.3"
sed -i 's/^#define MTR_ERRNO_MAP(X)[ \t]*\\$/&\n\tX(NOPE, -99, "no entry") \\/' "$X/include/metronome.h"
printf '.SH NOTES\n.BOGUS macro\n' >>"$X/doc/man3/mtr_exec.3"
for c in functions links installed codes lint; do
	[ $c = lint ] && [ -z "$LINT" ] && continue
	run $c "$X"
done
show functions
check "a function declared without a page is reported" grep -q '^mtr_nopage: no man page' "$T/functions.out"
check "a .so link to a missing page is reported" grep -q '^doc/man3/mtr_dangling.3: .so man3/mtr_gone.3: no such page' "$T/links.out"
check "a page not listed for install is reported" grep -qx 'doc/man3/mtr_dangling.3: not installed.*' "$T/installed.out"
check "an error code without its entry is reported" grep -q '^MTR_ENOPE (-99): no entry' "$T/codes.out"
if [ -n "$LINT" ]; then
	show lint
	check "a page with an undefined macro fails $LINT" grep -q '^doc/man3/mtr_exec.3: .*BOGUS' "$T/lint.out"
else
	ok "# SKIP no man, groff or mandoc"
fi
