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

#include <xxhash.h>

#include "apply.h"
#include "batch.h"
#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "server_int.h"
#include "siphash.h"
#include "transport.h"
#include "util.h"

/* ---- snapshots: a TCP side channel (doc/server.md, "Snapshot transfer") ---- */

#define SNAP_REQ_SIZE 32
#define SNAP_HDR_SIZE 24
#define SNAP_IO_TIMEOUT_S 10

static const char snap_req_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'Q'};
static const char snap_resp_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'R'};

/* The check value of the first 24 bytes of a request: SipHash-2-4 under the
 * cluster key, XXH3-64 without one. */
static uint64_t snap_req_mac(const struct clusterconf *cc, const uint8_t *req)
{
	return cc->key.set ? siphash24(cc->key.k, req, 24) : XXH3_64bits(req, 24);
}

/* The trailer of a response: binds nonce, instance, size and the XXH3-128
 * of the bytes (keyed with the cluster key when there is one). */
static uint64_t snap_trailer(const struct clusterconf *cc, uint64_t nonce, uint64_t inst, uint64_t size,
			     XXH128_hash_t h)
{
	uint8_t b[40];
	st64(b, nonce);
	st64(b + 8, inst);
	st64(b + 16, size);
	st64(b + 24, h.low64);
	st64(b + 32, h.high64);
	return cc->key.set ? siphash24(cc->key.k, b, sizeof b) : XXH3_64bits(b, sizeof b);
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

/* Serve one snapshot request on connection fd. */
static void snap_serve(struct server *s, int fd)
{
	const struct clusterconf *cc = &s->cfg.cc;
	uint8_t req[SNAP_REQ_SIZE];
	sock_timeouts(fd);
	if (io_full(fd, req, sizeof req, 0) != 0 || memcmp(req, snap_req_magic, 8) != 0 ||
	    ld32(req + 8) != cc->cluster_id || ld64(req + 24) != snap_req_mac(cc, req)) {
		mtr_log(LOG_WARN, "server %u: snapshot request refused (bad magic, cluster or check value)", s->cfg.id);
		return;
	}
	uint32_t who = ld32(req + 12);
	uint64_t nonce = ld64(req + 16);
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.send", s->cfg.data_dir);
	uint64_t inst = 0;
	int rc = apply_snapshot(s->ap, path, &inst);
	FILE *f = rc == 0 ? fopen(path, "rb") : NULL;
	if (f == NULL) {
		mtr_log(LOG_ERROR, "server %u: cannot make a snapshot for server %u: %s", s->cfg.id, who,
			rc ? mtr_strerror(rc) : strerror(errno));
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
	XXH3_state_t *xs = XXH3_createState();
	XXH3_128bits_reset(xs);
	rc = io_full(fd, hdr, sizeof hdr, 1);
	uint8_t buf[65536];
	size_t k;
	while (rc == 0 && (k = fread(buf, 1, sizeof buf, f)) > 0) {
		XXH3_128bits_update(xs, buf, k);
		rc = io_full(fd, buf, k, 1);
	}
	if (rc == 0) {
		uint8_t tr[8];
		st64(tr, snap_trailer(cc, nonce, inst, size, XXH3_128bits_digest(xs)));
		rc = io_full(fd, tr, 8, 1);
	}
	XXH3_freeState(xs);
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
		int fd = accept4(s->snap_lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		snap_serve(s, fd);
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
	XXH3_state_t *xs = XXH3_createState();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(a->port), .sin_addr.s_addr = htonl(a->ip)};
	if (fd < 0 || xs == NULL)
		goto out;
	sock_timeouts(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	uint8_t req[SNAP_REQ_SIZE];
	uint64_t nonce = now_mono_ns() ^ ((uint64_t)s->cfg.id << 56);
	memcpy(req, snap_req_magic, 8);
	st32(req + 8, cc->cluster_id);
	st32(req + 12, s->cfg.id);
	st64(req + 16, nonce);
	st64(req + 24, snap_req_mac(cc, req));
	uint8_t hdr[SNAP_HDR_SIZE];
	if (io_full(fd, req, sizeof req, 1) != 0 || io_full(fd, hdr, sizeof hdr, 0) != 0 ||
	    memcmp(hdr, snap_resp_magic, 8) != 0)
		goto out;
	uint64_t inst = ld64(hdr + 8), size = ld64(hdr + 16), left = size;
	f = fopen(path, "wb");
	if (f == NULL)
		goto out;
	XXH3_128bits_reset(xs);
	uint8_t buf[65536];
	while (left > 0) {
		size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
		if (io_full(fd, buf, k, 0) != 0 || fwrite(buf, 1, k, f) != k)
			goto out;
		XXH3_128bits_update(xs, buf, k);
		left -= k;
	}
	uint8_t tr[8];
	if (io_full(fd, tr, 8, 0) != 0 || ld64(tr) != snap_trailer(cc, nonce, inst, size, XXH3_128bits_digest(xs))) {
		mtr_log(LOG_WARN, "server %u: snapshot from server %u failed its check", s->cfg.id, s->snap_from);
		goto out;
	}
	if (fflush(f) != 0 || fdatasync(fileno(f)) != 0)
		goto out;
	mtr_log(LOG_INFO, "server %u: received snapshot at instance %llu (%llu bytes) from server %u", s->cfg.id,
		(unsigned long long)inst, (unsigned long long)size, s->snap_from);
	ok = 1;
out:
	if (!ok)
		mtr_log(LOG_WARN, "server %u: snapshot transfer from server %u failed (%s); will retry", s->cfg.id,
			s->snap_from, strerror(errno));
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	XXH3_freeState(xs);
	atomic_store(&s->snap_state, ok ? SNAP_READY : SNAP_FAILED);
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof one);
	(void)w;
	return NULL;
}

void srvsnap_px_snapshot_needed(void *data, uint32_t from, uint64_t inst)
{
	struct server *s = data;
	if (atomic_load(&s->snap_state) != SNAP_IDLE || s->now_ms < s->snap_retry_ms || from >= s->cfg.cc.nservers)
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
	if (rc != 0)
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
