/*
 * check_client_pop3.c - check-client's POP3 side: a correct server for one
 * session over a canned maildrop of three messages (one with lines that
 * start with "."), answering CAPA, USER/PASS (any password, or only --user
 * with MAILCLI_PASSWORD), STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP and
 * QUIT (RFC 1939, RFC 2449), and the grading of the client: waiting for the
 * greeting and for each response, CRLF line ends, USER before PASS and login
 * before transaction commands, message numbers that exist, QUIT. The
 * maildrop is the same in every session; DELE never changes it for good.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"

#define CC_WAIT_MS	30
#define NMSGS		3

static const char *const maildrop[NMSGS] = {
	"From: Ana <ana@lab.test>\r\nTo: bob@lab.test\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
	"Subject: Lab 1\r\nMessage-ID: <cc-1@mailcli-check.invalid>\r\n\r\n"
	"Hello Bob,\r\nthis is the first message.\r\n",
	"From: Ana <ana@lab.test>\r\nTo: bob@lab.test\r\nDate: Mon, 1 Jun 2026 10:01:00 +0000\r\n"
	"Subject: Lines with dots\r\nMessage-ID: <cc-2@mailcli-check.invalid>\r\n\r\n"
	"The next lines start with a dot:\r\n.\r\n.hidden\r\n..two\r\nA POP3 client must "
	"remove the extra dot.\r\n",
	"From: Bob <bob@lab.test>\r\nTo: ana@lab.test\r\nDate: Mon, 1 Jun 2026 10:02:00 +0000\r\n"
	"Subject: Third\r\nMessage-ID: <cc-3@mailcli-check.invalid>\r\n\r\n"
	"One\r\nTwo\r\nThree\r\n",
};

struct pop3_state {
	bool	 user_given;
	bool	 logged_in;
	bool	 deleted[NMSGS];
	bool	 quit;
	bool	 fetched;
};

/* The message number in arg, or 0 when it is not one of ours (graded). */
static unsigned
msg_arg(struct cc_session *s, struct pop3_state *st, const char *verb, const char *arg,
    bool want)
{
	char *e;
	unsigned long n = strtoul(arg, &e, 10);

	if (arg[0] < '0' || arg[0] > '9' || (*e != '\0' && *e != ' ') || n < 1 || n > NMSGS ||
	    st->deleted[n - 1]) {
		if (want || *arg != '\0')
			cc_result(s, "pop3-client.msgnum.valid", false, "%s %.20s: the maildrop has "
			    "messages 1 to %d%s", verb, arg, NMSGS, n >= 1 && n <= NMSGS ?
			    " and this one is deleted" : "");
		return 0;
	}
	cc_result(s, "pop3-client.msgnum.valid", true, "%s", "");
	return (unsigned)n;
}

/* A multi-line response body, dot-stuffed, then ".". lines < 0: all. */
static void
send_body(struct cc_session *s, const char *msg, long lines)
{
	struct buf b;
	const char *p = msg, *nl, *body = strstr(msg, "\r\n\r\n");
	long n = 0;

	buf_init(&b, 1 << 20);
	while (*p != '\0') {
		nl = strstr(p, "\r\n");
		if (nl == NULL)
			break;
		if (lines >= 0 && body != NULL && p > body + 2 && n++ >= lines)
			break;
		if (*p == '.')
			(void)buf_append(&b, ".", 1);
		(void)buf_append(&b, p, (size_t)(nl + 2 - p));
		p = nl + 2;
	}
	(void)buf_append(&b, ".\r\n", 3);
	fprintf(s->t, "S: [%zu octets of message text, dot-stuffed]\nS: .\n", b.len - 3);
	(void)cc_send(s, b.data, b.len);
	buf_free(&b);
}

