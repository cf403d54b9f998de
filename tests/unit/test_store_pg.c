/*
 * test_store_pg.c - what only the PostgreSQL store backend has, on the
 * private server ctest starts (tests/pg_server.py; its directory in
 * $CORREIO_PG_DIR, or a server's URL in $CORREIO_PG_URL). Each test gets a
 * database of its own (tmpstore.h), dropped after it.
 *
 * The store's contracts (accounts, deliveries, mailboxes, locks, the
 * queue, the session log, the web console's rows) are checked on both
 * backends by the same tests: test_store.c, test_store_web.c,
 * test_store_spool.c and test_sesslog.c run as unit/NAME@pg. Here: a new
 * database migrated, a foreign one refused, two handles migrating at once,
 * bodies in chunks (how many, and reads across their ends), a 20 MB body
 * streamed in and out in bounded memory, lock contention between two
 * handles and the takeover of a lock whose connection died (also when the
 * server's end of file comes late after its FATAL), a connection killed
 * under a handle, and the server stopped and started again.
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "store.h"
#include "tmpstore.h"

#define URL_MAX		512

struct fixture {
	char		 db[64];
	char		 url[URL_MAX];
	struct store	*st;
};

/* ---- helpers ------------------------------------------------------------------ */

/* The test server's databases and SQL, as tmpstore.h gives them, by the
 * names this file's tests use. */
static void
admin_exec(const char *url, const char *sql)
{
	tmpstore_pg_exec(url, sql);
}

static long long
sql_int(const char *url, const char *sql)
{
	return tmpstore_pg_int(url, sql);
}

/* A connection of the test's own to url (another host's, say). */
static PGconn *
admin(const char *url)
{
	PGconn *c = PQconnectdb(url);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", url, PQerrorMessage(c));
	return c;
}

static void
db_new(char *db, size_t dblen, char *url, size_t urllen)
{
	tmpstore_pg_db_new("storepg", db, dblen, url, urllen);
}

static void
db_drop(const char *db)
{
	assert_int_equal(tmpstore_pg_db_drop(db), 0);
}

