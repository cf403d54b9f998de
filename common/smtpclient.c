/*
 * smtpclient.c - the SMTP client session: greeting, EHLO/HELO, STARTTLS,
 * AUTH PLAIN/LOGIN, the envelope (pipelined when offered, RFC 2920 3.1), and
 * the dot-stuffed DATA stream (RFC 5321 4.5.2). Replies are parsed by
 * common/replyparse.c; bytes move through clientconn.c. See smtpclient.h.
 * Must never: send a secret in the trace, send a bare LF in DATA, or go on
 * after a reply it could not parse.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "b64.h"
#include "numparse.h"
#include "replyparse.h"
#include "smtpclient.h"

static void
set_errf(struct smtpclient *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_errf(struct smtpclient *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);	/* truncation is fine for a message */
	va_end(ap);
}

static void
set_err(struct smtpclient *s, const char *msg)
{
	set_errf(s, "%s", msg);
}

/* Read one whole reply into s->reply. 0, or -1 (s->err). */
static int
read_reply(struct smtpclient *s)
{
	struct smtp_reply r;
	char perr[256], *line;
	size_t len;
	int st;

	smtp_reply_init(&r);
	for (;;) {
		if (clientconn_readline(&s->conn, &line, &len) == -1) {
			set_err(s, s->conn.err);
			smtp_reply_free(&r);
			return -1;
		}
		st = smtp_reply_feed(&r, line, len, perr, sizeof(perr));
		if (st == 1)
			break;
		if (st == -1) {
			set_errf(s, "malformed reply from %s: %s",
			    s->conn.host, perr);
			smtp_reply_free(&r);
			return -1;
		}
	}
	memset(&s->reply, 0, sizeof(s->reply));
	s->reply.code = r.code;
	snprintf(s->reply.esc, sizeof(s->reply.esc), "%s", r.esc);
	snprintf(s->reply.text, sizeof(s->reply.text), "%s", r.text.data ? r.text.data : "");
	clientconn_defang(s->reply.text);
	smtp_reply_free(&r);
	return 0;
}

static int
flush(struct smtpclient *s)
{
	if (clientconn_flush(&s->conn) == -1) {
		set_err(s, s->conn.err);
		return -1;
	}
	return 0;
}

