/*
 * transport.c - the part of the transport interface every implementation
 * shares: configuration defaults and validation, dispatch on cfg->kind, the
 * thin wrappers around the operation table, IPv4 address parsing and
 * printing, drop-reason names, and transport_filter(), which is where every
 * received datagram meets wire_dgram_check() whatever carried it.
 *
 * The implementations (transport_udp.c, transport_dpdk.c) only move bytes;
 * what counts as a good datagram is decided here, once.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metronome.h"
#include "transport.h"
#include "util.h"

/* ---- names ------------------------------------------------------------- */

/* Upper-case names from the X-macro table, lower-cased once at start-up so
 * that the table stays the only list of reasons. */
static const char *const drop_upper[TRANSPORT_DROP__COUNT] = {
#define TRANSPORT__DROP_STR(name, text) #name,
	TRANSPORT_DROP_MAP(TRANSPORT__DROP_STR)
#undef TRANSPORT__DROP_STR
};
static char drop_lower[TRANSPORT_DROP__COUNT][16];

__attribute__((constructor)) static void transport_names_init(void)
{
	for (unsigned i = 0; i < TRANSPORT_DROP__COUNT; i++) {
		size_t k;
		for (k = 0; drop_upper[i][k] && k + 1 < sizeof drop_lower[i]; k++) {
			char c = drop_upper[i][k];
			drop_lower[i][k] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		}
		drop_lower[i][k] = '\0';
	}
}

const char *transport_drop_name(unsigned reason)
{
	if (reason >= TRANSPORT_DROP__COUNT)
		return "?";
	return drop_lower[reason];
}

/* ---- addresses --------------------------------------------------------- */

/* Parse a decimal number of at most max at *p (no sign, no leading zeros
 * beyond a single "0", at least one digit); advance *p. */
static int parse_dec(const char **p, unsigned max, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0;
	int n = 0;
	while (*s >= '0' && *s <= '9') {
		if (n == 1 && v == 0)
			return MTR_EINVAL; /* "01": ambiguous (octal to inet_aton) */
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return MTR_EINVAL;
		s++;
		n++;
	}
	if (n == 0)
		return MTR_EINVAL;
	*p = s;
	*out = v;
	return 0;
}

int transport_local_addr(const struct transport_addr *dst, uint32_t *ip)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(dst->port ? dst->port : 9),
				 .sin_addr.s_addr = htonl(dst->ip)};
	socklen_t sl = sizeof sa;
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
		 getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 && sa.sin_addr.s_addr != 0;
	if (fd >= 0)
		close(fd);
	if (!ok)
		return MTR_EIO;
	*ip = ntohl(sa.sin_addr.s_addr);
	return 0;
}

unsigned transport_route_mtu(const struct transport_addr *dst)
{
	unsigned mtu = 0;
#ifdef IP_MTU
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(dst->port ? dst->port : 9),
				 .sin_addr.s_addr = htonl(dst->ip)};
	int v = 0;
	socklen_t vl = sizeof v;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockopt(fd, IPPROTO_IP, IP_MTU, &v, &vl) == 0 && v > 0)
		mtu = (unsigned)v;
	if (fd >= 0)
		close(fd);
#else
	(void)dst;
#endif
	return mtu;
}

int transport_addr_parse(const char *s, uint16_t default_port, struct transport_addr *out)
{
	if (!s || !out)
		return MTR_EINVAL;
	const char *p = s;
	uint32_t ip = 0;
	for (int i = 0; i < 4; i++) {
		unsigned octet;
		if (i > 0) {
			if (*p != '.')
				return MTR_EINVAL;
			p++;
		}
		if (parse_dec(&p, 255, &octet) < 0)
			return MTR_EINVAL;
		ip = ip << 8 | octet;
	}
	unsigned port = default_port;
	if (*p == ':') {
		p++;
		if (parse_dec(&p, 65535, &port) < 0)
			return MTR_EINVAL;
	}
	if (*p != '\0')
		return MTR_EINVAL;
	out->ip = ip;
	out->port = (uint16_t)port;
	return 0;
}

