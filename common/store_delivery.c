/*
 * store_delivery.c - the delivery object, the same for every backend: one
 * message to many recipients, collected here and committed all or nothing
 * by the backend (RFC 5321 6.1: a 250 after DATA means the message is
 * safely stored). It holds the envelope and the body.
 *
 * Bodies in bounded memory: with a spool directory (smtpd's [store] spool,
 * by default the store's own directory), a body holds at most
 * STORE_SPOOL_MEM octets in memory; past that the buffer goes, each time it
 * fills, to an anonymous spool file (O_TMPFILE: it has no name, so a crash or
 * SIGKILL leaves nothing behind and nothing half-received can ever be
 * found). The backend's commit reads it back (store_delivery_pread(), or
 * store_delivery_flush() and the file) into the store: durability is the
 * store's commit, never the spool's (the spool is not fsync'd), or the
 * SQLite backend gives the spool file a name and keeps it as the body
 * (store_sqlite_bodies.c). A freed delivery's spool file is emptied and
 * kept for a later one (spool_get, spool_put) unless it became a body; a
 * delivery reads only the octets it wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_backend.h"

#define STORE_BODY_MAX		((size_t)1 << 30)	/* = max of max_message_size */
#define STORE_SPOOL_MEM		((size_t)64 << 10)	/* body octets kept in memory */

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

/* Write all of p to fd at off. 0 or -1. */
static int
write_all(int fd, const unsigned char *p, size_t n, off_t off)
{
	ssize_t w;

	while (n > 0) {
		if ((w = pwrite(fd, p, n, off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		off += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Spool files are kept for the next bodies: making one is allocating an
 * inode, and ext4 looks past every inode freed in the last seconds to find
 * one (recently_deleted()): with 250 spooled messages a second that was a
 * quarter of smtpd's event loop. Up to STORE_SPOOL_POOL files (per process),
 * emptied when they come back (their blocks go; an empty file holds none),
 * each for the directory it was made in.
 */
#define STORE_SPOOL_POOL	128
#define STORE_SPOOL_DIR_MAX	256

static pthread_mutex_t spool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int	 fd;
	char	 dir[STORE_SPOOL_DIR_MAX];
} spool_pool[STORE_SPOOL_POOL];
static size_t spool_pooled;
/* Files that became message bodies (store_sqlite_bodies.c) and left the
 * pool: store_spool_refill() makes as many new ones, for this directory. */
static size_t spool_owed;
static char spool_owed_dir[STORE_SPOOL_DIR_MAX];

static int spool_open(const char *dir);
static void spool_keep(const char *dir, int fd);

/* A spool file in dir: a kept one, or a new one. */
static int
spool_get(const char *dir)
{
	size_t i;
	int fd = -1;

	pthread_mutex_lock(&spool_lock);
	for (i = spool_pooled; i-- > 0; )
		if (strcmp(spool_pool[i].dir, dir) == 0) {
			fd = spool_pool[i].fd;
			spool_pool[i] = spool_pool[--spool_pooled];
			break;
		}
	pthread_mutex_unlock(&spool_lock);
	return fd != -1 ? fd : spool_open(dir);
}

/* Keep fd, an empty spool file of dir, or close it (the pool is full). */
static void
spool_keep(const char *dir, int fd)
{
	if (strlen(dir) < STORE_SPOOL_DIR_MAX) {
		pthread_mutex_lock(&spool_lock);
		if (spool_pooled < STORE_SPOOL_POOL) {
			spool_pool[spool_pooled].fd = fd;
			memcpy(spool_pool[spool_pooled].dir, dir, strlen(dir) + 1);
			spool_pooled++;
			fd = -1;
		}
		pthread_mutex_unlock(&spool_lock);
	}
	if (fd != -1)
		close(fd);
}

/* Done with fd, a spool file of dir: kept empty, or closed. */
static void
spool_put(const char *dir, int fd)
{
	if (ftruncate(fd, 0) == 0)
		spool_keep(dir, fd);
	else
		close(fd);
}

/* d's spool file is a message's body now: the pool owes one for its dir. */
static void
spool_owe(const char *dir)
{
	size_t len = strlen(dir);

	if (len >= STORE_SPOOL_DIR_MAX)
		return;
	pthread_mutex_lock(&spool_lock);
	if (strcmp(spool_owed_dir, dir) != 0) {
		memcpy(spool_owed_dir, dir, len + 1);
		spool_owed = 0;
	}
	if (spool_owed < STORE_SPOOL_POOL)
		spool_owed++;
	pthread_mutex_unlock(&spool_lock);
}

void
store_spool_refill(size_t max)
{
	char dir[STORE_SPOOL_DIR_MAX];
	size_t n;
	int fd;

	pthread_mutex_lock(&spool_lock);
	n = spool_owed < max ? spool_owed : max;
	spool_owed -= n;
	memcpy(dir, spool_owed_dir, sizeof(dir));
	pthread_mutex_unlock(&spool_lock);
	while (n-- > 0 && (fd = spool_open(dir)) != -1)
		spool_keep(dir, fd);
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

int
store_delivery_flush(struct store_delivery *d)
{
	if (d->len == 0)
		return 0;
	if (d->fd == -1 && (d->fd = spool_get(d->spool_dir)) == -1)
		return -1;
	if (write_all(d->fd, d->body, d->len, (off_t)d->spooled) == -1)
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
			if (store_delivery_flush(d) == -1)
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
	if (d->fd != -1 && d->apart) {
		close(d->fd);		/* it is a message's body file now */
		spool_owe(d->spool_dir);
	} else if (d->fd != -1)
		spool_put(d->spool_dir, d->fd);
	free(d->spool_dir);
	free(d);
	*dp = NULL;
}

int
store_delivery_pread(const struct store_delivery *d, int64_t offset,
    void *dst, size_t len, size_t *got_r)
{
	size_t off, n;
	ssize_t r;

	*got_r = 0;
	if (offset < 0) {
		errno = EINVAL;
		return -1;
	}
	off = (size_t)offset;
	if (off < d->spooled) {
		n = d->spooled - off < len ? d->spooled - off : len;
		do
			r = pread(d->fd, dst, n, (off_t)off);
		while (r == -1 && errno == EINTR);
		if (r <= 0) {
			if (r == 0)
				errno = EIO;	/* the spool is shorter than it was written */
			return -1;
		}
		*got_r = (size_t)r;
		return 0;
	}
	off -= d->spooled;
	if (off >= d->len)
		return 0;
	n = d->len - off < len ? d->len - off : len;
	memcpy(dst, d->body + off, n);
	*got_r = n;
	return 0;
}
