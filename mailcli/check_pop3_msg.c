/*
 * check_pop3_msg.c - the POP3 server battery, part 2: messages. RETR with
 * exact octet counts (RFC 1939 11: LIST's size is the message with CRLF line
 * ends, before byte-stuffing) and dot-stuffing (RFC 1939 3), TOP and its
 * bounds (RFC 1939 7), DELE, DELE of a deleted message, RSET, and deletion
 * only at QUIT (RFC 1939 6). Deleting checks touch only this run's own test
 * messages, delivered through --smtp with common/smtpclient.c (this file
 * writes and delivers them); without them they are skipped. Reading checks
 * use the newest messages when there are none of ours.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "smtpclient.h"

static void
conn_init(struct clientconn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void
pop3_test_message(const struct check_opts *o, const char *tag, struct buf *b)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int i;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	(void)buf_printf(b, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Subject: [mailcli check %s] %s\r\nMessage-ID: <%s.%s@mailcli-check.invalid>\r\n"
	    "X-Mailcli-Check: %s %s\r\n\r\n", o->from, o->to, date, o->runid, tag, o->runid, tag,
	    o->runid, tag);
	if (strcmp(tag, "dots") == 0)
		(void)buf_puts(b, "Lines that start with a dot:\r\n.\r\n..\r\n.hidden\r\n"
		    "..two dots\r\n. space\r\nlast line\r\n");
	else
		for (i = 1; i <= 10; i++)
			(void)buf_printf(b, "body line %d of 10\r\n", i);
}

static const char *const test_tags[] = { "dots", "lines", "dele", NULL };

int
pop3_deliver_all(const struct check_opts *o, char *err, size_t errlen)
{
	struct smtpclient s;
	struct smtpclient_rcpt rcpt = { .addr = o->to };
	struct buf b;
	char line[600];
	size_t i;
	int rc = -1;

	buf_init(&b, 1 << 20);
	if (smtpclient_open(&s, o->smtp_host, o->smtp_port, o->timeout, NULL) != 0 ||
	    smtpclient_ehlo(&s, "mailcli-check.invalid") != 0)
		goto fail;
	if (s.caps.starttls && o->tls != NULL &&
	    smtpclient_starttls(&s, o->tls, "mailcli-check.invalid") != 0)
		goto fail;
	for (i = 0; test_tags[i] != NULL; i++) {
		buf_reset(&b);
		pop3_test_message(o, test_tags[i], &b);
		if (smtpclient_envelope(&s, o->from, b.len, false, &rcpt, 1) != 0 ||
		    smtpclient_data_begin(&s) != 0 || smtpclient_data_write(&s, b.data, b.len) != 0 ||
		    smtpclient_data_end(&s) != 0)
			goto fail;
	}
	smtpclient_quit(&s);
	rc = 0;
	goto out;
fail:
	if (s.err[0])
		snprintf(err, errlen, "%s", s.err);
	else {
		smtpclient_reply_str(rcpt.reply.code ? &rcpt.reply : &s.reply, line, sizeof(line));
		snprintf(err, errlen, "%s", line);
	}
out:
	smtpclient_close(&s);
	buf_free(&b);
	return rc;
}

/* Un-stuff a raw multi-line body in place; count lines that came stuffed
 * and lines that did not end in CRLF. Returns the un-stuffed length. */
static size_t
unstuff(char *p, size_t len, size_t *bad_eol_r, size_t *lines_r)
{
	size_t i = 0, o = 0, bad = 0, lines = 0;

	while (i < len) {
		char *nl = memchr(p + i, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - (p + i)) + 1 : len - i;

		lines++;
		if (ll < 2 || p[i + ll - 2] != '\r')
			bad++;
		if (p[i] == '.') {	/* a stuffed line: drop one dot */
			i++;
			ll--;
		}
		memmove(p + o, p + i, ll);
		o += ll;
		i += ll;
	}
	*bad_eol_r = bad;
	*lines_r = lines;
	return o;
}

