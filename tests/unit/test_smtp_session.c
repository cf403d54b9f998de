/*
 * test_smtp_session.c - smtpd's session driven without a socket (HACKING.md C5):
 * a fake connection (fake_conn.c) through the same interface net.c
 * implements; the real store, writer thread and command table do the rest. Every dialog is fed twice, whole and
 * one byte at a time, and must give the same replies and the same stored
 * bytes: the line reader, pipelining, the pause during a commit and the
 * end-of-data rules (SMTP smuggling) do not depend on how TCP cuts the input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "auth.h"
#include "config.h"
#include "fake_conn.h"
#include "net.h"
#include "sesslog.h"
#include "smtp_session.h"
#include "store.h"

static struct config cfg;
static struct smtp_server srv;
static char dir[] = "/tmp/test_smtp_session.XXXXXX";

/* ---- the worker hand-backs ------------------------------------------------------ */

static bool pump_timed_out;

static void
pump_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pump_timed_out = true;
}

/* Run the hand-backs of the worker threads (net_run_in_loop), waiting up
 * to 10 s for one. */
static void
pump(void)
{
	struct timeval tv = { 10, 0 };
	struct event *limit = evtimer_new(srv.base, pump_timeout, NULL);

	assert_non_null(limit);
	pump_timed_out = false;
	evtimer_add(limit, &tv);
	event_base_loop(srv.base, EVLOOP_ONCE);
	event_free(limit);
	assert_false(pump_timed_out);	/* a worker answered */
}

/* ---- fixture ------------------------------------------------------------------ */


