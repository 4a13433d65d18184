/*
 * client_int.h - what the two halves of libmetronome share (private).
 *
 * client.c is the connection half: the URI, the TCP connection to a proxy,
 * requests in flight (sent, resent after failover, answered, timed out) and
 * the handle's error state.  client_stmt.c is the SQL half: prepared
 * statements, bindings, stepping through result rows, the client-side
 * collection of BEGIN ... COMMIT, and mtr_exec.  The public contract is
 * include/metronome.h; the guide is doc/client.md.
 */
#ifndef MTR_CLIENT_INT_H
#define MTR_CLIENT_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metronome.h"
#include "cproto.h"
#include "result.h"
#include "sql.h"
#include "wire.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 10000
/* mtr_submit behind other requests in flight sends at once only when this
 * much waits to be sent (client.c client_request_async) */
#define SUBMIT_FLUSH_BYTES 65536u

/* One proxy address of the URI. */
struct client_addr {
	char host[256];
	char port[8];
};

/*
 * One request sent (or to be sent) and not yet answered.  The encoded QUERY
 * frame is kept until the answer arrives so that it can be resent, with the
 * same request id, after a failover.  Asynchronous requests (done != NULL)
 * are freed after their callback; a synchronous one is owned by the waiter,
 * which finds finished / rc / payload filled in.
 */
struct client_req {
	struct client_req *next;
	uint64_t id;
	uint8_t *frame; /* malloc'ed whole QUERY frame */
	size_t frame_len;
	uint64_t deadline_ns; /* monotonic; 0: none */
	mtr_done_fn done;     /* NULL: synchronous */
	void *arg;
	bool write, insert;   /* async: which counters the answer updates */
	bool finished;        /* synchronous: the outcome is below */
	bool cancelled;       /* mtr_interrupt: a CANCEL frame was sent for it (again after a failover) */
	int rc;               /* 0: payload holds the ANSWER payload */
	uint8_t *payload;     /* malloc'ed copy, owned by the waiter */
	size_t payload_len;
};

/* One statement collected between BEGIN and COMMIT (copies). */
struct client_txn_stmt {
	char *sql;
	uint32_t sql_len;
	int max_param;
	bool write, insert;
	struct mtr_stmt *owner; /* the handle that collected it (NULL: finalized, reset or re-run): it gets the
				 * statement's rows when the transaction has run */
	struct cproto_bind *binds; /* index-numbered; TEXT/BLOB point into vbuf */
	uint16_t nbinds;
	uint8_t *vbuf;
};

struct mtr {
	struct client_addr *addrs;
	unsigned naddrs, cur; /* cur: the address in use (or tried next) */
	uint8_t consistency;  /* enum cproto_consistency */
	int timeout_ms, busy_ms;
	struct wire_key key;  /* for the embedded mode (not used over TCP) */
	char *user;           /* the URI's user name (NULL: no login), malloc'ed */
	char *password;       /* its password (URI or MTR_PASSWORD), malloc'ed, wiped at close */
	char *uri_shown;      /* the URI without its password, for messages */
	uint64_t client_id, next_req, stream;
	uint32_t max_frame;   /* the proxy's (WELCOME) */

	int fd;               /* -1: not connected */
	int ifd;              /* eventfd mtr_interrupt writes to (the pump polls it), or -1 */
	atomic_int interrupt; /* mtr_interrupt was called: CANCEL what is pending */
	unsigned losses;      /* connections lost since the last answer */
	bool in_unparsed;     /* db->in holds bytes read with WELCOME, not yet parsed */
	struct cproto_buf out;
	uint8_t *in;
	size_t in_len, in_cap;
	struct client_req *head, *tail; /* unanswered, in request order */
	int npending_async;

	uint64_t last_instance;
	int64_t changes, last_rowid;
	int errcode, ext;
	char errmsg[1024];

	bool in_txn;
	struct client_txn_stmt *txn;
	size_t ntxn, txn_cap;
	uint32_t failed_stmt; /* the last MTR_ESQL answer: the index of the failing statement */
	uint8_t once_consistency; /* the next request's consistency (0: the connection's) */

	struct client_temp *temps; /* the session's TEMP views and triggers (client_temp.c) */
	size_t ntemps, temps_cap;
	uint32_t line_shift;  /* lines of definitions in front of the request being run */

	struct mtr_stmt *stmts; /* every statement prepared on the handle */
	struct client_embed *embed; /* embedded mode: the proxy thread (client_embed.c) */

