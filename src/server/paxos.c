/*
 * paxos.c - Multi-Paxos over batches of ranges, pure (see paxos.h and
 * doc/paxos.md).
 *
 * One struct paxos plays acceptor, learner and (when elected) proposer.
 * The log is an array of struct ent for instances base+1, base+2, ...;
 * instances <= base were compacted away.  Every instance <= delivered is
 * chosen and was handed to the host in order.
 *
 * Invariant 3 (contiguity) holds whatever gets chosen where: a value's
 * range (stream, first, last) is read cumulatively, "the stream is ordered
 * up to last" (first is the proposer's hint of where the new part starts).
 * deliver() hands the host, per stream, the items from the cursor + 1 up to
 * the mark, and nothing for a mark at or below the cursor, so a no-op or an
 * older value chosen at an instance after a leader change is harmless and a
 * leader may keep up to `pipeline` fresh instances in flight (doc/paxos.md,
 * "The leader's batching rule").  An acceptor accepts a mark only when it
 * holds every item of the stream up to it (holds(): watermark >= mark).
 *
 * A leader learns the chosen value of its own instances (>= first_own) only
 * from its own quorum, so that followers may conclude "chosen" from
 * (accepted ballot == leader ballot, inst in [first_own, commit]).
 *
 * A stable leader (doc/paxos.md, "A stable leader"): a node that heard from
 * a live leader within the election timeout (the leader itself, while it
 * hears from a majority) promises no challenger's higher ballot and grants
 * no pre-vote; a node without a leader first asks (PREVOTE, no durable
 * change) whether a majority would promise, and only then raises its
 * ballot; a leader that heard from no majority for two election timeouts
 * steps down (check-quorum).
 */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "util.h"

/* Highest instance accepted beyond the delivered one (bounds the log). */
#define MAX_AHEAD 16384u

struct ent {
	/* acceptor */
	uint64_t acc_ballot; /* 0: nothing accepted */
	struct batch acc;
	/* learner */
	bool chosen;
	struct batch val;
	/* an accept deferred until the items are held (invariant 4) */
	bool pend;
	uint32_t pend_from;
	uint64_t pend_ballot;
	struct batch pend_val;
	/* an accept persisted but not yet durable (PAXOS_PERSIST_LATER):
	 * answered by paxos_persisted() */
	bool ans;
	uint32_t ans_from;
	uint64_t ans_ballot;
	/* leader: its proposal at p->ballot and who accepted it */
	bool prop;
	uint64_t acks; /* by id */
	struct batch prop_val;
	/* candidate: highest-ballot value reported by the promises */
	uint64_t rec_ballot;
	struct batch rec_val;
};

/* A configuration and the first instance it is in force at. */
struct conf_ent {
	uint64_t eff;
	uint64_t voters, members; /* masks by id */
	struct batch_conf c;
};

struct paxos {
	struct paxos_config cfg;
	struct paxos_io io;
	uint64_t rng;
	uint64_t now;

	enum paxos_role role;
	uint64_t promised;      /* durable */
	uint64_t max_round;     /* highest round heard of, capped (volatile) */
	uint64_t ballot;        /* own ballot while candidate / leader */
	uint64_t leader_ballot; /* ballot of the leader followed, 0 if none */
	uint64_t deadline;      /* election deadline */
	uint64_t next_send;     /* next heartbeat / retransmission */
	uint64_t next_report;   /* next watermark report */
	uint64_t next_catchup;  /* next catch-up request */
	uint64_t next_warn_refused;   /* rate limit of the ballot-window warning */
	uint64_t next_warn_exhausted; /* and of the exhausted-round one */
	bool climb;                   /* a ballot beyond the window was seen (leader: re-run
				       * phase 1; others: climb at the next election timeout) */
	uint64_t next_climb;          /* leader: earliest time to climb towards it */

	/* stable leader */
	bool started;           /* the first tick happened (it starts the clock) */
	uint64_t stall_grace;   /* no stall rule before then (paxos_tick) */
	uint64_t lease_ballot;  /* the leader (or candidate promised) this node vouches for */
	uint64_t lease_until;   /* ... until then: one election timeout after hearing it */
	uint64_t pv_ballot;     /* pre-vote in progress: the ballot it would use, 0 if none */
	uint64_t pv_votes;      /* nodes that granted it (self included) */
	uint64_t cq_check;      /* leader: end of the current check-quorum period */
	uint64_t cq_heard;      /* leader: peers heard from in that period */
	bool standby;           /* paxos_standby(): the host cannot persist (a full disk) */

	/* log */
	uint64_t base;
	struct ent *ents;
	size_t n_ents, cap_ents;
	uint64_t delivered;
	uint64_t commit_seen;
	uint32_t commit_from;
	struct batch_order order; /* per-stream last seq after `delivered` */

	/* candidate */
	uint64_t prep_inst;
	uint64_t promised_by;
	uint64_t rec_max;

	/* leader */
	uint64_t first_own;
	uint64_t next_inst;
	uint64_t lead_promised;    /* the nodes that promised its ballot */
	struct batch_order prop;   /* per stream, the highest mark it proposed at its ballot */
	bool extending;            /* phase 1 extended to new voters (prep_inst) */
	uint64_t next_extend;      /* next PREPARE to the missing voters */
	bool change_pending;       /* paxos_change(): change to propose next */
	struct batch_conf change;
	uint64_t change_base;      /* confs[last].eff when it was asked for */
	uint64_t change_inst;      /* instance where it proposed one, 0 if none */

	/* membership (doc/paxos.md, "Membership"): the configurations in force
	 * from confs[k].eff on, sorted; confs[0].eff <= delivered + 1 */
	struct conf_ent *confs;
	size_t n_confs, cap_confs;
	uint64_t removed;   /* ids removed: their messages are refused */
	bool warned_removed;
	uint64_t tell_removed[PAXOS_MAX_ID]; /* next polite refusal to that removed id */
	uint64_t next_warn_removed;          /* rate limit of the refusal's log line */

	size_t n_ans; /* entries with ans set (paxos_persisted) */

	/* watermarks per node id (index cfg.id is our own) */
	struct batch_order marks[PAXOS_MAX_ID];

	struct paxos_stats stats;
};

/* ---- helpers ---- */

