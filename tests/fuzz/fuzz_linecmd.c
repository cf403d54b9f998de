/*
 * fuzz_linecmd.c - the line reader (common/linebuf.c) and the command
 * dispatcher (common/cmdtab.c) with the reply writers (common/reply.c) and
 * the transcript (common/transcript.c), as a session uses them.
 *
 * Input: byte 0 picks the line cap, byte 1 the feed chunk size; the rest is
 * the client's byte stream, fed in chunks. Each line is dispatched through an
 * SMTP-like and a POP3-like table. Oracles: a line never exceeds the cap and
 * never contains LF; every dispatch fills a reply; the SMTP writer emits only
 * "ddd-"/"ddd " lines ending in CRLF with no other CR or LF; the POP3 writer
 * emits one "+OK"/"-ERR" line ending in CRLF.
 */
#include <stdbool.h>
#include <string.h>
#include <event2/buffer.h>

#include "cmdtab.h"
#include "fuzz_common.h"
#include "linebuf.h"
#include "reply.h"
#include "transcript.h"

enum fstate { F_INIT, F_HELO, F_MAIL, F_AUTH, F_NSTATES };

struct fsession {
	enum fstate state;
	unsigned calls;
};

#define B(s)	(1u << (s))

static void
h_smtp(void *sp, char *args, struct reply *r)
{
	struct fsession *s = sp;

	FUZZ_CHECK(args != NULL);
	s->calls++;
	/* Echo the argument back: hostile text must still make a valid reply. */
	reply_set(r, 250, "2.0.0", "ok <%s>", args);
	if (strlen(args) % 3 == 1)
		reply_add_line(r, "second line %s", args);
	s->state = (enum fstate)((s->state + 1) % F_NSTATES);
}

static void
h_pop(void *sp, char *args, struct reply *r)
{
	struct fsession *s = sp;

	FUZZ_CHECK(args != NULL);
	s->calls++;
	reply_set(r, strlen(args) % 2 ? REPLY_POP3_ERR : REPLY_POP3_OK, NULL, "%s", args);
}

static const struct cmd_def smtp_table[] = {
	{ "HELO", B(F_INIT) | B(F_HELO), CMD_ARGS_REQUIRED, 0, h_smtp, "HELO hostname", "greet" },
	{ "EHLO", B(F_INIT) | B(F_HELO), CMD_ARGS_REQUIRED, 0, h_smtp, "EHLO hostname", "greet" },
	{ "MAIL", B(F_HELO), CMD_ARGS_REQUIRED, 0, h_smtp, "MAIL FROM:<address>", "sender" },
	{ "RCPT", B(F_MAIL), CMD_ARGS_REQUIRED, 0, h_smtp, "RCPT TO:<address>", "recipient" },
	{ "DATA", B(F_MAIL), CMD_ARGS_NONE, 0, h_smtp, "DATA", "text" },
	{ "NOOP", ~0u, CMD_ARGS_OPTIONAL, 0, h_smtp, "NOOP", "nothing" },
	{ "STARTTLS", B(F_HELO), CMD_ARGS_NONE, CMD_NEED_TLS, h_smtp, NULL, "tls" },
	{ "AUTH", B(F_HELO), CMD_ARGS_REQUIRED, CMD_SECRET | CMD_NEED_TLS, h_smtp,
	    "AUTH mechanism [initial-response]", "login" },
	{ "QUIT", ~0u, CMD_ARGS_NONE, 0, h_smtp, "QUIT", "bye" },
};

static const struct cmd_def pop_table[] = {
	{ "USER", B(F_INIT), CMD_ARGS_REQUIRED, 0, h_pop, "USER name", "user" },
	{ "PASS", B(F_INIT), CMD_ARGS_REQUIRED, CMD_SECRET, h_pop, "PASS password", "pass" },
	{ "RETR", B(F_HELO), CMD_ARGS_REQUIRED, 0, h_pop, "RETR n", "get" },
	{ "LIST", B(F_HELO), CMD_ARGS_OPTIONAL, 0, h_pop, "LIST [n]", "list" },
	{ "QUIT", ~0u, CMD_ARGS_NONE, 0, h_pop, "QUIT", "bye" },
};

static int
precheck(void *sp, const struct cmd_def *def, struct reply *r)
{
	struct fsession *s = sp;

	if ((def->flags & CMD_NEED_TLS) && s->calls % 2) {
		reply_set(r, 530, "5.7.0", "Must issue a STARTTLS command first");
		return -1;
	}
	return 0;
}

static void
wrong_state(void *sp, const struct cmd_def *def, struct reply *r)
{
	(void)sp;
	reply_set(r, 503, "5.5.1", "%s not now", def->verb);
}

static const struct cmd_proto smtp_proto = {
	CMD_PROTO_SMTP, smtp_table, sizeof(smtp_table) / sizeof(smtp_table[0]), wrong_state, precheck,
};
static const struct cmd_proto pop_proto = {
	CMD_PROTO_POP3, pop_table, sizeof(pop_table) / sizeof(pop_table[0]), NULL, NULL,
};

