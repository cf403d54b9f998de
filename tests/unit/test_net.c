/*
 * test_net.c - common/net.c against real loopback sockets: greeting, echo,
 * close after flush, the connection limits and their busy reply, deferred
 * close from inside a callback, back-pressure for a client that never reads,
 * and net_run_in_loop from another thread.
 *
 * The event loop runs in the test's thread; each client runs in a second
 * thread with blocking sockets and a receive timeout, and stops the loop
 * through net_run_in_loop when it is done.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "net.h"

struct echo_session {
	struct conn	*conn;
	struct event	*unpause;
	struct event	*unhold;
	bool		 hold;		/* leave input unread (not paused) */
};

static void echo_read(void *session);

struct fixture {
	struct event_base	*base;
	struct net_server	*srv;
	struct limits		 lim;
	int			 port;
	int			 accepted;
	int			 closed;
	size_t			 max_output;	/* largest output buffer seen */
	size_t			 max_paused_input;	/* largest input at the end of a pause */
	size_t			 max_held_input;	/* largest input while holding */
	void			(*client)(struct fixture *);
	bool			 client_ok;
};

static struct fixture *current;

static void
unpause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct echo_session *s = arg;
	size_t n = evbuffer_get_length(conn_input(s->conn));

	(void)fd;
	(void)what;
	if (n > current->max_paused_input)
		current->max_paused_input = n;
	conn_pause_read(s->conn, false);
}

/* The session takes its input again, on its own (not from a read callback). */
static void
unhold_cb(evutil_socket_t fd, short what, void *arg)
{
	struct echo_session *s = arg;

	(void)fd;
	(void)what;
	s->hold = false;
	echo_read(s);
}

static void *
echo_accept(struct conn *c, void *arg)
{
	struct fixture *f = arg;
	struct echo_session *s = calloc(1, sizeof(*s));

	s->conn = c;
	f->accepted++;
	evbuffer_add_printf(conn_output(c), "hello\r\n");
	return s;
}

static void
echo_read(void *session)
{
	struct echo_session *s = session;
	struct evbuffer *in = conn_input(s->conn);
	struct evbuffer *out = conn_output(s->conn);
	char *line;
	size_t len;

	if (s->hold) {
		if (evbuffer_get_length(in) > current->max_held_input)
			current->max_held_input = evbuffer_get_length(in);
		return;
	}
	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		if (strcmp(line, "QUIT") == 0) {
			evbuffer_add_printf(out, "bye\r\n");
			conn_close(s->conn, true);
			free(line);
			return;
		}
		if (strcmp(line, "PAUSE") == 0) {
			/* Like a session waiting for its commit: stop reading
			 * for a while, with more lines already buffered. */
			struct timeval tv = { .tv_sec = 0, .tv_usec = 200 * 1000 };

			evbuffer_add_printf(out, "paused\r\n");
			conn_pause_read(s->conn, true);
			if (s->unpause == NULL)
				s->unpause = evtimer_new(current->base, unpause_cb, s);
			evtimer_add(s->unpause, &tv);
			free(line);
			return;
		}
		if (strcmp(line, "HOLD") == 0) {
			/* Leave the input unread for a while without pausing,
			 * then take it from a timer. */
			struct timeval tv = { .tv_sec = 0, .tv_usec = 200 * 1000 };

			evbuffer_add_printf(out, "holding\r\n");
			s->hold = true;
			if (s->unhold == NULL)
				s->unhold = evtimer_new(current->base, unhold_cb, s);
			evtimer_add(s->unhold, &tv);
			free(line);
			return;
		}
		if (strcmp(line, "DROP") == 0) {
			/* Closing from inside our own callback must be safe. */
			conn_close(s->conn, false);
			free(line);
			return;
		}
		evbuffer_add_printf(out, "echo %s\r\n", line);
		free(line);
		if (evbuffer_get_length(out) > current->max_output)
			current->max_output = evbuffer_get_length(out);
	}
}

static void
echo_closed(void *session, enum conn_close_reason why)
{
	struct echo_session *s = session;

	(void)why;
	current->closed++;
	if (s->unpause != NULL)
		event_free(s->unpause);
	if (s->unhold != NULL)
		event_free(s->unhold);
	free(s);
}

static const struct conn_handler echo_cb = {
	.accept = echo_accept,
	.read = echo_read,
	.closed = echo_closed,
	.busy_reply = "421 busy\r\n",
};

static void
stop_loop(void *arg)
{
	event_base_loopbreak(arg);
}

static void *
client_thread(void *arg)
{
	struct fixture *f = arg;

	f->client(f);
	/* Give the loop a moment to run the deferred closes, then stop it. */
	usleep(100 * 1000);
	net_run_in_loop(f->base, stop_loop, f->base);
	return NULL;
}

static int
connect_client(int port)
{
	struct sockaddr_in sin;
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read until `want` appears or the peer closes; returns bytes read. */
static size_t
read_until(int fd, char *buf, size_t cap, const char *want)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < cap) {
		r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (want != NULL && strstr(buf, want) != NULL)
			break;
	}
	buf[n] = '\0';
	return n;
}

