/*
 * test_pop3_session.c - the POP3 session without a socket (HACKING.md C5): a fake
 * connection (fake_conn.c, the interface net.c implements, with a virtual
 * clock for the failed-login delay and the idle timer) and a real store in a
 * temporary file.
 * Dialog tables are fed whole and then one byte at a time and must give the
 * same replies; CAPA and login policy on loopback, non-loopback and TLS
 * connections; STLS discarding pipelined input; TOP cutting at every
 * position around a store chunk boundary; RETR streaming under
 * back-pressure with a pipelined command waiting behind it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "fake_conn.h"
#include "log.h"
#include "pop3_session.h"
#include "store.h"

/* ---- fixture ---------------------------------------------------------------- */

/* The fake connection, and the session it was handed to. */
struct fake {
	struct fake_conn	 fc;
	struct pop3_session	*s;
	bool			 paused;	/* mirrors fc.paused for the assertions */
	int			 closes;	/* mirrors fc.closes */
	int			 starttls_calls;	/* mirrors fc.starttls_calls */
	struct evbuffer		*in, *out;
};

static void
sync_fake(struct fake *f)
{
	f->paused = f->fc.paused;
	f->closes = f->fc.closes;
	f->starttls_calls = f->fc.starttls_calls;
}

static struct config cfg;
static struct pop3_server srv;
static char dbpath[512];

#define BOB_PW	"bob-pw-1"
static const char login_bob[] = "USER bob\r\nPASS " BOB_PW "\r\n";
static const char login_carl[] = "USER carl\r\nPASS " BOB_PW "\r\n";

static void
deliver(const char *user, const char *msg, size_t len)
{
	struct store_delivery *d = store_delivery_new("a@lab.test", "unit");

	assert_non_null(d);
	assert_int_equal(store_delivery_add_rcpt(d, user), 0);
	assert_int_equal(store_delivery_body(d, msg, len), 0);
	assert_int_equal(store_delivery_commit(srv.store, d), 0);
	store_delivery_free(&d);
}

static int
setup(void **state)
{
	const char *tmp = getenv("CORREIO_TEST_TMP");
	char err[256], hash[AUTH_HASH_MAX];
	static const char m1[] = "Subject: one\r\n\r\n.dot\r\nline2\r\n";

	(void)state;
	log_init("test_pop3_session", false, 0);
	if (tmp == NULL)
		tmp = "/tmp";
	mkdir(tmp, 0700);
	snprintf(dbpath, sizeof(dbpath), "%s/pop3sess-%d.db", tmp, (int)getpid());
	unlink(dbpath);
	config_defaults(&cfg);
	cfg.transcripts = false;
	assert_int_equal(store_open(&srv.store, dbpath, err, sizeof(err)), 0);
	assert_int_equal(auth_hash_password(BOB_PW, hash, sizeof(hash)), 0);
	assert_int_equal(store_user_add(srv.store, "bob", hash), 0);
	assert_int_equal(store_user_add(srv.store, "carl", hash), 0);
	srv.cfg = &cfg;
	deliver("bob", m1, sizeof(m1) - 1);
	return 0;
}

static int
teardown(void **state)
{
	char p[600];

	(void)state;
	store_close(&srv.store);
	unlink(dbpath);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	return 0;
}

static struct pop3_session *
open_session(struct fake *f, const char *ip, bool tls)
{
	struct pop3_session *s;

	memset(f, 0, sizeof(*f));
	fake_conn_init(&f->fc, tls ? ROLE_POP3S : ROLE_POP3, ip);
	f->in = f->fc.in;
	f->out = f->fc.out;
	s = pop3_conn_handler.accept(&f->fc.conn, &srv);
	assert_non_null(s);
	f->s = s;
	return s;
}

static void
close_session(struct fake *f, struct pop3_session *s)
{
	pop3_conn_handler.closed(s, CONN_CLOSE_EOF);
	fake_conn_free(&f->fc);
}

/* The connection's callbacks, as net.c calls them. */
static void
input(struct fake *f, struct pop3_session *s)
{
	pop3_conn_handler.read(s);
	sync_fake(f);
}

