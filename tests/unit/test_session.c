/*
 * test_session.c - common/session.c, the half of a server session both
 * daemons share, over the fake connection (virtual clock): every buffered
 * line is handed over in order, whole and byte by byte; the idle timer runs
 * from the last complete line, so bytes that never end a line (slowloris) do
 * not keep a session alive; the pump waits while the protocol is not ready
 * and while the output is above its mark; max_errors and the transcript
 * budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "fake_conn.h"
#include "session.h"

struct proto_state {
	struct session	 core;
	struct buf	 lines;		/* "<line>|" per LINE_OK, "<TOO_LONG>|" otherwise */
	bool		 busy;
	int		 idles;
};

static bool
p_ready(void *arg)
{
	return !((struct proto_state *)arg)->busy;
}

static void
p_line(void *arg, enum line_status st, char *line, size_t len, enum line_eol eol)
{
	struct proto_state *p = arg;

	(void)eol;
	if (st == LINE_TOO_LONG)
		assert_int_equal(buf_puts(&p->lines, "<TOO_LONG>|"), 0);
	else {
		assert_int_equal(buf_append(&p->lines, line, len), 0);
		assert_int_equal(buf_puts(&p->lines, "|"), 0);
	}
}

static struct fake_conn *clock_of;	/* the connection whose clock p_idle reads */
static long idle_at;			/* virtual ms of the last idle() */

static void
p_idle(void *arg)
{
	((struct proto_state *)arg)->idles++;
	idle_at = clock_of->now_ms;
}

static const struct session_proto proto = { p_ready, p_line, p_idle };

static void
start(struct fake_conn *f, struct proto_state *p, long idle, size_t line_max)
{
	struct session_params sp = {
		.line_max = line_max, .out_high = 64, .idle_timeout = idle, .max_errors = 3,
		.transcript_max_lines = 5, .transcripts = true, .id = "test",
	};

	memset(p, 0, sizeof(*p));
	fake_conn_init(f, ROLE_INBOUND, "127.0.0.1");
	buf_init(&p->lines, 1 << 16);
	assert_int_equal(session_init(&p->core, &f->conn, p, &proto, &sp), 0);
	clock_of = f;
	session_touch(&p->core);
}

static void
stop(struct fake_conn *f, struct proto_state *p)
{
	session_gone(&p->core);
	session_free(&p->core);
	buf_free(&p->lines);
	fake_conn_free(f);
}

static const char *
got(struct proto_state *p)
{
	assert_int_equal(buf_append(&p->lines, "", 1), 0);
	p->lines.len--;
	return p->lines.data != NULL ? p->lines.data : "";
}

static void
test_lines_whole_and_bytewise(void **state)
{
	static const char in[] = "HELO a\r\nNOOP\nxxxxxxxxxxxxxxxxxxxxxxxx\r\nQUIT\r\ntail";
	struct fake_conn f;
	struct proto_state p;

	(void)state;
	for (size_t step = 0; step <= 1; step++) {
		start(&f, &p, 60, 16);
		for (size_t i = 0; i < sizeof(in) - 1; i += step ? step : sizeof(in) - 1) {
			size_t n = step ? step : sizeof(in) - 1;
			evbuffer_add(f.in, in + i, n);
			session_pump(&p.core);
		}
		assert_string_equal(got(&p), "HELO a|NOOP|<TOO_LONG>|QUIT|");
		assert_int_equal(p.core.nlines, 4);
		stop(&f, &p);
	}
}

/* A byte every 2 s never ends a line: the timer fires idle s after the last
 * complete line, however many bytes came since. */
static void
test_idle_runs_from_last_complete_line(void **state)
{
	struct fake_conn f;
	struct proto_state p;
	long t;

	(void)state;
	start(&f, &p, 600, 4096);
	assert_int_equal(fake_conn_next_timer(&f), 600 * 1000);
	assert_int_equal(f.timeout, 600 + SESSION_TIMEOUT_GRACE);	/* the backstop follows */
	fake_conn_advance(&f, 100 * 1000);
	evbuffer_add(f.in, "NOOP\r\n", 6);
	session_pump(&p.core);		/* the last complete line: at t = 100 s */
	for (t = 0; p.idles == 0 && t < 3600; t += 2) {
		evbuffer_add(f.in, "x", 1);	/* slowloris */
		session_pump(&p.core);
		fake_conn_advance(&f, 2000);
	}
	assert_int_equal(p.idles, 1);
	assert_int_equal(idle_at, 700 * 1000);	/* 100 s + 600 s, not later */
	stop(&f, &p);
}

static void
test_waits_while_not_ready_and_output_full(void **state)
{
	struct fake_conn f;
	struct proto_state p;
	char big[80];

	(void)state;
	start(&f, &p, 60, 16);
	p.busy = true;
	evbuffer_add(f.in, "A\r\nB\r\n", 6);
	session_pump(&p.core);
	assert_string_equal(got(&p), "");
	p.busy = false;
	memset(big, 'o', sizeof(big));
	evbuffer_add(f.out, big, sizeof(big));	/* above out_high (64) */
	session_pump(&p.core);
	assert_string_equal(got(&p), "");
	assert_true(p.core.stalled);
	evbuffer_drain(f.out, sizeof(big));
	session_drained(&p.core);
	assert_false(p.core.stalled);
	assert_string_equal(got(&p), "A|B|");
	stop(&f, &p);
}

static void
test_errors_and_transcript_budget(void **state)
{
	struct fake_conn f;
	struct proto_state p;
	int room = 0;

	(void)state;
	start(&f, &p, 60, 16);
	assert_false(session_count_error(&p.core));
	assert_false(session_count_error(&p.core));
	assert_true(session_count_error(&p.core));	/* max_errors = 3 */
	for (int i = 0; i < 10; i++)
		room += session_tr_room(&p.core, 1);
	assert_int_equal(room, 4);	/* the 5th line is the note saying so */
	assert_non_null(strstr(p.core.tr.pending.data, "transcript limit of 5 lines reached"));
	stop(&f, &p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_whole_and_bytewise),
		cmocka_unit_test(test_idle_runs_from_last_complete_line),
		cmocka_unit_test(test_waits_while_not_ready_and_output_full),
		cmocka_unit_test(test_errors_and_transcript_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
