/*
 * store_sqlite.c - the SQLite backend's core (the embedded default: a store
 * is a file path): the table of every SQL statement, open (pragmas, the
 * check that a file is ours, migrations), close, the helpers the backend's
 * other files run their statements through (store_sqlite.h), and the ops
 * table the front (store.c) calls. The areas live beside it:
 * store_sqlite_account.c (accounts, domains, aliases),
 * store_sqlite_delivery.c (group commit), store_sqlite_mailbox.c (POP3
 * mailboxes, locks, message bodies), store_sqlite_queue.c (the outbound
 * queue), store_sqlite_web.c (the web console) and store_sqlite_transcript.c
 * (the session log, in a file of its own that each handle opens at first
 * use: sqlite_log_ready()).
 *
 * Every statement lives in one enum -> SQL table, is prepared once at open,
 * reset and its bindings cleared after every use, and finalized at close.
 * Pragmas: WAL, foreign_keys=ON, synchronous=FULL (a commit is on disk
 * before it returns), busy_timeout so that smtpd, pop3d and mailcli share
 * one file. Schema migrations (store_sqlite_schema.c) are applied forward by
 * PRAGMA user_version on open.
 * Never: SQL outside the backend's files, plaintext passwords, partial
 * deliveries.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <stdatomic.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>

#include <sqlite3.h>

#include "log.h"
#include "store_sqlite.h"

#define STORE_BUSY_TIMEOUT_MS	10000	/* wait this long for another writer */
#define STORE_FORMAT		"correio-store"
#define STORE_LOG_FORMAT	"correio-sessions"
#define STORE_LOG_SUFFIX	"-sessions"	/* the session log's file: path + this */
#define STORE_LOG_MOVED		5	/* the store version that drops the log's tables */
#define STORE_PRAGMA_MAX	64	/* "PRAGMA user_version = N" */
#define STORE_MODE_MAX		16	/* "PRAGMA journal_mode" answer, with its NUL */

