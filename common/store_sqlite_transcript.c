/*
 * store_sqlite_transcript.c - the session log: session rows (who, when, as
 * whom, how it ended), the accounts each involved, and the C:/S: lines of a
 * session appended in one transaction, and read back in order (a batch
 * comes gathered per session by the front, store_log.c). It lives in
 * its own file beside the store (store_sqlite.c opens it: sqlite_log_ready()), so
 * its transactions here run on st->logdb and never take the store's lock.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "store_sqlite.h"

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

static int
log_begin(struct store_sqlite *st)
{
	if (sqlite_log_ready(&st->base) == -1)
		return -1;
	return log_exec(st, "BEGIN IMMEDIATE", "begin transaction (session log)");
}

static void
log_rollback(struct store_sqlite *st)
{
	if (!sqlite3_get_autocommit(st->logdb))
		sqlite3_exec(st->logdb, "ROLLBACK", NULL, NULL, NULL);
}

static int
log_commit(struct store_sqlite *st)
{
	if (log_exec(st, "COMMIT", "commit (session log)") == -1) {
		log_rollback(st);
		return -1;
	}
	return 0;
}

/* ---- transcripts --------------------------------------------------------- */

int
sqlite_transcript_append(struct store *base, const char *session_id,
    const char *proto, const char *lines, size_t len)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	int64_t seq;

	if (len > 0 && lines[len - 1] == '\n')
		len--;
	if (len == 0)
		return 0;
	if (log_begin(st) == -1)
		return -1;
	s = store_stmt_get(st, ST_TRANSCRIPT_SEQ);
	store_bind_text(s, 1, session_id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_seterr_db(st, st->logdb, "transcript sequence");
		store_stmt_done(s);
		goto fail;
	}
	seq = sqlite3_column_int64(s, 0);
	store_stmt_done(s);
	s = store_stmt_get(st, ST_TRANSCRIPT_ADD);
	store_bind_text(s, 1, session_id);
	sqlite3_bind_int64(s, 2, seq + 1);
	store_bind_text(s, 3, proto ? proto : "");
	sqlite3_bind_text(s, 4, lines, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, store_now());
	if (store_step_done(st, s, "transcript lines") == -1)
		goto fail;
	return log_commit(st);
fail:
	log_rollback(st);
	return -1;
}

/* Each row holds one or more '\n'-separated lines: hand them out one by one. */
int
sqlite_transcript_get(struct store *base, const char *session_id,
    store_list_cb *cb, void *arg)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	struct buf row;
	char *p, *nl;
	size_t n = 0;
	int rc;

	if (sqlite_log_ready(&st->base) == -1)
		return -1;
	s = store_stmt_get(st, ST_TRANSCRIPT_GET);
	store_bind_text(s, 1, session_id);
	buf_init(&row, SIZE_MAX);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		buf_reset(&row);
		if (buf_append(&row, sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0)) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
		for (p = row.data; p != NULL; p = nl ? nl + 1 : NULL) {
			if ((nl = strchr(p, '\n')) != NULL)
				*nl = '\0';
			cb(arg, p, NULL);
			n++;
		}
	}
	buf_free(&row);
	store_stmt_done(s);
	if (rc == SQLITE_NOMEM) {
		store_setmsg(&st->base, "out of memory reading a transcript");
		return -1;
	}
	if (rc != SQLITE_DONE) {
		store_seterr_db(st, st->logdb, "read transcript");
		return -1;
	}
	if (n == 0) {
		store_setmsg(&st->base, "no transcript for session %s", session_id);
		return STORE_NOTFOUND;
	}
	return 0;
}


/* ---- the session log ------------------------------------------------------ */

/* Make the session's row if it has none (struct store_sesslog_share);
 * close: its CLOSE record when that is in the same batch as its OPEN (one
 * INSERT instead of an INSERT and an UPDATE, for most sessions), or NULL. */
static int
session_row_make(struct store_sqlite *st, const struct store_sesslog_rec *r,
    const struct store_sesslog_rec *close)
{
	sqlite3_stmt *s;

	s = store_stmt_get(st, close != NULL ? ST_SESSION_WHOLE : ST_SESSION_OPEN);
	store_bind_text(s, 1, r->id);
	store_bind_text(s, 2, r->proto);
	if (r->kind == STORE_SESSLOG_OPEN)
		sqlite3_bind_text(s, 3, r->text, (int)r->len, SQLITE_STATIC);
	else
		store_bind_text(s, 3, "");
	sqlite3_bind_int64(s, 4, r->time);
	if (close != NULL) {
		sqlite3_bind_int64(s, 5, close->time);
		sqlite3_bind_text(s, 6, close->text, (int)close->len, SQLITE_STATIC);
	}
	return store_step_done(st, s, "session");
}

