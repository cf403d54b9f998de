/*
 * webd.h - what the files of webd, the lab's web console, share: the server
 * (struct webd), one request being answered (struct webreq), the route
 * table's handlers, and the helpers every page uses to answer.
 *
 *   http.c        evhttp glue: listeners, TLS, limits, security headers,
 *                 one request from the URI to its route and back
 *   route.c       the route table and the matcher (method, path, parameters)
 *   weblogin.c    GET/POST /login, POST /logout, cookies, CSRF, who asks
 *   html.c        the page layout and small formatting helpers
 *   pages_mail.c  /mailbox, /mailbox/N and its parts and raw source
 *   pages_sessions.c  /sessions, /sessions/ID, the teachers' live view
 *   api.c         /api/...: the same data as JSON
 *   wellknown.c   Thunderbird autoconfig, the static script and style sheet
 *
 * Never: writes to the store except its own web logins; maps a URL to a file.
 */
#ifndef CORREIO_WEBD_H
#define CORREIO_WEBD_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>

#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "config.h"
#include "store.h"
#include "webtoken.h"

#define WEBD_LOGIN_TTL		(8 * 3600)	/* seconds a web login lasts */
#define WEBD_MAX_HEADERS	8192		/* octets of request line and headers */
#define WEBD_MAX_BODY		16384		/* octets of a request body (forms) */
#define WEBD_TIMEOUT		10		/* seconds of silence before a client is cut */
#define WEBD_PAGE_MAX		(64u << 20)	/* the largest answer built in memory */
#define WEBD_PARAM_MAX		64		/* one parameter of a route (an id) */
#define WEBD_ROUTE_PARAMS	2

struct authpool;
struct loginguard;

struct webd {
	struct config	*cfg;
	struct event_base *base;
	struct evhttp	*http;
	struct store	*store;
	struct authpool	*auth;
	struct loginguard *guard;
	SSL_CTX		*ssl;		/* HTTPS when not NULL */
	uint64_t	 nrequests;
};

/* Who may use a route. */
enum route_auth {
	ROUTE_PUBLIC,		/* anyone */
	ROUTE_USER,		/* a web login (or an API token on /api/) */
	ROUTE_TEACHER		/* a teacher's login or token */
};

/* One request being answered. */
struct webreq {
	struct webd	*w;
	struct evhttp_request *req;
	const char	*path;			/* the URI's path, as sent */
	struct evkeyvalq query;			/* decoded ?key=value pairs */
	char		 param[WEBD_ROUTE_PARAMS][WEBD_PARAM_MAX];	/* from the route */
	char		 peer[64];		/* the client's address */
	char		 account[STORE_NAME_MAX + 1];	/* "" when nobody is logged in */
	char		 csrf[STORE_CSRF_MAX + 1];	/* the web login's CSRF token */
	bool		 teacher;
	bool		 by_token;		/* an API token, not a cookie */
};

typedef void route_handler(struct webreq *r);

struct route_def {
	enum evhttp_cmd_type method;
	const char	*pattern;	/* "/mailbox/#": # digits, * a token (route.c) */
	enum route_auth	 auth;
	route_handler	*handler;
};

/* route.c */
extern const struct route_def webd_routes[];
extern const size_t webd_nroutes;
/*
 * Find the route of (method, path) in table: the matching entry with its
 * parameters in params (WEBD_ROUTE_PARAMS of WEBD_PARAM_MAX bytes), or NULL
 * with *path_known true when the path exists under another method (405).
 */
const struct route_def *route_match(const struct route_def *table, size_t n,
	    enum evhttp_cmd_type method, const char *path,
	    char params[WEBD_ROUTE_PARAMS][WEBD_PARAM_MAX], bool *path_known);

/* http.c: answering. Each sends the reply exactly once. */
/* Send body (may be NULL) with code and content type, plus the security
 * headers every answer carries. */
