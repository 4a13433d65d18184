/*
 * proxy_health.c - a proxy's health and figures (proxy.h, doc/operations.md):
 * the answers of /metrics, /readyz and /livez for the HTTP thread.
 *
 * Readiness asks the cluster itself: the probe is a client of this proxy,
 * on one end of a socketpair whose other end proxy_attach() hands to the
 * loop (the way an application embeds the proxy), speaking the client
 * protocol.  Its request is "SELECT 1" at linearizable consistency, which
 * the proxy orders through the log like a write: an answer means a
 * majority chose an instance and a replica applied it just now.  The loop
 * is never waited for under a lock it takes; the probe's own lock (hmu)
 * makes concurrent /readyz calls share one request.  A request without an
 * answer stays in flight (it is still ordered once a majority is back) and
 * the next call waits for that one instead of sending another, so a long
 * outage costs one item, not one per scrape.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cproto.h"
#include "log.h"
#include "metrics.h"
#include "metronome.h"
#include "proxy.h"
#include "proxy_int.h"
#include "util.h"

#define LIVE_LOOP_MS 5000 /* the loop wakes at least every second: silent this long, not live */

static uint64_t mono_ms(void) { return now_mono_ns() / 1000000u; }

static void probe_close(struct pxprobe *pr)
{
	if (pr->fd >= 0)
		close(pr->fd);
	pr->fd = -1;
	pr->inlen = 0;
	pr->pending = 0;
}

void pxhealth_free(struct proxy *p)
{
	probe_close(&p->probe);
}

static int send_all(int fd, const struct cproto_buf *b)
{
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = send(fd, b->p + off, b->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return MTR_EIO; /* a few dozen bytes into an empty socket buffer: cannot block */
		off += (size_t)w;
	}
	return 0;
}

/* Read frames until one of type want (WELCOME, or the ANSWER to pr->req)
 * or the deadline; 1 found (its payload decoded into *a for an ANSWER),
 * 0 deadline, or a negative code (the connection is unusable: why set). */
static int probe_wait(struct pxprobe *pr, uint8_t want, uint64_t deadline, struct cproto_answer *a, char *why,
		      size_t n)
{
	for (;;) {
		struct cproto_frame f;
		long used = cproto_frame_next(pr->in, pr->inlen, sizeof pr->in - 4, &f);
		if (used < 0) {
			snprintf(why, n, "the probe connection got a bad frame: %s", mtr_strerror((int)used));
			return (int)used;
		}
		if (used > 0) {
			int found = 0, rc = 0;
			if (f.type == CPROTO_T_BYE) {
				struct cproto_bye bye;
				rc = cproto_get_bye(&f, &bye);
				snprintf(why, n, "the proxy closed the probe connection: %.*s", rc == 0 ? (int)bye.msg_len : 0,
					 rc == 0 ? bye.msg : "");
				return MTR_ECLOSED;
			}
			if (f.type == want && want == CPROTO_T_WELCOME) {
				struct cproto_welcome w;
				rc = cproto_get_welcome(&f, &w);
				found = rc == 0;
			} else if (f.type == want && want == CPROTO_T_ANSWER) {
				rc = cproto_get_answer(&f, a);
				found = rc == 0 && a->request == pr->req;
				if (found)
					a->msg = NULL; /* points into in[], about to move */
				if (found && a->status != 0)
					snprintf(why, n, "the linearizable no-op failed: %s", mtr_strerror(a->status));
			}
			if (rc != 0) {
				snprintf(why, n, "the probe connection got a bad frame: %s", mtr_strerror(rc));
				return rc;
			}
			memmove(pr->in, pr->in + used, pr->inlen - (size_t)used);
			pr->inlen -= (size_t)used;
			if (found)
				return 1;
			continue; /* an answer to an older probe, a PING: skip */
		}
		if (pr->inlen == sizeof pr->in) {
			snprintf(why, n, "the probe connection got a frame larger than %zu bytes", sizeof pr->in);
			return MTR_ETOOBIG;
		}
		uint64_t now = mono_ms();
		if (now >= deadline)
			return 0;
		struct pollfd pf = {.fd = pr->fd, .events = POLLIN};
		int r = poll(&pf, 1, (int)(deadline - now));
		if (r < 0 && errno != EINTR) {
			snprintf(why, n, "poll: %s", strerror(errno));
			return MTR_EIO;
		}
		if (r <= 0)
			continue;
		ssize_t got = recv(pr->fd, pr->in + pr->inlen, sizeof pr->in - pr->inlen, MSG_DONTWAIT);
		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
			snprintf(why, n, "the proxy closed the probe connection");
			return MTR_ECLOSED;
		}
		if (got > 0)
			pr->inlen += (size_t)got;
	}
}

