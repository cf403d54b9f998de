/*
 * store_backend.h - what a store backend implements, and what the front
 * (store.c) gives every backend. store.h is the API the programs call; each
 * of its functions that touches data is a call through the handle's ops
 * table below. Two backends: SQLite (store_sqlite*.c, the embedded default:
 * a path) and PostgreSQL (store_pg*.c, through libpq: a postgresql:// URI).
 * Each backend owns its SQL, its schema and its migrations; nothing outside
 * the backend's files sees them. Never include this outside common/store*.c.
 *
 * A backend's handle begins with struct store (the front's part: the ops
 * table and the last error) and goes on with its own fields:
 *
 *	struct store_pg { struct store base; PGconn *conn; ... };
 *
 * so the front hands every op the struct store pointer and the backend
 * converts it back (its own one-line cast helper). Every op has the
 * contract of the store.h function of the same name; only the differences
 * are written here.
 */
#ifndef CORREIO_STORE_BACKEND_H
#define CORREIO_STORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_copy.h"

#define STORE_ERR_MAX	512	/* store_errmsg() text, with its NUL */

struct store_ops;

/* The front's part of every handle: first member of each backend's handle. */
struct store {
	const struct store_ops *ops;
	char	 err[STORE_ERR_MAX];	/* store_errmsg() */
	bool	 err_full;		/* store_err_full(): the last error was a full disk */
};

