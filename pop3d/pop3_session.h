/*
 * pop3_session.h - one POP3 session (RFC 1939 3-6, RFC 2449, RFC 2595,
 * RFC 5034): the session struct, its state enum and the one transition
 * function, the mailbox snapshot taken at login and the deleted bitmap.
 *
 * The session is sans-I/O (HACKING.md C5): it gets a struct conn (conn.h;
 * net.c in the daemon, a fake in tests) and its line pump, idle timer, error
 * count and transcript budget from common/session.c; replies go into the
 * connection's output evbuffer. pop3_cmd.c holds the command table and the
 * TRANSACTION handlers, pop3_login.c the AUTHORIZATION state (USER, PASS,
 * AUTH, APOP, STLS), pop3_stream.c the resumable RETR/TOP/LIST/UIDL output.
 * Never: writes to a socket, blocks on the network, or deletes a message
 * outside the UPDATE state.
 */
#ifndef CORREIO_POP3_SESSION_H
#define CORREIO_POP3_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>

#include "cmdtab.h"
#include "config.h"
#include "conn.h"
#include "auth.h"
#include "authpool.h"
#include "linebuf.h"
#include "log.h"
#include "loginguard.h"
#include "reply.h"
#include "sasl.h"
#include "session.h"
#include "store.h"
#include "transcript.h"

#define POP3_IMPLEMENTATION	"correio-" CORREIO_VERSION
/* Output is filled up to this many octets while streaming (HACKING.md C14). */
/* "HOST/PID/SESSION": a host name (255), a pid and a session id. */
#define POP3_LOCK_OWNER_MAX	300
#define POP3_OUTBUF_HIGH	(128 * 1024)
/* Octets read from the store per chunk of a message. */
#define POP3_CHUNK		(64 * 1024)
/* Pending transcript text that triggers a write to the store. */

/* struct reply.flags bit private to pop3d: text holds '\n'-separated lines
 * after the status line, sent as a dot-terminated multi-line response. */
#define POP3_REPLY_MULTI	0x100
/* A SASL continuation: "+ text" (RFC 5034 4), not "+OK". */
#define POP3_REPLY_CONT		0x200

enum pop3_state {
	POP3_AUTHORIZATION = 0,
	POP3_TRANSACTION,
	POP3_UPDATE,
	POP3_NSTATES
};

struct pop3_unlock;

/* Everything sessions of one daemon share. */
struct pop3_server {
	const struct config *cfg;
	struct store	*store;		/* reads only, on the loop (HACKING.md: no store write on the loop) */
	struct event_base *base;	/* for the release retry timer; NULL: no timer (tests) */
	bool		 tls_available;	/* [tls] configured: STLS offered */
	bool		 stopping;	/* SIGTERM: no new sessions */
	struct authpool	*auth;		/* password checks and store writes; NULL: inline (tests) */
	struct loginguard *guard;	/* failed logins across sessions; NULL: per session */
	struct sesslog	*sesslog;	/* sessions and transcripts; NULL: none */
	struct session_list sessions;	/* all live sessions (shutdown), served since start */
	/* Locks of ended sessions whose release failed (pop3_store.c). */
	struct pop3_unlock *unlocks;
	struct event	*unlock_ev;	/* the retry timer */
	bool		 pool_gone;	/* shutdown, the pool stopped: releases are left (below) */
	long		 unlock_delay_ms;	/* its next delay (backoff) */
};

/* A resumable multi-line output (pop3_stream.c). */
enum pop3_stream_kind {
	POP3_STREAM_NONE = 0,
	POP3_STREAM_RETR,
	POP3_STREAM_TOP,
	POP3_STREAM_LIST,
	POP3_STREAM_UIDL
};

struct pop3_stream {
	enum pop3_stream_kind kind;
	size_t		 msg;		/* index into the snapshot (RETR/TOP), or next index (LIST/UIDL) */
	int64_t		 offset;	/* octets of the message read so far */
	int64_t		 sent;		/* octets of the message written (before stuffing) */
	long		 top_lines;	/* TOP: body lines still to send */
	int		 top_hdr;	/* TOP: 0 mid-line, 1 at line start, 2 saw CR at line start, 3 in body */
	bool		 done;		/* TOP: the cut point was reached */
	struct dotstuff	 ds;
	size_t		 chunk_len;	/* bytes in chunk */
	size_t		 chunk_pos;	/* bytes of chunk already written */
	char		 chunk[POP3_CHUNK];
};

struct pop3_session {
	struct pop3_server *srv;
	struct session	 core;			/* conn, line pump, idle timer, errors, transcript */

	char		 id[LOG_SESSION_ID_MAX];	/* session id, in the greeting and logs */
	char		 lock_owner[POP3_LOCK_OWNER_MAX];	/* "HOST/PID/id": the lock's owner */
	char		 peer[INET6_ADDRSTRLEN];	/* client address as text */
	bool		 loopback;		/* peer on 127/8 or ::1 */
	bool		 tls;			/* TLS is on (STLS done or implicit) */
	bool		 tls_pending;		/* STLS accepted, handshake running */
	enum pop3_state	 state;
	struct sasl	 sasl;			/* AUTH exchange; .active: the next line is a response */