static bool
peer_closed(int fd)
{
	char c;

	return recv(fd, &c, 1, 0) == 0;
}

static void
run(struct fixture *f, void (*client)(struct fixture *))
{
	struct listen_spec ls = { .host = "127.0.0.1", .port = "0", .role = ROLE_INBOUND };
	char err[256];
	pthread_t t;

	current = f;
	f->base = net_base_new();
	assert_non_null(f->base);
	f->srv = net_server_new(f->base, &f->lim, &echo_cb, f, NULL);
	assert_non_null(f->srv);
	assert_int_equal(net_server_listen(f->srv, &ls, err, sizeof(err)), 0);
	f->port = net_server_port(f->srv, 0);
	assert_true(f->port > 0);
	f->client = client;
	pthread_create(&t, NULL, client_thread, f);
	event_base_dispatch(f->base);
	pthread_join(t, NULL);
	/* Let any last deferred close run. */
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_true(f->client_ok);
	assert_int_equal(f->accepted, f->closed);
	assert_int_equal(net_server_nconns(f->srv), 0);
	net_server_free(&f->srv);
	assert_null(f->srv);
	net_base_free(f->base);
}

static void
default_limits(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->lim.max_connections = 100;
	f->lim.max_connections_per_addr = 100;
}

static void
client_echo(struct fixture *f)
{
	char buf[256];
	int fd = connect_client(f->port);

	f->client_ok = fd >= 0;
	if (fd < 0)
		return;
	read_until(fd, buf, sizeof(buf), "hello\r\n");
	f->client_ok &= strcmp(buf, "hello\r\n") == 0;
	/* Two lines in one write, the second split across writes. */
	send(fd, "one\r\ntw", 7, 0);
	usleep(20 * 1000);
	send(fd, "o\r\nQUIT\r\n", 9, 0);
	read_until(fd, buf, sizeof(buf), "bye\r\n");
	f->client_ok &= strcmp(buf, "echo one\r\necho two\r\nbye\r\n") == 0;
	f->client_ok &= peer_closed(fd);
	close(fd);
}

static void
test_echo_and_close_after_flush(void **state)
{
	struct fixture f;

	(void)state;
	default_limits(&f);
	run(&f, client_echo);
	assert_int_equal(f.accepted, 1);
}

static void
client_drop(struct fixture *f)
{
	char buf[64];
	int fd = connect_client(f->port);

	f->client_ok = fd >= 0;
	if (fd < 0)
		return;
	read_until(fd, buf, sizeof(buf), "hello\r\n");
	send(fd, "DROP\r\n", 6, 0);
	f->client_ok &= peer_closed(fd);
	close(fd);
}

static void
test_close_inside_callback(void **state)
{
	struct fixture f;

	(void)state;
	default_limits(&f);
	run(&f, client_drop);
}

static void
client_half_close(struct fixture *f)
{
	char buf[256];
	int fd = connect_client(f->port);

	f->client_ok = fd >= 0;
	if (fd < 0)
		return;
	read_until(fd, buf, sizeof(buf), "hello\r\n");
	/* Pipelined lines, then a half-close while the session is paused:
	 * every line is still answered before the server closes. */
	send(fd, "PAUSE\r\nafter\r\n", 14, 0);
	shutdown(fd, SHUT_WR);
	read_until(fd, buf, sizeof(buf), NULL);
	f->client_ok &= strcmp(buf, "paused\r\necho after\r\n") == 0;
	close(fd);
}

/* A client that floods while the session is paused: the server stops
 * reading at the first input (a pause is lazy: nothing is done until input
 * comes), so it holds one read's worth (libevent reads at most 16 KiB at a
 * time), not the 64 KiB the read watermark would let in; every line is
 * answered after the pause. */
static void
client_flood_after(struct fixture *f, const char *cmd, const char *reply)
{
	static char flood[256 * 1024];
	char buf[256];
	size_t sent = 0, got = 0, i;
	int fd = connect_client(f->port);
	char tail[8] = "";

	f->client_ok = fd >= 0;
	if (fd < 0)
		return;
	read_until(fd, buf, sizeof(buf), "hello\r\n");
	send(fd, cmd, strlen(cmd), 0);
	read_until(fd, buf, sizeof(buf), reply);
	for (i = 0; i + 3 <= sizeof(flood); i += 3)
		memcpy(flood + i, "x\r\n", 3);
	while (sent < i) {
		ssize_t r = send(fd, flood + sent, i - sent, 0);

		if (r <= 0)
			break;
		sent += (size_t)r;
	}
	send(fd, "QUIT\r\n", 6, 0);
	for (;;) {	/* "echo x" for each line, then "bye" */
		ssize_t r = recv(fd, buf, sizeof(buf), 0), k;

		if (r <= 0)
			break;
		got += (size_t)r;
		for (k = 0; k < r; k++) {	/* the last 5 octets */
			memmove(tail, tail + 1, 4);
			tail[4] = buf[k];
		}
	}
	f->client_ok &= sent == i && got == (i / 3) * 8 + 5 && memcmp(tail, "bye\r\n", 5) == 0;
	close(fd);
}

