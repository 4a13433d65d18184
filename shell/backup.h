/*
 * backup.h - mtrsql's .backup and .restore (doc/mtrsql.1).
 *
 * .backup FILE: mtr_backup() (metronome.h): one server's consistent copy
 * of its replica at one instance, streamed through the proxy in parts, any
 * size, bounded memory; progress on a terminal.
 *
 * .restore FILE: the SQLite file FILE (a .backup copy or any SQLite
 * database) loaded into an EMPTY cluster through ordinary ordered writes,
 * so every replica applies the same: the tables (their CREATE text as in
 * the file), their rows with their rowids in transactions of bounded size,
 * sqlite_sequence, then the indexes, views and triggers (after the rows:
 * triggers do not fire during the load), then the cluster settings a
 * backup carries (mtr_max_steps, foreign_keys), user_version and
 * application_id.  A cluster that has tables
 * is refused.  Not copied: virtual tables (refused: use metronomed
 * --init-from), sqlite_stat* (run ANALYZE).
 */
#ifndef MTR_SHELL_BACKUP_H
#define MTR_SHELL_BACKUP_H

#include <stddef.h>

#include "metronome.h"

/* .backup: 0, or -1 with the reason in err.  tty: show progress on stderr. */
int backup_run(mtr *db, const char *path, int tty, char *err, size_t errlen);

/* .restore: 0, or -1 with the reason in err.  tty: show progress. */
int restore_run(mtr *db, const char *path, int tty, char *err, size_t errlen);

#endif
