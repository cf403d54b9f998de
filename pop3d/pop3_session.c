/*
 * pop3_session.c - the life of one POP3 session (RFC 1939 3-6): greeting,
 * reading lines with telnet tolerance, dispatching them in order, writing
 * the replies, the state transitions, the failed-login delay, STLS
 * (RFC 2595 4), the transcript and the login/logout log lines.
 *
 * Owns: struct pop3_session's lifetime, the input loop and the mailbox lock
 * for the length of the session. Never: touches a socket (struct pop3_io
 * does), deletes a message unless QUIT brought the session to UPDATE, or
 * answers a pipelined command before the one in front of it is complete.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "pop3_session.h"

static void session_process(struct pop3_session *s);

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
	struct transcript *t = &s->tr;

	if (!t->enabled || t->pending.len == 0)
		return;
	if (store_transcript_append(s->srv->store, s->id, "pop3", t->pending.data,
	    t->pending.len) == -1)
		log_warnx("session=%s event=transcript-failed error=\"%s\"", s->id,
		    store_errmsg(s->srv->store));
	transcript_flushed(t);
}

/* Count a transcript line; false once transcript_max_lines is reached. */
static bool
session_tr_room(struct pop3_session *s)
{
	if (!s->tr.enabled)
		return false;
	if ((long)s->tr_lines >= s->srv->cfg->limits.transcript_max_lines)
		return false;
	if ((long)++s->tr_lines == s->srv->cfg->limits.transcript_max_lines) {
		transcript_note(&s->tr, "transcript truncated at %zu lines", s->tr_lines);
		return false;
	}
	return true;
}

static void
session_tr_maybe_flush(struct pop3_session *s)
{
	if (s->tr.enabled && s->tr.pending.len >= POP3_TRANSCRIPT_BATCH)
		session_tr_flush(s);
}

/* ---- output -------------------------------------------------------------- */

static struct evbuffer *
session_out(struct pop3_session *s)
{
	return s->io->output(s->conn);
}

/* Write a reply (status line, and the body of a multi-line one) and record it. */
static void
session_write_reply(struct pop3_session *s, const struct reply *r)
{
	struct evbuffer *out = session_out(s);
	char line[REPLY_TEXT_MAX + 64];
	const char *p, *nl;

	if (r->flags & POP3_REPLY_CONT) {
		evbuffer_add_printf(out, "+ %s\r\n", r->text);
		if (session_tr_room(s)) {
			snprintf(line, sizeof(line), "+ %s", r->text);
			transcript_server(&s->tr, line, strlen(line));
		}
		return;
	}
	reply_write_pop3(out, r);
	if (session_tr_room(s)) {
		reply_format(r, true, line, sizeof(line));
		transcript_server(&s->tr, line, strcspn(line, "\r\n"));
	}
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
		if (session_tr_room(s))
			transcript_server(&s->tr, p, n);
		p = nl;
	}
	evbuffer_add(out, ".\r\n", 3);
	if (session_tr_room(s))
		transcript_server(&s->tr, ".", 1);
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
	if (s->close_req && !s->closed) {
		s->closed = true;
		s->io->close(s->conn, true);
	}
}

/* ---- failed-login delay and the lock refresh ----------------------------- */

static void
session_resume(struct pop3_session *s)
{
	s->busy = false;
	s->io->pause_read(s->conn, false);
	session_process(s);
}

static void
session_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)fd;
	(void)what;
	session_write_reply(s, &s->delayed);
	if (s->delayed.flags & REPLY_CLOSE)
		session_request_close(s);
	session_resume(s);
	session_settle(s);
}

static void
session_touch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)fd;
	(void)what;
	if (s->locked && store_mailbox_touch(s->srv->store, s->account, s->lock_owner) == -1)
		log_warnx("session=%s event=lock-touch-failed error=\"%s\"", s->id,
		    store_errmsg(s->srv->store));
	s->touched = time(NULL);
}

