/*
 * mtrbank - a transactional bank workload with linearizable readers, for the
 * fault suite (tests/integration/faults.sh, doc/faults.md), through
 * libmetronome.
 *
 *   mtrbank --uri URI [--accounts N (10)] [--writers W (2)] [--readers R (1)]
 *           [--log FILE] [--trace FILE] [--seed S (1)] [--id-base B (0)]
 *
 * Creates acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL) with N accounts
 * of 1000 each and xfer(id INTEGER PRIMARY KEY, src, dst, amt) if they do
 * not exist (idempotent, retried until acknowledged).  Then W writer
 * threads, each on its own connection, make transfers until stopped, each
 * one group
 *
 *   BEGIN; UPDATE acct SET bal = bal - A WHERE id = S;
 *   UPDATE acct SET bal = bal + A WHERE id = D;
 *   INSERT INTO xfer VALUES(ID, S, D, A); COMMIT
 *
 * with a unique transfer id ID = B + writer * 10^9 + sequence.  Every
 * acknowledged transfer is appended to the log FILE as "ID S D A" (one
 * write(2), when the answer arrives).  R reader threads, each on its own
 * connection with consistency=linearizable (added to URI), read in a loop
 * and check two things of each answer:
 *   - the total of acct is N * 1000 over N accounts (transfers keep it);
 *   - xfer holds at least as many rows as transfers were acknowledged
 *     before the read was sent (a linearizable read sees every write
 *     acknowledged before it began).
 * A read that breaks one prints "mtrbank: VIOLATION ..." on stderr.
 * --trace FILE gets lines as mtrload's --trace (writers are clients 1..W,
 * readers W+1..W+R; readers' ids are their sequence numbers):
 *   s C ID SENT_MS / a C ID SENT_MS DONE_MS / f C ID SENT_MS DONE_MS ERR
 * SIGTERM or SIGINT stops it after the requests in flight; it prints
 *
 *   transfers A failed F reads R read_failed RF violations V
 *
 * and exits 0 when V == 0, 1 when a check failed or setup failed, 2 on a
 * usage error.  A failed transfer or read is counted, never retried.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metronome.h"
#include "toolutil.h"

#define START_BALANCE 1000

struct bank {
	const char *uri, *log_path, *trace_path;
	char *read_uri;
	int accounts, writers, readers;
	int64_t id_base;
	uint64_t seed;
	int log_fd, trace_fd;
	atomic_llong acked; /* transfers acknowledged so far */
	atomic_llong failed, reads, read_failed, violations;
};

struct thread {
	struct bank *B;
	pthread_t th;
	int index; /* 1-based client number of the trace */
	uint64_t rng;
};

static void put_line(int fd, const char *path, const char *line)
{
	size_t n = strlen(line);
	if (fd >= 0 && write(fd, line, n) != (ssize_t)n)
		fprintf(stderr, "mtrbank: writing %s: %s\n", path, strerror(errno));
}

/* A trace line: kind 's' (sent), 'a' (acknowledged) or 'f' (failed, rc). */
static void trace(struct bank *B, char kind, int client, int64_t id, uint64_t sent, int rc)
{
	char line[128];
	if (kind == 's')
		snprintf(line, sizeof line, "s %d %" PRId64 " %" PRIu64 "\n", client, id, sent);
	else
		snprintf(line, sizeof line, "%c %d %" PRId64 " %" PRIu64 " %" PRIu64 "%s%s\n", kind, client, id, sent,
			 tool_real_ms(), rc ? " " : "", rc ? mtr_errname(rc) : "");
	put_line(B->trace_fd, B->trace_path, line);
}

