/*
 * markup.h - escaping text for the markup webd and mailcli write: HTML and
 * XML text and attribute values, and JSON strings. Everything that comes
 * from mail, a transcript or a request goes through here before it is put
 * in a page, an autoconfig document or an API answer.
 * Never: lets '<', '>', '&', quotes or control characters through raw;
 * passes invalid UTF-8 on (it becomes U+FFFD).
 */
#ifndef CORREIO_MARKUP_H
#define CORREIO_MARKUP_H

#include <stddef.h>

#include "buf.h"

/* Append s (n octets) to out escaped for HTML/XML text and double- or
 * single-quoted attribute values: & < > " ' as entities, C0 controls but
 * TAB/LF/CR and DEL as U+FFFD, invalid UTF-8 as U+FFFD. 0, or -1 when out
 * is full. */
int	markup_html(struct buf *out, const char *s, size_t n);
/* The same for a NUL-terminated string. */
int	markup_html_str(struct buf *out, const char *s);
/* Append s as a JSON string, quotes included: " \ and controls escaped,
 * < > & as \u003c etc. (safe inside a page too), invalid UTF-8 as U+FFFD.
 * 0 or -1. */
int	markup_json(struct buf *out, const char *s, size_t n);
int	markup_json_str(struct buf *out, const char *s);

#endif
