/*
 * store.c - the store's front: what store.h promises, for every backend.
 * store_open() picks the backend by what it is given (a postgresql:// URI:
 * store_pg*.c; anything else is a path: store_sqlite*.c, the embedded
 * default) and every call that touches data goes through the handle's ops
 * table (store_backend.h). The front itself keeps the last error, the lock
 * owner's format, the owners of this process's live sessions and what an
 * owner is (ours, alive, gone: for every backend's locks and claims),
 * store_resolve() (resolve_all() wanting one account),
 * store_delivery_commit() as a batch of one (and, in store_log.c, the
 * session log's batches gathered per session), and the refusal of an op a
 * backend does not have (never a NULL call); ops a backend has no use for
 * (the file checks, the reserve, the body map of a SQLite file) answer here.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "numparse.h"
#include "store_backend.h"

#define STORE_HOST_MAX		256	/* gethostname() result, with its NUL */

bool
store_is_url(const char *where)
{
	return where != NULL && (strncmp(where, "postgresql://", 13) == 0 ||
	    strncmp(where, "postgres://", 11) == 0);
}

int
store_open(struct store **st_r, const char *where, char *err, size_t errlen)
{
	const struct store_ops *ops;

	*st_r = NULL;
	if (where == NULL || *where == '\0') {
		snprintf(err, errlen, "no store path given");
		return -1;
	}
	ops = store_is_url(where) ? &store_pg_ops : &store_sqlite_ops;
	return ops->open(st_r, where, err, errlen);
}

void
store_close(struct store **stp)
{
	if (*stp == NULL)
		return;
	(*stp)->ops->close(*stp);
	*stp = NULL;
}

/* ---- errors ------------------------------------------------------------- */

void
store_setmsg(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	st->err_full = false;
}

void
store_set_full(struct store *st)
{
	st->err_full = true;
}

void
store_seterrno(struct store *st, int e, const char *what)
{
	store_setmsg(st, "%s: %s", what, strerror(e));
	if (e == ENOSPC || e == EDQUOT)
		store_set_full(st);
}

const char *
store_errmsg(struct store *st)
{
	return st->err;
}

bool
store_err_full(struct store *st)
{
	return st->err_full;
}

int64_t
store_now(void)
{
	return (int64_t)time(NULL);
}

void
store_lock_owner(char *dst, size_t len, const char *tag)
{
	char host[STORE_HOST_MAX];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(dst, len, "%s/%ld/%s", host, (long)getpid(), tag);
}

/* ---- lock owners ----------------------------------------------------------- */

/*
 * The lock owners of this process's live sessions, for every backend's
 * mailbox lock. A lock of this process that is not listed here was left by
 * a session that ended without releasing it (its unlock failed); one that
 * is listed is refreshed by its session and is never taken over by age: its
 * "taken" time is a wall-clock date, and a step of the clock (a day
 * forward) must not hand a live session's mailbox to a second one.
 */
static pthread_mutex_t	  held_mu = PTHREAD_MUTEX_INITIALIZER;
static char		**held;		/* malloc'd owner strings */
static size_t		  nheld, capheld;

static bool
held_find(const char *owner, size_t *i_r)
{
	size_t i;

	for (i = 0; i < nheld; i++)
		if (strcmp(held[i], owner) == 0) {
			if (i_r != NULL)
				*i_r = i;
			return true;
		}
	return false;
}

static bool
held_has(const char *owner)
{
	bool found;

	pthread_mutex_lock(&held_mu);
	found = held_find(owner, NULL);
	pthread_mutex_unlock(&held_mu);
	return found;
}

int
store_held_add(const char *owner)
{
	char **v, *copy;
	int rc = 0;

	pthread_mutex_lock(&held_mu);
	if (held_find(owner, NULL))
		goto out;
	if (nheld == capheld) {
		size_t cap = capheld ? capheld * 2 : 16;

		/* UNSAFE: cap doubles from 16; the live sessions bound it */
		if ((v = realloc(held, cap * sizeof(*v))) == NULL) {
			rc = -1;
			goto out;
		}
		held = v;
		capheld = cap;
	}
	if ((copy = strdup(owner)) == NULL)
		rc = -1;
	else
		held[nheld++] = copy;
out:
	pthread_mutex_unlock(&held_mu);
	return rc;
}

