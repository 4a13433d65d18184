/*
 * proxy_backup.c - a client's backup streamed through the proxy
 * (proxy_int.h; doc/server.md "Backup and restore"; doc/protocol.md
 * BACKUP).
 *
 * A BACKUP frame makes the proxy open the snapshot channel of one server
 * (snapchan.h: TCP on the server's own ip:port, a request "MTRSNAPB"
 * authenticated with the cluster key), and relay the snapshot it answers
 * to the client as BACKUP_PART frames: BEGIN (instance, size, server),
 * DATA parts of at most PART_CHUNK bytes, and END once the trailer's MAC
 * checked (or END with an error).  The server makes one consistent copy of
 * its replica at one applied instance (apply_snapshot); the proxy holds
 * at most one part of it, and reads from the server only while the
 * client's unsent output is below PART_OUT_MAX: memory stays bounded
 * whatever the database's size.
 *
 * All on the loop's thread, non-blocking: the channel's socket is in the
 * epoll set with its struct pxbackup as the tag (low bit set, see proxy.c).
 * A backup that ends (or whose client goes) is only marked dead and freed
 * by pxbk_sweep at the end of the iteration: events of the same batch may
 * still name it.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cproto.h"
#include "log.h"
#include "metronome.h"
#include "proxy_int.h"
#include "snapchan.h"
#include "util.h"

#define PART_CHUNK (256u << 10)   /* bytes of one DATA part at most */
#define PART_OUT_MAX (1u << 20)   /* the server is read while the client's output is below this */
#define BK_STEP_MS 30000u         /* connect, challenge, each part: no progress for this long fails */
#define BK_COPY_MS 3600000u       /* the server makes its copy before the header: at most this long */

#define BK_CURRENT_MS 10000u      /* a copy that has the session's last write: waited for this long */
#define BK_RETRY_MS 100u          /* between two tries at such a copy */

/* BK_WAIT: no server is known to have applied min_inst yet, or the one
 * asked sent an older copy: ask again at deadline_ms (doc/proxy.md). */
enum { BK_WAIT, BK_CONNECT, BK_CHAL, BK_HDR, BK_DATA, BK_TRAILER };

struct pxbackup {
	struct proxy *p;
	struct client *c; /* NULL once the client went */
	int fd;
	int state;
	int dead;
	uint32_t ev;
	unsigned server;
	unsigned tries;   /* servers asked so far */
	uint64_t min_inst;
	uint64_t current_by_ms; /* until then an older copy is asked again */
	int begun;        /* BEGIN sent to the client: no other server now */
	uint8_t chal[SNAP_CHAL_SIZE], req[SNAP_REQ_SIZE], hdr[SNAP_HDR_SIZE], tr[SNAP_TAG];
	size_t got; /* bytes of the current fixed-size piece */
	uint64_t left;
	uint64_t deadline_ms;
	struct snapchan_mac mac;
	uint8_t *buf; /* PART_CHUNK */
	struct pxbackup *next;
};

static void *bk_tag(struct pxbackup *b)
{
	return (void *)((uintptr_t)b | 1u);
}

/* End the backup: the END part (status 0 or an error with msg) to its
 * client, the channel closed; freed by pxbk_sweep. */
static void bk_end(struct pxbackup *b, int32_t status, const char *msg)
{
	struct proxy *p = b->p;
	if (b->fd >= 0)
		close(b->fd); /* also leaves the epoll set */
	b->fd = -1;
	b->dead = 1;
	if (status != 0)
		p->st.backup_failures++;
	else
		p->st.backups++;
	mtr_log(status ? LOG_WARN : LOG_INFO, "proxy: backup from server %u for client %llu: %s", b->server,
		b->c ? (unsigned long long)b->c->no : 0ull, status ? msg : "complete");
	struct client *c = b->c;
	if (c == NULL)
		return;
	c->bk = NULL;
	b->c = NULL;
	struct cproto_part e = {.kind = CPROTO_PART_END, .status = status, .msg = msg,
				.msg_len = msg ? (uint32_t)strlen(msg) : 0};
	if (cproto_put_part(&c->out, &e) != 0) {
		pxcli_close(p, c, "out of memory for a backup");
		return;
	}
	pxcli_mark_dirty(p, c);
}

static int bk_connect(struct pxbackup *b);
static void bk_go(struct pxbackup *b);

/* The exchange with b->server failed: before the copy began, ask the next
 * server (each at most once); else end with the error. */
