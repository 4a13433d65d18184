/*
 * transport_udp.c - the "udp" transport: kernel UDP/IPv4 sockets, batched
 * with sendmmsg(2) and recvmmsg(2).
 *
 * One socket does both directions.  Receiving is non-blocking (MSG_DONTWAIT)
 * into the transport's own buffers, cfg.batch of them, cfg.mtu bytes each; a
 * datagram longer than a buffer comes back with MSG_TRUNC and is dropped as
 * TRUNCATED.  SO_RXQ_OVFL makes the kernel attach its running count of
 * datagrams it dropped for this socket (full receive queue), which becomes
 * drops[OVERFLOW].  Sending blocks (so a sender is held back by its own
 * socket buffer rather than dropping locally); a short poll handles the
 * ENOBUFS/EAGAIN the kernel still returns now and then.
 *
 * The group is either a multicast address (one message per datagram) or a
 * fan-out list of unicast destinations (one message per datagram and
 * destination).  doc/transport.md has the configuration and the operational
 * notes (rmem_max, multicast on loopback).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metronome.h"
#include "transport.h"
#include "util.h"

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

/* Messages per sendmmsg call (the kernel caps vlen at UIO_MAXIOV = 1024). */
#define UDP_SEND_CHUNK 256u

/* Receive rounds in one call when a whole batch was dropped as truncated:
 * more may be waiting, and "0" means "nothing waiting". */
#define UDP_RECV_ROUNDS 4

struct udp_transport {
	struct transport base; /* first: a struct transport * points here */
	int fd;
	int recv_on;           /* bound for receiving */
	int mcast_send;        /* send_group goes to a multicast group */
	/* receive side: batch buffers of bufsize bytes each */
	size_t bufsize;
	uint8_t *bufs;
	struct mmsghdr *rmsg;
	struct iovec *riov;
	struct sockaddr_in *rname;
	uint8_t *rctl; /* batch control buffers of RCTL bytes */
	uint32_t ovfl_seen; /* last SO_RXQ_OVFL value the kernel reported */
	/* send side: scratch for one sendmmsg chunk */
	struct mmsghdr smsg[UDP_SEND_CHUNK];
	struct iovec siov[UDP_SEND_CHUNK];
	struct sockaddr_in sname[UDP_SEND_CHUNK];
};

#define RCTL CMSG_SPACE(sizeof(uint32_t))

static int is_multicast(uint32_t ip) { return (ip >> 28) == 14; }

static void to_sockaddr(const struct transport_addr *a, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(a->ip);
	sa->sin_port = htons(a->port);
}

static struct udp_transport *udp_of(struct transport *t) { return (struct udp_transport *)t; }

/* ---- sending ------------------------------------------------------------ */

/* Wait a little for room in the send queue (ENOBUFS, EAGAIN). */
static void send_backoff(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, 1) <= 0 || (p.revents & POLLOUT)) {
		/* POLLOUT may be set while the device queue is what is full
		 * (ENOBUFS): sleep a little anyway, never spin. */
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
}

/*
 * Send the prepared messages smsg[0..cnt) completely.  sendmmsg may stop
 * early (a signal, a full queue, an error on one message): it then returns
 * how many it sent, and the error shows on the next call, for the first
 * unsent message.  Errors that concern one destination (nobody listening,
 * no route) lose that message only, as a datagram would be lost on the
 * network; anything else fails the call.
 */
