/*
 * server_members.c - membership changes asked by an operator (doc/paxos.md
 * "Membership", doc/protocol.md "MEMBERSHIP").  A proxy forwards a
 * client's MEMBERSHIP request to the server it believes leads; that server
 * checks it against the newest configuration it knows, builds the whole new
 * configuration and calls paxos_change(), and answers the proxy when the
 * configuration is chosen, or at once with the reason it cannot be done.
 * One change at a time per cluster (the core's rule 5) and per server.
 * Network thread only.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "batch.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "server_int.h"
#include "transport.h"
#include "wire.h"
#include "wire_server.h"

/* A change not chosen within this long is answered "outcome unknown". */
#define MEMBER_WAIT_MS 20000u
/* A learner is promoted only when it applied at least the leader's
 * applied instance minus this (else: not caught up, retry later). */
#define MEMBER_PROMOTE_LAG 1000u
/* Refusals are logged at warn at most this often (the rest at info). */
#define MEMBER_WARN_MS 10000u

static uint64_t bit(uint32_t id)
{
	return id < PAXOS_MAX_ID ? UINT64_C(1) << id : 0;
}

static void answer(struct server *s, const struct transport_addr *to, uint64_t token, int32_t status, uint8_t id,
		   uint64_t instance, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Send the answer to `to` and keep it for a repeat of the request. */
static void answer(struct server *s, const struct transport_addr *to, uint64_t token, int32_t status, uint8_t id,
		   uint64_t instance, const char *fmt, ...)
{
	struct member_ans *a = &s->mlast;
	a->token = token;
	a->to = *to;
	a->status = status;
	a->id = id;
	a->instance = instance;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->msg, sizeof a->msg, fmt, ap);
	va_end(ap);
	struct wire_member m = {.kind = WIRE_MEMBER_ANSWER, .token = token, .status = status, .id = id,
				.instance = instance, .msg = a->msg, .msg_len = (uint16_t)strlen(a->msg)};
	uint8_t *b = srvnet_out_buf(s);
	long n = wire_member_build(b, &s->from, &m);
	if (n > 0)
		srvnet_out_push(s, (size_t)n, to);
	/* a refusal at warn, at most one a MEMBER_WARN_MS (proxies' clients
	 * can ask as often as they like), the others and every success at info */
	int warn = status != 0 && status != MTR_EAGAIN && s->now_ms >= s->mwarn_ms;
	if (warn)
		s->mwarn_ms = s->now_ms + MEMBER_WARN_MS;
	mtr_log(warn ? LOG_WARN : LOG_INFO, "server %u: membership change: %s", s->cfg.id, a->msg);
}

/* The highest id the cluster ever had, plus one (ids are never reused). */
static uint32_t next_id(struct server *s, const struct batch_conf *latest, const struct paxos_status *ps)
{
	uint64_t used = s->ids_used | s->pt.servers | ps->removed | ps->members | batch_conf_members(latest) |
			bit(s->cfg.id);
	uint32_t n = s->cfg.cc.nservers;
	used |= n >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1;
	return used == 0 ? 0 : 64u - (uint32_t)__builtin_clzll(used);
}

/* How many of the voters v are up (this server, or heard within the
 * health window). */
static unsigned voters_up(const struct server *s, uint64_t v)
{
	unsigned up = 0;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
		if ((v & bit(j)) && (j == s->cfg.id || srvhealth_peer_up(s, j)))
			up++;
	return up;
}

