/*
 * walbuf.c - a transaction's WAL frames reach the file in one write
 * (walbuf.h, doc/apply.md "WAL writes").
 *
 * The WAL file format (sqlite.org/fileformat2.html, "WAL File Format"): a
 * 32-byte header (magic, version, page size at bytes 8-11, checkpoint
 * sequence, salt-1 and salt-2 at 16-23, checksums), then frames of a 24-byte
 * header (page number, the database size in pages after a commit, else 0,
 * salt-1, salt-2, checksums) and one page.  A frame of this WAL carries the
 * header's salts.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "walbuf.h"

#define WAL_HDR 32
#define FRAME_HDR 24
/* Bytes per write to the wrapped file: the unix VFS writes at most
 * 0x1ffff bytes in one call (its seekAndWriteFd masks the count), so a
 * larger write would be cut short and reported as a full disk. */
#define WALBUF_CHUNK (31u * 4096u)

struct walbuf {
	sqlite3_file base; /* pMethods = &wb_methods */
	sqlite3_file *real;
	uint8_t *buf;
	size_t len, cap;
	sqlite3_int64 off;  /* the file offset of buf[0] */
	sqlite3_int64 scan; /* the next frame header in buf not yet looked at */
	sqlite3_int64 end;  /* where this WAL's frames end, -1: not known */
	uint32_t psz;       /* page size from the WAL header (a write at 0 or
			     * the file), 0: not known; salt with it */
	uint8_t salt[8];
};

static atomic_ullong n_writes;

unsigned long long walbuf_writes(void) { return atomic_load(&n_writes); }

size_t walbuf_header_size(void) { return (sizeof(struct walbuf) + 15) & ~(size_t)15; }

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Take the page size and salts from a WAL header; 0 if it is not one. */
static int parse_header(struct walbuf *w, const uint8_t *h)
{
	uint32_t magic = be32(h), psz = be32(h + 8);
	w->psz = 0;
	if ((magic & 0xFFFFFFFEu) != 0x377f0682u || psz < 512 || psz > 65536 || (psz & (psz - 1)) != 0)
		return 0;
	w->psz = psz;
	memcpy(w->salt, h + 16, 8);
	return 1;
}

static int real_write(struct walbuf *w, const void *p, int amt, sqlite3_int64 off)
{
	atomic_fetch_add(&n_writes, 1);
	return w->real->pMethods->xWrite(w->real, p, amt, off);
}

/* Write what is buffered, WALBUF_CHUNK bytes per call.  The buffer is
 * empty afterwards either way: a failed write fails SQLite's transaction,
 * which writes its frames again. */
static int flush(struct walbuf *w)
{
	if (w->len == 0)
		return SQLITE_OK;
	int rc = SQLITE_OK;
	for (size_t o = 0; o < w->len && rc == SQLITE_OK; o += WALBUF_CHUNK) {
		size_t n = MIN(WALBUF_CHUNK, w->len - o);
		rc = real_write(w, w->buf + o, (int)n, w->off + (sqlite3_int64)o);
	}
	w->len = 0;
	return rc;
}

/* Is off where a frame starts (the page size being known)? */
static int frame_start(const struct walbuf *w, sqlite3_int64 off)
{
	return w->psz != 0 && off >= WAL_HDR && (off - WAL_HDR) % (FRAME_HDR + w->psz) == 0;
}

/* Learn the page size and salts from the file's header when a write comes
 * before we saw one (a WAL that existed when this connection opened it). */
static void learn(struct walbuf *w)
{
	uint8_t h[WAL_HDR];
	if (w->psz != 0)
		return;
	if (w->real->pMethods->xRead(w->real, h, WAL_HDR, 0) == SQLITE_OK)
		parse_header(w, h);
}

/*
 * Only appends are kept: a write where this WAL's frames end (known from a
 * header written at 0, or from the first write of this file, which is a
 * transaction's first frame).  A write below the end is SQLite writing a
 * frame of the running transaction again, or its checksums (after the
 * commit frame): it goes to the file at once, after what is kept.
 */
