/*
 * smtp_auth.c - SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN
 * mechanisms: initial responses ("=" for empty), 334 continuations, "*" to
 * cancel (501), strict base64 (501 on anything else).
 *
 * Owns: the exchange's sub-steps, handing the password check to the checker
 * thread (crypt(3) is slow on purpose and must not stall the loop), the
 * delay after each failure (1, 2, 4 ... seconds, at most auth_fail_delay_max)
 * and the failure limit (auth_max_failures, then 421). A store error while
 * reading the account is 454 4.7.0 (RFC 4954 6), neither delayed nor counted.
 * Never: logs, records or keeps a password after the check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtp_session.h"

static void auth_checked(struct smtp_job *job);

void
smtp_auth_cleanup(struct smtp_session *s)
{
	if (s->delay_ev != NULL) {
		event_free(s->delay_ev);
		s->delay_ev = NULL;
	}
	free(s->delayed);
	s->delayed = NULL;
	s->auth_step = AUTH_STEP_NONE;
	explicit_bzero(s->auth_user, sizeof(s->auth_user));
}

/* Leave the exchange with reply r (written by the caller). */
static void
auth_finish(struct smtp_session *s)
{
	s->auth_step = AUTH_STEP_NONE;
	explicit_bzero(s->auth_user, sizeof(s->auth_user));
	smtp_enter_state(s, SMTP_S_HELO);
}

/* Send the credentials to the checker thread; the session waits. */
static void
auth_check(struct smtp_session *s, const char *authzid, const char *user, const char *pass)
{
	struct smtp_job *job;
	struct reply r;

	if ((job = calloc(1, sizeof(*job))) == NULL) {
		auth_finish(s);
		reply_set(&r, 454, "4.7.0", "Temporary authentication failure; try again later");
		smtp_reply(s, &r);
		return;
	}
	job->kind = JOB_AUTH;
	snprintf(job->authzid, sizeof(job->authzid), "%s", authzid);
	snprintf(job->user, sizeof(job->user), "%s", user);
	snprintf(job->pass, sizeof(job->pass), "%s", pass);
	snprintf(job->session_id, sizeof(job->session_id), "%s", s->id);
	job->done = auth_checked;
	job->arg = s;
	smtp_session_pause(s);
	s->srv->submit(s->srv->checker, job);
}

