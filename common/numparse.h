/*
 * numparse.h - the one parser for decimal numbers that come from the wire
 * (POP3 message numbers and line counts, SMTP SIZE=, server replies) or from
 * a configuration file. Digits only: no sign, no space, no "0x", nothing
 * before or after, never empty; a value past the caller's maximum is
 * reported, never wrapped or clamped silently.
 */
#ifndef CORREIO_NUMPARSE_H
#define CORREIO_NUMPARSE_H

#include <stddef.h>
#include <stdint.h>

#define NUMPARSE_OK	0	/* *v_r holds the value */
#define NUMPARSE_SYNTAX	(-1)	/* empty, or a byte that is not a digit */
#define NUMPARSE_RANGE	(-2)	/* digits only, but the value is above max */

/* Parse the len bytes at s as a decimal number of at most max. Returns
 * NUMPARSE_OK with the value in *v_r, NUMPARSE_SYNTAX or NUMPARSE_RANGE
 * (*v_r untouched). Leading zeros are allowed ("007" is 7). */
int	numparse_u64(const char *s, size_t len, uint64_t max, uint64_t *v_r);
/* Same for a NUL-terminated string. */
int	numparse_u64z(const char *s, uint64_t max, uint64_t *v_r);
/* Same with a 32-bit result. */
int	numparse_u32z(const char *s, uint32_t max, uint32_t *v_r);
/*
 * Parse the number that starts *sp and ends at a space or the end of the
 * string (a word of a reply such as "+OK 2 320"); on NUMPARSE_OK, *sp points
 * past the number and the spaces after it.
 */
int	numparse_u64_word(const char **sp, uint64_t max, uint64_t *v_r);

#endif
