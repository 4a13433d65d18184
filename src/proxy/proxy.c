/*
 * proxy.c - the proxy: clients over TCP in, items to every server out,
 * results back to the clients, all on one thread with one epoll loop.
 *
 * One loop iteration:
 *   epoll_wait (timeout: 0 when work is queued, else the next timer)
 *   accept / attach / read clients -> decode frames -> QUERY:
 *       proxy_item_build; errors and "nothing to do" answer at once;
 *       writes (and linearizable reads) -> outbuf_put, numbered in a batch;
 *       none/session reads -> READ datagram to one server
 *   drain the transport: RESULT (answers), RESEND (repair), STATUS (routing)
 *   pack the batch into ITEMS / FRAGMENT datagrams: one send_group call
 *   timers: heartbeat, RESULT_REQUEST for late results, read retries
 *   write the clients' answers, adjust what epoll watches
 *
 * Answers leave in request order per connection: every request of a
 * connection has a `struct pend` in the connection's FIFO, and only the done
 * prefix of the FIFO is written.  Writes wait in `slots` (a ring indexed by
 * seq) for their first whole RESULT; the outbuf is released up to the
 * highest seq below which every seq has a result.  Push-back: when
 * outbuf_put says MTR_EFULL the frame stays in its client's input buffer and
 * no client is read until a release makes room.  doc/proxy.md explains it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cproto.h"
#include "log.h"
#include "metronome.h"
#include "outbuf.h"
#include "proxy.h"
#include "proxy_auth.h"
#include "proxy_int.h"
#include "proxy_item.h"
#include "result.h"
#include "tlsconn.h"
#include "util.h"

uint64_t proxy_mono_ms(void) { return now_mono_ns() / 1000000u; }

int64_t proxy_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- configuration -------------------------------------------------------- */

void proxy_config_defaults(struct proxy_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->cc.cluster_id = 1;
	strcpy(cfg->cc.kind, "udp");
	cfg->cc.mtu = 0; /* auto: clusterconf_mtu */
	cfg->cc.rcvbuf = 8 << 20;
	transport_addr_parse("127.0.0.1:7400", CPROTO_DEFAULT_PORT, &cfg->listen);
	cfg->id = 256;
	cfg->bind_auto = 1;
	cfg->buffer_bytes = 64u << 20;
	cfg->buffer_items = 262144;
	cfg->heartbeat_ms = 10;
	cfg->result_timeout_ms = 500;
	cfg->read_timeout_ms = 5000;
	cfg->write_timeout_ms = 8000;
	cfg->max_clients = 1024;
	cfg->client_buffer = 16u << 20;
	cfg->max_frame = CPROTO_MAX_FRAME;
	cfg->handshake_ms = 5000;
	cfg->idle_ms = 0;
	cfg->max_per_source = 64;
	cfg->log_level = LOG_INFO;
}

static int range_key(const struct conf *c, const char *key, int64_t lo, int64_t hi, const char *what, int64_t *v,
		     char *err, size_t errlen)
{
	*v = conf_int(c, key);
	if (*v < lo || *v > hi) {
		snprintf(err, errlen, "%s: %lld is out of range; use %s", key, (long long)*v, what);
		return MTR_ECONFIG;
	}
	return 0;
}

/* proxy.tls, proxy.tls_cert, proxy.tls_key: checked here, files included
 * (readable, key matching, certificate valid now), so that mtrproxy stops
 * at start with one line naming the key. */
