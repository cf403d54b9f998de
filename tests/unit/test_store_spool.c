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
 * longer one is stored as itself, without the longer one's tail. On SQLite
 * the spool file becomes the body's own file (store_sqlite_bodies.c), so it
 * must never go back to the pool, where it would be emptied: every body is
 * still whole after the others, and no descriptor is left behind.
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
		if (kept != -1 && f->backend == TMPSTORE_PG)
			assert_int_equal(open_fds(), kept);	/* the kept file, no new one */
		assert_int_equal(store_delivery_commit(f->st, d), 0);
		store_delivery_free(&d);
		if (kept == -1)
			kept = open_fds();
		assert_int_equal(open_fds(), kept);
		check_stored(f->st, "bob", i, sizes[i], 20 + (unsigned)i);
	}
	for (i = 0; i < 4; i++)
		check_stored(f->st, "bob", i, sizes[i], 20 + (unsigned)i);
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


/* ---- SQLite: large bodies stored apart (store_sqlite_bodies.c) ---------- */

/* Size of dir/name, or -1 when there is no such file. */
static long long
file_size(const char *dir, const char *name)
{
	char path[1200];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Permission bits of dir/name. */
static int
file_mode(const char *dir, const char *name)
{
	char path[1200];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(stat(path, &sb), 0);
	return (int)(sb.st_mode & 07777);
}

/* How many files the bodies directory holds. */
static int
count_files(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (dp == NULL)
		return 0;
	while ((e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

/* Commit one spooled delivery of len octets (body seed) to account. Its id. */
static long long
deliver(struct tmpstore *f, const char *spool, const char *account, size_t len, unsigned seed)
{
	struct store_delivery *d;
	long long id;

	assert_non_null(d = store_delivery_new("carla@example.org", "s5"));
	assert_int_equal(store_delivery_spool(d, spool), 0);
	assert_int_equal(store_delivery_add_rcpt(d, account), 0);
	fill(d, len, seed, 8999);
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	id = store_delivery_id(d);
	store_delivery_free(&d);
	return id;
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[1200];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

/*
 * A body past the memory buffer is its spool file, named by its message id
 * (its row keeps an empty body), and the small one and the failed one of a
 * batch leave no file. A message's file goes when the message goes: at the
 * expunge of its last entry, and with the account.
 */
static void
test_bodies_apart(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *ds[4];
	struct store_msg *msgs;
	char bodies[700], name[32], sql[200];
	int result[4];
	size_t i, n;
	long long ids[4];

	if (f->backend != TMPSTORE_SQLITE)
		skip();
	snprintf(bodies, sizeof(bodies), "%s-bodies", f->path);
	/* made by the first link, not by opening the store; with the
	 * database file's permissions (a group sharing it reads bodies too) */
	assert_int_equal(access(bodies, F_OK), -1);
	assert_int_equal(chmod(f->path, 0640), 0);
	for (i = 0; i < 4; i++) {
		assert_non_null(ds[i] = store_delivery_new("carla@example.org", "s5"));
		assert_int_equal(store_delivery_spool(ds[i], f->dir), 0);
	}
	assert_int_equal(store_delivery_add_rcpt(ds[0], "ana"), 0);
	fill(ds[0], 1u << 20, 31, 8999);
	assert_int_equal(store_delivery_add_rcpt(ds[1], "ghost"), 0);	/* fails alone */
	fill(ds[1], 200000, 32, 4000);
	assert_int_equal(store_delivery_add_rcpt(ds[2], "bob"), 0);
	fill(ds[2], 4096, 33, 100);					/* in the database */
	assert_int_equal(store_delivery_add_rcpt(ds[3], "bob"), 0);
	assert_int_equal(store_delivery_add_rcpt(ds[3], "ana"), 0);
	fill(ds[3], 100000, 34, 8999);
	assert_int_equal(store_delivery_commit_batch(f->st, ds, 4, result), 0);
	for (i = 0; i < 4; i++) {
		ids[i] = store_delivery_id(ds[i]);
		store_delivery_free(&ds[i]);
	}
	assert_int_equal(result[1], -1);
	assert_int_equal(count_files(bodies), 2);
	snprintf(name, sizeof(name), "%lld", ids[0]);
	assert_int_equal(file_size(bodies, name), 1 << 20);
	assert_int_equal(file_mode(bodies, "."), 0750);
	assert_int_equal(file_mode(bodies, name), 0640);
	snprintf(name, sizeof(name), "%lld", ids[3]);
	assert_int_equal(file_size(bodies, name), 100000);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"
	    " WHERE length(body) = 0 AND size > 0"), 2);
	snprintf(sql, sizeof(sql), "SELECT length(body) FROM messages WHERE id = %lld", ids[2]);
	assert_int_equal(tmpstore_sql_int(f, sql), 4096);
	check_stored(f->st, "ana", 0, 1u << 20, 31);
	check_stored(f->st, "ana", 1, 100000, 34);
	check_stored(f->st, "bob", 0, 4096, 33);
	check_stored(f->st, "bob", 1, 100000, 34);

	/* bob expunges the shared message: ana still has it, the file stays */
	assert_int_equal(store_mailbox_list(f->st, "bob", &msgs, &n), 0);
	assert_int_equal(store_mailbox_expunge(f->st, "bob", &msgs[1].entry_id, 1), 0);
	free(msgs);
	assert_int_equal(count_files(bodies), 2);
	/* ana expunges her 1 MiB message: its file goes */
	assert_int_equal(store_mailbox_list(f->st, "ana", &msgs, &n), 0);
	assert_int_equal(store_mailbox_expunge(f->st, "ana", &msgs[0].entry_id, 1), 0);
	free(msgs);
	snprintf(name, sizeof(name), "%lld", ids[0]);
	assert_int_equal(file_size(bodies, name), -1);
	assert_int_equal(count_files(bodies), 1);
	/* and the account goes with the last one */
	assert_int_equal(store_user_del(f->st, "ana"), 0);
	assert_int_equal(count_files(bodies), 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 1);
}

/*
 * What a crash leaves: a file under an id no committed row has (a deleted
 * message's, a commit that never ended). store_tidy() removes them, and
 * only them; until it runs, the delivery that is given such an id replaces
 * the file. A body whose file is missing is an error to read, never an
 * empty message.
 */
static void
test_bodies_tidy(void **state)
{
	struct tmpstore *f = *state;
	struct store_msg *msgs;
	char bodies[700], name[32], path[800], keep[820];
	unsigned char chunk[100];
	long long a, b, c;
	size_t n, got;

	if (f->backend != TMPSTORE_SQLITE)
		skip();
	snprintf(bodies, sizeof(bodies), "%s-bodies", f->path);
	a = deliver(f, f->dir, "ana", 70000, 41);
	b = deliver(f, f->dir, "ana", 80000, 42);
	/* b's row goes, but the process "dies" before its file does */
	snprintf(path, sizeof(path), "%s/%lld", bodies, b);
	snprintf(keep, sizeof(keep), "%s.keep", path);
	assert_int_equal(link(path, keep), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &msgs, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_mailbox_expunge(f->st, "ana", &msgs[1].entry_id, 1), 0);
	free(msgs);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(rename(keep, path), 0);
	/* commits that never ended left files under ids never committed; a
	 * stranger's file is not ours */
	snprintf(name, sizeof(name), "%lld", b + 1);
	write_file(bodies, name, "from a transaction that never committed");
	snprintf(name, sizeof(name), "%lld", b + 100);
	write_file(bodies, name, "from another one");
	write_file(bodies, "notes.txt", "not ours");

	assert_int_equal(store_tidy(f->st), 3);
	assert_int_equal(count_files(bodies), 2);	/* a's, and the notes */
	snprintf(name, sizeof(name), "%lld", a);
	assert_int_equal(file_size(bodies, name), 70000);
	assert_int_equal(store_tidy(f->st), 0);

	/* before a tidy: the delivery given b + 1 replaces the stale file */
	snprintf(name, sizeof(name), "%lld", b + 1);
	write_file(bodies, name, "from a transaction that never committed");
	c = deliver(f, f->dir, "ana", 90000, 43);
	assert_int_equal(c, b + 1);
	assert_int_equal(file_size(bodies, name), 90000);
	check_stored(f->st, "ana", 1, 90000, 43);
	assert_int_equal(store_tidy(f->st), 0);

	/* a's file lost: reading it fails, it is not an empty message */
	snprintf(path, sizeof(path), "%s/%lld", bodies, a);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_mailbox_list(f->st, "ana", &msgs, &n), 0);
	assert_int_equal(store_msg_read(f->st, msgs[0].entry_id, 0, chunk, sizeof(chunk), &got),
	    -1);
	free(msgs);
	store_read_done(f->st);
}

/*
 * The bodies directory renamed away under a running program: a large body
 * linked into it would be seen by nobody, so its commit is refused (and
 * leaves nothing in the store); once the directory is back, bodies are
 * stored again.
 */
/* A spooled delivery of len octets (body seed) to bob that the store refuses. */
static void
deliver_refused(struct tmpstore *f, size_t len, unsigned seed)
{
	struct store_delivery *d;

	assert_non_null(d = store_delivery_new("carla@example.org", "s7"));
	assert_int_equal(store_delivery_spool(d, f->dir), 0);
	assert_int_equal(store_delivery_add_rcpt(d, "bob"), 0);
	fill(d, len, seed, 8999);
	assert_int_equal(store_delivery_commit(f->st, d), -1);
	store_delivery_free(&d);
}

static void
test_bodies_dir_moved(void **state)
{
	struct tmpstore *f = *state;
	char bodies[700], away[720];

	if (f->backend != TMPSTORE_SQLITE)
		skip();
	snprintf(bodies, sizeof(bodies), "%s-bodies", f->path);
	snprintf(away, sizeof(away), "%s.away", bodies);
	deliver(f, f->dir, "bob", 70000, 71);
	assert_int_equal(rename(bodies, away), 0);
	assert_int_equal(mkdir(bodies, 0700), 0);	/* another directory at the path */
	deliver_refused(f, 80000, 72);
	assert_int_equal(count_files(away), 1);		/* the first one only */
	assert_int_equal(count_files(bodies), 0);
	assert_int_equal(tmpstore_sql_int(f, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(rmdir(bodies), 0);
	assert_int_equal(rename(away, bodies), 0);
	deliver(f, f->dir, "bob", 90000, 73);
	check_stored(f->st, "bob", 1, 90000, 73);
}

/*
 * The database file replaced under an open handle (another store moved to
 * its path, with the same bodies directory beside it): a large delivery
 * through the old handle is refused before its body is linked, so the new
 * store's body file of the id the old one would give is left as it is.
 */
static void
test_bodies_store_replaced(void **state)
{
	struct tmpstore *f = *state;
	struct store *other;
	char bodies[700], other_path[700], err[256], name[32], path[800], got[64] = "";
	long long id;
	FILE *fp;

	if (f->backend != TMPSTORE_SQLITE)
		skip();
	snprintf(bodies, sizeof(bodies), "%s-bodies", f->path);
	snprintf(other_path, sizeof(other_path), "%s/other.db", f->dir);
	id = deliver(f, f->dir, "bob", 70000, 81);
	assert_int_equal(store_open(&other, other_path, err, sizeof(err)), 0);
	store_close(&other);
	assert_int_equal(rename(other_path, f->path), 0);
	snprintf(name, sizeof(name), "%lld", id + 1);	/* the new store's message */
	write_file(bodies, name, "the new store's body");
	deliver_refused(f, 80000, 82);
	assert_int_equal(count_files(bodies), 2);
	snprintf(path, sizeof(path), "%s/%s", bodies, name);
	assert_non_null(fp = fopen(path, "r"));
	assert_non_null(fgets(got, sizeof(got), fp));
	fclose(fp);
	assert_string_equal(got, "the new store's body");
}

/*
 * A spool file that became a body is owed to the pool: store_spool_refill()
 * makes it again (one more descriptor held, no name in the directory), at
 * most as many as asked and as owed, and the next delivery spools into it
 * without opening a file.
 */
static void
test_spool_refill(void **state)
{
	struct tmpstore *f = *state;
	struct store_delivery *d;
	int base;

	if (f->backend != TMPSTORE_SQLITE)
		skip();
	deliver(f, f->dir, "ana", 70000, 61);
	deliver(f, f->dir, "ana", 70000, 62);
	base = open_fds();
	store_spool_refill(1);
	assert_int_equal(open_fds(), base + 1);
	store_spool_refill(16);
	assert_int_equal(open_fds(), base + 2);		/* two were owed */
	store_spool_refill(16);
	assert_int_equal(open_fds(), base + 2);		/* nothing more */
	check_no_spool_files(f->dir);
	assert_non_null(d = store_delivery_new("carla@example.org", "s6"));
	assert_int_equal(store_delivery_spool(d, f->dir), 0);
	assert_int_equal(store_delivery_add_rcpt(d, "ana"), 0);
	fill(d, 100000, 63, 8999);
	assert_int_equal(open_fds(), base + 2);		/* a made one, not a new one */
	assert_int_equal(store_delivery_commit(f->st, d), 0);
	store_delivery_free(&d);
	check_stored(f->st, "ana", 2, 100000, 63);
}

/*
 * A spool on another file system cannot be linked into the store's
 * directory: the body goes into the database, whole, as before.
 */
static void
test_bodies_other_fs(void **state)
{
	struct tmpstore *f = *state;
	struct stat a, b;
	char spool[] = "/dev/shm/correio-spool-XXXXXX", sql[200];
	long long id;

	if (f->backend != TMPSTORE_SQLITE)
		skip();
	if (mkdtemp(spool) == NULL)
		skip();
	if (stat(spool, &a) == -1 || stat(f->dir, &b) == -1 || a.st_dev == b.st_dev) {
		rmdir(spool);
		skip();		/* one file system: nothing to show */
	}
	id = deliver(f, spool, "bob", 300000, 51);
	rmdir(spool);
	snprintf(sql, sizeof(sql), "SELECT length(body) FROM messages WHERE id = %lld", id);
	assert_int_equal(tmpstore_sql_int(f, sql), 300000);
	check_stored(f->st, "bob", 0, 300000, 51);
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
		cmocka_unit_test_setup_teardown(test_bodies_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bodies_tidy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bodies_other_fs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_refill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bodies_dir_moved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bodies_store_replaced, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
