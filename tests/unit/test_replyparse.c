/*
 * test_replyparse.c - SMTP reply parsing (single, multi-line, enhanced codes,
 * malformed input), POP3 status lines and dot-terminated bodies. Each SMTP
 * case is given as wire bytes and run through a linebuf fed whole and one
 * byte at a time, as mailcli and the relay do.
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

#include "linebuf.h"
#include "reply.h"
#include "replyparse.h"

struct scase {
	const char *name;
	const char *wire;	/* one reply, CRLF lines */
	int	 result;	/* last smtp_reply_feed result */
	int	 code;
	const char *esc;
	const char *text;
	size_t	 nlines;
	const char *err;	/* substring of the error, for result -1 */
};

static const struct scase scases[] = {
	{ "single", "250 Ok\r\n", 1, 250, "", "Ok", 1, NULL },
	{ "single esc", "250 2.1.0 Sender ok\r\n", 1, 250, "2.1.0", "Sender ok", 1, NULL },
	{ "code only", "250\r\n", 1, 250, "", "", 1, NULL },
	{ "code space", "250 \r\n", 1, 250, "", "", 1, NULL },
	{ "esc only", "250 2.0.0\r\n", 1, 250, "2.0.0", "", 1, NULL },
	{ "multi ehlo", "250-lab.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
	    1, 250, "", "lab.test\nPIPELINING\nSIZE 1000\n8BITMIME", 4, NULL },
	{ "multi esc", "550-5.1.1 no such\r\n550 5.1.1 user\r\n", 1, 550, "5.1.1", "no such\nuser", 2, NULL },
	{ "multi empty dash", "250-\r\n250 x\r\n", 1, 250, "", "\nx", 2, NULL },
	{ "esc class mismatch", "250 5.1.1 odd\r\n", 1, 250, "", "5.1.1 odd", 1, NULL },
	{ "esc not a code", "250 2.1 ok\r\n", 1, 250, "", "2.1 ok", 1, NULL },
	{ "esc 4 digits", "250 2.1.1000 ok\r\n", 1, 250, "", "2.1.1000 ok", 1, NULL },
	{ "esc glued", "250 2.1.0ok\r\n", 1, 250, "", "2.1.0ok", 1, NULL },
	{ "esc long parts", "451 4.123.456 later\r\n", 1, 451, "4.123.456", "later", 1, NULL },
	{ "greeting", "220 lab.test ESMTP correio\r\n", 1, 220, "", "lab.test ESMTP correio", 1, NULL },
	{ "354", "354 End data with <CR><LF>.<CR><LF>\r\n", 1, 354, "", "End data with <CR><LF>.<CR><LF>", 1, NULL },
	{ "incomplete", "250-a\r\n250-b\r\n", 0, 250, "", "a\nb", 2, NULL },
	{ "bare lf lines", "250-a\n250 b\n", 1, 250, "", "a\nb", 2, NULL },
	{ "no code", "hello\r\n", -1, 0, "", NULL, 0, "3-digit" },
	{ "short", "25\r\n", -1, 0, "", NULL, 0, "3-digit" },
	{ "empty", "\r\n", -1, 0, "", NULL, 0, "3-digit" },
	{ "letters", "2x0 ok\r\n", -1, 0, "", NULL, 0, "3-digit" },
	{ "class 1", "150 ok\r\n", -1, 0, "", NULL, 0, "3-digit" },
	{ "class 6", "650 ok\r\n", -1, 0, "", NULL, 0, "3-digit" },
	{ "second digit 6", "260 ok\r\n", -1, 0, "", NULL, 0, "3-digit" },
	{ "code changed", "250-a\r\n251 b\r\n", -1, 250, "", NULL, 1, "changed" },
	{ "bad separator", "250_ok\r\n", -1, 0, "", NULL, 0, "space" },
	{ "4 digit code", "2500 ok\r\n", -1, 0, "", NULL, 0, "space" },
	{ "nul byte", "250 o\0k\r\n", -1, 0, "", NULL, 0, "NUL" },
	{ "leading space", " 250 ok\r\n", -1, 0, "", NULL, 0, "3-digit" },
};

