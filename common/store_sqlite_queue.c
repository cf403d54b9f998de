/*
 * store_queue.c - the outbound queue in the store: the items due, a failed
 * attempt (defer), delivered or bounced items (delete, with their message
 * when nothing else references it), flush, the clamp after a clock step,
 * and reading a queued message.
 */

#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "store_sqlite.h"

/* ---- outbound queue ------------------------------------------------------ */

int
sqlite_queue_list(struct store *base, int64_t now, struct store_queue_item **items_r, size_t *n_r)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_QUEUE_LIST);
	struct store_queue_item *v = NULL, *q;
	size_t n = 0, cap = 0;
	int rc;

	*items_r = NULL;
	*n_r = 0;
	sqlite3_bind_int64(s, 1, now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((v = store_grow(st, s, v, n, &cap, sizeof(*v), "the queue")) == NULL)
			return -1;
		q = &v[n++];
		q->id = sqlite3_column_int64(s, 0);
		q->message_id = sqlite3_column_int64(s, 1);
		snprintf(q->sender, sizeof(q->sender), "%s", (const char *)sqlite3_column_text(s, 2));
		snprintf(q->rcpt, sizeof(q->rcpt), "%s", (const char *)sqlite3_column_text(s, 3));
		q->created = sqlite3_column_int64(s, 4);
		q->next_attempt = sqlite3_column_int64(s, 5);
		q->attempts = sqlite3_column_int(s, 6);
		snprintf(q->last_error, sizeof(q->last_error), "%s",
		    (const char *)sqlite3_column_text(s, 7));
	}
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "list queue");
		free(v);
		return -1;
	}
	*items_r = v;
	*n_r = n;
	return 0;
}

int
sqlite_queue_defer(struct store *base, int64_t id, int64_t next_attempt, const char *error)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_QUEUE_DEFER);

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, next_attempt);
	store_bind_text(s, 3, error ? error : "");
	if (store_step_done(st, s, "defer queue item") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		store_setmsg(&st->base, "no queue item %lld", (long long)id);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
sqlite_queue_delete(struct store *base, int64_t id)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	int64_t message_id;
	int rc;

	if (store_begin(st) == -1)
		return -1;
	s = store_stmt_get(st, ST_QUEUE_GET);
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		store_stmt_done(s);
		store_rollback(st);
		store_setmsg(&st->base, "no queue item %lld", (long long)id);
		return STORE_NOTFOUND;
	}
	if (rc != SQLITE_ROW) {
		store_seterr(st, "find queue item");
		store_stmt_done(s);
		goto fail;
	}
	message_id = sqlite3_column_int64(s, 0);
	store_stmt_done(s);
	s = store_stmt_get(st, ST_QUEUE_DEL);
	sqlite3_bind_int64(s, 1, id);
	if (store_step_done(st, s, "delete queue item") == -1)
		goto fail;
	if (store_message_drop_orphan(st, message_id) == -1)
		goto fail;
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int
sqlite_queue_flush(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);

	return store_exec(st, ST_QUEUE_FLUSH, "flush queue");
}

int
sqlite_queue_clamp(struct store *base, int64_t latest)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_QUEUE_CLAMP);

	sqlite3_bind_int64(s, 1, latest);
	if (store_step_done(st, s, "clamp queue") == -1)
		return -1;
	return sqlite3_changes(st->db);
}

int64_t
sqlite_queue_max_id(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_QUEUE_MAX_ID);
	int64_t id = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	else
		store_seterr(st, "queue max id");
	store_stmt_done(s);
	return id;
}

int
sqlite_message_read(struct store *base, int64_t message_id, int64_t offset,
    void *dst, size_t len, size_t *got_r)
{
	struct store_sqlite *st = sqlite_of(base);
	struct store_blob *b;
	int rc;

	*got_r = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	/* keyed by -id so that message ids and entry ids never collide */
	if ((b = store_blob_find(st, -message_id)) == NULL &&
	    (b = store_blob_open(st, -message_id, message_id, &rc)) == NULL) {
		if (rc != STORE_NOTFOUND || !store_blobs_open(st))
			return rc;
		store_blobs_release(st);	/* perhaps newer than their snapshot */
		if ((b = store_blob_open(st, -message_id, message_id, &rc)) == NULL)
			return rc;
	}
	return store_blob_read(st, b, offset, dst, len, got_r);
}

int64_t
sqlite_message_size(struct store *base, int64_t message_id)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_MSG_SIZE);
	int64_t size = -1;
	int rc;

	sqlite3_bind_int64(s, 1, message_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		size = sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_DONE)
		store_setmsg(&st->base, "no message %lld", (long long)message_id);
	else
		store_seterr(st, "message size");
	store_stmt_done(s);
	return size;
}
