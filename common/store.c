/*
 * store.c - the SQLite store's core: the table of every SQL statement, open
 * (pragmas, the check that a file is ours, migrations), close, and the
 * helpers the other store files run their statements through
 * (store_internal.h). The areas live beside it: store_account.c (accounts,
 * domains, aliases), store_delivery.c (delivery and group commit),
 * store_mailbox.c (POP3 mailboxes, locks, message bodies), store_queue.c
 * (the outbound queue) and store_transcript.c.
 *
 * Every statement lives in one enum -> SQL table, is prepared once at
 * store_open(), reset and its bindings cleared after every use, and
 * finalized at store_close(). Pragmas: WAL, foreign_keys=ON,
 * synchronous=FULL (a commit is on disk before it returns), busy_timeout so
 * that smtpd, pop3d and mailcli share one file. Schema migrations
 * (store_schema.c) are applied forward by PRAGMA user_version on open.
 * Never: SQL outside the store files, plaintext passwords, partial deliveries.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/statvfs.h>

#include <sqlite3.h>

#include "store_internal.h"

#define STORE_BUSY_TIMEOUT_MS	10000	/* wait this long for another writer */
#define STORE_FORMAT		"correio-store"
#define STORE_PRAGMA_MAX	64	/* "PRAGMA user_version = N" */
#define STORE_MODE_MAX		16	/* "PRAGMA journal_mode" answer, with its NUL */
#define STORE_PATH_MAX		4096	/* the reserve's path */

