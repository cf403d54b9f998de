/*
 * webtoken.c - random tokens and their SHA-256 (webtoken.h), on OpenSSL's
 * RAND_bytes and EVP digests.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "webtoken.h"

static void
to_hex(const unsigned char *p, size_t n, char *dst)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		dst[2 * i] = hex[p[i] >> 4];
		dst[2 * i + 1] = hex[p[i] & 15];
	}
	dst[2 * n] = '\0';
}

int
webtoken_new(char *dst, size_t len)
{
	unsigned char raw[WEBTOKEN_BYTES];

	if (len < WEBTOKEN_HEX + 1 || RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	to_hex(raw, sizeof(raw), dst);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

void
webtoken_hash(const char *s, char *dst, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (len < WEBTOKEN_HEX + 1) {
		if (len > 0)
			dst[0] = '\0';
		return;
	}
	if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		dst[0] = '\0';
		return;
	}
	to_hex(md, mdlen, dst);
}

bool
webtoken_is_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == WEBTOKEN_HEX;
}

bool
webtoken_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}
