/*
 * tls.h - OpenSSL contexts: the server context from [tls] cert/key, and the
 * client context (mailcli, relay) with verification against the system store
 * or a given CA file.
 */
#ifndef CORREIO_TLS_H
#define CORREIO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

/* Server context from PEM files (TLS 1.2+). NULL with err on failure. */
SSL_CTX	*tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen);
/* Client context: verify peers unless insecure; cafile NULL uses the system store. */
SSL_CTX	*tls_client_ctx(const char *cafile, bool insecure, char *err, size_t errlen);
/* Text of the last OpenSSL error into dst. */
void	tls_error(char *dst, size_t len);

#endif
