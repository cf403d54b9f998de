/*
 * buf.h - a growable byte buffer with a hard maximum.
 *
 * Every byte buffer in correio that is not a libevent evbuffer is a struct buf.
 * It never grows past `max`; an append that would is refused whole (-1) and the
 * buffer is left as it was. data is always NUL-terminated (not counted in len)
 * so that text can be handed to C string functions.
 */
#ifndef CORREIO_BUF_H
#define CORREIO_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*data;	/* NULL until the first append */
	size_t	 len;	/* bytes used, not counting the trailing NUL */
	size_t	 cap;	/* bytes allocated */
	size_t	 max;	/* hard limit on len */
};

/* Initialise an empty buffer that may hold at most max bytes. Allocates nothing. */
void	buf_init(struct buf *b, size_t max);
/* Append n bytes. Returns 0, or -1 if the result would exceed max or memory ran out. */
int	buf_append(struct buf *b, const void *p, size_t n);
/* Append a NUL-terminated string. Same return as buf_append. */
int	buf_puts(struct buf *b, const char *s);
/* Append formatted text. Same return as buf_append. */
int	buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int	buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drop the first n bytes (n <= len). */
void	buf_consume(struct buf *b, size_t n);
/* Empty the buffer, keeping its memory. */
void	buf_reset(struct buf *b);
/* Free the memory; the buffer may be reused after buf_init. */
void	buf_free(struct buf *b);

#endif
