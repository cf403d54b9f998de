/*
 * mime_write.c - writing the parts of a MIME message (see mime_write.h).
 *
 * Owns: header folding at 78 characters, encoded words in headers (RFC 2047
 * via rfc2047.c), parameter encoding (RFC 2231 3 continuations, 4 charset),
 * text bodies as 7bit or quoted-printable (RFC 2045 6.7), attachments as
 * base64 in CRLF lines of 76 streamed from a file descriptor, boundaries
 * (RFC 2046 5.1.1) and the Date (RFC 5322 3.3).
 * Never: emits a bare LF, a line longer than 998 octets, or a header value
 * containing CR/LF from its input (the caller has refused those).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "mime_write.h"
#include "qp.h"
#include "rfc2047.h"

#define HDR_MAX		(64 * 1024)	/* one folded header line */
#define WORD_LONG	900		/* an unbreakable word this long is encoded instead */

int
mime_out_write(struct mime_out *w, const void *p, size_t n)
{
	if (w->failed)
		return -1;
	w->count += n;
	if (w->sink != NULL && n > 0 && w->sink(w->ctx, p, n) == -1) {
		w->failed = true;
		return -1;
	}
	return 0;
}

int
mime_out_puts(struct mime_out *w, const char *s)
{
	return mime_out_write(w, s, strlen(s));
}

/* ---- header lines ---- */

int
mime_hdr_begin(struct mime_hdr *h, const char *name)
{
	buf_init(&h->b, HDR_MAX);
	if (buf_printf(&h->b, "%s:", name) == -1)
		return -1;
	h->namelen = h->b.len;
	h->col = h->b.len;
	h->ew_line = false;
	return 0;
}

int
mime_hdr_token(struct mime_hdr *h, const char *tok, size_t n)
{
	/* RFC 2047 2: a line holding an encoded word is at most 76 characters */
	bool ew = n >= 2 && tok[0] == '=' && tok[1] == '?';
	size_t limit = ew || h->ew_line ? 76 : MIME_LINE_MAX;
	bool fold;

	/* Fold before the space when the token would pass the limit and either
	 * something besides the name is on this line or folding makes it fit. */
	fold = n > 0 && h->col + 1 + n > limit && (h->col > h->namelen || 1 + n <= limit);
	if (fold) {
		if (buf_append(&h->b, "\r\n", 2) == -1)
			return -1;
		h->col = 0;
		h->ew_line = false;
	}
	if (ew)
		h->ew_line = true;
	if (buf_append(&h->b, " ", 1) == -1 || buf_append(&h->b, tok, n) == -1)
		return -1;
	h->col += 1 + n;
	return 0;
}

/* The words of p (split at its spaces, which become folding points), each
 * a token. 0 or -1. */
static int
hdr_words(struct mime_hdr *h, const char *p, size_t n)
{
	size_t s, e;

	for (s = 0; s <= n; s = e + 1) {
		const char *sp = memchr(p + s, ' ', n - s);

		e = sp ? (size_t)(sp - p) : n;
		if (mime_hdr_token(h, p + s, e - s) == -1)
			return -1;
	}
	return 0;
}

int
mime_hdr_encoded(struct mime_hdr *h, const char *text, size_t n)
{
	struct buf words;
	size_t first_max, s, e;
	int rc = -1;

	/* RFC 2047 2: a line holding encoded words is at most 76 characters. */
	first_max = h->col + 1 < 76 ? 76 - h->col - 1 : 0;
	if (first_max < 24)
		first_max = RFC2047_WORD_MAX;	/* it will start a new line */
	buf_init(&words, HDR_MAX);
	if (rfc2047_encode(text, n, first_max, &words) == -1)
		goto done;
	for (s = 0; s < words.len; s = e + 1) {
		const char *sp = memchr(words.data + s, ' ', words.len - s);
		e = sp ? (size_t)(sp - words.data) : words.len;
		if (mime_hdr_token(h, words.data + s, e - s) == -1)
			goto done;
	}
	rc = 0;
done:
	buf_free(&words);
	return rc;
}

