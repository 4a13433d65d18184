/*
 * log.c - the one logging path: level check, timestamp, one line to stderr
 * written with a single write(2) so that lines from threads do not interleave.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_from_env(void)
{
	const char *v = getenv("MTR_LOG");
	int l = v ? log_level_parse(v) : -1;
	return l < 0 ? LOG_INFO : l;
}

int log_threshold = LOG_INFO;
static char log_tag[64];
static int log_env_read;

static const char *const log_names[] = { "ERROR", "WARN", "INFO", "DEBUG", "TRACE" };

__attribute__((constructor)) static void log_init(void)
{
	if (!log_env_read) {
		log_threshold = log_from_env();
		log_env_read = 1;
	}
}

int log_set_level(int level)
{
	int old = log_threshold;
	log_env_read = 1;
	if (level >= LOG_ERROR && level <= LOG_TRACE)
		log_threshold = level;
	return old;
}

int log_level_parse(const char *name)
{
	for (int i = 0; i <= LOG_TRACE; i++)
		if (strcasecmp(name, log_names[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return LOG_WARN;
	if (name[0] >= '0' && name[0] <= '4' && name[1] == '\0')
		return name[0] - '0';
	return -1;
}

void log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof log_tag, "%s", tag ? tag : "");
}

void log_write(int level, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_TRACE)
		level = LOG_TRACE;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %-5s %s%s%s", ts.tv_nsec / 1000000L,
			      log_names[level], log_tag[0] ? "[" : "", log_tag, log_tag[0] ? "] " : "");
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	/* one event, one line: fold embedded newlines */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

static _Atomic unsigned long long assert_failures;

int log_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char vals[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vals, sizeof vals, fmt, ap);
	va_end(ap);
	const char *base = strrchr(file, '/');
	log_write(LOG_ERROR, "invariant broken at %s:%d: %s (%s)", base ? base + 1 : file, line, cond, vals);
#if defined(MTR_ASSERT_ABORT) || defined(MTR_FUZZ)
	abort();
#else
	assert_failures++;
	return 0;
#endif
}

unsigned long long log_assert_failures(void)
{
	return assert_failures;
}
