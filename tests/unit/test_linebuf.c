/*
 * test_linebuf.c - the bounded line reader: CRLF and bare LF, lines split
 * across feeds, over-long lines (at the cap, one over, huge), NUL bytes, bare
 * CR, pipelined lines. Every case is fed whole and then in chunks of 1, 2, 3
 * and 7 bytes, and must give the same events each time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "linebuf.h"

struct ev {
	enum line_status st;
	enum line_eol	 eol;
	const char	*line;	/* for LINE_OK; NULL for "any" (TOO_LONG) */
	size_t		 len;
};

#define OK_CRLF(s)	{ LINE_OK, EOL_CRLF, s, sizeof(s) - 1 }
#define OK_LF(s)	{ LINE_OK, EOL_LF, s, sizeof(s) - 1 }
#define TOO_LONG	{ LINE_TOO_LONG, EOL_NONE, NULL, 0 }
#define END		{ LINE_MORE, EOL_NONE, NULL, 0 }

struct lcase {
	const char	*name;
	size_t		 max_line;
	const char	*in;		/* NULL: built by the test (huge) */
	size_t		 inlen;
	size_t		 pending;	/* bytes left buffered at the end */
	struct ev	 ev[8];
};

#define IN(s)	s, sizeof(s) - 1

static const struct lcase cases[] = {
	{ "crlf", 10, IN("HELO x\r\n"), 0, { OK_CRLF("HELO x"), END } },
	{ "bare lf", 10, IN("HELO x\n"), 0, { OK_LF("HELO x"), END } },
	{ "mixed", 10, IN("a\nb\r\nc\n"), 0, { OK_LF("a"), OK_CRLF("b"), OK_LF("c"), END } },
	{ "empty lines", 10, IN("\r\n\n\r\n"), 0, { OK_CRLF(""), OK_LF(""), OK_CRLF(""), END } },
	{ "bare cr stays", 10, IN("a\rb\r\n"), 0, { OK_CRLF("a\rb"), END } },
	{ "cr cr lf", 10, IN("a\r\r\n"), 0, { OK_CRLF("a\r"), END } },
	{ "lone cr at end", 10, IN("abc\r"), 4, { END } },
	{ "nul bytes", 10, IN("a\0b\r\n\0\n"), 0, { OK_CRLF("a\0b"), OK_LF("\0"), END } },
	{ "pipelined", 10, IN("MAIL\r\nRCPT\r\nDATA\r\nx"), 1,
	    { OK_CRLF("MAIL"), OK_CRLF("RCPT"), OK_CRLF("DATA"), END } },
	{ "incomplete", 10, IN("NOOP"), 4, { END } },
	{ "exactly cap crlf", 10, IN("0123456789\r\nok\r\n"), 0,
	    { OK_CRLF("0123456789"), OK_CRLF("ok"), END } },
	{ "exactly cap lf", 10, IN("0123456789\nok\n"), 0,
	    { OK_LF("0123456789"), OK_LF("ok"), END } },
	{ "cap+1 crlf", 10, IN("0123456789A\r\nok\r\n"), 0, { TOO_LONG, OK_CRLF("ok"), END } },
	{ "cap+1 lf", 10, IN("0123456789A\nok\r\n"), 0, { TOO_LONG, OK_CRLF("ok"), END } },
	{ "cap with cr inside", 10, IN("0123456789\rX\r\nok\r\n"), 0, { TOO_LONG, OK_CRLF("ok"), END } },
	{ "cap then cr cr lf", 10, IN("0123456789\r\r\nok\r\n"), 0, { TOO_LONG, OK_CRLF("ok"), END } },
	{ "two too long", 4, IN("aaaaaaaaaaaaaa\r\nbbbbbbbbbbbbbbbbbbbbbbbbbbbb\nc\r\n"), 0,
	    { TOO_LONG, TOO_LONG, OK_CRLF("c"), END } },
	{ "too long no end", 4, IN("aaaaaaaaaaaaaaaaaaaaaaaa"), 0, { TOO_LONG, END } },
	{ "too long then lines", 4, IN("xxxxxxx\r\na\r\nb\n"), 0,
	    { TOO_LONG, OK_CRLF("a"), OK_LF("b"), END } },
	{ "good, long, good", 4, IN("ab\r\n0123456789\r\ncd\r\n"), 0,
	    { OK_CRLF("ab"), TOO_LONG, OK_CRLF("cd"), END } },
	{ "max 1", 1, IN("a\r\nbb\r\n\r\nc\n"), 0,
	    { OK_CRLF("a"), TOO_LONG, OK_CRLF(""), OK_LF("c"), END } },
};

