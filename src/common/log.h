/*
 * log.h - one line per event, with a level.
 *
 * mtr_log(level, fmt, ...) checks the level before it formats anything, so a
 * disabled trace costs one comparison.  The threshold comes from the
 * environment variable MTR_LOG (error, warn, info, debug, trace; default
 * info) or from log_set_level().  Lines go to stderr as
 *   2026-11-23T19:53:00.123Z INFO  [component] message
 */
#ifndef MTR_LOG_H
#define MTR_LOG_H

#include <stdarg.h>

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

/* Format and write one line (use mtr_log, which checks the level first). */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mtr_log(level, ...)                          \
	do {                                         \
		if ((level) <= log_threshold)        \
			log_write((level), __VA_ARGS__); \
	} while (0)

#endif
