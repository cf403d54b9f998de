/*
 * auth.h - password hashing (crypt(3) from libxcrypt: crypt_gensalt with its
 * strongest default prefix, yescrypt "$y$" on Debian 12) and SASL PLAIN
 * (RFC 4616) / LOGIN decoding with strict base64. Never stores, logs or
 * returns a plaintext password anywhere but to the caller that supplied it.
 */
#ifndef CORREIO_AUTH_H
#define CORREIO_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_HASH_MAX	256
#define AUTH_FIELD_MAX	256

/* Hash a password with a fresh salt. Returns 0, -1 on failure. */
int	auth_hash_password(const char *password, char *hash_r, size_t hashlen);
/* True when password matches hash (comparison in constant time). */
bool	auth_verify_password(const char *password, const char *hash);
/*
 * Like auth_verify_password: 1 when password matches hash, 0 when not, -1
 * when crypt(3) failed on a hash of a method it knows: out of memory
 * (yescrypt takes megabytes per call), or a damaged hash, which libxcrypt
 * cannot tell apart (EINVAL for both). A -1 is the server's failure, never
 * the client's: it must not count as a failed login.
 */
int	auth_check_password(const char *password, const char *hash);
/* A hash of a random password, to verify against for unknown users so that
 * the time taken does not tell whether the user exists. */
const char *auth_dummy_hash(void);
/* For tests: whether this build defines the mmap() of auth.c (64-bit x86
 * and ARM Linux), and how many mappings the hashes of this process have had
 * advised to use huge pages through it. */
bool	auth_scratch_hooked(void);
unsigned long auth_scratch_advised(void);
/*
 * Decode a SASL PLAIN response (base64 of authzid NUL authcid NUL passwd).
 * Returns 0, or -1 when the base64 is invalid or the fields are malformed
 * (reason in err).
 */
int	auth_sasl_plain(const char *b64, char *authzid, char *user, char *pass,
	    size_t fieldlen, char *err, size_t errlen);
/* Decode one base64 SASL LOGIN field (user or password). Returns 0 or -1. */
int	auth_sasl_field(const char *b64, char *dst, size_t dstlen);

#endif
