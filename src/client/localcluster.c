/*
 * localcluster.c - start, find again and stop the local cluster of the
 * Quick start (localcluster.h).
 *
 * Processes are started detached (setsid, output appended to their log
 * files) so that they may outlive the program that started them; the pid
 * files are the only link back to them.  A pid counts as ours only if the
 * process is alive and runs the expected program (/proc/PID/cmdline), so a
 * recycled pid is never signalled.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clusterconf.h"
#include "localcluster.h"
#include "log.h"
#include "metronome.h"
#include "util.h"

#define LC_SERVER "metronomed"
#define LC_PROXY "mtrproxy"


static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int is_exec(const char *dir, const char *name)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p))
		return 0;
	return access(p, X_OK) == 0;
}

/* A directory holding both binaries: candidates in order, then $PATH. */
static int find_bindir(struct localcluster *lc, const char *bindir)
{
	char cand[4][PATH_MAX];
	int n = 0;
	if (bindir && *bindir)
		snprintf(cand[n++], PATH_MAX, "%s", bindir);
	const char *env = getenv("MTR_BINDIR");
	if (env && *env)
		snprintf(cand[n++], PATH_MAX, "%s", env);
	char self[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (k > 0) {
		self[k] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(cand[n++], PATH_MAX, "%s", self);
			/* build tree: shell/mtrsql, tests/slt/mtrslt next to src/ */
			snprintf(cand[n++], PATH_MAX, "%.*s/../src", PATH_MAX - 8, self);
		}
	}
	for (int i = 0; i < n; i++)
		if (is_exec(cand[i], LC_SERVER) && is_exec(cand[i], LC_PROXY)) {
			snprintf(lc->bindir, sizeof(lc->bindir), "%s", cand[i]);
			return 0;
		}
	const char *path = getenv("PATH");
	if (path) {
		char buf[4096];
		snprintf(buf, sizeof(buf), "%s", path);
		char *save = NULL;
		for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save))
			if (is_exec(d, LC_SERVER) && is_exec(d, LC_PROXY)) {
				snprintf(lc->bindir, sizeof(lc->bindir), "%s", d);
				return 0;
			}
	}
	lc->bindir[0] = 0;
	return 0; /* reported by localcluster_up, which needs them */
}

int localcluster_init(struct localcluster *lc, const char *dir, const char *bindir)
{
	memset(lc, 0, sizeof(*lc));
	lc->nservers = 3;
	lc->proxy_port = 7400;
	lc->server_port = 7501;
	const char *env;
	int n;
	if (dir && *dir)
		n = snprintf(lc->dir, sizeof(lc->dir), "%s", dir);
	else if ((env = getenv("MTR_LOCAL_DIR")) && *env)
		n = snprintf(lc->dir, sizeof(lc->dir), "%s", env);
	else if ((env = getenv("XDG_DATA_HOME")) && *env)
		n = snprintf(lc->dir, sizeof(lc->dir), "%s/metronome/local", env);
	else if ((env = getenv("HOME")) && *env)
		n = snprintf(lc->dir, sizeof(lc->dir), "%s/.local/share/metronome/local", env);
	else
		return MTR_EINVAL;
	if (n >= (int)sizeof(lc->dir) - 32)
		return MTR_EINVAL;
	if ((env = getenv("MTR_LOCAL_PORT")) && *env) {
		char *end;
		long p = strtol(env, &end, 10);
		if (*end || p < 1024 || p > 65535 - 1 - LOCALCLUSTER_MAX_SERVERS)
			return MTR_EINVAL;
		lc->proxy_port = (uint16_t)p;
		lc->server_port = (uint16_t)(p + 1);
	}
	return find_bindir(lc, bindir);
}

/* DIR/server-I.EXT, or DIR/proxy.EXT when i < 0, or DIR/EXT when ext has no
 * dot and i < 0 ("uri"). */
