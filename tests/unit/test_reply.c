/*
 * test_reply.c - reply_set/reply_add_line, the SMTP and POP3 writers,
 * the text a transcript shows, and the dot-stuffing writer fed whole and byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <event2/buffer.h>

#include "reply.h"

/* Drain an evbuffer into a NUL-terminated static string. */
static const char *
drain(struct evbuffer *b)
{
	static char out[1 << 16];
	size_t n = evbuffer_get_length(b);

	assert_true(n < sizeof(out));
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	return out;
}

/* No CR without LF after it, no LF without CR before it. */
static void
assert_crlf_only(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r')
			assert_true(i + 1 < n && s[i + 1] == '\n');
		if (s[i] == '\n')
			assert_true(i > 0 && s[i - 1] == '\r');
	}
}

struct scase {
	const char *name;
	int	 code;
	const char *esc;
	const char *text;
	const char *smtp;	/* expected SMTP wire form */
	const char *pop3;	/* expected POP3 wire form, NULL: not POP3 */
};

static const struct scase scases[] = {
	{ "single", 250, "2.1.0", "Ok", "250 2.1.0 Ok\r\n", NULL },
	{ "no esc", 220, "", "lab.test ESMTP correio", "220 lab.test ESMTP correio\r\n", NULL },
	{ "null esc", 354, NULL, "End data with <CR><LF>.<CR><LF>",
	    "354 End data with <CR><LF>.<CR><LF>\r\n", NULL },
	{ "multi", 250, "", "lab.test\nPIPELINING\nSIZE 1000\n8BITMIME",
	    "250-lab.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n", NULL },
	{ "multi esc", 214, "2.0.0", "a\nb",
	    "214-2.0.0 a\r\n214 2.0.0 b\r\n", NULL },
	{ "trailing newline", 250, "2.0.0", "Ok\n", "250 2.0.0 Ok\r\n", NULL },
	{ "empty text", 250, "", "", "250\r\n", NULL },
	{ "empty text esc", 250, "2.0.0", "", "250 2.0.0\r\n", NULL },
	{ "empty middle line", 250, "", "a\n\nb", "250-a\r\n250-\r\n250 b\r\n", NULL },
	{ "strips cr", 500, "5.5.2", "bad\r\ninjected 250 ok",
	    "500-5.5.2 bad\r\n500 5.5.2 injected 250 ok\r\n", NULL },
	{ "lone cr", 500, "", "a\rb", "500 ab\r\n", NULL },
	{ "control bytes", 500, "", "a\x01\x7f" "b\tc", "500 a??b c\r\n", NULL },
	{ "pop3 ok", REPLY_POP3_OK, "", "2 320", NULL, "+OK 2 320\r\n" },
	{ "pop3 err code", REPLY_POP3_ERR, "IN-USE", "mailbox locked",
	    NULL, "-ERR [IN-USE] mailbox locked\r\n" },
	{ "pop3 first line only", REPLY_POP3_OK, "", "Capability list follows\nUSER",
	    NULL, "+OK Capability list follows\r\n" },
	{ "pop3 empty", REPLY_POP3_OK, "", "", NULL, "+OK\r\n" },
	{ "pop3 cr", REPLY_POP3_ERR, "", "no\rsuch", NULL, "-ERR nosuch\r\n" },
};

static void
test_writers(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct reply r;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		const struct scase *c = &scases[i];
		const char *got;
		char fmt[4096], want[4096];
		size_t j, k;

		reply_set(&r, c->code, c->esc, "%s", c->text);
		if (c->smtp) {
			n = reply_write_smtp(b, &r, fmt, sizeof(fmt));
			got = drain(b);
			if (strcmp(got, c->smtp) != 0)
				fail_msg("%s: got [%s] want [%s]", c->name, got, c->smtp);
			assert_int_equal(n, strlen(c->smtp));
			assert_crlf_only(got, n);
		} else {
			n = reply_write_pop3(b, &r, fmt, sizeof(fmt));
			got = drain(b);
			if (strcmp(got, c->pop3) != 0)
				fail_msg("%s: got [%s] want [%s]", c->name, got, c->pop3);
			assert_int_equal(n, strlen(c->pop3));
		}
		/* shown: the same lines, '\n'-separated, no final newline */
		for (j = k = 0; (c->smtp ? c->smtp : c->pop3)[j]; j++)
			if ((c->smtp ? c->smtp : c->pop3)[j] != '\r')
				want[k++] = (c->smtp ? c->smtp : c->pop3)[j];
		want[k - 1] = '\0';
		assert_string_equal(fmt, want);
	}
	evbuffer_free(b);
}

