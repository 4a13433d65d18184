/*
 * server_snap.c - the snapshot side channel of the server object
 * (server_int.h; doc/server.md, "Snapshot transfer"): a thread serves
 * snapshots of the replica database to peers over TCP on the server's own
 * ip:port; when the Paxos core needs a snapshot (a peer compacted instances
 * this server lacks) a thread fetches one, checks its trailer, and the
 * network thread installs it (stop the threads, restore, reopen, restart
 * delivery after the snapshot's instance).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <sodium.h>

#include "apply.h"
#include "batch.h"
#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "server_int.h"
#include "transport.h"
#include "util.h"

/*
 * ---- snapshots: a TCP side channel (doc/server.md, "Snapshot transfer") ----
 *
 * The exchange, every MAC a keyed BLAKE2b of 16 bytes (crypto_generichash
 * under the cluster key; unkeyed in a cluster.insecure cluster):
 *
 *   server -> client  challenge  "MTRSNAPC", nonce_s (16 random bytes)
 *   client -> server  request    "MTRSNAPQ", cluster u32, server id u32,
 *                                nonce_c (16), tag = MAC(nonce_s || request[0..32))
 *   server -> client  response   "MTRSNAPR", instance u64, size u64, the
 *                                file, trailer = MAC(nonce_c || nonce_s ||
 *                                response header || file)
 *
 * The server answers only a request from another configured server, from
 * that server's IP address (the client binds it), whose tag checks in
 * constant time under cluster.key or cluster.key_next; anything else is
 * refused and counted (server.drop.snapshot).  Fresh nonces on both sides
 * make a recorded exchange useless for a replay.
 */

#define SNAP_NONCE 16
#define SNAP_TAG 16
#define SNAP_CHAL_SIZE (8 + SNAP_NONCE)
#define SNAP_REQ_BODY (16 + SNAP_NONCE)           /* magic, cluster, id, nonce_c */
#define SNAP_REQ_SIZE (SNAP_REQ_BODY + SNAP_TAG)
#define SNAP_HDR_SIZE 24
#define SNAP_IO_TIMEOUT_S 10

static const char snap_chal_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'C'};
static const char snap_req_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'Q'};
static const char snap_resp_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'R'};

/* Start a MAC under key k (NULL: unkeyed, cluster.insecure). */
static void mac_init(crypto_generichash_state *st, const uint8_t *k)
{
	crypto_generichash_init(st, k, k ? WIRE_KEY_SIZE : 0, SNAP_TAG);
}

/* The request's tag under key k: MAC(nonce_s || req[0..SNAP_REQ_BODY)). */
static void snap_req_tag(const uint8_t *k, const uint8_t *nonce_s, const uint8_t *req, uint8_t tag[SNAP_TAG])
{
	crypto_generichash_state st;
	mac_init(&st, k);
	crypto_generichash_update(&st, nonce_s, SNAP_NONCE);
	crypto_generichash_update(&st, req, SNAP_REQ_BODY);
	crypto_generichash_final(&st, tag, SNAP_TAG);
}

/* Whether a request's tag is right under cluster.key or cluster.key_next
 * (constant-time comparisons). */
static int snap_req_ok(const struct wire_key *key, const uint8_t *nonce_s, const uint8_t *req)
{
	uint8_t t[SNAP_TAG];
	snap_req_tag(key->set ? key->k : NULL, nonce_s, req, t);
	if (crypto_verify_16(t, req + SNAP_REQ_BODY) == 0)
		return 1;
	if (!key->next_set)
		return 0;
	snap_req_tag(key->next, nonce_s, req, t);
	return crypto_verify_16(t, req + SNAP_REQ_BODY) == 0;
}

/* Start the response trailer's MAC under k: nonce_c || nonce_s || header. */
static void snap_resp_init(crypto_generichash_state *st, const uint8_t *k, const uint8_t *nonce_c,
			   const uint8_t *nonce_s, const uint8_t *hdr)
{
	mac_init(st, k);
	crypto_generichash_update(st, nonce_c, SNAP_NONCE);
	crypto_generichash_update(st, nonce_s, SNAP_NONCE);
	crypto_generichash_update(st, hdr, SNAP_HDR_SIZE);
}