static int
setup(void **state)
{
	char err[256], hash[AUTH_HASH_MAX];
	struct store *st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	config_defaults(&cfg);
	snprintf(cfg.store_path, sizeof(cfg.store_path), "%s/store.db", dir);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.lab.test");
	cfg.transcripts = true;
	assert_int_equal(store_open(&st, cfg.store_path, err, sizeof(err)), 0);
	assert_int_equal(store_domain_add(st, "lab.test"), 0);
	assert_int_equal(auth_hash_password("ana-secret-1", hash, sizeof(hash)), 0);
	assert_int_equal(store_user_add(st, "ana", hash), 0);
	assert_int_equal(store_user_add(st, "bob", hash), 0);
	store_close(&st);
	srv.cfg = &cfg;
	srv.base = net_base_new();
	srv.submit = smtp_worker_submit;
	assert_int_equal(store_open(&srv.store, cfg.store_path, err, sizeof(err)), 0);
	srv.writer = smtp_worker_start(srv.base, cfg.store_path, "writer",
	    &srv.in_tx, &srv.tx_begun, err, sizeof(err));
	srv.checker = authpool_start(srv.base, cfg.store_path, 1, err, sizeof(err));
	srv.sesslog = sesslog_start(cfg.store_path, err, sizeof(err));
	assert_non_null(srv.writer);
	assert_non_null(srv.checker);
	assert_non_null(srv.sesslog);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[512];

	(void)state;
	smtp_worker_stop(&srv.writer);
	authpool_stop(&srv.checker);
	sesslog_stop(&srv.sesslog);
	store_close(&srv.store);
	net_base_free(srv.base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the driver ------------------------------------------------------------------ */

struct result {
	char	 id[SMTP_SESSION_ID_MAX];	/* the session's id */
	char	 codes[512];	/* final reply lines' codes, space-separated */
	int64_t	 stored;	/* messages added to the store */
	char	 last_body[4096];	/* the newest message, trace headers stripped */
};

static int64_t
count_messages(void)
{
	struct store_msg *msgs = NULL;
	size_t n = 0;

	assert_int_equal(store_mailbox_list(srv.store, "bob", &msgs, &n), 0);
	free(msgs);
	return (int64_t)n;
}

/*
 * Replace the header fields smtpd adds to text that lacks them (From: from
 * the envelope, Date: and its own Message-ID:) with "[added]", so expected
 * texts need not know the date or the session id.
 */
static bool
is_added_field(const char *p)
{
	/* smtpd's dates name the weekday; the dialogs' own dates do not */
	if (strncmp(p, "From: <", 7) == 0 || (strncmp(p, "Date: ", 6) == 0 && isalpha((unsigned char)p[6])))
		return true;
	return strncmp(p, "Message-ID: <", 13) == 0 && strstr(p, "@mx.lab.test>\r\n") != NULL &&
	    strstr(p, "@mx.lab.test>\r\n") < strstr(p, "\r\n") + 2;
}

static void
mark_added(char *s)
{
	char *p = s, *end;

	while (*p != '\0' && !is_added_field(p)) {
		if ((p = strstr(p, "\r\n")) == NULL)
			return;
		p += 2;
		if (p[0] == '\r' && p[1] == '\n')
			return;	/* the header section ended with nothing added */
	}
	if (*p == '\0')
		return;
	for (end = p; *end != '\0' && is_added_field(end); end = strstr(end, "\r\n") + 2)
		;
	memmove(p + 9, end, strlen(end) + 1);
	memcpy(p, "[added]\r\n", 9);
}

static void
last_body(char *dst, size_t len)
{
	struct store_msg *msgs = NULL;
	size_t n = 0, got = 0;
	char buf[8192], *p;

	dst[0] = '\0';
	assert_int_equal(store_mailbox_list(srv.store, "bob", &msgs, &n), 0);
	if (n > 0) {
		assert_int_equal(store_msg_read(srv.store, msgs[n - 1].entry_id, 0, buf,
		    sizeof(buf) - 1, &got), 0);
		buf[got] = '\0';
		/* skip our trace: Return-Path:, Received: and its continuation lines */
		p = buf;
		while (strncmp(p, "Return-Path:", 12) == 0 || strncmp(p, "Received:", 9) == 0 ||
		    *p == '\t') {
			char *nl = strstr(p, "\r\n");
			if (nl == NULL)
				break;
			p = nl + 2;
		}
		snprintf(dst, len, "%s", p);
		mark_added(dst);
	}
	free(msgs);
}

static enum listen_role drive_role = ROLE_INBOUND;
static const char *drive_peer = "127.0.0.1";

/* Feed input in chunks of `chunk` octets (0: all at once) and collect replies. */
static void
drive(const char *input, size_t inlen, size_t chunk, struct result *res)
{
	struct fake_conn c;
	struct smtp_session *s;
	int64_t before = count_messages();
	size_t off = 0, n;
	char *out, *line, *save = NULL;
	bool busy;

	fake_conn_init(&c, drive_role, drive_peer);
	c.starttls_result = -1;
	s = smtp_conn_handler.accept(&c.conn, &srv);
	assert_non_null(s);
	snprintf(res->id, sizeof(res->id), "%s", s->id);
	while (off < inlen && c.closes == 0) {
		n = chunk == 0 ? inlen - off : (inlen - off < chunk ? inlen - off : chunk);
		evbuffer_add(c.in, input + off, n);
		off += n;
		while (c.paused && c.closes == 0)
			pump();		/* a commit or password check in flight */
		smtp_conn_handler.read(s);
	}
	while (c.paused && c.closes == 0)
		pump();
	busy = s->busy;
	smtp_conn_handler.closed(s, CONN_CLOSE_EOF);
	/* A session closed while busy is freed by its job's hand-back. */
	if (busy)
		pump();

	n = evbuffer_get_length(c.out);
	out = calloc(1, n + 1);
	evbuffer_remove(c.out, out, n);
	res->codes[0] = '\0';
	for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t l = strlen(res->codes);
		if (strlen(line) >= 4 && line[3] == ' ')
			snprintf(res->codes + l, sizeof(res->codes) - l, "%s%.3s", l ? " " : "", line);
	}
	free(out);
	fake_conn_free(&c);
	/* However it ended (QUIT, RSET, an error, the connection lost in
	 * DATA), the session left no mail transaction counted open. */
	assert_int_equal(atomic_load(&srv.in_tx), 0);
	res->stored = count_messages() - before;
	last_body(res->last_body, sizeof(res->last_body));
}

struct dialog {
	const char	*name;
	const char	*input;
	const char	*codes;
	int		 stored;
	const char	*body;		/* expected stored text after the trace headers, or NULL */
};

#define X100 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define X1000 X100 X100 X100 X100 X100 X100 X100 X100 X100 X100	/* over smtp_data_line_max */
#define ENVELOPE "EHLO c\r\nMAIL FROM:<ana@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n"
#define SMUGGLE(p) ENVELOPE "Subject: s\r\n\r\nhello" p "MAIL FROM:<x@lab.test>\r\n" \
	"RCPT TO:<bob@lab.test>\r\nDATA\r\nSubject: SMUGGLED\r\n\r\nevil\r\n.\r\nQUIT\r\n"

static const struct dialog dialogs[] = {
	{ "textbook", "HELO client.lab.test\r\nMAIL FROM:<ana@lab.test>\r\nRCPT TO:<bob@lab.test>\r\n"
	  "DATA\r\nSubject: t\r\nFrom: a@b\r\nDate: 4 Dec 2026 10:00:00 +0000\r\n"
	  "Message-ID: <t@b>\r\n\r\nbody\r\n..dot\r\n.\r\nQUIT\r\n",
	  "220 250 250 250 354 250 221", 1, "Subject: t\r\nFrom: a@b\r\n"
	  "Date: 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <t@b>\r\n\r\nbody\r\n.dot\r\n" },
	{ "two messages pipelined", ENVELOPE "a\r\n.\r\n" "MAIL FROM:<ana@lab.test>\r\n"
	  "RCPT TO:<nobody@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\nb\r\n.\r\nNOOP\r\nQUIT\r\n",
	  "220 250 250 250 354 250 250 550 250 354 250 250 221", 2, "[added]\r\n\r\nb\r\n" },
	{ "smuggle LF.LF", SMUGGLE("\n.\n"), "220 250 250 250 354 554 221", 0, NULL },
	{ "smuggle CR.CR", SMUGGLE("\r.\r"), "220 250 250 250 354 554 221", 0, NULL },
	{ "smuggle LF.CRLF", SMUGGLE("\n.\r\n"), "220 250 250 250 354 554 221", 0, NULL },
	{ "smuggle CRLF.LF", SMUGGLE("\r\n.\n"), "220 250 250 250 354 554 221", 0, NULL },
	{ "nc mode", "HELO nc\nMAIL FROM:<ana@lab.test>\nRCPT TO:<bob@lab.test>\nDATA\n"
	  "Subject: nc\n\nline\n..x\n.\nQUIT\n", "220 250 250 250 354 250 221", 1,
	  "Subject: nc\r\n[added]\r\n\r\nline\r\n.x\r\n" },
	{ "nc mode ends at dot CRLF too", "HELO nc\nMAIL FROM:<ana@lab.test>\nRCPT TO:<bob@lab.test>\n"
	  "DATA\nhi\n.\r\nQUIT\n", "220 250 250 250 354 250 221", 1, "[added]\r\n\r\nhi\r\n" },
	{ "telnet IAC and backspace", "\xff\xfd\x03HELO x\r\nNOPX\x08" "E\x7f\x7fOP\r\nQUIT\r\n",
	  "220 250 250 221", 0, NULL },
	{ "long data line latched", ENVELOPE "Subject: l\r\n\r\n" X1000
	  "\r\nafter\r\n.\r\nNOOP\r\n", "220 250 250 250 354 500 250", 0, NULL },
	{ "over-long line right before the end", ENVELOPE "Subject: l\r\n\r\n" X1000 X1000 "\r\n.\r\nNOOP\r\n",
	  "220 250 250 250 354 500 250", 0, NULL },
	{ "over-long line ended by a bare LF cannot end the data",
	  ENVELOPE "Subject: l\r\n\r\n" X1000 X1000 "\n.\r\nMAIL FROM:<x@lab.test>\r\n"
	  "RCPT TO:<bob@lab.test>\r\nDATA\r\nSubject: SMUGGLED\r\n\r\nevil\r\n.\r\nQUIT\r\n",
	  "220 250 250 250 354 500 221", 0, NULL },
	{ "nc mode: over-long line then dot", "HELO nc\nMAIL FROM:<ana@lab.test>\nRCPT TO:<bob@lab.test>\n"
	  "DATA\n" X1000 X1000 "\n.\nQUIT\n", "220 250 250 250 354 500 221", 0, NULL },
	{ "sequence errors then a message", "RCPT TO:<bob@lab.test>\r\nEHLO c\r\nDATA\r\n"
	  "MAIL FROM:<ana@lab.test>\r\nDATA\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\nok\r\n.\r\n",
	  "220 503 250 503 250 503 250 354 250", 1, "[added]\r\n\r\nok\r\n" },
	{ "disconnect mid-DATA", ENVELOPE "Subject: cut\r\n\r\nno end", "220 250 250 250 354", 0, NULL },
	{ "dot without CRLF before it is data", ENVELOPE "a\r\n.b\r\n.\r\n",
	  "220 250 250 250 354 250", 1, "[added]\r\n\r\na\r\nb\r\n" },
	{ "AUTH then relay", "EHLO c\r\nAUTH PLAIN AGFuYQBhbmEtc2VjcmV0LTE=\r\nMAIL FROM:<ana@lab.test>\r\n"
	  "RCPT TO:<far@away.example>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\nr\r\n.\r\n",
	  "220 250 235 250 250 250 354 250", 1, "[added]\r\n\r\nr\r\n" },
};

static void
test_dialogs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dialogs) / sizeof(dialogs[0]); i++) {
		const struct dialog *d = &dialogs[i];
		for (int pass = 0; pass < 3; pass++) {
			size_t chunk = pass == 0 ? 0 : pass == 1 ? 1 : 7;
			struct result r;
			drive(d->input, strlen(d->input), chunk, &r);
			if (strcmp(r.codes, d->codes) != 0)
				fail_msg("%s (chunk %zu): replies %s, expected %s", d->name, chunk,
				    r.codes, d->codes);
			if (r.stored != d->stored)
				fail_msg("%s (chunk %zu): %lld stored, expected %d", d->name, chunk,
				    (long long)r.stored, d->stored);
			if (d->body != NULL && strcmp(r.last_body, d->body) != 0)
				fail_msg("%s (chunk %zu): stored %s", d->name, chunk, r.last_body);
			if (srv.inflight != 0)
				fail_msg("%s (chunk %zu): %zu octets still charged", d->name, chunk,
				    srv.inflight);
		}
	}
}

