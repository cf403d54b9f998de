/*
 * net.c - the libevent glue of smtpd and pop3d: listeners (IPv4 and IPv6),
 * accepted connections as bufferevents, the connection limits (total and per
 * client address), read/write timeouts, output watermarks (back-pressure and
 * pipelining-flood protection), STARTTLS/STLS (RFC 3207 5, RFC 2595 4: unread
 * plaintext is discarded before the handshake) and implicit TLS (RFC 8314).
 *
 * This is the only file that touches a bufferevent: it implements the
 * connection interface of conn.h for real sockets (sessions see two
 * evbuffers, timers and the callbacks of struct conn_handler). A session is
 * never freed from inside one of its own callbacks: closing is deferred to
 * the next turn of the event loop, which then calls closed() exactly once.
 * Closing a TLS connection sends close_notify (RFC 8446 6.1).
 *
 * Direct writes (plain sockets): libevent's own way to send a reply is to
 * add the socket to epoll for writing, wait for the loop to say it is
 * writable, write, and remove it again - two epoll_ctl and one more loop
 * turn per reply. A plain connection instead keeps EV_WRITE off: output the
 * session adds marks it dirty, and one event run after the current callbacks
 * writes every dirty connection's output straight to its socket (replies of
 * a pipelined group and of every connection served in this turn leave
 * together). Only what the kernel does not take at once falls back to
 * libevent's EV_WRITE until it has drained.
 *
 * Direct reads (plain sockets): libevent's socket bufferevent asks the
 * kernel how much is waiting (an ioctl(FIONREAD)) before every read, a
 * system call per SMTP command. A plain connection reads its socket itself
 * instead (conn_read_direct: one read(2) of at most NET_READ_MAX octets into
 * the bufferevent's input), with an event of its own that read_on() and
 * read_off() add and remove, carrying the read timeout. TLS connections,
 * and a plain one once it starts TLS, read through libevent.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "net.h"

#define NET_MAX_LISTENERS	32
#define NET_ADDR_BUCKETS	1024
#define NET_READ_HIGHWM		(64 * 1024)	/* input buffered before reading stops */
#define NET_READ_MAX		(16 * 1024)	/* one direct read, as libevent's */
#define NET_WRITE_HIGHWM	(256 * 1024)	/* output buffered before input is paused */

struct net_listener {
	struct evconnlistener	*ev;
	struct listen_spec	 spec;
	int			 port;
	struct net_server	*srv;
};

/* Connections per client address, for max_connections_per_addr. */
struct addr_count {
	struct addr_count	*next;
	char			 addr[INET6_ADDRSTRLEN];
	long			 count;
};

struct net_server {
	struct event_base	*base;
	const struct limits	*lim;
	struct conn_handler	 cb;
	void			*arg;
	SSL_CTX			*ssl;
	struct net_listener	 listeners[NET_MAX_LISTENERS];
	size_t			 nlisteners;
	size_t			 nconns;
	struct addr_count	*addrs[NET_ADDR_BUCKETS];
	struct event		*flush_ev;	/* writes the dirty connections */
	struct net_conn		*dirty;		/* plain connections with output to write */
	char			 rbuf[NET_READ_MAX];	/* direct reads land here first */
};

