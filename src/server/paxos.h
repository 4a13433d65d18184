/*
 * paxos.h - the consensus core of a server: Multi-Paxos over batches of
 * ranges (struct batch).  Pure: no sockets, no clock, no disk, no rand().
 * Messages, time and storage come in and go out through this interface, like
 * a raft_io: the host supplies struct paxos_io, calls paxos_tick() with its
 * clock, paxos_recv() with each decoded message, and paxos_items_changed()
 * when its ingest log gained items.  doc/paxos.md describes the algorithm,
 * the persistence rule, the batching rule and every message byte by byte.
 *
 * Callbacks run synchronously inside paxos_* calls and must not call back
 * into the same struct paxos.  Pointers passed to callbacks are valid only
 * during the call.
 */
#ifndef MTR_PAXOS_H
#define MTR_PAXOS_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "stats.h"

/* Most members of one configuration; node ids are 0 .. PAXOS_MAX_ID - 1
 * (never reused: doc/paxos.md, "Membership"). */
#define PAXOS_MAX_NODES BATCH_CONF_MAX
#define PAXOS_MAX_ID BATCH_ID_MAX
/* alpha: a configuration chosen at instance c is in force from c + this on
 * (doc/paxos.md, "Membership").  Part of the protocol: every server of a
 * cluster must use the same value. */
#define PAXOS_CONF_DELAY 8u
/* Fresh instances a leader keeps in flight by default (paxos.pipeline;
 * chosen by measurement: doc/performance.md "Pipelined ordering"). */
#define PAXOS_PIPELINE_DEFAULT 1u
/* Destination meaning "every other member". */
#define PAXOS_BROADCAST 0xffffffffu
/* Accepted ballot reported for an instance known to be chosen. */
#define PAXOS_BALLOT_CHOSEN UINT64_MAX
/* Most entries in one PROMISE or CHOSEN message, marks in one WATERMARK. */
#define PAXOS_MAX_ENTRIES 64u
#define PAXOS_MAX_MARKS 1024u

/*
 * A ballot is (round << 8) | node id: totally ordered, unique per node.
 * Rounds are 56 bits; paxos_ballot() saturates at PAXOS_ROUND_MAX instead of
 * wrapping (a wrapped round would be LOWER than the promise it must beat).
 */
#define PAXOS_ROUND_MAX ((UINT64_C(1) << 56) - 1)
static inline uint64_t paxos_ballot(uint64_t round, uint32_t node)
{
	return ((round < PAXOS_ROUND_MAX ? round : PAXOS_ROUND_MAX) << 8) | (node & 0xff);
}
static inline uint64_t paxos_ballot_round(uint64_t b) { return b >> 8; }
static inline uint32_t paxos_ballot_node(uint64_t b) { return (uint32_t)(b & 0xff); }

/*
 * The ballot window (doc/paxos.md, "Bounded ballots").  Let R be the round
 * of this node's durable promise.  A PREPARE, ACCEPT, HEARTBEAT or NACK whose
 * round is above R + PAXOS_ROUND_WINDOW is dropped (counted in
 * ballots_refused): it can neither raise the promise nor depose a leader, so
 * one forged PREPARE with ballot 0xffffffffffffff01 changes nothing.  A
 * ballot a node merely hears of counts for its next election only up to
 * R + PAXOS_ROUND_STEP, so an honest candidate's round is at most
 * R + PAXOS_ROUND_STEP + 1.
 *
 * Why honest traffic is never refused for good: honest nodes whose promises
 * are within PAXOS_ROUND_STEP of each other always accept each other's
 * ballots (STEP + 1 <= WINDOW).  A node further behind (down for a long
 * time) drops the leader's messages, but each of them raises what it has
 * heard of to R + STEP, so each of its own (failed, harmless: lower than
 * everyone's promise) elections raises R by STEP + 1; after gap / STEP
 * elections its window reaches the leader and it follows.  A majority
 * behind one node far ahead climbs the same way through its leader
 * (PAXOS_CLIMB_TIMEOUTS).  Honest rounds grow by one per election, so a gap
 * over STEP (2^19 elections) is itself rare.  Dropping is always safe: Paxos
 * tolerates any lost message.
 *
 * What it costs an attacker with the cluster key: rounds climb at most
 * WINDOW per durable promise (one fdatasync each) and STEP per election, so
 * exhausting the 2^56 rounds takes 2^36 sequential promises.
 */
