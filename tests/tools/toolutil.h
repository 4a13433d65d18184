/*
 * toolutil.h - small helpers shared by the test tools (header-only):
 * clocks, a seeded random sequence, and a stop flag set by SIGTERM/SIGINT.
 * Used by mtrload, mtrbank and mtrnfq (tests/tools, doc/faults.md).
 */
#ifndef MTR_TOOLUTIL_H
#define MTR_TOOLUTIL_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

/* Set to 1 by SIGTERM or SIGINT once tool_catch_stop() was called. */
static volatile sig_atomic_t tool_stopping;

static void tool_on_stop(int sig)
{
	(void)sig;
	tool_stopping = 1;
}

/* SIGTERM and SIGINT set tool_stopping instead of ending the process. */
static inline void tool_catch_stop(void)
{
	struct sigaction sa = {.sa_handler = tool_on_stop};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* Microseconds of CLOCK_MONOTONIC (durations). */
static inline uint64_t tool_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Milliseconds of CLOCK_REALTIME: comparable with `date +%s%3N` in a
 * suite, and between processes. */
static inline uint64_t tool_real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The next number of the xorshift64* sequence in *s (never 0: seed it with
 * a non-zero value).  Seeded draws for tests, not cryptography. */
static inline uint64_t tool_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

#endif
