/*
 * relay.c - the queue runner: outbound SMTP from the store's queue
 * (RFC 5321 3.3 transactions, 4.5.4.1 retry strategy, 5.1 MX order, 6.1
 * reliable delivery and bounces; RFC 3207 opportunistic STARTTLS; RFC 4954
 * AUTH towards the smarthost). A runner thread lists the due items and
 * groups them by route into jobs; RELAY_WORKERS delivery threads, each with
 * its own store handle, take one job at a time: one connection per
 * destination, one transaction per message carrying all of its recipients
 * there. Blocking I/O through the shared SMTP client (mailcli/smtpclient.c),
 * every wait bounded; a hung destination holds up only its own job.
 * Must never: bounce to the null sender, delete an item before its fate is
 * on disk (delivered, or its bounce committed), or touch smtpd's event loop.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dsn.h"
#include "log.h"
#include "mailaddr.h"
#include "mx.h"
#include "relay.h"
#include "replyparse.h"
#include "smtpclient.h"
#include "store.h"
#include "tls.h"
#include "transcript.h"

#define RELAY_CONNECT_TIMEOUT	30	/* seconds to connect (Postfix: smtp_connect_timeout) */
#define RELAY_TIMEOUT		300	/* seconds per later wait (RFC 5321 4.5.3.2) */
#define RELAY_RCPTS_PER_TX	100	/* RCPTs per transaction (RFC 5321 4.5.3.1.8) */
#define RELAY_CHUNK		65536	/* octets read from the store per write */
#define RELAY_STOP_GRACE	3	/* seconds a delivery may finish at shutdown */
#define RELAY_WORKERS		8	/* destinations delivered to at the same time */
#define RELAY_RUN_MAX		2000	/* queue items handed out per run (memory bound) */

enum outcome {
	OUT_PENDING,		/* not tried in this run: left as it is */
	OUT_SENT,		/* the destination took it: delete */
	OUT_TEMP,		/* 4xx, refused, timeout: defer */
	OUT_PERM		/* 5xx, loop, expired: bounce and delete */
};

/* One queue item during a run. */
struct work {
	struct store_queue_item q;
	char	 key[300];		/* route key (mx_route.key): same key = same connection */
	enum outcome out;
	bool	 remote;		/* reply[] came from the destination */
	char	 esc[16];		/* RFC 3463 status for the log and the DSN */
	char	 mta[300];		/* "host[addr:port]" that answered */
	char	 reply[512];		/* its reply, first line */
	char	 error[512];		/* last_error for the queue / reason in a DSN */
	char	 session[16];		/* outbound session id (transcript), or "" */
};

/* A destination's items handed to a worker (w sorted by message). */
struct job {
	struct job *next;
	char	 key[300];		/* the route key: one job per key at a time */
	struct work *w;
	size_t	 n;
	bool	 running;
};

/* A delivery thread with its own store handle. */
struct worker {
	struct relay *r;
	struct store *st;
	pthread_t thread;
	bool	 started;
	int	 conn_fd;		/* socket of the delivery in progress, or -1 */
};

struct relay {
	const struct config *cfg;
	struct store *st;		/* the runner's: lists the queue */
	SSL_CTX	*tls_any;		/* opportunistic STARTTLS: peers not verified */
	SSL_CTX	*tls_verify;		/* smarthost STARTTLS: chain and name verified */
	pthread_t thread;		/* the runner */
	struct worker workers[RELAY_WORKERS];
	pthread_mutex_t mu;		/* guards everything below and workers[].conn_fd */
	pthread_cond_t cv;		/* runner: kicked or stopping */
	pthread_cond_t jobs_cv;		/* workers: a job is waiting or stopping */
	struct job *jobs;		/* waiting and running jobs */
	bool	 stop;
	bool	 kicked;
};

static pthread_mutex_t relay_global_mu = PTHREAD_MUTEX_INITIALIZER;
static struct relay *relay_global;	/* for relay_kick() */

/* ---- small helpers ------------------------------------------------------ */

/* snprintf for messages, where truncation is acceptable. */
static void
textf(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
textf(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, len, fmt, ap);
	va_end(ap);
}

static bool
stopping(struct relay *r)
{
	bool s;

	pthread_mutex_lock(&r->mu);
	s = r->stop;
	pthread_mutex_unlock(&r->mu);
	return s;
}