/* Log in and find this run's message with tag (or, when any, the newest
 * message). Returns its number, 0 after a verdict. */
static unsigned long
login_find(struct check_run *r, struct clientconn *c, const char *tag, bool any)
{
	unsigned long num = 0;
	struct wire_reply rep;

	if (!any && !r->st->delivered) {
		check_skip(r, "needs its own test messages: give --smtp, --from and --to");
		return 0;
	}
	if (pop3_login(r, c) != 0)
		return 0;
	if (r->st->delivered && pop3_find_ours(r, c, tag, &num, 1) == 1)
		return num;
	if (r->st->delivered && !any) {
		check_fail(r, "the test message \"%s\" delivered through --smtp is not in the "
		    "maildrop (or TOP/RETR could not show it)", tag);
		return 0;
	}
	if (wire_pop3(r, c, &rep, false, "STAT") == 1 && strtoul(rep.text + 4, NULL, 10) > 0)
		return strtoul(rep.text + 4, NULL, 10);
	check_skip(r, "the maildrop is empty (give --smtp to deliver test messages)");
	return 0;
}

/* RETR (or TOP n lines when lines >= 0) raw into b. 0, or -1 after a verdict. */
static int
fetch(struct check_run *r, struct clientconn *c, unsigned long num, long lines, struct buf *b)
{
	struct wire_reply rep;
	int st;

	if (lines >= 0)
		st = wire_pop3(r, c, &rep, false, "TOP %lu %ld", num, lines);
	else
		st = wire_pop3(r, c, &rep, false, "RETR %lu", num);
	if (st != 1) {
		check_fail(r, "%s %lu should get +OK and the message, got: %s", lines >= 0 ? "TOP" :
		    "RETR", num, st == -1 ? rep.err : rep.text);
		return -1;
	}
	if (wire_pop3_multi(r, c, b) == -1) {
		check_fail(r, "the response did not end with a \".\" line: %s", c->err);
		return -1;
	}
	return 0;
}

static void
c_octets(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	struct buf b;
	unsigned long num, n;
	unsigned long long size;
	size_t bad, lines, got;

	conn_init(&c);
	buf_init(&b, 256 * 1024 * 1024);
	if ((num = login_find(r, &c, "dots", true)) == 0)
		goto out;
	if (wire_pop3(r, &c, &rep, false, "LIST %lu", num) != 1 ||
	    sscanf(rep.text, "+OK %lu %llu", &n, &size) != 2) {
		check_fail(r, "LIST %lu should get \"+OK %lu octets\"", num, num);
		goto out;
	}
	if (fetch(r, &c, num, -1, &b) == -1)
		goto out;
	got = unstuff(b.data ? b.data : "", b.len, &bad, &lines);
	if (got != size)
		check_fail(r, "LIST says message %lu has %llu octets, but RETR sent %zu (counted "
		    "with CRLF line ends, after removing the stuffed dots)", num, size, got);
	else
		check_pass(r);
out:
	buf_free(&b);
	wire_close(&c);
}

static void
c_crlf(struct check_run *r)
{
	struct clientconn c;
	struct buf b;
	unsigned long num;
	size_t bad, lines;

	conn_init(&c);
	buf_init(&b, 256 * 1024 * 1024);
	if ((num = login_find(r, &c, "dots", true)) != 0 && fetch(r, &c, num, -1, &b) == 0) {
		(void)unstuff(b.data ? b.data : "", b.len, &bad, &lines);
		if (bad > 0)
			check_fail(r, "%zu of the %zu lines of RETR %lu did not end in CRLF", bad, lines,
			    num);
		else
			check_pass(r);
	}
	buf_free(&b);
	wire_close(&c);
}

