/*
 * store_pg.c - the PostgreSQL store backend's core, through libpq: the table
 * of every SQL statement, the connection (opened from the whole
 * postgresql:// URI; the password comes from the libpq passfile or
 * PGPASSFILE, never from our config), errors, reconnecting, the schema and
 * its migrations, and the ops table. The areas live beside it:
 * store_pg_account.c (accounts, domains, aliases, the web console's rows),
 * store_pg_mail.c (deliveries, mailboxes, locks, bodies, the queue),
 * store_pg_log.c (the session log) and store_pg_copy.c (dump and load for
 * mailcli admin migrate).
 *
 * Statements: one enum -> SQL table, each prepared once per connection at
 * its first use (PQprepare) and run with PQexecPrepared, every value a
 * parameter (bodies as binary bytea); never SQL built from data.
 *
 * Durability: every connection sets synchronous_commit = on, so a COMMIT
 * returns once its WAL is flushed (on the standbys too, where the server is
 * configured so): a delivery's 250 means committed. A COMMIT is checked to
 * have committed (a failed transaction answers ROLLBACK), and a connection
 * lost during it is a failure (-1) whose outcome is not known: each
 * delivery of the batch is STORE_UNKNOWN, and smtpd closes the connection
 * without a reply (a 451 could be a lie: the message may be stored), so the
 * client sends again, at worst a duplicate; never a 250 for something not
 * known committed. Group commit: a batch is one transaction with a
 * SAVEPOINT per delivery (store_pg_mail.c). The session log's transactions
 * use SET LOCAL synchronous_commit = off: lab data, not mail, as the SQLite
 * backend's synchronous=NORMAL log file (a crash may lose its last commits,
 * never mail).
 *
 * Bodies: stored once per message, as rows of message_chunks of 256 KiB
 * (bytea, STORAGE EXTERNAL: no compression, which would cost CPU on every
 * write and read of mostly base64 text for little room). Chosen over
 *  - one bytea per message: writing it needs the whole body in memory as one
 *    parameter (50 MB, and libpq escapes or copies it again), or appending
 *    piece by piece, which rewrites the value each time (quadratic);
 *  - large objects: they stream both ways, but live outside the tables
 *    (pg_largeobject, own permissions), need lo_unlink for every deleted
 *    message or a vacuumlo, are left out of logical replication and are
 *    awkward for pg_dump; a chunk row is plain data that cascades with its
 *    message and replicates like everything else.
 * Writing streams the spool into chunk rows, one 256 KiB buffer at a time
 * (store_delivery_pread()); reading fetches one chunk row per 256 KiB, and a
 * handle keeps the last chunk of up to 4 messages (store_pg.h), so small
 * sequential reads (RETR's 16 KiB) cost one query per chunk, not per read:
 * at most 1 MiB per handle, whatever the size of the message. The chunk
 * size was measured (tests/bench/pg_store_bench.c, a 50 MB body, medians
 * of 5 on a 2-core VM): 64 KiB wrote 274 MB/s and read 542 MB/s with
 * +0.2 MB peak RSS; 256 KiB 312 and 722 MB/s, +0.5/+0.7 MB; 1 MiB 370 and
 * 814 MB/s, +2/+3 MB. 256 KiB has most of the speed for a quarter of the
 * memory of 1 MiB, and pop3d holds a handle per worker.
 *
 * The database going away is a fault, not a crash. Before each op, a
 * connection that looks fine is checked without blocking (a zero-timeout
 * poll of its socket): one the server closed while it sat idle (a restart,
 * a terminated backend) is replaced at once, so the first op after the
 * server came back does not fail on the dead connection. An op whose
 * connection breaks under it is run once more on a new connection when
 * nothing of it can have committed: a read outside a transaction
 * (pg_run()), and whole transactions whose COMMIT was not sent (a
 * delivery batch, an expunge, a queue claim or delete: pg_retry()); never
 * once a COMMIT, or a write outside a transaction, went out. Otherwise the
 * op returns -1 with "the store's database is unreachable: ..."; the next
 * op reconnects, prepares again, and goes on. A server that refuses a
 * connection at once (down, or starting up) is asked again by every op:
 * it costs one round trip, and the first op after it is back succeeds;
 * one whose connection attempt hung (a host gone: up to connect_timeout)
 * at most once a second per handle, so that ops do not each wait for it. Connections use TCP keepalives
 * and a user timeout so that a server host that vanished is noticed in
 * about 30 s, not two hours.
 *
 * Schema: correio_meta marks a database as ours ('format' =
 * 'correio-store'); schema_version has a row per migration applied (with
 * the server process that applied it). Migrations are applied forward on
 * open, in one transaction under pg_advisory_xact_lock, checking the version
 * again under the lock: two hosts starting at once both wait for one
 * migration and neither applies it twice. A database with tables but
 * without our marker, or a newer schema than we know, is refused before a
 * byte is changed. The session log has its own tables in the same
 * database (sessions, session_accounts, transcripts).
 */

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "store_pg.h"

#define PG_FORMAT		"correio-store"
#define PG_MIGRATE_LOCK		"7165482317305577729"	/* pg_advisory_xact_lock key */
#define PG_RETRY_MS		1000	/* between connection attempts of a handle */
#define PG_FAST_FAIL_MS		100	/* a failed attempt quicker than this: no wait */
#define PG_NAME_MAX		16	/* a prepared statement's name */

