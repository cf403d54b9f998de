/*
 * store_pg_account.c - the PostgreSQL backend's accounts, domains and
 * aliases, the mapping of a recipient to its accounts (one statement: one
 * snapshot), and what the web console keeps (teacher flag, web logins, API
 * tokens). Same contracts and codes as the SQLite backend's; names compare
 * case-insensitively (ASCII), listings sort as SQLite's NOCASE does.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

/* ---- accounts ------------------------------------------------------------- */

/* Run an INSERT: 0, STORE_EXISTS when a unique key is taken ("NOUN NAME
 * already exists"), or -1. *changed_r: rows inserted. */
static int
run_insert(struct store_pg *p, enum pg_stmt id, const struct pgq *q, const char *noun,
    const char *name, int64_t *changed_r)
{
	char what[64];
	int64_t n;

	snprintf(what, sizeof(what), "add %s", noun);
	if ((n = pg_do(p, id, q, what)) >= 0) {
		if (changed_r != NULL)
			*changed_r = n;
		return 0;
	}
	if (strcmp(p->sqlstate, "23505") == 0) {
		store_setmsg(&p->base, "%s %s already exists", noun, name);
		return STORE_EXISTS;
	}
	return -1;
}

int
pg_user_add(struct store *st, const char *name, const char *hash)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };

	if (strlen(name) == 0 || strlen(name) > STORE_NAME_MAX) {
		store_setmsg(st, "account name must have 1 to %d characters", STORE_NAME_MAX);
		return -1;
	}
	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, name);
	pgq_text(&q, hash);
	pgq_int(&q, store_now());
	return run_insert(p, PG_USER_ADD, &q, "account", name, NULL);
}

/*
 * In one transaction: delete key with statement del (STORE_NOTFOUND, "no
 * NOUN KEY", when there was none), then the clean-ups in order, each bound
 * to key when it takes one (with_key). 0, STORE_NOTFOUND, -1.
 */
static int
delete_with_cleanup(struct store_pg *p, enum pg_stmt del, const char *key, const char *noun,
    const enum pg_stmt *cleanup, const bool *with_key, size_t ncleanup)
{
	struct pgq q = { 0 };
	char what[64];
	int64_t n;
	size_t i;

	snprintf(what, sizeof(what), "delete %s", noun);
	if (pg_enter(p, false) == -1 || pg_begin(p) == -1)
		return -1;
	pgq_text(&q, key);
	if ((n = pg_do(p, del, &q, what)) == -1)
		goto fail;
	if (n == 0) {
		pg_rollback(p);
		store_setmsg(&p->base, "no %s %s", noun, key);
		return STORE_NOTFOUND;
	}
	for (i = 0; i < ncleanup; i++)
		if (pg_do(p, cleanup[i], with_key[i] ? &q : NULL, what) == -1)
			goto fail;
	return pg_commit(p);
fail:
	pg_rollback(p);
	return -1;
}

int
pg_user_del(struct store *st, const char *name)
{
	/* Mailbox entries, aliases, web logins and tokens go with the account
	 * (ON DELETE CASCADE); then its lock, and the messages nobody
	 * references. */
	static const enum pg_stmt cleanup[] = { PG_LOCK_DEL_ACCOUNT, PG_ORPHANS_DEL };
	static const bool with_key[] = { true, false };

	return delete_with_cleanup(pg_of(st), PG_USER_DEL, name, "account", cleanup, with_key, 2);
}

int
pg_user_set_hash(struct store *st, const char *name, const char *hash)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	int64_t n;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, name);
	pgq_text(&q, hash);
	if ((n = pg_do(p, PG_USER_SET_HASH, &q, "set password")) == -1)
		return -1;
	if (n == 0) {
		store_setmsg(st, "no account %s", name);
		return STORE_NOTFOUND;
	}
	return 0;
}

/* A one-parameter lookup of one text column into dst: 0, STORE_NOTFOUND,
 * or -1 (also when dst is too small). */
static int
lookup_text(struct store_pg *p, enum pg_stmt id, const char *key, char *dst, size_t len)
{
	struct pgq q = { 0 };
	PGresult *r;
	int rc = 0;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, key);
	if ((r = pg_run(p, id, &q, false, "lookup")) == NULL)
		return -1;
	if (PQntuples(r) == 0)
		rc = STORE_NOTFOUND;
	else if (!pg_copy(r, 0, 0, dst, len)) {
		store_setmsg(&p->base, "value too long for the caller's buffer");
		rc = -1;
	}
	PQclear(r);
	return rc;
}

