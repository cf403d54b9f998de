/*
 * test_store_pg.c - the PostgreSQL store backend through store.h, on the
 * private server ctest starts (tests/pg_server.py; its directory in
 * $CORREIO_PG_DIR, or a server's URL in $CORREIO_PG_URL). Each test gets a
 * database of its own, dropped after it.
 *
 * The contracts test_store.c checks on SQLite, with the same expectations
 * (accounts, domains, aliases, resolve, deliveries, group commit with one
 * failing delivery, two writers, reading in chunks, expunge, locks, the
 * queue, transcripts, the session log, the web console's rows), and what
 * only PostgreSQL has: a new database migrated, a foreign one refused, two
 * handles migrating at once, a 20 MB body streamed in and out in bounded
 * memory, lock contention between two handles and the takeover of a lock
 * whose connection died, and the server stopped and started again.
 */
#include <sys/wait.h>

#include <errno.h>
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

#define URL_MAX		512

static char base_url[URL_MAX];	/* the fixture's database */
static char pg_dir[URL_MAX];	/* the server's directory, "" when not ours */
static int counter;

struct fixture {
	char		 db[64];
	char		 url[URL_MAX];
	struct store	*st;
};

/* ---- helpers ------------------------------------------------------------------ */

/* base_url with its database name replaced by db. */
static void
url_for(char *dst, size_t len, const char *db)
{
	const char *slash = strrchr(base_url, '/'), *q = strchr(slash, '?');

	snprintf(dst, len, "%.*s/%s%s", (int)(slash - base_url), base_url, db, q ? q : "");
}

static PGconn *
admin(const char *url)
{
	PGconn *c = PQconnectdb(url);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", url, PQerrorMessage(c));
	return c;
}

static void
admin_exec(const char *url, const char *sql)
{
	PGconn *c = admin(url);
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* Run one query on url with a connection of its own: the first value. */
static long long
sql_int(const char *url, const char *sql)
{
	PGconn *c = admin(url);
	PGresult *r = PQexec(c, sql);
	long long v = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return v;
}

/* A new empty database: its name in db, its URL in url. */
static void
db_new(char *db, size_t dblen, char *url, size_t urllen)
{
	char sql[128];

	snprintf(db, dblen, "t%ld_%d", (long)getpid(), ++counter);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	admin_exec(base_url, sql);
	url_for(url, urllen, db);
}

static void
db_drop(const char *db)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	admin_exec(base_url, sql);
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
collect(void *arg, const char *a, const char *b)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 1024 - n, "%s=%s;", a, b ? b : "");
}

static struct store_delivery *
make_delivery(const char *body, const char *r1, const char *r2)
{
	struct store_delivery *d = store_delivery_new("carla@example.org", "sess1");

	assert_non_null(d);
	if (r1)
		assert_int_equal(store_delivery_add_rcpt(d, r1), 0);
	if (r2)
		assert_int_equal(store_delivery_add_rcpt(d, r2), 0);
	assert_int_equal(store_delivery_body(d, body, strlen(body)), 0);
	return d;
}

static void
read_all(struct store *st, int64_t entry, size_t chunk, char *out, size_t outlen)
{
	size_t got, total = 0;

	for (;;) {
		assert_true(total + chunk <= outlen);
		assert_int_equal(store_msg_read(st, entry, (int64_t)total, out + total, chunk, &got), 0);
		if (got == 0)
			break;
		total += got;
	}
	out[total] = '\0';
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

/* ---- accounts, domains, aliases (as test_store.c) ------------------------------------ */

static void
test_accounts(void **state)
{
	struct fixture *f = *state;
	char hash[64], out[1024] = "";

	assert_int_equal(store_user_add(f->st, "ana", "x"), STORE_EXISTS);
	assert_int_equal(store_user_add(f->st, "ANA", "x"), STORE_EXISTS);
	assert_int_equal(store_user_get_hash(f->st, "Ana", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "$y$hash-ana");
	assert_int_equal(store_user_get_hash(f->st, "zed", hash, sizeof(hash)), STORE_NOTFOUND);
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, 4), -1);
	assert_int_equal(store_user_set_hash(f->st, "ana", "$y$new"), 0);
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "$y$new");
	assert_int_equal(store_user_set_hash(f->st, "zed", "h"), STORE_NOTFOUND);
	assert_int_equal(store_user_add(f->st, "", "h"), -1);

	/* sorted without regard to case, as SQLite's NOCASE */
	assert_int_equal(store_user_add(f->st, "Beto", "h"), 0);
	assert_int_equal(store_user_list(f->st, collect, out), 0);
	assert_non_null(strstr(out, "ana="));
	assert_true(strstr(out, "ana=") < strstr(out, "Beto="));
	assert_true(strstr(out, "Beto=") < strstr(out, "bob="));
	assert_non_null(strstr(out, "T"));
	assert_non_null(strstr(out, "Z;"));

	assert_int_equal(store_user_del(f->st, "bob"), 0);
	assert_int_equal(store_user_del(f->st, "bob"), STORE_NOTFOUND);
	assert_int_equal(store_user_get_hash(f->st, "bob", hash, sizeof(hash)), STORE_NOTFOUND);
	/* a name with a quote is data, never SQL */
	assert_int_equal(store_user_add(f->st, "o'hara", "h'; DROP TABLE accounts; --"), 0);
	assert_int_equal(store_user_get_hash(f->st, "O'Hara", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "h'; DROP TABLE accounts; --");
}

