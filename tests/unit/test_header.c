/*
 * test_header.c - common/header.c: which lines may stand in a header section
 * (what ends it, as Python's email parser reads it), a field's name, and the
 * leading Return-Path: the relay leaves out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "header.h"

static void
test_field_lines(void **state)
{
	static const struct { const char *line; bool first, mbox, want; } t[] = {
		{ "Subject: hi", true, false, true },
		{ "X-Odd_Name.1: v", true, false, true },
		{ "Subject : obsolete blank", true, false, true },
		{ "Subject:", true, false, true },
		{ " folded", false, false, true },
		{ "\tfolded", false, false, true },
		{ " folded", true, false, false },	/* nothing to continue */
		{ "Voc\xc3\xaa gosta de chocolate?", true, false, false },
		{ "E que tal ketchup?", false, false, false },
		{ "Note: buy milk", false, false, true },	/* looks like a field: is one */
		{ "two words: no", true, false, false },
		{ ": no name", true, false, false },
		{ "", false, false, false },
		{ "From ana@lab.test Fri Dec  4 10:00:00 2026", true, true, true },
		{ "From ana@lab.test Fri Dec  4 10:00:00 2026", true, false, false },
		{ "From ana@lab.test Fri Dec  4 10:00:00 2026", false, true, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (header_is_field_line(t[i].line, strlen(t[i].line), t[i].first, t[i].mbox) !=
		    t[i].want)
			fail_msg("case %zu [%s]: want %d", i, t[i].line, t[i].want);
}

static void
test_named(void **state)
{
	(void)state;
	assert_true(header_is_named("Message-ID: <a@b>", 17, "Message-ID"));
	assert_true(header_is_named("message-id : <a@b>", 18, "Message-ID"));
	assert_false(header_is_named("Message-IDs: x", 14, "Message-ID"));
	assert_false(header_is_named("Message-ID", 10, "Message-ID"));
	assert_false(header_is_named("From", 4, "From"));
}

static void
test_return_path_len(void **state)
{
	static const struct { const char *msg; size_t want; } t[] = {
		{ "Return-Path: <ana@lab.test>\r\nReceived: x\r\n", 29 },
		{ "return-path: <>\r\nX: y\r\n", 17 },
		{ "Return-Path: <a@b>\r\n\t(folded)\r\nX: y\r\n", 31 },
		{ "Received: x\r\nReturn-Path: <a@b>\r\n", 0 },	/* not first */
		{ "Return-Path: <a@b>", 0 },			/* no line end in reach */
		{ "Return-Path: <a@b>\n", 0 },			/* bare LF: not ours */
		{ "Return-Path: <a@b>\r\n continued", 0 },	/* its end not in reach */
		{ "", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (header_return_path_len(t[i].msg, strlen(t[i].msg)) != t[i].want)
			fail_msg("case %zu: got %zu want %zu", i,
			    header_return_path_len(t[i].msg, strlen(t[i].msg)), t[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_lines),
		cmocka_unit_test(test_named),
		cmocka_unit_test(test_return_path_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
