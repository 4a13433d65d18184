/*
 * shell.h - what the files of mtrsql share (doc/mtrsql.1): the one state
 * struct of the shell (as sqlite3's ShellState), running SQL (run.c),
 * the schema commands (schema.c), .import (import.c), signals and the
 * interruptible wait (intr.c), the local cluster this shell started
 * (local.c).  Errors go to stderr through shell_error; only main() exits.
 */
#ifndef MTR_SHELL_SHELL_H
#define MTR_SHELL_SHELL_H

#include <limits.h>
#include <signal.h>
#include <stdio.h>

#include <sqlite3.h>

#include "localcluster.h"
#include "metronome.h"
#include "output.h"

/* shell_step's answer when Ctrl-C (or a quitting signal) ended the wait. */
#define SHELL_EINTR (-1000)

struct shell {
	mtr *db;
	struct out_opts out;
	FILE *outf;              /* results: stdout, .output's or .once's file or pipe */
	int outf_pipe;           /* outf came from popen */
	int once;                /* outf is .once's: back to stdout after the next command */
	char outname[PATH_MAX];  /* .output's target ("" for stdout) */
	int bail, echo, timer, changes, eqp;
	int failed;              /* any statement or command failed */
	int exit_code;           /* .exit CODE (-1: none given) */
	unsigned interrupts;     /* waits Ctrl-C ended (shell_step) */
	int interactive;         /* reading a terminal */
	char uri[600];
	sqlite3 *params;         /* .parameter: a private in-memory table of bindings */
	/* where the text being run comes from, for "near line N" (0: a
	 * terminal or -c, where the statement itself is shown instead) */
	int line;
	/* the local cluster (no URI given) and what this shell started of it */
	struct localcluster lc;
	int local, keep;
	int own[LOCALCLUSTER_MAX_SERVERS + 1]; /* pids this shell started (0: none) */
	/* statements run inside BEGIN ... COMMIT: their rows print after the
	 * COMMIT (run.c) */
	mtr_stmt **held;
	size_t nheld, cheld;
};

/* ---- mtrsql.c ---- */
/* "Error: " and the message on stderr. */
void shell_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- login.c ---- */
/* When sh->uri names a user: move the URI's password into MTR_PASSWORD
 * (and blank it in arg, the command-line argument it came from), or ask for
 * it on /dev/tty when MTR_PASSWORD is not set.  0, or -1 after a message. */
int login_prepare(struct shell *sh, char *arg);

/* ---- run.c ---- */
/* Run every statement of sql, printing rows in the current mode.  A failing
 * statement is reported (with its script line when sh->line is set) and
 * ends the text.  0, -1 on error. */
int run_sql(struct shell *sh, const char *sql);
/* Prepare and run one statement whose rows are not wanted.  0 or -1 (error
 * already reported when report is set). */
int run_exec(struct shell *sh, const char *sql, int report);
/* mtr_step that waits for the cluster: on a worker thread, so that Ctrl-C
 * can cancel it (mtr_interrupt: the read stops on the servers).  Returns
 * mtr_step's code (a write's outcome, too, when Ctrl-C came after it was
 * sent), or SHELL_EINTR after printing "Error: interrupted": st is gone
 * then and must not be used or finalized (finalized here when the read was
 * cancelled; else it and every statement of the old sh->db belong to the
 * abandoned worker, and sh->db is a new connection). */
int shell_step(struct shell *sh, mtr_stmt *st);
/* Close sh->db and connect again to sh->uri (with consistency when not
 * NULL).  0 or -1. */
int shell_reconnect(struct shell *sh, const char *consistency);
/* Bind the .parameter values to st's named parameters. */
void shell_bind_params(struct shell *sh, mtr_stmt *st);
/* .parameter SUBCOMMAND ...; 0 or -1. */
int shell_parameter(struct shell *sh, int argc, char **argv);

/* ---- schema.c ---- */
/* .tables / .indexes [PATTERN]: names in columns, as sqlite3 lays them out. */
int schema_names(struct shell *sh, int indexes, const char *pattern);
/* .schema [--indent] [--nosys] [PATTERN]. */
int schema_show(struct shell *sh, int argc, char **argv);
/* .dump [--data-only] [--nosys] [--newlines] [PATTERN...]. */
int schema_dump(struct shell *sh, int argc, char **argv);

/* ---- import.c ---- */
/* .import [--csv|--ascii] [--skip N] [--schema S] [-v] FILE TABLE. */
int import_run(struct shell *sh, int argc, char **argv);

/* ---- intr.c: signals and the interruptible wait ---- */
/* Install the handlers of SIGINT, SIGTERM, SIGHUP and SIGPIPE (and SIGWINCH
 * when interactive).  0 or -1. */
int intr_init(int interactive);
/* Set by the handlers: a Ctrl-C not yet taken, a signal that ends the
 * shell (SIGTERM, SIGHUP, SIGPIPE, or a second SIGINT within a second),
 * a terminal resize. */
extern volatile sig_atomic_t intr_int, intr_quit, intr_winch;
/* The read end of the pipe the handlers (and finished workers) write to:
 * poll it with other descriptors; intr_drain empties it. */
int intr_fd(void);
void intr_drain(void);
/* Run mtr_step(st) on a worker thread, waiting for it or for a signal;
 * Ctrl-C calls mtr_interrupt(db) (*cancelled is then set) and the wait goes
 * on for the step's answer.  Returns its code, or SHELL_EINTR when the
 * worker was abandoned (a quitting signal, a second Ctrl-C, no answer 2 s
 * after the interrupt): the worker then owns db (it closes it, and with it
 * st, when the step returns). */
int intr_step(mtr *db, mtr_stmt *st, int *cancelled);

/* ---- local.c: the local cluster ---- */
/* Attach to the local cluster (starting what is not running), noting which
 * processes this shell started.  0, or -1 with a message printed. */
int local_up(struct shell *sh);
/* Stop what this shell started: the whole cluster in order when it started
 * all of it, else only its own processes.  Says so on stderr. */
void local_down(struct shell *sh);

#endif
