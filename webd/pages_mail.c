/*
 * pages_mail.c - a user's own mailbox on the web: /mailbox (date, from,
 * subject, size, newest first, as `mailcli inbox` shows them), /mailbox/N
 * (the headers that matter, the text part as text, an HTML part as escaped
 * source, the MIME tree, attachments, the raw message and a link to the
 * SMTP session that delivered it), /mailbox/N/part/K (an attachment, always
 * as a download) and /mailbox/N/raw. N is the mailbox entry id; an entry of
 * another account is 404 like a missing one. MIME is read by mailcli's
 * parser (mailcli/mime_read.c, linked through mailcli_core).
 * Never: renders mail HTML, or sends an attachment the browser could show
 * inline or sniff.
 */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "markup.h"
#include "mime.h"
#include "numparse.h"
#include "webd.h"

#define MAIL_HEAD_READ	16384	/* octets read of each message for the listing */
#define MAIL_RAW_SHOWN	(256u << 10)	/* raw source shown inline on the page */

int
mail_load(struct webreq *r, const char *param, struct store_msg_info *info, struct buf *msg)
{
	uint64_t id;
	char chunk[65536];
	size_t got;
	int rc;

	if (numparse_u64z(param, INT64_MAX, &id) != NUMPARSE_OK) {
		webd_not_found(r);
		return -1;
	}
	rc = store_mailbox_entry(r->w->store, r->account, (int64_t)id, info);
	if (rc == STORE_NOTFOUND) {
		webd_not_found(r);
		return -1;
	}
	if (rc == 0) {
		for (;;) {
			rc = store_msg_read(r->w->store, info->msg.entry_id, (int64_t)msg->len, chunk,
			    sizeof(chunk), &got);
			if (rc != 0 || got == 0)
				break;
			if (buf_append(msg, chunk, got) == -1) {
				rc = -1;
				break;
			}
		}
		store_read_done(r->w->store);
	}
	if (rc != 0) {
		log_warnx("event=store-failed op=read-message error=\"%s\"",
		    store_errmsg(r->w->store));
		webd_error(r, 503, "The message cannot be read now; try again later");
		return -1;
	}
	if (msg->data == NULL)
		buf_puts(msg, "");
	return 0;
}

void
mail_received_session(const char *msg, size_t len, char *dst, size_t dstlen)
{
	const char *end = msg + len, *p, *q, *hend;
	size_t n;

	dst[0] = '\0';
	hend = memmem(msg, len, "\r\n\r\n", 4);
	if (hend != NULL)
		end = hend;
	for (p = msg; p < end; p++) {
		if ((p == msg || p[-1] == '\n') && (size_t)(end - p) > 9 &&
		    strncasecmp(p, "Received:", 9) == 0)
			break;
	}
	/* the header, with its folded lines */
	for (q = p; q < end; q++) {
		if (*q == '\n' && (q + 1 >= end || (q[1] != ' ' && q[1] != '\t')))
			break;
		if ((size_t)(q - p) > 4 && memcmp(q - 4, " id ", 4) == 0) {
			for (n = 0; q + n < end && n + 1 < dstlen &&
			    ((q[n] >= '0' && q[n] <= '9') || (q[n] >= 'a' && q[n] <= 'z') ||
			    (q[n] >= 'A' && q[n] <= 'Z') || q[n] == '-' || q[n] == '_'); n++)
				;
			memcpy(dst, q, n);
			dst[n] = '\0';
			return;
		}
	}
}

/* ---- the listing ----------------------------------------------------------- */

/* Fill m's header fields from the first octets of a message. */
static void
row_headers(const char *head, size_t n, struct mail_row *m)
{
	const char *end = memmem(head, n, "\r\n\r\n", 4);
	struct mime_part *root;

	if (end != NULL)
		n = (size_t)(end - head) + 4;
	if ((root = mime_parse(head, n)) == NULL)
		return;
	if (mime_header_shown(root, "Date", m->date, sizeof(m->date)) == -1)
		m->date[0] = '\0';
	if (mime_header_shown(root, "From", m->from, sizeof(m->from)) == -1)
		m->from[0] = '\0';
	if (mime_header(root, "Subject", m->subject, sizeof(m->subject)) == -1)
		m->subject[0] = '\0';
	mime_free(&root);
}

