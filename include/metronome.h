/*
 * metronome.h - the public interface of Metronome, a replicated SQLite.
 *
 * Every function returns 0 (MTR_OK) or a negative MTR_E* code; mtr_strerror()
 * turns a code into a sentence.  Names are prefixed mtr_ / MTR_.  Handles are
 * opaque.  First the error contract every module of the project shares, then
 * the client library, libmetronome (doc/client.md, libmetronome(3)).
 */
#ifndef METRONOME_H
#define METRONOME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MTR_API __attribute__((visibility("default")))
#else
#define MTR_API
#endif

/*
 * The error table: X(NAME, value, sentence).  Codes are negative so that a
 * function can return either a count or an error.  Values never change once
 * released; new codes are appended.
 */
#define MTR_ERRNO_MAP(X)                                                        \
	X(NOMEM, -1, "out of memory")                                           \
	X(INVAL, -2, "invalid argument")                                        \
	X(MALFORMED, -3, "malformed message")                                   \
	X(TRUNCATED, -4, "message truncated")                                   \
	X(INTEGRITY, -5, "integrity check failed (hash or MAC mismatch)")       \
	X(VERSION, -6, "unsupported protocol version")                          \
	X(MAGIC, -7, "not a Metronome datagram (bad magic)")                    \
	X(CLUSTER, -8, "message from another cluster")                          \
	X(TOOBIG, -9, "size exceeds the configured limit")                      \
	X(IO, -10, "input/output error")                                        \
	X(AGAIN, -11, "resource temporarily unavailable, try again")            \
	X(TIMEDOUT, -12, "operation timed out")                                 \
	X(CLOSED, -13, "connection or transport closed")                        \
	X(SYNTAX, -14, "SQL syntax error")                                      \
	X(REFUSED, -15, "statement refused: it cannot be made deterministic")   \
	X(NOTSUP, -16, "operation not supported")                               \
	X(SQL, -17, "SQL error")                                                \
	X(BUSY, -18, "busy")                                                    \
	X(EXIST, -19, "already exists")                                         \
	X(NOENT, -20, "no such entry")                                          \
	X(CONNECT, -21, "cannot connect")                                       \
	X(CONFIG, -22, "invalid configuration")                                 \
	X(DUPLICATE, -23, "duplicate")                                          \
	X(STALE, -24, "stale message (older ballot or instance)")               \
	X(FULL, -25, "buffer full, retry later")                                \
	X(ABORT, -26, "aborted by the callback")                                \
	X(NOSPACE, -27, "no space left on the device (disk full or over quota)") \
	X(UNKNOWN, -28, "outcome unknown: the write may or may not have been applied; check the row") \
	X(AUTH, -29, "authentication failed")

enum {
	MTR_OK = 0,
#define MTR__ERRNO_ENUM(name, value, text) MTR_E##name = value,
	MTR_ERRNO_MAP(MTR__ERRNO_ENUM)
#undef MTR__ERRNO_ENUM
};

/* The sentence for an error code (static storage; never NULL). */
MTR_API const char *mtr_strerror(int code);

/* The symbolic name of an error code, such as "MTR_EINVAL" (static storage). */
MTR_API const char *mtr_errname(int code);

