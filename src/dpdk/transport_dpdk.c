/*
 * transport_dpdk.c - the "dpdk" transport: the same UDP/IPv4 datagrams as
 * the socket transport, sent and received on a DPDK port (kernel bypass).
 *
 * Life cycle.  EAL can be initialised once per process, so the first
 * transport_dpdk_open() initialises it from cfg->dpdk_eal and every open
 * takes a reference; the last close calls rte_eal_cleanup().  (DPDK cannot be
 * initialised again afterwards: an open after that fails with MTR_ENOTSUP.)
 * Each open attaches its own port: cfg->dpdk_port is a device string, either
 * a vdev ("net_memif0,role=server,socket=/run/x.sock", "net_ring0",
 * "net_af_packet0,iface=veth0") or a PCI address; a port already created by a
 * --vdev in the EAL arguments is used as it is.  Several ports may be open in
 * one process (tests, the benchmark).
 *
 * Frames.  netpkt.c writes and reads Ethernet/IPv4/UDP headers.  Group
 * traffic to a multicast address goes to its 01:00:5e MAC; unicast needs the
 * peer's MAC, learnt from ARP and from the frames we receive (a small
 * neighbour table); until it is known we send an ARP request and the frame
 * to the broadcast MAC, which a Linux host accepts.  We answer ARP requests
 * for our own address (cfg->bind.ip) so that socket peers can reach us.
 *
 * Idle.  No virtual port here has RX interrupts, so transport_wait() polls:
 * a few empty polls, then sleeps of 20 us; once no frame came for
 * DPDK_HOT_NS (5 ms) they grow to 500 us.  A request/answer exchange
 * crosses four or five processes, each waiting up to one sleep: a 500 us
 * sleep while traffic flows cost a single client about a millisecond per
 * write (doc/performance.md "DPDK end to end").  The thread's timer slack
 * is set to 1 us so that a 20 us sleep is not 70.  With busy_poll it spins
 * (for dedicated cores only).  A burst fetched by
 * transport_wait() is kept and handed out by the next receive.
 *
 * Ownership.  Received datagrams point into mbufs we hold until the next
 * receive or close.  Sends copy the caller's bytes into new mbufs.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <rte_common.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "log.h"
#include "metronome.h"
#include "netpkt.h"
#include "transport.h"
#include "transport_dpdk.h"
#include "util.h"

#define DPDK_BURST 64u
#define DPDK_MAX_QUEUES 8u
#define DPDK_RING_SIZE 1024u
#define DPDK_NEIGH_MAX 64u
#define DPDK_SPIN_POLLS 16u        /* empty polls before the first sleep */
#define DPDK_SLEEP_MIN_NS 20000u   /* first idle sleep */
#define DPDK_SLEEP_MAX_NS 500000u  /* longest idle sleep */
#define DPDK_HOT_NS 5000000ull     /* sleeps stay short this long after a frame */
#define DPDK_TX_PATIENCE_NS 20000000ull /* give up on a full TX ring after 20 ms */
#define DPDK_ARP_RETRY_NS 100000000ull  /* one ARP request per peer per 100 ms */

#define DPDK_DEFAULT_EAL "--no-huge --no-shconf --no-telemetry --no-pci -m 128 --log-level=*:warning"

struct dpdk_neigh {
	uint32_t ip;
	int known;
	uint8_t mac[6];
	uint64_t asked_ns; /* when we last sent an ARP request */
};

struct dpdk_transport {
	struct transport base;
	uint16_t port;
	int attached; /* we probed the device: remove it at close */
	int is_vdev;  /* a virtual device (net_*), not a PCI address */
	int started;
	char devname[RTE_DEV_NAME_MAX_LEN];
	struct rte_mempool *pool;
	unsigned nq, rxq_next;
	uint8_t mac[6];
	int tx_ip_csum, rx_ip_csum; /* IPv4 checksum offloads in use */
	uint16_t max_payload;       /* largest datagram a frame can carry */
	uint16_t ip_id;
	/* mbufs whose data the caller's transport_msg point at */
	struct rte_mbuf *held[DPDK_BURST];
	unsigned nheld;
	/* a burst received by wait(), not yet handed out */
	struct rte_mbuf *stash[DPDK_BURST];
	unsigned nstash;
	struct dpdk_neigh neigh[DPDK_NEIGH_MAX];
	unsigned nneigh;
	uint64_t hw_missed; /* last imissed + rx_nombuf seen from the port */
	uint64_t tx_lost;   /* frames dropped on a full TX ring */
	uint64_t last_rx_ns; /* when rx_poll last returned a frame */
};

