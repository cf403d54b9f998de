/*
 * store_pg_mail.c - the PostgreSQL backend's mail: deliveries (group commit,
 * a SAVEPOINT per delivery, bodies streamed into 256 KiB chunk rows), the
 * POP3 maildrop lock, mailbox listings, bodies read back in bounded memory,
 * expunge in one transaction, one entry for the web console, and the
 * outbound queue with its runners' claims (FOR UPDATE SKIP LOCKED: two
 * runners claiming at one instant, on one host or two, never wait for
 * each other nor take one item both).
 *
 * The maildrop lock is a lease row (locks), not an advisory lock. pop3d
 * takes and releases it from worker threads, each with its own handle and
 * so its own connection, and a session-level advisory lock belongs to the
 * connection that took it: another connection of the same session could
 * neither release nor refresh it. A lease row can be taken and released
 * through any connection, is visible to every host, and keeps the SQLite
 * backend's rules: owner "HOST/PID/tag" (store_lock_owner), re-entrant for
 * its owner, taken over after its ttl, at once when its owner is a process
 * of this host that no longer exists, and never by age from a live
 * session of this process. On top of that it records the server process
 * (pg_backend_pid() and its start time) of the connection that took or last
 * touched it: a lock whose connection is no longer in pg_stat_activity (its
 * host died, or its pop3d with it) is taken over at once, in the same
 * atomic upsert that checks it. A database restart ends every connection,
 * so it frees every lock too; a session that lost its lock finds out at its
 * next touch (STORE_LOCKED), as after a ttl takeover.
 */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_pg.h"

#define PG_ID_TEXT		24	/* an id in an array literal, with its comma */

/* ---- deliveries ----------------------------------------------------------- */

/* Octets [off, off + want) of d's body, in p's chunk buffer (or d's own
 * memory when the body was never spooled): *ptr_r. 0 or -1. */
static int
body_part(struct store_pg *p, const struct store_delivery *d, int64_t off, size_t want,
    unsigned char **buf, const unsigned char **ptr_r)
{
	size_t have = 0, got;

	if (d->spooled == 0) {
		*ptr_r = d->body + off;
		return 0;
	}
	if (*buf == NULL && (*buf = malloc(PG_CHUNK)) == NULL) {
		store_setmsg(&p->base, "out of memory writing a message");
		return -1;
	}
	while (have < want) {
		if (store_delivery_pread(d, off + (int64_t)have, *buf + have, want - have,
		    &got) == -1) {
			store_seterrno(&p->base, errno, "spool");
			return -1;
		}
		if (got == 0) {
			store_setmsg(&p->base, "spool: short file");
			return -1;
		}
		have += got;
	}
	*ptr_r = *buf;
	return 0;
}

/*
 * n strings of width octets each at v as a PostgreSQL array literal
 * ("{"ana","bob"}": each element quoted, its " and \ escaped), malloc'd.
 * It goes as a parameter: the escaping is the array syntax's, not SQL's.
 */
static char *
text_array(struct store_pg *p, const char *v, size_t n, size_t width)
{
	const char *e;
	char *s, *at;
	size_t i;

	/* UNSAFE: n is bounded by the caller's max_recipients; each element
	 * at most doubles, plus its quotes and comma */
	if ((s = malloc(n * (2 * width + 3) + 3)) == NULL) {
		store_setmsg(&p->base, "out of memory for a delivery");
		return NULL;
	}
	at = s;
	*at++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*at++ = ',';
		*at++ = '"';
		for (e = v + i * width; *e != '\0'; e++) {
			if (*e == '"' || *e == '\\')
				*at++ = '\\';
			*at++ = *e;
		}
		*at++ = '"';
	}
	*at++ = '}';
	*at = '\0';
	return s;
}

/*
 * Write one delivery inside the current transaction: one statement for the
 * message, its first chunk, its entries and its queue items, then a
 * statement per further chunk. 0 or -1 (an unknown account: SQLSTATE
 * 23502, the caller names it once the savepoint is rolled back).
 */
