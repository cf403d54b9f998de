/*
 * check_wire.c - how the server checks talk: exact bytes out (traced as C:
 * lines with every CR and LF visible), lines in with the ending they had
 * (CRLF or a bare LF, which common/clientconn.c does not report), SMTP
 * replies (RFC 5321 4.2) and POP3 status lines and raw multi-line responses
 * (RFC 1939 3), each wait bounded by the running check's deadline.
 * Connecting and TLS go through common/clientconn.c. Never waits unbounded.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "check.h"
#include "replyparse.h"

#define WIRE_LINE_MAX	(1024 * 1024)

int
wire_open(struct check_run *r, struct clientconn *c, const char *host, const char *port)
{
	int secs = (check_left_ms(r) + 999) / 1000;

	if (clientconn_open(c, host, port, secs, WIRE_LINE_MAX, r->trace) == -1)
		return -1;
	return 0;
}

int
wire_open_target(struct check_run *r, struct clientconn *c)
{
	if (wire_open(r, c, r->o->cc.host, r->o->cc.port) == -1)
		return -1;
	if (r->o->implicit && clientconn_starttls(c, r->o->tls) == -1)
		return -1;
	return 0;
}

void
wire_close(struct clientconn *c)
{
	if (c->fd != -1 || c->ssl != NULL)
		clientconn_close(c);
}

int
wire_starttls(struct check_run *r, struct clientconn *c)
{
	(void)r;
	if (r->o->tls == NULL) {
		snprintf(c->err, sizeof(c->err), "TLS is off (--tls off)");
		return -1;
	}
	return clientconn_starttls(c, r->o->tls);
}

/* Trace bytes as C: lines, each ending shown (\r\n is the normal one). */
static void
trace_sent(struct check_run *r, const char *p, size_t n)
{
	size_t i, start = 0, shown = 0;

	if (r->trace == NULL)
		return;
	for (i = 0; i < n && shown < 30; i++) {
		if (p[i] != '\n' && i + 1 < n)
			continue;
		size_t end = i + 1;	/* the line with its ending, escaped when unusual */
		size_t len = end - start;

		if (len >= 2 && p[end - 2] == '\r' && p[end - 1] == '\n')
			clientconn_trace_line(r->trace, "C: ", p + start, len - 2);
		else
			clientconn_trace_line(r->trace, "C: ", p + start, len);
		start = end;
		shown++;
	}
	if (start < n)
		fprintf(r->trace, "   [... %zu more octets]\n", n - start);
}

int
wire_send(struct check_run *r, struct clientconn *c, const void *p, size_t n)
{
	trace_sent(r, p, n);
	c->timeout_ms = check_left_ms(r);
	if (clientconn_write(c, p, n) == -1 || clientconn_flush(c) == -1)
		return -1;
	return 0;
}

int
wire_cmd(struct check_run *r, struct clientconn *c, bool secret, const char *fmt, ...)
{
	va_list ap;
	int rc;

	c->timeout_ms = check_left_ms(r);
	va_start(ap, fmt);
	rc = clientconn_vcmd(c, secret, fmt, ap);
	va_end(ap);
	if (rc == -1 || clientconn_flush(c) == -1)
		return -1;
	return 0;
}

/* Read what is there, waiting at most until the deadline. */
static int
fill(struct check_run *r, struct clientconn *c, int wait_ms)
{
	char tmp[16384];
	struct pollfd pfd;
	size_t room = linebuf_space(&c->in);
	ssize_t n;
	int pr;

	if (room > sizeof(tmp))
		room = sizeof(tmp);
	if (c->ssl == NULL || SSL_pending(c->ssl) == 0) {
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		do
			pr = poll(&pfd, 1, wait_ms);
		while (pr == -1 && errno == EINTR);
		if (pr == 0) {
			snprintf(c->err, sizeof(c->err), "no answer within %d s (the check's time limit)",
			    r->o->timeout);
			return -2;
		}
		if (pr == -1) {
			snprintf(c->err, sizeof(c->err), "poll: %s", strerror(errno));
			return -1;
		}
	}
	if (c->ssl != NULL) {
		ERR_clear_error();
		n = SSL_read(c->ssl, tmp, (int)room);
		if (n <= 0) {
			snprintf(c->err, sizeof(c->err), "the server closed the connection (TLS)");
			return -1;
		}
	} else {
		do
			n = recv(c->fd, tmp, room, 0);
		while (n == -1 && errno == EINTR);
		if (n <= 0) {
			snprintf(c->err, sizeof(c->err), "%s", n == 0 ?
			    "the server closed the connection" : strerror(errno));
			return -1;
		}
	}
	linebuf_feed(&c->in, tmp, (size_t)n);
	return 0;
}