static void
drained(struct fake *f, struct pop3_session *s)
{
	pop3_conn_handler.drained(s);
	sync_fake(f);
}

/* Move everything written so far into b, letting streams run to the end
 * and a failed-login delay pass (on the fake connection's clock). */
static void
collect(struct fake *f, struct pop3_session *s, struct buf *b)
{
	for (;;) {
		size_t n = evbuffer_get_length(f->out);

		if (n > 0) {
			assert_int_equal(buf_append(b, evbuffer_pullup(f->out, -1), n), 0);
			evbuffer_drain(f->out, n);
		}
		if (s->stream != NULL) {
			drained(f, s);
			continue;
		}
		if (s->busy && s->delay_ev != NULL && f->fc.closes == 0 &&
		    fake_conn_fire_next(&f->fc)) {
			sync_fake(f);
			continue;
		}
		sync_fake(f);
		return;
	}
}

/* Feed input whole (step 0) or in pieces of step bytes; all output into b. */
static void
feed(struct fake *f, struct pop3_session *s, const char *in, size_t len, size_t step,
    struct buf *b)
{
	size_t i, n;

	if (step == 0)
		step = len;
	for (i = 0; i < len; i += n) {
		n = len - i < step ? len - i : step;
		evbuffer_add(f->in, in + i, n);
		if (!s->busy)
			input(f, s);
		collect(f, s, b);
	}
	collect(f, s, b);
}

/* ---- dialogs fed whole and byte by byte ------------------------------------- */

struct dialog {
	const char	*name;
	const char	*ip;
	bool		 tls;
	const char	*in;
	const char	*out;	/* expected output after the greeting line */
	size_t		 inlen;	/* 0: strlen(in) */
};

static const struct dialog dialogs[] = {
	{ "textbook", "127.0.0.1", false,
	  "USER bob\r\nPASS " BOB_PW "\r\nSTAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nRSET\r\nNOOP\r\n",
	  "+OK Send PASS with the password of bob\r\n"
	  "+OK Logged in as bob: 1 message (29 octets)\r\n"
	  "+OK 1 29\r\n"
	  "+OK 1 message (29 octets)\r\n1 29\r\n.\r\n"
	  "+OK 29 octets\r\nSubject: one\r\n\r\n..dot\r\nline2\r\n.\r\n"
	  "+OK Message 1 marked for deletion at QUIT\r\n"
	  "+OK Maildrop has 1 message (29 octets)\r\n"
	  "+OK\r\n", 0 },
	{ "bare lf, backspace, iac", "127.0.0.1", false,
	  "USER bo\xc3\xa9\x7f" "bb\b\nPASS " BOB_PW "\n\xff\xfd\x01\xff\xfb\x03NOOP\nSTAT\n",
	  "+OK Send PASS with the password of bob\r\n"
	  "+OK Logged in as bob: 1 message (29 octets)\r\n"
	  "+OK\r\n+OK 1 29\r\n", 0 },
	{ "wrong state and bad numbers", "127.0.0.1", false,
	  "STAT\r\nRETR 1\r\nUSER bob\r\nPASS " BOB_PW "\r\nRETR 0\r\nTOP 1 -1\r\nUSER x\r\n",
	  "-ERR STAT is valid only after logging in (USER and PASS, or AUTH)\r\n"
	  "-ERR RETR is valid only after logging in (USER and PASS, or AUTH)\r\n"
	  "+OK Send PASS with the password of bob\r\n"
	  "+OK Logged in as bob: 1 message (29 octets)\r\n"
	  "-ERR No such message (the mailbox has 1 message)\r\n"
	  "-ERR Invalid line count: TOP msg lines, where lines is a number >= 0\r\n"
	  "-ERR USER is not valid now: already logged in as bob\r\n", 0 },
	{ "unknown user and bad password look alike", "127.0.0.1", false,
	  "USER nobody\r\nPASS x\r\nUSER bob\r\nPASS y\r\n",
	  "+OK Send PASS with the password of nobody\r\n"
	  "-ERR [AUTH] Authentication failed: wrong user name or password; repeated failures "
	  "wait longer (up to 30 s)\r\n"
	  "+OK Send PASS with the password of bob\r\n"
	  "-ERR [AUTH] Authentication failed: wrong user name or password; repeated failures "
	  "wait longer (up to 30 s)\r\n", 0 },
	{ "sasl plain continuation and cancel", "127.0.0.1", false,
	  "AUTH PLAIN\r\n*\r\nAUTH PLAIN\r\nAGJvYgBib2ItcHctMQ==\r\n",
	  "+ \r\n-ERR Authentication cancelled\r\n+ \r\n"
	  "+OK Logged in as bob: 1 message (29 octets)\r\n", 0 },
	{ "non-loopback without TLS: no plaintext", "192.0.2.7", false,
	  "CAPA\r\nUSER bob\r\nAUTH PLAIN AGJvYgBib2ItcHctMQ==\r\nAUTH\r\n",
	  "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
	  "PIPELINING\r\nIMPLEMENTATION " POP3_IMPLEMENTATION "\r\n.\r\n"
	  "-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first\r\n"
	  "-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first\r\n"
	  /* a bare AUTH lists what CAPA lists: nothing before TLS */
	  "-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first\r\n", 0 },
	{ "iac option 0, empty lines are no errors", "127.0.0.1", false,
	  "\xff\xfb\x00NOOP\r\n\r\n\r\nNOOP\0x\r\n",
	  "+OK\r\n-ERR Empty command; HELP lists the commands\r\n"
	  "-ERR Empty command; HELP lists the commands\r\n-ERR NUL byte in a command line\r\n",
	  21 },
	{ "over-long SASL response cancels the exchange", "127.0.0.1", false,
	  "AUTH LOGIN\r\n"
	  "QUFB" "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	  "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	  "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	  "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	  "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	  "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	  "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n"
	  "NOOP\r\n",
	  "+ VXNlcm5hbWU6\r\n"
	  "-ERR Line too long (at most 512 octets); authentication cancelled\r\n+OK\r\n", 0 },
	{ "non-loopback with TLS", "192.0.2.7", true,
	  "CAPA\r\nUSER bob\r\nPASS " BOB_PW "\r\n",
	  "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
	  "PIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION " POP3_IMPLEMENTATION "\r\n.\r\n"
	  "+OK Send PASS with the password of bob\r\n"
	  "+OK Logged in as bob: 1 message (29 octets)\r\n", 0 },
};

