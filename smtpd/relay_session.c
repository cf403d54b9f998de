/*
 * relay_session.c - the outbound delivery conversation: for one job (the
 * items of one destination), choose the route (mx.c), connect to its hosts
 * in order through the shared SMTP client (common/smtpclient.c), greeting,
 * EHLO, STARTTLS (RFC 3207: opportunistic, or required and verified for the
 * smarthost), AUTH towards the smarthost (RFC 4954), then one transaction
 * per message with up to RELAY_RCPTS_PER_TX recipients (RFC 5321 3.3),
 * streaming the body from the store. Each item leaves with an outcome; the
 * scheduler (relay.c) applies it. The C:/S: lines go to the log at debug
 * and, with [store] transcripts, into the store. Every wait is bounded; a
 * hung destination holds up only its own job.
 */
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "esc.h"
#include "config.h"
#include "header.h"
#include "log.h"
#include "mx.h"
#include "relay_internal.h"
#include "smtpclient.h"
#include "store.h"
#include "strfmt.h"
#include "transcript.h"

#define RELAY_TRACE_LINE_MAX	1024	/* a C:/S: trace line kept for the log */

/* ---- outcomes ----------------------------------------------------------- */

static bool
is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static void
set_outcome(struct work *w, enum outcome out, const char *esc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
set_outcome(struct work *w, enum outcome out, const char *esc, const char *fmt, ...)
{
	va_list ap;

	w->out = out;
	w->remote = false;
	snprintf(w->esc, sizeof(w->esc), "%s", esc);
	w->reply[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(w->error, sizeof(w->error), fmt, ap);	/* truncation is fine for a message */
	va_end(ap);
}

static void
set_outcome_all(struct work *w, size_t n, enum outcome out, const char *esc, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (w[i].out == OUT_PENDING)
			set_outcome(&w[i], out, esc, "%s", text);
}

/* The outcome a server reply gives: 2xx sent, 5xx permanent, else temporary. */
static void
set_reply(struct work *w, const char *mta, const struct reply *rp, const char *phase)
{
	char line[RELAY_TEXT_MAX];

	smtpclient_reply_str(rp, line, sizeof(line));
	w->out = rp->code / 100 == 2 ? OUT_SENT : rp->code / 100 == 5 ? OUT_PERM : OUT_TEMP;
	w->remote = true;
	if (rp->esc[0] != '\0')
		snprintf(w->esc, sizeof(w->esc), "%s", rp->esc);
	else
		snprintf(w->esc, sizeof(w->esc), "%d.0.0", rp->code / 100 == 2 ? 2 :
		    rp->code / 100 == 5 ? 5 : 4);
	snprintf(w->mta, sizeof(w->mta), "%s", mta);
	snprintf(w->reply, sizeof(w->reply), "%s", line);
	strfmt(w->error, sizeof(w->error), "host %s said: %s (in reply to %s)", mta, line, phase);
}

static void
set_reply_all(struct work *w, size_t n, const char *mta, const struct reply *rp,
    const char *phase)
{
	for (size_t i = 0; i < n; i++)
		if (w[i].out == OUT_PENDING)
			set_reply(&w[i], mta, rp, phase);
}

/* ---- outbound trace: clientconn's C:/S: lines into the log at debug,
 * and into the store as a transcript (mailcli admin transcript ID) ---- */

struct trace_ctx {
	char	 host[MX_HOST_MAX];
	char	 line[RELAY_TRACE_LINE_MAX];
	size_t	 len;
	struct transcript tr;		/* enabled with [store] transcripts */
	long	 lines, max_lines;	/* transcript_max_lines */
};

static void
trace_emit(struct trace_ctx *t)
{
	struct transcript *tr = &t->tr;

	if (t->len == 0)
		return;
	log_debug("relay: session=%s host=%s trace: %.*s", tr->session_id, t->host,
	    (int)t->len, t->line);
	if (tr->enabled && t->lines++ < t->max_lines) {
		/* clientconn writes "C: ...", "S: ..." and "   [note]". */
		if (t->len >= 3 && memcmp(t->line, "C: ", 3) == 0)
			transcript_client(tr, t->line + 3, t->len - 3, false);	/* already masked */
		else if (t->len >= 3 && memcmp(t->line, "S: ", 3) == 0)
			transcript_server(tr, t->line + 3, t->len - 3);
		else {
			size_t o = strspn(t->line, " ");
			size_t e = t->len;

			if (o < e && t->line[o] == '[' && t->line[e - 1] == ']') {
				o++;
				e--;
			}
			transcript_note(tr, "%.*s", (int)(e > o ? e - o : 0), t->line + o);
		}
	}
	t->len = 0;
}

static ssize_t
trace_write(void *cookie, const char *p, size_t n)
{
	struct trace_ctx *t = cookie;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n')
			trace_emit(t);
		else if (t->len < sizeof(t->line))
			t->line[t->len++] = p[i];
	}
	return (ssize_t)n;
}

static int
trace_close(void *cookie)
{
	trace_emit(cookie);
	return 0;
}

/* A trace for one connection attempt, with a new session id. */
static FILE *
trace_open(struct trace_ctx *t, const struct config *cfg, const char *host)
{
	cookie_io_functions_t fns = { .write = trace_write, .close = trace_close };
	char sid[LOG_SESSION_ID_MAX];
	FILE *f;

	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", host);
	log_session_id(sid, sizeof(sid));
	transcript_init(&t->tr, sid, cfg->transcripts);
	t->max_lines = cfg->limits.transcript_max_lines;
	if ((f = fopencookie(t, "w", fns)) != NULL)
		setvbuf(f, NULL, _IOLBF, 0);
	return f;	/* NULL: no trace, delivery goes on */
}

/* Close the trace and store its transcript. */
static void
trace_finish(struct store *st, struct trace_ctx *t, FILE **f)
{
	if (*f != NULL)
		fclose(*f);
	*f = NULL;
	if (t->tr.enabled && t->tr.pending.len > 0 &&
	    store_transcript_append(st, t->tr.session_id, "smtp-out", t->tr.pending.data,
	    t->tr.pending.len) == -1)
		log_warnx("relay: session=%s transcript: %s", t->tr.session_id, store_errmsg(st));
	transcript_free(&t->tr);
}

/* ---- sessions ------------------------------------------------------------ */

/*
 * smtpclient_open() with the socket made visible before the greeting, so
 * that relay_stop can cut a server that never greets, and with the RFC 5321
 * 4.5.3.2 timeouts (RELAY_TIMEOUT) once connected. 0 on 220, 1 on another
 * reply (s->reply), -1 on failure (s->err).
 */
static int
relay_connect(struct worker *wk, struct smtpclient *s, const char *host, const char *port,
    FILE *trace)
{
	struct timeval tv = { .tv_sec = RELAY_TIMEOUT, .tv_usec = 0 };

	if (smtpclient_connect(s, host, port, RELAY_CONNECT_TIMEOUT, trace) == -1)
		return -1;
	relay_set_conn_fd(wk, s->conn.fd);
	s->conn.timeout_ms = RELAY_TIMEOUT * 1000;
	/* clientconn set the OpenSSL backstop to the connect timeout. */
	(void)setsockopt(s->conn.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(s->conn.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return smtpclient_greeting(s);
}

/* Why a connection could not be set up. */
struct sess_err {
	bool	 perm;			/* a 5xx greeting or EHLO: permanent */
	bool	 retry_plain;		/* opportunistic TLS broke: try again without */
	bool	 remote;
	char	 esc[REPLY_ESC_MAX];
	char	 mta[RELAY_MTA_MAX];
	char	 reply[RELAY_TEXT_MAX];
	char	 text[RELAY_TEXT_MAX];
};

static void
sess_fail_reply(struct sess_err *e, const char *mta, const struct reply *rp, const char *phase)
{
	struct work w;

	memset(&w, 0, sizeof(w));
	set_reply(&w, mta, rp, phase);
	e->perm = w.out == OUT_PERM;
	e->remote = true;
	snprintf(e->esc, sizeof(e->esc), "%s", w.esc);
	snprintf(e->mta, sizeof(e->mta), "%s", w.mta);
	snprintf(e->reply, sizeof(e->reply), "%s", w.reply);
	snprintf(e->text, sizeof(e->text), "%s", w.error);
}

static void
sess_fail(struct sess_err *e, const char *esc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sess_fail(struct sess_err *e, const char *esc, const char *fmt, ...)
{
	va_list ap;

	e->perm = false;
	e->remote = false;
	snprintf(e->esc, sizeof(e->esc), "%s", esc);
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

/*
 * Connect to one host and get it ready for MAIL: greeting, EHLO, STARTTLS
 * (opportunistic, or required and verified for the smarthost), AUTH for the
 * smarthost. Returns 0 with an open session, or -1 with e filled and s
 * closed.
 */
static int
session_open(struct worker *wk, const struct mx_route *rt, const struct mx_host *h,
    bool plain, struct smtpclient *s, FILE *trace, char *mta, size_t mtalen,
    struct sess_err *e)
{
	struct relay *r = wk->r;
	const struct config *cfg = r->cfg;
	bool smarthost = rt->source == MX_SMARTHOST;
	bool need_tls = smarthost && cfg->smarthost_starttls;
	/* Verified TLS when the smarthost requires it, else opportunistic. */
	SSL_CTX *ctx = need_tls ? r->tls_verify : r->tls_any;
	char *hint;
	int rc;

	memset(e, 0, sizeof(*e));
	snprintf(mta, mtalen, "%s", h->host);
	rc = relay_connect(wk, s, h->host, h->port, trace);
	if (s->conn.fd >= 0)
		strfmt(mta, mtalen, "%s[%s]", h->host, s->conn.peer);
	if (rc == -1) {
		sess_fail(e, ESC_NO_ANSWER, "%s", s->err);
		goto fail;
	}
	if (rc == 1) {
		sess_fail_reply(e, mta, &s->reply, "the greeting");
		goto quit;
	}
	if ((rc = smtpclient_ehlo(s, cfg->hostname)) != 0) {
		if (rc == -1) {
			sess_fail(e, ESC_BAD_CONNECTION, "%s: %s", mta, s->err);
			goto fail;
		}
		sess_fail_reply(e, mta, &s->reply, "EHLO");
		goto quit;
	}
	if (s->caps.starttls && ctx != NULL && !plain) {
		rc = smtpclient_starttls(s, ctx, cfg->hostname);
		if (rc == -1) {
			sess_fail(e, ESC_CRYPTO_FAILED, "%s: STARTTLS: %s", mta, s->err);
			e->retry_plain = !need_tls;	/* opportunistic: plaintext beats nothing */
			goto fail;
		}
		if (rc == 1 && (need_tls || clientconn_is_tls(&s->conn))) {
			sess_fail_reply(e, mta, &s->reply, "STARTTLS");
			e->perm = false;	/* a TLS problem is fixed by an admin, not bounced */
			goto quit;
		}
	} else if (need_tls) {
		sess_fail(e, ESC_NO_SECURITY, "%s offers no STARTTLS%s, and smarthost_starttls is on",
		    mta, ctx == NULL ? " (or no TLS client context)" : "");
		goto quit;
	}
	if (smarthost && cfg->smarthost_user[0] != '\0') {
		rc = smtpclient_auth(s, cfg->smarthost_user, cfg->smarthost_password);
		if (rc == -1) {
			sess_fail(e, ESC_BAD_CREDENTIALS, "%s: AUTH: %s", mta, s->err);
			goto quit;
		}
		if (rc == 1) {
			sess_fail_reply(e, mta, &s->reply, "AUTH");
			e->perm = false;	/* wrong credentials: keep the mail, fix the config */
			goto quit;
		}
	}
	return 0;
quit:
	smtpclient_quit(s);
fail:
	relay_set_conn_fd(wk, -1);
	smtpclient_close(s);
	if (e->mta[0] == '\0')
		snprintf(e->mta, sizeof(e->mta), "%s", mta);
	/* clientconn's advice is for mailcli's command line, not for smtpd. */
	if ((hint = strstr(e->text, " (use --cafile")) != NULL)
		*hint = '\0';
	return -1;
}

/* ---- one transaction: one message, up to RELAY_RCPTS_PER_TX recipients --- */

/* Returns 0 when the session can carry another transaction, -1 when not. */
static int
transact(struct worker *wk, struct smtpclient *s, const char *mta, struct work *w, size_t n)
{
	struct smtpclient_rcpt *rc;
	struct work **acc;
	char *chunk;
	size_t i, na = 0, nacc = 0, got;
	int64_t size, off;
	int st, ret = 0;

	size = store_message_size(wk->st, w[0].q.message_id);
	if (size < 0) {
		set_outcome_all(w, n, OUT_TEMP, ESC_SYSTEM_TEMP, "store: cannot read the message");
		return 0;
	}
	rc = calloc(n, sizeof(*rc));
	acc = calloc(n, sizeof(*acc));
	chunk = malloc(RELAY_CHUNK);
	if (rc == NULL || acc == NULL || chunk == NULL) {
		set_outcome_all(w, n, OUT_TEMP, ESC_SYSTEM_TEMP, "out of memory");
		goto done;
	}
	/* The client has no SMTPUTF8 MAIL parameter (RFC 6531 3.4): such mail
	 * cannot be relayed faithfully, so it is refused here, not mangled. */
	if (!is_ascii(w[0].q.sender)) {
		set_outcome_all(w, n, OUT_PERM, ESC_NEEDS_UTF8,
		    "the sender address is not ASCII and the relay cannot send SMTPUTF8");
		goto done;
	}
	for (i = 0; i < n; i++) {
		if (!is_ascii(w[i].q.rcpt)) {
			set_outcome(&w[i], OUT_PERM, ESC_NEEDS_UTF8,
			    "the recipient address is not ASCII and the relay cannot send SMTPUTF8");
			continue;
		}
		rc[na].addr = w[i].q.rcpt;
		acc[na++] = &w[i];
	}
	if (na == 0)
		goto done;
	st = smtpclient_envelope(s, w[0].q.sender, (uint64_t)size, true, rc, na);
	if (st == -1) {
		set_outcome_all(w, n, OUT_TEMP, ESC_BAD_CONNECTION, s->err);
		ret = -1;
		goto done;
	}
	if (s->reply.code / 100 != 2) {
		set_reply_all(w, n, mta, &s->reply, "MAIL FROM");
	} else {
		for (i = 0; i < na; i++) {
			if (rc[i].accepted)
				acc[nacc++] = acc[i];	/* nacc <= i: compacts in place */
			else
				set_reply(acc[i], mta, &rc[i].reply, "RCPT TO");
		}
	}
	if (nacc == 0) {
		if (smtpclient_rset(s) == -1)
			ret = -1;
		goto done;
	}
	st = smtpclient_data_begin(s);
	if (st != 0) {
		for (i = 0; i < nacc; i++) {
			if (st == -1)
				set_outcome(acc[i], OUT_TEMP, ESC_BAD_CONNECTION, "%s", s->err);
			else
				set_reply(acc[i], mta, &s->reply, "DATA");
		}
		if (st == -1 || smtpclient_rset(s) == -1)
			ret = -1;
		goto done;
	}
	/* The local copy's Return-Path: stays home (header_return_path_len). */
	off = 0;
	if (store_message_read(wk->st, w[0].q.message_id, 0, chunk, RELAY_CHUNK, &got) == 0)
		off = (int64_t)header_return_path_len(chunk, got);
	for (; off < size; off += (int64_t)got) {
		if (store_message_read(wk->st, w[0].q.message_id, off, chunk, RELAY_CHUNK, &got) == -1 ||
		    got == 0) {
			/* Dropping the connection before the final dot aborts the
			 * transaction at the destination (RFC 5321 4.1.1.4). */
			for (i = 0; i < nacc; i++)
				set_outcome(acc[i], OUT_TEMP, ESC_SYSTEM_TEMP,
				    "store: reading the message failed at octet %lld",
				    (long long)off);
			ret = -1;
			goto done;
		}
		if (smtpclient_data_write(s, chunk, got) == -1) {
			for (i = 0; i < nacc; i++)
				set_outcome(acc[i], OUT_TEMP, ESC_BAD_CONNECTION, "%s: %s", mta, s->err);
			ret = -1;
			goto done;
		}
	}
	st = smtpclient_data_end(s);
	for (i = 0; i < nacc; i++) {
		if (st == -1)
			/* RFC 1047: the message may have arrived; a retry can duplicate it. */
			set_outcome(acc[i], OUT_TEMP, ESC_BAD_CONNECTION, "%s: after end of data: %s", mta, s->err);
		else
			set_reply(acc[i], mta, &s->reply, "end of DATA");
	}
	if (st == -1)
		ret = -1;
done:
	free(chunk);
	free(acc);
	free(rc);
	return ret;
}

/* ---- one destination -------------------------------------------------- */

void
relay_session_deliver(struct worker *wk, struct work *w, size_t n)
{
	struct relay *r = wk->r;
	const struct config *cfg = r->cfg;
	struct mx_route rt;
	struct smtpclient *s = NULL;
	struct sess_err e;
	struct trace_ctx tc;
	FILE *trace = NULL;
	char err[RELAY_TEXT_MAX], esc[REPLY_ESC_MAX] = ESC_TEMP, mta[RELAY_MTA_MAX] = "";
	char sid[LOG_SESSION_ID_MAX] = "";
	size_t a, b, c, h;
	bool open = false, dead = false, plain = false;
	int rc;

	rc = mx_select(cfg, relay_rcpt_domain(w[0].q.rcpt), &rt, err, sizeof(err));
	if (rc == 0 && rt.source == MX_DNS)
		rc = mx_resolve(cfg, &rt, esc, err, sizeof(err));
	else if (rc != 0)
		snprintf(esc, sizeof(esc), ESC_BAD_SYSTEM);
	if (rc != 0) {
		set_outcome_all(w, n, rc == MX_PERMFAIL ? OUT_PERM : OUT_TEMP, esc, err);
		goto done;
	}
	if (rt.source != MX_DNS && mx_is_self(cfg, rt.hosts[0].host, rt.hosts[0].port)) {
		log_warnx("relay: %s %s:%s for %s points back at this server: fix [relay] in %s",
		    mx_source_name(rt.source), rt.hosts[0].host, rt.hosts[0].port, rt.domain,
		    cfg->path[0] ? cfg->path : "the configuration");
		strfmt(err, sizeof(err), "mail for %s loops back to myself (%s %s:%s is this server)",
		    rt.domain, mx_source_name(rt.source), rt.hosts[0].host, rt.hosts[0].port);
		set_outcome_all(w, n, OUT_PERM, ESC_LOOP, err);
		goto done;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		set_outcome_all(w, n, OUT_TEMP, ESC_SYSTEM_TEMP, "out of memory");
		goto done;
	}
	memset(&e, 0, sizeof(e));
	for (h = 0; h < rt.nhosts && !open && !relay_stopping(r); h++) {
		trace = trace_open(&tc, cfg, rt.hosts[h].host);
		snprintf(sid, sizeof(sid), "%s", tc.tr.session_id);
		if (session_open(wk, &rt, &rt.hosts[h], plain, s, trace, mta, sizeof(mta), &e) == 0) {
			open = true;
			break;
		}
		trace_finish(wk->st, &tc, &trace);
		log_info("relay: session=%s host=%s port=%s domain=%s status=unusable reply=\"%s\"",
		    sid, rt.hosts[h].host, rt.hosts[h].port, rt.domain, e.text);
		if (e.retry_plain && !plain) {
			plain = true;	/* same host again, without TLS */
			h--;
			continue;
		}
		plain = false;
	}
	if (!open) {
		if (relay_stopping(r) && e.text[0] == '\0')
			goto done;	/* stopped before trying: leave the items alone */
		for (a = 0; a < n; a++) {
			if (w[a].out != OUT_PENDING)
				continue;
			w[a].out = e.perm ? OUT_PERM : OUT_TEMP;
			w[a].remote = e.remote;
			snprintf(w[a].esc, sizeof(w[a].esc), "%s", e.esc);
			snprintf(w[a].mta, sizeof(w[a].mta), "%s", e.mta);
			snprintf(w[a].reply, sizeof(w[a].reply), "%s", e.reply);
			snprintf(w[a].error, sizeof(w[a].error), "%s", e.text);
		}
		goto done;
	}
	/* One transaction per message (w is sorted by message), at most
	 * RELAY_RCPTS_PER_TX recipients each. */
	for (a = 0; a < n && !dead; a = b) {
		for (b = a + 1; b < n && w[b].q.message_id == w[a].q.message_id &&
		    strcmp(w[b].q.sender, w[a].q.sender) == 0; b++)
			;
		for (c = a; c < b && !dead; c += RELAY_RCPTS_PER_TX) {
			size_t m = b - c < RELAY_RCPTS_PER_TX ? b - c : RELAY_RCPTS_PER_TX;

			if (relay_stopping(r))
				goto quit;
			for (size_t i = c; i < c + m; i++)
				snprintf(w[i].mta, sizeof(w[i].mta), "%s", mta);
			if (transact(wk, s, mta, w + c, m) == -1) {
				dead = true;
				strfmt(err, sizeof(err), "%s: %s", mta, s->err[0] ? s->err :
				    "connection lost");
			}
		}
	}
	if (dead) {
		for (a = 0; a < n; a++)
			if (w[a].out == OUT_PENDING) {
				set_outcome(&w[a], OUT_TEMP, ESC_BAD_CONNECTION, "%s", err);
				snprintf(w[a].mta, sizeof(w[a].mta), "%s", mta);
			}
	}
quit:
	if (!dead)
		smtpclient_quit(s);
	relay_set_conn_fd(wk, -1);
	smtpclient_close(s);
	trace_finish(wk->st, &tc, &trace);
done:
	free(s);
	for (a = 0; a < n; a++)
		if (w[a].out != OUT_PENDING)
			snprintf(w[a].session, sizeof(w[a].session), "%s", sid);
}
