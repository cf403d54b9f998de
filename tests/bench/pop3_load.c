/*
 * pop3_load.c - POP3 load generator: N concurrent sessions, each logging in
 * (USER/PASS), taking STAT and retrieving M messages with RETR (cycling over
 * the mailbox), then QUIT. Reports sessions, messages/s and MB/s. Speaks plain
 * RFC 1939, so it runs against any POP3 server (pop3d, Dovecot) on the same
 * machine; with --setup it first fills a correio store with the accounts and
 * messages the run needs.
 *
 *   pop3_load --setup --store var/bench.db -n 50 -k 20 -s 20000
 *   pop3d --store var/bench.db --listen 127.0.0.1:1110 &
 *   pop3_load -p 1110 -n 50 -m 20
 *
 * -m all retrieves every message once (RETR 1..STAT's count); -m 0 only logs
 * in (USER, PASS, STAT, QUIT). -r R makes each of the N connections run R
 * sessions one after the other (logins/s, drains). --maildir DIR with
 * --setup also writes the same messages as DIR/USER/Maildir and the same
 * yescrypt hashes as DIR/passwd ({CRYPT}), for Dovecot.
 *
 * Each session uses its own account (USER pattern with %d, default
 * "load%d"), since a POP3 mailbox is locked by one session at a time.
 * Single thread, poll(2), non-blocking sockets; never loads a message whole.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "store.h"

enum lstate { L_GREETING, L_USER, L_PASS, L_STAT, L_RETR_STATUS, L_RETR_BODY, L_QUIT, L_DONE };

struct lconn {
	int	 fd;
	int	 id;
	enum lstate state;
	char	 line[1024];	/* status line being read */
	size_t	 linelen;
	int	 match;		/* bytes of "\r\n.\r\n" matched in a body */
	int	 nmsgs;		/* from STAT */
	int	 retrieved;
	int	 runs;		/* sessions finished on this slot */
	char	 out[512];
	size_t	 outlen, outoff;
	bool	 failed;
};

static const char *host = "127.0.0.1", *user_fmt = "load%d", *password = "load-secret";
static int port = 110, nsessions = 10, per_session = 10, repeat = 1;
static uint64_t total_bytes, total_msgs, total_sessions;
static int failures;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
lsend(struct lconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
lsend(struct lconn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->out, sizeof(c->out), fmt, ap);
	va_end(ap);
	c->outlen = n > 0 && (size_t)n < sizeof(c->out) ? (size_t)n : 0;
	c->outoff = 0;
}

static void
lfail(struct lconn *c, const char *why)
{
	fprintf(stderr, "session %d: %s%s%.*s\n", c->id, why, c->linelen ? ": " : "",
	    (int)c->linelen, c->line);
	c->failed = true;
	c->state = L_DONE;
	failures++;
}

/* A complete status line arrived. */
static void
lstatus(struct lconn *c)
{
	char user[128];

	if (strncmp(c->line, "+OK", 3) != 0) {
		lfail(c, "unexpected reply");
		return;
	}
	switch (c->state) {
	case L_GREETING:
		snprintf(user, sizeof(user), user_fmt, c->id);
		lsend(c, "USER %s\r\n", user);
		c->state = L_USER;
		break;
	case L_USER:
		lsend(c, "PASS %s\r\n", password);
		c->state = L_PASS;
		break;
	case L_PASS:
		lsend(c, "STAT\r\n");
		c->state = L_STAT;
		break;
	case L_STAT:
		c->nmsgs = atoi(c->line + 4);
		if (c->nmsgs <= 0) {
			lfail(c, "empty mailbox");
			return;
		}
		/* FALLTHROUGH */
	case L_RETR_BODY:
		if (c->retrieved == (per_session < 0 ? c->nmsgs : per_session)) {
			lsend(c, "QUIT\r\n");
			c->state = L_QUIT;
		} else {
			lsend(c, "RETR %d\r\n", c->retrieved % c->nmsgs + 1);
			c->state = L_RETR_STATUS;
		}
		break;
	case L_RETR_STATUS:
		c->state = L_RETR_BODY;
		c->match = 2;	/* the status line's CRLF starts the terminator */
		break;
	case L_QUIT:
		c->state = L_DONE;
		c->runs++;
		total_sessions++;
		break;
	case L_DONE:
		break;
	}
}

