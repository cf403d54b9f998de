/*
 * header.h - RFC 5322 header fields, as smtpd writes them and mailcli reads
 * them: which lines can be header fields, and the date format.
 */
#ifndef CORREIO_HEADER_H
#define CORREIO_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Room for header_date()'s "Fri, 04 Dec 2026 20:31:24 +0000". */
#define HEADER_DATE_MAX	40

/*
 * Can line (len octets, without its line ending) stand in a header section?
 * A field is a name of printable US-ASCII other than ':' and a colon, with
 * blanks allowed before the colon (the obsolete syntax, RFC 5322 4.5); a
 * line starting with a blank continues the field before it (so not when
 * first). With mbox, an mbox "From " separator counts when first (a file;
 * never in SMTP text). The first line that fails ends the header section and
 * starts the body (as Python's email parser does).
 */
bool	header_is_field_line(const char *line, size_t len, bool first, bool mbox);

/* t as an RFC 5322 date-time in local time, into dst (HEADER_DATE_MAX). */
void	header_date(time_t t, char *dst, size_t len);

/* Does line (a header field line) name the field name (case-insensitive)? */
bool	header_is_named(const char *line, size_t len, const char *name);

/*
 * The octets at the start of msg (len of them, CRLF lines) taken by a first
 * header field Return-Path: with its continuation lines: what the relay
 * skips, since only the final delivery adds Return-Path (RFC 5321 4.4) and a
 * message stored once for local and remote recipients carries the local
 * copy's. 0 when msg does not start with one, or when its end is not within
 * len.
 */
size_t	header_return_path_len(const char *msg, size_t len);

#endif