void	webd_send(struct webreq *r, int code, const char *type, const struct buf *body);
void	webd_not_found(struct webreq *r);
void	webd_error(struct webreq *r, int code, const char *why);
void	webd_redirect(struct webreq *r, const char *location);
/* Add a response header. */
void	webd_header(struct webreq *r, const char *name, const char *value);
/* The query value of key, or NULL. */
const char *webd_query(struct webreq *r, const char *key);
/* Release what a request holds (its query); called by http.c after the handler. */
void	webd_req_done(struct webreq *r);

/* weblogin.c */
void	login_page(struct webreq *r);
void	login_post(struct webreq *r);
void	logout_post(struct webreq *r);
/* Identify who asks (cookie, or Bearer token when api): fills r->account,
 * r->csrf, r->teacher. 0 (maybe nobody), -1 (the store failed). */
int	weblogin_identify(struct webreq *r, bool api);
/* A POST's form has the right CSRF token for r's login. */
bool	weblogin_csrf_ok(struct webreq *r, const struct evkeyvalq *form);
/* Parse an x-www-form-urlencoded body into form (evhttp's decoder). 0 or -1. */
int	weblogin_form(struct webreq *r, struct evkeyvalq *form);
/*
 * The value of cookie name in a Cookie: header into dst (len bytes): 0, or
 * -1 when absent or too long. Pure: the unit tests drive it.
 */
int	weblogin_cookie(const char *header, const char *name, char *dst, size_t len);

/* html.c */
/* Start a page: doctype, head (title escaped, the style sheet), the
 * navigation for r's account (with the logout form and its CSRF token). */
int	html_begin(struct buf *b, struct webreq *r, const char *title);
int	html_end(struct buf *b);
/* "2026-11-25 10:00:00 UTC" of a unix time. */
void	html_time(char *dst, size_t len, int64_t t);
/* Append a percent-encoded path segment (for links built from ids). */
int	html_url_segment(struct buf *b, const char *s);

/* pages_mail.c */
void	page_mailbox(struct webreq *r);
void	page_message(struct webreq *r);
void	page_part(struct webreq *r);
void	page_raw(struct webreq *r);
/* Load message param (entry id) of r's account into msg (malloc'd, NUL
 * after it) and info: 0, or it answered (404, 500) and returns -1. */
int	mail_load(struct webreq *r, const char *param, struct store_msg_info *info,
	    struct buf *msg);
/* The session id in the newest Received: "... id SESSIONID" of a message
 * whose store entry does not name it. */
void	mail_received_session(const char *msg, size_t len, char *dst, size_t dstlen);
/* Message headers and the first octets of every message of r's account,
 * for the listings: calls row() for each, newest first. 0 or -1. */
struct mail_row {
	int64_t	 id, size, arrived;
	char	 date[128], from[256], subject[512];
};
int	mail_rows(struct webreq *r, void (*row)(void *arg, const struct mail_row *m), void *arg);

/* pages_sessions.c */
void	page_sessions(struct webreq *r);
void	page_session(struct webreq *r);
void	page_live(struct webreq *r);
void	page_queue(struct webreq *r);	/* teachers: the relay queue */
/* May r see session id? 1 yes, 0 no (answer 404), -1 the store failed. */
int	session_visible(struct webreq *r, const char *id);
/* Fill f from the query (?user= ?client= ?since= ?text=), forced to r's own
 * account unless r is a teacher. */
struct store_session_filter;
void	session_filter(struct webreq *r, struct store_session_filter *f);

/* api.c */
void	api_mailbox(struct webreq *r);
void	api_message(struct webreq *r);
void	api_sessions(struct webreq *r);
void	api_session(struct webreq *r);

/* wellknown.c */
void	wellknown_autoconfig(struct webreq *r);
void	wellknown_script(struct webreq *r);
void	wellknown_style(struct webreq *r);
void	wellknown_index(struct webreq *r);

/* http.c: set up the HTTP server on w->base over every [webd] listen
 * address. fatal on start-up errors. */
void	webd_http_start(struct webd *w);

#endif
