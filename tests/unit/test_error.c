/*
 * test_error.c - the error table: every code has a distinct value, a name and
 * a sentence; unknown codes are handled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metronome.h"
#include "log.h"

/* ---- mtr_strerror / mtr_errname ---- */

static void test_every_code_named(void **state)
{
	static const int codes[] = {
#define X(name, value, text) MTR_E##name,
		MTR_ERRNO_MAP(X)
#undef X
	};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		assert_true(codes[i] < 0);
		assert_string_not_equal(mtr_strerror(codes[i]), "unknown error");
		assert_int_equal(strncmp(mtr_errname(codes[i]), "MTR_E", 5), 0);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
	assert_string_equal(mtr_errname(MTR_EINVAL), "MTR_EINVAL");
}

static void test_unknown_code(void **state)
{
	assert_string_equal(mtr_strerror(-9999), "unknown error");
	assert_string_equal(mtr_strerror(0), "success");
}

/* ---- log levels ---- */

static void test_log_level_parse(void **state)
{
	assert_int_equal(log_level_parse("error"), LOG_ERROR);
	assert_int_equal(log_level_parse("WARN"), LOG_WARN);
	assert_int_equal(log_level_parse("trace"), LOG_TRACE);
	assert_int_equal(log_level_parse("3"), LOG_DEBUG);
	assert_int_equal(log_level_parse("loud"), -1);
	int old = log_set_level(LOG_ERROR);
	assert_int_equal(log_threshold, LOG_ERROR);
	log_set_level(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_named),
		cmocka_unit_test(test_unknown_code),
		cmocka_unit_test(test_log_level_parse),
	};
	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
