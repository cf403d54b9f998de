/*
 * compose.c - `mailcli compose`, and the compose_* functions send.c reuses
 * (see compose.h for the life cycle).
 *
 * Owns: the compose options, their validation (CR/LF and control characters
 * refused in every value, addresses checked with common/mailaddr, files
 * opened and stat'ed, bodies valid UTF-8) before anything is written, the
 * SMTP envelope (Bcc only there), Date / Message-ID / boundaries (fixed by
 * --deterministic or SOURCE_DATE_EPOCH), and the message's structure: one
 * text/plain part, or multipart/alternative (text + html) and/or
 * multipart/mixed with attachments (RFC 2046 5.1). RFC 5322 3.6 fields.
 * Never: writes a byte before every check has passed, reads an attachment
 * whole into memory, or puts a Bcc address in a header.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compose.h"
#include "mailaddr.h"
#include "mailcli.h"
#include "mime_write.h"
#include "numparse.h"
#include "rfc2047.h"
#include "strfmt.h"

enum compose_optid {
	CO_FROM, CO_TO, CO_CC, CO_BCC, CO_REPLY_TO, CO_SUBJECT, CO_HEADER, CO_BODY,
	CO_TEXT, CO_HTML, CO_ATTACH, CO_DETERMINISTIC, CO_DRY_RUN,
};

static const struct compose_optdef {
	const char	*name;
	enum compose_optid id;
	bool		 arg;
	const char	*help;
} compose_optdefs[] = {
	{ "from",          CO_FROM,          true,  "ADDR      sender, 'Name <user@domain>' (required)" },
	{ "to",            CO_TO,            true,  "ADDRS     recipients (repeatable, comma-separated)" },
	{ "cc",            CO_CC,            true,  "ADDRS     carbon-copy recipients" },
	{ "bcc",           CO_BCC,           true,  "ADDRS     blind recipients (envelope only, never in a header)" },
	{ "reply-to",      CO_REPLY_TO,      true,  "ADDRS     where replies go" },
	{ "subject",       CO_SUBJECT,       true,  "TEXT      subject (UTF-8)" },
	{ "header",        CO_HEADER,        true,  "'N: v'    an extra header (repeatable)" },
	{ "body",          CO_BODY,          true,  "FILE      text body from FILE ('-' = stdin)" },
	{ "text",          CO_TEXT,          true,  "STRING    text body from the argument" },
	{ "html",          CO_HTML,          true,  "FILE      HTML alternative (multipart/alternative)" },
	{ "attach",        CO_ATTACH,        true,  "FILE[;type=T][;name=N]  attach a file (repeatable)" },
	{ "deterministic", CO_DETERMINISTIC, false, "          fixed Date, Message-ID, boundaries (also SOURCE_DATE_EPOCH)" },
	{ "dry-run",       CO_DRY_RUN,       false, "          show the envelope beside the headers, write nothing" },
};

/* Headers that options or compose produce, and the trace fields that only
 * delivery adds (RFC 5321 4.4); --header may not set them. */
static const char *const reserved_headers[] = {
	"from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id",
	"mime-version", "content-type", "content-transfer-encoding",
	"content-disposition", "sender", "return-path", "received", NULL,
};

void
compose_init(struct compose_opts *o)
{
	memset(o, 0, sizeof(*o));
	buf_init(&o->body, COMPOSE_MAX_BODY);
	buf_init(&o->html, COMPOSE_MAX_BODY);
}

static void
addrlist_free(struct compose_addrlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].display);
		free(l->v[i].addr);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
compose_free(struct compose_opts *o)
{
	size_t i;

	free(o->from.display);
	free(o->from.addr);
	addrlist_free(&o->to);
	addrlist_free(&o->cc);
	addrlist_free(&o->bcc);
	addrlist_free(&o->reply_to);
	free(o->subject);
	for (i = 0; i < o->nheaders; i++)
		free(o->headers[i]);
	free(o->headers);
	free(o->body_path);
	free(o->text);
	free(o->html_path);
	for (i = 0; i < o->nattach; i++) {
		free(o->attach[i].path);
		free(o->attach[i].type);
		free(o->attach[i].name);
	}
	free(o->attach);
	buf_free(&o->body);
	buf_free(&o->html);
	free(o->env_rcpt);
	memset(o, 0, sizeof(*o));
}

/* No control characters but TAB, valid UTF-8. */
static bool
valid_text(const char *s)
{
	const char *p;

	for (p = s; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return rfc2047_is_utf8(s, strlen(s));
}

static char *
xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);

	if (d == NULL) {
		fprintf(stderr, "mailcli: out of memory\n");
		exit(1);
	}
	return d;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* One "Name <addr>", "\"Name\" <addr>" or "addr" into a. */
