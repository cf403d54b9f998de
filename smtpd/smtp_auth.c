/*
 * smtp_auth.c - SMTP AUTH (RFC 4954): maps the shared SASL step machine
 * (common/sasl.c: PLAIN, LOGIN, initial responses, "*", strict base64) to
 * SMTP replies - 334 with the challenge, 235 2.7.0, 535 5.7.8, 501 for a
 * cancel or a malformed response, 454 4.7.0 when the store cannot be read
 * (RFC 4954 6; neither delayed nor counted).
 *
 * Owns: handing the credentials to the password-check pool
 * (common/authpool.c: crypt(3) never stalls the loop), the delay before a
 * failure is answered (the one policy of common/loginguard.c, shared with
 * pop3d and kept across sessions) and the failure limit (auth_max_failures,
 * then 421). Never: logs, records or keeps a password after the check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authpool.h"
#include "esc.h"
#include "log.h"
#include "monotime.h"
#include "sesslog.h"
#include "loginguard.h"
#include "smtp_session.h"

static void auth_checked(struct authpool_job *job);

void
smtp_auth_cleanup(struct smtp_session *s)
{
	conn_timer_free(&s->delay_ev);
	free(s->delayed);
	s->delayed = NULL;
	sasl_clear(&s->sasl);
}

/* Leave the exchange (the caller writes the reply). */
static void
auth_finish(struct smtp_session *s)
{
	sasl_clear(&s->sasl);
	smtp_enter_state(s, SMTP_S_HELO);
}

/* Send the credentials of the finished exchange to the pool; the session
 * waits (r gets REPLY_NONE) until auth_checked. */
static void
auth_check(struct smtp_session *s, struct reply *r)
{
	struct authpool_job *job;

	if ((job = calloc(1, sizeof(*job))) == NULL) {
		auth_finish(s);
		reply_set(r, 454, ESC_SECURITY_TEMP, "Temporary authentication failure; try again later");
		return;
	}
	snprintf(job->name, sizeof(job->name), "%s", s->sasl.user);
	snprintf(job->authzid, sizeof(job->authzid), "%s", s->sasl.authzid);
	memcpy(job->pass, s->sasl.pass, sizeof(job->pass));
	job->done = auth_checked;
	job->arg = s;
	sasl_clear(&s->sasl);	/* the state stays AUTH until the answer */
	smtp_session_pause(s);
	r->flags = REPLY_NONE;
	if (s->srv->checker == NULL) {
		/* No pool (the fuzz driver): check here, answer now. */
		authpool_check(s->srv->store, job);
		auth_checked(job);
		return;
	}
	authpool_submit(s->srv->checker, job);
}

static void
delay_fired(void *arg)
{
	struct smtp_session *s = arg;
	struct reply *r = s->delayed;

	s->delayed = NULL;
	if (r != NULL) {
		smtp_reply(s, r);
		free(r);
	}
	if (s->core.conn != NULL) {
		conn_pause_read(s->core.conn, false);
		smtp_session_resume(s);
	}
}

static void
auth_free_job(struct authpool_job *job)
{
	explicit_bzero(job, sizeof(*job));
	free(job);
}

