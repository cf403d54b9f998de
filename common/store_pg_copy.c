/*
 * store_pg_copy.c - the PostgreSQL backend's side of copying a whole store
 * (store_copy.h, mailcli admin migrate): count, dump every row as records,
 * and load records verbatim, ids included, into an empty store.
 *
 * A dump reads in one snapshot: its own REPEATABLE READ READ ONLY
 * transaction, or, between load_begin and load_end, the load's own
 * transaction on the same connection (the copy engine checks what it
 * loaded before the commit). Rows come through cursors, a few hundred at a
 * time; a body goes out one 256 KiB chunk row at a time. A load is one
 * transaction: rows keep their ids (OVERRIDING SYSTEM VALUE), a body comes
 * in through its reader, once and in order, and goes into chunk rows of
 * PG_CHUNK octets as a delivery writes them; the identity sequences are
 * then moved forward (setval) past every id given, never back. A failed
 * load is rolled back whole: the target stays empty (a sequence moved
 * forward stays so, which gives nothing again).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

#define DUMP_ROWS	500		/* rows per FETCH */
#define DUMP_CURSOR	"correio_dump"

/* The tables with identity ids behind the sequence records. */
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

/* ---- counting ----------------------------------------------------------- */

int
pg_copy_count(struct store *st, int64_t counts[STORE_REC_KINDS])
{
	static const enum store_rec_kind kinds[] = {
		STORE_REC_DOMAIN, STORE_REC_ACCOUNT, STORE_REC_ALIAS, STORE_REC_MESSAGE,
		STORE_REC_ENTRY, STORE_REC_QUEUE, STORE_REC_SESSION,
		STORE_REC_SESSION_ACCOUNT, STORE_REC_TRANSCRIPT, STORE_REC_WEBSESSION,
		STORE_REC_TOKEN,
	};
	struct store_pg *p = pg_of(st);
	PGresult *r;
	size_t i;

	memset(counts, 0, sizeof(int64_t) * STORE_REC_KINDS);
	if (!p->loading && pg_enter(p, false) == -1)
		return -1;
	if ((r = pg_run(p, PG_COPY_COUNT, NULL, false, "count records")) == NULL)
		return -1;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		counts[kinds[i]] = pg_int(r, 0, (int)i);
	PQclear(r);
	return 0;
}

/* ---- dump --------------------------------------------------------------- */

/* A message body being dumped: its chunk rows, one at a time. */
struct body_reader {
	struct store_pg	*p;
	int64_t		 id;
	int64_t		 size;
	int64_t		 seq;		/* the chunk in data, -1: none */
	unsigned char	*data;		/* PG_CHUNK octets */
	size_t		 len;
};

static int
chunk_load(struct body_reader *br, int64_t seq)
{
	struct pgq q = { 0 };
	PGresult *r;
	int len;

	if (br->data == NULL && (br->data = malloc(PG_CHUNK)) == NULL) {
		store_setmsg(&br->p->base, "out of memory reading a message body");
		return -1;
	}
	pgq_int(&q, br->id);
	pgq_int(&q, seq);
	if ((r = pg_run(br->p, PG_CHUNK_GET, &q, true, "read a message body")) == NULL)
		return -1;
	len = PQntuples(r) == 1 ? PQgetlength(r, 0, 0) : -1;
	if (len < 0 || (size_t)len > PG_CHUNK) {
		PQclear(r);
		store_setmsg(&br->p->base, "message %lld: chunk %lld is missing or too long",
		    (long long)br->id, (long long)seq);
		return -1;
	}
	memcpy(br->data, PQgetvalue(r, 0, 0), (size_t)len);
	PQclear(r);
	br->len = (size_t)len;
	br->seq = seq;
	return 0;
}

static int
body_read(void *arg, int64_t offset, void *dst, size_t len, size_t *got_r)
{
	struct body_reader *br = arg;
	int64_t seq;
	size_t in, n;

	*got_r = 0;
	if (offset < 0 || offset >= br->size || len == 0)
		return 0;
	seq = offset / (int64_t)PG_CHUNK;
	if (br->seq != seq && chunk_load(br, seq) == -1)
		return -1;
	in = (size_t)(offset - seq * (int64_t)PG_CHUNK);
	if (in >= br->len) {
		store_setmsg(&br->p->base, "message %lld is shorter than its size",
		    (long long)br->id);
		return -1;
	}
	n = br->len - in < len ? br->len - in : len;
	if ((int64_t)n > br->size - offset)
		n = (size_t)(br->size - offset);
	memcpy(dst, br->data + in, n);
	*got_r = n;
	return 0;
}

