/*
 * test_login.c - login names and the password check of common/login.c over
 * a real store: "ana" and "ana@DOMAIN" (any local domain, any case) are the
 * same account, other domains and malformed names are no account (with a
 * key for the failed-login policy), the authzid must name the same account,
 * and an unknown name fails like a wrong password. And the pool that runs
 * the check off the loop (common/authpool.c): a job's store work runs on a
 * worker thread, with its own handle, only after a right password, or alone.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <event2/event.h>

#include "auth.h"
#include "authpool.h"
#include "log.h"
#include "login.h"
#include "net.h"
#include "store.h"

static struct store *st;
static char path[512];

static int
setup(void **state)
{
	const char *tmp = getenv("CORREIO_TEST_TMP");
	char err[256], hash[AUTH_HASH_MAX];

	(void)state;
	log_init("test_login", false, 0);
	if (tmp == NULL)
		tmp = "/tmp";
	mkdir(tmp, 0700);
	snprintf(path, sizeof(path), "%s/login-%d.db", tmp, (int)getpid());
	unlink(path);
	assert_int_equal(store_open(&st, path, err, sizeof(err)), 0);
	assert_int_equal(store_domain_add(st, "lab.test"), 0);
	assert_int_equal(store_domain_add(st, "escola.br"), 0);
	assert_int_equal(auth_hash_password("ana-pw", hash, sizeof(hash)), 0);
	assert_int_equal(store_user_add(st, "ana", hash), 0);
	assert_int_equal(auth_hash_password("bob-pw", hash, sizeof(hash)), 0);
	assert_int_equal(store_user_add(st, "bob", hash), 0);
	return 0;
}

static int
teardown(void **state)
{
	char p[600];

	(void)state;
	store_close(&st);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	return 0;
}

static void
test_resolve_name(void **state)
{
	static const struct {
		const char *name;
		int rc;
		const char *account;	/* or the policy key when rc != 0 */
	} cases[] = {
		{ "ana", 0, "ana" },
		{ "ana@lab.test", 0, "ana" },
		{ "ana@LAB.Test", 0, "ana" },
		{ "Ana@lab.test", 0, "Ana" },
		{ "ana@escola.br", 0, "ana" },		/* any local domain */
		{ "nobody@lab.test", 0, "nobody" },	/* a name; whether it exists is the check's */
		{ "ana@other.test", STORE_NOTFOUND, "ana@other.test" },
		{ "ANA@Other.Test", STORE_NOTFOUND, "ana@other.test" },
		{ "ana@", STORE_NOTFOUND, "ana@" },
		{ "@lab.test", STORE_NOTFOUND, "@lab.test" },
		{ "", STORE_NOTFOUND, "" },
		{ "a@b@lab.test", 0, "a@b" },		/* no account has an '@': not found later */
		{ "0123456789012345678901234567890123456789012345678901234567890123x@lab.test",
		  STORE_NOTFOUND,
		  "0123456789012345678901234567890123456789012345678901234567890123x@lab.test" },
	};
	char account[STORE_NAME_MAX + 64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = login_resolve_name(st, cases[i].name, account, sizeof(account));

		if (rc != cases[i].rc || strcmp(account, cases[i].account) != 0)
			fail_msg("'%s': rc %d account '%s', want %d '%s'", cases[i].name, rc, account,
			    cases[i].rc, cases[i].account);
	}
	/* a key never overflows its buffer */
	assert_int_equal(login_resolve_name(st, "someone@elsewhere.example", account, 8),
	    STORE_NOTFOUND);
	assert_string_equal(account, "someone");
}