int
pg_user_get_hash(struct store *st, const char *name, char *hash_r, size_t len)
{
	int rc = lookup_text(pg_of(st), PG_USER_GET_HASH, name, hash_r, len);

	if (rc == STORE_NOTFOUND)
		store_setmsg(st, "no account %s", name);
	return rc;
}

/* Run a listing, calling cb with columns 0 and 1 (NULL if absent). */
static int
list_rows(struct store_pg *p, enum pg_stmt id, store_list_cb *cb, void *arg)
{
	PGresult *r;
	int i, n;

	if (pg_enter(p, false) == -1 || (r = pg_run(p, id, NULL, false, "list")) == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n; i++)
		cb(arg, PQgetvalue(r, i, 0), PQnfields(r) > 1 ? PQgetvalue(r, i, 1) : NULL);
	PQclear(r);
	return 0;
}

int
pg_user_list(struct store *st, store_list_cb *cb, void *arg)
{
	return list_rows(pg_of(st), PG_USER_LIST, cb, arg);
}

/* ---- domains -------------------------------------------------------------- */

int
pg_domain_add(struct store *st, const char *domain)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };

	if (strlen(domain) == 0 || strlen(domain) > 255) {
		store_setmsg(st, "a domain has 1 to 255 characters");
		return -1;
	}
	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, domain);
	pgq_int(&q, store_now());
	return run_insert(p, PG_DOMAIN_ADD, &q, "domain", domain, NULL);
}

int
pg_domain_del(struct store *st, const char *domain)
{
	/* Aliases "x@domain" serve nothing any more: they go too. */
	static const enum pg_stmt cleanup[] = { PG_DOMAIN_ALIASES_DEL };
	static const bool with_key[] = { true };

	return delete_with_cleanup(pg_of(st), PG_DOMAIN_DEL, domain, "domain", cleanup,
	    with_key, 1);
}

int
pg_domain_list(struct store *st, store_list_cb *cb, void *arg)
{
	return list_rows(pg_of(st), PG_DOMAIN_LIST, cb, arg);
}

int
pg_domain_lookup(struct store *st, const char *domain)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	PGresult *r;
	int found;

	if (domain == NULL || *domain == '\0')
		return 0;
	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, domain);
	if ((r = pg_run(p, PG_DOMAIN_GET, &q, false, "domain lookup")) == NULL)
		return -1;
	found = PQntuples(r) > 0;
	PQclear(r);
	return found;
}

/* ---- aliases ------------------------------------------------------------------ */

int
pg_alias_add(struct store *st, const char *address, const char *account)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	int64_t n = 0;
	int rc;

	if (strlen(address) == 0 || strlen(address) > STORE_ADDR_MAX) {
		store_setmsg(st, "an alias has 1 to %d characters", STORE_ADDR_MAX);
		return -1;
	}
	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, address);
	pgq_text(&q, account);
	pgq_int(&q, store_now());
	/* the INSERT ... SELECT adds nothing when the account does not exist */
	if ((rc = run_insert(p, PG_ALIAS_ADD, &q, "alias", address, &n)) == 0 && n == 0) {
		store_setmsg(st, "no account %s", account);
		return STORE_NOTFOUND;
	}
	return rc;
}

