/*
 * test_clientconf.c - mailcli's connection settings: HOST[:PORT] parsing
 * (names, IPv4, bracketed and bare IPv6, bad ports), --tls names, the order
 * defaults < config file < environment < flags, config file errors, and
 * ~/.netrc lookups (machine + login, default entry, macdef skipped).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "clientconf.h"

static char tmpdir[512];

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

static void
clean_env(void)
{
	unsetenv("MAILCLI_SERVER");
	unsetenv("MAILCLI_USER");
	unsetenv("MAILCLI_TLS");
	unsetenv("MAILCLI_PASSWORD");
	unsetenv("MAILCLI_CONFIG");
	unsetenv("NETRC");
	setenv("HOME", tmpdir, 1);
	setenv("XDG_CONFIG_HOME", tmpdir, 1);	/* no mailcli/config below it */
}

static const struct {
	const char *in;
	int	 ret;
	const char *host, *port;
} servers[] = {
	{ "localhost", 0, "localhost", "2525" },
	{ "mx.lab.test:587", 0, "mx.lab.test", "587" },
	{ "127.0.0.1:25", 0, "127.0.0.1", "25" },
	{ "[::1]:1110", 0, "::1", "1110" },
	{ "[::1]", 0, "::1", "2525" },
	{ "::1", 0, "::1", "2525" },			/* bare IPv6: no port */
	{ "fe80::1:25", 0, "fe80::1:25", "2525" },	/* still an address, not a port */
	{ "host:65535", 0, "host", "65535" },
	{ "host:", -1, NULL, NULL },
	{ "host:0", -1, NULL, NULL },
	{ "host:65536", -1, NULL, NULL },
	{ "host:25x", -1, NULL, NULL },
	{ "host:-1", -1, NULL, NULL },
	{ ":25", -1, NULL, NULL },
	{ "", -1, NULL, NULL },
	{ "[::1", -1, NULL, NULL },
	{ "[::1]x", -1, NULL, NULL },
	{ "[]:25", -1, NULL, NULL },
	{ "a b:25", -1, NULL, NULL },
	{ "a/b", -1, NULL, NULL },
	{ "host\r\n:25", -1, NULL, NULL },
};

static void
test_parse_server(void **state)
{
	char host[256], port[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
		int r = clientconf_parse_server(servers[i].in, "2525", host, sizeof(host),
		    port, sizeof(port));
		if (r != servers[i].ret)
			fail_msg("'%s': returned %d, wanted %d", servers[i].in, r, servers[i].ret);
		if (r == 0) {
			assert_string_equal(host, servers[i].host);
			assert_string_equal(port, servers[i].port);
		}
	}
	/* A host name longer than the buffer is refused, not cut. */
	{
		char longname[300];
		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_int_equal(clientconf_parse_server(longname, "25", host, sizeof(host),
		    port, sizeof(port)), -1);
	}
}

static void
test_parse_tls(void **state)
{
	static const struct { const char *in; int ret; enum clientconf_tls want; } t[] = {
		{ "required", 0, CLIENTCONF_TLS_REQUIRED },
		{ "REQUIRED", 0, CLIENTCONF_TLS_REQUIRED },
		{ "opportunistic", 0, CLIENTCONF_TLS_OPPORTUNISTIC },
		{ "off", 0, CLIENTCONF_TLS_OFF },
		{ "implicit", 0, CLIENTCONF_TLS_IMPLICIT },
		{ "on", -1, 0 }, { "", -1, 0 }, { "requiredx", -1, 0 },
	};
	enum clientconf_tls v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		v = CLIENTCONF_TLS_OFF;
		assert_int_equal(clientconf_parse_tls(t[i].in, &v), t[i].ret);
		if (t[i].ret == 0) {
			assert_int_equal(v, t[i].want);
			assert_string_equal(clientconf_tls_name(v), t[i].in[0] == 'R' ?
			    "required" : t[i].in);
		}
	}
}

static void
test_defaults(void **state)
{
	struct clientconf c;
	char err[512];

	(void)state;
	clean_env();
	assert_int_equal(clientconf_init(&c, CLIENTCONF_SMTP, err, sizeof(err)), 0);
	assert_string_equal(c.host, "localhost");
	assert_string_equal(c.port, "2525");
	assert_int_equal(c.tls, CLIENTCONF_TLS_OPPORTUNISTIC);
	assert_string_equal(c.user, "");
	assert_int_equal(clientconf_init(&c, CLIENTCONF_POP3, err, sizeof(err)), 0);
	assert_string_equal(c.port, "1110");
}

