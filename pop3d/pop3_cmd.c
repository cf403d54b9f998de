/*
 * pop3_cmd.c - the POP3 command table, and the handlers of the TRANSACTION
 * state and of either state: RFC 1939 5-6 (QUIT, STAT, LIST, RETR, DELE,
 * NOOP, RSET, TOP, UIDL), RFC 2449 CAPA and response codes, RFC 3206
 * [SYS/TEMP] [SYS/PERM], plus HELP for people typing by hand. The
 * AUTHORIZATION handlers (USER, PASS, AUTH, APOP, STLS) are in pop3_login.c.
 *
 * Owns: what each command means. The dispatcher (common/cmdtab.c) has
 * already checked the state and the argument rule; handlers fill a struct
 * reply and return (HACKING.md C2, C3). Never: writes to the output, or
 * deletes anything before QUIT in UPDATE state.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "numparse.h"
#include "pop3_session.h"

#define S_AUTH	(1u << POP3_AUTHORIZATION)
#define S_TRANS	(1u << POP3_TRANSACTION)

/* ---- helpers -------------------------------------------------------------- */

static void
stat_totals(const struct pop3_session *s, size_t *n_r, int64_t *octets_r)
{
	size_t i, n = 0;
	int64_t o = 0;

	for (i = 0; i < s->nmsgs; i++)
		if (!pop3_msg_is_deleted(s, i)) {
			n++;
			o += s->msgs[i].size;
		}
	*n_r = n;
	*octets_r = o;
}

/*
 * Message number argument (RFC 1939 5: "msg"). Fills r with an -ERR and
 * returns false when it is not a number, out of range or (unless
 * allow_deleted) marked as deleted.
 */
static bool
msg_arg(struct pop3_session *s, const char *p, size_t len, size_t *idx_r, struct reply *r)
{
	uint64_t v = 0;
	int rc = numparse_u64(p, len, SIZE_MAX, &v);

	if (rc == NUMPARSE_SYNTAX) {
		reply_set(r, REPLY_POP3_ERR, NULL,
		    "Invalid message number '%.*s': use a number from LIST", (int)(len > 20 ? 20 : len), p);
		return false;
	}
	/* out of range (never wrapped: 2^64 + 1 is not message 1) */
	if (rc == NUMPARSE_RANGE || v == 0 || v > s->nmsgs) {
		reply_set(r, REPLY_POP3_ERR, NULL, "No such message (the mailbox has %zu %s)",
		    s->nmsgs, s->nmsgs == 1 ? "message" : "messages");
		return false;
	}
	if (pop3_msg_is_deleted(s, (size_t)v - 1)) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Message %llu is deleted (RSET undeletes)",
		    (unsigned long long)v);
		return false;
	}
	*idx_r = (size_t)v - 1;
	return true;
}

/* Split "a b" into two words; false unless there are exactly `want` words. */
static size_t
split_words(char *args, char **w, size_t maxw)
{
	size_t n = 0;
	char *p = args;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (n == maxw)
			return maxw + 1;
		w[n++] = p;
		while (*p != '\0' && *p != ' ')
			p++;
		if (*p == ' ')
			*p++ = '\0';
	}
	return n;
}

/* ---- either state ---------------------------------------------------------- */

static void
cmd_capa(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	size_t len;

	(void)args;
	reply_set(r, REPLY_POP3_OK, NULL, "Capability list follows\nTOP\nUIDL\nRESP-CODES\n"
	    "AUTH-RESP-CODE\nPIPELINING");
	if (s->state == POP3_AUTHORIZATION) {
		if (pop3_plaintext_ok(s))
			reply_add_line(r, "USER");
		if (pop3_login_mechanisms(s) != NULL)
			reply_add_line(r, "SASL %s", pop3_login_mechanisms(s));
		if (s->srv->tls_available && !s->tls)
			reply_add_line(r, "STLS");
	}
	len = strlen(r->text);
	snprintf(r->text + len, sizeof(r->text) - len, "\nIMPLEMENTATION %s", POP3_IMPLEMENTATION);
	r->flags |= POP3_REPLY_MULTI;
}

static void
cmd_noop(void *arg, char *args, struct reply *r)
{
	(void)arg;
	(void)args;
	reply_set(r, REPLY_POP3_OK, NULL, "%s", "");
}

