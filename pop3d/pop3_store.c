/*
 * pop3_store.c - pop3d's store writes, off the event loop: the mailbox lock
 * and the snapshot after a login, the expunge and the release at QUIT
 * (RFC 1939 6), the lock refresh, the release when a session ends, and the
 * releases that failed (a full or read-only disk), retried with backoff.
 *
 * Each write is a job on the authpool threads (common/authpool.c), which
 * have their own store handles; the result comes back to the loop thread,
 * where the session, paused meanwhile, goes on. While another program holds
 * SQLite's write lock a job waits up to the busy timeout and every other
 * session is still served. Without a pool (unit tests, fuzzing) the same
 * work runs inline on the loop's handle.
 * Never: writes to the store on the loop thread when there is a pool, or
 * touches a session from a worker thread (only the job it was given).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "log.h"
#include "pop3_session.h"

/* The retry of a failed release: first after this, doubling up to the max. */
#define POP3_UNLOCK_RETRY_MIN_MS	1000
#define POP3_UNLOCK_RETRY_MAX_MS	60000

/* A lock of an ended session not released yet: its release job is running,
 * or it failed and waits for the retry. */
struct pop3_unlock {
	struct pop3_unlock *next;
	char		 account[STORE_NAME_MAX + 1];
	char		 owner[POP3_LOCK_OWNER_MAX];
	bool		 inflight;		/* a release job is running */
	bool		 failed;		/* a release failed: log when it is made */
};

/* ---- jobs -------------------------------------------------------------------- */

struct pop3_work *
pop3_work_new(struct pop3_session *s, enum pop3_work_kind kind)
{
	struct pop3_work *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->kind = kind;
	w->srv = s->srv;
	w->job.arg = s;
	w->job.work = pop3_work_do;
	w->rc = -1;
	w->list_rc = -1;
	w->unlock_rc = -1;
	w->ttl = s->srv->cfg->limits.pop3_lock_ttl;
	snprintf(w->sid, sizeof(w->sid), "%s", s->id);
	snprintf(w->owner, sizeof(w->owner), "%s", s->lock_owner);
	snprintf(w->account, sizeof(w->account), "%s", s->account);
	return w;
}

void
pop3_work_free(struct pop3_work **wp)
{
	struct pop3_work *w = *wp;

	if (w == NULL)
		return;
	free(w->ids);
	free(w->msgs);
	explicit_bzero(w, sizeof(*w));	/* the login's password went through it */
	free(w);
	*wp = NULL;
}

static void
work_error(struct store *st, char *dst, size_t len)
{
	snprintf(dst, len, "%s", store_errmsg(st));
}

/* LOGIN, after the check said LOGIN_OK: this process's stale locks on the
 * account, then the lock, then the snapshot. */
static void
work_login(struct store *st, struct pop3_work *w)
{
	size_t i;

	snprintf(w->account, sizeof(w->account), "%s", w->job.account);
	for (i = 0; i < w->nstale; i++) {
		if (strcmp(w->stale_account[i], w->account) != 0)
			continue;
		if (store_mailbox_unlock(st, w->account, w->stale_owner[i]) == -1) {
			/* A write: the disk is still full, say. Not [IN-USE]. */
			w->rc = -1;
			work_error(st, w->error, sizeof(w->error));
			return;
		}
		w->stale_released |= 1u << i;
	}
	w->rc = store_mailbox_lock(st, w->account, w->owner, w->ttl);
	if (w->rc != 0) {
		if (w->rc == -1)
			work_error(st, w->error, sizeof(w->error));
		return;
	}
	w->list_rc = store_mailbox_list(st, w->account, &w->msgs, &w->nmsgs);
	if (w->list_rc == -1) {
		work_error(st, w->error, sizeof(w->error));
		w->unlock_rc = store_mailbox_unlock(st, w->account, w->owner);
		if (w->unlock_rc == -1)
			work_error(st, w->unlock_error, sizeof(w->unlock_error));
	}
}

/* QUIT in the UPDATE state: the expunge (with the reserve on a full disk),
 * the reserve again when there is room, and the release. When the expunge
 * failed, the client is answered first and the release comes after
 * (pop3_store_release): a store locked by another program would make it
 * wait a second busy timeout. */