static int
delivery_write(struct store_pg *p, struct store_delivery *d, unsigned char **buf)
{
	struct pgq q = { 0 };
	const unsigned char *part;
	int64_t id, seq, now = store_now(), size = (int64_t)(d->spooled + d->len), off;
	char *rcpts = NULL, *remotes = NULL;
	size_t want;
	PGresult *r;

	p->sqlstate[0] = '\0';
	if (d->nrcpts == 0 && d->nremotes == 0) {
		store_setmsg(&p->base, "delivery without recipients");
		return -1;
	}
	want = (size_t)size < PG_CHUNK ? (size_t)size : PG_CHUNK;
	pgq_int(&q, size);
	pgq_text(&q, d->sender);
	pgq_text(&q, d->session_id);
	pgq_int(&q, now);
	if (size == 0)
		pgq_text(&q, NULL);
	else {
		if (body_part(p, d, 0, want, buf, &part) == -1)
			return -1;
		pgq_bytes(&q, part, want);
	}
	if ((rcpts = text_array(p, (const char *)d->rcpts, d->nrcpts, sizeof(*d->rcpts))) == NULL ||
	    (remotes = text_array(p, (const char *)d->remotes, d->nremotes,
	    sizeof(*d->remotes))) == NULL) {
		free(rcpts);
		return -1;
	}
	pgq_text(&q, rcpts);
	pgq_text(&q, remotes);
	r = pg_run(p, PG_MSG_ADD, &q, false, "store message");
	free(rcpts);
	free(remotes);
	if (r == NULL)
		return -1;
	id = pg_int(r, 0, 0);
	PQclear(r);
	for (off = (int64_t)want, seq = 1; off < size; off += (int64_t)want, seq++) {
		want = (size_t)(size - off) < PG_CHUNK ? (size_t)(size - off) : PG_CHUNK;
		if (body_part(p, d, off, want, buf, &part) == -1)
			return -1;
		memset(&q, 0, sizeof(q));
		pgq_int(&q, id);
		pgq_int(&q, seq);
		pgq_bytes(&q, part, want);
		if (pg_do(p, PG_CHUNK_ADD, &q, "store message") == -1)
			return -1;
	}
	d->id = id;
	return 0;
}

/* After a delivery failed on an unknown account (and its savepoint or
 * transaction was rolled back): say which one. */
static void
name_missing(struct store_pg *p, const struct store_delivery *d)
{
	struct pgq q = { 0 };
	char *rcpts, name[STORE_NAME_MAX + 1] = "?";
	PGresult *r;

	if (strcmp(p->sqlstate, "23502") != 0 ||
	    (rcpts = text_array(p, (const char *)d->rcpts, d->nrcpts, sizeof(*d->rcpts))) == NULL)
		return;
	pgq_text(&q, rcpts);
	r = pg_run(p, PG_ACCOUNT_MISSING, &q, false, "deliver");
	free(rcpts);
	if (r == NULL)
		return;
	if (PQntuples(r) > 0)
		pg_copy(r, 0, 0, name, sizeof(name));
	PQclear(r);
	store_setmsg(&p->base, "deliver to %s: no such account", name);
}

static bool
connected(const struct store_pg *p)
{
	return p->conn != NULL && PQstatus(p->conn) == CONNECTION_OK;
}

/*
 * One attempt at a batch, on p's connection: 0 when the transaction
 * committed (or a batch of one was refused for itself: result[0]), -1
 * when nothing was committed.
 */
