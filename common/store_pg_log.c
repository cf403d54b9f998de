/*
 * store_pg_log.c - the PostgreSQL backend's session log: session rows (who,
 * when, as whom, how it ended), the accounts each involved, and transcript
 * lines, in their own tables of the store's database. A batch is one
 * transaction with synchronous_commit off for it alone: lab data, not mail
 * (a crash of the database may lose its last batches, never a delivery).
 * The front (store_log.c) gathers a batch per session; this file writes
 * each session's share (a session's lines of one batch: one transcripts
 * row).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

static int
log_begin(struct store_pg *p)
{
	if (pg_enter(p, false) == -1 || pg_begin(p) == -1)
		return -1;
	if (pg_cmd(p, "SET LOCAL synchronous_commit = off", "session log") == -1) {
		pg_rollback(p);
		return -1;
	}
	return 0;
}

int
pg_log_ready(struct store *st)
{
	/* The session log's tables came with the schema at open. */
	return pg_enter(pg_of(st), false);
}

/* The next seq of session id's transcript rows (inside a transaction):
 * 1 and up, or -1. */
static int64_t
next_seq(struct store_pg *p, const char *id)
{
	struct pgq q = { 0 };
	PGresult *r;
	int64_t seq;

	pgq_text(&q, id);
	if ((r = pg_run(p, PG_TRANSCRIPT_SEQ, &q, false, "transcript sequence")) == NULL)
		return -1;
	seq = pg_int(r, 0, 0) + 1;
	PQclear(r);
	return seq;
}

static int
lines_add(struct store_pg *p, const char *id, int64_t seq, const char *proto,
    const char *lines, size_t len, int64_t time)
{
	struct pgq q = { 0 };

	pgq_text(&q, id);
	pgq_int(&q, seq);
	pgq_text(&q, proto);
	pgq_bytes(&q, lines, len);	/* text sent as its octets: no NUL needed */
	pgq_int(&q, time);
	return pg_do(p, PG_TRANSCRIPT_ADD, &q, "transcript lines") == -1 ? -1 : 0;
}

int
pg_transcript_append(struct store *st, const char *session_id,
    const char *proto, const char *lines, size_t len)
{
	struct store_pg *p = pg_of(st);
	int64_t seq;

	if (len > 0 && lines[len - 1] == '\n')
		len--;
	if (len == 0)
		return 0;
	if (log_begin(p) == -1)
		return -1;
	if ((seq = next_seq(p, session_id)) == -1 ||
	    lines_add(p, session_id, seq, proto ? proto : "", lines, len, store_now()) == -1) {
		pg_rollback(p);
		return -1;
	}
	return pg_commit(p);
}

/* Each row holds one or more '\n'-separated lines: hand them out one by one. */
int
pg_transcript_get(struct store *st, const char *session_id, store_list_cb *cb, void *arg)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	PGresult *r;
	char *row, *s, *nl;
	size_t n = 0;
	int i, nrows;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, session_id);
	if ((r = pg_run(p, PG_TRANSCRIPT_GET, &q, false, "read transcript")) == NULL)
		return -1;
	nrows = PQntuples(r);
	for (i = 0; i < nrows; i++) {
		row = PQgetvalue(r, i, 0);	/* libpq's copy: ours to cut */
		for (s = row; s != NULL; s = nl ? nl + 1 : NULL) {
			if ((nl = strchr(s, '\n')) != NULL)
				*nl = '\0';
			cb(arg, s, NULL);
			n++;
		}
	}
	PQclear(r);
	if (n == 0) {
		store_setmsg(st, "no transcript for session %s", session_id);
		return STORE_NOTFOUND;
	}
	return 0;
}

/* ---- the session log ---------------------------------------------------------- */

/* Make the session's row if it has none (struct store_sesslog_share). */
static int
session_row_make(struct store_pg *p, const struct store_sesslog_rec *r)
{
	struct pgq q = { 0 };

	pgq_text(&q, r->id);
	pgq_text(&q, r->proto);
	if (r->kind == STORE_SESSLOG_OPEN)
		pgq_bytes(&q, r->text, r->len);
	else
		pgq_text(&q, "");
	pgq_int(&q, r->time);
	return pg_do(p, PG_SESSION_OPEN, &q, "session") == -1 ? -1 : 0;
}