/* Feed in chunks of chunk bytes (0: as much as fits), take every event. */
static void
run_case(const struct lcase *c, const char *in, size_t inlen, size_t chunk)
{
	struct linebuf lb;
	size_t off = 0, nev = 0;
	char *line;
	size_t len;
	enum line_eol eol;
	enum line_status st;
	int stall = 0;

	assert_int_equal(linebuf_init(&lb, c->max_line), 0);
	assert_int_equal(lb.cap, c->max_line + 2);
	while (off < inlen) {
		size_t n = inlen - off, took;

		if (chunk && n > chunk)
			n = chunk;
		took = linebuf_feed(&lb, in + off, n);
		assert_true(took <= n);
		off += took;
		/* never more than the cap buffered */
		assert_true(lb.len <= lb.cap);
		assert_true(linebuf_pending(&lb) <= c->max_line + 2);
		while ((st = linebuf_next(&lb, &line, &len, &eol)) != LINE_MORE) {
			const struct ev *e = &c->ev[nev];

			if (e->st != st)
				fail_msg("%s/chunk %zu: event %zu: status %d, want %d",
				    c->name, chunk, nev, st, e->st);
			if (st == LINE_OK) {
				assert_int_equal(eol, e->eol);
				assert_int_equal(len, e->len);
				assert_memory_equal(line, e->line, len);
				assert_int_equal(line[len], '\0');
			} else {
				assert_non_null(line);
				assert_true(len <= c->max_line);
				assert_int_equal(line[len], '\0');
			}
			nev++;
		}
		if (took == 0 && ++stall > 2)
			fail_msg("%s: reader stalled at %zu", c->name, off);
	}
	if (c->ev[nev].st != LINE_MORE)
		fail_msg("%s/chunk %zu: missing event %zu", c->name, chunk, nev);
	if (c->in != NULL)
		assert_int_equal(linebuf_pending(&lb), c->pending);
	linebuf_free(&lb);
}

static void
test_table(void **state)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 7 };
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (j = 0; j < sizeof(chunks) / sizeof(chunks[0]); j++)
			run_case(&cases[i], cases[i].in, cases[i].inlen, chunks[j]);
}

/* 1 MB without a line break, then a good line: one TOO_LONG, memory stays at the cap. */
static void
test_huge(void **state)
{
	static const struct lcase c = { "huge", 512, NULL, 0, 0,
	    { TOO_LONG, OK_CRLF("QUIT"), END } };
	size_t n = 1 << 20;
	char *in = malloc(n + 8);

	(void)state;
	assert_non_null(in);
	memset(in, 'x', n);
	memcpy(in + n, "\r\nQUIT\r\n", 8);
	run_case(&c, in, n + 8, 0);
	run_case(&c, in, n + 8, 4096);
	run_case(&c, in, n + 8, 511);
	free(in);
}

/* CR and LF of one line ending in different feeds is still CRLF. */
static void
test_crlf_split(void **state)
{
	struct linebuf lb;
	char *line;
	size_t len;
	enum line_eol eol;

	(void)state;
	assert_int_equal(linebuf_init(&lb, 64), 0);
	assert_int_equal(linebuf_feed(&lb, "RSET\r", 5), 5);
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_MORE);
	assert_int_equal(linebuf_feed(&lb, "\nNO", 3), 3);
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_OK);
	assert_int_equal(eol, EOL_CRLF);
	assert_int_equal(len, 4);
	assert_string_equal(line, "RSET");
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_MORE);
	assert_int_equal(linebuf_pending(&lb), 2);
	linebuf_free(&lb);
}

