/*
 * test_conf.c - configuration files: values of every type, defaults,
 * comments and quoting, and the errors a user can make.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "metronome.h"

/* ---- Fixture ---- */

static const struct conf_key keys[] = {
	{ "node.id", CONF_INT, "1", "this server's id" },
	{ "data.dir", CONF_STRING, "/var/lib/metronome", "data directory" },
	{ "data.sync", CONF_BOOL, "yes", "fdatasync" },
	{ "log.size", CONF_SIZE, "64M", "segment size" },
	{ "paxos.heartbeat", CONF_DURATION, "50ms", "leader heartbeat" },
	{ "peers", CONF_LIST, NULL, "peer addresses" },
};
#define NKEYS (sizeof keys / sizeof keys[0])

static char path[64];

static void write_file(const char *text)
{
	strcpy(path, "/tmp/mtr-conf-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int load(const char *text, struct conf **c, char *err, size_t n)
{
	write_file(text);
	int rc = conf_load(path, keys, NKEYS, c, err, n);
	unlink(path);
	return rc;
}

/* ---- conf_load ---- */

static void test_values_and_defaults(void **state)
{
	struct conf *c;
	char err[256] = "";
	assert_int_equal(load("# a comment\n\nnode.id = 3\n data.dir=\"/tmp/a b\"  # quoted\n"
			      "data.sync = off\nlog.size = 2 K\npaxos.heartbeat = 2s\npeers = a:1, b:2 # two\n",
			      &c, err, sizeof err),
			 0);
	assert_int_equal(conf_int(c, "node.id"), 3);
	assert_string_equal(conf_str(c, "data.dir"), "/tmp/a b");
	assert_false(conf_bool(c, "data.sync"));
	assert_int_equal(conf_int(c, "log.size"), 2048);
	assert_int_equal(conf_int(c, "paxos.heartbeat"), 2000);
	assert_string_equal(conf_str(c, "peers"), "a:1, b:2");
	conf_free(c);

	assert_int_equal(conf_load(NULL, keys, NKEYS, &c, err, sizeof err), 0);
	assert_int_equal(conf_int(c, "node.id"), 1);
	assert_int_equal(conf_int(c, "log.size"), 64 << 20);
	assert_int_equal(conf_int(c, "paxos.heartbeat"), 50);
	assert_null(conf_str(c, "peers"));
	assert_int_equal(conf_set(c, "node.id=7", err, sizeof err), 0);
	assert_int_equal(conf_int(c, "node.id"), 7);
	assert_int_equal(conf_set(c, "nodeid=7", err, sizeof err), MTR_ECONFIG);
	assert_non_null(strstr(err, "unknown key 'nodeid'"));
	conf_free(c);
}

static void test_errors_name_line(void **state)
{
	struct conf *c = NULL;
	char err[256];
	assert_int_equal(load("node.id = 1\nnode.idd = 2\n", &c, err, sizeof err), MTR_ECONFIG);
	assert_null(c);
	assert_non_null(strstr(err, ":2: unknown key 'node.idd'"));
	assert_int_equal(load("node.id = x1\n", &c, err, sizeof err), MTR_ECONFIG);
	assert_non_null(strstr(err, ":1: bad value 'x1' for node.id: expected integer"));
	assert_int_equal(load("data.sync = perhaps\n", &c, err, sizeof err), MTR_ECONFIG);
	assert_non_null(strstr(err, "expected yes/no"));
	assert_int_equal(load("log.size = 3 parsecs\n", &c, err, sizeof err), MTR_ECONFIG);
	assert_int_equal(load("node.id = 1\nnode.id = 2\n", &c, err, sizeof err), MTR_ECONFIG);
	assert_non_null(strstr(err, "set twice (first on line 1)"));
	assert_int_equal(load("just words\n", &c, err, sizeof err), MTR_ECONFIG);
	assert_non_null(strstr(err, "expected 'key = value'"));
	assert_int_equal(load("data.dir = \"unterminated\n", &c, err, sizeof err), MTR_ECONFIG);
	assert_int_equal(conf_load("/nonexistent/metronome.conf", keys, NKEYS, &c, err, sizeof err), MTR_EIO);
	assert_non_null(strstr(err, "/nonexistent/metronome.conf"));
}

/* ---- conf_parse_value ---- */

static void test_parse_value(void **state)
{
	int64_t v;
	assert_int_equal(conf_parse_value(CONF_SIZE, "1G", &v), 0);
	assert_int_equal(v, 1LL << 30);
	assert_int_equal(conf_parse_value(CONF_DURATION, "1.5s", &v), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(conf_parse_value(CONF_DURATION, "2m", &v), 0);
	assert_int_equal(v, 120000);
	assert_int_equal(conf_parse_value(CONF_INT, "-5", &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(conf_parse_value(CONF_INT, "", &v), MTR_EINVAL);
	assert_int_equal(conf_parse_value(CONF_INT, "99999999999999999999", &v), MTR_EINVAL);
	assert_int_equal(conf_parse_value(CONF_SIZE, "-1", &v), MTR_EINVAL);
	assert_int_equal(conf_parse_value(CONF_BOOL, "TRUE", &v), 0);
	assert_int_equal(v, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_and_defaults),
		cmocka_unit_test(test_errors_name_line),
		cmocka_unit_test(test_parse_value),
	};
	return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
