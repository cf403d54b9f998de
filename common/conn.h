/*
 * conn.h - the one connection interface both session cores (smtpd, pop3d)
 * receive: what a session may ask of its connection (write into the output,
 * pause and resume reading, close, start TLS, timers) and what the
 * connection tells the session (struct conn_handler: accepted, input,
 * output drained, TLS ready, closed).
 *
 * common/net.c implements it over libevent bufferevents and real sockets;
 * tests/unit/fake_conn.c implements it over two evbuffers and a virtual
 * clock for the unit tests and fuzz targets. A session core includes this
 * header, never net.h.
 */
#ifndef CORREIO_CONN_H
#define CORREIO_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <event2/buffer.h>

#include "config.h"

struct conn;
struct conn_timer;

/* Why a connection ended (passed to conn_handler.closed). */
enum conn_close_reason {
	CONN_CLOSE_EOF,		/* the client closed */
	CONN_CLOSE_ERROR,	/* socket or TLS error */
	CONN_CLOSE_TIMEOUT,	/* the connection's own backstop timeout */
	CONN_CLOSE_SERVER	/* the session asked for it (conn_close) */
};

/* What an implementation provides; sessions call the conn_* wrappers below. */
struct conn_ops {
	struct evbuffer *(*input)(struct conn *c);
	struct evbuffer *(*output)(struct conn *c);
	void	 (*pause_read)(struct conn *c, bool pause);
	void	 (*set_watermark)(struct conn *c, size_t high);
	void	 (*set_timeout)(struct conn *c, long seconds);
	void	 (*close)(struct conn *c, bool flush);
	int	 (*starttls)(struct conn *c);
	const char *(*tls_info)(struct conn *c);
	struct conn_timer *(*timer_new)(struct conn *c, void (*fn)(void *), void *arg);
	void	 (*timer_set)(struct conn_timer *t, long msec);
	void	 (*timer_stop)(struct conn_timer *t);
	void	 (*timer_free)(struct conn_timer *t);
};

/* The part every implementation's connection starts with. */
struct conn {
	const struct conn_ops	*ops;
	enum listen_role	 role;		/* of the listener that accepted it */
	struct sockaddr_storage	 peer;
	char			 peer_str[INET6_ADDRSTRLEN];	/* "127.0.0.1", "::1" */
	bool			 tls;		/* TLS is up (implicit, or after STARTTLS) */
};

/* The part every implementation's timer starts with. */
struct conn_timer {
	const struct conn_ops	*ops;
};

/* What the connection calls in the session (net.c, or a test driver). */
struct conn_handler {
	/* A connection was accepted within the limits. Return the new session,
	 * or NULL to drop the connection at once. The session writes its
	 * greeting to conn_output(c). */
	void	*(*accept)(struct conn *c, void *arg);
	/* New bytes are in conn_input(c). */
	void	 (*read)(void *session);
	/* The output fell below half the watermark (streaming resumes). */
	void	 (*drained)(void *session);
	/* The connection is gone; the session must not use it again. */
	void	 (*closed)(void *session, enum conn_close_reason why);
	/* The TLS handshake completed (after conn_starttls or implicit TLS). */
	void	 (*tls_ready)(void *session);
	/* Written to a connection refused for a limit, e.g.
	 * "421 4.7.0 Too many connections, try later\r\n". */
	const char *busy_reply;
};

/* The text form of an address ("192.0.2.1", "::1"; IPv4-mapped IPv6 as
 * IPv4; "?" when it has none) into dst. */
void	conn_format_addr(const struct sockaddr *sa, char *dst, size_t len);
/* Fill the fixed part: ops, the listener's role and the peer's address. */
void	conn_init(struct conn *c, const struct conn_ops *ops, enum listen_role role,
	    const struct sockaddr *peer, size_t peerlen);

/* The input (bytes from the client) and output (bytes to it) buffers. */
struct evbuffer *conn_input(struct conn *c);
struct evbuffer *conn_output(struct conn *c);
/* The peer's address and its text form. */
const struct sockaddr *conn_peer(const struct conn *c);
const char *conn_peer_str(const struct conn *c);
/* "TLSv1.3:TLS_AES_256_GCM_SHA384", or "" before TLS. */
const char *conn_tls_info(struct conn *c);
/* Stop/start calling read (a commit in flight, a stream above the mark). */
void	conn_pause_read(struct conn *c, bool pause);
/* Output high watermark: drained is called once it falls below half. */
void	conn_set_watermark(struct conn *c, size_t high);
/* Backstop: close with CONN_CLOSE_TIMEOUT after this many seconds without
 * any socket progress (0: none). The session's own idle timer comes first. */
void	conn_set_timeout(struct conn *c, long seconds);
/* Close: flush the output first when flush is true, else discard it. TLS
 * connections send close_notify. closed() follows later, never from inside
 * this call; no other callback follows. */
void	conn_close(struct conn *c, bool flush);
/* Flush the output in plaintext, discard unread input (RFC 3207 5, RFC 2595
 * 4), start the TLS handshake; tls_ready follows. -1 when TLS is unavailable. */
int	conn_starttls(struct conn *c);

/* A timer on the connection's clock calling fn(arg). It may outlive the
 * connection (a session waiting for a worker), not the event loop. */
struct conn_timer *conn_timer_new(struct conn *c, void (*fn)(void *), void *arg);
/* (Re)arm to fire once after msec milliseconds. */
void	conn_timer_set(struct conn_timer *t, long msec);
void	conn_timer_stop(struct conn_timer *t);
/* Free *tp (stopping it) and set it to NULL. */
void	conn_timer_free(struct conn_timer **tp);

#endif