/* ======================================================================
 * The client library (libmetronome; doc/client.md, libmetronome(3)).
 *
 * Shaped like SQLite's C API: open a connection with a URI, run SQL with
 * mtr_exec() or with prepared statements (prepare / bind / step / column /
 * reset / finalize), read errors with mtr_errcode() / mtr_errmsg().
 *
 * Connections: a handle talks to one proxy at a time over TCP (the client
 * protocol of doc/protocol.md).  Given several proxy addresses it moves to
 * the next one when its proxy dies and resends every unanswered request
 * with the same request id (see "Failover" below).
 *
 * Threads: a handle (mtr *) and the statements prepared on it may be used
 * by one thread at a time; the library takes no locks (mtr_interrupt is the
 * exception: any thread or a signal handler may call it).  Different handles
 * are independent and may be used by different threads at once.  Use one
 * handle per thread (that is what mtrload does).
 *
 * Ownership: every pointer the library returns stays owned by the library
 * unless said otherwise; the comment on each function says how long it
 * stays valid.  Strings passed in are copied before the call returns,
 * except where a comment says otherwise.
 *
 * Transactions, plainly: the servers apply a BEGIN ... COMMIT group as ONE
 * item.  So BEGIN, and every statement after it, is not sent when you step
 * it: the library collects the statement (text and bound values, copied)
 * and answers MTR_DONE at once, with no rows and no change count.  COMMIT
 * sends the collected statements as one request and waits; its answer is
 * the transaction's: MTR_DONE when every statement succeeded and the group
 * was applied atomically, an error (the first failing statement's, nothing
 * applied) otherwise.  A SELECT (or RETURNING) inside a transaction runs
 * at its place in the group; its rows come back after the COMMIT, through
 * the statement that collected it (mtr_stmt_busy() is then 1; mtr_exec
 * passes them to its callback when the COMMIT is in the same text).
 * ROLLBACK discards the collected statements (nothing was sent).  mtr_changes() / mtr_last_insert_rowid()
 * are updated at COMMIT from the collected statements.
 *
 * TEMP views and triggers belong to the handle: CREATE TEMP VIEW / TRIGGER
 * is checked by a replica and then kept by the library, which sends it in
 * front of every later request that uses it (the replica drops it again
 * after that request); DROP of one is answered locally; mtr_close forgets
 * them.  CREATE TEMP TABLE is refused (MTR_EREFUSED): its rows would live on
 * one replica.  doc/client.md "TEMP views and triggers".
 * ====================================================================== */

/* Positive step results; they never collide with the negative MTR_E*
 * codes.  Same values as SQLITE_ROW / SQLITE_DONE. */
#define MTR_ROW 100  /* mtr_step(): a row is ready (read it with mtr_column_*) */
#define MTR_DONE 101 /* mtr_step(): the statement has finished */

/* Value types of mtr_column_type(); same values as SQLite's. */
#define MTR_INTEGER 1
#define MTR_FLOAT 2
#define MTR_TEXT 3
#define MTR_BLOB 4
#define MTR_NULL 5

/* A connection handle (opaque). */
typedef struct mtr mtr;
/* A prepared statement (opaque); belongs to the handle that prepared it. */
typedef struct mtr_stmt mtr_stmt;

/*
 * Open a connection.  uri is one of
 *
 *   mtr://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...][?OPTION=VALUE[&...]]
 *   mtr+embedded://SERVER[,SERVER...][?OPTION=VALUE[&...]]
 *   local
 *
 * HOST is a name or an IPv4 address, or an IPv6 address in brackets
 * ([::1]:7400); PORT defaults to 7400.  Options:
 *   consistency=none|session|linearizable  reads (default session:
 *                           read-your-writes and monotonic)
 *   timeout=MS              how long one request may take before it fails
 *                           with MTR_ETIMEDOUT (default 10000; 0: no limit);
 *                           connecting and failover count against it
 *   busy=MS                 as mtr_busy_timeout() (default 0)
 *   key=HEX32               the cluster key (32 hex digits): used by the
 *                           embedded mode to authenticate its datagrams
 *   tls=off|require|insecure  TLS to the proxy (default off); require
 *                           verifies the proxy's certificate chain and that
 *                           it names HOST; insecure verifies nothing (tests)
 *   ca=FILE                 with tls=require: the PEM certificates to trust
 *                           (default: the system's trust store)
 * USER[:PASSWORD]@ logs in to proxies that have users (proxy.users): both
 * percent-decoded (%40 for '@', %3A for ':'); without PASSWORD the
 * environment variable MTR_PASSWORD is used, and without either the open
 * fails with MTR_EAUTH.  The password crosses the network in the clear
 * unless the connection uses TLS.  Messages show the URI without it.
 * Embedded mode (no proxy daemon: the library runs the proxy in a thread of
 * this process and multicasts to the servers itself):
 *   mtr+embedded://SERVER,...  SERVER is a server's IP:PORT, in server id
 *                           order; extra options cluster=ID (default 1),
 *                           group=IP:PORT (multicast), key=HEX32
 *   local                   the local cluster of the Quick start (started
 *                           if it is not running, and left running; its
 *                           directory from $MTR_LOCAL_DIR, default
 *                           ~/.local/share/metronome/local)
 * An embedded handle has no failover (its proxy lives and dies with the
 * process); mtr_close stops the proxy thread.
 *
 * Returns 0 with a connected handle in *db; or an error: MTR_EINVAL (bad
 * URI), MTR_ECONNECT (no proxy answered), MTR_EAUTH (the login was refused:
 * wrong password, unknown user, a user name required; or no password), MTR_ECONFIG / MTR_EIO / MTR_ETIMEDOUT
 * (embedded mode: bad settings, the local cluster could not start), MTR_ENOMEM.
 * A TLS failure is MTR_ECONNECT naming the reason ("certificate verify
 * failed: hostname mismatch", "the proxy at HOST:PORT does not speak TLS").  As with sqlite3_open, *db is set even on error (unless memory
 * ran out: then NULL) so that mtr_errmsg(*db) can say why; the caller
 * always releases it with mtr_close().
 */
