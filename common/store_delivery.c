/*
 * store_delivery.c - delivery: one message to many recipients, all or
 * nothing (RFC 5321 6.1: a 250 after DATA means the message is safely
 * stored). A delivery object collects the envelope and the body; commit
 * writes the message, its mailbox entries and its queue items in one
 * transaction. Group commit: a batch shares one transaction and one fsync,
 * each delivery in its own savepoint so that one failure undoes only itself.
 *
 * Bodies in bounded memory: with a spool directory (smtpd gives the store's
 * own), a body holds at most STORE_SPOOL_MEM octets in memory; past that the
 * buffer goes, each time it fills, to an anonymous spool file (O_TMPFILE:
 * it has no name, so a crash or SIGKILL leaves nothing behind and nothing
 * half-received can ever be found). The commit inserts a zeroblob of the
 * final size and copies the spool into it with incremental blob writes, in
 * the same savepoint as before: durability is the store's commit, never the
 * spool's (the spool is not fsync'd). docs/PERFORMANCE.md says why this and
 * not chunk rows.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "store_internal.h"

#define STORE_BODY_MAX		((size_t)1 << 30)	/* = max of max_message_size */
#define STORE_SPOOL_MEM		((size_t)64 << 10)	/* body octets kept in memory */

struct store_delivery {
	char		 sender[STORE_ADDR_MAX + 1];
	char		 session_id[STORE_SESSION_ID_MAX + 1];
	char		(*rcpts)[STORE_NAME_MAX + 1];	/* local accounts */
	size_t		 nrcpts;
	char		(*remotes)[STORE_ADDR_MAX + 1];	/* outbound queue */
	size_t		 nremotes;
	unsigned char	*body;		/* all of it, or the part not yet spooled */
	size_t		 len, cap;	/* of body */
	size_t		 spooled;	/* octets in the spool file before body */
	int		 fd;		/* the spool file, or -1 */
	char		*spool_dir;	/* NULL: the body stays in memory */
	int64_t		 id;				/* message id after commit */
};

/* ---- deliveries --------------------------------------------------------- */

struct store_delivery *
store_delivery_new(const char *sender, const char *session_id)
{
	struct store_delivery *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	snprintf(d->sender, sizeof(d->sender), "%s", sender ? sender : "");
	snprintf(d->session_id, sizeof(d->session_id), "%s", session_id ? session_id : "");
	d->id = -1;
	d->fd = -1;
	return d;
}

int
store_delivery_spool(struct store_delivery *d, const char *dir)
{
	free(d->spool_dir);
	d->spool_dir = NULL;
	if (dir != NULL && (d->spool_dir = strdup(dir)) == NULL)
		return -1;
	return 0;
}

/* Write all of p to fd. 0 or -1. */
static int
write_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* An anonymous file in dir (no name: nothing to clean up after a crash). */
static int
spool_open(const char *dir)
{
	char path[4096];
	int fd;

	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) != -1)
		return fd;
	/* A file system without O_TMPFILE: a named file, unlinked at once. */
	if (snprintf(path, sizeof(path), "%s/.correio-spool-XXXXXX", dir) >= (int)sizeof(path))
		return -1;
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
		return -1;
	(void)unlink(path);
	return fd;
}

/* Move the memory buffer to the end of the spool file. 0 or -1. */
static int
spool_flush(struct store_delivery *d)
{
	if (d->len == 0)
		return 0;
	if (d->fd == -1 && (d->fd = spool_open(d->spool_dir)) == -1)
		return -1;
	if (write_all(d->fd, d->body, d->len) == -1)
		return -1;
	d->spooled += d->len;
	d->len = 0;
	return 0;
}

/*
 * Append s (1 to width - 1 characters) to arr, an array of n strings of
 * width bytes each, unless cmp finds it there already. Returns 1 with the
 * grown array in *grown_r, 0 when s was there, -1 (too long, no memory).
 * UNSAFE: n is bounded by the caller's max_recipients.
 */
static int
add_unique(void *arr, size_t n, size_t width, const char *s,
    int (*cmp)(const char *, const char *), void **grown_r)
{
	char *p = arr;
	size_t i, len = strlen(s);

	if (len == 0 || len >= width)
		return -1;
	for (i = 0; i < n; i++)
		if (cmp(p + i * width, s) == 0)
			return 0;
	if ((p = reallocarray(arr, n + 1, width)) == NULL)
		return -1;
	memcpy(p + n * width, s, len + 1);
	*grown_r = p;
	return 1;
}

int
store_delivery_add_rcpt(struct store_delivery *d, const char *account)
{
	void *p;
	int r = add_unique(d->rcpts, d->nrcpts, sizeof(*d->rcpts), account, strcasecmp, &p);

	if (r == 1) {
		d->rcpts = p;
		d->nrcpts++;
	}
	return r == -1 ? -1 : 0;
}

int
store_delivery_add_remote(struct store_delivery *d, const char *address)
{
	void *p;
	int r = add_unique(d->remotes, d->nremotes, sizeof(*d->remotes), address, strcmp, &p);

	if (r == 1) {
		d->remotes = p;
		d->nremotes++;
	}
	return r == -1 ? -1 : 0;
}

