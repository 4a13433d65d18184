/*
 * seglog.c - the append-only segment log (see seglog.h, doc/storage.md).
 *
 * Segments live in one array indexed by (id - base_id); entries of deleted
 * segments are kept as holes until the front of the array is all holes.
 * Disk mode: the active segment has one write buffer that starts at file
 * offset wbase; a record is either entirely in the buffer or entirely written
 * (the buffer is written whole), so a read is served from one place.
 * Writes use pwrite at explicit offsets, never the file position.  With
 * direct writes the buffer is the head of a ring that also keeps the bytes
 * written last (dio_flush, doc/storage.md "Direct writes").
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xxhash.h>

#include "log.h"
#include "metronome.h"
#include "seglog.h"
#include "util.h"

static const uint8_t seg_magic[8] = { 'M', 'T', 'R', 'N', 'S', 'E', 'G', '1' };
static const uint8_t state_magic[8] = { 'M', 'T', 'R', 'N', 'S', 'T', 'A', '1' };

struct seg {
	uint32_t id;
	int exists;   /* 0: a hole (deleted, or never existed) */
	int doomed;   /* no live record, not active: delete at the next sync (or when retention ends) */
	uint64_t dead_ms; /* wall time (ms) at which it became doomed: retention counts from it */
	int fd;       /* disk: open file, or -1 */
	uint8_t *mem; /* memory mode: the chunk */
	uint64_t cap; /* memory mode: chunk size */
	uint64_t size; /* logical size: header + records (buffered ones included) */
	uint64_t alloc; /* disk: the file's size when allocated ahead of size, else 0 */
	uint64_t live; /* records not yet unref'ed */
};

struct seglog {
	enum seglog_mode mode;
	char *dir;
	int dirfd;
	uint64_t seg_size;
	uint32_t max_rec;
	struct seg *segs; /* segs[i] has id base_id + i */
	uint32_t nsegs, segs_cap, base_id;
	uint32_t next_id;  /* id of the next segment created */
	int have_active;
	uint32_t active;   /* id of the active segment when have_active */
	int recovered;
	int unsynced;      /* appended since the last fdatasync */
	int dir_dirty;     /* a segment file was created since the last dir fsync */
	int no_prealloc;   /* the file system cannot allocate ahead (EOPNOTSUPP) */
	uint32_t ndoomed;
	/* retention (doc/storage.md "Retention"): doomed segments stay until
	 * older than retain_ms or, oldest first, while over retain_bytes */
	uint64_t retain_bytes, retain_ms;
	uint64_t now_ms;      /* wall time given by seglog_set_now */
	int drop_retained;    /* seglog_retain_drop: delete every doomed segment at the next sync */
	int died;             /* a segment was doomed since the last state save */
	/* disk write buffer of the active segment */
	uint8_t *wbuf;
	uint32_t wcap, wlen;
	uint64_t wbase;
	/* the active segment's page cache is given back below dropped, up to
	 * cache_keep bytes behind its end (doc/storage.md "Page cache") */
	uint64_t dropped, cache_keep;
	/* direct writes (doc/storage.md "Direct writes"): the active segment
	 * is written through dfd (O_DIRECT) from the ring, which holds its
	 * bytes [dlo, wbase + wlen) at offset % rsize; the write buffer is
	 * then not used.  no_direct: never (seglog_opts, or the file system
	 * refused O_DIRECT) */
	int direct, no_direct, dfd;
	uint8_t *ring;
	uint64_t rsize, dlo;
	/* read-ahead cache (disk mode): one span of a segment file, so that
	 * apply reading a batch's items in order costs one pread per span,
	 * not one per item.  Files are append-only: a span never goes stale
	 * (a deleted segment is no longer found by seg_find). */
	uint8_t *rcache;
	uint32_t rlen, rseg;
	uint64_t rbase;
	/* state blob */
	uint8_t *state;
	size_t state_len;
	struct seglog_stats st;
};

/* ---- helpers ---------------------------------------------------------- */

static struct seg *seg_find(struct seglog *log, uint32_t id)
{
	if (id < log->base_id || id - log->base_id >= log->nsegs)
		return NULL;
	struct seg *s = &log->segs[id - log->base_id];
	return s->exists ? s : NULL;
}

static int seg_add(struct seglog *log, uint32_t id, struct seg **out)
{
	if (log->nsegs == 0)
		log->base_id = id;
	/* ids only grow: drop leading holes first */
	uint32_t skip = 0;
	while (skip < log->nsegs && !log->segs[skip].exists)
		skip++;
	if (skip) {
		memmove(log->segs, log->segs + skip, (log->nsegs - skip) * sizeof *log->segs);
		log->nsegs -= skip;
		log->base_id += skip;
		if (log->nsegs == 0)
			log->base_id = id;
	}
	uint32_t need = id - log->base_id + 1;
	if (need > log->segs_cap) {
		uint32_t cap = log->segs_cap ? log->segs_cap : 16;
		while (cap < need)
			cap *= 2;
		struct seg *n = realloc(log->segs, cap * sizeof *n);
		if (!n)
			return MTR_ENOMEM;
		log->segs = n;
		log->segs_cap = cap;
	}
	for (uint32_t i = log->nsegs; i < need; i++)
		log->segs[i] = (struct seg){ .id = log->base_id + i, .fd = -1 };
	log->nsegs = need;
	*out = &log->segs[id - log->base_id];
	(*out)->exists = 1;
	log->st.segs_live++;
	return 0;
}

static void seg_delete(struct seglog *log, struct seg *s);

