/*
 * smtp_writer.c - smtpd's worker threads, each with its own store handle.
 *
 * The writer commits messages: it takes every delivery waiting in its queue
 * and writes them all with one store_delivery_commit_batch() (one transaction,
 * one fsync: group commit), so the accept rate with many senders is far above
 * one fsync per message. While one batch is being synced, the next one
 * gathers; and while other sessions are in the middle of a mail transaction
 * it waits for them a moment first (SMTP_GATHER_US, smtp_session.h). Results
 * go back to the event loop with net_run_in_loop(); the session sends its 250
 * only then (RFC 5321 4.1.1.4: the message is ours).
 * The writer's checkpoints (copying the store's write-ahead log into the
 * database file) run on a thread of their own with its own handle
 * (store_defer_checkpoints), so a commit never waits for one: with 1 MB
 * messages a checkpoint copies tens of megabytes.
 * Password checks run in common/authpool.c, shared with pop3d.
 * Never: touches a session or a connection (only the job it was given).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "monotime.h"
#include "net.h"
#include "smtp_session.h"
#include "store.h"

/* Spool files made again after each group commit (store_spool_refill()):
 * about 0.1 ms each, so a batch waiting behind them waits 2 ms at most. */
#define SMTP_SPOOL_REFILL	16

struct smtp_worker {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct smtp_job	*head, *tail;
	bool		 stop;
	struct store	*st;
	struct event_base *base;
	char		 name[16];
	const atomic_uint *in_tx;	/* sessions in a mail transaction, or NULL */
	const atomic_uint *tx_begun;	/* transactions begun so far, or NULL */
	long		 gather_us;	/* SMTP_GATHER_US, or a test's */
	int64_t		 gather_off_until; /* monotime_ms(): no gathering before */
	unsigned	 gather_empty;	/* waits in a row nobody used (gather()) */
	size_t		 queued;	/* jobs in head..tail */
	atomic_ulong	 commits;	/* group commits made */

	/* the checkpointer: its thread, its handle, asked by the writer's commits */
	pthread_t	 ckpt_thread;
	pthread_mutex_t	 ckpt_lock;
	pthread_cond_t	 ckpt_cond;
	bool		 ckpt_due, ckpt_stop;
	struct store	*ckpt_st;
};

void
smtp_job_free(struct smtp_job *job)
{
	if (job == NULL)
		return;
	store_delivery_free(&job->d);
	free(job);
}

static void
job_done_in_loop(void *arg)
{
	struct smtp_job *job = arg;

	job->done(job);
}

/* Hand a finished job back to the loop thread (or free it). */
static void
job_finish(struct smtp_worker *w, struct smtp_job *job)
{
	job->next = NULL;
	if (job->done == NULL) {
		smtp_job_free(job);
		return;
	}
	if (net_run_job_in_loop(w->base, &job->loop, job_done_in_loop, job) == -1)
		log_warnx("event=worker-handback-failed worker=%s", w->name);	/* cannot happen */
}

/* Commit the deliveries of one batch together. */
static void
run_deliveries(struct smtp_worker *w, struct smtp_job **jobs, size_t n)
{
	struct store_delivery **ds;
	int *res;
	size_t i;

	ds = calloc(n, sizeof(*ds));
	res = calloc(n, sizeof(*res));
	if (ds == NULL || res == NULL) {
		for (i = 0; i < n; i++)
			jobs[i]->result = -1;
		free(ds);
		free(res);
		return;
	}
	for (i = 0; i < n; i++)
		ds[i] = jobs[i]->d;
	if (store_delivery_commit_batch(w->st, ds, n, res) == -1)
		log_warnx("event=commit-failed worker=%s messages=%zu error=\"%s\"", w->name, n,
		    store_errmsg(w->st));
	for (i = 0; i < n; i++) {
		jobs[i]->result = res[i];
		if (res[i] != 0)
			log_warnx("session=%s event=store-failed error=\"%s\"",
			    jobs[i]->d ? jobs[i]->session_id : "-", store_errmsg(w->st));
	}
	atomic_fetch_add(&w->commits, 1);
	log_debug("event=group-commit worker=%s messages=%zu", w->name, n);
	free(ds);
	free(res);
}

