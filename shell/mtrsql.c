/*
 * mtrsql.c - the interactive shell of Metronome (doc/mtrsql.1): main, the
 * input loops, signals at the prompt, history, and the dot-commands.
 *
 *   mtrsql [URI] [-c SQL]... [-bail] [--keep] [--mode M] [--headers] [--echo]
 *
 * Shaped after sqlite3's src/shell.c.in: one state struct (struct shell,
 * shell.h), input collected until sqlite3_complete(), the help text in one
 * table, dot-command arguments split and unquoted as sqlite3 splits them.
 * With no URI it attaches to the local cluster (local.c), starting it when
 * it is not running, and stops what it started when it exits, on .quit,
 * end of input, SIGTERM, SIGHUP or a second Ctrl-C within a second (unless
 * --keep).  At a terminal, readline runs in its callback mode inside a
 * poll() loop that also watches the signal pipe (intr.c): Ctrl-C clears
 * the line and the statement being typed.  Exit status: 0, 1 when any
 * statement failed, 2 on a usage or connection error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "backup.h"
#include "log.h"
#include "members.h"
#include "shell.h"
#include "sql.h"

static struct shell *g_shell; /* for the readline completion callbacks */

void shell_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fflush(stdout);
	if (g_shell && g_shell->outf)
		fflush(g_shell->outf);
	fputs("Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- the help text (sqlite3's azHelp: a line per command, then its
 * indented details, shown by ".help PATTERN") ------------------------- */

static const char *const dot_help[] = {
	".add-server ADDR ?--learner?  Add the server at ADDR (IP:PORT) to the cluster",
	"   As a learner under a new id (printed); then waits until it has caught up",
	"   and makes it a voter (--learner: not).  Start it with that server.id,",
	"   server.address = ADDR and metronomed --init-from-peer (mtrctl(1))",
	".backup FILE             A consistent SQLite copy of the database (at one instance) into FILE, any size",
	".bail on|off             Stop after hitting an error.  Default OFF",
	".changes on|off          Show the rows changed by each write",
	".cluster                 Members, roles and lag (mtr_members, mtr_streams)",
	".consistency ?MODE?      Show or set read consistency: none, session, linearizable",
	"   Reconnects with the new consistency (mtr:// URIs only)",
	".dump ?OBJECTS?          Render database content as SQL",
	"   Options:",
	"     --data-only            Output only INSERT statements",
	"     --newlines             Allow unescaped newline characters in output",
	"     --nosys                Omit system tables (ex: \"sqlite_stat1\")",
	"   OBJECTS is LIKE patterns for tables, indexes, triggers or views to dump",
	"   (no PRAGMA foreign_keys=OFF line: in a cluster it is a cluster-wide setting)",
	".echo on|off             Turn command echo on or off",
	".eqp on|off              Enable or disable automatic EXPLAIN QUERY PLAN",
	".exit ?CODE?             Exit this program with return-code CODE",
	".headers on|off          Turn display of headers on or off",
	".help ?PATTERN?          Show help text for PATTERN",
	".import FILE TABLE       Import data from FILE into TABLE",
	"   Options:",
	"     --ascii               Use \\037 and \\036 as column and row separators",
	"     --csv                 Use , and \\n as column and row separators",
	"     --skip N              Skip the first N rows of input",
	"     --schema S            Target table to be S.TABLE",
	"     -v                    \"Verbose\" - increase auxiliary output",
	"   Notes:",
	"     *  If TABLE does not exist, it is created.  The first row of input",
	"        determines the column names.",
	"     *  If neither --csv or --ascii are used, the input mode is derived",
	"        from .separator; list mode's default \"|\" reads CSV.",
	"     *  If FILE begins with \"|\" then it is a command that generates the",
	"        input text.",
	"     *  A row that fails is reported as FILE:LINE and the others go in.",
	".indexes ?TABLE?         Show names of indexes",
	".mode MODE ?OPTIONS?     Set output mode",
	"   MODE is one of:",
	"     ascii       Columns/rows delimited by 0x1F and 0x1E",
	"     box         Tables using unicode box-drawing characters",
	"     csv         Comma-separated values",
	"     column      Output in columns.  (See .width)",
	"     html        HTML <table> code",
	"     insert      SQL insert statements for TABLE",
	"     json        Results in a JSON array",
	"     line        One value per line",
	"     list        Values delimited by \"|\"",
	"     markdown    Markdown table format",
	"     qbox        Shorthand for \"box --wrap 60 --quote\"",
	"     quote       Escape answers as for SQL",
	"     table       ASCII-art table",
	"     tabs        Tab-separated values",
	"     tcl         TCL list elements",
	"   OPTIONS: (for columnar modes or insert mode):",
	"     --wrap N       Wrap output lines to no longer than N characters",
	"     --wordwrap B   Wrap or not at word boundaries per B (on/off)",
	"     --ww           Shorthand for \"--wordwrap 1\"",
	"     --quote        Quote output text as SQL literals",
	"     --noquote      Do not quote output text",
	"     TABLE          The name of SQL table used for \"insert\" mode",
	".nullvalue STRING        Use STRING in place of NULL values",
	".once ?FILE?             Output for the next SQL command only to FILE",
	"     If FILE begins with '|' then open as a pipe",
	".output ?FILE?           Send output to FILE or stdout if FILE is omitted",
	"     If FILE begins with '|' then open it as a pipe.",
	".parameter CMD ...       Manage SQL parameter bindings",
	"   clear                   Erase all bindings",
	"   init                    Initialize the table that holds bindings",
	"   list                    List the current parameter bindings",
	"   set PARAMETER VALUE     Given SQL parameter PARAMETER a value of VALUE",
	"                           PARAMETER should start with one of: $ : @ ?",
	"   unset PARAMETER         Remove PARAMETER from the binding table",
	".parse SQL               What the proxy makes of SQL: kind, tables, non-determinism",
	".print STRING...         Print literal STRING",
	".promote-server ID       Make the learner ID a voter (once it has caught up)",
	".quit                    Exit this program",
	".read FILE               Read input from FILE",
	".remove-server ID        Remove server ID from the cluster (ids are never reused)",
	".restore FILE            Load the SQLite file FILE (a .backup copy) into an empty cluster",
	".schema ?PATTERN?        Show the CREATE statements matching PATTERN",
	"     Options:",
	"         --nosys          Omit objects whose names start with \"sqlite_\"",
	".separator COL ?ROW?     Change the column and row separators",
	".shell CMD ARGS...       Run CMD ARGS... in a system shell",
	".show                    Show the current values for various settings",
	".system CMD ARGS...      Run CMD ARGS... in a system shell",
	".tables ?TABLE?          List names of tables matching LIKE pattern TABLE",
	".timer on|off            Turn SQL timer on or off",
	".width NUM1 NUM2 ...     Set minimum column widths for columnar output",
	"     Negative values right-justify",
	NULL,
};

