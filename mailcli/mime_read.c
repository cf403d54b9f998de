/*
 * mime_read.c - the MIME reader behind show, extract, read and save (see
 * mime.h): RFC 2045 (headers, quoted-printable, base64), RFC 2046 (multipart
 * delimiters, message/rfc822, digest defaults), RFC 2047 (encoded words),
 * RFC 2183 (Content-Disposition), RFC 2231 (parameter continuations and
 * charsets).
 *
 * Owns: turning any byte string into a tree of parts that point into it,
 * decoding bodies as a stream (constant memory for extraction), safe file
 * names and writing attachments. Lenient by design: no boundary, a truncated
 * part, a bad charset or broken base64 degrade to "what we can" and never to
 * a crash; depth (MIME_MAX_DEPTH) and count (MIME_MAX_PARTS) are bounded, so
 * recursion is at most MIME_MAX_DEPTH frames whatever the input.
 * Never: writes outside the directory it is given, follows a symlink there,
 * or overwrites a file without force.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "header.h"
#include "mime.h"
#include "numparse.h"
#include "qp.h"
#include "rfc2047.h"

#define HDR_VALUE_MAX	(256 * 1024)	/* one unfolded header value we look at */
#define PARAMS_MAX	64		/* parameters kept per header */
#define DECODE_CHUNK	(64 * 1024)
#define MIME_BOUNDARY_MAX	100	/* RFC 2046 says 70; longer ones exist in the wild */

struct parse_ctx {
	size_t	 nparts;
};

typedef int (*decode_cb)(void *ctx, const char *p, size_t n);

/* ---- small helpers ---- */