int
mime_hdr_end(struct mime_hdr *h, struct mime_out *w)
{
	int rc = -1;

	if (buf_append(&h->b, "\r\n", 2) == 0 && mime_out_write(w, h->b.data, h->b.len) == 0)
		rc = 0;
	mime_hdr_free(h);
	return rc;
}

void
mime_hdr_free(struct mime_hdr *h)
{
	buf_free(&h->b);
}

int
mime_write_unstructured(struct mime_out *w, const char *name, const char *utf8)
{
	struct mime_hdr h;
	size_t n = strlen(utf8), s, e;
	bool encode;

	encode = rfc2047_needs_encoding(utf8, n);
	/* an unbreakable run too long for one line: encoded words can split it */
	for (s = 0; !encode && s < n; s = e + 1) {
		const char *sp = memchr(utf8 + s, ' ', n - s);
		e = sp ? (size_t)(sp - utf8) : n;
		if (e - s > WORD_LONG)
			encode = true;
	}
	if (mime_hdr_begin(&h, name) == -1)
		goto fail;
	if (encode) {
		if (mime_hdr_encoded(&h, utf8, n) == -1)
			goto fail;
	} else {
		if (hdr_words(&h, utf8, n) == -1)
			goto fail;
	}
	return mime_hdr_end(&h, w);
fail:
	mime_hdr_free(&h);
	return -1;
}

/* RFC 5322 3.2.3 atext */
static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A word a phrase may carry as it is: atext only, nothing like "=?". */
static bool
plain_atom(const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_atext((unsigned char)w[i]) || (w[i] == '=' && i + 1 < n && w[i + 1] == '?'))
			return false;
	return n > 0;
}

/*
 * A non-ASCII display name, readable the same by RFC 2047 readers and by
 * those (Python's email among them) that put a space between adjacent
 * encoded words of a phrase: plain atoms stay plain, and each run of other
 * words between them, spaces included, becomes exactly one encoded word, so
 * no two encoded words are ever adjacent. Returns 0, 1 when a run does not
 * fit in one word or the spacing is irregular (the caller then encodes the
 * whole name, RFC 2047 6.2 style), or -1.
 */
static int
hdr_phrase_mixed(struct mime_hdr *h, const char *name)
{
	size_t n = strlen(name), s, e, run = 0, runlen = 0, k;
	struct buf word;
	bool inrun = false;
	int rc = 1;

	if (n == 0 || name[0] == ' ' || name[n - 1] == ' ' || strstr(name, "  ") != NULL)
		return 1;
	buf_init(&word, HDR_MAX);
	/* first pass: check that every run fits one word */
	for (s = 0; s <= n; s = e + 1) {
		const char *sp = memchr(name + s, ' ', n - s);
		e = sp ? (size_t)(sp - name) : n;
		if (!plain_atom(name + s, e - s)) {
			if (!inrun)
				run = s;
			inrun = true;
			runlen = e - run;
		}
		if (inrun && (plain_atom(name + s, e - s) || e == n)) {
			buf_reset(&word);
			if (rfc2047_encode(name + run, runlen, RFC2047_WORD_MAX, &word) != 1)
				goto done;
			inrun = false;
		}
	}
	/* second pass: write */
	inrun = false;
	for (s = 0; s <= n; s = e + 1) {
		const char *sp = memchr(name + s, ' ', n - s);
		e = sp ? (size_t)(sp - name) : n;
		if (plain_atom(name + s, e - s)) {
			if (mime_hdr_token(h, name + s, e - s) == -1) {
				rc = -1;
				goto done;
			}
			continue;
		}
		/* the run: this word and the non-plain words after it */
		for (k = e; k < n;) {
			const char *sp2 = memchr(name + k + 1, ' ', n - k - 1);
			size_t e2 = sp2 ? (size_t)(sp2 - name) : n;
			if (plain_atom(name + k + 1, e2 - k - 1))
				break;
			k = e2;
		}
		buf_reset(&word);
		if (rfc2047_encode(name + s, k - s, RFC2047_WORD_MAX, &word) != 1 ||
		    mime_hdr_token(h, word.data, word.len) == -1) {
			rc = -1;
			goto done;
		}
		e = k;
		if (e >= n)
			break;
	}
	rc = 0;
done:
	buf_free(&word);
	return rc;
}

