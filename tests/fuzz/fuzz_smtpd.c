/*
 * fuzz_smtpd.c - a whole smtpd session (smtpd/smtp_session.c, smtp_cmd.c,
 * smtp_data.c, smtp_auth.c over a real store) fed from a byte stream:
 * greeting, HELO/EHLO, MAIL/RCPT with every parameter, DATA with dot
 * stuffing, bare LF/CR and size latches, BDAT-less pipelining, AUTH
 * PLAIN/LOGIN with continuations, STARTTLS, RSET/NOOP/VRFY/HELP/QUIT.
 *
 * There is no socket: the session gets a fake connection through the same
 * interface net.c implements (tests/unit/fake_conn.c), and its server's
 * submit hook queues jobs (group commits, transcripts) that the driver runs
 * between pieces of input (password checks run inline: no pool), as the worker threads would,
 * handing results back through the jobs' done callbacks on the same thread,
 * like net_run_in_loop.
 *
 * Input: byte 0 picks the piece size, byte 1 the listener role, the peer
 * (loopback, trusted, other), whether plaintext AUTH is allowed and whether
 * TLS is configured, and rarely a refusing server (554); the rest
 * is the client's bytes. Oracles: the greeting is 220 (or 554); every reply
 * line is "ddd" + ' ' or '-' and ends in CRLF with no bare CR or LF; a
 * committed delivery is answered 250 and a failed one 451; nothing is read
 * while a job is pending; the session frees itself (LeakSanitizer).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "fake_conn.h"
#include "fuzz_common.h"
#include "fuzz_store.h"
#include "log.h"
#include "smtp_session.h"

/* ---- the jobs (the worker threads of smtpd/smtp_writer.c, run inline) ---- */

struct fuzz_worker {
	struct smtp_job	*head, *tail;
};

static struct fuzz_worker writer;

/* srv.submit: queue the job for run_jobs(). */
static void
fuzz_submit(struct smtp_worker *wp, struct smtp_job *job)
{
	struct fuzz_worker *w = (struct fuzz_worker *)wp;

	job->next = NULL;
	job->result = -1;
	if (w->tail != NULL)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
}

static struct config cfg;
static struct smtp_server srv;
static struct store *st;
static bool verbose;
static unsigned long nruns;

/* ---- the client side ------------------------------------------------------ */

struct client {
	struct fake_conn *c;
	size_t		 seen;
	size_t		 line_start;	/* bytes into the current reply line */
	char		 code[4];
	char		 last_code[4];	/* code of the last complete reply line */
	char		 greeting[4];	/* "220", or "554" when the server refuses */
	bool		 prev_cr;
	bool		 greeted;
};

/* Read and check everything the server wrote so far. */
static void
client_reads(struct client *cl)
{
	size_t n = evbuffer_get_length(cl->c->out), i;
	const unsigned char *p;

	if (n == 0)
		return;
	p = evbuffer_pullup(cl->c->out, -1);
	if (verbose)
		fwrite(p, 1, n, stdout);
	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];
		size_t k = cl->line_start;

		if (!cl->greeted && k < 3)
			FUZZ_CHECK(ch == "220"[k] || ch == "554"[k]);
		if (k < 3) {
			FUZZ_CHECK(ch >= '0' && ch <= '9');
			cl->code[k] = (char)ch;
		} else if (k == 3) {
			FUZZ_CHECK(ch == ' ' || ch == '-' || ch == '\r');
		}
		if (ch == '\n') {
			FUZZ_CHECK(cl->prev_cr && k >= 4);
			memcpy(cl->last_code, cl->code, 3);
			if (!cl->greeted)
				memcpy(cl->greeting, cl->code, 3);
			cl->line_start = 0;
			cl->greeted = true;
		} else {
			if (cl->prev_cr)
				FUZZ_CHECK(!"bare CR in a reply");
			cl->line_start++;
		}
		cl->prev_cr = ch == '\r';
		cl->seen++;
	}
	evbuffer_drain(cl->c->out, n);
}

/* Run every queued job as the workers would, deliveries first as one batch. */
static bool
run_jobs(struct client *cl)
{
	struct smtp_job *list, *j, *next, *dels[256];
	struct store_delivery *ds[256];
	int res[256];
	size_t nd = 0, i;
	bool any = false;

	for (struct fuzz_worker *w = &writer; w != NULL; w = NULL) {
		list = w->head;
		w->head = w->tail = NULL;
		nd = 0;
		for (j = list; j != NULL; j = j->next)
			if (j->kind == JOB_DELIVERY && nd < 256) {
				dels[nd] = j;
				ds[nd++] = j->d;
			}
		if (nd > 0) {
			(void)store_delivery_commit_batch(st, ds, nd, res);
			for (i = 0; i < nd; i++)
				dels[i]->result = res[i];
		}
		for (j = list; j != NULL; j = next) {
			next = j->next;
			any = true;
			if (j->done == NULL) {
				smtp_job_free(j);
				continue;
			}
			bool delivery = j->kind == JOB_DELIVERY, ok = j->result == 0;
			bool open = !(cl->c->closes > 0);
			client_reads(cl);
			j->done(j);
			if (delivery && open && !(cl->c->closes > 0) && evbuffer_get_length(cl->c->out) >= 3) {
				const char *p = (const char *)evbuffer_pullup(cl->c->out, 3);
				FUZZ_CHECK(memcmp(p, ok ? "250" : "451", 3) == 0);
			}
		}
	}
	return any;
}