int
pg_alias_del(struct store *st, const char *address, const char *account)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	int64_t n;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, address);
	if (account != NULL)
		pgq_text(&q, account);
	n = pg_do(p, account != NULL ? PG_ALIAS_DEL_ONE : PG_ALIAS_DEL, &q, "delete alias");
	if (n == -1)
		return -1;
	if (n == 0) {
		if (account != NULL)
			store_setmsg(st, "alias %s does not lead to %s", address, account);
		else
			store_setmsg(st, "no alias %s", address);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
pg_alias_list(struct store *st, store_list_cb *cb, void *arg)
{
	return list_rows(pg_of(st), PG_ALIAS_LIST, cb, arg);
}

/* ---- resolving a recipient ---------------------------------------------------- */

int
pg_resolve_all(struct store *st, const char *local, const char *domain,
    store_list_cb *cb, void *arg)
{
	struct store_pg *p = pg_of(st);
	char addr[STORE_ADDR_MAX + 2];
	struct pgq q = { 0 };
	PGresult *r;
	int i, nrows, n = 0;
	int64_t best;

	if (local == NULL || *local == '\0') {
		store_setmsg(st, "empty local part");
		return STORE_NOTFOUND;
	}
	if (domain != NULL && *domain != '\0') {
		if (snprintf(addr, sizeof(addr), "%s@%s", local, domain) >= (int)sizeof(addr)) {
			store_setmsg(st, "address too long");
			return STORE_NOTFOUND;
		}
		pgq_text(&q, addr);
	} else
		pgq_text(&q, NULL);
	pgq_text(&q, local);
	if (pg_enter(p, false) == -1 ||
	    (r = pg_run(p, PG_RESOLVE, &q, false, "lookup alias")) == NULL)
		return -1;
	nrows = PQntuples(r);
	if (nrows == 0) {
		PQclear(r);
		store_setmsg(st, "no account or alias %s", local);
		return STORE_NOTFOUND;
	}
	/* the first kind of match that exists decides */
	best = pg_int(r, 0, 0);
	for (i = 0; i < nrows && pg_int(r, i, 0) == best; i++) {
		cb(arg, PQgetvalue(r, i, 1), NULL);
		n++;
	}
	PQclear(r);
	return n;
}

/* ---- the web console ------------------------------------------------------------ */

int
pg_user_set_teacher(struct store *st, const char *name, bool teacher)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	int64_t n;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, name);
	pgq_text(&q, teacher ? "true" : "false");
	if ((n = pg_do(p, PG_USER_SET_TEACHER, &q, "set teacher")) == -1)
		return -1;
	if (n == 0) {
		store_setmsg(st, "no account %s", name);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
pg_user_is_teacher(struct store *st, const char *name)
{
	char v[8];
	int rc = lookup_text(pg_of(st), PG_USER_IS_TEACHER, name, v, sizeof(v));

	if (rc == STORE_NOTFOUND)
		store_setmsg(st, "no account %s", name);
	if (rc != 0)
		return rc;
	return strcmp(v, "0") != 0;
}

int
pg_websession_add(struct store *st, const char *key, const char *account,
    const char *csrf, int64_t expires)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 }, purge = { 0 };
	int64_t n, now = store_now();

	if (pg_enter(p, false) == -1 || pg_begin(p) == -1)
		return -1;
	pgq_int(&purge, now);
	if (pg_do(p, PG_WEBSESS_PURGE, &purge, "purge web logins") == -1)
		goto fail;
	pgq_text(&q, key);
	pgq_text(&q, csrf);
	pgq_int(&q, now);
	pgq_int(&q, expires);
	pgq_text(&q, account);
	if ((n = pg_do(p, PG_WEBSESS_ADD, &q, "add web login")) == -1)
		goto fail;
	if (n == 0) {
		pg_rollback(p);
		store_setmsg(st, "no account %s", account);
		return STORE_NOTFOUND;
	}
	return pg_commit(p);
fail:
	pg_rollback(p);
	return -1;
}

int
pg_websession_get(struct store *st, const char *key, int64_t now,
    char *account_r, char *csrf_r)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	PGresult *r;
	int rc = STORE_NOTFOUND;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, key);
	pgq_int(&q, now);
	if ((r = pg_run(p, PG_WEBSESS_GET, &q, false, "read web login")) == NULL)
		return -1;
	if (PQntuples(r) > 0) {
		pg_copy(r, 0, 0, account_r, STORE_NAME_MAX + 1);
		pg_copy(r, 0, 1, csrf_r, STORE_CSRF_MAX + 1);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

int
pg_websession_del(struct store *st, const char *key)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, key);
	return pg_do(p, PG_WEBSESS_DEL, &q, "delete web login") == -1 ? -1 : 0;
}

int
pg_token_add(struct store *st, const char *key, const char *account)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	int64_t n = 0;
	int rc;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, key);
	pgq_int(&q, store_now());
	pgq_text(&q, account);
	if ((rc = run_insert(p, PG_TOKEN_ADD, &q, "token", "", &n)) != 0) {
		if (rc == STORE_EXISTS)
			store_setmsg(st, "token already exists");
		return rc;
	}
	if (n == 0) {
		store_setmsg(st, "no account %s", account);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
pg_token_get(struct store *st, const char *key, char *account_r)
{
	return lookup_text(pg_of(st), PG_TOKEN_GET, key, account_r, STORE_NAME_MAX + 1);
}