static int
parse_mailbox(char *item, struct compose_addr *a, char *err, size_t errlen)
{
	struct mailaddr ma;
	char reason[128], *lt, *gt, *disp, *addr, *d;
	size_t n;

	item = trim(item);
	lt = strrchr(item, '<');
	if (lt != NULL) {
		gt = strchr(lt, '>');
		if (gt == NULL || *trim(gt + 1) != '\0') {
			strfmt(err, errlen, "bad address '%s': expected 'Name <user@domain>'", item);
			return -1;
		}
		*gt = '\0';
		*lt = '\0';
		addr = trim(lt + 1);
		disp = trim(item);
		n = strlen(disp);
		if (n >= 2 && disp[0] == '"' && disp[n - 1] == '"') {	/* unquote */
			disp[n - 1] = '\0';
			disp++;
			for (d = disp, n = 0; disp[n]; n++) {
				if (disp[n] == '\\' && disp[n + 1] != '\0')
					n++;
				*d++ = disp[n];
			}
			*d = '\0';
		}
	} else {
		addr = item;
		disp = NULL;
	}
	if (*addr == '\0') {
		strfmt(err, errlen, "empty address");
		return -1;
	}
	if (mailaddr_parse(addr, &ma, reason, sizeof(reason)) == -1) {
		strfmt(err, errlen, "bad address '%s': %s", addr, reason);
		return -1;
	}
	if (ma.domain[0] == '\0') {
		strfmt(err, errlen, "bad address '%s': no domain (user@domain)", addr);
		return -1;
	}
	if (ma.utf8) {
		strfmt(err, errlen, "bad address '%s': non-ASCII addresses are not supported", addr);
		return -1;
	}
	if (disp != NULL && !valid_text(disp)) {
		strfmt(err, errlen, "bad display name in '%s': not UTF-8 text", addr);
		return -1;
	}
	a->display = disp != NULL && *disp != '\0' ? xstrndup(disp, strlen(disp)) : NULL;
	a->addr = xstrndup(addr, strlen(addr));
	return 0;
}

/* A comma-separated list; commas inside quotes or <> do not split. */
static int
parse_addrlist(const char *s, struct compose_addrlist *l, size_t *total, char *err, size_t errlen)
{
	char *copy = xstrndup(s, strlen(s)), *item = copy, *p;
	bool quoted = false, angle = false, done = false;
	struct compose_addr *v;
	int rc = -1;

	for (p = copy; !done; p++) {
		if (*p == '\\' && quoted && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '<' && !quoted)
			angle = true;
		else if (*p == '>' && !quoted)
			angle = false;
		else if ((*p == ',' && !quoted && !angle) || *p == '\0') {
			done = *p == '\0';
			*p = '\0';
			if (*trim(item) == '\0') {
				if (done && l->n > 0 && item != copy)
					break;
				strfmt(err, errlen, "empty address in '%s'", s);
				goto out;
			}
			if (++*total > COMPOSE_MAX_ADDRS) {
				strfmt(err, errlen, "too many addresses (at most %u)", COMPOSE_MAX_ADDRS);
				goto out;
			}
			if ((v = reallocarray(l->v, l->n + 1, sizeof(*v))) == NULL) {
				strfmt(err, errlen, "out of memory");
				goto out;
			}
			l->v = v;
			memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
			if (parse_mailbox(item, &l->v[l->n], err, errlen) == -1)
				goto out;
			l->n++;
			item = p + 1;
		}
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

static int
parse_header_opt(struct compose_opts *o, const char *v, char *err, size_t errlen)
{
	const char *colon = strchr(v, ':'), *p;
	const char *const *r;
	size_t namelen;
	char **h;

	if (o->nheaders >= COMPOSE_MAX_HEADERS) {
		strfmt(err, errlen, "too many --header options");
		return -1;
	}
	if (colon == NULL || colon == v) {
		strfmt(err, errlen, "--header '%s': expected 'Name: value'", v);
		return -1;
	}
	namelen = (size_t)(colon - v);
	for (p = v; p < colon; p++)	/* RFC 5322 2.2 ftext */
		if ((unsigned char)*p < 33 || (unsigned char)*p > 126) {
			strfmt(err, errlen, "--header '%s': bad character in the field name", v);
			return -1;
		}
	if (namelen > 70) {
		strfmt(err, errlen, "--header: field name too long");
		return -1;
	}
	for (r = reserved_headers; *r; r++)
		if (strlen(*r) == namelen && strncasecmp(v, *r, namelen) == 0) {
			strfmt(err, errlen, "--header: %.*s is set by its own option or by compose "
			    "(or, for trace fields, at delivery)", (int)namelen, v);
			return -1;
		}
	if (!valid_text(colon + 1)) {
		strfmt(err, errlen, "--header '%.*s': the value has control characters or is not UTF-8",
		    (int)namelen, v);
		return -1;
	}
	if ((h = reallocarray(o->headers, o->nheaders + 1, sizeof(*h))) == NULL) {
		strfmt(err, errlen, "out of memory");
		return -1;
	}
	o->headers = h;
	o->headers[o->nheaders++] = xstrndup(v, strlen(v));
	return 0;
}

/* RFC 2045 5.1 token */
static bool
valid_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] >= 127 ||
		    strchr("()<>@,;:\\\"/[]?=", s[i]) != NULL)
			return false;
	return true;
}