/* store_defer_checkpoints() callback, on the writer thread after a commit. */
static void
checkpoint_due(void *arg)
{
	struct smtp_worker *w = arg;

	pthread_mutex_lock(&w->ckpt_lock);
	if (!w->ckpt_due) {
		w->ckpt_due = true;
		pthread_cond_signal(&w->ckpt_cond);
	}
	pthread_mutex_unlock(&w->ckpt_lock);
}

static void *
checkpointer_main(void *arg)
{
	struct smtp_worker *w = arg;
	bool failing = false;

	for (;;) {
		pthread_mutex_lock(&w->ckpt_lock);
		while (!w->ckpt_due && !w->ckpt_stop)
			pthread_cond_wait(&w->ckpt_cond, &w->ckpt_lock);
		w->ckpt_due = false;
		if (w->ckpt_stop) {
			pthread_mutex_unlock(&w->ckpt_lock);
			break;
		}
		pthread_mutex_unlock(&w->ckpt_lock);
		if (store_checkpoint(w->ckpt_st) == -1) {
			/* Once per run of failures: the store's own checks say the rest. */
			if (!failing)
				log_warnx("event=checkpoint-failed worker=%s error=\"%s\"", w->name,
				    store_errmsg(w->ckpt_st));
			failing = true;
		} else
			failing = false;
	}
	return NULL;
}

/*
 * With the lock held and a job waiting: give the sessions in a mail
 * transaction until SMTP_GATHER_US to join this commit. Woken by the submit
 * of the last open transaction (smtp_worker_submit()); a session that
 * submits has left its transaction. SMTP_GATHER_EMPTY waits in a row that
 * ran out with nobody joining and no transaction begun meanwhile (nobody is
 * sending: a transaction held open by someone typing, or one that ended
 * without a message) turn gathering off for SMTP_GATHER_OFF waits' time,
 * so such a session costs the others a few waits, not one per commit.
 * Under load one such wait in ten is chance (20 senders at 6,000 messages
 * a second begin 2.4 transactions in 0.4 ms on average); three in a row
 * are not.
 */
static void
gather(struct smtp_worker *w)
{
	struct timespec until;
	size_t queued = w->queued;
	unsigned begun = w->tx_begun != NULL ? atomic_load(w->tx_begun) : 0;
	int rc = 0;

	if (w->in_tx == NULL || w->stop || atomic_load(w->in_tx) == 0)
		return;
	if (monotime_ms() < w->gather_off_until)
		return;
	monotime_deadline_us(&until, w->gather_us);
	while (!w->stop && atomic_load(w->in_tx) > 0 &&
	    (rc = pthread_cond_timedwait(&w->cond, &w->lock, &until)) == 0)
		;
	if (rc != ETIMEDOUT || w->queued != queued ||
	    (w->tx_begun != NULL && atomic_load(w->tx_begun) != begun))
		w->gather_empty = 0;
	else if (++w->gather_empty >= SMTP_GATHER_EMPTY) {
		w->gather_empty = 0;
		w->gather_off_until = monotime_ms() + w->gather_us * SMTP_GATHER_OFF / 1000;
	}
}

static void *
worker_main(void *arg)
{
	struct smtp_worker *w = arg;
	struct smtp_job *list, *j, *next, **dels = NULL;
	size_t ndels, cap = 0;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		gather(w);
		list = w->head;
		w->head = w->tail = NULL;
		w->queued = 0;
		pthread_mutex_unlock(&w->lock);
		if (list == NULL)
			break;	/* stopping and nothing left */

		/* Every waiting delivery goes into one transaction. */
		ndels = 0;
		for (j = list; j != NULL; j = j->next) {
			if (j->kind != JOB_DELIVERY)
				continue;
			if (ndels == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct smtp_job **p = reallocarray(dels, ncap, sizeof(*p));
				if (p == NULL)
					break;
				dels = p;
				cap = ncap;
			}
			dels[ndels++] = j;
		}
		if (ndels > 0)
			run_deliveries(w, dels, ndels);
		for (j = list; j != NULL; j = next) {
			next = j->next;
			job_finish(w, j);
		}
		/* The spool files that became bodies, made again here, not on
		 * the event loop: a few at a time, so that a batch waiting
		 * now is not held up for long. */
		store_spool_refill(SMTP_SPOOL_REFILL);
	}
	free(dels);
	return NULL;
}

