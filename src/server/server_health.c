/*
 * server_health.c - a server's health and figures (doc/operations.md):
 * the answers of /metrics, /readyz and /livez, computed on the HTTP thread
 * from what the other threads publish (never from the network thread's own
 * state), and the log lines an operator acts on: a peer up or down, the
 * majority lost or regained, this server falling behind.
 *
 * "Heard" means a STATUS from that server within HEALTH_WINDOW_MS (at
 * least HEALTH_PERIODS status periods): servers send STATUS every
 * server.status_period (100 ms by default), so a silent server is judged
 * down after 1 s, and readiness fails within that plus one scrape.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "paxos.h"
#include "server.h"
#include "server_int.h"
#include "stats.h"
#include "transport.h"
#include "util.h"

#define HEALTH_PERIODS 3          /* status periods without a STATUS: the peer is down */
#define HEALTH_MIN_WINDOW_MS 1000 /* ... but never sooner than this */
#define HEALTH_LOG_MS 2000        /* at most one line per peer (and for the majority) this often */
#define LAG_WARN_INSTANCES 1000   /* applied this far behind the cluster's chosen: warn */
#define LAG_LOG_MS 30000          /* repeat the "behind" warning at most this often */
#define LIVE_LOOP_MS 5000         /* the network loop passes every LOOP_MS; silent this long: not live */
#define LIVE_APPLY_MS 60000       /* one instance applying this long: not live */

static uint64_t window_ms(const struct server *s)
{
	uint64_t w = (uint64_t)HEALTH_PERIODS * s->cfg.status_period_ms;
	return w < HEALTH_MIN_WINDOW_MS ? HEALTH_MIN_WINDOW_MS : w;
}

static int peer_up(const struct server *s, const struct peer *pp, uint64_t now)
{
	(void)s;
	return pp->heard && pp->last_ms + window_ms(s) >= now;
}

int srvhealth_peer_up(const struct server *s, uint32_t j)
{
	return j < PAXOS_MAX_ID && (s->pt.members & (UINT64_C(1) << j)) && peer_up(s, &s->peers[j], s->now_ms);
}

/* ---- log lines (network thread) ---- */

/* How many voters of the configuration in force pt (this server
 * included when it votes) peers shows up at now, and how many make a
 * majority of them. */
static unsigned voters_heard(const struct server *s, const struct peer_table *pt, const struct peer *peers,
			     uint64_t now, unsigned *need)
{
	unsigned heard = 0;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++) {
		if (!(pt->voters & (UINT64_C(1) << j)))
			continue;
		if (j == s->cfg.id || ((pt->members & (UINT64_C(1) << j)) && peer_up(s, &peers[j], now)))
			heard++;
	}
	*need = (unsigned)__builtin_popcountll(pt->voters) / 2 + 1;
	return heard;
}

static void log_peers(struct server *s, uint64_t now)
{
	struct health_log *h = &s->hl;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++) {
		const struct transport_addr *pa = srvnet_peer_addr(s, j);
		if (pa == NULL)
			continue;
		int up = peer_up(s, &s->peers[j], now);
		if (h->peer[j] == up)
			continue;
		if (h->peer[j] == -1 && !up && now < h->start_ms + window_ms(s))
			continue; /* just started: give it a window to be heard */
		if (now < h->peer_next_ms[j]) {
			h->peer_flaps[j]++;
			continue;
		}
		char a[32], flaps[64] = "";
		transport_addr_format(pa, a, sizeof a);
		if (h->peer_flaps[j])
			snprintf(flaps, sizeof flaps, " (%u more changes in the last %u s)", h->peer_flaps[j],
				 HEALTH_LOG_MS / 1000);
		if (up)
			mtr_log(LOG_INFO, "peer up: server %u (%s) heard%s%s", j, a, h->peer[j] == -1 ? "" : " again",
				flaps);
		else if (h->peer[j] == -1)
			mtr_log(LOG_WARN, "peer down: server %u (%s) not heard since this server started (%llu ms)%s",
				j, a, (unsigned long long)(now - h->start_ms), flaps);
		else
			mtr_log(LOG_WARN, "peer down: server %u (%s) not heard for %llu ms (%d status periods)%s", j,
				a, (unsigned long long)(now - s->peers[j].last_ms), HEALTH_PERIODS, flaps);
		h->peer[j] = up;
		h->peer_flaps[j] = 0;
		h->peer_next_ms[j] = now + HEALTH_LOG_MS;
	}
}