int
wire_line(struct check_run *r, struct clientconn *c, char **line_r, size_t *len_r,
    enum line_eol *eol_r)
{
	enum line_status st;

	for (;;) {
		st = linebuf_next(&c->in, line_r, len_r, eol_r);
		if (st == LINE_OK) {
			if (r->trace != NULL) {
				if (*eol_r == EOL_LF) {
					fprintf(r->trace, "S: ");
					clientconn_trace_line(r->trace, "", *line_r, *len_r);
					fprintf(r->trace, "   [that line ended in a bare LF]\n");
				} else {
					clientconn_trace_line(r->trace, "S: ", *line_r, *len_r);
				}
			}
			return 0;
		}
		if (st == LINE_TOO_LONG) {
			snprintf(c->err, sizeof(c->err), "the server sent a line longer than %d octets",
			    WIRE_LINE_MAX);
			return -1;
		}
		if (fill(r, c, check_left_ms(r)) != 0)
			return -1;
	}
}

bool
wire_quiet(struct check_run *r, struct clientconn *c, int ms)
{
	char *line;
	size_t len;
	enum line_eol eol;
	int left = check_left_ms(r), f;

	if (linebuf_pending(&c->in) > 0)
		goto something;
	f = fill(r, c, ms < left ? ms : left);
	if (f == -2)
		return true;
	if (f == -1) {
		if (r->trace != NULL)
			fprintf(r->trace, "   [%s]\n", c->err);
		return false;
	}
something:
	/* Show what came (a line or two) in the trace. */
	if (linebuf_next(&c->in, &line, &len, &eol) == LINE_OK && r->trace != NULL)
		clientconn_trace_line(r->trace, "S: ", line, len);
	return false;
}

bool
wire_closed(struct check_run *r, struct clientconn *c)
{
	char *line;
	size_t len;
	enum line_eol eol;

	for (;;) {
		if (linebuf_next(&c->in, &line, &len, &eol) == LINE_OK) {
			if (r->trace != NULL)
				clientconn_trace_line(r->trace, "S: ", line, len);
			continue;
		}
		switch (fill(r, c, check_left_ms(r))) {
		case -1:
			if (r->trace != NULL)
				fprintf(r->trace, "   [connection closed]\n");
			return true;
		case -2:
			return false;
		default:
			break;
		}
	}
}

static void
rep_reset(struct wire_reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->crlf = true;
}

/* Append a line to rep->all (cut when full). */
static void
rep_add(struct wire_reply *rep, const char *line, size_t len)
{
	size_t have = strlen(rep->all);

	if (have > 0 && have + 1 < sizeof(rep->all))
		rep->all[have++] = '\n';
	if (len > sizeof(rep->all) - have - 1)
		len = sizeof(rep->all) - have - 1;
	memcpy(rep->all + have, line, len);
	rep->all[have + len] = '\0';
	rep->nlines++;
}

