/*
 * metronome.h - the public interface of Metronome, a replicated SQLite.
 *
 * Every function returns 0 (MTR_OK) or a negative MTR_E* code; mtr_strerror()
 * turns a code into a sentence.  Names are prefixed mtr_ / MTR_.  Handles are
 * opaque.  This header grows with the client library (see doc/); what is here
 * now is the error contract every module of the project shares.
 */
#ifndef METRONOME_H
#define METRONOME_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MTR_API __attribute__((visibility("default")))
#else
#define MTR_API
#endif

/*
 * The error table: X(NAME, value, sentence).  Codes are negative so that a
 * function can return either a count or an error.  Values never change once
 * released; new codes are appended.
 */
#define MTR_ERRNO_MAP(X)                                                        \
	X(NOMEM, -1, "out of memory")                                           \
	X(INVAL, -2, "invalid argument")                                        \
	X(MALFORMED, -3, "malformed message")                                   \
	X(TRUNCATED, -4, "message truncated")                                   \
	X(INTEGRITY, -5, "integrity check failed (hash or MAC mismatch)")       \
	X(VERSION, -6, "unsupported protocol version")                          \
	X(MAGIC, -7, "not a Metronome datagram (bad magic)")                    \
	X(CLUSTER, -8, "message from another cluster")                          \
	X(TOOBIG, -9, "size exceeds the configured limit")                      \
	X(IO, -10, "input/output error")                                        \
	X(AGAIN, -11, "resource temporarily unavailable, try again")            \
	X(TIMEDOUT, -12, "operation timed out")                                 \
	X(CLOSED, -13, "connection or transport closed")                        \
	X(SYNTAX, -14, "SQL syntax error")                                      \
	X(REFUSED, -15, "statement refused: it cannot be made deterministic")   \
	X(NOTSUP, -16, "operation not supported")                               \
	X(SQL, -17, "SQL error")                                                \
	X(BUSY, -18, "busy")                                                    \
	X(EXIST, -19, "already exists")                                         \
	X(NOENT, -20, "no such entry")                                          \
	X(CONNECT, -21, "cannot connect")                                       \
	X(CONFIG, -22, "invalid configuration")                                 \
	X(DUPLICATE, -23, "duplicate")                                          \
	X(STALE, -24, "stale message (older ballot or instance)")               \
	X(FULL, -25, "buffer full, retry later")

enum {
	MTR_OK = 0,
#define MTR__ERRNO_ENUM(name, value, text) MTR_E##name = value,
	MTR_ERRNO_MAP(MTR__ERRNO_ENUM)
#undef MTR__ERRNO_ENUM
};

/* The sentence for an error code (static storage; never NULL). */
MTR_API const char *mtr_strerror(int code);

/* The symbolic name of an error code, such as "MTR_EINVAL" (static storage). */
MTR_API const char *mtr_errname(int code);

#ifdef __cplusplus
}
#endif
#endif /* METRONOME_H */
