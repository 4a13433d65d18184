/*
 * secret.c - one line read without echo (secret.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "secret.h"

long secret_read_line(int fd, int out_fd, const char *prompt, char *buf, size_t cap)
{
	struct termios old, quiet;
	int tty = isatty(fd) && tcgetattr(fd, &old) == 0;
	ssize_t w = 0;
	if (tty) {
		if (prompt)
			w = write(out_fd, prompt, strlen(prompt));
		quiet = old;
		quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	size_t n = 0;
	int any = 0;
	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		any = 1;
		if (ch == '\n')
			break;
		if (n + 1 < cap)
			buf[n++] = ch;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = 0;
	if (tty) {
		tcsetattr(fd, TCSAFLUSH, &old);
		w = write(out_fd, "\n", 1);
	}
	(void)w;
	return any ? (long)n : -1;
}
