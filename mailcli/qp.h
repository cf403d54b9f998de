/*
 * qp.h - quoted-printable (RFC 2045 6.7) for mailcli: the encoder compose
 * uses for text parts, the lenient decoder the MIME reader uses.
 */
#ifndef CORREIO_QP_H
#define CORREIO_QP_H

#include <stddef.h>

#include "buf.h"

#define QP_LINE_MAX	76	/* RFC 2045 6.7 (5): encoded lines, the soft-break '=' included */

/*
 * Encode text (line breaks LF or CRLF) as quoted-printable into out: hard
 * breaks become CRLF, lines are at most QP_LINE_MAX characters with soft
 * breaks ("=" CRLF), '=' and every byte outside 33..126 (but inner SP/TAB)
 * are =XX, a SP or TAB before a line break or at the very end is =20/=09,
 * a lone CR is =0D, and "From " at the start of a line is =46rom (mbox).
 * No CRLF is added after the last line when the text does not end in one.
 * Returns 0, or -1 when out is full.
 */
int	qp_encode(const char *p, size_t n, struct buf *out);

/*
 * Decode quoted-printable leniently into out: =XX in either case, soft
 * breaks after "=" (trailing whitespace after it allowed), trailing
 * whitespace on lines removed (RFC 2045 6.7 (3)), a malformed '=' kept as
 * it is; line breaks are kept as they were (CRLF or LF).
 * Returns 0, or -1 when out is full.
 */
int	qp_decode(const char *p, size_t n, struct buf *out);

/* The value of a hexadecimal digit in either case, -1 for anything else
 * (=XX here, RFC 2047 Q words, RFC 2231 %XX). Inline: rfc2047.c is built
 * alone into some test programs. */
static inline int
qp_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
