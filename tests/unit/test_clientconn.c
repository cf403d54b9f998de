/*
 * test_clientconn.c - the protocol-neutral parts of mailcli's client
 * connection: the SASL PLAIN response (RFC 4616 2) both clients send, with
 * its length limits; and command lines over a real loopback connection:
 * CRLF added, CR/LF inside refused before anything is queued, secrets masked
 * in the trace but sent whole, pipelined commands leaving in one flush, and
 * reply lines read back whole or byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "b64.h"
#include "clientconn.h"

static void
test_sasl_plain(void **state)
{
	char enc[CLIENTCONN_SASL_ENC], dec[CLIENTCONN_SASL_ENC], user[300], pw[300];
	long n;

	(void)state;
	assert_int_equal(clientconn_sasl_plain("ana", "secret", enc, sizeof(enc)), 0);
	assert_string_equal(enc, "AGFuYQBzZWNyZXQ=");
	/* the longest user and password still fit, and decode back */
	memset(user, 'u', 255);
	user[255] = '\0';
	memset(pw, 'p', 255);
	pw[255] = '\0';
	assert_int_equal(clientconn_sasl_plain(user, pw, enc, sizeof(enc)), 0);
	n = b64_decode_strict(enc, strlen(enc), dec, sizeof(dec));
	assert_int_equal(n, 2 + 255 + 255);
	assert_int_equal(dec[0], '\0');
	assert_memory_equal(dec + 1, user, 255);
	assert_int_equal(dec[256], '\0');
	assert_memory_equal(dec + 257, pw, 255);
	/* one octet more, or too small a buffer: refused */
	user[255] = 'u';
	user[256] = '\0';
	assert_int_equal(clientconn_sasl_plain(user, "x", enc, sizeof(enc)), -1);
	assert_int_equal(clientconn_sasl_plain("x", user, enc, sizeof(enc)), -1);
	assert_int_equal(clientconn_sasl_plain("ana", "secret", enc, 16), -1);
	assert_int_equal(clientconn_sasl_plain("ana", "secret", enc, 17), 0);
}

/* A listening loopback socket; its port in port_r. */
static int
listener(char *port_r, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(port_r, len, "%u", ntohs(sin.sin_port));
	return fd;
}

static size_t
read_some(int fd, char *buf, size_t len, size_t want)
{
	size_t got = 0;
	ssize_t r;

	while (got < want && (r = read(fd, buf + got, len - got)) > 0)
		got += (size_t)r;
	return got;
}

static void
test_commands_and_trace(void **state)
{
	struct clientconn c;
	char port[16], buf[512], *trace = NULL, *line;
	const char *want;
	size_t tracelen = 0, got, len;
	FILE *tf = open_memstream(&trace, &tracelen);
	int lfd, sfd;

	(void)state;
	assert_non_null(tf);
	lfd = listener(port, sizeof(port));
	assert_int_equal(clientconn_open(&c, "127.0.0.1", port, 5, 512, tf), 0);
	sfd = accept(lfd, NULL, NULL);
	assert_true(sfd >= 0);

	/* a line break inside a command is refused and nothing is queued */
	assert_int_equal(clientconn_cmd(&c, false, "MAIL FROM:<a@b>\r\nRCPT TO:<%s>", "x@y"), -1);
	assert_non_null(strstr(c.err, "CR or LF"));
	assert_int_equal(clientconn_cmd(&c, false, "NOOP\n"), -1);
	assert_int_equal(c.out.len, 0);

	/* two commands, one of them secret, leave together in one flush */
	assert_int_equal(clientconn_cmd(&c, false, "EHLO %s", "client.test"), 0);
	assert_int_equal(clientconn_cmd(&c, true, "AUTH PLAIN %s", "AGFuYQBzZWNyZXQ="), 0);
	assert_int_equal(clientconn_flush(&c), 0);
	want = "EHLO client.test\r\nAUTH PLAIN AGFuYQBzZWNyZXQ=\r\n";
	got = read_some(sfd, buf, sizeof(buf), strlen(want));
	assert_int_equal(got, strlen(want));
	assert_memory_equal(buf, want, got);

	/* replies, sent whole then one byte at a time */
	assert_int_equal(write(sfd, "250 ok\r\n", 8), 8);
	assert_int_equal(clientconn_readline(&c, &line, &len), 0);
	assert_int_equal(len, 6);
	assert_string_equal(line, "250 ok");
	for (const char *p = "235 2.7.0 welcome\r\n"; *p; p++)
		assert_int_equal(write(sfd, p, 1), 1);
	assert_int_equal(clientconn_readline(&c, &line, &len), 0);
	assert_string_equal(line, "235 2.7.0 welcome");

	/* the trace: the secret masked, everything else as sent */
	fflush(tf);
	assert_non_null(strstr(trace, "C: EHLO client.test\n"));
	assert_non_null(strstr(trace, "C: AUTH PLAIN ***\n"));
	assert_null(strstr(trace, "AGFuYQBzZWNyZXQ="));
	assert_non_null(strstr(trace, "S: 250 ok\n"));
	assert_non_null(strstr(trace, "S: 235 2.7.0 welcome\n"));

	/* the peer goes away: a clear error, not a hang */
	close(sfd);
	assert_int_equal(clientconn_readline(&c, &line, &len), -1);
	assert_non_null(strstr(c.err, "closed"));
	clientconn_close(&c);
	close(lfd);
	fclose(tf);
	free(trace);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sasl_plain),
		cmocka_unit_test(test_commands_and_trace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
