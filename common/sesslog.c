/*
 * sesslog.c - the session log's queue and writer thread (see sesslog.h).
 *
 * Owns: a FIFO of records under one mutex, and the thread that takes the
 * whole FIFO every SESSLOG_FLUSH_MS (at once when a session closes, so a
 * finished session is readable without waiting) and hands it to
 * store_sesslog_apply() in one transaction in the session log's file.
 * Memory: records are counted against SESSLOG_QUEUE_MAX; past it, transcript
 * lines are dropped (session rows never are) and the drop is logged. Records
 * are laid end to end in blocks (struct blk) that the daemon's thread fills
 * under the lock and the writer takes whole with its batch and gives back
 * after: no allocation and no free per record (a record was malloc()ed on
 * the loop's thread and freed on this one, which took the other thread's
 * arena lock each time), and a batch is read in memory order.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "monotime.h"
#include "sesslog.h"
#include "store.h"

struct rec {
	struct rec	*next;
	enum store_sesslog_kind kind;
	int64_t		 time;
	size_t		 len;
	char		 id[STORE_SESSION_ID_MAX + 1];
	char		 proto[STORE_PROTO_MAX + 1];
	char		 text[];		/* len octets, NUL-terminated */
};

/* A block of records; one record larger than SESSLOG_BLOCK gets a block of
 * its own size, put at the head so that it never leaves the rest of a
 * usual block unused. Empty blocks of the usual size are kept for reuse, up
 * to SESSLOG_SPARE. */
#define SESSLOG_BLOCK	(64 * 1024)
#define SESSLOG_SPARE	4

struct blk {
	struct blk	*next;
	size_t		 used, cap;	/* octets of data[] */
	char		 data[];	/* at an 8-octet boundary: three 8-octet fields */
};

struct sesslog {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;		/* records queued, a sync or stop asked */
	pthread_cond_t	 done;		/* a batch written */
	pthread_t	 thread;
	struct store	*st;
	struct rec	*head, *tail;
	struct blk	*bhead, *btail;	/* the blocks head..tail lie in */
	struct blk	*spare;		/* empty blocks, nspare of them */
	unsigned	 nspare;
	size_t		 bytes;		/* queued */
	uint64_t	 dropped;	/* transcript lines dropped, not yet logged */
	uint64_t	 queued, written;	/* records, for sesslog_sync */
	bool		 urgent;	/* a session closed: write soon */
	bool		 sync;		/* sesslog_sync waits: write now */
	bool		 waiting;	/* the thread sleeps for records */
	bool		 stop;
};

/* Copy src into dst (size octets), cut short if it must be, NUL-ended.
 * (snprintf's "%s" here was most of a record's cost: eleven per message.) */
static void
copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Room for a record of need octets at the end of the queue's blocks (the
 * lock is held), or NULL when no memory is left. */
static struct rec *
room(struct sesslog *sl, size_t need)
{
	struct blk *b = sl->btail;
	struct rec *r;

	if (need > SESSLOG_BLOCK) {
		/* A block of its own, put first: the block being filled
		 * stays the tail (records are in order by their next
		 * pointers, not by their blocks). */
		if ((b = malloc(sizeof(*b) + need)) == NULL)
			return NULL;
		b->cap = b->used = need;
		b->next = sl->bhead;
		sl->bhead = b;
		if (sl->btail == NULL)
			sl->btail = b;
		return (struct rec *)(void *)b->data;
	}
	if (b == NULL || b->cap - b->used < need) {
		if (sl->spare != NULL) {
			b = sl->spare;
			sl->spare = b->next;
			sl->nspare--;
		} else {
			if ((b = malloc(sizeof(*b) + SESSLOG_BLOCK)) == NULL)
				return NULL;
			b->cap = SESSLOG_BLOCK;
		}
		b->next = NULL;
		b->used = 0;
		if (sl->btail != NULL)
			sl->btail->next = b;
		else
			sl->bhead = b;
		sl->btail = b;
	}
	r = (struct rec *)(void *)(b->data + b->used);
	b->used += need;
	return r;
}

