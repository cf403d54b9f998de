/*
 * b64.c - base64 (RFC 4648 section 4 alphabet) for SASL (RFC 4954 4, RFC 5034)
 * and MIME (RFC 2045 6.8). See b64.h.
 *
 * Owns: the encoders on top of libb64's base64_encode_block (whose output
 * carries a bare '\n' every 72 characters and at the end: those are removed
 * here), a strict decoder for SASL that refuses anything that is not
 * canonical-length, correctly padded base64, and a lenient streaming decoder
 * for MIME bodies.
 * The MIME encoder gives libb64 one output line at a time: 57 input bytes from
 * a fresh libb64 state are exactly 76 characters, so every line starts at a
 * known place, libb64 writes it straight into dst and only the characters
 * after its '\n' are moved, as one run (input shorter than a line waits in
 * the encoder). The decoders look characters up in one 256-entry table; the
 * MIME decoder takes four alphabet characters at a time when it can.
 * Never: accepts a character outside the alphabet, or writes past dst.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "b64.h"

#define B64_MIME_LINE	76			/* characters per MIME line (RFC 2045 6.8) */
#define B64_CHUNK	480	/* input bytes per libb64 call: < INT_MAX, 4/3 fits in a stack buffer */

_Static_assert(B64_LINE_IN / 3 * 4 == B64_MIME_LINE, "57 bytes make one 76-character line");

/* b64_tab values besides 0..63: */
#define XX	255	/* outside the alphabet */
#define WS	64	/* white space, skipped by the MIME decoder */
#define PD	65	/* '=' */

static const unsigned char b64_tab[256] = {
	XX, XX, XX, XX, XX, XX, XX, XX, XX, WS, WS, XX, XX, WS, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	WS, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX, XX, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, PD, XX, XX,
	XX, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, XX,
	XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};

/* Remove libb64's '\n' line breaks from p[0..n) in place, moving the runs
 * between them; returns the new length. */
static size_t
b64_strip_nl(char *p, size_t n)
{
	char *end = p + n, *w, *r, *nl;

	if ((w = memchr(p, '\n', n)) == NULL)
		return n;
	for (r = w + 1; r < end; r = nl + 1) {
		if ((nl = memchr(r, '\n', (size_t)(end - r))) == NULL)
			nl = end;
		memmove(w, r, (size_t)(nl - r));
		w += nl - r;
	}
	return (size_t)(w - p);
}

size_t
b64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

size_t
b64_encode(const void *src, size_t n, char *dst)
{
	const char *s = src;
	char tmp[B64_CHUNK * 2];
	base64_encodestate st;
	size_t out = 0, off, k, m;

	base64_init_encodestate(&st);
	for (off = 0; off < n; off += k) {
		k = n - off < B64_CHUNK ? n - off : B64_CHUNK;
		m = b64_strip_nl(tmp, (size_t)base64_encode_block(s + off, (int)k, tmp, &st));
		memcpy(dst + out, tmp, m);
		out += m;
	}
	m = b64_strip_nl(tmp, (size_t)base64_encode_blockend(tmp, &st));
	memcpy(dst + out, tmp, m);
	out += m;
	dst[out] = '\0';
	return out;
}

long
b64_decode_strict(const char *src, size_t n, void *dst, size_t cap)
{
	const unsigned char *s = (const unsigned char *)src;
	unsigned char *d = dst;
	size_t i, pad = 0, outlen;

	if (n % 4 != 0 || n / 4 > (size_t)LONG_MAX / 3)
		return -1;
	if (n > 0 && s[n - 1] == '=')
		pad = (s[n - 2] == '=') ? 2 : 1;
	outlen = n / 4 * 3 - pad;
	if (outlen > cap)
		return -1;
	/* Validate everything first: on -1 nothing was written to dst (it may
	 * be a password buffer). */
	for (i = 0; i < n - pad; i++)
		if (b64_tab[s[i]] > 63)
			return -1;	/* bad character, white space, or '=' not at the end */
	for (i = 0; i < n; i += 4) {
		size_t nv = (i + 4 == n) ? 4 - pad : 4;
		uint32_t w;

		w = (uint32_t)b64_tab[s[i]] << 18 | (uint32_t)b64_tab[s[i + 1]] << 12;
		if (nv > 2)
			w |= (uint32_t)b64_tab[s[i + 2]] << 6;
		if (nv > 3)
			w |= b64_tab[s[i + 3]];
		*d++ = (unsigned char)(w >> 16);
		if (nv > 2)
			*d++ = (unsigned char)(w >> 8);
		if (nv > 3)
			*d++ = (unsigned char)w;
	}
	if (outlen < cap)
		((unsigned char *)dst)[outlen] = '\0';
	return (long)outlen;
}

