/*
 * mailaddr.h - RFC 5321 4.1.2 paths (MAIL FROM:<...>, RCPT TO:<...>) and the
 * address checks shared by smtpd, the relay and mailcli. Quoted local parts,
 * bracketed domain literals, source routes (parsed and ignored), the null
 * path <>, SMTPUTF8 (UTF-8 in local parts and domains when allowed).
 */
#ifndef CORREIO_MAILADDR_H
#define CORREIO_MAILADDR_H

#include <stdbool.h>
#include <stddef.h>

#define MAILADDR_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define MAILADDR_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */

struct mailaddr {
	char	local[MAILADDR_LOCAL_MAX * 2 + 3];	/* as written, quotes included */
	char	domain[MAILADDR_DOMAIN_MAX + 1];	/* "" for <> and bare postmaster; literal with [] */
	bool	quoted;			/* the local part was a quoted string */
	bool	literal;		/* the domain was [a.b.c.d] or [IPv6:...] */
	bool	utf8;			/* contains non-ASCII (needs SMTPUTF8) */
};

/*
 * Parse a path after "FROM:" or "TO:" (leading spaces allowed): "<a@b>", "<>",
 * "<@r1,@r2:a@b>", and, leniently, a bare a@b. *rest_r points after the '>'
 * (ESMTP parameters follow). Returns 0, or -1 with a human reason in err.
 */
int	mailaddr_parse_path(const char *s, struct mailaddr *a, bool allow_utf8,
	    const char **rest_r, char *err, size_t errlen);
/* Parse a plain address "local@domain" (mailcli arguments). */
int	mailaddr_parse(const char *s, struct mailaddr *a, char *err, size_t errlen);
/* "local@domain", or "" for the null path. */
void	mailaddr_format(const struct mailaddr *a, char *dst, size_t len);
/* The local part without quotes and escapes (for account lookup). */
void	mailaddr_unquoted_local(const struct mailaddr *a, char *dst, size_t len);
bool	mailaddr_is_null(const struct mailaddr *a);
/* A domain as a path may carry it: a host name (UTF-8 labels allowed) or an
 * address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]"). HELO/EHLO. */
bool	valid_domain(const char *domain);
/* A domain name: ASCII letter-digit-hyphen labels of 1-63 octets, no hyphen
 * at either end of a label, at most 255 octets; no literal. The domains
 * served here (mailcli admin), relay route domains. */
bool	valid_domain_name(const char *name);
/* A host to name or to connect to: a domain name or a bare IPv4/IPv6
 * address ("192.0.2.1", "::1"). Config hostname, smarthost, route hosts. */
bool	valid_host(const char *host);

#endif
