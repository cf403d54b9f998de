/*
 * store_transcript.c - the session log in the store: session rows (who, when,
 * as whom, how it ended), the accounts each involved, and the C:/S: lines of
 * a session appended in one transaction, and read back in order.
 */

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store_internal.h"

/* ---- transcripts --------------------------------------------------------- */

int
store_transcript_append(struct store *st, const char *session_id,
    const char *proto, const char *lines, size_t len)
{
	sqlite3_stmt *s;
	const char *p = lines, *end = lines + len, *nl;
	int64_t seq, now = store_now();
	int rc;

	if (len == 0)
		return 0;
	if (store_begin(st) == -1)
		return -1;
	s = store_stmt_get(st, ST_TRANSCRIPT_SEQ);
	store_bind_text(s, 1, session_id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		store_seterr(st, "transcript sequence");
		store_stmt_done(s);
		goto fail;
	}
	seq = sqlite3_column_int64(s, 0);
	store_stmt_done(s);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		s = store_stmt_get(st, ST_TRANSCRIPT_ADD);
		store_bind_text(s, 1, session_id);
		sqlite3_bind_int64(s, 2, ++seq);
		store_bind_text(s, 3, proto ? proto : "");
		sqlite3_bind_text(s, 4, p, (int)(nl - p), SQLITE_STATIC);
		sqlite3_bind_int64(s, 5, now);
		if (store_step_done(st, s, "transcript line") == -1)
			goto fail;
		p = nl + 1;
	}
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

int
store_transcript_get(struct store *st, const char *session_id,
    store_list_cb *cb, void *arg)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_TRANSCRIPT_GET);
	size_t n = 0;
	int rc;

	store_bind_text(s, 1, session_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cb(arg, (const char *)sqlite3_column_text(s, 0), NULL);
		n++;
	}
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		store_seterr(st, "read transcript");
		return -1;
	}
	if (n == 0) {
		store_setmsg(st, "no transcript for session %s", session_id);
		return STORE_NOTFOUND;
	}
	return 0;
}


/* ---- the session log ------------------------------------------------------ */

int
store_set_relaxed_sync(struct store *st)
{
	if (sqlite3_exec(st->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
		store_seterr(st, "synchronous = NORMAL");
		return -1;
	}
	return 0;
}

/* Append one record's transcript lines, numbered after the session's last. */
static int
sesslog_lines(struct store *st, const struct store_sesslog_rec *r)
{
	sqlite3_stmt *s;
	const char *p = r->text, *end = r->text + r->len, *nl;
	int64_t seq;

	s = store_stmt_get(st, ST_TRANSCRIPT_SEQ);
	store_bind_text(s, 1, r->id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_seterr(st, "transcript sequence");
		store_stmt_done(s);
		return -1;
	}
	seq = sqlite3_column_int64(s, 0);
	store_stmt_done(s);
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		s = store_stmt_get(st, ST_TRANSCRIPT_ADD);
		store_bind_text(s, 1, r->id);
		sqlite3_bind_int64(s, 2, ++seq);
		store_bind_text(s, 3, r->proto);
		sqlite3_bind_text(s, 4, p, (int)(nl - p), SQLITE_STATIC);
		sqlite3_bind_int64(s, 5, r->time);
		if (store_step_done(st, s, "transcript line") == -1)
			return -1;
		p = nl + 1;
	}
	return 0;
}

static int
sesslog_one(struct store *st, const struct store_sesslog_rec *r)
{
	sqlite3_stmt *s;

	/* Every record makes sure the session has its row: an outbound
	 * session's first record is its lines. */
	s = store_stmt_get(st, ST_SESSION_OPEN);
	store_bind_text(s, 1, r->id);
	store_bind_text(s, 2, r->proto);
	if (r->kind == STORE_SESSLOG_OPEN)
		sqlite3_bind_text(s, 3, r->text, (int)r->len, SQLITE_STATIC);
	else
		store_bind_text(s, 3, "");
	sqlite3_bind_int64(s, 4, r->time);
	if (store_step_done(st, s, "session") == -1)
		return -1;
	switch (r->kind) {
	case STORE_SESSLOG_OPEN:
		return 0;
	case STORE_SESSLOG_LINES:
		return sesslog_lines(st, r);
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
	}
	return 0;
}

int
store_sesslog_apply(struct store *st, const struct store_sesslog_rec *recs, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	if (store_begin(st) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (sesslog_one(st, &recs[i]) == -1) {
			store_rollback(st);
			return -1;
		}
	return store_commit(st);
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
store_session_list(struct store *st, const struct store_session_filter *f,
    store_session_cb *cb, void *arg)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_SESSION_LIST);
	struct store_session_info si;
	int rc;

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
		store_seterr(st, "list sessions");
		return -1;
	}
	return 0;
}

int
store_session_get(struct store *st, const char *id, struct store_session_info *si_r)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_SESSION_GET);
	int rc;

	store_bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		session_row(s, si_r);
	store_stmt_done(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE) {
		store_setmsg(st, "no session %s", id);
		return STORE_NOTFOUND;
	}
	store_seterr(st, "read session");
	return -1;
}

int
store_session_involves(struct store *st, const char *id, const char *account)
{
	sqlite3_stmt *s = store_stmt_get(st, ST_SESSION_INVOLVES);
	int rc;

	store_bind_text(s, 1, id);
	store_bind_text(s, 2, account);
	rc = sqlite3_step(s);
	store_stmt_done(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	store_seterr(st, "read session");
	return -1;
}