static void
blocks_free(struct blk *b)
{
	struct blk *next;

	for (; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
}

/* Give a batch's blocks back (the lock is held): spares, or freed. */
static void
blocks_return(struct sesslog *sl, struct blk *b)
{
	struct blk *next;

	for (; b != NULL; b = next) {
		next = b->next;
		if (b->cap == SESSLOG_BLOCK && sl->nspare < SESSLOG_SPARE) {
			b->next = sl->spare;
			sl->spare = b;
			sl->nspare++;
		} else
			free(b);
	}
}

static void
push(struct sesslog *sl, enum store_sesslog_kind kind, const char *id, const char *proto,
    const char *text, size_t len)
{
	struct rec *r;
	size_t need;

	if (sl == NULL || id == NULL || id[0] == '\0')
		return;
	/* UNSAFE: len is bounded by SESSLOG_QUEUE_MAX for lines (checked
	 * below before anything is taken), by the callers' fixed buffers for
	 * the rest; rounded up so that the next record is aligned. */
	need = (sizeof(*r) + len + 1 + _Alignof(struct rec) - 1) & ~(_Alignof(struct rec) - 1);
	pthread_mutex_lock(&sl->lock);
	if ((kind == STORE_SESSLOG_LINES && sl->bytes + len > SESSLOG_QUEUE_MAX) ||
	    (r = room(sl, need)) == NULL) {
		sl->dropped++;
		pthread_mutex_unlock(&sl->lock);
		return;
	}
	r->next = NULL;
	r->kind = kind;
	r->time = (int64_t)time(NULL);
	r->len = len;
	copy_str(r->id, sizeof(r->id), id);
	copy_str(r->proto, sizeof(r->proto), proto ? proto : "");
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	if (sl->tail != NULL)
		sl->tail->next = r;
	else
		sl->head = r;
	sl->tail = r;
	sl->bytes += len;
	sl->queued++;
	/* Wake the thread only when that changes when it writes: the first
	 * record after a quiet spell, or the first close of a batch. Not for
	 * every record: a wake-up per reply cost a context switch each. */
	if (sl->waiting || (kind == STORE_SESSLOG_CLOSE && !sl->urgent))
		pthread_cond_signal(&sl->cond);
	if (kind == STORE_SESSLOG_CLOSE)
		sl->urgent = true;
	pthread_mutex_unlock(&sl->lock);
}

void
sesslog_open(struct sesslog *sl, const char *id, const char *proto, const char *client)
{
	push(sl, STORE_SESSLOG_OPEN, id, proto, client, strlen(client));
}

void
sesslog_lines(struct sesslog *sl, const char *id, const char *proto, const char *lines,
    size_t len)
{
	if (len > 0)
		push(sl, STORE_SESSLOG_LINES, id, proto, lines, len);
}

void
sesslog_user(struct sesslog *sl, const char *id, const char *proto, const char *account)
{
	push(sl, STORE_SESSLOG_USER, id, proto, account, strlen(account));
}

void
sesslog_account(struct sesslog *sl, const char *id, const char *proto, const char *account)
{
	push(sl, STORE_SESSLOG_ACCOUNT, id, proto, account, strlen(account));
}

void
sesslog_close(struct sesslog *sl, const char *id, const char *proto, const char *outcome)
{
	push(sl, STORE_SESSLOG_CLOSE, id, proto, outcome, strlen(outcome));
}

/* Write one batch (the lock is not held). */
static void
write_batch(struct sesslog *sl, struct rec *list, size_t n)
{
	struct store_sesslog_rec *v;
	struct rec *r;
	size_t i = 0;

	if ((v = calloc(n, sizeof(*v))) == NULL) {
		log_warnx("event=sesslog-dropped records=%zu reason=memory", n);
		return;
	}
	for (r = list; r != NULL; r = r->next, i++) {
		v[i].kind = r->kind;
		v[i].time = r->time;
		v[i].id = r->id;
		v[i].proto = r->proto;
		v[i].text = r->text;
		v[i].len = r->len;
	}
	/* A failed batch (the disk, a lock held past the busy timeout) is
	 * dropped, not retried forever: the lab loses some lines, not mail. */
	if (store_sesslog_apply(sl->st, v, n) == -1)
		log_warnx("event=sesslog-dropped records=%zu error=\"%s\"", n, store_errmsg(sl->st));
	free(v);
}

/*
 * When the next batch is due: SESSLOG_FLUSH_MS after the last one began, or
 * SESSLOG_CLOSE_MS after it once a session has closed (a finished session
 * soon readable, yet at most 1000 / SESSLOG_CLOSE_MS transactions a second
 * however many sessions close), or at once for sesslog_sync and stop.
 */
static int64_t
due(const struct sesslog *sl, int64_t last)
{
	if (sl->stop || sl->sync)
		return 0;
	return last + (sl->urgent ? SESSLOG_CLOSE_MS : SESSLOG_FLUSH_MS);
}

static void *
writer(void *arg)
{
	struct sesslog *sl = arg;
	struct rec *list, *r;
	struct blk *blocks;
	struct timespec until;
	uint64_t dropped, n;
	int64_t last = 0, at;
	size_t count;

	pthread_mutex_lock(&sl->lock);
	for (;;) {
		sl->waiting = true;
		while (sl->head == NULL && !sl->stop)
			pthread_cond_wait(&sl->cond, &sl->lock);
		sl->waiting = false;
		if (sl->head == NULL && sl->stop)
			break;
		/* Gather, so many sessions share one commit. */
		while ((at = due(sl, last)) > monotime_ms()) {
			until.tv_sec = at / 1000;
			until.tv_nsec = (at % 1000) * 1000000L;
			pthread_cond_timedwait(&sl->cond, &sl->lock, &until);
		}
		last = monotime_ms();
		list = sl->head;
		blocks = sl->bhead;
		sl->head = sl->tail = NULL;
		sl->bhead = sl->btail = NULL;
		sl->bytes = 0;
		sl->urgent = false;
		sl->sync = false;
		dropped = sl->dropped;
		sl->dropped = 0;
		pthread_mutex_unlock(&sl->lock);

		for (count = 0, r = list; r != NULL; r = r->next)
			count++;
		write_batch(sl, list, count);
		if (dropped > 0)
			log_warnx("event=sesslog-dropped lines=%llu reason=queue-full",
			    (unsigned long long)dropped);
		n = count;
		pthread_mutex_lock(&sl->lock);
		blocks_return(sl, blocks);
		sl->written += n;
		pthread_cond_broadcast(&sl->done);
	}
	pthread_mutex_unlock(&sl->lock);
	return NULL;
}

struct sesslog *
sesslog_start(const char *store_path, char *err, size_t errlen)
{
	struct sesslog *sl;

	if ((sl = calloc(1, sizeof(*sl))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (store_open(&sl->st, store_path, err, errlen) == -1) {
		free(sl);
		return NULL;
	}
	if (store_log_ready(sl->st) == -1) {
		snprintf(err, errlen, "%s", store_errmsg(sl->st));
		store_close(&sl->st);
		free(sl);
		return NULL;
	}
	pthread_mutex_init(&sl->lock, NULL);
	monotime_cond_init(&sl->cond);		/* a wall-clock step never stalls it */
	pthread_cond_init(&sl->done, NULL);
	if (pthread_create(&sl->thread, NULL, writer, sl) != 0) {
		snprintf(err, errlen, "cannot start the session log thread");
		store_close(&sl->st);
		free(sl);
		return NULL;
	}
	return sl;
}

void
sesslog_sync(struct sesslog *sl)
{
	uint64_t want;

	if (sl == NULL)
		return;
	pthread_mutex_lock(&sl->lock);
	want = sl->queued;
	sl->sync = true;
	pthread_cond_signal(&sl->cond);
	while (sl->written < want)
		pthread_cond_wait(&sl->done, &sl->lock);
	pthread_mutex_unlock(&sl->lock);
}

void
sesslog_stop(struct sesslog **slp)
{
	struct sesslog *sl = *slp;

	if (sl == NULL)
		return;
	pthread_mutex_lock(&sl->lock);
	sl->stop = true;
	pthread_cond_signal(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
	pthread_join(sl->thread, NULL);
	blocks_free(sl->bhead);		/* none: nothing is queued once the thread ends */
	blocks_free(sl->spare);
	store_close(&sl->st);
	pthread_mutex_destroy(&sl->lock);
	pthread_cond_destroy(&sl->cond);
	pthread_cond_destroy(&sl->done);
	free(sl);
	*slp = NULL;
}
