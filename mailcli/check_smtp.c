/*
 * check_smtp.c - the SMTP server battery, part 1: the greeting, HELO/EHLO,
 * command order (RFC 5321 4.1.4: 503), syntax (501), unknown verbs (500),
 * RSET, NOOP, QUIT, VRFY, HELP, case-insensitive verbs, long command lines,
 * postmaster, 100 recipients and the open-relay test (a recipient in the
 * RFC 2606 ".invalid" domain, which can never be delivered). Also the helpers
 * both SMTP files use. DATA and the extensions are in check_smtp_data.c.
 * Every check opens its own connection, so one that hangs the server only
 * costs that check.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "check.h"

#define HELO_NAME	"mailcli-check.invalid"
#define RELAY_RCPT	"mailcli-check@relay-test.invalid"

/* ---- helpers ---- */

/* Is code one of the space-separated patterns ("503 554", "5xx")? */
static bool
code_in(int code, const char *allowed)
{
	char c[4];
	const char *p;
	int i;

	snprintf(c, sizeof(c), "%03d", code);
	for (p = allowed; *p != '\0'; p += p[3] == ' ' ? 4 : 3) {
		for (i = 0; i < 3; i++)
			if (p[i] != 'x' && p[i] != c[i])
				break;
		if (i == 3)
			return true;
		if (p[3] == '\0')
			break;
	}
	return false;
}

/* Send a command and fail unless the reply's code is allowed. Returns the
 * code when allowed, else -1. */
static int
expect(struct check_run *r, struct clientconn *c, const char *allowed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
expect(struct check_run *r, struct clientconn *c, const char *allowed, const char *fmt, ...)
{
	struct wire_reply rep;
	char cmd[1200];
	va_list ap;
	int code;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	code = wire_smtp(r, c, &rep, "%s", cmd);
	if (code == -1) {
		check_fail(r, "expected %s to '%.60s', but %s", allowed, cmd, rep.err);
		return -1;
	}
	if (!code_in(code, allowed)) {
		check_fail(r, "expected %s to '%.60s', got: %s", allowed, cmd, rep.text);
		return -1;
	}
	return code;
}

static void
parse_caps(struct check_state *st, const char *all)
{
	const char *p = strchr(all, '\n');
	char kw[64];
	size_t n;

	st->esmtp = true;
	st->auth = st->auth_plain = st->auth_login = false;
	while (p != NULL) {
		p++;
		if (strlen(p) < 4)
			break;
		p += 4;
		n = strcspn(p, " \n");
		snprintf(kw, sizeof(kw), "%.*s", (int)(n < 63 ? n : 63), p);
		if (strcasecmp(kw, "STARTTLS") == 0)
			st->starttls = true;
		else if (strcasecmp(kw, "PIPELINING") == 0)
			st->pipelining = true;
		else if (strcasecmp(kw, "8BITMIME") == 0)
			st->eightbitmime = true;
		else if (strcasecmp(kw, "SIZE") == 0) {
			st->size = true;
			st->size_max = strtoull(p + n, NULL, 10);
		} else if (strcasecmp(kw, "AUTH") == 0) {
			const char *e = strchr(p, '\n');
			char mechs[256];

			snprintf(mechs, sizeof(mechs), " %.*s ", (int)(e ? e - p : (long)strlen(p)) > 250 ?
			    250 : (int)(e ? e - p : (long)strlen(p)), p);
			st->auth = true;
			st->auth_plain = strcasestr(mechs, " PLAIN ") != NULL;
			st->auth_login = strcasestr(mechs, " LOGIN ") != NULL;
		}
		p = strchr(p, '\n');
	}
}

int
smtp_start(struct check_run *r, struct clientconn *c, bool ehlo)
{
	struct wire_reply rep;

	if (wire_open_target(r, c) == -1) {
		check_fail(r, "cannot connect: %s", c->err);
		return -1;
	}
	if (wire_smtp_reply(r, c, &rep) != 220) {
		check_fail(r, "expected a 220 greeting, got: %s", rep.code ? rep.text : rep.err);
		return -1;
	}
	if (expect(r, c, "250", "%s " HELO_NAME, ehlo ? "EHLO" : "HELO") == -1)
		return -1;
	return 0;
}

/* The recipient for checks that need one whatever --to says. */
static const char *
some_rcpt(const struct check_run *r)
{
	return r->o->to[0] ? r->o->to : "postmaster";
}

static const char *
some_sender(const struct check_run *r)
{
	return r->o->from[0] ? r->o->from : "mailcli-check@" HELO_NAME;
}

static bool
need_addrs(struct check_run *r)
{
	if (r->o->from[0] && r->o->to[0])
		return true;
	check_skip(r, "needs --from and --to (the check delivers a test message)");
	return false;
}

int
smtp_to_data(struct check_run *r, struct clientconn *c, const char *extra)
{
	if (expect(r, c, "250", "MAIL FROM:<%s>%s%s", r->o->from, extra[0] ? " " : "", extra) == -1 ||
	    expect(r, c, "250 251", "RCPT TO:<%s>", r->o->to) == -1 ||
	    expect(r, c, "354", "DATA") == -1)
		return -1;
	return 0;
}

void
smtp_test_headers(const struct check_run *r, struct buf *b, const char *what)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	(void)buf_printf(b, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Subject: [mailcli check %s] %s\r\nMessage-ID: <%s.%s@" HELO_NAME ">\r\n"
	    "X-Mailcli-Check: %s %s\r\n\r\n", r->o->from, r->o->to, date, r->o->runid, what,
	    r->o->runid, what, r->o->runid, what);
}

