# tests: unit tests (cmocka, one per module, tests/unit/test_MODULE.c linked
# with LDADD of Makefile.am), the tools the integration suites drive, the
# sqllogictest runner, mtrbench, and the integration suites (TAP scripts).
EXTRA_DIST += tests/testutil.h tests/testutil_fs.h tests/bench/e2e_netns.sh
SLT_CORE = tests/slt/slt.c tests/slt/slt.h tests/slt/md5.c tests/slt/md5.h
# the differential test's SQL generator (no I/O; mtrslt --gen, test_sql_slt)
SLT_GEN = tests/slt/gen.c tests/slt/gen.h

# ---- unit tests, by library --------------------------------------------
if HAVE_CMOCKA
UNIT_TESTS = tests/unit/test_error tests/unit/test_conf tests/unit/test_metrics \
	tests/unit/test_wire tests/unit/test_wire_server tests/unit/test_result tests/unit/test_cproto \
	tests/unit/test_transport \
	tests/unit/test_sql \
	tests/unit/test_proxy_item tests/unit/test_outbuf tests/unit/test_proxy tests/unit/test_tlsconn \
	tests/unit/test_batch tests/unit/test_paxos_sim tests/unit/test_pstore tests/unit/test_seglog \
	tests/unit/test_ingest tests/unit/test_reasm tests/unit/test_apply tests/unit/test_detvfs tests/unit/test_walbuf \
	tests/unit/test_pitr \
	tests/unit/test_clustervt tests/unit/test_server
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
# test_server fails chosen writes as a full disk would (test_paxos_log_full)
tests_unit_test_server_LDFLAGS = -Wl,--wrap=pwrite
if HAVE_DPDK
check_PROGRAMS += tests/unit/test_netpkt tests/unit/test_transport_dpdk
TESTS += tests/unit/test_netpkt tests/unit/test_transport_dpdk
endif

# the client links the library the way an application does
check_PROGRAMS += tests/unit/test_client
TESTS += tests/unit/test_client
tests_unit_test_client_LDADD = $(CLIENT_PROGRAM_LIBS) $(CMOCKA_LIBS)
tests_unit_test_client_LDFLAGS = $(CLIENT_STATIC)

# mtrslt's parser and the SQLite backend; needs nothing of ours
check_PROGRAMS += tests/unit/test_slt
TESTS += tests/unit/test_slt
tests_unit_test_slt_SOURCES = tests/unit/test_slt.c tests/slt/backend.h tests/slt/backend_sqlite.c $(SLT_CORE)
tests_unit_test_slt_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/slt
tests_unit_test_slt_LDADD = $(SQLITE_LIBS) $(CMOCKA_LIBS) -lm
endif

# the SQL front end against sqlite3 over the generated statements, tests/sql
# and the sqllogictest corpus when present (plain TAP; no cmocka)
check_PROGRAMS += tests/unit/test_sql_slt
TESTS += tests/unit/test_sql_slt
tests_unit_test_sql_slt_SOURCES = tests/unit/test_sql_slt.c $(SLT_GEN)
tests_unit_test_sql_slt_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/slt
tests_unit_test_sql_slt_LDADD = $(SQL_LIBS) $(SQLITE_LIBS)
EXTRA_DIST += tests/sql

# ---- tools the suites drive --------------------------------------------
# the example of doc/client.md (run against a cluster by cluster.sh)
check_PROGRAMS += examples/example
examples_example_SOURCES = examples/example.c
examples_example_LDADD = $(CLIENT_PROGRAM_LIBS)
examples_example_LDFLAGS = $(CLIENT_STATIC)

# mtrload: the load generator (integration tests, mtrbench e2e)
noinst_PROGRAMS += tests/tools/mtrload
tests_tools_mtrload_SOURCES = tests/tools/mtrload.c tests/tools/toolutil.h
tests_tools_mtrload_LDADD = $(CLIENT_PROGRAM_LIBS)
tests_tools_mtrload_LDFLAGS = $(CLIENT_STATIC)

