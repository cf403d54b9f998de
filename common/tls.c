/*
 * tls.c - OpenSSL contexts for the daemons (server side, [tls] cert/key) and
 * for mailcli and the relay (client side, verifying the peer). TLS 1.2 is the
 * oldest version offered (RFC 8996, RFC 8314 4.1). Never logs key material.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"

void
tls_error(char *dst, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(dst, len, "unknown TLS error");
	else
		ERR_error_string_n(e, dst, len);
	ERR_clear_error();
}

SSL_CTX *
tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char why[256];

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_error(why, sizeof(why));
		snprintf(err, errlen, "cannot create TLS context: %s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);	/* idle sessions keep no TLS buffers */
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_error(why, sizeof(why));
		snprintf(err, errlen, "cannot load certificate %s: %s", cert, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_error(why, sizeof(why));
		snprintf(err, errlen, "cannot load key %s: %s", key, why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "key %s does not match certificate %s", key, cert);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx(const char *cafile, bool insecure, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char why[256];

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_error(why, sizeof(why));
		snprintf(err, errlen, "cannot create TLS context: %s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cafile != NULL && cafile[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
			tls_error(why, sizeof(why));
			snprintf(err, errlen, "cannot load CA file %s: %s", cafile, why);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_error(why, sizeof(why));
		snprintf(err, errlen, "cannot load the system CA store: %s", why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}
