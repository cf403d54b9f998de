/*
 * sasl.c - the PLAIN / LOGIN step machine shared by smtpd and pop3d.
 *
 * PLAIN (RFC 4616 2): one response, base64 of authzid NUL authcid NUL passwd;
 * without an initial response the server sends an empty challenge first.
 * LOGIN (draft-murchison-sasl-login): the server asks "Username:" then
 * "Password:" (base64 prompts); an initial response is the user name.
 * "=" is an empty initial response (RFC 4954 4, RFC 5034 4); "*" cancels;
 * responses are decoded with the strict base64 of b64.c (RFC 4954 4: invalid
 * base64 must be refused; libb64 alone would skip the junk).
 * Never: logs or keeps a password after sasl_clear().
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sasl.h"

/* The prompts, written once: base64 of "Username:" and "Password:". */
static const char prompt_user[] = "VXNlcm5hbWU6";
static const char prompt_pass[] = "UGFzc3dvcmQ6";

int
sasl_mech_parse(const char *name, enum sasl_mech *mech_r)
{
	if (strcasecmp(name, "PLAIN") == 0)
		*mech_r = SASL_PLAIN;
	else if (strcasecmp(name, "LOGIN") == 0)
		*mech_r = SASL_LOGIN;
	else
		return -1;
	return 0;
}

void
sasl_clear(struct sasl *x)
{
	explicit_bzero(x, sizeof(*x));
	x->active = false;
}

/* End the exchange with status st (the credentials stay for DONE only). */
static enum sasl_status
sasl_end(struct sasl *x, enum sasl_status st)
{
	x->active = false;
	x->prompt = NULL;
	if (st != SASL_DONE) {
		explicit_bzero(x->authzid, sizeof(x->authzid));
		explicit_bzero(x->user, sizeof(x->user));
		explicit_bzero(x->pass, sizeof(x->pass));
	}
	return st;
}

static enum sasl_status
sasl_bad(struct sasl *x, const char *why)
{
	snprintf(x->error, sizeof(x->error), "%s", why);
	return sasl_end(x, SASL_BAD);
}

/* The step's response, already known not to be "*". */
static enum sasl_status
sasl_response(struct sasl *x, const char *b64)
{
	switch (x->step) {
	case SASL_AT_PLAIN:
		if (auth_sasl_plain(b64, x->authzid, x->user, x->pass, AUTH_FIELD_MAX,
		    x->error, sizeof(x->error)) == -1)
			return sasl_end(x, SASL_BAD);
		return sasl_end(x, SASL_DONE);
	case SASL_AT_LOGIN_USER:
		if (auth_sasl_field(b64, x->user, sizeof(x->user)) == -1)
			return sasl_bad(x, "invalid base64 in the LOGIN user name");
		x->step = SASL_AT_LOGIN_PASS;
		x->prompt = prompt_pass;
		return SASL_CONTINUE;
	case SASL_AT_LOGIN_PASS:
		if (auth_sasl_field(b64, x->pass, sizeof(x->pass)) == -1)
			return sasl_bad(x, "invalid base64 in the LOGIN password");
		return sasl_end(x, SASL_DONE);
	}
	return sasl_bad(x, "no exchange in progress");
}

enum sasl_status
sasl_start(struct sasl *x, enum sasl_mech mech, const char *initial)
{
	sasl_clear(x);
	x->mech = mech;
	x->active = true;
	x->step = mech == SASL_PLAIN ? SASL_AT_PLAIN : SASL_AT_LOGIN_USER;
	if (initial == NULL) {
		x->prompt = mech == SASL_PLAIN ? "" : prompt_user;
		return SASL_CONTINUE;
	}
	/* "=" is an empty initial response, not a cancel and not base64. */
	return sasl_response(x, strcmp(initial, "=") == 0 ? "" : initial);
}

enum sasl_status
sasl_step(struct sasl *x, const char *line)
{
	if (!x->active)
		return sasl_bad(x, "no exchange in progress");
	if (strcmp(line, "*") == 0)
		return sasl_end(x, SASL_CANCELLED);
	return sasl_response(x, line);
}
