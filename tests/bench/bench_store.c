/*
 * bench_store.c - `mtrbench store`: items per second through a server's
 * ingest store (ingest_add + group commit with ingest_sync), for 64- and
 * 1000-byte items, in `memory` and `disk` durability modes.
 *
 * Items of --streams streams are added round robin in seq order; every
 * --batch items the run calls ingest_sync (the group commit: one fdatasync
 * in disk mode) and releases what is more than --keep items behind, so the
 * store stays bounded as in a steady state.  The time covers the adds, the
 * syncs and the releases.  The disk store is in a fresh directory under
 * --dir (default $TMPDIR or /tmp), removed afterwards.
 *
 * Only "name: value unit" lines go to stdout; diagnostics go to stderr.
 */
#include "config.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "util.h"

struct bs_opts {
	uint64_t items;
	uint32_t batch, streams;
	uint64_t keep;
	const char *dir;
};

static void rm_store(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char p[1024];
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* One run: returns items/s, or a negative value on error. */
static double run(const struct bs_opts *o, enum ingest_durability mode, uint32_t size, uint64_t *syncs)
{
	char top[512], dir[600];
	const char *t = o->dir ? o->dir : getenv("TMPDIR");
	snprintf(top, sizeof top, "%s/mtrbench-store-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(dir, sizeof dir, "%s/items", top);
	struct ingest_opts io = { .durability = mode, .dir = dir, .max_mem = 4ull << 30 };
	struct ingest *ing;
	int rc = ingest_open(&io, &ing);
	if (rc) {
		fprintf(stderr, "store: ingest_open: %s\n", mtr_strerror(rc));
		rmdir(top);
		return -1;
	}
	uint8_t *item = malloc(size);
	for (uint32_t i = 0; i < size; i++)
		item[i] = (uint8_t)(i * 7);
	uint64_t per = o->items / o->streams;
	uint64_t t0 = now_mono_ns();
	uint64_t n = 0;
	for (uint64_t q = 1; q <= per && rc == 0; q++) {
		for (uint32_t s = 1; s <= o->streams && rc == 0; s++) {
			st64(item, q); /* the bytes differ from item to item */
			rc = ingest_add(ing, s, q, item, size);
			if (++n % o->batch == 0 && rc == 0) {
				rc = ingest_sync(ing);
				if (q > o->keep)
					for (uint32_t k = 1; k <= o->streams; k++)
						ingest_forget(ing, k, q - o->keep);
			}
		}
	}
	if (rc == 0)
		rc = ingest_sync(ing);
	uint64_t t1 = now_mono_ns();
	if (rc == 0 && !ingest_holds(ing, o->streams, per))
		rc = MTR_EIO;
	struct ingest_stats st;
	ingest_stats(ing, &st);
	*syncs = st.syncs;
	ingest_close(ing);
	free(item);
	rm_store(dir);
	rmdir(top);
	if (rc) {
		fprintf(stderr, "store: %s\n", mtr_strerror(rc));
		return -1;
	}
	return (double)n / ((double)(t1 - t0) / 1e9);
}

static void usage(void)
{
	fprintf(stderr, "usage: mtrbench store [--items N] [--batch N] [--streams N] [--keep N] [--dir DIR]\n"
			"  --items N    items per run (default 1000000; disk runs use N/4)\n"
			"  --batch N    items per group commit (default 1000)\n"
			"  --streams N  streams, round robin (default 4)\n"
			"  --keep N     items per stream kept before release (default 20000)\n"
			"  --dir DIR    where the disk store goes (default $TMPDIR or /tmp)\n");
}

int bench_store(int argc, char **argv)
{
	struct bs_opts o = { .items = 1000000, .batch = 1000, .streams = 4, .keep = 20000 };
	static const struct option lo[] = {
		{ "items", required_argument, NULL, 'n' }, { "batch", required_argument, NULL, 'b' },
		{ "streams", required_argument, NULL, 's' }, { "keep", required_argument, NULL, 'k' },
		{ "dir", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': o.items = strtoull(optarg, NULL, 10); break;
		case 'b': o.batch = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': o.streams = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'k': o.keep = strtoull(optarg, NULL, 10); break;
		case 'd': o.dir = optarg; break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (o.items == 0 || o.batch == 0 || o.streams == 0) {
		usage();
		return 2;
	}
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_WARN);
	static const uint32_t sizes[] = { 64, 1000 };
	static const struct {
		enum ingest_durability mode;
		const char *name;
	} modes[] = { { INGEST_MEMORY, "memory" }, { INGEST_DISK, "disk" } };
	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
			struct bs_opts r = o;
			if (modes[m].mode == INGEST_DISK)
				r.items = MAX(o.items / 4, (uint64_t)o.streams);
			uint64_t syncs = 0;
			double v = run(&r, modes[m].mode, sizes[i], &syncs);
			if (v < 0)
				return 1;
			char name[64];
			snprintf(name, sizeof name, "store_%s_%u_items_per_s", modes[m].name, sizes[i]);
			bench_figure(name, (double)(uint64_t)v, "items/s");
			snprintf(name, sizeof name, "store_%s_%u_mb_per_s", modes[m].name, sizes[i]);
			bench_figure(name, v * sizes[i] / 1e6, "MB/s");
			if (modes[m].mode == INGEST_DISK) {
				snprintf(name, sizeof name, "store_%s_%u_syncs_per_s", modes[m].name, sizes[i]);
				bench_figure(name, (double)(uint64_t)(v / (double)r.batch), "fdatasync/s");
			}
		}
	}
	return 0;
}