int
wire_smtp_reply(struct check_run *r, struct clientconn *c, struct wire_reply *rep)
{
	struct smtp_reply sr;
	char perr[256], *line;
	size_t len;
	enum line_eol eol;
	int st;

	rep_reset(rep);
	smtp_reply_init(&sr);
	for (;;) {
		if (wire_line(r, c, &line, &len, &eol) == -1) {
			snprintf(rep->err, sizeof(rep->err), "%s", c->err);
			smtp_reply_free(&sr);
			return -1;
		}
		if (eol != EOL_CRLF)
			rep->crlf = false;
		if (rep->nlines == 0)
			snprintf(rep->text, sizeof(rep->text), "%.*s", (int)(len > 1000 ? 1000 : len), line);
		rep_add(rep, line, len);
		st = smtp_reply_feed(&sr, line, len, perr, sizeof(perr));
		if (st == 1)
			break;
		if (st == -1) {
			snprintf(rep->err, sizeof(rep->err), "malformed reply: %s", perr);
			smtp_reply_free(&sr);
			return -1;
		}
	}
	rep->code = sr.code;
	smtp_reply_free(&sr);
	clientconn_defang(rep->text);
	clientconn_defang(rep->all);
	return rep->code;
}

int
wire_smtp(struct check_run *r, struct clientconn *c, struct wire_reply *rep,
    const char *fmt, ...)
{
	va_list ap;
	int rc;

	c->timeout_ms = check_left_ms(r);
	va_start(ap, fmt);
	rc = clientconn_vcmd(c, false, fmt, ap);
	va_end(ap);
	if (rc == -1 || clientconn_flush(c) == -1) {
		rep_reset(rep);
		snprintf(rep->err, sizeof(rep->err), "%s", c->err);
		return -1;
	}
	return wire_smtp_reply(r, c, rep);
}

int
wire_pop3_status(struct check_run *r, struct clientconn *c, struct wire_reply *rep)
{
	const char *text;
	char code[64], *line;
	size_t len;
	enum line_eol eol;
	int st;

	rep_reset(rep);
	if (wire_line(r, c, &line, &len, &eol) == -1) {
		snprintf(rep->err, sizeof(rep->err), "%s", c->err);
		return -1;
	}
	rep->crlf = eol == EOL_CRLF;
	snprintf(rep->text, sizeof(rep->text), "%.*s", (int)(len > 1000 ? 1000 : len), line);
	rep_add(rep, line, len);
	clientconn_defang(rep->text);
	clientconn_defang(rep->all);
	st = pop3_status_parse(line, &text, code, sizeof(code));
	if (st == -1)
		snprintf(rep->err, sizeof(rep->err), "not a POP3 status line (+OK or -ERR)");
	rep->code = st;
	return st;
}

int
wire_pop3(struct check_run *r, struct clientconn *c, struct wire_reply *rep,
    bool secret, const char *fmt, ...)
{
	va_list ap;
	int rc;

	c->timeout_ms = check_left_ms(r);
	va_start(ap, fmt);
	rc = clientconn_vcmd(c, secret, fmt, ap);
	va_end(ap);
	if (rc == -1 || clientconn_flush(c) == -1) {
		rep_reset(rep);
		snprintf(rep->err, sizeof(rep->err), "%s", c->err);
		return -1;
	}
	return wire_pop3_status(r, c, rep);
}

int
wire_pop3_multi(struct check_run *r, struct clientconn *c, struct buf *raw)
{
	char *line;
	size_t len, n = 0;
	enum line_eol eol;
	FILE *t = r->trace;

	for (;;) {
		/* Bodies are summarised in the trace: the first lines only. */
		r->trace = n < 12 ? t : NULL;
		if (wire_line(r, c, &line, &len, &eol) == -1) {
			r->trace = t;
			return -1;
		}
		n++;
		if (len == 1 && line[0] == '.') {
			r->trace = t;
			if (n > 12 && t != NULL)
				fprintf(t, "   [... %zu lines]\nS: .\n", n - 12);
			return 0;
		}
		if (buf_append(raw, line, len) == -1 ||
		    buf_append(raw, eol == EOL_CRLF ? "\r\n" : "\n", eol == EOL_CRLF ? 2 : 1) == -1) {
			r->trace = t;
			snprintf(c->err, sizeof(c->err), "response too large");
			return -1;
		}
	}
}