static void
lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Copy n bytes of UTF-8 into dst (size len), cutting at a character boundary. */
static void
copy_utf8(char *dst, size_t len, const char *src, size_t n)
{
	if (len == 0)
		return;
	if (n >= len) {
		n = len - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);	/* UNSAFE: n <= len - 1, cut above */
	dst[n] = '\0';
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- headers ---- */

/*
 * End of the header block: returns the offset of the body and sets *hlen.
 * The block ends at the first empty line, which is not part of either, or
 * (as Python's email parser does) at the first line that cannot be a header
 * field, which starts the body: text typed after DATA with no blank line.
 */
static size_t
split_headers(const char *s, size_t n, size_t *hlen)
{
	size_t i = 0, e, len;
	const char *nl;

	while (i < n) {
		nl = memchr(s + i, '\n', n - i);
		e = nl != NULL ? (size_t)(nl - s) : n;
		len = e - i;
		if (len > 0 && s[e - 1] == '\r' && nl != NULL)
			len--;
		if (len == 0 && nl != NULL) {
			*hlen = i;
			return e + 1;
		}
		if (!header_is_field_line(s + i, len, i == 0, true)) {
			*hlen = i;
			return i;
		}
		if (nl == NULL)
			break;
		i = e + 1;
	}
	*hlen = n;	/* only headers (truncated message) */
	return n;
}

/* The first field called name in the header block, unfolded (CR/LF removed). */
static bool
hdr_find(const char *h, size_t hl, const char *name, struct buf *out)
{
	size_t nl = strlen(name), i = 0, e;
	const char *p;

	while (i < hl) {
		p = memchr(h + i, '\n', hl - i);
		e = p ? (size_t)(p - h) : hl;
		if (!is_wsp(h[i]) && e - i > nl && strncasecmp(h + i, name, nl) == 0) {
			size_t k = i + nl;
			while (k < e && is_wsp(h[k]))
				k++;
			if (k < e && h[k] == ':') {
				k++;
				/* this line and its continuation lines */
				for (;;) {
					size_t end = e;
					if (end > k && h[end - 1] == '\r')
						end--;
					if (buf_append(out, h + k, end - k) == -1)
						return true;
					if (e >= hl || e + 1 >= hl || !is_wsp(h[e + 1]))
						break;
					k = e + 1;
					p = memchr(h + k, '\n', hl - k);
					e = p ? (size_t)(p - h) : hl;
				}
				if (out->data == NULL)
					buf_append(out, "", 0);
				return true;
			}
		}
		i = e + 1;
	}
	return false;
}

/* Remove RFC 5322 comments outside quoted strings, in place. */
static void
strip_comments(char *s)
{
	char *r = s, *w = s;
	int depth = 0;
	bool quoted = false;

	for (; *r; r++) {
		if (*r == '\\' && r[1] != '\0' && (quoted || depth > 0)) {
			if (depth == 0) {
				*w++ = *r++;
				*w++ = *r;
			} else
				r++;
			continue;
		}
		if (depth == 0 && *r == '"')
			quoted = !quoted;
		if (!quoted) {
			if (*r == '(') {
				depth++;
				continue;
			}
			if (*r == ')' && depth > 0) {
				depth--;
				continue;
			}
		}
		if (depth == 0)
			*w++ = *r;
	}
	*w = '\0';
}

struct param {
	char	name[64];	/* lower case, without the *N* decorations */
	int	section;	/* -1 when none */
	bool	extended;	/* name* or name*N*: charset'lang'%XX */
	char	*value;		/* unquoted */
};

struct params {
	char	 value[128];	/* the main value, lower case ("text/plain", "attachment") */
	struct param v[PARAMS_MAX];
	size_t	 n;
	struct buf store;	/* holds the parameter values */
};

static char *
trim_inplace(char *s)
{
	char *e;

	while (is_wsp(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_wsp(e[-1]))
		*--e = '\0';
	return s;
}

/*
 * Parse "value; a=b; c*0*=...; d=\"q\"" (RFC 2045 5.1, RFC 2231). Lenient:
 * junk without '=' is skipped, quotes may be unbalanced, values may be bare.
 */
static void
params_parse(char *s, struct params *ps)
{
	char *p, *name, *val, *star;
	size_t off;

	memset(ps, 0, sizeof(*ps));
	buf_init(&ps->store, HDR_VALUE_MAX * 2);
	strip_comments(s);
	p = strchr(s, ';');
	if (p)
		*p++ = '\0';
	copy_utf8(ps->value, sizeof(ps->value), trim_inplace(s), strlen(trim_inplace(s)));
	lower(ps->value);
	/* offsets into store are kept until the end, then turned into pointers */
	while (p != NULL && *p != '\0' && ps->n < PARAMS_MAX) {
		while (is_wsp(*p) || *p == ';')
			p++;
		name = p;
		while (*p && *p != '=' && *p != ';')
			p++;
		if (*p != '=') {	/* junk */
			if (*p == ';')
				p++;
			continue;
		}
		*p++ = '\0';
		name = trim_inplace(name);
		while (is_wsp(*p))
			p++;
		off = ps->store.len;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				buf_append(&ps->store, p, 1);
			}
			if (*p == '"')
				p++;
			while (*p && *p != ';')
				p++;
		} else {
			val = p;
			while (*p && *p != ';')
				p++;
			char save = *p;
			*p = '\0';
			val = trim_inplace(val);
			buf_append(&ps->store, val, strlen(val));
			*p = save;
		}
		if (*p == ';')
			p++;
		if (buf_append(&ps->store, "", 1) == -1)
			break;
		struct param *pa = &ps->v[ps->n];
		pa->section = -1;
		pa->extended = false;
		star = strchr(name, '*');
		if (star != NULL) {
			char *s2 = star + 1;
			*star = '\0';
			if (*s2 >= '0' && *s2 <= '9') {
				size_t nd = strspn(s2, "0123456789");
				uint64_t sec;
				/* RFC 2231 3: sections above 999 are not kept (and
				 * a long run of digits never wraps into a small one) */
				if (numparse_u64(s2, nd, 999, &sec) != NUMPARSE_OK)
					continue;
				pa->section = (int)sec;
				s2 += nd;
				if (*s2 == '*')
					pa->extended = true;
			} else
				pa->extended = true;
		}
		copy_utf8(pa->name, sizeof(pa->name), name, strlen(name));
		lower(pa->name);
		pa->value = (char *)(uintptr_t)off;	/* fixed up below */
		ps->n++;
	}
	for (size_t i = 0; i < ps->n; i++)
		ps->v[i].value = ps->store.data + (size_t)(uintptr_t)ps->v[i].value;
}

static void
params_free(struct params *ps)
{
	buf_free(&ps->store);
}

static void
percent_decode(const char *s, struct buf *out)
{
	int h, l;

	for (; *s; s++) {
		if (*s == '%' && (h = qp_hexval((unsigned char)s[1])) >= 0 &&
		    (l = qp_hexval((unsigned char)s[2])) >= 0) {
			char c = (char)(h << 4 | l);
			buf_append(out, &c, 1);
			s += 2;
		} else
			buf_append(out, s, 1);
	}
}

/*
 * The decoded UTF-8 value of parameter name: RFC 2231 (name*, name*0..N with
 * charset) first, then the plain one with RFC 2047 words decoded. Returns
 * true when present.
 */
