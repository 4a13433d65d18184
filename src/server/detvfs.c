/*
 * detvfs.c - deterministic 'now' and randomness through SQLite's hooks.
 *
 * The VFS is a copy of the default VFS's method table with a new name and
 * four methods replaced (xCurrentTime, xCurrentTimeInt64, xRandomness,
 * xOpen); every other method is the default VFS's own, called with our copy,
 * which carries the same pAppData, so files opened through it are ordinary
 * files of the default VFS.  The time and randomness methods consult a
 * thread-local "current item" set by the apply thread; with none set they
 * call the wrapped VFS, so connections of other threads keep the real clock.
 *
 * xOpen opens a WAL file through walbuf.c, which writes a transaction's
 * frames in one call (doc/apply.md "WAL writes"), and names temporary files
 * itself (issue 18).  The default VFS draws a
 * temporary file's name from SQLite's PRNG, which inside an item is seeded
 * from the item: every replica then chose the same path at the same moment,
 * and replicas sharing a temp directory raced on it (the loser's O_EXCL
 * open failed, SQLite fell back to opening the winner's file read-only, and
 * its first write failed with EBADF: SQLITE_IOERR_WRITE on one replica
 * only).  Our names are unique per process and open (pid, counter, 64 bits
 * from the kernel) and draw nothing from the item's PRNG.  The name lives
 * in extra bytes after the default VFS's file structure (szOsFile is larger
 * by TMPNAME_MAX), as SQLite requires it to stay valid until xClose.
 *
 * random()/randomblob() overrides: same semantics as SQLite's built-ins
 * (random(): a signed 64-bit integer, never INT64_MIN; randomblob(N): N bytes,
 * N < 1 gives 1 byte), but the bytes come from a struct detvfs_rng owned by
 * the caller and reseeded per item, so they do not depend on the
 * process-global PRNG.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detvfs.h"
#include "log.h"
#include "metronome.h"
#include "util.h"
#include "walbuf.h"

/* ---- PRNG: splitmix64 to seed, xoshiro256** to draw ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

void detvfs_rng_seed(struct detvfs_rng *rng, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t detvfs_rng_next(struct detvfs_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t r = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

void detvfs_rng_fill(struct detvfs_rng *rng, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		uint64_t v = detvfs_rng_next(rng);
		size_t k = n < 8 ? n : 8;
		for (size_t i = 0; i < k; i++)
			p[i] = (uint8_t)(v >> (8 * i));
		p += k;
		n -= k;
	}
}

/* ---- the VFS ---- */

/* The calling thread's current item (set only on the apply thread). */
static _Thread_local struct {
	int set;
	sqlite3_int64 jdms;
	struct detvfs_rng rng;
} cur;

static sqlite3_vfs det_vfs;
static sqlite3_vfs *orig_vfs;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static int reg_rc;

static int det_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	if (cur.set) {
		*out = cur.jdms;
		return SQLITE_OK;
	}
	return orig_vfs->xCurrentTimeInt64(orig_vfs, out);
}

static int det_current_time(sqlite3_vfs *vfs, double *out)
{
	sqlite3_int64 ms;
	int rc = det_current_time_int64(vfs, &ms);
	*out = (double)ms / 86400000.0;
	return rc;
}

/* Real time from a VFS of version 1 (no xCurrentTimeInt64). */
static int orig_time_v1(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	double d;
	int rc = vfs->xCurrentTime(vfs, &d);
	*out = (sqlite3_int64)(d * 86400000.0);
	return rc;
}

static int det_current_time_v1(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	if (cur.set) {
		*out = (double)cur.jdms / 86400000.0;
		return SQLITE_OK;
	}
	return orig_vfs->xCurrentTime(orig_vfs, out);
}

static int det_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	if (cur.set) {
		detvfs_rng_fill(&cur.rng, out, (size_t)n);
		return n;
	}
	return orig_vfs->xRandomness(orig_vfs, n, out);
}

