#!/bin/sh
# install.sh - an application builds against the installed client library
# exactly as doc/client.md says and runs against a cluster.
#   make install DESTDIR=TMP; then, with pkg-config pointed at that tree,
#   cc example.c $(pkg-config --cflags --libs metronome); the program runs
#   against a `local` cluster of the installed daemons, and ldd of it shows
#   the shared libmetronome and no DPDK library (libsqlite3 comes with the
#   `local` URI's cluster control, doc/client.md "Linking").  The man
#   pages land in share/man: every page of doc/man3 (a page per function or
#   group, a `.so` link per other name) with its links resolving there, and
#   man(1), when installed, finds and renders them.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
[ -f "$B/Makefile" ] || skip_all "no build tree in $B"
[ -n "${MTR_SANITIZE:-}" ] && skip_all "sanitizer build: an application built with plain cc cannot load an ASan library"
command -v cc >/dev/null || skip_all "no cc"
command -v pkg-config >/dev/null || skip_all "no pkg-config"
TMP=$(mktemp -d)
D=$TMP/dest
stop_local() {
	for f in "$TMP"/local/*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" 10; done
	rm -rf "$TMP"
}
at_exit stop_local

plan 9
make -C "$B" -s install DESTDIR="$D" prefix=/usr/local >"$TMP/install.log" 2>&1
check "make install DESTDIR=... installs the library, header and pkg-config file" \
	test -f "$D/usr/local/lib/pkgconfig/metronome.pc" -a -f "$D/usr/local/include/metronome.h"
tail -5 "$TMP/install.log" | sed 's/^/#   /'

M=$D/usr/local/share/man
missing=""
for p in "$MTR_SRCDIR"/doc/man3/*.3 "$MTR_SRCDIR"/doc/libmetronome.3; do
	[ -f "$M/man3/$(basename "$p")" ] || missing="$missing $(basename "$p")"
done
[ -n "$missing" ] && diag "not installed:$missing"
check "make install puts every page of doc/man3 ($(ls "$MTR_SRCDIR"/doc/man3/*.3 | wc -l)) and libmetronome.3 in share/man/man3" \
	test -z "$missing"
dangling=""
for p in "$M"/man3/*.3; do
	t=$(sed -n 's/^\.so[ \t]\{1,\}\([^ \t]*\).*/\1/p' "$p" | head -1)
	[ -n "$t" ] && [ ! -f "$M/$t" ] && dangling="$dangling $(basename "$p")->$t"
done
[ -n "$dangling" ] && diag "dangling:$dangling"
check "every installed .so link resolves under share/man" test -z "$dangling"
if command -v man >/dev/null && man --version 2>/dev/null | grep -q '^man '; then
	MANPATH=$M MANWIDTH=80 man -P cat 3 mtr_bind_text >"$TMP/man.out" 2>&1
	sed 's/^/#   /' "$TMP/man.out" | head -6
	check "man 3 mtr_bind_text shows the installed mtr_bind(3) page" \
		grep -q 'mtr_bind_int64(mtr_stmt' "$TMP/man.out"
else
	ok "# SKIP no man (man-db) to read the installed pages with"
fi

export PKG_CONFIG_PATH="$D/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$D"
cp "$MTR_SRCDIR/examples/example.c" "$TMP/app.c"
(cd "$TMP" && cc app.c $(pkg-config --cflags --libs metronome)) >"$TMP/cc.log" 2>&1
check "cc app.c \$(pkg-config --cflags --libs metronome) links" test -x "$TMP/a.out"
sed 's/^/#   /' "$TMP/cc.log" | head -10

export LD_LIBRARY_PATH="$D/usr/local/lib"
ldd "$TMP/a.out" >"$TMP/ldd.out" 2>&1
sed 's/^/#   /' "$TMP/ldd.out"
check "the program uses the shared libmetronome" grep -q "libmetronome.so.0 => $D" "$TMP/ldd.out"
check "ldd shows no DPDK library (librte_*)" sh -c "! grep -q librte_ '$TMP/ldd.out'"

export MTR_LOCAL_DIR="$TMP/local" MTR_LOCAL_PORT=$(($(port_block) + 10)) MTR_BINDIR="$D/usr/local/bin"
timeout 60 "$TMP/a.out" local >"$TMP/run.out" 2>&1
check "it runs against a local cluster of the installed daemons" grep -q '^2 pear' "$TMP/run.out"
sed 's/^/#   /' "$TMP/run.out" | head -8
"$D/usr/local/bin/metronomed" --help >"$TMP/help.out" 2>&1
check "the installed metronomed runs (--help)" grep -q 'metronomed' "$TMP/help.out"