static const char *const pg_sql[PG_COUNT] = {
	[PG_USER_ADD]		= "INSERT INTO accounts(name, hash, created) VALUES ($1, $2, $3)",
	[PG_USER_DEL]		= "DELETE FROM accounts WHERE lower(name) = lower($1)",
	[PG_USER_SET_HASH]	= "UPDATE accounts SET hash = $2 WHERE lower(name) = lower($1)",
	[PG_USER_GET_HASH]	= "SELECT hash FROM accounts WHERE lower(name) = lower($1)",
	[PG_USER_LIST]		= "SELECT name, to_char(to_timestamp(created) AT TIME ZONE 'UTC',"
				  " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM accounts"
				  " ORDER BY lower(name), name",
	[PG_LOCK_DEL_ACCOUNT]	= "DELETE FROM locks WHERE account = lower($1)",
	[PG_ORPHANS_DEL]	= "DELETE FROM messages WHERE"
				  " NOT EXISTS (SELECT 1 FROM mailbox WHERE mailbox.message = messages.id)"
				  " AND NOT EXISTS (SELECT 1 FROM queue WHERE queue.message = messages.id)",

	[PG_DOMAIN_ADD]		= "INSERT INTO domains(name, created) VALUES (lower($1), $2)",
	[PG_DOMAIN_DEL]		= "DELETE FROM domains WHERE name = lower($1)",
	[PG_DOMAIN_LIST]	= "SELECT name FROM domains ORDER BY name",
	[PG_DOMAIN_GET]		= "SELECT 1 FROM domains WHERE name = lower($1)",
	[PG_DOMAIN_ALIASES_DEL]	= "DELETE FROM aliases WHERE strpos(address, '@') > 0"
				  " AND substr(address, strpos(address, '@') + 1) = lower($1)",

	[PG_ALIAS_ADD]		= "INSERT INTO aliases(address, account, created)"
				  " SELECT lower($1), id, $3 FROM accounts WHERE lower(name) = lower($2)",
	[PG_ALIAS_DEL]		= "DELETE FROM aliases WHERE address = lower($1)",
	[PG_ALIAS_DEL_ONE]	= "DELETE FROM aliases WHERE address = lower($1)"
				  " AND account = (SELECT id FROM accounts WHERE lower(name) = lower($2))",
	[PG_ALIAS_LIST]		= "SELECT al.address, a.name FROM aliases al"
				  " JOIN accounts a ON a.id = al.account"
				  " ORDER BY al.address, lower(a.name), a.name",
	/* The lookups of store_resolve_all() in one statement (one snapshot),
	 * each candidate with its rank: alias local@domain ($1, NULL without
	 * a domain), alias local, the account local, and for postmaster the
	 * first account made. The caller keeps the rows of the best rank. */
	[PG_RESOLVE]		= "SELECT k, name FROM ("
				  " SELECT 1 AS k, a.name FROM aliases al JOIN accounts a"
				  "  ON a.id = al.account WHERE al.address = lower($1::text)"
				  " UNION ALL SELECT 2, a.name FROM aliases al JOIN accounts a"
				  "  ON a.id = al.account WHERE al.address = lower($2::text)"
				  " UNION ALL SELECT 3, name FROM accounts WHERE lower(name) = lower($2::text)"
				  " UNION ALL (SELECT 4, name FROM accounts"
				  "  WHERE lower($2::text) = 'postmaster' ORDER BY id LIMIT 1)"
				  ") r ORDER BY k, lower(name), name",

	/* A delivery in one statement: the message with its first chunk ($5,
	 * NULL for an empty body), an entry for each account of $6 (an unknown
	 * one gives a NULL account: a not-null violation) and a queue item for
	 * each address of $7. The uidl is the message id and a random part. */
	[PG_MSG_ADD]		= "WITH m AS (INSERT INTO messages(size, sender, session, created)"
				  " VALUES ($1, $2, $3, $4) RETURNING id),"
				  " c AS (INSERT INTO message_chunks(message, seq, data)"
				  "  SELECT id, 0, $5::bytea FROM m WHERE $5::bytea IS NOT NULL),"
				  " e AS (INSERT INTO mailbox(account, message, uidl, size, arrived)"
				  "  SELECT (SELECT id FROM accounts WHERE lower(name) = lower(r.name)),"
				  "  m.id, m.id::text || '.' || substr(md5(random()::text"
				  "  || clock_timestamp()::text || r.n::text), 1, 10), $1, $4"
				  "  FROM m, unnest($6::text[]) WITH ORDINALITY AS r(name, n)),"
				  " q AS (INSERT INTO queue(message, sender, rcpt, created, next_attempt)"
				  "  SELECT m.id, $2, x, $4, $4 FROM m, unnest($7::text[]) AS x)"
				  " SELECT id FROM m",
	[PG_CHUNK_ADD]		= "INSERT INTO message_chunks(message, seq, data) VALUES ($1, $2, $3)",
	/* The first account of $1 that does not exist. */
	[PG_ACCOUNT_MISSING]	= "SELECT r FROM unnest($1::text[]) WITH ORDINALITY AS x(r, n)"
				  " WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE lower(name) = lower(r))"
				  " ORDER BY n LIMIT 1",

	/* Take the lock when free, already ours, older than the ttl ($4), or
	 * ($5) held through a connection that no longer exists (its host or
	 * its pop3d died). Records the taking connection: its server process
	 * id, and that process's start so that a reused pid is not taken for
	 * the holder (another role sees NULL there: the pid alone decides). */
	[PG_LOCK_TAKE]		= "INSERT INTO locks(account, owner, taken, backend_pid, backend_start)"
				  " VALUES (lower($1), $2, $3, pg_backend_pid(), (SELECT backend_start"
				  "  FROM pg_stat_activity WHERE pid = pg_backend_pid()))"
				  " ON CONFLICT (account) DO UPDATE SET owner = excluded.owner,"
				  " taken = excluded.taken, backend_pid = excluded.backend_pid,"
				  " backend_start = excluded.backend_start"
				  " WHERE locks.owner = excluded.owner OR locks.taken < $4"
				  " OR ($5::boolean AND NOT EXISTS (SELECT 1 FROM pg_stat_activity s"
				  "  WHERE s.pid = locks.backend_pid AND (s.backend_start IS NULL"
				  "  OR locks.backend_start IS NULL"
				  "  OR s.backend_start = locks.backend_start)))",
	[PG_LOCK_TOUCH]		= "UPDATE locks SET taken = $3, backend_pid = pg_backend_pid(),"
				  " backend_start = (SELECT backend_start FROM pg_stat_activity"
				  "  WHERE pid = pg_backend_pid())"
				  " WHERE account = lower($1) AND owner = $2",
	[PG_LOCK_DEL]		= "DELETE FROM locks WHERE account = lower($1) AND owner = $2",
	[PG_LOCK_OWNER]		= "SELECT owner FROM locks WHERE account = lower($1)",
	[PG_MAILBOX_LIST]	= "SELECT m.id, m.size, m.arrived, m.uidl FROM mailbox m"
				  " JOIN accounts a ON a.id = m.account"
				  " WHERE lower(a.name) = lower($1) AND NOT m.deleted ORDER BY m.id",
	[PG_ENTRY_MESSAGE]	= "SELECT e.message, g.size FROM mailbox e"
				  " JOIN messages g ON g.id = e.message WHERE e.id = $1",
	[PG_MSG_SIZE]		= "SELECT size FROM messages WHERE id = $1",
	[PG_CHUNK_GET]		= "SELECT data FROM message_chunks WHERE message = $1 AND seq = $2",
	/* Expunge: the entries ($1, an array) of the account, returning their
	 * messages; those messages locked (in id order), so that two sessions
	 * expunging the last two references of one message at once see each
	 * other's delete; then the ones nothing references any more dropped. */
	[PG_ENTRIES_DEL]	= "DELETE FROM mailbox WHERE id = ANY($1::bigint[])"
				  " AND account = (SELECT id FROM accounts WHERE lower(name) = lower($2))"
				  " RETURNING message",
	[PG_MSGS_LOCK]		= "SELECT id FROM messages WHERE id = ANY($1::bigint[])"
				  " ORDER BY id FOR UPDATE",
	[PG_MSGS_DEL_IF_ORPHAN]	= "DELETE FROM messages WHERE id = ANY($1::bigint[])"
				  " AND NOT EXISTS (SELECT 1 FROM mailbox WHERE message = messages.id)"
				  " AND NOT EXISTS (SELECT 1 FROM queue WHERE message = messages.id)",

	[PG_QUEUE_LIST]		= "SELECT id, message, sender, rcpt, created, next_attempt, attempts,"
				  " last_error FROM queue WHERE $1::bigint < 0 OR next_attempt <= $1::bigint"
				  " ORDER BY next_attempt, id",
	[PG_QUEUE_DEFER]	= "UPDATE queue SET attempts = attempts + 1, next_attempt = $2,"
				  " last_error = $3, claimer = '', claimed_until = 0 WHERE id = $1",
	[PG_QUEUE_DEL]		= "DELETE FROM queue WHERE id = $1 RETURNING message",
	[PG_QUEUE_FLUSH]	= "UPDATE queue SET next_attempt = 0",
	[PG_QUEUE_CLAMP]	= "UPDATE queue SET next_attempt = $1 WHERE next_attempt > $1",
	[PG_QUEUE_MAX_ID]	= "SELECT coalesce(max(id), 0) FROM queue",
	/* Claims (store_queue_claim()). Every statement that changes claims
	 * takes its rows FOR UPDATE SKIP LOCKED: a row another runner is
	 * claiming at this instant is passed over, never waited for, and is
	 * checked again against the newest committed row before it is taken
	 * (READ COMMITTED), so two runners never both take one item. */
	[PG_QUEUE_CLAIMERS]	= "SELECT DISTINCT claimer FROM queue WHERE claimer <> ''"
				  " AND claimer <> $1 AND claimed_until > $2",
	[PG_QUEUE_UNCLAIM]	= "UPDATE queue SET claimer = '', claimed_until = 0 WHERE id IN"
				  " (SELECT id FROM queue WHERE claimer = $1 FOR UPDATE SKIP LOCKED)",
	[PG_QUEUE_RENEW]	= "UPDATE queue SET claimed_until = $2 WHERE id IN"
				  " (SELECT id FROM queue WHERE claimer = $1 FOR UPDATE SKIP LOCKED)",
	/* Due, and free, ours, or another's that ran out: the oldest $4. */
	[PG_QUEUE_CLAIM]	= "UPDATE queue SET claimer = $1, claimed_until = $3 WHERE id IN"
				  " (SELECT id FROM queue WHERE next_attempt <= $2 AND"
				  "  (claimer = '' OR claimer = $1 OR claimed_until <= $2)"
				  "  ORDER BY next_attempt, id LIMIT $4 FOR UPDATE SKIP LOCKED)"
				  " RETURNING id, message, sender, rcpt, created, next_attempt,"
				  " attempts, last_error",

	[PG_USER_SET_TEACHER]	= "UPDATE accounts SET teacher = $2 WHERE lower(name) = lower($1)",
	[PG_USER_IS_TEACHER]	= "SELECT teacher::int FROM accounts WHERE lower(name) = lower($1)",
	[PG_WEBSESS_ADD]	= "INSERT INTO web_sessions(id, account, csrf, created, expires)"
				  " SELECT $1, id, $2, $3, $4 FROM accounts WHERE lower(name) = lower($5)",
	[PG_WEBSESS_GET]	= "SELECT a.name, w.csrf FROM web_sessions w"
				  " JOIN accounts a ON a.id = w.account WHERE w.id = $1 AND w.expires > $2",
	[PG_WEBSESS_DEL]	= "DELETE FROM web_sessions WHERE id = $1",
	[PG_WEBSESS_PURGE]	= "DELETE FROM web_sessions WHERE expires <= $1",
	[PG_TOKEN_ADD]		= "INSERT INTO api_tokens(hash, account, created)"
				  " SELECT $1, id, $2 FROM accounts WHERE lower(name) = lower($3)",
	[PG_TOKEN_GET]		= "SELECT a.name FROM api_tokens t JOIN accounts a ON a.id = t.account"
				  " WHERE t.hash = $1",
	[PG_MAILBOX_ENTRY]	= "SELECT m.id, m.size, m.arrived, m.uidl, g.session, g.sender"
				  " FROM mailbox m JOIN accounts a ON a.id = m.account"
				  " JOIN messages g ON g.id = m.message"
				  " WHERE lower(a.name) = lower($1) AND m.id = $2 AND NOT m.deleted",

	[PG_TRANSCRIPT_SEQ]	= "SELECT coalesce(max(seq), 0) FROM transcripts WHERE session_id = $1",
	[PG_TRANSCRIPT_ADD]	= "INSERT INTO transcripts(session_id, seq, proto, lines, time)"
				  " VALUES ($1, $2, $3, $4, $5)",
	[PG_TRANSCRIPT_GET]	= "SELECT lines FROM transcripts WHERE session_id = $1 ORDER BY seq",
	[PG_SESSION_OPEN]	= "INSERT INTO sessions(id, proto, client, started)"
				  " VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
	[PG_SESSION_USER]	= "UPDATE sessions SET login = $2 WHERE id = $1",
	[PG_SESSION_ACCOUNT]	= "INSERT INTO session_accounts(session, account)"
				  " VALUES ($1, lower($2)) ON CONFLICT DO NOTHING",
	[PG_SESSION_CLOSE]	= "UPDATE sessions SET ended = $2, outcome = $3 WHERE id = $1",
	/* Every filter is optional: NULL (or 0 for since) lets every row pass. */
	[PG_SESSION_LIST]	= "SELECT s.id, s.proto, s.client, s.started, coalesce(s.ended, 0),"
				  " s.login, s.outcome FROM sessions s"
				  " WHERE ($1::text IS NULL OR EXISTS (SELECT 1 FROM session_accounts a"
				  "   WHERE a.session = s.id AND a.account = lower($1::text)))"
				  " AND ($2::text IS NULL OR s.client = $2::text)"
				  " AND s.started >= $3"
				  " AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM transcripts t"
				  "   WHERE t.session_id = s.id AND strpos(t.lines, $4::text) > 0))"
				  " ORDER BY s.started DESC, s.n DESC LIMIT $5",
	[PG_SESSION_GET]	= "SELECT id, proto, client, started, coalesce(ended, 0), login, outcome"
				  " FROM sessions WHERE id = $1",
	[PG_SESSION_INVOLVES]	= "SELECT 1 FROM session_accounts WHERE session = $1"
				  " AND account = lower($2)",

	[PG_SCHEMA_VERSION]	= "SELECT coalesce(max(version), 0) FROM schema_version",

	/* copying a whole store (store_pg_copy.c): every row verbatim, ids
	 * included; the dumps run as cursors, the loads keep the given ids
	 * (OVERRIDING SYSTEM VALUE) */
	[PG_COPY_COUNT]		= "SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM accounts),"
				  " (SELECT count(*) FROM aliases), (SELECT count(*) FROM messages),"
				  " (SELECT count(*) FROM mailbox), (SELECT count(*) FROM queue),"
				  " (SELECT count(*) FROM sessions), (SELECT count(*) FROM session_accounts),"
				  " (SELECT count(*) FROM transcripts), (SELECT count(*) FROM web_sessions),"
				  " (SELECT count(*) FROM api_tokens)",
	[PG_DUMP_DOMAINS]	= "SELECT name, created FROM domains ORDER BY name",
	[PG_DUMP_ACCOUNTS]	= "SELECT id, name, hash, created, teacher::int FROM accounts ORDER BY id",
	[PG_DUMP_ALIASES]	= "SELECT al.address, a.name, al.created FROM aliases al"
				  " JOIN accounts a ON a.id = al.account ORDER BY al.address, a.id",
	[PG_DUMP_MESSAGES]	= "SELECT id, size, sender, session, created FROM messages ORDER BY id",
	[PG_DUMP_ENTRIES]	= "SELECT m.id, a.name, m.message, m.uidl, m.size, m.arrived, m.deleted::int"
				  " FROM mailbox m JOIN accounts a ON a.id = m.account ORDER BY m.id",
	[PG_DUMP_QUEUE]		= "SELECT id, message, sender, rcpt, created, next_attempt, attempts,"
				  " last_error FROM queue ORDER BY id",
	[PG_DUMP_SESSIONS]	= "SELECT id, proto, client, started, coalesce(ended, 0), login, outcome"
				  " FROM sessions ORDER BY n",
	[PG_DUMP_SESSION_ACCOUNTS] = "SELECT session, account FROM session_accounts"
				  " ORDER BY session, account",
	[PG_DUMP_TRANSCRIPTS]	= "SELECT session_id, seq, proto, lines, time FROM transcripts ORDER BY id",
	[PG_DUMP_WEBSESSIONS]	= "SELECT w.id, a.name, w.csrf, w.created, w.expires FROM web_sessions w"
				  " JOIN accounts a ON a.id = w.account ORDER BY w.id",
	[PG_DUMP_TOKENS]	= "SELECT t.hash, a.name, t.created FROM api_tokens t"
				  " JOIN accounts a ON a.id = t.account ORDER BY t.hash",
	/* the last value each identity sequence gave (none: never used) */
	[PG_DUMP_SEQUENCES]	= "SELECT t, v FROM (SELECT t, pg_sequence_last_value("
				  "  pg_get_serial_sequence(t, 'id')::regclass) AS v"
				  "  FROM unnest(ARRAY['accounts', 'messages', 'mailbox', 'queue']) AS t) s"
				  " WHERE v IS NOT NULL ORDER BY t",
	[PG_LOAD_DOMAIN]	= "INSERT INTO domains(name, created) VALUES ($1, $2)",
	[PG_LOAD_ACCOUNT]	= "INSERT INTO accounts(id, name, hash, created, teacher)"
				  " OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5)",
	[PG_LOAD_ALIAS]		= "INSERT INTO aliases(address, account, created)"
				  " SELECT $1, id, $3 FROM accounts WHERE name = $2",
	[PG_LOAD_MESSAGE]	= "INSERT INTO messages(id, size, sender, session, created)"
				  " OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5)",
	/* An unknown account gives a NULL account: NOT NULL violation. */
	[PG_LOAD_ENTRY]		= "INSERT INTO mailbox(id, account, message, uidl, size, arrived, deleted)"
				  " OVERRIDING SYSTEM VALUE VALUES ($1,"
				  " (SELECT id FROM accounts WHERE name = $2), $3, $4, $5, $6, $7)",
	[PG_LOAD_QUEUE]		= "INSERT INTO queue(id, message, sender, rcpt, created, next_attempt,"
				  " attempts, last_error) OVERRIDING SYSTEM VALUE"
				  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	[PG_LOAD_SESSION]	= "INSERT INTO sessions(id, proto, client, started, ended, login, outcome)"
				  " VALUES ($1, $2, $3, $4, nullif($5::bigint, 0), $6, $7)",
	[PG_LOAD_SESSION_ACCOUNT] = "INSERT INTO session_accounts(session, account) VALUES ($1, $2)",
	[PG_LOAD_TRANSCRIPT]	= "INSERT INTO transcripts(session_id, seq, proto, lines, time)"
				  " VALUES ($1, $2, $3, $4, $5)",
	[PG_LOAD_WEBSESSION]	= "INSERT INTO web_sessions(id, account, csrf, created, expires)"
				  " SELECT $1, id, $3, $4, $5 FROM accounts WHERE name = $2",
	[PG_LOAD_TOKEN]		= "INSERT INTO api_tokens(hash, account, created)"
				  " SELECT $1, id, $3 FROM accounts WHERE name = $2",
	/* Move table $1's identity sequence forward to $2, never back
	 * (setval is not undone by a rollback: only ever raised). */
	[PG_LOAD_SEQ_RAISE]	= "SELECT setval(pg_get_serial_sequence($1, 'id'), $2::bigint)"
				  " WHERE $2::bigint > coalesce(pg_sequence_last_value("
				  "  pg_get_serial_sequence($1, 'id')::regclass), 0)",
	/* The highest id of each table with an identity sequence. */
	[PG_LOAD_SEQ_MAX]	= "SELECT (SELECT coalesce(max(id), 0) FROM accounts),"
				  " (SELECT coalesce(max(id), 0) FROM messages),"
				  " (SELECT coalesce(max(id), 0) FROM mailbox),"
				  " (SELECT coalesce(max(id), 0) FROM queue)",
};

