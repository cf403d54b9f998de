/*
 * test_config.c - correio.conf: a table of good files (and the values they
 * give) and bad files (and the exact "FILE:LINE: [section] key: reason"
 * they produce); listen specs; limits by name and range; trusted networks
 * and loopback checks on real socket addresses.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "store.h"

static char tmpdir[512];

static int
group_setup(void **state)
{
	const char *base = getenv("CORREIO_TEST_TMP");

	(void)state;
	if (base == NULL || *base == '\0')
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(tmpdir, sizeof(tmpdir), "%s/config-XXXXXX", base);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write text to a fresh file; its path goes to path. */
static void
write_conf(const char *text, char *path, size_t len)
{
	static int n;
	FILE *fp;

	snprintf(path, len, "%s/c%d.conf", tmpdir, n++);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	fclose(fp);
}

static int
load(const char *text, struct config *cfg, char *path, size_t plen, char *err, size_t elen)
{
	write_conf(text, path, plen);
	config_defaults(cfg);
	return config_load(cfg, path, err, elen);
}

static void
test_defaults(void **state)
{
	struct config cfg;
	long def, min, max;
	const char *desc;

	(void)state;
	config_defaults(&cfg);
	assert_string_equal(cfg.store_path, "var/correio.db");
	assert_false(cfg.store_is_url);
	assert_string_equal(cfg.store_spool, "");
	assert_false(cfg.transcripts);
	assert_int_equal(cfg.vrfy_code, 252);
	assert_int_equal(cfg.smtp_nlisten, 0);
	assert_int_equal(cfg.pop3_nlisten, 0);
	assert_false(cfg.smtp_plaintext_auth);
	assert_false(cfg.pop3_plaintext_auth);
	assert_true(cfg.hostname[0] != '\0');
	assert_int_equal(cfg.nretry, 5);
	assert_int_equal(cfg.retry_schedule[0], 60);
	assert_int_equal(cfg.retry_schedule[4], 3600);
	assert_int_equal(cfg.max_queue_age, 432000);
	assert_int_equal(cfg.smarthost.host[0], '\0');
	assert_int_equal(cfg.limits.max_message_size, 26214400);
	assert_int_equal(cfg.limits.max_recipients, 100);
	assert_int_equal(cfg.limits.smtp_line_max, 512);
	assert_int_equal(cfg.limits.pop3_lock_ttl, 1800);
	assert_int_equal(config_limit_info("max_recipients", &def, &min, &max, &desc), 0);
	assert_int_equal(def, 100);
	assert_int_equal(min, 100);
	assert_true(max >= min);
	assert_non_null(strstr(desc, "RCPT"));
	assert_int_equal(config_limit_info("no_such_limit", &def, NULL, NULL, NULL), -1);
	/* every limit's default lies in its range */
#define CHECK_LIMIT(name, d, lo, hi, text) \
	assert_true((d) >= (lo) && (d) <= (hi)); assert_int_equal(cfg.limits.name, d);
	CORREIO_LIMITS(CHECK_LIMIT)
#undef CHECK_LIMIT
}