#define PAXOS_ROUND_WINDOW (UINT64_C(1) << 20)
#define PAXOS_ROUND_STEP (PAXOS_ROUND_WINDOW / 2)
/* A leader that dropped a ballot beyond its window runs phase 1 again,
 * PAXOS_ROUND_STEP + 1 rounds higher, at most once per this many election
 * timeouts: so a stable majority also climbs to a peer far AHEAD of it (one
 * that was partitioned alone for days), and a flood of forged ballots costs
 * at most one phase 1 (a round trip) per this many timeouts. */
#define PAXOS_CLIMB_TIMEOUTS 4u
/* Check-quorum (doc/paxos.md, "A stable leader"): a leader that heard from
 * no majority, itself included, during this many election timeouts steps
 * down.  Two, not one: a follower reports every heartbeat period, and with
 * the simulator's T = 4 H one timeout held only 4 reports, so 3 % loss
 * deposed a healthy leader about once in 5,000 seeds. */
#define PAXOS_QUORUM_TIMEOUTS 2u
/* Dropped ballots at or above this round are not climbed towards at all:
 * honest rounds grow by 1 per election, or PAXOS_ROUND_STEP + 1 per climb,
 * so no honest cluster reaches 2^55 (2^36 climbs); up there are only
 * forgeries and the promises they left on disk before the window existed
 * (0xffffffffffffff01).  Following them would only spend rounds, and would
 * let a node that is AHEAD run away from the ones climbing towards it. */
#define PAXOS_ROUND_CLIMB_MAX (UINT64_C(1) << 55)

/*
 * Message fields: X(FLAG, member, kind).  Encoded in this order, each only
 * when the message type carries it (PAXOS_MSG_MAP).  kind is u64, u8,
 * value (a batch), entries or marks.
 */
#define PAXOS_FIELD_MAP(X)              \
	X(BALLOT, ballot, u64)          \
	X(INST, inst, u64)              \
	X(COMMIT, commit, u64)          \
	X(LAST, last, u64)              \
	X(MORE, more, u8)               \
	X(VALUE, value, value)          \
	X(ENTRIES, entries, entries)    \
	X(MARKS, marks, marks)          \
	X(LEADER, leader, u64)          \
	X(GRANT, grant, u8)

enum paxos_field_bit {
#define PAXOS__FBIT(flag, member, kind) PAXOS_FB_##flag,
	PAXOS_FIELD_MAP(PAXOS__FBIT)
#undef PAXOS__FBIT
};
enum paxos_field {
#define PAXOS__FFLAG(flag, member, kind) PF_##flag = 1u << PAXOS_FB_##flag,
	PAXOS_FIELD_MAP(PAXOS__FFLAG)
#undef PAXOS__FFLAG
};

/*
 * Message types: X(NAME, value, fields, summary).  Values are part of the
 * protocol: append, never renumber.
 */
#define PAXOS_MSG_MAP(X)                                                                          \
	X(PREPARE, 1, PF_BALLOT | PF_INST, "phase 1a: promise ballot for instances >= inst")      \
	X(PROMISE, 2, PF_BALLOT | PF_INST | PF_COMMIT | PF_MORE | PF_ENTRIES,                     \
	  "phase 1b: accepted values >= inst; more=1 when entries were cut")                      \
	X(NACK, 3, PF_BALLOT, "refusal: ballot is the higher ballot already promised")            \
	X(ACCEPT, 4, PF_BALLOT | PF_INST | PF_VALUE, "phase 2a: accept value for inst")           \
	X(ACCEPTED, 5, PF_BALLOT | PF_INST, "phase 2b: value accepted at ballot")                 \
	X(HEARTBEAT, 6, PF_BALLOT | PF_INST | PF_COMMIT,                                          \
	  "leader alive; instances <= commit chosen; inst = its first own instance")              \
	X(CATCHUP, 7, PF_INST | PF_LAST, "ask for the chosen values of instances inst..last")     \
	X(CHOSEN, 8, PF_ENTRIES, "chosen values (ballot field is PAXOS_BALLOT_CHOSEN)")           \
	X(SNAPSHOT, 9, PF_INST, "instances <= inst are compacted here: take a snapshot")          \
	X(WATERMARK, 10, PF_MARKS, "the sender's per-stream watermarks")                          \
	X(PREVOTE, 11, PF_BALLOT | PF_COMMIT,                                                     \
	  "pre-vote: would you promise a new leader? ballot it would use; commit = its delivered") \
	X(PREVOTE_REPLY, 12, PF_BALLOT | PF_COMMIT | PF_LEADER | PF_GRANT,                        \
	  "answer to PREVOTE (or a PREPARE refused for a live leader): grant, leader ballot")

