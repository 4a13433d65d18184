/*
 * pitr.c - point-in-time restore (pitr.h): read the chosen history and the
 * items of a data directory's item log without changing it, check that it
 * covers the backup's instance up to the target, and apply the instances
 * to a copy of the backup with the replica's own apply code.
 *
 * Two read-only passes over the segments (seglog_scan_file): the first
 * collects the history records (seq 0), the second the locations of the
 * items the chosen instances name (a dense array per stream over the seqs
 * needed: 16 bytes per item replayed).  Item bytes are then read with
 * pread, one instance at a time.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "apply.h"
#include "apply_int.h"
#include "log.h"
#include "metronome.h"
#include "pitr.h"
#include "seglog.h"
#include "util.h"
#include "wire.h"

/* ---- the record ---- */

int pitr_record_encode(uint8_t *buf, size_t cap, uint64_t wall_ms, const struct batch *b)
{
	if (cap < PITR_RECORD_HDR)
		return MTR_ETOOBIG;
	st32(buf, PITR_RECORD_VERSION);
	st64(buf + 4, wall_ms);
	int n = batch_encode(b, buf + PITR_RECORD_HDR, cap - PITR_RECORD_HDR);
	return n < 0 ? n : n + (int)PITR_RECORD_HDR;
}

int pitr_record_decode(const uint8_t *p, size_t len, uint64_t *wall_ms, struct batch *b)
{
	*b = (struct batch){0};
	if (len < PITR_RECORD_HDR)
		return MTR_ETRUNCATED;
	if (ld32(p) != PITR_RECORD_VERSION)
		return MTR_EMALFORMED;
	size_t used = 0;
	int rc = batch_decode(b, p + PITR_RECORD_HDR, len - PITR_RECORD_HDR, &used);
	if (rc != 0)
		return rc;
	if (used != len - PITR_RECORD_HDR) {
		batch_free(b);
		return MTR_EMALFORMED;
	}
	*wall_ms = ld64(p + 4);
	return 0;
}

/* ---- helpers ---- */

/* Set err and give code (one expression). */
#define fail(err, errlen, code, ...) (errbuf_set((err), (errlen), __VA_ARGS__), (code))

/* "2026-12-05T03:04:05.678Z" */
static const char *fmt_ms(uint64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000u);
	struct tm tm;
	char s[32];
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
	snprintf(buf, n, "%s.%03uZ", s, (unsigned)(ms % 1000u));
	return buf;
}

/* The target: an instance (*is_time 0) or a wall time in ms (1).  0 or
 * MTR_EINVAL. */
static int parse_until(const char *s, uint64_t *v, int *is_time)
{
	char *end;
	if (s == NULL || *s == 0)
		return MTR_EINVAL;
	if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		unsigned long long x = strtoull(s, &end, 10);
		if (errno != 0)
			return MTR_EINVAL;
		*v = x;
		*is_time = 0;
		return 0;
	}
	*is_time = 1;
	if (s[0] == '@') {
		errno = 0;
		double x = strtod(s + 1, &end);
		if (errno != 0 || end == s + 1 || *end != 0 || !(x >= 0) || x > 1e13)
			return MTR_EINVAL;
		*v = (uint64_t)(x * 1000.0 + 0.5);
		return 0;
	}
	struct tm tm = {0};
	int ms = 0, used = 0, y, mo, d, h, mi, se;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &used) != 6)
		return MTR_EINVAL;
	const char *p = s + used;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		if (digits == 0)
			return MTR_EINVAL;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return MTR_EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	time_t t = timegm(&tm);
	if (t < 0)
		return MTR_EINVAL;
	*v = (uint64_t)t * 1000u + (uint64_t)ms;
	return 0;
}