static void
test_precedence(void **state)
{
	struct clientconf c;
	char err[512], path[600];
	char *argv[] = { "x", "--server", "flag.test:26", "--tls=off", "--user", "carol",
	    "--insecure", "--trace-body", "--timeout", "7", "--cafile=/ca.pem", "--other" };
	int argc = (int)(sizeof(argv) / sizeof(argv[0])), i, r;

	(void)state;
	clean_env();
	snprintf(path, sizeof(path), "%s/config-prec", tmpdir);
	setenv("MAILCLI_CONFIG", path, 1);
	/* Top-level keys apply to both protocols; [smtp] and [pop3] override them. */
	write_file(path, "server = top.test\nuser = top\ntls = required\n"
	    "[smtp]\nserver = smtp.test:587\nuser = ana\n[pop3]\nserver = pop.test\n");
	assert_int_equal(clientconf_init(&c, CLIENTCONF_SMTP, err, sizeof(err)), 0);
	assert_string_equal(c.host, "smtp.test");
	assert_string_equal(c.port, "587");
	assert_string_equal(c.user, "ana");
	assert_int_equal(c.tls, CLIENTCONF_TLS_REQUIRED);
	assert_int_equal(clientconf_init(&c, CLIENTCONF_POP3, err, sizeof(err)), 0);
	assert_string_equal(c.host, "pop.test");
	assert_string_equal(c.port, "1110");
	assert_string_equal(c.user, "top");

	/* The environment beats the file. */
	setenv("MAILCLI_SERVER", "env.test:2000", 1);
	setenv("MAILCLI_USER", "bob", 1);
	setenv("MAILCLI_TLS", "opportunistic", 1);
	assert_int_equal(clientconf_init(&c, CLIENTCONF_SMTP, err, sizeof(err)), 0);
	assert_string_equal(c.host, "env.test");
	assert_string_equal(c.port, "2000");
	assert_string_equal(c.user, "bob");
	assert_int_equal(c.tls, CLIENTCONF_TLS_OPPORTUNISTIC);

	/* Flags beat the environment; unknown options are left to the caller. */
	for (i = 1; i < argc; i++) {
		r = clientconf_parse_arg(&c, argc, argv, &i, err, sizeof(err));
		if (strcmp(argv[i], "--other") == 0)
			assert_int_equal(r, 0);
		else
			assert_int_equal(r, 1);
	}
	assert_string_equal(c.host, "flag.test");
	assert_string_equal(c.port, "26");
	assert_string_equal(c.user, "carol");
	assert_int_equal(c.tls, CLIENTCONF_TLS_OFF);
	assert_true(c.insecure && c.trace && c.trace_body);
	assert_int_equal(c.timeout, 7);
	assert_string_equal(c.cafile, "/ca.pem");
	clean_env();
}

static void
test_implicit_tls_default_port(void **state)
{
	struct clientconf c;
	char err[512];
	char *a1[] = { "x", "--server", "mx.test", "--tls", "implicit" };
	char *a2[] = { "x", "--tls", "implicit", "--server", "mx.test" };
	char *a3[] = { "x", "--server", "mx.test:2465", "--tls", "implicit" };
	char **argvs[] = { a1, a2, a3 };
	const char *want[] = { "465", "465", "2465" };
	int i, k;

	(void)state;
	for (k = 0; k < 3; k++) {
		clean_env();
		assert_int_equal(clientconf_init(&c, CLIENTCONF_SMTP, err, sizeof(err)), 0);
		for (i = 1; i < 5; i++)
			assert_int_equal(clientconf_parse_arg(&c, 5, argvs[k], &i, err, sizeof(err)), 1);
		assert_string_equal(c.port, want[k]);
	}
	clean_env();
	setenv("MAILCLI_SERVER", "pop.test", 1);
	setenv("MAILCLI_TLS", "implicit", 1);
	assert_int_equal(clientconf_init(&c, CLIENTCONF_POP3, err, sizeof(err)), 0);
	assert_string_equal(c.port, "995");
	clean_env();
}

