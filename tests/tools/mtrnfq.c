/*
 * mtrnfq - delay, reorder and corrupt the packets of one NFQUEUE, for the
 * fault suite (tests/integration/faults.sh, doc/faults.md).  A stand-in for
 * `tc netem` on kernels without sch_netem.
 *
 *   mtrnfq [--queue N (0)] [--delay MS (0)] [--jitter MS (0)] [--flip P (0)]
 *          [--seed S (1)]
 *
 * Run it in the network namespace whose iptables rule sends packets to the
 * queue (`-j NFQUEUE --queue-num N --queue-bypass`: while no program listens
 * the packets pass).  Every packet is held DELAY + uniform(0, JITTER)
 * milliseconds and then accepted; different holds reorder them.  With
 * probability P a UDP packet gets one random bit of its payload flipped and
 * its UDP checksum cleared (0 = none, RFC 768), so that the receiver's
 * kernel delivers it and the application's own integrity check must reject
 * it.  The random draws come from SEED.  Prints "ready" once it listens;
 * on SIGTERM or SIGINT it accepts what it still holds and prints
 *
 *   packets N held H flipped F
 *
 * Exit status 0, 1 on an error (the queue cannot be bound: no root, no
 * nfnetlink_queue in the kernel), 2 on a usage error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "toolutil.h"

#define MAX_HELD 65536

/* One packet waiting for its verdict; data is set when it was changed. */
struct held {
	uint64_t due_us;
	uint32_t id;
	uint32_t len;
	unsigned char *data;
};

struct nfq {
	struct nfq_q_handle *qh;
	uint64_t delay_us, jitter_us;
	double flip;
	uint64_t rng;
	struct held heap[MAX_HELD]; /* min-heap on due_us */
	size_t n;
	uint64_t packets, held, flipped;
};

/* the seeded draws */
static uint64_t next_rand(struct nfq *q) { return tool_rand(&q->rng); }

static double next_unit(struct nfq *q) { return (double)(next_rand(q) >> 11) / (double)(1ULL << 53); }

static void release(struct nfq *q, struct held *h)
{
	nfq_set_verdict(q->qh, h->id, NF_ACCEPT, h->data ? h->len : 0, h->data);
	free(h->data);
}

static void heap_push(struct nfq *q, struct held h)
{
	size_t i = q->n++;
	while (i > 0 && q->heap[(i - 1) / 2].due_us > h.due_us) {
		q->heap[i] = q->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	q->heap[i] = h;
}

static struct held heap_pop(struct nfq *q)
{
	struct held top = q->heap[0], last = q->heap[--q->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->heap[c + 1].due_us < q->heap[c].due_us)
			c++;
		if (q->heap[c].due_us >= last.due_us)
			break;
		q->heap[i] = q->heap[c];
		i = c;
	}
	if (q->n)
		q->heap[i] = last;
	return top;
}

/* Flip one bit of the UDP payload of the IPv4 packet p and clear the UDP
 * checksum; 0 when p is no such packet (then it is left alone). */
static int flip_bit(struct nfq *q, unsigned char *p, uint32_t len)
{
	if (len < 20 || (p[0] >> 4) != 4 || p[9] != 17)
		return 0;
	uint32_t ihl = (uint32_t)(p[0] & 15) * 4;
	if (len <= ihl + 8)
		return 0;
	uint32_t span = len - ihl - 8;
	uint64_t bit = next_rand(q) % ((uint64_t)span * 8);
	p[ihl + 8 + bit / 8] ^= (unsigned char)(1u << (bit % 8));
	p[ihl + 6] = p[ihl + 7] = 0;
	return 1;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *arg)
{
	(void)qh;
	(void)msg;
	struct nfq *q = arg;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	if (!ph)
		return 0;
	struct held h = {.id = ntohl(ph->packet_id)};
	unsigned char *payload;
	int len = nfq_get_payload(nfa, &payload);
	q->packets++;
	if (len > 0 && q->flip > 0 && next_unit(q) < q->flip) {
		/* nfq_set_verdict sends the data padded to 4 bytes: room for it */
		h.data = calloc(1, ((size_t)len + 3) / 4 * 4);
		if (h.data) {
			memcpy(h.data, payload, (size_t)len);
			h.len = (uint32_t)len;
			if (flip_bit(q, h.data, h.len)) {
				q->flipped++;
			} else {
				free(h.data);
				h.data = NULL;
			}
		}
	}
	uint64_t hold = q->delay_us + (q->jitter_us ? next_rand(q) % (q->jitter_us + 1) : 0);
	if (hold == 0 || q->n == MAX_HELD) {
		release(q, &h);
		return 0;
	}
	h.due_us = tool_mono_us() + hold;
	q->held++;
	heap_push(q, h);
	return 0;
}

