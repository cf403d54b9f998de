/*
 * smtp_session.h - the inside of smtpd, shared by its files only: the
 * server context, one struct smtp_session per connection with its explicit
 * state (RFC 5321 4.1.4 sequencing), one struct smtp_tx per message, and the
 * store worker threads (group commit).
 *
 *   smtp_session.c  connection callbacks, line loop, replies, transitions
 *   smtp_cmd.c      the command table and the command handlers
 *   smtp_data.c     DATA: end-of-data rules, latched errors, trace headers
 *   smtp_auth.c     AUTH: common/sasl.c mapped to replies, the failure delay
 *   smtp_writer.c   the writer thread: store commits (group commit)
 *
 * Nothing here touches a socket: the session gets a struct conn (conn.h)
 * and its line pump, idle timer, error count and transcript budget from
 * common/session.c; it reads lines and writes replies into an evbuffer
 * (HACKING.md C5).
 */
#ifndef CORREIO_SMTP_SESSION_H
#define CORREIO_SMTP_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <netinet/in.h>

#include "auth.h"
#include "authpool.h"
#include "buf.h"
#include "cmdtab.h"
#include "config.h"
#include "log.h"
#include "conn.h"
#include "linebuf.h"
#include "mailaddr.h"
#include "loginguard.h"
#include "reply.h"
#include "sasl.h"
#include "session.h"
#include "store.h"
#include "transcript.h"

#define SMTP_SESSION_ID_MAX	LOG_SESSION_ID_MAX
#define SMTP_HELO_MAX		256
/* Output queued for a session above which it stops reading commands until
 * the client has read its replies (pipelining floods stay bounded). */
#define SMTP_OUTPUT_HIGH	(64 * 1024)
/* Lines of message text copied into the transcript as a summary: the first
 * ones, and the last ones before the end (or before the connection was lost:
 * a forgotten final dot shows). Each at most SMTP_TRANSCRIPT_LINE_MAX. */
#define SMTP_TRANSCRIPT_DATA_LINES	5
#define SMTP_TRANSCRIPT_TAIL_LINES	3
#define SMTP_TRANSCRIPT_LINE_MAX	200
/* Message text all sessions together may hold in memory before DATA is
 * refused with 452 4.3.1 (each session alone is bounded by max_message_size;
 * this bounds the sum, e.g. 1000 connections x 25 MB). */
#define SMTP_INFLIGHT_MAX	((size_t)512 * 1024 * 1024)

/* RCPTs past max_recipients answered 452 without counting as errors (the
 * client sends them later, RFC 5321 4.5.3.1.10); beyond these, each 452
 * counts toward max_errors (Postfix: smtpd_recipient_overshoot_limit). */
#define SMTP_RCPT_OVERSHOOT	1000

enum smtp_state {
	SMTP_S_REFUSED,		/* 554 greeting sent: only QUIT (RFC 5321 3.1) */
	SMTP_S_INIT,		/* greeted; waiting for HELO/EHLO */
	SMTP_S_HELO,		/* greeted by the client; no transaction */
	SMTP_S_MAIL,		/* MAIL accepted, no recipient yet */
	SMTP_S_RCPT,		/* at least one recipient accepted */
	SMTP_S_DATA,		/* reading message text after 354 */
	SMTP_S_COMMIT,		/* message handed to the store writer */
	SMTP_S_AUTH,		/* AUTH exchange: continuation lines expected */
	SMTP_S_TLS,		/* STARTTLS accepted: handshake in progress */
	SMTP_S_QUIT		/* closing */
};

/* Errors latched while reading DATA, reported once after the end (HACKING.md C6). */
enum smtp_data_error {
	DATA_OK = 0,
	DATA_ERR_SIZE,		/* over max_message_size: 552 5.3.4 */
	DATA_ERR_BARE_LF,	/* strict mode: a bare LF: 554 5.5.2 */
	DATA_ERR_BARE_CR,	/* a bare CR: 554 5.5.2 */
	DATA_ERR_LINE,		/* a line over smtp_data_line_max: 500 5.5.2 */
	DATA_ERR_LOOP,		/* too many Received: headers: 554 5.4.6 */
	DATA_ERR_STORE,		/* out of memory, a spool write failed: 451 4.3.0 */
	DATA_ERR_BUSY,		/* SMTP_INFLIGHT_MAX reached: 452 4.3.1 */
	DATA_ERR_FULL		/* the spool's file system is full: 452 4.3.1 */
};

