/*
 * admin.c - `mailcli admin`: accounts, domains, aliases, local delivery,
 * the outbound queue and session transcripts, working directly on the store
 * (no daemon needed). One table of {object, verb} -> handler.
 *
 * Passwords come from a prompt with echo off on /dev/tty, or from the first
 * line of standard input with --password-stdin; never from argv, never
 * printed. Exit status: 0 ok, 1 failure (message on stderr), 2 usage.
 * `deliver` is a local delivery agent (like dovecot-lda): it reads a message
 * on standard input, turns bare LF into CRLF (RFC 5322 2.3) and stores it
 * for the given accounts in one transaction.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "mailaddr.h"
#include "mailcli.h"
#include "numparse.h"
#include "store.h"
#include "store_copy.h"
#include "webtoken.h"

#define ADMIN_PASSWORD_MAX	1024	/* longest password we read */

struct admin {
	struct config	 cfg;
	struct store	*st;
	const char	*store_path;
};

struct admin_cmd {
	const char	*object;
	const char	*verb;		/* NULL: the object alone (transcript ID) */
	int		 min_args, max_args;	/* after object and verb; -1 = any */
	int		(*run)(struct admin *a, int argc, char **argv);
	const char	*usage;
	bool		 creates;	/* may create the store (it adds); else it must exist */
};

