/*
 * relay.c - the queue runner (the scheduler half of the outbound relay; the
 * conversation with a destination is relay_session.c, as OpenSMTPD splits
 * mta.c and mta_session.c). A runner thread claims the due items (so that
 * other runners on the same store, smtpd processes on this host or others,
 * leave them alone) and groups them by route into jobs; RELAY_WORKERS
 * delivery threads, each with its own
 * store handle, take one job at a time: one connection per destination. When
 * a job comes back, each item's outcome is applied in the store: delete
 * (sent), defer (RFC 5321 4.5.4.1 retry schedule, max_queue_age) or bounce
 * (RFC 3464 DSN through dsn.c, 6.1: never to the null sender).
 * Must never: delete an item before its fate is on disk (delivered, or its
 * bounce committed), hand one item to two workers, deliver an item another
 * runner holds, or touch smtpd's event loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "esc.h"
#include "config.h"
#include "dsn.h"
#include "log.h"
#include "mailaddr.h"
#include "monotime.h"
#include "mx.h"
#include "relay.h"
#include "relay_internal.h"
#include "store.h"
#include "strfmt.h"
#include "tls.h"

static pthread_mutex_t relay_global_mu = PTHREAD_MUTEX_INITIALIZER;
static struct relay *relay_global;	/* for relay_kick() */

/* ---- shared with relay_session.c ---------------------------------------- */

bool
relay_stopping(struct relay *r)
{
	bool s;

	pthread_mutex_lock(&r->mu);
	s = r->stop;
	pthread_mutex_unlock(&r->mu);
	return s;
}

void
relay_set_conn_fd(struct worker *wk, int fd)
{
	pthread_mutex_lock(&wk->r->mu);
	wk->conn_fd = fd;
	pthread_mutex_unlock(&wk->r->mu);
}

const char *
relay_rcpt_domain(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	return at != NULL ? at + 1 : "";
}

/* ---- settling: delete, defer, or bounce ---------------------------------- */

static void
log_item(const struct work *w, const char *status, int64_t now)
{
	log_info("relay: queue_id=%lld msg=%lld from=<%s> to=<%s> relay=%s session=%s status=%s"
	    " dsn=%s attempts=%d delay=%llds reply=\"%s\"",
	    (long long)w->q.id, (long long)w->q.message_id, w->q.sender, w->q.rcpt,
	    w->mta[0] ? w->mta : "none", w->session[0] ? w->session : "-", status, w->esc,
	    w->q.attempts + 1,
	    (long long)(now - w->q.created), w->error);
}

/*
 * Commit one bounce for the permanently failed items of one message: to
 * the sender's mailbox when the sender is local, else into the queue.
 * Returns 0 when it is on disk (or rightly not sent), -1 to retry later.
 */
