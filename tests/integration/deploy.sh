#!/bin/sh
# deploy.sh - what `make install` puts in place for systemd
# (doc/operations.md, "Deploying with systemd"): the units metronomed.service,
# metronomed@.service and mtrproxy.service in systemdsystemunitdir with the
# install paths filled in, the example configurations under
# $(sysconfdir)/metronome (never overwriting an operator's file), and the
# units pass `systemd-analyze verify` when it is installed (Debian package
# systemd), with ExecStart pointed at the built daemons.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
[ -f "$B/Makefile" ] || skip_all "no build tree in $B"
need_built src/metronomed src/mtrproxy
TMP=$(mktemp -d)
at_exit rm -rf "$TMP"
D=$TMP/dest
U=$D/usr/local/lib/systemd/system
E=$D/usr/local/etc/metronome

plan 7
mkdir -p "$E"
echo "# the operator's own" >"$E/mtrproxy.conf"
make -C "$B" -s install DESTDIR="$D" prefix=/usr/local >"$TMP/install.log" 2>&1
tail -3 "$TMP/install.log" | sed 's/^/#   /'
check "make install puts the three units in PREFIX/lib/systemd/system" \
	test -f "$U/metronomed.service" -a -f "$U/metronomed@.service" -a -f "$U/mtrproxy.service"
check "the units start the installed daemons with the installed configuration" \
	sh -c "grep -qx 'ExecStart=/usr/local/bin/metronomed -c /usr/local/etc/metronome/metronomed.conf' '$U/metronomed.service' &&
	       grep -qx 'ExecStart=/usr/local/bin/metronomed -c /usr/local/etc/metronome/metronomed-%i.conf' '$U/metronomed@.service' &&
	       grep -qx 'ExecStart=/usr/local/bin/mtrproxy -c /usr/local/etc/metronome/mtrproxy.conf' '$U/mtrproxy.service'"
check "the units are hardened (ProtectSystem=strict, NoNewPrivileges, PrivateTmp, ReadWritePaths of the data)" \
	sh -c "for u in '$U'/*.service; do grep -qx ProtectSystem=strict \"\$u\" && grep -qx NoNewPrivileges=yes \"\$u\" &&
	       grep -qx PrivateTmp=yes \"\$u\" || exit 1; done; grep -qx ReadWritePaths=/var/lib/metronome '$U/metronomed.service'"
check "the example metronomed.conf is installed under SYSCONFDIR/metronome" cmp -s "$MTR_SRCDIR/doc/metronomed.conf" "$E/metronomed.conf"
check "an existing mtrproxy.conf is kept, not overwritten" grep -qx "# the operator's own" "$E/mtrproxy.conf"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	ok "# SKIP systemd-analyze is not installed (Debian package systemd)"
	ok "# SKIP systemd-analyze is not installed (Debian package systemd)"
	exit 0
fi
# the same units with ExecStart at the built daemons (verify checks that
# the program exists), and the man pages where man finds them
mkdir -p "$TMP/units" "$TMP/man/man8"
cp "$MTR_SRCDIR/doc/metronomed.8" "$MTR_SRCDIR/doc/mtrproxy.8" "$TMP/man/man8/"
for u in "$U"/*.service; do
	sed "s|/usr/local/bin/|$B/src/|" "$u" >"$TMP/units/$(basename "$u")"
	command -v man >/dev/null 2>&1 || sed -i '/^Documentation=/d' "$TMP/units/$(basename "$u")"
done
command -v man >/dev/null 2>&1 || diag "no man command: Documentation= lines left out of the verified copies"
MANPATH="$TMP/man" SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$TMP/units/metronomed.service" \
	"$TMP/units/metronomed@.service" >"$TMP/verify1" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/verify1"
check "systemd-analyze verify accepts metronomed.service and metronomed@.service" test $rc = 0 -a ! -s "$TMP/verify1"
MANPATH="$TMP/man" SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$TMP/units/mtrproxy.service" >"$TMP/verify2" 2>&1
rc=$?
sed 's/^/#   /' "$TMP/verify2"
check "systemd-analyze verify accepts mtrproxy.service" test $rc = 0 -a ! -s "$TMP/verify2"