/* ---- EAL, once per process ---- */

static pthread_mutex_t eal_lock = PTHREAD_MUTEX_INITIALIZER;
static int eal_refs;    /* open transports */
static int eal_state;   /* 0 never, 1 up, 2 cleaned up (cannot restart) */
static unsigned pool_seq; /* unique mempool names */

/*
 * Initialise EAL from a space-separated argument string.  EAL pins the
 * calling thread to its first lcore; on a shared 2-core machine several
 * processes pinned to the same core starve each other, so the thread's
 * previous CPU affinity is put back afterwards.
 */
static int eal_init(const char *args)
{
	char *copy = strdup(args && *args ? args : DPDK_DEFAULT_EAL);
	char *argv[64];
	int argc = 0;
	char lbuf[32];
	int has_l = 0;
	if (!copy)
		return MTR_ENOMEM;
	argv[argc++] = (char *)"metronome";
	for (char *save = NULL, *tok = strtok_r(copy, " \t", &save); tok && argc < 60;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (!strcmp(tok, "-l") || !strcmp(tok, "-c") || !strncmp(tok, "--lcores", 8))
			has_l = 1;
		argv[argc++] = tok;
	}
	if (!has_l) {
		/* one lcore: the CPU we are running on now */
		int cpu = sched_getcpu();
		snprintf(lbuf, sizeof lbuf, "%d", cpu < 0 ? 0 : cpu);
		argv[argc++] = (char *)"-l";
		argv[argc++] = lbuf;
	}
	argv[argc] = NULL;

	cpu_set_t saved;
	int have_saved = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
	int rc = rte_eal_init(argc, argv);
	int err = rte_errno;
	if (have_saved)
		pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
	/* EAL keeps pointers into argv only during init; copy may go */
	free(copy);
	if (rc < 0) {
		mtr_log(LOG_ERROR, "[dpdk] EAL init failed (%s): %s", args ? args : DPDK_DEFAULT_EAL,
			rte_strerror(err));
		return MTR_EIO;
	}
	return 0;
}

static int eal_ref(const char *args)
{
	int rc = 0;
	pthread_mutex_lock(&eal_lock);
	if (eal_state == 2) {
		mtr_log(LOG_ERROR, "[dpdk] EAL was cleaned up in this process and cannot start again");
		rc = MTR_ENOTSUP;
	} else if (eal_state == 0) {
		rc = eal_init(args);
		if (rc == 0)
			eal_state = 1;
	}
	if (rc == 0)
		eal_refs++;
	pthread_mutex_unlock(&eal_lock);
	return rc;
}

static void eal_unref(void)
{
	pthread_mutex_lock(&eal_lock);
	if (--eal_refs == 0 && eal_state == 1) {
		rte_eal_cleanup();
		eal_state = 2;
		mtr_log(LOG_DEBUG, "[dpdk] EAL cleaned up");
	}
	pthread_mutex_unlock(&eal_lock);
}

/* ---- helpers ---- */

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
	nanosleep(&ts, NULL);
}

/* Sleep ns, or less when fd (>= 0) becomes readable first: returns 1 then. */
static int sleep_or_fd(int fd, uint64_t ns)
{
	if (fd < 0) {
		sleep_ns(ns);
		return 0;
	}
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return ppoll(&p, 1, &ts, NULL) > 0;
}

static void free_mbufs(struct rte_mbuf **v, unsigned *n)
{
	for (unsigned i = 0; i < *n; i++)
		rte_pktmbuf_free(v[i]);
	*n = 0;
}

/* Read the port's own loss counters into drops[OVERFLOW]. */
static void update_hw_drops(struct dpdk_transport *d)
{
	struct rte_eth_stats st;
	if (rte_eth_stats_get(d->port, &st) != 0)
		return;
	uint64_t missed = st.imissed + st.rx_nombuf;
	if (missed > d->hw_missed)
		d->base.ctr.drops[TRANSPORT_DROP_OVERFLOW] += missed - d->hw_missed;
	d->hw_missed = missed;
}