struct net_conn {
	struct conn		 base;		/* the interface (conn.h); first */
	struct net_server	*srv;
	struct net_listener	*listener;
	struct bufferevent	*bev;
	void			*session;
	char			*peerstr;	/* base.peer_str */
	char			 tlsinfo[96];
	size_t			 write_highwm;
	bool			 tls_pending;	/* STARTTLS asked: upgrade once output is flushed */
	bool			 paused;	/* paused by the session */
	bool			 throttled;	/* paused by us: output above the high watermark */
	bool			 closing;	/* no more callbacks but closed */
	bool			 flush_then_close;
	bool			 finalizing;	/* finalize scheduled */
	bool			 eof;		/* the client half-closed; finish its input first */
	enum conn_close_reason	 why;
	struct event		*resume;	/* deferred read after un-pausing */
	struct event		*finalize;	/* frees it on a turn of its own */
	struct evbuffer_cb_entry *under_cb;	/* watches the TLS filter's socket output */
	struct evbuffer_cb_entry *out_cb;	/* direct writes: output added */
	bool			 direct;	/* plain socket: we write, not libevent */
	bool			 write_on;	/* EV_WRITE enabled: libevent drains the rest */
	bool			 is_dirty;	/* on srv->dirty */
	struct net_conn		*dirty_next;
	struct event		*rd;		/* direct reads (plain socket), else NULL */
	struct evbuffer_cb_entry *in_cb;	/* ... and the input's read_drained */
	bool			 rd_on;		/* reading wanted (read_on) */
	bool			 rd_full;	/* ... but NET_READ_HIGHWM octets wait */
	bool			 rd_timeout;	/* rd_tv applies */
	struct timeval		 rd_tv;
};

static void conn_read_cb(struct bufferevent *, void *);
static void conn_write_cb(struct bufferevent *, void *);
static void conn_event_cb(struct bufferevent *, short, void *);
static const struct conn_ops net_conn_ops;
static void conn_schedule_finalize(struct net_conn *, enum conn_close_reason);
static void conn_flush_cb(evutil_socket_t, short, void *);
static void conn_finalize(evutil_socket_t, short, void *);
static void resume_cb(evutil_socket_t, short, void *);
static size_t conn_unsent(struct net_conn *);
static void conn_output_added(struct evbuffer *, const struct evbuffer_cb_info *, void *);
static void conn_read_direct(evutil_socket_t, short, void *);

/* ---- reading ---------------------------------------------------------------- */

/* The direct read event as rd_on and rd_full say (re-adding restarts the
 * read timeout, as libevent's enable does). */
static void
read_apply(struct net_conn *c)
{
	if (c->rd_on && !c->rd_full)
		event_add(c->rd, c->rd_timeout ? &c->rd_tv : NULL);
	else
		event_del(c->rd);
}

/* Reading from the socket on or off, directly or through libevent. */
static void
read_on(struct net_conn *c)
{
	if (c->rd == NULL) {
		bufferevent_enable(c->bev, EV_READ);
		return;
	}
	c->rd_on = true;
	read_apply(c);
}

static void
read_off(struct net_conn *c)
{
	if (c->rd == NULL) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	c->rd_on = false;
	read_apply(c);
}

/* The session took input (wherever it did): reading stopped at
 * NET_READ_HIGHWM goes on. */
static void
read_drained(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	struct net_conn *c = arg;

	if (info->n_deleted > 0 && c->rd_full && evbuffer_get_length(in) < NET_READ_HIGHWM) {
		c->rd_full = false;
		read_apply(c);
	}
}

/* Back to libevent's reading (TLS upgrade, freeing). */
static void
direct_read_off(struct net_conn *c)
{
	if (c->rd == NULL)
		return;
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	event_free(c->rd);
	c->rd = NULL;
	c->in_cb = NULL;
}

/*
 * A plain socket is readable (or its read timeout ran out): one read(2),
 * added to the bufferevent's input, then what libevent's own reading would
 * have done - the read callback, or the event callback with EOF, an error
 * or the timeout (reading then stops). The read goes through the server's
 * buffer and is copied: the input then holds what came, not a 16 KiB chain
 * per connection (10,000 idle clients each with half a line).
 */
static void
conn_read_direct(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;
	char *buf = c->srv->rbuf;	/* the server's: one loop thread uses it */
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in), room;
	ssize_t n;
	int rc;

	if (what == EV_TIMEOUT) {
		read_off(c);
		conn_event_cb(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, c);
		return;
	}
	if (len >= NET_READ_HIGHWM) {
		c->rd_full = true;	/* until the session takes some (read_drained) */
		read_apply(c);
		return;
	}
	room = NET_READ_HIGHWM - len < NET_READ_MAX ? NET_READ_HIGHWM - len : NET_READ_MAX;
	do
		n = read(fd, buf, room);
	while (n == -1 && errno == EINTR);
	if (n > 0) {
		/* The socket bufferevent keeps its input's end frozen and
		 * thaws it only around its own reads: the same here. */
		evbuffer_unfreeze(in, 0);
		rc = evbuffer_add(in, buf, (size_t)n);
		evbuffer_freeze(in, 0);
		if (rc == 0) {
			conn_read_cb(c->bev, c);
			return;
		}
		errno = ENOMEM;
		n = -1;
	} else if (n == -1 && errno == EAGAIN)
		return;
	read_off(c);
	conn_event_cb(c->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
}

