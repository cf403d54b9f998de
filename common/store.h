/*
 * store.h - the mailbox store shared by smtpd, pop3d, webd and mailcli.
 * One API, two backends (common/store_backend.h says how they plug in):
 * SQLite, the embedded default, when the store is named by a path, and
 * PostgreSQL when it is named by a postgresql:// URI. Each backend owns
 * every SQL statement, its schema and its migrations; callers never write
 * SQL. SQLite: WAL mode, foreign_keys=ON, synchronous=FULL, a busy timeout
 * so several processes can share one file, and PRAGMA user_version with
 * forward migrations applied on open.
 *
 * A store handle belongs to one thread at a time (smtpd's writer thread opens
 * its own). Return values: 0 ok, -1 error (message in store_errmsg()), or one
 * of the STORE_* codes below where documented.
 */
#ifndef CORREIO_STORE_H
#define CORREIO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define STORE_EXISTS	(-2)	/* add of something already there */
#define STORE_NOTFOUND	(-3)	/* no such account, domain, alias, message */
#define STORE_LOCKED	(-4)	/* mailbox in use by another POP3 session */
#define STORE_FULL	(-5)	/* the file system is full (a batch result) */
#define STORE_MOVED	(-6)	/* the store's file was deleted or replaced */
#define STORE_UNKNOWN	(-7)	/* a commit's outcome is not known (a batch result) */

#define STORE_NAME_MAX	64	/* account names */
#define STORE_ADDR_MAX	320	/* addresses: 64 local + @ + 255 domain */
#define STORE_UIDL_MAX	71	/* RFC 1939: 1-70 characters 0x21-0x7e */
#define STORE_OWNER_MAX	512	/* "HOST/PID/tag": a lock owner or queue claimer */

struct store;

/* Open (creating and migrating as needed) the store at where: a path, or a
 * postgresql:// URI. On error returns -1, *st_r NULL, reason in err. A file
 * or database that is not a correio store is refused. */
int	store_open(struct store **st_r, const char *where, char *err, size_t errlen);
/* Does where name a PostgreSQL store: does it begin with "postgresql://" or
 * "postgres://", the URI prefixes libpq takes (case as written)? Anything
 * else is the path of a SQLite store. The one test for it (config.c too). */
bool	store_is_url(const char *where);
void	store_close(struct store **st);
const char *store_errmsg(struct store *st);
/* Was the last error a full file system (SQLITE_FULL, or ENOSPC writing a
 * spool)? The caller answers "insufficient storage" (SMTP 452 4.3.1). */
bool	store_err_full(struct store *st);
/*
 * Is the file at the store's path still the one this handle has open? The
 * database file, its -wal and its -shm are compared by device and inode with
 * those seen at open (one stat() each). 0 when they are; STORE_MOVED when one
 * was deleted or replaced (store_errmsg() says which, with its path): every
 * write is then refused, because it would go into a file nobody will see
 * again. Also checked by the store itself before each write transaction, at
 * every commit (an SQLite commit hook: the commit becomes a rollback) and
 * after a delivery's commit. The first time a process sees it, it logs
 * "event=store-missing" or "event=store-replaced" with the path (once per
 * file and kind). It does not reopen: see docs/RELIABILITY.md section 6.
 */
int	store_file_check(struct store *st);
/* Current schema version (SQLite: PRAGMA user_version), and the version this
 * code wants of a SQLite store. */
int	store_schema_version(struct store *st);
int	store_schema_latest(void);

/*
 * The reserve: a file of STORE_RESERVE_SIZE octets beside the store
 * ("<store>.reserve") that keeps room for deletions on a full disk. SQLite
 * needs free space to commit a delete (WAL frames), so without it a full
 * disk would stop users from deleting mail to make room. When a mailbox
 * expunge fails with a full disk, store_mailbox_expunge() removes the reserve
 * and tries once more. make: create it when missing and the file system has
 * room for it twice over (never fills a disk): 1 made, 0 already there or no
 * room, -1 error (store_errmsg()). released: did an expunge on this handle
 * use it since the last call? (the caller logs it; clears the flag).
 */
