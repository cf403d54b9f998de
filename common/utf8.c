/*
 * utf8.c - one well-formed UTF-8 sequence (RFC 3629 section 4's table):
 * no overlongs, no surrogates, nothing above U+10FFFF.
 */
#include "utf8.h"

size_t
utf8_seqlen(const unsigned char *p, size_t n, uint32_t *cp_r)
{
	unsigned char c = p[0];
	size_t len, i;
	uint32_t cp;

	if (c < 0x80) {
		len = 1;
		cp = c;
		goto done;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
done:
	if (cp_r != NULL)
		*cp_r = cp;
	return len;
}