static void
collect(void *arg, const char *line, const char *unused)
{
	struct buf *b = arg;

	(void)unused;
	(void)buf_printf(b, "%s\n", line);
}

/* Wait for a session's transcript to reach the store (the session log's
 * thread). */
static void
transcript_of(const char *id, struct buf *b)
{
	sesslog_sync(srv.sesslog);
	for (int i = 0; i < 100; i++) {
		buf_reset(b);
		(void)store_transcript_get(srv.store, id, collect, b);
		if (b->data != NULL && strstr(b->data, "connection closed") != NULL)
			return;
		usleep(50000);
	}
	fail_msg("no transcript for %s", id);
}

/* The transcript never holds a SASL secret, however the command is typed. */
static void
test_transcript_masks_auth(void **state)
{
	static const char plain[] = "EHLO c\r\n  auth plain AGFuYQBhbmEtc2VjcmV0LTE=\r\nQUIT\r\n";
	static const char login[] = "EHLO c\r\nAUTH LOGIN\r\nYW5h\r\nYW5hLXNlY3JldC0x\x00\r\nQUIT\r\n";
	static const char cancel[] = "EHLO c\r\nAUTH PLAIN\r\n*\r\nQUIT\r\n";
	struct result r;
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 20);
	drive(plain, sizeof(plain) - 1, 0, &r);
	assert_string_equal(r.codes, "220 250 235 221");
	transcript_of(r.id, &b);
	assert_non_null(strstr(b.data, "S: 235"));
	assert_null(strstr(b.data, "AGFuYQBhbmEtc2VjcmV0LTE"));
	/* a NUL makes a response invalid base64 (501), and it is not recorded */
	drive(login, sizeof(login) - 1, 0, &r);
	assert_string_equal(r.codes, "220 250 334 334 501 221");
	transcript_of(r.id, &b);
	assert_null(strstr(b.data, "YW5hLXNlY3JldC0x"));
	assert_null(strstr(b.data, "C: YW5h"));
	/* an empty challenge: "334 " on the wire, "334" in the transcript */
	drive(cancel, sizeof(cancel) - 1, 0, &r);
	assert_string_equal(r.codes, "220 250 334 501 221");
	transcript_of(r.id, &b);
	assert_non_null(strstr(b.data, " S: 334\n"));
	buf_free(&b);
}