static void path_of(const struct localcluster *lc, char *buf, size_t n, int i, const char *ext)
{
	if (i >= 0)
		snprintf(buf, n, "%s/server-%d%s", lc->dir, i, ext);
	else if (ext[0] == '.')
		snprintf(buf, n, "%s/proxy%s", lc->dir, ext);
	else
		snprintf(buf, n, "%s/%s", lc->dir, ext);
}

/* mkdir -p */
static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(buf, 0755) && errno != EEXIST)
				return MTR_EIO;
			*p = '/';
		}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return MTR_EIO;
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return MTR_EIO;
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return MTR_EIO;
		}
		off += (size_t)w;
	}
	return close(fd) ? MTR_EIO : 0;
}

/* The configuration files, written once (kept if present: same key, same
 * data directories on every later start). */
static int write_configs(struct localcluster *lc, char *err, size_t errlen)
{
	char path[PATH_MAX + 64], common[1024], text[PATH_MAX + 1200];
	path_of(lc, path, sizeof(path), -1, ".conf");
	if (access(path, R_OK) == 0)
		return 0;
	/* a key per cluster: its datagrams are authenticated like any other's */
	char key[2 * WIRE_KEY_SIZE + 1];
	clusterconf_new_key(key);
	int n = snprintf(common, sizeof(common),
			 "# Written by the local cluster launcher at its first start; edit with care.\n"
			 "cluster.id = 1\ncluster.key = %s\n"
			 "# loopback carries datagrams up to the largest UDP payload: fewer sends\n"
			 "transport.mtu = %u\ncluster.servers = ",
			 key, WIRE_MAX_DGRAM);
	for (unsigned i = 0; i < lc->nservers; i++)
		n += snprintf(common + n, sizeof(common) - (size_t)n, "%s127.0.0.1:%u", i ? "," : "",
			      (unsigned)(lc->server_port + i));
	snprintf(common + n, sizeof(common) - (size_t)n, "\n");
	for (unsigned i = 0; i < lc->nservers; i++) {
		snprintf(text, sizeof(text), "%sserver.id = %u\ndata.dir = %s/server-%u\n", common, i, lc->dir, i);
		path_of(lc, path, sizeof(path), (int)i, ".conf");
		if (write_file(path, text)) {
			errbuf_set(err, errlen, "cannot write %s: %s", path, strerror(errno));
			return MTR_EIO;
		}
	}
	snprintf(text, sizeof(text), "%sproxy.listen = 127.0.0.1:%u\n", common, (unsigned)lc->proxy_port);
	path_of(lc, path, sizeof(path), -1, ".conf");
	if (write_file(path, text)) {
		errbuf_set(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return MTR_EIO;
	}
	return 0;
}

/* The pid in a pid file if that process is alive and runs prog, else 0. */
static pid_t live_pid(const char *pidfile, const char *prog)
{
	FILE *f = fopen(pidfile, "r");
	if (!f)
		return 0;
	long pid = 0;
	int ok = fscanf(f, "%ld", &pid) == 1;
	fclose(f);
	if (!ok || pid <= 1 || kill((pid_t)pid, 0))
		return 0;
	char p[64], cmd[512];
	snprintf(p, sizeof(p), "/proc/%ld/cmdline", pid);
	FILE *c = fopen(p, "r");
	if (!c)
		return 0;
	size_t n = fread(cmd, 1, sizeof(cmd) - 1, c);
	fclose(c);
	cmd[n] = 0; /* argv[0] is the first NUL-terminated string */
	const char *base = strrchr(cmd, '/');
	base = base ? base + 1 : cmd;
	/* libtool wrappers run the real program as lt-NAME */
	if (!strncmp(base, "lt-", 3))
		base += 3;
	return strcmp(base, prog) ? 0 : (pid_t)pid;
}

/* Start prog -c conf detached, output appended to logfile; write pidfile. */
static int spawn_detached(const struct localcluster *lc, const char *prog, const char *conf, const char *logfile,
			  const char *pidfile, char *err, size_t errlen)
{
	char exe[PATH_MAX + 64];
	snprintf(exe, sizeof(exe), "%s/%s", lc->bindir, prog);
	pid_t pid = fork();
	if (pid < 0) {
		errbuf_set(err, errlen, "cannot start %s: %s", exe, strerror(errno));
		return MTR_EIO;
	}
	if (pid == 0) {
		setsid();
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int nul = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		execl(exe, prog, "-c", conf, (char *)NULL);
		_exit(127);
	}
	char num[32];
	snprintf(num, sizeof(num), "%ld\n", (long)pid);
	if (write_file(pidfile, num)) {
		errbuf_set(err, errlen, "cannot write %s: %s", pidfile, strerror(errno));
		return MTR_EIO;
	}
	mtr_log(LOG_INFO, "local cluster: started %s (pid %ld), log %s", prog, (long)pid, logfile);
	return 0;
}

static int port_accepts(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int localcluster_running(const struct localcluster *lc)
{
	char pf[PATH_MAX + 64];
	for (unsigned i = 0; i < lc->nservers; i++) {
		path_of(lc, pf, sizeof(pf), (int)i, ".pid");
		if (!live_pid(pf, LC_SERVER))
			return 0;
	}
	path_of(lc, pf, sizeof(pf), -1, ".pid");
	return live_pid(pf, LC_PROXY) != 0;
}

/* Reap a child of ours that exited (started in this process). */
static int exited_now(pid_t pid)
{
	int st;
	return waitpid(pid, &st, WNOHANG) == pid;
}

int localcluster_up(struct localcluster *lc, int timeout_ms, char *err, size_t errlen)
{
	char conf[PATH_MAX + 64], logf[PATH_MAX + 64], pidf[PATH_MAX + 64];
	lc->started = 0;
	if (mkdirs(lc->dir)) {
		errbuf_set(err, errlen, "cannot create %s: %s; set MTR_LOCAL_DIR to a writable directory", lc->dir,
		       strerror(errno));
		return MTR_EIO;
	}
	path_of(lc, pidf, sizeof(pidf), -1, ".pid");
	int proxy_alive = live_pid(pidf, LC_PROXY) != 0;
	if (!lc->bindir[0] && !localcluster_running(lc)) {
		errbuf_set(err, errlen, "cannot find %s and %s (looked in $MTR_BINDIR, next to this program, and $PATH); "
			       "build them or set MTR_BINDIR", LC_SERVER, LC_PROXY);
		return MTR_ENOENT;
	}
	if (!proxy_alive && port_accepts(lc->proxy_port)) {
		errbuf_set(err, errlen, "port %u is taken by another program; set MTR_LOCAL_PORT to a free port",
		       (unsigned)lc->proxy_port);
		return MTR_EEXIST;
	}
	int rc = write_configs(lc, err, errlen);
	if (rc)
		return rc;
	pid_t kids[LOCALCLUSTER_MAX_SERVERS + 1];
	unsigned nkids = 0;
	for (unsigned i = 0; i <= lc->nservers && i <= LOCALCLUSTER_MAX_SERVERS; i++) {
		int proxy = i == lc->nservers;
		const char *prog = proxy ? LC_PROXY : LC_SERVER;
		if (proxy) {
			path_of(lc, conf, sizeof(conf), -1, ".conf");
			path_of(lc, logf, sizeof(logf), -1, ".log");
			path_of(lc, pidf, sizeof(pidf), -1, ".pid");
		} else {
			path_of(lc, conf, sizeof(conf), (int)i, ".conf");
			path_of(lc, logf, sizeof(logf), (int)i, ".log");
			path_of(lc, pidf, sizeof(pidf), (int)i, ".pid");
		}
		if (live_pid(pidf, prog))
			continue;
		if ((rc = spawn_detached(lc, prog, conf, logf, pidf, err, errlen)))
			return rc;
		kids[nkids++] = live_pid(pidf, prog);
		lc->started = 1;
	}
	snprintf(lc->uri, sizeof(lc->uri), "mtr://127.0.0.1:%u", (unsigned)lc->proxy_port);
	path_of(lc, conf, sizeof(conf), -1, "uri");
	char line[160];
	snprintf(line, sizeof(line), "%s\n", lc->uri);
	write_file(conf, line);
	for (int waited = 0;; waited += 50) {
		if (port_accepts(lc->proxy_port))
			return 0;
		for (unsigned k = 0; k < nkids; k++)
			if (kids[k] > 0 && exited_now(kids[k])) {
				errbuf_set(err, errlen, "a process of the local cluster exited at start; see the logs in %s",
				       lc->dir);
				return MTR_EIO;
			}
		if (waited >= timeout_ms) {
			errbuf_set(err, errlen, "the local cluster's proxy did not accept connections on port %u within %d ms; "
				       "see the logs in %s", (unsigned)lc->proxy_port, timeout_ms, lc->dir);
			return MTR_ETIMEDOUT;
		}
		sleep_ms(50);
	}
}

/* The instance server i's replica has applied, read from its file (0 when
 * it cannot be read). */
static uint64_t replica_applied(const struct localcluster *lc, unsigned i)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/server-%u/%s", lc->dir, i, CLUSTERCONF_REPLICA_DB);
	sqlite3 *db = NULL;
	uint64_t v = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, "SELECT value FROM mtr_meta WHERE key = 'applied'", -1, &st, NULL) ==
			    SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			v = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

/*
 * Wait (up to timeout_ms) until every replica has applied the same
 * instance.  A write is answered once one replica applied it; stopped
 * right then, the others would start again behind, and a read of the next
 * session (no instance to wait for) could be served by one of them before
 * it caught up.
 */
static void wait_replicas_equal(const struct localcluster *lc, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 20) {
		uint64_t lo = UINT64_MAX, hi = 0;
		for (unsigned i = 0; i < lc->nservers; i++) {
			uint64_t a = replica_applied(lc, i);
			lo = a < lo ? a : lo;
			hi = a > hi ? a : hi;
		}
		if (lo == hi)
			return;
		sleep_ms(20);
	}
	mtr_log(LOG_WARN, "local cluster: the replicas did not reach the same instance within %d ms", timeout_ms);
}

