/*
 * test_cmdtab.c - cmd_dispatch against a small SMTP-like and POP3-like table:
 * unknown verbs, wrong state (hook and generic), case, argument rules,
 * precheck refusal, empty lines, what the handler receives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cmdtab.h"

enum tstate { S_INIT, S_GREETED, S_MAIL, S_AUTH, S_TRANS };

struct tsession {
	int	 calls;
	char	 verb[16];
	char	 args[256];
	int	 refuse;	/* precheck refuses commands with CMD_NEED_TLS */
};

static void
h_generic(void *s, char *args, struct reply *r)
{
	struct tsession *ts = s;

	ts->calls++;
	assert_non_null(args);
	snprintf(ts->args, sizeof(ts->args), "%s", args);
	reply_set(r, 250, "2.0.0", "Ok");
}

static void
h_pop(void *s, char *args, struct reply *r)
{
	struct tsession *ts = s;

	ts->calls++;
	snprintf(ts->args, sizeof(ts->args), "%s", args);
	reply_set(r, REPLY_POP3_OK, NULL, "done");
}

#define B(s)	(1u << (s))

static const struct cmd_def smtp_table[] = {
	{ "HELO", B(S_INIT) | B(S_GREETED), CMD_ARGS_REQUIRED, 0, h_generic, "HELO hostname", "greet" },
	{ "MAIL", B(S_GREETED), CMD_ARGS_REQUIRED, 0, h_generic, "MAIL FROM:<address>", "sender" },
	{ "DATA", B(S_MAIL), CMD_ARGS_NONE, 0, h_generic, "DATA", "text" },
	{ "NOOP", ~0u, CMD_ARGS_OPTIONAL, 0, h_generic, "NOOP", "nothing" },
	{ "STARTTLS", B(S_GREETED), CMD_ARGS_NONE, 0, h_generic, NULL, "tls" },
	{ "AUTH", B(S_GREETED), CMD_ARGS_REQUIRED, CMD_SECRET | CMD_NEED_TLS, h_generic,
	    "AUTH mechanism [initial-response]", "login" },
};

static int
precheck(void *s, const struct cmd_def *def, struct reply *r)
{
	struct tsession *ts = s;

	if (ts->refuse && (def->flags & CMD_NEED_TLS)) {
		reply_set(r, 530, "5.7.0", "Must issue a STARTTLS command first");
		r->flags = 0;	/* the dispatcher must still mark it an error */
		return -1;
	}
	return 0;
}

static void
wrong_state(void *s, const struct cmd_def *def, struct reply *r)
{
	(void)s;
	reply_set(r, 503, "5.5.1", "%s not now: say HELO first", def->verb);
}

static const struct cmd_proto smtp_proto = {
	CMD_PROTO_SMTP, smtp_table, sizeof(smtp_table) / sizeof(smtp_table[0]), wrong_state, precheck,
};
static const struct cmd_proto smtp_plain = {
	CMD_PROTO_SMTP, smtp_table, sizeof(smtp_table) / sizeof(smtp_table[0]), NULL, NULL,
};

static const struct cmd_def pop_table[] = {
	{ "USER", B(S_AUTH), CMD_ARGS_REQUIRED, 0, h_pop, "USER name", "" },
	{ "PASS", B(S_AUTH), CMD_ARGS_REQUIRED, CMD_SECRET, h_pop, "PASS password", "" },
	{ "STAT", B(S_TRANS), CMD_ARGS_NONE, 0, h_pop, "STAT", "" },
	{ "LIST", B(S_TRANS), CMD_ARGS_OPTIONAL, 0, h_pop, "LIST [msg]", "" },
	{ "QUIT", B(S_AUTH) | B(S_TRANS), CMD_ARGS_NONE, 0, h_pop, "QUIT", "" },
};
static const struct cmd_proto pop_proto = {
	CMD_PROTO_POP3, pop_table, sizeof(pop_table) / sizeof(pop_table[0]), NULL, NULL,
};

struct dcase {
	const char *name;
	const struct cmd_proto *proto;
	unsigned state;
	int	 refuse;
	const char *line;
	int	 code;		/* expected reply code */
	const char *esc;
	const char *text;	/* expected text, NULL: any */
	const char *def;	/* expected matched verb, NULL: none */
	int	 called;	/* handler ran */
	const char *args;	/* what the handler got */
};

