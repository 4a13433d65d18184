/*
 * apply_init.c - a new replica created from a SQLite file (metronomed
 * --init-from, doc/backup.md "Restore").
 *
 * The file is opened read-only, checked (PRAGMA integrity_check), copied
 * page by page with SQLite's backup API into DIR/replica.db.init, and there
 * made a replica at instance 0: the replica's own tables of a Metronome
 * backup (mtr_cursor, mtr_requests, mtr_conf: a new cluster starts from
 * its own cluster.servers) are dropped, mtr_meta keeps only the
 * cluster settings (max_steps, foreign_keys), and it records where the
 * content came from (restored_from, restored_instance, restored_digest) and
 * the cluster's origin: 64 bits of the user digest (digest_db_user) of the
 * content.  Then the file is renamed to DIR/replica.db.  Servers compare
 * their origins in STATUS before they take each other's Paxos messages
 * (doc/server.md "Origin").
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "apply.h"
#include "apply_int.h"
#include "digest.h"
#include "log.h"
#include "metronome.h"
#include "util.h"

/* Pages copied per backup step: bounded memory whatever the file's size. */
#define INIT_STEP_PAGES 1024

/* The mtr_meta keys a restore keeps: cluster settings set through the log. */
static const char keep_keys[] = "'max_steps', 'foreign_keys'";

static int init_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static int exists(const char *dir, const char *name)
{
	char p[4200];
	struct stat sb;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return stat(p, &sb) == 0;
}

