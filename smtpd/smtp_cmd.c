/*
 * smtp_cmd.c - the SMTP command table and its handlers (RFC 5321 4.1.1,
 * 4.1.4, 4.3.2; RFC 1870 SIZE; RFC 6152 8BITMIME; RFC 6531 SMTPUTF8;
 * RFC 3207 STARTTLS; RFC 4954 AUTH; RFC 2034 enhanced codes).
 *
 * Owns: which command is allowed in which state (the table), the teaching
 * 503 replies for commands out of sequence, listener policy (submission needs
 * AUTH before MAIL), the EHLO capability list (only what is implemented),
 * MAIL/RCPT parsing and the recipient policy (local user, alias, relay).
 * Never: writes to the connection: handlers fill a struct reply (HACKING.md C3);
 * never repeats a state check the table already makes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/statvfs.h>

#include "esc.h"
#include "log.h"
#include "monotime.h"
#include "sesslog.h"
#include "numparse.h"
#include "smtp_session.h"

#define ST(x)	(1u << (x))
/* MAIL is answered 452 4.3.1 when the store's file system has less than
 * this free, plus the SIZE= the client announced (as Postfix's queue_minfree):
 * a full disk is refused before the client sends the text. */
#define SMTP_STORE_MINFREE	((uint64_t)1 << 20)
#define ST_TALK	(ST(SMTP_S_INIT) | ST(SMTP_S_HELO) | ST(SMTP_S_MAIL) | ST(SMTP_S_RCPT))

/* Room for size more octets and SMTP_STORE_MINFREE on the file system of
 * dir? A statvfs() failure says yes: the commit is the real check. While the
 * disk has SMTP_STORE_FREE_SLACK more than that free, the figure is reused
 * for SMTP_STORE_FREE_MS (a system call per MAIL was 1% of the loop at 3,000
 * messages a second; no load writes the slack in that time); closer to full,
 * every MAIL reads it afresh. One loop thread calls this. */
#define SMTP_STORE_FREE_MS	100
#define SMTP_STORE_FREE_SLACK	((uint64_t)256 << 20)
static bool
store_has_room(const char *dir, uint64_t size)
{
	static const char *last_dir;
	static uint64_t free_bytes;
	static int64_t read_at;
	struct statvfs sv;
	int64_t ms;

	if (dir == NULL)
		return true;
	ms = monotime_ms();
	if (dir != last_dir || ms - read_at >= SMTP_STORE_FREE_MS ||
	    free_bytes < SMTP_STORE_MINFREE + SMTP_STORE_FREE_SLACK + size) {
		if (statvfs(dir, &sv) == -1)
			return true;
		last_dir = dir;
		read_at = ms;
		free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	}
	return free_bytes >= SMTP_STORE_MINFREE + size;
}

/* Is the store still the file it was (store_file_check)? Found so, it is
 * trusted for SMTP_STORE_CHECK_MS: the check only refuses early, before the
 * text is sent (its three stat()s were 3% of the loop at 5,000 messages a
 * second); every commit checks again and never acknowledges a message
 * written into a file that went. One loop thread calls this. */
#define SMTP_STORE_CHECK_MS	100
static bool
store_still_there(struct store *st)
{
	static const struct store *last_st;
	static int64_t ok_at;
	int64_t now = monotime_ms();

	if (st == last_st && now - ok_at < SMTP_STORE_CHECK_MS)
		return true;
	if (store_file_check(st) != 0)
		return false;
	last_st = st;
	ok_at = now;
	return true;
}

static cmd_handler cmd_helo, cmd_ehlo, cmd_mail, cmd_rcpt, cmd_data, cmd_rset, cmd_noop,
    cmd_quit, cmd_vrfy, cmd_expn, cmd_help, cmd_starttls, cmd_auth;

