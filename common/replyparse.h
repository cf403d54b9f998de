/*
 * replyparse.h - the client side of the protocols: SMTP replies (single and
 * multi-line, RFC 5321 4.2.1) and POP3 status lines and dot-terminated bodies
 * (RFC 1939 3). Sans-I/O: feed lines taken from a struct linebuf.
 * Used by mailcli and by smtpd's outbound relay.
 */
#ifndef CORREIO_REPLYPARSE_H
#define CORREIO_REPLYPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

#define SMTP_REPLY_MAX_LINES	64

struct smtp_reply {
	int	 code;		/* 3-digit code, 0 while incomplete */
	char	 esc[16];	/* enhanced status code when present, else "" */
	struct buf text;	/* the lines' texts (code and esc removed), joined by '\n' */
	size_t	 nlines;
};

void	smtp_reply_init(struct smtp_reply *r);
void	smtp_reply_free(struct smtp_reply *r);
/*
 * Feed one reply line (without CRLF). Returns 1 when the reply is complete
 * ("250 ..." after any "250-..." lines), 0 when more lines are needed, -1 on a
 * malformed line (no 3-digit code, a code that changed between lines, a
 * separator other than ' ' or '-', too many lines) with a reason in err.
 * After 1 or -1, call smtp_reply_init again (after free) to parse the next reply.
 */
int	smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len,
	    char *err, size_t errlen);

/*
 * Parse a POP3 status line. Returns 1 for +OK, 0 for -ERR, -1 for anything
 * else (and for "+ " SASL continuations, which callers test for first).
 * *text_r points after the status word and any spaces; resp_code receives an
 * RFC 2449 response code like "IN-USE" when present (else "").
 */
int	pop3_status_parse(const char *line, const char **text_r, char *resp_code, size_t rclen);

/*
 * POP3 multi-line body reader: feed lines; un-stuffs leading dots. Returns 1
 * at the terminating ".", 0 after storing a body line in *out_r and *outlen_r.
 */
int	pop3_body_line(const char *line, size_t len, const char **out_r, size_t *outlen_r);

#endif
