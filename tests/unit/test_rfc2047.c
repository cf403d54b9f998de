/*
 * test_rfc2047.c - encoded words: B/Q choice, split points on multi-byte
 * characters for every word budget (no word over 75 characters, no word
 * ending inside a character), long Portuguese subjects round-tripping, and
 * the decoder on a table of real-world forms (adjacent words, characters
 * split across words, unknown and lying charsets, malformed words).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rfc2047.h"

static const char *
decode(const char *s, struct buf *b)
{
	buf_reset(b);
	assert_int_equal(rfc2047_decode(s, strlen(s), b), 0);
	return b->data;
}

static void
test_is_utf8(void **state)
{
	static const struct { const char *s; bool ok; } t[] = {
		{ "", true }, { "ascii", true }, { "Você", true }, { "€", true },
		{ "\xf0\x9f\x8d\xab", true },		/* U+1F36B chocolate bar */
		{ "\xc3", false }, { "\xc3\x28", false }, { "\xe2\x82", false },
		{ "\xc0\xaf", false },			/* overlong '/' */
		{ "\xed\xa0\x80", false },		/* surrogate */
		{ "\xf4\x90\x80\x80", false },		/* > U+10FFFF */
		{ "\xff", false }, { "caf\xe9", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_true(rfc2047_is_utf8(t[i].s, strlen(t[i].s)) == t[i].ok);
}

static void
test_needs_encoding(void **state)
{
	static const struct { const char *s; bool need; } t[] = {
		{ "hello world", false }, { "tab\there", false }, { "a = b ? c", false },
		{ "Você", true }, { "a=?b", true }, { "bell\x07", true }, { "del\x7f", true },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_true(rfc2047_needs_encoding(t[i].s, strlen(t[i].s)) == t[i].need);
}

static void
test_encode_exact(void **state)
{
	static const struct { const char *in; size_t first; const char *out; } t[] = {
		{ "Você gosta de chocolate?", 67, "=?utf-8?Q?Voc=C3=AA_gosta_de_chocolate=3F?=" },
		{ "João Araújo", 70, "=?utf-8?B?Sm/Do28gQXJhw7pqbw==?=" },
		{ "a_b=c", 70, "=?utf-8?B?YV9iPWM=?=" },		/* B: 8 < Q: 9 */
		{ "ab=cd_efgh", 70, "=?utf-8?Q?ab=3Dcd=5Fefgh?=" },
		{ "", 70, "=?utf-8?Q?\?=" },
		/* all non-ASCII: B is shorter */
		{ "ããããã", 70, "=?utf-8?B?w6PDo8Ojw6PDow==?=" },
	};
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 4096);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		buf_reset(&b);
		assert_int_equal(rfc2047_encode(t[i].in, strlen(t[i].in), t[i].first, &b), 1);
		assert_string_equal(b.data, t[i].out);
	}
	/* invalid UTF-8 and a budget too small for any character are refused */
	assert_int_equal(rfc2047_encode("caf\xe9", 4, 70, &b), -1);
	assert_int_equal(rfc2047_encode("abc", 3, 20, &b), -1);
	buf_free(&b);
}

/*
 * Encode, then check every word: at most its budget, well formed, its own
 * bytes valid UTF-8 (split on character boundaries), and all words decode
 * back to the input.
 */
static void
check_roundtrip(const char *in, size_t first_max)
{
	struct buf enc, dec, word;
	char *save, *w, *copy;
	int nwords, seen = 0;

	buf_init(&enc, 1 << 20);
	buf_init(&dec, 1 << 20);
	buf_init(&word, 1 << 20);
	nwords = rfc2047_encode(in, strlen(in), first_max, &enc);
	assert_true(nwords >= 1);
	copy = strdup(enc.data);
	for (w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		size_t len = strlen(w);
		assert_true(len <= (seen == 0 ? first_max : RFC2047_WORD_MAX));
		assert_true(len <= RFC2047_WORD_MAX);
		assert_memory_equal(w, "=?utf-8?", 8);
		assert_memory_equal(w + len - 2, "?=", 2);
		/* each word alone decodes to valid UTF-8: no split character */
		buf_reset(&word);
		assert_int_equal(rfc2047_decode(w, len, &word), 0);
		assert_true(rfc2047_is_utf8(word.data, word.len));
		assert_null(strstr(word.data, "\xef\xbf\xbd"));	/* no U+FFFD */
		seen++;
	}
	assert_int_equal(seen, nwords);
	assert_int_equal(rfc2047_decode(enc.data, enc.len, &dec), 0);
	assert_string_equal(dec.data, in);
	free(copy);
	buf_free(&enc);
	buf_free(&dec);
	buf_free(&word);
}

static void
test_split_points(void **state)
{
	static const char *texts[] = {
		"çççççççççççççççççççççççççççççççççççççççççççççççççççççç",	/* 2-byte */
		"€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€",	/* 3-byte */
		"\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab"
		"\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab"
		"\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab\xf0\x9f\x8d\xab",
		"aç€\xf0\x9f\x8d\xab aç€\xf0\x9f\x8d\xab aç€\xf0\x9f\x8d\xab aç€\xf0\x9f\x8d\xab aç€ x",
		"Ação é ótima, já pôde ver? Não há razão para ênfase: à toa, é só café com pão.",
	};
	size_t i, first;

	(void)state;
	/* every first-word budget from the smallest allowed to the largest */
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		for (first = 24; first <= RFC2047_WORD_MAX; first++)
			check_roundtrip(texts[i], first);
}

