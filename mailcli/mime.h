/*
 * mime.h - reading MIME messages (RFC 2045-2049, 2047, 2183, 2231) from any
 * client: nested multiparts, message/rfc822, quoted-printable, base64 with
 * any line length, missing or wrong charsets, malformed input. Parsing is
 * bounded in depth and number of parts; it never crashes on bad input.
 * Used by show/extract (files) and read/save (POP3).
 */
#ifndef CORREIO_MIME_H
#define CORREIO_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "buf.h"

#define MIME_MAX_DEPTH	32
#define MIME_MAX_PARTS	1000

struct mime_part {
	char	 type[128];		/* lower case "text/plain"; default per RFC 2045 5.2 */
	char	 charset[64];		/* lower case, "" when none */
	char	 encoding[32];		/* lower case Content-Transfer-Encoding, "7bit" default */
	char	 filename[512];		/* decoded UTF-8 (RFC 2231 / 2047 / plain), "" when none */
	bool	 attachment;		/* Content-Disposition: attachment, or a named non-text part */
	int	 depth;
	const char *headers;		/* raw header block, into the parsed message */
	size_t	 headerslen;
	const char *body;		/* raw (encoded) body, into the parsed message */
	size_t	 bodylen;
	struct mime_part *child;	/* first child (multipart, message/rfc822) */
	struct mime_part *next;		/* next sibling */
};

/* Parse msg (which must outlive the tree). Never fails on malformed input
 * (it keeps what it can); returns NULL only when memory runs out. */
struct mime_part *mime_parse(const char *msg, size_t len);
void	mime_free(struct mime_part **root);
/* Decode a part's body (Content-Transfer-Encoding) into out. Returns 0 or -1. */
int	mime_decode_body(const struct mime_part *p, struct buf *out);
/* A header of the part, unfolded and RFC 2047-decoded to UTF-8. Returns 0,
 * or -1 when the header is absent. */
int	mime_header(const struct mime_part *p, const char *name, char *dst, size_t len);
/* As mime_header(), but a missing From: or Date: is taken from the trace the
 * server added: the envelope sender (Return-Path:) or the arrival date (the
 * newest Received:). Returns 0 (the header), 1 (from the trace) or -1. */
int	mime_header_shown(const struct mime_part *p, const char *name, char *dst, size_t len);
/* The part to display as text: first text/plain, else first text/html. */
const struct mime_part *mime_text_part(const struct mime_part *root);
/* Print the tree: type, encoding, decoded file name, decoded size, indented. */
void	mime_print_tree(FILE *out, const struct mime_part *root);
/* Print n bytes of UTF-8 from a message with what could drive a terminal
 * (C0 controls, DEL, C1 controls) shown as '?'; with lines, LF and TAB are
 * kept (a body), else they are '?' too (a header value, a file name). */
void	mime_put_safe(FILE *out, const char *s, size_t n, bool lines);
/* Write every attachment to dir under a safe name (no path separators, no
 * "..", no overwriting unless force). Lists what was written on report.
 * Returns the number of files written, or -1. */
int	mime_save_attachments(const struct mime_part *root, const char *dir, bool force, FILE *report);
/* Make a file name safe for writing into a directory (in place). */
void	mime_safe_filename(char *name);

#endif