static int io_full(int fd, void *buf, size_t n, int wr)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = wr ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return MTR_EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void sock_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = SNAP_IO_TIMEOUT_S};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Refuse a snapshot request: count it, and log the first of a minute. */
static void snap_refuse(struct server *s, const char *from, const char *why)
{
	atomic_fetch_add(&s->snap_refused, 1);
	uint64_t now = now_mono_ns() / 1000000u;
	if (now >= s->snap_warn_ms) {
		s->snap_warn_ms = now + 60000;
		mtr_log(LOG_WARN,
			"server %u: snapshot request from %s refused: %s (counted in server.drop.snapshot; the next "
			"refusals of this minute are only counted)",
			s->cfg.id, from, why);
	}
}

/* Serve one snapshot request on connection fd, from peer (the TCP source). */
static void snap_serve(struct server *s, int fd, const struct transport_addr *peer)
{
	const struct clusterconf *cc = &s->cfg.cc;
	char from[32];
	transport_addr_format(peer, from, sizeof from);
	uint8_t chal[SNAP_CHAL_SIZE], req[SNAP_REQ_SIZE];
	sock_timeouts(fd);
	memcpy(chal, snap_chal_magic, 8);
	randombytes_buf(chal + 8, SNAP_NONCE);
	const uint8_t *nonce_s = chal + 8;
	if (io_full(fd, chal, sizeof chal, 1) != 0 || io_full(fd, req, sizeof req, 0) != 0) {
		snap_refuse(s, from, "no complete request");
		return;
	}
	uint32_t who = ld32(req + 12);
	if (memcmp(req, snap_req_magic, 8) != 0 || ld32(req + 8) != cc->cluster_id) {
		snap_refuse(s, from, "not a snapshot request of this cluster");
		return;
	}
	if (who >= cc->nservers || who == s->cfg.id || cc->servers[who].ip != peer->ip) {
		snap_refuse(s, from, "not from another configured server's address");
		return;
	}
	if (!snap_req_ok(&cc->key, nonce_s, req)) {
		snap_refuse(s, from, "failed authentication: wrong cluster.key?");
		return;
	}
	const uint8_t *nonce_c = req + 16;
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.send", s->cfg.data_dir);
	uint64_t inst = 0;
	int rc = apply_snapshot(s->ap, path, &inst);
	FILE *f = rc == 0 ? fopen(path, "rb") : NULL;
	if (f == NULL) {
		/* a full disk is this server's state (logged once, server_disk.c);
		 * the other server asks again */
		mtr_log(rc == MTR_ENOSPACE ? LOG_WARN : LOG_ERROR, "server %u: cannot make a snapshot for server %u: %s",
			s->cfg.id, who, rc ? mtr_strerror(rc) : strerror(errno));
		unlink(path);
		return;
	}
	fseeko(f, 0, SEEK_END);
	uint64_t size = (uint64_t)ftello(f);
	fseeko(f, 0, SEEK_SET);
	uint8_t hdr[SNAP_HDR_SIZE];
	memcpy(hdr, snap_resp_magic, 8);
	st64(hdr + 8, inst);
	st64(hdr + 16, size);
	crypto_generichash_state st;
	snap_resp_init(&st, cc->key.set ? cc->key.k : NULL, nonce_c, nonce_s, hdr);
	rc = io_full(fd, hdr, sizeof hdr, 1);
	uint8_t buf[65536];
	size_t k;
	while (rc == 0 && (k = fread(buf, 1, sizeof buf, f)) > 0) {
		crypto_generichash_update(&st, buf, k);
		rc = io_full(fd, buf, k, 1);
	}
	if (rc == 0) {
		uint8_t tr[SNAP_TAG];
		crypto_generichash_final(&st, tr, sizeof tr);
		rc = io_full(fd, tr, sizeof tr, 1);
	}
	fclose(f);
	unlink(path);
	mtr_log(LOG_INFO, "server %u: %s snapshot at instance %llu (%llu bytes) to server %u", s->cfg.id,
		rc == 0 ? "sent" : "failed to send", (unsigned long long)inst, (unsigned long long)size, who);
}

