/*
 * reply.c - struct reply and its wire forms: SMTP single and multi-line
 * replies with enhanced status codes (RFC 5321 4.2 and 4.2.1, RFC 2034,
 * RFC 3463), POP3 +OK/-ERR status lines with RFC 2449 response codes, and the
 * dot-stuffing writer for POP3 multi-line responses (RFC 1939 3).
 *
 * Owns: the only code that turns a reply into protocol bytes. Every line it
 * writes ends in CRLF; a CR or LF inside reply text never reaches the wire
 * (LF separates lines, CR and other control bytes are dropped or replaced).
 * Never: writes a partial reply (each reply is added to the evbuffer at once).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "reply.h"

/* A formatted reply is at most REPLY_TEXT_MAX lines of
 * code + '-' + esc + ' ' + CRLF on top of the text itself. */
#define REPLY_WIRE_MAX	(REPLY_TEXT_MAX * (4 + sizeof(((struct reply *)0)->esc) + 3) + REPLY_TEXT_MAX)

static void
reply_copy_esc(struct reply *r, const char *esc)
{
	size_t n = esc ? strlen(esc) : 0;

	if (n >= sizeof(r->esc))
		n = sizeof(r->esc) - 1;
	if (n > 0)
		memcpy(r->esc, esc, n);
	r->esc[n] = '\0';
}

void
reply_set(struct reply *r, int code, const char *esc, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	reply_copy_esc(r, esc);
	va_start(ap, fmt);
	if (vsnprintf(r->text, sizeof(r->text), fmt, ap) < 0)
		r->text[0] = '\0';
	va_end(ap);
	r->flags = (code == REPLY_POP3_ERR || code >= 400) ? REPLY_ERROR : 0;
}

void
reply_add_line(struct reply *r, const char *fmt, ...)
{
	size_t len = strlen(r->text);
	va_list ap;
	int n;

	/* A line that does not fit is dropped whole, never cut. */
	if (len + 2 >= sizeof(r->text))
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->text + len + 1, sizeof(r->text) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(r->text) - len - 1) {
		r->text[len] = '\0';
		return;
	}
	r->text[len] = '\n';
}

/* Append one line of reply text, dropping CR and replacing other control
 * bytes, so nothing from the text can end or split a protocol line. */
static void
reply_put_text(struct buf *b, const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != 0x7f) {
			run++;
			continue;
		}
		(void)buf_append(b, s + i - run, run);
		run = 0;
		if (c == '\t')
			(void)buf_append(b, " ", 1);
		else if (c != '\r')
			(void)buf_append(b, "?", 1);
	}
	(void)buf_append(b, s + n - run, run);
}

/* Render r as SMTP lines into b, each ending in eol. */
static void
reply_render_smtp(struct buf *b, const struct reply *r, const char *eol)
{
	const char *p = r->text, *nl;
	size_t n;
	int code = r->code;

	if (code < 100 || code > 999)
		code = 451;	/* a bug upstream must not produce a bad reply line */
	for (;;) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		/* a trailing '\n' does not make an empty last line */
		bool last = nl == NULL || nl[1] == '\0';

		char head[4] = { (char)('0' + code / 100), (char)('0' + code / 10 % 10),
		    (char)('0' + code % 10), last ? ' ' : '-' };

		(void)buf_append(b, head, sizeof(head));	/* no printf: every reply */
		if (r->esc[0] != '\0') {
			reply_put_text(b, r->esc, strlen(r->esc));
			if (n > 0)
				(void)buf_append(b, " ", 1);
		}
		reply_put_text(b, p, n);
		/* "250 " with nothing after it: drop the space */
		if (r->esc[0] == '\0' && n == 0 && b->len > 0 && b->data[b->len - 1] == ' ')
			b->len--;
		(void)buf_puts(b, eol);
		if (last)
			break;
		p = nl + 1;
	}
}

static void
reply_render_pop3(struct buf *b, const struct reply *r, const char *eol)
{
	const char *nl = strchr(r->text, '\n');
	size_t n = nl ? (size_t)(nl - r->text) : strlen(r->text);

	(void)buf_puts(b, r->code == REPLY_POP3_OK ? "+OK" : "-ERR");
	if (r->esc[0] != '\0') {
		(void)buf_append(b, " [", 2);
		reply_put_text(b, r->esc, strlen(r->esc));
		(void)buf_append(b, "]", 1);
	}
	if (n > 0) {
		(void)buf_append(b, " ", 1);
		reply_put_text(b, r->text, n);
	}
	(void)buf_puts(b, eol);
}