static void
admin_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
admin_err(const char *fmt, ...)
{
	va_list ap;

	fputs("mailcli admin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- validation ----------------------------------------------------------- */

/* Account names: what USER and AUTH carry. Letters, digits, . _ -. */
static bool
valid_account(const char *s)
{
	size_t n = 0;

	if (!isalnum((unsigned char)*s))
		return false;
	for (; *s; s++, n++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return false;
	return n <= STORE_NAME_MAX;
}

/* A local part as an alias takes it: printable, no spaces, no '@'. */
static bool
valid_local(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '@' ||
		    s[i] == '<' || s[i] == '>' || s[i] == '"' || s[i] == ',')
			return false;
	return true;
}

static void
lowercase(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* ---- passwords ------------------------------------------------------------ */

static struct termios saved_tty;
static volatile sig_atomic_t tty_fd = -1;

static void
restore_tty(int sig)
{
	if (tty_fd != -1)
		tcsetattr(tty_fd, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read one line into buf without its line ending. 0, or -1 at EOF/error. */
static int
read_line_fd(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;
	char c;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (c == '\n')
			break;
		if (n + 1 >= len)
			return -1;
		buf[n++] = c;
	}
	if (r <= 0 && n == 0)
		return -1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 0;
}

static int
prompt_tty(int fd, const char *prompt, char *buf, size_t len)
{
	struct termios t;
	int rc;

	if (tcgetattr(fd, &saved_tty) == -1)
		return -1;
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	t.c_lflag |= ICANON;
	tty_fd = fd;
	signal(SIGINT, restore_tty);
	signal(SIGTERM, restore_tty);
	signal(SIGHUP, restore_tty);
	/* Echo off before the prompt shows, so that nothing typed is seen. */
	if (tcsetattr(fd, TCSAFLUSH, &t) == -1 || write(fd, prompt, strlen(prompt)) < 0) {
		tcsetattr(fd, TCSAFLUSH, &saved_tty);
		tty_fd = -1;
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		return -1;
	}
	rc = read_line_fd(fd, buf, len);
	tcsetattr(fd, TCSAFLUSH, &saved_tty);
	tty_fd = -1;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (write(fd, "\n", 1) < 0)
		rc = -1;
	return rc;
}

/*
 * Get a new password: from stdin's first line with --password-stdin, else
 * twice from the terminal. 0 or -1 (message printed).
 */
static int
get_password(const char *name, bool from_stdin, char *pw, size_t len)
{
	char again[ADMIN_PASSWORD_MAX], prompt[128];
	int fd, rc = -1;

	if (from_stdin) {
		if (read_line_fd(STDIN_FILENO, pw, len) == -1) {
			admin_err("no password on standard input (or longer than %d)", (int)len - 1);
			return -1;
		}
	} else {
		if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) == -1) {
			admin_err("no terminal to ask for the password; use --password-stdin");
			return -1;
		}
		snprintf(prompt, sizeof(prompt), "New password for %s: ", name);
		if (prompt_tty(fd, prompt, pw, len) == -1 ||
		    prompt_tty(fd, "Again: ", again, sizeof(again)) == -1) {
			admin_err("could not read the password");
			close(fd);
			goto out;
		}
		close(fd);
		if (strcmp(pw, again) != 0) {
			admin_err("the passwords differ; nothing changed");
			goto out;
		}
	}
	if (pw[0] == '\0') {
		admin_err("empty password refused");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(again, sizeof(again));
	if (rc == -1)
		explicit_bzero(pw, len);
	return rc;
}

/* Parse "NAME [--password-stdin]" in any order. */
static int
name_and_stdin(int argc, char **argv, const char **name, bool *from_stdin)
{
	int i;

	*name = NULL;
	*from_stdin = false;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			*from_stdin = true;
		else if (argv[i][0] == '-') {
			admin_err("unknown option %s", argv[i]);
			return -1;
		} else if (*name == NULL)
			*name = argv[i];
		else {
			admin_err("unexpected argument %s", argv[i]);
			return -1;
		}
	}
	if (*name == NULL) {
		admin_err("missing account name");
		return -1;
	}
	return 0;
}

/* ---- commands ------------------------------------------------------------- */

static void
print_one(void *arg, const char *a, const char *b)
{
	(void)arg;
	(void)b;
	printf("%s\n", a);
}

static void
count_cb(void *arg, const char *a, const char *b)
{
	(void)a;
	(void)b;
	(*(size_t *)arg)++;
}

/*
 * The exit status of a store call, its error said the one way: "no WHAT
 * NAME", "WHAT NAME already exists", or the store's own message.
 */
static int
store_outcome(struct admin *a, int rc, const char *what, const char *name)
{
	if (rc == 0)
		return 0;
	if (rc == STORE_NOTFOUND)
		admin_err("no %s %s", what, name);
	else if (rc == STORE_EXISTS)
		admin_err("%s %s already exists", what, name);
	else if (store_err_full(a->st))
		admin_err("%s: the store's file system is full; nothing was changed (free some "
		    "space and try again)", store_errmsg(a->st));
	else
		admin_err("%s", store_errmsg(a->st));
	return 1;
}

/* A new password (get_password) as a crypt(3) hash; the password is wiped. */
static int
new_hash(const char *name, bool from_stdin, char *hash, size_t len)
{
	char pw[ADMIN_PASSWORD_MAX];
	int rc;

	if (get_password(name, from_stdin, pw, sizeof(pw)) == -1)
		return -1;
	rc = auth_hash_password(pw, hash, len);
	explicit_bzero(pw, sizeof(pw));
	if (rc == -1)
		admin_err("cannot hash the password: %s", strerror(errno));
	return rc;
}

static int
user_add(struct admin *a, int argc, char **argv)
{
	char name[STORE_NAME_MAX + 1], hash[AUTH_HASH_MAX], acct[STORE_NAME_MAX + 1];
	const char *arg, *rest[2];
	bool from_stdin, teacher = false;
	size_t ndomains = 0;
	int rc, i, nrest = 0;

	for (i = 0; i < argc; i++) {	/* --teacher: the web console shows every session */
		if (strcmp(argv[i], "--teacher") == 0)
			teacher = true;
		else if (nrest < 2)
			rest[nrest++] = argv[i];
	}
	if (name_and_stdin(nrest, (char **)rest, &arg, &from_stdin) == -1)
		return 2;
	if (!valid_account(arg)) {
		admin_err("'%s' is not a valid account name (1-%d letters, digits, '.', '_', '-'; "
		    "starting with a letter or digit)", arg, STORE_NAME_MAX);
		return 2;
	}
	snprintf(name, sizeof(name), "%s", arg);
	lowercase(name);
	if (store_user_get_hash(a->st, name, hash, sizeof(hash)) == 0)
		return store_outcome(a, STORE_EXISTS, "account", name);
	if (new_hash(name, from_stdin, hash, sizeof(hash)) == -1)
		return 1;
	if ((rc = store_outcome(a, store_user_add(a->st, name, hash), "account", name)) != 0)
		return rc;
	if (teacher && store_outcome(a, store_user_set_teacher(a->st, name, true), "account",
	    name) != 0)
		return 1;
	printf("account %s added%s\n", name, teacher ? " (teacher)" : "");
	/* RFC 5321 4.5.1: every domain must accept mail for postmaster.
	 * Without an alias it reaches the first account; say who that is. */
	if (store_resolve(a->st, "postmaster", NULL, acct, sizeof(acct)) == 0 &&
	    strcasecmp(acct, name) == 0 && strcasecmp(name, "postmaster") != 0)
		printf("note: mail to postmaster goes to %s (the first account) until you set "
		    "'mailcli admin alias add postmaster ACCOUNT'\n", acct);
	store_domain_list(a->st, count_cb, &ndomains);
	if (ndomains == 0)
		printf("note: no local domain yet; add one with 'mailcli admin domain add DOMAIN'\n");
	return 0;
}

static int
user_del(struct admin *a, int argc, char **argv)
{
	(void)argc;
	if (store_outcome(a, store_user_del(a->st, argv[0]), "account", argv[0]) != 0)
		return 1;
	printf("account %s deleted (with its mailbox and aliases)\n", argv[0]);
	return 0;
}

static int
user_passwd(struct admin *a, int argc, char **argv)
{
	char hash[AUTH_HASH_MAX];
	const char *name;
	bool from_stdin;

	if (name_and_stdin(argc, argv, &name, &from_stdin) == -1)
		return 2;
	if (store_user_get_hash(a->st, name, hash, sizeof(hash)) != 0)
		return store_outcome(a, STORE_NOTFOUND, "account", name);
	if (new_hash(name, from_stdin, hash, sizeof(hash)) == -1)
		return 1;
	if (store_outcome(a, store_user_set_hash(a->st, name, hash), "account", name) != 0)
		return 1;
	printf("password of %s changed\n", name);
	return 0;
}

static int
user_list(struct admin *a, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return store_user_list(a->st, print_one, NULL) == 0 ? 0 : 1;
}

static int
domain_add(struct admin *a, int argc, char **argv)
{
	char d[256];

	(void)argc;
	if (strlen(argv[0]) >= sizeof(d) || !valid_domain_name(argv[0])) {
		admin_err("'%s' is not a valid domain name", argv[0]);
		return 2;
	}
	snprintf(d, sizeof(d), "%s", argv[0]);
	lowercase(d);
	if (store_outcome(a, store_domain_add(a->st, d), "domain", d) != 0)
		return 1;
	printf("domain %s added\n", d);
	return 0;
}

static int
domain_del(struct admin *a, int argc, char **argv)
{
	(void)argc;
	if (store_outcome(a, store_domain_del(a->st, argv[0]), "domain", argv[0]) != 0)
		return 1;
	printf("domain %s deleted (with its LOCAL@%s aliases)\n", argv[0], argv[0]);
	return 0;
}

static int
domain_list(struct admin *a, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return store_domain_list(a->st, print_one, NULL) == 0 ? 0 : 1;
}

static int
alias_add(struct admin *a, int argc, char **argv)
{
	char addr[STORE_ADDR_MAX + 1];
	const char *at;
	int i, rc;

	if (strlen(argv[0]) >= sizeof(addr)) {
		admin_err("alias too long");
		return 2;
	}
	snprintf(addr, sizeof(addr), "%s", argv[0]);
	lowercase(addr);
	at = strchr(addr, '@');
	if (!valid_local(addr, at ? (size_t)(at - addr) : strlen(addr)) ||
	    (at && !valid_domain_name(at + 1))) {
		admin_err("'%s' is not an alias (LOCAL or LOCAL@DOMAIN)", argv[0]);
		return 2;
	}
	if (at && (rc = store_domain_lookup(a->st, at + 1)) != 1) {
		if (rc == -1)
			admin_err("%s", store_errmsg(a->st));
		else
			admin_err("domain %s is not served here (add it with "
			    "'mailcli admin domain add %s')", at + 1, at + 1);
		return 1;
	}
	/* Each account given joins the alias (a class list has many). */
	for (i = 1; i < argc; i++) {
		rc = store_alias_add(a->st, addr, argv[i]);
		/* not found: the account the alias would lead to */
		if (store_outcome(a, rc, rc == STORE_NOTFOUND ? "account" : "alias",
		    rc == STORE_NOTFOUND ? argv[i] : addr) != 0)
			return 1;
		printf("alias %s -> %s added\n", addr, argv[i]);
	}
	return 0;
}

static int
alias_del(struct admin *a, int argc, char **argv)
{
	const char *account = argc > 1 ? argv[1] : NULL;

	if (store_outcome(a, store_alias_del(a->st, argv[0], account), "alias", argv[0]) != 0)
		return 1;
	if (account != NULL)
		printf("alias %s no longer leads to %s\n", argv[0], account);
	else
		printf("alias %s deleted\n", argv[0]);
	return 0;
}

/* alias list: one line per alias, its accounts joined by ", ". */
struct alias_lines {
	char	last[STORE_ADDR_MAX + 1];
	bool	open;
};

static void
alias_line(void *arg, const char *address, const char *account)
{
	struct alias_lines *l = arg;

	if (l->open && strcmp(l->last, address) == 0) {
		printf(", %s", account);
		return;
	}
	if (l->open)
		putchar('\n');
	printf("%s -> %s", address, account);
	snprintf(l->last, sizeof(l->last), "%s", address);
	l->open = true;
}

static int
alias_list(struct admin *a, int argc, char **argv)
{
	struct alias_lines l = { "", false };
	int rc;

	(void)argc;
	(void)argv;
	rc = store_alias_list(a->st, alias_line, &l);
	if (l.open)
		putchar('\n');
	return rc == 0 ? 0 : 1;
}

/* Read standard input into d, turning bare LF into CRLF. */
static int
read_message(struct store_delivery *d, long max)
{
	unsigned char in[65536], out[2 * sizeof(in)];
	size_t i, o;
	ssize_t r;
	bool cr = false;	/* last byte seen was CR */
	int last = -1;		/* last byte of the input */

	for (;;) {
		r = read(STDIN_FILENO, in, sizeof(in));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			admin_err("reading the message: %s", strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		for (i = o = 0; i < (size_t)r; i++) {
			if (in[i] == '\n' && !cr)
				out[o++] = '\r';
			out[o++] = in[i];
			cr = in[i] == '\r';
			last = in[i];
		}
		if (store_delivery_body(d, out, o) == -1 ||
		    store_delivery_size(d) > (size_t)max) {
			admin_err("message larger than max_message_size (%ld octets)", max);
			return -1;
		}
	}
	/* A message ends with a line ending (RFC 5322 2.1). */
	if (last == '\r' && store_delivery_body(d, "\n", 1) == -1)
		return -1;
	if (last != '\r' && last != '\n' && store_delivery_size(d) > 0 &&
	    store_delivery_body(d, "\r\n", 2) == -1)
		return -1;
	return 0;
}

/* store_resolve_all() callback: each account of a recipient gets the message. */
struct deliver_add {
	struct store_delivery	*d;
	int			 failed;
};

static void
deliver_to(void *arg, const char *account, const char *unused)
{
	struct deliver_add *add = arg;

	(void)unused;
	if (store_delivery_add_rcpt(add->d, account) == -1)
		add->failed = 1;
}

static int
deliver(struct admin *a, int argc, char **argv)
{
	struct store_delivery *d;
	struct deliver_add add;
	char local[STORE_ADDR_MAX + 1];
	const char *from = "", *at;
	int i, rc, nrcpt = 0;

	/* The envelope sender first: the delivery is created with it. */
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 || strcmp(argv[i], "-f") == 0) {
			if (i + 1 == argc) {
				admin_err("--from needs an address");
				return 2;
			}
			from = argv[++i];
		}
	}
	if ((d = store_delivery_new(from, "admin")) == NULL) {
		admin_err("out of memory");
		return 1;
	}
	add.d = d;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 || strcmp(argv[i], "-f") == 0) {
			i++;
			continue;
		}
		at = strchr(argv[i], '@');
		if (at != NULL && (rc = store_domain_lookup(a->st, at + 1)) != 1) {
			if (rc == -1)
				admin_err("%s", store_errmsg(a->st));
			else
				admin_err("%s: domain %s is not served here", argv[i], at + 1);
			goto fail;
		}
		snprintf(local, sizeof(local), "%.*s",
		    at ? (int)(at - argv[i]) : (int)strlen(argv[i]), argv[i]);
		add.failed = 0;
		rc = store_resolve_all(a->st, local, at ? at + 1 : NULL, deliver_to, &add);
		if (rc < 0) {
			admin_err("%s: %s", argv[i], rc == STORE_NOTFOUND ?
			    "no such account or alias" : store_errmsg(a->st));
			goto fail;
		}
		if (add.failed) {
			admin_err("out of memory");
			goto fail;
		}
		nrcpt++;
	}
	if (nrcpt == 0) {
		admin_err("deliver needs at least one ACCOUNT");
		store_delivery_free(&d);
		return 2;
	}
	if (read_message(d, a->cfg.limits.max_message_size) == -1)
		goto fail;
	if (store_delivery_commit(a->st, d) == -1) {
		admin_err("delivery failed, nothing stored: %s", store_errmsg(a->st));
		goto fail;
	}
	printf("delivered message %" PRId64 " (%zu octets) for %d recipient%s\n",
	    store_delivery_id(d), store_delivery_size(d), nrcpt, nrcpt == 1 ? "" : "s");
	store_delivery_free(&d);
	return 0;