	char		 user[AUTH_FIELD_MAX];	/* USER argument (a login name) */
	char		 method[8];		/* "USER", "PLAIN", "LOGIN": the login being checked */
	bool		 have_user;			/* USER was accepted */
	char		 account[STORE_NAME_MAX + 1];	/* set at login */
	unsigned	 auth_failures;

	/* Mailbox snapshot taken at login: message n is msgs[n - 1]. */
	struct store_msg *msgs;
	size_t		 nmsgs;
	unsigned char	*deleted;		/* bitmap, (nmsgs + 7) / 8 bytes */
	size_t		 ndeleted;
	int64_t		 deleted_octets;
	bool		 locked;			/* we hold the store lock */
	int64_t		 touched;			/* last store_mailbox_touch */

	/* Counters for the logout line. */
	unsigned	 nretr;
	unsigned	 ndele;
	int64_t		 bytes;				/* message octets sent by RETR/TOP */

	struct pop3_stream *stream;		/* an output in progress, or NULL */
	struct conn_timer *delay_ev;		/* failed-login delay */
	struct reply	 delayed;		/* the reply sent when the delay ends */
	long		 delay_secs;		/* set by a handler: send `delayed` after this */
	bool		 stls_req;		/* set by STLS: start TLS after the reply */
	struct conn_timer *touch_ev;		/* keeps the mailbox lock fresh */
	struct pop3_work *auth_job;		/* login (check, lock, snapshot) in flight, or NULL */
	struct pop3_work *quit_job;		/* QUIT's expunge and release in flight, or NULL */
	struct pop3_work *touch_job;		/* lock refresh in flight, or NULL */
	bool		 busy;			/* a stream or a delay holds the input */
	bool		 close_req;		/* close once the output is flushed */
	bool		 closed;		/* close already asked of the connection */
	const char	*close_why;		/* reason logged at close, when ours ("timeout") */
};

/* The connection callbacks (net.c, or a test driver); accept's arg is the
 * struct pop3_server. accept writes the greeting and returns the session. */
extern const struct conn_handler pop3_conn_handler;
/* The connection is gone (why: "quit", "eof", "timeout", "error", "shutdown").
 * Releases the lock without deleting anything unless QUIT got to UPDATE,
 * flushes the transcript, logs the logout and frees s. */
void	pop3_session_closed(struct pop3_session *s, const char *why);

/* The daemon is stopping: say so (unless a multi-line response is being
 * sent) and close after flushing. Nothing is deleted. */
void	pop3_session_shutdown(void *session);
/* The shutdown's grace is over: close the connection now, without a reply
 * (net.c then calls pop3_session_closed from the loop). */
void	pop3_session_abort(void *session);
/* An asynchronous command (REPLY_NONE from its handler) finished with r:
 * write it (or start the failed-login delay), then go on with the input. */
void	pop3_session_async_done(struct pop3_session *s, struct reply *r);
/* pop3_login.c calls this after a successful login (starts the lock refresh). */
void	pop3_session_logged_in(struct pop3_session *s);
/* The one state transition (logs old -> new). */
void	pop3_enter_state(struct pop3_session *s, enum pop3_state st);
const char *pop3_strstate(enum pop3_state st);
/* Plaintext passwords (USER/PASS, AUTH PLAIN/LOGIN) are allowed now:
 * TLS, loopback, or [pop3d] plaintext_auth. */
bool	pop3_plaintext_ok(const struct pop3_session *s);

/* ---- pop3_cmd.c ---------------------------------------------------------- */
extern const struct cmd_proto pop3_proto;

/* ---- pop3_login.c -------------------------------------------------------- */
/* The AUTHORIZATION handlers of the command table (RFC 1939 7, RFC 5034,
 * RFC 2595 4). */
void	pop3_login_user(void *s, char *args, struct reply *r);
void	pop3_login_pass(void *s, char *args, struct reply *r);
void	pop3_login_auth(void *s, char *args, struct reply *r);
void	pop3_login_apop(void *s, char *args, struct reply *r);
void	pop3_login_stls(void *s, char *args, struct reply *r);
/* One line while a SASL exchange waits for a response (RFC 5034 4). */
void	pop3_login_sasl_line(struct pop3_session *s, char *line, struct reply *r);
/* The SASL mechanisms offered now (CAPA "SASL ..." and a bare AUTH), or NULL
 * when none is: the one place that decides. */
const char *pop3_login_mechanisms(const struct pop3_session *s);

/* ---- pop3_store.c -------------------------------------------------------- */
/*
 * The store writes of a session - the mailbox lock and snapshot at login,
 * the expunge and release at QUIT, the lock refresh, the release when a
 * session ends - as jobs on the authpool threads (each with its own store
 * handle), never on the event loop: while another program holds SQLite's
 * write lock they wait up to the busy timeout, and the loop keeps serving.
 * Without a pool (srv->auth NULL: unit tests, fuzzing) they run inline.
 */
