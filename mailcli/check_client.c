/*
 * check_client.c - `mailcli check-client --listen ADDR:PORT --protocol
 * smtp|pop3`: become a small, correct SMTP or POP3 server for one or more
 * sessions and grade what the client did (check_client_smtp.c and
 * check_client_pop3.c serve the protocols). This file owns the listener, the
 * server side of one connection (lines with their endings, "did the client
 * wait for our reply?"), merging the verdicts of all sessions, and the
 * report. It prints "listening on HOST:PORT" on stderr once the socket is
 * bound, so port 0 is usable from scripts. Every wait is bounded by the
 * overall --timeout. Never stores or forwards what it receives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "mailcli.h"
#include "transcript.h"

#define CC_TIMEOUT_DEFAULT	60	/* seconds for the whole run */
#define CC_LINE_MAX		65536	/* longest line read from a client */
#define CC_GREETING_WAIT_MS	300	/* how long we keep silent before greeting */

static void
cc_usage(FILE *out)
{
	fprintf(out,
	    "usage: mailcli check-client --listen ADDR:PORT --protocol smtp|pop3 [options]\n"
	    "       mailcli check-client --list [--protocol smtp|pop3]\n\n"
	    "Be a server for a client under test and grade what it does: line endings,\n"
	    "waiting for replies, command order, dot-stuffing, QUIT, the message's form.\n"
	    "Prints \"listening on HOST:PORT\" on stderr (use port 0 for any free port).\n\n"
	    "options:\n"
	    "  --sessions N           grade N sessions, then report (default 1)\n"
	    "  --timeout SECONDS      bound on the whole run (default %d)\n"
	    "  --pipelining           offer PIPELINING (SMTP EHLO, POP3 CAPA)\n"
	    "  --user NAME            POP3: accept only NAME with the password in\n"
	    "                         MAILCLI_PASSWORD (default: any user, any password)\n"
	    "  --only ID,...          report only these checks\n"
	    "  --json                 print one JSON document instead of the report card\n",
	    CC_TIMEOUT_DEFAULT);
}

/* ---- one connection, server side ---- */

int
cc_line(struct cc_session *s, char **line_r, size_t *len_r, enum line_eol *eol_r)
{
	char tmp[16384];
	struct pollfd pfd;
	enum line_status st;
	ssize_t n;
	int left, pr;

	for (;;) {
		st = linebuf_next(&s->in, line_r, len_r, eol_r);
		if (st == LINE_OK) {
			char shown[1024];
			bool secret = (*len_r > 5 && strncasecmp(*line_r, "PASS ", 5) == 0) ||
			    (*len_r > 5 && strncasecmp(*line_r, "AUTH ", 5) == 0) ||
			    (*len_r > 5 && strncasecmp(*line_r, "APOP ", 5) == 0);

			if (secret) {
				transcript_mask(*line_r, *len_r, true, shown, sizeof(shown));
				clientconn_trace_line(s->t, "C: ", shown, strlen(shown));
			} else
				clientconn_trace_line(s->t, "C: ", *line_r, *len_r);
			if (*eol_r == EOL_LF)
				fprintf(s->t, "   [that line ended in a bare LF]\n");
			return 0;
		}
		if (st == LINE_TOO_LONG) {
			fprintf(s->t, "   [a line longer than %d octets]\n", CC_LINE_MAX);
			return -1;
		}
		left = (int)(s->deadline - check_now_ms());
		if (left <= 0) {
			fprintf(s->t, "   [the time limit of the run was reached]\n");
			return -1;
		}
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		do
			pr = poll(&pfd, 1, left);
		while (pr == -1 && errno == EINTR);
		if (pr <= 0) {
			fprintf(s->t, "   [the time limit of the run was reached]\n");
			return -1;
		}
		do
			n = recv(s->fd, tmp, linebuf_space(&s->in) < sizeof(tmp) ?
			    linebuf_space(&s->in) : sizeof(tmp), 0);
		while (n == -1 && errno == EINTR);
		if (n <= 0) {
			if (linebuf_pending(&s->in) > 0)
				fprintf(s->t, "   [the client closed the connection in the middle of a "
				    "line: %zu octets without a line end]\n", linebuf_pending(&s->in));
			else
				fprintf(s->t, "   [the client closed the connection]\n");
			return -1;
		}
		linebuf_feed(&s->in, tmp, (size_t)n);
	}
}

bool
cc_more_waiting(struct cc_session *s, int ms)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	char c;

	if (linebuf_pending(&s->in) > 0)
		return true;
	if (poll(&pfd, 1, ms) <= 0)
		return false;
	/* Readable: data, or only the end of the connection. */
	return recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