static int
bounce(struct worker *wk, struct work **f, size_t n, int64_t now)
{
	struct relay *r = wk->r;
	const struct config *cfg = r->cfg;
	const char *sender = f[0]->q.sender, *domain = relay_rcpt_domain(sender);
	struct store_delivery *d = NULL;
	struct dsn_rcpt *dr = NULL;
	struct dsn_msg m;
	struct mailaddr a;
	struct buf out;
	char sid[LOG_SESSION_ID_MAX], msgid[DSN_MSGID_MAX], account[STORE_NAME_MAX + 1], local[MAILADDR_LOCAL_MAX * 2 + 3];
	char date[64], perr[128], *orig = NULL;
	size_t got = 0, i;
	int is_local, ret = -1, rs;

	buf_init(&out, DSN_HEADERS_MAX + 8192 + n * 2048);
	if ((orig = malloc(DSN_HEADERS_MAX)) == NULL || (dr = calloc(n, sizeof(*dr))) == NULL)
		goto out;
	if (store_message_read(wk->st, f[0]->q.message_id, 0, orig, DSN_HEADERS_MAX, &got) == -1) {
		/* Still tell the sender; a bounce must not wait on a broken message. */
		log_warnx("relay: bounce for msg=%lld without its headers: %s",
		    (long long)f[0]->q.message_id, store_errmsg(wk->st));
		got = 0;
	}
	for (i = 0; i < n; i++) {
		dr[i].addr = f[i]->q.rcpt;
		dr[i].status = f[i]->esc;
		dr[i].remote_mta = f[i]->remote ? f[i]->mta : NULL;
		dr[i].reply = f[i]->remote ? f[i]->reply : NULL;
		dr[i].reason = f[i]->error;
		dr[i].last_attempt = now;
	}
	log_session_id(sid, sizeof(sid));
	strfmt(msgid, sizeof(msgid), "%lld.%s.dsn@%s", (long long)now, sid, cfg->hostname);
	m.reporting_mta = cfg->hostname;
	m.sender = sender;
	m.msgid = msgid;
	m.arrival = f[0]->q.created;
	m.now = now;

	/* Where the bounce goes: a local account, or the queue. */
	is_local = domain[0] == '\0' ? 1 : store_domain_lookup(wk->st, domain);
	if (is_local == -1) {
		log_warnx("relay: bounce for msg=%lld waits: %s", (long long)f[0]->q.message_id,
		    store_errmsg(wk->st));
		goto out;
	}
	if ((d = store_delivery_new("", sid)) == NULL)
		goto out;
	if (is_local) {
		if (mailaddr_parse(sender, &a, perr, sizeof(perr)) == 0)
			mailaddr_unquoted_local(&a, local, sizeof(local));
		else
			snprintf(local, sizeof(local), "%.*s",
			    (int)(domain[0] ? (size_t)(domain - 1 - sender) : strlen(sender)), sender);
		rs = store_resolve(wk->st, local, domain, account, sizeof(account));
		if (rs == STORE_NOTFOUND) {
			log_warnx("relay: bounce for msg=%lld dropped: sender <%s> is no local account",
			    (long long)f[0]->q.message_id, sender);
			ret = 0;
			goto out;
		}
		if (rs != 0 || store_delivery_add_rcpt(d, account) == -1)
			goto out;
		/* Local delivery: the trace smtpd would have written (RFC 5321 4.4). */
		buf_puts(&out, "Return-Path: <>\r\n");
	} else if (store_delivery_add_remote(d, sender) == -1)
		goto out;
	dsn_date(now, date, sizeof(date));
	buf_printf(&out, "Received: by %s (correio relay) id %s;\r\n\t%s\r\n",
	    cfg->hostname, sid, date);
	if (dsn_build(&out, &m, dr, n, orig, got) == -1 ||
	    store_delivery_body(d, out.data, out.len) == -1) {
		log_warnx("relay: bounce for msg=%lld: message too large", (long long)f[0]->q.message_id);
		goto out;
	}
	if (store_delivery_commit(wk->st, d) == -1) {
		log_warnx("relay: bounce for msg=%lld: %s", (long long)f[0]->q.message_id,
		    store_errmsg(wk->st));
		goto out;
	}
	log_info("relay: bounce msg=%lld to=<%s> delivery=%s dsn_msg=%lld rcpts=%zu msgid=<%s>",
	    (long long)f[0]->q.message_id, sender, is_local ? "local" : "queued",
	    (long long)store_delivery_id(d), n, msgid);
	if (!is_local) {
		pthread_mutex_lock(&r->mu);
		r->kicked = true;	/* deliver the queued bounce in the next run */
		pthread_mutex_unlock(&r->mu);
	}
	ret = 0;
out:
	store_delivery_free(&d);
	buf_free(&out);
	free(dr);
	free(orig);
	return ret;
}

static long
retry_delay(const struct config *cfg, int attempts)
{
	size_t i;

	if (cfg->nretry == 0)
		return 3600;
	i = attempts < 0 ? 0 : (size_t)attempts;
	return cfg->retry_schedule[i < cfg->nretry ? i : cfg->nretry - 1];
}

