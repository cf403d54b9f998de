/*
 * test_autoconfig.c - client settings from a config and the Mozilla
 * autoconfig XML (common/autoconfig.c): which listeners are listed and in
 * what order (pop3s before pop3, submission and smtps, inbound only when
 * nothing else), their socket types with and without TLS, the address's
 * domain, bad addresses refused, and every value escaped in the document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "autoconfig.h"

static void
listen(struct config *cfg, const char *spec, enum listen_role role)
{
	char err[128];
	struct listen_spec *ls;
	bool pop3 = role == ROLE_POP3 || role == ROLE_POP3S;

	ls = pop3 ? &cfg->pop3_listen[cfg->pop3_nlisten++] : &cfg->smtp_listen[cfg->smtp_nlisten++];
	assert_int_equal(config_parse_listen(spec, role, ls, err, sizeof(err)), 0);
}

static void
test_plain(void **state)
{
	static struct config cfg;
	struct autoconfig ac;

	(void)state;
	config_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.lab.test");
	listen(&cfg, "127.0.0.1:2525", ROLE_INBOUND);
	listen(&cfg, "127.0.0.1:1110", ROLE_POP3);
	assert_int_equal(autoconfig_from_config(&cfg, "Ana@Lab.Test", &ac), 0);
	assert_string_equal(ac.domain, "lab.test");
	assert_int_equal(ac.nin, 1);
	assert_string_equal(ac.in[0].port, "1110");
	assert_string_equal(ac.in[0].socket, "plain");
	assert_string_equal(ac.in[0].host, "mx.lab.test");
	/* no submission or smtps: the inbound listener is all there is */
	assert_int_equal(ac.nout, 1);
	assert_string_equal(ac.out[0].port, "2525");
	/* no address: the host name is the domain */
	assert_int_equal(autoconfig_from_config(&cfg, NULL, &ac), 0);
	assert_string_equal(ac.domain, "mx.lab.test");
}

static void
test_tls_order(void **state)
{
	static struct config cfg;
	struct autoconfig ac;

	(void)state;
	config_defaults(&cfg);
	snprintf(cfg.tls_cert, sizeof(cfg.tls_cert), "/x/cert.pem");
	listen(&cfg, "0.0.0.0:25", ROLE_INBOUND);
	listen(&cfg, "0.0.0.0:587 submission", ROLE_INBOUND);
	listen(&cfg, "0.0.0.0:465 smtps", ROLE_INBOUND);
	listen(&cfg, "0.0.0.0:110", ROLE_POP3);
	listen(&cfg, "0.0.0.0:995 pop3s", ROLE_POP3);
	listen(&cfg, "[::]:995 pop3s", ROLE_POP3);	/* same port: listed once */
	assert_int_equal(autoconfig_from_config(&cfg, "bob@lab.test", &ac), 0);
	assert_int_equal(ac.nin, 2);
	assert_string_equal(ac.in[0].port, "995");
	assert_string_equal(ac.in[0].socket, "SSL");
	assert_string_equal(ac.in[1].port, "110");
	assert_string_equal(ac.in[1].socket, "STARTTLS");
	assert_int_equal(ac.nout, 2);
	assert_string_equal(ac.out[0].port, "587");
	assert_string_equal(ac.out[0].socket, "STARTTLS");
	assert_string_equal(ac.out[1].port, "465");
	assert_string_equal(ac.out[1].socket, "SSL");
}

static void
test_bad_address(void **state)
{
	static struct config cfg;
	struct autoconfig ac;
	static const char *const bad[] = { "noat", "@lab.test", "ana@", "ana@lab<x>.test",
	    "ana@lab test", "ana@\"x\"" };
	size_t i;

	(void)state;
	config_defaults(&cfg);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(autoconfig_from_config(&cfg, bad[i], &ac), -1);
}

static void
test_xml(void **state)
{
	static struct config cfg;
	struct autoconfig ac;
	struct buf b;

	(void)state;
	config_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.lab.test");
	listen(&cfg, "127.0.0.1:587 submission", ROLE_INBOUND);
	listen(&cfg, "127.0.0.1:995 pop3s", ROLE_POP3);
	assert_int_equal(autoconfig_from_config(&cfg, "ana@lab.test", &ac), 0);
	/* a host name that needs escaping (never from a valid config, but the
	 * writer must not trust it) */
	snprintf(ac.in[0].host, sizeof(ac.in[0].host), "a<b>&c");
	buf_init(&b, 1 << 16);
	assert_int_equal(autoconfig_xml(&ac, &b), 0);
	assert_non_null(strstr(b.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<clientConfig version=\"1.1\">\n  <emailProvider id=\"lab.test\">\n"
	    "    <domain>lab.test</domain>\n"));
	assert_non_null(strstr(b.data, "    <incomingServer type=\"pop3\">\n"
	    "      <hostname>a&lt;b&gt;&amp;c</hostname>\n      <port>995</port>\n"
	    "      <socketType>SSL</socketType>\n      <username>%EMAILLOCALPART%</username>\n"
	    "      <authentication>password-cleartext</authentication>\n    </incomingServer>\n"));
	assert_non_null(strstr(b.data, "    <outgoingServer type=\"smtp\">\n"
	    "      <hostname>mx.lab.test</hostname>\n      <port>587</port>\n"
	    "      <socketType>plain</socketType>\n"));
	assert_non_null(strstr(b.data, "</emailProvider>\n</clientConfig>\n"));
	buf_free(&b);
	/* a full buffer is refused */
	buf_init(&b, 64);
	assert_int_equal(autoconfig_xml(&ac, &b), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_tls_order),
		cmocka_unit_test(test_bad_address),
		cmocka_unit_test(test_xml),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