/* The last error, kept by the front: every backend records through these. */
void	store_setmsg(struct store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Mark the error just recorded as a full file system or database disk
 * (the caller answers 452 4.3.1); store_setmsg() clears the mark. */
void	store_set_full(struct store *st);
/* Record "what: strerror(e)", marked full for ENOSPC and EDQUOT. */
void	store_seterrno(struct store *st, int e, const char *what);
int64_t	store_now(void);			/* unix time */

/*
 * A delivery as the front collected it (store_delivery_*() in store.h):
 * the envelope, and a body of spooled + len octets, the first spooled of
 * them in the anonymous spool file fd, the rest in body[0..len). A backend
 * reads it at commit and sets id.
 */
struct store_delivery {
	char		 sender[STORE_ADDR_MAX + 1];
	char		 session_id[STORE_SESSION_ID_MAX + 1];
	char		(*rcpts)[STORE_NAME_MAX + 1];	/* local accounts */
	size_t		 nrcpts;
	char		(*remotes)[STORE_ADDR_MAX + 1];	/* outbound queue */
	size_t		 nremotes;
	unsigned char	*body;		/* all of it, or the part not yet spooled */
	size_t		 len, cap;	/* of body */
	size_t		 spooled;	/* octets in the spool file before body */
	int		 fd;		/* the spool file, or -1 */
	char		*spool_dir;	/* NULL: the body stays in memory */
	int64_t		 id;				/* message id after commit */
	bool		 apart;		/* fd was linked as the body's own file */
};
/* Copy up to len octets of d's body at offset into dst, from the spool file
 * or the memory part: *got_r octets (0 at the end). 0, or -1 with errno. */
int	store_delivery_pread(const struct store_delivery *d, int64_t offset,
	    void *dst, size_t len, size_t *got_r);
/* Move the memory part to the end of the spool file, so that all the body
 * is in fd and body[0..cap) is free to serve as a bounce buffer. 0, or -1
 * with errno (ENOSPC: a full disk). */
int	store_delivery_flush(struct store_delivery *d);

/*
 * One session's share of a session log batch. A batch holds records of many
 * sessions, interleaved; the front (store_log.c) gathers each session's
 * share and hands the backend's sesslog_apply all the shares of a batch,
 * in the order of their first records, to write in one transaction. For
 * each share the backend makes the session's row if it has none (from
 * first: its proto and time, and the client's address when first is the
 * OPEN, else ""), writes its events in order (USER: the login, and the
 * account as one it took part in; ACCOUNT: an account it took part in;
 * CLOSE: when and how it ended), then its lines as one transcripts row
 * after its last (seq 1 when opened). A one-message SMTP session so costs
 * four statements (row, account, lines, end), not one per line (24).
 * Everything points into the batch's records or the front's memory, valid
 * during the call only.
 */
struct store_sesslog_share {
	const char	*id;		/* the session */
	const struct store_sesslog_rec *first;	/* its first record in the batch */
	bool		 opened;	/* first is its OPEN: no lines before this batch */
	const struct store_sesslog_rec **events; /* its USER, ACCOUNT and CLOSE records */
	size_t		 nevents;
	const char	*lines;		/* its LINES joined, '\n' between, none at the end;
					 * NULL: none in the batch */
	size_t		 len;		/* of lines */
	const char	*proto;		/* of its first LINES */
	int64_t		 time;		/* of its first LINES */
};

/*
 * The ops. open() makes the backend's handle for where (a path for SQLite,
 * the whole URI for PostgreSQL) and sets its ops; on error it returns -1
 * with *st_r NULL and the reason in err. close() frees the handle.
 * Ops that do not apply to a backend are NULL and the front answers for
 * them: file_check, reserve_make, map_bodies, checkpoint and tidy succeed
 * doing nothing (0), defer_checkpoints, reserve_released and
 * snapshot_begin are false, snapshot_end does nothing.
 */
struct store_ops {
	const char *name;			/* "sqlite", "postgresql" */

	int	(*open)(struct store **st_r, const char *where, char *err, size_t errlen);
	void	(*close)(struct store *st);
	int	(*file_check)(struct store *st);
	int	(*schema_version)(struct store *st);
	int	(*schema_latest)(void);
	int	(*reserve_make)(struct store *st);
	bool	(*reserve_released)(struct store *st);
	int	(*map_bodies)(struct store *st);
	bool	(*snapshot_begin)(struct store *st);
	void	(*snapshot_end)(struct store *st, bool began);
	bool	(*defer_checkpoints)(struct store *st, void (*due)(void *), void *arg);
	int	(*checkpoint)(struct store *st);
	int	(*tidy)(struct store *st);

	int	(*user_add)(struct store *st, const char *name, const char *hash);
	int	(*user_del)(struct store *st, const char *name);
	int	(*user_set_hash)(struct store *st, const char *name, const char *hash);
	int	(*user_get_hash)(struct store *st, const char *name, char *hash_r, size_t len);
	int	(*user_list)(struct store *st, store_list_cb *cb, void *arg);
	int	(*domain_add)(struct store *st, const char *domain);
	int	(*domain_del)(struct store *st, const char *domain);
	int	(*domain_list)(struct store *st, store_list_cb *cb, void *arg);
	int	(*domain_lookup)(struct store *st, const char *domain);
	int	(*alias_add)(struct store *st, const char *address, const char *account);
	int	(*alias_del)(struct store *st, const char *address, const char *account);
	int	(*alias_list)(struct store *st, store_list_cb *cb, void *arg);
	int	(*resolve_all)(struct store *st, const char *local, const char *domain,
		    store_list_cb *cb, void *arg);

	/* store_delivery_commit() is commit_batch() with n = 1. */
	int	(*delivery_commit_batch)(struct store *st, struct store_delivery **ds,
		    size_t n, int *result);

	int	(*mailbox_lock)(struct store *st, const char *account, const char *owner, long ttl);
	int	(*mailbox_touch)(struct store *st, const char *account, const char *owner);
	int	(*mailbox_unlock)(struct store *st, const char *account, const char *owner);
	int	(*mailbox_list)(struct store *st, const char *account,
		    struct store_msg **msgs_r, size_t *n_r);
	int	(*msg_read)(struct store *st, int64_t entry_id, int64_t offset,
		    void *dst, size_t len, size_t *got_r);
	void	(*read_done)(struct store *st);
	int	(*mailbox_expunge)(struct store *st, const char *account,
		    const int64_t *entry_ids, size_t n);
	int	(*mailbox_entry)(struct store *st, const char *account, int64_t entry_id,
		    struct store_msg_info *info_r);

	int	(*queue_list)(struct store *st, int64_t now,
		    struct store_queue_item **items_r, size_t *n_r);
	int	(*queue_defer)(struct store *st, int64_t id, int64_t next_attempt,
		    const char *error);
	int	(*queue_delete)(struct store *st, int64_t id);
	int	(*queue_flush)(struct store *st);
	int	(*queue_clamp)(struct store *st, int64_t latest);
	int64_t	(*queue_max_id)(struct store *st);
	/* NULL until a backend has them: the front then refuses (-1). */
	int	(*queue_claim)(struct store *st, int64_t now, const char *claimer,
		    int64_t until, size_t max, struct store_queue_item **items_r, size_t *n_r);
	int	(*queue_release)(struct store *st, const char *claimer);
	int	(*message_read)(struct store *st, int64_t message_id, int64_t offset,
		    void *dst, size_t len, size_t *got_r);
	int64_t	(*message_size)(struct store *st, int64_t message_id);

	int	(*user_set_teacher)(struct store *st, const char *name, bool teacher);
	int	(*user_is_teacher)(struct store *st, const char *name);
	int	(*websession_add)(struct store *st, const char *key, const char *account,
		    const char *csrf, int64_t expires);
	int	(*websession_get)(struct store *st, const char *key, int64_t now,
		    char *account_r, char *csrf_r);
	int	(*websession_del)(struct store *st, const char *key);
	int	(*token_add)(struct store *st, const char *key, const char *account);
	int	(*token_get)(struct store *st, const char *key, char *account_r);

	int	(*transcript_append)(struct store *st, const char *session_id,
		    const char *proto, const char *lines, size_t len);
	int	(*transcript_get)(struct store *st, const char *session_id,
		    store_list_cb *cb, void *arg);
	int	(*log_ready)(struct store *st);
	/* store_sesslog_apply(): the batch's n (> 0) shares, gathered by the
	 * front, in one transaction. */
	int	(*sesslog_apply)(struct store *st, const struct store_sesslog_share *shares,
		    size_t n);
	int	(*session_list)(struct store *st, const struct store_session_filter *f,
		    store_session_cb *cb, void *arg);
	int	(*session_get)(struct store *st, const char *id, struct store_session_info *si_r);
	int	(*session_involves)(struct store *st, const char *id, const char *account);

	/*
	 * Copying a whole store (store_copy.c, mailcli admin migrate): NULL
	 * in a backend that cannot be copied yet (the front then says so).
	 * copy_count: the records of each kind (sequences: 0) into counts.
	 * dump: every record to sink, kind by kind in enum store_rec_kind
	 * order, all from one snapshot; a message's body through its reader,
	 * valid during the record call only. Returns 0, or -1 (the sink
	 * stopped it, or the store's error). Between load_begin and load_end
	 * it reads what the load wrote (same connection, same transaction).
	 * load_begin: start one write transaction for a load (the target is
	 * empty: the front checked with copy_count). load_record: insert one
	 * record verbatim, ids included (a body read through its reader in
	 * bounded chunks); references by account name and message id.
	 * load_end: commit (commit true) or roll back everything the load
	 * did; after a failed commit nothing of the load remains either. A
	 * sequence record raises the kind's id sequence so that new rows get
	 * higher ids than any given before (never lowers it). All 0 or -1.
	 */
	int	(*copy_count)(struct store *st, int64_t counts[STORE_REC_KINDS]);
	int	(*dump)(struct store *st, const struct store_dump_sink *sink);
	int	(*load_begin)(struct store *st);
	int	(*load_record)(struct store *st, const struct store_rec *r);
	int	(*load_end)(struct store *st, bool commit);
};

/* The backends (store_sqlite.c, store_pg.c). */
extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/*
 * Is owner ("HOST/PID/tag", store_lock_owner()) a process of this host that
 * no longer exists (crashed or killed)? Then what it holds (a mailbox lock,
 * queue claims) is taken over at once instead of after its time to live.
 * False for another host, a live process, this very process (the caller
 * knows what it holds itself), and text not of that form: age decides.
 */
bool	store_owner_gone(const char *owner);

/*
 * The lock owners of this process's live POP3 sessions, kept by the front
 * for every backend's mailbox lock: add when a lock is taken (0, or -1 out
 * of memory), remove at unlock (even when the unlock fails: the session is
 * over). One of this process that is not listed was left by a session whose
 * unlock failed; one that is listed is refreshed by its session and never
 * taken over by age (a step of the wall clock must not hand a live
 * session's mailbox to a second one).
 */
int	store_held_add(const char *owner);
void	store_held_remove(const char *owner);

/* What a lock's owner ("HOST/PID/tag") is, for taking its lock over. */
enum store_owner_state {
	STORE_OWNER_UNKNOWN,	/* another host, or not "HOST/PID/tag": age decides */
	STORE_OWNER_ALIVE,	/* another live process of this host: age decides */
	STORE_OWNER_GONE,	/* no such process, or one of ours with no live session */
	STORE_OWNER_MINE,	/* a live session of this process: never taken over */
};
enum store_owner_state store_owner_state(const char *owner);

#endif