/* ---- per-address counters ------------------------------------------------ */

static unsigned
addr_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % NET_ADDR_BUCKETS;
}

static struct addr_count *
addr_find(struct net_server *srv, const char *addr, bool create)
{
	unsigned h = addr_hash(addr);
	struct addr_count *a;

	for (a = srv->addrs[h]; a != NULL; a = a->next)
		if (strcmp(a->addr, addr) == 0)
			return a;
	if (!create || (a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	snprintf(a->addr, sizeof(a->addr), "%s", addr);
	a->next = srv->addrs[h];
	srv->addrs[h] = a;
	return a;
}

static void
addr_release(struct net_server *srv, const char *addr)
{
	unsigned h = addr_hash(addr);
	struct addr_count **pp, *a;

	for (pp = &srv->addrs[h]; (a = *pp) != NULL; pp = &a->next) {
		if (strcmp(a->addr, addr) != 0)
			continue;
		if (--a->count <= 0) {
			*pp = a->next;
			free(a);
		}
		return;
	}
}

/* ---- server ---------------------------------------------------------------- */

struct net_server *
net_server_new(struct event_base *base, const struct limits *lim,
    const struct conn_handler *cb, void *arg, void *ssl_ctx)
{
	struct net_server *srv;

	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return NULL;
	srv->base = base;
	srv->lim = lim;
	srv->cb = *cb;
	srv->arg = arg;
	srv->ssl = ssl_ctx;
	if ((srv->flush_ev = event_new(base, -1, 0, conn_flush_cb, srv)) == NULL) {
		free(srv);
		return NULL;
	}
	return srv;
}

static bool
role_is_tls(enum listen_role role)
{
	return role == ROLE_SMTPS || role == ROLE_POP3S;
}

/* The daemon's busy reply (421 / -ERR [SYS/TEMP]), best effort and with no
 * memory needed: a connection refused over a limit or for want of memory. */
static void
send_busy(struct net_server *srv, struct net_listener *l, evutil_socket_t fd)
{
	if (!role_is_tls(l->spec.role) && srv->cb.busy_reply != NULL) {
		ssize_t r = send(fd, srv->cb.busy_reply, strlen(srv->cb.busy_reply),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)r;	/* best effort: the client may be gone already */
	}
}

/* Refuse a connection over a limit: best-effort reply, then close. */
static void
refuse(struct net_server *srv, struct net_listener *l, evutil_socket_t fd, const char *peer,
    const char *which)
{
	log_warnx("event=refused client=%s listener=%s:%s limit=%s", peer, l->spec.host,
	    l->spec.port, which);
	send_busy(srv, l, fd);
	evutil_closesocket(fd);
}

static void
accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct net_listener *l = arg;
	struct net_server *srv = l->srv;
	struct net_conn *c;
	struct addr_count *ac;
	char peer[INET6_ADDRSTRLEN];
	int one = 1;

	(void)ev;
	conn_format_addr(sa, peer, sizeof(peer));
	if ((long)srv->nconns >= srv->lim->max_connections) {
		refuse(srv, l, fd, peer, "max_connections");
		return;
	}
	ac = addr_find(srv, peer, false);
	if (ac != NULL && ac->count >= srv->lim->max_connections_per_addr) {
		refuse(srv, l, fd, peer, "max_connections_per_addr");
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (ac = addr_find(srv, peer, true)) == NULL) {
		log_warn("event=accept-failed client=%s", peer);
		free(c);
		send_busy(srv, l, fd);
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_init(&c->base, &net_conn_ops, l->spec.role, sa, (size_t)salen);
	c->peerstr = c->base.peer_str;
	c->srv = srv;
	c->listener = l;
	c->write_highwm = NET_WRITE_HIGHWM;
	if (role_is_tls(l->spec.role)) {
		SSL *ssl = SSL_new(srv->ssl);
		if (ssl == NULL) {
			log_warnx("event=tls-failed client=%s reason=SSL_new", peer);
			addr_release(srv, peer);
			free(c);
			evutil_closesocket(fd);
			return;
		}
		c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else
		c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	/* Both events now: closing or resuming must never need memory later. */
	if (c->bev != NULL) {
		c->resume = evtimer_new(srv->base, resume_cb, c);
		c->finalize = evtimer_new(srv->base, conn_finalize, c);
	}
	if (c->bev == NULL || c->resume == NULL || c->finalize == NULL) {
		log_warnx("event=accept-failed client=%s reason=%s", peer,
		    c->bev == NULL ? "bufferevent" : "event");
		if (c->resume != NULL)
			event_free(c->resume);
		if (c->finalize != NULL)
			event_free(c->finalize);
		send_busy(srv, l, fd);
		if (c->bev != NULL)
			bufferevent_free(c->bev);	/* closes fd */
		else
			evutil_closesocket(fd);
		addr_release(srv, peer);
		free(c);
		return;
	}
	ac->count++;
	srv->nconns++;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, NET_READ_HIGHWM);
	bufferevent_setwatermark(c->bev, EV_WRITE, c->write_highwm / 2, 0);
	if (!role_is_tls(l->spec.role))
		c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev), conn_output_added, c);
	c->direct = c->out_cb != NULL;
	if (c->direct) {
		bufferevent_disable(c->bev, EV_WRITE);	/* new bufferevents start with it on */
		/* Without them (no memory), libevent reads: slower, the same. */
		c->rd = event_new(srv->base, fd, EV_READ | EV_PERSIST, conn_read_direct, c);
		if (c->rd != NULL && (c->in_cb = evbuffer_add_cb(bufferevent_get_input(c->bev),
		    read_drained, c)) == NULL) {
			event_free(c->rd);
			c->rd = NULL;
		}
	}
	if ((c->session = srv->cb.accept(&c->base, srv->arg)) == NULL) {
		/* No session (out of memory): nothing to call back. */
		log_warnx("event=accept-failed client=%s reason=session", peer);
		send_busy(srv, l, fd);
		c->closing = true;
		conn_schedule_finalize(c, CONN_CLOSE_SERVER);
		return;
	}
	if (!c->direct)
		bufferevent_enable(c->bev, EV_WRITE);
	read_on(c);
}

