/*
 * bench_e2e.c - `mtrbench e2e`: acknowledged writes and reads through a
 * whole cluster on loopback, against one plain SQLite database doing the
 * same INSERTs.
 *
 * Each cluster is 3 metronomed and 1 or 2 mtrproxy from the build tree in a
 * fresh temporary directory, driven with tests/tools/mtrload (the client
 * library, as users have it), stopped with SIGTERM.  Three clusters, one
 * after the other:
 *   disk, 1 proxy: 64 clients with D (512) requests in flight each (the
 *     headline: throughput is bound by the time of one consensus round, so
 *     it grows with what is in flight); the sweep of 1, 2, 3, 4, 6, 8, 12,
 *     16, 64, 256 in flight x 64 clients; 1 client; session and linearizable reads of the
 *     rows written, 1 and 64 clients (one read in flight each);
 *   disk, 2 proxies: 64 clients x D writes, then 64 clients of session and
 *     of linearizable reads, split between the proxies;
 *   memory, 1 proxy: 1 client (latency), 64 clients x D.
 * The raw rates are measured in the same process right before: one SQLite
 * file in WAL mode with synchronous=NORMAL (the replicas' default), the
 * same 100-byte INSERTs, 1,000 per transaction, as SQL text with literal
 * values and as one prepared statement with bound values (what a replica
 * runs from its statement cache).  Both write the ids in increasing
 * order, and so does every write load (mtrload --append: no id, SQLite
 * takes the next): the same rows land at the same end of the table's
 * B-tree.  mtrload's default, a contiguous share of the ids per client,
 * makes 64 places in the B-tree take rows, which plain SQLite runs about
 * 3x slower than appends (doc/performance.md): the ratio would compare
 * different work.  The reads read the ids the headline wrote (1 .. N of an
 * empty table).
 *
 *   mtrbench e2e [--rows N (200000)] [--pipeline D (512)] [--quick | --latency]
 *
 * --quick: only the headline and the 1-client memory run.  --latency: only
 * the 1-client runs, each on a fresh cluster (disk, then memory: 2,000 and
 * 3,000 writes), no raw rates.  Figures (name:
 * value unit): raw_sqlite_rows_per_s, raw_prepared_rows_per_s,
 * raw_prepared_64ranges_rows_per_s (not with --quick: the ids of 64
 * contiguous shares, taking turns; shown, never in a ratio) (each the
 * median of three runs into new files); per load
 * e2e_<load>_writes_per_s (or _reads_per_s), e2e_<load>_p50_ms, _p99_ms;
 * and the lines tools compare: e2e_slo10_writes_per_s (the highest
 * throughput of the sweep whose p99 <= 10 ms), e2e_reads_per_s_session_64c,
 * e2e_reads_per_s_linearizable_64c, e2e_writes_per_s (the headline),
 * e2e_p50_ms and e2e_p99_ms (1 client, memory), items_per_instance (rows of
 * the headline / instances it took on replica 0), e2e_ratio and
 * e2e_ratio_prepared (e2e_writes_per_s / each raw rate).
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

/* Rows/s into one SQLite file (WAL, synchronous=NORMAL), 1,000 INSERTs per
 * transaction: as SQL text with literal values (prepared 0), or one
 * prepared INSERT with bound values, as the replicas run it: the ids in
 * order (1), or (2) row i the next of client i % 64's contiguous share of
 * the ids, the order in which mtrload's clients without --append would
 * send them if they took turns (rows a multiple of 64). */
static double raw_sqlite(const char *dir, long rows, int prepared)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/raw%d.db", dir, prepared);
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
	sqlite3_stmt *ins = NULL;
	if (prepared && sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?1, ?2, ?3)", -1, &ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "e2e: raw sqlite: %s\n", sqlite3_errmsg(db));
		sqlite3_close(db);
		return 0;
	}
	uint64_t t0 = now_mono_ns();
	for (long i = 1; i <= rows; i++) {
		if (i % 1000 == 1)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		int rc;
		if (prepared) {
			long share = rows / 64, c = (i - 1) % 64;
			sqlite3_bind_int64(ins, 1, prepared == 2 ? c * share + (i - 1) / 64 + 1 : i);
			sqlite3_bind_int64(ins, 2, i % 64);
			sqlite3_bind_text(ins, 3, payload, 100, SQLITE_STATIC);
			rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
			sqlite3_reset(ins);
		} else {
			snprintf(sql, sizeof(sql), "INSERT INTO t VALUES(%ld, %ld, '%s')", i, i % 64, payload);
			rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		}
		if (rc != SQLITE_OK) {
			sqlite3_finalize(ins);
			fprintf(stderr, "e2e: raw sqlite: %s\n", sqlite3_errmsg(db));
			sqlite3_close(db);
			return 0;
		}
		if (i % 1000 == 0 || i == rows)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	double s = (double)(now_mono_ns() - t0) / 1e9;
	sqlite3_finalize(ins);
	sqlite3_close(db);
	return (double)rows / s;
}