int
mail_rows(struct webreq *r, void (*row)(void *arg, const struct mail_row *m), void *arg)
{
	struct store_msg *msgs = NULL;
	struct mail_row m;
	char *head;
	size_t n = 0, i, got;

	if (store_mailbox_list(r->w->store, r->account, &msgs, &n) == -1)
		return -1;
	if ((head = malloc(MAIL_HEAD_READ)) == NULL) {
		free(msgs);
		return -1;
	}
	for (i = n; i-- > 0;) {
		memset(&m, 0, sizeof(m));
		m.id = msgs[i].entry_id;
		m.size = msgs[i].size;
		m.arrived = msgs[i].arrived;
		if (store_msg_read(r->w->store, m.id, 0, head, MAIL_HEAD_READ, &got) == 0)
			row_headers(head, got, &m);
		row(arg, &m);
	}
	store_read_done(r->w->store);
	free(head);
	free(msgs);
	return 0;
}

static void
mailbox_row(void *arg, const struct mail_row *m)
{
	struct buf *b = arg;
	char when[64];

	html_time(when, sizeof(when), m->arrived);
	buf_printf(b, "<tr><td class=\"num\">%lld</td><td>", (long long)m->id);
	markup_html_str(b, m->date[0] ? m->date : when);
	buf_puts(b, "</td><td>");
	markup_html_str(b, m->from);
	buf_printf(b, "</td><td><a href=\"/mailbox/%lld\">", (long long)m->id);
	markup_html_str(b, m->subject[0] ? m->subject : "(no subject)");
	buf_printf(b, "</a></td><td class=\"num\">%lld</td></tr>\n", (long long)m->size);
}

void
page_mailbox(struct webreq *r)
{
	struct buf b;

	buf_init(&b, WEBD_PAGE_MAX);
	html_begin(&b, r, "Mailbox");
	buf_puts(&b, "<table class=\"list\" id=\"mailbox\">\n<thead><tr><th>#</th><th>Date</th>"
	    "<th>From</th><th>Subject</th><th>Size</th></tr></thead>\n<tbody>\n");
	if (mail_rows(r, mailbox_row, &b) == -1) {
		buf_free(&b);
		log_warnx("event=store-failed op=mailbox error=\"%s\"", store_errmsg(r->w->store));
		webd_error(r, 503, "The mailbox cannot be read now; try again later");
		return;
	}
	buf_puts(&b, "</tbody>\n</table>\n");
	html_end(&b);
	webd_send(r, 200, "text/html; charset=utf-8", &b);
	buf_free(&b);
}

/* ---- one message ----------------------------------------------------------- */

/* Append text in charset as escaped UTF-8 (iconv; what it cannot convert is
 * escaped as it is, invalid octets becoming U+FFFD). */
static void
put_text(struct buf *b, const char *text, size_t len, const char *charset)
{
	struct buf u;
	char out[8192], *in = (char *)text, *op;	/* iconv's prototype wants char ** */
	size_t inleft = len, outleft;
	iconv_t cd;

	if (charset[0] == '\0' || strcasecmp(charset, "utf-8") == 0 ||
	    strcasecmp(charset, "us-ascii") == 0 ||
	    (cd = iconv_open("UTF-8//TRANSLIT", charset)) == (iconv_t)-1) {
		markup_html(b, text, len);
		return;
	}
	buf_init(&u, len * 4 + 16);	/* UNSAFE: UTF-8 is at most 4 octets per input octet here */
	while (inleft > 0) {
		op = out;
		outleft = sizeof(out);
		if (iconv(cd, &in, &inleft, &op, &outleft) == (size_t)-1 && errno != E2BIG) {
			buf_append(&u, out, (size_t)(op - out));
			buf_puts(&u, "\xef\xbf\xbd");
			in++;
			inleft--;
			continue;
		}
		buf_append(&u, out, (size_t)(op - out));
	}
	iconv_close(cd);
	markup_html(b, u.data ? u.data : "", u.len);
	buf_free(&u);
}