/* s has no live record and is not active: delete it at the next sync, or
 * keep it until its retention ends (at = its time of death, wall ms). */
static void seg_doom(struct seglog *log, struct seg *s, uint64_t at)
{
	s->doomed = 1;
	s->dead_ms = at;
	log->ndoomed++;
	log->died = 1;
	if (log->mode == SEGLOG_MEMORY) {
		seg_delete(log, s);
	} else if (s->fd >= 0) {
		/* never read again by the log: a long retention holds no fds */
		close(s->fd);
		s->fd = -1;
	}
}

static void seg_path(const struct seglog *log, uint32_t id, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%012u.seg", log->dir, id);
}

/* Forget a segment: free its memory or close and unlink its file. */
static void seg_delete(struct seglog *log, struct seg *s)
{
	if (log->mode == SEGLOG_DISK) {
		char path[PATH_MAX];
		if (s->fd >= 0)
			close(s->fd);
		seg_path(log, s->id, path, sizeof path);
		if (unlink(path) != 0 && errno != ENOENT)
			mtr_log(LOG_WARN, "[seglog] cannot delete %s: %s", path, strerror(errno));
	}
	free(s->mem);
	if (s->doomed)
		log->ndoomed--;
	log->st.disk_bytes -= s->size;
	log->st.segs_live--;
	log->st.segs_deleted++;
	mtr_log(LOG_DEBUG, "[seglog] segment %u deleted", s->id);
	*s = (struct seg){ .id = s->id, .fd = -1 };
}

/* The code of a failed write, creation or allocation: MTR_ENOSPACE for a
 * full file system or an exhausted quota (the caller may keep what it
 * meant to write and try again later), MTR_EIO otherwise. */
static int write_error(int e)
{
	return e == ENOSPC || e == EDQUOT ? MTR_ENOSPACE : MTR_EIO;
}

/* pwrite all of p at off.  A failure may leave part of it written: the
 * callers write the same bytes at the same offset again (wbuf_flush), or
 * cut the file back.  0, MTR_ENOSPACE or MTR_EIO (errno is kept). */