static void
transaction(struct cc_session *s, struct pop3_state *st, const char *verb, const char *arg)
{
	unsigned n, i, count = 0;
	size_t octets = 0;
	char *e;

	for (i = 0; i < NMSGS; i++)
		if (!st->deleted[i]) {
			count++;
			octets += strlen(maildrop[i]);
		}
	if (strcasecmp(verb, "STAT") == 0) {
		cc_reply(s, "+OK %u %zu", count, octets);
	} else if (strcasecmp(verb, "LIST") == 0 || strcasecmp(verb, "UIDL") == 0) {
		bool uidl = strcasecmp(verb, "UIDL") == 0;

		if (*arg != '\0') {
			if ((n = msg_arg(s, st, verb, arg, true)) == 0)
				cc_reply(s, "-ERR No such message");
			else if (uidl)
				cc_reply(s, "+OK %u check-client-%u", n, n);
			else
				cc_reply(s, "+OK %u %zu", n, strlen(maildrop[n - 1]));
			return;
		}
		cc_reply(s, "+OK %u messages", count);
		for (i = 0; i < NMSGS; i++)
			if (!st->deleted[i]) {
				if (uidl)
					cc_reply(s, "%u check-client-%u", i + 1, i + 1);
				else
					cc_reply(s, "%u %zu", i + 1, strlen(maildrop[i]));
			}
		cc_reply(s, ".");
	} else if (strcasecmp(verb, "RETR") == 0 || strcasecmp(verb, "TOP") == 0) {
		bool top = strcasecmp(verb, "TOP") == 0;
		long lines = -1;

		if ((n = msg_arg(s, st, verb, arg, true)) == 0) {
			cc_reply(s, "-ERR No such message");
			return;
		}
		if (top) {
			const char *sp = strchr(arg, ' ');

			lines = sp ? strtol(sp + 1, &e, 10) : -1;
			if (sp == NULL || sp[1] < '0' || sp[1] > '9' || *e != '\0') {
				cc_reply(s, "-ERR Usage: TOP msg lines");
				return;
			}
		}
		st->fetched = true;
		cc_reply(s, "+OK %zu octets", strlen(maildrop[n - 1]));
		send_body(s, maildrop[n - 1], lines);
	} else if (strcasecmp(verb, "DELE") == 0) {
		if ((n = msg_arg(s, st, verb, arg, true)) == 0)
			cc_reply(s, "-ERR No such message");
		else {
			st->deleted[n - 1] = true;
			cc_reply(s, "+OK Message %u deleted", n);
		}
	} else if (strcasecmp(verb, "RSET") == 0) {
		memset(st->deleted, 0, sizeof(st->deleted));
		cc_reply(s, "+OK");
	} else if (strcasecmp(verb, "NOOP") == 0) {
		cc_reply(s, "+OK");
	} else {
		cc_reply(s, "-ERR Unknown command");
	}
}

static void
grade_wait(struct cc_session *s, const char *verb)
{
	bool more = cc_more_waiting(s, CC_WAIT_MS);

	if (!more)
		cc_result(s, "pop3-client.pipelining.unasked", true, "%s", "");
	else if (!s->o->pipelining)
		cc_result(s, "pop3-client.pipelining.unasked", false, "the client sent the next "
		    "command after %s before reading the response, and CAPA did not list PIPELINING",
		    verb);
	else if (strcasecmp(verb, "USER") == 0 || strcasecmp(verb, "PASS") == 0 ||
	    strcasecmp(verb, "STLS") == 0 || strcasecmp(verb, "AUTH") == 0 ||
	    strcasecmp(verb, "QUIT") == 0)
		cc_result(s, "pop3-client.pipelining.unasked", false, "%s changes the state: the "
		    "client must wait for its response even with PIPELINING (RFC 2449 6.6)", verb);
}

