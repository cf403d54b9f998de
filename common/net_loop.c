/*
 * net_loop.c - the event base of smtpd, pop3d and webd, and the work other
 * threads hand to it: net_run_in_loop() queues a function for the loop
 * thread (the writer's commits, password checks) and wakes the loop through
 * an eventfd, once for the whole queue; net_run_job_in_loop() does the same
 * with the caller's job storage, so a result always gets back, even with no
 * memory left. That is the only way another thread
 * reaches the loop, so libevent runs without its own locks (they cost a
 * mutex pair on every event and buffer call: 3-4% of smtpd's loop).
 * The thread that makes a base runs it, and holds its log lines until the
 * end of each turn (log_hold): one write(2) for the lines of a turn.
 * Never touches a connection or a bufferevent (net.c does).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <event2/event.h>

#include "log.h"
#include "net.h"


/* ---- work from other threads ---------------------------------------------- */

/*
 * Each event base made by net_base_new has a queue of jobs and an eventfd
 * whose read event runs them; other threads append under the lock and
 * write the eventfd when the queue was empty.
 */
struct loop_jobs {
	struct loop_jobs	*next;
	struct event_base	*base;
	struct event		*ev;
	struct event		*logflush;	/* writes the turn's held log lines */
	int			 efd;
	struct net_loop_job	*head, *tail;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct loop_jobs *all_jobs;

static void
jobs_run(evutil_socket_t fd, short what, void *arg)
{
	struct loop_jobs *q = arg;
	struct net_loop_job *j, *next;
	uint64_t n;
	bool owned;

	(void)fd;
	(void)what;
	/* Clear the wake-up before taking the queue: a job queued after the
	 * take finds it empty and wakes the loop again. */
	while (read(q->efd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
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

/* Made active by the first log line held in a turn: it runs after the
 * callbacks already active, at the end of the turn. */
static void
logflush_run(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_flush();
}

static void
logflush_wake(void *arg)
{
	event_active(arg, EV_TIMEOUT, 0);
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
	struct event_base *base;
	struct loop_jobs *q;

	if ((base = event_base_new()) == NULL)
		return NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		event_base_free(base);
		return NULL;
	}
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, jobs_run, q)) == NULL ||
	    event_add(q->ev, NULL) == -1 ||
	    (q->logflush = event_new(base, -1, 0, logflush_run, NULL)) == NULL) {
		if (q->ev != NULL)
			event_free(q->ev);
		if (q->efd != -1)
			close(q->efd);
		free(q);
		event_base_free(base);
		return NULL;
	}
	q->base = base;
	pthread_mutex_lock(&jobs_lock);
	q->next = all_jobs;
	all_jobs = q;
	pthread_mutex_unlock(&jobs_lock);
	log_hold(logflush_wake, q->logflush);
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
		log_hold(NULL, NULL);	/* write what is held; lines are written at once again */
		event_free(q->logflush);
		event_free(q->ev);
		close(q->efd);
		free(q);
	}
	event_base_free(base);
}

void
net_run_queued(struct event_base *base)
{
	struct loop_jobs *q;
	bool more;

	/* A job may queue another: go again until the queue stays empty. */
	for (;;) {
		pthread_mutex_lock(&jobs_lock);
		q = jobs_find(base);
		more = q != NULL && q->head != NULL;
		pthread_mutex_unlock(&jobs_lock);
		if (!more)
			return;
		jobs_run(-1, 0, q);
	}
}

int
net_run_job_in_loop(struct event_base *base, struct net_loop_job *j, void (*fn)(void *),
    void *arg)
{
	struct loop_jobs *q;
	const uint64_t one = 1;
	bool wake;

	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&jobs_lock);
	if ((q = jobs_find(base)) == NULL) {
		/* Not a base from net_base_new: no thread-safe wake-up exists. */
		pthread_mutex_unlock(&jobs_lock);
		return -1;
	}
	wake = q->head == NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	/* Under the lock, so the base cannot be freed meanwhile. A full
	 * counter (EAGAIN) has a wake-up pending already. */
	if (wake)
		while (write(q->efd, &one, sizeof(one)) == -1 && errno == EINTR)
			;
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
