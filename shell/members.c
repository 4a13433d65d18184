/*
 * members.c - membership changes for mtrctl and mtrsql (members.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "members.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One integer of a query's first row; 0 and *ok = 0 when none. */
static int64_t query_int(mtr *db, const char *sql, int *ok)
{
	mtr_stmt *st = NULL;
	*ok = 0;
	int64_t v = 0;
	if (mtr_prepare(db, sql, -1, &st, NULL) != 0)
		return 0;
	if (mtr_step(st) == MTR_ROW && mtr_column_text(st, 0) != NULL) {
		v = mtr_column_int64(st, 0);
		*ok = 1;
	}
	mtr_finalize(st);
	return v;
}

int members_change(mtr *db, int op, const char *addr, uint32_t id, uint32_t *new_id, double wait_s, FILE *out,
		   const char *who)
{
	double end = now_s() + wait_s, next_say = now_s() + 5;
	for (;;) {
		int rc = op == 'a' ? mtr_add_server(db, addr, new_id)
				   : op == 'p' ? mtr_promote_server(db, id) : mtr_remove_server(db, id);
		if (rc == 0)
			return 0;
		if ((rc != MTR_EBUSY && rc != MTR_EAGAIN) || now_s() >= end) {
			fprintf(stderr, "%s: %s\n", who, mtr_errmsg(db));
			return rc == MTR_EUNKNOWN || rc == MTR_ETIMEDOUT ? 3 : 1;
		}
		if (now_s() >= next_say) {
			fprintf(out, "asking again: %s\n", mtr_errmsg(db));
			fflush(out);
			next_say = now_s() + 5;
		}
		nap_ms(500);
	}
}

/* Wait until learner id has caught up with the voters (mtr_members). */
static int wait_caught_up(mtr *db, uint32_t id, double end, FILE *out, const char *who)
{
	char q1[160], q2[200];
	snprintf(q1, sizeof q1, "SELECT applied FROM mtr_members WHERE id = %u AND alive", id);
	snprintf(q2, sizeof q2,
		 "SELECT max(applied) FROM mtr_members WHERE membership = 'voter' AND alive AND id != %u", id);
	double next_say = now_s() + 5;
	while (now_s() < end) {
		int ok1, ok2;
		int64_t mine = query_int(db, q1, &ok1), theirs = query_int(db, q2, &ok2);
		if (ok1 && ok2 && mine > 0 && mine + MEMBERS_CAUGHT_UP >= theirs) {
			fprintf(out, "server %u has caught up (applied %" PRId64 ", the voters %" PRId64 ")\n", id, mine,
				theirs);
			return 0;
		}
		if (now_s() >= next_say) {
			fprintf(out, "waiting for server %u to catch up (applied %s%" PRId64 ", the voters %" PRId64 ")\n",
				id, ok1 ? "" : "unknown: not heard yet, ", mine, theirs);
			fflush(out);
			next_say = now_s() + 5;
		}
		nap_ms(200);
	}
	fprintf(stderr, "%s: server %u did not catch up in time: is it running (metronomed with server.id = %u "
			"and --init-from-peer)?  It stays a learner; make it a voter later (promote-server %u)\n",
		who, id, id, id);
	return 1;
}

int members_add(mtr *db, const char *addr, int learner, double wait_s, FILE *out, const char *who)
{
	double end = now_s() + wait_s;
	uint32_t nid = 0;
	int rc = members_change(db, 'a', addr, 0, &nid, wait_s, out, who);
	if (rc != 0)
		return rc;
	fprintf(out, "server %u added as a learner at %s\n", nid, addr);
	fflush(out);
	if (learner)
		return 0;
	rc = wait_caught_up(db, nid, end, out, who);
	if (rc == 0)
		rc = members_change(db, 'p', NULL, nid, NULL, end - now_s() > 1 ? end - now_s() : 1, out, who);
	if (rc == 0)
		fprintf(out, "server %u is a voter\n", nid);
	return rc;
}
