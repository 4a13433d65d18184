/*
 * conf.c - the configuration file reader of conf.h.  Small and strict: every
 * key must be declared, every value must parse, and every error message says
 * where and what.
 */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "metronome.h"
#include "util.h"

struct conf {
	const struct conf_key *keys;
	size_t nkeys;
	char **vals; /* vals[i]: value of keys[i] from the file, or NULL */
	int *lines;  /* line it was set on (0: command line) */
};

static const char *const type_names[] = { "text", "integer", "yes/no", "size", "duration", "list" };


int conf_parse_value(enum conf_type type, const char *text, int64_t *v)
{
	char *end;
	long long x;
	double d;

	switch (type) {
	case CONF_STRING:
	case CONF_LIST:
		*v = 0;
		return 0;
	case CONF_INT:
		errno = 0;
		x = strtoll(text, &end, 10);
		if (errno || end == text || *end)
			return MTR_EINVAL;
		*v = x;
		return 0;
	case CONF_BOOL:
		if (!strcasecmp(text, "yes") || !strcasecmp(text, "true") || !strcasecmp(text, "on") || !strcmp(text, "1"))
			*v = 1;
		else if (!strcasecmp(text, "no") || !strcasecmp(text, "false") || !strcasecmp(text, "off") ||
			 !strcmp(text, "0"))
			*v = 0;
		else
			return MTR_EINVAL;
		return 0;
	case CONF_SIZE:
	case CONF_DURATION:
		errno = 0;
		d = strtod(text, &end);
		if (errno || end == text || d < 0)
			return MTR_EINVAL;
		while (*end == ' ')
			end++;
		if (type == CONF_SIZE) {
			if (!*end || !strcasecmp(end, "b"))
				;
			else if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib"))
				d *= 1024;
			else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib"))
				d *= 1024 * 1024;
			else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib"))
				d *= 1024.0 * 1024 * 1024;
			else
				return MTR_EINVAL;
		} else {
			if (!*end || !strcmp(end, "ms"))
				;
			else if (!strcmp(end, "s"))
				d *= 1000;
			else if (!strcmp(end, "m") || !strcmp(end, "min"))
				d *= 60000;
			else if (!strcmp(end, "us"))
				d /= 1000;
			else
				return MTR_EINVAL;
		}
		if (d > 9.2e18)
			return MTR_EINVAL;
		*v = (int64_t)d;
		return 0;
	}
	return MTR_EINVAL;
}

static long find_key(const struct conf *c, const char *name, size_t len)
{
	for (size_t i = 0; i < c->nkeys; i++)
		if (strlen(c->keys[i].name) == len && !strncmp(c->keys[i].name, name, len))
			return (long)i;
	return -1;
}

