/*
 * store_sqlite_copy.c - the SQLite backend's side of copying a whole store
 * (store_copy.h, mailcli admin migrate): count, dump every row as records,
 * and load records verbatim, ids included, into an empty store. A dump
 * reads the store and its session log each in one read transaction (two
 * files: two snapshots); bodies go out and come in through incremental blob
 * I/O in chunks, never whole. A load writes the store and the session log
 * each in one write transaction; the log commits first, and when the
 * store's commit then fails the log is emptied again (it was empty before:
 * the front loads only into an empty store), so a failed load leaves
 * nothing. Never: a row changed on the way, an id renumbered.
 */

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_sqlite.h"

#define COPY_CHUNK	(64 * 1024)	/* body octets per blob read or write */

/* The AUTOINCREMENT tables behind the sequence records. */
static const struct {
	enum store_rec_kind kind;
	const char	*table;
} copy_seqs[] = {
	{ STORE_REC_ACCOUNT, "accounts" },
	{ STORE_REC_MESSAGE, "messages" },
	{ STORE_REC_ENTRY, "mailbox" },
	{ STORE_REC_QUEUE, "queue" },
};
#define NSEQS	(sizeof(copy_seqs) / sizeof(copy_seqs[0]))

static const char *
col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *v = sqlite3_column_text(s, i);

	return v != NULL ? (const char *)v : "";
}

/* ---- transactions on the session log's file ------------------------------ */

static int
log_exec(struct store_sqlite *st, const char *sql, const char *what)
{
	if (sqlite3_exec(st->logdb, sql, NULL, NULL, NULL) != SQLITE_OK) {
		store_seterr_db(st, st->logdb, what);
		return -1;
	}
	return 0;
}

static void
log_rollback(struct store_sqlite *st)
{
	if (st->logdb != NULL && !sqlite3_get_autocommit(st->logdb))
		sqlite3_exec(st->logdb, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- counting ----------------------------------------------------------- */

int
sqlite_copy_count(struct store *base, int64_t counts[STORE_REC_KINDS])
{
	static const enum store_rec_kind main_kinds[] = {
		STORE_REC_DOMAIN, STORE_REC_ACCOUNT, STORE_REC_ALIAS, STORE_REC_MESSAGE,
		STORE_REC_ENTRY, STORE_REC_QUEUE, STORE_REC_WEBSESSION, STORE_REC_TOKEN,
	};
	static const enum store_rec_kind log_kinds[] = {
		STORE_REC_SESSION, STORE_REC_SESSION_ACCOUNT, STORE_REC_TRANSCRIPT,
	};
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	size_t i;

	memset(counts, 0, sizeof(int64_t) * STORE_REC_KINDS);
	s = store_stmt_get(st, ST_COPY_COUNT);
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_seterr(st, "count records");
		store_stmt_done(s);
		return -1;
	}
	for (i = 0; i < sizeof(main_kinds) / sizeof(main_kinds[0]); i++)
		counts[main_kinds[i]] = sqlite3_column_int64(s, (int)i);
	store_stmt_done(s);

	if (sqlite_log_ready(base) == -1)
		return -1;
	s = store_stmt_get(st, ST_LOG_COPY_COUNT);
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_seterr_db(st, st->logdb, "count session log records");
		store_stmt_done(s);
		return -1;
	}
	for (i = 0; i < sizeof(log_kinds) / sizeof(log_kinds[0]); i++)
		counts[log_kinds[i]] = sqlite3_column_int64(s, (int)i);
	store_stmt_done(s);
	return 0;
}

/* ---- dump --------------------------------------------------------------- */

/* A message body being dumped: opened at the first read. */
struct body_reader {
	struct store_sqlite *st;
	int64_t		 id;
	struct store_blob b;
};

