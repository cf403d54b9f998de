/*
 * store_sqlite.h - the SQLite backend's own header: what the store_sqlite*.c
 * files share and nobody else sees: the statement enum (its SQL is the table
 * in store_sqlite.c), struct store_sqlite (a handle), the backend's ops, and
 * the helpers every file of the backend runs its statements through. Never
 * include this outside common/store_sqlite*.c: callers use store.h and never
 * see SQL. See docs/HACKING.md, "Adding a store query".
 */
#ifndef CORREIO_STORE_SQLITE_H
#define CORREIO_STORE_SQLITE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "store_backend.h"

/* One entry per prepared statement; store_sql[] in store_sqlite.c holds its SQL. */
enum store_stmt {
	ST_BEGIN,
	ST_BEGIN_READ,
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
	ST_ALIAS_DEL_ONE,
	ST_ALIAS_LIST,
	ST_ALIAS_GET,
	ST_FIRST_ACCOUNT,

	ST_MSG_ADD,
	ST_MSG_BODY_INLINE,
	ST_ENTRY_ADD,
	ST_QUEUE_ADD,

	ST_SYNC_NORMAL,
	ST_SYNC_FULL,
	ST_LOCK_TAKE,
	ST_LOCK_TOUCH,
	ST_LOCK_DEL,
	ST_LOCK_OWNER,
	ST_MAILBOX_LIST,
	ST_ENTRY_MESSAGE,
	ST_ENTRY_DEL,
	ST_MSG_DEL_IF_ORPHAN,
	ST_MSG_SIZE,
	ST_MSG_APART,

	ST_QUEUE_LIST,
	ST_QUEUE_DEFER,
	ST_QUEUE_GET,
	ST_QUEUE_DEL,
	ST_QUEUE_FLUSH,
	ST_QUEUE_CLAMP,
	ST_QUEUE_MAX_ID,
	ST_QUEUE_CLAIMERS,
	ST_QUEUE_UNCLAIM,
	ST_QUEUE_RENEW,
	ST_QUEUE_CLAIM,

	/* the session log's file: keep these together (ST_IS_LOG) */
	ST_TRANSCRIPT_SEQ,
	ST_TRANSCRIPT_ADD,
	ST_TRANSCRIPT_GET,
	ST_SESSION_OPEN,
	ST_SESSION_WHOLE,
	ST_SESSION_USER,
	ST_SESSION_ACCOUNT,
	ST_SESSION_CLOSE,
	ST_SESSION_LIST,
	ST_SESSION_GET,
	ST_SESSION_INVOLVES,

	ST_USER_SET_TEACHER,
	ST_USER_IS_TEACHER,
	ST_WEBSESS_ADD,
	ST_WEBSESS_GET,
	ST_WEBSESS_DEL,
	ST_WEBSESS_PURGE,
	ST_TOKEN_ADD,
	ST_TOKEN_GET,
	ST_MAILBOX_ENTRY,

	ST_USER_VERSION,

	/* copying a whole store (store_sqlite_copy.c) */
	ST_COPY_COUNT,
	ST_DUMP_DOMAINS,
	ST_DUMP_ACCOUNTS,
	ST_DUMP_ALIASES,
	ST_DUMP_MESSAGES,
	ST_DUMP_ENTRIES,
	ST_DUMP_QUEUE,
	ST_DUMP_WEBSESSIONS,
	ST_DUMP_TOKENS,
	ST_DUMP_SEQUENCES,
	ST_LOAD_DOMAIN,
	ST_LOAD_ACCOUNT,
	ST_LOAD_ALIAS,
	ST_LOAD_MESSAGE,
	ST_LOAD_ENTRY,
	ST_LOAD_QUEUE,
	ST_LOAD_WEBSESSION,
	ST_LOAD_TOKEN,
	ST_LOAD_SEQ_RAISE,
	ST_LOAD_SEQ_ADD,
	/* ... and on the session log's file: keep these together (ST_IS_LOG) */
	ST_LOG_COPY_COUNT,
	ST_DUMP_SESSIONS,
	ST_DUMP_SESSION_ACCOUNTS,
	ST_DUMP_TRANSCRIPTS,
	ST_LOAD_SESSION,
	ST_LOAD_SESSION_ACCOUNT,
	ST_LOAD_TRANSCRIPT,
	ST_LOG_CLEAR_SESSIONS,
	ST_LOG_CLEAR_SESSION_ACCOUNTS,
	ST_LOG_CLEAR_TRANSCRIPTS,