/* The segment ids of DIR/items in increasing order (*ids malloc'd). */
static int list_segs(const char *logdir, uint32_t **ids, size_t *n, char *err, size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/items", logdir);
	DIR *d = opendir(path);
	if (d == NULL)
		return fail(err, errlen, MTR_EIO, "cannot read %s: %s (give the data.dir of a server, or a copy of it)",
			    path, strerror(errno));
	size_t cap = 0;
	*ids = NULL;
	*n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *nm = e->d_name;
		if (strlen(nm) != 16 || strcmp(nm + 12, ".seg") != 0 || strspn(nm, "0123456789") != 12)
			continue;
		unsigned long long id = strtoull(nm, NULL, 10);
		if (id == 0 || id > UINT32_MAX)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			uint32_t *p = realloc(*ids, cap * sizeof *p);
			if (p == NULL) {
				closedir(d);
				return fail(err, errlen, MTR_ENOMEM, "out of memory");
			}
			*ids = p;
		}
		(*ids)[(*n)++] = (uint32_t)id;
	}
	closedir(d);
	for (size_t i = 1; i < *n; i++) /* insertion sort: few segments */
		for (size_t j = i; j > 0 && (*ids)[j - 1] > (*ids)[j]; j--) {
			uint32_t t = (*ids)[j];
			(*ids)[j] = (*ids)[j - 1];
			(*ids)[j - 1] = t;
		}
	return 0;
}

static void seg_file(const char *logdir, uint32_t id, char *buf, size_t n)
{
	snprintf(buf, n, "%s/items/%012u.seg", logdir, id);
}

/* ---- pass 1: the history ---- */

struct need {
	uint64_t stream, lo, hi; /* seqs lo..hi are needed */
	struct seglog_loc *loc;  /* hi - lo + 1 entries; seg 0: not found yet */
};

struct hist {
	uint64_t inst, ms;
	struct batch b;
};

struct scan {
	const char *logdir;
	uint32_t seg;
	/* pass 1 */
	struct hist *h;
	size_t nh, caph;
	uint64_t min_inst; /* records below it are not kept */
	uint64_t max_inst; /* nor above it (an instance target: memory is per instance kept) */
	int beyond;        /* a record above max_inst was seen */
	uint64_t bad;      /* undecodable history records */
	uint64_t nitems;   /* item records (seq > 0) in the segments */
	/* pass 2 */
	struct need *need;
	size_t nneed;
	int fd;            /* the segment being scanned */
};

static int hist_visit(void *arg, uint64_t stream, uint64_t seq, const struct seglog_loc *loc)
{
	struct scan *sc = arg;
	if (seq != 0)
		sc->nitems++;
	if (seq != 0 || stream < sc->min_inst)
		return 0;
	if (stream > sc->max_inst) {
		sc->beyond = 1;
		return 0;
	}
	uint8_t *p = malloc(loc->len);
	if (p == NULL)
		return MTR_ENOMEM;
	if (pread(sc->fd, p, loc->len, (off_t)loc->off) != (ssize_t)loc->len) {
		free(p);
		return MTR_EIO;
	}
	struct hist h = {.inst = stream};
	int rc = pitr_record_decode(p, loc->len, &h.ms, &h.b);
	free(p);
	if (rc == MTR_ENOMEM)
		return rc;
	if (rc != 0) {
		sc->bad++;
		return 0;
	}
	if (sc->nh == sc->caph) {
		size_t nc = sc->caph ? sc->caph * 2 : 1024;
		struct hist *nh = realloc(sc->h, nc * sizeof *nh);
		if (nh == NULL) {
			batch_free(&h.b);
			return MTR_ENOMEM;
		}
		sc->h = nh;
		sc->caph = nc;
	}
	sc->h[sc->nh++] = h;
	return 0;
}

static int scan_all(struct scan *sc, const uint32_t *ids, size_t n, seglog_visit_fn visit, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		char path[4200];
		seg_file(sc->logdir, ids[i], path, sizeof path);
		sc->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (sc->fd < 0) {
			if (errno == ENOENT)
				continue; /* deleted by the running server meanwhile */
			return fail(err, errlen, MTR_EIO, "cannot read %s: %s", path, strerror(errno));
		}
		sc->seg = ids[i];
		int rc = seglog_scan_file(path, ids[i], 0, visit, sc, NULL);
		close(sc->fd);
		sc->fd = -1;
		if (rc != 0)
			return fail(err, errlen, rc, "reading %s: %s", path, mtr_strerror(rc));
	}
	return 0;
}

static int hist_cmp(const void *a, const void *b)
{
	const struct hist *x = a, *y = b;
	return x->inst < y->inst ? -1 : x->inst > y->inst;
}

