/*
 * pop3_login.c - the AUTHORIZATION state of a POP3 session (RFC 1939 4, 7):
 * USER/PASS, AUTH PLAIN/LOGIN (RFC 5034, over the shared SASL step machine
 * of common/sasl.c), APOP (refused), STLS (RFC 2595 4) and the move to
 * TRANSACTION: the password check (common/authpool.c threads, common/login.c
 * names: "ana" and "ana@DOMAIN" are one login), the failed-login delay
 * (common/loginguard.c, shared with smtpd), and the replies to the mailbox
 * lock and the snapshot, which the same pool job takes (pop3_store.c). Dovecot's login / post-login split: after this file, the
 * session only ever sees its own account.
 * Never: reveals whether an account exists (same work, same reply), keeps a
 * password past the check, or offers a plaintext mechanism that CAPA hides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "monotime.h"
#include "pop3_session.h"

const char *
pop3_login_mechanisms(const struct pop3_session *s)
{
	/* Both mechanisms send the password in the clear. */
	return pop3_plaintext_ok(s) ? SASL_MECHANISMS : NULL;
}

/* ---- the end of a login ---------------------------------------------------- */

static void
login_failed(struct pop3_session *s, const char *name, const char *account, struct reply *r)
{
	const struct limits *lim = &s->srv->cfg->limits;
	long delay;

	s->auth_failures++;
	delay = loginguard_failed(s->srv->guard, lim, s->peer, account, s->auth_failures,
	    monotime_s());
	log_info("session=%s event=auth-failed client=%s user=%s method=%s failures=%u delay=%ld",
	    s->id, s->peer, name, s->method, s->auth_failures, delay);
	if (delay > 0)
		reply_set(&s->delayed, REPLY_POP3_ERR, "AUTH", "Authentication failed: wrong user "
		    "name or password; repeated failures wait longer (up to %ld s)",
		    lim->auth_fail_delay_max);
	else
		reply_set(&s->delayed, REPLY_POP3_ERR, "AUTH",
		    "Authentication failed: wrong user name or password");
	if ((long)s->auth_failures >= lim->auth_max_failures) {
		reply_set(&s->delayed, REPLY_POP3_ERR, "AUTH",
		    "Authentication failed: wrong user name or password; too many failures, closing");
		s->delayed.flags |= REPLY_CLOSE;
	}
	if (delay > 0) {
		s->delay_secs = delay;
		reply_set(r, REPLY_POP3_ERR, NULL, "delayed");
		r->flags |= REPLY_NONE;
	} else
		*r = s->delayed;
}

/*
 * The password was right and the job (pop3_store.c, on a pool thread) took
 * the mailbox lock and the snapshot (RFC 1939 4: the maildrop is locked
 * and the messages numbered when TRANSACTION starts): map its results.
 */
static void
login_finish(struct pop3_session *s, struct pop3_work *w, struct reply *r)
{
	size_t i;
	int64_t octets = 0;

	loginguard_succeeded(s->srv->guard, s->peer, w->account);
	if (w->rc == STORE_LOCKED) {
		log_info("session=%s event=login-refused client=%s user=%s reason=in-use",
		    s->id, s->peer, w->account);
		reply_set(r, REPLY_POP3_ERR, "IN-USE",
		    "Mailbox is in use by another POP3 session; try again later");
		return;
	}
	if (w->rc != 0) {
		log_warnx("session=%s event=store-failed op=lock error=\"%s\"", s->id, w->error);
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Cannot lock the mailbox now; try again later");
		return;
	}
	if (w->list_rc == -1 || (s->deleted = calloc(w->nmsgs / 8 + 1, 1)) == NULL) {
		log_warnx("session=%s event=store-failed op=list error=\"%s\"", s->id,
		    w->list_rc == -1 ? w->error : "out of memory");
		if (w->list_rc == 0)	/* the lock is ours: give it back */
			pop3_store_release(s->srv, w->account, w->owner, s->id);
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Cannot read the mailbox now; try again later");
		return;
	}
	snprintf(s->account, sizeof(s->account), "%s", w->account);
	s->locked = true;
	s->msgs = w->msgs;
	s->nmsgs = w->nmsgs;
	w->msgs = NULL;
	for (i = 0; i < s->nmsgs; i++)
		octets += s->msgs[i].size;
	pop3_enter_state(s, POP3_TRANSACTION);
	pop3_session_logged_in(s);
	log_info("session=%s event=login client=%s user=%s method=%s tls=%s msgs=%zu octets=%lld",
	    s->id, s->peer, s->account, s->method, s->tls ? "yes" : "no", s->nmsgs,
	    (long long)octets);
	reply_set(r, REPLY_POP3_OK, NULL, "Logged in as %s: %zu %s (%lld octets)", s->account,
	    s->nmsgs, s->nmsgs == 1 ? "message" : "messages", (long long)octets);
}