static bool
valid_mime_type(const char *t)
{
	const char *slash = strchr(t, '/');

	return slash != NULL && valid_token(t, (size_t)(slash - t)) &&
	    valid_token(slash + 1, strlen(slash + 1));
}

/* FILE[;type=T][;name=N]: the path ends where the first ;type= or ;name= begins. */
static int
parse_attach_opt(struct compose_opts *o, const char *v, char *err, size_t errlen)
{
	struct compose_attach *a, att = { 0 };
	const char *p = v, *semi, *next;
	size_t len;

	if (o->nattach >= COMPOSE_MAX_ATTACH) {
		strfmt(err, errlen, "too many attachments (at most %u)", COMPOSE_MAX_ATTACH);
		return -1;
	}
	for (semi = strchr(v, ';'); semi != NULL; semi = strchr(semi + 1, ';'))
		if (strncmp(semi, ";type=", 6) == 0 || strncmp(semi, ";name=", 6) == 0)
			break;
	len = semi ? (size_t)(semi - v) : strlen(v);
	if (len == 0) {
		strfmt(err, errlen, "--attach '%s': no file name", v);
		return -1;
	}
	att.path = xstrndup(v, len);
	for (p = semi; p != NULL; p = next) {
		const char *val = p + 6;
		for (next = strchr(val, ';'); next != NULL; next = strchr(next + 1, ';'))
			if (strncmp(next, ";type=", 6) == 0 || strncmp(next, ";name=", 6) == 0)
				break;
		len = next ? (size_t)(next - val) : strlen(val);
		if (strncmp(p, ";type=", 6) == 0) {
			free(att.type);
			att.type = xstrndup(val, len);
			if (!valid_mime_type(att.type)) {
				strfmt(err, errlen, "--attach: bad type '%s' (expected type/subtype)", att.type);
				goto fail;
			}
		} else {
			free(att.name);
			att.name = xstrndup(val, len);
			if (*att.name == '\0' || !valid_text(att.name)) {
				strfmt(err, errlen, "--attach: bad name '%s'", att.name);
				goto fail;
			}
		}
	}
	if ((a = reallocarray(o->attach, o->nattach + 1, sizeof(*a))) == NULL) {
		strfmt(err, errlen, "out of memory");
		goto fail;
	}
	o->attach = a;
	o->attach[o->nattach++] = att;
	return 0;
fail:
	free(att.path);
	free(att.type);
	free(att.name);
	return -1;
}

int
compose_parse_arg(struct compose_opts *o, int argc, char **argv, int *i, char *err, size_t errlen)
{
	const struct compose_optdef *d = NULL;
	const char *a = argv[*i], *val = NULL, *eq;
	size_t k, namelen, total;

	if (strncmp(a, "--", 2) != 0)
		return 0;
	eq = strchr(a + 2, '=');
	namelen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
	for (k = 0; k < sizeof(compose_optdefs) / sizeof(compose_optdefs[0]); k++)
		if (strlen(compose_optdefs[k].name) == namelen &&
		    strncmp(compose_optdefs[k].name, a + 2, namelen) == 0)
			d = &compose_optdefs[k];
	if (d == NULL)
		return 0;
	if (d->arg) {
		if (eq != NULL)
			val = eq + 1;
		else if (*i + 1 < argc)
			val = argv[++*i];
		else {
			strfmt(err, errlen, "--%s needs a value", d->name);
			return -1;
		}
		/* header injection: no value may carry a line break, except the
		 * --text body, which is text and never goes into a header */
		if (d->id != CO_TEXT && strpbrk(val, "\r\n") != NULL) {
			strfmt(err, errlen, "--%s: the value contains a line break (CR or LF); refused",
			    d->name);
			return -1;
		}
	} else if (eq != NULL) {
		strfmt(err, errlen, "--%s takes no value", d->name);
		return -1;
	}
	total = o->to.n + o->cc.n + o->bcc.n + o->reply_to.n;
	switch (d->id) {
	case CO_FROM: {
		struct compose_addrlist l = { 0 };
		size_t one = 0;
		if (o->from.addr != NULL) {
			strfmt(err, errlen, "--from given twice");
			return -1;
		}
		if (parse_addrlist(val, &l, &one, err, errlen) == -1) {
			addrlist_free(&l);
			return -1;
		}
		if (l.n != 1) {
			addrlist_free(&l);
			strfmt(err, errlen, "--from takes exactly one address");
			return -1;
		}
		o->from = l.v[0];
		free(l.v);
		break;
	}
	case CO_TO:
		return parse_addrlist(val, &o->to, &total, err, errlen) == -1 ? -1 : 1;
	case CO_CC:
		return parse_addrlist(val, &o->cc, &total, err, errlen) == -1 ? -1 : 1;
	case CO_BCC:
		return parse_addrlist(val, &o->bcc, &total, err, errlen) == -1 ? -1 : 1;
	case CO_REPLY_TO:
		return parse_addrlist(val, &o->reply_to, &total, err, errlen) == -1 ? -1 : 1;
	case CO_SUBJECT:
		if (o->subject != NULL) {
			strfmt(err, errlen, "--subject given twice");
			return -1;
		}
		if (!valid_text(val)) {
			strfmt(err, errlen, "--subject: control characters or invalid UTF-8");
			return -1;
		}
		o->subject = xstrndup(val, strlen(val));
		break;
	case CO_HEADER:
		return parse_header_opt(o, val, err, errlen) == -1 ? -1 : 1;
	case CO_BODY:
	case CO_TEXT:
		if (o->body_path != NULL || o->text != NULL) {
			strfmt(err, errlen, "give the body once: --body FILE or --text STRING");
			return -1;
		}
		if (d->id == CO_BODY)
			o->body_path = xstrndup(val, strlen(val));
		else
			o->text = xstrndup(val, strlen(val));
		break;
	case CO_HTML:
		if (o->html_path != NULL) {
			strfmt(err, errlen, "--html given twice");
			return -1;
		}
		o->html_path = xstrndup(val, strlen(val));
		break;
	case CO_ATTACH:
		return parse_attach_opt(o, val, err, errlen) == -1 ? -1 : 1;
	case CO_DETERMINISTIC:
		o->deterministic = true;
		break;
	case CO_DRY_RUN:
		o->dry_run = true;
		break;
	}
	return 1;
}

