/*
 * proxy_auth.c - the users file, password hashes and the verifier thread
 * of the proxy (proxy_auth.h; doc/security.md "Clients").
 *
 * Hashing and verifying are libsodium's crypto_pwhash_str /
 * crypto_pwhash_str_verify (Argon2id): no cryptography of our own.  The
 * verifier is one thread with a FIFO of jobs, so that at most one
 * verification (64 MiB at the INTERACTIVE cost) runs at a time and the
 * proxy's loop never waits for one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "metronome.h"
#include "proxy_auth.h"
#include "secret.h"
#include "util.h"

_Static_assert(PXAUTH_HASH_MAX == crypto_pwhash_STRBYTES, "PXAUTH_HASH_MAX must be crypto_pwhash_STRBYTES");

#define USERS_FILE_MAX (16u << 20)

/* ---- the users file ---------------------------------------------------------- */

void pxauth_users_free(struct pxauth_users *u)
{
	if (u->u)
		sodium_memzero(u->u, u->n * sizeof *u->u);
	free(u->u);
	u->u = NULL;
	u->n = 0;
}

const struct pxauth_user *pxauth_users_find(const struct pxauth_users *u, const char *name, size_t n)
{
	for (size_t i = 0; i < u->n; i++)
		if (strlen(u->u[i].name) == n && memcmp(u->u[i].name, name, n) == 0)
			return &u->u[i];
	return NULL;
}

/* One line (n bytes, no '\n') into *x; 0 or -1 with the reason in err. */
static int parse_line(const char *s, size_t n, struct pxauth_user *x, const char **why)
{
	const char *colon = memchr(s, ':', n);
	if (colon == NULL) {
		*why = "no ':' between the user name and the hash; write NAME:HASH (mtrproxy --hash-password NAME "
		       "prints the line)";
		return -1;
	}
	size_t nl = (size_t)(colon - s), hl = n - nl - 1;
	const char *h = colon + 1;
	if (!cproto_user_valid(s, nl)) {
		*why = "the user name is empty, longer than 64 bytes, or has a control character";
		return -1;
	}
	if (hl >= PXAUTH_HASH_MAX || memchr(h, 0, hl) != NULL ||
	    !((hl > 10 && memcmp(h, "$argon2id$", 10) == 0) || (hl > 9 && memcmp(h, "$argon2i$", 9) == 0))) {
		*why = "the hash is not an Argon2 string ($argon2id$...); make it with mtrproxy --hash-password";
		return -1;
	}
	memcpy(x->name, s, nl);
	x->name[nl] = 0;
	memcpy(x->hash, h, hl);
	x->hash[hl] = 0;
	return 0;
}

int pxauth_users_parse(const char *buf, size_t len, const char *label, struct pxauth_users *out, char *err,
		       size_t errlen)
{
	out->u = NULL;
	out->n = 0;
	size_t cap = 0, lineno = 0;
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		const char *next = e ? e + 1 : end;
		if (e == NULL)
			e = end;
		lineno++;
		/* trim blanks and a CR at both ends */
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (p == e || *p == '#') {
			p = next;
			continue;
		}
		if (out->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct pxauth_user *u = realloc(out->u, nc * sizeof *u);
			if (u == NULL) {
				pxauth_users_free(out);
				snprintf(err, errlen, "%s: out of memory", label);
				return MTR_ENOMEM;
			}
			out->u = u;
			cap = nc;
		}
		const char *why = NULL;
		if (parse_line(p, (size_t)(e - p), &out->u[out->n], &why) != 0) {
			snprintf(err, errlen, "%s line %zu: %s", label, lineno, why);
			pxauth_users_free(out);
			return MTR_ECONFIG;
		}
		if (pxauth_users_find(out, out->u[out->n].name, strlen(out->u[out->n].name))) {
			snprintf(err, errlen, "%s line %zu: user '%s' is listed twice; keep one line per user", label,
				 lineno, out->u[out->n].name);
			pxauth_users_free(out);
			return MTR_ECONFIG;
		}
		out->n++;
		p = next;
	}
	if (out->n == 0) {
		snprintf(err, errlen, "%s: no user in the file; add NAME:HASH lines (mtrproxy --hash-password NAME)",
			 label);
		return MTR_ECONFIG;
	}
	return 0;
}