const char *const store_sql[ST_COUNT] = {
	[ST_BEGIN]		= "BEGIN IMMEDIATE",
	[ST_BEGIN_READ]		= "BEGIN",
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
				  " AND NOT EXISTS (SELECT 1 FROM queue WHERE queue.message = messages.id)"
				  " RETURNING id, size > 0 AND length(body) = 0",

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
	/* A body that could not be stored apart after all (bodies_link()). */
	[ST_MSG_BODY_INLINE]	= "UPDATE messages SET body = zeroblob(?2) WHERE id = ?1",
	/* An unknown account gives a NULL account: NOT NULL constraint failure. */
	[ST_ENTRY_ADD]		= "INSERT INTO mailbox(account, message, uidl, size, arrived)"
				  " VALUES ((SELECT id FROM accounts WHERE name = ?1), ?2,"
				  " printf('%d.%s', ?2, lower(hex(randomblob(5)))), ?3, ?4)",
	[ST_QUEUE_ADD]		= "INSERT INTO queue(message, sender, rcpt, created, next_attempt)"
				  " VALUES (?1, ?2, ?3, ?4, ?4)",

	/* The POP3 lock's writes, and only they, do not wait for the disk
	 * (store_sqlite_mailbox.c says why). */
	[ST_SYNC_NORMAL]	= "PRAGMA synchronous = NORMAL",
	[ST_SYNC_FULL]		= "PRAGMA synchronous = FULL",
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
	/* Deleting messages returns, for each, whether its body is stored
	 * apart (an empty body of a size above 0: store_sqlite_bodies.c);
	 * length() of a blob reads its header only. */
	[ST_MSG_DEL_IF_ORPHAN]	= "DELETE FROM messages WHERE id = ?1"
				  " AND NOT EXISTS (SELECT 1 FROM mailbox WHERE message = ?1)"
				  " AND NOT EXISTS (SELECT 1 FROM queue WHERE message = ?1)"
				  " RETURNING id, size > 0 AND length(body) = 0",
	[ST_MSG_SIZE]		= "SELECT size FROM messages WHERE id = ?1",
	[ST_MSG_APART]		= "SELECT 1 FROM messages WHERE id = ?1"
				  " AND size > 0 AND length(body) = 0",

	[ST_QUEUE_LIST]		= "SELECT id, message, sender, rcpt, created, next_attempt, attempts,"
				  " last_error FROM queue WHERE ?1 < 0 OR next_attempt <= ?1"
				  " ORDER BY next_attempt, id",
	[ST_QUEUE_DEFER]	= "UPDATE queue SET attempts = attempts + 1, next_attempt = ?2,"
				  " last_error = ?3, claimer = '', claimed_until = 0 WHERE id = ?1",
	[ST_QUEUE_GET]		= "SELECT message FROM queue WHERE id = ?1",
	[ST_QUEUE_DEL]		= "DELETE FROM queue WHERE id = ?1",
	[ST_QUEUE_FLUSH]	= "UPDATE queue SET next_attempt = 0",
	[ST_QUEUE_CLAMP]	= "UPDATE queue SET next_attempt = ?1 WHERE next_attempt > ?1",
	[ST_QUEUE_MAX_ID]	= "SELECT coalesce(max(id), 0) FROM queue",
	/* Other runners holding live claims (is one a dead process?). */
	[ST_QUEUE_CLAIMERS]	= "SELECT DISTINCT claimer FROM queue WHERE claimer <> ''"
				  " AND claimer <> ?1 AND claimed_until > ?2",
	[ST_QUEUE_UNCLAIM]	= "UPDATE queue SET claimer = '', claimed_until = 0 WHERE claimer = ?1",
	[ST_QUEUE_RENEW]	= "UPDATE queue SET claimed_until = ?2 WHERE claimer = ?1",
	/* Due, and free, ours, or another's that ran out: the oldest max. */
	[ST_QUEUE_CLAIM]	= "UPDATE queue SET claimer = ?1, claimed_until = ?3 WHERE id IN"
				  " (SELECT id FROM queue WHERE next_attempt <= ?2 AND"
				  " (claimer = '' OR claimer = ?1 OR claimed_until <= ?2)"
				  " ORDER BY next_attempt, id LIMIT ?4)"
				  " RETURNING id, message, sender, rcpt, created, next_attempt,"
				  " attempts, last_error",

	[ST_TRANSCRIPT_SEQ]	= "SELECT coalesce(max(seq), 0) FROM transcripts WHERE session_id = ?1",
	[ST_TRANSCRIPT_ADD]	= "INSERT INTO transcripts(session_id, seq, proto, lines, time)"
				  " VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_TRANSCRIPT_GET]	= "SELECT lines FROM transcripts WHERE session_id = ?1 ORDER BY seq",

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
	/* A session that began and ended within one batch: one row, whole. */
	[ST_SESSION_WHOLE]	= "INSERT OR IGNORE INTO sessions(id, proto, client, started,"
				  " ended, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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
				  "   WHERE t.session_id = s.id AND instr(t.lines, ?4) > 0))"
				  " ORDER BY s.started DESC, s.rowid DESC LIMIT ?5",
	[ST_SESSION_GET]	= "SELECT id, proto, client, started, coalesce(ended, 0), user, outcome"
				  " FROM sessions WHERE id = ?1",
	[ST_SESSION_INVOLVES]	= "SELECT 1 FROM session_accounts WHERE session = ?1 AND account = ?2",

	[ST_USER_VERSION]	= "PRAGMA user_version",

	/* copying a whole store: every row verbatim, ids included */
	[ST_COPY_COUNT]		= "SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM accounts),"
				  " (SELECT count(*) FROM aliases), (SELECT count(*) FROM messages),"
				  " (SELECT count(*) FROM mailbox), (SELECT count(*) FROM queue),"
				  " (SELECT count(*) FROM web_sessions), (SELECT count(*) FROM api_tokens)",
	[ST_DUMP_DOMAINS]	= "SELECT name, created FROM domains ORDER BY name",
	[ST_DUMP_ACCOUNTS]	= "SELECT id, name, hash, created, teacher FROM accounts ORDER BY id",
	[ST_DUMP_ALIASES]	= "SELECT al.address, a.name, al.created FROM aliases al"
				  " JOIN accounts a ON a.id = al.account ORDER BY al.address, a.id",
	[ST_DUMP_MESSAGES]	= "SELECT id, size, sender, session, created FROM messages ORDER BY id",
	[ST_DUMP_ENTRIES]	= "SELECT m.id, a.name, m.message, m.uidl, m.size, m.arrived, m.deleted"
				  " FROM mailbox m JOIN accounts a ON a.id = m.account ORDER BY m.id",
	[ST_DUMP_QUEUE]		= "SELECT id, message, sender, rcpt, created, next_attempt, attempts,"
				  " last_error FROM queue ORDER BY id",
	[ST_DUMP_WEBSESSIONS]	= "SELECT w.id, a.name, w.csrf, w.created, w.expires FROM web_sessions w"
				  " JOIN accounts a ON a.id = w.account ORDER BY w.id",
	[ST_DUMP_TOKENS]	= "SELECT t.hash, a.name, t.created FROM api_tokens t"
				  " JOIN accounts a ON a.id = t.account ORDER BY t.hash",
	[ST_DUMP_SEQUENCES]	= "SELECT name, seq FROM sqlite_sequence ORDER BY name",
	[ST_LOAD_DOMAIN]	= "INSERT INTO domains(name, created) VALUES (?1, ?2)",
	[ST_LOAD_ACCOUNT]	= "INSERT INTO accounts(id, name, hash, created, teacher)"
				  " VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_LOAD_ALIAS]		= "INSERT INTO aliases(address, account, created)"
				  " SELECT ?1, id, ?3 FROM accounts WHERE name = ?2",
	/* the body is written after, through a blob handle, in chunks */
	[ST_LOAD_MESSAGE]	= "INSERT INTO messages(id, body, size, sender, session, created)"
				  " VALUES (?1, zeroblob(?2), ?2, ?3, ?4, ?5)",
	/* An unknown account gives a NULL account: NOT NULL constraint failure. */
	[ST_LOAD_ENTRY]		= "INSERT INTO mailbox(id, account, message, uidl, size, arrived, deleted)"
				  " VALUES (?1, (SELECT id FROM accounts WHERE name = ?2), ?3, ?4, ?5, ?6, ?7)",
	[ST_LOAD_QUEUE]		= "INSERT INTO queue(id, message, sender, rcpt, created, next_attempt,"
				  " attempts, last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_LOAD_WEBSESSION]	= "INSERT INTO web_sessions(id, account, csrf, created, expires)"
				  " SELECT ?1, id, ?3, ?4, ?5 FROM accounts WHERE name = ?2",
	[ST_LOAD_TOKEN]		= "INSERT INTO api_tokens(hash, account, created)"
				  " SELECT ?1, id, ?3 FROM accounts WHERE name = ?2",
	/* AUTOINCREMENT's record of the highest id given, per table */
	[ST_LOAD_SEQ_RAISE]	= "UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1 AND seq < ?2",
	[ST_LOAD_SEQ_ADD]	= "INSERT INTO sqlite_sequence(name, seq) SELECT ?1, ?2"
				  " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
	[ST_LOG_COPY_COUNT]	= "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM session_accounts),"
				  " (SELECT count(*) FROM transcripts)",
	[ST_DUMP_SESSIONS]	= "SELECT id, proto, client, started, coalesce(ended, 0), user, outcome"
				  " FROM sessions ORDER BY rowid",
	[ST_DUMP_SESSION_ACCOUNTS] = "SELECT session, account FROM session_accounts ORDER BY session, account",
	[ST_DUMP_TRANSCRIPTS]	= "SELECT session_id, seq, proto, lines, time FROM transcripts ORDER BY id",
	[ST_LOAD_SESSION]	= "INSERT INTO sessions(id, proto, client, started, ended, user, outcome)"
				  " VALUES (?1, ?2, ?3, ?4, nullif(?5, 0), ?6, ?7)",
	[ST_LOAD_SESSION_ACCOUNT] = "INSERT INTO session_accounts(session, account) VALUES (?1, ?2)",
	[ST_LOAD_TRANSCRIPT]	= "INSERT INTO transcripts(session_id, seq, proto, lines, time)"
				  " VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_LOG_CLEAR_SESSIONS]	= "DELETE FROM sessions",
	[ST_LOG_CLEAR_SESSION_ACCOUNTS] = "DELETE FROM session_accounts",
	[ST_LOG_CLEAR_TRANSCRIPTS] = "DELETE FROM transcripts",
};

