/*
 * test_b64.c - RFC 4648 section 10 vectors, strict rejections for SASL,
 * round trips of random data of many sizes through the one-line and MIME
 * encoders (fed whole and one byte at a time), MIME line layout (CRLF lines of
 * exactly 76 characters but the last), the lenient MIME decoder, and
 * the table-driven MIME decoder (refusing or skipping junk) against a plain
 * reference decoder on random input split at random places.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "b64.h"

static const struct {
	const char *plain, *enc;
} vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	{ "\0ana\0secret", "AGFuYQBzZWNyZXQ=" },	/* SASL PLAIN; plain length given below */
};

static void
test_vectors(void **state)
{
	char enc[80], dec[64];
	size_t i, plen;
	long n;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		plen = i == 7 ? 11 : strlen(vectors[i].plain);
		assert_int_equal(b64_encoded_len(plen), strlen(vectors[i].enc));
		assert_int_equal(b64_encode(vectors[i].plain, plen, enc), strlen(vectors[i].enc));
		assert_string_equal(enc, vectors[i].enc);
		n = b64_decode_strict(vectors[i].enc, strlen(vectors[i].enc), dec, sizeof(dec));
		assert_int_equal(n, (long)plen);
		assert_memory_equal(dec, vectors[i].plain, plen);
		assert_int_equal(dec[n], '\0');
	}
	/* "" -> 0 bytes, even with cap 0 */
	assert_int_equal(b64_decode_strict("", 0, dec, 0), 0);
	assert_int_equal(b64_decode_strict("", 0, NULL, 0), 0);
	/* the whole alphabet */
	n = b64_decode_strict("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 64, dec, sizeof(dec));
	assert_int_equal(n, 48);
	assert_int_equal(b64_encode(dec, 48, enc), 64);
	assert_memory_equal(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 64);
}

static void
test_strict_rejects(void **state)
{
	static const char *bad[] = {
		"Zg", "Zg=", "Zm9", "Zm9vY", "Z===", "====", "=Zg=", "Zm=v", "Zg==Zg==",
		"Zm9v\r\n", " Zm9v", "Zm9v ", "Zm 9", "Zm9\n", "Zm9v\tAAA", "Zm9-", "Zm9_",
		"Zm9!", "Zm9\x80", "Zm8=Zm9v", "Zg=A", "*",
	};
	char dec[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (b64_decode_strict(bad[i], strlen(bad[i]), dec, sizeof(dec)) != -1)
			fail_msg("accepted [%s]", bad[i]);
	/* refused input leaves dst untouched */
	memset(dec, 'Q', sizeof(dec));
	assert_int_equal(b64_decode_strict("Zm9vYmFyZm9v!mFy", 16, dec, sizeof(dec)), -1);
	for (i = 0; i < sizeof(dec); i++)
		assert_int_equal(dec[i], 'Q');
	/* a NUL inside is a bad character, not an end */
	assert_int_equal(b64_decode_strict("Zm\0v", 4, dec, sizeof(dec)), -1);
	/* dst too small: refused; exactly enough: accepted without the NUL */
	assert_int_equal(b64_decode_strict("Zm9vYmFy", 8, dec, 5), -1);
	assert_int_equal(b64_decode_strict("Zm9vYmFy", 8, dec, 6), 6);
	assert_memory_equal(dec, "foobar", 6);
}

static void
fill_random(unsigned char *p, size_t n, unsigned *seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		*seed = *seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(*seed >> 16);
	}
}

/* Every line ends in CRLF, is 76 characters except the last (1..76), no bare CR/LF. */
static void
check_layout(const char *s, size_t n)
{
	size_t i, col = 0, lines = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < n && s[i + 1] == '\n');
			if (i + 2 < n)
				assert_int_equal(col, 76);
			else
				assert_true(col >= 1 && col <= 76);
			col = 0;
			lines++;
			i++;
			continue;
		}
		assert_true(s[i] != '\n');
		col++;
	}
	assert_int_equal(col, 0);	/* ends with CRLF (or is empty) */
	if (n == 0)
		assert_int_equal(lines, 0);
}

static size_t
mime_encode(const unsigned char *p, size_t n, size_t chunk, char *out)
{
	struct b64_mime_encoder e;
	size_t k = 0, off, c;

	b64_mime_encode_init(&e);
	for (off = 0; off < n; off += c) {
		c = chunk == 0 || n - off < chunk ? n - off : chunk;
		size_t w = b64_mime_encode(&e, p + off, c, out + k);

		assert_true(w <= b64_mime_encoded_max(c));
		k += w;
	}
	k += b64_mime_encode_end(&e, out + k);
	return k;
}

static long
mime_decode(const char *s, size_t n, size_t chunk, unsigned char *out, bool skip_junk)
{
	struct b64_mime_decoder d;
	size_t off, c;
	long k = 0, r;

	b64_mime_decode_init(&d);
	d.skip_junk = skip_junk;
	for (off = 0; off < n; off += c) {
		c = chunk == 0 || n - off < chunk ? n - off : chunk;
		r = b64_mime_decode(&d, s + off, c, out + k);
		if (r < 0)
			return -1;
		assert_true((size_t)r <= c * 3 / 4 + 3);
		k += r;
	}
	return k;
}

