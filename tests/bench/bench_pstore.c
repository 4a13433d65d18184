/*
 * bench_pstore.c - `mtrbench pstore`: acceptor-state persists per second
 * through pstore_persist (append + fdatasync: the latency an ACCEPT waits
 * before it is answered), the same in memory mode (no sync), group commit of
 * 16 appends per sync, and the time to compact a log of --n instances down to
 * its last 100.  Values are 3-range batches.  The store lives in a fresh
 * directory under $TMPDIR (or /tmp), removed afterwards.
 *
 * Options: --n N (ACCEPTs per run, default 2000).  Only "name: value unit"
 * lines go to stdout.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "log.h"
#include "metronome.h"
#include "pstore.h"
#include "util.h"

static void rm_store(const char *top)
{
	char p[600];
	snprintf(p, sizeof p, "%s/paxos/log", top);
	unlink(p);
	snprintf(p, sizeof p, "%s/paxos/log.tmp", top);
	unlink(p);
	snprintf(p, sizeof p, "%s/paxos", top);
	rmdir(p);
	rmdir(top);
}

/* Persist n ACCEPTs, syncing every `group` appends (0: never); returns the
 * changes per second and the compaction time in *compact_ms, or -1. */
static double run(uint64_t n, uint32_t group, bool sync, double *compact_ms)
{
	char top[512];
	const char *t = getenv("TMPDIR");
	snprintf(top, sizeof top, "%s/mtrbench-pstore-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(top))
		return -1;
	struct pstore *ps;
	if (pstore_open(top, &ps) != 0) {
		rm_store(top);
		return -1;
	}
	pstore_set_sync(ps, sync);
	struct batch v = { 0 };
	for (uint64_t s = 1; s <= 3; s++)
		batch_push(&v, s, 1, 100);
	int rc = 0;
	uint64_t t0 = now_mono_ns();
	for (uint64_t i = 1; rc == 0 && i <= n; i++) {
		struct paxos_persist c = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = 257, .inst = i, .value = &v };
		rc = pstore_append(ps, &c);
		if (rc == 0 && (i % group == 0 || i == n))
			rc = pstore_sync(ps);
	}
	uint64_t t1 = now_mono_ns();
	if (rc == 0)
		rc = pstore_compact(ps, n > 100 ? n - 100 : 0);
	uint64_t t2 = now_mono_ns();
	batch_free(&v);
	pstore_close(ps);
	rm_store(top);
	if (rc != 0) {
		fprintf(stderr, "pstore bench: %s\n", mtr_strerror(rc));
		return -1;
	}
	*compact_ms = (double)(t2 - t1) / 1e6;
	return (double)n / ((double)(t1 - t0) / 1e9);
}

int bench_pstore(int argc, char **argv)
{
	uint64_t n = 2000;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
			n = strtoull(argv[++i], NULL, 10);
	if (n == 0)
		n = 1;
	log_set_level(LOG_WARN);
	double cms, r;
	if ((r = run(n, 1, true, &cms)) < 0)
		return 1;
	bench_figure("pstore_persist_sync", r, "persists/s");
	bench_figure("pstore_compact_sync", cms, "ms");
	if ((r = run(n, 16, true, &cms)) < 0)
		return 1;
	bench_figure("pstore_persist_group16", r, "persists/s");
	if ((r = run(n * 10, 1, false, &cms)) < 0)
		return 1;
	bench_figure("pstore_persist_memory", r, "persists/s");
	bench_figure("pstore_compact_memory", cms, "ms");
	return 0;
}