int pxauth_users_load(const char *path, struct pxauth_users *out, char *err, size_t errlen)
{
	out->u = NULL;
	out->n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "proxy.users: cannot open %s: %s", path, strerror(errno));
		return errno == ENOENT ? MTR_ECONFIG : MTR_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "proxy.users: %s is not a regular file", path);
		close(fd);
		return MTR_ECONFIG;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		snprintf(err, errlen,
			 "proxy.users: %s is readable or writable by every user (mode %04o); run chmod 600 %s "
			 "(or 640 with the proxy's group)",
			 path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return MTR_ECONFIG;
	}
	if (st.st_size > USERS_FILE_MAX) {
		snprintf(err, errlen, "proxy.users: %s is larger than 16 MiB", path);
		close(fd);
		return MTR_ECONFIG;
	}
	size_t len = (size_t)st.st_size;
	char *buf = malloc(len + 1);
	if (buf == NULL) {
		close(fd);
		snprintf(err, errlen, "proxy.users: out of memory");
		return MTR_ENOMEM;
	}
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	char label[300];
	snprintf(label, sizeof label, "proxy.users: %s", path);
	int rc = pxauth_users_parse(buf, got, label, out, err, errlen);
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}

/* ---- hashing ------------------------------------------------------------------ */

int pxauth_hash(const char *pw, size_t n, char out[PXAUTH_HASH_MAX])
{
	if (sodium_init() < 0)
		return MTR_EIO;
	if (crypto_pwhash_str(out, pw, n, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) !=
	    0)
		return MTR_ENOMEM;
	return 0;
}

int pxauth_hash_password_main(const char *name)
{
	if (name && !cproto_user_valid(name, strlen(name))) {
		fprintf(stderr, "mtrproxy: '%s' is not a user name: 1 to 64 bytes, no ':' and no control character\n",
			name);
		return 1;
	}
	char pw[CPROTO_MAX_PASSWORD + 2], again[CPROTO_MAX_PASSWORD + 2];
	long n = secret_read_line(0, 2, "Password: ", pw, sizeof pw);
	int rc = 1;
	if (n < 0) {
		fprintf(stderr, "mtrproxy: no password on standard input\n");
	} else if ((size_t)n > CPROTO_MAX_PASSWORD) {
		fprintf(stderr, "mtrproxy: the password is longer than %d bytes\n", CPROTO_MAX_PASSWORD);
	} else if (n == 0) {
		fprintf(stderr, "mtrproxy: the password is empty; choose one\n");
	} else if (isatty(0) &&
		   (secret_read_line(0, 2, "Again: ", again, sizeof again) != n || memcmp(pw, again, (size_t)n) != 0)) {
		fprintf(stderr, "mtrproxy: the two passwords differ; nothing printed\n");
	} else {
		char h[PXAUTH_HASH_MAX];
		if (pxauth_hash(pw, (size_t)n, h) != 0) {
			fprintf(stderr, "mtrproxy: cannot hash the password (out of memory?)\n");
		} else {
			printf("%s%s%s\n", name ? name : "", name ? ":" : "", h);
			rc = fflush(stdout) == 0 ? 0 : 1;
		}
	}
	sodium_memzero(pw, sizeof pw);
	sodium_memzero(again, sizeof again);
	return rc;
}

/* ---- the verifier ---------------------------------------------------------------- */

struct pxauth {
	struct pxauth_users users;
	char dummy[PXAUTH_HASH_MAX]; /* what an unknown user is verified against */
	int notify_fd;
	pthread_t th;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pxauth_job *qh, *qt; /* waiting, oldest first */
	struct pxauth_job *done;
	int stop;
};

void pxauth_job_free(struct pxauth_job *j)
{
	if (j == NULL)
		return;
	if (j->password) {
		sodium_memzero(j->password, j->password_len);
		free(j->password);
	}
	free(j);
}

