/*
 * login.h - who is logging in: the login name a client gives (USER, the
 * SASL authcid and authzid) mapped to an account, and the password checked
 * against the account's crypt(3) hash. smtpd's AUTH and pop3d's USER/PASS
 * and AUTH all come here, so "ana" and "ana@lab.test" are the same login
 * everywhere. Runs on a password-check thread (authpool.c) or, in tests, on
 * the caller's thread; it only reads the store handle it is given.
 * Never: logs, keeps or copies the password; tells whether an account exists
 * (an unknown name costs the same crypt(3) call as a wrong password).
 */
#ifndef CORREIO_LOGIN_H
#define CORREIO_LOGIN_H

#include <stddef.h>

#include "store.h"

/* The result of login_verify(). */
enum login_result {
	LOGIN_OK = 0,
	LOGIN_FAILED = -1,	/* wrong name or password: delayed and counted */
	LOGIN_TEMPFAIL = -2	/* the store could not be read: not the client's fault */
};

/*
 * Map a login name to the account name to look up: "ana" is "ana", and
 * "ana@DOMAIN" is "ana" when DOMAIN is a local domain (case-insensitive).
 * Returns 0 with the name in account_r (len bytes), or STORE_NOTFOUND when
 * the name cannot be an account (empty, too long, another domain), or -1
 * when the store cannot say whether the domain is local; then account_r
 * still holds a key naming the login, lower-cased, for the failed-login
 * policy.
 */
int	login_resolve_name(struct store *st, const char *name, char *account_r, size_t len);
/*
 * Check a login: name (as given), authzid ("" or a name for the same
 * account) and password. account_r (at least STORE_NAME_MAX + 1 bytes) gets
 * the account name on LOGIN_OK, and otherwise the key of the attempted
 * account for the failed-login policy.
 */
enum login_result login_verify(struct store *st, const char *name, const char *authzid,
	    const char *pass, char *account_r, size_t len);

#endif
