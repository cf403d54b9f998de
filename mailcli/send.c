/*
 * send.c - `mailcli send`: compose a message (compose.h) and submit it over
 * SMTP (smtpclient.h): EHLO, STARTTLS as --tls says, AUTH when --user is
 * given, SIZE checked before anything is sent, MAIL + RCPTs pipelined when
 * offered, every recipient's verdict reported, then DATA streamed from the
 * composer (constant memory, dot-stuffed). RFC 5321 3.3, 4.1; RFC 6409.
 * Exit: 0 all recipients accepted and the message queued; 1 any refusal or
 * failure (the report says which recipients got it); 2 usage.
 * Must never: take the password from argv, or start DATA when no recipient
 * was accepted.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clientconf.h"
#include "compose.h"
#include "mailcli.h"
#include "smtpclient.h"

struct send_opts {
	struct clientconf conf;
	struct compose_opts msg;
	char	 helo[256];		/* --helo NAME; default: our host name or address literal */
};

static void
send_usage(FILE *out)
{
	fprintf(out, "usage: mailcli send --from ADDR --to ADDR... [compose options] [connection options]\n\n"
	    "Compose a message (see 'mailcli compose --help') and send it over SMTP.\n"
	    "Every recipient's result is reported; the exit status is 0 only when all\n"
	    "were accepted and the server queued the message.\n\n");
	compose_usage_options(out);
	fprintf(out, "\n");
	clientconf_usage(out, CLIENTCONF_SMTP);
	fprintf(out, "  --helo NAME            name given in EHLO (default: this host's name)\n");
}

/*
 * The EHLO argument (RFC 5321 4.1.4): our fully-qualified name, or when the
 * host name has no dot, the address literal of our end of the connection.
 */
static void
default_helo(const struct smtpclient *s, char *dst, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], a[INET6_ADDRSTRLEN];

	if (gethostname(host, sizeof(host)) == 0 && (host[sizeof(host) - 1] = '\0',
	    strchr(host, '.') != NULL)) {
		snprintf(dst, len, "%s", host);
		return;
	}
	if (getsockname(s->conn.fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6 &&
		    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a))) {
			snprintf(dst, len, "[IPv6:%s]", a);
			return;
		}
		if (ss.ss_family == AF_INET &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a))) {
			snprintf(dst, len, "[%s]", a);
			return;
		}
	}
	snprintf(dst, len, "localhost");
}

static int
parse_args(struct send_opts *o, int argc, char **argv)
{
	char err[512];
	int i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			send_usage(stdout);
			exit(0);
		}
		if ((r = clientconf_parse_arg(&o->conf, argc, argv, &i, err, sizeof(err))) == 0)
			r = compose_parse_arg(&o->msg, argc, argv, &i, err, sizeof(err));
		if (r == 1)
			continue;
		if (r == -1) {
			fprintf(stderr, "mailcli send: %s\n", err);
			return -1;
		}
		if (strcmp(argv[i], "--helo") == 0 || strncmp(argv[i], "--helo=", 7) == 0) {
			const char *v = argv[i][6] == '=' ? argv[i] + 7 : (i + 1 < argc ? argv[++i] : NULL);
			if (v == NULL || *v == '\0' || strpbrk(v, " \t\r\n") != NULL ||
			    strlen(v) >= sizeof(o->helo)) {
				fprintf(stderr, "mailcli send: --helo needs a host name\n");
				return -1;
			}
			snprintf(o->helo, sizeof(o->helo), "%s", v);
			continue;
		}
		fprintf(stderr, "mailcli send: unknown option '%s' (see mailcli send --help)\n", argv[i]);
		return -1;
	}
	return 0;
}

/* Say why the server stopped us, on stderr. */
static void
refused(const char *what, const struct reply *r)
{
	char line[600];

	smtpclient_reply_str(r, line, sizeof(line));
	fprintf(stderr, "mailcli send: %s refused: %s\n", what, line);
}