/* Apply "key = value" (already trimmed into key/val).  line 0: command line. */
static int conf_assign(struct conf *c, const char *where, int line, const char *key, size_t klen, const char *val,
		       char *err, size_t errlen)
{
	long i = find_key(c, key, klen);
	int64_t v;

	if (i < 0) {
		errbuf_set(err, errlen, "%s%.0d: unknown key '%.*s' (see doc/config.md or --help for the keys)", where,
		       line, (int)klen, key);
		return MTR_ECONFIG;
	}
	if (conf_parse_value(c->keys[i].type, val, &v) < 0) {
		errbuf_set(err, errlen, "%s%.0d: bad value '%s' for %s: expected %s", where, line, val, c->keys[i].name,
		       type_names[c->keys[i].type]);
		return MTR_ECONFIG;
	}
	if (c->vals[i] && line && c->lines[i]) {
		errbuf_set(err, errlen, "%s%.0d: %s is set twice (first on line %d)", where, line, c->keys[i].name,
		       c->lines[i]);
		return MTR_ECONFIG;
	}
	char *copy = strdup(val);
	if (!copy)
		return MTR_ENOMEM;
	free(c->vals[i]);
	c->vals[i] = copy;
	c->lines[i] = line;
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Split a line into key and value in place; handles quotes and " #" comments.
 * Returns 1 for an assignment, 0 for a blank/comment line, -1 for an error. */
static int split_line(char *line, char **key, char **val)
{
	char *s = trim(line);
	if (!*s || *s == '#' || *s == ';')
		return 0;
	char *eq = strchr(s, '=');
	if (!eq)
		return -1;
	*eq = '\0';
	*key = trim(s);
	char *v = trim(eq + 1);
	if (*v == '"') {
		char *q = strchr(v + 1, '"');
		if (!q)
			return -1;
		*q = '\0';
		char *rest = trim(q + 1);
		if (*rest && *rest != '#')
			return -1;
		*val = v + 1;
	} else {
		for (char *h = v; *h; h++)
			if (*h == '#' && (h == v || isspace((unsigned char)h[-1]))) {
				*h = '\0';
				break;
			}
		*val = trim(v);
	}
	return **key ? 1 : -1;
}

int conf_load(const char *path, const struct conf_key *keys, size_t nkeys, struct conf **out, char *err,
	      size_t errlen)
{
	struct conf *c = calloc(1, sizeof *c);
	int rc = 0;

	*out = NULL;
	if (!c)
		return MTR_ENOMEM;
	c->keys = keys;
	c->nkeys = nkeys;
	c->vals = calloc(nkeys ? nkeys : 1, sizeof *c->vals);
	c->lines = calloc(nkeys ? nkeys : 1, sizeof *c->lines);
	if (!c->vals || !c->lines) {
		conf_free(c);
		return MTR_ENOMEM;
	}
	if (path) {
		FILE *f = fopen(path, "r");
		char where[512], buf[4096];
		int line = 0;

		if (!f) {
			errbuf_set(err, errlen, "cannot read configuration file %s: %s", path, strerror(errno));
			conf_free(c);
			return MTR_EIO;
		}
		snprintf(where, sizeof where, "%s:", path);
		while (rc == 0 && fgets(buf, sizeof buf, f)) {
			char *key, *val;
			line++;
			if (!strchr(buf, '\n') && !feof(f)) {
				errbuf_set(err, errlen, "%s%d: line too long (over %zu bytes)", where, line, sizeof buf - 2);
				rc = MTR_ECONFIG;
				break;
			}
			int k = split_line(buf, &key, &val);
			if (k < 0) {
				errbuf_set(err, errlen, "%s%d: expected 'key = value'", where, line);
				rc = MTR_ECONFIG;
			} else if (k > 0) {
				rc = conf_assign(c, where, line, key, strlen(key), val, err, errlen);
			}
		}
		fclose(f);
	}
	if (rc) {
		conf_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int conf_set(struct conf *c, const char *assignment, char *err, size_t errlen)
{
	char buf[4096], *key, *val;
	if (strlen(assignment) >= sizeof buf) {
		errbuf_set(err, errlen, "setting too long: %.40s...", assignment);
		return MTR_ECONFIG;
	}
	strcpy(buf, assignment);
	if (split_line(buf, &key, &val) != 1) {
		errbuf_set(err, errlen, "expected key=value, got '%s'", assignment);
		return MTR_ECONFIG;
	}
	return conf_assign(c, "option", 0, key, strlen(key), val, err, errlen);
}

static long key_index(const struct conf *c, const char *key)
{
	long i = find_key(c, key, strlen(key));
	assert(i >= 0 && "undeclared configuration key");
	return i;
}

const char *conf_str(const struct conf *c, const char *key)
{
	long i = key_index(c, key);
	if (i < 0)
		return NULL;
	return c->vals[i] ? c->vals[i] : c->keys[i].def;
}

int64_t conf_int(const struct conf *c, const char *key)
{
	long i = key_index(c, key);
	const char *s = i < 0 ? NULL : (c->vals[i] ? c->vals[i] : c->keys[i].def);
	int64_t v = 0;
	if (s && conf_parse_value(c->keys[i].type, s, &v) < 0)
		v = 0;
	return v;
}

int conf_bool(const struct conf *c, const char *key)
{
	return conf_int(c, key) != 0;
}

void conf_print_help(const struct conf_key *keys, size_t nkeys, void *file)
{
	FILE *f = file;
	for (size_t i = 0; i < nkeys; i++)
		fprintf(f, "  %-24s %-8s %-12s %s\n", keys[i].name, type_names[keys[i].type],
			keys[i].def ? keys[i].def : "-", keys[i].help);
}

void conf_free(struct conf *c)
{
	if (!c)
		return;
	if (c->vals)
		for (size_t i = 0; i < c->nkeys; i++)
			free(c->vals[i]);
	free(c->vals);
	free(c->lines);
	free(c);
}

void conf_print_doc(const struct conf_key *keys, size_t nkeys, void *file)
{
	FILE *f = file;
	fprintf(f, "| key | type | default | meaning |\n|---|---|---|---|\n");
	for (size_t i = 0; i < nkeys; i++)
		fprintf(f, "| `%s` | %s | %s | %s |\n", keys[i].name, type_names[keys[i].type],
			keys[i].def ? keys[i].def : "(none)", keys[i].help);
}

int conf_from_args(const char *prog, int argc, char **argv, const struct conf_key *keys, size_t nkeys,
		   void (*usage)(FILE *f), struct conf **out)
{
	const char *file = NULL;
	*out = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("%s %s\n", prog, PACKAGE_VERSION);
			return 1;
		} else if (strcmp(a, "--print-config-doc") == 0) {
			conf_print_doc(keys, nkeys, stdout);
			return 1;
		} else if (strcmp(a, "-c") == 0 && i + 1 < argc) {
			file = argv[++i];
		} else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
			i++; /* applied after the file is loaded */
		} else {
			fprintf(stderr, "%s: unknown or incomplete option '%s'; see %s --help\n", prog, a, prog);
			return -1;
		}
	}
	if (file == NULL) {
		fprintf(stderr, "%s: no configuration file: use -c FILE (see %s --help)\n", prog, prog);
		return -1;
	}
	char err[512];
	if (conf_load(file, keys, nkeys, out, err, sizeof err) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return -1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			i++;
		} else if (strcmp(argv[i], "-o") == 0) {
			if (conf_set(*out, argv[++i], err, sizeof err) != 0) {
				fprintf(stderr, "%s: -o %s: %s\n", prog, argv[i], err);
				conf_free(*out);
				*out = NULL;
				return -1;
			}
		}
	}
	return 0;
}