/* Open the probe's connection: attach, HELLO, WELCOME. */
static int probe_open(struct proxy *p, struct pxprobe *pr, uint64_t deadline, char *why, size_t n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(why, n, "socketpair: %s", strerror(errno));
		return MTR_EIO;
	}
	int rc = proxy_attach(p, sv[0]); /* takes sv[0], also on failure */
	if (rc != 0) {
		close(sv[1]);
		snprintf(why, n, "the proxy takes no connection: %s", mtr_strerror(rc));
		return rc;
	}
	pr->fd = sv[1];
	pr->inlen = 0;
	struct cproto_buf b = {0};
	struct cproto_hello h = {.version = CPROTO_VERSION, .consistency = CPROTO_CONS_LINEARIZABLE};
	rc = cproto_put_hello(&b, &h);
	if (rc == 0)
		rc = send_all(pr->fd, &b);
	cproto_buf_free(&b);
	if (rc != 0) {
		snprintf(why, n, "cannot greet the proxy: %s", mtr_strerror(rc));
		return rc;
	}
	rc = probe_wait(pr, CPROTO_T_WELCOME, deadline, NULL, why, n);
	if (rc == 0) {
		snprintf(why, n, "the proxy did not greet the probe within %u ms", PROXY_PROBE_MS);
		return MTR_ETIMEDOUT;
	}
	return rc < 0 ? rc : 0;
}

int proxy_ready(struct proxy *p, char *why, size_t n)
{
	struct pxprobe *pr = &p->probe;
	pthread_mutex_lock(&p->hmu);
	uint64_t now = mono_ms();
	if (!pr->pending && pr->done_ms && now < pr->done_ms + PROXY_PROBE_CACHE_MS) {
		int ok = pr->ok;
		snprintf(why, n, "%s", pr->why);
		pthread_mutex_unlock(&p->hmu);
		return ok;
	}
	uint64_t deadline = now + PROXY_PROBE_MS;
	int rc = 0;
	why[0] = '\0';
	if (pr->fd < 0)
		rc = probe_open(p, pr, deadline, why, n);
	if (rc == 0 && !pr->pending) {
		struct cproto_buf b = {0};
		struct cproto_query q = {.request = ++pr->req, .consistency = CPROTO_CONS_LINEARIZABLE,
					 .sql = "SELECT 1", .sql_len = 8};
		q.floor = q.request;
		rc = cproto_put_query(&b, &q);
		if (rc == 0)
			rc = send_all(pr->fd, &b);
		cproto_buf_free(&b);
		if (rc != 0)
			snprintf(why, n, "cannot send the probe: %s", mtr_strerror(rc));
		else {
			pr->pending = 1;
			pr->sent_ms = now;
		}
	}
	int ok = 0;
	if (rc == 0) {
		struct cproto_answer a;
		uint64_t until = MAX(deadline, pr->sent_ms + PROXY_PROBE_MS);
		rc = probe_wait(pr, CPROTO_T_ANSWER, MIN(until, now + PROXY_PROBE_MS), &a, why, n);
		if (rc == 1) {
			pr->pending = 0;
			ok = a.status == 0;
			if (ok)
				snprintf(why, n, "a linearizable no-op was answered in %llu ms (instance %llu)",
					 (unsigned long long)(mono_ms() - pr->sent_ms), (unsigned long long)a.instance);
			rc = 0;
		} else if (rc == 0) {
			snprintf(why, n, "no answer to a linearizable no-op sent %llu ms ago (no majority, or no "
					 "leader yet?)",
				 (unsigned long long)(mono_ms() - pr->sent_ms));
		}
	}
	if (rc < 0)
		probe_close(pr);
	pr->ok = ok;
	pr->done_ms = mono_ms();
	snprintf(pr->why, sizeof pr->why, "%s", why);
	pthread_mutex_unlock(&p->hmu);
	return ok;
}

