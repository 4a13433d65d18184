/*
 * client_embed.c - the embedded mode of libmetronome: the application runs
 * the proxy (src/proxy/proxy.c) in a thread of its own process and multicasts to
 * the servers itself; no mtrproxy daemon is involved.
 *
 *   mtr+embedded://SERVER[,SERVER...][?cluster=ID&key=HEX32&group=IP:PORT
 *                  &consistency=...&timeout=MS&busy=MS]
 *       SERVER is a server's ip:port, in server id order (cluster.servers)
 *   local
 *       the local cluster of the Quick start (src/client/localcluster.h): started
 *       if it is not running (and left running), its servers and key taken
 *       from its proxy.conf
 *
 * The client and its proxy talk the ordinary client protocol over a
 * socketpair (proxy_attach), so every client feature works unchanged; a
 * handle has one proxy, so there is no failover (the proxy only dies with
 * the process).  doc/client.md, "Embedded mode".
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_int.h"
#include "clusterconf.h"
#include "conf.h"
#include "localcluster.h"
#include "log.h"
#include "proxy.h"
#include "util.h"

#define EMBED_SCHEME "mtr+embedded://"

int client_embed_uri(const char *uri)
{
	return !strcmp(uri, "local") || !strncmp(uri, EMBED_SCHEME, sizeof(EMBED_SCHEME) - 1);
}

struct client_embed {
	struct conf *conf;
	struct proxy *proxy;
	pthread_t thread;
	int running;
};

static const struct conf_key embed_keys[] = { CLUSTERCONF_KEYS, PROXY_KEYS };

static void *embed_main(void *arg)
{
	struct client_embed *e = arg;
	mtr_thread_name("mtr-embed");
	int rc = proxy_run(e->proxy);
	if (rc)
		mtr_log(LOG_ERROR, "client: embedded proxy stopped: %s", mtr_strerror(rc));
	return NULL;
}

/* Set one key; on error record it on db. */
static int set_key(mtr *db, struct conf *c, const char *key, const char *val, size_t len)
{
	char a[1200], err[300];
	if (snprintf(a, sizeof(a), "%s=%.*s", key, (int)len, val) >= (int)sizeof(a))
		return client_err(db, MTR_EINVAL, "URI: the value of %s is too long", key);
	if (conf_set(c, a, err, sizeof(err)))
		return client_err(db, MTR_EINVAL, "URI: %s", err);
	return 0;
}

/* mtr+embedded://servers?options into the proxy's configuration. */
static int parse_embedded(mtr *db, const char *uri, struct conf *c)
{
	const char *p = uri + sizeof(EMBED_SCHEME) - 1;
	const char *q = strchr(p, '?');
	size_t hlen = q ? (size_t)(q - p) : strlen(p);
	if (!hlen)
		return client_err(db, MTR_EINVAL, "URI %s names no server: write mtr+embedded://IP:PORT,IP:PORT,...",
				  uri);
	int rc = set_key(db, c, "cluster.servers", p, hlen);
	if (rc || !q)
		return rc;
	p = q + 1;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		const char *v = eq ? eq + 1 : p + len;
		size_t vlen = len - klen - (eq ? 1 : 0);
		if (klen == 7 && !memcmp(p, "cluster", 7))
			rc = set_key(db, c, "cluster.id", v, vlen);
		else if (klen == 5 && !memcmp(p, "group", 5))
			rc = set_key(db, c, "cluster.group", v, vlen);
		else if (klen == 8 && !memcmp(p, "insecure", 8))
			rc = set_key(db, c, "cluster.insecure", v, vlen);
		else if (klen == 3 && !memcmp(p, "key", 3)) {
			rc = set_key(db, c, "cluster.key", v, vlen);
			if (!rc)
				rc = client_uri_option(db, p, len);
		} else
			rc = client_uri_option(db, p, len);
		if (rc)
			return rc;
		p += len + (amp ? 1 : 0);
	}
	return 0;
}

int client_embed_open(mtr *db, const char *uri)
{
	char err[400];
	struct client_embed *e = calloc(1, sizeof(*e));
	if (!e)
		return client_err(db, MTR_ENOMEM, "out of memory");
	db->embed = e;
	int rc;
	if (!strcmp(uri, "local")) {
		struct localcluster lc;
		if ((rc = localcluster_init(&lc, NULL, NULL)))
			return client_err(db, rc, "local: no directory for the local cluster: set MTR_LOCAL_DIR (or HOME)");
		if ((rc = localcluster_up(&lc, 30000, err, sizeof(err))))
			return client_err(db, rc, "local: %s", err);
		char path[PATH_MAX + 16];
		snprintf(path, sizeof(path), "%s/proxy.conf", lc.dir);
		rc = conf_load(path, embed_keys, ARRAY_SIZE(embed_keys), &e->conf, err, sizeof(err));
		if (rc)
			return client_err(db, rc, "local: %s", err);
	} else {
		rc = conf_load(NULL, embed_keys, ARRAY_SIZE(embed_keys), &e->conf, err, sizeof(err));
		if (rc)
			return client_err(db, rc, "%s", err);
		if ((rc = parse_embedded(db, uri, e->conf)))
			return rc;
		if (db->tls_mode || db->tls_ca)
			return client_err(db, MTR_EINVAL, "tls= and ca= are for mtr:// URIs: the embedded proxy runs "
							  "in this process and needs no TLS");
	}
	struct proxy_config pc;
	if ((rc = proxy_config_read(e->conf, &pc, err, sizeof(err))))
		return client_err(db, rc, "embedded proxy: %s", err);
	pc.no_listen = 1;
	/* inside an application the proxy logs at the library's level:
	 * warnings and errors, unless MTR_LOG or mtr_config_log asks for more */
	pc.log_level = log_threshold;
	if ((rc = proxy_open(&pc, &e->proxy)))
		return client_err(db, rc, "embedded proxy: cannot start: %s", mtr_strerror(rc));
	if (pthread_create(&e->thread, NULL, embed_main, e))
		return client_err(db, MTR_ENOMEM, "embedded proxy: cannot start its thread");
	e->running = 1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
		return client_err(db, MTR_EIO, "embedded proxy: socketpair failed");
	if ((rc = proxy_attach(e->proxy, sv[0]))) {
		close(sv[0]);
		close(sv[1]);
		return client_err(db, rc, "embedded proxy: cannot attach: %s", mtr_strerror(rc));
	}
	char why[300] = "";
	uint64_t deadline = db->timeout_ms ? now_mono_ns() + (uint64_t)db->timeout_ms * 1000000ull : 0;
	if ((rc = client_handshake(db, sv[1], "embedded proxy", deadline, why, sizeof(why))))
		return client_err(db, rc, "embedded proxy: %s", why);
	return 0;
}

void client_embed_close(mtr *db)
{
	struct client_embed *e = db->embed;
	if (!e)
		return;
	if (e->running) {
		proxy_stop(e->proxy);
		pthread_join(e->thread, NULL);
	}
	proxy_close(e->proxy);
	conf_free(e->conf);
	free(e);
	db->embed = NULL;
}