const char *const store_sql[ST_COUNT] = {
	[ST_BEGIN]		= "BEGIN IMMEDIATE",
	[ST_COMMIT]		= "COMMIT",
	[ST_ROLLBACK]		= "ROLLBACK",
	[ST_SAVEPOINT]		= "SAVEPOINT delivery",
	[ST_RELEASE]		= "RELEASE delivery",
	[ST_ROLLBACK_TO]	= "ROLLBACK TO delivery",

	[ST_USER_ADD]		= "INSERT INTO accounts(name, hash, created) VALUES (?1, ?2, ?3)",
	[ST_USER_DEL]		= "DELETE FROM accounts WHERE name = ?1",
	[ST_USER_SET_HASH]	= "UPDATE accounts SET hash = ?2 WHERE name = ?1",
	[ST_USER_GET_HASH]	= "SELECT hash FROM accounts WHERE name = ?1",
	[ST_USER_LIST]		= "SELECT name, strftime('%Y-%m-%dT%H:%M:%SZ', created, 'unixepoch')"
				  " FROM accounts ORDER BY name",
	[ST_USER_NAME]		= "SELECT name FROM accounts WHERE name = ?1",
	[ST_LOCK_DEL_ACCOUNT]	= "DELETE FROM locks WHERE account = ?1",
	[ST_ORPHANS_DEL]	= "DELETE FROM messages WHERE"
				  " NOT EXISTS (SELECT 1 FROM mailbox WHERE mailbox.message = messages.id)"
				  " AND NOT EXISTS (SELECT 1 FROM queue WHERE queue.message = messages.id)",

	[ST_DOMAIN_ADD]		= "INSERT INTO domains(name, created) VALUES (lower(?1), ?2)",
	[ST_DOMAIN_DEL]		= "DELETE FROM domains WHERE name = ?1",
	[ST_DOMAIN_LIST]	= "SELECT name FROM domains ORDER BY name",
	[ST_DOMAIN_GET]		= "SELECT 1 FROM domains WHERE name = ?1",
	[ST_DOMAIN_ALIASES_DEL]	= "DELETE FROM aliases WHERE instr(address, '@') > 0"
				  " AND lower(substr(address, instr(address, '@') + 1)) = lower(?1)",

	[ST_ALIAS_ADD]		= "INSERT INTO aliases(address, account, created)"
				  " SELECT lower(?1), id, ?3 FROM accounts WHERE name = ?2",
	[ST_ALIAS_DEL]		= "DELETE FROM aliases WHERE address = ?1",
	[ST_ALIAS_DEL_ONE]	= "DELETE FROM aliases WHERE address = ?1"
				  " AND account = (SELECT id FROM accounts WHERE name = ?2)",
	[ST_ALIAS_LIST]		= "SELECT al.address, a.name FROM aliases al"
				  " JOIN accounts a ON a.id = al.account ORDER BY al.address, a.name",
	[ST_FIRST_ACCOUNT]	= "SELECT name FROM accounts WHERE ?1 = ?1 ORDER BY id LIMIT 1",
	[ST_ALIAS_GET]		= "SELECT a.name FROM aliases al JOIN accounts a ON a.id = al.account"
				  " WHERE al.address = ?1 ORDER BY a.name",

	[ST_MSG_ADD]		= "INSERT INTO messages(body, size, sender, session, created)"
				  " VALUES (?1, ?2, ?3, ?4, ?5)",
	/* An unknown account gives a NULL account: NOT NULL constraint failure. */
	[ST_ENTRY_ADD]		= "INSERT INTO mailbox(account, message, uidl, size, arrived)"
				  " VALUES ((SELECT id FROM accounts WHERE name = ?1), ?2,"
				  " printf('%d.%s', ?2, lower(hex(randomblob(5)))), ?3, ?4)",
	[ST_QUEUE_ADD]		= "INSERT INTO queue(message, sender, rcpt, created, next_attempt)"
				  " VALUES (?1, ?2, ?3, ?4, ?4)",

	/* Take the lock when free, already ours, or older than the ttl. */
	[ST_LOCK_TAKE]		= "INSERT INTO locks(account, owner, taken) VALUES (?1, ?2, ?3)"
				  " ON CONFLICT(account) DO UPDATE SET owner = excluded.owner,"
				  " taken = excluded.taken"
				  " WHERE locks.owner = excluded.owner OR locks.taken < ?4",
	[ST_LOCK_TOUCH]		= "UPDATE locks SET taken = ?3 WHERE account = ?1 AND owner = ?2",
	[ST_LOCK_DEL]		= "DELETE FROM locks WHERE account = ?1 AND owner = ?2",
	[ST_LOCK_OWNER]		= "SELECT owner FROM locks WHERE account = ?1",
	[ST_MAILBOX_LIST]	= "SELECT m.id, m.size, m.arrived, m.uidl FROM mailbox m"
				  " JOIN accounts a ON a.id = m.account"
				  " WHERE a.name = ?1 AND m.deleted = 0 ORDER BY m.id",
	[ST_ENTRY_MESSAGE]	= "SELECT message FROM mailbox WHERE id = ?1",
	[ST_ENTRY_DEL]		= "DELETE FROM mailbox WHERE id = ?1"
				  " AND account = (SELECT id FROM accounts WHERE name = ?2)"
				  " RETURNING message",
	[ST_MSG_DEL_IF_ORPHAN]	= "DELETE FROM messages WHERE id = ?1"
				  " AND NOT EXISTS (SELECT 1 FROM mailbox WHERE message = ?1)"
				  " AND NOT EXISTS (SELECT 1 FROM queue WHERE message = ?1)",
	[ST_MSG_SIZE]		= "SELECT size FROM messages WHERE id = ?1",

	[ST_QUEUE_LIST]		= "SELECT id, message, sender, rcpt, created, next_attempt, attempts,"
				  " last_error FROM queue WHERE ?1 < 0 OR next_attempt <= ?1"
				  " ORDER BY next_attempt, id",
	[ST_QUEUE_DEFER]	= "UPDATE queue SET attempts = attempts + 1, next_attempt = ?2,"
				  " last_error = ?3 WHERE id = ?1",
	[ST_QUEUE_GET]		= "SELECT message FROM queue WHERE id = ?1",
	[ST_QUEUE_DEL]		= "DELETE FROM queue WHERE id = ?1",
	[ST_QUEUE_FLUSH]	= "UPDATE queue SET next_attempt = 0",
	[ST_QUEUE_CLAMP]	= "UPDATE queue SET next_attempt = ?1 WHERE next_attempt > ?1",
	[ST_QUEUE_MAX_ID]	= "SELECT coalesce(max(id), 0) FROM queue",

	[ST_TRANSCRIPT_SEQ]	= "SELECT coalesce(max(seq), 0) FROM transcripts WHERE session_id = ?1",
	[ST_TRANSCRIPT_ADD]	= "INSERT INTO transcripts(session_id, seq, proto, line, time)"
				  " VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_TRANSCRIPT_GET]	= "SELECT line FROM transcripts WHERE session_id = ?1 ORDER BY seq",

	[ST_USER_SET_TEACHER]	= "UPDATE accounts SET teacher = ?2 WHERE name = ?1",
	[ST_USER_IS_TEACHER]	= "SELECT teacher FROM accounts WHERE name = ?1",
	[ST_WEBSESS_ADD]	= "INSERT INTO web_sessions(id, account, csrf, created, expires)"
				  " SELECT ?1, id, ?2, ?3, ?4 FROM accounts WHERE name = ?5",
	[ST_WEBSESS_GET]	= "SELECT a.name, w.csrf, w.expires FROM web_sessions w"
				  " JOIN accounts a ON a.id = w.account WHERE w.id = ?1 AND w.expires > ?2",
	[ST_WEBSESS_DEL]	= "DELETE FROM web_sessions WHERE id = ?1",
	[ST_WEBSESS_PURGE]	= "DELETE FROM web_sessions WHERE expires <= ?1",
	[ST_TOKEN_ADD]		= "INSERT INTO api_tokens(hash, account, created)"
				  " SELECT ?1, id, ?2 FROM accounts WHERE name = ?3",
	[ST_TOKEN_GET]		= "SELECT a.name FROM api_tokens t JOIN accounts a ON a.id = t.account"
				  " WHERE t.hash = ?1",
	[ST_MAILBOX_ENTRY]	= "SELECT m.id, m.size, m.arrived, m.uidl, g.session, g.sender"
				  " FROM mailbox m JOIN accounts a ON a.id = m.account"
				  " JOIN messages g ON g.id = m.message"
				  " WHERE a.name = ?1 AND m.id = ?2 AND m.deleted = 0",
	[ST_SESSION_OPEN]	= "INSERT OR IGNORE INTO sessions(id, proto, client, started)"
				  " VALUES (?1, ?2, ?3, ?4)",
	[ST_SESSION_USER]	= "UPDATE sessions SET user = ?2 WHERE id = ?1",
	[ST_SESSION_ACCOUNT]	= "INSERT OR IGNORE INTO session_accounts(session, account)"
				  " VALUES (?1, lower(?2))",
	[ST_SESSION_CLOSE]	= "UPDATE sessions SET ended = ?2, outcome = ?3 WHERE id = ?1",
	/* Every filter is optional: NULL (or 0 for since) lets every row pass. */
	[ST_SESSION_LIST]	= "SELECT s.id, s.proto, s.client, s.started, coalesce(s.ended, 0),"
				  " s.user, s.outcome FROM sessions s"
				  " WHERE (?1 IS NULL OR EXISTS (SELECT 1 FROM session_accounts a"
				  "   WHERE a.session = s.id AND a.account = ?1))"
				  " AND (?2 IS NULL OR s.client = ?2)"
				  " AND s.started >= ?3"
				  " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM transcripts t"
				  "   WHERE t.session_id = s.id AND instr(t.line, ?4) > 0))"
				  " ORDER BY s.started DESC, s.rowid DESC LIMIT ?5",
	[ST_SESSION_GET]	= "SELECT id, proto, client, started, coalesce(ended, 0), user, outcome"
				  " FROM sessions WHERE id = ?1",
	[ST_SESSION_INVOLVES]	= "SELECT 1 FROM session_accounts WHERE session = ?1 AND account = ?2",

	[ST_USER_VERSION]	= "PRAGMA user_version",
};

