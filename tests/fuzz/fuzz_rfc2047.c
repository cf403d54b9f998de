/*
 * fuzz_rfc2047.c - MIME encoded words (mailcli/rfc2047.c, RFC 2047) and the
 * charset conversion the MIME reader shares.
 *
 * Input: a header value. Oracles: rfc2047_decode always yields well-formed
 * UTF-8 (unknown charsets and bad bytes degrade, never fail); rfc2047_to_utf8
 * in a charset named by the first line likewise; for input that is UTF-8,
 * rfc2047_encode writes words of at most RFC2047_WORD_MAX characters (the
 * first at most first_max) that decode back to exactly the input.
 */
#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "fuzz_common.h"
#include "rfc2047.h"

static void
check_words(const struct buf *enc, size_t first_max)
{
	size_t i = 0, start = 0, nword = 0;

	for (i = 0; i <= enc->len; i++) {
		if (i == enc->len || enc->data[i] == ' ') {
			size_t wl = i - start;
			FUZZ_CHECK(wl > 0);
			FUZZ_CHECK(wl <= (nword == 0 ? first_max : RFC2047_WORD_MAX));
			FUZZ_CHECK(memcmp(enc->data + start, "=?", 2) == 0);
			FUZZ_CHECK(memcmp(enc->data + i - 2, "?=", 2) == 0);
			nword++;
			start = i + 1;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct buf out, enc, back;
	const char *nl;
	char charset[64];

	buf_init(&out, size * 4 + 64);
	FUZZ_CHECK(rfc2047_decode(p, size, &out) == 0);
	FUZZ_CHECK(rfc2047_is_utf8(out.data ? out.data : "", out.len));
	buf_free(&out);

	/* "charset\nbytes" */
	if ((nl = memchr(p, '\n', size)) != NULL && (size_t)(nl - p) < sizeof(charset)) {
		memcpy(charset, p, (size_t)(nl - p));
		charset[nl - p] = '\0';
		buf_init(&out, size * 4 + 64);
		FUZZ_CHECK(rfc2047_to_utf8(charset, nl + 1, size - (size_t)(nl - p) - 1, &out) == 0);
		FUZZ_CHECK(rfc2047_is_utf8(out.data ? out.data : "", out.len));
		buf_free(&out);
	}

	if (size > 0 && rfc2047_is_utf8(p, size)) {
		/* the smallest first word that holds one 4-byte character in Q */
		size_t first_max = 24 + size % 52;
		int nw;
		buf_init(&enc, size * 12 + 256);
		buf_init(&back, size + 16);
		nw = rfc2047_encode(p, size, first_max, &enc);
		FUZZ_CHECK(nw >= 1);
		check_words(&enc, first_max);
		FUZZ_CHECK(rfc2047_decode(enc.data, enc.len, &back) == 0);
		FUZZ_CHECK(back.len == size && memcmp(back.data, p, size) == 0);
		buf_free(&enc);
		buf_free(&back);
	}
	return 0;
}
