/*
 * relay.h - smtpd's queue runner: delivers the store's outbound queue to
 * other servers (RFC 5321 3, 4.5.4, 5.1, 6.1). A runner thread wakes every
 * RELAY_POLL_SECONDS (sooner after relay_kick), claims the due queue items
 * (several smtpd on one store never deliver one item twice) and
 * hands each destination to one of a few delivery threads (each with its own
 * store handle): one connection per destination carrying all of its
 * recipients. 2xx: the item is deleted. 4xx, refused or timed out: deferred
 * on [relay] retry_schedule. 5xx, or older than max_queue_age: an RFC 3464
 * bounce to the envelope sender (never to <>), then deleted. Each outbound
 * session is logged (debug) and kept as a transcript when transcripts are on.
 * All state is in the store, so a restart resumes where it stopped.
 */
#ifndef CORREIO_RELAY_H
#define CORREIO_RELAY_H

#include <stddef.h>

struct event_base;
struct config;
struct relay;

#define RELAY_POLL_SECONDS	2	/* queue checked at least this often */
/*
 * How long a runner's claim on a queue item lasts (store_queue_claim). The
 * runner renews all its claims on every run, so the lease only has to
 * outlast the longest gap between two runs: RELAY_POLL_SECONDS plus the
 * waits of a run for the store, each store call up to its busy timeout
 * (10 s; a run makes at most four before it claims, and may first wait
 * for a worker's two in settle): about a minute at worst. 300 s leaves
 * five times that. It is also how long the items of a runner that died
 * wait for another runner when nothing shows that it died (another host;
 * on this host a gone pid is taken over at once): short against the retry
 * schedule and the give-up time (RFC 5321 4.5.4.1). A runner cut off
 * from the store for longer than this while still delivering can send an
 * item that another runner sends too: SMTP delivery is at least once
 * (docs/RELIABILITY.md).
 */
#define RELAY_CLAIM_LEASE	300

/*
 * Start the queue runner. cfg must stay valid until relay_stop (smtpd's
 * configuration, with its --store and --listen overrides applied: the
 * listeners are used to recognise routes that point back at this server,
 * and such routes are reported here, at start). base is smtpd's event
 * loop; the runner does its blocking I/O on its own thread and does not
 * touch it. Returns 0 with *relay_r set, or -1 with the reason in err.
 */
int	relay_start(struct relay **relay_r, struct event_base *base,
	    const struct config *cfg, char *err, size_t errlen);

/* Wake the runner now (a message was just queued). Safe from any thread;
 * does nothing when no runner is started. */
void	relay_kick(void);

/*
 * Stop the runner and free it: a delivery in progress gets a few seconds to
 * finish, then its connection is cut (its items stay queued and are retried
 * after the restart). Joins the thread; sets *relay to NULL.
 */
void	relay_stop(struct relay **relay);

#endif
