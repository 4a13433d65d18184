/*
 * fuzz_paxos.c - libFuzzer target for the Paxos message codec and the core's
 * handling of hostile messages.
 *
 * The input is one message payload.  Decoding arbitrary bytes must never
 * read out of bounds or leak, and whatever decodes must re-encode to the
 * very same bytes and print.  A decoded message is then handed to two cores
 * of a 3-node cluster, a fresh follower and a leader (elected by a scripted
 * prelude), whose own answers must encode; neither may crash or deliver out
 * of order.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paxos_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a stub host ---- */

static uint64_t delivered;
static uint64_t sent_ballot; /* ballot of the last PREPARE sent */
static uint64_t sent_prevote; /* ballot of the last PREVOTE sent */

static void h_send(void *d, uint32_t to, const struct paxos_msg *m)
{
	(void)d;
	(void)to;
	static uint8_t buf[1 << 20];
	if (paxos_msg_encode(m, buf, sizeof buf) < 0)
		abort();
	if (m->type == PAXOS_PREPARE)
		sent_ballot = m->ballot;
	if (m->type == PAXOS_PREVOTE)
		sent_prevote = m->ballot;
}
static int h_persist(void *d, const struct paxos_persist *c) { (void)d; (void)c; return 0; }
static bool h_holds(void *d, uint64_t stream, uint64_t last) { (void)d; (void)last; return stream % 2 == 0; }
static void h_fetch(void *d, uint64_t s, uint64_t f, uint64_t l) { (void)d; (void)s; (void)f; (void)l; }
static void h_chosen(void *d, uint64_t inst, const struct batch *v)
{
	(void)d;
	if (inst != delivered + 1 || batch_validate(v) != 0)
		abort();
	delivered = inst;
}
static void h_snap(void *d, uint32_t from, uint64_t inst) { (void)d; (void)from; (void)inst; }

static struct paxos *core(uint32_t id)
{
	struct paxos_io io = { NULL, h_send, h_persist, h_holds, h_fetch, h_chosen, h_snap };
	/* pipelined (paxos.pipeline 4): decoded values meet a leader with several fresh instances in flight */
	struct paxos_config cfg = { .id = id, .n = 3, .pipeline = 4, .heartbeat_ms = 10, .election_ms = 40, .seed = 1 };
	struct paxos *p = NULL;
	if (paxos_create(&p, &cfg, &io) != 0)
		abort();
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct paxos_msg m;
	if (paxos_msg_decode(&m, data, size) != 0)
		return 0;
	size_t need = paxos_msg_encoded_size(&m);
	uint8_t *buf = malloc(need ? need : 1);
	if (buf != NULL) {
		int len = paxos_msg_encode(&m, buf, need);
		if (len < 0 || (size_t)len != size || memcmp(buf, data, size) != 0)
			abort();
		free(buf);
	}
	char line[512];
	paxos_msg_print(&m, line, sizeof line);

	/* A follower. */
	delivered = 0;
	struct paxos *f = core(0);
	paxos_tick(f, 1);
	paxos_recv(f, 1, &m);
	paxos_recv(f, 2, &m);
	paxos_tick(f, 30);
	paxos_items_changed(f);
	paxos_destroy(f);

	/* A leader: times out, pre-vote granted and promised by node 1, then
	 * gets the message. */
	delivered = 0;
	struct paxos *l = core(0);
	for (uint64_t t = 1; t <= 100; t += 10)
		paxos_tick(l, t);
	struct paxos_msg pv = { .type = PAXOS_PREVOTE_REPLY, .ballot = sent_prevote, .grant = 1 };
	paxos_recv(l, 1, &pv);
	struct paxos_msg pr = { .type = PAXOS_PROMISE, .ballot = sent_ballot, .inst = 1 };
	paxos_recv(l, 1, &pr);
	struct batch_mark wm[2] = { { 2, 10 }, { 3, 4 } };
	paxos_watermarks(l, wm, 2);
	paxos_recv(l, 2, &m);
	paxos_recv(l, 1, &m);
	/* a configuration in the message: the leader proposes it as a change
	 * (doc/paxos.md, "Membership"), then delivers it when chosen */
	if (m.value.conf != NULL && paxos_change(l, m.value.conf) == 0) {
		struct paxos_msg acc = { .type = PAXOS_ACCEPTED, .ballot = sent_ballot, .inst = 2 };
		paxos_recv(l, 1, &acc);
		acc.inst = 1;
		paxos_recv(l, 1, &acc);
	}
	paxos_tick(l, 200);
	paxos_items_changed(l);
	paxos_compact(l, 1);
	paxos_destroy(l);

	paxos_msg_free(&m);
	return 0;
}
