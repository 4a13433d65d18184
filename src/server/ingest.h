/*
 * ingest.h - a server's per-stream receive state and item store.
 *
 * Items of every proxy stream arrive out of order and duplicated (multicast,
 * repair).  ingest_add() stores each (stream, seq) once in the segment log
 * (seglog.h) and drops and counts the rest.  Per stream it keeps:
 *
 *   base      every seq <= base is released (applied everywhere, forgotten)
 *   contig    every seq <= contig is stored (appended, maybe not yet synced)
 *   watermark every seq <= watermark is *held*: in `disk` mode synced by an
 *             fdatasync (ingest_sync, the group commit), in `memory` mode
 *             stored in memory; base <= watermark <= contig
 *   high      the highest seq known to exist: the highest seen, or a proxy
 *             heartbeat's high (ingest_note_high: tail-loss detection)
 *
 * The missing seqs in (contig, high] are the gaps; ingest_gaps() lists them
 * as ranges for RESEND requests, each seq at most once per retry interval
 * (time is an argument: this module reads no clock).
 *
 * Hostile input is bounded: a limit on streams, on how far ahead of base a
 * seq may be (the window), on item size and on bytes held in memory; beyond
 * them an item is dropped and counted, never stored.
 *
 * The hot path (ingest_add) does no malloc and no syscall per item: items are
 * copied into the log's write buffer (disk) or chunk (memory); the per-stream
 * index is a ring of slots indexed by seq.
 *
 * Threading: one thread at a time.
 */
#ifndef MTR_INGEST_H
#define MTR_INGEST_H

#include <stdint.h>

#include "stats.h"

enum ingest_durability { INGEST_DISK = 0, INGEST_MEMORY = 1 };

#define INGEST_DEFAULT_MAX_STREAMS 1024u
#define INGEST_DEFAULT_MAX_MEM (1ull << 30)   /* 1 GiB */
#define INGEST_DEFAULT_WINDOW (1ull << 20)    /* seqs ahead of base */
#define INGEST_DEFAULT_MAX_ITEM (64u << 20)   /* same as the wire default */
#define INGEST_DEFAULT_RETRY_NS 20000000ull   /* 20 ms between RESENDs of a seq */

/* Options; zero fields take the defaults. */
struct ingest_opts {
	enum ingest_durability durability;
	const char *dir;      /* disk: the items directory (e.g. DATA/items); copied by the log */
	uint64_t seg_size;    /* segment roll size (seglog default when 0) */
	uint32_t wbuf_size;   /* disk write buffer (seglog default when 0) */
	uint64_t cache_keep;  /* disk: bytes behind the log's end kept for reads (seglog default when 0) */
	uint32_t max_streams; /* streams known at once */
	uint64_t max_mem;     /* index bytes, plus item bytes in memory mode */
	uint64_t window;      /* largest seq - base accepted */
	uint32_t max_item;    /* largest item accepted */
	uint64_t retry_ns;    /* least time between two requests for one seq */
	uint64_t retain_bytes; /* disk: keep released segments up to this many bytes (0: none; seglog.h) */
	uint64_t retain_ms;    /* disk: ... and at most this long (0: none) */
	uint64_t aux_min;      /* disk: recovery keeps the acceptor records above this key (ingest_aux_each) */
	/* disk: called by ingest_sync before a segment file is deleted (the
	 * owner makes its copies of the acceptor records durable); non-zero
	 * stops the sync with that code.  NULL: none. */
	int (*before_delete)(void *arg);
	void *delete_arg;
};

/* A range of missing items, inclusive. */
struct ingest_range {
	uint64_t stream;
	uint64_t first, last;
};