	ST_COUNT
};

/* The SQL of each statement (store_sqlite.c). */
extern const char *const store_sql[ST_COUNT];

/*
 * Open message blobs kept between store_msg_read() calls. SQLite reaches an
 * offset in a large blob by walking its chain of overflow pages, which an
 * open handle remembers: reopening for every chunk would make reading a
 * message quadratic (25 MiB in 16 KiB chunks: 10 s instead of 0.05 s). An
 * open blob holds a read transaction, so every other store call releases
 * them all first (see store_stmt_get()), and a blob read to its end is released.
 * A body stored apart (store_sqlite_bodies.c) is held here as its open file.
 */
#define STORE_BLOBS	4	/* messages streamed at once on one handle */

struct store_blob {
	sqlite3_blob	*blob;
	int		 fd;		/* a body stored apart: its file; else -1 */
	int64_t		 key;		/* mailbox entry id, or -message id */
	int64_t		 size;
	unsigned	 used;		/* LRU clock */
};

/* Statements on the session log's file (store_log_ready() prepares them);
 * every other one runs on the store's. */
#define ST_IS_LOG(id)	(((id) >= ST_TRANSCRIPT_SEQ && (id) <= ST_SESSION_INVOLVES) || \
			 ((id) >= ST_LOG_COPY_COUNT && (id) <= ST_LOG_CLEAR_TRANSCRIPTS))

/*
 * The files a handle has open: the database, its -wal and its -shm, by
 * device and inode, so that a file deleted or replaced under a running
 * program is noticed (sqlite_file_check() in store_sqlite.c). The -wal and -shm are
 * recorded when first seen (they exist from the first transaction on).
 */
enum store_file { STORE_F_DB, STORE_F_WAL, STORE_F_SHM, STORE_F_COUNT };
#define STORE_PATH_MAX	4096	/* a store file's path, with its NUL */

struct store_fileid {
	char	 path[STORE_PATH_MAX];
	dev_t	 dev;
	ino_t	 ino;
	int64_t	 born_s;	/* birth time (statx), where the file system keeps */
	uint32_t born_ns;	/* one: a deleted file's inode number is soon reused */
	bool	 known;
};

struct store_seen;

struct store_sqlite {
	struct store	 base;		/* the front's part: first */
	sqlite3		*db;
	sqlite3		*logdb;		/* the session log's file, once opened */
	char		*logpath;	/* "<store path>-sessions" */
	struct store_fileid files[STORE_F_COUNT];
	struct store_seen *seen;	/* this process's first view (store_sqlite.c) */
	bool		 moved;		/* the last store_file_check() failed */
	bool		 wal_salvaged;	/* the WAL was copied after a lost -wal/-shm */
	bool		 ckpt_logged;	/* ... and that was logged */
	char		 moved_err[STORE_ERR_MAX];	/* why, for store_seterr() */
	sqlite3_stmt	*stmt[ST_COUNT];
	struct store_blob blobs[STORE_BLOBS];
	unsigned	 clock;
	bool		 reserve_released;	/* store_reserve_released() */
	char		*bodies_path;	/* "<store path>-bodies" (store_sqlite_bodies.c) */
	int		 bodies_fd;	/* that directory, or -1 */
	dev_t		 bodies_dev;	/* ... and what it is */
	ino_t		 bodies_ino;
	bool		 bodies_logged;	/* "cannot store apart" said once */
	bool		 bodies_moved_logged;	/* "directory replaced" said once */
	int64_t		*gone;		/* bodies to unlink once this transaction commits */
	size_t		 ngone, capgone;
	void		(*ckpt_due)(void *);	/* store_defer_checkpoints() */
	void		*ckpt_arg;
};

