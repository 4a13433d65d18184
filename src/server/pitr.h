/*
 * pitr.h - point-in-time restore (doc/operations.md "Point-in-time
 * restore", doc/storage.md "Retention" and "History records").
 *
 * A server writes, for every instance it learns chosen, one history record
 * into its item log (ingest_log_record: key = the instance, seq 0): the wall
 * time at which it learned it and the batch (its ranges).  The log keeps
 * released segments for server.log_retain_time / server.log_retain_bytes,
 * so a data directory holds the chosen batches and their items for that
 * long.  pitr_restore() starts from a backup file (mtr_backup / .backup: a
 * replica at instance B) and applies, with the replica's own apply code,
 * instances B+1 ... T read from such a directory, T given as an instance or
 * as a time (the last instance chosen at or before it, by that server's
 * clock).  It reads the directory without changing it, so a running
 * server's directory or a copy of it will do.
 *
 * History record body (little-endian), inside an ordinary segment record:
 *
 *   0  4  version (1)
 *   4  8  wall time in ms since the epoch when this server learned the
 *         instance chosen
 *  12  …  the batch (batch_encode, doc/paxos.md)
 */
#ifndef MTR_PITR_H
#define MTR_PITR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "batch.h"

#define PITR_RECORD_VERSION 1u
#define PITR_RECORD_HDR 12u

/* Encode a history record body into buf (cap bytes): its length, or
 * MTR_ETOOBIG. */
int pitr_record_encode(uint8_t *buf, size_t cap, uint64_t wall_ms, const struct batch *b);

/* Decode a history record body; on success b owns a fresh batch
 * (batch_free).  0, MTR_ETRUNCATED, MTR_EMALFORMED (wrong version, trailing
 * bytes, invalid batch) or MTR_ENOMEM. */
int pitr_record_decode(const uint8_t *p, size_t len, uint64_t *wall_ms, struct batch *b);

/* What to restore. */
struct pitr_opts {
	const char *backup;  /* the backup file (read only) */
	const char *logdir;  /* a server's data.dir (or a copy): DIR/items is read, never written */
	const char *until;   /* "INSTANCE", "YYYY-MM-DDTHH:MM:SS[.mmm]Z" (UTC) or "@SECONDS[.mmm]" */
	const char *out;     /* the SQLite file to create (must not exist) */
};

/* What was restored. */
struct pitr_result {
	uint64_t from;      /* the backup's instance B */
	uint64_t until;     /* the instance T the result is at */
	uint64_t until_ms;  /* when T was chosen (wall ms; 0 when T = B and unknown) */
	uint64_t items;     /* items applied */
};

/*
 * Create opts->out: the backup's content with instances B+1 .. T applied,
 * a replica database at T (mtr_meta 'applied' = T) that --init-from
 * accepts.  Errors say what was wrong and what to do (err, errlen):
 * MTR_EINVAL (bad target, target before the backup, not a backup),
 * MTR_ENOENT (the retained log does not reach back to B, has a gap, does
 * not reach T or past the target time, or an item is gone), MTR_EEXIST
 * (out exists), MTR_EIO, MTR_ESQL, MTR_ENOMEM.  On an error out is not
 * left behind.
 */
int pitr_restore(const struct pitr_opts *opts, struct pitr_result *res, char *err, size_t errlen);

/*
 * Print what DIR's log can restore: the retained instances (first, last,
 * with their times) and any gap, one line each, to f.  0, MTR_EIO or
 * MTR_ENOMEM (err says why).
 */
int pitr_list(const char *logdir, FILE *f, char *err, size_t errlen);

#endif
