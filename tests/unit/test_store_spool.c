/*
 * test_store_spool.c - bodies in bounded memory (store_delivery_spool()):
 * a body past the memory buffer goes to an anonymous spool file and reaches
 * the store byte for byte at commit (written in odd-sized pieces, alone and
 * in a group commit beside small and failing deliveries); the spool leaves
 * no file in the directory; a delivery freed before commit stores nothing.
 * On either backend (unit/test_store_spool on SQLite, unit/test_store_spool@pg
 * on PostgreSQL); every test spools into a directory of its own.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"
#include "tmpstore.h"

static int
setup(void **state)
{
	*state = tmpstore_new("spool", true);
	return 0;
}

static int
teardown(void **state)
{
	(void)tmpstore_free(*state);
	return 0;
}

/* Octet i of test body number seed (CRLF lines of varying length). */
static unsigned char
body_at(size_t i, unsigned seed)
{
	size_t k = (i * 7 + seed) % 83;

	if (k == 81)
		return '\r';
	if (k == 82)
		return '\n';
	return (unsigned char)('!' + (i * 31 + seed * 17) % 90);
}

/* Append len octets of body seed in pieces of 1..piece_max octets. */
static void
fill(struct store_delivery *d, size_t len, unsigned seed, size_t piece_max)
{
	unsigned char piece[9000];
	size_t off = 0, n, i;

	assert_true(piece_max <= sizeof(piece));
	while (off < len) {
		n = 1 + (off * 13 + seed) % piece_max;
		if (n > len - off)
			n = len - off;
		for (i = 0; i < n; i++)
			piece[i] = body_at(off + i, seed);
		assert_int_equal(store_delivery_body(d, piece, n), 0);
		off += n;
	}
	assert_int_equal(store_delivery_size(d), len);
}

/* The message of account's first entry equals body seed of len octets. */
static void
check_stored(struct store *st, const char *account, size_t idx, size_t len, unsigned seed)
{
	struct store_msg *msgs;
	size_t n, got, off = 0, i;
	static unsigned char chunk[65536];

	assert_int_equal(store_mailbox_list(st, account, &msgs, &n), 0);
	assert_true(idx < n);
	assert_int_equal(msgs[idx].size, (int64_t)len);
	for (;;) {
		assert_int_equal(store_msg_read(st, msgs[idx].entry_id, (int64_t)off, chunk,
		    sizeof(chunk), &got), 0);
		if (got == 0)
			break;
		for (i = 0; i < got; i++)
			if (chunk[i] != body_at(off + i, seed))
				fail_msg("octet %zu differs", off + i);
		off += got;
	}
	assert_int_equal(off, len);
	free(msgs);
	store_read_done(st);
}

/* Only the store's own files (SQLite: correio.db and its WAL files;
 * PostgreSQL: none): no spool file is ever named. */
static void
check_no_spool_files(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;

	assert_non_null(dp);
	while ((e = readdir(dp)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strncmp(e->d_name, "correio.db", 10) != 0)
			fail_msg("left in the store directory: %s", e->d_name);
	}
	closedir(dp);
}

static void
test_spool_alone(void **state)
{
	struct tmpstore *f = *state;
	/* exactly the buffer, one octet past it, and 1 MiB + change */
	static const size_t sizes[] = { 65536, 65537, (1u << 20) + 12345 };
	struct store_delivery *d;
	size_t i;

	for (i = 0; i < 3; i++) {
		assert_non_null(d = store_delivery_new("carla@example.org", "s1"));
		assert_int_equal(store_delivery_spool(d, f->dir), 0);
		assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
		fill(d, sizes[i], (unsigned)i, 8999);
		check_no_spool_files(f->dir);
		assert_int_equal(store_delivery_commit(f->st, d), 0);
		store_delivery_free(&d);
		check_stored(f->st, "ana", i, sizes[i], (unsigned)i);
	}
	check_no_spool_files(f->dir);
}

