/*
 * dsn.h - delivery status notifications (bounces) for the relay: RFC 3464
 * message/delivery-status inside an RFC 6522 multipart/report, with a
 * human-readable first part and the original message's header section as
 * text/rfc822-headers. The DSN itself has the null reverse-path, so it can
 * never be bounced in turn (RFC 5321 6.1, RFC 3464 2.2.3); dsn_wanted()
 * refuses to bounce anything sent with the null reverse-path.
 * Builds bytes only: delivering them is relay.c's job.
 */
#ifndef CORREIO_DSN_H
#define CORREIO_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define DSN_HEADERS_MAX		(64 * 1024)	/* original header octets quoted */
#define DSN_TEXT_MAX		400		/* octets of a reply quoted per recipient */
#define DSN_MSGID_MAX		128		/* the bounce's Message-ID, with its NUL */

/* One recipient that failed for good. Strings are the caller's. */
struct dsn_rcpt {
	const char *addr;		/* the recipient as queued: local@domain */
	const char *status;		/* RFC 3463 code: "5.1.1", "4.4.7" */
	const char *remote_mta;		/* host that gave the reply, or NULL */
	const char *reply;		/* that host's reply "550 5.1.1 ...", or NULL */
	const char *reason;		/* our own explanation when there is no reply */
	int64_t	 last_attempt;		/* unix time, 0 = none */
};

/* The failed message. Strings are the caller's. */
struct dsn_msg {
	const char *reporting_mta;	/* this server's hostname */
	const char *sender;		/* envelope sender: the DSN goes there */
	const char *msgid;		/* Message-ID for the DSN, without <> */
	int64_t	 arrival;		/* when the message was queued */
	int64_t	 now;			/* the DSN's Date */
};

/* True when a failure of a message from sender may be reported: never for
 * the null reverse-path "" (a DSN or another bounce). */
bool	dsn_wanted(const char *sender);

/*
 * Length of the header section at the start of msg (up to and including the
 * CRLF before the empty line). When no empty line is found in n octets, the
 * length of the complete lines found, so a truncated read never cuts a line.
 */
size_t	dsn_header_len(const char *msg, size_t n);

/*
 * Append the whole DSN (RFC 5322 header and MIME body, CRLF line ends) to
 * out: one report for the n recipients of the same message. orig is the
 * start of the original message (at least its header section when it has
 * one); at most DSN_HEADERS_MAX octets of its headers are quoted.
 * Returns 0, or -1 when out's limit is reached.
 */
int	dsn_build(struct buf *out, const struct dsn_msg *m, const struct dsn_rcpt *rcpts,
	    size_t n, const char *orig, size_t origlen);

/* RFC 5322 3.3 date-time of t in UTC ("Wed, 25 Nov 2026 23:05:35 +0000"). */
void	dsn_date(int64_t t, char *dst, size_t len);

#endif