/* Sort by instance and keep one record per instance (a server that
 * restarted may learn an instance again: every copy holds the same batch;
 * the earliest time is kept, qsort being unstable). */
static void hist_sort(struct scan *sc)
{
	if (sc->nh > 1)
		qsort(sc->h, sc->nh, sizeof *sc->h, hist_cmp);
	size_t o = 0;
	for (size_t i = 0; i < sc->nh; i++) {
		if (o > 0 && sc->h[o - 1].inst == sc->h[i].inst) {
			if (sc->h[i].ms < sc->h[o - 1].ms)
				sc->h[o - 1].ms = sc->h[i].ms;
			batch_free(&sc->h[i].b);
			continue;
		}
		sc->h[o++] = sc->h[i];
	}
	sc->nh = o;
}

static void scan_free(struct scan *sc)
{
	for (size_t i = 0; i < sc->nh; i++)
		batch_free(&sc->h[i].b);
	free(sc->h);
	for (size_t i = 0; i < sc->nneed; i++)
		free(sc->need[i].loc);
	free(sc->need);
}

int pitr_list(const char *logdir, FILE *f, char *err, size_t errlen)
{
	uint32_t *ids = NULL;
	size_t n = 0;
	int rc = list_segs(logdir, &ids, &n, err, errlen);
	if (rc != 0)
		return rc;
	struct scan sc = {.logdir = logdir, .fd = -1, .max_inst = UINT64_MAX};
	rc = scan_all(&sc, ids, n, hist_visit, err, errlen);
	free(ids);
	if (rc != 0) {
		scan_free(&sc);
		return rc;
	}
	hist_sort(&sc);
	char t1[40], t2[40];
	if (sc.nh == 0)
		fprintf(f, "%s: no chosen history retained (segments: %zu)\n", logdir, n);
	for (size_t i = 0; i < sc.nh;) {
		size_t j = i;
		while (j + 1 < sc.nh && sc.h[j + 1].inst == sc.h[j].inst + 1)
			j++;
		fprintf(f, "instances %llu .. %llu chosen %s .. %s\n", (unsigned long long)sc.h[i].inst,
			(unsigned long long)sc.h[j].inst, fmt_ms(sc.h[i].ms, t1, sizeof t1),
			fmt_ms(sc.h[j].ms, t2, sizeof t2));
		if (j + 1 < sc.nh)
			fprintf(f, "gap: instances %llu .. %llu are not in the log\n",
				(unsigned long long)sc.h[j].inst + 1, (unsigned long long)sc.h[j + 1].inst - 1);
		i = j + 1;
	}
	if (sc.bad)
		fprintf(f, "%llu damaged history records skipped\n", (unsigned long long)sc.bad);
	scan_free(&sc);
	return 0;
}

/* ---- pass 2: the items ---- */

static struct need *need_find(struct scan *sc, uint64_t stream)
{
	size_t a = 0, b = sc->nneed;
	while (a < b) {
		size_t m = (a + b) / 2;
		if (sc->need[m].stream < stream)
			a = m + 1;
		else
			b = m;
	}
	return a < sc->nneed && sc->need[a].stream == stream ? &sc->need[a] : NULL;
}

static int item_visit(void *arg, uint64_t stream, uint64_t seq, const struct seglog_loc *loc)
{
	struct scan *sc = arg;
	if (seq == 0)
		return 0;
	struct need *nd = need_find(sc, stream);
	if (nd != NULL && seq >= nd->lo && seq <= nd->hi && nd->loc[seq - nd->lo].seg == 0)
		nd->loc[seq - nd->lo] = *loc;
	return 0;
}

static int need_cmp(const void *a, const void *b)
{
	const struct need *x = a, *y = b;
	return x->stream < y->stream ? -1 : x->stream > y->stream;
}

