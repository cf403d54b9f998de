/*
 * smtp_session.c - one SMTP session per connection (RFC 5321 3, 4.1.4, 4.3.2;
 * RFC 2920 pipelining; RFC 3207 STARTTLS state reset).
 *
 * Owns: the session life cycle (greeting, close, free), the one state
 * transition function, what the line pump of common/session.c may take and
 * where each line goes (every buffered line in order, so a whole pipelined
 * transaction in one packet is answered in order and the replies leave
 * together), the hand-typing tolerance on command lines (telnet IAC bytes
 * dropped, backspace/DEL applied; never in DATA), reply writing with error
 * counting, the 421 on timeout, and the transcript.
 * Never: touches a socket (struct conn does), decides what a command means
 * (smtp_cmd.c), or frees itself while a worker still holds one of its jobs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esc.h"
#include "log.h"
#include "sesslog.h"
#include "smtp_session.h"

static const char *const state_names[] = {
	[SMTP_S_REFUSED] = "REFUSED",
	[SMTP_S_INIT] = "INIT",
	[SMTP_S_HELO] = "HELO",
	[SMTP_S_MAIL] = "MAIL",
	[SMTP_S_RCPT] = "RCPT",
	[SMTP_S_DATA] = "DATA",
	[SMTP_S_COMMIT] = "COMMIT",
	[SMTP_S_AUTH] = "AUTH",
	[SMTP_S_TLS] = "TLS",
	[SMTP_S_QUIT] = "QUIT",
};

const char *
smtp_strstate(enum smtp_state st)
{
	if ((size_t)st < sizeof(state_names) / sizeof(state_names[0]) && state_names[st])
		return state_names[st];
	return "?";
}

/*
 * The idle timer (common/session.c, from the last complete line) ran out:
 * smtp_command_timeout while waiting for a command, smtp_data_timeout
 * between lines of message text (RFC 5321 4.5.3.2).
 */
static void
session_idle(void *arg)
{
	struct smtp_session *s = arg;
	struct reply r;

	if (s->state == SMTP_S_QUIT)
		return;
	if (s->busy || s->delayed != NULL || s->state == SMTP_S_TLS) {
		session_touch(&s->core);	/* we are the ones who are busy */
		return;
	}
	log_info("session=%s event=timeout state=%s", s->id, smtp_strstate(s->state));
	if (s->state == SMTP_S_DATA)
		smtp_transcript_note(s, "timeout during DATA: nothing was delivered");
	reply_set(&r, 421, ESC_BAD_CONNECTION, "%s Timeout: nothing received for %ld seconds; closing",
	    s->srv->cfg->hostname, s->core.idle_secs);
	r.flags |= REPLY_CLOSE;
	smtp_reply(s, &r);
}

/* A mail transaction open: MAIL accepted, the message not yet handed over. */
static bool
smtp_in_tx(enum smtp_state st)
{
	return st == SMTP_S_MAIL || st == SMTP_S_RCPT || st == SMTP_S_DATA;
}

void
smtp_enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("session=%s state=%s->%s", s->id, smtp_strstate(s->state), smtp_strstate(st));
	if (smtp_in_tx(st) && !smtp_in_tx(s->state)) {
		atomic_fetch_add(&s->srv->in_tx, 1);
		atomic_fetch_add(&s->srv->tx_begun, 1);
	}
	else if (!smtp_in_tx(st) && smtp_in_tx(s->state))
		atomic_fetch_sub(&s->srv->in_tx, 1);
	s->state = st;
	session_set_idle(&s->core, st == SMTP_S_DATA ? s->srv->cfg->limits.smtp_data_timeout :
	    s->srv->cfg->limits.smtp_command_timeout);
}

void
smtp_tx_free(struct smtp_tx **txp)
{
	struct smtp_tx *tx = *txp;

	if (tx == NULL)
		return;
	if (tx->inflight != NULL)
		*tx->inflight -= tx->charged;
	store_delivery_free(&tx->d);
	buf_free(&tx->rcpts);
	free(tx);
	*txp = NULL;
}

bool
smtp_auth_allowed(const struct smtp_session *s)
{
	return s->tls || s->peer_secure || s->srv->cfg->smtp_plaintext_auth;
}

/* ---- transcript ----------------------------------------------------------- */

