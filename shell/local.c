/*
 * local.c - the local cluster as mtrsql uses it (shell.h): attach to it,
 * starting what is not running (src/client/localcluster.h), and at exit
 * stop only what this shell started.
 *
 * localcluster_up says only whether it started anything, and
 * localcluster_down stops every process named in the pid files.  So the
 * shell reads the pid files itself before and after starting: a process
 * alive afterwards whose pid file named no live process before is this
 * shell's.  When it started all of them it stops the cluster with
 * localcluster_down (proxy first, the servers once their replicas agree);
 * when it started only some (it found the cluster half-dead), it stops
 * those alone and leaves the others to whoever started them.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "shell.h"

/* The pid file of process i (the servers 0..N-1, then the proxy) and the
 * program it must run. */
static const char *pid_path(const struct localcluster *lc, unsigned i, char *buf, size_t n)
{
	if (i < lc->nservers) {
		snprintf(buf, n, "%s/server-%u.pid", lc->dir, i);
		return "metronomed";
	}
	snprintf(buf, n, "%s/proxy.pid", lc->dir);
	return "mtrproxy";
}

/* The pid named in process i's pid file if that process exists (0: none). */
static pid_t named(const struct localcluster *lc, unsigned i)
{
	char path[PATH_MAX + 32];
	pid_path(lc, i, path, sizeof path);
	FILE *f = fopen(path, "r");
	long pid = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid > 1 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

/* The live pid named in process i's pid file, if it runs its program (a
 * pid found, not started here, may have been recycled). */
static pid_t live(const struct localcluster *lc, unsigned i)
{
	char path[PATH_MAX + 32], cmd[PATH_MAX];
	const char *prog = pid_path(lc, i, path, sizeof path);
	long pid = named(lc, i);
	if (!pid)
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
	if (f)
		fclose(f);
	cmd[n] = 0;
	const char *base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
	return n && !strcmp(base, prog) ? (pid_t)pid : 0;
}

int local_up(struct shell *sh)
{
	struct localcluster *lc = &sh->lc;
	if (localcluster_init(lc, NULL, NULL)) {
		fprintf(stderr, "mtrsql: no directory for the local cluster; set MTR_LOCAL_DIR or HOME\n");
		return -1;
	}
	unsigned n = lc->nservers + 1;
	pid_t before[LOCALCLUSTER_MAX_SERVERS + 1];
	for (unsigned i = 0; i < n; i++)
		before[i] = live(lc, i);
	char err[600];
	int rc = localcluster_up(lc, 30000, err, sizeof(err));
	/* a pid of ours is that of a child of this process: no other process
	 * can have it until we reap it (and it may not have reached exec yet,
	 * so its command line is not checked) */
	for (unsigned i = 0; i < n; i++) {
		pid_t p = named(lc, i);
		sh->own[i] = p && p != before[i] && waitpid(p, NULL, WNOHANG) == 0 ? p : 0;
	}
	sh->local = 1;
	if (rc) {
		fprintf(stderr, "mtrsql: local cluster: %s\n", err);
		local_down(sh);
		return -1;
	}
	unsigned mine = 0;
	for (unsigned i = 0; i < n; i++)
		mine += sh->own[i] != 0;
	/* a notice, not a warning: MTR_LOG=warn or error leaves it out */
	int quiet = log_level_from_env() && log_threshold < LOG_INFO;
	if (!quiet && mine && mine < n)
		fprintf(stderr, "mtrsql: attached to the local cluster in %s (restarted %u of its %u processes)\n", lc->dir,
			mine, n);
	else if (!quiet)
		fprintf(stderr, "mtrsql: %s the local cluster in %s\n", mine ? "started" : "attached to", lc->dir);
	snprintf(sh->uri, sizeof(sh->uri), "%s", lc->uri);
	return 0;
}

void local_down(struct shell *sh)
{
	struct localcluster *lc = &sh->lc;
	if (!sh->local)
		return;
	sh->local = 0;
	unsigned n = lc->nservers + 1, mine = 0, all = 1;
	for (unsigned i = 0; i < n; i++) {
		mine += sh->own[i] != 0;
		all &= sh->own[i] != 0 && named(lc, i) == sh->own[i];
	}
	if (!mine || sh->keep)
		return;
	if (all) {
		localcluster_down(lc, 15000);
		fprintf(stderr, "mtrsql: stopped the local cluster (data kept in %s)\n", lc->dir);
		return;
	}
	/* only ours, proxy first; a pid file still naming ours is removed */
	for (unsigned k = 0; k < n; k++) {
		unsigned i = n - 1 - k;
		pid_t p = sh->own[i];
		if (!p || named(lc, i) != p)
			continue;
		kill(p, SIGTERM);
		/* a child of this process: reaped here, or it stays a zombie */
		int st, gone = 0;
		for (int waited = 0; !gone && waited < 10000; waited += 20) {
			gone = waitpid(p, &st, WNOHANG) == p || kill(p, 0) != 0;
			if (!gone)
				nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
		}
		if (!gone) {
			kill(p, SIGKILL);
			waitpid(p, &st, 0);
		}
		char path[PATH_MAX + 32];
		pid_path(lc, i, path, sizeof path);
		unlink(path);
		fprintf(stderr, "mtrsql: stopped %s (pid %ld), which this shell had started\n",
			i < lc->nservers ? "a server" : "the proxy", (long)p);
	}
}
