/*
 * strfmt.c - the one "format into a fixed buffer, cut if need be" helper
 * (see strfmt.h); it replaces the copies the client, the relay and the
 * composer each had.
 */
#include <stdio.h>

#include "strfmt.h"

bool
vstrfmt(char *dst, size_t len, const char *fmt, va_list ap)
{
	int n = vsnprintf(dst, len, fmt, ap);

	return n >= 0 && (size_t)n < len;
}

bool
strfmt(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;
	bool fit;

	va_start(ap, fmt);
	fit = vstrfmt(dst, len, fmt, ap);
	va_end(ap);
	return fit;
}