static void log_majority(struct server *s, uint64_t now)
{
	struct health_log *h = &s->hl;
	unsigned need, heard = voters_heard(s, &s->pt, s->peers, now, &need);
	unsigned voters = (unsigned)__builtin_popcountll(s->pt.voters);
	int ok = heard >= need;
	if (h->majority == ok || now < h->majority_next_ms)
		return;
	if (h->majority == -1 && !ok && now < h->start_ms + window_ms(s))
		return;
	if (ok)
		mtr_log(h->majority == -1 ? LOG_INFO : LOG_WARN,
			"majority %s: this server hears %u of %u servers (%u needed)",
			h->majority == -1 ? "present" : "regained", heard, voters, need);
	else
		mtr_log(LOG_WARN,
			"majority lost: this server hears %u of %u servers (%u needed): writes and linearizable reads "
			"cannot commit here until more servers are reachable",
			heard, voters, need);
	h->majority = ok;
	h->majority_next_ms = now + HEALTH_LOG_MS;
}

static void log_lag(struct server *s, uint64_t now)
{
	struct health_log *h = &s->hl;
	uint64_t top = s->pst.chosen;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
		if (srvnet_peer_addr(s, j) && peer_up(s, &s->peers[j], now) && s->peers[j].st.chosen > top)
			top = s->peers[j].st.chosen;
	uint64_t lag = top > s->applied_net ? top - s->applied_net : 0;
	if (lag > LAG_WARN_INSTANCES) {
		if (now >= h->behind_next_ms) {
			mtr_log(LOG_WARN,
				"falling behind: applied instance %llu, the cluster has chosen %llu (%llu behind, warn "
				"above %u): check this server's disk and CPU",
				(unsigned long long)s->applied_net, (unsigned long long)top, (unsigned long long)lag,
				LAG_WARN_INSTANCES);
			h->behind = 1;
			h->behind_next_ms = now + LAG_LOG_MS;
		}
	} else if (h->behind && lag <= LAG_WARN_INSTANCES / 2) {
		mtr_log(LOG_INFO, "caught up: applied instance %llu, %llu behind the cluster",
			(unsigned long long)s->applied_net, (unsigned long long)lag);
		h->behind = 0;
		h->behind_next_ms = 0;
	}
}

void srvhealth_tick(struct server *s)
{
	uint64_t now = s->now_ms;
	atomic_store_explicit(&s->loop_ms, now, memory_order_relaxed);
	struct health_log *h = &s->hl;
	if (h->start_ms == 0) {
		h->start_ms = now;
		h->majority = -1;
		for (unsigned j = 0; j < PAXOS_MAX_ID; j++)
			h->peer[j] = -1;
	}
	log_peers(s, now);
	log_majority(s, now);
	log_lag(s, now);
}

void srvhealth_publish_stats(struct server *s, const struct wire_stats_list *o)
{
	pthread_mutex_lock(&s->mmu);
	if (s->pub_stats == NULL)
		s->pub_stats = malloc(sizeof *s->pub_stats);
	if (s->pub_stats) {
		s->pub_stats->n = o->n;
		for (unsigned i = 0; i < o->n; i++) {
			s->pub_stats->w[i].value = o->w[i].value;
			memcpy(s->pub_stats->names[i], o->names[i], sizeof o->names[i]);
		}
	}
	pthread_mutex_unlock(&s->mmu);
}

