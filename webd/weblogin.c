/*
 * weblogin.c - who is asking webd: the login form and its POST (the same
 * accounts, crypt(3) hashes and name rules as POP3, checked on the
 * common/authpool.c threads; a failure waits as common/loginguard.c says,
 * exactly as pop3d's), the session cookie (random, HttpOnly,
 * SameSite=Strict, Secure under TLS, Max-Age WEBD_LOGIN_TTL; the store
 * keeps only its SHA-256), logout, API tokens (Authorization: Bearer), and
 * the CSRF token every POST must carry: the login's own for a logged-in
 * user, and for the login form a double-submit token in a short-lived
 * cookie of its own.
 * Never: logs or keeps a password; tells whether an account exists; accepts
 * a POST whose CSRF token is missing or wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "authpool.h"
#include "log.h"
#include "monotime.h"
#include "loginguard.h"
#include "markup.h"
#include "webd.h"

#define COOKIE_LOGIN	"correio_session"
#define COOKIE_PRE	"correio_login"		/* the login form's CSRF token */
#define COOKIE_MAX	256

int
weblogin_cookie(const char *header, const char *name, char *dst, size_t len)
{
	const char *p = header, *end;
	size_t n = strlen(name), vlen;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			vlen = (size_t)(end - p) - n - 1;
			while (vlen > 0 && (p[n + 1 + vlen - 1] == ' ' || p[n + 1 + vlen - 1] == '\t'))
				vlen--;
			if (vlen >= len)
				return -1;
			memcpy(dst, p + n + 1, vlen);
			dst[vlen] = '\0';
			return 0;
		}
		p = end;
	}
	return -1;
}

static int
request_cookie(struct webreq *r, const char *name, char *dst, size_t len)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Cookie");

	if (h == NULL)
		return -1;
	return weblogin_cookie(h, name, dst, len);
}

static void
set_cookie(struct webreq *r, const char *name, const char *value, const char *path, long max_age)
{
	char c[COOKIE_MAX + 128];

	snprintf(c, sizeof(c), "%s=%s; Path=%s; Max-Age=%ld; HttpOnly; SameSite=Strict%s", name,
	    value, path, max_age, r->w->ssl != NULL ? "; Secure" : "");
	webd_header(r, "Set-Cookie", c);
}

int
weblogin_form(struct webreq *r, struct evkeyvalq *form)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t n = evbuffer_get_length(in);
	char *body;
	int rc;

	TAILQ_INIT(form);
	if (n > WEBD_MAX_BODY || (body = malloc(n + 1)) == NULL)
		return -1;
	evbuffer_copyout(in, body, n);
	body[n] = '\0';
	rc = memchr(body, '\0', n) != NULL ? -1 : evhttp_parse_query_str(body, form);
	explicit_bzero(body, n);
	free(body);
	return rc;
}

bool
weblogin_csrf_ok(struct webreq *r, const struct evkeyvalq *form)
{
	const char *t = evhttp_find_header(form, "csrf");

	return t != NULL && r->csrf[0] != '\0' && webtoken_equal(t, r->csrf);
}

int
weblogin_identify(struct webreq *r, bool api)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	char cookie[COOKIE_MAX], key[WEBTOKEN_HEX + 1];
	const char *auth;
	int rc = STORE_NOTFOUND;

	r->account[0] = r->csrf[0] = '\0';
	if (request_cookie(r, COOKIE_LOGIN, cookie, sizeof(cookie)) == 0 &&
	    webtoken_is_valid(cookie)) {
		webtoken_hash(cookie, key, sizeof(key));
		rc = store_websession_get(r->w->store, key, time(NULL), r->account, r->csrf);
	} else if (api && (auth = evhttp_find_header(h, "Authorization")) != NULL &&
	    strncasecmp(auth, "Bearer ", 7) == 0 && webtoken_is_valid(auth + 7)) {
		webtoken_hash(auth + 7, key, sizeof(key));
		rc = store_token_get(r->w->store, key, r->account);
		r->by_token = rc == 0;
	}
	explicit_bzero(cookie, sizeof(cookie));
	if (rc == -1) {
		log_warnx("event=store-failed op=identify error=\"%s\"", store_errmsg(r->w->store));
		r->account[0] = '\0';
		return -1;
	}
	if (rc != 0) {
		r->account[0] = r->csrf[0] = '\0';
		return 0;
	}
	r->teacher = config_is_teacher(r->w->cfg, r->account) ||
	    store_user_is_teacher(r->w->store, r->account) == 1;
	return 0;
}

