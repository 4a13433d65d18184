/*
 * seglog.h - the append-only segment log that holds a server's items.
 *
 * A log is a sequence of segments numbered 1, 2, 3 ...  Each segment is a
 * list of records (stream, seq, item bytes).  Two backends share the API:
 *
 *   SEGLOG_DISK    segments are files DIR/NNNNNNNNNNNN.seg (12 decimal
 *                  digits).  Appends go to a write buffer that is written with
 *                  one write() when full or at seglog_sync(), which then does
 *                  one fdatasync() for every record appended since the last
 *                  sync (group commit).  Where the file system takes it, the
 *                  buffer is part of a ring that keeps the last cache_keep
 *                  bytes for reads, and the writes are O_DIRECT, whole
 *                  blocks (no copy into the page cache).  doc/storage.md
 *                  gives the bytes.
 *   SEGLOG_MEMORY  segments are heap chunks; nothing is written anywhere and
 *                  seglog_sync() does nothing.
 *
 * The active (last) segment rolls to a new one when a record does not fit in
 * its size limit.  Compaction is by reference counting: every record appended
 * (or found by recovery) is "live" until seglog_unref() is called for it;
 * a segment that is not the active one and has no live record is deleted (the
 * file at the next seglog_sync(), the memory at once).
 *
 * Retention (doc/storage.md "Retention"): with retain_bytes and retain_ms
 * both set (disk mode), a segment left without live records is not deleted
 * at once but kept until it has been dead for retain_ms, or, oldest first,
 * while the kept segments exceed retain_bytes; the owner gives the wall time
 * with seglog_set_now.  A retained segment is read by a point-in-time
 * restore (seglog_scan_file), never by the log itself.
 *
 * Recovery (seglog_recover, after seglog_open): every existing segment is
 * scanned in order and every record is verified (magic, length, XXH3-64); a
 * segment is truncated at its first bad record (a torn append from a crash),
 * and the intact records are handed to a callback with their location, from
 * which the caller rebuilds its index.  Zeros after the last record are the
 * active segment's allocation (SEGLOG_PREALLOC_STEP), not a torn record.
 *
 * The log also keeps one small "state" blob for its owner (ingest keeps the
 * per-stream release points there), replaced atomically by seglog_state_save.
 *
 * No clock is read here.  A seglog is used by one thread at a time.
 */
#ifndef MTR_SEGLOG_H
#define MTR_SEGLOG_H

#include <stddef.h>
#include <stdint.h>

enum seglog_mode { SEGLOG_DISK = 0, SEGLOG_MEMORY = 1 };

#define SEGLOG_SEG_HDR_SIZE 16u  /* segment header: magic[8], segment id u64 */
#define SEGLOG_REC_HDR_SIZE 32u  /* record header, see doc/storage.md */
#define SEGLOG_REC_MAGIC 0x4345524Du /* bytes 'M' 'R' 'E' 'C' */
#define SEGLOG_DEFAULT_SEG_SIZE (64u << 20)
#define SEGLOG_DEFAULT_MEM_SEG_SIZE (4u << 20)
#define SEGLOG_DEFAULT_WBUF (1u << 20)
/* Bytes of the active segment kept behind its end for reads (disk mode).
 * With direct writes (O_DIRECT, the default where the file system takes
 * them) they are the ring the writes come from (doc/storage.md "Direct
 * writes"); through the page cache, what lies further back is dropped
 * (POSIX_FADV_DONTNEED) in steps of SEGLOG_CACHE_STEP as the segment grows
 * (doc/storage.md "Page cache"). */
#define SEGLOG_DEFAULT_CACHE_KEEP (16u << 20)
#define SEGLOG_CACHE_STEP (1u << 20)
#define SEGLOG_MAX_REC (1u << 30) /* largest item a record may hold */
/* The active segment's file is allocated (fallocate) this far ahead of its
 * end, in steps of this size: a sync of appends within the allocation does
 * not change the file's size, which spares the file system a journal
 * commit (doc/storage.md "Preallocation").  The zeros past the end are not
 * a torn record to recovery, and a sealed segment is cut to its records. */