static int
body_read(void *arg, int64_t offset, void *dst, size_t len, size_t *got_r)
{
	struct body_reader *br = arg;

	*got_r = 0;
	if (!store_body_is_open(&br->b) && store_body_open(br->st, &br->b, br->id) != 0)
		return -1;
	return store_body_pread(br->st, &br->b, offset, dst, len, got_r);
}

/* Fill r from the current row of statement id (of kind r->kind). */
static void
row_record(sqlite3_stmt *s, struct store_rec *r)
{
	switch (r->kind) {
	case STORE_REC_DOMAIN:
		r->u.domain.name = col_text(s, 0);
		r->u.domain.created = sqlite3_column_int64(s, 1);
		break;
	case STORE_REC_ACCOUNT:
		r->u.account.id = sqlite3_column_int64(s, 0);
		r->u.account.name = col_text(s, 1);
		r->u.account.hash = col_text(s, 2);
		r->u.account.created = sqlite3_column_int64(s, 3);
		r->u.account.teacher = sqlite3_column_int64(s, 4) != 0;
		break;
	case STORE_REC_ALIAS:
		r->u.alias.address = col_text(s, 0);
		r->u.alias.account = col_text(s, 1);
		r->u.alias.created = sqlite3_column_int64(s, 2);
		break;
	case STORE_REC_MESSAGE:
		r->u.message.id = sqlite3_column_int64(s, 0);
		r->u.message.size = sqlite3_column_int64(s, 1);
		r->u.message.sender = col_text(s, 2);
		r->u.message.session = col_text(s, 3);
		r->u.message.created = sqlite3_column_int64(s, 4);
		break;
	case STORE_REC_ENTRY:
		r->u.entry.id = sqlite3_column_int64(s, 0);
		r->u.entry.account = col_text(s, 1);
		r->u.entry.message = sqlite3_column_int64(s, 2);
		r->u.entry.uidl = col_text(s, 3);
		r->u.entry.size = sqlite3_column_int64(s, 4);
		r->u.entry.arrived = sqlite3_column_int64(s, 5);
		r->u.entry.deleted = sqlite3_column_int64(s, 6) != 0;
		break;
	case STORE_REC_QUEUE:
		r->u.queue.id = sqlite3_column_int64(s, 0);
		r->u.queue.message = sqlite3_column_int64(s, 1);
		r->u.queue.sender = col_text(s, 2);
		r->u.queue.rcpt = col_text(s, 3);
		r->u.queue.created = sqlite3_column_int64(s, 4);
		r->u.queue.next_attempt = sqlite3_column_int64(s, 5);
		r->u.queue.attempts = sqlite3_column_int64(s, 6);
		r->u.queue.last_error = col_text(s, 7);
		break;
	case STORE_REC_SESSION:
		r->u.session.id = col_text(s, 0);
		r->u.session.proto = col_text(s, 1);
		r->u.session.client = col_text(s, 2);
		r->u.session.started = sqlite3_column_int64(s, 3);
		r->u.session.ended = sqlite3_column_int64(s, 4);
		r->u.session.user = col_text(s, 5);
		r->u.session.outcome = col_text(s, 6);
		break;
	case STORE_REC_SESSION_ACCOUNT:
		r->u.session_account.session = col_text(s, 0);
		r->u.session_account.account = col_text(s, 1);
		break;
	case STORE_REC_TRANSCRIPT:
		r->u.transcript.session_id = col_text(s, 0);
		r->u.transcript.seq = sqlite3_column_int64(s, 1);
		r->u.transcript.proto = col_text(s, 2);
		r->u.transcript.lines = col_text(s, 3);
		r->u.transcript.len = (size_t)sqlite3_column_bytes(s, 3);
		r->u.transcript.time = sqlite3_column_int64(s, 4);
		break;
	case STORE_REC_WEBSESSION:
		r->u.websession.id = col_text(s, 0);
		r->u.websession.account = col_text(s, 1);
		r->u.websession.csrf = col_text(s, 2);
		r->u.websession.created = sqlite3_column_int64(s, 3);
		r->u.websession.expires = sqlite3_column_int64(s, 4);
		break;
	case STORE_REC_TOKEN:
		r->u.token.hash = col_text(s, 0);
		r->u.token.account = col_text(s, 1);
		r->u.token.created = sqlite3_column_int64(s, 2);
		break;
	case STORE_REC_SEQUENCE:
	case STORE_REC_KINDS:
		assert(!"not a table row");
		break;
	}
}

