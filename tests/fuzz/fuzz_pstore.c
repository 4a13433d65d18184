/*
 * fuzz_pstore.c - recovery from arbitrary file bytes: pstore_open() on a log
 * holding the input must not crash, must either refuse the file or recover a
 * valid state (every value a valid batch) from an intact prefix, leave the
 * file cut to that prefix, recover the same state again on reopen, and keep
 * accepting appends after it.  The bytes after the 8-byte header given to
 * pstore_merge (as a record from the item log) are taken whole or refused
 * without a change.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "metronome.h"
#include "pstore.h"
#include "../testutil.h"

static char dir[64];
static char logpath[128];

static void check_same(const struct pstore *a, const struct pstore *b)
{
	if (pstore_promised(a) != pstore_promised(b) || pstore_count(a) != pstore_count(b) ||
	    pstore_size(a) != pstore_size(b))
		abort();
	for (size_t i = 0; i < pstore_count(a); i++) {
		uint64_t ia, ba, ib, bb;
		const struct batch *va, *vb;
		if (pstore_at(a, i, &ia, &ba, &va) != 0 || pstore_at(b, i, &ib, &bb, &vb) != 0)
			abort();
		if (ia != ib || ba != bb || !batch_equal(va, vb) || batch_validate(va) != 0 || ba > pstore_promised(a))
			abort();
		if (i > 0) {
			uint64_t ip, bp;
			const struct batch *vp;
			pstore_at(a, i - 1, &ip, &bp, &vp);
			if (ip >= ia)
				abort();
		}
	}
}

static void remove_dir(void)
{
	testutil_rmtree(dir);
}

/* A second open of the file finds the state a holds. */
static void reopen_same(const struct pstore *a)
{
	struct pstore *b;
	if (pstore_open(dir, &b) != 0)
		abort();
	pstore_set_sync(b, false);
	check_same(a, b);
	pstore_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dir[0] == 0) {
		/* Refused inputs log an error each: silence everything. */
		log_set_level(LOG_ERROR);
		log_threshold = LOG_ERROR - 1;
		if (testutil_mkdtemp(dir, sizeof dir, "mtr-fuzz-pstore") != 0)
			abort();
		atexit(remove_dir);
		char sub[96];
		snprintf(sub, sizeof sub, "%s/paxos", dir);
		mkdir(sub, 0755);
		snprintf(logpath, sizeof logpath, "%s/log", sub);
	}
	FILE *fp = fopen(logpath, "wb");
	if (fp == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, fp) != size)
		abort();
	fclose(fp);

	struct pstore *a, *b;
	if (pstore_open(dir, &a) != 0)
		return 0; /* refused (bad magic): fine */
	pstore_set_sync(a, false);
	struct stat st;
	if (stat(logpath, &st) != 0 || (uint64_t)st.st_size != pstore_size(a) || pstore_size(a) > size + 8)
		abort();
	if (pstore_open(dir, &b) != 0)
		abort();
	check_same(a, b);
	pstore_close(b);

	/* Appending after recovery works and is recovered. */
	struct batch v = { 0 };
	batch_push(&v, 1, 1, 2);
	struct paxos_persist c = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = 7, .inst = 3, .value = &v };
	if (pstore_persist(a, &c) != 0)
		abort();
	reopen_same(a);

	/* The bytes after the header as one record from the item log
	 * (pstore_merge; a log of one intact record gives a valid one): taken
	 * whole or not at all; either way a reopen finds the same state. */
	int mr = size > 8 ? pstore_merge(a, data + 8, size - 8) : 0;
	if (mr != 0 && mr != MTR_EMALFORMED && mr != MTR_EINTEGRITY && mr != MTR_ENOMEM)
		abort();
	reopen_same(a);
	pstore_close(a);
	batch_free(&v);
	return 0;
}