/*
 * The schema, as an append-only list of migrations: migration i takes a
 * database from version i to i + 1 (a row in schema_version). A released
 * migration is never edited. Names are compared case-insensitively (as
 * SQLite's NOCASE: ASCII only) through lower() of "C"-collated columns;
 * domains, aliases, lock and session-account names are kept in lower case.
 */
static const char *const pg_migrations[] = {
	/* version 1: the store of the SQLite backend's version 5, and its
	 * session log, in one database. */
	"CREATE TABLE correio_meta ("
	"  key    text PRIMARY KEY,"
	"  value  text NOT NULL"
	");"
	"INSERT INTO correio_meta(key, value) VALUES ('format', '" PG_FORMAT "');"
	"CREATE TABLE accounts ("
	"  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  name     text COLLATE \"C\" NOT NULL,"
	"  hash     text NOT NULL,"			/* crypt(3) hash, never plaintext */
	"  created  bigint NOT NULL,"			/* unix time */
	"  teacher  boolean NOT NULL DEFAULT false"
	");"
	"CREATE UNIQUE INDEX accounts_name ON accounts (lower(name));"
	"CREATE TABLE domains ("
	"  name     text COLLATE \"C\" PRIMARY KEY,"	/* lower case */
	"  created  bigint NOT NULL"
	");"
	"CREATE TABLE aliases ("
	"  address  text COLLATE \"C\" NOT NULL,"	/* lower case */
	"  account  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  created  bigint NOT NULL,"
	"  PRIMARY KEY (address, account)"
	");"
	"CREATE INDEX aliases_account ON aliases(account);"
	"CREATE TABLE messages ("
	"  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  size     bigint NOT NULL,"
	"  sender   text NOT NULL,"
	"  session  text NOT NULL DEFAULT '',"
	"  created  bigint NOT NULL"
	");"
	"CREATE TABLE message_chunks ("
	"  message  bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  seq      integer NOT NULL,"
	"  data     bytea NOT NULL,"
	"  PRIMARY KEY (message, seq)"
	");"
	"ALTER TABLE message_chunks ALTER COLUMN data SET STORAGE EXTERNAL;"
	"CREATE TABLE mailbox ("
	"  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  account  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  message  bigint NOT NULL REFERENCES messages(id),"
	"  uidl     text NOT NULL,"
	"  size     bigint NOT NULL,"
	"  arrived  bigint NOT NULL,"
	"  deleted  boolean NOT NULL DEFAULT false,"
	"  UNIQUE (account, uidl),"
	"  UNIQUE (account, message)"
	");"
	"CREATE INDEX mailbox_message ON mailbox(message);"
	"CREATE TABLE queue ("
	"  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  message       bigint NOT NULL REFERENCES messages(id),"
	"  sender        text NOT NULL,"
	"  rcpt          text NOT NULL,"
	"  created       bigint NOT NULL,"
	"  next_attempt  bigint NOT NULL,"
	"  attempts      integer NOT NULL DEFAULT 0,"
	"  last_error    text NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX queue_next ON queue(next_attempt);"
	"CREATE INDEX queue_message ON queue(message);"
	/* POP3 maildrop leases: owner "HOST/PID/tag", and the server process
	 * (pid and start time) of the connection that took or last touched it. */
	"CREATE TABLE locks ("
	"  account        text COLLATE \"C\" PRIMARY KEY,"	/* lower case */
	"  owner          text NOT NULL,"
	"  taken          bigint NOT NULL,"
	"  backend_pid    integer NOT NULL,"
	"  backend_start  timestamptz"
	");"
	"CREATE TABLE web_sessions ("
	"  id       text PRIMARY KEY,"
	"  account  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  csrf     text NOT NULL,"
	"  created  bigint NOT NULL,"
	"  expires  bigint NOT NULL"
	");"
	"CREATE INDEX web_sessions_expires ON web_sessions(expires);"
	"CREATE TABLE api_tokens ("
	"  hash     text PRIMARY KEY,"
	"  account  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  created  bigint NOT NULL"
	");"
	/* the session log */
	"CREATE TABLE sessions ("
	"  n        bigint GENERATED ALWAYS AS IDENTITY,"	/* order of arrival */
	"  id       text PRIMARY KEY,"
	"  proto    text NOT NULL,"
	"  client   text NOT NULL DEFAULT '',"
	"  started  bigint NOT NULL,"
	"  ended    bigint,"
	"  login    text NOT NULL DEFAULT '',"
	"  outcome  text NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX sessions_started ON sessions(started, n);"
	"CREATE TABLE session_accounts ("
	"  session  text NOT NULL,"
	"  account  text COLLATE \"C\" NOT NULL,"	/* lower case */
	"  PRIMARY KEY (session, account)"
	");"
	"CREATE INDEX session_accounts_account ON session_accounts(account, session);"
	"CREATE TABLE transcripts ("
	"  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  session_id  text NOT NULL,"
	"  seq         integer NOT NULL,"
	"  proto       text NOT NULL,"
	"  lines       text NOT NULL,"
	"  time        bigint NOT NULL,"
	"  UNIQUE (session_id, seq)"
	");",
	/* version 2: queue items are claimed by a runner ("HOST/PID/relay")
	 * until claimed_until (unix time), so that runners on several hosts
	 * never deliver one item twice (store_queue_claim()); '' is
	 * unclaimed. The SQLite backend's version 6. */
	"ALTER TABLE queue ADD COLUMN claimer text NOT NULL DEFAULT '';"
	"ALTER TABLE queue ADD COLUMN claimed_until bigint NOT NULL DEFAULT 0;"
	"CREATE INDEX queue_claimer ON queue(claimer) WHERE claimer <> '';",
};