/* ---- neighbours ---- */

static struct dpdk_neigh *neigh_find(struct dpdk_transport *d, uint32_t ip, int create)
{
	for (unsigned i = 0; i < d->nneigh; i++)
		if (d->neigh[i].ip == ip)
			return &d->neigh[i];
	if (!create)
		return NULL;
	/* full table: reuse the slot of the ip's hash (entries are only a cache) */
	struct dpdk_neigh *n = d->nneigh < DPDK_NEIGH_MAX ? &d->neigh[d->nneigh++]
							  : &d->neigh[(ip * 2654435761u) % DPDK_NEIGH_MAX];
	memset(n, 0, sizeof *n);
	n->ip = ip;
	return n;
}

static void neigh_learn(struct dpdk_transport *d, uint32_t ip, const uint8_t mac[6])
{
	if (ip == 0 || (mac[0] & 1) || ip == d->base.cfg.bind.ip)
		return;
	struct dpdk_neigh *n = neigh_find(d, ip, 1);
	if (n->known && memcmp(n->mac, mac, 6) == 0)
		return;
	memcpy(n->mac, mac, 6);
	n->known = 1;
	if (log_threshold >= LOG_DEBUG) {
		char a[24], m[18];
		struct transport_addr ta = { ip, 0 };
		mtr_log(LOG_DEBUG, "[dpdk] neighbour %s is %s", transport_addr_format(&ta, a, sizeof a),
			netpkt_mac_format(mac, m, sizeof m));
	}
}

static void send_raw_frame(struct dpdk_transport *d, const uint8_t *frame, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(d->pool);
	if (!m)
		return;
	size_t flen = MAX(len, (size_t)NETPKT_MIN_FRAME);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)flen);
	if (!p) {
		rte_pktmbuf_free(m);
		return;
	}
	memset(p, 0, flen);
	memcpy(p, frame, len);
	if (rte_eth_tx_burst(d->port, 0, &m, 1) != 1)
		rte_pktmbuf_free(m);
}

/* The MAC to send a unicast datagram to ip with: known, or broadcast while
 * an ARP request (at most one per DPDK_ARP_RETRY_NS) asks for it. */
static void neigh_resolve(struct dpdk_transport *d, uint32_t ip, uint8_t mac[6])
{
	struct dpdk_neigh *n = neigh_find(d, ip, 1);
	if (n->known) {
		memcpy(mac, n->mac, 6);
		return;
	}
	memset(mac, 0xff, 6);
	uint64_t now = now_mono_ns();
	if (n->asked_ns == 0 || now - n->asked_ns > DPDK_ARP_RETRY_NS) {
		uint8_t frame[NETPKT_ARP_SIZE];
		n->asked_ns = now;
		netpkt_arp_build(frame, 1, d->mac, d->base.cfg.bind.ip, mac, ip);
		send_raw_frame(d, frame, sizeof frame);
	}
}

/* ---- send ---- */

/* Transmit v[0..n), retrying a full ring with short sleeps; frames still not
 * taken after DPDK_TX_PATIENCE_NS are freed and counted as lost.  Returns
 * how many were transmitted. */
static unsigned tx_all(struct dpdk_transport *d, struct rte_mbuf **v, unsigned n)
{
	unsigned sent = 0;
	uint64_t since = 0;
	unsigned idle = 0;
	while (sent < n) {
		uint16_t k = rte_eth_tx_burst(d->port, 0, v + sent, (uint16_t)(n - sent));
		sent += k;
		if (k) {
			since = 0;
			idle = 0;
			continue;
		}
		uint64_t now = now_mono_ns();
		if (!since)
			since = now;
		else if (now - since > DPDK_TX_PATIENCE_NS)
			break;
		if (d->base.cfg.busy_poll || idle++ < DPDK_SPIN_POLLS)
			rte_pause();
		else
			sleep_ns(DPDK_SLEEP_MIN_NS);
	}
	if (sent < n) {
		d->tx_lost += n - sent;
		struct rte_eth_link lk;
		rte_eth_link_get_nowait(d->port, &lk);
		mtr_log(LOG_DEBUG, "[dpdk] %s: TX ring full: %u frames dropped (link %s)", d->devname, n - sent,
			lk.link_status ? "up" : "down");
		for (unsigned i = sent; i < n; i++)
			rte_pktmbuf_free(v[i]);
	}
	return sent;
}