int
smtp_end_in_step(struct check_run *r, struct clientconn *c, struct wire_reply *rep)
{
	struct wire_reply n;
	int code = wire_smtp_reply(r, c, rep);

	if (code == -1) {
		check_fail(r, "no reply after the end of the message: %s", rep->err);
		return -1;
	}
	if (!wire_quiet(r, c, CHECK_QUIET_MS)) {
		check_fail(r, "more replies came than commands were sent: the server took part of "
		    "the message text as commands (it ended the message too early)");
		return -1;
	}
	if (wire_smtp(r, c, &n, "NOOP") != 250) {
		check_fail(r, "after the message, NOOP should get 250, got: %s",
		    n.code ? n.text : n.err);
		return -1;
	}
	return code;
}

/* ---- the checks ---- */

/* A check that runs one scripted session: each step a command and the codes
 * allowed. */
struct step {
	const char *cmd;	/* "%F" = --from or a default, "%T" = a recipient */
	const char *allowed;
};

static void
run_steps(struct check_run *r, bool ehlo, bool helo, const struct step *steps)
{
	struct clientconn c;
	char cmd[600];
	const char *p;
	size_t i, o;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if (ehlo || helo) {
		if (smtp_start(r, &c, ehlo) == -1)
			goto out;
	} else {
		struct wire_reply rep;

		if (wire_open_target(r, &c) == -1) {
			check_fail(r, "cannot connect: %s", c.err);
			goto out;
		}
		if (wire_smtp_reply(r, &c, &rep) != 220) {
			check_fail(r, "expected a 220 greeting, got: %s", rep.code ? rep.text : rep.err);
			goto out;
		}
	}
	for (i = 0; steps[i].cmd != NULL; i++) {
		for (p = steps[i].cmd, o = 0; *p != '\0' && o + 300 < sizeof(cmd); p++) {
			if (p[0] == '%' && (p[1] == 'F' || p[1] == 'T')) {
				o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, "%s",
				    p[1] == 'F' ? some_sender(r) : some_rcpt(r));
				p++;
			} else
				cmd[o++] = *p;
		}
		cmd[o] = '\0';
		if (expect(r, &c, steps[i].allowed, "%s", cmd) == -1)
			goto out;
	}
	check_pass(r);
out:
	wire_close(&c);
}