static void
auth_checked(struct authpool_job *job)
{
	struct smtp_session *s = job->arg;
	const struct limits *lim = &s->srv->cfg->limits;
	struct reply r, *delayed;
	long delay;

	auth_finish(s);
	if (s->gone) {
		auth_free_job(job);
		smtp_session_resume(s);		/* frees the session */
		return;
	}
	if (job->result == LOGIN_OK) {
		snprintf(s->user, sizeof(s->user), "%s", job->account);
		loginguard_succeeded(s->srv->guard, s->peer, s->user);
		log_info("session=%s event=auth user=%s login=%s result=ok", s->id, s->user,
		    job->name);
		smtp_transcript_note(s, "authenticated as %s", s->user);
		sesslog_user(s->srv->sesslog, s->id, "smtp", s->user);
		reply_set(&r, 235, ESC_AUTH_OK, "Authentication successful: welcome, %s", s->user);
		auth_free_job(job);
		smtp_reply(s, &r);
		smtp_session_resume(s);
		return;
	}
	if (job->result == LOGIN_TEMPFAIL) {
		/* RFC 4954 6: a store error is not the client's fault: 454, no
		 * delay, not counted as a failed login. */
		log_warnx("session=%s event=auth user=%s result=tempfail", s->id, job->name);
		auth_free_job(job);
		reply_set(&r, 454, ESC_SECURITY_TEMP, "Temporary authentication failure: the accounts cannot "
		    "be read now; try again later");
		smtp_reply(s, &r);
		smtp_session_resume(s);
		return;
	}
	s->auth_failures++;
	delay = loginguard_failed(s->srv->guard, lim, s->peer, job->account,
	    (unsigned)s->auth_failures, monotime_s());
	log_info("session=%s event=auth user=%s result=failed failures=%ld client=%s delay=%ld",
	    s->id, job->name, s->auth_failures, s->peer, delay);
	auth_free_job(job);
	if (s->auth_failures >= lim->auth_max_failures) {
		reply_set(&r, 421, ESC_SECURITY_TEMP, "Too many failed logins; closing");
		r.flags |= REPLY_CLOSE;
	} else if (delay > 0)
		reply_set(&r, 535, ESC_AUTH_FAILED, "Authentication failed: wrong user name or password; "
		    "repeated failures wait longer (up to %ld s)", lim->auth_fail_delay_max);
	else
		reply_set(&r, 535, ESC_AUTH_FAILED, "Authentication failed: wrong user name or password");
	if (delay <= 0 || (delayed = malloc(sizeof(*delayed))) == NULL ||
	    (s->delay_ev == NULL &&
	    (s->delay_ev = conn_timer_new(s->core.conn, delay_fired, s)) == NULL)) {
		smtp_reply(s, &r);
		smtp_session_resume(s);
		return;
	}
	*delayed = r;
	s->delayed = delayed;
	s->busy = false;	/* input stays paused until the timer fires */
	conn_timer_set(s->delay_ev, delay * 1000);
}

/* Map what the SASL machine says to a reply (or to the check). */
static void
auth_status(struct smtp_session *s, enum sasl_status st, struct reply *r)
{
	switch (st) {
	case SASL_CONTINUE:
		reply_set(r, 334, NULL, "%s", s->sasl.prompt);
		return;
	case SASL_DONE:
		auth_check(s, r);
		return;
	case SASL_CANCELLED:
		auth_finish(s);
		reply_set(r, 501, ESC_SECURITY, "Authentication cancelled");
		return;
	case SASL_BAD:
		if (s->sasl.step == SASL_AT_PLAIN)
			reply_set(r, 501, ESC_SYNTAX, "Invalid AUTH PLAIN response (%s): send base64 "
			    "of \\0user\\0password", s->sasl.error);
		else
			reply_set(r, 501, ESC_SYNTAX, "Invalid base64 in the AUTH LOGIN %s; "
			    "authentication cancelled",
			    s->sasl.step == SASL_AT_LOGIN_USER ? "user name" : "password");
		auth_finish(s);
		return;
	}
}

void
smtp_auth_start(struct smtp_session *s, char *args, struct reply *r)
{
	char *mech = args, *initial;
	enum sasl_mech m;

	if (s->user[0] != '\0') {
		reply_set(r, 503, ESC_BAD_COMMAND, "Already authenticated as %s", s->user);
		return;
	}
	initial = strchr(args, ' ');
	if (initial != NULL) {
		*initial++ = '\0';
		while (*initial == ' ')
			initial++;
		if (*initial == '\0' || strchr(initial, ' ') != NULL) {
			reply_set(r, 501, ESC_BAD_ARGS, "Syntax: AUTH mechanism [initial-response]");
			return;
		}
	}
	if (sasl_mech_parse(mech, &m) == -1) {
		reply_set(r, 504, ESC_BAD_ARGS, "Unrecognized authentication mechanism '%.20s': use "
		    "PLAIN or LOGIN", mech);
		return;
	}
	smtp_enter_state(s, SMTP_S_AUTH);
	auth_status(s, sasl_start(&s->sasl, m, initial), r);
}

void
smtp_auth_line(struct smtp_session *s, char *line)
{
	struct reply r;

	auth_status(s, sasl_step(&s->sasl, line), &r);
	if (!(r.flags & REPLY_NONE))
		smtp_reply(s, &r);
}