fail:
	store_delivery_free(&d);
	return 1;
}

static void
iso_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
}

static int
queue_list(struct admin *a, int argc, char **argv)
{
	struct store_queue_item *items;
	char when[32];
	size_t n, i;

	(void)argc;
	(void)argv;
	if (store_queue_list(a->st, -1, &items, &n) == -1) {
		admin_err("%s", store_errmsg(a->st));
		return 1;
	}
	for (i = 0; i < n; i++) {
		iso_time(items[i].next_attempt, when, sizeof(when));
		printf("%" PRId64 "\t<%s>\t<%s>\t%d\t%s\t%s\n", items[i].id, items[i].sender,
		    items[i].rcpt, items[i].attempts, when,
		    items[i].last_error[0] ? items[i].last_error : "-");
	}
	free(items);
	return 0;
}

static int
queue_flush(struct admin *a, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (store_queue_flush(a->st) == -1) {
		admin_err("%s", store_errmsg(a->st));
		return 1;
	}
	printf("every queued message will be tried at the next queue run\n");
	return 0;
}

static int
queue_delete(struct admin *a, int argc, char **argv)
{
	uint64_t id;

	(void)argc;
	if (numparse_u64z(argv[0], INT64_MAX, &id) != NUMPARSE_OK || id == 0) {
		admin_err("'%s' is not a queue id", argv[0]);
		return 2;
	}
	if (store_outcome(a, store_queue_delete(a->st, (int64_t)id), "queue item", argv[0]) != 0)
		return 1;
	printf("queue item %llu deleted\n", (unsigned long long)id);
	return 0;
}

