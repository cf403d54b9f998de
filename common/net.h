/*
 * net.h - the libevent glue shared by smtpd and pop3d: listeners, accepted
 * connections as bufferevents, connection limits (total and per address),
 * timeouts, write watermarks for back-pressure, STARTTLS/STLS and implicit
 * TLS. This is the only code that touches a bufferevent; sessions see an
 * input and an output evbuffer and the callbacks below.
 */
#ifndef CORREIO_NET_H
#define CORREIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include "config.h"

struct net_server;
struct net_conn;

/* An event base with libevent's pthread locking turned on (needed by
 * net_run_in_loop). Daemons create their base with this. */
struct event_base *net_base_new(void);
/* Free a base made by net_base_new (and its job queue). */
void	net_base_free(struct event_base *base);

enum net_close_reason {
	NET_CLOSE_EOF,		/* the client closed */
	NET_CLOSE_ERROR,	/* socket or TLS error */
	NET_CLOSE_TIMEOUT,	/* read timeout */
	NET_CLOSE_SERVER	/* the session asked for it (net_conn_close*) */
};

struct net_callbacks {
	/* A connection was accepted within the limits. Return the new session,
	 * or NULL to drop the connection at once. The session should write its
	 * greeting to net_conn_output(c). */
	void	*(*accept)(struct net_conn *c, void *arg);
	/* New bytes are in net_conn_input(c). */
	void	 (*read)(void *session);
	/* The output buffer fell below the low watermark (streaming resumes). */
	void	 (*drained)(void *session);
	/* The connection is gone; the session must free itself. */
	void	 (*closed)(void *session, enum net_close_reason why);
	/* The TLS handshake completed (after net_conn_starttls or implicit TLS). */
	void	 (*tls_ready)(void *session);
	/* Reply written to a connection refused for a limit, e.g.
	 * "421 4.7.0 Too many connections, try later\r\n". */
	const char *busy_reply;
};

/* Create a server on base. ssl_ctx (an SSL_CTX *) may be NULL when TLS is
 * not configured; implicit-TLS listeners then fail to start. */
struct net_server *net_server_new(struct event_base *base, const struct limits *lim,
	    const struct net_callbacks *cb, void *arg, void *ssl_ctx);
/* Bind and listen on one address (IPv4 or IPv6). Returns 0 or -1 with err. */
int	net_server_listen(struct net_server *srv, const struct listen_spec *ls,
	    char *err, size_t errlen);
/* The port actually bound by the n-th listener (for port 0 in tests). */
int	net_server_port(struct net_server *srv, size_t n);
/* Stop accepting; existing connections continue. */
void	net_server_stop_accepting(struct net_server *srv);
size_t	net_server_nconns(struct net_server *srv);
void	net_server_free(struct net_server **srv);

struct evbuffer *net_conn_input(struct net_conn *c);
struct evbuffer *net_conn_output(struct net_conn *c);
const struct listen_spec *net_conn_listener(struct net_conn *c);
const struct sockaddr *net_conn_peer(struct net_conn *c);
/* Peer address as text ("127.0.0.1", "::1"). */
const char *net_conn_peer_str(struct net_conn *c);
bool	net_conn_is_tls(struct net_conn *c);
/* "TLSv1.3:TLS_AES_256_GCM_SHA384" or "" before TLS. */
const char *net_conn_tls_info(struct net_conn *c);
/* Stop/start calling read (e.g. while a store commit is in flight, or while
 * streaming a message and the output is above the high watermark). */
void	net_conn_pause_read(struct net_conn *c, bool pause);
/* Seconds without input before the connection is closed (0: none). */
void	net_conn_set_timeout(struct net_conn *c, long seconds);
/* Set the output high watermark: drained is called when the output falls
 * below half of it. */
void	net_conn_set_watermark(struct net_conn *c, size_t high);
/* Flush what is in the output, then close. No callbacks but closed follow. */
void	net_conn_close_after_flush(struct net_conn *c);
/* Close now (output discarded). */
void	net_conn_close(struct net_conn *c);
/* Flush the output in plaintext, discard any unread input (RFC 3207 5,
 * RFC 2595 4), then start the TLS handshake; tls_ready is called when done.
 * Returns -1 when TLS is not configured. */
int	net_conn_starttls(struct net_conn *c);
/* Run fn(arg) on the event loop thread (thread-safe; used by smtpd's store
 * writer thread to hand results back). */
int	net_run_in_loop(struct event_base *base, void (*fn)(void *), void *arg);

#endif