/* ---- errors (store_sqlite.c) ---- */
/* Record "what: <sqlite's message>" as the handle's error (the store's
 * connection; store_seterr_db: db's, e.g. the session log's). */
void	store_seterr(struct store_sqlite *st, const char *what);
void	store_seterr_db(struct store_sqlite *st, sqlite3 *db, const char *what);
/* True when the last error on st was a constraint (unique key, NOT NULL). */
bool	store_is_constraint(struct store_sqlite *st);

/* ---- statements (store_sqlite.c) ---- */
/* The prepared statement id, ready to bind. Releases the open blobs (and so
 * their read transaction) before anything else runs. */
sqlite3_stmt *store_stmt_get(struct store_sqlite *st, enum store_stmt id);
/* Same, keeping the open blobs: only for reads inside their snapshot. */
sqlite3_stmt *store_stmt_keep_blobs(struct store_sqlite *st, enum store_stmt id);
/* Every use of a statement ends here: reset and clear its bindings. */
void	store_stmt_done(sqlite3_stmt *s);
/* Step a bound statement that returns no rows, then reset it: 0 or -1
 * (error recorded as "what"). */
int	store_step_done(struct store_sqlite *st, sqlite3_stmt *s, const char *what);
/* Run statement id (no parameters, rows ignored): 0 or -1. */
int	store_exec(struct store_sqlite *st, enum store_stmt id, const char *what);
/* Bind a NUL-terminated text parameter (static: valid until the step). */
void	store_bind_text(sqlite3_stmt *s, int i, const char *v);
/* Run a one-parameter lookup returning one text column into dst: 0,
 * STORE_NOTFOUND, or -1 (also when dst is too small). */
int	store_lookup_text(struct store_sqlite *st, enum store_stmt id, const char *key,
	    char *dst, size_t len);

/*
 * Make room for row n of a listing in v (cap elements of size bytes,
 * doubled as needed): returns v or its reallocation. On failure returns
 * NULL with v freed, statement s reset and the error recorded ("out of
 * memory listing WHAT").
 */
void	*store_grow(struct store_sqlite *st, sqlite3_stmt *s, void *v, size_t n, size_t *cap,
	    size_t size, const char *what);

/* store_sqlite_mailbox.c: delete message_id when no mailbox entry or queue item
 * references it any more (inside the caller's transaction). 0 or -1. */
int	store_message_drop_orphan(struct store_sqlite *st, int64_t message_id);

/* store_sqlite.c: remove the reserve (a full disk): 0 removed, -1 there was none. */
int	store_reserve_release(struct store_sqlite *st);

/* ---- transactions (store_sqlite.c) ---- */
/* BEGIN IMMEDIATE: 0 or -1; -1 also when store_file_check() fails. */
int	store_begin(struct store_sqlite *st);
/* Several reads in one snapshot (one read lock, not one per statement):
 * true when it began one, to hand to store_read_end(). */
bool	store_read_begin(struct store_sqlite *st);
void	store_read_end(struct store_sqlite *st, bool began);
int	store_commit(struct store_sqlite *st);		/* rolls back when COMMIT fails */
void	store_rollback(struct store_sqlite *st);	/* keeps the error already recorded */

/* ---- message blobs ---- */
void	store_blobs_release(struct store_sqlite *st);		/* store_sqlite.c */
bool	store_blobs_open(const struct store_sqlite *st);	/* store_sqlite.c */
/* store_sqlite_mailbox.c: the open blob for key, or NULL */
struct store_blob *store_blob_find(struct store_sqlite *st, int64_t key);
/* store_sqlite_mailbox.c: open message_id's body (store_body_open()) under key
 * in the cache of open bodies; NULL with
 * *rc_r STORE_NOTFOUND or -1 */
struct store_blob *store_blob_open(struct store_sqlite *st, int64_t key, int64_t message_id,
	    int *rc_r);