#define PG_LATEST	((int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])))

/* ---- parameters --------------------------------------------------------- */

void
pgq_text(struct pgq *q, const char *s)
{
	q->v[q->n] = s;
	q->len[q->n] = 0;
	q->fmt[q->n] = 0;
	q->n++;
}

void
pgq_bytes(struct pgq *q, const void *p, size_t len)
{
	q->v[q->n] = p;
	q->len[q->n] = (int)len;
	q->fmt[q->n] = 1;
	q->n++;
}

void
pgq_int(struct pgq *q, int64_t v)
{
	snprintf(q->num[q->n], sizeof(q->num[q->n]), "%lld", (long long)v);
	pgq_text(q, q->num[q->n]);
}

/* ---- errors -------------------------------------------------------------- */

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A libpq message on one line. */
static void
oneline(char *dst, size_t len, const char *msg)
{
	char *nl;

	snprintf(dst, len, "%s", msg != NULL && *msg != '\0' ? msg : "no reason given");
	while ((nl = strpbrk(dst, "\r\n")) != NULL) {
		if (nl[1] == '\0') {
			*nl = '\0';
			break;
		}
		*nl = ' ';
	}
}

static void
pg_seterr(struct store_pg *p, const PGresult *r, const char *what)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *primary;
	char msg[STORE_ERR_MAX];

	snprintf(p->sqlstate, sizeof(p->sqlstate), "%s", state != NULL ? state : "");
	if (p->conn == NULL || PQstatus(p->conn) == CONNECTION_BAD) {
		p->lost = true;
		oneline(msg, sizeof(msg), p->conn != NULL ? PQerrorMessage(p->conn) : NULL);
		store_setmsg(&p->base, "the store's database is unreachable: %s: %s", what, msg);
		return;
	}
	primary = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	oneline(msg, sizeof(msg), primary != NULL ? primary : PQerrorMessage(p->conn));
	store_setmsg(&p->base, "%s: %s", what, msg);
	if (strcmp(p->sqlstate, "53100") == 0)		/* disk_full */
		store_set_full(&p->base);
}

