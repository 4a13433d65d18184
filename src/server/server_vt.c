/*
 * server_vt.c - the server object's published state (server_int.h): the
 * network thread copies what it owns (Paxos status, peers, watermarks)
 * under a mutex at each loop, and readers on other threads see that copy:
 * server_info, server_digest, and the rows of mtr_members, mtr_streams and
 * mtr_instances (the clustervt provider).  mtr_stats comes from the
 * statstab: this server's counters once a second, the other servers' and
 * the proxies' from their STATS datagrams.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "clustervt.h"
#include "digest.h"
#include "ingest.h"
#include "log.h"
#include "paxos.h"
#include "server.h"
#include "server_int.h"
#include "stats.h"
#include "transport.h"
#include "util.h"
#include "wire.h"

/* ---- publishing (clustervt, server_info) ---- */

void srvvt_publish(struct server *s)
{
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	if (ps.role == PAXOS_LEADER && (s->last_role != PAXOS_LEADER || ps.ballot != s->last_ballot_logged)) {
		mtr_log(LOG_INFO, "became leader (ballot %llu)", (unsigned long long)ps.ballot);
		s->last_ballot_logged = ps.ballot;
	}
	if (s->last_role != (int)ps.role)
		s->next_status_ms = 0; /* tell peers and proxies at once */
	s->last_role = (int)ps.role;
	struct batch_conf conf;
	paxos_conf_at(s->px, ps.applied + 1, &conf);
	srvnet_peers_refresh(s, 0);
	pthread_mutex_lock(&s->imu);
	s->pst = ps;
	s->pub_conf = conf;
	s->info.role = (int)ps.role;
	s->info.ballot = ps.ballot;
	s->info.chosen = ps.chosen;
	s->info.applied = s->applied_net;
	s->info.released = s->released;
	s->info.items_applied = s->items_applied;
	s->info.disk_full = s->full_on;
	s->info.acc_checked = s->acc_checked;
	s->info.acc_early = s->acc_early;
	memcpy(s->pub_peers, s->peers, sizeof s->peers);
	if (s->now_ms < s->next_publish_ms) {
		pthread_mutex_unlock(&s->imu);
		return;
	}
	/* the stream table: at most every 20 ms (a scan of every slot) */
	s->next_publish_ms = s->now_ms + 20;
	unsigned n = 0;
	for (unsigned i = 0; i < STREAM_CAP && n < PAXOS_MAX_MARKS; i++) {
		struct stream *st = &s->streams[i];
		if (st->id == 0)
			continue;
		s->pub_marks[n].stream = st->id;
		s->pub_marks[n].seq = ingest_watermark(s->ing, st->id);
		n++;
	}
	s->pub_nmarks = n;
	pthread_mutex_unlock(&s->imu);
}

static const char *role_name(int r)
{
	return r == PAXOS_LEADER ? "leader" : r == PAXOS_CANDIDATE ? "candidate" : "follower";
}

/* ---- counters (mtr_stats) ---- */

static const char *const drop_names[] = {
#define SERVER__DROP_NAME(name, text) #name,
	SERVER_DROP_MAP(SERVER__DROP_NAME)
#undef SERVER__DROP_NAME
};

static void own_collect(struct server *s, struct wire_stats_list *o)
{
	s->drops[SERVER_DROP_snapshot] = atomic_load(&s->snap_refused); /* counted by the snapshot thread */
	for (unsigned r = 0; r < SERVER_DROP__COUNT; r++) {
		char n[48];
		if (snprintf(n, sizeof n, "drop.%s", drop_names[r]) >= (int)sizeof n)
			continue; /* cannot happen: the reasons are short words */
		stats_put(wire_stats_list_put, o, "server", n, s->drops[r]);
	}
	stats_put(wire_stats_list_put, o, "server", "invariants_broken", log_assert_failures());
	/* the disk-full state (server_disk.c): a gauge, times, whole seconds
	 * (Prometheus wants base units: /metrics shows the same names) */
	stats_put(wire_stats_list_put, o, "server", "disk_full", (uint64_t)s->full_on);
	stats_put(wire_stats_list_put, o, "server", "disk_full_events", s->full_events);
	stats_put(wire_stats_list_put, o, "server", "disk_full_seconds",
		  (s->full_ms + (s->full_on ? s->now_ms - s->full_since_ms : 0)) / 1000u);
	stats_put(wire_stats_list_put, o, "server", "results_cached", s->results_cached);
	stats_put(wire_stats_list_put, o, "server", "results_kept", s->results_kept);
	stats_put(wire_stats_list_put, o, "server", "results_unknown", s->results_unknown);
	METRICS_STAGES_STATS(SERVER_STAGE_MAP, "server", &s->stage, wire_stats_list_put, o);
	transport_stats_each(s->t, "transport", wire_stats_list_put, o);
	if (s->tg)
		transport_stats_each(s->tg, "transport_group", wire_stats_list_put, o);
	struct ingest_stats is;
	ingest_stats(s->ing, &is);
	STATS_EACH(INGEST_STATS_MAP, "ingest", &is, wire_stats_list_put, o);
	struct paxos_stats ps;
	paxos_stats(s->px, &ps);
	STATS_EACH(PAXOS_STATS_MAP, "paxos", &ps, wire_stats_list_put, o);
	struct apply_stats as;
	apply_stats(s->ap, &as);
	STATS_EACH(APPLY_STATS_MAP, "apply", &as, wire_stats_list_put, o);
	struct server_read_stats rs;
	srvapply_read_stats(s, &rs);
	STATS_EACH(SERVER_READ_STATS_MAP, "reads", &rs, wire_stats_list_put, o);
}