static void
test_domains_aliases(void **state)
{
	struct fixture *f = *state;
	char out[1024] = "";

	assert_int_equal(store_domain_add(f->st, "LAB.test"), STORE_EXISTS);
	assert_int_equal(store_domain_lookup(f->st, "Lab.Test"), 1);
	assert_int_equal(store_domain_lookup(f->st, "example.org"), 0);
	assert_int_equal(store_domain_lookup(f->st, ""), 0);
	assert_int_equal(store_domain_lookup(f->st, NULL), 0);
	assert_int_equal(store_domain_add(f->st, "other.test"), 0);
	assert_int_equal(store_domain_list(f->st, collect, out), 0);
	assert_string_equal(out, "lab.test=;other.test=;");
	assert_int_equal(store_domain_del(f->st, "other.test"), 0);
	assert_int_equal(store_domain_del(f->st, "other.test"), STORE_NOTFOUND);

	assert_int_equal(store_alias_add(f->st, "postmaster", "ana"), 0);
	assert_int_equal(store_alias_add(f->st, "Postmaster", "ana"), STORE_EXISTS);
	assert_int_equal(store_alias_add(f->st, "info@lab.test", "bob"), 0);
	assert_int_equal(store_alias_add(f->st, "x", "nobody"), STORE_NOTFOUND);
	out[0] = '\0';
	assert_int_equal(store_alias_list(f->st, collect, out), 0);
	assert_string_equal(out, "info@lab.test=bob;postmaster=ana;");
	assert_int_equal(store_alias_del(f->st, "info@lab.test", NULL), 0);
	assert_int_equal(store_alias_del(f->st, "info@lab.test", NULL), STORE_NOTFOUND);
	assert_int_equal(store_alias_add(f->st, "turma", "ana"), 0);
	assert_int_equal(store_alias_add(f->st, "Turma", "bob"), 0);
	out[0] = '\0';
	assert_int_equal(store_alias_list(f->st, collect, out), 0);
	assert_string_equal(out, "postmaster=ana;turma=ana;turma=bob;");
	assert_int_equal(store_alias_del(f->st, "turma", "bob"), 0);
	assert_int_equal(store_alias_del(f->st, "turma", "bob"), STORE_NOTFOUND);
	assert_int_equal(store_alias_del(f->st, "turma", NULL), 0);

	assert_int_equal(store_domain_add(f->st, "other.test"), 0);
	assert_int_equal(store_alias_add(f->st, "sales@Other.Test", "bob"), 0);
	assert_int_equal(store_alias_add(f->st, "sales@lab.test", "bob"), 0);
	assert_int_equal(store_alias_add(f->st, "sales@sub.other.test", "bob"), 0);
	assert_int_equal(store_domain_del(f->st, "OTHER.test"), 0);
	out[0] = '\0';
	assert_int_equal(store_alias_list(f->st, collect, out), 0);
	assert_string_equal(out, "postmaster=ana;sales@lab.test=bob;sales@sub.other.test=bob;");
}

static void
test_resolve(void **state)
{
	struct fixture *f = *state;
	char acct[STORE_NAME_MAX + 1], all[1024] = "";
	static const struct {
		const char *local, *domain, *want;
	} cases[] = {
		{ "ana", "lab.test", "ana" },
		{ "ANA", "lab.test", "ana" },
		{ "bob", NULL, "bob" },
		{ "postmaster", NULL, "ana" },
		{ "PostMaster", "lab.test", "ana" },
		{ "info", "lab.test", "bob" },
		{ "info", "other.test", NULL },
		{ "help", "other.test", "ana" },
		{ "nobody", "lab.test", NULL },
		{ "", "lab.test", NULL },
	};
	size_t i;
	int rc;

	assert_int_equal(store_resolve(f->st, "postmaster", NULL, acct, sizeof(acct)), 0);
	assert_string_equal(acct, "ana");
	assert_int_equal(store_alias_add(f->st, "postmaster", "bob"), 0);
	assert_int_equal(store_resolve(f->st, "postmaster", "lab.test", acct, sizeof(acct)), 0);
	assert_string_equal(acct, "bob");
	assert_int_equal(store_alias_del(f->st, "postmaster", NULL), 0);

	assert_int_equal(store_alias_add(f->st, "postmaster", "ana"), 0);
	assert_int_equal(store_alias_add(f->st, "info@lab.test", "bob"), 0);
	assert_int_equal(store_alias_add(f->st, "help", "ana"), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = store_resolve(f->st, cases[i].local, cases[i].domain, acct, sizeof(acct));
		if (cases[i].want == NULL) {
			if (rc != STORE_NOTFOUND)
				fail_msg("case %zu (%s): expected NOTFOUND, got %d", i, cases[i].local, rc);
		} else {
			if (rc != 0)
				fail_msg("case %zu (%s): %d %s", i, cases[i].local, rc, store_errmsg(f->st));
			assert_string_equal(acct, cases[i].want);
		}
	}
	/* the alias local@domain wins over the alias local, which wins over
	 * the account of that name */
	assert_int_equal(store_alias_add(f->st, "bob", "ana"), 0);
	assert_int_equal(store_resolve(f->st, "bob", "lab.test", acct, sizeof(acct)), 0);
	assert_string_equal(acct, "ana");
	assert_int_equal(store_alias_add(f->st, "bob@lab.test", "bob"), 0);
	assert_int_equal(store_resolve(f->st, "BOB", "Lab.Test", acct, sizeof(acct)), 0);
	assert_string_equal(acct, "bob");
	assert_int_equal(store_alias_del(f->st, "bob", NULL), 0);
	assert_int_equal(store_alias_del(f->st, "bob@lab.test", NULL), 0);

	assert_int_equal(store_alias_add(f->st, "turma@lab.test", "bob"), 0);
	assert_int_equal(store_alias_add(f->st, "turma@lab.test", "ana"), 0);
	assert_int_equal(store_resolve_all(f->st, "turma", "lab.test", collect, all), 2);
	assert_string_equal(all, "ana=;bob=;");
	all[0] = '\0';
	assert_int_equal(store_resolve_all(f->st, "bob", "lab.test", collect, all), 1);
	assert_string_equal(all, "bob=;");
	assert_int_equal(store_resolve_all(f->st, "nobody", "lab.test", collect, all), STORE_NOTFOUND);
	assert_int_equal(store_resolve(f->st, "turma", "lab.test", acct, sizeof(acct)), STORE_NOTFOUND);
	assert_int_equal(store_user_del(f->st, "bob"), 0);
	assert_int_equal(store_resolve(f->st, "info", "lab.test", acct, sizeof(acct)), STORE_NOTFOUND);
}

