/*
 * check_main.c - `mailcli check smtp://HOST:PORT | pop3://HOST:PORT`: grade
 * a server. Reads the options (connection ones through clientconf.c, so
 * --user, --tls, --cafile, --insecure and MAILCLI_PASSWORD mean what they
 * mean for every mailcli command), learns once what the server offers,
 * delivers the POP3 checks' test messages through --smtp, runs every
 * selected check with its own time limit, deletes the test messages, and
 * prints the report. Exit status: 0 no check failed, 1 some did (or the
 * server could not be reached), 2 usage error.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mailcli.h"

static const struct check_def *const smtp_tables[] = {
	check_smtp_table, check_smtp_data_table, NULL
};
static const struct check_def *const pop3_tables[] = {
	check_pop3_table, check_pop3_msg_table, NULL
};
static const struct check_def *const all_tables[] = {
	check_smtp_table, check_smtp_data_table, check_pop3_table, check_pop3_msg_table, NULL
};

static void
check_usage(FILE *out)
{
	fprintf(out,
	    "usage: mailcli check smtp://HOST[:PORT] [--from ADDR --to ADDR] [options]\n"
	    "       mailcli check pop3://HOST[:PORT] [--user NAME]\n"
	    "                     [--smtp smtp://HOST[:PORT] --from ADDR --to ADDR] [options]\n"
	    "       mailcli check --list\n\n"
	    "Grade an SMTP or POP3 server against the RFCs: one line per check (pass, fail,\n"
	    "warn, skip), with the dialog of every failure. smtps:// and pop3s:// use TLS\n"
	    "from the start. The password is read from MAILCLI_PASSWORD.\n\n"
	    "options:\n"
	    "  --from ADDR, --to ADDR  the envelope of the test messages (--to gets them)\n"
	    "  --user NAME            log in as NAME (SMTP AUTH, POP3)\n"
	    "  --smtp URL             POP3: deliver the test messages through this server\n"
	    "  --pop3 URL             SMTP: afterwards, delete the test messages from --to's\n"
	    "                         maildrop there (logging in as --user)\n"
	    "  --relay-ok             the server is meant to relay: an open relay is a warning\n"
	    "  --only ID,...          run only these checks (ids or prefixes like smtp.data)\n"
	    "  --list                 list the checks and exit\n"
	    "  --json                 print one JSON document instead of the report card\n"
	    "  --timeout SECONDS      time limit of each check (default %d)\n"
	    "  --tls off              never start TLS; --cafile FILE, --insecure as for send\n",
	    CHECK_TIMEOUT_DEFAULT);
}

/* "smtp://host:port" -> host, port, protocol; 0 or -1. */
static int
parse_url(const char *url, bool *smtp_r, bool *implicit_r, char *host, size_t hl,
    char *port, size_t pl)
{
	bool smtp;

	if (strncasecmp(url, "smtp://", 7) == 0 || strncasecmp(url, "smtps://", 8) == 0)
		smtp = true;
	else if (strncasecmp(url, "pop3://", 7) == 0 || strncasecmp(url, "pop3s://", 8) == 0)
		smtp = false;
	else
		return -1;
	*smtp_r = smtp;
	*implicit_r = url[4] == 's' || url[4] == 'S';
	return clientconf_parse_server(strstr(url, "://") + 3, *implicit_r ?
	    (smtp ? "465" : "995") : (smtp ? CLIENTCONF_SMTP_PORT : CLIENTCONF_POP3_PORT),
	    host, hl, port, pl);
}

static int
copy_opt(char *dst, size_t len, int argc, char **argv, int *i, const char *name)
{
	const char *v;
	size_t nl = strlen(name);

	if (strncmp(argv[*i], name, nl) == 0 && argv[*i][nl] == '=')
		v = argv[*i] + nl + 1;
	else if (*i + 1 < argc)
		v = argv[++*i];
	else {
		fprintf(stderr, "mailcli check: %s needs a value\n", name);
		return -1;
	}
	if (strlen(v) >= len || strpbrk(v, "\r\n<> ") != NULL) {
		fprintf(stderr, "mailcli check: bad value for %s\n", name);
		return -1;
	}
	snprintf(dst, len, "%s", v);
	return 0;
}

static bool
is_opt(const char *arg, const char *name)
{
	size_t nl = strlen(name);

	return strncmp(arg, name, nl) == 0 && (arg[nl] == '\0' || arg[nl] == '=');
}