static int flush_msgs(struct udp_transport *u, struct mmsghdr *smsg, const struct sockaddr_in *sname, unsigned cnt,
		      int mt)
{
	unsigned off = 0;
	while (off < cnt) {
		int r = sendmmsg(u->fd, smsg + off, cnt - off, 0);
		if (r > 0) {
			uint64_t bytes = 0;
			for (unsigned i = off; i < off + (unsigned)r; i++)
				bytes += smsg[i].msg_len;
			if (mt) {
				atomic_fetch_add_explicit(&u->base.mt_dgrams_out, (uint64_t)r, memory_order_relaxed);
				atomic_fetch_add_explicit(&u->base.mt_bytes_out, bytes, memory_order_relaxed);
			} else {
				u->base.ctr.dgrams_out += (uint64_t)r;
				u->base.ctr.bytes_out += bytes;
			}
			off += (unsigned)r;
			continue;
		}
		if (r == 0)
			continue;
		switch (errno) {
		case EINTR:
			continue;
		case EAGAIN:
		case ENOBUFS:
			send_backoff(u->fd);
			continue;
		case ECONNREFUSED:
		case EHOSTUNREACH:
		case ENETUNREACH:
		case EPERM: /* a firewall rule */
		case EACCES:
		case EMSGSIZE: { /* above a path MTU the kernel knows */
			char a[24];
			struct transport_addr d = { ntohl(sname[off].sin_addr.s_addr), ntohs(sname[off].sin_port) };
			mtr_log(errno == EMSGSIZE ? LOG_WARN : LOG_DEBUG, "transport udp: datagram to %s lost: %s",
				transport_addr_format(&d, a, sizeof a), strerror(errno));
			off++;
			continue;
		}
		default:
			mtr_log(LOG_ERROR, "transport udp: sendmmsg: %s", strerror(errno));
			return MTR_EIO;
		}
	}
	return 0;
}

static int udp_flush(struct udp_transport *u, unsigned cnt)
{
	return flush_msgs(u, u->smsg, u->sname, cnt, 0);
}

/* Fill one sendmmsg entry for buf[0..len) to dst. */
static void msg_fill(struct mmsghdr *mm, struct iovec *iov, struct sockaddr_in *sa, const struct transport_msg *m,
		     const struct transport_addr *dst)
{
	to_sockaddr(dst, sa);
	iov->iov_base = m->buf;
	iov->iov_len = m->len;
	memset(mm, 0, sizeof *mm);
	mm->msg_hdr.msg_name = sa;
	mm->msg_hdr.msg_namelen = sizeof *sa;
	mm->msg_hdr.msg_iov = iov;
	mm->msg_hdr.msg_iovlen = 1;
}

/* Queue one message in the chunk; flush when the chunk is full. */
static int udp_queue(struct udp_transport *u, unsigned *cnt, const struct transport_msg *m,
		     const struct transport_addr *dst)
{
	unsigned k = (*cnt)++;
	msg_fill(&u->smsg[k], &u->siov[k], &u->sname[k], m, dst);
	if (*cnt < UDP_SEND_CHUNK)
		return 0;
	int rc = udp_flush(u, *cnt);
	*cnt = 0;
	return rc;
}

/* Fan-out is interleaved (datagram 0 to every destination, then datagram
 * 1, ...) so that no destination lags a whole batch behind the others. */
static int udp_send_group(struct transport *t, const struct transport_msg *m, unsigned n)
{
	struct udp_transport *u = udp_of(t);
	const struct transport_config *c = &t->cfg;
	unsigned cnt = 0;
	int rc = 0;
	if (c->ndests == 0 && c->group.ip == 0) {
		mtr_log(LOG_ERROR, "transport udp: send to group, but neither a group nor destinations are configured");
		return MTR_ECONFIG;
	}
	for (unsigned i = 0; i < n && rc == 0; i++) {
		if (c->ndests == 0)
			rc = udp_queue(u, &cnt, &m[i], &c->group);
		for (unsigned d = 0; d < c->ndests && rc == 0; d++)
			rc = udp_queue(u, &cnt, &m[i], &c->dests[d]);
	}
	if (rc == 0 && cnt)
		rc = udp_flush(u, cnt);
	return rc < 0 ? rc : (int)n;
}

static int udp_send_to(struct transport *t, const struct transport_msg *m, unsigned n)
{
	struct udp_transport *u = udp_of(t);
	unsigned cnt = 0;
	int rc = 0;
	for (unsigned i = 0; i < n && rc == 0; i++)
		rc = udp_queue(u, &cnt, &m[i], &m[i].peer);
	if (rc == 0 && cnt)
		rc = udp_flush(u, cnt);
	return rc < 0 ? rc : (int)n;
}

