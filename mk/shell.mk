# shell: mtrsql, the interactive shell (doc/mtrsql.1).
bin_PROGRAMS += shell/mtrsql
shell_mtrsql_SOURCES = shell/mtrsql.c shell/output.c shell/output.h shell/backup.c shell/backup.h
shell_mtrsql_LDADD = libmetronome.la $(CORE_LIBS) $(READLINE_LIBS) -lm
dist_man_MANS += doc/mtrsql.1

TESTS += tests/integration/mtrsql.sh tests/integration/mtrsql_tmux.sh
EXTRA_DIST += tests/integration/mtrsql.sh tests/integration/mtrsql_tmux.sh