static bool
params_get(const struct params *ps, const char *name, struct buf *out)
{
	struct buf raw;
	char charset[64] = "";
	const struct param *sec;
	size_t i;
	int s;
	bool found = false, any = false;

	buf_init(&raw, HDR_VALUE_MAX);
	buf_append(&raw, "", 0);
	/* name*= (one extended value) */
	for (i = 0; i < ps->n && !found; i++)
		if (strcmp(ps->v[i].name, name) == 0 && ps->v[i].extended && ps->v[i].section == -1) {
			const char *v = ps->v[i].value, *q1 = strchr(v, '\''), *q2;
			if (q1 && (q2 = strchr(q1 + 1, '\'')) != NULL) {
				copy_utf8(charset, sizeof(charset), v, (size_t)(q1 - v));
				v = q2 + 1;
			}
			percent_decode(v, &raw);
			found = true;
		}
	/* name*0, name*1, ... in order (they may come in any order, RFC 2231 3) */
	for (s = 0; !found || any; s++) {
		sec = NULL;
		for (i = 0; i < ps->n; i++)
			if (ps->v[i].section == s && strcmp(ps->v[i].name, name) == 0) {
				sec = &ps->v[i];
				break;
			}
		if (sec == NULL)
			break;
		const char *v = sec->value;
		if (s == 0 && sec->extended) {
			const char *q1 = strchr(v, '\''), *q2;
			if (q1 && (q2 = strchr(q1 + 1, '\'')) != NULL) {
				copy_utf8(charset, sizeof(charset), v, (size_t)(q1 - v));
				v = q2 + 1;
			}
		}
		if (sec->extended)
			percent_decode(v, &raw);
		else
			buf_puts(&raw, v);
		any = true;
		found = true;
	}
	if (found) {
		rfc2047_to_utf8(charset, raw.data, raw.len, out);
		buf_free(&raw);
		return true;
	}
	buf_free(&raw);
	for (i = 0; i < ps->n; i++)
		if (strcmp(ps->v[i].name, name) == 0 && ps->v[i].section == -1 && !ps->v[i].extended) {
			rfc2047_decode(ps->v[i].value, strlen(ps->v[i].value), out);
			return true;
		}
	return false;
}

/* Parse a structured header of the part into ps; false when absent. */
static bool
hdr_params(const char *h, size_t hl, const char *name, struct params *ps)
{
	struct buf v;
	bool found;

	buf_init(&v, HDR_VALUE_MAX);
	found = hdr_find(h, hl, name, &v);
	params_parse(found && v.data ? v.data : (char[]){ "" }, ps);
	buf_free(&v);
	return found;
}

/* ---- the tree ---- */

static struct mime_part *
part_new(struct parse_ctx *ctx, int depth)
{
	struct mime_part *p;

	if (ctx->nparts >= MIME_MAX_PARTS)
		return NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	ctx->nparts++;
	p->depth = depth;
	return p;
}

/* Does a delimiter line for boundary b start at s[i]? Sets *close and *next (after the line). */
static bool
is_delimiter(const char *s, size_t n, size_t i, const char *b, size_t bl, bool *close, size_t *next)
{
	size_t k;

	if (i > 0 && s[i - 1] != '\n')
		return false;
	if (n - i < 2 + bl || s[i] != '-' || s[i + 1] != '-' || memcmp(s + i + 2, b, bl) != 0)
		return false;
	k = i + 2 + bl;
	*close = false;
	if (k + 2 <= n && s[k] == '-' && s[k + 1] == '-') {
		*close = true;
		k += 2;
	}
	while (k < n && (is_wsp(s[k]) || s[k] == '\r'))
		k++;	/* transport padding (RFC 2046 5.1.1) */
	if (k < n && s[k] != '\n')
		return false;
	*next = k < n ? k + 1 : n;
	return true;
}

/* Find the next delimiter at or after from; returns its offset or n. */
static size_t
find_delimiter(const char *s, size_t n, size_t from, const char *b, size_t bl, bool *close,
    size_t *next)
{
	char pat[128];	/* "--" and a boundary of at most MIME_BOUNDARY_MAX */
	const char *hit;
	size_t pl;

	pl = (size_t)snprintf(pat, sizeof(pat), "--%.*s", (int)bl, b);
	while (from < n) {
		hit = memmem(s + from, n - from, pat, pl);
		if (hit == NULL)
			return n;
		if (is_delimiter(s, n, (size_t)(hit - s), b, bl, close, next))
			return (size_t)(hit - s);
		from = (size_t)(hit - s) + 1;
	}
	return n;
}

