/*
 * test_sesslog.c - the session log's queue and thread (common/sesslog.c):
 * records reach the session log in order, and past SESSLOG_QUEUE_MAX
 * transcript lines are dropped while session rows never are (the thread is
 * held up by another program holding the session log's write lock
 * meanwhile). On either backend (unit/test_sesslog on SQLite,
 * unit/test_sesslog@pg on PostgreSQL), each test on a store of its own.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sesslog.h"
#include "store.h"
#include "tmpstore.h"

struct fixture {
	struct tmpstore	*t;		/* its store: a reader, as mailcli and webd are */
	struct sesslog	*sl;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	assert_non_null(f);
	f->t = tmpstore_new("sesslog", false);
	if ((f->sl = sesslog_start(f->t->path, err, sizeof(err))) == NULL)
		fail_msg("sesslog_start: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	sesslog_stop(&f->sl);
	rc = tmpstore_free(f->t);
	free(f);
	return rc;
}

static void
collect(void *arg, const char *line, const char *unused)
{
	size_t *total = arg;

	(void)unused;
	*total += strlen(line) + 1;
}

static void
append(void *arg, const char *line, const char *unused)
{
	char *out = arg;
	size_t n = strlen(out);

	(void)unused;
	snprintf(out + n, 256 - n, "%s|", line);
}

/* A session's records, interleaved with another's, come back in order. */
static void
test_in_order(void **state)
{
	struct fixture *f = *state;
	struct store_session_info si;
	char out[256] = "";

	sesslog_open(f->sl, "s1", "smtp", "127.0.0.2");
	sesslog_open(f->sl, "s2", "pop3", "127.0.0.3");
	sesslog_lines(f->sl, "s1", "smtp", "S: 220 hi\nC: HELO x\n", 20);
	sesslog_user(f->sl, "s2", "pop3", "ana");
	sesslog_lines(f->sl, "s1", "smtp", "S: 250 ok", 9);
	sesslog_account(f->sl, "s1", "smtp", "bob");
	sesslog_close(f->sl, "s1", "smtp", "quit");
	sesslog_sync(f->sl);
	assert_int_equal(store_transcript_get(f->t->st, "s1", append, out), 0);
	assert_string_equal(out, "S: 220 hi|C: HELO x|S: 250 ok|");
	assert_int_equal(store_session_get(f->t->st, "s1", &si), 0);
	assert_string_equal(si.outcome, "quit");
	assert_true(si.ended >= si.started && si.started > 0);	/* one batch, one row */
	assert_string_equal(si.client, "127.0.0.2");
	assert_int_equal(store_session_involves(f->t->st, "s1", "bob"), 1);
	assert_int_equal(store_session_get(f->t->st, "s2", &si), 0);
	assert_string_equal(si.user, "ana");
	assert_int_equal(si.ended, 0);
}

/* Check that session id's transcript is lines "<id>:<k>:<k x's>" for k = 0,
 * 1, ... in order. */
struct expect {
	const char	*id;
	unsigned	 next;
	bool		 bad;
};

static void
expect_line(void *arg, const char *line, const char *unused)
{
	struct expect *e = arg;
	char want[4096];
	int n;

	(void)unused;
	n = snprintf(want, 64, "%s:%u:", e->id, e->next);
	memset(want + n, 'x', e->next % 1500);
	want[n + e->next % 1500] = '\0';
	if (strcmp(line, want) != 0)
		e->bad = true;
	e->next++;
}

/*
 * Records of many sizes (up to about 1,500 octets) from three sessions, in
 * two batches so that the second reuses the first's blocks: thousands of
 * records across many blocks, each session's lines back whole and in order.
 */
static void
test_blocks_in_order(void **state)
{
	struct fixture *f = *state;
	static const char *const ids[] = { "b1", "b2", "b3" };
	struct expect e;
	char line[4096];
	unsigned k, round, i;
	int n;

	for (i = 0; i < 3; i++)
		sesslog_open(f->sl, ids[i], "smtp", "127.0.0.5");
	for (round = 0; round < 2; round++) {
		for (k = round * 1500; k < (round + 1) * 1500; k++) {
			for (i = 0; i < 3; i++) {
				n = snprintf(line, 64, "%s:%u:", ids[i], k);
				memset(line + n, 'x', k % 1500);
				line[n + k % 1500] = '\n';
				sesslog_lines(f->sl, ids[i], "smtp", line, (size_t)n + k % 1500 + 1);
			}
		}
		sesslog_sync(f->sl);
	}
	for (i = 0; i < 3; i++) {
		sesslog_close(f->sl, ids[i], "smtp", "quit");
		e = (struct expect){ ids[i], 0, false };
		assert_int_equal(store_transcript_get(f->t->st, ids[i], expect_line, &e), 0);
		assert_false(e.bad);
		assert_int_equal(e.next, 3000);
	}
}