static int write_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = pwrite(fd, b, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return write_error(errno);
		}
		b += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *b = p;
	while (n) {
		ssize_t r = pread(fd, b, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return MTR_EIO;
		b += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/*
 * Give back the page cache of the active segment s below cache_keep bytes
 * from its end, once a SEGLOG_CACHE_STEP more is there.  Items are read
 * back soon after they are written (an instance's, to apply it) or seldom
 * (a lagging peer's gap, a restore): pages further back would only grow
 * the page cache, and new pages cost more than pages given back and taken
 * again (doc/performance.md "The item log's page cache").  Pages not yet
 * written back are kept by the kernel; what is read again later comes from
 * the disk.
 */
static void cache_drop(struct seglog *log, const struct seg *s)
{
	if (log->wbase < log->dropped + log->cache_keep + SEGLOG_CACHE_STEP)
		return;
	/* a step boundary (dropped is one too, so upto is a step past it):
	 * the kernel gives back only whole folios (up to 128 KiB and more),
	 * and folios are aligned to their size */
	uint64_t upto = (log->wbase - log->cache_keep) & ~(uint64_t)(SEGLOG_CACHE_STEP - 1);
	if (posix_fadvise(s->fd, (off_t)log->dropped, (off_t)(upto - log->dropped), POSIX_FADV_DONTNEED) == 0)
		log->st.cache_dropped += upto - log->dropped;
	log->dropped = upto;
}

/*
 * Allocate the active segment's file to SEGLOG_PREALLOC_STEP past end (not
 * past seg_size but for a record that does not fit) when end reaches its
 * allocation.  A failure is no error: the writes then extend the file as
 * without it (a full disk reports itself there); a file system without
 * fallocate is not asked again.
 */
static void prealloc(struct seglog *log, struct seg *s, uint64_t end)
{
	if (log->no_prealloc || end <= s->alloc)
		return;
	uint64_t to = (end + SEGLOG_PREALLOC_STEP) & ~(uint64_t)(SEGLOG_PREALLOC_STEP - 1);
	to = MAX(end, MIN(to, log->seg_size));
	/* from the buffer's start: what lies below it is written */
	if (fallocate(s->fd, 0, (off_t)log->wbase, (off_t)(to - log->wbase)) == 0) {
		s->alloc = to;
		log->st.preallocs++;
	} else if (errno == EOPNOTSUPP) {
		log->no_prealloc = 1;
	}
}

/* ---- direct writes (doc/storage.md "Direct writes") ------------------- */

/* O_DIRECT wants offsets, lengths and addresses aligned to the device's
 * logical block: a page covers every device here. */
#define DIO_ALIGN 4096u

static uint64_t dio_down(uint64_t x)
{
	return x & ~(uint64_t)(DIO_ALIGN - 1);
}

static uint64_t dio_up(uint64_t x)
{
	return dio_down(x + DIO_ALIGN - 1);
}

/* Copy n bytes to (p != NULL) or zeros to file offset off of the active
 * segment in the ring. */
static void ring_put(struct seglog *log, uint64_t off, const void *p, size_t n)
{
	size_t i = (size_t)(off % log->rsize), k = MIN(n, (size_t)log->rsize - i);
	if (p) {
		memcpy(log->ring + i, p, k);
		memcpy(log->ring, (const uint8_t *)p + k, n - k);
	} else {
		memset(log->ring + i, 0, k);
		memset(log->ring, 0, n - k);
	}
	/* what the ring held rsize bytes back is gone */
	if (off + n > log->rsize && log->dlo < off + n - log->rsize)
		log->dlo = off + n - log->rsize;
}

/* Copy n bytes at file offset off of the active segment out of the ring
 * (they must be in it: off >= dlo). */
static void ring_get(const struct seglog *log, uint64_t off, uint8_t *dst, size_t n)
{
	size_t i = (size_t)(off % log->rsize), k = MIN(n, (size_t)log->rsize - i);
	memcpy(dst, log->ring + i, k);
	memcpy(dst + k, log->ring, n - k);
}

/* Open the active segment s (file path) for direct writes, unless they are
 * off; the ring then starts empty at end (nothing of the file is in it). */
static void dio_open(struct seglog *log, const char *path, uint64_t end)
{
	log->direct = 0;
	if (log->no_direct || log->ring == NULL)
		return;
	log->dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (log->dfd < 0) {
		/* tmpfs and a few others: EINVAL; anything else is for the
		 * writes through the page cache to report */
		mtr_log(LOG_INFO, "[seglog] %s: no direct writes (%s): writing through the page cache", log->dir,
			strerror(errno));
		log->no_direct = 1;
		return;
	}
	log->direct = 1;
	log->dlo = end;
}

static void dio_close(struct seglog *log)
{
	if (log->dfd >= 0)
		close(log->dfd);
	log->dfd = -1;
	log->direct = 0;
}

/*
 * Write the active segment's bytes [wbase, wbase + wlen) with O_DIRECT: from
 * the block that holds wbase (written again with the same bytes) to the end
 * of the block that holds the last one, zeros after it (the file's
 * allocation, as recovery knows it).  The first block comes from the file
 * when the ring does not hold it (after recovery, or a record written
 * around the ring).  On an error nothing moves: the next flush writes the
 * same blocks again.  A file system that takes the O_DIRECT open but not
 * the write (EINVAL) gets these bytes through the page cache and no
 * direct write again.
 */
static int dio_flush(struct seglog *log, struct seg *s)
{
	uint64_t e = log->wbase + log->wlen, a0 = dio_down(log->wbase), a1 = dio_up(e);
	if (log->dlo > a0) {
		uint8_t blk[DIO_ALIGN];
		if (read_all(s->fd, blk, (size_t)(log->dlo - a0), a0) != 0) {
			mtr_log(LOG_ERROR, "[seglog] cannot read segment %u at %llu: %s", s->id, (unsigned long long)a0,
				strerror(errno));
			return MTR_EIO;
		}
		uint64_t hi = log->dlo;
		log->dlo = a0;
		ring_put(log, a0, blk, (size_t)(hi - a0));
	}
	ring_put(log, e, NULL, (size_t)(a1 - e));
	size_t i = (size_t)(a0 % log->rsize), n = (size_t)(a1 - a0), k = MIN(n, (size_t)log->rsize - i);
	struct iovec iov[2] = {{log->ring + i, k}, {log->ring, n - k}};
	ssize_t w;
	do
		w = pwritev(log->dfd, iov, n > k ? 2 : 1, (off_t)a0);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno == EINVAL) {
		mtr_log(LOG_WARN, "[seglog] %s: the file system refused a direct write: writing through the page cache",
			log->dir);
		/* what is buffered moves to the write buffer (it fits: wlen <=
		 * wcap), which the page cache path writes and keeps on error */
		ring_get(log, log->wbase, log->wbuf, log->wlen);
		log->no_direct = 1;
		dio_close(log);
		return write_all(s->fd, log->wbuf, log->wlen, log->wbase);
	}
	if (w < 0 || (size_t)w != n)
		return write_error(w < 0 ? errno : ENOSPC); /* short: the device filled up; written again in whole */
	log->st.direct_writes++;
	if (a1 > s->alloc)
		s->alloc = a1; /* zeros after the records, to the block's end */
	return 0;
}

/*
 * Write the active segment's buffer to its file.  On a full disk the
 * buffer is kept as it is (its records stay readable from it, none of them
 * is durable, so no watermark moves): the next flush writes the same bytes
 * at the same offset again, over whatever part the failed one wrote.  That
 * is why MTR_ENOSPACE can be retried (doc/storage.md "A full disk").
 */
static int wbuf_flush(struct seglog *log)
{
	if (log->mode != SEGLOG_DISK || !log->have_active || log->wlen == 0)
		return 0;
	struct seg *s = seg_find(log, log->active);
	prealloc(log, s, log->wbase + log->wlen);
	int rc = log->direct ? dio_flush(log, s) : write_all(s->fd, log->wbuf, log->wlen, log->wbase);
	if (rc) {
		log->st.write_full += rc == MTR_ENOSPACE;
		mtr_log(rc == MTR_ENOSPACE ? LOG_DEBUG : LOG_ERROR, "[seglog] write to segment %u failed: %s", s->id,
			strerror(errno));
		return rc;
	}
	log->st.writes++;
	log->wbase += log->wlen;
	log->wlen = 0;
	if (!log->direct)
		cache_drop(log, s);
	return 0;
}

/* The record checksum: XXH3-64 of the item bytes seeded with XXH3-64 of the
 * first 24 header bytes (magic, length, stream, seq). */
static uint64_t rec_hash(const uint8_t *hdr, const void *item, uint32_t len)
{
	return XXH3_64bits_withSeed(item, len, XXH3_64bits(hdr, 24));
}

static void rec_header(uint8_t *h, uint64_t stream, uint64_t seq, const void *item, uint32_t len)
{
	st32(h, SEGLOG_REC_MAGIC);
	st32(h + 4, len);
	st64(h + 8, stream);
	st64(h + 16, seq);
	st64(h + 24, rec_hash(h, item, len));
}

/* ---- open / close ------------------------------------------------------ */

static void state_load(struct seglog *log)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/state", log->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat sb;
	uint8_t *buf = NULL;
	if (fstat(fd, &sb) == 0 && sb.st_size >= 24 && sb.st_size < (1 << 30)) {
		size_t n = (size_t)sb.st_size;
		buf = malloc(n);
		if (buf && read_all(fd, buf, n, 0) == 0 && memcmp(buf, state_magic, 8) == 0 && ld64(buf + 8) == n - 24 &&
		    XXH3_64bits(buf, n - 8) == ld64(buf + n - 8)) {
			log->state = malloc(n - 24 ? n - 24 : 1);
			if (log->state) {
				memcpy(log->state, buf + 16, n - 24);
				log->state_len = n - 24;
			}
		} else {
			mtr_log(LOG_WARN, "[seglog] %s is damaged: ignored", path);
		}
	}
	free(buf);
	close(fd);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* List DIR/NNNNNNNNNNNN.seg into the segment table (sizes from stat). */
static int list_segments(struct seglog *log)
{
	DIR *d = opendir(log->dir);
	if (!d)
		return MTR_EIO;
	uint32_t *ids = NULL, n = 0, cap = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		const char *nm = e->d_name;
		if (strlen(nm) != 16 || strcmp(nm + 12, ".seg") != 0)
			continue;
		uint64_t v = 0;
		int ok = 1;
		for (int i = 0; i < 12; i++) {
			if (nm[i] < '0' || nm[i] > '9') {
				ok = 0;
				break;
			}
			v = v * 10 + (uint64_t)(nm[i] - '0');
		}
		if (!ok || v == 0 || v >= UINT32_MAX)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			uint32_t *t = realloc(ids, cap * sizeof *t);
			if (!t) {
				rc = MTR_ENOMEM;
				break;
			}
			ids = t;
		}
		ids[n++] = (uint32_t)v;
	}
	closedir(d);
	if (rc == 0 && n) {
		qsort(ids, n, sizeof *ids, cmp_u32);
		for (uint32_t i = 0; i < n && rc == 0; i++) {
			struct seg *s;
			rc = seg_add(log, ids[i], &s);
		}
		if (rc == 0)
			log->next_id = ids[n - 1] + 1;
	}
	free(ids);
	return rc;
}

