/*
 * walbuf.h - a transaction's WAL frames reach the file in one write
 * (doc/apply.md "WAL writes").
 *
 * SQLite writes each WAL frame with two calls (its 24-byte header, then the
 * page), and a page written at a frame's offset straddles two pages of the
 * page cache: every frame costs two system calls and three page-cache page
 * updates.  A WAL file opened through detvfs keeps appended frames in a
 * buffer and writes them in one call when the buffer ends with a whole
 * commit frame (a frame whose header names the database size, the WAL file
 * format's commit mark), before SQLite updates the WAL index that lets
 * other connections read them.  Frames are found from the WAL header's page
 * size; a frame whose salts are not the header's, a write that is not an
 * append at a frame boundary, and every read, sync, truncate, size query,
 * file control and close write what is buffered first, so what any
 * connection reads is what an unbuffered file would hold.  An error of that
 * write is the error of the call that made it.
 */
#ifndef MTR_WALBUF_H
#define MTR_WALBUF_H

#include <sqlite3.h>
#include <stddef.h>

/* The most a WAL file keeps before it writes (bytes). */
#define WALBUF_MAX (2u << 20)

/* Bytes a buffered WAL file keeps in front of the wrapped VFS's file
 * structure (a multiple of 16). */
size_t walbuf_header_size(void);

/*
 * Open a WAL file (flags hold SQLITE_OPEN_WAL) through orig, buffered:
 * file is the caller's structure of walbuf_header_size() + orig->szOsFile
 * bytes; the wrapped file lives after the header.  vfs is passed to
 * orig->xOpen as its VFS.  SQLite's result codes.
 */
int walbuf_open(sqlite3_vfs *orig, sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
		int *out_flags);

/* Write calls that reached the wrapped files of this process (a test's
 * count: one per flush or write-through). */
unsigned long long walbuf_writes(void);

#endif
