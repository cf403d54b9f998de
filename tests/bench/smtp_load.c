/*
 * smtp_load.c - SMTP load generator for any server (correio smtpd, Postfix...).
 *
 *   smtp_load [-c CONNS] [-m MESSAGES] [-s SIZE] [-f FROM] [-t TO] [-P] HOST:PORT
 *   smtp_load --idle N [--hold SECONDS] HOST:PORT
 *   smtp_load --fsync DIR [-m COUNT]
 *
 * Load mode: CONNS concurrent sessions (one thread each) send MESSAGES
 * messages of SIZE octets in total, reusing their connection (RSET-free: one
 * MAIL/RCPT/DATA per message, pipelined with -P as RFC 2920 allows). A message
 * counts once the server answered 250 after the final dot (for correio: after
 * the commit). Prints messages/s, MB/s and the latency of each message (MAIL
 * sent to 250 received) as p50/p95/p99.
 * Idle mode: opens N connections, reads each greeting, holds them for SECONDS
 * (measure the server's RSS meanwhile), then QUITs. Raises RLIMIT_NOFILE.
 * Fsync mode: the disk's rate of write+fsync of 4 KB to one file (what one
 * durable commit per message would cost).
 * Never part of the test command; only loopback or hosts you own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct opts {
	char	 host[256];
	char	 port[16];
	int	 conns;
	long	 messages;
	long	 size;
	const char *from;
	const char *to;
	bool	 pipelining;
};

struct worker {
	pthread_t	 th;
	const struct opts *o;
	long		 todo;		/* messages for this connection */
	long		 done;
	double		*lat;		/* seconds per message */
	int		 id;
	char		 err[256];
};

static char *body;		/* the message, CRLF lines, ends with CRLF */
static size_t bodylen;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1, one = 1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd != -1)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Buffered reply reader: one whole (multi-line) reply, returns its code. */
struct rd {
	int	 fd;
	char	 buf[16384];
	size_t	 len;
};

static int
read_reply(struct rd *r)
{
	for (;;) {
		char *nl;
		while ((nl = memchr(r->buf, '\n', r->len)) != NULL) {
			size_t n = (size_t)(nl - r->buf) + 1;
			int code = -1;
			bool last = n >= 4 && r->buf[3] != '-';
			if (n >= 4)
				code = atoi(r->buf);
			memmove(r->buf, r->buf + n, r->len - n);
			r->len -= n;
			if (last)
				return code;
		}
		if (r->len == sizeof(r->buf))
			return -1;
		ssize_t got = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (got <= 0)
			return -1;
		r->len += (size_t)got;
	}
}

static int
write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	const struct opts *o = w->o;
	struct rd r = { .fd = -1 };
	char cmd[1024];
	int n;

	if ((r.fd = dial(o->host, o->port)) == -1) {
		snprintf(w->err, sizeof(w->err), "connect: %s", strerror(errno));
		return NULL;
	}
	n = snprintf(cmd, sizeof(cmd), "EHLO load%d.example\r\n", w->id);
	if (read_reply(&r) != 220 || write_all(r.fd, cmd, (size_t)n) == -1 || read_reply(&r) != 250) {
		snprintf(w->err, sizeof(w->err), "greeting/EHLO failed");
		goto out;
	}
	for (w->done = 0; w->done < w->todo; w->done++) {
		double t0 = now();
		n = snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", o->from, o->to);
		if (o->pipelining) {
			if (write_all(r.fd, cmd, (size_t)n) == -1 || read_reply(&r) != 250 ||
			    read_reply(&r) != 250 || read_reply(&r) != 354)
				goto fail;
		} else {
			char *a = cmd, *b;
			int want[3] = { 250, 250, 354 };
			for (int i = 0; i < 3; i++) {
				b = strstr(a, "\r\n") + 2;
				if (write_all(r.fd, a, (size_t)(b - a)) == -1 || read_reply(&r) != want[i])
					goto fail;
				a = b;
			}
		}
		if (write_all(r.fd, body, bodylen) == -1 || write_all(r.fd, ".\r\n", 3) == -1 ||
		    read_reply(&r) != 250)
			goto fail;
		w->lat[w->done] = now() - t0;
	}
	write_all(r.fd, "QUIT\r\n", 6);
	read_reply(&r);
	goto out;
