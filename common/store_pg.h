/*
 * store_pg.h - what the PostgreSQL backend's files (store_pg*.c) share and
 * nobody else sees: the handle, the statement enum (its SQL is the table in
 * store_pg.c), the parameter list and the helpers every statement runs
 * through. Never include this outside common/store_pg*.c.
 */
#ifndef CORREIO_STORE_PG_H
#define CORREIO_STORE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store_backend.h"

/* One entry per statement; pg_sql[] in store_pg.c holds its SQL. Each is
 * prepared (PQprepare) once per connection, at its first use. */
enum pg_stmt {
	PG_USER_ADD,
	PG_USER_DEL,
	PG_USER_SET_HASH,
	PG_USER_GET_HASH,
	PG_USER_LIST,
	PG_LOCK_DEL_ACCOUNT,
	PG_ORPHANS_DEL,

	PG_DOMAIN_ADD,
	PG_DOMAIN_DEL,
	PG_DOMAIN_LIST,
	PG_DOMAIN_GET,
	PG_DOMAIN_ALIASES_DEL,

	PG_ALIAS_ADD,
	PG_ALIAS_DEL,
	PG_ALIAS_DEL_ONE,
	PG_ALIAS_LIST,
	PG_RESOLVE,

	PG_MSG_ADD,
	PG_CHUNK_ADD,
	PG_ACCOUNT_MISSING,

	PG_LOCK_TAKE,
	PG_LOCK_TOUCH,
	PG_LOCK_DEL,
	PG_LOCK_OWNER,
	PG_MAILBOX_LIST,
	PG_ENTRY_MESSAGE,
	PG_MSG_SIZE,
	PG_CHUNK_GET,
	PG_ENTRIES_DEL,
	PG_MSGS_LOCK,
	PG_MSGS_DEL_IF_ORPHAN,

	PG_QUEUE_LIST,
	PG_QUEUE_DEFER,
	PG_QUEUE_DEL,
	PG_QUEUE_FLUSH,
	PG_QUEUE_CLAMP,
	PG_QUEUE_MAX_ID,
	PG_QUEUE_CLAIMERS,
	PG_QUEUE_UNCLAIM,
	PG_QUEUE_RENEW,
	PG_QUEUE_CLAIM,

	PG_USER_SET_TEACHER,
	PG_USER_IS_TEACHER,
	PG_WEBSESS_ADD,
	PG_WEBSESS_GET,
	PG_WEBSESS_DEL,
	PG_WEBSESS_PURGE,
	PG_TOKEN_ADD,
	PG_TOKEN_GET,
	PG_MAILBOX_ENTRY,

	PG_TRANSCRIPT_SEQ,
	PG_TRANSCRIPT_ADD,
	PG_TRANSCRIPT_GET,
	PG_SESSION_OPEN,
	PG_SESSION_USER,
	PG_SESSION_ACCOUNT,
	PG_SESSION_CLOSE,
	PG_SESSION_LIST,
	PG_SESSION_GET,
	PG_SESSION_INVOLVES,

	PG_SCHEMA_VERSION,

	PG_COPY_COUNT,
	PG_DUMP_DOMAINS,
	PG_DUMP_ACCOUNTS,
	PG_DUMP_ALIASES,
	PG_DUMP_MESSAGES,
	PG_DUMP_ENTRIES,
	PG_DUMP_QUEUE,
	PG_DUMP_SESSIONS,
	PG_DUMP_SESSION_ACCOUNTS,
	PG_DUMP_TRANSCRIPTS,
	PG_DUMP_WEBSESSIONS,
	PG_DUMP_TOKENS,
	PG_DUMP_SEQUENCES,
	PG_LOAD_DOMAIN,
	PG_LOAD_ACCOUNT,
	PG_LOAD_ALIAS,
	PG_LOAD_MESSAGE,
	PG_LOAD_ENTRY,
	PG_LOAD_QUEUE,
	PG_LOAD_SESSION,
	PG_LOAD_SESSION_ACCOUNT,
	PG_LOAD_TRANSCRIPT,
	PG_LOAD_WEBSESSION,
	PG_LOAD_TOKEN,
	PG_LOAD_SEQ_RAISE,
	PG_LOAD_SEQ_MAX,

	PG_COUNT
};

/*
 * A message body is kept as rows of PG_CHUNK octets (message_chunks, see
 * store_pg.c's header for why). A handle keeps the last chunk it read of up
 * to PG_READERS messages, so that reading a message in small pieces fetches
 * each chunk once; any other call on the handle forgets them (as SQLite's
 * open blobs are released), so a later read looks its entry up again.
 */
#define PG_CHUNK	((size_t)256 << 10)
#define PG_READERS	4