int seglog_open(const struct seglog_opts *opts, struct seglog **out)
{
	if (!opts || !out || (opts->mode != SEGLOG_DISK && opts->mode != SEGLOG_MEMORY) ||
	    (opts->mode == SEGLOG_DISK && (!opts->dir || !*opts->dir)))
		return MTR_EINVAL;
	struct seglog *log = calloc(1, sizeof *log);
	if (!log)
		return MTR_ENOMEM;
	log->mode = opts->mode;
	log->dirfd = -1;
	log->dfd = -1;
	log->next_id = 1;
	log->max_rec = opts->max_rec ? MIN(opts->max_rec, SEGLOG_MAX_REC) : SEGLOG_MAX_REC;
	log->retain_bytes = opts->retain_bytes;
	log->retain_ms = opts->retain_ms;
	log->seg_size = opts->seg_size ? opts->seg_size
				       : (opts->mode == SEGLOG_DISK ? SEGLOG_DEFAULT_SEG_SIZE : SEGLOG_DEFAULT_MEM_SEG_SIZE);
	if (log->seg_size < SEGLOG_SEG_HDR_SIZE + SEGLOG_REC_HDR_SIZE + 1)
		log->seg_size = SEGLOG_SEG_HDR_SIZE + SEGLOG_REC_HDR_SIZE + 1;
	int rc = 0;
	if (log->mode == SEGLOG_DISK) {
		log->wcap = opts->wbuf_size ? opts->wbuf_size : SEGLOG_DEFAULT_WBUF;
		if (log->wcap < 4096)
			log->wcap = 4096;
		log->cache_keep = opts->cache_keep ? opts->cache_keep : SEGLOG_DEFAULT_CACHE_KEEP;
		log->dir = strdup(opts->dir);
		log->wbuf = malloc(log->wcap);
		log->no_direct = opts->no_direct;
		if (!log->no_direct) {
			/* what is kept for reads, what is buffered, and the block
			 * being written again */
			log->rsize = dio_up(log->cache_keep) + dio_up(log->wcap) + DIO_ALIGN;
			void *r = NULL;
			log->ring = posix_memalign(&r, DIO_ALIGN, (size_t)log->rsize) == 0 ? r : NULL;
		}
		if (!log->dir || !log->wbuf || (!log->no_direct && !log->ring)) {
			rc = MTR_ENOMEM;
			goto fail;
		}
		if (mkdir(log->dir, 0755) != 0 && errno == ENOENT) {
			/* one missing parent (the data directory) is created too */
			char *slash = strrchr(log->dir, '/');
			if (slash && slash != log->dir) {
				*slash = 0;
				(void)mkdir(log->dir, 0755);
				*slash = '/';
			}
			(void)mkdir(log->dir, 0755);
		}
		if (access(log->dir, W_OK) != 0) {
			mtr_log(LOG_ERROR, "[seglog] cannot create %s: %s", log->dir, strerror(errno));
			rc = MTR_EIO;
			goto fail;
		}
		log->dirfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (log->dirfd < 0) {
			mtr_log(LOG_ERROR, "[seglog] cannot open %s: %s", log->dir, strerror(errno));
			rc = MTR_EIO;
			goto fail;
		}
		state_load(log);
		rc = list_segments(log);
		if (rc)
			goto fail;
	} else {
		log->recovered = 1;
	}
	*out = log;
	return 0;
fail:
	seglog_close(log);
	return rc;
}