/* The first column of the first row of sql on db, as text, into out. */
static int first_text(sqlite3 *db, const char *sql, char *out, size_t n)
{
	sqlite3_stmt *st;
	out[0] = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Make the copy at db a replica at instance 0 (see the top of the file). */
static int init_fixup(sqlite3 *db, const char *from, uint64_t *origin, char *err, size_t errlen)
{
	char bad[256];
	if (first_text(db,
		       "SELECT name FROM sqlite_schema WHERE name LIKE 'mtr\\_%' ESCAPE '\\' AND "
		       "name NOT IN ('mtr_meta', 'mtr_cursor', 'mtr_requests', 'mtr_conf') LIMIT 1",
		       bad, sizeof bad) != 0)
		return init_fail(err, errlen, MTR_ESQL, "reading the schema: %s", sqlite3_errmsg(db));
	if (bad[0])
		return init_fail(err, errlen, MTR_EINVAL,
				 "%s has a schema object named %s: names beginning with mtr_ are reserved for the "
				 "replica's own tables; rename it and try again",
				 from, bad);
	char inst[32] = "0";
	int has_meta = sqlite3_table_column_metadata(db, "main", "mtr_meta", "value", NULL, NULL, NULL, NULL, NULL) ==
		       SQLITE_OK;
	if (has_meta &&
	    first_text(db,
		       "SELECT value FROM mtr_meta WHERE key IN ('backup_instance', 'applied') "
		       "ORDER BY key = 'backup_instance' DESC LIMIT 1",
		       inst, sizeof inst) != 0)
		return init_fail(err, errlen, MTR_ESQL, "reading mtr_meta of %s: %s", from, sqlite3_errmsg(db));
	char *sql = sqlite3_mprintf("BEGIN; DROP TABLE IF EXISTS mtr_cursor; DROP TABLE IF EXISTS mtr_requests;"
				    "DROP TABLE IF EXISTS mtr_conf;"
				    "CREATE TABLE IF NOT EXISTS mtr_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
				    "DELETE FROM mtr_meta WHERE key NOT IN (%s); COMMIT",
				    keep_keys);
	if (sql == NULL)
		return init_fail(err, errlen, MTR_ENOMEM, "out of memory");
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		init_fail(err, errlen, MTR_ESQL, "preparing the replica from %s: %s", from, sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return MTR_ESQL;
	}
	struct digest d;
	if (digest_db_user(db, &d) != 0)
		return init_fail(err, errlen, MTR_ESQL, "digest of %s: %s", from, sqlite3_errmsg(db));
	char hex[DIGEST_HEX_SIZE];
	digest_hex(&d, hex);
	*origin = d.lo; /* 0 means "started empty", all ones "pending" */
	if (*origin == 0 || *origin == APPLY_ORIGIN_PENDING)
		*origin = 1;
	char where[PATH_MAX];
	if (realpath(from, where) == NULL)
		snprintf(where, sizeof where, "%s", from);
	sql = sqlite3_mprintf("BEGIN; INSERT INTO mtr_meta VALUES('applied', 0);"
			      "INSERT INTO mtr_meta VALUES('schema_version', %d);"
			      "INSERT INTO mtr_meta VALUES('origin', %lld);"
			      "INSERT INTO mtr_meta VALUES('restored_from', %Q);"
			      "INSERT INTO mtr_meta VALUES('restored_instance', %lld);"
			      "INSERT INTO mtr_meta VALUES('restored_digest', %Q); COMMIT",
			      APPLY_SCHEMA_VERSION, (long long)*origin, where, atoll(inst), hex);
	if (sql == NULL)
		return init_fail(err, errlen, MTR_ENOMEM, "out of memory");
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		init_fail(err, errlen, MTR_ESQL, "recording the restore: %s", sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return MTR_ESQL;
	}
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
		return init_fail(err, errlen, MTR_ESQL, "switching the copy to WAL: %s", sqlite3_errmsg(db));
	mtr_log(LOG_INFO, "[apply] replica created from %s (instance %s of its cluster, user digest %s, origin %016llx)",
		where, inst, hex, (unsigned long long)*origin);
	return 0;
}

/* Check src and copy it into db, INIT_STEP_PAGES at a time. */
static int init_copy(sqlite3 *src, sqlite3 *db, const char *from, char *err, size_t errlen)
{
	char res[256];
	if (first_text(src, "PRAGMA integrity_check", res, sizeof res) != 0)
		return init_fail(err, errlen, MTR_EINVAL, "%s is not a usable SQLite database: %s", from,
				 sqlite3_errmsg(src));
	if (strcmp(res, "ok") != 0)
		return init_fail(err, errlen, MTR_EINVAL,
				 "%s fails PRAGMA integrity_check (%s): repair it (sqlite3 .recover) first", from, res);
	sqlite3_backup *b = sqlite3_backup_init(db, "main", src, "main");
	if (b == NULL)
		return init_fail(err, errlen, MTR_ESQL, "copying %s: %s", from, sqlite3_errmsg(db));
	int rc;
	while ((rc = sqlite3_backup_step(b, INIT_STEP_PAGES)) == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		if (rc != SQLITE_OK)
			sqlite3_sleep(10);
	int frc = sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE || frc != SQLITE_OK)
		return init_fail(err, errlen, apply_local_error(rc) ? MTR_EIO : MTR_ESQL, "copying %s: %s", from,
				 sqlite3_errstr(rc != SQLITE_DONE ? rc : frc));
	return 0;
}

/* MTR_EEXIST when dir holds a replica (the message names the option). */
static int init_refuse(const char *dir, const char *opt, char *err, size_t errlen)
{
	if (exists(dir, APPLY_DB_NAME) || exists(dir, "paxos/log"))
		return init_fail(err, errlen, MTR_EEXIST,
				 "data.dir %s already holds a replica: %s only creates a new one; start without %s, or "
				 "move the directory away to restore into an empty one",
				 dir, opt, opt);
	return 0;
}

int apply_init_pending(const char *dir, char *err, size_t errlen)
{
	int rc = init_refuse(dir, "--init-from-peer", err, errlen);
	if (rc != 0)
		return rc;
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, APPLY_DB_NAME);
	sqlite3 *db = NULL;
	char *sql = sqlite3_mprintf("PRAGMA journal_mode=WAL; BEGIN;"
				    "CREATE TABLE mtr_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
				    "INSERT INTO mtr_meta VALUES('applied', 0);"
				    "INSERT INTO mtr_meta VALUES('schema_version', %d);"
				    "INSERT INTO mtr_meta VALUES('origin', %lld); COMMIT",
				    APPLY_SCHEMA_VERSION, (long long)APPLY_ORIGIN_PENDING);
	if (sql == NULL || sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		rc = init_fail(err, errlen, MTR_EIO, "creating %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_free(sql);
	sqlite3_close(db);
	if (rc != 0)
		apply_unlink_db(path);
	return rc;
}

int apply_init_from(const char *dir, const char *from, uint64_t *origin, char *err, size_t errlen)
{
	if (dir == NULL || from == NULL || origin == NULL)
		return init_fail(err, errlen, MTR_EINVAL, "no data directory or file");
	int rc = init_refuse(dir, "--init-from", err, errlen);
	if (rc != 0)
		return rc;
	sqlite3 *src = NULL, *db = NULL;
	if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		rc = init_fail(err, errlen, MTR_EIO, "cannot open %s: %s", from,
			       src ? sqlite3_errmsg(src) : "out of memory");
		sqlite3_close(src);
		return rc;
	}
	sqlite3_busy_timeout(src, 5000);
	char tmp[4200], dst[4200];
	snprintf(tmp, sizeof tmp, "%s/%s.init", dir, APPLY_DB_NAME);
	snprintf(dst, sizeof dst, "%s/%s", dir, APPLY_DB_NAME);
	apply_unlink_db(tmp);
	if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		rc = init_fail(err, errlen, MTR_EIO, "cannot create %s: %s", tmp, db ? sqlite3_errmsg(db) : "no memory");
	} else {
		sqlite3_extended_result_codes(db, 1);
		rc = init_copy(src, db, from, err, errlen);
		if (rc == 0)
			rc = init_fixup(db, from, origin, err, errlen);
	}
	sqlite3_close(src);
	if (sqlite3_close(db) != SQLITE_OK && rc == 0)
		rc = init_fail(err, errlen, MTR_EIO, "closing %s", tmp);
	if (rc == 0) {
		int fd = open(tmp, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) != 0 || rename(tmp, dst) != 0)
			rc = init_fail(err, errlen, MTR_EIO, "installing %s: %s", dst, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			if (fsync(fd) != 0 && rc == 0)
				rc = init_fail(err, errlen, MTR_EIO, "syncing %s: %s", dir, strerror(errno));
			close(fd);
		}
	}
	if (rc != 0)
		apply_unlink_db(tmp);
	return rc;
}
