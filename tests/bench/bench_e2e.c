/*
 * bench_e2e.c - `mtrbench e2e`: acknowledged writes through a whole cluster
 * on loopback, against one plain SQLite database doing the same INSERTs.
 *
 * Each run starts 3 metronomed and 1 or 2 mtrproxy from the build tree in
 * a fresh temporary directory, drives 100-byte INSERTs with tests/tools/
 * mtrload (the client library, as users have it), stops the servers with
 * SIGTERM and reads the applied instance of a replica with mtrdigest.
 * Runs: 64 clients with 512 requests in flight each (pipelined: throughput
 * here is bound by the time of one consensus round, so it grows with what
 * is in flight) with durability disk and memory and with 2 proxies; the
 * same with 8 in flight; 1 client (no pipelining) in memory and disk mode.  The raw rate is
 * measured in the same process right before: sqlite3, a file database in
 * WAL mode with synchronous=NORMAL (the replicas' default), the same
 * 100-byte INSERTs as SQL text with literal values, 1,000 per transaction.
 *
 *   mtrbench e2e [--rows N (200000)] [--pipeline D (512)] [--quick]
 *
 * Figures (name: value unit): raw_sqlite_rows_per_s; per run
 * e2e_<run>_writes_per_s, _p50_ms, _p99_ms; and the lines tools compare:
 * e2e_writes_per_s (3 replicas, 64 clients, disk), e2e_p50_ms and
 * e2e_p99_ms (1 client, memory), items_per_instance (rows / applied
 * instance of the 64-client disk run) and e2e_ratio (e2e_writes_per_s /
 * raw_sqlite_rows_per_s).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench.h"
#include "clusterconf.h"
#include "util.h"

static char bindir[PATH_MAX]; /* the build tree's top */

static int find_build(void)
{
	const char *b = getenv("MTR_BUILDDIR");
	if (b && *b) {
		snprintf(bindir, sizeof(bindir), "%s", b);
		return 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = 0;
	char *s = strrchr(self, '/'); /* .../tests/bench/mtrbench */
	for (int i = 0; i < 3 && s; i++) {
		*s = 0;
		s = i < 2 ? strrchr(self, '/') : s;
	}
	snprintf(bindir, sizeof(bindir), "%s", self);
	return 0;
}

static double raw_sqlite(const char *dir, long rows)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/raw.db", dir);
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 0;
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE t(id INTEGER PRIMARY KEY, client INTEGER, payload TEXT)",
		     NULL, NULL, NULL);
	char payload[101];
	memset(payload, 'x', 100);
	payload[100] = 0;
	char sql[256];
	uint64_t t0 = now_mono_ns();
	for (long i = 1; i <= rows; i++) {
		if (i % 1000 == 1)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		snprintf(sql, sizeof(sql), "INSERT INTO t VALUES(%ld, %ld, '%s')", i, i % 64, payload);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			fprintf(stderr, "e2e: raw sqlite: %s\n", sqlite3_errmsg(db));
			sqlite3_close(db);
			return 0;
		}
		if (i % 1000 == 0 || i == rows)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	double s = (double)(now_mono_ns() - t0) / 1e9;
	sqlite3_close(db);
	return (double)rows / s;
}