enum paxos_msg_type {
#define PAXOS__TENUM(name, value, fields, text) PAXOS_##name = value,
	PAXOS_MSG_MAP(PAXOS__TENUM)
#undef PAXOS__TENUM
};

/* One (instance, accepted ballot, value) triple of PROMISE / CHOSEN. */
struct paxos_entry {
	uint64_t inst;
	uint64_t ballot;
	struct batch value;
};

/*
 * A message, all types in one struct (only the fields of its type matter).
 * Messages built by the core borrow their arrays (valid during send());
 * messages from paxos_msg_decode() own them (paxos_msg_free()).
 */
struct paxos_msg {
	uint8_t type;
	uint8_t more;
	uint8_t grant;   /* PREVOTE_REPLY: 1 granted, 0 refused */
	uint64_t ballot;
	uint64_t inst;
	uint64_t commit;
	uint64_t last;
	uint64_t leader; /* PREVOTE_REPLY: ballot of the live leader the sender vouches for, 0 if none */
	struct batch value;
	uint32_t n_entries;
	struct paxos_entry *entries;
	uint32_t n_marks;
	struct batch_mark *marks;
};

/* An acceptor state change to make durable (see paxos_io.persist). */
struct paxos_persist {
	enum { PAXOS_PERSIST_PROMISE = 1, PAXOS_PERSIST_ACCEPT = 2 } kind;
	uint64_t ballot;            /* promised ballot (both kinds) */
	uint64_t inst;              /* ACCEPT: the instance */
	const struct batch *value;  /* ACCEPT: the accepted value (borrowed) */
};

/* The host side.  data is passed back to every callback. */
struct paxos_io {
	void *data;
	/* Send msg to node `to` (or PAXOS_BROADCAST: every id of paxos_audience()).
	 * Fire and forget: loss is tolerated. */
	void (*send)(void *data, uint32_t to, const struct paxos_msg *msg);
	/* Make the change durable, return only when it is; 0 or a negative
	 * code (the core then does not answer).  For an ACCEPT the host may
	 * instead return PAXOS_PERSIST_LATER: the change is written and will
	 * be durable at the host's next group commit; the core then holds the
	 * answer (ACCEPTED, or its own vote as leader) until the host calls
	 * paxos_persisted() after that commit (doc/paxos.md "Persistence"). */
	int (*persist)(void *data, const struct paxos_persist *change);
	/* Does this server hold every item of stream up to last? (inv. 4) */
	bool (*holds)(void *data, uint64_t stream, uint64_t last);
	/* Obtain the items first..last of stream (first: the first one not
	 * ordered here yet, or lower); call paxos_items_changed() when they
	 * arrived.  May be called again for the same range. */
	void (*fetch)(void *data, uint64_t stream, uint64_t first, uint64_t last);
	/* Instance inst is chosen; called in order 1, 2, 3 ... exactly once
	 * per incarnation, from the instance after the one given to
	 * paxos_install().  The host applies it.  value is the chosen value
	 * read cumulatively against the cursor (doc/paxos.md "The leader's
	 * batching rule"): per stream, the items from the last seq ordered so
	 * far + 1 up to the value's mark, so every range starts right after
	 * the cursor (invariant 3); streams whose mark is not above the
	 * cursor are left out, and the configuration is kept. */
	void (*chosen)(void *data, uint64_t inst, const struct batch *value);
	/* Node `from` compacted instances <= inst that this node lacks: the
	 * host must install a snapshot, then call paxos_install().  May be
	 * NULL. */
	void (*snapshot_needed)(void *data, uint32_t from, uint64_t inst);
};

/* paxos_io.persist: written, durable at the host's next group commit. */
#define PAXOS_PERSIST_LATER 1

