/*
 * metronomed.c - the replica server's main(): options, configuration,
 * signals, exit codes.  Everything else is the server object (server.h).
 *
 *   metronomed -c FILE [-o key=value]... [--help] [--version]
 *   metronomed --print-config-doc     (the Markdown key table of doc/config.md)
 *
 * Exit status: 0 after SIGTERM/SIGINT (clean stop), 1 on a configuration
 * error (one line naming the key and what to do), 2 on a runtime failure
 * (cannot bind, data directory unusable, a fatal error while running).
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clusterconf.h"
#include "conf.h"
#include "log.h"
#include "metronome.h"
#include "server.h"
#include "transport_dpdk.h"
#include "util.h"

static const struct conf_key keys[] = {CLUSTERCONF_KEYS, SERVER_KEYS};

static struct server *the_server;

static void on_signal(int sig)
{
	(void)sig;
	if (the_server)
		server_stop(the_server);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: metronomed -c FILE [-o key=value]... [--help] [--version]\n"
		"       metronomed --print-config-doc\n"
		"\n"
		"Runs one Metronome replica server.  FILE holds `key = value` lines; -o sets\n"
		"or overrides one key.  Keys (type, default, meaning):\n\n");
	conf_print_help(keys, ARRAY_SIZE(keys), f);
	fprintf(f, "\nExit status: 0 after SIGTERM/SIGINT, 1 on a configuration error, 2 on a runtime failure.\n");
}

int main(int argc, char **argv)
{
	transport_dpdk_enable();
	struct conf *c = NULL;
	int rc = conf_from_args("metronomed", argc, argv, keys, ARRAY_SIZE(keys), usage, &c);
	if (rc != 0)
		return rc > 0 ? 0 : 1;
	char err[512];
	struct server_config *cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL) {
		conf_free(c);
		return 2;
	}
	rc = server_config_read(c, cfg, err, sizeof err);
	if (rc != 0) {
		fprintf(stderr, "metronomed: %s\n", err);
		free(cfg);
		conf_free(c);
		return 1;
	}
	if (getenv("MTR_LOG") == NULL)
		log_set_level(cfg->log_level);
	char tag[32];
	snprintf(tag, sizeof tag, "server %u", cfg->id);
	log_set_tag(tag);

	/* Signals are blocked while the server is created, so a stop request
	 * never races with the_server being set. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct server *s = NULL;
	rc = server_open(cfg, &s);
	free(cfg);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "cannot start: %s", mtr_strerror(rc));
		conf_free(c);
		return rc == MTR_ECONFIG ? 1 : 2;
	}
	the_server = s;
	/* server_run creates its threads with every signal blocked, so only
	 * this thread receives SIGTERM/SIGINT */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rc = server_run(s);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	the_server = NULL;
	server_close(s);
	conf_free(c); /* after the server: its config borrows the dpdk strings */
	if (rc != 0) {
		mtr_log(LOG_ERROR, "stopped on an error: %s", mtr_strerror(rc));
		return 2;
	}
	mtr_log(LOG_INFO, "stopped");
	return 0;
}
