/*
 * store_transcript.c - session transcripts in the store: the C:/S: lines of
 * a session appended in one transaction, and read back in order.
 */

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