/* Any thread: the message headers on the caller's stack, the socket shared
 * (a datagram socket's sends are atomic per datagram). */
#define UDP_MT_CHUNK 16u
static int udp_send_to_mt(struct transport *t, const struct transport_msg *m, unsigned n)
{
	struct udp_transport *u = udp_of(t);
	struct mmsghdr mm[UDP_MT_CHUNK];
	struct iovec iov[UDP_MT_CHUNK];
	struct sockaddr_in sa[UDP_MT_CHUNK];
	for (unsigned i = 0; i < n;) {
		unsigned k = 0;
		for (; k < UDP_MT_CHUNK && i < n; k++, i++)
			msg_fill(&mm[k], &iov[k], &sa[k], &m[i], &m[i].peer);
		int rc = flush_msgs(u, mm, sa, k, 1);
		if (rc < 0)
			return rc;
	}
	return (int)n;
}

/* ---- receiving ---------------------------------------------------------- */

/* Fold the kernel's overflow count (cumulative, wraps at 2^32) carried by a
 * received message into drops[OVERFLOW]. */
static void note_overflow(struct udp_transport *u, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SO_RXQ_OVFL)
			continue;
		uint32_t v;
		memcpy(&v, CMSG_DATA(cm), sizeof v);
		uint32_t delta = v - u->ovfl_seen;
		/* Messages of one batch carry counts in arrival order; a
		 * "negative" delta is an older message of the batch. */
		if (delta && delta < 0x80000000u) {
			u->base.ctr.drops[TRANSPORT_DROP_OVERFLOW] += delta;
			u->ovfl_seen = v;
		}
	}
}

static int udp_recv_once(struct udp_transport *u, struct transport_msg *m, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct msghdr *mh = &u->rmsg[i].msg_hdr;
		mh->msg_name = &u->rname[i];
		mh->msg_namelen = sizeof u->rname[i];
		mh->msg_iov = &u->riov[i];
		mh->msg_iovlen = 1;
		mh->msg_control = u->rctl + (size_t)i * RCTL;
		mh->msg_controllen = RCTL;
		mh->msg_flags = 0;
		u->rmsg[i].msg_len = 0;
	}
	int r;
	do
		r = recvmmsg(u->fd, u->rmsg, n, MSG_DONTWAIT, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		/* An ICMP error queued for an earlier send; not about us. */
		if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
			return 0;
		mtr_log(LOG_ERROR, "transport udp: recvmmsg: %s", strerror(errno));
		return MTR_EIO;
	}
	unsigned k = 0;
	for (int i = 0; i < r; i++) {
		struct msghdr *mh = &u->rmsg[i].msg_hdr;
		note_overflow(u, mh);
		if (mh->msg_flags & MSG_TRUNC) {
			u->base.ctr.drops[TRANSPORT_DROP_TRUNCATED]++;
			mtr_log(LOG_DEBUG, "transport udp: dropped a datagram longer than %zu bytes", u->bufsize);
			continue;
		}
		m[k].buf = u->riov[i].iov_base;
		m[k].len = u->rmsg[i].msg_len;
		m[k].peer.ip = ntohl(u->rname[i].sin_addr.s_addr);
		m[k].peer.port = ntohs(u->rname[i].sin_port);
		memset(&m[k].hdr, 0, sizeof m[k].hdr);
		k++;
	}
	/* All truncated: say "try again" (-1) unless the queue is drained. */
	return k > 0 ? (int)k : ((unsigned)r < n ? 0 : -1);
}

/* Raw datagrams: transport_recv() runs transport_filter() on them. */
static int udp_recv_raw(struct transport *t, struct transport_msg *m, unsigned n)
{
	struct udp_transport *u = udp_of(t);
	if (!u->recv_on)
		return MTR_ENOTSUP;
	if (n > t->cfg.batch)
		n = t->cfg.batch;
	for (int round = 0; round < UDP_RECV_ROUNDS; round++) {
		int r = udp_recv_once(u, m, n);
		if (r != -1)
			return r; /* datagrams, 0, or an MTR_E* code (never -1) */
	}
	return 0;
}