static const struct check_def learn_def = { "learn", "what the server offers", "", NULL };

int
check_main(int argc, char **argv)
{
	static struct check_opts o;
	struct check_state st;
	struct check_report *rep;
	struct check_run lr;
	const struct check_def *const *tables;
	const char *url = NULL, *only = NULL;
	char err[600], smtp_url[300] = "", pop3_url[300] = "", target[400];
	bool json = false, list = false, simplicit;
	int i, r, status;
	size_t t, k;

	memset(&o, 0, sizeof(o));
	memset(&st, 0, sizeof(st));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			check_usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--list") == 0)
			list = true;
		if (strncmp(argv[i], "--", 2) != 0 && url == NULL && strstr(argv[i], "://") != NULL)
			url = argv[i];
	}
	if (list && url == NULL) {
		check_list_print(stdout, all_tables);
		return 0;
	}
	if (url == NULL || parse_url(url, &o.smtp, &o.implicit, o.cc.host, sizeof(o.cc.host),
	    o.cc.port, sizeof(o.cc.port)) == -1) {
		if (url != NULL)
			fprintf(stderr, "mailcli check: '%s' is not smtp://, smtps://, pop3:// or "
			    "pop3s://HOST[:PORT]\n", url);
		check_usage(stderr);
		return 2;
	}
	tables = o.smtp ? smtp_tables : pop3_tables;
	if (list) {
		check_list_print(stdout, tables);
		return 0;
	}
	{
		char host[256], port[16];

		snprintf(host, sizeof(host), "%s", o.cc.host);
		snprintf(port, sizeof(port), "%s", o.cc.port);
		if (clientconf_init(&o.cc, o.smtp ? CLIENTCONF_SMTP : CLIENTCONF_POP3, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "mailcli check: %s\n", err);
			return 2;
		}
		/* The target is the URL's, whatever the config file or environment say. */
		snprintf(o.cc.host, sizeof(o.cc.host), "%s", host);
		snprintf(o.cc.port, sizeof(o.cc.port), "%s", port);
	}
	o.cc.user[0] = '\0';	/* only --user logs in: a check never uses a configured login */
	o.cc.tls = o.implicit ? CLIENTCONF_TLS_IMPLICIT : CLIENTCONF_TLS_OPPORTUNISTIC;
	o.cc.timeout = CHECK_TIMEOUT_DEFAULT;
	for (i = 1; i < argc; i++) {
		if (argv[i] == url || strcmp(argv[i], "--list") == 0)
			continue;
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--relay-ok") == 0)
			o.relay_ok = true;
		else if (is_opt(argv[i], "--from")) {
			if (copy_opt(o.from, sizeof(o.from), argc, argv, &i, "--from") == -1)
				return 2;
		} else if (is_opt(argv[i], "--to")) {
			if (copy_opt(o.to, sizeof(o.to), argc, argv, &i, "--to") == -1)
				return 2;
		} else if (is_opt(argv[i], "--smtp")) {
			if (copy_opt(smtp_url, sizeof(smtp_url), argc, argv, &i, "--smtp") == -1)
				return 2;
		} else if (is_opt(argv[i], "--pop3")) {
			if (copy_opt(pop3_url, sizeof(pop3_url), argc, argv, &i, "--pop3") == -1)
				return 2;
		} else if (is_opt(argv[i], "--only")) {
			only = strchr(argv[i], '=') ? strchr(argv[i], '=') + 1 :
			    (i + 1 < argc ? argv[++i] : NULL);
			if (only == NULL || check_only_parse(only, tables, err, sizeof(err)) == -1) {
				fprintf(stderr, "mailcli check: %s\n", only ? err : "--only needs a list");
				return 2;
			}
		} else if (is_opt(argv[i], "--server") || strcmp(argv[i], "--trace") == 0 ||
		    strcmp(argv[i], "--trace-body") == 0) {
			fprintf(stderr, "mailcli check: %s does not apply (the URL names the server; "
			    "failures show their dialog)\n", argv[i]);
			return 2;
		} else {
			r = clientconf_parse_arg(&o.cc, argc, argv, &i, err, sizeof(err));
			if (r != 1) {
				fprintf(stderr, "mailcli check: %s\n", r == -1 ? err : "unknown option");
				if (r == 0)
					fprintf(stderr, "  (at '%s'; see mailcli check --help)\n", argv[i]);
				return 2;
			}
		}
	}
	o.timeout = o.cc.timeout;
	if (o.implicit && o.cc.tls == CLIENTCONF_TLS_OFF) {
		fprintf(stderr, "mailcli check: --tls off contradicts %s\n", url);
		return 2;
	}
	if (smtp_url[0] != '\0') {
		bool ssmtp;

		if (o.smtp || parse_url(smtp_url, &ssmtp, &simplicit, o.smtp_host,
		    sizeof(o.smtp_host), o.smtp_port, sizeof(o.smtp_port)) == -1 || !ssmtp ||
		    simplicit) {
			fprintf(stderr, "mailcli check: --smtp takes smtp://HOST[:PORT] and only "
			    "goes with a pop3:// target\n");
			return 2;
		}
		o.have_smtp = true;
		if (!o.from[0] || !o.to[0]) {
			fprintf(stderr, "mailcli check: --smtp needs --from and --to\n");
			return 2;
		}
	}
	if (pop3_url[0] != '\0') {
		bool psmtp, pimplicit;

		if (!o.smtp || parse_url(pop3_url, &psmtp, &pimplicit, o.pop3_host,
		    sizeof(o.pop3_host), o.pop3_port, sizeof(o.pop3_port)) == -1 || psmtp ||
		    pimplicit || !o.cc.user[0]) {
			fprintf(stderr, "mailcli check: --pop3 takes pop3://HOST[:PORT], goes with an "
			    "smtp:// target and needs --user\n");
			return 2;
		}
	}
	if (o.cc.user[0] != '\0') {
		if (clientconf_password(&o.cc, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailcli check: %s\n", err);
			return 2;
		}
		o.have_password = true;
	}
	if (o.cc.tls != CLIENTCONF_TLS_OFF && (o.tls = clientconf_tls_ctx(&o.cc, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "mailcli check: %s\n", err);
		return 2;
	}
	snprintf(o.runid, sizeof(o.runid), "%lx%05x", (unsigned long)time(NULL),
	    (unsigned)(getpid() ^ (rand() & 0xfffff)) & 0xfffff);
	snprintf(target, sizeof(target), "%s://%s:%s", o.smtp ? (o.implicit ? "smtps" : "smtp") :
	    (o.implicit ? "pop3s" : "pop3"), o.cc.host, o.cc.port);

	/* What the server offers, once. */
	memset(&lr, 0, sizeof(lr));
	lr.def = &learn_def;
	lr.o = &o;
	lr.st = &st;
	buf_init(&lr.why, 4096);
	lr.deadline = check_now_ms() + (int64_t)o.timeout * 1000 * 2;
	if ((o.smtp ? smtp_learn(&lr) : pop3_learn(&lr)) == -1) {
		fprintf(stderr, "mailcli check: %s: %s\n", target, lr.why.data ? lr.why.data :
		    "cannot connect");
		buf_free(&lr.why);
		status = 1;
		goto out;
	}
	buf_free(&lr.why);
	if (!o.smtp && o.have_smtp && o.have_password) {
		if (pop3_deliver_all(&o, err, sizeof(err)) == -1)
			fprintf(stderr, "mailcli check: delivering the test messages through %s "
			    "failed: %s (checks that need them are skipped)\n", smtp_url, err);
		else
			st.delivered = true;
	}
	rep = check_report_new(target);
	if (rep == NULL) {
		status = 1;
		goto out;
	}
	for (t = 0; tables[t] != NULL; t++)
		for (k = 0; tables[t][k].id != NULL; k++)
			if (check_only_wants(only, tables[t][k].id))
				check_run_one(rep, &tables[t][k], &o, &st);
	if (!o.smtp && st.delivered)
		pop3_cleanup(&o, stderr);
	if (o.smtp && o.pop3_host[0] != '\0') {
		static struct check_opts po;	/* the same run, seen from the POP3 server */

		po = o;
		snprintf(po.cc.host, sizeof(po.cc.host), "%s", o.pop3_host);
		snprintf(po.cc.port, sizeof(po.cc.port), "%s", o.pop3_port);
		po.implicit = false;
		po.smtp = false;
		pop3_cleanup(&po, stderr);
		explicit_bzero(&po.cc.password, sizeof(po.cc.password));
	}
	status = check_report_print(rep, json);
	check_report_free(&rep);
out:
	if (o.tls != NULL)
		SSL_CTX_free(o.tls);
	clientconf_free(&o.cc);
	return status;
}