static size_t
wire_len(const struct scase *c)
{
	/* wire strings may hold a NUL: length up to the last "\n" */
	size_t n = 0, i;

	for (i = 0; i < 256; i++)
		if (c->wire[i] == '\n')
			n = i + 1;
		else if (c->wire[i] == '\0' && (i == 0 || c->wire[i - 1] == '\n'))
			break;
	return n;
}

static void
run_smtp(const struct scase *c, size_t chunk)
{
	struct linebuf lb;
	struct smtp_reply r;
	size_t n = wire_len(c), off = 0, len;
	char *line, err[128] = "";
	enum line_eol eol;
	int res = 0, done = 0;

	assert_int_equal(linebuf_init(&lb, 512), 0);
	smtp_reply_init(&r);
	while (off < n && !done) {
		size_t k = chunk && n - off > chunk ? chunk : n - off;

		off += linebuf_feed(&lb, c->wire + off, k);
		while (!done && linebuf_next(&lb, &line, &len, &eol) == LINE_OK) {
			res = smtp_reply_feed(&r, line, len, err, sizeof(err));
			if (res != 0)
				done = 1;
		}
	}
	if (res != c->result)
		fail_msg("%s/%zu: result %d want %d (%s)", c->name, chunk, res, c->result, err);
	assert_int_equal(r.nlines, c->nlines);
	if (c->result >= 0 || c->nlines > 0)
		assert_int_equal(r.code, c->code);
	if (c->result >= 0) {
		assert_string_equal(r.esc, c->esc);
		assert_non_null(r.text.data);
		assert_string_equal(r.text.data, c->text);
	} else {
		if (strstr(err, c->err) == NULL)
			fail_msg("%s: error [%s] lacks [%s]", c->name, err, c->err);
	}
	smtp_reply_free(&r);
	linebuf_free(&lb);
}

static void
test_smtp_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		run_smtp(&scases[i], 0);
		run_smtp(&scases[i], 1);
	}
}

static void
test_smtp_limits(void **state)
{
	struct smtp_reply r;
	char err[128], line[600];
	int i, res = 0;

	(void)state;
	/* SMTP_REPLY_MAX_LINES lines are fine, one more is refused */
	smtp_reply_init(&r);
	for (i = 0; i < SMTP_REPLY_MAX_LINES - 1; i++)
		assert_int_equal(smtp_reply_feed(&r, "250-x", 5, err, sizeof(err)), 0);
	assert_int_equal(smtp_reply_feed(&r, "250 x", 5, err, sizeof(err)), 1);
	assert_int_equal(r.nlines, SMTP_REPLY_MAX_LINES);
	smtp_reply_free(&r);

	smtp_reply_init(&r);
	for (i = 0; i < SMTP_REPLY_MAX_LINES && res == 0; i++)
		res = smtp_reply_feed(&r, "250-x", 5, err, sizeof(err));
	assert_int_equal(res, 0);
	assert_int_equal(smtp_reply_feed(&r, "250 x", 5, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many"));
	smtp_reply_free(&r);

	/* long lines within the line limit are kept whole */
	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, line, sizeof(line), err, sizeof(err)), 1);
	assert_int_equal(r.text.len, sizeof(line) - 4);
	smtp_reply_free(&r);

	/* NULL err is allowed; reuse after free + init */
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, "xyz", 3, NULL, 0), -1);
	smtp_reply_free(&r);
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, "221 2.0.0 Bye", 13, NULL, 0), 1);
	assert_int_equal(r.code, 221);
	assert_string_equal(r.esc, "2.0.0");
	smtp_reply_free(&r);
}

