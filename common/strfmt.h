/*
 * strfmt.h - printf into a caller's fixed buffer where a cut text is
 * acceptable (error reasons, log fields, reply texts): always
 * NUL-terminated, never past len. For text that must be whole, use struct
 * buf (buf.h) or check snprintf's result.
 */
#ifndef CORREIO_STRFMT_H
#define CORREIO_STRFMT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Format into dst (len > 0). Returns true when the whole text fit. */
bool	strfmt(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool	vstrfmt(char *dst, size_t len, const char *fmt, va_list ap);

#endif
