/*
 * store_sqlite_bodies.c - large message bodies stored apart: a body that
 * spooled (more than STORE_SPOOL_MEM octets) is not copied into the
 * database but becomes a file of its own, "<store>-bodies/<message id>",
 * and its row in messages keeps an empty body (store version 8: an empty
 * body with a size above 0 means "the file").
 *
 * Why: SQLite writes a blob twice, into the WAL and again into the database
 * at the checkpoint, one page at a time. At 1 MB a message that was the
 * disk's bandwidth (two copies) and most of the writer thread's CPU; a file
 * is written once (docs/PERFORMANCE.md has the figures).
 *
 * The spool file (an O_TMPFILE in the store's directory) is the body file:
 * it is given its name with linkat(), nothing is copied. The order makes a
 * commit safe (docs/RELIABILITY.md):
 *
 *	link every body of the batch, each under its message id (its row is
 *	    already inserted, in the open transaction)
 *	fdatasync() each file, then fsync() the directory
 *	COMMIT the rows
 *
 * So a committed row's file is always on disk. A crash before the COMMIT
 * leaves files without rows; so does a deleting transaction that committed
 * just before the process died, since files are unlinked after their rows
 * are gone (bodies_committed()). Such a file is garbage: the sweep at
 * smtpd's start removes it (sqlite_tidy()), and until then a file under an
 * id being given again is replaced (bodies_link()): only the writer holding
 * the write lock can be giving that id, so the file belongs to a
 * transaction that was rolled back.
 *
 * When the spool cannot be linked (no such directory and none can be
 * made, the spool on another file system, a file system without O_TMPFILE)
 * the body goes into the database as before: the store works either way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_sqlite.h"

/* ---- the directory ------------------------------------------------------ */

/*
 * Open (and make, when missing) the bodies directory beside the store. A
 * directory made by root for a store owned by another user (mailcli admin
 * run as root) is given to the store's owner, so that the daemons, which
 * run as that user, can use it. 0, or -1 with errno (st->bodies_fd -1).
 */