static void on_request(struct server *s, const struct transport_addr *from, const struct wire_member *m)
{
	if (s->mreq.active && s->mreq.token == m->token && s->mreq.to.ip == from->ip && s->mreq.to.port == from->port)
		return; /* a repeat of the change in progress: its answer comes when it is chosen */
	if (s->mlast.token == m->token && s->mlast.to.ip == from->ip && s->mlast.to.port == from->port) {
		struct member_ans a = s->mlast; /* a repeat after the answer was lost */
		answer(s, &a.to, a.token, a.status, a.id, a.instance, "%s", a.msg);
		return;
	}
	const char *op = wire_member_op_name(m->op);
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	if (ps.role != PAXOS_LEADER) {
		if (ps.leader != PAXOS_BROADCAST)
			answer(s, from, m->token, MTR_EAGAIN, 0, 0,
			       "%s: server %u is not the leader (server %u is): nothing done, ask again", op, s->cfg.id,
			       ps.leader);
		else
			answer(s, from, m->token, MTR_EAGAIN, 0, 0,
			       "%s: server %u is not the leader and knows none: nothing done, ask again", op, s->cfg.id);
		return;
	}
	if (s->mreq.active || ps.conf_next != 0) {
		answer(s, from, m->token, MTR_EBUSY, 0, 0,
		       "%s: another membership change is pending (in force from instance %llu): ask again when it is "
		       "in force (mtr_members)",
		       op, (unsigned long long)ps.conf_next);
		return;
	}
	struct batch_conf c;
	paxos_conf_at(s->px, UINT64_MAX, &c);
	uint32_t id = m->id;
	struct batch_member *bm = NULL;
	for (uint32_t i = 0; i < c.n; i++)
		if (m->op != WIRE_MEMBER_ADD && c.m[i].id == id)
			bm = &c.m[i];
	if (m->op == WIRE_MEMBER_ADD) {
		char addr[WIRE_MEMBER_ADDR_MAX + 1];
		memcpy(addr, m->addr, m->addr_len);
		addr[m->addr_len] = '\0';
		struct transport_addr ta;
		if (transport_addr_parse(addr, 0, &ta) != 0 || ta.port == 0 || ta.ip == 0) {
			answer(s, from, m->token, MTR_EINVAL, 0, 0,
			       "add: '%s' is not an address: give the new server's IP:PORT (its server.address)", addr);
			return;
		}
		char canon[32];
		transport_addr_format(&ta, canon, sizeof canon);
		for (uint32_t i = 0; i < c.n; i++) {
			struct transport_addr ma;
			const char *ms = c.m[i].addr;
			if (!ms[0] && c.m[i].id < s->cfg.cc.nservers)
				ma = s->cfg.cc.servers[c.m[i].id];
			else if (transport_addr_parse(ms, 0, &ma) != 0)
				continue;
			if (ma.ip == ta.ip && ma.port == ta.port) {
				if (c.m[i].voter)
					answer(s, from, m->token, MTR_EEXIST, c.m[i].id, 0,
					       "add: %s is server %u's address already (a voter)", canon, c.m[i].id);
				else /* a repeat of an add that was chosen: the same answer */
					answer(s, from, m->token, 0, c.m[i].id, 0,
					       "add: %s is server %u already (a learner)", canon, c.m[i].id);
				return;
			}
		}
		if (c.n >= PAXOS_MAX_NODES) {
			answer(s, from, m->token, MTR_ETOOBIG, 0, 0,
			       "add: the configuration has %u members, the most there can be: remove one first", c.n);
			return;
		}
		id = next_id(s, &c, &ps);
		if (id >= PAXOS_MAX_ID) {
			answer(s, from, m->token, MTR_ETOOBIG, 0, 0,
			       "add: every node id (0..%u) was used in this cluster's life: no id is left", PAXOS_MAX_ID - 1);
			return;
		}
		uint32_t k = c.n;
		while (k > 0 && c.m[k - 1].id > id) { /* members stay sorted by id */
			c.m[k] = c.m[k - 1];
			k--;
		}
		c.m[k] = (struct batch_member){.id = (uint8_t)id, .voter = 0};
		snprintf(c.m[k].addr, sizeof c.m[k].addr, "%s", canon);
		c.n++;
	} else if (ps.removed & bit(id)) {
		answer(s, from, m->token, MTR_EINVAL, (uint8_t)id, 0,
		       "%s: server %u was removed from the cluster: ids are never used again (add a new server)", op, id);
		return;
	} else if (bm == NULL) {
		answer(s, from, m->token, MTR_ENOENT, (uint8_t)id, 0,
		       "%s: server %u is not a member: see SELECT * FROM mtr_members", op, id);
		return;
	} else if (m->op == WIRE_MEMBER_PROMOTE) {
		if (bm->voter) {
			answer(s, from, m->token, 0, (uint8_t)id, 0, "promote: server %u is a voter already", id);
			return;
		}
		const struct peer *pp = &s->peers[id];
		if (id != s->cfg.id && (!srvhealth_peer_up(s, id) || pp->st.applied + MEMBER_PROMOTE_LAG < s->applied_net)) {
			answer(s, from, m->token, MTR_EBUSY, (uint8_t)id, 0,
			       "promote: server %u has not caught up (%s, applied %llu of %llu): wait until it has, then "
			       "ask again",
			       id, srvhealth_peer_up(s, id) ? "up" : "not heard", (unsigned long long)pp->st.applied,
			       (unsigned long long)s->applied_net);
			return;
		}
		bm->voter = 1;
	} else { /* remove */
		uint32_t k = (uint32_t)(bm - c.m);
		memmove(&c.m[k], &c.m[k + 1], (c.n - k - 1) * sizeof c.m[0]);
		c.n--;
	}
	uint64_t nv = batch_conf_voters(&c);
	unsigned up = voters_up(s, nv), need = (unsigned)__builtin_popcountll(nv) / 2 + 1;
	if (nv == 0 || up < need) {
		answer(s, from, m->token, MTR_EINVAL, (uint8_t)id, 0,
		       "%s: refused: the new configuration would have %u voters of which %u are up, fewer than a "
		       "majority (%u): bring servers back or add one first",
		       op, (unsigned)__builtin_popcountll(nv), up, need);
		return;
	}
	int rc = paxos_change(s->px, &c);
	if (rc != 0) {
		answer(s, from, m->token, rc == MTR_EBUSY || rc == MTR_EAGAIN ? rc : MTR_EINVAL, (uint8_t)id, 0,
		       "%s: the Paxos core refused the change: %s", op, mtr_strerror(rc));
		return;
	}
	s->mreq = (struct member_req){.active = 1, .token = m->token, .to = *from, .op = m->op, .id = (uint8_t)id,
				      .members = batch_conf_members(&c), .voters = nv,
				      .since_conf = ps.conf_since, .next_conf = ps.conf_next, .start_ms = s->now_ms};
	mtr_log(LOG_INFO, "server %u: membership change asked: %s server %u (%u members, %u voters)", s->cfg.id, op,
		id, c.n, (unsigned)__builtin_popcountll(nv));
}