MTR_API int mtr_open(const char *uri, mtr **db);

/*
 * Close the connection and free the handle and every statement still
 * prepared on it (their pointers become invalid).  Callbacks of requests
 * submitted with mtr_submit() and not yet answered are called with
 * MTR_ECLOSED first.  A write already sent may still be applied by the
 * cluster.  db may be NULL.  Returns 0.
 */
MTR_API int mtr_close(mtr *db);

/* The row callback of mtr_exec: ncols columns; values[i] is the text form
 * of column i (NULL for NULL), names[i] its name.  Both arrays and strings
 * are valid only during the call.  Return 0 to go on, non-zero to stop
 * (mtr_exec then returns MTR_EABORT). */
typedef int (*mtr_callback)(void *arg, int ncols, char **values, char **names);

/*
 * Run every statement of sql (NUL-terminated) in order, each as
 * mtr_prepare + mtr_step until done + mtr_finalize, calling cb (may be
 * NULL) once per result row.  Stops at the first error.  Returns 0 or the
 * error code; when errmsg is not NULL, *errmsg is set to a copy of the
 * message (free it with mtr_free) or NULL on success.
 */
MTR_API int mtr_exec(mtr *db, const char *sql, mtr_callback cb, void *arg, char **errmsg);

/* Free memory the library handed over (mtr_exec's *errmsg).  NULL is ok. */
MTR_API void mtr_free(void *p);

/*
 * Prepare the first statement of sql: nbytes bytes of it, or up to the NUL
 * when nbytes < 0.  The text is checked here by the same SQL front end the
 * proxy runs: a syntax error returns MTR_ESYNTAX, a statement that cannot be
 * made deterministic MTR_EREFUSED, both with mtr_errmsg() "line L, column
 * C: ..." (1-based, in sql).  Nothing is sent before mtr_step().
 * On success *st is the statement (free with mtr_finalize) or NULL when sql
 * holds no statement (only blanks or comments); when tail is not NULL,
 * *tail points into sql just after the statement (after its ';').
 */
MTR_API int mtr_prepare(mtr *db, const char *sql, int nbytes, mtr_stmt **st, const char **tail);

/*
 * Bind values to parameters, numbered as SQLite numbers them (1-based;
 * ?NNN is NNN, a name reuses its number).  Values are copied.  A parameter
 * never bound is NULL.  Returns 0, MTR_EINVAL (index out of range, blob
 * n < 0), MTR_EBUSY (the statement is in the middle of its rows: mtr_reset
 * it first), MTR_ETOOBIG, MTR_ENOMEM.  text: n bytes, or up to the NUL when
 * n < 0; a NULL text binds NULL.
 */