static void
test_set_flags(void **state)
{
	struct reply r;

	(void)state;
	reply_set(&r, 250, "2.0.0", "Ok");
	assert_int_equal(r.flags, 0);
	reply_set(&r, 354, NULL, "go");
	assert_int_equal(r.flags, 0);
	assert_string_equal(r.esc, "");
	reply_set(&r, 421, "4.4.2", "timeout");
	assert_int_equal(r.flags, REPLY_ERROR);
	reply_set(&r, 550, "5.1.1", "no such user %s", "x@y");
	assert_int_equal(r.flags, REPLY_ERROR);
	assert_string_equal(r.text, "no such user x@y");
	reply_set(&r, REPLY_POP3_ERR, "AUTH", "bad");
	assert_int_equal(r.flags, REPLY_ERROR);
	reply_set(&r, REPLY_POP3_OK, NULL, "fine");
	assert_int_equal(r.flags, 0);
	/* esc longer than the field is cut, never overflows */
	reply_set(&r, 250, "2.0.0.0.0.0.0.0.0.0", "x");
	assert_int_equal(strlen(r.esc), sizeof(r.esc) - 1);
}

static void
test_add_line(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct reply r;
	char big[REPLY_TEXT_MAX];
	size_t before;
	int i;

	(void)state;
	reply_set(&r, 250, "", "lab.test greets %s", "client");
	reply_add_line(&r, "PIPELINING");
	reply_add_line(&r, "SIZE %d", 1000);
	reply_write_smtp(b, &r, NULL, 0);
	assert_string_equal(drain(b), "250-lab.test greets client\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");

	/* a line that does not fit is dropped whole */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	before = strlen(r.text);
	reply_add_line(&r, "%s", big);
	assert_int_equal(strlen(r.text), before);
	/* fill up: the text stays bounded and well formed */
	for (i = 0; i < 1000; i++)
		reply_add_line(&r, "LINE %d", i);
	assert_true(strlen(r.text) < REPLY_TEXT_MAX);
	reply_write_smtp(b, &r, NULL, 0);
	{
		size_t n = evbuffer_get_length(b);
		const char *s = drain(b);

		assert_crlf_only(s, n);
		assert_non_null(strstr(s, "250 LINE "));
		assert_null(strstr(s, "250 PIPELINING"));
	}
	evbuffer_free(b);
}

struct dcase {
	const char *name;
	const char *in;
	const char *out;	/* after reply_dot_end */
};

static const struct dcase dcases[] = {
	{ "empty", "", ".\r\n" },
	{ "plain", "a\r\nb\r\n", "a\r\nb\r\n.\r\n" },
	{ "no final crlf", "a\r\nb", "a\r\nb\r\n.\r\n" },
	{ "leading dot", ".a\r\n", "..a\r\n.\r\n" },
	{ "lone dot line", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n" },
	{ "dots", "..\r\n...\r\n", "...\r\n....\r\n.\r\n" },
	{ "dot mid line", "a.b\r\n x.\r\n", "a.b\r\n x.\r\n.\r\n" },
	{ "dot at end no crlf", "a\r\n.", "a\r\n..\r\n.\r\n" },
	{ "only dot", ".", "..\r\n.\r\n" },
};

static void
test_dotstuff(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct dotstuff ds;
	size_t i, j, n, chunk;

	(void)state;
	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *c = &dcases[i];
		size_t len = strlen(c->in);

		for (chunk = 0; chunk <= 3; chunk++) {
			reply_dot_init(&ds);
			n = 0;
			if (chunk == 0)
				n += reply_dot_write(b, &ds, c->in, len);
			else
				for (j = 0; j < len; j += chunk)
					n += reply_dot_write(b, &ds, c->in + j,
					    len - j < chunk ? len - j : chunk);
			n += reply_dot_end(b, &ds);
			assert_int_equal(n, evbuffer_get_length(b));
			const char *got = drain(b);
			if (strcmp(got, c->out) != 0)
				fail_msg("%s chunk %zu: got [%s]", c->name, chunk, got);
		}
	}
	evbuffer_free(b);
}

