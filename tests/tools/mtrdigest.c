/*
 * mtrdigest.c - print the applied instance, the logical digest and the row
 * count of table t of stopped replicas, for the cluster tests.
 *
 *   mtrdigest DATADIR...
 *
 * prints one line per directory: `DIR instance I digest HEX rows N` (N is
 * -1 when there is no table t).  The server must not be running on DIR.
 * Exits 1 if any directory cannot be read.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "apply.h"
#include "digest.h"
#include "log.h"
#include "metronome.h"

static long long count_rows(struct apply *a)
{
	sqlite3 *db;
	if (apply_open_reader(a, &db))
		return -1;
	sqlite3_stmt *st;
	long long n = -1;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: mtrdigest DATADIR...\n");
		return 2;
	}
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_WARN);
	int bad = 0;
	for (int i = 1; i < argc; i++) {
		struct apply_config cfg = { .dir = argv[i] };
		struct apply *a;
		int rc = apply_open(&cfg, &a);
		if (rc) {
			fprintf(stderr, "mtrdigest: %s: cannot open the replica: %s\n", argv[i], mtr_strerror(rc));
			bad = 1;
			continue;
		}
		uint64_t inst;
		struct digest d;
		char hex[DIGEST_HEX_SIZE];
		rc = apply_digest(a, &inst, &d);
		if (rc) {
			fprintf(stderr, "mtrdigest: %s: digest failed: %s\n", argv[i], mtr_strerror(rc));
			bad = 1;
		} else {
			digest_hex(&d, hex);
			printf("%s instance %llu digest %s rows %lld\n", argv[i], (unsigned long long)inst, hex,
			       count_rows(a));
		}
		apply_close(a);
	}
	return bad;
}
