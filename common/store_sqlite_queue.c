/*
 * store_sqlite_queue.c - the outbound queue in the store: the items due, the
 * claims of queue runners on them (one write transaction each, so that two
 * processes never claim one item), a failed attempt (defer), delivered or
 * bounced items (delete, with their message when nothing else references
 * it), flush, the clamp after a clock step, and reading a queued message.
 */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "store_sqlite.h"

/* ---- outbound queue ------------------------------------------------------ */

/*
 * Step s, a bound statement returning queue items (id, message, sender,
 * rcpt, created, next_attempt, attempts, last_error), to its end and reset
 * it: the items in *items_r (malloc'd) and *n_r. 0 or -1 (as "what").
 */
static int
queue_rows(struct store_sqlite *st, sqlite3_stmt *s, const char *what,
    struct store_queue_item **items_r, size_t *n_r)
{
	struct store_queue_item *v = NULL, *q;
	size_t n = 0, cap = 0;
	int rc;

	*items_r = NULL;
	*n_r = 0;
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
		store_seterr(st, what);
		free(v);
		return -1;
	}
	*items_r = v;
	*n_r = n;
	return 0;
}

int
sqlite_queue_list(struct store *base, int64_t now, struct store_queue_item **items_r, size_t *n_r)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_QUEUE_LIST);

	sqlite3_bind_int64(s, 1, now);
	return queue_rows(st, s, "list queue", items_r, n_r);
}

/* Order of store_queue_list: next_attempt, then id (RETURNING has none). */
static int
item_cmp(const void *pa, const void *pb)
{
	const struct store_queue_item *a = pa, *b = pb;

	if (a->next_attempt != b->next_attempt)
		return a->next_attempt < b->next_attempt ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * Drop the claims of the runners (other than claimer) that hold live ones
 * but are processes of this host that no longer exist (inside the caller's
 * transaction). 0 or -1.
 */
static int
unclaim_gone(struct store_sqlite *st, const char *claimer, int64_t now)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_QUEUE_CLAIMERS);
	char (*gone)[STORE_OWNER_MAX] = NULL;
	size_t n = 0, cap = 0, i;
	const char *who;
	int rc;

	store_bind_text(s, 1, claimer);
	sqlite3_bind_int64(s, 2, now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((who = (const char *)sqlite3_column_text(s, 0)) == NULL || !store_owner_gone(who))
			continue;
		if ((gone = store_grow(st, s, gone, n, &cap, sizeof(*gone), "claimers")) == NULL)
			return -1;
		snprintf(gone[n++], sizeof(*gone), "%s", who);
	}
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "list queue claimers");
		free(gone);
		return -1;
	}
	for (i = 0; i < n; i++) {
		s = store_stmt_get(st, ST_QUEUE_UNCLAIM);
		store_bind_text(s, 1, gone[i]);
		if (store_step_done(st, s, "release a dead runner's claims") == -1) {
			free(gone);
			return -1;
		}
	}
	free(gone);
	return 0;
}

int
sqlite_queue_claim(struct store *base, int64_t now, const char *claimer, int64_t until,
    size_t max, struct store_queue_item **items_r, size_t *n_r)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;

	assert(max > 0 && claimer[0] != '\0');
	*items_r = NULL;
	*n_r = 0;
	/* One write transaction from the look at the claims to the claim:
	 * another process's claim cannot land in between. */
	if (store_begin(st) == -1)
		return -1;
	if (unclaim_gone(st, claimer, now) == -1)
		goto fail;
	s = store_stmt_get(st, ST_QUEUE_RENEW);
	store_bind_text(s, 1, claimer);
	sqlite3_bind_int64(s, 2, until);
	if (store_step_done(st, s, "renew queue claims") == -1)
		goto fail;
	s = store_stmt_get(st, ST_QUEUE_CLAIM);
	store_bind_text(s, 1, claimer);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, until);
	sqlite3_bind_int64(s, 4, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if (queue_rows(st, s, "claim queue items", items_r, n_r) == -1)
		goto fail;
	if (store_commit(st) == -1) {
		free(*items_r);
		*items_r = NULL;
		*n_r = 0;
		return -1;
	}
	if (*n_r > 1)
		qsort(*items_r, *n_r, sizeof(**items_r), item_cmp);
	return 0;
fail:
	store_rollback(st);
	return -1;
}

int
sqlite_queue_release(struct store *base, const char *claimer)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s = store_stmt_get(st, ST_QUEUE_UNCLAIM);

	store_bind_text(s, 1, claimer);
	return store_step_done(st, s, "release queue claims");
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
