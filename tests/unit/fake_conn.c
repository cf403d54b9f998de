/*
 * fake_conn.c - the connection interface of conn.h over two evbuffers and
 * a virtual clock (fake_conn.h), for unit tests and fuzz targets. Like
 * net.c it drops unread input at STARTTLS and never calls back into the
 * session from inside a call the session made.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "fake_conn.h"

struct fake_timer {
	struct conn_timer	 base;		/* first */
	struct fake_conn	*f;
	struct fake_timer	*next;
	void			(*fn)(void *);
	void			*arg;
	long			 due;		/* virtual ms; -1: not armed */
};

static struct fake_conn *
fc(struct conn *c)
{
	return (struct fake_conn *)c;
}

static struct evbuffer *f_input(struct conn *c) { return fc(c)->in; }
static struct evbuffer *f_output(struct conn *c) { return fc(c)->out; }
static void f_pause(struct conn *c, bool pause) { fc(c)->paused = pause; }
static void f_watermark(struct conn *c, size_t high) { fc(c)->watermark = high; }
static void f_timeout(struct conn *c, long seconds) { fc(c)->timeout = seconds; }

static void
f_close(struct conn *c, bool flush)
{
	fc(c)->closes++;
	fc(c)->close_flush = flush;
}

static int
f_starttls(struct conn *c)
{
	struct fake_conn *f = fc(c);

	f->starttls_calls++;
	if (f->starttls_result == -1 || f->closes > 0)
		return -1;
	/* RFC 3207 5 / RFC 2595 4, as net.c does */
	evbuffer_drain(f->in, evbuffer_get_length(f->in));
	f->tls_req = true;
	return 0;
}

static const char *
f_tls_info(struct conn *c)
{
	return c->tls && fc(c)->tls_info != NULL ? fc(c)->tls_info : "";
}

static const struct conn_ops fake_ops;

static struct conn_timer *
f_timer_new(struct conn *c, void (*fn)(void *), void *arg)
{
	struct fake_timer *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->base.ops = &fake_ops;
	t->f = fc(c);
	t->fn = fn;
	t->arg = arg;
	t->due = -1;
	t->next = t->f->timers;
	t->f->timers = t;
	return &t->base;
}

static void
f_timer_set(struct conn_timer *ct, long msec)
{
	struct fake_timer *t = (struct fake_timer *)ct;

	t->due = t->f->now_ms + msec;
}

static void
f_timer_stop(struct conn_timer *ct)
{
	((struct fake_timer *)ct)->due = -1;
}

static void
f_timer_free(struct conn_timer *ct)
{
	struct fake_timer *t = (struct fake_timer *)ct, **pp;

	for (pp = &t->f->timers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	free(t);
}

static const struct conn_ops fake_ops = {
	.input = f_input,
	.output = f_output,
	.pause_read = f_pause,
	.set_watermark = f_watermark,
	.set_timeout = f_timeout,
	.close = f_close,
	.starttls = f_starttls,
	.tls_info = f_tls_info,
	.timer_new = f_timer_new,
	.timer_set = f_timer_set,
	.timer_stop = f_timer_stop,
	.timer_free = f_timer_free,
};

void
fake_conn_init(struct fake_conn *f, enum listen_role role, const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	size_t len = 0;

	memset(f, 0, sizeof(*f));
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		len = sizeof(*sin6);
	}
	conn_init(&f->conn, &fake_ops, role, len > 0 ? (struct sockaddr *)&ss : NULL, len);
	f->in = evbuffer_new();
	f->out = evbuffer_new();
	f->tls_info = "TLSv1.3:FAKE";
}

void
fake_conn_free(struct fake_conn *f)
{
	evbuffer_free(f->in);
	evbuffer_free(f->out);
	f->in = f->out = NULL;
}

static struct fake_timer *
earliest(const struct fake_conn *f)
{
	struct fake_timer *t, *best = NULL;

	for (t = f->timers; t != NULL; t = t->next)
		if (t->due >= 0 && (best == NULL || t->due < best->due))
			best = t;
	return best;
}

long
fake_conn_next_timer(const struct fake_conn *f)
{
	struct fake_timer *t = earliest(f);

	if (t == NULL)
		return -1;
	return t->due > f->now_ms ? t->due - f->now_ms : 0;
}

bool
fake_conn_fire_next(struct fake_conn *f)
{
	struct fake_timer *t = earliest(f);

	if (t == NULL)
		return false;
	if (t->due > f->now_ms)
		f->now_ms = t->due;
	t->due = -1;
	t->fn(t->arg);		/* may free t */
	return true;
}

void
fake_conn_advance(struct fake_conn *f, long ms)
{
	long until = f->now_ms + ms;
	struct fake_timer *t;

	while ((t = earliest(f)) != NULL && t->due <= until)
		fake_conn_fire_next(f);
	f->now_ms = until;
}