/* Counters (monotonic unless said otherwise): X(member, meaning). */
#define INGEST_STATS_MAP(X)                                   \
	X(added, "items stored")                              \
	X(bytes, "item bytes stored")                         \
	X(dup, "dropped: already stored or released")         \
	X(drop_invalid, "dropped: seq 0, empty or too large") \
	X(drop_streams, "dropped: too many streams")          \
	X(evicted_streams, "streams that never held an item, forgotten to make room") \
	X(drop_window, "dropped: too far ahead of base")      \
	X(drop_mem, "dropped: memory bound")                  \
	X(drop_full, "dropped: the disk is full (MTR_ENOSPACE)") \
	X(syncs, "ingest_sync calls that advanced something") \
	X(resend_ranges, "ranges returned by ingest_gaps*")   \
	X(resend_items, "seqs in them")                       \
	X(released, "items forgotten")                        \
	X(recovered, "items found again by recovery")         \
	X(streams, "streams known (gauge)")                   \
	X(items_held, "items stored and not released (gauge)") \
	X(mem, "bytes counted against max_mem (gauge)")       \
	X(log_records, "records of the chosen history written (ingest_log_record)") \
	X(log_failed, "records of the chosen history that could not be written") \
	X(aux_records, "acceptor records written (ingest_log_aux)") \
	X(retained_segs, "released segments kept for point-in-time restore (gauge)") \
	X(retained_bytes, "bytes of those segments (gauge)")

struct ingest_stats {
	INGEST_STATS_MAP(STATS_FIELD)
};

struct ingest;

/*
 * Open the store.  Disk mode recovers what the directory holds (torn tails
 * cut, index and watermarks rebuilt: a recovered item counts as held).
 * *out is freed with ingest_close().  Returns 0, MTR_EINVAL, MTR_ENOMEM,
 * MTR_EIO.
 */
int ingest_open(const struct ingest_opts *opts, struct ingest **out);

/* Free everything (items appended since the last ingest_sync may be lost).
 * NULL is allowed. */
void ingest_close(struct ingest *ing);

/*
 * Store the encoded item record item[0..len) as (stream, seq).  The bytes
 * are copied.  A new stream is created on its first item.  Returns 0 when
 * stored; MTR_EDUPLICATE (already stored or released); MTR_EINVAL (seq 0 or
 * len 0); MTR_ETOOBIG (len > max_item); MTR_EFULL (stream, window or memory
 * bound); MTR_ENOSPACE (disk mode, the disk is full: nothing kept, the
 * store is as before); MTR_EIO.  Every non-zero return is a counted drop.
 */
int ingest_add(struct ingest *ing, uint64_t stream, uint64_t seq, const void *item, uint32_t len);

/*
 * Group commit.  Disk mode: write and fdatasync everything appended since the
 * last call (one fdatasync), then advance the watermarks of every stream that
 * grew; delete segments whose items are all released (saving the release
 * points first).  Memory mode: nothing to write.  Returns 0, MTR_ENOSPACE
 * (the disk is full: the watermarks did not move, what was appended is kept
 * and a later call writes it) or MTR_EIO (the watermarks did not move; the
 * disk's state is unknown: stop).
 */
int ingest_sync(struct ingest *ing);

/*
 * Append a record that is not an item to the log: (stream = key, seq = 0,
 * body).  It is never indexed, read back or counted as live (recovery skips
 * seq 0), so it lives as long as its segment does: for the items' lifetime
 * plus the retention.  The server writes its chosen history this way
 * (pitr.h).  Memory mode: nothing is written (returns 0).  Durable at the
 * next ingest_sync.  0, MTR_EINVAL, MTR_ETOOBIG, MTR_ENOSPACE or MTR_EIO.
 */
int ingest_log_record(struct ingest *ing, uint64_t key, const void *body, uint32_t len);

/*
 * Disk mode: append an acceptor record (the server's Paxos accept, a pstore
 * record) to the log as (stream 0, seq = key): durable with the items
 * appended before it at the next ingest_sync, in the same fdatasync, and
 * never recovered without them (recovery keeps a prefix of each segment).
 * Not live, not indexed.  doc/storage.md "One commit per accept".
 * 0, MTR_EINVAL (memory mode, key 0), MTR_ETOOBIG, MTR_ENOSPACE, MTR_EIO.
 */