void srvvt_stats_tick(struct server *s)
{
	if (s->now_ms < s->next_stats_ms)
		return;
	s->next_stats_ms = s->now_ms + STATS_PERIOD_MS;
	struct wire_stats_list *o = calloc(1, sizeof *o);
	if (o == NULL)
		return;
	own_collect(s, o);
	srvhealth_publish_stats(s, o);
	char self[STATSTAB_PROC_MAX];
	snprintf(self, sizeof self, "server %u", s->cfg.id);
	for (unsigned i = 0; i < o->n; i++)
		statstab_put(s->stats, self, o->w[i].name, o->w[i].name_len, o->w[i].value, s->now_ms);
	statstab_expire(s->stats, s->now_ms, STATS_MAX_AGE_MS);
	const struct clusterconf *cc = &s->cfg.cc;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++) {
		const struct transport_addr *a = srvnet_peer_addr(s, j);
		if (a == NULL)
			continue;
		size_t idx = 0, n;
		for (;;) {
			uint8_t *b = srvnet_out_buf(s);
			n = wire_stats_build(b, cc->mtu, &s->from, s->cfg.id, o->w, o->n, &idx);
			if (n == 0)
				break;
			srvnet_out_push(s, n, a);
		}
	}
	free(o);
}

void srvvt_on_stats(struct server *s, const struct transport_msg *m)
{
	struct wire_stats_msg sm;
	if (wire_stats_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &sm) != 0 || sm.node != m->hdr.sender) {
		srvnet_drop(s, SERVER_DROP_stats, m);
		return;
	}
	/* a server id is "server N" only from that server's own address (and
	 * never ours); other ids are proxies */
	uint32_t j = m->hdr.sender;
	char proc[STATSTAB_PROC_MAX];
	bool server = srvnet_is_server(s, j);
	if (server) {
		if (!srvnet_from_peer(s, m)) {
			srvnet_drop(s, SERVER_DROP_stats_sender, m);
			return;
		}
		snprintf(proc, sizeof proc, "server %u", j);
	} else {
		/* proxies may share an id (an application's embedded proxies
		 * all default to 256): the address tells them apart */
		char a[24];
		snprintf(proc, sizeof proc, "proxy %u@%s", j, transport_addr_format(&m->peer, a, sizeof a));
	}
	struct wire_stat w;
	static const char full_name[] = "server.disk_full";
	while (wire_stats_next(&sm, &w)) {
		statstab_put(s->stats, proc, w.name, w.name_len, w.value, s->now_ms);
		/* a peer's disk state, for mtr_members.state */
		if (server && w.name_len == sizeof full_name - 1 &&
		    memcmp(w.name, full_name, w.name_len) == 0) {
			s->peers[j].disk_known = 1;
			s->peers[j].disk_full = w.value;
		}
	}
}