bool
pg_is_constraint(const struct store_pg *p)
{
	return strcmp(p->sqlstate, "23505") == 0 || strcmp(p->sqlstate, "23502") == 0;
}

/* ---- the connection -------------------------------------------------------- */

/*
 * What the server says outside a query reaches libpq as a notice. A FATAL
 * one on an idle connection is its last words before it closes it (a
 * terminated backend, a shutdown): mark the connection as ending, since
 * its end of file may arrive a moment after the words. Everything is
 * still printed as libpq's default receiver does.
 */
static void
pg_notice(void *arg, const PGresult *r)
{
	struct store_pg *p = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		p->ending = true;
	fprintf(stderr, "%s", PQresultErrorMessage(r));
}

/*
 * Connect p to url: TCP keepalives and a user timeout (a server host that
 * vanished is an error in about 30 s), a connect timeout; the URI's own
 * settings win over these. Then the session's settings, and pg_notice()
 * for what the server says outside a query. NULL with the reason in err.
 */
static PGconn *
pg_connect(struct store_pg *p, const char *url, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "tcp_user_timeout", "application_name", "dbname", NULL
	};
	const char *vals[] = { "10", "1", "10", "5", "3", "30000", "correio", url, NULL };
	PGconn *c;
	PGresult *r;
	char msg[STORE_ERR_MAX];

	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		oneline(msg, sizeof(msg), c != NULL ? PQerrorMessage(c) : "out of memory");
		snprintf(err, errlen, "the store's database is unreachable: %s", msg);
		PQfinish(c);
		return NULL;
	}
	p->ending = false;
	PQsetNoticeReceiver(c, pg_notice, p);
	/* A delivery's commit waits for its WAL to be flushed, whatever the
	 * server's or the role's default says. */
	r = PQexec(c, "SET synchronous_commit = on; SET client_min_messages = warning;"
	    " SET TIME ZONE 'UTC'");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		oneline(msg, sizeof(msg), PQresultErrorMessage(r));
		snprintf(err, errlen, "session settings: %s", msg);
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

