/*
 * test_dsn.c - smtpd/dsn.c: who may be bounced (never <>), where a header
 * section ends (whole and cut at every length), and the bounce itself: an
 * RFC 6522 multipart/report whose delivery-status part has the RFC 3464
 * fields, CRLF lines only, no line over 998 octets, hostile reply text made
 * harmless, the original headers quoted and its body never.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dsn.h"

static void
test_wanted(void **state)
{
	static const struct { const char *sender; bool want; } cases[] = {
		{ "", false },			/* null reverse-path: a bounce itself */
		{ NULL, false },
		{ "ana@consumidor.br", true },
		{ "postmaster", true },
		{ "MAILER-DAEMON@x.example", true },	/* only <> is special (RFC 5321 6.1) */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(dsn_wanted(cases[i].sender), cases[i].want);
}

struct hcase {
	const char *name;
	const char *msg;
	size_t	 want;		/* header section length */
};

static const struct hcase hcases[] = {
	{ "crlf", "Subject: a\r\nFrom: b\r\n\r\nbody\r\n", 21 },
	{ "lf only", "Subject: a\nFrom: b\n\nbody\n", 19 },
	{ "no body", "Subject: a\r\n\r\n", 12 },
	{ "no blank line", "Subject: a\r\nFrom: b\r\n", 21 },
	{ "partial last line", "Subject: a\r\nFrom: b", 12 },
	{ "no header section", "\r\nbody\r\n", 0 },
	{ "empty", "", 0 },
	{ "folded", "Subject: a\r\n b\r\n\r\nx", 16 },
	{ "blank line in body kept out", "A: 1\r\n\r\nB: 2\r\n\r\n", 6 },
};

static void
test_header_len(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++) {
		const struct hcase *c = &hcases[i];
		size_t n = strlen(c->msg);

		if (dsn_header_len(c->msg, n) != c->want)
			fail_msg("%s: got %zu want %zu", c->name, dsn_header_len(c->msg, n), c->want);
		/* Cut at every length: never more than the whole, never a partial line. */
		for (size_t k = 0; k <= n; k++) {
			size_t got = dsn_header_len(c->msg, k);

			assert_true(got <= k);
			assert_true(got <= c->want);
			if (got > 0)
				assert_int_equal(c->msg[got - 1], '\n');
		}
	}
}

static void
test_date(void **state)
{
	char d[64];

	(void)state;
	dsn_date(0, d, sizeof(d));
	assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
	dsn_date(1795648535, d, sizeof(d));	/* 2026-11-25 23:15:35 UTC */
	assert_string_equal(d, "Wed, 25 Nov 2026 23:15:35 +0000");
}

/* Every line ends in CRLF, none is longer than 998 octets. */
static void
check_lines(const char *s, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < n && s[i + 1] == '\n');
		} else if (s[i] == '\n') {
			assert_true(i > 0 && s[i - 1] == '\r');
			assert_true(i - 1 - start <= 998);
			start = i + 1;
		}
	}
	assert_int_equal(start, n);	/* ends with CRLF */
}

static const char orig[] =
	"Received: from a by b; Wed, 25 Nov 2026 10:00:00 +0000\r\n"
	"From: Ana <ana@consumidor.br>\r\n"
	"To: bernardo@doces.br\r\n"
	"Subject: doces\r\n"
	"Message-ID: <1@consumidor.br>\r\n"
	"\r\n"
	"SECRET BODY LINE\r\n";