/* One message: from MAIL until RSET, HELO/EHLO or the end of DATA. */
struct smtp_tx {
	struct mailaddr	 from;
	char		 from_str[STORE_ADDR_MAX + 1];	/* "" for <> */
	bool		 smtputf8;	/* MAIL ... SMTPUTF8 */
	bool		 body8bit;	/* MAIL ... BODY=8BITMIME */
	size_t		 nrcpt;		/* recipients accepted */
	size_t		 nremote;	/* of which for the relay queue */
	size_t		 rcpt_tried;	/* RCPT commands given */
	size_t		 overshoot;	/* RCPTs refused for max_recipients */
	struct buf	 rcpts;		/* accepted recipients, "<a>,<b>" for the log */
	char		 first_rcpt[STORE_ADDR_MAX + 1];
	struct store_delivery *d;
	/* DATA reader */
	bool		 nc_mode;	/* DATA came with a bare LF: a person on nc */
	bool		 prev_crlf;	/* the previous data line ended in CRLF */
	bool		 tail_pending;	/* an over-long line's ending is not known yet */
	bool		 in_header;	/* still in the header section */
	size_t		 header_lines;	/* lines of the header section so far */
	bool		 has_from;	/* the client's text has From: ... */
	bool		 has_date;	/* ... Date: ... */
	bool		 has_msgid;	/* ... Message-ID: */
	long		 received;	/* Received: headers seen */
	size_t		 size;		/* octets of message text from the client */
	size_t		 lines;
	/* The last lines of text, for the transcript (the first ones are
	 * recorded as they come): a ring of SMTP_TRANSCRIPT_TAIL_LINES. */
	char		 tail[SMTP_TRANSCRIPT_TAIL_LINES][SMTP_TRANSCRIPT_LINE_MAX + 1];
	size_t		 tail_len[SMTP_TRANSCRIPT_TAIL_LINES];
	enum smtp_data_error error;
	size_t		*inflight;	/* the server's total, charged with ... */
	size_t		 charged;	/* ... the octets this message holds */
};

struct smtp_worker;
struct smtp_job;

/* Everything a session needs from the process. */
struct smtp_server {
	struct config		*cfg;
	struct event_base	*base;
	struct store		*store;		/* loop thread: lookups only */
	struct smtp_worker	*writer;	/* store commits (group commit) */
	atomic_uint		 in_tx;		/* sessions in a mail transaction: the
						 * writer's commits wait a moment for
						 * them (smtp_writer.c) */
	atomic_uint		 tx_begun;	/* transactions begun (MAIL accepted) */
	struct sesslog		*sesslog;	/* sessions and transcripts; NULL: none */
	struct authpool		*checker;	/* password checks (common/authpool.c); NULL: inline */
	struct loginguard	*guard;		/* failed logins across sessions; NULL: per session */
	/* Hands a job to a worker: smtp_worker_submit in the daemon; the fuzz
	 * target runs jobs inline. */
	void			(*submit)(struct smtp_worker *w, struct smtp_job *job);
	void			*ssl_ctx;	/* SSL_CTX * or NULL */
	bool			 refusing;	/* greet every session with 554 (only QUIT) */
	size_t			 inflight;	/* message octets held by all sessions */
	size_t			 inflight_max;	/* SMTP_INFLIGHT_MAX; 0: no limit */
	const char		*spool_dir;	/* bodies past 64 KiB spool here; NULL: memory */
	struct session_list	 sessions;	/* every live session (shutdown) */
	bool			 stopping;	/* SIGTERM: each session gets 421 */
};

struct smtp_session {
	struct smtp_server	*srv;
	struct session		 core;		/* conn, line pump, idle timer, errors, transcript */
	char			 id[SMTP_SESSION_ID_MAX];
	enum smtp_state		 state;
	enum listen_role	 role;
	char			 peer[INET6_ADDRSTRLEN];
	char			 helo[SMTP_HELO_MAX];
	bool			 esmtp;		/* EHLO (not HELO) */
	bool			 tls;
	bool			 peer_secure;	/* loopback: AUTH allowed without TLS */
	bool			 trusted;	/* trusted network: may relay */
	enum line_eol		 last_eol;	/* how the last command line ended */
	char			 user[STORE_NAME_MAX + 1];	/* authenticated account or "" */
	long			 auth_failures;
	unsigned long		 nmessages;
	struct sasl		 sasl;		/* the AUTH exchange (state SMTP_S_AUTH) */
	struct conn_timer	*delay_ev;	/* failed-AUTH delay */
	struct reply		*delayed;	/* reply sent when delay_ev fires */
	bool			 busy;		/* a worker job or a delay is pending */
	bool			 starttls;	/* start TLS once the 220 is queued */
	bool			 gone;		/* connection closed while busy */
	struct smtp_tx		*tx;
};

/* ---- smtp_session.c --------------------------------------------------- */
extern const struct conn_handler smtp_conn_handler;	/* arg: struct smtp_server * */
void	smtp_enter_state(struct smtp_session *s, enum smtp_state st);
const char *smtp_strstate(enum smtp_state st);
/* Write a reply, record it, count errors, act on REPLY_CLOSE. */
void	smtp_reply(struct smtp_session *s, const struct reply *r);
/* Resume after an asynchronous step: un-pause and process buffered lines.
 * Frees the session when its connection went away meanwhile (returns false). */