static void
test_bad_settings(void **state)
{
	static const struct { const char *file, *env_tls, *want; } t[] = {
		{ "tls = sometimes\n", NULL, "tls must be" },
		{ "server = host:99999\n", NULL, "bad server" },
		{ "colour = blue\n", NULL, "unknown setting 'colour'" },
		{ "[imap]\nserver = x\n", NULL, "unknown section [imap]" },
		{ "timeout = 0\n", NULL, "timeout must be" },
		{ "this is not ini\n", NULL, ":1: syntax error" },
		{ "", "maybe", "MAILCLI_TLS" },
	};
	struct clientconf c;
	char err[512], path[600];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		clean_env();
		snprintf(path, sizeof(path), "%s/config-bad", tmpdir);
		write_file(path, t[i].file);
		setenv("MAILCLI_CONFIG", path, 1);
		if (t[i].env_tls)
			setenv("MAILCLI_TLS", t[i].env_tls, 1);
		err[0] = '\0';
		assert_int_equal(clientconf_init(&c, CLIENTCONF_SMTP, err, sizeof(err)), -1);
		if (strstr(err, t[i].want) == NULL)
			fail_msg("case %zu: error '%s' does not say '%s'", i, err, t[i].want);
	}
	/* MAILCLI_CONFIG naming a missing file is an error; a missing default file is not. */
	clean_env();
	setenv("MAILCLI_CONFIG", "/nonexistent/mailcli.conf", 1);
	assert_int_equal(clientconf_init(&c, CLIENTCONF_SMTP, err, sizeof(err)), -1);
	clean_env();
	assert_int_equal(clientconf_init(&c, CLIENTCONF_SMTP, err, sizeof(err)), 0);
}

static void
test_netrc(void **state)
{
	static const struct { const char *host, *user, *want_pass, *want_user; } t[] = {
		{ "mail.test", "ana", "ana-pw", "ana" },
		{ "mail.test", "bob", "bob-pw", "bob" },	/* second entry for the host */
		{ "mail.test", "", "ana-pw", "ana" },		/* no user: first entry, its login */
		{ "MAIL.TEST", "bob", "bob-pw", "bob" },	/* host names compare without case */
		{ "other.test", "zed", "fallback", "zed" },	/* default entry */
		{ "macro.test", "ana", "fallback", "ana" },	/* inside a macdef: not an entry */
	};
	struct clientconf c;
	char err[512], path[600];
	size_t i;

	(void)state;
	snprintf(path, sizeof(path), "%s/netrc", tmpdir);
	write_file(path,
	    "machine mail.test login ana password ana-pw\n"
	    "machine mail.test\n  login bob\n  password bob-pw\n"
	    "macdef init\nmachine macro.test login ana password wrong\n\n"
	    "default password fallback\n");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		clean_env();
		setenv("NETRC", path, 1);
		assert_int_equal(clientconf_init(&c, CLIENTCONF_POP3, err, sizeof(err)), 0);
		snprintf(c.host, sizeof(c.host), "%s", t[i].host);
		snprintf(c.user, sizeof(c.user), "%s", t[i].user);
		if (clientconf_password(&c, err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		assert_string_equal(c.password, t[i].want_pass);
		assert_string_equal(c.user, t[i].want_user);
		clientconf_free(&c);
		assert_string_equal(c.password, "");
	}
	/* MAILCLI_PASSWORD comes before ~/.netrc. */
	clean_env();
	setenv("NETRC", path, 1);
	setenv("MAILCLI_PASSWORD", "from-env", 1);
	assert_int_equal(clientconf_init(&c, CLIENTCONF_POP3, err, sizeof(err)), 0);
	snprintf(c.host, sizeof(c.host), "mail.test");
	assert_int_equal(clientconf_password(&c, err, sizeof(err)), 0);
	assert_string_equal(c.password, "from-env");
	clean_env();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_server),
		cmocka_unit_test(test_parse_tls),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_implicit_tls_default_port),
		cmocka_unit_test(test_bad_settings),
		cmocka_unit_test(test_netrc),
	};
	const char *base = getenv("CORREIO_TEST_TMP");

	snprintf(tmpdir, sizeof(tmpdir), "%s/clientconf-XXXXXX", base && *base ? base : "/tmp");
	if (base && *base)
		mkdir(base, 0700);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
