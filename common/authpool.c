/*
 * authpool.c - the pool of password-check threads shared by smtpd and pop3d.
 *
 * One queue, a few threads; each thread opens its own store handle (SQLite
 * handles are not shared between threads) and runs login_verify() for the
 * jobs it takes, and then the job's store work, if any. Results go back to the event loop with net_run_in_loop();
 * the job then belongs to its done callback. The dummy hash for unknown
 * names is made at start, not in the first login.
 * Never: touches a session, a connection or libevent from a worker (only
 * the job it was given), or keeps a password once the check is done.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authpool.h"
#include "log.h"
#include "net.h"

struct authpool_thread {
	pthread_t	 thread;
	struct store	*st;
	struct authpool	*pool;
	bool		 started;
};

struct authpool {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct authpool_job *head, *tail;
	bool		 stop;
	struct event_base *base;
	struct authpool_thread threads[AUTHPOOL_THREADS_MAX];
	unsigned	 nthreads;
};

void
authpool_check(struct store *st, struct authpool_job *job)
{
	job->account[0] = '\0';
	job->result = login_verify(st, job->name, job->authzid, job->pass, job->account,
	    sizeof(job->account));
	explicit_bzero(job->pass, sizeof(job->pass));
}

static void
job_done_in_loop(void *arg)
{
	struct authpool_job *job = arg;

	job->done(job);
}

static void *
thread_main(void *arg)
{
	struct authpool_thread *t = arg;
	struct authpool *p = t->pool;
	struct authpool_job *job;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if ((job = p->head) == NULL) {
			pthread_mutex_unlock(&p->lock);
			return NULL;	/* stopping and nothing left */
		}
		p->head = job->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		if (job->check)
			authpool_check(t->st, job);
		if (job->work != NULL && (!job->check || job->result == LOGIN_OK))
			job->work(t->st, job);
		job->next = NULL;
		if (net_run_job_in_loop(p->base, &job->loop, job_done_in_loop, job) == -1)
			log_warnx("event=auth-handback-failed");	/* job leaks; cannot happen */
	}
}

struct authpool *
authpool_start(struct event_base *base, const char *store_path, unsigned nthreads,
    char *err, size_t errlen)
{
	struct authpool *p;
	unsigned i;
	long ncpu;

	if (nthreads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu < 2 ? 2 : (unsigned)ncpu;
	}
	if (nthreads > AUTHPOOL_THREADS_MAX)
		nthreads = AUTHPOOL_THREADS_MAX;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->base = base;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* Make the dummy hash now, not in the first unknown-user login. */
	(void)auth_dummy_hash();
	for (i = 0; i < nthreads; i++) {
		struct authpool_thread *t = &p->threads[i];

		t->pool = p;
		if (store_open(&t->st, store_path, err, errlen) == -1)
			break;
		if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
			snprintf(err, errlen, "cannot start a password-check thread");
			store_close(&t->st);
			break;
		}
		t->started = true;
		p->nthreads++;
	}
	if (p->nthreads < nthreads) {
		authpool_stop(&p);
		return NULL;
	}
	return p;
}

static void
submit(struct authpool *p, struct authpool_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail != NULL)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void
authpool_submit(struct authpool *p, struct authpool_job *job)
{
	job->result = LOGIN_FAILED;
	job->check = true;
	submit(p, job);
}

void
authpool_submit_work(struct authpool *p, struct authpool_job *job)
{
	assert(job->work != NULL);
	job->result = LOGIN_OK;
	job->check = false;
	submit(p, job);
}

void
authpool_stop(struct authpool **pp)
{
	struct authpool *p = *pp;
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < AUTHPOOL_THREADS_MAX; i++) {
		if (!p->threads[i].started)
			continue;
		pthread_join(p->threads[i].thread, NULL);
		store_close(&p->threads[i].st);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	*pp = NULL;
}