struct tree_walk {
	struct buf	*b;
	int64_t		 id;
	int		 n;		/* parts seen, pre-order, from 1 */
	int		 want;		/* the part asked for (page_part) */
	const struct mime_part *found;
};

static void
tree_html(struct tree_walk *tw, const struct mime_part *p)
{
	struct buf dec;

	for (; p != NULL; p = p->next) {
		tw->n++;
		if (tw->n == tw->want)
			tw->found = p;
		if (tw->b != NULL) {
			buf_init(&dec, WEBD_PAGE_MAX);
			mime_decode_body(p, &dec);
			buf_printf(tw->b, "<li><span class=\"type\">");
			markup_html_str(tw->b, p->type);
			buf_puts(tw->b, "</span> ");
			markup_html_str(tw->b, p->encoding);
			buf_printf(tw->b, ", %zu octets", dec.len);
			buf_free(&dec);
			if (p->filename[0] != '\0' || p->attachment) {
				buf_printf(tw->b, " <a class=\"attachment\" href=\"/mailbox/%lld/part/%d\">",
				    (long long)tw->id, tw->n);
				markup_html_str(tw->b, p->filename[0] ? p->filename : "attachment");
				buf_puts(tw->b, "</a>");
			}
			if (p->child != NULL)
				buf_puts(tw->b, "<ul>");
		}
		if (p->child != NULL)
			tree_html(tw, p->child);
		if (tw->b != NULL)
			buf_puts(tw->b, p->child != NULL ? "</ul></li>\n" : "</li>\n");
	}
}

static void
header_row(struct buf *b, const struct mime_part *root, const char *name, const char *id)
{
	char v[2048];

	if (mime_header_shown(root, name, v, sizeof(v)) == -1)
		return;
	buf_printf(b, "<tr><th>%s</th><td id=\"%s\">", name, id);
	markup_html_str(b, v);
	buf_puts(b, "</td></tr>\n");
}

static void
message_html(struct buf *b, struct webreq *r, const struct store_msg_info *info,
    const struct buf *msg, const struct mime_part *root)
{
	const struct mime_part *text = mime_text_part(root);
	struct tree_walk tw = { b, info->msg.entry_id, 0, -1, NULL };
	char session[STORE_SID_MAX + 1], when[64];
	struct buf dec;

	buf_puts(b, "<table class=\"headers\">\n");
	header_row(b, root, "From", "h-from");
	header_row(b, root, "To", "h-to");
	header_row(b, root, "Cc", "h-cc");
	header_row(b, root, "Date", "h-date");
	header_row(b, root, "Subject", "h-subject");
	header_row(b, root, "Message-ID", "h-msgid");
	html_time(when, sizeof(when), info->msg.arrived);
	buf_printf(b, "<tr><th>Arrived</th><td>%s, %lld octets</td></tr>\n", when,
	    (long long)info->msg.size);
	snprintf(session, sizeof(session), "%s", info->session);
	if (session[0] == '\0')
		mail_received_session(msg->data, msg->len, session, sizeof(session));
	if (session[0] != '\0') {
		buf_puts(b, "<tr><th>Delivered by</th><td><a id=\"session-link\" href=\"/sessions/");
		html_url_segment(b, session);
		buf_puts(b, "\">SMTP session ");
		markup_html_str(b, session);
		buf_puts(b, "</a></td></tr>\n");
	}
	buf_puts(b, "</table>\n");
	if (text != NULL) {
		buf_init(&dec, WEBD_PAGE_MAX);
		mime_decode_body(text, &dec);
		if (strcmp(text->type, "text/html") == 0)
			buf_puts(b, "<h2>HTML part (source, not rendered)</h2>\n"
			    "<pre class=\"body html-source\" id=\"body\">");
		else
			buf_puts(b, "<h2>Text</h2>\n<pre class=\"body\" id=\"body\">");
		put_text(b, dec.data ? dec.data : "", dec.len, text->charset);
		buf_puts(b, "</pre>\n");
		buf_free(&dec);
	}
	buf_puts(b, "<h2>MIME structure</h2>\n<ul class=\"tree\" id=\"tree\">\n");
	tree_html(&tw, root);
	buf_printf(b, "</ul>\n<h2>Raw message</h2>\n<p><a href=\"/mailbox/%lld/raw\" id=\"raw-link\">"
	    "The message as stored</a> (%zu octets).</p>\n<details><summary>Show it here</summary>"
	    "<pre class=\"raw\">", (long long)info->msg.entry_id, msg->len);
	markup_html(b, msg->data, msg->len < MAIL_RAW_SHOWN ? msg->len : MAIL_RAW_SHOWN);
	buf_puts(b, msg->len > MAIL_RAW_SHOWN ? "\n[...]</pre></details>\n" : "</pre></details>\n");
	(void)r;
}

