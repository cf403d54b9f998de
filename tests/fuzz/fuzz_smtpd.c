/*
 * fuzz_smtpd.c - a whole smtpd session (smtpd/smtp_session.c, smtp_cmd.c,
 * smtp_data.c, smtp_auth.c over a real store) fed from a byte stream:
 * greeting, HELO/EHLO, MAIL/RCPT with every parameter, DATA with dot
 * stuffing, bare LF/CR and size latches, BDAT-less pipelining, AUTH
 * PLAIN/LOGIN with continuations, STARTTLS, RSET/NOOP/VRFY/HELP/QUIT.
 *
 * There is no socket: this file links in place of common/net.c and
 * smtpd/smtp_writer.c. It defines the net_conn_* functions the session
 * calls (a connection that is two evbuffers), a worker whose jobs (group
 * commits, transcripts) and a password-check pool (authpool_submit) whose
 * checks the driver runs between pieces of input, as the threads would, handing results back through the jobs'
 * done callbacks on the same thread, like net_run_in_loop.
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
#include "fuzz_common.h"
#include "fuzz_store.h"
#include "log.h"
#include "net.h"
#include "relay.h"
#include "smtp_session.h"

/* ---- the fake connection (stands in for common/net.c) -------------------- */

struct net_conn {
	struct evbuffer		*in, *out;
	struct listen_spec	 ls;
	struct sockaddr_in	 peer;
	char			 peer_str[64];
	bool			 tls;
	bool			 paused;
	bool			 closing;	/* close or close_after_flush asked */
	bool			 tls_req;
	long			 timeout;
};

struct evbuffer *net_conn_input(struct net_conn *c) { return c->in; }
struct evbuffer *net_conn_output(struct net_conn *c) { return c->out; }
const struct listen_spec *net_conn_listener(struct net_conn *c) { return &c->ls; }
const struct sockaddr *net_conn_peer(struct net_conn *c) { return (const struct sockaddr *)&c->peer; }
const char *net_conn_peer_str(struct net_conn *c) { return c->peer_str; }
bool net_conn_is_tls(struct net_conn *c) { return c->tls; }
const char *net_conn_tls_info(struct net_conn *c) { return c->tls ? "TLSv1.3:FUZZ" : ""; }
void net_conn_pause_read(struct net_conn *c, bool pause) { c->paused = pause; }
void net_conn_set_timeout(struct net_conn *c, long seconds) { c->timeout = seconds; }
void net_conn_set_watermark(struct net_conn *c, size_t high) { (void)c; (void)high; }
void net_conn_close_after_flush(struct net_conn *c) { c->closing = true; }
void net_conn_close(struct net_conn *c) { c->closing = true; }

int
net_conn_starttls(struct net_conn *c)
{
	if (c->closing)
		return -1;
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	c->tls_req = true;
	return 0;
}

/* smtp_data.c wakes the relay queue runner; there is none here. */
void relay_kick(void) { }

/* ---- the fake workers (stand in for smtpd/smtp_writer.c) ---------------- */

struct smtp_worker {
	struct smtp_job	*head, *tail;
};

static struct smtp_worker writer;

/* The password-check pool (common/authpool.c): jobs wait here for run_jobs. */
struct authpool {
	struct authpool_job *head, *tail;
};

static struct authpool checker;

void
authpool_submit(struct authpool *p, struct authpool_job *job)
{
	job->next = NULL;
	if (p->tail != NULL)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
}

void
smtp_worker_submit(struct smtp_worker *w, struct smtp_job *job)
{
	job->next = NULL;
	job->result = -1;
	if (w->tail != NULL)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
}

void
smtp_job_free(struct smtp_job *job)
{
	if (job == NULL)
		return;
	free(job->lines);
	store_delivery_free(&job->d);
	free(job);
}

static struct config cfg;
static struct smtp_server srv;
static struct store *st;
static bool verbose;
static unsigned long nruns;

/* ---- the client side ------------------------------------------------------ */

struct client {
	struct net_conn	*c;
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

	struct authpool_job *aj, *anext;

