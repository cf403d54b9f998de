/*
 * pop3_cmd.c - the POP3 command table and its handlers: RFC 1939 5-7 (USER,
 * PASS, QUIT, STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL), RFC 2449 CAPA
 * and response codes, RFC 2595 STLS, RFC 5034 AUTH PLAIN/LOGIN, RFC 3206
 * [SYS/TEMP] [SYS/PERM] [AUTH], plus HELP for people typing by hand.
 *
 * Owns: what each command means. The dispatcher (common/cmdtab.c) has
 * already checked the state and the argument rule; handlers fill a struct
 * reply and return (STYLE 2, 3). Never: writes to the output, reveals whether
 * an account exists, or deletes anything before QUIT in UPDATE state.
 */
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "log.h"
#include "pop3_session.h"

#define S_AUTH	(1u << POP3_AUTHORIZATION)
#define S_TRANS	(1u << POP3_TRANSACTION)

/* ---- failed-login delay -------------------------------------------------- */

/* Find (or make room for) the counter of key; NULL never. */
static struct pop3_fail *
fail_slot(struct pop3_server *srv, const char *key, int64_t now)
{
	struct pop3_fail *f, *victim = NULL;
	size_t i;

	for (i = 0; i < POP3_FAIL_SLOTS; i++) {
		f = &srv->fails[i];
		if (f->count > 0 && now - f->last > POP3_FAIL_FORGET)
			f->count = 0;	/* forgotten */
		if (f->count > 0 && strcmp(f->key, key) == 0)
			return f;
		if (victim == NULL || (victim->count > 0 &&
		    (f->count == 0 || f->last < victim->last)))
			victim = f;
	}
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->count = 0;
	victim->last = now;
	return victim;
}

static void
fail_key(char *dst, size_t len, char kind, const char *name)
{
	size_t i, n;

	n = (size_t)snprintf(dst, len, "%c:%s", kind, name);
	if (n >= len)
		n = len - 1;
	for (i = 2; i < n; i++)
		dst[i] = (char)tolower((unsigned char)dst[i]);
}

long
pop3_cmd_fail_delay(struct pop3_session *s, const char *user)
{
	struct pop3_server *srv = s->srv;
	char key[sizeof(srv->fails[0].key)];
	int64_t now = time(NULL);
	struct pop3_fail *fa, *fu;
	unsigned n;
	long delay, max = srv->cfg->limits.auth_fail_delay_max;

	fail_key(key, sizeof(key), 'a', s->peer);
	fa = fail_slot(srv, key, now);
	fa->count++;
	fa->last = now;
	fail_key(key, sizeof(key), 'u', user);
	fu = fail_slot(srv, key, now);
	fu->count++;
	fu->last = now;
	n = fa->count > fu->count ? fa->count : fu->count;
	/* 1, 2, 4, 8... seconds, up to auth_fail_delay_max */
	delay = n >= 16 ? max : 1L << (n - 1);
	return delay > max ? max : delay;
}

static void
fail_forget_user(struct pop3_server *srv, const char *user)
{
	char key[sizeof(srv->fails[0].key)];
	size_t i;

	fail_key(key, sizeof(key), 'u', user);
	for (i = 0; i < POP3_FAIL_SLOTS; i++)
		if (srv->fails[i].count > 0 && strcmp(srv->fails[i].key, key) == 0)
			srv->fails[i].count = 0;
}

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

/* A decimal number of digits only; values past max are clamped to max+1. */
static bool
parse_number(const char *p, size_t len, unsigned long long max, unsigned long long *v_r)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		/* v * 10 + d would pass max (and could wrap past 64 bits): clamp */
		if (v <= max)
			v = v > (max - (unsigned)(p[i] - '0')) / 10 ? max + 1 :
			    v * 10 + (unsigned)(p[i] - '0');
	}
	*v_r = v > max ? max + 1 : v;
	return true;
}

/*
 * Message number argument (RFC 1939 5: "msg"). Fills r with an -ERR and
 * returns false when it is not a number, out of range or (unless
 * allow_deleted) marked as deleted.
 */