/* .help ?PATTERN?: every summary line, or the whole entry of the commands
 * whose name starts with PATTERN. */
static int dot_help_show(struct shell *sh, const char *pattern)
{
	int n = 0, show = 0;
	for (int i = 0; dot_help[i]; i++) {
		const char *h = dot_help[i];
		if (h[0] == '.')
			show = !pattern || !strncmp(h + 1, pattern + (pattern[0] == '.'), strlen(pattern + (pattern[0] == '.')));
		if (pattern ? show : h[0] == '.') {
			fprintf(sh->outf, "%s\n", h);
			n += h[0] == '.';
		}
	}
	if (pattern && !n) {
		shell_error("nothing matches '%s'", pattern);
		return -1;
	}
	return 0;
}

/* ---- dot-command arguments -------------------------------------------- */

/* sqlite3's resolve_backslashes: \a \b \t \n \v \f \r \" \' \\ and octal. */
static void unbackslash(char *z)
{
	size_t i, j;
	for (i = j = 0; z[i]; i++, j++) {
		char c = z[i];
		if (c == '\\' && z[i + 1]) {
			c = z[++i];
			switch (c) {
			case 'a': c = '\a'; break;
			case 'b': c = '\b'; break;
			case 't': c = '\t'; break;
			case 'n': c = '\n'; break;
			case 'v': c = '\v'; break;
			case 'f': c = '\f'; break;
			case 'r': c = '\r'; break;
			default:
				if (c >= '0' && c <= '7') {
					c -= '0';
					for (int k = 0; k < 2 && z[i + 1] >= '0' && z[i + 1] <= '7'; k++)
						c = (char)((c << 3) + z[++i] - '0');
				}
			}
		}
		z[j] = c;
	}
	z[j] = 0;
}

#define MAX_ARGS 50

/* Split a dot-command line in place as sqlite3 does: blanks separate
 * arguments; '...' and "..." quote one (the quotes removed; backslash
 * escapes resolved in "..." and in unquoted words). */
static int split_args(char *line, char **argv)
{
	int argc = 0;
	char *h = line;
	while (*h && argc < MAX_ARGS) {
		while (*h == ' ' || *h == '\t' || *h == '\r' || *h == '\n')
			h++;
		if (!*h)
			break;
		if (*h == '\'' || *h == '"') {
			char delim = *h++;
			argv[argc++] = h;
			while (*h && *h != delim) {
				if (*h == '\\' && delim == '"' && h[1])
					h++;
				h++;
			}
			if (*h == delim)
				*h++ = 0;
			if (delim == '"')
				unbackslash(argv[argc - 1]);
		} else {
			argv[argc++] = h;
			while (*h && *h != ' ' && *h != '\t' && *h != '\r' && *h != '\n')
				h++;
			if (*h)
				*h++ = 0;
			unbackslash(argv[argc - 1]);
		}
	}
	argv[argc] = NULL;
	return argc;
}

static int onoff(const char *a, int *v)
{
	if (!a)
		return -1;
	if (!strcasecmp(a, "on") || !strcmp(a, "1") || !strcasecmp(a, "yes") || !strcasecmp(a, "true"))
		*v = 1;
	else if (!strcasecmp(a, "off") || !strcmp(a, "0") || !strcasecmp(a, "no") || !strcasecmp(a, "false"))
		*v = 0;
	else
		return -1;
	return 0;
}

/* ---- dot-commands ----------------------------------------------------- */

static int run_file(struct shell *sh, FILE *f);

