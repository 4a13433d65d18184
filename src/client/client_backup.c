/*
 * client_backup.c - mtr_backup (metronome.h; doc/client.md "Backup"): a
 * BACKUP frame to the proxy, then its BACKUP_PART frames (BEGIN, DATA...,
 * END) written into PATH.tmp, which becomes PATH once complete.  The proxy
 * relays a consistent snapshot of one server's replica (doc/server.md
 * "Backup and restore"); the client holds one part at a time.
 *
 * The file received is the replica itself: mtr_meta is then reduced with
 * SQLite to the cluster settings plus backup_instance and backup_time, and
 * mtr_conf (the membership of the cluster it came from) is dropped, so
 * that the copy restores anywhere (--init-from drops the replica's other
 * tables).  mtr_cursor and mtr_requests stay: a point-in-time restore
 * replays later instances on the copy, and needs mtr_requests to answer a
 * resent write as the replicas did (doc/apply.md "Resends").
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "client_int.h"
#include "cproto.h"
#include "log.h"
#include "util.h"

/* No part for this long: give up (the proxy gives up earlier and says why;
 * before the first part the server makes its copy, which takes a while). */
#define BK_WAIT_FIRST_MS (3700 * 1000)
#define BK_WAIT_PART_MS (120 * 1000)

struct bk {
	mtr *db;
	int fd;
	uint64_t instance, size, done;
	int begun, ended;
	mtr_progress_fn progress;
	void *arg;
};

/* One frame of the copy.  0: go on; 1: END with status 0; < 0: failed
 * (the error is recorded on db). */
static int bk_frame(void *arg, const struct cproto_frame *f)
{
	struct bk *b = arg;
	mtr *db = b->db;
	int rc = 0;
	struct cproto_part pt;
	if (f->type != CPROTO_T_BACKUP_PART || cproto_get_part(f, &pt) != 0) {
		rc = client_err(db, MTR_EIO, "unexpected %s frame from the proxy", cproto_type_name(f->type));
	} else if (pt.kind == CPROTO_PART_BEGIN && !b->begun) {
		b->begun = 1;
		b->instance = pt.instance;
		b->size = pt.size;
		mtr_log(LOG_DEBUG, "client: backup of instance %llu from server %u, %llu bytes",
			(unsigned long long)pt.instance, pt.server, (unsigned long long)pt.size);
	} else if (pt.kind == CPROTO_PART_DATA && b->begun && pt.len <= b->size - b->done) {
		const uint8_t *p = pt.data;
		size_t n = pt.len;
		while (n > 0) {
			ssize_t w = write(b->fd, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = client_err(db, MTR_EIO, "writing the copy: %s", strerror(errno));
				break;
			}
			p += w;
			n -= (size_t)w;
		}
		b->done += pt.len;
	} else if (pt.kind == CPROTO_PART_END) {
		b->ended = 1;
		if (pt.status != 0)
			rc = client_err(db, pt.status, "%.*s", (int)pt.msg_len, pt.msg);
		else if (!b->begun || b->done != b->size)
			rc = client_err(db, MTR_EIO, "the proxy ended after %llu of %llu bytes",
					(unsigned long long)b->done, (unsigned long long)b->size);
		else
			rc = 1;
	} else {
		rc = client_err(db, MTR_EIO, "a part out of order from the proxy");
	}
	if (rc == 0 && b->begun && b->progress && b->progress(b->arg, b->done, b->size, b->instance) != 0)
		rc = client_err(db, MTR_EABORT, "backup abandoned by the progress callback");
	return rc;
}

static int control_frame(mtr *db, const struct cproto_frame *f)
{
	if (f->type == CPROTO_T_PING) {
		uint64_t token;
		if (cproto_get_ping(f, &token) == 0 && cproto_put_ping(&db->out, CPROTO_T_PONG, token) != 0)
			return client_err(db, MTR_ENOMEM, "out of memory");
		return 1;
	}
	if (f->type != CPROTO_T_BYE)
		return 0;
	struct cproto_bye y;
	if (cproto_get_bye(f, &y) == 0)
		return client_err(db, MTR_EIO, "the proxy said bye: %s: %.*s", mtr_strerror(y.status), (int)y.msg_len,
				  y.msg);
	return client_err(db, MTR_EIO, "malformed BYE");
}

int client_frames(mtr *db, int (*fn)(void *arg, const struct cproto_frame *f), void *arg)
{
	size_t off = 0;
	int rc = 0;
	while (rc == 0 && off < db->in_len) {
		struct cproto_frame f;
		long used = cproto_frame_next(db->in + off, db->in_len - off, CPROTO_MAX_FRAME, &f);
		if (used == 0)
			break;
		if (used < 0) {
			rc = client_err(db, MTR_EIO, "bad frame from the proxy: %s", mtr_strerror((int)used));
			break;
		}
		off += (size_t)used;
		int cf = control_frame(db, &f);
		rc = cf < 0 ? cf : cf > 0 ? 0 : fn(arg, &f);
	}
	memmove(db->in, db->in + off, db->in_len - off);
	db->in_len -= off;
	return rc;
}

