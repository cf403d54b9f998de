/*
 * fetch.c - the retrieving commands over POP3 (pop3client.h, RFC 1939):
 *   inbox            number, size, date, from, subject of every message (TOP n 0,
 *                    headers decoded with mime.h, RFC 2047)
 *   read N [--tree]  the decoded text part (converted to UTF-8) and the list of
 *                    attachments, or the MIME tree
 *   save N --dir DIR [--force]   the attachments, under safe names
 *   delete N         DELE + QUIT (RFC 1939 6: deletion happens at QUIT)
 *   fetch --mbox FILE | --maildir DIR [--delete] [--all]
 *                    every message not fetched before (remembered by UIDL) into
 *                    an mboxrd file (locked, ">From " quoting, rolled back on
 *                    error) or a maildir (tmp/ then rename into new/).
 * Nothing is deleted on the server before it is safely on disk (fsync).
 * Exit: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clientconf.h"
#include "mailcli.h"
#include "mime.h"
#include "numparse.h"
#include "pop3client.h"

#define FETCH_MESSAGE_MAX	(1024UL * 1024 * 1024)	/* read/save hold one message in memory */
#define FETCH_UIDL_MAX		(64UL * 1024 * 1024)	/* size of a resume state file */
#define FETCH_LOCK_WAIT		30			/* seconds to wait for an mbox lock */
#define FETCH_PIPELINE_BATCH	50			/* TOP commands written at once */

enum fetch_cmd { CMD_INBOX, CMD_READ, CMD_SAVE, CMD_DELETE, CMD_FETCH };

struct fetch_opts {
	enum fetch_cmd cmd;
	const char *name;		/* "inbox", ... for messages */
	struct clientconf conf;
	unsigned long num;		/* N */
	bool	 tree;			/* read --tree */
	const char *dir;		/* save --dir */
	bool	 force;			/* save --force */
	const char *mbox;		/* fetch --mbox */
	const char *maildir;		/* fetch --maildir */
	bool	 del;			/* fetch --delete */
	bool	 all;			/* fetch --all: ignore what was fetched before */
};

static void
usage(const struct fetch_opts *o, FILE *out)
{
	static const char *lines[] = {
		[CMD_INBOX] = "inbox [options]\n\nList the messages in the POP3 mailbox: number, size, "
		    "date, sender, subject.\n",
		[CMD_READ] = "read N [--tree] [options]\n\nShow message N: its headers, its text "
		    "(decoded) and its attachments.\n  --tree                 print the MIME structure "
		    "instead of the text\n",
		[CMD_SAVE] = "save N --dir DIR [--force] [options]\n\nSave the attachments of message "
		    "N into DIR (created if missing).\n  --dir DIR              where to write\n"
		    "  --force                overwrite existing files\n",
		[CMD_DELETE] = "delete N [options]\n\nDelete message N from the server.\n",
		[CMD_FETCH] = "fetch --mbox FILE | --maildir DIR [--delete] [--all] [options]\n\n"
		    "Download every message not downloaded before (the server's UIDL is\n"
		    "remembered next to the mailbox) into an mbox file (mboxrd) or a maildir.\n"
		    "  --mbox FILE            append to FILE (created if missing)\n"
		    "  --maildir DIR          deliver into DIR/new (created if missing)\n"
		    "  --delete               delete each message from the server once stored\n"
		    "  --all                  download again messages fetched before\n",
	};

	fprintf(out, "usage: mailcli %s\n", lines[o->cmd]);
	clientconf_usage(out, CLIENTCONF_POP3);
}

static int
parse_num(const char *s, unsigned long *n_r)
{
	uint64_t v;

	if (numparse_u64z(s, ULONG_MAX, &v) != NUMPARSE_OK || v == 0)
		return -1;
	*n_r = v;
	return 0;
}

