/*
 * server_disk.c - a full data.dir as a state of the server, not a crash
 * (doc/server.md "A full disk").
 *
 * Every writer of the data directory reports a write that failed for want
 * of space (ENOSPC, EDQUOT: MTR_ENOSPACE) instead of failing the server:
 * the ingest log (its write buffer is kept and written again later), the
 * Paxos log (the failed record is cut off, the promise or accept is not
 * answered), the apply side (the instance is rolled back and retried by the
 * apply thread, apply_full()) and a snapshot being received.  Each of them
 * leaves its store as it was before the write, which is what makes trying
 * again safe.  A failed fdatasync is not such a case (after it the kernel
 * may have dropped the dirty pages: what is on the disk is unknown) and
 * still stops the server, as does any other I/O error.
 *
 * While the state lasts the server stores no new item (each is a counted
 * drop, fetched again afterwards by the gap repair), asks for no gap,
 * answers no PREPARE or ACCEPT and stands by in the Paxos core
 * (paxos_standby: a leader steps down, no election), so the others never
 * count on a promise it could not keep; it still follows the leader, learns
 * what is chosen and serves reads.  Every FULL_RETRY_MS the network thread
 * writes FULL_PROBE_BYTES to DATA/space.probe (and removes it); once that
 * works it writes the ingest buffer again, and the state ends when every
 * source is clear (the apply thread's once its instance committed).
 *
 * Network thread only, except where said.
 *
 * The group commit of disk mode lives here too (srvdisk_accept,
 * srvdisk_commit; doc/storage.md "One commit per accept"): an accept's
 * record goes to the item log after the items it names, one fdatasync makes
 * both durable, and only then does the core answer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "ingest.h"
#include "log.h"
#include "metronome.h"
#include "paxos.h"
#include "pstore.h"
#include "server_int.h"
#include "util.h"

static const char *source_name(unsigned source)
{
	switch (source) {
	case FULL_INGEST:
		return "the item log";
	case FULL_PAXOS:
		return "the Paxos log";
	case FULL_APPLY:
		return "the replica database";
	default:
		return "a snapshot";
	}
}

void srvdisk_note(struct server *s, unsigned source)
{
	if (!(s->full & source) && s->full_what == 0)
		s->full_what = source;
	s->full |= source;
}

/* Can DATA take FULL_PROBE_BYTES more?  0, MTR_ENOSPACE, or MTR_EIO. */
static int probe(struct server *s)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/space.probe", s->cfg.data_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = 0;
	if (fd < 0) {
		rc = errno == ENOSPC || errno == EDQUOT ? MTR_ENOSPACE : MTR_EIO;
	} else {
		static const char zero[65536];
		for (size_t done = 0; rc == 0 && done < FULL_PROBE_BYTES; done += sizeof zero) {
			ssize_t w = write(fd, zero, sizeof zero);
			if (w < 0 && errno == EINTR) {
				done -= sizeof zero;
				continue;
			}
			if (w != (ssize_t)sizeof zero)
				rc = w >= 0 || errno == ENOSPC || errno == EDQUOT ? MTR_ENOSPACE : MTR_EIO;
		}
		close(fd);
	}
	unlink(path);
	if (rc == MTR_EIO)
		mtr_log(LOG_DEBUG, "server %u: the space probe %s: %s", s->cfg.id, path, strerror(errno));
	return rc;
}

static void enter(struct server *s)
{
	s->full_on = 1;
	s->full_since_ms = s->now_ms;
	s->full_next_ms = s->now_ms + FULL_RETRY_MS;
	s->full_events++;
	/* once at error; a disk that fills again within a minute (space
	 * freed only just) is told at warn */
	int again = s->full_left_ms != 0 && s->now_ms < s->full_left_ms + 60000;
	mtr_log(again ? LOG_WARN : LOG_ERROR,
		"server %u: data.dir %s is full (writing %s): not accepting writes until space is freed "
		"(checked every %u ms)",
		s->cfg.id, s->cfg.data_dir, source_name(s->full_what), FULL_RETRY_MS);
	paxos_standby(s->px, true);
	s->next_status_ms = 0;
	/* the log kept for point-in-time restore gives way to new items */
	struct ingest_stats is;
	ingest_stats(s->ing, &is);
	if (is.retained_bytes > 0) {
		ingest_retain_drop(s->ing);
		mtr_log(LOG_WARN,
			"server %u: dropping %llu bytes of log kept for point-in-time restore (server.log_retain_*) to "
			"make room: a restore from this data.dir cannot go back past now",
			s->cfg.id, (unsigned long long)is.retained_bytes);
	}
}