/* Feed received bytes through the session's state machine. */
static void
lfeed(struct lconn *c, const char *p, size_t n)
{
	static const char term[] = "\r\n.\r\n";
	size_t i;

	for (i = 0; i < n && c->state != L_DONE; i++) {
		if (c->state == L_RETR_BODY) {
			char ch = p[i];

			total_bytes++;
			if (ch == term[c->match])
				c->match++;
			else
				c->match = ch == '\r' ? 1 : 0;
			if (c->match == 5) {
				c->retrieved++;
				total_msgs++;
				c->linelen = 0;
				memcpy(c->line, "+OK", 4);
				lstatus(c);
			}
			continue;
		}
		if (c->linelen + 1 < sizeof(c->line))
			c->line[c->linelen++] = p[i];
		if (p[i] == '\n') {
			c->line[c->linelen] = '\0';
			lstatus(c);
			c->linelen = 0;
		}
	}
}

static int
lconnect(struct lconn *c)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;

	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		return -1;
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	return 0;
}

static int
run_load(void)
{
	struct lconn *cs = calloc((size_t)nsessions, sizeof(*cs));
	struct pollfd *pfd = calloc((size_t)nsessions, sizeof(*pfd));
	static char buf[256 * 1024];
	double t0, t1;
	int i, active;

	if (cs == NULL || pfd == NULL)
		return 1;
	t0 = now();
	for (i = 0; i < nsessions; i++) {
		cs[i].id = i;
		if (lconnect(&cs[i]) == -1) {
			perror("connect");
			return 1;
		}
	}
	for (;;) {
		active = 0;
		for (i = 0; i < nsessions; i++) {
			pfd[i].fd = cs[i].state == L_DONE ? -1 : cs[i].fd;
			pfd[i].events = POLLIN | (cs[i].outoff < cs[i].outlen ? POLLOUT : 0);
			if (cs[i].state != L_DONE)
				active++;
		}
		if (active == 0)
			break;
		if (poll(pfd, (nfds_t)nsessions, 30000) <= 0) {
			fprintf(stderr, "poll: timeout or error\n");
			return 1;
		}
		for (i = 0; i < nsessions; i++) {
			struct lconn *c = &cs[i];
			ssize_t n;

			if (pfd[i].fd < 0)
				continue;
			if ((pfd[i].revents & POLLOUT) && c->outoff < c->outlen) {
				n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
				if (n > 0)
					c->outoff += (size_t)n;
			}
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				n = read(c->fd, buf, sizeof(buf));
				if (n > 0)
					lfeed(c, buf, (size_t)n);
				else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
					if (c->state != L_DONE)
						lfail(c, "connection closed");
				}
			}
			if (c->state == L_DONE) {
				close(c->fd);
				if (!c->failed && c->runs < repeat) {
					/* the next session on this slot */
					c->state = L_GREETING;
					c->retrieved = 0;
					c->linelen = 0;
					c->outlen = c->outoff = 0;
					if (lconnect(c) == -1) {
						perror("connect");
						return 1;
					}
				}
			}
		}
	}
	t1 = now();
	printf("sessions=%d messages_per_session=%d failures=%d\n", nsessions, per_session, failures);
	printf("sessions_done=%llu sessions/s=%.1f\n", (unsigned long long)total_sessions,
	    (double)total_sessions / (t1 - t0));
	printf("messages=%llu bytes=%llu seconds=%.3f\n", (unsigned long long)total_msgs,
	    (unsigned long long)total_bytes, t1 - t0);
	printf("messages/s=%.1f MB/s=%.2f\n", (double)total_msgs / (t1 - t0),
	    (double)total_bytes / (t1 - t0) / 1e6);
	free(cs);
	free(pfd);
	return failures ? 1 : 0;
}

/* The same message as a file of DIR/USER/Maildir/cur (Dovecot's maildir). */
static int
maildir_write(const char *dir, const char *user, int j, const struct buf *body)
{
	char path[1024];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s/Maildir/cur/%d.bench.%d:2,S", dir, user, 1000000 + j, j);
	if ((fp = fopen(path, "w")) == NULL)
		return -1;
	if (fwrite(body->data, 1, body->len, fp) != body->len) {
		fclose(fp);
		return -1;
	}
	return fclose(fp);
}

static int
maildir_make(const char *dir, const char *user, FILE *passwd, const char *hash)
{
	static const char *const sub[] = { "", "/Maildir", "/Maildir/cur", "/Maildir/new",
	    "/Maildir/tmp" };
	char path[1024];
	size_t i;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s%s", dir, user, sub[i]);
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			return -1;
	}
	fprintf(passwd, "%s:{CRYPT}%s::::%s/%s::\n", user, hash, dir, user);
	return 0;
}

/* Fill a correio store: accounts load0..n-1, each with k messages of ~size
 * octets; with maildir, the same for Dovecot. */
