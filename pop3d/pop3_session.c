/*
 * pop3_session.c - the life of one POP3 session (RFC 1939 3-6): greeting,
 * reading lines with telnet tolerance, dispatching them in order, writing
 * the replies, the state transitions, the failed-login delay, STLS
 * (RFC 2595 4), the transcript and the login/logout log lines.
 *
 * Owns: struct pop3_session's lifetime, what the line pump of
 * common/session.c may take and where each line goes, the autologout on the
 * idle timer (RFC 1939 3: close without a response), and the mailbox lock for
 * the length of the session. Never: touches a socket (struct conn does),
 * deletes a message unless QUIT brought the session to UPDATE, or answers a
 * pipelined command before the one in front of it is complete.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "sesslog.h"
#include "pop3_session.h"


static const char *const pop3_state_names[POP3_NSTATES] = {
	[POP3_AUTHORIZATION] = "AUTHORIZATION",
	[POP3_TRANSACTION] = "TRANSACTION",
	[POP3_UPDATE] = "UPDATE",
};

const char *
pop3_strstate(enum pop3_state st)
{
	return st < POP3_NSTATES ? pop3_state_names[st] : "?";
}

void
pop3_enter_state(struct pop3_session *s, enum pop3_state st)
{
	log_debug("session=%s event=state from=%s to=%s", s->id, pop3_strstate(s->state),
	    pop3_strstate(st));
	s->state = st;
}

bool
pop3_plaintext_ok(const struct pop3_session *s)
{
	return s->tls || s->loopback || s->srv->cfg->pop3_plaintext_auth;
}

bool
pop3_msg_is_deleted(const struct pop3_session *s, size_t idx)
{
	assert(idx < s->nmsgs);
	return (s->deleted[idx / 8] >> (idx % 8)) & 1;
}

/* ---- transcript ----------------------------------------------------------- */

static void
session_tr_flush(struct pop3_session *s)
{
	struct transcript *t = &s->core.tr;

	if (!t->enabled || t->pending.len == 0)
		return;
	/* The session log's thread writes it (common/sesslog.c): no store
	 * write on the event loop. */
	sesslog_lines(s->srv->sesslog, s->id, "pop3", t->pending.data, t->pending.len);
	transcript_flushed(t);
}

/* Count a transcript line; false once transcript_max_lines is reached. */
static bool
tr_room(struct pop3_session *s)
{
	return session_tr_room(&s->core, 1);
}

/* After each reply: a session can be read while it goes on. */
static void
session_tr_maybe_flush(struct pop3_session *s)
{
	session_tr_flush(s);
}

/* ---- output -------------------------------------------------------------- */

static struct evbuffer *
session_out(struct pop3_session *s)
{
	return conn_output(s->core.conn);
}

static void session_request_close(struct pop3_session *s);

/* Write a reply (status line, and the body of a multi-line one) and record it. */
static void
session_write_reply(struct pop3_session *s, const struct reply *r)
{
	struct evbuffer *out = session_out(s);
	char line[REPLY_TEXT_MAX + 64];
	const char *p, *nl;

	if (r->flags & POP3_REPLY_CONT) {
		evbuffer_add_printf(out, "+ %s\r\n", r->text);
		if (tr_room(s)) {
			snprintf(line, sizeof(line), "+ %s", r->text);
			transcript_server(&s->core.tr, line, strlen(line));
		}
		return;
	}
	if (reply_write_pop3(out, r, line, sizeof(line)) == 0) {
		/* Out of memory: a session that cannot answer must not go on. */
		log_warnx("session=%s event=reply-failed reason=memory", s->id);
		pop3_stream_free(s);	/* no body after a status line that is not there */
		session_request_close(s);
		return;
	}
	if (tr_room(s))
		transcript_server(&s->core.tr, line, strcspn(line, "\r\n"));
	if (!(r->flags & POP3_REPLY_MULTI))
		return;
	/* Multi-line body: the lines after the first, dot-stuffed (RFC 1939 3). */
	p = strchr(r->text, '\n');
	while (p != NULL) {
		p++;
		nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0 && p[0] == '.')
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
		if (tr_room(s))
			transcript_server(&s->core.tr, p, n);
		p = nl;
	}
	evbuffer_add(out, ".\r\n", 3);
	if (tr_room(s))
		transcript_server(&s->core.tr, ".", 1);
}

