/*
 * mtrproxy.c - the proxy daemon's main(): options, configuration, signals,
 * exit codes.  Everything else is the proxy object (proxy.h).
 *
 *   mtrproxy -c FILE [-o key=value]... [--help] [--version]
 *   mtrproxy --gen-key              (prints a new random cluster.key)
 *   mtrproxy --hash-password [NAME] (reads a password from stdin, without
 *                                    echo on a terminal, and prints the
 *                                    proxy.users line NAME:HASH)
 *   mtrproxy --print-config-doc     (the Markdown key table, for doc/config.md)
 *
 * SIGHUP reads the TLS certificate and key again (proxy_reload).
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
#include "daemon.h"
#include "log.h"
#include "metronome.h"
#include "proxy.h"
#include "proxy_auth.h"
#include "transport_dpdk.h"
#include "util.h"

static const struct conf_key keys[] = {CLUSTERCONF_KEYS, PROXY_KEYS, DAEMON_KEYS,
				       DAEMON_METRICS_KEY("proxy")};

static int d_open(const void *cfg, void **obj)
{
	return proxy_open(cfg, (struct proxy **)obj);
}
static int d_run(void *obj) { return proxy_run(obj); }
static void d_stop(void *obj) { proxy_stop(obj); }
static void d_close(void *obj) { proxy_close(obj); }
static void d_metrics(void *obj, struct metrics_buf *b) { proxy_metrics(obj, b); }
static int d_ready(void *obj, char *why, size_t n) { return proxy_ready(obj, why, n); }
static int d_live(void *obj, char *why, size_t n) { return proxy_live(obj, why, n); }
static void d_reload(void *obj) { proxy_reload(obj); }
static const struct daemon_ops proxy_daemon = {d_open, d_run, d_stop, d_close, d_metrics, d_ready, d_live,
					      "proxy.metrics_listen", d_reload};

static void usage(FILE *f)
{
	daemon_usage(f, "mtrproxy",
		     "Runs one Metronome proxy: clients connect over TCP (proxy.listen), their\n"
		     "writes go to every server as items, answers come back in request order.\n"
		     "mtrproxy --hash-password NAME reads a password from standard input (no echo on\n"
		     "a terminal) and prints the proxy.users line NAME:HASH (Argon2id).\n",
		     keys, ARRAY_SIZE(keys));
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--gen-key") == 0)
		return clusterconf_gen_key_main(stdout);
	if ((argc == 2 || argc == 3) && strcmp(argv[1], "--hash-password") == 0)
		return pxauth_hash_password_main(argc == 3 ? argv[2] : NULL);
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
	char tag[32];
	snprintf(tag, sizeof tag, "proxy %u", cfg.id);
	rc = daemon_main(&proxy_daemon, &cfg, cfg.log_level, tag, conf_str(c, "log.file"),
			 conf_str(c, "proxy.metrics_listen"));
	conf_free(c); /* after the proxy: its config borrows the dpdk strings */
	return rc;
}