MTR_API int mtr_bind_int64(mtr_stmt *st, int index, int64_t value);
MTR_API int mtr_bind_double(mtr_stmt *st, int index, double value);
MTR_API int mtr_bind_text(mtr_stmt *st, int index, const char *text, int n);
MTR_API int mtr_bind_blob(mtr_stmt *st, int index, const void *data, int n);
MTR_API int mtr_bind_null(mtr_stmt *st, int index);
/* As SQLite's: an int (mtr_bind_int64 of it), and a blob of n zero bytes
 * (n < 0: an empty blob). */
MTR_API int mtr_bind_int(mtr_stmt *st, int index, int value);
MTR_API int mtr_bind_zeroblob(mtr_stmt *st, int index, int n);

/* The largest parameter number of the statement (0: no parameters). */
MTR_API int mtr_bind_parameter_count(mtr_stmt *st);
/* The number of the parameter called name (with its prefix: ":a", "@a",
 * "$a", "?3"); 0 when there is none. */
MTR_API int mtr_bind_parameter_index(mtr_stmt *st, const char *name);
/* The name of parameter index as written (":a"), NULL for a bare "?" or an
 * unknown index.  Owned by the statement. */
MTR_API const char *mtr_bind_parameter_name(mtr_stmt *st, int index);
/* Set every parameter back to NULL.  Returns 0 or MTR_EBUSY. */
MTR_API int mtr_clear_bindings(mtr_stmt *st);

/*
 * Run the statement or move to its next row.  The first step after
 * prepare/reset sends the statement with its bound values and waits for the
 * answer (at most the handle's timeout); the whole result comes back at once
 * and later steps read it locally.  Returns MTR_ROW, MTR_DONE, or an error:
 * MTR_ESQL (SQLite failed: mtr_extended_errcode() has SQLite's code),
 * MTR_ESYNTAX / MTR_EREFUSED / MTR_EINVAL (the proxy refused it; mtr_errmsg
 * has the position), MTR_ETIMEDOUT (no answer in time: a write may still be
 * applied later), MTR_EUNKNOWN (the proxy lost the write's result for good:
 * it may or may not have been applied; read the row), MTR_EBUSY (the proxy
 * stayed busy past the busy timeout),
 * MTR_ECONNECT (no proxy reachable).  After MTR_DONE or an error, the next
 * step runs the statement again (as after mtr_reset).  Inside BEGIN ...
 * COMMIT see "Transactions" above.
 */
MTR_API int mtr_step(mtr_stmt *st);

/* Columns of the result: known after the first mtr_step (0 before it, and
 * for statements that return no rows). */
MTR_API int mtr_column_count(mtr_stmt *st);
/* Name of column i (owned by the statement; valid until the statement runs
 * again or is finalized); NULL when i is out of range. */
MTR_API const char *mtr_column_name(mtr_stmt *st, int i);
/* Type of column i of the current row (MTR_INTEGER .. MTR_NULL). */
MTR_API int mtr_column_type(mtr_stmt *st, int i);
/* Value of column i of the current row, converted as SQLite converts
 * (TEXT to number: its leading number or 0; NULL: 0 / 0.0 / NULL). */
MTR_API int64_t mtr_column_int64(mtr_stmt *st, int i);
MTR_API double mtr_column_double(mtr_stmt *st, int i);
/* As sqlite3_column_int: the low 32 bits of mtr_column_int64. */
MTR_API int mtr_column_int(mtr_stmt *st, int i);
/* The number of values of the current row: mtr_column_count() after
 * MTR_ROW, 0 when there is no row (before the first step, after MTR_DONE
 * or an error) (sqlite3_data_count). */
MTR_API int mtr_data_count(mtr_stmt *st);
/* Text form (NUL-terminated; numbers formatted like SQLite; NULL for NULL)
 * and bytes.  Owned by the statement, valid until the next step, reset or
 * finalize.  mtr_column_blob of a zero-length value is NULL. */