static int
transcript(struct admin *a, int argc, char **argv)
{
	(void)argc;
	return store_outcome(a, store_transcript_get(a->st, argv[0], print_one, NULL),
	    "transcript for session", argv[0]);
}

/* An API token for webd (Authorization: Bearer): printed once, stored as
 * its SHA-256 only. */
static int
token_add(struct admin *a, int argc, char **argv)
{
	char token[WEBTOKEN_HEX + 1], key[WEBTOKEN_HEX + 1];

	(void)argc;
	if (webtoken_new(token, sizeof(token)) == -1) {
		admin_err("no randomness available");
		return 1;
	}
	webtoken_hash(token, key, sizeof(key));
	if (store_outcome(a, store_token_add(a->st, key, argv[0]), "account", argv[0]) != 0)
		return 1;
	printf("%s\n", token);
	fprintf(stderr, "mailcli admin: token for %s (shown once; webd keeps only its hash)\n",
	    argv[0]);
	return 0;
}

/* ---- migrate: a whole store into a new, empty one ---------------------- */

#define MIGRATE_PROGRESS_EVERY	1000	/* messages per progress line */

static volatile sig_atomic_t migrate_stop;

static void
migrate_signal(int sig)
{
	(void)sig;
	migrate_stop = 1;
}

/* A line on stderr every MIGRATE_PROGRESS_EVERY messages; a signal stops
 * the copy (store_copy() then leaves nothing in the target). */
