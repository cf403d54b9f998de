/*
 * mime_write.h - the pieces compose assembles a message from: a counting
 * output sink, header lines folded at 78 characters (RFC 5322 2.1.1, 2.2.3)
 * with RFC 2047 encoded words where needed, Content-Type / Content-
 * Disposition parameters (RFC 2045 5.1, RFC 2183, RFC 2231 3-4), text bodies
 * as 7bit or quoted-printable, attachments as streamed base64, boundaries
 * and the Date.
 */
#ifndef CORREIO_MIME_WRITE_H
#define CORREIO_MIME_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "compose.h"

#define MIME_LINE_MAX		78	/* RFC 5322 2.1.1 SHOULD */
#define MIME_B64_CHUNK		(192 * 1024)	/* attachment bytes read per step */

/* Where message bytes go. sink == NULL counts only (for compose_size). */
struct mime_out {
	compose_sink sink;
	void	*ctx;
	uint64_t count;		/* bytes written (or that would have been) */
	bool	 failed;	/* the sink refused; everything after is dropped */
};

int	mime_out_write(struct mime_out *w, const void *p, size_t n);
int	mime_out_puts(struct mime_out *w, const char *s);

/* A header line being built: tokens separated by single spaces, folded
 * (CRLF before the space) so that lines stay within MIME_LINE_MAX. */
struct mime_hdr {
	struct buf b;
	size_t	 col;		/* characters on the current line */
	size_t	 namelen;	/* "Name:" */
	bool	 ew_line;	/* the current line holds an encoded word (limit 76) */
};

/* Start "Name:". Returns 0 or -1. */
int	mime_hdr_begin(struct mime_hdr *h, const char *name);
/* Add a space and a token (never split). A fold goes before the space when
 * the token would pass the limit; an empty token never causes a fold. */
int	mime_hdr_token(struct mime_hdr *h, const char *tok, size_t n);
/* Add UTF-8 text as encoded words (space separated tokens). */
int	mime_hdr_encoded(struct mime_hdr *h, const char *text, size_t n);
/* Write the line and CRLF, free the builder. Returns 0 or -1. */
int	mime_hdr_end(struct mime_hdr *h, struct mime_out *w);
void	mime_hdr_free(struct mime_hdr *h);

/* "Name: value": unstructured text (RFC 5322 3.2.5) as given, folded at its
 * spaces, encoded words when it is not plain ASCII. Returns 0 or -1. */
int	mime_write_unstructured(struct mime_out *w, const char *name, const char *utf8);
/* "Name: a, b": mailboxes with display names (quoted or encoded as needed). */
int	mime_write_addresses(struct mime_out *w, const char *name,
	    const struct compose_addr *v, size_t n);
/* "Content-Type: type; name=..." and "Content-Disposition: attachment;
 * filename..." for an attachment named with UTF-8 name. */
int	mime_write_attachment_headers(struct mime_out *w, const char *type, const char *name);
/* Append to h the RFC 2231 parameter name (filename*0*=utf-8''..;
 * continuations) or a plain quoted one when short and ASCII. */
int	mime_hdr_param_2231(struct mime_hdr *h, const char *param, const char *value);

/* "7bit" when the text is ASCII, without control characters, lines of at
 * most MIME_LINE_MAX characters and no trailing whitespace; otherwise
 * "quoted-printable". */
const char *mime_text_encoding(const char *p, size_t n);
/* Write a text body in that encoding with CRLF breaks. In a single-part
 * message (final) the message then ends with a line break. Returns 0/-1. */
int	mime_write_text(struct mime_out *w, const char *p, size_t n, const char *enc, bool final);
/* Exact length of the base64 body (CRLF lines of 76) of size bytes. */
uint64_t mime_base64_size(uint64_t size);
/* Stream fd (size bytes expected) as base64 through common/b64.h. In count
 * mode nothing is read. Returns 0, or -1 with err (read error, file changed). */
int	mime_write_base64_fd(struct mime_out *w, int fd, uint64_t size, char *err, size_t errlen);

/* A boundary "=_correio_<kind>_<hex>" of 16 hex digits of r. It contains
 * "=_", which neither base64 nor our quoted-printable can produce. */
void	mime_boundary_make(char *dst, size_t len, const char *kind, uint64_t r);
/* True when no line of text starts with "--" boundary (for 7bit parts). */
bool	mime_boundary_is_safe(const char *boundary, const char *text, size_t n);
/* RFC 5322 3.3 date-time, English names, local offset (or +0000 when utc). */
void	mime_date(time_t t, bool utc, char *dst, size_t len);

#endif
