/*
 * pstore.c - the durable acceptor state (see pstore.h, doc/pstore.md).
 *
 * The log is read whole on open: compaction keeps it bounded, and recovery
 * then is a single pass over a buffer.  The state is kept in memory as the
 * promised ballot plus a sorted array of accepted instances, so compaction
 * can write a fresh log from memory without rereading the old one.
 *
 * Appends go at ps->size with pwrite.  A failed or short write is undone by
 * cutting the file back to ps->size: otherwise a garbage tail would end
 * recovery early and hide every later (acknowledged) record.  If even the
 * cut fails the store is marked broken and refuses all later writes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "log.h"
#include "metronome.h"
#include "pstore.h"
#include "util.h"

#define PSTORE_MAGIC "MTRPST01"
#define PSTORE_MAGIC_LEN 8u
#define PSTORE_REC_OVERHEAD 12u /* u32 length + u64 hash */

enum { REC_PROMISE = 1, REC_ACCEPT = 2 };

struct acc {
	uint64_t inst;
	uint64_t ballot;
	struct batch v;
};

struct pstore {
	char *dir;  /* DATA/paxos */
	char *path; /* DATA/paxos/log */
	char *tmp;  /* DATA/paxos/log.tmp */
	int fd;
	uint64_t size;
	bool sync;
	bool broken;
	uint64_t promised;
	struct acc *a; /* sorted by inst */
	size_t n, cap;
};

/* ---- in-memory state ---- */

/* Index of the first entry with inst >= key. */
static size_t acc_lower(const struct pstore *ps, uint64_t key)
{
	size_t lo = 0, hi = ps->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ps->a[mid].inst < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Apply one change: the promise only grows; an instance keeps the value of
 * its highest ballot (a later record of an equal ballot replaces it). */
static int state_apply(struct pstore *ps, int kind, uint64_t ballot, uint64_t inst, const struct batch *v)
{
	if (ballot > ps->promised)
		ps->promised = ballot;
	if (kind != REC_ACCEPT)
		return 0;
	size_t i = acc_lower(ps, inst);
	if (i < ps->n && ps->a[i].inst == inst) {
		if (ballot < ps->a[i].ballot)
			return 0;
		struct batch copy = { 0 };
		if (batch_copy(&copy, v) != 0)
			return MTR_ENOMEM;
		batch_free(&ps->a[i].v);
		ps->a[i].v = copy;
		ps->a[i].ballot = ballot;
		return 0;
	}
	if (ps->n == ps->cap) {
		size_t nc = ps->cap ? ps->cap * 2 : 64;
		struct acc *na = realloc(ps->a, nc * sizeof *na);
		if (na == NULL)
			return MTR_ENOMEM;
		ps->a = na;
		ps->cap = nc;
	}
	struct acc e = { .inst = inst, .ballot = ballot, .v = { 0 } };
	if (batch_copy(&e.v, v) != 0)
		return MTR_ENOMEM;
	memmove(&ps->a[i + 1], &ps->a[i], (ps->n - i) * sizeof *ps->a);
	ps->a[i] = e;
	ps->n++;
	return 0;
}

static void state_free(struct pstore *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		batch_free(&ps->a[i].v);
	free(ps->a);
	ps->a = NULL;
	ps->n = ps->cap = 0;
}

/* ---- records ---- */

/* Encode one record into a malloc'd buffer (*out, *len). */
static int rec_encode(int kind, uint64_t ballot, uint64_t inst, const struct batch *v, uint8_t **out, size_t *len)
{
	size_t body = 1 + 8 + (kind == REC_ACCEPT ? 8 + batch_encoded_size(v) : 0);
	if (body > PSTORE_MAX_BODY)
		return MTR_ETOOBIG;
	uint8_t *b = malloc(body + PSTORE_REC_OVERHEAD);
	if (b == NULL)
		return MTR_ENOMEM;
	st32(b, (uint32_t)body);
	b[4] = (uint8_t)kind;
	st64(b + 5, ballot);
	if (kind == REC_ACCEPT) {
		st64(b + 13, inst);
		int w = batch_encode(v, b + 21, body - 17);
		if (w < 0) {
			free(b);
			return w;
		}
	}
	st64(b + 4 + body, XXH3_64bits(b, 4 + body));
	*out = b;
	*len = body + PSTORE_REC_OVERHEAD;
	return 0;
}

/* Parse the record at buf[0..len): 0 and its size in *used, or a negative
 * code when it is torn (MTR_ETRUNCATED) or corrupt (anything else).  The
 * state is changed only for an intact record. */
static int rec_parse(struct pstore *ps, const uint8_t *buf, size_t len, size_t *used)
{
	if (len < 4)
		return MTR_ETRUNCATED;
	uint32_t body = ld32(buf);
	if (body < 9 || body > PSTORE_MAX_BODY)
		return MTR_EMALFORMED;
	if (len < (size_t)body + PSTORE_REC_OVERHEAD)
		return MTR_ETRUNCATED;
	if (XXH3_64bits(buf, 4 + (size_t)body) != ld64(buf + 4 + body))
		return MTR_EINTEGRITY;
	const uint8_t *p = buf + 4;
	int kind = p[0];
	uint64_t ballot = ld64(p + 1);
	int rc;
	if (kind == REC_PROMISE) {
		if (body != 9)
			return MTR_EMALFORMED;
		rc = state_apply(ps, kind, ballot, 0, NULL);
	} else if (kind == REC_ACCEPT) {
		if (body < 17)
			return MTR_EMALFORMED;
		struct batch v = { 0 };
		size_t vused = 0;
		rc = batch_decode(&v, p + 17, body - 17, &vused);
		if (rc == MTR_ENOMEM)
			return rc;
		if (rc != 0 || vused != body - 17) {
			batch_free(&v);
			return MTR_EMALFORMED;
		}
		rc = state_apply(ps, kind, ballot, ld64(p + 9), &v);
		batch_free(&v);
	} else {
		return MTR_EMALFORMED;
	}
	if (rc != 0)
		return rc;
	*used = (size_t)body + PSTORE_REC_OVERHEAD;
	return 0;
}

/* ---- file helpers ---- */

/* pwrite all of b at off: 0, MTR_ENOSPACE (disk full or quota; a short
 * write counts as full) or MTR_EIO; errno is kept. */
static int write_at(int fd, const uint8_t *b, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, b, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0)
			errno = ENOSPC;
		if (w <= 0)
			return errno == ENOSPC || errno == EDQUOT ? MTR_ENOSPACE : MTR_EIO;
		b += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		mtr_log(LOG_ERROR, "pstore: fsync of directory %s: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return MTR_EIO;
	}
	close(fd);
	return 0;
}