/* ---- prepare ---- */

static int
read_fd_into(int fd, struct buf *b, const char *what, char *err, size_t errlen)
{
	char chunk[65536];
	ssize_t r;

	if (buf_append(b, "", 0) == -1) {
		strfmt(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			strfmt(err, errlen, "%s: %s", what, strerror(errno));
			return -1;
		}
		if (r == 0)
			return 0;
		if (buf_append(b, chunk, (size_t)r) == -1) {
			strfmt(err, errlen, "%s: larger than %u bytes (send it with --attach)", what,
			    COMPOSE_MAX_BODY);
			return -1;
		}
	}
}

static int
read_text_file(const char *path, struct buf *b, const char *what, char *err, size_t errlen)
{
	char label[PATH_MAX + 32];
	int fd, rc;

	snprintf(label, sizeof(label), "%s %s", what, path);
	if (strcmp(path, "-") == 0)
		return read_fd_into(STDIN_FILENO, b, "standard input", err, errlen);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		strfmt(err, errlen, "%s: %s", label, strerror(errno));
		return -1;
	}
	rc = read_fd_into(fd, b, label, err, errlen);
	close(fd);
	return rc;
}

static uint64_t
fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *u = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= u[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
fnv1a_str(uint64_t h, const char *s)
{
	return s ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "", 1);
}

static uint64_t
random64(void)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&r;
	return r;
}

/* Is the addr already in the envelope? Domains compare case-insensitively. */
static bool
env_has(const struct compose_opts *o, const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t i, llen = at ? (size_t)(at - addr) : strlen(addr);

	for (i = 0; i < o->env_nrcpt; i++) {
		const char *e = o->env_rcpt[i], *eat = strrchr(e, '@');
		size_t elen = eat ? (size_t)(eat - e) : strlen(e);
		if (elen == llen && strncmp(e, addr, llen) == 0 &&
		    strcasecmp(eat ? eat : "", at ? at : "") == 0)
			return true;
	}
	return false;
}

/* The Content-Type for libmagic's answer: its type, plus the charset of a
 * text type when the charset is one a reader can use. */
static char *
attachment_type(const char *magic_answer)
{
	static const char *const charsets[] = { "us-ascii", "utf-8", "iso-8859-1", NULL };
	const char *semi, *cs;
	char type[128], *r;
	size_t i, n;

	if (magic_answer == NULL)
		return xstrndup("application/octet-stream", 24);
	semi = strchr(magic_answer, ';');
	n = semi ? (size_t)(semi - magic_answer) : strlen(magic_answer);
	if (n >= sizeof(type))
		return xstrndup("application/octet-stream", 24);
	memcpy(type, magic_answer, n);	/* UNSAFE: n < sizeof(type) checked above */
	type[n] = '\0';
	if (!valid_mime_type(type))
		return xstrndup("application/octet-stream", 24);
	if (strncmp(type, "text/", 5) == 0 && semi != NULL && (cs = strstr(semi, "charset=")) != NULL) {
		cs += 8;
		for (i = 0; charsets[i] != NULL; i++)
			if (strcmp(cs, charsets[i]) == 0 && asprintf(&r, "%s; charset=%s", type, cs) != -1)
				return r;
	}
	return xstrndup(type, n);
}