static int
event_write(struct store_sqlite *st, const struct store_sesslog_rec *r)
{
	sqlite3_stmt *s;

	switch (r->kind) {
	case STORE_SESSLOG_USER:
		s = store_stmt_get(st, ST_SESSION_USER);
		store_bind_text(s, 1, r->id);
		sqlite3_bind_text(s, 2, r->text, (int)r->len, SQLITE_STATIC);
		if (store_step_done(st, s, "session user") == -1)
			return -1;
		/* logging in as an account is taking part */
		__attribute__((fallthrough));
	case STORE_SESSLOG_ACCOUNT:
		s = store_stmt_get(st, ST_SESSION_ACCOUNT);
		store_bind_text(s, 1, r->id);
		sqlite3_bind_text(s, 2, r->text, (int)r->len, SQLITE_STATIC);
		return store_step_done(st, s, "session account");
	case STORE_SESSLOG_CLOSE:
		s = store_stmt_get(st, ST_SESSION_CLOSE);
		store_bind_text(s, 1, r->id);
		sqlite3_bind_int64(s, 2, r->time);
		sqlite3_bind_text(s, 3, r->text, (int)r->len, SQLITE_STATIC);
		return store_step_done(st, s, "session end");
	case STORE_SESSLOG_OPEN:
	case STORE_SESSLOG_LINES:
		break;		/* not events: the row and the lines */
	}
	return 0;
}

/* Append a session's lines of the batch as one row, after its last. */
static int
lines_write(struct store_sqlite *st, const struct store_sesslog_share *sh)
{
	sqlite3_stmt *s;
	int64_t seq = 0;

	if (!sh->opened) {
		s = store_stmt_get(st, ST_TRANSCRIPT_SEQ);
		store_bind_text(s, 1, sh->id);
		if (sqlite3_step(s) != SQLITE_ROW) {
			store_seterr_db(st, st->logdb, "transcript sequence");
			store_stmt_done(s);
			return -1;
		}
		seq = sqlite3_column_int64(s, 0);
		store_stmt_done(s);
	}
	s = store_stmt_get(st, ST_TRANSCRIPT_ADD);
	store_bind_text(s, 1, sh->id);
	sqlite3_bind_int64(s, 2, seq + 1);
	store_bind_text(s, 3, sh->proto);
	sqlite3_bind_text(s, 4, sh->lines, (int)sh->len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, sh->time);
	return store_step_done(st, s, "transcript lines");
}

/* One session's share of a batch: its row, its events, its lines. */
static int
share_write(struct store_sqlite *st, const struct store_sesslog_share *sh)
{
	const struct store_sesslog_rec *close = NULL;
	size_t i;

	/* Its CLOSE is its last event; with its OPEN here, its row is new. */
	if (sh->opened && sh->nevents > 0 &&
	    sh->events[sh->nevents - 1]->kind == STORE_SESSLOG_CLOSE)
		close = sh->events[sh->nevents - 1];
	if (session_row_make(st, sh->first, close) == -1)
		return -1;
	for (i = 0; i < sh->nevents; i++)
		if (sh->events[i] != close && event_write(st, sh->events[i]) == -1)
			return -1;
	return sh->lines == NULL ? 0 : lines_write(st, sh);
}

int
sqlite_sesslog_apply(struct store *base, const struct store_sesslog_share *shares, size_t n)
{
	struct store_sqlite *st = sqlite_of(base);
	size_t i;

	if (log_begin(st) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (share_write(st, &shares[i]) == -1) {
			log_rollback(st);
			return -1;
		}
	return log_commit(st);
}

static void
session_row(sqlite3_stmt *s, struct store_session_info *si)
{
	const char *v;

	memset(si, 0, sizeof(*si));
#define COPY(field, col) \
	if ((v = (const char *)sqlite3_column_text(s, col)) != NULL) \
		snprintf(si->field, sizeof(si->field), "%s", v)
	COPY(id, 0);
	COPY(proto, 1);
	COPY(client, 2);
	si->started = sqlite3_column_int64(s, 3);
	si->ended = sqlite3_column_int64(s, 4);
	COPY(user, 5);
	COPY(outcome, 6);
#undef COPY
}

int
sqlite_session_list(struct store *base, const struct store_session_filter *f,
    store_session_cb *cb, void *arg)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	struct store_session_info si;
	int rc;

	if (sqlite_log_ready(&st->base) == -1)
		return -1;
	s = store_stmt_get(st, ST_SESSION_LIST);
	if (f->account != NULL)
		store_bind_text(s, 1, f->account);
	if (f->client != NULL)
		store_bind_text(s, 2, f->client);
	sqlite3_bind_int64(s, 3, f->since);
	if (f->text != NULL)
		store_bind_text(s, 4, f->text);
	sqlite3_bind_int64(s, 5, f->limit > 0 ? (int64_t)f->limit : 100);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		session_row(s, &si);
		cb(arg, &si);
	}
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		store_seterr_db(st, st->logdb, "list sessions");
		return -1;
	}
	return 0;
}

int
sqlite_session_get(struct store *base, const char *id, struct store_session_info *si_r)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	int rc;

	if (sqlite_log_ready(&st->base) == -1)
		return -1;
	s = store_stmt_get(st, ST_SESSION_GET);
	store_bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		session_row(s, si_r);
	store_stmt_done(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE) {
		store_setmsg(&st->base, "no session %s", id);
		return STORE_NOTFOUND;
	}
	store_seterr_db(st, st->logdb, "read session");
	return -1;
}

int
sqlite_session_involves(struct store *base, const char *id, const char *account)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	int rc;

	if (sqlite_log_ready(&st->base) == -1)
		return -1;
	s = store_stmt_get(st, ST_SESSION_INVOLVES);
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, account);
	rc = sqlite3_step(s);
	store_stmt_done(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	store_seterr_db(st, st->logdb, "read session");
	return -1;
}
