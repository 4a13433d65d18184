/*
 * mtrload - a write load generator for a Metronome cluster, through
 * libmetronome (doc/client.md, "mtrload").
 *
 *   mtrload --uri URI [--clients N] [--rows R] [--table T] [--first-id F]
 *           [--acked FILE] [--pipeline D] [--payload BYTES] [--trace FILE] [--read]
 *           [--append]
 *
 * Creates T(id INTEGER PRIMARY KEY, client INTEGER, payload TEXT) if it does
 * not exist, then N threads, each with its own connection, insert their
 * contiguous share of the ids F .. F+R-1 with up to D requests in flight
 * (mtr_submit).  Every acknowledged id is appended to FILE (one line, one
 * write(2), as the answer arrives).  A request that fails or times out is
 * counted, never retried: the integration test then checks that the cluster
 * holds exactly the acknowledged ids, each once.  A client that cannot reach
 * any proxy at all (MTR_ECONNECT) counts the rest of its share failed and
 * stops.  With --trace every request leaves lines in FILE (one write(2)
 * each; times are CLOCK_REALTIME milliseconds, client C is 1..N):
 *
 *   s C ID SENT_MS               when it is submitted
 *   a C ID SENT_MS DONE_MS       when it is acknowledged
 *   f C ID SENT_MS DONE_MS ERR   when it failed (ERR: mtr_errname)
 *
 * (the fault suite's checkers: what was sent, what was answered when).
 * SIGTERM or SIGINT stops the load: no new request is submitted, the ones
 * in flight get up to 3 s, then the connections close.  Prints one line
 *
 *   acked A failed E seconds S writes_per_s W p50_ms X p99_ms Y max_ms Z
 *
 * and exits 0 when E == 0, 1 otherwise, 2 on a usage error.
 *
 * With --append the INSERT names no id: SQLite gives each row the next one,
 * so every row lands at the end of the table's B-tree, as an application's
 * rows usually do (N contiguous shares make N places in the B-tree take
 * rows, which SQLite runs about 3x slower, doc/performance.md).  The ids
 * written are then not known here, so --append is refused with --read,
 * --acked and --trace; on an empty table they are 1 .. R.
 *
 * --read reads instead: each thread runs SELECT payload FROM T WHERE id = ?1
 * for its share of the ids (rows written by an earlier run), one request
 * at a time with mtr_step (the consistency is the URI's); a read counts
 * acknowledged when it returns its row, failed otherwise (no row, error).
 * The printed line is the same (writes_per_s then counts reads).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metronome.h"
#include "toolutil.h"

struct load {
	const char *uri, *table, *acked_path, *trace_path;
	int clients, pipeline;
	int read; /* --read */
	int append; /* --append */
	int trace_fd;
	int64_t rows, first_id;
	size_t payload_len;
	char *payload;
	int acked_fd;
};

struct worker;

/* One request in flight. */
struct slot {
	struct worker *w;
	int64_t id;
	uint64_t t0;
	uint64_t sent_ms; /* CLOCK_REALTIME, for the trace */
};

struct worker {
	const struct load *L;
	pthread_t th;
	int index;
	int64_t first, count; /* ids first .. first+count-1 */
	int64_t acked, failed;
	uint32_t *lat_us; /* one per acknowledged request */
	mtr *db;
	int errors_logged;
};

/* One trace line (see the top); ERR is NULL but for failures. */
static void trace(const struct load *L, char kind, const struct worker *w, const struct slot *s, const char *err)
{
	if (L->trace_fd < 0)
		return;
	char line[128];
	int n;
	if (kind == 's')
		n = snprintf(line, sizeof line, "s %d %" PRId64 " %" PRIu64 "\n", w->index, s->id, s->sent_ms);
	else
		n = snprintf(line, sizeof line, "%c %d %" PRId64 " %" PRIu64 " %" PRIu64 "%s%s\n", kind, w->index, s->id,
			     s->sent_ms, tool_real_ms(), err ? " " : "", err ? err : "");
	if (write(L->trace_fd, line, (size_t)n) != n)
		fprintf(stderr, "mtrload: writing %s: %s\n", L->trace_path, strerror(errno));
}

