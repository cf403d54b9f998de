/*
 * test_sasl.c - the SASL step machine of common/sasl.c (PLAIN per RFC 4616,
 * LOGIN, RFC 4954 / RFC 5034 exchanges) as a table of exchanges: the
 * mechanism, the initial response (or none), the client's lines, and what
 * each step must say (challenge, done with which credentials, cancelled,
 * refused with which reason). Each exchange runs twice: its lines handed over
 * whole, then fed one byte at a time through the line reader the daemons
 * use, and both must agree with the table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "linebuf.h"
#include "sasl.h"

#define MAX_LINES	3

struct exchange {
	const char	*name;
	const char	*mech;		/* as the client wrote it */
	const char	*initial;	/* NULL: no initial response */
	const char	*lines[MAX_LINES];	/* the client's responses, in order */
	/* after sasl_start and after each line: the status and, for CONTINUE, the prompt */
	enum sasl_status st[MAX_LINES + 1];
	const char	*prompt[MAX_LINES + 1];
	/* at the end */
	const char	*authzid, *user, *pass;	/* SASL_DONE */
	const char	*error;			/* SASL_BAD: a substring of x->error */
	enum sasl_where	 where;			/* SASL_BAD: the step refused */
};

/* base64: "\0ana\0secret" = AGFuYQBzZWNyZXQ=, "ana" = YW5h, "secret" = c2VjcmV0,
 * "adm\0ana\0secret" = YWRtAGFuYQBzZWNyZXQ=, "ana@lab.test" = YW5hQGxhYi50ZXN0 */
