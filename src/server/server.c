/*
 * server.c - metronomed as a library object: the network thread, the apply
 * thread and the reader thread of one replica server (doc/server.md).
 *
 * This file has the configuration, server_open / server_run / server_stop /
 * server_close with the network loop, and the release of applied items.
 * The threads, what each owns, and the other parts (server_net.c,
 * server_apply.c, server_snap.c, server_vt.c, server_disk.c) are described
 * in server_int.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "batch.h"
#include "clustervt.h"
#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "pstore.h"
#include "reasm.h"
#include "server.h"
#include "server_int.h"
#include "transport.h"
#include "util.h"
#include "wire.h"
#include "wire_server.h"

_Static_assert(WIRE_ROLE_FOLLOWER == (int)PAXOS_FOLLOWER && WIRE_ROLE_CANDIDATE == (int)PAXOS_CANDIDATE &&
		       WIRE_ROLE_LEADER == (int)PAXOS_LEADER, "STATUS carries enum paxos_role");
_Static_assert(CLUSTERCONF_MAX_SERVERS == PAXOS_MAX_NODES, "a cluster's servers are the Paxos core's nodes");
_Static_assert(WIRE_MEMBER_ID_MAX == PAXOS_MAX_ID && WIRE_STATUS_MEMBERS_MAX >= 2 * PAXOS_MAX_NODES,
	       "STATUS carries the members of two configurations");

/* ---- configuration ---- */