static const struct cmd_def smtp_cmds[] = {
	{ "HELO", ST_TALK, CMD_ARGS_REQUIRED, CMD_PRE_AUTH, cmd_helo,
	  "HELO <your-hostname>", "say hello (plain SMTP); e.g. HELO client.example" },
	{ "EHLO", ST_TALK, CMD_ARGS_REQUIRED, CMD_PRE_AUTH, cmd_ehlo,
	  "EHLO <your-hostname>", "say hello and list the extensions; e.g. EHLO client.example" },
	{ "MAIL", ST(SMTP_S_HELO), CMD_ARGS_REQUIRED, 0, cmd_mail,
	  "MAIL FROM:<address> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8]",
	  "start a message from a sender; e.g. MAIL FROM:<ana@lab.test>" },
	{ "RCPT", ST(SMTP_S_MAIL) | ST(SMTP_S_RCPT), CMD_ARGS_REQUIRED, 0, cmd_rcpt,
	  "RCPT TO:<address>", "add a recipient; e.g. RCPT TO:<bob@lab.test>" },
	{ "DATA", ST(SMTP_S_RCPT), CMD_ARGS_NONE, 0, cmd_data,
	  "DATA", "send the message text, ended by a line with only \".\"" },
	{ "RSET", ST_TALK, CMD_ARGS_NONE, CMD_PRE_AUTH, cmd_rset,
	  "RSET", "forget the current message and start again" },
	{ "NOOP", ST_TALK, CMD_ARGS_OPTIONAL, CMD_PRE_AUTH, cmd_noop,
	  "NOOP", "do nothing (check that the server is alive)" },
	{ "QUIT", ST_TALK | ST(SMTP_S_REFUSED), CMD_ARGS_NONE, CMD_PRE_AUTH,
	  cmd_quit, "QUIT", "end the session" },
	{ "VRFY", ST_TALK, CMD_ARGS_REQUIRED, CMD_PRE_AUTH, cmd_vrfy,
	  "VRFY <address>", "ask whether an address exists (answered with 252: try sending)" },
	{ "EXPN", ST_TALK, CMD_ARGS_REQUIRED, CMD_PRE_AUTH, cmd_expn,
	  "EXPN <list>", "expand a mailing list (not offered here)" },
	{ "HELP", ST_TALK, CMD_ARGS_OPTIONAL, CMD_PRE_AUTH, cmd_help,
	  "HELP [command]", "list the commands, or show one command's syntax; e.g. HELP MAIL" },
	{ "STARTTLS", ST(SMTP_S_INIT) | ST(SMTP_S_HELO), CMD_ARGS_NONE,
	  CMD_PRE_AUTH, cmd_starttls,
	  "STARTTLS", "switch this connection to TLS, then say EHLO again" },
	{ "AUTH", ST(SMTP_S_HELO), CMD_ARGS_REQUIRED, CMD_PRE_AUTH | CMD_NEED_TLS | CMD_SECRET,
	  cmd_auth, "AUTH PLAIN [base64] | AUTH LOGIN [base64-user]",
	  "log in; e.g. AUTH PLAIN followed by base64 of \\0user\\0password" },
};

/* Examples shown by HELP <verb>, by verb. */
static const struct {
	const char *verb;
	const char *example;
} smtp_examples[] = {
	{ "HELO", "HELO client.example" },
	{ "EHLO", "EHLO client.example" },
	{ "MAIL", "MAIL FROM:<ana@lab.test>" },
	{ "RCPT", "RCPT TO:<bob@lab.test>" },
	{ "DATA", "DATA, then the message, then a line with only ." },
	{ "VRFY", "VRFY bob" },
	{ "AUTH", "AUTH PLAIN AGFuYQBzZWNyZXQ=" },
};

static struct smtp_session *
S(void *p)
{
	return p;
}

/* ---- generic checks: the hooks of cmd_dispatch -------------------------- */

static void
wrong_state(void *session, const struct cmd_def *def, struct reply *r)
{
	struct smtp_session *s = S(session);
	const char *v = def->verb;

	if (s->state == SMTP_S_REFUSED)
		reply_set(r, 503, ESC_BAD_COMMAND, "No service on this connection; only QUIT");
	else if (s->state == SMTP_S_INIT)
		reply_set(r, 503, ESC_BAD_COMMAND, "Say hello first: EHLO <your-hostname> (or HELO)");
	else if (strcmp(v, "MAIL") == 0)
		reply_set(r, 503, ESC_BAD_COMMAND, "Nested MAIL command: finish this message or RSET first");
	else if (strcmp(v, "RCPT") == 0)
		reply_set(r, 503, ESC_BAD_COMMAND, "Need MAIL before RCPT");
	else if (strcmp(v, "DATA") == 0 && s->tx != NULL && s->tx->rcpt_tried > 0)
		reply_set(r, 554, ESC_BAD_COMMAND, "No valid recipients: DATA refused");
	else if (strcmp(v, "DATA") == 0)
		reply_set(r, 503, ESC_BAD_COMMAND, s->tx ? "Need RCPT before DATA" :
		    "Need MAIL and RCPT before DATA");
	else if (strcmp(v, "AUTH") == 0 || strcmp(v, "STARTTLS") == 0)
		reply_set(r, 503, ESC_BAD_COMMAND, "%s is not allowed during a mail transaction; RSET first", v);
	else
		reply_set(r, 503, ESC_BAD_COMMAND, "Bad sequence of commands");
}

