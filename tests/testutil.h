/*
 * testutil.h - small helpers shared by unit tests, fuzz targets and
 * benchmarks: a fresh temporary directory and its removal.  Header-only so
 * that the fuzz targets, built outside the normal build, can use it too.
 */
#ifndef MTR_TESTUTIL_H
#define MTR_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

/* Make a new directory $TMPDIR/NAME-XXXXXX (/tmp without TMPDIR) and write
 * its path into buf.  Returns 0, or -1 with errno set. */
static inline int testutil_mkdtemp(char *buf, size_t size, const char *name)
{
	const char *t = getenv("TMPDIR");
	if ((size_t)snprintf(buf, size, "%s/%s-XXXXXX", t && *t ? t : "/tmp", name) >= size)
		return -1;
	return mkdtemp(buf) ? 0 : -1;
}

static inline int testutil__rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	return remove(p);
}

/* Remove path and everything below it, like rm -rf.  0 or -1. */
static inline int testutil_rmtree(const char *path)
{
	return nftw(path, testutil__rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
