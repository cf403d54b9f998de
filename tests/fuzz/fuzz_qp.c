/*
 * fuzz_qp.c - quoted-printable (mailcli/qp.c, RFC 2045 6.7): the lenient
 * decoder on arbitrary input, and the encoder.
 *
 * Oracles: decoding never produces more bytes than it was given; the encoder
 * writes lines of at most QP_LINE_MAX characters of printable ASCII ending
 * in CRLF; decode(encode(x)) is x with its line breaks made CRLF.
 */
#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "fuzz_common.h"
#include "qp.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct buf dec, enc, back, want;
	size_t i, linelen;

	buf_init(&dec, size + 16);
	buf_init(&enc, size * 4 + 64);
	buf_init(&back, size * 2 + 16);
	buf_init(&want, size * 2 + 16);

	FUZZ_CHECK(qp_decode(p, size, &dec) == 0);
	FUZZ_CHECK(dec.len <= size);

	FUZZ_CHECK(qp_encode(p, size, &enc) == 0);
	linelen = 0;
	for (i = 0; i < enc.len; i++) {
		unsigned char c = (unsigned char)enc.data[i];
		if (c == '\r') {
			FUZZ_CHECK(i + 1 < enc.len && enc.data[i + 1] == '\n');
			FUZZ_CHECK(linelen <= QP_LINE_MAX);
			/* no whitespace before a line break (RFC 2045 6.7 (3)) */
			FUZZ_CHECK(linelen == 0 || (enc.data[i - 1] != ' ' && enc.data[i - 1] != '\t'));
			linelen = 0;
			i++;
			continue;
		}
		FUZZ_CHECK(c == ' ' || c == '\t' || (c >= 33 && c <= 126));
		linelen++;
	}
	FUZZ_CHECK(linelen <= QP_LINE_MAX);

	FUZZ_CHECK(qp_decode(enc.data ? enc.data : "", enc.len, &back) == 0);
	for (i = 0; i < size; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			FUZZ_CHECK(buf_append(&want, "\r\n", 2) == 0);
		else
			FUZZ_CHECK(buf_append(&want, p + i, 1) == 0);
	}
	FUZZ_CHECK(back.len == want.len);
	FUZZ_CHECK(want.len == 0 || memcmp(back.data, want.data, want.len) == 0);

	buf_free(&dec);
	buf_free(&enc);
	buf_free(&back);
	buf_free(&want);
	return 0;
}
