/*
 * check_client_smtp.c - check-client's SMTP side: a correct server for one
 * session (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, VRFY, HELP,
 * QUIT; PIPELINING offered only with --pipelining) and the grading of the
 * client: CRLF line ends (RFC 5321 2.3.8), waiting for the greeting and for
 * each reply (RFC 5321 4.3.1, RFC 2920 3.1), HELO/EHLO first and the
 * MAIL/RCPT/DATA order (4.1.4), angle brackets (4.1.2), no text before 354
 * (4.1.1.4), dot-stuffing (4.5.2), the final "." (4.1.1.4), line lengths
 * (4.5.3.1.6), QUIT (4.1.1.10), and the message itself (RFC 5322 3.6,
 * RFC 2045/2046 via mime_read.c; 8-bit text needs BODY=8BITMIME, RFC 6152).
 * The message is graded and thrown away.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "mime.h"

#define CC_MSG_MAX	(64 * 1024 * 1024)
#define CC_WAIT_MS	30	/* a pipelined command arrives within this after its predecessor */

struct smtp_tx {
	bool	 helo;
	bool	 mail;
	unsigned rcpts;
	bool	 body8;		/* BODY=8BITMIME declared */
	bool	 quit;
};

/* "FROM:<...>" / "TO:<...>": the keyword, a colon, the path in brackets. */
static bool
path_ok(const char *arg, const char *kw, bool *body8_r)
{
	size_t kl = strlen(kw);
	const char *p, *gt;

	if (strncasecmp(arg, kw, kl) != 0)
		return false;
	p = arg + kl;
	if (*p != '<')
		return false;
	gt = strchr(p, '>');
	if (gt == NULL)
		return false;
	if (body8_r != NULL)
		*body8_r = strcasestr(gt, "BODY=8BITMIME") != NULL;
	return gt[1] == '\0' || gt[1] == ' ';
}

/* Read the message after 354. Returns 0 at the final dot, -1 when the
 * connection ended first. */
static int
read_data(struct cc_session *s, struct smtp_tx *tx)
{
	struct buf msg;
	char *line;
	size_t len, lines = 0, dotlines = 0;
	enum line_eol eol, prev = EOL_CRLF;
	bool bad_eol = false, bad_dot = false, too_long = false, eight = false;
	FILE *t = s->t;
	int rc = -1;

	buf_init(&msg, CC_MSG_MAX);
	for (;;) {
		/* The text is summarised in the transcript: its first lines only. */
		if (lines == 8) {
			fprintf(t, "   [... message text ...]\n");
			s->t = fopen("/dev/null", "w");
			if (s->t == NULL)
				s->t = t;
		}
		if (cc_line(s, &line, &len, &eol) == -1)
			break;
		lines++;
		if (eol == EOL_LF && !bad_eol) {
			bad_eol = true;
			cc_result(s, "smtp-client.line.crlf", false, "line %zu of the message ended in "
			    "a bare LF; every line must end in CRLF", lines);
		}
		if (len == 1 && line[0] == '.') {
			if (s->t != t) {
				fclose(s->t);
				s->t = t;
				clientconn_trace_line(t, "C: ", line, len);
			}
			cc_result(s, "smtp-client.data.end-of-data", eol == EOL_CRLF && prev == EOL_CRLF,
			    "the message must end with CRLF \".\" CRLF; this \".\" line %s",
			    eol != EOL_CRLF ? "ended in a bare LF" : "followed a line ending in a bare LF");
			rc = 0;
			break;
		}
		prev = eol;
		if (len > 998 && !too_long) {
			too_long = true;
			cc_result(s, "smtp-client.data.line-length", false, "line %zu of the message "
			    "has %zu octets; at most 998 (1000 with CRLF) are allowed", lines, len);
		}
		if (line[0] == '.') {
			dotlines++;
			if (line[1] != '.' && !bad_dot) {
				bad_dot = true;
				cc_result(s, "smtp-client.data.dot-stuffing", false, "line %zu \"%.40s\" "
				    "starts with \".\" but was not stuffed (it must be sent as \".%.40s\")",
				    lines, line, line);
			}
			if (line[1] == '.') {
				line++;
				len--;
			}
		}
		for (size_t i = 0; i < len && !eight; i++)
			eight = (unsigned char)line[i] >= 0x80;
		(void)buf_append(&msg, line, len);
		(void)buf_append(&msg, "\r\n", 2);
	}
	if (s->t != t) {
		fclose(s->t);
		s->t = t;
	}
	if (rc == -1) {
		cc_result(s, "smtp-client.data.end-of-data", false, "the connection ended inside "
		    "the message: it never sent the final \".\" line");
		buf_free(&msg);
		return -1;
	}
	if (!bad_eol)
		cc_result(s, "smtp-client.line.crlf", true, "%s", "");
	if (!too_long)
		cc_result(s, "smtp-client.data.line-length", true, "%s", "");
	if (dotlines > 0 && !bad_dot)
		cc_result(s, "smtp-client.data.dot-stuffing", true, "%s", "");
	if (eight)
		cc_result(s, "smtp-client.message.8bitmime", tx->body8, "the message has 8-bit "
		    "octets, but MAIL FROM did not say BODY=8BITMIME");
	cc_grade_message(s, "smtp-client.message.form", msg.data ? msg.data : "", msg.len);
	fprintf(s->t, "   [message: %zu lines, %zu octets]\n", lines, msg.len);
	buf_free(&msg);
	return 0;
}