static void
run_dialog(const struct dialog *d, size_t step, struct buf *out)
{
	struct fake f;
	struct pop3_session *s = open_session(&f, d->ip, d->tls);
	char *nl;

	buf_init(out, 1 << 20);
	feed(&f, s, d->in, d->inlen ? d->inlen : strlen(d->in), step, out);
	close_session(&f, s);
	/* drop the greeting (it carries a random session id) */
	assert_non_null(out->data);
	nl = strstr(out->data, "\r\n");
	assert_non_null(nl);
	assert_memory_equal(out->data, "+OK correio POP3 server ready (session ", 39);
	buf_consume(out, (size_t)(nl + 2 - out->data));
}

static void
test_dialogs_whole_and_bytewise(void **state)
{
	size_t i;
	struct buf whole, bytes;

	(void)state;
	for (i = 0; i < sizeof(dialogs) / sizeof(dialogs[0]); i++) {
		run_dialog(&dialogs[i], 0, &whole);
		if (strcmp(whole.data ? whole.data : "", dialogs[i].out) != 0)
			fail_msg("%s (whole): got\n%s\nwant\n%s", dialogs[i].name,
			    whole.data ? whole.data : "", dialogs[i].out);
		run_dialog(&dialogs[i], 1, &bytes);
		if (strcmp(bytes.data ? bytes.data : "", dialogs[i].out) != 0)
			fail_msg("%s (byte by byte): got\n%s", dialogs[i].name,
			    bytes.data ? bytes.data : "");
		buf_free(&whole);
		buf_free(&bytes);
	}
}

/* ---- STLS -------------------------------------------------------------------- */