/* Everything up to and including AUTH. 0 ready for MAIL, -1 (already reported). */
static int
session_start(struct send_opts *o, struct smtpclient *s, SSL_CTX **ctx)
{
	struct clientconf *c = &o->conf;
	const char *stage = "EHLO";
	char err[600];
	int r;

	if (c->tls != CLIENTCONF_TLS_OFF &&
	    (*ctx = clientconf_tls_ctx(c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mailcli send: %s\n", err);
		return -1;
	}
	if (c->tls == CLIENTCONF_TLS_IMPLICIT)
		r = smtpclient_open_tls(s, c->host, c->port, c->timeout, c->trace ? stdout : NULL, *ctx);
	else
		r = smtpclient_open(s, c->host, c->port, c->timeout, c->trace ? stdout : NULL);
	if (r == -1) {
		fprintf(stderr, "mailcli send: %s (server from %s)\n", s->err, c->source);
		return -1;
	}
	s->trace_body = c->trace_body;
	if (r == 1) {
		refused("connection", &s->reply);
		return -1;
	}
	if (o->helo[0] == '\0')
		default_helo(s, o->helo, sizeof(o->helo));
	if ((r = smtpclient_ehlo(s, o->helo)) != 0)
		goto fail;
	if (c->tls == CLIENTCONF_TLS_REQUIRED && !s->caps.starttls) {
		fprintf(stderr, "mailcli send: %s:%s does not offer STARTTLS and --tls required was "
		    "given; nothing was sent\n", c->host, c->port);
		return -1;
	}
	if (!clientconn_is_tls(&s->conn) && s->caps.starttls && c->tls != CLIENTCONF_TLS_OFF) {
		stage = "STARTTLS";
		if ((r = smtpclient_starttls(s, *ctx, o->helo)) != 0)
			goto fail;
	}
	if (c->user[0] != '\0') {
		if (!clientconn_is_tls(&s->conn))
			fprintf(stderr, "mailcli send: warning: sending the password for %s without "
			    "TLS\n", c->user);
		if (clientconf_password(c, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailcli send: %s\n", err);
			return -1;
		}
		stage = "login (AUTH)";
		r = smtpclient_auth(s, c->user, c->password);
		explicit_bzero(c->password, sizeof(c->password));
		if (r != 0)
			goto fail;
	}
	return 0;
fail:
	if (r == -1)
		fprintf(stderr, "mailcli send: %s\n", s->err);
	else {
		refused(stage, &s->reply);
		if (s->reply.code != 421)	/* the session is still in step: leave politely */
			smtpclient_quit(s);
	}
	return -1;
}

int
send_main(int argc, char **argv)
{
	struct send_opts o;
	struct smtpclient s;
	struct smtpclient_rcpt *rcpt = NULL;
	SSL_CTX *ctx = NULL;
	char err[600], line[600];
	uint64_t size = 0;
	size_t i, accepted = 0;
	bool connected = false;
	int r, status = 1;

	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	s.conn.fd = -1;
	compose_init(&o.msg);
	if (clientconf_init(&o.conf, CLIENTCONF_SMTP, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli send: %s\n", err);
		compose_free(&o.msg);
		return 2;
	}
	if (parse_args(&o, argc, argv) == -1) {
		status = 2;
		goto out;
	}
	/* Everything about the message is checked before we connect. */
	if (compose_prepare(&o.msg, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli send: %s\n", err);
		status = compose_prepare_status(&o.msg);
		goto out;
	}
	if (o.msg.dry_run) {
		compose_print_envelope(stdout, &o.msg);
		printf("(dry run: nothing sent to %s:%s)\n", o.conf.host, o.conf.port);
		status = 0;
		goto out;
	}
	if (o.msg.env_nrcpt == 0) {
		fprintf(stderr, "mailcli send: no recipients (--to, --cc or --bcc)\n");
		status = 2;
		goto out;
	}
	if (compose_size(&o.msg, &size) == -1) {
		fprintf(stderr, "mailcli send: cannot compute the message size\n");
		goto out;
	}
	rcpt = calloc(o.msg.env_nrcpt, sizeof(*rcpt));
	if (rcpt == NULL) {
		fprintf(stderr, "mailcli send: out of memory\n");
		goto out;
	}
	for (i = 0; i < o.msg.env_nrcpt; i++)
		rcpt[i].addr = o.msg.env_rcpt[i];

	connected = true;
	if (session_start(&o, &s, &ctx) == -1)
		goto out;
	/* RFC 1870 4: do not even try a message the server told us it refuses. */
	if (s.caps.size && s.caps.size_max > 0 && size > s.caps.size_max) {
		fprintf(stderr, "mailcli send: the message is %llu octets but %s accepts at most "
		    "%llu (SIZE); nothing was sent\n", (unsigned long long)size, o.conf.host,
		    (unsigned long long)s.caps.size_max);
		smtpclient_quit(&s);
		goto out;
	}
	r = smtpclient_envelope(&s, o.msg.env_from, size, false, rcpt, o.msg.env_nrcpt);
	if (r == -1) {
		fprintf(stderr, "mailcli send: %s\n", s.err);
		goto out;
	}
	if (s.reply.code / 100 != 2) {
		refused("MAIL FROM", &s.reply);
		smtpclient_quit(&s);
		goto out;
	}
	for (i = 0; i < o.msg.env_nrcpt; i++)
		accepted += rcpt[i].accepted;
	if (accepted == 0) {
		for (i = 0; i < o.msg.env_nrcpt; i++) {
			smtpclient_reply_str(&rcpt[i].reply, line, sizeof(line));
			printf("%s: refused: %s\n", rcpt[i].addr, line);
		}
		fprintf(stderr, "mailcli send: every recipient was refused; nothing was sent\n");
		smtpclient_quit(&s);
		goto out;
	}
	if ((r = smtpclient_data_begin(&s)) != 0) {
		if (r == -1)
			fprintf(stderr, "mailcli send: %s\n", s.err);
		else
			refused("DATA", &s.reply);
		goto report_fail;
	}
	if (compose_write(&o.msg, smtpclient_data_write, &s, err, sizeof(err)) == -1) {
		/* Closing without the final dot makes the server drop the message. */
		fprintf(stderr, "mailcli send: %s%s%s; message abandoned\n", err,
		    s.err[0] ? ": " : "", s.err);
		goto report_fail;
	}
	r = smtpclient_data_end(&s);
	if (r == -1) {
		fprintf(stderr, "mailcli send: %s (the message may or may not have been "
		    "accepted)\n", s.err);
		goto out;
	}
	smtpclient_reply_str(&s.reply, line, sizeof(line));
	smtpclient_quit(&s);	/* first, so that a trace ends with the session */
	if (r == 1) {
		fprintf(stderr, "mailcli send: the message was refused: %s\n", line);
		goto report_fail;
	}
	for (i = 0; i < o.msg.env_nrcpt; i++) {
		char rl[600];
		smtpclient_reply_str(&rcpt[i].reply, rl, sizeof(rl));
		printf("%s: %s: %s\n", rcpt[i].addr, rcpt[i].accepted ? "accepted" : "REFUSED", rl);
	}
	printf("sent to %zu of %zu recipients: %s\n", accepted, o.msg.env_nrcpt, line);
	if (accepted < o.msg.env_nrcpt)
		fprintf(stderr, "mailcli send: %zu recipient%s refused (see above); the others "
		    "got the message\n", o.msg.env_nrcpt - accepted,
		    o.msg.env_nrcpt - accepted == 1 ? " was" : "s were");
	else
		status = 0;
	goto out;

report_fail:
	for (i = 0; i < o.msg.env_nrcpt; i++) {
		smtpclient_reply_str(&rcpt[i].reply, line, sizeof(line));
		printf("%s: not sent (recipient reply was: %s)\n", rcpt[i].addr, line);
	}
out:
	if (connected)
		smtpclient_close(&s);
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	free(rcpt);
	compose_free(&o.msg);
	clientconf_free(&o.conf);
	return status;
}