static const struct dcase dcases[] = {
	{ "helo", &smtp_proto, S_INIT, 0, "HELO client.example", 250, "2.0.0", "Ok", "HELO", 1, "client.example" },
	{ "lower case", &smtp_proto, S_INIT, 0, "helo x", 250, "2.0.0", "Ok", "HELO", 1, "x" },
	{ "mixed case", &smtp_proto, S_GREETED, 0, "MaIl FROM:<a@b>", 250, "2.0.0", "Ok", "MAIL", 1, "FROM:<a@b>" },
	{ "mail from", &smtp_proto, S_GREETED, 0, "MAIL FROM:<x> SIZE=10", 250, "2.0.0", NULL, "MAIL", 1, "FROM:<x> SIZE=10" },
	{ "trailing spaces", &smtp_proto, S_GREETED, 0, "MAIL FROM:<x>   ", 250, "2.0.0", NULL, "MAIL", 1, "FROM:<x>" },
	{ "spaces before args", &smtp_proto, S_GREETED, 0, "MAIL   FROM:<x>", 250, "2.0.0", NULL, "MAIL", 1, "FROM:<x>" },
	{ "unknown", &smtp_proto, S_INIT, 0, "XYZ", 500, "5.5.2",
	    "Unknown command 'XYZ'; HELP lists the commands", NULL, 0, NULL },
	{ "unknown with args", &smtp_proto, S_INIT, 0, "FOO bar baz", 500, "5.5.2",
	    "Unknown command 'FOO'; HELP lists the commands", NULL, 0, NULL },
	{ "verb too long", &smtp_proto, S_INIT, 0, "HELOHELOHELO x", 500, "5.5.2", NULL, NULL, 0, NULL },
	{ "verb huge", &smtp_proto, S_INIT, 0,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 500, "5.5.2",
	    "Unknown command; HELP lists the commands", NULL, 0, NULL },
	{ "verb non-printable", &smtp_proto, S_INIT, 0, "HE\x01O x", 500, "5.5.2",
	    "Unknown command; HELP lists the commands", NULL, 0, NULL },
	{ "verb 8bit", &smtp_proto, S_INIT, 0, "H\xc3\xa9LO x", 500, "5.5.2", NULL, NULL, 0, NULL },
	{ "tab is not a separator", &smtp_proto, S_GREETED, 0, "MAIL\tFROM:<x>", 500, "5.5.2", NULL, NULL, 0, NULL },
	{ "empty", &smtp_proto, S_INIT, 0, "", 500, "5.5.2", NULL, NULL, 0, NULL },
	{ "spaces only", &smtp_proto, S_INIT, 0, "    ", 500, "5.5.2", NULL, NULL, 0, NULL },
	{ "wrong state hook", &smtp_proto, S_INIT, 0, "MAIL FROM:<x>", 503, "5.5.1",
	    "MAIL not now: say HELO first", "MAIL", 0, NULL },
	{ "wrong state generic", &smtp_plain, S_INIT, 0, "DATA", 503, "5.5.1",
	    "Bad sequence of commands", "DATA", 0, NULL },
	{ "wrong state before args", &smtp_plain, S_INIT, 0, "DATA junk", 503, "5.5.1", NULL, "DATA", 0, NULL },
	{ "none with args", &smtp_proto, S_MAIL, 0, "DATA now", 501, "5.5.4", "Syntax: DATA", "DATA", 0, NULL },
	{ "none with args, no syntax", &smtp_proto, S_GREETED, 0, "STARTTLS x", 501, "5.5.4",
	    "Syntax: STARTTLS", "STARTTLS", 0, NULL },
	{ "none, trailing space ok", &smtp_proto, S_MAIL, 0, "DATA  ", 250, "2.0.0", NULL, "DATA", 1, "" },
	{ "required missing", &smtp_proto, S_GREETED, 0, "MAIL", 501, "5.5.4",
	    "Syntax: MAIL FROM:<address>", "MAIL", 0, NULL },
	{ "required only spaces", &smtp_proto, S_INIT, 0, "HELO   ", 501, "5.5.4", "Syntax: HELO hostname", "HELO", 0, NULL },
	{ "trailing tab", &smtp_proto, S_MAIL, 0, "DATA\t", 250, "2.0.0", NULL, "DATA", 1, "" },
	{ "trailing blanks args", &smtp_proto, S_GREETED, 0, "MAIL FROM:<x> \t ", 250, "2.0.0", NULL, "MAIL", 1, "FROM:<x>" },
	{ "optional absent", &smtp_proto, S_MAIL, 0, "NOOP", 250, "2.0.0", NULL, "NOOP", 1, "" },
	{ "optional present", &smtp_proto, S_MAIL, 0, "noop  hello world ", 250, "2.0.0", NULL, "NOOP", 1, "hello world" },
	{ "precheck refuses", &smtp_proto, S_GREETED, 1, "AUTH PLAIN AGFuYQBzZWNyZXQ=", 530, "5.7.0", NULL, "AUTH", 0, NULL },
	{ "precheck lets through", &smtp_proto, S_GREETED, 0, "AUTH PLAIN", 250, "2.0.0", NULL, "AUTH", 1, "PLAIN" },
	{ "precheck after args", &smtp_proto, S_GREETED, 1, "AUTH", 501, "5.5.4", NULL, "AUTH", 0, NULL },
	{ "pop3 user", &pop_proto, S_AUTH, 0, "user ana", REPLY_POP3_OK, "", "done", "USER", 1, "ana" },
	{ "pop3 pass spaces", &pop_proto, S_AUTH, 0, "PASS my secret", REPLY_POP3_OK, "", "done", "PASS", 1, "my secret" },
	{ "pop3 unknown", &pop_proto, S_AUTH, 0, "XTND x", REPLY_POP3_ERR, "", "Unknown command 'XTND'", NULL, 0, NULL },
	{ "pop3 wrong state", &pop_proto, S_AUTH, 0, "STAT", REPLY_POP3_ERR, "",
	    "command not valid in this state", "STAT", 0, NULL },
	{ "pop3 none with args", &pop_proto, S_TRANS, 0, "STAT 1", REPLY_POP3_ERR, "", "Syntax: STAT", "STAT", 0, NULL },
	{ "pop3 required missing", &pop_proto, S_AUTH, 0, "USER", REPLY_POP3_ERR, "", "Syntax: USER name", "USER", 0, NULL },
	{ "pop3 optional", &pop_proto, S_TRANS, 0, "list 2", REPLY_POP3_OK, "", NULL, "LIST", 1, "2" },
	{ "pop3 empty", &pop_proto, S_TRANS, 0, "", REPLY_POP3_ERR, "", NULL, NULL, 0, NULL },
	{ "state out of range", &pop_proto, 40, 0, "QUIT", REPLY_POP3_ERR, "", NULL, "QUIT", 0, NULL },
};