static int tls_config_read(const struct conf *c, struct proxy_config *out, char *err, size_t errlen)
{
	const char *mode = conf_str(c, "proxy.tls");
	const char *cert = conf_str(c, "proxy.tls_cert");
	const char *key = conf_str(c, "proxy.tls_key");
	int have = (cert && *cert) || (key && *key);
	if (mode == NULL || *mode == 0)
		out->tls_mode = have ? PROXY_TLS_REQUIRE : PROXY_TLS_OFF;
	else if (strcmp(mode, "off") == 0)
		out->tls_mode = PROXY_TLS_OFF;
	else if (strcmp(mode, "allow") == 0)
		out->tls_mode = PROXY_TLS_ALLOW;
	else if (strcmp(mode, "require") == 0)
		out->tls_mode = PROXY_TLS_REQUIRE;
	else {
		snprintf(err, errlen, "proxy.tls: '%s' is unknown; use off, allow or require", mode);
		return MTR_ECONFIG;
	}
	if (out->tls_mode == PROXY_TLS_OFF)
		return 0;
	if (!cert || !*cert || !key || !*key) {
		snprintf(err, errlen, "proxy.tls = %s needs proxy.tls_cert and proxy.tls_key (PEM files)",
			 out->tls_mode == PROXY_TLS_ALLOW ? "allow" : "require");
		return MTR_ECONFIG;
	}
	if (strlen(cert) >= sizeof out->tls_cert || strlen(key) >= sizeof out->tls_key) {
		snprintf(err, errlen, "proxy.tls_cert / proxy.tls_key: path longer than %zu bytes",
			 sizeof out->tls_cert - 1);
		return MTR_ECONFIG;
	}
	strcpy(out->tls_cert, cert);
	strcpy(out->tls_key, key);
	struct tlsctx *t = NULL;
	int rc = tlsctx_server(cert, key, err, errlen, NULL, 0, &t);
	tlsctx_free(t);
	return rc;
}