/* Ask for the connection to close after what is queued has been sent. */
static void
session_request_close(struct pop3_session *s)
{
	s->close_req = true;
}

/* Act on a close request; the last thing an entry point does. */
static void
session_settle(struct pop3_session *s)
{
	session_tr_maybe_flush(s);
	if (s->close_req && !s->closed && s->core.conn != NULL) {
		s->closed = true;
		conn_close(s->core.conn, true);
	}
}

/* ---- failed-login delay and the lock refresh ----------------------------- */

static void
session_resume(struct pop3_session *s)
{
	s->busy = false;
	conn_pause_read(s->core.conn, false);
	session_pump(&s->core);
}

static void
session_delay_cb(void *arg)
{
	struct pop3_session *s = arg;

	session_write_reply(s, &s->delayed);
	if (s->delayed.flags & REPLY_CLOSE)
		session_request_close(s);
	session_resume(s);
	session_settle(s);
}

/* The lock is refreshed this often: a few times per pop3_lock_ttl. */
static long
session_touch_ms(const struct pop3_session *s)
{
	long ttl = s->srv->cfg->limits.pop3_lock_ttl;

	return (ttl / 3 > 0 ? ttl / 3 : 1) * 1000;
}

/* Back on the loop thread after a lock refresh. */
static void
session_touched(struct authpool_job *job)
{
	struct pop3_work *w = (struct pop3_work *)job;
	struct pop3_session *s = job->arg;

	if (w->rc == -1)
		log_warnx("session=%s event=lock-touch-failed error=\"%s\"", w->sid, w->error);
	if (s != NULL)
		s->touch_job = NULL;
	pop3_work_free(&w);
}

static void
session_touch_cb(void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_work *w;

	/* A write: on a pool thread, one at a time. */
	if (s->locked && s->touch_job == NULL && (w = pop3_work_new(s, POP3_WORK_TOUCH)) != NULL) {
		w->job.done = session_touched;
		if (pop3_work_run(s->srv, w))
			s->touch_job = w;
		else {
			w->job.arg = NULL;
			session_touched(&w->job);
		}
	}
	s->touched = time(NULL);
	conn_timer_set(s->touch_ev, session_touch_ms(s));
}

/* Called after a successful login: refresh the lock a few times per TTL. */
static void
session_start_touch(struct pop3_session *s)
{
	s->touched = time(NULL);
	if (s->touch_ev != NULL || s->core.conn == NULL)
		return;
	s->touch_ev = conn_timer_new(s->core.conn, session_touch_cb, s);
	if (s->touch_ev != NULL)
		conn_timer_set(s->touch_ev, session_touch_ms(s));
}

/* ---- input --------------------------------------------------------------- */

/* Record the client's line with secrets masked. */
static void
session_tr_client(struct pop3_session *s, const char *line, size_t len, bool secret)
{
	if (tr_room(s))
		transcript_client(&s->core.tr, line, len, secret);
}

/* A client's mistake, counted toward max_errors: an -ERR, except the
 * server's own trouble ([SYS/TEMP]) and a mailbox in use ([IN-USE]). */
static bool
reply_is_client_error(const struct reply *r)
{
	return (r->flags & REPLY_ERROR) && strcmp(r->esc, "SYS/TEMP") != 0 &&
	    strcmp(r->esc, "IN-USE") != 0;
}

/* After a reply was written: close, start TLS, start a stream or a delay. */
static void
session_after_reply(struct pop3_session *s, const struct reply *r)
{
	struct evbuffer *out = session_out(s);
	int rc;

	if (r->flags & REPLY_CLOSE) {
		session_request_close(s);
		return;
	}
	if (s->stls_req) {
		s->stls_req = false;
		linebuf_clear(&s->core.lb);	/* RFC 2595 4: pipelined plaintext is discarded */
		if (conn_starttls(s->core.conn) == -1) {
			log_warnx("session=%s event=stls-failed", s->id);
			session_request_close(s);
			return;
		}
		s->tls_pending = true;
		if (tr_room(s))
			transcript_note(&s->core.tr, "TLS handshake");
		return;
	}
	if (s->stream != NULL) {
		rc = pop3_stream_run(s, out);
		if (rc == 0) {
			/* Wait for the drained callback; no new commands meanwhile. */
			s->busy = true;
			conn_pause_read(s->core.conn, true);
		} else if (rc == -1)
			session_request_close(s);
	}
}

