/*
 * mx.c - route choice for the relay: config routes, smarthost, domain
 * literals, DNS MX with preference order and the implicit MX (RFC 5321 5.1),
 * null MX (RFC 7505), and "is this host:port myself?" (RFC 5321 5.1: a host
 * that finds itself among the MX hosts drops itself and every less preferred
 * host). DNS replies are parsed here with dn_expand/dn_skipname (RFC 1035).
 * Must never: connect to anything, or trust a length field of a DNS reply
 * without checking it against the end of the packet.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "esc.h"
#include "mx.h"

#define MX_ANSWER_MAX	65536	/* largest DNS reply read (TCP fallback size) */

const char *
mx_source_name(enum mx_source s)
{
	switch (s) {
	case MX_ROUTE:		return "route";
	case MX_SMARTHOST:	return "smarthost";
	case MX_LITERAL:	return "literal";
	case MX_DNS:		return "mx";
	}
	return "?";
}

static void
lower_copy(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i] != '\0'; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static void
set_one_host(struct mx_route *r, const char *host, const char *port)
{
	snprintf(r->hosts[0].host, sizeof(r->hosts[0].host), "%s", host);
	snprintf(r->hosts[0].port, sizeof(r->hosts[0].port), "%s", port);
	r->hosts[0].pref = 0;
	r->nhosts = 1;
	/* Everything for the same host:port shares one connection. */
	snprintf(r->key, sizeof(r->key), "%s %s:%s", mx_source_name(r->source), host, port);
}

