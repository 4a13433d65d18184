/*
 * proxy_auth.h - client authentication for the proxy (doc/security.md
 * "Clients"): the users file (proxy.users), password hashes, and the
 * verifier thread.
 *
 * The users file holds one `NAME:HASH` line per user; HASH is a libsodium
 * crypto_pwhash_str() string (Argon2id, salted, its parameters inside it),
 * made by `mtrproxy --hash-password`.  Empty lines and lines starting with
 * '#' are ignored.  A NAME follows cproto_user_valid().  The file must not
 * be readable or writable by every user of the host.
 *
 * Verifying an Argon2id hash takes tens of milliseconds and tens of MiB on
 * purpose, so it never runs on the proxy's loop: pxauth_submit() queues a
 * job for one verifier thread, which signals the loop's eventfd when a job
 * is done; the loop takes the done jobs with pxauth_take_done().  An
 * unknown user is verified against a dummy hash of the same cost, so that
 * both failures cost the same.
 */
#ifndef MTR_PROXY_AUTH_H
#define MTR_PROXY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "cproto.h"

/* The Argon2id cost `mtrproxy --hash-password` uses (libsodium's
 * INTERACTIVE: 2 passes over 64 MiB). */
#define PXAUTH_HASH_MAX 128 /* crypto_pwhash_STRBYTES */

/* One user of the users file. */
struct pxauth_user {
	char name[CPROTO_MAX_USER + 1];
	char hash[PXAUTH_HASH_MAX];
};

/* The parsed users file: n users in u (malloc'ed). */
struct pxauth_users {
	struct pxauth_user *u;
	size_t n;
};

/*
 * Parse a users file's bytes (len bytes at buf; label names the file in
 * messages).  0 with *out filled (free with pxauth_users_free), or
 * MTR_ECONFIG with one sentence in err naming the line and what is wrong
 * ("users.txt line 3: no ':' between the user name and the hash; ..."), or
 * MTR_ENOMEM.  Pure: no I/O.
 */
int pxauth_users_parse(const char *buf, size_t len, const char *label, struct pxauth_users *out, char *err,
		       size_t errlen);

/* Read and parse the file at path: refused (MTR_ECONFIG) when every user
 * of the host may read or write it, or when a line does not parse; MTR_EIO
 * when it cannot be read.  The message in err names the file. */
int pxauth_users_load(const char *path, struct pxauth_users *out, char *err, size_t errlen);

void pxauth_users_free(struct pxauth_users *u);

/* The user named (n bytes), or NULL. */
const struct pxauth_user *pxauth_users_find(const struct pxauth_users *u, const char *name, size_t n);

/* Hash a password (n bytes) into out (NUL-terminated crypto_pwhash_str
 * string, Argon2id at the INTERACTIVE cost).  0, MTR_ENOMEM or MTR_EIO. */
int pxauth_hash(const char *pw, size_t n, char out[PXAUTH_HASH_MAX]);

/* `mtrproxy --hash-password [NAME]`: read one password line from stdin (no
 * echo when stdin is a terminal) and print "NAME:HASH" (NAME given) or the
 * hash.  Returns the exit status. */
int pxauth_hash_password_main(const char *name);

/* ---- the verifier ---- */

/* One login being verified.  owner is the loop's (its client); it becomes
 * NULL when pxauth_cancel() was called. */
struct pxauth_job {
	struct pxauth_job *next;
	void *owner;
	char user[CPROTO_MAX_USER + 1];
	char *password; /* wiped and freed by the verifier */
	size_t password_len;
	int ok; /* done: 1 when the user exists and the password matches */
};

struct pxauth;

/* Load the users file and start the verifier thread; notify_fd (an
 * eventfd) gets a write whenever a job is done.  0, or MTR_ECONFIG /
 * MTR_EIO / MTR_ENOMEM with a sentence in err. */
int pxauth_open(const char *users_path, int notify_fd, struct pxauth **out, char *err, size_t errlen);

/* Stop the thread, free every job and the users.  NULL is fine. */
void pxauth_close(struct pxauth *a);

/* How many users the file has. */
size_t pxauth_nusers(const struct pxauth *a);

/* Queue the verification of user / password (copied) for owner.  The job,
 * or NULL without memory. */
struct pxauth_job *pxauth_submit(struct pxauth *a, void *owner, const char *user, size_t user_len,
				 const char *password, size_t password_len);

/* The owner of j is gone: the job is dropped (freed when it is taken). */
void pxauth_cancel(struct pxauth *a, struct pxauth_job *j);

/* The jobs done since the last call (a list through next, the caller frees
 * each with pxauth_job_free), or NULL. */
struct pxauth_job *pxauth_take_done(struct pxauth *a);

void pxauth_job_free(struct pxauth_job *j);

#endif