static void
test_build(void **state)
{
	struct dsn_rcpt r[2] = {
		{ "bernardo@doces.br", "5.1.1", "mx.doces.br[127.0.0.3:2525]",
		  "550 5.1.1 <bernardo@doces.br>: no such user", NULL, 1795648535 },
		{ "carla@doces.br", "4.4.7", NULL, NULL,
		  "gave up after 432000 s in the queue; last error: connection refused", 1795648535 },
	};
	struct dsn_msg m = { "mx.consumidor.br", "ana@consumidor.br", "1.abc.dsn@mx.consumidor.br",
	    1795640000, 1795648535 };
	struct buf b;
	const char *p;

	(void)state;
	buf_init(&b, 1 << 20);
	assert_int_equal(dsn_build(&b, &m, r, 2, orig, sizeof(orig) - 1), 0);
	check_lines(b.data, b.len);
	assert_non_null(strstr(b.data, "\r\nTo: <ana@consumidor.br>\r\n"));
	assert_non_null(strstr(b.data, "From: Mail Delivery System <MAILER-DAEMON@mx.consumidor.br>\r\n"));
	assert_non_null(strstr(b.data, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(b.data, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(b.data, "Message-ID: <1.abc.dsn@mx.consumidor.br>\r\n"));
	/* RFC 3464 fields. */
	assert_non_null(strstr(b.data, "Content-Type: message/delivery-status\r\n"));
	assert_non_null(strstr(b.data, "Reporting-MTA: dns; mx.consumidor.br\r\n"));
	assert_non_null(strstr(b.data, "Arrival-Date: "));
	assert_non_null(strstr(b.data, "Final-Recipient: rfc822; bernardo@doces.br\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.doces.br\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <bernardo@doces.br>: no such user\r\n"
	    "Last-Attempt-Date: Wed, 25 Nov 2026 23:15:35 +0000\r\n"));
	assert_non_null(strstr(b.data, "Final-Recipient: rfc822; carla@doces.br\r\n"
	    "Action: failed\r\nStatus: 4.4.7\r\nDiagnostic-Code: X-Correio; gave up"));
	/* The text part names the recipient and the remote reply. */
	assert_non_null(strstr(b.data, "<bernardo@doces.br>: host mx.doces.br[127.0.0.3:2525] said:\r\n"
	    "    550 5.1.1 <bernardo@doces.br>: no such user\r\n"));
	/* The original headers, and not its body. */
	p = strstr(b.data, "Content-Type: text/rfc822-headers\r\n");
	assert_non_null(p);
	assert_non_null(strstr(p, "Subject: doces\r\nMessage-ID: <1@consumidor.br>\r\n"));
	assert_null(strstr(b.data, "SECRET BODY LINE"));
	/* Closing boundary last. */
	assert_non_null(strstr(b.data, "\r\n--=_correio-dsn-0-1.abc.dsn@mx.consumidor.br--\r\n"));
	buf_free(&b);
}

static void
test_hostile_reply(void **state)
{
	/* A remote reply trying to inject header lines and 8-bit bytes, and a
	 * huge one: one clean line each, bounded. */
	char big[5000];
	struct dsn_rcpt r[2] = {
		{ "x@y.example", "5.0.0", "evil\r\nBcc: z@z", "550 a\r\nX-Injected: 1\r\n\x01\xff", NULL, 0 },
		{ "x2@y.example", "5.0.0", "h", big, NULL, 0 },
	};
	struct dsn_msg m = { "mx.a", "s@a", "id@mx.a", 0, 1 };
	struct buf b;

	(void)state;
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 1 << 20);
	assert_int_equal(dsn_build(&b, &m, r, 2, "", 0), 0);
	check_lines(b.data, b.len);
	assert_null(strstr(b.data, "\r\nX-Injected"));
	assert_null(strstr(b.data, "\r\nBcc:"));
	assert_null(strchr(b.data, '\x01'));
	assert_null(strchr(b.data, '\xff'));
	assert_null(strstr(b.data, "Arrival-Date"));	/* unknown arrival: omitted */
	buf_free(&b);
}

static void
test_boundary_collision(void **state)
{
	static const char h[] = "X-Trap: =_correio-dsn-0-id@mx.a\r\n\r\n";
	struct dsn_rcpt r = { "x@y", "5.1.1", NULL, NULL, "no", 0 };
	struct dsn_msg m = { "mx.a", "s@a", "id@mx.a", 0, 1 };
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 20);
	assert_int_equal(dsn_build(&b, &m, &r, 1, h, sizeof(h) - 1), 0);
	assert_non_null(strstr(b.data, "boundary=\"=_correio-dsn-1-id@mx.a\""));
	buf_free(&b);
}

static void
test_limit(void **state)
{
	struct dsn_rcpt r = { "x@y", "5.1.1", NULL, NULL, "no", 0 };
	struct dsn_msg m = { "mx.a", "s@a", "id@mx.a", 0, 1 };
	struct buf b;

	(void)state;
	buf_init(&b, 200);	/* too small: refused, not truncated silently */
	assert_int_equal(dsn_build(&b, &m, &r, 1, orig, sizeof(orig) - 1), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wanted),
		cmocka_unit_test(test_header_len),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_hostile_reply),
		cmocka_unit_test(test_boundary_collision),
		cmocka_unit_test(test_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