static void
cmd_help(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	const struct cmd_def *d;
	size_t i;

	if (args[0] != '\0') {
		d = cmd_lookup(&pop3_proto, args, strlen(args));
		if (d == NULL) {
			reply_set(r, REPLY_POP3_ERR, NULL, "No such command; HELP lists them");
			return;
		}
		reply_set(r, REPLY_POP3_OK, NULL, "%s - %s%s", d->syntax, d->help,
		    (d->states & (1u << s->state)) ? "" : " (not valid now)");
		return;
	}
	reply_set(r, REPLY_POP3_OK, NULL, "Commands valid now (state %s):",
	    pop3_strstate(s->state));
	for (i = 0; i < pop3_proto.ntable; i++) {
		d = &pop3_proto.table[i];
		if (!(d->states & (1u << s->state)) || d->help == NULL)
			continue;
		if (d->handler == pop3_login_stls && (s->tls || !s->srv->tls_available))
			continue;	/* not offered now */
		reply_add_line(r, "  %-22s %s", d->syntax, d->help);
	}
	r->flags |= POP3_REPLY_MULTI;
}

/* QUIT's job is done (on the loop thread): log, and reply when the session
 * is still there. */
static void
quit_finish(struct pop3_work *w, struct pop3_session *s, struct reply *r)
{
	size_t n = w->rc == 0 ? w->nids : 0;

	if (w->reserve_released)
		log_warnx("session=%s event=reserve-released reason=disk-full result=%s",
		    w->sid, w->rc == 0 ? "deleted" : "failed");
	if (w->rc == -1) {
		log_warnx("session=%s event=store-failed op=expunge error=\"%s\"", w->sid,
		    w->error);
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP",
		    "Could not remove the deleted messages; nothing was deleted");
	} else {
		/* Space came back: the reserve again (only when there is room twice over). */
		if (w->reserve_made)
			log_info("session=%s event=reserve-made size=%lld", w->sid,
			    (long long)STORE_RESERVE_SIZE);
		reply_set(r, REPLY_POP3_OK, NULL, "correio POP3 server signing off (%zu %s deleted)",
		    n, n == 1 ? "message" : "messages");
	}
	r->flags |= REPLY_CLOSE;
	if (w->rc == -1)	/* the job left the release for after the reply */
		pop3_store_release(w->srv, w->account, w->owner, w->sid);
	else if (w->unlock_rc == -1) {
		/* Remembered and retried until it succeeds (pop3_store.c). */
		log_warnx("session=%s event=unlock-failed user=%s error=\"%s\"", w->sid,
		    w->account, w->unlock_error);
		pop3_store_release_failed(w->srv, w->account, w->owner);
	}
	if (s != NULL) {
		s->ndele = (unsigned)n;
		log_info("session=%s event=logout user=%s reason=quit retr=%u dele=%u bytes=%lld",
		    s->id, s->account, s->nretr, s->ndele, (long long)s->bytes);
	} else
		log_info("session=%s event=logout user=%s reason=quit dele=%zu note=\"client gone "
		    "before the reply\"", w->sid, w->account, n);
}

/* Back on the loop thread after QUIT's job. */
static void
quit_done(struct authpool_job *job)
{
	struct pop3_work *w = (struct pop3_work *)job;
	struct pop3_session *s = job->arg;
	struct reply r;

	if (s != NULL)
		s->quit_job = NULL;
	quit_finish(w, s, &r);
	if (s != NULL)
		pop3_session_async_done(s, &r);
	pop3_work_free(&w);
}

static void
cmd_quit(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	struct pop3_work *w;
	size_t i;

	(void)args;
	s->close_why = "quit";		/* for the log and the session log */
	if (s->state == POP3_AUTHORIZATION) {
		reply_set(r, REPLY_POP3_OK, NULL, "correio POP3 server signing off");
		r->flags |= REPLY_CLOSE;
		return;
	}
	/* RFC 1939 6: the UPDATE state, entered only through QUIT. */
	pop3_enter_state(s, POP3_UPDATE);
	if ((w = pop3_work_new(s, POP3_WORK_QUIT)) == NULL ||
	    (s->ndeleted > 0 && (w->ids = calloc(s->ndeleted, sizeof(*w->ids))) == NULL)) {
		pop3_work_free(&w);
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Out of memory; nothing was deleted");
		r->flags |= REPLY_CLOSE;
		log_info("session=%s event=logout user=%s reason=quit retr=%u dele=0 bytes=%lld",
		    s->id, s->account, s->nretr, (long long)s->bytes);
		return;		/* the session's close releases the lock */
	}
	for (i = 0; i < s->nmsgs; i++)
		if (pop3_msg_is_deleted(s, i))
			w->ids[w->nids++] = s->msgs[i].entry_id;
	/* The expunge and the release are writes: a pool thread does them
	 * (pop3_store.c), and the job owns the lock from now on. */
	s->locked = false;
	w->job.done = quit_done;
	if (pop3_work_run(s->srv, w)) {
		s->quit_job = w;
		reply_set(r, REPLY_POP3_OK, NULL, "expunging");
		r->flags |= REPLY_NONE;
		return;
	}
	quit_finish(w, s, r);
	pop3_work_free(&w);
}