int server_config_read(const struct conf *c, struct server_config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int rc = clusterconf_read(c, &out->cc, err, errlen);
	if (rc != 0)
		return rc;
	const char *id = conf_str(c, "server.id");
	if (id == NULL) {
		snprintf(err, errlen, "server.id is not set: set it to this server's index in cluster.servers (0..%u)",
			 out->cc.nservers - 1);
		return MTR_ECONFIG;
	}
	int64_t v = conf_int(c, "server.id");
	const char *addr = conf_str(c, "server.address");
	if (addr != NULL && *addr != '\0') {
		if (transport_addr_parse(addr, 0, &out->address) != 0 || out->address.port == 0 ||
		    out->address.ip == 0) {
			snprintf(err, errlen, "server.address: '%s' is not IP:PORT; give the address this server "
					      "binds, as given to mtrctl add-server",
				 addr);
			return MTR_ECONFIG;
		}
		out->has_address = 1;
	}
	if (v < 0 || v >= PAXOS_MAX_ID) {
		snprintf(err, errlen, "server.id: %lld is not a node id; use 0..%u", (long long)v, PAXOS_MAX_ID - 1);
		return MTR_ECONFIG;
	}
	if (v >= (int64_t)out->cc.nservers && !out->has_address) {
		snprintf(err, errlen,
			 "server.id: %lld is not an index into cluster.servers (0..%u): a server added under a new id "
			 "needs server.address (the IP:PORT given to mtrctl add-server)",
			 (long long)v, out->cc.nservers - 1);
		return MTR_ECONFIG;
	}
	out->id = (uint32_t)v;
	const char *dir = conf_str(c, "data.dir");
	if (dir == NULL || *dir == '\0') {
		snprintf(err, errlen, "data.dir is not set: set it to this server's data directory");
		return MTR_ECONFIG;
	}
	if (strlen(dir) >= sizeof out->data_dir - 64) {
		snprintf(err, errlen, "data.dir: the path is too long; use a shorter one");
		return MTR_ECONFIG;
	}
	snprintf(out->data_dir, sizeof out->data_dir, "%s", dir);
	const char *d = conf_str(c, "data.durability");
	if (strcmp(d, "disk") == 0)
		out->durability_memory = 0;
	else if (strcmp(d, "memory") == 0)
		out->durability_memory = 1;
	else {
		snprintf(err, errlen, "data.durability: '%s' is not a mode; use disk or memory", d);
		return MTR_ECONFIG;
	}
	const char *sy = conf_str(c, "apply.sync");
	if (strcmp(sy, "normal") == 0)
		out->apply_sync_full = 0;
	else if (strcmp(sy, "full") == 0)
		out->apply_sync_full = 1;
	else {
		snprintf(err, errlen, "apply.sync: '%s' is not a mode; use normal or full", sy);
		return MTR_ECONFIG;
	}
	struct {
		const char *key;
		int64_t lo, hi;
		int64_t *dst;
	} nums[8];
	int64_t hb, el, sp, rcache, lag, idle, readers, pipe;
	nums[0] = (typeof(nums[0])){"paxos.heartbeat", 1, 60000, &hb};
	nums[1] = (typeof(nums[0])){"paxos.election", 2, 600000, &el};
	nums[2] = (typeof(nums[0])){"server.status_period", 1, 60000, &sp};
	nums[3] = (typeof(nums[0])){"server.result_cache", 1, 1 << 20, &rcache};
	nums[4] = (typeof(nums[0])){"server.compact_lag", 1, INT64_MAX, &lag};
	nums[5] = (typeof(nums[0])){"server.stream_idle", 1000, 7 * 24 * 3600000ll, &idle};
	nums[6] = (typeof(nums[0])){"server.readers", 1, READERS_MAX, &readers};
	nums[7] = (typeof(nums[0])){"paxos.pipeline", 1, PAXOS_CONF_DELAY, &pipe};
	for (unsigned i = 0; i < ARRAY_SIZE(nums); i++) {
		*nums[i].dst = conf_int(c, nums[i].key);
		if (*nums[i].dst < nums[i].lo || *nums[i].dst > nums[i].hi) {
			snprintf(err, errlen, "%s: %lld is out of range; use %lld .. %lld", nums[i].key,
				 (long long)*nums[i].dst, (long long)nums[i].lo, (long long)nums[i].hi);
			return MTR_ECONFIG;
		}
	}
	int64_t rt = conf_int(c, "server.log_retain_time"), rb = conf_int(c, "server.log_retain_bytes"),
		ss = conf_int(c, "data.segment_size");
	if (rt < 0 || rb < 0) {
		snprintf(err, errlen, "server.log_retain_time and server.log_retain_bytes must not be negative (0 turns "
				      "retention off)");
		return MTR_ECONFIG;
	}
	if (ss < (64 << 10) || ss > (1ll << 30)) {
		snprintf(err, errlen, "data.segment_size: %lld is out of range; use 64K .. 1G", (long long)ss);
		return MTR_ECONFIG;
	}
	out->retain_ms = (uint64_t)rt;
	out->retain_bytes = (uint64_t)rb;
	out->segment_size = (uint64_t)ss;
	if (el <= hb) {
		snprintf(err, errlen, "paxos.election (%lld ms) must be longer than paxos.heartbeat (%lld ms)",
			 (long long)el, (long long)hb);
		return MTR_ECONFIG;
	}
	out->heartbeat_ms = (uint32_t)hb;
	out->election_ms = (uint32_t)el;
	out->pipeline = (uint32_t)pipe;
	out->status_period_ms = (uint32_t)sp;
	out->result_cache = (uint32_t)rcache;
	out->compact_lag = (uint64_t)lag;
	out->stream_idle_ms = (uint64_t)idle;
	out->readers = (uint32_t)readers;
	const char *lv = conf_str(c, "log.level");
	out->log_level = log_level_parse(lv);
	if (out->log_level < 0) {
		snprintf(err, errlen, "log.level: '%s' is not a level; use error, warn, info, debug or trace", lv);
		return MTR_ECONFIG;
	}
	return 0;
}

/* ---- release ---- */

/* Release items and Paxos instances applied by every member that is not
 * more than compact_lag behind us (those will need a snapshot). */
