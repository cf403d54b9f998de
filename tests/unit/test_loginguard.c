/*
 * test_loginguard.c - the failed-login policy of common/loginguard.c as pure
 * logic with an injected clock, with the real defaults (config_defaults):
 * the delay doubles with the (address, account) pair's failures across
 * sessions up to auth_fail_delay_max; an account with no failures of its own
 * waits 1 s from an address where others failed; an address past
 * auth_fail_addr_ceiling waits the longest whatever the account; the
 * session's own failures count; success forgets the pair; failures expire
 * after auth_fail_window; the table stays bounded and keeps the recent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "loginguard.h"

static struct config cfg;

static int
setup(void **state)
{
	config_defaults(&cfg);
	*state = loginguard_new();
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	struct loginguard *g = *state;

	loginguard_free(&g);
	assert_null(g);
	return 0;
}

#define T0	1800000000	/* the injected clock starts here */

static void
test_defaults(void **state)
{
	(void)state;
	assert_int_equal(cfg.limits.auth_fail_delay_max, 30);
	assert_int_equal(cfg.limits.auth_fail_addr_ceiling, 50);
	assert_int_equal(cfg.limits.auth_fail_window, 900);
}

/* One address guessing one account, one failure per session: 1 2 4 8 16 30 30. */
static void
test_pair_grows_across_sessions(void **state)
{
	static const long want[] = { 1, 2, 4, 8, 16, 30, 30, 30 };
	struct loginguard *g = *state;
	int64_t now = T0;
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		long d = loginguard_failed(g, &cfg.limits, "192.0.2.7", "ana", 1, now);

		if (d != want[i])
			fail_msg("failure %zu: delay %ld, want %ld", i + 1, d, want[i]);
		now += d + 1;	/* the client waited, then tried again */
	}
	assert_int_equal(loginguard_count(g, &cfg.limits, "192.0.2.7", "ana", now), 8);
	assert_int_equal(loginguard_count(g, &cfg.limits, "192.0.2.7", NULL, now), 8);
}

/* A class behind one NAT: one student's typos do not slow the others. */
static void
test_fresh_account_behind_a_shared_address(void **state)
{
	struct loginguard *g = *state;
	char name[32];
	int i;

	for (i = 0; i < 6; i++)	/* ana keeps getting it wrong: up to 30 s */
		(void)loginguard_failed(g, &cfg.limits, "10.0.0.1", "ana", 1, T0 + i);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "10.0.0.1", "ana", 1, T0 + 10), 30);
	for (i = 0; i < 20; i++) {	/* 20 classmates, one typo each: 1 s each */
		snprintf(name, sizeof(name), "student%d", i);
		assert_int_equal(loginguard_failed(g, &cfg.limits, "10.0.0.1", name, 1, T0 + 20), 1);
	}
	/* a classmate's second typo waits 2 s: its own failures, not ana's */
	assert_int_equal(loginguard_failed(g, &cfg.limits, "10.0.0.1", "student3", 1, T0 + 30), 2);
	/* the same name from another address is another pair */
	assert_int_equal(loginguard_failed(g, &cfg.limits, "10.0.0.2", "ana", 1, T0 + 30), 1);
}

/* One address guessing many accounts, one try each: past the ceiling, the longest delay. */
static void
test_address_ceiling(void **state)
{
	struct loginguard *g = *state;
	char name[32];
	long d;
	int i;

	for (i = 0; i < 60; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		d = loginguard_failed(g, &cfg.limits, "198.51.100.9", name, 1, T0 + i);
		if (d != (i < 50 ? 1 : 30))
			fail_msg("failure %d of the address: delay %ld", i + 1, d);
	}
	/* another address is not affected */
	assert_int_equal(loginguard_failed(g, &cfg.limits, "198.51.100.10", "user1", 1, T0 + 60), 1);
	/* a lower ceiling takes effect at once */
	cfg.limits.auth_fail_addr_ceiling = 2;
	assert_int_equal(loginguard_failed(g, &cfg.limits, "198.51.100.10", "user2", 1, T0 + 61), 1);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "198.51.100.10", "user3", 1, T0 + 62), 30);
	cfg.limits.auth_fail_addr_ceiling = 50;
}