static void parse_entity(struct parse_ctx *ctx, struct mime_part *p, const char *s, size_t n,
    const char *default_type);

static void
parse_multipart(struct parse_ctx *ctx, struct mime_part *p, const char *boundary)
{
	const char *s = p->body;
	size_t n = p->bodylen, bl = strlen(boundary), pos, start, end, next;
	struct mime_part **tail = &p->child, *c;
	bool close = false;
	const char *deftype = strcmp(p->type, "multipart/digest") == 0 ? "message/rfc822" : "text/plain";

	if (bl == 0 || bl > MIME_BOUNDARY_MAX)
		return;
	pos = find_delimiter(s, n, 0, boundary, bl, &close, &next);
	while (pos < n && !close) {
		start = next;
		pos = find_delimiter(s, n, start, boundary, bl, &close, &next);
		end = pos;
		/* the line break before the delimiter belongs to it */
		if (pos < n) {
			if (end > start && s[end - 1] == '\n')
				end--;
			if (end > start && s[end - 1] == '\r')
				end--;
		}
		if ((c = part_new(ctx, p->depth + 1)) == NULL)
			return;
		parse_entity(ctx, c, s + start, end - start, deftype);
		*tail = c;
		tail = &c->next;
	}
}

/* A multipart without a boundary parameter: take the first "--x" line, if any. */
static bool
guess_boundary(const char *s, size_t n, char *b, size_t blen)
{
	size_t i = 0, e;
	const char *nl;

	while (i < n && (s[i] == '\r' || s[i] == '\n'))
		i++;
	for (; i < n; i = e + 1) {
		nl = memchr(s + i, '\n', n - i);
		e = nl ? (size_t)(nl - s) : n;
		if (e - i > 2 && s[i] == '-' && s[i + 1] == '-') {
			size_t end = e;
			while (end > i && (s[end - 1] == '\r' || is_wsp(s[end - 1])))
				end--;
			if (end - i - 2 == 0 || end - i - 2 >= blen || end - i - 2 > 70)
				return false;
			memcpy(b, s + i + 2, end - i - 2);	/* UNSAFE: < blen, checked above */
			b[end - i - 2] = '\0';
			return true;
		}
		if (i > 4096)
			break;
	}
	return false;
}

static void
parse_entity(struct parse_ctx *ctx, struct mime_part *p, const char *s, size_t n,
    const char *default_type)
{
	struct params ct, cd;
	struct buf v;
	char boundary[128] = "";
	size_t hl, off;
	bool has_ct, has_cd;

	off = split_headers(s, n, &hl);
	p->headers = s;
	p->headerslen = hl;
	p->body = s + off;
	p->bodylen = n - off;

	has_ct = hdr_params(s, hl, "Content-Type", &ct);
	if (has_ct && strchr(ct.value, '/') != NULL && ct.value[0] != '/' &&
	    ct.value[strlen(ct.value) - 1] != '/')
		snprintf(p->type, sizeof(p->type), "%s", ct.value);
	else	/* RFC 2045 5.2: absent or invalid means text/plain */
		snprintf(p->type, sizeof(p->type), "%s", default_type);
	buf_init(&v, HDR_VALUE_MAX);
	if (params_get(&ct, "charset", &v) && v.data != NULL) {
		copy_utf8(p->charset, sizeof(p->charset), trim_inplace(v.data), strlen(trim_inplace(v.data)));
		lower(p->charset);
	}
	buf_reset(&v);
	if (params_get(&ct, "boundary", &v) && v.data != NULL)
		snprintf(boundary, sizeof(boundary), "%s", v.data);
	buf_reset(&v);
	if (hdr_find(s, hl, "Content-Transfer-Encoding", &v) && v.data != NULL) {
		strip_comments(v.data);
		copy_utf8(p->encoding, sizeof(p->encoding), trim_inplace(v.data), strlen(trim_inplace(v.data)));
		lower(p->encoding);
	}
	if (p->encoding[0] == '\0')
		snprintf(p->encoding, sizeof(p->encoding), "7bit");

	has_cd = hdr_params(s, hl, "Content-Disposition", &cd);
	buf_reset(&v);
	if ((has_cd && params_get(&cd, "filename", &v)) || params_get(&ct, "name", &v)) {
		if (v.data != NULL)
			copy_utf8(p->filename, sizeof(p->filename), v.data, v.len);
	}
	buf_free(&v);
	if (strncmp(p->type, "multipart/", 10) != 0) {
		if (has_cd && strcmp(cd.value, "attachment") == 0)
			p->attachment = true;
		else if (p->filename[0] != '\0' && strncmp(p->type, "text/", 5) != 0)
			p->attachment = true;
	}
	params_free(&ct);
	params_free(&cd);

	if (p->depth + 1 >= MIME_MAX_DEPTH)
		return;	/* deeper levels stay unparsed leaves */
	if (strncmp(p->type, "multipart/", 10) == 0) {
		if (boundary[0] == '\0' && !guess_boundary(p->body, p->bodylen, boundary, sizeof(boundary)))
			return;
		parse_multipart(ctx, p, boundary);
	} else if ((strcmp(p->type, "message/rfc822") == 0 || strcmp(p->type, "message/global") == 0) &&
	    (strcmp(p->encoding, "7bit") == 0 || strcmp(p->encoding, "8bit") == 0 ||
	    strcmp(p->encoding, "binary") == 0)) {
		struct mime_part *c = part_new(ctx, p->depth + 1);
		if (c != NULL) {
			parse_entity(ctx, c, p->body, p->bodylen, "text/plain");
			p->child = c;
		}
	}
}