/* Serializes the creation of new store files in this process (store_open). */
static pthread_mutex_t store_create_mutex = PTHREAD_MUTEX_INITIALIZER;

/* ---- helpers ------------------------------------------------------------ */

void
store_seterr(struct store *st, const char *what)
{
	snprintf(st->err, sizeof(st->err), "%s: %s", what, sqlite3_errmsg(st->db));
	st->errcode = sqlite3_errcode(st->db) & 0xff;
}

void
store_setmsg(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	st->errcode = 0;
}

void
store_set_full(struct store *st)
{
	st->errcode = SQLITE_FULL;
}

bool
store_err_full(struct store *st)
{
	return st->errcode == SQLITE_FULL;
}

void
store_blobs_release(struct store *st)
{
	size_t i;

	for (i = 0; i < STORE_BLOBS; i++) {
		if (st->blobs[i].blob != NULL) {
			sqlite3_blob_close(st->blobs[i].blob);
			st->blobs[i].blob = NULL;
		}
	}
}

/* The prepared statement for id, ready to bind. Releases the open blobs
 * (and so their read transaction) before anything else runs. */
sqlite3_stmt *
store_stmt_get(struct store *st, enum store_stmt id)
{
	assert(id < ST_COUNT && st->stmt[id] != NULL);
	store_blobs_release(st);
	return st->stmt[id];
}

