/*
 * store_account.c - accounts, domains and aliases in the store, and the
 * mapping of a recipient to an account (store_resolve). Passwords are kept
 * as crypt(3) hashes only; deleting an account or a domain takes what
 * served only it (mailbox entries, locks, aliases, orphaned messages) in
 * the same transaction.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "store_sqlite.h"
#include "strfmt.h"

#define STORE_WHAT_MAX	64	/* "delete NOUN" in an error message */

/* ---- accounts, domains, aliases ---------------------------------------- */

/* Run a bound INSERT and reset it: 0, STORE_EXISTS when a unique key is
 * taken ("NOUN NAME already exists"), or -1 (error recorded as "add NOUN"). */
static int
step_insert(struct store_sqlite *st, sqlite3_stmt *s, const char *noun, const char *name)
{
	char what[STORE_NAME_MAX];
	int rc = sqlite3_step(s);

	store_stmt_done(s);
	if (rc == SQLITE_DONE)
		return 0;
	if (store_is_constraint(st)) {
		store_setmsg(&st->base, "%s %s already exists", noun, name);
		return STORE_EXISTS;
	}
	snprintf(what, sizeof(what), "add %s", noun);
	store_seterr(st, what);		/* keeps the code: a full disk is told apart */
	return -1;
}

int
sqlite_user_add(struct store *base, const char *name, const char *hash)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_USER_ADD);

	if (strlen(name) == 0 || strlen(name) > STORE_NAME_MAX) {
		store_setmsg(&st->base, "account name must have 1 to %d characters", STORE_NAME_MAX);
		return -1;
	}
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, hash);
	sqlite3_bind_int64(s, 3, store_now());
	return step_insert(st, s, "account", name);
}

/*
 * In one transaction: delete key with statement del (STORE_NOTFOUND, "no
 * NOUN KEY", when there was none), then run the clean-up statements in
 * order, each bound to key when it takes a parameter. 0, STORE_NOTFOUND, -1.
 */
static int
delete_with_cleanup(struct store_sqlite *st, enum store_stmt del, const char *key, const char *noun,
    const enum store_stmt *cleanup, size_t ncleanup)
{
	sqlite3_stmt *s;
	char what[STORE_WHAT_MAX];
	size_t i;

	strfmt(what, sizeof(what), "delete %s", noun);
	if (store_begin(st) == -1)
		return -1;
	s = store_stmt_get(st, del);
	store_bind_text(s, 1, key);
	if (store_step_done(st, s, what) == -1)
		goto fail;
	if (sqlite3_changes(st->db) == 0) {
		store_rollback(st);
		store_setmsg(&st->base, "no %s %s", noun, key);
		return STORE_NOTFOUND;
	}
	for (i = 0; i < ncleanup; i++) {
		s = store_stmt_get(st, cleanup[i]);
		if (sqlite3_bind_parameter_count(s) > 0)
			store_bind_text(s, 1, key);
		if ((cleanup[i] == ST_ORPHANS_DEL ? bodies_delete_step(st, s, what) :
		    store_step_done(st, s, what)) == -1)
			goto fail;
	}
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int
sqlite_user_del(struct store *base, const char *name)
{
	struct store_sqlite *st = sqlite_of(base);

	/* Mailbox entries and aliases go with the account (ON DELETE
	 * CASCADE); then its lock, and the messages nobody references. */
	static const enum store_stmt cleanup[] = { ST_LOCK_DEL_ACCOUNT, ST_ORPHANS_DEL };

	return delete_with_cleanup(st, ST_USER_DEL, name, "account", cleanup, 2);
}

int
sqlite_user_set_hash(struct store *base, const char *name, const char *hash)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_USER_SET_HASH);

	store_bind_text(s, 1, name);
	store_bind_text(s, 2, hash);
	if (store_step_done(st, s, "set password") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		store_setmsg(&st->base, "no account %s", name);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
sqlite_user_get_hash(struct store *base, const char *name, char *hash_r, size_t len)
{
	struct store_sqlite *st = sqlite_of(base);
	int rc = store_lookup_text(st, ST_USER_GET_HASH, name, hash_r, len);

	if (rc == STORE_NOTFOUND)
		store_setmsg(&st->base, "no account %s", name);
	return rc;
}

/* Run a listing statement, calling cb with columns 0 and 1 (NULL if absent). */
static int
list_rows(struct store_sqlite *st, enum store_stmt id, store_list_cb *cb, void *arg)
{
	sqlite3_stmt *s = store_stmt_get(st, id);
	int rc, ncol = sqlite3_column_count(s);

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cb(arg, (const char *)sqlite3_column_text(s, 0),
		    ncol > 1 ? (const char *)sqlite3_column_text(s, 1) : NULL);
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "list");
		return -1;
	}
	return 0;
}

int
sqlite_user_list(struct store *base, store_list_cb *cb, void *arg)
{
	struct store_sqlite *st = sqlite_of(base);

	return list_rows(st, ST_USER_LIST, cb, arg);
}