int proxy_live(struct proxy *p, char *why, size_t n)
{
	uint64_t now = mono_ms(), loop = atomic_load(&p->loop_ms);
	if (loop == 0) {
		snprintf(why, n, "proxy %u: the loop has not started", p->cfg.id);
		return 0;
	}
	if (now > loop + LIVE_LOOP_MS) {
		snprintf(why, n, "proxy %u: the loop has not passed for %llu ms", p->cfg.id,
			 (unsigned long long)(now - loop));
		return 0;
	}
	snprintf(why, n, "proxy %u: loop %llu ms ago", p->cfg.id, (unsigned long long)(now > loop ? now - loop : 0));
	return 1;
}

/* The meaning of each counter proxy_metrics hands out, from the maps. */
static const char *help_of(const char *stat)
{
	static const struct {
		const char *name, *help;
	} helps[] = {
#define H_ST(m, t) {"proxy." #m, t},
		PROXY_STATS_MAP(H_ST)
#undef H_ST
#define H_DR(m, t) {"proxy.drop." #m, "datagrams dropped: " t},
		PROXY_DROP_MAP(H_DR)
#undef H_DR
#define H_TLS(m, t) {"proxy.tls." #m, t},
		PROXY_TLS_MAP(H_TLS)
#undef H_TLS
	};
	for (unsigned i = 0; i < ARRAY_SIZE(helps); i++)
		if (strcmp(stat, helps[i].name) == 0)
			return helps[i].help;
	if (strncmp(stat, "transport.", 10) == 0)
		return transport_stats_help(stat + 10);
	return NULL;
}

void proxy_metrics(struct proxy *p, struct metrics_buf *b)
{
	struct proxy_stats st;
	uint64_t drops[PROXY_DROP__COUNT], tls[PROXY_TLS__COUNT];
	struct transport_counters tc;
	pthread_mutex_lock(&p->mu);
	st = p->pub;
	memcpy(drops, p->pub_drops, sizeof drops);
	memcpy(tls, p->pub_tls, sizeof tls);
	tc = p->pub_tc;
	unsigned heard = p->pub_heard, servers = p->pub_servers;
	pthread_mutex_unlock(&p->mu);

	metrics_gauge(b, METRICS_PREFIX "proxy_id", "this proxy's proxy.id", p->cfg.id);
	metrics_gauge(b, METRICS_PREFIX "servers", "servers the proxy sends to (cluster.servers, or the membership STATUS carried)",
		      servers);
	metrics_gauge(b, METRICS_PREFIX "servers_heard", "servers whose STATUS arrived within the last second",
		      heard);
	metrics_hist(b, METRICS_PREFIX "proxy_write_seconds",
		     "writes (and linearizable reads) from QUERY to ANSWER at the proxy", &p->write_hist);
	metrics_hist(b, METRICS_PREFIX "proxy_read_seconds",
		     "none and session reads from QUERY to ANSWER at the proxy", &p->read_hist);
	METRICS_STAGES_PAGE(PROXY_STAGE_MAP, "proxy", &p->stage, b);
	struct metrics_stats ms = {.b = b, .help = help_of};
	STATS_EACH(PROXY_STATS_MAP, "proxy", &st, metrics_stats_put, &ms);
	static const char *const drop_names[] = {
#define N_DR(m, t) "drop." #m,
		PROXY_DROP_MAP(N_DR)
#undef N_DR
	};
	for (unsigned r = 0; r < PROXY_DROP__COUNT; r++)
		stats_put(metrics_stats_put, &ms, "proxy", drop_names[r], drops[r]);
	for (unsigned r = 0; r < PROXY_TLS__COUNT; r++)
		stats_put(metrics_stats_put, &ms, "proxy.tls", pxtls_stat_name(r), tls[r]);
	transport_counters_each(&tc, "transport", metrics_stats_put, &ms);
}
