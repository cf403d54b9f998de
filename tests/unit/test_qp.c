/*
 * test_qp.c - quoted-printable (RFC 2045 6.7): exact encodings for trailing
 * whitespace, '=' itself, long lines and their soft breaks, line breaks;
 * random round trips with the line-length and alphabet invariants; the
 * lenient decoder on what other clients send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "qp.h"

static char *
repeat(char c, size_t n, const char *tail)
{
	char *s = malloc(n + strlen(tail) + 1);

	memset(s, c, n);
	memcpy(s + n, tail, strlen(tail) + 1);
	return s;
}

static void
check_encode(const char *in, const char *want)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(qp_encode(in, strlen(in), &b), 0);
	if (strcmp(b.data, want) != 0)
		fail_msg("encode '%s' -> '%s', expected '%s'", in, b.data, want);
	buf_free(&b);
}

static void
test_encode_table(void **state)
{
	static const struct { const char *in, *out; } t[] = {
		{ "", "" },
		{ "hello\n", "hello\r\n" },
		{ "hello\r\nworld\r\n", "hello\r\nworld\r\n" },
		{ "no newline", "no newline" },
		{ "a=b", "a=3Db" },
		{ "==", "=3D=3D" },
		{ "trailing  \n", "trailing =20\r\n" },
		{ "tab\t\n", "tab=09\r\n" },
		{ "end ", "end=20" },
		{ "inner  spaces\tkept\n", "inner  spaces\tkept\r\n" },
		{ "From here\n", "=46rom here\r\n" },
		{ "x\nFrom here\n", "x\r\n=46rom here\r\n" },
		{ "Fromage\n", "Fromage\r\n" },
		{ "olá\r\n", "ol=C3=A1\r\n" },
		{ "lone\rcr", "lone=0Dcr" },
		{ "\n\n", "\r\n\r\n" },
		{ "nul\0x", "nul=00x" },	/* strlen stops at the NUL: see below */
	};
	size_t i;

	(void)state;
	for (i = 0; i + 1 < sizeof(t) / sizeof(t[0]); i++)
		check_encode(t[i].in, t[i].out);
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(qp_encode("nul\0x", 5, &b), 0);
	assert_string_equal(b.data, "nul=00x");
	buf_free(&b);
}

static void
test_long_lines(void **state)
{
	char *in, *want;

	(void)state;
	/* exactly 76 characters: no soft break */
	in = repeat('a', 76, "\n");
	want = repeat('a', 76, "\r\n");
	check_encode(in, want);
	free(in);
	free(want);
	/* 77: 75 + "=" CRLF + 2 */
	in = repeat('a', 77, "\n");
	check_encode(in, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\naa\r\n");
	free(in);
	/* an escape never straddles a soft break */
	in = repeat('a', 74, "é\n");
	check_encode(in, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\n=C3=A9\r\n");
	free(in);
	/* a trailing space after a long run is encoded on the last line */
	in = repeat('b', 75, " \n");
	check_encode(in, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=\r\n=20\r\n");
	free(in);
}

/* Every output line <= 76, only legal characters, "=" always an escape or a
 * soft break, no "=_" (our boundaries contain it), and decode(encode(x)) == x
 * with line breaks as CRLF. */
static void
test_random_roundtrip(void **state)
{
	static const char alphabet[] = "ab =\t\r\nF.-_\x80\xc3\xa9\xff\x00";
	struct buf enc, dec;
	char in[600], norm[1300];
	unsigned seed = 42;
	size_t i, n, k, col, m;

	(void)state;
	buf_init(&enc, 1 << 20);
	buf_init(&dec, 1 << 20);
	for (i = 0; i < 3000; i++) {
		n = i % sizeof(in);
		for (k = 0; k < n; k++) {
			seed = seed * 1103515245 + 12345;
			in[k] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		buf_reset(&enc);
		assert_int_equal(qp_encode(in, n, &enc), 0);
		for (k = 0, col = 0; k < enc.len; k++) {
			unsigned char c = (unsigned char)enc.data[k];
			if (c == '\r') {
				assert_true(k + 1 < enc.len && enc.data[k + 1] == '\n');
				assert_true(col == 0 || (enc.data[k - 1] != ' ' && enc.data[k - 1] != '\t'));
				col = 0;
				k++;
				continue;
			}
			assert_true((c >= 33 && c <= 126) || c == ' ' || c == '\t');
			if (c == '=')
				assert_true((k + 2 < enc.len && strchr("0123456789ABCDEF", enc.data[k + 1]) &&
				    strchr("0123456789ABCDEF", enc.data[k + 2])) ||
				    (k + 1 < enc.len && enc.data[k + 1] == '\r'));
			assert_true(++col <= QP_LINE_MAX);
		}
		assert_null(memmem(enc.data, enc.len, "=_", 2));
		/* expected: LF and CRLF both become CRLF; a lone CR stays */
		for (k = 0, m = 0; k < n; k++) {
			if (in[k] == '\n') {
				if (m == 0 || norm[m - 1] != '\r' || k == 0 || in[k - 1] != '\r')
					norm[m++] = '\r';
				norm[m++] = '\n';
			} else
				norm[m++] = in[k];
		}
		buf_reset(&dec);
		assert_int_equal(qp_decode(enc.data, enc.len, &dec), 0);
		assert_int_equal(dec.len, m);
		assert_memory_equal(dec.data, norm, m);
	}
	buf_free(&enc);
	buf_free(&dec);
}

static void
test_decode_table(void **state)
{
	static const struct { const char *in, *out; } t[] = {
		{ "", "" },
		{ "plain\r\n", "plain\r\n" },
		{ "caf=C3=A9", "café" },
		{ "caf=c3=a9", "café" },				/* lower-case hex */
		{ "soft=\r\nbreak", "softbreak" },
		{ "soft=\nbreak", "softbreak" },			/* LF only */
		{ "soft= \t\r\nbreak", "softbreak" },			/* padding after '=' */
		{ "trailing   \r\nx", "trailing\r\nx" },		/* transport padding */
		{ "=3D=3d", "==" },
		{ "bad=G1", "bad=G1" },					/* kept as is */
		{ "bad=4", "bad=4" },
		{ "end=", "end" },
		{ "lf\nonly\n", "lf\nonly\n" },
		{ "=20\r\n", " \r\n" },
	};
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 4096);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		buf_reset(&b);
		assert_int_equal(qp_decode(t[i].in, strlen(t[i].in), &b), 0);
		if (strcmp(b.data, t[i].out) != 0)
			fail_msg("decode case %zu: got '%s', expected '%s'", i, b.data, t[i].out);
	}
	buf_free(&b);
	/* a full buffer is an error */
	buf_init(&b, 3);
	assert_int_equal(qp_encode("abcdef", 6, &b), -1);
	assert_int_equal(qp_decode("abcdef", 6, &b), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_table),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_random_roundtrip),
		cmocka_unit_test(test_decode_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
