/*
 * digest.c - logical database digest.
 *
 * Byte stream fed to XXH3-128 (all integers little-endian):
 *   for each schema row:  'S', then type, name, tbl_name, sql as values
 *   for each table:       'T', name as a value, then per row 'R' and its
 *                         values (rowid first for rowid tables)
 * A value is one type byte (the wire value types: 0 NULL, 1 INT, 2 REAL,
 * 3 TEXT, 4 BLOB) followed by: nothing (NULL), 8 bytes (INT, REAL as IEEE-754
 * bits) or a u32 length and the bytes (TEXT as UTF-8, BLOB).
 * Virtual tables are skipped (their content lives in shadow tables, which are
 * ordinary tables and are hashed).
 */
#include "config.h"

#include <string.h>

#include <xxhash.h>

#include "digest.h"
#include "metronome.h"
#include "util.h"
#include "wire.h"

/* Hash v as its value encoding (wire.h): the head, then any TEXT/BLOB
 * bytes, streamed without a copy. */
static void hash_value(XXH3_state_t *st, sqlite3_value *sv)
{
	uint8_t h[WIRE_VALUE_HEAD_MAX];
	struct wire_value v = {.type = WIRE_V_NULL};
	switch (sqlite3_value_type(sv)) {
	case SQLITE_INTEGER:
		v.type = WIRE_V_INT;
		v.u.i = sqlite3_value_int64(sv);
		break;
	case SQLITE_FLOAT:
		v.type = WIRE_V_REAL;
		v.u.r = sqlite3_value_double(sv);
		break;
	case SQLITE_TEXT:
		v.type = WIRE_V_TEXT;
		v.u.b.p = sqlite3_value_text(sv);
		v.u.b.n = (uint32_t)sqlite3_value_bytes(sv);
		break;
	case SQLITE_BLOB:
		v.type = WIRE_V_BLOB;
		v.u.b.p = sqlite3_value_blob(sv);
		v.u.b.n = (uint32_t)sqlite3_value_bytes(sv);
		break;
	}
	XXH3_128bits_update(st, h, wire_value_head(h, &v));
	if ((v.type == WIRE_V_TEXT || v.type == WIRE_V_BLOB) && v.u.b.n > 0)
		XXH3_128bits_update(st, v.u.b.p, v.u.b.n);
}

static void hash_row(XXH3_state_t *st, sqlite3_stmt *s)
{
	int n = sqlite3_column_count(s);
	for (int i = 0; i < n; i++)
		hash_value(st, sqlite3_column_value(s, i));
}

/* Hash every row of table name (rowid table when wr == 0). */
static int hash_table(sqlite3 *db, XXH3_state_t *st, const char *name, int wr)
{
	char *sql = NULL;
	int rc;
	if (!wr) {
		sql = sqlite3_mprintf("SELECT _rowid_, * FROM main.\"%w\" ORDER BY _rowid_", name);
	} else {
		/* The primary-key columns, in key order. */
		sqlite3_stmt *pk;
		char *q = sqlite3_mprintf("SELECT name FROM pragma_table_info(%Q) WHERE pk > 0 ORDER BY pk", name);
		if (q == NULL)
			return MTR_ENOMEM;
		rc = sqlite3_prepare_v2(db, q, -1, &pk, NULL);
		sqlite3_free(q);
		if (rc != SQLITE_OK)
			return MTR_ESQL;
		char *order = sqlite3_mprintf("%s", "");
		while (order != NULL && sqlite3_step(pk) == SQLITE_ROW) {
			char *o = sqlite3_mprintf("%s%s\"%w\"", order, order[0] ? ", " : "",
						  (const char *)sqlite3_column_text(pk, 0));
			sqlite3_free(order);
			order = o;
		}
		sqlite3_finalize(pk);
		if (order == NULL)
			return MTR_ENOMEM;
		sql = sqlite3_mprintf("SELECT * FROM main.\"%w\" ORDER BY %s", name, order);
		sqlite3_free(order);
	}
	if (sql == NULL)
		return MTR_ENOMEM;
	sqlite3_stmt *s;
	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return MTR_ESQL;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		XXH3_128bits_update(st, "R", 1);
		hash_row(st, s);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : MTR_ESQL;
}

/* Digest of db; user != 0 leaves out the replica's own tables (names
 * beginning with mtr_) and every schema row that belongs to them. */
static int digest_any(sqlite3 *db, struct digest *out, int user)
{
	XXH3_state_t *st = XXH3_createState();
	if (st == NULL)
		return MTR_ENOMEM;
	XXH3_128bits_reset(st);
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db,
				    user ? "SELECT type, name, tbl_name, sql FROM main.sqlite_schema WHERE "
					   "tbl_name NOT LIKE 'mtr\\_%' ESCAPE '\\' ORDER BY type, name"
					 : "SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY type, name",
				    -1, &s, NULL);
	if (rc != SQLITE_OK) {
		XXH3_freeState(st);
		return MTR_ESQL;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		XXH3_128bits_update(st, "S", 1);
		hash_row(st, s);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		XXH3_freeState(st);
		return MTR_ESQL;
	}
	/* Ordinary tables (not virtual: type 'table' in pragma_table_list). */
	rc = sqlite3_prepare_v2(db,
				"SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "
				"AND name NOT LIKE 'sqlite\\_schema' ESCAPE '\\' "
				"AND name NOT LIKE 'sqlite\\_temp\\_schema' ESCAPE '\\' "
				"AND (?1 = 0 OR name NOT LIKE 'mtr\\_%' ESCAPE '\\') ORDER BY name",
				-1, &s, NULL);
	if (rc != SQLITE_OK) {
		XXH3_freeState(st);
		return MTR_ESQL;
	}
	sqlite3_bind_int(s, 1, user);
	int err = 0;
	while (err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		XXH3_128bits_update(st, "T", 1);
		hash_value(st, sqlite3_column_value(s, 0));
		err = hash_table(db, st, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int(s, 1));
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = MTR_ESQL;
	sqlite3_finalize(s);
	if (err == 0) {
		XXH128_hash_t h = XXH3_128bits_digest(st);
		out->hi = h.high64;
		out->lo = h.low64;
	}
	XXH3_freeState(st);
	return err;
}

void digest_hex(const struct digest *d, char buf[DIGEST_HEX_SIZE])
{
	static const char hx[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		uint64_t w = i < 8 ? d->hi : d->lo;
		unsigned byte = (unsigned)(w >> (8 * (7 - (i & 7)))) & 0xff;
		buf[2 * i] = hx[byte >> 4];
		buf[2 * i + 1] = hx[byte & 15];
	}
	buf[32] = 0;
}

int digest_db(sqlite3 *db, struct digest *out)
{
	return digest_any(db, out, 0);
}

int digest_db_user(sqlite3 *db, struct digest *out)
{
	return digest_any(db, out, 1);
}
