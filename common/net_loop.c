/*
 * net_loop.c - the event base of smtpd and pop3d and the work other threads
 * hand to it: net_base_new() turns on libevent's pthread locking, and
 * net_run_in_loop() / net_run_job_in_loop() queue a function for the loop
 * thread (the writer's commits, password checks) and wake the loop once for
 * the whole queue; the second needs no memory, so a result always gets back.
 * Never touches a connection or a bufferevent (net.c does).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "net.h"


/* ---- work from other threads ---------------------------------------------- */

/*
 * Each event base made by net_base_new has a queue of jobs and one event that
 * runs them; other threads append under the lock and activate the event.
 */
struct loop_jobs {
	struct loop_jobs	*next;
	struct event_base	*base;
	struct event		*ev;
	struct net_loop_job	*head, *tail;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct loop_jobs *all_jobs;

static void
jobs_run(evutil_socket_t fd, short what, void *arg)
{
	struct loop_jobs *q = arg;
	struct net_loop_job *j, *next;
	bool owned;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&jobs_lock);
	j = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&jobs_lock);
	for (; j != NULL; j = next) {
		next = j->next;
		owned = j->owned;	/* fn may free a job embedded in its arg */
		j->fn(j->arg);
		if (owned)
			free(j);
	}
}

static struct loop_jobs *
jobs_find(struct event_base *base)
{
	struct loop_jobs *q;

	for (q = all_jobs; q != NULL; q = q->next)
		if (q->base == base)
			return q;
	return NULL;
}

struct event_base *
net_base_new(void)
{
	static bool threads_on;
	struct event_base *base;
	struct loop_jobs *q;

	if (!threads_on) {
		if (evthread_use_pthreads() != 0)
			return NULL;
		threads_on = true;
	}
	if ((base = event_base_new()) == NULL)
		return NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->ev = event_new(base, -1, 0, jobs_run, q)) == NULL) {
		free(q);
		event_base_free(base);
		return NULL;
	}
	q->base = base;
	pthread_mutex_lock(&jobs_lock);
	q->next = all_jobs;
	all_jobs = q;
	pthread_mutex_unlock(&jobs_lock);
	return base;
}

void
net_base_free(struct event_base *base)
{
	struct loop_jobs **pp, *q;
	struct net_loop_job *j, *next;

	pthread_mutex_lock(&jobs_lock);
	for (pp = &all_jobs; (q = *pp) != NULL; pp = &q->next)
		if (q->base == base) {
			*pp = q->next;
			break;
		}
	pthread_mutex_unlock(&jobs_lock);
	if (q != NULL) {
		for (j = q->head; j != NULL; j = next) {
			next = j->next;
			if (j->owned)
				free(j);
		}
		event_free(q->ev);
		free(q);
	}
	event_base_free(base);
}

int
net_run_job_in_loop(struct event_base *base, struct net_loop_job *j, void (*fn)(void *),
    void *arg)
{
	struct loop_jobs *q;

	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&jobs_lock);
	if ((q = jobs_find(base)) == NULL) {
		/* Not a base from net_base_new: no thread-safe wake-up exists. */
		pthread_mutex_unlock(&jobs_lock);
		return -1;
	}
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	event_active(q->ev, 0, 0);	/* thread-safe with evthread_use_pthreads() */
	pthread_mutex_unlock(&jobs_lock);
	return 0;
}

int
net_run_in_loop(struct event_base *base, void (*fn)(void *), void *arg)
{
	struct net_loop_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->owned = true;
	if (net_run_job_in_loop(base, j, fn, arg) == -1) {
		free(j);
		return -1;
	}
	return 0;
}