static const struct exchange exchanges[] = {
	{ "plain, initial response", "PLAIN", "AGFuYQBzZWNyZXQ=", { NULL },
	  { SASL_DONE }, { NULL }, "", "ana", "secret", NULL, 0 },
	{ "plain, lower-case mechanism, continuation", "plain", NULL, { "AGFuYQBzZWNyZXQ=" },
	  { SASL_CONTINUE, SASL_DONE }, { "", NULL }, "", "ana", "secret", NULL, 0 },
	{ "plain with an authzid", "PLAIN", NULL, { "YWRtAGFuYQBzZWNyZXQ=" },
	  { SASL_CONTINUE, SASL_DONE }, { "" }, "adm", "ana", "secret", NULL, 0 },
	{ "plain, cancelled", "PLAIN", NULL, { "*" },
	  { SASL_CONTINUE, SASL_CANCELLED }, { "" }, NULL, NULL, NULL, NULL, 0 },
	{ "plain, empty initial response '='", "PLAIN", "=", { NULL },
	  { SASL_BAD }, { NULL }, NULL, NULL, NULL, "authzid NUL authcid NUL", SASL_AT_PLAIN },
	{ "plain, '*' as initial response is base64 junk", "PLAIN", "*", { NULL },
	  { SASL_BAD }, { NULL }, NULL, NULL, NULL, "invalid base64", SASL_AT_PLAIN },
	{ "plain, junk libb64 would skip", "PLAIN", NULL, { "AGFu!YQBzZWNyZXQ=" },
	  { SASL_CONTINUE, SASL_BAD }, { "" }, NULL, NULL, NULL, "invalid base64", SASL_AT_PLAIN },
	{ "plain, bad padding", "PLAIN", NULL, { "AGFuYQBzZWNyZXQ" },
	  { SASL_CONTINUE, SASL_BAD }, { "" }, NULL, NULL, NULL, "invalid base64", SASL_AT_PLAIN },
	{ "plain, one NUL only", "PLAIN", "YW5hAHNlY3JldA==", { NULL },	/* ana\0secret */
	  { SASL_BAD }, { NULL }, NULL, NULL, NULL, "authzid NUL authcid NUL", SASL_AT_PLAIN },
	{ "plain, empty password", "PLAIN", "AGFuYQA=", { NULL },	/* \0ana\0 */
	  { SASL_BAD }, { NULL }, NULL, NULL, NULL, "empty password", SASL_AT_PLAIN },
	{ "login, both prompts", "LOGIN", NULL, { "YW5h", "c2VjcmV0" },
	  { SASL_CONTINUE, SASL_CONTINUE, SASL_DONE }, { "VXNlcm5hbWU6", "UGFzc3dvcmQ6" },
	  "", "ana", "secret", NULL, 0 },
	{ "login, user name as initial response", "login", "YW5hQGxhYi50ZXN0", { "c2VjcmV0" },
	  { SASL_CONTINUE, SASL_DONE }, { "UGFzc3dvcmQ6" }, "", "ana@lab.test", "secret", NULL, 0 },
	{ "login, '=' is an empty user name", "LOGIN", "=", { "c2VjcmV0" },
	  { SASL_CONTINUE, SASL_DONE }, { "UGFzc3dvcmQ6" }, "", "", "secret", NULL, 0 },
	{ "login, empty password line", "LOGIN", "YW5h", { "" },
	  { SASL_CONTINUE, SASL_DONE }, { "UGFzc3dvcmQ6" }, "", "ana", "", NULL, 0 },
	{ "login, cancelled at the user name", "LOGIN", NULL, { "*" },
	  { SASL_CONTINUE, SASL_CANCELLED }, { "VXNlcm5hbWU6" }, NULL, NULL, NULL, NULL, 0 },
	{ "login, cancelled at the password", "LOGIN", NULL, { "YW5h", "*" },
	  { SASL_CONTINUE, SASL_CONTINUE, SASL_CANCELLED }, { "VXNlcm5hbWU6", "UGFzc3dvcmQ6" },
	  NULL, NULL, NULL, NULL, 0 },
	{ "login, bad base64 user name", "LOGIN", NULL, { "%%%" },
	  { SASL_CONTINUE, SASL_BAD }, { "VXNlcm5hbWU6" }, NULL, NULL, NULL, "user name",
	  SASL_AT_LOGIN_USER },
	{ "login, bad base64 initial response", "LOGIN", "@@@", { NULL },
	  { SASL_BAD }, { NULL }, NULL, NULL, NULL, "user name", SASL_AT_LOGIN_USER },
	{ "login, base64 with a space", "LOGIN", NULL, { "YW5h", "c2Vj cmV0" },
	  { SASL_CONTINUE, SASL_CONTINUE, SASL_BAD }, { "VXNlcm5hbWU6", "UGFzc3dvcmQ6" },
	  NULL, NULL, NULL, "password", SASL_AT_LOGIN_PASS },
	{ "login, a NUL inside the password", "LOGIN", "YW5h", { "c2VjAHJldA==" },	/* sec\0ret */
	  { SASL_CONTINUE, SASL_BAD }, { "UGFzc3dvcmQ6" }, NULL, NULL, NULL, "password",
	  SASL_AT_LOGIN_PASS },
};

static size_t
nlines(const struct exchange *e)
{
	size_t n = 0;

	while (n < MAX_LINES && e->lines[n] != NULL)
		n++;
	return n;
}

/* Check the status of step i (0: sasl_start) against the table. */
static void
check_step(const struct exchange *e, struct sasl *x, size_t i, enum sasl_status st)
{
	if (st != e->st[i])
		fail_msg("%s: step %zu: status %d, want %d", e->name, i, (int)st, (int)e->st[i]);
	if (st == SASL_CONTINUE) {
		assert_true(x->active);
		assert_non_null(x->prompt);
		if (e->prompt[i] != NULL && strcmp(x->prompt, e->prompt[i]) != 0)
			fail_msg("%s: step %zu: prompt '%s', want '%s'", e->name, i, x->prompt,
			    e->prompt[i]);
		return;
	}
	assert_false(x->active);
	switch (st) {
	case SASL_DONE:
		assert_string_equal(x->authzid, e->authzid);
		assert_string_equal(x->user, e->user);
		assert_string_equal(x->pass, e->pass);
		break;
	case SASL_BAD:
		if (strstr(x->error, e->error) == NULL)
			fail_msg("%s: error '%s' lacks '%s'", e->name, x->error, e->error);
		assert_int_equal(x->step, e->where);
		/* FALLTHROUGH */
	case SASL_CANCELLED:
		assert_string_equal(x->pass, "");	/* nothing kept */
		assert_string_equal(x->user, "");
		break;
	case SASL_CONTINUE:
		break;
	}
}

