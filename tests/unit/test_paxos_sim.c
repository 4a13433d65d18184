/*
 * test_paxos_sim.c - the Paxos core in a seeded, in-memory simulator.
 *
 * N nodes (3 and 5) run struct paxos over a network that drops, duplicates,
 * delays and reorders messages (every message goes through the codec),
 * partitions the nodes and crashes/restarts them (a crash loses volatile
 * state; the "disk" - promised ballot, accepted values, applied instance,
 * ingest log - survives; 1 % of the writes fail).  Streams of items arrive at each node at random
 * times (some late, as after a gap repair); a node down when an item arrives
 * misses it until it fetches it (a delayed success).
 * Time advances in 1 ms steps.  Each seed has a chaotic phase, then a calm
 * phase (everything restarted, partition healed, no loss).
 *
 * The checker asserts at every step:
 *  - agreement: no two nodes deliver different batches for one instance;
 *  - each node incarnation delivers instances in order without gaps;
 *  - invariant 3: per stream, the chosen ranges are contiguous;
 *  - invariant 4: an acceptor persists an accept only for items it holds,
 *    and every chosen batch is held by a majority;
 *  - promises never go down;
 *  - liveness: in the calm phase all nodes reach the same instance and
 *    order every item a majority holds within CALM_LIMIT ms.
 *
 * Then a stable-leader phase (doc/paxos.md, "A stable leader"; enum stab):
 * with a stable leader and items flowing under 0..4 % loss, one scenario -
 * quiet, a minority of followers partitioned / paused / down / full for
 * 5..30 election timeouts, or the leader paused / partitioned / deaf / full
 * (paxos_standby) for 15..30 -
 * and the checks: while the leader is healthy and connected to a majority
 * no node goes above its ballot (a persisted promise, a HEARTBEAT) and it
 * keeps leading; a lost leader is replaced within NEW_LEADER_LIMIT, and the
 * same holds for the new one after the old one is back; all catch up.
 *
 * Membership (doc/paxos.md, "Membership"): during the chaos the current
 * leader is asked now and then for a change - add a new server (a fresh id,
 * an empty disk) as a learner or a voter, make a learner a voter, remove a
 * member, or replace a voter by a new server in one change - so changes
 * meet crashes, partitions, lost and failed writes.  Checked in addition:
 * every chosen instance was accepted at one ballot by a majority of the
 * voters of the configuration the global log puts in force at it (and is
 * held by such a majority), no two values are accepted at one (instance,
 * ballot), a node that knows it was removed campaigns no more, and the
 * liveness checks count the members of the latest configuration only.
 *
 * Ballot schedules (doc/paxos.md, "Bounded ballots"): most seeds start from
 * huge stored promises (several windows apart, so nodes must climb to each
 * other), from rounds near PAXOS_ROUND_MAX, or with a minority of nodes
 * holding the promise 0xffffffffffffff01 (what a forged PREPARE left on
 * disk before the window existed); and (but near the top, where one PREPARE
 * inside the last window exhausts the rounds) an adversary holding the key injects
 * PREPARE / NACK / HEARTBEAT / ACCEPT with huge ballots (that one among
 * them), PREVOTE and forged PREVOTE_REPLY grants during the chaos and once
 * more when the calm starts.
 *
 * Environment: MTR_PAXOS_SEEDS (total seeds, default 10000; 1000 when
 * MTR_SANITIZE=1 or built with ASan), MTR_PAXOS_SEED0 (first seed, default
 * 1).  A failing seed prints the seed and the last events; replay it with
 * MTR_PAXOS_SEED0=<seed> MTR_PAXOS_SEEDS=2 (seeds alternate 3 and 5 nodes:
 * the group for N nodes runs its seeds one after the other).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "batch.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "paxos_codec.h"
#include "util.h"

/* Node ids: 3 or 5 at the start, and the servers added since (ids are
 * never reused, doc/paxos.md "Membership"). */
#define MAXN 16
/* Most members of one configuration in the simulator. */
#define MAX_MEMBERS 7
#define NSTREAMS 3
#define MAXSEQ 400
#define CHAOS_MS 1500
#define CALM_LIMIT 4000
#define TRACE 48
#define HB_MS 10
#define EL_MS 40

/* ---- fixture: the simulated world ---- */

enum ev_kind { EV_MSG, EV_ITEM, EV_FETCH, EV_SNAP, EV_RESTART };

/* Stable-leader scenarios (doc/paxos.md, "A stable leader"), run once the
 * calm phase converged: a quiet period, a minority of followers
 * partitioned, paused (no ticks, messages held as in a socket buffer) or
 * down, each for 5..30 election timeouts; the leader paused, partitioned
 * alone, or deaf (it sends, hears nothing) for 15..30 timeouts.  "Full":
 * the node's disk is full (doc/paxos.md "Standby": paxos_standby, every
 * persist fails, nothing is held); it must then send no PROMISE, ACCEPTED
 * or granted PREVOTE_REPLY, and a full leader is replaced. */
enum stab { ST_QUIET, ST_FOLLOWER_PART, ST_FOLLOWER_PAUSE, ST_FOLLOWER_DOWN, ST_FOLLOWER_FULL, ST_LEADER_PAUSE,
	    ST_LEADER_PART, ST_LEADER_DEAF, ST_LEADER_FULL, ST_COUNT };
static const char *const stab_name[ST_COUNT] = { "quiet", "followers partitioned", "followers paused",
						 "followers down", "followers full", "leader paused",
						 "leader partitioned", "leader deaf", "leader full" };
/* A new leader must be followed by every other node within this many
 * election timeouts of the leader's loss (liveness), and the stable-leader
 * phase waits this long at most for a stable leader after the calm. */
#define NEW_LEADER_LIMIT (15 * EL_MS)
#define SETTLE_LIMIT 4000
#define OBSERVE_MS (10 * EL_MS)

/* Membership changes during the chaos (doc/paxos.md, "Membership"): add
 * a new server as a learner or at once as a voter, make a learner a voter,
 * remove a member, replace a voter by a new one in one change (whose
 * majorities need not intersect the old ones). */
enum mop { MO_ADD_LEARNER, MO_ADD_VOTER, MO_PROMOTE, MO_REMOVE, MO_REPLACE, MO_COUNT };
static const char *const mop_name[MO_COUNT] = { "add learner", "add voter", "promote", "remove", "replace" };

/* Ballot schedules. */
enum scen { SC_PLAIN, SC_HUGE, SC_TOP, SC_POISONED, SC_COUNT };
static const char *const scen_name[SC_COUNT] = { "plain", "huge promises", "near the top", "poisoned minority" };
/* The forged ballot of issue 12: round 2^56 - 1, node 1. */
#define FORGED_BALLOT 0xffffffffffffff01ull

struct event {
	uint64_t t, seq;
	int kind;
	int node, from;
	uint32_t inc; /* incarnation of `node` when scheduled (volatile events) */
	uint64_t stream, last;
	uint8_t *bytes;
	size_t len;
};

struct acc {
	uint64_t ballot;
	struct batch v;
};

/* Checker: who persisted an accept of (inst, ballot), and of which value. */
struct accrec {
	uint64_t ballot, mask;
	struct batch v;
};
struct instrec {
	uint32_t n, cap;
	struct accrec *r;
};

/* Checker: a configuration of the global log, in force from eff on. */
struct gconf {
	uint64_t eff;
	uint32_t voters, members;
};

struct node {
	struct paxos *p; /* NULL while crashed */
	uint32_t inc;
	int group;
	/* disk */
	uint64_t promised;
	struct acc *acc;
	size_t n_acc;
	uint64_t applied;
	uint8_t held[NSTREAMS + 1][MAXSEQ + 2];
	uint64_t wm[NSTREAMS + 1];
	/* checker */
	uint64_t next_expected;
	struct batch_order order; /* per stream, the last seq this incarnation applied (from its disk) */
	uint64_t snap_pending_until;
	uint64_t last_compact;
	/* stable-leader phase: paused (no ticks; what reaches it waits) */
	uint64_t paused_until;
	bool full; /* its disk is full: paxos_standby, persist fails, holds nothing */
};

struct trace_rec {
	uint64_t t;
	char what;
	int a, b;
	uint8_t type;
	uint64_t ballot, inst;
};

struct sim {
	uint64_t seed, rng, now, evseq;
	int n;  /* node ids in use (0 .. n-1) */
	int n0; /* the initial ones */
	struct node nodes[MAXN];
	struct event *heap;
	size_t n_heap, cap_heap;
	/* network schedule */
	unsigned drop_pct, dup_pct, max_delay;
	bool calm, partitioned;
	uint64_t heal_at;
	/* streams */
	uint64_t gen[NSTREAMS + 1];
	/* checker */
	struct batch *g;
	size_t n_g, cap_g;
	struct batch_order gorder;
	char fail[256];
	struct trace_rec trace[TRACE];
	unsigned n_trace;
	/* ballot schedule and adversary */
	int scen;
	bool adversary;
	uint32_t poisoned; /* nodes whose disk holds FORGED_BALLOT from the start */
	/* stable-leader phase */
	uint32_t cut_in, cut_out; /* nodes that hear nothing / whose sends are lost */
	unsigned calm_drop;       /* loss in that phase (0..4 %) */
	bool watch;               /* the ballot must stay watch_ballot, led by watch_leader */
	unsigned watch_confs;     /* n_gconf when the scenario started */
	unsigned change_every;    /* a membership change asked every ~this many ms of chaos */
	uint64_t watch_ballot;
	int watch_leader;
	int stab;
	/* membership: the configurations of the global log, accept records */
	struct gconf gconf[128];
	unsigned n_gconf;
	struct instrec *ir;
	size_t n_ir;
	uint64_t mops[MO_COUNT], conf_prepares, removed_refused;
	uint64_t pipelined, marks_behind, marks_bridged, inflight_max;
	/* figures */
	uint64_t last_hb_ballot;
	uint64_t refused, injected;
	uint64_t prevotes, prevotes_refused, quorum_lost, stalls;
	uint64_t persist_failures;
	uint64_t msgs, crashes, partitions, fetches, snapshots, leaders;
};

