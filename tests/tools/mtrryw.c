/*
 * mtrryw.c - read-your-writes across connections (doc/client.md,
 * "Consistency of reads"), for tests/integration/ryw.sh.
 *
 *   mtrryw --write URI --read URI [--rounds N] [--rows R]
 *
 * Each round opens a new handle on the --write URI, inserts R rows tagged
 * with the round number in one transaction into table ryw(round, k), closes
 * it once COMMIT is acknowledged, then opens a new handle on the --read URI
 * (another proxy, or the same) with its default consistency (session) and
 * counts the round's rows.  A count below R is a stale read: the new
 * connection did not see a write the cluster had acknowledged to another
 * one before it opened.  Prints "rounds N stale S failed F" and exits 0
 * only when S and F are 0.  The table is created when missing.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metronome.h"

static int die(mtr *db, const char *what)
{
	fprintf(stderr, "mtrryw: %s: %s\n", what, db ? mtr_errmsg(db) : "out of memory");
	mtr_close(db);
	return -1;
}

/* One write of rows rows for round r through a new handle.  0 or -1. */
static int write_round(const char *uri, int r, int rows)
{
	mtr *db = NULL;
	if (mtr_open(uri, &db) != 0)
		return die(db, "open (write)");
	mtr_stmt *st = NULL;
	if (mtr_exec(db, "BEGIN", NULL, NULL, NULL) != 0 ||
	    mtr_prepare(db, "INSERT INTO ryw(round, k) VALUES(?1, ?2)", -1, &st, NULL) != 0)
		return die(db, "begin");
	for (int k = 0; k < rows; k++) {
		mtr_bind_int64(st, 1, r);
		mtr_bind_int64(st, 2, k);
		if (mtr_step(st) != MTR_DONE) {
			mtr_finalize(st);
			return die(db, "insert");
		}
		mtr_reset(st);
	}
	mtr_finalize(st);
	if (mtr_exec(db, "COMMIT", NULL, NULL, NULL) != 0)
		return die(db, "commit");
	mtr_close(db);
	return 0;
}

/* The number of rows of round r seen through a new handle, or -1. */
static long long read_round(const char *uri, int r)
{
	mtr *db = NULL;
	if (mtr_open(uri, &db) != 0)
		return die(db, "open (read)");
	mtr_stmt *st = NULL;
	if (mtr_prepare(db, "SELECT count(*) FROM ryw WHERE round = ?1", -1, &st, NULL) != 0)
		return die(db, "prepare");
	mtr_bind_int64(st, 1, r);
	long long n = -1;
	if (mtr_step(st) == MTR_ROW)
		n = mtr_column_int64(st, 0);
	else
		fprintf(stderr, "mtrryw: read of round %d: %s\n", r, mtr_errmsg(db));
	mtr_finalize(st);
	mtr_close(db);
	return n;
}

int main(int argc, char **argv)
{
	const char *wuri = NULL, *ruri = NULL;
	int rounds = 1000, rows = 1;
	static const struct option opts[] = {{"write", required_argument, NULL, 'w'},
					      {"read", required_argument, NULL, 'r'},
					      {"rounds", required_argument, NULL, 'n'},
					      {"rows", required_argument, NULL, 'k'},
					      {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'w': wuri = optarg; break;
		case 'r': ruri = optarg; break;
		case 'n': rounds = atoi(optarg); break;
		case 'k': rows = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!wuri || !ruri || rounds < 1 || rows < 1)
		goto usage;
	mtr *db = NULL;
	if (mtr_open(wuri, &db) != 0 ||
	    mtr_exec(db, "CREATE TABLE IF NOT EXISTS ryw(round INTEGER, k INTEGER)", NULL, NULL, NULL) != 0) {
		die(db, "create");
		return 2;
	}
	/* this run's rounds are new: number them after what the table holds */
	int base = 0;
	mtr_stmt *st = NULL;
	if (mtr_prepare(db, "SELECT coalesce(max(round), 0) FROM ryw", -1, &st, NULL) == 0 && mtr_step(st) == MTR_ROW)
		base = (int)mtr_column_int64(st, 0);
	mtr_finalize(st);
	mtr_close(db);
	int stale = 0, failed = 0;
	for (int i = 1; i <= rounds; i++) {
		int r = base + i;
		if (write_round(wuri, r, rows) != 0) {
			failed++;
			continue;
		}
		long long n = read_round(ruri, r);
		if (n < 0)
			failed++;
		else if (n < rows) {
			stale++;
			fprintf(stderr, "mtrryw: round %d: a new connection saw %lld of %d acknowledged rows\n", r, n, rows);
		}
	}
	printf("rounds %d stale %d failed %d\n", rounds, stale, failed);
	return stale || failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: mtrryw --write URI --read URI [--rounds N (1000)] [--rows R (1)]\n");
	return 2;
}
