/*
 * test_mx.c - smtpd/mx.c: route choice from the configuration (routes,
 * the "*" route, domain literals, smarthost, DNS), parsing MX answers in
 * DNS wire format (compression, CNAMEs, null MX, and every truncation of a
 * valid packet refused), preference order, and "is that host:port me?".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mx.h"

static struct config cfg;

static void
add_route(const char *domain, const char *host, const char *port)
{
	struct route *r = &cfg.routes[cfg.nroutes++];

	snprintf(r->domain, sizeof(r->domain), "%s", domain);
	snprintf(r->host, sizeof(r->host), "%s", host);
	snprintf(r->port, sizeof(r->port), "%s", port);
}

static void
add_listen(const char *host, const char *port)
{
	struct listen_spec *l = &cfg.smtp_listen[cfg.smtp_nlisten++];

	snprintf(l->host, sizeof(l->host), "%s", host);
	snprintf(l->port, sizeof(l->port), "%s", port);
	l->role = ROLE_INBOUND;
}

static int
setup(void **state)
{
	(void)state;
	config_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.consumidor.br");
	return 0;
}

struct sel_case {
	const char *name;
	bool	 smarthost;
	bool	 wildcard;
	const char *domain;
	int	 ret;
	enum mx_source source;
	const char *host, *port;
	const char *key;
};

static const struct sel_case sel_cases[] = {
	{ "route", false, false, "doces.br", 0, MX_ROUTE, "127.0.0.3", "2526", "route 127.0.0.3:2526" },
	{ "route case", false, false, "DOCES.BR", 0, MX_ROUTE, "127.0.0.3", "2526", "route 127.0.0.3:2526" },
	{ "second route", false, false, "pao.br", 0, MX_ROUTE, "mx.pao.br", "25", "route mx.pao.br:25" },
	{ "no route: dns", false, false, "example.org", 0, MX_DNS, NULL, NULL, "mx example.org" },
	{ "dns key lower", false, false, "Example.ORG", 0, MX_DNS, NULL, NULL, "mx example.org" },
	{ "subdomain is not the domain", false, false, "a.doces.br", 0, MX_DNS, NULL, NULL,
	  "mx a.doces.br" },
	{ "smarthost", true, false, "example.org", 0, MX_SMARTHOST, "relay.isp", "587",
	  "smarthost relay.isp:587" },
	{ "route beats smarthost", true, false, "doces.br", 0, MX_ROUTE, "127.0.0.3", "2526", NULL },
	{ "wildcard", false, true, "example.org", 0, MX_ROUTE, "gw.lab", "2525", "route gw.lab:2525" },
	{ "exact beats wildcard", false, true, "doces.br", 0, MX_ROUTE, "127.0.0.3", "2526", NULL },
	{ "literal v4", false, false, "[192.0.2.7]", 0, MX_LITERAL, "192.0.2.7", "25",
	  "literal 192.0.2.7:25" },
	{ "literal v6", false, false, "[IPv6:2001:db8::1]", 0, MX_LITERAL, "2001:db8::1", "25", NULL },
	{ "literal not an address", false, false, "[doces.br]", MX_PERMFAIL, MX_DNS, NULL, NULL, NULL },
	{ "literal unclosed", false, false, "[1.2.3.4", MX_PERMFAIL, MX_DNS, NULL, NULL, NULL },
	{ "literal empty", false, false, "[]", MX_PERMFAIL, MX_DNS, NULL, NULL, NULL },
	{ "no domain", false, false, "", MX_PERMFAIL, MX_DNS, NULL, NULL, NULL },
	{ "no domain, smarthost", true, true, "", MX_PERMFAIL, MX_DNS, NULL, NULL, NULL },
};

static void
test_select(void **state)
{
	struct mx_route r;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(sel_cases) / sizeof(sel_cases[0]); i++) {
		const struct sel_case *c = &sel_cases[i];
		int rc;

		setup(NULL);
		add_route("doces.br", "127.0.0.3", "2526");
		add_route("pao.br", "mx.pao.br", "25");
		if (c->wildcard)
			add_route("*", "gw.lab", "2525");
		if (c->smarthost) {
			snprintf(cfg.smarthost.host, sizeof(cfg.smarthost.host), "relay.isp");
			snprintf(cfg.smarthost.port, sizeof(cfg.smarthost.port), "587");
		}
		err[0] = '\0';
		rc = mx_select(&cfg, c->domain, &r, err, sizeof(err));
		if (rc != c->ret)
			fail_msg("%s: ret %d want %d (%s)", c->name, rc, c->ret, err);
		if (rc != 0) {
			assert_true(err[0] != '\0');
			continue;
		}
		if (r.source != c->source)
			fail_msg("%s: source %s", c->name, mx_source_name(r.source));
		if (c->host != NULL) {
			assert_int_equal(r.nhosts, 1);
			assert_string_equal(r.hosts[0].host, c->host);
			assert_string_equal(r.hosts[0].port, c->port);
		} else
			assert_int_equal(r.nhosts, 0);
		if (c->key != NULL)
			assert_string_equal(r.key, c->key);
	}
}

/* ---- DNS wire format ---------------------------------------------------- */