static void release(struct server *s)
{
	uint64_t mine = s->applied_net, r = mine;
	for (uint32_t j = 0; j < PAXOS_MAX_ID; j++) {
		if (srvnet_peer_addr(s, j) == NULL)
			continue;
		uint64_t a = s->peers[j].heard ? s->peers[j].st.applied : 0;
		if (a + s->cfg.compact_lag >= mine && a < r)
			r = a;
	}
	if (r <= s->released)
		return;
	while (s->rel_n > 0) {
		struct rel *e = &s->rel[s->rel_head];
		if (e->inst > r)
			break;
		for (uint32_t i = 0; i < e->b.n; i++)
			ingest_forget(s->ing, e->b.r[i].stream, e->b.r[i].last);
		batch_free(&e->b);
		/* a forget can move a watermark (its seqs count as held, and
		 * held items just above them join the prefix): report it now,
		 * or no batch takes those items until the next one arrives */
		s->marks_dirty = 1;
		s->rel_head = (s->rel_head + 1) % s->rel_cap;
		s->rel_n--;
	}
	paxos_compact(s->px, r);
	if (pstore_size(s->ps) > PSTORE_LIMIT && !srvdisk_full(s)) {
		int rc = pstore_compact(s->ps, r);
		if (rc == MTR_ENOSPACE)
			srvdisk_note(s, FULL_PAXOS); /* the old log stays in use, whole */
		else if (rc != 0)
			mtr_log(LOG_WARN, "server %u: compacting the Paxos log: %s", s->cfg.id, mtr_strerror(rc));
	}
	s->released = r;
}

/* ---- open / run / close ---- */

