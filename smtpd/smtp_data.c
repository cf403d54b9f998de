/*
 * smtp_data.c - the DATA phase (RFC 5321 4.1.1.4, 4.5.2 transparency, 4.4
 * trace information; RFC 3848 "with ESMTPSA"; RFC 6531 UTF8SMTP).
 *
 * Owns: the end-of-data rule and the closing of SMTP smuggling (the
 * CVE-2023-51764 family). A session whose DATA command ended in CRLF (every
 * real client and MTA) is strict: only <CRLF>.<CRLF> ends the text, and a
 * bare LF or bare CR anywhere refuses the message after the end with 5.5.2.
 * A session whose DATA command ended in a bare LF is a person on nc: a line
 * holding only "." ends the text whatever its ending, and bare LFs are stored
 * as CRLF. Errors (size, bare LF/CR, long lines, loops) are latched and
 * answered once after the end (HACKING.md C6); nothing is stored on error or on
 * disconnect. The 250 is sent only after the writer thread has committed.
 * Never: ends the data early, resynchronises inside a message, or stores a
 * message the client was told was refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "esc.h"
#include "header.h"
#include "log.h"
#include "relay.h"
#include "smtp_session.h"

/* "with" keyword of the Received: header (RFC 3848, RFC 6531 4.3). */
static const char *
protocol_name(const struct smtp_session *s, const struct smtp_tx *tx)
{
	static const char *const names[2][2][2][2] = {
		/* [utf8][esmtp][tls][auth] */
		{ { { "SMTP", "SMTP" }, { "SMTP", "SMTP" } },
		  { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } } },
		{ { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
		  { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } } },
	};

	return names[tx->smtputf8][s->esmtp][s->tls][s->user[0] != '\0'];
}

/* Return-Path: and Received: in front of the message (RFC 5321 4.4). */
static int
add_trace(struct smtp_session *s, struct smtp_tx *tx)
{
	const struct config *cfg = s->srv->cfg;
	struct buf h;
	char date[HEADER_DATE_MAX], peer[80], tls[128] = "";
	int rc;

	header_date(time(NULL), date, sizeof(date));
	if (strchr(s->peer, ':') != NULL)
		snprintf(peer, sizeof(peer), "[IPv6:%s]", s->peer);
	else
		snprintf(peer, sizeof(peer), "[%s]", s->peer);
	if (s->tls) {
		const char *info = s->core.conn ? conn_tls_info(s->core.conn) : "";
		const char *colon = strchr(info, ':');
		if (colon != NULL)
			snprintf(tls, sizeof(tls), "version=%.*s cipher=%s", (int)(colon - info), info,
			    colon + 1);
		else
			snprintf(tls, sizeof(tls), "version=%s", info);
	}
	buf_init(&h, 4096);
	/* RFC 5321 4.4: the final delivery adds Return-Path:. A message for
	 * remote recipients too is stored once with it, for the local copy;
	 * the relay leaves it out (header_return_path_len()). */
	(void)buf_printf(&h, "Return-Path: <%s>\r\n", tx->from_str);
	if (valid_domain(s->helo))
		(void)buf_printf(&h, "Received: from %s (%s)\r\n", s->helo, peer);
	else
		(void)buf_printf(&h, "Received: from %s (helo=%s)\r\n", peer, s->helo);
	(void)buf_printf(&h, "\tby %s (correio) with %s id %s\r\n", cfg->hostname,
	    protocol_name(s, tx), s->id);
	if (s->tls || s->user[0] != '\0')
		(void)buf_printf(&h, "\t(%s%s%s%s)\r\n", tls, s->tls && s->user[0] ? "; " : "",
		    s->user[0] ? "authenticated user=" : "", s->user);
	if (tx->nrcpt == 1)
		(void)buf_printf(&h, "\tfor <%s>; %s\r\n", tx->first_rcpt, date);
	else
		(void)buf_printf(&h, "\t; %s\r\n", date);
	rc = h.data != NULL ? store_delivery_body(tx->d, h.data, h.len) : -1;
	buf_free(&h);
	return rc;
}

/*
 * The header section has ended: at an empty line, at a line that cannot be a
 * header field (text typed after DATA without headers, as the textbook does),
 * or at the end of the text. Add what RFC 5322 3.6 requires and the text
 * lacks - From: (the envelope sender), Date: and Message-ID: - and, when a
 * body line came without the empty line before it, that empty line, so the
 * text is not read as headers. Text that has all three is left as it was.
 * (smtpd.8, "MESSAGE REPAIR".)
 */
