/*
 * header.c - RFC 5322 header section rules shared by smtpd (which repairs
 * text typed without headers at DATA) and mailcli (which reads messages).
 * Pure functions: no allocation, no I/O.
 */
#include <string.h>
#include <strings.h>

#include "header.h"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

bool
header_is_field_line(const char *line, size_t len, bool first, bool mbox)
{
	size_t i = 0;

	if (len > 0 && is_wsp(line[0]))
		return !first;
	if (first && mbox && len >= 5 && memcmp(line, "From ", 5) == 0)
		return true;
	while (i < len && line[i] != ':' && (unsigned char)line[i] > 32 &&
	    (unsigned char)line[i] < 127)
		i++;
	if (i == 0)
		return false;
	while (i < len && is_wsp(line[i]))
		i++;
	return i < len && line[i] == ':';
}

bool
header_is_named(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name), i;

	if (len < n || strncasecmp(line, name, n) != 0)
		return false;
	for (i = n; i < len && is_wsp(line[i]); i++)
		;
	return i < len && line[i] == ':';
}

void
header_date(time_t t, char *dst, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(dst, len, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 && len > 0)
		dst[0] = '\0';
}

/* The offset just past the CRLF that ends the line starting at i, or 0. */
static size_t
line_end(const char *s, size_t len, size_t i)
{
	const char *nl = memchr(s + i, '\n', len - i);

	if (nl == NULL || nl == s + i || nl[-1] != '\r')
		return 0;
	return (size_t)(nl - s) + 1;
}

size_t
header_return_path_len(const char *msg, size_t len)
{
	size_t end;

	if ((end = line_end(msg, len, 0)) == 0 || !header_is_named(msg, end - 2, "Return-Path"))
		return 0;
	while (end < len && (msg[end] == ' ' || msg[end] == '\t'))
		if ((end = line_end(msg, len, end)) == 0)
			return 0;
	return end;
}