int transport_addr_resolve(const char *s, uint16_t default_port, struct transport_addr *out, char *err,
			   size_t errlen)
{
	if (transport_addr_parse(s, default_port, out) == 0)
		return 0;
	char host[256];
	const char *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);
	unsigned port = default_port;
	if (colon) {
		const char *p = colon + 1;
		if (parse_dec(&p, 65535, &port) < 0 || *p != '\0') {
			snprintf(err, errlen, "'%s': the port is not a number 0..65535", s);
			return MTR_EINVAL;
		}
	}
	if (hl == 0 || hl >= sizeof host) {
		snprintf(err, errlen, "'%s' is not an address; write host:port or a.b.c.d:port", s);
		return MTR_EINVAL;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	for (size_t i = 0; i < hl; i++) {
		char c = host[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '_')) {
			snprintf(err, errlen, "'%s' is not an address; write host:port or a.b.c.d:port", s);
			return MTR_EINVAL;
		}
	}
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *res = NULL;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "cannot resolve host '%s' to an IPv4 address: %s; check the name (DNS, /etc/hosts) or write a.b.c.d:port",
			 host, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		if (res)
			freeaddrinfo(res);
		return MTR_EINVAL;
	}
	const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
	out->ip = ntohl(sin->sin_addr.s_addr);
	out->port = (uint16_t)port;
	freeaddrinfo(res);
	return 0;
}

char *transport_addr_format(const struct transport_addr *a, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	snprintf(buf, size, "%u.%u.%u.%u:%u", (unsigned)(a->ip >> 24), (unsigned)(a->ip >> 16 & 255),
		 (unsigned)(a->ip >> 8 & 255), (unsigned)(a->ip & 255), (unsigned)a->port);
	return buf;
}

/* ---- configuration ----------------------------------------------------- */

#define TRANSPORT_DEFAULT_RCVBUF (8 << 20)
#define TRANSPORT_DEFAULT_SNDBUF (4 << 20)
#define TRANSPORT_DEFAULT_BATCH 64u
#define TRANSPORT_MAX_BATCH 1024u
#define TRANSPORT_RECV_ROUNDS 4

void transport_config_init(struct transport_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->kind = "udp";
	cfg->mcast_ttl = 1;
	cfg->mcast_loop = 1;
	cfg->mtu = WIRE_DEFAULT_MTU;
	cfg->rcvbuf = TRANSPORT_DEFAULT_RCVBUF;
	cfg->sndbuf = TRANSPORT_DEFAULT_SNDBUF;
	cfg->batch = TRANSPORT_DEFAULT_BATCH;
}

/*
 * A zeroed configuration must work too ("zero it, then set what you need"),
 * so zero means "default" for every field where zero is not a useful value.
 * mcast_loop is the exception: 0 is meaningful, and only
 * transport_config_init() turns it on.
 */