/* One connection trying name after name: the session's own count grows it. */
static void
test_session_failures_count(void **state)
{
	struct loginguard *g = *state;

	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.1", "a", 1, T0), 1);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.1", "b", 2, T0 + 1), 2);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.1", "c", 3, T0 + 3), 4);
	/* without a table only the session counts */
	assert_int_equal(loginguard_failed(NULL, &cfg.limits, "192.0.2.1", "a", 1, T0), 1);
	assert_int_equal(loginguard_failed(NULL, &cfg.limits, "192.0.2.1", "a", 4, T0), 8);
	assert_int_equal(loginguard_failed(NULL, &cfg.limits, "192.0.2.1", "a", 40, T0), 30);
	loginguard_succeeded(NULL, "192.0.2.1", "a");	/* no table: nothing to do */
}

static void
test_success_forgets_the_pair_not_the_address(void **state)
{
	struct loginguard *g = *state;

	(void)loginguard_failed(g, &cfg.limits, "192.0.2.2", "Ana", 1, T0);
	(void)loginguard_failed(g, &cfg.limits, "192.0.2.2", "ana", 1, T0 + 1);
	/* names compare case-insensitively */
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.2", "ANA", 1, T0 + 2), 4);
	loginguard_succeeded(g, "192.0.2.2", "ana");
	assert_int_equal(loginguard_count(g, &cfg.limits, "192.0.2.2", "ana", T0 + 3), 0);
	assert_int_equal(loginguard_count(g, &cfg.limits, "192.0.2.2", NULL, T0 + 3), 3);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.2", "ana", 1, T0 + 4), 1);
}

static void
test_failures_expire(void **state)
{
	struct loginguard *g = *state;
	long window = cfg.limits.auth_fail_window;

	(void)loginguard_failed(g, &cfg.limits, "192.0.2.3", "ana", 1, T0);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.3", "ana", 1, T0 + window), 2);
	/* the window runs from the last failure */
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.3", "ana", 1,
	    T0 + 2 * window), 4);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.3", "ana", 1,
	    T0 + 3 * window + 1), 1);
	assert_int_equal(loginguard_count(g, &cfg.limits, "192.0.2.3", NULL, T0 + 3 * window + 1), 1);
}

/* More pairs than slots: memory stays fixed, the oldest go, the recent stay. */
static void
test_table_is_bounded(void **state)
{
	struct loginguard *g = *state;
	char name[32], addr[32];
	int i;

	cfg.limits.auth_fail_window = 86400;	/* nothing expires: entries must be evicted */
	(void)loginguard_failed(g, &cfg.limits, "203.0.113.1", "first", 1, T0);
	(void)loginguard_failed(g, &cfg.limits, "203.0.113.1", "first", 1, T0);
	for (i = 0; i < 2 * LOGINGUARD_SLOTS; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		/* many addresses, so no ceiling is reached */
		snprintf(addr, sizeof(addr), "10.%d.%d.1", i / 256, i % 256);
		(void)loginguard_failed(g, &cfg.limits, addr, name, 1, T0 + 1 + i);
	}
	assert_int_equal(loginguard_count(g, &cfg.limits, "203.0.113.1", "first",
	    T0 + 2 * LOGINGUARD_SLOTS + 1), 0);	/* the oldest went */
	assert_int_equal(loginguard_count(g, &cfg.limits, "10.31.255.1", "n8191",
	    T0 + 2 * LOGINGUARD_SLOTS + 1), 1);	/* the most recent stayed */
	assert_int_equal(loginguard_count(g, &cfg.limits, "10.31.255.1", NULL,
	    T0 + 2 * LOGINGUARD_SLOTS + 1), 1);
	/* an over-long address or name is cut, not overflowed */
	{
		char big[1000];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(loginguard_failed(g, &cfg.limits, big, big, 1, T0 + 3 * LOGINGUARD_SLOTS), 1);
		assert_int_equal(loginguard_failed(g, &cfg.limits, big, big, 1, T0 + 3 * LOGINGUARD_SLOTS), 2);
	}
	cfg.limits.auth_fail_window = 900;
}

static void
test_no_delay_configured(void **state)
{
	struct loginguard *g = *state;
	int i;

	cfg.limits.auth_fail_delay_max = 0;
	for (i = 0; i < 100; i++)
		assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.4", "ana", 1, T0 + i), 0);
	cfg.limits.auth_fail_delay_max = 2;	/* what the integration tests use */
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.5", "ana", 1, T0), 1);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.5", "ana", 1, T0), 2);
	assert_int_equal(loginguard_failed(g, &cfg.limits, "192.0.2.5", "ana", 1, T0), 2);
	cfg.limits.auth_fail_delay_max = 30;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pair_grows_across_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_account_behind_a_shared_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_ceiling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_failures_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_success_forgets_the_pair_not_the_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_delay_configured, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