static void
delay_fired(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct reply *r = s->delayed;

	(void)fd;
	(void)what;
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
auth_checked(struct smtp_job *job)
{
	struct smtp_session *s = job->arg;
	const struct limits *lim = &s->srv->cfg->limits;
	struct reply r, *delayed;
	struct timeval tv = { 0, 0 };
	long delay;

	auth_finish(s);
	if (s->gone) {
		smtp_job_free(job);
		smtp_session_resume(s);		/* frees the session */
		return;
	}
	if (job->result == 0) {
		snprintf(s->user, sizeof(s->user), "%s", job->account);
		log_info("session=%s event=auth user=%s result=ok", s->id, s->user);
		smtp_transcript_note(s, "authenticated as %s", s->user);
		reply_set(&r, 235, "2.7.0", "Authentication successful: welcome, %s", s->user);
		smtp_job_free(job);
		smtp_reply(s, &r);
		smtp_session_resume(s);
		return;
	}
	if (job->result == SMTP_AUTH_TEMPFAIL) {
		/* RFC 4954 6: a store error is not the client's fault: 454, no
		 * delay, not counted as a failed login. */
		log_warnx("session=%s event=auth user=%s result=tempfail", s->id, job->user);
		smtp_job_free(job);
		reply_set(&r, 454, "4.7.0", "Temporary authentication failure: the accounts cannot "
		    "be read now; try again later");
		smtp_reply(s, &r);
		smtp_session_resume(s);
		return;
	}
	s->auth_failures++;
	log_info("session=%s event=auth user=%s result=failed failures=%ld", s->id, job->user,
	    s->auth_failures);
	smtp_job_free(job);
	if (s->auth_failures >= lim->auth_max_failures) {
		reply_set(&r, 421, "4.7.0", "Too many failed logins; closing");
		r.flags |= REPLY_CLOSE;
	} else
		reply_set(&r, 535, "5.7.8", "Authentication failed: wrong user name or password");
	/* Each failure waits longer: 1, 2, 4, ... seconds (at most the limit). */
	delay = 1;
	for (long i = 1; i < s->auth_failures && delay < lim->auth_fail_delay_max; i++)
		delay *= 2;
	if (delay > lim->auth_fail_delay_max)
		delay = lim->auth_fail_delay_max;
	if (delay <= 0 || (delayed = malloc(sizeof(*delayed))) == NULL ||
	    (s->delay_ev == NULL &&
	    (s->delay_ev = evtimer_new(s->srv->base, delay_fired, s)) == NULL)) {
		smtp_reply(s, &r);
		smtp_session_resume(s);
		return;
	}
	*delayed = r;
	s->delayed = delayed;
	s->busy = false;	/* input stays paused until the timer fires */
	tv.tv_sec = delay;
	evtimer_add(s->delay_ev, &tv);
}

/* Decode a PLAIN response and check it. */
static void
auth_plain(struct smtp_session *s, const char *b64)
{
	char authzid[AUTH_FIELD_MAX], user[AUTH_FIELD_MAX], pass[AUTH_FIELD_MAX], err[128];
	struct reply r;

	if (auth_sasl_plain(b64, authzid, user, pass, AUTH_FIELD_MAX, err, sizeof(err)) == -1) {
		auth_finish(s);
		reply_set(&r, 501, "5.5.2", "Invalid AUTH PLAIN response (%s): send base64 of "
		    "\\0user\\0password", err);
		smtp_reply(s, &r);
		return;
	}
	auth_check(s, authzid, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

void
smtp_auth_start(struct smtp_session *s, char *args, struct reply *r)
{
	char *mech = args, *initial;

	if (s->user[0] != '\0') {
		reply_set(r, 503, "5.5.1", "Already authenticated as %s", s->user);
		return;
	}
	initial = strchr(args, ' ');
	if (initial != NULL) {
		*initial++ = '\0';
		while (*initial == ' ')
			initial++;
		if (*initial == '\0' || strchr(initial, ' ') != NULL) {
			reply_set(r, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
			return;
		}
	}
	if (strcasecmp(mech, "PLAIN") == 0) {
		if (initial == NULL) {
			s->auth_step = AUTH_STEP_PLAIN;
			smtp_enter_state(s, SMTP_S_AUTH);
			reply_set(r, 334, NULL, "%s", "");
			return;
		}
		/* "=" is an empty initial response (RFC 4954 4). */
		smtp_enter_state(s, SMTP_S_AUTH);
		r->flags = REPLY_NONE;
		auth_plain(s, strcmp(initial, "=") == 0 ? "" : initial);
		return;
	}
	if (strcasecmp(mech, "LOGIN") == 0) {
		smtp_enter_state(s, SMTP_S_AUTH);
		if (initial != NULL && strcmp(initial, "=") != 0) {
			if (auth_sasl_field(initial, s->auth_user, sizeof(s->auth_user)) == -1) {
				auth_finish(s);
				reply_set(r, 501, "5.5.2", "Invalid base64 in AUTH LOGIN user name");
				return;
			}
			s->auth_step = AUTH_STEP_LOGIN_PASS;
			reply_set(r, 334, NULL, "UGFzc3dvcmQ6");	/* "Password:" */
			return;
		}
		s->auth_step = AUTH_STEP_LOGIN_USER;
		reply_set(r, 334, NULL, "VXNlcm5hbWU6");	/* "Username:" */
		return;
	}
	reply_set(r, 504, "5.5.4", "Unrecognized authentication mechanism '%.20s': use PLAIN or LOGIN",
	    mech);
}

void
smtp_auth_line(struct smtp_session *s, char *line)
{
	char pass[AUTH_FIELD_MAX];
	struct reply r;

	if (strcmp(line, "*") == 0) {
		auth_finish(s);
		reply_set(&r, 501, "5.7.0", "Authentication cancelled");
		smtp_reply(s, &r);
		return;
	}
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN:
		auth_plain(s, line);
		return;
	case AUTH_STEP_LOGIN_USER:
		if (auth_sasl_field(line, s->auth_user, sizeof(s->auth_user)) == -1)
			break;
		s->auth_step = AUTH_STEP_LOGIN_PASS;
		reply_set(&r, 334, NULL, "UGFzc3dvcmQ6");
		smtp_reply(s, &r);
		return;
	case AUTH_STEP_LOGIN_PASS:
		if (auth_sasl_field(line, pass, sizeof(pass)) == -1)
			break;
		auth_check(s, "", s->auth_user, pass);
		explicit_bzero(pass, sizeof(pass));
		return;
	case AUTH_STEP_NONE:
		break;
	}
	auth_finish(s);
	reply_set(&r, 501, "5.5.2", "Invalid base64 data; authentication cancelled");
	smtp_reply(s, &r);
}
