/*
 * mtrdigest.c - print the applied instance, the logical digest and the row
 * count of table t of stopped replicas, for the cluster tests.
 *
 *   mtrdigest DATADIR...
 *   mtrdigest --live DATADIR...
 *   mtrdigest --user PATH...
 *
 * prints one line per directory: `DIR instance I digest HEX rows N` (N is
 * -1 when there is no table t).  The server must not be running on DIR,
 * except with --live: then the replica is only read (a read-only
 * connection, one read transaction: the instance and the digest belong to
 * the same snapshot), beside the running server.
 * --user prints `PATH user-digest HEX` per PATH, a data directory (its
 * replica) or any SQLite file (a .backup copy): digest_db_user, the
 * content without the replica's own tables, read-only.
 * Exits 1 if any directory cannot be read.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "apply.h"
#include "digest.h"
#include "log.h"
#include "metronome.h"

static long long count_rows_db(sqlite3 *db)
{
	sqlite3_stmt *st;
	long long n = -1;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return n;
}

static long long count_rows(struct apply *a)
{
	sqlite3 *db;
	if (apply_open_reader(a, &db))
		return -1;
	long long n = count_rows_db(db);
	sqlite3_close(db);
	return n;
}

/*
 * --live (user 0): read DIR's replica beside its running server.  --user
 * (user 1): the user digest of a data directory's replica or of any SQLite
 * file, read-only.
 */
static int live(const char *arg, int user)
{
	char path[4096];
	struct stat sb;
	if (!user || (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)))
		snprintf(path, sizeof path, "%s/%s", arg, APPLY_DB_NAME);
	else
		snprintf(path, sizeof path, "%s", arg);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_busy_timeout(db, 5000);
		ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
		     (user || (sqlite3_prepare_v2(db, "SELECT value FROM mtr_meta WHERE key = 'applied'", -1, &st,
						  NULL) == SQLITE_OK &&
			       sqlite3_step(st) == SQLITE_ROW));
	}
	struct digest d;
	long long inst = ok && st ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (ok)
		ok = (user ? digest_db_user(db, &d) : digest_db(db, &d)) == 0;
	if (!ok) {
		fprintf(stderr, "mtrdigest: %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return 1;
	}
	char hex[DIGEST_HEX_SIZE];
	digest_hex(&d, hex);
	if (user)
		printf("%s user-digest %s\n", arg, hex);
	else
		printf("%s instance %lld digest %s rows %lld\n", arg, inst, hex, count_rows_db(db));
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: mtrdigest [--live] DATADIR...\n       mtrdigest --user DATADIR|FILE...\n");
		return 2;
	}
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_WARN);
	int bad = 0;
	if (!strcmp(argv[1], "--user")) {
		for (int i = 2; i < argc; i++)
			bad |= live(argv[i], 1);
		return bad;
	}
	if (!strcmp(argv[1], "--live")) {
		for (int i = 2; i < argc; i++)
			bad |= live(argv[i], 0);
		return bad;
	}
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