/* raw_sqlite three times, each into a new file: the median (one short run
 * moved by 1.5x between runs on the shared machine). */
static double raw_median(const char *dir, long rows, int prepared)
{
	double r[3];
	for (int k = 0; k < 3; k++) {
		static const char *const ext[] = { "", "-wal", "-shm" };
		for (int e = 0; e < 3; e++) {
			char path[PATH_MAX + 24];
			snprintf(path, sizeof(path), "%s/raw%d.db%s", dir, prepared, ext[e]);
			unlink(path);
		}
		r[k] = raw_sqlite(dir, rows, prepared);
	}
	double lo = r[0] < r[1] ? r[0] : r[1], hi = r[0] < r[1] ? r[1] : r[0];
	return r[2] < lo ? lo : r[2] > hi ? hi : r[2];
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
};

/* A running cluster: 3 servers, nproxies proxies. */
struct cluster {
	char dir[PATH_MAX];
	int port, nproxies;
	pid_t sp[3], pp[2];
};

static void cluster_stop(struct cluster *c)
{
	for (int k = 0; k < c->nproxies; k++)
		stop(c->pp[k]);
	for (int i = 0; i < 3; i++)
		stop(c->sp[i]);
}

/* Start 3 servers and nproxies proxies in top/name and wait for the
 * election. */
static void cluster_start(struct cluster *c, const char *top, const char *name, int port, const char *durability,
			  int nproxies)
{
	char servers[128], buf[PATH_MAX + 64];
	memset(c, 0, sizeof *c);
	c->port = port;
	c->nproxies = nproxies;
	snprintf(c->dir, sizeof(c->dir), "%s/%s", top, name);
	mkdir(c->dir, 0755);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", port, port + 1, port + 2);
	char exe[PATH_MAX + 32], cs[200], sid[32], dd[PATH_MAX + 32], dur[64], pl[64], pid_[32];
	char key[2 * WIRE_KEY_SIZE + 1], ck[64];
	clusterconf_new_key(key); /* a key per run, as every cluster has */
	snprintf(ck, sizeof(ck), "cluster.key=%s", key);
	snprintf(exe, sizeof(exe), "%s/src/metronomed", bindir);
	snprintf(cs, sizeof(cs), "cluster.servers=%s", servers);
	snprintf(dur, sizeof(dur), "data.durability=%s", durability);
	for (int i = 0; i < 3; i++) {
		snprintf(sid, sizeof(sid), "server.id=%d", i);
		snprintf(dd, sizeof(dd), "data.dir=%s/d%d", c->dir, i);
		snprintf(buf, sizeof(buf), "%s/s%d.log", c->dir, i);
		/* MTR_E2E_SERVER_OPT: one more server setting (key=value) for
		 * comparisons, e.g. paxos.pipeline=1 (doc/performance.md) */
		const char *extra = getenv("MTR_E2E_SERVER_OPT");
		char *argv[] = { exe, "-c", "/dev/null", "-o", cs, "-o", ck, "-o", sid, "-o", dd, "-o", dur,
				 extra && *extra ? "-o" : NULL, (char *)extra, NULL };
		c->sp[i] = spawn(buf, argv);
	}
	char pexe[PATH_MAX + 32];
	snprintf(pexe, sizeof(pexe), "%s/src/mtrproxy", bindir);
	for (int k = 0; k < nproxies; k++) {
		snprintf(pl, sizeof(pl), "proxy.listen=127.0.0.1:%d", port + 10 + k);
		snprintf(pid_, sizeof(pid_), "proxy.id=%d", 256 + k);
		snprintf(buf, sizeof(buf), "%s/p%d.log", c->dir, k);
		char *argv[] = { pexe, "-c", "/dev/null", "-o", cs, "-o", ck, "-o", pl, "-o", pid_, NULL };
		c->pp[k] = spawn(buf, argv);
	}
	usleep(1500000); /* election */
}

/*
 * One load on a running cluster: mtrload per proxy, the clients and the
 * ids first .. first+rows-1 split between them.  mode NULL: writes with
 * pipeline in flight per client; "session" / "linearizable": reads of those
 * ids (written before) with that consistency.  Throughputs add up; the
 * latencies are the worst proxy's.
 */
