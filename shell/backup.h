/*
 * backup.h - mtrsql's .backup: a consistent SQLite file of the cluster's
 * database at one instance (doc/mtrsql.1, ".backup").
 *
 * The whole database is read by ONE SELECT (a UNION ALL of the schema, the
 * user_version and every table's rows), so one replica answers it from one
 * read transaction: the copy is the database as of one applied instance.
 * The schema is read first to build that SELECT and read again inside it;
 * if they differ (DDL in between), it tries again.  The copy is written to
 * PATH.tmp and renamed over PATH.  Limits: the answer must fit in one
 * frame of the client protocol (64 MiB, CPROTO_MAX_FRAME); at most
 * 499 tables (SQLite's compound SELECT limit); virtual tables are not
 * copied.
 */
#ifndef MTR_SHELL_BACKUP_H
#define MTR_SHELL_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "metronome.h"

struct backup_stats {
	uint64_t instance; /* the instance the copy reflects */
	unsigned tables;
	uint64_t rows;
};

/* Copy the database behind db into the SQLite file path.  0, or -1 with
 * the reason in err (errlen bytes). */
int backup_run(mtr *db, const char *path, struct backup_stats *st, char *err, size_t errlen);

#endif
