/*
 * store_sqlite_bodies.c - message bodies in the SQLite store, and large ones
 * stored apart: a body that spooled (more than STORE_SPOOL_MEM octets) is
 * not copied into the database but becomes a file of its own,
 * "<store>-bodies/<message id>", and its row in messages keeps an empty
 * body (store version 8: an empty body with a size above 0 means "the
 * file"). Reading any body, blob or file, goes through store_body_open()
 * and store_body_pread() here.
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
 * are gone (bodies_committed(): a deleted message's id is never given
 * again). Such a file is garbage: the sweep at smtpd's start removes it
 * (sqlite_tidy()).
 *
 * The one rule for a file under an id not committed: only the holder of the
 * write lock touches it. That holder may be giving the id again (a rolled
 * back insert does not use it up), so bodies_link() replaces a file it
 * finds there, and a writer that rolls back unlinks its files before it
 * gives the lock up, never after (another program may have the id by then).
 *
 * The directory and its files take the database file's permissions (group
 * bits included), so that daemons that share the database by its group can
 * read the bodies too. When the spool cannot be linked (the spool on another
 * file system, a directory that cannot be made, a file system without
 * O_TMPFILE) the body goes into the database as before.
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

/* The database file's permissions for the bodies' files (and, with x where
 * r, for their directory); its owner and group when root makes it. */
static void
db_perms(const struct store_sqlite *st, mode_t *mode_r, uid_t *uid_r, gid_t *gid_r)
{
	struct stat sb;

	*mode_r = 0600;
	*uid_r = (uid_t)-1;
	*gid_r = (gid_t)-1;
	if (stat(st->files[STORE_F_DB].path, &sb) == 0) {
		*mode_r = (sb.st_mode & 0666) | 0600;
		*uid_r = sb.st_uid;
		*gid_r = sb.st_gid;
	}
}

/* Sync the directory that holds path (a new entry in it). */
static int
sync_parent(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd, rc = -1;

	if (dir == NULL)
		return -1;
	if ((slash = strrchr(dir, '/')) == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		rc = fsync(fd);
		close(fd);
	}
	free(dir);
	return rc;
}

/*
 * Open the bodies directory beside the store; make it (make: a writer about
 * to link into it) when missing, with the database file's permissions, its
 * owner's when root makes it, and its entry synced into the store's
 * directory before anything is linked into it. 0, or -1 with errno.
 */