static void
test_pop3_status(void **state)
{
	static const struct {
		const char *line;
		int	 res;
		const char *text, *code;
	} cases[] = {
		{ "+OK", 1, "", "" },
		{ "+OK ", 1, "", "" },
		{ "+OK POP3 server ready <1.2@lab.test>", 1, "POP3 server ready <1.2@lab.test>", "" },
		{ "+OK  2 320", 1, "2 320", "" },
		{ "-ERR", 0, "", "" },
		{ "-ERR no such message", 0, "no such message", "" },
		{ "-ERR [IN-USE] mailbox locked", 0, "mailbox locked", "IN-USE" },
		{ "-ERR [SYS/TEMP] try later", 0, "try later", "SYS/TEMP" },
		{ "-ERR [AUTH]", 0, "", "AUTH" },
		{ "-ERR [unterminated text", 0, "[unterminated text", "" },
		{ "+ok lower", 1, "lower", "" },
		{ "+ ", -1, NULL, "" },
		{ "+ AGFuYQ==", -1, NULL, "" },
		{ "+", -1, NULL, "" },
		{ "+OKAY", -1, NULL, "" },
		{ "-ERROR", -1, NULL, "" },
		{ "", -1, NULL, "" },
		{ "OK", -1, NULL, "" },
		{ "220 smtp", -1, NULL, "" },
	};
	const char *text;
	char code[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int res = pop3_status_parse(cases[i].line, &text, code, sizeof(code));

		if (res != cases[i].res)
			fail_msg("[%s]: %d want %d", cases[i].line, res, cases[i].res);
		if (res >= 0) {
			assert_string_equal(text, cases[i].text);
			assert_string_equal(code, cases[i].code);
		}
	}
	/* a small resp_code buffer truncates; NULL outputs are allowed */
	assert_int_equal(pop3_status_parse("-ERR [SYS/PERM] x", &text, code, 4), 0);
	assert_string_equal(code, "SYS");
	assert_int_equal(pop3_status_parse("-ERR [SYS/PERM] x", NULL, NULL, 0), 0);
}

static void
test_pop3_body(void **state)
{
	/* a RETR response as it comes off the wire, fed whole and byte by byte */
	static const char wire[] = "From: a\r\n\r\n..leading dot\r\n.\r\n";
	static const char *want[] = { "From: a", "", ".leading dot" };
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk <= 1; chunk++) {
		struct linebuf lb;
		size_t off = 0, n = sizeof(wire) - 1, nl = 0, len, outlen;
		char *line;
		const char *out;
		enum line_eol eol;
		int end = 0;

		assert_int_equal(linebuf_init(&lb, 1000), 0);
		while (off < n) {
			off += linebuf_feed(&lb, wire + off, chunk ? 1 : n - off);
			while (linebuf_next(&lb, &line, &len, &eol) == LINE_OK) {
				assert_int_equal(end, 0);
				if (pop3_body_line(line, len, &out, &outlen) == 1) {
					end = 1;
					continue;
				}
				assert_true(nl < 3);
				assert_int_equal(outlen, strlen(want[nl]));
				assert_memory_equal(out, want[nl], outlen);
				nl++;
			}
		}
		assert_int_equal(end, 1);
		assert_int_equal(nl, 3);
		linebuf_free(&lb);
	}
	{
		const char *out;
		size_t outlen;

		assert_int_equal(pop3_body_line("..", 2, &out, &outlen), 0);
		assert_int_equal(outlen, 1);
		assert_int_equal(out[0], '.');
		assert_int_equal(pop3_body_line("", 0, &out, &outlen), 0);
		assert_int_equal(outlen, 0);
		assert_int_equal(pop3_body_line(". ", 2, &out, &outlen), 0);
		assert_int_equal(outlen, 1);
	}
}

/*
 * Round trip: a random CRLF body, dot-stuffed by reply_dot_write in random
 * chunks, read back through linebuf + pop3_body_line byte by byte, is the
 * same body; the reader stops exactly at the terminator.
 */
