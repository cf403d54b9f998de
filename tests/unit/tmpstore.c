/*
 * tmpstore.c - a fresh store for a unit test on either backend, and SQL of
 * the tests' own on it (see tmpstore.h). The one place the unit tests
 * speak to sqlite3 and libpq about a store's rows, and the one place that
 * makes and drops the test server's databases.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "tmpstore.h"

#define PG_BYTEA_OID	17	/* pg_type.oid of bytea, for a binary parameter */

struct tmpstore_hold {
	sqlite3		*db;	/* SQLite: the session log's file, in BEGIN IMMEDIATE */
	PGconn		*pg;	/* PostgreSQL: a transaction holding the table locks */
};

static char pg_base[600];	/* the server's URL ($CORREIO_PG_URL or DIR/url) */
static char pg_dir[512];	/* $CORREIO_PG_DIR, or "" */
static int pg_counter;		/* databases made by this process */

enum tmpstore_backend
tmpstore_backend(void)
{
	const char *s = getenv("CORREIO_TEST_STORE");

	if (s == NULL || *s == '\0' || strcmp(s, "sqlite") == 0)
		return TMPSTORE_SQLITE;
	if (strcmp(s, "postgresql") == 0)
		return TMPSTORE_PG;
	/* a misspelt backend must not pass as a run on the other one */
	fprintf(stderr, "CORREIO_TEST_STORE=%s: not sqlite or postgresql\n", s);
	exit(2);
}

const char *
tmpstore_backend_name(void)
{
	return tmpstore_backend() == TMPSTORE_PG ? "postgresql" : "sqlite";
}

/* ---- PostgreSQL ------------------------------------------------------------ */

/* Find the server once: $CORREIO_PG_URL, or the url file pg_server.py left
 * in $CORREIO_PG_DIR. */