static int
dir_open(struct store_sqlite *st, bool make)
{
	struct stat sb;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	int fd, e;

	if (st->bodies_fd != -1)
		return 0;
	if (st->bodies_path == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if ((fd = open(st->bodies_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 &&
	    errno == ENOENT && make) {
		db_perms(st, &mode, &uid, &gid);
		if (mkdir(st->bodies_path, 0700) == -1 && errno != EEXIST)
			return -1;
		if ((fd = open(st->bodies_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
			return -1;
		if (geteuid() == 0 && uid != (uid_t)-1)
			(void)fchown(fd, uid, gid);
		(void)fchmod(fd, mode | ((mode & 0444) >> 2));
		if (fsync(fd) == -1 || sync_parent(st->bodies_path) == -1) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
	}
	if (fd == -1)
		return -1;
	if (fstat(fd, &sb) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	st->bodies_dev = sb.st_dev;
	st->bodies_ino = sb.st_ino;
	st->bodies_fd = fd;
	return 0;
}

/* Is the directory at the path still the one held open? (Removed or
 * replaced under a running program, what is linked into the old one is
 * seen by nobody: the commit is refused, as for the database's own files.) */
static bool
dir_still_there(const struct store_sqlite *st)
{
	struct stat sb;

	if (stat(st->bodies_path, &sb) == -1)
		return errno != ENOENT;		/* other errors prove nothing */
	return sb.st_dev == st->bodies_dev && sb.st_ino == st->bodies_ino;
}

int
bodies_init(struct store_sqlite *st, const char *path)
{
	/* The path SQLite resolved (symbolic links followed), so that every
	 * program reaching this database by any path finds the same bodies. */
	const char *db = st->files[STORE_F_DB].path[0] != '\0' ? st->files[STORE_F_DB].path : path;

	if (asprintf(&st->bodies_path, "%s%s", db, STORE_BODIES_SUFFIX) == -1) {
		st->bodies_path = NULL;
		return -1;
	}
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
	char proc[64], name[32], what[600];
	mode_t mode;
	uid_t uid;
	gid_t gid;
	int r, e;

	if (d->spooled == 0 || d->fd == -1)
		return 1;
	if (dir_open(st, true) == -1) {
		e = errno;
		goto inline_body;
	}
	if (store_delivery_flush(d) == -1) {
		store_seterrno(&st->base, errno, "spool");
		return -1;
	}
	db_perms(st, &mode, &uid, &gid);
	(void)fchmod(d->fd, mode);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", d->fd);
	id_name(name, sizeof(name), id);
	r = linkat(AT_FDCWD, proc, st->bodies_fd, name, AT_SYMLINK_FOLLOW);
	if (r == -1 && errno == EEXIST) {
		/* A rolled-back insert's, under the id given again (see the top). */
		if (unlinkat(st->bodies_fd, name, 0) == -1 && errno != ENOENT) {
			snprintf(what, sizeof(what), "%s/%s", st->bodies_path, name);
			store_seterrno(&st->base, errno, what);
			return -1;
		}
		r = linkat(AT_FDCWD, proc, st->bodies_fd, name, AT_SYMLINK_FOLLOW);
	}
	if (r == 0) {
		d->apart = true;
		return 0;
	}
	e = errno;
	if (e == ENOSPC || e == EDQUOT || e == EEXIST) {
		snprintf(what, sizeof(what), "%s/%s", st->bodies_path, name);
		store_seterrno(&st->base, e, what);
		return -1;
	}
inline_body:
	/* Not possible here: the body goes into the database (logged once). */
	if (!st->bodies_logged) {
		st->bodies_logged = true;
		log_warnx("event=store-bodies-inline dir=%s error=\"%s\" hint=\"large bodies are "
		    "copied into the database; the spool belongs in the store's directory, "
		    "writable by smtpd\"", st->bodies_path ? st->bodies_path : "-", strerror(e));
	}
	return 1;
}

int
bodies_sync(struct store_sqlite *st, struct store_delivery **ds, size_t n, const int *result)
{
	char what[600];
	size_t i;
	bool any = false;

	for (i = 0; i < n; i++) {
		if (result[i] != 0 || !ds[i]->apart)
			continue;
		any = true;
		if (fdatasync(ds[i]->fd) == -1) {
			snprintf(what, sizeof(what), "%s: sync message %" PRId64, st->bodies_path,
			    ds[i]->id);
			store_seterrno(&st->base, errno, what);
			return -1;
		}
	}
	if (!any)
		return 0;
	if (fsync(st->bodies_fd) == -1) {
		snprintf(what, sizeof(what), "%s: sync", st->bodies_path);
		store_seterrno(&st->base, errno, what);
		return -1;
	}
	if (!dir_still_there(st)) {
		store_setmsg(&st->base, "the store's bodies directory %s was deleted or replaced "
		    "under this program; writes are refused until it is restarted", st->bodies_path);
		if (!st->bodies_moved_logged) {
			st->bodies_moved_logged = true;
			log_warnx("event=store-replaced path=%s file=bodies action=\"writes refused "
			    "until restart\"", st->bodies_path);
		}
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

	if (st->ngone > 0 && dir_open(st, false) == 0)
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

/* Open message id's file, checked to hold size octets: a descriptor, or -1
 * (recorded: a missing or short file is an error, never an empty message). */
static int
open_file(struct store_sqlite *st, int64_t id, int64_t size)
{
	struct stat sb;
	char name[32];
	int fd;

	id_name(name, sizeof(name), id);
	if (dir_open(st, false) == -1 ||
	    (fd = openat(st->bodies_fd, name, O_RDONLY | O_CLOEXEC)) == -1) {
		store_setmsg(&st->base, "message %" PRId64 ": %s/%s: %s", id,
		    st->bodies_path ? st->bodies_path : "", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		store_setmsg(&st->base, "message %" PRId64 ": %s/%s: %s", id, st->bodies_path,
		    name, strerror(errno));
		close(fd);
		return -1;
	}
	if (sb.st_size != size) {
		store_setmsg(&st->base, "message %" PRId64 ": %s/%s holds %lld octets, not %"
		    PRId64, id, st->bodies_path, name, (long long)sb.st_size, size);
		close(fd);
		return -1;
	}
	return fd;
}

void
store_body_close(struct store_blob *b)
{
	if (b->blob != NULL)
		sqlite3_blob_close(b->blob);
	if (b->fd != -1)
		close(b->fd);
	b->blob = NULL;
	b->fd = -1;
}

int
store_body_open(struct store_sqlite *st, struct store_blob *b, int64_t message_id)
{
	sqlite3_stmt *s;
	int64_t size = 0;
	int rc;

	rc = sqlite3_blob_open(st->db, "main", "messages", "body", message_id, 0, &b->blob);
	if (rc != SQLITE_OK) {
		store_seterr(st, "open message");
		sqlite3_blob_close(b->blob);	/* harmless on NULL */
		b->blob = NULL;
		return (rc & 0xff) == SQLITE_ERROR ? STORE_NOTFOUND : -1;
	}
	b->size = sqlite3_blob_bytes(b->blob);
	if (b->size > 0)
		return 0;
	/* Empty: an empty message, or a body stored apart (its size says). */
	s = store_stmt_keep_blobs(st, ST_MSG_SIZE);
	sqlite3_bind_int64(s, 1, message_id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		size = sqlite3_column_int64(s, 0);
	else
		store_seterr(st, "open message");
	store_stmt_done(s);
	if (rc != SQLITE_ROW) {
		store_body_close(b);
		return -1;
	}
	if (size == 0)
		return 0;
	sqlite3_blob_close(b->blob);
	b->blob = NULL;
	if ((b->fd = open_file(st, message_id, size)) == -1)
		return -1;
	b->size = size;
	return 0;
}

int
store_body_pread(struct store_sqlite *st, struct store_blob *b, int64_t offset, void *dst,
    size_t len, size_t *got_r)
{
	size_t n;
	ssize_t r;

	*got_r = 0;
	if (offset < 0 || offset >= b->size)
		return 0;
	n = (size_t)(b->size - offset);
	if (n > len)
		n = len;
	if (n > INT32_MAX)
		n = INT32_MAX;
	if (b->fd != -1) {
		do
			r = pread(b->fd, dst, n, (off_t)offset);
		while (r == -1 && errno == EINTR);
		if (r <= 0) {
			store_setmsg(&st->base, "read message: %s", r == 0 ?
			    "its file is shorter than its size" : strerror(errno));
			return -1;
		}
		n = (size_t)r;
	} else if (sqlite3_blob_read(b->blob, dst, (int)n, (int)offset) != SQLITE_OK) {
		store_seterr(st, "read message");
		return -1;
	}
	*got_r = n;
	return 0;
}

/* ---- the sweep ---------------------------------------------------------- */

/* The ids of the files in the directory no row owns now (read snapshot).
 * 0 with *ids_r (malloc'd) and *n_r, or -1. */
static int
strays(struct store_sqlite *st, int64_t **ids_r, size_t *n_r)
{
	sqlite3_stmt *s;
	struct dirent *de;
	DIR *dir;
	int64_t id, *v = NULL, *nv;
	size_t n = 0, cap = 0;
	char *end;
	int fd, rc = SQLITE_DONE;
	bool began;

	*ids_r = NULL;
	*n_r = 0;
	if ((fd = openat(st->bodies_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (dir = fdopendir(fd)) == NULL) {
		store_setmsg(&st->base, "%s: %s", st->bodies_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	began = store_read_begin(st);
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
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
		}
		v[n++] = id;
	}
	store_read_end(st, began);
	closedir(dir);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_setmsg(&st->base, "tidy the bodies: %s", rc == SQLITE_NOMEM ? "out of memory" :
		    sqlite3_errmsg(st->db));
		free(v);
		return -1;
	}
	*ids_r = v;
	*n_r = n;
	return 0;
}

/*
 * Remove the files no committed row owns. Found in a read snapshot (the
 * directory may be large: no lock is held meanwhile), then each checked
 * again and removed under the write lock, where no other program can be
 * between its links and its COMMIT. Returns how many went, or -1.
 */
int
sqlite_tidy(struct store *base)
{
	struct store_sqlite *st = sqlite_of(base);
	sqlite3_stmt *s;
	char name[32];
	int64_t *ids;
	size_t n, i;
	int removed = 0, rc = SQLITE_DONE;

	if (dir_open(st, false) == -1) {
		if (errno == ENOENT)
			return 0;	/* nothing was ever stored apart */
		store_setmsg(&st->base, "%s: %s", st->bodies_path, strerror(errno));
		return -1;
	}
	if (strays(st, &ids, &n) == -1)
		return -1;
	if (n == 0)
		return 0;
	if (store_begin(st) == -1) {
		free(ids);
		return -1;
	}
	for (i = 0; i < n; i++) {
		s = store_stmt_get(st, ST_MSG_APART);
		sqlite3_bind_int64(s, 1, ids[i]);
		rc = sqlite3_step(s);
		store_stmt_done(s);
		if (rc == SQLITE_ROW)
			continue;	/* committed since */
		if (rc != SQLITE_DONE)
			break;
		id_name(name, sizeof(name), ids[i]);
		if (unlinkat(st->bodies_fd, name, 0) == 0)
			removed++;
	}
	free(ids);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_seterr(st, "tidy the bodies");
	store_rollback(st);	/* nothing was written */
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (removed > 0)
		log_info("event=store-bodies-swept dir=%s removed=%d", st->bodies_path, removed);
	return removed;
}