/* Creation parameters. */
struct paxos_config {
	uint32_t id;           /* this node, 0 .. PAXOS_MAX_ID - 1 */
	uint32_t n;            /* initial members 0 .. n-1, all voters (1 .. PAXOS_MAX_NODES); used when conf is NULL */
	const struct batch_conf *conf; /* or the initial configuration (copied); NULL: from n */
	uint32_t window;       /* most recovery instances in flight (default 8) */
	uint32_t pipeline;     /* most fresh instances in flight, 1 .. PAXOS_CONF_DELAY
				* (doc/paxos.md "The leader's batching rule"; 0: PAXOS_PIPELINE_DEFAULT) */
	uint32_t heartbeat_ms; /* H: heartbeat and retransmit period (default 50) */
	uint32_t election_ms;  /* T: election timeout in [T, 2T) (default 500) */
	uint64_t seed;         /* randomness for the election timeouts */
};

enum paxos_role { PAXOS_FOLLOWER = 0, PAXOS_CANDIDATE = 1, PAXOS_LEADER = 2 };

/* What paxos_status() reports. */
struct paxos_status {
	enum paxos_role role;
	uint64_t ballot;    /* promised ballot */
	uint32_t leader;    /* node id of the leader followed, or PAXOS_BROADCAST if none */
	uint64_t chosen;    /* highest instance known chosen with all before it */
	uint64_t applied;   /* highest instance delivered to the host */
	uint64_t compacted; /* highest instance forgotten */
	uint64_t voters;    /* ids (bit i = id i) voting at instance applied + 1 */
	uint64_t members;   /* ids that are members (voters and learners) there */
	uint64_t removed;   /* ids known to be removed: their messages are refused */
	uint64_t conf_next; /* first instance of a pending configuration, 0 if none */
	uint64_t conf_since; /* first instance of the configuration in force (0: the initial one) */
	bool self_removed;  /* this node was removed from the cluster */
};

/* Counters of the core (monotonic since creation): X(member, meaning). */
#define PAXOS_STATS_MAP(X)                                                              \
	X(msgs_in, "messages received from peers")                                      \
	X(msgs_out, "messages sent (a broadcast counts once)")                          \
	X(elections, "elections started")                                               \
	X(leader_terms, "times this node became leader")                                \
	X(step_downs, "times this node stopped leading or being a candidate")           \
	X(proposed, "instances proposed as leader")                                     \
	X(accepted, "accepts persisted as acceptor")                                    \
	X(accepts_deferred, "accepts waiting for items not yet held (invariant 4)")     \
	X(nacks_sent, "ACCEPT or PREPARE refused for a lower ballot")                   \
	X(nacks_received, "NACKs received")                                             \
	X(delivered, "instances handed to the host in order")                           \
	X(catchups_sent, "CATCHUP requests sent")                                       \
	X(snapshots_needed, "times a peer told this node to install a snapshot")        \
	X(pipelined, "fresh instances proposed while an earlier one was still in flight") \
	X(marks_behind, "ranges delivered whose mark was already passed (nothing new applied)") \
	X(marks_bridged, "ranges delivered from below their first seq (an instance before became a no-op)") \
	X(ballots_refused, "messages dropped: ballot beyond promise + PAXOS_ROUND_WINDOW")  \
	X(rounds_exhausted, "elections not started: the round is at PAXOS_ROUND_MAX")          \
	X(prevotes, "pre-votes started (an election timeout passed without a leader)")         \
	X(prevotes_refused, "PREVOTE or PREPARE of a challenger refused: a live leader is heard") \
	X(quorum_lost, "step-downs of a leader that heard from no majority (check-quorum)")    \
	X(stalls, "ticks after a gap of an election timeout or more (paused, stalled)")          \
	X(conf_changes, "configurations delivered (chosen in the log)")                         \
	X(conf_prepares, "phase 1 extended by a leader to the voters of a new configuration") \
	X(removed_refused, "messages dropped: from a node removed from the cluster")

struct paxos_stats {
	PAXOS_STATS_MAP(STATS_FIELD)
};

struct paxos;

/* Create a core; *out is owned by the caller (paxos_destroy).  io is copied.
 * 0, MTR_EINVAL (bad config) or MTR_ENOMEM. */
int paxos_create(struct paxos **out, const struct paxos_config *cfg, const struct paxos_io *io);

/* Free the core and everything it holds; NULL is fine. */
void paxos_destroy(struct paxos *p);

/* Restart: restore the persisted promised ballot (before the first tick). */
int paxos_restore_promise(struct paxos *p, uint64_t ballot);

/* Restart: restore one persisted accepted (inst, ballot, value); value is
 * copied.  Instances <= the installed one are ignored.  0 or MTR_ENOMEM. */