void srvmem_on_datagram(struct server *s, const struct transport_msg *m)
{
	struct wire_member wm;
	if (srvnet_is_server(s, m->hdr.sender) ||
	    wire_member_decode(m->buf + WIRE_HDR_SIZE, m->hdr.length, &wm) != 0 || wm.kind != WIRE_MEMBER_REQUEST) {
		srvnet_drop(s, SERVER_DROP_membership, m);
		return;
	}
	on_request(s, &m->peer, &wm);
}

void srvmem_tick(struct server *s)
{
	struct member_req *r = &s->mreq;
	if (!r->active)
		return;
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	const char *op = wire_member_op_name(r->op);
	if (ps.conf_since != r->since_conf || ps.conf_next != r->next_conf) {
		struct batch_conf c;
		paxos_conf_at(s->px, UINT64_MAX, &c);
		r->active = 0;
		uint64_t eff = ps.conf_next ? ps.conf_next : ps.conf_since;
		if (batch_conf_members(&c) == r->members && batch_conf_voters(&c) == r->voters) {
			const char *what = r->op == WIRE_MEMBER_ADD ? "added as a learner" : r->op == WIRE_MEMBER_PROMOTE ? "is a voter" : "removed";
			answer(s, &r->to, r->token, 0, r->id, eff - PAXOS_CONF_DELAY,
			       "%s: server %u %s: chosen at instance %llu, in force from %llu", op, r->id, what,
			       (unsigned long long)(eff - PAXOS_CONF_DELAY), (unsigned long long)eff);
		} else {
			answer(s, &r->to, r->token, MTR_EBUSY, r->id, 0,
			       "%s: another configuration was chosen first (in force from %llu): look at mtr_members and ask "
			       "again",
			       op, (unsigned long long)eff);
		}
		return;
	}
	if (ps.role != PAXOS_LEADER || s->now_ms - r->start_ms > MEMBER_WAIT_MS) {
		r->active = 0;
		answer(s, &r->to, r->token, MTR_EUNKNOWN, r->id, 0,
		       "%s server %u: %s before the change was chosen: it may still be; look at mtr_members", op, r->id,
		       ps.role != PAXOS_LEADER ? "this server stopped leading" : "no decision within 20 s");
	}
}