/* Add a display name as a phrase: atoms, one quoted string, or encoded words. */
static int
hdr_phrase(struct mime_hdr *h, const char *name)
{
	size_t n = strlen(name), i, s, e;
	bool atoms = n > 0 && name[0] != ' ' && name[n - 1] != ' ';
	struct buf q;
	int rc;

	if (rfc2047_needs_encoding(name, n)) {
		/* the mixed form writes nothing before it knows it fits (pass one) */
		if ((rc = hdr_phrase_mixed(h, name)) != 1)
			return rc;
		return mime_hdr_encoded(h, name, n);
	}
	for (i = 0; i < n && atoms; i++) {
		if (!is_atext((unsigned char)name[i]) && name[i] != ' ')
			atoms = false;
		if (name[i] == ' ' && i + 1 < n && name[i + 1] == ' ')
			atoms = false;
	}
	if (atoms) {
		for (s = 0; s <= n; s = e + 1) {
			const char *sp = memchr(name + s, ' ', n - s);
			e = sp ? (size_t)(sp - name) : n;
			if (mime_hdr_token(h, name + s, e - s) == -1)
				return -1;
		}
		return 0;
	}
	buf_init(&q, HDR_MAX);
	rc = buf_append(&q, "\"", 1);
	for (i = 0; i < n && rc == 0; i++) {
		if ((name[i] == '"' || name[i] == '\\') && buf_append(&q, "\\", 1) == -1)
			rc = -1;
		else if (buf_append(&q, name + i, 1) == -1)
			rc = -1;
	}
	if (rc == 0 && buf_append(&q, "\"", 1) == 0) {
		/* RFC 5322 3.2.4: FWS may fold a quoted-string at its spaces */
		rc = hdr_words(h, q.data, q.len);
	} else
		rc = -1;
	buf_free(&q);
	return rc;
}

int
mime_write_addresses(struct mime_out *w, const char *name, const struct compose_addr *v, size_t n)
{
	struct mime_hdr h;
	char tok[600];
	size_t i;
	int len;

	if (mime_hdr_begin(&h, name) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		const char *comma = i + 1 < n ? "," : "";
		if (v[i].display != NULL && v[i].display[0] != '\0') {
			if (hdr_phrase(&h, v[i].display) == -1)
				goto fail;
			len = snprintf(tok, sizeof(tok), "<%s>%s", v[i].addr, comma);
		} else
			len = snprintf(tok, sizeof(tok), "%s%s", v[i].addr, comma);
		if (len < 0 || (size_t)len >= sizeof(tok) || mime_hdr_token(&h, tok, (size_t)len) == -1)
			goto fail;
	}
	return mime_hdr_end(&h, w);
fail:
	mime_hdr_free(&h);
	return -1;
}

/* ---- parameters ---- */

/* RFC 2231 7 attribute-char: what an extended value may carry unencoded. */
static bool
is_attr_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL);
}

/* Printable ASCII that may stand in a quoted-string (with \ before " and \). */
static bool
quotable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static int
hdr_quoted_param(struct mime_hdr *h, const char *param, const char *value, const char *sep)
{
	struct buf q;
	const char *s;
	int rc = -1;

	buf_init(&q, HDR_MAX);
	if (buf_printf(&q, "%s=\"", param) == -1)
		goto done;
	for (s = value; *s; s++)
		if (((*s == '"' || *s == '\\') && buf_append(&q, "\\", 1) == -1) ||
		    buf_append(&q, s, 1) == -1)
			goto done;
	if (buf_printf(&q, "\"%s", sep) == -1)
		goto done;
	rc = mime_hdr_token(h, q.data, q.len);
done:
	buf_free(&q);
	return rc;
}