static void leave(struct server *s)
{
	s->full_on = 0;
	s->full_what = 0;
	s->full_left_ms = s->now_ms;
	s->full_ms += s->now_ms - s->full_since_ms;
	mtr_log(LOG_WARN, "server %u: data.dir %s has space again after %.1f s: accepting writes", s->cfg.id,
		s->cfg.data_dir, (double)(s->now_ms - s->full_since_ms) / 1000.0);
	paxos_standby(s->px, false);
	s->marks_dirty = 1;
	s->next_status_ms = 0;
}

static int ps_rewrite(struct server *s);

int srvdisk_tick(struct server *s)
{
	if (s->ap != NULL && apply_full(s->ap))
		srvdisk_note(s, FULL_APPLY);
	else
		s->full &= ~(unsigned)FULL_APPLY;
	if (s->full && !s->full_on)
		enter(s);
	if (!s->full_on)
		return 0;
	if (s->now_ms >= s->full_next_ms) {
		s->full_next_ms = s->now_ms + FULL_RETRY_MS;
		int rc = probe(s);
		if (rc == 0 && (s->full & FULL_INGEST)) {
			rc = ingest_sync(s->ing);
			if (rc == 0) {
				s->full &= ~(unsigned)FULL_INGEST;
				s->added = 0;
				s->marks_dirty = 1;
			} else if (rc != MTR_ENOSPACE) {
				mtr_log(LOG_ERROR, "server %u: ingest sync: %s", s->cfg.id, mtr_strerror(rc));
				return rc;
			}
		}
		if (rc == 0) {
			rc = ps_rewrite(s);
			if (rc != 0 && rc != MTR_ENOSPACE) {
				mtr_log(LOG_ERROR, "server %u: the Paxos log cannot be rewritten: %s", s->cfg.id,
					mtr_strerror(rc));
				return rc;
			}
		}
		if (rc == 0)
			s->full &= ~(unsigned)(FULL_PAXOS | FULL_SNAPSHOT);
	}
	if (s->full == 0)
		leave(s);
	return 0;
}

/* ---- one commit per accept (doc/storage.md "One commit per accept") ---- */

int srvdisk_accept(struct server *s, const struct paxos_persist *c)
{
	if (s->accq_n == s->accq_cap) {
		size_t nc = s->accq_cap ? s->accq_cap * 2 : 16;
		struct acc_rec *n = realloc(s->accq, nc * sizeof *n);
		if (n == NULL)
			return MTR_ENOMEM;
		s->accq = n;
		s->accq_cap = nc;
	}
	uint8_t *b;
	size_t len;
	int rc = pstore_record(c, &b, &len);
	if (rc != 0)
		return rc;
	/* after every item it names (they are stored: the core checked), in
	 * the same file: a recovery that keeps the record keeps them */
	rc = ingest_log_aux(s->ing, c->inst, b, (uint32_t)len);
	if (rc != 0) {
		free(b);
		if (rc == MTR_ENOSPACE) {
			srvdisk_note(s, FULL_INGEST);
		} else if (rc == MTR_EIO) {
			mtr_log(LOG_ERROR, "server %u: ingest store failed: %s", s->cfg.id, mtr_strerror(rc));
			atomic_store(&s->fatal, 1);
		}
		return rc;
	}
	s->accq[s->accq_n++] = (struct acc_rec){.inst = c->inst, .b = b, .len = len};
	s->added = 1;
	return PAXOS_PERSIST_LATER;
}

static int commit_once(struct server *s);

int srvdisk_commit(struct server *s)
{
	/* the answers may choose an instance and propose the next one, whose
	 * own accept then waits here, not for the next datagram */
	int rc = 0;
	for (int k = 0; k < 4 && rc == 0 && (s->added || s->accq_n > 0); k++) {
		size_t queued = s->accq_n;
		rc = commit_once(s);
		if (queued == 0 || s->accq_n == 0)
			break;
	}
	return rc;
}