MTR_API const unsigned char *mtr_column_text(mtr_stmt *st, int i);
MTR_API const void *mtr_column_blob(mtr_stmt *st, int i);
/* Bytes of the TEXT/BLOB value (of the text form for numbers; 0 for NULL). */
MTR_API int mtr_column_bytes(mtr_stmt *st, int i);

/* Make the statement ready to run again; keeps its bindings.  Returns 0. */
MTR_API int mtr_reset(mtr_stmt *st);
/* Free the statement.  NULL is ok.  Returns 0. */
MTR_API int mtr_finalize(mtr_stmt *st);
/* The statement's SQL text (NUL-terminated copy owned by the statement). */
MTR_API const char *mtr_sql(mtr_stmt *st);
/* 1 when the statement does not write (SQLite's sqlite3_stmt_readonly). */
MTR_API int mtr_stmt_readonly(mtr_stmt *st);
/* 1 when the statement has rows left to step: it returned MTR_ROW and has
 * not reached MTR_DONE or been reset, or it ran inside BEGIN ... COMMIT and
 * the COMMIT brought its rows (SQLite's sqlite3_stmt_busy). */
MTR_API int mtr_stmt_busy(mtr_stmt *st);
/* 0 while a BEGIN ... COMMIT is open on the handle (its statements are
 * collected and run at COMMIT), else 1 (SQLite's sqlite3_get_autocommit). */
MTR_API int mtr_get_autocommit(mtr *db);

/* Rows changed by the last INSERT/UPDATE/DELETE of this handle. */
MTR_API int64_t mtr_changes(mtr *db);
/* Rowid of the last row inserted by an INSERT of this handle (0: none). */
MTR_API int64_t mtr_last_insert_rowid(mtr *db);

/*
 * The last call's outcome on this handle: mtr_errcode() is 0 or an MTR_E*
 * code; when it is MTR_ESQL (SQLite failed on a replica),
 * mtr_extended_errcode() is SQLite's extended result code, e.g.
 * SQLITE_CONSTRAINT_PRIMARYKEY (1555) -- the same values as sqlite3.h --
 * and 0 otherwise.  mtr_errmsg() is the sentence ("not an error" after
 * success); for refusals it starts with "line L, column C: ".  The string
 * is owned by the handle and valid until the next call on it.
 */
MTR_API int mtr_errcode(mtr *db);
MTR_API int mtr_extended_errcode(mtr *db);
MTR_API const char *mtr_errmsg(mtr *db);

/* The highest instance any answer on this handle reflected (0: none).  A
 * session read (the default) is answered by a replica that has applied at
 * least this instance. */
MTR_API uint64_t mtr_last_instance(mtr *db);
/* Reads on this handle see at least instance `instance` (a causal token:
 * the mtr_last_instance() of a write on another handle, any proxy); it
 * only ever raises the session's floor.  URI option min_instance=N does
 * the same at open.  0 or MTR_EINVAL. */
MTR_API int mtr_set_min_instance(mtr *db, uint64_t instance);

/*
 * Backup (doc/client.md "Backup"): copy the cluster's database into the
 * SQLite file path, as of one applied instance (at least
 * mtr_last_instance()).  One server makes a consistent copy of its replica
 * and streams it through the proxy in parts: memory stays bounded whatever
 * the size.  The bytes go to "path.tmp", which becomes path only when the
 * copy is complete and checked (the server's MAC under the cluster key,
 * checked by the proxy); path is then an ordinary SQLite database (empty
 * blobs stay blobs, every table, index, view and trigger, sqlite_sequence)
 * with a table mtr_meta holding the cluster settings (max_steps,
 * foreign_keys) and backup_instance, backup_time.  Restore it with
 * metronomed --init-from or mtrsql .restore.
 * progress (may be NULL) is called with total 0 once the request is sent,
 * then after each part with the bytes received so far, the copy's size
 * and instance; a non-zero return abandons the backup (MTR_EABORT).  The
 * handle must have no request in flight and no open transaction
 * (MTR_EBUSY).  Returns 0 (mtr_last_instance() is then the copy's
 * instance), MTR_EIO (the transfer or the file failed), MTR_ECONNECT,
 * MTR_ETIMEDOUT, MTR_EABORT, MTR_ENOMEM; mtr_errmsg() says what happened.
 */
