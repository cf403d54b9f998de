/*
 * store_sqlite_schema.c - the SQLite backend's schema, as an append-only
 * list of migrations. Migration i (0-based) takes a store from PRAGMA
 * user_version i to i + 1; store_sqlite.c applies every missing one forward,
 * in one transaction, on open. A released migration is never edited: a
 * change of schema is a new entry at the end. The table correio_meta marks a
 * file as ours: store_sqlite.c refuses a file with tables but without that
 * marker, and a file whose user_version is newer than this list. The session log has its own file
 * and its own list (at the end).
 */
#include <stddef.h>

#include "store.h"

const char *const store_schema_migrations[] = {
	/* version 1: the first schema */
	"CREATE TABLE correio_meta ("
	"  key    TEXT PRIMARY KEY,"
	"  value  TEXT NOT NULL"
	");"
	"INSERT INTO correio_meta(key, value) VALUES ('format', 'correio-store');"

	/* Login accounts. The name is what USER and AUTH carry. */
	"CREATE TABLE accounts ("
	"  id       INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name     TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  hash     TEXT NOT NULL,"	/* crypt(3) hash, never plaintext */
	"  created  INTEGER NOT NULL"	/* unix time */
	");"

	/* Domains served here: an account receives mail at name@each of them. */
	"CREATE TABLE domains ("
	"  name     TEXT PRIMARY KEY COLLATE NOCASE,"
	"  created  INTEGER NOT NULL"
	");"

	/* "postmaster", "info" (any local domain) or "info@lab.test". */
	"CREATE TABLE aliases ("
	"  address  TEXT PRIMARY KEY COLLATE NOCASE,"
	"  account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  created  INTEGER NOT NULL"
	");"
	"CREATE INDEX aliases_account ON aliases(account);"

	/* A message is stored once, however many recipients: the exact octets a
	 * POP3 client receives (CRLF lines, not dot-stuffed). */
	"CREATE TABLE messages ("
	"  id       INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  body     BLOB NOT NULL,"
	"  size     INTEGER NOT NULL,"
	"  sender   TEXT NOT NULL,"		/* envelope sender, '' for <> */
	"  session  TEXT NOT NULL DEFAULT '',"	/* session id that received it */
	"  created  INTEGER NOT NULL"
	");"

	/* One entry per (account, message). The uidl (RFC 1939 7) is the never
	 * reused message id plus a random part, so that it stays unique even
	 * when a store is recreated and ids start again. */
	"CREATE TABLE mailbox ("
	"  id       INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  message  INTEGER NOT NULL REFERENCES messages(id),"
	"  uidl     TEXT NOT NULL,"
	"  size     INTEGER NOT NULL,"
	"  arrived  INTEGER NOT NULL,"
	"  deleted  INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (account, uidl),"
	"  UNIQUE (account, message)"
	");"
	"CREATE INDEX mailbox_message ON mailbox(message);"

	/* Outbound queue for the relay: one item per remote recipient. */
	"CREATE TABLE queue ("
	"  id            INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  message       INTEGER NOT NULL REFERENCES messages(id),"
	"  sender        TEXT NOT NULL,"
	"  rcpt          TEXT NOT NULL,"
	"  created       INTEGER NOT NULL,"
	"  next_attempt  INTEGER NOT NULL,"
	"  attempts      INTEGER NOT NULL DEFAULT 0,"
	"  last_error    TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX queue_next ON queue(next_attempt);"
	"CREATE INDEX queue_message ON queue(message);"

	/* POP3 mailbox locks (RFC 1939 8: exclusive access), with takeover
	 * after a time to live so that a crashed session does not lock forever. */
	"CREATE TABLE locks ("
	"  account  TEXT PRIMARY KEY COLLATE NOCASE,"
	"  owner    TEXT NOT NULL,"
	"  taken    INTEGER NOT NULL"
	");"

	/* Session transcripts: "TIME C: line" / "TIME S: line". */
	"CREATE TABLE transcripts ("
	"  session_id  TEXT NOT NULL,"
	"  seq         INTEGER NOT NULL,"
	"  proto       TEXT NOT NULL,"
	"  line        TEXT NOT NULL,"
	"  time        INTEGER NOT NULL,"
	"  PRIMARY KEY (session_id, seq)"
	") WITHOUT ROWID;",

	/* version 2: an alias leads to one or more accounts (a class list,
	 * "turma" -> every student): one row per (address, account). */
	"CREATE TABLE aliases_v2 ("
	"  address  TEXT NOT NULL COLLATE NOCASE,"
	"  account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  created  INTEGER NOT NULL,"
	"  PRIMARY KEY (address, account)"
	");"
	"INSERT INTO aliases_v2(address, account, created)"
	"  SELECT address, account, created FROM aliases;"
	"DROP TABLE aliases;"
	"ALTER TABLE aliases_v2 RENAME TO aliases;"
	"CREATE INDEX aliases_account ON aliases(account);",

	/* version 3: the session log. A row per SMTP or POP3 session from its
	 * first moment (ended NULL while it goes on), and the accounts each one
	 * involved (logged in as, or delivered to), so a session can be found
	 * by account, client, time or a line typed in it (mailcli admin
	 * transcript list, webd). Sessions with transcripts from before get a
	 * row from those. */
	"CREATE TABLE sessions ("
	"  id       TEXT PRIMARY KEY,"
	"  proto    TEXT NOT NULL,"			/* smtp, pop3, smtp-out */
	"  client   TEXT NOT NULL DEFAULT '',"		/* the peer's address */
	"  started  INTEGER NOT NULL,"			/* unix time */
	"  ended    INTEGER,"				/* NULL while open */
	"  user     TEXT NOT NULL DEFAULT '',"		/* logged in as */
	"  outcome  TEXT NOT NULL DEFAULT ''"		/* how it ended */
	");"
	"CREATE INDEX sessions_started ON sessions(started);"
	"CREATE TABLE session_accounts ("
	"  session  TEXT NOT NULL,"
	"  account  TEXT NOT NULL COLLATE NOCASE,"
	"  PRIMARY KEY (session, account)"
	") WITHOUT ROWID;"
	"CREATE INDEX session_accounts_account ON session_accounts(account, session);"
	"INSERT INTO sessions(id, proto, started, ended)"
	"  SELECT session_id, min(proto), min(time), max(time) FROM transcripts"
	"  GROUP BY session_id;",

	/* version 4: webd, the web console. A teacher sees every session; a web
	 * login is a row keyed by the SHA-256 of its cookie (the cookie itself
	 * is never stored), with its CSRF token and expiry; an API token (made
	 * by mailcli admin) is kept as its SHA-256 only. */
	"ALTER TABLE accounts ADD COLUMN teacher INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE web_sessions ("
	"  id       TEXT PRIMARY KEY,"	/* hex SHA-256 of the cookie value */
	"  account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  csrf     TEXT NOT NULL,"
	"  created  INTEGER NOT NULL,"
	"  expires  INTEGER NOT NULL"
	");"
	"CREATE INDEX web_sessions_expires ON web_sessions(expires);"
	"CREATE TABLE api_tokens ("
	"  hash     TEXT PRIMARY KEY,"	/* hex SHA-256 of the token */
	"  account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  created  INTEGER NOT NULL"
	");",

	/* version 5: the session log moves to a file of its own (the session
	 * log schema below), so that writing it never takes the store's write
	 * lock: store_sqlite.c copies these tables there before this runs. */
	"DROP TABLE transcripts;"
	"DROP TABLE session_accounts;"
	"DROP TABLE sessions;",

	/* version 6: queue items are claimed by a runner ("HOST/PID/relay")
	 * until a time, so that several smtpd processes on one store never
	 * deliver one item twice (store_queue_claim()); '' is unclaimed. */
	"ALTER TABLE queue ADD COLUMN claimer TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE queue ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX queue_claimer ON queue(claimer);",
	/* version 7: the body becomes the last column of messages. SQLite
	 * keeps a zeroblob as a count of zeros only when it ends the row; in
	 * the middle it builds the whole row in memory: a spooled 50 MB
	 * message's commit took 100 MB. The table is rebuilt (every body
	 * copied once, on open, with the foreign keys off: store_sqlite.c),
	 * keeping its ids and the highest id ever given, so that an id (and so
	 * a UIDL) is never given twice. */
	"CREATE TABLE messages_v7 ("
	"  id       INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  size     INTEGER NOT NULL,"
	"  sender   TEXT NOT NULL,"
	"  session  TEXT NOT NULL DEFAULT '',"
	"  created  INTEGER NOT NULL,"
	"  body     BLOB NOT NULL"			/* last: see above */
	");"
	"INSERT INTO messages_v7(id, size, sender, session, created, body)"
	"  SELECT id, size, sender, session, created, body FROM messages;"
	"DELETE FROM sqlite_sequence WHERE name = 'messages_v7';"
	"INSERT INTO sqlite_sequence(name, seq)"
	"  SELECT 'messages_v7', seq FROM sqlite_sequence WHERE name = 'messages';"
	"DROP TABLE messages;"
	"ALTER TABLE messages_v7 RENAME TO messages;",

	/* version 8: a large body may be stored apart, as the file
	 * "<store>-bodies/<id>": its row has an empty body and a size above 0
	 * (store_sqlite_bodies.c). Nothing to rebuild; the version says that
	 * an older program, which would take such a row for a broken message,
	 * must not open this store. */
	"INSERT INTO correio_meta(key, value) VALUES ('bodies', 'apart above 64 KiB');",
};