static void *writer_main(void *arg)
{
	struct thread *t = arg;
	struct bank *B = t->B;
	mtr *db = NULL;
	int logged = 0;
	if (mtr_open(B->uri, &db) != 0) {
		fprintf(stderr, "mtrbank: writer %d: %s\n", t->index, mtr_errmsg(db));
		mtr_close(db);
		return NULL;
	}
	for (int64_t seq = 1; !tool_stopping; seq++) {
		int64_t id = B->id_base + (int64_t)t->index * 1000000000 + seq;
		int src = (int)(tool_rand(&t->rng) % (uint64_t)B->accounts) + 1;
		int dst = (int)(tool_rand(&t->rng) % (uint64_t)(B->accounts - 1)) + 1;
		if (dst >= src)
			dst++;
		int amt = (int)(tool_rand(&t->rng) % 10) + 1;
		char sql[400];
		snprintf(sql, sizeof sql,
			 "BEGIN; UPDATE acct SET bal = bal - %d WHERE id = %d; UPDATE acct SET bal = bal + %d WHERE id = %d; "
			 "INSERT INTO xfer VALUES(%" PRId64 ", %d, %d, %d); COMMIT",
			 amt, src, amt, dst, id, src, dst, amt);
		uint64_t sent = tool_real_ms();
		trace(B, 's', t->index, id, sent, 0);
		int rc = mtr_exec(db, sql, NULL, NULL, NULL);
		if (rc == 0) {
			char line[96];
			snprintf(line, sizeof line, "%" PRId64 " %d %d %d\n", id, src, dst, amt);
			put_line(B->log_fd, B->log_path, line);
			atomic_fetch_add(&B->acked, 1);
			trace(B, 'a', t->index, id, sent, 0);
		} else {
			atomic_fetch_add(&B->failed, 1);
			trace(B, 'f', t->index, id, sent, rc);
			if (logged++ < 5)
				fprintf(stderr, "mtrbank: writer %d: transfer %" PRId64 ": %s: %s\n", t->index, id,
					mtr_errname(rc), mtr_errmsg(db));
			/* (a failed COMMIT ends the transaction: doc/client.md) */
			if (rc == MTR_ECONNECT)
				usleep(100000); /* no proxy reachable: do not spin */
		}
	}
	mtr_close(db);
	return NULL;
}

/* One read of the checks; 0 when answered (the checks were made), else the
 * error. */
static int read_once(struct thread *t, mtr *db, int64_t seq)
{
	struct bank *B = t->B;
	long long acked_before = atomic_load(&B->acked);
	uint64_t sent = tool_real_ms();
	trace(B, 's', t->index, seq, sent, 0);
	mtr_stmt *st = NULL;
	int rc = mtr_prepare(db,
			     "SELECT (SELECT sum(bal) FROM acct), (SELECT count(*) FROM acct), (SELECT count(*) FROM xfer)",
			     -1, &st, NULL);
	int64_t total = 0, n = 0, xfers = 0;
	if (rc == 0) {
		rc = mtr_step(st);
		if (rc == MTR_ROW) {
			total = mtr_column_int64(st, 0);
			n = mtr_column_int64(st, 1);
			xfers = mtr_column_int64(st, 2);
			rc = 0;
		}
	}
	mtr_finalize(st);
	if (rc) {
		trace(B, 'f', t->index, seq, sent, rc);
		return rc;
	}
	trace(B, 'a', t->index, seq, sent, 0);
	if (n != B->accounts || total != (int64_t)B->accounts * START_BALANCE) {
		atomic_fetch_add(&B->violations, 1);
		fprintf(stderr, "mtrbank: VIOLATION: reader %d: %" PRId64 " accounts hold %" PRId64 ", expected %d hold %lld\n",
			t->index, n, total, B->accounts, (long long)B->accounts * START_BALANCE);
	}
	if (xfers < acked_before) {
		atomic_fetch_add(&B->violations, 1);
		fprintf(stderr,
			"mtrbank: VIOLATION: reader %d: a linearizable read sent after %lld acknowledged transfers sees "
			"%" PRId64 " in xfer\n",
			t->index, acked_before, xfers);
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct thread *t = arg;
	struct bank *B = t->B;
	mtr *db = NULL;
	int logged = 0;
	if (mtr_open(B->read_uri, &db) != 0) {
		fprintf(stderr, "mtrbank: reader %d: %s\n", t->index, mtr_errmsg(db));
		mtr_close(db);
		return NULL;
	}
	for (int64_t seq = 1; !tool_stopping; seq++) {
		int rc = read_once(t, db, seq);
		atomic_fetch_add(&B->reads, 1);
		if (rc) {
			atomic_fetch_add(&B->read_failed, 1);
			if (logged++ < 5)
				fprintf(stderr, "mtrbank: reader %d: %s: %s\n", t->index, mtr_errname(rc), mtr_errmsg(db));
		}
		usleep(20000); /* the readers check; the writers load */
	}
	mtr_close(db);
	return NULL;
}

/* Tables and accounts, retried until acknowledged (every statement is
 * idempotent) or 30 s passed. */
static int setup(struct bank *B)
{
	size_t cap = 200 + (size_t)B->accounts * 16;
	char *sql = malloc(cap);
	if (!sql)
		return -1;
	size_t k = (size_t)snprintf(sql, cap,
				    "CREATE TABLE IF NOT EXISTS acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);"
				    "CREATE TABLE IF NOT EXISTS xfer(id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, "
				    "amt INTEGER); INSERT OR IGNORE INTO acct VALUES");
	for (int i = 1; i <= B->accounts; i++)
		k += (size_t)snprintf(sql + k, cap - k, "%s(%d, %d)", i > 1 ? "," : "", i, START_BALANCE);
	int rc = -1;
	for (int attempt = 0; attempt < 30 && rc != 0 && !tool_stopping; attempt++) {
		mtr *db = NULL;
		rc = mtr_open(B->uri, &db);
		if (rc == 0)
			rc = mtr_exec(db, sql, NULL, NULL, NULL);
		if (rc) {
			fprintf(stderr, "mtrbank: setup: %s: %s\n", mtr_errname(rc), mtr_errmsg(db));
			sleep(1);
		}
		mtr_close(db);
	}
	free(sql);
	return rc;
}

static int64_t number(const char *s, const char *name, int64_t lo, int64_t hi)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *s == 0 || *end || v < lo || v > hi) {
		fprintf(stderr, "mtrbank: bad value '%s' for --%s (%" PRId64 "..%" PRId64 ")\n", s, name, lo, hi);
		exit(2);
	}
	return v;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrbank --uri URI [--accounts N (10)] [--writers W (2)] [--readers R (1)]\n"
		   "               [--log FILE] [--trace FILE] [--seed S (1)] [--id-base B (0)]\n");
}