static int
prepare_attachment(struct compose_attach *a, magic_t *magic, char *err, size_t errlen)
{
	struct stat st;
	const char *t;
	char *copy, *base;
	int fd;

	if ((fd = open(a->path, O_RDONLY | O_CLOEXEC)) == -1) {
		strfmt(err, errlen, "attachment %s: %s", a->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		strfmt(err, errlen, "attachment %s: not a regular file", a->path);
		close(fd);
		return -1;
	}
	a->size = (uint64_t)st.st_size;
	if (a->type == NULL) {
		/* MAGIC_MIME = MAGIC_MIME_TYPE | MAGIC_MIME_ENCODING: "text/plain; charset=utf-8" */
		if (*magic == NULL && (*magic = magic_open(MAGIC_MIME | MAGIC_ERROR)) != NULL &&
		    magic_load(*magic, NULL) == -1) {
			magic_close(*magic);
			*magic = NULL;
		}
		t = *magic ? magic_descriptor(*magic, fd) : NULL;
		a->type = attachment_type(t);
	}
	close(fd);
	if (a->name == NULL) {
		copy = xstrndup(a->path, strlen(a->path));
		base = basename(copy);
		a->name = xstrndup(base, strlen(base));
		free(copy);
		if (!valid_text(a->name)) {
			strfmt(err, errlen, "attachment %s: the file name is not UTF-8; give ;name=",
			    a->path);
			return -1;
		}
	}
	return 0;
}

int
compose_prepare_status(const struct compose_opts *o)
{
	return o->from.addr == NULL || o->to.n + o->cc.n + o->bcc.n == 0 ? 2 : 1;
}

int
compose_prepare(struct compose_opts *o, char *err, size_t errlen)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH"), *domain;
	struct compose_addrlist *lists[3] = { &o->to, &o->cc, &o->bcc };
	magic_t magic = NULL;
	uint64_t h, r;
	size_t i, k, n;
	int rc;

	if (o->from.addr == NULL) {
		strfmt(err, errlen, "no sender: give --from 'Name <user@domain>'");
		return -1;
	}
	if (o->to.n + o->cc.n + o->bcc.n == 0) {
		strfmt(err, errlen, "no recipient: give --to, --cc or --bcc");
		return -1;
	}
	/* Date */
	if (sde != NULL && *sde != '\0') {
		uint64_t v;
		if (numparse_u64z(sde, INT64_MAX, &v) != NUMPARSE_OK) {
			strfmt(err, errlen, "SOURCE_DATE_EPOCH is not a number of seconds: '%s'", sde);
			return -1;
		}
		o->deterministic = true;
		o->date = (time_t)v;
	} else if (o->deterministic)
		o->date = 0;
	else
		o->date = time(NULL);

	/* bodies */
	buf_reset(&o->body);
	buf_reset(&o->html);
	if (o->text != NULL) {
		if (buf_puts(&o->body, o->text) == -1) {
			strfmt(err, errlen, "--text too long");
			return -1;
		}
	} else {
		if (o->body_path == NULL && isatty(STDIN_FILENO))
			fprintf(stderr, "mailcli: type the message text, end with Ctrl-D on a line of its own\n");
		if (read_text_file(o->body_path ? o->body_path : "-", &o->body, "body", err, errlen) == -1)
			return -1;
	}
	if (!rfc2047_is_utf8(o->body.data, o->body.len)) {
		strfmt(err, errlen, "the body is not valid UTF-8 (convert it with iconv, or --attach it)");
		return -1;
	}
	if (o->html_path != NULL) {
		if (read_text_file(o->html_path, &o->html, "html", err, errlen) == -1)
			return -1;
		if (!rfc2047_is_utf8(o->html.data, o->html.len)) {
			strfmt(err, errlen, "%s is not valid UTF-8", o->html_path);
			return -1;
		}
	}
	/* attachments */
	rc = 0;
	for (i = 0; i < o->nattach && rc == 0; i++)
		rc = prepare_attachment(&o->attach[i], &magic, err, errlen);
	if (magic != NULL)
		magic_close(magic);
	if (rc == -1)
		return -1;

	/* Message-ID and boundaries: random, or a hash of the input when deterministic */
	h = 0xcbf29ce484222325ULL;
	h = fnv1a_str(h, o->from.addr);
	for (k = 0; k < 3; k++)
		for (i = 0; i < lists[k]->n; i++)
			h = fnv1a_str(h, lists[k]->v[i].addr);
	h = fnv1a_str(h, o->subject);
	h = fnv1a(h, o->body.data, o->body.len);
	h = fnv1a(h, o->html.data ? o->html.data : "", o->html.len);
	for (i = 0; i < o->nattach; i++) {
		h = fnv1a_str(h, o->attach[i].name);
		h = fnv1a(h, &o->attach[i].size, sizeof(o->attach[i].size));
	}
	h = fnv1a(h, &o->date, sizeof(o->date));
	domain = strrchr(o->from.addr, '@') + 1;
	if (o->deterministic)
		snprintf(o->message_id, sizeof(o->message_id), "<%lld.%016llx@%s>",
		    (long long)o->date, (unsigned long long)h, domain);
	else
		snprintf(o->message_id, sizeof(o->message_id), "<%lld.%016llx@%s>",
		    (long long)o->date, (unsigned long long)random64(), domain);
	for (r = o->deterministic ? h : random64();; r++) {
		mime_boundary_make(o->boundary_mixed, sizeof(o->boundary_mixed), "mixed", r);
		mime_boundary_make(o->boundary_alt, sizeof(o->boundary_alt), "alt", r);
		/* base64 and quoted-printable cannot contain "=_"; 7bit text might */
		if (mime_boundary_is_safe("=_correio_", o->body.data, o->body.len) &&
		    mime_boundary_is_safe("=_correio_", o->html.data ? o->html.data : "", o->html.len))
			break;
		if (mime_boundary_is_safe(o->boundary_mixed, o->body.data, o->body.len) &&
		    mime_boundary_is_safe(o->boundary_alt, o->body.data, o->body.len) &&
		    mime_boundary_is_safe(o->boundary_mixed, o->html.data ? o->html.data : "", o->html.len) &&
		    mime_boundary_is_safe(o->boundary_alt, o->html.data ? o->html.data : "", o->html.len))
			break;
	}

	/* envelope */
	free(o->env_rcpt);
	n = o->to.n + o->cc.n + o->bcc.n;
	if ((o->env_rcpt = calloc(n, sizeof(*o->env_rcpt))) == NULL) {
		strfmt(err, errlen, "out of memory");
		return -1;
	}
	o->env_nrcpt = 0;
	o->env_from = o->from.addr;
	for (k = 0; k < 3; k++)
		for (i = 0; i < lists[k]->n; i++)
			if (!env_has(o, lists[k]->v[i].addr))
				o->env_rcpt[o->env_nrcpt++] = lists[k]->v[i].addr;
	return 0;
}