/* Every row of statement id as a record of kind to the sink. 0 or -1. */
static int
dump_rows(struct store_sqlite *st, enum store_stmt id, enum store_rec_kind kind,
    const struct store_dump_sink *sink)
{
	sqlite3_stmt *s = store_stmt_get(st, id);
	struct store_rec r;
	struct body_reader br;
	int rc, ret = 0;

	memset(&br, 0, sizeof(br));
	br.b.fd = -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.kind = kind;
		row_record(s, &r);
		if (kind == STORE_REC_MESSAGE) {
			memset(&br, 0, sizeof(br));
			br.b.fd = -1;
			br.st = st;
			br.id = r.u.message.id;
			r.u.message.read = body_read;
			r.u.message.read_arg = &br;
		}
		ret = sink->record(sink->arg, &r);
		if (kind == STORE_REC_MESSAGE)
			store_body_close(&br.b);
		if (ret == -1)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		store_seterr_db(st, sqlite3_db_handle(s), "dump");
		ret = -1;
	}
	store_stmt_done(s);
	return ret;
}

/* The sequence records: sqlite_sequence's rows of the id'd tables. */
static int
dump_sequences(struct store_sqlite *st, const struct store_dump_sink *sink)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_DUMP_SEQUENCES);
	struct store_rec r;
	const char *name;
	size_t i;
	int rc, ret = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		name = col_text(s, 0);
		for (i = 0; i < NSEQS; i++)
			if (strcmp(name, copy_seqs[i].table) == 0)
				break;
		if (i == NSEQS)
			continue;
		memset(&r, 0, sizeof(r));
		r.kind = STORE_REC_SEQUENCE;
		r.u.sequence.of = copy_seqs[i].kind;
		r.u.sequence.last = sqlite3_column_int64(s, 1);
		if ((ret = sink->record(sink->arg, &r)) == -1)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		store_seterr(st, "dump sequences");
		ret = -1;
	}
	store_stmt_done(s);
	return ret;
}

int
sqlite_dump(struct store *base, const struct store_dump_sink *sink)
{
	static const struct {
		enum store_stmt	 id;
		enum store_rec_kind kind;
	} order[] = {
		{ ST_DUMP_DOMAINS, STORE_REC_DOMAIN },
		{ ST_DUMP_ACCOUNTS, STORE_REC_ACCOUNT },
		{ ST_DUMP_ALIASES, STORE_REC_ALIAS },
		{ ST_DUMP_MESSAGES, STORE_REC_MESSAGE },
		{ ST_DUMP_ENTRIES, STORE_REC_ENTRY },
		{ ST_DUMP_QUEUE, STORE_REC_QUEUE },
		{ ST_DUMP_SESSIONS, STORE_REC_SESSION },
		{ ST_DUMP_SESSION_ACCOUNTS, STORE_REC_SESSION_ACCOUNT },
		{ ST_DUMP_TRANSCRIPTS, STORE_REC_TRANSCRIPT },
		{ ST_DUMP_WEBSESSIONS, STORE_REC_WEBSESSION },
		{ ST_DUMP_TOKENS, STORE_REC_TOKEN },
	};
	struct store_sqlite *st = sqlite_of(base);
	bool began, log_began = false;
	size_t i;
	int ret = 0;

	if (sqlite_log_ready(base) == -1)
		return -1;
	began = store_read_begin(st);
	if (sqlite3_get_autocommit(st->logdb)) {
		if (log_exec(st, "BEGIN", "begin (session log)") == -1) {
			store_read_end(st, began);
			return -1;
		}
		log_began = true;
	}
	for (i = 0; i < sizeof(order) / sizeof(order[0]) && ret == 0; i++)
		ret = dump_rows(st, order[i].id, order[i].kind, sink);
	if (ret == 0)
		ret = dump_sequences(st, sink);
	if (log_began)
		log_rollback(st);	/* a read: nothing to keep */
	store_read_end(st, began);
	return ret;
}