static void
test_round_trips(void **state)
{
	static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 53, 54, 55, 56, 57, 58, 59, 60,
	    71, 72, 73, 113, 114, 115, 170, 171, 172, 228, 1000, 4095, 4096, 65537, 200000 };
	unsigned seed = 42;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *plain, *back;
		char *enc, *mime, *mime1;
		size_t elen, mlen, mlen1;
		long dlen;

		n = sizes[i];
		plain = malloc(n + 1);
		back = malloc(n + 8);
		enc = malloc(b64_encoded_len(n) + 1);
		mime = malloc(b64_mime_encoded_max(n) + 90);
		mime1 = malloc(b64_mime_encoded_max(n) + 90);
		assert_non_null(plain); assert_non_null(back); assert_non_null(enc);
		assert_non_null(mime); assert_non_null(mime1);
		fill_random(plain, n, &seed);

		/* one line, strict */
		elen = b64_encode(plain, n, enc);
		assert_int_equal(elen, b64_encoded_len(n));
		assert_null(memchr(enc, '\n', elen));
		assert_int_equal(b64_decode_strict(enc, elen, back, n), (long)n);
		assert_memory_equal(back, plain, n);

		/* MIME: whole, then byte by byte: same text, right layout */
		mlen = mime_encode(plain, n, 0, mime);
		check_layout(mime, mlen);
		assert_int_equal(mlen, elen + (elen + 75) / 76 * 2);
		if (n <= 70000) {
			mlen1 = mime_encode(plain, n, 1, mime1);
			assert_int_equal(mlen1, mlen);
			assert_memory_equal(mime1, mime, mlen);
		}
		mlen1 = mime_encode(plain, n, 57, mime1);
		assert_int_equal(mlen1, mlen);
		assert_memory_equal(mime1, mime, mlen);

		/* MIME decode: whole and byte by byte */
		dlen = mime_decode(mime, mlen, 0, back, false);
		assert_int_equal(dlen, (long)n);
		assert_memory_equal(back, plain, n);
		if (n <= 70000) {
			dlen = mime_decode(mime, mlen, 1, back, false);
			assert_int_equal(dlen, (long)n);
			assert_memory_equal(back, plain, n);
		}
		free(plain); free(back); free(enc); free(mime); free(mime1);
	}
}

static void
test_mime_decode_lenient(void **state)
{
	static const struct {
		const char *in, *out;
		long n;
	} cases[] = {
		{ "Zm9v\r\nYmFy\r\n", "foobar", 6 },
		{ "Zm 9v\tYm\nFy", "foobar", 6 },
		{ "Zm9vYg==\r\n", "foob", 4 },
		{ "Zm9vYg", "foob", 4 },		/* missing padding */
		{ "Zm9vYmE", "fooba", 5 },
		{ "Zm8=Zm8=", "fofo", 4 },		/* concatenated encodings */
		{ "", "", 0 },
		{ "\r\n\r\n", "", 0 },
		{ "Zm9v!", NULL, -1 },
		{ "Zm9v-", NULL, -1 },
		{ "Z=", NULL, -1 },
	};
	unsigned char out[64];
	size_t i;
	long n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = mime_decode(cases[i].in, strlen(cases[i].in), 0, out, false);
		assert_int_equal(n, cases[i].n);
		if (n > 0)
			assert_memory_equal(out, cases[i].out, (size_t)n);
		n = mime_decode(cases[i].in, strlen(cases[i].in), 1, out, false);
		assert_int_equal(n, cases[i].n);
		if (n > 0)
			assert_memory_equal(out, cases[i].out, (size_t)n);
	}
}

static void
test_mime_exact_lines(void **state)
{
	unsigned char plain[57 * 3];
	char out[512];
	size_t n;

	(void)state;
	memset(plain, 0xa5, sizeof(plain));
	/* 57 bytes = exactly one 76-character line */
	n = mime_encode(plain, 57, 0, out);
	assert_int_equal(n, 78);
	check_layout(out, n);
	/* 171 bytes = exactly three lines, no empty fourth */
	n = mime_encode(plain, 171, 0, out);
	assert_int_equal(n, 3 * 78);
	check_layout(out, n);
	/* nothing in, nothing out */
	n = mime_encode(plain, 0, 0, out);
	assert_int_equal(n, 0);
}

/* Random input to both decoders: never more output than the bound; strict
 * decoding accepts only what re-encodes to a string of the same length. */