int proxy_config_read(const struct conf *c, struct proxy_config *out, char *err, size_t errlen)
{
	proxy_config_defaults(out);
	int rc = clusterconf_read(c, &out->cc, err, errlen);
	if (rc)
		return rc;
	const char *l = conf_str(c, "proxy.listen");
	if (l == NULL || *l == 0 || strcmp(l, "none") == 0) {
		out->no_listen = 1;
	} else if (transport_addr_parse(l, CPROTO_DEFAULT_PORT, &out->listen)) {
		snprintf(err, errlen, "proxy.listen: '%s' is not an address; write a.b.c.d:port", l);
		return MTR_ECONFIG;
	}
	const char *b = conf_str(c, "proxy.bind");
	out->bind_auto = b == NULL || *b == 0;
	if (!out->bind_auto && transport_addr_parse(b, 0, &out->bind)) {
		snprintf(err, errlen, "proxy.bind: '%s' is not an address; write a.b.c.d:port (port 0: any)", b);
		return MTR_ECONFIG;
	}
	int64_t v;
	if ((rc = range_key(c, "proxy.id", 16, UINT32_MAX, "16 .. 4294967295 (0..15 are server ids)", &v, err,
			    errlen)))
		return rc;
	out->id = (uint32_t)v;
	if ((rc = range_key(c, "proxy.buffer", 64 << 10, INT64_MAX, "at least 64K", &v, err, errlen)))
		return rc;
	out->buffer_bytes = (uint64_t)v;
	if ((rc = range_key(c, "proxy.buffer_items", 16, 1 << 26, "16 .. 67108864", &v, err, errlen)))
		return rc;
	out->buffer_items = (uint32_t)v;
	if ((rc = range_key(c, "proxy.heartbeat", 1, 60000, "1ms .. 60s", &v, err, errlen)))
		return rc;
	out->heartbeat_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.result_timeout", 1, 3600000, "1ms .. 1h", &v, err, errlen)))
		return rc;
	out->result_timeout_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.read_timeout", 5, 3600000, "5ms .. 1h", &v, err, errlen)))
		return rc;
	out->read_timeout_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.write_timeout", 10, 3600000, "10ms .. 1h", &v, err, errlen)))
		return rc;
	out->write_timeout_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.max_clients", 1, 1000000, "1 .. 1000000", &v, err, errlen)))
		return rc;
	out->max_clients = (uint32_t)v;
	if ((rc = range_key(c, "proxy.client_buffer", 4096, INT64_MAX, "at least 4K", &v, err, errlen)))
		return rc;
	out->client_buffer = (uint64_t)v;
	if ((rc = range_key(c, "proxy.handshake_timeout", 0, 3600000, "0 (none) .. 1h", &v, err, errlen)))
		return rc;
	out->handshake_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.idle_timeout", 0, 604800000, "0 (never) .. 7 days", &v, err, errlen)))
		return rc;
	out->idle_ms = (uint32_t)v;
	if ((rc = range_key(c, "proxy.max_conns_per_source", 0, 1000000, "0 (no limit) .. 1000000", &v, err,
			    errlen)))
		return rc;
	out->max_per_source = (uint32_t)v;
	out->insecure = conf_bool(c, "proxy.insecure");
	const char *adm = conf_str(c, "proxy.admins");
	if (adm && *adm) {
		if (strlen(adm) >= sizeof out->admins) {
			snprintf(err, errlen, "proxy.admins: the list is longer than %zu bytes", sizeof out->admins - 1);
			return MTR_ECONFIG;
		}
		if (!conf_str(c, "proxy.users") || !*conf_str(c, "proxy.users")) {
			snprintf(err, errlen, "proxy.admins is set without proxy.users: admins are users who log in; set "
					      "proxy.users too, or remove proxy.admins");
			return MTR_ECONFIG;
		}
		strcpy(out->admins, adm);
	}
	const char *u = conf_str(c, "proxy.users");
	if (u && *u) {
		if (strlen(u) >= sizeof out->users) {
			snprintf(err, errlen, "proxy.users: the path is longer than %zu bytes", sizeof out->users - 1);
			return MTR_ECONFIG;
		}
		strcpy(out->users, u);
		/* read it now, so that a bad file is a configuration error */
		struct pxauth_users us;
		if ((rc = pxauth_users_load(out->users, &us, err, errlen)) != 0)
			return rc == MTR_ENOMEM ? rc : MTR_ECONFIG;
		pxauth_users_free(&us);
	} else if (!out->no_listen && (out->listen.ip >> 24) != 127 && !out->insecure) {
		char a[32];
		transport_addr_format(&out->listen, a, sizeof a);
		snprintf(err, errlen,
			 "proxy.listen is %s, not a loopback address, and proxy.users is not set: anyone who reaches "
			 "it could read and write; set proxy.users (mtrproxy --hash-password NAME makes an entry), or "
			 "proxy.insecure = yes to run without client authentication",
			 a);
		return MTR_ECONFIG;
	}
	if ((rc = tls_config_read(c, out, err, errlen)))
		return rc;
	const char *lv = conf_str(c, "log.level");
	out->log_level = log_level_parse(lv ? lv : "info");
	if (out->log_level < 0) {
		snprintf(err, errlen, "log.level: '%s' is unknown; use error, warn, info, debug or trace", lv);
		return MTR_ECONFIG;
	}
	return 0;
}

/* ---- the loop -------------------------------------------------------------- */

#define TAG_LISTEN ((void *)1)
#define TAG_TRANSPORT ((void *)2)
#define TAG_EVENT ((void *)3)

static void take_attached(struct proxy *p)
{
	uint64_t v;
	ssize_t r = read(p->efd, &v, sizeof v);
	(void)r;
	if (atomic_exchange(&p->reload, 0))
		pxtls_reload(p);
	pthread_mutex_lock(&p->mu);
	int fds[64];
	unsigned n = 0;
	while (p->nattach && n < ARRAY_SIZE(fds))
		fds[n++] = p->attach[--p->nattach];
	int more = p->nattach > 0;
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < n; i++)
		pxcli_add(p, fds[i], "attached");
	if (more) {
		uint64_t one = 1;
		r = write(p->efd, &one, sizeof one);
	}
}

