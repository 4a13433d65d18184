/*
 * mtrproxy.c - the proxy daemon's main(): options, configuration, signals,
 * exit codes.  Everything else is the proxy object (proxy.h).
 *
 *   mtrproxy -c FILE [-o key=value]... [--help] [--version]
 *   mtrproxy --print-config-doc     (the Markdown key table, for doc/config.md)
 *
 * Exit status: 0 after SIGTERM/SIGINT (clean stop), 1 on a configuration
 * error (one line naming the key and what to do), 2 on a runtime failure
 * (cannot bind or listen, a fatal error while running).
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clusterconf.h"
#include "conf.h"
#include "log.h"
#include "metronome.h"
#include "proxy.h"
#include "transport_dpdk.h"
#include "util.h"

static const struct conf_key keys[] = {CLUSTERCONF_KEYS, PROXY_KEYS};

static struct proxy *volatile the_proxy;

static void on_signal(int sig)
{
	(void)sig;
	struct proxy *p = the_proxy;
	if (p)
		proxy_stop(p);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mtrproxy -c FILE [-o key=value]... [--help] [--version]\n"
		"       mtrproxy --print-config-doc\n"
		"\n"
		"Runs one Metronome proxy: clients connect over TCP (proxy.listen), their\n"
		"writes go to every server as items, answers come back in request order.\n"
		"FILE holds `key = value` lines; -o sets or overrides one key.\n"
		"Keys (type, default, meaning):\n\n");
	conf_print_help(keys, ARRAY_SIZE(keys), f);
	fprintf(f, "\nExit status: 0 after SIGTERM/SIGINT, 1 on a configuration error, 2 on a runtime failure.\n");
}

int main(int argc, char **argv)
{
	transport_dpdk_enable();
	struct conf *c = NULL;
	int rc = conf_from_args("mtrproxy", argc, argv, keys, ARRAY_SIZE(keys), usage, &c);
	if (rc != 0)
		return rc > 0 ? 0 : 1;
	char err[512];
	struct proxy_config cfg;
	rc = proxy_config_read(c, &cfg, err, sizeof err);
	if (rc != 0) {
		fprintf(stderr, "mtrproxy: %s\n", err);
		conf_free(c);
		return 1;
	}
	if (getenv("MTR_LOG") == NULL)
		log_set_level(cfg.log_level);
	char tag[32];
	snprintf(tag, sizeof tag, "proxy %u", cfg.id);
	log_set_tag(tag);

	/* Signals are blocked while the proxy is created, so that a stop
	 * request that arrives meanwhile is delivered once the_proxy is set. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, &old);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct proxy *p = NULL;
	rc = proxy_open(&cfg, &p);
	if (rc != 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		mtr_log(LOG_ERROR, "cannot start: %s", mtr_strerror(rc));
		conf_free(c);
		return rc == MTR_ECONFIG ? 1 : 2;
	}
	the_proxy = p;
	sigprocmask(SIG_SETMASK, &old, NULL);
	rc = proxy_run(p);
	sigprocmask(SIG_BLOCK, &set, NULL);
	the_proxy = NULL;
	proxy_close(p);
	conf_free(c); /* after the proxy: its config borrows the dpdk strings */
	if (rc != 0) {
		mtr_log(LOG_ERROR, "stopped on an error: %s", mtr_strerror(rc));
		return 2;
	}
	mtr_log(LOG_INFO, "stopped");
	return 0;
}