static void
test_dot_round_trip(void **state)
{
	static const char alphabet[] = "..ab \r";
	unsigned seed = 99;
	int round;

	(void)state;
	for (round = 0; round < 200; round++) {
		struct evbuffer *eb = evbuffer_new();
		struct dotstuff ds;
		struct buf body, back;
		struct linebuf lb;
		size_t nlines, i, j, off, wlen, len, outlen;
		unsigned char *wire;
		char *line;
		const char *out;
		enum line_eol eol;
		int end = 0;

#define RND()	(seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
		buf_init(&body, 1 << 20);
		buf_init(&back, 1 << 20);
		nlines = RND() % 30;
		for (i = 0; i < nlines; i++) {
			size_t ll = RND() % 12;

			for (j = 0; j < ll; j++) {
				char c = alphabet[RND() % (sizeof(alphabet) - 1)];

				if (c == '\r' && j + 1 == ll)
					c = 'z';	/* keep CRLF the only line end */
				assert_int_equal(buf_append(&body, &c, 1), 0);
			}
			assert_int_equal(buf_puts(&body, "\r\n"), 0);
		}
		reply_dot_init(&ds);
		for (off = 0; off < body.len; off += j) {
			j = 1 + RND() % 9;
			if (j > body.len - off)
				j = body.len - off;
			reply_dot_write(eb, &ds, body.data + off, j);
		}
		reply_dot_end(eb, &ds);
		wlen = evbuffer_get_length(eb);
		wire = evbuffer_pullup(eb, -1);
		assert_true(wlen >= 3);
		assert_memory_equal(wire + wlen - 3, ".\r\n", 3);

		assert_int_equal(linebuf_init(&lb, 64), 0);
		for (off = 0; off < wlen && !end; off++) {
			assert_int_equal(linebuf_feed(&lb, wire + off, 1), 1);
			while (!end && linebuf_next(&lb, &line, &len, &eol) == LINE_OK) {
				assert_int_equal(eol, EOL_CRLF);
				if (pop3_body_line(line, len, &out, &outlen) == 1) {
					end = 1;
					break;
				}
				assert_int_equal(buf_append(&back, out, outlen), 0);
				assert_int_equal(buf_puts(&back, "\r\n"), 0);
			}
		}
		assert_int_equal(end, 1);
		assert_int_equal(off, wlen);	/* the terminator was the last line */
		assert_int_equal(back.len, body.len);
		if (body.len > 0)
			assert_memory_equal(back.data, body.data, body.len);
		linebuf_free(&lb);
		buf_free(&body);
		buf_free(&back);
		evbuffer_free(eb);
#undef RND
	}
}

/* Random server lines: the parser answers 1, 0 or -1, stays bounded, and a
 * completed reply always has a code in 200-559 and a NUL-terminated text. */
static void
test_smtp_garbage(void **state)
{
	unsigned seed = 5;
	int round;

	(void)state;
	for (round = 0; round < 2000; round++) {
		struct smtp_reply r;
		char err[64];
		int res = 0, k;

		smtp_reply_init(&r);
		for (k = 0; k < 100 && res == 0; k++) {
			char line[40];
			size_t n, i;

#define RND()	(seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
			n = RND() % sizeof(line);
			for (i = 0; i < n; i++) {
				unsigned c = RND() % 4 ? (unsigned char)"0123456789 -.25"[RND() % 15] : RND() % 256;

				line[i] = (char)c;
			}
			if (n >= 3 && RND() % 2) {
				memcpy(line, "250", 3);
				if (n > 3)
					line[3] = RND() % 3 ? '-' : ' ';
			}
			res = smtp_reply_feed(&r, line, n, err, sizeof(err));
			assert_true(res >= -1 && res <= 1);
			assert_true(r.nlines <= SMTP_REPLY_MAX_LINES);
#undef RND
		}
		if (res == 1) {
			assert_true(r.code >= 200 && r.code <= 559);
			assert_non_null(r.text.data);
			assert_int_equal(strlen(r.text.data), r.text.len);
			assert_true(strlen(r.esc) < sizeof(r.esc));
		}
		smtp_reply_free(&r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp_table),
		cmocka_unit_test(test_smtp_limits),
		cmocka_unit_test(test_pop3_status),
		cmocka_unit_test(test_pop3_body),
		cmocka_unit_test(test_dot_round_trip),
		cmocka_unit_test(test_smtp_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
