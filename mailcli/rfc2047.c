/*
 * rfc2047.c - encoded words (RFC 2047 2, 4, 5, 6.2) and charset conversion
 * to UTF-8 for everything mailcli reads.
 *
 * Owns: choosing B or Q, splitting UTF-8 text into encoded words of at most
 * 75 characters on character boundaries, decoding them (joining adjacent
 * words before converting, so a character split across words by a careless
 * encoder still decodes), and the lenient charset conversion (iconv, with
 * Windows-1252 as the fallback for unknown charsets and invalid bytes).
 * Never: splits a UTF-8 sequence, fails on an unknown charset, emits
 * invalid UTF-8 from rfc2047_decode / rfc2047_to_utf8.
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "qp.h"
#include "rfc2047.h"
#include "utf8.h"

#define WORD_OVERHEAD	12	/* "=?utf-8?Q?" + "?=" */

static const char hexdigits[] = "0123456789ABCDEF";
static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


bool
rfc2047_is_utf8(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, l;

	while (i < n) {
		if ((l = utf8_seqlen(u + i, n - i, NULL)) == 0)
			return false;
		i += l;
	}
	return true;
}

bool
rfc2047_needs_encoding(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x7f || (c < 0x20 && c != '\t'))
			return true;
		if (c == '=' && i + 1 < n && p[i + 1] == '?')
			return true;
	}
	return false;
}

/* RFC 2047 5(3): the characters a Q word may carry as they are, in any context. */
static bool
q_literal(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '!' || c == '*' || c == '+' || c == '-' || c == '/' || c == ' ';
}

static size_t
q_len(unsigned char c)
{
	return q_literal(c) ? 1 : 3;
}

static int
q_append(struct buf *out, const unsigned char *p, size_t n)
{
	size_t i;
	char e[3];

	for (i = 0; i < n; i++) {
		if (p[i] == ' ') {
			if (buf_append(out, "_", 1) == -1)
				return -1;
		} else if (q_literal(p[i])) {
			if (buf_append(out, p + i, 1) == -1)
				return -1;
		} else {
			e[0] = '=';
			e[1] = hexdigits[p[i] >> 4];
			e[2] = hexdigits[p[i] & 15];
			if (buf_append(out, e, 3) == -1)
				return -1;
		}
	}
	return 0;
}

static int
b_append(struct buf *out, const unsigned char *p, size_t n)
{
	size_t i;
	char q[4];

	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = b64chars[(v >> 18) & 63];
		q[1] = b64chars[(v >> 12) & 63];
		q[2] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? b64chars[v & 63] : '=';
		if (buf_append(out, q, 4) == -1)
			return -1;
	}
	return 0;
}

static int
emit_word(struct buf *out, bool qenc, const unsigned char *p, size_t n, bool first)
{
	if (!first && buf_append(out, " ", 1) == -1)
		return -1;
	if (buf_puts(out, qenc ? "=?utf-8?Q?" : "=?utf-8?B?") == -1)
		return -1;
	if ((qenc ? q_append(out, p, n) : b_append(out, p, n)) == -1)
		return -1;
	return buf_append(out, "?=", 2);
}

int
rfc2047_encode(const char *text, size_t n, size_t first_max, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t qlen = 0, blen, i, start, wordlen, max, l, k, cl;
	bool qenc;
	int words = 0;

	if (!rfc2047_is_utf8(text, n))
		return -1;
	for (i = 0; i < n; i++)
		qlen += q_len(p[i]);
	blen = (n + 2) / 3 * 4;
	qenc = qlen <= blen;
	if (first_max > RFC2047_WORD_MAX)
		first_max = RFC2047_WORD_MAX;
	/* A word must hold at least one character: 4 bytes = 12 (Q) or 8 (B). */
	if (first_max < WORD_OVERHEAD + 12)
		return -1;
	if (n == 0)
		return emit_word(out, qenc, p, 0, true) == -1 ? -1 : 1;

	start = 0;
	i = 0;
	wordlen = 0;	/* Q: encoded chars so far; B: bytes so far */
	max = first_max - WORD_OVERHEAD;
	while (i < n) {
		l = utf8_seqlen(p + i, n - i, NULL);
		/* cl: what the character adds (Q: encoded chars; B: bytes) */
		if (qenc)
			for (cl = 0, k = 0; k < l; k++)
				cl += q_len(p[i + k]);
		else
			cl = l;
		/* the word would be too long with it: end the word before it */
		if ((qenc ? wordlen + cl : (wordlen + cl + 2) / 3 * 4) > max && i > start) {
			if (emit_word(out, qenc, p + start, i - start, words == 0) == -1)
				return -1;
			words++;
			start = i;
			wordlen = 0;
			max = RFC2047_WORD_MAX - WORD_OVERHEAD;
		}
		wordlen += cl;
		i += l;
	}
	if (emit_word(out, qenc, p + start, n - start, words == 0) == -1)
		return -1;
	return words + 1;
}

