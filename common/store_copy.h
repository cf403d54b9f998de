/*
 * store_copy.h - copying a whole store from one backend to another
 * (`mailcli admin migrate`): the records a store is made of, as a backend
 * dumps and loads them (store_backend.h: the dump and load ops), and the
 * copy engine (store_copy.c) that runs a dump of one store into a load of
 * another, in one transaction on the target, and verifies the result.
 * Records carry every field verbatim, ids included: a UIDL, a web link to
 * a message and a queue item keep meaning the same thing after the copy.
 * A body is never a record field: it is read in chunks through a reader.
 */
#ifndef CORREIO_STORE_COPY_H
#define CORREIO_STORE_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The kinds of record, in the order a dump hands them over (each one's
 * references come before it). */
enum store_rec_kind {
	STORE_REC_DOMAIN,
	STORE_REC_ACCOUNT,
	STORE_REC_ALIAS,		/* one per (address, account) */
	STORE_REC_MESSAGE,		/* the message and its body, once */
	STORE_REC_ENTRY,		/* a mailbox entry: (account, message, uidl) */
	STORE_REC_QUEUE,
	STORE_REC_SESSION,
	STORE_REC_SESSION_ACCOUNT,
	STORE_REC_TRANSCRIPT,		/* a session log row of '\n'-separated lines */
	STORE_REC_WEBSESSION,
	STORE_REC_TOKEN,
	STORE_REC_SEQUENCE,		/* the highest id a kind has given (last) */
	STORE_REC_KINDS
};

/* Read up to len octets of a body at offset into dst: *got_r octets, 0 at
 * its end. A loader reads each body once, in order, from offset 0.
 * 0 or -1 (the dumping store's error). */
typedef int store_body_read_fn(void *arg, int64_t offset, void *dst, size_t len,
    size_t *got_r);

/* Accounts are referred to by name, messages by id. Strings are valid
 * during the call that hands the record over. */
struct store_rec_domain {
	const char	*name;
	int64_t		 created;
};
struct store_rec_account {
	int64_t		 id;
	const char	*name;
	const char	*hash;		/* crypt(3) hash, as stored */
	int64_t		 created;
	bool		 teacher;
};
struct store_rec_alias {
	const char	*address;
	const char	*account;
	int64_t		 created;
};
struct store_rec_message {
	int64_t		 id;
	int64_t		 size;		/* octets of the body */
	const char	*sender;
	const char	*session;
	int64_t		 created;
	store_body_read_fn *read;	/* the body */
	void		*read_arg;
};
struct store_rec_entry {
	int64_t		 id;
	const char	*account;
	int64_t		 message;
	const char	*uidl;
	int64_t		 size;
	int64_t		 arrived;
	bool		 deleted;
};
struct store_rec_queue {
	int64_t		 id;
	int64_t		 message;
	const char	*sender;
	const char	*rcpt;
	int64_t		 created;
	int64_t		 next_attempt;
	int64_t		 attempts;
	const char	*last_error;
};
struct store_rec_session {
	const char	*id;
	const char	*proto;
	const char	*client;
	int64_t		 started;
	int64_t		 ended;		/* 0 while open */
	const char	*user;
	const char	*outcome;
};
struct store_rec_session_account {
	const char	*session;
	const char	*account;
};
struct store_rec_transcript {
	const char	*session_id;
	int64_t		 seq;
	const char	*proto;
	const char	*lines;		/* len octets, no NUL inside */
	size_t		 len;
	int64_t		 time;
};
struct store_rec_websession {
	const char	*id;		/* hex SHA-256 of the cookie */
	const char	*account;
	const char	*csrf;
	int64_t		 created;
	int64_t		 expires;
};
struct store_rec_token {
	const char	*hash;		/* hex SHA-256 of the token */
	const char	*account;
	int64_t		 created;
};
/* Ids only grow: a loaded store must never give again an id the dumped
 * one gave, even to a row since deleted. of: ACCOUNT, MESSAGE, ENTRY or
 * QUEUE; last: the highest id of that kind ever given. */
struct store_rec_sequence {
	enum store_rec_kind of;
	int64_t		 last;
};

struct store_rec {
	enum store_rec_kind kind;
	union {
		struct store_rec_domain		 domain;
		struct store_rec_account	 account;
		struct store_rec_alias		 alias;
		struct store_rec_message	 message;
		struct store_rec_entry		 entry;
		struct store_rec_queue		 queue;
		struct store_rec_session	 session;
		struct store_rec_session_account session_account;
		struct store_rec_transcript	 transcript;
		struct store_rec_websession	 websession;
		struct store_rec_token		 token;
		struct store_rec_sequence	 sequence;
	} u;
};

/* Where a dump goes: record() once per record, in enum order; it returns
 * 0 to go on or -1 to stop the dump (the sink keeps its own reason). */
struct store_dump_sink {
	int	(*record)(void *arg, const struct store_rec *r);
	void	*arg;
};

/* ---- the copy engine (store_copy.c) ------------------------------------ */

#define STORE_COPY_NOT_EMPTY	(-2)	/* store_copy(): the target has data */

struct store_copy_stats {
	int64_t	 counts[STORE_REC_KINDS];	/* records copied, per kind */
	int64_t	 messages_total;		/* in the source, at the start */
	int64_t	 bytes;				/* body octets copied */
	double	 seconds;			/* from the start */
};

/* Called after each message copied; 0 to go on, -1 to stop the copy
 * (nothing is left in the target). */
typedef int store_copy_progress_fn(void *arg, const struct store_copy_stats *so_far);

/*
 * Copy every record of from into to, then verify in the same transaction:
 * every kind counted and checksummed record by record (SHA-256), every
 * body compared by its SHA-256 with the source's; only then commit, and
 * count once more what the commit left. to must be empty (no record of any
 * kind but sequences): else STORE_COPY_NOT_EMPTY, and to is not touched.
 * On any failure before the commit nothing is left in to. Returns 0 (with
 * *stats_r), STORE_COPY_NOT_EMPTY or -1, the reason in err. A backend
 * without the dump/load ops: -1, "the NAME backend cannot be copied yet".
 * The source should be quiet meanwhile (daemons stopped): the copy reads it
 * in a snapshot, so mail arriving during the copy is not in the target.
 */
int	store_copy(struct store *from, struct store *to, store_copy_progress_fn *progress,
	    void *arg, struct store_copy_stats *stats_r, char *err, size_t errlen);

/* The plural name of a kind for messages and summaries ("accounts"). */
const char *store_copy_kind_name(enum store_rec_kind kind);

#endif
