/*
 * metronomed.c - the replica server's main(): options, configuration,
 * signals, exit codes.  Everything else is the server object (server.h).
 *
 *   metronomed -c FILE [-o key=value]... [--init-from DB | --init-from-peer] [--help] [--version]
 *   metronomed -c FILE --init-from BACKUP --replay-from DATADIR --until INSTANCE|TIME
 *   metronomed --init-from BACKUP --replay-from DATADIR --until INSTANCE|TIME --out FILE
 *   metronomed --pitr-list DATADIR
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clusterconf.h"
#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "metronome.h"
#include "pitr.h"
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

/* metronomed --pitr-list DATADIR: what the log of DATADIR can restore. */
static int pitr_list_main(const char *dir)
{
	char err[1024];
	if (pitr_list(dir, stdout, err, sizeof err) != 0) {
		fprintf(stderr, "metronomed: --pitr-list %s: %s\n", dir, err);
		return 1;
	}
	return 0;
}

/* The point-in-time restore into the file out (pitr_restore); 0 or 1. */
static int pitr_main(const char *backup, const char *dir, const char *until, const char *out)
{
	char err[1024];
	struct pitr_opts o = {.backup = backup, .logdir = dir, .until = until, .out = out};
	struct pitr_result r;
	if (pitr_restore(&o, &r, err, sizeof err) != 0) {
		fprintf(stderr, "metronomed: point-in-time restore: %s\n", err);
		return 1;
	}
	char when[64] = "";
	if (r.until_ms) {
		time_t t = (time_t)(r.until_ms / 1000u);
		struct tm tm;
		char s[32];
		strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
		snprintf(when, sizeof when, " (chosen at %s.%03uZ)", s, (unsigned)(r.until_ms % 1000u));
	}
	printf("restored %s: backup at instance %llu + %llu instances (%llu items) from %s = instance %llu%s\n", out,
	       (unsigned long long)r.from, (unsigned long long)(r.until - r.from), (unsigned long long)r.items, dir,
	       (unsigned long long)r.until, when);
	fflush(stdout);
	return 0;
}

static void usage(FILE *f)
{
	daemon_usage(f, "metronomed",
		     "Runs one Metronome replica server.\n"
		     "--init-from DB (once, on an empty data.dir): create the replica from the SQLite file DB\n"
		     "(a .backup copy or any SQLite database); --init-from-peer (once, on an empty data.dir):\n"
		     "wait for the content of a peer that has some; see doc/server.md \"Origin\".\n"
		     "--init-from BACKUP --replay-from DATADIR --until INSTANCE|TIME [--out FILE]: point-in-time\n"
		     "restore: the backup plus the instances after it from the log of DATADIR, up to INSTANCE or\n"
		     "the last one chosen at or before TIME (YYYY-MM-DDTHH:MM:SS[.mmm]Z or @SECONDS); into FILE\n"
		     "and exit, or (without --out) into a new replica of data.dir.  --pitr-list DATADIR: what the\n"
		     "log of DATADIR can restore.  doc/operations.md \"Point-in-time restore\".\n",
		     keys, ARRAY_SIZE(keys));
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--gen-key") == 0)
		return clusterconf_gen_key_main(stdout);
	transport_dpdk_enable();
	/* --init-from DB is a one-time action, not a key: take it out first */
	const char *init_from = NULL, *replay_from = NULL, *until = NULL, *out = NULL;
	int init_peer = 0;
	int n = 0;
	if (argc == 3 && strcmp(argv[1], "--pitr-list") == 0)
		return pitr_list_main(argv[2]);
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--init-from-peer") == 0) {
			init_peer = 1;
			continue;
		}
		const char **pitr_opt = i == 0 ? NULL
				     : strcmp(argv[i], "--replay-from") == 0 ? &replay_from
				     : strcmp(argv[i], "--until") == 0	     ? &until
				     : strcmp(argv[i], "--out") == 0	     ? &out
									     : NULL;
		if (pitr_opt != NULL) {
			if (i + 1 >= argc || argv[i + 1][0] == 0) {
				fprintf(stderr, "metronomed: %s needs a value (see --help)\n", argv[i]);
				return 1;
			}
			*pitr_opt = argv[++i];
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
	if ((replay_from != NULL) != (until != NULL) || (out != NULL && replay_from == NULL) ||
	    (replay_from != NULL && init_from == NULL)) {
		fprintf(stderr, "metronomed: a point-in-time restore needs --init-from BACKUP --replay-from DATADIR "
				"--until INSTANCE|TIME [--out FILE]\n");
		return 1;
	}
	if (out != NULL)
		return pitr_main(init_from, replay_from, until, out);
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
	if (replay_from != NULL) {
		/* replayed first into a file in data.dir, which --init-from takes */
		char tmp[sizeof cfg->init_from];
		snprintf(tmp, sizeof tmp, "%.4000s/pitr-restore.db", cfg->data_dir);
		(void)mkdir(cfg->data_dir, 0700);
		unlink(tmp);
		rc = pitr_main(init_from, replay_from, until, tmp);
		if (rc != 0) {
			free(cfg);
			conf_free(c);
			return rc;
		}
		snprintf(cfg->init_from, sizeof cfg->init_from, "%s", tmp);
		cfg->init_from_remove = 1;
	}
	char tag[32];
	snprintf(tag, sizeof tag, "server %u", cfg->id);
	rc = daemon_main(&server_daemon, cfg, cfg->log_level, tag, conf_str(c, "log.file"),
			 conf_str(c, "server.metrics_listen"));
	free(cfg);
	conf_free(c); /* after the server: its config borrows the dpdk strings */
	return rc;
}
