# localcluster: start / find again / stop the Quick start's local cluster.
libmtrcore_la_SOURCES += src/localcluster.c src/localcluster.h
