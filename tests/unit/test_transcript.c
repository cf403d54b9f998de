/*
 * test_transcript.c - line format (ISO 8601 UTC with milliseconds, C:/S:
 * tags, notes), secret masking (AUTH keeps verb and mechanism, PASS keeps the
 * verb, bare SASL continuations become "***"), \xNN escaping, multi-line
 * server text, the memory bound with its one truncation note, disabled mode.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "transcript.h"

struct mcase {
	const char *line;
	size_t	 len;		/* 0: strlen */
	bool	 secret;
	const char *want;
};

static const struct mcase mcases[] = {
	{ "MAIL FROM:<ana@lab.test>", 0, false, "MAIL FROM:<ana@lab.test>" },
	{ "AUTH PLAIN AGFuYQBzZWNyZXQ=", 0, true, "AUTH PLAIN ***" },
	{ "auth plain AGFuYQBzZWNyZXQ=", 0, true, "auth plain ***" },
	{ "AUTH LOGIN", 0, true, "AUTH LOGIN" },
	{ "AUTH LOGIN YW5h", 0, true, "AUTH LOGIN ***" },
	{ "AUTH PLAIN =", 0, true, "AUTH PLAIN ***" },
	{ "AUTH  PLAIN  secret stuff", 0, true, "AUTH  PLAIN ***" },
	{ "PASS hunter2", 0, true, "PASS ***" },
	{ "pass my secret phrase", 0, true, "pass ***" },
	{ "PASS", 0, true, "PASS" },
	{ "APOP ana c4c9334bac560ecc979e58001b3e22fb", 0, true, "APOP ana ***" },
	{ "AGFuYQBzZWNyZXQ=", 0, true, "***" },		/* SASL continuation */
	{ "YW5h", 0, true, "***" },
	{ "PASSWORD", 0, true, "***" },			/* not the PASS verb */
	{ "", 0, true, "***" },
	{ "*", 0, true, "*" },				/* cancel is not a secret */
	{ "AUTH PLAIN \x01\xff", 0, true, "AUTH PLAIN ***" },
	{ "HELO a\x01" "b", 0, false, "HELO a\\x01b" },
	{ "X\r\ty\x7f\x80\xff", 0, false, "X\\x0d\\x09y\\x7f\\x80\\xff" },
	{ "NUL\0IN", 6, false, "NUL\\x00IN" },
	/* well-formed UTF-8 is text: the textbook's Voc\xc3\xaa reads as typed */
	{ "Voc\xc3\xaa gosta de chocolate?", 0, false, "Voc\xc3\xaa gosta de chocolate?" },
	{ "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8d\xab", 0, false,
	  "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8d\xab" },
	/* Latin-1, overlong, surrogate, truncated, C1 and bidi controls: escaped */
	{ "caf\xe9!", 0, false, "caf\\xe9!" },
	{ "\xc0\xaf", 0, false, "\\xc0\\xaf" },
	{ "\xed\xa0\x80", 0, false, "\\xed\\xa0\\x80" },
	{ "x\xe6\x97", 0, false, "x\\xe6\\x97" },
	{ "\xc2\x85", 0, false, "\\xc2\\x85" },
	{ "a\xe2\x80\xae" "b", 0, false, "a\\xe2\\x80\\xaeb" },
	{ "", 0, false, "" },
};

static void
test_mask(void **state)
{
	char out[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
		const struct mcase *c = &mcases[i];
		size_t len = c->len ? c->len : strlen(c->line);

		transcript_mask(c->line, len, c->secret, out, sizeof(out));
		if (strcmp(out, c->want) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, out, c->want);
	}
}

static void
test_mask_small_dst(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	/* cut lines end in "...", never overflow, never cut an escape in half */
	for (n = 1; n < sizeof(out); n++) {
		memset(out, 'Z', sizeof(out));
		transcript_mask("HELO \x01\x02\x03\x04\x05\x06\x07 abcdefghijklmnopqrstuvwxyz", 37, false, out, n);
		assert_true(strlen(out) < n);
		assert_int_equal(out[n], 'Z');
		/* never "\x0" at the end */
		const char *bs = strrchr(out, '\\');
		if (bs != NULL) {
			assert_true(strlen(bs) >= 4);
			assert_int_equal(bs[1], 'x');
			assert_true(isxdigit((unsigned char)bs[2]) && isxdigit((unsigned char)bs[3]));
		}
		if (n >= 4 && strlen(out) < 37 - 7 + 7 * 4)
			assert_non_null(strstr(out, "..."));
		memset(out, 'Z', sizeof(out));
		transcript_mask("AUTH PLAIN AGFuYQBzZWNyZXQ=", 27, true, out, n);
		assert_true(strlen(out) < n);
		assert_null(strstr(out, "AGFu"));
	}
}