/*
 * SQLite's process-wide settings, before its first use. Its memory
 * statistics (sqlite3_status(), which nothing here reads) take one global
 * mutex around every allocation of every connection: smtpd's event loop,
 * writer and session-log threads met there on each statement.
 */
static pthread_once_t sqlite_config_once = PTHREAD_ONCE_INIT;

static void
sqlite_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);	/* MISUSE if already begun: harmless */
}

/* Serializes the creation of new store files in this process (store_open). */
static pthread_mutex_t store_create_mutex = PTHREAD_MUTEX_INITIALIZER;

/* ---- helpers ------------------------------------------------------------ */

void
store_seterr_db(struct store_sqlite *st, sqlite3 *db, const char *what)
{
	if (db == st->db && st->moved &&
	    sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_COMMITHOOK) {
		/* The commit hook refused: say why, not "constraint failed". */
		store_setmsg(&st->base, "%s: %s", what, st->moved_err);
		return;
	}
	store_setmsg(&st->base, "%s: %s", what, sqlite3_errmsg(db));
	if ((sqlite3_errcode(db) & 0xff) == SQLITE_FULL)
		store_set_full(&st->base);
}

void
store_seterr(struct store_sqlite *st, const char *what)
{
	store_seterr_db(st, st->db, what);
}

void
store_blobs_release(struct store_sqlite *st)
{
	size_t i;

	for (i = 0; i < STORE_BLOBS; i++)
		store_body_close(&st->blobs[i]);
}

/* The prepared statement for id, ready to bind. Releases the open blobs
 * (and so their read transaction) before anything else runs. */
sqlite3_stmt *
store_stmt_get(struct store_sqlite *st, enum store_stmt id)
{
	assert(id < ST_COUNT && st->stmt[id] != NULL);
	store_blobs_release(st);
	return st->stmt[id];
}

/* Same, keeping the open blobs: only for reads inside their snapshot. */
sqlite3_stmt *
store_stmt_keep_blobs(struct store_sqlite *st, enum store_stmt id)
{
	assert(id < ST_COUNT && st->stmt[id] != NULL);
	return st->stmt[id];
}