void
b64_mime_decode_init(struct b64_mime_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

long
b64_mime_decode(struct b64_mime_decoder *d, const char *src, size_t n, void *dst)
{
	const unsigned char *s = (const unsigned char *)src;
	unsigned char *out = dst;
	size_t i = 0, k = 0;

	while (i < n) {
		unsigned v;

		/* fast path: a whole group of four alphabet characters */
		if (d->nquad == 0 && n - i >= 4) {
			unsigned a = b64_tab[s[i]], b = b64_tab[s[i + 1]],
			    c = b64_tab[s[i + 2]], e = b64_tab[s[i + 3]];

			if ((a | b | c | e) < 64) {
				uint32_t w = a << 18 | b << 12 | c << 6 | e;

				out[k] = (unsigned char)(w >> 16);
				out[k + 1] = (unsigned char)(w >> 8);
				out[k + 2] = (unsigned char)w;
				k += 3;
				i += 4;
				d->done = false;
				continue;
			}
		}
		v = b64_tab[s[i++]];
		if (v == WS)
			continue;
		if (v == PD) {
			/* padding ends a group of 2 or 3 characters; any more '=' are skipped */
			if (d->nquad == 1) {
				if (d->skip_junk)
					continue;
				return -1;
			}
			d->nquad = 0;
			d->done = true;
			continue;
		}
		if (v == XX) {
			if (d->skip_junk)
				continue;
			return -1;
		}
		/* data after padding: a concatenated second encoding; decode it */
		d->done = false;
		d->quad[d->nquad++] = (unsigned char)v;
		/* each byte is written as soon as its bits are known */
		switch (d->nquad) {
		case 2:
			out[k++] = (unsigned char)((d->quad[0] << 2) | (d->quad[1] >> 4));
			break;
		case 3:
			out[k++] = (unsigned char)((d->quad[1] << 4) | (d->quad[2] >> 2));
			break;
		case 4:
			out[k++] = (unsigned char)((d->quad[2] << 6) | d->quad[3]);
			d->nquad = 0;
			break;
		}
	}
	return (long)k;
}

void
b64_mime_encode_init(struct b64_mime_encoder *e)
{
	e->npend = 0;
}

size_t
b64_mime_encoded_max(size_t n)
{
	/* every line the waiting bytes and n can fill, one more for good measure,
	 * each 76 characters and CRLF */
	return ((n + B64_LINE_IN - 1) / B64_LINE_IN + 1) * (B64_MIME_LINE + 2);
}

/* One full line from exactly B64_LINE_IN bytes: libb64 writes the 76
 * characters (and its own '\n') into dst, the '\n' is squeezed out, CRLF
 * ends the line. dst needs B64_MIME_LINE + 2 bytes. */
static void
b64_mime_line(const char *src, char *dst)
{
	base64_encodestate st;
	int r;

	base64_init_encodestate(&st);
	/* 57 bytes are 19 whole groups: nothing is left in st, and what
	 * remains once libb64's breaks are out is the 76 characters. From a
	 * fresh state libb64 breaks after 72: move the last 4 over it. */
	r = base64_encode_block(src, B64_LINE_IN, dst, &st);
	if (r == B64_MIME_LINE + 1 && dst[72] == '\n')
		memmove(dst + 72, dst + 73, B64_MIME_LINE - 72);
	else
		(void)b64_strip_nl(dst, (size_t)r);
	dst[B64_MIME_LINE] = '\r';
	dst[B64_MIME_LINE + 1] = '\n';
}

size_t
b64_mime_encode(struct b64_mime_encoder *e, const void *src, size_t n, char *dst)
{
	const char *s = src;
	size_t out = 0, k;

	if (e->npend > 0) {
		k = B64_LINE_IN - e->npend;
		if (n < k) {
			memcpy(e->pend + e->npend, s, n);
			e->npend += n;
			return 0;
		}
		memcpy(e->pend + e->npend, s, k);
		b64_mime_line(e->pend, dst);
		out += B64_MIME_LINE + 2;
		e->npend = 0;
		s += k;
		n -= k;
	}
	for (; n >= B64_LINE_IN; s += B64_LINE_IN, n -= B64_LINE_IN) {
		b64_mime_line(s, dst + out);
		out += B64_MIME_LINE + 2;
	}
	memcpy(e->pend, s, n);
	e->npend = n;
	return out;
}

size_t
b64_mime_encode_end(struct b64_mime_encoder *e, char *dst)
{
	base64_encodestate st;
	size_t m;

	if (e->npend == 0)
		return 0;
	/* the last line: fewer than 57 bytes, 76 characters at most, padded */
	base64_init_encodestate(&st);
	m = (size_t)base64_encode_block(e->pend, (int)e->npend, dst, &st);
	m += (size_t)base64_encode_blockend(dst + m, &st);
	m = b64_strip_nl(dst, m);
	dst[m++] = '\r';
	dst[m++] = '\n';
	e->npend = 0;
	return m;
}