/* Feed data in pieces, read replies, run jobs and TLS, until nothing moves. */
static void
drive(void *s, struct client *cl, const uint8_t *data, size_t size, size_t piece)
{
	struct fake_conn *c = cl->c;
	size_t pos = 0;
	int rounds = 0;

	while (c->closes == 0 && rounds++ < 1000000) {
		bool progress = false;
		if (pos < size && !c->paused) {
			size_t n = size - pos < piece ? size - pos : piece;
			evbuffer_add(c->in, data + pos, n);
			pos += n;
			smtp_conn_handler.read(s);
			progress = true;
		} else if (pos < size) {
			/* paused: a job must be pending, else the session is stuck */
			FUZZ_CHECK(writer.head != NULL);
		}
		if (evbuffer_get_length(c->out) > 0) {
			client_reads(cl);
			smtp_conn_handler.drained(s);
		}
		if (run_jobs(cl))
			progress = true;
		if (c->tls_req && c->closes == 0) {
			c->tls_req = false;
			c->conn.tls = true;
			smtp_conn_handler.tls_ready(s);
			progress = true;
		}
		client_reads(cl);
		if (!progress)
			break;
	}
}

static void
store_reset(void)
{
	store_close(&st);
	fuzz_store_remove();
	st = fuzz_store_create();
	srv.store = st;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_smtpd", false, 0);
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	config_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.lab.test");
	cfg.transcripts = true;
	cfg.limits.transcript_max_lines = 40;
	cfg.limits.auth_fail_delay_max = 0;	/* no timers: the driver has no loop */
	cfg.limits.max_message_size = 64 * 1024;
	cfg.limits.max_errors = 20;
	cfg.trusted[0].family = AF_INET;
	cfg.trusted[0].addr[0] = 10;
	cfg.trusted[0].prefix = 8;
	cfg.ntrusted = 1;
	st = fuzz_store_create();
	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	srv.base = event_base_new();
	srv.store = st;
	srv.writer = (struct smtp_worker *)&writer;
	srv.checker = NULL;		/* password checks run inline */
	srv.submit = fuzz_submit;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const peers[] = { "127.0.0.1", "10.1.2.3", "192.0.2.7" };
	struct fake_conn conn;
	struct client cl;
	void *s;
	size_t piece = 1 + fuzz_take(&data, &size) * 8;
	uint8_t mode = fuzz_take(&data, &size);

	if (size > 256 * 1024)
		return 0;
	if (++nruns % 5000 == 0)
		store_reset();
	memset(&cl, 0, sizeof(cl));
	cl.c = &conn;
	fake_conn_init(&conn, mode & 1 ? ROLE_SUBMISSION : ROLE_INBOUND, peers[(mode >> 1) % 3]);
	FUZZ_CHECK(conn.in && conn.out);
	conn.tls_info = "TLSv1.3:FUZZ";
	cfg.smtp_plaintext_auth = (mode & 8) != 0;
	srv.refusing = (mode & 0xf0) == 0xf0;
	/* Only compared with NULL by the session (STARTTLS offered); net.c is
	 * the one user of the SSL_CTX. */
	srv.ssl_ctx = (mode & 0x10) ? NULL : (void *)&cfg;

	s = smtp_conn_handler.accept(&conn.conn, &srv);
	FUZZ_CHECK(s != NULL);
	client_reads(&cl);
	FUZZ_CHECK(cl.greeted);

	drive(s, &cl, data, size, piece);
	/*
	 * Liveness: whatever state the input left the session in, a client
	 * that ends its line, ends any message text and says RSET and NOOP
	 * gets an answer to the NOOP (or is disconnected, e.g. at max_errors).
	 * Not after a 554 greeting: then only QUIT is accepted.
	 * This catches a session that swallows input forever.
	 */
	if (conn.closes == 0 && memcmp(cl.greeting, "220", 3) == 0) {
		/* in two steps: the CRLF may complete a STARTTLS, after which
		 * anything sent with it is dropped (RFC 3207 5) */
		drive(s, &cl, (const uint8_t *)"\r\n", 2, 2);
		drive(s, &cl, (const uint8_t *)".\r\nRSET\r\nNOOP\r\n", 15, 15);
		FUZZ_CHECK(conn.closes > 0 || memcmp(cl.last_code, "250", 3) == 0);
	}
	client_reads(&cl);
	smtp_conn_handler.closed(s, conn.closes > 0 ? CONN_CLOSE_SERVER : CONN_CLOSE_EOF);
	/* a session closed while busy is freed when its job comes back */
	conn.closes++;
	while (run_jobs(&cl))
		;
	fake_conn_free(&conn);
	return 0;
}