struct pkt {
	unsigned char b[1024];
	size_t	 n;
};

static void
put(struct pkt *p, const void *d, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void
put16(struct pkt *p, unsigned v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	put(p, b, 2);
}

/* "a.b" -> 1a1b0 */
static void
put_name(struct pkt *p, const char *name)
{
	const char *dot;
	unsigned char len;

	while (*name) {
		dot = strchr(name, '.');
		len = (unsigned char)(dot ? (size_t)(dot - name) : strlen(name));
		put(p, &len, 1);
		put(p, name, len);
		name += len + (dot ? 1 : 0);
	}
	put(p, "", 1);
}

static void
header(struct pkt *p, unsigned an)
{
	p->n = 0;
	put16(p, 0x1234);	/* id */
	put16(p, 0x8180);	/* response, RD, RA, NOERROR */
	put16(p, 1);		/* QDCOUNT */
	put16(p, an);		/* ANCOUNT */
	put16(p, 0);
	put16(p, 0);
	put_name(p, "doces.br");
	put16(p, 15);		/* MX */
	put16(p, 1);		/* IN */
}

/* An MX record for the question name (pointer to offset 12). */
static void
mx_rr(struct pkt *p, unsigned pref, const char *exchange, bool compress_tail)
{
	struct pkt rd = { .n = 0 };
	unsigned char ptr[2] = { 0xc0, 12 };

	put(p, ptr, 2);
	put16(p, 15);
	put16(p, 1);
	put16(p, 0);
	put16(p, 3600);		/* TTL */
	put16(&rd, pref);
	if (compress_tail) {
		/* "mx2" + pointer to "doces.br" at offset 12 */
		unsigned char l = 3;
		put(&rd, &l, 1);
		put(&rd, "mx2", 3);
		put(&rd, ptr, 2);
	} else
		put_name(&rd, exchange);
	put16(p, (unsigned)rd.n);
	put(p, rd.b, rd.n);
}

static void
cname_rr(struct pkt *p)
{
	struct pkt rd = { .n = 0 };
	unsigned char ptr[2] = { 0xc0, 12 };

	put(p, ptr, 2);
	put16(p, 5);		/* CNAME */
	put16(p, 1);
	put16(p, 0);
	put16(p, 60);
	put_name(&rd, "real.doces.br");
	put16(p, (unsigned)rd.n);
	put(p, rd.b, rd.n);
}

static void
test_parse(void **state)
{
	struct pkt p;
	struct mx_host h[MX_MAX_HOSTS];
	size_t n;
	bool nullmx;
	char err[128];

	(void)state;
	header(&p, 4);
	cname_rr(&p);
	mx_rr(&p, 20, "backup.doces.br", false);
	mx_rr(&p, 10, NULL, true);
	mx_rr(&p, 5, "MX1.Doces.BR", false);
	assert_int_equal(mx_parse_answer(p.b, p.n, h, MX_MAX_HOSTS, &n, &nullmx, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_false(nullmx);
	assert_string_equal(h[0].host, "backup.doces.br");
	assert_int_equal(h[0].pref, 20);
	assert_string_equal(h[1].host, "mx2.doces.br");
	assert_string_equal(h[2].host, "mx1.doces.br");	/* lower-cased */
	assert_string_equal(h[2].port, "25");
	mx_sort(h, n);
	assert_string_equal(h[0].host, "mx1.doces.br");
	assert_string_equal(h[1].host, "mx2.doces.br");
	assert_string_equal(h[2].host, "backup.doces.br");

	/* Every truncation of the packet is refused, never read past. */
	for (size_t k = 0; k < p.n; k++) {
		unsigned char *copy = malloc(k ? k : 1);

		memcpy(copy, p.b, k);
		assert_int_equal(mx_parse_answer(copy, k, h, MX_MAX_HOSTS, &n, &nullmx,
		    err, sizeof(err)), -1);
		free(copy);
	}
	/* A limit of 2 hosts keeps the first 2. */
	assert_int_equal(mx_parse_answer(p.b, p.n, h, 2, &n, &nullmx, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
}

static void
test_nullmx(void **state)
{
	struct pkt p;
	struct mx_host h[MX_MAX_HOSTS];
	size_t n;
	bool nullmx;
	char err[128];

	(void)state;
	header(&p, 1);
	mx_rr(&p, 0, "", false);	/* RFC 7505: "MX 0 ." */
	assert_int_equal(mx_parse_answer(p.b, p.n, h, MX_MAX_HOSTS, &n, &nullmx, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_true(nullmx);
}

static void
test_malformed(void **state)
{
	struct pkt p;
	struct mx_host h[MX_MAX_HOSTS];
	size_t n;
	bool nullmx;
	char err[128];
	unsigned char loop[2] = { 0xc0, 12 };	/* pointer to itself at 12 */

	(void)state;
	/* RDLENGTH that disagrees with the name inside. */
	header(&p, 1);
	mx_rr(&p, 10, "mx.doces.br", false);
	p.b[p.n - 16]++;	/* the RDLENGTH low byte: 2 + 13 octets of rdata follow it */
	assert_int_equal(mx_parse_answer(p.b, p.n, h, MX_MAX_HOSTS, &n, &nullmx, err, sizeof(err)), -1);
	/* A compression loop in the question name. */
	p.n = 0;
	put16(&p, 1); put16(&p, 0x8180); put16(&p, 1); put16(&p, 0); put16(&p, 0); put16(&p, 0);
	put(&p, loop, 2);
	put16(&p, 15); put16(&p, 1);
	/* dn_skipname does not follow pointers: whatever it answers, no crash. */
	(void)mx_parse_answer(p.b, p.n, h, MX_MAX_HOSTS, &n, &nullmx, err, sizeof(err));
	/* Short rdata. */
	header(&p, 1);
	put(&p, loop, 2);
	put16(&p, 15); put16(&p, 1); put16(&p, 0); put16(&p, 1); put16(&p, 2); put16(&p, 10);
	assert_int_equal(mx_parse_answer(p.b, p.n, h, MX_MAX_HOSTS, &n, &nullmx, err, sizeof(err)), -1);
	/* Too short for a header. */
	assert_int_equal(mx_parse_answer(p.b, 5, h, MX_MAX_HOSTS, &n, &nullmx, err, sizeof(err)), -1);
}

static void
test_sort(void **state)
{
	struct mx_host h[8];
	int prefs[8] = { 30, 10, 20, 10, 10, 5, 30, 20 };
	bool seen_first[8] = { false };

	(void)state;
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 8; i++) {
			snprintf(h[i].host, sizeof(h[i].host), "h%d", i);
			h[i].pref = prefs[i];
		}
		mx_sort(h, 8);
		for (int i = 1; i < 8; i++)
			assert_true(h[i - 1].pref <= h[i].pref);
		assert_string_equal(h[0].host, "h5");
		seen_first[h[1].host[1] - '0'] = true;	/* one of h1, h3, h4 */
	}
	/* Equal preferences are shuffled: each of the three came second. */
	assert_true(seen_first[1] && seen_first[3] && seen_first[4]);
}

static void
test_self(void **state)
{
	(void)state;
	setup(NULL);
	add_listen("127.0.0.2", "2525");
	add_listen("127.0.0.2", "2587");
	assert_true(mx_is_self(&cfg, "127.0.0.2", "2525"));
	assert_true(mx_is_self(&cfg, "127.0.0.2", "2587"));
	assert_false(mx_is_self(&cfg, "127.0.0.3", "2525"));	/* the other server */
	assert_false(mx_is_self(&cfg, "127.0.0.2", "25"));	/* not our port */
	assert_true(mx_is_self(&cfg, "mx.consumidor.br", "2525"));	/* our name */
	assert_true(mx_is_self(&cfg, "MX.Consumidor.BR", "2587"));
	assert_false(mx_is_self(&cfg, "mx.consumidor.br", "2526"));
	assert_false(mx_is_self(&cfg, "no-such-host.invalid", "2525"));

	setup(NULL);
	add_listen("0.0.0.0", "2525");		/* wildcard: any address of this machine */
	assert_true(mx_is_self(&cfg, "127.0.0.9", "2525"));
	assert_true(mx_is_self(&cfg, "::ffff:127.0.0.1", "2525"));
	assert_false(mx_is_self(&cfg, "192.0.2.1", "2525"));	/* TEST-NET: not ours */

	setup(NULL);
	add_listen("::1", "2525");
	assert_true(mx_is_self(&cfg, "::1", "2525"));
	assert_false(mx_is_self(&cfg, "127.0.0.1", "2525"));

	setup(NULL);
	add_listen("127.0.0.1", "2525");
	assert_true(mx_is_self(&cfg, "127.0.0.1", "2525"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_nullmx),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_self),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