static void
client_flood_while_paused(struct fixture *f)
{
	client_flood_after(f, "PAUSE\r\n", "paused\r\n");
}

static void
test_flood_while_paused(void **state)
{
	struct fixture f;

	(void)state;
	default_limits(&f);
	run(&f, client_flood_while_paused);
	assert_true(f.max_paused_input > 0);		/* it did come during the pause */
	assert_true(f.max_paused_input <= 16 * 1024);
}

/* A session that leaves its input unread (without pausing) while a client
 * floods: no more than the 64 KiB read watermark is read meanwhile, and
 * reading goes on once the session takes its input from elsewhere than a
 * read callback (a timer here): every line is answered. */
static void
client_flood_while_held(struct fixture *f)
{
	client_flood_after(f, "HOLD\r\n", "holding\r\n");
}

static void
test_flood_while_held(void **state)
{
	struct fixture f;

	(void)state;
	default_limits(&f);
	run(&f, client_flood_while_held);
	assert_true(f.max_held_input > 16 * 1024);	/* it did come, more than one read */
	assert_true(f.max_held_input <= 64 * 1024);
}

static void
test_half_close_answers_buffered_lines(void **state)
{
	struct fixture f;

	(void)state;
	default_limits(&f);
	run(&f, client_half_close);
}

static void
client_per_addr(struct fixture *f)
{
	char buf[64];
	int a = connect_client(f->port), b = connect_client(f->port), c;

	f->client_ok = a >= 0 && b >= 0;
	read_until(a, buf, sizeof(buf), "hello\r\n");
	read_until(b, buf, sizeof(buf), "hello\r\n");
	/* The third from the same address gets the busy reply and EOF. */
	c = connect_client(f->port);
	read_until(c, buf, sizeof(buf), NULL);
	f->client_ok &= strcmp(buf, "421 busy\r\n") == 0;
	close(c);
	/* Once one closes, a new connection is accepted again. */
	close(a);
	usleep(100 * 1000);
	c = connect_client(f->port);
	read_until(c, buf, sizeof(buf), "hello\r\n");
	f->client_ok &= strcmp(buf, "hello\r\n") == 0;
	close(b);
	close(c);
}

static void
test_limit_per_address(void **state)
{
	struct fixture f;

	(void)state;
	default_limits(&f);
	f.lim.max_connections_per_addr = 2;
	run(&f, client_per_addr);
	assert_int_equal(f.accepted, 3);
}

static void
client_total(struct fixture *f)
{
	char buf[64];
	int fds[3], extra, i;

	f->client_ok = true;
	for (i = 0; i < 3; i++) {
		fds[i] = connect_client(f->port);
		read_until(fds[i], buf, sizeof(buf), "hello\r\n");
		f->client_ok &= strcmp(buf, "hello\r\n") == 0;
	}
	extra = connect_client(f->port);
	read_until(extra, buf, sizeof(buf), NULL);
	f->client_ok &= strcmp(buf, "421 busy\r\n") == 0;
	close(extra);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

static void
test_limit_total(void **state)
{
	struct fixture f;

	(void)state;
	default_limits(&f);
	f.lim.max_connections = 3;
	run(&f, client_total);
	assert_int_equal(f.accepted, 3);
}

static void
client_flood(struct fixture *f)
{
	static char chunk[64 * 1024];
	size_t sent = 0, i;
	int fd = connect_client(f->port);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200 * 1000 };
	ssize_t r;

	f->client_ok = fd >= 0;
	if (fd < 0)
		return;
	for (i = 0; i + 2 < sizeof(chunk); i += 8)
		memcpy(chunk + i, "flood\r\n\0", 8 > sizeof(chunk) - i ? sizeof(chunk) - i : 7);
	/* Send 16 MB of commands without reading a single reply. The server
	 * must stop reading once its output is full instead of buffering. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (sent < 16u * 1024 * 1024) {
		r = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
		if (r <= 0)
			break;	/* the server stopped reading: our send blocks */
		sent += (size_t)r;
	}
	f->client_ok &= sent < 16u * 1024 * 1024;
	close(fd);
}

static void
test_backpressure_bounds_output(void **state)
{
	struct fixture f;

	(void)state;
	default_limits(&f);
	run(&f, client_flood);
	/* Output never grew far past the 256 KB high watermark plus one input
	 * buffer's worth of replies (64 KB of input). */
	assert_true(f.max_output < 256 * 1024 + 128 * 1024);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_and_close_after_flush),
		cmocka_unit_test(test_close_inside_callback),
		cmocka_unit_test(test_half_close_answers_buffered_lines),
		cmocka_unit_test(test_flood_while_paused),
		cmocka_unit_test(test_flood_while_held),
		cmocka_unit_test(test_limit_per_address),
		cmocka_unit_test(test_limit_total),
		cmocka_unit_test(test_backpressure_bounds_output),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