void *srvsnap_server_main(void *arg)
{
	struct server *s = arg;
	while (!atomic_load(&s->snap_srv_stop)) {
		struct pollfd pf = {.fd = s->snap_lfd, .events = POLLIN};
		if (poll(&pf, 1, 200) <= 0)
			continue;
		struct sockaddr_in sa;
		socklen_t sl = sizeof sa;
		int fd = accept4(s->snap_lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct transport_addr peer = {.ip = ntohl(sa.sin_addr.s_addr), .port = ntohs(sa.sin_port)};
		snap_serve(s, fd, &peer);
		close(fd);
	}
	return NULL;
}

/* Listen for snapshot requests on TCP at this server's address.  Not fatal
 * when impossible (logged): the server then cannot serve snapshots. */
void srvsnap_listen(struct server *s)
{
	const struct transport_addr *a = &s->cfg.cc.servers[s->cfg.id];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(s->t->cfg.bind.port),
				 .sin_addr.s_addr = htonl(a->ip)};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4) != 0) {
		char b[32];
		mtr_log(LOG_WARN, "server %u: no snapshot channel on tcp %s: %s", s->cfg.id,
			transport_addr_format(a, b, sizeof b), strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	s->snap_lfd = fd;
}

static void *snap_fetch_main(void *arg)
{
	struct server *s = arg;
	const struct clusterconf *cc = &s->cfg.cc;
	const struct transport_addr *a = &cc->servers[s->snap_from];
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.recv", s->cfg.data_dir);
	int ok = 0;
	FILE *f = NULL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(a->port), .sin_addr.s_addr = htonl(a->ip)};
	/* from our own configured address, which the server checks (not
	 * possible when the kernel does not own it, e.g. DPDK: then the
	 * route's source address, and the server may refuse) */
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(cc->servers[s->cfg.id].ip)};
	if (fd < 0)
		goto out;
	sock_timeouts(fd);
	if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0)
		mtr_log(LOG_DEBUG, "server %u: snapshot fetch not bound to our address: %s", s->cfg.id, strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	uint8_t chal[SNAP_CHAL_SIZE], req[SNAP_REQ_SIZE];
	if (io_full(fd, chal, sizeof chal, 0) != 0 || memcmp(chal, snap_chal_magic, 8) != 0)
		goto out;
	const uint8_t *nonce_s = chal + 8;
	memcpy(req, snap_req_magic, 8);
	st32(req + 8, cc->cluster_id);
	st32(req + 12, s->cfg.id);
	randombytes_buf(req + 16, SNAP_NONCE);
	const uint8_t *nonce_c = req + 16;
	snap_req_tag(cc->key.set ? cc->key.k : NULL, nonce_s, req, req + SNAP_REQ_BODY);
	uint8_t hdr[SNAP_HDR_SIZE];
	if (io_full(fd, req, sizeof req, 1) != 0 || io_full(fd, hdr, sizeof hdr, 0) != 0 ||
	    memcmp(hdr, snap_resp_magic, 8) != 0)
		goto out;
	uint64_t inst = ld64(hdr + 8), size = ld64(hdr + 16), left = size;
	f = fopen(path, "wb");
	if (f == NULL)
		goto out;
	/* the server MACs with its cluster.key: ours, or, during a rotation,
	 * our cluster.key_next */
	crypto_generichash_state st, st_next;
	snap_resp_init(&st, cc->key.set ? cc->key.k : NULL, nonce_c, nonce_s, hdr);
	if (cc->key.next_set)
		snap_resp_init(&st_next, cc->key.next, nonce_c, nonce_s, hdr);
	uint8_t buf[65536];
	while (left > 0) {
		size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
		if (io_full(fd, buf, k, 0) != 0 || fwrite(buf, 1, k, f) != k)
			goto out;
		crypto_generichash_update(&st, buf, k);
		if (cc->key.next_set)
			crypto_generichash_update(&st_next, buf, k);
		left -= k;
	}
	uint8_t tr[SNAP_TAG], want[SNAP_TAG], want_next[SNAP_TAG];
	crypto_generichash_final(&st, want, sizeof want);
	if (cc->key.next_set)
		crypto_generichash_final(&st_next, want_next, sizeof want_next);
	if (io_full(fd, tr, sizeof tr, 0) != 0 ||
	    (crypto_verify_16(tr, want) != 0 && !(cc->key.next_set && crypto_verify_16(tr, want_next) == 0))) {
		mtr_log(LOG_WARN, "server %u: snapshot from server %u failed its check", s->cfg.id, s->snap_from);
		goto out;
	}
	if (fflush(f) != 0 || fdatasync(fileno(f)) != 0)
		goto out;
	mtr_log(LOG_INFO, "server %u: received snapshot at instance %llu (%llu bytes) from server %u", s->cfg.id,
		(unsigned long long)inst, (unsigned long long)size, s->snap_from);
	ok = 1;
out:
	if (!ok && (errno == ENOSPC || errno == EDQUOT)) {
		/* data.dir is full: the network thread enters that state and
		 * fetches no snapshot until it ends (server_disk.c) */
		atomic_store(&s->snap_full, 1);
		mtr_log(LOG_DEBUG, "server %u: snapshot transfer from server %u: %s", s->cfg.id, s->snap_from,
			strerror(errno));
	} else if (!ok) {
		mtr_log(LOG_WARN, "server %u: snapshot transfer from server %u failed (%s); will retry", s->cfg.id,
			s->snap_from, strerror(errno));
	}
	if (f)
		fclose(f);
	if (f && !ok)
		unlink(path); /* a partial copy only takes room (on a full disk, all of it) */
	if (fd >= 0)
		close(fd);
	atomic_store(&s->snap_state, ok ? SNAP_READY : SNAP_FAILED);
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof one);
	(void)w;
	return NULL;
}