/* Every SMTP reply line: 3 digits, '-' or ' ', text without CR/LF, CRLF. */
static void
check_smtp_output(struct evbuffer *out, int code)
{
	size_t n = evbuffer_get_length(out), i, start = 0;
	const unsigned char *p = evbuffer_pullup(out, -1);
	bool last = false;

	FUZZ_CHECK(n >= 6);
	for (i = 0; i < n; i++) {
		if (p[i] == '\r') {
			FUZZ_CHECK(i + 1 < n && p[i + 1] == '\n');
			FUZZ_CHECK(i - start >= 3);
			FUZZ_CHECK(p[start] >= '1' && p[start] <= '5');
			FUZZ_CHECK(p[start + 1] >= '0' && p[start + 1] <= '9');
			FUZZ_CHECK(p[start + 2] >= '0' && p[start + 2] <= '9');
			FUZZ_CHECK((p[start] - '0') * 100 + (p[start + 1] - '0') * 10 +
			    (p[start + 2] - '0') == code);
			FUZZ_CHECK(i - start == 3 || p[start + 3] == ' ' || p[start + 3] == '-');
			FUZZ_CHECK(!last);
			last = i - start == 3 || p[start + 3] == ' ';
			i++;
			start = i + 1;
		} else {
			FUZZ_CHECK(p[i] != '\n');
		}
	}
	FUZZ_CHECK(start == n && last);
	evbuffer_drain(out, n);
}

static void
check_pop3_output(struct evbuffer *out, int code)
{
	size_t n = evbuffer_get_length(out), i;
	const char *p = (const char *)evbuffer_pullup(out, -1);

	FUZZ_CHECK(n >= 5);
	if (code == REPLY_POP3_OK)
		FUZZ_CHECK(memcmp(p, "+OK", 3) == 0);
	else
		FUZZ_CHECK(memcmp(p, "-ERR", 4) == 0);
	FUZZ_CHECK(p[n - 2] == '\r' && p[n - 1] == '\n');
	for (i = 0; i + 2 < n; i++)
		FUZZ_CHECK(p[i] != '\n' && p[i] != '\r');
	evbuffer_drain(out, n);
}

static void
one_line(struct fsession *ss, struct fsession *ps, struct transcript *tr, struct evbuffer *out,
    const char *line, size_t len)
{
	char copy[1100], text[REPLY_TEXT_MAX + 64], masked[600];
	const struct cmd_def *def;
	struct reply r;

	FUZZ_CHECK(len < sizeof(copy));
	if (memchr(line, '\0', len) != NULL)
		return;		/* the sessions refuse NUL before dispatch */

	memcpy(copy, line, len + 1);
	def = cmd_lookup(&smtp_proto, copy, strcspn(copy, " "));
	transcript_client(tr, line, len, def != NULL && (def->flags & CMD_SECRET));
	transcript_mask(line, len, def != NULL && (def->flags & CMD_SECRET), masked, sizeof(masked));
	memset(&r, 0, sizeof(r));
	r.code = -1;
	cmd_dispatch(&smtp_proto, ss, ss->state, copy, &r, &def);
	FUZZ_CHECK(r.code >= 200 && r.code <= 599);
	reply_write_smtp(out, &r, text, sizeof(text));
	check_smtp_output(out, r.code);
	transcript_server(tr, text, strlen(text));

	memcpy(copy, line, len + 1);
	memset(&r, 0, sizeof(r));
	r.code = -1;
	cmd_dispatch(&pop_proto, ps, ps->state, copy, &r, &def);
	FUZZ_CHECK(r.code == REPLY_POP3_OK || r.code == REPLY_POP3_ERR);
	reply_write_pop3(out, &r, NULL, 0);
	check_pop3_output(out, r.code);
	if (tr->pending.len > 16384)
		transcript_flushed(tr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linebuf lb;
	struct transcript tr;
	struct fsession ss = { F_INIT, 0 }, ps = { F_INIT, 0 };
	struct evbuffer *out;
	size_t max_line = 8 + fuzz_take(&data, &size) * 4;	/* 8 .. 1028 */
	size_t chunk = 1 + fuzz_take(&data, &size);
	size_t pos = 0, total = 0;

	if (linebuf_init(&lb, max_line) == -1)
		return 0;
	out = evbuffer_new();
	transcript_init(&tr, "fuzz", true);
	ps.state = size % 2 ? F_HELO : F_INIT;
	while (pos < size || linebuf_pending(&lb) > 0) {
		char *line;
		size_t len;
		enum line_eol eol;
		enum line_status st = linebuf_next(&lb, &line, &len, &eol);

		if (st == LINE_MORE) {
			size_t room = linebuf_space(&lb), n = size - pos;
			if (n == 0)
				break;
			FUZZ_CHECK(room > 0);
			if (n > chunk)
				n = chunk;
			if (n > room)
				n = room;
			n = linebuf_feed(&lb, data + pos, n);
			FUZZ_CHECK(n > 0);
			pos += n;
			continue;
		}
		FUZZ_CHECK(linebuf_pending(&lb) <= lb.cap);
		if (st == LINE_TOO_LONG) {
			total++;
			continue;
		}
		FUZZ_CHECK(st == LINE_OK);
		FUZZ_CHECK(len <= max_line);
		FUZZ_CHECK(line[len] == '\0');
		FUZZ_CHECK(memchr(line, '\n', len) == NULL);
		FUZZ_CHECK(eol == EOL_CRLF || eol == EOL_LF);
		one_line(&ss, &ps, &tr, out, line, len);
		total++;
	}
	FUZZ_CHECK(total <= size);
	transcript_free(&tr);
	evbuffer_free(out);
	linebuf_free(&lb);
	return 0;
}