static void
work_quit(struct store *st, struct pop3_work *w)
{
	w->rc = w->nids > 0 ? store_mailbox_expunge(st, w->account, w->ids, w->nids) : 0;
	w->reserve_released = store_reserve_released(st);
	if (w->rc == -1) {
		work_error(st, w->error, sizeof(w->error));
		return;
	}
	if (w->nids > 0 && store_reserve_make(st) == 1)
		w->reserve_made = true;
	w->unlock_rc = store_mailbox_unlock(st, w->account, w->owner);
	if (w->unlock_rc == -1)
		work_error(st, w->unlock_error, sizeof(w->unlock_error));
}

void
pop3_work_do(struct store *st, struct authpool_job *job)
{
	struct pop3_work *w = (struct pop3_work *)job;

	switch (w->kind) {
	case POP3_WORK_LOGIN:
		work_login(st, w);
		return;
	case POP3_WORK_QUIT:
		work_quit(st, w);
		return;
	case POP3_WORK_TOUCH:
		w->rc = store_mailbox_touch(st, w->account, w->owner);
		break;
	case POP3_WORK_UNLOCK:
		w->rc = store_mailbox_unlock(st, w->account, w->owner);
		break;
	}
	if (w->rc == -1)
		work_error(st, w->error, sizeof(w->error));
}

bool
pop3_work_run(struct pop3_server *srv, struct pop3_work *w)
{
	assert(w->kind != POP3_WORK_LOGIN);
	if (srv->auth != NULL) {
		authpool_submit_work(srv->auth, &w->job);
		return true;
	}
	pop3_work_do(srv->store, &w->job);
	return false;
}

/* ---- releases that failed ---------------------------------------------------- */

static struct pop3_unlock **
unlock_find(struct pop3_server *srv, const char *account, const char *owner)
{
	struct pop3_unlock **pp;

	for (pp = &srv->unlocks; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->account, account) == 0 && strcmp((*pp)->owner, owner) == 0)
			return pp;
	return NULL;
}

static void unlock_retry_cb(evutil_socket_t fd, short what, void *arg);

/* Arm the retry timer (unless armed) with the current backoff. */
static void
unlock_schedule(struct pop3_server *srv)
{
	struct timeval tv;

	if (srv->base == NULL || srv->stopping)
		return;		/* tests: the next login of the account releases it */
	if (srv->unlock_ev == NULL &&
	    (srv->unlock_ev = evtimer_new(srv->base, unlock_retry_cb, srv)) == NULL) {
		log_warnx("event=unlock-retry-failed error=\"out of memory\"");
		return;
	}
	if (evtimer_pending(srv->unlock_ev, NULL))
		return;
	if (srv->unlock_delay_ms < POP3_UNLOCK_RETRY_MIN_MS)
		srv->unlock_delay_ms = POP3_UNLOCK_RETRY_MIN_MS;
	tv.tv_sec = srv->unlock_delay_ms / 1000;
	tv.tv_usec = (srv->unlock_delay_ms % 1000) * 1000;
	evtimer_add(srv->unlock_ev, &tv);
	srv->unlock_delay_ms *= 2;
	if (srv->unlock_delay_ms > POP3_UNLOCK_RETRY_MAX_MS)
		srv->unlock_delay_ms = POP3_UNLOCK_RETRY_MAX_MS;
}

/* The pending entry of (account, owner), made if needed (NULL: no memory). */
static struct pop3_unlock *
unlock_entry(struct pop3_server *srv, const char *account, const char *owner)
{
	struct pop3_unlock **pp = unlock_find(srv, account, owner), *u;

	if (pp != NULL)
		return *pp;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		log_warnx("event=unlock-retry-failed user=%s error=\"out of memory\"", account);
		return NULL;
	}
	snprintf(u->account, sizeof(u->account), "%s", account);
	snprintf(u->owner, sizeof(u->owner), "%s", owner);
	u->next = srv->unlocks;
	srv->unlocks = u;
	return u;
}

void
pop3_store_release_failed(struct pop3_server *srv, const char *account, const char *owner)
{
	struct pop3_unlock *u;

	if ((u = unlock_entry(srv, account, owner)) == NULL)
		return;
	u->inflight = false;
	u->failed = true;
	unlock_schedule(srv);
}

/* A pending release was made (by its retry or by a login): forget it. */
static void
unlock_forget(struct pop3_server *srv, const char *account, const char *owner, const char *how)
{
	struct pop3_unlock **pp = unlock_find(srv, account, owner), *u;

	if (pp == NULL)
		return;
	u = *pp;
	*pp = u->next;
	if (u->failed || strcmp(how, "login") == 0)
		log_info("event=lock-released user=%s owner=%s by=%s", account, owner, how);
	free(u);
	srv->unlock_delay_ms = POP3_UNLOCK_RETRY_MIN_MS;
}

