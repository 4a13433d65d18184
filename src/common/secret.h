/*
 * secret.h - reading a password from a terminal or a pipe, without echo
 * (mtrproxy --hash-password, mtrsql's password prompt).
 */
#ifndef MTR_SECRET_H
#define MTR_SECRET_H

#include <stddef.h>

/*
 * Read one line from fd into buf (at most cap - 1 bytes kept, NUL-terminated;
 * the newline and a trailing CR dropped, the rest of a longer line read and
 * dropped).  When fd is a terminal: prompt (may be NULL) is written to
 * out_fd first, echo is off while the line is typed, and a newline is
 * written to out_fd afterwards.  Returns the length, or -1 at EOF before
 * any byte or on a read error.  The caller wipes buf after use.
 */
long secret_read_line(int fd, int out_fd, const char *prompt, char *buf, size_t cap);

#endif