static bool
msg_arg(struct pop3_session *s, const char *p, size_t len, size_t *idx_r, struct reply *r)
{
	unsigned long long v;

	if (!parse_number(p, len, (unsigned long long)SIZE_MAX / 2, &v)) {
		reply_set(r, REPLY_POP3_ERR, NULL,
		    "Invalid message number '%.*s': use a number from LIST", (int)(len > 20 ? 20 : len), p);
		return false;
	}
	if (v == 0 || v > s->nmsgs) {
		reply_set(r, REPLY_POP3_ERR, NULL, "No such message (the mailbox has %zu %s)",
		    s->nmsgs, s->nmsgs == 1 ? "message" : "messages");
		return false;
	}
	if (pop3_msg_is_deleted(s, (size_t)v - 1)) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Message %llu is deleted (RSET undeletes)", v);
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

/* ---- login ---------------------------------------------------------------- */

static void
login_failed(struct pop3_session *s, const char *user, const char *method, struct reply *r)
{
	long delay;

	s->auth_failures++;
	delay = pop3_cmd_fail_delay(s, user);
	log_info("session=%s event=auth-failed client=%s user=%s method=%s failures=%u delay=%ld",
	    s->id, s->peer, user, method, s->auth_failures, delay);
	reply_set(&s->delayed, REPLY_POP3_ERR, "AUTH",
	    "Authentication failed: wrong user name or password");
	if ((long)s->auth_failures >= s->srv->cfg->limits.auth_max_failures) {
		reply_set(&s->delayed, REPLY_POP3_ERR, "AUTH",
		    "Authentication failed: wrong user name or password; too many failures, closing");
		s->delayed.flags |= REPLY_CLOSE;
	}
	if (delay > 0 && s->srv->base != NULL) {
		s->delay_secs = delay;
		reply_set(r, REPLY_POP3_ERR, NULL, "delayed");
		r->flags |= REPLY_NONE;
	} else
		*r = s->delayed;
}

/*
 * The password was checked: on success lock the mailbox and take the
 * snapshot (RFC 1939 4: the maildrop is locked and the messages numbered when
 * TRANSACTION starts).
 */
static void
login_finish(struct pop3_session *s, const char *user, const char *method, bool ok,
    struct reply *r)
{
	struct pop3_server *srv = s->srv;
	size_t i;
	int64_t octets = 0;
	int rc;

	if (!ok) {
		login_failed(s, user, method, r);
		return;
	}
	fail_forget_user(srv, user);
	rc = store_mailbox_lock(srv->store, user, s->lock_owner, srv->cfg->limits.pop3_lock_ttl);
	if (rc == STORE_LOCKED) {
		log_info("session=%s event=login-refused client=%s user=%s reason=in-use",
		    s->id, s->peer, user);
		reply_set(r, REPLY_POP3_ERR, "IN-USE",
		    "Mailbox is in use by another POP3 session; try again later");
		return;
	}
	if (rc != 0) {
		log_warnx("session=%s event=store-failed op=lock error=\"%s\"", s->id,
		    store_errmsg(srv->store));
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Cannot lock the mailbox now; try again later");
		return;
	}
	snprintf(s->account, sizeof(s->account), "%s", user);
	s->locked = true;
	if (store_mailbox_list(srv->store, user, &s->msgs, &s->nmsgs) == -1 ||
	    (s->deleted = calloc(s->nmsgs / 8 + 1, 1)) == NULL) {
		log_warnx("session=%s event=store-failed op=list error=\"%s\"", s->id,
		    store_errmsg(srv->store));
		store_mailbox_unlock(srv->store, user, s->lock_owner);
		s->locked = false;
		free(s->msgs);
		s->msgs = NULL;
		s->nmsgs = 0;
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Cannot read the mailbox now; try again later");
		return;
	}
	for (i = 0; i < s->nmsgs; i++)
		octets += s->msgs[i].size;
	pop3_enter_state(s, POP3_TRANSACTION);
	pop3_session_logged_in(s);
	log_info("session=%s event=login client=%s user=%s method=%s tls=%s msgs=%zu octets=%lld",
	    s->id, s->peer, user, method, s->tls ? "yes" : "no", s->nmsgs, (long long)octets);
	reply_set(r, REPLY_POP3_OK, NULL, "Logged in as %s: %zu %s (%lld octets)", user,
	    s->nmsgs, s->nmsgs == 1 ? "message" : "messages", (long long)octets);
}

/* Back on the loop thread after a worker verified a password. */
static void
login_verified(void *arg)
{
	struct pop3_auth_job *job = arg;
	struct pop3_session *s = job->s;
	struct reply r;

	if (s != NULL) {
		s->auth_job = NULL;
		login_finish(s, job->user, job->method, job->ok && job->exists, &r);
		pop3_session_async_done(s, &r);
	}
	free(job);
}

/*
 * Check user/pass. The same work is done whether the account exists or not
 * (a dummy hash stands in), and the reply to a failure is the same.
 * With worker threads the verification runs off the loop and the reply
 * comes later (REPLY_NONE).
 */
static void
login(struct pop3_session *s, const char *user, const char *pass, const char *method,
    struct reply *r)
{
	struct pop3_server *srv = s->srv;
	struct pop3_auth_job *job;
	char hash[AUTH_HASH_MAX];
	bool ok;
	int rc;

	s->have_user = false;
	if (user[0] == '\0' || strlen(user) > STORE_NAME_MAX) {
		(void)auth_verify_password(pass, auth_dummy_hash());
		login_failed(s, user[0] ? "(too long)" : "(empty)", method, r);
		return;
	}
	rc = store_user_get_hash(srv->store, user, hash, sizeof(hash));
	if (rc == -1) {
		log_warnx("session=%s event=store-failed op=user error=\"%s\"", s->id,
		    store_errmsg(srv->store));
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Temporary failure reading accounts; try again later");
		return;
	}
	if (rc != 0)
		snprintf(hash, sizeof(hash), "%s", auth_dummy_hash());
	if (pop3_auth_running() && (job = calloc(1, sizeof(*job))) != NULL) {
		job->s = s;
		snprintf(job->user, sizeof(job->user), "%s", user);
		snprintf(job->method, sizeof(job->method), "%s", method);
		snprintf(job->pass, sizeof(job->pass), "%s", pass);
		memcpy(job->hash, hash, sizeof(job->hash));
		job->exists = rc == 0;
		job->done = login_verified;
		s->auth_job = job;
		explicit_bzero(hash, sizeof(hash));
		pop3_auth_submit(job);
		reply_set(r, REPLY_POP3_OK, NULL, "verifying");
		r->flags |= REPLY_NONE;
		return;
	}
	ok = auth_verify_password(pass, hash) && rc == 0;
	explicit_bzero(hash, sizeof(hash));
	login_finish(s, user, method, ok, r);
}

/* ---- AUTHORIZATION -------------------------------------------------------- */

static void
cmd_user(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;

	if (strlen(args) > STORE_NAME_MAX || strchr(args, ' ') != NULL) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Invalid user name (at most %d characters, no spaces)",
		    STORE_NAME_MAX);
		return;
	}
	snprintf(s->user, sizeof(s->user), "%s", args);
	s->have_user = true;
	/* Same reply for every name: it must not tell whether the user exists. */
	reply_set(r, REPLY_POP3_OK, NULL, "Send PASS with the password of %s", s->user);
}

