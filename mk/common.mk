# src/common: logging, error codes, config files, small helpers.
# The bottom library: it uses nothing of ours.
libmtrcommon_la_SOURCES += src/common/log.c src/common/log.h src/common/error.c src/common/util.h \
	src/common/conf.c src/common/conf.h \
	src/common/daemon.c src/common/daemon.h src/common/stats.h src/common/secret.c src/common/secret.h
include_HEADERS += include/metronome.h
