/*
 * test_markup.c - escaping for HTML/XML and JSON (common/markup.c): a table
 * of inputs and their exact escaped form: markup characters, quotes for
 * attributes, controls, valid UTF-8 kept, invalid UTF-8 (lone continuation,
 * truncated, overlong, surrogate) replaced, and a full buffer refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "markup.h"

struct esc_case {
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	const char	*html;
	const char	*json;
};

#define R "\xef\xbf\xbd"

static const struct esc_case cases[] = {
	{ "plain text", 0, "plain text", "\"plain text\"" },
	{ "<script>alert(1)</script>", 0, "&lt;script&gt;alert(1)&lt;/script&gt;",
	    "\"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\"" },
	{ "<img src=x onerror=\"alert('x')\">", 0,
	    "&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;",
	    "\"\\u003cimg src=x onerror=\\\"alert('x')\\\"\\u003e\"" },
	{ "a & b", 0, "a &amp; b", "\"a \\u0026 b\"" },
	{ "back\\slash", 0, "back\\slash", "\"back\\\\slash\"" },
	{ "tab\tline\r\nend", 0, "tab\tline\r\nend", "\"tab\\u0009line\\u000d\\u000aend\"" },
	{ "bell\x07" "esc\x1b" "del\x7f", 0, "bell" R "esc" R "del" R,
	    "\"bell\\u0007esc\\u001bdel\\u007f\"" },
	{ "nul\0after", 9, "nul" R "after", "\"nul\\u0000after\"" },
	{ "ol\xc3\xa1 \xe2\x82\xac \xf0\x9f\x93\xa7", 0, "ol\xc3\xa1 \xe2\x82\xac \xf0\x9f\x93\xa7",
	    "\"ol\xc3\xa1 \xe2\x82\xac \xf0\x9f\x93\xa7\"" },
	{ "lone \x80 cont", 0, "lone " R " cont", "\"lone \\ufffd cont\"" },
	{ "latin1 \xe9t\xe9", 0, "latin1 " R "t" R, "\"latin1 \\ufffdt\\ufffd\"" },
	{ "cut \xe2\x82", 0, "cut " R R, "\"cut \\ufffd\\ufffd\"" },
	{ "overlong \xc0\xbc", 0, "overlong " R R, "\"overlong \\ufffd\\ufffd\"" },
	{ "surrogate \xed\xa0\x80", 0, "surrogate " R R R, "\"surrogate \\ufffd\\ufffd\\ufffd\"" },
	{ "", 0, "", "\"\"" },
};

static void
test_table(void **state)
{
	struct buf b;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = cases[i].len ? cases[i].len : strlen(cases[i].in);
		buf_init(&b, 4096);
		assert_int_equal(markup_html(&b, cases[i].in, n), 0);
		buf_puts(&b, "");
		if (strcmp(b.data, cases[i].html) != 0)
			fail_msg("case %zu html: got [%s] want [%s]", i, b.data, cases[i].html);
		buf_free(&b);
		buf_init(&b, 4096);
		assert_int_equal(markup_json(&b, cases[i].in, n), 0);
		if (strcmp(b.data, cases[i].json) != 0)
			fail_msg("case %zu json: got [%s] want [%s]", i, b.data, cases[i].json);
		buf_free(&b);
	}
}

/* Nothing that could open a tag or an attribute ever comes out raw. */
static void
test_every_byte(void **state)
{
	char in[256];
	struct buf b;
	size_t i;

	(void)state;
	for (i = 0; i < 256; i++)
		in[i] = (char)i;
	buf_init(&b, 1 << 16);
	assert_int_equal(markup_html(&b, in, sizeof(in)), 0);
	assert_null(memchr(b.data, '<', b.len));
	assert_null(memchr(b.data, '>', b.len));
	assert_null(memchr(b.data, '"', b.len));
	assert_null(memchr(b.data, '\'', b.len));
	buf_free(&b);
}

static void
test_full(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(markup_html_str(&b, "<<<"), -1);	/* 12 octets escaped */
	buf_free(&b);
	buf_init(&b, 8);
	assert_int_equal(markup_json_str(&b, "0123456789"), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
