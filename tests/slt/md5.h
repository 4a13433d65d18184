/*
 * md5.h - a small MD5 (RFC 1321) for mtrslt.  sqllogictest files give large
 * results as "N values hashing to H", H being the MD5 of every value followed
 * by a newline; this is all the hashing the runner needs, so it carries its
 * own twenty lines instead of a new library dependency.  Not for security.
 */
#ifndef MTR_SLT_MD5_H
#define MTR_SLT_MD5_H

#include <stddef.h>
#include <stdint.h>

/* Running state of one digest; fill with md5_init, owned by the caller. */
struct md5 {
	uint32_t h[4];     /* chaining value A B C D */
	uint64_t len;      /* bytes hashed so far */
	uint8_t buf[64];   /* partial block */
};

/* Start a digest. */
void md5_init(struct md5 *m);

/* Hash n more bytes of p (p may be NULL when n is 0). */
void md5_update(struct md5 *m, const void *p, size_t n);

/* Finish: the 16-byte digest into out; m must be re-initialized to reuse. */
void md5_final(struct md5 *m, uint8_t out[16]);

/* Finish and write the 32 lowercase hex digits and a NUL into hex[33]. */
void md5_final_hex(struct md5 *m, char hex[33]);

#endif