/* Send one command (flushed) and read its reply. */
static int
command(struct smtpclient *s, bool secret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
command(struct smtpclient *s, bool secret, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = clientconn_vcmd(&s->conn, secret, fmt, ap);
	va_end(ap);
	if (r == -1) {
		set_err(s, s->conn.err);
		return -1;
	}
	if (flush(s) == -1 || read_reply(s) == -1)
		return -1;
	return 0;
}

/* 0 for a 2xx completion, 1 for anything else (a 3xx where a completion
 * was due is as bad as a refusal: we would be out of step). */
static int
positive(const struct smtpclient *s)
{
	return s->reply.code / 100 == 2 ? 0 : 1;
}

void
smtpclient_reply_str(const struct reply *r, char *dst, size_t len)
{
	size_t eol = strcspn(r->text, "\n");

	snprintf(dst, len, "%03d%s%s %.*s", r->code, r->esc[0] ? " " : "", r->esc,
	    (int)eol, r->text);
}

int
smtpclient_greeting(struct smtpclient *s)
{
	if (read_reply(s) == -1)
		return -1;
	s->greeting = s->reply;
	return s->reply.code == 220 ? 0 : 1;
}

int
smtpclient_connect(struct smtpclient *s, const char *host, const char *port,
    int timeout_s, FILE *trace)
{
	memset(s, 0, sizeof(*s));
	if (clientconn_open(&s->conn, host, port, timeout_s, SMTPCLIENT_LINE_MAX, trace) == -1) {
		set_err(s, s->conn.err);
		return -1;
	}
	return 0;
}

int
smtpclient_open(struct smtpclient *s, const char *host, const char *port,
    int timeout_s, FILE *trace)
{
	if (smtpclient_connect(s, host, port, timeout_s, trace) == -1)
		return -1;
	return smtpclient_greeting(s);
}

int
smtpclient_open_tls(struct smtpclient *s, const char *host, const char *port,
    int timeout_s, FILE *trace, SSL_CTX *ctx)
{
	memset(s, 0, sizeof(*s));
	if (clientconn_open(&s->conn, host, port, timeout_s, SMTPCLIENT_LINE_MAX, trace) == -1 ||
	    clientconn_starttls(&s->conn, ctx) == -1) {
		set_err(s, s->conn.err);
		return -1;
	}
	return smtpclient_greeting(s);
}

/* Parse the EHLO reply's lines (the first is the greeting) into s->caps. */
static void
parse_caps(struct smtpclient *s)
{
	const char *p = s->reply.text, *e;
	char kw[64], *args;
	size_t len, k;
	bool first = true;

	memset(&s->caps, 0, sizeof(s->caps));
	s->caps.esmtp = true;
	for (; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		if (first) {
			first = false;
			continue;
		}
		len = (size_t)(e - p);
		if (len >= sizeof(kw))
			len = sizeof(kw) - 1;
		memcpy(kw, p, len);
		kw[len] = '\0';
		args = kw + strcspn(kw, " =");	/* some old servers wrote AUTH=LOGIN */
		if (*args != '\0')
			*args++ = '\0';
		for (k = 0; kw[k]; k++)
			kw[k] = (char)toupper((unsigned char)kw[k]);
		if (strcmp(kw, "STARTTLS") == 0)
			s->caps.starttls = true;
		else if (strcmp(kw, "PIPELINING") == 0)
			s->caps.pipelining = true;
		else if (strcmp(kw, "8BITMIME") == 0)
			s->caps.eightbitmime = true;
		else if (strcmp(kw, "SMTPUTF8") == 0)
			s->caps.smtputf8 = true;
		else if (strcmp(kw, "ENHANCEDSTATUSCODES") == 0)
			s->caps.enhancedstatuscodes = true;
		else if (strcmp(kw, "SIZE") == 0) {
			s->caps.size = true;
			/* RFC 1870: "SIZE" alone, or SIZE 0, is no fixed limit; a
			 * value we cannot read counts as none, one too large for
			 * us is as good as none. */
			const char *v = args;
			if (numparse_u64_word(&v, UINT64_MAX, &s->caps.size_max) != NUMPARSE_OK)
				s->caps.size_max = 0;
		} else if (strcmp(kw, "AUTH") == 0) {
			char mechs[256], *tok, *save = NULL;
			snprintf(s->caps.auth, sizeof(s->caps.auth), "%s", args);
			snprintf(mechs, sizeof(mechs), "%s", args);
			for (tok = strtok_r(mechs, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
				if (strcasecmp(tok, "PLAIN") == 0)
					s->caps.auth_plain = true;
				else if (strcasecmp(tok, "LOGIN") == 0)
					s->caps.auth_login = true;
			}
		}
	}
}

int
smtpclient_ehlo(struct smtpclient *s, const char *helo_name)
{
	if (command(s, false, "EHLO %s", helo_name) == -1)
		return -1;
	if (s->reply.code == 250) {
		s->ehlo = s->reply;
		parse_caps(s);
		return 0;
	}
	memset(&s->caps, 0, sizeof(s->caps));
	if (s->reply.code < 500 || s->reply.code > 504)	/* 421 and friends: give up */
		return 1;
	/* RFC 5321 3.2: a server that does not know EHLO gets HELO. */
	if (command(s, false, "HELO %s", helo_name) == -1)
		return -1;
	s->ehlo = s->reply;
	return positive(s);
}

int
smtpclient_starttls(struct smtpclient *s, SSL_CTX *ctx, const char *helo_name)
{
	int r;

	if ((r = command(s, false, "STARTTLS")) != 0)
		return r;
	if (s->reply.code != 220)
		return 1;
	if (clientconn_starttls(&s->conn, ctx) == -1) {
		set_err(s, s->conn.err);
		return -1;
	}
	memset(&s->caps, 0, sizeof(s->caps));
	return smtpclient_ehlo(s, helo_name);
}

int
smtpclient_auth(struct smtpclient *s, const char *user, const char *password)
{
	char enc[CLIENTCONN_SASL_ENC];
	size_t ul = strlen(user), pl = strlen(password);
	int r;

	if (clientconn_sasl_plain(user, password, enc, sizeof(enc)) == -1) {
		set_errf(s, "user name or password too long (%d octets at most)", CLIENTCONN_SASL_MAX);
		return -1;
	}
	if (s->caps.auth_plain) {
		r = command(s, true, "AUTH PLAIN %s", enc);
		explicit_bzero(enc, sizeof(enc));
		if (r != 0)
			return r;
		return positive(s);
	}
	explicit_bzero(enc, sizeof(enc));
	if (s->caps.auth_login) {
		if ((r = command(s, false, "AUTH LOGIN")) != 0)
			return r;
		if (s->reply.code != 334)
			return 1;
		b64_encode(user, ul, enc);
		if ((r = command(s, true, "%s", enc)) != 0)
			return r;
		if (s->reply.code != 334)
			return 1;
		b64_encode(password, pl, enc);
		r = command(s, true, "%s", enc);
		explicit_bzero(enc, sizeof(enc));
		if (r != 0)
			return r;
		return positive(s);
	}
	set_errf(s, "%s offers no authentication we support (%s%s)", s->conn.host,
	    s->caps.auth[0] ? "AUTH " : "no AUTH in its EHLO reply", s->caps.auth);
	return -1;
}

static bool
is_ascii(const char *p)
{
	for (; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return false;
	return true;
}

static int
queue_cmd(struct smtpclient *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
queue_cmd(struct smtpclient *s, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = clientconn_vcmd(&s->conn, false, fmt, ap);
	va_end(ap);
	if (r == -1)
		set_err(s, s->conn.err);
	return r;
}

int
smtpclient_envelope(struct smtpclient *s, const char *from, uint64_t size,
    bool eightbit, struct smtpclient_rcpt *rcpt, size_t n)
{
	char params[96] = "";
	struct reply mail = { 0 };
	size_t i, ok = 0, pl;
	bool pipe = s->caps.pipelining, utf8;

	if (s->caps.size && size > 0)
		snprintf(params, sizeof(params), " SIZE=%llu", (unsigned long long)size);
	pl = strlen(params);
	if (eightbit && s->caps.eightbitmime)
		pl += (size_t)snprintf(params + pl, sizeof(params) - pl, " BODY=8BITMIME");
	/* RFC 6531 3.4: UTF-8 in an address needs SMTPUTF8, and a server that
	 * does not offer it cannot take the message at all. */
	utf8 = !is_ascii(from);
	for (i = 0; i < n && !utf8; i++)
		utf8 = !is_ascii(rcpt[i].addr);
	if (utf8 && !s->caps.smtputf8) {
		set_errf(s, "%s does not offer SMTPUTF8, needed for a non-ASCII address",
		    s->conn.host);
		return -1;
	}
	if (utf8)
		snprintf(params + pl, sizeof(params) - pl, " SMTPUTF8");
	if (queue_cmd(s, "MAIL FROM:<%s>%s", from, params) == -1)
		return -1;
	if (!pipe) {
		if (flush(s) == -1 || read_reply(s) == -1)
			return -1;
		if (s->reply.code / 100 != 2)
			return 1;
		mail = s->reply;
	}
	/* RFC 2920 3.1: with PIPELINING, MAIL and every RCPT leave in one write
	 * and their replies are read afterwards, in order. */
	for (i = 0; i < n; i++) {
		memset(&rcpt[i].reply, 0, sizeof(rcpt[i].reply));
		rcpt[i].accepted = false;
		if (queue_cmd(s, "RCPT TO:<%s>", rcpt[i].addr) == -1)
			return -1;
		if (!pipe) {
			if (flush(s) == -1 || read_reply(s) == -1)
				return -1;
			rcpt[i].reply = s->reply;
			rcpt[i].accepted = s->reply.code / 100 == 2;
			ok += rcpt[i].accepted;
		}
	}
	if (pipe) {
		if (flush(s) == -1 || read_reply(s) == -1)
			return -1;
		mail = s->reply;
		for (i = 0; i < n; i++) {
			if (read_reply(s) == -1)
				return -1;
			rcpt[i].reply = s->reply;
			rcpt[i].accepted = s->reply.code / 100 == 2;
			ok += rcpt[i].accepted;
		}
		if (mail.code / 100 != 2) {
			s->reply = mail;
			return 1;
		}
	}
	s->reply = mail;	/* the caller reads MAIL's verdict here, RCPTs' in rcpt[] */
	return ok > 0 ? 0 : 1;
}

int
smtpclient_data_begin(struct smtpclient *s)
{
	int r;

	if ((r = command(s, false, "DATA")) != 0)
		return r;
	if (s->reply.code != 354)
		return 1;
	if (s->dotbuf == NULL && (s->dotbuf = evbuffer_new()) == NULL) {
		set_err(s, "out of memory");
		return -1;
	}
	reply_dot_init(&s->ds);
	s->data_octets = s->data_lines = 0;
	s->data_last_cr = false;
	s->body_linelen = 0;
	s->in_data = true;
	/* The body itself is summarised unless trace_body asks for every line. */
	return 0;
}

/* Move what reply_dot_write produced into the connection's queue. */
static int
drain(struct smtpclient *s, struct evbuffer *eb)
{
	struct evbuffer_iovec v[8];
	int i, nv;
	size_t total;

	while (evbuffer_get_length(eb) > 0) {
		nv = evbuffer_peek(eb, -1, NULL, v, 8);
		if (nv > 8)
			nv = 8;
		total = 0;
		for (i = 0; i < nv; i++) {
			if (clientconn_write(&s->conn, v[i].iov_base, v[i].iov_len) == -1) {
				set_err(s, s->conn.err);
				return -1;
			}
			total += v[i].iov_len;
		}
		evbuffer_drain(eb, total);
	}
	return 0;
}

/* Trace body lines in full ("C: line") when asked. */
static void
trace_body(struct smtpclient *s, const char *p, size_t n)
{
	size_t i;

	if (s->conn.trace == NULL || !s->trace_body)
		return;
	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (s->body_linelen > 0 && s->body_line[s->body_linelen - 1] == '\r')
				s->body_linelen--;
			clientconn_trace_line(s->conn.trace, s->body_linelen > 0 &&
			    s->body_line[0] == '.' ? "C: ." : "C: ", s->body_line, s->body_linelen);
			s->body_linelen = 0;
		} else if (s->body_linelen < sizeof(s->body_line))
			s->body_line[s->body_linelen++] = p[i];
	}
}

int
smtpclient_data_write(void *ctx, const void *p, size_t n)
{
	struct smtpclient *s = ctx;
	const char *c = p;
	char out[8192 + 2];
	size_t i, o = 0;
	struct evbuffer *eb = s->dotbuf;
	int r = 0;

	if (!s->in_data) {
		set_err(s, "message text written outside DATA");
		return -1;
	}
	/* Normalise line ends to CRLF (RFC 5321 2.3.8), then dot-stuff. */
	for (i = 0; i < n && r == 0; i++) {
		if (c[i] == '\n') {
			if (!s->data_last_cr)
				out[o++] = '\r';
			s->data_lines++;
		}
		s->data_last_cr = c[i] == '\r';
		out[o++] = c[i];
		if (o >= sizeof(out) - 2 || i + 1 == n) {
			trace_body(s, out, o);
			s->data_octets += o;
			reply_dot_write(eb, &s->ds, out, o);
			o = 0;
			r = drain(s, eb);
			if (r == 0 && s->ds.failed) {
				set_err(s, "out of memory writing the message text");
				r = -1;
			}
		}
	}
	return r;
}

int
smtpclient_data_end(struct smtpclient *s)
{
	struct evbuffer *eb = s->dotbuf;
	int r;

	if (!s->in_data) {
		set_err(s, "end of message outside DATA");
		return -1;
	}
	s->in_data = false;
	if (s->trace_body)
		trace_body(s, "\n", s->ds.bol ? 0 : 1);
	else
		clientconn_note(&s->conn, "message text: %llu octets, %llu lines",
		    (unsigned long long)s->data_octets, (unsigned long long)s->data_lines);
	if (!s->ds.bol)
		clientconn_note(&s->conn, "CRLF added: the message did not end with a line end");
	if (reply_dot_end(eb, &s->ds) == 0) {
		/* Never the end mark after a hole: the server must not take it. */
		set_err(s, "out of memory writing the message text");
		return -1;
	}
	r = drain(s, eb);
	if (r == -1)
		return -1;
	if (s->conn.trace != NULL) {
		fprintf(s->conn.trace, "C: .\n");
		fflush(s->conn.trace);
	}
	if (flush(s) == -1 || read_reply(s) == -1)
		return -1;
	return s->reply.code / 100 == 2 ? 0 : 1;
}

int
smtpclient_rset(struct smtpclient *s)
{
	int r;

	if ((r = command(s, false, "RSET")) != 0)
		return r;
	return positive(s);
}

void
smtpclient_quit(struct smtpclient *s)
{
	if (command(s, false, "QUIT") == -1)
		clientconn_note(&s->conn, "no reply to QUIT: %s", s->err);
}

void
smtpclient_close(struct smtpclient *s)
{
	if (s->dotbuf != NULL) {
		evbuffer_free(s->dotbuf);
		s->dotbuf = NULL;
	}
	clientconn_close(&s->conn);
}