int
mx_select(const struct config *cfg, const char *domain, struct mx_route *r,
    char *err, size_t errlen)
{
	const struct route *wild = NULL;
	char lit[256];
	size_t i, n;

	memset(r, 0, sizeof(*r));
	if (domain == NULL || domain[0] == '\0') {
		snprintf(err, errlen, "the address has no domain");
		return MX_PERMFAIL;
	}
	lower_copy(r->domain, sizeof(r->domain), domain);
	for (i = 0; i < cfg->nroutes; i++) {
		if (strcasecmp(cfg->routes[i].domain, r->domain) == 0) {
			r->source = MX_ROUTE;
			set_one_host(r, cfg->routes[i].host, cfg->routes[i].port);
			return 0;
		}
		if (strcmp(cfg->routes[i].domain, "*") == 0 && wild == NULL)
			wild = &cfg->routes[i];
	}
	if (wild != NULL) {
		r->source = MX_ROUTE;
		set_one_host(r, wild->host, wild->port);
		return 0;
	}
	if (r->domain[0] == '[') {
		/* RFC 5321 4.1.3: [192.0.2.1] or [IPv6:2001:db8::1]: the address itself. */
		n = strlen(r->domain);
		if (n < 3 || r->domain[n - 1] != ']') {
			snprintf(err, errlen, "malformed domain literal %s", domain);
			return MX_PERMFAIL;
		}
		snprintf(lit, sizeof(lit), "%.*s", (int)(n - 2), r->domain + 1);
		if (strncasecmp(lit, "ipv6:", 5) == 0)
			memmove(lit, lit + 5, strlen(lit + 5) + 1);
		{
			unsigned char a[16];
			if (inet_pton(AF_INET, lit, a) != 1 && inet_pton(AF_INET6, lit, a) != 1) {
				snprintf(err, errlen, "domain literal %s is not an address", domain);
				return MX_PERMFAIL;
			}
		}
		r->source = MX_LITERAL;
		set_one_host(r, lit, "25");
		return 0;
	}
	if (cfg->smarthost.host[0] != '\0') {
		r->source = MX_SMARTHOST;
		set_one_host(r, cfg->smarthost.host, cfg->smarthost.port);
		return 0;
	}
	r->source = MX_DNS;
	snprintf(r->key, sizeof(r->key), "mx %s", r->domain);
	return 0;
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

int
mx_parse_answer(const unsigned char *msg, size_t len, struct mx_host *hosts,
    size_t max, size_t *n_r, bool *nullmx_r, char *err, size_t errlen)
{
	const unsigned char *p, *eom = msg + len;
	unsigned qd, an, i, type, klass, rdlen, pref;
	char name[NS_MAXDNAME];
	int k;

	*n_r = 0;
	*nullmx_r = false;
	if (len < NS_HFIXEDSZ || len > MX_ANSWER_MAX) {
		snprintf(err, errlen, "DNS reply of %zu octets", len);
		return -1;
	}
	qd = get16(msg + 4);
	an = get16(msg + 6);
	p = msg + NS_HFIXEDSZ;
	for (i = 0; i < qd; i++) {
		if ((k = dn_skipname(p, eom)) < 0 || (size_t)(eom - p) < (size_t)k + NS_QFIXEDSZ) {
			snprintf(err, errlen, "malformed question in DNS reply");
			return -1;
		}
		p += k + NS_QFIXEDSZ;
	}
	for (i = 0; i < an; i++) {
		if ((k = dn_skipname(p, eom)) < 0 || (size_t)(eom - p) < (size_t)k + NS_RRFIXEDSZ) {
			snprintf(err, errlen, "malformed answer in DNS reply");
			return -1;
		}
		p += k;
		type = get16(p);
		klass = get16(p + 2);
		rdlen = get16(p + 8);
		p += NS_RRFIXEDSZ;
		if ((size_t)(eom - p) < rdlen) {
			snprintf(err, errlen, "truncated record in DNS reply");
			return -1;
		}
		if (type != ns_t_mx || klass != ns_c_in) {
			p += rdlen;	/* CNAMEs the resolver followed, and the like */
			continue;
		}
		if (rdlen < 3) {
			snprintf(err, errlen, "short MX record in DNS reply");
			return -1;
		}
		pref = get16(p);
		k = dn_expand(msg, eom, p + 2, name, sizeof(name));
		if (k < 0 || (unsigned)k + 2 != rdlen) {
			snprintf(err, errlen, "malformed MX record in DNS reply");
			return -1;
		}
		p += rdlen;
		if (name[0] == '\0' || strcmp(name, ".") == 0) {
			/* RFC 7505: "MX 0 ." says the domain takes no mail. */
			*nullmx_r = true;
			continue;
		}
		if (*n_r >= max)
			continue;	/* keep the first max; sorting picks the best of them */
		lower_copy(hosts[*n_r].host, sizeof(hosts[*n_r].host), name);
		snprintf(hosts[*n_r].port, sizeof(hosts[*n_r].port), "25");
		hosts[*n_r].pref = (int)pref;
		(*n_r)++;
	}
	return 0;
}

void
mx_sort(struct mx_host *hosts, size_t n)
{
	struct mx_host t;
	uint32_t rnd;
	size_t i, j, lo, hi;

	/* Insertion sort by preference (n <= MX_MAX_HOSTS). */
	for (i = 1; i < n; i++) {
		t = hosts[i];
		for (j = i; j > 0 && hosts[j - 1].pref > t.pref; j--)
			hosts[j] = hosts[j - 1];
		hosts[j] = t;
	}
	/* Fisher-Yates within each run of equal preference: spreads the load. */
	for (lo = 0; lo < n; lo = hi) {
		for (hi = lo + 1; hi < n && hosts[hi].pref == hosts[lo].pref; hi++)
			;
		for (i = hi - 1; i > lo; i--) {
			if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
				rnd = (uint32_t)random();
			j = lo + rnd % (i - lo + 1);
			t = hosts[i];
			hosts[i] = hosts[j];
			hosts[j] = t;
		}
	}
}

/* Address bytes of a sockaddr (4 or 16), NULL for other families. */
static const unsigned char *
sa_bytes(const struct sockaddr *sa, int *family_r)
{
	*family_r = sa->sa_family;
	if (sa->sa_family == AF_INET)
		return (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	if (sa->sa_family == AF_INET6)
		return (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	return NULL;
}

/* Map ::ffff:a.b.c.d to IPv4 so both spellings compare equal. */
static const unsigned char *
canon(const unsigned char *b, int *family)
{
	static const unsigned char v4mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

	if (*family == AF_INET6 && memcmp(b, v4mapped, 12) == 0) {
		*family = AF_INET;
		return b + 12;
	}
	return b;
}

static bool
same_addr(const unsigned char *a, int fa, const unsigned char *b, int fb)
{
	a = canon(a, &fa);
	b = canon(b, &fb);
	if (fa != fb)
		return false;
	return memcmp(a, b, fa == AF_INET ? 4 : 16) == 0;
}

/* True when the address belongs to this machine (loopback or an interface). */
static bool
addr_is_local(const unsigned char *b, int family)
{
	struct ifaddrs *ifa, *i;
	const unsigned char *ib, *cb;
	int fam = family, ifam;
	bool found = false;

	cb = canon(b, &fam);
	if ((fam == AF_INET && cb[0] == 127) ||
	    (fam == AF_INET6 && memcmp(cb, &in6addr_loopback, 16) == 0))
		return true;
	if (getifaddrs(&ifa) == -1)
		return false;
	for (i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || (ib = sa_bytes(i->ifa_addr, &ifam)) == NULL)
			continue;
		found = same_addr(ib, ifam, b, family);
	}
	freeifaddrs(ifa);
	return found;
}

bool
mx_is_self(const struct config *cfg, const char *host, const char *port)
{
	struct addrinfo hints, *res = NULL, *ai;
	const struct listen_spec *ls;
	const unsigned char *hb;
	unsigned char lb[16];
	int hfam, lfam;
	size_t i;
	bool self = false, port_is_ours = false;

	for (i = 0; i < cfg->smtp_nlisten; i++)
		if (strcmp(cfg->smtp_listen[i].port, port) == 0)
			port_is_ours = true;
	if (!port_is_ours)
		return false;
	if (cfg->hostname[0] != '\0' && strcasecmp(host, cfg->hostname) == 0)
		return true;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return false;	/* unresolvable: the connection attempt will say so */
	for (ai = res; ai != NULL && !self; ai = ai->ai_next) {
		if ((hb = sa_bytes(ai->ai_addr, &hfam)) == NULL)
			continue;
		for (i = 0; i < cfg->smtp_nlisten && !self; i++) {
			ls = &cfg->smtp_listen[i];
			if (strcmp(ls->port, port) != 0)
				continue;
			if (inet_pton(AF_INET, ls->host, lb) == 1)
				lfam = AF_INET;
			else if (inet_pton(AF_INET6, ls->host, lb) == 1)
				lfam = AF_INET6;
			else
				continue;
			if ((lfam == AF_INET && memcmp(lb, "\0\0\0\0", 4) == 0) ||
			    (lfam == AF_INET6 && memcmp(lb, &in6addr_any, 16) == 0))
				self = addr_is_local(hb, hfam);	/* wildcard listener */
			else
				self = same_addr(lb, lfam, hb, hfam);
		}
	}
	freeaddrinfo(res);
	return self;
}

/* No MX records: RFC 5321 5.1 treats the domain as its own MX (A/AAAA). */
static int
implicit_mx(struct mx_route *r, char *esc_r, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	int g;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	g = getaddrinfo(r->domain, "25", &hints, &res);
	if (g == EAI_NONAME || g == EAI_NODATA) {
		snprintf(esc_r, 8, "%s", ESC_BAD_SYSTEM);
		snprintf(err, errlen, "%s has no MX and no address records", r->domain);
		return MX_PERMFAIL;
	}
	if (g != 0) {
		snprintf(esc_r, 8, "%s", ESC_DNS_TEMP);
		snprintf(err, errlen, "address lookup for %s failed: %s", r->domain, gai_strerror(g));
		return MX_TEMPFAIL;
	}
	freeaddrinfo(res);
	snprintf(r->hosts[0].host, sizeof(r->hosts[0].host), "%s", r->domain);
	snprintf(r->hosts[0].port, sizeof(r->hosts[0].port), "25");
	r->hosts[0].pref = 0;
	r->nhosts = 1;
	return 0;
}

int
mx_resolve(const struct config *cfg, struct mx_route *r, char *esc_r,
    char *err, size_t errlen)
{
	unsigned char *ans;
	char perr[128];
	size_t n = 0, i;
	bool nullmx;
	int len;

	if (r->source != MX_DNS)
		return 0;
	r->nhosts = 0;
	if ((ans = malloc(MX_ANSWER_MAX)) == NULL) {
		snprintf(esc_r, 8, "%s", ESC_SYSTEM_TEMP);
		snprintf(err, errlen, "out of memory resolving %s", r->domain);
		return MX_TEMPFAIL;
	}
	len = res_query(r->domain, ns_c_in, ns_t_mx, ans, MX_ANSWER_MAX);
	if (len < 0) {
		int he = h_errno;

		free(ans);
		if (he == HOST_NOT_FOUND) {
			snprintf(esc_r, 8, "%s", ESC_BAD_SYSTEM);
			snprintf(err, errlen, "domain %s does not exist (DNS NXDOMAIN)", r->domain);
			return MX_PERMFAIL;
		}
		if (he == NO_DATA)
			return implicit_mx(r, esc_r, err, errlen);
		snprintf(esc_r, 8, "%s", ESC_DNS_TEMP);
		snprintf(err, errlen, "MX lookup for %s failed: %s", r->domain, hstrerror(he));
		return MX_TEMPFAIL;
	}
	if (mx_parse_answer(ans, (size_t)len, r->hosts, MX_MAX_HOSTS, &n, &nullmx,
	    perr, sizeof(perr)) == -1) {
		free(ans);
		snprintf(esc_r, 8, "%s", ESC_DNS_TEMP);
		snprintf(err, errlen, "MX lookup for %s: %s", r->domain, perr);
		return MX_TEMPFAIL;
	}
	free(ans);
	if (nullmx && n == 0) {
		snprintf(esc_r, 8, "%s", ESC_NULL_MX);
		snprintf(err, errlen, "%s accepts no mail (null MX, RFC 7505)", r->domain);
		return MX_PERMFAIL;
	}
	if (n == 0)
		return implicit_mx(r, esc_r, err, errlen);
	mx_sort(r->hosts, n);
	/* RFC 5321 5.1: drop ourselves and everything less preferred. */
	for (i = 0; i < n; i++) {
		if (mx_is_self(cfg, r->hosts[i].host, r->hosts[i].port)) {
			int pref = r->hosts[i].pref;

			while (i > 0 && r->hosts[i - 1].pref == pref)
				i--;
			n = i;
			break;
		}
	}
	if (n == 0) {
		snprintf(esc_r, 8, "%s", ESC_LOOP);
		snprintf(err, errlen, "mail for %s loops back to myself (best MX is this server)",
		    r->domain);
		return MX_PERMFAIL;
	}
	r->nhosts = n;
	return 0;
}