static int
batch_once(struct store_pg *p, struct store_delivery **ds, size_t n, int *result)
{
	unsigned char *buf = NULL;
	bool last, sp = n > 1;
	size_t i;

	for (i = 0; i < n; i++) {
		result[i] = -1;
		ds[i]->id = -1;
	}
	if (pg_cmd(p, sp ? "BEGIN; SAVEPOINT delivery" : "BEGIN", "begin transaction") == -1)
		goto lost;
	for (i = 0; i < n; i++) {
		last = i + 1 == n;
		if (delivery_write(p, ds[i], &buf) == 0) {
			result[i] = 0;
			if (sp && pg_cmd(p, last ? "RELEASE delivery" :
			    "RELEASE delivery; SAVEPOINT delivery", "savepoint") == -1)
				goto fail;
			continue;
		}
		ds[i]->id = -1;
		result[i] = store_err_full(&p->base) ? STORE_FULL : -1;
		if (!connected(p))
			goto fail;
		if (!sp) {	/* the batch was this one delivery */
			pg_rollback(p);
			name_missing(p, ds[i]);
			free(buf);
			return 0;
		}
		/* Undo this delivery alone; the others stay. */
		if (pg_cmd(p, last ? "ROLLBACK TO delivery; RELEASE delivery" :
		    "ROLLBACK TO delivery", "rollback to savepoint") == -1)
			goto fail;
		name_missing(p, ds[i]);
	}
	free(buf);
	buf = NULL;
	/* Not known committed (a lost connection during COMMIT): not one
	 * of them may be acknowledged, nor refused (they may be stored). */
	if (pg_commit(p) == -1) {
		for (i = 0; i < n; i++) {
			if (result[i] == 0 && p->commit_sent && p->lost)
				result[i] = STORE_UNKNOWN;
			else
				result[i] = store_err_full(&p->base) ? STORE_FULL : -1;
			ds[i]->id = -1;
		}
		return -1;
	}
	return 0;
fail:
	pg_rollback(p);
lost:
	free(buf);
	for (i = 0; i < n; i++) {
		result[i] = store_err_full(&p->base) ? STORE_FULL : -1;
		ds[i]->id = -1;
	}
	return -1;
}

/*
 * Group commit. Round trips count more than anything here, so the
 * savepoint commands ride together: "BEGIN; SAVEPOINT", then after each
 * delivery "RELEASE; SAVEPOINT" (or "ROLLBACK TO", which keeps the
 * savepoint for the next), and a batch of one needs none: its failure is
 * the transaction's. A 4 KB delivery of a batch costs two round trips.
 * A batch whose connection broke before its COMMIT was sent is written
 * once more on a new connection (the server rolled it back whole).
 */
int
pg_delivery_commit_batch(struct store *st, struct store_delivery **ds,
    size_t n, int *result)
{
	struct store_pg *p = pg_of(st);
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		result[i] = -1;
		ds[i]->id = -1;
	}
	if (n == 0)
		return 0;
	if (pg_enter(p, false) == -1)
		return -1;
	while ((rc = batch_once(p, ds, n, result)) == -1 && pg_retry(p))
		;
	return rc;
}

/* ---- the maildrop lock ------------------------------------------------------ */

/* One attempt: free, ours, taken before cutoff, or (dead_conn) held through
 * a connection that is gone. 0, STORE_LOCKED or -1. */
static int
lock_take(struct store_pg *p, const char *account, const char *owner, int64_t cutoff,
    bool dead_conn)
{
	struct pgq q = { 0 };
	int64_t n;

	pgq_text(&q, account);
	pgq_text(&q, owner);
	pgq_int(&q, store_now());
	pgq_int(&q, cutoff);
	pgq_text(&q, dead_conn ? "true" : "false");
	if ((n = pg_do(p, PG_LOCK_TAKE, &q, "lock mailbox")) == -1)
		return -1;
	return n == 0 ? STORE_LOCKED : 0;
}

static int
lock_taken(struct store_pg *p, const char *account, const char *owner)
{
	if (store_held_add(owner) == 0)
		return 0;
	(void)pg_mailbox_unlock(&p->base, account, owner);
	store_setmsg(&p->base, "out of memory locking the mailbox of %s", account);
	return -1;
}