int proxy_run(struct proxy *p)
{
	struct epoll_event evs[64];
	int rc = 0;
	while (!atomic_load(&p->stop)) {
		int tmo = pxnet_next_timeout(p), ctmo = pxcli_next_timeout(p);
		if (ctmo >= 0 && (tmo < 0 || ctmo < tmo))
			tmo = ctmo;
		if (p->tfd < 0 && tmo != 0) {
			/* a transport without an fd (dpdk): wait on it and on
			 * the epoll set together, then take the events */
			if (transport_wait_fd(p->t, p->ep, tmo) < 0) {
				mtr_log(LOG_ERROR, "proxy: waiting on the transport failed");
				rc = MTR_EIO;
				break;
			}
			tmo = 0;
		}
		int n = epoll_wait(p->ep, evs, ARRAY_SIZE(evs), tmo);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			mtr_log(LOG_ERROR, "proxy: epoll_wait: %s", strerror(errno));
			rc = MTR_EIO;
			break;
		}
		p->now_ms = proxy_mono_ms();
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			if (tag == TAG_LISTEN) {
				pxcli_accept_all(p);
			} else if (tag == TAG_EVENT) {
				take_attached(p);
				if (p->auth)
					pxcli_auth_done(p);
			} else if ((uintptr_t)tag & 1u) {
				/* a backup's channel (proxy_backup.c): tagged pointers */
				pxbk_event(p, (struct pxbackup *)((uintptr_t)tag & ~(uintptr_t)1u));
			} else if (tag != TAG_TRANSPORT) {
				struct client *c = tag;
				if (c->dead)
					continue;
				if (evs[i].events & EPOLLOUT)
					pxcli_write(p, c);
				if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					pxcli_read(p, c);
				pxcli_mark_dirty(p, c); /* its epoll interest may change */
			}
		}
		if ((rc = pxnet_transport_drain(p)) != 0)
			break;
		if (p->blocked && p->released_any) {
			/* Resume with the client whose request hit the full buffer,
			 * then the others in turn, so that push-back cannot starve
			 * the clients at the end of the list. */
			p->blocked = 0;
			struct client *start = p->full_client ? p->full_client : p->clients;
			for (struct client *c = start; c; c = c->next) {
				pxcli_mark_dirty(p, c);
				if (c->backlog && !p->blocked && !c->dead)
					pxcli_process(p, c);
			}
			for (struct client *c = p->clients; c && c != start; c = c->next) {
				pxcli_mark_dirty(p, c);
				if (c->backlog && !p->blocked && !c->dead)
					pxcli_process(p, c);
			}
		}
		p->released_any = 0;
		pxnet_flush_items(p);
		pxnet_timers(p);
		pxcli_timers(p);
		pxmem_tick(p);
		pxnet_sendq_flush(p, &p->gq);
		pxnet_reads_flush(p);
		pxnet_sendq_flush(p, &p->tq);
		for (uint32_t i = 0; i < p->ndirty; i++) {
			struct client *c = p->dirty[i];
			c->dirty = 0;
			if (c->dead)
				continue;
			pxcli_write(p, c);
			if (!c->dead && c->backlog && !p->blocked && !pxcli_paused(p, c))
				pxcli_process(p, c); /* may mark more dirty: handled below */
		}
		for (uint32_t i = 0; i < p->ndirty; i++) {
			struct client *c = p->dirty[i];
			c->dirty = 0;
			if (!c->dead)
				pxcli_events(p, c);
		}
		p->ndirty = 0;
		while (p->dead) {
			struct client *c = p->dead;
			p->dead = c->dnext;
			free(c->in);
			cproto_buf_free(&c->out);
			free(c);
		}
		if (p->backups)
			pxbk_sweep(p);
		pthread_mutex_lock(&p->mu);
		p->pub = p->st;
		memcpy(p->pub_drops, p->drops, sizeof p->drops);
		memcpy(p->pub_tls, p->tls_counts, sizeof p->tls_counts);
		transport_counters(p->t, &p->pub_tc);
		p->pub_heard = 0;
		p->pub_servers = (unsigned)__builtin_popcountll(p->servers);
		for (unsigned i = 0; i < PROXY_SERVER_IDS; i++)
			p->pub_heard += (p->servers & (UINT64_C(1) << i)) && p->srv[i].known &&
					p->now_ms - p->srv[i].seen_ms < ALIVE_MS;
		pthread_mutex_unlock(&p->mu);
		atomic_store_explicit(&p->loop_ms, p->now_ms, memory_order_relaxed);
	}
	pthread_mutex_lock(&p->mu);
	p->closing = 1;
	p->pub = p->st;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* ---- open / close ----------------------------------------------------------- */