/* Build the frame of one datagram to (ip, port, mac). */
static int build_frame(struct dpdk_transport *d, const struct transport_msg *msg, uint32_t ip, uint16_t port,
		       const uint8_t mac[6], struct rte_mbuf **out)
{
	if (msg->len > d->max_payload)
		return MTR_ETOOBIG;
	struct rte_mbuf *m = rte_pktmbuf_alloc(d->pool);
	if (!m)
		return MTR_ENOMEM;
	size_t flen = NETPKT_HDR_SIZE + msg->len;
	size_t alen = MAX(flen, (size_t)NETPKT_MIN_FRAME);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)alen);
	if (!p) {
		rte_pktmbuf_free(m);
		return MTR_ETOOBIG;
	}
	struct netpkt_udp h = {
		.src_ip = d->base.cfg.bind.ip,
		.dst_ip = ip,
		.src_port = d->base.cfg.bind.port,
		.dst_port = port,
		.ip_id = d->ip_id++,
		.ttl = (uint8_t)(netpkt_ip_is_mcast(ip) && d->base.cfg.mcast_ttl > 0 ? d->base.cfg.mcast_ttl : 64),
	};
	memcpy(h.dst_mac, mac, 6);
	memcpy(h.src_mac, d->mac, 6);
	memcpy(p + NETPKT_HDR_SIZE, msg->buf, msg->len);
	if (alen > flen)
		memset(p + flen, 0, alen - flen);
	unsigned flags = 0;
	if (d->tx_ip_csum) {
		m->l2_len = NETPKT_ETH_SIZE;
		m->l3_len = NETPKT_IP_SIZE;
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
		flags |= NETPKT_NO_IP_CSUM;
	}
	netpkt_udp_build(p, &h, msg->len, flags);
	*out = m;
	return 0;
}

/* Send m[0..n) to one destination each: dst(i) gives it.  Returns n or a
 * negative code (nothing invalid is sent). */
typedef void (*dst_fn)(struct dpdk_transport *d, const struct transport_msg *m, unsigned dest, uint32_t *ip,
		       uint16_t *port, uint8_t mac[6]);

static int send_frames(struct dpdk_transport *d, const struct transport_msg *m, unsigned n, unsigned ndest,
		       dst_fn dst)
{
	struct rte_mbuf *v[DPDK_BURST];
	unsigned nv = 0;
	for (unsigned i = 0; i < n; i++) {
		if (m[i].len > d->max_payload) {
			free_mbufs(v, &nv);
			return MTR_ETOOBIG;
		}
		for (unsigned k = 0; k < ndest; k++) {
			uint32_t ip;
			uint16_t port;
			uint8_t mac[6];
			dst(d, &m[i], k, &ip, &port, mac);
			int rc = build_frame(d, &m[i], ip, port, mac, &v[nv]);
			if (rc == MTR_ENOMEM && nv) {
				/* pool empty: push out what we have, then retry */
				tx_all(d, v, nv);
				nv = 0;
				rc = build_frame(d, &m[i], ip, port, mac, &v[nv]);
			}
			if (rc < 0) {
				tx_all(d, v, nv);
				mtr_log(LOG_WARN, "[dpdk] send: %s", mtr_strerror(rc));
				return rc;
			}
			d->base.ctr.dgrams_out++;
			d->base.ctr.bytes_out += m[i].len;
			if (++nv == DPDK_BURST) {
				tx_all(d, v, nv);
				nv = 0;
			}
		}
	}
	if (nv)
		tx_all(d, v, nv);
	return (int)n;
}

static void dst_group(struct dpdk_transport *d, const struct transport_msg *m, unsigned k, uint32_t *ip,
		      uint16_t *port, uint8_t mac[6])
{
	(void)m;
	const struct transport_config *c = &d->base.cfg;
	if (c->ndests) {
		*ip = c->dests[k].ip;
		*port = c->dests[k].port;
		neigh_resolve(d, *ip, mac);
	} else {
		*ip = c->group.ip;
		*port = c->group.port;
		if (netpkt_ip_is_mcast(*ip))
			netpkt_mcast_mac(*ip, mac);
		else
			neigh_resolve(d, *ip, mac);
	}
}

