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
#include <sys/stat.h>
#include <sys/statvfs.h>
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
#include "snapchan.h"
#include "transport.h"
#include "util.h"

/* Socket timeouts of the channel (both ends). */
#define SNAP_IO_TIMEOUT_S 10
/* A fetching server waits this long for the challenge (its turn). */
#define SNAP_TURN_TIMEOUT_S 300

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

/*
 * Room for the copy a snapshot makes (DATA/snapshot.send, about the size of
 * the replica and its WAL) and SNAP_SPARE_BYTES more on data.dir's file
 * system: 1, else 0 with what the copy needs and what is free.  A copy that
 * filled the disk would leave the item log and the replica no room: this
 * server would stop taking writes for another's catch-up or a backup
 * (doc/server.md "A full disk").  A file system that cannot tell: 1.
 */
#define SNAP_SPARE_BYTES (32u << 20)
static int snap_room(const struct server *s, uint64_t *need, uint64_t *have)
{
	static const char *const files[] = {APPLY_DB_NAME, APPLY_DB_NAME "-wal"};
	uint64_t size = 0;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char p[4200];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", s->cfg.data_dir, files[i]);
		if (stat(p, &st) == 0)
			size += (uint64_t)st.st_size;
	}
	struct statvfs v;
	if (statvfs(s->cfg.data_dir, &v) != 0)
		return 1;
	*have = (uint64_t)v.f_bavail * v.f_frsize;
	*need = size + SNAP_SPARE_BYTES;
	return *have >= *need;
}

/* Whether id is another member with an address at ip (snapshot server
 * thread: the table the network thread published). */
static bool peer_ip_ok(struct server *s, uint32_t id, uint32_t ip)
{
	pthread_mutex_lock(&s->imu);
	const struct peer_table *pt = &s->pub_pt;
	bool ok = id < PAXOS_MAX_ID && id != s->cfg.id && (pt->members & (UINT64_C(1) << id)) && pt->addr[id].ip == ip;
	pthread_mutex_unlock(&s->imu);
	return ok;
}

/* Serve one snapshot request on connection fd, from peer (the TCP source):
 * a peer server's (MTRSNAPQ: from that server's configured address) or a
 * proxy's for a backup (MTRSNAPB: any address; the cluster key is the
 * credential, as for every datagram a proxy sends). */