void
store_held_remove(const char *owner)
{
	size_t i;

	pthread_mutex_lock(&held_mu);
	if (held_find(owner, &i)) {
		free(held[i]);
		held[i] = held[--nheld];
		if (nheld == 0) {
			free(held);
			held = NULL;
			capheld = 0;
		}
	}
	pthread_mutex_unlock(&held_mu);
}

/* The pid of owner ("HOST/PID/tag") when HOST is this host; 0 for another
 * host or text not of that form. */
static pid_t
owner_local_pid(const char *owner)
{
	char host[STORE_HOST_MAX], mine[STORE_HOST_MAX];
	const char *slash, *end;
	uint64_t pid;

	if ((slash = strchr(owner, '/')) == NULL || (size_t)(slash - owner) >= sizeof(host))
		return 0;
	memcpy(host, owner, (size_t)(slash - owner));
	host[slash - owner] = '\0';
	if (gethostname(mine, sizeof(mine)) != 0)
		return 0;
	mine[sizeof(mine) - 1] = '\0';
	if (strcmp(host, mine) != 0)
		return 0;
	if ((end = strchr(slash + 1, '/')) == NULL ||
	    numparse_u64(slash + 1, (size_t)(end - slash - 1), INT32_MAX, &pid) != NUMPARSE_OK)
		return 0;
	return (pid_t)pid;
}

enum store_owner_state
store_owner_state(const char *owner)
{
	pid_t pid = owner_local_pid(owner);

	if (pid == 0)
		return STORE_OWNER_UNKNOWN;
	if (pid == getpid())
		return held_has(owner) ? STORE_OWNER_MINE : STORE_OWNER_GONE;
	return kill(pid, 0) == -1 && errno == ESRCH ? STORE_OWNER_GONE : STORE_OWNER_ALIVE;
}

bool
store_owner_gone(const char *owner)
{
	pid_t pid = owner_local_pid(owner);

	return pid != 0 && pid != getpid() && kill(pid, 0) == -1 && errno == ESRCH;
}

/* ---- what only some backends do ----------------------------------------- */

int
store_file_check(struct store *st)
{
	return st->ops->file_check != NULL ? st->ops->file_check(st) : 0;
}

bool
store_snapshot_begin(struct store *st)
{
	return st->ops->snapshot_begin != NULL && st->ops->snapshot_begin(st);
}

void
store_snapshot_end(struct store *st, bool began)
{
	if (began && st->ops->snapshot_end != NULL)
		st->ops->snapshot_end(st, began);
}

bool
store_defer_checkpoints(struct store *st, void (*due)(void *), void *arg)
{
	return st->ops->defer_checkpoints != NULL && st->ops->defer_checkpoints(st, due, arg);
}

int
store_tidy(struct store *st)
{
	return st->ops->tidy != NULL ? st->ops->tidy(st) : 0;
}

int
store_checkpoint(struct store *st)
{
	return st->ops->checkpoint != NULL ? st->ops->checkpoint(st) : 0;
}

int
store_reserve_make(struct store *st)
{
	return st->ops->reserve_make != NULL ? st->ops->reserve_make(st) : 0;
}

bool
store_reserve_released(struct store *st)
{
	return st->ops->reserve_released != NULL && st->ops->reserve_released(st);
}

int
store_map_bodies(struct store *st)
{
	return st->ops->map_bodies != NULL ? st->ops->map_bodies(st) : 0;
}

int
store_schema_version(struct store *st)
{
	return st->ops->schema_version(st);
}

/* The embedded default's: the version of a handle's own backend is
 * store_schema_version() after open, which migrates to its latest. */
int
store_schema_latest(void)
{
	return store_sqlite_ops.schema_latest();
}

/* ---- deliveries ---------------------------------------------------------- */

int
store_delivery_commit(struct store *st, struct store_delivery *d)
{
	int result;

	if (st->ops->delivery_commit_batch(st, &d, 1, &result) == -1 || result != 0)
		return -1;
	return 0;
}