static void
test_stls_discards_pipelined_input(void **state)
{
	struct fake f;
	struct pop3_session *s;
	struct buf out;
	static const char in[] = "CAPA\r\nUSER bob\r\nSTLS\r\nPASS " BOB_PW "\r\n";

	(void)state;
	srv.tls_available = true;
	s = open_session(&f, "192.0.2.9", false);
	buf_init(&out, 1 << 16);
	feed(&f, s, in, sizeof(in) - 1, 0, &out);
	assert_non_null(strstr(out.data, "STLS\r\nIMPLEMENTATION"));
	assert_non_null(strstr(out.data, "-ERR [AUTH]"));	/* USER refused before TLS */
	assert_non_null(strstr(out.data, "+OK Begin TLS negotiation\r\n"));
	assert_null(strstr(out.data, "Logged in"));		/* pipelined PASS was dropped */
	assert_int_equal(f.starttls_calls, 1);
	assert_true(s->tls_pending);
	buf_reset(&out);
	f.fc.conn.tls = true;
	pop3_conn_handler.tls_ready(s);
	{
		static const char in2[] = "CAPA\r\nSTLS\r\nUSER bob\r\nPASS " BOB_PW "\r\n";
		feed(&f, s, in2, sizeof(in2) - 1, 0, &out);
	}
	assert_null(strstr(out.data, "\r\nSTLS\r\n"));		/* not offered twice */
	assert_non_null(strstr(out.data, "\r\nUSER\r\n"));
	assert_non_null(strstr(out.data, "-ERR TLS is already active"));
	assert_non_null(strstr(out.data, "Logged in as bob"));
	buf_free(&out);
	close_session(&f, s);
	srv.tls_available = false;
}

/* ---- TOP across a chunk boundary ------------------------------------------------ */

/* Reference TOP: header, blank line, first n body lines. */
static size_t
top_ref(const char *m, size_t len, long n)
{
	const char *hdr_end = strstr(m, "\r\n\r\n");
	size_t pos;

	assert_non_null(hdr_end);
	pos = (size_t)(hdr_end - m) + 4;
	while (n-- > 0 && pos < len) {
		const char *nl = memchr(m + pos, '\n', len - pos);
		pos = nl ? (size_t)(nl - m) + 1 : len;
	}
	return pos;
}

static void
unstuff(struct buf *b)
{
	size_t i, o = 0;
	bool bol = true;

	for (i = 0; i < b->len; i++) {
		if (bol && b->data[i] == '.') {
			bol = false;
			continue;
		}
		bol = b->data[i] == '\n';
		b->data[o++] = b->data[i];
	}
	b->len = o;
}

static void
test_top_across_chunk_boundary(void **state)
{
	struct fake f;
	struct pop3_session *s;
	struct buf out, msg;
	char cmd[64];
	long shift, lines;
	int nmsg = 0;

	(void)state;
	/* Messages whose blank line falls at POP3_CHUNK - 3 .. POP3_CHUNK + 2, each
	 * with body lines that also cross the next boundary. */
	for (shift = -3; shift <= 2; shift++) {
		buf_init(&msg, 4 * POP3_CHUNK);
		buf_puts(&msg, "Subject: top\r\n");
		while ((long)msg.len < POP3_CHUNK + shift - 2 - 40)
			buf_puts(&msg, "X-Fill: 0123456789012345678901234567\r\n");
		while ((long)msg.len < POP3_CHUNK + shift - 2 - 1)
			buf_puts(&msg, "Y");
		buf_puts(&msg, "\r\n\r\n");	/* the blank line's CR at POP3_CHUNK + shift - 2 */
		buf_puts(&msg, ".first\r\nsecond\r\n\r\nfourth\r\n");
		while (msg.len < 2 * POP3_CHUNK + 10)
			buf_puts(&msg, "body line\r\n");
		deliver("carl", msg.data, msg.len);
		nmsg++;
		s = open_session(&f, "127.0.0.1", false);
		buf_init(&out, 8 * POP3_CHUNK);
		feed(&f, s, login_carl, sizeof(login_carl) - 1, 0, &out);
		for (lines = 0; lines <= 5; lines++) {
			char *body;

			buf_reset(&out);
			snprintf(cmd, sizeof(cmd), "TOP %d %ld\r\n", nmsg, lines);
			feed(&f, s, cmd, strlen(cmd), 0, &out);
			body = strstr(out.data, "\r\n") + 2;
			assert_true(out.len >= 5);
			assert_memory_equal(out.data + out.len - 5, "\r\n.\r\n", 5);
			buf_consume(&out, (size_t)(body - out.data));
			out.len -= 3;	/* ".\r\n" */
			unstuff(&out);
			if (out.len != top_ref(msg.data, msg.len, lines) ||
			    memcmp(out.data, msg.data, out.len) != 0)
				fail_msg("shift %ld lines %ld: got %zu octets, want %zu", shift, lines,
				    out.len, top_ref(msg.data, msg.len, lines));
		}
		buf_free(&out);
		close_session(&f, s);
		buf_free(&msg);
	}
}