static void
test_long_subjects(void **state)
{
	static const char *subjects[] = {
		"Relatório das atividades do laboratório de redes de computadores — versão "
		"revisada após a reunião de orientação com o professor responsável pela disciplina",
		"Você gosta de chocolate? Então venha à confraternização de fim de ano do "
		"departamento, na sexta-feira às dezenove horas, no salão do térreo. Traga "
		"sua caneca! Haverá pão de queijo, brigadeiro, café e muita conversa.",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		check_roundtrip(subjects[i], 76 - 9 - 1);	/* after "Subject: " */
		check_roundtrip(subjects[i], RFC2047_WORD_MAX);
	}
}

static void
test_decode_table(void **state)
{
	static const struct { const char *in, *out; } t[] = {
		{ "plain text", "plain text" },
		{ "=?utf-8?Q?Voc=C3=AA?=", "Você" },
		{ "=?UTF-8?q?Voc=c3=aa_gosta?=", "Você gosta" },
		{ "=?ISO-8859-1?Q?Jo=E3o?= Silva", "João Silva" },
		{ "=?utf-8?B?Sm/Do28=?=", "João" },
		{ "=?utf-8?b?Sm/Do28?=", "João" },				/* no padding */
		{ "=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab" },			/* RFC 2047 6.2 */
		{ "=?utf-8?Q?a?=\r\n =?utf-8?Q?b?=", "ab" },
		{ "=?utf-8?Q?a?= x =?utf-8?Q?b?=", "a x b" },
		{ "=?utf-8?Q?=C3?= =?utf-8?Q?=A9?=", "é" },		/* split character */
		{ "=?utf-8*pt-br?Q?ol=C3=A1?=", "olá" },			/* RFC 2231 language */
		{ "=?x-unknown?Q?caf=C3=A9?=", "café" },			/* unknown, UTF-8 bytes */
		{ "=?bogus?Q?caf=E9?=", "café" },				/* unknown, Latin-1 bytes */
		{ "=?utf-8?Q?caf=E9?=", "café" },				/* lying charset */
		{ "=?windows-1252?Q?=93hi=94?=", "“hi”" },
		{ "=?koi8-r?B?8NLJ18XU?=", "Привет" },
		{ "=?gb2312?B?xOO6ww==?=", "你好" },
		{ "=?iso-8859-1?q?Caf=E9?= =?utf-8?q?_=E2=82=AC?=", "Café €" },
		{ "=?utf-8?X?abc?=", "=?utf-8?X?abc?=" },			/* bad encoding */
		{ "=?utf-8?Q?abc", "=?utf-8?Q?abc" },				/* unterminated */
		{ "=?utf-8?Q?a b?=", "=?utf-8?Q?a b?=" },			/* space inside */
		{ "=??Q?abc?=", "=??Q?abc?=" },
		{ "caf\xe9 raw", "café raw" },					/* raw Latin-1 */
		{ "a =?utf-8?Q?=?= b", "a = b" },
	};
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 4096);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *got = decode(t[i].in, &b);
		if (strcmp(got, t[i].out) != 0)
			fail_msg("case %zu: '%s' -> '%s', expected '%s'", i, t[i].in, got, t[i].out);
	}
	buf_free(&b);
}

static void
test_to_utf8(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(rfc2047_to_utf8("utf-8", "ok \xc3\xa9 bad \xe9", 12, &b), 0);
	assert_string_equal(b.data, "ok é bad é");
	buf_reset(&b);
	assert_int_equal(rfc2047_to_utf8("iso-8859-15", "\xa4", 1, &b), 0);
	assert_string_equal(b.data, "€");
	buf_reset(&b);
	/* invalid sequence in a real multi-byte charset: replacement, then go on */
	assert_int_equal(rfc2047_to_utf8("shift_jis", "a\x82\x01z", 4, &b), 0);
	assert_true(rfc2047_is_utf8(b.data, b.len));
	assert_int_equal(b.data[0], 'a');
	assert_int_equal(b.data[b.len - 1], 'z');
	buf_reset(&b);
	assert_int_equal(rfc2047_to_utf8(NULL, "\x81", 1, &b), 0);	/* undefined in 1252 */
	assert_string_equal(b.data, "\xef\xbf\xbd");
	/* a full buffer is an error, not a crash */
	buf_free(&b);
	buf_init(&b, 4);
	assert_int_equal(rfc2047_to_utf8("utf-8", "0123456789", 10, &b), -1);
	buf_free(&b);
}

/* Hostile input: every prefix of every table entry, and random bytes. */
static void
test_decode_hostile(void **state)
{
	static const char *seeds[] = {
		"=?utf-8?B?Sm/Do28=?= =?iso-8859-1?Q?Jo=E3o?=", "=?=?=?=?=?", "=?utf-8?Q?=", "=?a?b?c?=?=",
	};
	struct buf b;
	char r[256];
	size_t i, n;
	unsigned seed = 7;

	(void)state;
	buf_init(&b, 1 << 16);
	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		for (n = 0; n <= strlen(seeds[i]); n++) {
			buf_reset(&b);
			assert_int_equal(rfc2047_decode(seeds[i], n, &b), 0);
			assert_true(rfc2047_is_utf8(b.data, b.len));
		}
	for (i = 0; i < 2000; i++) {
		for (n = 0; n < sizeof(r); n++) {
			seed = seed * 1103515245 + 12345;
			r[n] = "=?QqBb_ utf-8\xc3\xa9\xff"[(seed >> 16) % 17];
		}
		buf_reset(&b);
		assert_int_equal(rfc2047_decode(r, sizeof(r), &b), 0);
		assert_true(rfc2047_is_utf8(b.data, b.len));
	}
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_utf8),
		cmocka_unit_test(test_needs_encoding),
		cmocka_unit_test(test_encode_exact),
		cmocka_unit_test(test_split_points),
		cmocka_unit_test(test_long_subjects),
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_to_utf8),
		cmocka_unit_test(test_decode_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