static void
test_verify(void **state)
{
	static const struct {
		const char *name, *authzid, *pass;
		enum login_result want;
		const char *account;
	} cases[] = {
		{ "ana", "", "ana-pw", LOGIN_OK, "ana" },
		{ "ana@lab.test", "", "ana-pw", LOGIN_OK, "ana" },
		{ "ANA@lab.TEST", "", "ana-pw", LOGIN_OK, "ANA" },
		{ "ana@escola.br", "", "ana-pw", LOGIN_OK, "ana" },
		{ "ana@lab.test", "", "bob-pw", LOGIN_FAILED, "ana" },
		{ "ana@other.test", "", "ana-pw", LOGIN_FAILED, "ana@other.test" },
		{ "nobody", "", "ana-pw", LOGIN_FAILED, "nobody" },
		{ "nobody@lab.test", "", "", LOGIN_FAILED, "nobody" },
		{ "ana", "ana@lab.test", "ana-pw", LOGIN_OK, "ana" },	/* authzid: the same account */
		{ "ana@lab.test", "Ana", "ana-pw", LOGIN_OK, "ana" },
		{ "ana", "bob", "ana-pw", LOGIN_FAILED, "ana" },	/* acting as another: no */
		{ "ana", "ana@other.test", "ana-pw", LOGIN_FAILED, "ana" },
		{ "bob@lab.test", "", "bob-pw", LOGIN_OK, "bob" },
	};
	char account[STORE_NAME_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum login_result r = login_verify(st, cases[i].name, cases[i].authzid,
		    cases[i].pass, account, sizeof(account));

		if (r != cases[i].want || strcmp(account, cases[i].account) != 0)
			fail_msg("%s/%s: result %d account '%s', want %d '%s'", cases[i].name,
			    cases[i].authzid, (int)r, account, (int)cases[i].want, cases[i].account);
	}
}

/* One job of test_pool and what happened to it. */
struct pool_case {
	struct authpool_job job;	/* first: the work gets the job */
	bool		 worked, done;
	pthread_t	 worker;
	int		 lock_rc;
};

static unsigned pool_done;

/* On the worker thread: a write with the worker's handle. */
static void
pool_work(struct store *wst, struct authpool_job *job)
{
	struct pool_case *c = (struct pool_case *)job;

	c->worked = true;
	c->worker = pthread_self();
	c->lock_rc = store_mailbox_lock(wst, job->account[0] ? job->account : "bob",
	    "test/1/pool", 60);
}

static void
pool_done_cb(struct authpool_job *job)
{
	((struct pool_case *)job)->done = true;
	pool_done++;
}

static void
test_pool(void **state)
{
	struct pool_case c[3];
	struct event_base *base;
	struct authpool *pool;
	char err[256];
	int i, spins;

	(void)state;
	assert_non_null(base = net_base_new());
	assert_non_null(pool = authpool_start(base, path, 2, err, sizeof(err)));
	memset(c, 0, sizeof(c));
	for (i = 0; i < 3; i++) {
		c[i].job.work = pool_work;
		c[i].job.done = pool_done_cb;
		c[i].lock_rc = 99;
	}
	snprintf(c[0].job.name, sizeof(c[0].job.name), "ana");
	snprintf(c[0].job.pass, sizeof(c[0].job.pass), "ana-pw");
	snprintf(c[1].job.name, sizeof(c[1].job.name), "ana");
	snprintf(c[1].job.pass, sizeof(c[1].job.pass), "wrong");
	authpool_submit(pool, &c[0].job);	/* right password: the work runs */
	authpool_submit(pool, &c[1].job);	/* wrong: it does not */
	authpool_submit_work(pool, &c[2].job);	/* work alone */
	/* The loop has no other event: poll it, 10 s at most. */
	for (spins = 0; pool_done < 3 && spins < 1000; spins++) {
		const struct timespec pause = { 0, 10 * 1000 * 1000 };

		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&pause, NULL);
	}
	assert_int_equal(pool_done, 3);
	assert_int_equal(c[0].job.result, LOGIN_OK);
	assert_true(c[0].worked);
	assert_int_equal(c[0].lock_rc, 0);
	assert_int_equal(c[1].job.result, LOGIN_FAILED);
	assert_false(c[1].worked);
	assert_int_equal(c[1].lock_rc, 99);
	assert_true(c[2].worked);
	assert_int_equal(c[2].lock_rc, 0);
	assert_false(pthread_equal(c[2].worker, pthread_self()));
	assert_string_equal(c[0].job.pass, "");	/* wiped by the check */
	/* The workers' writes are in the store, seen through another handle. */
	assert_int_equal(store_mailbox_lock(st, "ana", "test/1/other", 60), STORE_LOCKED);
	assert_int_equal(store_mailbox_lock(st, "bob", "test/1/other", 60), STORE_LOCKED);
	assert_int_equal(store_mailbox_unlock(st, "ana", "test/1/pool"), 0);
	assert_int_equal(store_mailbox_unlock(st, "bob", "test/1/pool"), 0);
	authpool_stop(&pool);
	assert_null(pool);
	net_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_name),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_pool),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