void
pg_readers_drop(struct store_pg *p)
{
	size_t i;

	for (i = 0; i < PG_READERS; i++) {
		p->readers[i].key = 0;
		p->readers[i].seq = -1;
	}
}

/*
 * Has the server closed p's connection while it sat idle (a restart, a
 * terminated backend)? It then sent its last words and an end of file:
 * read what waits, without blocking, have libpq parse it, and see whether
 * it found the end or the words.
 */
static bool
conn_closed(struct store_pg *p)
{
	struct pollfd pfd;
	int i;

	if ((pfd.fd = PQsocket(p->conn)) < 0)
		return true;
	for (i = 0; i < 4; i++) {	/* a message, then the end of file */
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) <= 0)
			return p->ending;
		if (PQconsumeInput(p->conn) == 0 || PQstatus(p->conn) == CONNECTION_BAD)
			return true;
		(void)PQisBusy(p->conn);	/* parses what came: the words */
	}
	return p->ending;
}

/* A new connection now, in place of p's: 0, or -1 with the reason. */
static int
pg_reconnect(struct store_pg *p)
{
	char err[STORE_ERR_MAX];

	p->last_try = mono_ms();
	PQfinish(p->conn);
	p->conn = NULL;
	memset(p->prepared, 0, sizeof(p->prepared));
	if ((p->conn = pg_connect(p, p->url, err, sizeof(err))) == NULL) {
		p->fail_ms = mono_ms() - p->last_try;
		if (p->fail_ms == 0)
			p->fail_ms = 1;
		store_setmsg(&p->base, "%s", err);
		return -1;
	}
	p->fail_ms = 0;
	return 0;
}

int
pg_enter(struct store_pg *p, bool keep_reads)
{
	PGTransactionStatusType ts;

	p->sqlstate[0] = '\0';
	p->lost = p->commit_sent = p->retried = false;
	if (!keep_reads)
		pg_readers_drop(p);
	if (p->conn != NULL && PQstatus(p->conn) == CONNECTION_OK) {
		if (!conn_closed(p)) {
			ts = PQtransactionStatus(p->conn);
			if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
				PQclear(PQexec(p->conn, "ROLLBACK"));	/* left by a failed op */
			return 0;
		}
		/* Closed by the server while idle: nothing of ours was lost,
		 * so a new connection at once, not after the backoff. */
		return pg_reconnect(p);
	}
	/* A server that refused at once is asked again now (it may be back:
	 * pop3d's first login after a restart must not fail on the attempt
	 * an unlock made a moment before); one whose attempt hung, not
	 * before a second has passed. */
	if (p->fail_ms >= PG_FAST_FAIL_MS && mono_ms() - p->last_try < PG_RETRY_MS) {
		store_setmsg(&p->base, "the store's database is unreachable"
		    " (the connection was lost; trying again in a moment)");
		return -1;
	}
	pg_readers_drop(p);
	return pg_reconnect(p);
}

bool
pg_retry(struct store_pg *p)
{
	char keep[STORE_ERR_MAX];

	if (!p->lost || p->commit_sent || p->retried)
		return false;
	p->retried = true;
	memcpy(keep, p->base.err, sizeof(keep));
	if (pg_reconnect(p) == -1) {
		memcpy(p->base.err, keep, sizeof(keep));	/* the op's own error */
		return false;
	}
	p->lost = false;
	p->sqlstate[0] = '\0';
	return true;
}

/* Is statement id a plain read (a SELECT that locks nothing)? */
static bool
is_read(enum pg_stmt id)
{
	return strncmp(pg_sql[id], "SELECT", 6) == 0 && strstr(pg_sql[id], " FOR ") == NULL;
}

