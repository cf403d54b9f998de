/*
 * qp.c - quoted-printable encoding and decoding (RFC 2045 6.7).
 *
 * Owns: the line layout of encoded text (soft breaks so that no line is
 * longer than 76 characters, CRLF hard breaks, trailing whitespace
 * protected) and the lenient decoder for what other clients send.
 * Never: produces "=" followed by anything but two upper-case hex digits or
 * CRLF, so a boundary containing "=_" cannot occur in its output.
 */
#include <stdbool.h>
#include <string.h>

#include "qp.h"

static const char hexdigits[] = "0123456789ABCDEF";

struct qp_line {
	struct buf *out;
	size_t	 col;
};

/* Append one encoded token (1 or 3 characters); last says it ends the line. */
static int
qp_token(struct qp_line *l, const char *tok, size_t len, bool last)
{
	size_t limit = last ? QP_LINE_MAX : QP_LINE_MAX - 1;	/* room for the '=' */

	if (l->col + len > limit) {
		if (buf_append(l->out, "=\r\n", 3) == -1)
			return -1;
		l->col = 0;
	}
	if (buf_append(l->out, tok, len) == -1)
		return -1;
	l->col += len;
	return 0;
}

int
qp_encode(const char *p, size_t n, struct buf *out)
{
	struct qp_line l = { out, 0 };
	size_t i, eol, end, linestart;
	unsigned char c;
	char tok[3];
	bool last, literal;

	if (buf_append(out, "", 0) == -1)
		return -1;
	for (linestart = 0; linestart < n; linestart = eol + 1) {
		const char *nl = memchr(p + linestart, '\n', n - linestart);
		eol = nl ? (size_t)(nl - p) : n;
		end = eol;
		if (nl && end > linestart && p[end - 1] == '\r')
			end--;		/* CRLF: the CR is part of the break */
		l.col = 0;
		for (i = linestart; i < end; i++) {
			c = (unsigned char)p[i];
			last = i + 1 == end;
			literal = (c >= 33 && c <= 126 && c != '=') ||
			    ((c == ' ' || c == '\t') && !last);
			if (i == linestart && c == 'F' && end - i >= 5 && memcmp(p + i, "From ", 5) == 0)
				literal = false;
			if (literal) {
				tok[0] = (char)c;
				if (qp_token(&l, tok, 1, last) == -1)
					return -1;
			} else {
				tok[0] = '=';
				tok[1] = hexdigits[c >> 4];
				tok[2] = hexdigits[c & 15];
				if (qp_token(&l, tok, 3, last) == -1)
					return -1;
			}
		}
		if (nl && buf_append(out, "\r\n", 2) == -1)
			return -1;
		if (!nl)
			break;
	}
	return 0;
}

int
qp_decode(const char *p, size_t n, struct buf *out)
{
	size_t linestart, eol, end, i;
	const char *nl;
	int h, lo;
	char c;

	if (buf_append(out, "", 0) == -1)
		return -1;
	for (linestart = 0; linestart < n; linestart = eol + 1) {
		nl = memchr(p + linestart, '\n', n - linestart);
		eol = nl ? (size_t)(nl - p) : n;
		end = eol;
		if (nl && end > linestart && p[end - 1] == '\r')
			end--;
		while (end > linestart && (p[end - 1] == ' ' || p[end - 1] == '\t'))
			end--;	/* transport padding */
		for (i = linestart; i < end; i++) {
			c = p[i];
			if (c == '=') {
				if (i + 1 == end)	/* soft line break */
					goto soft;
				if (i + 2 < end && (h = qp_hexval((unsigned char)p[i + 1])) >= 0 &&
				    (lo = qp_hexval((unsigned char)p[i + 2])) >= 0) {
					c = (char)(h << 4 | lo);
					i += 2;
				}
			}
			if (buf_append(out, &c, 1) == -1)
				return -1;
		}
		if (nl) {
			if (eol > 0 && p[eol - 1] == '\r') {
				if (buf_append(out, "\r\n", 2) == -1)
					return -1;
			} else if (buf_append(out, "\n", 1) == -1)
				return -1;
		}
soft:
		if (!nl)
			break;
	}
	return 0;
}