static int mkdir_p(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int cursor_add(void *arg, uint64_t stream, uint64_t last)
{
	return batch_order_set(arg, stream, last);
}

/* A configuration recorded with the applied state (mtr_conf): to the core. */
static int conf_restore(void *arg, uint64_t inst, const uint8_t *conf, size_t len)
{
	struct server *s = arg;
	struct batch b = {0};
	size_t used = 0;
	int rc = batch_decode(&b, conf, len, &used);
	if (rc == 0 && (used != len || b.conf == NULL))
		rc = MTR_EMALFORMED;
	if (rc == 0) {
		s->ids_used |= batch_conf_members(b.conf); /* new ids go above every one ever used */
		rc = paxos_restore_conf(s->px, inst, b.conf);
	}
	else
		mtr_log(LOG_ERROR, "server %u: the configuration recorded at instance %llu cannot be read: %s",
			s->cfg.id, (unsigned long long)inst, mtr_strerror(rc));
	batch_free(&b);
	return rc;
}

int server_install_applied(struct server *s, struct batch_order *cur)
{
	*cur = (struct batch_order){0};
	int rc = apply_cursor(s->ap, cursor_add, cur);
	if (rc == 0)
		rc = paxos_install(s->px, apply_applied(s->ap), cur);
	if (rc == 0)
		rc = apply_confs(s->ap, conf_restore, s); /* doc/paxos.md "Membership", rule 6 */
	if (rc == 0)
		srvnet_peers_refresh(s, 1);
	return rc;
}

int server_open(const struct server_config *cfg, struct server **out)
{
	*out = NULL;
	const struct clusterconf *cc = &cfg->cc;
	if (cfg->id >= PAXOS_MAX_ID || (cfg->id >= cc->nservers && !cfg->has_address) ||
	    cc->nservers > PAXOS_MAX_NODES)
		return MTR_ECONFIG;
	struct server *s = calloc(1, sizeof *s);
	if (s == NULL)
		return MTR_ENOMEM;
	s->cfg = *cfg;
	s->cfg.cc.mtu = clusterconf_mtu(cc, (int)cfg->id);
	if (cc->mtu == 0)
		mtr_log(LOG_INFO, "server %u: transport.mtu auto: datagrams of at most %u bytes", cfg->id,
			s->cfg.cc.mtu);
	cc = &s->cfg.cc;
	s->from = (struct wire_from){.cluster = cc->cluster_id, .sender = cfg->id, .key = &s->cfg.cc.key};
	s->efd = -1;
	s->lockfd = -1;
	s->snap_lfd = -1;
	s->last_role = -1;
	pthread_mutex_init(&s->qmu, NULL);
	pthread_rwlock_init(&s->ap_lock, NULL);
	pthread_cond_init(&s->qcv, NULL);
	pthread_mutex_init(&s->omu, NULL);
	pthread_mutex_init(&s->rmu, NULL);
	pthread_cond_init(&s->rcv, NULL);
	pthread_mutex_init(&s->imu, NULL);
	pthread_mutex_init(&s->mmu, NULL);
	s->info.id = cfg->id;
	s->ccap = cfg->result_cache;
	s->streams = calloc(STREAM_CAP, sizeof *s->streams);
	s->obuf = malloc((size_t)OUT_SLOTS * WIRE_MAX_DGRAM);
	s->marks = calloc(PAXOS_MAX_MARKS, sizeof *s->marks);
	s->pub_marks = calloc(PAXOS_MAX_MARKS, sizeof *s->pub_marks);
	s->cache = calloc(s->ccap ? s->ccap : 1, sizeof *s->cache);
	s->ra = reasm_new(INGEST_DEFAULT_MAX_ITEM, 256u << 20, 4096);
	s->stats = statstab_new();
	int rc = MTR_ENOMEM;
	if (!s->streams || !s->obuf || !s->marks || !s->pub_marks || !s->cache || !s->ra || !s->stats)
		goto fail;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		rc = MTR_EIO;
		goto fail;
	}

	/* transport */
	struct transport_config tc;
	transport_config_init(&tc);
	clusterconf_transport(cc, &tc);
	tc.bind = cfg->has_address ? cfg->address : cc->servers[cfg->id];
	tc.mtu = strcmp(cc->kind, "udp") == 0 ? WIRE_MAX_DGRAM : cc->mtu;
	rc = transport_open(&tc, &s->t);
	if (rc != 0) {
		char a[32];
		mtr_log(LOG_ERROR, "server %u: cannot listen on %s: %s", cfg->id,
			transport_addr_format(&tc.bind, a, sizeof a), mtr_strerror(rc));
		goto fail;
	}
	if (cc->has_group) {
		struct transport_config tg = tc;
		tg.bind.ip = 0;
		tg.bind.port = 0; /* receive on the group itself */
		tg.ndests = 0;
		rc = transport_open(&tg, &s->tg);
		if (rc != 0) {
			mtr_log(LOG_ERROR, "server %u: cannot join the group: %s", cfg->id, mtr_strerror(rc));
			goto fail;
		}
	}
	/* data directory, locked against a second server on it */
	char path[4200];
	if (mkdir_p(cfg->data_dir) != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot create data.dir %s: %s", cfg->id, cfg->data_dir, strerror(errno));
		rc = MTR_EIO;
		goto fail;
	}
	snprintf(path, sizeof path, "%s/lock", cfg->data_dir);
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		mtr_log(LOG_ERROR, "server %u: data.dir %s is unusable or in use by another server (%s)", cfg->id,
			cfg->data_dir, strerror(errno));
		rc = MTR_EIO;
		goto fail;
	}
	if (cfg->init_from[0] || cfg->init_from_peer) {
		char err[1024];
		uint64_t origin;
		rc = cfg->init_from[0] ? apply_init_from(cfg->data_dir, cfg->init_from, &origin, err, sizeof err)
				       : apply_init_pending(cfg->data_dir, err, sizeof err);
		if (rc != 0) {
			mtr_log(LOG_ERROR, "server %u: %s: %s", cfg->id,
				cfg->init_from[0] ? "--init-from" : "--init-from-peer", err);
			goto fail;
		}
		if (cfg->init_from_remove)
			unlink(cfg->init_from);
	}
	rc = pstore_open(cfg->data_dir, &s->ps);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot open the Paxos log under %s: %s", cfg->id, cfg->data_dir,
			mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}
	pstore_set_sync(s->ps, !cfg->durability_memory);
	s->prov.arg = s;
	s->prov.fill = srvvt_fill;
	struct apply_config ac = {.dir = cfg->data_dir,
				  .durability = cfg->apply_sync_full ? APPLY_SYNC_FULL : APPLY_SYNC_NORMAL,
				  .provider = &s->prov};
	rc = apply_open(&ac, &s->ap);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot open the replica database under %s: %s", cfg->id, cfg->data_dir,
			mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}
	/* the item log after the replica (its applied instance) and the Paxos log
	 * (the accepts the item log holds go into it) */
	snprintf(path, sizeof path, "%s/items", cfg->data_dir);
	if (!cfg->durability_memory && mkdir_p(path) != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot create %s: %s", cfg->id, path, strerror(errno));
		rc = MTR_EIO;
		goto fail;
	}
	struct ingest_opts io = {.durability = cfg->durability_memory ? INGEST_MEMORY : INGEST_DISK,
				 .dir = path,
				 .seg_size = cfg->segment_size,
				 .retain_bytes = cfg->retain_bytes,
				 .retain_ms = cfg->retain_ms,
				 /* the accepts of instances applied here are not needed */
				 .aux_min = apply_applied(s->ap),
				 .before_delete = srvdisk_before_delete,
				 .delete_arg = s};
	rc = ingest_open(&io, &s->ing);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot open the item store %s: %s", cfg->id, path, mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}
	rc = srvdisk_recover_accepts(s);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "server %u: cannot take the accepts of the item store into the Paxos log: %s", cfg->id,
			mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}
	s->origin = apply_origin(s->ap);
	atomic_store(&s->no_content, s->origin == APPLY_ORIGIN_PENDING);
	if (s->origin == APPLY_ORIGIN_PENDING)
		mtr_log(LOG_INFO, "server %u: waiting for the content of a peer (--init-from-peer): this server takes "
			"part in nothing before it has it",
			cfg->id);
	else if (s->origin != 0)
		mtr_log(LOG_INFO, "server %u: replica origin %016llx (restored from a file; doc/server.md \"Origin\")",
			cfg->id, (unsigned long long)s->origin);

	/* Paxos: install the applied state, then the persisted acceptor state */
	uint64_t seed = now_mono_ns() ^ ((uint64_t)getpid() << 32) ^ cfg->id;
	struct paxos_config pc = {.id = cfg->id, .n = cc->nservers, .heartbeat_ms = cfg->heartbeat_ms,
				  .election_ms = cfg->election_ms, .pipeline = cfg->pipeline, .seed = seed};
	struct paxos_io pio = {.data = s, .send = srvnet_px_send, .persist = srvnet_px_persist,
			       .holds = srvnet_px_holds, .fetch = srvnet_px_fetch, .chosen = srvapply_px_chosen,
			       .snapshot_needed = srvsnap_px_snapshot_needed};
	rc = paxos_create(&s->px, &pc, &pio);
	if (rc != 0)
		goto fail;
	uint64_t applied = apply_applied(s->ap);
	struct batch_order cur;
	rc = server_install_applied(s, &cur);
	if (rc == 0)
		rc = pstore_replay(s->ps, s->px);
	if (rc != 0) {
		batch_order_free(&cur);
		mtr_log(LOG_ERROR, "server %u: cannot restore the Paxos state: %s", cfg->id, mtr_strerror(rc));
		rc = MTR_EIO;
		goto fail;
	}
	/* items up to the cursor are applied here: release them like an instance */
	s->rel_cap = 256;
	s->rel = calloc(s->rel_cap, sizeof *s->rel);
	if (s->rel == NULL) {
		batch_order_free(&cur);
		rc = MTR_ENOMEM;
		goto fail;
	}
	if (applied > 0 && cur.n > 0) {
		struct rel r = {.inst = applied};
		for (uint32_t i = 0; i < cur.n; i++)
			if (cur.v[i].seq > 0)
				batch_push(&r.b, cur.v[i].stream, 1, cur.v[i].seq);
		s->rel[0] = r;
		s->rel_n = 1;
	}
	/*
	 * Memory mode keeps no item across a restart: the store is empty, so
	 * there is nothing a lagging peer could still get from us below the
	 * cursor.  Count the applied prefix as held at once (not when every
	 * peer has been heard and caught up, as release() would): otherwise the
	 * watermark of a stream stays 0, the items its proxy resends cannot be
	 * ordered, and a cluster that restarted from a power loss waits for the
	 * proxy's next new item (doc/storage.md "Memory mode and a majority
	 * crash"; doc/faults.md power_mem).
	 */
	for (uint32_t i = 0; i < cur.n; i++) {
		srvnet_stream_find(s, cur.v[i].stream, 1);
		if (cfg->durability_memory && cur.v[i].seq > 0)
			ingest_forget(s->ing, cur.v[i].stream, cur.v[i].seq);
	}
	s->marks_dirty = 1;
	batch_order_free(&cur);
	s->applied_net = applied;
	s->info.applied = applied;
	mtr_log(LOG_INFO, "recovered: applied instance %llu", (unsigned long long)applied);

	srvsnap_listen(s);
	char a[32];
	s->info.port = s->t->cfg.bind.port;
	mtr_log(LOG_INFO, "listening on %s as server %u of %u", transport_addr_format(&s->t->cfg.bind, a, sizeof a),
		cfg->id, cc->nservers);
	char who[32];
	snprintf(who, sizeof who, "server %u", cfg->id);
	clusterconf_warn_insecure(cc, who);
	*out = s;
	return 0;
