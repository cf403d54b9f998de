/*
 * http.c - webd's libevent evhttp glue: the listeners (HTTPS with the [tls]
 * certificate, else plain HTTP on loopback addresses only), the limits on
 * every connection (header and body size, seconds of silence), and one
 * request from its URI through the route table to the handler and back,
 * with the security headers every answer carries (CSP without inline
 * script, nosniff, no framing, no caching, no referrer).
 * Never: maps a path to a file; answers a request twice; lets a handler run
 * for someone its route does not admit (they get 404, as for a missing page).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "log.h"
#include "numparse.h"
#include "webd.h"

static const char *const security_headers[][2] = {
	{ "Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "
	    "img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
	    "frame-ancestors 'none'" },
	{ "X-Content-Type-Options", "nosniff" },
	{ "X-Frame-Options", "DENY" },
	{ "Referrer-Policy", "no-referrer" },
	{ "Cache-Control", "no-store" },
};

void
webd_header(struct webreq *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

void
webd_send(struct webreq *r, int code, const char *type, const struct buf *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *out = evbuffer_new();
	size_t i;

	for (i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
		evhttp_add_header(h, security_headers[i][0], security_headers[i][1]);
	if (r->w->ssl != NULL)
		evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	if (type != NULL)
		evhttp_add_header(h, "Content-Type", type);
	if (out != NULL && body != NULL && body->len > 0)
		evbuffer_add(out, body->data, body->len);
	log_info("event=http client=%s method=%d path=\"%.200s\" user=%s code=%d bytes=%zu",
	    r->peer, (int)evhttp_request_get_command(r->req), r->path,
	    r->account[0] ? r->account : "-", code, body != NULL ? body->len : 0);
	evhttp_send_reply(r->req, code, NULL, out);
	if (out != NULL)
		evbuffer_free(out);
}

void
webd_error(struct webreq *r, int code, const char *why)
{
	struct buf b;

	buf_init(&b, WEBD_PAGE_MAX);
	if (html_begin(&b, r, why) == 0 && buf_puts(&b, "<p>") == 0 &&
	    buf_printf(&b, "%d ", code) == 0) {
		buf_puts(&b, why);	/* a constant text of ours */
		buf_puts(&b, "</p>");
		html_end(&b);
	}
	webd_send(r, code, "text/html; charset=utf-8", &b);
	buf_free(&b);
}

void
webd_not_found(struct webreq *r)
{
	webd_error(r, 404, "Not found");
}

void
webd_redirect(struct webreq *r, const char *location)
{
	webd_header(r, "Location", location);
	webd_send(r, 303, NULL, NULL);
}

const char *
webd_query(struct webreq *r, const char *key)
{
	return evhttp_find_header(&r->query, key);
}

void
webd_req_done(struct webreq *r)
{
	evhttp_clear_headers(&r->query);
}

/* The client's address for logs and the failed-login policy. */
static void
peer_of(struct evhttp_request *req, char *dst, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	snprintf(dst, len, "?");
	if (evcon != NULL) {
		evhttp_connection_get_peer(evcon, &addr, &port);
		if (addr != NULL)
			snprintf(dst, len, "%s", addr);
	}
}

/* One request: parse the URI, find the route, identify the user, run it. */
static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct webd *w = arg;
	struct webreq *r;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const struct route_def *route;
	const char *path, *query;
	bool path_known, api;

	w->nrequests++;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		evhttp_send_error(req, 503, "Out of memory");
		return;
	}
	r->w = w;
	r->req = req;
	TAILQ_INIT(&r->query);
	peer_of(req, r->peer, sizeof(r->peer));
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	r->path = path != NULL ? path : "";
	query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	if (path == NULL || *path != '/' || (query != NULL &&
	    evhttp_parse_query_str(query, &r->query) == -1)) {
		webd_error(r, 400, "Bad request");
		goto done;
	}
	route = route_match(webd_routes, webd_nroutes, evhttp_request_get_command(req), path,
	    r->param, &path_known);
	if (route == NULL) {
		if (path_known)
			webd_error(r, 405, "Method not allowed");
		else
			webd_not_found(r);
		goto done;
	}
	api = strncmp(path, "/api/", 5) == 0;
	if (route->auth != ROUTE_PUBLIC || strcmp(path, "/") == 0) {
		/* A store deleted or replaced under webd (logged by the store):
		 * what webd still has open is a file nobody else sees. */
		if (store_file_check(w->store) != 0) {
			webd_error(r, 503, "The mail store is unavailable (its file was deleted or "
			    "replaced); try again later");
			goto done;
		}
		if (weblogin_identify(r, api) == -1) {
			webd_error(r, 503, "The store cannot be read now; try again later");
			goto done;
		}
	}
	if (route->auth != ROUTE_PUBLIC && r->account[0] == '\0') {
		if (api) {
			webd_header(r, "WWW-Authenticate", "Bearer");
			webd_error(r, 401, "Log in first");
		} else
			webd_redirect(r, "/login");
		goto done;
	}
	if (route->auth == ROUTE_TEACHER && !r->teacher) {
		webd_not_found(r);
		goto done;
	}
	route->handler(r);
done:
	webd_req_done(r);
	free(r);
}

/* Each connection under TLS gets its own SSL object. */
static struct bufferevent *
tls_bevcb(struct event_base *base, void *arg)
{
	struct webd *w = arg;
	SSL *ssl = SSL_new(w->ssl);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
}

static bool
is_loopback_host(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

void
webd_http_start(struct webd *w)
{
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char host[64];
	size_t i;
	uint32_t pnum;
	int port;

	if ((w->http = evhttp_new(w->base)) == NULL)
		fatalx("cannot create the HTTP server");
	evhttp_set_max_headers_size(w->http, WEBD_MAX_HEADERS);
	evhttp_set_max_body_size(w->http, WEBD_MAX_BODY);
	evhttp_set_timeout(w->http, WEBD_TIMEOUT);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(w->http, request_cb, w);
	if (w->ssl != NULL)
		evhttp_set_bevcb(w->http, tls_bevcb, w);
	for (i = 0; i < w->cfg->webd_nlisten; i++) {
		const struct listen_spec *ls = &w->cfg->webd_listen[i];

		if (w->ssl == NULL && !is_loopback_host(ls->host))
			fatalx("listen %s:%s: without [tls] cert and key webd serves plain HTTP "
			    "on loopback addresses only", ls->host, ls->port);
		snprintf(host, sizeof(host), "%s", ls->host);
		if (numparse_u32z(ls->port, 65535, &pnum) != NUMPARSE_OK)
			fatalx("listen %s:%s: bad port", ls->host, ls->port);
		if ((bound = evhttp_bind_socket_with_handle(w->http, host,
		    (ev_uint16_t)pnum)) == NULL)
			fatal("listen %s:%s", ls->host, ls->port);
		sslen = sizeof(ss);
		port = -1;
		if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss,
		    &sslen) == 0)
			port = ntohs(ss.ss_family == AF_INET6 ?
			    ((struct sockaddr_in6 *)&ss)->sin6_port :
			    ((struct sockaddr_in *)&ss)->sin_port);
		log_info("event=listening addr=%s port=%d role=%s", ls->host, port,
		    w->ssl ? "https" : "http");
	}
}