/* Back on the loop thread after a release. */
static void
unlock_done(struct authpool_job *job)
{
	struct pop3_work *w = (struct pop3_work *)job;

	if (w->rc == 0)
		unlock_forget(w->srv, w->account, w->owner, "retry");
	else {
		log_warnx("session=%s event=unlock-failed user=%s error=\"%s\"", w->sid,
		    w->account, w->error);
		pop3_store_release_failed(w->srv, w->account, w->owner);
	}
	pop3_work_free(&w);
}

/* Submit a release job (no session: job.arg stays NULL); the lock is
 * pending (and a login of its account releases it first) until it is made. */
static void
unlock_submit(struct pop3_server *srv, const char *account, const char *owner, const char *sid)
{
	struct pop3_work *w;
	struct pop3_unlock *u;

	if ((u = unlock_entry(srv, account, owner)) != NULL)
		u->inflight = true;
	if (srv->pool_gone) {
		if (u != NULL) {	/* abandoned by pop3_store_stop() */
			u->inflight = false;
			u->failed = true;
		}
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		pop3_store_release_failed(srv, account, owner);
		return;
	}
	w->kind = POP3_WORK_UNLOCK;
	w->srv = srv;
	w->rc = -1;
	w->job.work = pop3_work_do;
	w->job.done = unlock_done;
	snprintf(w->sid, sizeof(w->sid), "%s", sid);
	snprintf(w->account, sizeof(w->account), "%s", account);
	snprintf(w->owner, sizeof(w->owner), "%s", owner);
	if (!pop3_work_run(srv, w))
		unlock_done(&w->job);
}

static void
unlock_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_server *srv = arg;
	struct pop3_unlock *u, *next;

	(void)fd;
	(void)what;
	for (u = srv->unlocks; u != NULL; u = next) {
		next = u->next;		/* a release run inline frees u */
		if (u->inflight)
			continue;
		log_info("event=unlock-retry user=%s owner=%s", u->account, u->owner);
		unlock_submit(srv, u->account, u->owner, "-");
	}
}

void
pop3_store_release(struct pop3_server *srv, const char *account, const char *owner,
    const char *sid)
{
	unlock_submit(srv, account, owner, sid);
}

void
pop3_work_stale(struct pop3_server *srv, struct pop3_work *w, const char *name)
{
	size_t local = strcspn(name, "@");
	struct pop3_unlock *u;

	for (u = srv->unlocks; u != NULL && w->nstale < POP3_STALE_MAX; u = u->next) {
		if (strlen(u->account) != local || strncasecmp(u->account, name, local) != 0)
			continue;
		snprintf(w->stale_account[w->nstale], sizeof(w->stale_account[0]), "%s",
		    u->account);
		snprintf(w->stale_owner[w->nstale], sizeof(w->stale_owner[0]), "%s", u->owner);
		w->nstale++;
	}
}

void
pop3_work_login_done(struct pop3_work *w, bool session_gone)
{
	size_t i;

	for (i = 0; i < w->nstale; i++)
		if (w->stale_released & (1u << i))
			unlock_forget(w->srv, w->stale_account[i], w->stale_owner[i], "login");
	if (w->job.result != LOGIN_OK || w->rc != 0)
		return;
	if (w->list_rc == -1) {
		if (w->unlock_rc == -1) {
			log_warnx("session=%s event=unlock-failed user=%s error=\"%s\"", w->sid,
			    w->account, w->unlock_error);
			pop3_store_release_failed(w->srv, w->account, w->owner);
		}
		return;
	}
	if (session_gone) {	/* the client left while its lock was taken */
		log_info("session=%s event=login-dropped user=%s reason=client-gone", w->sid,
		    w->account);
		pop3_store_release(w->srv, w->account, w->owner, w->sid);
	}
}

void
pop3_store_stop(struct pop3_server *srv)
{
	struct pop3_unlock *u;

	while ((u = srv->unlocks) != NULL) {
		srv->unlocks = u->next;
		if (u->failed)
			log_warnx("event=unlock-abandoned user=%s owner=%s note=\"taken over at "
			    "once by the next pop3d: this process is gone\"", u->account, u->owner);
		free(u);
	}
	if (srv->unlock_ev != NULL) {
		event_free(srv->unlock_ev);
		srv->unlock_ev = NULL;
	}
}