bool	smtp_session_resume(struct smtp_session *s);
void	smtp_session_pause(struct smtp_session *s);
/* The server is stopping (srv->stopping): send 421 4.3.2 and close, now or,
 * for a session waiting for a worker, as soon as its job is back (a message
 * being committed still gets its 250 first). */
void	smtp_session_shutdown(void *session);
/* Free the sessions left after the event loop has stopped (at exit). */
void	smtp_session_free_all(struct smtp_server *srv);
/* Transcript helpers (enforce transcript_max_lines). */
void	smtp_transcript_client(struct smtp_session *s, const char *line, size_t len, bool secret);
/* The last lines of message text not yet in the transcript (DATA ended, or
 * the connection was lost during it). */
void	smtp_data_transcript_tail(struct smtp_session *s);
/* Flush the transcript and record how the session ended in the session log. */
void	smtp_session_log_close(struct smtp_session *s, const char *why);
void	smtp_transcript_note(struct smtp_session *s, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* AUTH may be used now: TLS, a loopback peer, or smtp_plaintext_auth. */
bool	smtp_auth_allowed(const struct smtp_session *s);
void	smtp_tx_free(struct smtp_tx **tx);

/* ---- smtp_cmd.c -------------------------------------------------------- */
extern const struct cmd_proto smtp_cmd_proto;

/* ---- smtp_data.c ------------------------------------------------------- */
/* Start DATA (after the checks): trace headers into the delivery, 354. */
void	smtp_data_begin(struct smtp_session *s, bool nc_mode, struct reply *r);
/* One line of message text (or LINE_TOO_LONG). */
void	smtp_data_line(struct smtp_session *s, enum line_status st, const char *line,
	    size_t len, enum line_eol eol);
/* True when n more octets fit under max_message_size (SIZE= and DATA). */
bool	smtp_data_size_ok(const struct smtp_session *s, size_t already, size_t more);

/* ---- smtp_auth.c ------------------------------------------------------- */
void	smtp_auth_start(struct smtp_session *s, char *args, struct reply *r);
/* A continuation line while state is SMTP_S_AUTH. */
void	smtp_auth_line(struct smtp_session *s, char *line);
void	smtp_auth_cleanup(struct smtp_session *s);

/* ---- smtp_writer.c ----------------------------------------------------- */
enum smtp_job_kind {
	JOB_DELIVERY		/* commit d (batched with every other waiting delivery) */
};

struct smtp_job {
	struct smtp_job		*next;
	enum smtp_job_kind	 kind;
	struct store_delivery	*d;
	char			 session_id[SMTP_SESSION_ID_MAX];
	int			 result;	/* 0 ok, -1 failed, STORE_FULL */
	/* Called on the loop thread when done; NULL: the worker frees the job. */
	void			(*done)(struct smtp_job *job);
	void			*arg;
	struct net_loop_job	 loop;		/* the hand-back: needs no memory */
};

/* Start a worker thread with its own store handle. NULL with err on failure.
 * in_tx: the count of sessions in a mail transaction (MAIL to the end of
 * DATA) its commits wait for, and tx_begun, of transactions begun, or NULL. */
struct smtp_worker *smtp_worker_start(struct event_base *base, const char *store_path,
	    const char *name, const atomic_uint *in_tx, const atomic_uint *tx_begun, char *err,
	    size_t errlen);
/* Queue a job (thread-safe). The job belongs to the worker until done runs. */
void	smtp_worker_submit(struct smtp_worker *w, struct smtp_job *job);
/*
 * How long a commit waits, when it is due, for the messages of the other
 * sessions that have a mail transaction open (MAIL to the end of DATA):
 * PostgreSQL's commit_delay, asked only when there are commit_siblings.
 * Each commit costs a sync and the pages every commit rewrites (the tables'
 * and indexes' last pages, the id counter), whatever its size: with 20
 * senders of 4 KB a commit held 3 messages; waiting up to 0.4 ms doubles
 * that and saves about 15 us of CPU per message (docs/PERFORMANCE.md). The
 * wait ends as soon as the last open transaction hands its message over. A
 * lone sender does not wait. Beside a transaction that stays open (a
 * session typed by hand, a slow upload), after SMTP_GATHER_EMPTY waits in a
 * row that nobody joined and in which nobody began a transaction, gathering
 * is off for SMTP_GATHER_OFF waits' time (0.1 s).
 */
#define SMTP_GATHER_US		400
#define SMTP_GATHER_EMPTY	3
#define SMTP_GATHER_OFF		250

/* How long a commit waits for open transactions (SMTP_GATHER_US by default),
 * and how many group commits it made: for tests. */
void	smtp_worker_set_gather(struct smtp_worker *w, long usec);
unsigned long smtp_worker_commits(struct smtp_worker *w);
/* Finish the queued jobs, stop the thread, close its store. */
void	smtp_worker_stop(struct smtp_worker **w);
/* Free a job. */
void	smtp_job_free(struct smtp_job *job);

#endif