static uint64_t rnd(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static unsigned rndn(struct sim *s, unsigned n) { return (unsigned)(rnd(s) % n); }
static unsigned pop(uint32_t v) { return (unsigned)__builtin_popcount(v); }

/* ---- helpers: the configurations of the global log ---- */

/* The configuration in force at instance inst, by the global log. */
static const struct gconf *gconf_at(const struct sim *s, uint64_t inst)
{
	unsigned k = s->n_gconf;
	while (k > 1 && s->gconf[k - 1].eff > inst)
		k--;
	return &s->gconf[k - 1];
}

/* The latest configuration of the global log (in force or pending). */
static const struct gconf *gconf_last(const struct sim *s) { return &s->gconf[s->n_gconf - 1]; }

static bool sim_quorum(uint32_t set, uint32_t voters) { return pop(set & voters) >= pop(voters) / 2 + 1; }

__attribute__((format(printf, 2, 3))) static void violation(struct sim *s, const char *fmt, ...)
{
	if (s->fail[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->fail, sizeof s->fail, fmt, ap);
	va_end(ap);
}

static void trace(struct sim *s, char what, int a, int b, uint8_t type, uint64_t ballot, uint64_t inst)
{
	s->trace[s->n_trace++ % TRACE] = (struct trace_rec){ s->now, what, a, b, type, ballot, inst };
}

/* ---- helpers: event heap ---- */

static bool ev_less(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void ev_push(struct sim *s, struct event e)
{
	if (s->n_heap == s->cap_heap) {
		s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 256;
		s->heap = realloc(s->heap, s->cap_heap * sizeof *s->heap);
		assert_non_null(s->heap);
	}
	e.seq = s->evseq++;
	size_t i = s->n_heap++;
	while (i > 0 && ev_less(&e, &s->heap[(i - 1) / 2])) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = e;
}

static struct event ev_pop(struct sim *s)
{
	struct event top = s->heap[0], last = s->heap[--s->n_heap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n_heap)
			break;
		if (c + 1 < s->n_heap && ev_less(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_less(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->n_heap > 0)
		s->heap[i] = last;
	return top;
}

/* ---- helpers: items ---- */

static void node_update_wm(struct node *nd, uint64_t st)
{
	while (nd->wm[st] < MAXSEQ && nd->held[st][nd->wm[st] + 1])
		nd->wm[st]++;
}

static bool node_holds(const struct node *nd, uint64_t stream, uint64_t last)
{
	return stream >= 1 && stream <= NSTREAMS && nd->wm[stream] >= last;
}

static void node_report(struct node *nd)
{
	struct batch_mark m[NSTREAMS];
	uint32_t k = 0;
	for (uint64_t st = 1; st <= NSTREAMS; st++)
		if (nd->wm[st] > 0)
			m[k++] = (struct batch_mark){ st, nd->wm[st] };
	if (nd->p != NULL && k > 0)
		paxos_watermarks(nd->p, m, k);
}

/* ---- the host side of each node (struct paxos_io) ---- */

struct host {
	struct sim *s;
	int id;
};
static struct host hosts[MAXN];

/* Does a message from `from` reach `to`? */
static bool connected(struct sim *s, int from, int to)
{
	if ((s->cut_out & (1u << from)) || (s->cut_in & (1u << to)))
		return false;
	return !s->partitioned || s->nodes[from].group == s->nodes[to].group;
}

static void net_send1(struct sim *s, int from, int to, const uint8_t *buf, size_t len)
{
	if (!connected(s, from, to) || rndn(s, 100) < (s->calm ? s->calm_drop : s->drop_pct))
		return;
	int copies = (!s->calm && rndn(s, 100) < s->dup_pct) ? 2 : 1;
	for (int c = 0; c < copies; c++) {
		struct event e = { .t = s->now + 1 + rndn(s, s->calm ? 5 : s->max_delay), .kind = EV_MSG,
				   .node = to, .from = from, .len = len };
		e.bytes = malloc(len);
		assert_non_null(e.bytes);
		memcpy(e.bytes, buf, len);
		ev_push(s, e);
	}
}

static void io_send(void *data, uint32_t to, const struct paxos_msg *m)
{
	struct host *h = data;
	struct sim *s = h->s;
	uint8_t buf[65536];
	int len = paxos_msg_encode(m, buf, sizeof buf);
	if (len < 0) {
		violation(s, "node %d: encode %s failed: %s", h->id, paxos_msg_name(m->type), mtr_errname(len));
		return;
	}
	s->msgs++;
	if (s->nodes[h->id].full &&
	    (m->type == PAXOS_PROMISE || m->type == PAXOS_ACCEPTED || (m->type == PAXOS_PREVOTE_REPLY && m->grant)))
		violation(s, "standby: node %d, whose disk is full, sends %s%s", h->id, paxos_msg_name(m->type),
			  m->type == PAXOS_PREVOTE_REPLY ? " granted" : "");
	bool member = (gconf_last(s)->members >> h->id) & 1;
	if (s->watch && member && m->type == PAXOS_HEARTBEAT && m->ballot > s->watch_ballot)
		violation(s, "stable leader: node %d leads at ballot %llu.%u, above the leader's %llu.%u (%s)", h->id,
			  (unsigned long long)paxos_ballot_round(m->ballot), paxos_ballot_node(m->ballot),
			  (unsigned long long)paxos_ballot_round(s->watch_ballot), paxos_ballot_node(s->watch_ballot),
			  stab_name[s->stab]);
	if (m->type == PAXOS_ACCEPT && m->inst > s->nodes[h->id].applied) {
		/* how far ahead of what it delivered a leader proposes: at most
		 * PAXOS_CONF_DELAY (rule 2; the pipeline and the window stay
		 * within it) */
		uint64_t ahead = m->inst - s->nodes[h->id].applied;
		if (ahead > s->inflight_max)
			s->inflight_max = ahead;
		if (ahead > PAXOS_CONF_DELAY)
			violation(s, "node %d proposes instance %llu, %llu after the last it delivered", h->id,
				  (unsigned long long)m->inst, (unsigned long long)ahead);
	}
	if (m->type == PAXOS_HEARTBEAT && m->ballot > s->last_hb_ballot) {
		s->last_hb_ballot = m->ballot;
		s->leaders++;
	}
	trace(s, 's', h->id, to == PAXOS_BROADCAST ? -1 : (int)to, m->type, m->ballot, m->inst);
	struct paxos_status st;
	paxos_status(s->nodes[h->id].p, &st);
	if (st.self_removed && (m->type == PAXOS_PREVOTE || m->type == PAXOS_PREPARE || m->type == PAXOS_HEARTBEAT))
		violation(s, "membership: node %d knows it was removed and sends %s", h->id, paxos_msg_name(m->type));
	if (to == PAXOS_BROADCAST) {
		uint64_t aud = paxos_audience(s->nodes[h->id].p);
		if (aud & (UINT64_C(1) << h->id))
			violation(s, "node %d: its audience includes itself", h->id);
		for (int j = 0; j < s->n; j++)
			if (aud & (UINT64_C(1) << j))
				net_send1(s, h->id, j, buf, (size_t)len);
	} else if ((int)to < s->n && (int)to != h->id) {
		net_send1(s, h->id, (int)to, buf, (size_t)len);
	} else if (to < MAXN && (int)to != h->id) {
		/* a member whose server was never started (test_change_api) */
	} else {
		violation(s, "node %d: send to bad node %u", h->id, to);
	}
}

/* The checker's record of an accept persisted by node id; one value per
 * (instance, ballot). */
static void record_accept(struct sim *s, int id, uint64_t inst, uint64_t ballot, const struct batch *v)
{
	if (inst >= s->n_ir) {
		size_t n = inst + 256;
		s->ir = realloc(s->ir, n * sizeof *s->ir);
		assert_non_null(s->ir);
		memset(s->ir + s->n_ir, 0, (n - s->n_ir) * sizeof *s->ir);
		s->n_ir = n;
	}
	struct instrec *ir = &s->ir[inst];
	for (uint32_t k = 0; k < ir->n; k++) {
		if (ir->r[k].ballot != ballot)
			continue;
		if (!batch_equal(&ir->r[k].v, v))
			violation(s, "instance %llu: two values accepted at ballot %llu.%u", (unsigned long long)inst,
				  (unsigned long long)paxos_ballot_round(ballot), paxos_ballot_node(ballot));
		ir->r[k].mask |= UINT64_C(1) << id;
		return;
	}
	if (ir->n == ir->cap) {
		ir->cap = ir->cap ? 2 * ir->cap : 4;
		ir->r = realloc(ir->r, ir->cap * sizeof *ir->r);
		assert_non_null(ir->r);
	}
	ir->r[ir->n] = (struct accrec){ .ballot = ballot, .mask = UINT64_C(1) << id };
	assert_int_equal(batch_copy(&ir->r[ir->n].v, v), 0);
	ir->n++;
}

static int io_persist(void *data, const struct paxos_persist *c)
{
	struct host *h = data;
	struct sim *s = h->s;
	struct node *nd = &s->nodes[h->id];
	if (nd->full) /* what a host on standby answers at once */
		return MTR_ENOSPACE;
	/* a failed write (disk full, I/O error): the core must not answer */
	if (!s->calm && rndn(s, 100) == 0) {
		s->persist_failures++;
		return MTR_EIO;
	}
	if (c->ballot < nd->promised)
		violation(s, "node %d: promise goes down %llx -> %llx", h->id, (unsigned long long)nd->promised,
			  (unsigned long long)c->ballot);
	if (s->watch && ((gconf_last(s)->members >> h->id) & 1) && c->ballot > s->watch_ballot)
		violation(s, "stable leader: node %d raises its promise to %llu.%u above the leader's %llu.%u (%s)",
			  h->id, (unsigned long long)paxos_ballot_round(c->ballot), paxos_ballot_node(c->ballot),
			  (unsigned long long)paxos_ballot_round(s->watch_ballot), paxos_ballot_node(s->watch_ballot),
			  stab_name[s->stab]);
	nd->promised = c->ballot;
	if (c->kind == PAXOS_PERSIST_PROMISE)
		return 0;
	trace(s, 'A', h->id, -1, 0, c->ballot, c->inst);
	for (uint32_t i = 0; i < c->value->n; i++)
		if (!node_holds(nd, c->value->r[i].stream, c->value->r[i].last))
			violation(s, "invariant 4: node %d accepts instance %llu without the items of stream %llu",
				  h->id, (unsigned long long)c->inst, (unsigned long long)c->value->r[i].stream);
	if (c->inst >= nd->n_acc) {
		size_t n = c->inst + 64;
		nd->acc = realloc(nd->acc, n * sizeof *nd->acc);
		assert_non_null(nd->acc);
		memset(nd->acc + nd->n_acc, 0, (n - nd->n_acc) * sizeof *nd->acc);
		nd->n_acc = n;
	}
	nd->acc[c->inst].ballot = c->ballot;
	assert_int_equal(batch_copy(&nd->acc[c->inst].v, c->value), 0);
	record_accept(s, h->id, c->inst, c->ballot, c->value);
	return 0;
}

static bool io_holds(void *data, uint64_t stream, uint64_t last)
{
	struct host *h = data;
	return !h->s->nodes[h->id].full && node_holds(&h->s->nodes[h->id], stream, last);
}

static void io_fetch(void *data, uint64_t stream, uint64_t first, uint64_t last)
{
	struct host *h = data;
	struct sim *s = h->s;
	(void)first;
	s->fetches++;
	ev_push(s, (struct event){ .t = s->now + 1 + rndn(s, 20), .kind = EV_FETCH, .node = h->id,
				   .inc = s->nodes[h->id].inc, .stream = stream, .last = last });
}

/* The checker's own reading of a chosen value against a cursor (the
 * cumulative rule, doc/paxos.md "The leader's batching rule"): per stream,
 * cursor + 1 .. mark when the mark is above the cursor; the configuration
 * kept. */
static void sim_effective(const struct batch_order *o, const struct batch *raw, struct batch *out)
{
	*out = (struct batch){ 0 };
	assert_int_equal(batch_set_conf(out, raw->conf), 0);
	for (uint32_t i = 0; i < raw->n; i++) {
		uint64_t last = batch_order_last(o, raw->r[i].stream);
		if (raw->r[i].last > last)
			assert_int_equal(batch_push(out, raw->r[i].stream, last + 1, raw->r[i].last), 0);
	}
}

/* The checker's heart: every delivery goes through here. */
static void check_chosen(struct sim *s, int id, uint64_t inst, const struct batch *v)
{
	struct node *nd = &s->nodes[id];
	trace(s, 'C', id, -1, 0, 0, inst);
	if (inst != nd->next_expected) {
		violation(s, "node %d delivered instance %llu, expected %llu", id, (unsigned long long)inst,
			  (unsigned long long)nd->next_expected);
		return;
	}
	nd->next_expected++;
	nd->applied = inst;
	if (batch_validate(v) != 0)
		violation(s, "instance %llu: invalid batch", (unsigned long long)inst);
	if (inst <= s->n_g && !batch_equal(&s->g[inst - 1], v))
		violation(s, "agreement: node %d delivered a different batch for instance %llu", id,
			  (unsigned long long)inst);
	/* Invariant 3 per node: what it applies per stream stays a prefix
	 * (every range starts right after its last applied seq: no gap,
	 * nothing twice), across its restarts and snapshots. */
	uint32_t bad = 0;
	while (bad < v->n && v->r[bad].first == batch_order_last(&nd->order, v->r[bad].stream) + 1)
		bad++;
	if (bad < v->n)
		violation(s, "invariant 3: node %d applies instance %llu out of its prefix (stream %llu from %llu "
			     "after %llu)",
			  id, (unsigned long long)inst, (unsigned long long)v->r[bad].stream,
			  (unsigned long long)v->r[bad].first,
			  (unsigned long long)batch_order_last(&nd->order, v->r[bad].stream));
	else if (batch_order_apply(&nd->order, v) != 0)
		violation(s, "simulator: out of memory");
	if (inst <= s->n_g)
		return;
	if (inst != s->n_g + 1) {
		violation(s, "instance %llu delivered before %zu", (unsigned long long)inst, s->n_g + 1);
		return;
	}
	/* the quorum: some value accepted at one ballot by a majority reads,
	 * against the cursor before inst, as the delivered one */
	const struct gconf *gc = gconf_at(s, inst);
	bool quorum = false;
	for (uint32_t k = 0; inst < s->n_ir && k < s->ir[inst].n && !quorum; k++) {
		if (!sim_quorum((uint32_t)s->ir[inst].r[k].mask, gc->voters))
			continue;
		struct batch eff;
		sim_effective(&s->gorder, &s->ir[inst].r[k].v, &eff);
		quorum = batch_equal(&eff, v);
		batch_free(&eff);
	}
	if (!quorum)
		violation(s, "quorum: instance %llu chosen, but no majority of the voters of its configuration "
			     "(0x%x) accepted it at one ballot",
			  (unsigned long long)inst, gc->voters);
	if (batch_order_apply(&s->gorder, v) != 0)
		violation(s, "invariant 3: instance %llu is not contiguous", (unsigned long long)inst);
	/* invariant 4 under the configuration in force at inst by the global
	 * log */
	uint32_t holders = 0;
	for (int j = 0; j < s->n; j++) {
		bool all = true;
		for (uint32_t i = 0; i < v->n; i++)
			all = all && node_holds(&s->nodes[j], v->r[i].stream, v->r[i].last);
		holders |= (uint32_t)all << j;
	}
	if (!sim_quorum(holders, gc->voters))
		violation(s, "invariant 4: instance %llu held by %u of its %u voters only", (unsigned long long)inst,
			  pop(holders & gc->voters), pop(gc->voters));
	if (v->conf != NULL) {
		if (s->n_gconf == sizeof s->gconf / sizeof s->gconf[0]) {
			violation(s, "simulator: too many configurations");
		} else {
			s->gconf[s->n_gconf++] = (struct gconf){ .eff = inst + PAXOS_CONF_DELAY,
								 .voters = (uint32_t)batch_conf_voters(v->conf),
								 .members = (uint32_t)batch_conf_members(v->conf) };
			trace(s, 'K', id, -1, 0, batch_conf_voters(v->conf), inst);
		}
	}
	if (s->n_g == s->cap_g) {
		s->cap_g = s->cap_g ? 2 * s->cap_g : 64;
		s->g = realloc(s->g, s->cap_g * sizeof *s->g);
		assert_non_null(s->g);
	}
	s->g[s->n_g] = (struct batch){ 0 };
	assert_int_equal(batch_copy(&s->g[s->n_g], v), 0);
	s->n_g++;
}

static void io_chosen(void *data, uint64_t inst, const struct batch *v)
{
	struct host *h = data;
	check_chosen(h->s, h->id, inst, v);
}

static void io_snapshot(void *data, uint32_t from, uint64_t inst)
{
	struct host *h = data;
	struct sim *s = h->s;
	struct node *nd = &s->nodes[h->id];
	(void)inst;
	if (s->now < nd->snap_pending_until)
		return;
	nd->snap_pending_until = s->now + 50;
	ev_push(s, (struct event){ .t = s->now + 5 + rndn(s, 20), .kind = EV_SNAP, .node = h->id, .from = (int)from,
				   .inc = nd->inc });
}

/* The cursor after instance k of the global log. */
static void cursor_at(struct sim *s, uint64_t k, struct batch_order *o)
{
	for (uint64_t i = 1; i <= k && i <= s->n_g; i++)
		for (uint32_t r = 0; r < s->g[i - 1].n; r++)
			batch_order_set(o, s->g[i - 1].r[r].stream, s->g[i - 1].r[r].last);
}

/* What the host keeps with its applied instance (and a snapshot carries):
 * the configurations chosen up to it. */
static void restore_confs(struct sim *s, struct node *nd)
{
	for (uint64_t i = 1; i <= nd->applied && i <= s->n_g; i++)
		if (s->g[i - 1].conf != NULL)
			assert_int_equal(paxos_restore_conf(nd->p, i, s->g[i - 1].conf), 0);
}

static void node_start(struct sim *s, int id)
{
	struct node *nd = &s->nodes[id];
	hosts[id] = (struct host){ s, id };
	struct paxos_io io = { .data = &hosts[id], .send = io_send, .persist = io_persist, .holds = io_holds,
			       .fetch = io_fetch, .chosen = io_chosen, .snapshot_needed = io_snapshot };
	/* pipeline depth 1 .. PAXOS_CONF_DELAY per seed (1 in an eighth) */
	struct paxos_config cfg = { .id = (uint32_t)id, .n = (uint32_t)s->n0, .window = 1 + (uint32_t)(s->seed % 8),
				    .pipeline = 1 + (uint32_t)(s->seed / 8 % PAXOS_CONF_DELAY),
				    .heartbeat_ms = HB_MS, .election_ms = EL_MS, .seed = s->seed * 31 + nd->inc };
	nd->inc++;
	assert_int_equal(paxos_create(&nd->p, &cfg, &io), 0);
	/* what this incarnation has applied: the cursor of its disk */
	batch_order_free(&nd->order);
	cursor_at(s, nd->applied, &nd->order);
	/* Restart from the disk. */
	if (nd->applied > 0) {
		struct batch_order o = { 0 };
		cursor_at(s, nd->applied, &o);
		assert_int_equal(paxos_install(nd->p, nd->applied, &o), 0);
		batch_order_free(&o);
		restore_confs(s, nd);
	}
	paxos_restore_promise(nd->p, nd->promised);
	for (size_t i = nd->applied + 1; i < nd->n_acc; i++)
		if (nd->acc[i].ballot)
			assert_int_equal(paxos_restore_accepted(nd->p, i, nd->acc[i].ballot, &nd->acc[i].v), 0);
	nd->next_expected = nd->applied + 1;
	paxos_tick(nd->p, s->now);
	node_report(nd);
}

/* Add a core's ballot-window refusals to the figures, then destroy it. */
static void node_destroy(struct sim *s, struct node *nd)
{
	if (nd->p != NULL) {
		struct paxos_stats st;
		paxos_stats(nd->p, &st);
		s->refused += st.ballots_refused;
		s->prevotes += st.prevotes;
		s->prevotes_refused += st.prevotes_refused;
		s->quorum_lost += st.quorum_lost;
		s->stalls += st.stalls;
		s->conf_prepares += st.conf_prepares;
		s->removed_refused += st.removed_refused;
		s->pipelined += st.pipelined;
		s->marks_behind += st.marks_behind;
		s->marks_bridged += st.marks_bridged;
	}
	paxos_destroy(nd->p);
}

static void node_crash(struct sim *s, int id)
{
	struct node *nd = &s->nodes[id];
	trace(s, 'X', id, -1, 0, 0, 0);
	s->crashes++;
	node_destroy(s, nd);
	nd->p = NULL;
	nd->inc++;
	ev_push(s, (struct event){ .t = s->now + 20 + rndn(s, 200), .kind = EV_RESTART, .node = id });
}

static void handle(struct sim *s, struct event *e)
{
	struct node *nd = &s->nodes[e->node];
	if (nd->p != NULL && s->now < nd->paused_until && e->kind != EV_RESTART) {
		/* paused: what reaches it waits, in order, until it resumes */
		struct event d = *e;
		d.t = nd->paused_until;
		ev_push(s, d);
		e->bytes = NULL;
		return;
	}
	switch (e->kind) {
	case EV_MSG: {
		if (nd->p == NULL || !connected(s, e->from, e->node))
			break;
		struct paxos_msg m;
		int rc = paxos_msg_decode(&m, e->bytes, e->len);
		if (rc != 0) {
			violation(s, "decode failed: %s", mtr_errname(rc));
			break;
		}
		trace(s, 'r', e->from, e->node, m.type, m.ballot, m.inst);
		paxos_recv(nd->p, (uint32_t)e->from, &m);
		paxos_msg_free(&m);
		break;
	}
	case EV_ITEM:
		if (nd->p == NULL)
			break; /* missed: will be fetched when needed */
		nd->held[e->stream][e->last] = 1;
		node_update_wm(nd, e->stream);
		node_report(nd);
		paxos_items_changed(nd->p);
		break;
	case EV_FETCH:
		if (nd->p == NULL || e->inc != nd->inc)
			break;
		if (e->last > s->gen[e->stream]) {
			violation(s, "fetch of stream %llu up to %llu: never generated", (unsigned long long)e->stream,
				  (unsigned long long)e->last);
			break;
		}
		for (uint64_t q = 1; q <= e->last; q++)
			nd->held[e->stream][q] = 1;
		node_update_wm(nd, e->stream);
		node_report(nd);
		paxos_items_changed(nd->p);
		break;
	case EV_SNAP: {
		struct node *src = &s->nodes[e->from];
		if (nd->p == NULL || e->inc != nd->inc || src->applied <= nd->applied)
			break;
		trace(s, 'S', e->node, e->from, 0, 0, src->applied);
		s->snapshots++;
		nd->applied = src->applied;
		nd->next_expected = nd->applied + 1;
		batch_order_free(&nd->order);
		cursor_at(s, nd->applied, &nd->order);
		assert_int_equal(paxos_install(nd->p, nd->applied, &nd->order), 0);
		restore_confs(s, nd);
		break;
	}
	case EV_RESTART:
		if (nd->p == NULL) {
			trace(s, 'R', e->node, -1, 0, 0, nd->applied);
			node_start(s, e->node);
		}
		break;
	}
}

/* Highest seq of stream held (contiguously) by a majority.  A node holding
 * a poisoned promise cannot accept, so what it holds does not count. */
static uint64_t majority_wm(struct sim *s, uint64_t st)
{
	uint64_t w[MAXN];
	uint32_t voters = gconf_last(s)->voters;
	int n = 0;
	for (int j = 0; j < s->n; j++)
		if (voters & (1u << j))
			w[n++] = (s->poisoned & (1u << j)) ? 0 : s->nodes[j].wm[st];
	for (int a = 0; a < n; a++)
		for (int b = a + 1; b < n; b++)
			if (w[b] > w[a]) {
				uint64_t t = w[a];
				w[a] = w[b];
				w[b] = t;
			}
	return w[n / 2];
}

/* Every member of the latest configuration (in force: no change pending)
 * has delivered the whole log, and every item a majority of its voters
 * holds is ordered.  Removed nodes and servers never added do not count. */
static bool converged(struct sim *s)
{
	const struct gconf *c = gconf_last(s);
	if (s->n_g + 1 < c->eff)
		return false;
	for (int j = 0; j < s->n; j++)
		if ((c->members & (1u << j)) && (s->nodes[j].p == NULL || s->nodes[j].applied != s->n_g))
			return false;
	for (uint64_t st = 1; st <= NSTREAMS; st++)
		if (batch_order_last(&s->gorder, st) < majority_wm(s, st))
			return false;
	return true;
}

static void adversary_step(struct sim *s);

/* New items at random times (pct % of the milliseconds); each node misses
 * some. */
static void step_items(struct sim *s, unsigned pct)
{
	if (rndn(s, 100) < pct) {
		uint64_t st = 1 + rndn(s, NSTREAMS);
		if (s->gen[st] < MAXSEQ) {
			uint64_t q = ++s->gen[st];
			for (int j = 0; j < s->n; j++)
				/* most arrive soon, the rest after a gap repair;
				 * a node down at that time misses the item */
				ev_push(s, (struct event){ .t = s->now + (rndn(s, 100) < 85 ? rndn(s, 20) : 50 + rndn(s, 150)),
							   .kind = EV_ITEM, .node = j, .stream = st, .last = q });
		}
	}
}

/* A new server (id s->n): an empty disk, cluster.servers = the initial
 * configuration; it learns the rest from the log or a snapshot. */
static int node_add(struct sim *s, uint64_t promise)
{
	int id = s->n++;
	memset(&s->nodes[id], 0, sizeof s->nodes[id]);
	/* it starts with the promise of the server it was copied from, so
	 * that its ballot window covers the cluster's (doc/paxos.md,
	 * "Membership") */
	s->nodes[id].promised = promise;
	node_start(s, id);
	return id;
}

/* Ask the leader (if any) for a membership change (enum mop).  Keeps at
 * least two voters and a majority of them able to accept (not poisoned). */
static void member_step(struct sim *s)
{
	int l = -1;
	uint64_t best = 0;
	for (int j = 0; j < s->n; j++) {
		struct paxos_status st;
		if (s->nodes[j].p == NULL || s->now < s->nodes[j].paused_until)
			continue;
		paxos_status(s->nodes[j].p, &st);
		if (st.role == PAXOS_LEADER && st.ballot >= best) {
			best = st.ballot;
			l = j;
		}
	}
	if (l < 0)
		return;
	struct batch_conf c;
	paxos_conf_at(s->nodes[l].p, UINT64_MAX, &c);
	int op = (int)rndn(s, MO_COUNT), add = -1;
	uint32_t pick = 0;
	for (uint32_t i = 0; i < c.n; i++)
		if (op == MO_PROMOTE ? !c.m[i].voter : op == MO_REPLACE ? c.m[i].voter : op == MO_REMOVE)
			pick |= 1u << i;
	if (op == MO_ADD_LEARNER || op == MO_ADD_VOTER || op == MO_REPLACE) {
		if (s->n >= MAXN || c.n >= MAX_MEMBERS)
			return;
		add = s->n;
	}
	if (op != MO_ADD_LEARNER && op != MO_ADD_VOTER) {
		if (pick == 0)
			return;
		uint32_t k;
		do
			k = rndn(s, c.n);
		while (!(pick & (1u << k)));
		if (op == MO_PROMOTE) {
			c.m[k].voter = 1;
		} else {
			memmove(&c.m[k], &c.m[k + 1], (c.n - k - 1) * sizeof c.m[0]);
			c.n--;
		}
	}
	if (add >= 0) {
		c.m[c.n] = (struct batch_member){ .id = (uint8_t)add, .voter = op != MO_ADD_LEARNER };
		snprintf(c.m[c.n].addr, sizeof c.m[c.n].addr, "10.0.0.%d:7000", add + 1);
		c.n++;
	}
	uint32_t voters = (uint32_t)batch_conf_voters(&c);
	if (pop(voters) < 2 || pop(voters & ~s->poisoned) < pop(voters) / 2 + 1)
		return;
	if (paxos_change(s->nodes[l].p, &c) != 0)
		return;
	s->mops[op]++;
	trace(s, 'M', l, op, 0, voters, batch_conf_members(&c));
	if (add >= 0)
		node_add(s, s->nodes[l].promised);
}

static void step_faults(struct sim *s)
{
	step_items(s, 30);
	if (rndn(s, s->change_every) == 0 && s->n_gconf < 100)
		member_step(s);
	if (rndn(s, 300) == 0) {
		int id = (int)rndn(s, (unsigned)s->n);
		if (s->nodes[id].p != NULL)
			node_crash(s, id);
	}
	if (s->adversary && rndn(s, 40) == 0)
		adversary_step(s);
	if (!s->partitioned && rndn(s, 300) == 0) {
		s->partitioned = true;
		for (int j = 0; j < s->n; j++)
			s->nodes[j].group = (int)rndn(s, 2);
		s->heal_at = s->now + 30 + rndn(s, 200);
		trace(s, 'P', -1, -1, 0, 0, 0);
		s->partitions++;
	} else if (s->partitioned && s->now >= s->heal_at) {
		s->partitioned = false;
	}
}

/* ---- the adversary: a peer holding the cluster key ---- */

/* Deliver one forged message to `to`, claiming to come from another node. */
static void inject(struct sim *s, int to, const struct paxos_msg *m)
{
	uint8_t buf[256];
	int len = paxos_msg_encode(m, buf, sizeof buf);
	assert_true(len > 0);
	int from = (to + 1 + (int)rndn(s, (unsigned)s->n - 1)) % s->n;
	s->injected++;
	trace(s, 'F', from, to, m->type, m->ballot, m->inst);
	ev_push(s, (struct event){ .t = s->now + 1 + rndn(s, 5), .kind = EV_MSG, .node = to, .from = from,
				   .bytes = memcpy(malloc((size_t)len), buf, (size_t)len), .len = (size_t)len });
}

/* A huge ballot: the one of issue 12, all ones, a random one with the top
 * bit set, or one at a random distance (up to 2^48 rounds) above the
 * target's promise; round_max stays a valid round. */
static uint64_t huge_ballot(struct sim *s, int to)
{
	uint64_t r = 0;
	switch (rndn(s, 4)) {
	case 0:
		return FORGED_BALLOT;
	case 1:
		return UINT64_MAX;
	case 2:
		return rnd(s) | (1ull << 63);
	default:
		r = paxos_ballot_round(s->nodes[to].promised) + PAXOS_ROUND_WINDOW + 1 + (rnd(s) >> 16);
		return paxos_ballot(r, rndn(s, (unsigned)s->n));
	}
}

/* Forge one message to a random live node.  PREPARE and NACK may carry any
 * ballot (also one inside the window: a legitimate-looking preemption);
 * HEARTBEAT and ACCEPT only huge ones, and never to a node whose promise is
 * FORGED_BALLOT (it would take them: a forged value, not our subject). */
static void adversary_step(struct sim *s)
{
	int to = (int)rndn(s, (unsigned)s->n);
	if (s->nodes[to].p == NULL)
		return;
	struct paxos_msg m = { .inst = 1 };
	unsigned kind = rndn(s, 12);
	if (kind == 10) {
		/* a pre-vote: only asks (in the window or not) */
		m.type = PAXOS_PREVOTE;
		m.ballot = rndn(s, 2) ? huge_ballot(s, to)
				      : paxos_ballot(paxos_ballot_round(s->nodes[to].promised) + 1, rndn(s, (unsigned)s->n));
		m.commit = rnd(s) % 1000;
		inject(s, to, &m);
		return;
	}
	if (kind == 11) {
		/* a forged grant for the ballot the target would ask about */
		m.type = PAXOS_PREVOTE_REPLY;
		m.ballot = paxos_ballot(paxos_ballot_round(s->nodes[to].promised) + 1 + rndn(s, 2), (uint32_t)to);
		m.grant = (uint8_t)rndn(s, 2);
		m.leader = rndn(s, 2) ? huge_ballot(s, to) : 0;
		m.commit = rndn(s, 50);
		inject(s, to, &m);
		return;
	}
	if (kind < 5) {
		m.type = PAXOS_PREPARE;
	} else if (kind < 7) {
		m.type = PAXOS_NACK;
	} else {
		if (s->poisoned & (1u << to))
			return;
		m.type = kind < 9 ? PAXOS_HEARTBEAT : PAXOS_ACCEPT;
	}
	m.ballot = huge_ballot(s, to);
	if ((m.type == PAXOS_PREPARE || m.type == PAXOS_NACK) && rndn(s, 4) == 0)
		m.ballot = paxos_ballot(paxos_ballot_round(s->nodes[to].promised) + 1 + rndn(s, (unsigned)PAXOS_ROUND_WINDOW),
					rndn(s, (unsigned)s->n));
	inject(s, to, &m);
}

/* Pick the seed's ballot schedule and write the initial promises on disk. */
static void ballot_schedule(struct sim *s)
{
	unsigned k = rndn(s, 8);
	s->scen = k < 2 ? SC_PLAIN : k < 4 ? SC_HUGE : k < 6 ? SC_TOP : SC_POISONED;
	/* Near the top the last window can be exhausted by one PREPARE inside
	 * it (doc/paxos.md): no adversary there, only the arithmetic. */
	s->adversary = s->scen != SC_TOP && (s->scen != SC_PLAIN || rndn(s, 2) == 0);
	uint64_t base = 0;
	if (s->scen == SC_HUGE || s->scen == SC_POISONED)
		base = (1ull << 40) + (rnd(s) >> 10); /* 2^40 .. 2^54 + 2^40 */
	else if (s->scen == SC_TOP)
		base = PAXOS_ROUND_MAX - 4096 - rndn(s, 4096);
	for (int j = 0; j < s->n && base > 0; j++) {
		/* huge: up to four windows apart (nodes must climb to each
		 * other); near the top: a few rounds apart */
		uint64_t r = base + (s->scen == SC_TOP ? rndn(s, 64) : rnd(s) % (4 * PAXOS_ROUND_WINDOW));
		s->nodes[j].promised = paxos_ballot(r, rndn(s, (unsigned)s->n));
	}
	if (s->scen == SC_POISONED) {
		unsigned count = 1 + rndn(s, (unsigned)(s->n - 1) / 2); /* a minority */
		for (unsigned i = 0; i < count; i++) {
			int j = (int)rndn(s, (unsigned)s->n);
			s->poisoned |= 1u << j;
			s->nodes[j].promised = FORGED_BALLOT;
		}
	}
}

/* When the calm starts: the issue-12 PREPARE (and friends) to every node,
 * which must not keep the cluster from converging. */
static void adversary_burst(struct sim *s)
{
	for (int j = 0; j < s->n; j++) {
		inject(s, j, &(struct paxos_msg){ .type = PAXOS_PREPARE, .ballot = FORGED_BALLOT, .inst = 1 });
		inject(s, j, &(struct paxos_msg){ .type = PAXOS_NACK, .ballot = huge_ballot(s, j) });
		if (!(s->poisoned & (1u << j)))
			inject(s, j, &(struct paxos_msg){ .type = PAXOS_HEARTBEAT, .ballot = FORGED_BALLOT, .inst = 1 });
	}
}

static void sim_free(struct sim *s)
{
	for (int j = 0; j < s->n; j++) {
		node_destroy(s, &s->nodes[j]);
		for (size_t i = 0; i < s->nodes[j].n_acc; i++)
			batch_free(&s->nodes[j].acc[i].v);
		free(s->nodes[j].acc);
		batch_order_free(&s->nodes[j].order);
	}
	for (size_t i = 0; i < s->n_ir; i++) {
		for (uint32_t k = 0; k < s->ir[i].n; k++)
			batch_free(&s->ir[i].r[k].v);
		free(s->ir[i].r);
	}
	free(s->ir);
	for (size_t i = 0; i < s->n_heap; i++)
		free(s->heap[i].bytes);
	free(s->heap);
	for (size_t i = 0; i < s->n_g; i++)
		batch_free(&s->g[i]);
	free(s->g);
	batch_order_free(&s->gorder);
}

static void print_trace(struct sim *s)
{
	unsigned first = s->n_trace > TRACE ? s->n_trace - TRACE : 0;
	for (unsigned i = first; i < s->n_trace; i++) {
		struct trace_rec *r = &s->trace[i % TRACE];
		fprintf(stderr, "#   t=%llu %c %d->%d %s ballot=%llu.%u inst=%llu\n", (unsigned long long)r->t, r->what,
			r->a, r->b, r->type ? paxos_msg_name(r->type) : "-",
			(unsigned long long)paxos_ballot_round(r->ballot), paxos_ballot_node(r->ballot),
			(unsigned long long)r->inst);
	}
}

struct totals {
	uint64_t max_calm_ms, sum_calm_ms;
	uint64_t stab[ST_COUNT], new_leaders, max_new_leader_ms, sum_new_leader_ms, phase_snapshots;
	uint64_t prevotes, prevotes_refused, quorum_lost, stalls;
	uint64_t seeds, instances, items, msgs, failures, persist_failures, crashes, partitions, fetches, snapshots, leaders;
	uint64_t scen[SC_COUNT], adversary, injected, refused;
	uint64_t mops[MO_COUNT], confs, conf_prepares, removed_refused, servers_added, seeds_changed;
	uint64_t removed_up, removed_knew;
	uint64_t pipelined, marks_behind, marks_bridged, depth[PAXOS_CONF_DELAY + 1], depth_seen[PAXOS_CONF_DELAY + 1];
};

/* One millisecond: deliver what is due, tick every live node that is not
 * paused, and let the hosts compact now and then. */
static void sim_ms(struct sim *s)
{
	while (s->n_heap > 0 && s->heap[0].t <= s->now && !s->fail[0]) {
		struct event e = ev_pop(s);
		handle(s, &e);
		free(e.bytes);
	}
	for (int j = 0; j < s->n; j++) {
		struct node *nd = &s->nodes[j];
		if (nd->p == NULL || s->now < nd->paused_until)
			continue;
		paxos_tick(nd->p, s->now);
		/* the host compacts now and then */
		if (s->now - nd->last_compact >= 100 && nd->applied > 10) {
			nd->last_compact = s->now;
			uint64_t k = nd->applied - 10;
			paxos_compact(nd->p, k);
			for (size_t i = 0; i <= k && i < nd->n_acc; i++) {
				batch_free(&nd->acc[i].v);
				nd->acc[i].ballot = 0;
			}
		}
	}
}

/* ---- the stable-leader phase ---- */

/* The leader every live node outside `skip` follows (poisoned nodes, which
 * can follow no one, aside), at one ballot; -1 if there is none. */
static int stable_leader(struct sim *s, uint32_t skip)
{
	int l = -1;
	struct paxos_status st;
	skip |= ~gconf_last(s)->members; /* removed, or never added */
	for (int j = 0; j < s->n; j++) {
		if ((skip & (1u << j)) || s->nodes[j].p == NULL)
			continue;
		paxos_status(s->nodes[j].p, &st);
		if (st.role == PAXOS_LEADER) {
			if (l >= 0)
				return -1;
			l = j;
		}
	}
	if (l < 0)
		return -1;
	paxos_status(s->nodes[l].p, &st);
	uint64_t b = st.ballot;
	for (int j = 0; j < s->n; j++) {
		if (j == l || (skip & (1u << j)) || (s->poisoned & (1u << j)))
			continue;
		if (s->nodes[j].p == NULL)
			return -1;
		paxos_status(s->nodes[j].p, &st);
		if (st.role != PAXOS_FOLLOWER || st.leader != (uint32_t)l || st.ballot != b)
			return -1;
	}
	return l;
}

/* While watching: the leader keeps leading at its ballot (and io_persist /
 * io_send see that no node goes above it). */
static void check_watch(struct sim *s)
{
	if (!s->watch || s->fail[0])
		return;
	if (s->n_gconf != s->watch_confs) {
		/* a change asked for in the chaos, recovered and chosen only
		 * now: it may remove the leader (which then steps down by rule,
		 * doc/paxos.md "Membership") or make the scenario one that no
		 * majority survives; the phase then checks convergence only */
		s->watch = false;
		return;
	}
	struct node *nd = &s->nodes[s->watch_leader];
	struct paxos_status st = { 0 };
	if (nd->p != NULL)
		paxos_status(nd->p, &st);
	if (nd->p == NULL || st.role != PAXOS_LEADER || st.ballot != s->watch_ballot)
		violation(s, "stable leader: node %d stopped leading at ballot %llu.%u (%s)", s->watch_leader,
			  (unsigned long long)paxos_ballot_round(s->watch_ballot), paxos_ballot_node(s->watch_ballot),
			  stab_name[s->stab]);
}

static void watch_leader(struct sim *s, int l)
{
	struct paxos_status st;
	paxos_status(s->nodes[l].p, &st);
	s->watch = true;
	s->watch_leader = l;
	s->watch_ballot = st.ballot;
	trace(s, 'W', l, -1, 0, st.ballot, 0);
}

/*
 * Once the calm converged: wait for a stable leader, then one scenario
 * (enum stab) under 0..4 % loss with items flowing.  Checked: while the
 * leader is healthy and connected to a majority (the whole phase for the
 * quiet and follower scenarios) no node raises its promise or leads above
 * its ballot and it keeps leading; when the leader is lost, the others
 * follow a new one within NEW_LEADER_LIMIT, and from then on the same
 * holds for the new one, also after the old leader comes back.  Last,
 * every node catches up (CALM_LIMIT).
 */
static void stable_phase(struct sim *s, struct totals *tot)
{
	s->calm_drop = rndn(s, 5);
	/* 1. a stable leader, for longer than a leader's climb period */
	int l = -1;
	uint64_t t0 = s->now, since = s->now;
	for (; s->now < t0 + SETTLE_LIMIT && !s->fail[0]; s->now++) {
		sim_ms(s);
		if (s->now % 5 != 0)
			continue;
		int k = stable_leader(s, 0);
		if (k < 0 || k != l) {
			l = k;
			since = s->now;
		} else if (s->now - since >= (PAXOS_CLIMB_TIMEOUTS + 1) * EL_MS) {
			break;
		}
	}
	if (s->fail[0])
		return;
	if (l < 0 || s->now - since < (PAXOS_CLIMB_TIMEOUTS + 1) * EL_MS) {
		violation(s, "liveness: no stable leader %d ms after the calm converged", SETTLE_LIMIT);
		return;
	}

	/* 2. the scenario: what fails must leave a majority of nodes that can
	 * accept (not poisoned) */
	uint32_t voters = gconf_last(s)->voters;
	int nv = (int)pop(voters), maj = nv / 2 + 1, healthy = (int)pop(voters & ~s->poisoned);
	int st = (int)rndn(s, ST_COUNT);
	uint32_t victims = 0;
	if (st >= ST_FOLLOWER_PART && st <= ST_FOLLOWER_FULL) {
		int kmax = MIN(healthy - maj, (nv - 1) / 2);
		int k = kmax < 1 ? 0 : 1 + (int)rndn(s, (unsigned)kmax);
		while (k > 0) {
			int j = (int)rndn(s, (unsigned)s->n);
			if (j == l || !(voters & (1u << j)) || (victims & (1u << j)) || (s->poisoned & (1u << j)))
				continue;
			victims |= 1u << j;
			k--;
		}
		if (victims == 0)
			st = ST_QUIET;
	} else if (st >= ST_LEADER_PAUSE) {
		if (healthy - 1 < maj)
			st = ST_QUIET;
		else
			victims = 1u << l;
	}
	s->stab = st;
	tot->stab[st]++;
	bool lost = st >= ST_LEADER_PAUSE;
	uint64_t start = s->now;
	uint64_t d = lost ? NEW_LEADER_LIMIT + rndn(s, 15 * EL_MS) : (5 + rndn(s, 26)) * EL_MS;
	if (!lost)
		watch_leader(s, l);
	trace(s, 'P', (int)victims, st, 0, 0, d);
	for (int j = 0; j < s->n; j++) {
		struct node *nd = &s->nodes[j];
		if (!(victims & (1u << j)))
			continue;
		switch (st) {
		case ST_FOLLOWER_PART:
		case ST_LEADER_PART:
			s->partitioned = true;
			break;
		case ST_FOLLOWER_PAUSE:
		case ST_LEADER_PAUSE:
			nd->paused_until = start + d;
			break;
		case ST_FOLLOWER_DOWN:
			trace(s, 'X', j, -1, 0, 0, 0);
			s->crashes++;
			node_destroy(s, nd);
			nd->p = NULL;
			nd->inc++;
			ev_push(s, (struct event){ .t = start + d, .kind = EV_RESTART, .node = j });
			break;
		case ST_LEADER_DEAF:
			s->cut_in |= 1u << j;
			break;
		case ST_FOLLOWER_FULL:
		case ST_LEADER_FULL:
			nd->full = true;
			paxos_standby(nd->p, true);
			break;
		}
	}
	for (int j = 0; j < s->n; j++)
		s->nodes[j].group = (victims & (1u << j)) ? 1 : 0;
	uint64_t snaps = s->snapshots;
	s->watch_confs = s->n_gconf;

	/* 3. the fault, then as long again healed (OBSERVE_MS at least) */
	uint64_t end = start + d + MAX(d, (uint64_t)OBSERVE_MS);
	for (; s->now < end && !s->fail[0]; s->now++) {
		if (s->now == start + d) {
			s->partitioned = false;
			s->cut_in = s->cut_out = 0;
			for (int j = 0; j < s->n; j++) {
				if (s->nodes[j].full && s->nodes[j].p != NULL)
					paxos_standby(s->nodes[j].p, false);
				s->nodes[j].full = false;
			}
			trace(s, 'H', -1, -1, 0, 0, 0);
		}
		step_items(s, 10);
		sim_ms(s);
		if (lost && !s->watch && s->now % 5 == 0 && s->n_gconf == s->watch_confs) {
			int k = stable_leader(s, victims);
			if (k >= 0) {
				watch_leader(s, k);
				tot->new_leaders++;
				tot->sum_new_leader_ms += s->now - start;
				tot->max_new_leader_ms = MAX(tot->max_new_leader_ms, s->now - start);
			} else if (s->now - start > NEW_LEADER_LIMIT) {
				violation(s, "liveness: no new leader %d ms after the %s", NEW_LEADER_LIMIT,
					  st == ST_LEADER_PAUSE ? "leader was paused"
					  : st == ST_LEADER_PART ? "leader was partitioned"
					  : st == ST_LEADER_FULL ? "leader's disk filled" : "leader went deaf");
			}
		}
		check_watch(s);
	}

	/* 4. no new items: everyone catches up, still under the same leader */
	bool ok = false;
	for (uint64_t t1 = s->now; s->now < t1 + CALM_LIMIT && !s->fail[0]; s->now++) {
		sim_ms(s);
		check_watch(s);
		if (s->now % 10 == 0 && converged(s)) {
			ok = true;
			break;
		}
	}
	if (!s->fail[0] && !ok)
		violation(s, "liveness: not converged %d ms after the stable-leader phase (%s)", CALM_LIMIT,
			  stab_name[st]);
	s->watch = false;
	tot->phase_snapshots += s->snapshots - snaps;
}

/* Run one seed; returns 0 or -1 (after printing the seed and trace). */
static int sim_run(uint64_t seed, int n, struct totals *tot)
{
	static struct sim s;
	memset(&s, 0, sizeof s);
	s.seed = seed;
	s.rng = seed * 0x2545f4914f6cdd1dull + (uint64_t)n;
	s.n = s.n0 = n;
	s.gconf[0] = (struct gconf){ .eff = 0, .voters = (1u << n) - 1, .members = (1u << n) - 1 };
	s.n_gconf = 1;
	s.drop_pct = rndn(&s, 25);
	s.change_every = rndn(&s, 2) ? 150 : 30; /* now and then, or a storm */
	s.dup_pct = rndn(&s, 10);
	s.max_delay = 1 + rndn(&s, 30);
	ballot_schedule(&s);
	for (int j = 0; j < n; j++)
		node_start(&s, j);
	uint64_t calm_at = CHAOS_MS, end = CHAOS_MS + CALM_LIMIT;
	bool ok = false;
	for (s.now = 0; s.now <= end && !s.fail[0]; s.now++) {
		if (!s.calm && s.now >= calm_at) {
			s.calm = true;
			s.partitioned = false;
			for (int j = 0; j < n; j++)
				if (s.nodes[j].p == NULL)
					node_start(&s, j);
			if (s.adversary)
				adversary_burst(&s);
		}
		if (!s.calm)
			step_faults(&s);
		sim_ms(&s);
		if (s.calm && s.now % 10 == 0 && converged(&s)) {
			ok = true;
			break;
		}
	}
	if (!s.fail[0] && !ok)
		violation(&s, "liveness: not converged %d ms after the faults stopped (chosen %zu)", CALM_LIMIT, s.n_g);
	uint64_t calm_ms = s.now - calm_at;
	if (ok && !s.fail[0]) {
		s.now++;
		stable_phase(&s, tot);
	}
	int rc = 0;
	if (s.fail[0]) {
		fprintf(stderr, "# seed %llu (%d nodes, %s%s; then %s, %u %% loss) t=%llu: %s\n", (unsigned long long)seed, n,
			scen_name[s.scen], s.adversary ? ", adversary" : "", stab_name[s.stab], s.calm_drop,
			(unsigned long long)s.now, s.fail);
		print_trace(&s);
		for (int j = 0; j < s.n; j++) {
			struct paxos_status st = { 0 };
			if (s.nodes[j].p != NULL)
				paxos_status(s.nodes[j].p, &st);
			fprintf(stderr, "#   node %d: %s role %d ballot %llu.%u leader %d chosen %llu compacted %llu voters 0x%llx removed 0x%llx; disk applied %llu\n",
				j, s.nodes[j].p ? "up" : "down", (int)st.role, (unsigned long long)paxos_ballot_round(st.ballot),
				paxos_ballot_node(st.ballot), (int)st.leader, (unsigned long long)st.chosen,
				(unsigned long long)st.compacted, (unsigned long long)st.voters, (unsigned long long)st.removed,
				(unsigned long long)s.nodes[j].applied);
		}
		for (unsigned k = 0; k < s.n_gconf; k++) {
			fprintf(stderr, "#   configuration from %llu: voters 0x%x members 0x%x\n",
				(unsigned long long)s.gconf[k].eff, s.gconf[k].voters, s.gconf[k].members);
		}
		printf("# FAILED seed %llu nodes %d: %s\n", (unsigned long long)seed, n, s.fail);
		rc = -1;
		tot->failures++;
	}
	tot->seeds++;
	if (ok) {
		tot->sum_calm_ms += calm_ms;
		if (calm_ms > tot->max_calm_ms)
			tot->max_calm_ms = calm_ms;
	}
	tot->instances += s.n_g;
	for (uint64_t st = 1; st <= NSTREAMS; st++)
		tot->items += batch_order_last(&s.gorder, st);
	tot->msgs += s.msgs;
	tot->crashes += s.crashes;
	tot->persist_failures += s.persist_failures;
	tot->partitions += s.partitions;
	tot->fetches += s.fetches;
	tot->snapshots += s.snapshots;
	tot->leaders += s.leaders;
	tot->scen[s.scen]++;
	for (int k = 0; k < MO_COUNT; k++)
		tot->mops[k] += s.mops[k];
	tot->confs += s.n_gconf - 1;
	/* removed servers (members once, not of the latest configuration)
	 * still up at the end: did they learn it (the polite refusal)? */
	uint32_t ever = 0;
	for (unsigned k = 0; k < s.n_gconf; k++)
		ever |= s.gconf[k].members;
	for (int j = 0; j < s.n; j++) {
		struct paxos_status st;
		if (!((ever & ~gconf_last(&s)->members) & (1u << j)) || s.nodes[j].p == NULL)
			continue;
		paxos_status(s.nodes[j].p, &st);
		tot->removed_up++;
		tot->removed_knew += st.self_removed;
	}
	tot->seeds_changed += s.n_gconf > 1;
	tot->servers_added += (uint64_t)(s.n - s.n0);
	tot->adversary += s.adversary;
	tot->injected += s.injected;
	sim_free(&s); /* adds the refusals (and pre-votes ...) of the live cores */
	tot->refused += s.refused;
	tot->prevotes += s.prevotes;
	tot->prevotes_refused += s.prevotes_refused;
	tot->quorum_lost += s.quorum_lost;
	tot->stalls += s.stalls;
	tot->conf_prepares += s.conf_prepares;
	tot->removed_refused += s.removed_refused;
	tot->pipelined += s.pipelined;
	tot->marks_behind += s.marks_behind;
	tot->marks_bridged += s.marks_bridged;
	unsigned depth = 1 + (unsigned)(seed / 8 % PAXOS_CONF_DELAY);
	tot->depth[depth]++;
	if (s.inflight_max > tot->depth_seen[depth])
		tot->depth_seen[depth] = s.inflight_max;
	return rc;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static uint64_t seed_count(void)
{
	uint64_t d = 10000;
	const char *san = getenv("MTR_SANITIZE");
#if defined(__SANITIZE_ADDRESS__)
	san = "1";
#endif
	if (san && strcmp(san, "1") == 0) {
		d = 1000;
		printf("# sanitizer build (MTR_SANITIZE=1): %llu seeds by default instead of 10000\n",
		       (unsigned long long)env_u64("MTR_PAXOS_SEEDS", d));
	}
	return env_u64("MTR_PAXOS_SEEDS", d);
}

static void run_group(int n)
{
	uint64_t total = seed_count(), seed0 = env_u64("MTR_PAXOS_SEED0", 1);
	uint64_t count = (total + 1) / 2;
	struct totals tot = { 0 };
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint64_t i = 0; i < count && tot.failures < 3; i++)
		sim_run(seed0 + i, n, &tot);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("# %d nodes: %llu seeds from %llu, %llu violations, %llu instances, %llu items ordered, %llu messages, %.1f s\n",
	       n, (unsigned long long)tot.seeds, (unsigned long long)seed0, (unsigned long long)tot.failures,
	       (unsigned long long)tot.instances, (unsigned long long)tot.items, (unsigned long long)tot.msgs, secs);
	printf("# %d nodes: %llu crashes, %llu failed writes, %llu partitions, %llu leaderships, %llu fetches, %llu snapshots installed\n", n,
	       (unsigned long long)tot.crashes, (unsigned long long)tot.persist_failures, (unsigned long long)tot.partitions, (unsigned long long)tot.leaders,
	       (unsigned long long)tot.fetches, (unsigned long long)tot.snapshots);
	printf("# %d nodes: ballots: %llu plain, %llu huge promises, %llu near the top, %llu poisoned minority; %llu with an adversary, %llu forged messages, %llu refused by the ballot window\n",
	       n, (unsigned long long)tot.scen[SC_PLAIN], (unsigned long long)tot.scen[SC_HUGE],
	       (unsigned long long)tot.scen[SC_TOP], (unsigned long long)tot.scen[SC_POISONED],
	       (unsigned long long)tot.adversary, (unsigned long long)tot.injected, (unsigned long long)tot.refused);
	printf("# %d nodes: converged after the faults stopped in %.0f ms on average, %llu ms at most (limit %d)\n", n,
	       tot.seeds ? (double)tot.sum_calm_ms / (double)tot.seeds : 0.0, (unsigned long long)tot.max_calm_ms,
	       CALM_LIMIT);
	printf("# %d nodes: stable leader:", n);
	for (int k = 0; k < ST_COUNT; k++)
		printf("%s %llu %s", k ? "," : "", (unsigned long long)tot.stab[k], stab_name[k]);
	printf("; %llu snapshots installed in them\n", (unsigned long long)tot.phase_snapshots);
	printf("# %d nodes: stable leader: a new one followed by all %.0f ms on average, %llu ms at most after the leader's loss (limit %d); "
	       "%llu pre-votes, %llu refused for a live leader, %llu check-quorum step-downs, %llu stalled ticks\n",
	       n, tot.new_leaders ? (double)tot.sum_new_leader_ms / (double)tot.new_leaders : 0.0,
	       (unsigned long long)tot.max_new_leader_ms, NEW_LEADER_LIMIT, (unsigned long long)tot.prevotes,
	       (unsigned long long)tot.prevotes_refused, (unsigned long long)tot.quorum_lost,
	       (unsigned long long)tot.stalls);
	printf("# %d nodes: membership: %llu seeds changed it, %llu servers added, changes asked:", n,
	       (unsigned long long)tot.seeds_changed, (unsigned long long)tot.servers_added);
	for (int k = 0; k < MO_COUNT; k++)
		printf("%s %llu %s", k ? "," : "", (unsigned long long)tot.mops[k], mop_name[k]);
	printf("; %llu configurations chosen, %llu phase-1 extensions to new voters, %llu messages from removed nodes refused; "
	       "%llu of %llu removed servers up at the end knew it\n",
	       (unsigned long long)tot.confs, (unsigned long long)tot.conf_prepares,
	       (unsigned long long)tot.removed_refused, (unsigned long long)tot.removed_knew,
	       (unsigned long long)tot.removed_up);
	printf("# %d nodes: pipelining: seeds per depth", n);
	for (unsigned k = 1; k <= PAXOS_CONF_DELAY; k++)
		printf("%s %u: %llu (most in flight %llu)", k > 1 ? "," : "", k, (unsigned long long)tot.depth[k],
		       (unsigned long long)tot.depth_seen[k]);
	printf("; %llu fresh instances proposed with others in flight; ranges read cumulatively: %llu bridged "
	       "(an instance before became a no-op or took less), %llu behind the cursor\n",
	       (unsigned long long)tot.pipelined, (unsigned long long)tot.marks_bridged,
	       (unsigned long long)tot.marks_behind);
	assert_int_equal(tot.failures, 0);
	assert_true(tot.instances > 0);
	assert_true(tot.confs > 0);
	assert_true(tot.items > 0);
}

/* ---- tests ---- */

static void test_sim_3_nodes(void **state)
{
	(void)state;
	run_group(3);
}

static void test_sim_5_nodes(void **state)
{
	(void)state;
	run_group(5);
}

/* An empty 3-node simulation (no core started); each node holds stream 1
 * up to wm1 and stream 2 up to wm2. */
static void sim_three(struct sim *s, uint64_t wm1, uint64_t wm2)
{
	memset(s, 0, sizeof *s);
	s->n = s->n0 = 3;
	s->gconf[0] = (struct gconf){ .eff = 0, .voters = 7, .members = 7 };
	s->n_gconf = 1;
	for (int j = 0; j < 3; j++) {
		s->nodes[j].next_expected = 1;
		s->nodes[j].wm[1] = wm1;
		s->nodes[j].wm[2] = wm2;
	}
}

/* The checker itself must catch a broken log. */
static void test_checker_catches(void **state)
{
	(void)state;
	static struct sim s;
	sim_three(&s, 100, 0);
	struct batch b1 = { 0 }, b2 = { 0 };
	batch_push(&b1, 1, 1, 10);
	batch_push(&b2, 1, 12, 20); /* gap: 11 missing */
	/* accepted by node 0 only: chosen without a quorum */
	record_accept(&s, 0, 1, 0x101, &b1);
	check_chosen(&s, 0, 1, &b1);
	assert_true(strstr(s.fail, "quorum") != NULL);
	s.fail[0] = 0;
	record_accept(&s, 1, 1, 0x101, &b2); /* another value at one ballot */
	assert_true(strstr(s.fail, "two values") != NULL);
	s.fail[0] = 0;
	record_accept(&s, 2, 1, 0x101, &b1);
	s.nodes[0].next_expected = 1;
	batch_order_free(&s.nodes[0].order);
	s.n_g = 0;
	batch_free(&s.g[0]);
	batch_order_free(&s.gorder);
	check_chosen(&s, 0, 1, &b1);
	assert_int_equal(s.fail[0], 0);
	check_chosen(&s, 1, 1, &b2); /* disagreement */
	assert_true(strstr(s.fail, "agreement") != NULL);
	s.fail[0] = 0;
	check_chosen(&s, 0, 2, &b2);
	assert_true(strstr(s.fail, "invariant 3") != NULL);
	s.fail[0] = 0;
	check_chosen(&s, 2, 3, &b1);
	assert_true(strstr(s.fail, "expected 1") != NULL);
	s.fail[0] = 0;
	/* the cumulative rule: a majority accepted the mark 30 with the hint
	 * 15 at instance 2; read against the cursor 10 that is 11..30 (the
	 * global log back to instance 1 first) */
	while (s.n_g > 1)
		batch_free(&s.g[--s.n_g]);
	batch_order_free(&s.gorder);
	batch_order_set(&s.gorder, 1, 10);
	check_chosen(&s, 2, 1, &b1);
	assert_int_equal(s.fail[0], 0);
	struct batch raw = { 0 }, eff = { 0 }, dup = { 0 };
	batch_push(&raw, 1, 15, 30);
	batch_push(&eff, 1, 11, 30);
	batch_push(&dup, 1, 25, 40);
	record_accept(&s, 0, 2, 0x201, &raw);
	record_accept(&s, 1, 2, 0x201, &raw);
	check_chosen(&s, 2, 2, &eff);
	assert_int_equal(s.fail[0], 0);
	s.nodes[1].next_expected = 2;
	check_chosen(&s, 1, 2, &raw); /* the hint taken for the start: 11..14 skipped */
	assert_true(strstr(s.fail, "agreement") != NULL);
	s.fail[0] = 0;
	record_accept(&s, 0, 3, 0x201, &dup);
	record_accept(&s, 1, 3, 0x201, &dup);
	check_chosen(&s, 2, 3, &dup); /* 25..30 twice */
	assert_true(strstr(s.fail, "invariant 3") != NULL);
	batch_free(&raw);
	batch_free(&eff);
	batch_free(&dup);
	batch_free(&b1);
	batch_free(&b2);
	sim_free(&s);
}

/* ---- paxos_create / a one-node cluster / paxos_status ---- */

static void test_create_invalid(void **state)
{
	(void)state;
	static struct sim s;
	memset(&s, 0, sizeof s);
	hosts[0] = (struct host){ &s, 0 };
	struct paxos_io io = { .data = &hosts[0], .send = io_send, .persist = io_persist, .holds = io_holds,
			       .fetch = io_fetch, .chosen = io_chosen };
	struct paxos *p = (struct paxos *)&s;
	struct paxos_config bad_n = { .id = 0, .n = PAXOS_MAX_NODES + 1 };
	assert_int_equal(paxos_create(&p, &bad_n, &io), MTR_EINVAL);
	assert_null(p);
	struct paxos_config bad_id = { .id = PAXOS_MAX_ID, .n = 3 };
	assert_int_equal(paxos_create(&p, &bad_id, &io), MTR_EINVAL);
	/* a pipeline deeper than alpha (rule 2 of "Membership") */
	struct paxos_config bad_pipe = { .id = 0, .n = 3, .pipeline = PAXOS_CONF_DELAY + 1 };
	assert_int_equal(paxos_create(&p, &bad_pipe, &io), MTR_EINVAL);
	/* a configuration without a voter, or with ids out of order */
	struct batch_conf c = { .n = 2, .m = { { .id = 0, .voter = 0 }, { .id = 4, .voter = 0 } } };
	struct paxos_config bad_conf = { .id = 0, .conf = &c };
	assert_int_equal(paxos_create(&p, &bad_conf, &io), MTR_EINVAL);
	c.m[0] = (struct batch_member){ .id = 5, .voter = 1 };
	assert_int_equal(paxos_create(&p, &bad_conf, &io), MTR_EINVAL);
	io.chosen = NULL;
	struct paxos_config good = { .id = 0, .n = 3 };
	assert_int_equal(paxos_create(&p, &good, &io), MTR_EINVAL);
	paxos_destroy(NULL);
}

static void test_single_node(void **state)
{
	(void)state;
	static struct sim s;
	memset(&s, 0, sizeof s);
	s.n = s.n0 = 1;
	s.gconf[0] = (struct gconf){ .eff = 0, .voters = 1, .members = 1 };
	s.n_gconf = 1;
	s.calm = true; /* no write failures */
	s.seed = 7;
	node_start(&s, 0);
	struct node *nd = &s.nodes[0];
	for (uint64_t q = 1; q <= 5; q++)
		nd->held[2][q] = 1;
	node_update_wm(nd, 2);
	for (s.now = 1; s.now < 200; s.now++)
		paxos_tick(nd->p, s.now);
	node_report(nd); /* leader by now: proposes 2:1..5 at once */
	struct paxos_status st;
	paxos_status(nd->p, &st);
	assert_int_equal(st.role, PAXOS_LEADER);
	assert_int_equal(st.leader, 0);
	assert_int_equal(st.chosen, 1);
	assert_int_equal(st.applied, 1);
	assert_int_equal(s.n_g, 1);
	assert_int_equal(s.g[0].n, 1);
	assert_int_equal(s.g[0].r[0].stream, 2);
	assert_int_equal(s.g[0].r[0].first, 1);
	assert_int_equal(s.g[0].r[0].last, 5);
	assert_int_equal(s.fail[0], 0);
	sim_free(&s);
}

/* The cumulative rule in the core: chosen values learned from CHOSEN (a
 * peer's word) are handed to the host as the part above the cursor, so a
 * no-op, a mark bridging it, a stale mark and a value from before
 * pipelining all keep every stream a prefix (doc/paxos.md "The leader's
 * batching rule"). */
static void test_cumulative_delivery(void **state)
{
	(void)state;
	static struct sim s;
	sim_three(&s, 20, 9); /* every item held everywhere (invariant 4) */
	s.calm = true;
	s.seed = 3;
	node_start(&s, 1);
	struct batch v[5] = { { 0 } };
	batch_push(&v[0], 1, 1, 10);  /* a value from before: 1..10 */
	/* v[1]: a no-op (the instance a leader change left empty) */
	batch_push(&v[2], 1, 15, 20); /* hint 15 after a mark 14 that was lost: 11..20 */
	batch_push(&v[2], 2, 1, 3);
	batch_push(&v[3], 1, 5, 18);  /* a deposed leader's stale mark: nothing */
	batch_push(&v[3], 2, 4, 6);   /* ... but stream 2 moves on: 4..6 */
	batch_push(&v[4], 2, 2, 9);   /* hint below the cursor: 7..9 */
	struct paxos_entry es[5];
	for (int i = 0; i < 5; i++)
		es[i] = (struct paxos_entry){ .inst = (uint64_t)i + 1, .ballot = PAXOS_BALLOT_CHOSEN, .value = v[i] };
	/* every accept "by a majority" for the checker's quorum rule */
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 3; j++)
			record_accept(&s, j, (uint64_t)i + 1, 0x101, &v[i]);
	struct paxos_msg m = { .type = PAXOS_CHOSEN, .n_entries = 5, .entries = es };
	assert_int_equal(paxos_recv(s.nodes[1].p, 0, &m), 0);
	if (s.fail[0])
		fprintf(stderr, "# %s\n", s.fail);
	assert_int_equal(s.fail[0], 0);
	assert_int_equal(s.n_g, 5);
	assert_int_equal(s.g[1].n, 0);
	assert_int_equal(s.g[2].n, 2);
	assert_int_equal(s.g[2].r[0].first, 11);
	assert_int_equal(s.g[2].r[0].last, 20);
	assert_int_equal(s.g[3].n, 1);
	assert_int_equal(s.g[3].r[0].stream, 2);
	assert_int_equal(s.g[3].r[0].first, 4);
	assert_int_equal(s.g[4].r[0].first, 7);
	assert_int_equal(s.g[4].r[0].last, 9);
	assert_int_equal(batch_order_last(&s.nodes[1].order, 1), 20);
	assert_int_equal(batch_order_last(&s.nodes[1].order, 2), 9);
	struct paxos_stats st;
	paxos_stats(s.nodes[1].p, &st);
	assert_int_equal(st.marks_bridged, 1);
	assert_int_equal(st.marks_behind, 1); /* 5..18; 2..9 is not: 7..9 are new */
	for (int i = 0; i < 5; i++)
		batch_free(&v[i]);
	sim_free(&s);
}

/* ---- paxos_change / paxos_conf_at / paxos_status: membership ---- */

/* A one-node cluster (node 0) that leads by now. */
static struct paxos *one_node_leader(struct sim *s)
{
	memset(s, 0, sizeof *s);
	s->n = s->n0 = 1;
	s->gconf[0] = (struct gconf){ .eff = 0, .voters = 1, .members = 1 };
	s->n_gconf = 1;
	s->calm = true;
	s->seed = 11;
	node_start(s, 0);
	for (s->now = 1; s->now < 200; s->now++)
		paxos_tick(s->nodes[0].p, s->now);
	struct paxos_status st;
	paxos_status(s->nodes[0].p, &st);
	assert_int_equal(st.role, PAXOS_LEADER);
	assert_int_equal(st.voters, 1);
	assert_int_equal(st.conf_next, 0);
	return s->nodes[0].p;
}

static void run_until(struct sim *s, uint64_t t)
{
	for (; s->now < t; s->now++)
		paxos_tick(s->nodes[0].p, s->now);
}

/* Changes in a one-node cluster (its one voter chooses at once): in force
 * PAXOS_CONF_DELAY instances after the one that chose it (the leader fills
 * with no-ops), refusals (invalid, a removed id, pending, not the leader),
 * a removed node's messages, a leader that removes itself. */
static void test_change_api(void **state)
{
	(void)state;
	static struct sim s;
	struct paxos *p = one_node_leader(&s);
	struct paxos_status st;
	paxos_status(p, &st);
	uint64_t at = st.applied;
	struct batch_conf none = { .n = 1, .m = { { .id = 0, .voter = 0 } } };
	assert_int_equal(paxos_change(p, &none), MTR_EINVAL); /* no voter */

	/* add a learner: chosen at at + 1, no-ops up to its first instance */
	struct batch_conf c = { .n = 2, .m = { { .id = 0, .voter = 1, .addr = "a:1" }, { .id = 1, .voter = 0, .addr = "b:1" } } };
	assert_int_equal(paxos_change(p, &c), 0);
	paxos_status(p, &st);
	assert_int_equal(st.applied, at + PAXOS_CONF_DELAY);
	assert_int_equal(st.conf_next, 0);
	assert_int_equal(st.members, 3);
	assert_int_equal(st.voters, 1);
	assert_int_equal(paxos_audience(p), 2); /* the learner hears the leader */
	struct batch_conf got;
	paxos_conf_at(p, st.applied + 1, &got);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.m[1].addr, "b:1");
	assert_int_equal(s.n_gconf, 2); /* the checker saw it chosen */

	/* remove it: refused from then on, its id never comes back */
	c.n = 1;
	assert_int_equal(paxos_change(p, &c), 0);
	paxos_status(p, &st);
	assert_int_equal(st.removed, 2);
	assert_int_equal(paxos_audience(p), 0);
	c.n = 2;
	assert_int_equal(paxos_change(p, &c), MTR_EINVAL);
	struct paxos_msg m = { .type = PAXOS_PREVOTE, .ballot = 0x101, .commit = 0 };
	assert_int_equal(paxos_recv(p, 1, &m), MTR_ESTALE);

	/* a voter that is not there: the change is chosen (by node 0 alone)
	 * and in force, then nothing more can be chosen; a change asked
	 * meanwhile waits, a second one is refused */
	struct batch_conf two = { .n = 2, .m = { { .id = 0, .voter = 1 }, { .id = 2, .voter = 1 } } };
	assert_int_equal(paxos_change(p, &two), 0);
	paxos_status(p, &st);
	assert_int_equal(st.voters, 5);
	struct batch_conf back = { .n = 1, .m = { { .id = 0, .voter = 1 } } };
	assert_int_equal(paxos_change(p, &back), 0);
	assert_int_equal(paxos_change(p, &back), MTR_EBUSY);
	/* and without a majority of {0, 2} the leader steps down (check-quorum) */
	run_until(&s, 400);
	paxos_status(p, &st);
	assert_int_equal(st.role, PAXOS_FOLLOWER);
	assert_int_equal(s.fail[0], 0);
	sim_free(&s);

	/* a leader that removes itself leads up to the change, then steps
	 * down, knows it was removed, and campaigns no more */
	p = one_node_leader(&s);
	struct batch_conf other = { .n = 1, .m = { { .id = 5, .voter = 1 } } };
	assert_int_equal(paxos_change(p, &other), 0);
	run_until(&s, 1000);
	paxos_status(p, &st);
	assert_true(st.self_removed);
	assert_int_equal(st.role, PAXOS_FOLLOWER);
	assert_int_equal(paxos_change(p, &back), MTR_EINVAL); /* 0 is removed */
	assert_int_equal(paxos_change(p, &other), MTR_EAGAIN); /* not the leader */
	assert_int_equal(s.fail[0], 0);
	sim_free(&s);
}

int main(void)
{
	/* The cores warn about every dropped forged ballot (once a minute each,
	 * but a seed makes hundreds of cores): keep the output readable. */
	if (getenv("MTR_LOG") == NULL)
		log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_invalid),
		cmocka_unit_test(test_single_node),
		cmocka_unit_test(test_change_api),
		cmocka_unit_test(test_checker_catches),
		cmocka_unit_test(test_cumulative_delivery),
		cmocka_unit_test(test_sim_3_nodes),
		cmocka_unit_test(test_sim_5_nodes),
	};
	return cmocka_run_group_tests_name("paxos_sim", tests, NULL, NULL);
}
