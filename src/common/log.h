/*
 * log.h - one line per event, with a level.
 *
 * mtr_log(level, fmt, ...) checks the level before it formats anything, so a
 * disabled trace costs one comparison.  The threshold comes from the
 * environment variable MTR_LOG (error, warn, info, debug, trace; default
 * info) or from log_set_level().  Lines go to stderr (or the log.file that
 * log_open_file() put there) as
 *   2026-11-23T19:53:00.123Z INFO  [component] message
 */
#ifndef MTR_LOG_H
#define MTR_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

/* Current threshold; events above it are not formatted. */
extern int log_threshold;

/* Set the threshold; returns the previous one. */
int log_set_level(int level);

/* Parse "error".."trace" (or 0..4); returns the level or -1. */
int log_level_parse(const char *name);

/* Tag written after the level on every line, e.g. the process role and id
 * ("server 2"); the string is copied. */
void log_set_tag(const char *tag);

/* Where lines go instead of stderr: fn(arg, level, message) with the
 * message alone (no timestamp, no level, no newline), on the thread that
 * logs, concurrently from several threads.  NULL: stderr again.  Set it
 * before any thread logs (it is read without a lock). */
typedef void (*log_sink_fn)(void *arg, int level, const char *msg);
void log_set_sink(log_sink_fn fn, void *arg);

/* Whether MTR_LOG set the threshold. */
int log_level_from_env(void);

/*
 * log.file: make stderr (every log line, and whatever else writes there)
 * append to path, created 0640 if missing; NULL or "" keeps stderr.  0 or
 * -errno (stderr unchanged).  Call before starting threads.
 */
int log_open_file(const char *path);

/*
 * Reopen the log.file (logrotate renamed it): async-signal-safe (open,
 * dup2, close), for a SIGHUP handler.  The next line logged says what
 * happened ("log file F reopened (SIGHUP)", or why it could not be, or
 * that no log.file is set).
 */
void log_reopen(void);

/* Format and write one line (use mtr_log, which checks the level first). */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mtr_log(level, ...)                          \
	do {                                         \
		if ((level) <= log_threshold)        \
			log_write((level), __VA_ARGS__); \
	} while (0)

/*
 * mtr_assert(cond, fmt, ...): an invariant of ours (never a check of outside
 * input: that is a counted drop or an error).  When cond is false it logs
 * one line at error, "invariant broken at file:line: cond (values)", with
 * the values fmt formats, and then:
 *   - in debug, sanitizer and fuzz builds (MTR_ASSERT_ABORT, set by
 *     configure --enable-debug / --enable-sanitize, and MTR_FUZZ) aborts;
 *   - in release builds counts it (log_assert_failures(), shown as
 *     "invariants_broken" in mtr_stats) and evaluates to 0, so that a
 *     caller where going on is safe writes
 *       if (!mtr_assert(x == y, "x %llu y %llu", x, y)) return MTR_EINVAL;
 * It evaluates to 1 when cond holds.
 */
#define mtr_assert(cond, ...) \
	(__builtin_expect(!!(cond), 1) ? 1 : log_assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__))

/* The failure path of mtr_assert: logs, then aborts or counts; returns 0. */
int log_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* How many mtr_assert failures this process has counted (release builds). */
unsigned long long log_assert_failures(void);

#endif
