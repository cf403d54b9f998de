/*
 * check_smtp_data.c - the SMTP server battery, part 2: DATA (RFC 5321
 * 4.1.1.4: 354, the end-of-data rule, dot transparency 4.5.2, bare CR and
 * bare LF 2.3.8, line lengths 4.5.3.1.6), SIZE (RFC 1870), PIPELINING
 * (RFC 2920), 8BITMIME (RFC 6152), STARTTLS (RFC 3207) and AUTH (RFC 4954).
 * Messages it delivers carry "X-Mailcli-Check: RUNID" and go only to --to.
 * "In step" means: exactly one reply after the final dot, nothing more, and
 * NOOP still gets 250 - a server that ended the message early answers the
 * rest of the text as commands and is caught by that.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64.h"
#include "check.h"

#define HELO_NAME	"mailcli-check.invalid"

static bool
need_addrs(struct check_run *r)
{
	if (r->o->from[0] && r->o->to[0])
		return true;
	check_skip(r, "needs --from and --to (the check delivers a test message)");
	return false;
}

static void
conn_init(struct clientconn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/*
 * One message: headers, then body (sent as given, with its line endings), then
 * ".\r\n" unless body already ends the data. allowed: the final reply codes
 * that pass ("250", "250 5xx"). Returns the code, or -1 after a fail verdict.
 */
static int
send_message(struct check_run *r, const char *what, const char *extra, const char *body,
    size_t bodylen, const char *allowed_desc, bool (*ok)(int code))
{
	struct clientconn c;
	struct wire_reply rep;
	struct buf b;
	int code = -1;

	conn_init(&c);
	buf_init(&b, 256 * 1024 * 1024);
	if (!need_addrs(r) || smtp_start(r, &c, true) == -1 || smtp_to_data(r, &c, extra) == -1)
		goto out;
	smtp_test_headers(r, &b, what);
	if (buf_append(&b, body, bodylen) == -1 || buf_puts(&b, ".\r\n") == -1) {
		check_fail(r, "out of memory");
		goto out;
	}
	if (wire_send(r, &c, b.data, b.len) == -1) {
		check_fail(r, "sending the message failed: %s", c.err);
		goto out;
	}
	code = smtp_end_in_step(r, &c, &rep);
	if (code != -1 && !ok(code)) {
		check_fail(r, "expected %s after the message, got: %s", allowed_desc, rep.text);
		code = -1;
	}
out:
	buf_free(&b);
	wire_close(&c);
	return code;
}

static bool ok_250(int code) { return code == 250; }
static bool ok_250_5xx(int code) { return code == 250 || code / 100 == 5; }
static bool ok_5xx(int code) { return code / 100 == 5; }

static void
c_data_354(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	struct buf b;

	conn_init(&c);
	buf_init(&b, 1 << 16);
	if (need_addrs(r) && smtp_start(r, &c, true) == 0 && smtp_to_data(r, &c, "") == 0) {
		/* A message with no body at all: only the header (with our marker). */
		smtp_test_headers(r, &b, "no-body");
		(void)buf_puts(&b, ".\r\n");
		if (wire_send(r, &c, b.data, b.len) == 0 && wire_smtp_reply(r, &c, &rep) > 0)
			check_pass(r);
		else
			check_fail(r, "no reply after a message with no body: %s", rep.err);
	}
	buf_free(&b);
	wire_close(&c);
}

static void
c_deliver(struct check_run *r)
{
	static const char body[] = "This is a test message from mailcli check.\r\n";

	if (send_message(r, "deliver", "", body, sizeof(body) - 1, "250", ok_250) > 0)
		check_pass(r);
}

static void
c_end_of_data(struct check_run *r)
{
	static const char body[] = "These lines must not end the message:\r\n .\r\nx.\r\n"
	    ".\t\r\n. \r\nThe next line does.\r\n";

	/* ".\t" and ". " are unstuffed lines a careless client might send: the
	 * end is a line that is exactly "." */
	if (send_message(r, "end-of-data", "", body, sizeof(body) - 1, "250 or 5xx",
	    ok_250_5xx) > 0)
		check_pass(r);
}

static void
c_dot_stuffing(struct check_run *r)
{
	static const char body[] = "Lines that start with a dot, stuffed:\r\n..\r\n...\r\n"
	    "..hidden\r\n.. \r\nend\r\n";

	if (send_message(r, "dot-stuffing", "", body, sizeof(body) - 1, "250", ok_250) > 0)
		check_pass(r);
}