/* ---- temporary files ---- */

#define TMPNAME_MAX 600 /* bytes kept per file for a temporary file's name */

static atomic_ullong tmp_counter;
static size_t tmp_name_off; /* where the name is kept in a file structure */

/* The directory for temporary files, in the order SQLite's unix VFS uses
 * (sqlite3_temp_directory, SQLITE_TMPDIR, TMPDIR, /var/tmp, /usr/tmp,
 * /tmp): the first that is a writable directory.  NULL if none. */
static const char *tmp_dir(void)
{
	const char *cand[] = {sqlite3_temp_directory, getenv("SQLITE_TMPDIR"), getenv("TMPDIR"), "/var/tmp",
			      "/usr/tmp", "/tmp"};
	for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
		struct stat st;
		if (cand[i] == NULL || cand[i][0] == '\0')
			continue;
		if (stat(cand[i], &st) == 0 && S_ISDIR(st.st_mode) && access(cand[i], W_OK | X_OK) == 0)
			return cand[i];
	}
	return NULL;
}

/* 64 bits from the kernel (never from SQLite's PRNG, which may be an item's). */
static uint64_t tmp_entropy(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)ts.tv_sec;
	}
	return v;
}

/*
 * A temporary file (zName NULL; SQLite asks for one with DELETEONCLOSE: a
 * statement journal that spills, a sorter run, a temp database): open it
 * under a name of our own, kept in the file structure.  The default VFS
 * deletes it right after opening.  A name that exists already would make it
 * fall back to a read-only open of someone else's file: such an open is
 * closed and another name tried.
 */
static int det_open_temp(sqlite3_vfs *vfs, sqlite3_file *file, int flags, int *out_flags)
{
	char *name = (char *)file + tmp_name_off;
	const char *dir = tmp_dir();
	if (dir == NULL)
		return SQLITE_IOERR_GETTEMPPATH;
	for (int attempt = 0; attempt < 8; attempt++) {
		unsigned long long n = atomic_fetch_add(&tmp_counter, 1);
		int len = snprintf(name, TMPNAME_MAX - 1, "%s/mtr-tmp-%ld-%llu-%016llx", dir, (long)getpid(), n,
				   (unsigned long long)tmp_entropy());
		if (len < 0 || len >= TMPNAME_MAX - 2 || len > vfs->mxPathname)
			return SQLITE_IOERR_GETTEMPPATH;
		name[len + 1] = '\0'; /* double NUL: SQLite may look for URI parameters */
		int got = 0;
		int rc = orig_vfs->xOpen(vfs, name, file, flags, &got);
		if (rc != SQLITE_OK)
			return rc;
		if ((flags & SQLITE_OPEN_READWRITE) && !(got & SQLITE_OPEN_READWRITE)) {
			mtr_log(LOG_WARN, "[detvfs] temporary file %s existed already: trying another name", name);
			file->pMethods->xClose(file);
			continue;
		}
		if (out_flags)
			*out_flags = got;
		return SQLITE_OK;
	}
	return SQLITE_CANTOPEN;
}

static int det_open(sqlite3_vfs *vfs, const char *zname, sqlite3_file *file, int flags, int *out_flags)
{
	if (zname == NULL)
		return det_open_temp(vfs, file, flags, out_flags);
	if (flags & SQLITE_OPEN_WAL)
		return walbuf_open(orig_vfs, vfs, zname, file, flags, out_flags);
	return orig_vfs->xOpen(vfs, zname, file, flags, out_flags);
}