void srvsnap_px_snapshot_needed(void *data, uint32_t from, uint64_t inst)
{
	struct server *s = data;
	if (atomic_load(&s->snap_state) != SNAP_IDLE || s->now_ms < s->snap_retry_ms || from >= s->cfg.cc.nservers ||
	    srvdisk_full(s))
		return;
	mtr_log(LOG_INFO, "server %u: server %u compacted instances <= %llu that this server lacks: fetching a snapshot",
		s->cfg.id, from, (unsigned long long)inst);
	s->snap_from = from;
	atomic_store(&s->snap_state, SNAP_FETCHING);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&s->snap_fetch_th, NULL, snap_fetch_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		atomic_store(&s->snap_state, SNAP_IDLE);
}

/*
 * Install a received snapshot (network thread): stop the apply and reader
 * threads, drop the apply queue, close the replica, apply_restore, reopen,
 * and restart the core's delivery after the snapshot's instance with the
 * snapshot's cursor (paxos_install).  Items up to the cursor are released.
 */
int srvsnap_install(struct server *s)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.recv", s->cfg.data_dir);
	srvapply_stop_threads(s);
	srvapply_drain_outbox(s);
	pthread_mutex_lock(&s->qmu);
	srvapply_queue_clear(s);
	s->qstop = 0;
	pthread_mutex_unlock(&s->qmu);
	s->rstop = 0;
	struct apply_config ac = {.dir = s->cfg.data_dir,
				  .durability = s->cfg.apply_sync_full ? APPLY_SYNC_FULL : APPLY_SYNC_NORMAL,
				  .provider = &s->prov};
	apply_close(s->ap);
	s->ap = NULL;
	int rc = apply_restore(s->cfg.data_dir, path);
	if (rc == MTR_ENOSPACE)
		srvdisk_note(s, FULL_SNAPSHOT); /* the replica is as it was; fetched again later */
	else if (rc != 0)
		mtr_log(LOG_ERROR, "server %u: installing the snapshot: %s", s->cfg.id, mtr_strerror(rc));
	unlink(path);
	int orc = apply_open(&ac, &s->ap);
	if (orc != 0) {
		mtr_log(LOG_ERROR, "server %u: reopening the replica database: %s", s->cfg.id, mtr_strerror(orc));
		return orc;
	}
	uint64_t inst = apply_applied(s->ap);
	struct batch_order cur;
	rc = server_install_applied(s, &cur);
	if (rc == 0) {
		for (uint32_t i = 0; i < cur.n; i++) {
			srvnet_stream_find(s, cur.v[i].stream, 1);
			ingest_forget(s->ing, cur.v[i].stream, cur.v[i].seq);
		}
		while (s->rel_n > 0 && s->rel[s->rel_head].inst <= inst) {
			batch_free(&s->rel[s->rel_head].b);
			s->rel_head = (s->rel_head + 1) % s->rel_cap;
			s->rel_n--;
		}
		if (inst > s->applied_net)
			s->applied_net = inst;
		mtr_log(LOG_INFO, "server %u: installed snapshot: applied instance %llu", s->cfg.id,
			(unsigned long long)inst);
	}
	batch_order_free(&cur);
	if (rc != 0)
		return rc;
	return srvapply_start_threads(s);
}