static const char *
pg_server_url(void)
{
	const char *url = getenv("CORREIO_PG_URL"), *dir = getenv("CORREIO_PG_DIR");
	char path[600];
	FILE *fp;

	if (pg_base[0] != '\0')
		return pg_base;
	if (url != NULL && *url != '\0') {
		snprintf(pg_base, sizeof(pg_base), "%s", url);
		return pg_base;
	}
	if (dir == NULL || *dir == '\0')
		fail_msg("set CORREIO_PG_DIR (tests/pg_server.py) or CORREIO_PG_URL");
	snprintf(pg_dir, sizeof(pg_dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/url", dir);
	if ((fp = fopen(path, "r")) == NULL || fgets(pg_base, sizeof(pg_base), fp) == NULL)
		fail_msg("no PostgreSQL server URL in %s", path);
	fclose(fp);
	pg_base[strcspn(pg_base, "\r\n")] = '\0';
	return pg_base;
}

const char *
tmpstore_pg_dir(void)
{
	(void)pg_server_url();
	return pg_dir;
}

void
tmpstore_pg_url(char *dst, size_t len, const char *db)
{
	const char *base = pg_server_url(), *slash = strrchr(base, '/'), *q;

	if (db == NULL || slash == NULL) {
		snprintf(dst, len, "%s", base);
		return;
	}
	q = strchr(slash, '?');
	snprintf(dst, len, "%.*s/%s%s", (int)(slash - base), base, db, q ? q : "");
}

static PGconn *
pg_connect(const char *url)
{
	PGconn *c = PQconnectdb(url);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", url, PQerrorMessage(c));
	return c;
}

static void
pg_exec_on(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

void
tmpstore_pg_exec(const char *url, const char *sql)
{
	PGconn *c = pg_connect(url);

	pg_exec_on(c, sql);
	PQfinish(c);
}

/* The first value of a query's result: an integer, -1 for none or NULL. */
static long long
pg_first(PGconn *c, PGresult *r, const char *sql)
{
	long long v = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

long long
tmpstore_pg_int(const char *url, const char *sql)
{
	PGconn *c = pg_connect(url);
	long long v = pg_first(c, PQexec(c, sql), sql);

	PQfinish(c);
	return v;
}

void
tmpstore_pg_db_new(const char *prefix, char *db, size_t dblen, char *url, size_t urllen)
{
	char sql[128], admin[600];

	for (const char *p = prefix; *p; p++)
		assert_true(*p >= 'a' && *p <= 'z');	/* an identifier as it is */
	snprintf(db, dblen, "%s_%ld_%d", prefix, (long)getpid(), ++pg_counter);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	tmpstore_pg_url(admin, sizeof(admin), NULL);
	tmpstore_pg_exec(admin, sql);
	tmpstore_pg_url(url, urllen, db);
}

int
tmpstore_pg_db_drop(const char *db)
{
	char sql[128], admin[600];
	PGconn *c;
	PGresult *r;
	int rc = 0;

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	tmpstore_pg_url(admin, sizeof(admin), NULL);
	c = PQconnectdb(admin);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
		rc = -1;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

/* ---- SQLite ------------------------------------------------------------------ */

/* A connection to the file at path (never created here); readonly for queries. */
static sqlite3 *
sqlite_connect(const char *path, bool readonly)
{
	sqlite3 *db;

	if (sqlite3_open_v2(path, &db, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE,
	    NULL) != SQLITE_OK)
		fail_msg("open %s: %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static sqlite3_stmt *
sqlite_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	return s;
}

/* Step s to its first row: the first column, -1 for none or NULL. */
static long long
sqlite_first(sqlite3 *db, sqlite3_stmt *s)
{
	long long v = -1;
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		fail_msg("%s: %s", sqlite3_sql(s), sqlite3_errmsg(db));
	sqlite3_finalize(s);
	return v;
}

long long
tmpstore_sqlite_int(const char *path, const char *sql)
{
	sqlite3 *db = sqlite_connect(path, true);
	long long v = sqlite_first(db, sqlite_prepare(db, sql));

	sqlite3_close(db);
	return v;
}

/* ---- either ------------------------------------------------------------------- */

long long
tmpstore_sql_int(const struct tmpstore *t, const char *sql)
{
	if (t->backend == TMPSTORE_PG)
		return tmpstore_pg_int(t->path, sql);
	return tmpstore_sqlite_int(t->path, sql);
}

void
tmpstore_sql_exec(const struct tmpstore *t, const char *sql)
{
	sqlite3 *db;

	if (t->backend == TMPSTORE_PG) {
		tmpstore_pg_exec(t->path, sql);
		return;
	}
	db = sqlite_connect(t->path, false);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

long long
tmpstore_log_sql_int(const struct tmpstore *t, const char *sql)
{
	char logpath[700];

	if (t->backend == TMPSTORE_PG)
		return tmpstore_pg_int(t->path, sql);
	snprintf(logpath, sizeof(logpath), "%s-sessions", t->path);
	return tmpstore_sqlite_int(logpath, sql);
}

long long
tmpstore_count_bodies(const struct tmpstore *t, const void *body, size_t len)
{
	/* SQLite keeps a body in one blob; PostgreSQL in chunks, in order. */
	static const char sqlite_sql[] = "SELECT count(*) FROM messages WHERE body = ?1";
	static const char pg_sql[] = "SELECT count(*) FROM messages m WHERE coalesce(("
	    "SELECT string_agg(c.data, ''::bytea ORDER BY c.seq) FROM message_chunks c"
	    " WHERE c.message = m.id), ''::bytea) = $1";
	long long v;

	if (t->backend == TMPSTORE_PG) {
		const Oid types[1] = { PG_BYTEA_OID };
		const char *values[1] = { body };
		const int lengths[1] = { (int)len }, formats[1] = { 1 };
		PGconn *c = pg_connect(t->path);

		v = pg_first(c, PQexecParams(c, pg_sql, 1, types, values, lengths, formats, 0),
		    pg_sql);
		PQfinish(c);
	} else {
		sqlite3 *db = sqlite_connect(t->path, true);
		sqlite3_stmt *s = sqlite_prepare(db, sqlite_sql);

		assert_int_equal(sqlite3_bind_blob(s, 1, body, (int)len, SQLITE_STATIC), SQLITE_OK);
		v = sqlite_first(db, s);
		sqlite3_close(db);
	}
	return v;
}

void
tmpstore_lock_insert(const struct tmpstore *t, const char *account, const char *owner,
    long offset)
{
	static const char sqlite_sql[] = "INSERT INTO locks(account, owner, taken)"
	    " VALUES (?1, ?2, strftime('%s','now') + ?3)";
	/* a PostgreSQL lock row names its session's server process */
	static const char pg_sql[] = "INSERT INTO locks(account, owner, taken, backend_pid,"
	    " backend_start) SELECT $1, $2, extract(epoch from now())::bigint + $3::bigint,"
	    " pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()";

	if (t->backend == TMPSTORE_PG) {
		char off[32];
		const char *values[3] = { account, owner, off };
		PGconn *c = pg_connect(t->path);
		PGresult *r;

		snprintf(off, sizeof(off), "%ld", offset);
		r = PQexecParams(c, pg_sql, 3, NULL, values, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(r), "1") != 0)
			fail_msg("%s: %s", pg_sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *db = sqlite_connect(t->path, false);
		sqlite3_stmt *s = sqlite_prepare(db, sqlite_sql);

		sqlite3_bind_text(s, 1, account, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, offset);
		if (sqlite3_step(s) != SQLITE_DONE)
			fail_msg("%s: %s", sqlite_sql, sqlite3_errmsg(db));
		sqlite3_finalize(s);
		sqlite3_close(db);
	}
}

struct tmpstore_hold *
tmpstore_log_hold(const struct tmpstore *t)
{
	struct tmpstore_hold *h = calloc(1, sizeof(*h));
	char logpath[700];

	assert_non_null(h);
	if (t->backend == TMPSTORE_PG) {
		h->pg = pg_connect(t->path);
		pg_exec_on(h->pg, "BEGIN");
		/* EXCLUSIVE: every write waits, reads go on */
		pg_exec_on(h->pg, "LOCK TABLE sessions, session_accounts, transcripts"
		    " IN EXCLUSIVE MODE");
		return h;
	}
	snprintf(logpath, sizeof(logpath), "%s-sessions", t->path);
	h->db = sqlite_connect(logpath, false);
	if (sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("BEGIN IMMEDIATE on %s: %s", logpath, sqlite3_errmsg(h->db));
	return h;
}

void
tmpstore_log_release(struct tmpstore_hold **hp)
{
	struct tmpstore_hold *h = *hp;

	if (h->pg != NULL) {
		pg_exec_on(h->pg, "COMMIT");
		PQfinish(h->pg);
	} else {
		assert_int_equal(sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(h->db);
	}
	free(h);
	*hp = NULL;
}

/* ---- the fixture ----------------------------------------------------------------- */

struct tmpstore *
tmpstore_new_empty(const char *prefix)
{
	struct tmpstore *t = calloc(1, sizeof(*t));
	const char *base = getenv("CORREIO_TEST_TMP");

	assert_non_null(t);
	t->backend = tmpstore_backend();
	if (base == NULL || *base == '\0')
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(t->dir, sizeof(t->dir), "%s/%s-XXXXXX", base, prefix);
	assert_non_null(mkdtemp(t->dir));
	if (t->backend == TMPSTORE_PG)
		tmpstore_pg_db_new(prefix, t->db, sizeof(t->db), t->path, sizeof(t->path));
	else
		snprintf(t->path, sizeof(t->path), "%s/correio.db", t->dir);
	return t;
}

struct tmpstore *
tmpstore_new(const char *prefix, bool accounts)
{
	struct tmpstore *t = tmpstore_new_empty(prefix);
	char err[512];

	if (store_open(&t->st, t->path, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	if (accounts) {
		assert_int_equal(store_user_add(t->st, "ana", "$y$hash-ana"), 0);
		assert_int_equal(store_user_add(t->st, "bob", "$y$hash-bob"), 0);
	}
	return t;
}

int
tmpstore_free(struct tmpstore *t)
{
	char cmd[700];
	int rc = 0;

	store_close(&t->st);
	if (t->db[0] != '\0' && tmpstore_pg_db_drop(t->db) != 0)
		rc = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", t->dir);
		rc = -1;
	}
	free(t);
	return rc;
}

struct store_delivery *
tmpstore_delivery(const char *body, const char *r1, const char *r2)
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