bool
store_blobs_open(const struct store_sqlite *st)
{
	size_t i;

	for (i = 0; i < STORE_BLOBS; i++)
		if (store_body_is_open(&st->blobs[i]))
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
store_step_done(struct store_sqlite *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		store_seterr_db(st, sqlite3_db_handle(s), what);
	store_stmt_done(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Run a statement that returns no rows. Returns 0 or -1 (error recorded). */
int
store_exec(struct store_sqlite *st, enum store_stmt id, const char *what)
{
	sqlite3_stmt *s = store_stmt_get(st, id);
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_seterr_db(st, sqlite3_db_handle(s), what);
		store_stmt_done(s);
		return -1;
	}
	store_stmt_done(s);
	return 0;
}

/* Before the transaction, not only in the commit hook: what a transaction
 * does outside SQLite (linking a body into "<store>-bodies", the sweep of
 * that directory) must not happen for a store that was replaced, and the
 * check here is the one that copies a deleted WAL's mail into the database
 * (salvage), which the commit hook cannot. */
int
store_begin(struct store_sqlite *st)
{
	if (sqlite_file_check(&st->base) != 0)
		return -1;
	return store_exec(st, ST_BEGIN, "begin transaction");
}

bool
store_read_begin(struct store_sqlite *st)
{
	if (!sqlite3_get_autocommit(st->db))
		return false;		/* inside the caller's transaction already */
	return store_exec(st, ST_BEGIN_READ, "begin") == 0;
}

void
store_read_end(struct store_sqlite *st, bool began)
{
	if (began && !sqlite3_get_autocommit(st->db)) {
		sqlite3_step(st->stmt[ST_COMMIT]);	/* a read: nothing to fail */
		store_stmt_done(st->stmt[ST_COMMIT]);
	}
}

bool
sqlite_snapshot_begin(struct store *base)
{
	return store_read_begin(sqlite_of(base));
}

void
sqlite_snapshot_end(struct store *base, bool began)
{
	store_read_end(sqlite_of(base), began);
}

int
store_commit(struct store_sqlite *st)
{
	if (store_exec(st, ST_COMMIT, "commit") == -1) {
		if (!sqlite3_get_autocommit(st->db))
			store_exec(st, ST_ROLLBACK, "rollback");
		bodies_rolled_back(st);
		return -1;
	}
	bodies_committed(st);	/* the files of the messages it deleted */
	return 0;
}

void
store_rollback(struct store_sqlite *st)
{
	char keep[sizeof(st->base.err)];
	bool full = st->base.err_full;

	bodies_rolled_back(st);
	if (sqlite3_get_autocommit(st->db))
		return;		/* SQLite already rolled back */
	memcpy(keep, st->base.err, sizeof(keep));
	store_exec(st, ST_ROLLBACK, "rollback");
	memcpy(st->base.err, keep, sizeof(keep));
	st->base.err_full = full;
}

void
store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int
copy_out(struct store_sqlite *st, const unsigned char *v, char *dst, size_t len)
{
	if (v == NULL)
		v = (const unsigned char *)"";
	if (snprintf(dst, len, "%s", v) >= (int)len) {
		store_setmsg(&st->base, "value too long for the caller's buffer");
		return -1;
	}
	return 0;
}

/* Run a single-parameter lookup returning one text column into dst. */
int
store_lookup_text(struct store_sqlite *st, enum store_stmt id, const char *key, char *dst, size_t len)
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
store_grow(struct store_sqlite *st, sqlite3_stmt *s, void *v, size_t n, size_t *cap,
    size_t size, const char *what)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 32;
	if ((nv = reallocarray(v, ncap, size)) == NULL) {
		store_setmsg(&st->base, "out of memory listing %s", what);
		store_stmt_done(s);
		free(v);
		return NULL;
	}
	*cap = ncap;
	return nv;
}

bool
store_is_constraint(struct store_sqlite *st)
{
	int code = sqlite3_extended_errcode(st->db);

	return (code & 0xff) == SQLITE_CONSTRAINT && code != SQLITE_CONSTRAINT_COMMITHOOK;
}

/* ---- the store's files still at its path? (store.h) ----------------------- */

/* What a process has logged about its store files: one bit per file and
 * kind (missing, replaced), so each is said once however many handles see it. */
static atomic_uint store_moved_logged;
#define STORE_LOGGED_SALVAGE	(1u << (2 * STORE_F_COUNT))	/* the WAL copied */

static const char *const store_file_name[STORE_F_COUNT] = {
	[STORE_F_DB] = "database", [STORE_F_WAL] = "write-ahead log", [STORE_F_SHM] = "shared index",
};

/* The identity of the file at path: device, inode and, where the file
 * system records it, birth time (ext4 and tmpfs reuse a deleted file's
 * inode number at once: SQLite recreating a deleted -wal may get the same).
 * 0, or -1 with errno. */
static int
file_id(const char *path, struct store_fileid *id)
{
	struct statx sx;

	if (statx(AT_FDCWD, path, 0, STATX_INO | STATX_BTIME, &sx) == -1)
		return -1;
	id->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	id->ino = sx.stx_ino;
	id->born_s = (sx.stx_mask & STATX_BTIME) ? sx.stx_btime.tv_sec : 0;
	id->born_ns = (sx.stx_mask & STATX_BTIME) ? sx.stx_btime.tv_nsec : 0;
	return 0;
}

static bool
same_file(const struct store_fileid *a, const struct store_fileid *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->born_s == b->born_s &&
	    a->born_ns == b->born_ns;
}

/*
 * What this process first saw at a store's paths, shared by all its handles
 * on that store: a handle opened after a -wal was deleted (and recreated by
 * SQLite) would otherwise take the new file for the right one. One
 * generation per store file: a handle that finds another database file at
 * the path (a new store) starts a new one. Freed with its last handle, so a
 * process that closed everything and reopens (SQLite deletes the -wal at the
 * last close) starts afresh.
 */
struct store_seen {
	struct store_seen *next;		/* the current generations */
	struct store_fileid files[STORE_F_COUNT];
	unsigned	 refs;
	bool		 listed;
};
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_seen *seen_list;

static void
seen_unlist(struct store_seen *g)
{
	struct store_seen **pp;

	for (pp = &seen_list; *pp != NULL; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	g->listed = false;
}

/* Record the files at the store's paths (at open), as this process first
 * saw them. */
static void
store_files_init(struct store_sqlite *st)
{
	static const char *const suffix[STORE_F_COUNT] = { "", "-wal", "-shm" };
	const char *db = sqlite3_db_filename(st->db, "main");
	struct store_seen *g;
	int i;

	for (i = 0; i < STORE_F_COUNT; i++) {
		struct store_fileid *f = &st->files[i];

		f->known = false;
		if (db == NULL || *db == '\0' ||
		    snprintf(f->path, sizeof(f->path), "%s%s", db, suffix[i]) >= (int)sizeof(f->path)) {
			f->path[0] = '\0';
			continue;
		}
		if (file_id(f->path, f) == 0)
			f->known = true;
	}
	if (!st->files[STORE_F_DB].known)
		return;
	pthread_mutex_lock(&seen_lock);
	for (g = seen_list; g != NULL; g = g->next)
		if (strcmp(g->files[STORE_F_DB].path, st->files[STORE_F_DB].path) == 0)
			break;
	if (g != NULL && !same_file(&g->files[STORE_F_DB], &st->files[STORE_F_DB])) {
		seen_unlist(g);		/* another store at the path: a new generation */
		g = NULL;
	}
	if (g == NULL && (g = calloc(1, sizeof(*g))) != NULL) {
		memcpy(g->files, st->files, sizeof(g->files));
		g->next = seen_list;
		seen_list = g;
		g->listed = true;
	}
	if (g != NULL) {
		g->refs++;
		for (i = 1; i < STORE_F_COUNT; i++) {
			if (g->files[i].known)
				st->files[i] = g->files[i];	/* the first view */
			else if (st->files[i].known)
				g->files[i] = st->files[i];
		}
	}
	st->seen = g;
	pthread_mutex_unlock(&seen_lock);
}

/* A -wal or -shm seen for the first time by this handle: the process's
 * first view of it if there is one, else this one becomes that. */
static void
seen_first(struct store_sqlite *st, int i, const struct store_fileid *now)
{
	struct store_fileid *f = &st->files[i];

	pthread_mutex_lock(&seen_lock);
	if (st->seen != NULL && st->seen->files[i].known)
		*f = st->seen->files[i];
	else {
		f->dev = now->dev;
		f->ino = now->ino;
		f->born_s = now->born_s;
		f->born_ns = now->born_ns;
		f->known = true;
		if (st->seen != NULL)
			st->seen->files[i] = *f;
	}
	pthread_mutex_unlock(&seen_lock);
}

static void
store_files_release(struct store_sqlite *st)
{
	struct store_seen *g = st->seen;

	if (g == NULL)
		return;
	pthread_mutex_lock(&seen_lock);
	if (--g->refs == 0) {
		if (g->listed)
			seen_unlist(g);
		free(g);
	}
	pthread_mutex_unlock(&seen_lock);
	st->seen = NULL;
}

/* Is f (known) still the file at its path? A stat() error other than
 * ENOENT proves nothing and counts as yes. */
static bool
file_at_path(const struct store_fileid *f)
{
	struct store_fileid now;

	if (!f->known)
		return false;
	if (file_id(f->path, &now) == -1)
		return errno != ENOENT;
	return same_file(&now, f);
}

/*
 * The -wal or -shm alone was deleted (the database is still ours): what was
 * committed lives in the unlinked WAL until a checkpoint copies it into the
 * database, and no commit will trigger one any more. Copy it now, so that
 * mail acknowledged before the deletion is in the database file itself and
 * survives a crash. PASSIVE: never waits (the caller may be an event loop);
 * tried again at the next check until everything is copied.
 */
static void
store_salvage_wal(struct store_sqlite *st)
{
	int rc, nlog = -1, nckpt = -1;

	if (st->wal_salvaged || !file_at_path(&st->files[STORE_F_DB]))
		return;		/* done already, or no database to save into */
	rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
	if (rc == SQLITE_OK && nckpt == nlog) {
		st->wal_salvaged = true;
		if ((atomic_fetch_or(&store_moved_logged, STORE_LOGGED_SALVAGE) &
		    STORE_LOGGED_SALVAGE) == 0)
			log_warnx("event=store-wal-salvage path=%s result=ok frames=%d",
			    st->files[STORE_F_DB].path, nlog);
	} else if (!st->ckpt_logged) {
		st->ckpt_logged = true;		/* tried again at the next check */
		log_warnx("event=store-wal-salvage path=%s result=\"%s\" frames=%d copied=%d",
		    st->files[STORE_F_DB].path, rc == SQLITE_OK ? "incomplete" : sqlite3_errstr(rc),
		    nlog, nckpt);
	}
}

/* store_file_check(); salvage: may run the checkpoint (not from the commit
 * hook, which must not use its connection). */
static int
file_check(struct store_sqlite *st, bool salvage)
{
	struct store_fileid now;
	unsigned bit;
	int i;
	bool missing;

	st->moved = false;
	for (i = 0; i < STORE_F_COUNT; i++) {
		struct store_fileid *f = &st->files[i];

		if (f->path[0] == '\0')
			continue;
		if (file_id(f->path, &now) == -1) {
			/* Only a file known to exist can be missing; other errors
			 * (EACCES...) prove nothing: the commit is the real check. */
			if (errno != ENOENT || !f->known)
				continue;
			missing = true;
		} else if (!f->known) {
			seen_first(st, i, &now);	/* the -wal or -shm, seen first now */
			if (same_file(&now, f))
				continue;
			missing = false;
		} else if (same_file(&now, f))
			continue;
		else
			missing = false;
		st->moved = true;
		snprintf(st->moved_err, sizeof(st->moved_err), "the store's %s %s was %s under this "
		    "program; writes are refused until it is restarted", store_file_name[i],
		    f->path, missing ? "deleted" : "replaced by another file");
		store_setmsg(&st->base, "%s", st->moved_err);
		bit = 1u << (2 * i + (missing ? 0 : 1));
		if ((atomic_fetch_or(&store_moved_logged, bit) & bit) == 0)
			log_warnx("event=%s path=%s file=%s action=\"writes refused until restart\"",
			    missing ? "store-missing" : "store-replaced", f->path,
			    i == STORE_F_DB ? "database" : i == STORE_F_WAL ? "wal" : "shm");
		if (i != STORE_F_DB && salvage)
			store_salvage_wal(st);
		return STORE_MOVED;
	}
	return 0;
}

int
sqlite_file_check(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);

	return file_check(st, true);
}

/* SQLite's commit hook: a non-zero return turns the commit into a rollback. */
static int
store_commit_hook(void *arg)
{
	return file_check(arg, false) != 0;
}

/* ---- checkpoints elsewhere (store_defer_checkpoints) ----------------------- */

/*
 * The WAL hook of a handle whose checkpoints run elsewhere. It takes the
 * place of SQLite's autocheckpoint, which is this same hook running the
 * checkpoint itself. SQLite calls it after each commit, outside the write
 * lock, with the log's length in pages (copied or not): past
 * STORE_CKPT_PAGES the other thread is asked; past STORE_CKPT_PAGES_MAX
 * (it did not keep up, or the log could not start over because every
 * commit came while a checkpoint ran) this handle copies the rest itself,
 * so that its next write transaction starts the log over.
 */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store_sqlite *st = arg;

	if (pages >= STORE_CKPT_PAGES_MAX)
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	else if (pages >= STORE_CKPT_PAGES)
		st->ckpt_due(st->ckpt_arg);
	return SQLITE_OK;
}

