/*
 * localcluster.h - the local cluster of the Quick start: a few metronomed
 * servers and one mtrproxy on loopback, with all their files under one
 * directory, started on demand and found again by the next run.
 *
 * mtrsql without an address, mtrslt without a URI and the tests use it.
 * Layout of the directory (doc/client.md, "Embedded mode"):
 *
 *   server-I.conf, server-I/ (data), server-I.log, server-I.pid   I = 0..N-1
 *   proxy.conf, proxy.log, proxy.pid
 *   uri                          the client URI of the proxy (one line)
 *
 * The configuration files are written at the first start (with a random
 * cluster key, mode 0600) and reused afterwards, so a second run attaches
 * to the processes of the first if they are alive, or restarts them on the
 * same data.  Not thread-safe; one caller at a time per directory.
 */
#ifndef MTR_LOCALCLUSTER_H
#define MTR_LOCALCLUSTER_H

#include <limits.h>
#include <stdint.h>

#define LOCALCLUSTER_MAX_SERVERS 7

struct localcluster {
	char dir[PATH_MAX];    /* the directory (created if missing) */
	char bindir[PATH_MAX]; /* where metronomed and mtrproxy were found */
	unsigned nservers;     /* servers (default 3) */
	uint16_t proxy_port;   /* TCP port of the proxy (default 7400) */
	uint16_t server_port;  /* UDP port of server 0 (default 7501; server I: +I) */
	int started;           /* 1 when localcluster_up started any process */
	char uri[128];         /* the client URI after localcluster_up */
};

/*
 * Fill lc with defaults: dir from dir, else $MTR_LOCAL_DIR, else
 * $XDG_DATA_HOME/metronome/local, else $HOME/.local/share/metronome/local;
 * ports from $MTR_LOCAL_PORT (the proxy's; servers use the next ones) when
 * set; binaries from bindir, else $MTR_BINDIR, else next to the running
 * program (its directory, and ../src for the build tree), else $PATH.
 * 0 or MTR_EINVAL (no directory can be derived, bad MTR_LOCAL_PORT).
 */
int localcluster_init(struct localcluster *lc, const char *dir, const char *bindir);

/*
 * Attach to the cluster of lc->dir, starting whatever is not running:
 * writes the configuration at the first use, starts missing processes
 * detached from the caller (their own session; output to the .log files),
 * and waits up to timeout_ms until the proxy accepts connections.  Fills
 * lc->uri and lc->started.  0; MTR_ENOENT (a binary not found), MTR_EIO
 * (cannot create files, a process exited at once: see its log),
 * MTR_ETIMEDOUT, MTR_EEXIST (the port is taken by something that is not
 * this cluster).  err (may be NULL) gets a sentence saying what to do.
 */
int localcluster_up(struct localcluster *lc, int timeout_ms, char *err, size_t errlen);

/* Stop every process of the cluster (SIGTERM, then SIGKILL after
 * timeout_ms) and remove the pid files.  The data stays.  0 or MTR_EIO. */
int localcluster_down(struct localcluster *lc, int timeout_ms);

/* 1 when every process named in the pid files is alive, else 0. */
int localcluster_running(const struct localcluster *lc);

#endif