/* Hand the collected lines to the session log (never one commit per line:
 * its thread writes batches on its own schedule, common/sesslog.c). Called
 * after each reply, so a session can be read while it goes on. */
static void
transcript_flush(struct smtp_session *s)
{
	if (!s->core.tr.enabled || s->core.tr.pending.len == 0)
		return;
	sesslog_lines(s->srv->sesslog, s->id, "smtp", s->core.tr.pending.data,
	    s->core.tr.pending.len);
	transcript_flushed(&s->core.tr);
}

void
smtp_transcript_client(struct smtp_session *s, const char *line, size_t len, bool secret)
{
	if (session_tr_room(&s->core, 1))
		transcript_client(&s->core.tr, line, len, secret);
}

void
smtp_transcript_note(struct smtp_session *s, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (!session_tr_room(&s->core, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	transcript_note(&s->core.tr, "%s", text);
}

/* ---- replies --------------------------------------------------------------- */

/*
 * Does r count toward max_errors? 451 and 454 are the server's own temporary
 * trouble (a store error), never the client's mistake; so is 452 (a full
 * server, or a recipient past max_recipients that the client must send
 * later), except past SMTP_RCPT_OVERSHOOT such recipients.
 */
static bool
reply_is_client_error(const struct smtp_session *s, const struct reply *r)
{
	if (!(r->flags & REPLY_ERROR) || r->code == 451 || r->code == 454)
		return false;
	if (r->code == 452)
		return s->tx != NULL && s->tx->overshoot > SMTP_RCPT_OVERSHOOT;
	return true;
}

void
smtp_reply(struct smtp_session *s, const struct reply *r)
{
	struct reply bye;
	char text[REPLY_TEXT_MAX + 512];	/* the reply as the transcript shows it */
	bool tr = s->core.tr.enabled;
	/* RFC 4954 4: continue-req = "334" SP [base64] CRLF; the SP stays
	 * even when the challenge is empty (reply.c drops it). */
	bool empty_334 = r->code == 334 && r->text[0] == '\0';

	if (s->core.conn == NULL || s->state == SMTP_S_QUIT)
		return;
	if (empty_334)
		memcpy(text, "334", 4);
	if (empty_334 ? evbuffer_add(conn_output(s->core.conn), "334 \r\n", 6) == -1 :
	    reply_write_smtp(conn_output(s->core.conn), r, tr ? text : NULL, sizeof(text)) == 0) {
		/* Out of memory: a session that cannot answer must not go on
		 * (the client would wait for a reply that never comes). */
		log_warnx("session=%s event=reply-failed code=%d reason=memory", s->id, r->code);
		smtp_enter_state(s, SMTP_S_QUIT);
		conn_close(s->core.conn, true);
		return;
	}
	if (tr) {
		size_t nl = 1;
		for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
			nl++;
		if (session_tr_room(&s->core, nl))
			transcript_server(&s->core.tr, text, strlen(text));
		transcript_flush(s);
	}
	if (r->flags & REPLY_CLOSE) {
		smtp_enter_state(s, SMTP_S_QUIT);
		conn_close(s->core.conn, true);
		return;
	}
	/* max_errors (counted in common/session.c): 421 and close. */
	if (reply_is_client_error(s, r) && session_count_error(&s->core)) {
		reply_set(&bye, 421, ESC_SECURITY_TEMP, "Too many errors (%ld) in this session; closing. "
		    "HELP lists the commands", s->core.nerrors);
		bye.flags |= REPLY_CLOSE;
		log_info("session=%s event=too-many-errors errors=%ld", s->id, s->core.nerrors);
		smtp_reply(s, &bye);
	}
}

/* ---- lines ------------------------------------------------------------ */

static void
start_tls(struct smtp_session *s)
{
	s->starttls = false;
	/* RFC 3207 5: whatever was pipelined after STARTTLS is discarded. */
	linebuf_clear(&s->core.lb);
	smtp_enter_state(s, SMTP_S_TLS);
	smtp_transcript_note(s, "starting TLS");
	if (conn_starttls(s->core.conn) == -1) {
		log_warnx("session=%s event=starttls-failed", s->id);
		smtp_enter_state(s, SMTP_S_QUIT);
		conn_close(s->core.conn, false);
	}
}

static void
command_line(struct smtp_session *s, enum line_status st, char *line, size_t len,
    enum line_eol eol)
{
	const struct limits *lim = &s->srv->cfg->limits;
	const struct cmd_def *def;
	struct reply r;
	size_t vlen, max = (size_t)lim->smtp_line_max - 2;
	char verb_copy[CMD_LOG_VERB_MAX + 1];
	const char *verb = line + strspn(line, " ");	/* cmd_dispatch skips them too */
	bool sasl = s->state == SMTP_S_AUTH || strncasecmp(verb, "AUTH ", 5) == 0;

	/* RFC 4954 4: SASL responses may be longer than a command line; they
	 * get the reader's whole capacity (smtp_data_line_max). */
	if (sasl)
		max = s->core.lb.max_line;
	if (st == LINE_TOO_LONG || (len = linebuf_untelnet(line, len, NULL)) > max) {
		if (s->state == SMTP_S_AUTH) {
			smtp_auth_cleanup(s);	/* the exchange is over */
			smtp_enter_state(s, SMTP_S_HELO);
		}
		if (sasl) {
			/* RFC 4954 4: 500 5.5.6 for an over-long exchange line */
			smtp_transcript_note(s, "AUTH line over %zu octets", max + 2);
			reply_set(&r, 500, ESC_AUTH_TOO_LONG, "Authentication exchange line is too long (at most "
			    "%zu octets); authentication cancelled", max + 2);
		} else {
			smtp_transcript_note(s, "command line over %ld octets", lim->smtp_line_max);
			reply_set(&r, 500, ESC_SYNTAX, "Line too long: commands are at most %ld octets "
			    "(RFC 5321 4.5.3.1.4)", lim->smtp_line_max);
		}
		smtp_reply(s, &r);
		return;
	}
	s->last_eol = eol;
	if (s->state == SMTP_S_AUTH) {
		/* A SASL response: never recorded; a NUL makes it invalid base64. */
		smtp_transcript_client(s, "***", 3, false);
		smtp_auth_line(s, memchr(line, '\0', len) != NULL ? (char *)"!" : line);
		return;
	}
	/* The transcript needs the secret flag before dispatch splits the line. */
	vlen = strcspn(verb, " ");
	def = cmd_lookup(&smtp_cmd_proto, verb, vlen);
	if (memchr(line, '\0', len) != NULL) {
		smtp_transcript_client(s, line, strlen(line),
		    def != NULL && (def->flags & CMD_SECRET));
		reply_set(&r, 500, ESC_SYNTAX, "Syntax error: NUL byte in command");
		smtp_reply(s, &r);
		return;
	}
	smtp_transcript_client(s, line, len, def != NULL && (def->flags & CMD_SECRET));
	/* the handler may change line in place: keep the verb for the log */
	snprintf(verb_copy, sizeof(verb_copy), "%.*s", (int)vlen, verb);
	cmd_dispatch(&smtp_cmd_proto, s, s->state, line, &r, &def);
	if (!(r.flags & REPLY_NONE)) {
		cmd_log_refused(s->id, verb_copy, strlen(verb_copy), &r);
		smtp_reply(s, &r);
	}
	if (s->starttls && s->core.conn != NULL && s->state != SMTP_S_QUIT)
		start_tls(s);
}

/* May the pump take another line? Not while a job, a delay, a commit, a TLS
 * handshake or the close is pending. */
static bool
session_ready(void *arg)
{
	struct smtp_session *s = arg;

	if (s->busy || s->delayed != NULL)
		return false;
	return s->state != SMTP_S_COMMIT && s->state != SMTP_S_TLS && s->state != SMTP_S_QUIT;
}

/* One line from the pump: message text in DATA, else a command. */
static void
session_line(void *arg, enum line_status st, char *line, size_t len, enum line_eol eol)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_S_DATA)
		smtp_data_line(s, st, line, len, eol);
	else
		command_line(s, st, line, len, eol);
}