/* Was the command followed by another before our reply? */
static void
grade_wait(struct cc_session *s, const char *verb)
{
	static const char *const last_in_group[] = {
		"EHLO", "HELO", "DATA", "VRFY", "EXPN", "QUIT", "NOOP", "STARTTLS", "AUTH", NULL
	};
	bool more = cc_more_waiting(s, CC_WAIT_MS), last = false;
	size_t i;

	for (i = 0; last_in_group[i] != NULL; i++)
		if (strcasecmp(verb, last_in_group[i]) == 0)
			last = true;
	if (strcasecmp(verb, "DATA") == 0) {
		cc_result(s, "smtp-client.data.after-354", !more, "the client sent message text "
		    "after DATA without waiting for the 354 reply");
		return;
	}
	if (!more)
		cc_result(s, "smtp-client.pipelining.unasked", true, "%s", "");
	else if (!s->o->pipelining)
		cc_result(s, "smtp-client.pipelining.unasked", false, "the client sent the next "
		    "command after %s before reading the reply, and PIPELINING was not offered", verb);
	else if (last)
		cc_result(s, "smtp-client.pipelining.unasked", false, "with PIPELINING, %s must be "
		    "the last command of a group (RFC 2920 3.1), but more followed it", verb);
}

void
cc_smtp_session(struct cc_session *s)
{
	struct smtp_tx tx;
	char *line, verb[16], *arg;
	size_t len, vl;
	enum line_eol eol;
	bool bad_eol = false;

	memset(&tx, 0, sizeof(tx));
	cc_greeting_wait(s, "smtp-client.greeting.waited");
	if (cc_reply(s, "220 mailcli-check.invalid ESMTP mailcli check-client") == -1)
		return;
	while (cc_line(s, &line, &len, &eol) == 0) {
		if (eol == EOL_LF && !bad_eol) {
			bad_eol = true;
			cc_result(s, "smtp-client.line.crlf", false, "a command ended in a bare LF; "
			    "every line must end in CRLF");
		}
		vl = strcspn(line, " ");
		snprintf(verb, sizeof(verb), "%.*s", (int)(vl < 15 ? vl : 15), line);
		arg = line[vl] == ' ' ? line + vl + 1 : line + vl;
		grade_wait(s, verb);
		if (strcasecmp(verb, "EHLO") == 0 || strcasecmp(verb, "HELO") == 0) {
			if (*arg == '\0') {
				cc_reply(s, "501 5.5.4 %s needs your domain name", verb);
				cc_result(s, "smtp-client.helo.first", false, "%s was sent without a domain",
				    verb);
				continue;
			}
			tx.helo = true;
			tx.mail = false;
			tx.rcpts = 0;
			if (toupper((unsigned char)verb[0]) == 'H') {
				cc_reply(s, "250 mailcli-check.invalid Hello %.100s", arg);
				continue;
			}
			cc_reply(s, "250-mailcli-check.invalid Hello %.100s", arg);
			if (s->o->pipelining)
				cc_reply(s, "250-PIPELINING");
			cc_reply(s, "250-SIZE 10485760");
			cc_reply(s, "250-8BITMIME");
			cc_reply(s, "250 HELP");
		} else if (strcasecmp(verb, "MAIL") == 0) {
			cc_result(s, "smtp-client.helo.first", tx.helo, "MAIL came before HELO/EHLO");
			if (!path_ok(arg, "FROM:", &tx.body8)) {
				cc_result(s, "smtp-client.mail.brackets", false, "\"%.80s\" is not "
				    "MAIL FROM:<address> (no space, angle brackets)", line);
				cc_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
			} else if (!tx.helo || tx.mail) {
				cc_result(s, "smtp-client.order.transaction", false, "MAIL %s",
				    tx.mail ? "inside a transaction" : "before HELO/EHLO");
				cc_reply(s, "503 5.5.1 Bad sequence of commands");
			} else {
				cc_result(s, "smtp-client.mail.brackets", true, "%s", "");
				tx.mail = true;
				tx.rcpts = 0;
				cc_reply(s, "250 2.1.0 Sender ok");
			}
		} else if (strcasecmp(verb, "RCPT") == 0) {
			if (!path_ok(arg, "TO:", NULL)) {
				cc_result(s, "smtp-client.rcpt.brackets", false, "\"%.80s\" is not "
				    "RCPT TO:<address> (no space, angle brackets)", line);
				cc_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
			} else if (!tx.mail) {
				cc_result(s, "smtp-client.order.transaction", false, "RCPT before MAIL");
				cc_reply(s, "503 5.5.1 MAIL first");
			} else {
				cc_result(s, "smtp-client.rcpt.brackets", true, "%s", "");
				tx.rcpts++;
				cc_reply(s, "250 2.1.5 Recipient ok");
			}
		} else if (strcasecmp(verb, "DATA") == 0) {
			if (!tx.mail || tx.rcpts == 0) {
				cc_result(s, "smtp-client.order.transaction", false, "DATA before %s",
				    tx.mail ? "any RCPT was accepted" : "MAIL");
				cc_reply(s, "503 5.5.1 %s first", tx.mail ? "RCPT" : "MAIL");
				continue;
			}
			cc_result(s, "smtp-client.order.transaction", true, "%s", "");
			cc_reply(s, "354 End data with <CR><LF>.<CR><LF>");
			if (read_data(s, &tx) == -1)
				return;
			tx.mail = false;
			tx.rcpts = 0;
			cc_reply(s, "250 2.0.0 Ok: message graded and discarded");
		} else if (strcasecmp(verb, "RSET") == 0) {
			tx.mail = false;
			tx.rcpts = 0;
			cc_reply(s, "250 2.0.0 Ok");
		} else if (strcasecmp(verb, "NOOP") == 0) {
			cc_reply(s, "250 2.0.0 Ok");
		} else if (strcasecmp(verb, "VRFY") == 0) {
			cc_reply(s, "252 2.1.5 Cannot verify, but will accept");
		} else if (strcasecmp(verb, "HELP") == 0) {
			cc_reply(s, "214 2.0.0 EHLO MAIL RCPT DATA RSET NOOP VRFY QUIT");
		} else if (strcasecmp(verb, "QUIT") == 0) {
			tx.quit = true;
			cc_reply(s, "221 2.0.0 Bye");
			break;
		} else {
			cc_reply(s, "502 5.5.1 %.40s is not implemented here", verb);
		}
	}
	if (!bad_eol)
		cc_result(s, "smtp-client.line.crlf", true, "%s", "");
	cc_result(s, "smtp-client.quit.sent", tx.quit, "the session ended without QUIT");
}