/* Send results to stdout again (closing a file or pipe). */
static void output_reset(struct shell *sh)
{
	if (sh->outf != stdout) {
		if (sh->outf_pipe)
			pclose(sh->outf);
		else
			fclose(sh->outf);
	}
	sh->outf = stdout;
	sh->outf_pipe = 0;
	sh->once = 0;
	sh->outname[0] = 0;
}

/* .output / .once: FILE, |COMMAND, or nothing (stdout). */
static int output_set(struct shell *sh, const char *target, int once)
{
	output_reset(sh);
	if (!target || !strcmp(target, "stdout"))
		return 0;
	fflush(stdout);
	FILE *f = target[0] == '|' ? popen(target + 1, "w") : fopen(target, "w");
	if (!f) {
		shell_error("cannot open \"%s\": %s", target, strerror(errno));
		return -1;
	}
	sh->outf = f;
	sh->outf_pipe = target[0] == '|';
	sh->once = once;
	snprintf(sh->outname, sizeof sh->outname, "%s", target);
	return 0;
}

static int dot_parse(struct shell *sh, const char *text)
{
	struct sql_result *res;
	if (sql_parse(text, strlen(text), &res)) {
		shell_error("out of memory");
		return -1;
	}
	char buf[8192];
	for (unsigned i = 0; i < res->n_stmts; i++) {
		sql_stmt_json(&res->stmts[i], buf, sizeof(buf));
		fprintf(sh->outf, "%s\n", buf);
	}
	int ok = res->ok;
	sql_result_free(res);
	return ok ? 0 : -1;
}

static int dot_show(struct shell *sh)
{
	FILE *f = sh->outf;
	char mode[200];
	out_mode_describe(&sh->out, mode, sizeof mode);
	fprintf(f, "%12.12s: %s\n", "echo", sh->echo ? "on" : "off");
	fprintf(f, "%12.12s: %s\n", "eqp", sh->eqp ? "on" : "off");
	fprintf(f, "%12.12s: %s\n", "headers", sh->out.headers ? "on" : "off");
	fprintf(f, "%12.12s: %s\n", "mode", mode);
	fprintf(f, "%12.12s: ", "nullvalue");
	out_c_string(f, sh->out.nullvalue, strlen(sh->out.nullvalue));
	fprintf(f, "\n%12.12s: %s\n", "output", sh->outname[0] ? sh->outname : "stdout");
	fprintf(f, "%12.12s: ", "colseparator");
	out_c_string(f, sh->out.colsep, strlen(sh->out.colsep));
	fprintf(f, "\n%12.12s: ", "rowseparator");
	out_c_string(f, sh->out.rowsep, strlen(sh->out.rowsep));
	fprintf(f, "\n%12.12s: ", "width");
	for (int i = 0; i < sh->out.nwidth; i++)
		fprintf(f, "%d ", sh->out.width[i]);
	const char *c = strstr(sh->uri, "consistency=");
	fprintf(f, "\n%12.12s: %s\n", "bail", sh->bail ? "on" : "off");
	fprintf(f, "%12.12s: %s\n", "timer", sh->timer ? "on" : "off");
	fprintf(f, "%12.12s: %s\n", "changes", sh->changes ? "on" : "off");
	fprintf(f, "%12.12s: %.*s\n", "consistency", c ? (int)strcspn(c + 12, "&") : 7, c ? c + 12 : "session");
	fprintf(f, "%12.12s: %s\n", "uri", sh->uri);
	return 0;
}

/* .shell / .system: the arguments joined (those with a blank quoted). */
static int dot_system(struct shell *sh, int argc, char **argv)
{
	if (argc < 2) {
		shell_error("usage: .system COMMAND");
		return -1;
	}
	sqlite3_str *s = sqlite3_str_new(NULL);
	for (int i = 1; i < argc; i++)
		sqlite3_str_appendf(s, strchr(argv[i], ' ') ? "%s\"%s\"" : "%s%s", i > 1 ? " " : "", argv[i]);
	char *cmd = sqlite3_str_finish(s);
	fflush(sh->outf);
	fflush(stdout);
	int x = cmd ? system(cmd) : -1;
	sqlite3_free(cmd);
	if (x)
		fprintf(stderr, "System command returns %d\n", x);
	return 0;
}

static int dot_backup(struct shell *sh, const char *file)
{
	if (!file) {
		shell_error(".backup FILE");
		return -1;
	}
	char err[1024];
	if (backup_run(sh->db, file, isatty(2), err, sizeof err) != 0) {
		shell_error(".backup: %s", err);
		return -1;
	}
	return 0;
}

static int dot_restore(struct shell *sh, const char *file)
{
	if (!file) {
		shell_error(".restore FILE");
		return -1;
	}
	char err[1024];
	if (restore_run(sh->db, file, isatty(2), err, sizeof err) != 0) {
		shell_error(".restore: %s", err);
		return -1;
	}
	return 0;
}

/* .add-server ADDR ?--learner?, .promote-server ID, .remove-server ID
 * (members.c, as mtrctl does them). */