/* Same, keeping the open blobs: only for reads inside their snapshot. */
sqlite3_stmt *
store_stmt_keep_blobs(struct store *st, enum store_stmt id)
{
	assert(id < ST_COUNT && st->stmt[id] != NULL);
	return st->stmt[id];
}

bool
store_blobs_open(const struct store *st)
{
	size_t i;

	for (i = 0; i < STORE_BLOBS; i++)
		if (st->blobs[i].blob != NULL)
			return true;
	return false;
}

/* Every use of a statement ends here: reset and clear its bindings. */
void
store_stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a bound statement that returns no rows and reset it. Returns 0 or -1
 * (error recorded as "what"). */
int
store_step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		store_seterr(st, what);
	store_stmt_done(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Run a statement that returns no rows. Returns 0 or -1 (error recorded). */
int
store_exec(struct store *st, enum store_stmt id, const char *what)
{
	sqlite3_stmt *s = store_stmt_get(st, id);
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_seterr(st, what);
		store_stmt_done(s);
		return -1;
	}
	store_stmt_done(s);
	return 0;
}

int
store_begin(struct store *st)
{
	return store_exec(st, ST_BEGIN, "begin transaction");
}

int
store_commit(struct store *st)
{
	if (store_exec(st, ST_COMMIT, "commit") == -1) {
		if (!sqlite3_get_autocommit(st->db))
			store_exec(st, ST_ROLLBACK, "rollback");
		return -1;
	}
	return 0;
}

void
store_rollback(struct store *st)
{
	char keep[sizeof(st->err)];
	int code = st->errcode;

	if (sqlite3_get_autocommit(st->db))
		return;		/* SQLite already rolled back */
	memcpy(keep, st->err, sizeof(keep));
	store_exec(st, ST_ROLLBACK, "rollback");
	memcpy(st->err, keep, sizeof(keep));
	st->errcode = code;
}

int64_t
store_now(void)
{
	return (int64_t)time(NULL);
}

void
store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int
copy_out(struct store *st, const unsigned char *v, char *dst, size_t len)
{
	if (v == NULL)
		v = (const unsigned char *)"";
	if (snprintf(dst, len, "%s", v) >= (int)len) {
		store_setmsg(st, "value too long for the caller's buffer");
		return -1;
	}
	return 0;
}

/* Run a single-parameter lookup returning one text column into dst. */
int
store_lookup_text(struct store *st, enum store_stmt id, const char *key, char *dst, size_t len)
{
	sqlite3_stmt *s = store_stmt_get(st, id);
	int rc, ret;

	store_bind_text(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		ret = copy_out(st, sqlite3_column_text(s, 0), dst, len);
	else if (rc == SQLITE_DONE)
		ret = STORE_NOTFOUND;
	else {
		store_seterr(st, "lookup");
		ret = -1;
	}
	store_stmt_done(s);
	return ret;
}

void *
store_grow(struct store *st, sqlite3_stmt *s, void *v, size_t n, size_t *cap,
    size_t size, const char *what)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 32;
	if ((nv = reallocarray(v, ncap, size)) == NULL) {
		store_setmsg(st, "out of memory listing %s", what);
		store_stmt_done(s);
		free(v);
		return NULL;
	}
	*cap = ncap;
	return nv;
}