fail:
	snprintf(w->err, sizeof(w->err), "message %ld refused or connection lost", w->done);
out:
	close(r.fd);
	return NULL;
}

static void
make_body(long size)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	const char *hdr = "From: load@example.org\r\nTo: bench@example.org\r\n"
	    "Subject: smtp_load\r\n\r\n";
	size_t i, j, room;

	bodylen = (size_t)(size > (long)strlen(hdr) + 2 ? size : (long)strlen(hdr) + 2);
	if ((body = malloc(bodylen)) == NULL) {
		perror("malloc");
		exit(1);
	}
	memcpy(body, hdr, strlen(hdr));
	/* Lines of 76 letters (never a leading dot), the last one shorter. */
	for (i = strlen(hdr); i < bodylen - 2; ) {
		room = bodylen - 2 - i;
		size_t n = room >= 78 ? 76 : room;
		for (j = 0; j < n; j++)
			body[i + j] = alpha[(i + j) % (sizeof(alpha) - 1)];
		i += n;
		if (room >= 78) {
			body[i++] = '\r';
			body[i++] = '\n';
		}
	}
	body[bodylen - 2] = '\r';
	body[bodylen - 1] = '\n';
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t target = (rlim_t)want;
		if (target > rl.rlim_max)
			rl.rlim_max = target;	/* works as root */
		rl.rlim_cur = target;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			getrlimit(RLIMIT_NOFILE, &rl);
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
}

static int
run_load(const struct opts *o)
{
	struct worker *ws = calloc((size_t)o->conns, sizeof(*ws));
	double *all, t0, took;
	long total = 0, i, k = 0;
	int c, failed = 0;

	raise_nofile(o->conns + 64);
	make_body(o->size);
	all = calloc((size_t)o->messages, sizeof(double));
	if (ws == NULL || all == NULL)
		return 1;
	t0 = now();
	for (c = 0; c < o->conns; c++) {
		ws[c].o = o;
		ws[c].id = c;
		ws[c].todo = o->messages / o->conns + (c < o->messages % o->conns);
		ws[c].lat = calloc((size_t)ws[c].todo + 1, sizeof(double));
		pthread_create(&ws[c].th, NULL, worker_main, &ws[c]);
	}
	for (c = 0; c < o->conns; c++) {
		pthread_join(ws[c].th, NULL);
		if (ws[c].err[0]) {
			fprintf(stderr, "connection %d: %s\n", c, ws[c].err);
			failed++;
		}
		for (i = 0; i < ws[c].done; i++)
			all[k++] = ws[c].lat[i];
		total += ws[c].done;
		free(ws[c].lat);
	}
	took = now() - t0;
	qsort(all, (size_t)k, sizeof(double), cmp_double);
	printf("server=%s:%s conns=%d size=%ld messages=%ld failed_conns=%d seconds=%.3f "
	    "msgs_per_s=%.1f MB_per_s=%.2f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f\n",
	    o->host, o->port, o->conns, (long)bodylen, total, failed, took, total / took,
	    total * (double)bodylen / took / 1e6,
	    k ? all[k / 2] * 1e3 : 0, k ? all[(k * 95) / 100] * 1e3 : 0,
	    k ? all[(k * 99) / 100] * 1e3 : 0);
	free(all);
	free(ws);
	free(body);
	return failed ? 1 : 0;
}