/* ---- decoding ---- */

/* Windows-1252 0x80-0x9f; 0 marks the five undefined positions. */
static const uint16_t cp1252_c1[32] = {
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
	0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
};

static int
append_cp(struct buf *out, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	return buf_append(out, u, n);
}

static int
append_cp1252_byte(struct buf *out, unsigned char c)
{
	uint32_t cp = c;

	if (c >= 0x80 && c < 0xa0)
		cp = cp1252_c1[c - 0x80] ? cp1252_c1[c - 0x80] : 0xfffd;
	return append_cp(out, cp);
}

/* Valid UTF-8 sequences are kept; every other byte is read as Windows-1252. */
static int
append_lenient(struct buf *out, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, l, run = 0;

	while (i < n) {
		l = utf8_seqlen(u + i, n - i, NULL);
		if (l > 0) {
			i += l;
			run += l;
			continue;
		}
		if (run && buf_append(out, p + i - run, run) == -1)
			return -1;
		run = 0;
		if (append_cp1252_byte(out, u[i]) == -1)
			return -1;
		i++;
	}
	if (run && buf_append(out, p + i - run, run) == -1)
		return -1;
	return 0;
}

static bool
charset_is(const char *cs, const char *const *names)
{
	for (; *names; names++)
		if (strcasecmp(cs, *names) == 0)
			return true;
	return false;
}

int
rfc2047_to_utf8(const char *charset, const char *p, size_t n, struct buf *out)
{
	static const char *const utf8ish[] = { "", "utf-8", "utf8", "us-ascii", "ascii",
	    "unknown-8bit", "x-unknown", "default", NULL };
	static const char *const latin1[] = { "iso-8859-1", "iso8859-1", "latin1", "l1",
	    "windows-1252", "cp1252", "iso_8859-1", NULL };
	char obuf[4096], *ip, *op;
	size_t il, ol, i;
	iconv_t cd;

	if (charset == NULL || charset_is(charset, utf8ish))
		return append_lenient(out, p, n);
	if (charset_is(charset, latin1)) {
		for (i = 0; i < n; i++)
			if (append_cp1252_byte(out, (unsigned char)p[i]) == -1)
				return -1;
		return 0;
	}
	if ((cd = iconv_open("UTF-8", charset)) == (iconv_t)-1)
		return append_lenient(out, p, n);
	ip = (char *)(uintptr_t)p;	/* iconv's prototype is not const-correct */
	il = n;
	while (il > 0) {
		op = obuf;
		ol = sizeof(obuf);
		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 && errno != E2BIG) {
			/* EILSEQ / EINVAL: one replacement character, skip a byte */
			if (append_lenient(out, obuf, (size_t)(op - obuf)) == -1 ||
			    append_cp(out, 0xfffd) == -1) {
				iconv_close(cd);
				return -1;
			}
			ip++;
			il--;
			iconv(cd, NULL, NULL, NULL, NULL);
			continue;
		}
		/* iconv stops at character boundaries; still check what it made
		 * (glibc lets some invalid sequences through, e.g. above U+10FFFF) */
		if (append_lenient(out, obuf, (size_t)(op - obuf)) == -1) {
			iconv_close(cd);
			return -1;
		}
	}
	iconv_close(cd);
	return 0;
}

static int
b64val(unsigned char c)
{
	const char *s;

	if (c == 0 || (s = strchr(b64chars, c)) == NULL)
		return -1;
	return (int)(s - b64chars);
}