static int
header_end(struct smtp_session *s, struct smtp_tx *tx, bool add_separator)
{
	const struct config *cfg = s->srv->cfg;
	struct buf h;
	char date[HEADER_DATE_MAX], stamp[16];
	time_t now = time(NULL);
	struct tm tm;
	int rc = 0;

	tx->in_header = false;
	if (tx->has_from && tx->has_date && tx->has_msgid && !add_separator)
		return 0;
	buf_init(&h, 1024);
	if (!tx->has_from)
		(void)buf_printf(&h, "From: <%s>\r\n", tx->from_str[0] ? tx->from_str :
		    "MAILER-DAEMON");
	if (!tx->has_date) {
		header_date(now, date, sizeof(date));
		(void)buf_printf(&h, "Date: %s\r\n", date);
	}
	if (!tx->has_msgid) {
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		(void)buf_printf(&h, "Message-ID: <%s.%s.%zu@%s>\r\n", stamp, s->id,
		    s->nmessages + 1, cfg->hostname);
	}
	if (add_separator)
		(void)buf_append(&h, "\r\n", 2);
	if (h.len > 0)
		rc = h.data != NULL ? store_delivery_body(tx->d, h.data, h.len) : -1;
	buf_free(&h);
	smtp_transcript_note(s, "added to the message:%s%s%s%s", tx->has_from ? "" : " From:",
	    tx->has_date ? "" : " Date:", tx->has_msgid ? "" : " Message-ID:",
	    add_separator ? " the empty line after the headers" : "");
	return rc;
}

void
smtp_data_begin(struct smtp_session *s, bool nc_mode, struct reply *r)
{
	struct smtp_tx *tx = s->tx;

	tx->nc_mode = nc_mode;
	tx->prev_crlf = true;	/* the DATA line's own ending counts */
	tx->in_header = true;
	if (add_trace(s, tx) == -1)
		tx->error = DATA_ERR_STORE;
	smtp_enter_state(s, SMTP_S_DATA);
	if (nc_mode)
		reply_set(r, 354, NULL, "Type the message; end it with a line holding only \".\"");
	else
		reply_set(r, 354, NULL, "Start mail input; end with <CRLF>.<CRLF>");
}

static void
latch(struct smtp_tx *tx, enum smtp_data_error e)
{
	if (tx->error == DATA_OK)
		tx->error = e;
}

static void
data_committed(struct smtp_job *job)
{
	struct smtp_session *s = job->arg;
	struct smtp_tx *tx = s->tx;
	struct reply r;

	if (job->result == 0) {
		log_info("session=%s from=<%s> to=%s size=%zu msgid=%lld status=%s", s->id,
		    tx->from_str, tx->rcpts.data ? tx->rcpts.data : "", store_delivery_size(job->d),
		    (long long)store_delivery_id(job->d), tx->nremote ? "queued" : "delivered");
		s->nmessages++;
		/* max_errors counts errors since the last delivered message (as
		 * Postfix's smtpd_hard_error_limit): an MTA that keeps its
		 * connection open for many messages, each with a few unknown
		 * recipients, is not cut off by the sum. */
		s->core.nerrors = 0;
		if (tx->nremote > 0)
			relay_kick();	/* the queue runner takes it from here */
		reply_set(&r, 250, ESC_OK, "Ok: queued as %lld", (long long)store_delivery_id(job->d));
	} else if (job->result == STORE_FULL) {
		log_warnx("session=%s from=<%s> to=%s size=%zu status=deferred reason=disk-full",
		    s->id, tx->from_str, tx->rcpts.data ? tx->rcpts.data : "",
		    store_delivery_size(job->d));
		reply_set(&r, 452, ESC_SYSTEM_FULL, "Insufficient system storage: the mail store's disk "
		    "is full; nothing was delivered, try again later");
	} else if (job->result == STORE_UNKNOWN) {
		/* The database went away during the COMMIT: stored or not,
		 * nobody knows. A 250 could lose it and a 451 could be a lie
		 * (the client would send a second copy of a stored message
		 * believing the first refused): say nothing and close, so the
		 * client treats it as not known either (RFC 5321 6.1: at
		 * worst a duplicate, never a loss). */
		log_warnx("session=%s from=<%s> to=%s size=%zu status=unknown"
		    " reason=commit-outcome-unknown", s->id, tx->from_str,
		    tx->rcpts.data ? tx->rcpts.data : "", store_delivery_size(job->d));
		smtp_job_free(job);
		smtp_tx_free(&s->tx);
		smtp_enter_state(s, SMTP_S_QUIT);
		if (s->core.conn != NULL)	/* NULL: the client went first */
			conn_close(s->core.conn, true);
		smtp_session_resume(s);		/* not busy any more; freed if gone */
		return;
	} else {
		log_warnx("session=%s from=<%s> to=%s size=%zu status=deferred reason=store",
		    s->id, tx->from_str, tx->rcpts.data ? tx->rcpts.data : "",
		    store_delivery_size(job->d));
		reply_set(&r, 451, ESC_SYSTEM_TEMP, "Could not store the message; nothing was delivered, "
		    "try again later");
	}
	smtp_job_free(job);
	smtp_tx_free(&s->tx);
	smtp_enter_state(s, SMTP_S_HELO);
	smtp_reply(s, &r);
	smtp_session_resume(s);
}