static int udp_wait(struct transport *t, int fd, int timeout_ms)
{
	struct udp_transport *u = udp_of(t);
	struct pollfd p[2] = {{ .fd = u->fd, .events = POLLIN }, { .fd = fd, .events = POLLIN }};
	int r;
	do
		r = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
	while (r < 0 && errno == EINTR); /* restarts the full timeout: fine for our callers */
	if (r < 0) {
		mtr_log(LOG_ERROR, "transport udp: poll: %s", strerror(errno));
		return MTR_EIO;
	}
	return r > 0 ? 1 : 0;
}

static int udp_fd(struct transport *t) { return udp_of(t)->fd; }

static void udp_close(struct transport *t)
{
	struct udp_transport *u = udp_of(t);
	if (u->fd >= 0)
		close(u->fd);
	free(u->bufs);
	free(u->rmsg);
	free(u->riov);
	free(u->rname);
	free(u->rctl);
	free(u);
}

static const struct transport_ops udp_ops = {
	.name = "udp",
	.send_group = udp_send_group,
	.send_to = udp_send_to,
	.send_to_mt = udp_send_to_mt,
	.recv_raw = udp_recv_raw,
	.wait = udp_wait,
	.fd = udp_fd,
	.close = udp_close,
};

/* ---- opening ------------------------------------------------------------ */

/* Set a socket buffer size: SO_*BUFFORCE (root, or CAP_NET_ADMIN) goes past
 * net.core.[rw]mem_max; otherwise the kernel silently caps the plain option
 * at the maximum, and we say so once. */
static void set_buffer(int fd, int force_opt, int opt, int bytes, const char *what)
{
	if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes) < 0) {
		mtr_log(LOG_WARN, "transport udp: %s %d: %s", what, bytes, strerror(errno));
		return;
	}
	int got = 0;
	socklen_t len = sizeof got;
	/* Linux reports twice the size asked for (bookkeeping overhead). */
	if (getsockopt(fd, SOL_SOCKET, opt, &got, &len) == 0 && got / 2 < bytes)
		mtr_log(LOG_WARN, "transport udp: %s capped at %d bytes (asked %d): raise net.core.%s_max",
			what, got / 2, bytes, opt == SO_RCVBUF ? "rmem" : "wmem");
}

static int sockopt(int fd, int level, int opt, const void *v, socklen_t len, const char *what)
{
	if (setsockopt(fd, level, opt, v, len) == 0)
		return 0;
	mtr_log(LOG_ERROR, "transport udp: %s: %s", what, strerror(errno));
	return MTR_EIO;
}