/* ---- deliveries ------------------------------------------------------------------- */

static void
test_delivery_several(void **state)
{
	struct fixture *f = *state;
	const char *body = "Subject: hi\r\n\r\nhello\r\n";
	struct store_delivery *d = make_delivery(body, "ana", "bob");
	struct store_msg *m;
	size_t n;
	char buf[256];

	assert_int_equal(store_delivery_add_rcpt(d, "ANA"), 0);
	if (store_delivery_commit(f->st, d) != 0)
		fail_msg("commit: %s", store_errmsg(f->st));
	assert_true(store_delivery_id(d) > 0);
	/* stored once, two entries */
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM message_chunks"), 1);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM mailbox"), 2);
	store_delivery_free(&d);

	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(m[0].size, (int64_t)strlen(body));
	assert_true(m[0].arrived > 0);
	assert_true(strlen(m[0].uidl) >= 1 && strlen(m[0].uidl) <= 70);
	for (const char *p = m[0].uidl; *p; p++)
		assert_true(*p >= 0x21 && *p <= 0x7e);
	read_all(f->st, m[0].entry_id, 5, buf, sizeof(buf));
	assert_string_equal(buf, body);
	free(m);
}

static void
test_delivery_rollback(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *d = make_delivery("x\r\n", "ana", "nobody");
	struct store_msg *m;
	size_t n;

	assert_int_equal(store_delivery_commit(f->st, d), -1);
	assert_non_null(strstr(store_errmsg(f->st), "nobody"));
	assert_true(store_delivery_id(d) < 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM mailbox"), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	assert_int_equal(n, 0);
	free(m);
	store_delivery_free(&d);

	d = store_delivery_new("", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), -1);
	store_delivery_free(&d);

	d = make_delivery("y\r\n", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM mailbox"), 1);
}

/* Group commit: one transaction, a savepoint per delivery; the bad one
 * alone is undone. */
static void
test_delivery_batch(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *ds[4];
	int result[4];

	ds[0] = make_delivery("one\r\n", "ana", NULL);
	ds[1] = make_delivery("two\r\n", "ana", "ghost");
	ds[2] = make_delivery("three\r\n", "bob", "ana");
	ds[3] = store_delivery_new("", "s");
	assert_int_equal(store_delivery_add_remote(ds[3], "carla@example.org"), 0);
	assert_int_equal(store_delivery_body(ds[3], "four\r\n", 6), 0);

	assert_int_equal(store_delivery_commit_batch(f->st, ds, 4, result), 0);
	assert_int_equal(result[0], 0);
	assert_int_equal(result[1], -1);
	assert_int_equal(result[2], 0);
	assert_int_equal(result[3], 0);
	assert_true(store_delivery_id(ds[0]) > 0);
	assert_true(store_delivery_id(ds[1]) < 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM mailbox"), 3);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM queue"), 1);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM message_chunks"
	    " WHERE data = convert_to('two' || chr(13) || chr(10), 'UTF8')"), 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM message_chunks"
	    " WHERE data = convert_to('three' || chr(13) || chr(10), 'UTF8')"), 1);
	for (int i = 0; i < 4; i++)
		store_delivery_free(&ds[i]);
	assert_int_equal(store_delivery_commit_batch(f->st, ds, 0, result), 0);
}