/* The streams and seq spans of hist[first .. last]. */
static int need_build(struct scan *sc, size_t first, size_t last)
{
	for (size_t i = first; i <= last; i++)
		for (uint32_t k = 0; k < sc->h[i].b.n; k++) {
			const struct batch_range *r = &sc->h[i].b.r[k];
			struct need *nd = NULL;
			for (size_t j = 0; j < sc->nneed; j++)
				if (sc->need[j].stream == r->stream)
					nd = &sc->need[j];
			if (nd == NULL) {
				struct need *p = realloc(sc->need, (sc->nneed + 1) * sizeof *p);
				if (p == NULL)
					return MTR_ENOMEM;
				sc->need = p;
				nd = &sc->need[sc->nneed++];
				*nd = (struct need){.stream = r->stream, .lo = r->first, .hi = r->last};
			}
			nd->lo = MIN(nd->lo, r->first);
			nd->hi = MAX(nd->hi, r->last);
		}
	if (sc->nneed > 1)
		qsort(sc->need, sc->nneed, sizeof *sc->need, need_cmp);
	/* contiguity (invariant 3) makes each span the items replayed; more
	 * than the log holds cannot all be there (and bounds the memory) */
	uint64_t span = 0;
	for (size_t j = 0; j < sc->nneed; j++) {
		uint64_t w = sc->need[j].hi - sc->need[j].lo + 1;
		span = w == 0 || span + w < span ? UINT64_MAX : span + w;
	}
	if (span > sc->nitems)
		return MTR_ENOENT;
	for (size_t j = 0; j < sc->nneed; j++) {
		sc->need[j].loc = calloc(sc->need[j].hi - sc->need[j].lo + 1, sizeof *sc->need[j].loc);
		if (sc->need[j].loc == NULL)
			return MTR_ENOMEM;
	}
	return 0;
}

/* ---- the copy and the replay ---- */

/* The backup's instance: mtr_meta backup_instance (a .backup copy) or
 * applied (a replica file).  0 or MTR_EINVAL. */
