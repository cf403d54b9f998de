/*
 * store.c - the SQLite store: the only file in correio that holds SQL.
 *
 * Every statement lives in one enum -> SQL table, is prepared once at
 * store_open(), reset and its bindings cleared after every use, and
 * finalized at store_close(). Pragmas: WAL, foreign_keys=ON,
 * synchronous=FULL (a commit is on disk before it returns), busy_timeout so
 * that smtpd, pop3d and mailcli share one file. Schema migrations
 * (store_schema.c) are applied forward by PRAGMA user_version on open.
 * Deliveries are all or nothing (RFC 5321 6.1: a 250 after DATA means the
 * message is safely stored); a batch shares one transaction and one fsync.
 * Message bodies are read with incremental blob I/O, never whole.
 * Never: SQL outside this file, plaintext passwords, partial deliveries.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

#define STORE_BUSY_TIMEOUT_MS	10000	/* wait this long for another writer */
#define STORE_BODY_MAX		((size_t)1 << 30)	/* = max of max_message_size */
#define STORE_FORMAT		"correio-store"

enum store_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,

	ST_USER_ADD,
	ST_USER_DEL,
	ST_USER_SET_HASH,
	ST_USER_GET_HASH,
	ST_USER_LIST,
	ST_USER_NAME,
	ST_LOCK_DEL_ACCOUNT,
	ST_ORPHANS_DEL,

	ST_DOMAIN_ADD,
	ST_DOMAIN_DEL,
	ST_DOMAIN_LIST,
	ST_DOMAIN_GET,
	ST_DOMAIN_ALIASES_DEL,

	ST_ALIAS_ADD,
	ST_ALIAS_DEL,
	ST_ALIAS_LIST,
	ST_ALIAS_GET,
	ST_FIRST_ACCOUNT,

	ST_MSG_ADD,
	ST_ENTRY_ADD,
	ST_QUEUE_ADD,

	ST_LOCK_TAKE,
	ST_LOCK_TOUCH,
	ST_LOCK_DEL,
	ST_LOCK_OWNER,
	ST_MAILBOX_LIST,
	ST_ENTRY_MESSAGE,
	ST_ENTRY_DEL,
	ST_MSG_DEL_IF_ORPHAN,
	ST_MSG_SIZE,

	ST_QUEUE_LIST,
	ST_QUEUE_DEFER,
	ST_QUEUE_GET,
	ST_QUEUE_DEL,
	ST_QUEUE_FLUSH,

	ST_TRANSCRIPT_SEQ,
	ST_TRANSCRIPT_ADD,
	ST_TRANSCRIPT_GET,

	ST_USER_VERSION,

	ST_COUNT
};

static const char *const store_sql[ST_COUNT] = {
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
	[ST_ALIAS_LIST]		= "SELECT al.address, a.name FROM aliases al"
				  " JOIN accounts a ON a.id = al.account ORDER BY al.address",
	[ST_FIRST_ACCOUNT]	= "SELECT name FROM accounts WHERE ?1 = ?1 ORDER BY id LIMIT 1",
	[ST_ALIAS_GET]		= "SELECT a.name FROM aliases al JOIN accounts a ON a.id = al.account"
				  " WHERE al.address = ?1",

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

	[ST_TRANSCRIPT_SEQ]	= "SELECT coalesce(max(seq), 0) FROM transcripts WHERE session_id = ?1",
	[ST_TRANSCRIPT_ADD]	= "INSERT INTO transcripts(session_id, seq, proto, line, time)"
				  " VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_TRANSCRIPT_GET]	= "SELECT line FROM transcripts WHERE session_id = ?1 ORDER BY seq",

	[ST_USER_VERSION]	= "PRAGMA user_version",
};

/*
 * Open message blobs kept between store_msg_read() calls. SQLite reaches an
 * offset in a large blob by walking its chain of overflow pages, which an
 * open handle remembers: reopening for every chunk would make reading a
 * message quadratic (25 MiB in 16 KiB chunks: 10 s instead of 0.05 s). An
 * open blob holds a read transaction, so every other store call releases
 * them all first (see stmt()), and a blob read to its end is released.
 */
#define STORE_BLOBS	4	/* messages streamed at once on one handle */

struct store_blob {
	sqlite3_blob	*blob;
	int64_t		 key;		/* mailbox entry id, or -message id */
	int		 size;
	unsigned	 used;		/* LRU clock */
};

struct store {
	sqlite3		*db;
	sqlite3_stmt	*stmt[ST_COUNT];
	struct store_blob blobs[STORE_BLOBS];
	unsigned	 clock;
	char		 err[512];
};

/* Serializes the creation of new store files in this process (store_open). */
static pthread_mutex_t store_create_mutex = PTHREAD_MUTEX_INITIALIZER;

