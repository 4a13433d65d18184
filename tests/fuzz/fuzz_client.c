/*
 * fuzz_client.c - libFuzzer target for libmetronome facing a hostile proxy.
 *
 * The input is what a proxy sends after its WELCOME: any bytes.  The target
 * opens a handle on one end of a socketpair (client_open_fd), writes a valid
 * WELCOME and then the input to the other end and closes it, and has the
 * client submit an INSERT (request 1, asynchronous) and step a SELECT
 * (request 2), reading every column of every row in every form, then poll
 * and close.  Whatever the bytes (frames cut short, unknown types, answers
 * to unknown requests, malformed result bytes, BYE, PING), the client must
 * end with an error or a result, never crash, hang or leak.  Seeds in
 * tests/fuzz/corpus/client are valid answers to both requests.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_int.h"
#include "log.h"

static volatile unsigned sink;

static void on_done(void *arg, int rc, int ext, int64_t changes, int64_t rowid)
{
	sink += (unsigned)rc + (unsigned)ext + (unsigned)changes + (unsigned)rowid;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	if (!once) {
		log_set_level(LOG_ERROR);
		once = 1;
	}
	if (size > 65536)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	struct cproto_buf b = {0};
	struct cproto_welcome w = {.version = CPROTO_VERSION, .stream = 9, .max_frame = CPROTO_MAX_FRAME};
	int ok = cproto_put_welcome(&b, &w) == 0 && write(sv[1], b.p, b.len) == (ssize_t)b.len &&
		 (size == 0 || write(sv[1], data, size) == (ssize_t)size);
	cproto_buf_free(&b);
	/* End of the proxy's stream, but keep reading what the client sends
	 * (closing would make its writes fail with EPIPE). */
	shutdown(sv[1], SHUT_WR);
	if (!ok) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	mtr *db;
	if (client_open_fd(sv[0], 2000, &db) == 0) {
		mtr_stmt *ins = NULL, *q = NULL;
		if (mtr_prepare(db, "INSERT INTO t VALUES(?1, :b)", -1, &ins, NULL) == 0) {
			mtr_bind_int64(ins, 1, 7);
			mtr_bind_text(ins, 2, "x", 1);
			mtr_submit(ins, on_done, NULL);
		}
		if (mtr_prepare(db, "SELECT a, b FROM t", -1, &q, NULL) == 0) {
			while (mtr_step(q) == MTR_ROW) {
				int n = mtr_column_count(q);
				for (int i = -1; i <= n; i++) {
					const char *name = mtr_column_name(q, i);
					const unsigned char *t = mtr_column_text(q, i);
					const unsigned char *p = mtr_column_blob(q, i);
					int len = mtr_column_bytes(q, i);
					sink += (unsigned)mtr_column_type(q, i) + (unsigned)mtr_column_int64(q, i) +
						(unsigned)(mtr_column_double(q, i) > 0);
					if (name)
						sink += (unsigned)strlen(name);
					if (t)
						sink += (unsigned)strlen((const char *)t);
					if (p && len > 0)
						sink += p[0] + p[len - 1];
				}
			}
		}
		sink += (unsigned)mtr_errcode(db) + (unsigned)strlen(mtr_errmsg(db)) + (unsigned)mtr_changes(db);
		mtr_poll(db, 0);
	}
	mtr_close(db); /* frees the statements, fails what is pending */
	close(sv[1]);
	return 0;
}