static int
precheck(void *session, const struct cmd_def *def, struct reply *r)
{
	struct smtp_session *s = S(session);

	if ((def->flags & CMD_NEED_TLS) && !smtp_auth_allowed(s)) {
		reply_set(r, 538, ESC_NEEDS_TLS, "Encryption required: use STARTTLS first, then %s",
		    def->verb);
		return -1;
	}
	/* Submission (RFC 6409 4.3) and smtps: log in before sending. */
	if (!(def->flags & CMD_PRE_AUTH) && s->user[0] == '\0' &&
	    (s->role == ROLE_SUBMISSION || s->role == ROLE_SMTPS)) {
		reply_set(r, 530, ESC_SECURITY, "Authentication required: log in with AUTH before %s%s",
		    def->verb, s->tls || smtp_auth_allowed(s) ? "" : " (after STARTTLS)");
		return -1;
	}
	return 0;
}

const struct cmd_proto smtp_cmd_proto = {
	.kind = CMD_PROTO_SMTP,
	.table = smtp_cmds,
	.ntable = sizeof(smtp_cmds) / sizeof(smtp_cmds[0]),
	.wrong_state = wrong_state,
	.precheck = precheck,
};

/* ---- HELO / EHLO ---------------------------------------------------------- */

/* Keep the client's name printable and short for logs and Received:. */
static void
set_helo(struct smtp_session *s, const char *args)
{
	size_t i, o = 0;

	for (i = 0; args[i] != '\0' && args[i] != ' ' && o + 1 < sizeof(s->helo); i++) {
		unsigned char c = (unsigned char)args[i];
		s->helo[o++] = (c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != ';') ?
		    (char)c : '_';
	}
	s->helo[o] = '\0';
	/* RFC 5321 4.1.4: a new hello resets any transaction. */
	smtp_tx_free(&s->tx);
	smtp_enter_state(s, SMTP_S_HELO);
}

static void
cmd_helo(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);

	set_helo(s, args);
	s->esmtp = false;
	reply_set(r, 250, NULL, "%s Hello %s [%s], pleased to meet you", s->srv->cfg->hostname,
	    s->helo, s->peer);
}

static void
cmd_ehlo(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);
	const struct config *cfg = s->srv->cfg;

	set_helo(s, args);
	s->esmtp = true;
	/* RFC 2034: the EHLO reply carries no enhanced code. */
	reply_set(r, 250, NULL, "%s Hello %s [%s], session %s", cfg->hostname, s->helo, s->peer,
	    s->id);
	reply_add_line(r, "PIPELINING");
	reply_add_line(r, "SIZE %ld", cfg->limits.max_message_size);
	reply_add_line(r, "8BITMIME");
	reply_add_line(r, "ENHANCEDSTATUSCODES");
	reply_add_line(r, "SMTPUTF8");
	if (s->srv->ssl_ctx != NULL && !s->tls)
		reply_add_line(r, "STARTTLS");
	if (smtp_auth_allowed(s) && s->user[0] == '\0')
		reply_add_line(r, "AUTH PLAIN LOGIN");
	reply_add_line(r, "HELP");
}

/* ---- MAIL / RCPT ---------------------------------------------------------- */

/* "FROM:" or "TO:" (any case, spaces allowed after the colon). */
static const char *
skip_keyword(const char *args, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(args, kw, n) != 0)
		return NULL;
	args += n;
	while (*args == ' ')
		args++;
	return args;
}