int
net_server_listen(struct net_server *srv, const struct listen_spec *ls, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	struct net_listener *l;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	evutil_socket_t fd;
	int rc;

	if (srv->nlisteners >= NET_MAX_LISTENERS) {
		snprintf(err, errlen, "too many listeners (at most %d)", NET_MAX_LISTENERS);
		return -1;
	}
	if (role_is_tls(ls->role) && srv->ssl == NULL) {
		snprintf(err, errlen, "listener %s:%s is %s but no [tls] cert/key is configured",
		    ls->host, ls->port, config_role_name(ls->role));
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(ls->host, ls->port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listen %s:%s: %s", ls->host, ls->port, gai_strerror(rc));
		return -1;
	}
	l = &srv->listeners[srv->nlisteners];
	memset(l, 0, sizeof(*l));
	l->spec = *ls;
	l->srv = srv;
	l->ev = evconnlistener_new_bind(srv->base, accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC |
	    (res->ai_family == AF_INET6 ? LEV_OPT_BIND_IPV6ONLY : 0),
	    1024, res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (l->ev == NULL) {
		snprintf(err, errlen, "listen %s:%s: %s", ls->host, ls->port, strerror(errno));
		return -1;
	}
	fd = evconnlistener_get_fd(l->ev);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
		l->port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
	srv->nlisteners++;
	return 0;
}

int
net_server_port(struct net_server *srv, size_t n)
{
	return n < srv->nlisteners ? srv->listeners[n].port : -1;
}

void
net_server_stop_accepting(struct net_server *srv)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].ev != NULL)
			evconnlistener_disable(srv->listeners[i].ev);
}

