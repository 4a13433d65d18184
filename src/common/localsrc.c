/*
 * localsrc.c - the list of replica-local sources (localsrc.h).
 */
#include "config.h"

#include <stdio.h>
#include <strings.h>

#include "localsrc.h"

/* One SQLite library per cluster is an operator's rule (doc/determinism.md,
 * "Two SQLite versions in one cluster"); a write must not rely on it. */
static const char build_dep[] = "it depends on the replica's SQLite build";
static const char lib_dep[] = "it names the replica's SQLite library";
static const char own_file[] = "it reports on the replica's own file";

const struct local_source local_sources[LOCAL_SOURCES] = {
	{"mtr_members", LOCAL_CLUSTER_TABLE, NULL},
	{"mtr_streams", LOCAL_CLUSTER_TABLE, NULL},
	{"mtr_instances", LOCAL_CLUSTER_TABLE, NULL},
	{"mtr_stats", LOCAL_CLUSTER_TABLE, NULL},
	{"mtr_digest", LOCAL_CLUSTER_TABLE, NULL},
	{"dbstat", LOCAL_TABLE, "it shows the replica's page layout, which differs between replicas"},
	{"sqlite_dbpage", LOCAL_TABLE, "it shows the replica's raw pages, which differ between replicas"},
	{"pragma_integrity_check", LOCAL_TABLE, own_file},
	{"pragma_quick_check", LOCAL_TABLE, own_file},
	{"pragma_compile_options", LOCAL_TABLE, build_dep},
	{"pragma_function_list", LOCAL_TABLE, build_dep},
	{"pragma_module_list", LOCAL_TABLE, build_dep},
	{"pragma_collation_list", LOCAL_TABLE, build_dep},
	{"pragma_pragma_list", LOCAL_TABLE, build_dep},
	{"sqlite_version", LOCAL_FUNCTION, lib_dep},
	{"sqlite_source_id", LOCAL_FUNCTION, lib_dep},
	{"sqlite_compileoption_get", LOCAL_FUNCTION, build_dep},
	{"sqlite_compileoption_used", LOCAL_FUNCTION, build_dep},
	{"total_changes", LOCAL_FUNCTION,
	 "it counts the changes of the replica's connection since it opened; changes() counts the statement's"},
};

int local_source_find(const char *name, int function)
{
	for (int i = 0; i < LOCAL_SOURCES; i++)
		if ((local_sources[i].kind == LOCAL_FUNCTION) == (function != 0) &&
		    strcasecmp(name, local_sources[i].name) == 0)
			return i;
	return -1;
}

void local_source_msg(int k, char *buf, unsigned long size)
{
	const struct local_source *ls = &local_sources[k];
	if (ls->kind == LOCAL_CLUSTER_TABLE)
		snprintf(buf, size,
			 "%s is a cluster table, which a write cannot read (it shows one replica's own state, and every "
			 "replica must write the same): read it in a statement of its own",
			 ls->name);
	else
		snprintf(buf, size,
			 "%s%s is replica-local, which a write cannot read (%s; every replica must write the same): "
			 "read it in a statement of its own",
			 ls->name, ls->kind == LOCAL_FUNCTION ? "()" : "", ls->why);
}