/* The longest retry interval: no item waits longer than this for its
 * next attempt, whatever the wall clock did. */
static long
retry_max(const struct config *cfg)
{
	long m = retry_delay(cfg, 0);
	size_t i;

	for (i = 0; i < cfg->nretry; i++)
		if (cfg->retry_schedule[i] > m)
			m = cfg->retry_schedule[i];
	return m;
}

/*
 * Notice a step of the wall clock since the last run (the monotonic clock
 * says how much time really passed) and keep the queue's schedule sane:
 * - next_attempt and created are wall-clock dates in the store (they
 *   survive restarts). After a step back, a next_attempt would lie further
 *   ahead than any retry interval: it is brought back to now + the longest
 *   interval (also once at start, for a step while smtpd was stopped).
 * - after a step forward, every item is due: each is tried once and
 *   deferred from the new time, no tight loop.
 * - the step is remembered against the highest queue id, so that expiry
 *   (settle) counts the time an item really spent in the queue: a day
 *   forward does not bounce it early, an hour back does not keep it longer.
 *   Steps seen before a restart are not known after it (the wall-clock
 *   age counts then, as in Postfix).
 * Called with r->mu held (both clocks are read under it, so callers cannot
 * interleave their readings), by the runner (st its handle) before it
 * claims from the queue, and by a worker (st its own) before it settles items.
 */
static void
clock_steps(struct relay *r, struct store *st)
{
	int64_t now = (int64_t)time(NULL), mono = monotime_s(), step, maxid;
	int changed;
	bool first = r->last_wall == 0;

	step = first ? 0 : (now - r->last_wall) - (mono - r->last_mono);
	r->last_wall = now;
	r->last_mono = mono;
	if (!first && step > -RELAY_STEP_MIN && step < RELAY_STEP_MIN)
		return;
	if (!first) {
		log_warnx("relay: event=clock-step seconds=%lld", (long long)step);
		if ((maxid = store_queue_max_id(st)) == -1)
			log_warnx("relay: reading the queue: %s", store_errmsg(st));
		else if (r->nsteps == RELAY_STEPS_MAX)
			log_warnx("relay: more than %d clock steps: expiry counts this one",
			    RELAY_STEPS_MAX);
		else {
			r->steps[r->nsteps].upto_id = maxid;
			r->steps[r->nsteps++].seconds = step;
		}
		if (step > 0)
			return;
	}
	if ((changed = store_queue_clamp(st, now + retry_max(r->cfg))) == -1)
		log_warnx("relay: clamping the queue: %s", store_errmsg(st));
	else if (changed > 0)
		log_info("relay: event=queue-clamped items=%d next_attempt<=now+%lds", changed,
		    retry_max(r->cfg));
}

/* The clock steps (seconds) seen since item id was queued (r->mu held). */
static int64_t
stepped_since(const struct relay *r, int64_t id)
{
	int64_t sum = 0;
	size_t i;

	for (i = 0; i < r->nsteps; i++)
		if (id <= r->steps[i].upto_id)
			sum += r->steps[i].seconds;
	return sum;
}

/* A remote server's text goes to logs, the queue (shown on an admin's
 * terminal by `queue list`, tab-separated) and bounces: no control bytes. */