static int listen_open(struct proxy *p)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MTR_EIO;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->cfg.listen.port),
				 .sin_addr.s_addr = htonl(p->cfg.listen.ip)};
	char a[32];
	transport_addr_format(&p->cfg.listen, a, sizeof a);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 256) != 0) {
		int e = errno;
		mtr_log(LOG_ERROR, "proxy: cannot listen on %s: %s", a, strerror(e));
		close(fd);
		return e == EADDRINUSE ? MTR_EEXIST : MTR_EIO;
	}
	socklen_t sl = sizeof sa;
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	p->laddr.ip = ntohl(sa.sin_addr.s_addr);
	p->laddr.port = ntohs(sa.sin_port);
	p->lfd = fd;
	return 0;
}

int proxy_open(const struct proxy_config *cfg, struct proxy **out)
{
	*out = NULL;
	if (cfg->cc.nservers == 0 || cfg->cc.nservers > CLUSTERCONF_MAX_SERVERS) {
		mtr_log(LOG_ERROR, "proxy: no servers configured (cluster.servers)");
		return MTR_ECONFIG;
	}
	struct proxy *p = calloc(1, sizeof *p);
	if (p == NULL)
		return MTR_ENOMEM;
	struct apply_result er = {0};
	long en = result_encode(&er, p->empty_result, sizeof p->empty_result);
	p->empty_result_len = en > 0 ? (uint32_t)en : 0;
	p->cfg = *cfg;
	p->leader = PXMEM_NO_LEADER;
	if (p->cfg.max_frame == 0 || p->cfg.max_frame > CPROTO_MAX_FRAME)
		p->cfg.max_frame = CPROTO_MAX_FRAME;
	if (p->cfg.heartbeat_ms == 0)
		p->cfg.heartbeat_ms = 10;
	if (p->cfg.result_timeout_ms == 0)
		p->cfg.result_timeout_ms = 500;
	if (p->cfg.read_timeout_ms == 0)
		p->cfg.read_timeout_ms = 5000;
	if (p->cfg.write_timeout_ms == 0)
		p->cfg.write_timeout_ms = 8000;
	p->from = (struct wire_from){.cluster = p->cfg.cc.cluster_id, .sender = p->cfg.id, .key = &p->cfg.cc.key};
	if (p->cfg.max_clients == 0)
		p->cfg.max_clients = 1024;
	if (p->cfg.client_buffer == 0)
		p->cfg.client_buffer = 16u << 20;
	p->lfd = p->efd = p->ep = p->tfd = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->hmu, NULL);
	p->probe.fd = -1;
	int rc = MTR_ENOMEM;

	uint8_t rnd[16];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		mtr_log(LOG_ERROR, "proxy: getrandom: %s", strerror(errno));
		rc = MTR_EIO;
		goto fail;
	}
	p->stream = proxy_stream_id((uint64_t)proxy_wall_us(), rnd);
	memcpy(&p->prng, rnd + 8, 8);

	if ((rc = outbuf_init(&p->ob, cfg->buffer_bytes, cfg->buffer_items)) != 0) {
		mtr_log(LOG_ERROR, "proxy: cannot allocate the item buffer (proxy.buffer, proxy.buffer_items)");
		goto fail;
	}
	rc = MTR_ENOMEM;
	p->cap = cfg->buffer_items;
	p->slots = calloc(p->cap, sizeof *p->slots);
	if (p->slots == NULL)
		goto fail;

	struct transport_config tc;
	transport_config_init(&tc);
	clusterconf_transport(&p->cfg.cc, &tc);
	tc.bind = cfg->bind;
	if (cfg->bind_auto && tc.bind.ip == 0 && strcmp(p->cfg.cc.kind, "udp") == 0) {
		/* our own address, not 0.0.0.0: datagrams to any other local
		 * address never reach the proxy */
		rc = transport_local_addr(&cfg->cc.servers[0], &tc.bind.ip);
		if (rc != 0) {
			char a[32];
			mtr_log(LOG_ERROR, "proxy: no local address toward server 0 (%s); set proxy.bind",
				transport_addr_format(&cfg->cc.servers[0], a, sizeof a));
			goto fail;
		}
	}
	/* sends of the datagram size chosen (auto: the route MTU toward the
	 * servers); receives of any size a server may send */
	p->mtu = clusterconf_mtu(&cfg->cc, -1);
	if (cfg->cc.mtu == 0)
		mtr_log(LOG_INFO, "proxy: transport.mtu auto: datagrams of at most %u bytes", (unsigned)p->mtu);
	tc.mtu = strcmp(cfg->cc.kind, "udp") == 0 ? WIRE_MAX_DGRAM : p->mtu;
	if ((rc = transport_open(&tc, &p->t)) != 0)
		goto fail;
	p->tfd = transport_fd(p->t);
	rc = MTR_ENOMEM;
	p->gq.mem = malloc(SENDQ_CAP * p->mtu);
	p->tq.mem = malloc(SENDQ_CAP * p->mtu);
	p->gq.msg = calloc(SENDQ_CAP, sizeof *p->gq.msg);
	p->tq.msg = calloc(SENDQ_CAP, sizeof *p->tq.msg);
	p->rsmem = malloc(RSTAGE_MAX * p->mtu);
	if (!p->gq.mem || !p->tq.mem || !p->gq.msg || !p->tq.msg || !p->rsmem)
		goto fail;
	p->gq.group = 1;
	pxnet_servers_init(p);
	p->pub_servers = cfg->cc.nservers;
	for (unsigned i = 0; i < SENDQ_CAP; i++) {
		p->gq.msg[i].buf = p->gq.mem + (size_t)i * p->mtu;
		p->tq.msg[i].buf = p->tq.mem + (size_t)i * p->mtu;
	}

	rc = MTR_EIO;
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->ep < 0 || p->efd < 0)
		goto fail;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = TAG_EVENT};
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->efd, &e) != 0)
		goto fail;
	if (cfg->users[0]) {
		char err[512];
		if ((rc = pxauth_open(cfg->users, p->efd, &p->auth, err, sizeof err)) != 0) {
			mtr_log(LOG_ERROR, "%s", err);
			goto fail;
		}
		rc = MTR_EIO;
	}
	if (p->tfd >= 0) {
		e.data.ptr = TAG_TRANSPORT;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->tfd, &e) != 0)
			goto fail;
	}
	if ((rc = pxtls_open(p)) != 0)
		goto fail;
	if (!cfg->no_listen) {
		if ((rc = listen_open(p)) != 0)
			goto fail;
		e.data.ptr = TAG_LISTEN;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->lfd, &e) != 0) {
			rc = MTR_EIO;
			goto fail;
		}
	}
	p->batch_first = outbuf_next_seq(&p->ob);
	p->now_ms = proxy_mono_ms();
	p->next_hb_ms = p->now_ms;
	p->status_ms = p->now_ms;
	char la[32], ua[32];
	transport_addr_format(&p->laddr, la, sizeof la);
	transport_addr_format(&p->t->cfg.bind, ua, sizeof ua);
	if (cfg->no_listen)
		mtr_log(LOG_INFO, "proxy: embedded (no listener), stream %016llx, udp %s", (unsigned long long)p->stream,
			ua);
	else
		mtr_log(LOG_INFO, "listening on %s for clients%s, stream %016llx", la,
			p->tls == NULL ? "" : cfg->tls_mode == PROXY_TLS_REQUIRE ? " (TLS required)" : " (TLS or clear)",
			(unsigned long long)p->stream);
	mtr_log(LOG_INFO, "proxy: udp %s, %u servers, mtu %zu, buffer %llu bytes / %u items", ua, cfg->cc.nservers,
		p->mtu, (unsigned long long)cfg->buffer_bytes, cfg->buffer_items);
	char who[32];
	snprintf(who, sizeof who, "proxy %u", cfg->id);
	clusterconf_warn_insecure(&cfg->cc, who);
	if (p->auth)
		mtr_log(LOG_INFO, "proxy: %zu users (proxy.users %s): every client must log in", pxauth_nusers(p->auth),
			cfg->users);
	else if (!cfg->no_listen && (p->laddr.ip >> 24) != 127)
		mtr_log(LOG_WARN,
			"proxy: INSECURE: listening on %s without proxy.users (proxy.insecure = yes): anyone who reaches "
			"it can read and write; set proxy.users (and TLS)",
			la);
	else if (!cfg->no_listen)
		mtr_log(LOG_INFO, "proxy: no proxy.users: clients are not authenticated (loopback only)");
	*out = p;
	return 0;