static void bk_fail(struct pxbackup *b, int32_t status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bk_fail(struct pxbackup *b, int32_t status, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct proxy *p = b->p;
	if (!b->begun && b->c && b->tries < (unsigned)__builtin_popcountll(p->servers)) {
		mtr_log(LOG_INFO, "proxy: backup for client %llu: %s; asking another server", (unsigned long long)b->c->no,
			msg);
		if (b->fd >= 0)
			close(b->fd);
		b->fd = -1;
		b->server = pxnet_read_pick(p, b->min_inst, b->server + 1);
		if (bk_connect(b) == 0)
			return;
		snprintf(msg, sizeof msg, "cannot reach the snapshot channel of server %u: %s", b->server,
			 strerror(errno));
	}
	bk_end(b, status, msg);
}

/* Read into dst until it holds n bytes (b->got so far).  1: complete; 0:
 * wait for more; -1: failed (ended). */
static int bk_fill(struct pxbackup *b, uint8_t *dst, size_t n)
{
	while (b->got < n) {
		ssize_t r = recv(b->fd, dst + b->got, n - b->got, MSG_DONTWAIT);
		if (r > 0) {
			b->got += (size_t)r;
			continue;
		}
		if (r < 0 && (errno == EINTR))
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		bk_fail(b, MTR_EIO,
			"server %u closed the snapshot channel (%s): it refused the request (its log says why: no "
			"room for the copy, a wrong cluster.key) or stopped",
			b->server, r == 0 ? "end of stream" : strerror(errno));
		return -1;
	}
	b->got = 0;
	b->deadline_ms = b->p->now_ms + BK_STEP_MS;
	return 1;
}

/* Relay DATA parts while the client keeps up.  0: go on; -1: ended. */
static int bk_data(struct pxbackup *b)
{
	struct client *c = b->c;
	while (b->left > 0 && c->out.len < PART_OUT_MAX) {
		size_t want = b->left < PART_CHUNK ? (size_t)b->left : PART_CHUNK;
		ssize_t r = recv(b->fd, b->buf, want, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r <= 0) {
			bk_fail(b, MTR_EIO, "server %u closed the snapshot channel with %llu bytes still to come (%s)",
				b->server, (unsigned long long)b->left, r == 0 ? "end of stream" : strerror(errno));
			return -1;
		}
		snapchan_mac_update(&b->mac, b->buf, (size_t)r);
		struct cproto_part d = {.kind = CPROTO_PART_DATA, .data = b->buf, .len = (uint32_t)r};
		if (cproto_put_part(&c->out, &d) != 0) {
			bk_fail(b, MTR_ENOMEM, "out of memory");
			return -1;
		}
		pxcli_mark_dirty(b->p, c);
		b->left -= (uint64_t)r;
		b->deadline_ms = b->p->now_ms + BK_STEP_MS;
	}
	if (b->left == 0)
		b->state = BK_TRAILER;
	return 0;
}

/* Wait BK_RETRY_MS, then ask again (pxbk_sweep). */
static void bk_wait(struct pxbackup *b)
{
	b->state = BK_WAIT;
	b->deadline_ms = b->p->now_ms + BK_RETRY_MS;
}

/* The server for the copy: one known to have applied min_inst, else 0
 * (*i: the next one in turn). */
static int bk_pick(struct pxbackup *b, unsigned from, unsigned *i)
{
	*i = pxnet_read_pick(b->p, b->min_inst, from);
	return b->p->srv[*i].applied >= b->min_inst;
}

/* Server b->server sent a copy of instance inst, older than the session's
 * last write (its STATUS was not seen yet, or it is behind): the copy is
 * not taken; ask again in BK_RETRY_MS, a server that has applied it if one
 * is known, until current_by_ms, then fail saying so. */
static void bk_older(struct pxbackup *b, uint64_t inst)
{
	struct proxy *p = b->p;
	mtr_log(LOG_INFO, "proxy: backup for client %llu: server %u has instance %llu, older than %llu; asking again",
		(unsigned long long)b->c->no, b->server, (unsigned long long)inst, (unsigned long long)b->min_inst);
	close(b->fd);
	b->fd = -1;
	b->tries = 0; /* that one answered: every server may be asked again */
	if (p->now_ms >= b->current_by_ms) {
		char msg[200];
		snprintf(msg, sizeof msg,
			 "no server had applied instance %llu (this connection's last write) within %u s: a copy "
			 "would miss it; check the cluster (mtrctl members) and run the backup again",
			 (unsigned long long)b->min_inst, BK_CURRENT_MS / 1000);
		bk_end(b, MTR_ETIMEDOUT, msg);
		return;
	}
	bk_wait(b);
}

/* Advance the exchange as far as the socket allows. */
static void bk_step(struct pxbackup *b)
{
	struct proxy *p = b->p;
	const struct clusterconf *cc = &p->cfg.cc;
	for (;;) {
		switch (b->state) {
		case BK_CONNECT: {
			int err = 0;
			socklen_t el = sizeof err;
			if (getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
				err = errno;
			if (err == EINPROGRESS || err == EALREADY)
				return;
			if (err != 0) {
				bk_fail(b, MTR_ECONNECT, "cannot reach the snapshot channel of server %u: %s", b->server,
					strerror(err));
				return;
			}
			b->state = BK_CHAL;
			break;
		}
		case BK_CHAL: {
			int r = bk_fill(b, b->chal, sizeof b->chal);
			if (r <= 0)
				return;
			if (memcmp(b->chal, snap_chal_magic, 8) != 0) {
				bk_fail(b, MTR_EIO, "server %u's snapshot channel does not speak the protocol", b->server);
				return;
			}
			snapchan_request(b->req, snap_backup_magic, cc->cluster_id, p->cfg.id, &cc->key, b->chal);
			if (send(b->fd, b->req, sizeof b->req, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof b->req) {
				bk_fail(b, MTR_EIO, "cannot send the request to server %u: %s", b->server, strerror(errno));
				return;
			}
			b->state = BK_HDR;
			b->deadline_ms = p->now_ms + BK_COPY_MS;
			break;
		}
		case BK_HDR: {
			int r = bk_fill(b, b->hdr, sizeof b->hdr);
			if (r <= 0)
				return;
			if (memcmp(b->hdr, snap_resp_magic, 8) != 0) {
				bk_fail(b, MTR_EIO, "server %u answered something else than a snapshot", b->server);
				return;
			}
			if (ld64(b->hdr + 8) < b->min_inst) {
				bk_older(b, ld64(b->hdr + 8));
				return;
			}
			b->left = ld64(b->hdr + 16);
			snapchan_mac_init(&b->mac, &cc->key, 1, b->req, b->chal, b->hdr);
			struct cproto_part h = {.kind = CPROTO_PART_BEGIN, .instance = ld64(b->hdr + 8), .size = b->left,
						.server = b->server};
			if (cproto_put_part(&b->c->out, &h) != 0) {
				bk_fail(b, MTR_ENOMEM, "out of memory");
				return;
			}
			pxcli_mark_dirty(p, b->c);
			b->begun = 1;
			mtr_log(LOG_INFO, "proxy: backup for client %llu: server %u sends instance %llu, %llu bytes",
				(unsigned long long)b->c->no, b->server, (unsigned long long)ld64(b->hdr + 8),
				(unsigned long long)b->left);
			b->state = BK_DATA;
			break;
		}
		case BK_DATA:
			if (bk_data(b) != 0 || b->state == BK_DATA)
				return;
			break;
		case BK_TRAILER: {
			int r = bk_fill(b, b->tr, sizeof b->tr);
			if (r <= 0)
				return;
			if (!snapchan_mac_check(&b->mac, b->tr))
				bk_fail(b, MTR_EIO, "the copy from server %u failed its check (cluster.key differs?)",
					b->server);
			else
				bk_end(b, 0, NULL);
			return;
		}
		}
	}
}

/* What epoll watches for the channel: write while connecting, read unless
 * the client's output is full. */
void pxbk_events(struct proxy *p, struct pxbackup *b)
{
	if (b->dead)
		return;
	uint32_t ev = b->state == BK_CONNECT ? EPOLLOUT
		      : (b->state == BK_DATA && b->c->out.len >= PART_OUT_MAX) ? 0
									      : EPOLLIN;
	if (ev == b->ev)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = bk_tag(b)};
	if (epoll_ctl(p->ep, EPOLL_CTL_MOD, b->fd, &e) == 0)
		b->ev = ev;
}

void pxbk_event(struct proxy *p, struct pxbackup *b)
{
	if (b->dead)
		return;
	bk_step(b);
	if (!b->dead)
		pxbk_events(p, b);
}

void pxbk_start(struct proxy *p, struct client *c, uint64_t min_inst)
{
	struct cproto_part e = {.kind = CPROTO_PART_END, .status = MTR_EBUSY};
	const char *why = NULL;
	if (c->bk || c->npend)
		why = "a backup needs a connection with no request in flight: wait for the answers first";
	struct pxbackup *b = why ? NULL : calloc(1, sizeof *b);
	if (!why && (b == NULL || (b->buf = malloc(PART_CHUNK)) == NULL)) {
		why = "out of memory";
		e.status = MTR_ENOMEM;
	}
	if (why) {
		if (b)
			free(b);
		e.msg = why;
		e.msg_len = (uint32_t)strlen(why);
		if (cproto_put_part(&c->out, &e) != 0)
			pxcli_close(p, c, "out of memory");
		else
			pxcli_mark_dirty(p, c);
		p->st.backup_failures++;
		return;
	}
	b->p = p;
	b->c = c;
	b->min_inst = min_inst;
	b->current_by_ms = p->now_ms + BK_CURRENT_MS;
	b->fd = -1;
	b->next = p->backups;
	p->backups = b;
	c->bk = b;
	if (!bk_pick(b, p->rr++, &b->server)) { /* wait for a STATUS that says one has it */
		bk_wait(b);
		return;
	}
	bk_go(b);
}

/* Connect to b->server, or fail over as bk_fail does. */
static void bk_go(struct pxbackup *b)
{
	if (bk_connect(b) != 0)
		bk_fail(b, MTR_ECONNECT, "cannot reach the snapshot channel of server %u: %s", b->server,
			strerror(errno));
}

/* Start the exchange with b->server: a non-blocking connect in the epoll
 * set.  0, or -1 with errno. */
static int bk_connect(struct pxbackup *b)
{
	struct proxy *p = b->p;
	b->tries++;
	b->state = BK_CONNECT;
	b->got = 0;
	b->deadline_ms = p->now_ms + BK_STEP_MS;
	const struct transport_addr *a = &p->saddr[b->server];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(a->port), .sin_addr.s_addr = htonl(a->ip)};
	b->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->fd < 0)
		return -1;
	b->ev = EPOLLOUT;
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = bk_tag(b)};
	if ((connect(b->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) ||
	    epoll_ctl(p->ep, EPOLL_CTL_ADD, b->fd, &ev) != 0) {
		int e = errno;
		close(b->fd);
		b->fd = -1;
		errno = e;
		return -1;
	}
	mtr_log(LOG_INFO, "proxy: backup for client %llu from server %u (instance >= %llu)",
		(unsigned long long)b->c->no, b->server, (unsigned long long)b->min_inst);
	return 0;
}