int paxos_restore_accepted(struct paxos *p, uint64_t inst, uint64_t ballot, const struct batch *value);

/* Restart or snapshot: configuration c was chosen at instance inst (in
 * force from inst + PAXOS_CONF_DELAY).  Call it after paxos_install() for
 * the configuration in force at the installed instance + 1 and for every
 * one chosen in the PAXOS_CONF_DELAY instances up to it (giving more is
 * harmless).  c is copied.  0, MTR_EINVAL (invalid c) or MTR_ENOMEM. */
int paxos_restore_conf(struct paxos *p, uint64_t inst, const struct batch_conf *c);

/*
 * Ask for a configuration change (doc/paxos.md, "Membership"): the leader
 * proposes c as the value of its next fresh instance, and it is in force
 * PAXOS_CONF_DELAY instances after the one that chose it.  0 (proposed or
 * about to be: watch paxos_status().conf_next and members; a leader change
 * may drop it), MTR_EAGAIN (not the leader), MTR_EBUSY (a change is pending),
 * MTR_EINVAL (c invalid, or it names a removed id: ids are never reused).
 */
int paxos_change(struct paxos *p, const struct batch_conf *c);

/* The configuration in force at instance inst, copied into *out: for an
 * instance beyond applied + PAXOS_CONF_DELAY the latest known one (a later
 * change may still replace it), for one at or below applied the one in
 * force at applied + 1 (older ones are forgotten). */
void paxos_conf_at(const struct paxos *p, uint64_t inst, struct batch_conf *out);

/* The ids a PAXOS_BROADCAST goes to: every member (voter or learner) of
 * the configurations in force or pending, but this node and removed ids.
 * May be called from the send() callback. */
uint64_t paxos_audience(const struct paxos *p);

/* The host has applied every instance <= inst (restart or snapshot);
 * cursor is the per-stream last ordered seq after inst (copied).  Delivery
 * resumes at inst + 1.  Ignored when inst is not above what was delivered. */
int paxos_install(struct paxos *p, uint64_t inst, const struct batch_order *cursor);

/* Advance time to now_ms (monotonic, from the host's clock): heartbeats,
 * retransmissions, elections, watermark reports. */
int paxos_tick(struct paxos *p, uint64_t now_ms);

/* Handle a message from node `from` (decoded and validated by the codec;
 * msg is only borrowed).  Unexpected or stale messages are ignored;
 * MTR_ESTALE when `from` was removed from the cluster: the message is
 * dropped and counted in removed_refused, and the sender is told (a
 * PREVOTE_REPLY with this node's commit, once per election timeout; its
 * CATCHUP is answered) so that it learns it was removed. */
int paxos_recv(struct paxos *p, uint32_t from, const struct paxos_msg *msg);

/* The host's ingest log gained items: deferred accepts are re-examined. */
int paxos_items_changed(struct paxos *p);

/* The host's group commit made every change its persist answered with
 * PAXOS_PERSIST_LATER durable: the held answers go out now (a leader counts
 * its own vote).  Call it only after that commit succeeded. */
void paxos_persisted(struct paxos *p);

/* Instances <= k (at most the applied one) may be forgotten. */
int paxos_compact(struct paxos *p, uint64_t k);

/* This server's watermarks (copied; streams in any order): reported to the
 * leader, used by the leader itself for batching.  0, MTR_EINVAL, MTR_ENOMEM. */
int paxos_watermarks(struct paxos *p, const struct batch_mark *marks, uint32_t n);

/*
 * on = true: the host cannot make anything durable for now (its disk is
 * full; doc/paxos.md "Standby").  A leader or candidate steps down; no
 * pre-vote or election is started, no PREPARE is answered and every
 * PREVOTE is refused, so no one counts on a promise this node could not
 * keep (the host's persist refuses ACCEPTs meanwhile).  It still follows a
 * leader it had promised and learns chosen values (no durable write
 * needed; a higher ballot's HEARTBEAT gives it the commit to catch up to).
 * on = false: back to normal; it waits an election timeout to hear the
 * leader before it may ask for an election.
 */
void paxos_standby(struct paxos *p, bool on);
/* Fill *st with the current state. */
void paxos_status(const struct paxos *p, struct paxos_status *st);

/* Copy the counters into *st. */
void paxos_stats(const struct paxos *p, struct paxos_stats *st);

/* Name of a message type ("PREPARE"), "?" when unknown. */
const char *paxos_msg_name(unsigned type);

#endif