void
smtp_data_transcript_tail(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	size_t first, i, k;

	if (tx == NULL || tx->lines <= SMTP_TRANSCRIPT_DATA_LINES)
		return;
	first = tx->lines - SMTP_TRANSCRIPT_TAIL_LINES + 1;
	if (first <= SMTP_TRANSCRIPT_DATA_LINES)
		first = SMTP_TRANSCRIPT_DATA_LINES + 1;
	if (first > SMTP_TRANSCRIPT_DATA_LINES + 1)
		smtp_transcript_note(s, "... %zu line%s of message text not shown ...",
		    first - SMTP_TRANSCRIPT_DATA_LINES - 1,
		    first - SMTP_TRANSCRIPT_DATA_LINES - 1 == 1 ? "" : "s");
	for (i = first; i <= tx->lines; i++) {
		k = i % SMTP_TRANSCRIPT_TAIL_LINES;
		smtp_transcript_client(s, tx->tail[k], tx->tail_len[k], false);
		/* What a student types for the end that is not the end. */
		if (tx->tail_len[k] >= 2 && tx->tail[k][0] == '.' &&
		    strspn(tx->tail[k] + 1, " \t") == tx->tail_len[k] - 1)
			smtp_transcript_note(s, "line %zu is '.' with blanks after it: not the end "
			    "of the text (the '.' must be alone on its line)", i);
	}
}

static void
data_end(struct smtp_session *s)
{
	const struct limits *lim = &s->srv->cfg->limits;
	struct smtp_tx *tx = s->tx;
	struct smtp_job *job;
	struct reply r;
	static const char *const reasons[] = {
		[DATA_OK] = "ok", [DATA_ERR_SIZE] = "size", [DATA_ERR_BARE_LF] = "bare-lf",
		[DATA_ERR_BARE_CR] = "bare-cr", [DATA_ERR_LINE] = "line-too-long",
		[DATA_ERR_LOOP] = "loop", [DATA_ERR_STORE] = "memory-or-spool",
		[DATA_ERR_BUSY] = "busy", [DATA_ERR_FULL] = "disk-full",
	};

	smtp_data_transcript_tail(s);
	smtp_transcript_note(s, "end of message text: %zu octets in %zu lines", tx->size, tx->lines);
	if (tx->received > lim->max_received_headers)
		latch(tx, DATA_ERR_LOOP);
	if (tx->error == DATA_OK && tx->in_header && header_end(s, tx, false) == -1)
		latch(tx, DATA_ERR_STORE);
	switch (tx->error) {
	case DATA_OK:
		break;
	case DATA_ERR_SIZE:
		reply_set(&r, 552, ESC_TOO_BIG, "Message too big: the limit is %ld octets; nothing "
		    "was delivered", lim->max_message_size);
		break;
	case DATA_ERR_BARE_LF:
		reply_set(&r, 554, ESC_SYNTAX, "Message refused: bare LF in message text (lines must "
		    "end with CRLF, RFC 5321 2.3.8); nothing was delivered");
		break;
	case DATA_ERR_BARE_CR:
		reply_set(&r, 554, ESC_SYNTAX, "Message refused: bare CR in message text (RFC 5321 "
		    "2.3.8); nothing was delivered");
		break;
	case DATA_ERR_LINE:
		reply_set(&r, 500, ESC_SYNTAX, "Line too long: message lines are at most %ld octets "
		    "(RFC 5321 4.5.3.1.6); nothing was delivered", lim->smtp_data_line_max);
		break;
	case DATA_ERR_LOOP:
		reply_set(&r, 554, ESC_LOOP, "Mail loop: more than %ld Received: headers; nothing "
		    "was delivered", lim->max_received_headers);
		break;
	case DATA_ERR_BUSY:
		reply_set(&r, 452, ESC_SYSTEM_FULL, "Insufficient system storage: too much mail in progress; "
		    "nothing was delivered, try again in a few minutes");
		break;
	case DATA_ERR_FULL:
		reply_set(&r, 452, ESC_SYSTEM_FULL, "Insufficient system storage: the mail store's disk "
		    "is full; nothing was delivered, try again later");
		break;
	case DATA_ERR_STORE:
		reply_set(&r, 451, ESC_SYSTEM_TEMP, "Could not keep the message text (out of memory or "
		    "a storage error); nothing was delivered, try again later");
		break;
	}
	if (tx->error != DATA_OK) {
		log_info("session=%s from=<%s> to=%s size=%zu status=refused reason=%s", s->id,
		    tx->from_str, tx->rcpts.data ? tx->rcpts.data : "", tx->size, reasons[tx->error]);
		smtp_tx_free(&s->tx);
		smtp_enter_state(s, SMTP_S_HELO);
		smtp_reply(s, &r);
		return;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		smtp_tx_free(&s->tx);
		smtp_enter_state(s, SMTP_S_HELO);
		reply_set(&r, 451, ESC_SYSTEM_TEMP, "Out of memory; nothing was delivered, try again later");
		smtp_reply(s, &r);
		return;
	}
	job->kind = JOB_DELIVERY;
	job->d = tx->d;
	tx->d = NULL;
	snprintf(job->session_id, sizeof(job->session_id), "%s", s->id);
	job->done = data_committed;
	job->arg = s;
	smtp_enter_state(s, SMTP_S_COMMIT);
	smtp_session_pause(s);
	s->srv->submit(s->srv->writer, job);
}

