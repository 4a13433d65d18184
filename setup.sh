#!/bin/sh
# setup.sh - build Metronome from a fresh Debian 12 checkout, and run it or test it.
#
#   ./setup.sh          install missing packages, bootstrap, configure, build (build/)
#   ./setup.sh run      the above, then start a local cluster with the mtrsql shell
#   ./setup.sh test     the above, then every test suite: unit + integration (build/),
#                       the same under ASan+UBSan (build-asan/), bounded fuzz runs;
#                       ends with one line "N passed, N failed"
#
# Packages are installed with apt-get when running as root; otherwise the exact
# apt-get line is printed and the script stops.  Environment: JOBS (parallel
# make jobs, default: number of cores), FUZZ_SECONDS (per fuzz target, default 10).
set -eu

cd "$(dirname "$0")"
TOP=$(pwd)
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

PACKAGES="build-essential autoconf automake libtool pkg-config autoconf-archive groff-base \
libsqlite3-dev libreadline-dev lemon libcmocka-dev libxxhash-dev libsodium-dev libssl-dev dpdk-dev libdpdk-dev \
iproute2 clang sqlite3 tmux iptables libnetfilter-queue-dev libmicrohttpd-dev curl systemd openssl strace"

say() { printf 'setup: %s\n' "$*" >&2; }

deps() {
	missing=""
	for p in $PACKAGES; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$st" in *" installed") ;; *) missing="$missing $p" ;; esac
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" = 0 ]; then
		say "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >&2
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $missing >&2
	else
		say "missing Debian packages:$missing"
		say "run as root:  apt-get install -y$missing"
		exit 1
	fi
}

bootstrap() {
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ ! -f build-aux/tap-driver.sh ] ||
		[ -n "$(find . -name Makefile.am -newer configure -o -name '*.mk' -newer configure | head -1)" ]; then
		say "bootstrapping (autoreconf -fi)"
		mkdir -p build-aux m4
		autoreconf -fi >&2
		cp -f "$(automake --print-libdir)/tap-driver.sh" build-aux/tap-driver.sh
	fi
}

# build DIR [configure options...]
build() {
	dir=$1
	shift
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/config.status" ]; then
		say "configuring $dir $*"
		(cd "$dir" && "$TOP/configure" -q "$@" >&2)
	fi
	say "building $dir"
	make -C "$dir" -j"$JOBS" -s >&2
}

# Sum the automake test logs given; prints "P F S X" (X: expected failures,
# TAP "not ok # TODO": known gaps, shown in the closing line, never hidden).
count() {
	awk '/^# PASS:/ {p += $3} /^# SKIP:/ {s += $3} /^# (FAIL|XPASS|ERROR):/ {f += $3} /^# XFAIL:/ {x += $3}
	     END {printf "%d %d %d %d\n", p, f, s, x}' "$@" /dev/null
}

cmd_test() {
	deps
	bootstrap
	failed_builds=0
	logs=""
	# 1. the normal build: unit and integration suites
	if build build; then
		rm -f build/test-suite.log
		make -C build -j"$JOBS" check >&2 || true
		if [ -f build/test-suite.log ]; then
			logs="$logs build/test-suite.log"
		else
			say "FAILED: the tests of build/ did not run (a test program failed to build: see above)"
			failed_builds=$((failed_builds + 1))
		fi
	else
		say "FAILED: build"; failed_builds=$((failed_builds + 1))
	fi
	# 2. ASan + UBSan build of the same tests
	if build build-asan --enable-sanitize --enable-debug; then
		rm -f build-asan/test-suite.log
		ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
			MTR_SANITIZE=1 make -C build-asan -j"$JOBS" check >&2 || true
		if [ -f build-asan/test-suite.log ]; then
			logs="$logs build-asan/test-suite.log"
		else
			say "FAILED: the tests of build-asan/ did not run (a test program failed to build: see above)"
			failed_builds=$((failed_builds + 1))
		fi
	else
		say "FAILED: sanitizer build"; failed_builds=$((failed_builds + 1))
	fi
	# 3. libFuzzer targets: a bounded run of each over its corpus
	fz_pass=0 fz_fail=0
	if command -v clang >/dev/null 2>&1 && make -C build -s fuzz >&2; then
		for f in build/tests/fuzz/fuzz_*; do
			[ -x "$f" ] || continue
			name=$(basename "$f")
			corpus="$TOP/tests/fuzz/corpus/${name#fuzz_}"
			work=$(mktemp -d)
			[ -d "$corpus" ] && cp -r "$corpus/." "$work/" 2>/dev/null || true
			if "$f" -max_total_time="${FUZZ_SECONDS:-10}" -timeout=10 -rss_limit_mb=2048 \
				-artifact_prefix="build/$name-" \
				-print_final_stats=1 "$work" >"build/$name.log" 2>&1; then
				say "PASS: $name ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "build/$name.log" | grep -o '[0-9]*$') runs)"
				fz_pass=$((fz_pass + 1))
			else
				say "FAIL: $name (see build/$name.log)"; tail -30 "build/$name.log" >&2
				fz_fail=$((fz_fail + 1))
			fi
			rm -rf "$work"
		done
	else
		say "FAILED: make fuzz"; failed_builds=$((failed_builds + 1))
	fi
	# shellcheck disable=SC2086
	set -- $(count $logs)
	passed=$(($1 + fz_pass))
	failed=$(($2 + fz_fail + failed_builds))
	# name the failures (with the end of their logs) before the closing line
	for l in $logs; do
		find "$(dirname "$l")/tests" -name '*.trs' 2>/dev/null | while read -r trs; do
			if grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
				say "failed: ${trs%.trs} ($(grep -cE '^:test-result: (FAIL|ERROR|XPASS)' "$trs") cases)"
				grep -E '^(not ok|Bail out)' "${trs%.trs}.log" | head -10 >&2 || true
			fi
		done
	done
	for l in $logs; do
		find "$(dirname "$l")/tests" -name '*.trs' 2>/dev/null | while read -r trs; do
			if grep -q '^:test-result: XFAIL' "$trs"; then grep -h '^not ok.*# TODO' "${trs%.trs}.log" | sed 's/^/known gap: /' >&2 || true; fi
		done
	done
	echo "$passed passed, $failed failed, $3 skipped, $4 known gaps (TODO)"
	[ "$failed" -eq 0 ]
}

cmd_run() {
	deps
	bootstrap
	build build
	if [ -x build/shell/mtrsql ]; then
		exec build/shell/mtrsql "$@"
	fi
	say "the server (metronomed) and the shell (mtrsql) are not built yet;"
	say "what exists: build/sql/mtrparse (classify SQL), build/tests/bench/mtrbench"
	if [ -x build/sql/mtrparse ]; then
		say "reading SQL from standard input into mtrparse"
		exec build/sql/mtrparse
	fi
}

case "${1:-build}" in
build) deps; bootstrap; build build ;;
run) shift; cmd_run "$@" ;;
test) cmd_test ;;
deps) deps ;;
*) echo "usage: $0 [build|run|test|deps]" >&2; exit 2 ;;
esac