static enum sasl_status
start(const struct exchange *e, struct sasl *x)
{
	enum sasl_mech m;

	assert_int_equal(sasl_mech_parse(e->mech, &m), 0);
	return sasl_start(x, m, e->initial);
}

static void
test_exchanges_whole(void **state)
{
	struct sasl x;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(exchanges) / sizeof(exchanges[0]); i++) {
		const struct exchange *e = &exchanges[i];

		check_step(e, &x, 0, start(e, &x));
		for (j = 0; j < nlines(e); j++)
			check_step(e, &x, j + 1, sasl_step(&x, e->lines[j]));
		sasl_clear(&x);
		assert_string_equal(x.pass, "");
	}
}

/* The responses as a client sends them (CRLF lines), one byte at a time
 * through linebuf, each complete line stepped as the daemons do. */
static void
test_exchanges_byte_by_byte(void **state)
{
	struct linebuf lb;
	struct sasl x;
	char wire[1024], *line;
	size_t i, j, k, len, step;
	enum line_eol eol;

	(void)state;
	for (i = 0; i < sizeof(exchanges) / sizeof(exchanges[0]); i++) {
		const struct exchange *e = &exchanges[i];
		size_t n = 0;

		wire[0] = '\0';
		for (j = 0; j < nlines(e); j++)
			n += (size_t)snprintf(wire + n, sizeof(wire) - n, "%s\r\n", e->lines[j]);
		assert_int_equal(linebuf_init(&lb, 510), 0);
		check_step(e, &x, 0, start(e, &x));
		step = 1;
		for (k = 0; k < n; k++) {
			assert_int_equal(linebuf_feed(&lb, wire + k, 1), 1);
			while (linebuf_next(&lb, &line, &len, &eol) == LINE_OK) {
				assert_int_equal(eol, EOL_CRLF);
				assert_true(step <= nlines(e));
				check_step(e, &x, step, sasl_step(&x, line));
				step++;
			}
		}
		assert_int_equal(step, nlines(e) + 1);	/* every line was a step */
		linebuf_free(&lb);
		sasl_clear(&x);
	}
}

static void
test_mechanisms(void **state)
{
	enum sasl_mech m;
	struct sasl x;

	(void)state;
	assert_int_equal(sasl_mech_parse("PLAIN", &m), 0);
	assert_int_equal(m, SASL_PLAIN);
	assert_int_equal(sasl_mech_parse("Login", &m), 0);
	assert_int_equal(m, SASL_LOGIN);
	assert_int_equal(sasl_mech_parse("CRAM-MD5", &m), -1);
	assert_int_equal(sasl_mech_parse("PLAINX", &m), -1);
	assert_int_equal(sasl_mech_parse("", &m), -1);
	assert_string_equal(SASL_MECHANISMS, "PLAIN LOGIN");
	/* a line with no exchange in progress is refused, not a crash */
	memset(&x, 0, sizeof(x));
	assert_int_equal(sasl_step(&x, "YW5h"), SASL_BAD);
	/* a finished exchange takes no more lines */
	assert_int_equal(sasl_start(&x, SASL_PLAIN, "AGFuYQBzZWNyZXQ="), SASL_DONE);
	assert_int_equal(sasl_step(&x, "AGFuYQBzZWNyZXQ="), SASL_BAD);
	sasl_clear(&x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exchanges_whole),
		cmocka_unit_test(test_exchanges_byte_by_byte),
		cmocka_unit_test(test_mechanisms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