/* The rendered lines as a transcript shows them: '\n' between them, no
 * final line end, cut to fit dst. */
static void
reply_shown(const char *p, size_t n, char *dst, size_t dstlen)
{
	size_t i, k = 0;

	if (dstlen == 0)
		return;
	if (n >= 2)
		n -= 2;		/* the last CRLF */
	for (i = 0; i < n && k + 1 < dstlen; i++)
		if (p[i] != '\r' || i + 1 == n || p[i + 1] != '\n')
			dst[k++] = p[i];
	dst[k] = '\0';
}

/* Render r with render into out, CRLF line ends, and into shown (may be
 * NULL) as reply_shown() does; returns the bytes added to out. */
static size_t
reply_write(struct evbuffer *out, const struct reply *r,
    void (*render)(struct buf *, const struct reply *, const char *), char *shown,
    size_t shownlen)
{
	struct buf b;
	size_t n;

	buf_init(&b, REPLY_WIRE_MAX);
	render(&b, r, "\r\n");
	n = b.len;
	/* Out of memory while rendering: never a line without its CRLF. */
	if (n < 2 || memcmp(b.data + n - 2, "\r\n", 2) != 0 || evbuffer_add(out, b.data, n) == -1)
		n = 0;
	if (shown != NULL)
		reply_shown(n > 0 ? b.data : "", n, shown, shownlen);
	buf_free(&b);
	return n;
}

size_t
reply_write_smtp(struct evbuffer *out, const struct reply *r, char *shown, size_t shownlen)
{
	return reply_write(out, r, reply_render_smtp, shown, shownlen);
}

size_t
reply_write_pop3(struct evbuffer *out, const struct reply *r, char *shown, size_t shownlen)
{
	return reply_write(out, r, reply_render_pop3, shown, shownlen);
}

void
reply_dot_init(struct dotstuff *ds)
{
	ds->bol = true;
	ds->failed = false;
}

/* Add n octets, or latch the failure: after one, nothing more is written. */
static void
dot_add(struct evbuffer *out, struct dotstuff *ds, const char *p, size_t n, size_t *written)
{
	if (ds->failed || n == 0)
		return;
	if (evbuffer_add(out, p, n) == -1)
		ds->failed = true;
	else
		*written += n;
}

size_t
reply_dot_write(struct evbuffer *out, struct dotstuff *ds, const void *p, size_t n)
{
	const char *s = p, *end = s + n, *from = s, *line = s, *nl;
	struct evbuffer_iovec v;
	char *dst;
	bool bol = ds->bol;

	if (n == 0 || ds->failed)
		return 0;
	/*
	 * One space for the whole piece, written with one commit: at most
	 * half again as long (".\n" stuffed is "..\n"). An evbuffer_add() per
	 * stuffed line, each running the output callbacks, was a third of
	 * pop3d's time streaming bodies whose lines begin with a dot.
	 */
	if (n > (size_t)EV_SSIZE_MAX / 2 ||
	    evbuffer_reserve_space(out, (ev_ssize_t)(n + n / 2 + 1), &v, 1) != 1) {
		ds->failed = true;
		return 0;
	}
	dst = v.iov_base;
	/* From line end to line end with memchr (a RETR's whole body passes
	 * here: a test per octet was 5% of pop3d streaming 4 KB messages). */
	for (;;) {
		if (bol && *line == '.') {
			/* up to here, then the stuffed dot; the line follows */
			memcpy(dst, from, (size_t)(line - from));
			dst += line - from;
			*dst++ = '.';
			from = line;
		}
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL) {
			bol = false;
			break;
		}
		line = nl + 1;
		bol = true;
		if (line == end)
			break;
	}
	memcpy(dst, from, (size_t)(end - from));
	dst += end - from;
	v.iov_len = (size_t)(dst - (char *)v.iov_base);
	if (evbuffer_commit_space(out, &v, 1) == -1) {
		ds->failed = true;
		return 0;
	}
	ds->bol = bol;
	return v.iov_len;
}

size_t
reply_dot_end(struct evbuffer *out, struct dotstuff *ds)
{
	size_t n = 0;

	if (ds->failed)
		return 0;	/* a body with a hole never gets its end mark */
	if (!ds->bol)
		dot_add(out, ds, "\r\n", 2, &n);
	dot_add(out, ds, ".\r\n", 3, &n);
	ds->bol = true;
	return ds->failed ? 0 : n;
}