typedef int (*mtr_progress_fn)(void *arg, uint64_t done, uint64_t total, uint64_t instance);
MTR_API int mtr_backup(mtr *db, const char *path, mtr_progress_fn progress, void *arg);

/*
 * Membership (doc/paxos.md "Membership", doc/operations.md "Add a
 * server"): ask the cluster's leader, through the proxy, to change the
 * configuration; each returns once the new configuration is chosen (it is
 * in force 8 instances later; see mtr_members).
 *   mtr_add_server     adds a learner at addr ("IP:PORT", the new server's
 *                      server.address) under a new id (above every id the
 *                      cluster ever had), stored in *new_id (may be NULL);
 *                      an address that is a learner already: its id
 *   mtr_promote_server makes learner id a voter (once it has caught up)
 *   mtr_remove_server  removes id (a voter or a learner); ids never return
 * One change at a time in the cluster.  The handle must have no request in
 * flight and no open transaction (MTR_EBUSY).  With proxy.users, the user
 * must be one of proxy.admins when that is set (MTR_EAUTH).  Returns 0, or
 * MTR_EAGAIN (no leader: nothing done, try again), MTR_EBUSY (another
 * change is pending, or the learner has not caught up), MTR_EINVAL (an
 * address that is not IP:PORT, a removed id, or a change that would leave
 * fewer voters up than a majority), MTR_ENOENT (not a member), MTR_EEXIST,
 * MTR_ETOOBIG (16 members, or no id left), MTR_EUNKNOWN / MTR_ETIMEDOUT
 * (no decision seen: look at mtr_members), MTR_EIO, MTR_ECONNECT;
 * mtr_errmsg() says which and what to do.
 */
MTR_API int mtr_add_server(mtr *db, const char *addr, uint32_t *new_id);
MTR_API int mtr_promote_server(mtr *db, uint32_t id);
MTR_API int mtr_remove_server(mtr *db, uint32_t id);

/*
 * Busy handling: when the proxy answers MTR_EBUSY or MTR_EFULL (its buffers
 * are full), mtr_step / mtr_exec wait (1 ms, doubling up to 100 ms) and send
 * the request again (a new request id: the refused one was not applied),
 * for at most ms milliseconds in all; 0 (the default) returns the busy error
 * at once.  Returns 0.
 */
MTR_API int mtr_busy_timeout(mtr *db, int ms);

/* ---- logging ----
 * The library logs events an application may want to see: a connection
 * lost and a failover, a proxy that refused a login, a cluster started in
 * embedded mode.  By default warnings and errors go to stderr, one line
 * each with a timestamp; the environment variable MTR_LOG (error, warn,
 * info, debug, trace) sets another level.  mtr_config_log sends them to
 * fn instead: fn(arg, level, message), MTR_LOG_ERROR .. MTR_LOG_TRACE, the
 * message without timestamp or newline, called on the thread that logs,
 * possibly from several threads at once (the embedded mode's proxy
 * thread); level is the most detailed level passed.  fn NULL: stderr
 * again.  Call it before opening handles; the setting is the process's.
 * 0, or MTR_EINVAL for a level out of range. */
enum { MTR_LOG_ERROR = 0, MTR_LOG_WARN = 1, MTR_LOG_INFO = 2, MTR_LOG_DEBUG = 3, MTR_LOG_TRACE = 4 };
typedef void (*mtr_log_fn)(void *arg, int level, const char *msg);
MTR_API int mtr_config_log(mtr_log_fn fn, void *arg, int level);
/* Set the per-request timeout (as the URI's timeout=, 0: none).  Returns 0. */
MTR_API int mtr_set_timeout(mtr *db, int ms);