static uint64_t rng_next(struct paxos *p)
{
	/* splitmix64 */
	uint64_t z = (p->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void reset_deadline(struct paxos *p)
{
	uint64_t t = p->cfg.election_ms;
	p->deadline = p->now + t + rng_next(p) % t;
}

static unsigned popcount(uint64_t v) { return (unsigned)__builtin_popcountll(v); }
static uint64_t bit(uint32_t id) { return id < PAXOS_MAX_ID ? UINT64_C(1) << id : 0; }

/* ---- membership (doc/paxos.md, "Membership") ---- */

/* The configuration in force at instance inst: the last one whose first
 * instance is <= inst (for inst > delivered + PAXOS_CONF_DELAY, the latest
 * known, which a later change may still replace). */
static const struct conf_ent *conf_at(const struct paxos *p, uint64_t inst)
{
	size_t k = p->n_confs;
	while (k > 1 && p->confs[k - 1].eff > inst)
		k--;
	return &p->confs[k - 1];
}

/* Do the nodes of `set` include a majority of the voters of c? */
static bool quorum(uint64_t set, const struct conf_ent *c)
{
	return popcount(set & c->voters) >= popcount(c->voters) / 2 + 1;
}

/* Is this node a voter at instance inst? */
static bool is_voter(const struct paxos *p, uint64_t inst)
{
	return (conf_at(p, inst)->voters & bit(p->cfg.id)) != 0;
}

/* Do the promises of `set` cover every configuration in force in
 * delivered + 1 .. delivered + PAXOS_CONF_DELAY (rule 2)? */
static bool quorum_ahead(const struct paxos *p, uint64_t set)
{
	for (size_t k = 0; k < p->n_confs; k++)
		if (p->confs[k].eff <= p->delivered + PAXOS_CONF_DELAY && !quorum(set, &p->confs[k]))
			return false;
	return true;
}

/* Record that c was chosen at instance inst (a known one is ignored),
 * then forget the configurations no longer needed. */
static void conf_forget(struct paxos *p);
static int conf_add(struct paxos *p, uint64_t inst, const struct batch_conf *c)
{
	uint64_t eff = inst + PAXOS_CONF_DELAY;
	size_t at = p->n_confs;
	while (at > 0 && p->confs[at - 1].eff > eff)
		at--;
	if (at > 0 && p->confs[at - 1].eff == eff)
		return 0;
	if (at == 0 && p->n_confs > 0 && p->confs[0].eff <= p->delivered + 1)
		return 0; /* older than the one in force */
	if (p->n_confs == p->cap_confs) {
		size_t cap = p->cap_confs ? 2 * p->cap_confs : 4;
		struct conf_ent *v = realloc(p->confs, cap * sizeof *v);
		if (v == NULL)
			return MTR_ENOMEM;
		p->confs = v;
		p->cap_confs = cap;
	}
	memmove(&p->confs[at + 1], &p->confs[at], (p->n_confs - at) * sizeof *p->confs);
	p->confs[at] = (struct conf_ent){ .eff = eff, .voters = batch_conf_voters(c), .members = batch_conf_members(c),
					  .c = *c };
	p->n_confs++;
	conf_forget(p);
	return 0;
}

/* Drop the configurations superseded at delivered + 1; the ids they had
 * that no remaining one has are removed from now on (rule 4). */
static void conf_forget(struct paxos *p)
{
	while (p->n_confs > 1 && p->confs[1].eff <= p->delivered + 1) {
		uint64_t later = 0;
		for (size_t k = 1; k < p->n_confs; k++)
			later |= p->confs[k].members;
		p->removed |= p->confs[0].members & ~later;
		memmove(&p->confs[0], &p->confs[1], (p->n_confs - 1) * sizeof *p->confs);
		p->n_confs--;
	}
	if ((p->removed & bit(p->cfg.id)) && !p->warned_removed) {
		p->warned_removed = true;
		mtr_log(LOG_WARN, "paxos %u: this node was removed from the cluster (from instance %llu on): it "
				  "no longer votes or campaigns",
			p->cfg.id, (unsigned long long)p->confs[0].eff);
	}
}

/* The ids a broadcast goes to (paxos_audience). */
static uint64_t audience(const struct paxos *p)
{
	uint64_t m = 0;
	for (size_t k = 0; k < p->n_confs; k++)
		m |= p->confs[k].members;
	return m & ~p->removed & ~bit(p->cfg.id);
}

static void ent_clear(struct ent *e)
{
	batch_free(&e->acc);
	batch_free(&e->val);
	batch_free(&e->pend_val);
	batch_free(&e->prop_val);
	batch_free(&e->rec_val);
	memset(e, 0, sizeof *e);
}

/* The entry of inst, created on demand; NULL when compacted, too far ahead,
 * or out of memory. */
static struct ent *ent_get(struct paxos *p, uint64_t inst)
{
	if (inst <= p->base || inst > p->delivered + MAX_AHEAD)
		return NULL;
	size_t idx = (size_t)(inst - p->base - 1);
	if (idx >= p->n_ents) {
		if (idx >= p->cap_ents) {
			size_t cap = p->cap_ents ? p->cap_ents : 16;
			while (cap <= idx)
				cap *= 2;
			struct ent *e = realloc(p->ents, cap * sizeof *e);
			if (e == NULL)
				return NULL;
			p->ents = e;
			p->cap_ents = cap;
		}
		memset(&p->ents[p->n_ents], 0, (idx + 1 - p->n_ents) * sizeof *p->ents);
		p->n_ents = idx + 1;
	}
	return &p->ents[idx];
}

/* The entry of inst if it exists, else NULL (never creates). */
static struct ent *ent_find(struct paxos *p, uint64_t inst)
{
	if (inst <= p->base || inst - p->base - 1 >= p->n_ents)
		return NULL;
	return &p->ents[inst - p->base - 1];
}

/* Forget instances <= k (k <= delivered). */
static void log_drop(struct paxos *p, uint64_t k)
{
	if (k <= p->base)
		return;
	size_t drop = (size_t)MIN(k - p->base, (uint64_t)p->n_ents);
	for (size_t i = 0; i < drop; i++)
		ent_clear(&p->ents[i]);
	memmove(p->ents, p->ents + drop, (p->n_ents - drop) * sizeof *p->ents);
	p->n_ents -= drop;
	p->base = k;
}

static void send_msg(struct paxos *p, uint32_t to, const struct paxos_msg *m)
{
	p->stats.msgs_out++;
	p->io.send(p->io.data, to, m);
}

static void send_simple(struct paxos *p, uint32_t to, uint8_t type, uint64_t ballot, uint64_t inst,
			uint64_t commit, uint64_t last)
{
	struct paxos_msg m = { .type = type, .ballot = ballot, .inst = inst, .commit = commit, .last = last };
	send_msg(p, to, &m);
}

/* Remember the round of a ballot heard of, for the next election: capped at
 * PAXOS_ROUND_STEP above our promise (paxos.h, PAXOS_ROUND_WINDOW). */
static void note_ballot(struct paxos *p, uint64_t b)
{
	if (b == PAXOS_BALLOT_CHOSEN)
		return;
	uint64_t r = MIN(paxos_ballot_round(b), paxos_ballot_round(p->promised) + PAXOS_ROUND_STEP);
	if (r > p->max_round)
		p->max_round = r;
}

/* Is ballot b within this node's window (paxos.h)?  No overflow: rounds
 * are < 2^56. */
static bool ballot_in_window(const struct paxos *p, uint64_t b)
{
	return paxos_ballot_round(b) <= paxos_ballot_round(p->promised) + PAXOS_ROUND_WINDOW;
}

/* Drop a message whose ballot is beyond the window: count it, warn at most
 * once a minute, and climb towards it (capped: note_ballot; and a leader's
 * climb in paxos_tick) unless it is in the upper half of the round space,
 * where no honest cluster ever gets (paxos.h, PAXOS_ROUND_CLIMB_MAX). */
static void refuse_ballot(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	p->stats.ballots_refused++;
	if (paxos_ballot_round(m->ballot) < PAXOS_ROUND_CLIMB_MAX) {
		note_ballot(p, m->ballot);
		p->climb = true;
	}
	if (p->now >= p->next_warn_refused) {
		p->next_warn_refused = p->now + 60000;
		mtr_log(LOG_WARN,
			"paxos %u: dropped %s from node %u with ballot %llu.%u: more than %llu rounds above "
			"the promise %llu.%u (forged, left by a forgery, or this node is far behind)",
			p->cfg.id, paxos_msg_name(m->type), from, (unsigned long long)paxos_ballot_round(m->ballot),
			paxos_ballot_node(m->ballot), (unsigned long long)PAXOS_ROUND_WINDOW,
			(unsigned long long)paxos_ballot_round(p->promised), paxos_ballot_node(p->promised));
	}
}

/* Raise the durable promise to b (> promised); deferred accepts of lower
 * ballots are dropped.  0 or the persist error. */
static int promise_raise(struct paxos *p, uint64_t b)
{
	if (b <= p->promised)
		return 0;
	struct paxos_persist c = { .kind = PAXOS_PERSIST_PROMISE, .ballot = b };
	int rc = p->io.persist(p->io.data, &c);
	if (rc != 0)
		return rc;
	p->promised = b;
	note_ballot(p, b);
	for (size_t i = 0; i < p->n_ents; i++)
		if (p->ents[i].pend && p->ents[i].pend_ballot < b) {
			p->ents[i].pend = false;
			batch_free(&p->ents[i].pend_val);
		}
	return 0;
}

static void step_down(struct paxos *p)
{
	if (p->role != PAXOS_FOLLOWER) {
		p->stats.step_downs++;
		mtr_log(LOG_DEBUG, "paxos %u: step down from ballot %llu.%u", p->cfg.id,
			(unsigned long long)paxos_ballot_round(p->ballot), paxos_ballot_node(p->ballot));
	}
	p->role = PAXOS_FOLLOWER;
	for (size_t i = 0; i < p->n_ents; i++) {
		struct ent *e = &p->ents[i];
		e->prop = false;
		e->acks = 0;
		e->rec_ballot = 0;
		batch_free(&e->prop_val);
		batch_free(&e->rec_val);
	}
	p->promised_by = 0;
	p->lead_promised = 0;
	p->extending = false;
	p->change_pending = false;
	p->change_inst = 0;
	p->rec_max = 0;
	reset_deadline(p);
}

/* ---- stable leader: leases ---- */

/* This node vouches for the leader (or the candidate it promised) of
 * ballot b for one election timeout from now. */
static void lease_set(struct paxos *p, uint64_t b)
{
	p->lease_ballot = b;
	p->lease_until = p->now + p->cfg.election_ms;
}

/* The ballot of the live leader this node vouches for, 0 if none: itself
 * while leading (check-quorum ends that), else the leader it heard (or the
 * candidate it promised) within the election timeout. */
static uint64_t lease_ballot(const struct paxos *p)
{
	if (p->role == PAXOS_LEADER)
		return p->ballot;
	return p->now < p->lease_until ? p->lease_ballot : 0;
}

/* Must a PREVOTE, or a PREPARE above the promise, from `from` be refused?
 * Yes while this node vouches for a live leader other than `from`. */
static bool lease_blocks(const struct paxos *p, uint32_t from)
{
	uint64_t b = lease_ballot(p);
	return b != 0 && paxos_ballot_node(b) != from;
}

/* Answer a challenger refused for a live leader (or a pre-vote): the
 * leader's ballot and our commit, so that it learns both and catches up. */
static void send_prevote_reply(struct paxos *p, uint32_t to, uint64_t b, uint64_t leader, bool grant)
{
	struct paxos_msg r = { .type = PAXOS_PREVOTE_REPLY, .ballot = b, .commit = p->delivered,
			       .leader = leader, .grant = grant };
	send_msg(p, to, &r);
}

/* Record that inst is chosen with value (first learning wins). */
static void learn(struct paxos *p, uint64_t inst, const struct batch *value)
{
	if (inst <= p->delivered)
		return;
	struct ent *e = ent_get(p, inst);
	if (e == NULL || e->chosen)
		return;
	if (batch_copy(&e->val, value) != 0)
		return;
	e->chosen = true;
}

/* Not a voter at the next instance (removed, or made a learner): no
 * campaign, and a leader or candidate lets the voters elect (doc/paxos.md,
 * "Membership", rule 3). */
static void leave_if_not_voter(struct paxos *p)
{
	if (is_voter(p, p->delivered + 1))
		return;
	p->pv_ballot = 0;
	if (p->role != PAXOS_FOLLOWER) {
		mtr_log(LOG_INFO, "paxos %u: not a voter from instance %llu on: stepping down", p->cfg.id,
			(unsigned long long)(p->delivered + 1));
		step_down(p);
		p->leader_ballot = 0;
	}
}

/* Hand every contiguous chosen instance to the host, in order. */
static void deliver(struct paxos *p)
{
	for (;;) {
		struct ent *e = ent_find(p, p->delivered + 1);
		if (e == NULL || !e->chosen)
			break;
		/* Invariant 3: the value is read cumulatively against the
		 * cursor (see the top): per stream, from the last seq ordered
		 * + 1 up to the mark; a mark not above the cursor adds nothing.
		 * The host gets those ranges, so what it applies per stream is
		 * always a prefix, whichever value is chosen here. */
		struct batch eff = { 0 };
		const struct batch *v = &e->val;
		bool same = true;
		for (uint32_t i = 0; i < e->val.n && same; i++)
			same = e->val.r[i].first == batch_order_last(&p->order, e->val.r[i].stream) + 1;
		if (!same) {
			int rc = batch_set_conf(&eff, e->val.conf);
			for (uint32_t i = 0; i < e->val.n && rc == 0; i++) {
				const struct batch_range *r = &e->val.r[i];
				uint64_t last = batch_order_last(&p->order, r->stream);
				if (r->last <= last)
					p->stats.marks_behind++;
				else if ((rc = batch_push(&eff, r->stream, last + 1, r->last)) == 0 && r->first > last + 1)
					p->stats.marks_bridged++;
			}
			if (rc != 0) {
				mtr_log(LOG_ERROR, "paxos %u: out of memory delivering instance %llu: retried",
					p->cfg.id, (unsigned long long)(p->delivered + 1));
				batch_free(&eff);
				break;
			}
			v = &eff;
		}
		/* streams new to the cursor first, at 0 (the same as absent), so
		 * that advancing it below cannot fail halfway */
		int rc = 0;
		for (uint32_t i = 0; i < v->n && rc == 0; i++)
			if (batch_order_last(&p->order, v->r[i].stream) == 0)
				rc = batch_order_set(&p->order, v->r[i].stream, 0);
		if (rc != 0) {
			mtr_log(LOG_ERROR, "paxos %u: out of memory delivering instance %llu: retried", p->cfg.id,
				(unsigned long long)(p->delivered + 1));
			batch_free(&eff);
			break;
		}
		for (uint32_t i = 0; i < v->n; i++)
			(void)batch_order_set(&p->order, v->r[i].stream, v->r[i].last);
		p->delivered++;
		p->stats.delivered++;
		if (p->commit_seen < p->delivered)
			p->commit_seen = p->delivered;
		if (e->val.conf != NULL) {
			p->stats.conf_changes++;
			if (conf_add(p, p->delivered, e->val.conf) != 0)
				mtr_log(LOG_ERROR, "paxos %u: out of memory recording the configuration of instance %llu",
					p->cfg.id, (unsigned long long)p->delivered);
			mtr_log(LOG_INFO, "paxos %u: configuration chosen at instance %llu, in force from %llu: %u members",
				p->cfg.id, (unsigned long long)p->delivered,
				(unsigned long long)(p->delivered + PAXOS_CONF_DELAY), e->val.conf->n);
		}
		if (p->change_inst == p->delivered)
			p->change_inst = 0;
		conf_forget(p);
		p->io.chosen(p->io.data, p->delivered, v);
		batch_free(&eff);
	}
	leave_if_not_voter(p);
}

static void maybe_catchup(struct paxos *p)
{
	if (p->commit_seen <= p->delivered || p->now < p->next_catchup || p->commit_from >= PAXOS_MAX_ID ||
	    p->commit_from == p->cfg.id)
		return;
	p->stats.catchups_sent++;
	send_simple(p, p->commit_from, PAXOS_CATCHUP, 0, p->delivered + 1, 0,
		    MIN(p->commit_seen, p->delivered + PAXOS_MAX_ENTRIES));
	p->next_catchup = p->now + p->cfg.heartbeat_ms;
}

/* A HEARTBEAT this node does not follow (lower than its promise, or beyond
 * its ballot window) still says that instances <= commit are chosen at
 * `from`: catch up from it (CATCHUP / CHOSEN).  Safe whatever the ballots,
 * since chosen values are final; it keeps a node that cannot vote for the
 * leader yet (far behind, or restored with a promise no leader can beat)
 * applying. */
static void learn_commit(struct paxos *p, uint32_t from, uint64_t commit)
{
	if (commit > p->commit_seen)
		p->commit_seen = commit;
	/* the last node that knows more than we do, not the one that claimed
	 * the most: that one may be gone, or may have lied */
	if (commit > p->delivered)
		p->commit_from = from;
	maybe_catchup(p);
}

/* ---- acceptor ---- */

static void leader_on_accepted(struct paxos *p, uint32_t from, uint64_t b, uint64_t inst);

static bool holds_all(struct paxos *p, const struct batch *v)
{
	for (uint32_t i = 0; i < v->n; i++)
		if (!p->io.holds(p->io.data, v->r[i].stream, v->r[i].last))
			return false;
	return true;
}

/* Answer an accept of (b, inst) that is durable. */
static void answer_accept(struct paxos *p, uint32_t from, uint64_t b, uint64_t inst)
{
	if (from == p->cfg.id)
		leader_on_accepted(p, from, b, inst);
	else
		send_simple(p, from, PAXOS_ACCEPTED, b, inst, 0, 0);
}

/* Accept (b, inst, v): persist, then answer (at once, or from
 * paxos_persisted() when the host's persist said PAXOS_PERSIST_LATER).
 * The items are held. */
static int do_accept(struct paxos *p, uint32_t from, uint64_t b, uint64_t inst, struct ent *e,
		     const struct batch *v)
{
	bool later = false;
	if (e->acc_ballot != b || !batch_equal(&e->acc, v)) {
		struct paxos_persist c = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = b, .inst = inst, .value = v };
		int rc = p->io.persist(p->io.data, &c);
		if (rc < 0)
			return rc;
		later = rc == PAXOS_PERSIST_LATER;
		if (batch_copy(&e->acc, v) != 0) {
			e->acc_ballot = 0;
			return MTR_ENOMEM;
		}
		e->acc_ballot = b;
		p->stats.accepted++;
		if (b > p->promised)
			p->promised = b;
	}
	if (e->pend && e->pend_ballot <= b) {
		e->pend = false;
		batch_free(&e->pend_val);
	}
	if (later || (e->ans && e->ans_ballot == b)) {
		/* not durable yet (a retransmitted ACCEPT too): no answer
		 * before the host's group commit */
		if (!e->ans)
			p->n_ans++;
		e->ans = true;
		e->ans_from = from;
		e->ans_ballot = b;
		return 0;
	}
	answer_accept(p, from, b, inst);
	return 0;
}

/* Follow the leader of ballot b (b >= promised, already promised). */
static void follow(struct paxos *p, uint64_t b)
{
	if (p->role != PAXOS_FOLLOWER && b != p->ballot)
		step_down(p);
	if (p->role == PAXOS_FOLLOWER) {
		p->leader_ballot = b;
		p->pv_ballot = 0;
		p->climb = false; /* a leader in our window: it climbs, not we */
		lease_set(p, b);
		reset_deadline(p);
	}
}

static int on_accept(struct paxos *p, uint32_t from, uint64_t b, uint64_t inst, const struct batch *v)
{
	if (b < p->promised) {
		if (from != p->cfg.id) {
			p->stats.nacks_sent++;
			send_simple(p, from, PAXOS_NACK, p->promised, 0, 0, 0);
		}
		return 0;
	}
	int rc = promise_raise(p, b);
	if (rc != 0)
		return rc;
	if (from != p->cfg.id)
		follow(p, b);
	struct ent *e = ent_get(p, inst);
	if (e == NULL) {
		/* Compacted here: the instance is chosen and applied.  A leader
		 * still proposing it is behind and would wait for a quorum
		 * forever; tell it to install a snapshot (that steps it down). */
		if (inst <= p->base && from != p->cfg.id)
			send_simple(p, from, PAXOS_SNAPSHOT, 0, p->base, 0, 0);
		return 0;
	}
	if (holds_all(p, v))
		return do_accept(p, from, b, inst, e, v);
	/* Invariant 4: not before every item is here.  Fetch, answer later. */
	if (batch_copy(&e->pend_val, v) != 0)
		return MTR_ENOMEM;
	e->pend = true;
	p->stats.accepts_deferred++;
	e->pend_from = from;
	e->pend_ballot = b;
	/* a mark needs every item up to it: from the first one not ordered
	 * here if the value's hint is above it (an instance before it may
	 * turn out a no-op) */
	for (uint32_t i = 0; i < v->n; i++)
		if (!p->io.holds(p->io.data, v->r[i].stream, v->r[i].last))
			p->io.fetch(p->io.data, v->r[i].stream,
				    MIN(v->r[i].first, batch_order_last(&p->order, v->r[i].stream) + 1), v->r[i].last);
	return 0;
}

/* Fill the PROMISE entries for instances >= inst; returns `more`. */
static uint8_t promise_entries(struct paxos *p, uint64_t inst, struct paxos_entry *out, uint32_t *n)
{
	*n = 0;
	if (inst <= p->base && p->base > 0)
		return 1; /* compacted: the candidate must catch up first */
	for (uint64_t i = MAX(inst, p->base + 1); i <= p->base + p->n_ents; i++) {
		struct ent *e = ent_find(p, i);
		if (!e->chosen && e->acc_ballot == 0)
			continue;
		if (*n == PAXOS_MAX_ENTRIES)
			return 1;
		out[*n].inst = i;
		out[*n].ballot = e->chosen ? PAXOS_BALLOT_CHOSEN : e->acc_ballot;
		out[*n].value = e->chosen ? e->val : e->acc;
		(*n)++;
	}
	return 0;
}

static int on_prepare(struct paxos *p, uint32_t from, uint64_t b, uint64_t inst)
{
	if (p->standby) /* no promise it could not keep (paxos_standby) */
		return 0;
	if (b < p->promised) {
		p->stats.nacks_sent++;
		send_simple(p, from, PAXOS_NACK, p->promised, 0, 0, 0);
		return 0;
	}
	if (b > p->promised) {
		/* A stable leader: no promise to a challenger while a live
		 * leader is heard; it learns that leader instead. */
		if (lease_blocks(p, from)) {
			p->stats.prevotes_refused++;
			send_prevote_reply(p, from, b, lease_ballot(p), false);
			return 0;
		}
		int rc = promise_raise(p, b);
		if (rc != 0)
			return rc;
		if (p->role != PAXOS_FOLLOWER)
			step_down(p);
		p->leader_ballot = 0;
		p->pv_ballot = 0;
		lease_set(p, b); /* the candidate promised: no other for a timeout */
		reset_deadline(p);
	}
	struct paxos_entry ents[PAXOS_MAX_ENTRIES];
	struct paxos_msg m = { .type = PAXOS_PROMISE, .ballot = b, .inst = inst, .commit = p->delivered };
	m.more = promise_entries(p, inst, ents, &m.n_entries);
	m.entries = ents;
	send_msg(p, from, &m);
	return 0;
}

static int on_items_changed(struct paxos *p)
{
	for (size_t i = 0; i < p->n_ents; i++) {
		struct ent *e = &p->ents[i];
		if (!e->pend)
			continue;
		if (e->pend_ballot < p->promised) {
			e->pend = false;
			batch_free(&e->pend_val);
			continue;
		}
		if (!holds_all(p, &e->pend_val))
			continue;
		/* do_accept may deliver and propose (growing p->ents): take the
		 * value out of the entry and re-find the entry afterwards. */
		struct batch v = e->pend_val;
		e->pend_val = (struct batch){ 0 };
		e->pend = false;
		uint64_t inst = p->base + 1 + i;
		int rc = do_accept(p, e->pend_from, e->pend_ballot, inst, e, &v);
		batch_free(&v);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- proposer ---- */

static void propose(struct paxos *p, uint64_t inst, const struct batch *v)
{
	struct ent *e = ent_get(p, inst);
	if (e == NULL || batch_copy(&e->prop_val, v) != 0)
		return;
	e->prop = true;
	e->acks = 0;
	p->stats.proposed++;
	/* the marks it proposed: its next fresh value goes above them */
	for (uint32_t i = 0; i < v->n; i++)
		if (v->r[i].last > batch_order_last(&p->prop, v->r[i].stream))
			(void)batch_order_set(&p->prop, v->r[i].stream, v->r[i].last);
	struct paxos_msg m = { .type = PAXOS_ACCEPT, .ballot = p->ballot, .inst = inst, .value = *v };
	send_msg(p, PAXOS_BROADCAST, &m);
	on_accept(p, p->cfg.id, p->ballot, inst, v);
}

static int cmp_range(const void *a, const void *b)
{
	const struct batch_range *x = a, *y = b;
	return x->stream < y->stream ? -1 : x->stream > y->stream;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x > y ? -1 : x < y;
}

/* The base of a fresh mark for stream s: the highest of the cursor (the
 * chosen log) and the marks this leader proposed at its ballot. */
static uint64_t fresh_base(const struct paxos *p, uint64_t s)
{
	return MAX(batch_order_last(&p->order, s), batch_order_last(&p->prop, s));
}

/* The fresh batch: per stream whose W (the highest seq held by a majority
 * according to the watermarks) is above its base, the mark W, with the
 * hint first = base + 1.  Empty when no watermark rose above the base. */
static int fresh_batch(struct paxos *p, struct batch *out)
{
	struct batch_order seen = { 0 };
	const struct conf_ent *c = conf_at(p, p->next_inst);
	uint32_t nv = popcount(c->voters);
	int rc = 0;
	for (uint32_t j = 0; j < PAXOS_MAX_ID && rc == 0; j++) {
		if (!(c->voters & bit(j)))
			continue;
		for (uint32_t k = 0; k < p->marks[j].n && rc == 0; k++) {
			uint64_t s = p->marks[j].v[k].stream;
			if (batch_order_last(&seen, s) != 0)
				continue;
			if ((rc = batch_order_set(&seen, s, 1)) != 0)
				break;
			uint64_t w[PAXOS_MAX_NODES];
			uint32_t nw = 0;
			for (uint32_t i = 0; i < PAXOS_MAX_ID && nw < PAXOS_MAX_NODES; i++)
				if (c->voters & bit(i))
					w[nw++] = batch_order_last(&p->marks[i], s);
			qsort(w, nw, sizeof w[0], cmp_desc);
			uint64_t hi = w[nv / 2];
			uint64_t last = fresh_base(p, s);
			if (hi > last && out->n < BATCH_MAX_RANGES)
				rc = batch_push(out, s, last + 1, hi);
		}
	}
	batch_order_free(&seen);
	if (out->n > 1)
		qsort(out->r, out->n, sizeof *out->r, cmp_range);
	return rc;
}

/* Propose what can be proposed now (defined below). */
static void leader_fill(struct paxos *p);

/* Leader: PREPARE (same ballot, from prep_inst) to the voters ahead that
 * have not promised it. */
static void extend_send(struct paxos *p)
{
	uint64_t to = 0;
	for (size_t k = 0; k < p->n_confs; k++)
		if (p->confs[k].eff <= p->delivered + PAXOS_CONF_DELAY)
			to |= p->confs[k].voters;
	to &= ~p->lead_promised & ~bit(p->cfg.id) & ~p->removed;
	/* from what is delivered now: instances chosen meanwhile (instances
	 * in flight when the extension began) may be compacted at the voter
	 * already, and a PREPARE below its compaction point gets `more` */
	p->prep_inst = p->delivered + 1;
	struct paxos_msg m = { .type = PAXOS_PREPARE, .ballot = p->ballot, .inst = p->prep_inst };
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
		if (to & bit(j))
			send_msg(p, j, &m);
	p->next_extend = p->now + p->cfg.heartbeat_ms;
}

/* May the leader propose at instance i (doc/paxos.md, "Membership", rule
 * 2)?  Only when it knows conf(i) and promises of its ballot cover it.
 * When they do not (a voter joined, the quorum moved) it extends phase 1
 * at the same ballot to the voters missing (PREPARE from delivered + 1;
 * their PROMISEs are taken in on_promise) and answers false meanwhile. */
static bool leader_may_propose(struct paxos *p, uint64_t i)
{
	if (i > p->delivered + PAXOS_CONF_DELAY)
		return false;
	if (quorum(p->lead_promised, conf_at(p, i)))
		return true;
	if (!p->extending) {
		p->extending = true;
		p->stats.conf_prepares++;
		p->prep_inst = p->delivered + 1;
		mtr_log(LOG_INFO, "paxos %u: the configuration in force at instance %llu has voters that did not "
				  "promise ballot %llu.%u: phase 1 for them",
			p->cfg.id, (unsigned long long)i, (unsigned long long)paxos_ballot_round(p->ballot),
			paxos_ballot_node(p->ballot));
		extend_send(p);
	}
	return false;
}

/* Leader: a PROMISE of its ballot from a voter it extended phase 1 to.
 * Values accepted at instances it has not proposed yet are recovered as in
 * phase 1; one reported chosen there counts as accepted at the highest
 * ballot (PAXOS_BALLOT_CHOSEN), so it is the one proposed: ignoring it
 * would let this leader choose another value where one is chosen (the
 * simulator found that).  Instances it has proposed are left alone: it
 * decides those from its own quorum (see the top). */
static void leader_on_promise(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	if (!p->extending || m->ballot != p->ballot || m->inst != p->prep_inst || (p->lead_promised & bit(from)) ||
	    m->more)
		return;
	for (uint32_t k = 0; k < m->n_entries; k++) {
		const struct paxos_entry *x = &m->entries[k];
		if (x->inst < p->next_inst)
			continue;
		struct ent *e = ent_get(p, x->inst);
		if (e == NULL || e->chosen)
			continue;
		p->rec_max = MAX(p->rec_max, x->inst);
		if (x->ballot > e->rec_ballot && batch_copy(&e->rec_val, &x->value) == 0)
			e->rec_ballot = x->ballot;
	}
	p->lead_promised |= bit(from);
	if (quorum_ahead(p, p->lead_promised))
		p->extending = false;
	leader_fill(p);
}

/* Propose what can be proposed now: recovered instances within the window
 * (and within PAXOS_CONF_DELAY: their configuration is known), then fresh
 * values: a requested configuration change when nothing is in flight, else
 * fresh batches up to `pipeline` in flight, else a no-op while a change is
 * pending and nothing is in flight (so that it takes effect in an idle
 * cluster too). */
static void leader_fill(struct paxos *p)
{
	static const struct batch noop = { 0 };
	while (p->role == PAXOS_LEADER && p->next_inst <= p->rec_max &&
	       p->next_inst < p->delivered + 1 + MIN(p->cfg.window, PAXOS_CONF_DELAY)) {
		uint64_t i = p->next_inst;
		if (!leader_may_propose(p, i))
			return;
		p->next_inst++;
		struct ent *e = ent_get(p, i);
		if (e == NULL || e->chosen)
			continue;
		struct batch v = e->rec_val;
		e->rec_val = (struct batch){ 0 };
		propose(p, i, e->rec_ballot ? &v : &noop);
		batch_free(&v);
	}
	if (p->role != PAXOS_LEADER || p->next_inst <= p->rec_max)
		return;
	if (p->change_pending && p->next_inst == p->delivered + 1 && leader_may_propose(p, p->next_inst)) {
		/* a change only with nothing in flight: every value before it
		 * is delivered, so a change chosen meanwhile (a former
		 * leader's, recovered) is known here */
		struct batch v = { 0 };
		p->change_pending = false;
		if (p->confs[p->n_confs - 1].eff != p->change_base) {
			/* this one was made from an older configuration; drop
			 * it, the operator asks again from the new one */
			mtr_log(LOG_WARN, "paxos %u: configuration change dropped: another one was chosen meanwhile",
				p->cfg.id);
		} else if (batch_set_conf(&v, &p->change) == 0) {
			p->change_inst = p->next_inst;
			propose(p, p->next_inst++, &v);
		}
		batch_free(&v);
	}
	/* Fresh batches, up to `pipeline` instances in flight (never beyond
	 * delivered + PAXOS_CONF_DELAY: leader_may_propose), each only when a
	 * majority-held watermark rose above the marks proposed so far.  A
	 * change waiting for the pipeline to drain stops them. */
	while (p->role == PAXOS_LEADER && !p->change_pending && p->next_inst < p->delivered + 1 + p->cfg.pipeline &&
	       leader_may_propose(p, p->next_inst)) {
		struct batch v = { 0 };
		if (fresh_batch(p, &v) != 0 || v.n == 0) {
			batch_free(&v);
			break;
		}
		if (p->next_inst != p->delivered + 1)
			p->stats.pipelined++;
		propose(p, p->next_inst++, &v);
		batch_free(&v);
	}
	/* nothing to propose while a change is pending: a no-op, so that it
	 * takes effect in an idle cluster too */
	if (p->role == PAXOS_LEADER && !p->change_pending && p->next_inst == p->delivered + 1 &&
	    p->confs[p->n_confs - 1].eff > p->next_inst && leader_may_propose(p, p->next_inst))
		propose(p, p->next_inst++, &noop);
}

static void heartbeat(struct paxos *p)
{
	send_simple(p, PAXOS_BROADCAST, PAXOS_HEARTBEAT, p->ballot, p->first_own, p->delivered, 0);
}

static void become_leader(struct paxos *p)
{
	p->role = PAXOS_LEADER;
	p->stats.leader_terms++;
	mtr_log(LOG_INFO, "paxos %u: election won at ballot %llu.%u: promised by %u of %u nodes", p->cfg.id,
		(unsigned long long)paxos_ballot_round(p->ballot), paxos_ballot_node(p->ballot),
		popcount(p->promised_by & conf_at(p, p->delivered + 1)->voters), popcount(conf_at(p, p->delivered + 1)->voters));
	p->climb = false; /* only ballots dropped while leading count */
	p->leader_ballot = p->ballot;
	p->pv_ballot = 0;
	p->cq_heard = 0;
	p->cq_check = p->now + (uint64_t)PAXOS_QUORUM_TIMEOUTS * p->cfg.election_ms;
	p->first_own = p->delivered + 1;
	p->next_inst = p->delivered + 1;
	p->lead_promised = p->promised_by;
	p->extending = false;
	p->promised_by = 0;
	batch_order_free(&p->prop);
	mtr_log(LOG_DEBUG, "paxos %u: leader at ballot %llu.%u from instance %llu (recover to %llu)",
		p->cfg.id, (unsigned long long)paxos_ballot_round(p->ballot), paxos_ballot_node(p->ballot),
		(unsigned long long)p->first_own, (unsigned long long)p->rec_max);
	heartbeat(p);
	p->next_send = p->now + p->cfg.heartbeat_ms;
	leader_fill(p);
}

static void leader_on_accepted(struct paxos *p, uint32_t from, uint64_t b, uint64_t inst)
{
	if (p->role != PAXOS_LEADER || b != p->ballot)
		return;
	struct ent *e = ent_find(p, inst);
	if (e == NULL || !e->prop || e->chosen)
		return;
	e->acks |= bit(from);
	if (!quorum(e->acks, conf_at(p, inst)))
		return;
	struct batch v = e->prop_val;
	e->prop_val = (struct batch){ 0 };
	e->prop = false;
	learn(p, inst, &v);
	batch_free(&v);
	uint64_t before = p->delivered;
	deliver(p);
	if (p->delivered != before && p->role == PAXOS_LEADER)
		heartbeat(p);
	leader_fill(p);
}

/* Candidate: take the acceptor state of `from` into account. */
static void absorb(struct paxos *p, const struct paxos_entry *es, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		const struct paxos_entry *x = &es[k];
		if (x->inst <= p->delivered)
			continue;
		struct ent *e = ent_get(p, x->inst);
		if (e == NULL)
			continue;
		if (x->inst > p->rec_max)
			p->rec_max = x->inst;
		if (x->ballot == PAXOS_BALLOT_CHOSEN)
			learn(p, x->inst, &x->value);
		else if (x->ballot > e->rec_ballot && batch_copy(&e->rec_val, &x->value) == 0)
			e->rec_ballot = x->ballot;
	}
	deliver(p);
}

/* Start (or restart with the same ballot) phase 1 from delivered + 1. */
static void prepare(struct paxos *p)
{
	for (size_t i = 0; i < p->n_ents; i++) {
		p->ents[i].rec_ballot = 0;
		batch_free(&p->ents[i].rec_val);
	}
	p->rec_max = 0;
	p->prep_inst = p->delivered + 1;
	p->promised_by = bit(p->cfg.id);
	/* Our own promise: every entry of our log (no message, no limit). */
	for (uint64_t i = p->prep_inst; i <= p->base + p->n_ents; i++) {
		struct ent *e = ent_find(p, i);
		if (e->chosen) {
			p->rec_max = MAX(p->rec_max, i);
		} else if (e->acc_ballot && batch_copy(&e->rec_val, &e->acc) == 0) {
			e->rec_ballot = e->acc_ballot;
			p->rec_max = MAX(p->rec_max, i);
		}
	}
	send_simple(p, PAXOS_BROADCAST, PAXOS_PREPARE, p->ballot, p->prep_inst, 0, 0);
	p->next_send = p->now + p->cfg.heartbeat_ms;
	if (quorum_ahead(p, p->promised_by))
		become_leader(p);
}

/* The round of this node's next election: above its promise and every
 * ballot it heard of (capped: note_ballot).  False when no round is left
 * (never wrap: a wrapped round is lower than the promise); the node then
 * follows and learns only. */
static bool next_round(struct paxos *p, uint64_t *round)
{
	uint64_t top = MAX(paxos_ballot_round(p->promised), p->max_round);
	if (top >= PAXOS_ROUND_MAX) {
		p->stats.rounds_exhausted++;
		reset_deadline(p);
		if (p->now >= p->next_warn_exhausted) {
			p->next_warn_exhausted = p->now + 60000;
			mtr_log(LOG_WARN, "paxos %u: promise %llu.%u is at the last round: this node cannot lead",
				p->cfg.id, (unsigned long long)paxos_ballot_round(p->promised),
				paxos_ballot_node(p->promised));
		}
		return false;
	}
	*round = top + 1;
	return true;
}

/* Phase 1 at a new ballot: after a granted pre-vote, or a leader's climb. */
static void start_election(struct paxos *p)
{
	uint64_t round;
	if (!is_voter(p, p->delivered + 1)) {
		/* a learner, or removed: never a candidate (rule 3) */
		step_down(p);
		p->pv_ballot = 0;
		return;
	}
	if (!next_round(p, &round))
		return;
	uint64_t b = paxos_ballot(round, p->cfg.id);
	unsigned granted = p->pv_ballot ? popcount(p->pv_votes & conf_at(p, p->delivered + 1)->voters) : 0;
	step_down(p); /* clears leader/candidate state, resets the deadline */
	p->pv_ballot = 0;
	p->lease_ballot = 0;
	if (promise_raise(p, b) != 0)
		return;
	p->role = PAXOS_CANDIDATE;
	p->stats.elections++;
	p->ballot = b;
	p->leader_ballot = 0;
	if (granted)
		mtr_log(LOG_INFO, "paxos %u: election started at ballot %llu.%u: no leader heard for an election "
				  "timeout, pre-vote granted by %u of %u nodes",
			p->cfg.id, (unsigned long long)round, p->cfg.id, granted,
			popcount(conf_at(p, p->delivered + 1)->voters));
	else
		mtr_log(LOG_INFO, "paxos %u: election started at ballot %llu.%u: climbing towards ballots beyond "
				  "the window that a peer uses",
			p->cfg.id, (unsigned long long)round, p->cfg.id);
	prepare(p);
}

/* Send the pre-vote to every node that has not granted it yet. */
static void send_prevote(struct paxos *p)
{
	struct paxos_msg m = { .type = PAXOS_PREVOTE, .ballot = p->pv_ballot, .commit = p->delivered };
	uint64_t to = audience(p) & ~p->pv_votes;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
		if (to & bit(j))
			send_msg(p, j, &m);
	p->next_send = p->now + p->cfg.heartbeat_ms;
}

/*
 * The election timeout passed without a leader: ask first (PREVOTE), and
 * raise the ballot only once a majority would promise (on_prevote_reply).
 * Nothing durable changes, so a node alone in a partition, paused, or
 * behind cannot push the others' promises up and depose a healthy leader
 * when it comes back.  One exception keeps "Bounded ballots" working: a
 * node that dropped a ballot beyond its window climbs towards it here,
 * raising its promise as its failed election used to (it hears no leader
 * in its window, so it deposes nobody).
 */
static void start_prevote(struct paxos *p)
{
	uint64_t round;
	if (!next_round(p, &round))
		return;
	if (p->role != PAXOS_FOLLOWER)
		step_down(p); /* a candidate whose phase 1 timed out */
	else
		reset_deadline(p);
	if (p->climb) {
		p->climb = false;
		if (promise_raise(p, paxos_ballot(round, p->cfg.id)) == 0 && !next_round(p, &round))
			return;
	}
	if (!is_voter(p, p->delivered + 1)) {
		/* a learner, or removed: it climbs (above) like anyone, learns,
		 * and never campaigns (doc/paxos.md, "Membership", rule 3).  It
		 * tells the voters where it is, though: new voters that do not
		 * know yet that they are (an empty server made a voter while no
		 * leader is left to tell it) would otherwise never campaign. */
		p->pv_ballot = 0;
		if (p->delivered > 0) {
			uint64_t to = conf_at(p, p->delivered + 1)->voters & ~bit(p->cfg.id);
			for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
				if (to & bit(j))
					send_prevote_reply(p, j, 0, 0, false);
		}
		return;
	}
	p->leader_ballot = 0; /* none heard for an election timeout */
	p->pv_ballot = paxos_ballot(round, p->cfg.id);
	p->pv_votes = bit(p->cfg.id);
	p->stats.prevotes++;
	mtr_log(LOG_DEBUG, "paxos %u: pre-vote for ballot %llu.%u", p->cfg.id, (unsigned long long)round, p->cfg.id);
	if (quorum(p->pv_votes, conf_at(p, p->delivered + 1))) {
		start_election(p);
		return;
	}
	send_prevote(p);
}

/* Would this node promise a new leader?  Not while it vouches for a live
 * leader other than the sender (it names it instead), nor to a node behind
 * its own delivered instance (the commit tells it where to catch up). */
static void on_prevote(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	if (m->commit > p->delivered)
		learn_commit(p, from, m->commit); /* the asker is ahead: catch up from it */
	if (p->standby) {
		/* it could not promise: it must not be counted on */
		send_prevote_reply(p, from, m->ballot, 0, false);
		return;
	}
	if (lease_blocks(p, from)) {
		p->stats.prevotes_refused++;
		send_prevote_reply(p, from, m->ballot, lease_ballot(p), false);
	} else {
		send_prevote_reply(p, from, m->ballot, 0, m->commit >= p->delivered);
	}
}

static void on_prevote_reply(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	if (m->commit > p->delivered) {
		/* the sender is ahead: catch up from it first */
		if (m->commit > p->commit_seen)
			p->commit_seen = m->commit;
		p->commit_from = from;
		maybe_catchup(p);
	}
	if (!m->grant) {
		/* the leader it names: our next election (if any) goes above it */
		if (m->leader != 0 && ballot_in_window(p, m->leader))
			note_ballot(p, m->leader);
		return;
	}
	if (p->role != PAXOS_FOLLOWER || p->pv_ballot == 0 || m->ballot != p->pv_ballot)
		return;
	p->pv_votes |= bit(from);
	if (quorum(p->pv_votes, conf_at(p, p->delivered + 1)))
		start_election(p);
}

/* Check-quorum: a leader that heard from no majority (itself included)
 * during the last PAXOS_QUORUM_TIMEOUTS election timeouts steps down, so that its followers'
 * leases run out and the others can elect (a leader cut off from the
 * majority would otherwise keep a minority that hears it from voting). */
static bool quorum_lost(struct paxos *p)
{
	if (p->now < p->cq_check)
		return false;
	uint64_t heard = p->cq_heard | bit(p->cfg.id);
	const struct conf_ent *c = conf_at(p, p->delivered + 1);
	p->cq_heard = 0;
	p->cq_check = p->now + (uint64_t)PAXOS_QUORUM_TIMEOUTS * p->cfg.election_ms;
	if (quorum(heard, c))
		return false;
	p->stats.quorum_lost++;
	mtr_log(LOG_WARN, "paxos %u: leader at ballot %llu.%u heard from %u of %u nodes in %u ms: stepping down",
		p->cfg.id, (unsigned long long)paxos_ballot_round(p->ballot), paxos_ballot_node(p->ballot),
		popcount(heard & c->voters), popcount(c->voters), PAXOS_QUORUM_TIMEOUTS * p->cfg.election_ms);
	step_down(p);
	p->leader_ballot = 0;
	return true;
}

static int on_promise(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	if (p->role == PAXOS_LEADER) {
		leader_on_promise(p, from, m);
		return 0;
	}
	if (p->role != PAXOS_CANDIDATE || m->ballot != p->ballot || m->inst != p->prep_inst ||
	    (p->promised_by & bit(from)))
		return 0;
	uint64_t before = p->delivered;
	absorb(p, m->entries, m->n_entries);
	if (m->commit > p->commit_seen) {
		p->commit_seen = m->commit;
		p->commit_from = from;
	}
	if (m->more) {
		if (p->delivered > before) {
			prepare(p); /* learned something: phase 1 again, same ballot */
		} else {
			/* Too far behind to lead: catch up first. */
			step_down(p);
			p->commit_seen = MAX(p->commit_seen, m->commit);
			p->commit_from = from;
			p->next_catchup = p->now;
			maybe_catchup(p);
		}
		return 0;
	}
	p->promised_by |= bit(from);
	if (quorum_ahead(p, p->promised_by))
		become_leader(p);
	return 0;
}

/* ---- learner ---- */

static int on_heartbeat(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	if (m->ballot < p->promised) {
		send_simple(p, from, PAXOS_NACK, p->promised, 0, 0, 0);
		learn_commit(p, from, m->commit);
		return 0;
	}
	int rc = promise_raise(p, m->ballot);
	if (rc != 0) {
		/* it cannot promise (a failed write; standby): it does not
		 * follow, but learns what is chosen all the same (CATCHUP and
		 * CHOSEN need no promise) */
		learn_commit(p, from, m->commit);
		return rc;
	}
	follow(p, m->ballot);
	/* An entry accepted at the leader's ballot, at or above its first own
	 * instance and at or below its commit, holds the chosen value. */
	for (uint64_t i = p->delivered + 1; i <= m->commit; i++) {
		struct ent *e = ent_find(p, i);
		if (e == NULL)
			break;
		if (!e->chosen) {
			if (i < m->inst || e->acc_ballot != m->ballot)
				break;
			learn(p, i, &e->acc);
		}
	}
	deliver(p);
	if (m->commit > p->commit_seen)
		p->commit_seen = m->commit;
	p->commit_from = from;
	maybe_catchup(p);
	return 0;
}

static int on_catchup(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	if (m->inst <= p->base) {
		if (p->base > 0)
			send_simple(p, from, PAXOS_SNAPSHOT, 0, p->base, 0, 0);
		return 0;
	}
	struct paxos_entry ents[PAXOS_MAX_ENTRIES];
	uint32_t n = 0;
	for (uint64_t i = m->inst; i <= m->last && n < PAXOS_MAX_ENTRIES; i++) {
		struct ent *e = ent_find(p, i);
		if (e == NULL || !e->chosen)
			break;
		ents[n++] = (struct paxos_entry){ i, PAXOS_BALLOT_CHOSEN, e->val };
	}
	if (n > 0) {
		struct paxos_msg r = { .type = PAXOS_CHOSEN, .n_entries = n, .entries = ents };
		send_msg(p, from, &r);
	}
	return 0;
}

static int on_chosen(struct paxos *p, const struct paxos_msg *m)
{
	for (uint32_t k = 0; k < m->n_entries; k++) {
		const struct paxos_entry *x = &m->entries[k];
		if (x->ballot != PAXOS_BALLOT_CHOSEN)
			continue;
		/* A leader decides its own instances itself (see the top). */
		if (p->role == PAXOS_LEADER && x->inst >= p->first_own)
			continue;
		learn(p, x->inst, &x->value);
	}
	deliver(p);
	p->next_catchup = p->now; /* go on at once if still behind */
	maybe_catchup(p);
	return 0;
}

static int marks_merge(struct batch_order *o, const struct batch_mark *mk, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (mk[i].seq <= batch_order_last(o, mk[i].stream))
			continue;
		int rc = batch_order_set(o, mk[i].stream, mk[i].seq);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- public ---- */

int paxos_create(struct paxos **out, const struct paxos_config *cfg, const struct paxos_io *io)
{
	*out = NULL;
	if (cfg->id >= PAXOS_MAX_ID || cfg->pipeline > PAXOS_CONF_DELAY || io->send == NULL || io->persist == NULL || io->holds == NULL ||
	    io->fetch == NULL || io->chosen == NULL)
		return MTR_EINVAL;
	struct batch_conf c0 = { 0 };
	if (cfg->conf != NULL) {
		if (batch_conf_validate(cfg->conf) != 0)
			return MTR_EINVAL;
		c0 = *cfg->conf;
	} else {
		if (cfg->n == 0 || cfg->n > PAXOS_MAX_NODES)
			return MTR_EINVAL;
		c0.n = cfg->n;
		for (uint32_t i = 0; i < cfg->n; i++)
			c0.m[i] = (struct batch_member){ .id = (uint8_t)i, .voter = 1 };
	}
	struct paxos *p = calloc(1, sizeof *p);
	if (p == NULL)
		return MTR_ENOMEM;
	p->confs = malloc(4 * sizeof *p->confs);
	if (p->confs == NULL) {
		free(p);
		return MTR_ENOMEM;
	}
	p->cap_confs = 4;
	p->n_confs = 1;
	p->confs[0] = (struct conf_ent){ .eff = 0, .voters = batch_conf_voters(&c0), .members = batch_conf_members(&c0),
					 .c = c0 };
	p->cfg = *cfg;
	p->cfg.conf = NULL; /* copied into confs[0] */
	if (p->cfg.window == 0)
		p->cfg.window = 8;
	if (p->cfg.pipeline == 0)
		p->cfg.pipeline = PAXOS_PIPELINE_DEFAULT;
	if (p->cfg.heartbeat_ms == 0)
		p->cfg.heartbeat_ms = 50;
	if (p->cfg.election_ms == 0)
		p->cfg.election_ms = 500;
	p->io = *io;
	p->rng = cfg->seed ^ ((uint64_t)cfg->id << 56) ^ 0x6d74725061786f73ull;
	p->commit_from = PAXOS_BROADCAST;
	reset_deadline(p);
	*out = p;
	return 0;
}

void paxos_destroy(struct paxos *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_ents; i++)
		ent_clear(&p->ents[i]);
	free(p->ents);
	batch_order_free(&p->order);
	batch_order_free(&p->prop);
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
		batch_order_free(&p->marks[j]);
	free(p->confs);
	free(p);
}

int paxos_restore_promise(struct paxos *p, uint64_t ballot)
{
	if (ballot > p->promised)
		p->promised = ballot;
	note_ballot(p, ballot);
	return 0;
}

int paxos_restore_accepted(struct paxos *p, uint64_t inst, uint64_t ballot, const struct batch *value)
{
	if (inst <= p->delivered)
		return 0;
	struct ent *e = ent_get(p, inst);
	if (e == NULL)
		return inst > p->delivered + MAX_AHEAD ? MTR_EINVAL : MTR_ENOMEM;
	if (batch_copy(&e->acc, value) != 0)
		return MTR_ENOMEM;
	e->acc_ballot = ballot;
	note_ballot(p, ballot);
	return 0;
}

int paxos_install(struct paxos *p, uint64_t inst, const struct batch_order *cursor)
{
	if (inst <= p->delivered)
		return 0;
	struct batch_order o = { 0 };
	if (batch_order_copy(&o, cursor) != 0)
		return MTR_ENOMEM;
	if (p->role != PAXOS_FOLLOWER)
		step_down(p);
	log_drop(p, MIN(inst, p->base + p->n_ents));
	p->base = inst;
	p->delivered = inst;
	if (p->commit_seen < inst)
		p->commit_seen = inst;
	batch_order_free(&p->order);
	p->order = o;
	conf_forget(p);
	deliver(p);
	return 0;
}

int paxos_tick(struct paxos *p, uint64_t now_ms)
{
	if (!p->started) {
		/* The first tick starts the clock: a node just created waits a
		 * whole election timeout to hear a leader before it may ask. */
		p->started = true;
		p->now = MAX(p->now, now_ms);
		reset_deadline(p);
	} else if (now_ms > p->now + p->cfg.election_ms && now_ms >= p->stall_grace) {
		/* No tick for an election timeout or more: the process was
		 * paused (SIGSTOP), stalled, or busy installing a snapshot.
		 * Nothing was heard in that time, through no one's fault: a
		 * follower first waits a timeout to hear the leader again, a
		 * leader gives its followers a timeout to answer.  At most once
		 * per PAXOS_CLIMB_TIMEOUTS timeouts, so that a host that only
		 * ever ticks that slowly still campaigns. */
		p->stats.stalls++;
		p->stall_grace = now_ms + (uint64_t)PAXOS_CLIMB_TIMEOUTS * p->cfg.election_ms;
		mtr_log(LOG_INFO, "paxos %u: no tick for %llu ms: waiting %u ms to hear from the others", p->cfg.id,
			(unsigned long long)(now_ms - p->now), p->cfg.election_ms);
		p->now = now_ms;
		reset_deadline(p);
		p->cq_heard = 0;
		p->cq_check = p->now + (uint64_t)PAXOS_QUORUM_TIMEOUTS * p->cfg.election_ms;
	}
	if (now_ms > p->now)
		p->now = now_ms;
	switch (p->role) {
	case PAXOS_FOLLOWER:
		if (p->standby) {
			/* no campaign while nothing can be persisted; on the way
			 * out it first waits a timeout to hear the leader */
			p->pv_ballot = 0;
			break;
		}
		if (p->now >= p->deadline)
			start_prevote(p);
		else if (p->pv_ballot != 0 && p->now >= p->next_send)
			send_prevote(p);
		break;
	case PAXOS_CANDIDATE:
		if (p->now >= p->deadline)
			start_prevote(p);
		else if (p->now >= p->next_send) {
			send_simple(p, PAXOS_BROADCAST, PAXOS_PREPARE, p->ballot, p->prep_inst, 0, 0);
			p->next_send = p->now + p->cfg.heartbeat_ms;
		}
		break;
	case PAXOS_LEADER:
		if (quorum_lost(p))
			break;
		if (p->climb && p->now >= p->next_climb) {
			/* A ballot beyond our window (a peer far ahead, e.g. one that
			 * was partitioned for days, NACKs us): phase 1 again at most
			 * PAXOS_ROUND_STEP + 1 rounds higher, at most once per
			 * PAXOS_CLIMB_TIMEOUTS election timeouts, until it is inside
			 * the window and the ordinary rules take over. */
			p->climb = false;
			p->next_climb = p->now + (uint64_t)PAXOS_CLIMB_TIMEOUTS * p->cfg.election_ms;
			start_election(p);
			break;
		}
		if (p->extending && p->now >= p->next_extend)
			extend_send(p);
		if (p->now >= p->next_send) {
			heartbeat(p);
			for (uint64_t i = p->delivered + 1; i < p->next_inst; i++) {
				struct ent *e = ent_find(p, i);
				if (e == NULL || !e->prop || e->chosen)
					continue;
				struct paxos_msg m = { .type = PAXOS_ACCEPT, .ballot = p->ballot, .inst = i,
						       .value = e->prop_val };
				uint64_t to = audience(p) & ~e->acks;
				for (uint32_t j = 0; j < PAXOS_MAX_ID; j++)
					if (to & bit(j))
						send_msg(p, j, &m);
				/* Our own accept too, if its persist failed: with a peer
				 * that cannot vote, the instance needs it. */
				struct batch v = { 0 };
				if (!(e->acks & bit(p->cfg.id)) && !e->pend && batch_copy(&v, &e->prop_val) == 0) {
					on_accept(p, p->cfg.id, p->ballot, i, &v); /* may move p->ents */
					if (p->role != PAXOS_LEADER) {
						batch_free(&v);
						break;
					}
				}
				batch_free(&v);
			}
			p->next_send = p->now + p->cfg.heartbeat_ms;
		}
		leader_fill(p);
		break;
	}
	/* Every H to the leader followed, empty or not: it is also how the
	 * leader knows it still has its followers (check-quorum). */
	if (p->role != PAXOS_LEADER && p->leader_ballot != 0 && p->now >= p->next_report) {
		uint32_t leader = paxos_ballot_node(p->leader_ballot);
		struct paxos_msg m = { .type = PAXOS_WATERMARK,
				       .n_marks = MIN(p->marks[p->cfg.id].n, PAXOS_MAX_MARKS),
				       .marks = p->marks[p->cfg.id].v };
		if (leader < PAXOS_MAX_ID && leader != p->cfg.id)
			send_msg(p, leader, &m);
		p->next_report = p->now + p->cfg.heartbeat_ms;
	}
	maybe_catchup(p);
	return 0;
}

/*
 * A message from a removed node (doc/paxos.md, "Membership", rule 4): not
 * taken, but answered politely, at most once per election timeout per node:
 * PREVOTE_REPLY(grant 0, no leader, our commit), so that it catches up
 * (its CATCHUP is answered: chosen values are anyone's to read), delivers
 * the configuration that removed it, logs that and stops campaigning.
 */
static void refuse_removed(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	p->stats.removed_refused++;
	if (m->type == PAXOS_CATCHUP) {
		on_catchup(p, from, m);
		return;
	}
	if (p->now < p->tell_removed[from])
		return;
	p->tell_removed[from] = p->now + p->cfg.election_ms;
	send_prevote_reply(p, from, 0, 0, false);
	if (p->now >= p->next_warn_removed) {
		p->next_warn_removed = p->now + 60000;
		mtr_log(LOG_WARN,
			"paxos %u: %s from node %u refused: that node was removed from the cluster (told it; stop "
			"that server, its id is not used again)",
			p->cfg.id, paxos_msg_name(m->type), from);
	}
}

int paxos_recv(struct paxos *p, uint32_t from, const struct paxos_msg *m)
{
	if (from >= PAXOS_MAX_ID || from == p->cfg.id)
		return MTR_EINVAL;
	if (p->removed & bit(from)) {
		refuse_removed(p, from, m);
		return MTR_ESTALE;
	}
	p->stats.msgs_in++;
	switch (m->type) {
	case PAXOS_PREPARE:
	case PAXOS_PREVOTE:
	case PAXOS_NACK:
	case PAXOS_ACCEPT:
	case PAXOS_HEARTBEAT:
		if (!ballot_in_window(p, m->ballot)) {
			refuse_ballot(p, from, m);
			if (m->type == PAXOS_HEARTBEAT)
				learn_commit(p, from, m->commit);
			return 0;
		}
		break;
	default:
		break;
	}
	switch (m->type) {
	case PAXOS_PREPARE:
		note_ballot(p, m->ballot);
		return on_prepare(p, from, m->ballot, m->inst);
	case PAXOS_PROMISE:
		return on_promise(p, from, m);
	case PAXOS_NACK:
		p->stats.nacks_received++;
		note_ballot(p, m->ballot);
		if (p->role != PAXOS_FOLLOWER && m->ballot > p->ballot)
			step_down(p);
		return 0;
	case PAXOS_ACCEPT:
		note_ballot(p, m->ballot);
		return on_accept(p, from, m->ballot, m->inst, &m->value);
	case PAXOS_ACCEPTED:
		if (p->role == PAXOS_LEADER && m->ballot == p->ballot)
			p->cq_heard |= bit(from);
		leader_on_accepted(p, from, m->ballot, m->inst);
		return 0;
	case PAXOS_HEARTBEAT:
		note_ballot(p, m->ballot);
		return on_heartbeat(p, from, m);
	case PAXOS_CATCHUP:
		return on_catchup(p, from, m);
	case PAXOS_CHOSEN:
		return on_chosen(p, m);
	case PAXOS_SNAPSHOT:
		p->stats.snapshots_needed++;
		if (m->inst > p->delivered && p->io.snapshot_needed != NULL)
			p->io.snapshot_needed(p->io.data, from, m->inst);
		return 0;
	case PAXOS_PREVOTE:
		on_prevote(p, from, m);
		return 0;
	case PAXOS_PREVOTE_REPLY:
		on_prevote_reply(p, from, m);
		return 0;
	case PAXOS_WATERMARK: {
		p->cq_heard |= bit(from); /* sent only to the leader it follows */
		int rc = marks_merge(&p->marks[from], m->marks, MIN(m->n_marks, PAXOS_MAX_MARKS));
		leader_fill(p);
		return rc;
	}
	}
	return MTR_EMALFORMED;
}

int paxos_items_changed(struct paxos *p)
{
	return on_items_changed(p);
}

void paxos_persisted(struct paxos *p)
{
	/* answer_accept may deliver, propose and grow or compact p->ents:
	 * take one entry at a time and search again from the start */
	while (p->n_ans > 0) {
		size_t i = 0;
		while (i < p->n_ents && !p->ents[i].ans)
			i++;
		if (i == p->n_ents) {
			p->n_ans = 0; /* their entries were compacted */
			return;
		}
		struct ent *e = &p->ents[i];
		e->ans = false;
		p->n_ans--;
		answer_accept(p, e->ans_from, e->ans_ballot, p->base + 1 + i);
	}
}

int paxos_compact(struct paxos *p, uint64_t k)
{
	log_drop(p, MIN(k, p->delivered));
	return 0;
}

int paxos_watermarks(struct paxos *p, const struct batch_mark *marks, uint32_t n)
{
	int rc = marks_merge(&p->marks[p->cfg.id], marks, n);
	leader_fill(p);
	return rc;
}

void paxos_standby(struct paxos *p, bool on)
{
	if (on == p->standby)
		return;
	p->standby = on;
	if (on) {
		if (p->role != PAXOS_FOLLOWER) {
			mtr_log(LOG_WARN, "paxos %u: %s at ballot %llu.%u steps down: this node cannot persist",
				p->cfg.id, p->role == PAXOS_LEADER ? "leader" : "candidate",
				(unsigned long long)paxos_ballot_round(p->ballot), paxos_ballot_node(p->ballot));
			step_down(p);
			p->leader_ballot = 0;
		}
		p->pv_ballot = 0;
	} else {
		reset_deadline(p);
	}
}

int paxos_restore_conf(struct paxos *p, uint64_t inst, const struct batch_conf *c)
{
	if (batch_conf_validate(c) != 0)
		return MTR_EINVAL;
	int rc = conf_add(p, inst, c);
	leave_if_not_voter(p);
	return rc;
}

int paxos_change(struct paxos *p, const struct batch_conf *c)
{
	/* ids never come back: not the removed ones, nor those a pending
	 * change removes */
	uint64_t gone = p->removed;
	for (size_t k = 0; k + 1 < p->n_confs; k++)
		gone |= p->confs[k].members & ~p->confs[p->n_confs - 1].members;
	if (batch_conf_validate(c) != 0 || (batch_conf_members(c) & gone))
		return MTR_EINVAL;
	if (p->role != PAXOS_LEADER)
		return MTR_EAGAIN;
	if (p->change_pending || p->change_inst != 0 || p->confs[p->n_confs - 1].eff > p->delivered + 1)
		return MTR_EBUSY;
	p->change = *c;
	p->change_base = p->confs[p->n_confs - 1].eff;
	p->change_pending = true;
	leader_fill(p);
	return 0;
}

void paxos_conf_at(const struct paxos *p, uint64_t inst, struct batch_conf *out)
{
	*out = conf_at(p, inst)->c;
}

uint64_t paxos_audience(const struct paxos *p)
{
	return audience(p);
}

void paxos_status(const struct paxos *p, struct paxos_status *st)
{
	const struct conf_ent *c = conf_at(p, p->delivered + 1);
	st->voters = c->voters;
	st->members = c->members;
	st->removed = p->removed;
	st->self_removed = (p->removed & bit(p->cfg.id)) != 0;
	st->conf_next = p->confs[p->n_confs - 1].eff > p->delivered + 1 ? p->confs[p->n_confs - 1].eff : 0;
	st->conf_since = c->eff;
	st->role = p->role;
	st->ballot = p->promised;
	st->leader = p->leader_ballot ? paxos_ballot_node(p->leader_ballot) : PAXOS_BROADCAST;
	st->chosen = p->delivered;
	st->applied = p->delivered;
	st->compacted = p->base;
}

void paxos_stats(const struct paxos *p, struct paxos_stats *st)
{
	*st = p->stats;
}