bool
sqlite_defer_checkpoints(struct store *base, void (*due)(void *), void *arg)
{
	struct store_sqlite *st = sqlite_of(base);
	char sql[STORE_PRAGMA_MAX];

	st->ckpt_due = due;
	st->ckpt_arg = arg;
	/* A log grown long under load is cut back when it starts over. Only
	 * a size: were it refused, the file would merely stay long. */
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %lld", (long long)STORE_CKPT_KEEP);
	(void)sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	sqlite3_wal_hook(st->db, wal_hook, st);
	return true;
}

/* PASSIVE: copies the pages no reader still needs, waits for nobody. */
int
sqlite_checkpoint(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
	int rc;

	if (file_check(st, true) != 0)
		return -1;	/* the file at the path is not ours: copy nothing */
	rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc == SQLITE_OK || rc == SQLITE_BUSY)	/* BUSY: another checkpoint runs now */
		return 0;
	store_seterr(st, "checkpoint");
	return -1;
}



/* ---- the reserve (store.h) ------------------------------------------------ */

/* "<store>.reserve" into dst: 0, or -1 (no file name, too long). */
static int
reserve_path(struct store_sqlite *st, char *dst, size_t len)
{
	const char *db = sqlite3_db_filename(st->db, "main");

	if (db == NULL || *db == '\0' || snprintf(dst, len, "%s.reserve", db) >= (int)len)
		return -1;
	return 0;
}