/* Map the checked job to the reply. */
static void
login_result(struct pop3_session *s, struct pop3_work *w, struct reply *r)
{
	switch (w->job.result) {
	case LOGIN_OK:
		login_finish(s, w, r);
		return;
	case LOGIN_TEMPFAIL:
		log_warnx("session=%s event=store-failed op=user", s->id);
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP",
		    "Temporary failure reading accounts; try again later");
		return;
	case LOGIN_FAILED:
		login_failed(s, w->job.name, w->job.account, r);
		return;
	}
}

/* Back on the loop thread after a pool thread checked the password and,
 * when it was right, took the lock and the snapshot. */
static void
login_verified(struct authpool_job *job)
{
	struct pop3_work *w = (struct pop3_work *)job;
	struct pop3_session *s = job->arg;
	struct reply r;

	pop3_work_login_done(w, s == NULL);
	if (s != NULL) {
		s->auth_job = NULL;
		login_result(s, w, &r);
		pop3_session_async_done(s, &r);
	}
	pop3_work_free(&w);
}

/*
 * Check a login (name as given, authzid, password), then lock the mailbox
 * and take the snapshot. The same work is done whether the account exists
 * or not, and the reply to a failure is the same. With the pool all of it
 * runs off the loop and the reply comes later (REPLY_NONE); without
 * (tests) it runs here.
 */
static void
login(struct pop3_session *s, const char *name, const char *authzid, const char *pass,
    const char *method, struct reply *r)
{
	struct pop3_work *w;

	s->have_user = false;
	snprintf(s->method, sizeof(s->method), "%s", method);
	if ((w = pop3_work_new(s, POP3_WORK_LOGIN)) == NULL) {
		reply_set(r, REPLY_POP3_ERR, "SYS/TEMP", "Out of memory; try again later");
		return;
	}
	snprintf(w->job.name, sizeof(w->job.name), "%s", name);
	snprintf(w->job.authzid, sizeof(w->job.authzid), "%s", authzid);
	snprintf(w->job.pass, sizeof(w->job.pass), "%s", pass);
	w->job.done = login_verified;
	pop3_work_stale(s->srv, w, name);
	if (s->srv->auth != NULL) {
		s->auth_job = w;
		authpool_submit(s->srv->auth, &w->job);
		reply_set(r, REPLY_POP3_OK, NULL, "verifying");
		r->flags |= REPLY_NONE;
		return;
	}
	authpool_check(s->srv->store, &w->job);
	if (w->job.result == LOGIN_OK)
		pop3_work_do(s->srv->store, &w->job);
	pop3_work_login_done(w, false);
	login_result(s, w, r);
	pop3_work_free(&w);
}

/* ---- USER / PASS (RFC 1939 7) ------------------------------------------------ */

void
pop3_login_user(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;

	if (strlen(args) >= sizeof(s->user) || strchr(args, ' ') != NULL) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Invalid user name (at most %zu characters, no "
		    "spaces)", sizeof(s->user) - 1);
		return;
	}
	snprintf(s->user, sizeof(s->user), "%s", args);
	s->have_user = true;
	/* Same reply for every name: it must not tell whether the user exists. */
	reply_set(r, REPLY_POP3_OK, NULL, "Send PASS with the password of %s", s->user);
}

