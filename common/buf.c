/*
 * buf.c - the one growable byte buffer with a hard maximum (see buf.h).
 *
 * Owns: allocation and growth of struct buf. Growth doubles the capacity
 * (bounded by max + 1 for the NUL) so appends are amortised O(1).
 * Never: grows past max, leaves a buffer half-appended, or loses the NUL
 * terminator after a successful append.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_PRINTF_FIRST	255	/* buf_vprintf()'s first block: 256 octets with the NUL */

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Make room for need bytes of content plus the NUL. 0 or -1. */
static int
buf_reserve(struct buf *b, size_t need)
{
	size_t newcap;
	char *p;

	if (need > b->max || need == SIZE_MAX)
		return -1;
	if (need + 1 <= b->cap)	/* UNSAFE: need < SIZE_MAX checked above */
		return 0;
	newcap = b->cap ? b->cap : 64;
	while (newcap < need + 1) {
		if (newcap > SIZE_MAX / 2) {
			newcap = need + 1;
			break;
		}
		newcap *= 2;
	}
	if (newcap > b->max + 1 && b->max < SIZE_MAX)	/* UNSAFE: max < SIZE_MAX */
		newcap = b->max + 1;
	if ((p = realloc(b->data, newcap)) == NULL)
		return -1;
	b->data = p;
	b->cap = newcap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n > SIZE_MAX - b->len)
		return -1;
	if (buf_reserve(b, b->len + n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

/* One vsnprintf() when the text fits in the room there is (most calls: a
 * reply line, a header field), a second one only to grow first. A refused
 * text leaves the buffer as it was, unallocated if it was. */
int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	size_t room;
	bool fresh = b->cap == 0;
	int n;

	/* A buffer with nothing allocated yet gets its first block now, so
	 * that a short text takes one pass too. */
	if (fresh && buf_reserve(b, b->max < BUF_PRINTF_FIRST ? b->max : BUF_PRINTF_FIRST) == -1)
		return -1;
	room = b->cap > b->len ? b->cap - b->len : 0;
	va_copy(ap2, ap);
	n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n >= 0 && (size_t)n < room) {	/* written whole, with its NUL */
		b->len += (size_t)n;
		return 0;
	}
	if (room > 0)
		b->data[b->len] = '\0';	/* what a cut first pass wrote is not content */
	if (n < 0 || (size_t)n > SIZE_MAX - b->len - 1 || buf_reserve(b, b->len + (size_t)n) == -1)
		goto refused;
	/* UNSAFE: room for n bytes + NUL was reserved just above */
	if (vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap) != n) {
		b->data[b->len] = '\0';
		goto refused;
	}
	b->len += (size_t)n;
	return 0;
refused:
	if (fresh)
		buf_free(b);
	return -1;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
buf_consume(struct buf *b, size_t n)
{
	assert(n <= b->len);
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
