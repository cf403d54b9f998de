/*
 * b64.c - base64 (RFC 4648 section 4 alphabet) for SASL (RFC 4954 4, RFC 5034)
 * and MIME (RFC 2045 6.8). See b64.h.
 *
 * Owns: the encoders on top of libb64's base64_encode_block (whose output
 * carries a bare '\n' every 72 characters and at the end: those are removed
 * here and MIME lines re-broken at 76 characters with CRLF), a strict decoder
 * for SASL that refuses anything that is not canonical-length, correctly
 * padded base64, and a lenient streaming decoder for MIME bodies.
 * Never: accepts a character outside the alphabet, or writes past dst.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "b64.h"

#define B64_MIME_LINE	76
#define B64_CHUNK	480	/* input bytes per libb64 call: < INT_MAX, 4/3 fits in a stack buffer */

/* Value of a base64 character, -1 outside the alphabet ('=' included). */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Copy src to dst without libb64's '\n' line breaks; returns chars copied. */
static size_t
b64_strip_nl(char *dst, const char *src, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (src[i] != '\n')
			dst[k++] = src[i];
	return k;
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
	size_t out = 0, off, k;
	int r;

	base64_init_encodestate(&st);
	for (off = 0; off < n; off += k) {
		k = n - off < B64_CHUNK ? n - off : B64_CHUNK;
		r = base64_encode_block(s + off, (int)k, tmp, &st);
		out += b64_strip_nl(dst + out, tmp, (size_t)r);
	}
	r = base64_encode_blockend(tmp, &st);
	out += b64_strip_nl(dst + out, tmp, (size_t)r);
	dst[out] = '\0';
	return out;
}

long
b64_decode_strict(const char *src, size_t n, void *dst, size_t cap)
{
	unsigned char *d = dst;
	size_t i, pad = 0, outlen;

	if (n % 4 != 0 || n / 4 > (size_t)LONG_MAX / 3)
		return -1;
	if (n > 0 && src[n - 1] == '=')
		pad = (src[n - 2] == '=') ? 2 : 1;
	outlen = n / 4 * 3 - pad;
	if (outlen > cap)
		return -1;
	/* Validate everything first: on -1 nothing was written to dst (it may
	 * be a password buffer). */
	for (i = 0; i < n - pad; i++)
		if (b64_value((unsigned char)src[i]) < 0)
			return -1;	/* bad character, or '=' not at the end */
	for (i = 0; i < n; i += 4) {
		int v[4], j, nv = (i + 4 == n) ? 4 - (int)pad : 4;
		unsigned long w;

		for (j = 0; j < nv; j++)
			v[j] = b64_value((unsigned char)src[i + j]);
		for (; j < 4; j++)
			v[j] = 0;
		w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
		    ((unsigned long)v[2] << 6) | (unsigned long)v[3];
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
	unsigned char *out = dst;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		int v;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			/* padding ends a group of 2 or 3 characters; any more '=' are skipped */
			if (d->nquad == 1)
				return -1;
			d->nquad = 0;
			d->done = true;
			continue;
		}
		if ((v = b64_value(c)) < 0)
			return -1;
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
	base64_init_encodestate(&e->st);
	e->linelen = 0;
}

size_t
b64_mime_encoded_max(size_t n)
{
	/* buffered line + new characters, plus CRLF for each full line */
	size_t chars = B64_MIME_LINE + (n / 3 + 2) * 4;

	return chars + (chars / B64_MIME_LINE + 1) * 2;
}

/* Move encoded characters into the current line, writing each full line. */
static size_t
b64_mime_put(struct b64_mime_encoder *e, const char *enc, size_t n, char *dst)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (enc[i] == '\n')
			continue;
		e->line[e->linelen++] = enc[i];
		if (e->linelen == B64_MIME_LINE) {
			memcpy(dst + k, e->line, B64_MIME_LINE);
			k += B64_MIME_LINE;
			dst[k++] = '\r';
			dst[k++] = '\n';
			e->linelen = 0;
		}
	}
	return k;
}

size_t
b64_mime_encode(struct b64_mime_encoder *e, const void *src, size_t n, char *dst)
{
	const char *s = src;
	char tmp[B64_CHUNK * 2];
	size_t out = 0, off, k;
	int r;

	for (off = 0; off < n; off += k) {
		k = n - off < B64_CHUNK ? n - off : B64_CHUNK;
		r = base64_encode_block(s + off, (int)k, tmp, &e->st);
		out += b64_mime_put(e, tmp, (size_t)r, dst + out);
	}
	return out;
}

size_t
b64_mime_encode_end(struct b64_mime_encoder *e, char *dst)
{
	char tmp[16];
	size_t out;
	int r;

	r = base64_encode_blockend(tmp, &e->st);
	out = b64_mime_put(e, tmp, (size_t)r, dst);
	if (e->linelen > 0) {
		memcpy(dst + out, e->line, e->linelen);
		out += e->linelen;
		dst[out++] = '\r';
		dst[out++] = '\n';
		e->linelen = 0;
	}
	base64_init_encodestate(&e->st);
	return out;
}