/*
 * Cancel what the handle is waiting for, like sqlite3_interrupt.  A read in
 * progress (an mtr_step or mtr_exec waiting for its answer) is stopped on
 * the cluster: the proxy tells the server running it, whose reader thread
 * interrupts SQLite, and the step returns MTR_ESQL at once with
 * mtr_extended_errcode() SQLITE_INTERRUPT (9) and mtr_errmsg() "read
 * cancelled"; mtr_exec stops there.  A write that has been sent cannot be
 * taken back (it is ordered already): the step goes on waiting and reports
 * its real outcome (applied, or its error); so does a COMMIT.  A statement
 * collected inside BEGIN ... COMMIT has not been sent: nothing to cancel.
 * When nothing is in progress the call has no effect on statements started
 * later (as in SQLite); one that arrives just as a statement starts may
 * miss it: calling it again is harmless.
 *
 * Safe to call from another thread while the handle is in use, and from a
 * signal handler (it sets an atomic flag and writes to an eventfd: both
 * async-signal-safe; errno is preserved).  Not safe once mtr_close() of
 * the handle has begun.  db may be NULL (nothing happens).
 */
MTR_API void mtr_interrupt(mtr *db);

/*
 * Pipelining (asynchronous writes).  mtr_submit sends the statement with its
 * current bindings (copied: the statement may be rebound and submitted again
 * at once) and returns without waiting.  done is called exactly once, later,
 * from inside mtr_poll (or any other call on the handle that waits for the
 * proxy, or mtr_close), on the calling thread, with rc 0 or the error code,
 * SQLite's extended code when rc is MTR_ESQL, and the statement's changes and
 * last rowid.  Result rows are discarded: submit writes, step reads.
 * A submit that fails returns the error and never calls done.  Inside done,
 * mtr_errmsg() / mtr_errcode() / mtr_extended_errcode() of the handle
 * describe this request's failure; done must not call any other function
 * on the same handle.  Not available inside BEGIN ... COMMIT or for
 * transaction control (MTR_EINVAL).  Answers come in submission order; each
 * request has the handle's timeout; busy answers are not retried (done gets
 * MTR_EBUSY / MTR_EFULL).
 */
typedef void (*mtr_done_fn)(void *arg, int rc, int extended, int64_t changes, int64_t last_rowid);
MTR_API int mtr_submit(mtr_stmt *st, mtr_done_fn done, void *arg);
/* Wait up to timeout_ms (< 0: until something happens) for answers and call
 * their callbacks.  Returns the number of callbacks called (0 when none was
 * pending or the time ran out) or an error. */
MTR_API int mtr_poll(mtr *db, int timeout_ms);
/* Requests submitted and not yet completed. */
MTR_API int mtr_pending(mtr *db);

/*
 * Failover and resends:
 * - Every request has a request id, unique and increasing within the handle;
 *   the handle also has a random 64-bit client id sent in HELLO.
 * - When the connection breaks (EOF, error, BYE) or a request on it timed
 *   out (answers leave a proxy in request order: one that never comes holds
 *   up the rest), the handle connects to the next address of the URI (round
 *   robin; the same one when there is one) and sends again every request not
 *   yet answered, in order, with the same request ids.  A handle without an
 *   address (embedded, client_open_fd) keeps its connection on a time-out.
 * - A write is applied at most once per (client id, request id): the
 *   replicas keep its result and answer a resend with it (RETURNING rows
 *   included) instead of running it again.  Reads are not de-duplicated
 *   (they are safe to resend).  A request that timed out is never resent and
 *   its outcome is unknown, like one answered MTR_EUNKNOWN (the proxy got
 *   no result from any replica within proxy.write_timeout, or one said it
 *   applied the write but no longer keeps its result).  doc/client.md
 *   "Failover and idempotency".
 */


#ifdef __cplusplus
}
#endif
#endif /* METRONOME_H */