/* ---- back-pressure --------------------------------------------------------------- */

static void
test_retr_backpressure_and_pipelining(void **state)
{
	struct fake f;
	struct pop3_session *s;
	struct buf out, msg;
	size_t total = 0, maxq = 0, n;
	int rounds = 0;

	(void)state;
	buf_init(&msg, 2 << 20);
	buf_puts(&msg, "Subject: big\r\n\r\n");
	while (msg.len < (1 << 20))
		buf_puts(&msg, ".a line that needs stuffing, and then some more text\r\n");
	deliver("bob", msg.data, msg.len);
	s = open_session(&f, "127.0.0.1", false);
	buf_init(&out, 1 << 16);
	feed(&f, s, login_bob, sizeof(login_bob) - 1, 0, &out);
	evbuffer_drain(f.out, evbuffer_get_length(f.out));
	evbuffer_add(f.in, "RETR 2\r\nNOOP\r\n", 14);
	input(&f, s);
	assert_true(s->busy);
	assert_true(f.paused);
	/* a slow client: drain a little at a time */
	while (s->stream != NULL) {
		n = evbuffer_get_length(f.out);
		if (n > maxq)
			maxq = n;
		assert_true(evbuffer_search(f.out, "+OK\r\n", 5, NULL).pos == -1 ||
		    rounds == 0);
		n = n > 40000 ? 40000 : n;
		total += n;
		evbuffer_drain(f.out, n);
		drained(&f, s);
		rounds++;
	}
	assert_true(maxq <= POP3_OUTBUF_HIGH + 2 * POP3_CHUNK);
	assert_true(rounds > 10);
	n = evbuffer_get_length(f.out);
	assert_true(n >= 5);
	/* the NOOP is answered right after the terminator, and input resumed */
	{
		char tail[16];
		evbuffer_drain(f.out, n - 10);
		evbuffer_remove(f.out, tail, 10);
		assert_memory_equal(tail, "\r\n.\r\n+OK\r\n", 10);
	}
	assert_false(s->busy);
	assert_false(f.paused);
	(void)total;
	buf_free(&out);
	buf_free(&msg);
	close_session(&f, s);
}

/* A client that pipelines many commands and does not read: the output
 * stays bounded, and every command is answered once it reads. */
static void
test_pipelined_flood_bounded(void **state)
{
	struct fake f;
	struct pop3_session *s;
	size_t i, n, maxq = 0, answered = 0;
	const size_t count = 50000;
	char *p;

	(void)state;
	s = open_session(&f, "127.0.0.1", false);
	evbuffer_drain(f.out, evbuffer_get_length(f.out));
	for (i = 0; i < count; i++)
		evbuffer_add(f.in, "NOOP\r\n", 6);
	input(&f, s);
	assert_true(evbuffer_get_length(f.out) <= POP3_OUTBUF_HIGH + 64);
	assert_true(evbuffer_get_length(f.in) > 0);	/* the rest waits */
	while (answered < count) {
		n = evbuffer_get_length(f.out);
		assert_true(n > 0);
		if (n > maxq)
			maxq = n;
		p = (char *)evbuffer_pullup(f.out, -1);
		for (i = 0; i + 5 <= n; i += 5)
			assert_memory_equal(p + i, "+OK\r\n", 5);
		answered += n / 5;
		evbuffer_drain(f.out, n);
		drained(&f, s);
	}
	assert_int_equal(answered, count);
	assert_true(maxq <= POP3_OUTBUF_HIGH + 64);
	assert_int_equal(evbuffer_get_length(f.out), 0);
	close_session(&f, s);
}