static int config_normalize(const struct transport_config *in, struct transport_config *c)
{
	*c = *in;
	if (!c->kind || !*c->kind)
		c->kind = "udp";
	if (c->mtu == 0)
		c->mtu = WIRE_DEFAULT_MTU;
	if (c->mtu < WIRE_MIN_MTU || c->mtu > WIRE_MAX_DGRAM) {
		mtr_log(LOG_ERROR, "transport: mtu %zu out of range %u..%u", c->mtu, WIRE_MIN_MTU, WIRE_MAX_DGRAM);
		return MTR_ECONFIG;
	}
	if (c->batch == 0)
		c->batch = TRANSPORT_DEFAULT_BATCH;
	if (c->batch > TRANSPORT_MAX_BATCH) {
		mtr_log(LOG_ERROR, "transport: batch %u above %u", c->batch, TRANSPORT_MAX_BATCH);
		return MTR_ECONFIG;
	}
	if (c->rcvbuf < 0 || c->sndbuf < 0) {
		mtr_log(LOG_ERROR, "transport: negative socket buffer size");
		return MTR_ECONFIG;
	}
	if (c->rcvbuf == 0)
		c->rcvbuf = TRANSPORT_DEFAULT_RCVBUF;
	if (c->sndbuf == 0)
		c->sndbuf = TRANSPORT_DEFAULT_SNDBUF;
	if (c->mcast_ttl <= 0)
		c->mcast_ttl = 1;
	if (c->mcast_ttl > 255) {
		mtr_log(LOG_ERROR, "transport: multicast ttl %d above 255", c->mcast_ttl);
		return MTR_ECONFIG;
	}
	if (c->ndests > TRANSPORT_MAX_DESTS) {
		mtr_log(LOG_ERROR, "transport: %u destinations, at most %d", c->ndests, TRANSPORT_MAX_DESTS);
		return MTR_ECONFIG;
	}
	return 0;
}

/* ---- open and the wrappers --------------------------------------------- */

/* The DPDK transport is its own library (src/dpdk), linked only into the
 * programs that call transport_dpdk_enable(); the client library carries
 * udp alone. */
static transport_open_fn dpdk_open;

void transport_register_dpdk(transport_open_fn fn)
{
	dpdk_open = fn;
}

int transport_open(const struct transport_config *cfg, struct transport **out)
{
	struct transport_config c;
	if (!cfg || !out)
		return MTR_EINVAL;
	*out = NULL;
	int rc = config_normalize(cfg, &c);
	if (rc < 0)
		return rc;
	if (strcmp(c.kind, "udp") == 0)
		return transport_udp_open(&c, out);
	if (strcmp(c.kind, "dpdk") == 0) {
		if (dpdk_open)
			return dpdk_open(&c, out);
#ifdef HAVE_DPDK
		mtr_log(LOG_ERROR, "transport: kind \"dpdk\" asked for, but this program carries only udp "
				   "(the client library has no DPDK): run mtrproxy with transport.kind = dpdk instead");
#else
		mtr_log(LOG_ERROR, "transport: kind \"dpdk\" asked for, but this build has no DPDK "
				   "(configure found no libdpdk, or --without-dpdk was given)");
#endif
		return MTR_ENOTSUP;
	}
	mtr_log(LOG_ERROR, "transport: unknown kind \"%s\" (udp or dpdk)", c.kind);
	return MTR_ENOTSUP;
}

/* Refuse, before anything is sent, a batch holding a datagram the transport
 * could not carry: a partly sent batch is harder to reason about. */
static int check_sizes(const struct transport *t, const struct transport_msg *m, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (m[i].len > t->cfg.mtu || (m[i].len && !m[i].buf))
			return m[i].len > t->cfg.mtu ? MTR_ETOOBIG : MTR_EINVAL;
	return 0;
}

int transport_send_group(struct transport *t, const struct transport_msg *m, unsigned n)
{
	if (!t || (n && !m))
		return MTR_EINVAL;
	if (n == 0)
		return 0;
	int rc = check_sizes(t, m, n);
	return rc < 0 ? rc : t->ops->send_group(t, m, n);
}

int transport_set_dests(struct transport *t, const struct transport_addr *d, unsigned n)
{
	if (!t || n == 0 || n > TRANSPORT_MAX_DESTS || !d)
		return MTR_EINVAL;
	if (t->cfg.ndests == 0)
		return 0; /* a multicast group */
	memcpy(t->cfg.dests, d, n * sizeof *d);
	t->cfg.ndests = n;
	return 0;
}

int transport_send_to(struct transport *t, const struct transport_msg *m, unsigned n)
{
	if (!t || (n && !m))
		return MTR_EINVAL;
	if (n == 0)
		return 0;
	int rc = check_sizes(t, m, n);
	return rc < 0 ? rc : t->ops->send_to(t, m, n);
}