static PGresult *
run_once(struct store_pg *p, enum pg_stmt id, const struct pgq *q, bool binary,
    const char *what)
{
	char name[PG_NAME_MAX];
	PGresult *r;
	ExecStatusType s;

	snprintf(name, sizeof(name), "c%d", (int)id);
	if (!p->prepared[id]) {
		r = PQprepare(p->conn, name, pg_sql[id], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			pg_seterr(p, r, what);
			PQclear(r);
			return NULL;
		}
		PQclear(r);
		p->prepared[id] = true;
	}
	/* A write outside a transaction commits by itself: once it went
	 * out on a live connection its outcome may be a commit. */
	if (!is_read(id) && PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) == PQTRANS_IDLE)
		p->commit_sent = true;
	r = PQexecPrepared(p->conn, name, q != NULL ? q->n : 0, q != NULL ? q->v : NULL,
	    q != NULL ? q->len : NULL, q != NULL ? q->fmt : NULL, binary ? 1 : 0);
	s = PQresultStatus(r);
	if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
		p->sqlstate[0] = '\0';
		return r;
	}
	pg_seterr(p, r, what);
	PQclear(r);
	return NULL;
}

PGresult *
pg_run(struct store_pg *p, enum pg_stmt id, const struct pgq *q, bool binary, const char *what)
{
	bool alone = PQtransactionStatus(p->conn) == PQTRANS_IDLE;
	PGresult *r = run_once(p, id, q, binary, what);

	/* A read outside a transaction changed nothing: run it once more
	 * on a new connection when the old one broke under it. */
	if (r == NULL && alone && is_read(id) && pg_retry(p))
		r = run_once(p, id, q, binary, what);
	return r;
}

int64_t
pg_do(struct store_pg *p, enum pg_stmt id, const struct pgq *q, const char *what)
{
	PGresult *r = pg_run(p, id, q, false, what);
	int64_t n;

	if (r == NULL)
		return -1;
	n = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return n;
}

