/*
 * bench_transport.c - `mtrbench transport`: items per second through the UDP
 * transport on loopback, from one sender to K receiver processes by fan-out,
 * and the loss each receiver saw.
 *
 * The parent forks K receivers (each a UDP transport on 127.0.0.1), packs N
 * items of stream 1 (seq 1..N, one SQL statement of --size bytes each) into
 * ITEMS datagrams with the wire packer and sends every datagram to every
 * receiver (transport_send_group with a fan-out list), then repeats an end
 * marker (a HEARTBEAT with high = N) until every receiver has stopped.  Each
 * receiver decodes every item, counts distinct seqs in a bitmap, times its
 * first to its last ITEMS datagram and reports through a pipe; the parent
 * prints the figures.
 *
 * Flow control.  Loopback UDP has no backpressure from receiver to sender:
 * a sender faster than a receiver overflows the receiver's socket queue and
 * the kernel drops.  By default the sender therefore keeps at most --window
 * items ahead of the slowest receiver, whose progress (highest seq seen) it
 * reads from shared memory: the figures are then what the receivers can
 * take.  A receiver that makes no progress for 200 ms no longer holds the
 * sender back (a dead receiver must not stop the run; its loss shows).
 * --starve makes the receivers slow on purpose (at most 8 datagrams per
 * read, then 1 ms asleep) and turns the flow control off unless --window is
 * given, so the loss is what a too-fast sender causes.  --window 0 turns it
 * off too.
 *
 * Only "name: value unit" lines go to stdout; diagnostics go to stderr.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "log.h"
#include "metronome.h"
#include "transport.h"
#include "util.h"
#include "wire.h"

#define BT_MAX_RX 16
#define BT_CLUSTER 0x62656e63u /* "benc" */
static const struct wire_from BT_FROM = { BT_CLUSTER, 1, NULL }; /* sender 1 of cluster "benc" */
#define BT_STREAM 1
#define BT_SEND_BATCH 32       /* datagrams per transport_send_group call */
#define BT_IDLE_MS 2000        /* a receiver stops after this long without traffic */
#define BT_START_MS 15000      /* ... or this long before the first datagram */
#define BT_STALL_NS (200 * 1000000ull)

struct bt_opts {
	uint64_t items;
	unsigned size, receivers, port;
	size_t mtu;
	int starve;
	long window; /* -1: default */
};

/* What the sender reads from the receivers while it runs (shared memory). */
struct bt_shared {
	_Atomic uint64_t high[BT_MAX_RX]; /* highest seq seen */
	_Atomic int done[BT_MAX_RX];
};

/* A receiver's report, written to its pipe: first the port it bound (ready),
 * then this. */