static int backup_instance(sqlite3 *db, uint64_t *b)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT value FROM mtr_meta WHERE key IN ('backup_instance', 'applied') "
			       "ORDER BY key = 'backup_instance' DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return MTR_EINVAL;
	int rc = MTR_EINVAL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) >= 0) {
		*b = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Copy the backup into dir/replica.db as a replica at instance b. */
static int copy_backup(sqlite3 *src, const char *dir, uint64_t b, char *err, size_t errlen)
{
	char path[4300];
	snprintf(path, sizeof path, "%s/%s", dir, APPLY_DB_NAME);
	sqlite3 *db = NULL;
	int rc = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		rc = fail(err, errlen, MTR_EIO, "cannot create %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
		sqlite3_close(db);
		return rc;
	}
	sqlite3_backup *bk = sqlite3_backup_init(db, "main", src, "main");
	if (bk == NULL) {
		rc = fail(err, errlen, MTR_ESQL, "copying the backup: %s", sqlite3_errmsg(db));
	} else {
		int s;
		while ((s = sqlite3_backup_step(bk, 1024)) == SQLITE_OK)
			;
		if (sqlite3_backup_finish(bk) != SQLITE_OK || s != SQLITE_DONE)
			rc = fail(err, errlen, MTR_EIO, "copying the backup: %s", sqlite3_errstr(s));
	}
	if (rc == 0) {
		char *sql = sqlite3_mprintf("BEGIN; DELETE FROM mtr_meta WHERE key IN ('backup_instance', 'backup_time');"
					    "INSERT OR REPLACE INTO mtr_meta VALUES('applied', %lld); COMMIT;"
					    "PRAGMA journal_mode=WAL",
					    (long long)b);
		if (sql == NULL || sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			rc = fail(err, errlen, MTR_ESQL, "preparing the copy: %s",
				  sql ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_free(sql);
	}
	sqlite3_close(db);
	return rc;
}

/* Replay hist[first .. last] on the replica of dir. */
static int replay(struct scan *sc, size_t first, size_t last, const char *dir, uint64_t *nitems, char *err,
		  size_t errlen)
{
	struct apply_config ac = {.dir = dir, .durability = APPLY_SYNC_NORMAL};
	struct apply *a = NULL;
	int rc = apply_open(&ac, &a);
	if (rc != 0)
		return fail(err, errlen, rc, "opening the copy of the backup as a replica: %s", mtr_strerror(rc));
	uint8_t *buf = NULL;
	size_t cap = 0;
	struct wire_item *items = NULL;
	size_t icap = 0;
	uint32_t fdseg = 0;
	int fd = -1;
	for (size_t i = first; rc == 0 && i <= last; i++) {
		const struct hist *h = &sc->h[i];
		size_t len = 0, n = 0;
		for (uint32_t k = 0; rc == 0 && k < h->b.n; k++) {
			const struct batch_range *r = &h->b.r[k];
			struct need *nd = need_find(sc, r->stream);
			for (uint64_t seq = r->first; rc == 0 && seq <= r->last; seq++) {
				const struct seglog_loc *loc = &nd->loc[seq - nd->lo];
				if (loc->seg != fdseg) {
					char path[4200];
					if (fd >= 0)
						close(fd);
					seg_file(sc->logdir, loc->seg, path, sizeof path);
					fd = open(path, O_RDONLY | O_CLOEXEC);
					fdseg = loc->seg;
					if (fd < 0) {
						rc = fail(err, errlen, MTR_ENOENT,
							  "%s went away during the restore (deleted by its server: retention "
							  "ended); copy the data.dir first, or restore sooner",
							  path);
						break;
					}
				}
				if (len + loc->len > cap) {
					size_t nc = cap ? cap * 2 : 65536;
					while (nc < len + loc->len)
						nc *= 2;
					uint8_t *nb = realloc(buf, nc);
					if (nb == NULL) {
						rc = fail(err, errlen, MTR_ENOMEM, "out of memory");
						break;
					}
					buf = nb;
					cap = nc;
				}
				if (pread(fd, buf + len, loc->len, (off_t)loc->off) != (ssize_t)loc->len) {
					rc = fail(err, errlen, MTR_EIO, "reading segment %u: %s", loc->seg,
						  strerror(errno));
					break;
				}
				len += loc->len;
			}
		}
		/* decode after reading: buf may move while it grows */
		for (size_t off = 0; rc == 0 && off < len; n++) {
			if (n == icap) {
				size_t nc = icap ? icap * 2 : 1024;
				struct wire_item *p = realloc(items, nc * sizeof *p);
				if (p == NULL) {
					rc = fail(err, errlen, MTR_ENOMEM, "out of memory");
					break;
				}
				items = p;
				icap = nc;
			}
			long w = wire_item_decode(buf + off, len - off, &items[n]);
			if (w <= 0) {
				rc = fail(err, errlen, MTR_EMALFORMED, "instance %llu holds a malformed item",
					  (unsigned long long)h->inst);
				break;
			}
			off += (size_t)w;
		}
		if (rc != 0)
			break;
		rc = apply_instance(a, h->inst, items, n, NULL, NULL);
		if (rc != 0)
			rc = fail(err, errlen, rc, "applying instance %llu: %s", (unsigned long long)h->inst,
				  mtr_strerror(rc));
		*nitems += n;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	free(items);
	apply_close(a);
	return rc;
}

/* Make dir/replica.db a single file (no WAL) and rename it to out. */
static int install(const char *dir, const char *out, char *err, size_t errlen)
{
	char path[4300];
	snprintf(path, sizeof path, "%s/%s", dir, APPLY_DB_NAME);
	sqlite3 *db = NULL;
	int rc = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
		rc = fail(err, errlen, MTR_ESQL, "finishing %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
	sqlite3_close(db);
	if (rc == 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) != 0 || rename(path, out) != 0)
			rc = fail(err, errlen, MTR_EIO, "installing %s: %s", out, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return rc;
}

static void rm_tmpdir(const char *dir)
{
	char p[4300];
	static const char *const names[] = {APPLY_DB_NAME, APPLY_DB_NAME "-wal", APPLY_DB_NAME "-shm",
					    APPLY_DB_NAME "-journal"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* Pick the instances to replay: hist[*first .. *last] are B+1 .. T (none
 * when T = B: *first > *last). */
static int choose(struct scan *sc, const char *logdir, uint64_t b, uint64_t v, int is_time, size_t *first,
		  size_t *last, uint64_t *t_ms, char *err, size_t errlen)
{
	char t1[40], t2[40];
	size_t i = 0;
	while (i < sc->nh && sc->h[i].inst <= b)
		i++;
	const struct hist *hb = i > 0 && sc->h[i - 1].inst == b ? &sc->h[i - 1] : NULL;
	*first = i;
	*t_ms = hb ? hb->ms : 0;
	if (!is_time && v < b)
		return fail(err, errlen, MTR_EINVAL,
			    "instance %llu is before the backup's instance %llu: restore from an older backup",
			    (unsigned long long)v, (unsigned long long)b);
	if (is_time && hb != NULL && hb->ms > v)
		return fail(err, errlen, MTR_EINVAL,
			    "%s is before the backup's instance %llu (chosen at %s): restore from an older backup",
			    fmt_ms(v, t1, sizeof t1), (unsigned long long)b, fmt_ms(hb->ms, t2, sizeof t2));
	if (!is_time && v == b) {
		*first = 1;
		*last = 0;
		return 0;
	}
	if (i == sc->nh && hb != NULL && !sc->beyond)
		return fail(err, errlen, MTR_ENOENT,
			    "the log of %s ends at the backup's instance %llu (chosen at %s): nothing after it to "
			    "replay (use a copy of the data.dir taken later)",
			    logdir, (unsigned long long)b, fmt_ms(hb->ms, t1, sizeof t1));
	/* the log must go on from b + 1 without a gap */
	if (i == sc->nh || sc->h[i].inst != b + 1) {
		if (sc->nh == 0)
			return fail(err, errlen, MTR_ENOENT,
				    "%s holds no chosen history (was it started with data.durability=memory, or has "
				    "server.log_retain_time passed?): it cannot replay past the backup's instance %llu",
				    logdir, (unsigned long long)b);
		return fail(err, errlen, MTR_ENOENT,
			    "the retained log of %s does not reach back to the backup's instance %llu: it holds "
			    "instances %llu .. %llu; take a newer backup, or keep the log longer "
			    "(server.log_retain_time, server.log_retain_bytes)",
			    logdir, (unsigned long long)b, (unsigned long long)sc->h[0].inst,
			    (unsigned long long)sc->h[sc->nh - 1].inst);
	}
	size_t j = i;
	for (;;) {
		if (is_time && sc->h[j].ms > v)
			break; /* h[j] is the first past the target */
		if (!is_time && sc->h[j].inst == v)
			break;
		if (j + 1 == sc->nh || sc->h[j + 1].inst != sc->h[j].inst + 1) {
			const char *what = j + 1 == sc->nh && !sc->beyond ? "ends at" : "has a gap after";
			if (is_time)
				return fail(err, errlen, MTR_ENOENT,
					    "the log of %s %s instance %llu (chosen at %s), before %s: it cannot tell "
					    "which instances came before that time; use a copy of the data.dir taken "
					    "later, or --until %llu",
					    logdir, what, (unsigned long long)sc->h[j].inst,
					    fmt_ms(sc->h[j].ms, t1, sizeof t1), fmt_ms(v, t2, sizeof t2),
					    (unsigned long long)sc->h[j].inst);
			return fail(err, errlen, MTR_ENOENT,
				    "the log of %s %s instance %llu (chosen at %s): instance %llu is past it (use "
				    "the data.dir of a server that has it, or a copy taken later)",
				    logdir, what, (unsigned long long)sc->h[j].inst, fmt_ms(sc->h[j].ms, t1, sizeof t1),
				    (unsigned long long)v);
		}
		j++;
	}
	if (is_time) {
		if (j == i) {
			if (hb == NULL)
				return fail(err, errlen, MTR_EINVAL,
					    "%s is before the first instance after the backup (%llu, chosen at %s) and "
					    "the backup's own time is not in the log: restore from an older backup",
					    fmt_ms(v, t1, sizeof t1), (unsigned long long)sc->h[i].inst,
					    fmt_ms(sc->h[i].ms, t2, sizeof t2));
			*first = 1;
			*last = 0;
			return 0;
		}
		j--; /* the last one at or before the target */
	}
	*last = j;
	*t_ms = sc->h[j].ms;
	return 0;
}

int pitr_restore(const struct pitr_opts *o, struct pitr_result *res, char *err, size_t errlen)
{
	*res = (struct pitr_result){0};
	uint64_t v;
	int is_time;
	if (parse_until(o->until, &v, &is_time) != 0)
		return fail(err, errlen, MTR_EINVAL,
			    "--until '%s': give an instance (a number), a UTC time YYYY-MM-DDTHH:MM:SS[.mmm]Z, or "
			    "@SECONDS[.mmm] since the epoch",
			    o->until ? o->until : "");
	struct stat sb;
	if (stat(o->out, &sb) == 0)
		return fail(err, errlen, MTR_EEXIST, "%s exists: give a new file name", o->out);
	sqlite3 *src = NULL;
	if (sqlite3_open_v2(o->backup, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		int rc = fail(err, errlen, MTR_EIO, "cannot open the backup %s: %s", o->backup,
			      src ? sqlite3_errmsg(src) : "out of memory");
		sqlite3_close(src);
		return rc;
	}
	uint64_t b;
	if (backup_instance(src, &b) != 0) {
		sqlite3_close(src);
		return fail(err, errlen, MTR_EINVAL,
			    "%s is not a Metronome backup (mtr_meta has no backup_instance): a point-in-time "
			    "restore starts from a .backup / mtr_backup copy",
			    o->backup);
	}
	uint32_t *ids = NULL;
	size_t nids = 0;
	struct scan sc = {.logdir = o->logdir, .fd = -1, .min_inst = b, .max_inst = is_time ? UINT64_MAX : v};
	size_t first = 1, last = 0; /* none until choose() says */
	char tmp[4200];
	if (strlen(o->out) > 4000) {
		sqlite3_close(src);
		return fail(err, errlen, MTR_EINVAL, "the output path is too long");
	}
	snprintf(tmp, sizeof tmp, "%.4000s.pitr.d", o->out);
	int made = 0;
	int rc = list_segs(o->logdir, &ids, &nids, err, errlen);
	if (rc == 0)
		rc = scan_all(&sc, ids, nids, hist_visit, err, errlen);
	if (rc == 0) {
		hist_sort(&sc);
		rc = choose(&sc, o->logdir, b, v, is_time, &first, &last, &res->until_ms, err, errlen);
	}
	if (rc == 0 && first <= last) {
		rc = need_build(&sc, first, last);
		if (rc == MTR_ENOENT)
			errbuf_set(err, errlen,
				   "the log of %s no longer holds all the items of instances %llu .. %llu (it holds "
				   "%llu items; compacted away): take a newer backup, or keep the log longer "
				   "(server.log_retain_time, server.log_retain_bytes)",
				   o->logdir, (unsigned long long)sc.h[first].inst, (unsigned long long)sc.h[last].inst,
				   (unsigned long long)sc.nitems);
		else if (rc != 0)
			errbuf_set(err, errlen, "out of memory");
	}
	if (rc == 0 && first <= last)
		rc = scan_all(&sc, ids, nids, item_visit, err, errlen);
	/* every item of every instance must be there */
	for (size_t i = first; rc == 0 && i <= last && first <= last; i++)
		for (uint32_t k = 0; rc == 0 && k < sc.h[i].b.n; k++) {
			const struct batch_range *r = &sc.h[i].b.r[k];
			struct need *nd = need_find(&sc, r->stream);
			for (uint64_t seq = r->first; seq <= r->last; seq++)
				if (nd->loc[seq - nd->lo].seg == 0) {
					rc = fail(err, errlen, MTR_ENOENT,
						  "item %llu of stream %016llx (instance %llu) is no longer in the log of "
						  "%s (compacted away): take a newer backup, or keep the log longer "
						  "(server.log_retain_time, server.log_retain_bytes)",
						  (unsigned long long)seq, (unsigned long long)r->stream,
						  (unsigned long long)sc.h[i].inst, o->logdir);
					break;
				}
		}
	if (rc == 0) {
		if (mkdir(tmp, 0700) != 0)
			rc = fail(err, errlen, MTR_EIO, "cannot create %s: %s", tmp, strerror(errno));
		else
			made = 1;
	}
	if (rc == 0)
		rc = copy_backup(src, tmp, b, err, errlen);
	sqlite3_close(src);
	if (rc == 0 && first <= last)
		rc = replay(&sc, first, last, tmp, &res->items, err, errlen);
	if (rc == 0)
		rc = install(tmp, o->out, err, errlen);
	if (made)
		rm_tmpdir(tmp);
	res->from = b;
	res->until = rc == 0 && first <= last ? sc.h[last].inst : b;
	free(ids);
	scan_free(&sc);
	return rc;
}
