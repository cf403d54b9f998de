/*
 * pop3_auth.c - password verification off the event loop. A yescrypt
 * verification takes tens of milliseconds of CPU; done on the loop thread,
 * a burst of logins would stall every session (RFC 1939 servers serve many
 * mailboxes at once). A few worker threads verify; each result is handed
 * back to the loop with net_run_in_loop(), where the session continues.
 *
 * Owns: the worker threads and their queue. Never: touches a session, the
 * store or libevent from a worker (workers see only the job's copies of the
 * password and hash), or keeps a password after the job is done.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "net.h"
#include "pop3_session.h"

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct pop3_auth_job *q_head, *q_tail;
static bool q_stop;
static pthread_t *workers;
static unsigned nworkers;
static struct event_base *q_base;

static void *
worker_main(void *arg)
{
	struct pop3_auth_job *job;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&q_lock);
		while (q_head == NULL && !q_stop)
			pthread_cond_wait(&q_cond, &q_lock);
		if (q_head == NULL) {
			pthread_mutex_unlock(&q_lock);
			return NULL;
		}
		job = q_head;
		q_head = job->next;
		if (q_head == NULL)
			q_tail = NULL;
		pthread_mutex_unlock(&q_lock);

		job->ok = auth_verify_password(job->pass, job->hash);
		explicit_bzero(job->pass, sizeof(job->pass));
		explicit_bzero(job->hash, sizeof(job->hash));
		if (net_run_in_loop(q_base, job->done, job) == -1)
			log_warnx("event=auth-handback-failed");	/* job leaks; cannot happen */
	}
}

int
pop3_auth_start(struct event_base *base, unsigned n)
{
	unsigned i;

	q_base = base;
	if ((workers = calloc(n, sizeof(*workers))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (pthread_create(&workers[i], NULL, worker_main, NULL) != 0)
			return -1;
		nworkers++;
	}
	/* Make the dummy hash now, not in the first unknown-user login. */
	(void)auth_dummy_hash();
	return 0;
}

bool
pop3_auth_running(void)
{
	return nworkers > 0;
}

void
pop3_auth_submit(struct pop3_auth_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&q_lock);
	if (q_tail != NULL)
		q_tail->next = job;
	else
		q_head = job;
	q_tail = job;
	pthread_cond_signal(&q_cond);
	pthread_mutex_unlock(&q_lock);
}

void
pop3_auth_stop(void)
{
	unsigned i;

	pthread_mutex_lock(&q_lock);
	q_stop = true;
	pthread_cond_broadcast(&q_cond);
	pthread_mutex_unlock(&q_lock);
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	free(workers);
	workers = NULL;
	nworkers = 0;
}
