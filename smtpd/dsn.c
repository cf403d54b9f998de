/*
 * dsn.c - builds bounce messages: RFC 6522 multipart/report with
 * report-type=delivery-status, an explanation for people, the RFC 3464
 * per-message and per-recipient fields (Reporting-MTA, Arrival-Date,
 * Final-Recipient, Action: failed, Status, Remote-MTA, Diagnostic-Code,
 * Last-Attempt-Date) and the original header section (text/rfc822-headers).
 * Must never: put a CR, LF or non-ASCII byte of a remote reply into a
 * header field, emit a line over 998 octets, or quote the original body.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dsn.h"

bool
dsn_wanted(const char *sender)
{
	return sender != NULL && sender[0] != '\0';
}

size_t
dsn_header_len(const char *msg, size_t n)
{
	size_t i, last = 0;

	if (n >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 0;	/* no header section at all */
	for (i = 0; i < n; i++) {
		if (msg[i] != '\n')
			continue;
		last = i + 1;
		/* The header section ends at the first empty line. */
		if (i + 2 < n && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return last;
		if (i + 1 < n && msg[i + 1] == '\n')
			return last;
	}
	return last;
}

void
dsn_date(int64_t t, char *dst, size_t len)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	/* Spelled out by hand: strftime's %a/%b follow the locale. */
	gmtime_r(&tt, &tm);
	snprintf(dst, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* Printable ASCII only, one line, at most DSN_TEXT_MAX octets. */
static void
clean(char *dst, size_t len, const char *src)
{
	size_t o = 0, max = len - 1 < DSN_TEXT_MAX ? len - 1 : DSN_TEXT_MAX;
	bool space = false;

	for (; src != NULL && *src != '\0' && o < max; src++) {
		unsigned char c = (unsigned char)*src;

		if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
			space = o > 0;
			continue;
		}
		if (space && o + 1 < max)
			dst[o++] = ' ';
		space = false;
		dst[o++] = c >= 0x21 && c < 0x7f ? (char)c : '?';
	}
	dst[o] = '\0';
}

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80 || (unsigned char)*s < 0x20)
			return false;
	return true;
}

/* "rfc822; a@b", or RFC 6533 "utf-8; ..." for an internationalised address. */
static int
put_addr_field(struct buf *out, const char *field, const char *addr)
{
	if (is_ascii(addr))
		return buf_printf(out, "%s: rfc822; %s\r\n", field, addr);
	/* RFC 6533 3: an SMTPUTF8 address in UTF-8; queued addresses were
	 * checked by mailaddr.c, so there is no control byte in them. */
	return buf_printf(out, "%s: utf-8; %s\r\n", field, addr);
}

