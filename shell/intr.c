/*
 * intr.c - signals in mtrsql, the way sqlite3 takes them (shell.h,
 * doc/mtrsql.1 "Signals").
 *
 * The handlers only set flags and write a byte to a pipe (the self-pipe
 * trick): the prompt loop and the wait for an answer poll that pipe, so a
 * signal is acted on by ordinary code, never inside a handler.
 *
 * The wait for the cluster runs mtr_step on a worker thread (signals
 * blocked there) while the main thread polls the pipe.  Ctrl-C calls
 * mtr_interrupt on the worker's handle (safe from another thread): a read
 * is cancelled on the cluster and the step returns at once with
 * SQLITE_INTERRUPT; a write already sent goes on and its outcome is
 * reported.  Only when the step has not returned INTR_GIVE_UP_MS after
 * that (a proxy that does not answer), at a second Ctrl-C, or at a
 * quitting signal, the worker is abandoned: it keeps the connection and
 * its statements, closes them when the answer (or the request timeout)
 * comes, and frees itself; the shell goes on with a new connection.  A
 * handle is used by one thread at a time (mtr_interrupt aside): the main
 * thread never touches an abandoned one again.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shell.h"

#define INTR_ASK_MS 1000     /* mtr_interrupt again this often while the step has not returned */
#define INTR_GIVE_UP_MS 2000 /* then abandon the worker */

volatile sig_atomic_t intr_int, intr_quit, intr_winch;
static int wake[2] = { -1, -1 };

static void wake_up(void)
{
	int e = errno;
	if (write(wake[1], "x", 1) < 0) {
		/* full: a wake-up is already pending */
	}
	errno = e;
}

static void on_signal(int sig)
{
	static struct timespec last;
	if (sig == SIGINT) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms = (now.tv_sec - last.tv_sec) * 1000LL + (now.tv_nsec - last.tv_nsec) / 1000000;
		if ((last.tv_sec || last.tv_nsec) && ms < 1000)
			intr_quit = SIGINT;
		last = now;
		intr_int = 1;
	} else if (sig == SIGWINCH) {
		intr_winch = 1;
	} else {
		intr_quit = sig;
	}
	wake_up();
}

int intr_init(int interactive)
{
	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK))
		return -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: a blocking read returns EINTR */
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	if (interactive)
		sigaction(SIGWINCH, &sa, NULL);
	return 0;
}

int intr_fd(void)
{
	return wake[0];
}

void intr_drain(void)
{
	char b[64];
	while (read(wake[0], b, sizeof b) > 0)
		;
}

struct job {
	pthread_mutex_t mu;
	mtr *db;
	mtr_stmt *st;
	int rc, done, orphan;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	int rc = mtr_step(j->st);
	pthread_mutex_lock(&j->mu);
	j->rc = rc;
	j->done = 1;
	int orphan = j->orphan;
	pthread_mutex_unlock(&j->mu);
	if (orphan) {
		mtr_close(j->db);
		pthread_mutex_destroy(&j->mu);
		free(j);
	} else {
		wake_up();
	}
	return NULL;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int intr_step(mtr *db, mtr_stmt *st, int *cancelled)
{
	*cancelled = 0;
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return mtr_step(st);
	pthread_mutex_init(&j->mu, NULL);
	j->db = db;
	j->st = st;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_t tid;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int prc = pthread_create(&tid, &attr, job_run, j);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc) {
		pthread_mutex_destroy(&j->mu);
		free(j);
		return mtr_step(st);
	}
	long long first_ask = 0, last_ask = 0;
	for (;;) {
		long long now = mono_ms();
		pthread_mutex_lock(&j->mu);
		int done = j->done;
		int abandon = 0;
		if (!done) {
			/* the worker has not returned: it cannot close db now */
			if (intr_quit || (intr_int && first_ask) || (first_ask && now - first_ask >= INTR_GIVE_UP_MS)) {
				mtr_interrupt(db); /* still tell the cluster, if the worker gets to it */
				abandon = 1;
			} else if (intr_int || (first_ask && now - last_ask >= INTR_ASK_MS)) {
				mtr_interrupt(db);
				if (!first_ask)
					first_ask = now;
				last_ask = now;
				intr_int = 0;
				*cancelled = 1;
			}
		}
		j->orphan = abandon;
		pthread_mutex_unlock(&j->mu);
		if (done)
			break;
		if (abandon) { /* the worker frees j: do not touch it again */
			intr_int = 0;
			return SHELL_EINTR;
		}
		int wait = -1;
		if (first_ask) {
			long long ask = last_ask + INTR_ASK_MS, end = first_ask + INTR_GIVE_UP_MS;
			long long next = ask < end ? ask : end;
			wait = next > now ? (int)(next - now) : 0;
		}
		struct pollfd p = { .fd = wake[0], .events = POLLIN };
		if (poll(&p, 1, wait) > 0)
			intr_drain();
	}
	int rc = j->rc;
	pthread_mutex_destroy(&j->mu);
	free(j);
	return rc;
}