static void
c_bare_lf_end(struct check_run *r)
{
	static const char body[] = "Neither LF.LF nor LF.CRLF ends the message:\n.\nRSET\r\n"
	    "x\n.\r\nNOOP\r\nthe end\r\n";

	if (send_message(r, "bare-lf-end", "", body, sizeof(body) - 1, "250 or 5xx",
	    ok_250_5xx) > 0)
		check_pass(r);
}

static void
c_bare_lf(struct check_run *r)
{
	static const char body[] = "This line ends in a bare LF\nand this one in CRLF\r\n";
	int code = send_message(r, "bare-lf", "", body, sizeof(body) - 1, "250 or 5xx",
	    ok_250_5xx);

	if (code == 250)
		check_warn(r, "a message with a bare LF was accepted: RFC 5321 2.3.8 says a line "
		    "ends only in CRLF, and servers that take bare LFs help SMTP smuggling");
	else if (code > 0)
		check_pass(r);
}

static void
c_bare_cr(struct check_run *r)
{
	static const char body[] = "A bare CR\r.\rdoes not end anything\r\n";
	int code = send_message(r, "bare-cr", "", body, sizeof(body) - 1, "250 or 5xx",
	    ok_250_5xx);

	if (code == 250)
		check_warn(r, "a message with a bare CR was accepted (RFC 5321 2.3.8: CR only "
		    "before LF)");
	else if (code > 0)
		check_pass(r);
}

static void
c_line_1000(struct check_run *r)
{
	char body[1100];

	memset(body, 'a', 998);
	memcpy(body + 998, "\r\n", 2);
	if (send_message(r, "line-1000", "", body, 1000, "250", ok_250) > 0)
		check_pass(r);
}

static void
c_line_long(struct check_run *r)
{
	char *body = malloc(5002);

	if (body == NULL)
		return;
	memset(body, 'b', 5000);
	memcpy(body + 5000, "\r\n", 2);
	if (send_message(r, "line-long", "", body, 5002, "250 or 5xx", ok_250_5xx) > 0)
		check_pass(r);
	free(body);
}

/* ---- SIZE ---- */

static bool
need_size(struct check_run *r)
{
	if (r->st->size)
		return true;
	check_skip(r, "the server does not offer SIZE");
	return false;
}

static void
c_size_offered(struct check_run *r)
{
	if (!r->st->esmtp)
		check_skip(r, "the server does not answer EHLO");
	else if (!r->st->size)
		check_warn(r, "EHLO does not announce SIZE: clients learn the limit only after "
		    "sending the whole message");
	else
		check_pass(r);
}

static void
c_size_param(struct check_run *r)
{
	char extra[64];

	if (!need_size(r))
		return;
	snprintf(extra, sizeof(extra), "SIZE=%d", 300);
	if (send_message(r, "size-param", extra, "small\r\n", 7, "250", ok_250) > 0)
		check_pass(r);
}

static void
c_size_declared(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int code;

	conn_init(&c);
	if (!need_size(r))
		return;
	if (r->st->size_max == 0) {
		check_skip(r, "SIZE announces no limit");
		return;
	}
	if (smtp_start(r, &c, true) == 0) {
		code = wire_smtp(r, &c, &rep, "MAIL FROM:<%s> SIZE=%llu", r->o->from[0] ? r->o->from :
		    "mailcli-check@" HELO_NAME, (unsigned long long)r->st->size_max + 1);
		if (code == 552)
			check_pass(r);
		else if (code / 100 == 5)
			check_warn(r, "refused, but RFC 1870 6.1 asks for 552: %s", rep.text);
		else
			check_fail(r, "MAIL with SIZE above the announced %llu should get 552, got: %s",
			    (unsigned long long)r->st->size_max, rep.code ? rep.text : rep.err);
	}
	wire_close(&c);
}