int transport_send_to_mt(struct transport *t, const struct transport_msg *m, unsigned n)
{
	if (!t || (n && !m))
		return MTR_EINVAL;
	if (!t->ops->send_to_mt)
		return MTR_ENOTSUP;
	if (n == 0)
		return 0;
	int rc = check_sizes(t, m, n);
	return rc < 0 ? rc : t->ops->send_to_mt(t, m, n);
}

int transport_recv(struct transport *t, struct transport_msg *m, unsigned n)
{
	if (!t || (n && !m))
		return MTR_EINVAL;
	if (n == 0)
		return 0;
	/* When a whole batch is dropped, more may be waiting, and 0 means
	 * "nothing waiting": try a few more batches (bounded: a flood of bad
	 * datagrams must not keep the caller here). */
	for (int round = 0; round < TRANSPORT_RECV_ROUNDS; round++) {
		int r = t->ops->recv_raw(t, m, n);
		if (r <= 0)
			return r;
		int good = transport_filter(t, m, (unsigned)r);
		if (good > 0)
			return good;
	}
	return 0;
}

int transport_wait(struct transport *t, int timeout_ms)
{
	if (!t)
		return MTR_EINVAL;
	return t->ops->wait(t, -1, timeout_ms);
}

int transport_wait_fd(struct transport *t, int fd, int timeout_ms)
{
	if (!t)
		return MTR_EINVAL;
	return t->ops->wait(t, fd, timeout_ms);
}

int transport_fd(struct transport *t)
{
	if (!t || !t->ops->fd)
		return -1;
	return t->ops->fd(t);
}

void transport_counters(const struct transport *t, struct transport_counters *out)
{
	*out = t->ctr;
	out->dgrams_out += atomic_load_explicit(&t->mt_dgrams_out, memory_order_relaxed);
	out->bytes_out += atomic_load_explicit(&t->mt_bytes_out, memory_order_relaxed);
}

void transport_stats_each(const struct transport *t, const char *prefix, stats_fn fn, void *arg)
{
	struct transport_counters c;
	transport_counters(t, &c);
	transport_counters_each(&c, prefix, fn, arg);
}

void transport_counters_each(const struct transport_counters *ctr, const char *prefix, stats_fn fn, void *arg)
{
	struct transport_counters c = *ctr;
	char name[32];
	stats_put(fn, arg, prefix, "dgrams_in", c.dgrams_in);
	stats_put(fn, arg, prefix, "bytes_in", c.bytes_in);
	stats_put(fn, arg, prefix, "dgrams_out", c.dgrams_out);
	stats_put(fn, arg, prefix, "bytes_out", c.bytes_out);
	for (unsigned r = 0; r < TRANSPORT_DROP__COUNT; r++) {
		if (snprintf(name, sizeof name, "drop.%s", drop_lower[r]) >= (int)sizeof name)
			continue; /* cannot happen: the reasons are short words */
		stats_put(fn, arg, prefix, name, c.drops[r]);
	}
}

const char *transport_stats_help(const char *name)
{
	static const char *const drop_text[] = {
#define TRANSPORT__DROP_TEXT(name, text) "datagrams dropped: " text,
		TRANSPORT_DROP_MAP(TRANSPORT__DROP_TEXT)
#undef TRANSPORT__DROP_TEXT
	};
	static const struct {
		const char *name, *help;
	} plain[] = {
		{"dgrams_in", "datagrams received that passed the integrity check"},
		{"bytes_in", "bytes of the datagrams received that passed the integrity check"},
		{"dgrams_out", "datagrams sent (a fan-out to k destinations counts k)"},
		{"bytes_out", "bytes of the datagrams sent"},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(plain); i++)
		if (strcmp(name, plain[i].name) == 0)
			return plain[i].help;
	if (strncmp(name, "drop.", 5) == 0)
		for (unsigned r = 0; r < TRANSPORT_DROP__COUNT; r++)
			if (strcmp(name + 5, drop_lower[r]) == 0)
				return drop_text[r];
	return NULL;
}