struct pg_reader {
	int64_t		 key;		/* mailbox entry id, or -message id; 0: free */
	int64_t		 message;
	int64_t		 size;		/* of the whole body */
	int64_t		 seq;		/* the chunk in data, -1: none */
	unsigned char	*data;		/* PG_CHUNK octets, malloc'd */
	size_t		 len;		/* of data */
	unsigned	 used;		/* LRU clock */
};

struct store_pg {
	struct store	 base;
	PGconn		*conn;
	char		*url;
	bool		 prepared[PG_COUNT];	/* on this connection */
	int64_t		 last_try;	/* monotonic ms of the last connection attempt */
	int64_t		 fail_ms;	/* how long the last failed attempt took (0: none) */
	char		 sqlstate[6];	/* of the last error, "" for none */
	/* For running an op once more after a lost connection (pg_retry()),
	 * reset by pg_enter(): */
	bool		 lost;		/* the last error was the connection lost */
	bool		 commit_sent;	/* a COMMIT (or a write outside a transaction) went out */
	bool		 retried;	/* this op ran once more already */
	bool		 loading;	/* between load_begin and load_end (store_pg_copy.c) */
	bool		 ending;	/* the server said FATAL: it is closing conn */
	struct pg_reader readers[PG_READERS];
	unsigned	 clock;
};

static inline struct store_pg *
pg_of(struct store *st)
{
	return (struct store_pg *)st;
}

/* ---- parameters ---- */
#define PG_PARAMS_MAX	8
#define PG_NUM_MAX	24	/* an int64 as text, with its NUL */

/* The parameters of one statement: text (NUL-terminated), octets of a given
 * length (bytea, or text sent as is), or integers. Never spliced into SQL. */
struct pgq {
	int		 n;
	const char	*v[PG_PARAMS_MAX];
	int		 len[PG_PARAMS_MAX];
	int		 fmt[PG_PARAMS_MAX];	/* 0 text, 1 binary */
	char		 num[PG_PARAMS_MAX][PG_NUM_MAX];
};
void	pgq_text(struct pgq *q, const char *s);	/* NULL: SQL NULL */
void	pgq_bytes(struct pgq *q, const void *p, size_t len);
void	pgq_int(struct pgq *q, int64_t v);

/* ---- running statements (store_pg.c) ---- */
/*
 * Every op starts here: forget the chunks read (unless keep_reads), and
 * make sure there is a connection. A connection that looks fine is checked
 * without blocking for one the server closed meanwhile (a restart, a
 * terminated backend): that one is replaced at once, so the op runs on a
 * new connection instead of failing on the dead one. A connection already
 * known broken is replaced at the next op when the last attempt was
 * refused at once (a server down or starting up: one round trip), and at
 * most once a second when it hung (a host gone: up to the connect
 * timeout). 0, or -1 with "the store's database is unreachable: ...".
 */
int	pg_enter(struct store_pg *p, bool keep_reads);
/*
 * After an op's attempt failed: was it the connection lost before anything
 * could have committed (no COMMIT sent, no write outside a transaction
 * sent), is this the op's first retry, and is there a new connection now?
 * Then true, and the caller runs the whole attempt once more (PostgreSQL
 * rolled the lost transaction back). Never after a COMMIT went out: its
 * outcome is not known. pg_run() does this by itself for a read outside a
 * transaction.
 */
bool	pg_retry(struct store_pg *p);
/*
 * Run statement id with q (NULL: none), results in text (binary: in
 * binary). The result (rows or a command's) to PQclear, or NULL with the
 * error recorded as "what: ..." and its SQLSTATE in p->sqlstate (a full
 * disk marks store_set_full(); a lost connection says so).
 */
PGresult *pg_run(struct store_pg *p, enum pg_stmt id, const struct pgq *q, bool binary,
	    const char *what);
/* Run statement id for its effect: the rows it changed, or -1. */
int64_t	pg_do(struct store_pg *p, enum pg_stmt id, const struct pgq *q, const char *what);
/* A command without parameters (BEGIN, SAVEPOINT ...): 0 or -1. */
int	pg_cmd(struct store_pg *p, const char *sql, const char *what);
/* The SQLSTATE of the last error is a unique or not-null violation. */
bool	pg_is_constraint(const struct store_pg *p);
int	pg_begin(struct store_pg *p);
/* COMMIT, checked to have committed (a failed transaction's COMMIT answers
 * ROLLBACK): 0 or -1. A lost connection during COMMIT is -1: not known. */
int	pg_commit(struct store_pg *p);
void	pg_rollback(struct store_pg *p);	/* keeps the error already recorded */
int64_t	pg_int(const PGresult *r, int row, int col);	/* a text-format integer */
/* Copy a text value into dst: false when it does not fit. */
bool	pg_copy(const PGresult *r, int row, int col, char *dst, size_t len);
void	pg_readers_drop(struct store_pg *p);
/* Open cursor name on statement id (one without parameters) inside the
 * current transaction: 0 or -1. FETCH from it with pg_cmd()'s sibling,
 * pg_fetch(): the next rows (at most n), or NULL with the error. */