static int dot_members(struct shell *sh, const char *c, int argc, char **argv)
{
	int learner = argc == 3 && c[0] == 'a' && !strcmp(argv[2], "--learner");
	char *e = NULL;
	unsigned long id = argc >= 2 ? strtoul(argv[1], &e, 10) : 0;
	if (argc < 2 || argc > 2 + (c[0] == 'a') || (argc == 3 && !learner) ||
	    (c[0] != 'a' && (e == argv[1] || *e || id > 63))) {
		shell_error(c[0] == 'a' ? "usage: .add-server IP:PORT ?--learner?" : "usage: .%s ID (0..63: see .cluster)", c);
		return -1;
	}
	int rc = c[0] == 'a' ? members_add(sh->db, argv[1], learner, 600, sh->outf, "mtrsql")
			     : members_change(sh->db, c[0], NULL, (uint32_t)id, NULL, 600, sh->outf, "mtrsql");
	if (rc == 0 && c[0] != 'a')
		fprintf(sh->outf, "server %lu %s\n", id, c[0] == 'p' ? "is a voter" : "removed");
	return rc == 0 ? 0 : -1;
}

static int dot_cluster(struct shell *sh)
{
	struct out_opts save = sh->out;
	if (sh->out.mode != OUT_BOX)
		out_opts_init(&sh->out), sh->out.mode = OUT_TABLE;
	sh->out.headers = 1;
	sh->out.wrap = 0;
	/* As the answering replica sees the others (their last STATUS): one
	 * not heard within 3 status periods is "unreachable", its last role and
	 * figures kept only as history; lag is how far a live server's applied
	 * instance is behind the highest instance any live server knows chosen. */
	int rc = run_sql(sh, "SELECT id, address, CASE WHEN alive THEN role ELSE 'unreachable' END AS role, alive, "
			     "chosen, applied, CASE WHEN alive THEN (SELECT max(chosen) FROM mtr_members WHERE alive) - "
			     "applied END AS lag, membership FROM mtr_members ORDER BY id");
	if (!rc)
		rc = run_sql(sh, "SELECT server, count(*) AS streams, max(watermark) AS max_watermark "
				 "FROM mtr_streams GROUP BY server ORDER BY server");
	sh->out = save;
	return rc;
}

/* The command names, in the order a prefix is resolved (".h" is .headers). */
static const char *const dot_names[] = {
	"backup", "bail", "changes", "cluster", "consistency", "dump", "echo", "eqp", "exit", "headers", "help",
	"import", "indexes", "indices", "mode", "nullvalue", "once", "output", "parameter", "parse", "print",
	"quit", "read", "restore", "save", "schema", "separator", "shell", "show", "system", "tables", "timer", "width",
	"add-server", "promote-server", "remove-server", NULL,
};