void
smtp_data_line(struct smtp_session *s, enum line_status st, const char *line, size_t len,
    enum line_eol eol)
{
	struct smtp_tx *tx = s->tx;
	bool crlf = eol == EOL_CRLF;

	if (tx->tail_pending) {
		/* The over-long line before this one has ended by now. */
		tx->tail_pending = false;
		tx->prev_crlf = s->core.tail_eol == EOL_CRLF;
		if (!tx->prev_crlf && !tx->nc_mode)
			latch(tx, DATA_ERR_BARE_LF);
	}
	if (st == LINE_TOO_LONG) {
		latch(tx, DATA_ERR_LINE);
		tx->lines++;
		if (eol == EOL_NONE) {
			tx->tail_pending = true;	/* its tail is still coming */
			return;
		}
		tx->prev_crlf = crlf;
		if (!crlf && !tx->nc_mode)
			latch(tx, DATA_ERR_BARE_LF);
		return;
	}
	/* The end of the data (see the file comment). */
	if (len == 1 && line[0] == '.' && (tx->nc_mode || (crlf && tx->prev_crlf))) {
		data_end(s);
		return;
	}
	tx->lines++;
	if (tx->lines <= SMTP_TRANSCRIPT_DATA_LINES)
		smtp_transcript_client(s, line, len > SMTP_TRANSCRIPT_LINE_MAX ?
		    SMTP_TRANSCRIPT_LINE_MAX : len, false);
	else {
		size_t k = tx->lines % SMTP_TRANSCRIPT_TAIL_LINES, n = len >
		    SMTP_TRANSCRIPT_LINE_MAX ? SMTP_TRANSCRIPT_LINE_MAX : len;
		memcpy(tx->tail[k], line, n);
		tx->tail_len[k] = n;
	}
	if (!crlf && !tx->nc_mode)
		latch(tx, DATA_ERR_BARE_LF);
	if (memchr(line, '\r', len) != NULL)
		latch(tx, DATA_ERR_BARE_CR);
	tx->prev_crlf = crlf;
	/* Transparency (RFC 5321 4.5.2): drop one leading dot. */
	if (len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	if (tx->in_header) {
		if (len == 0 || !header_is_field_line(line, len, tx->header_lines == 0, false)) {
			if (tx->error == DATA_OK && header_end(s, tx, len > 0) == -1)
				latch(tx, DATA_ERR_STORE);
		} else {
			tx->header_lines++;
			if (header_is_named(line, len, "Received"))
				tx->received++;
			else if (header_is_named(line, len, "From"))
				tx->has_from = true;
			else if (header_is_named(line, len, "Date"))
				tx->has_date = true;
			else if (header_is_named(line, len, "Message-ID"))
				tx->has_msgid = true;
		}
	}
	/* The one place max_message_size is enforced for message text. */
	if (!smtp_data_size_ok(s, tx->size, len + 2)) {
		latch(tx, DATA_ERR_SIZE);
		tx->size += len + 2;
		return;
	}
	tx->size += len + 2;
	if (tx->error != DATA_OK)
		return;		/* keep reading, store nothing more */
	/* The one place SMTP_INFLIGHT_MAX is enforced. */
	if (s->srv->inflight_max > 0 && s->srv->inflight + len + 2 > s->srv->inflight_max) {
		latch(tx, DATA_ERR_BUSY);
		return;
	}
	errno = 0;
	if (store_delivery_body(tx->d, line, len) == -1 ||
	    store_delivery_body(tx->d, "\r\n", 2) == -1) {
		/* errno from the spool write: a full disk is not out of memory. */
		latch(tx, errno == ENOSPC || errno == EDQUOT ? DATA_ERR_FULL : DATA_ERR_STORE);
		return;
	}
	tx->charged += len + 2;
	s->srv->inflight += len + 2;
}
