/*
 * store_web.c - what the web console (webd) keeps in the store: the teacher
 * flag of accounts, web logins (keyed by the SHA-256 of their cookie, with a
 * CSRF token and an expiry), API tokens (their SHA-256 only), and one
 * mailbox entry looked up for its owner. A cookie or a token itself is never
 * stored; webd writes nothing else.
 */

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store_sqlite.h"

int
sqlite_user_set_teacher(struct store *base, const char *name, bool teacher)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_USER_SET_TEACHER);

	store_bind_text(s, 1, name);
	sqlite3_bind_int(s, 2, teacher ? 1 : 0);
	if (store_step_done(st, s, "set teacher") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		store_setmsg(&st->base, "no account %s", name);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
sqlite_user_is_teacher(struct store *base, const char *name)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_USER_IS_TEACHER);
	int rc, teacher = 0;

	store_bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		teacher = sqlite3_column_int(s, 0) != 0;
	store_stmt_done(s);
	if (rc == SQLITE_DONE) {
		store_setmsg(&st->base, "no account %s", name);
		return STORE_NOTFOUND;
	}
	if (rc != SQLITE_ROW) {
		store_seterr(st, "read teacher");
		return -1;
	}
	return teacher;
}

int
sqlite_websession_add(struct store *base, const char *key, const char *account,
    const char *csrf, int64_t expires)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	int64_t now = store_now();

	if (store_begin(st) == -1)
		return -1;
	s = store_stmt_get(st, ST_WEBSESS_PURGE);
	sqlite3_bind_int64(s, 1, now);
	if (store_step_done(st, s, "purge web logins") == -1)
		goto fail;
	s = store_stmt_get(st, ST_WEBSESS_ADD);
	store_bind_text(s, 1, key);
	store_bind_text(s, 2, csrf);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, expires);
	store_bind_text(s, 5, account);
	if (store_step_done(st, s, "add web login") == -1)
		goto fail;
	if (sqlite3_changes(st->db) == 0) {
		store_rollback(st);
		store_setmsg(&st->base, "no account %s", account);
		return STORE_NOTFOUND;
	}
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

/* Copy column i of s into dst (len bytes); false when it does not fit. */
static bool
column_copy(sqlite3_stmt *s, int i, char *dst, size_t len)
{
	const char *v = (const char *)sqlite3_column_text(s, i);

	return snprintf(dst, len, "%s", v != NULL ? v : "") < (int)len;
}

int
sqlite_websession_get(struct store *base, const char *key, int64_t now,
    char *account_r, char *csrf_r)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_WEBSESS_GET);
	int rc;

	store_bind_text(s, 1, key);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		column_copy(s, 0, account_r, STORE_NAME_MAX + 1);
		column_copy(s, 1, csrf_r, STORE_CSRF_MAX + 1);
	}
	store_stmt_done(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return STORE_NOTFOUND;
	store_seterr(st, "read web login");
	return -1;
}

int
sqlite_websession_del(struct store *base, const char *key)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_WEBSESS_DEL);

	store_bind_text(s, 1, key);
	return store_step_done(st, s, "delete web login");
}

int
sqlite_token_add(struct store *base, const char *key, const char *account)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_TOKEN_ADD);
	int rc;

	store_bind_text(s, 1, key);
	sqlite3_bind_int64(s, 2, store_now());
	store_bind_text(s, 3, account);
	rc = sqlite3_step(s);
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		if (store_is_constraint(st)) {
			store_setmsg(&st->base, "token already exists");
			return STORE_EXISTS;
		}
		store_seterr(st, "add token");
		return -1;
	}
	if (sqlite3_changes(st->db) == 0) {
		store_setmsg(&st->base, "no account %s", account);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
sqlite_token_get(struct store *base, const char *key, char *account_r)
{
	struct store_sqlite *st = sqlite_of(base);

	return store_lookup_text(st, ST_TOKEN_GET, key, account_r, STORE_NAME_MAX + 1);
}

int
sqlite_mailbox_entry(struct store *base, const char *account, int64_t entry_id,
    struct store_msg_info *info_r)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_MAILBOX_ENTRY);
	int rc;

	memset(info_r, 0, sizeof(*info_r));
	store_bind_text(s, 1, account);
	sqlite3_bind_int64(s, 2, entry_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		info_r->msg.entry_id = sqlite3_column_int64(s, 0);
		info_r->msg.size = sqlite3_column_int64(s, 1);
		info_r->msg.arrived = sqlite3_column_int64(s, 2);
		column_copy(s, 3, info_r->msg.uidl, sizeof(info_r->msg.uidl));
		column_copy(s, 4, info_r->session, sizeof(info_r->session));
		column_copy(s, 5, info_r->sender, sizeof(info_r->sender));
	}
	store_stmt_done(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE) {
		store_setmsg(&st->base, "no message %lld", (long long)entry_id);
		return STORE_NOTFOUND;
	}
	store_seterr(st, "read mailbox entry");
	return -1;
}