/* Run one dot-command line.  0 ok, -1 error, 1 quit. */
static int dot_command(struct shell *sh, const char *line)
{
	char *copy = strdup(line);
	char *argv[MAX_ARGS + 1];
	if (!copy) {
		shell_error("out of memory");
		return -1;
	}
	int argc = split_args(copy + 1, argv), rc = 0;
	const char *c = argc ? argv[0] : "", *name = NULL;
	/* the whole name, or the first command it begins */
	for (int i = 0; dot_names[i] && !name; i++)
		if (!strcmp(dot_names[i], c))
			name = dot_names[i];
	for (int i = 0; dot_names[i] && !name && *c; i++)
		if (!strncmp(dot_names[i], c, strlen(c)))
			name = dot_names[i];
	c = name ? name : c;
	const char *a1 = argc > 1 ? argv[1] : NULL;
	int *flag = !strcmp(c, "bail") ? &sh->bail : !strcmp(c, "echo") ? &sh->echo : !strcmp(c, "timer") ? &sh->timer
		  : !strcmp(c, "changes") ? &sh->changes : !strcmp(c, "eqp") ? &sh->eqp
		  : !strcmp(c, "headers") ? &sh->out.headers : NULL;
	if (!argc) {
		rc = 0;
	} else if (flag) {
		if (argc != 2 || onoff(a1, flag)) {
			shell_error("usage: .%s on|off", c);
			rc = -1;
		}
		sh->out.headers_set |= flag == &sh->out.headers;
	} else if (!strcmp(c, "quit") || !strcmp(c, "exit")) {
		if (a1 && !strcmp(c, "exit"))
			sh->exit_code = atoi(a1);
		rc = 1;
	} else if (!strcmp(c, "help")) {
		rc = dot_help_show(sh, a1);
	} else if (!strcmp(c, "mode")) {
		char err[300];
		if (argc == 1) {
			out_mode_describe(&sh->out, err, sizeof err);
			fprintf(sh->outf, "current output mode: %s\n", err);
		} else if (out_mode_set(&sh->out, argc - 1, argv + 1, err, sizeof err)) {
			shell_error("%s", err);
			rc = -1;
		}
	} else if (!strcmp(c, "nullvalue")) {
		if (argc != 2) {
			shell_error("usage: .nullvalue STRING");
			rc = -1;
		} else {
			snprintf(sh->out.nullvalue, sizeof(sh->out.nullvalue), "%s", a1);
		}
	} else if (!strcmp(c, "separator")) {
		if (argc < 2 || argc > 3) {
			shell_error("usage: .separator COL ?ROW?");
			rc = -1;
		} else {
			snprintf(sh->out.colsep, sizeof sh->out.colsep, "%s", a1);
			if (argc == 3)
				snprintf(sh->out.rowsep, sizeof sh->out.rowsep, "%s", argv[2]);
		}
	} else if (!strcmp(c, "width")) {
		sh->out.nwidth = 0;
		for (int i = 1; i < argc && i <= OUT_MAX_WIDTHS; i++)
			sh->out.width[sh->out.nwidth++] = atoi(argv[i]);
	} else if (!strcmp(c, "tables") || !strcmp(c, "indexes") || !strcmp(c, "indices")) {
		if (argc > 2) {
			shell_error("usage: .%s ?LIKE-PATTERN?", c);
			rc = -1;
		} else {
			rc = schema_names(sh, c[0] == 'i', a1);
		}
	} else if (!strcmp(c, "schema")) {
		rc = schema_show(sh, argc, argv);
	} else if (!strcmp(c, "dump")) {
		rc = schema_dump(sh, argc, argv);
	} else if (!strcmp(c, "cluster")) {
		rc = dot_cluster(sh);
	} else if (!strcmp(c, "consistency")) {
		if (!a1) {
			const char *q = strstr(sh->uri, "consistency=");
			fprintf(sh->outf, "%s\n", q ? q + 12 : "session");
		} else if (strcmp(a1, "none") && strcmp(a1, "session") && strcmp(a1, "linearizable")) {
			shell_error(".consistency wants none, session or linearizable");
			rc = -1;
		} else {
			rc = shell_reconnect(sh, a1);
		}
	} else if (!strcmp(c, "parse")) {
		/* the SQL as typed, not split */
		const char *sql = line + 1 + strspn(line + 1, " \t");
		sql += strcspn(sql, " \t");
		if (!sql[strspn(sql, " \t")]) {
			shell_error(".parse SQL");
			rc = -1;
		} else {
			rc = dot_parse(sh, sql + strspn(sql, " \t"));
		}
	} else if (!strcmp(c, "print")) {
		for (int i = 1; i < argc; i++)
			fprintf(sh->outf, "%s%s", i > 1 ? " " : "", argv[i]);
		fputc('\n', sh->outf);
	} else if (!strcmp(c, "read")) {
		FILE *f = argc == 2 ? fopen(a1, "r") : NULL;
		if (!f) {
			shell_error("cannot open \"%s\": %s", a1 ? a1 : "", a1 ? strerror(errno) : "usage: .read FILE");
			rc = -1;
		} else {
			int line_save = sh->line;
			rc = run_file(sh, f);
			sh->line = line_save;
			fclose(f);
		}
	} else if (!strcmp(c, "backup") || !strcmp(c, "save")) {
		rc = dot_backup(sh, a1);
	} else if (!strcmp(c, "restore")) {
		rc = dot_restore(sh, a1);
	} else if (!strcmp(c, "add-server") || !strcmp(c, "promote-server") || !strcmp(c, "remove-server")) {
		rc = dot_members(sh, c, argc, argv);
	} else if (!strcmp(c, "import")) {
		rc = import_run(sh, argc, argv);
	} else if (!strcmp(c, "output") || !strcmp(c, "once")) {
		if (argc > 2) {
			shell_error("usage: .%s ?FILE?", c);
			rc = -1;
		} else {
			rc = output_set(sh, a1, c[1] == 'n');
			free(copy);
			return rc; /* (not the "next command" of .once) */
		}
	} else if (!strcmp(c, "parameter")) {
		rc = shell_parameter(sh, argc, argv);
	} else if (!strcmp(c, "shell") || !strcmp(c, "system")) {
		rc = dot_system(sh, argc, argv);
	} else if (!strcmp(c, "show")) {
		rc = dot_show(sh);
	} else {
		shell_error("unknown command or invalid arguments: \"%s\". Enter \".help\" for help", argv[0]);
		rc = -1;
	}
	free(copy);
	if (sh->once)
		output_reset(sh);
	return rc;
}

/* ---- input ------------------------------------------------------------ */

/* Append line to the statement buffer. */
static int buf_add(char **buf, size_t *len, size_t *cap, const char *line)
{
	size_t n = strlen(line);
	if (*len + n + 2 > *cap) {
		size_t c = (*cap ? *cap * 2 : 4096) + n;
		char *b = realloc(*buf, c);
		if (!b)
			return -1;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, line, n);
	*len += n;
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = 0;
	return 0;
}

/* Handle one complete input unit (dot-command line or SQL text).  Returns
 * 1 to quit, 0 to go on. */
static int handle(struct shell *sh, char *text, int is_dot)
{
	int rc = is_dot ? dot_command(sh, text) : run_sql(sh, text);
	if (!is_dot && sh->once)
		output_reset(sh);
	if (rc == 1)
		return 1;
	if (rc < 0) {
		sh->failed = 1;
		if (sh->bail)
			return 1;
	}
	return intr_quit != 0;
}

/*
 * The lines of a script (standard input, or the file of .read), read from
 * its descriptor with the signal pipe polled beside it: a SIGTERM or a
 * Ctrl-C that comes while the shell waits for a line of a pipe that stays
 * open ends the wait.  (getline() blocked when the signal came just before
 * its read(): mtrsql.sh's SIGTERM check, once in a while.)
 */
struct lines {
	int fd, eof;
	size_t off, len;
	char buf[65536];
};

/* The next line (its length; *line NUL-terminated, with its newline), -1 at
 * the end or on a read error, -2 when a signal interrupted the wait. */
