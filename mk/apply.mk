# apply: the replica's apply side (doc/apply.md): deterministic VFS/functions,
# logical digest, cluster virtual tables, instance apply.
libmtrcore_la_SOURCES += src/apply.c src/apply.h src/detvfs.c src/detvfs.h \
	src/digest.c src/digest.h src/clustervt.c src/clustervt.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_apply
TESTS += tests/unit/test_apply
tests_unit_test_apply_SOURCES = tests/unit/test_apply.c
tests_unit_test_apply_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_apply_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_detvfs
TESTS += tests/unit/test_detvfs
tests_unit_test_detvfs_SOURCES = tests/unit/test_detvfs.c
tests_unit_test_detvfs_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_detvfs_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_clustervt
TESTS += tests/unit/test_clustervt
tests_unit_test_clustervt_SOURCES = tests/unit/test_clustervt.c
tests_unit_test_clustervt_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_clustervt_LDADD = $(CORE_LIBS) $(CMOCKA_LIBS)
endif

# mtrbench apply: items/s applied (doc/apply.md).
tests_bench_mtrbench_SOURCES += tests/bench/bench_apply.c