int
cc_send(struct cc_session *s, const void *p, size_t n)
{
	const char *b = p;
	ssize_t w;

	while (n > 0) {
		w = send(s->fd, b, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int
cc_reply(struct cc_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = (int)sizeof(line) - 3;
	clientconn_trace_line(s->t, "S: ", line, (size_t)n);
	memcpy(line + n, "\r\n", 2);
	return cc_send(s, line, (size_t)n + 2);
}

static long
find_check(const struct cc_grade *g, const char *id)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (strcmp(g->table[i].id, id) == 0)
			return (long)i;
	return -1;
}

void
cc_result(struct cc_session *s, const char *id, bool ok, const char *fmt, ...)
{
	long i = find_check(s->g, id);
	char why[1024];
	va_list ap;

	if (i < 0)
		return;
	if (ok) {
		check_pass(&s->g->runs[i]);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s->failed[i])
		return;		/* the first reason in a session is enough */
	s->failed[i] = true;
	fprintf(s->t, "   [%s: %s]\n", id, why);
	check_fail(&s->g->runs[i], "session %u: %s", s->number, why);
}

void
cc_greeting_wait(struct cc_session *s, const char *id)
{
	if (cc_more_waiting(s, CC_GREETING_WAIT_MS)) {
		char c[64];
		ssize_t n = recv(s->fd, c, sizeof(c), MSG_PEEK | MSG_DONTWAIT);

		if (n > 0)
			clientconn_trace_line(s->t, "C: ", c, (size_t)n);
		cc_result(s, id, false, "the client spoke before the server's greeting");
	} else
		cc_result(s, id, true, "%s", "");
}

/* ---- the listener ---- */

/* "HOST:PORT", "[V6]:PORT"; port 0 allowed. */
static int
parse_listen(const char *s, char *host, size_t hl, char *port, size_t pl)
{
	const char *colon = strrchr(s, ':');
	size_t n;

	if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1) || strlen(colon + 1) > 5)
		return -1;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= hl)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	snprintf(port, pl, "%s", colon + 1);
	return atoi(port) > 65535 ? -1 : 0;
}

static int
listen_on(const char *host, const char *port, char *shown, size_t shownlen)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	int fd = -1, one = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "mailcli check-client: %s: %s\n", host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 8) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		fprintf(stderr, "mailcli check-client: cannot listen on %s port %s: %s\n", host, port,
		    strerror(errno));
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
			snprintf(shown, shownlen, "[%s]:%u", addr, ntohs(s6->sin6_port));
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
			snprintf(shown, shownlen, "%s:%u", addr, ntohs(s4->sin_port));
		}
	}
	return fd;
}

/* Wait for a connection until the deadline. fd or -1. */
static int
accept_one(int lfd, int64_t deadline)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int left = (int)(deadline - check_now_ms()), r, fd;

	if (left <= 0)
		return -1;
	do
		r = poll(&pfd, 1, left);
	while (r == -1 && errno == EINTR);
	if (r <= 0)
		return -1;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd;
}

static void
run_session(int fd, unsigned number, struct cc_grade *g, const struct cc_opts *o,
    bool smtp, int64_t deadline)
{
	struct cc_session s;
	size_t i;

	memset(&s, 0, sizeof(s));
	s.fd = fd;
	s.deadline = deadline;
	s.g = g;
	s.o = o;
	s.number = number;
	s.failed = calloc(g->n, sizeof(bool));
	s.t = open_memstream(&s.tbuf, &s.tlen);
	if (s.failed == NULL || s.t == NULL || linebuf_init(&s.in, CC_LINE_MAX) == -1) {
		fprintf(stderr, "mailcli check-client: out of memory\n");
		goto out;
	}
	fprintf(s.t, "   [session %u]\n", number);
	if (smtp)
		cc_smtp_session(&s);
	else
		cc_pop3_session(&s);
	fflush(s.t);
	/* Each failed check keeps the dialog of the first session it failed in. */
	for (i = 0; i < g->n; i++)
		if (s.failed[i] && g->runs[i].tracebuf == NULL && s.tbuf != NULL) {
			g->runs[i].tracebuf = strdup(s.tbuf);
			g->runs[i].tracelen = g->runs[i].tracebuf ? s.tlen : 0;
		}
	linebuf_free(&s.in);
out:
	if (s.t != NULL)
		fclose(s.t);
	free(s.tbuf);
	free(s.failed);
	close(fd);
}