static ssize_t next_line(struct lines *r, char **line, size_t *cap)
{
	size_t n = 0;
	for (;;) {
		char *p = r->buf + r->off, *nl = memchr(p, '\n', r->len - r->off);
		size_t take = nl ? (size_t)(nl - p) + 1 : r->len - r->off;
		if (n + take + 1 > *cap) {
			size_t c = *cap ? *cap : 256;
			while (c < n + take + 1)
				c *= 2;
			char *q = realloc(*line, c);
			if (q == NULL)
				return -1;
			*line = q;
			*cap = c;
		}
		memcpy(*line + n, p, take);
		n += take;
		r->off += take;
		if (nl || r->eof)
			break;
		r->off = r->len = 0;
		if (intr_quit || intr_int)
			return -2;
		struct pollfd pf[2] = { { .fd = r->fd, .events = POLLIN }, { .fd = intr_fd(), .events = POLLIN } };
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (pf[1].revents)
			intr_drain();
		if (intr_quit || intr_int)
			return -2;
		if (!pf[0].revents)
			continue;
		ssize_t k = read(r->fd, r->buf, sizeof r->buf);
		if (k < 0 && errno != EINTR && errno != EAGAIN)
			return -1;
		if (k == 0)
			r->eof = 1;
		else if (k > 0)
			r->len = (size_t)k;
	}
	if (n == 0)
		return -1;
	(*line)[n] = 0;
	return (ssize_t)n;
}

/* Read a script from f (a file, or standard input when it is not a
 * terminal); errors name its lines.  Returns 1 when asked to quit.  A
 * Ctrl-C stops the script, as in sqlite3. */
static int run_file(struct shell *sh, FILE *f)
{
	char *buf = NULL, *line = NULL;
	size_t len = 0, cap = 0, lcap = 0;
	ssize_t n;
	int quit = 0, lineno = 0, start = 0;
	unsigned intr0 = sh->interrupts;
	struct lines *rd = calloc(1, sizeof *rd);
	if (rd == NULL) {
		shell_error("out of memory");
		return 1;
	}
	rd->fd = fileno(f);
	while (!quit && !intr_int && !intr_quit && sh->interrupts == intr0 && (n = next_line(rd, &line, &lcap)) >= 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (len == 0 && line[strspn(line, " \t")] == '.') {
			sh->line = lineno;
			quit = handle(sh, line + strspn(line, " \t"), 1);
			continue;
		}
		if (len == 0)
			start = lineno;
		if (buf_add(&buf, &len, &cap, line))
			break;
		if (sqlite3_complete(buf)) {
			sh->line = start;
			quit = handle(sh, buf, 0);
			len = 0;
		}
	}
	if (intr_int || sh->interrupts != intr0) { /* Ctrl-C: the rest of the script is not run */
		intr_int = 0;
		sh->failed = 1;
		quit = !sh->interactive;
	} else if (!quit && len && buf[strspn(buf, " \t\n")]) {
		fprintf(stderr, "Parse error near line %d: incomplete SQL: %s\n", start, buf);
		sh->failed = 1;
	}
	free(buf);
	free(line);
	free(rd);
	return quit || intr_quit;
}

/* ---- readline completion ---------------------------------------------- */

static const char *const sql_words[] = {
	"ABORT", "ALTER", "AND", "AS", "ASC", "BEGIN", "BETWEEN", "BY", "CASE", "CHECK", "COLLATE", "COMMIT",
	"CREATE", "CROSS", "DEFAULT", "DELETE", "DESC", "DISTINCT", "DROP", "ELSE", "END", "EXISTS", "EXPLAIN",
	"FOREIGN", "FROM", "GROUP", "HAVING", "IF", "IN", "INDEX", "INNER", "INSERT", "INTEGER", "INTO", "IS",
	"JOIN", "KEY", "LEFT", "LIKE", "LIMIT", "NOT", "NULL", "OFFSET", "ON", "OR", "ORDER", "PRIMARY",
	"REAL", "REFERENCES", "REPLACE", "RETURNING", "ROLLBACK", "SELECT", "SET", "TABLE", "TEXT", "THEN",
	"TRIGGER", "UNION", "UNIQUE", "UPDATE", "USING", "VALUES", "VIEW", "WHEN", "WHERE", "WITH", "BLOB",
	NULL,
};

static char **names;   /* tables and columns of the cluster's schema */
static size_t nnames;

static void load_names(struct shell *sh)
{
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	names = NULL;
	nnames = 0;
	mtr_stmt *st;
	const char *q = "SELECT DISTINCT name FROM (SELECT m.name AS name FROM sqlite_schema m "
			"WHERE m.type IN ('table','view') AND m.name NOT LIKE 'sqlite_%' UNION ALL "
			"SELECT p.name FROM sqlite_schema m, pragma_table_info(m.name) p "
			"WHERE m.type IN ('table','view') AND m.name NOT LIKE 'sqlite_%')";
	if (mtr_prepare(sh->db, q, -1, &st, NULL) || !st)
		return;
	while (mtr_step(st) == MTR_ROW) {
		const unsigned char *v = mtr_column_text(st, 0);
		char **n2 = v ? realloc(names, (nnames + 1) * sizeof(*names)) : NULL;
		if (!n2)
			continue;
		names = n2;
		names[nnames] = strdup((const char *)v);
		if (names[nnames])
			nnames++;
	}
	mtr_finalize(st);
}