	int tls_mode;               /* CLIENT_TLS_*: the URI's tls= (client_tls.c) */
	char *tls_ca;               /* the URI's ca= (malloc'ed), NULL: the system's trust store */
	struct tlsctx *tls_ctx;     /* made at mtr_open when tls is not off */
	struct tlsconn *tls;        /* the connection's TLS, NULL: clear */
};

/* The URI's tls= (doc/client.md, "TLS"). */
enum { CLIENT_TLS_OFF = 0, CLIENT_TLS_REQUIRE, CLIENT_TLS_INSECURE };

/* Apply one "key=value" URI option (n bytes) to db: consistency, timeout,
 * busy, key.  0 or MTR_EINVAL (recorded on db). */
int client_uri_option(mtr *db, const char *s, size_t n);

/* ---- client_tls.c: TLS to the proxy ---- */

struct tlsctx;
struct tlsconn;
/* Apply the URI option key=value if it is tls= or ca=: 0, 1 (not one of
 * them), or MTR_EINVAL / MTR_ENOMEM (recorded on db). */
int client_tls_option(mtr *db, const char *key, size_t klen, const char *v, size_t vlen);
/* After the URI is parsed: the TLS context it asks for (CA file read
 * now).  0 or an error recorded on db (ca= unreadable, ca= without tls=). */
int client_tls_setup(mtr *db);
/* The TLS handshake on the connected fd, verifying host, before deadline.
 * 0 (db->tls set), or MTR_ECONNECT / MTR_ENOMEM with the reason in why
 * (fd is then closed).  label ("host:port") names the proxy in messages. */
int client_tls_start(mtr *db, int fd, const char *host, const char *label, uint64_t deadline, char *why,
		     size_t cap);
/* recv(2) / send(2) on db->fd (MSG_NOSIGNAL), through TLS when db has it:
 * bytes, or -1 with errno (EAGAIN; EPROTO: a TLS failure, logged). */
ssize_t client_tls_recv(mtr *db, void *buf, size_t n);
ssize_t client_tls_send(mtr *db, const void *buf, size_t n);
/* events plus what TLS waits for (POLLOUT when a read must write first). */
short client_tls_poll(mtr *db, short events);
/* Whether decrypted bytes wait inside the TLS layer (read without polling). */
int client_tls_pending(mtr *db);
/* Drop the connection's TLS (before its fd is closed). */
void client_tls_close(mtr *db);
/* Drop everything TLS of the handle (close). */
void client_tls_free(mtr *db);
/* At the end of a public call that may have used TLS in the caller's
 * thread: free OpenSSL's state of that thread (tlsconn_thread_done), so that
 * a thread that ends as the process exits leaks nothing. */
void client_tls_thread_done(mtr *db);
/* Milliseconds left until deadline (monotonic ns; 0: none -> -1), for poll. */
int client_ms_left(uint64_t deadline);

/* Greet the proxy on the connected socket fd (HELLO / WELCOME); on success
 * db->fd is fd.  label names the peer in messages.  0 or an MTR_E* code with
 * the reason in why. */
int client_handshake(mtr *db, int fd, const char *label, uint64_t deadline, char *why, size_t cap);

/* Embedded mode (client_embed.c, doc/client.md "Embedded mode"): 1 when uri
 * is "local" or starts with "mtr+embedded://". */
int client_embed_uri(const char *uri);
/* Run a proxy in a thread of this process for db and connect db to it over
 * a socketpair.  0 or an MTR_E* code recorded on db. */
int client_embed_open(mtr *db, const char *uri);
/* Stop and free the embedded proxy (nothing when there is none). */
void client_embed_close(mtr *db);

