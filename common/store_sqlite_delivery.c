/*
 * store_sqlite_delivery.c - the SQLite backend's commit of deliveries
 * (store_delivery.c collects them): the message, its mailbox entries and its
 * queue items in one transaction. Group commit: a batch shares one
 * transaction and one fsync, each delivery in its own savepoint so that one
 * failure undoes only itself. A spooled body becomes a file of its own
 * (store_sqlite_bodies.c: the spool file is linked, never copied); where
 * that cannot be, it goes in as a zeroblob of the final size, filled from
 * the spool with incremental blob writes in the same savepoint:
 * docs/PERFORMANCE.md says why this and not chunk rows.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_sqlite.h"

/* Copy a spooled body into the zeroblob of message id. 0 or -1. */
static int
spool_copy(struct store_sqlite *st, struct store_delivery *d, int64_t id)
{
	sqlite3_blob *b;
	size_t off = 0;
	ssize_t r;
	int rc;

	if (store_delivery_flush(d) == -1) {
		store_seterrno(&st->base, errno, "spool");
		return -1;
	}
	if (sqlite3_blob_open(st->db, "main", "messages", "body", id, 1, &b) != SQLITE_OK) {
		store_seterr(st, "open the message blob");
		return -1;
	}
	while (off < d->spooled) {
		size_t want = d->spooled - off < d->cap ? d->spooled - off : d->cap;
		if ((r = pread(d->fd, d->body, want, (off_t)off)) <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			store_setmsg(&st->base, "spool: %s", r == 0 ? "short file" : strerror(errno));
			sqlite3_blob_close(b);
			return -1;
		}
		if ((rc = sqlite3_blob_write(b, d->body, (int)r, (int)off)) != SQLITE_OK) {
			store_seterr(st, "write the message blob");
			sqlite3_blob_close(b);
			return -1;
		}
		off += (size_t)r;
	}
	if (sqlite3_blob_close(b) != SQLITE_OK) {
		store_seterr(st, "close the message blob");
		return -1;
	}
	return 0;
}

/* Write one delivery inside the current transaction. 0 or -1. */
static int
delivery_write(struct store_sqlite *st, struct store_delivery *d)
{
	sqlite3_stmt *s;
	int64_t id, now = store_now();
	size_t i, size = store_delivery_size(d);
	int rc;

	if (d->nrcpts == 0 && d->nremotes == 0) {
		store_setmsg(&st->base, "delivery without recipients");
		return -1;
	}
	s = store_stmt_get(st, ST_MSG_ADD);
	if (d->spooled > 0)
		sqlite3_bind_zeroblob(s, 1, 0);		/* stored apart, or below */
	else if (d->len == 0)
		sqlite3_bind_zeroblob(s, 1, 0);
	else
		sqlite3_bind_blob64(s, 1, d->body, d->len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	store_bind_text(s, 3, d->sender);
	store_bind_text(s, 4, d->session_id);
	sqlite3_bind_int64(s, 5, now);
	if (store_step_done(st, s, "store message") == -1)
		return -1;
	id = sqlite3_last_insert_rowid(st->db);
	d->id = id;
	if (d->spooled > 0 && (rc = bodies_link(st, d, id)) != 0) {
		if (rc == -1)
			return -1;
		/* Not apart after all: into the database, spool_copy() fills it. */
		s = store_stmt_get(st, ST_MSG_BODY_INLINE);
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, (int64_t)size);
		if (store_step_done(st, s, "store message") == -1 || spool_copy(st, d, id) == -1)
			return -1;
	}

	for (i = 0; i < d->nrcpts; i++) {
		s = store_stmt_get(st, ST_ENTRY_ADD);
		store_bind_text(s, 1, d->rcpts[i]);
		sqlite3_bind_int64(s, 2, id);
		sqlite3_bind_int64(s, 3, (int64_t)size);
		sqlite3_bind_int64(s, 4, now);
		if (sqlite3_step(s) != SQLITE_DONE) {
			snprintf(st->base.err, sizeof(st->base.err), "deliver to %s: %s", d->rcpts[i],
			    store_is_constraint(st) ? "no such account" : sqlite3_errmsg(st->db));
			store_stmt_done(s);
			return -1;
		}
		store_stmt_done(s);
	}
	for (i = 0; i < d->nremotes; i++) {
		s = store_stmt_get(st, ST_QUEUE_ADD);
		sqlite3_bind_int64(s, 1, id);
		store_bind_text(s, 2, d->sender);
		store_bind_text(s, 3, d->remotes[i]);
		sqlite3_bind_int64(s, 4, now);
		if (store_step_done(st, s, "queue message") == -1)
			return -1;
	}
	d->id = id;
	return 0;
}

int
sqlite_delivery_commit_batch(struct store *base, struct store_delivery **ds,
    size_t n, int *result)
{
	struct store_sqlite *st = sqlite_of(base);
	size_t i;

	for (i = 0; i < n; i++) {
		result[i] = -1;
		ds[i]->id = -1;
	}
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		bodies_prepare(ds[i]);
	if (store_begin(st) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (store_exec(st, ST_SAVEPOINT, "savepoint") == -1)
			goto fail;
		if (delivery_write(st, ds[i]) == 0) {
			if (store_exec(st, ST_RELEASE, "release savepoint") == -1)
				goto fail;
			result[i] = 0;
		} else {
			/* Its file goes while the lock is ours; if SQLite rolled
			 * the whole transaction back itself, the lock is gone and
			 * the file is left to the sweep (store_sqlite_bodies.c). */
			if (ds[i]->apart && !sqlite3_get_autocommit(st->db))
				bodies_unlink(st, ds[i]->id);
			ds[i]->id = -1;
			result[i] = st->base.err_full ? STORE_FULL : -1;
			/* Undo this delivery alone; the others stay. */
			if (sqlite3_get_autocommit(st->db) ||
			    store_exec(st, ST_ROLLBACK_TO, "rollback to savepoint") == -1 ||
			    store_exec(st, ST_RELEASE, "release savepoint") == -1)
				goto fail;
		}
	}
	/* The files before the rows that name them (store_sqlite_bodies.c). */
	if (bodies_sync(st, ds, n, result) == -1)
		goto fail;
	if (store_commit(st) == -1)
		goto lost;
	/* Deleted or replaced during the commit: the messages went into a file
	 * nobody will see again, so none of them may be acknowledged. */
	if (sqlite_file_check(&st->base) != 0)
		goto lost;
	return 0;
fail:
	/* Rolled back for sure: the files go, before the lock does. */
	for (i = 0; i < n && !sqlite3_get_autocommit(st->db); i++)
		if (ds[i]->apart && ds[i]->id != -1)
			bodies_unlink(st, ds[i]->id);
	store_rollback(st);
lost:
	for (i = 0; i < n; i++) {
		result[i] = st->base.err_full ? STORE_FULL : -1;
		ds[i]->id = -1;
	}
	return -1;
}