/* RFC 5321 3.1: after a 554 greeting only QUIT is accepted. The submission
 * case: no TLS configured and a client that is not on loopback could never
 * log in, so it is refused service at once. */
static void
test_refused_service(void **state)
{
	static const char input[] = "EHLO c\r\nMAIL FROM:<ana@lab.test>\r\nNOOP\r\nQUIT\r\n";
	struct result r;

	(void)state;
	srv.refusing = true;
	drive(input, strlen(input), 0, &r);
	srv.refusing = false;
	assert_string_equal(r.codes, "554 503 503 503 221");
	assert_int_equal(r.stored, 0);

	drive_role = ROLE_SUBMISSION;
	drive_peer = "192.0.2.7";
	drive(input, strlen(input), 0, &r);
	assert_string_equal(r.codes, "554 503 503 503 221");
	/* from loopback AUTH is possible without TLS: normal service */
	drive_peer = "127.0.0.1";
	drive(input, strlen(input), 0, &r);
	assert_string_equal(r.codes, "220 250 530 250 221");
	drive_role = ROLE_INBOUND;
}

/* All sessions together hold at most inflight_max octets of message text;
 * past it DATA is refused with 452 4.3.1, and the budget is given back. */
static void
test_inflight_budget(void **state)
{
	static const char input[] = ENVELOPE "Subject: big\r\n\r\n"
	    "0123456789012345678901234567890123456789\r\n"
	    "0123456789012345678901234567890123456789\r\n.\r\nQUIT\r\n";
	struct result r;

	(void)state;
	srv.inflight_max = 60;
	drive(input, strlen(input), 0, &r);
	assert_string_equal(r.codes, "220 250 250 250 354 452 221");
	assert_int_equal(r.stored, 0);
	assert_int_equal(srv.inflight, 0);
	srv.inflight_max = 1000;
	drive(input, strlen(input), 3, &r);
	assert_string_equal(r.codes, "220 250 250 250 354 250 221");
	assert_int_equal(r.stored, 1);
	assert_int_equal(srv.inflight, 0);
	srv.inflight_max = 0;
}