static void
c_dots(struct check_run *r)
{
	struct clientconn c;
	struct buf b, want;
	unsigned long num;
	const char *body, *wbody;
	size_t bad, lines, got;

	conn_init(&c);
	buf_init(&b, 1 << 20);
	buf_init(&want, 1 << 20);
	if ((num = login_find(r, &c, "dots", false)) == 0 || fetch(r, &c, num, -1, &b) == -1)
		goto out;
	/* The stuffed lines on the wire first: a bare "." line would have ended it. */
	if (b.data == NULL || strstr(b.data, "\r\n..\r\n") == NULL ||
	    strstr(b.data, "\r\n..hidden\r\n") == NULL) {
		check_fail(r, "lines that start with \".\" must be sent with one more \".\" "
		    "(\".hidden\" as \"..hidden\"); RETR %lu did not", num);
		goto out;
	}
	got = unstuff(b.data, b.len, &bad, &lines);
	b.data[got] = '\0';
	pop3_test_message(r->o, "dots", &want);
	body = strstr(b.data, "\r\n\r\n");
	wbody = strstr(want.data, "\r\n\r\n");
	if (body == NULL || strcmp(body, wbody) != 0)
		check_fail(r, "the body of RETR %lu, after removing the stuffed dots, is not the "
		    "body that was sent through --smtp", num);
	else
		check_pass(r);
out:
	buf_free(&b);
	buf_free(&want);
	wire_close(&c);
}

static bool
need_top(struct check_run *r)
{
	if (r->st->top)
		return true;
	check_skip(r, "the server does not offer TOP");
	return false;
}

static void
c_top_zero(struct check_run *r)
{
	struct clientconn c;
	struct buf b;
	unsigned long num;

	conn_init(&c);
	buf_init(&b, 1 << 20);
	if (need_top(r) && (num = login_find(r, &c, "lines", true)) != 0 &&
	    fetch(r, &c, num, 0, &b) == 0) {
		const char *end = b.data ? strstr(b.data, "\r\n\r\n") : NULL;

		if (end == NULL && b.len > 0 && b.data[0] == '\r')
			end = b.data - 2;	/* no header at all */
		if (end == NULL)
			check_fail(r, "TOP %lu 0 should send the header and the empty line after it",
			    num);
		else if ((size_t)(end + 4 - b.data) != b.len)
			check_fail(r, "TOP %lu 0 should send no line of the body", num);
		else
			check_pass(r);
	}
	buf_free(&b);
	wire_close(&c);
}

static void
c_top_lines(struct check_run *r)
{
	struct clientconn c;
	struct buf b, full;
	unsigned long num;
	const char *body;
	size_t bad, lines;

	conn_init(&c);
	buf_init(&b, 1 << 20);
	buf_init(&full, 256 * 1024 * 1024);
	if (!need_top(r) || (num = login_find(r, &c, "lines", false)) == 0 ||
	    fetch(r, &c, num, 3, &b) == -1)
		goto out;
	body = b.data ? strstr(b.data, "\r\n\r\n") : NULL;
	if (body == NULL || strcmp(body + 4, "body line 1 of 10\r\nbody line 2 of 10\r\n"
	    "body line 3 of 10\r\n") != 0) {
		check_fail(r, "TOP %lu 3 should send the header and the first 3 body lines", num);
		goto out;
	}
	buf_reset(&b);
	if (fetch(r, &c, num, 100000, &b) == -1 || fetch(r, &c, num, -1, &full) == -1)
		goto out;
	if (b.len != full.len || memcmp(b.data, full.data, b.len) != 0) {
		check_fail(r, "TOP %lu 100000 (more lines than the body has) should send the whole "
		    "message, as RETR does", num);
		goto out;
	}
	(void)unstuff(b.data, b.len, &bad, &lines);
	check_pass(r);
out:
	buf_free(&b);
	buf_free(&full);
	wire_close(&c);
}

