/*
 * check_pop3.c - the POP3 server battery, part 1: the greeting, CAPA
 * (RFC 2449), USER/PASS and APOP (RFC 1939 7), the states (commands before
 * login), unknown and over-long commands, STAT, LIST, message numbers out of
 * range (0, negative, beyond the count, beyond 64 bits), NOOP, QUIT, UIDL and
 * its stability across sessions, the maildrop lock, and STLS (RFC 2595).
 * Also the helpers both POP3 files use: login, finding the test messages
 * ("X-Mailcli-Check: RUNID TAG") again, and deleting them at the end. Never
 * deletes a message it did not deliver.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "check.h"

#define POP3_SCAN_MAX	50	/* newest messages searched for ours */

static void
conn_init(struct clientconn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

int
pop3_start(struct check_run *r, struct clientconn *c)
{
	struct wire_reply rep;

	if (wire_open_target(r, c) == -1) {
		check_fail(r, "cannot connect: %s", c->err);
		return -1;
	}
	if (wire_pop3_status(r, c, &rep) != 1) {
		check_fail(r, "expected a +OK greeting, got: %s", rep.code == -1 ? rep.err : rep.text);
		return -1;
	}
	return 0;
}

static int pop3_try_login(struct check_run *r, struct clientconn *c, struct wire_reply *repp);

/*
 * The session before this one may have ended without QUIT a moment ago, and
 * the server may still hold its maildrop lock: -ERR [IN-USE] (RFC 2449 8.1.1)
 * is answered by trying again on a new connection, until the deadline.
 */
int
pop3_login(struct check_run *r, struct clientconn *c)
{
	struct wire_reply rep;
	int st;

	if (!r->o->cc.user[0] || !r->o->have_password) {
		check_skip(r, "needs --user and the password in MAILCLI_PASSWORD");
		return 1;
	}
	for (;;) {
		st = pop3_try_login(r, c, &rep);
		if (st != 2)
			return st;
		wire_close(c);
		if (check_left_ms(r) < 400) {
			check_fail(r, "the maildrop stayed locked: %s", rep.text);
			return -1;
		}
		if (r->trace != NULL)
			fprintf(r->trace, "   [the maildrop is still locked; trying again]\n");
		(void)poll(NULL, 0, 200);
	}
}

/* One login attempt: 0, -1 after a fail verdict, 2 when the maildrop is locked. */
static int
pop3_try_login(struct check_run *r, struct clientconn *c, struct wire_reply *repp)
{
	struct wire_reply rep;
	int st;

	if (pop3_start(r, c) == -1)
		return -1;
	if (r->st->stls && !r->o->implicit && r->o->tls != NULL) {
		if (wire_pop3(r, c, &rep, false, "STLS") != 1 || wire_starttls(r, c) == -1) {
			check_fail(r, "STLS before logging in failed: %s", rep.code == 1 ? c->err :
			    rep.text);
			return -1;
		}
	}
	st = wire_pop3(r, c, &rep, false, "USER %s", r->o->cc.user);
	if (st == 1)
		st = wire_pop3(r, c, &rep, true, "PASS %s", r->o->cc.password);
	*repp = rep;
	if (st == 0 && strstr(rep.text, "[IN-USE]") != NULL)
		return 2;
	if (st != 1) {
		check_fail(r, "USER/PASS with --user and its password should get +OK, got: %s",
		    rep.code == -1 ? rep.err : rep.text);
		return -1;
	}
	return 0;
}

/* Parse "+OK n m" or a LIST line "n m". */
static bool
two_numbers(const char *s, unsigned long *a, unsigned long long *b)
{
	char *e;

	if (*s < '0' || *s > '9')
		return false;
	*a = strtoul(s, &e, 10);
	if (*e != ' ')
		return false;
	s = e + 1;
	if (*s < '0' || *s > '9')
		return false;
	*b = strtoull(s, &e, 10);
	return *e == '\0' || *e == ' ';
}

/* The message count from STAT, or -1. */
static long
stat_count(struct check_run *r, struct clientconn *c)
{
	struct wire_reply rep;
	unsigned long n;
	unsigned long long sz;

	if (wire_pop3(r, c, &rep, false, "STAT") != 1 || !two_numbers(rep.text + 4, &n, &sz))
		return -1;
	return (long)n;
}

size_t
pop3_find_ours(struct check_run *r, struct clientconn *c, const char *tag,
    unsigned long *nums, size_t max)
{
	struct wire_reply rep;
	struct buf raw;
	char mark[128];
	long count = stat_count(r, c), i;
	size_t found = 0;
	FILE *t = r->trace;

	if (count <= 0)
		return 0;
	snprintf(mark, sizeof(mark), "X-Mailcli-Check: %s %s", r->o->runid, tag ? tag : "");
	buf_init(&raw, 64 * 1024 * 1024);
	r->trace = c->trace = NULL;	/* the search is not part of any dialog */
	for (i = count; i >= 1 && i > count - POP3_SCAN_MAX && found < max; i--) {
		buf_reset(&raw);
		if (wire_pop3(r, c, &rep, false, r->st->top ? "TOP %ld 0" : "RETR %ld", i) != 1)
			continue;
		if (wire_pop3_multi(r, c, &raw) == -1)
			break;
		if (raw.data != NULL && strstr(raw.data, mark) != NULL)
			nums[found++] = (unsigned long)i;
	}
	r->trace = c->trace = t;
	buf_free(&raw);
	return found;
}

void
pop3_cleanup(const struct check_opts *o, FILE *note)
{
	static const struct check_def def = { "cleanup", "", "", NULL };
	struct check_state st;
	struct check_run r;
	struct clientconn c;
	struct wire_reply rep;
	unsigned long nums[POP3_SCAN_MAX];
	size_t n, i;

	memset(&r, 0, sizeof(r));
	memset(&st, 0, sizeof(st));
	conn_init(&c);
	r.def = &def;
	r.o = o;
	r.st = &st;
	buf_init(&r.why, 4096);
	r.deadline = check_now_ms() + (int64_t)o->timeout * 1000 * 3;
	if (pop3_learn(&r) == -1)	/* STLS before the login when offered */
		st.top = true;
	if (pop3_login(&r, &c) == 0) {
		n = pop3_find_ours(&r, &c, NULL, nums, POP3_SCAN_MAX);
		for (i = 0; i < n; i++)
			(void)wire_pop3(&r, &c, &rep, false, "DELE %lu", nums[i]);
		if (wire_pop3(&r, &c, &rep, false, "QUIT") != 1 && note != NULL)
			fprintf(note, "mailcli check: could not delete the test messages: %s\n",
			    rep.code ? rep.text : rep.err);
	} else if (note != NULL)
		fprintf(note, "mailcli check: could not log in to delete the test messages: %s\n",
		    r.why.data ? r.why.data : "");
	wire_close(&c);
	buf_free(&r.why);
}

int
pop3_learn(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	struct buf raw;
	const char *lt, *gt;
	char *p, *e;

	conn_init(&c);
	buf_init(&raw, 1 << 20);
	if (wire_open_target(r, &c) == -1) {
		check_fail(r, "cannot connect: %s", c.err);
		buf_free(&raw);
		return -1;
	}
	r->st->connected = true;
	if (wire_pop3_status(r, &c, &rep) == 1) {
		lt = strchr(rep.text, '<');
		gt = lt ? strchr(lt, '>') : NULL;
		if (gt != NULL && memchr(lt, '@', (size_t)(gt - lt)) != NULL)
			snprintf(r->st->apop_stamp, sizeof(r->st->apop_stamp), "%.*s",
			    (int)(gt - lt + 1), lt);
		if (wire_pop3(r, &c, &rep, false, "CAPA") == 1 && wire_pop3_multi(r, &c, &raw) == 0) {
			r->st->capa = true;
			for (p = raw.data; p != NULL && *p != '\0'; p = e ? e + 1 : NULL) {
				e = strchr(p, '\n');
				if (strncasecmp(p, "STLS", 4) == 0)
					r->st->stls = true;
				else if (strncasecmp(p, "TOP", 3) == 0)
					r->st->top = true;
				else if (strncasecmp(p, "UIDL", 4) == 0)
					r->st->uidl = true;
				else if (strncasecmp(p, "USER", 4) == 0)
					r->st->user = true;
			}
		} else
			r->st->top = r->st->uidl = true;	/* no CAPA: try them */
		(void)wire_pop3(r, &c, &rep, false, "QUIT");
	}
	wire_close(&c);
	buf_free(&raw);
	return 0;
}

/* ---- the checks ---- */

static void
c_greeting(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	conn_init(&c);
	if (wire_open_target(r, &c) == -1)
		check_fail(r, "cannot connect: %s", c.err);
	else if (wire_pop3_status(r, &c, &rep) != 1)
		check_fail(r, "expected a +OK greeting, got: %s", rep.code == -1 ? rep.err : rep.text);
	else if (!rep.crlf)
		check_fail(r, "the greeting must end in CRLF");
	else
		check_pass(r);
	wire_close(&c);
}

static void
c_capa(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	struct buf raw;
	int st;

	conn_init(&c);
	buf_init(&raw, 1 << 20);
	if (pop3_start(r, &c) == 0) {
		st = wire_pop3(r, &c, &rep, false, "CAPA");
		if (st == 0)
			check_warn(r, "no CAPA: clients cannot learn what the server supports");
		else if (st != 1)
			check_fail(r, "expected +OK or -ERR to CAPA, got: %s", rep.err);
		else if (wire_pop3_multi(r, &c, &raw) == -1)
			check_fail(r, "the CAPA list did not end with a \".\" line: %s", c.err);
		else if (raw.data == NULL || strstr(raw.data, "\n\n") != NULL)
			check_fail(r, "CAPA listed nothing, or an empty line");
		else if (wire_pop3(r, &c, &rep, false, "QUIT") != 1)
			check_fail(r, "QUIT after CAPA should get +OK, got: %s", rep.text);
		else
			check_pass(r);
	}
	buf_free(&raw);
	wire_close(&c);
}

/* Scripted sessions: each step a command and whether +OK (1) or -ERR (0) is
 * expected. login: log in first. */
struct step {
	const char *cmd;	/* "%N" = one more than the message count */
	int	 want;
};

static void
run_steps(struct check_run *r, bool login, const struct step *steps)
{
	struct clientconn c;
	struct wire_reply rep;
	char cmd[300];
	const char *pct;
	long count = 0;
	size_t i;
	int st;

	conn_init(&c);
	if (login ? pop3_login(r, &c) != 0 : pop3_start(r, &c) != 0)
		goto out;
	if (login && (count = stat_count(r, &c)) < 0) {
		check_fail(r, "STAT should get \"+OK count size\"");
		goto out;
	}
	for (i = 0; steps[i].cmd != NULL; i++) {
		pct = strstr(steps[i].cmd, "%N");
		if (pct != NULL)
			snprintf(cmd, sizeof(cmd), "%.*s%ld%s", (int)(pct - steps[i].cmd), steps[i].cmd,
			    count + 1, pct + 2);
		else
			snprintf(cmd, sizeof(cmd), "%s", steps[i].cmd);
		st = wire_pop3(r, &c, &rep, false, "%s", cmd);
		if (st != steps[i].want) {
			check_fail(r, "expected %s to '%.60s', got: %s", steps[i].want ? "+OK" : "-ERR",
			    cmd, st == -1 ? rep.err : rep.text);
			goto out;
		}
	}
	check_pass(r);
out:
	wire_close(&c);
}

#define STEPS(name, login, ...)						\
static void								\
name(struct check_run *r)						\
{									\
	static const struct step s[] = { __VA_ARGS__, { NULL, 0 } };	\
	run_steps(r, login, s);						\
}

STEPS(c_unknown, false, { "FROB", 0 }, { "XYZZY plugh", 0 }, { "QUIT", 1 })
STEPS(c_pass_first, false, { "PASS secret", 0 }, { "QUIT", 1 })
STEPS(c_before_login, false, { "STAT", 0 }, { "LIST", 0 }, { "RETR 1", 0 }, { "DELE 1", 0 },
    { "QUIT", 1 })
STEPS(c_noop, true, { "NOOP", 1 }, { "QUIT", 1 })
STEPS(c_zero, true, { "LIST 0", 0 }, { "RETR 0", 0 }, { "DELE 0", 0 }, { "NOOP", 1 },
    { "RSET", 1 })
STEPS(c_negative, true, { "LIST -1", 0 }, { "RETR -1", 0 }, { "DELE -1", 0 }, { "NOOP", 1 },
    { "RSET", 1 })
STEPS(c_beyond, true, { "LIST %N", 0 }, { "RETR %N", 0 }, { "DELE %N", 0 }, { "NOOP", 1 },
    { "RSET", 1 })
STEPS(c_huge, true, { "LIST 18446744073709551617", 0 }, { "RETR 18446744073709551617", 0 },
    { "DELE 99999999999999999999999999", 0 }, { "LIST 4294967297", 0 }, { "NOOP", 1 },
    { "RSET", 1 })

static void
c_case(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	conn_init(&c);
	if (!r->o->cc.user[0] || !r->o->have_password)
		check_skip(r, "needs --user and the password in MAILCLI_PASSWORD");
	else if (pop3_start(r, &c) == 0) {
		if (r->st->stls && !r->o->implicit && r->o->tls != NULL &&
		    (wire_pop3(r, &c, &rep, false, "stls") != 1 || wire_starttls(r, &c) == -1))
			check_fail(r, "\"stls\" in lower case should work: %s", rep.text);
		else if (wire_pop3(r, &c, &rep, false, "user %s", r->o->cc.user) != 1 ||
		    wire_pop3(r, &c, &rep, true, "pAsS %s", r->o->cc.password) != 1 ||
		    wire_pop3(r, &c, &rep, false, "stat") != 1 ||
		    wire_pop3(r, &c, &rep, false, "Noop") != 1 ||
		    wire_pop3(r, &c, &rep, false, "quit") != 1)
			check_fail(r, "commands in lower or mixed case should work, got: %s",
			    rep.code == -1 ? rep.err : rep.text);
		else
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_login(struct check_run *r)
{
	struct clientconn c;

	conn_init(&c);
	if (pop3_login(r, &c) == 0)
		check_pass(r);
	wire_close(&c);
}

static void
c_bad_pass(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	int st;

	conn_init(&c);
	if (pop3_start(r, &c) == 0) {
		st = wire_pop3(r, &c, &rep, false, "USER %s", r->o->cc.user[0] ? r->o->cc.user :
		    "mailcli-check");
		if (st == 1)
			st = wire_pop3(r, &c, &rep, true, "PASS mailcli-check-wrong-password");
		if (st == 0)
			check_pass(r);
		else if (st == -1 && strstr(rep.err, "time limit") != NULL)
			check_warn(r, "no answer to a wrong password within %d s: the server delays "
			    "failed logins (allowed; rerun with a larger --timeout)", r->o->timeout);
		else
			check_fail(r, "a wrong password should get -ERR, got: %s",
			    st == -1 ? rep.err : rep.text);
	}
	wire_close(&c);
}

static void
c_apop(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char hex[2 * EVP_MAX_MD_SIZE + 1], in[600];
	int st;

	conn_init(&c);
	if (!r->st->apop_stamp[0]) {
		check_skip(r, "the greeting has no APOP timestamp");
		return;
	}
	if (!r->o->cc.user[0] || !r->o->have_password) {
		check_skip(r, "needs --user and the password in MAILCLI_PASSWORD");
		return;
	}
	if (wire_open_target(r, &c) == -1)
		check_fail(r, "cannot connect: %s", c.err);
	else if (wire_pop3_status(r, &c, &rep) != 1)
		check_fail(r, "expected a +OK greeting, got: %s", rep.code == -1 ? rep.err : rep.text);
	else if (strchr(rep.text, '<') == NULL || strchr(strchr(rep.text, '<'), '>') == NULL)
		check_fail(r, "this greeting has no timestamp, the first one had: %s", rep.text);
	else {
		/* The stamp of this connection's own greeting. */
		const char *lt = strchr(rep.text, '<'), *gt = strchr(lt, '>');

		snprintf(in, sizeof(in), "%.*s%s", (int)(gt - lt + 1), lt, r->o->cc.password);
		EVP_Digest(in, strlen(in), md, &mdlen, EVP_md5(), NULL);
		explicit_bzero(in, sizeof(in));
		for (i = 0; i < mdlen; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		st = wire_pop3(r, &c, &rep, true, "APOP %s %s", r->o->cc.user, hex);
		if (st == 1)
			check_pass(r);
		else
			check_fail(r, "APOP with the greeting's timestamp and the password should get "
			    "+OK, got: %s", st == -1 ? rep.err : rep.text);
	}
	wire_close(&c);
}

static void
c_stat(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned long n;
	unsigned long long sz;

	conn_init(&c);
	if (pop3_login(r, &c) == 0) {
		if (wire_pop3(r, &c, &rep, false, "STAT") != 1 || strncmp(rep.text, "+OK ", 4) != 0 ||
		    !two_numbers(rep.text + 4, &n, &sz))
			check_fail(r, "STAT should get exactly \"+OK count octets\", got: %s",
			    rep.code == -1 ? rep.err : rep.text);
		else
			check_pass(r);
	}
	wire_close(&c);
}

/* LIST (or UIDL when uidl) of the session: parallel arrays. Returns the count, or -1. */
static long
scan_listing(struct check_run *r, struct clientconn *c, bool uidl, unsigned long long *sizes,
    char (*uids)[72], long max)
{
	struct wire_reply rep;
	struct buf raw;
	char *p, *e, *sp;
	unsigned long num;
	unsigned long long sz;
	long n = 0;

	buf_init(&raw, 16 * 1024 * 1024);
	if (wire_pop3(r, c, &rep, false, uidl ? "UIDL" : "LIST") != 1 ||
	    wire_pop3_multi(r, c, &raw) == -1) {
		buf_free(&raw);
		return -1;
	}
	for (p = raw.data; p != NULL && *p != '\0'; p = e + 1) {
		e = strchr(p, '\n');
		if (e == NULL)
			break;
		*e = '\0';
		if (e > p && e[-1] == '\r')
			e[-1] = '\0';
		if (uidl) {
			num = strtoul(p, &sp, 10);
			if (*sp != ' ' || n >= max || num != (unsigned long)n + 1) {
				n = -2;
				break;
			}
			snprintf(uids[n++], 72, "%s", sp + 1);
		} else {
			if (!two_numbers(p, &num, &sz) || n >= max || num != (unsigned long)n + 1) {
				n = -2;
				break;
			}
			sizes[n++] = sz;
		}
	}
	buf_free(&raw);
	return n;
}

#define LIST_MAX	4096

static void
c_list(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	unsigned long long *sizes = calloc(LIST_MAX, sizeof(*sizes)), total = 0, sz;
	unsigned long n;
	long count, i;

	conn_init(&c);
	if (sizes != NULL && pop3_login(r, &c) == 0) {
		if (wire_pop3(r, &c, &rep, false, "STAT") != 1 || !two_numbers(rep.text + 4, &n, &sz)) {
			check_fail(r, "STAT should get \"+OK count octets\"");
			goto out;
		}
		count = scan_listing(r, &c, false, sizes, NULL, LIST_MAX);
		if (count < 0) {
			check_fail(r, "LIST should get +OK and one \"number octets\" line per message, "
			    "numbered from 1, then \".\"");
			goto out;
		}
		for (i = 0; i < count; i++)
			total += sizes[i];
		if ((unsigned long)count != n || total != sz) {
			check_fail(r, "LIST shows %ld messages, %llu octets; STAT said %lu, %llu",
			    count, total, n, sz);
			goto out;
		}
		for (i = 0; i < count && i < 5; i++) {
			unsigned long m;
			unsigned long long s2;

			if (wire_pop3(r, &c, &rep, false, "LIST %ld", i + 1) != 1 ||
			    !two_numbers(rep.text + 4, &m, &s2) || m != (unsigned long)i + 1 ||
			    s2 != sizes[i]) {
				check_fail(r, "LIST %ld should get \"+OK %ld %llu\" as in the listing, "
				    "got: %s", i + 1, i + 1, sizes[i], rep.code == -1 ? rep.err : rep.text);
				goto out;
			}
		}
		check_pass(r);
	}
out:
	free(sizes);
	wire_close(&c);
}

static bool
valid_uid(const char *u)
{
	size_t n = strlen(u), i;

	if (n < 1 || n > 70)
		return false;
	for (i = 0; i < n; i++)
		if (u[i] < 0x21 || u[i] > 0x7e)
			return false;
	return true;
}

/* One session's UIDL listing into uids; count or -1 after a verdict. */
static long
uidl_session(struct check_run *r, char (*uids)[72])
{
	struct clientconn c;
	struct wire_reply rep;
	long n = -1, i, j;

	conn_init(&c);
	if (pop3_login(r, &c) != 0)
		goto out;
	n = scan_listing(r, &c, true, NULL, uids, LIST_MAX);
	if (n == -1) {
		check_fail(r, "UIDL should get +OK and \"number uid\" lines (CAPA lists UIDL)");
		goto out;
	}
	if (n < 0) {
		check_fail(r, "UIDL lines must be \"number uid\", numbered from 1");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!valid_uid(uids[i])) {
			check_fail(r, "uid of message %ld is not 1-70 printable characters: '%s'",
			    i + 1, uids[i]);
			n = -1;
			goto out;
		}
		for (j = 0; j < i; j++)
			if (strcmp(uids[i], uids[j]) == 0) {
				check_fail(r, "messages %ld and %ld have the same uid '%s'", j + 1, i + 1,
				    uids[i]);
				n = -1;
				goto out;
			}
	}
	if (n > 0 && (wire_pop3(r, &c, &rep, false, "UIDL %ld", n) != 1 ||
	    strstr(rep.text, uids[n - 1]) == NULL)) {
		check_fail(r, "UIDL %ld should get \"+OK %ld %s\", got: %s", n, n, uids[n - 1],
		    rep.code == -1 ? rep.err : rep.text);
		n = -1;
		goto out;
	}
	(void)wire_pop3(r, &c, &rep, false, "QUIT");
out:
	wire_close(&c);
	return n;
}

static void
c_uidl(struct check_run *r)
{
	char (*uids)[72] = calloc(LIST_MAX, 72);

	if (!r->st->uidl)
		check_skip(r, "the server does not offer UIDL");
	else if (uids != NULL && uidl_session(r, uids) >= 0)
		check_pass(r);
	free(uids);
}

static void
c_uidl_stable(struct check_run *r)
{
	char (*a)[72] = calloc(LIST_MAX, 72), (*b)[72] = calloc(LIST_MAX, 72);
	long n1, n2, i;

	if (!r->st->uidl)
		check_skip(r, "the server does not offer UIDL");
	else if (a != NULL && b != NULL && (n1 = uidl_session(r, a)) >= 0 &&
	    (n2 = uidl_session(r, b)) >= 0) {
		if (n1 == 0)
			check_skip(r, "the maildrop is empty (give --smtp to deliver test messages)");
		else if (n1 != n2)
			check_skip(r, "the maildrop changed between the two sessions");
		else {
			for (i = 0; i < n1; i++)
				if (strcmp(a[i], b[i]) != 0) {
					check_fail(r, "message %ld had uid '%s', and '%s' in the next session: "
					    "a uid must never change", i + 1, a[i], b[i]);
					break;
				}
			if (i == n1)
				check_pass(r);
		}
	}
	free(a);
	free(b);
}

static void
c_quit_auth(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	conn_init(&c);
	if (pop3_start(r, &c) == 0) {
		if (wire_pop3(r, &c, &rep, false, "QUIT") != 1)
			check_fail(r, "QUIT should get +OK, got: %s", rep.code == -1 ? rep.err : rep.text);
		else if (!wire_closed(r, &c))
			check_fail(r, "the server should close the connection after QUIT");
		else
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_quit_trans(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;

	conn_init(&c);
	if (pop3_login(r, &c) == 0) {
		if (wire_pop3(r, &c, &rep, false, "QUIT") != 1)
			check_fail(r, "QUIT should get +OK, got: %s", rep.code == -1 ? rep.err : rep.text);
		else if (!wire_closed(r, &c))
			check_fail(r, "the server should close the connection after QUIT");
		else
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_too_long(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	char line[1200];
	int st;

	conn_init(&c);
	memcpy(line, "USER ", 5);
	memset(line + 5, 'u', 1000);
	memcpy(line + 1005, "\r\n", 2);
	if (pop3_start(r, &c) == 0 && wire_send(r, &c, line, 1007) == 0) {
		st = wire_pop3_status(r, &c, &rep);
		if (st != 0)
			check_fail(r, "a 1005-octet command (RFC 2449: 255 octets at most) should get "
			    "-ERR, got: %s", st == -1 ? rep.err : rep.text);
		else if (!wire_quiet(r, &c, CHECK_QUIET_MS))
			check_fail(r, "one long line got more than one answer");
		else if (wire_pop3(r, &c, &rep, false, "QUIT") != 1)
			check_fail(r, "after the long line, QUIT should get +OK");
		else
			check_pass(r);
	}
	wire_close(&c);
}

static void
c_lock(struct check_run *r)
{
	struct clientconn a, b;
	struct wire_reply rep;
	int st;

	conn_init(&a);
	conn_init(&b);
	if (pop3_login(r, &a) == 0 && pop3_start(r, &b) == 0) {
		if (r->st->stls && !r->o->implicit && r->o->tls != NULL &&
		    (wire_pop3(r, &b, &rep, false, "STLS") != 1 || wire_starttls(r, &b) == -1)) {
			check_fail(r, "STLS failed on the second connection");
			goto out;
		}
		st = wire_pop3(r, &b, &rep, false, "USER %s", r->o->cc.user);
		if (st == 1)
			st = wire_pop3(r, &b, &rep, true, "PASS %s", r->o->cc.password);
		if (st == 0)
			check_pass(r);
		else if (st == 1)
			check_warn(r, "a second session got the same maildrop while the first was open: "
			    "RFC 1939 4/8 expects an exclusive lock (-ERR [IN-USE])");
		else
			check_fail(r, "no answer to the second login: %s", rep.err);
		(void)wire_pop3(r, &b, &rep, false, "QUIT");
		(void)wire_pop3(r, &a, &rep, false, "QUIT");
	}
out:
	wire_close(&b);
	wire_close(&a);
}

static void
c_stls(struct check_run *r)
{
	struct clientconn c;
	struct wire_reply rep;
	struct buf raw;

	conn_init(&c);
	buf_init(&raw, 1 << 20);
	if (r->o->implicit)
		check_skip(r, "the connection is TLS from the start");
	else if (!r->st->stls)
		check_skip(r, "the server does not offer STLS");
	else if (r->o->tls == NULL)
		check_skip(r, "--tls off");
	else if (pop3_start(r, &c) == 0) {
		if (wire_pop3(r, &c, &rep, false, "STLS") != 1)
			check_fail(r, "STLS should get +OK, got: %s", rep.code == -1 ? rep.err : rep.text);
		else if (wire_starttls(r, &c) == -1)
			check_fail(r, "the TLS handshake failed: %s", c.err);
		else if (wire_pop3(r, &c, &rep, false, "CAPA") != 1 ||
		    wire_pop3_multi(r, &c, &raw) == -1)
			check_fail(r, "CAPA inside TLS should work");
		else if (raw.data != NULL && strcasestr(raw.data, "STLS") != NULL)
			check_fail(r, "CAPA inside TLS must not list STLS (RFC 2595 4)");
		else if (wire_pop3(r, &c, &rep, false, "STLS") != 0)
			check_fail(r, "STLS inside TLS should get -ERR, got: %s",
			    rep.code == -1 ? rep.err : rep.text);
		else
			check_pass(r);
	}
	buf_free(&raw);
	wire_close(&c);
}

static void
c_stls_injection(struct check_run *r)
{
	static const char inj[] = "STLS\r\nNOOP\r\n";
	struct clientconn c;
	struct wire_reply rep;

	conn_init(&c);
	if (r->o->implicit || !r->st->stls || r->o->tls == NULL)
		check_skip(r, "STLS is not offered (or TLS is off or implicit)");
	else if (pop3_start(r, &c) == 0 && wire_send(r, &c, inj, sizeof(inj) - 1) == 0) {
		if (wire_pop3_status(r, &c, &rep) != 1)
			check_fail(r, "STLS should get +OK, got: %s", rep.code == -1 ? rep.err : rep.text);
		else if (wire_starttls(r, &c) == -1)
			check_fail(r, "the TLS handshake failed (did the server answer the plaintext "
			    "NOOP?): %s", c.err);
		else if (wire_pop3(r, &c, &rep, false, "QUIT") != 1)
			check_fail(r, "QUIT inside TLS should get +OK as the first answer, got: %s",
			    rep.code == -1 ? rep.err : rep.text);
		else
			check_pass(r);
	}
	wire_close(&c);
}

const struct check_def check_pop3_table[] = {
	{ "pop3.greeting.ok", "the server greets with +OK", "RFC 1939 4", c_greeting },
	{ "pop3.capa.list", "CAPA lists capabilities, ending with \".\"", "RFC 2449 5", c_capa },
	{ "pop3.verb.unknown", "an unknown command gets -ERR, the session goes on", "RFC 1939 3",
	    c_unknown },
	{ "pop3.verb.case", "commands are case-insensitive", "RFC 1939 3", c_case },
	{ "pop3.cmd.too-long", "an over-long command gets one -ERR", "RFC 2449 4", c_too_long },
	{ "pop3.auth.user-pass", "USER and PASS log in", "RFC 1939 7", c_login },
	{ "pop3.auth.bad-password", "a wrong password gets -ERR", "RFC 1939 7", c_bad_pass },
	{ "pop3.auth.pass-first", "PASS before USER gets -ERR", "RFC 1939 7", c_pass_first },
	{ "pop3.auth.apop", "APOP with the greeting's timestamp logs in", "RFC 1939 7", c_apop },
	{ "pop3.state.before-login", "STAT, LIST, RETR, DELE before login get -ERR", "RFC 1939 4",
	    c_before_login },
	{ "pop3.stat.format", "STAT gets \"+OK count octets\"", "RFC 1939 5", c_stat },
	{ "pop3.list.scan", "LIST and LIST n agree with each other and with STAT", "RFC 1939 5",
	    c_list },
	{ "pop3.msgnum.zero", "message number 0 gets -ERR", "RFC 1939 5", c_zero },
	{ "pop3.msgnum.negative", "a negative message number gets -ERR", "RFC 1939 5",
	    c_negative },
	{ "pop3.msgnum.beyond", "a number beyond the count gets -ERR", "RFC 1939 5", c_beyond },
	{ "pop3.msgnum.huge", "numbers beyond 32 and 64 bits get -ERR", "RFC 1939 5", c_huge },
	{ "pop3.noop.reply", "NOOP gets +OK", "RFC 1939 5", c_noop },
	{ "pop3.uidl.format", "UIDL: unique ids of 1-70 printable characters; UIDL n agrees",
	    "RFC 1939 7", c_uidl },
	{ "pop3.uidl.stable", "UIDLs are the same in the next session", "RFC 1939 7",
	    c_uidl_stable },
	{ "pop3.lock.exclusive", "a second session on the same maildrop is refused",
	    "RFC 1939 4, 8", c_lock },
	{ "pop3.quit.authorization", "QUIT before login gets +OK and closes", "RFC 1939 4",
	    c_quit_auth },
	{ "pop3.quit.transaction", "QUIT after login gets +OK and closes", "RFC 1939 6",
	    c_quit_trans },
	{ "pop3.stls.handshake", "STLS gets +OK, TLS starts, not offered again", "RFC 2595 4",
	    c_stls },
	{ "pop3.stls.injection", "plaintext sent after STLS is discarded", "RFC 2595 4",
	    c_stls_injection },
	{ NULL, NULL, NULL, NULL }
};
