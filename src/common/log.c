/*
 * log.c - the one logging path: level check, timestamp, one line to stderr
 * written with a single write(2) so that lines from threads do not interleave.
 * With log.file, stderr itself is that file (dup2), reopened on SIGHUP.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
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

static log_sink_fn log_sink;
static void *log_sink_arg;

void log_set_sink(log_sink_fn fn, void *arg)
{
	log_sink_arg = arg;
	log_sink = fn;
}

int log_level_from_env(void)
{
	const char *v = getenv("MTR_LOG");
	return v != NULL && log_level_parse(v) >= 0;
}

void log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof log_tag, "%s", tag ? tag : "");
}

/* log.file: its path, and what the last SIGHUP did (0: nothing to say,
 * 1: reopened, -errno: failed), said by the next line written */
static char log_path[4096];
static atomic_int log_reopened;

static int open_onto_stderr(void)
{
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	int rc = fd == STDERR_FILENO ? 0 : dup2(fd, STDERR_FILENO) < 0 ? -errno : 0;
	if (fd != STDERR_FILENO)
		close(fd);
	return rc;
}

int log_open_file(const char *path)
{
	if (path == NULL || *path == '\0') {
		log_path[0] = '\0';
		return 0;
	}
	if (strlen(path) >= sizeof log_path)
		return -ENAMETOOLONG;
	memcpy(log_path, path, strlen(path) + 1);
	int rc = open_onto_stderr();
	if (rc != 0)
		log_path[0] = '\0';
	return rc;
}

void log_reopen(void)
{
	int saved = errno;
	if (log_path[0] == '\0') {
		atomic_store(&log_reopened, 2);
	} else {
		int rc = open_onto_stderr();
		atomic_store(&log_reopened, rc == 0 ? 1 : rc);
	}
	errno = saved;
}

static void log_write_line(int level, const char *fmt, va_list ap);

static void log_note_reopen(void)
{
	int r = atomic_exchange(&log_reopened, 0);
	if (r == 0)
		return;
	if (r == 1)
		mtr_log(LOG_INFO, "log file %s reopened (SIGHUP)", log_path);
	else if (r == 2)
		mtr_log(LOG_INFO, "SIGHUP: no log.file is set (lines go to stderr): nothing to reopen");
	else
		log_write(LOG_ERROR, "SIGHUP: cannot reopen log file %s: %s; lines still go to the old file", log_path,
			  strerror(-r));
}

void log_write(int level, const char *fmt, ...)
{
	va_list ap;
	if (atomic_load_explicit(&log_reopened, memory_order_relaxed) != 0)
		log_note_reopen();
	va_start(ap, fmt);
	log_write_line(level, fmt, ap);
	va_end(ap);
}

static void log_write_line(int level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_TRACE)
		level = LOG_TRACE;
	if (log_sink != NULL) {
		int m = vsnprintf(line, sizeof line, fmt, ap);
		if (m >= 0) {
			for (char *c = line; *c; c++) /* one event, one line */
				if (*c == '\n')
					*c = ' ';
			log_sink(log_sink_arg, level, line);
		}
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %-5s %s%s%s", ts.tv_nsec / 1000000L,
			      log_names[level], log_tag[0] ? "[" : "", log_tag, log_tag[0] ? "] " : "");
	int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
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