static void
c_size_enforced(struct check_run *r)
{
	uint64_t n;
	char *body;
	int code;

	if (!need_size(r))
		return;
	if (r->st->size_max == 0 || r->st->size_max > 64 * 1024 * 1024) {
		check_skip(r, "SIZE announces no limit, or one above 64 MiB (too big to send)");
		return;
	}
	n = r->st->size_max + 4096;
	body = malloc(n);
	if (body == NULL)
		return;
	for (uint64_t i = 0; i < n; i += 80) {
		uint64_t k = n - i < 80 ? n - i : 80;

		memset(body + i, 's', k);
		if (k >= 2)
			memcpy(body + i + k - 2, "\r\n", 2);
	}
	code = send_message(r, "size-enforced", "", body, n, "552", ok_5xx);
	if (code == 552)
		check_pass(r);
	else if (code > 0)
		check_warn(r, "refused with %d; RFC 1870 6.3 asks for 552", code);
	free(body);
}

/* ---- PIPELINING ---- */

static void
c_pipe_batch(struct check_run *r)
{
	static const int want[] = { 250, 250, 354 };
	struct clientconn c;
	struct wire_reply rep;
	struct buf b;
	int i, code;

	conn_init(&c);
	buf_init(&b, 1 << 20);
	if (!r->st->pipelining) {
		check_skip(r, "the server does not offer PIPELINING");
		goto out;
	}
	if (!need_addrs(r) || smtp_start(r, &c, true) == -1)
		goto out;
	(void)buf_printf(&b, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", r->o->from, r->o->to);
	if (wire_send(r, &c, b.data, b.len) == -1)
		goto out;
	for (i = 0; i < 3; i++) {
		code = wire_smtp_reply(r, &c, &rep);
		if (code != want[i] && !(i == 1 && code == 251)) {
			check_fail(r, "MAIL, RCPT and DATA sent together should get %s in order; "
			    "reply %d was: %s", "250, 250, 354", i + 1, code == -1 ? rep.err : rep.text);
			goto out;
		}
	}
	buf_reset(&b);
	smtp_test_headers(r, &b, "pipelining");
	(void)buf_puts(&b, "pipelined\r\n.\r\n");
	if (wire_send(r, &c, b.data, b.len) == 0 && smtp_end_in_step(r, &c, &rep) == 250)
		check_pass(r);
	else if (!r->decided)
		check_fail(r, "expected 250 after the message, got: %s", rep.text);
out:
	buf_free(&b);
	wire_close(&c);
}

static void
c_pipe_errors(struct check_run *r)
{
	static const int want[] = { 250, 501, 250, 250, 250 };
	struct clientconn c;
	struct wire_reply rep;
	struct buf b;
	int i, code;

	conn_init(&c);
	buf_init(&b, 1 << 20);
	if (!r->st->pipelining) {
		check_skip(r, "the server does not offer PIPELINING");
		goto out;
	}
	if (!need_addrs(r) || smtp_start(r, &c, true) == -1)
		goto out;
	(void)buf_printf(&b, "MAIL FROM:<%s>\r\nRCPT TO:\r\nRCPT TO:<%s>\r\nRSET\r\nNOOP\r\n",
	    r->o->from, r->o->to);
	if (wire_send(r, &c, b.data, b.len) == -1)
		goto out;
	for (i = 0; i < 5; i++) {
		code = wire_smtp_reply(r, &c, &rep);
		if (code != want[i] && !(i == 2 && code == 251)) {
			check_fail(r, "MAIL, a bad RCPT, RCPT, RSET, NOOP sent together should get "
			    "250, 501, 250, 250, 250 in order; reply %d was: %s", i + 1,
			    code == -1 ? rep.err : rep.text);
			goto out;
		}
	}
	check_pass(r);
out:
	buf_free(&b);
	wire_close(&c);
}

/* ---- 8BITMIME ---- */

static void
c_8bit(struct check_run *r)
{
	static const char body[] = "8-bit text: ol\xc3\xa1, cora\xc3\xa7\xc3\xa3o, \xe2\x82\xac\r\n";

	if (!r->st->eightbitmime) {
		check_skip(r, "the server does not offer 8BITMIME");
		return;
	}
	if (send_message(r, "8bitmime", "BODY=8BITMIME", body, sizeof(body) - 1, "250",
	    ok_250) > 0)
		check_pass(r);
}

static void
c_8bit_bad(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int code;

	conn_init(&c);
	if (!r->st->eightbitmime) {
		check_skip(r, "the server does not offer 8BITMIME");
		return;
	}
	if (smtp_start(r, &c, true) == 0) {
		code = wire_smtp(r, &c, &rep, "MAIL FROM:<%s> BODY=9BITMIME",
		    r->o->from[0] ? r->o->from : "mailcli-check@" HELO_NAME);
		if (code == 501 || code == 555 || code == 504)
			check_pass(r);
		else
			check_fail(r, "BODY=9BITMIME is not a body type: expected 501 or 555, got: %s",
			    code == -1 ? rep.err : rep.text);
	}
	wire_close(&c);
}

/* ---- STARTTLS ---- */

static bool
need_starttls(struct check_run *r)
{
	if (r->o->implicit)
		check_skip(r, "the connection is TLS from the start");
	else if (!r->st->starttls)
		check_skip(r, "the server does not offer STARTTLS");
	else if (r->o->tls == NULL)
		check_skip(r, "--tls off");
	else
		return true;
	return false;
}

static void
c_tls_handshake(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	conn_init(&c);
	if (!need_starttls(r) || smtp_start(r, &c, true) == -1)
		goto out;
	if (wire_smtp(r, &c, &rep, "STARTTLS") != 220)
		check_fail(r, "expected 220 to STARTTLS, got: %s", rep.code ? rep.text : rep.err);
	else if (wire_starttls(r, &c) == -1)
		check_fail(r, "the TLS handshake failed: %s", c.err);
	else if (wire_smtp(r, &c, &rep, "EHLO " HELO_NAME) != 250)
		check_fail(r, "expected 250 to EHLO inside TLS, got: %s", rep.code ? rep.text : rep.err);
	else if (strcasestr(rep.all, "STARTTLS") != NULL)
		check_fail(r, "EHLO inside TLS must not offer STARTTLS again (RFC 3207 4.2)");
	else if (wire_smtp(r, &c, &rep, "STARTTLS") / 100 != 5)
		check_fail(r, "STARTTLS inside TLS should get 503 (or another 5xx), got: %s",
		    rep.code ? rep.text : rep.err);
	else
		check_pass(r);
out:
	wire_close(&c);
}

static void
c_tls_injection(struct check_run *r)
{
	static const char inj[] = "STARTTLS\r\nRSET\r\n";
	struct clientconn c;
	struct wire_reply rep;

	conn_init(&c);
	if (!need_starttls(r) || smtp_start(r, &c, true) == -1)
		goto out;
	if (wire_send(r, &c, inj, sizeof(inj) - 1) == -1)
		goto out;
	if (wire_smtp_reply(r, &c, &rep) != 220)
		check_fail(r, "expected 220 to STARTTLS, got: %s", rep.code ? rep.text : rep.err);
	else if (wire_starttls(r, &c) == -1)
		check_fail(r, "the TLS handshake failed (did the server answer the plaintext "
		    "RSET sent after STARTTLS?): %s", c.err);
	else if (wire_smtp(r, &c, &rep, "NOOP") != 250)
		check_fail(r, "expected 250 to NOOP inside TLS, got: %s", rep.code ? rep.text : rep.err);
	else if (!wire_quiet(r, &c, CHECK_QUIET_MS))
		check_fail(r, "the server answered the RSET sent in plaintext after STARTTLS inside "
		    "TLS: commands injected before the handshake must be discarded");
	else
		check_pass(r);
out:
	wire_close(&c);
}

static void
c_tls_args(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int code;

	conn_init(&c);
	if (need_starttls(r) && smtp_start(r, &c, true) == 0) {
		code = wire_smtp(r, &c, &rep, "STARTTLS please");
		if (code == 501)
			check_pass(r);
		else
			check_fail(r, "STARTTLS takes no argument: expected 501, got: %s",
			    code == -1 ? rep.err : rep.text);
	}
	wire_close(&c);
}

/* ---- AUTH ---- */

/* A session ready for AUTH: EHLO, STARTTLS and EHLO again when offered. */
static int
auth_start(struct check_run *r, struct clientconn *c)
{
	struct wire_reply rep;

	if (smtp_start(r, c, true) == -1)
		return -1;
	if (r->st->starttls && !r->o->implicit && r->o->tls != NULL) {
		if (wire_smtp(r, c, &rep, "STARTTLS") != 220 || wire_starttls(r, c) == -1 ||
		    wire_smtp(r, c, &rep, "EHLO " HELO_NAME) != 250) {
			check_fail(r, "STARTTLS before AUTH failed: %s", rep.code ? rep.text : c->err);
			return -1;
		}
	}
	return 0;
}

static bool
need_auth(struct check_run *r, bool creds)
{
	if (!r->st->auth)
		check_skip(r, "the server does not offer AUTH");
	else if (!r->st->auth_plain && !r->st->auth_login)
		check_skip(r, "the server offers neither AUTH PLAIN nor LOGIN");
	else if (creds && (!r->o->cc.user[0] || !r->o->have_password))
		check_skip(r, "needs --user and the password in MAILCLI_PASSWORD");
	else
		return true;
	return false;
}

/* AUTH with password; returns the final code or -1. */
static int
auth_do(struct check_run *r, struct clientconn *c, const char *password, struct wire_reply *rep)
{
	char enc[CLIENTCONN_SASL_ENC];
	int code;

	if (r->st->auth_plain) {
		if (clientconn_sasl_plain(r->o->cc.user, password, enc, sizeof(enc)) == -1)
			return -1;
		if (wire_cmd(r, c, true, "AUTH PLAIN %s", enc) == -1) {
			explicit_bzero(enc, sizeof(enc));
			return -1;
		}
		explicit_bzero(enc, sizeof(enc));
		return wire_smtp_reply(r, c, rep);
	}
	code = wire_smtp(r, c, rep, "AUTH LOGIN");
	if (code != 334)
		return code;
	b64_encode(r->o->cc.user, strlen(r->o->cc.user), enc);
	if (wire_cmd(r, c, true, "%s", enc) == -1 || wire_smtp_reply(r, c, rep) != 334)
		return rep->code ? rep->code : -1;
	b64_encode(password, strlen(password), enc);
	code = wire_cmd(r, c, true, "%s", enc);
	explicit_bzero(enc, sizeof(enc));
	return code == -1 ? -1 : wire_smtp_reply(r, c, rep);
}

static void
c_auth_plaintext(struct check_run *r)
{
	if (!r->st->auth)
		check_skip(r, "the server does not offer AUTH");
	else if (r->o->implicit || !r->st->auth_before_tls)
		check_pass(r);
	else if (strncmp(r->o->cc.host, "127.", 4) == 0 || strcmp(r->o->cc.host, "::1") == 0 ||
	    strcasecmp(r->o->cc.host, "localhost") == 0) {
		check_pass(r);
		check_note(r, "AUTH is offered before TLS, but only to a loopback client (no "
		    "password crosses a network); try it from another host");
	}
	else
		check_warn(r, "AUTH is offered before TLS: passwords would cross the network in "
		    "clear (RFC 4954 4: use STARTTLS first, RFC 8314)");
}

static void
c_auth_ok(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int code;

	conn_init(&c);
	if (need_auth(r, true) && auth_start(r, &c) == 0) {
		code = auth_do(r, &c, r->o->cc.password, &rep);
		if (code != 235)
			check_fail(r, "AUTH with --user and its password should get 235, got: %s",
			    code == -1 ? rep.err : rep.text);
		else if ((code = wire_smtp(r, &c, &rep, "AUTH PLAIN")) != 503)
			check_fail(r, "a second AUTH after a successful one must get 503 "
			    "(RFC 4954 4), got: %s", code == -1 ? rep.err : rep.text);
		else
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_auth_bad(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int code;

	conn_init(&c);
	if (need_auth(r, false) && auth_start(r, &c) == 0) {
		char user[256];
		struct check_opts *o = (struct check_opts *)r->o;	/* the user name only */

		snprintf(user, sizeof(user), "%s", o->cc.user);
		if (!o->cc.user[0])
			snprintf(o->cc.user, sizeof(o->cc.user), "mailcli-check");
		code = auth_do(r, &c, "mailcli-check-wrong-password", &rep);
		snprintf(o->cc.user, sizeof(o->cc.user), "%s", user);
		if (code == 535)
			check_pass(r);
		else if (code == -1 && strstr(rep.err, "time limit") != NULL)
			check_warn(r, "no answer to a wrong password within %d s: the server delays "
			    "failed logins (allowed; rerun with a larger --timeout)", r->o->timeout);
		else
			check_fail(r, "a wrong password should get 535, got: %s",
			    code == -1 ? rep.err : rep.text);
	}
	wire_close(&c);
}

static void
c_auth_cancel(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int code;

	conn_init(&c);
	if (need_auth(r, false) && auth_start(r, &c) == 0) {
		code = wire_smtp(r, &c, &rep, "AUTH %s", r->st->auth_login ? "LOGIN" : "PLAIN");
		if (code != 334)
			check_fail(r, "AUTH without an initial response should get 334, got: %s",
			    code == -1 ? rep.err : rep.text);
		else if ((code = wire_smtp(r, &c, &rep, "*")) != 501)
			check_fail(r, "\"*\" cancels the exchange: expected 501, got: %s",
			    code == -1 ? rep.err : rep.text);
		else if (wire_smtp(r, &c, &rep, "NOOP") != 250)
			check_fail(r, "after a cancelled AUTH, NOOP should get 250");
		else
			check_pass(r);
	}
	wire_close(&c);
}

const struct check_def check_smtp_data_table[] = {
	{ "smtp.data.start", "DATA after MAIL and RCPT gets 354; a message without a body is answered",
	    "RFC 5321 4.1.1.4", c_data_354 },
	{ "smtp.data.deliver", "a message is accepted with 250", "RFC 5321 4.1.1.4", c_deliver },
	{ "smtp.data.end-of-data", "only a line holding just \".\" ends the message",
	    "RFC 5321 4.1.1.4", c_end_of_data },
	{ "smtp.data.dot-stuffing", "stuffed lines (\"..\", \"..x\") are message text",
	    "RFC 5321 4.5.2", c_dot_stuffing },
	{ "smtp.data.bare-lf-end", "LF.LF and LF.CRLF do not end the message (smuggling)",
	    "RFC 5321 4.1.1.4, 2.3.8", c_bare_lf_end },
	{ "smtp.data.bare-lf", "a bare LF in the text is refused (or the session stays in step)",
	    "RFC 5321 2.3.8", c_bare_lf },
	{ "smtp.data.bare-cr", "a bare CR in the text is refused (or the session stays in step)",
	    "RFC 5321 2.3.8", c_bare_cr },
	{ "smtp.data.line-1000", "a 1000-octet line (998 + CRLF) is accepted",
	    "RFC 5321 4.5.3.1.6", c_line_1000 },
	{ "smtp.data.line-long", "a 5000-octet line gets one reply, the session stays in step",
	    "RFC 5321 4.5.3.1.6", c_line_long },
	{ "smtp.size.offered", "EHLO announces SIZE", "RFC 1870 4", c_size_offered },
	{ "smtp.size.param", "MAIL FROM with SIZE= is accepted", "RFC 1870 6", c_size_param },
	{ "smtp.size.declared", "a declared SIZE above the limit gets 552", "RFC 1870 6.1",
	    c_size_declared },
	{ "smtp.size.enforced", "a message above the limit gets 552 after the data",
	    "RFC 1870 6.3", c_size_enforced },
	{ "smtp.pipelining.batch", "MAIL, RCPT, DATA sent together get 250, 250, 354 in order",
	    "RFC 2920 3.1", c_pipe_batch },
	{ "smtp.pipelining.errors", "a refused command in a batch does not disturb the others",
	    "RFC 2920 3.2", c_pipe_errors },
	{ "smtp.8bitmime.body", "BODY=8BITMIME with 8-bit text is accepted", "RFC 6152 3", c_8bit },
	{ "smtp.8bitmime.bad-value", "BODY= with an unknown type gets 501/555", "RFC 6152 3",
	    c_8bit_bad },
	{ "smtp.starttls.handshake", "STARTTLS gets 220, TLS starts, not offered again",
	    "RFC 3207 4, 4.2", c_tls_handshake },
	{ "smtp.starttls.injection", "plaintext sent after STARTTLS is discarded", "RFC 3207 4.2",
	    c_tls_injection },
	{ "smtp.starttls.args", "STARTTLS with an argument gets 501", "RFC 3207 4", c_tls_args },
	{ "smtp.auth.plaintext", "AUTH is not offered on a plaintext connection", "RFC 4954 4",
	    c_auth_plaintext },
	{ "smtp.auth.login", "AUTH with --user succeeds (235), a second AUTH gets 503",
	    "RFC 4954 4, 6", c_auth_ok },
	{ "smtp.auth.bad-password", "a wrong password gets 535", "RFC 4954 6", c_auth_bad },
	{ "smtp.auth.cancel", "\"*\" cancels AUTH with 501", "RFC 4954 4", c_auth_cancel },
	{ NULL, NULL, NULL, NULL }
};
