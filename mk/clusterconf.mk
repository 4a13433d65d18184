# clusterconf: the configuration keys metronomed and mtrproxy share.
libmtrcore_la_SOURCES += src/clusterconf.c src/clusterconf.h