/* ---- load --------------------------------------------------------------- */

int
sqlite_load_begin(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);

	if (sqlite_log_ready(base) == -1 || store_begin(st) == -1)
		return -1;
	if (log_exec(st, "BEGIN IMMEDIATE", "begin transaction (session log)") == -1) {
		store_rollback(st);
		return -1;
	}
	return 0;
}

/* Copy a message's body through its reader into the zero blob of row id. */
static int
load_body(struct store_sqlite *st, const struct store_rec_message *m)
{
	sqlite3_blob *b;
	unsigned char *buf;
	int64_t off = 0;
	size_t got;
	int ret = -1;

	if (m->size == 0)
		return 0;
	if ((buf = malloc(COPY_CHUNK)) == NULL) {
		store_setmsg(&st->base, "message %lld: out of memory", (long long)m->id);
		return -1;
	}
	if (sqlite3_blob_open(st->db, "main", "messages", "body", m->id, 1, &b) != SQLITE_OK) {
		store_seterr(st, "open the message blob");
		free(buf);
		return -1;
	}
	while (off < m->size) {
		size_t want = m->size - off < COPY_CHUNK ? (size_t)(m->size - off) : COPY_CHUNK;

		if (m->read(m->read_arg, off, buf, want, &got) == -1) {
			store_setmsg(&st->base, "message %lld: reading its body failed",
			    (long long)m->id);
			goto out;
		}
		if (got == 0) {
			store_setmsg(&st->base, "message %lld: body shorter than its size %lld",
			    (long long)m->id, (long long)m->size);
			goto out;
		}
		if (sqlite3_blob_write(b, buf, (int)got, (int)off) != SQLITE_OK) {
			store_seterr(st, "write the message blob");
			goto out;
		}
		off += (int64_t)got;
	}
	ret = 0;
out:
	if (sqlite3_blob_close(b) != SQLITE_OK && ret == 0) {
		store_seterr(st, "close the message blob");
		ret = -1;
	}
	free(buf);
	return ret;
}

/* Step a bound insert that must add exactly one row ("what" names it). */
static int
insert_one(struct store_sqlite *st, sqlite3_stmt *s, const char *what, const char *name)
{
	sqlite3 *db = sqlite3_db_handle(s);
	char msg[STORE_ERR_MAX];

	if (sqlite3_step(s) != SQLITE_DONE) {
		snprintf(msg, sizeof(msg), "load %s %s", what, name);
		store_seterr_db(st, db, msg);
		store_stmt_done(s);
		return -1;
	}
	store_stmt_done(s);
	if (sqlite3_changes(db) != 1) {
		store_setmsg(&st->base, "load %s %s: its account is not in the store", what, name);
		return -1;
	}
	return 0;
}

static int
load_sequence(struct store_sqlite *st, const struct store_rec_sequence *q)
{
	sqlite3_stmt *s;
	size_t i;

	for (i = 0; i < NSEQS; i++)
		if (copy_seqs[i].kind == q->of)
			break;
	if (i == NSEQS) {
		store_setmsg(&st->base, "load a sequence of a kind without ids (%d)", (int)q->of);
		return -1;
	}
	s = store_stmt_get(st, ST_LOAD_SEQ_RAISE);
	store_bind_text(s, 1, copy_seqs[i].table);
	sqlite3_bind_int64(s, 2, q->last);
	if (store_step_done(st, s, "raise a sequence") == -1)
		return -1;
	s = store_stmt_get(st, ST_LOAD_SEQ_ADD);
	store_bind_text(s, 1, copy_seqs[i].table);
	sqlite3_bind_int64(s, 2, q->last);
	return store_step_done(st, s, "add a sequence");
}