static void
cmd_pass(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;

	if (!s->have_user) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Give USER first, then PASS");
		return;
	}
	login(s, s->user, args, "USER", r);
	explicit_bzero(args, strlen(args));
}

static void
sasl_plain(struct pop3_session *s, const char *b64, struct reply *r)
{
	char authzid[AUTH_FIELD_MAX], user[AUTH_FIELD_MAX], pass[AUTH_FIELD_MAX], err[128];

	s->sasl = POP3_SASL_NONE;
	if (auth_sasl_plain(b64, authzid, user, pass, AUTH_FIELD_MAX, err, sizeof(err)) == -1) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Invalid PLAIN response: %s", err);
		return;
	}
	if (authzid[0] != '\0' && strcasecmp(authzid, user) != 0) {
		explicit_bzero(pass, sizeof(pass));
		reply_set(r, REPLY_POP3_ERR, "AUTH", "Logging in as another user is not supported");
		return;
	}
	login(s, user, pass, "PLAIN", r);
	explicit_bzero(pass, sizeof(pass));
}

void
pop3_cmd_sasl_line(struct pop3_session *s, char *line, struct reply *r)
{
	char pass[AUTH_FIELD_MAX];

	if (strcmp(line, "*") == 0) {
		s->sasl = POP3_SASL_NONE;
		reply_set(r, REPLY_POP3_ERR, NULL, "Authentication cancelled");
		return;
	}
	switch (s->sasl) {
	case POP3_SASL_PLAIN:
		sasl_plain(s, line, r);
		break;
	case POP3_SASL_LOGIN_USER:
		if (auth_sasl_field(line, s->user, sizeof(s->user)) == -1) {
			s->sasl = POP3_SASL_NONE;
			reply_set(r, REPLY_POP3_ERR, NULL, "Invalid base64 in the LOGIN user name");
			return;
		}
		s->sasl = POP3_SASL_LOGIN_PASS;
		reply_set(r, REPLY_POP3_OK, NULL, "UGFzc3dvcmQ6");	/* "Password:" */
		r->flags |= POP3_REPLY_CONT;
		break;
	case POP3_SASL_LOGIN_PASS:
		s->sasl = POP3_SASL_NONE;
		if (auth_sasl_field(line, pass, sizeof(pass)) == -1) {
			reply_set(r, REPLY_POP3_ERR, NULL, "Invalid base64 in the LOGIN password");
			return;
		}
		login(s, s->user, pass, "LOGIN", r);
		explicit_bzero(pass, sizeof(pass));
		break;
	case POP3_SASL_NONE:
		assert(!"sasl line without an exchange");
		reply_set(r, REPLY_POP3_ERR, NULL, "No authentication in progress");
		break;
	}
	explicit_bzero(line, strlen(line));
}