static void dst_peer(struct dpdk_transport *d, const struct transport_msg *m, unsigned k, uint32_t *ip,
		     uint16_t *port, uint8_t mac[6])
{
	(void)k;
	*ip = m->peer.ip;
	*port = m->peer.port;
	if (netpkt_ip_is_mcast(*ip))
		netpkt_mcast_mac(*ip, mac);
	else
		neigh_resolve(d, *ip, mac);
}

static int dpdk_send_group(struct transport *t, const struct transport_msg *m, unsigned n)
{
	struct dpdk_transport *d = (struct dpdk_transport *)t;
	return send_frames(d, m, n, t->cfg.ndests ? t->cfg.ndests : 1, dst_group);
}

static int dpdk_send_to(struct transport *t, const struct transport_msg *m, unsigned n)
{
	return send_frames((struct dpdk_transport *)t, m, n, 1, dst_peer);
}

/* ---- receive ---- */

/* Poll the RX queues (round robin) for up to n frames into v. */
static unsigned rx_poll(struct dpdk_transport *d, struct rte_mbuf **v, unsigned n)
{
	unsigned got = 0;
	for (unsigned i = 0; i < d->nq && got < n; i++) {
		unsigned q = d->rxq_next;
		d->rxq_next = (d->rxq_next + 1) % d->nq;
		got += rte_eth_rx_burst(d->port, (uint16_t)q, v + got, (uint16_t)(n - got));
	}
	if (got)
		d->last_rx_ns = now_mono_ns();
	return got;
}

/* Is this UDP datagram for us: our port, and our address or our group? */
static int for_us(const struct dpdk_transport *d, const struct netpkt_info *pi)
{
	const struct transport_config *c = &d->base.cfg;
	if (pi->dst_port != c->bind.port)
		return 0;
	return pi->dst_ip == c->bind.ip || (c->group.ip && pi->dst_ip == c->group.ip) || pi->dst_ip == 0xffffffffu;
}

static void handle_arp(struct dpdk_transport *d, const struct netpkt_info *pi)
{
	uint32_t me = d->base.cfg.bind.ip;
	/* learn the sender of any ARP aimed at us (request or reply) */
	if (pi->dst_ip == me)
		neigh_learn(d, pi->src_ip, pi->src_mac);
	if (pi->arp_op == 1 && pi->dst_ip == me && me != 0) {
		uint8_t frame[NETPKT_ARP_SIZE];
		netpkt_arp_build(frame, 2, d->mac, me, pi->src_mac, pi->src_ip);
		send_raw_frame(d, frame, sizeof frame);
	}
}

