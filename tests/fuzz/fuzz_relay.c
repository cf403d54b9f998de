/*
 * fuzz_relay.c - what the outbound relay reads from others: DNS answers to
 * MX queries (smtpd/mx.c mx_parse_answer, RFC 1035 4.1 wire format with name
 * compression; RFC 7505 null MX), destination domains (mx_select: routes,
 * smarthost, domain literals), and the header section of a message it
 * bounces (smtpd/dsn.c dsn_header_len).
 *
 * Input: the whole input is a DNS packet; its first line is also a domain
 * and the whole input a message. Oracles: at most max hosts, each a
 * NUL-terminated name with port "25" and a 16-bit preference; a refused
 * packet says why; mx_sort keeps the hosts and orders them by preference;
 * mx_select gives 0 with a usable route or MX_PERMFAIL with a reason;
 * dsn_header_len never exceeds the input and ends on a line end.
 */
#include <stdbool.h>
#include <string.h>

#include "config.h"
#include "dsn.h"
#include "fuzz_common.h"
#include "mx.h"

static struct config cfg;
static bool ready;

static void
setup(void)
{
	config_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.lab.test");
	snprintf(cfg.routes[0].domain, sizeof(cfg.routes[0].domain), "lab.test");
	snprintf(cfg.routes[0].host, sizeof(cfg.routes[0].host), "127.0.0.1");
	snprintf(cfg.routes[0].port, sizeof(cfg.routes[0].port), "2525");
	cfg.nroutes = 1;	/* no "*" route: literals and DNS stay reachable */
	ready = true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_host hosts[MX_MAX_HOSTS];
	struct mx_route route;
	size_t n = 99, i, max = 1 + (size % MX_MAX_HOSTS);
	bool nullmx = false;
	char err[256], domain[300];
	const char *nl;
	int rc;

	if (!ready)
		setup();

	/* DNS answer */
	err[0] = '\0';
	memset(hosts, 0x41, sizeof(hosts));
	rc = mx_parse_answer(data, size, hosts, max, &n, &nullmx, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == -1) {
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
	} else {
		FUZZ_CHECK(n <= max);
		for (i = 0; i < n; i++) {
			FUZZ_CHECK(memchr(hosts[i].host, '\0', sizeof(hosts[i].host)) != NULL);
			FUZZ_CHECK(strcmp(hosts[i].port, "25") == 0);
			FUZZ_CHECK(hosts[i].pref >= 0 && hosts[i].pref <= 65535);
		}
		mx_sort(hosts, n);
		for (i = 1; i < n; i++)
			FUZZ_CHECK(hosts[i - 1].pref <= hosts[i].pref);
	}

	/* destination domain */
	nl = memchr(data, '\n', size);
	i = nl != NULL ? (size_t)(nl - (const char *)data) : size;
	if (i < sizeof(domain)) {
		memcpy(domain, data, i);
		domain[i] = '\0';
		if (strlen(domain) == i) {
			err[0] = '\0';
			memset(&route, 0, sizeof(route));
			rc = mx_select(&cfg, domain, &route, err, sizeof(err));
			FUZZ_CHECK(rc == 0 || rc == MX_PERMFAIL);
			if (rc == 0) {
				FUZZ_CHECK(route.nhosts <= MX_MAX_HOSTS);
				FUZZ_CHECK(route.source == MX_DNS || route.nhosts >= 1);
				FUZZ_CHECK(memchr(route.key, '\0', sizeof(route.key)) != NULL);
				for (i = 0; i < route.nhosts; i++)
					FUZZ_CHECK(memchr(route.hosts[i].host, '\0',
					    sizeof(route.hosts[i].host)) != NULL);
			} else {
				FUZZ_CHECK(err[0] != '\0');
			}
		}
	}

	/* the header section of a bounced message */
	i = dsn_header_len((const char *)data, size);
	FUZZ_CHECK(i <= size);
	FUZZ_CHECK(i == 0 || data[i - 1] == '\n');
	return 0;
}