fail:
	server_close(s);
	return rc;
}

void server_stop(struct server *s)
{
	atomic_store(&s->stop, 1);
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof one);
	(void)w;
}

/* Stop the snapshot threads too (server_run's end, server_close). */
static void stop_all(struct server *s)
{
	srvapply_stop_threads(s);
	atomic_store(&s->snap_srv_stop, 1);
	if (s->snap_srv_started)
		pthread_join(s->snap_srv_th, NULL);
	s->snap_srv_started = 0;
	if (atomic_load(&s->snap_state) != SNAP_IDLE) {
		pthread_join(s->snap_fetch_th, NULL);
		atomic_store(&s->snap_state, SNAP_IDLE);
	}
}

int server_run(struct server *s)
{
	int rc = srvapply_start_threads(s);
	if (rc != 0)
		return rc;
	int tfd = transport_fd(s->t), gfd = s->tg ? transport_fd(s->tg) : -1;
	s->now_ms = now_mono_ns() / 1000000u;
	s->epoch_ms = s->now_ms;
	s->next_status_ms = s->now_ms;
	while (!atomic_load(&s->stop) && !atomic_load(&s->fatal)) {
		if (tfd >= 0) {
			struct pollfd pf[3] = {{.fd = s->efd, .events = POLLIN}, {.fd = tfd, .events = POLLIN},
					       {.fd = gfd, .events = POLLIN}};
			int np = poll(pf, gfd >= 0 ? 3 : 2,
				      s->eager_pending || (s->added && !(s->full & FULL_INGEST)) ? 1 : LOOP_MS);
			if (np < 0 && errno != EINTR) {
				mtr_log(LOG_ERROR, "server %u: poll: %s", s->cfg.id, strerror(errno));
				atomic_store(&s->fatal, 1);
				break;
			}
		} else {
			/* no fd (dpdk): its wait also wakes on the apply thread's
			 * eventfd, so results leave at once; a second transport
			 * (the group) is looked at every millisecond */
			transport_wait_fd(s->t, s->efd, s->eager_pending || s->tg ? 1 : LOOP_MS);
		}
		uint64_t junk;
		while (read(s->efd, &junk, sizeof junk) > 0)
			;
		uint64_t wake_ns = now_mono_ns();
		s->now_ms = wake_ns / 1000000u;
		srvnet_recv_all(s, s->t);
		if (s->tg)
			srvnet_recv_all(s, s->tg);
		ingest_set_now(s->ing, (uint64_t)now_wall_ms());
		if (!s->added && s->now_ms >= s->retain_tick_ms) {
			/* an idle log still drops what its retention no longer keeps */
			s->retain_tick_ms = s->now_ms + 1000;
			s->added = 1;
		}
		if (s->added && !s->cfg.durability_memory) {
			/* disk mode: the received watermarks moved; the commit
			 * waits for an accept to share it (srvdisk_commit) */
			if (s->added_ns == 0) {
				s->added_ns = wake_ns;
				s->commit_ns = wake_ns;
			}
			if (s->received) {
				s->received = 0;
				s->marks_dirty = 1;
			}
		} else if (s->added && !(s->full & FULL_INGEST)) {
			rc = ingest_sync(s->ing);
			if (rc == MTR_ENOSPACE) {
				/* kept: srvdisk_tick writes it again (server_disk.c) */
				srvdisk_note(s, FULL_INGEST);
			} else if (rc != 0) {
				mtr_log(LOG_ERROR, "server %u: ingest sync: %s", s->cfg.id, mtr_strerror(rc));
				atomic_store(&s->fatal, 1);
				break;
			} else {
				s->added = 0;
				s->marks_dirty = 1;
				s->commit_ns = now_mono_ns();
				metrics_hist_observe(&s->stage.ingest, (s->commit_ns - wake_ns) / 1000u);
			}
		}
		if (srvdisk_tick(s) != 0) {
			atomic_store(&s->fatal, 1);
			break;
		}
		pthread_mutex_lock(&s->qmu);
		unsigned qlen = s->qlen;
		pthread_mutex_unlock(&s->qmu);
		int bp = qlen > AQ_HIGH;
		if (bp != s->backpressure) {
			s->backpressure = bp;
			if (!bp)
				s->marks_dirty = 1;
		}
		if (s->marks_dirty) {
			paxos_items_changed(s->px);
			srvnet_push_watermarks(s);
			s->marks_dirty = 0;
		} else {
			srvnet_eager_report(s);
		}
		int st = atomic_load(&s->snap_state);
		if (st == SNAP_READY || st == SNAP_FAILED) {
			pthread_join(s->snap_fetch_th, NULL);
			atomic_store(&s->snap_state, SNAP_IDLE);
			if (atomic_exchange(&s->snap_full, 0))
				srvdisk_note(s, FULL_SNAPSHOT);
			s->snap_retry_ms = s->now_ms + 1000;
			if (st == SNAP_READY && srvsnap_install(s) != 0) {
				atomic_store(&s->fatal, 1);
				break;
			}
		}
		srvapply_resolve_queue(s);
		srvnet_stream_tick(s);
		if (!srvdisk_full(s)) /* nowhere to put them */
			srvnet_request_gaps(s);
		paxos_tick(s->px, s->now_ms - s->epoch_ms);
		srvmem_tick(s);
		srvapply_drain_outbox(s);
		release(s);
		srvvt_publish(s);
		srvvt_stats_tick(s);
		srvhealth_tick(s);
		if (s->now_ms >= s->next_status_ms) {
			srvnet_send_status(s);
			s->next_status_ms = s->now_ms + s->cfg.status_period_ms;
		}
		if (!s->cfg.durability_memory && srvdisk_commit(s) != 0) {
			atomic_store(&s->fatal, 1);
			break;
		}
		srvnet_out_flush(s);
		reasm_expire(s->ra, now_mono_ns(), 10000000000ull);
	}
	srvnet_out_flush(s);
	stop_all(s);
	srvapply_drain_outbox(s);
	srvnet_out_flush(s);
	if (atomic_load(&s->fatal))
		return MTR_EIO;
	return 0;
}

