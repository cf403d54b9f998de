/*
 * login.c - login names and the password check behind every login.
 *
 * A login name is an account name ("ana") or an address of it in any local
 * domain ("ana@lab.test", "Ana@LAB.test"): the domain part is checked with
 * store_domain_lookup() and dropped. Account names never hold an '@'
 * (mailcli admin refuses them), so the split is unambiguous. The password is
 * verified with auth_verify_password() against the account's hash, or
 * against auth_dummy_hash() when there is no such account, so that the time
 * taken does not tell. An authzid (SASL PLAIN) must name the same account.
 * Never: logs or keeps a password; answers differently for an unknown name
 * and a wrong password.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "log.h"
#include "login.h"

/* Copy src lower-cased into dst (len bytes, truncating). */
static void
copy_lower(char *dst, size_t len, const char *src, size_t n)
{
	size_t i;

	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	for (i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
}

int
login_resolve_name(struct store *st, const char *name, char *account_r, size_t len)
{
	const char *at = strrchr(name, '@');
	size_t local = at != NULL ? (size_t)(at - name) : strlen(name);
	int ours = at != NULL && local > 0 ? store_domain_lookup(st, at + 1) : 1;

	if (local == 0 || local > STORE_NAME_MAX || local >= len || ours != 1) {
		copy_lower(account_r, len, name, strlen(name));
		return ours == -1 ? -1 : STORE_NOTFOUND;
	}
	memcpy(account_r, name, local);
	account_r[local] = '\0';
	return 0;
}

enum login_result
login_verify(struct store *st, const char *name, const char *authzid, const char *pass,
    char *account_r, size_t len)
{
	char hash[AUTH_HASH_MAX], azacct[STORE_NAME_MAX + 1];
	const char *verify = auth_dummy_hash();
	bool ok;
	int rc, check;

	rc = login_resolve_name(st, name, account_r, len);
	if (rc == 0) {
		rc = store_user_get_hash(st, account_r, hash, sizeof(hash));
		if (rc == 0)
			verify = hash;
		else if (rc != STORE_NOTFOUND)
			log_warnx("event=auth-lookup-failed error=\"%s\"", store_errmsg(st));
	}
	/* Verify even for unknown names: the time taken tells nothing. */
	check = auth_check_password(pass, verify);
	ok = check == 1 && rc == 0;
	explicit_bzero(hash, sizeof(hash));
	if (rc != 0 && rc != STORE_NOTFOUND)
		return LOGIN_TEMPFAIL;	/* the store failed, not the client */
	if (check == -1) {
		log_warnx("event=auth-check-failed error=\"crypt(3) failed: out of memory, or "
		    "a damaged hash\"");
		return LOGIN_TEMPFAIL;	/* the server's memory, not the password */
	}
	if (ok && authzid[0] != '\0' &&
	    (login_resolve_name(st, authzid, azacct, sizeof(azacct)) != 0 ||
	    strcasecmp(azacct, account_r) != 0))
		ok = false;	/* acting as another user is not supported */
	return ok ? LOGIN_OK : LOGIN_FAILED;
}