static void
checkpointer_stop(struct smtp_worker *w)
{
	if (w->ckpt_st == NULL)
		return;		/* none was started */
	pthread_mutex_lock(&w->ckpt_lock);
	w->ckpt_stop = true;
	pthread_cond_signal(&w->ckpt_cond);
	pthread_mutex_unlock(&w->ckpt_lock);
	pthread_join(w->ckpt_thread, NULL);
}

/* Its handles, locks and itself, its threads gone (or never started). */
static void
worker_free(struct smtp_worker *w)
{
	store_close(&w->ckpt_st);
	store_close(&w->st);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->ckpt_lock);
	pthread_cond_destroy(&w->ckpt_cond);
	free(w);
}

struct smtp_worker *
smtp_worker_start(struct event_base *base, const char *store_path, const char *name,
    const atomic_uint *in_tx, const atomic_uint *tx_begun, char *err, size_t errlen)
{
	struct smtp_worker *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->base = base;
	w->in_tx = in_tx;
	w->tx_begun = tx_begun;
	w->gather_us = SMTP_GATHER_US;
	snprintf(w->name, sizeof(w->name), "%s", name);
	if (store_open(&w->st, store_path, err, errlen) == -1) {
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	monotime_cond_init(&w->cond);	/* gather()'s deadlines are monotonic */
	pthread_mutex_init(&w->ckpt_lock, NULL);
	pthread_cond_init(&w->ckpt_cond, NULL);
	/* Before the writer's first commit: from here its checkpoints are the
	 * checkpointer's (a store that has none, PostgreSQL, needs no thread). */
	if (store_defer_checkpoints(w->st, checkpoint_due, w)) {
		if (store_open(&w->ckpt_st, store_path, err, errlen) == -1)
			goto fail;
		if (pthread_create(&w->ckpt_thread, NULL, checkpointer_main, w) != 0) {
			snprintf(err, errlen, "cannot start the %s checkpointer thread", name);
			goto fail;
		}
	}
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		snprintf(err, errlen, "cannot start the %s thread", name);
		checkpointer_stop(w);
		goto fail;
	}
	return w;
fail:
	worker_free(w);
	return NULL;
}

void
smtp_worker_submit(struct smtp_worker *w, struct smtp_job *job)
{
	job->next = NULL;
	job->result = -1;
	pthread_mutex_lock(&w->lock);
	/* Woken for the first job, or when this was the last open transaction
	 * (gather() waits for that); a job that joins a gathering batch need
	 * not wake it to find others still open. */
	if (w->tail == NULL || w->in_tx == NULL || atomic_load(w->in_tx) == 0)
		pthread_cond_signal(&w->cond);
	if (w->tail != NULL)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
	w->queued++;
	pthread_mutex_unlock(&w->lock);
}

void
smtp_worker_set_gather(struct smtp_worker *w, long usec)
{
	pthread_mutex_lock(&w->lock);
	w->gather_us = usec;
	w->gather_off_until = 0;
	w->gather_empty = 0;
	pthread_mutex_unlock(&w->lock);
}

unsigned long
smtp_worker_commits(struct smtp_worker *w)
{
	return atomic_load(&w->commits);
}

void
smtp_worker_stop(struct smtp_worker **wp)
{
	struct smtp_worker *w = *wp;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	checkpointer_stop(w);	/* the writer commits no more: nothing will ask it */
	worker_free(w);
	*wp = NULL;
}