static int open_out(const char *path)
{
	if (!path)
		return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "mtrbank: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

int main(int argc, char **argv)
{
	static struct bank B = {.accounts = 10, .writers = 2, .readers = 1, .seed = 1, .log_fd = -1, .trace_fd = -1};
	static const struct option opts[] = {
		{"uri", required_argument, NULL, 'u'},     {"accounts", required_argument, NULL, 'n'},
		{"writers", required_argument, NULL, 'w'}, {"readers", required_argument, NULL, 'r'},
		{"log", required_argument, NULL, 'l'},     {"trace", required_argument, NULL, 'T'},
		{"seed", required_argument, NULL, 's'},    {"id-base", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			B.uri = optarg;
			break;
		case 'n':
			B.accounts = (int)number(optarg, "accounts", 2, 100000);
			break;
		case 'w':
			B.writers = (int)number(optarg, "writers", 0, 256);
			break;
		case 'r':
			B.readers = (int)number(optarg, "readers", 0, 256);
			break;
		case 'l':
			B.log_path = optarg;
			break;
		case 'T':
			B.trace_path = optarg;
			break;
		case 's':
			B.seed = (uint64_t)number(optarg, "seed", 0, INT64_MAX);
			break;
		case 'b':
			B.id_base = number(optarg, "id-base", 0, INT64_MAX / 2);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!B.uri || optind != argc) {
		usage(stderr);
		return 2;
	}
	size_t ul = strlen(B.uri) + 32;
	B.read_uri = malloc(ul);
	if (!B.read_uri)
		return 1;
	snprintf(B.read_uri, ul, "%s%cconsistency=linearizable", B.uri, strchr(B.uri, '?') ? '&' : '?');
	B.log_fd = open_out(B.log_path);
	B.trace_fd = open_out(B.trace_path);
	tool_catch_stop();

	if (setup(&B) != 0) {
		fprintf(stderr, "mtrbank: could not create the accounts\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	int nt = B.writers + B.readers;
	struct thread *t = calloc((size_t)(nt ? nt : 1), sizeof *t);
	if (!t)
		return 1;
	for (int i = 0; i < nt; i++) {
		t[i].B = &B;
		t[i].index = i + 1;
		t[i].rng = (B.seed + 1) * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 0xBF58476D1CE4E5B9ULL + 1;
		if (pthread_create(&t[i].th, NULL, i < B.writers ? writer_main : reader_main, &t[i]) != 0) {
			fprintf(stderr, "mtrbank: cannot start a thread\n");
			return 1;
		}
	}
	for (int i = 0; i < nt; i++)
		pthread_join(t[i].th, NULL);
	long long v = atomic_load(&B.violations);
	printf("transfers %lld failed %lld reads %lld read_failed %lld violations %lld\n", (long long)atomic_load(&B.acked),
	       (long long)atomic_load(&B.failed), (long long)atomic_load(&B.reads),
	       (long long)atomic_load(&B.read_failed), v);
	free(t);
	free(B.read_uri);
	return v == 0 ? 0 : 1;
}
