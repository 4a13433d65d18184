# shell: mtrsql, the interactive shell (doc/mtrsql.1).
bin_PROGRAMS += shell/mtrsql
shell_mtrsql_SOURCES = shell/mtrsql.c shell/shell.h shell/run.c shell/intr.c shell/local.c shell/schema.c \
	shell/import.c shell/login.c shell/output.c shell/output.h shell/backup.c shell/backup.h \
	shell/members.c shell/members.h
shell_mtrsql_LDADD = $(CLIENT_PROGRAM_LIBS) $(READLINE_LIBS) -lpthread
shell_mtrsql_LDFLAGS = $(CLIENT_STATIC)
dist_man_MANS += doc/mtrsql.1
# mtrctl: membership changes and the members of a cluster (doc/mtrctl.1).
bin_PROGRAMS += shell/mtrctl
shell_mtrctl_SOURCES = shell/mtrctl.c shell/members.c shell/members.h
shell_mtrctl_LDADD = $(CLIENT_PROGRAM_LIBS) -lpthread
shell_mtrctl_LDFLAGS = $(CLIENT_STATIC)
dist_man_MANS += doc/mtrctl.1