/* ---- answers (HTTP thread) ---- */

/* The meaning of every counter own_collect (server_vt.c) hands out, from
 * the maps that declare them. */
static const struct {
	const char *name, *help;
} helps[] = {
#define H_DROP(m, t) {"server.drop." #m, "datagrams dropped: " t},
	SERVER_DROP_MAP(H_DROP)
#undef H_DROP
	{"server.invariants_broken", "mtr_assert failures counted (release builds): report them as bugs"},
#define H_ING(m, t) {"ingest." #m, t},
	INGEST_STATS_MAP(H_ING)
#undef H_ING
#define H_PX(m, t) {"paxos." #m, t},
	PAXOS_STATS_MAP(H_PX)
#undef H_PX
#define H_AP(m, t) {"apply." #m, t},
	APPLY_STATS_MAP(H_AP)
#undef H_AP
};

static const char *help_of(const char *name)
{
	for (unsigned i = 0; i < ARRAY_SIZE(helps); i++)
		if (strcmp(name, helps[i].name) == 0)
			return helps[i].help;
	if (strncmp(name, "transport.", 10) == 0)
		return transport_stats_help(name + 10);
	if (strncmp(name, "transport_group.", 16) == 0)
		return transport_stats_help(name + 16);
	return NULL;
}

/* What the HTTP thread sees of the cluster: a copy under imu. */
struct view {
	struct paxos_status pst;
	struct server_info info;
	struct peer peers[PAXOS_MAX_ID];
	struct peer_table pt;
	uint64_t now;
	unsigned heard, need, voters;
	int leader; /* a leader among the servers heard (this one included), or -1 */
};

static void view_take(struct server *s, struct view *v)
{
	pthread_mutex_lock(&s->imu);
	v->pst = s->pst;
	v->info = s->info;
	memcpy(v->peers, s->pub_peers, sizeof v->peers);
	v->pt = s->pub_pt;
	pthread_mutex_unlock(&s->imu);
	v->now = now_mono_ns() / 1000000u;
	v->heard = voters_heard(s, &v->pt, v->peers, v->now, &v->need);
	v->voters = (unsigned)__builtin_popcountll(v->pt.voters);
	v->leader = v->pst.role == PAXOS_LEADER ? (int)s->cfg.id : -1;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++) {
		if (!(v->pt.members & (UINT64_C(1) << j)) || j == s->cfg.id || !peer_up(s, &v->peers[j], v->now))
			continue;
		if (v->peers[j].st.role == WIRE_ROLE_LEADER && v->leader < 0)
			v->leader = (int)j;
	}
}

int server_ready(struct server *s, char *why, size_t n)
{
	struct view v;
	view_take(s, &v);
	if (v.heard < v.need) {
		snprintf(why, n, "server %u hears %u of %u servers within %llu ms (%u needed): no majority", s->cfg.id,
			 v.heard, v.voters, (unsigned long long)window_ms(s), v.need);
		return 0;
	}
	if (v.leader < 0) {
		snprintf(why, n, "server %u hears %u of %u servers but no leader among them (an election is due)",
			 s->cfg.id, v.heard, v.voters);
		return 0;
	}
	snprintf(why, n, "server %u hears %u of %u servers, leader %d, chosen %llu, applied %llu", s->cfg.id,
		 v.heard, v.voters, v.leader, (unsigned long long)v.pst.chosen,
		 (unsigned long long)v.info.applied);
	return 1;
}

