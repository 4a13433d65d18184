/*
 * testutil_fs.h - a real full disk for unit tests: a small tmpfs in a mount
 * namespace of the test's own (forked) process, and a file that fills it.
 * Header-only like testutil.h; needs _GNU_SOURCE (config.h) for unshare.
 */
#ifndef MTR_TESTUTIL_FS_H
#define MTR_TESTUTIL_FS_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/*
 * Mount a tmpfs of `kib` KiB on dir, in a new mount namespace of the calling
 * process (in a new user namespace too when not root), so nothing outside
 * the process sees it and it goes when the process ends.  Call it in a
 * forked child.  0, or -1 when this machine allows neither (skip then).
 */
static inline int testutil_small_fs(const char *dir, unsigned kib)
{
	if (geteuid() != 0) {
		unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
			return -1;
		const char *files[3] = {"/proc/self/setgroups", "/proc/self/uid_map", "/proc/self/gid_map"};
		for (int i = 0; i < 3; i++) {
			char map[64];
			if (i == 0)
				snprintf(map, sizeof map, "deny");
			else
				snprintf(map, sizeof map, "0 %u 1", i == 1 ? uid : gid);
			int fd = open(files[i], O_WRONLY);
			int ok = fd >= 0 && write(fd, map, strlen(map)) == (ssize_t)strlen(map);
			if (fd >= 0)
				close(fd);
			if (!ok && i > 0) /* setgroups is missing on old kernels */
				return -1;
		}
	} else if (unshare(CLONE_NEWNS) != 0) {
		return -1;
	}
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -1;
	char opt[64];
	snprintf(opt, sizeof opt, "size=%uk", kib);
	return mount("tmpfs", dir, "tmpfs", 0, opt);
}

/* Write zeros to path until its file system is full.  0 when it ended with
 * ENOSPC, -1 on another error. */
static inline int testutil_fill(const char *path)
{
	static const char zero[16384];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return errno == ENOSPC ? 0 : -1;
	for (;;) {
		if (write(fd, zero, sizeof zero) < 0) {
			int e = errno;
			close(fd);
			return e == ENOSPC ? 0 : -1;
		}
	}
}

#endif
