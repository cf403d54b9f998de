/*
 * numparse.c - decimal numbers from the wire and from configuration files,
 * checked before every multiplication so that no value ever wraps
 * (RETR 18446744073709551617 is out of range, not message 1). Owns nothing
 * else: what a number means, and the reply to a bad one, stay with the caller.
 */

#include <string.h>

#include "numparse.h"

int
numparse_u64(const char *s, size_t len, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;
	unsigned d;
	size_t i;
	int rc = NUMPARSE_OK;

	if (len == 0)
		return NUMPARSE_SYNTAX;
	/* Every byte is looked at: "99999999999999999999x" is a syntax error. */
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return NUMPARSE_SYNTAX;
		if (rc != NUMPARSE_OK)
			continue;
		d = (unsigned)(s[i] - '0');
		if (d > max || v > (max - d) / 10)	/* v * 10 + d > max, never computed */
			rc = NUMPARSE_RANGE;
		else
			v = v * 10 + d;
	}
	if (rc == NUMPARSE_OK)
		*v_r = v;
	return rc;
}

int
numparse_u64z(const char *s, uint64_t max, uint64_t *v_r)
{
	return numparse_u64(s, strlen(s), max, v_r);
}

int
numparse_u32z(const char *s, uint32_t max, uint32_t *v_r)
{
	uint64_t v;
	int rc = numparse_u64(s, strlen(s), max, &v);

	if (rc == NUMPARSE_OK)
		*v_r = (uint32_t)v;
	return rc;
}

int
numparse_u64_word(const char **sp, uint64_t max, uint64_t *v_r)
{
	const char *s = *sp, *end = strchr(s, ' ');
	size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
	int rc = numparse_u64(s, len, max, v_r);

	if (rc == NUMPARSE_OK) {
		s += len;
		while (*s == ' ')
			s++;
		*sp = s;
	}
	return rc;
}