bool
store_is_constraint(struct store *st)
{
	return (sqlite3_errcode(st->db) & 0xff) == SQLITE_CONSTRAINT;
}



/* ---- the reserve (store.h) ------------------------------------------------ */

/* "<store>.reserve" into dst: 0, or -1 (no file name, too long). */
static int
reserve_path(struct store *st, char *dst, size_t len)
{
	const char *db = sqlite3_db_filename(st->db, "main");

	if (db == NULL || *db == '\0' || snprintf(dst, len, "%s.reserve", db) >= (int)len)
		return -1;
	return 0;
}

int
store_reserve_make(struct store *st)
{
	char path[STORE_PATH_MAX], dir[STORE_PATH_MAX], *slash;
	struct statvfs sv;
	int fd, e;

	if (reserve_path(st, path, sizeof(path)) == -1) {
		store_setmsg(st, "reserve: the store has no file name");
		return -1;
	}
	if (access(path, F_OK) == 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (statvfs(dir, &sv) == -1 ||
	    (int64_t)sv.f_bavail * (int64_t)sv.f_frsize < 2 * STORE_RESERVE_SIZE)
		return 0;	/* no room now: made on a later call */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		if (errno == EEXIST)
			return 0;
		store_setmsg(st, "reserve %s: %s", path, strerror(errno));
		return -1;
	}
	if ((e = posix_fallocate(fd, 0, (off_t)STORE_RESERVE_SIZE)) != 0 || fsync(fd) == -1) {
		if (e == 0)
			e = errno;
		close(fd);
		(void)unlink(path);
		if (e == ENOSPC || e == EDQUOT)
			return 0;
		store_setmsg(st, "reserve %s: %s", path, strerror(e));
		return -1;
	}
	close(fd);
	return 1;
}

int
store_reserve_release(struct store *st)
{
	char path[STORE_PATH_MAX];

	if (reserve_path(st, path, sizeof(path)) == -1 || unlink(path) == -1)
		return -1;
	st->reserve_released = true;
	return 0;
}

bool
store_reserve_released(struct store *st)
{
	bool r = st->reserve_released;

	st->reserve_released = false;
	return r;
}

/* ---- open, migrate, close ---------------------------------------------- */

static int
exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
query_int(sqlite3 *db, const char *sql, int *v)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(s, 0);
	else if (rc == SQLITE_DONE)
		*v = 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Is this file ours? A file without tables (new or empty) is, and so is one
 * with our marker and a schema version we know. Anything else is refused
 * before we change a byte of it. *version_r is its user_version.
 */
static int
store_check(sqlite3 *db, const char *path, int *version_r, char *err, size_t errlen)
{
	int version, ntables, marker, latest = (int)store_schema_count;

	if (query_int(db, "PRAGMA user_version", &version) == -1 ||
	    query_int(db, "SELECT count(*) FROM sqlite_master", &ntables) == -1) {
		snprintf(err, errlen, "%s: %s%s", path, sqlite3_errmsg(db),
		    (sqlite3_errcode(db) & 0xff) == SQLITE_NOTADB ? " (not a correio store)" : "");
		return -1;
	}
	if (version == 0 && ntables > 0) {
		snprintf(err, errlen, "%s: not a correio store (it holds %d tables or indexes "
		    "of another program; refusing to touch it)", path, ntables);
		return -1;
	}
	if (version > 0) {
		if (query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
		    " AND name = 'correio_meta'", &marker) == -1 || marker == 0 ||
		    query_int(db, "SELECT count(*) FROM correio_meta WHERE key = 'format'"
		    " AND value = '" STORE_FORMAT "'", &marker) == -1 || marker == 0) {
			snprintf(err, errlen, "%s: not a correio store (schema version %d "
			    "without the correio marker)", path, version);
			return -1;
		}
	}
	if (version > latest) {
		snprintf(err, errlen, "%s: store schema version %d is newer than this "
		    "program knows (%d); upgrade correio", path, version, latest);
		return -1;
	}
	*version_r = version;
	return 0;
}

/*
 * Bring the schema up to date inside one IMMEDIATE transaction, checking
 * again under the lock, so that two programs opening a new store at once
 * do not both migrate it.
 */