struct mime_part *
mime_parse(const char *msg, size_t len)
{
	struct parse_ctx ctx = { 0 };
	struct mime_part *root;

	if ((root = part_new(&ctx, 0)) == NULL)
		return NULL;
	/* an mbox "From " separator line before the headers */
	if (msg != NULL && len > 5 && memcmp(msg, "From ", 5) == 0) {
		const char *nl = memchr(msg, '\n', len);
		size_t skip = nl ? (size_t)(nl - msg) + 1 : len;
		msg += skip;
		len -= skip;
	}
	parse_entity(&ctx, root, msg ? msg : "", msg ? len : 0, "text/plain");
	return root;
}

/* Recursion follows children only (at most MIME_MAX_DEPTH levels); siblings loop. */
static void
free_list(struct mime_part *p)
{
	struct mime_part *next;

	for (; p != NULL; p = next) {
		next = p->next;
		free_list(p->child);
		free(p);
	}
}

void
mime_free(struct mime_part **rootp)
{
	if (rootp == NULL || *rootp == NULL)
		return;
	free_list(*rootp);
	*rootp = NULL;
}

/* ---- decoding ---- */

static const bool *
b64_alphabet(void)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static bool in_alphabet[256];	/* filled once (mailcli is single-threaded) */
	size_t k;

	if (!in_alphabet['A'])
		for (k = 0; alphabet[k] != '\0'; k++)
			in_alphabet[(unsigned char)alphabet[k]] = true;
	return in_alphabet;
}

/*
 * The size decode_stream's base64 branch produces, without decoding: the
 * same filter (alphabet kept, '=' only where it ends a group of 2 or 3), and
 * each group of k characters giving (k * 6) / 8 bytes.
 */
static uint64_t
b64_decoded_size(const char *s, size_t n)
{
	const bool *in_alphabet = b64_alphabet();
	uint64_t full = 0, size = 0;
	unsigned phase = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (in_alphabet[c]) {
			if (++phase == 4) {
				full++;
				phase = 0;
			}
		} else if (c == '=' && (phase == 2 || phase == 3)) {
			size += phase - 1;
			phase = 0;
		}
	}
	return size + full * 3 + (phase >= 2 ? phase - 1 : 0);
}

static int
decode_stream(const struct mime_part *p, decode_cb cb, void *ctx)
{
	const char *s = p->body;
	size_t n = p->bodylen, i, k;

	if (strcmp(p->encoding, "base64") == 0) {
		/* the decoder skips what is not base64 (stray characters, an '='
		 * that cannot be padding): b64_decoded_size's filter */
		struct b64_mime_decoder d;
		char *out;
		long r;
		int rc = 0;

		if ((out = malloc(DECODE_CHUNK)) == NULL)
			return -1;
		b64_mime_decode_init(&d);
		d.skip_junk = true;
		for (i = 0; i < n && rc == 0; i += k) {
			k = n - i < DECODE_CHUNK / 2 ? n - i : DECODE_CHUNK / 2;
			if ((r = b64_mime_decode(&d, s + i, k, out)) < 0)
				rc = -1;
			else if (r > 0)
				rc = cb(ctx, out, (size_t)r);
		}
		free(out);
		return rc;
	}
	if (strcmp(p->encoding, "quoted-printable") == 0) {
		struct buf out;
		size_t e;
		const char *nl;
		int rc = 0;

		buf_init(&out, SIZE_MAX / 2);
		for (i = 0; i < n && rc == 0; i = e) {
			/* whole lines, about DECODE_CHUNK at a time */
			e = i + DECODE_CHUNK < n ? i + DECODE_CHUNK : n;
			if (e < n) {
				nl = memchr(s + e, '\n', n - e);
				e = nl ? (size_t)(nl - s) + 1 : n;
			}
			buf_reset(&out);
			if (qp_decode(s + i, e - i, &out) == -1)
				rc = -1;
			else if (out.len > 0)
				rc = cb(ctx, out.data, out.len);
		}
		buf_free(&out);
		return rc;
	}
	/* 7bit, 8bit, binary, and unknown encodings: the bytes as they are */
	return n > 0 ? cb(ctx, s, n) : 0;
}