/* Two processes deliver 200 messages each at the same time: all 400 land. */
static void
test_two_writers(void **state)
{
	struct fixture *f = *state;
	pid_t pids[2];
	int i, k, status;

	store_close(&f->st);
	for (k = 0; k < 2; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			struct store *st;
			char err[512], body[64];

			if (store_open(&st, f->url, err, sizeof(err)) != 0)
				_exit(10);
			for (i = 0; i < 200; i++) {
				struct store_delivery *d = store_delivery_new("", "w");

				snprintf(body, sizeof(body), "writer %d message %d\r\n", k, i);
				if (store_delivery_add_rcpt(d, k ? "bob" : "ana") != 0 ||
				    store_delivery_add_rcpt(d, "ana") != 0 ||
				    store_delivery_body(d, body, strlen(body)) != 0 ||
				    store_delivery_commit(st, d) != 0) {
					fprintf(stderr, "writer %d: %s\n", k, store_errmsg(st));
					_exit(11);
				}
				store_delivery_free(&d);
			}
			store_close(&st);
			_exit(0);
		}
	}
	for (k = 0; k < 2; k++) {
		assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 400);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM mailbox WHERE account = "
	    "(SELECT id FROM accounts WHERE name = 'ana')"), 400);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM mailbox WHERE account = "
	    "(SELECT id FROM accounts WHERE name = 'bob')"), 200);
	assert_int_equal(sql_int(f->url, "SELECT count(DISTINCT uidl) FROM mailbox"), 600);
}

/* ---- mailboxes ------------------------------------------------------------------------ */

static void
test_mailbox_read_expunge(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *d;
	struct store_msg *m, *m2;
	size_t n, n2, got, i, len = 700000;	/* three chunks */
	char *big = malloc(len), *back = malloc(len + 1);
	int64_t ids[2];

	assert_non_null(big);
	assert_non_null(back);
	for (i = 0; i < len; i++)
		big[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
	d = store_delivery_new("", "s");
	assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
	assert_int_equal(store_delivery_add_rcpt(d, "bob"), 0);
	for (i = 0; i < len; i += 1000)
		assert_int_equal(store_delivery_body(d, big + i, 1000), 0);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	d = make_delivery("second\r\n", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	d = make_delivery("", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);

	assert_int_equal(store_mailbox_list(f->st, "ANA", &m, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].size, (int64_t)len);
	assert_int_equal(m[1].size, 8);
	assert_int_equal(m[2].size, 0);
	assert_string_not_equal(m[0].uidl, m[1].uidl);
	{
		size_t chunks[] = { 1, 4096, 65536, 1 << 20, 262143 };

		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			size_t total = 0;

			if (chunks[c] == 1) {
				for (total = 0; total < 3000; total++) {
					assert_int_equal(store_msg_read(f->st, m[0].entry_id,
					    (int64_t)total, back + total, 1, &got), 0);
					assert_int_equal(got, 1);
				}
				assert_memory_equal(back, big, 3000);
				continue;
			}
			for (;;) {
				assert_int_equal(store_msg_read(f->st, m[0].entry_id, (int64_t)total,
				    back + total, len - total < chunks[c] ? len - total + 1 : chunks[c],
				    &got), 0);
				if (got == 0)
					break;
				total += got;
			}
			assert_int_equal(total, len);
			assert_memory_equal(back, big, len);
		}
	}
	/* a read across a chunk boundary, at an odd offset */
	assert_int_equal(store_msg_read(f->st, m[0].entry_id, 262140, back, 10, &got), 0);
	assert_int_equal(got, 10);
	assert_memory_equal(back, big + 262140, 10);
	assert_int_equal(store_msg_read(f->st, m[2].entry_id, 0, back, 10, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(store_msg_read(f->st, m[0].entry_id, (int64_t)len + 5, back, 10, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(store_msg_read(f->st, 999999, 0, back, 10, &got), STORE_NOTFOUND);

	ids[0] = m[1].entry_id;
	assert_int_equal(store_mailbox_expunge(f->st, "bob", ids, 1), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m2, &n2), 0);
	assert_int_equal(n2, 3);
	free(m2);

	ids[0] = m[0].entry_id;
	ids[1] = m[1].entry_id;
	assert_int_equal(store_mailbox_expunge(f->st, "ana", ids, 2), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m2, &n2), 0);
	assert_int_equal(n2, 1);
	assert_int_equal(m2[0].entry_id, m[2].entry_id);
	free(m2);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 2);
	assert_int_equal(store_mailbox_list(f->st, "bob", &m2, &n2), 0);
	assert_int_equal(n2, 1);
	assert_int_equal(store_msg_read(f->st, m2[0].entry_id, 0, back, len, &got), 0);
	assert_int_equal(got, len);
	assert_memory_equal(back, big, len);
	ids[0] = m2[0].entry_id;
	free(m2);
	assert_int_equal(store_mailbox_expunge(f->st, "bob", ids, 1), 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM message_chunks"), 0);	/* empty one */
	assert_int_equal(store_user_del(f->st, "ana"), 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 0);
	free(m);
	free(big);
	free(back);
}

/* Several messages streamed at once on one handle (more than it keeps),
 * other calls and another writer in between: every octet right. */
static void
test_interleaved_reads(void **state)
{
	struct fixture *f = *state;
	enum { NMSG = 6, LEN = 600000 };
	struct store_msg *m;
	size_t n, got, i;
	int64_t off[NMSG] = { 0 };
	char *body[NMSG], chunk[70000];
	int k, done_count = 0;
	struct store *other;
	char err[512];

	for (k = 0; k < NMSG; k++) {
		struct store_delivery *d = store_delivery_new("", "s");

		body[k] = malloc(LEN);
		assert_non_null(body[k]);
		for (i = 0; i < LEN; i++)
			body[k][i] = (char)('A' + (k * 7 + i) % 53);
		assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
		assert_int_equal(store_delivery_body(d, body[k], LEN), 0);
		assert_int_equal(store_delivery_commit(f->st, d), 0);
		store_delivery_free(&d);
	}
	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	assert_int_equal(n, NMSG);
	assert_int_equal(store_open(&other, f->url, err, sizeof(err)), 0);
	for (int round = 0; done_count < NMSG; round++) {
		for (k = 0; k < NMSG; k++) {
			if (off[k] < 0)
				continue;
			assert_int_equal(store_msg_read(f->st, m[k].entry_id, off[k], chunk,
			    sizeof(chunk), &got), 0);
			if (got == 0) {
				assert_int_equal(off[k], LEN);
				off[k] = -1;
				done_count++;
				continue;
			}
			assert_memory_equal(chunk, body[k] + off[k], got);
			off[k] += (int64_t)got;
		}
		if (round % 5 == 1)
			assert_int_equal(store_mailbox_lock(f->st, "ana", "s1", 1800), 0);
		if (round % 7 == 3) {
			struct store_delivery *d = make_delivery("more\r\n", "bob", NULL);

			assert_int_equal(store_delivery_commit(other, d), 0);
			store_delivery_free(&d);
		}
	}
	/* an entry made by another handle after this one began reading */
	assert_int_equal(store_msg_read(f->st, m[0].entry_id, 0, chunk, 10, &got), 0);
	{
		struct store_delivery *d = make_delivery("fresh\r\n", "ana", NULL);
		struct store_msg *m2;
		size_t n2;

		assert_int_equal(store_delivery_commit(other, d), 0);
		store_delivery_free(&d);
		assert_int_equal(store_mailbox_list(other, "ana", &m2, &n2), 0);
		assert_int_equal(n2, NMSG + 1);
		assert_int_equal(store_msg_read(f->st, m2[NMSG].entry_id, 0, chunk, sizeof(chunk), &got), 0);
		assert_int_equal(got, 7);
		assert_memory_equal(chunk, "fresh\r\n", 7);
		free(m2);
	}
	assert_int_equal(store_msg_read(f->st, m[2].entry_id, 0, chunk, 10, &got), 0);
	store_read_done(f->st);
	store_read_done(f->st);
	assert_int_equal(store_msg_read(f->st, m[2].entry_id, 10, chunk, 10, &got), 0);
	assert_int_equal(got, 10);
	assert_memory_equal(chunk, body[2] + 10, 10);
	/* expunge on the same handle while a message is being read */
	assert_int_equal(store_msg_read(f->st, m[1].entry_id, 0, chunk, 10, &got), 0);
	assert_int_equal(store_mailbox_expunge(f->st, "ana", &m[1].entry_id, 1), 0);
	assert_int_equal(store_msg_read(f->st, m[1].entry_id, 10, chunk, 10, &got), STORE_NOTFOUND);
	store_close(&other);
	for (k = 0; k < NMSG; k++)
		free(body[k]);
	free(m);
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

static void
test_locks(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(store_mailbox_lock(f->st, "ana", "s1", 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s1", 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ANA", "s2", 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_lock(f->st, "bob", "s2", 1800), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s1"), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s2"), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", "s2"), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s3", 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", "s1"), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s3", 1800), 0);

	admin_exec(f->url, "UPDATE locks SET taken = taken - 4000 WHERE account = 'ana'");
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s4", 5000), STORE_LOCKED);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s4", 1800), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s3"), STORE_LOCKED);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s4"), 0);
}