static int
run_idle(const struct opts *o, long n, long hold)
{
	int *fds = calloc((size_t)n, sizeof(int));
	long i, open_ok = 0;
	char buf[512];

	raise_nofile(n + 64);
	if (fds == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		if ((fds[i] = dial(o->host, o->port)) == -1) {
			fprintf(stderr, "connection %ld: %s\n", i, strerror(errno));
			break;
		}
		open_ok++;
	}
	/* Every connection must have been greeted (the server holds a session). */
	long greeted = 0;
	for (i = 0; i < open_ok; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		if (poll(&p, 1, 10000) == 1 && read(fds[i], buf, sizeof(buf)) > 3 &&
		    strncmp(buf, "220", 3) == 0)
			greeted++;
	}
	printf("idle connections open=%ld greeted=%ld; holding %ld s\n", open_ok, greeted, hold);
	fflush(stdout);
	sleep((unsigned)hold);
	for (i = 0; i < open_ok; i++) {
		(void)write(fds[i], "QUIT\r\n", 6);
		close(fds[i]);
	}
	free(fds);
	return greeted == n ? 0 : 1;
}

/* write+fsync of 4 KB: appending (the file grows: metadata too),
 * overwriting one block in place, and overwriting with fdatasync (what
 * SQLite does for a WAL commit with synchronous=FULL on Linux). */
static int
run_fsync(const char *dir, long count)
{
	char path[4096], block[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/smtp_load.fsync.%d", dir, (int)getpid());
	memset(block, 'f', sizeof(block));
	for (int mode = 0; mode < 3; mode++) {
		double t0, took;
		if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1) {
			perror(path);
			return 1;
		}
		if (mode >= 1 && (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block) ||
		    fsync(fd) == -1)) {
			perror("pwrite");
			return 1;
		}
		t0 = now();
		for (long i = 0; i < count; i++) {
			ssize_t w = mode == 0 ? write(fd, block, sizeof(block)) :
			    pwrite(fd, block, sizeof(block), 0);
			if (w != (ssize_t)sizeof(block) || (mode == 2 ? fdatasync(fd) : fsync(fd)) == -1) {
				perror("write/fsync");
				close(fd);
				unlink(path);
				return 1;
			}
		}
		took = now() - t0;
		close(fd);
		printf("fsync dir=%s mode=%s count=%ld seconds=%.3f fsyncs_per_s=%.1f\n", dir,
		    mode == 0 ? "append+fsync" : mode == 1 ? "overwrite+fsync" : "overwrite+fdatasync",
		    count, took, count / took);
	}
	unlink(path);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: smtp_load [-c CONNS] [-m MESSAGES] [-s SIZE] [-f FROM] [-t TO] [-P] HOST:PORT\n"
	    "       smtp_load --idle N [--hold SECONDS] HOST:PORT\n"
	    "       smtp_load --fsync DIR [-m COUNT]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "idle", required_argument, NULL, 'i' },
		{ "hold", required_argument, NULL, 'H' },
		{ "fsync", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .conns = 1, .messages = 100, .size = 4096, .from = "load@example.org",
	    .to = "bob@lab.test" };
	long idle = 0, hold = 10;
	const char *fsync_dir = NULL, *colon;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:m:s:f:t:P", lopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.conns = atoi(optarg); break;
		case 'm': o.messages = atol(optarg); break;
		case 's': o.size = atol(optarg); break;
		case 'f': o.from = optarg; break;
		case 't': o.to = optarg; break;
		case 'P': o.pipelining = true; break;
		case 'i': idle = atol(optarg); break;
		case 'H': hold = atol(optarg); break;
		case 'F': fsync_dir = optarg; break;
		default: usage();
		}
	}
	if (fsync_dir != NULL)
		return run_fsync(fsync_dir, o.messages);
	if (optind + 1 != argc || o.conns < 1 || o.messages < 1)
		usage();
	if ((colon = strrchr(argv[optind], ':')) == NULL)
		usage();
	snprintf(o.host, sizeof(o.host), "%.*s", (int)(colon - argv[optind]), argv[optind]);
	if (o.host[0] == '[') {
		memmove(o.host, o.host + 1, strlen(o.host));
		o.host[strcspn(o.host, "]")] = '\0';
	}
	snprintf(o.port, sizeof(o.port), "%s", colon + 1);
	if (idle > 0)
		return run_idle(&o, idle, hold);
	if (o.conns > o.messages)
		o.conns = (int)o.messages;
	return run_load(&o);
}
