/*
 * markup.c - HTML/XML and JSON escaping (markup.h). One pass over UTF-8:
 * each character is either copied, replaced by an entity or escape, or,
 * when it is not valid UTF-8 or a control, replaced by U+FFFD.
 */
#include <string.h>

#include "markup.h"

#define REPLACEMENT	"\xef\xbf\xbd"	/* U+FFFD in UTF-8 */

/* Length of the valid UTF-8 sequence at s (at most n octets), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
markup_html(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	const char *ent;
	size_t len;

	while (p < end) {
		ent = NULL;
		switch (*p) {
		case '&': ent = "&amp;"; break;
		case '<': ent = "&lt;"; break;
		case '>': ent = "&gt;"; break;
		case '"': ent = "&quot;"; break;
		case '\'': ent = "&#39;"; break;
		case '\t': case '\n': case '\r': break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				ent = REPLACEMENT;
		}
		if (ent != NULL) {
			if (buf_puts(out, ent) == -1)
				return -1;
			p++;
			continue;
		}
		if ((len = utf8_len(p, (size_t)(end - p))) == 0) {
			if (buf_puts(out, REPLACEMENT) == -1)
				return -1;
			p++;
			continue;
		}
		if (buf_append(out, p, len) == -1)
			return -1;
		p += len;
	}
	return 0;
}

int
markup_html_str(struct buf *out, const char *s)
{
	return markup_html(out, s, strlen(s));
}

int
markup_json(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	size_t len;

	if (buf_puts(out, "\"") == -1)
		return -1;
	while (p < end) {
		if (*p == '"' || *p == '\\') {
			if (buf_printf(out, "\\%c", *p) == -1)
				return -1;
			p++;
		} else if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == '&') {
			if (buf_printf(out, "\\u%04x", *p) == -1)
				return -1;
			p++;
		} else if ((len = utf8_len(p, (size_t)(end - p))) == 0) {
			if (buf_puts(out, "\\ufffd") == -1)
				return -1;
			p++;
		} else {
			if (buf_append(out, p, len) == -1)
				return -1;
			p += len;
		}
	}
	return buf_puts(out, "\"");
}

int
markup_json_str(struct buf *out, const char *s)
{
	return markup_json(out, s, strlen(s));
}
