/*
 * mailaddr.c - RFC 5321 4.1.2 paths and addresses: Reverse-path / Forward-path
 * ("<>", "<a@b>", "<@r1,@r2:a@b>"), dot-atom and quoted-string local parts,
 * hostnames and address literals ([192.0.2.1], [IPv6:...]), and RFC 6531
 * UTF-8 (local parts and U-label domains) when the caller allows it.
 *
 * Owns: the syntax of an address; never decides policy (local or relay, who
 * may send as whom: smtpd does). Never writes past the fixed fields of
 * struct mailaddr; an address that does not fit is refused, not truncated.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailaddr.h"
#include "utf8.h"

static void
set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

/* RFC 5322 3.2.3 atext. */
static bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
is_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}


/*
 * Scan a local part starting at s. Returns its length in bytes (as written),
 * 0 with err on failure. *quoted_r and *utf8_r describe it.
 */
static size_t
scan_local(const char *s, bool allow_utf8, bool *quoted_r, bool *utf8_r,
    char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	*quoted_r = false;
	if (p[0] == '"') {
		*quoted_r = true;
		i = 1;
		for (;;) {
			unsigned char c = p[i];
			if (c == '"')
				break;
			if (c == '\\') {
				/* quoted-pairSMTP: %d92 %d32-126 */
				if (p[i + 1] < 32 || p[i + 1] > 126) {
					set_err(err, errlen, "bad escape in quoted local part");
					return 0;
				}
				i += 2;
				continue;
			}
			if (c >= 0x80) {
				if (!allow_utf8 || (k = utf8_seqlen(p + i, strlen((const char *)p + i), NULL)) == 0) {
					set_err(err, errlen, allow_utf8 ? "invalid UTF-8 in local part" :
					    "non-ASCII local part needs SMTPUTF8");
					return 0;
				}
				*utf8_r = true;
				i += k;
				continue;
			}
			/* qtextSMTP: %d32-33 / %d35-91 / %d93-126 */
			if (c < 32 || c > 126) {
				set_err(err, errlen, c == 0 ? "unterminated quoted local part" :
				    "control character in quoted local part");
				return 0;
			}
			i++;
		}
		return i + 1;
	}
	/* Dot-string = Atom *("." Atom) */
	bool need_atom = true;
	for (;;) {
		unsigned char c = p[i];
		if (c == '.') {
			if (need_atom) {
				set_err(err, errlen, "empty atom in local part (leading or double dot)");
				return 0;
			}
			need_atom = true;
			i++;
			continue;
		}
		if (is_atext(c)) {
			need_atom = false;
			i++;
			continue;
		}
		if (c >= 0x80) {
			if (!allow_utf8) {
				set_err(err, errlen, "non-ASCII local part needs SMTPUTF8");
				return 0;
			}
			if ((k = utf8_seqlen(p + i, strlen((const char *)p + i), NULL)) == 0) {
				set_err(err, errlen, "invalid UTF-8 in local part");
				return 0;
			}
			*utf8_r = true;
			need_atom = false;
			i += k;
			continue;
		}
		break;
	}
	if (i == 0) {
		set_err(err, errlen, "empty local part");
		return 0;
	}
	if (need_atom) {
		set_err(err, errlen, "local part ends with a dot");
		return 0;
	}
	return i;
}

/* Validate an address literal "[...]" of length n (brackets included). */
static bool
valid_literal(const char *s, size_t n)
{
	char tmp[MAILADDR_DOMAIN_MAX + 1];
	unsigned char addr[sizeof(struct in6_addr)];

	if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(tmp))
		return false;
	memcpy(tmp, s + 1, n - 2);
	tmp[n - 2] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, addr) == 1;
	/* inet_pton refuses the short and octal forms inet_aton would take. */
	return inet_pton(AF_INET, tmp, addr) == 1;
}

/*
 * Scan a domain at s: a hostname (labels of letters, digits and hyphens, no
 * leading or trailing hyphen, at most 63 octets each) or an address literal.
 * Returns its length, 0 on failure.
 */