struct store_delivery {
	char		 sender[STORE_ADDR_MAX + 1];
	char		 session_id[64];
	char		(*rcpts)[STORE_NAME_MAX + 1];	/* local accounts */
	size_t		 nrcpts;
	char		(*remotes)[STORE_ADDR_MAX + 1];	/* outbound queue */
	size_t		 nremotes;
	unsigned char	*body;
	size_t		 len, cap;
	int64_t		 id;				/* message id after commit */
};

/* ---- helpers ------------------------------------------------------------ */

static void
store_seterr(struct store *st, const char *what)
{
	snprintf(st->err, sizeof(st->err), "%s: %s", what, sqlite3_errmsg(st->db));
}

static void
store_setmsg(struct store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
store_setmsg(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

static void
blobs_release(struct store *st)
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
static sqlite3_stmt *
stmt(struct store *st, enum store_stmt id)
{
	assert(id < ST_COUNT && st->stmt[id] != NULL);
	blobs_release(st);
	return st->stmt[id];
}

/* Same, keeping the open blobs: only for reads inside their snapshot. */
static sqlite3_stmt *
stmt_keep_blobs(struct store *st, enum store_stmt id)
{
	assert(id < ST_COUNT && st->stmt[id] != NULL);
	return st->stmt[id];
}

static bool
blobs_open(const struct store *st)
{
	size_t i;

	for (i = 0; i < STORE_BLOBS; i++)
		if (st->blobs[i].blob != NULL)
			return true;
	return false;
}

/* Every use of a statement ends here: reset and clear its bindings. */
static void
done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a bound statement that returns no rows and reset it. Returns 0 or -1
 * (error recorded as "what"). */
static int
step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		store_seterr(st, what);
	done(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Run a statement that returns no rows. Returns 0 or -1 (error recorded). */
static int
exec_stmt(struct store *st, enum store_stmt id, const char *what)
{
	sqlite3_stmt *s = stmt(st, id);
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_seterr(st, what);
		done(s);
		return -1;
	}
	done(s);
	return 0;
}

static int
store_begin(struct store *st)
{
	return exec_stmt(st, ST_BEGIN, "begin transaction");
}

static int
store_commit(struct store *st)
{
	if (exec_stmt(st, ST_COMMIT, "commit") == -1) {
		if (!sqlite3_get_autocommit(st->db))
			exec_stmt(st, ST_ROLLBACK, "rollback");
		return -1;
	}
	return 0;
}

static void
store_rollback(struct store *st)
{
	char keep[sizeof(st->err)];

	if (sqlite3_get_autocommit(st->db))
		return;		/* SQLite already rolled back */
	memcpy(keep, st->err, sizeof(keep));
	exec_stmt(st, ST_ROLLBACK, "rollback");
	memcpy(st->err, keep, sizeof(keep));
}

static int64_t
now_unix(void)
{
	return (int64_t)time(NULL);
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
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
static int
lookup_text(struct store *st, enum store_stmt id, const char *key, char *dst, size_t len)
{
	sqlite3_stmt *s = stmt(st, id);
	int rc, ret;

	bind_text(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		ret = copy_out(st, sqlite3_column_text(s, 0), dst, len);
	else if (rc == SQLITE_DONE)
		ret = STORE_NOTFOUND;
	else {
		store_seterr(st, "lookup");
		ret = -1;
	}
	done(s);
	return ret;
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
	char sql[64];

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
	char mode[16];
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
	blobs_release(st);
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
	sqlite3_stmt *s = stmt(st, ST_USER_VERSION);
	int v = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	else
		store_seterr(st, "schema version");
	done(s);
	return v;
}

int
store_schema_latest(void)
{
	return (int)store_schema_count;
}

/* ---- accounts, domains, aliases ---------------------------------------- */

static bool
is_constraint(struct store *st)
{
	return (sqlite3_errcode(st->db) & 0xff) == SQLITE_CONSTRAINT;
}

/* Run a bound INSERT and reset it: 0, STORE_EXISTS when a unique key is
 * taken ("NOUN NAME already exists"), or -1 (error recorded as "add NOUN"). */
static int
step_insert(struct store *st, sqlite3_stmt *s, const char *noun, const char *name)
{
	int rc = sqlite3_step(s);

	done(s);
	if (rc == SQLITE_DONE)
		return 0;
	if (is_constraint(st)) {
		store_setmsg(st, "%s %s already exists", noun, name);
		return STORE_EXISTS;
	}
	store_setmsg(st, "add %s: %s", noun, sqlite3_errmsg(st->db));
	return -1;
}

int
store_user_add(struct store *st, const char *name, const char *hash)
{
	sqlite3_stmt *s = stmt(st, ST_USER_ADD);

	if (strlen(name) == 0 || strlen(name) > STORE_NAME_MAX) {
		store_setmsg(st, "account name must have 1 to %d characters", STORE_NAME_MAX);
		return -1;
	}
	bind_text(s, 1, name);
	bind_text(s, 2, hash);
	sqlite3_bind_int64(s, 3, now_unix());
	return step_insert(st, s, "account", name);
}

int
store_user_del(struct store *st, const char *name)
{
	sqlite3_stmt *s;
	int changed;

	if (store_begin(st) == -1)
		return -1;
	s = stmt(st, ST_USER_DEL);
	bind_text(s, 1, name);
	if (step_done(st, s, "delete account") == -1)
		goto fail;
	changed = sqlite3_changes(st->db);
	if (changed == 0) {
		store_rollback(st);
		store_setmsg(st, "no account %s", name);
		return STORE_NOTFOUND;
	}
	/* Mailbox entries and aliases went with the account (ON DELETE
	 * CASCADE); drop the messages nobody references any more. */
	s = stmt(st, ST_LOCK_DEL_ACCOUNT);
	bind_text(s, 1, name);
	if (step_done(st, s, "delete lock") == -1)
		goto fail;
	if (exec_stmt(st, ST_ORPHANS_DEL, "delete messages") == -1)
		goto fail;
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int
store_user_set_hash(struct store *st, const char *name, const char *hash)
{
	sqlite3_stmt *s = stmt(st, ST_USER_SET_HASH);

	bind_text(s, 1, name);
	bind_text(s, 2, hash);
	if (step_done(st, s, "set password") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		store_setmsg(st, "no account %s", name);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
store_user_get_hash(struct store *st, const char *name, char *hash_r, size_t len)
{
	int rc = lookup_text(st, ST_USER_GET_HASH, name, hash_r, len);

	if (rc == STORE_NOTFOUND)
		store_setmsg(st, "no account %s", name);
	return rc;
}

/* Run a listing statement, calling cb with columns 0 and 1 (NULL if absent). */
static int
list_rows(struct store *st, enum store_stmt id, store_list_cb *cb, void *arg)
{
	sqlite3_stmt *s = stmt(st, id);
	int rc, ncol = sqlite3_column_count(s);

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cb(arg, (const char *)sqlite3_column_text(s, 0),
		    ncol > 1 ? (const char *)sqlite3_column_text(s, 1) : NULL);
	done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "list");
		return -1;
	}
	return 0;
}

int
store_user_list(struct store *st, store_list_cb *cb, void *arg)
{
	return list_rows(st, ST_USER_LIST, cb, arg);
}

int
store_domain_add(struct store *st, const char *domain)
{
	sqlite3_stmt *s = stmt(st, ST_DOMAIN_ADD);

	if (strlen(domain) == 0 || strlen(domain) > 255) {
		store_setmsg(st, "a domain has 1 to 255 characters");
		return -1;
	}
	bind_text(s, 1, domain);
	sqlite3_bind_int64(s, 2, now_unix());
	return step_insert(st, s, "domain", domain);
}

int
store_domain_del(struct store *st, const char *domain)
{
	sqlite3_stmt *s;

	if (store_begin(st) == -1)
		return -1;
	s = stmt(st, ST_DOMAIN_DEL);
	bind_text(s, 1, domain);
	if (step_done(st, s, "delete domain") == -1)
		goto fail;
	if (sqlite3_changes(st->db) == 0) {
		store_rollback(st);
		store_setmsg(st, "no domain %s", domain);
		return STORE_NOTFOUND;
	}
	/* Aliases "x@domain" served nothing any more: they go too. */
	s = stmt(st, ST_DOMAIN_ALIASES_DEL);
	bind_text(s, 1, domain);
	if (step_done(st, s, "delete the domain's aliases") == -1)
		goto fail;
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int
store_domain_list(struct store *st, store_list_cb *cb, void *arg)
{
	return list_rows(st, ST_DOMAIN_LIST, cb, arg);
}

bool
store_domain_is_local(struct store *st, const char *domain)
{
	sqlite3_stmt *s;
	int rc;

	if (domain == NULL || *domain == '\0')
		return false;
	s = stmt(st, ST_DOMAIN_GET);
	bind_text(s, 1, domain);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_seterr(st, "domain lookup");
	done(s);
	return rc == SQLITE_ROW;
}

int
store_alias_add(struct store *st, const char *address, const char *account)
{
	sqlite3_stmt *s = stmt(st, ST_ALIAS_ADD);
	int rc;

	if (strlen(address) == 0 || strlen(address) > STORE_ADDR_MAX) {
		store_setmsg(st, "an alias has 1 to %d characters", STORE_ADDR_MAX);
		return -1;
	}
	bind_text(s, 1, address);
	bind_text(s, 2, account);
	sqlite3_bind_int64(s, 3, now_unix());
	/* the INSERT ... SELECT adds nothing when the account does not exist */
	if ((rc = step_insert(st, s, "alias", address)) == 0 && sqlite3_changes(st->db) == 0) {
		store_setmsg(st, "no account %s", account);
		return STORE_NOTFOUND;
	}
	return rc;
}

int
store_alias_del(struct store *st, const char *address)
{
	sqlite3_stmt *s = stmt(st, ST_ALIAS_DEL);

	bind_text(s, 1, address);
	if (step_done(st, s, "delete alias") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		store_setmsg(st, "no alias %s", address);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
store_alias_list(struct store *st, store_list_cb *cb, void *arg)
{
	return list_rows(st, ST_ALIAS_LIST, cb, arg);
}

int
store_resolve(struct store *st, const char *local, const char *domain,
    char *account_r, size_t len)
{
	char addr[STORE_ADDR_MAX + 2];
	int rc;

	if (local == NULL || *local == '\0') {
		store_setmsg(st, "empty local part");
		return STORE_NOTFOUND;
	}
	if (domain != NULL && *domain != '\0') {
		if (snprintf(addr, sizeof(addr), "%s@%s", local, domain) >= (int)sizeof(addr)) {
			store_setmsg(st, "address too long");
			return STORE_NOTFOUND;
		}
		rc = lookup_text(st, ST_ALIAS_GET, addr, account_r, len);
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	rc = lookup_text(st, ST_ALIAS_GET, local, account_r, len);
	if (rc != STORE_NOTFOUND)
		return rc;
	rc = lookup_text(st, ST_USER_NAME, local, account_r, len);
	/* RFC 5321 4.5.1: postmaster must always be accepted. Without an
	 * alias or an account of that name, it reaches the first account
	 * created (as postmaster reaches root on a Unix host). */
	if (rc == STORE_NOTFOUND && strcasecmp(local, "postmaster") == 0)
		rc = lookup_text(st, ST_FIRST_ACCOUNT, local, account_r, len);
	if (rc == STORE_NOTFOUND)
		store_setmsg(st, "no account or alias %s", local);
	return rc;
}

/* ---- deliveries --------------------------------------------------------- */

struct store_delivery *
store_delivery_new(const char *sender, const char *session_id)
{
	struct store_delivery *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	snprintf(d->sender, sizeof(d->sender), "%s", sender ? sender : "");
	snprintf(d->session_id, sizeof(d->session_id), "%s", session_id ? session_id : "");
	d->id = -1;
	return d;
}

/*
 * Append s (1 to width - 1 characters) to arr, an array of n strings of
 * width bytes each, unless cmp finds it there already. Returns 1 with the
 * grown array in *grown_r, 0 when s was there, -1 (too long, no memory).
 * UNSAFE: n is bounded by the caller's max_recipients.
 */
static int
add_unique(void *arr, size_t n, size_t width, const char *s,
    int (*cmp)(const char *, const char *), void **grown_r)
{
	char *p = arr;
	size_t i, len = strlen(s);

	if (len == 0 || len >= width)
		return -1;
	for (i = 0; i < n; i++)
		if (cmp(p + i * width, s) == 0)
			return 0;
	if ((p = reallocarray(arr, n + 1, width)) == NULL)
		return -1;
	memcpy(p + n * width, s, len + 1);
	*grown_r = p;
	return 1;
}

int
store_delivery_add_rcpt(struct store_delivery *d, const char *account)
{
	void *p;
	int r = add_unique(d->rcpts, d->nrcpts, sizeof(*d->rcpts), account, strcasecmp, &p);

	if (r == 1) {
		d->rcpts = p;
		d->nrcpts++;
	}
	return r == -1 ? -1 : 0;
}

int
store_delivery_add_remote(struct store_delivery *d, const char *address)
{
	void *p;
	int r = add_unique(d->remotes, d->nremotes, sizeof(*d->remotes), address, strcmp, &p);

	if (r == 1) {
		d->remotes = p;
		d->nremotes++;
	}
	return r == -1 ? -1 : 0;
}

int
store_delivery_body(struct store_delivery *d, const void *p, size_t n)
{
	size_t ncap;
	unsigned char *nb;

	if (n == 0)
		return 0;
	if (n > STORE_BODY_MAX - d->len)
		return -1;
	if (d->len + n > d->cap) {
		ncap = d->cap ? d->cap : 16384;
		while (ncap < d->len + n)
			ncap *= 2;	/* UNSAFE: bounded by STORE_BODY_MAX above */
		if ((nb = realloc(d->body, ncap)) == NULL)
			return -1;
		d->body = nb;
		d->cap = ncap;
	}
	memcpy(d->body + d->len, p, n);
	d->len += n;
	return 0;
}

size_t
store_delivery_size(const struct store_delivery *d)
{
	return d->len;
}

int64_t
store_delivery_id(const struct store_delivery *d)
{
	return d->id;
}

void
store_delivery_free(struct store_delivery **dp)
{
	struct store_delivery *d = *dp;

	if (d == NULL)
		return;
	free(d->rcpts);
	free(d->remotes);
	free(d->body);
	free(d);
	*dp = NULL;
}

/* Write one delivery inside the current transaction. 0 or -1. */
static int
delivery_write(struct store *st, struct store_delivery *d)
{
	sqlite3_stmt *s;
	int64_t id, now = now_unix();
	size_t i;

	if (d->nrcpts == 0 && d->nremotes == 0) {
		store_setmsg(st, "delivery without recipients");
		return -1;
	}
	s = stmt(st, ST_MSG_ADD);
	if (d->len == 0)
		sqlite3_bind_zeroblob(s, 1, 0);
	else
		sqlite3_bind_blob64(s, 1, d->body, d->len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)d->len);
	bind_text(s, 3, d->sender);
	bind_text(s, 4, d->session_id);
	sqlite3_bind_int64(s, 5, now);
	if (step_done(st, s, "store message") == -1)
		return -1;
	id = sqlite3_last_insert_rowid(st->db);

	for (i = 0; i < d->nrcpts; i++) {
		s = stmt(st, ST_ENTRY_ADD);
		bind_text(s, 1, d->rcpts[i]);
		sqlite3_bind_int64(s, 2, id);
		sqlite3_bind_int64(s, 3, (int64_t)d->len);
		sqlite3_bind_int64(s, 4, now);
		if (sqlite3_step(s) != SQLITE_DONE) {
			snprintf(st->err, sizeof(st->err), "deliver to %s: %s", d->rcpts[i],
			    is_constraint(st) ? "no such account" : sqlite3_errmsg(st->db));
			done(s);
			return -1;
		}
		done(s);
	}
	for (i = 0; i < d->nremotes; i++) {
		s = stmt(st, ST_QUEUE_ADD);
		sqlite3_bind_int64(s, 1, id);
		bind_text(s, 2, d->sender);
		bind_text(s, 3, d->remotes[i]);
		sqlite3_bind_int64(s, 4, now);
		if (step_done(st, s, "queue message") == -1)
			return -1;
	}
	d->id = id;
	return 0;
}

int
store_delivery_commit(struct store *st, struct store_delivery *d)
{
	d->id = -1;
	if (store_begin(st) == -1)
		return -1;
	if (delivery_write(st, d) == -1) {
		store_rollback(st);
		d->id = -1;
		return -1;
	}
	if (store_commit(st) == -1) {
		d->id = -1;
		return -1;
	}
	return 0;
}

int
store_delivery_commit_batch(struct store *st, struct store_delivery **ds,
    size_t n, int *result)
{
	size_t i;

	for (i = 0; i < n; i++) {
		result[i] = -1;
		ds[i]->id = -1;
	}
	if (n == 0)
		return 0;
	if (store_begin(st) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (exec_stmt(st, ST_SAVEPOINT, "savepoint") == -1)
			goto fail;
		if (delivery_write(st, ds[i]) == 0) {
			if (exec_stmt(st, ST_RELEASE, "release savepoint") == -1)
				goto fail;
			result[i] = 0;
		} else {
			ds[i]->id = -1;
			/* Undo this delivery alone; the others stay. */
			if (sqlite3_get_autocommit(st->db) ||
			    exec_stmt(st, ST_ROLLBACK_TO, "rollback to savepoint") == -1 ||
			    exec_stmt(st, ST_RELEASE, "release savepoint") == -1)
				goto fail;
		}
	}
	if (store_commit(st) == -1)
		goto lost;
	return 0;
fail:
	store_rollback(st);
lost:
	for (i = 0; i < n; i++) {
		result[i] = -1;
		ds[i]->id = -1;
	}
	return -1;
}

/* ---- mailboxes ---------------------------------------------------------- */

void
store_lock_owner(char *dst, size_t len, const char *tag)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(dst, len, "%s/%ld/%s", host, (long)getpid(), tag);
}

/*
 * True when owner ("HOST/PID/tag", see store_lock_owner) names a process of
 * this host that no longer exists: a pop3d that crashed or was killed.
 */
static bool
lock_owner_is_dead(const char *owner)
{
	char host[256], mine[256];
	const char *slash;
	char *end;
	long pid;

	if ((slash = strchr(owner, '/')) == NULL || (size_t)(slash - owner) >= sizeof(host))
		return false;
	memcpy(host, owner, (size_t)(slash - owner));
	host[slash - owner] = '\0';
	if (gethostname(mine, sizeof(mine)) != 0 || strcmp(host, mine) != 0)
		return false;
	errno = 0;
	pid = strtol(slash + 1, &end, 10);
	if (errno != 0 || end == slash + 1 || *end != '/' || pid <= 0 || pid > INT32_MAX)
		return false;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

/* One attempt at taking the lock: 0, STORE_LOCKED or -1. */
static int
lock_take(struct store *st, const char *account, const char *owner, long ttl)
{
	sqlite3_stmt *s = stmt(st, ST_LOCK_TAKE);
	int64_t now = now_unix();

	bind_text(s, 1, account);
	bind_text(s, 2, owner);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, now - ttl);
	if (step_done(st, s, "lock mailbox") == -1)
		return -1;
	return sqlite3_changes(st->db) == 0 ? STORE_LOCKED : 0;
}

int
store_mailbox_lock(struct store *st, const char *account, const char *owner, long ttl)
{
	sqlite3_stmt *s;
	char held[512] = "";
	int rc;

	if ((rc = lock_take(st, account, owner, ttl)) != STORE_LOCKED)
		return rc;
	/* Held: by a live session, or by one whose process is gone. */
	s = stmt(st, ST_LOCK_OWNER);
	bind_text(s, 1, account);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
		snprintf(held, sizeof(held), "%s", (const char *)sqlite3_column_text(s, 0));
	done(s);
	if (held[0] != '\0' && lock_owner_is_dead(held)) {
		s = stmt(st, ST_LOCK_DEL);
		bind_text(s, 1, account);
		bind_text(s, 2, held);
		if (step_done(st, s, "unlock mailbox") == -1)
			return -1;
		if ((rc = lock_take(st, account, owner, ttl)) != STORE_LOCKED)
			return rc;
	}
	store_setmsg(st, "mailbox of %s is in use", account);
	return STORE_LOCKED;
}

int
store_mailbox_touch(struct store *st, const char *account, const char *owner)
{
	sqlite3_stmt *s = stmt(st, ST_LOCK_TOUCH);

	bind_text(s, 1, account);
	bind_text(s, 2, owner);
	sqlite3_bind_int64(s, 3, now_unix());
	if (step_done(st, s, "refresh lock") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		store_setmsg(st, "lock on %s was taken over", account);
		return STORE_LOCKED;
	}
	return 0;
}

int
store_mailbox_unlock(struct store *st, const char *account, const char *owner)
{
	sqlite3_stmt *s = stmt(st, ST_LOCK_DEL);

	bind_text(s, 1, account);
	bind_text(s, 2, owner);
	if (step_done(st, s, "unlock mailbox") == -1)
		return -1;
	return 0;
}

int
store_mailbox_list(struct store *st, const char *account,
    struct store_msg **msgs_r, size_t *n_r)
{
	sqlite3_stmt *s = stmt(st, ST_MAILBOX_LIST);
	struct store_msg *v = NULL, *nv;
	size_t n = 0, cap = 0;
	int rc;

	*msgs_r = NULL;
	*n_r = 0;
	bind_text(s, 1, account);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				store_setmsg(st, "out of memory listing a mailbox");
				done(s);
				free(v);
				return -1;
			}
			v = nv;
		}
		v[n].entry_id = sqlite3_column_int64(s, 0);
		v[n].size = sqlite3_column_int64(s, 1);
		v[n].arrived = sqlite3_column_int64(s, 2);
		snprintf(v[n].uidl, sizeof(v[n].uidl), "%s",
		    (const char *)sqlite3_column_text(s, 3));
		n++;
	}
	done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "list mailbox");
		free(v);
		return -1;
	}
	*msgs_r = v;
	*n_r = n;
	return 0;
}

/* The open blob for key, or NULL. */
static struct store_blob *
blob_find(struct store *st, int64_t key)
{
	size_t i;

	for (i = 0; i < STORE_BLOBS; i++)
		if (st->blobs[i].blob != NULL && st->blobs[i].key == key)
			return &st->blobs[i];
	return NULL;
}

/* Open messages.body of message_id into a free (or the least used) slot. */
static struct store_blob *
blob_open(struct store *st, int64_t key, int64_t message_id, int *rc_r)
{
	struct store_blob *b = &st->blobs[0];
	size_t i;
	int rc;

	for (i = 0; i < STORE_BLOBS; i++) {
		if (st->blobs[i].blob == NULL) {
			b = &st->blobs[i];
			break;
		}
		if (st->blobs[i].used < b->used)
			b = &st->blobs[i];
	}
	if (b->blob != NULL) {
		sqlite3_blob_close(b->blob);
		b->blob = NULL;
	}
	rc = sqlite3_blob_open(st->db, "main", "messages", "body", message_id, 0, &b->blob);
	if (rc != SQLITE_OK) {
		store_seterr(st, "open message");
		sqlite3_blob_close(b->blob);	/* harmless on NULL */
		b->blob = NULL;
		*rc_r = (rc & 0xff) == SQLITE_ERROR ? STORE_NOTFOUND : -1;
		return NULL;
	}
	b->key = key;
	b->size = sqlite3_blob_bytes(b->blob);
	return b;
}

/* Read from an open blob; release it once its end is reached. */
static int
blob_read(struct store *st, struct store_blob *b, int64_t offset, void *dst,
    size_t len, size_t *got_r)
{
	size_t n;

	*got_r = 0;
	b->used = ++st->clock;
	if (offset < 0 || offset >= b->size) {
		sqlite3_blob_close(b->blob);
		b->blob = NULL;
		return 0;
	}
	n = (size_t)(b->size - offset);
	if (n > len)
		n = len;
	if (n > 0 && sqlite3_blob_read(b->blob, dst, (int)n, (int)offset) != SQLITE_OK) {
		store_seterr(st, "read message");
		sqlite3_blob_close(b->blob);
		b->blob = NULL;
		return -1;
	}
	if (offset + (int64_t)n >= b->size) {
		sqlite3_blob_close(b->blob);
		b->blob = NULL;
	}
	*got_r = n;
	return 0;
}

/*
 * Find and open the body of a mailbox entry. Bodies never change, so the
 * snapshot of the blobs already open serves; only an entry newer than that
 * snapshot needs a fresh one (the blobs are released and the lookup redone).
 */
static struct store_blob *
entry_open(struct store *st, int64_t entry_id, int *rc_r)
{
	sqlite3_stmt *s;
	int64_t message_id;
	int rc;

	for (;;) {
		s = stmt_keep_blobs(st, ST_ENTRY_MESSAGE);
		sqlite3_bind_int64(s, 1, entry_id);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			break;
		done(s);
		if (rc == SQLITE_DONE && blobs_open(st)) {
			blobs_release(st);	/* an older snapshot: look again */
			continue;
		}
		if (rc == SQLITE_DONE) {
			store_setmsg(st, "no mailbox entry %lld", (long long)entry_id);
			*rc_r = STORE_NOTFOUND;
		} else {
			store_seterr(st, "find message");
			*rc_r = -1;
		}
		return NULL;
	}
	message_id = sqlite3_column_int64(s, 0);
	done(s);
	return blob_open(st, entry_id, message_id, rc_r);
}

int
store_msg_read(struct store *st, int64_t entry_id, int64_t offset,
    void *dst, size_t len, size_t *got_r)
{
	struct store_blob *b;
	int rc;

	*got_r = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	/* entry ids are > 0, message ids are kept as -id: no collision */
	if ((b = blob_find(st, entry_id)) == NULL &&
	    (b = entry_open(st, entry_id, &rc)) == NULL)
		return rc;
	return blob_read(st, b, offset, dst, len, got_r);
}

void
store_read_done(struct store *st)
{
	blobs_release(st);
}

int
store_mailbox_expunge(struct store *st, const char *account,
    const int64_t *entry_ids, size_t n)
{
	sqlite3_stmt *s;
	int64_t message_id;
	size_t i;
	int rc;

	if (n == 0)
		return 0;
	if (store_begin(st) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		s = stmt(st, ST_ENTRY_DEL);
		sqlite3_bind_int64(s, 1, entry_ids[i]);
		bind_text(s, 2, account);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE) {	/* already gone: nothing to do */
			done(s);
			continue;
		}
		if (rc != SQLITE_ROW) {
			store_seterr(st, "delete entry");
			done(s);
			goto fail;
		}
		message_id = sqlite3_column_int64(s, 0);
		/* RETURNING: step to the end so the delete completes. */
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			;
		done(s);
		if (rc != SQLITE_DONE) {
			store_seterr(st, "delete entry");
			goto fail;
		}
		s = stmt(st, ST_MSG_DEL_IF_ORPHAN);
		sqlite3_bind_int64(s, 1, message_id);
		if (step_done(st, s, "delete message") == -1)
			goto fail;
	}
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

/* ---- outbound queue ------------------------------------------------------ */

int
store_queue_list(struct store *st, int64_t now, struct store_queue_item **items_r, size_t *n_r)
{
	sqlite3_stmt *s = stmt(st, ST_QUEUE_LIST);
	struct store_queue_item *v = NULL, *nv, *q;
	size_t n = 0, cap = 0;
	int rc;

	*items_r = NULL;
	*n_r = 0;
	sqlite3_bind_int64(s, 1, now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				store_setmsg(st, "out of memory listing the queue");
				done(s);
				free(v);
				return -1;
			}
			v = nv;
		}
		q = &v[n++];
		q->id = sqlite3_column_int64(s, 0);
		q->message_id = sqlite3_column_int64(s, 1);
		snprintf(q->sender, sizeof(q->sender), "%s", (const char *)sqlite3_column_text(s, 2));
		snprintf(q->rcpt, sizeof(q->rcpt), "%s", (const char *)sqlite3_column_text(s, 3));
		q->created = sqlite3_column_int64(s, 4);
		q->next_attempt = sqlite3_column_int64(s, 5);
		q->attempts = sqlite3_column_int(s, 6);
		snprintf(q->last_error, sizeof(q->last_error), "%s",
		    (const char *)sqlite3_column_text(s, 7));
	}
	done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "list queue");
		free(v);
		return -1;
	}
	*items_r = v;
	*n_r = n;
	return 0;
}