void transport_close(struct transport *t)
{
	if (t)
		t->ops->close(t);
}

/* ---- the integrity filter ------------------------------------------------ */

static unsigned drop_reason(int err)
{
	switch (err) {
	case MTR_ETRUNCATED:
		return TRANSPORT_DROP_TRUNCATED;
	case MTR_EMAGIC:
		return TRANSPORT_DROP_MAGIC;
	case MTR_EVERSION:
		return TRANSPORT_DROP_VERSION;
	case MTR_EINTEGRITY:
		return TRANSPORT_DROP_INTEGRITY;
	case MTR_ECLUSTER:
		return TRANSPORT_DROP_CLUSTER;
	default:
		return TRANSPORT_DROP_MALFORMED;
	}
}

#define DROP_WARN_MS 60000u /* one warning per drop reason and minute */

/* Log the drop of m (reason r) at warn, unless one of reason r was logged
 * in the last minute; at debug every time. */
static void drop_log(struct transport *t, const struct transport_msg *m, unsigned r)
{
	uint64_t now = now_mono_ns() / 1000000u;
	int keyed = t->cfg.key.set, flagged = m->len >= WIRE_OVERHEAD && (ld16(m->buf + 6) & WIRE_F_MAC);
	unsigned slot = r == TRANSPORT_DROP_INTEGRITY && keyed != !!flagged ? TRANSPORT_DROP__COUNT : r;
	int warn = now >= t->warn_ms[slot];
	if (!warn && log_threshold < LOG_DEBUG)
		return;
	char a[24], why[160];
	transport_addr_format(&m->peer, a, sizeof a);
	if (r == TRANSPORT_DROP_INTEGRITY && keyed && !flagged)
		snprintf(why, sizeof why, "has no MAC: does the sender run without cluster.key (cluster.insecure)?");
	else if (r == TRANSPORT_DROP_INTEGRITY && keyed)
		snprintf(why, sizeof why, "failed authentication: wrong cluster.key?");
	else if (r == TRANSPORT_DROP_INTEGRITY && flagged)
		snprintf(why, sizeof why, "carries a MAC, and this node has no cluster.key: set the cluster's key here");
	else if (r == TRANSPORT_DROP_INTEGRITY)
		snprintf(why, sizeof why, "failed its checksum: corrupted");
	else if (r == TRANSPORT_DROP_CLUSTER)
		snprintf(why, sizeof why, "belongs to cluster %u, not %u (cluster.id)", ld32(m->buf + 8), t->cfg.cluster);
	else
		snprintf(why, sizeof why, "dropped (%u bytes): %s", m->len, transport_drop_name(r));
	if (warn) {
		t->warn_ms[slot] = now + DROP_WARN_MS;
		mtr_log(LOG_WARN, "transport: datagram from %s %s (counted in transport.drop.%s; the next ones of this "
			"minute only counted)", a, why, transport_drop_name(r));
	} else {
		mtr_log(LOG_DEBUG, "transport: datagram from %s %s", a, why);
	}
}

int transport_filter(struct transport *t, struct transport_msg *m, unsigned n)
{
	const struct wire_key *key = t->cfg.key.set ? &t->cfg.key : NULL;
	unsigned good = 0;
	for (unsigned i = 0; i < n; i++) {
		struct wire_hdr h;
		int rc = wire_dgram_check(m[i].buf, m[i].len, t->cfg.cluster, key, &h);
		if (rc < 0) {
			unsigned r = drop_reason(rc);
			t->ctr.drops[r]++;
			drop_log(t, &m[i], r);
			continue;
		}
		if (good != i)
			m[good] = m[i];
		m[good].hdr = h;
		t->ctr.dgrams_in++;
		t->ctr.bytes_in += m[good].len;
		good++;
	}
	return (int)good;
}
