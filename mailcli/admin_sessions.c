/*
 * admin_sessions.c - `mailcli admin transcript list`: find sessions in the
 * session log without knowing their ids (a teacher looking for a student's
 * attempt), by account, client address, start time and a line typed in them.
 *
 * Owns: the options and the table; the query is store_session_list().
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailcli.h"
#include "numparse.h"
#include "store.h"

#define SESSIONS_LIMIT_MAX	100000

/*
 * A --since value: unix seconds, "YYYY-MM-DD", "YYYY-MM-DD HH:MM" (local
 * time), or an age: "90s", "30m", "2h", "7d". -1 when it is none of those.
 */
static int64_t
parse_since(const char *s, time_t now)
{
	static const struct { char unit; int64_t secs; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	struct tm tm;
	const char *end;
	uint64_t v;
	size_t n = strlen(s), i;

	if (numparse_u64z(s, INT64_MAX, &v) == NUMPARSE_OK)
		return (int64_t)v;
	for (i = 0; n > 1 && i < sizeof(units) / sizeof(units[0]); i++)
		if (s[n - 1] == units[i].unit &&
		    numparse_u64(s, n - 1, (uint64_t)now / (uint64_t)units[i].secs, &v) == NUMPARSE_OK)
			return (int64_t)now - (int64_t)v * units[i].secs;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL)
		return -1;
	if (*end != '\0' && ((end = strptime(end, " %H:%M", &tm)) == NULL || *end != '\0'))
		return -1;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

static void
print_session(void *arg, const struct store_session_info *si)
{
	char when[32], dur[32];
	struct tm tm;
	time_t t = (time_t)si->started;

	(*(size_t *)arg)++;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (si->ended == 0)
		snprintf(dur, sizeof(dur), "open");
	else
		snprintf(dur, sizeof(dur), "%llds", (long long)(si->ended - si->started));
	printf("%-19s  %-20s  %-8s  %-15s  %-10s  %6s  %s\n", when, si->id, si->proto,
	    si->client[0] ? si->client : "-", si->user[0] ? si->user : "-", dur,
	    si->ended == 0 ? "(still going on)" : si->outcome);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: mailcli admin transcript list [--user NAME] [--client ADDR] "
	    "[--since TIME] [--text TEXT] [--limit N]\n"
	    "Sessions newest first: start, id, protocol, client, account, duration, outcome.\n"
	    "  --user NAME     sessions NAME logged in to, or that delivered mail to NAME\n"
	    "  --client ADDR   sessions from this client address\n"
	    "  --since TIME    started at or after TIME: YYYY-MM-DD[ HH:MM], unix seconds,\n"
	    "                  or an age such as 30m, 2h, 7d\n"
	    "  --text TEXT     a line of the transcript contains TEXT\n"
	    "  --limit N       at most N sessions (default 50)\n"
	    "Then: mailcli admin transcript ID\n");
}

int
admin_transcript_list(struct store *st, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "client", required_argument, NULL, 'c' },
		{ "since", required_argument, NULL, 's' },
		{ "text", required_argument, NULL, 't' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct store_session_filter f = { NULL, NULL, 0, NULL, 50 };
	size_t count = 0;
	uint64_t v;
	int ch;

	optind = 0;	/* argv[0] is "list" */
	while ((ch = getopt_long(argc, argv, "+u:c:s:t:n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			f.account = optarg;
			break;
		case 'c':
			f.client = optarg;
			break;
		case 's':
			if ((f.since = parse_since(optarg, time(NULL))) < 0) {
				fprintf(stderr, "mailcli admin: --since takes YYYY-MM-DD[ HH:MM], "
				    "unix seconds or an age (30m, 2h, 7d), not '%s'\n", optarg);
				return 2;
			}
			break;
		case 't':
			f.text = optarg;
			break;
		case 'n':
			if (numparse_u64z(optarg, SESSIONS_LIMIT_MAX, &v) != NUMPARSE_OK || v == 0) {
				fprintf(stderr, "mailcli admin: --limit takes 1 to %d, not '%s'\n",
				    SESSIONS_LIMIT_MAX, optarg);
				return 2;
			}
			f.limit = (size_t)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	printf("%-19s  %-20s  %-8s  %-15s  %-10s  %6s  %s\n", "STARTED", "SESSION", "PROTO",
	    "CLIENT", "ACCOUNT", "TIME", "OUTCOME");
	if (store_session_list(st, &f, print_session, &count) == -1) {
		fprintf(stderr, "mailcli admin: %s\n", store_errmsg(st));
		return 1;
	}
	if (count == 0)
		printf("(no session matches)\n");
	return 0;
}