size_t
net_server_nconns(struct net_server *srv)
{
	return srv->nconns;
}

void
net_server_free(struct net_server **srvp)
{
	struct net_server *srv = *srvp;
	struct addr_count *a, *next;
	size_t i;

	if (srv == NULL)
		return;
	for (i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].ev != NULL)
			evconnlistener_free(srv->listeners[i].ev);
	for (i = 0; i < NET_ADDR_BUCKETS; i++)
		for (a = srv->addrs[i]; a != NULL; a = next) {
			next = a->next;
			free(a);
		}
	event_free(srv->flush_ev);
	free(srv);
	*srvp = NULL;
}

/* ---- connections ----------------------------------------------------------- */

static struct net_conn *
nc(struct conn *c)
{
	return (struct net_conn *)c;	/* base is the first member */
}

static struct evbuffer *
op_input(struct conn *c)
{
	return bufferevent_get_input(nc(c)->bev);
}

static struct evbuffer *
op_output(struct conn *c)
{
	return bufferevent_get_output(nc(c)->bev);
}

static const char *
op_tls_info(struct conn *c)
{
	return nc(c)->tlsinfo;
}

/*
 * Send close_notify (RFC 8446 6.1) on a TLS connection about to be freed, so
 * that the client sees a clean end, not a truncation. libevent frees the SSL
 * without it. After STARTTLS the record goes into the socket bufferevent
 * under the TLS filter, which is then written out once, best effort.
 */
