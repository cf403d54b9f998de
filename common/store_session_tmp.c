/*
 * store_session_tmp.c - TEMPORARY, for the webd branch only: the session log
 * API of store.h (store_session_list/get/involves) worked out from the
 * transcripts table, so that webd's session pages and their tests run
 * before the lead's session log (a sessions table written live, with the
 * client address, user and outcome) reaches main. At that merge this file
 * is deleted. Until then: the client is what smtpd's HELO/EHLO reply names
 * (POP3 sessions have none), the user what pop3d's "+OK Logged in as"
 * names, the outcome the last server line, a session is involved with an
 * account when it delivered to its mailbox or logged in as it; ended is
 * the time of the last line. Its statements are prepared per call (not in
 * store.c's table: they are not meant to stay).
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store_internal.h"

#define TMP_SESSION_COLS \
	"SELECT t.session_id, min(t.proto), min(t.time), max(t.time)," \
	" (SELECT line FROM transcripts x WHERE x.session_id = t.session_id AND" \
	"   instr(x.line, ' Hello ') > 0 ORDER BY seq LIMIT 1)," \
	" (SELECT line FROM transcripts x WHERE x.session_id = t.session_id AND" \
	"   instr(x.line, 'S: +OK Logged in as ') > 0 ORDER BY seq LIMIT 1)," \
	" (SELECT line FROM transcripts x WHERE x.session_id = t.session_id AND" \
	"   instr(x.line, ' S: ') > 0 ORDER BY seq DESC LIMIT 1)" \
	" FROM transcripts t"

#define TMP_INVOLVES(id, acct) \
	" (EXISTS (SELECT 1 FROM messages g JOIN mailbox m ON m.message = g.id" \
	"   JOIN accounts a ON a.id = m.account WHERE g.session = " id " AND a.name = " acct ")" \
	"  OR EXISTS (SELECT 1 FROM transcripts x WHERE x.session_id = " id " AND" \
	"   instr(lower(x.line), lower('S: +OK Logged in as ' || " acct " || ':')) > 0))"

/* Copy the text after marker in s, up to a character in stop, into dst. */
static void
after(const char *s, const char *marker, const char *stop, char *dst, size_t len)
{
	const char *p = s != NULL ? strstr(s, marker) : NULL;
	size_t n;

	dst[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(marker);
	n = strcspn(p, stop);
	if (n >= len)
		n = len - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

static void
row_info(sqlite3_stmt *s, struct store_session_info *si)
{
	const char *hello = (const char *)sqlite3_column_text(s, 4);

	memset(si, 0, sizeof(*si));
	snprintf(si->id, sizeof(si->id), "%s", (const char *)sqlite3_column_text(s, 0));
	snprintf(si->proto, sizeof(si->proto), "%s", (const char *)sqlite3_column_text(s, 1));
	si->started = sqlite3_column_int64(s, 2);
	si->ended = sqlite3_column_int64(s, 3);
	if (hello != NULL)
		after(strstr(hello, " Hello "), "[", "]", si->client, sizeof(si->client));
	after((const char *)sqlite3_column_text(s, 5), "Logged in as ", ":", si->user,
	    sizeof(si->user));
	after((const char *)sqlite3_column_text(s, 6), " S: ", "\r\n", si->outcome,
	    sizeof(si->outcome));
}

int
store_session_list(struct store *st, const struct store_session_filter *f,
    void (*cb)(void *arg, const struct store_session_info *si), void *arg)
{
	static const char sql[] = TMP_SESSION_COLS
	    " WHERE (?1 IS NULL OR" TMP_INVOLVES("t.session_id", "?1") ")"
	    " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM transcripts x WHERE"
	    "   x.session_id = t.session_id AND instr(x.line, ?3) > 0))"
	    " GROUP BY t.session_id HAVING min(t.time) >= ?2"
	    " ORDER BY min(t.time) DESC, t.session_id DESC";
	struct store_session_info si;
	sqlite3_stmt *s;
	size_t n = 0;
	int rc;

	store_blobs_release(st);
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_seterr(st, "list sessions");
		return -1;
	}
	if (f->account != NULL)
		store_bind_text(s, 1, f->account);
	sqlite3_bind_int64(s, 2, f->since);
	if (f->text != NULL && *f->text != '\0')
		store_bind_text(s, 3, f->text);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_info(s, &si);
		if (f->client != NULL && *f->client != '\0' && strcmp(f->client, si.client) != 0)
			continue;
		cb(arg, &si);
		if (f->limit > 0 && ++n >= f->limit)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_seterr(st, "list sessions");
		sqlite3_finalize(s);
		return -1;
	}
	sqlite3_finalize(s);
	return 0;
}

int
store_session_get(struct store *st, const char *id, struct store_session_info *si_r)
{
	static const char sql[] = TMP_SESSION_COLS " WHERE t.session_id = ?1"
	    " GROUP BY t.session_id";
	sqlite3_stmt *s;
	int rc;

	store_blobs_release(st);
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_seterr(st, "read session");
		return -1;
	}
	store_bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		row_info(s, si_r);
	else if (rc != SQLITE_DONE)
		store_seterr(st, "read session");
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? STORE_NOTFOUND : -1;
}

int
store_session_involves(struct store *st, const char *id, const char *account)
{
	static const char sql[] = "SELECT" TMP_INVOLVES("?1", "?2");
	sqlite3_stmt *s;
	int rc, yes = 0;

	store_blobs_release(st);
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_seterr(st, "session involves");
		return -1;
	}
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, account);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		yes = sqlite3_column_int(s, 0) != 0;
	else
		store_seterr(st, "session involves");
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? yes : -1;
}