static int
event_write(struct store_pg *p, const struct store_sesslog_rec *r)
{
	struct pgq q = { 0 };

	switch (r->kind) {
	case STORE_SESSLOG_USER:
		pgq_text(&q, r->id);
		pgq_bytes(&q, r->text, r->len);
		if (pg_do(p, PG_SESSION_USER, &q, "session user") == -1)
			return -1;
		/* logging in as an account is taking part */
		__attribute__((fallthrough));
	case STORE_SESSLOG_ACCOUNT:
		memset(&q, 0, sizeof(q));
		pgq_text(&q, r->id);
		pgq_bytes(&q, r->text, r->len);
		return pg_do(p, PG_SESSION_ACCOUNT, &q, "session account") == -1 ? -1 : 0;
	case STORE_SESSLOG_CLOSE:
		pgq_text(&q, r->id);
		pgq_int(&q, r->time);
		pgq_bytes(&q, r->text, r->len);
		return pg_do(p, PG_SESSION_CLOSE, &q, "session end") == -1 ? -1 : 0;
	case STORE_SESSLOG_OPEN:
	case STORE_SESSLOG_LINES:
		break;		/* not events: the row and the lines */
	}
	return 0;
}

/* One session's share of a batch: its row, its events, its lines as one
 * row after its last. */
static int
share_write(struct store_pg *p, const struct store_sesslog_share *sh)
{
	int64_t seq = 1;
	size_t i;

	if (session_row_make(p, sh->first) == -1)
		return -1;
	for (i = 0; i < sh->nevents; i++)
		if (event_write(p, sh->events[i]) == -1)
			return -1;
	if (sh->lines == NULL)
		return 0;
	if (!sh->opened && (seq = next_seq(p, sh->id)) == -1)
		return -1;
	return lines_add(p, sh->id, seq, sh->proto, sh->lines, sh->len, sh->time);
}

int
pg_sesslog_apply(struct store *st, const struct store_sesslog_share *shares, size_t n)
{
	struct store_pg *p = pg_of(st);
	size_t i;

	if (log_begin(p) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (share_write(p, &shares[i]) == -1) {
			pg_rollback(p);
			return -1;
		}
	return pg_commit(p);
}

static void
session_row(const PGresult *r, int i, struct store_session_info *si)
{
	memset(si, 0, sizeof(*si));
	pg_copy(r, i, 0, si->id, sizeof(si->id));
	pg_copy(r, i, 1, si->proto, sizeof(si->proto));
	pg_copy(r, i, 2, si->client, sizeof(si->client));
	si->started = pg_int(r, i, 3);
	si->ended = pg_int(r, i, 4);
	pg_copy(r, i, 5, si->user, sizeof(si->user));
	pg_copy(r, i, 6, si->outcome, sizeof(si->outcome));
}

int
pg_session_list(struct store *st, const struct store_session_filter *f,
    store_session_cb *cb, void *arg)
{
	struct store_pg *p = pg_of(st);
	struct store_session_info si;
	struct pgq q = { 0 };
	PGresult *r;
	int i, n;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, f->account);
	pgq_text(&q, f->client);
	pgq_int(&q, f->since);
	pgq_text(&q, f->text);
	pgq_int(&q, f->limit > 0 ? (int64_t)f->limit : 100);
	if ((r = pg_run(p, PG_SESSION_LIST, &q, false, "list sessions")) == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		session_row(r, i, &si);
		cb(arg, &si);
	}
	PQclear(r);
	return 0;
}

int
pg_session_get(struct store *st, const char *id, struct store_session_info *si_r)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	PGresult *r;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, id);
	if ((r = pg_run(p, PG_SESSION_GET, &q, false, "read session")) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		store_setmsg(st, "no session %s", id);
		return STORE_NOTFOUND;
	}
	session_row(r, 0, si_r);
	PQclear(r);
	return 0;
}

int
pg_session_involves(struct store *st, const char *id, const char *account)
{
	struct store_pg *p = pg_of(st);
	struct pgq q = { 0 };
	PGresult *r;
	int found;

	if (pg_enter(p, false) == -1)
		return -1;
	pgq_text(&q, id);
	pgq_text(&q, account);
	if ((r = pg_run(p, PG_SESSION_INVOLVES, &q, false, "read session")) == NULL)
		return -1;
	found = PQntuples(r) > 0;
	PQclear(r);
	return found;
}
