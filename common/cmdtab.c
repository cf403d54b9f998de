/*
 * cmdtab.c - the one command dispatcher for SMTP (RFC 5321 4.1.1, 4.2.4,
 * 4.3.2) and POP3 (RFC 1939 3 and 4-6). See cmdtab.h.
 *
 * Owns: splitting a command line into verb and arguments, the verb lookup,
 * and the generic replies: 500 unknown verb, 503 wrong state, 501 arguments
 * that break the table's rule (and their POP3 -ERR forms). Every reply it
 * writes itself carries REPLY_ERROR.
 * Never: knows a protocol's verbs, states or policies - those come from the
 * table and the wrong_state/precheck hooks.
 */
#include <assert.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "cmdtab.h"
#include "log.h"

/* Longest unknown verb that is echoed back in the 500 reply. */
#define CMD_ECHO_MAX	32

const struct cmd_def *
cmd_lookup(const struct cmd_proto *p, const char *verb, size_t len)
{
	size_t i;

	for (i = 0; i < p->ntable; i++) {
		const struct cmd_def *d = &p->table[i];

		if (strlen(d->verb) == len && strncasecmp(d->verb, verb, len) == 0)
			return d;
	}
	return NULL;
}

static void
cmd_reply_init(struct reply *r)
{
	r->code = 0;
	r->esc[0] = '\0';
	r->text[0] = '\0';
	r->flags = 0;
}

static bool
cmd_verb_is_printable(const char *verb, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)verb[i] < 0x21 || (unsigned char)verb[i] > 0x7e)
			return false;
	return true;
}

static void
cmd_unknown(const struct cmd_proto *p, const char *verb, size_t len, struct reply *r)
{
	bool echo = len > 0 && len <= CMD_ECHO_MAX && cmd_verb_is_printable(verb, len);

	if (p->kind == CMD_PROTO_SMTP) {
		if (len == 0)
			reply_set(r, 500, "5.5.2", "Syntax error: empty command; HELP lists the commands");
		else if (echo)
			reply_set(r, 500, "5.5.2", "Unknown command '%.*s'; HELP lists the commands",
			    (int)len, verb);
		else
			reply_set(r, 500, "5.5.2", "Unknown command; HELP lists the commands");
	} else {
		if (len == 0)
			reply_set(r, REPLY_POP3_ERR, NULL, "Empty command; CAPA lists the capabilities");
		else if (echo)
			reply_set(r, REPLY_POP3_ERR, NULL, "Unknown command '%.*s'", (int)len, verb);
		else
			reply_set(r, REPLY_POP3_ERR, NULL, "Unknown command");
	}
}

static void
cmd_syntax(const struct cmd_proto *p, const struct cmd_def *d, struct reply *r)
{
	const char *syntax = d->syntax ? d->syntax : d->verb;

	if (p->kind == CMD_PROTO_SMTP)
		reply_set(r, 501, "5.5.4", "Syntax: %s", syntax);
	else
		reply_set(r, REPLY_POP3_ERR, NULL, "Syntax: %s", syntax);
}

void
cmd_dispatch(const struct cmd_proto *p, void *session, unsigned state,
    char *line, struct reply *r, const struct cmd_def **def_r)
{
	const struct cmd_def *d;
	char *verb = line, *args, *end;
	size_t vlen, maxverb = 0, i;

	assert(p != NULL && line != NULL && r != NULL);
	cmd_reply_init(r);
	if (def_r != NULL)
		*def_r = NULL;

	/* trailing blanks (people type them) are not part of the command */
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	/* verb: up to the first space; arguments: after the spaces that follow */
	while (*verb == ' ')
		verb++;
	args = strchr(verb, ' ');
	if (args != NULL) {
		vlen = (size_t)(args - verb);
		while (*args == ' ')
			args++;
	} else {
		vlen = strlen(verb);
		args = verb + vlen;
	}

	for (i = 0; i < p->ntable; i++) {
		size_t n = strlen(p->table[i].verb);

		if (n > maxverb)
			maxverb = n;
	}
	d = NULL;
	if (vlen > 0 && vlen <= maxverb && cmd_verb_is_printable(verb, vlen))
		d = cmd_lookup(p, verb, vlen);
	if (d == NULL) {
		cmd_unknown(p, verb, vlen, r);
		r->flags |= REPLY_ERROR;
		return;
	}
	if (def_r != NULL)
		*def_r = d;
	verb[vlen] = '\0';	/* the verb alone, for handlers that look at it */

	if (state >= 32 || (d->states & (1u << state)) == 0) {
		if (p->wrong_state != NULL)
			p->wrong_state(session, d, r);
		else if (p->kind == CMD_PROTO_SMTP)
			reply_set(r, 503, "5.5.1", "Bad sequence of commands");
		else
			reply_set(r, REPLY_POP3_ERR, NULL, "command not valid in this state");
		r->flags |= REPLY_ERROR;
		return;
	}
	if ((d->args == CMD_ARGS_NONE && *args != '\0') ||
	    (d->args == CMD_ARGS_REQUIRED && *args == '\0')) {
		cmd_syntax(p, d, r);
		r->flags |= REPLY_ERROR;
		return;
	}
	if (p->precheck != NULL && p->precheck(session, d, r) == -1) {
		r->flags |= REPLY_ERROR;
		return;
	}
	d->handler(session, args, r);
}

/* Copy n octets of s for a log line: printable ASCII, quotes and controls as '?'. */
static void
log_safe(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t i;

	if (n >= dstlen)
		n = dstlen - 1;
	for (i = 0; i < n; i++)
		dst[i] = s[i] > 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] : '?';
	dst[n] = '\0';
}

void
cmd_log_refused(const char *session_id, const char *verb, size_t vlen, const struct reply *r)
{
	char v[CMD_LOG_VERB_MAX + 1], text[CMD_LOG_REPLY_MAX + 1];
	const char *nl;
	size_t tlen, i;

	if (!(r->flags & REPLY_ERROR))
		return;
	log_safe(v, sizeof(v), verb, vlen);
	nl = strchr(r->text, '\n');
	tlen = nl != NULL ? (size_t)(nl - r->text) : strlen(r->text);
	if (tlen >= sizeof(text))
		tlen = sizeof(text) - 1;
	memcpy(text, r->text, tlen);
	text[tlen] = '\0';
	for (i = 0; i < tlen; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == '"' || text[i] == 0x7f)
			text[i] = '?';
	if (r->code == REPLY_POP3_ERR)
		log_info("session=%s event=refused cmd=%s reply=\"-ERR%s%s%s %s\"", session_id,
		    v[0] ? v : "(empty)", r->esc[0] ? " [" : "", r->esc, r->esc[0] ? "]" : "", text);
	else
		log_info("session=%s event=refused cmd=%s reply=\"%d%s%s %s\"", session_id,
		    v[0] ? v : "(empty)", r->code, r->esc[0] ? " " : "", r->esc, text);
}