static int udp_setup(struct udp_transport *u)
{
	const struct transport_config *c = &u->base.cfg;
	char a[24];
	int one = 1;

	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u->fd < 0) {
		mtr_log(LOG_ERROR, "transport udp: socket: %s", strerror(errno));
		return MTR_EIO;
	}
	set_buffer(u->fd, SO_SNDBUFFORCE, SO_SNDBUF, c->sndbuf, "send buffer");

	u->mcast_send = c->ndests == 0 && is_multicast(c->group.ip);
	if (u->mcast_send) {
		unsigned char ttl = (unsigned char)c->mcast_ttl, loop = c->mcast_loop ? 1 : 0;
		struct in_addr ifa = { htonl(c->mcast_iface) };
		if (sockopt(u->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl, "IP_MULTICAST_TTL") < 0 ||
		    sockopt(u->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop, "IP_MULTICAST_LOOP") < 0)
			return MTR_EIO;
		if (c->mcast_iface &&
		    sockopt(u->fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa, "IP_MULTICAST_IF") < 0)
			return MTR_EIO;
	}
	if (c->no_recv)
		return 0;

	/*
	 * Receive on the group when it is a multicast group and no other port
	 * was asked for: bind the group address itself (so only that group's
	 * traffic arrives) and join it.  Several receivers on one host share
	 * the port with SO_REUSEADDR, each getting a copy.  For unicast,
	 * SO_REUSEADDR is not set on purpose: on Linux it would let two
	 * sockets bind the same UDP port and split the traffic silently.
	 */
	int mcast_recv = is_multicast(c->group.ip) && (c->bind.port == 0 || c->bind.port == c->group.port);
	struct transport_addr b = c->bind;
	if (mcast_recv) {
		b = c->group;
		if (sockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one, "SO_REUSEADDR") < 0)
			return MTR_EIO;
	}
	set_buffer(u->fd, SO_RCVBUFFORCE, SO_RCVBUF, c->rcvbuf, "receive buffer");
	if (setsockopt(u->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) < 0)
		mtr_log(LOG_WARN, "transport udp: SO_RXQ_OVFL: %s (kernel drops will not be counted)",
			strerror(errno));
	struct sockaddr_in sa;
	to_sockaddr(&b, &sa);
	if (bind(u->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		mtr_log(LOG_ERROR, "transport udp: bind %s: %s", transport_addr_format(&b, a, sizeof a), strerror(e));
		return e == EADDRINUSE ? MTR_EEXIST : MTR_EIO;
	}
	socklen_t sl = sizeof sa;
	if (getsockname(u->fd, (struct sockaddr *)&sa, &sl) == 0) {
		u->base.cfg.bind.ip = ntohl(sa.sin_addr.s_addr);
		u->base.cfg.bind.port = ntohs(sa.sin_port);
	}
	if (mcast_recv) {
		struct ip_mreq mr;
		mr.imr_multiaddr.s_addr = htonl(c->group.ip);
		mr.imr_interface.s_addr = htonl(c->mcast_iface);
		if (setsockopt(u->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
			int e = errno;
			char ifs[24];
			struct transport_addr ia = { c->mcast_iface, 0 };
			mtr_log(LOG_ERROR, "transport udp: join %s on interface %s: %s (is there a multicast route?)",
				transport_addr_format(&c->group, a, sizeof a), transport_addr_format(&ia, ifs, sizeof ifs),
				strerror(e));
			return e == ENODEV ? MTR_ENOTSUP : MTR_EIO;
		}
	}

	u->bufsize = c->mtu;
	u->bufs = malloc(c->batch * u->bufsize);
	u->rmsg = calloc(c->batch, sizeof *u->rmsg);
	u->riov = calloc(c->batch, sizeof *u->riov);
	u->rname = calloc(c->batch, sizeof *u->rname);
	u->rctl = calloc(c->batch, RCTL);
	if (!u->bufs || !u->rmsg || !u->riov || !u->rname || !u->rctl)
		return MTR_ENOMEM;
	for (unsigned i = 0; i < c->batch; i++) {
		u->riov[i].iov_base = u->bufs + (size_t)i * u->bufsize;
		u->riov[i].iov_len = u->bufsize;
	}
	u->recv_on = 1;
	return 0;
}

int transport_udp_open(const struct transport_config *cfg, struct transport **out)
{
	if (cfg->mtu < WIRE_MIN_MTU || cfg->mtu > WIRE_MAX_DGRAM || cfg->batch == 0)
		return MTR_EINVAL; /* not completed by transport_open */
	struct udp_transport *u = calloc(1, sizeof *u);
	if (!u)
		return MTR_ENOMEM;
	u->base.ops = &udp_ops;
	u->base.cfg = *cfg;
	u->fd = -1;
	int rc = udp_setup(u);
	if (rc < 0) {
		udp_close(&u->base);
		return rc;
	}
	char a[24];
	mtr_log(LOG_DEBUG, "transport udp: open, %s %s, mtu %zu, batch %u",
		u->recv_on ? "receiving on" : "send-only", u->recv_on ? transport_addr_format(&u->base.cfg.bind, a, sizeof a) : "",
		cfg->mtu, cfg->batch);
	*out = &u->base;
	return 0;
}
