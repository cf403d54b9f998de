/*
 * fuzz_b64.c - base64 (common/b64.c): the strict SASL decoder and the
 * lenient streaming MIME decoder on arbitrary input, and both encoders.
 *
 * Oracles: the strict decoder accepts only whole 4-character groups of the
 * alphabet and never writes past cap; what it accepts re-encodes to text that
 * decodes to the same bytes; the MIME decoder gives the same bytes whether the
 * input comes whole or in chunks (chunk size from byte 0); the MIME encoder
 * writes CRLF lines of at most 76 characters that decode back to the input;
 * b64_encode output decodes strictly back to the input.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "fuzz_common.h"

static bool
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '+' || c == '/' || c == '=';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk = 1 + fuzz_take(&data, &size);
	const char *src = (const char *)data;
	size_t cap = size + 8, i;
	unsigned char *dst = malloc(cap), *dst2 = malloc(cap), *whole = malloc(size + 8);
	char *enc = malloc(b64_encoded_len(size) + 1);
	char *menc = malloc(b64_mime_encoded_max(size) + 90);
	long n, m;

	FUZZ_CHECK(dst && dst2 && whole && enc && menc);

	/* strict */
	n = b64_decode_strict(src, size, dst, cap);
	if (n >= 0) {
		FUZZ_CHECK(size % 4 == 0);
		FUZZ_CHECK((size_t)n <= size / 4 * 3);
		for (i = 0; i < size; i++)
			FUZZ_CHECK(b64_char(data[i]));
		size_t el = b64_encode(dst, (size_t)n, enc);
		FUZZ_CHECK(el == b64_encoded_len((size_t)n) && enc[el] == '\0');
		m = b64_decode_strict(enc, el, dst2, cap);
		FUZZ_CHECK(m == n && memcmp(dst, dst2, (size_t)n) == 0);
	}
	/* a destination one byte short must be refused, never overrun */
	if (n > 0) {
		unsigned char *tight = malloc((size_t)n - 1 ? (size_t)n - 1 : 1);
		FUZZ_CHECK(tight != NULL);
		FUZZ_CHECK(b64_decode_strict(src, size, tight, (size_t)n - 1) == -1);
		free(tight);
	}

	/* MIME decoder: whole vs chunked */
	struct b64_mime_decoder d;
	long wl, cl = 0;
	bool bad = false;
	b64_mime_decode_init(&d);
	wl = b64_mime_decode(&d, src, size, whole);
	b64_mime_decode_init(&d);
	for (i = 0; i < size; i += chunk) {
		size_t k = size - i < chunk ? size - i : chunk;
		long r = b64_mime_decode(&d, src + i, k, dst2 + cl);
		if (r < 0) {
			bad = true;
			break;
		}
		cl += r;
		FUZZ_CHECK((size_t)cl <= size);
	}
	if (wl < 0)
		FUZZ_CHECK(bad);
	else
		FUZZ_CHECK(!bad && cl == wl && memcmp(whole, dst2, (size_t)wl) == 0);

	/* encoders round trip the raw input */
	size_t el = b64_encode(data, size, enc);
	FUZZ_CHECK(b64_decode_strict(enc, el, dst, cap) == (long)size && memcmp(dst, data, size) == 0);

	struct b64_mime_encoder e;
	size_t ml;
	b64_mime_encode_init(&e);
	ml = b64_mime_encode(&e, data, size / 2, menc);
	ml += b64_mime_encode(&e, data + size / 2, size - size / 2, menc + ml);
	ml += b64_mime_encode_end(&e, menc + ml);
	FUZZ_CHECK(ml <= b64_mime_encoded_max(size) + 90);
	size_t linelen = 0;
	for (i = 0; i < ml; i++) {
		if (menc[i] == '\r') {
			FUZZ_CHECK(i + 1 < ml && menc[i + 1] == '\n');
			FUZZ_CHECK(linelen <= 76);
			linelen = 0;
			i++;
		} else {
			FUZZ_CHECK(b64_char((unsigned char)menc[i]));
			linelen++;
		}
	}
	FUZZ_CHECK(linelen <= 76);
	b64_mime_decode_init(&d);
	wl = b64_mime_decode(&d, menc, ml, whole);
	FUZZ_CHECK(wl == (long)size && memcmp(whole, data, size) == 0);

	free(dst);
	free(dst2);
	free(whole);
	free(enc);
	free(menc);
	return 0;
}
