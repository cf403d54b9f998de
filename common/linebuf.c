/*
 * linebuf.c - bounded, sans-I/O line reader (RFC 5321 2.3.8 and 4.5.3.1.4,
 * RFC 1939 3). See linebuf.h for the contract.
 *
 * Owns: splitting a byte stream into lines, telling CRLF from bare LF, and
 * resynchronising after an over-long line at the next LF. The buffer is
 * allocated once at init (max_line + 2 bytes: the longest line plus CR LF)
 * and never grows; the returned line is NUL-terminated in place, over its CR
 * or LF. A CR not followed by LF is part of the line; NUL bytes are data.
 * Never: truncates a line silently, reads a socket, or reports one over-long
 * line twice.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linebuf.h"

int
linebuf_init(struct linebuf *lb, size_t max_line)
{
	memset(lb, 0, sizeof(*lb));
	if (max_line == 0 || max_line > SIZE_MAX / 2)
		return -1;
	lb->max_line = max_line;
	lb->cap = max_line + 2;
	if ((lb->data = malloc(lb->cap)) == NULL)
		return -1;
	return 0;
}

void
linebuf_free(struct linebuf *lb)
{
	free(lb->data);
	lb->data = NULL;
	lb->len = lb->start = lb->scanned = 0;
	lb->discarding = false;
}

size_t
linebuf_pending(const struct linebuf *lb)
{
	return lb->len - lb->start;
}

size_t
linebuf_space(const struct linebuf *lb)
{
	/* feed compacts, so all of the buffer but the pending bytes is usable */
	return lb->cap - linebuf_pending(lb);
}

size_t
linebuf_feed(struct linebuf *lb, const void *p, size_t n)
{
	const char *src = p;
	size_t take = linebuf_space(lb), skipped = 0;

	if (n < take)
		take = n;
	if (take == 0)
		return 0;

	/*
	 * Dropping the tail of an over-long line with nothing buffered: skip
	 * the bytes up to the LF without copying them (a huge line costs one
	 * memchr per feed, not a copy).
	 */
	if (lb->discarding && lb->start == lb->len) {
		const char *lf = memchr(src, '\n', take);

		if (lf == NULL) {
			lb->start = lb->len = lb->scanned = 0;
			return take;
		}
		skipped = (size_t)(lf - src) + 1;
		lb->discarding = false;
		lb->start = lb->len = lb->scanned = 0;
		src += skipped;
		take -= skipped;
		if (take == 0)
			return skipped;
	}

	if (lb->start == lb->len) {
		lb->start = lb->len = 0;
	} else if (lb->len + take > lb->cap) {
		/* UNSAFE: pending + take <= cap by the space computation */
		memmove(lb->data, lb->data + lb->start, lb->len - lb->start);
		lb->len -= lb->start;
		lb->start = 0;
	}
	assert(lb->len + take <= lb->cap);
	memcpy(lb->data + lb->len, src, take);
	lb->len += take;
	return skipped + take;
}

enum line_status
linebuf_next(struct linebuf *lb, char **line_r, size_t *len_r, enum line_eol *eol_r)
{
	char *base, *lf;
	size_t pending, linelen;

	*line_r = NULL;
	*len_r = 0;
	*eol_r = EOL_NONE;

	for (;;) {
		base = lb->data + lb->start;
		pending = lb->len - lb->start;
		if (pending == 0) {
			lb->start = lb->len = lb->scanned = 0;
			return LINE_MORE;
		}
		lf = memchr(base + lb->scanned, '\n', pending - lb->scanned);
		if (!lb->discarding)
			break;
		/* Still dropping an over-long line: up to and including its LF. */
		if (lf == NULL) {
			lb->start = lb->len = lb->scanned = 0;
			return LINE_MORE;
		}
		lb->start += (size_t)(lf - base) + 1;
		lb->scanned = 0;
		lb->discarding = false;
	}

	if (lf == NULL) {
		if (pending < lb->cap) {
			lb->scanned = pending;
			return LINE_MORE;
		}
		/*
		 * The buffer is full and holds no LF: the line is longer than
		 * max_line. Report it once (with its first max_line bytes, for
		 * a log line) and drop the rest of it up to the next LF.
		 */
		base[lb->max_line] = '\0';
		*line_r = base;
		*len_r = lb->max_line;
		lb->start = lb->len = lb->scanned = 0;
		lb->discarding = true;
		return LINE_TOO_LONG;
	}

	linelen = (size_t)(lf - base);
	if (linelen > 0 && base[linelen - 1] == '\r') {
		linelen--;
		*eol_r = EOL_CRLF;
	} else
		*eol_r = EOL_LF;
	lb->start += (size_t)(lf - base) + 1;
	lb->scanned = 0;
	if (linelen > lb->max_line) {
		base[lb->max_line] = '\0';
		*line_r = base;
		*len_r = lb->max_line;
		return LINE_TOO_LONG;
	}
	base[linelen] = '\0';
	*line_r = base;
	*len_r = linelen;
	return LINE_OK;
}

void
linebuf_clear(struct linebuf *lb)
{
	lb->start = lb->len = lb->scanned = 0;
	lb->discarding = false;
}

size_t
linebuf_untelnet(char *line, size_t len, bool *had_iac_r)
{
	unsigned char *p = (unsigned char *)line;
	bool had_iac = false;
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c == 0xff) {			/* IAC */
			had_iac = true;
			if (i + 1 >= len)
				break;
			if (p[i + 1] == 0xff)		/* IAC IAC: a 0xFF data byte */
				p[o++] = 0xff;
			else if (p[i + 1] >= 251 && p[i + 1] <= 254)
				i++;			/* WILL/WONT/DO/DONT: one more byte */
			else if (p[i + 1] == 250) {	/* SB ... IAC SE */
				i += 2;
				while (i + 1 < len && !(p[i] == 0xff && p[i + 1] == 240))
					i++;
			}
			i++;
			continue;
		}
		if (c == 0x08 || c == 0x7f) {		/* backspace, DEL */
			while (o > 0 && (p[o - 1] & 0xc0) == 0x80)
				o--;			/* UTF-8 continuation bytes */
			if (o > 0)
				o--;
			continue;
		}
		p[o++] = c;
	}
	p[o] = '\0';
	if (had_iac_r != NULL)
		*had_iac_r = had_iac;
	return o;
}