/* Out of memory in the output (a frozen evbuffer refuses every add, as a
 * failed allocation does): the body stops at the first failure, stays
 * stopped, and gets no end mark, so the client sees it cut, never whole. */
static void
test_dotstuff_failure(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct dotstuff ds;
	struct reply r;

	(void)state;
	reply_dot_init(&ds);
	assert_int_equal(reply_dot_write(b, &ds, "one\r\n", 5), 5);
	assert_false(ds.failed);
	evbuffer_freeze(b, 0);
	assert_int_equal(reply_dot_write(b, &ds, ".two\r\n", 6), 0);
	assert_true(ds.failed);
	evbuffer_unfreeze(b, 0);
	assert_int_equal(reply_dot_write(b, &ds, "three\r\n", 7), 0);	/* latched */
	assert_int_equal(reply_dot_end(b, &ds), 0);			/* no ".\r\n" */
	assert_string_equal(drain(b), "one\r\n");
	reply_dot_init(&ds);
	assert_false(ds.failed);

	/* a reply that cannot be written is not written at all */
	reply_set(&r, 250, "2.0.0", "Ok: queued as 1");
	evbuffer_freeze(b, 0);
	assert_int_equal(reply_write_smtp(b, &r, NULL, 0), 0);
	evbuffer_unfreeze(b, 0);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

/* Random reply text: the wire form has CRLF only, one code per line, and
 * as many lines as the text has '\n'-separated parts. */
static void
test_random_text(void **state)
{
	struct evbuffer *b = evbuffer_new();
	unsigned seed = 11;
	int round;

	(void)state;
	for (round = 0; round < 5000; round++) {
		char text[200];
		size_t n, i, lines = 1, wl;
		struct reply r;
		const char *w, *p;

#define RND()	(seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
		n = RND() % (sizeof(text) - 1);
		for (i = 0; i < n; i++) {
			unsigned c = 1 + RND() % 255;

			text[i] = (char)c;
			if (RND() % 10 == 0) {
				unsigned k = RND() % 2;

				text[i] = "\r\n"[k];
			}
		}
		text[n] = '\0';
		for (i = 0; i < n; i++)
			if (text[i] == '\n' && i + 1 < n)
				lines++;
		{
			int code = 250 + (int)(RND() % 300);
			const char *esc = (RND() & 1) ? "2.0.0" : "";

			reply_set(&r, code, esc, "%s", text);
		}
		wl = reply_write_smtp(b, &r, NULL, 0);
		w = drain(b);
		assert_int_equal(wl, strlen(w));
		assert_crlf_only(w, wl);
		/* count lines, each starts with the code and '-' or ' ' */
		for (p = w, i = 0; *p; i++) {
			const char *e = strstr(p, "\r\n");

			assert_non_null(e);
			assert_true(e - p >= 3);
			assert_int_equal(strncmp(p, w, 3), 0);
			if (e - p > 3)
				assert_true(p[3] == (e[2] ? '-' : ' '));
			p = e + 2;
		}
		assert_int_equal(i, lines);
#undef RND
	}
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writers),
		cmocka_unit_test(test_set_flags),
		cmocka_unit_test(test_add_line),
		cmocka_unit_test(test_dotstuff),
		cmocka_unit_test(test_dotstuff_failure),
		cmocka_unit_test(test_random_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