#define STORE_RESERVE_SIZE	((int64_t)2 << 20)
int	store_reserve_make(struct store *st);
bool	store_reserve_released(struct store *st);

/*
 * Checkpoints elsewhere. A SQLite commit goes to the write-ahead log; a
 * checkpoint later copies the log into the database file and syncs it. By
 * default the handle whose commit grows the log past STORE_CKPT_PAGES runs
 * that checkpoint itself, before its commit call returns. After
 * store_defer_checkpoints() this handle's commits only call due(arg) at
 * that point (on the committing thread, after the commit is durable); the
 * caller then runs store_checkpoint() on another handle, on another
 * thread, while this one goes on committing. Should the log still reach
 * STORE_CKPT_PAGES_MAX (the other thread does not keep up), the commit
 * checkpoints itself as before, so the log stays bounded (at that plus the
 * last transaction); once empty again it is cut back to STORE_CKPT_KEEP
 * octets. store_checkpoint() copies what it can without waiting for any
 * reader or writer: 0, or -1 (store_errmsg;
 * the store was deleted or replaced, or an I/O error). Backends without
 * such a log (PostgreSQL checkpoints by itself): defer returns false (there
 * is nothing for another thread to do) and checkpoint does nothing.
 */
#define STORE_CKPT_PAGES	1000		/* SQLite's own default */
#define STORE_CKPT_PAGES_MAX	32768		/* 128 MiB of 4 KiB pages */
#define STORE_CKPT_KEEP		((int64_t)64 << 20)
bool	store_defer_checkpoints(struct store *st, void (*due)(void *), void *arg);
int	store_checkpoint(struct store *st);
/*
 * Remove what a crash can leave behind in the store, outside its database:
 * with SQLite, body files no committed message owns (bodies stored apart,
 * store_sqlite_bodies.c). Safe while other programs use the store. smtpd
 * runs it at start. How many things went, or -1. Other backends: 0.
 */
int	store_tidy(struct store *st);

/*
 * One snapshot for the reads of one command (a RCPT's domain, alias and
 * account lookups): SQLite then takes its read lock once, not once per
 * lookup. begin returns whether it began one (not inside a transaction
 * already; never on PostgreSQL, where each statement is a snapshot of its
 * own); hand that to end. Between them: reads only.
 */
bool	store_snapshot_begin(struct store *st);
void	store_snapshot_end(struct store *st, bool began);

/* ---- accounts, domains, aliases ------------------------------------- */
int	store_user_add(struct store *st, const char *name, const char *hash);	/* STORE_EXISTS */
int	store_user_del(struct store *st, const char *name);			/* STORE_NOTFOUND */
int	store_user_set_hash(struct store *st, const char *name, const char *hash);
/* Copy the password hash of name into hash_r. STORE_NOTFOUND when unknown. */
int	store_user_get_hash(struct store *st, const char *name, char *hash_r, size_t len);
typedef void store_list_cb(void *arg, const char *a, const char *b);
/* Calls cb(arg, name, created_iso8601) for each account, sorted by name. */
int	store_user_list(struct store *st, store_list_cb *cb, void *arg);

int	store_domain_add(struct store *st, const char *domain);	/* STORE_EXISTS */
int	store_domain_del(struct store *st, const char *domain);	/* STORE_NOTFOUND */
int	store_domain_list(struct store *st, store_list_cb *cb, void *arg);	/* cb(arg, domain, NULL) */
/* Is domain (case-insensitive) served here? 1 yes, 0 no (also for NULL or
 * ""), -1 the store cannot tell now (busy, I/O; store_errmsg() says why). */
int	store_domain_lookup(struct store *st, const char *domain);

/*
 * address: "postmaster", "info@lab.test" or "info" (any local domain). An
 * alias leads to one or more accounts: each add puts one more account behind
 * it (STORE_EXISTS if that one is already there); del with account NULL
 * removes the whole alias, else only that account.
 */
