/*
 * transcript.c - session transcripts as a networking course writes them:
 *   2026-11-25T10:00:00.123Z C: MAIL FROM:<ana@lab.test>
 *   2026-11-25T10:00:00.124Z S: 250 2.1.0 Ok
 *   2026-11-25T10:00:00.125Z    [TLS started]
 * (time stamps in ISO 8601 UTC with milliseconds; see transcript.h).
 *
 * Owns: the line format, masking of secrets (RFC 4954 4 AUTH data, RFC 1939 7
 * PASS/APOP) and escaping of control characters and invalid UTF-8 as \xNN, so a
 * transcript is always one readable line per protocol line. Memory is bounded:
 * past TRANSCRIPT_PENDING_MAX unflushed bytes, lines are dropped and one
 * "[transcript truncated]" note says so. The session enforces
 * transcript_max_lines (correio_limits.h) and writes batches to the store.
 * Never: records a password or SASL response, or grows without bound.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "transcript.h"
#include "utf8.h"

#define TRANSCRIPT_PENDING_MAX	(256 * 1024)	/* unflushed bytes kept per session */
#define TRANSCRIPT_LINE_MAX	2048		/* characters of one recorded line */
#define TRANSCRIPT_TS_LEN	24		/* "2026-11-25T10:00:00.123Z" */
#define TRANSCRIPT_TAG_MAX	3		/* "C: ", "S: " or "   " */
#define TRANSCRIPT_TRUNC_NOTE	"[transcript truncated]"
/* room always kept for the truncation note line */
#define TRANSCRIPT_RESERVE	(TRANSCRIPT_TS_LEN + 4 + sizeof(TRANSCRIPT_TRUNC_NOTE) + 1)

void
transcript_init(struct transcript *t, const char *session_id, bool enabled)
{
	t->enabled = enabled;
	snprintf(t->session_id, sizeof(t->session_id), "%s", session_id ? session_id : "");
	buf_init(&t->pending, TRANSCRIPT_PENDING_MAX);
}

void
transcript_free(struct transcript *t)
{
	buf_free(&t->pending);
	t->enabled = false;
}

void
transcript_flushed(struct transcript *t)
{
	buf_reset(&t->pending);
}

static void
transcript_timestamp(char ts[TRANSCRIPT_TS_LEN + 1])
{
	/* The date and time to the second change once a second: formatted
	 * then, per thread; a line adds only its milliseconds (a strftime and
	 * a snprintf per line were 4% of smtpd's loop under load). */
	static __thread char last[20];
	static __thread time_t last_sec = -1;
	struct timespec now;
	struct tm tm;
	unsigned ms;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec != last_sec) {
		gmtime_r(&now.tv_sec, &tm);
		if (strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
			memcpy(ts, "0000-00-00T00:00:00.000Z", TRANSCRIPT_TS_LEN + 1);
			return;
		}
		last_sec = now.tv_sec;
	}
	ms = (unsigned)(now.tv_nsec / 1000000L) % 1000u;
	memcpy(ts, last, 19);
	ts[19] = '.';
	ts[20] = (char)('0' + ms / 100);
	ts[21] = (char)('0' + ms / 10 % 10);
	ts[22] = (char)('0' + ms % 10);
	ts[23] = 'Z';
	ts[24] = '\0';
}

/*
 * Append "<ts> <tag><text>\n" to the pending lines, or, when that would pass
 * the bound, the truncation note once instead.
 */
static void
transcript_put(struct transcript *t, const char *tag, const char *text, size_t len)
{
	char ts[TRANSCRIPT_TS_LEN + 1];
	struct buf *b = &t->pending;
	size_t need = TRANSCRIPT_TS_LEN + 1 + strlen(tag) + len + 1;

	transcript_timestamp(ts);
	if (b->len + need + TRANSCRIPT_RESERVE > b->max) {
		static const char note[] = "    " TRANSCRIPT_TRUNC_NOTE "\n";

		if (b->len >= sizeof(note) - 1 &&
		    memcmp(b->data + b->len - (sizeof(note) - 1), note, sizeof(note) - 1) == 0)
			return;	/* already noted */
		(void)buf_puts(b, ts);
		(void)buf_puts(b, note);
		return;
	}
	/* One append: the line whole or not at all. */
	char line[TRANSCRIPT_TS_LEN + 1 + TRANSCRIPT_TAG_MAX + TRANSCRIPT_LINE_MAX + 16];
	size_t taglen = strlen(tag), n = 0;

	if (taglen > TRANSCRIPT_TAG_MAX || len > sizeof(line) - TRANSCRIPT_TS_LEN - 2 - taglen)
		return;		/* cannot happen: the callers cut their lines first */
	memcpy(line, ts, TRANSCRIPT_TS_LEN);
	n = TRANSCRIPT_TS_LEN;
	line[n++] = ' ';
	memcpy(line + n, tag, taglen);
	n += taglen;
	memcpy(line + n, text, len);
	n += len;
	line[n++] = '\n';
	(void)buf_append(b, line, n);
}

/*
 * Is code point cp (from a multi-byte UTF-8 sequence) shown as it is? Not
 * the C1 controls, nor the line separators and bidirectional controls that
 * would make a transcript line display other than it reads.
 */
static bool
shown_as_is(uint32_t cp)
{
	return cp >= 0xa0 && cp != 0x2028 && cp != 0x2029 && !(cp >= 0x202a && cp <= 0x202e) &&
	    !(cp >= 0x2066 && cp <= 0x2069) && cp != 0xfeff;
}