int
store_delivery_body(struct store_delivery *d, const void *p, size_t n)
{
	const unsigned char *src = p;
	size_t ncap, take, limit = d->spool_dir != NULL ? STORE_SPOOL_MEM : STORE_BODY_MAX;
	unsigned char *nb;

	if (n > STORE_BODY_MAX - d->len - d->spooled)
		return -1;
	while (n > 0) {
		if (d->len == d->cap && d->cap >= limit) {
			/* The fixed buffer is full: on to the spool. */
			if (spool_flush(d) == -1)
				return -1;
		} else if (d->len + n > d->cap && d->cap < limit) {
			ncap = d->cap ? d->cap : 16384;
			while (ncap < d->len + n && ncap < limit)
				ncap *= 2;	/* UNSAFE: bounded by limit */
			if (ncap > limit)
				ncap = limit;
			if ((nb = realloc(d->body, ncap)) == NULL)
				return -1;
			d->body = nb;
			d->cap = ncap;
		}
		take = d->cap - d->len < n ? d->cap - d->len : n;
		memcpy(d->body + d->len, src, take);
		d->len += take;
		src += take;
		n -= take;
	}
	return 0;
}

size_t
store_delivery_size(const struct store_delivery *d)
{
	return d->spooled + d->len;
}

int64_t
store_delivery_id(const struct store_delivery *d)
{
	return d->id;
}

void
store_delivery_free(struct store_delivery **dp)
{
	struct store_delivery *d = *dp;

	if (d == NULL)
		return;
	free(d->rcpts);
	free(d->remotes);
	free(d->body);
	free(d->spool_dir);
	if (d->fd != -1)
		close(d->fd);
	free(d);
	*dp = NULL;
}

/* Copy a spooled body into the zeroblob of message id. 0 or -1. */
static int
spool_copy(struct store *st, struct store_delivery *d, int64_t id)
{
	sqlite3_blob *b;
	size_t off = 0;
	ssize_t r;
	int rc;

	if (spool_flush(d) == -1) {
		int e = errno;
		store_setmsg(st, "spool: %s", strerror(e));
		if (e == ENOSPC || e == EDQUOT)
			store_set_full(st);
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
			store_setmsg(st, "spool: %s", r == 0 ? "short file" : strerror(errno));
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
delivery_write(struct store *st, struct store_delivery *d)
{
	sqlite3_stmt *s;
	int64_t id, now = store_now();
	size_t i, size = store_delivery_size(d);

	if (d->nrcpts == 0 && d->nremotes == 0) {
		store_setmsg(st, "delivery without recipients");
		return -1;
	}
	s = store_stmt_get(st, ST_MSG_ADD);
	if (d->spooled > 0)
		sqlite3_bind_zeroblob64(s, 1, size);	/* spool_copy() fills it */
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
	if (d->spooled > 0 && spool_copy(st, d, id) == -1)
		return -1;

	for (i = 0; i < d->nrcpts; i++) {
		s = store_stmt_get(st, ST_ENTRY_ADD);
		store_bind_text(s, 1, d->rcpts[i]);
		sqlite3_bind_int64(s, 2, id);
		sqlite3_bind_int64(s, 3, (int64_t)size);
		sqlite3_bind_int64(s, 4, now);
		if (sqlite3_step(s) != SQLITE_DONE) {
			snprintf(st->err, sizeof(st->err), "deliver to %s: %s", d->rcpts[i],
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
store_delivery_commit(struct store *st, struct store_delivery *d)
{
	d->id = -1;
	if (store_begin(st) == -1)
		return -1;
	if (delivery_write(st, d) == -1) {
		store_rollback(st);
		d->id = -1;
		return -1;
	}
	if (store_commit(st) == -1 || store_file_check(st) != 0) {
		/* Deleted or replaced during the commit: the message went into a
		 * file nobody will see again, so it must not be acknowledged. */
		d->id = -1;
		return -1;
	}
	return 0;
}

int
store_delivery_commit_batch(struct store *st, struct store_delivery **ds,
    size_t n, int *result)
{
	size_t i;

	for (i = 0; i < n; i++) {
		result[i] = -1;
		ds[i]->id = -1;
	}
	if (n == 0)
		return 0;
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
			ds[i]->id = -1;
			result[i] = store_err_full(st) ? STORE_FULL : -1;
			/* Undo this delivery alone; the others stay. */
			if (sqlite3_get_autocommit(st->db) ||
			    store_exec(st, ST_ROLLBACK_TO, "rollback to savepoint") == -1 ||
			    store_exec(st, ST_RELEASE, "release savepoint") == -1)
				goto fail;
		}
	}
	if (store_commit(st) == -1)
		goto lost;
	/* Deleted or replaced during the commit: the messages went into a file
	 * nobody will see again, so none of them may be acknowledged. */
	if (store_file_check(st) != 0)
		goto lost;
	return 0;
fail:
	store_rollback(st);
lost:
	for (i = 0; i < n; i++) {
		result[i] = store_err_full(st) ? STORE_FULL : -1;
		ds[i]->id = -1;
	}
	return -1;
}
