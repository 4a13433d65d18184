/*
 * fuzz_uri.c - libFuzzer target for the options of an mtr:// URI (the part
 * after '?'), libmetronome's parser of what a user or a configuration hands
 * it: consistency=, timeout=, busy=, key=, tls=, ca=.
 *
 * The input is split at '&' as mtr_open does; each option is applied to a
 * fresh unconnected handle (client_uri_option) until one is refused, then
 * the TLS context the options ask for is made (client_tls_setup: ca= names
 * a file that is read if it exists, never under /dev, /proc or /sys) and the
 * handle is closed.  Whatever the
 * bytes, the result is an error with a message or a handle, never a crash
 * or a leak.  No connection is made.  Seeds: tests/fuzz/corpus/uri.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "log.h"

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	if (!once) {
		log_set_level(LOG_ERROR);
		once = 1;
	}
	if (size > 4096)
		return 0;
	/* ca= opens the file it names: not devices or the kernel's files,
	 * which could block or never end (/dev/stdin, /dev/zero) */
	static const char *const skip[] = {"/dev", "/proc", "/sys"};
	for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
		if (memmem(data, size, skip[i], strlen(skip[i])))
			return 0;
	mtr *db = calloc(1, sizeof *db);
	if (!db)
		return 0;
	db->fd = -1;
	const char *p = (const char *)data, *end = p + size;
	int rc = 0;
	while (p < end && rc == 0) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		size_t len = amp ? (size_t)(amp - p) : (size_t)(end - p);
		rc = client_uri_option(db, p, len);
		p += len + (amp ? 1 : 0);
	}
	if (rc == 0)
		rc = client_tls_setup(db);
	sink += (unsigned)rc + (unsigned)strlen(mtr_errmsg(db));
	mtr_close(db);
	return 0;
}