static int
setup_empty(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	db_new(f->db, sizeof(f->db), f->url, sizeof(f->url));
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	struct fixture *f;
	char err[512];

	setup_empty(state);
	f = *state;
	if (store_open(&f->st, f->url, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_user_add(f->st, "ana", "$y$hash-ana"), 0);
	assert_int_equal(store_user_add(f->st, "bob", "$y$hash-bob"), 0);
	assert_int_equal(store_domain_add(f->st, "lab.test"), 0);
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	store_close(&f->st);
	assert_null(f->st);
	db_drop(f->db);
	free(f);
	return 0;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Peak resident memory of this process, in KiB (VmHWM), and its reset. */
static long
peak_rss_kb(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(fp);
	return kb;
}

static void
peak_rss_reset(void)
{
	FILE *fp = fopen("/proc/self/clear_refs", "w");

	if (fp != NULL) {
		fputs("5", fp);
		fclose(fp);
	}
}

/* ---- open, schema ------------------------------------------------------------ */

static void
test_new_database(void **state)
{
	struct fixture *f = *state;
	struct store *again;
	char err[512];

	assert_int_equal(store_open(&f->st, f->url, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(f->st), 2);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM correio_meta"
	    " WHERE key = 'format' AND value = 'correio-store'"), 1);
	assert_int_equal(store_user_add(f->st, "ana", "h"), 0);
	/* opened again: nothing migrated twice, the data is there */
	assert_int_equal(store_open(&again, f->url, err, sizeof(err)), 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM schema_version"), 2);
	assert_int_equal(store_user_add(again, "ANA", "h"), STORE_EXISTS);
	store_close(&again);
	assert_int_equal(store_log_ready(f->st), 0);
}

static void
test_foreign_refused(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	char err[512], db[64], url[URL_MAX];

	/* another program's table */
	admin_exec(f->url, "CREATE TABLE invoices (id int)");
	assert_int_equal(store_open(&st, f->url, err, sizeof(err)), -1);
	assert_null(st);
	assert_non_null(strstr(err, "not a correio store"));
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 1);

	/* a marker of something else */
	db_new(db, sizeof(db), url, sizeof(url));
	admin_exec(url, "CREATE TABLE correio_meta (key text, value text);"
	    "CREATE TABLE schema_version (version int);"
	    "INSERT INTO correio_meta VALUES ('format', 'other')");
	assert_int_equal(store_open(&st, url, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a correio store"));
	db_drop(db);

	/* a newer schema than this program knows */
	db_new(db, sizeof(db), url, sizeof(url));
	assert_int_equal(store_open(&st, url, err, sizeof(err)), 0);
	store_close(&st);
	admin_exec(url, "INSERT INTO schema_version(version) VALUES (99)");
	assert_int_equal(store_open(&st, url, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "newer"));
	db_drop(db);

	/* no server there: a clear error, not a crash */
	assert_int_equal(store_open(&st, "postgresql://correio@127.0.0.1:1/x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unreachable"));
	/* a password in the URI (it belongs in the passfile) is never shown */
	assert_int_equal(store_open(&st, "postgresql://correio:s3cret@127.0.0.1:1/x", err,
	    sizeof(err)), -1);
	assert_null(strstr(err, "s3cret"));
	assert_non_null(strstr(err, "correio:***@127.0.0.1:1/x"));
}

struct opener {
	const char	*url;
	pthread_barrier_t *go;
	int		 rc;
	char		 err[512];
};

static void *
open_at_once(void *arg)
{
	struct opener *o = arg;
	struct store *st;

	pthread_barrier_wait(o->go);
	o->rc = store_open(&st, o->url, o->err, sizeof(o->err));
	store_close(&st);
	return NULL;
}

/* Two handles open a new database at the same moment: both succeed, and
 * the migration was applied once (by one server process). */
static void
test_concurrent_migration(void **state)
{
	struct fixture *f = *state;
	pthread_barrier_t go;
	pthread_t t[2];
	struct opener o[2];
	int i;

	pthread_barrier_init(&go, NULL, 2);
	for (i = 0; i < 2; i++) {
		o[i].url = f->url;
		o[i].go = &go;
		assert_int_equal(pthread_create(&t[i], NULL, open_at_once, &o[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		if (o[i].rc != 0)
			fail_msg("open %d: %s", i, o[i].err);
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM schema_version"), 2);
	assert_int_equal(sql_int(f->url, "SELECT count(DISTINCT backend_pid) FROM schema_version"), 1);
}

/* ---- bodies in chunks ---------------------------------------------------------------- */

/* A body is stored once per message, in chunks of 256 KiB in order: a small
 * one in one chunk, 700000 octets in three, an empty one in none; a read
 * across a chunk's end is whole; the chunks go with their message. */
static void
test_chunks(void **state)
{
	struct fixture *f = *state;
	const char *body = "Subject: hi\r\n\r\nhello\r\n";
	struct store_delivery *d = tmpstore_delivery(body, "ana", "bob");
	size_t len = 700000, i, got, n;
	char *big = malloc(len), back[16], sql[128];
	struct store_msg *m;
	int64_t ids[2];

	assert_non_null(big);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM message_chunks"), 1);

	for (i = 0; i < len; i++)
		big[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
	d = store_delivery_new("", "s");
	assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
	assert_int_equal(store_delivery_add_rcpt(d, "bob"), 0);
	for (i = 0; i < len; i += 1000)
		assert_int_equal(store_delivery_body(d, big + i, 1000), 0);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM message_chunks WHERE message = %lld",
	    (long long)store_delivery_id(d));
	store_delivery_free(&d);
	assert_int_equal(sql_int(f->url, sql), 3);
	d = tmpstore_delivery("", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM message_chunks"), 4);

	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(m[1].size, (int64_t)len);
	assert_int_equal(store_msg_read(f->st, m[1].entry_id, 262140, back, 10, &got), 0);
	assert_int_equal(got, 10);
	assert_memory_equal(back, big + 262140, 10);

	/* all but the empty one expunged: no chunk left */
	ids[0] = m[0].entry_id;
	ids[1] = m[1].entry_id;
	assert_int_equal(store_mailbox_expunge(f->st, "ana", ids, 2), 0);
	free(m);
	assert_int_equal(store_mailbox_list(f->st, "bob", &m, &n), 0);
	assert_int_equal(n, 2);
	ids[0] = m[0].entry_id;
	ids[1] = m[1].entry_id;
	assert_int_equal(store_mailbox_expunge(f->st, "bob", ids, 2), 0);
	free(m);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM message_chunks"), 0);
	free(big);
}

/* The octet at i of the large test body. */
static char
big_octet(size_t i)
{
	return (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('!' + (i * 7 + i / 78) % 90);
}

/* A 20 MB body, spooled as smtpd spools it, is written and read back in
 * 16 KiB pieces (as RETR does) in bounded memory and linear time. */
static void
test_large_body(void **state)
{
	struct fixture *f = *state;
	size_t len = 20u << 20, got, total = 0, i, k;
	struct store_delivery *d = store_delivery_new("", "s");
	const char *tmp = getenv("CORREIO_TEST_TMP");
	char piece[65536], chunk[16384];
	struct store_msg *m;
	struct timespec t0, t1;
	long before, peak;
	double secs;
	size_t n;

	assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
	assert_int_equal(store_delivery_spool(d, tmp != NULL && *tmp ? tmp : "/tmp"), 0);
	peak_rss_reset();
	before = peak_rss_kb();
	for (i = 0; i < len; i += sizeof(piece)) {
		for (k = 0; k < sizeof(piece); k++)
			piece[k] = big_octet(i + k);
		assert_int_equal(store_delivery_body(d, piece, sizeof(piece)), 0);
	}
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM message_chunks"), 80);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	assert_int_equal(m[0].size, (int64_t)len);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		assert_int_equal(store_msg_read(f->st, m[0].entry_id, (int64_t)total, chunk,
		    sizeof(chunk), &got), 0);
		for (k = 0; k < got; k++)
			if (chunk[k] != big_octet(total + k))
				fail_msg("octet %zu differs", total + k);
		total += got;
	} while (got > 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	peak = peak_rss_kb();
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(total, len);
	free(m);
	if (secs > 10.0)
		fail_msg("reading 20 MiB in 16 KiB pieces took %.2f s", secs);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan keeps freed memory in quarantine: its RSS says nothing here. */
	(void)before;
	(void)peak;
#else
	/* a chunk buffer to write, four to read, libpq's result of one: a few
	 * MB, never the body's 20 */
	if (before > 0 && peak - before > 8 * 1024)
		fail_msg("peak RSS grew by %ld KiB for a 20 MiB body", peak - before);
#endif
}

/* ---- locks ----------------------------------------------------------------------------- */

/* Two handles (two pop3d hosts): the lock holds between them; when the
 * holder's connection dies (its host with it), the other takes the lock at
 * once, without waiting for the ttl; the old holder learns it lost it. */
static void
test_lock_two_handles(void **state)
{
	struct fixture *f = *state;
	struct store *other;
	char err[512], sql[256];
	const char *host_a = "host-a.example/100/s1", *host_b = "host-b.example/200/s2";
	long long pid;

	assert_int_equal(store_open(&other, f->url, err, sizeof(err)), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", host_a, 1800), 0);
	assert_int_equal(store_mailbox_lock(other, "ANA", host_b, 1800), STORE_LOCKED);
	assert_non_null(strstr(store_errmsg(other), "in use"));
	assert_int_equal(store_mailbox_touch(f->st, "ana", host_a), 0);
	assert_int_equal(store_mailbox_lock(other, "ana", host_b, 1800), STORE_LOCKED);
	/* released by one host, taken by the other */
	assert_int_equal(store_mailbox_unlock(f->st, "ana", host_a), 0);
	assert_int_equal(store_mailbox_lock(other, "ana", host_b, 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", host_a, 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(other, "ana", host_b), 0);

	/* host a takes it, and its connection dies */
	assert_int_equal(store_mailbox_lock(f->st, "ana", host_a, 1800), 0);
	pid = sql_int(f->url, "SELECT backend_pid FROM locks WHERE account = 'ana'");
	assert_true(pid > 0);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", pid);
	admin_exec(f->url, sql);
	for (int i = 0; i < 100 && sql_int(f->url, "SELECT count(*) FROM pg_stat_activity"
	    " WHERE pid = (SELECT backend_pid FROM locks)") > 0; i++)
		sleep_ms(50);
	assert_int_equal(store_mailbox_lock(other, "ana", host_b, 1800), 0);
	/* host a's handle notices its closed connection before the touch,
	 * reconnects at once, and learns the news */
	assert_int_equal(store_mailbox_touch(f->st, "ana", host_a), STORE_LOCKED);
	assert_int_equal(store_mailbox_touch(other, "ana", host_b), 0);
	store_close(&other);
}

/*
 * A relay between a handle and the server that passes every octet at once
 * but holds the server's end of file on the first connection for
 * HOLD_EOF_MS, as a backend that said FATAL and is still running its exit
 * callbacks does. Later connections (the handle's reconnect) are plain.
 */
#define HOLD_EOF_MS	2000
#define RELAY_PAIRS	4

struct relay {
	int		 lfd, stop[2];
	int		 port;		/* the real server's */
	int		 held;		/* the first connection's end of file came (atomic) */
	pthread_t	 thread;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *
relay_main(void *arg)
{
	struct relay *r = arg;
	struct { int down, up; int64_t eof_at; } pair[RELAY_PAIRS];
	struct pollfd pfd[2 + 2 * RELAY_PAIRS];
	struct sockaddr_in sin;
	char buf[16384];
	int n = 0, i, k, nfd, one = 1;
	ssize_t got;

	for (;;) {
		pfd[0] = (struct pollfd){ .fd = r->stop[0], .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = n < RELAY_PAIRS ? r->lfd : -1, .events = POLLIN };
		nfd = 2;
		for (i = 0; i < n; i++) {
			pfd[nfd++] = (struct pollfd){ .fd = pair[i].down, .events = POLLIN };
			pfd[nfd++] = (struct pollfd){ .fd = pair[i].eof_at == 0 ? pair[i].up : -1,
			    .events = POLLIN };
		}
		if (poll(pfd, nfd, 20) < 0 || pfd[0].revents != 0)
			break;
		if (pfd[1].revents & POLLIN) {
			pair[n].down = accept(r->lfd, NULL, NULL);
			pair[n].up = socket(AF_INET, SOCK_STREAM, 0);
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			sin.sin_port = htons((uint16_t)r->port);
			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			if (pair[n].down < 0 || pair[n].up < 0 ||
			    connect(pair[n].up, (struct sockaddr *)&sin, sizeof(sin)) == -1)
				break;
			/* each octet on its way at once, as the server sends it
			 * (Nagle would hold the server's last words for an ACK) */
			setsockopt(pair[n].down, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			setsockopt(pair[n].up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			pair[n++].eof_at = 0;
			continue;
		}
		for (i = 0, k = 2; i < n; i++, k += 2) {
			if (pair[i].down < 0)
				continue;
			if (pfd[k].revents != 0) {
				if ((got = read(pair[i].down, buf, sizeof(buf))) <= 0)
					goto end;
				if (write(pair[i].up, buf, (size_t)got) != got)
					goto end;
			}
			if (pfd[k + 1].revents != 0) {
				if ((got = read(pair[i].up, buf, sizeof(buf))) <= 0) {
					if (i > 0)
						goto end;
					pair[i].eof_at = now_ms();	/* held */
					__atomic_store_n(&r->held, 1, __ATOMIC_RELEASE);
					continue;
				}
				if (write(pair[i].down, buf, (size_t)got) != got)
					goto end;
			}
			if (pair[i].eof_at == 0 || now_ms() - pair[i].eof_at < HOLD_EOF_MS)
				continue;
		end:
			close(pair[i].down);
			close(pair[i].up);
			pair[i].down = pair[i].up = -1;
		}
	}
	for (i = 0; i < n; i++) {
		if (pair[i].down >= 0) {
			close(pair[i].down);
			close(pair[i].up);
		}
	}
	return NULL;
}

/* Start a relay to the server of url; *relay_url: url through it. */
static void
relay_start(struct relay *r, const char *url, char *relay_url, size_t len)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	const char *host = strstr(url, "127.0.0.1:"), *slash;

	assert_non_null(host);
	r->port = atoi(host + 10);
	assert_non_null(slash = strchr(host, '/'));
	r->held = 0;
	assert_int_equal(pipe(r->stop), 0);
	assert_true((r->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(r->lfd, 4), 0);
	assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(relay_url, len, "%.*s127.0.0.1:%d%s", (int)(host - url), url,
	    ntohs(sin.sin_port), slash);
	assert_int_equal(pthread_create(&r->thread, NULL, relay_main, r), 0);
}

static void
relay_stop(struct relay *r)
{
	assert_int_equal(write(r->stop[1], "x", 1), 1);
	pthread_join(r->thread, NULL);
	close(r->lfd);
	close(r->stop[0]);
	close(r->stop[1]);
}

/* The server said FATAL (the lock holder's backend terminated) but its end
 * of file is slow to come: the handle takes the words as the end, and its
 * next op reconnects at once instead of failing on the dead connection. */
static void
test_fatal_before_close(void **state)
{
	struct fixture *f = *state;
	struct store *st, *other;
	struct relay r;
	char err[512], url[URL_MAX], sql[256];
	const char *host_a = "host-a.example/100/s1", *host_b = "host-b.example/200/s2";
	long long pid;
	int64_t t0;
	int rc;

	relay_start(&r, f->url, url, sizeof(url));
	assert_int_equal(store_open(&st, url, err, sizeof(err)), 0);
	assert_int_equal(store_open(&other, f->url, err, sizeof(err)), 0);
	assert_int_equal(store_mailbox_lock(st, "ana", host_a, 1800), 0);
	pid = sql_int(f->url, "SELECT backend_pid FROM locks WHERE account = 'ana'");
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", pid);
	admin_exec(f->url, sql);
	for (int i = 0; i < 100 && sql_int(f->url, "SELECT count(*) FROM pg_stat_activity"
	    " WHERE pid = (SELECT backend_pid FROM locks)") > 0; i++)
		sleep_ms(50);
	/* the server's words passed the relay, its end of file is held */
	for (int i = 0; i < 250 && !__atomic_load_n(&r.held, __ATOMIC_ACQUIRE); i++)
		sleep_ms(20);
	assert_true(__atomic_load_n(&r.held, __ATOMIC_ACQUIRE));
	assert_int_equal(store_mailbox_lock(other, "ana", host_b, 1800), 0);
	t0 = now_ms();
	if ((rc = store_mailbox_touch(st, "ana", host_a)) != STORE_LOCKED)
		fail_msg("touch: %d: %s", rc, store_errmsg(st));
	if (now_ms() - t0 >= HOLD_EOF_MS)
		fail_msg("the touch waited for the end of file");
	assert_int_equal(store_mailbox_touch(other, "ana", host_b), 0);
	store_close(&other);
	store_close(&st);
	relay_stop(&r);
}

/* ---- the database going away -------------------------------------------------------------------- */

static int
pg_server(const char *cmd)
{
	char line[1200];
	const char *script = getenv("CORREIO_PG_SERVER");

	snprintf(line, sizeof(line), "python3 '%s' %s '%s' >/dev/null", script, cmd,
	    tmpstore_pg_dir());
	return system(line);
}

/* A connection killed under an idle handle: the next op notices it before
 * it runs (not by failing), reconnects at once and succeeds. */
static void
test_connection_killed(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *d = tmpstore_delivery("lost?\r\n", "ana", NULL);
	struct store_msg *m;
	size_t n;

	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);	/* connected */
	free(m);
	admin_exec(f->url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE datname = current_database() AND pid <> pg_backend_pid()");
	sleep_ms(100);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	assert_true(store_delivery_id(d) > 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	assert_int_equal(n, 1);
	free(m);
	store_delivery_free(&d);
}

/* The server stopped and started again under open handles. */
static void
test_server_restart(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *d = tmpstore_delivery("after\r\n", "ana", NULL);
	struct store_msg *m;
	size_t n;
	char hash[64];

	if (tmpstore_pg_dir()[0] == '\0') {
		skip();
		return;
	}
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, sizeof(hash)), 0);
	assert_int_equal(pg_server("halt"), 0);
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, sizeof(hash)), -1);
	assert_non_null(strstr(store_errmsg(f->st), "the store's database is unreachable"));
	sleep_ms(1100);
	assert_int_equal(store_delivery_commit(f->st, d), -1);	/* still down */
	assert_non_null(strstr(store_errmsg(f->st), "unreachable"));
	assert_int_equal(pg_server("resume"), 0);
	sleep_ms(1100);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	assert_int_equal(n, 1);
	free(m);
	store_delivery_free(&d);
}

/* ---- queue claims (store_queue_claim) on PostgreSQL ---------------------------------- */

static void
queue_items(struct fixture *f, int n)
{
	struct store_delivery *d = store_delivery_new("ana@lab.test", "s");
	char rcpt[64];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(rcpt, sizeof(rcpt), "r%d@example.org", i);
		assert_int_equal(store_delivery_add_remote(d, rcpt), 0);
	}
	assert_int_equal(store_delivery_body(d, "queued\r\n", 8), 0);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
}

static long long
claimed_by(const char *url, const char *claimer)
{
	char sql[700];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM queue WHERE claimer = '%s'", claimer);
	return sql_int(url, sql);
}

/*
 * The contract of test_store.c's test_queue_claim on PostgreSQL: claim
 * oldest first, renew every own claim, skip another's live claim, take one
 * that ran out or whose runner (of this host) is dead, defer drops a claim,
 * release gives them back.
 */
static void
test_queue_claim_rules(void **state)
{
	struct fixture *f = *state;
	const char *b = "elsewhere.example/1/relay";
	struct store_queue_item *q;
	char a[STORE_OWNER_MAX], host[256], dead[300], sql[700];
	int64_t now = (int64_t)time(NULL);
	pid_t pid;
	size_t n;
	int status;

	store_lock_owner(a, sizeof(a), "relay");
	queue_items(f, 4);
	assert_int_equal(store_queue_claim(f->st, now, a, now + 300, 2, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_true(q[0].id < q[1].id);
	assert_string_equal(q[0].rcpt, "r0@example.org");
	assert_string_equal(q[0].sender, "ana@lab.test");
	free(q);
	assert_int_equal(claimed_by(f->url, a), 2);
	assert_int_equal(store_queue_claim(f->st, now, b, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(q[0].rcpt, "r2@example.org");
	assert_string_equal(q[1].rcpt, "r3@example.org");
	free(q);
	/* a renews all of its own, beyond max too; b's live claims skipped */
	assert_int_equal(store_queue_claim(f->st, now + 10, a, now + 500, 1, &q, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].rcpt, "r0@example.org");
	free(q);
	snprintf(sql, sizeof(sql), "SELECT min(claimed_until) FROM queue WHERE claimer = '%s'", a);
	assert_int_equal(sql_int(f->url, sql) - now, 500);
	/* b's lease runs out: a takes its items over */
	assert_int_equal(store_queue_claim(f->st, now + 300, a, now + 600, 10, &q, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(q[3].rcpt, "r3@example.org");
	/* defer drops the claim */
	assert_int_equal(store_queue_defer(f->st, q[0].id, now + 60, "451 later"), 0);
	assert_int_equal(claimed_by(f->url, a), 3);
	free(q);
	assert_int_equal(store_queue_release(f->st, a), 0);
	assert_int_equal(claimed_by(f->url, a), 0);

	/* a dead runner of this host: taken over before its lease ends */
	if ((pid = fork()) == 0)
		_exit(0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	snprintf(dead, sizeof(dead), "%s/%ld/relay", host, (long)pid);
	snprintf(sql, sizeof(sql), "UPDATE queue SET claimer = '%s', claimed_until = %lld",
	    dead, (long long)now + 3600);
	admin_exec(f->url, sql);
	assert_int_equal(store_queue_claim(f->st, now, b, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 3);		/* the deferred one is not due */
	free(q);
	assert_int_equal(claimed_by(f->url, dead), 0);	/* all of its claims dropped */
	assert_int_equal(store_queue_claim(f->st, now + 60, b, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 4);
	free(q);
}

/*
 * A row another transaction holds locked (a runner on another host in the
 * middle of its claim) is passed over at once, not waited for
 * (FOR UPDATE SKIP LOCKED); once it is free it can be claimed.
 */
static void
test_queue_claim_skip_locked(void **state)
{
	struct fixture *f = *state;
	struct store_queue_item *q;
	char a[STORE_OWNER_MAX];
	int64_t now = (int64_t)time(NULL);
	PGconn *other = admin(f->url);
	PGresult *r;
	struct timespec t0, t1;
	size_t n;
	long ms;

	store_lock_owner(a, sizeof(a), "relay");
	queue_items(f, 3);
	r = PQexec(other, "BEGIN; SELECT id FROM queue WHERE rcpt = 'r0@example.org' FOR UPDATE");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_queue_claim(f->st, now, a, now + 300, 10, &q, &n), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 2000);
	assert_int_equal(n, 2);
	assert_string_equal(q[0].rcpt, "r1@example.org");
	assert_string_equal(q[1].rcpt, "r2@example.org");
	free(q);
	PQclear(PQexec(other, "ROLLBACK"));
	assert_int_equal(store_queue_claim(f->st, now, a, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 3);
	free(q);
	PQfinish(other);
}

struct claim_runner {
	const char	*url;
	const char	*tag;
	pthread_barrier_t *go;
	int		*owner;		/* [item id] = runner index + 1 */
	int		 index, claimed, doubles;
	char		 err[512];
};

/* One runner: claim a few due items, deliver (delete) them, until the
 * queue is empty. */
static void *
claim_run(void *arg)
{
	struct claim_runner *c = arg;
	struct store_queue_item *q;
	struct store *st;
	char me[STORE_OWNER_MAX];
	size_t n, i;
	int64_t now = (int64_t)time(NULL);

	store_lock_owner(me, sizeof(me), c->tag);
	if (store_open(&st, c->url, c->err, sizeof(c->err)) != 0) {
		pthread_barrier_wait(c->go);
		return NULL;
	}
	pthread_barrier_wait(c->go);
	for (;;) {
		if (store_queue_claim(st, now, me, now + 300, 7, &q, &n) != 0) {
			snprintf(c->err, sizeof(c->err), "claim: %s", store_errmsg(st));
			break;
		}
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			if (c->owner[q[i].id] != 0)
				c->doubles++;
			c->owner[q[i].id] = c->index + 1;
			c->claimed++;
			if (store_queue_delete(st, q[i].id) != 0)
				snprintf(c->err, sizeof(c->err), "delete: %s", store_errmsg(st));
		}
		free(q);
	}
	store_close(&st);
	return NULL;
}

/* Two runners, each with its own connection, claim from one queue at the
 * same instants: every item is delivered exactly once. */
static void
test_queue_claim_two_runners(void **state)
{
	struct fixture *f = *state;
	enum { ITEMS = 300 };
	struct claim_runner c[2];
	pthread_barrier_t go;
	pthread_t t[2];
	long long first;
	int *owner, i, total = 0;

	queue_items(f, ITEMS);
	first = sql_int(f->url, "SELECT min(id) FROM queue");
	assert_true(first > 0);
	owner = calloc((size_t)(first + ITEMS + 1), sizeof(*owner));
	assert_non_null(owner);
	pthread_barrier_init(&go, NULL, 2);
	for (i = 0; i < 2; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].url = f->url;
		c[i].tag = i == 0 ? "relay-a" : "relay-b";
		c[i].go = &go;
		c[i].owner = owner;
		c[i].index = i;
		assert_int_equal(pthread_create(&t[i], NULL, claim_run, &c[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	for (i = 0; i < 2; i++) {
		if (c[i].err[0] != '\0')
			fail_msg("runner %d: %s", i, c[i].err);
		assert_int_equal(c[i].doubles, 0);
		total += c[i].claimed;
	}
	assert_int_equal(total, ITEMS);
	for (i = 0; i < ITEMS; i++)
		assert_true(owner[first + i] != 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM queue"), 0);
	free(owner);
}

/* The server restarted while a handle sat idle: its first op after the
 * server came back notices the closed connection before it runs and
 * succeeds (pop3d's first login after a restart is not a -ERR). */
static void
test_restart_first_op(void **state)
{
	struct fixture *f = *state;
	char hash[64];

	if (tmpstore_pg_dir()[0] == '\0') {
		skip();
		return;
	}
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, sizeof(hash)), 0);
	assert_int_equal(pg_server("halt"), 0);
	assert_int_equal(pg_server("resume"), 0);
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "$y$hash-ana");
	/* and at once again after a second restart, without a wait between */
	assert_int_equal(pg_server("halt"), 0);
	assert_int_equal(pg_server("resume"), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "elsewhere.example/1/s", 60), 0);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", "elsewhere.example/1/s"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_database, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_refused, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_migration, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_two_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fatal_before_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_skip_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_two_runners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_first_op, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
