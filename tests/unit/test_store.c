/*
 * test_store.c - the store through store.h, on the backend the run names
 * (tmpstore.h: ctest runs it as unit/test_store on SQLite and as
 * unit/test_store@pg on PostgreSQL): accounts/domains/aliases and their
 * codes, resolve, deliveries (several recipients in one transaction,
 * rollback on failure, a batch with one bad delivery), two processes
 * writing at once, a reader during writes, mailbox list/read in
 * chunks/expunge, locks with takeover, the queue and its claims (two
 * runners, a dead one, a backend without them), transcripts and the
 * session log. On SQLite only, its file: a new file, migrations from older
 * versions, a file that is not ours, concurrent first opens, a second
 * handle's POSIX locks, the file deleted or replaced under a handle.
 * test_store_pg.c has what is PostgreSQL's own. Every test works on a
 * fresh store of its own (tmpstore_new()).
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "store.h"
#include "store_backend.h"	/* test_queue_claim_unsupported only */
#include "store_sqlite.h"	/* test_lock_durability_restored only */
#include "tmpstore.h"

/* A store with the accounts ana and bob and the domain lab.test. */
static int
setup(void **state)
{
	struct tmpstore *f = tmpstore_new("store", true);

	assert_int_equal(store_domain_add(f->st, "lab.test"), 0);
	*state = f;
	return 0;
}

/* A directory (SQLite) or database (PostgreSQL) with no store in it yet. */
static int
setup_empty(void **state)
{
	*state = tmpstore_new_empty("store");
	return 0;
}

static int
teardown(void **state)
{
	struct tmpstore *f = *state;

	store_close(&f->st);
	assert_null(f->st);
	return tmpstore_free(f);
}

/* ---- open ------------------------------------------------------------------ */