static int
migrate_progress(void *arg, const struct store_copy_stats *so_far)
{
	int64_t n = so_far->counts[STORE_REC_MESSAGE];

	(void)arg;
	if (n % MIGRATE_PROGRESS_EVERY == 0)
		fprintf(stderr, "mailcli admin: migrate: %" PRId64 "/%" PRId64 " messages,"
		    " %.1f MB, %.1f s\n", n, so_far->messages_total,
		    (double)so_far->bytes / 1e6, so_far->seconds);
	return migrate_stop ? -1 : 0;
}

static void make_parent(const char *path);

/*
 * migrate --from STORE --to STORE: every account, domain, alias, message,
 * mailbox entry (with its UIDL), queue item, session, transcript, web login
 * and API token, verbatim, verified before the commit (store_copy.h). Exit
 * 0 copied and verified, 1 failed (the target is left empty), 2 usage or a
 * target that is not empty (left untouched).
 */
static int
migrate(struct admin *a, int argc, char **argv)
{
	struct store *from = NULL, *to = NULL;
	struct store_copy_stats stats;
	struct sigaction sa, old_int, old_term;
	const char *src = NULL, *dst = NULL;
	char err[4096];
	int i, rc, ret = 1;

	(void)a;
	for (i = 0; i < argc; i++) {
		const char **slot = NULL, *val = NULL;

		if (strcmp(argv[i], "--from") == 0 || strcmp(argv[i], "--to") == 0) {
			slot = argv[i][2] == 'f' ? &src : &dst;
			if (i + 1 < argc)
				val = argv[++i];
		} else if (strncmp(argv[i], "--from=", 7) == 0) {
			slot = &src;
			val = argv[i] + 7;
		} else if (strncmp(argv[i], "--to=", 5) == 0) {
			slot = &dst;
			val = argv[i] + 5;
		}
		if (slot == NULL || val == NULL || *val == '\0' || *slot != NULL) {
			admin_err("usage: mailcli admin migrate --from STORE --to STORE");
			return 2;
		}
		*slot = val;
	}
	if (src == NULL || dst == NULL) {
		admin_err("usage: mailcli admin migrate --from STORE --to STORE");
		return 2;
	}
	if (strcmp(src, dst) == 0) {
		admin_err("migrate: --from and --to name the same store (%s)", src);
		return 2;
	}
	if (strstr(src, "://") == NULL && access(src, F_OK) == -1) {
		admin_err("migrate: no store at %s: %s", src, strerror(errno));
		return 1;
	}
	if (store_open(&from, src, err, sizeof(err)) == -1) {
		admin_err("migrate: source: %s", err);
		return 1;
	}
	if (strstr(dst, "://") == NULL)
		make_parent(dst);
	if (store_open(&to, dst, err, sizeof(err)) == -1) {
		admin_err("migrate: target: %s", err);
		store_close(&from);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = migrate_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	rc = store_copy(from, to, migrate_progress, NULL, &stats, err, sizeof(err));
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (rc == STORE_COPY_NOT_EMPTY) {
		admin_err("migrate: %s: %s", dst, err);
		ret = 2;
	} else if (rc == -1) {
		admin_err("migrate: %s (the target is left empty)", err);
	} else {
		printf("migrated %s -> %s\n", src, dst);
		for (i = 0; i < STORE_REC_KINDS; i++)
			if (i != STORE_REC_SEQUENCE)
				printf("  %-18s %" PRId64 "\n", store_copy_kind_name(i),
				    stats.counts[i]);
		printf("  %-18s %" PRId64 " (%.1f MB)\n", "body octets", stats.bytes,
		    (double)stats.bytes / 1e6);
		printf("  %-18s %.2f s\n", "time", stats.seconds);
		printf("verified: the count and SHA-256 of every record and every body match\n");
		ret = 0;
	}
	store_close(&to);
	store_close(&from);
	return ret;
}

/* transcript list: the options are admin_sessions.c's (argv[-1] is "list"). */
static int
transcript_list(struct admin *a, int argc, char **argv)
{
	return admin_transcript_list(a->st, argc + 1, argv - 1);
}

static const struct admin_cmd admin_cmds[] = {
	{ "user", "add", 1, 3, user_add,	"user add NAME [--password-stdin] [--teacher]", true },
	{ "user", "del", 1, 1, user_del,	"user del NAME", false },
	{ "user", "passwd", 1, 2, user_passwd,	"user passwd NAME [--password-stdin]", false },
	{ "user", "list", 0, 0, user_list,	"user list", false },
	{ "domain", "add", 1, 1, domain_add,	"domain add DOMAIN", true },
	{ "domain", "del", 1, 1, domain_del,	"domain del DOMAIN", false },
	{ "domain", "list", 0, 0, domain_list,	"domain list", false },
	{ "alias", "add", 2, -1, alias_add,	"alias add ADDRESS ACCOUNT...", true },
	{ "alias", "del", 1, 2, alias_del,	"alias del ADDRESS [ACCOUNT]", false },
	{ "alias", "list", 0, 0, alias_list,	"alias list", false },
	{ "deliver", NULL, 1, -1, deliver,	"deliver [--from ADDR] ACCOUNT... < message", true },
	{ "queue", "list", 0, 0, queue_list,	"queue list", false },
	{ "queue", "flush", 0, 0, queue_flush,	"queue flush", false },
	{ "queue", "delete", 1, 1, queue_delete, "queue delete ID", false },
	{ "transcript", "list", 0, -1, transcript_list,
	  "transcript list [--user NAME] [--client ADDR] [--since TIME] [--text T] [--limit N]", false },
	{ "transcript", NULL, 1, 1, transcript,	"transcript SESSION-ID", false },
	{ "token", "add", 1, 1, token_add,	"token add NAME", false },
	{ "migrate", NULL, 2, 4, migrate,	"migrate --from STORE --to STORE", false },
};
#define NCMDS	(sizeof(admin_cmds) / sizeof(admin_cmds[0]))

static void
admin_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mailcli admin [-c FILE] [--store PATH|URI] COMMAND\n\ncommands:\n");
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "  %s\n", admin_cmds[i].usage);
	fprintf(f, "\nThe store is --store PATH (a SQLite file) or --store URI (a PostgreSQL\n"
	    "database, postgresql://USER@HOST:PORT/DB, its password in a libpq passfile),\n"
	    "else [store] path or url of -c FILE, else var/correio.db.\n"
	    "Passwords are asked with echo off, or read from the first line of standard input\n"
	    "with --password-stdin; never given as arguments.\n");
}