static int
store_migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int version, latest = (int)store_schema_count;
	char sql[STORE_PRAGMA_MAX];

	if (exec_sql(db, "BEGIN IMMEDIATE", err, errlen, path) == -1)
		return -1;
	if (store_check(db, path, &version, err, errlen) == -1)
		goto fail;
	for (; version < latest; version++) {
		if (exec_sql(db, store_schema_migrations[version], err, errlen,
		    "schema migration") == -1)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if (exec_sql(db, sql, err, errlen, "schema version") == -1)
			goto fail;
	}
	if (exec_sql(db, "COMMIT", err, errlen, path) == -1)
		goto fail;
	return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Switch to WAL (persistent in the file). Changing the journal mode needs
 * the file to itself and SQLite does not call the busy handler for it, so
 * retry while another program holds it, up to the busy timeout.
 */
static int
store_wal(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	const struct timespec pause = { 0, 10 * 1000 * 1000 };	/* 10 ms */
	sqlite3_stmt *s;
	char mode[STORE_MODE_MAX];
	int rc, waited;

	for (waited = 0; ; waited += 10) {
		if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
			return -1;
		}
		mode[0] = '\0';
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			snprintf(mode, sizeof(mode), "%s", (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		if (strcasecmp(mode, "wal") == 0)
			return 0;
		rc = sqlite3_errcode(db) & 0xff;
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || waited >= STORE_BUSY_TIMEOUT_MS)
			break;
		nanosleep(&pause, NULL);
	}
	snprintf(err, errlen, "%s: cannot use WAL mode: %s", path,
	    mode[0] ? mode : sqlite3_errmsg(db));
	return -1;
}

int
store_open(struct store **st_r, const char *path, char *err, size_t errlen)
{
	struct store *st;
	int fd, saved, i, rc, version;

	*st_r = NULL;
	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "no store path given");
		return -1;
	}
	/*
	 * A new store holds password hashes: create it owner-only (the -wal
	 * and -shm files get its mode). Careful: closing any descriptor of the
	 * file drops every POSIX lock this process holds on it, those of other
	 * connections included (smtpd opens several), after which a reader
	 * elsewhere may delete the WAL under them. So the file is created and
	 * closed only when it did not exist (O_EXCL), and under a mutex that
	 * every store_open() passes before SQLite opens the file: no connection
	 * of this process can hold a lock on it yet.
	 */
	pthread_mutex_lock(&store_create_mutex);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	saved = errno;
	if (fd != -1)
		close(fd);
	pthread_mutex_unlock(&store_create_mutex);
	if (fd == -1 && saved != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		return -1;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, st->db && sqlite3_system_errno(st->db) ?
		    strerror(sqlite3_system_errno(st->db)) : st->db ? sqlite3_errmsg(st->db) :
		    sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);

	/* Refuse a file that is not ours before changing anything in it. One
	 * read transaction, so that another program creating the schema at
	 * this moment is seen either before or after, never half-way. */
	if (exec_sql(st->db, "BEGIN", err, errlen, path) == -1)
		goto fail;
	rc = store_check(st->db, path, &version, err, errlen);
	sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
	if (rc == -1)
		goto fail;
	if (store_wal(st->db, path, err, errlen) == -1)
		goto fail;
	if (exec_sql(st->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
	    err, errlen, path) == -1)
		goto fail;
	if (store_migrate(st->db, path, err, errlen) == -1)
		goto fail;

	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &st->stmt[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: preparing statement %d: %s", path, i,
			    sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	*st_r = st;
	return 0;
fail:
	store_close(&st);
	return -1;
}

void
store_close(struct store **stp)
{
	struct store *st = *stp;
	int i;

	if (st == NULL)
		return;
	store_blobs_release(st);
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st);
	*stp = NULL;
}

const char *
store_errmsg(struct store *st)
{
	return st->err;
}

int
store_schema_version(struct store *st)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_USER_VERSION);
	int v = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	else
		store_seterr(st, "schema version");
	store_stmt_done(s);
	return v;
}

int
store_schema_latest(void)
{
	return (int)store_schema_count;
}
