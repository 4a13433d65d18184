#!/bin/bash
# tls.sh - TLS between clients and the proxy (doc/protocol.md "TLS",
# doc/client.md "TLS", doc/security.md).
#
# A throwaway CA and certificates made with the openssl CLI in a temporary
# directory: the proxy's (SAN IP:127.0.0.1, DNS:localhost), one for another
# name (DNS:db.example), one from another CA, an expired one.  3 servers
# and 3 proxies on loopback: p1 proxy.tls = require, p2 off (no TLS), p3
# allow with the other-name certificate.  Checks: mtrsql over TLS with ca=
# writes and reads (by IP and by name); the SQL text and the rows are not
# on the wire in clear (strace of the client's socket calls, against the
# same over clear TCP, where they are); a wrong CA, a name and an IP
# address that the certificate does not carry fail with the verifier's
# reason; plain TCP to p1 gets "requires TLS", TLS to p2 "does not speak
# TLS"; an unfinished handshake does not stall the proxy; openssl s_client
# negotiates TLS 1.3 and 1.2 and verifies; the proxy refuses to start with
# an unreadable, mismatched or expired certificate; SIGHUP reads renewed
# files (and keeps the old certificate when they are broken); pipelined
# writes and megabyte requests and answers pass; the failures are counted
# in mtr_stats and warned in the log; the cluster still answers and its
# replicas are equal.
. "${MTR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

B=$MTR_BUILDDIR
need_built src/metronomed src/mtrproxy shell/mtrsql tests/tools/mtrdigest tests/tools/mtrload
command -v openssl >/dev/null || skip_all "the openssl command is not installed (apt-get install openssl)"
TMP=$(mktemp -d)
at_exit 'rm -rf "$TMP"'
BASE=$(port_block)
M=$B/shell/mtrsql
C=$TMP/c

plan 43
# has TEXT PATTERN: TEXT has a line matching the grep pattern
has() { printf '%s\n' "$1" | grep -q -- "$2"; }

# ---- certificates --------------------------------------------------------
mkdir -p "$C"
gen() { openssl "$@" >>"$C/openssl.log" 2>&1; }
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
# ca CA: a self-signed CA, C/CA.pem and C/CA.key
ca() { gen req -x509 $ec -keyout "$C/$1.key" -out "$C/$1.pem" -days 2 -subj "/CN=metronome test $1"; }
# cert NAME CA SAN DAYS: C/NAME.pem (signed by CA) and C/NAME.key
cert() {
	gen req $ec -keyout "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$1" &&
		printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$3" >"$C/$1.ext" &&
		gen x509 -req -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2.key" -CAcreateserial -days "$4" \
			-extfile "$C/$1.ext" -out "$C/$1.pem"
}
ca ca && ca other &&
	cert server ca "IP:127.0.0.1,DNS:localhost" 2 &&
	cert othername ca "DNS:db.example" 2 &&
	cert foreign other "IP:127.0.0.1,DNS:localhost" 2 &&
	cert expired ca "IP:127.0.0.1,DNS:localhost" 0