static void
test_dispatch(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *c = &dcases[i];
		struct tsession ts = { .refuse = c->refuse };
		const struct cmd_def *def = (const struct cmd_def *)1;
		struct reply r;
		char line[512];
		bool is_err;

		snprintf(line, sizeof(line), "%s", c->line);
		memset(&r, 0x55, sizeof(r));
		cmd_dispatch(c->proto, &ts, c->state, line, &r, &def);
		if (r.code != c->code)
			fail_msg("%s: code %d, want %d (%s)", c->name, r.code, c->code, r.text);
		assert_string_equal(r.esc, c->esc);
		if (c->text != NULL && strcmp(r.text, c->text) != 0)
			fail_msg("%s: text [%s], want [%s]", c->name, r.text, c->text);
		assert_true(strlen(r.text) < sizeof(r.text));
		if (c->def == NULL)
			assert_null(def);
		else {
			assert_non_null(def);
			assert_string_equal(def->verb, c->def);
		}
		assert_int_equal(ts.calls, c->called);
		if (c->called)
			assert_string_equal(ts.args, c->args);
		is_err = c->code >= 400 || c->code == REPLY_POP3_ERR;
		if (is_err != ((r.flags & REPLY_ERROR) != 0))
			fail_msg("%s: REPLY_ERROR flag %d for code %d", c->name, r.flags, r.code);
	}
}

static void
test_lookup(void **state)
{
	(void)state;
	assert_ptr_equal(cmd_lookup(&smtp_proto, "mail", 4), &smtp_table[1]);
	assert_ptr_equal(cmd_lookup(&smtp_proto, "MAILX", 4), &smtp_table[1]);
	assert_null(cmd_lookup(&smtp_proto, "MAI", 3));
	assert_null(cmd_lookup(&smtp_proto, "MAILX", 5));
	assert_null(cmd_lookup(&smtp_proto, "", 0));
	assert_ptr_equal(cmd_lookup(&smtp_proto, "StartTLS", 8), &smtp_table[4]);
	/* a NULL def_r is allowed */
	{
		char line[] = "NOOP";
		struct tsession ts = { 0 };
		struct reply r;

		cmd_dispatch(&smtp_proto, &ts, S_INIT, line, &r, NULL);
		assert_int_equal(r.code, 250);
	}
}

/* Random garbage lines: always a well-formed reply, never a crash. */
static void
test_garbage(void **state)
{
	unsigned seed = 3;
	int round;

	(void)state;
	for (round = 0; round < 20000; round++) {
		char line[80];
		size_t n, i;
		struct tsession ts = { .refuse = round & 1 };
		struct reply r;
		const struct cmd_def *def;
		const struct cmd_proto *p = (round & 2) ? &pop_proto : &smtp_proto;

#define RND()	(seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
		n = RND() % (sizeof(line) - 1);
		for (i = 0; i < n; i++) {
			unsigned c = RND() % 6 == 0 ? ' ' : 1 + RND() % 255;

			/* bias toward real verbs so the later checks run too */
			if (i == 0 && RND() % 2 == 0) {
				static const char *verbs[] = { "mail ", "DATA", "AUTH ", "noop", "USER ", "stat" };
				const char *v = verbs[RND() % 6];
				size_t vl = strlen(v) < n ? strlen(v) : n;

				memcpy(line, v, vl);
				i = vl - 1;
				continue;
			}
			line[i] = (char)c;
		}
		line[n] = '\0';
		cmd_dispatch(p, &ts, RND() % 5, line, &r, &def);
		if (p == &pop_proto)
			assert_true(r.code == REPLY_POP3_OK || r.code == REPLY_POP3_ERR);
		else
			assert_true(r.code == 250 || r.code == 500 || r.code == 501 ||
			    r.code == 503 || r.code == 530);
		assert_true(strlen(r.text) < sizeof(r.text));
		assert_int_equal((r.flags & REPLY_ERROR) != 0,
		    r.code >= 400 || r.code == REPLY_POP3_ERR);
		assert_true(ts.calls <= 1);
#undef RND
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