static int cluster_load(struct cluster *c, const char *what, int clients, int pipeline, long first, long rows,
			const char *mode, struct run_result *r)
{
	FILE *out[2] = { 0 };
	long per = rows / c->nproxies;
	memset(r, 0, sizeof(*r));
	for (int k = 0; k < c->nproxies; k++) {
		char cmd[PATH_MAX * 3];
		snprintf(cmd, sizeof(cmd),
			 "%s/tests/tools/mtrload --uri 'mtr://127.0.0.1:%d%s%s' --clients %d --rows %ld "
			 "--first-id %ld --pipeline %d --payload 100%s 2>>%s/load.err",
			 bindir, c->port + 10 + k, mode ? "?consistency=" : "", mode ? mode : "",
			 clients / c->nproxies > 0 ? clients / c->nproxies : 1, per, first + k * per, pipeline,
			 mode ? " --read" : " --append", c->dir);
		out[k] = popen(cmd, "r");
	}
	int ok = 1;
	for (int k = 0; k < c->nproxies; k++) {
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
	if (!ok || r->failed)
		fprintf(stderr, "e2e: %s: acked %ld failed %ld (logs in %s)\n", what, r->acked, r->failed, c->dir);
	return ok ? 0 : -1;
}

/* The instance replica 0 has applied, read beside the running server. */
static unsigned long long cluster_instance(const struct cluster *c)
{
	char cmd[PATH_MAX * 3];
	snprintf(cmd, sizeof(cmd), "%s/tests/tools/mtrdigest --live %s/d0 2>/dev/null", bindir, c->dir);
	FILE *d = popen(cmd, "r");
	char line[512] = "";
	unsigned long long inst = 0;
	if (d && fgets(line, sizeof(line), d)) {
		const char *p = strstr(line, " instance ");
		if (p)
			inst = strtoull(p + 10, NULL, 10);
	}
	if (d)
		pclose(d);
	return inst;
}

/* e2e_NAME_KIND_per_s, e2e_NAME_p50_ms, e2e_NAME_p99_ms; kind "writes" or
 * "reads". */
static void figures(const char *name, const char *kind, const struct run_result *r)
{
	char n[96], unit[16];
	snprintf(n, sizeof(n), "e2e_%s_%s_per_s", name, kind);
	snprintf(unit, sizeof(unit), "%s/s", kind);
	bench_figure(n, r->wps, unit);
	snprintf(n, sizeof(n), "e2e_%s_p50_ms", name);
	bench_figure(n, r->p50, "ms");
	snprintf(n, sizeof(n), "e2e_%s_p99_ms", name);
	bench_figure(n, r->p99, "ms");
}

int bench_e2e(int argc, char **argv)
{
	long rows = 200000;
	int quick = 0, latency = 0, depth = 512;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			rows = atol(argv[++i]);
		else if (!strcmp(argv[i], "--pipeline") && i + 1 < argc)
			depth = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--latency"))
			latency = 1;
		else {
			fprintf(stderr, "usage: mtrbench e2e [--rows N (200000)] [--pipeline D (512)] [--quick | --latency]\n");
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
	if (latency) {
		struct run_result r1;
		struct cluster c1;
		int bad1 = 0;
		cluster_start(&c1, top, "disk", port, "disk", 1);
		bad1 |= cluster_load(&c1, "disk_1c", 1, 1, 1, 2000, NULL, &r1);
		figures("disk_1c", "writes", &r1);
		cluster_stop(&c1);
		cluster_start(&c1, top, "mem", port, "memory", 1);
		bad1 |= cluster_load(&c1, "memory_1c", 1, 1, 1, 3000, NULL, &r1);
		figures("memory_1c", "writes", &r1);
		cluster_stop(&c1);
		char rm[PATH_MAX + 16];
		snprintf(rm, sizeof(rm), "rm -rf %s", top);
		if (!bad1 && system(rm) != 0)
			fprintf(stderr, "e2e: could not remove %s\n", top);
		return bad1 ? 1 : 0;
	}
	double raw = raw_median(top, rows, 0);
	bench_figure("raw_sqlite_rows_per_s", raw, "rows/s");
	double rawp = raw_median(top, rows, 1);
	bench_figure("raw_prepared_rows_per_s", rawp, "rows/s");
	/* what the reference would be for contiguous shares per client: shown
	 * beside it, never a ratio's (the cluster's loads append) */
	if (!quick)
		bench_figure("raw_prepared_64ranges_rows_per_s", raw_median(top, rows - rows % 64, 2), "rows/s");
	if (depth < 1)
		depth = 1;
	bench_figure("e2e_pipeline", depth, "requests in flight per client");
	struct run_result disk64, mem1, r;
	int bad = 0;
	long next = 1; /* the next id to write on the cluster */
	struct cluster c;

	/* disk, one proxy: the headline, the sweep, one client, reads */
	cluster_start(&c, top, "disk", port, "disk", 1);
	unsigned long long i0 = cluster_instance(&c);
	bad |= cluster_load(&c, "disk_64c", 64, depth, next, rows, NULL, &disk64);
	unsigned long long i1 = cluster_instance(&c);
	next += rows;
	figures("disk_64c", "writes", &disk64);
	double slo10 = 0;
	if (!quick) {
		/* between the doublings up to 16 too: the most a 2-core
		 * machine holds within 10 ms lies there, and a doubling step
		 * from a point just under to one just over it reads as the
		 * lower (64 x 4 and 64 x 8 were 46,000 and 75,000 writes/s) */
		static const int sweep[] = { 1, 2, 3, 4, 6, 8, 12, 16, 64, 256 };
		for (size_t k = 0; k < sizeof(sweep) / sizeof(sweep[0]); k++) {
			/* about 1.5-4 s a step at the rates of a 2-core machine:
			 * at least 50,000 writes, so that the p99 is not that of
			 * half a second (20,000 gave p99s 9-22 ms apart for one
			 * tree at 64 x 4) */
			long n = 64L * sweep[k] * 40 < 50000 ? 50000 : 64L * sweep[k] * 40;
			char name[48];
			snprintf(name, sizeof(name), "disk_64c_pipeline%d", sweep[k]);
			bad |= cluster_load(&c, name, 64, sweep[k], next, n, NULL, &r);
			next += n;
			figures(name, "writes", &r);
			if (r.p99 <= 10.0 && r.failed == 0 && r.wps > slo10)
				slo10 = r.wps;
		}
		bench_figure("e2e_slo10_writes_per_s", slo10, "writes/s");
		bad |= cluster_load(&c, "disk_1c", 1, 1, next, 2000, NULL, &r);
		next += 2000;
		figures("disk_1c", "writes", &r);
		/* reads of rows the headline run wrote */
		static const char *const modes[] = { "session", "linearizable" };
		for (int m = 0; m < 2; m++) {
			char name[48];
			snprintf(name, sizeof(name), "%s_1c", modes[m]);
			bad |= cluster_load(&c, name, 1, 1, 1, m ? 3000 : 5000, modes[m], &r);
			figures(name, "reads", &r);
			snprintf(name, sizeof(name), "%s_64c", modes[m]);
			bad |= cluster_load(&c, name, 64, 1, 1, m ? 20000 : 64000, modes[m], &r);
			figures(name, "reads", &r);
			bench_figure(m ? "e2e_reads_per_s_linearizable_64c" : "e2e_reads_per_s_session_64c", r.wps,
				     "reads/s");
		}
	}
	cluster_stop(&c);

	if (!quick) {
		/* disk, two proxies: writes, then reads through both */
		cluster_start(&c, top, "two", port, "disk", 2);
		bad |= cluster_load(&c, "disk_64c_2proxies", 64, depth, 1, rows, NULL, &r);
		figures("disk_64c_2proxies", "writes", &r);
		bad |= cluster_load(&c, "session_64c_2proxies", 64, 1, 1, 64000, "session", &r);
		figures("session_64c_2proxies", "reads", &r);
		bad |= cluster_load(&c, "linearizable_64c_2proxies", 64, 1, 1, 20000, "linearizable", &r);
		figures("linearizable_64c_2proxies", "reads", &r);
		cluster_stop(&c);
	}

	/* memory: one client (latency) */
	cluster_start(&c, top, "mem", port, "memory", 1);
	bad |= cluster_load(&c, "memory_1c", 1, 1, 1, 3000, NULL, &mem1);
	figures("memory_1c", "writes", &mem1);
	if (!quick) {
		bad |= cluster_load(&c, "memory_64c", 64, depth, 3001, rows, NULL, &r);
		figures("memory_64c", "writes", &r);
	}
	cluster_stop(&c);

	bench_figure("e2e_writes_per_s", disk64.wps, "writes/s");
	bench_figure("e2e_p50_ms", mem1.p50, "ms");
	bench_figure("e2e_p99_ms", mem1.p99, "ms");
	bench_figure("items_per_instance", i1 > i0 ? (double)disk64.acked / (double)(i1 - i0) : 0, "items");
	bench_figure("e2e_ratio", raw > 0 ? disk64.wps / raw : 0, "x");
	bench_figure("e2e_ratio_prepared", rawp > 0 ? disk64.wps / rawp : 0, "x");
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	if (!bad && system(cmd) != 0)
		fprintf(stderr, "e2e: could not remove %s\n", top);
	return bad ? 1 : 0;
}