/* ---- writing ---- */

static int
write_headers(struct mime_out *w, const struct compose_opts *o)
{
	char date[64];
	size_t i;
	const char *colon;
	char name[80];

	mime_date(o->date, o->deterministic, date, sizeof(date));
	if (mime_out_puts(w, "Date: ") == -1 || mime_out_puts(w, date) == -1 ||
	    mime_out_puts(w, "\r\n") == -1)
		return -1;
	if (mime_write_addresses(w, "From", &o->from, 1) == -1)
		return -1;
	if (o->to.n > 0) {
		if (mime_write_addresses(w, "To", o->to.v, o->to.n) == -1)
			return -1;
	} else if (o->cc.n == 0 && mime_out_puts(w, "To: undisclosed-recipients:;\r\n") == -1)
		return -1;	/* RFC 5322 A.1.3 */
	if (o->cc.n > 0 && mime_write_addresses(w, "Cc", o->cc.v, o->cc.n) == -1)
		return -1;
	if (o->reply_to.n > 0 && mime_write_addresses(w, "Reply-To", o->reply_to.v, o->reply_to.n) == -1)
		return -1;
	if (o->subject != NULL && mime_write_unstructured(w, "Subject", o->subject) == -1)
		return -1;
	if (mime_out_puts(w, "Message-ID: ") == -1 || mime_out_puts(w, o->message_id) == -1 ||
	    mime_out_puts(w, "\r\n") == -1)
		return -1;
	for (i = 0; i < o->nheaders; i++) {
		colon = strchr(o->headers[i], ':');
		snprintf(name, sizeof(name), "%.*s", (int)(colon - o->headers[i]), o->headers[i]);
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		if (mime_write_unstructured(w, name, colon) == -1)
			return -1;
	}
	return mime_out_puts(w, "MIME-Version: 1.0\r\n");
}

static int
write_text_part(struct mime_out *w, const char *subtype, const struct buf *b, bool final)
{
	const char *p = b->data ? b->data : "";
	const char *enc = mime_text_encoding(p, b->len);

	/* The last part of the message and no final line break: quoted-printable
	 * can end on a soft break, so the text reads back exactly as given. */
	if (final && b->len > 0 && p[b->len - 1] != '\n')
		enc = "quoted-printable";

	if (mime_out_puts(w, "Content-Type: text/") == -1 || mime_out_puts(w, subtype) == -1 ||
	    mime_out_puts(w, "; charset=utf-8\r\nContent-Transfer-Encoding: ") == -1 ||
	    mime_out_puts(w, enc) == -1 || mime_out_puts(w, "\r\n\r\n") == -1)
		return -1;
	return mime_write_text(w, p, b->len, enc, final);
}

static int
write_multipart_header(struct mime_out *w, const char *subtype, const char *boundary)
{
	struct mime_hdr h;
	char tok[128];

	snprintf(tok, sizeof(tok), "multipart/%s;", subtype);
	if (mime_hdr_begin(&h, "Content-Type") == -1 || mime_hdr_token(&h, tok, strlen(tok)) == -1)
		goto fail;
	snprintf(tok, sizeof(tok), "boundary=\"%s\"", boundary);
	if (mime_hdr_token(&h, tok, strlen(tok)) == -1)
		goto fail;
	return mime_hdr_end(&h, w);
fail:
	mime_hdr_free(&h);
	return -1;
}

/* The delimiter line (RFC 2046 5.1.1); the CRLF before it belongs to it. */
static int
delimiter(struct mime_out *w, const char *boundary, bool first, bool close)
{
	if ((!first && mime_out_puts(w, "\r\n") == -1) || mime_out_puts(w, "--") == -1 ||
	    mime_out_puts(w, boundary) == -1)
		return -1;
	return mime_out_puts(w, close ? "--\r\n" : "\r\n");
}