int
pg_mailbox_lock(struct store *st, const char *account, const char *owner, long ttl)
{
	struct store_pg *p = pg_of(st);
	char holder[STORE_OWNER_MAX] = "";
	struct pgq q = { 0 };
	int64_t cutoff = INT64_MIN;
	bool dead_conn = false;
	PGresult *r;
	int rc;

	if (pg_enter(p, false) == -1)
		return -1;
	if ((rc = lock_take(p, account, owner, cutoff, false)) != STORE_LOCKED)
		return rc == 0 ? lock_taken(p, account, owner) : rc;
	pgq_text(&q, account);
	if ((r = pg_run(p, PG_LOCK_OWNER, &q, false, "lock mailbox")) == NULL)
		return -1;
	if (PQntuples(r) > 0)
		pg_copy(r, 0, 0, holder, sizeof(holder));
	PQclear(r);
	switch (holder[0] != '\0' ? store_owner_state(holder) : STORE_OWNER_UNKNOWN) {
	case STORE_OWNER_GONE:	/* crashed, or a session whose unlock failed */
		memset(&q, 0, sizeof(q));
		pgq_text(&q, account);
		pgq_text(&q, holder);
		if (pg_do(p, PG_LOCK_DEL, &q, "unlock mailbox") == -1)
			return -1;
		break;
	case STORE_OWNER_MINE:	/* refreshed by its session: age means nothing */
		store_setmsg(st, "mailbox of %s is in use", account);
		return STORE_LOCKED;
	case STORE_OWNER_UNKNOWN:
	case STORE_OWNER_ALIVE:
		cutoff = store_now() - ttl;
		dead_conn = true;
		break;
	}
	if ((rc = lock_take(p, account, owner, cutoff, dead_conn)) == 0)
		return lock_taken(p, account, owner);
	if (rc == STORE_LOCKED)
		store_setmsg(st, "mailbox of %s is in use", account);
	return rc;
}

int
pg_mailbox_touch(struct store *st, const char *account, const char *owner)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	int64_t n;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, account);
	pgq_text(&q, owner);
	pgq_int(&q, store_now());
	if ((n = pg_do(p, PG_LOCK_TOUCH, &q, "refresh lock")) == -1)
		return -1;
	if (n == 0) {
		store_setmsg(st, "lock on %s was taken over", account);
		return STORE_LOCKED;
	}
	return 0;
}

int
pg_mailbox_unlock(struct store *st, const char *account, const char *owner)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };

	store_held_remove(owner);	/* even if the delete fails: the session is over */
	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, account);
	pgq_text(&q, owner);
	return pg_do(p, PG_LOCK_DEL, &q, "unlock mailbox") == -1 ? -1 : 0;
}

/* ---- mailboxes -------------------------------------------------------------- */

int
pg_mailbox_list(struct store *st, const char *account,
    struct store_msg **msgs_r, size_t *n_r)
{
	struct store_pg *p = pg_of(st);
	struct store_msg *v = NULL;
	struct pgq q = { 0 };
	PGresult *r;
	int i, n;

	*msgs_r = NULL;
	*n_r = 0;
	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, account);
	if ((r = pg_run(p, PG_MAILBOX_LIST, &q, false, "list mailbox")) == NULL)
		return -1;
	n = PQntuples(r);
	if (n > 0 && (v = calloc((size_t)n, sizeof(*v))) == NULL) {
		PQclear(r);
		store_setmsg(st, "out of memory listing a mailbox");
		return -1;
	}
	for (i = 0; i < n; i++) {
		v[i].entry_id = pg_int(r, i, 0);
		v[i].size = pg_int(r, i, 1);
		v[i].arrived = pg_int(r, i, 2);
		pg_copy(r, i, 3, v[i].uidl, sizeof(v[i].uidl));
	}
	PQclear(r);
	*msgs_r = v;
	*n_r = (size_t)n;
	return 0;
}

/* ---- bodies ----------------------------------------------------------------- */

static struct pg_reader *
reader_find(struct store_pg *p, int64_t key)
{
	size_t i;

	for (i = 0; i < PG_READERS; i++)
		if (p->readers[i].key == key)
			return &p->readers[i];
	return NULL;
}

/* A free reader (or the least used one) for key. */
static struct pg_reader *
reader_new(struct store_pg *p, int64_t key, int64_t message, int64_t size)
{
	struct pg_reader *rd = &p->readers[0];
	size_t i;

	for (i = 0; i < PG_READERS; i++) {
		if (p->readers[i].key == 0) {
			rd = &p->readers[i];
			break;
		}
		if (p->readers[i].used < rd->used)
			rd = &p->readers[i];
	}
	rd->key = key;
	rd->message = message;
	rd->size = size;
	rd->seq = -1;
	return rd;
}

