/*
 * session.h - what every server session has, whatever its protocol: its
 * connection (conn.h), the line pump (input evbuffer -> linebuf -> the
 * protocol's line handler, every buffered line in order, stopping for output
 * back-pressure or when the protocol must wait), the idle timer that runs
 * from the last complete line (a client dripping bytes without ending a line
 * is still cut off), the error count (max_errors) and the transcript with its
 * line budget (transcript_max_lines).
 *
 * smtpd's and pop3d's session structs each embed one struct session; the
 * protocol supplies struct session_proto. Never: interprets a line, writes a
 * reply, or frees the struct it is embedded in.
 */
#ifndef CORREIO_SESSION_H
#define CORREIO_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "linebuf.h"
#include "transcript.h"

/* Seconds after the idle timeout before the connection's own backstop
 * timeout cuts a client that does not even take the goodbye. */
#define SESSION_TIMEOUT_GRACE	30

/* What the protocol core provides (owner: its session struct). */
struct session_proto {
	/* May another line be taken now? (false while busy: a worker job, a
	 * delay, a stream, a TLS handshake, closing) */
	bool	 (*ready)(void *owner);
	/* One line: LINE_OK (NUL-terminated at len) or LINE_TOO_LONG. */
	void	 (*line)(void *owner, enum line_status st, char *line, size_t len,
		    enum line_eol eol);
	/* The idle timer ran out (only while the connection is up). */
	void	 (*idle)(void *owner);
};

struct session_params {
	size_t	 line_max;		/* longest line, without its line ending */
	size_t	 out_high;		/* no line is taken while the output holds this much */
	long	 idle_timeout;		/* seconds; can change later (session_set_idle) */
	long	 max_errors;		/* session_count_error() says "close" at this count */
	long	 transcript_max_lines;
	bool	 transcripts;		/* record a transcript */
	const char *id;			/* session id (transcript lines) */
};

struct session_list;

struct session {
	struct conn	*conn;		/* NULL once the connection is gone */
	void		*owner;
	struct session	*next, *prev;	/* in list, while joined */
	struct session_list *list;
	const struct session_proto *proto;
	struct linebuf	 lb;
	size_t		 out_high;
	char		 last_byte;	/* the last byte fed to lb */
	enum line_eol	 tail_eol;	/* how the last over-long line ended (its tail
					 * was dropped by lb, unseen) */
	bool		 stalled;	/* stopped for output back-pressure */
	bool		 pumping;	/* inside session_pump */
	unsigned long	 nlines;	/* complete lines taken */
	struct conn_timer *idle;
	long		 idle_secs;
	long		 nerrors;
	long		 max_errors;
	struct transcript tr;
	long		 tr_lines;	/* lines counted against tr_max */
	long		 tr_max;
};

/* Every live session of a daemon (what SIGTERM walks), and how many it has
 * served since start. */
struct session_list {
	struct session	*head;
	unsigned long	 served;
};
/* Put ss in list (it leaves at session_free). */
void	session_join(struct session *ss, struct session_list *list);
/* Call fn(owner) for each session in list; fn may free the session it gets. */
void	session_list_each(struct session_list *list, void (*fn)(void *owner));
/* The first session's owner, or NULL when list is empty. */
void	*session_list_first(const struct session_list *list);

/* Set up ss for connection c (creates the idle timer, not yet armed).
 * 0, or -1 when out of memory. */
int	session_init(struct session *ss, struct conn *c, void *owner,
	    const struct session_proto *proto, const struct session_params *p);
/* Free what session_init made. The transcript must have been flushed. */
void	session_free(struct session *ss);
/* Take every complete buffered line, in order, while proto->ready() says so
 * and the output is below out_high (else stalled is set). Re-entry from a
 * line handler returns at once (the outer call goes on). */
void	session_pump(struct session *ss);
/* The output drained: continue if the pump stalled on back-pressure. */
void	session_drained(struct session *ss);
/* (Re)start the idle timer; the connection's backstop follows it. */
void	session_touch(struct session *ss);
/* Use a new idle timeout from now on (e.g. SMTP DATA), and restart. */
void	session_set_idle(struct session *ss, long seconds);
/* The connection is gone: no more timer, no more conn. */
void	session_gone(struct session *ss);
/* Count a client error; true once max_errors is reached (close now). */
bool	session_count_error(struct session *ss);
/* Count nlines transcript lines; false once transcript_max_lines is
 * reached (a note says so, once). */
bool	session_tr_room(struct session *ss, size_t nlines);

#endif