int	store_alias_add(struct store *st, const char *address, const char *account);
int	store_alias_del(struct store *st, const char *address, const char *account);
int	store_alias_list(struct store *st, store_list_cb *cb, void *arg);	/* cb(arg, address, account) */
/*
 * Map a recipient to its accounts. local is the local part, domain may be
 * NULL or "" (bare "postmaster"). Looks up, in order: alias "local@domain",
 * alias "local", an account named local; the first that exists decides.
 * Matching is case-insensitive. Calls cb(arg, account, NULL) for each account
 * and returns how many (at least 1), STORE_NOTFOUND, or -1. The caller
 * checks that the domain is local first.
 */
int	store_resolve_all(struct store *st, const char *local, const char *domain,
	    store_list_cb *cb, void *arg);
/* The same when the recipient must be one account (an address a user may
 * send as): 0 with it, STORE_NOTFOUND (also for an alias of several), -1. */
int	store_resolve(struct store *st, const char *local, const char *domain,
	    char *account_r, size_t len);

/* ---- delivery: one message to many recipients, all or nothing -------- */
struct store_delivery;
/* Start a delivery. sender is the envelope sender ("" for <>). */
struct store_delivery *store_delivery_new(const char *sender, const char *session_id);
/* A local recipient (account name as resolved). Duplicates are ignored. */
int	store_delivery_add_rcpt(struct store_delivery *d, const char *account);
/* A remote recipient for the outbound queue (relay). */
int	store_delivery_add_remote(struct store_delivery *d, const char *address);
/* The message octets exactly as POP3 will send them (CRLF lines, unstuffed).
 * May be called repeatedly to append. Returns -1 on memory exhaustion. */
int	store_delivery_body(struct store_delivery *d, const void *p, size_t n);
size_t	store_delivery_size(const struct store_delivery *d);
/* Keep at most a fixed buffer of the body in memory and spool the rest to an
 * anonymous file in dir (the store's directory), copied into the store at
 * commit, or with SQLite kept as the body's own file beside the store
 * (store_sqlite_bodies.c). NULL (the default): the whole body stays in
 * memory. A delivery is committed at most once. 0 or -1. */
int	store_delivery_spool(struct store_delivery *d, const char *dir);
/*
 * A spool file that became a message's own body file (SQLite) leaves the
 * pool of spool files a process keeps; making a new one costs the file
 * system an inode allocation (under a load of large messages a fifth of
 * smtpd's event loop). This makes up to max of them ahead, on the calling
 * thread: smtpd's writer calls it after each group commit, so that the
 * event loop finds them ready.
 */
void	store_spool_refill(size_t max);
/* The message id given at commit (valid after a successful commit). */
int64_t	store_delivery_id(const struct store_delivery *d);
/* Commit one delivery in its own transaction (fsync'd before return). */
int	store_delivery_commit(struct store *st, struct store_delivery *d);
/*
 * Group commit: write n deliveries in one transaction (one fsync). Each
 * delivery is inside its own savepoint: result[i] is 0 when delivery i is on
 * disk, -1 (or STORE_FULL: the file system is full) when it alone failed.
 * Returns 0 when the transaction committed, -1 when nothing was committed
 * (every result[i] is then -1 or STORE_FULL; or STORE_UNKNOWN for those
 * that were in a transaction whose COMMIT went out and whose answer never
 * came, a database connection lost during it: committed or not, nobody
 * knows, so the caller must neither acknowledge nor refuse them; SMTP
 * closes the connection without a reply), or when the store's file was
 * deleted or replaced before the commit ended (store_file_check(): what was
 * committed went into a file nobody will see again; every result[i] is -1).
 */
int	store_delivery_commit_batch(struct store *st, struct store_delivery **ds,
	    size_t n, int *result);
void	store_delivery_free(struct store_delivery **d);

/* ---- mailboxes (POP3) ------------------------------------------------ */
struct store_msg {
	int64_t	 entry_id;		/* mailbox entry (for read/expunge) */
	int64_t	 size;			/* exact octets RETR sends, before dot-stuffing */
	int64_t	 arrived;		/* unix time */
	char	 uidl[STORE_UIDL_MAX + 1];
};
/*
 * Take the mailbox lock for account for a POP3 session (owner is a unique
 * session tag). A lock older than ttl seconds is taken over. Returns 0,
 * STORE_LOCKED, or -1.
 */