int client_exchange(mtr *db, int (*frames)(void *arg), int (*wait_ms)(void *arg), void *arg)
{
	int rc;
	for (;;) {
		rc = frames(arg);
		if (rc != 0)
			break;
		if (db->out.len && client_conn_write(db) != 0) {
			rc = client_err(db, MTR_EIO, "connection to the proxy lost: %s", strerror(errno));
			break;
		}
		int wait = wait_ms(arg);
		struct pollfd pfd = {.fd = db->fd, .events = POLLIN | (db->out.len ? POLLOUT : 0)};
		int pr = poll(&pfd, 1, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			rc = client_err(db, MTR_ETIMEDOUT, "nothing from the proxy for %d s", wait / 1000);
			break;
		}
		if (pr < 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		long r = client_conn_read(db);
		if (r == MTR_EAGAIN)
			continue;
		if (r <= 0) {
			rc = client_err(db, r == MTR_ENOMEM ? MTR_ENOMEM : MTR_EIO,
					"connection to the proxy lost (%s)", r == 0 ? "closed" : mtr_strerror((int)r));
			break;
		}
	}
	return rc;
}

static int bk_frames(void *arg)
{
	struct bk *b = arg;
	return client_frames(b->db, bk_frame, b);
}

static int bk_wait_ms(void *arg)
{
	const struct bk *b = arg;
	return b->begun ? BK_WAIT_PART_MS : BK_WAIT_FIRST_MS;
}

/* Receive the copy into b->fd.  0 or an error recorded on db. */
static int bk_receive(struct bk *b)
{
	mtr *db = b->db;
	uint64_t deadline = db->timeout_ms > 0 ? now_mono_ns() + (uint64_t)db->timeout_ms * 1000000u : 0;
	int rc = client_conn_ensure(db, deadline);
	if (rc != 0)
		return rc;
	if (cproto_put_backup(&db->out, db->last_instance) != 0)
		return client_err(db, MTR_ENOMEM, "out of memory");
	if (b->progress && b->progress(b->arg, 0, 0, 0) != 0)
		return client_err(db, MTR_EABORT, "backup abandoned by the progress callback");
	rc = client_exchange(db, bk_frames, bk_wait_ms, b);
	if (!b->ended && db->fd >= 0)
		client_conn_lost(db, "backup interrupted"); /* the rest of the stream is of no use */
	return rc == 1 ? 0 : rc;
}

/* Reduce the replica's own tables of the copy (see the top of the file). */
static int bk_finish_db(mtr *db, const char *tmp, uint64_t instance)
{
	sqlite3 *s = NULL;
	int rc = 0;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	char *sql = sqlite3_mprintf("BEGIN; DROP TABLE IF EXISTS mtr_conf;"
				    "DELETE FROM mtr_meta WHERE key NOT IN ('max_steps', 'foreign_keys');"
				    "INSERT INTO mtr_meta VALUES('backup_instance', %lld);"
				    "INSERT INTO mtr_meta VALUES('backup_time', %Q); COMMIT",
				    (long long)instance, when);
	if (sql == NULL || sqlite3_open_v2(tmp, &s, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(s, sql, NULL, NULL, NULL) != SQLITE_OK)
		rc = client_err(db, MTR_EIO, "preparing the copy %s: %s", tmp,
				s ? sqlite3_errmsg(s) : "out of memory");
	sqlite3_free(sql);
	sqlite3_close(s);
	return rc;
}

MTR_API int mtr_backup(mtr *db, const char *path, mtr_progress_fn progress, void *arg)
{
	if (db == NULL)
		return MTR_EINVAL;
	if (path == NULL || path[0] == 0)
		return client_err(db, MTR_EINVAL, "no file name");
	if (db->head || db->in_txn)
		return client_err(db, MTR_EBUSY,
				  "the handle has requests in flight or an open transaction: finish them first");
	char *tmp = malloc(strlen(path) + 5);
	if (tmp == NULL)
		return client_err(db, MTR_ENOMEM, "out of memory");
	sprintf(tmp, "%s.tmp", path);
	struct bk b = {.db = db, .progress = progress, .arg = arg};
	b.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;
	if (b.fd < 0) {
		rc = client_err(db, MTR_EIO, "cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return rc;
	}
	rc = bk_receive(&b);
	if (rc == 0 && fsync(b.fd) != 0)
		rc = client_err(db, MTR_EIO, "syncing %s: %s", tmp, strerror(errno));
	close(b.fd);
	if (rc == 0)
		rc = bk_finish_db(db, tmp, b.instance);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = client_err(db, MTR_EIO, "renaming %s to %s: %s", tmp, path, strerror(errno));
	if (rc != 0) {
		unlink(tmp);
	} else {
		if (b.instance > db->last_instance)
			db->last_instance = b.instance;
		client_ok(db);
	}
	free(tmp);
	return rc;
}