/* Record an error on the handle (message formatted) and return code. */
int client_err(mtr *db, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Record an error with a position (line 0: none) in the SQL: the message
 * becomes "line L, column C: msg" (msg: len bytes, not NUL-terminated). */
int client_err_at(mtr *db, int code, uint32_t line, uint32_t col, const char *msg, size_t len);
/* Record success: errcode 0, extended 0. */
void client_ok(mtr *db);

/*
 * Send one request (sql and index-numbered binds, copied into the frame)
 * and wait for its answer.  Returns 0 with the ANSWER payload in *payload
 * (malloc'ed, the caller frees) or an error recorded on db (MTR_ETIMEDOUT,
 * MTR_ECONNECT, MTR_ETOOBIG, MTR_ENOMEM, ...).
 */
int client_request_sync(mtr *db, const char *sql, uint32_t sql_len, const struct cproto_bind *binds,
			uint16_t nbinds, uint8_t **payload, size_t *len);

/* Queue one asynchronous request (see mtr_submit).  0 or an error (done is
 * then never called). */
int client_request_async(mtr *db, const char *sql, uint32_t sql_len, const struct cproto_bind *binds,
			 uint16_t nbinds, bool write, bool insert, mtr_done_fn done, void *arg);

/*
 * Interpret an ANSWER payload: returns 0 with the validated result in *v
 * (pointing into payload), or the request's error: its status (the proxy
 * refused it; message and position), MTR_ESQL (SQLite failed: *ext is the
 * extended code), MTR_EMALFORMED.  The error is recorded on db, which also
 * learns the answer's instance.
 */
int client_answer(mtr *db, const uint8_t *payload, size_t len, struct result_view *v, int *ext);

/*
 * Open a handle on an already connected stream fd (taken over; closed by
 * mtr_close, or at once on failure): HELLO, then wait up to timeout_ms for
 * WELCOME.  Such a handle has no address to fail over to: a lost connection
 * fails its requests with MTR_ECONNECT.  For the fuzz target and the
 * embedded mode (a proxy on the other end of a socketpair).  As mtr_open,
 * *out is set even on error.
 */
int client_open_fd(int fd, int timeout_ms, mtr **out);

/* Free everything collected in a transaction and leave it. */
void client_txn_clear(mtr *db);

/* A request with the definitions it needs in front (client_temp.c): text
 * (malloc'ed: each definition followed by ";\n", then the request; NULL
 * when none is needed), its length, how many definitions and how many
 * lines they take. */
struct client_prelude {
	char *text;
	uint32_t len;
	unsigned nstmts;
	uint32_t lines;
};
/* The request sql (len bytes) with the definitions it needs in front: the
 * kept objects it names and, again and again, what those name.  0, or
 * MTR_ENOMEM / MTR_ETOOBIG (recorded). */
int client_temp_prelude(mtr *db, const char *sql, uint32_t len, struct client_prelude *out);
/* Keep the definition sql (one CREATE TEMP VIEW / TRIGGER that a replica
 * has just accepted); nothing when one of that type and name is kept
 * already (IF NOT EXISTS).  0 or an error recorded on db. */
int client_temp_keep(mtr *db, const char *sql, uint32_t len);
/* Is a TEMP object of type ('v' view, 'r' trigger) and name kept? */
bool client_temp_kept(mtr *db, char type, const char *name);
/* Forget the kept object (and, for a view, the triggers on it): 1, or 0
 * when there is none of that type and name. */
int client_temp_drop(mtr *db, char type, const char *name);
/* Forget every kept object. */
void client_temp_clear(mtr *db);

/* Free every statement still prepared on db (client_stmt.c). */
void client_stmts_free(mtr *db);

/*
 * The connection as the request machinery of client.c uses it, for
 * mtr_backup (client_backup.c), which speaks its own frames on it:
 * connect (HELLO/WELCOME) before deadline (monotonic ns, 0: none); read
 * what is there into db->in (>0 bytes, 0 EOF, MTR_EAGAIN, MTR_EIO,
 * MTR_ENOMEM); write db->out (0 or MTR_EIO); drop a broken connection.
 */
int client_conn_ensure(mtr *db, uint64_t deadline);
long client_conn_read(mtr *db);
int client_conn_write(mtr *db);
void client_conn_lost(mtr *db, const char *why);

/*
 * The exchange loop of mtr_backup and the membership calls (own frames on
 * the connection): frames(arg) handles the whole frames in db->in (and
 * consumes them) and returns 0 to go on, non-zero to stop (returned);
 * meanwhile db->out is written and db->in filled.  wait_ms(arg): how long
 * to wait for bytes before MTR_ETIMEDOUT ("nothing from the proxy for N
 * s"; recorded on db).  Connection errors are recorded on db.
 */
int client_exchange(mtr *db, int (*frames)(void *arg), int (*wait_ms)(void *arg), void *arg);
/*
 * For a frames() of client_exchange: handle the whole frames in db->in and
 * consume them.  PING (answered with a PONG) and BYE (an error recorded on
 * db) are handled here, every other frame by fn(arg, frame), which returns
 * 0 to go on and non-zero to stop (returned).
 */
int client_frames(mtr *db, int (*fn)(void *arg, const struct cproto_frame *f), void *arg);

#endif