/* RFC 5321 4.1.2: esmtp-keyword ["=" esmtp-value]; anything else after the
 * address is a typo (e.g. "<a@b>>"), not an unknown extension. */
static bool
valid_esmtp_param(const char *p)
{
	const char *eq = strchr(p, '=');
	size_t klen = eq ? (size_t)(eq - p) : strlen(p);

	if (klen == 0 || !isalnum((unsigned char)p[0]))
		return false;
	for (size_t i = 1; i < klen; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '-')
			return false;
	if (eq != NULL) {
		if (eq[1] == '\0')
			return false;
		for (const unsigned char *v = (const unsigned char *)eq + 1; *v; v++)
			if (*v < 33 || *v > 126 || *v == '=')
				return false;
	}
	return true;
}

bool
smtp_data_size_ok(const struct smtp_session *s, size_t already, size_t more)
{
	size_t max = (size_t)s->srv->cfg->limits.max_message_size;

	return already <= max && more <= max - already;
}

/*
 * Is domain served here? 1 yes, 0 no, -1 the store cannot tell now (busy,
 * I/O): the caller answers 451 then, never a permanent refusal nor a local
 * recipient sent to the relay queue.
 */
static int
domain_is_local(struct smtp_session *s, const char *domain)
{
	int rc;

	/* The server's own name is local, as Postfix's mydestination has
	 * $myhostname: user@mail.lab.test reaches the account user. */
	if (strcasecmp(domain, s->srv->cfg->hostname) == 0)
		return 1;
	rc = store_domain_lookup(s->srv->store, domain);

	if (rc == -1)
		log_warnx("session=%s event=lookup-failed error=\"%s\"", s->id,
		    store_errmsg(s->srv->store));
	return rc;
}

/* An authenticated user may only send as an address that maps to them:
 * 1 yes, 0 no, -1 the store cannot tell now. */
static int
sender_is_own(struct smtp_session *s, const struct mailaddr *a)
{
	char local[MAILADDR_LOCAL_MAX * 2 + 3], account[STORE_NAME_MAX + 1];
	int rc;

	if (mailaddr_is_null(a))
		return 1;
	if (a->domain[0] == '\0' || a->literal)
		return 0;
	if ((rc = domain_is_local(s, a->domain)) != 1)
		return rc;
	mailaddr_unquoted_local(a, local, sizeof(local));
	rc = store_resolve(s->srv->store, local, a->domain, account, sizeof(account));
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return -1;
	return strcasecmp(account, s->user) == 0;
}