static double number(const char *s, const char *name)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *s == 0 || *end || v < 0) {
		fprintf(stderr, "mtrnfq: bad value '%s' for --%s (a number >= 0)\n", s, name);
		exit(2);
	}
	return v;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrnfq [--queue N (0)] [--delay MS (0)] [--jitter MS (0)] [--flip P (0)] [--seed S (1)]\n");
}

int main(int argc, char **argv)
{
	static struct nfq q;
	double queue = 0, seed = 1;
	static const struct option opts[] = {
		{"queue", required_argument, NULL, 'q'}, {"delay", required_argument, NULL, 'd'},
		{"jitter", required_argument, NULL, 'j'}, {"flip", required_argument, NULL, 'f'},
		{"seed", required_argument, NULL, 's'},  {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'q':
			queue = number(optarg, "queue");
			break;
		case 'd':
			q.delay_us = (uint64_t)(number(optarg, "delay") * 1000);
			break;
		case 'j':
			q.jitter_us = (uint64_t)(number(optarg, "jitter") * 1000);
			break;
		case 'f':
			q.flip = number(optarg, "flip");
			break;
		case 's':
			seed = number(optarg, "seed");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || queue > 65535 || q.flip > 1) {
		usage(stderr);
		return 2;
	}
	q.rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;

	struct nfq_handle *h = nfq_open();
	if (!h) {
		fprintf(stderr, "mtrnfq: nfq_open: %s (needs root and nfnetlink_queue)\n", strerror(errno));
		return 1;
	}
	q.qh = nfq_create_queue(h, (uint16_t)queue, on_packet, &q);
	if (!q.qh || nfq_set_mode(q.qh, NFQNL_COPY_PACKET, 0xffff) < 0) {
		fprintf(stderr, "mtrnfq: cannot bind queue %.0f: %s\n", queue, strerror(errno));
		nfq_close(h);
		return 1;
	}
	nfq_set_queue_maxlen(q.qh, MAX_HELD);
	tool_catch_stop();
	int fd = nfq_fd(h);
	static char buf[1 << 17];
	printf("ready\n");
	fflush(stdout);
	while (!tool_stopping) {
		uint64_t now = tool_mono_us();
		while (q.n && q.heap[0].due_us <= now) {
			struct held x = heap_pop(&q);
			release(&q, &x);
		}
		int wait_ms = q.n ? (int)((q.heap[0].due_us - now + 999) / 1000) : 200;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, wait_ms) <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n > 0)
			nfq_handle_packet(h, buf, (int)n);
		else if (n < 0 && errno == ENOBUFS)
			fprintf(stderr, "mtrnfq: queue overrun: the kernel dropped packets\n");
	}
	while (q.n) {
		struct held x = heap_pop(&q);
		release(&q, &x);
	}
	printf("packets %llu held %llu flipped %llu\n", (unsigned long long)q.packets, (unsigned long long)q.held,
	       (unsigned long long)q.flipped);
	nfq_destroy_queue(q.qh);
	nfq_close(h);
	return 0;
}