/* ---- the message ---- */

/* The boundary parameter of a Content-Type value, or "". */
static void
boundary_of(const char *ct, char *dst, size_t len)
{
	const char *p = strcasestr(ct, "boundary=");
	size_t n;

	dst[0] = '\0';
	if (p == NULL)
		return;
	p += 9;
	if (*p == '"') {
		p++;
		n = strcspn(p, "\"");
	} else
		n = strcspn(p, " ;\t");
	if (n > 0 && n < len)
		snprintf(dst, len, "%.*s", (int)n, p);
}

void
cc_grade_message(struct cc_session *s, const char *id, const char *msg, size_t len)
{
	struct mime_part *root;
	const char *p = msg, *end = msg + len, *nl;
	char ct[512], b[256], delim[300];
	size_t n = 0;

	/* RFC 5322 2.2: header fields "Name: value", continuation lines start
	 * with white space, the header ends at the first empty line. */
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break;
		n++;
		if (p[0] == ' ' || p[0] == '\t') {
			if (n == 1) {
				cc_result(s, id, false, "the message starts with a continuation line");
				return;
			}
		} else {
			size_t k = 0;

			while (k < ll && p[k] != ':' && p[k] > 32 && p[k] < 127)
				k++;
			if (k == 0 || k == ll || p[k] != ':') {
				cc_result(s, id, false, "header line %zu \"%.60s\" is not \"Name: value\" "
				    "(RFC 5322 2.2)", n, p);
				return;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if ((root = mime_parse(msg, len)) == NULL)
		return;
	if (mime_header(root, "From", ct, sizeof(ct)) == -1 ||
	    mime_header(root, "Date", ct, sizeof(ct)) == -1)
		cc_result(s, id, false, "the message has no %s: header (RFC 5322 3.6 requires "
		    "From and Date)", mime_header(root, "From", ct, sizeof(ct)) == -1 ? "From" : "Date");
	else if (mime_header(root, "Content-Type", ct, sizeof(ct)) == 0 &&
	    mime_header(root, "MIME-Version", b, sizeof(b)) == -1)
		cc_result(s, id, false, "Content-Type without MIME-Version: 1.0 (RFC 2045 4)");
	else if (strncasecmp(root->type, "multipart/", 10) == 0) {
		boundary_of(ct, b, sizeof(b));
		snprintf(delim, sizeof(delim), "\n--%s--", b);
		if (b[0] == '\0')
			cc_result(s, id, false, "a multipart message without a boundary parameter "
			    "(RFC 2046 5.1.1)");
		else if (root->child == NULL)
			cc_result(s, id, false, "the multipart message has no part delimited by "
			    "\"--%s\" (RFC 2046 5.1.1)", b);
		else if (memmem(msg, len, delim, strlen(delim)) == NULL)
			cc_result(s, id, false, "the multipart message never closes with "
			    "\"--%s--\" (RFC 2046 5.1.1)", b);
		else
			cc_result(s, id, true, "%s", "");
	} else
		cc_result(s, id, true, "%s", "");
	mime_free(&root);
}

const struct check_def check_client_smtp_table[] = {
	{ "smtp-client.greeting.waited", "the client waits for the 220 greeting",
	    "RFC 5321 4.3.1", NULL },
	{ "smtp-client.line.crlf", "every line ends in CRLF", "RFC 5321 2.3.8", NULL },
	{ "smtp-client.helo.first", "EHLO or HELO (with a domain) comes first",
	    "RFC 5321 4.1.4", NULL },
	{ "smtp-client.mail.brackets", "MAIL FROM:<address> with angle brackets",
	    "RFC 5321 4.1.2", NULL },
	{ "smtp-client.rcpt.brackets", "RCPT TO:<address> with angle brackets",
	    "RFC 5321 4.1.2", NULL },
	{ "smtp-client.order.transaction", "MAIL, then RCPT, then DATA", "RFC 5321 4.1.4",
	    NULL },
	{ "smtp-client.pipelining.unasked", "no command before the previous reply unless "
	    "PIPELINING was offered", "RFC 2920 3.1", NULL },
	{ "smtp-client.data.after-354", "message text only after the 354 reply",
	    "RFC 5321 4.1.1.4", NULL },
	{ "smtp-client.data.dot-stuffing", "lines starting with \".\" are sent with one more "
	    "\".\"", "RFC 5321 4.5.2", NULL },
	{ "smtp-client.data.end-of-data", "the message ends with CRLF \".\" CRLF",
	    "RFC 5321 4.1.1.4", NULL },
	{ "smtp-client.data.line-length", "no line longer than 1000 octets with CRLF",
	    "RFC 5321 4.5.3.1.6", NULL },
	{ "smtp-client.message.form", "the message is well formed (header, From, Date, MIME)",
	    "RFC 5322 3.6, RFC 2046 5.1", NULL },
	{ "smtp-client.message.8bitmime", "8-bit text is declared with BODY=8BITMIME",
	    "RFC 6152 3", NULL },
	{ "smtp-client.quit.sent", "the session ends with QUIT", "RFC 5321 4.1.1.10", NULL },
	{ NULL, NULL, NULL, NULL }
};