static void
cmd_mail(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);
	struct smtp_tx *tx;
	struct mailaddr from;
	const char *p, *rest;
	char err[128], *param, *save = NULL;
	bool smtputf8 = false, body8 = false;
	uint64_t size = 0;
	int own = 1, rc;

	if ((p = skip_keyword(args, "FROM:")) == NULL) {
		reply_set(r, 501, ESC_BAD_ARGS, "Syntax: MAIL FROM:<address> (e.g. MAIL FROM:<ana@lab.test>)");
		return;
	}
	if (mailaddr_parse_path(p, &from, true, &rest, err, sizeof(err)) == -1) {
		reply_set(r, 501, ESC_BAD_SENDER, "Bad sender address: %s. Syntax: MAIL FROM:<address>", err);
		return;
	}
	/* ESMTP parameters (RFC 5321 4.1.2 Mail-parameters). */
	for (param = strtok_r((char *)rest, " ", &save); param != NULL;
	    param = strtok_r(NULL, " ", &save)) {
		if (!valid_esmtp_param(param)) {
			reply_set(r, 501, ESC_BAD_ARGS, "Unexpected '%.40s' after the address. Syntax: "
			    "MAIL FROM:<address> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8]", param);
			return;
		}
		if (strncasecmp(param, "SIZE=", 5) == 0) {
			/* RFC 1870 6: a size past what we take is a 552, however
			 * many digits it has; it never wraps to a small one. */
			rc = numparse_u64z(param + 5, SIZE_MAX, &size);
			if (rc == NUMPARSE_SYNTAX) {
				reply_set(r, 501, ESC_BAD_ARGS, "Bad SIZE parameter: SIZE=<octets>");
				return;
			}
			if (rc == NUMPARSE_RANGE || !smtp_data_size_ok(s, 0, (size_t)size)) {
				reply_set(r, 552, ESC_TOO_BIG, "Message size exceeds fixed maximum message "
				    "size of %ld octets", s->srv->cfg->limits.max_message_size);
				return;
			}
		} else if (strcasecmp(param, "BODY=8BITMIME") == 0) {
			body8 = true;
		} else if (strcasecmp(param, "BODY=7BIT") == 0) {
			body8 = false;
		} else if (strcasecmp(param, "SMTPUTF8") == 0) {
			smtputf8 = true;
		} else if (strncasecmp(param, "AUTH=", 5) == 0) {
			/* RFC 4954 5: accepted and not passed on. */
		} else {
			reply_set(r, 555, ESC_BAD_ARGS, "Unsupported MAIL parameter '%.40s' "
			    "(supported: SIZE, BODY, SMTPUTF8, AUTH)", param);
			return;
		}
	}
	if (from.utf8 && !smtputf8) {
		reply_set(r, 553, ESC_NEEDS_UTF8, "Non-ASCII sender address needs the SMTPUTF8 parameter");
		return;
	}
	if (s->user[0] != '\0' && (own = sender_is_own(s, &from)) == -1) {
		reply_set(r, 451, ESC_SYSTEM_TEMP, "Cannot check the sender now (temporary lookup failure); "
		    "try again later");
		return;
	}
	if (s->user[0] != '\0' && own == 0) {
		char a[STORE_ADDR_MAX + 1];
		mailaddr_format(&from, a, sizeof(a));
		reply_set(r, 553, ESC_NOT_AUTHORIZED, "Sender <%s> is not yours: logged in as %s, send from "
		    "your own address or one of your aliases", a, s->user);
		return;
	}
	if (!store_has_room(s->srv->spool_dir, size)) {
		log_warnx("session=%s event=disk-full dir=%s", s->id, s->srv->spool_dir);
		reply_set(r, 452, ESC_SYSTEM_FULL, "Insufficient system storage: the mail store's disk "
		    "is full; try again later");
		return;
	}
	if (!store_still_there(s->srv->store)) {
		/* The store was deleted or replaced (logged once by the store):
		 * nothing could be kept, so refuse before the text is sent. */
		log_warnx("session=%s status=refused reason=store-moved", s->id);
		reply_set(r, 451, ESC_SYSTEM_TEMP, "The mail store is unavailable (its file was "
		    "deleted or replaced); try again later");
		return;
	}
	if ((tx = calloc(1, sizeof(*tx))) == NULL) {
		reply_set(r, 451, ESC_SYSTEM_TEMP, "Out of memory; try again later");
		return;
	}
	tx->from = from;
	tx->inflight = &s->srv->inflight;
	mailaddr_format(&from, tx->from_str, sizeof(tx->from_str));
	tx->smtputf8 = smtputf8;
	tx->body8bit = body8;
	buf_init(&tx->rcpts, (size_t)s->srv->cfg->limits.max_recipients * (STORE_ADDR_MAX + 3) + 16);
	if ((tx->d = store_delivery_new(tx->from_str, s->id)) == NULL ||
	    store_delivery_spool(tx->d, s->srv->spool_dir) == -1) {
		smtp_tx_free(&tx);
		reply_set(r, 451, ESC_SYSTEM_TEMP, "Out of memory; try again later");
		return;
	}
	s->tx = tx;
	smtp_enter_state(s, SMTP_S_MAIL);
	reply_set(r, 250, ESC_SENDER_OK, "Sender <%s> ok", tx->from_str);
}

/* store_resolve_all() callback: each account of a recipient joins the delivery. */
struct rcpt_add {
	struct smtp_session	*s;
	int			 failed;
};

static void
rcpt_add_one(void *arg, const char *account, const char *unused)
{
	struct rcpt_add *add = arg;

	(void)unused;
	if (store_delivery_add_rcpt(add->s->tx->d, account) == -1)
		add->failed = 1;
	/* the session takes part in account's mail (webd, transcript list) */
	sesslog_account(add->s->srv->sesslog, add->s->id, "smtp", account);
}