static void *verifier(void *arg)
{
	struct pxauth *a = arg;
	mtr_thread_name("mtr-auth");
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->stop && a->qh == NULL)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		struct pxauth_job *j = a->qh;
		a->qh = j->next;
		if (a->qh == NULL)
			a->qt = NULL;
		int gone = j->owner == NULL;
		pthread_mutex_unlock(&a->mu);
		if (!gone) {
			const struct pxauth_user *u = pxauth_users_find(&a->users, j->user, strlen(j->user));
			/* an unknown user costs the same as a wrong password */
			int v = crypto_pwhash_str_verify(u ? u->hash : a->dummy, j->password, j->password_len);
			j->ok = u != NULL && v == 0;
		}
		sodium_memzero(j->password, j->password_len);
		pthread_mutex_lock(&a->mu);
		j->next = a->done;
		a->done = j;
		uint64_t one = 1;
		ssize_t w = write(a->notify_fd, &one, sizeof one);
		(void)w;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int pxauth_open(const char *users_path, int notify_fd, struct pxauth **out, char *err, size_t errlen)
{
	*out = NULL;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "proxy.users: libsodium cannot start");
		return MTR_EIO;
	}
	struct pxauth *a = calloc(1, sizeof *a);
	if (a == NULL)
		return MTR_ENOMEM;
	a->notify_fd = notify_fd;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	int rc = pxauth_users_load(users_path, &a->users, err, errlen);
	if (rc == 0) {
		unsigned char rnd[32];
		randombytes_buf(rnd, sizeof rnd);
		if (pxauth_hash((const char *)rnd, sizeof rnd, a->dummy) != 0) {
			snprintf(err, errlen, "proxy.users: cannot make the dummy hash (out of memory)");
			rc = MTR_ENOMEM;
		}
	}
	if (rc == 0) {
		if (pthread_create(&a->th, NULL, verifier, a) != 0) {
			snprintf(err, errlen, "proxy.users: cannot start the verifier thread");
			rc = MTR_ENOMEM;
		} else {
			a->started = 1;
		}
	}
	if (rc) {
		pxauth_close(a);
		return rc;
	}
	*out = a;
	return 0;
}

size_t pxauth_nusers(const struct pxauth *a) { return a->users.n; }

void pxauth_close(struct pxauth *a)
{
	if (a == NULL)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->th, NULL);
	}
	struct pxauth_job *lists[2] = {a->qh, a->done};
	for (int i = 0; i < 2; i++)
		while (lists[i]) {
			struct pxauth_job *j = lists[i];
			lists[i] = j->next;
			pxauth_job_free(j);
		}
	pxauth_users_free(&a->users);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
}

struct pxauth_job *pxauth_submit(struct pxauth *a, void *owner, const char *user, size_t user_len,
				 const char *password, size_t password_len)
{
	struct pxauth_job *j = calloc(1, sizeof *j);
	if (j == NULL)
		return NULL;
	j->password = malloc(password_len + 1);
	if (j->password == NULL) {
		free(j);
		return NULL;
	}
	if (password_len)
		memcpy(j->password, password, password_len);
	j->password[password_len] = 0;
	j->password_len = password_len;
	if (user_len > CPROTO_MAX_USER)
		user_len = CPROTO_MAX_USER;
	memcpy(j->user, user, user_len);
	j->user[user_len] = 0;
	j->owner = owner;
	pthread_mutex_lock(&a->mu);
	if (a->qt)
		a->qt->next = j;
	else
		a->qh = j;
	a->qt = j;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return j;
}

void pxauth_cancel(struct pxauth *a, struct pxauth_job *j)
{
	pthread_mutex_lock(&a->mu);
	j->owner = NULL;
	pthread_mutex_unlock(&a->mu);
}

struct pxauth_job *pxauth_take_done(struct pxauth *a)
{
	pthread_mutex_lock(&a->mu);
	struct pxauth_job *d = a->done;
	a->done = NULL;
	pthread_mutex_unlock(&a->mu);
	return d;
}