/* Fetch chunk seq of rd's message into rd. 0, STORE_NOTFOUND or -1. */
static int
chunk_fetch(struct store_pg *p, struct pg_reader *rd, int64_t seq)
{
	struct pgq q = { 0 };
	PGresult *r;
	int len;

	if (rd->data == NULL && (rd->data = malloc(PG_CHUNK)) == NULL) {
		store_setmsg(&p->base, "out of memory reading a message");
		return -1;
	}
	pgq_int(&q, rd->message);
	pgq_int(&q, seq);
	if ((r = pg_run(p, PG_CHUNK_GET, &q, true, "read message")) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		store_setmsg(&p->base, "message %lld is gone", (long long)rd->message);
		return STORE_NOTFOUND;
	}
	len = PQgetlength(r, 0, 0);
	if (len < 0 || (size_t)len > PG_CHUNK) {
		PQclear(r);
		store_setmsg(&p->base, "message %lld: a chunk of %d octets", (long long)rd->message, len);
		return -1;
	}
	memcpy(rd->data, PQgetvalue(r, 0, 0), (size_t)len);
	PQclear(r);
	rd->len = (size_t)len;
	rd->seq = seq;
	return 0;
}

/* Read from rd's message at offset; the reader is freed at its end. */
static int
reader_read(struct store_pg *p, struct pg_reader *rd, int64_t offset, void *dst,
    size_t len, size_t *got_r)
{
	size_t n, done = 0, in, take;
	int64_t at, seq;
	int rc;

	rd->used = ++p->clock;
	if (offset < 0 || offset >= rd->size) {
		rd->key = 0;
		return 0;
	}
	n = (size_t)(rd->size - offset) < len ? (size_t)(rd->size - offset) : len;
	while (done < n) {
		at = offset + (int64_t)done;
		seq = at / (int64_t)PG_CHUNK;
		if (rd->seq != seq && (rc = chunk_fetch(p, rd, seq)) != 0) {
			rd->key = 0;
			return rc;
		}
		in = (size_t)(at - seq * (int64_t)PG_CHUNK);
		if (in >= rd->len) {
			store_setmsg(&p->base, "message %lld is shorter than its size",
			    (long long)rd->message);
			rd->key = 0;
			return -1;
		}
		take = rd->len - in < n - done ? rd->len - in : n - done;
		memcpy((unsigned char *)dst + done, rd->data + in, take);
		done += take;
	}
	if (offset + (int64_t)n >= rd->size)
		rd->key = 0;
	*got_r = n;
	return 0;
}

int
pg_msg_read(struct store *st, int64_t entry_id, int64_t offset,
    void *dst, size_t len, size_t *got_r)
{
	struct store_pg *p = pg_of(st);
	struct pg_reader *rd;
	struct pgq q = { 0 };
	PGresult *r;

	*got_r = 0;
	/* entry ids are > 0, message ids are kept as -id: no collision */
	if ((rd = reader_find(p, entry_id)) == NULL) {
		if (pg_enter(p, true) == -1)
			return -1;
		pgq_int(&q, entry_id);
		if ((r = pg_run(p, PG_ENTRY_MESSAGE, &q, false, "find message")) == NULL)
			return -1;
		if (PQntuples(r) == 0) {
			PQclear(r);
			store_setmsg(st, "no mailbox entry %lld", (long long)entry_id);
			return STORE_NOTFOUND;
		}
		rd = reader_new(p, entry_id, pg_int(r, 0, 0), pg_int(r, 0, 1));
		PQclear(r);
	} else if (pg_enter(p, true) == -1)
		return -1;
	return reader_read(p, rd, offset, dst, len, got_r);
}

int
pg_message_read(struct store *st, int64_t message_id, int64_t offset,
    void *dst, size_t len, size_t *got_r)
{
	struct store_pg *p = pg_of(st);
	struct pg_reader *rd;
	struct pgq q = { 0 };
	PGresult *r;

	*got_r = 0;
	if (pg_enter(p, true) == -1)
		return -1;
	if ((rd = reader_find(p, -message_id)) == NULL) {
		pgq_int(&q, message_id);
		if ((r = pg_run(p, PG_MSG_SIZE, &q, false, "find message")) == NULL)
			return -1;
		if (PQntuples(r) == 0) {
			PQclear(r);
			store_setmsg(st, "no message %lld", (long long)message_id);
			return STORE_NOTFOUND;
		}
		rd = reader_new(p, -message_id, message_id, pg_int(r, 0, 0));
		PQclear(r);
	}
	return reader_read(p, rd, offset, dst, len, got_r);
}

