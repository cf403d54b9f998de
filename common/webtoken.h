/*
 * webtoken.h - the secrets of the web console: random tokens (web login
 * cookies, CSRF tokens, API tokens) and the SHA-256 under which the store
 * keeps a cookie or an API token, so that a copy of the store gives nobody
 * a login. Shared by webd and mailcli admin (token add).
 * Never: logs a token, or compares secrets in variable time.
 */
#ifndef CORREIO_WEBTOKEN_H
#define CORREIO_WEBTOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define WEBTOKEN_BYTES	32			/* random octets in a token */
#define WEBTOKEN_HEX	(WEBTOKEN_BYTES * 2)	/* its length in hex */

/* A fresh random token of WEBTOKEN_HEX lower-case hex digits into dst
 * (at least WEBTOKEN_HEX + 1 bytes). 0, or -1 when the system has no
 * randomness to give. */
int	webtoken_new(char *dst, size_t len);
/* The hex SHA-256 of s into dst (at least WEBTOKEN_HEX + 1 bytes). */
void	webtoken_hash(const char *s, char *dst, size_t len);
/* True when s is exactly WEBTOKEN_HEX lower-case hex digits. */
bool	webtoken_is_valid(const char *s);
/* Compare two NUL-terminated secrets in time independent of their contents
 * (their lengths may show). */
bool	webtoken_equal(const char *a, const char *b);

#endif
