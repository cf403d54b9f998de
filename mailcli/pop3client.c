/*
 * pop3client.c - the POP3 client session: greeting, CAPA, STLS, login
 * (SASL PLAIN or USER/PASS), STAT, LIST/UIDL, TOP, RETR, DELE, QUIT
 * (RFC 1939 4-7, RFC 2449 5-6, RFC 2595 4, RFC 5034 4). Status lines and
 * bodies are parsed by common/replyparse.c. See pop3client.h.
 * Must never: trace a password, or leave a multi-line response half read.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "numparse.h"
#include "pop3client.h"
#include "replyparse.h"

#define POP3CLIENT_MAX_MSGS	1000000		/* entries accepted in a LIST */
#define POP3CLIENT_CAPA_MAX	200		/* lines accepted in a CAPA response */
#define POP3CLIENT_DRAIN_MAX	(64ULL * 1024 * 1024)	/* octets read past a refused line */

static void
set_errf(struct pop3client *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_errf(struct pop3client *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
}

/* Copy a possibly longer string, cutting it to fit. */
static void
scopy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Read a status line: 1 for +OK, 0 for -ERR, 2 for a "+ " continuation, -1. */
static int
read_status(struct pop3client *p)
{
	const char *text;
	char *line;
	size_t len;
	int r;

	if (clientconn_readline(&p->conn, &line, &len) == -1) {
		set_errf(p, "%s", p->conn.err);
		p->broken = true;
		return -1;
	}
	p->resp_code[0] = '\0';
	if (len >= 1 && line[0] == '+' && (len == 1 || line[1] == ' ')) {
		snprintf(p->status, sizeof(p->status), "%s", len > 2 ? line + 2 : "");
		clientconn_defang(p->status);
		return 2;
	}
	r = pop3_status_parse(line, &text, p->resp_code, sizeof(p->resp_code));
	if (r == -1) {
		clientconn_defang(line);
		set_errf(p, "unexpected reply from %s: %.200s", p->conn.host, line);
		p->broken = true;
		return -1;
	}
	snprintf(p->status, sizeof(p->status), "%s", text);
	clientconn_defang(p->status);
	return r;
}

static int
flush(struct pop3client *p)
{
	if (clientconn_flush(&p->conn) == -1) {
		set_errf(p, "%s", p->conn.err);
		p->broken = true;
		return -1;
	}
	return 0;
}

/* Send a command and read its status: 0 +OK, 1 -ERR, 2 continuation, -1. */
static int
command(struct pop3client *p, bool secret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
command(struct pop3client *p, bool secret, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = clientconn_vcmd(&p->conn, secret, fmt, ap);
	va_end(ap);
	if (r == -1) {
		set_errf(p, "%s", p->conn.err);
		p->broken = true;
		return -1;
	}
	if (flush(p) == -1)
		return -1;
	r = read_status(p);
	if (r == -1)
		return -1;
	return r == 1 ? 0 : r == 0 ? 1 : 2;
}

/*
 * Read a multi-line body up to its ".", handing each un-stuffed line to cb.
 * The server's lines are summarised in the trace instead of printed.
 */
static int
read_body(struct pop3client *p, bool summarise, pop3client_line_cb cb, void *ctx)
{
	const char *out;
	char *line;
	size_t len, outlen;
	unsigned long long lines = 0, octets = 0, failed_at = 0;
	bool failed = false, saved = p->conn.trace_server;

	if (summarise && !p->trace_body)
		p->conn.trace_server = false;
	for (;;) {
		if (clientconn_readline(&p->conn, &line, &len) == -1) {
			set_errf(p, "%s", p->conn.err);
			p->conn.trace_server = saved;
			p->broken = true;
			return -1;
		}
		if (pop3_body_line(line, len, &out, &outlen) == 1)
			break;
		lines++;
		octets += outlen + 2;
		if (!failed && cb != NULL && cb(ctx, out, outlen) == -1) {
			failed = true;	/* keep reading: the session stays in step */
			failed_at = octets;
		}
		if (failed && octets - failed_at > POP3CLIENT_DRAIN_MAX) {
			/* ... but not forever for a server that never ends. */
			p->conn.trace_server = saved;
			if (p->err[0] == '\0')
				set_errf(p, "could not store the response");
			p->broken = true;
			return -1;
		}
	}
	if (p->conn.trace_server != saved) {
		p->conn.trace_server = saved;
		clientconn_note(&p->conn, "%llu lines, %llu octets", lines, octets);
		if (p->conn.trace != NULL && p->conn.trace_server) {
			fprintf(p->conn.trace, "S: .\n");
			fflush(p->conn.trace);
		}
	}
	if (failed) {
		if (p->err[0] == '\0')
			set_errf(p, "could not store the response");
		return -1;
	}
	return 0;
}

static int
greeting(struct pop3client *p)
{
	int r = read_status(p);

	if (r == -1)
		return -1;
	snprintf(p->greeting, sizeof(p->greeting), "%s", p->status);
	return r == 1 ? 0 : 1;
}

int
pop3client_open(struct pop3client *p, const char *host, const char *port,
    int timeout_s, FILE *trace)
{
	memset(p, 0, sizeof(*p));
	if (clientconn_open(&p->conn, host, port, timeout_s, POP3CLIENT_LINE_MAX, trace) == -1) {
		set_errf(p, "%s", p->conn.err);
		return -1;
	}
	return greeting(p);
}

int
pop3client_open_tls(struct pop3client *p, const char *host, const char *port,
    int timeout_s, FILE *trace, SSL_CTX *ctx)
{
	memset(p, 0, sizeof(*p));
	if (clientconn_open(&p->conn, host, port, timeout_s, POP3CLIENT_LINE_MAX, trace) == -1 ||
	    clientconn_starttls(&p->conn, ctx) == -1) {
		set_errf(p, "%s", p->conn.err);
		return -1;
	}
	return greeting(p);
}

static int
capa_line(void *ctx, const char *line, size_t len)
{
	struct pop3client *p = ctx;
	struct pop3client_caps *c = &p->caps;
	char kw[64], args[256], *tok, *save = NULL;
	size_t k = 0, cl = strlen(p->capa_text);

	if (++p->capa_lines > POP3CLIENT_CAPA_MAX) {
		set_errf(p, "more than %d CAPA lines", POP3CLIENT_CAPA_MAX);
		return -1;
	}

	if (cl + len + 2 < sizeof(p->capa_text)) {
		memcpy(p->capa_text + cl, line, len);
		p->capa_text[cl + len] = '\n';
		p->capa_text[cl + len + 1] = '\0';
	}
	while (k < len && k < sizeof(kw) - 1 && line[k] != ' ') {
		kw[k] = (char)toupper((unsigned char)line[k]);
		k++;
	}
	kw[k] = '\0';
	snprintf(args, sizeof(args), "%.*s", (int)(len > k ? len - k - 1 : 0),
	    len > k ? line + k + 1 : "");
	if (strcmp(kw, "STLS") == 0)
		c->stls = true;
	else if (strcmp(kw, "TOP") == 0)
		c->top = true;
	else if (strcmp(kw, "UIDL") == 0)
		c->uidl = true;
	else if (strcmp(kw, "USER") == 0)
		c->user = true;
	else if (strcmp(kw, "PIPELINING") == 0)
		c->pipelining = true;
	else if (strcmp(kw, "RESP-CODES") == 0)
		c->resp_codes = true;
	else if (strcmp(kw, "IMPLEMENTATION") == 0) {
		scopy(c->implementation, sizeof(c->implementation), args);
		clientconn_defang(c->implementation);
	} else if (strcmp(kw, "EXPIRE") == 0) {
		scopy(c->expire, sizeof(c->expire), args);
		clientconn_defang(c->expire);
	} else if (strcmp(kw, "LOGIN-DELAY") == 0) {
		scopy(c->login_delay, sizeof(c->login_delay), args);
		clientconn_defang(c->login_delay);
	}
	else if (strcmp(kw, "SASL") == 0) {
		scopy(c->sasl, sizeof(c->sasl), args);
		for (tok = strtok_r(args, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			if (strcasecmp(tok, "PLAIN") == 0)
				c->sasl_plain = true;
			else if (strcasecmp(tok, "LOGIN") == 0)
				c->sasl_login = true;
		}
	}
	return 0;
}

int
pop3client_capa(struct pop3client *p)
{
	int r;

	memset(&p->caps, 0, sizeof(p->caps));
	p->capa_text[0] = '\0';
	p->capa_lines = 0;
	if ((r = command(p, false, "CAPA")) != 0)
		return r == 2 ? 1 : r;
	p->caps.capa = true;
	return read_body(p, false, capa_line, p) == -1 ? -1 : 0;
}

int
pop3client_stls(struct pop3client *p, SSL_CTX *ctx)
{
	int r;

	if ((r = command(p, false, "STLS")) != 0)
		return r == 2 ? 1 : r;
	if (clientconn_starttls(&p->conn, ctx) == -1) {
		set_errf(p, "%s", p->conn.err);
		return -1;
	}
	r = pop3client_capa(p);
	return r == -1 ? -1 : 0;
}

int
pop3client_login(struct pop3client *p, const char *user, const char *password)
{
	char enc[CLIENTCONN_SASL_ENC];
	int r;

	if (clientconn_sasl_plain(user, password, enc, sizeof(enc)) == -1) {
		set_errf(p, "user name or password too long (%d octets at most)", CLIENTCONN_SASL_MAX);
		return -1;
	}
	if (p->caps.sasl_plain) {
		r = command(p, true, "AUTH PLAIN %s", enc);
		if (r == 2)	/* "+ ": it wants the response on its own line (RFC 5034 4) */
			r = command(p, true, "%s", enc);
		explicit_bzero(enc, sizeof(enc));
		return r == 2 ? 1 : r;
	}
	explicit_bzero(enc, sizeof(enc));
	if ((r = command(p, false, "USER %s", user)) != 0)
		return r == 2 ? 1 : r;
	r = command(p, true, "PASS %s", password);
	return r == 2 ? 1 : r;
}

struct list_ctx {
	struct pop3client *p;
	struct pop3client_msg *v;
	size_t	 n, cap;
	bool	 uidl;		/* filling uids of existing entries */
};

static int
list_line(void *vctx, const char *line, size_t len)
{
	struct list_ctx *x = vctx;
	const char *q = line;
	uint64_t num, size;
	size_t k, ulen;

	(void)len;
	if (x->uidl) {
		if (numparse_u64_word(&q, ULONG_MAX, &num) != NUMPARSE_OK)
			return 0;	/* skip what we do not understand */
		/* RFC 1939 7: 1 to 70 characters 0x21..0x7E. Anything else is
		 * not kept: a cut one could equal another message's, and it
		 * goes into the state file and onto the terminal. */
		ulen = strcspn(q, " ");
		if (ulen == 0 || ulen > POP3CLIENT_UID_MAX)
			return 0;
		for (k = 0; k < ulen; k++)
			if ((unsigned char)q[k] < 0x21 || (unsigned char)q[k] > 0x7e)
				return 0;
		for (k = 0; k < x->n; k++)
			if (x->v[k].num == num) {
				memcpy(x->v[k].uid, q, ulen);
				x->v[k].uid[ulen] = '\0';
				break;
			}
		return 0;
	}
	/* "num octets": both never wrap (a 2^64 + 1 is malformed, not 1) */
	if (numparse_u64_word(&q, ULONG_MAX, &num) != NUMPARSE_OK ||
	    numparse_u64_word(&q, UINT64_MAX, &size) != NUMPARSE_OK) {
		set_errf(x->p, "malformed LIST line: %.100s", line);
		return -1;
	}
	if (x->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 64;
		struct pop3client_msg *nv;
		if (ncap > POP3CLIENT_MAX_MSGS) {
			set_errf(x->p, "more than %d messages listed", POP3CLIENT_MAX_MSGS);
			return -1;
		}
		nv = reallocarray(x->v, ncap, sizeof(*nv));
		if (nv == NULL) {
			set_errf(x->p, "out of memory");
			return -1;
		}
		x->v = nv;
		x->cap = ncap;
	}
	memset(&x->v[x->n], 0, sizeof(x->v[x->n]));
	x->v[x->n].num = num;
	x->v[x->n].size = size;
	x->n++;
	return 0;
}

int
pop3client_list(struct pop3client *p, bool uids, struct pop3client_msg **v_r, size_t *n_r)
{
	struct list_ctx x = { p, NULL, 0, 0, false };
	int r;

	*v_r = NULL;
	*n_r = 0;
	p->err[0] = '\0';
	if ((r = command(p, false, "LIST")) != 0)
		return r == 2 ? 1 : r;
	if (read_body(p, false, list_line, &x) == -1) {
		free(x.v);
		return -1;
	}
	if (uids && x.n > 0) {
		x.uidl = true;
		r = command(p, false, "UIDL");
		if (r == -1 || (r == 0 && read_body(p, false, list_line, &x) == -1)) {
			free(x.v);
			return -1;
		}
	}
	*v_r = x.v;
	*n_r = x.n;
	return 0;
}

int
pop3client_top(struct pop3client *p, unsigned long num, unsigned long lines,
    pop3client_line_cb cb, void *ctx)
{
	int r;

	p->err[0] = '\0';
	if ((r = command(p, false, "TOP %lu %lu", num, lines)) != 0)
		return r == 2 ? 1 : r;
	return read_body(p, true, cb, ctx);
}

int
pop3client_retr(struct pop3client *p, unsigned long num, pop3client_line_cb cb, void *ctx)
{
	int r;

	p->err[0] = '\0';
	if ((r = command(p, false, "RETR %lu", num)) != 0)
		return r == 2 ? 1 : r;
	return read_body(p, true, cb, ctx);
}

int
pop3client_queue(struct pop3client *p, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = clientconn_vcmd(&p->conn, false, fmt, ap);
	va_end(ap);
	if (r == -1) {
		set_errf(p, "%s", p->conn.err);
		p->broken = true;
	}
	return r;
}

int
pop3client_response(struct pop3client *p, bool multi, pop3client_line_cb cb, void *ctx)
{
	int r;

	p->err[0] = '\0';
	if (flush(p) == -1 || (r = read_status(p)) == -1)
		return -1;
	if (r != 1)
		return 1;
	return multi ? read_body(p, true, cb, ctx) : 0;
}

int
pop3client_dele(struct pop3client *p, unsigned long num)
{
	int r = command(p, false, "DELE %lu", num);

	return r == 2 ? 1 : r;
}

int
pop3client_quit(struct pop3client *p)
{
	int r = command(p, false, "QUIT");

	if (r == -1)
		clientconn_note(&p->conn, "no reply to QUIT: %s", p->err);
	return r == 2 ? 1 : r;
}

void
pop3client_close(struct pop3client *p)
{
	clientconn_close(&p->conn);
}