static int
buf_cb(void *ctx, const char *p, size_t n)
{
	return buf_append(ctx, p, n);
}

int
mime_decode_body(const struct mime_part *p, struct buf *out)
{
	if (buf_append(out, "", 0) == -1)
		return -1;
	return decode_stream(p, buf_cb, out);
}

static int
count_cb(void *ctx, const char *p, size_t n)
{
	(void)p;
	*(uint64_t *)ctx += n;
	return 0;
}

int
mime_header(const struct mime_part *p, const char *name, char *dst, size_t len)
{
	struct buf raw, dec;
	char *v;

	buf_init(&raw, HDR_VALUE_MAX);
	if (p == NULL || !hdr_find(p->headers, p->headerslen, name, &raw)) {
		buf_free(&raw);
		if (len > 0)
			dst[0] = '\0';
		return -1;
	}
	buf_init(&dec, HDR_VALUE_MAX * 2);
	v = raw.data ? trim_inplace(raw.data) : (char[]){ "" };
	rfc2047_decode(v, strlen(v), &dec);
	copy_utf8(dst, len, dec.data ? dec.data : "", dec.len);
	buf_free(&raw);
	buf_free(&dec);
	return 0;
}

/*
 * From: and Date: as a reader shows them. Text typed after DATA often has
 * neither, but the server recorded both: the envelope sender in Return-Path:
 * and the arrival date after the last ';' of the newest Received:.
 */
int
mime_header_shown(const struct mime_part *p, const char *name, char *dst, size_t len)
{
	char v[HDR_VALUE_MAX];
	const char *from, *semi;
	size_t n;

	if (mime_header(p, name, dst, len) == 0)
		return 0;
	if (strcasecmp(name, "From") == 0 && mime_header(p, "Return-Path", v, sizeof(v)) == 0) {
		from = v;
		n = strlen(v);
		if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
			from = v + 1;
			n -= 2;
		}
		if (n == 0)
			return -1;	/* the null sender: nothing to show */
		copy_utf8(dst, len, from, n);
		return 1;
	}
	if (strcasecmp(name, "Date") == 0 && mime_header(p, "Received", v, sizeof(v)) == 0 &&
	    (semi = strrchr(v, ';')) != NULL) {
		semi++;
		while (is_wsp(*semi))
			semi++;
		if (*semi == '\0')
			return -1;
		copy_utf8(dst, len, semi, strlen(semi));
		return 1;
	}
	return -1;
}

static const struct mime_part *
find_text(const struct mime_part *p, const char *type)
{
	const struct mime_part *r;

	for (; p != NULL; p = p->next) {
		if (strcmp(p->type, type) == 0 && !p->attachment)
			return p;
		if (p->child != NULL && (r = find_text(p->child, type)) != NULL)
			return r;
	}
	return NULL;
}

const struct mime_part *
mime_text_part(const struct mime_part *root)
{
	const struct mime_part *p;

	if ((p = find_text(root, "text/plain")) != NULL)
		return p;
	return find_text(root, "text/html");
}

/* ---- printing ---- */

void
mime_put_safe(FILE *out, const char *s, size_t n, bool lines)
{
	const unsigned char *u = (const unsigned char *)s, *end = u + n, *run = u;

	for (; u < end; u++) {
		bool c1 = *u == 0xc2 && u + 1 < end && u[1] >= 0x80 && u[1] <= 0x9f;

		if ((*u >= 0x20 && *u != 0x7f && !c1) || (lines && (*u == '\n' || *u == '\t')))
			continue;
		fwrite(run, 1, (size_t)(u - run), out);	/* the safe run before it */
		fputc('?', out);
		u += c1;
		run = u + 1;
	}
	fwrite(run, 1, (size_t)(end - run), out);
}