static const char *
col(const PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? "" : PQgetvalue(r, row, c);
}

/* Fill rec from row i of r (of kind rec->kind). */
static void
row_record(const PGresult *r, int i, struct store_rec *rec)
{
	switch (rec->kind) {
	case STORE_REC_DOMAIN:
		rec->u.domain.name = col(r, i, 0);
		rec->u.domain.created = pg_int(r, i, 1);
		break;
	case STORE_REC_ACCOUNT:
		rec->u.account.id = pg_int(r, i, 0);
		rec->u.account.name = col(r, i, 1);
		rec->u.account.hash = col(r, i, 2);
		rec->u.account.created = pg_int(r, i, 3);
		rec->u.account.teacher = pg_int(r, i, 4) != 0;
		break;
	case STORE_REC_ALIAS:
		rec->u.alias.address = col(r, i, 0);
		rec->u.alias.account = col(r, i, 1);
		rec->u.alias.created = pg_int(r, i, 2);
		break;
	case STORE_REC_MESSAGE:
		rec->u.message.id = pg_int(r, i, 0);
		rec->u.message.size = pg_int(r, i, 1);
		rec->u.message.sender = col(r, i, 2);
		rec->u.message.session = col(r, i, 3);
		rec->u.message.created = pg_int(r, i, 4);
		break;
	case STORE_REC_ENTRY:
		rec->u.entry.id = pg_int(r, i, 0);
		rec->u.entry.account = col(r, i, 1);
		rec->u.entry.message = pg_int(r, i, 2);
		rec->u.entry.uidl = col(r, i, 3);
		rec->u.entry.size = pg_int(r, i, 4);
		rec->u.entry.arrived = pg_int(r, i, 5);
		rec->u.entry.deleted = pg_int(r, i, 6) != 0;
		break;
	case STORE_REC_QUEUE:
		rec->u.queue.id = pg_int(r, i, 0);
		rec->u.queue.message = pg_int(r, i, 1);
		rec->u.queue.sender = col(r, i, 2);
		rec->u.queue.rcpt = col(r, i, 3);
		rec->u.queue.created = pg_int(r, i, 4);
		rec->u.queue.next_attempt = pg_int(r, i, 5);
		rec->u.queue.attempts = pg_int(r, i, 6);
		rec->u.queue.last_error = col(r, i, 7);
		break;
	case STORE_REC_SESSION:
		rec->u.session.id = col(r, i, 0);
		rec->u.session.proto = col(r, i, 1);
		rec->u.session.client = col(r, i, 2);
		rec->u.session.started = pg_int(r, i, 3);
		rec->u.session.ended = pg_int(r, i, 4);
		rec->u.session.user = col(r, i, 5);
		rec->u.session.outcome = col(r, i, 6);
		break;
	case STORE_REC_SESSION_ACCOUNT:
		rec->u.session_account.session = col(r, i, 0);
		rec->u.session_account.account = col(r, i, 1);
		break;
	case STORE_REC_TRANSCRIPT:
		rec->u.transcript.session_id = col(r, i, 0);
		rec->u.transcript.seq = pg_int(r, i, 1);
		rec->u.transcript.proto = col(r, i, 2);
		rec->u.transcript.lines = col(r, i, 3);
		rec->u.transcript.len = strlen(rec->u.transcript.lines);
		rec->u.transcript.time = pg_int(r, i, 4);
		break;
	case STORE_REC_WEBSESSION:
		rec->u.websession.id = col(r, i, 0);
		rec->u.websession.account = col(r, i, 1);
		rec->u.websession.csrf = col(r, i, 2);
		rec->u.websession.created = pg_int(r, i, 3);
		rec->u.websession.expires = pg_int(r, i, 4);
		break;
	case STORE_REC_TOKEN:
		rec->u.token.hash = col(r, i, 0);
		rec->u.token.account = col(r, i, 1);
		rec->u.token.created = pg_int(r, i, 2);
		break;
	case STORE_REC_SEQUENCE:
	case STORE_REC_KINDS:
		break;
	}
}

/* Every row of statement id, through a cursor, as records of kind to the
 * sink. 0 or -1. */
