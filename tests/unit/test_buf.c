/*
 * test_buf.c - struct buf: appends up to and refused past max (whole, never
 * half), NUL termination, printf, consume, reset, reuse after free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"

static void
test_append_max(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_null(b.data);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_puts(&b, "hello"), 0);
	assert_int_equal(buf_append(&b, "world!", 6), -1);	/* 11 > 10: refused whole */
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "hello");
	assert_int_equal(buf_append(&b, "world", 5), 0);	/* exactly max */
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "helloworld");
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_true(b.cap <= 11);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_nul_bytes(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 4);
	buf_free(&b);
}

static void
test_printf(void **state)
{
	struct buf b;
	int i;

	(void)state;
	buf_init(&b, 20);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_string_equal(b.data, "42-x");
	assert_int_equal(buf_printf(&b, "%s", "0123456789abcdefg"), -1);	/* 4 + 17 > 20 */
	assert_string_equal(b.data, "42-x");
	assert_int_equal(buf_printf(&b, "%s", "0123456789abcdef"), 0);	/* exactly 20 */
	assert_int_equal(b.len, 20);
	assert_int_equal(strlen(b.data), 20);
	buf_free(&b);

	/* refused on a buffer with nothing allocated: still nothing allocated */
	buf_init(&b, 20);
	assert_int_equal(buf_printf(&b, "%s", "0123456789abcdefghijk"), -1);	/* 21 > 20 */
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_printf(&b, "%s", "ok"), 0);
	assert_string_equal(b.data, "ok");
	buf_free(&b);

	/* growth across many appends */
	buf_init(&b, 1 << 20);
	for (i = 0; i < 10000; i++)
		assert_int_equal(buf_printf(&b, "%05d\n", i), 0);
	assert_int_equal(b.len, 60000);
	assert_memory_equal(b.data + 6 * 9999, "09999\n", 6);
	buf_free(&b);
}

static void
test_consume_reset(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 64);
	buf_reset(&b);	/* before any allocation */
	assert_int_equal(buf_puts(&b, "line1\nline2\n"), 0);
	buf_consume(&b, 6);
	assert_string_equal(b.data, "line2\n");
	buf_consume(&b, 0);
	assert_int_equal(b.len, 6);
	buf_consume(&b, 6);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_puts(&b, "again"), 0);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	buf_free(&b);
	buf_free(&b);	/* twice is harmless */
	buf_init(&b, 4);
	assert_int_equal(buf_puts(&b, "abcd"), 0);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_max),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_consume_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
