/*
 * daemon.c - the signal set-up and the run of a daemon's object (daemon.h).
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "metronome.h"

static const struct daemon_ops *the_ops;
static void *volatile the_obj;

static void on_signal(int sig)
{
	(void)sig;
	void *o = the_obj;
	if (o)
		the_ops->stop(o);
}

int daemon_main(const struct daemon_ops *ops, const void *cfg, int log_level, const char *tag)
{
	if (getenv("MTR_LOG") == NULL)
		log_set_level(log_level);
	log_set_tag(tag);

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	the_ops = ops;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	void *obj = NULL;
	int rc = ops->open(cfg, &obj);
	if (rc != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		mtr_log(LOG_ERROR, "cannot start: %s", mtr_strerror(rc));
		return rc == MTR_ECONFIG ? 1 : 2;
	}
	the_obj = obj;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rc = ops->run(obj);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	the_obj = NULL;
	ops->close(obj);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "stopped on an error: %s", mtr_strerror(rc));
		return 2;
	}
	mtr_log(LOG_INFO, "stopped");
	return 0;
}

void daemon_usage(FILE *f, const char *name, const char *what, const struct conf_key *keys, size_t n)
{
	fprintf(f,
		"usage: %s -c FILE [-o key=value]... [--help] [--version]\n"
		"       %s --gen-key\n"
		"       %s --print-config-doc\n\n%s"
		"FILE holds `key = value` lines; -o sets or overrides one key.\n"
		"Keys (type, default, meaning):\n\n",
		name, name, name, what);
	conf_print_help(keys, n, f);
	fprintf(f, "\n--gen-key prints a new random cluster.key (32 hex digits): put the same one in the\n"
		   "configuration of every server and proxy of the cluster.\n");
	fprintf(f, "\nExit status: 0 after SIGTERM/SIGINT, 1 on a configuration error, 2 on a runtime failure.\n");
}