/* Create the directory that will hold the store when it is missing (one
 * level only, like var/: a mistyped deep path still fails clearly). */
static void
make_parent(const char *path)
{
	char dir[PATH_MAX], *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return;
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return;
}

int
admin_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct admin a;
	const struct admin_cmd *cmd = NULL, *c;
	const char *conf = NULL, *store = NULL;
	char err[4096];
	int ch, nargs, ret, matched_object = 0;
	bool created;
	size_t i;

	memset(&a, 0, sizeof(a));
	optind = 1;
	/* '+': stop at the first non-option (the command). */
	while ((ch = getopt_long(argc, argv, "+c:s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 's':
			store = optarg;
			break;
		case 'h':
			admin_usage(stdout);
			return 0;
		default:
			admin_usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		admin_usage(stderr);
		return 2;
	}
	for (i = 0; i < NCMDS && cmd == NULL; i++) {
		c = &admin_cmds[i];
		if (strcmp(argv[0], c->object) != 0)
			continue;
		matched_object = 1;
		if (c->verb == NULL)
			cmd = c;
		else if (argc > 1 && strcmp(argv[1], c->verb) == 0)
			cmd = c;
	}
	if (cmd == NULL) {
		if (matched_object)
			admin_err("unknown or missing '%s' command (%s)", argv[0],
			    argc > 1 ? argv[1] : "none given");
		else
			admin_err("unknown command '%s'", argv[0]);
		admin_usage(stderr);
		return 2;
	}
	argv += cmd->verb ? 2 : 1;
	argc -= cmd->verb ? 2 : 1;
	nargs = argc;
	if (nargs < cmd->min_args || (cmd->max_args >= 0 && nargs > cmd->max_args)) {
		admin_err("usage: mailcli admin %s", cmd->usage);
		return 2;
	}

	/* migrate opens its two stores itself (--from, --to): not --store, -c. */
	if (cmd->run == migrate)
		return migrate(&a, argc, argv);
	config_defaults(&a.cfg);
	if (conf != NULL && config_load(&a.cfg, conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (store != NULL && config_set_store(&a.cfg, store, err, sizeof(err)) == -1) {
		char shown[256];

		admin_err("--store %s: %s", config_store_display(store, shown, sizeof(shown)), err);
		return 1;
	}
	a.store_path = a.cfg.store_path;
	/* Only a command that writes may create a store file: a read on a
	 * mistyped path says so instead of leaving an empty store behind. A
	 * database (a URI) is never created here; the store says when it
	 * cannot reach it. */
	created = !a.cfg.store_is_url && access(a.store_path, F_OK) == -1 && errno == ENOENT;
	if (created && !cmd->creates) {
		admin_err("no store at %s (give -c FILE or --store PATH; 'domain add', 'user add', "
		    "'alias add' and 'deliver' create one)", a.store_path);
		return 1;
	}
	if (!a.cfg.store_is_url)
		make_parent(a.store_path);
	if (store_open(&a.st, a.store_path, err, sizeof(err)) == -1) {
		char msg[1024];

		if (a.cfg.store_is_url) {
			config_store_open_error(&a.cfg, err, msg, sizeof(msg));
			admin_err("%s", msg);
		} else
			admin_err("%s", err);
		return 1;
	}
	if (created)
		fprintf(stderr, "mailcli admin: created a new store at %s\n", a.store_path);
	ret = cmd->run(&a, argc, argv);
	fflush(stdout);
	if (ferror(stdout)) {
		admin_err("write error on standard output");
		ret = 1;
	}
	store_close(&a.st);
	return ret;
}
