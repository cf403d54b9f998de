/*
 * tmpstore.h - a fresh store for a unit test, on the backend the run names
 * ($CORREIO_TEST_STORE: "postgresql", or SQLite): a directory of its own
 * under $CORREIO_TEST_TMP (or /tmp) either way, and in it the SQLite file,
 * or a database of its own on the PostgreSQL server of $CORREIO_PG_DIR
 * (tests/pg_server.py) or $CORREIO_PG_URL. Made by tmpstore_new(), removed
 * (store closed, database dropped) by tmpstore_free(); for cmocka setup and
 * teardown functions. Also the tests' one way to look at a store's rows
 * with SQL of their own, on either backend: where the two schemas differ
 * (a message's body, a lock row, the session log's home), the helper has
 * the branch, never the test.
 */
#ifndef CORREIO_TMPSTORE_H
#define CORREIO_TMPSTORE_H

#include <stdbool.h>
#include <stddef.h>

struct store;
struct store_delivery;

enum tmpstore_backend {
	TMPSTORE_SQLITE,
	TMPSTORE_PG
};

struct tmpstore {
	enum tmpstore_backend backend;
	char		 dir[512];	/* the test's directory (spool files...) */
	char		 path[600];	/* what store_open() takes: dir/correio.db or a URL */
	char		 db[64];	/* PostgreSQL: the database's name; else "" */
	struct store	*st;
};

/* The backend of this run ($CORREIO_TEST_STORE "sqlite" or unset, or
 * "postgresql"; anything else ends the program), and its name. */
enum tmpstore_backend tmpstore_backend(void);
const char *tmpstore_backend_name(void);

/* A store in a new directory named PREFIX-XXXXXX (and, on PostgreSQL, a new
 * database PREFIX_PID_N; PREFIX is lower case letters), with the accounts
 * ana and bob when accounts is true. Fails the running test on any error. */
struct tmpstore *tmpstore_new(const char *prefix, bool accounts);
/* The same place, but nothing opened or created in it: st is NULL (the
 * test opens the store itself; PostgreSQL: an empty database). */
struct tmpstore *tmpstore_new_empty(const char *prefix);
/* Close the store, remove its directory (and drop its database); 0, or -1
 * if something stays. */
int	tmpstore_free(struct tmpstore *t);

/* A delivery from carla@example.org in session "sess1" to r1 and r2 (each
 * NULL: none) with body (a string), not yet committed: the caller commits
 * or aborts it. Fails the running test on any error. */
struct store_delivery *tmpstore_delivery(const char *body, const char *r1, const char *r2);

/*
 * SQL on t's store through a connection of its own (sqlite3 or libpq),
 * in the dialect of t's backend; each fails the running test on an error.
 * sql_int: the first column of the first row as an integer, -1 when there
 * is no row or it is NULL. The session log's variant runs on its home: the
 * file "<store>-sessions" beside a SQLite store, the store's own database
 * on PostgreSQL.
 */
long long tmpstore_sql_int(const struct tmpstore *t, const char *sql);
void	tmpstore_sql_exec(const struct tmpstore *t, const char *sql);
long long tmpstore_log_sql_int(const struct tmpstore *t, const char *sql);

/* tmpstore_sql_int() on the SQLite file at path (the SQLite-only tests'
 * files of their own). */
long long tmpstore_sqlite_int(const char *path, const char *sql);

/* How many messages in t's store have exactly these len octets as body. */
long long tmpstore_count_bodies(const struct tmpstore *t, const void *body, size_t len);
/* A lock row for account held by owner, taken at now + offset seconds, as
 * a session's would be (PostgreSQL: recorded with a connection of a live
 * server process, the helper's own). */
void	tmpstore_lock_insert(const struct tmpstore *t, const char *account,
	    const char *owner, long offset);

/* Hold the session log's write lock from another connection (as another
 * program could) until tmpstore_log_release(): SQLite a write transaction
 * on its file, PostgreSQL its tables locked against writes. */
struct tmpstore_hold;
struct tmpstore_hold *tmpstore_log_hold(const struct tmpstore *t);
void	tmpstore_log_release(struct tmpstore_hold **h);

/* ---- PostgreSQL: the test server itself (test_store_pg.c) ---------------- */
/* The server's URL for the database db (NULL: the server's own database,
 * where databases are made and dropped). */
void	tmpstore_pg_url(char *dst, size_t len, const char *db);
/* The server's directory ($CORREIO_PG_DIR; "" when it was given by URL:
 * not ours to stop). */
const char *tmpstore_pg_dir(void);
/* A new empty database PREFIX_PID_N: its name in db, its URL in url. */
void	tmpstore_pg_db_new(const char *prefix, char *db, size_t dblen, char *url, size_t urllen);
/* Drop db (connections to it closed by force): 0 or -1. */
int	tmpstore_pg_db_drop(const char *db);
/* Run sql on url with a connection of its own (a query or a command). */
void	tmpstore_pg_exec(const char *url, const char *sql);
/* Run a query on url with a connection of its own: the first value as an
 * integer, -1 when there is no row or it is NULL. */
long long tmpstore_pg_int(const char *url, const char *sql);

#endif
