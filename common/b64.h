/*
 * b64.h - base64 (RFC 4648 alphabet) on top of libb64, with the two fixes
 * libb64 needs: a strict decoder (libb64 silently skips characters outside the
 * alphabet; SASL input must be refused when it is not valid base64) and a MIME
 * encoder writing CRLF lines of at most 76 characters (libb64 breaks lines with
 * a bare LF every 72).
 */
#ifndef CORREIO_B64_H
#define CORREIO_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <b64/cencode.h>

/* Encode n bytes as one line without breaks (SASL). dst must hold
 * b64_encoded_len(n) + 1 bytes. Returns the length written (NUL-terminated). */
size_t	b64_encode(const void *src, size_t n, char *dst);
size_t	b64_encoded_len(size_t n);
/*
 * Strict decode: the input must be a whole number of 4-character groups of
 * the RFC 4648 alphabet with correct '=' padding, no whitespace. Returns the
 * decoded length, or -1 if the input is not valid base64 or dst (cap bytes) is
 * too small. dst is NUL-terminated when room allows.
 */
long	b64_decode_strict(const char *src, size_t n, void *dst, size_t cap);
/*
 * Lenient decode for MIME bodies: whitespace and line breaks are skipped.
 * Returns the decoded length or -1 on characters outside the alphabet.
 * The state allows decoding a stream in chunks. With skip_junk set (after
 * init), as RFC 2045 6.8 asks of a reader, characters outside the alphabet
 * and an '=' that cannot be padding (after one character of a group) are
 * skipped instead of refused: the call never returns -1.
 */
struct b64_mime_decoder {
	unsigned char quad[4];
	int	 nquad;
	bool	 done;	/* saw padding */
	bool	 skip_junk;
};
void	b64_mime_decode_init(struct b64_mime_decoder *d);
/* dst must hold at least n*3/4+3 bytes. Returns bytes written, -1 on bad input. */
long	b64_mime_decode(struct b64_mime_decoder *d, const char *src, size_t n, void *dst);

/*
 * Streaming MIME encoder: CRLF-terminated lines of exactly 76 characters
 * (the last one shorter). dst for b64_mime_encode must hold
 * b64_mime_encoded_max(n) bytes. Input that does not fill a line (57 bytes)
 * waits in the encoder until the next call or b64_mime_encode_end.
 */
#define B64_LINE_IN	57	/* input bytes per 76-character line */
struct b64_mime_encoder {
	char	 pend[B64_LINE_IN];	/* input bytes of the next line */
	size_t	 npend;
};
void	b64_mime_encode_init(struct b64_mime_encoder *e);
size_t	b64_mime_encoded_max(size_t n);
size_t	b64_mime_encode(struct b64_mime_encoder *e, const void *src, size_t n, char *dst);
/* Flush the last group and line; dst must hold 90 bytes. */
size_t	b64_mime_encode_end(struct b64_mime_encoder *e, char *dst);

#endif