static void log_error(struct worker *w, int64_t id, int rc, const char *msg)
{
	if (w->errors_logged++ < 5)
		fprintf(stderr, "mtrload: client %d: id %" PRId64 ": %s: %s\n", w->index, id, mtr_errname(rc),
			msg ? msg : mtr_strerror(rc));
}

static void on_done(void *arg, int rc, int ext, int64_t changes, int64_t rowid)
{
	struct slot *s = arg;
	struct worker *w = s->w;
	if (rc == 0) {
		w->lat_us[w->acked++] = (uint32_t)(tool_mono_us() - s->t0 > UINT32_MAX ? UINT32_MAX : tool_mono_us() - s->t0);
		if (w->L->acked_fd >= 0) {
			char line[32];
			int n = snprintf(line, sizeof line, "%" PRId64 "\n", s->id);
			if (write(w->L->acked_fd, line, (size_t)n) != n)
				fprintf(stderr, "mtrload: writing %s: %s\n", w->L->acked_path, strerror(errno));
		}
		trace(w->L, 'a', w, s, NULL);
	} else {
		w->failed++;
		trace(w->L, 'f', w, s, mtr_errname(rc));
		log_error(w, s->id, rc, mtr_errmsg(w->db)); /* this request's message */
	}
}

/* --read: one SELECT at a time over the worker's share of the ids. */
static void read_share(struct worker *w, mtr *db)
{
	const struct load *L = w->L;
	char sql[160];
	mtr_stmt *st = NULL;
	snprintf(sql, sizeof sql, "SELECT payload FROM %s WHERE id = ?1", L->table);
	int rc = mtr_prepare(db, sql, -1, &st, NULL);
	if (rc) {
		log_error(w, w->first, rc, mtr_errmsg(db));
		w->failed = w->count;
		return;
	}
	for (int64_t i = 0; i < w->count && !tool_stopping; i++) {
		int64_t id = w->first + i;
		uint64_t t0 = tool_mono_us();
		mtr_bind_int64(st, 1, id);
		int rows = 0;
		while ((rc = mtr_step(st)) == MTR_ROW)
			rows += mtr_column_bytes(st, 0) == (int)L->payload_len;
		mtr_reset(st);
		if (rc == MTR_DONE && rows == 1) {
			uint64_t us = tool_mono_us() - t0;
			w->lat_us[w->acked++] = (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
		} else {
			w->failed++;
			log_error(w, id, rc == MTR_DONE ? MTR_EINVAL : rc,
				  rc == MTR_DONE ? "the row was not found (write it first)" : mtr_errmsg(db));
		}
	}
	mtr_finalize(st);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct load *L = w->L;
	mtr *db = NULL;
	mtr_stmt *st = NULL;
	char sql[160];
	struct slot *slots = calloc((size_t)(w->count ? w->count : 1), sizeof *slots);
	w->lat_us = calloc((size_t)(w->count ? w->count : 1), sizeof *w->lat_us);
	if (!slots || !w->lat_us) {
		w->failed = w->count;
		free(slots);
		return NULL;
	}
	int rc = mtr_open(L->uri, &db);
	w->db = db;
	if (rc == 0 && L->read) {
		read_share(w, db);
		goto out;
	}
	if (rc == 0) {
		/* ?1 (the id) is bound in both forms, and unused with --append */
		snprintf(sql, sizeof sql,
			 L->append ? "INSERT INTO %s(client, payload) VALUES(?2, ?3)" : "INSERT INTO %s VALUES(?1, ?2, ?3)",
			 L->table);
		rc = mtr_prepare(db, sql, -1, &st, NULL);
	}
	if (rc) {
		log_error(w, w->first, rc, mtr_errmsg(db));
		w->failed = w->count;
		goto out;
	}
	int64_t next = 0;
	uint64_t drain_until = 0;
	while (next < w->count || mtr_pending(db) > 0) {
		if (tool_stopping) {
			/* stop: nothing new; what is in flight gets 3 s */
			next = w->count;
			if (!drain_until)
				drain_until = tool_mono_us() + 3000000u;
			else if (tool_mono_us() > drain_until)
				break;
		}
		while (next < w->count && mtr_pending(db) < L->pipeline) {
			struct slot *s = &slots[next];
			s->w = w;
			s->id = w->first + next;
			next++;
			mtr_bind_int64(st, 1, s->id);
			mtr_bind_int64(st, 2, w->index);
			mtr_bind_text(st, 3, L->payload, (int)L->payload_len);
			s->t0 = tool_mono_us();
			s->sent_ms = tool_real_ms();
			trace(L, 's', w, s, NULL);
			rc = mtr_submit(st, on_done, s);
			if (rc) {
				w->failed++;
				log_error(w, s->id, rc, mtr_errmsg(db));
			}
			if (rc == MTR_ECONNECT) {
				/* No proxy reachable (each try took the timeout):
				 * the rest of this share fails untried. */
				w->failed += w->count - next;
				next = w->count;
			}
		}
		if (mtr_pending(db) > 0)
			mtr_poll(db, 100); /* wakes up for a stop */
	}
out:
	mtr_finalize(st);
	mtr_close(db);
	free(slots);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrload --uri URI [--clients N (8)] [--rows R (100000)] [--table T (t)]\n"
		   "               [--first-id F (1)] [--acked FILE] [--pipeline D (1)] [--payload BYTES (100)]\n"
		   "               [--trace FILE] [--read] [--append]\n");
}