/* ---- TRANSACTION ----------------------------------------------------------- */

static void
cmd_stat(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	size_t n;
	int64_t o;

	(void)args;
	stat_totals(s, &n, &o);
	reply_set(r, REPLY_POP3_OK, NULL, "%zu %lld", n, (long long)o);
}

static void
start_stream(struct pop3_session *s, enum pop3_stream_kind kind, size_t idx, long lines,
    struct reply *r)
{
	int rc = pop3_stream_start(s, kind, idx, lines);

	if (rc == STORE_NOTFOUND) {
		reply_set(r, REPLY_POP3_ERR, "SYS/PERM", "Message %zu cannot be found in the store",
		    idx + 1);
	} else if (rc != 0) {
		log_warnx("session=%s event=store-failed op=read error=\"%s\"", s->id,
		    store_errmsg(s->srv->store));
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Cannot read the message now; try again later");
	}
}

static void
cmd_list_uidl(struct pop3_session *s, char *args, struct reply *r, bool uidl)
{
	char *w[2];
	size_t idx, n;
	int64_t o;

	n = split_words(args, w, 1);
	if (n > 1) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Syntax: %s [msg]", uidl ? "UIDL" : "LIST");
		return;
	}
	if (n == 1) {
		if (!msg_arg(s, w[0], strlen(w[0]), &idx, r))
			return;
		if (uidl)
			reply_set(r, REPLY_POP3_OK, NULL, "%zu %s", idx + 1, s->msgs[idx].uidl);
		else
			reply_set(r, REPLY_POP3_OK, NULL, "%zu %lld", idx + 1,
			    (long long)s->msgs[idx].size);
		return;
	}
	start_stream(s, uidl ? POP3_STREAM_UIDL : POP3_STREAM_LIST, 0, 0, r);
	if (s->stream == NULL)
		return;
	stat_totals(s, &n, &o);
	if (uidl)
		reply_set(r, REPLY_POP3_OK, NULL, "Unique-id listing follows");
	else
		reply_set(r, REPLY_POP3_OK, NULL, "%zu %s (%lld octets)", n,
		    n == 1 ? "message" : "messages", (long long)o);
}

static void
cmd_list(void *arg, char *args, struct reply *r)
{
	cmd_list_uidl(arg, args, r, false);
}

static void
cmd_uidl(void *arg, char *args, struct reply *r)
{
	cmd_list_uidl(arg, args, r, true);
}

static void
cmd_retr(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	size_t idx;

	if (!msg_arg(s, args, strlen(args), &idx, r))
		return;
	start_stream(s, POP3_STREAM_RETR, idx, 0, r);
	if (s->stream == NULL)
		return;
	s->nretr++;
	reply_set(r, REPLY_POP3_OK, NULL, "%lld octets", (long long)s->msgs[idx].size);
}

static void
cmd_top(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	uint64_t lines;
	char *w[3];
	size_t idx;

	if (split_words(args, w, 2) != 2) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Syntax: TOP msg lines");
		return;
	}
	if (!msg_arg(s, w[0], strlen(w[0]), &idx, r))
		return;
	switch (numparse_u64z(w[1], LONG_MAX, &lines)) {
	case NUMPARSE_OK:
		break;
	case NUMPARSE_RANGE:
		lines = LONG_MAX;	/* more lines than any message has: all of it */
		break;
	default:
		reply_set(r, REPLY_POP3_ERR, NULL,
		    "Invalid line count: TOP msg lines, where lines is a number >= 0");
		return;
	}
	start_stream(s, POP3_STREAM_TOP, idx, (long)lines, r);
	if (s->stream == NULL)
		return;
	reply_set(r, REPLY_POP3_OK, NULL, "Top of message %zu follows", idx + 1);
}

static void
cmd_dele(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	size_t idx;

	if (!msg_arg(s, args, strlen(args), &idx, r))
		return;
	s->deleted[idx / 8] |= (unsigned char)(1u << (idx % 8));
	s->ndeleted++;
	s->deleted_octets += s->msgs[idx].size;
	reply_set(r, REPLY_POP3_OK, NULL, "Message %zu marked for deletion at QUIT", idx + 1);
}