static int dpdk_recv_raw(struct transport *t, struct transport_msg *m, unsigned n)
{
	struct dpdk_transport *d = (struct dpdk_transport *)t;
	free_mbufs(d->held, &d->nheld);
	if (n > DPDK_BURST)
		n = DPDK_BURST;

	struct rte_mbuf *v[DPDK_BURST];
	unsigned nv = 0;
	if (d->nstash) {
		unsigned k = MIN(n, d->nstash);
		memcpy(v, d->stash, k * sizeof v[0]);
		memmove(d->stash, d->stash + k, (d->nstash - k) * sizeof v[0]);
		d->nstash -= k;
		nv = k;
	}
	if (nv < n)
		nv += rx_poll(d, v + nv, n - nv);

	unsigned got = 0;
	for (unsigned i = 0; i < nv; i++) {
		struct rte_mbuf *mb = v[i];
		struct netpkt_info pi;
		unsigned pflags = 0;
		uint64_t ck = mb->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
		if (d->rx_ip_csum && ck == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
			pflags |= NETPKT_IP_CSUM_GOOD;
		int rc = mb->nb_segs == 1 && !(d->rx_ip_csum && ck == RTE_MBUF_F_RX_IP_CKSUM_BAD)
				 ? netpkt_parse(rte_pktmbuf_mtod(mb, const uint8_t *), mb->data_len, pflags, &pi)
				 : MTR_EMALFORMED;
		if (rc == 0 && pi.kind == NETPKT_ARP) {
			handle_arp(d, &pi);
			rte_pktmbuf_free(mb);
			continue;
		}
		if (rc < 0 || !for_us(d, &pi)) {
			t->ctr.drops[TRANSPORT_DROP_NOTIP]++;
			rte_pktmbuf_free(mb);
			continue;
		}
		if (!(pi.src_mac[0] & 1))
			neigh_learn(d, pi.src_ip, pi.src_mac);
		m[got].buf = (uint8_t *)pi.payload;
		m[got].len = pi.payload_len;
		m[got].peer.ip = pi.src_ip;
		m[got].peer.port = pi.src_port;
		d->held[d->nheld++] = mb;
		got++;
	}
	/* transport_recv() checks integrity and counts (transport_filter) */
	return (int)got;
}

static __thread int slack_set; /* this thread's timer slack is 1 us */

static int dpdk_wait(struct transport *t, int fd, int timeout_ms)
{
	struct dpdk_transport *d = (struct dpdk_transport *)t;
	if (d->nstash)
		return 1;
	uint64_t start = now_mono_ns();
	uint64_t limit = timeout_ms < 0 ? UINT64_MAX : (uint64_t)timeout_ms * 1000000u;
	uint64_t sleep = DPDK_SLEEP_MIN_NS;
	for (unsigned polls = 0;; polls++) {
		d->nstash = rx_poll(d, d->stash, DPDK_BURST);
		if (d->nstash)
			return 1;
		uint64_t el = now_mono_ns() - start;
		if (el >= limit) {
			update_hw_drops(d);
			return 0;
		}
		if (t->cfg.busy_poll || polls < DPDK_SPIN_POLLS) {
			if (fd >= 0 && t->cfg.busy_poll && sleep_or_fd(fd, 0))
				return 1;
			rte_pause();
			continue;
		}
		/* sleep-on-idle: short sleeps while frames flow, then growing
		 * ones, never past the deadline */
		if (!slack_set) {
			prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
			slack_set = 1;
		}
		uint64_t s = MIN(sleep, limit - el);
		if (sleep_or_fd(fd, s))
			return 1;
		if (now_mono_ns() - d->last_rx_ns >= DPDK_HOT_NS)
			sleep = MIN(sleep * 2, (uint64_t)DPDK_SLEEP_MAX_NS);
	}
}

static int dpdk_fd(struct transport *t)
{
	(void)t;
	return -1; /* no RX interrupts on the ports we use: see transport_wait */
}

/* ---- open / close ---- */

static void port_release(struct dpdk_transport *d)
{
	free_mbufs(d->held, &d->nheld);
	free_mbufs(d->stash, &d->nstash);
	if (d->started) {
		update_hw_drops(d);
		rte_eth_dev_stop(d->port);
	}
	/* A device we attached is detached again (its driver closes the
	 * port); one that came from the EAL arguments is only closed. */
	if (!d->attached || rte_eal_hotplug_remove(d->is_vdev ? "vdev" : "pci", d->devname) != 0)
		if (d->started)
			rte_eth_dev_close(d->port);
	if (d->pool)
		rte_mempool_free(d->pool);
}

static void dpdk_close(struct transport *t)
{
	struct dpdk_transport *d = (struct dpdk_transport *)t;
	const struct transport_counters *c = &t->ctr;
	mtr_log(LOG_INFO, "[dpdk] close %s: in %" PRIu64 " out %" PRIu64 " notip %" PRIu64 " overflow %" PRIu64
		" txlost %" PRIu64,
		d->devname, c->dgrams_in, c->dgrams_out, c->drops[TRANSPORT_DROP_NOTIP],
		c->drops[TRANSPORT_DROP_OVERFLOW], d->tx_lost);
	port_release(d);
	free(d);
	eal_unref();
}

static const struct transport_ops dpdk_ops = {
	.name = "dpdk",
	.send_group = dpdk_send_group,
	.send_to = dpdk_send_to,
	.recv_raw = dpdk_recv_raw,
	.wait = dpdk_wait,
	.fd = dpdk_fd,
	.close = dpdk_close,
};

/* Find the port named by the device string, probing the device if needed. */
static int port_attach(struct dpdk_transport *d, const char *devargs)
{
	size_t nl = strcspn(devargs, ",");
	if (nl == 0 || nl >= sizeof d->devname)
		return MTR_ECONFIG;
	memcpy(d->devname, devargs, nl);
	d->devname[nl] = 0;
	if (rte_eth_dev_get_port_by_name(d->devname, &d->port) == 0) {
		/* created by --vdev in the EAL arguments, or a probed PCI device */
		return 0;
	}
	if (rte_dev_probe(devargs) != 0) {
		mtr_log(LOG_ERROR, "[dpdk] cannot attach port '%s': %s", devargs, rte_strerror(rte_errno));
		return MTR_EIO;
	}
	d->attached = 1;
	d->is_vdev = strncmp(d->devname, "net_", 4) == 0;
	if (rte_eth_dev_get_port_by_name(d->devname, &d->port) != 0) {
		mtr_log(LOG_ERROR, "[dpdk] device '%s' attached but it is not an Ethernet port", d->devname);
		return MTR_ECONFIG;
	}
	return 0;
}

static int port_setup(struct dpdk_transport *d)
{
	const struct transport_config *c = &d->base.cfg;
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int rc;

	if ((rc = rte_eth_dev_info_get(d->port, &info)) != 0) {
		mtr_log(LOG_ERROR, "[dpdk] %s: no device info: %s", d->devname, rte_strerror(-rc));
		return MTR_EIO;
	}
	memset(&conf, 0, sizeof conf);
	unsigned nq = c->dpdk_queues ? c->dpdk_queues : 1;
	nq = MIN(nq, DPDK_MAX_QUEUES);
	nq = MIN(nq, (unsigned)info.max_rx_queues);
	nq = MIN(nq, (unsigned)info.max_tx_queues);
	if (nq == 0)
		nq = 1;
	/* several RX queues are only useful when the port spreads traffic
	 * over them (RSS on the UDP/IP tuple) */
	uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
	if (nq > 1 && rss) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = rss;
	} else if (nq > 1) {
		mtr_log(LOG_INFO, "[dpdk] %s has no RSS: one queue instead of %u", d->devname, nq);
		nq = 1;
	}
	d->nq = nq;
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
		d->tx_ip_csum = 1;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
		d->rx_ip_csum = 1;
	}
	if ((rc = rte_eth_dev_configure(d->port, (uint16_t)nq, (uint16_t)nq, &conf)) != 0) {
		mtr_log(LOG_ERROR, "[dpdk] %s: configure: %s", d->devname, rte_strerror(-rc));
		return MTR_EIO;
	}
	uint16_t nrx = DPDK_RING_SIZE, ntx = DPDK_RING_SIZE;
	rte_eth_dev_adjust_nb_rx_tx_desc(d->port, &nrx, &ntx);

	/* mbufs: every RX and TX ring full, plus bursts held by us and by the
	 * caller, plus the per-core cache; or what the config says */
	size_t mtu = c->mtu ? c->mtu : WIRE_DEFAULT_MTU;
	unsigned cache = 256;
	unsigned nmb = c->dpdk_mbufs ? c->dpdk_mbufs : nq * (nrx + ntx) + 4 * DPDK_BURST + 2 * cache;
	if (nmb < 4 * DPDK_BURST + 2 * cache)
		nmb = 4 * DPDK_BURST + 2 * cache;
	size_t room = MAX((size_t)RTE_MBUF_DEFAULT_DATAROOM, mtu + NETPKT_HDR_SIZE + 4);
	if (room > UINT16_MAX - RTE_PKTMBUF_HEADROOM) {
		mtr_log(LOG_ERROR, "[dpdk] mtu %zu too large for one mbuf", mtu);
		return MTR_ECONFIG;
	}
	d->max_payload = (uint16_t)(room - NETPKT_HDR_SIZE);
	if (d->max_payload > WIRE_MAX_DGRAM)
		d->max_payload = WIRE_MAX_DGRAM;
	char pname[RTE_MEMPOOL_NAMESIZE];
	pthread_mutex_lock(&eal_lock);
	snprintf(pname, sizeof pname, "mtr%u_%u", (unsigned)d->port, pool_seq++);
	pthread_mutex_unlock(&eal_lock);
	int socket = rte_eth_dev_socket_id(d->port);
	d->pool = rte_pktmbuf_pool_create(pname, nmb, cache, 0, (uint16_t)(room + RTE_PKTMBUF_HEADROOM),
					  socket < 0 ? (int)rte_socket_id() : socket);
	if (!d->pool) {
		mtr_log(LOG_ERROR, "[dpdk] %s: mbuf pool of %u: %s (raise -m in the EAL arguments?)", d->devname,
			nmb, rte_strerror(rte_errno));
		return MTR_ENOMEM;
	}
	for (unsigned q = 0; q < nq; q++) {
		if ((rc = rte_eth_rx_queue_setup(d->port, (uint16_t)q, nrx, (unsigned)socket, NULL, d->pool)) != 0 ||
		    (rc = rte_eth_tx_queue_setup(d->port, (uint16_t)q, ntx, (unsigned)socket, NULL)) != 0) {
			mtr_log(LOG_ERROR, "[dpdk] %s: queue %u setup: %s", d->devname, q, rte_strerror(-rc));
			return MTR_EIO;
		}
	}
	if ((rc = rte_eth_dev_start(d->port)) != 0) {
		mtr_log(LOG_ERROR, "[dpdk] %s: start: %s", d->devname, rte_strerror(-rc));
		return MTR_EIO;
	}
	d->started = 1;
	/* multicast groups and peers' unicast: take every frame, filter here
	 * (ports that cannot, like memif, deliver everything anyway) */
	rte_eth_promiscuous_enable(d->port);
	rte_eth_allmulticast_enable(d->port);
	struct rte_ether_addr ea;
	if (rte_eth_macaddr_get(d->port, &ea) == 0)
		memcpy(d->mac, ea.addr_bytes, 6);
	struct rte_eth_stats st;
	if (rte_eth_stats_get(d->port, &st) == 0)
		d->hw_missed = st.imissed + st.rx_nombuf;
	return 0;
}