static void
cmd_auth(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	char *w[3];
	size_t n;

	if (args[0] == '\0') {
		/* Not in RFC 5034, but old Outlook asks this way. */
		reply_set(r, REPLY_POP3_OK, NULL, "SASL mechanisms follow\nPLAIN\nLOGIN");
		r->flags |= POP3_REPLY_MULTI;
		return;
	}
	n = split_words(args, w, 2);
	if (n > 2) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	if (strcasecmp(w[0], "PLAIN") != 0 && strcasecmp(w[0], "LOGIN") != 0) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Unsupported SASL mechanism; AUTH alone lists them");
		return;
	}
	if (!pop3_plaintext_ok(s)) {
		reply_set(r, REPLY_POP3_ERR, "AUTH",
		    "Plaintext authentication is not allowed without TLS; use STLS first");
		return;
	}
	if (strcasecmp(w[0], "PLAIN") == 0) {
		if (n == 2) {
			/* "=" is an empty initial response (RFC 5034 4) */
			sasl_plain(s, strcmp(w[1], "=") == 0 ? "" : w[1], r);
			return;
		}
		s->sasl = POP3_SASL_PLAIN;
		reply_set(r, REPLY_POP3_OK, NULL, "%s", "");
		r->flags |= POP3_REPLY_CONT;
		return;
	}
	/* LOGIN: the initial response, when given, is the user name */
	if (n == 2) {
		if (auth_sasl_field(strcmp(w[1], "=") == 0 ? "" : w[1], s->user,
		    sizeof(s->user)) == -1) {
			reply_set(r, REPLY_POP3_ERR, NULL, "Invalid base64 in the LOGIN user name");
			return;
		}
		s->sasl = POP3_SASL_LOGIN_PASS;
		reply_set(r, REPLY_POP3_OK, NULL, "UGFzc3dvcmQ6");	/* "Password:" */
	} else {
		s->sasl = POP3_SASL_LOGIN_USER;
		reply_set(r, REPLY_POP3_OK, NULL, "VXNlcm5hbWU6");	/* "Username:" */
	}
	r->flags |= POP3_REPLY_CONT;
}

static void
cmd_apop(void *arg, char *args, struct reply *r)
{
	(void)arg;
	(void)args;
	reply_set(r, REPLY_POP3_ERR, NULL,
	    "APOP is not supported (passwords are stored hashed); use USER/PASS or AUTH");
}