static void
cmd_rset(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	size_t n;
	int64_t o;

	(void)args;
	memset(s->deleted, 0, s->nmsgs / 8 + 1);
	s->ndeleted = 0;
	s->deleted_octets = 0;
	stat_totals(s, &n, &o);
	reply_set(r, REPLY_POP3_OK, NULL, "Maildrop has %zu %s (%lld octets)", n,
	    n == 1 ? "message" : "messages", (long long)o);
}

/* ---- the table -------------------------------------------------------------- */

static const struct cmd_def pop3_cmds[] = {
	{ "USER", S_AUTH, CMD_ARGS_REQUIRED, CMD_NEED_TLS, pop3_login_user,
	  "USER name", "give your user name (then PASS)" },
	{ "PASS", S_AUTH, CMD_ARGS_REQUIRED, CMD_SECRET | CMD_NEED_TLS, pop3_login_pass,
	  "PASS password", "give your password after USER" },
	{ "AUTH", S_AUTH, CMD_ARGS_OPTIONAL, CMD_SECRET, pop3_login_auth,
	  "AUTH [PLAIN|LOGIN [response]]", "log in with SASL (RFC 5034); AUTH alone lists mechanisms" },
	{ "APOP", S_AUTH, CMD_ARGS_OPTIONAL, CMD_SECRET, pop3_login_apop,
	  "APOP name digest", NULL },
	{ "STLS", S_AUTH, CMD_ARGS_NONE, 0, pop3_login_stls,
	  "STLS", "start TLS on this connection (RFC 2595)" },
	{ "CAPA", S_AUTH | S_TRANS, CMD_ARGS_NONE, 0, cmd_capa,
	  "CAPA", "list the capabilities (RFC 2449)" },
	{ "STAT", S_TRANS, CMD_ARGS_NONE, 0, cmd_stat,
	  "STAT", "number of messages and their total size" },
	{ "LIST", S_TRANS, CMD_ARGS_OPTIONAL, 0, cmd_list,
	  "LIST [msg]", "size of each message, or of one" },
	{ "UIDL", S_TRANS, CMD_ARGS_OPTIONAL, 0, cmd_uidl,
	  "UIDL [msg]", "unique id of each message, or of one" },
	{ "RETR", S_TRANS, CMD_ARGS_REQUIRED, 0, cmd_retr,
	  "RETR msg", "send a whole message" },
	{ "TOP", S_TRANS, CMD_ARGS_REQUIRED, 0, cmd_top,
	  "TOP msg lines", "send the header and the first lines of the body" },
	{ "DELE", S_TRANS, CMD_ARGS_REQUIRED, 0, cmd_dele,
	  "DELE msg", "mark a message for deletion at QUIT" },
	{ "RSET", S_TRANS, CMD_ARGS_NONE, 0, cmd_rset,
	  "RSET", "unmark every message marked with DELE" },
	{ "NOOP", S_AUTH | S_TRANS, CMD_ARGS_NONE, 0, cmd_noop,
	  "NOOP", "do nothing (keeps the session alive)" },
	{ "HELP", S_AUTH | S_TRANS, CMD_ARGS_OPTIONAL, 0, cmd_help,
	  "HELP [command]", "this list" },
	{ "QUIT", S_AUTH | S_TRANS, CMD_ARGS_NONE, 0, cmd_quit,
	  "QUIT", "end the session; deletions happen now" },
};

static void
pop3_wrong_state(void *arg, const struct cmd_def *def, struct reply *r)
{
	struct pop3_session *s = arg;

	if (s->state == POP3_AUTHORIZATION)
		reply_set(r, REPLY_POP3_ERR, NULL, "%s is valid only after logging in "
		    "(USER and PASS, or AUTH)", def->verb);
	else
		reply_set(r, REPLY_POP3_ERR, NULL, "%s is not valid now: already logged in as %s",
		    def->verb, s->account);
}

static int
pop3_precheck(void *arg, const struct cmd_def *def, struct reply *r)
{
	struct pop3_session *s = arg;

	if ((def->flags & CMD_NEED_TLS) && !pop3_plaintext_ok(s)) {
		reply_set(r, REPLY_POP3_ERR, "AUTH",
		    "Plaintext authentication is not allowed without TLS; use STLS first");
		return -1;
	}
	return 0;
}

const struct cmd_proto pop3_proto = {
	.kind = CMD_PROTO_POP3,
	.table = pop3_cmds,
	.ntable = sizeof(pop3_cmds) / sizeof(pop3_cmds[0]),
	.wrong_state = pop3_wrong_state,
	.precheck = pop3_precheck,
};
