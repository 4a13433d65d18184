/*
 * login.c - the password of a URI that names a user (doc/mtrsql.1
 * "Logging in"): mtrsql keeps passwords out of sh->uri (which it shows in
 * messages and in .show) by moving the URI's password into the
 * MTR_PASSWORD variable of its own process, where libmetronome reads it
 * (doc/client.md); when the URI names a user with neither a password nor
 * MTR_PASSWORD, it asks on the terminal (/dev/tty, without echo).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secret.h"
#include "shell.h"
#include "util.h"

/* Ask for the password of user on /dev/tty (no echo): a malloc'ed string,
 * or NULL with a message printed. */
static char *ask_tty(const char *user, size_t ulen)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "mtrsql: no password for user %.*s and no terminal to ask on (%s): set MTR_PASSWORD\n",
			(int)ulen, user, strerror(errno));
		return NULL;
	}
	char prompt[120];
	snprintf(prompt, sizeof prompt, "Password for %.*s: ", (int)ulen, user);
	char buf[1100];
	int got = secret_read_line(fd, fd, prompt, buf, sizeof buf) >= 0;
	close(fd);
	char *pw = got ? strdup(buf) : NULL;
	explicit_bzero(buf, sizeof buf);
	if (!got)
		fprintf(stderr, "mtrsql: no password given for user %.*s\n", (int)ulen, user);
	return pw;
}

int login_prepare(struct shell *sh, char *arg)
{
	if (strncmp(sh->uri, "mtr://", 6) != 0)
		return 0;
	char *p = sh->uri + 6;
	size_t alen = strcspn(p, "?");
	char *at = NULL;
	for (char *c = p; c < p + alen; c++)
		if (*c == '@')
			at = c;
	if (!at)
		return 0;
	char *colon = memchr(p, ':', (size_t)(at - p));
	if (colon) {
		/* decode the URI's password into MTR_PASSWORD, drop it from the URI */
		size_t n = (size_t)(at - colon - 1), k = 0;
		char *pw = malloc(n + 1);
		if (!pw)
			return -1;
		for (size_t i = 0; i < n; i++) {
			const char *s = colon + 1 + i;
			int hi = i + 1 < n ? hexval(s[1]) : -1, lo = i + 2 < n ? hexval(s[2]) : -1;
			if (*s == '%' && hi >= 0 && lo >= 0) {
				pw[k++] = (char)(hi << 4 | lo);
				i += 2;
			} else {
				pw[k++] = *s;
			}
		}
		pw[k] = 0;
		int rc = setenv("MTR_PASSWORD", pw, 1);
		explicit_bzero(pw, k);
		free(pw);
		if (rc != 0)
			return -1;
		memmove(colon, at, strlen(at) + 1);
		/* and out of the process's arguments (what ps shows) */
		char *ac = strstr(arg, "://");
		char *aat = ac ? strchr(ac, '@') : NULL;
		char *acol = ac ? strchr(ac + 3, ':') : NULL;
		if (acol && aat && acol < aat)
			memset(acol + 1, 'x', (size_t)(aat - acol - 1));
		return 0;
	}
	if (getenv("MTR_PASSWORD"))
		return 0;
	char *pw = ask_tty(p, (size_t)(at - p));
	if (!pw)
		return -1;
	int rc = setenv("MTR_PASSWORD", pw, 1);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	return rc == 0 ? 0 : -1;
}