void pxbk_client_gone(struct proxy *p, struct client *c)
{
	struct pxbackup *b = c->bk;
	if (b == NULL)
		return;
	b->c = NULL;
	c->bk = NULL;
	if (!b->dead) {
		if (b->fd >= 0)
			close(b->fd);
		b->fd = -1;
		b->dead = 1;
		p->st.backup_failures++;
		mtr_log(LOG_INFO, "proxy: backup from server %u abandoned: its client went", b->server);
	}
}

void pxbk_sweep(struct proxy *p)
{
	for (struct pxbackup **pp = &p->backups; *pp;) {
		struct pxbackup *b = *pp;
		if (!b->dead && b->state == BK_WAIT && p->now_ms >= b->deadline_ms) {
			/* a server known to have it, else (the time is up) the next
			 * in turn, whose copy's instance says */
			unsigned i;
			if (bk_pick(b, b->server + 1, &i) || p->now_ms >= b->current_by_ms) {
				b->server = i;
				bk_go(b);
			} else {
				bk_wait(b);
			}
		} else if (!b->dead && p->now_ms >= b->deadline_ms) {
			if (b->state == BK_DATA && b->c && b->c->out.len >= PART_OUT_MAX)
				b->deadline_ms = p->now_ms + BK_STEP_MS; /* the client is slow, not the server */
			else
				bk_fail(b, MTR_ETIMEDOUT, "no progress from server %u's snapshot channel within %u s",
					b->server, (b->state == BK_HDR ? BK_COPY_MS : BK_STEP_MS) / 1000);
		}
		if (b->dead) {
			*pp = b->next;
			free(b->buf);
			free(b);
		} else {
			pp = &b->next;
		}
	}
}

void pxbk_close_all(struct proxy *p)
{
	for (struct pxbackup *b = p->backups; b; b = b->next) {
		if (b->c)
			b->c->bk = NULL;
		b->c = NULL;
		if (b->fd >= 0)
			close(b->fd);
		b->fd = -1;
		b->dead = 1;
	}
	pxbk_sweep(p);
}
