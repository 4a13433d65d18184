/*
 * detvfs.h - deterministic time and randomness for the apply connection,
 * through SQLite's own hooks (DESIGN.md invariant 6; doc/apply.md).
 *
 * Two mechanisms, both driven by the item being applied:
 *
 *  1. A VFS named DETVFS_NAME that wraps the default VFS and overrides
 *     xCurrentTime/xCurrentTimeInt64 (every form of 'now' and
 *     CURRENT_TIMESTAMP) and xRandomness (what SQLite's global PRNG reseeds
 *     from after sqlite3_randomness(0, NULL)).  The "current item" is
 *     thread-local: the apply thread sets it with detvfs_item_begin(); any
 *     other thread (readers) sees the real clock and real randomness.  The VFS
 *     is registered as the process default because SQLite reseeds its PRNG
 *     from the default VFS, not from the connection's.  Its WAL files are
 *     opened through walbuf.h (a transaction's frames in one write).
 *
 *  2. random() and randomblob() overridden on a connection with functions
 *     drawing from a PRNG owned by the caller (struct detvfs_rng), so other
 *     connections advancing SQLite's process-global PRNG cannot change them.
 */
#ifndef MTR_DETVFS_H
#define MTR_DETVFS_H

#include <stdint.h>

#include <sqlite3.h>

#define DETVFS_NAME "mtr-det"

/* Julian day number of the Unix epoch, in milliseconds. */
#define DETVFS_UNIX_EPOCH_JDMS INT64_C(210866760000000)

/* A small PRNG (xoshiro256**), seeded through splitmix64.  Plain data: the
 * owner embeds it; no allocation. */
struct detvfs_rng {
	uint64_t s[4];
};

/* Seed rng from a 64-bit seed (any value, 0 included). */
void detvfs_rng_seed(struct detvfs_rng *rng, uint64_t seed);

/* Next 64 pseudo-random bits. */
uint64_t detvfs_rng_next(struct detvfs_rng *rng);

/* Fill buf with n pseudo-random bytes. */
void detvfs_rng_fill(struct detvfs_rng *rng, void *buf, size_t n);

/* Register the VFS (once per process; thread-safe; later calls are no-ops).
 * Returns 0 or MTR_ENOMEM / MTR_EIO. */
int detvfs_register(void);

/*
 * Set the calling thread's current item: 'now' on connections using the VFS
 * becomes timestamp_us (microseconds since the Unix epoch, truncated to the
 * millisecond SQLite keeps) and xRandomness draws from a PRNG seeded by seed.
 * Also resets SQLite's PRNG (sqlite3_randomness(0, NULL)) so its next use
 * reseeds from that PRNG.
 */
void detvfs_item_begin(int64_t timestamp_us, uint64_t seed);

/* Clear the calling thread's current item: back to the real clock. */
void detvfs_item_end(void);

/*
 * Override random() and randomblob() on db with functions drawing from *rng
 * (not owned; must outlive db or the next call).  Returns 0 or MTR_ESQL.
 */
int detvfs_functions_register(sqlite3 *db, struct detvfs_rng *rng);

#endif
