/*
 * setup.c - mailcli setup-client ADDRESS: the settings a person types into
 * a mail client to use this server, and ready-to-paste mutt, msmtp and mpop
 * configuration. They come from the same place as webd's Thunderbird
 * autoconfig document (common/autoconfig.c over the server's config file),
 * so the two always agree.
 * Never: prints a password, or a server the config does not listen on.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "autoconfig.h"
#include "config.h"
#include "mailcli.h"

static const char *
people_tls(const char *socket)
{
	return strcmp(socket, "SSL") == 0 ? "SSL/TLS" : strcmp(socket, "STARTTLS") == 0 ?
	    "STARTTLS" : "none";
}

static void
msmtp_tls(const struct autoconfig_server *s)
{
	printf("tls %s\n", strcmp(s->socket, "plain") == 0 ? "off" : "on");
	if (strcmp(s->socket, "plain") != 0)
		printf("tls_starttls %s\n", strcmp(s->socket, "STARTTLS") == 0 ? "on" : "off");
}

static void
print_settings(const struct autoconfig *ac, const char *email, const char *local)
{
	const struct autoconfig_server *in = ac->nin ? &ac->in[0] : NULL;
	const struct autoconfig_server *out = ac->nout ? &ac->out[0] : NULL;
	size_t i;

	printf("Settings for %s\n\n", email);
	for (i = 0; i < ac->nin; i++)
		printf("  Incoming (POP3):  server %s, port %s, security %s, user name \"%s\", "
		    "normal password\n", ac->in[i].host, ac->in[i].port,
		    people_tls(ac->in[i].socket), local);
	for (i = 0; i < ac->nout; i++)
		printf("  Outgoing (SMTP):  server %s, port %s, security %s, user name \"%s\", "
		    "normal password\n", ac->out[i].host, ac->out[i].port,
		    people_tls(ac->out[i].socket), local);
	if (in == NULL || out == NULL)
		printf("\n  (the config has no %s listener)\n", in == NULL ? "POP3" : "SMTP");
	printf("\n# mutt: ~/.muttrc\nset from = \"%s\"\n", email);
	if (in != NULL)
		printf("set pop_user = \"%s\"\nset pop_host = \"%s://%s:%s\"\n", local,
		    strcmp(in->socket, "SSL") == 0 ? "pops" : "pop", in->host, in->port);
	if (out != NULL)
		printf("set smtp_url = \"%s://%s@%s:%s/\"\n", strcmp(out->socket, "SSL") == 0 ?
		    "smtps" : "smtp", local, out->host, out->port);
	if ((in != NULL && strcmp(in->socket, "STARTTLS") == 0) ||
	    (out != NULL && strcmp(out->socket, "STARTTLS") == 0))
		printf("set ssl_starttls = yes\nset ssl_force_tls = yes\n");
	if (out != NULL) {
		printf("\n# msmtp: ~/.msmtprc\naccount correio\nhost %s\nport %s\nfrom %s\n"
		    "auth on\nuser %s\n", out->host, out->port, email, local);
		msmtp_tls(out);
		printf("account default : correio\n");
	}
	if (in != NULL) {
		printf("\n# mpop: ~/.mpoprc\naccount correio\nhost %s\nport %s\nuser %s\n"
		    "auth user\n", in->host, in->port, local);
		msmtp_tls(in);
		printf("account default : correio\n");
	}
}

int
setup_client_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct config cfg;
	struct autoconfig ac;
	const char *conf = "/etc/correio/correio.conf", *at;
	char err[4096], local[256];
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'h':
			printf("usage: mailcli setup-client [-c FILE] ADDRESS\n"
			    "  the client settings for ADDRESS from the server's config FILE\n"
			    "  (default /etc/correio/correio.conf): for people, mutt, msmtp, mpop\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: mailcli setup-client [-c FILE] ADDRESS\n");
		return 2;
	}
	config_defaults(&cfg);
	if (config_load(&cfg, conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli setup-client: %s\n", err);
		return 1;
	}
	if (autoconfig_from_config(&cfg, argv[optind], &ac) == -1 ||
	    (at = strrchr(argv[optind], '@')) == NULL ||
	    (size_t)(at - argv[optind]) >= sizeof(local)) {
		fprintf(stderr, "mailcli setup-client: '%s' is not an address\n", argv[optind]);
		return 2;
	}
	memcpy(local, argv[optind], (size_t)(at - argv[optind]));
	local[at - argv[optind]] = '\0';
	print_settings(&ac, argv[optind], local);
	return 0;
}