int
store_delivery_commit_batch(struct store *st, struct store_delivery **ds, size_t n,
    int *result)
{
	return st->ops->delivery_commit_batch(st, ds, n, result);
}

/* ---- the rest: one line each through the ops ------------------------------ */

int
store_user_add(struct store *st, const char *name, const char *hash)
{
	return st->ops->user_add(st, name, hash);
}

int
store_user_del(struct store *st, const char *name)
{
	return st->ops->user_del(st, name);
}

int
store_user_set_hash(struct store *st, const char *name, const char *hash)
{
	return st->ops->user_set_hash(st, name, hash);
}

int
store_user_get_hash(struct store *st, const char *name, char *hash_r, size_t len)
{
	return st->ops->user_get_hash(st, name, hash_r, len);
}

int
store_user_list(struct store *st, store_list_cb *cb, void *arg)
{
	return st->ops->user_list(st, cb, arg);
}

int
store_domain_add(struct store *st, const char *domain)
{
	return st->ops->domain_add(st, domain);
}

int
store_domain_del(struct store *st, const char *domain)
{
	return st->ops->domain_del(st, domain);
}

int
store_domain_list(struct store *st, store_list_cb *cb, void *arg)
{
	return st->ops->domain_list(st, cb, arg);
}

int
store_domain_lookup(struct store *st, const char *domain)
{
	return st->ops->domain_lookup(st, domain);
}

int
store_alias_add(struct store *st, const char *address, const char *account)
{
	return st->ops->alias_add(st, address, account);
}

int
store_alias_del(struct store *st, const char *address, const char *account)
{
	return st->ops->alias_del(st, address, account);
}

int
store_alias_list(struct store *st, store_list_cb *cb, void *arg)
{
	return st->ops->alias_list(st, cb, arg);
}

int
store_resolve_all(struct store *st, const char *local, const char *domain,
    store_list_cb *cb, void *arg)
{
	return st->ops->resolve_all(st, local, domain, cb, arg);
}

/* store_resolve(): the first account resolve_all() gives, when it gives one. */
struct one {
	char	*dst;
	size_t	 len;
	int	 n;
	bool	 truncated;
};

static void
keep_one(void *arg, const char *account, const char *unused)
{
	struct one *o = arg;

	(void)unused;
	if (o->n++ == 0 && (size_t)snprintf(o->dst, o->len, "%s", account) >= o->len)
		o->truncated = true;
}