static void
test_spool_in_batch(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *ds[4];
	int result[4];
	size_t i;

	for (i = 0; i < 4; i++) {
		assert_non_null(ds[i] = store_delivery_new("carla@example.org", "s2"));
		assert_int_equal(store_delivery_spool(ds[i], f->dir), 0);
	}
	assert_int_equal(store_delivery_add_rcpt(ds[0], "ana"), 0);
	fill(ds[0], 300000, 5, 1000);
	assert_int_equal(store_delivery_add_rcpt(ds[1], "ghost"), 0);	/* fails alone */
	fill(ds[1], 200000, 6, 4000);
	assert_int_equal(store_delivery_add_rcpt(ds[2], "bob"), 0);
	fill(ds[2], 4096, 7, 100);					/* stays in memory */
	assert_int_equal(store_delivery_add_rcpt(ds[3], "bob"), 0);
	assert_int_equal(store_delivery_add_rcpt(ds[3], "ana"), 0);
	fill(ds[3], 2u << 20, 8, 8999);

	assert_int_equal(store_delivery_commit_batch(f->st, ds, 4, result), 0);
	assert_int_equal(result[0], 0);
	assert_int_equal(result[1], -1);
	assert_int_equal(result[2], 0);
	assert_int_equal(result[3], 0);
	for (i = 0; i < 4; i++)
		store_delivery_free(&ds[i]);
	check_stored(f->st, "ana", 0, 300000, 5);
	check_stored(f->st, "ana", 1, 2u << 20, 8);
	check_stored(f->st, "bob", 0, 4096, 7);
	check_stored(f->st, "bob", 1, 2u << 20, 8);
	check_no_spool_files(f->dir);
}

/* Open file descriptors of this process. */
static int
open_fds(void)
{
	DIR *dp = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(dp);
	while ((e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dp);
	return n - 1;		/* dp's own */
}

/*
 * A spool file outlives its delivery and serves the next one (making a file
 * is an inode allocation each time): the first spooled delivery leaves one
 * more descriptor open, and the next ones open none. A shorter body after a
 * longer one is stored as itself, without the longer one's tail.
 */
static void
test_spool_reused(void **state)
{
	struct tmpstore *f = *state;
	static const size_t sizes[] = { (1u << 20) + 777, 100000, 70000, 300000 };
	struct store_delivery *d;
	int before = open_fds(), kept = -1;
	size_t i;

	for (i = 0; i < 4; i++) {
		assert_non_null(d = store_delivery_new("carla@example.org", "s4"));
		assert_int_equal(store_delivery_spool(d, f->dir), 0);
		assert_int_equal(store_delivery_add_rcpt(d, "bob"), 0);
		fill(d, sizes[i], 20 + (unsigned)i, 8999);
		if (kept != -1)
			assert_int_equal(open_fds(), kept);	/* the kept file, no new one */
		assert_int_equal(store_delivery_commit(f->st, d), 0);
		store_delivery_free(&d);
		if (kept == -1)
			kept = open_fds();
		check_stored(f->st, "bob", i, sizes[i], 20 + (unsigned)i);
	}
	assert_true(kept <= before + 1);
	check_no_spool_files(f->dir);
}

/* Freed before its commit (a dropped connection): nothing stored, no file. */
static void
test_spool_abandoned(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *d;
	struct store_msg *msgs;
	size_t n;

	assert_non_null(d = store_delivery_new("carla@example.org", "s3"));
	assert_int_equal(store_delivery_spool(d, f->dir), 0);
	assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
	fill(d, 500000, 9, 8999);
	store_delivery_free(&d);
	assert_null(d);
	assert_int_equal(store_mailbox_list(f->st, "ana", &msgs, &n), 0);
	assert_int_equal(n, 0);
	free(msgs);
	check_no_spool_files(f->dir);
}

/* A spool directory that cannot be written: the body refuses, no crash. */
static void
test_spool_unwritable(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *d;
	char missing[700];
	unsigned char piece[4096];

	(void)f;
	snprintf(missing, sizeof(missing), "%s/no-such-dir", f->dir);
	memset(piece, 'x', sizeof(piece));
	assert_non_null(d = store_delivery_new("carla@example.org", "s4"));
	assert_int_equal(store_delivery_spool(d, missing), 0);
	for (int i = 0; i < 16; i++)	/* 64 KiB fits the buffer */
		assert_int_equal(store_delivery_body(d, piece, sizeof(piece)), 0);
	assert_int_equal(store_delivery_body(d, piece, sizeof(piece)), -1);
	store_delivery_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spool_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_in_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_abandoned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_unwritable, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