void
cc_pop3_session(struct cc_session *s)
{
	static const char *const trans[] = {
		"STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP", NULL
	};
	struct pop3_state st;
	char *line, verb[16], *arg, user[256] = "";
	size_t len, vl, i;
	enum line_eol eol;
	bool bad_eol = false, is_trans;

	memset(&st, 0, sizeof(st));
	cc_greeting_wait(s, "pop3-client.greeting.waited");
	if (cc_reply(s, "+OK mailcli check-client POP3 ready") == -1)
		return;
	while (cc_line(s, &line, &len, &eol) == 0) {
		if (eol == EOL_LF && !bad_eol) {
			bad_eol = true;
			cc_result(s, "pop3-client.line.crlf", false, "a command ended in a bare LF; "
			    "every line must end in CRLF");
		}
		vl = strcspn(line, " ");
		snprintf(verb, sizeof(verb), "%.*s", (int)(vl < 15 ? vl : 15), line);
		arg = line[vl] == ' ' ? line + vl + 1 : line + vl;
		grade_wait(s, verb);
		for (is_trans = false, i = 0; trans[i] != NULL; i++)
			if (strcasecmp(verb, trans[i]) == 0)
				is_trans = true;
		if (strcasecmp(verb, "QUIT") == 0) {
			st.quit = true;
			cc_reply(s, "+OK Bye");
			break;
		} else if (strcasecmp(verb, "CAPA") == 0) {
			cc_reply(s, "+OK Capability list follows");
			cc_reply(s, "USER");
			cc_reply(s, "UIDL");
			cc_reply(s, "TOP");
			if (s->o->pipelining)
				cc_reply(s, "PIPELINING");
			cc_reply(s, "IMPLEMENTATION mailcli-check-client");
			cc_reply(s, ".");
		} else if (st.logged_in && is_trans) {
			cc_result(s, "pop3-client.state.order", true, "%s", "");
			transaction(s, &st, verb, arg);
		} else if (is_trans) {
			cc_result(s, "pop3-client.state.order", false, "%s before logging in", verb);
			cc_reply(s, "-ERR Log in first (USER and PASS)");
		} else if (strcasecmp(verb, "USER") == 0 && !st.logged_in && *arg != '\0') {
			snprintf(user, sizeof(user), "%s", arg);
			st.user_given = true;
			cc_reply(s, "+OK Send PASS");
		} else if (strcasecmp(verb, "PASS") == 0 && !st.logged_in) {
			/* the transcript shows no password */
			if (!st.user_given) {
				cc_result(s, "pop3-client.login.user-pass", false, "PASS before USER");
				cc_reply(s, "-ERR USER first");
			} else if (s->o->user[0] && (strcmp(user, s->o->user) != 0 ||
			    strcmp(arg, s->o->password) != 0)) {
				cc_result(s, "pop3-client.login.user-pass", false, "USER %.60s with a "
				    "wrong password (--user and MAILCLI_PASSWORD say otherwise)", user);
				cc_reply(s, "-ERR [AUTH] Wrong user name or password");
				st.user_given = false;
			} else {
				cc_result(s, "pop3-client.login.user-pass", true, "%s", "");
				st.logged_in = true;
				cc_reply(s, "+OK Logged in: %d messages", NMSGS);
			}
		} else {
			cc_reply(s, "-ERR %.20s is not supported here", verb);
		}
	}
	if (!bad_eol)
		cc_result(s, "pop3-client.line.crlf", true, "%s", "");
	if (st.fetched)
		cc_result(s, "pop3-client.retr.fetched", true, "%s", "");
	cc_result(s, "pop3-client.quit.sent", st.quit, "the session ended without QUIT (so "
	    "nothing it deleted is deleted)");
}

const struct check_def check_client_pop3_table[] = {
	{ "pop3-client.greeting.waited", "the client waits for the +OK greeting", "RFC 1939 4",
	    NULL },
	{ "pop3-client.line.crlf", "every command ends in CRLF", "RFC 1939 3", NULL },
	{ "pop3-client.login.user-pass", "USER, then PASS, with the right password",
	    "RFC 1939 7", NULL },
	{ "pop3-client.state.order", "no STAT/LIST/RETR/... before logging in", "RFC 1939 4",
	    NULL },
	{ "pop3-client.pipelining.unasked", "no command before the previous response unless "
	    "PIPELINING was listed", "RFC 2449 6.6", NULL },
	{ "pop3-client.msgnum.valid", "only message numbers the maildrop has", "RFC 1939 5",
	    NULL },
	{ "pop3-client.retr.fetched", "the client fetched a message (RETR or TOP)", "RFC 1939 7",
	    NULL },
	{ "pop3-client.quit.sent", "the session ends with QUIT", "RFC 1939 6", NULL },
	{ NULL, NULL, NULL, NULL }
};