void
pg_read_done(struct store *st)
{
	pg_readers_drop(pg_of(st));
}

int64_t
pg_message_size(struct store *st, int64_t message_id)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	PGresult *r;
	int64_t size = -1;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_int(&q, message_id);
	if ((r = pg_run(p, PG_MSG_SIZE, &q, false, "message size")) == NULL)
		return -1;
	if (PQntuples(r) > 0)
		size = pg_int(r, 0, 0);
	else
		store_setmsg(st, "no message %lld", (long long)message_id);
	PQclear(r);
	return size;
}

/* ---- deleting ------------------------------------------------------------------ */

/* ids as a PostgreSQL array literal "{1,2,3}" (ids only: no user data). */
static char *
id_array(struct store_pg *p, const int64_t *ids, size_t n)
{
	char *s, *at;
	size_t i;

	/* UNSAFE: n is a mailbox's size; PG_ID_TEXT octets each */
	if ((s = malloc(n * PG_ID_TEXT + 3)) == NULL) {
		store_setmsg(&p->base, "out of memory deleting messages");
		return NULL;
	}
	at = s;
	*at++ = '{';
	for (i = 0; i < n; i++)
		at += sprintf(at, "%s%lld", i ? "," : "", (long long)ids[i]);
	*at++ = '}';
	*at = '\0';
	return s;
}

/*
 * Inside the caller's transaction: drop the messages of r's first column
 * (those just unreferenced) that nothing references any more. They are
 * locked first, so that of two transactions taking the last two references
 * of one message, the second sees the first's delete. 0 or -1.
 */
static int
drop_orphans(struct store_pg *p, PGresult *r)
{
	struct pgq q = { 0 };
	int64_t *ids;
	char *arr;
	int i, n = PQntuples(r), rc = -1;

	if (n == 0)
		return 0;
	if ((ids = calloc((size_t)n, sizeof(*ids))) == NULL) {
		store_setmsg(&p->base, "out of memory deleting messages");
		return -1;
	}
	for (i = 0; i < n; i++)
		ids[i] = pg_int(r, i, 0);
	arr = id_array(p, ids, (size_t)n);
	free(ids);
	if (arr == NULL)
		return -1;
	pgq_text(&q, arr);
	if (pg_do(p, PG_MSGS_LOCK, &q, "lock messages") != -1 &&
	    pg_do(p, PG_MSGS_DEL_IF_ORPHAN, &q, "delete message") != -1)
		rc = 0;
	free(arr);
	return rc;
}

static int
expunge_once(struct store_pg *p, const char *account, const char *arr)
{
	struct pgq q = { 0 };
	PGresult *r;

	if (pg_begin(p) == -1)
		return -1;
	pgq_text(&q, arr);
	pgq_text(&q, account);
	r = pg_run(p, PG_ENTRIES_DEL, &q, false, "delete entry");
	if (r == NULL || drop_orphans(p, r) == -1) {
		PQclear(r);
		pg_rollback(p);
		return -1;
	}
	PQclear(r);
	return pg_commit(p);
}

int
pg_mailbox_expunge(struct store *st, const char *account,
    const int64_t *entry_ids, size_t n)
{
	struct store_pg *p = pg_of(st);
	char *arr;
	int rc;

	if (n == 0)
		return 0;
	if (pg_enter(p, false) == -1)
		return -1;
	if ((arr = id_array(p, entry_ids, n)) == NULL)
		return -1;
	while ((rc = expunge_once(p, account, arr)) == -1 && pg_retry(p))
		;
	free(arr);
	return rc;
}

/* ---- the web console's view of one entry ------------------------------------------ */