static void register_once(void)
{
	/* No allocation statistics: with them every sqlite3_malloc and free
	 * takes one process-wide mutex, which the apply, checkpoint and read
	 * threads then share (doc/performance.md).  Nothing here reads them;
	 * SQLITE_MISUSE when SQLite is already initialised, which is harmless. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_initialize() != SQLITE_OK) {
		reg_rc = MTR_EIO;
		return;
	}
	orig_vfs = sqlite3_vfs_find(NULL);
	if (orig_vfs == NULL) {
		reg_rc = MTR_EIO;
		return;
	}
	det_vfs = *orig_vfs;
	det_vfs.pNext = NULL;
	det_vfs.zName = DETVFS_NAME;
	det_vfs.xRandomness = det_randomness;
	tmp_name_off = ((size_t)orig_vfs->szOsFile + 15) & ~(size_t)15;
	det_vfs.szOsFile = (int)MAX(tmp_name_off + TMPNAME_MAX, walbuf_header_size() + (size_t)orig_vfs->szOsFile);
	det_vfs.xOpen = det_open;
	if (orig_vfs->iVersion >= 2 && orig_vfs->xCurrentTimeInt64 != NULL) {
		det_vfs.xCurrentTime = det_current_time;
		det_vfs.xCurrentTimeInt64 = det_current_time_int64;
	} else {
		(void)orig_time_v1;
		det_vfs.xCurrentTime = det_current_time_v1;
	}
	/*
	 * Registered as the default: sqlite3_randomness() reseeds its PRNG
	 * from the default VFS's xRandomness, whatever VFS the connection uses.
	 * Behaviour on threads without a current item is unchanged.
	 */
	if (sqlite3_vfs_register(&det_vfs, 1) != SQLITE_OK) {
		reg_rc = MTR_ENOMEM;
		return;
	}
	mtr_log(LOG_DEBUG, "[detvfs] registered %s over %s", DETVFS_NAME, orig_vfs->zName);
}

int detvfs_register(void)
{
	pthread_once(&reg_once, register_once);
	return reg_rc;
}

void detvfs_item_begin(int64_t timestamp_us, uint64_t seed)
{
	/* Floor division: SQLite keeps milliseconds. */
	int64_t ms = timestamp_us >= 0 ? timestamp_us / 1000 : -((-timestamp_us + 999) / 1000);
	cur.jdms = ms + DETVFS_UNIX_EPOCH_JDMS;
	detvfs_rng_seed(&cur.rng, seed);
	cur.set = 1;
	sqlite3_randomness(0, NULL);
}

void detvfs_item_end(void)
{
	cur.set = 0;
	sqlite3_randomness(0, NULL);
}

/* ---- random() / randomblob() ---- */

static void fn_random(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	struct detvfs_rng *rng = sqlite3_user_data(ctx);
	int64_t r = (int64_t)detvfs_rng_next(rng);
	/* As SQLite's random(): a negative value is folded so that it is never
	 * INT64_MIN (whose negation does not exist). */
	if (r < 0)
		r = -(r & INT64_MAX);
	sqlite3_result_int64(ctx, r);
}

static void fn_randomblob(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct detvfs_rng *rng = sqlite3_user_data(ctx);
	sqlite3_int64 n = sqlite3_value_int64(argv[0]);
	if (n < 1)
		n = 1;
	if (n > sqlite3_limit(sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, -1)) {
		sqlite3_result_error_toobig(ctx);
		return;
	}
	uint8_t *p = sqlite3_malloc64((sqlite3_uint64)n);
	if (p == NULL) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	detvfs_rng_fill(rng, p, (size_t)n);
	sqlite3_result_blob64(ctx, p, (sqlite3_uint64)n, sqlite3_free);
}

int detvfs_functions_register(sqlite3 *db, struct detvfs_rng *rng)
{
	int f = SQLITE_UTF8 | SQLITE_INNOCUOUS;
	if (sqlite3_create_function(db, "random", 0, f, rng, fn_random, NULL, NULL) != SQLITE_OK ||
	    sqlite3_create_function(db, "randomblob", 1, f, rng, fn_randomblob, NULL, NULL) != SQLITE_OK)
		return MTR_ESQL;
	return 0;
}
