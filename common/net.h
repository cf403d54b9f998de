/*
 * net.h - the libevent glue shared by smtpd and pop3d: listeners, accepted
 * connections as bufferevents, connection limits (total and per address),
 * timeouts, write watermarks for back-pressure, STARTTLS/STLS and implicit
 * TLS. Accepted connections implement the interface of conn.h, which is all
 * a session sees; this header is for the daemons' main.c and net's tests.
 */
#ifndef CORREIO_NET_H
#define CORREIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include "config.h"
#include "conn.h"

struct net_server;

/* An event base with libevent's pthread locking turned on (needed by
 * net_run_in_loop). Daemons create their base with this. */
struct event_base *net_base_new(void);
/* Free a base made by net_base_new (and its job queue). */
void	net_base_free(struct event_base *base);

/* Create a server on base whose connections (struct conn, conn.h) are handed
 * to cb. ssl_ctx (an SSL_CTX *) may be NULL when TLS is not configured;
 * implicit-TLS listeners then fail to start. */
struct net_server *net_server_new(struct event_base *base, const struct limits *lim,
	    const struct conn_handler *cb, void *arg, void *ssl_ctx);
/* Bind and listen on one address (IPv4 or IPv6). Returns 0 or -1 with err. */
int	net_server_listen(struct net_server *srv, const struct listen_spec *ls,
	    char *err, size_t errlen);
/* The port actually bound by the n-th listener (for port 0 in tests). */
int	net_server_port(struct net_server *srv, size_t n);
/* Stop accepting; existing connections continue. */
void	net_server_stop_accepting(struct net_server *srv);
size_t	net_server_nconns(struct net_server *srv);
void	net_server_free(struct net_server **srv);

/* Run fn(arg) on the event loop thread (thread-safe; used by the worker
 * threads of smtpd and pop3d to hand results back). Allocates: -1 when out
 * of memory (or base is not from net_base_new). */
int	net_run_in_loop(struct event_base *base, void (*fn)(void *), void *arg);
/* Run what net_run_in_loop queued for base, here and now, without running
 * the loop (its other events may refer to sessions already freed): for a
 * daemon's shutdown, after its worker threads have stopped. */
void	net_run_queued(struct event_base *base);

/* A hand-back that needs no memory: the caller embeds this in the object it
 * hands back (a job), so that returning a result cannot fail. */
struct net_loop_job {
	struct net_loop_job *next;
	void		(*fn)(void *);
	void		*arg;
	bool		 owned;		/* net_run_in_loop's: freed after fn */
};
/* Like net_run_in_loop with the caller's job storage, which must live
 * until fn has run (fn may free it). Returns -1 only when base is not from
 * net_base_new (a programming error). */
int	net_run_job_in_loop(struct event_base *base, struct net_loop_job *job,
	    void (*fn)(void *), void *arg);

#endif