/*
 * A command produced r: write it, or start the failed-login delay (the
 * handler set delay_secs), or wait for an asynchronous result (REPLY_NONE).
 */
static void
session_finish(struct pop3_session *s, struct reply *r)
{
	if (s->delay_secs > 0) {
		long msec = s->delay_secs * 1000;

		s->delay_secs = 0;
		if (s->delay_ev == NULL)
			s->delay_ev = conn_timer_new(s->core.conn, session_delay_cb, s);
		if (s->delay_ev != NULL) {
			conn_timer_set(s->delay_ev, msec);
			s->busy = true;
			conn_pause_read(s->core.conn, true);
		} else {
			session_write_reply(s, &s->delayed);
			if (s->delayed.flags & REPLY_CLOSE)
				session_request_close(s);
		}
		return;
	}
	if (r->flags & REPLY_NONE) {
		/* e.g. a password being verified: no new command meanwhile */
		s->busy = true;
		conn_pause_read(s->core.conn, true);
		return;
	}
	/* max_errors (counted in common/session.c): this reply closes. */
	if (reply_is_client_error(r) && session_count_error(&s->core) &&
	    !(r->flags & REPLY_CLOSE)) {
		size_t tl = strlen(r->text);
		snprintf(r->text + tl, sizeof(r->text) - tl, " (too many errors, closing)");
		r->flags |= REPLY_CLOSE;
		r->flags &= ~POP3_REPLY_MULTI;
		log_info("session=%s event=too-many-errors client=%s", s->id, s->peer);
	}
	session_write_reply(s, r);
	session_after_reply(s, r);
}

void
pop3_session_async_done(struct pop3_session *s, struct reply *r)
{
	s->busy = false;
	session_finish(s, r);
	if (!s->busy)
		session_resume(s);
	session_settle(s);
}

/* One complete command (or SASL response) line from the client. */
static void
session_command(struct pop3_session *s, char *line, size_t len)
{
	const struct cmd_def *def;
	struct reply r;
	bool had_iac, secret;
	size_t vlen;

	len = linebuf_untelnet(line, len, &had_iac);
	if (memchr(line, '\0', len) != NULL) {
		session_tr_client(s, "[line with a NUL byte]", 22, false);
		if (s->sasl.active) {
			sasl_clear(&s->sasl);
			explicit_bzero(line, len);
		}
		reply_set(&r, REPLY_POP3_ERR, NULL, "NUL byte in a command line");
		session_finish(s, &r);
		return;
	}
	if (s->sasl.active) {
		session_tr_client(s, line, len, true);
		pop3_login_sasl_line(s, line, &r);
		def = NULL;
	} else {
		if (len == 0 && had_iac)
			return;	/* nothing but telnet negotiation */
		if (len == 0) {
			/* Enter pressed on an empty line: answer, but it is no error. */
			session_tr_client(s, "", 0, false);
			reply_set(&r, REPLY_POP3_ERR, NULL, "Empty command; HELP lists the commands");
			r.flags &= ~REPLY_ERROR;
			session_finish(s, &r);
			return;
		}
		vlen = strcspn(line, " ");
		def = cmd_lookup(&pop3_proto, line, vlen);
		secret = def != NULL && (def->flags & CMD_SECRET);
		/* PASS keeps trailing blanks: they may be part of the password. */
		if (!secret)
			while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
				line[--len] = '\0';
		session_tr_client(s, line, len, secret);
		{
			char verb[CMD_LOG_VERB_MAX + 1];

			snprintf(verb, sizeof(verb), "%.*s", (int)vlen, line);
			cmd_dispatch(&pop3_proto, s, s->state, line, &r, &def);
			if (!(r.flags & REPLY_NONE))
				cmd_log_refused(s->id, verb, strlen(verb), &r);
		}
	}
	session_finish(s, &r);
}