int
sqlite_domain_add(struct store *base, const char *domain)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_DOMAIN_ADD);

	if (strlen(domain) == 0 || strlen(domain) > 255) {
		store_setmsg(&st->base, "a domain has 1 to 255 characters");
		return -1;
	}
	store_bind_text(s, 1, domain);
	sqlite3_bind_int64(s, 2, store_now());
	return step_insert(st, s, "domain", domain);
}

int
sqlite_domain_del(struct store *base, const char *domain)
{
	struct store_sqlite *st = sqlite_of(base);

	/* Aliases "x@domain" serve nothing any more: they go too. */
	static const enum store_stmt cleanup[] = { ST_DOMAIN_ALIASES_DEL };

	return delete_with_cleanup(st, ST_DOMAIN_DEL, domain, "domain", cleanup, 1);
}

int
sqlite_domain_list(struct store *base, store_list_cb *cb, void *arg)
{
	struct store_sqlite *st = sqlite_of(base);

	return list_rows(st, ST_DOMAIN_LIST, cb, arg);
}

int
sqlite_domain_lookup(struct store *base, const char *domain)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	int rc;

	if (domain == NULL || *domain == '\0')
		return 0;
	s = store_stmt_get(st, ST_DOMAIN_GET);
	store_bind_text(s, 1, domain);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_seterr(st, "domain lookup");
	store_stmt_done(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
sqlite_alias_add(struct store *base, const char *address, const char *account)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_ALIAS_ADD);
	int rc;

	if (strlen(address) == 0 || strlen(address) > STORE_ADDR_MAX) {
		store_setmsg(&st->base, "an alias has 1 to %d characters", STORE_ADDR_MAX);
		return -1;
	}
	store_bind_text(s, 1, address);
	store_bind_text(s, 2, account);
	sqlite3_bind_int64(s, 3, store_now());
	/* the INSERT ... SELECT adds nothing when the account does not exist */
	if ((rc = step_insert(st, s, "alias", address)) == 0 && sqlite3_changes(st->db) == 0) {
		store_setmsg(&st->base, "no account %s", account);
		return STORE_NOTFOUND;
	}
	return rc;
}

int
sqlite_alias_del(struct store *base, const char *address, const char *account)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, account != NULL ? ST_ALIAS_DEL_ONE : ST_ALIAS_DEL);

	store_bind_text(s, 1, address);
	if (account != NULL)
		store_bind_text(s, 2, account);
	if (store_step_done(st, s, "delete alias") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		if (account != NULL)
			store_setmsg(&st->base, "alias %s does not lead to %s", address, account);
		else
			store_setmsg(&st->base, "no alias %s", address);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
sqlite_alias_list(struct store *base, store_list_cb *cb, void *arg)
{
	struct store_sqlite *st = sqlite_of(base);

	return list_rows(st, ST_ALIAS_LIST, cb, arg);
}

/*
 * The accounts of alias key, to cb: their number (0 when key is no alias),
 * or -1.
 */
static int
alias_members(struct store_sqlite *st, const char *key, store_list_cb *cb, void *arg)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_ALIAS_GET);
	int rc, n = 0;

	store_bind_text(s, 1, key);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cb(arg, (const char *)sqlite3_column_text(s, 0), NULL);
		n++;
	}
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "lookup alias");
		return -1;
	}
	return n;
}

static int
resolve_all(struct store_sqlite *st, const char *local, const char *domain,
    store_list_cb *cb, void *arg)
{
	char addr[STORE_ADDR_MAX + 2], account[STORE_NAME_MAX + 1];
	int rc;

	if (local == NULL || *local == '\0') {
		store_setmsg(&st->base, "empty local part");
		return STORE_NOTFOUND;
	}
	if (domain != NULL && *domain != '\0') {
		if (snprintf(addr, sizeof(addr), "%s@%s", local, domain) >= (int)sizeof(addr)) {
			store_setmsg(&st->base, "address too long");
			return STORE_NOTFOUND;
		}
		if ((rc = alias_members(st, addr, cb, arg)) != 0)
			return rc;
	}
	if ((rc = alias_members(st, local, cb, arg)) != 0)
		return rc;
	rc = store_lookup_text(st, ST_USER_NAME, local, account, sizeof(account));
	/* RFC 5321 4.5.1: postmaster must always be accepted. Without an
	 * alias or an account of that name, it reaches the first account
	 * created (as postmaster reaches root on a Unix host). */
	if (rc == STORE_NOTFOUND && strcasecmp(local, "postmaster") == 0)
		rc = store_lookup_text(st, ST_FIRST_ACCOUNT, local, account, sizeof(account));
	if (rc == STORE_NOTFOUND)
		store_setmsg(&st->base, "no account or alias %s", local);
	if (rc != 0)
		return rc;
	cb(arg, account, NULL);
	return 1;
}

/* The lookups of one recipient in one snapshot: one read lock, not four. */
int
sqlite_resolve_all(struct store *base, const char *local, const char *domain,
    store_list_cb *cb, void *arg)
{
	struct store_sqlite *st = sqlite_of(base);
	bool began = store_read_begin(st);
	int rc = resolve_all(st, local, domain, cb, arg);

	store_read_end(st, began);
	return rc;
}
