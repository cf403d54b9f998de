/*
 * linebuf.h - bounded, sans-I/O line reader (RFC 5321 2.3.8, RFC 1939 3).
 *
 * Bytes are fed in from any source; complete lines come out with the kind of
 * line ending that was seen (CRLF or bare LF), so DATA can refuse bare LFs
 * while command lines typed with nc are still accepted. A line longer than the
 * cap is reported once as LINE_TOO_LONG and the rest of it, up to the next LF,
 * is discarded. Memory never exceeds the cap given at init.
 * A line may contain NUL bytes and bare CRs; the caller decides what they mean.
 */
#ifndef CORREIO_LINEBUF_H
#define CORREIO_LINEBUF_H

#include <stdbool.h>
#include <stddef.h>

enum line_status {
	LINE_MORE = 0,		/* no complete line buffered: feed more bytes */
	LINE_OK = 1,		/* *line_r holds one line, without its ending */
	LINE_TOO_LONG = 2	/* a line exceeded the cap; it was dropped up to its LF */
};

enum line_eol {
	EOL_NONE = 0,		/* only with LINE_TOO_LONG at end of input */
	EOL_CRLF,
	EOL_LF			/* bare LF (no CR before it) */
};

struct linebuf {
	char	*data;
	size_t	 len;		/* bytes buffered */
	size_t	 start;		/* offset of the first unread byte */
	size_t	 max_line;	/* longest line accepted, excluding its CRLF */
	size_t	 cap;		/* max_line + 2 */
	size_t	 scanned;	/* bytes after start already searched for LF */
	bool	 discarding;	/* dropping the tail of an over-long line */
};

/* Prepare a reader for lines of at most max_line octets (not counting CRLF). */
int	linebuf_init(struct linebuf *lb, size_t max_line);
void	linebuf_free(struct linebuf *lb);
/*
 * Room for more input: at most this many bytes may be passed to linebuf_feed
 * now. It is 0 only while a complete line waits to be taken with linebuf_next.
 */
size_t	linebuf_space(const struct linebuf *lb);
/* Copy up to n bytes in. Returns how many were taken (<= linebuf_space()). */
size_t	linebuf_feed(struct linebuf *lb, const void *p, size_t n);
/*
 * Take the next line. On LINE_OK, *line_r points into the reader (valid until
 * the next feed or next call) and is NUL-terminated at *len_r; *eol_r tells how
 * it ended. LINE_TOO_LONG is returned once per over-long line.
 */
enum line_status linebuf_next(struct linebuf *lb, char **line_r, size_t *len_r,
	    enum line_eol *eol_r);
/* Bytes buffered and not yet returned as lines. */
size_t	linebuf_pending(const struct linebuf *lb);
/* Drop everything buffered (used after STARTTLS: pipelined plaintext is discarded). */
void	linebuf_clear(struct linebuf *lb);
/*
 * Make a command line typed by a person what they meant, in place: drop
 * telnet IAC sequences (RFC 854: IAC WILL/WONT/DO/DONT opt, IAC SB ... IAC SE,
 * two-byte IAC commands; IAC IAC is a literal 0xFF) and apply backspace and
 * DEL to what was typed before them, a whole UTF-8 character at a time.
 * Returns the new length (the line stays NUL-terminated); *had_iac_r (may be
 * NULL) tells whether there was telnet negotiation. For command lines only:
 * never for message text.
 */
size_t	linebuf_untelnet(char *line, size_t len, bool *had_iac_r);

#endif