int
store_queue_defer(struct store *st, int64_t id, int64_t next_attempt, const char *error)
{
	sqlite3_stmt *s = stmt(st, ST_QUEUE_DEFER);

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, next_attempt);
	bind_text(s, 3, error ? error : "");
	if (step_done(st, s, "defer queue item") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		store_setmsg(st, "no queue item %lld", (long long)id);
		return STORE_NOTFOUND;
	}
	return 0;
}

int
store_queue_delete(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	int64_t message_id;
	int rc;

	if (store_begin(st) == -1)
		return -1;
	s = stmt(st, ST_QUEUE_GET);
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		done(s);
		store_rollback(st);
		store_setmsg(st, "no queue item %lld", (long long)id);
		return STORE_NOTFOUND;
	}
	if (rc != SQLITE_ROW) {
		store_seterr(st, "find queue item");
		done(s);
		goto fail;
	}
	message_id = sqlite3_column_int64(s, 0);
	done(s);
	s = stmt(st, ST_QUEUE_DEL);
	sqlite3_bind_int64(s, 1, id);
	if (step_done(st, s, "delete queue item") == -1)
		goto fail;
	s = stmt(st, ST_MSG_DEL_IF_ORPHAN);
	sqlite3_bind_int64(s, 1, message_id);
	if (step_done(st, s, "delete message") == -1)
		goto fail;
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int
store_queue_flush(struct store *st)
{
	return exec_stmt(st, ST_QUEUE_FLUSH, "flush queue");
}