static void
test_lock_of_dead_process(void **state)
{
	struct fixture *f = *state;
	char dead[300], live[300], mine[300], host[256];
	pid_t pid;
	int status;

	if ((pid = fork()) == 0)
		_exit(0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	store_lock_owner(live, sizeof(live), "other-session");
	store_lock_owner(mine, sizeof(mine), "new-session");
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	snprintf(dead, sizeof(dead), "%s/%ld/crashed", host, (long)pid);
	assert_int_equal(store_mailbox_lock(f->st, "ana", dead, 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", mine, 1800), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", dead), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", mine), 0);

	assert_int_equal(store_mailbox_lock(f->st, "ana", live, 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", mine, 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", live), 0);

	assert_int_equal(store_mailbox_lock(f->st, "ana", "elsewhere.example/1/x", 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", mine, 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "no-pid-here", 1800), STORE_LOCKED);
}

static void
test_lock_after_clock_step(void **state)
{
	struct fixture *f = *state;
	char live[300], other[300], ghost[300], sql[512];

	store_lock_owner(live, sizeof(live), "live-session");
	store_lock_owner(other, sizeof(other), "second-session");
	store_lock_owner(ghost, sizeof(ghost), "ended-session");
	assert_int_equal(store_mailbox_lock(f->st, "ana", live, 60), 0);
	admin_exec(f->url, "UPDATE locks SET taken = taken - 86400");
	assert_int_equal(store_mailbox_lock(f->st, "ana", other, 60), STORE_LOCKED);
	assert_int_equal(store_mailbox_touch(f->st, "ana", live), 0);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", live), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", other, 60), 0);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", other), 0);

	/* a lock row of this process that no session holds, taken just now,
	 * through a connection that is still there */
	snprintf(sql, sizeof(sql), "INSERT INTO locks(account, owner, taken, backend_pid,"
	    " backend_start) SELECT 'ana', '%s', extract(epoch from now())::bigint + 3600,"
	    " pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()", ghost);
	admin_exec(f->url, sql);
	assert_int_equal(store_mailbox_lock(f->st, "ana", other, 1800), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", ghost), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", other), 0);
}

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

/* ---- queue ------------------------------------------------------------------------------- */

static void
test_queue(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *d = store_delivery_new("ana@lab.test", "s");
	struct store_queue_item *q;
	size_t n, got;
	char buf[64];
	int64_t now = (int64_t)time(NULL), mid;

	assert_int_equal(store_queue_max_id(f->st), 0);
	assert_int_equal(store_delivery_add_remote(d, "x@example.org"), 0);
	assert_int_equal(store_delivery_add_remote(d, "y@example.net"), 0);
	assert_int_equal(store_delivery_add_remote(d, "x@example.org"), 0);
	assert_int_equal(store_delivery_add_rcpt(d, "bob"), 0);
	assert_int_equal(store_delivery_body(d, "queued\r\n", 8), 0);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	mid = store_delivery_id(d);
	store_delivery_free(&d);

	assert_int_equal(store_queue_list(f->st, now + 1, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(q[0].message_id, mid);
	assert_string_equal(q[0].sender, "ana@lab.test");
	assert_string_equal(q[0].rcpt, "x@example.org");
	assert_int_equal(q[0].attempts, 0);
	assert_string_equal(q[0].last_error, "");
	assert_int_equal(store_message_size(f->st, mid), 8);
	assert_int_equal(store_message_read(f->st, mid, 2, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 6);
	assert_memory_equal(buf, "eued\r\n", 6);
	assert_int_equal(store_message_size(f->st, 424242), -1);
	assert_int_equal(store_message_read(f->st, 424242, 0, buf, sizeof(buf), &got), STORE_NOTFOUND);

	assert_int_equal(store_queue_max_id(f->st), q[1].id);
	assert_int_equal(store_queue_defer(f->st, q[0].id, now + 600, "451 4.3.0 try later"), 0);
	assert_int_equal(store_queue_defer(f->st, 424242, now, "x"), STORE_NOTFOUND);

	free(q);
	assert_int_equal(store_queue_list(f->st, now + 1, &q, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].rcpt, "y@example.net");
	free(q);
	assert_int_equal(store_queue_list(f->st, -1, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(q[1].attempts, 1);
	assert_int_equal(q[1].next_attempt, now + 600);
	assert_string_equal(q[1].last_error, "451 4.3.0 try later");
	assert_int_equal(store_queue_clamp(f->st, now + 600), 0);
	assert_int_equal(store_queue_clamp(f->st, now + 599), 1);
	assert_int_equal(sql_int(f->url, "SELECT max(next_attempt) FROM queue") - now, 599);
	assert_int_equal(store_queue_flush(f->st), 0);
	free(q);
	assert_int_equal(store_queue_list(f->st, now, &q, &n), 0);
	assert_int_equal(n, 2);

	assert_int_equal(store_queue_delete(f->st, q[0].id), 0);
	assert_int_equal(store_queue_delete(f->st, q[0].id), STORE_NOTFOUND);
	assert_int_equal(store_queue_delete(f->st, q[1].id), 0);
	free(q);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 1);

	d = store_delivery_new("", "s");
	assert_int_equal(store_delivery_add_remote(d, "z@example.org"), 0);
	assert_int_equal(store_delivery_body(d, "q\r\n", 3), 0);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(store_queue_list(f->st, -1, &q, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].sender, "");
	assert_int_equal(store_queue_delete(f->st, q[0].id), 0);
	free(q);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM messages"), 1);
}

/* ---- the web console ---------------------------------------------------------------------- */

static void
test_web(void **state)
{
	struct fixture *f = *state;
	char account[STORE_NAME_MAX + 1], csrf[STORE_CSRF_MAX + 1];
	int64_t now = (int64_t)time(NULL);
	struct store_delivery *d;
	struct store_msg_info info;
	struct store_msg *msgs;
	size_t n;

	assert_int_equal(store_user_is_teacher(f->st, "ana"), 0);
	assert_int_equal(store_user_set_teacher(f->st, "ana", true), 0);
	assert_int_equal(store_user_is_teacher(f->st, "ANA"), 1);
	assert_int_equal(store_user_set_teacher(f->st, "ana", false), 0);
	assert_int_equal(store_user_is_teacher(f->st, "ana"), 0);
	assert_int_equal(store_user_set_teacher(f->st, "nobody", true), STORE_NOTFOUND);
	assert_int_equal(store_user_is_teacher(f->st, "nobody"), STORE_NOTFOUND);

	assert_int_equal(store_websession_add(f->st, "k1", "bob", "c1", now + 3600), 0);
	assert_int_equal(store_websession_get(f->st, "k1", now, account, csrf), 0);
	assert_string_equal(account, "bob");
	assert_string_equal(csrf, "c1");
	assert_int_equal(store_websession_get(f->st, "k1", now + 3600, account, csrf), STORE_NOTFOUND);
	assert_int_equal(store_websession_add(f->st, "k2", "nobody", "c2", now + 3600), STORE_NOTFOUND);
	assert_int_equal(store_websession_del(f->st, "k1"), 0);
	assert_int_equal(store_websession_get(f->st, "k1", now, account, csrf), STORE_NOTFOUND);
	assert_int_equal(store_websession_add(f->st, "old", "ana", "c", 1), 0);
	assert_int_equal(store_websession_add(f->st, "new", "ana", "c", now * 2), 0);
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM web_sessions WHERE id = 'old'"), 0);

	assert_int_equal(store_token_add(f->st, "t1", "ana"), 0);
	assert_int_equal(store_token_add(f->st, "t1", "bob"), STORE_EXISTS);
	assert_int_equal(store_token_add(f->st, "t2", "nobody"), STORE_NOTFOUND);
	assert_int_equal(store_token_get(f->st, "t1", account), 0);
	assert_string_equal(account, "ana");
	assert_int_equal(store_token_get(f->st, "t2", account), STORE_NOTFOUND);

	d = store_delivery_new("ana@lab.test", "14bc0a7bef1a");
	assert_int_equal(store_delivery_add_rcpt(d, "bob"), 0);
	assert_int_equal(store_delivery_body(d, "Subject: x\r\n\r\nhi\r\n", 19), 0);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(store_mailbox_list(f->st, "bob", &msgs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_mailbox_entry(f->st, "bob", msgs[0].entry_id, &info), 0);
	assert_int_equal(info.msg.size, 19);
	assert_string_equal(info.session, "14bc0a7bef1a");
	assert_string_equal(info.sender, "ana@lab.test");
	assert_int_equal(store_mailbox_entry(f->st, "ana", msgs[0].entry_id, &info), STORE_NOTFOUND);
	free(msgs);

	assert_int_equal(store_user_del(f->st, "ana"), 0);
	assert_int_equal(store_websession_get(f->st, "new", now, account, csrf), STORE_NOTFOUND);
	assert_int_equal(store_token_get(f->st, "t1", account), STORE_NOTFOUND);
}

/* ---- transcripts and the session log ---------------------------------------------------------- */

static void
test_transcripts(void **state)
{
	struct fixture *f = *state;
	char out[1024] = "";
	const char *a = "T1 S: 220 hi\nT2 C: EHLO x\n", *b = "T3 S: 250 ok\nT4 C: QUIT";

	assert_int_equal(store_transcript_get(f->st, "abc", collect, out), STORE_NOTFOUND);
	assert_int_equal(store_transcript_append(f->st, "abc", "smtp", a, strlen(a)), 0);
	assert_int_equal(store_transcript_append(f->st, "abc", "smtp", b, strlen(b)), 0);
	assert_int_equal(store_transcript_append(f->st, "other", "pop3", "X\n", 2), 0);
	assert_int_equal(store_transcript_append(f->st, "abc", "smtp", "", 0), 0);
	assert_int_equal(store_transcript_get(f->st, "abc", collect, out), 0);
	assert_string_equal(out, "T1 S: 220 hi=;T2 C: EHLO x=;T3 S: 250 ok=;T4 C: QUIT=;");
	assert_int_equal(sql_int(f->url, "SELECT count(*) FROM transcripts"), 3);
}

static void
collect_session(void *arg, const struct store_session_info *si)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 1024 - n, "%s:%s:%s:%s:%lld:%s;", si->id, si->proto, si->client, si->user,
	    (long long)si->ended, si->outcome);
}

static void
test_session_log(void **state)
{
	struct fixture *f = *state;
	struct store_sesslog_rec r[] = {
		{ STORE_SESSLOG_OPEN, 100, "s1", "smtp", "127.0.0.2", 9 },
		{ STORE_SESSLOG_LINES, 100, "s1", "smtp", "C: HELO x\nS: 250 ok", 19 },
		{ STORE_SESSLOG_ACCOUNT, 101, "s1", "smtp", "bob", 3 },
		{ STORE_SESSLOG_OPEN, 200, "p1", "pop3", "127.0.0.1", 9 },
		{ STORE_SESSLOG_USER, 201, "p1", "pop3", "ana", 3 },
		{ STORE_SESSLOG_LINES, 201, "s1", "smtp", "C: E que tal ketchup?", 21 },
		{ STORE_SESSLOG_CLOSE, 202, "s1", "smtp", "quit", 4 },
	};
	struct store_session_filter all = { 0 }, bob = { "BOB", NULL, 0, NULL, 0 },
	    client = { NULL, "127.0.0.1", 0, NULL, 0 }, text = { NULL, NULL, 0, "ketchup", 0 },
	    since = { NULL, NULL, 150, NULL, 0 }, one = { NULL, NULL, 0, NULL, 1 };
	struct store_session_info si;
	char out[1024] = "", lines[1024] = "";

	assert_int_equal(store_log_ready(f->st), 0);
	assert_int_equal(store_sesslog_apply(f->st, r, sizeof(r) / sizeof(r[0])), 0);
	assert_int_equal(store_session_list(f->st, &all, collect_session, out), 0);
	assert_string_equal(out, "p1:pop3:127.0.0.1:ana:0:;s1:smtp:127.0.0.2::202:quit;");
	out[0] = '\0';
	assert_int_equal(store_session_list(f->st, &bob, collect_session, out), 0);
	assert_string_equal(out, "s1:smtp:127.0.0.2::202:quit;");
	out[0] = '\0';
	assert_int_equal(store_session_list(f->st, &client, collect_session, out), 0);
	assert_string_equal(out, "p1:pop3:127.0.0.1:ana:0:;");
	out[0] = '\0';
	assert_int_equal(store_session_list(f->st, &text, collect_session, out), 0);
	assert_string_equal(out, "s1:smtp:127.0.0.2::202:quit;");
	out[0] = '\0';
	assert_int_equal(store_session_list(f->st, &since, collect_session, out), 0);
	assert_string_equal(out, "p1:pop3:127.0.0.1:ana:0:;");
	out[0] = '\0';
	assert_int_equal(store_session_list(f->st, &one, collect_session, out), 0);
	assert_string_equal(out, "p1:pop3:127.0.0.1:ana:0:;");
	assert_int_equal(store_session_get(f->st, "s1", &si), 0);
	assert_string_equal(si.client, "127.0.0.2");
	assert_int_equal(si.started, 100);
	assert_int_equal(store_session_get(f->st, "nope", &si), STORE_NOTFOUND);
	assert_int_equal(store_session_involves(f->st, "s1", "bob"), 1);
	assert_int_equal(store_session_involves(f->st, "s1", "ana"), 0);
	assert_int_equal(store_session_involves(f->st, "p1", "ANA"), 1);
	assert_int_equal(store_transcript_get(f->st, "s1", collect, lines), 0);
	assert_string_equal(lines, "C: HELO x=;S: 250 ok=;C: E que tal ketchup?=;");

	struct store_sesslog_rec r2[] = {
		{ STORE_SESSLOG_LINES, 203, "s1", "smtp", "S: 221 bye\n", 11 },
		{ STORE_SESSLOG_LINES, 203, "o1", "smtp-out", "S: 220 there", 12 },
		{ STORE_SESSLOG_LINES, 204, "o1", "smtp-out", "C: EHLO me\n", 11 },
	};
	assert_int_equal(store_sesslog_apply(f->st, r2, sizeof(r2) / sizeof(r2[0])), 0);
	lines[0] = '\0';
	assert_int_equal(store_transcript_get(f->st, "s1", collect, lines), 0);
	assert_string_equal(lines, "C: HELO x=;S: 250 ok=;C: E que tal ketchup?=;S: 221 bye=;");
	lines[0] = '\0';
	assert_int_equal(store_transcript_get(f->st, "o1", collect, lines), 0);
	assert_string_equal(lines, "S: 220 there=;C: EHLO me=;");
	assert_int_equal(store_session_get(f->st, "o1", &si), 0);
	assert_string_equal(si.proto, "smtp-out");
	assert_int_equal(si.started, 203);
}

/* ---- the database going away -------------------------------------------------------------------- */

static int
pg_server(const char *cmd)
{
	char line[1200];
	const char *script = getenv("CORREIO_PG_SERVER");

	snprintf(line, sizeof(line), "python3 '%s' %s '%s' >/dev/null", script, cmd, pg_dir);
	return system(line);
}

/* A connection killed under an idle handle: the next op notices it before
 * it runs (not by failing), reconnects at once and succeeds. */
static void
test_connection_killed(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *d = make_delivery("lost?\r\n", "ana", NULL);
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
	struct store_delivery *d = make_delivery("after\r\n", "ana", NULL);
	struct store_msg *m;
	size_t n;
	char hash[64];

	if (pg_dir[0] == '\0') {
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

	if (pg_dir[0] == '\0') {
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
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domains_aliases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_several, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_read_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_of_dead_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_after_clock_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_two_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_web, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transcripts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_skip_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_two_runners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_first_op, setup, teardown),
	};
	const char *url = getenv("CORREIO_PG_URL"), *dir = getenv("CORREIO_PG_DIR");
	FILE *fp;
	char path[URL_MAX + 8];

	if (url != NULL && *url != '\0')
		snprintf(base_url, sizeof(base_url), "%s", url);
	else if (dir != NULL && *dir != '\0') {
		snprintf(pg_dir, sizeof(pg_dir), "%s", dir);
		snprintf(path, sizeof(path), "%s/url", dir);
		if ((fp = fopen(path, "r")) == NULL || fgets(base_url, sizeof(base_url), fp) == NULL) {
			fprintf(stderr, "test_store_pg: no server URL in %s\n", path);
			return 1;
		}
		fclose(fp);
		base_url[strcspn(base_url, "\r\n")] = '\0';
	} else {
		fprintf(stderr, "test_store_pg: set CORREIO_PG_DIR (tests/pg_server.py) or CORREIO_PG_URL\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
