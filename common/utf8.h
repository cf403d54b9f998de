/*
 * utf8.h - well-formed UTF-8 (RFC 3629), the one check every program uses:
 * addresses (SMTPUTF8), header encoding in mailcli, transcripts.
 */
#ifndef CORREIO_UTF8_H
#define CORREIO_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Length of the well-formed UTF-8 sequence at p (at most n bytes, n > 0), or
 * 0 when it is not one: overlong forms, surrogates and code points above
 * U+10FFFF are refused. ASCII is 1. The code point goes to *cp_r if not NULL.
 */
size_t	utf8_seqlen(const unsigned char *p, size_t n, uint32_t *cp_r);

#endif
