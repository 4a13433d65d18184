# shell: mtrsql, the interactive shell (doc/mtrsql.1).
bin_PROGRAMS += shell/mtrsql
shell_mtrsql_SOURCES = shell/mtrsql.c shell/output.c shell/output.h shell/backup.c shell/backup.h
shell_mtrsql_LDADD = $(CLIENT_PROGRAM_LIBS) $(READLINE_LIBS)
shell_mtrsql_LDFLAGS = $(CLIENT_STATIC)
dist_man_MANS += doc/mtrsql.1