int
check_client_main(int argc, char **argv)
{
	static const struct check_def *const both[] = {
		check_client_smtp_table, check_client_pop3_table, NULL
	};
	const struct check_def *tables[2] = { NULL, NULL };
	struct cc_opts o;
	struct cc_grade g;
	struct check_report *rep;
	const char *listen_arg = NULL, *proto = NULL, *only = NULL, *pw;
	char host[256], port[16], shown[300] = "", err[300], target[400];
	bool json = false, list = false, smtp = true;
	long sessions = 1, timeout = CC_TIMEOUT_DEFAULT;
	int64_t deadline;
	int i, lfd, fd, status;
	unsigned done = 0;
	size_t k;

	memset(&o, 0, sizeof(o));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			cc_usage(stdout);
			return 0;
		}
		if (strcmp(a, "--json") == 0) {
			json = true;
			continue;
		}
		if (strcmp(a, "--list") == 0) {
			list = true;
			continue;
		}
		if (strcmp(a, "--pipelining") == 0) {
			o.pipelining = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0 || strchr(a, '=') != NULL) {
			if (strchr(a, '=') == NULL) {
				fprintf(stderr, "mailcli check-client: unexpected argument '%s'\n", a);
				return 2;
			}
			v = strchr(a, '=') + 1;
		} else if (i + 1 < argc)
			v = argv[++i];
		if (v == NULL) {
			fprintf(stderr, "mailcli check-client: %s needs a value\n", a);
			return 2;
		}
		if (strncmp(a, "--listen", 8) == 0)
			listen_arg = v;
		else if (strncmp(a, "--protocol", 10) == 0)
			proto = v;
		else if (strncmp(a, "--only", 6) == 0)
			only = v;
		else if (strncmp(a, "--user", 6) == 0)
			snprintf(o.user, sizeof(o.user), "%s", v);
		else if (strncmp(a, "--sessions", 10) == 0 || strncmp(a, "--timeout", 9) == 0) {
			char *e;
			long n = strtol(v, &e, 10);

			if (*v == '\0' || *e != '\0' || n < 1 || n > 86400) {
				fprintf(stderr, "mailcli check-client: %s must be a number from 1\n", a);
				return 2;
			}
			if (a[2] == 's')
				sessions = n;
			else
				timeout = n;
		} else {
			fprintf(stderr, "mailcli check-client: unknown option '%s'\n", a);
			return 2;
		}
	}
	if (proto != NULL && strcasecmp(proto, "smtp") != 0 && strcasecmp(proto, "pop3") != 0) {
		fprintf(stderr, "mailcli check-client: --protocol is smtp or pop3\n");
		return 2;
	}
	smtp = proto == NULL || strcasecmp(proto, "smtp") == 0;
	tables[0] = smtp ? check_client_smtp_table : check_client_pop3_table;
	if (list) {
		check_list_print(stdout, proto != NULL ? tables : both);
		return 0;
	}
	if (listen_arg == NULL || proto == NULL) {
		cc_usage(stderr);
		return 2;
	}
	if (parse_listen(listen_arg, host, sizeof(host), port, sizeof(port)) == -1) {
		fprintf(stderr, "mailcli check-client: --listen takes ADDR:PORT, not '%s'\n", listen_arg);
		return 2;
	}
	if (only != NULL && check_only_parse(only, tables, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli check-client: %s\n", err);
		return 2;
	}
	if (o.user[0] != '\0') {
		pw = getenv("MAILCLI_PASSWORD");
		if (pw == NULL || *pw == '\0') {
			fprintf(stderr, "mailcli check-client: --user needs the password in "
			    "MAILCLI_PASSWORD\n");
			return 2;
		}
		snprintf(o.password, sizeof(o.password), "%s", pw);
	}
	if ((lfd = listen_on(host, port, shown, sizeof(shown))) == -1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "mailcli check-client: listening on %s (%s, %ld session%s, %ld s)\n",
	    shown, smtp ? "smtp" : "pop3", sessions, sessions == 1 ? "" : "s", timeout);
	fflush(stderr);

	memset(&g, 0, sizeof(g));
	g.table = tables[0];
	g.n = check_table_len(g.table);
	g.runs = calloc(g.n, sizeof(*g.runs));
	if (g.runs == NULL) {
		close(lfd);
		return 1;
	}
	for (k = 0; k < g.n; k++) {
		g.runs[k].def = &g.table[k];
		buf_init(&g.runs[k].why, 64 * 1024);
	}
	deadline = check_now_ms() + (int64_t)timeout * 1000;
	while (done < sessions && (fd = accept_one(lfd, deadline)) != -1)
		run_session(fd, ++done, &g, &o, smtp, deadline);
	close(lfd);

	snprintf(target, sizeof(target), "%s client on %s (%u of %ld session%s)",
	    smtp ? "SMTP" : "POP3", shown, done, sessions, sessions == 1 ? "" : "s");
	rep = check_report_new(target);
	status = 1;
	if (rep != NULL) {
		for (k = 0; k < g.n; k++) {
			if (!check_only_wants(only, g.table[k].id))
				continue;
			if (!g.runs[k].decided)
				check_skip(&g.runs[k], "%s", done == 0 ? "no client connected" :
				    "the client never did what this check looks at");
			check_report_add(rep, &g.runs[k]);
		}
		status = check_report_print(rep, json);
		if (done == 0) {
			fprintf(stderr, "mailcli check-client: no client connected within %ld s\n",
			    timeout);
			status = 1;
		}
		check_report_free(&rep);
	}
	for (k = 0; k < g.n; k++) {
		buf_free(&g.runs[k].why);
		free(g.runs[k].tracebuf);
	}
	free(g.runs);
	explicit_bzero(o.password, sizeof(o.password));
	return status;
}