int
store_resolve(struct store *st, const char *local, const char *domain,
    char *account_r, size_t len)
{
	struct one o = { account_r, len, 0, false };
	int rc = st->ops->resolve_all(st, local, domain, keep_one, &o);

	if (rc < 0)
		return rc;
	if (o.truncated) {
		store_setmsg(st, "account name too long");
		return -1;
	}
	if (o.n > 1) {
		store_setmsg(st, "%s leads to %d accounts", local, o.n);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
store_mailbox_lock(struct store *st, const char *account, const char *owner, long ttl)
{
	return st->ops->mailbox_lock(st, account, owner, ttl);
}

int
store_mailbox_touch(struct store *st, const char *account, const char *owner)
{
	return st->ops->mailbox_touch(st, account, owner);
}

int
store_mailbox_unlock(struct store *st, const char *account, const char *owner)
{
	return st->ops->mailbox_unlock(st, account, owner);
}

int
store_mailbox_list(struct store *st, const char *account, struct store_msg **msgs_r,
    size_t *n_r)
{
	return st->ops->mailbox_list(st, account, msgs_r, n_r);
}

int
store_msg_read(struct store *st, int64_t entry_id, int64_t offset, void *dst,
    size_t len, size_t *got_r)
{
	return st->ops->msg_read(st, entry_id, offset, dst, len, got_r);
}

void
store_read_done(struct store *st)
{
	st->ops->read_done(st);
}

int
store_mailbox_expunge(struct store *st, const char *account, const int64_t *entry_ids,
    size_t n)
{
	return st->ops->mailbox_expunge(st, account, entry_ids, n);
}

int
store_mailbox_entry(struct store *st, const char *account, int64_t entry_id,
    struct store_msg_info *info_r)
{
	return st->ops->mailbox_entry(st, account, entry_id, info_r);
}

int
store_queue_list(struct store *st, int64_t now, struct store_queue_item **items_r,
    size_t *n_r)
{
	return st->ops->queue_list(st, now, items_r, n_r);
}

/* An op a backend does not have yet: refused, never called. */
static int
unsupported(struct store *st, const char *what)
{
	store_setmsg(st, "%s: not supported by this backend (%s)", what, st->ops->name);
	return -1;
}

int
store_queue_claim(struct store *st, int64_t now, const char *claimer, int64_t until,
    size_t max, struct store_queue_item **items_r, size_t *n_r)
{
	*items_r = NULL;
	*n_r = 0;
	if (st->ops->queue_claim == NULL)
		return unsupported(st, "claim queue items");
	return st->ops->queue_claim(st, now, claimer, until, max, items_r, n_r);
}

int
store_queue_release(struct store *st, const char *claimer)
{
	if (st->ops->queue_release == NULL)
		return unsupported(st, "release queue items");
	return st->ops->queue_release(st, claimer);
}

int
store_queue_defer(struct store *st, int64_t id, int64_t next_attempt, const char *error)
{
	return st->ops->queue_defer(st, id, next_attempt, error);
}

int
store_queue_delete(struct store *st, int64_t id)
{
	return st->ops->queue_delete(st, id);
}

int
store_queue_flush(struct store *st)
{
	return st->ops->queue_flush(st);
}

int
store_queue_clamp(struct store *st, int64_t latest)
{
	return st->ops->queue_clamp(st, latest);
}

int64_t
store_queue_max_id(struct store *st)
{
	return st->ops->queue_max_id(st);
}

int
store_message_read(struct store *st, int64_t message_id, int64_t offset, void *dst,
    size_t len, size_t *got_r)
{
	return st->ops->message_read(st, message_id, offset, dst, len, got_r);
}

int64_t
store_message_size(struct store *st, int64_t message_id)
{
	return st->ops->message_size(st, message_id);
}

int
store_user_set_teacher(struct store *st, const char *name, bool teacher)
{
	return st->ops->user_set_teacher(st, name, teacher);
}

int
store_user_is_teacher(struct store *st, const char *name)
{
	return st->ops->user_is_teacher(st, name);
}

int
store_websession_add(struct store *st, const char *key, const char *account,
    const char *csrf, int64_t expires)
{
	return st->ops->websession_add(st, key, account, csrf, expires);
}

int
store_websession_get(struct store *st, const char *key, int64_t now, char *account_r,
    char *csrf_r)
{
	return st->ops->websession_get(st, key, now, account_r, csrf_r);
}

int
store_websession_del(struct store *st, const char *key)
{
	return st->ops->websession_del(st, key);
}

int
store_token_add(struct store *st, const char *key, const char *account)
{
	return st->ops->token_add(st, key, account);
}

int
store_token_get(struct store *st, const char *key, char *account_r)
{
	return st->ops->token_get(st, key, account_r);
}

int
store_transcript_append(struct store *st, const char *session_id, const char *proto,
    const char *lines, size_t len)
{
	return st->ops->transcript_append(st, session_id, proto, lines, len);
}

int
store_transcript_get(struct store *st, const char *session_id, store_list_cb *cb,
    void *arg)
{
	return st->ops->transcript_get(st, session_id, cb, arg);
}

int
store_log_ready(struct store *st)
{
	return st->ops->log_ready(st);
}

int
store_session_list(struct store *st, const struct store_session_filter *f,
    store_session_cb *cb, void *arg)
{
	return st->ops->session_list(st, f, cb, arg);
}

int
store_session_get(struct store *st, const char *id, struct store_session_info *si_r)
{
	return st->ops->session_get(st, id, si_r);
}

int
store_session_involves(struct store *st, const char *id, const char *account)
{
	return st->ops->session_involves(st, id, account);
}
