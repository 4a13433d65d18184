/*
 * fuzz_cproto.c - libFuzzer target for the client protocol and result bytes.
 *
 * The input is treated as a TCP byte stream: cproto_frame_next() splits it
 * into frames (with a small max_frame from byte 0 half the time, so the limit
 * path is hit), and every frame is given to every cproto_get_* decoder (the
 * type check included; BACKUP, BACKUP_PART and MEMBERSHIP too: a decoded
 * MEMBERSHIP must encode to the same payload); a decoded QUERY goes through cproto_query_binds()
 * and every copied bind is read; an ANSWER's result bytes, and each frame's
 * raw payload, go through result_decode(), and whatever it accepts is
 * iterated completely (statements, names, rows, values).  A decoded AUTH is
 * encoded again and must decode to the same user and password.  The whole
 * input is also parsed as a proxy.users file (pxauth_users_parse): every
 * user it accepts has a valid name, an Argon2 hash string, and is found by
 * name.  ASan/UBSan report any out-of-bounds read or undefined behaviour.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cproto.h"
#include "proxy_auth.h"
#include "result.h"
#include "wire_server.h"

static volatile unsigned sink;

static void touch(const void *p, size_t n)
{
	const unsigned char *c = p;
	if (n)
		sink += c[0] + c[n - 1];
}

static void result_walk(const uint8_t *p, size_t n)
{
	struct result_view v;
	if (result_decode(p, n, &v) != 0)
		return;
	struct result_stmt s;
	while (result_next(&v, &s)) {
		touch(s.errmsg, s.errmsg_len);
		const uint8_t *np = s.names;
		for (uint32_t c = 0; c < s.ncols; c++) {
			uint16_t nl;
			const char *nm = result_name_next(&np, &nl);
			touch(nm, nl);
		}
		const uint8_t *rp = s.rows, *end = s.rows + s.rows_len;
		struct wire_value vals[8];
		unsigned nc;
		while ((nc = result_row_next(&rp, end, vals, 8)) > 0)
			for (unsigned c = 0; c < nc && c < 8; c++)
				if (vals[c].type == WIRE_V_TEXT || vals[c].type == WIRE_V_BLOB)
					touch(vals[c].u.b.p, vals[c].u.b.n);
	}
}

static void frame_walk(const struct cproto_frame *f)
{
	struct cproto_hello h;
	struct cproto_welcome w;
	struct cproto_query q;
	struct cproto_answer a;
	struct cproto_bye y;
	uint64_t t;
	(void)cproto_get_hello(f, &h);
	(void)cproto_get_welcome(f, &w);
	(void)cproto_get_ping(f, &t);
	(void)cproto_get_cancel(f, &t);
	if (cproto_get_bye(f, &y) == 0)
		touch(y.msg, y.msg_len);
	(void)cproto_get_backup(f, &t);
	struct wire_member wm, wm2;
	if (cproto_get_member(f, &wm) == 0) {
		/* a decoded MEMBERSHIP encodes to the same payload */
		struct cproto_buf b = {0};
		struct cproto_frame f2;
		if (cproto_put_member(&b, &wm) != 0 || cproto_frame_next(b.p, b.len, CPROTO_MAX_FRAME, &f2) <= 0 ||
		    f2.len != f->len || memcmp(f2.payload, f->payload, f->len) != 0 || cproto_get_member(&f2, &wm2) != 0)
			abort();
		cproto_buf_free(&b);
	}
	struct cproto_part pt;
	if (cproto_get_part(f, &pt) == 0) {
		touch(pt.data, pt.len);
		touch(pt.msg, pt.msg_len);
	}
	if (cproto_get_query(f, &q) == 0) {
		touch(q.sql, q.sql_len);
		struct cproto_bind *b;
		if (cproto_query_binds(&q, &b) == 0) {
			for (uint16_t i = 0; i < q.nbinds; i++) {
				if (b[i].name)
					touch(b[i].name, strlen(b[i].name));
				if (b[i].v.type == WIRE_V_TEXT || b[i].v.type == WIRE_V_BLOB)
					touch(b[i].v.u.b.p, b[i].v.u.b.n);
			}
			free(b);
		}
	}
	struct cproto_auth au, au2;
	if (cproto_get_auth(f, &au) == 0) {
		struct cproto_buf b = {0};
		struct cproto_frame f2;
		if (cproto_put_auth(&b, &au) != 0 || cproto_frame_next(b.p, b.len, CPROTO_MAX_FRAME, &f2) <= 0 ||
		    cproto_get_auth(&f2, &au2) != 0 || au2.user_len != au.user_len ||
		    au2.password_len != au.password_len || memcmp(au2.user, au.user, au.user_len) != 0 ||
		    (au.password_len && memcmp(au2.password, au.password, au.password_len) != 0))
			abort();
		cproto_buf_free(&b);
	}
	if (cproto_get_answer(f, &a) == 0) {
		touch(a.msg, a.msg_len);
		result_walk(a.result, a.result_len);
	}
	result_walk(f->payload, f->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint32_t max = data[0] & 1 ? CPROTO_MAX_FRAME : 16u + data[0];
	const uint8_t *p = data + 1;
	size_t left = size - 1;
	for (;;) {
		struct cproto_frame f;
		long n = cproto_frame_next(p, left, max, &f);
		if (n <= 0)
			break;
		frame_walk(&f);
		p += n;
		left -= (size_t)n;
	}
	/* the whole input as result bytes too */
	result_walk(data + 1, size - 1);
	/* and as a users file */
	struct pxauth_users us;
	char err[256];
	if (pxauth_users_parse((const char *)data + 1, size - 1, "fuzz", &us, err, sizeof err) == 0) {
		for (size_t i = 0; i < us.n; i++) {
			size_t nl = strlen(us.u[i].name);
			if (!cproto_user_valid(us.u[i].name, nl) || strncmp(us.u[i].hash, "$argon2", 7) != 0 ||
			    pxauth_users_find(&us, us.u[i].name, nl) != &us.u[i])
				abort();
		}
		pxauth_users_free(&us);
	} else {
		touch(err, strlen(err));
	}
	return 0;
}
