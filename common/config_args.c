/*
 * config_args.c - the command line smtpd, pop3d and webd share: -c FILE, --store
 * PATH|URI, --listen "ADDR:PORT [ROLE]" (repeatable), -v, -h. Applied over the
 * defaults and the file (config.c) in that order, and the usage text that
 * describes them; the daemons' main.c only acts on the result.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

void
config_daemon_usage(FILE *f, enum config_daemon which)
{
	static const struct { const char *name, *roles; } d[] = {
		[CONFIG_SMTPD] = { "smtpd", " [inbound|submission|smtps]" },
		[CONFIG_POP3D] = { "pop3d", " [pop3|pop3s]" },
		[CONFIG_WEBD] = { "webd", "" },
	};

	fprintf(f,
	    "usage: %s [-c FILE] [--store PATH|URI] [--listen ADDR:PORT%s]... [-v] [-h] [-V]\n"
	    "  -c, --config FILE   read FILE (correio.conf(5); default: built-in defaults)\n"
	    "      --store PATH    the SQLite store file (overrides [store] path or url)\n"
	    "      --store URI     a PostgreSQL store, postgresql://USER@HOST:PORT/DB\n"
	    "                      (overrides [store] path or url; the password comes\n"
	    "                      from a libpq passfile, never from the URI)\n"
	    "      --listen SPEC   \"ADDR:PORT%s\", repeatable;\n"
	    "                      replaces the [%s] listen lines\n"
	    "  -v, --verbose       debug logging (repeat for more)\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       print the version and exit\n",
	    d[which].name, which == CONFIG_WEBD ? "" : " [ROLE]", d[which].roles, d[which].name);
}

/* The usage callback: the text above unless the caller gave another. */
static void
print_usage(void (*usage)(FILE *), FILE *f, enum config_daemon which)
{
	if (usage != NULL)
		usage(f);
	else
		config_daemon_usage(f, which);
}

int
config_daemon_args(struct config *cfg, enum config_daemon which, int argc, char **argv,
    void (*usage)(FILE *), int *verbose_r, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "smtpd", "pop3d", "webd" };
	static const enum listen_role roles[] = { ROLE_INBOUND, ROLE_POP3, ROLE_HTTP };
	const char *name = names[which];
	enum listen_role defrole = roles[which];
	struct listen_spec listens[CONFIG_MAX_LISTEN], *dst;
	const char *file = NULL, *store = NULL;
	size_t nlisten = 0, *ndst;
	char why[256];
	int ch;

	config_defaults(cfg);
	*verbose_r = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 's':
			store = optarg;
			break;
		case 'l':
			if (nlisten == CONFIG_MAX_LISTEN) {
				snprintf(err, errlen, "at most %d --listen options", CONFIG_MAX_LISTEN);
				return -1;
			}
			if (config_parse_listen(optarg, defrole, &listens[nlisten], why,
			    sizeof(why)) == -1) {
				snprintf(err, errlen, "--listen %s: %s", optarg, why);
				return -1;
			}
			nlisten++;
			break;
		case 'v':
			(*verbose_r)++;
			break;
		case 'h':
			print_usage(usage, stdout, which);
			return 1;
		case 'V':
			printf("%s (correio) %s\n", name, CORREIO_VERSION);
			return 1;
		default:
			print_usage(usage, stderr, which);
			return 2;
		}
	}
	if (optind != argc) {
		print_usage(usage, stderr, which);
		return 2;
	}
	if (file != NULL && config_load(cfg, file, err, errlen) == -1)
		return -1;
	if (store != NULL && config_set_store(cfg, store, why, sizeof(why)) == -1) {
		char shown[256];

		snprintf(err, errlen, "--store %s: %s",
		    config_store_display(store, shown, sizeof(shown)), why);
		return -1;
	}
	dst = which == CONFIG_SMTPD ? cfg->smtp_listen :
	    which == CONFIG_POP3D ? cfg->pop3_listen : cfg->webd_listen;
	ndst = which == CONFIG_SMTPD ? &cfg->smtp_nlisten :
	    which == CONFIG_POP3D ? &cfg->pop3_nlisten : &cfg->webd_nlisten;
	if (nlisten > 0) {
		memcpy(dst, listens, nlisten * sizeof(listens[0]));
		*ndst = nlisten;
	}
	if (*ndst == 0) {
		snprintf(err, errlen, "no listen address: give --listen ADDR:PORT or [%s] listen", name);
		return -1;
	}
	return 0;
}