static int
run_setup(const char *path, const char *maildir, int k, long size)
{
	struct store *st;
	char err[512], hash[AUTH_HASH_MAX], user[128], pw[1024], spool[1024], *slash;
	struct buf body;
	FILE *passwd = NULL;
	int i, j;

	if (maildir != NULL) {
		snprintf(pw, sizeof(pw), "%s/passwd", maildir);
		if ((mkdir(maildir, 0755) == -1 && errno != EEXIST) || (passwd = fopen(pw, "a")) == NULL) {
			fprintf(stderr, "%s: %s\n", pw, strerror(errno));
			return 1;
		}
	}

	if (store_open(&st, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "store %s: %s\n", path, err);
		return 1;
	}
	if (auth_hash_password(password, hash, sizeof(hash)) == -1) {
		fprintf(stderr, "cannot hash the password\n");
		return 1;
	}
	buf_init(&body, (size_t)size + 4096);
	if (strncmp(path, "postgresql:", 11) != 0) {
		snprintf(spool, sizeof(spool), "%s", path);
		if ((slash = strrchr(spool, '/')) != NULL)
			*slash = '\0';
		else
			snprintf(spool, sizeof(spool), ".");
	} else
		snprintf(spool, sizeof(spool), "/var/tmp");
	for (i = 0; i < nsessions; i++) {
		snprintf(user, sizeof(user), user_fmt, i);
		if (store_user_add(st, user, hash) == -1) {
			fprintf(stderr, "user %s: %s\n", user, store_errmsg(st));
			return 1;
		}
		if (passwd != NULL && maildir_make(maildir, user, passwd, hash) == -1) {
			fprintf(stderr, "maildir for %s: %s\n", user, strerror(errno));
			return 1;
		}
		for (j = 0; j < k; j++) {
			struct store_delivery *d = store_delivery_new("bench@lab.test", "bench");

			buf_reset(&body);
			buf_printf(&body, "From: bench@lab.test\r\nTo: %s@lab.test\r\n"
			    "Subject: load %d/%d\r\n\r\n", user, i, j);
			while ((long)body.len < size)
				buf_puts(&body, ".A line of text for the POP3 load generator, "
				    "about seventy octets.\r\n");
			/* As smtpd stores it: a body past 64 KiB spooled in the
			 * store's directory (with SQLite, then kept as a file). */
			if (d == NULL || store_delivery_spool(d, spool) == -1 ||
			    store_delivery_add_rcpt(d, user) == -1 ||
			    store_delivery_body(d, body.data, body.len) == -1 ||
			    store_delivery_commit(st, d) == -1) {
				fprintf(stderr, "deliver to %s: %s\n", user, store_errmsg(st));
				return 1;
			}
			store_delivery_free(&d);
			if (passwd != NULL && maildir_write(maildir, user, j, &body) == -1) {
				fprintf(stderr, "maildir for %s: %s\n", user, strerror(errno));
				return 1;
			}
		}
	}
	if (passwd != NULL && fclose(passwd) != 0)
		return 1;
	buf_free(&body);
	store_close(&st);
	printf("store %s: %d accounts (%s) with %d messages of ~%ld octets\n", path, nsessions,
	    user_fmt, k, size);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: pop3_load [-H host] [-p port] [-n sessions] [-m messages|all] [-r repeat] [-u user%%d]\n"
	    "                 [-w password]\n"
	    "       pop3_load --setup --store PATH [--maildir DIR] [-n accounts] [-k messages] [-s size]\n"
	    "                 [-u user%%d] [-w password]\n");
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "setup", no_argument, NULL, 'S' },
		{ "store", required_argument, NULL, 'D' },
		{ "maildir", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store_path = NULL, *maildir = NULL;
	bool setup = false;
	long size = 20000;
	int ch, k = 20;

	while ((ch = getopt_long(argc, argv, "H:p:n:m:r:u:w:k:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'n': nsessions = atoi(optarg); break;
		case 'm': per_session = strcmp(optarg, "all") == 0 ? -1 : atoi(optarg); break;
		case 'r': repeat = atoi(optarg); break;
		case 'M': maildir = optarg; break;
		case 'u': user_fmt = optarg; break;
		case 'w': password = optarg; break;
		case 'k': k = atoi(optarg); break;
		case 's': size = atol(optarg); break;
		case 'S': setup = true; break;
		case 'D': store_path = optarg; break;
		default: usage(); return 2;
		}
	}
	if (nsessions <= 0 || per_session < -1 || repeat <= 0 || k <= 0 || size <= 0 ||
	    strstr(user_fmt, "%d") == NULL) {
		usage();
		return 2;
	}
	if (setup) {
		if (store_path == NULL) {
			usage();
			return 2;
		}
		return run_setup(store_path, maildir, k, size);
	}
	return run_load();
}