/* store_sqlite_mailbox.c: read from an open body; released at its end. 0 or -1 */
int	store_blob_read(struct store_sqlite *st, struct store_blob *b, int64_t offset,
	    void *dst, size_t len, size_t *got_r);

/* store_sqlite_bodies.c: open message_id's body into b (closed): its blob,
 * or its file when stored apart. 0, STORE_NOTFOUND or -1. */
int	store_body_open(struct store_sqlite *st, struct store_blob *b, int64_t message_id);
void	store_body_close(struct store_blob *b);
/* Up to len octets at offset (0 at the end) into dst; b stays open. 0 or -1. */
int	store_body_pread(struct store_sqlite *st, struct store_blob *b, int64_t offset,
	    void *dst, size_t len, size_t *got_r);
static inline bool
store_body_is_open(const struct store_blob *b)
{
	return b->blob != NULL || b->fd != -1;
}

/* ---- bodies stored apart (store_sqlite_bodies.c) ---- */
#define STORE_BODIES_SUFFIX	"-bodies"	/* the directory: store path + this */
/* At open: the directory's path, and the directory when it can be had. 0 or -1 */
int	bodies_init(struct store_sqlite *st, const char *path);
void	bodies_free(struct store_sqlite *st);
/* Before a batch's transaction: start writing d's spool to disk. */
void	bodies_prepare(struct store_delivery *d);
/* Give d's spool file the name of message id (in the open transaction):
 * 0 (d->apart), 1 when it cannot be done here (store the body inline), -1
 * on error (recorded; a full disk is flagged). */
int	bodies_link(struct store_sqlite *st, struct store_delivery *d, int64_t id);
/* Before COMMIT: every linked body of the batch (result[i] 0), then the
 * directory, on disk. 0 or -1 (recorded). */
int	bodies_sync(struct store_sqlite *st, struct store_delivery **ds, size_t n,
	    const int *result);
/* Remove message id's file now (its row was rolled back). */
void	bodies_unlink(struct store_sqlite *st, int64_t id);
/* Run a bound DELETE FROM messages ... RETURNING id, stored apart: the
 * files of those stored apart go when the transaction commits. 0 or -1. */
int	bodies_delete_step(struct store_sqlite *st, sqlite3_stmt *s, const char *what);
void	bodies_committed(struct store_sqlite *st);
void	bodies_rolled_back(struct store_sqlite *st);

/* The handle behind the front's pointer. */
static inline struct store_sqlite *
sqlite_of(struct store *st)
{
	return (struct store_sqlite *)st;
}

/* ---- the ops (store_sqlite_ops in store_sqlite.c), one per store.h call ---- */
/* store_sqlite.c */
int	sqlite_file_check(struct store *base);
int	sqlite_reserve_make(struct store *base);
bool	sqlite_reserve_released(struct store *base);
int	sqlite_log_ready(struct store *base);
int	sqlite_schema_version(struct store *base);
int	sqlite_map_bodies(struct store *base);
bool	sqlite_snapshot_begin(struct store *base);
void	sqlite_snapshot_end(struct store *base, bool began);
bool	sqlite_defer_checkpoints(struct store *base, void (*due)(void *), void *arg);
int	sqlite_checkpoint(struct store *base);
int	sqlite_tidy(struct store *base);
int	sqlite_schema_latest(void);
/* store_sqlite_account.c */
int	sqlite_user_add(struct store *base, const char *name, const char *hash);
int	sqlite_user_del(struct store *base, const char *name);
int	sqlite_user_set_hash(struct store *base, const char *name, const char *hash);
int	sqlite_user_get_hash(struct store *base, const char *name, char *hash_r, size_t len);
int	sqlite_user_list(struct store *base, store_list_cb *cb, void *arg);
int	sqlite_domain_add(struct store *base, const char *domain);
int	sqlite_domain_del(struct store *base, const char *domain);
int	sqlite_domain_list(struct store *base, store_list_cb *cb, void *arg);
int	sqlite_domain_lookup(struct store *base, const char *domain);
int	sqlite_alias_add(struct store *base, const char *address, const char *account);
int	sqlite_alias_del(struct store *base, const char *address, const char *account);
int	sqlite_alias_list(struct store *base, store_list_cb *cb, void *arg);
int	sqlite_resolve_all(struct store *base, const char *local, const char *domain,
	    store_list_cb *cb, void *arg);
