/*
 * relay_internal.h - what the two halves of the outbound relay share: the
 * scheduler (relay.c: runner, jobs, workers, settling) and the delivery
 * conversation (relay_session.c). Nothing else includes it; smtpd's other
 * files see relay.h only.
 */
#ifndef CORREIO_RELAY_INTERNAL_H
#define CORREIO_RELAY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "log.h"
#include "mx.h"
#include "reply.h"
#include "store.h"

#define RELAY_CONNECT_TIMEOUT	30	/* seconds to connect (Postfix: smtp_connect_timeout) */
#define RELAY_TIMEOUT		300	/* seconds per later wait (RFC 5321 4.5.3.2) */
#define RELAY_RCPTS_PER_TX	100	/* RCPTs per transaction (RFC 5321 4.5.3.1.8) */
#define RELAY_CHUNK		65536	/* octets read from the store per write */
#define RELAY_STOP_GRACE	3	/* seconds a delivery may finish at shutdown */
#define RELAY_WORKERS		8	/* destinations delivered to at the same time */
#define RELAY_MTA_MAX		(MX_HOST_MAX + 48)	/* "host[address:port]" */
#define RELAY_TEXT_MAX		512	/* a reply line or an error, as kept and logged */
#define RELAY_RUN_MAX		2000	/* queue items handed out per run (memory bound) */
#define RELAY_STEP_MIN		5	/* seconds the wall clock must move against the
					   monotonic one between runs to count as a step */
#define RELAY_STEPS_MAX		16	/* clock steps remembered (then logged, not counted) */

enum outcome {
	OUT_PENDING,		/* not tried in this run: left as it is */
	OUT_SENT,		/* the destination took it: delete */
	OUT_TEMP,		/* 4xx, refused, timeout: defer */
	OUT_PERM		/* 5xx, loop, expired: bounce and delete */
};

/* One queue item during a run. */
struct work {
	struct store_queue_item q;
	char	 key[MX_KEY_MAX];	/* route key (mx_route.key): same key = same connection */
	enum outcome out;
	bool	 remote;		/* reply[] came from the destination */
	char	 esc[REPLY_ESC_MAX];	/* RFC 3463 status for the log and the DSN */
	char	 mta[RELAY_MTA_MAX];	/* "host[addr:port]" that answered */
	char	 reply[RELAY_TEXT_MAX];	/* its reply, first line */
	char	 error[RELAY_TEXT_MAX];	/* last_error for the queue / reason in a DSN */
	char	 session[LOG_SESSION_ID_MAX];	/* outbound session id (transcript), or "" */
	int64_t	 stepped;		/* wall-clock steps (s) since it was queued (settle) */
};

/* A destination's items handed to a worker (w sorted by message). */
struct job {
	struct job *next;
	char	 key[MX_KEY_MAX];	/* the route key: one job per key at a time */
	struct work *w;
	size_t	 n;
	bool	 running;
};

/* A delivery thread with its own store handle. */
struct worker {
	struct relay *r;
	struct store *st;
	pthread_t thread;
	bool	 started;
	int	 conn_fd;		/* socket of the delivery in progress, or -1 */
};

/*
 * A queue item whose outcome could not be written to the store (a full disk,
 * an I/O error): remembered in memory so that the runner neither delivers
 * it again nor retries it in a loop. sent: the destination took it (or its
 * bounce is committed): never delivered again, its removal retried each run.
 * Otherwise (a deferral or bounce not written): left alone until until.
 * Lost at a restart: a sent item still queued is then delivered once more
 * (at least once, never lost; RFC 5321 6.1 prefers a duplicate to a loss).
 */
struct held {
	int64_t	 id;
	int64_t	 until;
	bool	 sent;
	bool	 seen;		/* listed by this run (the others are dropped) */
};

struct job;

struct relay {
	const struct config *cfg;
	struct store *st;		/* the runner's: claims from the queue */
	char	 claimer[STORE_OWNER_MAX];	/* "HOST/PID/relay": its queue claims */
	SSL_CTX	*tls_any;		/* opportunistic STARTTLS: peers not verified */
	SSL_CTX	*tls_verify;		/* smarthost STARTTLS: chain and name verified */
	pthread_t thread;		/* the runner */
	struct worker workers[RELAY_WORKERS];
	pthread_mutex_t mu;		/* guards everything below and workers[].conn_fd */
	pthread_cond_t cv;		/* runner: kicked or stopping */
	pthread_cond_t jobs_cv;		/* workers: a job is waiting or stopping */
	struct job *jobs;		/* waiting and running jobs */
	struct held *held;		/* outcomes not written (see struct held) */
	size_t	 nheld, heldcap;
	bool	 stop;
	bool	 kicked;
	bool	 claim_failing;		/* the last claim failed (logged once) */
	/* The runner's own (no lock): clock steps seen while smtpd runs. */
	int64_t	 last_wall, last_mono;	/* time(), monotime_s() at the last run */
	struct relay_step {
		int64_t	 upto_id;	/* items up to this id were queued before it */
		int64_t	 seconds;	/* + forward, - back */
	} steps[RELAY_STEPS_MAX];
	size_t	 nsteps;
};

/* relay.c: true once relay_stop has begun. */
bool	relay_stopping(struct relay *r);
/* relay.c: publish the socket of wk's delivery (-1: none) so that
 * relay_stop can cut it. */
void	relay_set_conn_fd(struct worker *wk, int fd);
/* relay.c: the domain of an address ("" when it has none). */
const char *relay_rcpt_domain(const char *rcpt);
/* relay_session.c: deliver one job's items (sorted by message) to their
 * destination; every item tried leaves with an outcome, the others stay
 * OUT_PENDING. */
void	relay_session_deliver(struct worker *wk, struct work *w, size_t n);

#endif
