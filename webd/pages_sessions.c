/*
 * pages_sessions.c - SMTP and POP3 sessions on the web: /sessions (those
 * the user took part in, newest first; a teacher sees every session and
 * filters them by account, client address and time), /sessions/ID (the
 * C:/S: transcript, client and server lines in distinct classes, secrets
 * already masked in the store) and /sessions/live (teachers: the list,
 * kept current by /static/live.js polling /api/sessions).
 * Never: shows a session to someone who did not take part in it (404, as
 * for one that does not exist), unless they are a teacher.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "markup.h"
#include "numparse.h"
#include "webd.h"

#define SESSIONS_SHOWN	500	/* rows on one page */

int
session_visible(struct webreq *r, const char *id)
{
	struct store_session_info si;
	int rc;

	if ((rc = store_session_get(r->w->store, id, &si)) == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return -1;
	if (r->teacher)
		return 1;
	return store_session_involves(r->w->store, id, r->account);
}

/* "2026-11-25" or "2026-11-25T10:00" (UTC) or a unix time, for ?since=. */
static int64_t
parse_since(const char *s)
{
	struct tm tm;
	uint64_t n;
	const char *end;

	if (s == NULL || *s == '\0')
		return 0;
	if (numparse_u64z(s, INT64_MAX, &n) == NUMPARSE_OK)
		return (int64_t)n;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M", &tm)) == NULL) {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL)
			return 0;
	}
	return (int64_t)timegm(&tm);
}

void
session_filter(struct webreq *r, struct store_session_filter *f)
{
	const char *user = webd_query(r, "user");

	memset(f, 0, sizeof(*f));
	f->account = r->teacher ? (user != NULL && *user != '\0' ? user : NULL) : r->account;
	f->client = webd_query(r, "client");
	f->since = parse_since(webd_query(r, "since"));
	f->text = webd_query(r, "text");
	f->limit = SESSIONS_SHOWN;
}

static void
session_row(void *arg, const struct store_session_info *si)
{
	struct buf *b = arg;
	char when[64];

	html_time(when, sizeof(when), si->started);
	buf_puts(b, "<tr><td>");
	markup_html_str(b, when);
	buf_puts(b, "</td><td><a class=\"sid\" href=\"/sessions/");
	html_url_segment(b, si->id);
	buf_puts(b, "\">");
	markup_html_str(b, si->id);
	buf_puts(b, "</a></td><td>");
	markup_html_str(b, si->proto);
	buf_puts(b, "</td><td>");
	markup_html_str(b, si->client);
	buf_puts(b, "</td><td>");
	markup_html_str(b, si->user);
	buf_puts(b, "</td><td>");
	markup_html_str(b, si->ended == 0 ? "(open)" : si->outcome);
	buf_puts(b, "</td></tr>\n");
}

/* The filter form of the teachers' list (GET: nothing changes). */
static void
filter_form(struct buf *b, struct webreq *r, const char *action)
{
	static const char *const fields[][2] = {
		{ "user", "Account" }, { "client", "Client address" },
		{ "since", "Since (YYYY-MM-DD[THH:MM] UTC)" }, { "text", "Line contains" },
	};
	const char *v;
	size_t i;

	buf_printf(b, "<form method=\"get\" action=\"%s\" class=\"filters\">\n", action);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		v = webd_query(r, fields[i][0]);
		buf_printf(b, "<label>%s <input name=\"%s\" value=\"", fields[i][1], fields[i][0]);
		markup_html_str(b, v != NULL ? v : "");
		buf_puts(b, "\"></label>\n");
	}
	buf_puts(b, "<button type=\"submit\">Filter</button>\n</form>\n");
}

static void
sessions_table(struct webreq *r, const char *title, const char *action, bool live)
{
	struct store_session_filter f;
	struct buf b;

	session_filter(r, &f);
	buf_init(&b, WEBD_PAGE_MAX);
	html_begin(&b, r, title);
	if (r->teacher)
		filter_form(&b, r, action);
	if (live)
		buf_puts(&b, "<p id=\"live-status\">New sessions appear here as they are "
		    "recorded.</p>\n");
	buf_printf(&b, "<table class=\"list\" id=\"sessions\"%s>\n<thead><tr><th>Started</th>"
	    "<th>Session</th><th>Protocol</th><th>Client</th><th>User</th><th>Outcome</th></tr>"
	    "</thead>\n<tbody>\n", live ? " data-live=\"1\"" : "");
	if (store_session_list(r->w->store, &f, session_row, &b) == -1) {
		buf_free(&b);
		log_warnx("event=store-failed op=sessions error=\"%s\"", store_errmsg(r->w->store));
		webd_error(r, 503, "The sessions cannot be read now; try again later");
		return;
	}
	buf_puts(&b, "</tbody>\n</table>\n");
	if (live)
		buf_puts(&b, "<script src=\"/static/live.js\"></script>\n");
	html_end(&b);
	webd_send(r, 200, "text/html; charset=utf-8", &b);
	buf_free(&b);
}