/* A string from a message, control characters shown as '?'. */
static void
put_safe(FILE *out, const char *s)
{
	mime_put_safe(out, s, strlen(s), false);
}

static void
print_part(FILE *out, const struct mime_part *p, const char *path)
{
	char sub[64], subject[256];
	const struct mime_part *c;
	uint64_t size = 0;
	int i;

	for (i = 0; i < p->depth; i++)
		fputs("  ", out);
	fprintf(out, "%s ", path);
	put_safe(out, p->type);
	if (p->charset[0] != '\0') {
		fputs("; charset=", out);
		put_safe(out, p->charset);
	}
	fputs(", ", out);
	put_safe(out, p->encoding);
	if (strncmp(p->type, "multipart/", 10) == 0)
		size = p->bodylen;
	else if (strcmp(p->encoding, "base64") == 0)
		size = b64_decoded_size(p->body, p->bodylen);	/* no need to decode */
	else
		(void)decode_stream(p, count_cb, &size);
	fprintf(out, ", %llu bytes", (unsigned long long)size);
	if (p->attachment)
		fputs(", attachment", out);
	if (p->filename[0] != '\0') {
		fputs(", \"", out);
		put_safe(out, p->filename);
		fputc('"', out);
	}
	if (p->child != NULL && strncmp(p->type, "message/", 8) == 0 &&
	    mime_header(p->child, "Subject", subject, sizeof(subject)) == 0) {
		fputs(", subject \"", out);
		put_safe(out, subject);
		fputc('"', out);
	}
	if (p->child == NULL && strncmp(p->type, "multipart/", 10) == 0)
		fputs(p->depth + 1 >= MIME_MAX_DEPTH ? "  (nested too deep: not parsed)" :
		    "  (no parts found)", out);
	fputc('\n', out);
	for (c = p->child, i = 1; c != NULL; c = c->next, i++) {
		if ((size_t)snprintf(sub, sizeof(sub), "%s.%d", path, i) >= sizeof(sub))
			snprintf(sub, sizeof(sub), "...%d", i);
		print_part(out, c, sub);
	}
}

void
mime_print_tree(FILE *out, const struct mime_part *root)
{
	if (root != NULL)
		print_part(out, root, "1");
}

/* ---- extraction ---- */

/*
 * Contract detail beyond mime.h: name must be a buffer of at least 16 bytes
 * (a name left empty, or made only of dots, becomes "attachment"); every
 * other change only shortens it or keeps its length.
 */
void
mime_safe_filename(char *name)
{
	char *base, *s, *d;
	size_t n, i, l;

	/* the last path component, whatever the separator */
	base = name;
	for (s = name; *s; s++)
		if (*s == '/' || *s == '\\')
			base = s + 1;
	if (base != name)
		memmove(name, base, strlen(base) + 1);
	/* control characters (C0, DEL, C1) and invalid UTF-8 become '_' */
	n = strlen(name);
	for (i = 0; i < n;) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f) {
			name[i++] = '_';
			continue;
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		l = 0;
		for (size_t k = 1; k <= 4 && i + k <= n; k++)
			if (rfc2047_is_utf8(name + i, k)) {
				l = k;
				break;
			}
		if (l == 0 || (c == 0xc2 && (unsigned char)name[i + 1] <= 0x9f)) {
			name[i++] = '_';
			continue;
		}
		i += l;
	}
	/* no leading dots or dashes (hidden files, "..", options), no trailing dots/spaces */
	for (s = name; *s == '.' || *s == '-' || *s == ' '; s++)
		*s = '_';
	n = strlen(name);
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '.'))
		name[--n] = '\0';
	/* at most 200 bytes, cut on a character boundary, keeping a short extension */
	if (n > 200) {
		char ext[16] = "";
		const char *dot = strrchr(name, '.');
		if (dot != NULL && strlen(dot) < sizeof(ext))
			snprintf(ext, sizeof(ext), "%s", dot);
		l = 200 - strlen(ext);
		while (l > 0 && ((unsigned char)name[l] & 0xc0) == 0x80)
			l--;
		d = name + l;
		memmove(d, ext, strlen(ext) + 1);	/* UNSAFE: l + strlen(ext) <= 200 < n */
	}
	if (name[0] == '\0' || strcmp(name, "_") == 0 || strcmp(name, "__") == 0)
		memcpy(name, "attachment", sizeof("attachment"));	/* UNSAFE: callers' names hold >= 256 */
}