/* store_sqlite_delivery.c */
int	sqlite_delivery_commit_batch(struct store *base, struct store_delivery **ds,
	    size_t n, int *result);
/* store_sqlite_mailbox.c */
int	sqlite_mailbox_lock(struct store *base, const char *account, const char *owner, long ttl);
int	sqlite_mailbox_touch(struct store *base, const char *account, const char *owner);
int	sqlite_mailbox_unlock(struct store *base, const char *account, const char *owner);
int	sqlite_mailbox_list(struct store *base, const char *account,
	    struct store_msg **msgs_r, size_t *n_r);
int	sqlite_msg_read(struct store *base, int64_t entry_id, int64_t offset,
	    void *dst, size_t len, size_t *got_r);
void	sqlite_read_done(struct store *base);
int	sqlite_mailbox_expunge(struct store *base, const char *account,
	    const int64_t *entry_ids, size_t n);
/* store_sqlite_queue.c */
int	sqlite_queue_list(struct store *base, int64_t now, struct store_queue_item **items_r, size_t *n_r);
int	sqlite_queue_defer(struct store *base, int64_t id, int64_t next_attempt, const char *error);
int	sqlite_queue_delete(struct store *base, int64_t id);
int	sqlite_queue_flush(struct store *base);
int	sqlite_queue_clamp(struct store *base, int64_t latest);
int64_t	sqlite_queue_max_id(struct store *base);
int	sqlite_queue_claim(struct store *base, int64_t now, const char *claimer, int64_t until,
	    size_t max, struct store_queue_item **items_r, size_t *n_r);
int	sqlite_queue_release(struct store *base, const char *claimer);
int	sqlite_message_read(struct store *base, int64_t message_id, int64_t offset,
	    void *dst, size_t len, size_t *got_r);
int64_t	sqlite_message_size(struct store *base, int64_t message_id);
/* store_sqlite_transcript.c */
int	sqlite_transcript_append(struct store *base, const char *session_id,
	    const char *proto, const char *lines, size_t len);
int	sqlite_transcript_get(struct store *base, const char *session_id,
	    store_list_cb *cb, void *arg);
int	sqlite_sesslog_apply(struct store *base, const struct store_sesslog_share *shares,
	    size_t n);
int	sqlite_session_list(struct store *base, const struct store_session_filter *f,
	    store_session_cb *cb, void *arg);
int	sqlite_session_get(struct store *base, const char *id, struct store_session_info *si_r);
int	sqlite_session_involves(struct store *base, const char *id, const char *account);
/* store_sqlite_web.c */
int	sqlite_user_set_teacher(struct store *base, const char *name, bool teacher);
int	sqlite_user_is_teacher(struct store *base, const char *name);
int	sqlite_websession_add(struct store *base, const char *key, const char *account,
	    const char *csrf, int64_t expires);
int	sqlite_websession_get(struct store *base, const char *key, int64_t now,
	    char *account_r, char *csrf_r);
int	sqlite_websession_del(struct store *base, const char *key);
int	sqlite_token_add(struct store *base, const char *key, const char *account);
int	sqlite_token_get(struct store *base, const char *key, char *account_r);
int	sqlite_mailbox_entry(struct store *base, const char *account, int64_t entry_id,
	    struct store_msg_info *info_r);
/* store_sqlite_copy.c */
int	sqlite_copy_count(struct store *base, int64_t counts[STORE_REC_KINDS]);
int	sqlite_dump(struct store *base, const struct store_dump_sink *sink);
int	sqlite_load_begin(struct store *base);
int	sqlite_load_record(struct store *base, const struct store_rec *r);
int	sqlite_load_end(struct store *base, bool commit);

#endif
