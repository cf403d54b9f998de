/*
 * reply.h - replies from a command handler, and the writers that put them on
 * the wire: SMTP single and multi-line replies with enhanced status codes
 * (RFC 5321 4.2, RFC 2034, RFC 3463) and POP3 +OK/-ERR status lines and
 * dot-stuffed multi-line responses (RFC 1939 3, RFC 2449 response codes).
 * Handlers fill a struct reply and return; only the dispatcher writes it.
 */
#ifndef CORREIO_REPLY_H
#define CORREIO_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <event2/buffer.h>

#define REPLY_TEXT_MAX	2048
#define REPLY_ESC_MAX	16	/* "2.1.0", a POP3 resp-code, with its NUL */

/* POP3 status values for struct reply.code. */
#define REPLY_POP3_OK	1
#define REPLY_POP3_ERR	2

/* struct reply.flags */
#define REPLY_CLOSE	0x01	/* close the session after writing this reply */
#define REPLY_NONE	0x02	/* the handler sent nothing now (async or it streamed) */
#define REPLY_ERROR	0x04	/* counts toward the session's error limit */

struct reply {
	int	 code;			/* SMTP: 3 digits; POP3: REPLY_POP3_OK/ERR */
	char	 esc[REPLY_ESC_MAX];	/* SMTP enhanced code "2.1.0", POP3 resp-code "IN-USE", or "" */
	char	 text[REPLY_TEXT_MAX];	/* may hold '\n' between lines of a multi-line reply */
	int	 flags;
};

/* Fill r. text is printf-style; lines are separated by '\n'. Codes >= 400 (SMTP)
 * and REPLY_POP3_ERR set REPLY_ERROR. */
void	reply_set(struct reply *r, int code, const char *esc, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/* Append one more line to a multi-line reply (for EHLO, HELP). */
void	reply_add_line(struct reply *r, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Write an SMTP reply: "250-a\r\n250 b\r\n", enhanced code on every line when
 * esc is set. Returns bytes written: 0 when out of memory (nothing written).
 * shown, unless NULL: the same text for a transcript, '\n' between lines
 * and no final line end, cut to shownlen ("" when nothing was written). */
size_t	reply_write_smtp(struct evbuffer *out, const struct reply *r, char *shown,
	    size_t shownlen);
/* Write a POP3 status line: "+OK text" or "-ERR [CODE] text". Only the first
 * line of text is used. Returns bytes written; shown as above. */
size_t	reply_write_pop3(struct evbuffer *out, const struct reply *r, char *shown,
	    size_t shownlen);

/*
 * POP3 multi-line body writer. Writes data, byte-stuffing a '.' at the start
 * of each line (RFC 1939 3). The state carries "at start of line" across calls
 * so a body may be written in chunks of any size. reply_dot_end() writes the
 * terminating ".\r\n" (adding a CRLF first if the body did not end with one).
 * When the output runs out of memory, ds->failed is set and stays set.
 */
struct dotstuff {
	bool	 bol;	/* next byte is at the beginning of a line */
	bool	 failed;	/* an append failed (out of memory): the body has a
			   hole, so nothing more is written, not even the end
			   mark; the caller must drop the connection */
};
void	reply_dot_init(struct dotstuff *ds);
size_t	reply_dot_write(struct evbuffer *out, struct dotstuff *ds, const void *p, size_t n);
size_t	reply_dot_end(struct evbuffer *out, struct dotstuff *ds);

#endif