int
pg_mailbox_entry(struct store *st, const char *account, int64_t entry_id,
    struct store_msg_info *info_r)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	PGresult *r;

	memset(info_r, 0, sizeof(*info_r));
	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, account);
	pgq_int(&q, entry_id);
	if ((r = pg_run(p, PG_MAILBOX_ENTRY, &q, false, "read mailbox entry")) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		store_setmsg(st, "no message %lld", (long long)entry_id);
		return STORE_NOTFOUND;
	}
	info_r->msg.entry_id = pg_int(r, 0, 0);
	info_r->msg.size = pg_int(r, 0, 1);
	info_r->msg.arrived = pg_int(r, 0, 2);
	pg_copy(r, 0, 3, info_r->msg.uidl, sizeof(info_r->msg.uidl));
	pg_copy(r, 0, 4, info_r->session, sizeof(info_r->session));
	pg_copy(r, 0, 5, info_r->sender, sizeof(info_r->sender));
	PQclear(r);
	return 0;
}

/* ---- the outbound queue ------------------------------------------------------------ */

/* The queue items of r (id, message, sender, rcpt, created, next_attempt,
 * attempts, last_error) into *items_r (malloc'd, NULL for none). 0 or -1. */
static int
queue_rows(struct store_pg *p, const PGresult *r, struct store_queue_item **items_r,
    size_t *n_r)
{
	struct store_queue_item *v = NULL, *it;
	int i, n = PQntuples(r);

	*items_r = NULL;
	*n_r = 0;
	if (n > 0 && (v = calloc((size_t)n, sizeof(*v))) == NULL) {
		store_setmsg(&p->base, "out of memory listing the queue");
		return -1;
	}
	for (i = 0; i < n; i++) {
		it = &v[i];
		it->id = pg_int(r, i, 0);
		it->message_id = pg_int(r, i, 1);
		pg_copy(r, i, 2, it->sender, sizeof(it->sender));
		pg_copy(r, i, 3, it->rcpt, sizeof(it->rcpt));
		it->created = pg_int(r, i, 4);
		it->next_attempt = pg_int(r, i, 5);
		it->attempts = (int)pg_int(r, i, 6);
		pg_copy(r, i, 7, it->last_error, sizeof(it->last_error));
	}
	*items_r = v;
	*n_r = (size_t)n;
	return 0;
}

int
pg_queue_list(struct store *st, int64_t now, struct store_queue_item **items_r, size_t *n_r)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	PGresult *r;
	int rc;

	*items_r = NULL;
	*n_r = 0;
	if (pg_enter(p, false) == -1)
		return -1;
	pgq_int(&q, now);
	if ((r = pg_run(p, PG_QUEUE_LIST, &q, false, "list queue")) == NULL)
		return -1;
	rc = queue_rows(p, r, items_r, n_r);
	PQclear(r);
	return rc;
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
 * Inside the caller's transaction: drop the live claims of the runners
 * (other than claimer) that are processes of this host that no longer
 * exist (store_owner_gone()). 0 or -1.
 */
static int
unclaim_gone(struct store_pg *p, const char *claimer, int64_t now)
{
	struct pgq q = { 0 };
	PGresult *r;
	int i, n;

	pgq_text(&q, claimer);
	pgq_int(&q, now);
	if ((r = pg_run(p, PG_QUEUE_CLAIMERS, &q, false, "list queue claimers")) == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		if (!store_owner_gone(PQgetvalue(r, i, 0)))
			continue;
		memset(&q, 0, sizeof(q));
		pgq_text(&q, PQgetvalue(r, i, 0));
		if (pg_do(p, PG_QUEUE_UNCLAIM, &q, "release a dead runner's claims") == -1) {
			PQclear(r);
			return -1;
		}
	}
	PQclear(r);
	return 0;
}