static void
test_new_file(void **state)
{
	struct tmpstore *f = *state;

	assert_int_equal(store_schema_version(f->st), store_schema_latest());
	assert_true(store_schema_latest() >= 1);
	/* Independent reader: WAL mode is persistent in the file header. */
	{
		sqlite3 *db;
		sqlite3_stmt *s;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
		sqlite3_finalize(s);
		sqlite3_close(db);
	}
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM correio_meta WHERE key='format'"), 1);
	/* SQLite's page size for the store, 16 KB for a new session log */
	assert_int_equal(tmpstore_sql_int(f, "PRAGMA page_size"), 4096);
	assert_int_equal(store_log_ready(f->st), 0);
	assert_int_equal(tmpstore_log_sql_int(f, "PRAGMA page_size"), 16384);
	assert_int_equal(tmpstore_log_sql_int(f, "SELECT count(*) FROM pragma_journal_mode "
	    "WHERE journal_mode = 'wal'"), 1);
	/* owner-only: it holds password hashes (and so do its -wal, -shm) */
	{
		struct stat sb;
		char wal[700];

		assert_int_equal(stat(f->path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
		snprintf(wal, sizeof(wal), "%s-wal", f->path);
		assert_int_equal(stat(wal, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
}

/* A session log made with 4 KB pages (by a correio before 16 KB) keeps
 * them when opened again, and is written as before. */
static void
test_log_page_size_kept(void **state)
{
	struct tmpstore *f = *state;
	char logpath[700], err[256];
	sqlite3 *db;

	assert_int_equal(store_log_ready(f->st), 0);
	store_close(&f->st);
	snprintf(logpath, sizeof(logpath), "%s-sessions", f->path);
	assert_int_equal(sqlite3_open(logpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA page_size = 4096;"
	    " VACUUM; PRAGMA journal_mode = WAL;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(tmpstore_sqlite_int(logpath, "PRAGMA page_size"), 4096);
	assert_int_equal(store_open(&f->st, f->path, err, sizeof(err)), 0);
	assert_int_equal(store_transcript_append(f->st, "kept", "smtp", "S: 220 hi\n", 10), 0);
	assert_int_equal(tmpstore_sqlite_int(logpath, "PRAGMA page_size"), 4096);
	assert_int_equal(tmpstore_sqlite_int(logpath,
	    "SELECT count(*) FROM transcripts WHERE session_id = 'kept'"), 1);
}

static void
test_reopen_keeps_data(void **state)
{
	struct tmpstore *f = *state;
	char err[256], hash[64];

	store_close(&f->st);
	assert_int_equal(store_open(&f->st, f->path, err, sizeof(err)), 0);
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "$y$hash-ana");
}

static void
test_migrate_from_zero(void **state)
{
	struct tmpstore *f = *state;
	const char *dir = f->dir;
	char path[600], err[256];
	struct store *st = NULL;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/empty.db", dir);
	/* A real SQLite file at user_version 0 with no tables. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 0; VACUUM;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(tmpstore_sqlite_int(path, "PRAGMA user_version"), 0);

	assert_int_equal(store_open(&st, path, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(st), store_schema_latest());
	assert_int_equal(store_user_add(st, "ana", "h"), 0);
	store_close(&st);
	assert_int_equal(tmpstore_sqlite_int(path, "PRAGMA user_version"), store_schema_latest());
	assert_int_equal(tmpstore_sqlite_int(path, "SELECT count(*) FROM accounts"), 1);
}

static void
collect(void *arg, const char *a, const char *b)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 1024 - n, "%s=%s;", a, b ? b : "");
}

/* A store made by the first schema, with an alias, keeps it when version 2
 * makes aliases lead to several accounts. */
static void
test_migrate_aliases_v1(void **state)
{
	struct tmpstore *f = *state;
	const char *dir = f->dir;
	char path[600], err[256], out[1024] = "";
	struct store *st = NULL;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/v1.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, store_schema_migrations[0], NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1;"
	    "INSERT INTO accounts(name, hash, created) VALUES ('ana', 'h', 1);"
	    "INSERT INTO aliases(address, account, created) VALUES ('postmaster', 1, 1);",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_open(&st, path, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(st), store_schema_latest());
	assert_int_equal(store_alias_list(st, collect, out), 0);
	assert_string_equal(out, "postmaster=ana;");
	assert_int_equal(store_user_add(st, "bob", "h"), 0);
	assert_int_equal(store_alias_add(st, "postmaster", "bob"), 0);
	store_close(&st);
}

static void collect_session(void *arg, const struct store_session_info *si);

/* A store of version 4 kept the session log in its own file: opening it
 * moves the log to the log's file (rows, accounts, lines), drops the old
 * tables, and the log reads back the same; a second open moves nothing. */
static void
test_migrate_session_log_v4(void **state)
{
	struct tmpstore *f = *state;
	const char *dir = f->dir;
	char path[600], logpath[700], err[256], out[1024] = "";
	struct store_session_filter bob = { "bob", NULL, 0, NULL, 0 };
	struct store *st = NULL;
	sqlite3 *db;
	int v;

	snprintf(path, sizeof(path), "%s/v4.db", dir);
	snprintf(logpath, sizeof(logpath), "%s-sessions", path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (v = 0; v < 4; v++)
		assert_int_equal(sqlite3_exec(db, store_schema_migrations[v], NULL, NULL, NULL),
		    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 4;"
	    "INSERT INTO sessions(id, proto, client, started, ended, user, outcome)"
	    "  VALUES ('s1', 'pop3', '127.0.0.1', 100, 101, 'bob', 'quit');"
	    "INSERT INTO session_accounts(session, account) VALUES ('s1', 'bob');"
	    "INSERT INTO transcripts(session_id, seq, proto, line, time)"
	    "  VALUES ('s1', 1, 'pop3', 'S: +OK hi', 100), ('s1', 2, 'pop3', 'C: QUIT', 101);",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_open(&st, path, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(st), store_schema_latest());
	assert_int_equal(store_transcript_get(st, "s1", collect, out), 0);
	assert_string_equal(out, "S: +OK hi=;C: QUIT=;");
	assert_int_equal(store_session_involves(st, "s1", "bob"), 1);
	out[0] = '\0';
	assert_int_equal(store_session_list(st, &bob, collect_session, out), 0);
	assert_non_null(strstr(out, "s1"));
	store_close(&st);
	assert_int_equal(tmpstore_sqlite_int(path, "SELECT count(*) FROM sqlite_master"
	    " WHERE name IN ('transcripts', 'sessions', 'session_accounts')"), 0);
	assert_int_equal(tmpstore_sqlite_int(logpath, "SELECT count(*) FROM transcripts"), 2);
	assert_int_equal(tmpstore_sqlite_int(logpath, "SELECT count(*) FROM sessions"), 1);

	assert_int_equal(store_open(&st, path, err, sizeof(err)), 0);
	store_close(&st);
	assert_int_equal(tmpstore_sqlite_int(logpath, "SELECT count(*) FROM transcripts"), 2);
}

/* A session log file that is not ours is refused, not written into. */
static void
test_foreign_session_log_refused(void **state)
{
	struct tmpstore *f = *state;
	char logpath[700];
	sqlite3 *db;
	struct store *st = NULL;
	char err[256];

	snprintf(logpath, sizeof(logpath), "%s-sessions", f->path);
	assert_int_equal(sqlite3_open(logpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE other(x);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&st, f->path, err, sizeof(err)), 0);
	assert_int_equal(store_transcript_append(st, "abc", "smtp", "x\n", 2), -1);
	assert_non_null(strstr(store_errmsg(st), "not a correio session log"));
	store_close(&st);
	assert_int_equal(tmpstore_sqlite_int(logpath, "SELECT count(*) FROM sqlite_master"), 1);
}

static void
test_foreign_refused(void **state)
{
	struct tmpstore *f = *state;
	const char *dir = f->dir;
	char path[600], err[256];
	struct store *st = NULL;
	sqlite3 *db;
	FILE *fp;

	/* Another program's database. */
	snprintf(path, sizeof(path), "%s/other.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE photos(id INTEGER, data BLOB)",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&st, path, err, sizeof(err)), -1);
	assert_null(st);
	assert_non_null(strstr(err, "not a correio store"));
	/* and it was left alone: no tables added, journal mode unchanged */
	assert_int_equal(tmpstore_sqlite_int(path, "SELECT count(*) FROM sqlite_master"), 1);
	{
		sqlite3_stmt *s;

		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(s, 0), "delete");
		sqlite3_finalize(s);
		sqlite3_close(db);
	}

	/* A file from a newer correio. */
	snprintf(path, sizeof(path), "%s/newer.db", dir);
	assert_int_equal(store_open(&st, path, err, sizeof(err)), 0);
	store_close(&st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&st, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "newer"));

	/* A user_version without our marker. */
	snprintf(path, sizeof(path), "%s/marked.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 1",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&st, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a correio store"));

	/* Not a database at all. */
	snprintf(path, sizeof(path), "%s/text.db", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 100; i++)
		fputs("this is a text file, not a database\n", fp);
	fclose(fp);
	assert_int_equal(store_open(&st, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a"));

	/* A directory that does not exist. */
	snprintf(path, sizeof(path), "%s/nope/x.db", dir);
	assert_int_equal(store_open(&st, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
}

/* ---- accounts, domains, aliases ---------------------------------------------- */


static void
test_accounts(void **state)
{
	struct tmpstore *f = *state;
	char hash[64], out[1024] = "";

	assert_int_equal(store_user_add(f->st, "ana", "x"), STORE_EXISTS);
	assert_int_equal(store_user_add(f->st, "ANA", "x"), STORE_EXISTS);	/* case-insensitive */
	assert_int_equal(store_user_get_hash(f->st, "Ana", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "$y$hash-ana");
	assert_int_equal(store_user_get_hash(f->st, "zed", hash, sizeof(hash)), STORE_NOTFOUND);
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, 4), -1);	/* too small */
	assert_int_equal(store_user_set_hash(f->st, "ana", "$y$new"), 0);
	assert_int_equal(store_user_get_hash(f->st, "ana", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "$y$new");
	assert_int_equal(store_user_set_hash(f->st, "zed", "h"), STORE_NOTFOUND);
	assert_int_equal(store_user_add(f->st, "", "h"), -1);

	/* sorted by name without regard to case */
	assert_int_equal(store_user_add(f->st, "Beto", "h"), 0);
	assert_int_equal(store_user_list(f->st, collect, out), 0);
	assert_non_null(strstr(out, "ana="));
	assert_non_null(strstr(out, "bob="));
	assert_true(strstr(out, "ana=") < strstr(out, "bob="));
	assert_true(strstr(out, "ana=") < strstr(out, "Beto="));
	assert_true(strstr(out, "Beto=") < strstr(out, "bob="));
	assert_non_null(strstr(out, "T"));	/* ISO 8601 created time, */
	assert_non_null(strstr(out, "Z;"));	/* in UTC */

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
	struct tmpstore *f = *state;
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
	/* an alias with several accounts (a class list), one removed at a time */
	assert_int_equal(store_alias_add(f->st, "turma", "ana"), 0);
	assert_int_equal(store_alias_add(f->st, "Turma", "bob"), 0);
	out[0] = '\0';
	assert_int_equal(store_alias_list(f->st, collect, out), 0);
	assert_string_equal(out, "postmaster=ana;turma=ana;turma=bob;");
	assert_int_equal(store_alias_del(f->st, "turma", "bob"), 0);
	assert_int_equal(store_alias_del(f->st, "turma", "bob"), STORE_NOTFOUND);
	assert_int_equal(store_alias_del(f->st, "turma", NULL), 0);

	/* deleting a domain takes its aliases along, and only those */
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
	struct tmpstore *f = *state;
	char acct[STORE_NAME_MAX + 1];
	static const struct {
		const char *local, *domain, *want;	/* want NULL: not found */
	} cases[] = {
		{ "ana", "lab.test", "ana" },
		{ "ANA", "lab.test", "ana" },		/* case-insensitive, canonical name */
		{ "bob", NULL, "bob" },
		{ "postmaster", NULL, "ana" },		/* bare postmaster */
		{ "PostMaster", "lab.test", "ana" },
		{ "info", "lab.test", "bob" },		/* alias local@domain */
		{ "info", "other.test", NULL },		/* that alias is per domain */
		{ "help", "other.test", "ana" },	/* alias "help": any domain */
		{ "nobody", "lab.test", NULL },
		{ "", "lab.test", NULL },
	};
	size_t i;
	int rc;

	/* Without an alias, postmaster reaches the first account (RFC 5321 4.5.1). */
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
	/* an alias of several accounts resolves to all of them, but is no one
	 * account (a user may not send as a class list) */
	{
		char all[1024] = "";
		assert_int_equal(store_alias_add(f->st, "turma@lab.test", "bob"), 0);
		assert_int_equal(store_alias_add(f->st, "turma@lab.test", "ana"), 0);
		assert_int_equal(store_resolve_all(f->st, "turma", "lab.test", collect, all), 2);
		assert_string_equal(all, "ana=;bob=;");
		all[0] = '\0';
		assert_int_equal(store_resolve_all(f->st, "bob", "lab.test", collect, all), 1);
		assert_string_equal(all, "bob=;");
		assert_int_equal(store_resolve_all(f->st, "nobody", "lab.test", collect, all),
		    STORE_NOTFOUND);
		assert_int_equal(store_resolve(f->st, "turma", "lab.test", acct, sizeof(acct)),
		    STORE_NOTFOUND);
	}
	/* deleting an account removes its aliases */
	assert_int_equal(store_user_del(f->st, "bob"), 0);
	assert_int_equal(store_resolve(f->st, "info", "lab.test", acct, sizeof(acct)), STORE_NOTFOUND);
}

/* ---- the store's file deleted or replaced under an open handle --------------- */

static void
test_file_moved(void **state)
{
	struct tmpstore *f = *state;
	struct store *other, *st2;
	struct store_delivery *d;
	struct stat before, after;
	char other_path[700], wal[700], err[512];

	assert_int_equal(store_file_check(f->st), 0);

	/* Another store moved into place: "replaced", every write refused,
	 * also a single statement (the commit hook), and the new file untouched. */
	snprintf(other_path, sizeof(other_path), "%s/other.db", f->dir);
	if (store_open(&other, other_path, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	store_close(&other);
	assert_int_equal(rename(other_path, f->path), 0);
	assert_int_equal(stat(f->path, &before), 0);
	assert_int_equal(store_file_check(f->st), STORE_MOVED);
	assert_non_null(strstr(store_errmsg(f->st), "replaced"));
	assert_int_equal(store_user_add(f->st, "carla", "$y$hash-carla"), -1);
	assert_non_null(strstr(store_errmsg(f->st), "replaced"));
	assert_int_equal(store_user_set_hash(f->st, "ana", "$y$other"), -1);
	d = tmpstore_delivery("Subject: x\r\n\r\nx\r\n", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), -1);
	store_delivery_free(&d);
	/* (Not read through SQLite: beside the old -wal and -shm, still the
	 * open handle's, another reader would see the old store's pages.) */
	assert_int_equal(stat(f->path, &after), 0);
	assert_true(after.st_size == before.st_size &&
	    after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
	    after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);

	/* Deleted: "deleted". */
	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(store_file_check(f->st), STORE_MOVED);
	assert_non_null(strstr(store_errmsg(f->st), "deleted"));

	/* A new store at the path, in use: closing the old handle must not
	 * checkpoint into the deleted file and then delete the new -wal. */
	if (store_open(&st2, f->path, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_user_add(st2, "dora", "$y$hash-dora"), 0);
	store_close(&f->st);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(access(wal, F_OK), 0);
	assert_int_equal(store_file_check(st2), 0);
	assert_int_equal(store_user_add(st2, "eva", "$y$hash-eva"), 0);
	store_close(&st2);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM accounts"), 2);
}

/* ---- deliveries -------------------------------------------------------------- */

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
test_delivery_several(void **state)
{
	struct tmpstore *f = *state;
	const char *body = "Subject: hi\r\n\r\nhello\r\n";
	struct store_delivery *d = tmpstore_delivery(body, "ana", "bob");
	struct store_msg *m;
	size_t n;
	char buf[256];

	assert_int_equal(store_delivery_add_rcpt(d, "ANA"), 0);	/* duplicate ignored */
	assert_int_equal(store_delivery_size(d), strlen(body));
	if (store_delivery_commit(f->st, d) != 0)
		fail_msg("commit: %s", store_errmsg(f->st));
	assert_true(store_delivery_id(d) > 0);
	/* stored once, two entries */
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM mailbox"), 2);
	store_delivery_free(&d);
	assert_null(d);

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
	struct tmpstore *f = *state;
	struct store_delivery *d = tmpstore_delivery("x\r\n", "ana", "nobody");
	struct store_msg *m;
	size_t n;

	/* The unknown account fails the whole delivery: nothing visible. */
	assert_int_equal(store_delivery_commit(f->st, d), -1);
	assert_non_null(strstr(store_errmsg(f->st), "nobody"));
	assert_true(store_delivery_id(d) < 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM mailbox"), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	assert_int_equal(n, 0);
	free(m);
	store_delivery_free(&d);

	/* No recipients at all */
	d = store_delivery_new("", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), -1);
	store_delivery_free(&d);

	/* and the handle still works */
	d = tmpstore_delivery("y\r\n", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM mailbox"), 1);
}

static void
test_delivery_batch(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *ds[4];
	int result[4];

	ds[0] = tmpstore_delivery("one\r\n", "ana", NULL);
	ds[1] = tmpstore_delivery("two\r\n", "ana", "ghost");	/* fails alone */
	ds[2] = tmpstore_delivery("three\r\n", "bob", "ana");
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
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM mailbox"), 3);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM queue"), 1);
	assert_int_equal(tmpstore_count_bodies(f, "two\r\n", 5), 0);
	assert_int_equal(tmpstore_count_bodies(f, "three\r\n", 7), 1);
	for (int i = 0; i < 4; i++)
		store_delivery_free(&ds[i]);
	assert_int_equal(store_delivery_commit_batch(f->st, ds, 0, result), 0);
}

/* Two processes deliver 200 messages each at the same time: all 400 land. */
static void
test_two_writers(void **state)
{
	struct tmpstore *f = *state;
	pid_t pids[2];
	int i, k, status;

	store_close(&f->st);
	for (k = 0; k < 2; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			struct store *st;
			char err[256], body[64];

			if (store_open(&st, f->path, err, sizeof(err)) != 0)
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
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 400);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM mailbox WHERE account = "
	    "(SELECT id FROM accounts WHERE name = 'ana')"), 400);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM mailbox WHERE account = "
	    "(SELECT id FROM accounts WHERE name = 'bob')"), 200);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(DISTINCT uidl) FROM mailbox"), 600);
}

/* Count messages from another program (the sqlite3 tool: a fork of this
 * process would inherit SQLite's in-memory lock bookkeeping). */
static long long
count_elsewhere(const char *path)
{
	char cmd[800], line[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sqlite3 -batch '%s' 'SELECT count(*) FROM messages'", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	if (fgets(line, sizeof(line), p) == NULL)
		line[0] = '\0';
	assert_int_equal(pclose(p), 0);
	return atoll(line);
}

/* Opening and closing more handles in one process (smtpd has several) must
 * not drop the POSIX locks of the others: else a reader in another process
 * takes the file for itself, deletes the WAL, and later commits of this
 * process go to a deleted file nobody else sees. */
static void
test_second_handle_keeps_locks(void **state)
{
	struct tmpstore *f = *state;
	struct store *b;
	struct store_delivery *d;
	char err[256];

	d = tmpstore_delivery("one\r\n", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(store_open(&b, f->path, err, sizeof(err)), 0);
	store_close(&b);
	assert_int_equal(count_elsewhere(f->path), 1);
	d = tmpstore_delivery("two\r\n", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(count_elsewhere(f->path), 2);
	assert_int_equal(access(f->path, F_OK), 0);
	{
		char wal[700];

		snprintf(wal, sizeof(wal), "%s-wal", f->path);
		assert_int_equal(access(wal, F_OK), 0);	/* still there while we are open */
	}
}

/* Four processes open one new file at the same moment: the schema is
 * created once, every open succeeds, every account lands. */
static void
test_concurrent_first_open(void **state)
{
	struct tmpstore *f = *state;
	const char *dir = f->dir;
	char path[600], sql[128];
	pid_t pids[4];
	int k, status;

	snprintf(path, sizeof(path), "%s/new.db", dir);
	for (k = 0; k < 4; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			struct store *st;
			char err[256], name[16];

			if (store_open(&st, path, err, sizeof(err)) != 0) {
				fprintf(stderr, "child %d: %s\n", k, err);
				_exit(10);
			}
			snprintf(name, sizeof(name), "user%d", k);
			if (store_user_add(st, name, "h") != 0)
				_exit(11);
			store_close(&st);
			_exit(0);
		}
	}
	for (k = 0; k < 4; k++) {
		assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(tmpstore_sqlite_int(path, "SELECT count(*) FROM accounts"), 4);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM correio_meta WHERE key = 'format'");
	assert_int_equal(tmpstore_sqlite_int(path, sql), 1);
}

/* A POP3-like reader lists and reads while a writer delivers: readers
 * (SQLite's in WAL mode) never wait for the writer and never see half a
 * delivery. */
static void
test_reader_during_writes(void **state)
{
	struct tmpstore *f = *state;
	pid_t pid;
	int status, i, rounds = 0;
	struct store_msg *m;
	size_t n, got, last = 0;
	char buf[64], err[256];

	/* no store handle open across fork(): the child would share SQLite's
	 * in-memory lock bookkeeping, or libpq's connection */
	store_close(&f->st);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *st;
		char err[256];

		if (store_open(&st, f->path, err, sizeof(err)) != 0)
			_exit(10);
		for (i = 0; i < 300; i++) {
			struct store_delivery *d = store_delivery_new("", "w");

			/* both entries or none: the reader checks */
			if (store_delivery_add_rcpt(d, "ana") != 0 ||
			    store_delivery_add_rcpt(d, "bob") != 0 ||
			    store_delivery_body(d, "0123456789\r\n", 12) != 0 ||
			    store_delivery_commit(st, d) != 0)
				_exit(11);
			store_delivery_free(&d);
		}
		store_close(&st);
		_exit(0);
	}
	assert_int_equal(store_open(&f->st, f->path, err, sizeof(err)), 0);
	do {
		size_t nb;

		assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
		assert_true(n >= last);		/* never goes back */
		last = n;
		for (i = 0; i < (int)n; i++) {
			assert_int_equal(store_msg_read(f->st, m[i].entry_id, 0, buf, sizeof(buf), &got), 0);
			assert_int_equal(got, 12);
		}
		free(m);
		/* every message ana has, bob has too (same transaction) */
		assert_int_equal(store_mailbox_list(f->st, "bob", &m, &nb), 0);
		free(m);
		assert_true(nb >= n);
		rounds++;
	} while (waitpid(pid, &status, WNOHANG) == 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM mailbox"), 600);
	assert_true(rounds > 0);
}

/* ---- mailboxes ---------------------------------------------------------------- */

static void
test_mailbox_read_expunge(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *d;
	struct store_msg *m, *m2;
	size_t n, n2, got, i, len = 700000;	/* PostgreSQL: three chunks */
	char *big = malloc(len), *back = malloc(len + 1);
	int64_t ids[2];

	assert_non_null(big);
	assert_non_null(back);
	for (i = 0; i < len; i++)
		big[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
	d = store_delivery_new("", "s");
	assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
	assert_int_equal(store_delivery_add_rcpt(d, "bob"), 0);
	for (i = 0; i < len; i += 1000)	/* appended in pieces */
		assert_int_equal(store_delivery_body(d, big + i, 1000), 0);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	d = tmpstore_delivery("second\r\n", "ana", NULL);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	d = tmpstore_delivery("", "ana", NULL);	/* an empty message is stored too */
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);

	assert_int_equal(store_mailbox_list(f->st, "ANA", &m, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].size, (int64_t)len);
	assert_int_equal(m[1].size, 8);
	assert_int_equal(m[2].size, 0);
	assert_string_not_equal(m[0].uidl, m[1].uidl);
	/* chunked reads of several sizes give back the exact octets */
	{
		size_t chunks[] = { 1, 4096, 65536, 1 << 20, 262143 };

		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			size_t total = 0;

			if (chunks[c] == 1) {	/* 1-byte reads of the first 3000 only */
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
	/* a read at an odd offset, across a PostgreSQL chunk's end */
	assert_int_equal(store_msg_read(f->st, m[0].entry_id, 262140, back, 10, &got), 0);
	assert_int_equal(got, 10);
	assert_memory_equal(back, big + 262140, 10);
	assert_int_equal(store_msg_read(f->st, m[2].entry_id, 0, back, 10, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(store_msg_read(f->st, m[0].entry_id, (int64_t)len + 5, back, 10, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(store_msg_read(f->st, 999999, 0, back, 10, &got), STORE_NOTFOUND);

	/* bob may not expunge ana's entries */
	ids[0] = m[1].entry_id;
	assert_int_equal(store_mailbox_expunge(f->st, "bob", ids, 1), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m2, &n2), 0);
	assert_int_equal(n2, 3);
	free(m2);

	/* ana expunges the big one (still bob's) and the second (only hers) */
	ids[0] = m[0].entry_id;
	ids[1] = m[1].entry_id;
	assert_int_equal(store_mailbox_expunge(f->st, "ana", ids, 2), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m2, &n2), 0);
	assert_int_equal(n2, 1);
	assert_int_equal(m2[0].entry_id, m[2].entry_id);
	free(m2);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 2);	/* big + empty */
	assert_int_equal(store_mailbox_list(f->st, "bob", &m2, &n2), 0);
	assert_int_equal(n2, 1);
	assert_int_equal(store_msg_read(f->st, m2[0].entry_id, 0, back, len, &got), 0);
	assert_int_equal(got, len);
	assert_memory_equal(back, big, len);
	ids[0] = m2[0].entry_id;
	free(m2);
	assert_int_equal(store_mailbox_expunge(f->st, "bob", ids, 1), 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 1);
	/* a user delete takes its messages along */
	assert_int_equal(store_user_del(f->st, "ana"), 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 0);
	free(m);
	free(big);
	free(back);
}

/* Several messages streamed at once on one handle (more than the blobs it
 * keeps open), other calls and other writers in between: every octet right. */
static void
test_interleaved_reads(void **state)
{
	struct tmpstore *f = *state;
	enum { NMSG = 6, LEN = 600000 };	/* PostgreSQL: three chunks each */
	struct store_msg *m;
	size_t n, got, i;
	int64_t off[NMSG] = { 0 };
	char *body[NMSG], chunk[7000];
	int k, done_count = 0;
	struct store *other;
	char err[256];

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
	assert_int_equal(store_open(&other, f->path, err, sizeof(err)), 0);
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
		/* writes on this handle and on another one in between */
		if (round % 5 == 1)
			assert_int_equal(store_mailbox_lock(f->st, "ana", "s1", 1800), 0);
		if (round % 7 == 3) {
			struct store_delivery *d = tmpstore_delivery("more\r\n", "bob", NULL);

			assert_int_equal(store_delivery_commit(other, d), 0);
			store_delivery_free(&d);
		}
	}
	/* an entry newer than the snapshot of the blobs still open */
	assert_int_equal(store_msg_read(f->st, m[0].entry_id, 0, chunk, 10, &got), 0);
	{
		struct store_delivery *d = tmpstore_delivery("fresh\r\n", "ana", NULL);
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
	/* store_read_done() releases; reading again reopens */
	assert_int_equal(store_msg_read(f->st, m[2].entry_id, 0, chunk, 10, &got), 0);
	store_read_done(f->st);
	store_read_done(f->st);
	assert_int_equal(store_msg_read(f->st, m[2].entry_id, 10, chunk, 10, &got), 0);
	assert_int_equal(got, 10);
	assert_memory_equal(chunk, body[2] + 10, 10);
	/* expunge on the same handle while a blob is open */
	assert_int_equal(store_msg_read(f->st, m[1].entry_id, 0, chunk, 10, &got), 0);
	assert_int_equal(store_mailbox_expunge(f->st, "ana", &m[1].entry_id, 1), 0);
	assert_int_equal(store_msg_read(f->st, m[1].entry_id, 10, chunk, 10, &got), STORE_NOTFOUND);
	store_close(&other);
	for (k = 0; k < NMSG; k++)
		free(body[k]);
	free(m);
}

/* Reading a large message chunk by chunk costs time linear in its size
 * (an open blob remembers where it is; reopening per chunk walks the whole
 * overflow chain each time: ~16 s here instead of ~0.1 s). */
static void
test_large_read_linear(void **state)
{
	struct tmpstore *f = *state;
	size_t len = 32u << 20, got, total = 0;
	struct store_delivery *d = store_delivery_new("", "s");
	struct store_msg *m;
	struct timespec t0, t1;
	char *big = malloc(len), chunk[16384];
	double secs;
	size_t n;

	assert_non_null(big);
	memset(big, 'x', len);
	assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
	assert_int_equal(store_delivery_body(d, big, len), 0);
	free(big);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(store_mailbox_list(f->st, "ana", &m, &n), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		assert_int_equal(store_msg_read(f->st, m[0].entry_id, (int64_t)total, chunk,
		    sizeof(chunk), &got), 0);
		total += got;
	} while (got > 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(total, len);
	free(m);
	if (secs > 5.0)
		fail_msg("reading 32 MiB in 16 KiB chunks took %.2f s", secs);
}

static void
test_locks(void **state)
{
	struct tmpstore *f = *state;

	assert_int_equal(store_mailbox_lock(f->st, "ana", "s1", 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s1", 1800), 0);	/* re-entrant */
	assert_int_equal(store_mailbox_lock(f->st, "ANA", "s2", 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_lock(f->st, "bob", "s2", 1800), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s1"), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s2"), STORE_LOCKED);
	/* unlock by someone else does nothing */
	assert_int_equal(store_mailbox_unlock(f->st, "ana", "s2"), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s3", 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", "s1"), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s3", 1800), 0);

	/* a crashed session's lock: age it, then take it over */
	tmpstore_sql_exec(f, "UPDATE locks SET taken = taken - 4000 WHERE account = 'ana'");
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s4", 5000), STORE_LOCKED);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s4", 1800), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s3"), STORE_LOCKED);	/* lost it */
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s4"), 0);
}

/* The lock's writes run with synchronous=NORMAL (store_sqlite_mailbox.c);
 * whatever they return, the handle is FULL again after them, so that the
 * next delivery or expunge is on disk before it returns. */
static int
handle_synchronous(struct store *st)
{
	sqlite3_stmt *s;
	int v;

	assert_int_equal(sqlite3_prepare_v2(((struct store_sqlite *)st)->db,
	    "PRAGMA synchronous", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* ---- snapshots ------------------------------------------------------------- */

/* SQLite: the reads between begin and end see the store as it was at the
 * first of them; a nested begin begins nothing. PostgreSQL: no snapshot,
 * each lookup sees the newest commit. */
static void
test_snapshot(void **state)
{
	struct tmpstore *f = *state;
	struct store *other = NULL;
	char err[256];
	bool snap, sqlite = tmpstore_backend() == TMPSTORE_SQLITE;

	assert_int_equal(store_open(&other, f->path, err, sizeof(err)), 0);
	snap = store_snapshot_begin(f->st);
	assert_int_equal(snap, sqlite);
	assert_false(store_snapshot_begin(f->st));	/* inside one already, or none */
	assert_int_equal(store_domain_lookup(f->st, "lab.test"), 1);
	assert_int_equal(store_domain_add(other, "new.test"), 0);	/* a commit meanwhile */
	assert_int_equal(store_domain_lookup(f->st, "new.test"), sqlite ? 0 : 1);
	store_snapshot_end(f->st, snap);
	assert_int_equal(store_domain_lookup(f->st, "new.test"), 1);
	store_close(&other);
}

/* ---- checkpoints elsewhere (store_defer_checkpoints) ----------------------- */

static void
count_due(void *arg)
{
	(*(int *)arg)++;
}

static long long
file_size(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return (long long)sb.st_size;
}

/*
 * A handle whose checkpoints run elsewhere never copies its log into the
 * database before STORE_CKPT_PAGES_MAX pages, asks (due) past
 * STORE_CKPT_PAGES, and past the maximum copies it itself so that the log
 * starts over: its file stops growing. store_checkpoint() on another handle
 * copies it. The store is made with 512-octet pages, so that the maximum
 * is 16 MiB of log, not 128. (The WAL file keeps its length when the log
 * starts over: a log never started over is one that grew past 1,000 pages.)
 */
static void
test_checkpoints_deferred(void **state)
{
	struct tmpstore *f = *state;
	const long long frame = 24 + 512;	/* a WAL frame: its header, a page */
	char wal[700], *body;
	struct store *other = NULL;
	const size_t size = 64 * 1024;
	int due = 0, i, n;
	char err[256];
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA page_size = 512; PRAGMA journal_mode = WAL;",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&f->st, f->path, err, sizeof(err)), 0);
	assert_int_equal(store_domain_add(f->st, "lab.test"), 0);
	assert_int_equal(store_user_add(f->st, "ana", "x"), 0);
	assert_true(store_defer_checkpoints(f->st, count_due, &due));
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_non_null(body = malloc(size + 1));
	memset(body, 'x', size);
	for (i = 0; i < (int)size; i += 64)
		memcpy(body + i + 62, "\r\n", 2);
	body[size] = '\0';

	/* 3,000 pages of log: SQLite alone would have started it over at
	 * 1,000, and its file would have stopped growing there. */
	for (n = 0; file_size(wal) < 3 * STORE_CKPT_PAGES * frame; n++) {
		struct store_delivery *d = tmpstore_delivery(body, "ana", NULL);

		assert_int_equal(store_delivery_commit(f->st, d), 0);
		store_delivery_free(&d);
		assert_true(n < 100);
	}
	assert_true(due >= n / 2);	/* every commit past the first 1,000 pages */
	assert_true(file_size(f->path) < (long long)size);	/* nothing copied yet */

	/* Another handle copies, while the writer's handle stays open. */
	assert_int_equal(store_open(&other, f->path, err, sizeof(err)), 0);
	assert_int_equal(store_checkpoint(other), 0);
	assert_true(file_size(f->path) >= n * (long long)size);

	/* Nobody copies: the log grows to the maximum, no further. */
	for (i = 0; i < 2 * STORE_CKPT_PAGES_MAX * 512 / (int)size; i++) {
		struct store_delivery *d = tmpstore_delivery(body, "ana", NULL);

		assert_int_equal(store_delivery_commit(f->st, d), 0);
		store_delivery_free(&d);
	}
	assert_true(file_size(wal) >= STORE_CKPT_PAGES_MAX * frame);
	assert_true(file_size(wal) < (STORE_CKPT_PAGES_MAX + 2 * (long long)size / 512) * frame);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM mailbox"),
	    n + 2 * STORE_CKPT_PAGES_MAX * 512 / (int)size);
	store_close(&other);
	free(body);
}

static void
test_lock_durability_restored(void **state)
{
	struct tmpstore *f = *state;
	const int full = 2;

	assert_int_equal(handle_synchronous(f->st), full);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s1", 1800), 0);
	assert_int_equal(handle_synchronous(f->st), full);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "s2", 1800), STORE_LOCKED);
	assert_int_equal(handle_synchronous(f->st), full);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s1"), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", "s2"), STORE_LOCKED);
	assert_int_equal(handle_synchronous(f->st), full);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", "s1"), 0);
	assert_int_equal(handle_synchronous(f->st), full);
	/* and the lock rows were written all the same */
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM locks"), 0);
	assert_int_equal(store_mailbox_lock(f->st, "bob", "s3", 1800), 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM locks WHERE owner = 's3'"), 1);
}

/* A lock left by a process that no longer exists is taken over at once;
 * one held by a live process (this one) or another host is not. */
static void
test_lock_of_dead_process(void **state)
{
	struct tmpstore *f = *state;
	char dead[300], live[300], mine[300];
	pid_t pid;
	int status;

	if ((pid = fork()) == 0)
		_exit(0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);	/* reaped: the pid is gone */
	store_lock_owner(live, sizeof(live), "other-session");
	store_lock_owner(mine, sizeof(mine), "new-session");
	assert_non_null(strstr(live, "/other-session"));
	{
		char host[256];

		assert_int_equal(gethostname(host, sizeof(host)), 0);
		snprintf(dead, sizeof(dead), "%s/%ld/crashed", host, (long)pid);
	}
	assert_int_equal(store_mailbox_lock(f->st, "ana", dead, 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", mine, 1800), 0);	/* taken over */
	assert_int_equal(store_mailbox_touch(f->st, "ana", dead), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", mine), 0);

	assert_int_equal(store_mailbox_lock(f->st, "ana", live, 1800), 0);	/* alive: us */
	assert_int_equal(store_mailbox_lock(f->st, "ana", mine, 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", live), 0);

	assert_int_equal(store_mailbox_lock(f->st, "ana", "elsewhere.example/1/x", 1800), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", mine, 1800), STORE_LOCKED);
	assert_int_equal(store_mailbox_lock(f->st, "ana", "no-pid-here", 1800), STORE_LOCKED);
}

/* The wall clock steps a day forward under a live session of this process:
 * its lock is not taken over by age. One of this process that no session
 * holds (its unlock failed) is taken over at once, whatever its age. */
static void
test_lock_after_clock_step(void **state)
{
	struct tmpstore *f = *state;
	char live[300], other[300], ghost[300];

	store_lock_owner(live, sizeof(live), "live-session");
	store_lock_owner(other, sizeof(other), "second-session");
	store_lock_owner(ghost, sizeof(ghost), "ended-session");
	assert_int_equal(store_mailbox_lock(f->st, "ana", live, 60), 0);
	tmpstore_sql_exec(f, "UPDATE locks SET taken = taken - 86400");
	assert_int_equal(store_mailbox_lock(f->st, "ana", other, 60), STORE_LOCKED);
	assert_int_equal(store_mailbox_touch(f->st, "ana", live), 0);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", live), 0);
	assert_int_equal(store_mailbox_lock(f->st, "ana", other, 60), 0);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", other), 0);

	/* a lock row of this process that no session holds, taken just now */
	tmpstore_sql_exec(f, "DELETE FROM locks");
	tmpstore_lock_insert(f, "ana", ghost, 3600);
	assert_int_equal(store_mailbox_lock(f->st, "ana", other, 1800), 0);
	assert_int_equal(store_mailbox_touch(f->st, "ana", ghost), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(f->st, "ana", other), 0);
}

/* ---- queue ------------------------------------------------------------------- */

static void
test_queue(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *d = store_delivery_new("ana@lab.test", "s");
	struct store_queue_item *q;
	size_t n, got;
	char buf[64];
	int64_t now = (int64_t)time(NULL), mid;

	assert_int_equal(store_queue_max_id(f->st), 0);
	assert_int_equal(store_delivery_add_remote(d, "x@example.org"), 0);
	assert_int_equal(store_delivery_add_remote(d, "y@example.net"), 0);
	assert_int_equal(store_delivery_add_remote(d, "x@example.org"), 0);	/* dup */
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
	/* the clamp after a clock step back: only what lies beyond moves */
	assert_int_equal(store_queue_clamp(f->st, now + 600), 0);
	assert_int_equal(store_queue_clamp(f->st, now + 599), 1);
	assert_int_equal(tmpstore_sql_int(f, "SELECT max(next_attempt) FROM queue") - now, 599);
	assert_int_equal(store_queue_flush(f->st), 0);
	free(q);
	assert_int_equal(store_queue_list(f->st, now, &q, &n), 0);
	assert_int_equal(n, 2);

	/* deleting both items keeps the message: bob still has it */
	assert_int_equal(store_queue_delete(f->st, q[0].id), 0);
	assert_int_equal(store_queue_delete(f->st, q[0].id), STORE_NOTFOUND);
	assert_int_equal(store_queue_delete(f->st, q[1].id), 0);
	free(q);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 1);

	/* queue-only message goes with its last item */
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
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 1);
}

/* ---- queue claims (several runners on one store) ------------------------------ */

/* Queue n items (one message, n remote recipients), queued at time now. */
static void
queue_items(struct tmpstore *f, int n)
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
claimed_by(const struct tmpstore *f, const char *claimer)
{
	char sql[700];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM queue WHERE claimer = '%s'", claimer);
	return tmpstore_sql_int(f, sql);
}

/* Skip the running test when the store's backend has no queue claims yet
 * (store_queue_claim() says "not supported by this backend"). A claim of
 * nothing (an empty queue, a claimer nobody uses) changes no row. */
static void
need_queue_claims(struct tmpstore *f)
{
	struct store_queue_item *q;
	size_t n;

	if (store_queue_claim(f->st, 0, "probe.invalid/1/probe", 0, 1, &q, &n) == 0) {
		free(q);
		return;
	}
	if (strstr(store_errmsg(f->st), "not supported by this backend") == NULL)
		fail_msg("store_queue_claim: %s", store_errmsg(f->st));
	fprintf(stderr, "SKIPPED: the %s backend has no queue claims yet\n",
	    tmpstore_backend_name());
	skip();
}

/*
 * Claim, renew by the same claimer, skip another's live claim, take over
 * one that ran out; defer drops a claim, flush keeps them, release gives
 * them all back, delete takes the claim with the item.
 */
static void
test_queue_claim(void **state)
{
	struct tmpstore *f = *state;
	const char *b = "elsewhere.example/1/relay";	/* another host: its lease decides */
	struct store_queue_item *q;
	char a[STORE_OWNER_MAX], sql[700];
	int64_t now = (int64_t)time(NULL), mid;
	size_t n;

	need_queue_claims(f);
	store_lock_owner(a, sizeof(a), "relay");
	queue_items(f, 4);
	now = (int64_t)time(NULL);	/* the items are due from their commit's second */
	assert_int_equal(store_queue_claim(f->st, now, a, now + 300, 2, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_true(q[0].id < q[1].id);		/* oldest first */
	assert_string_equal(q[0].rcpt, "r0@example.org");
	assert_string_equal(q[0].sender, "ana@lab.test");
	mid = q[0].message_id;
	free(q);
	assert_int_equal(claimed_by(f, a), 2);
	snprintf(sql, sizeof(sql), "SELECT min(claimed_until) FROM queue WHERE claimer = '%s'", a);
	assert_int_equal(tmpstore_sql_int(f, sql) - now, 300);

	/* another runner gets the rest, never a's */
	assert_int_equal(store_queue_claim(f->st, now, b, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(q[0].rcpt, "r2@example.org");
	assert_string_equal(q[1].rcpt, "r3@example.org");
	free(q);
	assert_int_equal(store_queue_claim(f->st, now, b, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 2);		/* its own again, nothing of a's */
	free(q);

	/* a again: its own items back, renewed; b's live claims skipped */
	assert_int_equal(store_queue_claim(f->st, now + 10, a, now + 400, 10, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(q[0].rcpt, "r0@example.org");
	assert_string_equal(q[1].rcpt, "r1@example.org");
	free(q);
	assert_int_equal(tmpstore_sql_int(f, sql) - now, 400);
	/* every claim of a is renewed, also those beyond max */
	assert_int_equal(store_queue_claim(f->st, now + 20, a, now + 500, 1, &q, &n), 0);
	assert_int_equal(n, 1);
	free(q);
	assert_int_equal(tmpstore_sql_int(f, sql) - now, 500);
	assert_int_equal(claimed_by(f, a), 2);

	/* b's lease runs out (at now + 300): a takes its items over */
	assert_int_equal(store_queue_claim(f->st, now + 299, a, now + 599, 10, &q, &n), 0);
	assert_int_equal(n, 2);
	free(q);
	assert_int_equal(store_queue_claim(f->st, now + 300, a, now + 600, 10, &q, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(q[3].rcpt, "r3@example.org");
	free(q);
	assert_int_equal(claimed_by(f, b), 0);
	assert_int_equal(claimed_by(f, a), 4);

	/* not yet due: not claimed */
	assert_int_equal(store_queue_release(f->st, a), 0);
	assert_int_equal(store_queue_claim(f->st, now - 1, b, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 0);
	assert_null(q);

	/* defer drops the claim; flush keeps them */
	assert_int_equal(store_queue_claim(f->st, now, a, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(store_queue_defer(f->st, q[0].id, now + 60, "451 later"), 0);
	assert_int_equal(claimed_by(f, a), 3);
	assert_int_equal(store_queue_flush(f->st), 0);	/* q[0] due again, unclaimed */
	assert_int_equal(claimed_by(f, a), 3);
	free(q);
	assert_int_equal(store_queue_claim(f->st, now, b, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].rcpt, "r0@example.org");
	assert_int_equal(q[0].attempts, 1);
	assert_string_equal(q[0].last_error, "451 later");

	/* delete takes the claim with the item; release gives back the rest */
	assert_int_equal(store_queue_delete(f->st, q[0].id), 0);
	free(q);
	assert_int_equal(claimed_by(f, b), 0);
	assert_int_equal(store_queue_release(f->st, a), 0);
	assert_int_equal(claimed_by(f, a), 0);
	assert_int_equal(store_queue_release(f->st, a), 0);	/* nothing left: fine */
	assert_int_equal(store_queue_claim(f->st, now, b, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(q[0].message_id, mid);
	free(q);
}

/*
 * A runner of this host that is gone (killed: its pid no longer exists) has
 * its claims taken over at once, before its lease ends; a live process of
 * this host (our parent) and another tag of this very process keep theirs.
 */
static void
test_queue_claim_dead_runner(void **state)
{
	struct tmpstore *f = *state;
	struct store_queue_item *q;
	char a[STORE_OWNER_MAX], host[256], dead[300], live[300], self[STORE_OWNER_MAX];
	char sql[1200];
	int64_t now = (int64_t)time(NULL);
	pid_t pid;
	size_t n;
	int status;

	if ((pid = fork()) == 0)
		_exit(0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);	/* reaped: the pid is gone */
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	snprintf(dead, sizeof(dead), "%s/%ld/relay", host, (long)pid);
	snprintf(live, sizeof(live), "%s/%ld/relay", host, (long)getppid());
	store_lock_owner(a, sizeof(a), "relay");
	store_lock_owner(self, sizeof(self), "other-tag");
	assert_true(store_owner_gone(dead));
	assert_false(store_owner_gone(live));
	assert_false(store_owner_gone(a));
	assert_false(store_owner_gone("elsewhere.example/1/relay"));
	assert_false(store_owner_gone("no-pid-here"));

	need_queue_claims(f);
	queue_items(f, 4);
	now = (int64_t)time(NULL);	/* the items are due from their commit's second */
	snprintf(sql, sizeof(sql), "UPDATE queue SET claimed_until = %lld,"
	    " claimer = CASE rcpt WHEN 'r0@example.org' THEN '%s' WHEN 'r1@example.org' THEN '%s'"
	    " WHEN 'r2@example.org' THEN '%s' ELSE '' END",
	    (long long)now + 3600, dead, live, self);
	tmpstore_sql_exec(f, sql);
	assert_int_equal(store_queue_claim(f->st, now, a, now + 300, 10, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(q[0].rcpt, "r0@example.org");	/* the dead runner's */
	assert_string_equal(q[1].rcpt, "r3@example.org");	/* free */
	free(q);
	assert_int_equal(claimed_by(f, dead), 0);
	assert_int_equal(claimed_by(f, live), 1);
	assert_int_equal(claimed_by(f, self), 1);
}

/* Two processes claim from one store file at once, each delivering (deleting)
 * what it claimed: every item is claimed by exactly one of them. */
static void
test_queue_claim_two_processes(void **state)
{
	struct tmpstore *f = *state;
	enum { ITEMS = 300, BATCH = 7 };
	char out[2][700];
	pid_t pids[2];
	int k, status, seen[ITEMS + 1] = { 0 }, total = 0, each[2] = { 0 }, go[2];
	long long first;

	need_queue_claims(f);
	queue_items(f, ITEMS);
	first = tmpstore_sql_int(f, "SELECT min(id) FROM queue");
	store_close(&f->st);	/* no store handle across fork() */
	assert_int_equal(pipe(go), 0);	/* both start when it closes */
	for (k = 0; k < 2; k++) {
		snprintf(out[k], sizeof(out[k]), "%s/claimed-%d", f->dir, k);
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			struct store *st;
			struct store_queue_item *q;
			char err[256], me[STORE_OWNER_MAX];
			FILE *fp = fopen(out[k], "w");
			size_t n, i;

			store_lock_owner(me, sizeof(me), "relay");
			close(go[1]);
			if (fp == NULL || store_open(&st, f->path, err, sizeof(err)) != 0 ||
			    read(go[0], err, 1) != 0)
				_exit(10);
			for (;;) {
				int64_t now = (int64_t)time(NULL);

				if (store_queue_claim(st, now, me, now + 300, BATCH, &q, &n) != 0) {
					fprintf(stderr, "claimer %d: %s\n", k, store_errmsg(st));
					_exit(11);
				}
				if (n == 0)
					break;
				for (i = 0; i < n; i++) {	/* "deliver" it, then remove it */
					fprintf(fp, "%lld\n", (long long)q[i].id);
					usleep(200);
					if (store_queue_delete(st, q[i].id) == -1)
						_exit(12);	/* STORE_NOTFOUND: counted twice below */
				}
				free(q);
			}
			fclose(fp);
			store_close(&st);
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);
	for (k = 0; k < 2; k++) {
		FILE *fp;
		long long id;

		assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_non_null(fp = fopen(out[k], "r"));
		while (fscanf(fp, "%lld", &id) == 1) {
			assert_true(id >= first && id < first + ITEMS);
			seen[id - first]++;
			each[k]++;
			total++;
		}
		fclose(fp);
	}
	assert_true(each[0] > 0 && each[1] > 0);	/* they did run side by side */
	assert_int_equal(total, ITEMS);
	for (k = 0; k < ITEMS; k++)
		assert_int_equal(seen[k], 1);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM queue"), 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 0);
}

/* A store of version 5 (before claims) with a queued item: it migrates, and
 * the item is unclaimed and claimable. */
static void
test_migrate_queue_claims_v5(void **state)
{
	struct tmpstore *f = *state;
	const char *dir = f->dir;
	char path[600], err[256], me[STORE_OWNER_MAX];
	struct store_queue_item *q;
	struct store *st = NULL;
	sqlite3 *db;
	size_t n;
	int v;

	snprintf(path, sizeof(path), "%s/v5.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (v = 0; v < 5; v++)
		assert_int_equal(sqlite3_exec(db, store_schema_migrations[v], NULL, NULL, NULL),
		    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 5;"
	    "INSERT INTO messages(id, body, size, sender, created) VALUES (1, 'x', 1, 'a@b', 1);"
	    "INSERT INTO queue(message, sender, rcpt, created, next_attempt)"
	    "  VALUES (1, 'a@b', 'c@example.org', 1, 1);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_open(&st, path, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(st), store_schema_latest());
	store_lock_owner(me, sizeof(me), "relay");
	assert_int_equal(store_queue_claim(st, 100, me, 400, 10, &q, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].rcpt, "c@example.org");
	free(q);
	store_close(&st);
	assert_int_equal(tmpstore_sqlite_int(path, "SELECT claimed_until FROM queue"), 400);
}

/* A backend without the claim ops: the front refuses, it never calls a
 * NULL op. The test's one look behind store.h: a copy of the handle's ops
 * without them. */
static void
test_queue_claim_unsupported(void **state)
{
	struct tmpstore *f = *state;
	struct store_ops ops = *f->st->ops;
	const struct store_ops *real = f->st->ops;
	struct store_queue_item *q = (void *)1;
	size_t n = 1;

	ops.queue_claim = NULL;
	ops.queue_release = NULL;
	f->st->ops = &ops;
	assert_int_equal(store_queue_claim(f->st, 0, "h/1/relay", 300, 10, &q, &n), -1);
	assert_null(q);
	assert_int_equal(n, 0);
	assert_non_null(strstr(store_errmsg(f->st), "not supported by this backend"));
	assert_int_equal(store_queue_release(f->st, "h/1/relay"), -1);
	assert_non_null(strstr(store_errmsg(f->st), "not supported by this backend"));
	f->st->ops = real;
}

/* ---- transcripts ---------------------------------------------------------------- */

static void
test_transcripts(void **state)
{
	struct tmpstore *f = *state;
	char out[1024] = "";
	const char *a = "T1 S: 220 hi\nT2 C: EHLO x\n", *b = "T3 S: 250 ok\nT4 C: QUIT";

	assert_int_equal(store_transcript_get(f->st, "abc", collect, out), STORE_NOTFOUND);
	assert_int_equal(store_transcript_append(f->st, "abc", "smtp", a, strlen(a)), 0);
	assert_int_equal(store_transcript_append(f->st, "abc", "smtp", b, strlen(b)), 0);
	assert_int_equal(store_transcript_append(f->st, "other", "pop3", "X\n", 2), 0);
	assert_int_equal(store_transcript_append(f->st, "abc", "smtp", "", 0), 0);
	assert_int_equal(store_transcript_get(f->st, "abc", collect, out), 0);
	assert_string_equal(out, "T1 S: 220 hi=;T2 C: EHLO x=;T3 S: 250 ok=;T4 C: QUIT=;");
	/* a row per append, holding its lines, in the session log */
	assert_int_equal(tmpstore_log_sql_int(f, "SELECT count(*) FROM transcripts"), 3);
	/* SQLite: the session log has a file of its own, not the store's */
	if (f->backend == TMPSTORE_SQLITE)
		assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM sqlite_master"
		    " WHERE name IN ('transcripts', 'sessions', 'session_accounts')"), 0);
}

/* The session log: rows, accounts, live lines, filters, newest first. */
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
	struct tmpstore *f = *state;
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
	assert_int_equal(store_session_involves(f->st, "p1", "ana"), 1);	/* logged in */
	assert_int_equal(store_session_involves(f->st, "p1", "ANA"), 1);
	assert_int_equal(store_transcript_get(f->st, "s1", collect, lines), 0);
	assert_string_equal(lines, "C: HELO x=;S: 250 ok=;C: E que tal ketchup?=;");

	/* A later batch: more lines of s1 (opened in the first) go after its
	 * last, and an outbound session's first record, its lines, makes its row. */
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

/* A batch of many sessions, interleaved (more than the gathering's first
 * table holds): each session's lines come back whole and in order, its
 * events land on its own row. */
static void
test_session_log_many(void **state)
{
	struct tmpstore *f = *state;
	enum { NSESS = 40 };
	struct store_sesslog_rec r[4 * NSESS];
	char ids[NSESS][8], texts[NSESS][2][24], want[1024], lines[1024];
	struct store_session_info si;
	size_t n = 0;
	int i;

	for (i = 0; i < NSESS; i++) {
		snprintf(ids[i], sizeof(ids[i]), "m%d", i);
		snprintf(texts[i][0], sizeof(texts[i][0]), "C: HELO h%d", i);
		snprintf(texts[i][1], sizeof(texts[i][1]), "S: 250 s%d\n", i);
		r[n++] = (struct store_sesslog_rec){ STORE_SESSLOG_OPEN, 300 + i, ids[i], "smtp",
		    "127.0.0.3", 9 };
	}
	for (i = 0; i < NSESS; i++)
		r[n++] = (struct store_sesslog_rec){ STORE_SESSLOG_LINES, 400, ids[i], "smtp",
		    texts[i][0], strlen(texts[i][0]) };
	for (i = NSESS - 1; i >= 0; i--) {
		r[n++] = (struct store_sesslog_rec){ STORE_SESSLOG_LINES, 401, ids[i], "smtp",
		    texts[i][1], strlen(texts[i][1]) };
		r[n++] = (struct store_sesslog_rec){ STORE_SESSLOG_CLOSE, 500 + i, ids[i], "smtp",
		    "quit", 4 };
	}
	assert_int_equal(store_log_ready(f->st), 0);
	assert_int_equal(store_sesslog_apply(f->st, r, n), 0);
	for (i = 0; i < NSESS; i++) {
		snprintf(want, sizeof(want), "C: HELO h%d=;S: 250 s%d=;", i, i);
		lines[0] = '\0';
		assert_int_equal(store_transcript_get(f->st, ids[i], collect, lines), 0);
		assert_string_equal(lines, want);
		assert_int_equal(store_session_get(f->st, ids[i], &si), 0);
		assert_int_equal(si.started, 300 + i);
		assert_int_equal(si.ended, 500 + i);
		assert_string_equal(si.outcome, "quit");
	}
}

int
main(void)
{
	/* the store's contracts: every backend */
	const struct CMUnitTest both[] = {
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domains_aliases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_several, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_during_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_read_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_read_linear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_of_dead_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_after_clock_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_dead_runner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_two_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_claim_unsupported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transcripts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_log_many, setup, teardown),
	};
	/* the SQLite file itself */
	const struct CMUnitTest sqlite_only[] = {
		cmocka_unit_test_setup_teardown(test_new_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_page_size_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_zero, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_aliases_v1, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_session_log_v4, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_queue_claims_v5, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_refused, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_session_log_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_second_handle_keeps_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_moved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_durability_restored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_deferred, setup_empty, teardown),
	};
	int failed;

	if (tmpstore_backend() == TMPSTORE_PG)
		return cmocka_run_group_tests_name("store on postgresql", both, NULL, NULL);
	failed = cmocka_run_group_tests_name("store on sqlite", both, NULL, NULL);
	failed += cmocka_run_group_tests_name("the sqlite file", sqlite_only, NULL, NULL);
	return failed;
}
