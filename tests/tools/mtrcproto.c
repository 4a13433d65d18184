/*
 * mtrcproto.c - speaks the client protocol (cproto.h) by hand, one step at
 * a time, for tests/integration/client_auth.sh: what a careless or hostile
 * client does (no HELLO, a slow HELLO, a frame that announces 64 MiB and
 * stops, a reused request id, an idle connection) and what the proxy
 * answers.
 *
 *   mtrcproto HOST:PORT STEP...
 *     hello [auth]        send HELLO (with the AUTH flag)
 *     auth USER PASSWORD  send AUTH
 *     welcome             wait for WELCOME; prints "welcome"
 *     query ID SQL        send QUERY with request id ID
 *     answer              wait for one ANSWER; prints "answer ID STATUS"
 *     announce N          send the header of a QUERY frame of N bytes
 *     junk N              send N zero bytes; prints "sent N"
 *     trickle N MS        send N bytes of a HELLO frame, one every MS ms
 *                         (stops when the proxy closes)
 *     sleep MS
 *     closewait MS        wait up to MS ms for the proxy to close; prints
 *                         "bye STATUS MESSAGE" for a BYE, then "closed
 *                         after T ms" (T since the connection) or "open
 *                         after T ms"
 * Exit status: 0, 1 when a step fails (what happened is printed), 2 usage.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cproto.h"
#include "metronome.h"
#include "util.h"

static int fd = -1;
static uint64_t t0;
static uint8_t in[1 << 16];
static size_t inlen;
static int closed;

static uint64_t ms(void) { return now_mono_ns() / 1000000u; }

static int send_all(const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_buf(struct cproto_buf *b)
{
	int rc = send_all(b->p, b->len);
	cproto_buf_free(b);
	return rc;
}

/* Wait up to tmo ms for one frame into *f (its bytes stay in `in` until
 * the next call).  1: a frame, 0: timeout, -1: closed. */
static long used;
static int next_frame(int tmo, struct cproto_frame *f)
{
	if (used > 0) {
		memmove(in, in + used, inlen - (size_t)used);
		inlen -= (size_t)used;
		used = 0;
	}
	uint64_t end = ms() + (uint64_t)tmo;
	for (;;) {
		long n = cproto_frame_next(in, inlen, sizeof in - 4, f);
		if (n > 0) {
			used = n;
			return 1;
		}
		if (n < 0 || closed)
			return -1;
		uint64_t now = ms();
		if (now >= end)
			return 0;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t r = recv(fd, in + inlen, sizeof in - inlen, 0);
		if (r <= 0) {
			closed = 1;
			continue;
		}
		inlen += (size_t)r;
	}
}

static int print_bye(const struct cproto_frame *f)
{
	struct cproto_bye b;
	if (f->type == CPROTO_T_BYE && cproto_get_bye(f, &b) == 0) {
		printf("bye %s %.*s\n", mtr_errname(b.status), (int)b.msg_len, b.msg);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: mtrcproto HOST:PORT STEP... (see the source)\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	char host[64];
	snprintf(host, sizeof host, "%s", argv[1]);
	char *colon = strrchr(host, ':');
	if (!colon)
		return 2;
	*colon = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return 2;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		printf("cannot connect: %s\n", strerror(errno));
		return 1;
	}
	t0 = ms();
	for (int i = 2; i < argc; i++) {
		const char *op = argv[i];
		struct cproto_buf b = {0};
		struct cproto_frame f;
		if (!strcmp(op, "hello")) {
			int a = i + 1 < argc && !strcmp(argv[i + 1], "auth");
			i += a;
			struct cproto_hello h = {.version = CPROTO_VERSION, .client_id = 77, .flags = a ? CPROTO_HELLO_AUTH : 0};
			if (cproto_put_hello(&b, &h) || send_buf(&b))
				goto broken;
		} else if (!strcmp(op, "auth") && i + 2 < argc) {
			struct cproto_auth au = {.user = argv[i + 1], .user_len = (uint16_t)strlen(argv[i + 1]),
						 .password = argv[i + 2], .password_len = (uint16_t)strlen(argv[i + 2])};
			i += 2;
			if (cproto_put_auth(&b, &au) || send_buf(&b))
				goto broken;
		} else if (!strcmp(op, "welcome")) {
			int r = next_frame(15000, &f);
			if (r == 1 && f.type == CPROTO_T_WELCOME) {
				printf("welcome\n");
				continue;
			}
			if (r != 1 || !print_bye(&f))
				printf("no WELCOME\n");
			return 1;
		} else if (!strcmp(op, "query") && i + 2 < argc) {
			struct cproto_query q = {.request = strtoull(argv[i + 1], NULL, 10), .sql = argv[i + 2],
						 .sql_len = (uint32_t)strlen(argv[i + 2])};
			i += 2;
			if (cproto_put_query(&b, &q) || send_buf(&b))
				goto broken;
		} else if (!strcmp(op, "answer")) {
			struct cproto_answer a;
			int r = next_frame(15000, &f);
			if (r == 1 && f.type == CPROTO_T_ANSWER && cproto_get_answer(&f, &a) == 0) {
				printf("answer %llu %s\n", (unsigned long long)a.request, a.status ? mtr_errname(a.status) : "OK");
				continue;
			}
			if (r != 1 || !print_bye(&f))
				printf("no ANSWER\n");
			return 1;
		} else if (!strcmp(op, "announce") && i + 1 < argc) {
			uint8_t h[5];
			st32(h, (uint32_t)strtoul(argv[++i], NULL, 10));
			h[4] = CPROTO_T_QUERY;
			if (send_all(h, sizeof h))
				goto broken;
		} else if (!strcmp(op, "junk") && i + 1 < argc) {
			size_t n = strtoull(argv[++i], NULL, 10);
			static uint8_t z[65536];
			while (n) {
				size_t k = n < sizeof z ? n : sizeof z;
				if (send_all(z, k))
					goto broken;
				n -= k;
			}
			printf("sent %s\n", argv[i]);
		} else if (!strcmp(op, "trickle") && i + 2 < argc) {
			size_t n = strtoull(argv[i + 1], NULL, 10);
			long step = atol(argv[i + 2]);
			i += 2;
			struct cproto_hello h = {.version = CPROTO_VERSION, .client_id = 78};
			if (cproto_put_hello(&b, &h))
				goto broken;
			for (size_t k = 0; k < n && k < b.len; k++) {
				if (send_all(b.p + k, 1))
					break; /* closed by the proxy: closewait says how */
				struct timespec ts = {step / 1000, (step % 1000) * 1000000L};
				nanosleep(&ts, NULL);
			}
			cproto_buf_free(&b);
		} else if (!strcmp(op, "sleep") && i + 1 < argc) {
			long t = atol(argv[++i]);
			struct timespec ts = {t / 1000, (t % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		} else if (!strcmp(op, "closewait") && i + 1 < argc) {
			int tmo = atoi(argv[++i]), r;
			while ((r = next_frame(tmo, &f)) == 1)
				print_bye(&f);
			printf("%s after %llu ms\n", r < 0 ? "closed" : "open", (unsigned long long)(ms() - t0));
		} else {
			fprintf(stderr, "mtrcproto: unknown step '%s'\n", op);
			return 2;
		}
		continue;
	broken:
		printf("send failed at step %s after %llu ms: %s\n", op, (unsigned long long)(ms() - t0),
		       strerror(errno));
		return 1;
	}
	return 0;
}