static int commit_once(struct server *s)
{
	if (!s->added && s->accq_n == 0)
		return 0;
	uint64_t t0 = now_mono_ns();
	if (s->added) {
		if (s->full & FULL_INGEST)
			return 0; /* srvdisk_tick writes it again */
		/* items alone wait a little for an accept to share the commit */
		if (s->accq_n == 0 && s->added_ns != 0 && t0 - s->added_ns < GROUP_WAIT_NS)
			return 0;
		srvnet_out_flush(s); /* reports and ACCEPTs leave before the sync */
		int rc = ingest_sync(s->ing);
		if (rc == MTR_ENOSPACE) {
			srvdisk_note(s, FULL_INGEST); /* kept: srvdisk_tick writes it again */
			return 0;
		}
		if (rc != 0) {
			mtr_log(LOG_ERROR, "server %u: ingest sync: %s", s->cfg.id, mtr_strerror(rc));
			return rc;
		}
		uint64_t t1 = now_mono_ns();
		if (s->added_ns != 0)
			metrics_hist_observe(&s->stage.ingest, (t1 - s->added_ns) / 1000u);
		if (s->accq_n > 0)
			metrics_hist_observe(&s->stage.persist, (t1 - t0) / 1000u);
		s->added = 0;
		s->added_ns = 0;
		s->marks_dirty = 1; /* the durable watermarks moved */
	}
	if (s->accq_n == 0)
		return 0;
	/* durable: into the Paxos log (written now, synced below, after the
	 * answers left), then the answers */
	for (size_t i = 0; i < s->accq_n; i++) {
		int rc = pstore_merge(s->ps, s->accq[i].b, s->accq[i].len);
		if (rc == MTR_ENOSPACE) {
			/* in the Paxos log's state, not in its file: durable in
			 * the item log, which keeps it until the file is rewritten
			 * whole (ps_rewrite); the disk is full meanwhile */
			s->ps_missing = 1;
			srvdisk_note(s, FULL_PAXOS);
			rc = 0;
		}
		if (rc != 0) {
			/* the record is durable in the item log: a restart takes
			 * it from there (srvdisk_recover_accepts) */
			mtr_log(LOG_ERROR,
				"server %u: the Paxos log cannot take the accept of instance %llu: %s: stopping (a restart "
				"recovers it from the item log)",
				s->cfg.id, (unsigned long long)s->accq[i].inst, mtr_strerror(rc));
			return rc == MTR_ENOSPACE ? MTR_EIO : rc;
		}
		free(s->accq[i].b);
	}
	s->accq_n = 0;
	s->ps_unsynced = 1;
	paxos_persisted(s->px);
	return 0;
}

/* The Paxos log's file written again from its state (pstore_compact
 * keeping every instance) when a full disk cost it records: 0, or
 * MTR_ENOSPACE while the disk is still full, or an error. */
static int ps_rewrite(struct server *s)
{
	if (!s->ps_missing)
		return 0;
	int rc = pstore_compact(s->ps, 0);
	if (rc == 0) {
		s->ps_missing = 0;
		s->ps_unsynced = 0;
		mtr_log(LOG_INFO, "server %u: the Paxos log is whole again (rewritten after the full disk)", s->cfg.id);
	}
	return rc;
}

int srvdisk_before_delete(void *arg)
{
	/* the Paxos log's copies of the accept records: durable before the
	 * item log deletes a segment that may hold the originals.  Not on a
	 * write's path: segments go seldom (and at close, promise, compaction
	 * the Paxos log is synced anyway).  A file that lacks records is
	 * written whole first; while the disk is full, nothing is deleted
	 * (MTR_ENOSPACE: the item log's sync waits in the full state) */
	struct server *s = arg;
	int wrc = ps_rewrite(s);
	if (wrc != 0)
		return wrc;
	if (!s->ps_unsynced)
		return 0;
	int rc = pstore_sync(s->ps);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "server %u: the Paxos log cannot be written: stopping (a restart recovers it)",
			s->cfg.id);
		return rc;
	}
	s->ps_unsynced = 0;
	return 0;
}

static int merge_one(void *arg, uint64_t key, const uint8_t *body, uint32_t len)
{
	struct server *s = arg;
	int rc = pstore_merge(s->ps, body, len);
	if (rc == MTR_EMALFORMED || rc == MTR_EINTEGRITY) {
		/* checked by the item log's hash already: not ours to stop on */
		mtr_log(LOG_WARN, "server %u: an accept record of instance %llu in the item log is not valid: skipped",
			s->cfg.id, (unsigned long long)key);
		return 0;
	}
	if (rc == 0)
		s->acc_checked++; /* reused as the count for the log line */
	return rc;
}

int srvdisk_recover_accepts(struct server *s)
{
	s->acc_checked = 0;
	int rc = ingest_aux_each(s->ing, merge_one, s);
	if (rc == 0 && s->acc_checked > 0) {
		rc = pstore_sync(s->ps);
		mtr_log(LOG_INFO, "server %u: %llu accepts taken from the item log into the Paxos log", s->cfg.id,
			(unsigned long long)s->acc_checked);
	}
	s->acc_checked = 0;
	return rc;
}

void srvdisk_check_answer(struct server *s, uint64_t inst)
{
	s->acc_checked++;
	for (size_t i = 0; i < s->accq_n; i++)
		if (s->accq[i].inst == inst) {
			s->acc_early++; /* its record is not durable */
			return;
		}
	uint64_t ballot;
	const struct batch *v;
	if (pstore_get(s->ps, inst, &ballot, &v) != 0)
		return; /* compacted: chosen and applied everywhere */
	for (uint32_t i = 0; i < v->n; i++)
		if (!ingest_holds(s->ing, v->r[i].stream, v->r[i].last)) {
			s->acc_early++; /* an item it names is not durable */
			return;
		}
}

void srvdisk_free(struct server *s)
{
	for (size_t i = 0; i < s->accq_n; i++)
		free(s->accq[i].b);
	free(s->accq);
	s->accq = NULL;
	s->accq_n = s->accq_cap = 0;
}