void
pop3_login_pass(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;

	if (!s->have_user) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Give USER first, then PASS");
		return;
	}
	login(s, s->user, "", args, "USER", r);
	explicit_bzero(args, strlen(args));
}

/* ---- AUTH (RFC 5034) ----------------------------------------------------------- */

/* Map what the SASL machine says to a reply (or to the check). */
static void
sasl_status(struct pop3_session *s, enum sasl_status st, struct reply *r)
{
	switch (st) {
	case SASL_CONTINUE:
		reply_set(r, REPLY_POP3_OK, NULL, "%s", s->sasl.prompt);
		r->flags |= POP3_REPLY_CONT;
		return;
	case SASL_DONE:
		login(s, s->sasl.user, s->sasl.authzid, s->sasl.pass,
		    s->sasl.mech == SASL_PLAIN ? "PLAIN" : "LOGIN", r);
		break;
	case SASL_CANCELLED:
		reply_set(r, REPLY_POP3_ERR, NULL, "Authentication cancelled");
		break;
	case SASL_BAD:
		if (s->sasl.step == SASL_AT_PLAIN)
			reply_set(r, REPLY_POP3_ERR, NULL, "Invalid PLAIN response: %s",
			    s->sasl.error);
		else
			reply_set(r, REPLY_POP3_ERR, NULL, "Invalid base64 in the LOGIN %s",
			    s->sasl.step == SASL_AT_LOGIN_USER ? "user name" : "password");
		break;
	}
	sasl_clear(&s->sasl);
}

void
pop3_login_sasl_line(struct pop3_session *s, char *line, struct reply *r)
{
	sasl_status(s, sasl_step(&s->sasl, line), r);
	explicit_bzero(line, strlen(line));
}

void
pop3_login_auth(void *arg, char *args, struct reply *r)
{
	struct pop3_session *s = arg;
	const char *mechs = pop3_login_mechanisms(s);
	enum sasl_mech m;
	char *initial = NULL, *end, *p;
	size_t n;

	if (args[0] == '\0') {
		/* Not in RFC 5034, but old Outlook asks this way: the same list
		 * as CAPA's SASL line, from the same predicate. */
		if (mechs == NULL) {
			reply_set(r, REPLY_POP3_ERR, "AUTH",
			    "Plaintext authentication is not allowed without TLS; use STLS first");
			return;
		}
		reply_set(r, REPLY_POP3_OK, NULL, "SASL mechanisms follow");
		for (p = (char *)mechs; *p != '\0'; p += n + strspn(p + n, " ")) {
			n = strcspn(p, " ");
			reply_add_line(r, "%.*s", (int)n, p);
		}
		r->flags |= POP3_REPLY_MULTI;
		return;
	}
	/* mechanism [initial-response]; AUTH is CMD_SECRET, so trailing blanks
	 * are still there */
	if ((p = strchr(args, ' ')) != NULL) {
		*p++ = '\0';
		initial = p + strspn(p, " ");
		end = initial + strcspn(initial, " ");
		if (end[strspn(end, " ")] != '\0') {
			reply_set(r, REPLY_POP3_ERR, NULL, "Syntax: AUTH mechanism [initial-response]");
			return;
		}
		*end = '\0';
		if (*initial == '\0')
			initial = NULL;
	}
	if (sasl_mech_parse(args, &m) == -1) {
		reply_set(r, REPLY_POP3_ERR, NULL, "Unsupported SASL mechanism; AUTH alone lists them");
		return;
	}
	if (mechs == NULL) {
		reply_set(r, REPLY_POP3_ERR, "AUTH",
		    "Plaintext authentication is not allowed without TLS; use STLS first");
		return;
	}
	sasl_status(s, sasl_start(&s->sasl, m, initial), r);
}

void
pop3_login_apop(void *arg, char *args, struct reply *r)
{
	(void)arg;
	(void)args;
	reply_set(r, REPLY_POP3_ERR, NULL,
	    "APOP is not supported (passwords are stored hashed); use USER/PASS or AUTH");
}

void
pop3_login_stls(void *arg, char *args, struct reply *r)
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
