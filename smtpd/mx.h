/*
 * mx.h - where the relay sends mail for a destination domain (RFC 5321 5.1).
 * Order of choice: a [relay] route for the domain (then the "*" route), the
 * smarthost, a domain literal's own address, else DNS: the MX records in
 * preference order (equal preferences shuffled), RFC 7505 null MX refused,
 * and with no MX at all the domain itself (the "implicit MX", A/AAAA).
 * Also knows when a host:port is this very server (its listeners or its
 * hostname), so that a route or MX pointing back at us is caught and reported
 * instead of looping. Never connects anywhere; only resolves names.
 */
#ifndef CORREIO_MX_H
#define CORREIO_MX_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define MX_MAX_HOSTS	16	/* MX hosts tried per destination */
#define MX_HOST_MAX	256	/* a host name (255) or address, with its NUL */
#define MX_KEY_MAX	300	/* a route key: "route " or "dns " + host:port */

#define MX_TEMPFAIL	(-1)	/* try again later (DNS timeout, SERVFAIL) */
#define MX_PERMFAIL	(-2)	/* never deliverable (NXDOMAIN, null MX, loop) */

enum mx_source {
	MX_ROUTE,		/* [relay] route = DOMAIN HOST:PORT */
	MX_SMARTHOST,		/* [relay] smarthost = HOST:PORT */
	MX_LITERAL,		/* user@[192.0.2.1] */
	MX_DNS			/* MX records, or the implicit MX */
};

struct mx_host {
	char	 host[MX_HOST_MAX];	/* name or numeric address to connect to */
	char	 port[8];
	int	 pref;		/* MX preference; 0 for routes */
};

struct mx_route {
	enum mx_source source;
	char	 domain[256];	/* the destination domain (lower case) */
	char	 key[MX_KEY_MAX];	/* same key = same connection: "route host:port", "dns domain" */
	struct mx_host hosts[MX_MAX_HOSTS];
	size_t	 nhosts;	/* 0 for MX_DNS until mx_resolve */
};

/* Name of a source for logs: "route", "smarthost", "literal", "mx". */
const char *mx_source_name(enum mx_source s);

/*
 * Choose the route for domain from the configuration alone (no I/O).
 * MX_DNS routes have no hosts yet: call mx_resolve. Returns 0, or
 * MX_PERMFAIL with a reason in err for a malformed domain literal.
 */
int	mx_select(const struct config *cfg, const char *domain, struct mx_route *r,
	    char *err, size_t errlen);

/*
 * Fill an MX_DNS route's hosts from DNS (res_query), sorted by preference,
 * with the implicit MX when the domain has no MX records. Hosts that are
 * this server, and every host less preferred than it, are dropped (RFC 5321
 * 5.1). Returns 0, MX_TEMPFAIL or MX_PERMFAIL; err holds the reason and
 * esc_r (>= 8 bytes) the RFC 3463 status code to report.
 */
int	mx_resolve(const struct config *cfg, struct mx_route *r, char *esc_r,
	    char *err, size_t errlen);

/*
 * Parse a DNS reply to an MX query (wire format, RFC 1035 4.1) into hosts
 * (port "25"), unsorted. *nullmx_r is set for an RFC 7505 "0 ." record.
 * Returns 0, or -1 with err on a malformed packet.
 */
int	mx_parse_answer(const unsigned char *msg, size_t len, struct mx_host *hosts,
	    size_t max, size_t *n_r, bool *nullmx_r, char *err, size_t errlen);

/* Sort by preference, shuffling hosts of equal preference (RFC 5321 5.1). */
void	mx_sort(struct mx_host *hosts, size_t n);

/*
 * True when host:port reaches this server: host is cfg->hostname and port
 * is one of the SMTP listeners' ports, or one of host's addresses equals a
 * listener's address (a wildcard listener matches any address of this
 * machine) on the same port.
 */
bool	mx_is_self(const struct config *cfg, const char *host, const char *port);

#endif
