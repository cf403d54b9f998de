/*
 * route.c - the table of what webd answers, and the matcher. A pattern is
 * a path whose segments are literal, "#" (1-18 digits) or "*" (1 to
 * WEBD_PARAM_MAX - 1 letters, digits, '-' or '_'): nothing in a URL is ever
 * used as a file name, and an id reaches a handler only in that shape.
 */
#include <string.h>

#include "webd.h"

const struct route_def webd_routes[] = {
	{ EVHTTP_REQ_GET,  "/",				ROUTE_PUBLIC,	wellknown_index },
	{ EVHTTP_REQ_GET,  "/login",			ROUTE_PUBLIC,	login_page },
	{ EVHTTP_REQ_POST, "/login",			ROUTE_PUBLIC,	login_post },
	{ EVHTTP_REQ_POST, "/logout",			ROUTE_USER,	logout_post },
	{ EVHTTP_REQ_GET,  "/mailbox",			ROUTE_USER,	page_mailbox },
	{ EVHTTP_REQ_GET,  "/mailbox/#",		ROUTE_USER,	page_message },
	{ EVHTTP_REQ_GET,  "/mailbox/#/raw",		ROUTE_USER,	page_raw },
	{ EVHTTP_REQ_GET,  "/mailbox/#/part/#",		ROUTE_USER,	page_part },
	{ EVHTTP_REQ_GET,  "/sessions",			ROUTE_USER,	page_sessions },
	{ EVHTTP_REQ_GET,  "/sessions/live",		ROUTE_TEACHER,	page_live },
	{ EVHTTP_REQ_GET,  "/queue",			ROUTE_TEACHER,	page_queue },
	{ EVHTTP_REQ_GET,  "/sessions/*",		ROUTE_USER,	page_session },
	{ EVHTTP_REQ_GET,  "/api/mailbox",		ROUTE_USER,	api_mailbox },
	{ EVHTTP_REQ_GET,  "/api/mailbox/#",		ROUTE_USER,	api_message },
	{ EVHTTP_REQ_GET,  "/api/sessions",		ROUTE_USER,	api_sessions },
	{ EVHTTP_REQ_GET,  "/api/sessions/*",		ROUTE_USER,	api_session },
	{ EVHTTP_REQ_GET,  "/.well-known/autoconfig/mail/config-v1.1.xml", ROUTE_PUBLIC,
	    wellknown_autoconfig },
	{ EVHTTP_REQ_GET,  "/mail/config-v1.1.xml",	ROUTE_PUBLIC,	wellknown_autoconfig },
	{ EVHTTP_REQ_GET,  "/static/live.js",		ROUTE_PUBLIC,	wellknown_script },
	{ EVHTTP_REQ_GET,  "/static/style.css",		ROUTE_PUBLIC,	wellknown_style },
};
const size_t webd_nroutes = sizeof(webd_routes) / sizeof(webd_routes[0]);

static bool
param_char(char c, bool digits)
{
	if (c >= '0' && c <= '9')
		return true;
	return !digits && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_');
}

/* Match path against pattern; parameters go to params. */
static bool
match(const char *pattern, const char *path, char params[WEBD_ROUTE_PARAMS][WEBD_PARAM_MAX])
{
	const char *p = pattern, *s = path;
	size_t np = 0, n, max;

	while (*p != '\0') {
		if (*p == '#' || *p == '*') {
			max = *p == '#' ? 18 : WEBD_PARAM_MAX - 1;
			for (n = 0; param_char(s[n], *p == '#'); n++)
				;
			if (n == 0 || n > max || np >= WEBD_ROUTE_PARAMS)
				return false;
			memcpy(params[np], s, n);
			params[np][n] = '\0';
			np++;
			s += n;
			p++;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return *s == '\0';
}

const struct route_def *
route_match(const struct route_def *table, size_t n, enum evhttp_cmd_type method,
    const char *path, char params[WEBD_ROUTE_PARAMS][WEBD_PARAM_MAX], bool *path_known)
{
	size_t i;
	/* HEAD is answered as GET; evhttp leaves the body out. */
	enum evhttp_cmd_type m = method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : method;

	*path_known = false;
	for (i = 0; i < n; i++) {
		if (!match(table[i].pattern, path, params))
			continue;
		if (table[i].method == m)
			return &table[i];
		*path_known = true;
	}
	return NULL;
}