static void
test_good_file(void **state)
{
	static const char text[] =
	    "# correio.conf\n"
	    "; comments both ways\n"
	    "[store]\n"
	    "path = /var/lib/correio/store.db\n"
	    "transcripts = yes\n"
	    "\n"
	    "[smtpd]\n"
	    "hostname = mx.lab.test\n"
	    "listen = 127.0.0.1:2525\n"
	    "listen = [::1]:2587 submission\n"
	    "listen = 0.0.0.0:465   SMTPS\n"
	    "vrfy = 550\n"
	    "plaintext_auth = on\n"
	    "user = correio\n"
	    "[pop3d]\n"
	    "listen = 127.0.0.1:1110\n"
	    "listen = [::]:995 pop3s\n"
	    "plaintext_auth = TRUE\n"
	    "user = pop\n"
	    "[relay]\n"
	    "route = example.org 10.1.2.3:2525\n"
	    "route = lab.example [2001:db8::1]:25\n"
	    "route = other.example mail.other.example\n"
	    "smarthost = smtp.uni.example:587\n"
	    "smarthost_starttls = no\n"
	    "smarthost_user = lab\n"
	    "smarthost_password = s3cret\n"
	    "trusted_networks = 10.0.0.0/8, 192.168.1.5 2001:db8::/32\n"
	    "retry_schedule = 30, 120,600\n"
	    "max_queue_age = 86400\n"
	    "[tls]\n"
	    "cert = /etc/correio/cert.pem\n"
	    "key = /etc/correio/key.pem\n"
	    "[limits]\n"
	    "max_message_size = 1048576\n"
	    "max_recipients = 200\n"
	    "pop3_lock_ttl = 60\n";
	struct config cfg;
	char path[600], err[2048];

	(void)state;
	if (load(text, &cfg, path, sizeof(path), err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	assert_string_equal(cfg.path, path);
	assert_string_equal(cfg.store_path, "/var/lib/correio/store.db");
	assert_true(cfg.transcripts);
	assert_string_equal(cfg.hostname, "mx.lab.test");
	assert_int_equal(cfg.smtp_nlisten, 3);
	assert_string_equal(cfg.smtp_listen[0].host, "127.0.0.1");
	assert_string_equal(cfg.smtp_listen[0].port, "2525");
	assert_int_equal(cfg.smtp_listen[0].role, ROLE_INBOUND);
	assert_string_equal(cfg.smtp_listen[1].host, "::1");
	assert_string_equal(cfg.smtp_listen[1].port, "2587");
	assert_int_equal(cfg.smtp_listen[1].role, ROLE_SUBMISSION);
	assert_int_equal(cfg.smtp_listen[2].role, ROLE_SMTPS);
	assert_int_equal(cfg.vrfy_code, 550);
	assert_true(cfg.smtp_plaintext_auth);
	assert_string_equal(cfg.user, "correio");
	assert_int_equal(cfg.pop3_nlisten, 2);
	assert_int_equal(cfg.pop3_listen[0].role, ROLE_POP3);
	assert_string_equal(cfg.pop3_listen[1].host, "::");
	assert_int_equal(cfg.pop3_listen[1].role, ROLE_POP3S);
	assert_true(cfg.pop3_plaintext_auth);
	assert_string_equal(cfg.pop3_user, "pop");
	assert_int_equal(cfg.nroutes, 3);
	assert_string_equal(cfg.routes[0].domain, "example.org");
	assert_string_equal(cfg.routes[0].host, "10.1.2.3");
	assert_string_equal(cfg.routes[0].port, "2525");
	assert_string_equal(cfg.routes[1].host, "2001:db8::1");
	assert_string_equal(cfg.routes[2].host, "mail.other.example");
	assert_string_equal(cfg.routes[2].port, "25");
	assert_string_equal(cfg.smarthost.host, "smtp.uni.example");
	assert_string_equal(cfg.smarthost.port, "587");
	assert_false(cfg.smarthost_starttls);
	assert_string_equal(cfg.smarthost_user, "lab");
	assert_string_equal(cfg.smarthost_password, "s3cret");
	assert_int_equal(cfg.ntrusted, 3);
	assert_int_equal(cfg.trusted[0].prefix, 8);
	assert_int_equal(cfg.trusted[1].prefix, 32);
	assert_int_equal(cfg.trusted[2].prefix, 32);
	assert_int_equal(cfg.nretry, 3);
	assert_int_equal(cfg.retry_schedule[0], 30);
	assert_int_equal(cfg.retry_schedule[2], 600);
	assert_int_equal(cfg.max_queue_age, 86400);
	assert_string_equal(cfg.tls_cert, "/etc/correio/cert.pem");
	assert_string_equal(cfg.tls_key, "/etc/correio/key.pem");
	assert_int_equal(cfg.limits.max_message_size, 1048576);
	assert_int_equal(cfg.limits.max_recipients, 200);
	assert_int_equal(cfg.limits.pop3_lock_ttl, 60);
	assert_int_equal(cfg.limits.max_errors, 20);	/* untouched default */

	/* a file saved by a Windows editor: BOM and CRLF line ends */
	if (load("\xEF\xBB\xBF[store]\r\npath = x.db\r\ntranscripts = On ; comment\r\n",
	    &cfg, path, sizeof(path), err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	assert_string_equal(cfg.store_path, "x.db");
	assert_true(cfg.transcripts);

	/* indented keys are keys (not continuation lines of the value above) */
	if (load("[store]\npath = a.db\n    transcripts = yes\n\t[smtpd]\n\tvrfy = 502\n",
	    &cfg, path, sizeof(path), err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	assert_string_equal(cfg.store_path, "a.db");
	assert_true(cfg.transcripts);
	assert_int_equal(cfg.vrfy_code, 502);
}

static void
test_bad_files(void **state)
{
	static const struct {
		const char *text;
		const char *want;	/* after "FILE:" */
	} cases[] = {
		{ "[store]\nfrobnicate = 1\n", "2: [store] frobnicate: unknown key" },
		{ "[stor]\npath = x\n", "1: [stor]: unknown section" },
		{ "[store]\ntranscripts = maybe\n", "2: [store] transcripts: 'maybe' is not a boolean" },
		{ "[store]\npath =\n", "2: [store] path: empty path" },
		{ "path = x\n", "1: path: key outside of any [section]" },
		{ "[smtpd]\n\n\nvrfy = 251\n", "4: [smtpd] vrfy: '251' must be 252, 550 or 502" },
		{ "[smtpd]\nhostname = bad host\n", "2: [smtpd] hostname: 'bad host' is not a host name" },
		{ "[smtpd]\nlisten = 127.0.0.1\n", "2: [smtpd] listen: missing ':PORT'" },
		{ "[smtpd]\nlisten = 127.0.0.1:99999\n", "2: [smtpd] listen: bad port '99999'" },
		{ "[smtpd]\nlisten = ::1:25\n", "2: [smtpd] listen: IPv6 addresses go in brackets" },
		{ "[smtpd]\nlisten = [::1:25\n", "2: [smtpd] listen: missing ']'" },
		{ "[smtpd]\nlisten = 127.0.0.1:25 pop3\n", "2: [smtpd] listen: unknown role 'pop3'" },
		{ "[smtpd]\nlisten = mail.example:25\n", "2: [smtpd] listen: 'mail.example' is not an IPv4" },
		{ "[pop3d]\nlisten = 127.0.0.1:110 submission\n", "2: [pop3d] listen: unknown role" },
		{ "[pop3d]\nplaintext_auth = 2\n", "2: [pop3d] plaintext_auth: '2' is not a boolean" },
		{ "[pop3d]\nhostname = x\n", "2: [pop3d] hostname: unknown key" },
		{ "[relay]\nroute = example.org\n", "2: [relay] route: expected DOMAIN HOST:PORT" },
		{ "[relay]\nroute = example.org host:0\n", "2: [relay] route: bad port '0'" },
		{ "[relay]\nsmarthost = :25\n", "2: [relay] smarthost: missing or too long host" },
		{ "[relay]\ntrusted_networks = 10.0.0.0/33\n", "2: [relay] trusted_networks: bad prefix length" },
		{ "[relay]\ntrusted_networks = 10.0.0/8\n", "2: [relay] trusted_networks: '10.0.0' is not an IP address" },
		{ "[relay]\nretry_schedule = 60, soon\n", "2: [relay] retry_schedule: 'soon' is not a number" },
		{ "[relay]\nretry_schedule = 0\n", "2: [relay] retry_schedule: '0' is not a number" },
		{ "[relay]\nmax_queue_age = 5\n", "2: [relay] max_queue_age: '5' out of range" },
		{ "[relay]\nsmarthost_starttls = sometimes\n", "2: [relay] smarthost_starttls: 'sometimes' is not a boolean" },
		{ "[tls]\ncert = /x.pem\n", "2: [tls] key: cert and key must be given together" },
		{ "[tls]\nca = /x.pem\n", "2: [tls] ca: unknown key" },
		{ "[limits]\nmax_recipients = 99\n", "2: [limits] max_recipients: 99 out of range (100-100000)" },
		{ "[limits]\nmax_message_size = 2147483648\n", "2: [limits] max_message_size: 2147483648 out of range" },
		{ "[limits]\nmax_errors = 10k\n", "2: [limits] max_errors: '10k' is not a whole number" },
		{ "[limits]\nmax_errors = \n", "2: [limits] max_errors: '' is not a whole number" },
		{ "[limits]\nmax_beers = 3\n", "2: [limits] max_beers: unknown limit" },
		{ "[limits]\npop3_idle_timeout = 60\n", "2: [limits] pop3_idle_timeout: 60 out of range (600-86400)" },
		{ "\xEF\xBB\xBF[stor]\npath = x\n", "1: [stor]: unknown section" },
		{ "[store]\r\npath = x\r\nbogus = 1\r\n", "3: [store] bogus: unknown key" },
		{ "[ store ]\npath = x\n", "1: [ store ]: unknown section" },
		{ "[store]\nthis line has no equals sign\n", "2: syntax error" },
		/* the store: a file (path) or a PostgreSQL database (url), never a password */
		{ "[store]\nurl = postgresql://correio:s3cret@db.lab.test/correio\n",
		  "2: [store] url: a password does not belong in the store's URL: put it in a libpq "
		  "passfile (~/.pgpass of the user the programs run as, or the file PGPASSFILE names)" },
		{ "[store]\nurl = postgres://correio:@db.lab.test/correio\n",
		  "2: [store] url: a password does not belong" },
		{ "[store]\nurl = postgresql://db.lab.test/correio?sslmode=require&password=s3cret\n",
		  "2: [store] url: a password does not belong" },
		{ "[store]\nurl = postgresql://db.lab.test/correio?pass%77ord=s3cret\n",
		  "2: [store] url: a password does not belong" },
		{ "[store]\nurl = /var/lib/correio/correio.db\n",
		  "2: [store] url: '/var/lib/correio/correio.db' is not a postgresql:// URL "
		  "(a SQLite store is [store] path)" },
		{ "[store]\nurl = PostgreSQL://db/correio\n", "2: [store] url: 'PostgreSQL://db/correio' is not" },
		{ "[store]\nurl =\n", "2: [store] url: empty URL" },
		{ "[store]\npath = postgresql://db.lab.test/correio\n",
		  "2: [store] path: a URL is not a path: a PostgreSQL store is [store] url" },
		{ "[store]\nspool =\n", "2: [store] spool: empty path" },
		{ "[store]\npath = a.db\ntranscripts = yes\nurl = postgresql://db/correio\n",
		  "4: [store] url: both path (line 2) and url (line 4) are set: the store is a SQLite "
		  "file (path) or a PostgreSQL database (url); keep one" },
		{ "[store]\nurl = postgresql://db/correio\n[smtpd]\nvrfy = 252\n[store]\npath = a.db\n",
		  "6: [store] path: both path (line 6) and url (line 2) are set" },
		{ "[store]\n[smtpd\n", "2: syntax error" },
	};
	struct config cfg;
	char path[600], err[2048], want[800];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = load(cases[i].text, &cfg, path, sizeof(path), err, sizeof(err));

		snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
		if (rc != -1)
			fail_msg("case %zu: accepted %s", i, cases[i].text);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err, want);
		if (strstr(err, "s3cret") != NULL)	/* an error never repeats a password */
			fail_msg("case %zu: password in the error: %s", i, err);
	}
}

static void
test_several_errors(void **state)
{
	struct config cfg;
	char path[600], err[2048], line2[700], line4[700];

	(void)state;
	assert_int_equal(load("[smtpd]\nvrfy = 1\n[nope]\nx = 1\n[limits]\nmax_errors = 0\n",
	    &cfg, path, sizeof(path), err, sizeof(err)), -1);
	/* every error, one per line, the unknown section reported once */
	snprintf(line2, sizeof(line2), "%s:2: [smtpd] vrfy:", path);
	snprintf(line4, sizeof(line4), "%s:3: [nope]: unknown section", path);
	assert_non_null(strstr(err, line2));
	assert_non_null(strstr(err, line4));
	assert_non_null(strstr(err, ":6: [limits] max_errors: 0 out of range"));
	assert_null(strstr(err, "[nope] x"));
	assert_non_null(strchr(err, '\n'));

	/* a missing file */
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, "/nonexistent/correio.conf", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/correio.conf: No such file"));
}

static void
test_long_line(void **state)
{
	struct config cfg;
	char path[600], err[2048], *text;
	size_t n = 5000;

	(void)state;
	text = malloc(n + 64);
	assert_non_null(text);
	snprintf(text, n + 64, "[smtpd]\nuser = ");
	memset(text + strlen(text), 'a', n);
	text[15 + n] = '\0';
	strncat(text, "\nvrfy = 502\n", 63);
	assert_int_equal(load(text, &cfg, path, sizeof(path), err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: line longer than"));
	assert_int_equal(cfg.vrfy_code, 502);	/* the next line is still read */
	assert_string_equal(cfg.user, "");
	free(text);

	/* a value longer than its field */
	assert_int_equal(load("[smtpd]\nuser = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    &cfg, path, sizeof(path), err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: [smtpd] user: value longer than 63"));
}

static void
test_listen_replaces(void **state)
{
	struct config cfg;
	char path[600], err[2048], text[4096];
	size_t n = 0;
	int i;

	(void)state;
	n += (size_t)snprintf(text + n, sizeof(text) - n, "[smtpd]\n");
	for (i = 0; i < CONFIG_MAX_LISTEN + 1; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "listen = 127.0.0.1:%d\n", 2000 + i);
	assert_int_equal(load(text, &cfg, path, sizeof(path), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 16 listen lines"));
	assert_int_equal(cfg.smtp_nlisten, CONFIG_MAX_LISTEN);
}

static void
test_parse_listen(void **state)
{
	static const struct {
		const char *spec;
		enum listen_role def;
		int rc;
		const char *host, *port;
		enum listen_role role;
	} cases[] = {
		{ "127.0.0.1:2525", ROLE_INBOUND, 0, "127.0.0.1", "2525", ROLE_INBOUND },
		{ "  127.0.0.1:2525   submission ", ROLE_INBOUND, 0, "127.0.0.1", "2525", ROLE_SUBMISSION },
		{ "[::1]:25 smtps", ROLE_INBOUND, 0, "::1", "25", ROLE_SMTPS },
		{ "[::]:110", ROLE_POP3, 0, "::", "110", ROLE_POP3 },
		{ "0.0.0.0:995 pop3s", ROLE_POP3, 0, "0.0.0.0", "995", ROLE_POP3S },
		{ "*:25", ROLE_INBOUND, 0, "0.0.0.0", "25", ROLE_INBOUND },
		{ "localhost:25", ROLE_INBOUND, 0, "127.0.0.1", "25", ROLE_INBOUND },
		{ "127.0.0.1:025", ROLE_INBOUND, 0, "127.0.0.1", "25", ROLE_INBOUND },
		{ "127.0.0.1:2525 inbound extra", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "127.0.0.1:2525 pop3", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "127.0.0.1:-1", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "127.0.0.1:", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "127.0.0.1:65536", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "256.0.0.1:25", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "[127.0.0.1]:25", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "[::1]25", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "", ROLE_INBOUND, -1, NULL, NULL, 0 },
		{ "   ", ROLE_POP3, -1, NULL, NULL, 0 },
	};
	struct listen_spec ls;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = config_parse_listen(cases[i].spec, cases[i].def, &ls, err, sizeof(err));

		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d want %d (%s)", cases[i].spec, rc, cases[i].rc, err);
		if (rc == 0) {
			assert_string_equal(ls.host, cases[i].host);
			assert_string_equal(ls.port, cases[i].port);
			assert_int_equal(ls.role, cases[i].role);
		} else
			assert_true(err[0] != '\0');
	}
	assert_string_equal(config_role_name(ROLE_SUBMISSION), "submission");
	assert_string_equal(config_role_name(ROLE_POP3S), "pop3s");
}

static void
sa4(struct sockaddr_in *s, const char *a)
{
	memset(s, 0, sizeof(*s));
	s->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, a, &s->sin_addr), 1);
}

static void
sa6(struct sockaddr_in6 *s, const char *a)
{
	memset(s, 0, sizeof(*s));
	s->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &s->sin6_addr), 1);
}

static void
test_addresses(void **state)
{
	struct config cfg;
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	char path[600], err[1024];

	(void)state;
	sa4(&s4, "127.0.0.1");
	assert_true(config_is_loopback(&s4));
	sa4(&s4, "127.255.3.4");
	assert_true(config_is_loopback(&s4));
	sa4(&s4, "128.0.0.1");
	assert_false(config_is_loopback(&s4));
	sa6(&s6, "::1");
	assert_true(config_is_loopback(&s6));
	sa6(&s6, "::ffff:127.0.0.1");
	assert_true(config_is_loopback(&s6));
	sa6(&s6, "::2");
	assert_false(config_is_loopback(&s6));
	assert_false(config_is_loopback(NULL));

	assert_int_equal(load("[relay]\ntrusted_networks = 10.0.0.0/8, 192.168.1.0/25\n"
	    "trusted_networks = 2001:db8::/32 172.16.0.1\n", &cfg, path, sizeof(path), err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.ntrusted, 4);
	sa4(&s4, "10.200.1.1");
	assert_true(config_is_trusted(&cfg, &s4));
	sa4(&s4, "11.0.0.1");
	assert_false(config_is_trusted(&cfg, &s4));
	sa4(&s4, "192.168.1.127");
	assert_true(config_is_trusted(&cfg, &s4));
	sa4(&s4, "192.168.1.128");
	assert_false(config_is_trusted(&cfg, &s4));
	sa4(&s4, "172.16.0.1");
	assert_true(config_is_trusted(&cfg, &s4));
	sa4(&s4, "172.16.0.2");
	assert_false(config_is_trusted(&cfg, &s4));
	sa6(&s6, "::ffff:10.1.2.3");		/* v4-mapped matches the v4 network */
	assert_true(config_is_trusted(&cfg, &s6));
	sa6(&s6, "2001:db8:ffff::1");
	assert_true(config_is_trusted(&cfg, &s6));
	sa6(&s6, "2001:db9::1");
	assert_false(config_is_trusted(&cfg, &s6));
	/* loopback is not trusted unless listed */
	sa4(&s4, "127.0.0.1");
	assert_false(config_is_trusted(&cfg, &s4));
	assert_int_equal(load("[relay]\ntrusted_networks = 0.0.0.0/0\n", &cfg, path, sizeof(path),
	    err, sizeof(err)), 0);
	assert_true(config_is_trusted(&cfg, &s4));
}

/* docs/correio.conf.5 documents every section, key and limit with its
 * default, minimum and maximum (the table row "key|def|min|max"). */
static void
test_manual_complete(void **state)
{
	static const struct {
		const char *section, *key;
	} keys[] = {
		{ "store", "path" }, { "store", "url" }, { "store", "spool" },
		{ "store", "transcripts" },
		{ "smtpd", "hostname" }, { "smtpd", "listen" }, { "smtpd", "vrfy" },
		{ "smtpd", "plaintext_auth" }, { "smtpd", "user" },
		{ "pop3d", "listen" }, { "pop3d", "plaintext_auth" }, { "pop3d", "user" },
		{ "relay", "route" }, { "relay", "smarthost" }, { "relay", "smarthost_starttls" },
		{ "relay", "smarthost_user" }, { "relay", "smarthost_password" },
		{ "relay", "trusted_networks" }, { "relay", "retry_schedule" },
		{ "relay", "max_queue_age" },
		{ "tls", "cert" }, { "tls", "key" },
	};
	char path[1024], *text, *slash, want[256], *sec, *next;
	struct config cfg;
	FILE *fp;
	long size;
	size_t i;

	(void)state;
	/* __FILE__ is tests/unit/test_config.c under the source tree */
	snprintf(path, sizeof(path), "%s", __FILE__);
	for (i = 0; i < 3 && (slash = strrchr(path, '/')) != NULL; i++)
		*slash = '\0';
	if (i < 3)
		skip();
	strncat(path, "/docs/correio.conf.5", sizeof(path) - strlen(path) - 1);
	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)size + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(want, sizeof(want), "\n.SH [%s]\n", keys[i].section);
		sec = strstr(text, want);
		if (sec == NULL)
			fail_msg("section [%s] not documented", keys[i].section);
		next = strstr(sec + 1, "\n.SH ");
		snprintf(want, sizeof(want), "\n.BR %s ", keys[i].key);
		sec = strstr(sec, want);
		if (sec == NULL || (next != NULL && sec > next))
			fail_msg("[%s] %s not documented", keys[i].section, keys[i].key);
	}
	/* every key in the list above is a key the parser knows: feeding each
	 * one must not give "unknown key" */
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char conf[256], err[1024], cpath[600];

		snprintf(conf, sizeof(conf), "[%s]\n%s = \x01\n", keys[i].section, keys[i].key);
		load(conf, &cfg, cpath, sizeof(cpath), err, sizeof(err));
		if (strstr(err, "unknown key") != NULL)
			fail_msg("%s", err);
	}
#define DOC_LIMIT(name, d, lo, hi, desc) \
	snprintf(want, sizeof(want), "\n%s|%ld|%ld|%ld\n", #name, (long)(d), (long)(lo), (long)(hi)); \
	if (strstr(text, want) == NULL) \
		fail_msg("limit %s: row '%s' missing or wrong in correio.conf.5", #name, want + 1); \
	snprintf(want, sizeof(want), "\n.B %s\n", #name); \
	if (strstr(text, want) == NULL) \
		fail_msg("limit %s has no paragraph in correio.conf.5", #name);
	CORREIO_LIMITS(DOC_LIMIT)
#undef DOC_LIMIT
	free(text);
}

/* [store] url: a PostgreSQL store, named by a URI that goes to store_open()
 * as it is; the URI as logs show it; the spool smtpd uses beside either. */
static void
test_store_url(void **state)
{
	static const struct {
		const char *where;
		bool url;
	} kinds[] = {
		{ "postgresql://correio@db.lab.test:5432/correio", true },
		{ "postgres://db/correio", true },
		{ "postgresql://", true },
		{ "PostgreSQL://db/correio", false },	/* libpq's prefixes are lower case */
		{ "postgresql:/db/correio", false },
		{ "postgresqlx://db/correio", false },
		{ "var/correio.db", false },
		{ "/var/lib/correio/correio.db", false },
		{ "file:correio.db", false },
		{ "", false },
	};
	static const struct {
		const char *where, *shown;
	} shown[] = {
		{ "var/correio.db", "var/correio.db" },
		{ "postgresql://correio@db:5432/correio", "postgresql://correio@db:5432/correio" },
		{ "postgresql://correio:s3cret@db:5432/correio", "postgresql://correio@db:5432/correio" },
		{ "postgres://u:s3cret@[::1]:5432/c?pass%77ord=s3cret", "postgres://u@[::1]:5432/c" },
		{ "postgresql://db/c?sslmode=require&password=s3cret&connect_timeout=5",
		  "postgresql://db/c?sslmode=require&connect_timeout=5" },
		{ "postgresql://db/c?password=s3cret", "postgresql://db/c" },
		{ "postgresql://db/c?passwordx=1&&passfile=/etc/correio/pgpass",
		  "postgresql://db/c?passwordx=1&&passfile=/etc/correio/pgpass" },
		{ "postgresql://u:s3cret@db/c?passwordx=1&&password=s3cret&sslmode=require",
		  "postgresql://u@db/c?passwordx=1&sslmode=require" },
		{ "postgresql://", "postgresql://" },
		{ "postgresql://db/c?", "postgresql://db/c?" },	/* no password: as written */
		{ "postgresql://db/c?a=1&&b=2", "postgresql://db/c?a=1&&b=2" },
	};
	static struct config cfg;
	char path[600], err[2048], buf[256], msg[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (store_is_url(kinds[i].where) != kinds[i].url)
			fail_msg("store_is_url(\"%s\") != %d", kinds[i].where, kinds[i].url);
	for (i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		config_store_display(shown[i].where, buf, sizeof(buf));
		if (strcmp(buf, shown[i].shown) != 0)
			fail_msg("display of %s:\n got: %s\nwant: %s", shown[i].where, buf, shown[i].shown);
	}
	/* truncated, never past the buffer */
	assert_string_equal(config_store_display("postgresql://u:s3cret@db/c", buf, 16),
	    "postgresql://u@");

	/* the file: the URI as it is, the kind, the spool */
	if (load("[store]\nurl = postgresql://correio@db.lab.test:5432/correio\n"
	    "spool = /var/spool/correio\ntranscripts = yes\n",
	    &cfg, path, sizeof(path), err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	assert_string_equal(cfg.store_path, "postgresql://correio@db.lab.test:5432/correio");
	assert_true(cfg.store_is_url);
	assert_string_equal(cfg.store_spool, "/var/spool/correio");
	assert_true(cfg.transcripts);
	config_store_spool(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "/var/spool/correio");
	/* url given twice: the last one, as for every other key */
	if (load("[store]\nurl = postgres://a/x\nurl = postgres://b/y\n",
	    &cfg, path, sizeof(path), err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	assert_string_equal(cfg.store_path, "postgres://b/y");
	assert_true(cfg.store_is_url);
	/* a URI store's spool defaults to var/; a file's to its directory */
	config_store_spool(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, CONFIG_SPOOL_DEFAULT);
	assert_string_equal(buf, "var");
	config_store_open_error(&cfg, "connection refused", msg, sizeof(msg));
	assert_string_equal(msg, "cannot reach the store's database at postgres://b/y: "
	    "connection refused");
	if (load("[store]\npath = /var/lib/correio/correio.db\n",
	    &cfg, path, sizeof(path), err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	assert_false(cfg.store_is_url);
	config_store_spool(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "/var/lib/correio");
	config_store_open_error(&cfg, "not a correio store", msg, sizeof(msg));
	assert_string_equal(msg, "store /var/lib/correio/correio.db: not a correio store");
	config_defaults(&cfg);
	config_store_spool(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "var");
	assert_int_equal(config_set_store(&cfg, "correio.db", err, sizeof(err)), 0);
	config_store_spool(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, ".");
	snprintf(cfg.store_spool, sizeof(cfg.store_spool), "/srv/spool");
	config_store_spool(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "/srv/spool");	/* [store] spool for a file store too */

	/* config_set_store(): either kind, never a password, kept as given */
	config_defaults(&cfg);
	assert_int_equal(config_set_store(&cfg, "postgresql://u@db/c?sslmode=verify-full",
	    err, sizeof(err)), 0);
	assert_true(cfg.store_is_url);
	assert_string_equal(cfg.store_path, "postgresql://u@db/c?sslmode=verify-full");
	assert_int_equal(config_set_store(&cfg, "postgresql://u:s3cret@db/c", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "PGPASSFILE"));
	assert_null(strstr(err, "s3cret"));
	assert_true(cfg.store_is_url);		/* unchanged by the refusal */
	assert_string_equal(cfg.store_path, "postgresql://u@db/c?sslmode=verify-full");
	assert_int_equal(config_set_store(&cfg, "/srv/correio.db", err, sizeof(err)), 0);
	assert_false(cfg.store_is_url);
	assert_string_equal(cfg.store_path, "/srv/correio.db");
}

/* The daemons' shared command line. */
static int usage_calls;
static void
count_usage(FILE *f)
{
	(void)f;
	usage_calls++;
}

static int
daemon_args(struct config *cfg, enum config_daemon which, const char *const *args, int *verbose,
    char *err, size_t errlen)
{
	char *argv[16];
	int argc = 0;

	while (args[argc] != NULL && argc < 15) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	return config_daemon_args(cfg, which, argc, argv, count_usage, verbose, err, errlen);
}

static void
test_daemon_args(void **state)
{
	static struct config cfg;
	char err[512];
	int verbose;

	(void)state;
	{
		const char *const a[] = { "smtpd", "--store", "/tmp/x.db", "--listen",
		    "127.0.0.1:2525", "--listen", "[::1]:2587 submission", "-v", "-v", NULL };
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, a, &verbose, err, sizeof(err)), 0);
		assert_string_equal(cfg.store_path, "/tmp/x.db");
		assert_int_equal(cfg.smtp_nlisten, 2);
		assert_int_equal(cfg.smtp_listen[0].role, ROLE_INBOUND);
		assert_string_equal(cfg.smtp_listen[1].host, "::1");
		assert_int_equal(cfg.smtp_listen[1].role, ROLE_SUBMISSION);
		assert_int_equal(verbose, 2);
	}
	{
		const char *const a[] = { "pop3d", "--listen", "127.0.0.1:1110", NULL };
		assert_int_equal(daemon_args(&cfg, CONFIG_POP3D, a, &verbose, err, sizeof(err)), 0);
		assert_int_equal(cfg.pop3_nlisten, 1);
		assert_int_equal(cfg.pop3_listen[0].role, ROLE_POP3);
	}
	{	/* a POP3 role on smtpd, and the other way round */
		const char *const a[] = { "smtpd", "--listen", "127.0.0.1:1110 pop3", NULL };
		const char *const b[] = { "pop3d", "--listen", "127.0.0.1:2525 inbound", NULL };
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, a, &verbose, err, sizeof(err)), -1);
		if (strstr(err, "pop3") == NULL) fail_msg("%s", err);
		assert_int_equal(daemon_args(&cfg, CONFIG_POP3D, b, &verbose, err, sizeof(err)), -1);
		if (strstr(err, "inbound") == NULL) fail_msg("%s", err);
	}
	{	/* nothing to listen on */
		const char *const a[] = { "smtpd", "--store", "/tmp/x.db", NULL };
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, a, &verbose, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "no listen address"));
	}
	{	/* a bad listen address names itself */
		const char *const a[] = { "smtpd", "--listen", "nowhere", NULL };
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, a, &verbose, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "--listen nowhere"));
	}
	{	/* help, unknown options, stray arguments */
		const char *const h[] = { "smtpd", "--help", NULL };
		const char *const u[] = { "smtpd", "--bogus", NULL };
		const char *const x[] = { "smtpd", "--listen", "127.0.0.1:25", "extra", NULL };
		usage_calls = 0;
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, h, &verbose, err, sizeof(err)), 1);
		opterr = 0;
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, u, &verbose, err, sizeof(err)), 2);
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, x, &verbose, err, sizeof(err)), 2);
		assert_int_equal(usage_calls, 3);
	}
	{	/* --store: a URI over the file's path, a path over the file's url */
		char conf[600];
		const char *a[] = { "smtpd", "-c", conf, "--store",
		    "postgresql://correio@127.0.0.1:5432/correio", "--listen", "127.0.0.1:25", NULL };

		write_conf("[store]\npath = /srv/correio.db\n", conf, sizeof(conf));
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, a, &verbose, err, sizeof(err)), 0);
		assert_string_equal(cfg.store_path, "postgresql://correio@127.0.0.1:5432/correio");
		assert_true(cfg.store_is_url);
		write_conf("[store]\nurl = postgres://db/correio\nspool = /srv/spool\n", conf,
		    sizeof(conf));
		a[4] = "/srv/other.db";
		assert_int_equal(daemon_args(&cfg, CONFIG_POP3D, a, &verbose, err, sizeof(err)), 0);
		assert_string_equal(cfg.store_path, "/srv/other.db");
		assert_false(cfg.store_is_url);
		assert_string_equal(cfg.store_spool, "/srv/spool");
		a[3] = "--listen";	/* no --store: the file's url */
		a[4] = "127.0.0.1:26";
		assert_int_equal(daemon_args(&cfg, CONFIG_SMTPD, a, &verbose, err, sizeof(err)), 0);
		assert_string_equal(cfg.store_path, "postgres://db/correio");
		assert_true(cfg.store_is_url);
	}
	{	/* --store with a password: refused, the password not repeated */
		const char *const a[] = { "webd", "--store",
		    "postgresql://correio:s3cret@db/correio?password=s3cret", "--listen",
		    "127.0.0.1:8080", NULL };
		assert_int_equal(daemon_args(&cfg, CONFIG_WEBD, a, &verbose, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "--store postgresql://correio@db/correio: a password"));
		assert_non_null(strstr(err, "PGPASSFILE"));
		assert_null(strstr(err, "s3cret"));
	}
	{	/* a config file that does not exist is an error naming it */
		const char *const a[] = { "pop3d", "-c", "/nonexistent/correio.conf", NULL };
		assert_int_equal(daemon_args(&cfg, CONFIG_POP3D, a, &verbose, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "/nonexistent/correio.conf"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_several_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_listen_replaces),
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_manual_complete),
		cmocka_unit_test(test_store_url),
		cmocka_unit_test(test_daemon_args),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