int
sqlite_reserve_make(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
	char path[STORE_PATH_MAX], dir[STORE_PATH_MAX], *slash;
	struct statvfs sv;
	int fd, e;

	if (reserve_path(st, path, sizeof(path)) == -1) {
		store_setmsg(&st->base, "reserve: the store has no file name");
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
		store_setmsg(&st->base, "reserve %s: %s", path, strerror(errno));
		return -1;
	}
	if ((e = posix_fallocate(fd, 0, (off_t)STORE_RESERVE_SIZE)) != 0 || fsync(fd) == -1) {
		if (e == 0)
			e = errno;
		close(fd);
		(void)unlink(path);
		if (e == ENOSPC || e == EDQUOT)
			return 0;
		store_setmsg(&st->base, "reserve %s: %s", path, strerror(e));
		return -1;
	}
	close(fd);
	return 1;
}

int
store_reserve_release(struct store_sqlite *st)
{
	char path[STORE_PATH_MAX];

	if (reserve_path(st, path, sizeof(path)) == -1 || unlink(path) == -1)
		return -1;
	st->reserve_released = true;
	return 0;
}

bool
sqlite_reserve_released(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
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
 * The session log's page size, for a new file. Its tables grow at their
 * right edge, a batch of sessions at a time, and each batch rewrote the
 * last pages of seven B-trees: 16 KB pages take the same rows in a quarter
 * of the WAL frames (SQLite writes a frame's header and page apart). Under
 * 20 senders its thread went from 10-12 to 8-9 us of CPU a message
 * (docs/PERFORMANCE.md, stop 16). The store keeps SQLite's 4 KB: its
 * commits touch pages all over (recipients' mailboxes, indexes), and 8 or
 * 16 KB pages doubled the writer's system time. A file made before keeps
 * its size (SQLite fixes it at the first page; VACUUM changes it).
 */
#define STORE_LOG_PAGE_SIZE	16384

/* A file's schema: its migrations and the marker its first one writes. */
struct schema {
	const char *const *migrations;
	const char	*format;	/* correio_meta 'format' */
	const char	*what;		/* for messages */
	int		 page_size;	/* of a new file; 0: SQLite's own (4096) */
};
static const struct schema schema_store = {
	store_schema_migrations, STORE_FORMAT, "store", 0
};
static const struct schema schema_log = {
	store_log_schema_migrations, STORE_LOG_FORMAT, "session log", STORE_LOG_PAGE_SIZE
};

static int
schema_latest(const struct schema *sc)
{
	return (int)(sc == &schema_store ? store_schema_count : store_log_schema_count);
}

/*
 * Is this file ours? A file without tables (new or empty) is, and so is one
 * with our marker and a schema version we know. Anything else is refused
 * before we change a byte of it. *version_r is its user_version.
 */
static int
store_check(sqlite3 *db, const char *path, const struct schema *sc, int *version_r,
    char *err, size_t errlen)
{
	int version, ntables, marker, latest = schema_latest(sc);
	char sql[STORE_PRAGMA_MAX * 2];

	if (query_int(db, "PRAGMA user_version", &version) == -1 ||
	    query_int(db, "SELECT count(*) FROM sqlite_master", &ntables) == -1) {
		snprintf(err, errlen, "%s: %s%s", path, sqlite3_errmsg(db),
		    (sqlite3_errcode(db) & 0xff) == SQLITE_NOTADB ? " (not a correio store)" : "");
		return -1;
	}
	if (version == 0 && ntables > 0) {
		snprintf(err, errlen, "%s: not a correio %s (it holds %d tables or indexes "
		    "of another program; refusing to touch it)", path, sc->what, ntables);
		return -1;
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM correio_meta WHERE key = 'format'"
	    " AND value = '%s'", sc->format);
	if (version > 0) {
		if (query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
		    " AND name = 'correio_meta'", &marker) == -1 || marker == 0 ||
		    query_int(db, sql, &marker) == -1 || marker == 0) {
			snprintf(err, errlen, "%s: not a correio %s (schema version %d "
			    "without the correio marker)", path, sc->what, version);
			return -1;
		}
	}
	if (version > latest) {
		snprintf(err, errlen, "%s: %s schema version %d is newer than this "
		    "program knows (%d); upgrade correio", path, sc->what, version, latest);
		return -1;
	}
	*version_r = version;
	return 0;
}

/*
 * Bring the schema up to version upto (the latest when larger) inside one
 * IMMEDIATE transaction, checking again under the lock, so that two programs
 * opening a new store at once do not both migrate it.
 */
static int
store_migrate(sqlite3 *db, const char *path, const struct schema *sc, int upto,
    char *err, size_t errlen)
{
	int version, latest = schema_latest(sc);
	char sql[STORE_PRAGMA_MAX];

	if (upto < latest)
		latest = upto;
	if (exec_sql(db, "BEGIN IMMEDIATE", err, errlen, path) == -1)
		return -1;
	if (store_check(db, path, sc, &version, err, errlen) == -1)
		goto fail;
	for (; version < latest; version++) {
		if (exec_sql(db, sc->migrations[version], err, errlen,
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

/*
 * Open path with SQLite: created owner-only when missing, extended result
 * codes, the busy timeout, checked as ours (sc), WAL. Migrations are the
 * caller's.
 */
static int
db_open(sqlite3 **db_r, const char *path, const struct schema *sc, int *version_r,
    char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int fd, saved, rc;

	*db_r = NULL;
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
	pthread_once(&sqlite_config_once, sqlite_config);
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
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db && sqlite3_system_errno(db) ?
		    strerror(sqlite3_system_errno(db)) : db ? sqlite3_errmsg(db) :
		    sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);

	/* Refuse a file that is not ours before changing anything in it. One
	 * read transaction, so that another program creating the schema at
	 * this moment is seen either before or after, never half-way. */
	if (exec_sql(db, "BEGIN", err, errlen, path) == -1)
		goto fail;
	rc = store_check(db, path, sc, version_r, err, errlen);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc == -1)
		goto fail;
	/* Before the first page is written, and before WAL (which fixes the
	 * page size); SQLite ignores it for a file that has pages. */
	if (sc->page_size > 0) {
		char sql[STORE_PRAGMA_MAX];

		snprintf(sql, sizeof(sql), "PRAGMA page_size = %d", sc->page_size);
		if (exec_sql(db, sql, err, errlen, path) == -1)
			goto fail;
	}
	if (store_wal(db, path, err, errlen) == -1)
		goto fail;
	*db_r = db;
	return 0;
fail:
	sqlite3_close(db);
	return -1;
}

/* Prepare the statements that run on db: the session log's, or the rest. */
static int
prepare(struct store_sqlite *st, sqlite3 *db, bool log, const char *path, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < ST_COUNT; i++) {
		if ((bool)ST_IS_LOG(i) != log)
			continue;
		if (sqlite3_prepare_v3(db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &st->stmt[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: preparing statement %d: %s", path, i,
			    sqlite3_errmsg(db));
			return -1;
		}
	}
	return 0;
}

static int
log_open(struct store_sqlite *st, char *err, size_t errlen)
{
	int version;

	if (db_open(&st->logdb, st->logpath, &schema_log, &version, err, errlen) == -1)
		return -1;
	/* Lab data, not mail: a commit need not wait for the disk. */
	if (exec_sql(st->logdb, "PRAGMA synchronous = NORMAL;", err, errlen, st->logpath) == -1 ||
	    store_migrate(st->logdb, st->logpath, &schema_log, INT_MAX, err, errlen) == -1 ||
	    prepare(st, st->logdb, true, st->logpath, err, errlen) == -1)
		return -1;
	return 0;
}

int
sqlite_log_ready(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
	char err[STORE_ERR_MAX];

	if (st->logdb != NULL)
		return 0;
	if (log_open(st, err, sizeof(err)) == -1) {
		store_setmsg(&st->base, "session log: %s", err);
		for (int i = 0; i < ST_COUNT; i++)
			if (ST_IS_LOG(i) && st->stmt[i] != NULL) {
				sqlite3_finalize(st->stmt[i]);
				st->stmt[i] = NULL;
			}
		sqlite3_close(st->logdb);
		st->logdb = NULL;
		return -1;
	}
	return 0;
}

/*
 * Stores before STORE_LOG_MOVED kept the session log in their own file: copy
 * it to the log's file before the migration drops it. Idempotent (a crash
 * between the copy and the drop copies again over the same keys), and a
 * program that finds the tables already dropped by another copies nothing.
 */
static int
log_move(struct store_sqlite *st, const char *path, char *err, size_t errlen)
{
	static const char copy[] =
	    "INSERT OR IGNORE INTO main.sessions SELECT * FROM old.sessions;"
	    "INSERT OR IGNORE INTO main.session_accounts SELECT * FROM old.session_accounts;"
	    "INSERT OR IGNORE INTO main.transcripts(session_id, seq, proto, lines, time)"
	    "  SELECT session_id, seq, proto, line, time FROM old.transcripts"
	    "  ORDER BY session_id, seq;";
	sqlite3_stmt *s;
	int there = 0, rc;

	if (sqlite_log_ready(&st->base) == -1) {
		snprintf(err, errlen, "%s", st->base.err);
		return -1;
	}
	if (sqlite3_prepare_v2(st->logdb, "ATTACH DATABASE ?1 AS old", -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", st->logpath, sqlite3_errmsg(st->logdb));
		return -1;
	}
	sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(st->logdb));
		return -1;
	}
	rc = exec_sql(st->logdb, "BEGIN", err, errlen, st->logpath);
	if (rc == 0)
		rc = query_int(st->logdb, "SELECT count(*) FROM old.sqlite_master"
		    " WHERE type = 'table' AND name = 'sessions'", &there) == 0 ? 0 : -1;
	if (rc == 0 && there)
		rc = exec_sql(st->logdb, copy, err, errlen, "moving the session log");
	if (rc == 0)
		rc = exec_sql(st->logdb, "COMMIT", err, errlen, st->logpath);
	if (rc == -1)
		sqlite3_exec(st->logdb, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(st->logdb, "DETACH DATABASE old", NULL, NULL, NULL);
	return rc;
}

static void sqlite_close(struct store *base);

static int
sqlite_open(struct store **st_r, const char *path, char *err, size_t errlen)
{
	struct store_sqlite *st;
	int version, i;

	*st_r = NULL;
	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "no store path given");
		return -1;
	}
	if ((st = calloc(1, sizeof(*st))) != NULL)
		st->base.ops = &store_sqlite_ops;
	if (st == NULL || asprintf(&st->logpath, "%s%s", path, STORE_LOG_SUFFIX) == -1) {
		free(st);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	for (i = 0; i < STORE_BLOBS; i++)
		st->blobs[i].fd = -1;		/* no body file open */
	st->bodies_fd = -1;
	if (db_open(&st->db, path, &schema_store, &version, err, errlen) == -1)
		goto fail;
	/* Migrations run with the foreign keys off: one rebuilds a table that
	 * others reference (version 7), which they would forbid. */
	if (exec_sql(st->db, "PRAGMA synchronous = FULL;", err, errlen, path) == -1)
		goto fail;
	if (version > 0 && version < STORE_LOG_MOVED) {
		/* up to the move, then the move, then the rest */
		if (store_migrate(st->db, path, &schema_store, STORE_LOG_MOVED - 1,
		    err, errlen) == -1 || log_move(st, path, err, errlen) == -1)
			goto fail;
	}
	if (store_migrate(st->db, path, &schema_store, INT_MAX, err, errlen) == -1 ||
	    exec_sql(st->db, "PRAGMA foreign_keys = ON;", err, errlen, path) == -1)
		goto fail;

	store_files_init(st);
	sqlite3_commit_hook(st->db, store_commit_hook, st);
	if (bodies_init(st, path) == -1) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}

	if (prepare(st, st->db, false, path, err, errlen) == -1)
		goto fail;
	*st_r = &st->base;
	return 0;
fail:
	if (st != NULL)
		sqlite_close(&st->base);
	return -1;
}

static void
sqlite_close(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
	int i;

	store_blobs_release(st);
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->logdb);
	/*
	 * The database file at the path is not ours any more: closing the last
	 * connection would checkpoint into the unlinked file and then delete
	 * the -wal and -shm by name, those of the new store at that path.
	 * Skip the checkpoint (SQLite then deletes nothing). SQLite 3.40 skips
	 * it by itself for a moved database (the pager's databaseIsUnmoved());
	 * said here so as not to depend on that.
	 */
	if (st->db != NULL && st->files[STORE_F_DB].known && !file_at_path(&st->files[STORE_F_DB]))
		sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_close(st->db);
	store_files_release(st);
	bodies_free(st);
	free(st->logpath);
	free(st);
}

int
sqlite_schema_version(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
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
sqlite_map_bodies(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
	char sql[STORE_PRAGMA_MAX];

	snprintf(sql, sizeof(sql), "PRAGMA mmap_size = %lld", (long long)STORE_MMAP_SIZE);
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		store_seterr(st, "mmap_size");
		return -1;
	}
	return 0;
}

int
sqlite_schema_latest(void)
{
	return schema_latest(&schema_store);
}

const struct store_ops store_sqlite_ops = {
	.name			= "sqlite",
	.open			= sqlite_open,
	.close			= sqlite_close,
	.file_check		= sqlite_file_check,
	.schema_version		= sqlite_schema_version,
	.schema_latest		= sqlite_schema_latest,
	.reserve_make		= sqlite_reserve_make,
	.reserve_released	= sqlite_reserve_released,
	.map_bodies		= sqlite_map_bodies,
	.snapshot_begin		= sqlite_snapshot_begin,
	.snapshot_end		= sqlite_snapshot_end,
	.defer_checkpoints	= sqlite_defer_checkpoints,
	.checkpoint		= sqlite_checkpoint,
	.tidy			= sqlite_tidy,

	.user_add		= sqlite_user_add,
	.user_del		= sqlite_user_del,
	.user_set_hash		= sqlite_user_set_hash,
	.user_get_hash		= sqlite_user_get_hash,
	.user_list		= sqlite_user_list,
	.domain_add		= sqlite_domain_add,
	.domain_del		= sqlite_domain_del,
	.domain_list		= sqlite_domain_list,
	.domain_lookup		= sqlite_domain_lookup,
	.alias_add		= sqlite_alias_add,
	.alias_del		= sqlite_alias_del,
	.alias_list		= sqlite_alias_list,
	.resolve_all		= sqlite_resolve_all,

	.delivery_commit_batch	= sqlite_delivery_commit_batch,

	.mailbox_lock		= sqlite_mailbox_lock,
	.mailbox_touch		= sqlite_mailbox_touch,
	.mailbox_unlock		= sqlite_mailbox_unlock,
	.mailbox_list		= sqlite_mailbox_list,
	.msg_read		= sqlite_msg_read,
	.read_done		= sqlite_read_done,
	.mailbox_expunge	= sqlite_mailbox_expunge,
	.mailbox_entry		= sqlite_mailbox_entry,

	.queue_list		= sqlite_queue_list,
	.queue_defer		= sqlite_queue_defer,
	.queue_delete		= sqlite_queue_delete,
	.queue_flush		= sqlite_queue_flush,
	.queue_clamp		= sqlite_queue_clamp,
	.queue_max_id		= sqlite_queue_max_id,
	.queue_claim		= sqlite_queue_claim,
	.queue_release		= sqlite_queue_release,
	.message_read		= sqlite_message_read,
	.message_size		= sqlite_message_size,

	.user_set_teacher	= sqlite_user_set_teacher,
	.user_is_teacher	= sqlite_user_is_teacher,
	.websession_add		= sqlite_websession_add,
	.websession_get		= sqlite_websession_get,
	.websession_del		= sqlite_websession_del,
	.token_add		= sqlite_token_add,
	.token_get		= sqlite_token_get,

	.transcript_append	= sqlite_transcript_append,
	.transcript_get		= sqlite_transcript_get,
	.log_ready		= sqlite_log_ready,
	.sesslog_apply		= sqlite_sesslog_apply,
	.session_list		= sqlite_session_list,
	.session_get		= sqlite_session_get,
	.session_involves	= sqlite_session_involves,

	.copy_count		= sqlite_copy_count,
	.dump			= sqlite_dump,
	.load_begin		= sqlite_load_begin,
	.load_record		= sqlite_load_record,
	.load_end		= sqlite_load_end,
};