/* ---- the form ------------------------------------------------------------- */

static void
login_form(struct webreq *r, int code, const char *message)
{
	char token[WEBTOKEN_HEX + 1];
	struct buf b;

	if (webtoken_new(token, sizeof(token)) == -1) {
		webd_error(r, 503, "No randomness available; try again later");
		return;
	}
	set_cookie(r, COOKIE_PRE, token, "/login", 3600);
	buf_init(&b, WEBD_PAGE_MAX);
	html_begin(&b, r, "Log in");
	if (message != NULL)
		buf_printf(&b, "<p class=\"error\">%s</p>\n", message);	/* our own text */
	buf_printf(&b, "<form method=\"post\" action=\"/login\" class=\"login\">\n"
	    "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
	    "<label>User <input name=\"user\" id=\"user\" autocomplete=\"username\" required></label>\n"
	    "<label>Password <input type=\"password\" name=\"password\" id=\"password\" "
	    "autocomplete=\"current-password\" required></label>\n"
	    "<button type=\"submit\" id=\"login\">Log in</button>\n</form>\n"
	    "<p>The same user name and password as for POP3 (<code>ana</code> or "
	    "<code>ana@domain</code>).</p>\n", token);
	html_end(&b);
	webd_send(r, code, "text/html; charset=utf-8", &b);
	buf_free(&b);
}

void
login_page(struct webreq *r)
{
	login_form(r, 200, NULL);
}

/* A login on its way through the password check and the failure delay. */
struct pending_login {
	struct webreq	 r;		/* a copy: the handler's own is freed */
	struct authpool_job *job;
};

static void
pending_free(struct pending_login *pl)
{
	if (pl->job != NULL) {
		explicit_bzero(pl->job, sizeof(*pl->job));
		free(pl->job);
	}
	free(pl);
}

static void
login_succeeded(struct webreq *r, const char *account)
{
	char token[WEBTOKEN_HEX + 1], key[WEBTOKEN_HEX + 1], csrf[WEBTOKEN_HEX + 1];
	int rc;

	loginguard_succeeded(r->w->guard, r->peer, account);
	if (webtoken_new(token, sizeof(token)) == -1 || webtoken_new(csrf, sizeof(csrf)) == -1) {
		webd_error(r, 503, "No randomness available; try again later");
		return;
	}
	webtoken_hash(token, key, sizeof(key));
	rc = store_websession_add(r->w->store, key, account, csrf, time(NULL) + WEBD_LOGIN_TTL);
	if (rc != 0) {
		log_warnx("event=store-failed op=web-login error=\"%s\"", store_errmsg(r->w->store));
		webd_error(r, 503, "The store cannot be written now; try again later");
		return;
	}
	log_info("event=login client=%s user=%s method=web", r->peer, account);
	set_cookie(r, COOKIE_LOGIN, token, "/", WEBD_LOGIN_TTL);
	set_cookie(r, COOKIE_PRE, "", "/login", 0);
	explicit_bzero(token, sizeof(token));
	snprintf(r->account, sizeof(r->account), "%s", account);
	webd_redirect(r, "/mailbox");
}

/* The failure delay is over: answer. */
static void
delay_over(evutil_socket_t fd, short what, void *arg)
{
	struct pending_login *pl = arg;

	(void)fd;
	(void)what;
	login_form(&pl->r, 401, "Wrong user name or password.");
	pending_free(pl);
}