static int
dump_rows(struct store_pg *p, enum pg_stmt id, enum store_rec_kind kind,
    const struct store_dump_sink *sink)
{
	struct body_reader br;
	struct store_rec rec;
	PGresult *r;
	int i, n, ret = 0;

	if (pg_declare(p, DUMP_CURSOR, id, "dump") == -1)
		return -1;
	memset(&br, 0, sizeof(br));
	br.p = p;
	do {
		if ((r = pg_fetch(p, DUMP_CURSOR, DUMP_ROWS, "dump")) == NULL) {
			ret = -1;
			break;
		}
		n = PQntuples(r);
		for (i = 0; i < n && ret == 0; i++) {
			memset(&rec, 0, sizeof(rec));
			rec.kind = kind;
			row_record(r, i, &rec);
			if (kind == STORE_REC_MESSAGE) {
				br.id = rec.u.message.id;
				br.size = rec.u.message.size;
				br.seq = -1;
				rec.u.message.read = body_read;
				rec.u.message.read_arg = &br;
			}
			ret = sink->record(sink->arg, &rec);
		}
		PQclear(r);
	} while (ret == 0 && n == DUMP_ROWS);
	free(br.data);
	if (ret == 0 && pg_cmd(p, "CLOSE " DUMP_CURSOR, "dump") == -1)
		ret = -1;
	return ret;
}

static int
dump_sequences(struct store_pg *p, const struct store_dump_sink *sink)
{
	struct store_rec rec;
	PGresult *r;
	size_t k;
	int i, n, ret = 0;

	if ((r = pg_run(p, PG_DUMP_SEQUENCES, NULL, false, "dump sequences")) == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n && ret == 0; i++) {
		for (k = 0; k < NSEQS; k++)
			if (strcmp(PQgetvalue(r, i, 0), copy_seqs[k].table) == 0)
				break;
		if (k == NSEQS)
			continue;
		memset(&rec, 0, sizeof(rec));
		rec.kind = STORE_REC_SEQUENCE;
		rec.u.sequence.of = copy_seqs[k].kind;
		rec.u.sequence.last = pg_int(r, i, 1);
		ret = sink->record(sink->arg, &rec);
	}
	PQclear(r);
	return ret;
}

int
pg_dump(struct store *st, const struct store_dump_sink *sink)
{
	static const struct {
		enum pg_stmt	 id;
		enum store_rec_kind kind;
	} order[] = {
		{ PG_DUMP_DOMAINS, STORE_REC_DOMAIN },
		{ PG_DUMP_ACCOUNTS, STORE_REC_ACCOUNT },
		{ PG_DUMP_ALIASES, STORE_REC_ALIAS },
		{ PG_DUMP_MESSAGES, STORE_REC_MESSAGE },
		{ PG_DUMP_ENTRIES, STORE_REC_ENTRY },
		{ PG_DUMP_QUEUE, STORE_REC_QUEUE },
		{ PG_DUMP_SESSIONS, STORE_REC_SESSION },
		{ PG_DUMP_SESSION_ACCOUNTS, STORE_REC_SESSION_ACCOUNT },
		{ PG_DUMP_TRANSCRIPTS, STORE_REC_TRANSCRIPT },
		{ PG_DUMP_WEBSESSIONS, STORE_REC_WEBSESSION },
		{ PG_DUMP_TOKENS, STORE_REC_TOKEN },
	};
	struct store_pg *p = pg_of(st);
	bool own = !p->loading;
	size_t i;
	int ret = 0;

	/* Inside a load: its transaction (what it wrote, not yet committed). */
	if (own && (pg_enter(p, false) == -1 || pg_cmd(p, "BEGIN ISOLATION LEVEL"
	    " REPEATABLE READ READ ONLY", "begin dump") == -1))
		return -1;
	for (i = 0; i < sizeof(order) / sizeof(order[0]) && ret == 0; i++)
		ret = dump_rows(p, order[i].id, order[i].kind, sink);
	if (ret == 0)
		ret = dump_sequences(p, sink);
	if (own)
		pg_rollback(p);		/* a read: nothing to keep */
	else if (ret == -1)
		/* the load goes on only when its cursor is gone: a stopped
		 * dump's is closed (an error's went with the transaction) */
		PQclear(PQexec(p->conn, "CLOSE " DUMP_CURSOR));
	return ret;
}

/* ---- load --------------------------------------------------------------- */

int
pg_load_begin(struct store *st)
{
	struct store_pg *p = pg_of(st);

	if (pg_enter(p, false) == -1 || pg_begin(p) == -1)
		return -1;
	p->loading = true;
	return 0;
}