static int
dir_open(struct store_sqlite *st)
{
	struct stat sb;
	int fd, made = 0;

	if (st->bodies_fd != -1)
		return 0;
	if ((fd = open(st->bodies_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 &&
	    errno == ENOENT) {
		if (mkdir(st->bodies_path, 0700) == -1 && errno != EEXIST)
			return -1;
		made = 1;
		fd = open(st->bodies_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd == -1)
		return -1;
	if (made && geteuid() == 0 && stat(st->files[STORE_F_DB].path, &sb) == 0 &&
	    sb.st_uid != 0)
		(void)fchown(fd, sb.st_uid, sb.st_gid);
	st->bodies_fd = fd;
	return 0;
}

int
bodies_init(struct store_sqlite *st, const char *path)
{
	st->bodies_fd = -1;
	if (asprintf(&st->bodies_path, "%s%s", path, STORE_BODIES_SUFFIX) == -1) {
		st->bodies_path = NULL;
		return -1;
	}
	(void)dir_open(st);	/* tried again when needed */
	return 0;
}

void
bodies_free(struct store_sqlite *st)
{
	if (st->bodies_fd != -1)
		close(st->bodies_fd);
	st->bodies_fd = -1;
	free(st->bodies_path);
	st->bodies_path = NULL;
	free(st->gone);
	st->gone = NULL;
	st->ngone = st->capgone = 0;
}

static void
id_name(char *dst, size_t len, int64_t id)
{
	snprintf(dst, len, "%" PRId64, id);
}

/* ---- writing ------------------------------------------------------------ */

void
bodies_prepare(struct store_delivery *d)
{
	/* Start the spool's writeback now, for the whole batch, so that the
	 * fdatasync()s after the links wait for writes already under way
	 * (and ext4 commits one journal transaction for all of them). */
	if (d->spooled > 0 && store_delivery_flush(d) == 0)
		(void)sync_file_range(d->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

int
bodies_link(struct store_sqlite *st, struct store_delivery *d, int64_t id)
{
	char proc[64], name[32];
	int r, e;

	if (d->spooled == 0 || d->fd == -1 || dir_open(st) == -1)
		return 1;
	if (store_delivery_flush(d) == -1) {
		e = errno;
		store_setmsg(&st->base, "spool: %s", strerror(e));
		if (e == ENOSPC || e == EDQUOT)
			store_set_full(&st->base);
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", d->fd);
	id_name(name, sizeof(name), id);
	r = linkat(AT_FDCWD, proc, st->bodies_fd, name, AT_SYMLINK_FOLLOW);
	if (r == -1 && errno == EEXIST) {
		/* Left by a transaction that was rolled back (see the top). */
		(void)unlinkat(st->bodies_fd, name, 0);
		r = linkat(AT_FDCWD, proc, st->bodies_fd, name, AT_SYMLINK_FOLLOW);
	}
	if (r == 0) {
		d->apart = true;
		return 0;
	}
	e = errno;
	if (e == ENOSPC || e == EDQUOT) {
		store_setmsg(&st->base, "%s/%s: %s", st->bodies_path, name, strerror(e));
		store_set_full(&st->base);
		return -1;
	}
	/* Not possible here: the body goes into the database (logged once). */
	if (!st->bodies_logged) {
		st->bodies_logged = true;
		log_warnx("event=store-bodies-inline dir=%s error=\"%s\" hint=\"large bodies are "
		    "copied into the database; keep the spool in the store's directory\"",
		    st->bodies_path, strerror(e));
	}
	return 1;
}

int
bodies_sync(struct store_sqlite *st, struct store_delivery **ds, size_t n, const int *result)
{
	size_t i;
	bool any = false;

	for (i = 0; i < n; i++) {
		if (result[i] != 0 || !ds[i]->apart)
			continue;
		any = true;
		if (fdatasync(ds[i]->fd) == -1) {
			store_setmsg(&st->base, "%s: sync message %" PRId64 ": %s", st->bodies_path,
			    ds[i]->id, strerror(errno));
			if (errno == ENOSPC || errno == EDQUOT)
				store_set_full(&st->base);
			return -1;
		}
	}
	if (any && fsync(st->bodies_fd) == -1) {
		store_setmsg(&st->base, "%s: sync: %s", st->bodies_path, strerror(errno));
		return -1;
	}
	return 0;
}

void
bodies_unlink(struct store_sqlite *st, int64_t id)
{
	char name[32];

	if (st->bodies_fd == -1)
		return;
	id_name(name, sizeof(name), id);
	(void)unlinkat(st->bodies_fd, name, 0);
}

/* ---- deleting: files go after their rows -------------------------------- */

/* Message id's row is deleted in the open transaction: its file goes when
 * it commits (bodies_committed), stays if it rolls back. 0 or -1. */
static int
bodies_drop_later(struct store_sqlite *st, int64_t id)
{
	int64_t *v;

	if (st->ngone == st->capgone) {
		size_t cap = st->capgone ? st->capgone * 2 : 16;

		if ((v = reallocarray(st->gone, cap, sizeof(*v))) == NULL) {
			store_setmsg(&st->base, "out of memory");
			return -1;
		}
		st->gone = v;
		st->capgone = cap;
	}
	st->gone[st->ngone++] = id;
	return 0;
}

int
bodies_delete_step(struct store_sqlite *st, sqlite3_stmt *s, const char *what)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (sqlite3_column_int(s, 1) != 0 &&
		    bodies_drop_later(st, sqlite3_column_int64(s, 0)) == -1) {
			store_stmt_done(s);
			return -1;
		}
	if (rc != SQLITE_DONE)
		store_seterr(st, what);
	store_stmt_done(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

void
bodies_committed(struct store_sqlite *st)
{
	size_t i;

	if (st->ngone > 0 && dir_open(st) == 0)
		for (i = 0; i < st->ngone; i++)
			bodies_unlink(st, st->gone[i]);
	st->ngone = 0;		/* a failed unlink is left to the sweep */
}

void
bodies_rolled_back(struct store_sqlite *st)
{
	st->ngone = 0;
}

/* ---- reading ------------------------------------------------------------ */

int
bodies_open_file(struct store_sqlite *st, int64_t id, int64_t size)
{
	struct stat sb;
	char name[32];
	int fd;

	id_name(name, sizeof(name), id);
	if (dir_open(st) == -1 ||
	    (fd = openat(st->bodies_fd, name, O_RDONLY | O_CLOEXEC)) == -1) {
		store_setmsg(&st->base, "message %" PRId64 ": %s/%s: %s", id,
		    st->bodies_path ? st->bodies_path : "", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || sb.st_size != size) {
		store_setmsg(&st->base, "message %" PRId64 ": %s/%s holds %lld octets, not %"
		    PRId64, id, st->bodies_path, name, (long long)sb.st_size, size);
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the sweep ---------------------------------------------------------- */

/*
 * Remove the files no committed row owns. Under the write lock: no other
 * program can be between its links and its COMMIT meanwhile, so every
 * file without its row is garbage. Returns how many went, or -1.
 */
int
sqlite_tidy(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	struct dirent *de;
	DIR *dir;
	int64_t id;
	char *end;
	int fd, removed = 0, rc = SQLITE_DONE;

	if (dir_open(st) == -1)
		return 0;	/* no directory: nothing stored apart yet */
	if ((fd = openat(st->bodies_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (dir = fdopendir(fd)) == NULL) {
		store_setmsg(&st->base, "%s: %s", st->bodies_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (store_begin(st) == -1) {
		closedir(dir);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;	/* not a message id */
		errno = 0;
		id = strtoll(de->d_name, &end, 10);
		if (*end != '\0' || errno != 0)
			continue;
		s = store_stmt_get(st, ST_MSG_APART);
		sqlite3_bind_int64(s, 1, id);
		rc = sqlite3_step(s);
		store_stmt_done(s);
		if (rc == SQLITE_ROW)
			continue;
		if (rc != SQLITE_DONE)
			break;
		if (unlinkat(st->bodies_fd, de->d_name, 0) == 0)
			removed++;
	}
	closedir(dir);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_seterr(st, "tidy the bodies");
		store_rollback(st);
		return -1;
	}
	store_rollback(st);	/* nothing was written */
	if (removed > 0)
		log_info("event=store-bodies-swept dir=%s removed=%d", st->bodies_path, removed);
	return removed;
}
