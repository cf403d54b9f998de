/*
 * html.c - the frame of every webd page: doctype, head with the one style
 * sheet (no inline style or script: the Content-Security-Policy forbids
 * them), the navigation for the logged-in account with the logout form and
 * its CSRF token, and small formatting helpers. Values from mail,
 * transcripts or requests are escaped by common/markup.c, here and in every
 * page.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "markup.h"
#include "webd.h"

int
html_begin(struct buf *b, struct webreq *r, const char *title)
{
	buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
	markup_html_str(b, title);
	buf_puts(b, " - correio</title>\n<link rel=\"stylesheet\" href=\"/static/style.css\">\n"
	    "</head>\n<body>\n<header><span class=\"brand\">correio</span>\n");
	if (r->account[0] != '\0' && !r->by_token) {
		buf_puts(b, "<nav><a href=\"/mailbox\">Mailbox</a> <a href=\"/sessions\">Sessions</a>");
		if (r->teacher)
			buf_puts(b, " <a href=\"/sessions/live\">Live</a> <a href=\"/queue\">Queue</a>");
		buf_puts(b, "</nav>\n<form method=\"post\" action=\"/logout\" class=\"logout\">"
		    "<span class=\"who\" id=\"who\">");
		markup_html_str(b, r->account);
		if (r->teacher)
			buf_puts(b, " (teacher)");
		buf_puts(b, "</span> <input type=\"hidden\" name=\"csrf\" value=\"");
		markup_html_str(b, r->csrf);
		buf_puts(b, "\"><button type=\"submit\" id=\"logout\">Log out</button></form>\n");
	}
	buf_puts(b, "</header>\n<main>\n<h1>");
	markup_html_str(b, title);
	return buf_puts(b, "</h1>\n");
}

int
html_end(struct buf *b)
{
	return buf_puts(b, "</main>\n</body>\n</html>\n");
}

void
html_time(char *dst, size_t len, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(dst, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(dst, len, "-");
}

int
html_url_segment(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.') {
			if (buf_append(b, p, 1) == -1)
				return -1;
		} else if (buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]) == -1)
			return -1;
	}
	return 0;
}