/* One attempt at a claim, in one transaction: 0 or -1 (rolled back). */
static int
claim_once(struct store_pg *p, int64_t now, const char *claimer, int64_t until,
    size_t max, struct store_queue_item **items_r, size_t *n_r)
{
	struct pgq q = { 0 };
	PGresult *r;

	if (pg_begin(p) == -1)
		return -1;
	if (unclaim_gone(p, claimer, now) == -1)
		goto fail;
	pgq_text(&q, claimer);
	pgq_int(&q, until);
	if (pg_do(p, PG_QUEUE_RENEW, &q, "renew queue claims") == -1)
		goto fail;
	memset(&q, 0, sizeof(q));
	pgq_text(&q, claimer);
	pgq_int(&q, now);
	pgq_int(&q, until);
	pgq_int(&q, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if ((r = pg_run(p, PG_QUEUE_CLAIM, &q, false, "claim queue items")) == NULL)
		goto fail;
	if (queue_rows(p, r, items_r, n_r) == -1) {
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	if (pg_commit(p) == -1) {
		free(*items_r);
		*items_r = NULL;
		*n_r = 0;
		return -1;
	}
	return 0;
fail:
	pg_rollback(p);
	return -1;
}

int
pg_queue_claim(struct store *st, int64_t now, const char *claimer, int64_t until,
    size_t max, struct store_queue_item **items_r, size_t *n_r)
{
	struct store_pg *p = pg_of(st);
	int rc;

	assert(max > 0 && claimer[0] != '\0');
	*items_r = NULL;
	*n_r = 0;
	if (pg_enter(p, false) == -1)
		return -1;
	while ((rc = claim_once(p, now, claimer, until, max, items_r, n_r)) == -1 &&
	    pg_retry(p))
		;
	if (rc == 0 && *n_r > 1)
		qsort(*items_r, *n_r, sizeof(**items_r), item_cmp);
	return rc;
}

int
pg_queue_release(struct store *st, const char *claimer)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, claimer);
	return pg_do(p, PG_QUEUE_UNCLAIM, &q, "release queue claims") == -1 ? -1 : 0;
}

int
pg_queue_defer(struct store *st, int64_t id, int64_t next_attempt, const char *error)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	int64_t n;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_int(&q, id);
	pgq_int(&q, next_attempt);
	pgq_text(&q, error != NULL ? error : "");
	if ((n = pg_do(p, PG_QUEUE_DEFER, &q, "defer queue item")) == -1)
		return -1;
	if (n == 0) {
		store_setmsg(st, "no queue item %lld", (long long)id);
		return STORE_NOTFOUND;
	}
	return 0;
}

static int
queue_delete_once(struct store_pg *p, int64_t id)
{
	struct pgq q = { 0 };
	PGresult *r;

	if (pg_begin(p) == -1)
		return -1;
	pgq_int(&q, id);
	if ((r = pg_run(p, PG_QUEUE_DEL, &q, false, "delete queue item")) == NULL)
		goto fail;
	if (PQntuples(r) == 0) {
		PQclear(r);
		pg_rollback(p);
		store_setmsg(&p->base, "no queue item %lld", (long long)id);
		return STORE_NOTFOUND;
	}
	if (drop_orphans(p, r) == -1) {
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	return pg_commit(p);
fail:
	pg_rollback(p);
	return -1;
}

int
pg_queue_delete(struct store *st, int64_t id)
{
	struct store_pg *p = pg_of(st);
	int rc;

	if (pg_enter(p, false) == -1)
		return -1;
	while ((rc = queue_delete_once(p, id)) == -1 && pg_retry(p))
		;
	return rc;
}

int
pg_queue_flush(struct store *st)
{
	struct store_pg *p = pg_of(st);

	if (pg_enter(p, false) == -1)
		return -1;
	return pg_do(p, PG_QUEUE_FLUSH, NULL, "flush queue") == -1 ? -1 : 0;
}

int
pg_queue_clamp(struct store *st, int64_t latest)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_int(&q, latest);
	return (int)pg_do(p, PG_QUEUE_CLAMP, &q, "clamp queue");
}

int64_t
pg_queue_max_id(struct store *st)
{
	struct store_pg *p = pg_of(st);
	PGresult *r;
	int64_t id;

	if (pg_enter(p, false) == -1 ||
	    (r = pg_run(p, PG_QUEUE_MAX_ID, NULL, false, "queue max id")) == NULL)
		return -1;
	id = pg_int(r, 0, 0);
	PQclear(r);
	return id;
}