static void
conn_tls_shutdown(struct net_conn *c)
{
	struct bufferevent *under;
	SSL *ssl;

	if (!c->base.tls || c->why == CONN_CLOSE_ERROR ||
	    (ssl = bufferevent_openssl_get_ssl(c->bev)) == NULL)
		return;
	if (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(ssl);
	if ((under = bufferevent_get_underlying(c->bev)) != NULL) {
		/* The socket bufferevent's output cannot be written from here
		 * (libevent keeps it frozen): send the record directly. */
		struct evbuffer *out = bufferevent_get_output(under);
		size_t n = evbuffer_get_length(out);
		unsigned char *p = n > 0 ? evbuffer_pullup(out, (ev_ssize_t)n) : NULL;

		if (p != NULL) {
			ssize_t w = send(bufferevent_getfd(under), p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;	/* best effort: the client may be gone */
		}
	}
	ERR_clear_error();
}

/* ---- direct writes (see the file comment) ---- */

static void
conn_dirty_unlink(struct net_conn *c)
{
	struct net_conn **pp;

	if (!c->is_dirty)
		return;
	for (pp = &c->srv->dirty; *pp != NULL; pp = &(*pp)->dirty_next)
		if (*pp == c) {
			*pp = c->dirty_next;
			break;
		}
	c->is_dirty = false;
	c->dirty_next = NULL;
}

/* Back to libevent's writing (TLS upgrade, freeing). */
static void
conn_direct_off(struct net_conn *c)
{
	conn_dirty_unlink(c);
	if (c->out_cb != NULL) {
		struct bufferevent *sock = bufferevent_get_underlying(c->bev);
		evbuffer_remove_cb_entry(bufferevent_get_output(sock ? sock : c->bev), c->out_cb);
		c->out_cb = NULL;
	}
	c->direct = false;
}

static void
conn_output_added(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	struct net_conn *c = arg;

	(void)b;
	if (info->n_added == 0 || !c->direct || c->write_on || c->is_dirty || c->finalizing)
		return;
	c->is_dirty = true;
	c->dirty_next = c->srv->dirty;
	if (c->srv->dirty == NULL)
		event_active(c->srv->flush_ev, EV_TIMEOUT, 0);
	c->srv->dirty = c;
}

/* Write a plain connection's output now; what the kernel does not take
 * goes to libevent's EV_WRITE. Then what a drain means (conn_write_cb). */
static void
conn_flush(struct net_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int n;

	while (evbuffer_get_length(out) > 0) {
		/* A socket bufferevent keeps its output's start frozen and thaws
		 * it only around its own writes: the same here. */
		evbuffer_unfreeze(out, 1);
		n = evbuffer_write(out, bufferevent_getfd(c->bev));
		evbuffer_freeze(out, 1);
		if (n > 0)
			continue;
		if (n == 0 || errno != EINTR) {
			/* EAGAIN, or an error libevent will report as an event */
			c->write_on = true;
			bufferevent_enable(c->bev, EV_WRITE);
			return;
		}
	}
	conn_write_cb(c->bev, c);
	/* What drained() wrote (a POP3 stream's next chunk) leaves on the next
	 * loop turn, through libevent, so one fast stream cannot hold the loop. */
	if (!c->finalizing && c->direct && !c->write_on && evbuffer_get_length(out) > 0) {
		conn_dirty_unlink(c);
		c->write_on = true;
		bufferevent_enable(c->bev, EV_WRITE);
	}
}

static void
conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct net_server *srv = arg;
	struct net_conn *c;

	(void)fd;
	(void)what;
	/* A drained() callback may dirty connections again: they rejoin the
	 * list and a new run is scheduled, in this same loop turn. */
	while ((c = srv->dirty) != NULL) {
		srv->dirty = c->dirty_next;
		c->dirty_next = NULL;
		c->is_dirty = false;
		if (!c->finalizing && c->direct && !c->write_on)
			conn_flush(c);
	}
}

/* Free a connection; runs on its own loop turn, never inside a session callback. */
static void
conn_finalize(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;
	struct net_server *srv = c->srv;

	(void)fd;
	(void)what;
	if (c->session != NULL)
		srv->cb.closed(c->session, c->why);
	c->session = NULL;
	conn_tls_shutdown(c);
	if (c->resume != NULL)
		event_free(c->resume);
	event_free(c->finalize);	/* this callback's own event: allowed */
	if (c->under_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(bufferevent_get_underlying(c->bev)),
		    c->under_cb);
	conn_direct_off(c);
	direct_read_off(c);
	bufferevent_free(c->bev);
	addr_release(srv, c->peerstr);
	srv->nconns--;
	free(c);
}

static void
conn_schedule_finalize(struct net_conn *c, enum conn_close_reason why)
{
	if (c->finalizing)
		return;
	c->finalizing = true;
	c->closing = true;
	c->why = why;
	read_off(c);
	bufferevent_disable(c->bev, EV_WRITE);
	event_active(c->finalize, EV_TIMEOUT, 0);	/* made at accept: cannot fail */
}


/*
 * Octets not yet handed to the kernel. After STARTTLS the session writes into
 * the TLS filter, whose output empties as soon as OpenSSL has encrypted it into
 * the socket bufferevent underneath: both must be empty before closing, or the
 * last reply (221, +OK signing off) is lost.
 */
static size_t
conn_unsent(struct net_conn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));

	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

static void
under_output_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	struct net_conn *c = arg;

	(void)b;
	(void)info;
	if (c->flush_then_close && conn_unsent(c) == 0)
		conn_schedule_finalize(c, CONN_CLOSE_SERVER);
}

static void
conn_close_after_flush(struct net_conn *c)
{
	struct bufferevent *under;

	if (c->finalizing)
		return;
	c->closing = true;
	c->flush_then_close = true;
	read_off(c);
	if ((under = bufferevent_get_underlying(c->bev)) != NULL && c->under_cb == NULL)
		c->under_cb = evbuffer_add_cb(bufferevent_get_output(under), under_output_cb, c);
	if (conn_unsent(c) == 0)
		conn_schedule_finalize(c, CONN_CLOSE_SERVER);
}

