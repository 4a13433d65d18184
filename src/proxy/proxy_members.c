/*
 * proxy_members.c - a client's membership change (doc/protocol.md
 * "MEMBERSHIP", doc/proxy.md "Membership changes"): the MEMBERSHIP frame
 * is checked (who may: proxy.users / proxy.admins), forwarded as a
 * MEMBERSHIP datagram to the server last seen leading, sent again every
 * PXMEM_RETRY_MS without an answer and at once to the next leader when a
 * server answers "not the leader", and its answer relayed to the client.
 * The answer is not ordered with the connection's ANSWERs.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metronome.h"
#include "proxy_int.h"
#include "wire_server.h"

/* Queue the answer of slot-less request ctoken on c. */
static void client_answer(struct proxy *p, struct client *c, uint64_t ctoken, int32_t status, uint8_t id,
			  uint64_t instance, const char *msg)
{
	if (c == NULL || c->dead)
		return;
	size_t n = strlen(msg);
	struct wire_member a = {.kind = WIRE_MEMBER_ANSWER, .token = ctoken, .status = status, .id = id,
				.instance = instance, .msg = msg,
				.msg_len = (uint16_t)(n > WIRE_MEMBER_MSG_MAX ? WIRE_MEMBER_MSG_MAX : n)};
	if (cproto_put_member(&c->out, &a) == 0)
		pxcli_mark_dirty(p, c);
}

/* Whether c's user may change the membership (doc/security.md). */
static int allowed(const struct proxy *p, const struct client *c)
{
	if (p->auth == NULL || c->attached || p->cfg.admins[0] == '\0')
		return 1; /* no users: as any write; users: every one logged in */
	size_t ul = strlen(c->user);
	for (const char *a = p->cfg.admins; *a;) {
		while (*a == ',' || *a == ' ')
			a++;
		size_t n = strcspn(a, ", ");
		if (n == ul && n > 0 && memcmp(a, c->user, n) == 0)
			return 1;
		a += n;
	}
	return 0;
}

static void send_one(struct proxy *p, struct pxmem *x)
{
	if (p->leader == PXMEM_NO_LEADER || !(p->servers & (UINT64_C(1) << p->leader)))
		return;
	struct wire_member m = {.kind = WIRE_MEMBER_REQUEST, .token = x->token, .op = x->op, .id = x->id,
				.addr = x->addr, .addr_len = x->addr_len};
	uint8_t dg[WIRE_MEMBER_MAX + WIRE_OVERHEAD];
	long n = wire_member_build(dg, &p->from, &m);
	if (n <= 0)
		return;
	pxnet_send_to_server(p, dg, (size_t)n, p->leader);
	x->server = p->leader;
	x->sent = 1;
	x->sent_ms = p->now_ms;
}

int pxmem_on_frame(struct proxy *p, struct client *c, const struct cproto_frame *f)
{
	struct wire_member m;
	if (cproto_get_member(f, &m) != 0 || m.kind != WIRE_MEMBER_REQUEST)
		return MTR_EMALFORMED;
	const char *op = wire_member_op_name(m.op);
	if (!allowed(p, c)) {
		char msg[160];
		snprintf(msg, sizeof msg, "%s: user %s may not change the membership (proxy.admins)", op, c->user);
		int warn = p->now_ms >= p->mem_warn_ms; /* at most one a minute at warn: users may flood */
		if (warn)
			p->mem_warn_ms = p->now_ms + 60000;
		mtr_log(warn ? LOG_WARN : LOG_INFO,
			"proxy %u: membership change refused to user %s from %s: not in proxy.admins", p->cfg.id,
			c->user, c->src);
		client_answer(p, c, m.token, MTR_EAUTH, 0, 0, msg);
		return 0;
	}
	struct pxmem *x = NULL;
	for (unsigned i = 0; i < PXMEM_MAX; i++) {
		if (p->mem[i].c == c) {
			client_answer(p, c, m.token, MTR_EBUSY, 0, 0,
				      "a membership change of this connection waits for its answer already");
			return 0;
		}
		if (p->mem[i].first_ms == 0 && x == NULL)
			x = &p->mem[i];
	}
	if (x == NULL) {
		client_answer(p, c, m.token, MTR_EBUSY, 0, 0,
			      "this proxy relays the most membership changes it can at once: try again");
		return 0;
	}
	if (p->mem_token == 0)
		p->mem_token = p->prng | 1; /* random: a restarted proxy does not repeat a token */
	*x = (struct pxmem){.c = c, .ctoken = m.token, .token = ++p->mem_token, .op = m.op, .id = m.id,
			    .addr_len = m.addr_len, .first_ms = p->now_ms};
	if (x->token == 0)
		x->token = ++p->mem_token;
	memcpy(x->addr, m.addr, m.addr_len);
	if (m.op == WIRE_MEMBER_ADD)
		mtr_log(LOG_INFO, "proxy %u: membership change from %s%s%s: add %.*s", p->cfg.id, c->src,
			c->user[0] ? " user " : "", c->user, (int)m.addr_len, m.addr);
	else
		mtr_log(LOG_INFO, "proxy %u: membership change from %s%s%s: %s server %u", p->cfg.id, c->src,
			c->user[0] ? " user " : "", c->user, op, m.id);
	send_one(p, x);
	return 0;
}

void pxmem_on_answer(struct proxy *p, uint32_t from, const uint8_t *payload, size_t len)
{
	struct wire_member m;
	if (wire_member_decode(payload, len, &m) != 0 || m.kind != WIRE_MEMBER_ANSWER) {
		p->drops[PROXY_DROP_type]++;
		return;
	}
	for (unsigned i = 0; i < PXMEM_MAX; i++) {
		struct pxmem *x = &p->mem[i];
		if (x->first_ms == 0 || x->token != m.token)
			continue;
		if (m.status == MTR_EAGAIN) { /* not the leader, nothing done: the next leader */
			if (p->leader == from)
				p->leader = PXMEM_NO_LEADER;
			x->sent_ms = p->now_ms - PXMEM_RETRY_MS + 100; /* again in 100 ms */
			return;
		}
		char msg[WIRE_MEMBER_MSG_MAX + 1];
		memcpy(msg, m.msg, m.msg_len);
		msg[m.msg_len] = '\0';
		client_answer(p, x->c, x->ctoken, m.status, m.id, m.instance, msg);
		*x = (struct pxmem){0};
		return;
	}
}

void pxmem_tick(struct proxy *p)
{
	for (unsigned i = 0; i < PXMEM_MAX; i++) {
		struct pxmem *x = &p->mem[i];
		if (x->first_ms == 0)
			continue;
		if (p->now_ms - x->first_ms >= PXMEM_DEADLINE_MS) {
			if (x->sent)
				client_answer(p, x->c, x->ctoken, MTR_EUNKNOWN, 0, 0,
					      "no answer from the leader within 30 s: the change may or may not be made; "
					      "look at mtr_members");
			else
				client_answer(p, x->c, x->ctoken, MTR_EAGAIN, 0, 0,
					      "no leader known within 30 s (is a majority of the servers up?): nothing "
					      "was done; try again");
			*x = (struct pxmem){0};
			continue;
		}
		if (p->now_ms - x->sent_ms >= PXMEM_RETRY_MS)
			send_one(p, x);
	}
}

void pxmem_client_gone(struct proxy *p, struct client *c)
{
	for (unsigned i = 0; i < PXMEM_MAX; i++)
		if (p->mem[i].c == c)
			p->mem[i].c = NULL; /* still relayed (it may be chosen), answered to nobody */
}
