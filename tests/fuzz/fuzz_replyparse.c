/*
 * fuzz_replyparse.c - the client-side parsers (common/replyparse.c) on
 * server output read through the line reader: SMTP replies (RFC 5321 4.2.1),
 * POP3 status lines and dot-terminated bodies (RFC 1939 3).
 *
 * Input: byte 0 picks the feed chunk size; the rest is what a server sent.
 * Oracles: a complete SMTP reply has a code 200..599 (or 1xx) whose digits
 * start the last line, holds at most SMTP_REPLY_MAX_LINES lines and an
 * enhanced code only of the form d.d.d; a POP3 status text points inside the
 * line; a body line never grows when un-stuffed.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz_common.h"
#include "linebuf.h"
#include "replyparse.h"

static void
check_esc(const char *esc)
{
	size_t n = strlen(esc), dots = 0;

	FUZZ_CHECK(n < 16);
	if (n == 0)
		return;
	FUZZ_CHECK(esc[0] == '2' || esc[0] == '4' || esc[0] == '5');
	for (size_t i = 0; i < n; i++) {
		if (esc[i] == '.')
			dots++;
		else
			FUZZ_CHECK(esc[i] >= '0' && esc[i] <= '9');
	}
	FUZZ_CHECK(dots == 2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linebuf lb;
	struct smtp_reply r;
	size_t chunk = 1 + fuzz_take(&data, &size);
	size_t pos = 0;
	bool in_body = false;
	char err[256];

	if (linebuf_init(&lb, 1000) == -1)
		return 0;
	smtp_reply_init(&r);
	for (;;) {
		char *line, rc[64];
		const char *text, *out;
		size_t len, outlen;
		enum line_eol eol;
		enum line_status st = linebuf_next(&lb, &line, &len, &eol);
		int ret;

		if (st == LINE_MORE) {
			size_t n = size - pos, room = linebuf_space(&lb);
			if (n == 0)
				break;
			if (n > chunk)
				n = chunk;
			if (n > room)
				n = room;
			pos += linebuf_feed(&lb, data + pos, n);
			continue;
		}
		if (st != LINE_OK)
			continue;

		/* SMTP */
		err[0] = '\0';
		ret = smtp_reply_feed(&r, line, len, err, sizeof(err));
		FUZZ_CHECK(ret >= -1 && ret <= 1);
		if (ret == -1)
			FUZZ_CHECK(err[0] != '\0');
		if (ret == 1) {
			FUZZ_CHECK(r.code >= 100 && r.code <= 599);
			FUZZ_CHECK(r.nlines >= 1 && r.nlines <= SMTP_REPLY_MAX_LINES);
			FUZZ_CHECK(len >= 3 && (line[0] - '0') * 100 + (line[1] - '0') * 10 +
			    (line[2] - '0') == r.code);
			FUZZ_CHECK(r.text.len == 0 || r.text.data[r.text.len] == '\0');
			check_esc(r.esc);
		}
		if (ret != 0) {
			smtp_reply_free(&r);
			smtp_reply_init(&r);
		}

		/* POP3 */
		rc[0] = '\0';
		text = NULL;
		ret = pop3_status_parse(line, &text, rc, sizeof(rc));
		FUZZ_CHECK(ret >= -1 && ret <= 1);
		if (ret >= 0) {
			FUZZ_CHECK(text >= line && text <= line + len);
			FUZZ_CHECK(strlen(rc) < sizeof(rc));
			in_body = ret == 1 && len % 2 == 0;
			continue;
		}
		if (in_body) {
			ret = pop3_body_line(line, len, &out, &outlen);
			FUZZ_CHECK(ret == 0 || ret == 1);
			if (ret == 1) {
				FUZZ_CHECK(len == 1 && line[0] == '.');
				in_body = false;
			} else {
				FUZZ_CHECK(outlen <= len && out >= line && out + outlen <= line + len);
				FUZZ_CHECK(outlen == len || (outlen + 1 == len && line[0] == '.'));
			}
		}
	}
	smtp_reply_free(&r);
	linebuf_free(&lb);
	return 0;
}