static int wb_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
	struct walbuf *w = (struct walbuf *)f;
	int rc;
	if (amt <= 0)
		return real_write(w, p, amt, off);
	if (w->len > 0 && (off != w->off + (sqlite3_int64)w->len || w->len + (size_t)amt > WALBUF_MAX)) {
		rc = flush(w);
		if (rc != SQLITE_OK)
			return rc;
	}
	int append = w->len > 0;
	if (!append) {
		if (off == 0 && amt >= WAL_HDR) {
			append = parse_header(w, p);
			w->end = 0;
			w->scan = WAL_HDR;
		} else {
			learn(w);
			append = frame_start(w, off) && off >= w->end;
			w->scan = off;
		}
		append = append && (size_t)amt <= WALBUF_MAX;
	}
	if (off + amt > w->end)
		w->end = off + amt;
	if (!append)
		return real_write(w, p, amt, off);
	if (w->len == 0)
		w->off = off;
	if (w->len + (size_t)amt > w->cap) {
		size_t cap = w->cap ? w->cap : 65536;
		while (cap < w->len + (size_t)amt)
			cap *= 2;
		uint8_t *nb = realloc(w->buf, cap);
		if (nb == NULL) {
			rc = flush(w);
			return rc != SQLITE_OK ? rc : real_write(w, p, amt, off);
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, (size_t)amt);
	w->len += (size_t)amt;
	/* each whole frame now in the buffer: one of ours, a commit? */
	sqlite3_int64 fsz = FRAME_HDR + (sqlite3_int64)w->psz, bend = w->off + (sqlite3_int64)w->len;
	while (w->scan + fsz <= bend) {
		const uint8_t *h = w->buf + (w->scan - w->off);
		w->scan += fsz;
		if (memcmp(h + 8, w->salt, 8) != 0 || be32(h + 4) != 0)
			return flush(w);
	}
	return SQLITE_OK;
}

static int wb_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 off)
{
	struct walbuf *w = (struct walbuf *)f;
	int rc = flush(w);
	return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, amt, off);
}

static int wb_close(sqlite3_file *f)
{
	struct walbuf *w = (struct walbuf *)f;
	int rc = flush(w);
	int crc = w->real->pMethods->xClose(w->real);
	free(w->buf);
	w->buf = NULL;
	w->cap = 0;
	return rc != SQLITE_OK ? rc : crc;
}

static int wb_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct walbuf *w = (struct walbuf *)f;
	int rc = flush(w);
	w->psz = 0; /* the header may be gone */
	w->end = -1;
	return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wb_sync(sqlite3_file *f, int flags)
{
	struct walbuf *w = (struct walbuf *)f;
	int rc = flush(w);
	return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wb_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct walbuf *w = (struct walbuf *)f;
	int rc = flush(w);
	return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wb_lock(sqlite3_file *f, int lock)
{
	struct walbuf *w = (struct walbuf *)f;
	return w->real->pMethods->xLock(w->real, lock);
}

static int wb_unlock(sqlite3_file *f, int lock)
{
	struct walbuf *w = (struct walbuf *)f;
	return w->real->pMethods->xUnlock(w->real, lock);
}

static int wb_check_reserved(sqlite3_file *f, int *out)
{
	struct walbuf *w = (struct walbuf *)f;
	return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int wb_file_control(sqlite3_file *f, int op, void *arg)
{
	struct walbuf *w = (struct walbuf *)f;
	int rc = flush(w);
	return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wb_sector_size(sqlite3_file *f)
{
	struct walbuf *w = (struct walbuf *)f;
	return w->real->pMethods->xSectorSize(w->real);
}

static int wb_device_characteristics(sqlite3_file *f)
{
	struct walbuf *w = (struct walbuf *)f;
	return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* Version 1: a WAL file is never memory-mapped nor given shared memory. */
static const sqlite3_io_methods wb_methods = {
	.iVersion = 1,
	.xClose = wb_close,
	.xRead = wb_read,
	.xWrite = wb_write,
	.xTruncate = wb_truncate,
	.xSync = wb_sync,
	.xFileSize = wb_file_size,
	.xLock = wb_lock,
	.xUnlock = wb_unlock,
	.xCheckReservedLock = wb_check_reserved,
	.xFileControl = wb_file_control,
	.xSectorSize = wb_sector_size,
	.xDeviceCharacteristics = wb_device_characteristics,
};

int walbuf_open(sqlite3_vfs *orig, sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
		int *out_flags)
{
	struct walbuf *w = (struct walbuf *)file;
	memset(w, 0, sizeof *w);
	w->real = (sqlite3_file *)((char *)file + walbuf_header_size());
	w->end = -1;
	int rc = orig->xOpen(vfs, name, w->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		/* SQLite calls xClose only when pMethods is set: ours is not */
		if (w->real->pMethods != NULL)
			w->real->pMethods->xClose(w->real);
		w->base.pMethods = NULL;
		return rc;
	}
	w->base.pMethods = &wb_methods;
	return SQLITE_OK;
}