const size_t store_schema_count =
    sizeof(store_schema_migrations) / sizeof(store_schema_migrations[0]);

/*
 * The session log's file ("<store>-sessions"): which sessions there were
 * and their transcripts (see store_transcript.c). Lab data, not mail: its
 * own file, with its own write lock, checkpoints and synchronous=NORMAL, so
 * that writing it never delays a delivery. Same rules as above.
 */
const char *const store_log_schema_migrations[] = {
	/* version 1: the tables of store versions 1 and 3, but a transcripts
	 * row holds one or more '\n'-separated lines (a session's lines of one
	 * batch), appended in rowid order and found by (session_id, seq). */
	"CREATE TABLE correio_meta ("
	"  key    TEXT PRIMARY KEY,"
	"  value  TEXT NOT NULL"
	");"
	"INSERT INTO correio_meta(key, value) VALUES ('format', 'correio-sessions');"
	"CREATE TABLE transcripts ("
	"  id          INTEGER PRIMARY KEY,"
	"  session_id  TEXT NOT NULL,"
	"  seq         INTEGER NOT NULL,"
	"  proto       TEXT NOT NULL,"
	"  lines       TEXT NOT NULL,"
	"  time        INTEGER NOT NULL"
	");"
	"CREATE UNIQUE INDEX transcripts_session ON transcripts(session_id, seq);"
	"CREATE TABLE sessions ("
	"  id       TEXT PRIMARY KEY,"
	"  proto    TEXT NOT NULL,"
	"  client   TEXT NOT NULL DEFAULT '',"
	"  started  INTEGER NOT NULL,"
	"  ended    INTEGER,"
	"  user     TEXT NOT NULL DEFAULT '',"
	"  outcome  TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX sessions_started ON sessions(started);"
	"CREATE TABLE session_accounts ("
	"  session  TEXT NOT NULL,"
	"  account  TEXT NOT NULL COLLATE NOCASE,"
	"  PRIMARY KEY (session, account)"
	") WITHOUT ROWID;"
	"CREATE INDEX session_accounts_account ON session_accounts(account, session);",
};

const size_t store_log_schema_count =
    sizeof(store_log_schema_migrations) / sizeof(store_log_schema_migrations[0]);