/* May the pump take another line? Not during a stream, a delay, a password
 * check, STLS or once closing. */
static bool
session_ready(void *arg)
{
	struct pop3_session *s = arg;

	return !s->busy && !s->close_req && !s->tls_pending;
}

/* One line from the pump. */
static void
session_line(void *arg, enum line_status st, char *line, size_t len, enum line_eol eol)
{
	struct pop3_session *s = arg;
	struct reply r;

	(void)eol;
	if (st == LINE_TOO_LONG) {
		session_tr_client(s, "[line too long]", 15, false);
		reply_set(&r, REPLY_POP3_ERR, NULL, "Line too long (at most %ld octets)%s",
		    s->srv->cfg->limits.pop3_line_max,
		    s->sasl.active ? "; authentication cancelled" : "");
		sasl_clear(&s->sasl);
		session_finish(s, &r);	/* counts it against max_errors */
		return;
	}
	session_command(s, line, len);
}

/*
 * The idle timer (from the last complete line) ran out: RFC 1939 3, the
 * autologout closes without a response and without deleting anything.
 * While we are the ones who are busy (a stream the client reads, a delay, a
 * password check, a TLS handshake) it starts again.
 */
static void
session_idle(void *arg)
{
	struct pop3_session *s = arg;

	if (s->busy || s->tls_pending) {
		session_touch(&s->core);
		return;
	}
	if (s->closed)
		return;
	log_info("session=%s event=timeout client=%s state=%s", s->id, s->peer,
	    pop3_strstate(s->state));
	s->close_why = "timeout";
	s->closed = true;
	conn_close(s->core.conn, false);
}

static const struct session_proto pop3_session_proto = {
	.ready = session_ready,
	.line = session_line,
	.idle = session_idle,
};

static void
on_read(void *arg)
{
	struct pop3_session *s = arg;

	session_pump(&s->core);
	session_settle(s);
}

static void
on_drained(void *arg)
{
	struct pop3_session *s = arg;
	int rc;

	if (s->close_req)
		return;
	if (s->stream == NULL) {
		session_drained(&s->core);
		session_settle(s);
		return;
	}
	rc = pop3_stream_run(s, session_out(s));
	if (rc == 0)
		return;
	if (rc == -1)
		session_request_close(s);
	else
		session_resume(s);
	session_settle(s);
}

static void
on_tls_ready(void *arg)
{
	struct pop3_session *s = arg;

	s->tls = true;
	if (!s->tls_pending)
		return;		/* implicit TLS: the greeting is already queued */
	s->tls_pending = false;
	/* RFC 2595 4: the client must forget what it knew; so do we. */
	s->have_user = false;
	s->user[0] = '\0';
	log_debug("session=%s event=tls-started", s->id);
	session_pump(&s->core);
	session_settle(s);
}

/* ---- birth and death ----------------------------------------------------- */

