/*
 * cmdtab.h - declarative command tables and the one dispatcher.
 *
 * Each protocol has a table of struct cmd_def: verb, the states where it is
 * allowed, its argument rule, flags and handler. cmd_dispatch() splits the
 * verb from the line, finds it (case-insensitively) and performs the generic
 * checks, answering 500 / 503 / 501 (SMTP) or -ERR (POP3) itself. A handler
 * is called only in an allowed state with an argument that fits its rule, so
 * it never repeats those checks.
 */
#ifndef CORREIO_CMDTAB_H
#define CORREIO_CMDTAB_H

#include <stddef.h>
#include "reply.h"

enum cmd_args {
	CMD_ARGS_NONE,		/* any argument is a syntax error */
	CMD_ARGS_OPTIONAL,
	CMD_ARGS_REQUIRED
};

/* struct cmd_def.flags */
#define CMD_SECRET		0x01	/* arguments are masked in transcripts and logs */
#define CMD_NEED_TLS		0x04	/* refused before TLS (policy checked by the protocol hook) */
#define CMD_PRE_AUTH		0x08	/* allowed before authentication on submission listeners */

struct reply;
typedef void cmd_handler(void *session, char *args, struct reply *r);

struct cmd_def {
	const char	*verb;		/* upper case in the table; matched case-insensitively */
	unsigned	 states;	/* bit (1u << state) for each state where it is allowed */
	enum cmd_args	 args;
	unsigned	 flags;
	cmd_handler	*handler;
	const char	*syntax;	/* e.g. "MAIL FROM:<address> [SIZE=n]"; used for 501 and HELP */
	const char	*help;		/* one-line hint for HELP */
};

enum cmd_proto_kind { CMD_PROTO_SMTP, CMD_PROTO_POP3 };

struct cmd_proto {
	enum cmd_proto_kind	 kind;
	const struct cmd_def	*table;
	size_t			 ntable;
	/* Called instead of a handler when the verb is known but not allowed in
	 * the current state; fills r with a teaching 503 / -ERR. May be NULL. */
	void	(*wrong_state)(void *session, const struct cmd_def *def, struct reply *r);
	/* Called before the handler; may refuse the command (e.g. TLS or AUTH
	 * required) by filling r and returning -1. May be NULL. */
	int	(*precheck)(void *session, const struct cmd_def *def, struct reply *r);
};

/* Find a verb (case-insensitive); NULL when unknown. */
const struct cmd_def *cmd_lookup(const struct cmd_proto *p, const char *verb, size_t len);
/*
 * Dispatch one command line (NUL-terminated, without line ending; modified in
 * place). Fills r, either itself (unknown verb, wrong state, bad arguments) or
 * through the handler. *def_r (may be NULL) receives the matched definition,
 * or NULL. Always fills r.
 */
void	cmd_dispatch(const struct cmd_proto *p, void *session, unsigned state,
	    char *line, struct reply *r, const struct cmd_def **def_r);
/*
 * When r refuses the command (REPLY_ERROR: a 4xx/5xx or -ERR), log it at the
 * default level, so an administrator sees relay denials, unknown users,
 * syntax and sequence errors:
 *   session=ID event=refused cmd=RCPT reply="554 5.7.1 <x@y>: relay denied..."
 * verb is the command's first word as typed (vlen octets; shown printable and
 * cut at CMD_LOG_VERB_MAX). The reply text carries no secret.
 */
#define CMD_LOG_VERB_MAX	16
#define CMD_LOG_REPLY_MAX	160
void	cmd_log_refused(const char *session_id, const char *verb, size_t vlen,
	    const struct reply *r);

#endif