int
store_message_read(struct store *st, int64_t message_id, int64_t offset,
    void *dst, size_t len, size_t *got_r)
{
	struct store_blob *b;
	int rc;

	*got_r = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	/* keyed by -id so that message ids and entry ids never collide */
	if ((b = blob_find(st, -message_id)) == NULL &&
	    (b = blob_open(st, -message_id, message_id, &rc)) == NULL) {
		if (rc != STORE_NOTFOUND || !blobs_open(st))
			return rc;
		blobs_release(st);	/* perhaps newer than their snapshot */
		if ((b = blob_open(st, -message_id, message_id, &rc)) == NULL)
			return rc;
	}
	return blob_read(st, b, offset, dst, len, got_r);
}

int64_t
store_message_size(struct store *st, int64_t message_id)
{
	sqlite3_stmt *s = stmt(st, ST_MSG_SIZE);
	int64_t size = -1;
	int rc;

	sqlite3_bind_int64(s, 1, message_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		size = sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_DONE)
		store_setmsg(st, "no message %lld", (long long)message_id);
	else
		store_seterr(st, "message size");
	done(s);
	return size;
}

/* ---- transcripts --------------------------------------------------------- */

int
store_transcript_append(struct store *st, const char *session_id,
    const char *proto, const char *lines, size_t len)
{
	sqlite3_stmt *s;
	const char *p = lines, *end = lines + len, *nl;
	int64_t seq, now = now_unix();
	int rc;

	if (len == 0)
		return 0;
	if (store_begin(st) == -1)
		return -1;
	s = stmt(st, ST_TRANSCRIPT_SEQ);
	bind_text(s, 1, session_id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		store_seterr(st, "transcript sequence");
		done(s);
		goto fail;
	}
	seq = sqlite3_column_int64(s, 0);
	done(s);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		s = stmt(st, ST_TRANSCRIPT_ADD);
		bind_text(s, 1, session_id);
		sqlite3_bind_int64(s, 2, ++seq);
		bind_text(s, 3, proto ? proto : "");
		sqlite3_bind_text(s, 4, p, (int)(nl - p), SQLITE_STATIC);
		sqlite3_bind_int64(s, 5, now);
		if (step_done(st, s, "transcript line") == -1)
			goto fail;
		p = nl + 1;
	}
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int
store_transcript_get(struct store *st, const char *session_id,
    store_list_cb *cb, void *arg)
{
	sqlite3_stmt *s = stmt(st, ST_TRANSCRIPT_GET);
	size_t n = 0;
	int rc;

	bind_text(s, 1, session_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cb(arg, (const char *)sqlite3_column_text(s, 0), NULL);
		n++;
	}
	done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "read transcript");
		return -1;
	}
	if (n == 0) {
		store_setmsg(st, "no transcript for session %s", session_id);
		return STORE_NOTFOUND;
	}
	return 0;
}