int
mime_hdr_param_2231(struct mime_hdr *h, const char *param, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t plen = strlen(param), vlen = strlen(value), i, seglen;
	struct buf seg;
	unsigned idx = 0;
	char e[3];
	int rc = -1;

	/* short printable ASCII: param="value" on one line */
	if (quotable(value) && plen + vlen + 4 + 1 <= MIME_LINE_MAX - 1)
		return hdr_quoted_param(h, param, value, "");
	/* RFC 2231 3+4: param*0*=utf-8''%..; param*1*=%..; each segment one line */
	buf_init(&seg, HDR_MAX);
	i = 0;
	do {
		buf_reset(&seg);
		if (buf_printf(&seg, "%s*%u*=%s", param, idx, idx == 0 ? "utf-8''" : "") == -1)
			goto done;
		seglen = seg.len;
		while (i < vlen) {
			unsigned char c = (unsigned char)value[i];
			size_t need = is_attr_char(c) ? 1 : 3;
			if (seg.len + need + 1 > MIME_LINE_MAX - 1 && seg.len > seglen)
				break;
			if (need == 1) {
				if (buf_append(&seg, value + i, 1) == -1)
					goto done;
			} else {
				e[0] = '%';
				e[1] = hex[c >> 4];
				e[2] = hex[c & 15];
				if (buf_append(&seg, e, 3) == -1)
					goto done;
			}
			i++;
		}
		if (i < vlen && buf_append(&seg, ";", 1) == -1)
			goto done;
		if (mime_hdr_token(h, seg.data, seg.len) == -1)
			goto done;
		idx++;
	} while (i < vlen);
	rc = 0;
done:
	buf_free(&seg);
	return rc;
}

int
mime_write_attachment_headers(struct mime_out *w, const char *type, const char *name)
{
	struct mime_hdr h;
	struct buf words;
	size_t n = strlen(name), s, e;
	char tok[160];
	int len;

	/* Content-Type with name= (RFC 2047 words inside the quotes when not
	 * ASCII: not standard, but what older clients read) */
	if (mime_hdr_begin(&h, "Content-Type") == -1)
		return -1;
	len = snprintf(tok, sizeof(tok), "%s;", type);
	if (len < 0 || (size_t)len >= sizeof(tok) || mime_hdr_token(&h, tok, (size_t)len) == -1)
		goto fail;
	/* plain when it fits the line; else encoded words, which can be folded */
	if (!rfc2047_needs_encoding(name, n) && h.col + 1 + n + 8 <= MIME_LINE_MAX) {
		if (hdr_quoted_param(&h, "name", name, "") == -1)
			goto fail;
	} else {
		buf_init(&words, HDR_MAX);
		if (rfc2047_encode(name, n, RFC2047_WORD_MAX - 6, &words) == -1) {
			buf_free(&words);
			goto fail;
		}
		for (s = 0; s < words.len; s = e + 1) {
			const char *sp = memchr(words.data + s, ' ', words.len - s);
			struct buf t;
			int rc;
			e = sp ? (size_t)(sp - words.data) : words.len;
			buf_init(&t, HDR_MAX);
			rc = buf_printf(&t, "%s%.*s%s", s == 0 ? "name=\"" : "", (int)(e - s),
			    words.data + s, e == words.len ? "\"" : "");
			if (rc == 0)
				rc = mime_hdr_token(&h, t.data, t.len);
			buf_free(&t);
			if (rc == -1) {
				buf_free(&words);
				goto fail;
			}
		}
		buf_free(&words);
	}
	if (mime_hdr_end(&h, w) == -1)
		return -1;

	if (mime_hdr_begin(&h, "Content-Disposition") == -1 ||
	    mime_hdr_token(&h, "attachment;", 11) == -1 ||
	    mime_hdr_param_2231(&h, "filename", name) == -1)
		goto fail;
	if (mime_hdr_end(&h, w) == -1)
		return -1;
	return mime_out_puts(w, "Content-Transfer-Encoding: base64\r\n");
fail:
	mime_hdr_free(&h);
	return -1;
}

/* ---- bodies ---- */

