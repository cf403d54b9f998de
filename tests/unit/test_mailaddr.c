/*
 * test_mailaddr.c - table-driven tests of common/mailaddr.c: RFC 5321 4.1.2
 * paths (null path, source routes, quoted local parts, address literals),
 * RFC 6531 UTF-8 only when allowed, the length limits, and the lenient forms
 * people type ("MAIL FROM: bob@x" without brackets). Every valid path is also
 * checked with each of its prefixes, none of which may parse as the whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mailaddr.h"

struct path_case {
	const char *name;
	const char *input;
	bool	 utf8_ok;
	int	 ret;		/* expected return */
	const char *formatted;	/* mailaddr_format result */
	const char *rest;	/* what follows the path */
	const char *unquoted;	/* mailaddr_unquoted_local */
	bool	 quoted, literal, utf8;
};

static const struct path_case path_cases[] = {
	{ "simple", "<ana@lab.test>", false, 0, "ana@lab.test", "", "ana", false, false, false },
	{ "leading space", " <ana@lab.test>", false, 0, "ana@lab.test", "", "ana", false, false, false },
	{ "params", "<ana@lab.test> SIZE=100 BODY=8BITMIME", false, 0, "ana@lab.test",
	  " SIZE=100 BODY=8BITMIME", "ana", false, false, false },
	{ "null path", "<>", false, 0, "", "", "", false, false, false },
	{ "null path params", "<> SIZE=5", false, 0, "", " SIZE=5", "", false, false, false },
	{ "bare postmaster", "<postmaster>", false, 0, "postmaster", "", "postmaster", false, false, false },
	{ "bare Postmaster case", "<PostMaster>", false, 0, "PostMaster", "", "PostMaster", false, false, false },
	{ "source route", "<@relay.one,@relay.two:bob@lab.test>", false, 0, "bob@lab.test", "", "bob",
	  false, false, false },
	{ "quoted local", "<\"john doe\"@lab.test>", false, 0, "\"john doe\"@lab.test", "", "john doe",
	  true, false, false },
	{ "quoted with at", "<\"bob@evil.example\"@lab.test>", false, 0, "\"bob@evil.example\"@lab.test", "",
	  "bob@evil.example", true, false, false },
	{ "quoted escape", "<\"a\\\"b\"@lab.test>", false, 0, "\"a\\\"b\"@lab.test", "", "a\"b", true, false, false },
	{ "ipv4 literal", "<bob@[127.0.0.1]>", false, 0, "bob@[127.0.0.1]", "", "bob", false, true, false },
	{ "ipv6 literal", "<bob@[IPv6:::1]>", false, 0, "bob@[IPv6:::1]", "", "bob", false, true, false },
	{ "atext specials", "<a.b+c-d_e=f!#$%&'*/?^`{|}~@x-y.example>", false, 0,
	  "a.b+c-d_e=f!#$%&'*/?^`{|}~@x-y.example", "", "a.b+c-d_e=f!#$%&'*/?^`{|}~", false, false, false },
	{ "percent hack is just a local part", "<bob%evil.example@lab.test>", false, 0,
	  "bob%evil.example@lab.test", "", "bob%evil.example", false, false, false },
	{ "lenient bare", "bob@lab.test", false, 0, "bob@lab.test", "", "bob", false, false, false },
	{ "lenient bare params", " bob@lab.test SIZE=10", false, 0, "bob@lab.test", " SIZE=10", "bob",
	  false, false, false },
	{ "utf8 allowed", "<jo\xc3\xa3o@lab.test>", true, 0, "jo\xc3\xa3o@lab.test", "", "jo\xc3\xa3o",
	  false, false, true },
	{ "utf8 domain", "<ana@ma\xc3\xa7\xc3\xa3.test>", true, 0, "ana@ma\xc3\xa7\xc3\xa3.test", "", "ana",
	  false, false, true },
	{ "utf8 refused", "<jo\xc3\xa3o@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "bad utf8", "<jo\xc3(o@lab.test>", true, -1, NULL, NULL, NULL, false, false, false },
	{ "overlong utf8", "<\xc0\xafx@lab.test>", true, -1, NULL, NULL, NULL, false, false, false },
	{ "empty", "", false, -1, NULL, NULL, NULL, false, false, false },
	{ "only bracket", "<", false, -1, NULL, NULL, NULL, false, false, false },
	{ "unclosed", "<ana@lab.test", false, -1, NULL, NULL, NULL, false, false, false },
	{ "no domain", "<ana>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "empty domain", "<ana@>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "double dot", "<a..b@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "leading dot", "<.ab@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "trailing dot local", "<ab.@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "domain dot end", "<ab@lab.test.>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "domain double dot", "<ab@lab..test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "domain hyphen start", "<ab@-lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "domain hyphen end", "<ab@lab-.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "domain underscore", "<ab@la_b.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "two ats", "<a@b@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "space inside", "<a b@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "unterminated quote", "<\"ab@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "control in quote", "<\"a\x01\"@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "bad literal", "<a@[300.1.1.1]>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "short ipv4 literal", "<a@[127.1]>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "bad ipv6 literal", "<a@[IPv6:zz::1]>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "unclosed literal", "<a@[127.0.0.1>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "bad route", "<@relay.one bob@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "route without mailbox", "<@relay.one:>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "quoted postmaster needs domain", "<\"postmaster\">", false, -1, NULL, NULL, NULL, false, false, false },
	{ "other bare local", "<root>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "bare garbage after", "bob@lab.test>", false, -1, NULL, NULL, NULL, false, false, false },
	{ "65 octet local",
	  "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@lab.test>",
	  false, -1, NULL, NULL, NULL, false, false, false },
	{ "64 octet local",
	  "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@lab.test>",
	  false, 0, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@lab.test", "",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, false, false },
	{ "64 label", "<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test>",
	  false, -1, NULL, NULL, NULL, false, false, false },
};

static void
test_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		struct mailaddr a;
		const char *rest = NULL;
		char err[128] = "", out[400];
		int ret = mailaddr_parse_path(c->input, &a, c->utf8_ok, &rest, err, sizeof(err));

		if (ret != c->ret)
			fail_msg("%s: %s: expected %d got %d (%s)", c->name, c->input, c->ret, ret, err);
		if (ret == -1) {
			if (err[0] == '\0')
				fail_msg("%s: no reason given", c->name);
			continue;
		}
		mailaddr_format(&a, out, sizeof(out));
		assert_string_equal(out, c->formatted);
		assert_string_equal(rest, c->rest);
		mailaddr_unquoted_local(&a, out, sizeof(out));
		assert_string_equal(out, c->unquoted);
		assert_int_equal(a.quoted, c->quoted);
		assert_int_equal(a.literal, c->literal);
		assert_int_equal(a.utf8, c->utf8);
		assert_int_equal(mailaddr_is_null(&a), c->formatted[0] == '\0');
	}
}

/* A truncated bracketed path never parses (no partial address is accepted). */
/* Errors teach: a person typing RCPT TO by hand learns what was wrong. */
static void
test_error_texts(void **state)
{
	static const struct { const char *input, *says; } cases[] = {
		{ "<a b@lab.test>", "a space in the address (quote the local part" },
		{ "<ana>", "missing @domain" },
		{ "<ana", "missing @domain" },
		{ "ana SIZE=10", "missing @domain" },
		{ "<a,b@lab.test>", "unexpected character ',' in the local part" },
		{ "<a\x01b@lab.test>", "unexpected character '?' in the local part" },
		{ "<ana@lab.test", "missing closing >" },
		{ "<ana@@lab.test>", "missing domain" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mailaddr a;
		char err[128] = "";

		assert_int_equal(mailaddr_parse_path(cases[i].input, &a, false, NULL, err,
		    sizeof(err)), -1);
		if (strstr(err, cases[i].says) == NULL)
			fail_msg("%s: got '%s', want '%s'", cases[i].input, err, cases[i].says);
	}
}

static void
test_prefixes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		const char *lt = strchr(c->input, '<');
		const char *gt = strrchr(c->input, '>');
		char buf[512];

		if (c->ret != 0 || lt == NULL || gt == NULL)
			continue;
		for (size_t n = (size_t)(lt - c->input) + 1; n < (size_t)(gt - c->input) + 1; n++) {
			struct mailaddr a;
			char err[128];
			memcpy(buf, c->input, n);
			buf[n] = '\0';
			if (mailaddr_parse_path(buf, &a, c->utf8_ok, NULL, err, sizeof(err)) != -1)
				fail_msg("%s: prefix %zu of %s parsed", c->name, n, c->input);
		}
	}
}

struct plain_case {
	const char *input;
	int	 ret;
};

static const struct plain_case plain_cases[] = {
	{ "ana@lab.test", 0 },
	{ "bob@doces.br", 0 },
	{ "\"a b\"@x.test", 0 },
	{ "jo\xc3\xa3o@lab.test", 0 },
	{ "postmaster", -1 },
	{ "<ana@lab.test>", -1 },
	{ "ana@lab.test ", -1 },
	{ "ana", -1 },
	{ "@lab.test", -1 },
	{ "", -1 },
};

static void
test_plain(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
		struct mailaddr a;
		char err[128];
		int ret = mailaddr_parse(plain_cases[i].input, &a, err, sizeof(err));
		if (ret != plain_cases[i].ret)
			fail_msg("%s: expected %d got %d", plain_cases[i].input, plain_cases[i].ret, ret);
	}
}