/* space() is 0 only while a line waits; taking it frees room. */
static void
test_space(void **state)
{
	struct linebuf lb;
	char *line;
	size_t len;
	enum line_eol eol;

	(void)state;
	assert_int_equal(linebuf_init(&lb, 10), 0);
	assert_int_equal(linebuf_space(&lb), 12);
	assert_int_equal(linebuf_feed(&lb, "ab\r\n0123456789AB", 16), 12);
	assert_int_equal(linebuf_space(&lb), 0);
	assert_int_equal(linebuf_feed(&lb, "x", 1), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_OK);
	assert_string_equal(line, "ab");
	assert_int_equal(linebuf_space(&lb), 4);
	assert_int_equal(linebuf_feed(&lb, "89AB\r\n", 6), 4);
	assert_int_equal(linebuf_space(&lb), 0);	/* full, no LF: an over-long line waits */
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_TOO_LONG);
	assert_int_equal(len, 10);
	assert_string_equal(line, "0123456789");
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_MORE);
	assert_int_equal(linebuf_feed(&lb, "\r\nQUIT\r\n", 8), 8);
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_OK);
	assert_string_equal(line, "QUIT");
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_MORE);
	assert_int_equal(linebuf_space(&lb), 12);
	linebuf_free(&lb);
}

/* clear() drops buffered input, including a half-discarded long line. */
static void
test_clear(void **state)
{
	struct linebuf lb;
	char *line;
	size_t len;
	enum line_eol eol;

	(void)state;
	assert_int_equal(linebuf_init(&lb, 4), 0);
	assert_int_equal(linebuf_feed(&lb, "STARTTLS\r\nMAIL", 6), 6);
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_TOO_LONG);
	linebuf_clear(&lb);
	assert_int_equal(linebuf_pending(&lb), 0);
	assert_int_equal(linebuf_feed(&lb, "EHLO\r\n", 6), 6);
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_OK);
	assert_string_equal(line, "EHLO");
	assert_int_equal(linebuf_feed(&lb, "x\r\nRCPT\r\n", 9), 6);
	linebuf_clear(&lb);
	assert_int_equal(linebuf_next(&lb, &line, &len, &eol), LINE_MORE);
	linebuf_free(&lb);
	assert_int_equal(linebuf_init(&lb, 0), -1);
}

/*
 * Random input against a reference model: every LF-terminated segment is one
 * event (OK with its eol, or TOO_LONG when its content, CR stripped, exceeds
 * max_line); an unterminated tail is one TOO_LONG if it fills the buffer.
 * Fed in random chunk sizes, with random max_line.
 */