/* ---- a commit whose outcome nobody knows (smtp_data.c) ----------------------- */

static struct smtp_job *held_job;

/* srv.submit that keeps the job, for the test to finish it. */
static void
hold_submit(struct smtp_worker *w, struct smtp_job *job)
{
	(void)w;
	held_job = job;
}

/* A session fed input up to its final dot, its commit held in held_job. */
static struct smtp_session *
held_session(struct fake_conn *c, const char *input)
{
	struct smtp_session *s;

	fake_conn_init(c, ROLE_INBOUND, "127.0.0.1");
	c->starttls_result = -1;
	assert_non_null(s = smtp_conn_handler.accept(&c->conn, &srv));
	evbuffer_add(c->in, input, strlen(input));
	smtp_conn_handler.read(s);
	assert_non_null(held_job);
	return s;
}

/* The store could not tell whether the COMMIT happened (PostgreSQL gone
 * during it): no reply, the connection closed, the session freed when the
 * close completes; and freed at once when the client had already gone
 * (ASan's leak check sees a session left behind). */
static void
test_commit_outcome_unknown(void **state)
{
	static const char input[] = ENVELOPE "Subject: unknown\r\n\r\nhello\r\n.\r\n";
	struct fake_conn c;
	struct smtp_session *s;
	size_t n;
	char *out;

	(void)state;
	srv.submit = hold_submit;

	s = held_session(&c, input);
	held_job->result = STORE_UNKNOWN;
	held_job->done(held_job);
	held_job = NULL;
	assert_int_equal(c.closes, 1);
	n = evbuffer_get_length(c.out);
	assert_non_null(out = calloc(1, n + 1));
	evbuffer_remove(c.out, out, n);
	assert_non_null(strstr(out, "\r\n354 "));
	assert_null(strstr(strstr(out, "\r\n354 "), "\r\n250 "));	/* neither a 250 ... */
	assert_null(strstr(out, "\r\n451 "));			/* ... nor a 451 */
	free(out);
	smtp_conn_handler.closed(s, CONN_CLOSE_SERVER);	/* the close completes */
	fake_conn_free(&c);

	/* the client gone while the commit ran */
	s = held_session(&c, input);
	smtp_conn_handler.closed(s, CONN_CLOSE_EOF);
	held_job->result = STORE_UNKNOWN;
	held_job->done(held_job);		/* frees the session */
	held_job = NULL;
	fake_conn_free(&c);

	assert_int_equal(atomic_load(&srv.in_tx), 0);
	srv.submit = smtp_worker_submit;
}

/* ---- the writer's gathering (smtp_writer.c) ---------------------------------- */

struct gjob {
	struct smtp_job	 job;
	bool		 done;
	struct timespec	 at;
};

