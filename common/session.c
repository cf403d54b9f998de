/*
 * session.c - the protocol-independent half of a server session (session.h):
 * the line pump from the connection's input through the bounded line reader
 * to the protocol's handler, the idle timer that runs from the last complete
 * line (RFC 5321 4.5.3.2, RFC 1939 3 autologout), max_errors and the
 * transcript budget. Both smtpd and pop3d get every fix here once.
 * Never: touches a socket (conn.h does) or frees its owner.
 */
#include <string.h>

#include "log.h"
#include "session.h"

static void
idle_fired(void *arg)
{
	struct session *ss = arg;

	if (ss->conn != NULL)
		ss->proto->idle(ss->owner);
}

int
session_init(struct session *ss, struct conn *c, void *owner,
    const struct session_proto *proto, const struct session_params *p)
{
	memset(ss, 0, sizeof(*ss));
	ss->conn = c;
	ss->owner = owner;
	ss->proto = proto;
	ss->out_high = p->out_high;
	ss->idle_secs = p->idle_timeout;
	ss->max_errors = p->max_errors;
	ss->tr_max = p->transcript_max_lines;
	if (linebuf_init(&ss->lb, p->line_max) == -1)
		return -1;
	if ((ss->idle = conn_timer_new(c, idle_fired, ss)) == NULL) {
		linebuf_free(&ss->lb);
		return -1;
	}
	transcript_init(&ss->tr, p->id, p->transcripts);
	return 0;
}

void
session_join(struct session *ss, struct session_list *list)
{
	ss->list = list;
	ss->prev = NULL;
	ss->next = list->head;
	if (list->head != NULL)
		list->head->prev = ss;
	list->head = ss;
	list->served++;
}

static void
session_leave(struct session *ss)
{
	if (ss->list == NULL)
		return;
	if (ss->prev != NULL)
		ss->prev->next = ss->next;
	else
		ss->list->head = ss->next;
	if (ss->next != NULL)
		ss->next->prev = ss->prev;
	ss->list = NULL;
	ss->next = ss->prev = NULL;
}

void
session_list_each(struct session_list *list, void (*fn)(void *owner))
{
	struct session *ss, *next;

	for (ss = list->head; ss != NULL; ss = next) {
		next = ss->next;
		fn(ss->owner);
	}
}

void *
session_list_first(const struct session_list *list)
{
	return list->head != NULL ? list->head->owner : NULL;
}

void
session_free(struct session *ss)
{
	session_leave(ss);
	conn_timer_free(&ss->idle);
	linebuf_free(&ss->lb);
	transcript_free(&ss->tr);
}

void
session_touch(struct session *ss)
{
	if (ss->conn == NULL || ss->idle == NULL || ss->idle_secs <= 0)
		return;
	conn_timer_set(ss->idle, ss->idle_secs * 1000);
	conn_set_timeout(ss->conn, ss->idle_secs + SESSION_TIMEOUT_GRACE);
}

void
session_set_idle(struct session *ss, long seconds)
{
	ss->idle_secs = seconds;
	session_touch(ss);
}

void
session_gone(struct session *ss)
{
	ss->conn = NULL;
	if (ss->idle != NULL)
		conn_timer_stop(ss->idle);
}

bool
session_count_error(struct session *ss)
{
	return ++ss->nerrors >= ss->max_errors;
}

bool
session_tr_room(struct session *ss, size_t nlines)
{
	if (!ss->tr.enabled || ss->tr_lines >= ss->tr_max)
		return false;
	ss->tr_lines += (long)nlines;
	if (ss->tr_lines >= ss->tr_max) {
		transcript_note(&ss->tr, "transcript limit of %ld lines reached", ss->tr_max);
		return false;
	}
	return true;
}

/* Move input into the line reader: as much as it has room for. false when
 * there is nothing to move (no input, or a line waits to be taken). */
static bool
feed(struct session *ss, struct evbuffer *in)
{
	struct evbuffer_iovec vec;
	size_t n = linebuf_space(&ss->lb);

	if (n == 0 || evbuffer_get_length(in) == 0)
		return false;
	if (evbuffer_peek(in, (ev_ssize_t)n, NULL, &vec, 1) < 1)
		return false;
	if (vec.iov_len < n)
		n = vec.iov_len;
	/* The reader drops the tail of an over-long line without telling how
	 * it ended; SMTP DATA needs to know (a bare LF there must not let
	 * "." CRLF end the text). */
	if (ss->lb.discarding && ss->lb.start == ss->lb.len) {
		const char *p = vec.iov_base, *lf = memchr(p, '\n', n);
		if (lf != NULL)
			ss->tail_eol = (lf > p ? lf[-1] : ss->last_byte) == '\r' ? EOL_CRLF : EOL_LF;
	}
	n = linebuf_feed(&ss->lb, vec.iov_base, n);
	if (n > 0)
		ss->last_byte = ((const char *)vec.iov_base)[n - 1];
	evbuffer_drain(in, n);
	return true;
}

void
session_pump(struct session *ss)
{
	enum line_status st;
	enum line_eol eol;
	char *line;
	size_t len;
	bool lines = false;

	if (ss->pumping)
		return;		/* re-entered from a handler: the outer loop goes on */
	ss->pumping = true;
	while (ss->conn != NULL && ss->proto->ready(ss->owner)) {
		if (evbuffer_get_length(conn_output(ss->conn)) >= ss->out_high) {
			/* A client pipelining without reading its replies: the
			 * rest waits for session_drained(). */
			ss->stalled = true;
			break;
		}
		st = linebuf_next(&ss->lb, &line, &len, &eol);
		if (st == LINE_MORE) {
			if (!feed(ss, conn_input(ss->conn)))
				break;
			continue;
		}
		ss->nlines++;
		lines = true;
		ss->proto->line(ss->owner, st, line, len, eol);
	}
	ss->pumping = false;
	/* The idle timer runs from the last complete line, not the last byte:
	 * a client sending a byte now and then still times out. The lines of
	 * one pump arrived together: the timer is re-armed once for them, not
	 * per line (two event_add() calls per DATA line were 3% of the loop
	 * during 1 MB messages). */
	if (lines)
		session_touch(ss);
}

void
session_drained(struct session *ss)
{
	if (ss->stalled) {
		ss->stalled = false;
		session_pump(ss);
	}
}