static void
c_top_bad(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned long num;
	int st;

	conn_init(&c);
	if (need_top(r) && (num = login_find(r, &c, "lines", true)) != 0) {
		if ((st = wire_pop3(r, &c, &rep, false, "TOP %lu", num)) != 0 ||
		    (st = wire_pop3(r, &c, &rep, false, "TOP %lu -1", num)) != 0 ||
		    (st = wire_pop3(r, &c, &rep, false, "TOP 0 1")) != 0)
			check_fail(r, "TOP without a line count, with -1 lines, or of message 0 "
			    "should get -ERR, got: %s", st == -1 ? rep.err : rep.text);
		else if (wire_pop3(r, &c, &rep, false, "NOOP") != 1)
			check_fail(r, "NOOP after the bad TOPs should get +OK");
		else
			check_pass(r);
	}
	wire_close(&c);
}

/* DELE num, then the checks of what a deleted message is. */
static void
c_dele(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned long num, n1, n2;
	unsigned long long s1, s2;
	int st;

	conn_init(&c);
	if ((num = login_find(r, &c, "lines", false)) == 0)
		goto out;
	if (wire_pop3(r, &c, &rep, false, "STAT") != 1 ||
	    sscanf(rep.text, "+OK %lu %llu", &n1, &s1) != 2)
		goto bad_stat;
	if ((st = wire_pop3(r, &c, &rep, false, "DELE %lu", num)) != 1) {
		check_fail(r, "DELE %lu should get +OK, got: %s", num, st == -1 ? rep.err : rep.text);
		goto out;
	}
	if (wire_pop3(r, &c, &rep, false, "STAT") != 1 ||
	    sscanf(rep.text, "+OK %lu %llu", &n2, &s2) != 2)
		goto bad_stat;
	if (n2 != n1 - 1 || s2 >= s1)
		check_fail(r, "STAT must not count a message marked as deleted: %lu %llu before "
		    "DELE, %lu %llu after", n1, s1, n2, s2);
	else if ((st = wire_pop3(r, &c, &rep, false, "LIST %lu", num)) != 0 ||
	    (st = wire_pop3(r, &c, &rep, false, "RETR %lu", num)) != 0)
		check_fail(r, "LIST and RETR of a deleted message should get -ERR, got: %s",
		    st == -1 ? rep.err : rep.text);
	else
		check_pass(r);
	(void)wire_pop3(r, &c, &rep, false, "RSET");
	(void)wire_pop3(r, &c, &rep, false, "QUIT");
	goto out;
bad_stat:
	check_fail(r, "STAT should get \"+OK count octets\"");
out:
	wire_close(&c);
}

static void
c_dele_twice(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned long num;
	int st;

	conn_init(&c);
	if ((num = login_find(r, &c, "lines", false)) != 0) {
		if ((st = wire_pop3(r, &c, &rep, false, "DELE %lu", num)) != 1)
			check_fail(r, "DELE %lu should get +OK, got: %s", num, st == -1 ? rep.err : rep.text);
		else if ((st = wire_pop3(r, &c, &rep, false, "DELE %lu", num)) != 0)
			check_fail(r, "DELE of a message already deleted should get -ERR, got: %s",
			    st == -1 ? rep.err : rep.text);
		else
			check_pass(r);
		(void)wire_pop3(r, &c, &rep, false, "RSET");
		(void)wire_pop3(r, &c, &rep, false, "QUIT");
	}
	wire_close(&c);
}

static void
c_rset(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned long num;
	int st;

	conn_init(&c);
	if ((num = login_find(r, &c, "lines", false)) != 0) {
		if ((st = wire_pop3(r, &c, &rep, false, "DELE %lu", num)) != 1)
			check_fail(r, "DELE %lu should get +OK, got: %s", num, st == -1 ? rep.err : rep.text);
		else if ((st = wire_pop3(r, &c, &rep, false, "RSET")) != 1)
			check_fail(r, "RSET should get +OK, got: %s", st == -1 ? rep.err : rep.text);
		else if ((st = wire_pop3(r, &c, &rep, false, "LIST %lu", num)) != 1)
			check_fail(r, "after RSET the message is no longer deleted: LIST %lu should get "
			    "+OK, got: %s", num, st == -1 ? rep.err : rep.text);
		else
			check_pass(r);
		(void)wire_pop3(r, &c, &rep, false, "QUIT");
	}
	wire_close(&c);
}