/* Parse argv for any of the five commands. 0, -1 (usage error reported), 1 (--help). */
static int
parse_args(struct fetch_opts *o, int argc, char **argv)
{
	char err[600];
	const char *a, *v;
	bool have_num = false;
	int i, r;

	if (clientconf_init(&o->conf, CLIENTCONF_POP3, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli %s: %s\n", o->name, err);
		return -1;
	}
	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(o, stdout);
			return 1;
		}
		r = clientconf_parse_arg(&o->conf, argc, argv, &i, err, sizeof(err));
		if (r == -1) {
			fprintf(stderr, "mailcli %s: %s\n", o->name, err);
			return -1;
		}
		if (r == 1)
			continue;
		if (o->cmd == CMD_READ && strcmp(a, "--tree") == 0)
			o->tree = true;
		else if (o->cmd == CMD_SAVE && strcmp(a, "--force") == 0)
			o->force = true;
		else if (o->cmd == CMD_FETCH && strcmp(a, "--delete") == 0)
			o->del = true;
		else if (o->cmd == CMD_FETCH && strcmp(a, "--all") == 0)
			o->all = true;
		else if ((o->cmd == CMD_SAVE && strcmp(a, "--dir") == 0) ||
		    (o->cmd == CMD_FETCH && (strcmp(a, "--mbox") == 0 || strcmp(a, "--maildir") == 0))) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0') {
				fprintf(stderr, "mailcli %s: %s needs a value\n", o->name, a);
				return -1;
			}
			v = argv[++i];
			if (strcmp(a, "--dir") == 0)
				o->dir = v;
			else if (strcmp(a, "--mbox") == 0)
				o->mbox = v;
			else
				o->maildir = v;
		} else if (a[0] != '-' && !have_num &&
		    (o->cmd == CMD_READ || o->cmd == CMD_SAVE || o->cmd == CMD_DELETE)) {
			if (parse_num(a, &o->num) == -1) {
				fprintf(stderr, "mailcli %s: '%s' is not a message number (1, 2, ...; "
				    "see mailcli inbox)\n", o->name, a);
				return -1;
			}
			have_num = true;
		} else {
			fprintf(stderr, "mailcli %s: unexpected argument '%s' (see mailcli %s --help)\n",
			    o->name, a, o->name);
			return -1;
		}
	}
	if ((o->cmd == CMD_READ || o->cmd == CMD_SAVE || o->cmd == CMD_DELETE) && !have_num) {
		fprintf(stderr, "mailcli %s: which message? give its number (see mailcli inbox)\n",
		    o->name);
		return -1;
	}
	if (o->cmd == CMD_SAVE && o->dir == NULL) {
		fprintf(stderr, "mailcli save: --dir DIR is required\n");
		return -1;
	}
	if (o->cmd == CMD_FETCH && (o->mbox == NULL) == (o->maildir == NULL)) {
		fprintf(stderr, "mailcli fetch: give exactly one of --mbox FILE or --maildir DIR\n");
		return -1;
	}
	return 0;
}