static void
test_valid_domain(void **state)
{
	static const struct { const char *d; bool ok; } cases[] = {
		{ "lab.test", true }, { "a", true }, { "x-1.y2.example", true },
		{ "[127.0.0.1]", true }, { "[IPv6:2001:db8::1]", true },
		{ "", false }, { "a..b", false }, { "a.b.", false }, { ".a", false },
		{ "a_b.test", false }, { "-a.test", false }, { "a-.test", false },
		{ "[1.2.3]", false }, { "lab.test x", false }, { "lab.test]", false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (valid_domain(cases[i].d) != cases[i].ok)
			fail_msg("valid_domain(%s) != %d", cases[i].d, cases[i].ok);
}

static void
test_long_domain(void **state)
{
	char path[600];
	struct mailaddr a;
	char err[128];
	size_t o = 0;
	(void)state;

	o += (size_t)snprintf(path + o, sizeof(path) - o, "<a@");
	/* 4 labels of 63 + 3 dots = 255: allowed; one more label: refused */
	for (int l = 0; l < 4; l++) {
		memset(path + o, 'b', 63);
		o += 63;
		if (l < 3)
			path[o++] = '.';
	}
	snprintf(path + o, sizeof(path) - o, ">");
	assert_int_equal(mailaddr_parse_path(path, &a, false, NULL, err, sizeof(err)), 0);
	assert_int_equal(strlen(a.domain), 255);
	snprintf(path + o, sizeof(path) - o, ".c>");
	assert_int_equal(mailaddr_parse_path(path, &a, false, NULL, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_error_texts),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_valid_domain),
		cmocka_unit_test(test_long_domain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