static void
set_conn_fd(struct worker *wk, int fd)
{
	pthread_mutex_lock(&wk->r->mu);
	wk->conn_fd = fd;
	pthread_mutex_unlock(&wk->r->mu);
}

static const char *
rcpt_domain(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	return at != NULL ? at + 1 : "";
}

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
	char line[512];

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
	textf(w->error, sizeof(w->error), "host %s said: %s (in reply to %s)", mta, line, phase);
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
	char	 host[256];
	char	 line[1024];
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
	char sid[16];
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
	struct smtp_reply rp;
	struct timeval tv = { .tv_sec = RELAY_TIMEOUT, .tv_usec = 0 };
	char perr[256], *line;
	size_t len;
	int st;

	memset(s, 0, sizeof(*s));
	if (clientconn_open(&s->conn, host, port, RELAY_CONNECT_TIMEOUT, SMTPCLIENT_LINE_MAX,
	    trace) == -1) {
		snprintf(s->err, sizeof(s->err), "%s", s->conn.err);
		return -1;
	}
	set_conn_fd(wk, s->conn.fd);
	s->conn.timeout_ms = RELAY_TIMEOUT * 1000;
	/* clientconn set the OpenSSL backstop to the connect timeout. */
	(void)setsockopt(s->conn.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(s->conn.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	smtp_reply_init(&rp);
	do {
		if (clientconn_readline(&s->conn, &line, &len) == -1) {
			snprintf(s->err, sizeof(s->err), "%s", s->conn.err);
			smtp_reply_free(&rp);
			return -1;
		}
		st = smtp_reply_feed(&rp, line, len, perr, sizeof(perr));
	} while (st == 0);
	if (st == -1) {
		textf(s->err, sizeof(s->err), "malformed greeting from %s: %s", host, perr);
		smtp_reply_free(&rp);
		return -1;
	}
	memset(&s->reply, 0, sizeof(s->reply));
	s->reply.code = rp.code;
	snprintf(s->reply.esc, sizeof(s->reply.esc), "%s", rp.esc);
	snprintf(s->reply.text, sizeof(s->reply.text), "%s", rp.text.data ? rp.text.data : "");
	smtp_reply_free(&rp);
	s->greeting = s->reply;
	return s->reply.code == 220 ? 0 : 1;
}

/* Why a connection could not be set up. */
struct sess_err {
	bool	 perm;			/* a 5xx greeting or EHLO: permanent */
	bool	 retry_plain;		/* opportunistic TLS broke: try again without */
	bool	 remote;
	char	 esc[16];
	char	 mta[300];
	char	 reply[512];
	char	 text[512];
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
		textf(mta, mtalen, "%s[%s]", h->host, s->conn.peer);
	if (rc == -1) {
		sess_fail(e, "4.4.1", "%s", s->err);
		goto fail;
	}
	if (rc == 1) {
		sess_fail_reply(e, mta, &s->reply, "the greeting");
		goto quit;
	}
	if ((rc = smtpclient_ehlo(s, cfg->hostname)) != 0) {
		if (rc == -1) {
			sess_fail(e, "4.4.2", "%s: %s", mta, s->err);
			goto fail;
		}
		sess_fail_reply(e, mta, &s->reply, "EHLO");
		goto quit;
	}
	if (s->caps.starttls && ctx != NULL && !plain) {
		rc = smtpclient_starttls(s, ctx, cfg->hostname);
		if (rc == -1) {
			sess_fail(e, "4.7.5", "%s: STARTTLS: %s", mta, s->err);
			e->retry_plain = !need_tls;	/* opportunistic: plaintext beats nothing */
			goto fail;
		}
		if (rc == 1 && (need_tls || clientconn_is_tls(&s->conn))) {
			sess_fail_reply(e, mta, &s->reply, "STARTTLS");
			e->perm = false;	/* a TLS problem is fixed by an admin, not bounced */
			goto quit;
		}
	} else if (need_tls) {
		sess_fail(e, "4.7.4", "%s offers no STARTTLS%s, and smarthost_starttls is on",
		    mta, ctx == NULL ? " (or no TLS client context)" : "");
		goto quit;
	}
	if (smarthost && cfg->smarthost_user[0] != '\0') {
		rc = smtpclient_auth(s, cfg->smarthost_user, cfg->smarthost_password);
		if (rc == -1) {
			sess_fail(e, "4.7.8", "%s: AUTH: %s", mta, s->err);
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
	set_conn_fd(wk, -1);
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
		set_outcome_all(w, n, OUT_TEMP, "4.3.0", "store: cannot read the message");
		return 0;
	}
	rc = calloc(n, sizeof(*rc));
	acc = calloc(n, sizeof(*acc));
	chunk = malloc(RELAY_CHUNK);
	if (rc == NULL || acc == NULL || chunk == NULL) {
		set_outcome_all(w, n, OUT_TEMP, "4.3.0", "out of memory");
		goto done;
	}
	/* The client has no SMTPUTF8 MAIL parameter (RFC 6531 3.4): such mail
	 * cannot be relayed faithfully, so it is refused here, not mangled. */
	if (!is_ascii(w[0].q.sender)) {
		set_outcome_all(w, n, OUT_PERM, "5.6.7",
		    "the sender address is not ASCII and the relay cannot send SMTPUTF8");
		goto done;
	}
	for (i = 0; i < n; i++) {
		if (!is_ascii(w[i].q.rcpt)) {
			set_outcome(&w[i], OUT_PERM, "5.6.7",
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
		set_outcome_all(w, n, OUT_TEMP, "4.4.2", s->err);
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
				set_outcome(acc[i], OUT_TEMP, "4.4.2", "%s", s->err);
			else
				set_reply(acc[i], mta, &s->reply, "DATA");
		}
		if (st == -1 || smtpclient_rset(s) == -1)
			ret = -1;
		goto done;
	}
	for (off = 0; off < size; off += (int64_t)got) {
		if (store_message_read(wk->st, w[0].q.message_id, off, chunk, RELAY_CHUNK, &got) == -1 ||
		    got == 0) {
			/* Dropping the connection before the final dot aborts the
			 * transaction at the destination (RFC 5321 4.1.1.4). */
			for (i = 0; i < nacc; i++)
				set_outcome(acc[i], OUT_TEMP, "4.3.0",
				    "store: reading the message failed at octet %lld",
				    (long long)off);
			ret = -1;
			goto done;
		}
		if (smtpclient_data_write(s, chunk, got) == -1) {
			for (i = 0; i < nacc; i++)
				set_outcome(acc[i], OUT_TEMP, "4.4.2", "%s: %s", mta, s->err);
			ret = -1;
			goto done;
		}
	}
	st = smtpclient_data_end(s);
	for (i = 0; i < nacc; i++) {
		if (st == -1)
			/* RFC 1047: the message may have arrived; a retry can duplicate it. */
			set_outcome(acc[i], OUT_TEMP, "4.4.2", "%s: after end of data: %s", mta, s->err);
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

/* ---- settling: delete, defer, or bounce ---------------------------------- */

static void
log_item(const struct work *w, const char *status, int64_t now)
{
	log_info("relay: queue_id=%lld msg=%lld from=<%s> to=<%s> relay=%s session=%s status=%s"
	    " dsn=%s attempts=%d delay=%llds reply=\"%s\"",
	    (long long)w->q.id, (long long)w->q.message_id, w->q.sender, w->q.rcpt,
	    w->mta[0] ? w->mta : "none", w->session[0] ? w->session : "-", status, w->esc,
	    w->q.attempts + 1,
	    (long long)(now - w->q.created), w->error);
}

/*
 * Commit one bounce for the permanently failed items of one message: to
 * the sender's mailbox when the sender is local, else into the queue.
 * Returns 0 when it is on disk (or rightly not sent), -1 to retry later.
 */
static int
bounce(struct worker *wk, struct work **f, size_t n, int64_t now)
{
	struct relay *r = wk->r;
	const struct config *cfg = r->cfg;
	const char *sender = f[0]->q.sender, *domain = rcpt_domain(sender);
	struct store_delivery *d = NULL;
	struct dsn_rcpt *dr = NULL;
	struct dsn_msg m;
	struct mailaddr a;
	struct buf out;
	char sid[16], msgid[128], account[STORE_NAME_MAX + 1], local[MAILADDR_LOCAL_MAX * 2 + 3];
	char date[64], perr[128], *orig = NULL;
	size_t got = 0, i;
	int is_local, ret = -1, rs;

	buf_init(&out, DSN_HEADERS_MAX + 8192 + n * 2048);
	if ((orig = malloc(DSN_HEADERS_MAX)) == NULL || (dr = calloc(n, sizeof(*dr))) == NULL)
		goto out;
	if (store_message_read(wk->st, f[0]->q.message_id, 0, orig, DSN_HEADERS_MAX, &got) == -1) {
		/* Still tell the sender; a bounce must not wait on a broken message. */
		log_warnx("relay: bounce for msg=%lld without its headers: %s",
		    (long long)f[0]->q.message_id, store_errmsg(wk->st));
		got = 0;
	}
	for (i = 0; i < n; i++) {
		dr[i].addr = f[i]->q.rcpt;
		dr[i].status = f[i]->esc;
		dr[i].remote_mta = f[i]->remote ? f[i]->mta : NULL;
		dr[i].reply = f[i]->remote ? f[i]->reply : NULL;
		dr[i].reason = f[i]->error;
		dr[i].last_attempt = now;
	}
	log_session_id(sid, sizeof(sid));
	textf(msgid, sizeof(msgid), "%lld.%s.dsn@%s", (long long)now, sid, cfg->hostname);
	m.reporting_mta = cfg->hostname;
	m.sender = sender;
	m.msgid = msgid;
	m.arrival = f[0]->q.created;
	m.now = now;

	/* Where the bounce goes: a local account, or the queue. */
	is_local = domain[0] == '\0' ? 1 : store_domain_lookup(wk->st, domain);
	if (is_local == -1) {
		log_warnx("relay: bounce for msg=%lld waits: %s", (long long)f[0]->q.message_id,
		    store_errmsg(wk->st));
		goto out;
	}
	if ((d = store_delivery_new("", sid)) == NULL)
		goto out;
	if (is_local) {
		if (mailaddr_parse(sender, &a, perr, sizeof(perr)) == 0)
			mailaddr_unquoted_local(&a, local, sizeof(local));
		else
			snprintf(local, sizeof(local), "%.*s",
			    (int)(domain[0] ? (size_t)(domain - 1 - sender) : strlen(sender)), sender);
		rs = store_resolve(wk->st, local, domain, account, sizeof(account));
		if (rs == STORE_NOTFOUND) {
			log_warnx("relay: bounce for msg=%lld dropped: sender <%s> is no local account",
			    (long long)f[0]->q.message_id, sender);
			ret = 0;
			goto out;
		}
		if (rs != 0 || store_delivery_add_rcpt(d, account) == -1)
			goto out;
		/* Local delivery: the trace smtpd would have written (RFC 5321 4.4). */
		buf_puts(&out, "Return-Path: <>\r\n");
	} else if (store_delivery_add_remote(d, sender) == -1)
		goto out;
	dsn_date(now, date, sizeof(date));
	buf_printf(&out, "Received: by %s (correio relay) id %s;\r\n\t%s\r\n",
	    cfg->hostname, sid, date);
	if (dsn_build(&out, &m, dr, n, orig, got) == -1 ||
	    store_delivery_body(d, out.data, out.len) == -1) {
		log_warnx("relay: bounce for msg=%lld: message too large", (long long)f[0]->q.message_id);
		goto out;
	}
	if (store_delivery_commit(wk->st, d) == -1) {
		log_warnx("relay: bounce for msg=%lld: %s", (long long)f[0]->q.message_id,
		    store_errmsg(wk->st));
		goto out;
	}
	log_info("relay: bounce msg=%lld to=<%s> delivery=%s dsn_msg=%lld rcpts=%zu msgid=<%s>",
	    (long long)f[0]->q.message_id, sender, is_local ? "local" : "queued",
	    (long long)store_delivery_id(d), n, msgid);
	if (!is_local) {
		pthread_mutex_lock(&r->mu);
		r->kicked = true;	/* deliver the queued bounce in the next run */
		pthread_mutex_unlock(&r->mu);
	}
	ret = 0;
out:
	store_delivery_free(&d);
	buf_free(&out);
	free(dr);
	free(orig);
	return ret;
}

static long
retry_delay(const struct config *cfg, int attempts)
{
	size_t i;

	if (cfg->nretry == 0)
		return 3600;
	i = attempts < 0 ? 0 : (size_t)attempts;
	return cfg->retry_schedule[i < cfg->nretry ? i : cfg->nretry - 1];
}

/* A remote server's text goes to logs, the queue (shown on an admin's
 * terminal by `queue list`, tab-separated) and bounces: no control bytes. */
static void
defang(char *p)
{
	for (; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* Apply the outcomes of one message's items (w[0..n-1] share message_id). */
static void
settle(struct worker *wk, struct work *w, size_t n)
{
	const struct config *cfg = wk->r->cfg;
	struct work **f;
	int64_t now = (int64_t)time(NULL);
	size_t i, nf = 0;
	char err[512];

	f = calloc(n, sizeof(*f));
	for (i = 0; i < n; i++) {
		struct work *x = &w[i];

		defang(x->error);
		defang(x->reply);
		defang(x->mta);
		if (x->out == OUT_TEMP && now - x->q.created >= cfg->max_queue_age) {
			/* RFC 5321 4.5.4.1: give up after the maximum age. */
			textf(err, sizeof(err), "gave up after %lld s in the queue (max_queue_age);"
			    " last error: %s", (long long)(now - x->q.created), x->error);
			snprintf(x->error, sizeof(x->error), "%s", err);
			snprintf(x->esc, sizeof(x->esc), "4.4.7");
			x->remote = false;
			x->out = OUT_PERM;
		}
		switch (x->out) {
		case OUT_PENDING:
			break;
		case OUT_SENT:
			if (store_queue_delete(wk->st, x->q.id) == -1)
				log_warnx("relay: queue_id=%lld delete: %s", (long long)x->q.id,
				    store_errmsg(wk->st));
			log_item(x, "sent", now);
			break;
		case OUT_TEMP:
			if (store_queue_defer(wk->st, x->q.id, now + retry_delay(cfg, x->q.attempts),
			    x->error) == -1)
				log_warnx("relay: queue_id=%lld defer: %s", (long long)x->q.id,
				    store_errmsg(wk->st));
			log_item(x, "deferred", now);
			break;
		case OUT_PERM:
			if (f != NULL)
				f[nf++] = x;
			break;
		}
	}
	if (nf == 0)
		goto out;
	if (!dsn_wanted(f[0]->q.sender)) {
		/* Null sender: a bounce or similar. Never bounce it (RFC 5321 6.1). */
		for (i = 0; i < nf; i++) {
			store_queue_delete(wk->st, f[i]->q.id);
			log_item(f[i], "bounced-discarded", now);
		}
		goto out;
	}
	if (bounce(wk, f, nf, now) == -1) {
		/* The bounce is not on disk: keep the items, try again later. */
		for (i = 0; i < nf; i++) {
			store_queue_defer(wk->st, f[i]->q.id, now + retry_delay(cfg, f[i]->q.attempts),
			    f[i]->error);
			log_item(f[i], "bounce-deferred", now);
		}
		goto out;
	}
	for (i = 0; i < nf; i++) {
		if (store_queue_delete(wk->st, f[i]->q.id) == -1)
			log_warnx("relay: queue_id=%lld delete: %s", (long long)f[i]->q.id,
			    store_errmsg(wk->st));
		log_item(f[i], "bounced", now);
	}
out:
	free(f);
}

/* ---- one destination -------------------------------------------------- */

static void
deliver_group(struct worker *wk, struct work *w, size_t n)
{
	struct relay *r = wk->r;
	const struct config *cfg = r->cfg;
	struct mx_route rt;
	struct smtpclient *s = NULL;
	struct sess_err e;
	struct trace_ctx tc;
	FILE *trace = NULL;
	char err[512], esc[16] = "4.0.0", mta[300] = "", sid[16] = "";
	size_t a, b, c, h;
	bool open = false, dead = false, plain = false;
	int rc;

	rc = mx_select(cfg, rcpt_domain(w[0].q.rcpt), &rt, err, sizeof(err));
	if (rc == 0 && rt.source == MX_DNS)
		rc = mx_resolve(cfg, &rt, esc, err, sizeof(err));
	else if (rc != 0)
		snprintf(esc, sizeof(esc), "5.1.2");
	if (rc != 0) {
		set_outcome_all(w, n, rc == MX_PERMFAIL ? OUT_PERM : OUT_TEMP, esc, err);
		goto settle;
	}
	if (rt.source != MX_DNS && mx_is_self(cfg, rt.hosts[0].host, rt.hosts[0].port)) {
		log_warnx("relay: %s %s:%s for %s points back at this server: fix [relay] in %s",
		    mx_source_name(rt.source), rt.hosts[0].host, rt.hosts[0].port, rt.domain,
		    cfg->path[0] ? cfg->path : "the configuration");
		textf(err, sizeof(err), "mail for %s loops back to myself (%s %s:%s is this server)",
		    rt.domain, mx_source_name(rt.source), rt.hosts[0].host, rt.hosts[0].port);
		set_outcome_all(w, n, OUT_PERM, "5.4.6", err);
		goto settle;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		set_outcome_all(w, n, OUT_TEMP, "4.3.0", "out of memory");
		goto settle;
	}
	memset(&e, 0, sizeof(e));
	for (h = 0; h < rt.nhosts && !open && !stopping(r); h++) {
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
		if (stopping(r) && e.text[0] == '\0')
			goto settle;	/* stopped before trying: leave the items alone */
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
		goto settle;
	}
	/* One transaction per message (w is sorted by message), at most
	 * RELAY_RCPTS_PER_TX recipients each. */
	for (a = 0; a < n && !dead; a = b) {
		for (b = a + 1; b < n && w[b].q.message_id == w[a].q.message_id &&
		    strcmp(w[b].q.sender, w[a].q.sender) == 0; b++)
			;
		for (c = a; c < b && !dead; c += RELAY_RCPTS_PER_TX) {
			size_t m = b - c < RELAY_RCPTS_PER_TX ? b - c : RELAY_RCPTS_PER_TX;

			if (stopping(r))
				goto quit;
			for (size_t i = c; i < c + m; i++)
				snprintf(w[i].mta, sizeof(w[i].mta), "%s", mta);
			if (transact(wk, s, mta, w + c, m) == -1) {
				dead = true;
				textf(err, sizeof(err), "%s: %s", mta, s->err[0] ? s->err :
				    "connection lost");
			}
		}
	}
	if (dead) {
		for (a = 0; a < n; a++)
			if (w[a].out == OUT_PENDING) {
				set_outcome(&w[a], OUT_TEMP, "4.4.2", "%s", err);
				snprintf(w[a].mta, sizeof(w[a].mta), "%s", mta);
			}
	}
quit:
	if (!dead)
		smtpclient_quit(s);
	set_conn_fd(wk, -1);
	smtpclient_close(s);
	trace_finish(wk->st, &tc, &trace);
settle:
	free(s);
	for (a = 0; a < n; a++)
		if (w[a].out != OUT_PENDING)
			snprintf(w[a].session, sizeof(w[a].session), "%s", sid);
	for (a = 0; a < n; a = b) {
		for (b = a + 1; b < n && w[b].q.message_id == w[a].q.message_id; b++)
			;
		settle(wk, w + a, b - a);
	}
}

/* ---- the run: due items -> jobs -> workers ---------------------------- */

static int
work_cmp(const void *pa, const void *pb)
{
	const struct work *a = pa, *b = pb;
	int c = strcmp(a->key, b->key);

	if (c != 0)
		return c;
	if (a->q.message_id != b->q.message_id)
		return a->q.message_id < b->q.message_id ? -1 : 1;
	c = strcmp(a->q.sender, b->q.sender);
	if (c != 0)
		return c;
	return a->q.id < b->q.id ? -1 : a->q.id > b->q.id;
}

/* True when a job for key is waiting or running (r->mu held). Its items are
 * then left for a later run: one connection per destination at a time, and
 * an item being delivered is never handed out twice. */
static bool
key_busy(struct relay *r, const char *key)
{
	for (struct job *j = r->jobs; j != NULL; j = j->next)
		if (strcmp(j->key, key) == 0)
			return true;
	return false;
}

/* List the due items, group them by route and hand the groups to workers. */
static void
relay_run(struct relay *r)
{
	struct store_queue_item *items = NULL;
	struct work *w = NULL;
	struct job *j, **tail;
	struct mx_route rt;
	char err[256];
	size_t n = 0, nw, i, a, b, queued = 0;

	/*
	 * The lock is held from the listing to the hand-out: a worker settles
	 * its items in the store before it removes its job, so every item
	 * listed here is either settled already or in a job still listed
	 * (busy). Without it, a job finishing in between would have its
	 * items delivered twice.
	 */
	pthread_mutex_lock(&r->mu);
	if (store_queue_list(r->st, (int64_t)time(NULL), &items, &n) == -1) {
		log_warnx("relay: listing the queue: %s", store_errmsg(r->st));
		goto out;
	}
	if (n == 0)
		goto out;
	if ((w = calloc(n < RELAY_RUN_MAX ? n : RELAY_RUN_MAX, sizeof(*w))) == NULL) {
		log_warnx("relay: out of memory for %zu queue items", n);
		goto out;
	}
	/* Items of a destination being delivered wait for the next run; the
	 * others are taken, at most RELAY_RUN_MAX of them (oldest first). */
	for (i = 0, nw = 0; i < n && nw < RELAY_RUN_MAX; i++) {
		if (mx_select(r->cfg, rcpt_domain(items[i].rcpt), &rt, err, sizeof(err)) == 0)
			snprintf(w[nw].key, sizeof(w[nw].key), "%s", rt.key);
		else	/* unroutable: a job of its own, deliver_group bounces it */
			textf(w[nw].key, sizeof(w[nw].key), "bad %s", items[i].rcpt);
		if (key_busy(r, w[nw].key))
			continue;
		w[nw++].q = items[i];
	}
	n = nw;
	qsort(w, n, sizeof(*w), work_cmp);
	for (tail = &r->jobs; *tail != NULL; tail = &(*tail)->next)
		;
	for (a = 0; a < n && !r->stop; a = b) {
		for (b = a + 1; b < n && strcmp(w[b].key, w[a].key) == 0; b++)
			;
		if ((j = calloc(1, sizeof(*j))) == NULL ||
		    (j->w = malloc((b - a) * sizeof(*w))) == NULL) {
			free(j);
			log_warnx("relay: out of memory queueing %s", w[a].key);
			break;
		}
		memcpy(j->w, w + a, (b - a) * sizeof(*w));
		j->n = b - a;
		snprintf(j->key, sizeof(j->key), "%s", w[a].key);
		*tail = j;
		tail = &j->next;
		queued++;
	}
	if (queued > 0)
		pthread_cond_broadcast(&r->jobs_cv);
	free(w);
out:
	pthread_mutex_unlock(&r->mu);
	free(items);
}

static void
job_unlink(struct relay *r, struct job *j)
{
	struct job **p;

	for (p = &r->jobs; *p != NULL; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
}

/* A delivery thread: takes one waiting job at a time. */
static void *
worker_main(void *arg)
{
	struct worker *wk = arg;
	struct relay *r = wk->r;
	struct job *j;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		for (j = r->jobs; j != NULL && j->running; j = j->next)
			;
		if (r->stop)
			break;
		if (j == NULL) {
			pthread_cond_wait(&r->jobs_cv, &r->mu);
			continue;
		}
		j->running = true;
		pthread_mutex_unlock(&r->mu);
		deliver_group(wk, j->w, j->n);
		pthread_mutex_lock(&r->mu);
		job_unlink(r, j);
		free(j->w);
		free(j);
		/* Items of this destination that were skipped can go now. */
		r->kicked = true;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* The runner: lists the queue every RELAY_POLL_SECONDS or when kicked. */
static void *
relay_main(void *arg)
{
	struct relay *r = arg;
	struct timespec ts;

	log_debug("relay: queue runner started, store=%s workers=%d", r->cfg->store_path,
	    RELAY_WORKERS);
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		r->kicked = false;
		pthread_mutex_unlock(&r->mu);
		relay_run(r);
		pthread_mutex_lock(&r->mu);
		if (r->stop || r->kicked)
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += RELAY_POLL_SECONDS;
		while (!r->stop && !r->kicked &&
		    pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&r->mu);
	log_debug("relay: queue runner stopped");
	return NULL;
}

/* ---- public ------------------------------------------------------------ */

/* Stop and free everything relay_start made (threads already joined). */
static void
relay_free(struct relay *r)
{
	struct job *j;
	size_t i;

	while ((j = r->jobs) != NULL) {	/* jobs never started: items stay queued */
		r->jobs = j->next;
		free(j->w);
		free(j);
	}
	for (i = 0; i < RELAY_WORKERS; i++)
		store_close(&r->workers[i].st);
	pthread_cond_destroy(&r->jobs_cv);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	SSL_CTX_free(r->tls_any);
	SSL_CTX_free(r->tls_verify);
	store_close(&r->st);
	free(r);
}

/* Ask every thread to stop; join them, cutting deliveries that take longer
 * than RELAY_STOP_GRACE seconds. */
static void
relay_join(struct relay *r)
{
	struct timespec ts;
	size_t i;

	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_cond_broadcast(&r->jobs_cv);
	pthread_mutex_unlock(&r->mu);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += RELAY_STOP_GRACE;
	for (i = 0; i < RELAY_WORKERS; i++) {
		struct worker *wk = &r->workers[i];

		if (!wk->started)
			continue;
		if (pthread_timedjoin_np(wk->thread, NULL, &ts) != 0) {
			/* Cut the delivery in progress; its items stay queued. */
			pthread_mutex_lock(&r->mu);
			if (wk->conn_fd >= 0)
				shutdown(wk->conn_fd, SHUT_RDWR);
			pthread_mutex_unlock(&r->mu);
			pthread_join(wk->thread, NULL);
		}
		wk->started = false;
	}
	if (r->thread != 0)
		pthread_join(r->thread, NULL);
}

int
relay_start(struct relay **relay_r, struct event_base *base, const struct config *cfg,
    char *err, size_t errlen)
{
	struct relay *r;
	char terr[256];
	size_t i;
	bool verify;

	(void)base;	/* the runner never touches smtpd's event loop */
	*relay_r = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->cfg = cfg;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_cond_init(&r->jobs_cv, NULL);
	if (store_open(&r->st, cfg->store_path, err, errlen) == -1)
		goto fail;
	for (i = 0; i < RELAY_WORKERS; i++) {
		r->workers[i].r = r;
		r->workers[i].conn_fd = -1;
		if (store_open(&r->workers[i].st, cfg->store_path, err, errlen) == -1)
			goto fail;
	}
	if ((r->tls_any = tls_client_ctx(NULL, true, terr, sizeof(terr))) == NULL)
		log_warnx("relay: no TLS client context, STARTTLS disabled: %s", terr);
	verify = cfg->smarthost.host[0] != '\0' && cfg->smarthost_starttls;
	if (verify && (r->tls_verify = tls_client_ctx(NULL, false, terr, sizeof(terr))) == NULL)
		log_warnx("relay: no verifying TLS context for the smarthost: %s", terr);
	/* Loop protection: say at once when a route points back at us. */
	for (i = 0; i < cfg->nroutes; i++)
		if (mx_is_self(cfg, cfg->routes[i].host, cfg->routes[i].port))
			log_warnx("relay: route for %s -> %s:%s points back at this server;"
			    " mail for it will bounce (5.4.6)", cfg->routes[i].domain,
			    cfg->routes[i].host, cfg->routes[i].port);
	if (cfg->smarthost.host[0] != '\0' &&
	    mx_is_self(cfg, cfg->smarthost.host, cfg->smarthost.port))
		log_warnx("relay: smarthost %s:%s points back at this server;"
		    " remote mail will bounce (5.4.6)", cfg->smarthost.host, cfg->smarthost.port);
	for (i = 0; i < RELAY_WORKERS; i++) {
		if ((errno = pthread_create(&r->workers[i].thread, NULL, worker_main,
		    &r->workers[i])) != 0) {
			snprintf(err, errlen, "cannot start a relay worker: %s", strerror(errno));
			goto fail_join;
		}
		r->workers[i].started = true;
	}
	if ((errno = pthread_create(&r->thread, NULL, relay_main, r)) != 0) {
		snprintf(err, errlen, "cannot start the queue runner: %s", strerror(errno));
		r->thread = 0;
		goto fail_join;
	}
	pthread_mutex_lock(&relay_global_mu);
	relay_global = r;
	pthread_mutex_unlock(&relay_global_mu);
	log_info("relay: queue runner on, routes=%zu smarthost=%s retry=%lds.. max_queue_age=%lds",
	    cfg->nroutes, cfg->smarthost.host[0] ? cfg->smarthost.host : "none",
	    cfg->nretry > 0 ? cfg->retry_schedule[0] : 0L, cfg->max_queue_age);
	*relay_r = r;
	return 0;
fail_join:
	relay_join(r);
fail:
	relay_free(r);
	return -1;
}

void
relay_kick(void)
{
	pthread_mutex_lock(&relay_global_mu);
	if (relay_global != NULL) {
		pthread_mutex_lock(&relay_global->mu);
		relay_global->kicked = true;
		pthread_cond_signal(&relay_global->cv);
		pthread_mutex_unlock(&relay_global->mu);
	}
	pthread_mutex_unlock(&relay_global_mu);
}

void
relay_stop(struct relay **rp)
{
	struct relay *r = *rp;

	if (r == NULL)
		return;
	pthread_mutex_lock(&relay_global_mu);
	if (relay_global == r)
		relay_global = NULL;
	pthread_mutex_unlock(&relay_global_mu);
	relay_join(r);
	relay_free(r);
	*rp = NULL;
}