static void
test_decode_garbage(void **state)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \r\n";
	unsigned seed = 17;
	int round;

	(void)state;
	for (round = 0; round < 20000; round++) {
		char in[64], re[128];
		unsigned char out[64];
		struct b64_mime_decoder d;
		size_t n, i;
		long r;

#define RND()	(seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
		n = RND() % 40;
		for (i = 0; i < n; i++) {
			unsigned c = RND() % 20 ? (unsigned char)alpha[RND() % (sizeof(alpha) - 1)] : RND() % 256;

			in[i] = (char)c;
		}
		r = b64_decode_strict(in, n, out, sizeof(out));
		if (r >= 0) {
			assert_int_equal(n % 4, 0);
			assert_int_equal(b64_encode(out, (size_t)r, re), n);
		}
		b64_mime_decode_init(&d);
		r = b64_mime_decode(&d, in, n, out);
		assert_true(r >= -1 && r <= (long)(n * 3 / 4 + 3));
#undef RND
	}
}

/* The MIME decoder as first written (one branchy character at a time): the
 * table-driven one, with its four-at-a-time fast path, must agree with it on
 * every input, however the input is split. */
static int
ref_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* skip_junk: what mime_read kept before the decoder could skip by itself
 * (the alphabet, and '=' only where it ends a group of 2 or 3) */
static long
ref_decode(const char *s, size_t n, unsigned char *out, bool skip_junk)
{
	unsigned char q[4];
	size_t i, k = 0, nq = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			if (nq == 1 && skip_junk)
				continue;
			if (nq == 1)
				return -1;
			nq = 0;
			continue;
		}
		if ((v = ref_value(c)) < 0 && skip_junk)
			continue;
		if (v < 0)
			return -1;
		q[nq++] = (unsigned char)v;
		if (nq == 2)
			out[k++] = (unsigned char)(q[0] << 2 | q[1] >> 4);
		else if (nq == 3)
			out[k++] = (unsigned char)(q[1] << 4 | q[2] >> 2);
		else if (nq == 4) {
			out[k++] = (unsigned char)(q[2] << 6 | q[3]);
			nq = 0;
		}
	}
	return (long)k;
}

static void
test_mime_decode_matches_reference(void **state)
{
	/* mostly alphabet, with line breaks, blanks, padding and a few bad bytes */
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned seed = 4242;
	int round;

	(void)state;
	for (round = 0; round < 20000; round++) {
		char in[200];
		unsigned char want[200], got[200];
		size_t n, i, chunk;
		long wn, gn;

#define RND()	(seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
		n = RND() % sizeof(in);
		for (i = 0; i < n; i++) {
			unsigned r = RND() % 100;

			in[i] = r < 85 ? alpha[RND() % 64] : r < 92 ? "\r\n \t"[RND() % 4] :
			    r < 98 ? '=' : (char)(RND() % 256);
		}
		chunk = RND() % 9;	/* 0: whole */
#undef RND
		wn = ref_decode(in, n, want, false);
		gn = mime_decode(in, n, chunk, got, false);
		if (gn != wn)
			fail_msg("round %d (chunk %zu): %ld bytes, reference %ld", round, chunk, gn, wn);
		if (wn > 0)
			assert_memory_equal(got, want, (size_t)wn);
		/* skipping junk: never -1, same bytes as the reference filter */
		wn = ref_decode(in, n, want, true);
		gn = mime_decode(in, n, chunk, got, true);
		assert_true(wn >= 0);
		if (gn != wn)
			fail_msg("round %d (chunk %zu, skip_junk): %ld bytes, reference %ld", round,
			    chunk, gn, wn);
		assert_memory_equal(got, want, (size_t)wn);
	}
}

/* The encoder keeps input shorter than a line: any split of the input gives
 * the same text as one call, and each call's output fits its bound. */
static void
test_mime_encode_random_splits(void **state)
{
	unsigned char plain[3000];
	char whole[4200], split[4200];
	unsigned seed = 99;
	size_t n, wl, sl, off, c;
	int round;

	(void)state;
	fill_random(plain, sizeof(plain), &seed);
	for (round = 0; round < 300; round++) {
		struct b64_mime_encoder e;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 8) % sizeof(plain);
		wl = mime_encode(plain, n, 0, whole);
		check_layout(whole, wl);
		b64_mime_encode_init(&e);
		for (off = 0, sl = 0; off < n; off += c) {
			seed = seed * 1103515245u + 12345u;
			c = (seed >> 8) % 130;
			if (c > n - off)
				c = n - off;
			size_t w = b64_mime_encode(&e, plain + off, c, split + sl);

			assert_true(w <= b64_mime_encoded_max(c));
			assert_int_equal(w % 78, 0);	/* whole lines only */
			sl += w;
		}
		sl += b64_mime_encode_end(&e, split + sl);
		assert_int_equal(sl, wl);
		assert_memory_equal(split, whole, wl);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_strict_rejects),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_mime_decode_lenient),
		cmocka_unit_test(test_mime_exact_lines),
		cmocka_unit_test(test_decode_garbage),
		cmocka_unit_test(test_mime_decode_matches_reference),
		cmocka_unit_test(test_mime_encode_random_splits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
