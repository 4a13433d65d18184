/*
 * httpd.c - the daemons' HTTP endpoint on libmicrohttpd (httpd.h).
 *
 * One listening thread, one thread per connection (a /readyz of a proxy
 * waits up to its probe deadline, which must not hold up a /metrics
 * scrape), at most HTTPD_MAX_CONNS of them.  libmicrohttpd parses the
 * request; we compare the path with three fixed strings and read nothing
 * else of it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "httpd.h"
#include "log.h"
#include "metronome.h"

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

struct httpd {
	struct MHD_Daemon *d;
	struct httpd_ops ops;
	uint16_t port;
};

static mhd_result reply(struct MHD_Connection *c, unsigned code, const char *type, char *body, size_t len,
			int owned)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	if (r == NULL) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	mhd_result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static mhd_result health(struct MHD_Connection *c, int (*fn)(void *, char *, size_t), void *arg,
			 const char *bad)
{
	char why[256] = "";
	char body[300];
	int ok = fn(arg, why, sizeof why);
	int n = snprintf(body, sizeof body, "%s: %s\n", ok ? "ok" : bad, why);
	if (n < 0 || n >= (int)sizeof body)
		n = (int)strlen(body);
	return reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", body,
		     (size_t)n, 0);
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			     const char *version, const char *upload_data, size_t *upload_data_size, void **req)
{
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req;
	struct httpd *h = cls;
	static const char text[] = "text/plain; charset=utf-8";
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		static const char m[] = "only GET and HEAD are served\n";
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, (char *)m, sizeof m - 1, 0);
	}
	if (strcmp(url, "/metrics") == 0) {
		struct metrics_buf b = {0};
		h->ops.metrics(h->ops.arg, &b);
		if (b.oom || b.p == NULL) {
			metrics_buf_free(&b);
			static const char m[] = "out of memory\n";
			return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, (char *)m, sizeof m - 1, 0);
		}
		return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, 1);
	}
	if (strcmp(url, "/readyz") == 0)
		return health(c, h->ops.ready, h->ops.arg, "not ready");
	if (strcmp(url, "/livez") == 0)
		return health(c, h->ops.live, h->ops.arg, "not live");
	static const char m[] = "not found: the paths are /metrics, /readyz and /livez\n";
	return reply(c, MHD_HTTP_NOT_FOUND, text, (char *)m, sizeof m - 1, 0);
}

/* addr into *sa: "host:port" with a numeric port; 0 or MTR_ECONFIG
 * (logged). */
static int resolve(const char *key, const char *addr, struct sockaddr_in *sa)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr || colon[1] == '\0' || (size_t)(colon - addr) >= sizeof host) {
		mtr_log(LOG_ERROR, "%s: '%s' is not an address; write ip:port or host:port (e.g. 127.0.0.1:9501)", key,
			addr);
		return MTR_ECONFIG;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV},
			*res = NULL;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0 || res == NULL) {
		mtr_log(LOG_ERROR, "%s: cannot resolve '%s' to an IPv4 address and port: %s; check the name and the port",
			key, addr, gai_strerror(rc));
		if (res)
			freeaddrinfo(res);
		return MTR_ECONFIG;
	}
	memcpy(sa, res->ai_addr, sizeof *sa);
	freeaddrinfo(res);
	return 0;
}

int httpd_start(const char *key, const char *addr, const struct httpd_ops *ops, struct httpd **out)
{
	*out = NULL;
	struct sockaddr_in sa;
	int rc = resolve(key, addr, &sa);
	if (rc != 0)
		return rc;
	struct httpd *h = calloc(1, sizeof *h);
	if (h == NULL)
		return MTR_ENOMEM;
	h->ops = *ops;
	h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
				ntohs(sa.sin_port), NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPD_MAX_CONNS,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTPD_MAX_PER_IP,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPD_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_END);
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sa.sin_addr, a, sizeof a);
	if (h->d == NULL) {
		mtr_log(LOG_ERROR, "%s: cannot serve HTTP on %s:%u (address in use, or not an address of this host); "
				   "choose another",
			key, a, (unsigned)ntohs(sa.sin_port));
		free(h);
		return MTR_EIO;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : ntohs(sa.sin_port);
	mtr_log(LOG_INFO, "serving /metrics, /readyz and /livez on http://%s:%u", a, (unsigned)h->port);
	*out = h;
	return 0;
}

uint16_t httpd_port(const struct httpd *h)
{
	return h->port;
}

void httpd_stop(struct httpd *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