static void
cmd_stls(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;

	(void)args;
	if (s->tls) {
		reply_set(r, REPLY_POP3_ERR, NULL, "TLS is already active");
		return;
	}
	if (!s->srv->tls_available) {
		reply_set(r, REPLY_POP3_ERR, NULL, "STLS is not available: TLS is not configured");
		return;
	}
	s->have_user = false;
	s->stls_req = true;
	reply_set(r, REPLY_POP3_OK, NULL, "Begin TLS negotiation");
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
		if (pop3_plaintext_ok(s))
			reply_add_line(r, "SASL PLAIN LOGIN");
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
		if (d->handler == cmd_stls && (s->tls || !s->srv->tls_available))
			continue;	/* not offered now */
		reply_add_line(r, "  %-22s %s", d->syntax, d->help);
	}
	r->flags |= POP3_REPLY_MULTI;
}

static void
cmd_quit(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	struct pop3_server *srv = s->srv;
	int64_t *ids;
	size_t i, n = 0;

	(void)args;
	if (s->state == POP3_AUTHORIZATION) {
		reply_set(r, REPLY_POP3_OK, NULL, "correio POP3 server signing off");
		r->flags |= REPLY_CLOSE;
		return;
	}
	/* RFC 1939 6: the UPDATE state, entered only through QUIT. */
	pop3_enter_state(s, POP3_UPDATE);
	if (s->ndeleted > 0) {
		if ((ids = calloc(s->ndeleted, sizeof(*ids))) == NULL) {
			reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Out of memory; nothing was deleted");
			r->flags |= REPLY_CLOSE;
			goto out;
		}
		for (i = 0; i < s->nmsgs; i++)
			if (pop3_msg_is_deleted(s, i))
				ids[n++] = s->msgs[i].entry_id;
		if (store_mailbox_expunge(srv->store, s->account, ids, n) == -1) {
			log_warnx("session=%s event=store-failed op=expunge error=\"%s\"", s->id,
			    store_errmsg(srv->store));
			free(ids);
			reply_set(r, REPLY_POP3_ERR, "SYS/TEMP",
			    "Could not remove the deleted messages; nothing was deleted");
			r->flags |= REPLY_CLOSE;
			n = 0;
			goto out;
		}
		free(ids);
	}
	reply_set(r, REPLY_POP3_OK, NULL, "correio POP3 server signing off (%zu %s deleted)", n,
	    n == 1 ? "message" : "messages");
	r->flags |= REPLY_CLOSE;
out:
	s->ndele = (unsigned)n;
	if (store_mailbox_unlock(srv->store, s->account, s->lock_owner) == -1)
		log_warnx("session=%s event=unlock-failed error=\"%s\"", s->id,
		    store_errmsg(srv->store));
	s->locked = false;
	log_info("session=%s event=logout user=%s reason=quit retr=%u dele=%u bytes=%lld",
	    s->id, s->account, s->nretr, s->ndele, (long long)s->bytes);
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
	unsigned long long lines;
	char *w[3];
	size_t idx;

	if (split_words(args, w, 2) != 2) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Syntax: TOP msg lines");
		return;
	}
	if (!msg_arg(s, w[0], strlen(w[0]), &idx, r))
		return;
	if (!parse_number(w[1], strlen(w[1]), LONG_MAX - 1, &lines)) {
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
	{ "USER", S_AUTH, CMD_ARGS_REQUIRED, CMD_NEED_TLS, cmd_user,
	  "USER name", "give your user name (then PASS)" },
	{ "PASS", S_AUTH, CMD_ARGS_REQUIRED, CMD_SECRET | CMD_NEED_TLS, cmd_pass,
	  "PASS password", "give your password after USER" },
	{ "AUTH", S_AUTH, CMD_ARGS_OPTIONAL, CMD_SECRET, cmd_auth,
	  "AUTH [PLAIN|LOGIN [response]]", "log in with SASL (RFC 5034); AUTH alone lists mechanisms" },
	{ "APOP", S_AUTH, CMD_ARGS_OPTIONAL, CMD_SECRET, cmd_apop,
	  "APOP name digest", NULL },
	{ "STLS", S_AUTH, CMD_ARGS_NONE, 0, cmd_stls,
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