int transport_dpdk_open(const struct transport_config *cfg, struct transport **out)
{
	*out = NULL;
	if (!cfg->dpdk_port || !*cfg->dpdk_port) {
		mtr_log(LOG_ERROR, "[dpdk] no port given (dpdk_port: a vdev string or a PCI address)");
		return MTR_ECONFIG;
	}
	if (cfg->bind.ip == 0 && !cfg->no_recv) {
		mtr_log(LOG_ERROR, "[dpdk] the port needs an IPv4 address of its own (bind address 0.0.0.0)");
		return MTR_ECONFIG;
	}
	int rc = eal_ref(cfg->dpdk_eal);
	if (rc < 0)
		return rc;
	struct dpdk_transport *d = calloc(1, sizeof *d);
	if (!d) {
		eal_unref();
		return MTR_ENOMEM;
	}
	d->base.ops = &dpdk_ops;
	d->base.cfg = *cfg;
	d->ip_id = (uint16_t)now_mono_ns();
	if ((rc = port_attach(d, cfg->dpdk_port)) < 0 || (rc = port_setup(d)) < 0) {
		port_release(d);
		free(d);
		eal_unref();
		return rc;
	}
	/* Give the link up to 2 s to come up (a memif client connecting, an
	 * af_packet interface), so that the first sends are not lost.  A memif
	 * server waits for its client only when it sends. */
	if (!strstr(cfg->dpdk_port, "role=server")) {
		struct rte_eth_link lk;
		for (int i = 0; i < 200; i++) {
			if (rte_eth_link_get_nowait(d->port, &lk) != 0 || lk.link_status)
				break;
			sleep_ns(10000000);
		}
	}
	char mac[18], a[24];
	mtr_log(LOG_INFO, "[dpdk] port %u %s up: mac %s ip %s, %u queue(s)%s%s", (unsigned)d->port, d->devname,
		netpkt_mac_format(d->mac, mac, sizeof mac), transport_addr_format(&cfg->bind, a, sizeof a), d->nq,
		d->tx_ip_csum ? ", tx ip csum offload" : "", cfg->busy_poll ? ", busy polling" : "");
	*out = &d->base;
	return 0;
}

void transport_dpdk_enable(void)
{
	transport_register_dpdk(transport_dpdk_open);
}