static pid_t spawn(const char *log, char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "a", stdout);
		(void)f;
		dup2(1, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

struct run_result {
	double wps, p50, p99;
	long acked, failed;
	unsigned long long instance;
};

/* One cluster run: 3 servers, nproxies proxies, clients x pipeline. */
static int run_cluster(const char *top, const char *name, int port, const char *durability, int nproxies,
		       int clients, int pipeline, long rows, struct run_result *r)
{
	char dir[PATH_MAX], servers[128], buf[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s/%s", top, name);
	mkdir(dir, 0755);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", port, port + 1, port + 2);
	char exe[PATH_MAX + 32], cs[200], sid[32], dd[PATH_MAX + 32], dur[64], pl[64], pid_[32];
	char key[2 * WIRE_KEY_SIZE + 1], ck[64];
	clusterconf_new_key(key); /* a key per run, as every cluster has */
	snprintf(ck, sizeof(ck), "cluster.key=%s", key);
	pid_t sp[3] = { 0 }, pp[2] = { 0 };
	snprintf(exe, sizeof(exe), "%s/src/metronomed", bindir);
	snprintf(cs, sizeof(cs), "cluster.servers=%s", servers);
	snprintf(dur, sizeof(dur), "data.durability=%s", durability);
	for (int i = 0; i < 3; i++) {
		snprintf(sid, sizeof(sid), "server.id=%d", i);
		snprintf(dd, sizeof(dd), "data.dir=%s/d%d", dir, i);
		snprintf(buf, sizeof(buf), "%s/s%d.log", dir, i);
		char *argv[] = { exe, "-c", "/dev/null", "-o", cs, "-o", ck, "-o", sid, "-o", dd, "-o", dur, NULL };
		sp[i] = spawn(buf, argv);
	}
	char pexe[PATH_MAX + 32];
	snprintf(pexe, sizeof(pexe), "%s/src/mtrproxy", bindir);
	for (int k = 0; k < nproxies; k++) {
		snprintf(pl, sizeof(pl), "proxy.listen=127.0.0.1:%d", port + 10 + k);
		snprintf(pid_, sizeof(pid_), "proxy.id=%d", 256 + k);
		snprintf(buf, sizeof(buf), "%s/p%d.log", dir, k);
		char *argv[] = { pexe, "-c", "/dev/null", "-o", cs, "-o", ck, "-o", pl, "-o", pid_, NULL };
		pp[k] = spawn(buf, argv);
	}
	usleep(1500000); /* election */
	/* one mtrload per proxy, clients split between them */
	FILE *out[2] = { 0 };
	long per = rows / nproxies;
	memset(r, 0, sizeof(*r));
	for (int k = 0; k < nproxies; k++) {
		char cmd[PATH_MAX * 3];
		snprintf(cmd, sizeof(cmd),
			 "%s/tests/tools/mtrload --uri mtr://127.0.0.1:%d --clients %d --rows %ld --first-id %ld "
			 "--pipeline %d --payload 100 2>>%s/load.err",
			 bindir, port + 10 + k, clients / nproxies > 0 ? clients / nproxies : 1, per, 1 + k * per, pipeline,
			 dir);
		out[k] = popen(cmd, "r");
	}
	int ok = 1;
	for (int k = 0; k < nproxies; k++) {
		char line[512] = "";
		double s = 0, w = 0, p50 = 0, p99 = 0;
		long a = 0, e = 0;
		if (!out[k] || !fgets(line, sizeof(line), out[k]) ||
		    sscanf(line, "acked %ld failed %ld seconds %lf writes_per_s %lf p50_ms %lf p99_ms %lf", &a, &e, &s,
			   &w, &p50, &p99) != 6)
			ok = 0;
		if (out[k])
			pclose(out[k]);
		r->acked += a;
		r->failed += e;
		r->wps += w;
		r->p50 = p50 > r->p50 ? p50 : r->p50;
		r->p99 = p99 > r->p99 ? p99 : r->p99;
	}
	for (int k = 0; k < nproxies; k++)
		stop(pp[k]);
	for (int i = 0; i < 3; i++)
		stop(sp[i]);
	char cmd[PATH_MAX * 3];
	snprintf(cmd, sizeof(cmd), "%s/tests/tools/mtrdigest %s/d0 2>/dev/null", bindir, dir);
	FILE *d = popen(cmd, "r");
	char line[512] = "";
	if (d && fgets(line, sizeof(line), d)) {
		const char *p = strstr(line, " instance ");
		if (p)
			r->instance = strtoull(p + 10, NULL, 10);
	}
	if (d)
		pclose(d);
	if (!ok || r->failed)
		fprintf(stderr, "e2e: run %s: acked %ld failed %ld (logs in %s)\n", name, r->acked, r->failed, dir);
	return ok ? 0 : -1;
}

static void figures(const char *name, const struct run_result *r)
{
	char n[96];
	snprintf(n, sizeof(n), "e2e_%s_writes_per_s", name);
	bench_figure(n, r->wps, "writes/s");
	snprintf(n, sizeof(n), "e2e_%s_p50_ms", name);
	bench_figure(n, r->p50, "ms");
	snprintf(n, sizeof(n), "e2e_%s_p99_ms", name);
	bench_figure(n, r->p99, "ms");
}

int bench_e2e(int argc, char **argv)
{
	long rows = 200000;
	int quick = 0, depth = 512;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			rows = atol(argv[++i]);
		else if (!strcmp(argv[i], "--pipeline") && i + 1 < argc)
			depth = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else {
			fprintf(stderr, "usage: mtrbench e2e [--rows N (200000)] [--pipeline D (512)] [--quick]\n");
			return 2;
		}
	}
	if (rows < 1000 || find_build()) {
		fprintf(stderr, "e2e: --rows must be at least 1000 and the build tree must be found (MTR_BUILDDIR)\n");
		return 2;
	}
	char top[] = "/tmp/mtrbench-e2e-XXXXXX";
	if (!mkdtemp(top)) {
		fprintf(stderr, "e2e: cannot create a temporary directory: %s\n", strerror(errno));
		return 1;
	}
	int port = 24000 + (int)(getpid() % 300) * 20;
	double raw = raw_sqlite(top, rows);
	bench_figure("raw_sqlite_rows_per_s", raw, "rows/s");
	struct run_result disk64, mem64, two, shallow, mem1, disk1;
	int bad = 0;
	if (depth < 1)
		depth = 1;
	bench_figure("e2e_pipeline", depth, "requests in flight per client");
	bad |= run_cluster(top, "disk64", port, "disk", 1, 64, depth, rows, &disk64);
	figures("disk_64c", &disk64);
	if (!quick) {
		bad |= run_cluster(top, "mem64", port, "memory", 1, 64, depth, rows, &mem64);
		figures("memory_64c", &mem64);
		bad |= run_cluster(top, "two", port, "disk", 2, 64, depth, rows, &two);
		figures("disk_64c_2proxies", &two);
		bad |= run_cluster(top, "p8", port, "disk", 1, 64, 8, rows / 4, &shallow);
		figures("disk_64c_pipeline8", &shallow);
		bad |= run_cluster(top, "disk1", port, "disk", 1, 1, 1, 2000, &disk1);
		figures("disk_1c", &disk1);
	}
	bad |= run_cluster(top, "mem1", port, "memory", 1, 1, 1, 3000, &mem1);
	figures("memory_1c", &mem1);
	bench_figure("e2e_writes_per_s", disk64.wps, "writes/s");
	bench_figure("e2e_p50_ms", mem1.p50, "ms");
	bench_figure("e2e_p99_ms", mem1.p99, "ms");
	bench_figure("items_per_instance", disk64.instance ? (double)disk64.acked / (double)disk64.instance : 0,
		     "items");
	bench_figure("e2e_ratio", raw > 0 ? disk64.wps / raw : 0, "x");
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	if (!bad && system(cmd) != 0)
		fprintf(stderr, "e2e: could not remove %s\n", top);
	return bad ? 1 : 0;
}
