/*
 * conf.h - configuration files: "key = value" lines, '#' comments, blank
 * lines.  Keys are dotted names (transport.kind, data.dir); values run to the
 * end of the line (trailing blanks and an inline " #" comment removed), may be
 * double-quoted.  A program declares the keys it knows in a table of struct
 * conf_key; conf_load() rejects unknown keys and bad values with a message
 * that names the file, the line and what to do.
 */
#ifndef MTR_CONF_H
#define MTR_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum conf_type {
	CONF_STRING,   /* any text */
	CONF_INT,      /* decimal integer, optional leading '-' */
	CONF_BOOL,     /* yes/no, true/false, on/off, 1/0 */
	CONF_SIZE,     /* bytes with optional K, M, G suffix (powers of 1024) */
	CONF_DURATION, /* milliseconds; suffixes ms, s, m */
	CONF_LIST,     /* comma-separated words (kept as text) */
};

/* One known key: its type, its default (as text; NULL: no default) and a
 * one-line description (for --help and doc/config.md). */
struct conf_key {
	const char *name;
	enum conf_type type;
	const char *def;
	const char *help;
};

struct conf;

/*
 * Read the file at path (NULL: no file, defaults only) against the keys
 * keys[0..nkeys).  On success *out owns the values (free with conf_free) and 0
 * is returned.  On error returns MTR_EIO (cannot read), MTR_ECONFIG (unknown
 * key, bad value, duplicate key) or MTR_ENOMEM, with a sentence in err.
 */
int conf_load(const char *path, const struct conf_key *keys, size_t nkeys, struct conf **out, char *err,
	      size_t errlen);

/* Set a key from "key=value" text (command-line overrides); same checks. */
int conf_set(struct conf *c, const char *assignment, char *err, size_t errlen);

/* The value of a declared key, or its default, or NULL.  Asking for an
 * undeclared key is a programming error (asserts). */
const char *conf_str(const struct conf *c, const char *key);
int64_t conf_int(const struct conf *c, const char *key);    /* INT, SIZE, DURATION */
int conf_bool(const struct conf *c, const char *key);       /* BOOL */

/* Parse one value of a type into *v (bool: 0/1); 0 or MTR_EINVAL. */
int conf_parse_value(enum conf_type type, const char *text, int64_t *v);

/* Print "  key  (type, default X)  help" lines for --help. */
void conf_print_help(const struct conf_key *keys, size_t nkeys, void *file);

void conf_free(struct conf *c);

/* Print the keys as a Markdown table (| key | type | default | meaning |),
 * the form doc/config.md holds. */
void conf_print_doc(const struct conf_key *keys, size_t nkeys, void *file);

/*
 * The command line every daemon shares:
 *   PROG -c FILE [-o key=value]... | --help | --version | --print-config-doc
 * Loads FILE against keys and applies each -o in order.  Returns 0 with
 * the configuration in *out; 1 when the command was answered (help,
 * version or the key table printed: exit 0); -1 after printing one line
 * on stderr saying what was wrong (exit 1).  usage prints the program's
 * --help text.
 */
int conf_from_args(const char *prog, int argc, char **argv, const struct conf_key *keys, size_t nkeys,
		   void (*usage)(FILE *f), struct conf **out);

#endif