#define STEPS(name, ehlo, helo, ...)					\
static void								\
name(struct check_run *r)						\
{									\
	static const struct step s[] = { __VA_ARGS__, { NULL, NULL } }; \
	run_steps(r, ehlo, helo, s);					\
}

STEPS(c_helo, false, true, { "NOOP", "250" })
STEPS(c_helo_noarg, false, false, { "HELO", "501" }, { "HELO " HELO_NAME, "250" })
STEPS(c_ehlo_noarg, false, false, { "EHLO", "501" }, { "EHLO " HELO_NAME, "250" })
STEPS(c_ehlo_reset, true, false, { "MAIL FROM:<%F>", "250" }, { "EHLO " HELO_NAME, "250" },
    { "RCPT TO:<%T>", "503" })
STEPS(c_case, false, false, { "ehlo " HELO_NAME, "250" }, { "mail from:<%F>", "250" },
    { "rcpt to:<%T>", "250 251" }, { "rSeT", "250" }, { "NoOp", "250" })
STEPS(c_unknown, true, false, { "FROB", "500" }, { "XYZZY plugh", "500" }, { "NOOP", "250" })
STEPS(c_noop, true, false, { "NOOP", "250" })
STEPS(c_noop_arg, true, false, { "NOOP ignore this text", "250" })
STEPS(c_rset, true, false, { "MAIL FROM:<%F>", "250" }, { "RSET", "250" },
    { "RCPT TO:<%T>", "503" })
STEPS(c_rset_keeps, true, false, { "RSET", "250" }, { "MAIL FROM:<%F>", "250" },
    { "RSET", "250" })
STEPS(c_mail_before_helo, false, false, { "MAIL FROM:<%F>", "503" }, { "NOOP", "250" })
STEPS(c_rcpt_before_mail, true, false, { "RCPT TO:<%T>", "503" }, { "NOOP", "250" })
STEPS(c_data_before_mail, true, false, { "DATA", "503 554" }, { "NOOP", "250" })
STEPS(c_data_before_rcpt, true, false, { "MAIL FROM:<%F>", "250" }, { "DATA", "503 554" },
    { "RSET", "250" })
STEPS(c_mail_nested, true, false, { "MAIL FROM:<%F>", "250" }, { "MAIL FROM:<%F>", "503" },
    { "RSET", "250" })
STEPS(c_mail_noarg, true, false, { "MAIL", "501" }, { "MAIL FROM:", "501" },
    { "MAIL FROM:<%F>", "250" })
STEPS(c_mail_null, true, false, { "MAIL FROM:<>", "250" }, { "RSET", "250" })
STEPS(c_mail_param, true, false, { "MAIL FROM:<%F> XFROBNICATE=yes", "555 501 504" },
    { "NOOP", "250" })
STEPS(c_rcpt_noarg, true, false, { "MAIL FROM:<%F>", "250" }, { "RCPT TO:", "501" },
    { "RCPT", "501" }, { "RSET", "250" })
STEPS(c_rcpt_postmaster, true, false, { "MAIL FROM:<%F>", "250" },
    { "RCPT TO:<Postmaster>", "250 251" }, { "RSET", "250" })
STEPS(c_vrfy_noarg, true, false, { "VRFY", "501 502" }, { "NOOP", "250" })
STEPS(c_help, true, false, { "HELP", "211 214 502" }, { "NOOP", "250" })

static void
c_greeting(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	if (wire_open_target(r, &c) == -1) {
		check_fail(r, "cannot connect: %s", c.err);
		return;
	}
	if (wire_smtp_reply(r, &c, &rep) == 220)
		check_pass(r);
	else
		check_fail(r, "expected a 220 greeting, got: %s", rep.code ? rep.text : rep.err);
	wire_close(&c);
}

