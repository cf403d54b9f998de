/*
 * store_sqlite_mailbox.c - POP3 mailboxes in the store: the per-account lock
 * (taken over after its ttl, or at once when its owner process or session
 * is gone; never from a live session of this process),
 * the snapshot of a mailbox, expunge in one transaction (UPDATE state,
 * RFC 1939 6), and message bodies read in pieces, never whole: the cache
 * of open bodies of struct store lives here, each opened and read by
 * store_sqlite_bodies.c (a blob, or a file when stored apart).
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_sqlite.h"

/* ---- mailboxes ---------------------------------------------------------- */

/*
 * The lock's writes do not wait for the disk: each runs with
 * synchronous=NORMAL, and FULL is set again after it. The WAL keeps them in
 * order with every other commit (the next FULL commit syncs them too), a
 * crash of the process keeps them, and only a crash of the machine can roll
 * the last ones back. Then every session that held a lock died with the
 * machine: a lock that comes back has an owner that is gone (taken over at
 * once), and a lock that is lost was held by nobody. What it saves is the
 * two fdatasyncs of a POP3 session, one at login and one at QUIT; the
 * expunge at QUIT stays FULL. Setting the pragma touches no file; should it
 * fail all the same, the lock call fails with it.
 * Runs the bound statement s and resets it; returns the rows it changed, or -1.
 */
static int
lock_write(struct store_sqlite *st, sqlite3_stmt *s, const char *what)
{
	int changed = -1;

	if (store_exec(st, ST_SYNC_NORMAL, "relax the lock's durability") == -1) {
		store_stmt_done(s);
		return -1;
	}
	if (store_step_done(st, s, what) == 0)
		changed = sqlite3_changes(st->db);
	if (store_exec(st, ST_SYNC_FULL, "restore durability") == -1)
		return -1;
	return changed;
}

/* One attempt at taking the lock (free, ours, or taken before cutoff):
 * 0, STORE_LOCKED or -1. */
static int
lock_take(struct store_sqlite *st, const char *account, const char *owner, int64_t cutoff)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_LOCK_TAKE);
	int n;

	store_bind_text(s, 1, account);
	store_bind_text(s, 2, owner);
	sqlite3_bind_int64(s, 3, store_now());
	sqlite3_bind_int64(s, 4, cutoff);
	if ((n = lock_write(st, s, "lock mailbox")) == -1)
		return -1;
	return n == 0 ? STORE_LOCKED : 0;
}

/* Taken: remember it as a live session's, or give it back. */
static int
lock_taken(struct store_sqlite *st, const char *account, const char *owner)
{
	if (store_held_add(owner) == 0)
		return 0;
	(void)sqlite_mailbox_unlock(&st->base, account, owner);
	store_setmsg(&st->base, "out of memory locking the mailbox of %s", account);
	return -1;
}

int
sqlite_mailbox_lock(struct store *base, const char *account, const char *owner, long ttl)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	char holder[STORE_OWNER_MAX] = "";
	int64_t cutoff = INT64_MIN;	/* first: only a free lock, or ours */
	int rc;

	if ((rc = lock_take(st, account, owner, cutoff)) != STORE_LOCKED)
		return rc == 0 ? lock_taken(st, account, owner) : rc;
	s = store_stmt_get(st, ST_LOCK_OWNER);
	store_bind_text(s, 1, account);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
		snprintf(holder, sizeof(holder), "%s", (const char *)sqlite3_column_text(s, 0));
	store_stmt_done(s);
	switch (holder[0] != '\0' ? store_owner_state(holder) : STORE_OWNER_UNKNOWN) {
	case STORE_OWNER_GONE:	/* crashed, or a session whose unlock failed */
		s = store_stmt_get(st, ST_LOCK_DEL);
		store_bind_text(s, 1, account);
		store_bind_text(s, 2, holder);
		if (lock_write(st, s, "unlock mailbox") == -1)
			return -1;
		break;
	case STORE_OWNER_MINE:	/* refreshed by its session: age means nothing */
		store_setmsg(&st->base, "mailbox of %s is in use", account);
		return STORE_LOCKED;
	case STORE_OWNER_UNKNOWN:
	case STORE_OWNER_ALIVE:
		cutoff = store_now() - ttl;
		break;
	}
	if ((rc = lock_take(st, account, owner, cutoff)) == 0)
		return lock_taken(st, account, owner);
	if (rc == STORE_LOCKED)
		store_setmsg(&st->base, "mailbox of %s is in use", account);
	return rc;
}

int
sqlite_mailbox_touch(struct store *base, const char *account, const char *owner)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_LOCK_TOUCH);
	int n;

	store_bind_text(s, 1, account);
	store_bind_text(s, 2, owner);
	sqlite3_bind_int64(s, 3, store_now());
	if ((n = lock_write(st, s, "refresh lock")) == -1)
		return -1;
	if (n == 0) {
		store_setmsg(&st->base, "lock on %s was taken over", account);
		return STORE_LOCKED;
	}
	return 0;
}

int
sqlite_mailbox_unlock(struct store *base, const char *account, const char *owner)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_LOCK_DEL);

	store_held_remove(owner);	/* even if the delete fails: the session is over */

	store_bind_text(s, 1, account);
	store_bind_text(s, 2, owner);
	return lock_write(st, s, "unlock mailbox") == -1 ? -1 : 0;
}