static void
defang(char *p)
{
	for (; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* ---- outcomes the store could not take (struct held) ------------------- */

/* The held entry of queue item id, or NULL (r->mu held). */
static struct held *
held_find(struct relay *r, int64_t id)
{
	size_t i;

	for (i = 0; i < r->nheld; i++)
		if (r->held[i].id == id)
			return &r->held[i];
	return NULL;
}

/*
 * x's outcome could not be written: remember it (sent: never deliver it
 * again, retry its removal; else leave it alone until until). Without
 * memory for it the item is retried on the next run, as before.
 */
static void
relay_hold(struct worker *wk, const struct work *x, bool sent, int64_t until)
{
	struct relay *r = wk->r;
	struct held *h;

	log_warnx("relay: queue_id=%lld event=queue-update-failed outcome=%s error=\"%s\""
	    " action=\"%s\"", (long long)x->q.id, sent ? "sent" : "retry",
	    store_errmsg(wk->st), sent ? "not delivered again; removal retried" :
	    "kept in memory; retried after the delay");
	pthread_mutex_lock(&r->mu);
	if ((h = held_find(r, x->q.id)) == NULL) {
		if (r->nheld == r->heldcap) {
			size_t ncap = r->heldcap ? r->heldcap * 2 : 16;
			struct held *p = reallocarray(r->held, ncap, sizeof(*p));

			if (p == NULL) {
				pthread_mutex_unlock(&r->mu);
				log_warnx("relay: queue_id=%lld out of memory remembering it",
				    (long long)x->q.id);
				return;
			}
			r->held = p;
			r->heldcap = ncap;
		}
		h = &r->held[r->nheld++];
		memset(h, 0, sizeof(*h));
		h->id = x->q.id;
	}
	h->sent = sent || h->sent;
	h->until = until;
	h->seen = true;
	pthread_mutex_unlock(&r->mu);
}

/* Delete a settled item, or hold it when the store cannot take it now. */
static void
remove_or_hold(struct worker *wk, const struct work *x)
{
	if (store_queue_delete(wk->st, x->q.id) == -1)
		relay_hold(wk, x, true, 0);
}

/* Defer an item, or hold it until its next attempt when the store cannot
 * take it now. */
static void
defer_or_hold(struct worker *wk, const struct work *x, int64_t next)
{
	if (store_queue_defer(wk->st, x->q.id, next, x->error) == -1)
		relay_hold(wk, x, false, next);
}

/*
 * Should the runner take item q now (r->mu held)? Not when it is held: a
 * sent one has its removal tried again on the runner's handle (and is never
 * handed out); another waits for its time.
 */
static bool
held_skip(struct relay *r, const struct store_queue_item *q, int64_t now)
{
	struct held *h = held_find(r, q->id);

	if (h == NULL)
		return false;
	h->seen = true;
	if (h->sent) {
		if (store_queue_delete(r->st, q->id) == 0) {
			log_info("relay: queue_id=%lld event=queue-update-done removed after delivery",
			    (long long)q->id);
			h->until = -1;		/* dropped below */
		}
		return true;
	}
	if (h->until > now)
		return true;
	h->until = -1;
	return false;
}

/* Forget held entries done, and (when complete: every due item was looked
 * at) those no longer in the queue (r->mu held). */
static void
held_sweep(struct relay *r, bool complete)
{
	size_t i, j;

	for (i = j = 0; i < r->nheld; i++) {
		if ((r->held[i].seen || !complete) && r->held[i].until != -1) {
			r->held[i].seen = false;
			r->held[j++] = r->held[i];
		}
	}
	r->nheld = j;
}

/* Apply the outcomes of one message's items (w[0..n-1] share message_id). */
static void
settle(struct worker *wk, struct work *w, size_t n)
{
	const struct config *cfg = wk->r->cfg;
	struct work **f;
	int64_t now = (int64_t)time(NULL);
	size_t i, nf = 0;
	char err[RELAY_TEXT_MAX];

	/* A step of the clock while these items were out counts too. */
	pthread_mutex_lock(&wk->r->mu);
	clock_steps(wk->r, wk->st);
	for (i = 0; i < n; i++)
		w[i].stepped = stepped_since(wk->r, w[i].q.id);
	pthread_mutex_unlock(&wk->r->mu);
	f = calloc(n, sizeof(*f));
	for (i = 0; i < n; i++) {
		struct work *x = &w[i];

		defang(x->error);
		defang(x->reply);
		defang(x->mta);
		/* RFC 5321 4.5.4.1: give up after the maximum age, in real
		 * time: a step of the wall clock while queued does not count. */
		if (x->out == OUT_TEMP && now - x->q.created - x->stepped >= cfg->max_queue_age) {
			strfmt(err, sizeof(err), "gave up after %lld s in the queue (max_queue_age);"
			    " last error: %s", (long long)(now - x->q.created - x->stepped), x->error);
			snprintf(x->error, sizeof(x->error), "%s", err);
			snprintf(x->esc, sizeof(x->esc), ESC_EXPIRED);
			x->remote = false;
			x->out = OUT_PERM;
		}
		switch (x->out) {
		case OUT_PENDING:
			break;
		case OUT_SENT:
			log_item(x, "sent", now);
			remove_or_hold(wk, x);
			break;
		case OUT_TEMP:
			log_item(x, "deferred", now);
			defer_or_hold(wk, x, now + retry_delay(cfg, x->q.attempts));
			break;
		case OUT_PERM:
			if (f != NULL)
				f[nf++] = x;
			break;
		}
	}
	if (nf == 0)
		goto out;
	if (!dsn_wanted(f[0]->q.sender)) {
		/* Null sender: a bounce or similar. Never bounce it (RFC 5321 6.1). */
		for (i = 0; i < nf; i++) {
			log_item(f[i], "bounced-discarded", now);
			remove_or_hold(wk, f[i]);
		}
		goto out;
	}
	if (bounce(wk, f, nf, now) == -1) {
		/* The bounce is not on disk: keep the items, try again later. */
		for (i = 0; i < nf; i++) {
			log_item(f[i], "bounce-deferred", now);
			defer_or_hold(wk, f[i], now + retry_delay(cfg, f[i]->q.attempts));
		}
		goto out;
	}
	/* The bounce is committed: an item not removed now must never be
	 * bounced again (held as sent). */
	for (i = 0; i < nf; i++) {
		log_item(f[i], "bounced", now);
		remove_or_hold(wk, f[i]);
	}
out:
	free(f);
}

/* Apply the outcomes relay_session_deliver() gave, message by message
 * (w is sorted by message). */
static void
settle_all(struct worker *wk, struct work *w, size_t n)
{
	size_t a, b;

	for (a = 0; a < n; a = b) {
		for (b = a + 1; b < n && w[b].q.message_id == w[a].q.message_id; b++)
			;
		settle(wk, w + a, b - a);
	}
}

/* ---- the run: due items -> jobs -> workers ---------------------------- */

static int
work_cmp(const void *pa, const void *pb)
{
	const struct work *a = pa, *b = pb;
	int c = strcmp(a->key, b->key);

	if (c != 0)
		return c;
	if (a->q.message_id != b->q.message_id)
		return a->q.message_id < b->q.message_id ? -1 : 1;
	c = strcmp(a->q.sender, b->q.sender);
	if (c != 0)
		return c;
	return a->q.id < b->q.id ? -1 : a->q.id > b->q.id;
}

/* True when a job for key is waiting or running (r->mu held). Its items are
 * then left for a later run: one connection per destination at a time, and
 * an item being delivered is never handed out twice. */
static bool
key_busy(struct relay *r, const char *key)
{
	for (struct job *j = r->jobs; j != NULL; j = j->next)
		if (strcmp(j->key, key) == 0)
			return true;
	return false;
}

/* Items of this runner's jobs, waiting or running (r->mu held). */
static size_t
jobs_items(const struct relay *r)
{
	size_t n = 0;

	for (const struct job *j = r->jobs; j != NULL; j = j->next)
		n += j->n;
	return n;
}

/* Claim the due items, group them by route and hand the groups to workers. */
static void
relay_run(struct relay *r)
{
	struct store_queue_item *items = NULL;
	struct work *w = NULL;
	struct job *j, **tail;
	struct mx_route rt;
	struct held *h;
	char err[256];
	size_t n = 0, nw, i, a, b, queued = 0, max;
	int64_t now;

	/*
	 * The lock is held from the listing to the hand-out: a worker settles
	 * its items in the store before it removes its job, so every item
	 * listed here is either settled already or in a job still listed
	 * (busy). Without it, a job finishing in between would have its
	 * items delivered twice.
	 */
	pthread_mutex_lock(&r->mu);
	/* A store deleted or replaced under smtpd (logged by the store): the
	 * items listed would come from a file nobody will see again, and no
	 * outcome could be written. Nothing is done until a restart. */
	if (store_file_check(r->st) != 0)
		goto out;
	clock_steps(r, r->st);
	now = (int64_t)time(NULL);
	/*
	 * Claim (store_queue_claim): no other runner on this store takes
	 * these items until the lease ends, and every claim of this runner is
	 * renewed, those of the items still in its jobs too. The items in
	 * jobs and the held ones are ours and come back (oldest first): room
	 * for them and RELAY_RUN_MAX more.
	 */
	max = RELAY_RUN_MAX + jobs_items(r) + r->nheld;
	if (store_queue_claim(r->st, now, r->claimer, now + RELAY_CLAIM_LEASE, max,
	    &items, &n) == -1) {
		/* A claim is a write: on a full disk nothing new goes out
		 * (nothing could be recorded either) until there is room. */
		if (!r->claim_failing)
			log_warnx("relay: event=claim-failed error=\"%s\" action=\"no new delivery"
			    " until the store takes writes again\"", store_errmsg(r->st));
		r->claim_failing = true;
		goto out;
	}
	if (r->claim_failing)
		log_info("relay: event=claim-ok claims work again");
	r->claim_failing = false;
	if (n == 0) {
		held_sweep(r, true);
		goto out;
	}
	if ((w = calloc(n < RELAY_RUN_MAX ? n : RELAY_RUN_MAX, sizeof(*w))) == NULL) {
		log_warnx("relay: out of memory for %zu queue items", n);
		goto out;
	}
	/* Items of a destination being delivered wait for the next run; the
	 * others are taken, at most RELAY_RUN_MAX of them (oldest first). */
	for (i = 0, nw = 0; i < n && nw < RELAY_RUN_MAX; i++) {
		if (mx_select(r->cfg, relay_rcpt_domain(items[i].rcpt), &rt, err, sizeof(err)) == 0)
			snprintf(w[nw].key, sizeof(w[nw].key), "%s", rt.key);
		else	/* unroutable: a job of its own, relay_session_deliver bounces it */
			strfmt(w[nw].key, sizeof(w[nw].key), "bad %s", items[i].rcpt);
		if (key_busy(r, w[nw].key)) {
			if ((h = held_find(r, items[i].id)) != NULL)
				h->seen = true;	/* its job is still settling */
			continue;
		}
		if (held_skip(r, &items[i], now))
			continue;
		w[nw++].q = items[i];
	}
	/* Complete when every due item of ours was looked at: all were
	 * claimed (fewer than max) and all of them seen. */
	held_sweep(r, i == n && n < max);
	n = nw;
	qsort(w, n, sizeof(*w), work_cmp);
	for (tail = &r->jobs; *tail != NULL; tail = &(*tail)->next)
		;
	for (a = 0; a < n && !r->stop; a = b) {
		for (b = a + 1; b < n && strcmp(w[b].key, w[a].key) == 0; b++)
			;
		if ((j = calloc(1, sizeof(*j))) == NULL ||
		    (j->w = malloc((b - a) * sizeof(*w))) == NULL) {
			free(j);
			log_warnx("relay: out of memory queueing %s", w[a].key);
			break;
		}
		memcpy(j->w, w + a, (b - a) * sizeof(*w));
		j->n = b - a;
		snprintf(j->key, sizeof(j->key), "%s", w[a].key);
		*tail = j;
		tail = &j->next;
		queued++;
	}
	if (queued > 0)
		pthread_cond_broadcast(&r->jobs_cv);
	free(w);
out:
	pthread_mutex_unlock(&r->mu);
	free(items);
}

static void
job_unlink(struct relay *r, struct job *j)
{
	struct job **p;

	for (p = &r->jobs; *p != NULL; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
}

/* A delivery thread: takes one waiting job at a time. */
static void *
worker_main(void *arg)
{
	struct worker *wk = arg;
	struct relay *r = wk->r;
	struct job *j;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		for (j = r->jobs; j != NULL && j->running; j = j->next)
			;
		if (r->stop)
			break;
		if (j == NULL) {
			pthread_cond_wait(&r->jobs_cv, &r->mu);
			continue;
		}
		j->running = true;
		pthread_mutex_unlock(&r->mu);
		relay_session_deliver(wk, j->w, j->n);
		settle_all(wk, j->w, j->n);
		pthread_mutex_lock(&r->mu);
		job_unlink(r, j);
		free(j->w);
		free(j);
		/* Items of this destination that were skipped can go now. */
		r->kicked = true;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* The runner: claims due items every RELAY_POLL_SECONDS or when kicked. */
static void *
relay_main(void *arg)
{
	struct relay *r = arg;
	struct timespec ts;
	char shown[PATH_MAX];

	log_debug("relay: queue runner started, store=%s workers=%d",
	    config_store_display(r->cfg->store_path, shown, sizeof(shown)), RELAY_WORKERS);
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		r->kicked = false;
		pthread_mutex_unlock(&r->mu);
		relay_run(r);
		pthread_mutex_lock(&r->mu);
		if (r->stop || r->kicked)
			continue;
		monotime_deadline(&ts, RELAY_POLL_SECONDS * 1000L);
		while (!r->stop && !r->kicked &&
		    pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&r->mu);
	log_debug("relay: queue runner stopped");
	return NULL;
}

/* ---- public ------------------------------------------------------------ */

/* Stop and free everything relay_start made (threads already joined). */
static void
relay_free(struct relay *r)
{
	struct job *j;
	size_t i;

	while ((j = r->jobs) != NULL) {	/* jobs never started: items stay queued */
		r->jobs = j->next;
		free(j->w);
		free(j);
	}
	for (i = 0; i < RELAY_WORKERS; i++)
		store_close(&r->workers[i].st);
	pthread_cond_destroy(&r->jobs_cv);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	SSL_CTX_free(r->tls_any);
	SSL_CTX_free(r->tls_verify);
	store_close(&r->st);
	free(r->held);
	free(r);
}

/* Ask every thread to stop; join them, cutting deliveries that take longer
 * than RELAY_STOP_GRACE seconds. */
static void
relay_join(struct relay *r)
{
	struct timespec ts;
	size_t i;

	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_cond_broadcast(&r->jobs_cv);
	pthread_mutex_unlock(&r->mu);
	monotime_deadline(&ts, RELAY_STOP_GRACE * 1000L);
	for (i = 0; i < RELAY_WORKERS; i++) {
		struct worker *wk = &r->workers[i];

		if (!wk->started)
			continue;
		if (pthread_clockjoin_np(wk->thread, NULL, CLOCK_MONOTONIC, &ts) != 0) {
			/* Cut the delivery in progress; its items stay queued. */
			pthread_mutex_lock(&r->mu);
			if (wk->conn_fd >= 0)
				shutdown(wk->conn_fd, SHUT_RDWR);
			pthread_mutex_unlock(&r->mu);
			pthread_join(wk->thread, NULL);
		}
		wk->started = false;
	}
	if (r->thread != 0)
		pthread_join(r->thread, NULL);
}

int
relay_start(struct relay **relay_r, struct event_base *base, const struct config *cfg,
    char *err, size_t errlen)
{
	struct relay *r;
	char terr[256];
	size_t i;
	bool verify;

	(void)base;	/* the runner never touches smtpd's event loop */
	*relay_r = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->cfg = cfg;
	pthread_mutex_init(&r->mu, NULL);
	monotime_cond_init(&r->cv);	/* the poll wait is a duration */
	pthread_cond_init(&r->jobs_cv, NULL);
	if (store_open(&r->st, cfg->store_path, err, errlen) == -1)
		goto fail;
	store_lock_owner(r->claimer, sizeof(r->claimer), "relay");
	for (i = 0; i < RELAY_WORKERS; i++) {
		r->workers[i].r = r;
		r->workers[i].conn_fd = -1;
		if (store_open(&r->workers[i].st, cfg->store_path, err, errlen) == -1)
			goto fail;
	}
	if ((r->tls_any = tls_client_ctx(NULL, true, terr, sizeof(terr))) == NULL)
		log_warnx("relay: no TLS client context, STARTTLS disabled: %s", terr);
	verify = cfg->smarthost.host[0] != '\0' && cfg->smarthost_starttls;
	if (verify && (r->tls_verify = tls_client_ctx(NULL, false, terr, sizeof(terr))) == NULL)
		log_warnx("relay: no verifying TLS context for the smarthost: %s", terr);
	/* Loop protection: say at once when a route points back at us. */
	for (i = 0; i < cfg->nroutes; i++)
		if (mx_is_self(cfg, cfg->routes[i].host, cfg->routes[i].port))
			log_warnx("relay: route for %s -> %s:%s points back at this server;"
			    " mail for it will bounce (5.4.6)", cfg->routes[i].domain,
			    cfg->routes[i].host, cfg->routes[i].port);
	if (cfg->smarthost.host[0] != '\0' &&
	    mx_is_self(cfg, cfg->smarthost.host, cfg->smarthost.port))
		log_warnx("relay: smarthost %s:%s points back at this server;"
		    " remote mail will bounce (5.4.6)", cfg->smarthost.host, cfg->smarthost.port);
	for (i = 0; i < RELAY_WORKERS; i++) {
		if ((errno = pthread_create(&r->workers[i].thread, NULL, worker_main,
		    &r->workers[i])) != 0) {
			snprintf(err, errlen, "cannot start a relay worker: %s", strerror(errno));
			goto fail_join;
		}
		r->workers[i].started = true;
	}
	if ((errno = pthread_create(&r->thread, NULL, relay_main, r)) != 0) {
		snprintf(err, errlen, "cannot start the queue runner: %s", strerror(errno));
		r->thread = 0;
		goto fail_join;
	}
	pthread_mutex_lock(&relay_global_mu);
	relay_global = r;
	pthread_mutex_unlock(&relay_global_mu);
	log_info("relay: queue runner on, routes=%zu smarthost=%s retry=%lds.. max_queue_age=%lds",
	    cfg->nroutes, cfg->smarthost.host[0] ? cfg->smarthost.host : "none",
	    cfg->nretry > 0 ? cfg->retry_schedule[0] : 0L, cfg->max_queue_age);
	*relay_r = r;
	return 0;
fail_join:
	relay_join(r);
fail:
	relay_free(r);
	return -1;
}

void
relay_kick(void)
{
	pthread_mutex_lock(&relay_global_mu);
	if (relay_global != NULL) {
		pthread_mutex_lock(&relay_global->mu);
		relay_global->kicked = true;
		pthread_cond_signal(&relay_global->cv);
		pthread_mutex_unlock(&relay_global->mu);
	}
	pthread_mutex_unlock(&relay_global_mu);
}

void
relay_stop(struct relay **rp)
{
	struct relay *r = *rp;

	if (r == NULL)
		return;
	pthread_mutex_lock(&relay_global_mu);
	if (relay_global == r)
		relay_global = NULL;
	pthread_mutex_unlock(&relay_global_mu);
	relay_join(r);
	/* Items claimed but not settled (cut, or never started) are due for
	 * any runner at once, not after the lease. */
	if (store_queue_release(r->st, r->claimer) == -1)
		log_warnx("relay: releasing the queue claims of %s: %s (free at the end of"
		    " their lease, %d s)", r->claimer, store_errmsg(r->st), RELAY_CLAIM_LEASE);
	relay_free(r);
	*rp = NULL;
}