static size_t
scan_domain(const char *s, bool allow_utf8, bool *literal_r, bool *utf8_r,
    char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, label = 0, k;
	unsigned char prev = 0;

	*literal_r = false;
	if (p[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || !valid_literal(s, (size_t)(end - s) + 1)) {
			set_err(err, errlen, "bad address literal (use [192.0.2.1] or [IPv6:2001:db8::1])");
			return 0;
		}
		*literal_r = true;
		return (size_t)(end - s) + 1;
	}
	for (;;) {
		unsigned char c = p[i];
		if (is_letdig(c)) {
			label++;
		} else if (c == '-') {
			if (label == 0) {
				set_err(err, errlen, "domain label starts with a hyphen");
				return 0;
			}
			label++;
		} else if (c == '.') {
			if (label == 0) {
				set_err(err, errlen, "empty label in domain");
				return 0;
			}
			if (prev == '-') {
				set_err(err, errlen, "domain label ends with a hyphen");
				return 0;
			}
			label = 0;
		} else if (c >= 0x80) {
			if (!allow_utf8) {
				set_err(err, errlen, "non-ASCII domain needs SMTPUTF8");
				return 0;
			}
			if ((k = utf8_seqlen(p + i, strlen(s + i), NULL)) == 0) {
				set_err(err, errlen, "invalid UTF-8 in domain");
				return 0;
			}
			*utf8_r = true;
			label += k;
			i += k;
			prev = 'a';
			if (label > 63) {
				set_err(err, errlen, "domain label longer than 63 octets");
				return 0;
			}
			continue;
		} else
			break;
		if (label > 63) {
			set_err(err, errlen, "domain label longer than 63 octets");
			return 0;
		}
		prev = c;
		i++;
	}
	if (i == 0) {
		set_err(err, errlen, "missing domain");
		return 0;
	}
	if (label == 0) {
		set_err(err, errlen, "domain ends with a dot");
		return 0;
	}
	if (prev == '-') {
		set_err(err, errlen, "domain label ends with a hyphen");
		return 0;
	}
	if (i > MAILADDR_DOMAIN_MAX) {
		set_err(err, errlen, "domain longer than 255 octets");
		return 0;
	}
	return i;
}

/* Length of the local part once unquoted (the RFC 5321 64-octet limit). */
static size_t
unquoted_len(const char *s, size_t n, bool quoted)
{
	size_t len = 0;

	if (!quoted)
		return n;
	for (size_t i = 1; i + 1 < n; i++) {
		if (s[i] == '\\')
			i++;
		len++;
	}
	return len;
}

/*
 * Parse "local@domain" or bare "postmaster" at s. *end_r points after it.
 * allow_postmaster: a bare "postmaster" (no domain) is allowed (RFC 5321 4.1.1.3).
 * bracketed: inside <...>, where a space cannot end the address.
 */
static int
parse_mailbox(const char *s, struct mailaddr *a, bool allow_utf8, bool allow_postmaster,
    bool bracketed, const char **end_r, char *err, size_t errlen)
{
	size_t n, d;
	bool utf8 = false;

	n = scan_local(s, allow_utf8, &a->quoted, &utf8, err, errlen);
	if (n == 0)
		return -1;
	if (n >= sizeof(a->local) || unquoted_len(s, n, a->quoted) > MAILADDR_LOCAL_MAX) {
		set_err(err, errlen, "local part longer than 64 octets");
		return -1;
	}
	memcpy(a->local, s, n);
	a->local[n] = '\0';
	if (s[n] != '@') {
		if (allow_postmaster && !a->quoted && strcasecmp(a->local, "postmaster") == 0) {
			a->domain[0] = '\0';
			a->utf8 = false;
			*end_r = s + n;
			return 0;
		}
		/* say what was wrong, for people typing by hand */
		if (bracketed && (s[n] == ' ' || s[n] == '\t'))
			set_err(err, errlen, "a space in the address (quote the local part: "
			    "\"first last\"@domain)");
		else if (s[n] == '\0' || s[n] == '>' || s[n] == ' ' || s[n] == '\t')
			set_err(err, errlen, "missing @domain");
		else if (err != NULL && errlen > 0)
			snprintf(err, errlen, "unexpected character '%c' in the local part",
			    (unsigned char)s[n] >= 0x21 && (unsigned char)s[n] < 0x7f ? s[n] : '?');
		return -1;
	}
	s += n + 1;
	d = scan_domain(s, allow_utf8, &a->literal, &utf8, err, errlen);
	if (d == 0)
		return -1;
	memcpy(a->domain, s, d);
	a->domain[d] = '\0';
	a->utf8 = utf8;
	*end_r = s + d;
	return 0;
}