int	store_mailbox_lock(struct store *st, const char *account, const char *owner, long ttl);
/*
 * Format a lock owner for this process into dst (STORE_OWNER_MAX octets: a host
 * name, a pid and a short tag): "HOST/PID/tag". A lock whose
 * owner names this host and a process that no longer exists (a pop3d that
 * crashed or was killed) is taken over at once instead of after ttl.
 */
void	store_lock_owner(char *dst, size_t len, const char *tag);
/* Refresh the lock's time (long sessions). */
int	store_mailbox_touch(struct store *st, const char *account, const char *owner);
int	store_mailbox_unlock(struct store *st, const char *account, const char *owner);
/* Snapshot the undeleted messages, oldest first. *msgs_r is malloc'd; free(). */
int	store_mailbox_list(struct store *st, const char *account,
	    struct store_msg **msgs_r, size_t *n_r);
/*
 * Read up to len octets of a message at offset into dst; *got_r is the count
 * (0 at the end). Incremental blob I/O: never loads the whole message.
 * Sequential reads keep the message's blob open between calls (up to 4
 * messages at once), so reading is linear in the size; an open blob holds a
 * read transaction until the message's end is read or any other store
 * function is called on this handle. STORE_NOTFOUND for an unknown entry.
 */
int	store_msg_read(struct store *st, int64_t entry_id, int64_t offset,
	    void *dst, size_t len, size_t *got_r);
/* Release the message blobs kept open by store_msg_read() and
 * store_message_read() (and their read transaction): call when a stream
 * stops before the message's end (TOP, a closed connection). Optional. */
void	store_read_done(struct store *st);
/* Delete the given entries of account in one transaction (POP3 UPDATE state);
 * messages no longer referenced by any entry or queue item are removed. On a
 * full disk the reserve (above) is released and the delete tried once more:
 * a full disk fails at a write, before any sync, and the transaction was
 * rolled back whole, so the retry is safe. */
int	store_mailbox_expunge(struct store *st, const char *account,
	    const int64_t *entry_ids, size_t n);

/* ---- outbound queue (relay) ------------------------------------------- */
struct store_queue_item {
	int64_t	 id;
	int64_t	 message_id;
	char	 sender[STORE_ADDR_MAX + 1];
	char	 rcpt[STORE_ADDR_MAX + 1];
	int64_t	 created;
	int64_t	 next_attempt;
	int	 attempts;
	char	 last_error[512];
};
/* Items whose next_attempt <= now (all items when now < 0), claimed or not
 * (mailcli admin queue list; a runner claims, below). *items_r is malloc'd. */
int	store_queue_list(struct store *st, int64_t now,
	    struct store_queue_item **items_r, size_t *n_r);
/*
 * Claim due items for a queue runner, so that several runners on one store
 * (smtpd processes on one SQLite file, or hosts on one PostgreSQL database)
 * never deliver one item twice. In one write transaction: up to max items
 * (max > 0) whose next_attempt <= now and that are unclaimed, claimed by
 * claimer itself, or claimed by another whose claim ran out (claimed_until
 * <= now) or whose owner is gone (store_owner_gone(): a runner of this host
 * that died is taken over at once), oldest first as store_queue_list(),
 * become claimer's until until (unix time). Items claimer already holds are
 * returned again, and every claim of claimer is renewed to until, returned
 * or not: the runner renews its items in flight by claiming on every run.
 * claimer is "HOST/PID/tag" (store_lock_owner()). *items_r is malloc'd
 * (NULL when n is 0). 0 or -1; -1 with "not supported by this backend" for
 * a backend without claims.
 */
int	store_queue_claim(struct store *st, int64_t now, const char *claimer, int64_t until,
	    size_t max, struct store_queue_item **items_r, size_t *n_r);
/* Give back every claim of claimer (a runner's clean stop). 0 or -1. */
int	store_queue_release(struct store *st, const char *claimer);
/* Record a failed attempt: attempts+1, next_attempt, last_error; the item's
 * claim is dropped (it is due again only at next_attempt, for any runner). */