#define SEGLOG_PREALLOC_STEP (4u << 20)

/* Options; zero fields take the defaults above. */
struct seglog_opts {
	enum seglog_mode mode;
	const char *dir;       /* SEGLOG_DISK: the directory (created if missing); copied */
	uint64_t seg_size;     /* roll threshold in bytes (a lone record may exceed it) */
	uint32_t wbuf_size;    /* SEGLOG_DISK: write buffer bytes */
	uint32_t max_rec;      /* largest item accepted, recovery included (default SEGLOG_MAX_REC) */
	uint64_t retain_bytes; /* SEGLOG_DISK: keep dead segments up to this many bytes (0: no retention) */
	uint64_t retain_ms;    /* SEGLOG_DISK: ... and for at most this long (0: no retention) */
	uint64_t cache_keep;   /* SEGLOG_DISK: bytes behind the active segment's end kept for reads
			        * (in the direct-write ring, or in the page cache) */
	int no_direct;         /* SEGLOG_DISK: write through the page cache, not with O_DIRECT */
};

/* Where a record's item bytes are: segment id and the offset of the item
 * bytes (after the record header) in the segment. */
struct seglog_loc {
	uint32_t seg;
	uint32_t len;
	uint64_t off;
};

/* Recovery callback: one intact record, in log order.  Return 1 to keep it
 * live, 0 to count it as released at once (a stale or duplicate record), or
 * a negative MTR_E* code to abort the open. */
typedef int (*seglog_visit_fn)(void *arg, uint64_t stream, uint64_t seq, const struct seglog_loc *loc);

/* Counters (monotonic unless said otherwise). */
struct seglog_stats {
	uint64_t appended;      /* records appended */
	uint64_t bytes;         /* item bytes appended */
	uint64_t writes;        /* write()/writev() calls */
	uint64_t syncs;         /* fdatasync() calls */
	uint64_t segs_created;
	uint64_t segs_deleted;
	uint64_t recovered;     /* intact records found by recovery */
	uint64_t torn;          /* segments truncated by recovery */
	uint64_t torn_bytes;    /* bytes cut off by recovery (not the zeros allocated ahead) */
	uint64_t segs_live;     /* segments existing now (gauge) */
	uint64_t disk_bytes;    /* bytes in segments existing now (gauge) */
	uint64_t reads;         /* pread() calls of the read-ahead cache */
	uint64_t write_full;    /* writes that failed with MTR_ENOSPACE (a full disk) */
	uint64_t retained_segs;  /* dead segments kept for retention now (gauge) */
	uint64_t retained_bytes; /* their bytes (gauge; part of disk_bytes) */
	uint64_t cache_dropped;  /* bytes of the page cache given back (POSIX_FADV_DONTNEED) */
	uint64_t preallocs;      /* fallocate() calls that allocated ahead of the active segment's end */
	uint64_t direct_writes;  /* of writes: O_DIRECT ones (doc/storage.md "Direct writes") */
};

/* Bytes read ahead at once by seglog_read on a disk-mode miss. */
#define SEGLOG_READAHEAD (256u << 10)

struct seglog;

/*
 * Open a log.  In SEGLOG_DISK mode the directory is created when missing,
 * its state blob is loaded and its segments are listed (not yet read: call
 * seglog_recover next).  On success *out is a new log the caller frees with
 * seglog_close().  Returns 0, MTR_EINVAL, MTR_ENOMEM or MTR_EIO.
 */
int seglog_open(const struct seglog_opts *opts, struct seglog **out);

/*
 * Recovery: scan every existing segment in order, verify each record, cut a
 * segment at its first bad record (ftruncate + fdatasync), and call visit
 * (may be NULL: every record is kept live) for every intact record.  Must be
 * called once after seglog_open and before the first append (a no-op for an
 * empty directory or in memory mode).  Returns 0, MTR_EIO, MTR_ENOMEM or the
 * callback's error.
 */
int seglog_recover(struct seglog *log, seglog_visit_fn visit, void *arg);

/* Flush nothing, close every file, free everything (appended records that
 * were not synced may or may not be on disk).  NULL is allowed. */