static void
cmd_rcpt(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);
	struct smtp_tx *tx = s->tx;
	struct store *st = s->srv->store;
	struct mailaddr to;
	const char *p, *rest;
	char err[128], addr[STORE_ADDR_MAX + 1], local[MAILADDR_LOCAL_MAX * 2 + 3];
	struct rcpt_add add = { s, 0 };
	int rc = 0, local_domain;
	bool snap;

	tx->rcpt_tried++;
	if ((p = skip_keyword(args, "TO:")) == NULL) {
		reply_set(r, 501, ESC_BAD_ARGS, "Syntax: RCPT TO:<address> (e.g. RCPT TO:<bob@lab.test>)");
		return;
	}
	if (mailaddr_parse_path(p, &to, tx->smtputf8, &rest, err, sizeof(err)) == -1) {
		reply_set(r, 501, ESC_BAD_ADDR_SYNTAX, "Bad recipient address: %s. Syntax: RCPT TO:<address>", err);
		return;
	}
	while (*rest == ' ')
		rest++;
	if (*rest != '\0') {
		char *param, *save = NULL;
		for (param = strtok_r((char *)rest, " ", &save); param != NULL;
		    param = strtok_r(NULL, " ", &save))
			if (!valid_esmtp_param(param)) {
				reply_set(r, 501, ESC_BAD_ARGS, "Unexpected '%.40s' after the address. "
				    "Syntax: RCPT TO:<address>", param);
				return;
			}
		reply_set(r, 555, ESC_BAD_ARGS, "Unsupported RCPT parameter '%.40s' (none is supported)",
		    rest);
		return;
	}
	if (mailaddr_is_null(&to)) {
		reply_set(r, 501, ESC_BAD_ADDR_SYNTAX, "The null address <> cannot receive mail");
		return;
	}
	/* The one place max_recipients is enforced (RFC 5321 4.5.3.1.8). */
	if ((long)tx->nrcpt >= s->srv->cfg->limits.max_recipients) {
		tx->overshoot++;
		reply_set(r, 452, ESC_TOO_MANY_RCPTS, "Too many recipients (at most %ld per message); "
		    "send the rest in another message", s->srv->cfg->limits.max_recipients);
		return;
	}
	mailaddr_format(&to, addr, sizeof(addr));
	mailaddr_unquoted_local(&to, local, sizeof(local));
	/* The domain and the recipient are read in one snapshot. An alias
	 * may lead to several accounts (a class list). */
	snap = store_snapshot_begin(st);
	local_domain = to.domain[0] == '\0' ? 1 : to.literal ? 0 : domain_is_local(s, to.domain);
	if (local_domain == 1)
		rc = store_resolve_all(st, local, to.domain, rcpt_add_one, &add);
	store_snapshot_end(st, snap);
	if (local_domain == -1) {
		reply_set(r, 451, ESC_SYSTEM_TEMP, "<%s>: temporary lookup failure; try again later", addr);
		return;
	}
	if (local_domain == 1) {
		if (rc == STORE_NOTFOUND) {
			reply_set(r, 550, ESC_BAD_MAILBOX, "<%s>: no such user here", addr);
			return;
		}
		if (rc < 0) {
			log_warnx("session=%s event=lookup-failed error=\"%s\"", s->id, store_errmsg(st));
			reply_set(r, 451, ESC_SYSTEM_TEMP, "<%s>: temporary lookup failure; try again later", addr);
			return;
		}
		if (add.failed) {
			reply_set(r, 451, ESC_SYSTEM_TEMP, "Out of memory; try again later");
			return;
		}
	} else {
		/* Relay policy (RFC 5321 3.6.2; no open relay, ever). */
		if (s->user[0] == '\0' && !s->trusted) {
			reply_set(r, 554, ESC_NOT_AUTHORIZED, "<%s>: relay denied: this server only accepts mail "
			    "for its own domains unless you log in (AUTH)", addr);
			return;
		}
		if (store_delivery_add_remote(tx->d, addr) == -1) {
			reply_set(r, 451, ESC_SYSTEM_TEMP, "Out of memory; try again later");
			return;
		}
		tx->nremote++;
	}
	if (tx->nrcpt == 0)
		snprintf(tx->first_rcpt, sizeof(tx->first_rcpt), "%s", addr);
	(void)buf_printf(&tx->rcpts, "%s<%s>", tx->nrcpt ? "," : "", addr);
	tx->nrcpt++;
	smtp_enter_state(s, SMTP_S_RCPT);
	reply_set(r, 250, ESC_RCPT_OK, "Recipient <%s> ok%s", addr, local_domain ? "" : " (will relay)");
}

