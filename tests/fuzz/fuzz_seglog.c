/*
 * fuzz_seglog.c - recovery from arbitrary segment file bytes must never
 * crash, and must leave a store that works: after recovery a new item can be
 * added, synced, read back, and survives a second recovery along with
 * everything the first recovery found.
 *
 * Input: byte 0 = flags, bytes 1-2 = split point (u16 LE), then the bytes.
 *   flags & 1  split the bytes into two segments (000000000001.seg and
 *              000000000002.seg) at the split point; else one segment
 *   flags & 2  recompute the record checksums of well-formed records first,
 *              so that mutations reach the structure (lengths, seqs, streams)
 *   flags & 4  the first split-point bytes are the state blob file instead
 *   flags & 8  also read the segments as a point-in-time restore does
 *              (pitr.h): pitr_list, and pitr_restore of an empty backup up
 *              to a time, over the segments as recovery left them
 *   flags & 16 the bytes are a history record body instead (pitr.h): it
 *              decodes or is refused, and what decodes encodes to the
 *              same bytes
 * Files go to a private temporary directory, emptied for every input.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <xxhash.h>

#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "pitr.h"
#include "seglog.h"
#include "util.h"

static char top[256], dir[300], backup[300], out[300];

static void clear_dir(void)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char p[700];
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

static void put_file(const char *name, const uint8_t *p, size_t n)
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		abort();
	if (n && write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

/* Make the checksum of every well-formed record right (flags & 2). */
static void fix_checksums(uint8_t *p, size_t n)
{
	size_t off = SEGLOG_SEG_HDR_SIZE;
	while (n >= off + SEGLOG_REC_HDR_SIZE) {
		uint32_t len = ld32(p + off + 4);
		if (ld32(p + off) != SEGLOG_REC_MAGIC || len == 0 || len > n - off - SEGLOG_REC_HDR_SIZE)
			return;
		st64(p + off + 24, XXH3_64bits_withSeed(p + off + SEGLOG_REC_HDR_SIZE, len, XXH3_64bits(p + off, 24)));
		off += SEGLOG_REC_HDR_SIZE + len;
	}
}

static struct ingest *open_store(void)
{
	struct ingest_opts o = {
		.durability = INGEST_DISK,
		.dir = dir,
		.seg_size = 1 << 16,
		/* a small direct-write ring: 16 MiB a run cost two thirds of the runs */
		.cache_keep = 64 << 10,
		.max_streams = 8,
		.window = 1 << 12,
		.max_item = 1 << 16,
		.max_mem = 8 << 20,
	};
	struct ingest *ing;
	if (ingest_open(&o, &ing) != 0)
		abort(); /* nothing in the bytes may make recovery fail */
	return ing;
}

static void cleanup(void)
{
	clear_dir();
	unlink(backup);
	rmdir(dir);
	rmdir(top);
}

/* flags & 16: one history record body */
static int record_one(const uint8_t *p, size_t n)
{
	uint64_t ms;
	struct batch b;
	if (pitr_record_decode(p, n, &ms, &b) != 0)
		return 0;
	uint8_t *again = malloc(n);
	if (!again || pitr_record_encode(again, n, ms, &b) != (int)n || memcmp(again, p, n) != 0)
		abort();
	free(again);
	batch_free(&b);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* tmpfs when there is one: every input does several fdatasyncs */
	const char *t = getenv("TMPDIR");
	if (access("/dev/shm", W_OK) == 0)
		t = "/dev/shm";
	snprintf(top, sizeof top, "%s/mtr-fuzz-seglog-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(top))
		abort();
	snprintf(dir, sizeof dir, "%s/items", top);
	snprintf(backup, sizeof backup, "%s/backup.db", top);
	snprintf(out, sizeof out, "%s/out.db", top);
	atexit(cleanup);
	/* an empty backup at instance 0 for flags & 8 */
	static const char meta[] = "CREATE TABLE mtr_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
				   "INSERT INTO mtr_meta VALUES('backup_instance', 0)";
	sqlite3 *db;
	if (sqlite3_open(backup, &db) != SQLITE_OK || sqlite3_exec(db, meta, NULL, NULL, NULL) != SQLITE_OK)
		abort();
	sqlite3_close(db);
	log_set_level(LOG_ERROR); /* recovery warns about every damaged input */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3 || size > (1 << 20))
		return 0;
	unsigned flags = data[0];
	if (flags & 16)
		return record_one(data + 1, size - 1);
	size_t split = MIN((size_t)ld16(data + 1), size - 3);
	uint8_t *buf = malloc(size - 3 + 1);
	if (!buf)
		abort();
	size_t n = size - 3;
	memcpy(buf, data + 3, n);

	clear_dir();
	(void)mkdir(dir, 0755);
	uint8_t *a = buf, *b = buf + split;
	size_t na = split, nb = n - split;
	if (flags & 4) {
		put_file("state", a, na);
		a = b, na = nb, nb = 0;
	} else if (!(flags & 1)) {
		na = n, nb = 0;
	}
	if (flags & 2) {
		fix_checksums(a, na);
		fix_checksums(b, nb);
	}
	put_file("000000000001.seg", a, na);
	if (nb)
		put_file("000000000002.seg", b, nb);

	/* recover; add one item after the watermark of stream 77 */
	struct ingest *ing = open_store();
	uint64_t wm = ingest_watermark(ing, 77);
	static const uint8_t item[] = "an item added after recovery";
	int rc = ingest_add(ing, 77, wm + 1, item, sizeof item);
	if (rc != 0 && rc != MTR_EFULL)
		abort();
	int added = rc == 0;
	if (ingest_sync(ing) != 0)
		abort();
	const uint8_t *p;
	uint32_t len;
	if (added && (ingest_watermark(ing, 77) < wm + 1 || ingest_get(ing, 77, wm + 1, &p, &len) != 0 ||
		      len != sizeof item || memcmp(p, item, len) != 0))
		abort();
	struct ingest_stats st1;
	ingest_stats(ing, &st1);
	ingest_close(ing);

	/* a second recovery finds the same items and the added one */
	ing = open_store();
	struct ingest_stats st2;
	ingest_stats(ing, &st2);
	if (st2.items_held != st1.items_held)
		abort();
	if (added && (ingest_get(ing, 77, wm + 1, &p, &len) != 0 || len != sizeof item || memcmp(p, item, len) != 0))
		abort();
	ingest_close(ing);
	if (flags & 8) {
		/* never a crash; an error is an answer.  A restore that worked
		 * made out; a failed one left nothing behind */
		char err[512];
		FILE *f = fopen("/dev/null", "w");
		(void)pitr_list(top, f, err, sizeof err);
		fclose(f);
		struct pitr_opts po = {.backup = backup, .logdir = top, .until = "@4102444800", .out = out};
		struct pitr_result pr;
		int prc = pitr_restore(&po, &pr, err, sizeof err);
		if ((access(out, F_OK) == 0) != (prc == 0))
			abort();
		unlink(out);
	}
	free(buf);
	return 0;
}