int
sqlite_mailbox_list(struct store *base, const char *account,
    struct store_msg **msgs_r, size_t *n_r)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_MAILBOX_LIST);
	struct store_msg *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*msgs_r = NULL;
	*n_r = 0;
	store_bind_text(s, 1, account);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((v = store_grow(st, s, v, n, &cap, sizeof(*v), "a mailbox")) == NULL)
			return -1;
		v[n].entry_id = sqlite3_column_int64(s, 0);
		v[n].size = sqlite3_column_int64(s, 1);
		v[n].arrived = sqlite3_column_int64(s, 2);
		snprintf(v[n].uidl, sizeof(v[n].uidl), "%s",
		    (const char *)sqlite3_column_text(s, 3));
		n++;
	}
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "list mailbox");
		free(v);
		return -1;
	}
	*msgs_r = v;
	*n_r = n;
	return 0;
}

/* The open blob for key, or NULL. */
struct store_blob *
store_blob_find(struct store_sqlite *st, int64_t key)
{
	size_t i;

	for (i = 0; i < STORE_BLOBS; i++)
		if (store_body_is_open(&st->blobs[i]) && st->blobs[i].key == key)
			return &st->blobs[i];
	return NULL;
}

/* Open message_id's body into a free (or the least used) slot. */
struct store_blob *
store_blob_open(struct store_sqlite *st, int64_t key, int64_t message_id, int *rc_r)
{
	struct store_blob *b = &st->blobs[0];
	size_t i;

	for (i = 0; i < STORE_BLOBS; i++) {
		if (!store_body_is_open(&st->blobs[i])) {
			b = &st->blobs[i];
			break;
		}
		if (st->blobs[i].used < b->used)
			b = &st->blobs[i];
	}
	store_body_close(b);
	if ((*rc_r = store_body_open(st, b, message_id)) != 0)
		return NULL;
	b->key = key;
	return b;
}

/* Read from an open body; release it once its end is reached. */
int
store_blob_read(struct store_sqlite *st, struct store_blob *b, int64_t offset, void *dst,
    size_t len, size_t *got_r)
{
	int rc;

	b->used = ++st->clock;
	rc = store_body_pread(st, b, offset, dst, len, got_r);
	if (rc == -1 || offset + (int64_t)*got_r >= b->size)
		store_body_close(b);
	return rc;
}

/*
 * Find and open the body of a mailbox entry. Bodies never change, so the
 * snapshot of the blobs already open serves; only an entry newer than that
 * snapshot needs a fresh one (the blobs are released and the lookup redone).
 */
static struct store_blob *
entry_open(struct store_sqlite *st, int64_t entry_id, int *rc_r)
{
	struct store_blob *b;
	sqlite3_stmt *s;
	int64_t message_id;
	int rc;

	for (;;) {
		s = store_stmt_keep_blobs(st, ST_ENTRY_MESSAGE);
		sqlite3_bind_int64(s, 1, entry_id);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			break;
		store_stmt_done(s);
		if (rc == SQLITE_DONE && store_blobs_open(st)) {
			store_blobs_release(st);	/* an older snapshot: look again */
			continue;
		}
		if (rc == SQLITE_DONE) {
			store_setmsg(&st->base, "no mailbox entry %lld", (long long)entry_id);
			*rc_r = STORE_NOTFOUND;
		} else {
			store_seterr(st, "find message");
			*rc_r = -1;
		}
		return NULL;
	}
	/* The blob is opened while the lookup still holds its read
	 * transaction, so both share one (one WAL read lock taken and given
	 * back per RETR, not two). */
	message_id = sqlite3_column_int64(s, 0);
	b = store_blob_open(st, entry_id, message_id, rc_r);
	store_stmt_done(s);
	return b;
}

int
sqlite_msg_read(struct store *base, int64_t entry_id, int64_t offset,
    void *dst, size_t len, size_t *got_r)
{
	struct store_sqlite *st = sqlite_of(base);
	struct store_blob *b;
	int rc;

	*got_r = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	/* entry ids are > 0, message ids are kept as -id: no collision */
	if ((b = store_blob_find(st, entry_id)) == NULL &&
	    (b = entry_open(st, entry_id, &rc)) == NULL)
		return rc;
	return store_blob_read(st, b, offset, dst, len, got_r);
}

void
sqlite_read_done(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);

	store_blobs_release(st);
}

int
store_message_drop_orphan(struct store_sqlite *st, int64_t message_id)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_MSG_DEL_IF_ORPHAN);

	sqlite3_bind_int64(s, 1, message_id);
	return bodies_delete_step(st, s, "delete message");
}

/* One try of store_mailbox_expunge(). */
static int
expunge_once(struct store_sqlite *st, const char *account, const int64_t *entry_ids, size_t n)
{
	sqlite3_stmt *s;
	int64_t message_id;
	size_t i;
	int rc;

	if (n == 0)
		return 0;
	if (store_begin(st) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		s = store_stmt_get(st, ST_ENTRY_DEL);
		sqlite3_bind_int64(s, 1, entry_ids[i]);
		store_bind_text(s, 2, account);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE) {	/* already gone: nothing to do */
			store_stmt_done(s);
			continue;
		}
		if (rc != SQLITE_ROW) {
			store_seterr(st, "delete entry");
			store_stmt_done(s);
			goto fail;
		}
		message_id = sqlite3_column_int64(s, 0);
		/* RETURNING: step to the end so the delete completes. */
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			;
		store_stmt_done(s);
		if (rc != SQLITE_DONE) {
			store_seterr(st, "delete entry");
			goto fail;
		}
		if (store_message_drop_orphan(st, message_id) == -1)
			goto fail;
	}
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int
sqlite_mailbox_expunge(struct store *base, const char *account,
    const int64_t *entry_ids, size_t n)
{
	struct store_sqlite *st = sqlite_of(base);

	if (expunge_once(st, account, entry_ids, n) == 0)
		return 0;
	/* A full disk: release the reserve and try once more (store.h). */
	if (!st->base.err_full || store_reserve_release(st) == -1)
		return -1;
	return expunge_once(st, account, entry_ids, n);
}
