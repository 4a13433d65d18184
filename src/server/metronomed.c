/*
 * metronomed.c - the replica server's main(): options, configuration,
 * signals, exit codes.  Everything else is the server object (server.h).
 *
 *   metronomed -c FILE [-o key=value]... [--init-from DB | --init-from-peer] [--help] [--version]
 *   metronomed --gen-key              (prints a new random cluster.key)
 *   metronomed --print-config-doc     (the Markdown key table of doc/config.md)
 *
 * Exit status: 0 after SIGTERM/SIGINT (clean stop), 1 on a configuration
 * error (one line naming the key and what to do), 2 on a runtime failure
 * (cannot bind, data directory unusable, a fatal error while running).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clusterconf.h"
#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "metronome.h"
#include "server.h"
#include "transport_dpdk.h"
#include "util.h"

static const struct conf_key keys[] = {CLUSTERCONF_KEYS, SERVER_KEYS, DAEMON_KEYS,
				       DAEMON_METRICS_KEY("server")};

static int d_open(const void *cfg, void **obj)
{
	return server_open(cfg, (struct server **)obj);
}
static int d_run(void *obj) { return server_run(obj); }
static void d_stop(void *obj) { server_stop(obj); }
static void d_close(void *obj) { server_close(obj); }
static void d_metrics(void *obj, struct metrics_buf *b) { server_metrics(obj, b); }
static int d_ready(void *obj, char *why, size_t n) { return server_ready(obj, why, n); }
static int d_live(void *obj, char *why, size_t n) { return server_live(obj, why, n); }
static const struct daemon_ops server_daemon = {d_open, d_run, d_stop, d_close, d_metrics, d_ready, d_live,
					      "server.metrics_listen", NULL};

static void usage(FILE *f)
{
	daemon_usage(f, "metronomed",
		     "Runs one Metronome replica server.\n"
		     "--init-from DB (once, on an empty data.dir): create the replica from the SQLite file DB\n"
		     "(a .backup copy or any SQLite database); --init-from-peer (once, on an empty data.dir):\n"
		     "wait for the content of a peer that has some; see doc/server.md \"Origin\".\n",
		     keys, ARRAY_SIZE(keys));
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--gen-key") == 0)
		return clusterconf_gen_key_main(stdout);
	transport_dpdk_enable();
	/* --init-from DB is a one-time action, not a key: take it out first */
	const char *init_from = NULL;
	int init_peer = 0;
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--init-from-peer") == 0) {
			init_peer = 1;
			continue;
		}
		if (i > 0 && strcmp(argv[i], "--init-from") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == 0) {
				fprintf(stderr, "metronomed: --init-from needs a SQLite file: --init-from FILE\n");
				return 1;
			}
			init_from = argv[++i];
			continue;
		}
		argv[n++] = argv[i];
	}
	argc = n;
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
	if (init_from != NULL && init_peer) {
		fprintf(stderr, "metronomed: --init-from and --init-from-peer exclude each other: give one\n");
		free(cfg);
		conf_free(c);
		return 1;
	}
	cfg->init_from_peer = init_peer;
	if (init_from != NULL) {
		if (strlen(init_from) >= sizeof cfg->init_from) {
			fprintf(stderr, "metronomed: --init-from: the path is too long\n");
			free(cfg);
			conf_free(c);
			return 1;
		}
		snprintf(cfg->init_from, sizeof cfg->init_from, "%s", init_from);
	}
	char tag[32];
	snprintf(tag, sizeof tag, "server %u", cfg->id);
	rc = daemon_main(&server_daemon, cfg, cfg->log_level, tag, conf_str(c, "log.file"),
			 conf_str(c, "server.metrics_listen"));
	free(cfg);
	conf_free(c); /* after the server: its config borrows the dpdk strings */
	return rc;
}