static void
test_random_model(void **state)
{
	static const char alphabet[] = "aaaaaaaaaa\r\n\n\0.";
	unsigned seed = 7;
	int round;

	(void)state;
	for (round = 0; round < 300; round++) {
		size_t max_line, n, i, off = 0, seg = 0, chunk;
		unsigned char *in;
		struct linebuf lb;
		char *line;
		size_t len;
		enum line_eol eol;
		enum line_status st;

#define RND()	(seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
		max_line = 1 + RND() % 40;
		n = RND() % 2000;
		in = malloc(n + 1);
		assert_non_null(in);
		for (i = 0; i < n; i++) {
			/* sometimes a long run without LF */
			in[i] = (unsigned char)alphabet[RND() % (sizeof(alphabet) - 1)];
			if (RND() % 50 == 0) {
				size_t run = RND() % 200;

				for (; run > 0 && i + 1 < n; run--)
					in[++i] = 'x';
			}
		}
		assert_int_equal(linebuf_init(&lb, max_line), 0);
		while (off < n) {
			chunk = 1 + RND() % 64;
			if (chunk > n - off)
				chunk = n - off;
			off += linebuf_feed(&lb, in + off, chunk);
			assert_true(lb.len <= max_line + 2);
			while ((st = linebuf_next(&lb, &line, &len, &eol)) != LINE_MORE) {
				/* the model: the next segment starting at seg */
				unsigned char *lf = memchr(in + seg, '\n', n - seg);
				size_t end, clen;
				enum line_eol weol;

				if (lf == NULL) {
					/* unterminated tail: reported once it fills the buffer */
					assert_int_equal(st, LINE_TOO_LONG);
					assert_true(n - seg >= max_line + 2);
					seg = n;
					continue;
				}
				end = (size_t)(lf - in);
				clen = end - seg;
				weol = EOL_LF;
				if (clen > 0 && in[end - 1] == '\r') {
					clen--;
					weol = EOL_CRLF;
				}
				if (clen > max_line) {
					assert_int_equal(st, LINE_TOO_LONG);
				} else {
					assert_int_equal(st, LINE_OK);
					assert_int_equal(eol, weol);
					assert_int_equal(len, clen);
					assert_memory_equal(line, in + seg, clen);
				}
				seg = end + 1;
			}
		}
		/* every complete segment was reported */
		if (seg < n) {
			assert_null(memchr(in + seg, '\n', n - seg));
			assert_true(n - seg < max_line + 2 || linebuf_pending(&lb) == 0);
		}
		linebuf_free(&lb);
		free(in);
#undef RND
	}
}

/* Typed command lines: telnet negotiation dropped, backspace/DEL applied. */
static void
test_untelnet(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		size_t inlen;
		const char *want;
		bool iac;
	} cases[] = {
#define C(n, in, want, iac) { n, in, sizeof(in) - 1, want, iac }
		C("plain", "HELO me", "HELO me", false),
		C("will/do negotiation", "\xff\xfb\x01\xff\xfd\x03HELO me", "HELO me", true),
		C("subnegotiation", "\xff\xfa\x18\x00xterm\xff\xf0QUIT", "QUIT", true),
		C("two-byte command", "NO\xff\xf1OP", "NOOP", true),
		C("IAC IAC is 0xFF", "A\xff\xff" "B", "A\xff" "B", true),
		C("IAC at end", "QUIT\xff", "QUIT", true),
		C("unterminated SB", "QUIT\xff\xfa\x18" "abc", "QUIT", true),
		C("backspace", "HELX\bO me", "HELO me", false),
		C("DEL", "MAIL\x7f\x7fIL", "MAIL", false),
		C("backspace past start", "\b\bQUIT", "QUIT", false),
		C("backspace a UTF-8 char", "Jo\xc3\xa3\bao", "Joao", false),
		C("backspace a 4-byte char", "x\xf0\x9f\x98\x80\by", "xy", false),
		C("NUL passes", "A\0B", "A\0B", false),
#undef C
	};
	char line[128];
	size_t i, len;
	bool iac;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(line, cases[i].in, cases[i].inlen);
		line[cases[i].inlen] = '\0';
		iac = !cases[i].iac;
		len = linebuf_untelnet(line, cases[i].inlen, &iac);
		if (len != strlen(cases[i].want) + (strcmp(cases[i].name, "NUL passes") == 0 ? 2 : 0) ||
		    memcmp(line, cases[i].want, len) != 0 || line[len] != '\0' || iac != cases[i].iac)
			fail_msg("case '%s': got %zu bytes, iac=%d", cases[i].name, len, iac);
	}
	/* had_iac_r may be NULL. */
	memcpy(line, "\xff\xfb\x01OK", 6);
	assert_int_equal(linebuf_untelnet(line, 5, NULL), 2);
	assert_string_equal(line, "OK");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_huge),
		cmocka_unit_test(test_crlf_split),
		cmocka_unit_test(test_space),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_untelnet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