static const struct session_proto smtp_proto = {
	.ready = session_ready,
	.line = session_line,
	.idle = session_idle,
};

void
smtp_session_pause(struct smtp_session *s)
{
	s->busy = true;
	if (s->core.conn != NULL)
		conn_pause_read(s->core.conn, true);
}

static void session_destroy(struct smtp_session *s);

bool
smtp_session_resume(struct smtp_session *s)
{
	s->busy = false;
	if (s->gone) {
		session_destroy(s);
		return false;
	}
	if (s->srv->stopping) {
		smtp_session_shutdown(s);
		return true;
	}
	if (s->core.conn != NULL && s->state != SMTP_S_QUIT) {
		conn_pause_read(s->core.conn, false);
		session_pump(&s->core);
	}
	return true;
}

void
smtp_session_shutdown(void *session)
{
	struct smtp_session *s = session;
	struct reply r;

	if (s->core.conn == NULL || s->state == SMTP_S_QUIT || s->busy)
		return;		/* gone, closing, or called again from resume */
	if (s->state == SMTP_S_TLS) {
		smtp_enter_state(s, SMTP_S_QUIT);	/* no plaintext inside a handshake */
		conn_close(s->core.conn, false);
		return;
	}
	smtp_auth_cleanup(s);	/* a delayed AUTH reply is not sent */
	if (s->state == SMTP_S_DATA)
		smtp_transcript_note(s, "server stopping during DATA: nothing was delivered");
	log_info("session=%s event=shutdown state=%s", s->id, smtp_strstate(s->state));
	/* RFC 5321 3.8: 421 when the service is shutting down. */
	reply_set(&r, 421, ESC_NOT_ACCEPTING, "%s Service shutting down; a message not acknowledged with "
	    "250 was not delivered, send it again later", s->srv->cfg->hostname);
	r.flags |= REPLY_CLOSE;
	smtp_reply(s, &r);
}