/* Connect, STLS as --tls says, log in. 0 ready, -1 (reported). */
static int
session_start(struct fetch_opts *o, struct pop3client *p, SSL_CTX **ctx)
{
	struct clientconf *c = &o->conf;
	char err[600];
	int r;

	p->conn.fd = -1;
	if (c->user[0] == '\0') {
		fprintf(stderr, "mailcli %s: who are you? give --user NAME (or MAILCLI_USER, or "
		    "user = in the config file)\n", o->name);
		return -1;
	}
	if (c->tls != CLIENTCONF_TLS_OFF && (*ctx = clientconf_tls_ctx(c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mailcli %s: %s\n", o->name, err);
		return -1;
	}
	if (c->tls == CLIENTCONF_TLS_IMPLICIT)
		r = pop3client_open_tls(p, c->host, c->port, c->timeout, c->trace ? stdout : NULL, *ctx);
	else
		r = pop3client_open(p, c->host, c->port, c->timeout, c->trace ? stdout : NULL);
	if (r == -1) {
		fprintf(stderr, "mailcli %s: %s (server from %s)\n", o->name, p->err, c->source);
		return -1;
	}
	p->trace_body = c->trace_body;
	if (r == 1) {
		fprintf(stderr, "mailcli %s: %s:%s refuses service: -ERR %s\n", o->name, c->host,
		    c->port, p->greeting);
		return -1;
	}
	if ((r = pop3client_capa(p)) == -1) {
		fprintf(stderr, "mailcli %s: %s\n", o->name, p->err);
		return -1;
	}
	if (!clientconn_is_tls(&p->conn) && c->tls == CLIENTCONF_TLS_REQUIRED && !p->caps.stls) {
		fprintf(stderr, "mailcli %s: %s:%s does not offer STLS and --tls required was given; "
		    "not logging in\n", o->name, c->host, c->port);
		return -1;
	}
	if (!clientconn_is_tls(&p->conn) && p->caps.stls && c->tls != CLIENTCONF_TLS_OFF) {
		r = pop3client_stls(p, *ctx);
		if (r != 0) {
			fprintf(stderr, "mailcli %s: STLS %s\n", o->name, r == -1 ? p->err : p->status);
			return -1;
		}
	}
	if (!clientconn_is_tls(&p->conn))
		fprintf(stderr, "mailcli %s: warning: sending the password for %s without TLS\n",
		    o->name, c->user);
	if (clientconf_password(c, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli %s: %s\n", o->name, err);
		return -1;
	}
	r = pop3client_login(p, c->user, c->password);
	explicit_bzero(c->password, sizeof(c->password));
	if (r != 0) {
		if (r == -1)
			fprintf(stderr, "mailcli %s: %s\n", o->name, p->err);
		else
			fprintf(stderr, "mailcli %s: login as %s refused: -ERR %s%s%s%s\n", o->name,
			    c->user, p->resp_code[0] ? "[" : "", p->resp_code,
			    p->resp_code[0] ? "] " : "", p->status);
		return -1;
	}
	return 0;
}

/* Report a -ERR or failure of a command on message n. */
static void
cmd_failed(const struct fetch_opts *o, const struct pop3client *p, int r, const char *what)
{
	if (r == -1)
		fprintf(stderr, "mailcli %s: %s: %s\n", o->name, what, p->err);
	else
		fprintf(stderr, "mailcli %s: %s: -ERR %s\n", o->name, what, p->status);
}

/* ---- display helpers ------------------------------------------------- */

/* Print s in exactly width columns (UTF-8 aware: counts code points,
 * never cuts inside a character; control characters shown as '?'). */
static void
print_col(const char *s, size_t width, bool last)
{
	size_t cols = 0, i = 0, clen;
	unsigned char ch;

	while (s[i] != '\0' && cols < width) {
		ch = (unsigned char)s[i];
		clen = ch < 0x80 ? 1 : (ch & 0xE0) == 0xC0 ? 2 : (ch & 0xF0) == 0xE0 ? 3 :
		    (ch & 0xF8) == 0xF0 ? 4 : 1;
		if (strnlen(s + i, clen) < clen)
			break;
		if (cols + 1 == width && s[i + clen] != '\0' && !last) {
			fputs("~", stdout);	/* cut */
			cols++;
			break;
		}
		if (ch < 0x20 || ch == 0x7f)
			putchar('?');
		else
			fwrite(s + i, 1, clen, stdout);
		i += clen;
		cols++;
	}
	if (!last)
		for (; cols < width; cols++)
			putchar(' ');
}

static void
human_size(uint64_t n, char *dst, size_t len)
{
	if (n < 1024)
		snprintf(dst, len, "%llu", (unsigned long long)n);
	else if (n < 1024 * 1024)
		snprintf(dst, len, "%.0fK", (double)n / 1024.0);
	else
		snprintf(dst, len, "%.1fM", (double)n / (1024.0 * 1024.0));
}

/* RFC 5322 date to "2026-11-25 14:03" in local time; the raw text otherwise. */
static void
short_date(const char *raw, char *dst, size_t len)
{
	static const char *fmts[] = { "%a, %d %b %Y %H:%M:%S %z", "%d %b %Y %H:%M:%S %z",
	    "%a, %d %b %Y %H:%M %z", "%d %b %Y %H:%M %z" };
	struct tm tm;
	const char *end;
	size_t k;
	time_t t;

	for (k = 0; k < sizeof(fmts) / sizeof(fmts[0]); k++) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(raw, fmts[k], &tm);
		if (end != NULL) {
			long off = tm.tm_gmtoff;
			t = timegm(&tm) - off;
			if (localtime_r(&t, &tm) != NULL && strftime(dst, len, "%Y-%m-%d %H:%M", &tm) > 0)
				return;
		}
	}
	snprintf(dst, len, "%s", raw);
}

/* "Ana <ana@lab.test>" -> "Ana"; a bare address stays. */
static void
short_from(const char *from, char *dst, size_t len)
{
	const char *lt = strchr(from, '<');
	size_t n;

	if (lt != NULL && lt > from) {
		n = (size_t)(lt - from);
		while (n > 0 && (from[n - 1] == ' ' || from[n - 1] == '"'))
			n--;
		while (n > 0 && *from == '"') {
			from++;
			n--;
		}
		if (n > 0) {
			snprintf(dst, len, "%.*s", (int)n, from);
			return;
		}
	}
	snprintf(dst, len, "%s", from);
}

static int
buf_line(void *ctx, const char *line, size_t len)
{
	struct buf *b = ctx;

	if (buf_append(b, line, len) == -1 || buf_append(b, "\r\n", 2) == -1)
		return -1;
	return 0;
}

/* ---- inbox ------------------------------------------------------------ */

static int
do_inbox(struct fetch_opts *o, struct pop3client *p)
{
	struct pop3client_msg *v = NULL;
	struct mime_part *root;
	struct buf hdr;
	char date[128], from[512], subj[1024], tmp[1024], sz[32];
	uint64_t total = 0;
	size_t n, k, j, batch = p->caps.pipelining ? FETCH_PIPELINE_BATCH : 1;
	int r;

	if ((r = pop3client_list(p, false, &v, &n)) != 0) {
		cmd_failed(o, p, r, "LIST");
		return -1;
	}
	for (k = 0; k < n; k++)
		total += v[k].size;
	printf("%zu message%s, %llu octets (%s@%s)\n", n, n == 1 ? "" : "s",
	    (unsigned long long)total, o->conf.user, o->conf.host);
	if (n > 0)
		printf("%4s  %6s  %-16s  %-24s  %s\n", "N", "SIZE", "DATE", "FROM", "SUBJECT");
	buf_init(&hdr, 1024 * 1024);
	for (k = 0; k < n; k++) {
		/* With PIPELINING the TOPs go out in batches: one round trip
		 * for many messages instead of one each. */
		if (k % batch == 0)
			for (j = k; j < n && j < k + batch; j++)
				if (pop3client_queue(p, "TOP %lu 0", v[j].num) == -1)
					break;
		if (p->broken) {
			cmd_failed(o, p, -1, "TOP");
			break;
		}
		buf_reset(&hdr);
		date[0] = from[0] = subj[0] = '\0';
		r = pop3client_response(p, true, buf_line, &hdr);
		if (r == -1 && p->broken) {
			cmd_failed(o, p, r, "TOP");
			break;
		}
		if (r == 0 && (root = mime_parse(hdr.data ? hdr.data : "", hdr.len)) != NULL) {
			if (mime_header_shown(root, "Date", tmp, sizeof(tmp)) >= 0)
				short_date(tmp, date, sizeof(date));
			if (mime_header_shown(root, "From", tmp, sizeof(tmp)) >= 0)
				short_from(tmp, from, sizeof(from));
			if (mime_header(root, "Subject", subj, sizeof(subj)) == -1)
				snprintf(subj, sizeof(subj), "(no subject)");
			mime_free(&root);
		} else if (r != 0)
			snprintf(subj, sizeof(subj), "(headers unavailable: %s)",
			    r == -1 ? p->err : p->status);
		human_size(v[k].size, sz, sizeof(sz));
		printf("%4lu  %6s  ", v[k].num, sz);
		print_col(date, 16, false);
		fputs("  ", stdout);
		print_col(from, 24, false);
		fputs("  ", stdout);
		print_col(subj, 200, true);
		putchar('\n');
	}
	buf_free(&hdr);
	free(v);
	return p->broken ? -1 : 0;
}

/* ---- read / save ------------------------------------------------------ */

/* Retrieve message o->num whole (bounded). 0 or -1 (reported). */
static int
retrieve(struct fetch_opts *o, struct pop3client *p, struct buf *msg)
{
	char what[64];
	int r;

	buf_init(msg, FETCH_MESSAGE_MAX);
	r = pop3client_retr(p, o->num, buf_line, msg);
	if (r != 0) {
		buf_free(msg);	/* a body cut short leaves part of it here */
		snprintf(what, sizeof(what), "message %lu", o->num);
		if (r == 1 && p->resp_code[0] == '\0')
			fprintf(stderr, "mailcli %s: no message %lu: -ERR %s (see mailcli inbox)\n",
			    o->name, o->num, p->status);
		else
			cmd_failed(o, p, r, what);
		return -1;
	}
	return 0;
}

/* Write text in charset as UTF-8 (iconv; invalid bytes become U+FFFD),
 * control characters other than LF and TAB shown as '?' (mime_put_safe). */
static void
print_text(const char *text, size_t len, const char *charset)
{
	char out[8192], *in = (char *)text, *op;	/* iconv's prototype wants char ** */
	size_t inleft = len, outleft;
	struct buf u8;
	iconv_t cd;

	if (charset[0] == '\0' || strcasecmp(charset, "utf-8") == 0 ||
	    strcasecmp(charset, "us-ascii") == 0 || (cd = iconv_open("UTF-8", charset)) == (iconv_t)-1) {
		mime_put_safe(stdout, text, len, true);
		return;
	}
	buf_init(&u8, SIZE_MAX / 2);
	while (inleft > 0) {
		op = out;
		outleft = sizeof(out);
		if (iconv(cd, &in, &inleft, &op, &outleft) == (size_t)-1 && errno != E2BIG) {
			(void)buf_append(&u8, out, (size_t)(op - out));
			(void)buf_append(&u8, "\xEF\xBF\xBD", 3);	/* U+FFFD for what does not convert */
			in++;
			inleft--;
			continue;
		}
		(void)buf_append(&u8, out, (size_t)(op - out));
	}
	iconv_close(cd);
	mime_put_safe(stdout, u8.data, u8.len, true);
	buf_free(&u8);
}

/* Print the text with CRLF turned into LF. */
static void
print_body(const struct buf *b, const char *charset)
{
	struct buf lf;
	size_t i;

	buf_init(&lf, b->len + 1);
	for (i = 0; i < b->len; i++)
		if (!(b->data[i] == '\r' && i + 1 < b->len && b->data[i + 1] == '\n'))
			(void)buf_append(&lf, b->data + i, 1);
	if (lf.len > 0)
		print_text(lf.data, lf.len, charset);
	if (lf.len > 0 && lf.data[lf.len - 1] != '\n')
		putchar('\n');
	buf_free(&lf);
}

static void
list_attachments(const struct mime_part *part, const struct mime_part *text, int *count)
{
	struct buf dec;

	for (; part != NULL; part = part->next) {
		if (part != text && part->child == NULL &&
		    (part->attachment || part->filename[0] != '\0')) {
			buf_init(&dec, FETCH_MESSAGE_MAX);
			(void)mime_decode_body(part, &dec);
			if (*count == 0)
				printf("\nattachments (mailcli save N --dir DIR writes them):\n");
			(*count)++;
			printf("  [%d] ", *count);
			mime_put_safe(stdout, part->filename[0] ? part->filename : "(no name)",
			    strlen(part->filename[0] ? part->filename : "(no name)"), false);
			printf("  (%s, %zu octets)\n", part->type, dec.len);
			buf_free(&dec);
		}
		if (part->child != NULL)
			list_attachments(part->child, text, count);
	}
}

static int
do_read(struct fetch_opts *o, struct pop3client *p)
{
	static const char *hdrs[] = { "Date", "From", "To", "Cc", "Reply-To", "Subject" };
	struct mime_part *root;
	const struct mime_part *text;
	struct buf msg, body;
	char val[2048];
	size_t k;
	int count = 0;

	if (retrieve(o, p, &msg) == -1)
		return -1;
	root = mime_parse(msg.data ? msg.data : "", msg.len);
	if (root == NULL) {
		fprintf(stderr, "mailcli read: out of memory\n");
		buf_free(&msg);
		return -1;
	}
	if (o->tree) {
		mime_print_tree(stdout, root);
		goto done;
	}
	for (k = 0; k < sizeof(hdrs) / sizeof(hdrs[0]); k++) {
		int got = mime_header_shown(root, hdrs[k], val, sizeof(val));
		if (got == -1)
			continue;
		printf("%s: ", hdrs[k]);
		mime_put_safe(stdout, val, strlen(val), false);
		if (got == 1)
			printf(strcasecmp(hdrs[k], "From") == 0 ? " (envelope sender)" :
			    " (arrival)");
		putchar('\n');
	}
	putchar('\n');
	text = mime_text_part(root);
	if (text == NULL)
		printf("(this message has no text part)\n");
	else {
		buf_init(&body, FETCH_MESSAGE_MAX);
		if (mime_decode_body(text, &body) == -1)
			printf("(the text could not be decoded: %s)\n", text->encoding);
		else {
			if (strcmp(text->type, "text/plain") != 0)
				printf("(%s, shown as source)\n", text->type);
			print_body(&body, text->charset);
		}
		buf_free(&body);
	}
	list_attachments(root, text, &count);
done:
	mime_free(&root);
	buf_free(&msg);
	return 0;
}

static int
do_save(struct fetch_opts *o, struct pop3client *p)
{
	struct mime_part *root;
	struct buf msg;
	int n;

	if (mkdir(o->dir, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "mailcli save: cannot create %s: %s\n", o->dir, strerror(errno));
		return -1;
	}
	if (retrieve(o, p, &msg) == -1)
		return -1;
	root = mime_parse(msg.data ? msg.data : "", msg.len);
	if (root == NULL) {
		fprintf(stderr, "mailcli save: out of memory\n");
		buf_free(&msg);
		return -1;
	}
	n = mime_save_attachments(root, o->dir, o->force, stdout);
	mime_free(&root);
	buf_free(&msg);
	if (n == -1) {
		fprintf(stderr, "mailcli save: not every attachment could be saved (see above)\n");
		return -1;
	}
	if (n == 0)
		printf("message %lu has no attachments\n", o->num);
	else
		printf("%d file%s saved in %s\n", n, n == 1 ? "" : "s", o->dir);
	return 0;
}

/* ---- delete ----------------------------------------------------------- */

static int
do_delete(struct fetch_opts *o, struct pop3client *p)
{
	int r = pop3client_dele(p, o->num);

	if (r != 0) {
		cmd_failed(o, p, r, "DELE");
		return -1;
	}
	/* RFC 1939 6: the deletion happens only when QUIT succeeds. */
	if ((r = pop3client_quit(p)) != 0) {
		cmd_failed(o, p, r, "QUIT (the message was NOT deleted)");
		return -1;
	}
	printf("message %lu deleted\n", o->num);
	return 0;
}

/* ---- fetch ------------------------------------------------------------ */

/* The uids fetched before, one "uid" per line in a state file per server and
 * user (DIR/.mailcli-uidl-USER@HOST_PORT or FILE.mailcli-uidl-USER@HOST_PORT). */
struct uidstate {
	char	 path[4096];
	struct buf known;	/* the file's text, each line NUL-terminated in place */
	char	**sorted;	/* pointers into known, sorted for bsearch */
	size_t	 n;
	FILE	*append;
};

static int
uid_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
uidstate_open(struct uidstate *u, const struct fetch_opts *o, char *err, size_t errlen)
{
	char chunk[8192], *p, *e;
	size_t got, lines = 0, k;
	FILE *f;
	int n;

	if (o->maildir != NULL)
		n = snprintf(u->path, sizeof(u->path), "%s/.mailcli-uidl-%s@%s_%s", o->maildir,
		    o->conf.user, o->conf.host, o->conf.port);
	else
		n = snprintf(u->path, sizeof(u->path), "%s.mailcli-uidl-%s@%s_%s", o->mbox,
		    o->conf.user, o->conf.host, o->conf.port);
	if (n < 0 || (size_t)n >= sizeof(u->path)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	buf_init(&u->known, FETCH_UIDL_MAX);
	f = fopen(u->path, "re");
	if (f != NULL) {
		while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
			if (buf_append(&u->known, chunk, got) == -1) {
				fclose(f);
				goto nomem;
			}
		fclose(f);
	}
	/* One uid per line; a last line cut short by a crash still counts. */
	for (k = 0; k < u->known.len; k++)
		if (u->known.data[k] == '\n') {
			u->known.data[k] = '\0';
			lines++;
		}
	u->sorted = calloc(lines + 1, sizeof(*u->sorted));
	if (u->sorted == NULL)
		goto nomem;
	for (p = u->known.data; p != NULL && p < u->known.data + u->known.len; p = e + 1) {
		e = p + strlen(p);
		if (*p != '\0')
			u->sorted[u->n++] = p;
	}
	qsort(u->sorted, u->n, sizeof(*u->sorted), uid_cmp);
	u->append = fopen(u->path, "ae");
	if (u->append == NULL) {
		snprintf(err, errlen, "cannot write %s: %s", u->path, strerror(errno));
		free(u->sorted);
		buf_free(&u->known);
		return -1;
	}
	/* Start on a fresh line if the file ended mid-line. */
	if (u->known.len > 0 && u->known.data[u->known.len - 1] != '\0')
		fputc('\n', u->append);
	return 0;
nomem:
	snprintf(err, errlen, "%s is too large", u->path);
	buf_free(&u->known);
	return -1;
}

static bool
uidstate_has(const struct uidstate *u, const char *uid)
{
	if (uid[0] == '\0' || u->n == 0)
		return false;
	return bsearch(&uid, u->sorted, u->n, sizeof(*u->sorted), uid_cmp) != NULL;
}

static int
uidstate_add(struct uidstate *u, const char *uid)
{
	if (uid[0] == '\0')
		return 0;
	if (fprintf(u->append, "%s\n", uid) < 0 || fflush(u->append) != 0 ||
	    fsync(fileno(u->append)) == -1)
		return -1;
	return 0;
}

static void
uidstate_close(struct uidstate *u)
{
	if (u->append != NULL)
		fclose(u->append);
	free(u->sorted);
	buf_free(&u->known);
}

/* Streaming a message into a file with LF line ends; for mbox, ">From " quoted
 * (mboxrd: any line matching ^>*From gets one more '>'). */
struct sink {
	FILE	*f;
	bool	 mboxrd;
	bool	 in_headers;
	char	 sender[320];	/* Return-Path or From address, for the mbox From line */
	bool	 from_is_return_path;
	bool	 failed;
	uint64_t octets;
};

static void
note_sender(struct sink *s, const char *line, size_t len)
{
	const char *lt, *gt, *p;
	bool rp = len > 12 && strncasecmp(line, "Return-Path:", 12) == 0;

	if (!rp && !(len > 5 && strncasecmp(line, "From:", 5) == 0))
		return;
	if (!rp && (s->from_is_return_path || s->sender[0] != '\0'))
		return;
	lt = memchr(line, '<', len);
	gt = lt ? memchr(lt, '>', len - (size_t)(lt - line)) : NULL;
	if (lt == NULL || gt == NULL || gt - lt - 1 >= (long)sizeof(s->sender))
		return;
	/* the From line's one word: no blanks, no control characters */
	for (p = lt + 1; p < gt; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return;
	snprintf(s->sender, sizeof(s->sender), "%.*s", (int)(gt - lt - 1), lt + 1);
	s->from_is_return_path = rp;
}

static int
sink_line(void *ctx, const char *line, size_t len)
{
	struct sink *s = ctx;
	size_t k = 0;

	if (s->failed)
		return -1;
	if (s->in_headers) {
		if (len == 0)
			s->in_headers = false;
		else
			note_sender(s, line, len);
	}
	if (s->mboxrd) {
		while (k < len && line[k] == '>')
			k++;
		if (len - k >= 5 && memcmp(line + k, "From ", 5) == 0 && fputc('>', s->f) == EOF)
			s->failed = true;
	}
	if ((len > 0 && fwrite(line, 1, len, s->f) != len) || fputc('\n', s->f) == EOF)
		s->failed = true;
	s->octets += len + 1;
	return s->failed ? -1 : 0;
}

/* Maildir names (https://cr.yp.to/proto/maildir.html): time.MusecPpidQn.host */
static void
maildir_name(char *dst, size_t len)
{
	static unsigned long q;
	struct timeval tv;
	char host[256], safe[1024];
	size_t i, o = 0;

	gettimeofday(&tv, NULL);
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && o + 5 < sizeof(safe); i++) {
		if (host[i] == '/')
			o += (size_t)snprintf(safe + o, sizeof(safe) - o, "\\057");
		else if (host[i] == ':')
			o += (size_t)snprintf(safe + o, sizeof(safe) - o, "\\072");
		else
			safe[o++] = host[i];
	}
	safe[o] = '\0';
	snprintf(dst, len, "%lld.M%ldP%ldQ%lu.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
	    (long)getpid(), ++q, safe);
}

/* mkdir -p: path and every missing parent (0700). 0, or -1 with errno. */
static int
mkdir_p1(const char *path)
{
	char p[PATH_MAX];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(p)) {
		errno = n == 0 ? ENOENT : ENAMETOOLONG;
		return -1;
	}
	memcpy(p, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST)
			return -1;
		p[i] = path[i];
	}
	return 0;
}

/* Retrieve message num into maildir/tmp, then rename into new/. */
static int
fetch_maildir_one(struct fetch_opts *o, struct pop3client *p, unsigned long num,
    uint64_t *octets_r)
{
	char name[1200], tmp[4096], dst[4096];
	struct sink s;
	int fd, r;

	memset(&s, 0, sizeof(s));
	maildir_name(name, sizeof(name));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp/%s", o->maildir, name) >= sizeof(tmp) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/new/%s", o->maildir, name) >= sizeof(dst)) {
		fprintf(stderr, "mailcli fetch: maildir path too long\n");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1 || (s.f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "mailcli fetch: cannot create %s: %s\n", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	s.in_headers = true;
	r = pop3client_retr(p, num, sink_line, &s);
	if (r == 0 && (fflush(s.f) != 0 || fsync(fileno(s.f)) == -1))
		s.failed = true;
	if (fclose(s.f) != 0)
		s.failed = true;
	if (r != 0 || s.failed) {
		if (s.failed)
			fprintf(stderr, "mailcli fetch: writing %s: %s\n", tmp, strerror(errno));
		else
			cmd_failed(o, p, r, "RETR");
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, dst) == -1) {
		fprintf(stderr, "mailcli fetch: rename %s -> %s: %s\n", tmp, dst, strerror(errno));
		unlink(tmp);
		return -1;
	}
	/* The new name must be on disk too before the server may delete it. */
	snprintf(dst, sizeof(dst), "%s/new", o->maildir);
	if ((fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 || fsync(fd) == -1) {
		fprintf(stderr, "mailcli fetch: fsync %s: %s\n", dst, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	*octets_r = s.octets;
	return 0;
}

/* Lock the mbox with fcntl (what mutt and procmail also take), bounded wait. */
static int
lock_mbox(int fd)
{
	struct flock fl;
	int k;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	for (k = 0; k < FETCH_LOCK_WAIT * 10; k++) {
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EACCES && errno != EAGAIN)
			return -1;
		usleep(100000);
	}
	errno = ETIMEDOUT;
	return -1;
}

/* Retrieve message num into a temporary file, then append it to the locked
 * mbox with its From line; on a failed write the mbox is cut back. */
static int
fetch_mbox_one(struct fetch_opts *o, struct pop3client *p, int mfd, unsigned long num,
    uint64_t *octets_r)
{
	char fromline[512], chunk[65536], when[64];
	struct sink s;
	struct stat st;
	time_t now = time(NULL);
	struct tm tm;
	size_t n;
	int r, ret = -1;

	memset(&s, 0, sizeof(s));
	s.f = tmpfile();
	if (s.f == NULL) {
		fprintf(stderr, "mailcli fetch: temporary file: %s\n", strerror(errno));
		return -1;
	}
	s.mboxrd = true;
	s.in_headers = true;
	r = pop3client_retr(p, num, sink_line, &s);
	if (r != 0) {
		if (s.failed)
			fprintf(stderr, "mailcli fetch: temporary file: %s\n", strerror(errno));
		else
			cmd_failed(o, p, r, "RETR");
		fclose(s.f);
		return -1;
	}
	if (fflush(s.f) != 0 || fseeko(s.f, 0, SEEK_SET) != 0 || fstat(mfd, &st) == -1)
		goto io;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm);
	snprintf(fromline, sizeof(fromline), "From %s %s\n",
	    s.sender[0] ? s.sender : "MAILER-DAEMON", when);
	if (write(mfd, fromline, strlen(fromline)) != (ssize_t)strlen(fromline))
		goto rollback;
	while ((n = fread(chunk, 1, sizeof(chunk), s.f)) > 0)
		if (write(mfd, chunk, n) != (ssize_t)n)
			goto rollback;
	if (ferror(s.f) || write(mfd, "\n", 1) != 1 || fsync(mfd) == -1)
		goto rollback;
	*octets_r = s.octets;
	ret = 0;
	goto out;
rollback:
	fprintf(stderr, "mailcli fetch: writing %s: %s (mailbox left as it was)\n", o->mbox,
	    strerror(errno));
	if (ftruncate(mfd, st.st_size) == -1)
		fprintf(stderr, "mailcli fetch: could not cut %s back: %s\n", o->mbox, strerror(errno));
	goto out;
io:
	fprintf(stderr, "mailcli fetch: %s\n", strerror(errno));
out:
	fclose(s.f);
	return ret;
}

static int
do_fetch(struct fetch_opts *o, struct pop3client *p)
{
	struct pop3client_msg *v = NULL;
	struct uidstate u;
	char err[600], path[4096];
	uint64_t octets, total = 0;
	size_t n, k, got = 0, skipped = 0, deleted = 0;
	int mfd = -1, r, status = -1;
	bool have_uids;

	memset(&u, 0, sizeof(u));
	if (o->maildir != NULL) {
		static const char *subs[] = { "tmp", "new", "cur" };
		if (mkdir_p1(o->maildir) == -1) {
			fprintf(stderr, "mailcli fetch: cannot create %s: %s\n", o->maildir, strerror(errno));
			return -1;
		}
		for (k = 0; k < 3; k++) {
			snprintf(path, sizeof(path), "%s/%s", o->maildir, subs[k]);
			if (mkdir_p1(path) == -1) {
				fprintf(stderr, "mailcli fetch: cannot create %s: %s\n", path, strerror(errno));
				return -1;
			}
		}
	} else {
		mfd = open(o->mbox, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (mfd == -1) {
			fprintf(stderr, "mailcli fetch: cannot open %s: %s\n", o->mbox, strerror(errno));
			return -1;
		}
		if (lock_mbox(mfd) == -1) {
			fprintf(stderr, "mailcli fetch: cannot lock %s: %s\n", o->mbox, strerror(errno));
			close(mfd);
			return -1;
		}
	}
	if (uidstate_open(&u, o, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli fetch: %s\n", err);
		goto out;
	}
	if ((r = pop3client_list(p, true, &v, &n)) != 0) {
		cmd_failed(o, p, r, "LIST");
		goto out;
	}
	have_uids = n > 0 && v[0].uid[0] != '\0';
	if (!have_uids && n > 0 && !o->all)
		fprintf(stderr, "mailcli fetch: the server has no UIDL: every message is fetched\n");
	for (k = 0; k < n; k++) {
		if (!o->all && uidstate_has(&u, v[k].uid)) {
			skipped++;
		} else {
			r = o->maildir != NULL ? fetch_maildir_one(o, p, v[k].num, &octets) :
			    fetch_mbox_one(o, p, mfd, v[k].num, &octets);
			if (r == -1)
				goto out;	/* nothing after it is deleted */
			got++;
			total += octets;
			if (uidstate_add(&u, v[k].uid) == -1)
				fprintf(stderr, "mailcli fetch: warning: cannot record %s in %s: %s\n",
				    v[k].uid, u.path, strerror(errno));
		}
		if (o->del) {
			if ((r = pop3client_dele(p, v[k].num)) != 0) {
				cmd_failed(o, p, r, "DELE");
				goto out;
			}
			deleted++;
		}
	}
	if ((r = pop3client_quit(p)) != 0 && deleted > 0) {
		cmd_failed(o, p, r, "QUIT (nothing was deleted)");
		deleted = 0;
	}
	printf("%zu new message%s (%llu octets) into %s", got, got == 1 ? "" : "s",
	    (unsigned long long)total, o->maildir ? o->maildir : o->mbox);
	if (skipped > 0)
		printf(", %zu fetched before", skipped);
	if (o->del)
		printf(", %zu deleted from the server", deleted);
	printf("\n");
	status = 0;
out:
	free(v);
	uidstate_close(&u);
	if (mfd != -1)
		close(mfd);	/* releases the lock */
	return status;
}

/* ---- entry points ----------------------------------------------------- */

static int
run(enum fetch_cmd cmd, const char *name, int argc, char **argv)
{
	struct fetch_opts o;
	struct pop3client p;
	SSL_CTX *ctx = NULL;
	int r, status = 1;

	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
	p.conn.fd = -1;
	o.cmd = cmd;
	o.name = name;
	r = parse_args(&o, argc, argv);
	if (r != 0) {
		clientconf_free(&o.conf);
		return r == 1 ? 0 : 2;
	}
	if (session_start(&o, &p, &ctx) == 0) {
		switch (cmd) {
		case CMD_INBOX:  r = do_inbox(&o, &p); break;
		case CMD_READ:   r = do_read(&o, &p); break;
		case CMD_SAVE:   r = do_save(&o, &p); break;
		case CMD_DELETE: r = do_delete(&o, &p); break;
		case CMD_FETCH:  r = do_fetch(&o, &p); break;
		}
		if (cmd != CMD_DELETE && cmd != CMD_FETCH && !p.broken)
			(void)pop3client_quit(&p);
		status = r == 0 ? 0 : 1;
	}
	pop3client_close(&p);
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	clientconf_free(&o.conf);
	return status;
}

int
inbox_main(int argc, char **argv)
{
	return run(CMD_INBOX, "inbox", argc, argv);
}

int
read_main(int argc, char **argv)
{
	return run(CMD_READ, "read", argc, argv);
}

int
save_main(int argc, char **argv)
{
	return run(CMD_SAVE, "save", argc, argv);
}

int
delete_main(int argc, char **argv)
{
	return run(CMD_DELETE, "delete", argc, argv);
}

int
fetch_main(int argc, char **argv)
{
	return run(CMD_FETCH, "fetch", argc, argv);
}