int
sqlite_load_record(struct store *base, const struct store_rec *r)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	char id[32];

	switch (r->kind) {
	case STORE_REC_DOMAIN:
		s = store_stmt_get(st, ST_LOAD_DOMAIN);
		store_bind_text(s, 1, r->u.domain.name);
		sqlite3_bind_int64(s, 2, r->u.domain.created);
		return insert_one(st, s, "domain", r->u.domain.name);
	case STORE_REC_ACCOUNT:
		s = store_stmt_get(st, ST_LOAD_ACCOUNT);
		sqlite3_bind_int64(s, 1, r->u.account.id);
		store_bind_text(s, 2, r->u.account.name);
		store_bind_text(s, 3, r->u.account.hash);
		sqlite3_bind_int64(s, 4, r->u.account.created);
		sqlite3_bind_int(s, 5, r->u.account.teacher);
		return insert_one(st, s, "account", r->u.account.name);
	case STORE_REC_ALIAS:
		s = store_stmt_get(st, ST_LOAD_ALIAS);
		store_bind_text(s, 1, r->u.alias.address);
		store_bind_text(s, 2, r->u.alias.account);
		sqlite3_bind_int64(s, 3, r->u.alias.created);
		return insert_one(st, s, "alias", r->u.alias.address);
	case STORE_REC_MESSAGE:
		snprintf(id, sizeof(id), "%lld", (long long)r->u.message.id);
		s = store_stmt_get(st, ST_LOAD_MESSAGE);
		sqlite3_bind_int64(s, 1, r->u.message.id);
		sqlite3_bind_int64(s, 2, r->u.message.size);
		store_bind_text(s, 3, r->u.message.sender);
		store_bind_text(s, 4, r->u.message.session);
		sqlite3_bind_int64(s, 5, r->u.message.created);
		if (insert_one(st, s, "message", id) == -1)
			return -1;
		return load_body(st, &r->u.message);
	case STORE_REC_ENTRY:
		snprintf(id, sizeof(id), "%lld", (long long)r->u.entry.id);
		s = store_stmt_get(st, ST_LOAD_ENTRY);
		sqlite3_bind_int64(s, 1, r->u.entry.id);
		store_bind_text(s, 2, r->u.entry.account);
		sqlite3_bind_int64(s, 3, r->u.entry.message);
		store_bind_text(s, 4, r->u.entry.uidl);
		sqlite3_bind_int64(s, 5, r->u.entry.size);
		sqlite3_bind_int64(s, 6, r->u.entry.arrived);
		sqlite3_bind_int(s, 7, r->u.entry.deleted);
		return insert_one(st, s, "mailbox entry", id);
	case STORE_REC_QUEUE:
		snprintf(id, sizeof(id), "%lld", (long long)r->u.queue.id);
		s = store_stmt_get(st, ST_LOAD_QUEUE);
		sqlite3_bind_int64(s, 1, r->u.queue.id);
		sqlite3_bind_int64(s, 2, r->u.queue.message);
		store_bind_text(s, 3, r->u.queue.sender);
		store_bind_text(s, 4, r->u.queue.rcpt);
		sqlite3_bind_int64(s, 5, r->u.queue.created);
		sqlite3_bind_int64(s, 6, r->u.queue.next_attempt);
		sqlite3_bind_int64(s, 7, r->u.queue.attempts);
		store_bind_text(s, 8, r->u.queue.last_error);
		return insert_one(st, s, "queue item", id);
	case STORE_REC_SESSION:
		s = store_stmt_get(st, ST_LOAD_SESSION);
		store_bind_text(s, 1, r->u.session.id);
		store_bind_text(s, 2, r->u.session.proto);
		store_bind_text(s, 3, r->u.session.client);
		sqlite3_bind_int64(s, 4, r->u.session.started);
		sqlite3_bind_int64(s, 5, r->u.session.ended);
		store_bind_text(s, 6, r->u.session.user);
		store_bind_text(s, 7, r->u.session.outcome);
		return insert_one(st, s, "session", r->u.session.id);
	case STORE_REC_SESSION_ACCOUNT:
		s = store_stmt_get(st, ST_LOAD_SESSION_ACCOUNT);
		store_bind_text(s, 1, r->u.session_account.session);
		store_bind_text(s, 2, r->u.session_account.account);
		return insert_one(st, s, "session account of", r->u.session_account.session);
	case STORE_REC_TRANSCRIPT:
		s = store_stmt_get(st, ST_LOAD_TRANSCRIPT);
		store_bind_text(s, 1, r->u.transcript.session_id);
		sqlite3_bind_int64(s, 2, r->u.transcript.seq);
		store_bind_text(s, 3, r->u.transcript.proto);
		sqlite3_bind_text64(s, 4, r->u.transcript.lines, r->u.transcript.len,
		    SQLITE_STATIC, SQLITE_UTF8);
		sqlite3_bind_int64(s, 5, r->u.transcript.time);
		return insert_one(st, s, "transcript of", r->u.transcript.session_id);
	case STORE_REC_WEBSESSION:
		s = store_stmt_get(st, ST_LOAD_WEBSESSION);
		store_bind_text(s, 1, r->u.websession.id);
		store_bind_text(s, 2, r->u.websession.account);
		store_bind_text(s, 3, r->u.websession.csrf);
		sqlite3_bind_int64(s, 4, r->u.websession.created);
		sqlite3_bind_int64(s, 5, r->u.websession.expires);
		return insert_one(st, s, "web login of", r->u.websession.account);
	case STORE_REC_TOKEN:
		s = store_stmt_get(st, ST_LOAD_TOKEN);
		store_bind_text(s, 1, r->u.token.hash);
		store_bind_text(s, 2, r->u.token.account);
		sqlite3_bind_int64(s, 3, r->u.token.created);
		return insert_one(st, s, "API token of", r->u.token.account);
	case STORE_REC_SEQUENCE:
		return load_sequence(st, &r->u.sequence);
	case STORE_REC_KINDS:
		break;
	}
	store_setmsg(&st->base, "load: unknown record kind %d", (int)r->kind);
	return -1;
}

/* Empty the session log again after the store's commit failed. */
static void
log_clear(struct store_sqlite *st)
{
	char keep[sizeof(st->base.err)];

	memcpy(keep, st->base.err, sizeof(keep));
	if (log_exec(st, "BEGIN IMMEDIATE", "begin (session log)") == 0) {
		if (store_exec(st, ST_LOG_CLEAR_TRANSCRIPTS, "clear") == 0 &&
		    store_exec(st, ST_LOG_CLEAR_SESSION_ACCOUNTS, "clear") == 0 &&
		    store_exec(st, ST_LOG_CLEAR_SESSIONS, "clear") == 0)
			log_exec(st, "COMMIT", "commit (session log)");
		log_rollback(st);
	}
	memcpy(st->base.err, keep, sizeof(keep));
}

int
sqlite_load_end(struct store *base, bool commit)
{
	struct store_sqlite *st = sqlite_of(base);

	if (!commit) {
		log_rollback(st);
		store_rollback(st);
		return 0;
	}
	if (log_exec(st, "COMMIT", "commit (session log)") == -1) {
		log_rollback(st);
		store_rollback(st);
		return -1;
	}
	if (store_commit(st) == -1) {
		log_clear(st);
		return -1;
	}
	return 0;
}