static char *complete_word(const char *text, int state)
{
	static size_t i, phase;
	static size_t tlen;
	if (!state) {
		i = 0;
		phase = 0;
		tlen = strlen(text);
	}
	while (phase < 2) {
		if (phase == 0) {
			while (i < nnames) {
				const char *w = names[i++];
				if (!strncasecmp(w, text, tlen))
					return strdup(w);
			}
		} else {
			while (sql_words[i]) {
				const char *w = sql_words[i++];
				if (!strncasecmp(w, text, tlen)) {
					/* keep the case the user typed */
					char *r = strdup(w);
					if (r && tlen && text[0] >= 'a' && text[0] <= 'z')
						for (char *c = r; *c; c++)
							*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
					return r;
				}
			}
		}
		phase++;
		i = 0;
	}
	return NULL;
}

static char *complete_dot(const char *text, int state)
{
	static int i;
	static size_t tlen;
	if (!state) {
		i = 0;
		tlen = strlen(text);
	}
	while (dot_help[i]) {
		const char *h = dot_help[i++];
		size_t n = strcspn(h, " ,");
		if (h[0] == '.' && n >= tlen && !strncmp(h, text, tlen))
			return strndup(h, n);
	}
	return NULL;
}

static char **shell_complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;
	/* the first word of a line that starts with '.': a dot-command */
	if (start == 0 && text[0] == '.')
		return rl_completion_matches(text, complete_dot);
	/* after a dot-command that takes a file: file names */
	if (rl_line_buffer[0] == '.' &&
	    (!strncmp(rl_line_buffer, ".read", 5) || !strncmp(rl_line_buffer, ".output", 7) ||
	     !strncmp(rl_line_buffer, ".backup", 7) || (!strncmp(rl_line_buffer, ".import", 7) && start <= 8 + (int)strcspn(rl_line_buffer + 8, " ")))) {
		rl_attempted_completion_over = 0;
		return NULL;
	}
	if (g_shell && !nnames)
		load_names(g_shell);
	return rl_completion_matches(text, complete_word);
}

static void history_path(char *buf, size_t n)
{
	const char *h = getenv("MTR_HISTORY");
	if (h)
		snprintf(buf, n, "%s", h);
	else
		snprintf(buf, n, "%s/.mtrsql_history", getenv("HOME") ? getenv("HOME") : ".");
}

/* ---- the terminal ----------------------------------------------------- */

static char *rl_line;
static int rl_have;

static void rl_take(char *line)
{
	rl_line = line;
	rl_have = 1;
	rl_callback_handler_remove(); /* no prompt until the line has run */
}

/*
 * Read a line at the terminal with readline's callback interface, polling
 * the terminal and the signal pipe together.  Returns the line (free it),
 * or NULL: *why is 'e' at the end of input, 'q' when a signal ends the
 * shell, 'c' after Ctrl-C (the line is cleared and ^C shown).
 */
static char *read_line(const char *prompt, int *why)
{
	rl_have = 0;
	rl_line = NULL;
	*why = 'e';
	rl_callback_handler_install(prompt, rl_take);
	while (!rl_have) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = intr_fd(), .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			intr_drain();
		if (intr_winch) {
			intr_winch = 0;
			rl_resize_terminal();
		}
		if (intr_quit) {
			rl_callback_handler_remove();
			fputc('\n', stdout);
			*why = 'q';
			return NULL;
		}
		if (intr_int) {
			intr_int = 0;
			rl_free_line_state();
			rl_callback_sigcleanup();
			rl_echo_signal_char(SIGINT);
			rl_replace_line("", 0);
			rl_point = rl_end = 0;
			rl_crlf();
			rl_callback_handler_remove();
			*why = 'c';
			return NULL;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
			rl_callback_read_char();
	}
	if (!rl_line)
		fputc('\n', stdout);
	return rl_line;
}