int	store_queue_defer(struct store *st, int64_t id, int64_t next_attempt, const char *error);
/* Remove an item (delivered or bounced), and its claim with it; drops the
 * message if unreferenced. */
int	store_queue_delete(struct store *st, int64_t id);
/* Set next_attempt = 0 on every item (mailcli admin queue flush); claims
 * stay as they are. */
int	store_queue_flush(struct store *st);
/*
 * Bring every next_attempt later than latest back to latest (after the
 * wall clock stepped back, a retry would otherwise wait for the step as
 * well). Returns the number of items changed, or -1.
 */
int	store_queue_clamp(struct store *st, int64_t latest);
/* The highest queue item id so far (0 for an empty queue), or -1. Ids only
 * grow: an item with a higher id was queued later. */
int64_t	store_queue_max_id(struct store *st);
/* Read a queued message like store_msg_read. */
int	store_message_read(struct store *st, int64_t message_id, int64_t offset,
	    void *dst, size_t len, size_t *got_r);
int64_t	store_message_size(struct store *st, int64_t message_id);

/* ---- transcripts ------------------------------------------------------ */
/* Append '\n'-separated lines for a session in one transaction. */
int	store_transcript_append(struct store *st, const char *session_id,
	    const char *proto, const char *lines, size_t len);
/* Call cb(arg, line, NULL) for each line of the session, in order.
 * STORE_NOTFOUND when there is no such session. */
int	store_transcript_get(struct store *st, const char *session_id,
	    store_list_cb *cb, void *arg);

/* ---- the web console ----------------------------------- */
#define STORE_WEBKEY_MAX	64	/* hex SHA-256 of a cookie or token */
#define STORE_CSRF_MAX		64	/* a web session's CSRF token, hex */
#define STORE_SID_MAX		63	/* a session id (log_session_id() makes 12 characters) */

/* Mark an account as a teacher (or not). 0, STORE_NOTFOUND, -1. */
int	store_user_set_teacher(struct store *st, const char *name, bool teacher);
/* 1 when name is a teacher, 0 when not, STORE_NOTFOUND, -1. */
int	store_user_is_teacher(struct store *st, const char *name);
/*
 * A web login: key is the hex SHA-256 of the cookie, csrf its CSRF token,
 * valid until expires (unix time). Expired logins are deleted first.
 * 0, STORE_NOTFOUND (no such account), -1.
 */
int	store_websession_add(struct store *st, const char *key, const char *account,
	    const char *csrf, int64_t expires);
/* The unexpired web login of key at time now: account_r (STORE_NAME_MAX + 1),
 * csrf_r (STORE_CSRF_MAX + 1). 0, STORE_NOTFOUND, -1. */
int	store_websession_get(struct store *st, const char *key, int64_t now,
	    char *account_r, char *csrf_r);
int	store_websession_del(struct store *st, const char *key);	/* 0 or -1 */
/* An API token, stored as key (its hex SHA-256). 0, STORE_NOTFOUND, STORE_EXISTS, -1. */
int	store_token_add(struct store *st, const char *key, const char *account);
/* The account of the token whose hex SHA-256 is key: 0, STORE_NOTFOUND, -1. */
int	store_token_get(struct store *st, const char *key, char *account_r);

/* One mailbox entry of an account, with what the web console shows of it. */
struct store_msg_info {
	struct store_msg msg;
	char	 session[STORE_SID_MAX + 1];	/* session that received it, or "" */
	char	 sender[STORE_ADDR_MAX + 1];		/* envelope sender, "" for <> */
};
/* Entry entry_id if it is in account's mailbox (undeleted): 0,
 * STORE_NOTFOUND (absent or someone else's), -1. */
int	store_mailbox_entry(struct store *st, const char *account, int64_t entry_id,
	    struct store_msg_info *info_r);

/*
 * ---- the session log (written by common/sesslog.c) --------------------
 * Kept in a file of its own beside the store, "<store path>-sessions" (WAL,
 * synchronous=NORMAL: a crash may lose its last commits, never mail). Every
 * handle opens it at its first session-log call; writing it never takes the
 * store's write lock, so transcripts never delay a delivery.
 */
