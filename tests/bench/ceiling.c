/*
 * ceiling.c - the practical ceiling for durable SMTP on this machine: a
 * minimal SMTP server that does nothing but receive and commit.
 *
 *   ceiling -p PORT -d STORE.db
 *
 * One process: an epoll loop on 127.0.0.1:PORT that answers EHLO/HELO, MAIL,
 * RCPT, DATA, RSET, NOOP and QUIT with fixed replies (no checks of any kind,
 * no logging, no transcripts), collects each body in memory (un-stuffed, CRLF
 * lines), and hands finished messages to one writer thread. The writer takes
 * every message waiting and writes them in one transaction of an SQLite
 * database in WAL mode with synchronous=FULL (group commit: one fsync for
 * the batch): a row in messages and one row per recipient in mailbox, the
 * same rows correio writes. The 250 is sent only after the commit. Whatever
 * correio does beyond this is the distance to the ceiling
 * (docs/PERFORMANCE.md). Runs until SIGINT or SIGTERM. A benchmark, never
 * part of the test command; loopback only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define IN_MAX		65536	/* input buffer per connection */
#define OUT_MAX		4096	/* pending replies per connection */
#define EVENTS		256

enum cstate { C_CMD, C_DATA, C_COMMIT };

struct cn {
	int		 fd;
	enum cstate	 state;
	char		 in[IN_MAX];
	size_t		 inlen;
	char		 out[OUT_MAX];
	size_t		 outlen;
	char		*body;
	size_t		 blen, bcap;
	int		 nrcpt;
	int64_t		 id;		/* message id after commit */
	struct cn	*next;		/* writer queue / done list */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct cn *todo, *done;
static int efd, ep;
static volatile sig_atomic_t stopping;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
sql_or_die(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "ceiling: %s: %s\n", sql, err);
		exit(1);
	}
}

