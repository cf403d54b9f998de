/*
 * test_webd.c - webd's request handling without a socket: the route table
 * and its matcher (literal paths, numeric and token parameters, lengths,
 * traversal and encoded paths never matching, 405 for a known path under
 * another method, HEAD as GET), the Cookie header parser, the tokens behind
 * cookies, CSRF and API keys (common/webtoken.c: random, hex, hashed,
 * compared in constant time), and the session id taken from Received:.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "webd.h"
#include "webtoken.h"

struct route_case {
	enum evhttp_cmd_type method;
	const char	*path;
	const char	*pattern;	/* NULL: no route */
	bool		 known;		/* when no route: 405 rather than 404 */
	const char	*p0, *p1;
};

static const struct route_case route_cases[] = {
	{ EVHTTP_REQ_GET, "/login", "/login", false, NULL, NULL },
	{ EVHTTP_REQ_POST, "/login", "/login", false, NULL, NULL },
	{ EVHTTP_REQ_HEAD, "/login", "/login", false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/logout", NULL, true, NULL, NULL },
	{ EVHTTP_REQ_POST, "/mailbox", NULL, true, NULL, NULL },
	{ EVHTTP_REQ_GET, "/mailbox", "/mailbox", false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/mailbox/", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/mailbox/42", "/mailbox/#", false, "42", NULL },
	{ EVHTTP_REQ_GET, "/mailbox/42/raw", "/mailbox/#/raw", false, "42", NULL },
	{ EVHTTP_REQ_GET, "/mailbox/42/part/3", "/mailbox/#/part/#", false, "42", "3" },
	{ EVHTTP_REQ_GET, "/mailbox/4x", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/mailbox/-1", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/mailbox/1234567890123456789", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/mailbox/123456789012345678", "/mailbox/#", false, "123456789012345678",
	    NULL },
	{ EVHTTP_REQ_GET, "/mailbox/../../etc/passwd", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/mailbox/1/../2", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/sessions/14bc0a7bef1a", "/sessions/*", false, "14bc0a7bef1a", NULL },
	{ EVHTTP_REQ_GET, "/sessions/live", "/sessions/live", false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/sessions/a%2Fb", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/sessions/a.b", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/sessions/" "0123456789012345678901234567890123456789012345678901234567890123",
	    NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/api/sessions/abc-1_2", "/api/sessions/*", false, "abc-1_2", NULL },
	{ EVHTTP_REQ_GET, "/api/mailbox/7", "/api/mailbox/#", false, "7", NULL },
	{ EVHTTP_REQ_GET, "/.well-known/autoconfig/mail/config-v1.1.xml",
	    "/.well-known/autoconfig/mail/config-v1.1.xml", false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/static/live.js", "/static/live.js", false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/static/../webd.conf", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "/static/style.css/", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_GET, "//mailbox", NULL, false, NULL, NULL },
	{ EVHTTP_REQ_PUT, "/mailbox", NULL, true, NULL, NULL },
};

static void
test_routes(void **state)
{
	char params[WEBD_ROUTE_PARAMS][WEBD_PARAM_MAX];
	const struct route_def *r;
	bool known;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
		const struct route_case *c = &route_cases[i];

		memset(params, 0, sizeof(params));
		r = route_match(webd_routes, webd_nroutes, c->method, c->path, params, &known);
		if (c->pattern == NULL) {
			if (r != NULL)
				fail_msg("case %zu %s: matched %s", i, c->path, r->pattern);
			if (known != c->known)
				fail_msg("case %zu %s: known %d", i, c->path, known);
			continue;
		}
		if (r == NULL)
			fail_msg("case %zu %s: no route", i, c->path);
		assert_string_equal(r->pattern, c->pattern);
		if (c->p0)
			assert_string_equal(params[0], c->p0);
		if (c->p1)
			assert_string_equal(params[1], c->p1);
	}
}

/* Who may use what: the pages of a user need a login, the live view a teacher. */
static void
test_route_auth(void **state)
{
	char params[WEBD_ROUTE_PARAMS][WEBD_PARAM_MAX];
	bool known;

	(void)state;
	assert_int_equal(route_match(webd_routes, webd_nroutes, EVHTTP_REQ_GET, "/mailbox/1",
	    params, &known)->auth, ROUTE_USER);
	assert_int_equal(route_match(webd_routes, webd_nroutes, EVHTTP_REQ_GET, "/sessions/live",
	    params, &known)->auth, ROUTE_TEACHER);
	assert_int_equal(route_match(webd_routes, webd_nroutes, EVHTTP_REQ_POST, "/logout",
	    params, &known)->auth, ROUTE_USER);
	assert_int_equal(route_match(webd_routes, webd_nroutes, EVHTTP_REQ_GET, "/login",
	    params, &known)->auth, ROUTE_PUBLIC);
}

struct cookie_case {
	const char	*header, *name;
	size_t		 len;
	int		 rc;
	const char	*want;
};

static const struct cookie_case cookie_cases[] = {
	{ "correio_session=abc", "correio_session", 64, 0, "abc" },
	{ "a=1; correio_session=abc; b=2", "correio_session", 64, 0, "abc" },
	{ "a=1;correio_session=abc  ;b=2", "correio_session", 64, 0, "abc" },
	{ "xcorreio_session=abc", "correio_session", 64, -1, NULL },
	{ "correio_session_x=abc", "correio_session", 64, -1, NULL },
	{ "correio_session", "correio_session", 64, -1, NULL },
	{ "correio_session=", "correio_session", 64, 0, "" },
	{ "correio_session=0123456789", "correio_session", 10, -1, NULL },	/* too long */
	{ "correio_session=012345678", "correio_session", 10, 0, "012345678" },
	{ "", "correio_session", 64, -1, NULL },
	{ "; ; ;", "correio_session", 64, -1, NULL },
	{ "correio_login=x; correio_session=y", "correio_login", 64, 0, "x" },
};

static void
test_cookies(void **state)
{
	char dst[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cookie_cases) / sizeof(cookie_cases[0]); i++) {
		const struct cookie_case *c = &cookie_cases[i];
		int rc = weblogin_cookie(c->header, c->name, dst, c->len);

		if (rc != c->rc)
			fail_msg("case %zu [%s]: rc %d", i, c->header, rc);
		if (rc == 0)
			assert_string_equal(dst, c->want);
	}
}

static void
test_tokens(void **state)
{
	char a[WEBTOKEN_HEX + 1], b[WEBTOKEN_HEX + 1], h[WEBTOKEN_HEX + 1], h2[WEBTOKEN_HEX + 1];

	(void)state;
	assert_int_equal(webtoken_new(a, sizeof(a)), 0);
	assert_int_equal(webtoken_new(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), WEBTOKEN_HEX);
	assert_true(webtoken_is_valid(a));
	assert_false(webtoken_equal(a, b));
	assert_true(webtoken_equal(a, a));
	assert_int_equal(webtoken_new(a, WEBTOKEN_HEX), -1);	/* no room for the NUL */
	/* SHA-256 of "abc" (FIPS 180-2) */
	webtoken_hash("abc", h, sizeof(h));
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	webtoken_hash(b, h2, sizeof(h2));
	assert_true(webtoken_is_valid(h2));
	assert_false(webtoken_equal(h2, b));
	/* what a cookie or a CSRF field must look like */
	assert_false(webtoken_is_valid(""));
	assert_false(webtoken_is_valid("ABCDEF"));
	h[10] = 'G';
	assert_false(webtoken_is_valid(h));
	h[10] = 'A';				/* upper case is not ours */
	assert_false(webtoken_is_valid(h));
	assert_false(webtoken_equal("abc", "abcd"));
	assert_false(webtoken_equal("", "a"));
}

static void
test_received_session(void **state)
{
	static const char msg[] = "Return-Path: <ana@lab.test>\r\n"
	    "Received: from me ([127.0.0.1])\r\n\tby mx.lab.test (correio) with ESMTP id 14bc0a7bef1a\r\n"
	    "\tfor <bob@lab.test>; Fri, 04 Dec 2026 21:25:55 +0000\r\n"
	    "Received: from old by x with SMTP id olderone\r\n"
	    "Subject: id fake\r\n\r\nReceived: body id nope\r\n";
	static const char none[] = "Subject: x\r\n\r\nReceived: by x id body\r\n";
	char id[64];

	(void)state;
	mail_received_session(msg, sizeof(msg) - 1, id, sizeof(id));
	assert_string_equal(id, "14bc0a7bef1a");
	mail_received_session(none, sizeof(none) - 1, id, sizeof(id));
	assert_string_equal(id, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_route_auth),
		cmocka_unit_test(test_cookies),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_received_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
