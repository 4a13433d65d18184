# apply: the replica's apply side (doc/apply.md): deterministic VFS/functions,
# logical digest, cluster virtual tables, instance apply.
libmtrcore_la_SOURCES += src/apply.c src/apply.h src/detvfs.c src/detvfs.h \
	src/digest.c src/digest.h src/clustervt.c src/clustervt.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_apply
TESTS += tests/unit/test_apply
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_detvfs
TESTS += tests/unit/test_detvfs
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_clustervt
TESTS += tests/unit/test_clustervt
endif

# mtrbench apply: items/s applied (doc/apply.md).
tests_bench_mtrbench_SOURCES += tests/bench/bench_apply.c

# issue 18: the corpus's DROP-between-files pattern through a 3-server
# cluster (temporary-file race, I/O errors in apply), without the corpus.
TESTS += tests/integration/apply_ioerr.sh
EXTRA_DIST += tests/integration/apply_ioerr.sh

# issue 18: indexed tables dropped and recreated under concurrent reads on
# every replica, digests compared after every round (about a minute).
TESTS += tests/integration/apply_stress.sh
EXTRA_DIST += tests/integration/apply_stress.sh tests/integration/slt_index_long.sh