static void *
writer_main(void *arg)
{
	sqlite3 *db = arg;
	sqlite3_stmt *ins_msg, *ins_ent, *begin, *commit;
	struct cn *list, *c, *last;
	uint64_t one = 1;
	int i;

	if (sqlite3_prepare_v2(db, "INSERT INTO messages(body, size, created) VALUES (?, ?, ?)", -1,
	    &ins_msg, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO mailbox(message, rcpt) VALUES (?, ?)", -1, &ins_ent,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK) {
		fprintf(stderr, "ceiling: prepare: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	for (;;) {
		pthread_mutex_lock(&lock);
		while (todo == NULL)
			pthread_cond_wait(&cond, &lock);
		list = todo;
		todo = NULL;
		pthread_mutex_unlock(&lock);

		if (sqlite3_step(begin) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(begin);
		for (c = list; c != NULL; c = c->next) {
			if (c->blen == 0)
				sqlite3_bind_zeroblob(ins_msg, 1, 0);
			else
				sqlite3_bind_blob(ins_msg, 1, c->body, (int)c->blen, SQLITE_STATIC);
			sqlite3_bind_int64(ins_msg, 2, (int64_t)c->blen);
			sqlite3_bind_int64(ins_msg, 3, (int64_t)time(NULL));
			if (sqlite3_step(ins_msg) != SQLITE_DONE)
				goto fail;
			sqlite3_reset(ins_msg);
			c->id = sqlite3_last_insert_rowid(db);
			for (i = 0; i < c->nrcpt; i++) {
				sqlite3_bind_int64(ins_ent, 1, c->id);
				sqlite3_bind_int(ins_ent, 2, i);
				if (sqlite3_step(ins_ent) != SQLITE_DONE)
					goto fail;
				sqlite3_reset(ins_ent);
			}
		}
		if (sqlite3_step(commit) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(commit);

		for (last = list; last->next != NULL; last = last->next)
			;
		pthread_mutex_lock(&lock);
		last->next = done;
		done = list;
		pthread_mutex_unlock(&lock);
		if (write(efd, &one, sizeof(one)) != sizeof(one))
			die("eventfd write");
	}
fail:
	fprintf(stderr, "ceiling: commit: %s\n", sqlite3_errmsg(db));
	exit(1);
}

/* Read from c (or not, while its message is being committed). */
static void
want_input(struct cn *c, int yes)
{
	struct epoll_event ev;

	ev.events = yes ? EPOLLIN : 0;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
conn_close(struct cn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->body);
	free(c);
}

/* Queue a reply; write what the socket takes now. -1: the connection is gone. */
static int
reply(struct cn *c, const char *s)
{
	size_t n = strlen(s);
	ssize_t w;

	if (c->outlen + n > OUT_MAX)
		return -1;
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
	while (c->outlen > 0) {
		if ((w = write(c->fd, c->out, c->outlen)) == -1) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		memmove(c->out, c->out + w, c->outlen - (size_t)w);
		c->outlen -= (size_t)w;
	}
	return 0;
}

static int
body_add(struct cn *c, const char *p, size_t n)
{
	char *nb;
	size_t ncap;

	if (c->blen + n > c->bcap) {
		ncap = c->bcap ? c->bcap : 16384;
		while (ncap < c->blen + n)
			ncap *= 2;
		if ((nb = realloc(c->body, ncap)) == NULL)
			return -1;
		c->body = nb;
		c->bcap = ncap;
	}
	memcpy(c->body + c->blen, p, n);
	c->blen += n;
	return 0;
}

/* Take every complete line while not committing. -1: close the connection. */
static int
process(struct cn *c)
{
	char *p, *eol;
	size_t len, used = 0;
	int rc = 0;

	while (c->state != C_COMMIT && rc == 0) {
		p = c->in + used;
		if ((eol = memchr(p, '\n', c->inlen - used)) == NULL)
			break;
		len = (size_t)(eol - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		used = (size_t)(eol - c->in) + 1;
		if (c->state == C_DATA) {
			if (len == 1 && p[0] == '.') {
				c->state = C_COMMIT;
				want_input(c, 0);
				pthread_mutex_lock(&lock);
				c->next = todo;
				todo = c;
				pthread_cond_signal(&cond);
				pthread_mutex_unlock(&lock);
				break;
			}
			if (len > 0 && p[0] == '.') {
				p++;
				len--;
			}
			if (body_add(c, p, len) == -1 || body_add(c, "\r\n", 2) == -1)
				rc = -1;
			continue;
		}
		if (len >= 4 && (strncasecmp(p, "EHLO", 4) == 0 || strncasecmp(p, "HELO", 4) == 0))
			rc = reply(c, "250-ceiling\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1073741824\r\n");
		else if (len >= 4 && strncasecmp(p, "MAIL", 4) == 0) {
			c->nrcpt = 0;
			c->blen = 0;
			rc = reply(c, "250 2.1.0 Ok\r\n");
		} else if (len >= 4 && strncasecmp(p, "RCPT", 4) == 0) {
			c->nrcpt++;
			rc = reply(c, "250 2.1.5 Ok\r\n");
		} else if (len >= 4 && strncasecmp(p, "DATA", 4) == 0) {
			c->state = C_DATA;
			rc = reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
		} else if (len >= 4 && (strncasecmp(p, "RSET", 4) == 0 || strncasecmp(p, "NOOP", 4) == 0))
			rc = reply(c, "250 2.0.0 Ok\r\n");
		else if (len >= 4 && strncasecmp(p, "QUIT", 4) == 0) {
			(void)reply(c, "221 2.0.0 Bye\r\n");
			rc = -1;
		} else
			rc = reply(c, "500 5.5.2 What?\r\n");
	}
	memmove(c->in, c->in + used, c->inlen - used);
	c->inlen -= used;
	if (c->state != C_COMMIT && c->inlen == IN_MAX)
		return -1;	/* a line longer than the buffer */
	return rc;
}

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct epoll_event ev, evs[EVENTS];
	struct cn *c, *list, *next;
	const char *db_path = NULL;
	sqlite3 *db;
	pthread_t th;
	int lfd, opt, one = 1, port = 0, i, n;
	uint64_t cnt;
	ssize_t r;
	char ok[64];

	while ((opt = getopt(argc, argv, "p:d:")) != -1) {
		if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'd')
			db_path = optarg;
		else
			return 2;
	}
	if (port <= 0 || db_path == NULL) {
		fprintf(stderr, "usage: ceiling -p PORT -d STORE.db\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);

	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		die("sqlite3_open");
	sql_or_die(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	    "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	    " body BLOB NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL);"
	    "CREATE TABLE IF NOT EXISTS mailbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	    " message INTEGER NOT NULL REFERENCES messages(id), rcpt INTEGER NOT NULL);");
	if ((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		die("eventfd");
	if (pthread_create(&th, NULL, writer_main, db) != 0)
		die("pthread_create");

	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(lfd, 1024) == -1)
		die("bind/listen");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &efd;
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);

	while (!stopping) {
		if ((n = epoll_wait(ep, evs, EVENTS, 500)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {	/* new connections */
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					if ((c = calloc(1, sizeof(*c))) == NULL) {
						close(fd);
						continue;
					}
					c->fd = fd;
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
					if (reply(c, "220 ceiling ESMTP\r\n") == -1)
						conn_close(c);
				}
				continue;
			}
			if (evs[i].data.ptr == &efd) {	/* commits done */
				if (read(efd, &cnt, sizeof(cnt)) != sizeof(cnt))
					continue;
				pthread_mutex_lock(&lock);
				list = done;
				done = NULL;
				pthread_mutex_unlock(&lock);
				for (c = list; c != NULL; c = next) {
					next = c->next;
					c->state = C_CMD;
					want_input(c, 1);
					snprintf(ok, sizeof(ok), "250 2.0.0 Ok: queued as %lld\r\n",
					    (long long)c->id);
					if (reply(c, ok) == -1 || process(c) == -1)
						conn_close(c);
				}
				continue;
			}
			c = evs[i].data.ptr;
			r = read(c->fd, c->in + c->inlen, IN_MAX - c->inlen);
			if (r == -1 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0) {
				conn_close(c);
				continue;
			}
			c->inlen += (size_t)r;
			if (process(c) == -1)
				conn_close(c);
		}
	}
	return 0;
}
