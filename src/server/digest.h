/*
 * digest.h - a logical digest of a SQLite database (doc/apply.md, "Digest").
 *
 * XXH3-128 over the schema (sqlite_schema rows: type, name, tbl_name, sql,
 * ordered by type, name) and then every ordinary table's rows in rowid order
 * (or primary-key order for WITHOUT ROWID tables), each value hashed with its
 * type.  Two databases with the same logical content give the same digest,
 * whatever their page layout, so replicas that applied the same instances
 * agree.
 */
#ifndef MTR_DIGEST_H
#define MTR_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* A 128-bit digest. */
struct digest {
	uint64_t hi, lo;
};

/* Size of the hexadecimal form with its NUL. */
#define DIGEST_HEX_SIZE 33

/*
 * Digest the main database of db.  The caller provides a read transaction if
 * it needs a consistent view across tables (BEGIN ... COMMIT around the call).
 * Returns 0 or MTR_ESQL (the SQLite message is in sqlite3_errmsg(db)).
 */
int digest_db(sqlite3 *db, struct digest *out);

/*
 * The digest of the user's content only: as digest_db, without the
 * replica's own tables (names beginning with mtr_: mtr_meta, mtr_cursor,
 * mtr_requests) and their schema rows.  Two clusters holding the same data
 * agree on it whatever their instances; a backup file and the cluster it
 * came from agree on it (doc/backup.md).  0 or MTR_ESQL.
 */
int digest_db_user(sqlite3 *db, struct digest *out);

/* Write the 32 lowercase hex digits of d and a NUL into buf. */
void digest_hex(const struct digest *d, char buf[DIGEST_HEX_SIZE]);

#endif