static const char *
type_extension(const char *type)
{
	static const struct { const char *type, *ext; } exts[] = {
		{ "application/pdf", ".pdf" }, { "image/png", ".png" }, { "image/jpeg", ".jpg" },
		{ "image/gif", ".gif" }, { "text/plain", ".txt" }, { "text/html", ".html" },
		{ "application/zip", ".zip" }, { "message/rfc822", ".eml" },
		{ "text/calendar", ".ics" }, { "application/gzip", ".gz" },
	};
	size_t i;

	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strcmp(type, exts[i].type) == 0)
			return exts[i].ext;
	return ".bin";
}

struct save_state {
	int	 dirfd;
	bool	 force;
	FILE	*report;
	char	(*names)[512];	/* written in this run */
	size_t	 nnames;
	int	 written;
	bool	 failed;
	unsigned counter;
};

static int
fd_cb(void *ctx, const char *p, size_t n)
{
	int fd = *(int *)ctx;
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static bool
name_taken(const struct save_state *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->nnames; i++)
		if (strcmp(st->names[i], name) == 0)
			return true;
	return false;
}

static void
save_failed(struct save_state *st, const char *name, const char *why, const char *hint)
{
	if (st->report) {
		fputs("not written: ", st->report);
		put_safe(st->report, name);
		fprintf(st->report, ": %s%s\n", why, hint);
	}
	st->failed = true;
}

static void
save_part(struct save_state *st, const struct mime_part *p)
{
	char name[512], cand[512], stem[512];
	const char *dot;
	struct stat sb;
	unsigned k;
	int fd;

	st->counter++;
	if (p->filename[0] != '\0')
		snprintf(name, sizeof(name), "%s", p->filename);
	else
		snprintf(name, sizeof(name), "part-%u%s", st->counter, type_extension(p->type));
	mime_safe_filename(name);
	/* two attachments with the same name in one message: name-2.ext, ... */
	snprintf(cand, sizeof(cand), "%s", name);
	for (k = 2; name_taken(st, cand) && k < 10000; k++) {
		snprintf(stem, sizeof(stem), "%s", name);
		dot = strrchr(name, '.');
		if (dot != NULL && dot != name)
			stem[dot - name] = '\0';
		snprintf(cand, sizeof(cand), "%.200s-%u%s", stem, k, dot && dot != name ? dot : "");
	}
	/* O_NONBLOCK: with --force, a FIFO in the name's place would block the
	 * open forever; whatever is there must be a regular file */
	fd = openat(st->dirfd, cand, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
	    (st->force ? 0 : O_EXCL), 0666);
	if (fd == -1) {
		save_failed(st, cand, errno == ENXIO ? "not a regular file" : strerror(errno),
		    errno == EEXIST ? " (use --force to overwrite)" : "");
		return;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		save_failed(st, cand, "not a regular file", "");
		close(fd);
		return;
	}
	errno = 0;
	if (ftruncate(fd, 0) == -1 || decode_stream(p, fd_cb, &fd) == -1) {
		save_failed(st, cand, errno ? strerror(errno) : "cannot decode", "");
		close(fd);
		unlinkat(st->dirfd, cand, 0);
		return;
	}
	if (close(fd) == -1) {
		save_failed(st, cand, strerror(errno), "");
		unlinkat(st->dirfd, cand, 0);
		return;
	}
	snprintf(st->names[st->nnames++], sizeof(st->names[0]), "%s", cand);
	st->written++;
	if (st->report) {
		fputs("wrote ", st->report);
		put_safe(st->report, cand);
		if (fstatat(st->dirfd, cand, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			fprintf(st->report, " (%lld bytes, %s)", (long long)sb.st_size, p->type);
		fputc('\n', st->report);
	}
}

static void
save_walk(struct save_state *st, const struct mime_part *p)
{
	for (; p != NULL; p = p->next) {
		if (p->attachment && st->nnames < MIME_MAX_PARTS)
			save_part(st, p);
		else if (p->child != NULL)
			save_walk(st, p->child);
	}
}

int
mime_save_attachments(const struct mime_part *root, const char *dir, bool force, FILE *report)
{
	struct save_state st = { 0 };

	if ((st.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		if (report)
			fprintf(report, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	if ((st.names = calloc(MIME_MAX_PARTS, sizeof(*st.names))) == NULL) {
		close(st.dirfd);
		return -1;
	}
	st.force = force;
	st.report = report;
	save_walk(&st, root);
	free(st.names);
	close(st.dirfd);
	return st.failed ? -1 : st.written;
}
