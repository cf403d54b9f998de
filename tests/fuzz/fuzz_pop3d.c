/*
 * fuzz_pop3d.c - a whole pop3d session (pop3d/pop3_session.c, pop3_cmd.c,
 * pop3_stream.c over a real store) fed from a byte stream through struct
 * pop3_io, with no socket: USER/PASS, AUTH PLAIN/LOGIN, APOP, CAPA, STLS,
 * STAT/LIST/UIDL/RETR/TOP/DELE/RSET/NOOP/QUIT, pipelining, long lines.
 *
 * Input: byte 0 picks the size of the pieces the stream is delivered in,
 * byte 1 how many output bytes the client reads at a time (back-pressure);
 * the rest is what the client sends. The fake connection flushes STLS and
 * reports the handshake done. Oracles: the greeting is "+OK"; every line the
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
#include "fuzz_common.h"
#include "fuzz_store.h"
#include "log.h"
#include "pop3_session.h"

struct fconn {
	struct evbuffer	*in, *out;
	bool		 paused;
	bool		 closed;
	bool		 tls_start;
	size_t		 seen;		/* output bytes checked */
	bool		 prev_cr;
	struct buf	*capture;	/* when set, output is appended here too */
};

static struct evbuffer *
f_input(void *c)
{
	return ((struct fconn *)c)->in;
}

static struct evbuffer *
f_output(void *c)
{
	return ((struct fconn *)c)->out;
}

static void
f_pause(void *c, bool pause)
{
	((struct fconn *)c)->paused = pause;
}

static void
f_close(void *c, bool flush)
{
	(void)flush;
	((struct fconn *)c)->closed = true;
}

static int
f_starttls(void *cp)
{
	struct fconn *c = cp;

	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	c->tls_start = true;
	return 0;
}

static const struct pop3_io fake_io = {
	.input = f_input,
	.output = f_output,
	.pause_read = f_pause,
	.close = f_close,
	.starttls = f_starttls,
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
	srv.base = NULL;		/* no timers: failed-login delays are skipped */
	srv.tls_available = true;
	return 0;
}

/* Read (and check) up to n bytes of output as the client would. */
static void
client_reads(struct fconn *c, size_t n)
{
	size_t len = evbuffer_get_length(c->out), i;
	const unsigned char *p;

	if (n > len)
		n = len;
	if (n == 0)
		return;
	p = evbuffer_pullup(c->out, (ev_ssize_t)n);
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
	evbuffer_drain(c->out, n);
}

/* Feed data in pieces, read the output readsz at a time, start TLS, until
 * nothing moves. */
static void
drive(struct pop3_session *s, struct fconn *c, const uint8_t *data, size_t size, size_t piece,
    size_t readsz)
{
	size_t pos = 0;
	int rounds = 0;

	while (!c->closed && rounds++ < 100000) {
		bool progress = false;
		if (pos < size && !c->paused) {
			size_t n = size - pos < piece ? size - pos : piece;
			evbuffer_add(c->in, data + pos, n);
			pos += n;
			pop3_session_input(s);
			progress = true;
		}
		if (c->tls_start && !c->closed) {
			c->tls_start = false;
			pop3_session_tls_ready(s);
			progress = true;
		}
		if (evbuffer_get_length(c->out) > 0) {
			client_reads(c, readsz);
			if (!c->closed)
				pop3_session_drained(s);
			progress = true;
		}
		if (!progress)
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer;
	struct fconn c;
	struct pop3_session *s;
	size_t piece = 1 + fuzz_take(&data, &size) * 4;
	size_t readsz = 64 + (size_t)fuzz_take(&data, &size) * 1024;

	if (size > 64 * 1024)
		return 0;
	fuzz_store_top_up(st);
	memset(&c, 0, sizeof(c));
	c.in = evbuffer_new();
	c.out = evbuffer_new();
	FUZZ_CHECK(c.in && c.out);
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(size % 3 ? INADDR_LOOPBACK : 0xc0000201);	/* 192.0.2.1 */
	s = pop3_session_new(&srv, &fake_io, &c, &peer, size % 3 ? "127.0.0.1" : "192.0.2.1", false);
	FUZZ_CHECK(s != NULL);
	client_reads(&c, SIZE_MAX);

	drive(s, &c, data, size, piece, readsz);
	/*
	 * Liveness: whatever the input left behind (half a line, a SASL
	 * exchange, a stream), ending the line, "*" and CAPA get the
	 * capability list, unless the session has closed (QUIT, max_errors).
	 */
	if (!c.closed) {
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
		FUZZ_CHECK(c.closed || (out.len > 0 && memmem(out.data, out.len,
		    "+OK Capability list follows\r\n", 29) != NULL));
		buf_free(&out);
	}
	client_reads(&c, SIZE_MAX);
	pop3_session_closed(s, c.closed ? "quit" : "eof");

	/* The session let go of every lock it took. */
	FUZZ_CHECK(store_mailbox_lock(st, "ana", "fuzz-check", 60) == 0);
	FUZZ_CHECK(store_mailbox_unlock(st, "ana", "fuzz-check") == 0);
	FUZZ_CHECK(store_mailbox_lock(st, "bob", "fuzz-check", 60) == 0);
	FUZZ_CHECK(store_mailbox_unlock(st, "bob", "fuzz-check") == 0);
	evbuffer_free(c.in);
	evbuffer_free(c.out);
	return 0;
}