struct sizes {
	const size_t	*len;
	size_t		 n, next;
	bool		 bad;
};

static void
expect_size(void *arg, const char *line, const char *unused)
{
	struct sizes *e = arg;
	char head[32];

	(void)unused;
	snprintf(head, sizeof(head), "L%zu:", e->next);
	if (e->next >= e->n || strlen(line) != e->len[e->next] - 1 ||
	    strncmp(line, head, strlen(head)) != 0)
		e->bad = true;
	e->next++;
}

/*
 * Records larger than a block (64 KB), of about a block, and small ones in
 * between, twice over (the second time on blocks given back): each comes
 * back whole and in order.
 */
static void
test_blocks_large_records(void **state)
{
	struct fixture *f = *state;
	static const size_t len[] = {
		10, 100 * 1024, 20, 65536 - 100, 65536 - 40, 65536, 65537, 30, 3 * 65536, 5, 70000,
		65536 - 64, 7,
	};
	const size_t n = sizeof(len) / sizeof(len[0]);
	struct sizes e = { len, n, 0, false };
	char *line;
	size_t i, h;
	int round;

	assert_non_null(line = malloc(3 * 65536 + 1));
	for (round = 0; round < 2; round++) {
		const char *id = round == 0 ? "big1" : "big2";

		sesslog_open(f->sl, id, "smtp", "127.0.0.6");
		for (i = 0; i < n; i++) {
			h = (size_t)snprintf(line, 32, "L%zu:", i);
			memset(line + h, 'y', len[i] - 1 - h);
			line[len[i] - 1] = '\n';
			sesslog_lines(f->sl, id, "smtp", line, len[i]);
		}
		sesslog_close(f->sl, id, "smtp", "quit");
		sesslog_sync(f->sl);
		e.next = 0;
		assert_int_equal(store_transcript_get(f->t->st, id, expect_size, &e), 0);
		assert_false(e.bad);
		assert_int_equal(e.next, n);
	}
	free(line);
}

/*
 * Another program holds the session log's write lock while a session sends
 * more than twice SESSLOG_QUEUE_MAX of lines: the queue stops at the bound
 * (lines dropped), the session's row and its end are kept, and once the
 * lock goes everything queued is written.
 */
static void
test_queue_full_drops_lines_not_rows(void **state)
{
	struct fixture *f = *state;
	struct store_session_info si;
	struct tmpstore_hold *hold;
	char *chunk;
	const size_t len = 64 * 1024, n = 2 * SESSLOG_QUEUE_MAX / len + 32;
	size_t i, total = 0;

	/* the session log exists (made ready by sesslog_start); take its
	 * write lock */
	hold = tmpstore_log_hold(f->t);

	assert_non_null(chunk = malloc(len));
	memset(chunk, 'x', len);
	chunk[len - 1] = '\n';
	sesslog_open(f->sl, "big", "smtp", "127.0.0.4");
	for (i = 0; i < n; i++)
		sesslog_lines(f->sl, "big", "smtp", chunk, len);
	sesslog_close(f->sl, "big", "smtp", "eof");
	free(chunk);

	usleep(300 * 1000);	/* the thread is now waiting for the lock */
	tmpstore_log_release(&hold);
	sesslog_sync(f->sl);

	assert_int_equal(store_session_get(f->t->st, "big", &si), 0);
	assert_string_equal(si.outcome, "eof");
	assert_int_equal(store_transcript_get(f->t->st, "big", collect, &total), 0);
	/* Lines were written, but not all: at most the batch the thread took
	 * before it met the lock and one full queue after; the rest was
	 * dropped at the bound. */
	assert_true(total > 0);
	assert_true(total <= 2 * SESSLOG_QUEUE_MAX + 2 * len);
	assert_true(total < n * len);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocks_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocks_large_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full_drops_lines_not_rows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