/* Read the whole file into a malloc'd buffer. */
static int read_all(struct pstore *ps, uint8_t **out, size_t *len)
{
	struct stat st;
	if (fstat(ps->fd, &st) != 0) {
		mtr_log(LOG_ERROR, "pstore: stat %s: %s", ps->path, strerror(errno));
		return MTR_EIO;
	}
	size_t sz = (size_t)st.st_size;
	uint8_t *b = malloc(sz ? sz : 1);
	if (b == NULL)
		return MTR_ENOMEM;
	size_t got = 0;
	while (got < sz) {
		ssize_t r = pread(ps->fd, b + got, sz - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			mtr_log(LOG_ERROR, "pstore: read %s at offset %zu: %s", ps->path, got, strerror(errno));
			free(b);
			return MTR_EIO;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*out = b;
	*len = got;
	return 0;
}

/* Cut the file to len bytes and make the cut durable. */
static int cut_to(struct pstore *ps, uint64_t len)
{
	if (ftruncate(ps->fd, (off_t)len) != 0 || fdatasync(ps->fd) != 0) {
		mtr_log(LOG_ERROR, "pstore: truncate %s to offset %" PRIu64 ": %s", ps->path, len, strerror(errno));
		return MTR_EIO;
	}
	ps->size = len;
	return 0;
}

/* Recover the state from the open file (see doc/pstore.md). */
static int recover(struct pstore *ps)
{
	uint8_t *buf;
	size_t len;
	int rc = read_all(ps, &buf, &len);
	if (rc != 0)
		return rc;
	if (len < PSTORE_MAGIC_LEN) {
		/* New file, or a crash while creating it. */
		if (memcmp(buf, PSTORE_MAGIC, len) != 0) {
			mtr_log(LOG_ERROR, "pstore: %s is not a pstore log (bad magic at offset 0)", ps->path);
			free(buf);
			return MTR_EMAGIC;
		}
		free(buf);
		if (ftruncate(ps->fd, 0) != 0 ||
		    write_at(ps->fd, (const uint8_t *)PSTORE_MAGIC, PSTORE_MAGIC_LEN, 0) != 0 ||
		    fdatasync(ps->fd) != 0) {
			mtr_log(LOG_ERROR, "pstore: cannot write header of %s at offset 0", ps->path);
			return MTR_EIO;
		}
		ps->size = PSTORE_MAGIC_LEN;
		return fsync_dir(ps->dir);
	}
	if (memcmp(buf, PSTORE_MAGIC, PSTORE_MAGIC_LEN) != 0) {
		mtr_log(LOG_ERROR, "pstore: %s is not a pstore log (bad magic at offset 0)", ps->path);
		free(buf);
		return MTR_EMAGIC;
	}
	size_t off = PSTORE_MAGIC_LEN, records = 0;
	while (off < len) {
		size_t used = 0;
		rc = rec_parse(ps, buf + off, len - off, &used);
		if (rc == MTR_ENOMEM) {
			free(buf);
			return rc;
		}
		if (rc != 0) {
			mtr_log(LOG_WARN, "pstore: %s: %s record at offset %zu (%s): %zu bytes cut off", ps->path,
				rc == MTR_ETRUNCATED ? "torn" : "corrupt", off, mtr_errname(rc), len - off);
			break;
		}
		off += used;
		records++;
	}
	free(buf);
	ps->size = off;
	if (off < len && (rc = cut_to(ps, off)) != 0)
		return rc;
	mtr_log(LOG_INFO, "pstore: %s: recovered %zu records, promise %" PRIu64 ", %zu accepted instances",
		ps->path, records, ps->promised, ps->n);
	return 0;
}

/* ---- API ---- */

int pstore_open(const char *dir, struct pstore **out)
{
	if (dir == NULL || out == NULL)
		return MTR_EINVAL;
	*out = NULL;
	struct pstore *ps = calloc(1, sizeof *ps);
	if (ps == NULL)
		return MTR_ENOMEM;
	ps->fd = -1;
	ps->sync = true;
	if (asprintf(&ps->dir, "%s/paxos", dir) < 0 || asprintf(&ps->path, "%s/log", ps->dir) < 0 ||
	    asprintf(&ps->tmp, "%s/log.tmp", ps->dir) < 0) {
		pstore_close(ps);
		return MTR_ENOMEM;
	}
	if (mkdir(ps->dir, 0755) == 0) {
		/* A new directory: make its entry in DATA durable. */
		if (fsync_dir(dir) != 0) {
			pstore_close(ps);
			return MTR_EIO;
		}
	} else if (errno != EEXIST) {
		mtr_log(LOG_ERROR, "pstore: mkdir %s: %s", ps->dir, strerror(errno));
		pstore_close(ps);
		return MTR_EIO;
	}
	ps->fd = open(ps->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (ps->fd < 0) {
		mtr_log(LOG_ERROR, "pstore: open %s: %s", ps->path, strerror(errno));
		pstore_close(ps);
		return MTR_EIO;
	}
	unlink(ps->tmp); /* a compaction that crashed before its rename */
	int rc = recover(ps);
	if (rc != 0) {
		pstore_close(ps);
		return rc;
	}
	*out = ps;
	return 0;
}

void pstore_close(struct pstore *ps)
{
	if (ps == NULL)
		return;
	if (ps->fd >= 0)
		close(ps->fd);
	state_free(ps);
	free(ps->dir);
	free(ps->path);
	free(ps->tmp);
	free(ps);
}

void pstore_set_sync(struct pstore *ps, bool sync) { ps->sync = sync; }

/* Write the encoded record b[0..len) at the end of the file (no sync); on a
 * failure the file is cut back to its length before (if even that fails the
 * store is broken: MTR_EIO).  ps->size is not moved. */
static int put(struct pstore *ps, const uint8_t *b, size_t len)
{
	int rc = write_at(ps->fd, b, len, ps->size);
	if (rc != 0) {
		/* a full disk is the host's state to report (doc/server.md "A
		 * full disk"): not an error line per refused promise */
		mtr_log(rc == MTR_ENOSPACE ? LOG_DEBUG : LOG_ERROR, "pstore: write %s at offset %" PRIu64 ": %s",
			ps->path, ps->size, strerror(errno));
		if (ftruncate(ps->fd, (off_t)ps->size) != 0) {
			mtr_log(LOG_ERROR, "pstore: truncate %s to offset %" PRIu64 " after a failed write: %s",
				ps->path, ps->size, strerror(errno));
			ps->broken = true;
			return MTR_EIO;
		}
	}
	return rc;
}

int pstore_append(struct pstore *ps, const struct paxos_persist *c)
{
	if (ps == NULL || c == NULL)
		return MTR_EINVAL;
	if (ps->broken) {
		mtr_log(LOG_ERROR, "pstore: %s is broken after a failed write, refusing to append", ps->path);
		return MTR_EIO;
	}
	int kind;
	if (c->kind == PAXOS_PERSIST_PROMISE) {
		kind = REC_PROMISE;
	} else if (c->kind == PAXOS_PERSIST_ACCEPT && c->value != NULL && batch_validate(c->value) == 0) {
		kind = REC_ACCEPT;
	} else {
		mtr_log(LOG_ERROR, "pstore: %s: bad change (kind %d) at offset %" PRIu64, ps->path, (int)c->kind,
			ps->size);
		return MTR_EINVAL;
	}
	uint8_t *b;
	size_t len;
	int rc = rec_encode(kind, c->ballot, c->inst, c->value, &b, &len);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "pstore: %s: cannot encode record at offset %" PRIu64 ": %s", ps->path, ps->size,
			mtr_errname(rc));
		return rc;
	}
	rc = put(ps, b, len);
	free(b);
	if (rc != 0)
		return rc;
	/* The record is in the file: a failure to update memory would make
	 * compaction lose it, so such a store refuses further work. */
	rc = state_apply(ps, kind, c->ballot, c->inst, c->value);
	if (rc != 0) {
		mtr_log(LOG_ERROR, "pstore: %s: out of memory after the record at offset %" PRIu64, ps->path,
			ps->size);
		ps->broken = true;
		return rc;
	}
	ps->size += len;
	return 0;
}

int pstore_record(const struct paxos_persist *c, uint8_t **out, size_t *len)
{
	if (c == NULL || c->kind != PAXOS_PERSIST_ACCEPT || c->value == NULL || batch_validate(c->value) != 0)
		return MTR_EINVAL;
	return rec_encode(REC_ACCEPT, c->ballot, c->inst, c->value, out, len);
}

int pstore_merge(struct pstore *ps, const uint8_t *rec, size_t len)
{
	if (ps == NULL || rec == NULL)
		return MTR_EINVAL;
	if (ps->broken)
		return MTR_EIO;
	/* check it whole before it changes anything: rec_parse changes the
	 * state only for an intact record */
	size_t used = 0;
	if (len < 5 || rec[4] != REC_ACCEPT)
		return MTR_EMALFORMED;
	int rc = rec_parse(ps, rec, len, &used);
	if (rc != 0)
		return rc == MTR_ETRUNCATED ? MTR_EMALFORMED : rc;
	if (used != len)
		return MTR_EMALFORMED;
	/* in the state now (so a compaction keeps it even if this write
	 * fails: it is durable in the item log already) */
	rc = put(ps, rec, len);
	if (rc != 0)
		return rc;
	ps->size += len;
	return 0;
}

int pstore_sync(struct pstore *ps)
{
	if (!ps->sync)
		return 0;
	if (fdatasync(ps->fd) != 0) {
		/* After a failed fdatasync the page cache state is unknown:
		 * nothing written since the last good sync can be trusted. */
		mtr_log(LOG_ERROR, "pstore: fdatasync %s (size %" PRIu64 "): %s", ps->path, ps->size, strerror(errno));
		ps->broken = true;
		return MTR_EIO;
	}
	return 0;
}

int pstore_persist(void *data, const struct paxos_persist *change)
{
	struct pstore *ps = data;
	int rc = pstore_append(ps, change);
	return rc != 0 ? rc : pstore_sync(ps);
}

int pstore_replay(const struct pstore *ps, struct paxos *p)
{
	int rc = paxos_restore_promise(p, ps->promised);
	for (size_t i = 0; rc == 0 && i < ps->n; i++)
		rc = paxos_restore_accepted(p, ps->a[i].inst, ps->a[i].ballot, &ps->a[i].v);
	return rc;
}

/* Append one encoded record to the temp file during compaction. */
static int compact_put(struct pstore *ps, int fd, uint64_t *off, int kind, uint64_t ballot, uint64_t inst,
		       const struct batch *v)
{
	uint8_t *b;
	size_t len;
	int rc = rec_encode(kind, ballot, inst, v, &b, &len);
	if (rc != 0)
		return rc;
	rc = write_at(fd, b, len, *off);
	free(b);
	if (rc != 0) {
		mtr_log(rc == MTR_ENOSPACE ? LOG_DEBUG : LOG_ERROR, "pstore: write %s at offset %" PRIu64 ": %s",
			ps->tmp, *off, strerror(errno));
		return rc;
	}
	*off += len;
	return 0;
}

int pstore_compact(struct pstore *ps, uint64_t upto)
{
	if (ps->broken)
		return MTR_EIO;
	int fd = open(ps->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int full = errno == ENOSPC || errno == EDQUOT;
		mtr_log(full ? LOG_DEBUG : LOG_ERROR, "pstore: open %s: %s", ps->tmp, strerror(errno));
		return full ? MTR_ENOSPACE : MTR_EIO;
	}
	uint64_t off = PSTORE_MAGIC_LEN;
	size_t first = upto == UINT64_MAX ? ps->n : acc_lower(ps, upto + 1);
	int rc = write_at(fd, (const uint8_t *)PSTORE_MAGIC, PSTORE_MAGIC_LEN, 0);
	if (rc == 0 && ps->promised > 0)
		rc = compact_put(ps, fd, &off, REC_PROMISE, ps->promised, 0, NULL);
	for (size_t i = first; rc == 0 && i < ps->n; i++)
		rc = compact_put(ps, fd, &off, REC_ACCEPT, ps->a[i].ballot, ps->a[i].inst, &ps->a[i].v);
	if (rc == 0 && fsync(fd) != 0) {
		mtr_log(LOG_ERROR, "pstore: fsync %s: %s", ps->tmp, strerror(errno));
		rc = MTR_EIO;
	}
	if (rc == 0 && rename(ps->tmp, ps->path) != 0) {
		mtr_log(LOG_ERROR, "pstore: rename %s to %s: %s", ps->tmp, ps->path, strerror(errno));
		rc = MTR_EIO;
	}
	if (rc != 0) {
		close(fd);
		unlink(ps->tmp);
		return rc;
	}
	/* The rename is done: from here the new file is the log, even if the
	 * directory sync fails (then the rename may not survive power loss,
	 * but either file holds the full state above upto). */
	close(ps->fd);
	ps->fd = fd;
	uint64_t old = ps->size;
	ps->size = off;
	for (size_t i = 0; i < first; i++)
		batch_free(&ps->a[i].v);
	memmove(ps->a, ps->a + first, (ps->n - first) * sizeof *ps->a);
	ps->n -= first;
	rc = fsync_dir(ps->dir);
	mtr_log(LOG_INFO, "pstore: %s compacted through instance %" PRIu64 ": %" PRIu64 " -> %" PRIu64 " bytes",
		ps->path, upto, old, off);
	return rc;
}

uint64_t pstore_size(const struct pstore *ps) { return ps->size; }

uint64_t pstore_promised(const struct pstore *ps) { return ps->promised; }

size_t pstore_count(const struct pstore *ps) { return ps->n; }

int pstore_at(const struct pstore *ps, size_t i, uint64_t *inst, uint64_t *ballot, const struct batch **value)
{
	if (i >= ps->n)
		return MTR_EINVAL;
	*inst = ps->a[i].inst;
	*ballot = ps->a[i].ballot;
	*value = &ps->a[i].v;
	return 0;
}

int pstore_get(const struct pstore *ps, uint64_t inst, uint64_t *ballot, const struct batch **value)
{
	size_t i = acc_lower(ps, inst);
	if (i >= ps->n || ps->a[i].inst != inst)
		return MTR_ENOENT;
	*ballot = ps->a[i].ballot;
	*value = &ps->a[i].v;
	return 0;
}