int
dsn_build(struct buf *out, const struct dsn_msg *m, const struct dsn_rcpt *rcpts,
    size_t n, const char *orig, size_t origlen)
{
	char date[64], boundary[128], text[DSN_TEXT_MAX + 1], mta[300], addr[400];
	size_t hlen, i;
	unsigned tries;
	int r = 0;

	hlen = dsn_header_len(orig, origlen);
	if (hlen > DSN_HEADERS_MAX)
		hlen = dsn_header_len(orig, DSN_HEADERS_MAX);
	/* A boundary that cannot occur in the quoted headers (RFC 2046 5.1.1). */
	for (tries = 0;; tries++) {
		snprintf(boundary, sizeof(boundary), "=_correio-dsn-%u-%s", tries, m->msgid);
		if (hlen == 0 || memmem(orig, hlen, boundary, strlen(boundary)) == NULL)
			break;
	}
	dsn_date(m->now, date, sizeof(date));
	r |= buf_printf(out, "Date: %s\r\n", date);
	r |= buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    m->reporting_mta);
	clean(addr, sizeof(addr), m->sender);
	r |= buf_printf(out, "To: <%s>\r\n", addr);
	r |= buf_printf(out, "Subject: Undelivered Mail Returned to Sender\r\n");
	r |= buf_printf(out, "Message-ID: <%s>\r\n", m->msgid);
	r |= buf_printf(out, "Auto-Submitted: auto-replied\r\n");	/* RFC 3834 5 */
	r |= buf_printf(out, "MIME-Version: 1.0\r\n");
	r |= buf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n\r\n", boundary);
	r |= buf_printf(out, "This is a MIME-encapsulated delivery status report.\r\n\r\n");

	/* Part 1: for people. */
	r |= buf_printf(out, "--%s\r\n", boundary);
	r |= buf_printf(out, "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Description: Notification\r\n\r\n");
	r |= buf_printf(out, "This is the mail system at host %s.\r\n\r\n", m->reporting_mta);
	r |= buf_printf(out, "Your message could not be delivered to %s.\r\n",
	    n == 1 ? "one recipient" : "some recipients");
	r |= buf_printf(out, "It was not delivered there and will not be retried.\r\n"
	    "The reason for each recipient follows; a machine-readable report\r\n"
	    "and the headers of your message are attached.\r\n\r\n");
	for (i = 0; i < n; i++) {
		clean(addr, sizeof(addr), rcpts[i].addr);
		if (rcpts[i].reply != NULL) {
			clean(mta, sizeof(mta), rcpts[i].remote_mta ? rcpts[i].remote_mta : "?");
			clean(text, sizeof(text), rcpts[i].reply);
			r |= buf_printf(out, "<%s>: host %s said:\r\n    %s\r\n\r\n", addr, mta, text);
		} else {
			clean(text, sizeof(text), rcpts[i].reason ? rcpts[i].reason : "delivery failed");
			r |= buf_printf(out, "<%s>: %s\r\n\r\n", addr, text);
		}
	}

	/* Part 2: RFC 3464 2.1 per-message fields, then one block per recipient. */
	r |= buf_printf(out, "--%s\r\n", boundary);
	r |= buf_printf(out, "Content-Type: message/delivery-status\r\n"
	    "Content-Description: Delivery report\r\n\r\n");
	r |= buf_printf(out, "Reporting-MTA: dns; %s\r\n", m->reporting_mta);
	if (m->arrival > 0) {
		dsn_date(m->arrival, date, sizeof(date));
		r |= buf_printf(out, "Arrival-Date: %s\r\n", date);
	}
	for (i = 0; i < n; i++) {
		r |= buf_puts(out, "\r\n");
		r |= put_addr_field(out, "Final-Recipient", rcpts[i].addr);
		r |= buf_printf(out, "Action: failed\r\n");
		r |= buf_printf(out, "Status: %s\r\n", rcpts[i].status);
		if (rcpts[i].remote_mta != NULL) {
			/* RFC 3464 2.3.5: the name only; "[addr:port]" is for people. */
			clean(mta, sizeof(mta), rcpts[i].remote_mta);
			mta[strcspn(mta, "[")] = '\0';
			if (mta[0] != '\0')
				r |= buf_printf(out, "Remote-MTA: dns; %s\r\n", mta);
		}
		if (rcpts[i].reply != NULL) {
			clean(text, sizeof(text), rcpts[i].reply);
			r |= buf_printf(out, "Diagnostic-Code: smtp; %s\r\n", text);
		} else if (rcpts[i].reason != NULL) {
			clean(text, sizeof(text), rcpts[i].reason);
			r |= buf_printf(out, "Diagnostic-Code: X-Correio; %s\r\n", text);
		}
		if (rcpts[i].last_attempt > 0) {
			dsn_date(rcpts[i].last_attempt, date, sizeof(date));
			r |= buf_printf(out, "Last-Attempt-Date: %s\r\n", date);
		}
	}
	r |= buf_puts(out, "\r\n");

	/* Part 3: the original header section (RFC 6522 3: text/rfc822-headers). */
	r |= buf_printf(out, "--%s\r\n", boundary);
	r |= buf_printf(out, "Content-Type: text/rfc822-headers\r\n"
	    "Content-Description: Undelivered Message Headers\r\n\r\n");
	r |= buf_append(out, orig, hlen);
	if (hlen > 0 && orig[hlen - 1] != '\n')
		r |= buf_puts(out, "\r\n");
	r |= buf_printf(out, "\r\n--%s--\r\n", boundary);
	return r == 0 ? 0 : -1;
}