static void run_interactive(struct shell *sh)
{
	char hist[1024];
	history_path(hist, sizeof(hist));
	/* history is appended line by line as it is typed: the file must exist */
	int fd = open(hist, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	using_history();
	read_history(hist);
	rl_readline_name = "mtrsql";
	rl_catch_signals = 0; /* ours (intr.c) */
	rl_catch_sigwinch = 0;
	rl_attempted_completion_function = shell_complete;
	rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,";
	printf("mtrsql %s: connected to %s\nEnter \".help\" for usage hints.\n", PACKAGE_VERSION, sh->uri);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		int why;
		char *line = read_line(len ? "   ...> " : "mtrsql> ", &why);
		if (!line && why == 'c') {
			len = 0; /* Ctrl-C drops the statement being typed */
			continue;
		}
		if (!line)
			break;
		if (*line) {
			add_history(line);
			append_history(1, hist);
		}
		int quit = 0;
		sh->line = 0;
		if (len == 0 && line[strspn(line, " \t")] == '.') {
			quit = handle(sh, line + strspn(line, " \t"), 1);
		} else if (!buf_add(&buf, &len, &cap, line) && sqlite3_complete(buf)) {
			quit = handle(sh, buf, 0);
			len = 0;
			/* the schema may have changed: reload names at the next completion */
			for (size_t i = 0; i < nnames; i++)
				free(names[i]);
			nnames = 0;
		}
		free(line);
		intr_int = 0; /* a Ctrl-C that came as the command ended */
		if (quit || intr_quit)
			break;
	}
	free(buf);
	history_truncate_file(hist, 2000);
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: mtrsql [URI] [-c SQL]... [-bail] [--keep] [--mode MODE] [--headers] [--echo]\n"
		   "  URI        mtr://HOST:PORT[,HOST:PORT...][?consistency=...][&tls=require&ca=FILE]\n"
		   "             (doc/client.md);\n"
		   "             none: the local cluster (started if needed, stopped at exit)\n"
		   "  -c SQL     run SQL (repeatable), then exit\n"
		   "  -bail      stop at the first error\n"
		   "  --keep     leave a local cluster this shell started running at exit\n"
		   "  --mode M   list (default), csv, column, table, box, markdown, line, json,\n"
		   "             html, insert, quote, tabs, ascii, tcl, qbox\n"
		   "  --headers  print column names\n"
		   "Without -c, reads SQL from standard input (a script when it is not a terminal).\n"
		   "Exit status: 0, 1 when a statement failed, 2 on a usage or connection error.\n");
}

int main(int argc, char **argv)
{
	struct shell sh = { .outf = stdout, .exit_code = -1 };
	out_opts_init(&sh.out);
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },	    { "keep", no_argument, NULL, 'k' },
		{ "mode", required_argument, NULL, 'm' },   { "headers", no_argument, NULL, 'H' },
		{ "echo", no_argument, NULL, 'e' },	    { "bail", no_argument, NULL, 'b' },
		{ "version", no_argument, NULL, 'V' },	    { 0, 0, 0, 0 },
	};
	const char **cmds = calloc((size_t)argc, sizeof(*cmds));
	int ncmds = 0;
	/* accept the sqlite3-style single-dash long options too */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c"))
			i++; /* its SQL argument is never an option */
		else if (!strcmp(argv[i], "-bail"))
			argv[i] = (char *)"--bail";
		else if (!strcmp(argv[i], "-keep"))
			argv[i] = (char *)"--keep";
		else if (!strcmp(argv[i], "-echo"))
			argv[i] = (char *)"--echo";
		else if (!strcmp(argv[i], "-header") || !strcmp(argv[i], "-headers"))
			argv[i] = (char *)"--headers";
	}
	int c;
	char err[300];
	while ((c = getopt_long(argc, argv, "c:hHm:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cmds[ncmds++] = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("mtrsql %s\n", PACKAGE_VERSION); return 0;
		case 'k': sh.keep = 1; break;
		case 'H': sh.out.headers = sh.out.headers_set = 1; break;
		case 'e': sh.echo = 1; break;
		case 'b': sh.bail = 1; break;
		case 'm':
			if (out_mode_set(&sh.out, 1, &optarg, err, sizeof err)) {
				fprintf(stderr, "mtrsql: %s\n", err);
				return 2;
			}
			break;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind > 1) {
		usage(stderr);
		return 2;
	}
	if (!getenv("MTR_LOG"))
		log_set_level(LOG_WARN);
	int interactive = ncmds == 0 && isatty(0) && isatty(1);
	if (intr_init(interactive)) {
		fprintf(stderr, "mtrsql: cannot set up signals: %s\n", strerror(errno));
		return 2;
	}
	if (optind < argc) {
		snprintf(sh.uri, sizeof(sh.uri), "%s", argv[optind]);
		if (login_prepare(&sh, argv[optind]))
			return 2;
	} else if (local_up(&sh)) {
		return 2;
	}
	int status = 0;
	if (intr_quit && intr_quit != SIGINT) /* SIGTERM/SIGHUP while the cluster started */
		goto out;
	if (mtr_open(sh.uri, &sh.db)) {
		fprintf(stderr, "mtrsql: cannot connect to %s: %s\n", sh.uri, mtr_errmsg(sh.db));
		status = 2;
		goto out;
	}
	if (intr_quit && intr_quit != SIGINT) /* ... or while it connected */
		goto out;
	g_shell = &sh;
	if (ncmds) {
		for (int i = 0; i < ncmds && !intr_int && !intr_quit; i++) {
			char *copy = strdup(cmds[i]);
			int quit = copy ? handle(&sh, copy, copy[strspn(copy, " \t")] == '.') : 1;
			free(copy);
			if (quit)
				break;
		}
	} else if (interactive) {
		sh.interactive = 1;
		run_interactive(&sh);
	} else {
		run_file(&sh, stdin);
	}
	status = sh.exit_code >= 0 ? sh.exit_code : sh.failed ? 1 : 0;
out:
	output_reset(&sh);
	mtr_close(sh.db); /* and any statement held for an open transaction */
	free(sh.held);
	sqlite3_close(sh.params);
	local_down(&sh);
	free(cmds);
	int sig = intr_quit;
	if (sig && sig != SIGINT) { /* SIGTERM, SIGHUP, SIGPIPE: die of it, as expected */
		signal(sig, SIG_DFL);
		raise(sig);
	}
	return sig == SIGINT ? 130 : status;
}