int
pg_cmd(struct store_pg *p, const char *sql, const char *what)
{
	PGresult *r = PQexec(p->conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_seterr(p, r, what);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

int
pg_declare(struct store_pg *p, const char *name, enum pg_stmt id, const char *what)
{
	char sql[2048];

	if ((size_t)snprintf(sql, sizeof(sql), "DECLARE %s NO SCROLL CURSOR FOR %s", name,
	    pg_sql[id]) >= sizeof(sql)) {
		store_setmsg(&p->base, "%s: statement too long", what);
		return -1;
	}
	return pg_cmd(p, sql, what);
}

PGresult *
pg_fetch(struct store_pg *p, const char *name, int n, const char *what)
{
	char sql[128];
	PGresult *r;

	snprintf(sql, sizeof(sql), "FETCH %d FROM %s", n, name);
	r = PQexec(p->conn, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		return r;
	pg_seterr(p, r, what);
	PQclear(r);
	return NULL;
}

int
pg_begin(struct store_pg *p)
{
	return pg_cmd(p, "BEGIN", "begin transaction");
}

int
pg_commit(struct store_pg *p)
{
	PGresult *r;

	p->commit_sent = true;
	r = PQexec(p->conn, "COMMIT");

	if (PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0) {
		PQclear(r);
		return 0;
	}
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		store_setmsg(&p->base, "commit: the transaction was rolled back");
	else
		pg_seterr(p, r, "commit (its outcome is not known)");
	PQclear(r);
	pg_rollback(p);
	return -1;
}

void
pg_rollback(struct store_pg *p)
{
	PGTransactionStatusType ts;

	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK)
		return;
	ts = PQtransactionStatus(p->conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		PQclear(PQexec(p->conn, "ROLLBACK"));
}

int64_t
pg_int(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool
pg_copy(const PGresult *r, int row, int col, char *dst, size_t len)
{
	const char *v = PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);

	return snprintf(dst, len, "%s", v) < (int)len;
}

/* ---- schema ------------------------------------------------------------------ */

/* A query of one row and one column, on c, into dst: 0 or -1 (err). */
static int
query_text(PGconn *c, const char *sql, char *dst, size_t len, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	char msg[STORE_ERR_MAX];

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		oneline(msg, sizeof(msg), PQresultErrorMessage(r));
		snprintf(err, errlen, "schema check: %s", msg);
		PQclear(r);
		return -1;
	}
	snprintf(dst, len, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/*
 * Is this database ours? One without tables in our schema is (new), and so
 * is one with our marker and a version we know. Anything else is refused
 * before we change a byte of it. *version_r is its version.
 */
static int
schema_check(PGconn *c, int *version_r, char *err, size_t errlen)
{
	char v[64], fmt[64];
	int ntables, version;

	if (query_text(c, "SELECT count(*) FROM pg_catalog.pg_class c"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
	    v, sizeof(v), err, errlen) == -1)
		return -1;
	ntables = atoi(v);
	if (query_text(c, "SELECT to_regclass('correio_meta') IS NOT NULL"
	    " AND to_regclass('schema_version') IS NOT NULL", v, sizeof(v), err, errlen) == -1)
		return -1;
	if (strcmp(v, "t") != 0) {
		if (ntables > 0) {
			snprintf(err, errlen, "not a correio store (the database holds %d tables "
			    "of another program; refusing to touch it)", ntables);
			return -1;
		}
		*version_r = 0;
		return 0;
	}
	if (query_text(c, "SELECT coalesce((SELECT value FROM correio_meta"
	    " WHERE key = 'format'), '')", fmt, sizeof(fmt), err, errlen) == -1 ||
	    query_text(c, "SELECT coalesce(max(version), 0) FROM schema_version",
	    v, sizeof(v), err, errlen) == -1)
		return -1;
	if (strcmp(fmt, PG_FORMAT) != 0) {
		snprintf(err, errlen, "not a correio store (its correio_meta says '%s')", fmt);
		return -1;
	}
	version = atoi(v);
	if (version > PG_LATEST) {
		snprintf(err, errlen, "store schema version %d is newer than this program "
		    "knows (%d); upgrade correio", version, PG_LATEST);
		return -1;
	}
	*version_r = version;
	return 0;
}

static int
exec_ok(PGconn *c, const char *sql, char *err, size_t errlen, const char *what)
{
	PGresult *r = PQexec(c, sql);
	char msg[STORE_ERR_MAX];

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		oneline(msg, sizeof(msg), PQresultErrorMessage(r));
		snprintf(err, errlen, "%s: %s", what, msg);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

/*
 * Check, and bring the schema up to date: in one transaction under the
 * migration's advisory lock (held until its end), checking again under it,
 * so that of two hosts starting at once one migrates and the other finds it
 * done. Nothing is locked when the schema is current already.
 */
static int
schema_prepare(PGconn *c, char *err, size_t errlen)
{
	char sql[128];
	int version;

	if (schema_check(c, &version, err, errlen) == -1)
		return -1;
	if (version == PG_LATEST)
		return 0;
	if (exec_ok(c, "BEGIN", err, errlen, "schema migration") == -1)
		return -1;
	if (exec_ok(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")", err, errlen,
	    "schema migration lock") == -1 ||
	    schema_check(c, &version, err, errlen) == -1)
		goto fail;
	if (version == 0 && exec_ok(c, "CREATE TABLE schema_version ("
	    "  version      integer PRIMARY KEY,"
	    "  applied      timestamptz NOT NULL DEFAULT now(),"
	    "  backend_pid  integer NOT NULL DEFAULT pg_backend_pid()"
	    ")", err, errlen, "schema migration") == -1)
		goto fail;
	for (; version < PG_LATEST; version++) {
		if (exec_ok(c, pg_migrations[version], err, errlen, "schema migration") == -1)
			goto fail;
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version(version) VALUES (%d)",
		    version + 1);
		if (exec_ok(c, sql, err, errlen, "schema version") == -1)
			goto fail;
	}
	if (exec_ok(c, "COMMIT", err, errlen, "schema migration") == -1)
		goto fail;
	return 0;
fail:
	PQclear(PQexec(c, "ROLLBACK"));
	return -1;
}

/* ---- open, close ------------------------------------------------------------ */

static void
pg_close(struct store *st)
{
	struct store_pg *p = pg_of(st);
	size_t i;

	if (p == NULL)
		return;
	PQfinish(p->conn);
	for (i = 0; i < PG_READERS; i++)
		free(p->readers[i].data);
	free(p->url);
	free(p);
}

/* where for a message: a password in it (which belongs in the libpq
 * passfile, not there) shown as "***". */
static void
redact(char *dst, size_t len, const char *where)
{
	const char *user = strstr(where, "://"), *at, *colon, *slash;

	snprintf(dst, len, "%s", where);
	if (user == NULL)
		return;
	user += 3;
	at = strchr(user, '@');
	colon = strchr(user, ':');
	slash = strchr(user, '/');
	if (at == NULL || colon == NULL || colon > at || (slash != NULL && slash < at))
		return;
	snprintf(dst, len, "%.*s:***%s", (int)(colon - where), where, at);
}

static int
pg_open(struct store **st_r, const char *where, char *err, size_t errlen)
{
	struct store_pg *p;
	char why[STORE_ERR_MAX], shown[STORE_ERR_MAX];

	*st_r = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->url = strdup(where)) == NULL) {
		free(p);
		snprintf(err, errlen, "%s: out of memory", where);
		return -1;
	}
	p->base.ops = &store_pg_ops;
	pg_readers_drop(p);
	p->last_try = mono_ms();
	if ((p->conn = pg_connect(p, where, why, sizeof(why))) == NULL ||
	    schema_prepare(p->conn, why, sizeof(why)) == -1) {
		redact(shown, sizeof(shown), where);
		snprintf(err, errlen, "%s: %s", shown, why);
		pg_close(&p->base);
		return -1;
	}
	*st_r = &p->base;
	return 0;
}

static int
pg_schema_version(struct store *st)
{
	struct store_pg *p = pg_of(st);
	PGresult *r;
	int v;

	if (pg_enter(p, false) == -1 ||
	    (r = pg_run(p, PG_SCHEMA_VERSION, NULL, false, "schema version")) == NULL)
		return -1;
	v = (int)pg_int(r, 0, 0);
	PQclear(r);
	return v;
}

static int
pg_schema_latest(void)
{
	return PG_LATEST;
}

const struct store_ops store_pg_ops = {
	.name			= "postgresql",
	.open			= pg_open,
	.close			= pg_close,
	.file_check		= NULL,
	.schema_version		= pg_schema_version,
	.schema_latest		= pg_schema_latest,
	.reserve_make		= NULL,
	.reserve_released	= NULL,
	.map_bodies		= NULL,

	.user_add		= pg_user_add,
	.user_del		= pg_user_del,
	.user_set_hash		= pg_user_set_hash,
	.user_get_hash		= pg_user_get_hash,
	.user_list		= pg_user_list,
	.domain_add		= pg_domain_add,
	.domain_del		= pg_domain_del,
	.domain_list		= pg_domain_list,
	.domain_lookup		= pg_domain_lookup,
	.alias_add		= pg_alias_add,
	.alias_del		= pg_alias_del,
	.alias_list		= pg_alias_list,
	.resolve_all		= pg_resolve_all,

	.delivery_commit_batch	= pg_delivery_commit_batch,

	.mailbox_lock		= pg_mailbox_lock,
	.mailbox_touch		= pg_mailbox_touch,
	.mailbox_unlock		= pg_mailbox_unlock,
	.mailbox_list		= pg_mailbox_list,
	.msg_read		= pg_msg_read,
	.read_done		= pg_read_done,
	.mailbox_expunge	= pg_mailbox_expunge,
	.mailbox_entry		= pg_mailbox_entry,

	.queue_list		= pg_queue_list,
	.queue_defer		= pg_queue_defer,
	.queue_delete		= pg_queue_delete,
	.queue_flush		= pg_queue_flush,
	.queue_clamp		= pg_queue_clamp,
	.queue_max_id		= pg_queue_max_id,
	.queue_claim		= pg_queue_claim,
	.queue_release		= pg_queue_release,
	.message_read		= pg_message_read,
	.message_size		= pg_message_size,

	.user_set_teacher	= pg_user_set_teacher,
	.user_is_teacher	= pg_user_is_teacher,
	.websession_add		= pg_websession_add,
	.websession_get		= pg_websession_get,
	.websession_del		= pg_websession_del,
	.token_add		= pg_token_add,
	.token_get		= pg_token_get,

	.transcript_append	= pg_transcript_append,
	.transcript_get		= pg_transcript_get,
	.log_ready		= pg_log_ready,
	.sesslog_apply		= pg_sesslog_apply,
	.session_list		= pg_session_list,
	.session_get		= pg_session_get,
	.session_involves	= pg_session_involves,

	.copy_count		= pg_copy_count,
	.dump			= pg_dump,
	.load_begin		= pg_load_begin,
	.load_record		= pg_load_record,
	.load_end		= pg_load_end,
};
