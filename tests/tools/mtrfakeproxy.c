/*
 * mtrfakeproxy - the fake proxy of tests/tools/fakeproxy.h as a process,
 * for the client integration suite (tests/integration/client.sh) until the
 * real mtrproxy exists.  NOT a proxy: it runs requests on one SQLite file.
 *
 *   mtrfakeproxy DBFILE [KILL_AFTER]
 *
 * Listens on two loopback ports (chosen by the kernel) and prints
 * "ports P0 P1" on stdout.  When KILL_AFTER > 0, proxy 0 dies (listener
 * and connections closed) after answering that many queries.  Runs until
 * killed (every answered request was committed to DBFILE first).
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define FAKE_CHECK(cond)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "mtrfakeproxy: check failed: %s\n", #cond); \
			abort();                                                \
		}                                                               \
	} while (0)
#include "fakeproxy.h"

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: mtrfakeproxy DBFILE [KILL_AFTER]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < FAKE_MAXCONN; i++)
		F.conns[i].fd = -1;
	pthread_mutex_init(&F.mu, NULL);
	if (sqlite3_open(argv[1], &F.db) != SQLITE_OK) {
		fprintf(stderr, "mtrfakeproxy: %s: %s\n", argv[1], sqlite3_errmsg(F.db));
		return 1;
	}
	sqlite3_exec(F.db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF", NULL, NULL, NULL);
	if (argc == 3)
		F.kill_after[0] = atoi(argv[2]);
	for (int i = 0; i < 2; i++)
		if ((F.lfd[i] = fake_listen(&F.port[i])) < 0) {
			perror("mtrfakeproxy: listen");
			return 1;
		}
	if (pipe(F.stop) != 0)
		return 1;
	printf("ports %d %d\n", F.port[0], F.port[1]);
	fflush(stdout);
	fake_main(NULL);
	return 0;
}