static void
gjob_done(struct smtp_job *job)
{
	struct gjob *g = (struct gjob *)job;

	assert_int_equal(job->result, 0);
	clock_gettime(CLOCK_MONOTONIC, &g->at);
	g->done = true;
	store_delivery_free(&job->d);
}

static void
gjob_submit(struct gjob *g)
{
	static const char body[] = "Subject: gathered\r\n\r\nhello\r\n";

	memset(g, 0, sizeof(*g));
	g->job.kind = JOB_DELIVERY;
	g->job.done = gjob_done;
	assert_non_null(g->job.d = store_delivery_new("ana@lab.test", "gather-test"));
	assert_int_equal(store_delivery_add_rcpt(g->job.d, "bob"), 0);
	assert_int_equal(store_delivery_body(g->job.d, body, sizeof(body) - 1), 0);
	smtp_worker_submit(srv.writer, &g->job);
}

static double
ms_since(const struct timespec *t0, const struct timespec *t1)
{
	return (double)(t1->tv_sec - t0->tv_sec) * 1e3 + (double)(t1->tv_nsec - t0->tv_nsec) / 1e6;
}

/* A delivery due while another session has a mail transaction open waits
 * for it (up to the gathering time), and the two go into one commit as
 * soon as that transaction is handed over; a delivery with no transaction
 * open beside it is committed at once; after a wait nobody joined and
 * nobody began a transaction in, the next one is committed at once too,
 * but not after ones in which a transaction began. The gathering times here
 * (0.3-2 s) are long, so that no timing of the machine changes the outcome. */
static void
test_writer_gathers(void **state)
{
	struct gjob a, b;
	struct timespec t0, t1;
	unsigned long commits;
	int i;

	(void)state;
	smtp_worker_set_gather(srv.writer, 2000000);

	/* alone: committed without waiting for the 2 s */
	commits = smtp_worker_commits(srv.writer);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	gjob_submit(&a);
	while (!a.done)
		pump();
	assert_true(ms_since(&t0, &a.at) < 1000);
	assert_int_equal(smtp_worker_commits(srv.writer), commits + 1);

	/* another transaction open: the first waits for the second */
	commits = smtp_worker_commits(srv.writer);
	atomic_store(&srv.in_tx, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	gjob_submit(&a);
	for (i = 0; i < 5; i++) {		/* 50 ms: well inside the 2 s */
		usleep(10000);
		event_base_loop(srv.base, EVLOOP_NONBLOCK);
	}
	assert_false(a.done);
	atomic_store(&srv.in_tx, 0);		/* the other session hands its message over */
	gjob_submit(&b);
	while (!a.done || !b.done)
		pump();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(smtp_worker_commits(srv.writer), commits + 1);	/* one commit for both */
	assert_true(ms_since(&t0, &t1) < 1900);	/* ended by the hand-over, not the 2 s */

	/* a transaction that stays open: each commit waits the whole time, no
	 * more; after SMTP_GATHER_EMPTY waits nobody used, the next commits do
	 * not wait for it (0.5 s here) */
	smtp_worker_set_gather(srv.writer, 500000);
	atomic_store(&srv.in_tx, 1);
	for (i = 0; i < SMTP_GATHER_EMPTY; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		gjob_submit(&a);
		while (!a.done)
			pump();
		assert_true(ms_since(&t0, &a.at) >= 500);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	gjob_submit(&b);
	while (!b.done)
		pump();
	assert_true(ms_since(&t0, &b.at) < 400);

	/* waits that ran out empty while other transactions began (senders
	 * busy, only slower than the wait): gathering stays on (0.3 s here) */
	smtp_worker_set_gather(srv.writer, 300000);
	for (i = 0; i <= SMTP_GATHER_EMPTY; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		gjob_submit(&a);
		usleep(50000);
		atomic_fetch_add(&srv.tx_begun, 1);
		while (!a.done)
			pump();
		assert_true(ms_since(&t0, &a.at) >= 300);
	}
	atomic_store(&srv.in_tx, 0);

	smtp_worker_set_gather(srv.writer, SMTP_GATHER_US);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialogs),
		cmocka_unit_test(test_refused_service),
		cmocka_unit_test(test_transcript_masks_auth),
		cmocka_unit_test(test_inflight_budget),
		cmocka_unit_test(test_writer_gathers),
		cmocka_unit_test(test_commit_outcome_unknown),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
