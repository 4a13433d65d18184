/*
 * client_members.c - mtr_add_server, mtr_promote_server, mtr_remove_server
 * (metronome.h; doc/client.md "Membership"): one MEMBERSHIP frame to the
 * proxy, which forwards it to the leader, and its answer (doc/protocol.md
 * "MEMBERSHIP").  The answer comes once the new configuration is chosen;
 * it is in force PAXOS_CONF_DELAY (8) instances later (doc/paxos.md
 * "Membership").
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "cproto.h"
#include "util.h"
#include "wire_server.h"

/* The proxy answers within its own deadline (30 s); a little more here. */
#define MEMBER_WAIT_MS 40000

struct mem {
	mtr *db;
	uint64_t token, end_ns;
	struct wire_member ans;
	char msg[WIRE_MEMBER_MSG_MAX + 1];
};

/* One frame.  0: go on; 1: the answer came (x->ans, its message copied
 * to x->msg); < 0: failed (recorded on db). */
static int mem_frame(void *arg, const struct cproto_frame *f)
{
	struct mem *x = arg;
	if (f->type != CPROTO_T_MEMBERSHIP || cproto_get_member(f, &x->ans) != 0 || x->ans.kind != WIRE_MEMBER_ANSWER)
		return client_err(x->db, MTR_EIO, "unexpected %s frame from the proxy", cproto_type_name(f->type));
	if (x->ans.token != x->token)
		return 0; /* the answer of an earlier call that gave up */
	memcpy(x->msg, x->ans.msg, x->ans.msg_len);
	x->msg[x->ans.msg_len] = '\0';
	return 1;
}

static int mem_frames(void *arg)
{
	struct mem *x = arg;
	return client_frames(x->db, mem_frame, x);
}

static int mem_wait_ms(void *arg)
{
	const struct mem *x = arg;
	uint64_t now = now_mono_ns();
	return now >= x->end_ns ? 0 : (int)((x->end_ns - now) / 1000000u) + 1;
}

static int member_change(mtr *db, uint8_t op, uint32_t id, const char *addr, uint32_t *out_id)
{
	if (db == NULL)
		return MTR_EINVAL;
	if (db->head || db->in_txn)
		return client_err(db, MTR_EBUSY,
				  "the handle has requests in flight or an open transaction: finish them first");
	static _Atomic uint64_t counter;
	uint64_t token = (now_mono_ns() << 8) ^ ++counter;
	if (token == 0)
		token = 1;
	struct wire_member m = {.kind = WIRE_MEMBER_REQUEST, .token = token, .op = op, .id = (uint8_t)id};
	if (op == WIRE_MEMBER_ADD) {
		size_t n = addr ? strlen(addr) : 0;
		if (n == 0 || n > WIRE_MEMBER_ADDR_MAX)
			return client_err(db, MTR_EINVAL, "give the new server's address as IP:PORT (at most %u bytes)",
					  WIRE_MEMBER_ADDR_MAX);
		m.addr = addr;
		m.addr_len = (uint8_t)n;
	} else if (id >= WIRE_MEMBER_ID_MAX) {
		return client_err(db, MTR_EINVAL, "%u is not a server id (0..%u)", id, WIRE_MEMBER_ID_MAX - 1);
	}
	uint64_t deadline = db->timeout_ms > 0 ? now_mono_ns() + (uint64_t)db->timeout_ms * 1000000u : 0;
	int rc = client_conn_ensure(db, deadline);
	if (rc != 0)
		return rc;
	if (cproto_put_member(&db->out, &m) != 0)
		return client_err(db, MTR_ENOMEM, "out of memory");
	struct mem x = {.db = db, .token = token, .end_ns = now_mono_ns() + (uint64_t)MEMBER_WAIT_MS * 1000000u};
	rc = client_exchange(db, mem_frames, mem_wait_ms, &x);
	if (rc == MTR_ETIMEDOUT)
		return client_err(db, MTR_ETIMEDOUT,
				  "no answer from the proxy within %d s: the change may or may not be made; look at "
				  "mtr_members",
				  MEMBER_WAIT_MS / 1000);
	if (rc != 1)
		return rc;
	if (x.ans.status != 0)
		return client_err(db, x.ans.status, "%s", x.msg);
	if (out_id)
		*out_id = x.ans.id;
	if (x.ans.instance > db->last_instance)
		db->last_instance = x.ans.instance;
	client_ok(db);
	return 0;
}

MTR_API int mtr_add_server(mtr *db, const char *addr, uint32_t *new_id)
{
	return member_change(db, WIRE_MEMBER_ADD, 0, addr, new_id);
}

MTR_API int mtr_promote_server(mtr *db, uint32_t id)
{
	return member_change(db, WIRE_MEMBER_PROMOTE, id, NULL, NULL);
}

MTR_API int mtr_remove_server(mtr *db, uint32_t id)
{
	return member_change(db, WIRE_MEMBER_REMOVE, id, NULL, NULL);
}