/* Parse a non-negative integer option; -1 when invalid. */
static int64_t num(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *s == 0 || *end || v < 0)
		return -1;
	return v;
}

static int valid_ident(const char *s)
{
	if (!*s || strlen(s) > 64 || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	struct load L = {.table = "t", .clients = 8, .pipeline = 1, .rows = 100000, .first_id = 1,
			 .payload_len = 100, .acked_fd = -1, .trace_fd = -1};
	static const struct option opts[] = {
		{"uri", required_argument, NULL, 'u'},     {"clients", required_argument, NULL, 'c'},
		{"rows", required_argument, NULL, 'r'},    {"table", required_argument, NULL, 't'},
		{"first-id", required_argument, NULL, 'f'}, {"acked", required_argument, NULL, 'a'},
		{"pipeline", required_argument, NULL, 'd'}, {"payload", required_argument, NULL, 'p'},
		{"trace", required_argument, NULL, 'T'},   {"read", no_argument, NULL, 'R'},
		{"append", no_argument, NULL, 'A'},        {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	int64_t v;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			L.uri = optarg;
			break;
		case 't':
			L.table = optarg;
			break;
		case 'a':
			L.acked_path = optarg;
			break;
		case 'T':
			L.trace_path = optarg;
			break;
		case 'R':
			L.read = 1;
			break;
		case 'A':
			L.append = 1;
			break;
		case 'c':
		case 'r':
		case 'f':
		case 'd':
		case 'p':
			v = num(optarg);
			if (v < 0 || (o == 'c' && (v < 1 || v > 1024)) || (o == 'd' && (v < 1 || v > 65536)) ||
			    (o == 'p' && v > (64 << 20))) {
				fprintf(stderr, "mtrload: bad value '%s' for --%s\n", optarg,
					o == 'c' ? "clients" : o == 'r' ? "rows" : o == 'f' ? "first-id"
						: o == 'd' ? "pipeline" : "payload");
				return 2;
			}
			if (o == 'c')
				L.clients = (int)v;
			else if (o == 'r')
				L.rows = v;
			else if (o == 'f')
				L.first_id = v;
			else if (o == 'd')
				L.pipeline = (int)v;
			else
				L.payload_len = (size_t)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!L.uri || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (L.append && (L.read || L.acked_path || L.trace_path)) {
		fprintf(stderr, "mtrload: --append writes rows whose ids it does not learn: use it without --read, "
				"--acked and --trace\n");
		return 2;
	}
	if (!valid_ident(L.table)) {
		fprintf(stderr, "mtrload: --table must be a plain identifier\n");
		return 2;
	}
	L.payload = malloc(L.payload_len + 1);
	if (!L.payload)
		return 1;
	for (size_t i = 0; i < L.payload_len; i++)
		L.payload[i] = (char)('a' + i % 26);
	L.payload[L.payload_len] = 0;
	if (L.acked_path) {
		L.acked_fd = open(L.acked_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (L.acked_fd < 0) {
			fprintf(stderr, "mtrload: %s: %s\n", L.acked_path, strerror(errno));
			return 2;
		}
	}

	if (L.trace_path) {
		L.trace_fd = open(L.trace_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (L.trace_fd < 0) {
			fprintf(stderr, "mtrload: %s: %s\n", L.trace_path, strerror(errno));
			return 2;
		}
	}
	tool_catch_stop();

	mtr *db;
	char sql[200];
	snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s(id INTEGER PRIMARY KEY, client INTEGER, payload TEXT)",
		 L.table);
	int rc = mtr_open(L.uri, &db);
	if (rc == 0)
		rc = mtr_exec(db, sql, NULL, NULL, NULL);
	if (rc) {
		fprintf(stderr, "mtrload: %s: %s\n", L.uri, mtr_errmsg(db));
		mtr_close(db);
		printf("acked 0 failed %" PRId64 " seconds 0 writes_per_s 0 p50_ms 0 p99_ms 0 max_ms 0\n", L.rows);
		return 1;
	}
	mtr_close(db);

	struct worker *w = calloc((size_t)L.clients, sizeof *w);
	if (!w)
		return 1;
	int64_t share = L.rows / L.clients, extra = L.rows % L.clients, id = L.first_id;
	uint64_t t0 = tool_mono_us();
	for (int i = 0; i < L.clients; i++) {
		w[i].L = &L;
		w[i].index = i + 1;
		w[i].first = id;
		w[i].count = share + (i < extra ? 1 : 0);
		id += w[i].count;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "mtrload: cannot start a thread\n");
			return 1;
		}
	}
	int64_t acked = 0, failed = 0;
	for (int i = 0; i < L.clients; i++) {
		pthread_join(w[i].th, NULL);
		acked += w[i].acked;
		failed += w[i].failed;
	}
	double secs = (double)(tool_mono_us() - t0) / 1e6;
	uint32_t *lat = malloc((size_t)(acked ? acked : 1) * sizeof *lat);
	if (!lat)
		return 1;
	int64_t k = 0;
	for (int i = 0; i < L.clients; i++) {
		if (w[i].acked)
			memcpy(lat + k, w[i].lat_us, (size_t)w[i].acked * sizeof *lat);
		k += w[i].acked;
		free(w[i].lat_us);
	}
	qsort(lat, (size_t)acked, sizeof *lat, cmp_u32);
	double p50 = acked ? lat[(acked - 1) * 50 / 100] / 1000.0 : 0;
	double p99 = acked ? lat[(acked - 1) * 99 / 100] / 1000.0 : 0;
	double pmax = acked ? lat[acked - 1] / 1000.0 : 0;
	printf("acked %" PRId64 " failed %" PRId64 " seconds %.3f writes_per_s %.0f p50_ms %.3f p99_ms %.3f max_ms %.3f\n",
	       acked, failed, secs, secs > 0 ? (double)acked / secs : 0.0, p50, p99, pmax);
	free(lat);
	free(w);
	free(L.payload);
	if (L.acked_fd >= 0)
		close(L.acked_fd);
	if (L.trace_fd >= 0)
		close(L.trace_fd);
	return failed == 0 ? 0 : 1;
}