#define STORE_SESSION_ID_MAX	31	/* session ids (20 hex digits from the daemons) */
#define STORE_PROTO_MAX		11	/* "smtp", "pop3", "smtp-out" */
#define STORE_CLIENT_MAX	63	/* an address as text */
#define STORE_OUTCOME_MAX	63	/* "quit", "timeout", "eof"... */

/* One thing a session did, as the session log hands it to the store. */
enum store_sesslog_kind {
	STORE_SESSLOG_OPEN,	/* text: the client's address; the session starts */
	STORE_SESSLOG_USER,	/* text: the account it logged in as */
	STORE_SESSLOG_ACCOUNT,	/* text: an account it delivered to */
	STORE_SESSLOG_LINES,	/* text: '\n'-separated transcript lines */
	STORE_SESSLOG_CLOSE	/* text: how it ended */
};
struct store_sesslog_rec {
	enum store_sesslog_kind kind;
	int64_t		 time;		/* unix time of the event */
	const char	*id;		/* session id */
	const char	*proto;		/* "smtp", "pop3", "smtp-out" */
	const char	*text;
	size_t		 len;		/* of text */
};
/* Apply n records in one transaction, in order. 0 or -1. */
int	store_sesslog_apply(struct store *st, const struct store_sesslog_rec *recs, size_t n);
/* Open the session log's file now (a start-up error is better than a
 * failed first batch). 0 or -1. */
int	store_log_ready(struct store *st);

struct store_session_info {
	char	 id[STORE_SESSION_ID_MAX + 1];
	char	 proto[STORE_PROTO_MAX + 1];
	char	 client[STORE_CLIENT_MAX + 1];
	int64_t	 started;
	int64_t	 ended;				/* 0 while the session is open */
	char	 user[STORE_NAME_MAX + 1];	/* "" unless it logged in */
	char	 outcome[STORE_OUTCOME_MAX + 1];
};
struct store_session_filter {
	const char	*account;	/* sessions this account took part in; NULL: all */
	const char	*client;	/* exactly this client address; NULL: any */
	int64_t		 since;		/* started at or after (unix time); 0: any */
	const char	*text;		/* a transcript line contains it; NULL: any */
	size_t		 limit;		/* at most this many; 0: 100 */
};
typedef void store_session_cb(void *arg, const struct store_session_info *si);
/* Sessions matching f, newest first, to cb. 0 or -1. */
int	store_session_list(struct store *st, const struct store_session_filter *f,
	    store_session_cb *cb, void *arg);
/* One session: 0, STORE_NOTFOUND or -1. */
int	store_session_get(struct store *st, const char *id, struct store_session_info *si_r);
/* Did account take part in session id (logged in as it, or delivered to it)?
 * 1, 0 or -1. */
int	store_session_involves(struct store *st, const char *id, const char *account);

/*
 * Read this handle's pages through a memory map of the store file, up to
 * STORE_MMAP_SIZE (SQLite's mmap_size): for a handle that streams message
 * bodies (pop3d's RETR). A large body is a chain of overflow pages, each a
 * pread() without it; mapped, SQLite copies them from the page cache (a
 * 50 MB RETR: 229 -> 760 MB/s; 20 streams of 1 MB: 0.84-0.91x -> 1.19-1.32x
 * Dovecot). The pages touched count in the process's RSS as file pages
 * (page cache), not as its memory. A read error on a mapped page would be a
 * SIGBUS instead of an error reply (docs/RELIABILITY.md). 0 or -1.
 */
#define STORE_MMAP_SIZE		((int64_t)1 << 30)
int	store_map_bodies(struct store *st);

/* ---- the SQLite schema (store_sqlite_schema.c; its backend and tests only) ---- */
/* Migration i takes user_version i to i + 1: the store's, and the session
 * log's (its own file, "<store>-sessions"). */
extern const char *const store_schema_migrations[];
extern const size_t store_schema_count;
extern const char *const store_log_schema_migrations[];
extern const size_t store_log_schema_count;

#endif
