/*
 * api.c - webd's JSON API for scripts (a grading script pulls a class's
 * sessions; a test suite reads a mailbox): GET /api/mailbox,
 * /api/mailbox/N, /api/sessions (?user= ?client= ?since= ?text=) and
 * /api/sessions/ID, the same data and the same visibility rules as the
 * pages, with a web login's cookie or an API token (Authorization: Bearer,
 * made by `mailcli admin token add`). Strings are escaped by
 * common/markup.c.
 * Never: answers with another account's message, or a session the asker
 * may not see (404).
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "markup.h"
#include "mime.h"
#include "webd.h"

static void
json_send(struct webreq *r, struct buf *b)
{
	webd_send(r, 200, "application/json", b);
	buf_free(b);
}

static void
json_field(struct buf *b, const char *name, const char *value, bool last)
{
	buf_printf(b, "\"%s\":", name);
	markup_json_str(b, value);
	buf_puts(b, last ? "" : ",");
}

struct list_ctx {
	struct buf	*b;
	size_t		 n;
};

static void
mailbox_item(void *arg, const struct mail_row *m)
{
	struct list_ctx *c = arg;

	buf_printf(c->b, "%s{\"id\":%lld,\"size\":%lld,\"arrived\":%lld,", c->n++ ? "," : "",
	    (long long)m->id, (long long)m->size, (long long)m->arrived);
	json_field(c->b, "date", m->date, false);
	json_field(c->b, "from", m->from, false);
	json_field(c->b, "subject", m->subject, true);
	buf_puts(c->b, "}");
}

void
api_mailbox(struct webreq *r)
{
	struct buf b;
	struct list_ctx c = { &b, 0 };

	buf_init(&b, WEBD_PAGE_MAX);
	buf_puts(&b, "{\"messages\":[");
	if (mail_rows(r, mailbox_item, &c) == -1) {
		buf_free(&b);
		webd_error(r, 503, "The mailbox cannot be read now");
		return;
	}
	buf_puts(&b, "]}\n");
	json_send(r, &b);
}

static void
parts_json(struct buf *b, const struct mime_part *p, size_t *n)
{
	for (; p != NULL; p = p->next) {
		buf_printf(b, "%s{\"depth\":%d,", (*n)++ ? "," : "", p->depth);
		json_field(b, "type", p->type, false);
		json_field(b, "filename", p->filename, false);
		buf_printf(b, "\"attachment\":%s}", p->attachment ? "true" : "false");
		if (p->child != NULL)
			parts_json(b, p->child, n);
	}
}

void
api_message(struct webreq *r)
{
	static const char *const headers[] = { "From", "To", "Cc", "Date", "Subject", "Message-ID" };
	struct store_msg_info info;
	const struct mime_part *text;
	struct mime_part *root;
	struct buf msg, b, dec;
	char v[2048], session[STORE_SID_MAX + 1];
	size_t i, n = 0;

	buf_init(&msg, WEBD_PAGE_MAX);
	if (mail_load(r, r->param[0], &info, &msg) == -1) {
		buf_free(&msg);
		return;
	}
	root = mime_parse(msg.data, msg.len);
	buf_init(&b, WEBD_PAGE_MAX);
	buf_printf(&b, "{\"id\":%lld,\"size\":%lld,\"arrived\":%lld,", (long long)info.msg.entry_id,
	    (long long)info.msg.size, (long long)info.msg.arrived);
	snprintf(session, sizeof(session), "%s", info.session);
	if (session[0] == '\0')
		mail_received_session(msg.data, msg.len, session, sizeof(session));
	json_field(&b, "session", session, false);
	json_field(&b, "sender", info.sender, false);
	buf_puts(&b, "\"headers\":{");
	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		if (root == NULL || mime_header_shown(root, headers[i], v, sizeof(v)) == -1)
			v[0] = '\0';
		json_field(&b, headers[i], v, i + 1 == sizeof(headers) / sizeof(headers[0]));
	}
	buf_puts(&b, "},");
	buf_init(&dec, WEBD_PAGE_MAX);
	if (root != NULL && (text = mime_text_part(root)) != NULL)
		mime_decode_body(text, &dec);
	buf_puts(&b, "\"text\":");
	markup_json(&b, dec.data ? dec.data : "", dec.len);
	buf_free(&dec);
	buf_puts(&b, ",\"parts\":[");
	parts_json(&b, root, &n);
	buf_puts(&b, "],\"raw\":");
	markup_json(&b, msg.data, msg.len);
	buf_puts(&b, "}\n");
	mime_free(&root);
	buf_free(&msg);
	json_send(r, &b);
}

static void
session_json(struct buf *b, const struct store_session_info *si)
{
	buf_puts(b, "{");
	json_field(b, "id", si->id, false);
	json_field(b, "proto", si->proto, false);
	json_field(b, "client", si->client, false);
	buf_printf(b, "\"started\":%lld,\"ended\":%lld,", (long long)si->started,
	    (long long)si->ended);
	json_field(b, "user", si->user, false);
	json_field(b, "outcome", si->outcome, true);
	buf_puts(b, "}");
}

static void
session_item(void *arg, const struct store_session_info *si)
{
	struct list_ctx *c = arg;

	if (c->n++)
		buf_puts(c->b, ",");
	session_json(c->b, si);
}

void
api_sessions(struct webreq *r)
{
	struct store_session_filter f;
	struct buf b;
	struct list_ctx c = { &b, 0 };

	session_filter(r, &f);
	buf_init(&b, WEBD_PAGE_MAX);
	buf_puts(&b, "{\"sessions\":[");
	if (store_session_list(r->w->store, &f, session_item, &c) == -1) {
		buf_free(&b);
		log_warnx("event=store-failed op=sessions error=\"%s\"", store_errmsg(r->w->store));
		webd_error(r, 503, "The sessions cannot be read now");
		return;
	}
	buf_puts(&b, "]}\n");
	json_send(r, &b);
}

static void
line_item(void *arg, const char *line, const char *unused)
{
	struct list_ctx *c = arg;

	(void)unused;
	if (c->n++)
		buf_puts(c->b, ",");
	markup_json_str(c->b, line);
}

void
api_session(struct webreq *r)
{
	struct store_session_info si;
	struct buf b;
	struct list_ctx c = { &b, 0 };
	int rc;

	if ((rc = session_visible(r, r->param[0])) == 0) {
		webd_not_found(r);
		return;
	}
	if (rc == -1 || store_session_get(r->w->store, r->param[0], &si) != 0) {
		webd_error(r, 503, "The session cannot be read now");
		return;
	}
	buf_init(&b, WEBD_PAGE_MAX);
	buf_puts(&b, "{\"session\":");
	session_json(&b, &si);
	buf_puts(&b, ",\"transcript\":[");
	if (store_transcript_get(r->w->store, si.id, line_item, &c) == -1) {
		buf_free(&b);
		webd_error(r, 503, "The transcript cannot be read now");
		return;
	}
	buf_puts(&b, "]}\n");
	json_send(r, &b);
}
