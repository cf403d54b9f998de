/*
 * test_numparse.c - the decimal number parser: a table of inputs with their
 * maximum and the expected outcome, the exact boundaries of uint64, uint32
 * and a small maximum (max accepted, max + 1 refused, never wrapped), junk
 * before, inside and after, signs, spaces, empty; and the word form used on
 * server replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "numparse.h"

struct numcase {
	const char	*in;
	uint64_t	 max;
	int		 rc;
	uint64_t	 want;	/* when rc == NUMPARSE_OK */
};

static const struct numcase cases[] = {
	{ "0", UINT64_MAX, NUMPARSE_OK, 0 },
	{ "1", UINT64_MAX, NUMPARSE_OK, 1 },
	{ "007", UINT64_MAX, NUMPARSE_OK, 7 },
	{ "42", 42, NUMPARSE_OK, 42 },
	{ "43", 42, NUMPARSE_RANGE, 0 },
	{ "7", 5, NUMPARSE_RANGE, 0 },		/* one digit above a one-digit max */
	{ "5", 5, NUMPARSE_OK, 5 },
	{ "0", 0, NUMPARSE_OK, 0 },
	{ "1", 0, NUMPARSE_RANGE, 0 },
	/* uint64 boundaries */
	{ "18446744073709551615", UINT64_MAX, NUMPARSE_OK, UINT64_MAX },
	{ "18446744073709551616", UINT64_MAX, NUMPARSE_RANGE, 0 },	/* 2^64 */
	{ "18446744073709551617", UINT64_MAX, NUMPARSE_RANGE, 0 },	/* 2^64 + 1: wrapped to 1 */
	{ "18446744073709551625", UINT64_MAX, NUMPARSE_RANGE, 0 },
	{ "184467440737095516150", UINT64_MAX, NUMPARSE_RANGE, 0 },
	{ "000000000000000000000000000018446744073709551615", UINT64_MAX, NUMPARSE_OK, UINT64_MAX },
	{ "99999999999999999999999999999999999999", UINT64_MAX, NUMPARSE_RANGE, 0 },
	/* int64 boundaries */
	{ "9223372036854775807", INT64_MAX, NUMPARSE_OK, INT64_MAX },
	{ "9223372036854775808", INT64_MAX, NUMPARSE_RANGE, 0 },	/* 2^63 */
	/* uint32 boundaries */
	{ "4294967295", UINT32_MAX, NUMPARSE_OK, UINT32_MAX },
	{ "4294967296", UINT32_MAX, NUMPARSE_RANGE, 0 },
	{ "4294967297", UINT32_MAX, NUMPARSE_RANGE, 0 },		/* 2^32 + 1 */
	/* syntax */
	{ "", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "+1", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "-1", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "-0", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ " 1", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "1 ", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "1x", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "x1", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "0x10", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "1.0", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "1e3", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "\t1", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "1\r", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	/* junk after digits that are already out of range is still junk */
	{ "99999999999999999999x", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
	{ "99999999999999999999 ", UINT64_MAX, NUMPARSE_SYNTAX, 0 },
};

static void
test_table(void **state)
{
	size_t i;
	uint64_t v;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		rc = numparse_u64z(cases[i].in, cases[i].max, &v);
		if (rc != cases[i].rc)
			fail_msg("'%s' max %llu: rc %d, want %d", cases[i].in,
			    (unsigned long long)cases[i].max, rc, cases[i].rc);
		if (rc == NUMPARSE_OK && v != cases[i].want)
			fail_msg("'%s': %llu, want %llu", cases[i].in, (unsigned long long)v,
			    (unsigned long long)cases[i].want);
		if (rc != NUMPARSE_OK && v != 12345)
			fail_msg("'%s': output written on failure", cases[i].in);
	}
}

/* The length form stops at len: no NUL needed, nothing past len read. */
static void
test_len(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(numparse_u64("123456", 3, UINT64_MAX, &v), NUMPARSE_OK);
	assert_int_equal(v, 123);
	assert_int_equal(numparse_u64("12x", 2, UINT64_MAX, &v), NUMPARSE_OK);
	assert_int_equal(v, 12);
	assert_int_equal(numparse_u64("12", 0, UINT64_MAX, &v), NUMPARSE_SYNTAX);
	assert_int_equal(numparse_u64(NULL, 0, UINT64_MAX, &v), NUMPARSE_SYNTAX);
}

static void
test_u32(void **state)
{
	uint32_t v = 0;

	(void)state;
	assert_int_equal(numparse_u32z("4294967295", UINT32_MAX, &v), NUMPARSE_OK);
	assert_true(v == UINT32_MAX);
	assert_int_equal(numparse_u32z("4294967296", UINT32_MAX, &v), NUMPARSE_RANGE);
	assert_int_equal(numparse_u32z("65535", 65535, &v), NUMPARSE_OK);
	assert_int_equal(v, 65535);
	assert_int_equal(numparse_u32z("65536", 65535, &v), NUMPARSE_RANGE);
	assert_int_equal(numparse_u32z("-1", UINT32_MAX, &v), NUMPARSE_SYNTAX);
}

static void
test_word(void **state)
{
	const char *p = "2 320  rest", *q;
	uint64_t a = 0, b = 0;

	(void)state;
	assert_int_equal(numparse_u64_word(&p, UINT64_MAX, &a), NUMPARSE_OK);
	assert_int_equal(a, 2);
	assert_int_equal(numparse_u64_word(&p, UINT64_MAX, &b), NUMPARSE_OK);
	assert_int_equal(b, 320);
	assert_string_equal(p, "rest");
	assert_int_equal(numparse_u64_word(&p, UINT64_MAX, &b), NUMPARSE_SYNTAX);
	assert_string_equal(p, "rest");		/* unmoved on failure */
	q = "18446744073709551617 5";
	assert_int_equal(numparse_u64_word(&q, UINT64_MAX, &a), NUMPARSE_RANGE);
	q = "7";
	assert_int_equal(numparse_u64_word(&q, UINT64_MAX, &a), NUMPARSE_OK);
	assert_int_equal(a, 7);
	assert_string_equal(q, "");
	q = "";
	assert_int_equal(numparse_u64_word(&q, UINT64_MAX, &a), NUMPARSE_SYNTAX);
	q = " 7";
	assert_int_equal(numparse_u64_word(&q, UINT64_MAX, &a), NUMPARSE_SYNTAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_len),
		cmocka_unit_test(test_u32),
		cmocka_unit_test(test_word),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
