/*
 * main.c - mailcli's entry point: one table of subcommands, one lookup.
 * Every subcommand lives in its own file (see mailcli.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailcli.h"

struct subcommand {
	const char	*name;
	int		(*run)(int argc, char **argv);
	const char	*usage;
};

static const struct subcommand subcommands[] = {
	{ "compose", compose_main, "compose [options]            write a message to stdout or -o FILE" },
	{ "send",    send_main,    "send [options]               compose and send it over SMTP" },
	{ "probe",   probe_main,   "probe smtp://HOST:PORT|pop3://HOST:PORT   show what a server offers" },
	{ "inbox",   inbox_main,   "inbox                        list the messages in your POP3 mailbox" },
	{ "read",    read_main,    "read N [--tree]              show message N" },
	{ "save",    save_main,    "save N --dir DIR [--force]   save the attachments of message N" },
	{ "delete",  delete_main,  "delete N                     delete message N" },
	{ "fetch",   fetch_main,   "fetch --mbox FILE|--maildir DIR [--delete]   download everything" },
	{ "show",    show_main,    "show FILE.eml                print a message's MIME tree" },
	{ "extract", extract_main, "extract FILE.eml --dir DIR   extract a message's attachments" },
	{ "check",   check_main,   "check smtp://HOST:PORT|pop3://HOST:PORT [options]   grade a server" },
	{ "check-client", check_client_main, "check-client --listen ADDR:PORT --protocol smtp|pop3   grade a client" },
	{ "setup-client", setup_client_main, "setup-client [-c FILE] ADDRESS   client settings (people, mutt, msmtp, mpop)" },
	{ "admin",   admin_main,   "admin [-c FILE|--store PATH] user|domain|alias|queue|transcript ..." },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mailcli COMMAND [options]\n\ncommands:\n");
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  mailcli %s\n", subcommands[i].usage);
	fprintf(f, "\n'mailcli COMMAND --help' shows a command's options; see mailcli(1).\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("mailcli (correio) %s\n", CORREIO_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcasecmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mailcli: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