int server_live(struct server *s, char *why, size_t n)
{
	uint64_t now = now_mono_ns() / 1000000u;
	uint64_t loop = atomic_load(&s->loop_ms), busy = atomic_load(&s->apply_busy_ms);
	if (loop == 0) {
		snprintf(why, n, "server %u: the network loop has not started", s->cfg.id);
		return 0;
	}
	if (now > loop + LIVE_LOOP_MS) {
		snprintf(why, n, "server %u: the network loop has not passed for %llu ms", s->cfg.id,
			 (unsigned long long)(now - loop));
		return 0;
	}
	if (busy && now > busy + LIVE_APPLY_MS) {
		snprintf(why, n, "server %u: the apply thread has been on one instance for %llu ms", s->cfg.id,
			 (unsigned long long)(now - busy));
		return 0;
	}
	snprintf(why, n, "server %u: network loop %llu ms ago, apply thread %s", s->cfg.id,
		 (unsigned long long)(now > loop ? now - loop : 0), busy ? "applying" : "idle");
	return 1;
}

void server_metrics(struct server *s, struct metrics_buf *b)
{
	struct view v;
	view_take(s, &v);
	char why[256];
	metrics_gauge(b, METRICS_PREFIX "server_id", "this server's index in cluster.servers", s->cfg.id);
	metrics_gauge(b, METRICS_PREFIX "ready",
		      "1 when this server hears a majority with a leader among it (what /readyz answers)",
		      server_ready(s, why, sizeof why));
	metrics_gauge(b, METRICS_PREFIX "servers", "voters of the configuration in force", v.voters);
	metrics_gauge(b, METRICS_PREFIX "servers_heard",
		      "voters heard within the health window (this one included when it votes)", v.heard);
	metrics_gauge(b, METRICS_PREFIX "paxos_role", "0 follower, 1 candidate, 2 leader", v.pst.role);
	metrics_gauge(b, METRICS_PREFIX "paxos_leader", "the leader this server follows (-1: none known)",
		      v.pst.leader == PAXOS_BROADCAST ? -1.0 : (double)v.pst.leader);
	metrics_gauge(b, METRICS_PREFIX "paxos_ballot", "the promised ballot", (double)v.pst.ballot);
	metrics_gauge(b, METRICS_PREFIX "instance_chosen", "highest instance known chosen",
		      (double)v.pst.chosen);
	metrics_gauge(b, METRICS_PREFIX "instance_applied", "highest instance applied to the replica",
		      (double)v.info.applied);
	metrics_gauge(b, METRICS_PREFIX "instance_released", "instances and items released up to this one",
		      (double)v.info.released);
	uint64_t top = v.pst.chosen;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
		if ((v.pt.members & (UINT64_C(1) << j)) && j != s->cfg.id && peer_up(s, &v.peers[j], v.now) &&
		    v.peers[j].st.chosen > top)
			top = v.peers[j].st.chosen;
	metrics_gauge(b, METRICS_PREFIX "apply_lag_instances",
		      "instances chosen in the cluster and not applied here yet",
		      (double)(top > v.info.applied ? top - v.info.applied : 0));
	metrics_hist(b, METRICS_PREFIX "apply_instance_seconds",
		     "time to apply one instance to the replica (one SQLite transaction)", &s->apply_hist);
	METRICS_STAGES_PAGE(SERVER_STAGE_MAP, "server", &s->stage, b);
	/* a copy, so that the lock the network thread takes is held only for a memcpy */
	struct wire_stats_list *o = malloc(sizeof *o);
	if (o == NULL) {
		b->oom = 1;
		return;
	}
	pthread_mutex_lock(&s->mmu);
	o->n = s->pub_stats ? s->pub_stats->n : 0;
	if (o->n) {
		memcpy(o->names, s->pub_stats->names, o->n * sizeof o->names[0]);
		for (unsigned i = 0; i < o->n; i++)
			o->w[i].value = s->pub_stats->w[i].value;
	}
	pthread_mutex_unlock(&s->mmu);
	struct metrics_stats ms = {.b = b, .help = help_of};
	for (unsigned i = 0; i < o->n; i++)
		if (strncmp(o->names[i], "server.stage_", 13) != 0) /* the histograms above */
			metrics_stats_put(&ms, o->names[i], o->w[i].value);
	free(o);
}