void seglog_close(struct seglog *log)
{
	if (!log)
		return;
	for (uint32_t i = 0; i < log->nsegs; i++) {
		if (log->segs[i].fd >= 0)
			close(log->segs[i].fd);
		free(log->segs[i].mem);
	}
	if (log->dirfd >= 0)
		close(log->dirfd);
	dio_close(log);
	free(log->ring);
	free(log->segs);
	free(log->wbuf);
	free(log->rcache);
	free(log->state);
	free(log->dir);
	free(log);
}

/* ---- recovery ---------------------------------------------------------- */

/*
 * Scan one segment image (n bytes at p) of segment id: returns the length of
 * its intact prefix (0 when even the segment header is bad) and calls visit
 * for every intact record; *live counts the records visit kept (or all of
 * them when visit is NULL), *nrec every intact one.  *err receives a
 * callback error.
 */
static uint64_t scan_image(uint32_t id, uint32_t max_rec, const uint8_t *p, uint64_t n, seglog_visit_fn visit,
			   void *arg, int *err, uint64_t *live, uint64_t *nrec)
{
	if (n < SEGLOG_SEG_HDR_SIZE || memcmp(p, seg_magic, 8) != 0 || ld64(p + 8) != id)
		return 0;
	uint64_t off = SEGLOG_SEG_HDR_SIZE;
	while (n - off >= SEGLOG_REC_HDR_SIZE) {
		const uint8_t *h = p + off;
		uint32_t len = ld32(h + 4);
		if (ld32(h) != SEGLOG_REC_MAGIC || len == 0 || len > max_rec || len > n - off - SEGLOG_REC_HDR_SIZE)
			break;
		const uint8_t *item = h + SEGLOG_REC_HDR_SIZE;
		if (rec_hash(h, item, len) != ld64(h + 24))
			break;
		struct seglog_loc loc = { .seg = id, .len = len, .off = off + SEGLOG_REC_HDR_SIZE };
		int keep = visit ? visit(arg, ld64(h + 8), ld64(h + 16), &loc) : 1;
		if (keep < 0) {
			*err = keep;
			return off;
		}
		if (keep)
			(*live)++;
		(*nrec)++;
		off += SEGLOG_REC_HDR_SIZE + len;
	}
	return off;
}

static uint64_t scan_segment(struct seglog *log, struct seg *s, const uint8_t *p, uint64_t n, seglog_visit_fn visit,
			     void *arg, int *err)
{
	return scan_image(s->id, log->max_rec, p, n, visit, arg, err, &s->live, &log->st.recovered);
}

int seglog_scan_file(const char *path, uint32_t id, uint32_t max_rec, seglog_visit_fn visit, void *arg,
		     uint64_t *good)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		if (fd >= 0)
			close(fd);
		return MTR_EIO;
	}
	uint64_t n = (uint64_t)sb.st_size, g = 0, live = 0, nrec = 0;
	int err = 0;
	if (n > 0) {
		void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			close(fd);
			return MTR_EIO;
		}
		g = scan_image(id, max_rec ? MIN(max_rec, SEGLOG_MAX_REC) : SEGLOG_MAX_REC, m, n, visit, arg, &err,
			       &live, &nrec);
		munmap(m, n);
	}
	close(fd);
	if (good)
		*good = g;
	return err;
}