struct bt_result {
	uint64_t items, dups, dgrams;
	uint64_t first_ns, last_ns;
	uint64_t overflow, other_drops;
	int end_seen;
};

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read exactly n bytes within timeout_ms; 0 or -1. */
static int read_all(int fd, void *p, size_t n, int timeout_ms)
{
	char *c = p;
	uint64_t end = now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	while (n) {
		uint64_t now = now_mono_ns();
		if (now >= end)
			return -1;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int r = poll(&pf, 1, (int)((end - now) / 1000000u) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t got = read(fd, c, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		c += got;
		n -= (size_t)got;
	}
	return 0;
}

/* ---- receiver ----------------------------------------------------------- */

static int receiver_run(const struct bt_opts *o, unsigned idx, struct bt_shared *sh, int wfd)
{
	struct transport_config c;
	transport_config_init(&c);
	c.bind.ip = 0x7f000001u;
	c.bind.port = (uint16_t)(o->port ? o->port + idx : 0);
	c.mtu = o->mtu;
	c.cluster = BT_CLUSTER;
	struct transport *t = NULL;
	int rc = transport_open(&c, &t);
	uint32_t port = rc == 0 ? t->cfg.bind.port : 0;
	if (write_all(wfd, &port, sizeof port) < 0 || rc < 0) {
		transport_close(t);
		return 1;
	}

	uint8_t *seen = calloc(o->items / 8 + 1, 1);
	struct bt_result res = { 0 };
	struct transport_msg m[64];
	unsigned per_read = o->starve ? 8 : 64;
	uint64_t high = 0, last_traffic = now_mono_ns();
	while (seen && !res.end_seen) {
		int r = transport_recv(t, m, per_read);
		if (r < 0) {
			fprintf(stderr, "mtrbench transport: rx%u: %s\n", idx, mtr_strerror(r));
			break;
		}
		uint64_t now = now_mono_ns();
		if (r == 0) {
			uint64_t limit = (res.dgrams ? BT_IDLE_MS : BT_START_MS) * 1000000ull;
			if (now - last_traffic >= limit)
				break;
			transport_wait(t, 100);
			continue;
		}
		last_traffic = now;
		for (int i = 0; i < r; i++) {
			const uint8_t *p = m[i].buf + WIRE_HDR_SIZE, *end = p + m[i].hdr.length;
			if (m[i].hdr.type == WIRE_T_HEARTBEAT) {
				struct wire_heartbeat hb;
				if (wire_heartbeat_decode(p, m[i].hdr.length, &hb) == 0 && hb.stream == BT_STREAM &&
				    hb.high == o->items)
					res.end_seen = 1;
				continue;
			}
			if (m[i].hdr.type != WIRE_T_ITEMS)
				continue;
			if (!res.dgrams)
				res.first_ns = now;
			res.last_ns = now;
			res.dgrams++;
			struct wire_item it;
			while (wire_items_next(&p, end, &it) == 1) {
				if (it.stream != BT_STREAM || it.seq < 1 || it.seq > o->items)
					continue;
				uint64_t s = it.seq - 1;
				if (seen[s / 8] & (1u << (s % 8))) {
					res.dups++;
					continue;
				}
				seen[s / 8] |= (uint8_t)(1u << (s % 8));
				res.items++;
				if (it.seq > high)
					high = it.seq;
			}
		}
		atomic_store_explicit(&sh->high[idx], high, memory_order_relaxed);
		if (o->starve)
			sleep_us(1000);
	}
	struct transport_counters ctr;
	transport_counters(t, &ctr);
	res.overflow = ctr.drops[TRANSPORT_DROP_OVERFLOW];
	for (unsigned i = 0; i < TRANSPORT_DROP__COUNT; i++)
		if (i != TRANSPORT_DROP_OVERFLOW)
			res.other_drops += ctr.drops[i];
	atomic_store(&sh->done[idx], 1);
	int ok = write_all(wfd, &res, sizeof res);
	free(seen);
	transport_close(t);
	return ok < 0 || !seen ? 1 : 0;
}

/* ---- sender ------------------------------------------------------------- */

/*
 * Hold the sender until sending up to seq `sent` keeps it at most window
 * items ahead of the slowest receiver that is still making progress.  Send
 * batches hold at most window/2 items, so the condition is reachable with
 * what was sent before.  Returns 1 if it gave up waiting (a stall).
 */
static int pace(const struct bt_opts *o, struct bt_shared *sh, uint64_t sent, uint64_t window,
		uint64_t *last_min, uint64_t *last_move)
{
	for (;;) {
		uint64_t mn = UINT64_MAX;
		for (unsigned i = 0; i < o->receivers; i++) {
			uint64_t h = atomic_load_explicit(&sh->high[i], memory_order_relaxed);
			mn = h < mn ? h : mn;
		}
		uint64_t now = now_mono_ns();
		if (mn != *last_min) {
			*last_min = mn;
			*last_move = now;
		}
		if (sent <= mn + window)
			return 0;
		if (now - *last_move > BT_STALL_NS)
			return 1;
		sleep_us(50);
	}
}

static int sender_run(const struct bt_opts *o, struct bt_shared *sh, const uint16_t *ports, uint64_t *elapsed_ns,
		      uint64_t *dgrams)
{
	struct transport_config c;
	transport_config_init(&c);
	c.no_recv = 1;
	c.mtu = o->mtu;
	c.cluster = BT_CLUSTER;
	c.ndests = o->receivers;
	for (unsigned i = 0; i < o->receivers; i++)
		c.dests[i] = (struct transport_addr){ 0x7f000001u, ports[i] };
	struct transport *t = NULL;
	int rc = transport_open(&c, &t);
	if (rc < 0)
		return rc;

	char *sql = malloc(o->size + 1);
	uint8_t *bufs = malloc(BT_SEND_BATCH * o->mtu);
	if (!sql || !bufs) {
		free(sql);
		free(bufs);
		transport_close(t);
		return MTR_ENOMEM;
	}
	/* an INSERT padded to the asked size (its bytes matter, not its sense) */
	const char *head = "INSERT INTO bench(v) VALUES('";
	for (unsigned i = 0; i < o->size; i++)
		sql[i] = i < strlen(head) ? head[i] : 'x';
	if (o->size > strlen(head) + 2) {
		sql[o->size - 2] = '\'';
		sql[o->size - 1] = ')';
	}
	struct wire_stmt st = { .sql = sql, .sql_len = o->size, .nparams = 0, .params = NULL };
	struct wire_item it = { .stream = BT_STREAM, .nstmt = 1, .stmts = &st };

	uint64_t window = o->window < 0 ? (1u << 20) / (wire_item_size(&it) + 8) : (uint64_t)o->window;
	if (o->starve && o->window < 0)
		window = 0;
	if (window)
		fprintf(stderr, "mtrbench transport: flow control: at most %llu items ahead of the slowest receiver\n",
			(unsigned long long)window);
	else
		fprintf(stderr, "mtrbench transport: no flow control\n");

	struct transport_msg m[BT_SEND_BATCH];
	struct wire_packer pk;
	unsigned nm = 0, stalls = 0;
	uint64_t batch_first = 1; /* first seq of the batch being built */
	uint64_t last_min = 0, last_move = now_mono_ns(), t0 = now_mono_ns();
	wire_packer_init(&pk, bufs, o->mtu, &BT_FROM);
	for (uint64_t seq = 1; seq <= o->items && rc >= 0; seq++) {
		it.seq = seq;
		it.request = seq;
		it.timestamp_us = 0;
		it.seed = seq;
		rc = wire_packer_add(&pk, &it);
		if (rc < 0 && rc != MTR_EFULL)
			break;
		int last = seq == o->items;
		if (rc == MTR_EFULL || last) {
			if (rc == MTR_EFULL)
				it.seq = seq--; /* add it again after the flush */
			m[nm].buf = pk.buf;
			m[nm].len = (uint32_t)wire_packer_finish(&pk);
			nm++;
			rc = 0;
			if (nm == BT_SEND_BATCH || last || (window && seq - batch_first + 1 >= window / 2)) {
				if (window)
					stalls += (unsigned)pace(o, sh, seq, window, &last_min, &last_move);
				rc = transport_send_group(t, m, nm);
				*dgrams += nm;
				nm = 0;
				batch_first = seq + 1;
			}
			wire_packer_init(&pk, bufs + (size_t)nm * o->mtu, o->mtu, &BT_FROM);
		}
	}
	*elapsed_ns = now_mono_ns() - t0;
	if (stalls)
		fprintf(stderr, "mtrbench transport: %u times a receiver made no progress for %llu ms; sent on\n",
			stalls, (unsigned long long)(BT_STALL_NS / 1000000));
	if (rc < 0) {
		fprintf(stderr, "mtrbench transport: send: %s\n", mtr_strerror(rc));
	} else {
		/* the end marker, repeated until every receiver stopped (it
		 * may be lost like any datagram) */
		uint8_t hbuf[128];
		struct wire_heartbeat hb = { .stream = BT_STREAM, .high = o->items };
		struct transport_msg e = { .buf = hbuf };
		e.len = (uint32_t)wire_heartbeat_build(hbuf, &BT_FROM, &hb);
		uint64_t until = now_mono_ns() + (BT_IDLE_MS + 3000) * 1000000ull;
		for (;;) {
			unsigned done = 0;
			for (unsigned i = 0; i < o->receivers; i++)
				done += (unsigned)atomic_load(&sh->done[i]);
			if (done == o->receivers || now_mono_ns() > until)
				break;
			transport_send_group(t, &e, 1);
			sleep_us(20000);
		}
	}
	free(sql);
	free(bufs);
	transport_close(t);
	return rc < 0 ? rc : 0;
}

/* ---- the subcommand ------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrbench transport [--items N] [--size BYTES] [--receivers K] [--mtu BYTES]\n"
		   "                          [--window ITEMS] [--starve] [--port BASE]\n"
		   "  --items N       items to send (default 1000000)\n"
		   "  --size BYTES    SQL bytes per item (default 100)\n"
		   "  --receivers K   receiver processes, 1..%d (default 3)\n"
		   "  --mtu BYTES     datagram size limit (default 1472; loopback takes up to 65507)\n"
		   "  --window ITEMS  flow control: most items ahead of the slowest receiver\n"
		   "                  (default about 1 MiB of items; 0: none)\n"
		   "  --starve        slow receivers (8 datagrams per read, 1 ms asleep), no flow control\n"
		   "  --port BASE     receivers bind 127.0.0.1:BASE+i (default: ports the kernel picks)\n",
		BT_MAX_RX);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int bench_transport(int argc, char **argv)
{
	struct bt_opts o = { .items = 1000000, .size = 100, .receivers = 3, .mtu = WIRE_DEFAULT_MTU, .window = -1 };
	static const struct option lo[] = {
		{ "items", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 's' },
		{ "receivers", required_argument, NULL, 'k' }, { "mtu", required_argument, NULL, 'm' },
		{ "window", required_argument, NULL, 'w' }, { "starve", no_argument, NULL, 'S' },
		{ "port", required_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, li = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, &li)) != -1) {
		uint64_t v = 0;
		int bad = 0;
		switch (ch) {
		case 'n':
			bad = parse_u64(optarg, 1, 1ull << 32, &o.items);
			break;
		case 's':
			bad = parse_u64(optarg, 1, 60000, &v);
			o.size = (unsigned)v;
			break;
		case 'k':
			bad = parse_u64(optarg, 1, BT_MAX_RX, &v);
			o.receivers = (unsigned)v;
			break;
		case 'm':
			bad = parse_u64(optarg, WIRE_MIN_MTU, WIRE_MAX_DGRAM, &v);
			o.mtu = (size_t)v;
			break;
		case 'w':
			bad = parse_u64(optarg, 0, 1ull << 40, &v);
			o.window = (long)v;
			break;
		case 'S':
			o.starve = 1;
			break;
		case 'p':
			bad = parse_u64(optarg, 1024, 65535 - BT_MAX_RX, &v);
			o.port = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "mtrbench transport: bad value for --%s: %s\n", lo[li].name,
				optarg);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	{
		/* one item must fit a datagram: no fragments here */
		struct wire_stmt st = { .sql = "", .sql_len = o.size };
		struct wire_item it = { .stream = 1, .seq = o.items, .nstmt = 1, .stmts = &st };
		if (wire_item_size(&it) + WIRE_OVERHEAD > o.mtu) {
			fprintf(stderr, "mtrbench transport: an item of %u bytes does not fit a %zu-byte datagram\n",
				o.size, o.mtu);
			return 2;
		}
	}

	struct bt_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mtrbench transport: mmap");
		return 1;
	}
	memset(sh, 0, sizeof *sh);
	pid_t pids[BT_MAX_RX];
	int rfd[BT_MAX_RX];
	uint16_t ports[BT_MAX_RX];
	unsigned started = 0;
	int status = 0;
	fflush(NULL);
	for (unsigned i = 0; i < o.receivers; i++) {
		int p[2];
		if (pipe(p) < 0) {
			perror("mtrbench transport: pipe");
			status = 1;
			break;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("mtrbench transport: fork");
			close(p[0]);
			close(p[1]);
			status = 1;
			break;
		}
		if (pid == 0) {
			close(p[0]);
			for (unsigned j = 0; j < started; j++)
				close(rfd[j]);
			/* the child returns through main(), which exits */
			int r = receiver_run(&o, i, sh, p[1]);
			close(p[1]);
			return r;
		}
		close(p[1]);
		pids[started] = pid;
		rfd[started] = p[0];
		started++;
	}
	for (unsigned i = 0; i < started && status == 0; i++) {
		uint32_t port = 0;
		if (read_all(rfd[i], &port, sizeof port, 5000) < 0 || port == 0) {
			fprintf(stderr, "mtrbench transport: receiver %u did not start\n", i);
			status = 1;
		}
		ports[i] = (uint16_t)port;
	}

	uint64_t elapsed = 0, dgrams = 0;
	if (status == 0 && sender_run(&o, sh, ports, &elapsed, &dgrams) < 0)
		status = 1;

	struct bt_result res[BT_MAX_RX];
	int have[BT_MAX_RX] = { 0 };
	for (unsigned i = 0; i < started; i++) {
		have[i] = status == 0 && read_all(rfd[i], &res[i], sizeof res[i], BT_IDLE_MS + 8000) == 0;
		close(rfd[i]);
	}
	/* reap, with a deadline; whoever is still there then is killed */
	uint64_t deadline = now_mono_ns() + 3000 * 1000000ull;
	for (unsigned i = 0; i < started; i++) {
		int ws;
		while (waitpid(pids[i], &ws, WNOHANG) == 0) {
			if (now_mono_ns() > deadline) {
				fprintf(stderr, "mtrbench transport: receiver %u did not exit, killing it\n", i);
				kill(pids[i], SIGKILL);
				waitpid(pids[i], &ws, 0);
				break;
			}
			sleep_us(10000);
		}
	}
	munmap(sh, sizeof *sh);
	if (status)
		return status;

	bench_figure("tx_items_per_s", elapsed ? (double)o.items * 1e9 / (double)elapsed : 0, "items/s");
	bench_figure("tx_dgrams_per_s", elapsed ? (double)dgrams * 1e9 / (double)elapsed : 0, "dgrams/s");
	bench_figure("items_per_dgram", dgrams ? (double)o.items / (double)dgrams : 0, "items");
	for (unsigned i = 0; i < started; i++) {
		char name[64];
		if (!have[i]) {
			fprintf(stderr, "mtrbench transport: no report from receiver %u\n", i);
			status = 1;
			continue;
		}
		double span = (double)(res[i].last_ns - res[i].first_ns) / 1e9;
		uint64_t lost = o.items - res[i].items;
#define FIG(suffix, value, unit)                                      \
	do {                                                          \
		snprintf(name, sizeof name, "rx%u_%s", i, suffix); \
		bench_figure(name, value, unit);                      \
	} while (0)
		FIG("items_per_s", span > 0 ? (double)res[i].items / span : 0, "items/s");
		FIG("dgrams_per_s", span > 0 ? (double)res[i].dgrams / span : 0, "dgrams/s");
		FIG("loss", 100.0 * (double)lost / (double)o.items, "%");
		FIG("lost_items", (double)lost, "items");
		FIG("kernel_drops", (double)res[i].overflow, "dgrams");
		FIG("bad_drops", (double)res[i].other_drops, "dgrams");
#undef FIG
	}
	return status;
}