int ingest_log_aux(struct ingest *ing, uint64_t key, const void *body, uint32_t len);

/* The acceptor records recovery found with a key above opts.aux_min, in log
 * order: fn(arg, key, body, len) for each (body valid during the call),
 * stopping at the first non-zero return, which is returned.  Once: the list
 * is freed.  0, MTR_EIO, MTR_ENOMEM or fn's code. */
int ingest_aux_each(struct ingest *ing, int (*fn)(void *arg, uint64_t key, const uint8_t *body, uint32_t len),
		    void *arg);

/* The wall time in ms since the epoch, for retention (seglog_set_now). */
void ingest_set_now(struct ingest *ing, uint64_t wall_ms);

/* Retention gives way once: the next ingest_sync deletes every released
 * segment (seglog_retain_drop; for a full disk). */
void ingest_retain_drop(struct ingest *ing);

/* A proxy heartbeat: the stream has items up to high (creates the stream
 * when new; MTR_EFULL beyond the stream bound). */
int ingest_note_high(struct ingest *ing, uint64_t stream, uint64_t high);

/*
 * Missing ranges of one stream, for RESEND: the seqs in (contig, high] not
 * stored and not requested within retry_ns before now (any monotonic clock in
 * ns, the caller's).  Fills out[0..max) and returns the count; the seqs
 * returned are marked requested at now.
 */
int ingest_gaps(struct ingest *ing, uint64_t stream, uint64_t now, struct ingest_range *out, int max);

/* The same over every stream (round robin across calls). */
int ingest_gaps_all(struct ingest *ing, uint64_t now, struct ingest_range *out, int max);

/*
 * The stored bytes of (stream, seq), for apply and for answering a peer's
 * RESEND.  *p stays valid until the next call into this ingest.  Returns 0,
 * MTR_ENOENT (not stored, or released), MTR_EIO, MTR_ENOMEM.
 */
int ingest_get(struct ingest *ing, uint64_t stream, uint64_t seq, const uint8_t **p, uint32_t *len);

/* The held watermark of a stream (0 for an unknown stream). */
uint64_t ingest_watermark(const struct ingest *ing, uint64_t stream);

/* 1 when every item of the stream up to last is held (watermark >= last),
 * else 0. */
int ingest_holds(const struct ingest *ing, uint64_t stream, uint64_t last);

/* The received watermark of a stream (contig: every seq up to it is stored,
 * maybe not yet synced; 0 for an unknown stream).  In disk mode a server
 * accepts on it and makes the items durable together with its accept record
 * (ingest_log_aux) before it answers (Paxos invariant 4). */
uint64_t ingest_received(const struct ingest *ing, uint64_t stream);

/* 1 when something was appended (items or records) that the next
 * ingest_sync makes durable, else 0. */
int ingest_unsynced(const struct ingest *ing);

/*
 * Items of the stream up to upto are applied everywhere: free them (and
 * drop late copies of them from now on).  Segments whose items are all
 * released are deleted at the next ingest_sync.  Returns 0 or MTR_EFULL (an
 * unknown stream beyond the stream bound).
 */
int ingest_forget(struct ingest *ing, uint64_t stream, uint64_t upto);

/* Forget the streams of ids[0..n) that never held an item (known only from
 * a heartbeat or a fetch: nothing stored, nothing released), so that their
 * gaps are no longer asked for.  The server calls it for the streams its
 * stream table evicted as dead.  Returns how many were forgotten. */
unsigned ingest_forget_empty(struct ingest *ing, const uint64_t *ids, unsigned n);

/* Copy the counters. */
void ingest_stats(const struct ingest *ing, struct ingest_stats *st);

#endif