int seglog_recover(struct seglog *log, seglog_visit_fn visit, void *arg)
{
	if (log->recovered)
		return 0;
	log->recovered = 1;
	uint32_t last = log->nsegs; /* the last existing segment: the active one */
	for (uint32_t i = 0; i < log->nsegs; i++)
		if (log->segs[i].exists)
			last = i;
	for (uint32_t i = 0; i < log->nsegs; i++) {
		struct seg *s = &log->segs[i];
		if (!s->exists)
			continue;
		char path[PATH_MAX];
		seg_path(log, s->id, path, sizeof path);
		s->fd = open(path, O_RDWR | O_CLOEXEC);
		struct stat sb;
		if (s->fd < 0 || fstat(s->fd, &sb) != 0) {
			mtr_log(LOG_ERROR, "[seglog] cannot open %s: %s", path, strerror(errno));
			return MTR_EIO;
		}
		uint64_t n = (uint64_t)sb.st_size, good = 0, used = 0;
		int err = 0, ahead = 0;
		if (n > 0) {
			void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, s->fd, 0);
			if (m == MAP_FAILED) {
				mtr_log(LOG_ERROR, "[seglog] cannot map %s: %s", path, strerror(errno));
				return MTR_EIO;
			}
			good = scan_segment(log, s, m, n, visit, arg, &err);
			/* zeros after what was written: allocated ahead
			 * (SEGLOG_PREALLOC_STEP), not torn */
			used = n;
			while (used > good && ((const uint8_t *)m)[used - 1] == 0)
				used--;
			ahead = good > 0 && good < n && used == good;
			munmap(m, n);
		}
		if (err)
			return err;
		if (good < n && !ahead) {
			log->st.torn++;
			log->st.torn_bytes += used - good;
			mtr_log(LOG_WARN, "[seglog] %s: cut %llu damaged or torn bytes at offset %llu", path,
				(unsigned long long)(used - good), (unsigned long long)good);
		}
		if (good == 0) {
			/* not even a segment header: nothing of it is kept */
			s->size = 0;
			seg_delete(log, s);
			continue;
		}
		if (ahead && i == last) {
			s->alloc = n; /* the active segment goes on writing into it */
		} else if (good < n) {
			if (ftruncate(s->fd, (off_t)good) != 0 || fdatasync(s->fd) != 0) {
				mtr_log(LOG_ERROR, "[seglog] cannot truncate %s: %s", path, strerror(errno));
				return MTR_EIO;
			}
		}
		s->size = good;
		log->st.disk_bytes += good;
	}
	/* the last segment is the active one; the others go when empty */
	for (uint32_t i = log->nsegs; i-- > 0;) {
		struct seg *s = &log->segs[i];
		if (!s->exists)
			continue;
		if (!log->have_active) {
			log->have_active = 1;
			log->active = s->id;
			log->wbase = s->size;
			log->wlen = 0;
		} else if (s->live == 0) {
			/* retention counts from the last write of the file */
			struct stat sb;
			uint64_t at = s->fd >= 0 && fstat(s->fd, &sb) == 0
					      ? (uint64_t)sb.st_mtim.tv_sec * 1000u + (uint64_t)sb.st_mtim.tv_nsec / 1000000u
					      : 0;
			seg_doom(log, s, at);
		}
	}
	/* what survived a process crash may still be only in the page cache */
	if (log->have_active) {
		struct seg *a = seg_find(log, log->active);
		if (fdatasync(a->fd) != 0)
			return MTR_EIO;
		log->st.syncs++;
		char path[PATH_MAX];
		seg_path(log, a->id, path, sizeof path);
		dio_open(log, path, log->wbase);
	}
	if (log->st.segs_live || log->st.torn)
		mtr_log(LOG_INFO, "[seglog] recovered %llu records from %llu segments in %s (%llu torn)",
		(unsigned long long)log->st.recovered, (unsigned long long)log->st.segs_live, log->dir,
		(unsigned long long)log->st.torn);
	return 0;
}

/* ---- append ------------------------------------------------------------ */

/* Close the active segment (durably, on disk) and start segment next_id. */
static int seg_roll(struct seglog *log, uint64_t rec_size)
{
	if (log->have_active) {
		struct seg *old = seg_find(log, log->active);
		if (log->mode == SEGLOG_DISK) {
			int rc = wbuf_flush(log);
			if (rc)
				return rc;
			/* sealed: the file holds its records and nothing after */
			if (old->alloc > old->size) {
				if (ftruncate(old->fd, (off_t)old->size) != 0) {
					mtr_log(LOG_ERROR, "[seglog] cannot cut segment %u to its records: %s", old->id,
						strerror(errno));
					return MTR_EIO;
				}
				log->unsynced = 1;
			}
			old->alloc = 0;
			/* a torn record can then only be in the last segment */
			if (log->unsynced && fdatasync(old->fd) != 0)
				return MTR_EIO;
			if (log->unsynced)
				log->st.syncs++;
		}
		log->have_active = 0;
		dio_close(log);
		if (old->live == 0 && !old->doomed)
			seg_doom(log, old, log->now_ms);
	}
	uint32_t id = log->next_id;
	struct seg *s;
	int rc = seg_add(log, id, &s);
	if (rc)
		return rc;
	if (log->mode == SEGLOG_DISK) {
		char path[PATH_MAX];
		seg_path(log, id, path, sizeof path);
		s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (s->fd < 0) {
			int e = errno;
			/* the same id is tried again by the next append */
			mtr_log(write_error(e) == MTR_ENOSPACE ? LOG_DEBUG : LOG_ERROR, "[seglog] cannot create %s: %s",
				path, strerror(e));
			s->exists = 0;
			log->st.segs_live--;
			return write_error(e);
		}
		uint8_t hdr[SEGLOG_SEG_HDR_SIZE];
		memcpy(hdr, seg_magic, 8);
		st64(hdr + 8, id);
		dio_open(log, path, 0);
		if (log->direct)
			ring_put(log, 0, hdr, sizeof hdr);
		else
			memcpy(log->wbuf, hdr, sizeof hdr);
		log->wbase = 0;
		log->wlen = SEGLOG_SEG_HDR_SIZE;
		log->dir_dirty = 1;
		log->unsynced = 1;
	} else {
		s->cap = MAX(log->seg_size, SEGLOG_SEG_HDR_SIZE + rec_size);
		s->mem = malloc(s->cap);
		if (!s->mem) {
			s->exists = 0;
			log->st.segs_live--;
			return MTR_ENOMEM;
		}
		memcpy(s->mem, seg_magic, 8);
		st64(s->mem + 8, id);
	}
	s->size = SEGLOG_SEG_HDR_SIZE;
	log->st.disk_bytes += s->size;
	log->next_id = id + 1;
	log->have_active = 1;
	log->active = id;
	log->dropped = 0;
	log->st.segs_created++;
	mtr_log(LOG_DEBUG, "[seglog] segment %u started", id);
	return 0;
}

