/*
 * pop3_stream.c - the long POP3 responses as resumable iterators (HACKING.md C14):
 * RETR and TOP (RFC 1939 7, 7 "TOP"), and the multi-line LIST and UIDL.
 *
 * Each call to pop3_stream_run() fills the output up to POP3_OUTBUF_HIGH,
 * reading the message from the store POP3_CHUNK octets at a time and
 * byte-stuffing lines that start with '.' (RFC 1939 3) through
 * reply_dot_write(); the session calls it again from the drained callback.
 * TOP counts body lines across chunk boundaries with a small state machine.
 * Never: holds more than one chunk of a message in memory, or writes past
 * the high watermark by more than one chunk (plus its stuffing).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pop3_session.h"

/* TOP header scanner states */
enum { TOP_MID = 0, TOP_BOL, TOP_BOL_CR, TOP_BODY };

/* Read the next chunk of the message into st->chunk. Returns 0 or a store code. */
static int
stream_fill(struct pop3_session *s, struct pop3_stream *st)
{
	const struct store_msg *m = &s->msgs[st->msg];
	size_t want = POP3_CHUNK, got = 0;
	int rc;

	if (m->size - st->offset < (int64_t)want)
		want = (size_t)(m->size - st->offset);
	st->chunk_len = st->chunk_pos = 0;
	if (want == 0)
		return 0;
	rc = store_msg_read(s->srv->store, m->entry_id, st->offset, st->chunk, want, &got);
	if (rc != 0)
		return rc;
	st->chunk_len = got;
	st->offset += (int64_t)got;
	return 0;
}

int
pop3_stream_start(struct pop3_session *s, enum pop3_stream_kind kind, size_t msg, long lines)
{
	struct pop3_stream *st;
	int rc;

	if (s->stream != NULL)
		pop3_stream_free(s);
	if ((st = malloc(sizeof(*st))) == NULL)
		return -1;
	memset(st, 0, offsetof(struct pop3_stream, chunk));
	st->kind = kind;
	st->msg = msg;
	st->top_lines = lines;
	st->top_hdr = TOP_BOL;
	reply_dot_init(&st->ds);
	if (kind == POP3_STREAM_RETR || kind == POP3_STREAM_TOP) {
		if ((rc = stream_fill(s, st)) != 0) {
			free(st);
			return rc;
		}
	}
	s->stream = st;
	return 0;
}

void
pop3_stream_free(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;

	if (st == NULL)
		return;
	/* A TOP, or a RETR cut short by a closed connection, leaves the store
	 * holding the message open (and a read transaction): let it go. */
	if ((st->kind == POP3_STREAM_RETR || st->kind == POP3_STREAM_TOP) &&
	    st->offset < s->msgs[st->msg].size)
		store_read_done(s->srv->store);
	free(st);
	s->stream = NULL;
}

/*
 * TOP: how many of the n octets at p to send. Everything up to the blank line
 * that ends the header goes, then `top_lines` lines of the body. Sets done
 * when the cut is inside (or at the start of) this piece.
 */
static size_t
top_cut(struct pop3_stream *st, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = p[i];

		switch (st->top_hdr) {
		case TOP_BODY:
			if (st->top_lines == 0) {
				st->done = true;
				return i;
			}
			if (c == '\n')
				st->top_lines--;
			break;
		case TOP_BOL:
			if (c == '\n')
				st->top_hdr = TOP_BODY;		/* blank line (bare LF) */
			else
				st->top_hdr = c == '\r' ? TOP_BOL_CR : TOP_MID;
			break;
		case TOP_BOL_CR:
			st->top_hdr = c == '\n' ? TOP_BODY : TOP_MID;
			break;
		default:
			if (c == '\n')
				st->top_hdr = TOP_BOL;
			break;
		}
	}
	if (st->top_hdr == TOP_BODY && st->top_lines == 0)
		st->done = true;
	return n;
}

/* One line of LIST or UIDL for the next undeleted message; false at the end. */
static bool
stream_list_line(struct pop3_session *s, struct pop3_stream *st, struct evbuffer *out)
{
	while (st->msg < s->nmsgs && pop3_msg_is_deleted(s, st->msg))
		st->msg++;
	if (st->msg >= s->nmsgs)
		return false;
	if ((st->kind == POP3_STREAM_LIST ?
	    evbuffer_add_printf(out, "%zu %lld\r\n", st->msg + 1, (long long)s->msgs[st->msg].size) :
	    evbuffer_add_printf(out, "%zu %s\r\n", st->msg + 1, s->msgs[st->msg].uidl)) < 0)
		st->ds.failed = true;	/* out of memory: the listing would have a hole */
	st->msg++;
	return true;
}

int
pop3_stream_run(struct pop3_session *s, struct evbuffer *out)
{
	struct pop3_stream *st = s->stream;
	size_t n;
	int rc;

	if (st == NULL)
		return 1;
	while (evbuffer_get_length(out) < POP3_OUTBUF_HIGH) {
		if (st->ds.failed)
			goto failed;
		if (st->kind == POP3_STREAM_LIST || st->kind == POP3_STREAM_UIDL) {
			if (!stream_list_line(s, st, out))
				goto end;
			continue;
		}
		if (st->chunk_pos == st->chunk_len) {
			if (st->done)
				goto end;
			if ((rc = stream_fill(s, st)) != 0) {
				log_warnx("session=%s event=store-failed op=read msg=%zu offset=%lld "
				    "error=\"%s\"", s->id, st->msg + 1, (long long)st->offset,
				    store_errmsg(s->srv->store));
				pop3_stream_free(s);
				return -1;
			}
			if (st->chunk_len == 0)
				goto end;
		}
		n = st->chunk_len - st->chunk_pos;
		if (st->kind == POP3_STREAM_TOP)
			n = top_cut(st, st->chunk + st->chunk_pos, n);
		reply_dot_write(out, &st->ds, st->chunk + st->chunk_pos, n);
		st->sent += (int64_t)n;
		s->bytes += (int64_t)n;
		st->chunk_pos = st->done ? st->chunk_len : st->chunk_pos + n;
	}
	if (st->ds.failed)
		goto failed;
	return 0;
end:
	if (st->ds.failed)
		goto failed;
	if (st->kind == POP3_STREAM_RETR || st->kind == POP3_STREAM_TOP) {
		if (reply_dot_end(out, &st->ds) == 0)
			goto failed;
		if (s->core.tr.enabled)
			transcript_note(&s->core.tr, "%s of message %zu: %lld octets sent",
			    st->kind == POP3_STREAM_RETR ? "RETR" : "TOP", st->msg + 1,
			    (long long)st->sent);
		if (st->kind == POP3_STREAM_RETR && st->sent != s->msgs[st->msg].size)
			log_warnx("session=%s event=short-message msg=%zu size=%lld sent=%lld",
			    s->id, st->msg + 1, (long long)s->msgs[st->msg].size,
			    (long long)st->sent);
	} else {
		if (evbuffer_add(out, ".\r\n", 3) == -1)
			goto failed;
		if (s->core.tr.enabled)
			transcript_note(&s->core.tr, "%zu listing lines sent", s->nmsgs);
	}
	pop3_stream_free(s);
	return 1;
failed:
	/* RFC 1939 has no way to take back a +OK: close without the end mark,
	 * so the client knows the response is incomplete. */
	log_warnx("session=%s event=stream-failed msg=%zu reason=memory", s->id, st->msg + 1);
	pop3_stream_free(s);
	return -1;
}
