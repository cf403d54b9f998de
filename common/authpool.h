/*
 * authpool.h - the password-check threads of a daemon, which also run the
 * store work that may wait for SQLite's write lock. crypt(3) (yescrypt)
 * takes tens of milliseconds of CPU on purpose, and a write waits up to the
 * busy timeout (10 s) while another program holds the lock; done on the
 * event loop, either would stall every session. smtpd and pop3d hand each
 * login to this pool: a thread with its own store handle runs
 * login_verify(), then the job's work (pop3d: the mailbox lock and the
 * snapshot), and the result comes back to the loop thread through
 * net_run_in_loop(), where job->done continues the session. A job may also
 * be work alone (authpool_submit_work: pop3d's expunge and lock release).
 * Never: touches a session or libevent from a worker thread, or keeps a
 * password after the check.
 */
#ifndef CORREIO_AUTHPOOL_H
#define CORREIO_AUTHPOOL_H

#include <event2/event.h>

#include "auth.h"
#include "login.h"
#include "net.h"
#include "store.h"

/* Threads at most (one per CPU, at least 2). */
#define AUTHPOOL_THREADS_MAX	8

struct authpool;

struct authpool_job {
	/* Filled by the daemon. */
	char	 name[AUTH_FIELD_MAX];		/* the login name as given */
	char	 authzid[AUTH_FIELD_MAX];	/* "" or the SASL authzid */
	char	 pass[AUTH_FIELD_MAX];		/* wiped by the check */
	void	(*done)(struct authpool_job *job);	/* runs on the loop thread */
	void	*arg;				/* for done */
	/* Optional store work, on the worker thread with its own handle: after
	 * a check that gave LOGIN_OK, or alone (authpool_submit_work). It may
	 * only use st and the job (the job may be the first member of the
	 * caller's larger struct). */
	void	(*work)(struct store *st, struct authpool_job *job);
	bool	 check;				/* set by the submit: run the check */
	/* Filled by the check. */
	enum login_result result;
	char	 account[STORE_NAME_MAX + 1];	/* see login_verify() */
	struct authpool_job *next;
	struct net_loop_job loop;		/* the hand-back: needs no memory */
};

/*
 * Start nthreads threads (0: one per CPU, 2 to AUTHPOOL_THREADS_MAX), each
 * with its own handle on the store at store_path, handing results back to
 * base. Returns the pool, or NULL with the reason in err.
 */
struct authpool *authpool_start(struct event_base *base, const char *store_path,
	    unsigned nthreads, char *err, size_t errlen);
/* Queue a job (thread-safe): the password check, then job->work if set and
 * the check said LOGIN_OK; job->done(job) runs later on the loop thread
 * and owns the job from then on. */
void	authpool_submit(struct authpool *p, struct authpool_job *job);
/* Queue job->work alone (no check; name and pass unused), the same way. */
void	authpool_submit_work(struct authpool *p, struct authpool_job *job);
/* Run one job's check on the caller's thread with store handle st (what a
 * pool thread does; tests and the fuzz drivers call it directly). The
 * work is not run: a caller without a pool runs it itself. */
void	authpool_check(struct store *st, struct authpool_job *job);
/* Finish the queued jobs (their done callbacks are queued for the loop:
 * run it once more to deliver them), stop and join the threads, close
 * their stores. */
void	authpool_stop(struct authpool **p);

#endif
