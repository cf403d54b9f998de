/*
 * probe.c - `mailcli probe smtp://HOST:PORT | pop3://HOST:PORT` (and smtps://,
 * pop3s:// for implicit TLS): what a server offers, like msmtp's and mpop's
 * --serverinfo. Prints the greeting, the EHLO or CAPA capabilities and the
 * limits they announce (SIZE, EXPIRE, LOGIN-DELAY), and when STARTTLS/STLS is
 * offered, starts TLS to show the certificate (subject, issuer, validity,
 * names, fingerprint, whether it verifies) and what is offered after it.
 * Never logs in and never sends mail: it ends with QUIT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clientconf.h"
#include "mailcli.h"
#include "pop3client.h"
#include "smtpclient.h"

static void
probe_usage(FILE *out)
{
	fprintf(out, "usage: mailcli probe smtp://HOST[:PORT] | smtps://HOST[:PORT] |\n"
	    "                     pop3://HOST[:PORT] | pop3s://HOST[:PORT] [options]\n\n"
	    "Show what a server offers: greeting, capabilities, limits, TLS certificate.\n"
	    "Default ports: smtp 2525, smtps 465, pop3 1110, pop3s 995.\n\n"
	    "options:\n"
	    "  --cafile FILE          verify the certificate against the CAs in FILE\n"
	    "  --timeout SECONDS      bound on each wait for the server (default %d)\n"
	    "  --tls off              do not start TLS even when offered\n"
	    "  --trace                print the session (C:/S: lines)\n",
	    CLIENTCONF_TIMEOUT);
}

/* Print a '\n'-separated text as indented lines. */
static void
print_lines(const char *label, const char *text)
{
	const char *p = text, *e;
	bool first = true;

	while (*p != '\0') {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		printf("%-13s", first ? label : "");
		clientconn_trace_line(stdout, "", p, (size_t)(e - p));
		first = false;
		p = *e ? e + 1 : e;
	}
	if (first)
		printf("%s\n", label);
}

static void
print_size(uint64_t n)
{
	if (n == 0)
		printf("  message size:  no limit announced\n");
	else
		printf("  message size:  at most %llu octets (%.1f MiB)\n", (unsigned long long)n,
		    (double)n / (1024.0 * 1024.0));
}

static void
print_smtp_caps(const struct smtpclient *s)
{
	const struct smtpclient_caps *c = &s->caps;

	if (!c->esmtp) {
		printf("  (no ESMTP: the server only answered HELO)\n");
		return;
	}
	if (c->size)
		print_size(c->size_max);
	else
		printf("  message size:  not announced (no SIZE)\n");
	printf("  pipelining:    %s\n", c->pipelining ? "yes" : "no");
	printf("  STARTTLS:      %s\n", c->starttls ? "offered" : "not offered");
	printf("  8BITMIME:      %s   SMTPUTF8: %s   ENHANCEDSTATUSCODES: %s\n",
	    c->eightbitmime ? "yes" : "no", c->smtputf8 ? "yes" : "no",
	    c->enhancedstatuscodes ? "yes" : "no");
	printf("  AUTH:          %s\n", c->auth[0] ? c->auth : "not offered");
}

/* A context that verifies but does not fail, so an untrusted certificate is
 * still shown with the reason it would be refused. */
