#!/bin/bash
# layers.sh - the build enforces the layering of doc/architecture.md.
#
# Each folder under src/ (and sql/) builds into its own library.  From the
# symbols of the built archives this suite checks that every library
# references only the libraries it may use (listed below, as in Makefile.am),
# that DPDK (rte_*) is referenced by src/dpdk alone and SQLite by the server
# and the client's local cluster alone, and that the installed client library
# exports only mtr_* and links no DPDK.  It first shows that the check can
# fail: a rule that forbids net to use proto must report it.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/integration/lib.sh"
L=$MTR_BUILDDIR/.libs
[ -f "$L/libmtrcommon.a" ] || skip_all "the libraries are not built in $MTR_BUILDDIR"
command -v nm >/dev/null || skip_all "nm (binutils) is not installed"

declare -A may=(
	[common]=""
	[proto]="common"
	[net]="proto common"
	[dpdk]="net proto common"
	[sql]="common"
	[proxy]="net proto common sql"
	[client]="proxy net proto common sql"
	[server]="net proto common"
)
libs="common proto net sql proxy client server"
[ -f "$L/libmtrdpdk.a" ] && libs="$libs dpdk"
# outside libraries a layer may reference, as a regex of symbol names
# (everything else of libc and friends is free): DPDK only in dpdk, SQLite
# only where it runs, OpenSSL only in proxy (tlsconn.c: the client protocol's
# TLS, which the client reaches through it)
ossl='^(SSL_|SSL_CTX_|X509_|ERR_|BIO_|PEM_|EVP_|ASN1_|OPENSSL_|TLS_)'
declare -A ext=([dpdk]="^rte_" [server]="^sqlite3_" [client]="^sqlite3_" [proxy]="$ossl")

T=$(mktemp -d)
at_exit rm -rf "$T"
# T/defs: "symbol lib" for every global symbol defined in one of our libraries
for l in $libs; do
	nm -g -P --defined-only "$L/libmtr$l.a" 2>/dev/null | awk -v l=$l 'NF >= 2 && $1 !~ /:$/ {print $1, l}'
done | sort -u >"$T/defs"
for l in $libs; do
	nm -g -P --undefined-only "$L/libmtr$l.a" 2>/dev/null | awk 'NF >= 2 && $1 !~ /:$/ {print $1}' | sort -u >"$T/undef.$l"
done

# violations LIB ALLOWED: the references of LIB to a library not in ALLOWED
# (nor itself) and to forbidden outside prefixes, one "symbol (lib)" a line
violations() {
	awk -v self="$1" -v allowed=" $2 " -v extok="$3" '
		FNR == NR { def[$1] = $2; next }
		($1 in def) { d = def[$1]; if (d != self && index(allowed, " " d " ") == 0) print $1 " (" d ")"; next }
		$1 ~ /^(rte_|sqlite3_|SSL_|X509_|ERR_|BIO_|PEM_|EVP_|ASN1_|OPENSSL_|TLS_)/ { if (extok == "" || $1 !~ extok) print $1 " (outside)" }
	' "$T/defs" "$T/undef.$1"
}

n=$(echo $libs | wc -w)
plan $((n + 3))

# the check itself can fail: net uses proto, which this rule forbids
bad=$(violations net "common" "")
check "a rule that forbids net to use proto reports it ($(echo "$bad" | head -1))" test -n "$bad"

for l in $libs; do
	v=$(violations "$l" "${may[$l]}" "${ext[$l]:-}")
	if [ -z "$v" ]; then
		ok "libmtr$l uses only: ${may[$l]:-nothing of ours}${ext[$l]:+, outside: ${ext[$l]}}"
	else
		not_ok "libmtr$l references what it may not use:"
		echo "$v" | head -20 | sed 's/^/#   /'
	fi
done

so=$(ls "$L"/libmetronome.so.[0-9]* 2>/dev/null | head -1)
if [ -n "$so" ]; then
	other=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRV]$/ && $3 !~ /^mtr_/ {print $3}' | head -5)
	check "libmetronome.so exports only mtr_* ${other:+(also: $other)}" test -z "$other"
	rte=$(ldd "$so" | grep -c 'librte_' || true)
	check "libmetronome.so links no DPDK library ($rte librte_*)" test "$rte" = 0
else
	ok "# SKIP libmetronome.so is not built (static-only configuration)"
	ok "# SKIP libmetronome.so is not built (static-only configuration)"
fi