# mtrbank: the transactional bank workload with linearizable readers (faults.sh)
noinst_PROGRAMS += tests/tools/mtrbank
tests_tools_mtrbank_SOURCES = tests/tools/mtrbank.c tests/tools/toolutil.h
tests_tools_mtrbank_LDADD = $(CLIENT_PROGRAM_LIBS)
tests_tools_mtrbank_LDFLAGS = $(CLIENT_STATIC)

# mtrnfq: delay, reordering and bit flips on an NFQUEUE (faults.sh, where the
# kernel has no sch_netem)
if HAVE_NFQ
noinst_PROGRAMS += tests/tools/mtrnfq
tests_tools_mtrnfq_SOURCES = tests/tools/mtrnfq.c tests/tools/toolutil.h
tests_tools_mtrnfq_CFLAGS = $(AM_CFLAGS) $(NFQ_CFLAGS)
tests_tools_mtrnfq_LDADD = $(NFQ_LIBS)
endif

# the fake proxy (tests/tools/fakeproxy.h) as a process, for client.sh
check_PROGRAMS += tests/tools/mtrfakeproxy
tests_tools_mtrfakeproxy_SOURCES = tests/tools/mtrfakeproxy.c tests/tools/fakeproxy.h
tests_tools_mtrfakeproxy_LDADD = $(ALL_LIBS) -lm

# mtrryw: read-your-writes across connections (ryw.sh)
noinst_PROGRAMS += tests/tools/mtrryw
tests_tools_mtrryw_SOURCES = tests/tools/mtrryw.c
tests_tools_mtrryw_LDADD = $(CLIENT_PROGRAM_LIBS)
tests_tools_mtrryw_LDFLAGS = $(CLIENT_STATIC)

# mtrdigest: a replica file's digest (cluster.sh compares replicas)
noinst_PROGRAMS += tests/tools/mtrdigest
tests_tools_mtrdigest_SOURCES = tests/tools/mtrdigest.c
tests_tools_mtrdigest_LDADD = $(SERVER_LIBS) -lm

# mtrforge: crafted datagrams (forged, flooded, replayed) for hostile.sh;
# the proto library builds them, the Paxos codec the PAXOS payloads
noinst_PROGRAMS += tests/tools/mtrforge
tests_tools_mtrforge_SOURCES = tests/tools/mtrforge.c
tests_tools_mtrforge_LDADD = $(SERVER_LIBS) -lm

# mtrcproto: the client protocol spoken by hand (client_auth.sh)
noinst_PROGRAMS += tests/tools/mtrcproto
tests_tools_mtrcproto_SOURCES = tests/tools/mtrcproto.c
tests_tools_mtrcproto_LDADD = $(PROTO_LIBS)

# mtrdgram: the DPDK suite's sender/receiver (either transport)
if HAVE_DPDK
check_PROGRAMS += tests/integration/mtrdgram
tests_integration_mtrdgram_SOURCES = tests/integration/mtrdgram.c
tests_integration_mtrdgram_LDADD = $(DPDK_LA) $(NET_LIBS)
endif

# ---- mtrslt, the sqllogictest runner (doc/mtrslt.md) -------------------
check_PROGRAMS += tests/slt/mtrslt
tests_slt_mtrslt_SOURCES = tests/slt/mtrslt.c tests/slt/backend.h tests/slt/backend_sqlite.c \
	tests/slt/backend_mtr.c tests/slt/difftest.c tests/slt/difftest.h $(SLT_GEN) $(SLT_CORE)
tests_slt_mtrslt_LDADD = $(CLIENT_PROGRAM_LIBS)
tests_slt_mtrslt_LDFLAGS = $(CLIENT_STATIC) -no-install
EXTRA_DIST += doc/mtrslt.md
# sltproxy: a stand-in proxy (client protocol in front of one in-memory
# SQLite) so that the Metronome backend can be tested without the daemons
check_PROGRAMS += tests/slt/sltproxy
tests_slt_sltproxy_SOURCES = tests/slt/sltproxy.c
tests_slt_sltproxy_LDADD = $(ALL_LIBS)