/* ---- connection callbacks ---------------------------------------------------- */

static void
session_destroy(struct smtp_session *s)
{
	if (smtp_in_tx(s->state))		/* gone in the middle of a message */
		atomic_fetch_sub(&s->srv->in_tx, 1);
	transcript_flush(s);
	session_free(&s->core);
	smtp_auth_cleanup(s);
	smtp_tx_free(&s->tx);
	free(s);
}

static void *
on_accept(struct conn *c, void *arg)
{
	struct smtp_server *srv = arg;
	struct config *cfg = srv->cfg;
	const struct limits *lim = &cfg->limits;
	struct session_params sp;
	struct smtp_session *s;
	struct reply r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->srv = srv;
	log_session_id(s->id, sizeof(s->id));
	s->role = c->role;
	snprintf(s->peer, sizeof(s->peer), "%s", conn_peer_str(c));
	s->peer_secure = config_is_loopback(conn_peer(c));
	s->trusted = config_is_trusted(cfg, conn_peer(c));
	s->last_eol = EOL_CRLF;
	/* One reader for commands and message text: its cap is the longer of
	 * the two limits; command lines are checked against theirs. The pump
	 * stops at the same mark where the connection stops reading, so a
	 * client that pipelines without reading its replies is held by TCP
	 * flow control (and then timed out) instead of waking the loop. */
	memset(&sp, 0, sizeof(sp));
	sp.line_max = (size_t)(lim->smtp_data_line_max > lim->smtp_line_max ?
	    lim->smtp_data_line_max : lim->smtp_line_max) - 2;
	sp.out_high = SMTP_OUTPUT_HIGH;
	sp.idle_timeout = lim->smtp_command_timeout;
	sp.max_errors = lim->max_errors;
	sp.transcript_max_lines = lim->transcript_max_lines;
	sp.transcripts = cfg->transcripts;
	sp.id = s->id;
	if (session_init(&s->core, c, s, &smtp_proto, &sp) == -1) {
		free(s);
		return NULL;
	}
	session_join(&s->core, &srv->sessions);
	log_info("session=%s event=connect client=%s role=%s", s->id, s->peer,
	    config_role_name(s->role));
	if (cfg->transcripts)
		sesslog_open(srv->sesslog, s->id, "smtp", s->peer);
	smtp_transcript_note(s, "connection from %s to the %s listener", s->peer,
	    config_role_name(s->role));
	if (srv->refusing || ((s->role == ROLE_SUBMISSION || s->role == ROLE_SMTPS) &&
	    srv->ssl_ctx == NULL && !smtp_auth_allowed(s))) {
		/* RFC 5321 3.1: no service for this client (here: a submission
		 * listener where it could never log in), then wait for QUIT. */
		if (srv->refusing)
			reply_set(&r, 554, NULL, "%s No SMTP service here; only QUIT (session %s)",
			    cfg->hostname, s->id);
		else
			reply_set(&r, 554, NULL, "%s No SMTP service for you here: this submission "
			    "port needs TLS, which is not configured; only QUIT (session %s)",
			    cfg->hostname, s->id);
		r.flags &= ~REPLY_ERROR;
		s->state = SMTP_S_REFUSED;
		log_info("session=%s event=refused reason=%s", s->id,
		    srv->refusing ? "refusing" : "no-tls-for-auth");
	} else {
		/* RFC 2034: no enhanced code on the greeting. */
		reply_set(&r, 220, NULL, "%s ESMTP correio %s ready; session %s", cfg->hostname,
		    CORREIO_VERSION, s->id);
		s->state = SMTP_S_INIT;
	}
	conn_set_watermark(c, SMTP_OUTPUT_HIGH);
	session_touch(&s->core);
	smtp_reply(s, &r);
	if (srv->stopping)
		smtp_session_shutdown(s);	/* accepted as the signal came */
	return s;
}