void seglog_close(struct seglog *log);

/*
 * Append a record (stream, seq, item[0..len)).  The bytes are copied; on
 * success *loc tells where they are.  Per-record cost: a memcpy into the
 * write buffer (or heap chunk); a write() only when the buffer is full.
 * Returns 0, MTR_ETOOBIG (len > max_rec), MTR_EINVAL (len 0), MTR_ENOMEM,
 * MTR_ENOSPACE (disk full or quota: nothing of the record was kept, the log
 * is as before and may be appended to again) or MTR_EIO.
 */
int seglog_append(struct seglog *log, uint64_t stream, uint64_t seq, const void *item, uint32_t len,
		  struct seglog_loc *loc);

/*
 * Group commit: write the buffer, fdatasync the active segment (once), then
 * delete the files of segments that have no live record left.  Everything
 * appended before the call is durable when it returns 0.  Memory mode: only
 * frees.  Returns 0, MTR_ENOSPACE (the buffer could not be written for want
 * of space: it is kept, nothing new is durable, call again later) or MTR_EIO
 * (a failed fdatasync or other I/O error: what reached the disk since the
 * last good sync is unknown; the owner must stop, and recovery at the next
 * open cuts a torn tail).
 */
int seglog_sync(struct seglog *log);

/* 1 when records were appended since the last successful seglog_sync
 * (disk mode), else 0. */
int seglog_unsynced(const struct seglog *log);

/*
 * The item bytes at loc.  Memory mode, or still in the write buffer: *p
 * points into the log (valid until the next append, sync or unref).
 * Otherwise the span of up to SEGLOG_READAHEAD bytes starting there is read
 * (one pread) into the log's read-ahead cache, which serves the following
 * reads inside it; an item larger than that is read into *scratch, grown
 * with realloc as needed (*scratch and *scap are the caller's and freed by
 * the caller).  *p is valid until the next call into the log.  Returns 0, MTR_ENOENT (no such segment), MTR_EIO, MTR_ENOMEM.
 */
int seglog_read(struct seglog *log, const struct seglog_loc *loc, const uint8_t **p, uint8_t **scratch,
		size_t *scap);

/* A record of segment seg is no longer needed (compaction). */
void seglog_unref(struct seglog *log, uint32_t seg);

/*
 * Replace the state blob atomically and durably (disk: write DIR/state.tmp,
 * fdatasync, rename over DIR/state, fsync DIR).  Memory mode: kept in memory.
 * Returns 0, MTR_ENOMEM, MTR_ENOSPACE (the old state stays whole) or MTR_EIO.
 */
int seglog_state_save(struct seglog *log, const void *p, size_t len);

/* The state blob found at open or last saved: *p (owned by the log, valid
 * until the next save or close) and *len; *len = 0 when there is none. */
void seglog_state_get(struct seglog *log, const void **p, size_t *len);

/* Is any segment due for deletion at the next sync, or (with retention)
 * did one die since the last seglog_state_save?  (Its owner saves its
 * state first when this is true.) */
int seglog_delete_pending(const struct seglog *log);

/* The wall time in ms since the epoch (retention measures with it; the log
 * reads no clock).  A segment that dies is stamped with the last value. */
void seglog_set_now(struct seglog *log, uint64_t wall_ms);

/* Give up retention once: the next seglog_sync deletes every dead segment
 * (a full disk: retained history gives way to new items). */
void seglog_retain_drop(struct seglog *log);

/*
 * Read-only scan of one segment file (path, segment id as in its name) as
 * recovery would scan it, without changing it: visit (may be NULL) is called
 * for every intact record in order, and *good (may be NULL) gets the length
 * of the intact prefix.  max_rec 0: SEGLOG_MAX_REC.  0, MTR_EIO (cannot
 * open or map) or a negative return of visit (which stops the scan).
 */
int seglog_scan_file(const char *path, uint32_t id, uint32_t max_rec, seglog_visit_fn visit, void *arg,
		     uint64_t *good);

/* Copy the counters. */
void seglog_stats(const struct seglog *log, struct seglog_stats *st);

#endif