/* Back on the loop thread after the password check. */
static void
login_checked(struct authpool_job *job)
{
	struct pending_login *pl = job->arg;
	struct webreq *r = &pl->r;
	struct timeval tv = { 0, 0 };
	long delay;

	switch (job->result) {
	case LOGIN_OK:
		login_succeeded(r, job->account);
		break;
	case LOGIN_TEMPFAIL:
		webd_error(r, 503, "Temporary failure reading accounts; try again later");
		break;
	case LOGIN_FAILED:
		delay = loginguard_failed(r->w->guard, &r->w->cfg->limits, r->peer, job->account, 1,
		    monotime_s());
		log_info("event=auth-failed client=%s user=%s method=web delay=%ld", r->peer,
		    job->name, delay);
		tv.tv_sec = delay;
		if (delay > 0 && event_base_once(r->w->base, -1, EV_TIMEOUT, delay_over, pl, &tv) == 0)
			return;
		login_form(r, 401, "Wrong user name or password.");
		break;
	}
	pending_free(pl);
}

void
login_post(struct webreq *r)
{
	struct evkeyvalq form;
	struct pending_login *pl;
	char pre[COOKIE_MAX];
	const char *user, *pass, *csrf;

	if (weblogin_form(r, &form) == -1) {
		webd_error(r, 400, "Bad form");
		return;
	}
	user = evhttp_find_header(&form, "user");
	pass = evhttp_find_header(&form, "password");
	csrf = evhttp_find_header(&form, "csrf");
	if (csrf == NULL || request_cookie(r, COOKIE_PRE, pre, sizeof(pre)) == -1 ||
	    !webtoken_is_valid(pre) || !webtoken_equal(csrf, pre)) {
		evhttp_clear_headers(&form);
		webd_error(r, 403, "Missing or wrong CSRF token: reload the login page");
		return;
	}
	if (user == NULL || pass == NULL || *user == '\0' || strlen(user) >= AUTH_FIELD_MAX ||
	    strlen(pass) >= AUTH_FIELD_MAX || (pl = calloc(1, sizeof(*pl))) == NULL ||
	    (pl->job = calloc(1, sizeof(*pl->job))) == NULL) {
		if (pass != NULL)
			explicit_bzero((char *)pass, strlen(pass));
		evhttp_clear_headers(&form);
		login_form(r, 400, "Give a user name and a password.");
		return;
	}
	pl->r = *r;
	TAILQ_INIT(&pl->r.query);
	snprintf(pl->job->name, sizeof(pl->job->name), "%s", user);
	snprintf(pl->job->pass, sizeof(pl->job->pass), "%s", pass);
	explicit_bzero((char *)pass, strlen(pass));
	evhttp_clear_headers(&form);
	pl->job->done = login_checked;
	pl->job->arg = pl;
	authpool_submit(r->w->auth, pl->job);
}

void
logout_post(struct webreq *r)
{
	struct evkeyvalq form;
	char cookie[COOKIE_MAX], key[WEBTOKEN_HEX + 1];
	bool ok;

	if (weblogin_form(r, &form) == -1) {
		webd_error(r, 400, "Bad form");
		return;
	}
	ok = weblogin_csrf_ok(r, &form);
	evhttp_clear_headers(&form);
	if (!ok || r->by_token) {
		webd_error(r, 403, "Missing or wrong CSRF token");
		return;
	}
	if (request_cookie(r, COOKIE_LOGIN, cookie, sizeof(cookie)) == 0) {
		webtoken_hash(cookie, key, sizeof(key));
		if (store_websession_del(r->w->store, key) == -1)
			log_warnx("event=store-failed op=logout error=\"%s\"",
			    store_errmsg(r->w->store));
	}
	set_cookie(r, COOKIE_LOGIN, "", "/", 0);
	log_info("event=logout client=%s user=%s", r->peer, r->account);
	webd_redirect(r, "/login");
}