const char *
mime_text_encoding(const char *p, size_t n)
{
	size_t i, col = 0;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c == '\n') {
			if (col > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t'))
				return "quoted-printable";
			col = 0;
			continue;
		}
		if (c == '\r') {
			if (i + 1 < n && p[i + 1] == '\n') {
				if (col > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t'))
					return "quoted-printable";
				col = 0;
				i++;
				continue;
			}
			return "quoted-printable";
		}
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return "quoted-printable";
		if (++col > MIME_LINE_MAX)
			return "quoted-printable";
	}
	if (col > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		return "quoted-printable";
	return "7bit";
}

int
mime_write_text(struct mime_out *w, const char *p, size_t n, const char *enc, bool final)
{
	struct buf qp;
	size_t s, e;
	bool ends_nl = n > 0 && p[n - 1] == '\n';
	int rc;

	if (strcmp(enc, "quoted-printable") == 0) {
		buf_init(&qp, (size_t)-1 / 2);
		rc = qp_encode(p, n, &qp);
		if (rc == 0)
			rc = mime_out_write(w, qp.data, qp.len);
		buf_free(&qp);
		/* a soft break keeps "no final newline" exact in a single part */
		if (rc == 0 && final && !ends_nl && n > 0)
			rc = mime_out_puts(w, "=\r\n");
		return rc;
	}
	/* 7bit: the same text with CRLF breaks */
	for (s = 0; s < n; s = e + 1) {
		const char *nl = memchr(p + s, '\n', n - s);
		e = nl ? (size_t)(nl - p) : n;
		size_t end = e > s && p[e - 1] == '\r' ? e - 1 : e;
		if (mime_out_write(w, p + s, end - s) == -1)
			return -1;
		if (nl && mime_out_puts(w, "\r\n") == -1)
			return -1;
	}
	if (final && !ends_nl && n > 0)
		return mime_out_puts(w, "\r\n");
	return 0;
}

uint64_t
mime_base64_size(uint64_t size)
{
	uint64_t chars = (size + 2) / 3 * 4;

	return chars + (chars + 75) / 76 * 2;
}

int
mime_write_base64_fd(struct mime_out *w, int fd, uint64_t size, char *err, size_t errlen)
{
	/* static: 460 KiB kept off the stack; mailcli composes one message at a time */
	static char in[MIME_B64_CHUNK];
	static char out[MIME_B64_CHUNK / 3 * 4 + MIME_B64_CHUNK / 57 * 2 + 256];
	struct b64_mime_encoder enc;
	uint64_t total = 0;
	ssize_t r;
	size_t m;

	_Static_assert(sizeof(out) >= MIME_B64_CHUNK / 3 * 4 + MIME_B64_CHUNK / 57 * 2 + 90,
	    "base64 output chunk too small");
	if (w->sink == NULL) {
		w->count += mime_base64_size(size);
		return 0;
	}
	b64_mime_encode_init(&enc);
	for (;;) {
		r = read(fd, in, sizeof(in));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		total += (uint64_t)r;
		if (total > size)
			break;
		if (b64_mime_encoded_max((size_t)r) > sizeof(out)) {
			snprintf(err, errlen, "base64 buffer too small");
			return -1;
		}
		m = b64_mime_encode(&enc, in, (size_t)r, out);
		if (mime_out_write(w, out, m) == -1) {
			snprintf(err, errlen, "write failed");
			return -1;
		}
	}
	if (total != size) {
		snprintf(err, errlen, "the file changed while it was read (%llu bytes, expected %llu)",
		    (unsigned long long)total, (unsigned long long)size);
		return -1;
	}
	m = b64_mime_encode_end(&enc, out);
	if (mime_out_write(w, out, m) == -1) {
		snprintf(err, errlen, "write failed");
		return -1;
	}
	return 0;
}

/* ---- boundaries and dates ---- */

void
mime_boundary_make(char *dst, size_t len, const char *kind, uint64_t r)
{
	snprintf(dst, len, "=_correio_%s_%016llx", kind, (unsigned long long)r);
}

bool
mime_boundary_is_safe(const char *boundary, const char *text, size_t n)
{
	return n == 0 || text == NULL || memmem(text, n, boundary, strlen(boundary)) == NULL;
}

void
mime_date(time_t t, bool utc, char *dst, size_t len)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	long off;

	if (utc || localtime_r(&t, &tm) == NULL) {
		gmtime_r(&t, &tm);
		off = 0;
	} else
		off = tm.tm_gmtoff / 60;
	snprintf(dst, len, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
	    (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
}
