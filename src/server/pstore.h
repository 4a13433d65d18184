/*
 * pstore.h - the durable acceptor state of a server's Paxos core: an
 * append-only, checksummed log in DATA/paxos/log holding every promise and
 * every accepted (ballot, instance, value).  The host plugs pstore_persist()
 * into paxos_io.persist (data = the struct pstore *), so the core answers a
 * PREPARE or ACCEPT only after the change is on disk.  On restart
 * pstore_open() recovers the state (stopping at, and cutting off, a torn or
 * corrupt tail) and pstore_replay() hands it to a fresh core.  The host calls
 * pstore_compact() once instances are applied everywhere, when pstore_size()
 * exceeds its limit.  doc/pstore.md gives the format byte by byte.
 *
 * Not thread-safe: one thread (the server's Paxos thread) uses a store.
 */
#ifndef MTR_PSTORE_H
#define MTR_PSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "paxos.h"

struct pstore;

/* Largest record body (kind, ballot, inst, batch of BATCH_MAX_RANGES):
 * bodies above it are treated as corrupt on recovery. */
#define PSTORE_MAX_BODY (1u + 8u + 8u + BATCH_HDR_SIZE + BATCH_MAX_RANGES * BATCH_RANGE_SIZE)

/* Open (creating DATA/paxos/ and the log if needed) the store under the data
 * directory `dir` and recover its state; *out is owned by the caller
 * (pstore_close).  A torn or corrupt tail is cut off (logged).  Durable mode
 * (fdatasync on every pstore_sync) is on.  0, MTR_EINVAL, MTR_EMAGIC (the
 * file is not a pstore log), MTR_EIO or MTR_ENOMEM. */
int pstore_open(const char *dir, struct pstore **out);

/* Close the file and free everything; NULL is fine.  Does not sync. */
void pstore_close(struct pstore *ps);

/* Durability switch.  true (default): pstore_sync() calls fdatasync, so a
 * change survives power loss.  false (memory mode): no sync, a change
 * survives a process crash (it is in the page cache) but not an OS crash. */
void pstore_set_sync(struct pstore *ps, bool sync);

/* Append one change without syncing (group commit: append several, then
 * pstore_sync once before answering).  change->value is only borrowed.  The
 * in-memory state is updated.  0, MTR_EINVAL (bad kind or invalid value),
 * MTR_ENOSPACE (disk full or quota: the file is cut back to its previous
 * length, the store is as before and may be written again), MTR_EIO (the
 * file is cut back to its previous length; if even that fails the store
 * refuses every later write) or MTR_ENOMEM. */
int pstore_append(struct pstore *ps, const struct paxos_persist *change);

/*
 * The record of an ACCEPT change, as pstore_append writes it (doc/pstore.md
 * "Format"), in a malloc'd buffer (*out, *len; the caller frees it).  Disk
 * mode writes it to the item log first (ingest_log_aux: one fdatasync for
 * the items and the accept) and hands it to pstore_merge after that sync.
 * 0, MTR_EINVAL (not an ACCEPT, or an invalid value), MTR_ETOOBIG,
 * MTR_ENOMEM.
 */
int pstore_record(const struct paxos_persist *change, uint8_t **out, size_t *len);

/*
 * Take an ACCEPT record made by pstore_record (from the item log: after its
 * group commit, or found there by recovery): check it like recovery does,
 * apply it to the state (the higher ballot wins, as in the file) and append
 * it to the file without syncing.  0, MTR_EMALFORMED / MTR_EINTEGRITY (not
 * an intact ACCEPT record: nothing changed), MTR_ENOSPACE (not written: the
 * state has it, the file is as before), MTR_EIO, MTR_ENOMEM.
 */
int pstore_merge(struct pstore *ps, const uint8_t *rec, size_t len);

/* Make every appended change durable (fdatasync; nothing in memory mode).
 * 0 or MTR_EIO. */
int pstore_sync(struct pstore *ps);

/* The paxos_io.persist callback (data is the struct pstore *): append, then
 * sync.  0 or the error of pstore_append / pstore_sync. */
int pstore_persist(void *data, const struct paxos_persist *change);

/* Hand the recovered state to a fresh core (before its first tick): the
 * promise via paxos_restore_promise, then each accepted instance in
 * increasing order via paxos_restore_accepted.  0 or the core's error. */
int pstore_replay(const struct pstore *ps, struct paxos *p);

/* Instances <= upto are applied everywhere they need to be: rewrite the log
 * with only the promise and the accepted values above upto (temp file,
 * fsync, rename, fsync of the directory).  On an error before the rename
 * the old log stays in use and the state is unchanged; if only the final
 * directory fsync fails the new log is in use (MTR_EIO is still returned:
 * the rename may not survive power loss, but either file holds the full
 * state above upto).  0, MTR_ENOSPACE (no room for the new file: the old
 * log stays in use, whole), MTR_EIO or MTR_ENOMEM. */
int pstore_compact(struct pstore *ps, uint64_t upto);

/* Current size of the log file in bytes (the host compacts above a limit). */
uint64_t pstore_size(const struct pstore *ps);

/* The promised ballot: the highest ballot of any record (0 if none). */
uint64_t pstore_promised(const struct pstore *ps);

/* Number of instances holding an accepted value. */
size_t pstore_count(const struct pstore *ps);

/* The i-th accepted instance in increasing instance order (i <
 * pstore_count): *inst, *ballot and *value (borrowed from the store, valid
 * until its next append, compact or close).  0 or MTR_EINVAL. */
int pstore_at(const struct pstore *ps, size_t i, uint64_t *inst, uint64_t *ballot, const struct batch **value);

/* The accepted (ballot, value) of inst (value borrowed as above); 0 or
 * MTR_ENOENT. */
int pstore_get(const struct pstore *ps, uint64_t inst, uint64_t *ballot, const struct batch **value);

#endif
