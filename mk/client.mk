# src/client: libmetronome, the installed C client library (doc/client.md,
# doc/libmetronome.3), and the local cluster it starts for the URI `local`.
# libmtrclient holds the client's own code (so that tests/layers.sh can check
# it); libmetronome is that plus the proxy and everything under it, shared
# and static, exporting only mtr_* (include/metronome.h).
libmtrclient_la_SOURCES += src/client/client.c src/client/client_stmt.c src/client/client_temp.c \
	src/client/client_embed.c src/client/client_backup.c src/client/client_members.c src/client/client_int.h src/client/client_tls.c src/client/localcluster.c src/client/localcluster.h

lib_LTLIBRARIES = libmetronome.la
libmetronome_la_SOURCES =
# sqlite3: localcluster.c, which reads each replica's applied instance
# when the `local` cluster stops, and client_backup.c, which reduces the
# replica's own tables of a backup copy (doc/client.md "Linking")
libmetronome_la_LIBADD = libmtrclient.la libmtrproxy.la libmtrsql.la libmtrnet.la libmtrproto.la \
	libmtrcommon.la $(SQLITE_LIBS) $(XXHASH_LIBS) $(SODIUM_LIBS) $(OPENSSL_LIBS) $(PTHREAD_LIBS) -lm
libmetronome_la_LDFLAGS = $(AM_LDFLAGS) -export-symbols-regex '^mtr_' -version-info 0:0:0
# in-tree programs link libmetronome statically: they also call internal
# functions (log, localcluster), which the shared library does not export
CLIENT_PROGRAM_LIBS = libmetronome.la -lm
CLIENT_STATIC = $(AM_LDFLAGS) -static

pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = metronome.pc
EXTRA_DIST += doc/client.md
dist_man_MANS += doc/libmetronome.3
# The man pages of the client API, installed to $(man3dir): one page per
# function or group (doc/man3/mtr_open.3, ...) and, for every other name the
# page covers, a one-line page `.so man3/PAGE.3` (as Linux man-pages does).
# A new MTR_API function in include/metronome.h needs, or tests/manpages.sh
# fails: its name on the NAME and SYNOPSIS lines of a page (a new page, or
# a group page), a link page doc/man3/NAME.3 when the page is named
# otherwise, both listed below, and its name in doc/libmetronome.3.  A new
# MTR_E* code needs its line in doc/man3/mtr_errcode.3.  doc/architecture.md
# "Man pages".
MAN3_PAGES = \
	doc/man3/mtr_add_server.3 \
	doc/man3/mtr_backup.3 \
	doc/man3/mtr_bind.3 \
	doc/man3/mtr_busy_timeout.3 \
	doc/man3/mtr_changes.3 \
	doc/man3/mtr_column.3 \
	doc/man3/mtr_config_log.3 \
	doc/man3/mtr_errcode.3 \
	doc/man3/mtr_exec.3 \
	doc/man3/mtr_interrupt.3 \
	doc/man3/mtr_open.3 \
	doc/man3/mtr_prepare.3 \
	doc/man3/mtr_promote_server.3 \
	doc/man3/mtr_step.3 \
	doc/man3/mtr_submit.3
MAN3_LINKS = \
	doc/man3/mtr_data_count.3 \
	doc/man3/mtr_column_int.3 \
	doc/man3/mtr_bind_zeroblob.3 \
	doc/man3/mtr_bind_int.3 \
	doc/man3/mtr_bind_blob.3 \
	doc/man3/mtr_bind_double.3 \
	doc/man3/mtr_bind_int64.3 \
	doc/man3/mtr_bind_null.3 \
	doc/man3/mtr_bind_parameter_count.3 \
	doc/man3/mtr_bind_parameter_index.3 \
	doc/man3/mtr_bind_parameter_name.3 \
	doc/man3/mtr_bind_text.3 \
	doc/man3/mtr_clear_bindings.3 \
	doc/man3/mtr_close.3 \
	doc/man3/mtr_column_blob.3 \
	doc/man3/mtr_column_bytes.3 \
	doc/man3/mtr_column_count.3 \
	doc/man3/mtr_column_double.3 \
	doc/man3/mtr_column_int64.3 \
	doc/man3/mtr_column_name.3 \
	doc/man3/mtr_column_text.3 \
	doc/man3/mtr_column_type.3 \
	doc/man3/mtr_errmsg.3 \
	doc/man3/mtr_errname.3 \
	doc/man3/mtr_extended_errcode.3 \
	doc/man3/mtr_finalize.3 \
	doc/man3/mtr_free.3 \
	doc/man3/mtr_get_autocommit.3 \
	doc/man3/mtr_last_insert_rowid.3 \
	doc/man3/mtr_last_instance.3 \
	doc/man3/mtr_pending.3 \
	doc/man3/mtr_poll.3 \
	doc/man3/mtr_remove_server.3 \
	doc/man3/mtr_reset.3 \
	doc/man3/mtr_set_min_instance.3 \
	doc/man3/mtr_set_timeout.3 \
	doc/man3/mtr_sql.3 \
	doc/man3/mtr_stmt_busy.3 \
	doc/man3/mtr_stmt_readonly.3 \
	doc/man3/mtr_strerror.3
dist_man_MANS += $(MAN3_PAGES) $(MAN3_LINKS)