int	pg_declare(struct store_pg *p, const char *name, enum pg_stmt id, const char *what);
PGresult *pg_fetch(struct store_pg *p, const char *name, int n, const char *what);

/* ---- the ops, by area ---- */
/* store_pg_account.c */
int	pg_user_add(struct store *st, const char *name, const char *hash);
int	pg_user_del(struct store *st, const char *name);
int	pg_user_set_hash(struct store *st, const char *name, const char *hash);
int	pg_user_get_hash(struct store *st, const char *name, char *hash_r, size_t len);
int	pg_user_list(struct store *st, store_list_cb *cb, void *arg);
int	pg_domain_add(struct store *st, const char *domain);
int	pg_domain_del(struct store *st, const char *domain);
int	pg_domain_list(struct store *st, store_list_cb *cb, void *arg);
int	pg_domain_lookup(struct store *st, const char *domain);
int	pg_alias_add(struct store *st, const char *address, const char *account);
int	pg_alias_del(struct store *st, const char *address, const char *account);
int	pg_alias_list(struct store *st, store_list_cb *cb, void *arg);
int	pg_resolve_all(struct store *st, const char *local, const char *domain,
	    store_list_cb *cb, void *arg);
int	pg_user_set_teacher(struct store *st, const char *name, bool teacher);
int	pg_user_is_teacher(struct store *st, const char *name);
int	pg_websession_add(struct store *st, const char *key, const char *account,
	    const char *csrf, int64_t expires);
int	pg_websession_get(struct store *st, const char *key, int64_t now,
	    char *account_r, char *csrf_r);
int	pg_websession_del(struct store *st, const char *key);
int	pg_token_add(struct store *st, const char *key, const char *account);
int	pg_token_get(struct store *st, const char *key, char *account_r);

/* store_pg_mail.c */
int	pg_delivery_commit_batch(struct store *st, struct store_delivery **ds,
	    size_t n, int *result);
int	pg_mailbox_lock(struct store *st, const char *account, const char *owner, long ttl);
int	pg_mailbox_touch(struct store *st, const char *account, const char *owner);
int	pg_mailbox_unlock(struct store *st, const char *account, const char *owner);
int	pg_mailbox_list(struct store *st, const char *account,
	    struct store_msg **msgs_r, size_t *n_r);
int	pg_msg_read(struct store *st, int64_t entry_id, int64_t offset,
	    void *dst, size_t len, size_t *got_r);
void	pg_read_done(struct store *st);
int	pg_mailbox_expunge(struct store *st, const char *account,
	    const int64_t *entry_ids, size_t n);
int	pg_mailbox_entry(struct store *st, const char *account, int64_t entry_id,
	    struct store_msg_info *info_r);
int	pg_queue_list(struct store *st, int64_t now,
	    struct store_queue_item **items_r, size_t *n_r);
int	pg_queue_defer(struct store *st, int64_t id, int64_t next_attempt, const char *error);
int	pg_queue_delete(struct store *st, int64_t id);
int	pg_queue_flush(struct store *st);
int	pg_queue_clamp(struct store *st, int64_t latest);
int64_t	pg_queue_max_id(struct store *st);
int	pg_queue_claim(struct store *st, int64_t now, const char *claimer, int64_t until,
	    size_t max, struct store_queue_item **items_r, size_t *n_r);
int	pg_queue_release(struct store *st, const char *claimer);
int	pg_message_read(struct store *st, int64_t message_id, int64_t offset,
	    void *dst, size_t len, size_t *got_r);
int64_t	pg_message_size(struct store *st, int64_t message_id);

/* store_pg_copy.c */
int	pg_copy_count(struct store *st, int64_t counts[STORE_REC_KINDS]);
int	pg_dump(struct store *st, const struct store_dump_sink *sink);
int	pg_load_begin(struct store *st);
int	pg_load_record(struct store *st, const struct store_rec *r);
int	pg_load_end(struct store *st, bool commit);

/* store_pg_log.c */
int	pg_transcript_append(struct store *st, const char *session_id,
	    const char *proto, const char *lines, size_t len);
int	pg_transcript_get(struct store *st, const char *session_id,
	    store_list_cb *cb, void *arg);
int	pg_log_ready(struct store *st);
int	pg_sesslog_apply(struct store *st, const struct store_sesslog_share *shares, size_t n);
int	pg_session_list(struct store *st, const struct store_session_filter *f,
	    store_session_cb *cb, void *arg);
int	pg_session_get(struct store *st, const char *id, struct store_session_info *si_r);
int	pg_session_involves(struct store *st, const char *id, const char *account);

#endif
