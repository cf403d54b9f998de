/*
 * rfc2047.h - MIME encoded words (RFC 2047) in UTF-8, both directions, and
 * the charset conversion the MIME reader shares (RFC 2231 values, bodies).
 *
 * Encoding splits only on UTF-8 character boundaries and keeps every encoded
 * word within RFC2047_WORD_MAX characters; decoding joins adjacent encoded
 * words (the whitespace between them is not text, RFC 2047 6.2) and converts
 * from their charset, never failing on unknown charsets or bad bytes.
 */
#ifndef CORREIO_RFC2047_H
#define CORREIO_RFC2047_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define RFC2047_WORD_MAX	75	/* RFC 2047 2: an encoded word is at most 75 characters */

/* True when p[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
bool	rfc2047_is_utf8(const char *p, size_t n);
/* True when the text must be encoded in a header: non-ASCII bytes, control
 * characters other than TAB, or something a decoder would take for an
 * encoded word ("=?"). */
bool	rfc2047_needs_encoding(const char *p, size_t n);

/*
 * Encode UTF-8 text as encoded words "=?utf-8?Q?...?=" or "=?utf-8?B?...?="
 * (whichever is shorter for the whole text), appending them to out separated
 * by one space. The first word is at most first_max characters (so that it
 * fits beside the header name), the others at most RFC2047_WORD_MAX; a word
 * never ends inside a multi-byte character. Q uses the restricted set of RFC
 * 2047 5(3), valid in phrases. The caller folds at the spaces. Returns the
 * number of words, or -1 (invalid UTF-8, first_max too small, buffer full).
 */
int	rfc2047_encode(const char *p, size_t n, size_t first_max, struct buf *out);

/*
 * Decode a header value (already unfolded) to UTF-8 into out: encoded words
 * in any charset known to iconv, B or Q; whitespace between adjacent encoded
 * words dropped; malformed words kept as they are; text outside encoded words
 * passed through (non-UTF-8 bytes taken as Windows-1252). Returns 0 or -1
 * when out is full.
 */
int	rfc2047_decode(const char *p, size_t n, struct buf *out);

/*
 * Append p[0..n) in charset to out as UTF-8. An empty, unknown or lying
 * charset never fails: valid UTF-8 is kept, anything else is read as
 * Windows-1252. Returns 0 or -1 when out is full.
 */
int	rfc2047_to_utf8(const char *charset, const char *p, size_t n, struct buf *out);

#endif