/* Decode the text of one B or Q word into raw; lenient about padding. */
static int
word_decode(char enc, const char *p, size_t n, struct buf *raw)
{
	size_t i;
	uint32_t acc = 0;
	int bits = 0, v, h, l;
	char c;

	for (i = 0; i < n; i++) {
		if (enc == 'q') {
			c = p[i];
			if (c == '_')
				c = ' ';
			else if (c == '=' && i + 2 < n && (h = qp_hexval((unsigned char)p[i + 1])) >= 0 &&
			    (l = qp_hexval((unsigned char)p[i + 2])) >= 0) {
				c = (char)(h << 4 | l);
				i += 2;
			}
			if (buf_append(raw, &c, 1) == -1)
				return -1;
		} else {
			if ((v = b64val((unsigned char)p[i])) < 0)
				continue;	/* padding or junk */
			acc = (acc << 6) | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				c = (char)((acc >> bits) & 0xff);
				if (buf_append(raw, &c, 1) == -1)
					return -1;
			}
		}
	}
	return 0;
}

/*
 * Parse an encoded word at p: "=?charset[*lang]?B|Q?text?=". On success sets
 * the pieces and returns its length; 0 when p does not start one.
 */
static size_t
word_parse(const char *p, size_t n, const char **cs, size_t *cslen, char *enc,
    const char **text, size_t *textlen)
{
	size_t i = 2, j;

	if (n < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	for (; i < n && p[i] != '?'; i++)
		if (p[i] == ' ' || p[i] == '\t' || (unsigned char)p[i] < 0x20 || i > 80)
			return 0;
	if (i + 3 >= n || i == 2 || p[i + 2] != '?')
		return 0;
	*cs = p + 2;
	*cslen = i - 2;
	for (j = 0; j < *cslen; j++)
		if ((*cs)[j] == '*') {	/* RFC 2231 5: language suffix */
			*cslen = j;
			break;
		}
	if (p[i + 1] == 'b' || p[i + 1] == 'B')
		*enc = 'b';
	else if (p[i + 1] == 'q' || p[i + 1] == 'Q')
		*enc = 'q';
	else
		return 0;
	*text = p + i + 3;
	for (j = i + 3; j + 1 < n; j++) {
		if (p[j] == '?' && p[j + 1] == '=') {
			*textlen = j - (i + 3);
			return j + 2;
		}
		if (p[j] == ' ' || p[j] == '\t')
			return 0;
	}
	return 0;
}

int
rfc2047_decode(const char *p, size_t n, struct buf *out)
{
	struct buf raw;			/* bytes of adjacent words in one charset */
	char cs[64] = "", wcs[64];
	const char *wcsp, *text;
	size_t i = 0, wl, cslen, textlen, ws, lit = 0;
	char enc;
	bool inword = false;		/* the last thing seen was an encoded word */
	int rc = -1;

	buf_init(&raw, out->max);
	while (i < n) {
		if (p[i] == '=' && (wl = word_parse(p + i, n - i, &wcsp, &cslen, &enc, &text, &textlen)) > 0) {
			if (lit > 0 && append_lenient(out, p + i - lit, lit) == -1)
				goto done;
			lit = 0;
			snprintf(wcs, sizeof(wcs), "%.*s", (int)(cslen < 63 ? cslen : 63), wcsp);
			if (inword && strcasecmp(wcs, cs) != 0) {
				if (rfc2047_to_utf8(cs, raw.data ? raw.data : "", raw.len, out) == -1)
					goto done;
				buf_reset(&raw);
			}
			memcpy(cs, wcs, sizeof(cs));
			if (word_decode(enc, text, textlen, &raw) == -1)
				goto done;
			inword = true;
			i += wl;
			/* whitespace followed by another encoded word is dropped */
			for (ws = i; ws < n && (p[ws] == ' ' || p[ws] == '\t' || p[ws] == '\r' ||
			    p[ws] == '\n'); ws++)
				;
			if (ws > i && ws < n && word_parse(p + ws, n - ws, &wcsp, &cslen, &enc, &text,
			    &textlen) > 0)
				i = ws;
			continue;
		}
		if (inword) {
			if (rfc2047_to_utf8(cs, raw.data ? raw.data : "", raw.len, out) == -1)
				goto done;
			buf_reset(&raw);
			inword = false;
		}
		lit++;
		i++;
	}
	if (inword && rfc2047_to_utf8(cs, raw.data ? raw.data : "", raw.len, out) == -1)
		goto done;
	if (lit > 0 && append_lenient(out, p + n - lit, lit) == -1)
		goto done;
	if (out->data == NULL && buf_append(out, "", 0) == -1)
		goto done;
	rc = 0;
done:
	buf_free(&raw);
	return rc;
}