static void *
on_accept(struct conn *c, void *arg)
{
	struct pop3_server *srv = arg;
	const struct limits *lim = &srv->cfg->limits;
	struct session_params sp;
	struct pop3_session *s;
	struct reply r;
	bool implicit_tls = c->role == ROLE_POP3S;

	if (srv->stopping || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->srv = srv;
	log_session_id(s->id, sizeof(s->id));
	store_lock_owner(s->lock_owner, sizeof(s->lock_owner), s->id);
	snprintf(s->peer, sizeof(s->peer), "%s", conn_peer_str(c));
	s->loopback = config_is_loopback(conn_peer(c));
	s->tls = implicit_tls;
	s->state = POP3_AUTHORIZATION;
	memset(&sp, 0, sizeof(sp));
	/* pop3_line_max counts the CRLF */
	sp.line_max = (size_t)(lim->pop3_line_max > 2 ? lim->pop3_line_max - 2 : lim->pop3_line_max);
	sp.out_high = POP3_OUTBUF_HIGH;
	sp.idle_timeout = lim->pop3_idle_timeout;
	sp.max_errors = lim->max_errors;
	sp.transcript_max_lines = lim->transcript_max_lines;
	sp.transcripts = srv->cfg->transcripts;
	sp.id = s->id;
	if (session_init(&s->core, c, s, &pop3_session_proto, &sp) == -1) {
		log_warnx("event=session-failed client=%s", s->peer);
		free(s);
		return NULL;
	}
	session_join(&s->core, &srv->sessions);

	log_info("session=%s event=connect client=%s tls=%s", s->id, s->peer,
	    implicit_tls ? "implicit" : "no");
	if (s->core.tr.enabled)
		sesslog_open(s->srv->sesslog, s->id, "pop3", s->peer);
	if (tr_room(s))
		transcript_note(&s->core.tr, "connection from %s%s", s->peer,
		    implicit_tls ? " (implicit TLS)" : "");
	conn_set_watermark(c, POP3_OUTBUF_HIGH);
	session_touch(&s->core);
	/* No angle-bracket timestamp: APOP is not offered (RFC 1939 7). */
	reply_set(&r, REPLY_POP3_OK, NULL, "correio POP3 server ready (session %s)", s->id);
	session_write_reply(s, &r);
	return s;
}

static void
on_closed(void *arg, enum conn_close_reason why)
{
	static const char *const names[] = {
		[CONN_CLOSE_EOF] = "eof", [CONN_CLOSE_ERROR] = "error",
		[CONN_CLOSE_TIMEOUT] = "timeout", [CONN_CLOSE_SERVER] = "server",
	};
	struct pop3_session *s = arg;

	pop3_session_closed(s, s->srv->stopping ? "shutdown" :
	    s->close_why != NULL ? s->close_why : names[why]);
}

const struct conn_handler pop3_conn_handler = {
	.accept = on_accept,
	.read = on_read,
	.drained = on_drained,
	.closed = on_closed,
	.tls_ready = on_tls_ready,
	.busy_reply = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
};

void
pop3_session_closed(struct pop3_session *s, const char *why)
{
	struct pop3_server *srv = s->srv;

	if (s->state == POP3_TRANSACTION) {
		/* RFC 1939 6: no UPDATE without QUIT; nothing is deleted. */
		log_info("session=%s event=logout user=%s reason=%s retr=%u dele=0 bytes=%lld "
		    "marked=%zu", s->id, s->account, why, s->nretr, (long long)s->bytes,
		    s->ndeleted);
	}
	if (s->locked) {
		/* Off the loop; a release that fails is retried (pop3_store.c). */
		pop3_store_release(srv, s->account, s->lock_owner, s->id);
		s->locked = false;
	}
	log_debug("session=%s event=closed reason=%s", s->id, why);
	if (tr_room(s))
		transcript_note(&s->core.tr, "connection closed (%s)", why);
	session_tr_flush(s);
	if (s->core.tr.enabled)
		sesslog_close(srv->sesslog, s->id, "pop3", why);
	session_gone(&s->core);

	/* Jobs in flight finish without the session: a login's lock is given
	 * back, QUIT's job releases its lock itself. */
	if (s->auth_job != NULL)
		s->auth_job->job.arg = NULL;
	if (s->quit_job != NULL)
		s->quit_job->job.arg = NULL;
	if (s->touch_job != NULL)
		s->touch_job->job.arg = NULL;
	pop3_stream_free(s);
	conn_timer_free(&s->delay_ev);
	conn_timer_free(&s->touch_ev);
	session_free(&s->core);
	free(s->msgs);
	free(s->deleted);
	free(s);
}

void
pop3_session_logged_in(struct pop3_session *s)
{
	session_start_touch(s);
	if (s->core.tr.enabled)
		sesslog_user(s->srv->sesslog, s->id, "pop3", s->account);
}

void
pop3_session_abort(void *session)
{
	struct pop3_session *s = session;

	s->closed = true;
	conn_close(s->core.conn, false);
}

void
pop3_session_shutdown(void *session)
{
	struct pop3_session *s = session;
	struct reply r;

	if (s->closed)
		return;
	if (s->quit_job != NULL) {
		/* QUIT's expunge is running: its reply says what was deleted,
		 * and closes. */
		return;
	}
	if (s->stream == NULL && !s->tls_pending) {
		reply_set(&r, REPLY_POP3_ERR, "SYS/TEMP", "Server shutting down; nothing was deleted");
		session_write_reply(s, &r);
	}
	session_request_close(s);
	session_settle(s);
}