static SSL_CTX *
probe_ctx(struct clientconf *c)
{
	char err[600];
	SSL_CTX *ctx;

	ctx = clientconf_tls_ctx(c, err, sizeof(err));
	if (ctx == NULL) {
		fprintf(stderr, "mailcli probe: %s\n", err);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

static int
probe_smtp(struct clientconf *c, bool implicit)
{
	struct smtpclient s;
	SSL_CTX *ctx = NULL;
	char line[600];
	int r, status = 1;

	if ((implicit || c->tls != CLIENTCONF_TLS_OFF) && (ctx = probe_ctx(c)) == NULL)
		return 1;
	if (implicit)
		r = smtpclient_open_tls(&s, c->host, c->port, c->timeout, c->trace ? stdout : NULL, ctx);
	else
		r = smtpclient_open(&s, c->host, c->port, c->timeout, c->trace ? stdout : NULL);
	if (r == -1) {
		fprintf(stderr, "mailcli probe: %s\n", s.err);
		goto out;
	}
	printf("server:      %s://%s:%s (%s)\n", implicit ? "smtps" : "smtp", c->host, c->port,
	    s.conn.peer);
	smtpclient_reply_str(&s.greeting, line, sizeof(line));
	print_lines("greeting:", s.greeting.text);
	if (r == 1) {
		printf("the server refuses service: %s\n", line);
		goto out;
	}
	if (implicit) {
		printf("TLS (implicit):\n");
		clientconn_print_tls(&s.conn, stdout, "  ");
	}
	r = smtpclient_ehlo(&s, "probe.invalid");
	if (r == -1) {
		fprintf(stderr, "mailcli probe: %s\n", s.err);
		goto out;
	}
	print_lines(s.caps.esmtp ? "EHLO:" : "HELO:", s.ehlo.text);
	print_smtp_caps(&s);
	if (r == 0 && s.caps.starttls && !implicit && c->tls != CLIENTCONF_TLS_OFF) {
		r = smtpclient_starttls(&s, ctx, "probe.invalid");
		if (r == -1) {
			printf("STARTTLS:    failed: %s\n", s.err);
			goto out;
		}
		printf("TLS (STARTTLS):\n");
		clientconn_print_tls(&s.conn, stdout, "  ");
		if (r == 0) {
			print_lines("EHLO in TLS:", s.ehlo.text);
			print_smtp_caps(&s);
		} else {
			smtpclient_reply_str(&s.reply, line, sizeof(line));
			printf("STARTTLS:    refused: %s\n", line);
		}
	}
	smtpclient_quit(&s);
	status = 0;
out:
	smtpclient_close(&s);
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	return status;
}

static void
print_pop3_caps(const struct pop3client *p)
{
	const struct pop3client_caps *c = &p->caps;

	if (!c->capa) {
		printf("CAPA:        not supported (RFC 1939 only)\n");
		return;
	}
	print_lines("CAPA:", p->capa_text);
	printf("  STLS:          %s\n", c->stls ? "offered" : "not offered");
	printf("  TOP: %s   UIDL: %s   USER: %s   PIPELINING: %s   RESP-CODES: %s\n",
	    c->top ? "yes" : "no", c->uidl ? "yes" : "no", c->user ? "yes" : "no",
	    c->pipelining ? "yes" : "no", c->resp_codes ? "yes" : "no");
	printf("  SASL:          %s\n", c->sasl[0] ? c->sasl : "not offered");
	if (c->expire[0])
		printf("  EXPIRE:        %s (days messages are kept after retrieval)\n", c->expire);
	if (c->login_delay[0])
		printf("  LOGIN-DELAY:   %s seconds between logins\n", c->login_delay);
	if (c->implementation[0])
		printf("  implementation: %s\n", c->implementation);
}

static int
probe_pop3(struct clientconf *c, bool implicit)
{
	struct pop3client p;
	SSL_CTX *ctx = NULL;
	int r, status = 1;

	if ((implicit || c->tls != CLIENTCONF_TLS_OFF) && (ctx = probe_ctx(c)) == NULL)
		return 1;
	if (implicit)
		r = pop3client_open_tls(&p, c->host, c->port, c->timeout, c->trace ? stdout : NULL, ctx);
	else
		r = pop3client_open(&p, c->host, c->port, c->timeout, c->trace ? stdout : NULL);
	if (r == -1) {
		fprintf(stderr, "mailcli probe: %s\n", p.err);
		goto out;
	}
	printf("server:      %s://%s:%s (%s)\n", implicit ? "pop3s" : "pop3", c->host, c->port,
	    p.conn.peer);
	printf("greeting:    %s ", r == 0 ? "+OK" : "-ERR");
	clientconn_trace_line(stdout, "", p.greeting, strlen(p.greeting));
	if (r == 1)
		goto out;
	if (strchr(p.greeting, '<') != NULL && strchr(p.greeting, '@') != NULL)
		printf("  APOP:          offered (timestamp in the greeting)\n");
	if (implicit) {
		printf("TLS (implicit):\n");
		clientconn_print_tls(&p.conn, stdout, "  ");
	}
	if ((r = pop3client_capa(&p)) == -1) {
		fprintf(stderr, "mailcli probe: %s\n", p.err);
		goto out;
	}
	print_pop3_caps(&p);
	if (p.caps.stls && !implicit && c->tls != CLIENTCONF_TLS_OFF) {
		r = pop3client_stls(&p, ctx);
		if (r == -1) {
			printf("STLS:        failed: %s\n", p.err);
			goto out;
		}
		if (r == 1)
			printf("STLS:        refused: %s\n", p.status);
		else {
			printf("TLS (STLS):\n");
			clientconn_print_tls(&p.conn, stdout, "  ");
			printf("after STLS:\n");
			print_pop3_caps(&p);
		}
	}
	(void)pop3client_quit(&p);
	status = 0;
out:
	pop3client_close(&p);
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	return status;
}

int
probe_main(int argc, char **argv)
{
	struct clientconf c;
	const char *url = NULL, *rest;
	char err[600];
	bool implicit = false, smtp;
	int i, r;

	/* The protocol is known only once the URL is read. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			probe_usage(stdout);
			return 0;
		}
		if (strncmp(argv[i], "--", 2) != 0 && url == NULL)
			url = argv[i];
	}
	if (url == NULL) {
		probe_usage(stderr);
		return 2;
	}
	if (strncasecmp(url, "smtp://", 7) == 0 || strncasecmp(url, "smtps://", 8) == 0) {
		smtp = true;
		implicit = url[4] == 's' || url[4] == 'S';
	} else if (strncasecmp(url, "pop3://", 7) == 0 || strncasecmp(url, "pop3s://", 8) == 0) {
		smtp = false;
		implicit = url[4] == 's' || url[4] == 'S';
	} else {
		fprintf(stderr, "mailcli probe: '%s' is not smtp://, smtps://, pop3:// or pop3s://\n", url);
		return 2;
	}
	if (clientconf_init(&c, smtp ? CLIENTCONF_SMTP : CLIENTCONF_POP3, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli probe: %s\n", err);
		return 2;
	}
	c.tls = implicit ? CLIENTCONF_TLS_IMPLICIT : CLIENTCONF_TLS_OPPORTUNISTIC;
	rest = strstr(url, "://") + 3;
	if (clientconf_parse_server(rest, implicit ? (smtp ? "465" : "995") :
	    (smtp ? CLIENTCONF_SMTP_PORT : CLIENTCONF_POP3_PORT), c.host, sizeof(c.host),
	    c.port, sizeof(c.port)) == -1) {
		fprintf(stderr, "mailcli probe: bad server in '%s'\n", url);
		return 2;
	}
	/* A port in the URL stays whatever --tls says afterwards. */
	{
		const char *close = strrchr(rest, ']');
		c.port_explicit = strchr(close != NULL ? close : rest, ':') != NULL;
	}
	for (i = 1; i < argc; i++) {
		if (argv[i] == url)
			continue;
		if (strcmp(argv[i], "--server") == 0 || strncmp(argv[i], "--server=", 9) == 0 ||
		    strcmp(argv[i], "--user") == 0 || strncmp(argv[i], "--user=", 7) == 0) {
			fprintf(stderr, "mailcli probe: the server is given by the URL; probe never logs in\n");
			return 2;
		}
		r = clientconf_parse_arg(&c, argc, argv, &i, err, sizeof(err));
		if (r == -1) {
			fprintf(stderr, "mailcli probe: %s\n", err);
			return 2;
		}
		if (r == 0) {
			fprintf(stderr, "mailcli probe: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (implicit)
		c.tls = CLIENTCONF_TLS_IMPLICIT;
	return smtp ? probe_smtp(&c, implicit) : probe_pop3(&c, implicit);
}