check "a throwaway CA and certificates made with the openssl command" test -s "$C/expired.pem"
[ -s "$C/expired.pem" ] || { cat "$C/openssl.log" | sed 's/^/# /'; exit 1; }
chmod 600 "$C"/*.key

# ---- the proxy refuses to start with a bad certificate -------------------
servers=$(local_servers $BASE 3)
# refused NAME KEYS...: mtrproxy with these extra keys exits 1 at once; its
# message is in TMP/NAME.err
refused() {
	n=$1
	shift
	proxy_conf "$TMP" 9 "$servers" $((BASE + 19))
	printf '%s\n' "$@" >>"$TMP/p9.conf"
	timeout 20 "$B/src/mtrproxy" -c "$TMP/p9.conf" >"$TMP/$n.err" 2>&1
	[ $? = 1 ]
}
refused expired "proxy.tls_cert = $C/expired.pem" "proxy.tls_key = $C/expired.key"
check "an expired certificate: mtrproxy exits 1 ($(head -c 150 "$TMP/expired.err"))" grep -q "proxy.tls_cert: .* expired on" "$TMP/expired.err"
refused mismatch "proxy.tls_cert = $C/server.pem" "proxy.tls_key = $C/othername.key"
check "a key of another certificate: refused ($(head -c 150 "$TMP/mismatch.err"))" grep -q "proxy.tls_key: .* does not match" "$TMP/mismatch.err"
refused unreadable "proxy.tls_cert = $C/server.pem" "proxy.tls_key = $C/nothere.key"
check "an unreadable key file: refused ($(head -c 120 "$TMP/unreadable.err"))" grep -q "proxy.tls_key: cannot read .*No such file" "$TMP/unreadable.err"
refused nocert "proxy.tls = require"
check "proxy.tls = require without a certificate: refused" grep -q "needs proxy.tls_cert and proxy.tls_key" "$TMP/nocert.err"
refused notpem "proxy.tls_cert = $C/server.ext" "proxy.tls_key = $C/server.key"
check "a certificate file without PEM: refused" grep -q "holds no usable PEM certificate" "$TMP/notpem.err"

# ---- the cluster -----------------------------------------------------------
start_servers "$TMP" 3 "$servers"
P1=$((BASE + 11)) P2=$((BASE + 12)) P3=$((BASE + 13))
proxy_conf "$TMP" 1 "$servers" $P1
cp "$C/server.pem" "$TMP/p1.pem" && cp "$C/server.key" "$TMP/p1.key" # replaced for SIGHUP below
# log.level debug: only the first failure of a kind in a minute is a WARN;
# which failure comes first depends on timing (a client that closes before
# its alert is read says "the peer closed"), the rest are at debug
printf 'proxy.tls_cert = %s\nproxy.tls_key = %s\nproxy.metrics_listen = 127.0.0.1:%d\nlog.level = debug\n' \
	"$TMP/p1.pem" "$TMP/p1.key" $((BASE + 14)) >>"$TMP/p1.conf"
proxy_conf "$TMP" 2 "$servers" $P2
proxy_conf "$TMP" 3 "$servers" $P3
printf 'proxy.tls = allow\nproxy.tls_cert = %s\nproxy.tls_key = %s\n' "$C/othername.pem" "$C/othername.key" >>"$TMP/p3.conf"
for k in 1 2 3; do spawn "$TMP/p$k.log" "$B/src/mtrproxy" -c "$TMP/p$k.conf" >/dev/null; done
pid1=$(pgrep -f "mtrproxy -c $TMP/p1.conf" | head -1)
wait_for 20 leader_in "$TMP"
for k in 1 2 3; do wait_for 10 grep -q "listening on" "$TMP/p$k.log"; done
check "p1 says it requires TLS" grep -q "for clients (TLS required)" "$TMP/p1.log"

U1="mtr://127.0.0.1:$P1?tls=require&ca=$C/ca.pem"
MARK="tls-marker-$$-$RANDOM"
"$M" "$U1" -c "CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('$MARK')" >"$TMP/w1" 2>&1
check "mtrsql over TLS with ca=: writes ($(head -c 100 "$TMP/w1"))" [ $? = 0 ]
out=$("$M" "$U1" -c "SELECT x FROM t" 2>&1)
check "mtrsql over TLS: reads back the row" [ "$out" = "$MARK" ]
out=$("$M" "mtr://localhost:$P1?tls=require&ca=$C/ca.pem" -c "SELECT count(*) FROM t" 2>&1)
check "by host name (localhost, a DNS SAN) too ($out)" [ "$out" = 1 ]
out=$("$M" "$U1" -c ".consistency linearizable" -c "SELECT count(*) FROM t" 2>&1)
check ".consistency reconnects with the URI's TLS options ($out)" [ "$out" = 1 ]

# ---- volume: pipelined writes, a large request and a large answer -------
# (TLS records of 16 KiB, partial writes and reads on both sides)
out=$(timeout 120 "$B/tests/tools/mtrload" --uri "$U1" --clients 4 --rows 2000 --pipeline 50 --payload 300 \
	--table load 2>&1)
check "mtrload over TLS: 4 clients, 2000 pipelined writes ($out)" has "$out" '^acked 2000 failed 0 '
big=$(head -c 1500000 /dev/zero | tr '\0' 'q')
printf "CREATE TABLE big(v TEXT); INSERT INTO big VALUES ('%s%s');\n" "$MARK" "$big" | timeout 60 "$M" "$U1" \
	>"$TMP/big.w" 2>&1
check "a request of 1.5 MB over TLS ($(head -c 100 "$TMP/big.w"))" [ $? = 0 ]
timeout 60 "$M" "$U1" -c "SELECT v || v FROM big" >"$TMP/big.tls" 2>&1
timeout 60 "$M" "mtr://127.0.0.1:$P3" -c "SELECT v || v FROM big" >"$TMP/big.clear" 2>&1
check "an answer of 3 MB over TLS equals the one over clear TCP ($(wc -c <"$TMP/big.tls") bytes)" \
	sh -c "[ $(wc -c <"$TMP/big.tls") -gt 3000000 ] && cmp -s '$TMP/big.tls' '$TMP/big.clear'"

# ---- nothing in clear on the wire ---------------------------------------
# strace shows the bytes of the client's socket calls (send/recv are
# sendto/recvfrom); the marker is in the SELECT sent and the row received
wire() { # wire URI OUT: the socket calls of one SELECT through URI (LeakSanitizer cannot run under ptrace)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=sendto,recvfrom,sendmsg,recvmsg,write,read -e signal=none -s 100000 -o "$2" \
		"$M" "$1" -c "SELECT x FROM t WHERE x = '$MARK'" >/dev/null 2>&1
}
if command -v strace >/dev/null && strace -qq -o /dev/null true 2>/dev/null; then
	wire "mtr://127.0.0.1:$P3" "$TMP/clear.trace"
	check "over clear TCP the marker is on the wire (the check can fail)" \
		sh -c "grep -E '^[0-9]+ +(sendto|recvfrom)\(' '$TMP/clear.trace' | grep -q '$MARK'"
	wire "$U1" "$TMP/tls.trace"
	n=$(grep -cE '^[0-9]+ +(sendto|recvfrom)\(' "$TMP/tls.trace")
	check "over TLS the marker is not on the wire ($n socket calls traced)" \
		sh -c "[ $n -gt 2 ] && ! grep -E '^[0-9]+ +(sendto|recvfrom)\(' '$TMP/tls.trace' | grep -q '$MARK'"
else
	ok "# SKIP strace cannot trace here (not installed, or ptrace is not allowed)"
	ok "# SKIP strace cannot trace here (not installed, or ptrace is not allowed)"
fi

# ---- verification failures name the reason ------------------------------
err=$("$M" "mtr://127.0.0.1:$P1?tls=require&ca=$C/other.pem" -c "SELECT 1" 2>&1)
check "a wrong CA: refused, 'certificate verify failed: unable to get local issuer certificate'" \
	has "$err" 'certificate verify failed: unable to get local issuer certificate'
diag "$err"
err=$("$M" "mtr://localhost:$P3?tls=require&ca=$C/ca.pem" -c "SELECT 1" 2>&1)
check "a host name the certificate does not carry: 'certificate verify failed: hostname mismatch'" \
	has "$err" 'certificate verify failed: hostname mismatch'
diag "$err"
err=$("$M" "mtr://127.0.0.1:$P3?tls=require&ca=$C/ca.pem" -c "SELECT 1" 2>&1)
check "an IP address it does not carry: 'certificate verify failed: IP address mismatch'" \
	has "$err" 'certificate verify failed: IP address mismatch'
out=$("$M" "mtr://127.0.0.1:$P3?tls=insecure" -c "SELECT count(*) FROM t" 2>&1)
insecure_ok() { has "$out" 'tls=insecure' && [ "$(echo "$out" | tail -1)" = 1 ]; }
check "tls=insecure skips the checks (and says so)" insecure_ok
out=$("$M" "mtr://127.0.0.1:$P3" -c "SELECT count(*) FROM t" 2>&1)
check "proxy.tls = allow: clear TCP is served too ($out)" [ "$out" = 1 ]
err=$("$M" "mtr://127.0.0.1:$P1?tls=require&ca=$C/nothere.pem" -c "SELECT 1" 2>&1)
check "an unreadable ca= file: 'ca=...: cannot read it'" has "$err" 'nothere.pem: cannot read it'

# ---- clear and TLS at the wrong door ----------------------------------------
err=$("$M" "mtr://127.0.0.1:$P1" -c "SELECT 1" 2>&1)
check "plain TCP to a TLS-only proxy: 'this proxy requires TLS: add ?tls=require to the URI'" \
	has "$err" 'this proxy requires TLS: add ?tls=require to the URI'
diag "$err"
err=$("$M" "mtr://127.0.0.1:$P2?tls=require&ca=$C/ca.pem" -c "SELECT 1" 2>&1)
check "TLS to a proxy without TLS: 'the proxy at 127.0.0.1:$P2 does not speak TLS'" \
	has "$err" "the proxy at 127.0.0.1:$P2 does not speak TLS"
diag "$err"

# ---- a handshake that never finishes does not stall the proxy ---------------
exec 7<>/dev/tcp/127.0.0.1/$P1
printf '\026\003\001' >&7 # the start of a TLS record, and nothing more
exec 8<>/dev/tcp/127.0.0.1/$P1 # nothing at all
out=$(timeout 20 "$M" "$U1" -c "INSERT INTO t VALUES ('b'); SELECT count(*) FROM t" 2>&1)
check "a half-sent ClientHello and a silent connection do not stall p1 ($out)" [ "$out" = 2 ]
exec 7>&- 8>&-

# ---- openssl s_client: versions and verification ---------------------------
sc() { timeout 20 openssl s_client -connect 127.0.0.1:$P1 -CAfile "$C/ca.pem" -verify_return_error \
	-verify_ip 127.0.0.1 "$@" </dev/null 2>&1; }
o=$(sc)
tls13_ok() { has "$o" 'New, TLSv1.3, Cipher is' && has "$o" 'Verify return code: 0 (ok)'; }
check "s_client: TLSv1.3, 'Verify return code: 0 (ok)'" tls13_ok
o=$(sc -no_tls1_3)
check "s_client: TLSv1.2 still accepted" has "$o" 'New, TLSv1.2, Cipher is'
o=$(sc -comp 2>&1)
check "s_client: no compression" has "$o" 'Compression: NONE'

# ---- SIGHUP reads the certificate again ---------------------------------------
reloaded() { [ "$(grep -c 'reloaded .* for new TLS connections' "$TMP/p1.log")" -ge "$1" ]; }
cp "$C/othername.pem" "$TMP/p1.pem" && cp "$C/othername.key" "$TMP/p1.key" && kill -HUP "$pid1"
wait_for 10 reloaded 1
err=$("$M" "mtr://localhost:$P1?tls=require&ca=$C/ca.pem" -c "SELECT 1" 2>&1)
check "SIGHUP: new connections get the new certificate (localhost: hostname mismatch)" \
	has "$err" 'certificate verify failed: hostname mismatch'
echo "not a certificate" >"$TMP/p1.pem" && kill -HUP "$pid1"
wait_for 10 grep -q "reload: proxy.tls_cert: .* the certificate in use stays" "$TMP/p1.log"
out=$("$M" "mtr://127.0.0.1:$P1?tls=insecure" -c "SELECT count(*) FROM t" 2>&1 | tail -1)
check "SIGHUP with a bad file: logged, the certificate in use stays, the proxy serves ($out)" \
	sh -c "grep -q 'the certificate in use stays' '$TMP/p1.log' && kill -0 $pid1 && [ '$out' = 2 ]"
cp "$C/server.pem" "$TMP/p1.pem" && cp "$C/server.key" "$TMP/p1.key" && kill -HUP "$pid1"
wait_for 10 reloaded 2
out=$("$M" "$U1" -c "SELECT count(*) FROM t" 2>&1)
check "SIGHUP after the renewal: verified again by 127.0.0.1 ($out)" [ "$out" = 2 ]

# ---- counted and warned -----------------------------------------------------
q() { "$M" "$U1&consistency=none" -c "$1" 2>>"$TMP/q.err"; } # mtr_stats: one replica's own state
stat() { q "SELECT max(value) FROM mtr_stats WHERE process LIKE 'proxy $1@%' AND name = 'proxy.tls.$2'"; }
counted() { [ "$(stat 256 plain_refused)" -ge 1 ] 2>/dev/null && [ "$(stat 256 handshake_failed)" -ge 1 ] 2>/dev/null &&
	[ "$(stat 257 unexpected)" -ge 1 ] 2>/dev/null && [ "$(stat 256 handshakes)" -ge 5 ] 2>/dev/null; }
wait_for 15 counted
check "mtr_stats: p1 counts plain_refused $(stat 256 plain_refused), handshake_failed $(stat 256 handshake_failed), handshakes $(stat 256 handshakes); p2 unexpected $(stat 257 unexpected)" counted
if command -v curl >/dev/null; then
	m=$(curl -s -m 5 "http://127.0.0.1:$((BASE + 14))/metrics" | grep -E '^metronome_proxy_tls_(plain_refused|handshakes)_total [1-9]')
	check "/metrics of p1 has the TLS counters ($(echo $m))" [ "$(echo "$m" | grep -c .)" = 2 ]
else
	ok "# SKIP no curl for /metrics"
fi
check "p1 warns of the refused plain client" grep -q "WARN.*plain TCP refused: proxy.tls = require (proxy.tls.plain_refused" "$TMP/p1.log"
warned_alert() {
	grep -q "WARN.*TLS handshake failed: .*(proxy.tls.handshake_failed; more" "$TMP/p1.log" &&
		grep -q "TLS handshake failed: .*alert" "$TMP/p1.log"
}
check "p1 warns of a failed handshake, and logs OpenSSL's reason (the client's alert)" warned_alert
check "p2 warns of the TLS client it cannot serve" grep -q "WARN.*a TLS ClientHello refused: proxy.tls = off" "$TMP/p2.log"

# ---- a login over TLS (issue 12: users and TLS together) ---------------------
# p4 requires TLS and a login: mtrsql asks for the password (tmux), reads
# MTR_PASSWORD, and a wrong password or clear TCP gets a clear error
PW4='tls-and-login'
printf '%s\n' "$PW4" | "$B/src/mtrproxy" --hash-password alice >"$TMP/users4" 2>/dev/null
chmod 600 "$TMP/users4"
P4=$((BASE + 15))
proxy_conf "$TMP" 4 "$servers" $P4
printf 'proxy.tls_cert = %s\nproxy.tls_key = %s\nproxy.users = %s\n' "$C/server.pem" "$C/server.key" "$TMP/users4" \
	>>"$TMP/p4.conf"
spawn "$TMP/p4.log" "$B/src/mtrproxy" -c "$TMP/p4.conf" >/dev/null
wait_for 10 grep -q "listening on" "$TMP/p4.log"
U4="mtr://alice@127.0.0.1:$P4?tls=require&ca=$C/ca.pem"
out=$(MTR_PASSWORD="$PW4" "$M" "$U4" -c "SELECT count(*) FROM t" 2>&1)
check "TLS and a login (MTR_PASSWORD): alice reads ($out)" [ "$out" = 2 ]
err=$(MTR_PASSWORD=wrong "$M" "$U4" -c "SELECT 1" 2>&1)
check "TLS and a wrong password: 'authentication failed for user alice'" has "$err" 'authentication failed for user alice'
err=$(MTR_PASSWORD="$PW4" "$M" "mtr://alice@127.0.0.1:$P4" -c "SELECT 1" 2>&1)
check "a login over clear TCP to p4: 'this proxy requires TLS'" has "$err" 'this proxy requires TLS'
if command -v tmux >/dev/null 2>&1; then
	SOCK="mtrtls$$"
	at_exit 'tmux -L "$SOCK" kill-server 2>/dev/null'
	tmux -L "$SOCK" new-session -d -s t -x 200 -y 20 \
		"env -u MTR_PASSWORD '$M' '$U4' -c 'SELECT 40 + 2'; echo EXIT=\$?; sleep 30"
	prompted() { tmux -L "$SOCK" capture-pane -p -t t | grep -q 'Password for alice:'; }
	wait_for 10 prompted
	tmux -L "$SOCK" send-keys -t t -l "$PW4"
	tmux -L "$SOCK" send-keys -t t Enter
	answered() { tmux -L "$SOCK" capture-pane -p -t t | grep -q '^EXIT=0'; }
	wait_for 15 answered
	tls_prompt_ok() { prompted && answered && tmux -L "$SOCK" capture-pane -p -t t | grep -q '^42$' &&
		! tmux -L "$SOCK" capture-pane -p -t t | grep -qF "$PW4"; }
	check "mtrsql '$(echo "$U4" | sed "s|$C/||")' prompts for the password, connects over TLS, answers 42" tls_prompt_ok
	tls_prompt_ok || tmux -L "$SOCK" capture-pane -p -t t | sed 's/^/#   /'
else
	ok "# SKIP no tmux for the password prompt"
fi
auth_counted() { [ "$(q "SELECT max(value) FROM mtr_stats WHERE process LIKE 'proxy 259@%' AND name = 'proxy.drop.client_auth_failed'")" -ge 1 ] 2>/dev/null; }
wait_for 10 auth_counted
check "p4 counts the failed login (proxy.drop.client_auth_failed)" auth_counted

# ---- the end: every replica equal -------------------------------------------
rows=$("$M" "$U1" -c "SELECT count(*) FROM t" 2>&1)
check "the cluster still answers ($rows rows)" [ "$rows" = 2 ]
digests=$(replica_digests "$TMP")
echo "$digests" | sed "s|$TMP/||; s/^/# /"
check "every replica has the same instance, digest and row count" equal_digests "$digests"