/* Called after a successful login: refresh the lock a few times per TTL. */
static void
session_start_touch(struct pop3_session *s)
{
	struct timeval tv;
	long ttl = s->srv->cfg->limits.pop3_lock_ttl;

	s->touched = time(NULL);
	if (s->srv->base == NULL || s->touch_ev != NULL)
		return;
	tv.tv_sec = ttl / 3 > 0 ? ttl / 3 : 1;
	tv.tv_usec = 0;
	s->touch_ev = event_new(s->srv->base, -1, EV_PERSIST, session_touch_cb, s);
	if (s->touch_ev != NULL)
		event_add(s->touch_ev, &tv);
}

/* ---- input --------------------------------------------------------------- */

/* Record the client's line with secrets masked. */
static void
session_tr_client(struct pop3_session *s, const char *line, size_t len, bool secret)
{
	if (session_tr_room(s))
		transcript_client(&s->tr, line, len, secret);
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

	if (reply_is_client_error(r))
		s->errors++;
	if (r->flags & REPLY_CLOSE) {
		session_request_close(s);
		return;
	}
	if (s->stls_req) {
		s->stls_req = false;
		linebuf_clear(&s->lb);	/* RFC 2595 4: pipelined plaintext is discarded */
		if (s->io->starttls(s->conn) == -1) {
			log_warnx("session=%s event=stls-failed", s->id);
			session_request_close(s);
			return;
		}
		s->tls_pending = true;
		if (session_tr_room(s))
			transcript_note(&s->tr, "TLS handshake");
		return;
	}
	if (s->stream != NULL) {
		rc = pop3_stream_run(s, out);
		if (rc == 0) {
			/* Wait for the drained callback; no new commands meanwhile. */
			s->busy = true;
			s->io->pause_read(s->conn, true);
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
		struct timeval tv = { .tv_sec = s->delay_secs, .tv_usec = 0 };

		s->delay_secs = 0;
		if (s->srv->base != NULL && s->delay_ev == NULL)
			s->delay_ev = evtimer_new(s->srv->base, session_delay_cb, s);
		if (s->delay_ev != NULL && evtimer_add(s->delay_ev, &tv) == 0) {
			s->busy = true;
			s->io->pause_read(s->conn, true);
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
		s->io->pause_read(s->conn, true);
		return;
	}
	/* The one place max_errors is enforced. */
	if (reply_is_client_error(r) && s->errors + 1 >= (unsigned)s->srv->cfg->limits.max_errors &&
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

/* One complete line from the client. */
static void
session_line(struct pop3_session *s, char *line, size_t len)
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
		cmd_dispatch(&pop3_proto, s, s->state, line, &r, &def);
	}
	session_finish(s, &r);
}

/* Take lines from the input and answer them until there are no more, or a
 * stream, a delay, STLS or a close stops us. */
static void
session_process(struct pop3_session *s)
{
	struct evbuffer *in;
	enum line_status st;
	enum line_eol eol;
	char *line;
	size_t len;

	if (s->in_input)
		return;		/* re-entered from a callback: the outer loop continues */
	s->in_input = true;
	in = s->io->input(s->conn);
	while (!s->busy && !s->close_req && !s->tls_pending) {
		if (evbuffer_get_length(session_out(s)) >= POP3_OUTBUF_HIGH) {
			/* A client pipelining without reading: answer the rest
			 * when the output drains (pop3_session_drained). */
			s->output_full = true;
			break;
		}
		st = linebuf_next(&s->lb, &line, &len, &eol);
		if (st == LINE_MORE) {
			size_t avail = in ? evbuffer_get_length(in) : 0;
			size_t room = linebuf_space(&s->lb);
			unsigned char *p;

			if (avail == 0 || room == 0)
				break;
			if (room > avail)
				room = avail;
			if ((p = evbuffer_pullup(in, (ev_ssize_t)room)) == NULL)
				break;
			room = linebuf_feed(&s->lb, p, room);
			evbuffer_drain(in, room);
			continue;
		}
		if (st == LINE_TOO_LONG) {
			struct reply r;

			session_tr_client(s, "[line too long]", 15, false);
			reply_set(&r, REPLY_POP3_ERR, NULL, "Line too long (at most %ld octets)%s",
			    s->srv->cfg->limits.pop3_line_max,
			    s->sasl.active ? "; authentication cancelled" : "");
			sasl_clear(&s->sasl);
			session_finish(s, &r);	/* counts it against max_errors */
			continue;
		}
		session_line(s, line, len);
	}
	s->in_input = false;
}

void
pop3_session_input(struct pop3_session *s)
{
	session_process(s);
	session_settle(s);
}

void
pop3_session_drained(struct pop3_session *s)
{
	int rc;

	if (s->close_req)
		return;
	if (s->stream == NULL) {
		if (s->output_full && !s->busy) {
			s->output_full = false;
			session_process(s);
			session_settle(s);
		}
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

void
pop3_session_tls_ready(struct pop3_session *s)
{
	s->tls = true;
	if (!s->tls_pending)
		return;		/* implicit TLS: the greeting is already queued */
	s->tls_pending = false;
	/* RFC 2595 4: the client must forget what it knew; so do we. */
	s->have_user = false;
	s->user[0] = '\0';
	log_debug("session=%s event=tls-started", s->id);
	session_process(s);
	session_settle(s);
}

/* ---- birth and death ----------------------------------------------------- */

struct pop3_session *
pop3_session_new(struct pop3_server *srv, const struct pop3_io *io, void *conn,
    const void *peer, const char *peer_str, bool implicit_tls)
{
	struct pop3_session *s;
	struct reply r;
	long line_max = srv->cfg->limits.pop3_line_max;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->srv = srv;
	s->io = io;
	s->conn = conn;
	log_session_id(s->id, sizeof(s->id));
	store_lock_owner(s->lock_owner, sizeof(s->lock_owner), s->id);
	snprintf(s->peer, sizeof(s->peer), "%s", peer_str ? peer_str : "?");
	s->loopback = peer != NULL && config_is_loopback(peer);
	s->tls = implicit_tls;
	s->state = POP3_AUTHORIZATION;
	/* pop3_line_max counts the CRLF */
	if (linebuf_init(&s->lb, (size_t)(line_max > 2 ? line_max - 2 : line_max)) == -1) {
		free(s);
		return NULL;
	}
	transcript_init(&s->tr, s->id, srv->cfg->transcripts);
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;

	log_info("session=%s event=connect client=%s tls=%s", s->id, s->peer,
	    implicit_tls ? "implicit" : "no");
	if (session_tr_room(s))
		transcript_note(&s->tr, "connection from %s%s", s->peer,
		    implicit_tls ? " (implicit TLS)" : "");
	/* No angle-bracket timestamp: APOP is not offered (RFC 1939 7). */
	reply_set(&r, REPLY_POP3_OK, NULL, "correio POP3 server ready (session %s)", s->id);
	session_write_reply(s, &r);
	return s;
}

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
		if (store_mailbox_unlock(srv->store, s->account, s->lock_owner) == -1)
			log_warnx("session=%s event=unlock-failed error=\"%s\"", s->id,
			    store_errmsg(srv->store));
		s->locked = false;
	}
	log_debug("session=%s event=closed reason=%s", s->id, why);
	if (session_tr_room(s))
		transcript_note(&s->tr, "connection closed (%s)", why);
	session_tr_flush(s);

	if (s->auth_job != NULL)
		s->auth_job->arg = NULL;	/* the worker's result is dropped */
	pop3_stream_free(s);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->touch_ev != NULL)
		event_free(s->touch_ev);
	linebuf_free(&s->lb);
	transcript_free(&s->tr);
	free(s->msgs);
	free(s->deleted);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s);
}

void
pop3_session_logged_in(struct pop3_session *s)
{
	session_start_touch(s);
}

void
pop3_session_shutdown(struct pop3_session *s)
{
	struct reply r;

	if (s->closed)
		return;
	if (s->stream == NULL && !s->tls_pending) {
		reply_set(&r, REPLY_POP3_ERR, "SYS/TEMP", "Server shutting down; nothing was deleted");
		session_write_reply(s, &r);
	}
	session_request_close(s);
	session_settle(s);
}