/* "2026-11-25T10:00:00.123Z " */
static void
assert_timestamp(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
	size_t i;

	for (i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd')
			assert_true(isdigit((unsigned char)s[i]));
		else
			assert_int_equal(s[i], pat[i]);
	}
}

/* Split pending into lines; check timestamps; return the rest of line i after "<ts> ". */
static const char *
line_at(struct transcript *t, size_t idx)
{
	static char out[4096];
	const char *p = t->pending.data, *nl;
	size_t i;

	assert_non_null(p);
	for (i = 0; i < idx; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	nl = strchr(p, '\n');
	assert_non_null(nl);
	assert_timestamp(p);
	assert_true((size_t)(nl - p) - 25 < sizeof(out));
	memcpy(out, p + 25, (size_t)(nl - p) - 25);
	out[nl - p - 25] = '\0';
	return out;
}

static size_t
count_lines(const struct transcript *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->pending.len; i++)
		n += t->pending.data[i] == '\n';
	return n;
}

static void
test_record(void **state)
{
	struct transcript t;
	const char *server = "250-lab.test\n250-AUTH PLAIN LOGIN\n250 8BITMIME";

	(void)state;
	transcript_init(&t, "abc123", true);
	assert_string_equal(t.session_id, "abc123");
	transcript_note(&t, "connection from %s", "127.0.0.1");
	transcript_server(&t, "220 lab.test ESMTP", 18);
	transcript_client(&t, "EHLO x", 6, false);
	transcript_server(&t, server, strlen(server));
	transcript_client(&t, "AUTH PLAIN AGFuYQBzZWNyZXQ=", 27, true);
	transcript_server(&t, "334 \r", 5);
	transcript_client(&t, "c2VjcmV0", 8, true);
	transcript_server(&t, "235 2.7.0 ok\n", 13);
	transcript_note(&t, "bad\nnote");
	assert_int_equal(count_lines(&t), 11);
	assert_string_equal(line_at(&t, 0), "   [connection from 127.0.0.1]");
	assert_string_equal(line_at(&t, 1), "S: 220 lab.test ESMTP");
	assert_string_equal(line_at(&t, 2), "C: EHLO x");
	assert_string_equal(line_at(&t, 3), "S: 250-lab.test");
	assert_string_equal(line_at(&t, 4), "S: 250-AUTH PLAIN LOGIN");
	assert_string_equal(line_at(&t, 5), "S: 250 8BITMIME");
	assert_string_equal(line_at(&t, 6), "C: AUTH PLAIN ***");
	assert_string_equal(line_at(&t, 7), "S: 334 ");
	assert_string_equal(line_at(&t, 8), "C: ***");
	assert_string_equal(line_at(&t, 9), "S: 235 2.7.0 ok");
	assert_string_equal(line_at(&t, 10), "   [bad\\x0anote]");
	assert_null(strstr(t.pending.data, "AGFu"));
	assert_null(strstr(t.pending.data, "c2Vj"));

	transcript_flushed(&t);
	assert_int_equal(t.pending.len, 0);
	transcript_client(&t, "QUIT", 4, false);
	assert_int_equal(count_lines(&t), 1);
	assert_string_equal(line_at(&t, 0), "C: QUIT");
	transcript_free(&t);
	assert_null(t.pending.data);
}

static void
test_disabled(void **state)
{
	struct transcript t;

	(void)state;
	transcript_init(&t, "x", false);
	transcript_client(&t, "EHLO x", 6, false);
	transcript_server(&t, "250 ok", 6);
	transcript_note(&t, "n");
	assert_int_equal(t.pending.len, 0);
	transcript_flushed(&t);
	transcript_free(&t);
}

static void
test_bounded(void **state)
{
	struct transcript t;
	char line[600];
	size_t i, notes = 0;
	const char *p;

	(void)state;
	memset(line, 'x', sizeof(line));
	transcript_init(&t, "big", true);
	for (i = 0; i < 5000; i++)
		transcript_client(&t, line, sizeof(line), false);
	assert_true(t.pending.len <= t.pending.max);
	for (p = t.pending.data; (p = strstr(p, "[transcript truncated]")) != NULL; p++)
		notes++;
	assert_int_equal(notes, 1);
	/* the note is the last line */
	assert_non_null(strstr(t.pending.data + t.pending.len - 30, "[transcript truncated]\n"));
	/* after a flush, recording resumes */
	transcript_flushed(&t);
	transcript_client(&t, "NOOP", 4, false);
	assert_string_equal(line_at(&t, 0), "C: NOOP");
	/* one huge line is cut with "..." */
	{
		char *huge = malloc(100000);

		assert_non_null(huge);
		memset(huge, 'y', 100000);
		transcript_flushed(&t);
		transcript_server(&t, huge, 100000);
		assert_int_equal(count_lines(&t), 1);
		assert_true(t.pending.len < 4096);
		assert_non_null(strstr(t.pending.data, "yyy...\n"));
		free(huge);
	}
	transcript_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_mask_small_dst),
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