/* DELE, then the connection drops (no QUIT): the message must still be there. */
static void
c_dele_no_quit(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned long num;
	int st;

	conn_init(&c);
	if ((num = login_find(r, &c, "lines", false)) == 0)
		goto out;
	if ((st = wire_pop3(r, &c, &rep, false, "DELE %lu", num)) != 1) {
		check_fail(r, "DELE %lu should get +OK, got: %s", num, st == -1 ? rep.err : rep.text);
		goto out;
	}
	wire_close(&c);
	if (r->trace != NULL)
		fprintf(r->trace, "   [connection dropped without QUIT; a new session:]\n");
	conn_init(&c);
	if (pop3_login(r, &c) != 0)
		goto out;
	/* The server may hold the lock of the dropped session for a moment. */
	if (pop3_find_ours(r, &c, "lines", &num, 1) != 1)
		check_fail(r, "the message deleted in a session that ended without QUIT is gone: "
		    "deletions happen only at QUIT (the UPDATE state)");
	else
		check_pass(r);
	(void)wire_pop3(r, &c, &rep, false, "QUIT");
out:
	wire_close(&c);
}

static void
c_dele_quit(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned long num;
	int st;

	conn_init(&c);
	if ((num = login_find(r, &c, "dele", false)) == 0)
		goto out;
	if ((st = wire_pop3(r, &c, &rep, false, "DELE %lu", num)) != 1 ||
	    (st = wire_pop3(r, &c, &rep, false, "QUIT")) != 1) {
		check_fail(r, "DELE %lu and QUIT should get +OK, got: %s", num,
		    st == -1 ? rep.err : rep.text);
		goto out;
	}
	wire_close(&c);
	conn_init(&c);
	if (pop3_login(r, &c) != 0)
		goto out;
	if (pop3_find_ours(r, &c, "dele", &num, 1) != 0)
		check_fail(r, "the message deleted before QUIT is still there in the next session");
	else
		check_pass(r);
	(void)wire_pop3(r, &c, &rep, false, "QUIT");
out:
	wire_close(&c);
}

const struct check_def check_pop3_msg_table[] = {
	{ "pop3.retr.octets", "RETR sends exactly the octets LIST announced", "RFC 1939 5, 11",
	    c_octets },
	{ "pop3.retr.crlf", "every line of RETR ends in CRLF", "RFC 1939 3", c_crlf },
	{ "pop3.retr.dot-stuffing", "lines starting with \".\" are stuffed; the body arrives "
	    "intact", "RFC 1939 3", c_dots },
	{ "pop3.top.header-only", "TOP n 0 sends the header and the empty line only",
	    "RFC 1939 7", c_top_zero },
	{ "pop3.top.lines", "TOP n 3 sends 3 body lines; more than the body sends it all",
	    "RFC 1939 7", c_top_lines },
	{ "pop3.top.bad-args", "TOP without a count, with -1 or of message 0 gets -ERR",
	    "RFC 1939 7", c_top_bad },
	{ "pop3.dele.mark", "DELE marks: STAT, LIST and RETR no longer show the message",
	    "RFC 1939 5", c_dele },
	{ "pop3.dele.twice", "DELE of a deleted message gets -ERR", "RFC 1939 5", c_dele_twice },
	{ "pop3.rset.undeletes", "RSET unmarks deleted messages", "RFC 1939 5", c_rset },
	{ "pop3.dele.only-at-quit", "without QUIT nothing is deleted", "RFC 1939 6",
	    c_dele_no_quit },
	{ "pop3.dele.at-quit", "DELE then QUIT removes the message", "RFC 1939 6", c_dele_quit },
	{ NULL, NULL, NULL, NULL }
};