static void snap_serve(struct server *s, int fd, const struct transport_addr *peer)
{
	const struct clusterconf *cc = &s->cfg.cc;
	char from[32];
	transport_addr_format(peer, from, sizeof from);
	uint8_t chal[SNAP_CHAL_SIZE], req[SNAP_REQ_SIZE];
	sock_timeouts(fd);
	memcpy(chal, snap_chal_magic, 8);
	randombytes_buf(chal + 8, SNAP_NONCE);
	if (io_full(fd, chal, sizeof chal, 1) != 0 || io_full(fd, req, sizeof req, 0) != 0) {
		snap_refuse(s, from, "no complete request");
		return;
	}
	uint32_t who = ld32(req + 12);
	int backup = memcmp(req, snap_backup_magic, 8) == 0;
	if ((!backup && memcmp(req, snap_req_magic, 8) != 0) || ld32(req + 8) != cc->cluster_id) {
		snap_refuse(s, from, "not a snapshot request of this cluster");
		return;
	}
	if (!backup && !peer_ip_ok(s, who, peer->ip)) {
		snap_refuse(s, from, "not from the address of another member of the configuration");
		return;
	}
	if (!snapchan_request_ok(&cc->key, chal, req)) {
		snap_refuse(s, from, "failed authentication: wrong cluster.key?");
		return;
	}
	char to[64];
	if (backup)
		snprintf(to, sizeof to, "proxy %u at %s (a backup)", who, from);
	else
		snprintf(to, sizeof to, "server %u", who);
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.send", s->cfg.data_dir);
	uint64_t inst = 0;
	/* not while a received snapshot replaces the replica, nor before it
	 * has content: the requester tries again (a peer) or asks another
	 * server (a proxy) */
	if (atomic_load(&s->no_content)) {
		mtr_log(LOG_INFO, "server %u: snapshot for %s refused: this server waits for its content", s->cfg.id, to);
		return;
	}
	uint64_t need = 0, have = 0;
	if (!snap_room(s, &need, &have)) {
		char why[200];
		snprintf(why, sizeof why,
			 "a copy of the replica needs about %llu MiB free in data.dir (its size and %u MiB more), "
			 "%llu MiB are: the requester asks another server or again later",
			 (unsigned long long)(need >> 20), SNAP_SPARE_BYTES >> 20, (unsigned long long)(have >> 20));
		snap_refuse(s, from, why);
		return;
	}
	if (pthread_rwlock_tryrdlock(&s->ap_lock) != 0) {
		mtr_log(LOG_INFO, "server %u: snapshot for %s refused: this server is installing one", s->cfg.id, to);
		return;
	}
	int rc = apply_snapshot(s->ap, path, &inst);
	pthread_rwlock_unlock(&s->ap_lock);
	FILE *f = rc == 0 ? fopen(path, "rb") : NULL;
	if (f == NULL) {
		/* a full disk is this server's state (logged once, server_disk.c);
		 * the requester asks again */
		mtr_log(rc == MTR_ENOSPACE ? LOG_WARN : LOG_ERROR, "server %u: cannot make a snapshot for %s: %s",
			s->cfg.id, to, rc ? mtr_strerror(rc) : strerror(errno));
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
	struct snapchan_mac mac;
	snapchan_mac_init(&mac, &cc->key, 0, req, chal, hdr);
	rc = io_full(fd, hdr, sizeof hdr, 1);
	uint8_t buf[65536];
	size_t k;
	while (rc == 0 && (k = fread(buf, 1, sizeof buf, f)) > 0) {
		snapchan_mac_update(&mac, buf, k);
		rc = io_full(fd, buf, k, 1);
	}
	if (rc == 0) {
		uint8_t tr[SNAP_TAG];
		snapchan_mac_final(&mac, tr);
		rc = io_full(fd, tr, sizeof tr, 1);
	}
	fclose(f);
	unlink(path);
	mtr_log(LOG_INFO, "server %u: %s snapshot at instance %llu (%llu bytes) to %s", s->cfg.id,
		rc == 0 ? "sent" : "failed to send", (unsigned long long)inst, (unsigned long long)size, to);
}

void *srvsnap_server_main(void *arg)
{
	struct server *s = arg;
	mtr_thread_name("mtr-snap-serve");
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
	const struct transport_addr *a = &s->t->cfg.bind;
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
	mtr_thread_name("mtr-snap-fetch");
	const struct clusterconf *cc = &s->cfg.cc;
	const struct transport_addr *a = &s->snap_from_addr;
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.recv", s->cfg.data_dir);
	int ok = 0;
	FILE *f = NULL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(a->port), .sin_addr.s_addr = htonl(a->ip)};
	/* from our own configured address, which the server checks (not
	 * possible when the kernel does not own it, e.g. DPDK: then the
	 * route's source address, and the server may refuse) */
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(s->t->cfg.bind.ip)};
	if (fd < 0)
		goto out;
	sock_timeouts(fd);
	if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0)
		mtr_log(LOG_DEBUG, "server %u: snapshot fetch not bound to our address: %s", s->cfg.id, strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	uint8_t chal[SNAP_CHAL_SIZE], req[SNAP_REQ_SIZE];
	/* the peer serves one request at a time: while it sends a large
	 * snapshot to another server, wait for our turn rather than retry
	 * (a stop of this server ends the wait within 200 ms) */
	int turn = 0;
	for (int waited = 0; !turn && waited < SNAP_TURN_TIMEOUT_S * 5 && !atomic_load(&s->snap_srv_stop); waited++) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		turn = poll(&pf, 1, 200) > 0;
	}
	if (!turn || io_full(fd, chal, sizeof chal, 0) != 0 || memcmp(chal, snap_chal_magic, 8) != 0)
		goto out;
	snapchan_request(req, snap_req_magic, cc->cluster_id, s->cfg.id, &cc->key, chal);
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
	struct snapchan_mac mac;
	snapchan_mac_init(&mac, &cc->key, 1, req, chal, hdr);
	uint8_t buf[65536];
	while (left > 0) {
		size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
		if (io_full(fd, buf, k, 0) != 0 || fwrite(buf, 1, k, f) != k)
			goto out;
		snapchan_mac_update(&mac, buf, k);
		left -= k;
	}
	uint8_t tr[SNAP_TAG];
	if (io_full(fd, tr, sizeof tr, 0) != 0 || !snapchan_mac_check(&mac, tr)) {
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
	if (atomic_load(&s->snap_state) != SNAP_IDLE || s->now_ms < s->snap_retry_ms || srvnet_peer_addr(s, from) == NULL ||
	    srvdisk_full(s))
		return;
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	if (ps.self_removed || s->told_removed)
		return; /* the members serve no snapshot to a removed server */
	mtr_log(LOG_INFO, "server %u: server %u compacted instances <= %llu that this server lacks: fetching a snapshot",
		s->cfg.id, from, (unsigned long long)inst);
	s->snap_from = from;
	s->snap_from_addr = *srvnet_peer_addr(s, from);
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
 * A new server's ballot window (doc/paxos.md "Membership"): an empty
 * server's promise is 0, and ballots more than PAXOS_ROUND_WINDOW rounds
 * above it are dropped, so in a cluster whose rounds are higher it could
 * accept nothing for a long time.  With a snapshot it takes the promise
 * of the server it copied it from (made durable first): raising a promise
 * is always safe.  Only a follower does (a leader or candidate keeps its
 * own ballot and climbs as usual).
 */
static void take_promise(struct server *s, uint64_t ballot)
{
	struct paxos_status ps;
	paxos_status(s->px, &ps);
	if (ballot <= ps.ballot || ps.role != PAXOS_FOLLOWER)
		return;
	struct paxos_persist pp = {.kind = PAXOS_PERSIST_PROMISE, .ballot = ballot};
	if (srvnet_px_persist(s, &pp) != 0) {
		mtr_log(LOG_WARN, "server %u: the promise of server %u not taken: it cannot be made durable", s->cfg.id,
			s->snap_from);
		return;
	}
	paxos_restore_promise(s->px, ballot);
	mtr_log(LOG_INFO, "server %u: took the promise %llu.%u of server %u with its snapshot", s->cfg.id,
		(unsigned long long)paxos_ballot_round(ballot), paxos_ballot_node(ballot), s->snap_from);
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
	/* the promise of the server the copy came from (its last STATUS) */
	uint64_t peer_ballot = s->peers[s->snap_from].heard ? s->peers[s->snap_from].st.ballot : 0;
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
	pthread_rwlock_wrlock(&s->ap_lock); /* waits for a copy being made */
	apply_close(s->ap);
	s->ap = NULL;
	int rc = apply_restore(s->cfg.data_dir, path);
	if (rc == MTR_ENOSPACE)
		srvdisk_note(s, FULL_SNAPSHOT); /* the replica is as it was; fetched again later */
	else if (rc != 0)
		mtr_log(LOG_ERROR, "server %u: installing the snapshot: %s", s->cfg.id, mtr_strerror(rc));
	unlink(path);
	int orc = apply_open(&ac, &s->ap);
	pthread_rwlock_unlock(&s->ap_lock);
	if (orc != 0) {
		mtr_log(LOG_ERROR, "server %u: reopening the replica database: %s", s->cfg.id, mtr_strerror(orc));
		return orc;
	}
	uint64_t inst = apply_applied(s->ap);
	if (apply_origin(s->ap) != s->origin)
		mtr_log(LOG_INFO, "server %u: the snapshot's origin %016llx replaces %016llx", s->cfg.id,
			(unsigned long long)apply_origin(s->ap), (unsigned long long)s->origin);
	s->origin = apply_origin(s->ap);
	atomic_store(&s->no_content, s->origin == APPLY_ORIGIN_PENDING);
	struct batch_order cur;
	rc = server_install_applied(s, &cur);
	if (rc == 0) {
		for (uint32_t i = 0; i < cur.n; i++) {
			srvnet_stream_find(s, cur.v[i].stream, 1);
			ingest_forget(s->ing, cur.v[i].stream, cur.v[i].seq);
		}
		s->marks_dirty = 1; /* the forgets moved the watermarks: report them (server.c release) */
		while (s->rel_n > 0 && s->rel[s->rel_head].inst <= inst) {
			batch_free(&s->rel[s->rel_head].b);
			s->rel_head = (s->rel_head + 1) % s->rel_cap;
			s->rel_n--;
		}
		if (inst > s->applied_net)
			s->applied_net = inst;
		mtr_log(LOG_INFO, "server %u: installed snapshot: applied instance %llu", s->cfg.id,
			(unsigned long long)inst);
		take_promise(s, peer_ballot);
	}
	batch_order_free(&cur);
	if (rc != 0)
		return rc;
	return srvapply_start_threads(s);
}