/* Run an insert that must add exactly one row ("what name" in errors). */
static int
insert_one(struct store_pg *p, enum pg_stmt id, const struct pgq *q, const char *what,
    const char *name)
{
	char msg[STORE_ERR_MAX];
	int64_t n;

	snprintf(msg, sizeof(msg), "load %s %s", what, name);
	if ((n = pg_do(p, id, q, msg)) == -1)
		return -1;
	if (n != 1) {
		store_setmsg(&p->base, "load %s %s: its account is not in the store", what, name);
		return -1;
	}
	return 0;
}

/* A body through its reader, once and in order, into chunk rows of
 * PG_CHUNK octets (the last shorter), as a delivery writes them. */
static int
load_body(struct store_pg *p, const struct store_rec_message *m)
{
	unsigned char *buf;
	struct pgq q;
	int64_t off = 0, seq = 0;
	size_t have, got;
	int ret = -1;

	if (m->size == 0)
		return 0;
	if ((buf = malloc(PG_CHUNK)) == NULL) {
		store_setmsg(&p->base, "message %lld: out of memory", (long long)m->id);
		return -1;
	}
	while (off < m->size) {
		size_t want = m->size - off < (int64_t)PG_CHUNK ? (size_t)(m->size - off) : PG_CHUNK;

		for (have = 0; have < want; have += got) {
			if (m->read(m->read_arg, off + (int64_t)have, buf + have, want - have,
			    &got) == -1) {
				store_setmsg(&p->base, "message %lld: reading its body failed",
				    (long long)m->id);
				goto out;
			}
			if (got == 0) {
				store_setmsg(&p->base, "message %lld: body shorter than its"
				    " size %lld", (long long)m->id, (long long)m->size);
				goto out;
			}
		}
		memset(&q, 0, sizeof(q));
		pgq_int(&q, m->id);
		pgq_int(&q, seq);
		pgq_bytes(&q, buf, want);
		if (pg_do(p, PG_CHUNK_ADD, &q, "load a message body") == -1)
			goto out;
		off += (int64_t)want;
		seq++;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static int
load_sequence(struct store_pg *p, const struct store_rec_sequence *sq)
{
	struct pgq q = { 0 };
	PGresult *r;
	size_t i;

	for (i = 0; i < NSEQS; i++)
		if (copy_seqs[i].kind == sq->of)
			break;
	if (i == NSEQS) {
		store_setmsg(&p->base, "load a sequence of a kind without ids (%d)", (int)sq->of);
		return -1;
	}
	if (sq->last <= 0)
		return 0;
	pgq_text(&q, copy_seqs[i].table);
	pgq_int(&q, sq->last);
	if ((r = pg_run(p, PG_LOAD_SEQ_RAISE, &q, false, "raise a sequence")) == NULL)
		return -1;
	PQclear(r);
	return 0;
}

int
pg_load_record(struct store *st, const struct store_rec *r)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	char id[32];

	switch (r->kind) {
	case STORE_REC_DOMAIN:
		pgq_text(&q, r->u.domain.name);
		pgq_int(&q, r->u.domain.created);
		return insert_one(p, PG_LOAD_DOMAIN, &q, "domain", r->u.domain.name);
	case STORE_REC_ACCOUNT:
		pgq_int(&q, r->u.account.id);
		pgq_text(&q, r->u.account.name);
		pgq_text(&q, r->u.account.hash);
		pgq_int(&q, r->u.account.created);
		pgq_text(&q, r->u.account.teacher ? "true" : "false");
		return insert_one(p, PG_LOAD_ACCOUNT, &q, "account", r->u.account.name);
	case STORE_REC_ALIAS:
		pgq_text(&q, r->u.alias.address);
		pgq_text(&q, r->u.alias.account);
		pgq_int(&q, r->u.alias.created);
		return insert_one(p, PG_LOAD_ALIAS, &q, "alias", r->u.alias.address);
	case STORE_REC_MESSAGE:
		snprintf(id, sizeof(id), "%lld", (long long)r->u.message.id);
		pgq_int(&q, r->u.message.id);
		pgq_int(&q, r->u.message.size);
		pgq_text(&q, r->u.message.sender);
		pgq_text(&q, r->u.message.session);
		pgq_int(&q, r->u.message.created);
		if (insert_one(p, PG_LOAD_MESSAGE, &q, "message", id) == -1)
			return -1;
		return load_body(p, &r->u.message);
	case STORE_REC_ENTRY:
		snprintf(id, sizeof(id), "%lld", (long long)r->u.entry.id);
		pgq_int(&q, r->u.entry.id);
		pgq_text(&q, r->u.entry.account);
		pgq_int(&q, r->u.entry.message);
		pgq_text(&q, r->u.entry.uidl);
		pgq_int(&q, r->u.entry.size);
		pgq_int(&q, r->u.entry.arrived);
		pgq_text(&q, r->u.entry.deleted ? "true" : "false");
		return insert_one(p, PG_LOAD_ENTRY, &q, "mailbox entry", id);
	case STORE_REC_QUEUE:
		snprintf(id, sizeof(id), "%lld", (long long)r->u.queue.id);
		pgq_int(&q, r->u.queue.id);
		pgq_int(&q, r->u.queue.message);
		pgq_text(&q, r->u.queue.sender);
		pgq_text(&q, r->u.queue.rcpt);
		pgq_int(&q, r->u.queue.created);
		pgq_int(&q, r->u.queue.next_attempt);
		pgq_int(&q, r->u.queue.attempts);
		pgq_text(&q, r->u.queue.last_error);
		return insert_one(p, PG_LOAD_QUEUE, &q, "queue item", id);
	case STORE_REC_SESSION:
		pgq_text(&q, r->u.session.id);
		pgq_text(&q, r->u.session.proto);
		pgq_text(&q, r->u.session.client);
		pgq_int(&q, r->u.session.started);
		pgq_int(&q, r->u.session.ended);
		pgq_text(&q, r->u.session.user);
		pgq_text(&q, r->u.session.outcome);
		return insert_one(p, PG_LOAD_SESSION, &q, "session", r->u.session.id);
	case STORE_REC_SESSION_ACCOUNT:
		pgq_text(&q, r->u.session_account.session);
		pgq_text(&q, r->u.session_account.account);
		return insert_one(p, PG_LOAD_SESSION_ACCOUNT, &q, "session account of",
		    r->u.session_account.session);
	case STORE_REC_TRANSCRIPT:
		pgq_text(&q, r->u.transcript.session_id);
		pgq_int(&q, r->u.transcript.seq);
		pgq_text(&q, r->u.transcript.proto);
		pgq_bytes(&q, r->u.transcript.lines, r->u.transcript.len);	/* text, as is */
		pgq_int(&q, r->u.transcript.time);
		return insert_one(p, PG_LOAD_TRANSCRIPT, &q, "transcript of",
		    r->u.transcript.session_id);
	case STORE_REC_WEBSESSION:
		pgq_text(&q, r->u.websession.id);
		pgq_text(&q, r->u.websession.account);
		pgq_text(&q, r->u.websession.csrf);
		pgq_int(&q, r->u.websession.created);
		pgq_int(&q, r->u.websession.expires);
		return insert_one(p, PG_LOAD_WEBSESSION, &q, "web login of",
		    r->u.websession.account);
	case STORE_REC_TOKEN:
		pgq_text(&q, r->u.token.hash);
		pgq_text(&q, r->u.token.account);
		pgq_int(&q, r->u.token.created);
		return insert_one(p, PG_LOAD_TOKEN, &q, "API token of", r->u.token.account);
	case STORE_REC_SEQUENCE:
		return load_sequence(p, &r->u.sequence);
	case STORE_REC_KINDS:
		break;
	}
	store_setmsg(&p->base, "load: unknown record kind %d", (int)r->kind);
	return -1;
}

/* Every identity sequence past the highest id loaded (a source that kept
 * no sequence for a kind still gives none of its ids again). */
static int
raise_to_max(struct store_pg *p)
{
	struct store_rec rec;
	PGresult *r;
	size_t i;
	int rc = 0;

	if ((r = pg_run(p, PG_LOAD_SEQ_MAX, NULL, false, "highest ids")) == NULL)
		return -1;
	for (i = 0; i < NSEQS && rc == 0; i++) {
		memset(&rec, 0, sizeof(rec));
		rec.u.sequence.of = copy_seqs[i].kind;
		rec.u.sequence.last = pg_int(r, 0, (int)i);
		rc = load_sequence(p, &rec.u.sequence);
	}
	PQclear(r);
	return rc;
}

int
pg_load_end(struct store *st, bool commit)
{
	struct store_pg *p = pg_of(st);

	p->loading = false;
	if (!commit) {
		pg_rollback(p);
		return 0;
	}
	if (raise_to_max(p) == -1) {
		pg_rollback(p);
		return -1;
	}
	return pg_commit(p);
}