static void
c_greeting_domain(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	const char *d;
	size_t n;

	if (wire_open_target(r, &c) == -1) {
		check_fail(r, "cannot connect: %s", c.err);
		return;
	}
	if (wire_smtp_reply(r, &c, &rep) != 220) {
		check_fail(r, "expected a 220 greeting, got: %s", rep.code ? rep.text : rep.err);
	} else {
		d = rep.text + 4;
		n = strcspn(d, " ");
		if (rep.text[3] == '\0' || n == 0 || (d[0] != '[' && (strspn(d, "abcdefghijklmnopqrstu"
		    "vwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n || d[0] == '.' || d[0] == '-')))
			check_fail(r, "the greeting should start with the server's domain name "
			    "(\"220 mail.example.org ...\"), got: %s", rep.text);
		else if (!rep.crlf)
			check_fail(r, "the greeting's lines must end in CRLF, not a bare LF");
		else if (d[0] != '[' && memchr(d, '.', n) == NULL)
			check_warn(r, "\"%.*s\" is not a fully-qualified domain name (RFC 5321 2.3.5): "
			    "clients and logs cannot tell which server this is", (int)n, d);
		else
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_ehlo(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	if (wire_open_target(r, &c) == -1) {
		check_fail(r, "cannot connect: %s", c.err);
		return;
	}
	if (wire_smtp_reply(r, &c, &rep) != 220)
		check_fail(r, "expected a 220 greeting, got: %s", rep.code ? rep.text : rep.err);
	else if (wire_smtp(r, &c, &rep, "EHLO " HELO_NAME) != 250)
		check_fail(r, "expected 250 to EHLO (every line \"250-\", the last \"250 \"), got: %s",
		    rep.code ? rep.text : rep.err);
	else if (!rep.crlf)
		check_fail(r, "every reply line must end in CRLF");
	else if (!wire_quiet(r, &c, CHECK_QUIET_MS))
		check_fail(r, "more lines came after the last line of the EHLO reply (\"250 \")");
	else
		check_pass(r);
	wire_close(&c);
}

static void
c_quit(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if (smtp_start(r, &c, true) == 0) {
		if (wire_smtp(r, &c, &rep, "QUIT") != 221)
			check_fail(r, "expected 221 to QUIT, got: %s", rep.code ? rep.text : rep.err);
		else if (!wire_closed(r, &c))
			check_fail(r, "the server should close the connection after 221");
		else
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_garbage(struct check_run *r)
{
	static const char junk[] = "\x01\x02\xff\xfe\x7f garbage \x80\x81\r\n";
	struct clientconn c;
	struct wire_reply rep;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if (smtp_start(r, &c, true) == 0 && wire_send(r, &c, junk, sizeof(junk) - 1) == 0) {
		int code = wire_smtp_reply(r, &c, &rep);

		if (code == -1)
			check_fail(r, "no reply to a line of binary garbage: %s", rep.err);
		else if (code / 100 != 5)
			check_fail(r, "expected a 5xx reply to a line of binary garbage, got: %s", rep.text);
		else if (expect(r, &c, "250", "NOOP") != -1)
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_cmd_long(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	char line[2100];
	int code;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', 2000);
	memcpy(line + 2005, "\r\n", 2);
	if (smtp_start(r, &c, true) == 0 && wire_send(r, &c, line, 2007) == 0) {
		code = wire_smtp_reply(r, &c, &rep);
		if (code == -1)
			check_fail(r, "no reply to a 2005-octet command line: %s", rep.err);
		else if (code != 500 && code != 250 && code != 501)
			check_fail(r, "a command line longer than 512 octets should get 500 "
			    "(\"line too long\"), got: %s", rep.text);
		else if (!wire_quiet(r, &c, CHECK_QUIET_MS))
			check_fail(r, "one long line got more than one reply: the server cut it into "
			    "several commands");
		else if (expect(r, &c, "250", "NOOP") != -1)
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_rcpt_relay(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int code;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if (smtp_start(r, &c, true) == -1)
		goto out;
	if (wire_smtp(r, &c, &rep, "MAIL FROM:<%s>", some_sender(r)) != 250) {
		check_skip(r, "MAIL FROM was refused (%s): cannot test relaying",
		    rep.code ? rep.text : rep.err);
		goto out;
	}
	code = wire_smtp(r, &c, &rep, "RCPT TO:<" RELAY_RCPT ">");
	if (code == -1)
		check_fail(r, "no reply to RCPT: %s", rep.err);
	else if (code / 100 == 2 && r->o->relay_ok)
		check_warn(r, "the server relays for an unauthenticated client (--relay-ok says "
		    "this is intended)");
	else if (code / 100 == 2)
		check_fail(r, "an unauthenticated client could send mail to a foreign domain: "
		    "this is an open relay (expected 550 or 554 to RCPT)");
	else
		check_pass(r);
	(void)wire_smtp(r, &c, &rep, "RSET");
out:
	wire_close(&c);
}

static void
c_rcpt_many(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	FILE *t;
	int i, ok = 0, code;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if (!need_addrs(r) || smtp_start(r, &c, true) == -1 ||
	    expect(r, &c, "250", "MAIL FROM:<%s>", r->o->from) == -1)
		goto out;
	for (i = 0; i < 100; i++) {
		t = r->trace;
		if (i >= 2)		/* two in the trace are enough */
			r->trace = c.trace = NULL;
		code = wire_smtp(r, &c, &rep, "RCPT TO:<%s>", r->o->to);
		r->trace = c.trace = t;
		if (code == 250 || code == 251)
			ok++;
		else {
			check_fail(r, "recipient %d of 100 was refused: %s (a server must accept "
			    "at least 100 recipients)", i + 1, rep.code ? rep.text : rep.err);
			goto out;
		}
	}
	(void)expect(r, &c, "250", "RSET");
	if (ok == 100)
		check_pass(r);
out:
	wire_close(&c);
}

static void
c_vrfy(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int code;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if (smtp_start(r, &c, true) == 0) {
		code = wire_smtp(r, &c, &rep, "VRFY %s", some_rcpt(r));
		if (code == -1)
			check_fail(r, "no reply to VRFY: %s", rep.err);
		else if (code == 252 || code == 502)
			check_pass(r);
		else if (code_in(code, "250 251 550 551 553"))
			check_warn(r, "VRFY tells whether an address exists (%s): address harvesters "
			    "use that; 252 is the usual answer", rep.text);
		else
			check_fail(r, "VRFY should get 250, 251, 252 or 502 (or 550/551/553), got: %s",
			    rep.text);
	}
	wire_close(&c);
}

const struct check_def check_smtp_table[] = {
	{ "smtp.greeting.code", "the server greets with 220", "RFC 5321 3.1", c_greeting },
	{ "smtp.greeting.domain", "the greeting starts with the server's domain", "RFC 5321 4.2",
	    c_greeting_domain },
	{ "smtp.ehlo.reply", "EHLO gets a well-formed multi-line 250", "RFC 5321 4.1.1.1, 4.2.1",
	    c_ehlo },
	{ "smtp.ehlo.no-domain", "EHLO without a domain gets 501", "RFC 5321 4.1.1.1",
	    c_ehlo_noarg },
	{ "smtp.ehlo.reset", "EHLO in a transaction resets it", "RFC 5321 4.1.4", c_ehlo_reset },
	{ "smtp.helo.reply", "HELO gets 250", "RFC 5321 4.1.1.1", c_helo },
	{ "smtp.helo.no-domain", "HELO without a domain gets 501", "RFC 5321 4.1.1.1",
	    c_helo_noarg },
	{ "smtp.verb.case", "verbs are case-insensitive", "RFC 5321 2.4", c_case },
	{ "smtp.verb.unknown", "an unknown verb gets 500 and the session goes on",
	    "RFC 5321 4.2.4", c_unknown },
	{ "smtp.verb.garbage", "a line of binary garbage gets 5xx, the session goes on",
	    "RFC 5321 4.2.4", c_garbage },
	{ "smtp.cmd.too-long", "a command line over 512 octets gets one reply (500)",
	    "RFC 5321 4.5.3.1.4", c_cmd_long },
	{ "smtp.noop.reply", "NOOP gets 250", "RFC 5321 4.1.1.9", c_noop },
	{ "smtp.noop.argument", "NOOP with an argument gets 250", "RFC 5321 4.1.1.9", c_noop_arg },
	{ "smtp.rset.clears", "RSET clears the transaction", "RFC 5321 4.1.1.5", c_rset },
	{ "smtp.rset.keeps-ehlo", "after RSET, MAIL needs no new EHLO", "RFC 5321 4.1.1.5",
	    c_rset_keeps },
	{ "smtp.quit.closes", "QUIT gets 221 and the connection is closed", "RFC 5321 4.1.1.10",
	    c_quit },
	{ "smtp.mail.before-helo", "MAIL before HELO/EHLO gets 503", "RFC 5321 4.1.4",
	    c_mail_before_helo },
	{ "smtp.mail.nested", "a second MAIL in a transaction gets 503", "RFC 5321 4.1.4",
	    c_mail_nested },
	{ "smtp.mail.syntax", "MAIL without a path gets 501", "RFC 5321 4.1.1.2, 4.3.2",
	    c_mail_noarg },
	{ "smtp.mail.null-sender", "MAIL FROM:<> (bounces) is accepted", "RFC 5321 4.5.5",
	    c_mail_null },
	{ "smtp.mail.unknown-param", "an unknown MAIL parameter gets 555", "RFC 5321 4.1.1.11",
	    c_mail_param },
	{ "smtp.rcpt.before-mail", "RCPT before MAIL gets 503", "RFC 5321 4.1.4",
	    c_rcpt_before_mail },
	{ "smtp.rcpt.syntax", "RCPT without a path gets 501", "RFC 5321 4.1.1.3", c_rcpt_noarg },
	{ "smtp.rcpt.postmaster", "RCPT TO:<Postmaster> is accepted", "RFC 5321 4.5.1",
	    c_rcpt_postmaster },
	{ "smtp.rcpt.hundred", "100 recipients in one transaction are accepted",
	    "RFC 5321 4.5.3.1.8", c_rcpt_many },
	{ "smtp.rcpt.open-relay", "mail to a foreign domain from an unauthenticated client is "
	    "refused", "RFC 5321 3.6.2, 7.1", c_rcpt_relay },
	{ "smtp.data.before-mail", "DATA before MAIL gets 503", "RFC 5321 4.1.4",
	    c_data_before_mail },
	{ "smtp.data.before-rcpt", "DATA without a recipient gets 503 or 554", "RFC 5321 4.1.1.4",
	    c_data_before_rcpt },
	{ "smtp.vrfy.reply", "VRFY gets 252 (or 250/251/502/55x)", "RFC 5321 3.5.3, 7.3", c_vrfy },
	{ "smtp.vrfy.no-arg", "VRFY without an argument gets 501", "RFC 5321 4.1.1.6",
	    c_vrfy_noarg },
	{ "smtp.help.reply", "HELP gets 211/214 (or 502)", "RFC 5321 4.1.1.8", c_help },
	{ NULL, NULL, NULL, NULL }
};

/* Called once before the checks: what EHLO offers, before and after STARTTLS. */
int
smtp_learn(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	bool auth_before;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	if (wire_open_target(r, &c) == -1) {
		check_fail(r, "cannot connect: %s", c.err);
		return -1;
	}
	r->st->connected = true;
	if (wire_smtp_reply(r, &c, &rep) == 220 && wire_smtp(r, &c, &rep, "EHLO " HELO_NAME) == 250) {
		parse_caps(r->st, rep.all);
		auth_before = r->st->auth;
		if (r->st->starttls && r->o->tls != NULL && !r->o->implicit &&
		    wire_smtp(r, &c, &rep, "STARTTLS") == 220 && wire_starttls(r, &c) == 0 &&
		    wire_smtp(r, &c, &rep, "EHLO " HELO_NAME) == 250) {
			bool stls = r->st->starttls;

			parse_caps(r->st, rep.all);
			r->st->starttls = stls;
		}
		r->st->auth_before_tls = auth_before;
		(void)wire_smtp(r, &c, &rep, "QUIT");
	}
	wire_close(&c);
	return 0;
}