int srvvt_fill(void *arg, enum clustervt_table t, struct clustervt_sink *sink)
{
	struct server *s = arg;
	int rc = 0;
	uint64_t now = now_mono_ns() / 1000000u;
	if (t == CLUSTERVT_STATS)
		return statstab_fill(s->stats, now, sink);
	pthread_mutex_lock(&s->imu);
	if (t == CLUSTERVT_MEMBERS) {
		/* every server id: cluster.servers, the members in force or
		 * pending (servers added since), the removed ones */
		for (uint32_t j = 0; j < PAXOS_MAX_ID && rc == 0; j++) {
			uint64_t bit = UINT64_C(1) << j;
			if (!(s->pub_pt.servers & bit))
				continue;
			char addr[BATCH_ADDR_MAX + 1] = "";
			const struct batch_member *bm = batch_conf_find(&s->pub_conf, j);
			if (bm != NULL && bm->addr[0])
				snprintf(addr, sizeof addr, "%s", bm->addr);
			else if (s->pub_pt.members & bit)
				transport_addr_format(&s->pub_pt.addr[j], addr, sizeof addr);
			else if (j < s->cfg.cc.nservers)
				transport_addr_format(&s->cfg.cc.servers[j], addr, sizeof addr);
			/* membership: as the configuration in force says */
			const char *mship = bm != NULL ? (bm->voter ? "voter" : "learner")
					    : (s->pst.removed & (UINT64_C(1) << j)) ? "removed" : NULL;
			const char *role, *state;
			int64_t alive, chosen, applied;
			if (j != s->cfg.id && !(s->pub_pt.members & bit)) {
				/* not a member to talk to (removed): no peer state */
				role = "unknown";
				state = NULL;
				alive = 0;
				chosen = applied = 0;
			} else if (j == s->cfg.id) {
				role = role_name(s->pst.role);
				state = s->info.disk_full ? "disk full" : "ok";
				alive = 1;
				chosen = (int64_t)s->pst.chosen;
				applied = (int64_t)s->info.applied;
			} else {
				const struct peer *p = &s->pub_peers[j];
				role = p->heard ? role_name(p->st.role) : "unknown";
				/* who leads, this server knows better than a peer's
				 * last STATUS (sent before an election, say) */
				if (s->pst.leader == j)
					role = "leader";
				else if (p->heard && p->st.role == PAXOS_LEADER && s->pst.leader < PAXOS_MAX_ID)
					role = "follower";
				alive = p->heard && now - p->last_ms <= 3ull * s->cfg.status_period_ms;
				/* from its last STATS (once a second), unknown before */
				state = !p->disk_known ? NULL : p->disk_full ? "disk full" : "ok";
				chosen = (int64_t)p->st.chosen;
				applied = (int64_t)p->st.applied;
			}
			struct wire_value v[8] = {
				{.type = WIRE_V_INT, .u.i = j},
				{.type = WIRE_V_TEXT, .u.b = {addr, (uint32_t)strlen(addr)}},
				{.type = WIRE_V_TEXT, .u.b = {role, (uint32_t)strlen(role)}},
				{.type = WIRE_V_INT, .u.i = alive},
				{.type = WIRE_V_INT, .u.i = chosen},
				{.type = WIRE_V_INT, .u.i = applied},
				{.type = WIRE_V_NULL},
				{.type = WIRE_V_NULL},
			};
			if (state != NULL)
				v[6] = (struct wire_value){.type = WIRE_V_TEXT, .u.b = {state, (uint32_t)strlen(state)}};
			if (mship != NULL)
				v[7] = (struct wire_value){.type = WIRE_V_TEXT, .u.b = {mship, (uint32_t)strlen(mship)}};
			rc = clustervt_sink_row(sink, v, 8);
		}
	} else if (t == CLUSTERVT_STREAMS) {
		for (unsigned i = 0; i < s->pub_nmarks && rc == 0; i++) {
			struct wire_value v[3] = {
				{.type = WIRE_V_INT, .u.i = s->cfg.id},
				{.type = WIRE_V_INT, .u.i = (int64_t)s->pub_marks[i].stream},
				{.type = WIRE_V_INT, .u.i = (int64_t)s->pub_marks[i].seq},
			};
			rc = clustervt_sink_row(sink, v, 3);
		}
	} else if (t == CLUSTERVT_INSTANCES) {
		unsigned n = s->nrecent < RECENT_INSTANCES ? s->nrecent : RECENT_INSTANCES;
		for (unsigned k = 0; k < n && rc == 0; k++) {
			const struct recent *r = &s->recent[(s->nrecent - n + k) % RECENT_INSTANCES];
			struct wire_value v[6] = {
				{.type = WIRE_V_INT, .u.i = (int64_t)r->inst},
				{.type = WIRE_V_TEXT, .u.b = {r->text, (uint32_t)strlen(r->text)}},
				{.type = WIRE_V_INT, .u.i = (int64_t)r->items},
				{.type = WIRE_V_INT, .u.i = (int64_t)r->apply_us},
				{.type = WIRE_V_INT, .u.i = r->steps},
				{.type = WIRE_V_INT, .u.i = r->max_item_steps},
			};
			rc = clustervt_sink_row(sink, v, 6);
		}
	}
	pthread_mutex_unlock(&s->imu);
	return rc;
}

void server_info(struct server *s, struct server_info *info)
{
	pthread_mutex_lock(&s->imu);
	*info = s->info;
	pthread_mutex_unlock(&s->imu);
}

int server_digest(struct server *s, uint64_t *instance, char hex[33])
{
	struct digest d;
	int rc = apply_digest(s->ap, instance, &d);
	if (rc == 0)
		digest_hex(&d, hex);
	return rc;
}