void
page_sessions(struct webreq *r)
{
	sessions_table(r, r->teacher ? "All sessions" : "Your sessions", "/sessions", false);
}

void
page_live(struct webreq *r)
{
	sessions_table(r, "Live sessions", "/sessions/live", true);
}

/* One transcript line "TIME C: text" as a row of the transcript. */
static void
transcript_line(void *arg, const char *line, const char *unused)
{
	struct buf *b = arg;
	const char *sp = strchr(line, ' ');
	const char *cls = "other";

	(void)unused;
	if (sp != NULL && strncmp(sp + 1, "C: ", 3) == 0)
		cls = "c";
	else if (sp != NULL && strncmp(sp + 1, "S: ", 3) == 0)
		cls = "s";
	buf_printf(b, "<div class=\"line %s\"><span class=\"ts\">", cls);
	if (sp != NULL) {
		markup_html(b, line, (size_t)(sp - line));
		buf_puts(b, "</span> <span class=\"text\">");
		markup_html_str(b, sp + 1);
	} else {
		buf_puts(b, "</span> <span class=\"text\">");
		markup_html_str(b, line);
	}
	buf_puts(b, "</span></div>\n");
}

void
page_session(struct webreq *r)
{
	struct store_session_info si;
	char title[64], when[64], end[64];
	struct buf b;
	int rc;

	if ((rc = session_visible(r, r->param[0])) == 0) {
		webd_not_found(r);
		return;
	}
	if (rc == -1 || store_session_get(r->w->store, r->param[0], &si) != 0) {
		webd_error(r, 503, "The session cannot be read now; try again later");
		return;
	}
	snprintf(title, sizeof(title), "Session %s", si.id);
	html_time(when, sizeof(when), si.started);
	html_time(end, sizeof(end), si.ended);
	buf_init(&b, WEBD_PAGE_MAX);
	html_begin(&b, r, title);
	buf_puts(&b, "<table class=\"headers\" id=\"session-info\">\n<tr><th>Protocol</th><td>");
	markup_html_str(&b, si.proto);
	buf_puts(&b, "</td></tr>\n<tr><th>Client</th><td>");
	markup_html_str(&b, si.client);
	buf_puts(&b, "</td></tr>\n<tr><th>User</th><td>");
	markup_html_str(&b, si.user);
	buf_printf(&b, "</td></tr>\n<tr><th>Started</th><td>%s</td></tr>\n<tr><th>Ended</th>"
	    "<td>%s</td></tr>\n<tr><th>Outcome</th><td>", when, si.ended ? end : "(open)");
	markup_html_str(&b, si.outcome);
	buf_puts(&b, "</td></tr>\n</table>\n<p class=\"legend\"><span class=\"line c\">C: the "
	    "client</span> <span class=\"line s\">S: the server</span></p>\n"
	    "<div class=\"transcript\" id=\"transcript\">\n");
	rc = store_transcript_get(r->w->store, si.id, transcript_line, &b);
	if (rc == -1) {
		buf_free(&b);
		webd_error(r, 503, "The transcript cannot be read now; try again later");
		return;
	}
	buf_puts(&b, "</div>\n");
	html_end(&b);
	webd_send(r, 200, "text/html; charset=utf-8", &b);
	buf_free(&b);
}

/*
 * The relay's outbound queue, for teachers (mailcli admin queue list as a
 * page): what waits for another server, why, and when it is tried again.
 * Read only: webd never changes the queue.
 */
void
page_queue(struct webreq *r)
{
	struct store_queue_item *items = NULL;
	char created[64], next[64];
	struct buf b;
	size_t n = 0, i;

	if (store_queue_list(r->w->store, -1, &items, &n) == -1) {
		webd_error(r, 503, "The queue cannot be read now; try again later");
		return;
	}
	buf_init(&b, WEBD_PAGE_MAX);
	html_begin(&b, r, "Outbound queue");
	buf_printf(&b, "<p>%zu message%s waiting for another server.</p>\n", n,
	    n == 1 ? "" : "s");
	buf_puts(&b, "<table class=\"list\" id=\"queue\">\n<tr><th>Id</th><th>Queued</th>"
	    "<th>From</th><th>To</th><th>Attempts</th><th>Next try</th><th>Last error</th></tr>\n");
	for (i = 0; i < n; i++) {
		html_time(created, sizeof(created), items[i].created);
		html_time(next, sizeof(next), items[i].next_attempt);
		buf_printf(&b, "<tr><td>%lld</td><td>%s</td><td>", (long long)items[i].id, created);
		markup_html_str(&b, items[i].sender[0] ? items[i].sender : "<>");
		buf_puts(&b, "</td><td>");
		markup_html_str(&b, items[i].rcpt);
		buf_printf(&b, "</td><td>%d</td><td>%s</td><td>", items[i].attempts, next);
		markup_html_str(&b, items[i].last_error);
		buf_puts(&b, "</td></tr>\n");
	}
	buf_puts(&b, "</table>\n");
	free(items);
	html_end(&b);
	webd_send(r, 200, "text/html; charset=utf-8", &b);
	buf_free(&b);
}