static void
on_read(void *arg)
{
	struct smtp_session *s = arg;

	session_pump(&s->core);
}

static void
on_drained(void *arg)
{
	struct smtp_session *s = arg;

	session_drained(&s->core);
}

static void
on_tls_ready(void *arg)
{
	struct smtp_session *s = arg;

	s->tls = true;
	smtp_transcript_note(s, "TLS established: %s", conn_tls_info(s->core.conn));
	log_info("session=%s event=tls tls=%s", s->id, conn_tls_info(s->core.conn));
	if (s->state == SMTP_S_TLS) {
		/* RFC 3207 4.2: forget everything learnt before TLS. */
		smtp_tx_free(&s->tx);
		s->helo[0] = '\0';
		s->esmtp = false;
		s->user[0] = '\0';
		smtp_enter_state(s, SMTP_S_INIT);
		session_pump(&s->core);
	}
}

/* The session log's last word on a session: its transcript, then how it ended. */
void
smtp_session_log_close(struct smtp_session *s, const char *why)
{
	char outcome[STORE_OUTCOME_MAX + 1];

	if (!s->srv->cfg->transcripts)
		return;
	transcript_flush(s);
	snprintf(outcome, sizeof(outcome), "%s, %lu message%s", why, s->nmessages,
	    s->nmessages == 1 ? "" : "s");
	sesslog_close(s->srv->sesslog, s->id, "smtp", outcome);
}

static void
on_closed(void *arg, enum conn_close_reason why)
{
	static const char *const whys[] = { "eof", "error", "timeout", "server" };
	struct smtp_session *s = arg;

	log_info("session=%s event=disconnect reason=%s state=%s messages=%lu", s->id,
	    (size_t)why < 4 ? whys[why] : "?", smtp_strstate(s->state), s->nmessages);
	if (s->state == SMTP_S_DATA) {
		smtp_data_transcript_tail(s);
		smtp_transcript_note(s, "connection lost during DATA: nothing was delivered "
		    "(the text never ended with a line holding only \".\")");
	} else
		smtp_transcript_note(s, "connection closed (%s)", (size_t)why < 4 ? whys[why] : "?");
	smtp_session_log_close(s, s->state == SMTP_S_QUIT && why == CONN_CLOSE_SERVER ? "quit" :
	    (size_t)why < 4 ? whys[why] : "?");
	session_gone(&s->core);
	if (s->busy) {
		s->gone = true;		/* freed when the worker's job comes back */
		return;
	}
	session_destroy(s);
}

void
smtp_session_free_all(struct smtp_server *srv)
{
	struct smtp_session *s;

	while ((s = session_list_first(&srv->sessions)) != NULL) {
		log_info("session=%s event=disconnect reason=shutdown state=%s messages=%lu", s->id,
		    smtp_strstate(s->state), s->nmessages);
		smtp_session_log_close(s, "shutdown");
		session_gone(&s->core);
		session_destroy(s);
	}
}

const struct conn_handler smtp_conn_handler = {
	.accept = on_accept,
	.read = on_read,
	.drained = on_drained,
	.closed = on_closed,
	.tls_ready = on_tls_ready,
	.busy_reply = "421 4.7.0 Too many connections; try again later\r\n",
};