int seglog_append(struct seglog *log, uint64_t stream, uint64_t seq, const void *item, uint32_t len,
		  struct seglog_loc *loc)
{
	if (len == 0 || !log->recovered)
		return MTR_EINVAL;
	if (len > log->max_rec)
		return MTR_ETOOBIG;
	uint64_t rec = SEGLOG_REC_HDR_SIZE + (uint64_t)len;
	struct seg *s = log->have_active ? seg_find(log, log->active) : NULL;
	if (!s || (s->size + rec > log->seg_size && s->size > SEGLOG_SEG_HDR_SIZE) ||
	    (log->mode == SEGLOG_MEMORY && s->size + rec > s->cap)) {
		int rc = seg_roll(log, rec);
		if (rc)
			return rc;
		s = seg_find(log, log->active);
	}
	uint64_t off = s->size;
	if (log->mode == SEGLOG_MEMORY) {
		rec_header(s->mem + off, stream, seq, item, len);
		memcpy(s->mem + off + SEGLOG_REC_HDR_SIZE, item, len);
	} else if (rec <= log->wcap) {
		if (log->wlen + rec > log->wcap) {
			int rc = wbuf_flush(log);
			if (rc)
				return rc;
		}
		if (log->direct) {
			uint8_t h[SEGLOG_REC_HDR_SIZE];
			rec_header(h, stream, seq, item, len);
			ring_put(log, off, h, sizeof h);
			ring_put(log, off + sizeof h, item, len);
		} else {
			rec_header(log->wbuf + log->wlen, stream, seq, item, len);
			memcpy(log->wbuf + log->wlen + SEGLOG_REC_HDR_SIZE, item, len);
		}
		log->wlen += (uint32_t)rec;
	} else {
		/* larger than the buffer: written directly, header and bytes together */
		int rc = wbuf_flush(log);
		if (rc)
			return rc;
		uint8_t h[SEGLOG_REC_HDR_SIZE];
		rec_header(h, stream, seq, item, len);
		struct iovec iov[2] = { { h, sizeof h }, { (void *)item, len } };
		ssize_t w = pwritev(s->fd, iov, 2, (off_t)off);
		log->st.writes++;
		if (w < 0 || (uint64_t)w != rec) {
			/* a short write leaves a torn record: cut it off again; if
			 * that fails too the file's tail is unknown (MTR_EIO) */
			int e = w < 0 ? errno : ENOSPC; /* a short pwrite: the device filled up */
			s->alloc = 0;
			if (ftruncate(s->fd, (off_t)off) != 0) {
				mtr_log(LOG_ERROR, "[seglog] cannot cut a short write in segment %u: %s", s->id,
					strerror(errno));
				return MTR_EIO;
			}
			if (write_error(e) == MTR_ENOSPACE)
				log->st.write_full++;
			return write_error(e);
		}
		log->wbase = off + rec;
		log->dlo = log->wbase; /* the ring does not hold it */
		if (s->alloc <= log->wbase)
			s->alloc = 0; /* the file ends with this record */
	}
	s->size += rec;
	s->live++;
	log->unsynced = 1;
	log->st.disk_bytes += rec;
	log->st.appended++;
	log->st.bytes += len;
	loc->seg = s->id;
	loc->len = len;
	loc->off = off + SEGLOG_REC_HDR_SIZE;
	return 0;
}

/* ---- sync, read, unref -------------------------------------------------- */

/*
 * The doomed segments that are due for deletion (deleted when del is set):
 * every one without retention (or after seglog_retain_drop); with it, each
 * one doomed more than retain_ms ago and, oldest first, as many as keep the
 * retained bytes above retain_bytes.  Returns how many.
 */
static uint32_t sweep(struct seglog *log, int del)
{
	if (log->ndoomed == 0)
		return 0;
	int retain = log->mode == SEGLOG_DISK && log->retain_bytes > 0 && log->retain_ms > 0 && !log->drop_retained;
	uint64_t kept = 0;
	for (uint32_t i = 0; retain && i < log->nsegs; i++)
		if (log->segs[i].exists && log->segs[i].doomed)
			kept += log->segs[i].size;
	uint32_t n = 0;
	for (uint32_t i = 0; i < log->nsegs; i++) {
		struct seg *s = &log->segs[i];
		if (!s->exists || !s->doomed)
			continue;
		if (retain && kept <= log->retain_bytes &&
		    !(log->now_ms > s->dead_ms && log->now_ms - s->dead_ms > log->retain_ms))
			continue;
		kept -= MIN(kept, s->size);
		n++;
		if (del)
			seg_delete(log, s);
	}
	return n;
}

int seglog_sync(struct seglog *log)
{
	if (log->mode == SEGLOG_DISK) {
		int rc = wbuf_flush(log);
		if (rc == MTR_ENOSPACE && log->drop_retained) {
			sweep(log, 1); /* what retention kept makes room */
			log->drop_retained = 0;
		}
		if (rc)
			return rc;
		if (log->unsynced && log->have_active) {
			struct seg *s = seg_find(log, log->active);
			if (fdatasync(s->fd) != 0) {
				mtr_log(LOG_ERROR, "[seglog] fdatasync of segment %u failed: %s", s->id, strerror(errno));
				return MTR_EIO;
			}
			log->st.syncs++;
		}
		/* make new segment files' directory entries durable too */
		if (log->dir_dirty) {
			if (fsync(log->dirfd) != 0)
				return MTR_EIO;
			log->dir_dirty = 0;
		}
		log->unsynced = 0;
	}
	sweep(log, 1);
	log->drop_retained = 0;
	return 0;
}

/* Make the caller's scratch buffer hold n bytes: 0 or MTR_ENOMEM. */
static int scratch_fit(uint8_t **scratch, size_t *scap, size_t n)
{
	if (*scap >= n)
		return 0;
	uint8_t *b = realloc(*scratch, n);
	if (!b)
		return MTR_ENOMEM;
	*scratch = b;
	*scap = n;
	return 0;
}