static int
write_alternative(struct mime_out *w, const struct compose_opts *o)
{
	if (write_multipart_header(w, "alternative", o->boundary_alt) == -1 ||
	    mime_out_puts(w, "\r\n") == -1 ||
	    delimiter(w, o->boundary_alt, true, false) == -1 ||
	    write_text_part(w, "plain", &o->body, false) == -1 ||
	    delimiter(w, o->boundary_alt, false, false) == -1 ||
	    write_text_part(w, "html", &o->html, false) == -1)
		return -1;
	return delimiter(w, o->boundary_alt, false, true);
}

static int
write_attachment(struct mime_out *w, const struct compose_attach *a, char *err, size_t errlen)
{
	int fd = -1, rc;

	if (mime_write_attachment_headers(w, a->type, a->name) == -1 || mime_out_puts(w, "\r\n") == -1) {
		strfmt(err, errlen, "write failed");
		return -1;
	}
	if (w->sink != NULL && (fd = open(a->path, O_RDONLY | O_CLOEXEC)) == -1) {
		strfmt(err, errlen, "attachment %s: %s", a->path, strerror(errno));
		return -1;
	}
#ifdef POSIX_FADV_SEQUENTIAL
	if (fd != -1)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	rc = mime_write_base64_fd(w, fd, a->size, err, errlen);
	if (rc == -1 && strncmp(err, "write", 5) != 0) {
		char tmp[256];
		snprintf(tmp, sizeof(tmp), "attachment %s: %s", a->path, err);
		snprintf(err, errlen, "%s", tmp);
	}
	if (fd != -1)
		close(fd);
	return rc;
}

static int
compose_emit(struct mime_out *w, const struct compose_opts *o, char *err, size_t errlen)
{
	bool html = o->html_path != NULL;
	bool text = o->body.len > 0 || o->nattach == 0 || html;
	size_t i;

	if (write_headers(w, o) == -1)
		goto wfail;
	if (o->nattach == 0) {
		if (html)
			return write_alternative(w, o) == -1 ? (strfmt(err, errlen, "write failed"), -1) : 0;
		if (write_text_part(w, "plain", &o->body, true) == -1)
			goto wfail;
		return 0;
	}
	if (write_multipart_header(w, "mixed", o->boundary_mixed) == -1 ||
	    mime_out_puts(w, "\r\nThis is a multi-part message in MIME format.") == -1)
		goto wfail;
	if (text) {
		if (delimiter(w, o->boundary_mixed, false, false) == -1)
			goto wfail;
		if ((html ? write_alternative(w, o) : write_text_part(w, "plain", &o->body, false)) == -1)
			goto wfail;
	}
	for (i = 0; i < o->nattach; i++) {
		if (delimiter(w, o->boundary_mixed, false, false) == -1)
			goto wfail;
		if (write_attachment(w, &o->attach[i], err, errlen) == -1)
			return -1;
	}
	if (delimiter(w, o->boundary_mixed, false, true) == -1)
		goto wfail;
	return 0;
wfail:
	strfmt(err, errlen, "write failed");
	return -1;
}

int
compose_size(const struct compose_opts *o, uint64_t *size_r)
{
	struct mime_out w = { NULL, NULL, 0, false };
	char err[256];

	if (compose_emit(&w, o, err, sizeof(err)) == -1)
		return -1;
	*size_r = w.count;
	return 0;
}

int
compose_write(const struct compose_opts *o, compose_sink sink, void *ctx, char *err, size_t errlen)
{
	struct mime_out w = { sink, ctx, 0, false };

	return compose_emit(&w, o, err, errlen);
}

static int
file_sink(void *ctx, const void *p, size_t n)
{
	return fwrite(p, 1, n, (FILE *)ctx) == n ? 0 : -1;
}

