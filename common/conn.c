/*
 * conn.c - the wrappers of the connection interface (conn.h): each call
 * goes to the implementation behind the connection (net.c for sockets,
 * tests/unit/fake_conn.c in tests). Owns the peer's text form.
 * Never: knows which implementation it is talking to.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"

void
conn_format_addr(const struct sockaddr *sa, char *dst, size_t len)
{
	const void *src = NULL;
	int family = sa != NULL ? sa->sa_family : AF_UNSPEC;

	if (family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		src = &s6->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			/* show IPv4-mapped peers as plain IPv4 */
			family = AF_INET;
			src = &s6->sin6_addr.s6_addr[12];
		}
	} else if (family == AF_INET)
		src = &((const struct sockaddr_in *)sa)->sin_addr;
	if (src == NULL || inet_ntop(family, src, dst, (socklen_t)len) == NULL)
		snprintf(dst, len, "?");
}

void
conn_init(struct conn *c, const struct conn_ops *ops, enum listen_role role,
    const struct sockaddr *peer, size_t peerlen)
{
	c->ops = ops;
	c->role = role;
	c->tls = false;
	memset(&c->peer, 0, sizeof(c->peer));
	if (peer != NULL)
		memcpy(&c->peer, peer, peerlen < sizeof(c->peer) ? peerlen : sizeof(c->peer));
	conn_format_addr(peer, c->peer_str, sizeof(c->peer_str));
}

struct evbuffer *
conn_input(struct conn *c)
{
	return c->ops->input(c);
}

struct evbuffer *
conn_output(struct conn *c)
{
	return c->ops->output(c);
}

const struct sockaddr *
conn_peer(const struct conn *c)
{
	return (const struct sockaddr *)&c->peer;
}

const char *
conn_peer_str(const struct conn *c)
{
	return c->peer_str;
}

const char *
conn_tls_info(struct conn *c)
{
	return c->ops->tls_info(c);
}

void
conn_pause_read(struct conn *c, bool pause)
{
	c->ops->pause_read(c, pause);
}

void
conn_set_watermark(struct conn *c, size_t high)
{
	c->ops->set_watermark(c, high);
}

void
conn_set_timeout(struct conn *c, long seconds)
{
	c->ops->set_timeout(c, seconds);
}

void
conn_close(struct conn *c, bool flush)
{
	c->ops->close(c, flush);
}

int
conn_starttls(struct conn *c)
{
	return c->ops->starttls(c);
}

struct conn_timer *
conn_timer_new(struct conn *c, void (*fn)(void *), void *arg)
{
	return c->ops->timer_new(c, fn, arg);
}

void
conn_timer_set(struct conn_timer *t, long msec)
{
	t->ops->timer_set(t, msec);
}

void
conn_timer_stop(struct conn_timer *t)
{
	t->ops->timer_stop(t);
}

void
conn_timer_free(struct conn_timer **tp)
{
	if (*tp == NULL)
		return;
	(*tp)->ops->timer_free(*tp);
	*tp = NULL;
}