/* Over-long lines are errors like any other: max_errors of them, mixed with
 * unknown commands, close the session once, saying why (fed whole and byte by
 * byte: the count does not depend on how the input is cut). */
static void
test_long_lines_count_as_errors(void **state)
{
	struct fake f;
	struct pop3_session *s;
	struct buf in, out;
	size_t step, i;
	char *last;

	(void)state;
	buf_init(&in, 1 << 20);
	/* max_errors - 1 errors: unknown verbs and over-long lines, in turn */
	for (i = 0; i + 1 < (size_t)cfg.limits.max_errors; i++) {
		if (i % 2) {
			assert_int_equal(buf_append(&in, "BOGUS\r\n", 7), 0);
			continue;
		}
		for (size_t k = 0; k < 600; k++)
			assert_int_equal(buf_append(&in, "x", 1), 0);
		assert_int_equal(buf_append(&in, "\r\n", 2), 0);
	}
	/* the last straw is an over-long line */
	for (size_t k = 0; k < 600; k++)
		assert_int_equal(buf_append(&in, "y", 1), 0);
	assert_int_equal(buf_append(&in, "\r\nNOOP\r\n", 8), 0);
	for (step = 0; step <= 1; step++) {
		s = open_session(&f, "127.0.0.1", false);
		buf_init(&out, 1 << 20);
		feed(&f, s, in.data, in.len, step, &out);
		assert_int_equal(f.closes, 1);
		assert_int_equal(buf_append(&out, "", 1), 0);
		last = strstr(out.data, "-ERR Line too long (at most 512 octets) (too many errors, closing)\r\n");
		assert_non_null(last);
		assert_string_equal(last + strcspn(last, "\n") + 1, "");	/* the last reply */
		assert_null(strstr(out.data, "+OK\r\n"));	/* NOOP after the close: unanswered */
		close_session(&f, s);
		buf_free(&out);
	}
	buf_free(&in);
}

/* [IN-USE] (and [SYS/TEMP]) are not the client's mistakes: a client that
 * retries its login while another session holds the mailbox is never closed
 * for it, however often it tries. */
static void
test_in_use_is_not_an_error(void **state)
{
	struct fake fa, fb;
	struct pop3_session *a, *b;
	struct buf out, in;
	size_t i, n = (size_t)cfg.limits.max_errors + 5;

	(void)state;
	a = open_session(&fa, "127.0.0.1", false);
	buf_init(&out, 1 << 20);
	feed(&fa, a, login_bob, strlen(login_bob), 0, &out);
	assert_non_null(strstr(out.data, "+OK Logged in as bob"));
	buf_free(&out);
	b = open_session(&fb, "127.0.0.1", false);
	buf_init(&in, 1 << 20);
	for (i = 0; i < n; i++)
		assert_int_equal(buf_append(&in, login_bob, strlen(login_bob)), 0);
	buf_init(&out, 1 << 20);
	feed(&fb, b, in.data, in.len, 0, &out);
	assert_int_equal(fb.closes, 0);
	assert_int_equal(buf_append(&out, "", 1), 0);
	{
		size_t found = 0;	/* one [IN-USE] per attempt */
		for (const char *p = out.data; (p = strstr(p, "-ERR [IN-USE]")) != NULL; p++)
			found++;
		assert_int_equal(found, n);
	}
	assert_null(strstr(out.data, "too many errors"));
	buf_free(&out);
	buf_free(&in);
	close_session(&fb, b);
	close_session(&fa, a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialogs_whole_and_bytewise),
		cmocka_unit_test(test_stls_discards_pipelined_input),
		cmocka_unit_test(test_top_across_chunk_boundary),
		cmocka_unit_test(test_retr_backpressure_and_pipelining),
		cmocka_unit_test(test_pipelined_flood_bounded),
		cmocka_unit_test(test_long_lines_count_as_errors),
		cmocka_unit_test(test_in_use_is_not_an_error),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