void
page_message(struct webreq *r)
{
	struct store_msg_info info;
	struct mime_part *root;
	struct buf msg, b;
	char subject[1024];

	buf_init(&msg, WEBD_PAGE_MAX);
	if (mail_load(r, r->param[0], &info, &msg) == -1) {
		buf_free(&msg);
		return;
	}
	if ((root = mime_parse(msg.data, msg.len)) == NULL) {
		buf_free(&msg);
		webd_error(r, 503, "Out of memory");
		return;
	}
	if (mime_header(root, "Subject", subject, sizeof(subject)) == -1)
		snprintf(subject, sizeof(subject), "(no subject)");
	buf_init(&b, WEBD_PAGE_MAX);
	html_begin(&b, r, subject);
	message_html(&b, r, &info, &msg, root);
	html_end(&b);
	webd_send(r, 200, "text/html; charset=utf-8", &b);
	buf_free(&b);
	mime_free(&root);
	buf_free(&msg);
}

void
page_part(struct webreq *r)
{
	struct store_msg_info info;
	struct mime_part *root;
	struct tree_walk tw = { NULL, 0, 0, 0, NULL };
	struct buf msg, dec, disp;
	char name[512];
	uint32_t k;

	if (numparse_u32z(r->param[1], MIME_MAX_PARTS + 1, &k) != NUMPARSE_OK || k == 0) {
		webd_not_found(r);
		return;
	}
	buf_init(&msg, WEBD_PAGE_MAX);
	if (mail_load(r, r->param[0], &info, &msg) == -1) {
		buf_free(&msg);
		return;
	}
	root = mime_parse(msg.data, msg.len);
	tw.want = (int)k;
	tree_html(&tw, root);
	if (tw.found == NULL) {
		mime_free(&root);
		buf_free(&msg);
		webd_not_found(r);
		return;
	}
	buf_init(&dec, WEBD_PAGE_MAX);
	mime_decode_body(tw.found, &dec);
	snprintf(name, sizeof(name), "%s", tw.found->filename[0] ? tw.found->filename : "part");
	mime_safe_filename(name);
	buf_init(&disp, 4096);
	buf_puts(&disp, "attachment; filename=\"part.bin\"; filename*=UTF-8''");
	html_url_segment(&disp, name);
	webd_header(r, "Content-Disposition", disp.data);
	webd_send(r, 200, "application/octet-stream", &dec);
	buf_free(&disp);
	buf_free(&dec);
	mime_free(&root);
	buf_free(&msg);
}

void
page_raw(struct webreq *r)
{
	struct store_msg_info info;
	struct buf msg;

	buf_init(&msg, WEBD_PAGE_MAX);
	if (mail_load(r, r->param[0], &info, &msg) == -1) {
		buf_free(&msg);
		return;
	}
	webd_header(r, "Content-Disposition", "inline; filename=\"message.eml\"");
	webd_send(r, 200, "text/plain; charset=utf-8", &msg);
	buf_free(&msg);
}
