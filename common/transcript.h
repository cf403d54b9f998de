/*
 * transcript.h - session transcripts in the form a networking course uses:
 *   2026-11-25T10:00:00.123Z C: MAIL FROM:<ana@lab.test>
 *   2026-11-25T10:00:00.124Z S: 250 2.1.0 Ok
 * Secrets (AUTH data, PASS) are masked before they are recorded. Lines are
 * collected in memory and written to the store in batches by the owner of the
 * store handle (never one commit per line).
 */
#ifndef CORREIO_TRANSCRIPT_H
#define CORREIO_TRANSCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

struct transcript {
	bool	 enabled;
	char	 session_id[32];
	struct buf pending;	/* lines not yet written to the store, '\n'-separated */
};

void	transcript_init(struct transcript *t, const char *session_id, bool enabled);
void	transcript_free(struct transcript *t);
/* Record a client line. When secret, everything after the verb (and for
 * continuation lines of AUTH, the whole line) is replaced by "***". */
void	transcript_client(struct transcript *t, const char *line, size_t len, bool secret);
/* Record server text (one or several '\n'-separated lines, no CRLF). */
void	transcript_server(struct transcript *t, const char *text, size_t len);
/* Record a note from the server (TLS started, DATA summary...): "   [note]". */
void	transcript_note(struct transcript *t, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Lines waiting to be written; the caller writes them to the store with
 * store_transcript_append() and then calls transcript_flushed(). */
void	transcript_flushed(struct transcript *t);
/* Mask helper: copy line to dst, hiding the arguments of secret commands. */
void	transcript_mask(const char *line, size_t len, bool secret, char *dst, size_t dstlen);

#endif
