/*
 * test_store_web.c - what webd keeps in the store, on either backend
 * (unit/test_store_web on SQLite, unit/test_store_web@pg on PostgreSQL):
 * the teacher flag, web logins (found by key until they expire, gone at
 * logout, purged when expired, gone with their account), API tokens, and a
 * mailbox entry found for its owner only, with the session that delivered
 * it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "store.h"
#include "tmpstore.h"

static int
setup(void **state)
{
	*state = tmpstore_new("storeweb", true);
	return 0;
}

static int
teardown(void **state)
{
	(void)tmpstore_free(*state);
	return 0;
}

static void
test_teacher(void **state)
{
	struct tmpstore *f = *state;

	assert_int_equal(store_user_is_teacher(f->st, "ana"), 0);
	assert_int_equal(store_user_set_teacher(f->st, "ana", true), 0);
	assert_int_equal(store_user_is_teacher(f->st, "ANA"), 1);
	assert_int_equal(store_user_is_teacher(f->st, "bob"), 0);
	assert_int_equal(store_user_set_teacher(f->st, "ana", false), 0);
	assert_int_equal(store_user_is_teacher(f->st, "ana"), 0);
	assert_int_equal(store_user_set_teacher(f->st, "nobody", true), STORE_NOTFOUND);
	assert_int_equal(store_user_is_teacher(f->st, "nobody"), STORE_NOTFOUND);
}

static void
test_websessions(void **state)
{
	struct tmpstore *f = *state;
	char account[STORE_NAME_MAX + 1], csrf[STORE_CSRF_MAX + 1];
	int64_t now = 1800000000;

	assert_int_equal(store_websession_add(f->st, "k1", "bob", "c1", now + 3600), 0);
	assert_int_equal(store_websession_get(f->st, "k1", now, account, csrf), 0);
	assert_string_equal(account, "bob");
	assert_string_equal(csrf, "c1");
	/* expired: not found */
	assert_int_equal(store_websession_get(f->st, "k1", now + 3600, account, csrf),
	    STORE_NOTFOUND);
	assert_int_equal(store_websession_get(f->st, "other", now, account, csrf), STORE_NOTFOUND);
	assert_int_equal(store_websession_add(f->st, "k2", "nobody", "c2", now + 3600),
	    STORE_NOTFOUND);
	/* logout */
	assert_int_equal(store_websession_del(f->st, "k1"), 0);
	assert_int_equal(store_websession_get(f->st, "k1", now, account, csrf), STORE_NOTFOUND);
	/* an expired login is purged by the next one (the clock is real here) */
	assert_int_equal(store_websession_add(f->st, "old", "ana", "c", 1), 0);
	assert_int_equal(store_websession_add(f->st, "new", "ana", "c", now * 2), 0);
	assert_int_equal(store_websession_get(f->st, "old", 0, account, csrf), STORE_NOTFOUND);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM web_sessions WHERE id = 'old'"), 0);
	/* gone with the account */
	assert_int_equal(store_user_del(f->st, "ana"), 0);
	assert_int_equal(store_websession_get(f->st, "new", now, account, csrf), STORE_NOTFOUND);
}

static void
test_tokens(void **state)
{
	struct tmpstore *f = *state;
	char account[STORE_NAME_MAX + 1];

	assert_int_equal(store_token_add(f->st, "t1", "ana"), 0);
	assert_int_equal(store_token_add(f->st, "t1", "bob"), STORE_EXISTS);
	assert_int_equal(store_token_add(f->st, "t2", "nobody"), STORE_NOTFOUND);
	assert_int_equal(store_token_get(f->st, "t1", account), 0);
	assert_string_equal(account, "ana");
	assert_int_equal(store_token_get(f->st, "t2", account), STORE_NOTFOUND);
	assert_int_equal(store_user_del(f->st, "ana"), 0);
	assert_int_equal(store_token_get(f->st, "t1", account), STORE_NOTFOUND);
}

static void
test_mailbox_entry(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *d = store_delivery_new("ana@lab.test", "14bc0a7bef1a");
	struct store_msg_info info;
	struct store_msg *msgs;
	size_t n;

	assert_non_null(d);
	assert_int_equal(store_delivery_add_rcpt(d, "bob"), 0);
	assert_int_equal(store_delivery_body(d, "Subject: x\r\n\r\nhi\r\n", 19), 0);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	assert_int_equal(store_mailbox_list(f->st, "bob", &msgs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_mailbox_entry(f->st, "bob", msgs[0].entry_id, &info), 0);
	assert_int_equal(info.msg.size, 19);
	assert_string_equal(info.session, "14bc0a7bef1a");
	assert_string_equal(info.sender, "ana@lab.test");
	/* someone else's, or no such entry: not found, the same way */
	assert_int_equal(store_mailbox_entry(f->st, "ana", msgs[0].entry_id, &info), STORE_NOTFOUND);
	assert_int_equal(store_mailbox_entry(f->st, "bob", msgs[0].entry_id + 1, &info),
	    STORE_NOTFOUND);
	/* expunged: gone */
	assert_int_equal(store_mailbox_expunge(f->st, "bob", &msgs[0].entry_id, 1), 0);
	assert_int_equal(store_mailbox_entry(f->st, "bob", msgs[0].entry_id, &info), STORE_NOTFOUND);
	free(msgs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_teacher, setup, teardown),
		cmocka_unit_test_setup_teardown(test_websessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_entry, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