/* Skip an A-d-l source route "@one,@two:" (RFC 5321 4.1.2; ignored, C.). */
static int
skip_route(const char **sp, char *err, size_t errlen)
{
	const char *s = *sp;
	bool lit, utf8 = false;
	size_t d;

	if (*s != '@')
		return 0;
	for (;;) {
		if (*s != '@') {
			set_err(err, errlen, "bad source route");
			return -1;
		}
		s++;
		d = scan_domain(s, false, &lit, &utf8, err, errlen);
		if (d == 0)
			return -1;
		s += d;
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s == ':') {
			*sp = s + 1;
			return 0;
		}
		set_err(err, errlen, "bad source route (expected , or :)");
		return -1;
	}
}

int
mailaddr_parse_path(const char *s, struct mailaddr *a, bool allow_utf8,
    const char **rest_r, char *err, size_t errlen)
{
	const char *end;

	memset(a, 0, sizeof(*a));
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '<') {
		/* Lenient: a bare address, ended by a space or the end. */
		if (*s == '\0') {
			set_err(err, errlen, "missing address");
			return -1;
		}
		if (parse_mailbox(s, a, allow_utf8, true, false, &end, err, errlen) == -1)
			return -1;
		if (*end == '>') {
			set_err(err, errlen, "missing < before the address");
			return -1;
		}
		if (*end != '\0' && *end != ' ') {
			set_err(err, errlen, "unexpected character after address");
			return -1;
		}
		if (rest_r != NULL)
			*rest_r = end;
		return 0;
	}
	s++;
	if (*s == '>') {
		if (rest_r != NULL)
			*rest_r = s + 1;
		return 0;	/* the null path */
	}
	if (skip_route(&s, err, errlen) == -1)
		return -1;
	if (parse_mailbox(s, a, allow_utf8, true, true, &end, err, errlen) == -1)
		return -1;
	if (*end != '>') {
		set_err(err, errlen, *end == '\0' ? "missing closing >" :
		    "unexpected character in address");
		return -1;
	}
	if (rest_r != NULL)
		*rest_r = end + 1;
	return 0;
}

int
mailaddr_parse(const char *s, struct mailaddr *a, char *err, size_t errlen)
{
	const char *end;

	memset(a, 0, sizeof(*a));
	if (parse_mailbox(s, a, true, false, false, &end, err, errlen) == -1)
		return -1;
	if (*end != '\0') {
		set_err(err, errlen, "unexpected character after address");
		return -1;
	}
	return 0;
}

void
mailaddr_format(const struct mailaddr *a, char *dst, size_t len)
{
	if (len == 0)
		return;
	if (a->local[0] == '\0')
		dst[0] = '\0';
	else if (a->domain[0] == '\0')
		snprintf(dst, len, "%s", a->local);
	else
		snprintf(dst, len, "%s@%s", a->local, a->domain);
}

void
mailaddr_unquoted_local(const struct mailaddr *a, char *dst, size_t len)
{
	const char *s = a->local;
	size_t o = 0, n = strlen(s);

	if (len == 0)
		return;
	if (!a->quoted) {
		snprintf(dst, len, "%s", s);
		return;
	}
	for (size_t i = 1; i + 1 < n && o + 1 < len; i++) {
		if (s[i] == '\\' && i + 2 < n)
			i++;
		dst[o++] = s[i];
	}
	dst[o] = '\0';
}

bool
mailaddr_is_null(const struct mailaddr *a)
{
	return a->local[0] == '\0';
}

/*
 * The one domain rule (scan_domain: RFC 5321 4.1.2 Domain and
 * address-literal, RFC 1123 2.1 labels) under the three uses correio has.
 */
bool
valid_domain(const char *domain)
{
	bool lit, utf8 = false;
	size_t n = scan_domain(domain, true, &lit, &utf8, NULL, 0);

	return n > 0 && domain[n] == '\0';
}

bool
valid_domain_name(const char *name)
{
	bool lit, utf8 = false;
	size_t n = scan_domain(name, false, &lit, &utf8, NULL, 0);

	return n > 0 && name[n] == '\0' && !lit;
}

bool
valid_host(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
		return true;
	return valid_domain_name(host);
}