void server_close(struct server *s)
{
	if (s == NULL)
		return;
	stop_all(s);
	if (s->snap_lfd >= 0)
		close(s->snap_lfd);
	if (s->ing)
		ingest_sync(s->ing); /* queued accept records too: a restart merges them */
	if (s->ps)
		pstore_sync(s->ps);
	srvdisk_free(s);
	transport_close(s->tg);
	transport_close(s->t);
	paxos_destroy(s->px);
	apply_close(s->ap);
	pstore_close(s->ps);
	ingest_close(s->ing);
	reasm_free(s->ra);
	srvapply_queue_clear(s);
	while (s->ohead) {
		struct done *d = s->ohead;
		s->ohead = d->next;
		srvapply_done_free(d);
	}
	while (s->rhead) {
		struct read_req *q = s->rhead;
		s->rhead = q->next;
		free(q->item);
		free(q->look);
		free(q);
	}
	free(s->readers);
	srvapply_done_free(s->qdone);
	free(s->qitem);
	free(s->qans);
	free(s->qbytes);
	for (unsigned k = 0; k < s->cn; k++)
		srvapply_done_free(s->cache[(s->chead + k) % s->ccap]);
	for (size_t i = 0; i < s->rel_n; i++)
		batch_free(&s->rel[(s->rel_head + i) % s->rel_cap].b);
	free(s->rel);
	free(s->cache);
	free(s->streams);
	statstab_free(s->stats);
	free(s->obuf);
	free(s->marks);
	free(s->pub_marks);
	if (s->efd >= 0)
		close(s->efd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	pthread_mutex_destroy(&s->qmu);
	pthread_rwlock_destroy(&s->ap_lock);
	pthread_cond_destroy(&s->qcv);
	pthread_mutex_destroy(&s->omu);
	pthread_mutex_destroy(&s->rmu);
	pthread_cond_destroy(&s->rcv);
	pthread_mutex_destroy(&s->imu);
	pthread_mutex_destroy(&s->mmu);
	free(s->pub_stats);
	free(s);
}