int seglog_read(struct seglog *log, const struct seglog_loc *loc, const uint8_t **p, uint8_t **scratch,
		size_t *scap)
{
	struct seg *s = seg_find(log, loc->seg);
	if (!s || loc->off + loc->len > s->size)
		return MTR_ENOENT;
	if (log->mode == SEGLOG_MEMORY) {
		*p = s->mem + loc->off;
		return 0;
	}
	if (log->direct && loc->seg == log->active && loc->off >= log->dlo) {
		size_t i = (size_t)(loc->off % log->rsize);
		if (i + loc->len <= log->rsize) {
			*p = log->ring + i;
			return 0;
		}
		/* around the ring's end */
		if (scratch_fit(scratch, scap, loc->len) != 0)
			return MTR_ENOMEM;
		ring_get(log, loc->off, *scratch, loc->len);
		*p = *scratch;
		return 0;
	}
	if (!log->direct && log->have_active && loc->seg == log->active && loc->off >= log->wbase) {
		*p = log->wbuf + (loc->off - log->wbase);
		return 0;
	}
	if (log->rcache && loc->seg == log->rseg && loc->off >= log->rbase &&
	    loc->off + loc->len <= log->rbase + log->rlen) {
		*p = log->rcache + (loc->off - log->rbase);
		return 0;
	}
	/* what the file holds: the active segment's buffer is not written yet */
	uint64_t end = log->have_active && loc->seg == log->active ? log->wbase : s->size;
	if (loc->len <= SEGLOG_READAHEAD && loc->off + loc->len <= end) {
		if (!log->rcache && !(log->rcache = malloc(SEGLOG_READAHEAD)))
			return MTR_ENOMEM;
		uint64_t n = MIN((uint64_t)SEGLOG_READAHEAD, end - loc->off);
		log->rlen = 0;
		if (read_all(s->fd, log->rcache, (size_t)n, loc->off) != 0)
			return MTR_EIO;
		log->st.reads++;
		log->rseg = loc->seg;
		log->rbase = loc->off;
		log->rlen = (uint32_t)n;
		*p = log->rcache;
		return 0;
	}
	if (scratch_fit(scratch, scap, loc->len) != 0)
		return MTR_ENOMEM;
	if (read_all(s->fd, *scratch, loc->len, loc->off) != 0)
		return MTR_EIO;
	*p = *scratch;
	return 0;
}

void seglog_unref(struct seglog *log, uint32_t seg)
{
	struct seg *s = seg_find(log, seg);
	if (!s || s->live == 0)
		return;
	if (--s->live == 0 && !(log->have_active && log->active == seg) && !s->doomed)
		seg_doom(log, s, log->now_ms);
}

int seglog_unsynced(const struct seglog *log)
{
	return log->unsynced || log->wlen > 0;
}

int seglog_delete_pending(const struct seglog *log)
{
	/* with retention, also when one died: its records' release points are
	 * saved then, so a restart does not index its items again */
	return log->mode == SEGLOG_DISK &&
	       ((log->died && log->retain_bytes > 0 && log->retain_ms > 0) || sweep((struct seglog *)log, 0) > 0);
}

void seglog_set_now(struct seglog *log, uint64_t wall_ms)
{
	log->now_ms = wall_ms;
}

void seglog_retain_drop(struct seglog *log)
{
	log->drop_retained = 1;
}

/* ---- state blob -------------------------------------------------------- */

int seglog_state_save(struct seglog *log, const void *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return MTR_ENOMEM;
	memcpy(copy, p, len);
	if (log->mode == SEGLOG_DISK) {
		size_t n = len + 24;
		uint8_t *buf = malloc(n);
		if (!buf) {
			free(copy);
			return MTR_ENOMEM;
		}
		memcpy(buf, state_magic, 8);
		st64(buf + 8, len);
		memcpy(buf + 16, p, len);
		st64(buf + 16 + len, XXH3_64bits(buf, n - 8));
		char tmp[PATH_MAX], path[PATH_MAX];
		snprintf(tmp, sizeof tmp, "%s/state.tmp", log->dir);
		snprintf(path, sizeof path, "%s/state", log->dir);
		/* a temporary file renamed over the old one: a failure at any
		 * step leaves the old state whole, so a full disk is retried */
		int rc = MTR_EIO;
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			rc = write_error(errno);
		if (fd >= 0) {
			rc = write_all(fd, buf, n, 0);
			if (rc == 0 && fdatasync(fd) == 0 && rename(tmp, path) == 0 && fsync(log->dirfd) == 0)
				rc = 0;
			else if (rc == 0)
				rc = MTR_EIO;
			close(fd);
			if (rc != 0)
				unlink(tmp);
		}
		free(buf);
		if (rc) {
			if (rc == MTR_ENOSPACE)
				log->st.write_full++;
			mtr_log(rc == MTR_ENOSPACE ? LOG_DEBUG : LOG_ERROR, "[seglog] cannot save %s: %s", path,
				strerror(errno));
			free(copy);
			return rc;
		}
	}
	free(log->state);
	log->state = copy;
	log->state_len = len;
	log->died = 0;
	return 0;
}

void seglog_state_get(struct seglog *log, const void **p, size_t *len)
{
	*p = log->state;
	*len = log->state ? log->state_len : 0;
}

void seglog_stats(const struct seglog *log, struct seglog_stats *st)
{
	*st = log->st;
	st->retained_segs = st->retained_bytes = 0;
	for (uint32_t i = 0; i < log->nsegs; i++)
		if (log->segs[i].exists && log->segs[i].doomed) {
			st->retained_segs++;
			st->retained_bytes += log->segs[i].size;
		}
}
