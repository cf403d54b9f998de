/*
 * fuzz_pop3d.c - a whole pop3d session (pop3d/pop3_session.c, pop3_cmd.c,
 * pop3_stream.c over a real store) fed from a byte stream through the
 * connection interface (tests/unit/fake_conn.c), with no socket: USER/PASS, AUTH PLAIN/LOGIN, APOP, CAPA, STLS,
 * STAT/LIST/UIDL/RETR/TOP/DELE/RSET/NOOP/QUIT, pipelining, long lines.
 *
 * Input: byte 0 picks the size of the pieces the stream is delivered in,
 * byte 1 how many output bytes the client reads at a time (back-pressure);
 * the rest is what the client sends. The fake connection flushes STLS and
 * reports the handshake done; a failed-login delay passes on its virtual
 * clock. Oracles: the greeting is "+OK"; every line the
 * server writes ends in CRLF; liveness: after any input, CRLF and CAPA get
 * the capability list (or the connection is closed); after the connection
 * closes, the mailbox lock is
 * free again (another session could lock it) and the store still answers.
 * The mailboxes are topped up before each input (QUIT may delete).
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>

#include "buf.h"
#include "config.h"
#include "fake_conn.h"
#include "fuzz_common.h"
#include "fuzz_store.h"
#include "log.h"
#include "pop3_session.h"

/* The fake connection and the client's view of the output. */
struct fconn {
	struct fake_conn f;
	size_t		 seen;		/* output bytes checked */
	bool		 prev_cr;
	struct buf	*capture;	/* when set, output is appended here too */
};

static struct config cfg;
static struct pop3_server srv;
static struct store *st;
static bool verbose;		/* FUZZ_VERBOSE set: print the server's output */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_pop3d", false, 0);
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	config_defaults(&cfg);
	cfg.transcripts = true;
	cfg.limits.transcript_max_lines = 50;
	st = fuzz_store_create();
	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	srv.store = st;
	srv.tls_available = true;
	return 0;
}

/* Read (and check) up to n bytes of output as the client would. */
static void
client_reads(struct fconn *c, size_t n)
{
	size_t len = evbuffer_get_length(c->f.out), i;
	const unsigned char *p;

	if (n > len)
		n = len;
	if (n == 0)
		return;
	p = evbuffer_pullup(c->f.out, (ev_ssize_t)n);
	FUZZ_CHECK(p != NULL);
	if (verbose)
		fwrite(p, 1, n, stdout);
	if (c->capture != NULL)
		(void)buf_append(c->capture, p, n);
	for (i = 0; i < n; i++) {
		if (c->seen == 0)
			FUZZ_CHECK(p[0] == '+');
		if (p[i] == '\n')
			FUZZ_CHECK(c->prev_cr);
		c->prev_cr = p[i] == '\r';
		c->seen++;
	}
	evbuffer_drain(c->f.out, n);
}

/* Feed data in pieces, read the output readsz at a time, start TLS, until
 * nothing moves. */
static void
drive(struct pop3_session *s, struct fconn *c, const uint8_t *data, size_t size, size_t piece,
    size_t readsz)
{
	size_t pos = 0;
	int rounds = 0;

	while (c->f.closes == 0 && rounds++ < 100000) {
		bool progress = false;
		if (pos < size && !c->f.paused) {
			size_t n = size - pos < piece ? size - pos : piece;
			evbuffer_add(c->f.in, data + pos, n);
			pos += n;
			pop3_conn_handler.read(s);
			progress = true;
		}
		if (c->f.tls_req && c->f.closes == 0) {
			c->f.tls_req = false;
			c->f.conn.tls = true;
			pop3_conn_handler.tls_ready(s);
			progress = true;
		}
		if (evbuffer_get_length(c->f.out) > 0) {
			client_reads(c, readsz);
			if (c->f.closes == 0)
				pop3_conn_handler.drained(s);
			progress = true;
		}
		/* a failed-login delay: let it pass */
		if (!progress && c->f.paused && s->delay_ev != NULL && fake_conn_fire_next(&c->f))
			progress = true;
		if (!progress)
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fconn c;
	struct pop3_session *s;
	size_t piece = 1 + fuzz_take(&data, &size) * 4;
	size_t readsz = 64 + (size_t)fuzz_take(&data, &size) * 1024;

	if (size > 64 * 1024)
		return 0;
	fuzz_store_top_up(st);
	memset(&c, 0, sizeof(c));
	fake_conn_init(&c.f, ROLE_POP3, size % 3 ? "127.0.0.1" : "192.0.2.1");
	FUZZ_CHECK(c.f.in && c.f.out);
	s = pop3_conn_handler.accept(&c.f.conn, &srv);
	FUZZ_CHECK(s != NULL);
	client_reads(&c, SIZE_MAX);

	drive(s, &c, data, size, piece, readsz);
	/*
	 * Liveness: whatever the input left behind (half a line, a SASL
	 * exchange, a stream), ending the line, "*" and CAPA get the
	 * capability list, unless the session has closed (QUIT, max_errors).
	 */
	if (c.f.closes == 0) {
		/* one step at a time, as a client waits for each answer: the
		 * CRLF may complete an STLS (whatever follows it in the same
		 * packet is dropped, RFC 2595 4) or an AUTH ("*" cancels it) */
		static const char *const probe[] = { "\r\n", "*\r\n", "CAPA\r\n" };
		struct buf out;

		buf_init(&out, 16 * 1024 * 1024);
		client_reads(&c, SIZE_MAX);
		for (size_t i = 0; i < 3; i++) {
			if (i == 2)
				c.capture = &out;
			drive(s, &c, (const uint8_t *)probe[i], strlen(probe[i]), 64, SIZE_MAX);
		}
		client_reads(&c, SIZE_MAX);
		c.capture = NULL;
		FUZZ_CHECK(c.f.closes > 0 || (out.len > 0 && memmem(out.data, out.len,
		    "+OK Capability list follows\r\n", 29) != NULL));
		buf_free(&out);
	}
	client_reads(&c, SIZE_MAX);
	pop3_conn_handler.closed(s, c.f.closes > 0 ? CONN_CLOSE_SERVER : CONN_CLOSE_EOF);

	/* The session let go of every lock it took. */
	FUZZ_CHECK(store_mailbox_lock(st, "ana", "fuzz-check", 60) == 0);
	FUZZ_CHECK(store_mailbox_unlock(st, "ana", "fuzz-check") == 0);
	FUZZ_CHECK(store_mailbox_lock(st, "bob", "fuzz-check", 60) == 0);
	FUZZ_CHECK(store_mailbox_unlock(st, "bob", "fuzz-check") == 0);
	fake_conn_free(&c.f);
	return 0;
}