/* Hand input to the session unless it or the output back-pressure says wait. */
static void
conn_deliver_input(struct net_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (c->closing || c->tls_pending)
		return;
	if (c->paused) {
		/* Input while the session waits: reading stops only now (see
		 * op_pause_read). */
		read_off(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) >= c->write_highwm) {
		/* The client sends without reading our replies: stop reading
		 * until it catches up. Memory stays bounded either way. */
		c->throttled = true;
		read_off(c);
		return;
	}
	if (evbuffer_get_length(in) > 0)
		c->srv->cb.read(c->session);
	/* After a half-close, end once the session has taken all it will. */
	if (c->eof && !c->closing && !c->paused && !c->throttled && !c->tls_pending) {
		/* Replies to its last commands still go out (it may only
		 * have shut down its sending side). */
		conn_close_after_flush(c);
		c->why = CONN_CLOSE_EOF;
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_deliver_input(arg);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_deliver_input(arg);
}

static void
op_pause_read(struct conn *cc, bool pause)
{
	struct net_conn *c = nc(cc);

	if (c->closing)
		return;
	c->paused = pause;
	/*
	 * Reading goes on until input comes (conn_deliver_input stops it
	 * then): a client that waits for the reply, as nearly all do, sends
	 * nothing meanwhile, and a pause per message (smtpd's commit) cost an
	 * epoll_ctl() to stop reading and one to start again.
	 */
	if (pause)
		return;
	if (!c->throttled && !c->tls_pending && !c->eof)
		read_on(c);
	/* Lines may already be buffered: no new bytes will wake us for them. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 || c->eof) {
		event_active(c->resume, EV_TIMEOUT, 0);	/* made at accept */
	}
}

static void
op_set_timeout(struct conn *cc, long seconds)
{
	struct net_conn *c = nc(cc);
	struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };

	if (seconds <= 0)
		bufferevent_set_timeouts(c->bev, NULL, NULL);
	else
		bufferevent_set_timeouts(c->bev, &tv, &tv);
	if (c->rd != NULL) {
		c->rd_timeout = seconds > 0;
		c->rd_tv = tv;
		if (c->rd_on)
			read_apply(c);
	}
}

static void
op_set_watermark(struct conn *cc, size_t high)
{
	struct net_conn *c = nc(cc);

	c->write_highwm = high;
	bufferevent_setwatermark(c->bev, EV_WRITE, high / 2, 0);
}