fail:
	proxy_close(p);
	return rc;
}

void proxy_stop(struct proxy *p)
{
	atomic_store(&p->stop, 1);
	uint64_t one = 1;
	ssize_t r = write(p->efd, &one, sizeof one);
	(void)r;
}

void proxy_reload(struct proxy *p)
{
	atomic_store(&p->reload, 1);
	uint64_t one = 1;
	ssize_t r = write(p->efd, &one, sizeof one);
	(void)r;
}

int proxy_attach(struct proxy *p, int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	pthread_mutex_lock(&p->mu);
	int rc = 0;
	if (p->closing || atomic_load(&p->stop)) {
		rc = MTR_ECLOSED;
	} else if (p->nattach == p->cattach) {
		unsigned n = p->cattach ? p->cattach * 2 : 8;
		int *a = realloc(p->attach, n * sizeof *a);
		if (a == NULL)
			rc = MTR_ENOMEM;
		else {
			p->attach = a;
			p->cattach = n;
		}
	}
	if (rc == 0)
		p->attach[p->nattach++] = fd;
	pthread_mutex_unlock(&p->mu);
	if (rc) {
		close(fd);
		return rc;
	}
	uint64_t one = 1;
	ssize_t r = write(p->efd, &one, sizeof one);
	(void)r;
	return 0;
}