/* Copy src to dst[*pos..dstlen-1): printable ASCII and well-formed UTF-8
 * (Você) as they are; control characters and bytes that are not valid
 * UTF-8 as \xNN (never half of one). Returns false when it stopped early. */
static bool
transcript_escape(const char *src, size_t n, char *dst, size_t dstlen, size_t *pos)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, k, p = *pos;
	uint32_t cp;
	bool ok = true;

	for (i = 0; i < n; i += k) {
		unsigned char c = (unsigned char)src[i];

		k = 1;
		if (c >= 0x20 && c < 0x7f) {
			/* printable ASCII, most of every line: the whole run at once */
			size_t run = 1, fits = p + 1 < dstlen ? dstlen - 1 - p : 0;

			while (i + run < n && (unsigned char)src[i + run] >= 0x20 &&
			    (unsigned char)src[i + run] < 0x7f)
				run++;
			if (run > fits) {
				memcpy(dst + p, src + i, fits);
				p += fits;
				ok = false;
				break;
			}
			memcpy(dst + p, src + i, run);
			p += run;
			k = run;
		} else if (c >= 0x80 && (k = utf8_seqlen((const unsigned char *)src + i, n - i,
		    &cp)) > 1 && shown_as_is(cp)) {
			if (p + k >= dstlen) {
				ok = false;
				break;
			}
			memcpy(dst + p, src + i, k);
			p += k;
		} else {
			if (k == 0)
				k = 1;
			if (p + 4 * k >= dstlen) {
				ok = false;
				break;
			}
			for (size_t j = 0; j < k; j++) {
				unsigned char b = (unsigned char)src[i + j];
				dst[p++] = '\\';
				dst[p++] = 'x';
				dst[p++] = hex[b >> 4];
				dst[p++] = hex[b & 0xf];
			}
		}
	}
	*pos = p;
	return ok;
}

/* Length of the first space-separated word of s[0..n). */
static size_t
transcript_word(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] != ' '; i++)
		;
	return i;
}

/* Escape the kept part of a line and the mask into dst[0..limit); false when cut. */
static bool
transcript_mask_into(const char *line, size_t keep, bool masked, char *dst,
    size_t limit, size_t *pos)
{
	const char *m = keep > 0 ? " ***" : "***";

	*pos = 0;
	if (!transcript_escape(line, keep, dst, limit, pos))
		return false;
	if (masked) {
		if (*pos + strlen(m) >= limit)
			return false;
		memcpy(dst + *pos, m, strlen(m));
		*pos += strlen(m);
	}
	return true;
}

void
transcript_mask(const char *line, size_t len, bool secret, char *dst, size_t dstlen)
{
	size_t pos = 0, keep = len, w;
	bool masked = false;

	if (dstlen == 0)
		return;
	if (secret) {
		/*
		 * With a verb: keep the verb (and for AUTH the mechanism, for
		 * APOP the user name), mask the rest. Without one, the line is a
		 * SASL continuation: all secret, except "*", the client
		 * cancelling the exchange (RFC 4954 4).
		 */
		w = transcript_word(line, len);
		if (w == 4 && (strncasecmp(line, "AUTH", 4) == 0 ||
		    strncasecmp(line, "APOP", 4) == 0)) {
			keep = w;
			while (keep < len && line[keep] == ' ')
				keep++;
			keep += transcript_word(line + keep, len - keep);
			masked = keep < len;
		} else if (w == 4 && strncasecmp(line, "PASS", 4) == 0) {
			keep = w;
			masked = keep < len;
		} else if (len == 1 && line[0] == '*') {
			keep = 1;
		} else {
			keep = 0;
			masked = true;
		}
	}
	if (!transcript_mask_into(line, keep, masked, dst, dstlen, &pos) && dstlen >= 4) {
		/* cut, and said so; masking came first, so a cut never shows a secret */
		(void)transcript_mask_into(line, keep, masked, dst, dstlen - 3, &pos);
		memcpy(dst + pos, "...", 3);
		pos += 3;
	} else if (pos >= dstlen)
		pos = dstlen - 1;
	dst[pos] = '\0';
}

void
transcript_client(struct transcript *t, const char *line, size_t len, bool secret)
{
	char out[TRANSCRIPT_LINE_MAX + 1];

	if (!t->enabled)
		return;
	transcript_mask(line, len, secret, out, sizeof(out));
	transcript_put(t, "C: ", out, strlen(out));
}

void
transcript_server(struct transcript *t, const char *text, size_t len)
{
	char out[TRANSCRIPT_LINE_MAX + 1];
	const char *p = text, *end = text + len, *nl;

	if (!t->enabled)
		return;
	for (;;) {
		size_t n, pos = 0;

		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (!transcript_escape(p, n, out, sizeof(out) - 3, &pos)) {
			memcpy(out + pos, "...", 3);
			pos += 3;
		}
		transcript_put(t, "S: ", out, pos);
		if (nl == NULL || nl + 1 == end)
			break;
		p = nl + 1;
	}
}

void
transcript_note(struct transcript *t, const char *fmt, ...)
{
	char msg[TRANSCRIPT_LINE_MAX], out[TRANSCRIPT_LINE_MAX + 8];
	size_t pos = 1;
	va_list ap;

	if (!t->enabled)
		return;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	out[0] = '[';
	(void)transcript_escape(msg, strlen(msg), out, sizeof(out) - 2, &pos);
	out[pos++] = ']';
	out[pos] = '\0';
	transcript_put(t, "   ", out, pos);
}