int localcluster_down(struct localcluster *lc, int timeout_ms)
{
	char pidf[PATH_MAX + 64];
	pid_t pids[LOCALCLUSTER_MAX_SERVERS + 1];
	unsigned n = 0;
	/* proxy first: no new writes; then, once the replicas agree, the servers */
	for (int i = (int)lc->nservers; i >= 0; i--) {
		int proxy = i == (int)lc->nservers;
		if (i == (int)lc->nservers - 1)
			wait_replicas_equal(lc, timeout_ms < 5000 ? timeout_ms : 5000);
		if (proxy)
			path_of(lc, pidf, sizeof(pidf), -1, ".pid");
		else
			path_of(lc, pidf, sizeof(pidf), (int)i, ".pid");
		pid_t p = live_pid(pidf, proxy ? LC_PROXY : LC_SERVER);
		if (p && kill(p, SIGTERM) == 0)
			pids[n++] = p;
		unlink(pidf);
	}
	int rc = 0;
	for (unsigned k = 0; k < n; k++) {
		int waited = 0;
		while (kill(pids[k], 0) == 0 && !exited_now(pids[k]) && waited < timeout_ms) {
			sleep_ms(20);
			waited += 20;
		}
		if (kill(pids[k], 0) == 0 && !exited_now(pids[k])) {
			mtr_log(LOG_WARN, "local cluster: pid %ld did not stop within %d ms; killed",
				(long)pids[k], timeout_ms);
			kill(pids[k], SIGKILL);
			rc = MTR_EIO;
		}
	}
	return rc;
}
