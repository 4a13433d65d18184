/*
 * mtrctl - the operator's tool for a cluster's membership (doc/mtrctl.1,
 * doc/operations.md "Add a server"):
 *
 *   mtrctl [URL] add-server [--learner] [--wait SECONDS] ADDR
 *   mtrctl [URL] promote-server [--wait SECONDS] ID
 *   mtrctl [URL] remove-server [--wait SECONDS] ID
 *   mtrctl [URL] members
 *
 * Everything goes through a proxy (libmetronome: mtr_add_server,
 * mtr_promote_server, mtr_remove_server, and SELECT ... FROM mtr_members).
 * add-server adds a learner, waits until it has caught up (its applied
 * instance in mtr_members within MEMBERS_CAUGHT_UP of the voters'), then makes it a
 * voter.  A change refused for the moment (another change pending, no
 * leader, the learner not caught up) is asked again every 500 ms until
 * --wait (default 600 s) has passed.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "members.h"
#include "metronome.h"

#define DEFAULT_URL "mtr://127.0.0.1:7400"

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrctl [URL] add-server [--learner] [--wait SECONDS] ADDR\n"
		   "       mtrctl [URL] promote-server [--wait SECONDS] ID\n"
		   "       mtrctl [URL] remove-server [--wait SECONDS] ID\n"
		   "       mtrctl [URL] members\n"
		   "URL: the proxy, mtr://[USER@]HOST[:PORT] (default " DEFAULT_URL
		   "; the password from MTR_PASSWORD).\n"
		   "add-server adds ADDR (IP:PORT, the new server's server.address) as a learner under a new id,\n"
		   "waits until it has caught up and makes it a voter (--learner: stop after adding it).\n"
		   "See mtrctl(1) and doc/operations.md.\n");
}

static int members(mtr *db)
{
	mtr_stmt *st = NULL;
	if (mtr_prepare(db, "SELECT id, address, membership, role, alive, chosen, applied, state FROM mtr_members "
			    "ORDER BY id",
			-1, &st, NULL) != 0) {
		fprintf(stderr, "mtrctl: members: %s\n", mtr_errmsg(db));
		return 1;
	}
	int rc = mtr_step(st), n = mtr_column_count(st);
	for (int i = 0; i < n; i++)
		printf("%s%s", i ? "|" : "", mtr_column_name(st, i));
	printf("\n");
	for (; rc == MTR_ROW; rc = mtr_step(st)) {
		for (int i = 0; i < n; i++) {
			const unsigned char *t = mtr_column_text(st, i);
			printf("%s%s", i ? "|" : "", t ? (const char *)t : "");
		}
		printf("\n");
	}
	if (rc != MTR_DONE) {
		fprintf(stderr, "mtrctl: members: %s\n", mtr_errmsg(db));
		mtr_finalize(st);
		return 1;
	}
	mtr_finalize(st);
	return 0;
}

static int parse_id(const char *s, uint32_t *id)
{
	char *e;
	errno = 0;
	unsigned long v = strtoul(s, &e, 10);
	if (errno || e == s || *e || v > 63) {
		fprintf(stderr, "mtrctl: '%s' is not a server id (0..63): see mtrctl members\n", s);
		return -1;
	}
	*id = (uint32_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	const char *url = getenv("MTR_URL") ? getenv("MTR_URL") : DEFAULT_URL;
	if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (i < argc && strncmp(argv[i], "mtr", 3) == 0 && strstr(argv[i], "://"))
		url = argv[i++];
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i++];
	int learner = 0;
	double wait = 600;
	while (i < argc && strncmp(argv[i], "--", 2) == 0) {
		if (strcmp(argv[i], "--learner") == 0 && strcmp(cmd, "add-server") == 0) {
			learner = 1;
			i++;
		} else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
			wait = atof(argv[i + 1]);
			i += 2;
		} else {
			fprintf(stderr, "mtrctl: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	int op = strcmp(cmd, "add-server") == 0	     ? 'a'
		 : strcmp(cmd, "promote-server") == 0 ? 'p'
		 : strcmp(cmd, "remove-server") == 0  ? 'r'
		 : strcmp(cmd, "members") == 0	      ? 'm'
						      : 0;
	if (op == 0 || argc - i != (op == 'm' ? 0 : 1)) {
		if (op == 0)
			fprintf(stderr, "mtrctl: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	uint32_t id = 0;
	if ((op == 'p' || op == 'r') && parse_id(argv[i], &id) != 0)
		return 2;
	mtr *db = NULL;
	if (mtr_open(url, &db) != 0) {
		fprintf(stderr, "mtrctl: %s: %s\n", url, db ? mtr_errmsg(db) : "cannot open");
		mtr_close(db);
		return 1;
	}
	int rc = 0;
	if (op == 'm') {
		rc = members(db);
	} else if (op == 'a') {
		rc = members_add(db, argv[i], learner, wait, stdout, "mtrctl");
	} else {
		rc = members_change(db, op, NULL, id, NULL, wait, stdout, "mtrctl");
		if (rc == 0)
			printf("server %u %s\n", id, op == 'p' ? "is a voter" : "removed");
	}
	mtr_close(db);
	return rc;
}