enum pop3_work_kind {
	POP3_WORK_LOGIN,	/* after the password check: stale releases, lock, snapshot */
	POP3_WORK_QUIT,		/* expunge (reserve), make the reserve again, release */
	POP3_WORK_TOUCH,	/* refresh the lock's time */
	POP3_WORK_UNLOCK	/* release a lock */
};

/* Locks of this process's ended sessions a login may release first. */
#define POP3_STALE_MAX		4

struct pop3_work {
	struct authpool_job job;		/* first: the pool's part; job.arg is the session or NULL */
	enum pop3_work_kind kind;
	struct pop3_server *srv;
	char		 sid[LOG_SESSION_ID_MAX];	/* for the log, also after the session is gone */
	char		 account[STORE_NAME_MAX + 1];	/* LOGIN: set by the worker from job.account */
	char		 owner[POP3_LOCK_OWNER_MAX];
	long		 ttl;				/* LOGIN */
	/* LOGIN: locks (account, owner) of ended sessions of this process, which
	 * the worker releases first when they are on the account that logs in. */
	char		 stale_account[POP3_STALE_MAX][STORE_NAME_MAX + 1];
	char		 stale_owner[POP3_STALE_MAX][POP3_LOCK_OWNER_MAX];
	size_t		 nstale;
	unsigned	 stale_released;		/* bit i: stale i released */
	int64_t		*ids;				/* QUIT: entries to delete */
	size_t		 nids;
	/* Results. */
	int		 rc;		/* LOGIN: the lock (0, STORE_LOCKED, -1); QUIT: the expunge; else the call */
	int		 list_rc;	/* LOGIN: the snapshot */
	struct store_msg *msgs;		/* LOGIN: the snapshot (moved to the session) */
	size_t		 nmsgs;
	int		 unlock_rc;	/* QUIT, and a LOGIN whose snapshot failed: the release */
	bool		 reserve_released, reserve_made;
	char		 error[256];	/* store_errmsg() of the failure */
	char		 unlock_error[256];
};

/* A new job of kind for s (NULL: out of memory); not submitted. */
struct pop3_work *pop3_work_new(struct pop3_session *s, enum pop3_work_kind kind);
/* Run w: on the pool (true: w->job.done runs later on the loop thread) or,
 * without a pool, here (false: the results are in w now). LOGIN jobs are
 * run by pop3_login.c with the check. */
bool	pop3_work_run(struct pop3_server *srv, struct pop3_work *w);
/* The worker's part of a job (what a pool thread runs, with its handle). */
void	pop3_work_do(struct store *st, struct authpool_job *job);
/* LOGIN: fill w's stale list from srv's pending releases that may be on
 * the account of the login name name. */
void	pop3_work_stale(struct pop3_server *srv, struct pop3_work *w, const char *name);
/* LOGIN done: forget the pending releases the worker made; a login whose
 * session is gone gives its lock back. */
void	pop3_work_login_done(struct pop3_work *w, bool session_gone);
void	pop3_work_free(struct pop3_work **w);
/* Release (account, owner) of a session that ended, off the loop; when the
 * release fails (a full or read-only disk) it is remembered and retried
 * with backoff until it succeeds, and a login of the same account on this
 * pop3d releases it first. */
void	pop3_store_release(struct pop3_server *srv, const char *account, const char *owner,
	    const char *sid);
/* A release failed: remember it and retry it later. */
void	pop3_store_release_failed(struct pop3_server *srv, const char *account,
	    const char *owner);
/* Shutdown: log and forget the releases still pending (a later pop3d takes
 * those locks over at once: their process is gone), free the timer. Once
 * pool_gone is set, releases are not tried any more: a store locked by
 * another program would hold the exit up for another busy timeout. */
void	pop3_store_stop(struct pop3_server *srv);

/* ---- pop3_stream.c ------------------------------------------------------- */
/* Prepare a stream of kind for message index msg (RETR, TOP with lines) or
 * for the whole listing (LIST/UIDL). RETR/TOP read their first chunk now so
 * that a store failure becomes an -ERR before "+OK". Returns 0, -1 on a store
 * error, STORE_NOTFOUND when the message is gone. */
int	pop3_stream_start(struct pop3_session *s, enum pop3_stream_kind kind,
	    size_t msg, long lines);
/* Fill out up to POP3_OUTBUF_HIGH. Returns 1 when the stream is complete
 * (terminator written, stream freed), 0 when it waits for the output to
 * drain, -1 on a store error in the middle (the session must close). */
int	pop3_stream_run(struct pop3_session *s, struct evbuffer *out);
void	pop3_stream_free(struct pop3_session *s);

/* Snapshot helpers shared by pop3_cmd.c and pop3_stream.c. */
bool	pop3_msg_is_deleted(const struct pop3_session *s, size_t idx);

#endif