static void
start_tls(struct net_conn *c)
{
	struct bufferevent *filter;
	SSL *ssl;

	c->tls_pending = false;
	/* RFC 3207 5 / RFC 2595 4: plaintext sent after the command is discarded. */
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	if ((ssl = SSL_new(c->srv->ssl)) == NULL) {
		log_warnx("event=tls-failed client=%s reason=SSL_new", c->peerstr);
		conn_schedule_finalize(c, CONN_CLOSE_ERROR);
		return;
	}
	conn_direct_off(c);
	direct_read_off(c);		/* the filter reads the socket, through libevent */
	c->write_on = false;
	bufferevent_enable(c->bev, EV_WRITE);	/* the socket under the filter */
	filter = bufferevent_openssl_filter_new(c->srv->base, c->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (filter == NULL) {
		log_warnx("event=tls-failed client=%s reason=filter", c->peerstr);
		conn_schedule_finalize(c, CONN_CLOSE_ERROR);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
	c->bev = filter;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, NET_READ_HIGHWM);
	bufferevent_setwatermark(c->bev, EV_WRITE, c->write_highwm / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static int
op_starttls(struct conn *cc)
{
	struct net_conn *c = nc(cc);

	if (c->srv->ssl == NULL || c->base.tls || c->closing)
		return -1;
	c->tls_pending = true;
	read_off(c);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		start_tls(c);
	/* else conn_write_cb starts it once the "ready" reply is flushed */
	return 0;
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	if (c->write_on && left == 0 && c->direct) {
		/* libevent has drained what the kernel refused: write directly again */
		c->write_on = false;
		bufferevent_disable(c->bev, EV_WRITE);
	}
	if (c->flush_then_close) {
		if (conn_unsent(c) == 0)
			conn_schedule_finalize(c, CONN_CLOSE_SERVER);
		return;
	}
	if (c->closing)
		return;
	if (c->tls_pending) {
		if (left == 0)
			start_tls(c);
		return;
	}
	if (c->throttled && left < c->write_highwm / 2) {
		c->throttled = false;
		if (!c->paused && !c->eof)
			read_on(c);
		conn_deliver_input(c);
	}
	if (!c->closing && c->srv->cb.drained != NULL && left < c->write_highwm / 2)
		c->srv->cb.drained(c->session);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *c = arg;
	SSL *ssl;

	if (what & BEV_EVENT_CONNECTED) {
		/* Only TLS bufferevents report this: the handshake is done. */
		if ((ssl = bufferevent_openssl_get_ssl(bev)) != NULL) {
			c->base.tls = true;
			snprintf(c->tlsinfo, sizeof(c->tlsinfo), "%s:%s",
			    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
			if (!c->closing && c->srv->cb.tls_ready != NULL)
				c->srv->cb.tls_ready(c->session);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		conn_schedule_finalize(c, CONN_CLOSE_TIMEOUT);
	else if (what & BEV_EVENT_EOF) {
		/* The client closed its side. Complete lines may still be
		 * buffered (QUIT pipelined right before a half-close): the
		 * session answers them first, even if it is paused now (a
		 * commit in flight); conn_deliver_input ends the connection
		 * once the session has taken its input. */
		c->eof = true;
		conn_deliver_input(c);
	} else if (what & BEV_EVENT_ERROR) {
		if (bufferevent_openssl_get_ssl(bev) != NULL)
			log_debug("event=tls-error client=%s", c->peerstr);
		else if (EVUTIL_SOCKET_ERROR() == ENOMEM) {
			/* No memory for the input: say so if nothing else is
			 * on its way out (a reply is never cut in two). */
			log_warnx("event=read-failed client=%s reason=memory", c->peerstr);
			if (conn_unsent(c) == 0)
				send_busy(c->srv, c->listener, bufferevent_getfd(bev));
		}
		conn_schedule_finalize(c, CONN_CLOSE_ERROR);
	}
}

static void
op_close(struct conn *cc, bool flush)
{
	if (flush)
		conn_close_after_flush(nc(cc));
	else
		conn_schedule_finalize(nc(cc), CONN_CLOSE_SERVER);
}

/* ---- timers ------------------------------------------------------------------ */

struct net_timer {
	struct conn_timer	 base;		/* first */
	struct event		*ev;
	void			(*fn)(void *);
	void			*arg;
};

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct net_timer *t = arg;

	(void)fd;
	(void)what;
	t->fn(t->arg);
}

static struct conn_timer *
op_timer_new(struct conn *cc, void (*fn)(void *), void *arg)
{
	struct net_timer *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->base.ops = &net_conn_ops;
	t->fn = fn;
	t->arg = arg;
	if ((t->ev = evtimer_new(nc(cc)->srv->base, timer_fired, t)) == NULL) {
		free(t);
		return NULL;
	}
	return &t->base;
}

static void
op_timer_set(struct conn_timer *ct, long msec)
{
	struct net_timer *t = (struct net_timer *)ct;
	struct timeval tv = { .tv_sec = msec / 1000, .tv_usec = (msec % 1000) * 1000 };

	evtimer_add(t->ev, &tv);
}

static void
op_timer_stop(struct conn_timer *ct)
{
	evtimer_del(((struct net_timer *)ct)->ev);
}

static void
op_timer_free(struct conn_timer *ct)
{
	struct net_timer *t = (struct net_timer *)ct;

	event_free(t->ev);
	free(t);
}

static const struct conn_ops net_conn_ops = {
	.input = op_input,
	.output = op_output,
	.pause_read = op_pause_read,
	.set_watermark = op_set_watermark,
	.set_timeout = op_set_timeout,
	.close = op_close,
	.starttls = op_starttls,
	.tls_info = op_tls_info,
	.timer_new = op_timer_new,
	.timer_set = op_timer_set,
	.timer_stop = op_timer_stop,
	.timer_free = op_timer_free,
};