void proxy_close(struct proxy *p)
{
	if (p == NULL)
		return;
	while (p->clients)
		pxcli_close(p, p->clients, "proxy closing");
	pxauth_close(p->auth); /* after the clients: they cancel their jobs */
	pxbk_close_all(p);
	while (p->dead) {
		struct client *c = p->dead;
		p->dead = c->dnext;
		free(c->in);
		cproto_buf_free(&c->out);
		free(c);
	}
	for (unsigned i = 0; i < p->nattach; i++)
		close(p->attach[i]);
	free(p->attach);
	if (p->slots) {
		for (uint32_t i = 0; i < p->cap; i++)
			pxnet_rbuf_free(p->slots[i].rb);
		free(p->slots);
	}
	free(p->dirty);
	outbuf_free(&p->ob);
	proxy_parse_cache_clear(&p->pcache);
	transport_close(p->t);
	free(p->gq.mem);
	free(p->tq.mem);
	free(p->rsmem);
	free(p->gq.msg);
	free(p->tq.msg);
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->efd >= 0)
		close(p->efd);
	if (p->ep >= 0)
		close(p->ep);
	pxhealth_free(p);
	pxtls_close(p);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->hmu);
	free(p);
}

uint64_t proxy_stream(const struct proxy *p) { return p->stream; }

void proxy_addrs(const struct proxy *p, struct transport_addr *listen, struct transport_addr *udp)
{
	if (listen)
		*listen = p->laddr;
	if (udp)
		*udp = p->t->cfg.bind;
}

void proxy_stats(struct proxy *p, struct proxy_stats *st)
{
	pthread_mutex_lock(&p->mu);
	*st = p->pub;
	pthread_mutex_unlock(&p->mu);
}