	for (struct smtp_worker *w = &writer; w != NULL; w = NULL) {
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
			if (j->kind == JOB_TRANSCRIPT)
				j->result = store_transcript_append(st, j->session_id, "smtp",
				    j->lines, j->len);
			if (j->done == NULL) {
				smtp_job_free(j);
				continue;
			}
			bool delivery = j->kind == JOB_DELIVERY, ok = j->result == 0;
			bool open = !cl->c->closing;
			client_reads(cl);
			j->done(j);
			if (delivery && open && !cl->c->closing && evbuffer_get_length(cl->c->out) >= 3) {
				const char *p = (const char *)evbuffer_pullup(cl->c->out, 3);
				FUZZ_CHECK(memcmp(p, ok ? "250" : "451", 3) == 0);
			}
		}
	}
	aj = checker.head;
	checker.head = checker.tail = NULL;
	for (; aj != NULL; aj = anext) {
		anext = aj->next;
		any = true;
		authpool_check(st, aj);
		client_reads(cl);
		aj->done(aj);
	}
	return any;
}

/* Feed data in pieces, read replies, run jobs and TLS, until nothing moves. */
static void
drive(void *s, struct client *cl, const uint8_t *data, size_t size, size_t piece)
{
	struct net_conn *c = cl->c;
	size_t pos = 0;
	int rounds = 0;

	while (!c->closing && rounds++ < 1000000) {
		bool progress = false;
		if (pos < size && !c->paused) {
			size_t n = size - pos < piece ? size - pos : piece;
			evbuffer_add(c->in, data + pos, n);
			pos += n;
			smtp_net_callbacks.read(s);
			progress = true;
		} else if (pos < size) {
			/* paused: a job must be pending, else the session is stuck */
			FUZZ_CHECK(writer.head != NULL || checker.head != NULL);
		}
		if (evbuffer_get_length(c->out) > 0) {
			client_reads(cl);
			smtp_net_callbacks.drained(s);
		}
		if (run_jobs(cl))
			progress = true;
		if (c->tls_req && !c->closing) {
			c->tls_req = false;
			c->tls = true;
			smtp_net_callbacks.tls_ready(s);
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
	srv.writer = &writer;
	srv.checker = &checker;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const peers[] = { "127.0.0.1", "10.1.2.3", "192.0.2.7" };
	struct net_conn conn;
	struct client cl;
	void *s;
	size_t piece = 1 + fuzz_take(&data, &size) * 8;
	uint8_t mode = fuzz_take(&data, &size);

	if (size > 256 * 1024)
		return 0;
	if (++nruns % 5000 == 0)
		store_reset();
	memset(&conn, 0, sizeof(conn));
	memset(&cl, 0, sizeof(cl));
	cl.c = &conn;
	conn.in = evbuffer_new();
	conn.out = evbuffer_new();
	FUZZ_CHECK(conn.in && conn.out);
	conn.ls.role = mode & 1 ? ROLE_SUBMISSION : ROLE_INBOUND;
	snprintf(conn.peer_str, sizeof(conn.peer_str), "%s", peers[(mode >> 1) % 3]);
	conn.peer.sin_family = AF_INET;
	FUZZ_CHECK(inet_pton(AF_INET, conn.peer_str, &conn.peer.sin_addr) == 1);
	cfg.smtp_plaintext_auth = (mode & 8) != 0;
	srv.refusing = (mode & 0xf0) == 0xf0;
	/* Only compared with NULL by the session (STARTTLS offered); net.c, the
	 * one user of the SSL_CTX, is not linked here. */
	srv.ssl_ctx = (mode & 0x10) ? NULL : (void *)&cfg;

	s = smtp_net_callbacks.accept(&conn, &srv);
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
	if (!conn.closing && memcmp(cl.greeting, "220", 3) == 0) {
		/* in two steps: the CRLF may complete a STARTTLS, after which
		 * anything sent with it is dropped (RFC 3207 5) */
		drive(s, &cl, (const uint8_t *)"\r\n", 2, 2);
		drive(s, &cl, (const uint8_t *)".\r\nRSET\r\nNOOP\r\n", 15, 15);
		FUZZ_CHECK(conn.closing || memcmp(cl.last_code, "250", 3) == 0);
	}
	client_reads(&cl);
	smtp_net_callbacks.closed(s, conn.closing ? NET_CLOSE_SERVER : NET_CLOSE_EOF);
	/* a session closed while busy is freed when its job comes back */
	conn.closing = true;
	while (run_jobs(&cl))
		;
	evbuffer_free(conn.in);
	evbuffer_free(conn.out);
	return 0;
}