# ---- mtrbench: one subcommand per measurement (tests/bench/bench.h) -----
EXTRA_DIST += tests/bench/stages.sh tests/bench/pipeline_ab.sh tests/bench/reads_cpu.sh \
	tests/bench/writes_cpu.sh
noinst_PROGRAMS += tests/bench/mtrbench
tests_bench_mtrbench_SOURCES = tests/bench/mtrbench.c tests/bench/bench.h tests/bench/bench_wire.c \
	tests/bench/bench_transport.c tests/bench/bench_parse.c tests/bench/bench_pstore.c \
	tests/bench/bench_store.c tests/bench/bench_apply.c tests/bench/bench_proxy.c \
	tests/bench/bench_ingest.c tests/bench/bench_e2e.c
tests_bench_mtrbench_LDADD = $(ALL_LIBS) -lm

# ---- integration suites (TAP; each skips with a reason when it cannot run)
# One suite a line, so that additions do not touch each other's lines.
INTEGRATION_SUITES =
INTEGRATION_SUITES += tests/layers.sh
INTEGRATION_SUITES += tests/manpages.sh
INTEGRATION_SUITES += tests/integration/mtrparse.sh
INTEGRATION_SUITES += tests/integration/slt_sqlite.sh
INTEGRATION_SUITES += tests/integration/client.sh
INTEGRATION_SUITES += tests/integration/embedded.sh
INTEGRATION_SUITES += tests/integration/metronomed.sh
INTEGRATION_SUITES += tests/integration/cluster.sh
INTEGRATION_SUITES += tests/integration/failover.sh
INTEGRATION_SUITES += tests/integration/lost_results.sh
INTEGRATION_SUITES += tests/integration/slt_cluster.sh
INTEGRATION_SUITES += tests/integration/sql_diff.sh
INTEGRATION_SUITES += tests/integration/mtrsql.sh
INTEGRATION_SUITES += tests/integration/mtrsql_tmux.sh
INTEGRATION_SUITES += tests/integration/client_auth.sh
INTEGRATION_SUITES += tests/integration/mtrsql_sqlite.sh
INTEGRATION_SUITES += tests/integration/backup.sh
INTEGRATION_SUITES += tests/integration/pitr.sh
INTEGRATION_SUITES += tests/integration/install.sh
INTEGRATION_SUITES += tests/integration/stats.sh
INTEGRATION_SUITES += tests/integration/hostile.sh
INTEGRATION_SUITES += tests/integration/tls.sh
INTEGRATION_SUITES += tests/integration/apply_ioerr.sh
INTEGRATION_SUITES += tests/integration/apply_stress.sh
INTEGRATION_SUITES += tests/integration/budget.sh
INTEGRATION_SUITES += tests/integration/read_cancel.sh
INTEGRATION_SUITES += tests/integration/leader.sh
INTEGRATION_SUITES += tests/integration/membership.sh
INTEGRATION_SUITES += tests/integration/ryw.sh
INTEGRATION_SUITES += tests/integration/diskfull.sh
INTEGRATION_SUITES += tests/integration/faults.sh
INTEGRATION_SUITES += tests/integration/metrics.sh
INTEGRATION_SUITES += tests/integration/deploy.sh
TESTS += $(INTEGRATION_SUITES)
if HAVE_DPDK
TESTS += tests/integration/dpdk_netns.sh
endif
# not in TESTS: the long check over the sqllogictest corpus (doc/mtrslt.md)
EXTRA_DIST += $(INTEGRATION_SUITES) tests/integration/promcheck.awk tests/integration/dpdk_netns.sh tests/integration/slt_index_long.sh
# the fault suite's guide
EXTRA_DIST += doc/faults.md

# The TAP driver every suite runs under (LOG_DRIVER in Makefile.am) must be
# in the tarball for `make distcheck`; setup.sh copies it into build-aux/.
EXTRA_DIST += build-aux/tap-driver.sh