static void
cmd_data(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);

	(void)args;
	/* How the DATA line itself ended decides the end-of-data rule. */
	smtp_data_begin(s, s->last_eol == EOL_LF, r);
}

/* ---- the small ones -------------------------------------------------------- */

static void
cmd_rset(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);

	(void)args;
	if (s->tx != NULL)
		reply_set(r, 250, ESC_OK, "Reset: sender and recipients cleared; start again "
		    "with MAIL FROM");
	else
		reply_set(r, 250, ESC_OK, "Reset: no message in progress");
	smtp_tx_free(&s->tx);
	if (s->state != SMTP_S_INIT)
		smtp_enter_state(s, SMTP_S_HELO);
}

static void
cmd_noop(void *session, char *args, struct reply *r)
{
	(void)session;
	(void)args;
	reply_set(r, 250, ESC_OK, "OK");
}

static void
cmd_quit(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);

	(void)args;
	reply_set(r, 221, ESC_OK, "%s closing connection; bye", s->srv->cfg->hostname);
	r->flags |= REPLY_CLOSE;
}

static void
cmd_vrfy(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);

	(void)args;
	switch (s->srv->cfg->vrfy_code) {
	case 550:
		reply_set(r, 550, ESC_NOT_AUTHORIZED, "VRFY is disabled here; send a message instead");
		break;
	case 502:
		reply_set(r, 502, ESC_BAD_COMMAND, "VRFY is not offered here");
		break;
	default:
		/* RFC 5321 3.5.3: 252 says "I will try". */
		reply_set(r, 252, ESC_PROTO_OK, "Cannot VRFY the user, but will accept the message "
		    "and attempt delivery");
		break;
	}
}

static void
cmd_expn(void *session, char *args, struct reply *r)
{
	(void)session;
	(void)args;
	reply_set(r, 502, ESC_BAD_COMMAND, "EXPN is not offered here (lists are not disclosed)");
}

static void
cmd_help(void *session, char *args, struct reply *r)
{
	const struct cmd_def *d;
	size_t i;

	(void)session;
	if (*args != '\0') {
		d = cmd_lookup(&smtp_cmd_proto, args, strcspn(args, " "));
		if (d == NULL) {
			reply_set(r, 504, ESC_BAD_COMMAND, "No help for '%.40s'; HELP lists the commands", args);
			return;
		}
		reply_set(r, 214, ESC_OK, "%s - %s", d->verb, d->help);
		reply_add_line(r, "Syntax: %s", d->syntax);
		for (i = 0; i < sizeof(smtp_examples) / sizeof(smtp_examples[0]); i++)
			if (strcmp(smtp_examples[i].verb, d->verb) == 0)
				reply_add_line(r, "Example: %s", smtp_examples[i].example);
		return;
	}
	reply_set(r, 214, ESC_OK, "correio smtpd commands (HELP <command> for details):");
	for (i = 0; i < smtp_cmd_proto.ntable; i++)
		reply_add_line(r, "%-8s %s", smtp_cmds[i].verb, smtp_cmds[i].help);
	reply_add_line(r, "A session: EHLO, MAIL FROM:<you>, RCPT TO:<them>, DATA, text, \".\", QUIT");
}

static void
cmd_starttls(void *session, char *args, struct reply *r)
{
	struct smtp_session *s = S(session);

	(void)args;
	if (s->tls) {
		reply_set(r, 503, ESC_BAD_COMMAND, "TLS is already active");
		return;
	}
	if (s->srv->ssl_ctx == NULL) {
		reply_set(r, 454, ESC_SECURITY_TEMP, "TLS not available: no certificate is configured");
		return;
	}
	s->starttls = true;	/* the session starts the handshake after this reply */
	reply_set(r, 220, ESC_OK, "Ready to start TLS");
}

static void
cmd_auth(void *session, char *args, struct reply *r)
{
	smtp_auth_start(S(session), args, r);
}
