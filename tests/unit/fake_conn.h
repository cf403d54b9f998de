/*
 * fake_conn.h - a connection (conn.h) with no socket, for the session unit
 * tests and the fuzz targets: two evbuffers, flags that record what the
 * session asked (pause, close, STARTTLS) and timers on a virtual clock that
 * the test advances. The session is driven through its struct conn_handler,
 * exactly as net.c drives it.
 */
#ifndef CORREIO_FAKE_CONN_H
#define CORREIO_FAKE_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"

struct fake_timer;

struct fake_conn {
	struct conn	 conn;		/* the interface; first */
	struct evbuffer	*in, *out;
	bool		 paused;	/* conn_pause_read(true) in force */
	int		 closes;	/* conn_close calls */
	bool		 close_flush;	/* the last close asked to flush */
	int		 starttls_calls;
	int		 starttls_result;	/* what conn_starttls returns (default 0) */
	bool		 tls_req;	/* a handshake was asked; deliver tls_ready */
	const char	*tls_info;	/* conn_tls_info once conn.tls is set */
	long		 timeout;	/* the last conn_set_timeout */
	size_t		 watermark;	/* the last conn_set_watermark */
	long		 now_ms;	/* the virtual clock */
	struct fake_timer *timers;	/* every live timer */
};

/* A connection from ip (IPv4 or IPv6 text) to a listener of role. */
void	fake_conn_init(struct fake_conn *f, enum listen_role role, const char *ip);
/* Free the buffers. The session's timers must be freed before. */
void	fake_conn_free(struct fake_conn *f);
/* Milliseconds until the earliest armed timer, or -1 when none is armed. */
long	fake_conn_next_timer(const struct fake_conn *f);
/* Move the clock to the earliest armed timer and fire it. false: none. */
bool	fake_conn_fire_next(struct fake_conn *f);
/* Move the clock ms forward, firing every timer that falls due, in order. */
void	fake_conn_advance(struct fake_conn *f, long ms);

#endif
