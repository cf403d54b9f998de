/*
 * replyparse.c - client side of SMTP and POP3 (see replyparse.h): SMTP reply
 * lines (RFC 5321 4.2 and 4.2.1) with enhanced status codes (RFC 2034 4,
 * RFC 3463 2), POP3 status lines with RFC 2449 8 response codes, and lines of
 * dot-terminated POP3 bodies (RFC 1939 3).
 *
 * Owns: deciding whether what a server sent is a well-formed reply. It is
 * strict about the reply code (RFC 5321 4.2 Reply-code grammar) and the
 * separator, and bounded (SMTP_REPLY_MAX_LINES, SMTP_REPLY_TEXT_MAX).
 * Never: reads a socket, or trusts a server's line to be NUL-free.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "replyparse.h"

/* All the text of one reply; a server that sends more is broken or hostile. */
#define SMTP_REPLY_TEXT_MAX	(64 * 1024)

void
smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->esc[0] = '\0';
	buf_init(&r->text, SMTP_REPLY_TEXT_MAX);
	r->nlines = 0;
}

void
smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
	r->code = 0;
	r->esc[0] = '\0';
	r->nlines = 0;
}

static int
rp_error(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
	return -1;
}

/*
 * Length of an enhanced status code "class.subject.detail" at the start of
 * s (RFC 3463 2: class 2, 4 or 5; subject and detail 1-3 digits), followed by
 * a space or the end; 0 when there is none.
 */
static size_t
rp_esc_len(const char *s, size_t n, char class)
{
	size_t i = 0, part, digits;

	if (n < 5 || s[0] != class || (class != '2' && class != '4' && class != '5') || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; i < n && isdigit((unsigned char)s[i]) && digits < 4; i++)
			digits++;
		if (digits == 0 || digits > 3)
			return 0;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return 0;
	return i;
}

int
smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len,
    char *err, size_t errlen)
{
	const char *text;
	size_t tlen, elen;
	bool last;
	int code;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !isdigit((unsigned char)line[2]))
		return rp_error(err, errlen, "reply line does not start with a 3-digit code");
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code)
		return rp_error(err, errlen, "reply code changed within a multi-line reply");
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return rp_error(err, errlen, "reply code not followed by a space or '-'");
	if (memchr(line, '\0', len) != NULL)
		return rp_error(err, errlen, "NUL byte in reply");
	if (r->nlines >= SMTP_REPLY_MAX_LINES)
		return rp_error(err, errlen, "too many lines in a multi-line reply");
	last = len == 3 || line[3] == ' ';
	text = len > 4 ? line + 4 : line + len;
	tlen = len > 4 ? len - 4 : 0;

	elen = rp_esc_len(text, tlen, line[0]);
	if (elen > 0) {
		if (r->esc[0] == '\0' && elen < sizeof(r->esc)) {
			memcpy(r->esc, text, elen);
			r->esc[elen] = '\0';
		}
		text += elen;
		tlen -= elen;
		if (tlen > 0 && *text == ' ') {
			text++;
			tlen--;
		}
	}
	if ((r->nlines > 0 && buf_append(&r->text, "\n", 1) == -1) ||
	    buf_append(&r->text, text, tlen) == -1)
		return rp_error(err, errlen, "reply text too long");
	r->code = code;
	r->nlines++;
	return last ? 1 : 0;
}

int
pop3_status_parse(const char *line, const char **text_r, char *resp_code, size_t rclen)
{
	const char *p;
	int status;

	if (resp_code != NULL && rclen > 0)
		resp_code[0] = '\0';
	if (text_r != NULL)
		*text_r = NULL;
	if (strncasecmp(line, "+OK", 3) == 0) {
		status = 1;
		p = line + 3;
	} else if (strncasecmp(line, "-ERR", 4) == 0) {
		status = 0;
		p = line + 4;
	} else
		return -1;
	if (*p != '\0' && *p != ' ')
		return -1;	/* "+OKAY", "-ERROR": not a status word */
	while (*p == ' ')
		p++;
	/* RFC 2449 8: resp-code = "[" resp-level *("/" resp-level) "]" */
	if (*p == '[') {
		const char *end = strchr(p, ']');

		if (end != NULL) {
			size_t n = (size_t)(end - p - 1);

			if (resp_code != NULL && rclen > 0) {
				if (n >= rclen)
					n = rclen - 1;
				memcpy(resp_code, p + 1, n);
				resp_code[n] = '\0';
			}
			p = end + 1;
			while (*p == ' ')
				p++;
		}
	}
	if (text_r != NULL)
		*text_r = p;
	return status;
}

int
pop3_body_line(const char *line, size_t len, const char **out_r, size_t *outlen_r)
{
	if (len == 1 && line[0] == '.') {
		*out_r = line + 1;
		*outlen_r = 0;
		return 1;
	}
	if (len > 0 && line[0] == '.') {
		*out_r = line + 1;
		*outlen_r = len - 1;
	} else {
		*out_r = line;
		*outlen_r = len;
	}
	return 0;
}
