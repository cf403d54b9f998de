/*
 * sasl.h - the server side of a SASL exchange (RFC 4422) for the PLAIN
 * (RFC 4616) and LOGIN mechanisms, as one step machine that smtpd's AUTH
 * (RFC 4954) and pop3d's AUTH (RFC 5034) both drive: initial responses
 * ("=" is an empty one), "*" to cancel, strict base64 (anything else is
 * refused), and the base64 prompts. The daemons only map the status to their
 * protocol's replies (334 / "+ "; 235, 535, 501; +OK / -ERR).
 * Never: writes, logs or keeps a password past sasl_clear().
 */
#ifndef CORREIO_SASL_H
#define CORREIO_SASL_H

#include <stdbool.h>

#include "auth.h"

/* The mechanisms, in the order they are advertised (EHLO, CAPA, AUTH). */
#define SASL_MECHANISMS	"PLAIN LOGIN"

enum sasl_mech {
	SASL_PLAIN,
	SASL_LOGIN
};

enum sasl_status {
	SASL_CONTINUE,	/* send the challenge x->prompt, then the next line */
	SASL_DONE,	/* x->authzid, x->user and x->pass hold the credentials */
	SASL_CANCELLED,	/* the client sent "*" (RFC 4954 4, RFC 5034 4) */
	SASL_BAD	/* not valid base64, or a malformed response; x->error says why */
};

/* Where a bad response came in (for the daemons' wording). */
enum sasl_where {
	SASL_AT_PLAIN,		/* the PLAIN response */
	SASL_AT_LOGIN_USER,	/* the LOGIN user name */
	SASL_AT_LOGIN_PASS	/* the LOGIN password */
};

struct sasl {
	enum sasl_mech	 mech;
	enum sasl_where	 step;		/* what the next line is */
	bool		 active;	/* between sasl_start and DONE/CANCELLED/BAD */
	const char	*prompt;	/* base64 challenge to send after CONTINUE ("" for PLAIN) */
	char		 authzid[AUTH_FIELD_MAX];
	char		 user[AUTH_FIELD_MAX];
	char		 pass[AUTH_FIELD_MAX];	/* wiped by sasl_clear */
	char		 error[128];		/* after SASL_BAD */
};

/* Find a mechanism by name (case-insensitive). Returns 0, or -1 when it is
 * not one of SASL_MECHANISMS. */
int	sasl_mech_parse(const char *name, enum sasl_mech *mech_r);
/*
 * Begin an exchange. initial is the initial response given with the
 * command, NULL when there was none ("=" stands for an empty one). Returns
 * CONTINUE (send x->prompt), DONE or BAD.
 */
enum sasl_status sasl_start(struct sasl *x, enum sasl_mech mech, const char *initial);
/* One response line (without its CRLF) while x->active. Returns CONTINUE,
 * DONE, CANCELLED or BAD; after anything but CONTINUE the exchange is over. */
enum sasl_status sasl_step(struct sasl *x, const char *line);
/* Forget the exchange and wipe the credentials. */
void	sasl_clear(struct sasl *x);

#endif
