/*
 * daemon.c - the signal set-up, the log file, the HTTP endpoint and the
 * run of a daemon's object (daemon.h).  Compiled into the two daemons with
 * httpd.c (mk/common.mk DAEMON_SRC), not into a library.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "httpd.h"
#include "log.h"
#include "metronome.h"

static const struct daemon_ops *the_ops;
static void *volatile the_obj;

static void on_hup(int sig)
{
	(void)sig;
	log_reopen();
	void *o = the_obj;
	if (o && the_ops->reload)
		the_ops->reload(o);
}

static void on_signal(int sig)
{
	(void)sig;
	void *o = the_obj;
	if (o)
		the_ops->stop(o);
}

static void h_metrics(void *arg, struct metrics_buf *b) { the_ops->metrics(arg, b); }
static int h_ready(void *arg, char *why, size_t n) { return the_ops->ready(arg, why, n); }
static int h_live(void *arg, char *why, size_t n) { return the_ops->live(arg, why, n); }

int daemon_main(const struct daemon_ops *ops, const void *cfg, int log_level, const char *tag,
		const char *log_file, const char *metrics_listen)
{
	if (getenv("MTR_LOG") == NULL)
		log_set_level(log_level);
	log_set_tag(tag);
	int lrc = log_open_file(log_file);
	if (lrc != 0) {
		mtr_log(LOG_ERROR, "log.file: cannot open %s: %s; make its directory writable or unset log.file",
			log_file, strerror(-lrc));
		return 1;
	}

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	the_ops = ops;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	void *obj = NULL;
	int rc = ops->open(cfg, &obj);
	if (rc != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		mtr_log(LOG_ERROR, "cannot start: %s", mtr_strerror(rc));
		return rc == MTR_ECONFIG ? 1 : 2;
	}
	struct httpd *http = NULL;
	if (metrics_listen && *metrics_listen) {
		/* its threads start with the signals blocked, like the object's */
		struct httpd_ops hops = {.arg = obj, .metrics = h_metrics, .ready = h_ready, .live = h_live};
		rc = httpd_start(ops->metrics_key, metrics_listen, &hops, &http);
		if (rc != 0) {
			ops->close(obj);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return rc == MTR_ECONFIG ? 1 : 2;
		}
	}
	the_obj = obj;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rc = ops->run(obj);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	the_obj = NULL;
	httpd_stop(http); /* before close: its threads read the object */
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
	fprintf(f, "\nSIGHUP reopens log.file (for logrotate) and, in mtrproxy, reads proxy.tls_cert and\n"
		   "proxy.tls_key again; it does not stop the daemon.\n");
	fprintf(f, "\nExit status: 0 after SIGTERM/SIGINT, 1 on a configuration error, 2 on a runtime failure.\n");
}
