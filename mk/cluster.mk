# cluster: the cluster integration test (issue 4's "Done when") and its tools.
noinst_PROGRAMS += tests/tools/mtrdigest
tests_tools_mtrdigest_SOURCES = tests/tools/mtrdigest.c

TESTS += tests/integration/cluster.sh
EXTRA_DIST += tests/integration/cluster.sh

# a write resent through a second proxy is applied once (issue 5)
TESTS += tests/integration/failover.sh
EXTRA_DIST += tests/integration/failover.sh

# the sqllogictest corpus through a real 3-server cluster (issue 5)
TESTS += tests/integration/slt_cluster.sh
EXTRA_DIST += tests/integration/slt_cluster.sh

# mtrbench e2e: the whole cluster against plain SQLite (doc/performance.md)
tests_bench_mtrbench_SOURCES += tests/bench/bench_e2e.c