int
compose_write_file(const struct compose_opts *o, FILE *out, char *err, size_t errlen)
{
	if (compose_write(o, file_sink, out, err, errlen) == -1) {
		if (ferror(out))
			strfmt(err, errlen, "write: %s", strerror(errno));
		return -1;
	}
	if (fflush(out) == EOF || ferror(out)) {
		strfmt(err, errlen, "write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* "Name <addr>" for people (UTF-8 as given). */
static void
format_mailbox(const struct compose_addr *a, char *dst, size_t len)
{
	if (a->display)
		snprintf(dst, len, "%s <%s>", a->display, a->addr);
	else
		snprintf(dst, len, "%s", a->addr);
}

void
compose_print_envelope(FILE *out, const struct compose_opts *o)
{
	char left[400], right[700], mb[600];
	size_t rows, i, k, hi = 0;
	const char *labels[3] = { "To", "Cc", "Bcc" };
	const struct compose_addrlist *lists[3] = { &o->to, &o->cc, &o->bcc };
	struct { const char *label; const struct compose_addr *a; } *hdr;
	size_t nhdr = 1 + o->to.n + o->cc.n + o->bcc.n;

	if ((hdr = calloc(nhdr, sizeof(*hdr))) == NULL)
		return;
	hdr[hi].label = "From";
	hdr[hi++].a = &o->from;
	for (k = 0; k < 3; k++)
		for (i = 0; i < lists[k]->n; i++) {
			hdr[hi].label = labels[k];
			hdr[hi++].a = &lists[k]->v[i];
		}
	fprintf(out, "%-40s %s\n", "envelope (SMTP, who receives it)", "headers (what recipients see)");
	rows = 1 + o->env_nrcpt > nhdr ? 1 + o->env_nrcpt : nhdr;
	for (i = 0; i < rows; i++) {
		left[0] = right[0] = '\0';
		if (i == 0)
			snprintf(left, sizeof(left), "MAIL FROM:<%s>", o->env_from ? o->env_from : "");
		else if (i - 1 < o->env_nrcpt)
			snprintf(left, sizeof(left), "RCPT TO:<%s>", o->env_rcpt[i - 1]);
		if (i < nhdr) {
			format_mailbox(hdr[i].a, mb, sizeof(mb));
			if (strcmp(hdr[i].label, "Bcc") == 0)
				snprintf(right, sizeof(right), "(Bcc %s: envelope only, not in any header)",
				    hdr[i].a->addr);
			else
				snprintf(right, sizeof(right), "%s: %s", hdr[i].label, mb);
		}
		fprintf(out, "%-40s %s\n", left, right);
	}
	if (o->to.n == 0 && o->cc.n == 0)
		fprintf(out, "%-40s %s\n", "", "To: undisclosed-recipients:;");
	free(hdr);
}

void
compose_usage_options(FILE *out)
{
	size_t k;

	for (k = 0; k < sizeof(compose_optdefs) / sizeof(compose_optdefs[0]); k++)
		fprintf(out, "  --%-14s %s\n", compose_optdefs[k].name, compose_optdefs[k].help);
}

/* ---- mailcli compose ---- */

static void
compose_usage(FILE *f)
{
	fprintf(f, "usage: mailcli compose --from ADDR --to ADDRS [options] [-o FILE]\n\n"
	    "Writes an RFC 5322 message (CRLF line endings) to standard output or FILE.\n"
	    "The text comes from --body, --text or standard input.\n\noptions:\n");
	compose_usage_options(f);
	fprintf(f, "  -o, --output FILE  write the message to FILE (replaced atomically)\n"
	    "  -h, --help         this help\n");
}

/* Write to path through a temporary file in the same directory, renamed at the end. */
static int
write_to_path(const struct compose_opts *o, const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	struct stat st;
	mode_t um;
	FILE *f;
	int fd;

	/* not a regular file (/dev/stdout, /dev/null, a FIFO): write to it as it is,
	 * never rename over it */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if ((f = fopen(path, "w")) == NULL) {
			strfmt(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (compose_write_file(o, f, err, errlen) == -1) {
			fclose(f);
			return -1;
		}
		if (fclose(f) == EOF) {
			strfmt(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		strfmt(err, errlen, "%s: name too long", path);
		return -1;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		strfmt(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	um = umask(0);
	umask(um);
	(void)fchmod(fd, 0666 & ~um);
	if ((f = fdopen(fd, "w")) == NULL) {
		strfmt(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (compose_write_file(o, f, err, errlen) == -1) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fsync(fileno(f)) == -1 || fclose(f) == EOF) {
		strfmt(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) == -1) {
		strfmt(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
compose_main(int argc, char **argv)
{
	static char obuf[1 << 18];
	struct compose_opts o;
	const char *output = NULL;
	char err[1024];
	int i, r, status = 1;

	compose_init(&o);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			compose_usage(stdout);
			compose_free(&o);
			return 0;
		}
		if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "mailcli compose: %s needs a file name\n", argv[i]);
				goto usage;
			}
			output = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--output=", 9) == 0) {
			output = argv[i] + 9;
			continue;
		}
		r = compose_parse_arg(&o, argc, argv, &i, err, sizeof(err));
		if (r == -1) {
			fprintf(stderr, "mailcli compose: %s\n", err);
			goto usage;
		}
		if (r == 0) {
			fprintf(stderr, "mailcli compose: unknown option '%s'\n", argv[i]);
			goto usage;
		}
	}
	if (compose_prepare(&o, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailcli compose: %s\n", err);
		status = compose_prepare_status(&o);
		goto done;
	}
	if (o.dry_run) {
		compose_print_envelope(stdout, &o);
		status = 0;
		goto done;
	}
	if (output != NULL) {
		if (write_to_path(&o, output, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailcli compose: %s\n", err);
			goto done;
		}
	} else {
		setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
		if (compose_write_file(&o, stdout, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailcli compose: %s\n", err);
			goto done;
		}
	}
	status = 0;
done:
	compose_free(&o);
	return status;
usage:
	compose_free(&o);
	fprintf(stderr, "'mailcli compose --help' lists the options.\n");
	return 2;
}
