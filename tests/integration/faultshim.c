/*
 * faultshim.c - an LD_PRELOAD library for the fault tests: makes the Nth
 * write, pwrite, pwrite64, fsync or fdatasync on a file under one directory
 * fail with a chosen errno (EIO, ENOSPC), as a failing or full disk would.
 *
 * Environment: CORREIO_FAULT_DIR, the directory whose files count (the
 * store's; an unnamed spool file there counts too). Arming: the file
 * $CORREIO_FAULT_DIR/fault-arm holding "N ERRNO". Each time that file is
 * replaced (a new inode or ctime), counting starts again from 0; the Nth call fails
 * (once), and the library then creates $CORREIO_FAULT_DIR/fault-fired holding
 * what failed. Without the arm file nothing fails. Calls on other files (the
 * log, sockets) are never counted. Used by test_faults_io.py; never shipped.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHIM_PATH_MAX	4096

static pthread_mutex_t shim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec shim_stamp;	/* arm file seen last (its ctime) */
static ino_t	 shim_ino;
static long	 shim_n, shim_count;	/* fail call shim_n; calls so far */
static int	 shim_errno;
static int	 shim_fired;

/* Is fd a file under $CORREIO_FAULT_DIR? */
static int
shim_watched(int fd, const char **dir_r)
{
	char link[64], path[SHIM_PATH_MAX];
	const char *dir = getenv("CORREIO_FAULT_DIR");
	ssize_t n;
	size_t len;

	if (dir == NULL || *dir == '\0')
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return 0;
	path[n] = '\0';
	len = strlen(dir);
	*dir_r = dir;
	return strncmp(path, dir, len) == 0 && path[len] == '/';
}

/* Should this call fail? Returns the errno to fail with, or 0. */
static int
shim_fail(int fd, const char *what)
{
	char arm[SHIM_PATH_MAX], fired[SHIM_PATH_MAX];
	const char *dir;
	struct stat sb;
	FILE *f;
	long n = 0;
	int e = 0, saved = errno, ret = 0;

	if (!shim_watched(fd, &dir)) {
		errno = saved;
		return 0;
	}
	snprintf(arm, sizeof(arm), "%s/fault-arm", dir);
	pthread_mutex_lock(&shim_lock);
	if (stat(arm, &sb) == -1) {
		shim_ino = 0;
		goto out;
	}
	/* A new arm file: inode numbers are reused, so its ctime tells too. */
	if (sb.st_ino != shim_ino || sb.st_ctim.tv_sec != shim_stamp.tv_sec ||
	    sb.st_ctim.tv_nsec != shim_stamp.tv_nsec) {
		shim_ino = sb.st_ino;
		shim_stamp = sb.st_ctim;
		shim_count = 0;
		shim_fired = 0;
		shim_n = 0;
		if ((f = fopen(arm, "re")) != NULL) {
			if (fscanf(f, "%ld %d", &n, &e) == 2) {
				shim_n = n;
				shim_errno = e;
			}
			fclose(f);
		}
	}
	if (shim_fired || shim_n <= 0 || ++shim_count != shim_n)
		goto out;
	shim_fired = 1;
	ret = shim_errno;
	snprintf(fired, sizeof(fired), "%s/fault-fired", dir);
	if ((f = fopen(fired, "we")) != NULL) {
		fprintf(f, "%ld %s fd=%d errno=%d\n", shim_n, what, fd, ret);
		fclose(f);
	}
out:
	pthread_mutex_unlock(&shim_lock);
	errno = saved;
	return ret;
}

/* The next definition of a symbol (libc's, or a sanitizer's). */
static void *
shim_next(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL)
		abort();
	return p;
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	static ssize_t (*next)(int, const void *, size_t);
	int e;

	if (next == NULL)
		*(void **)&next = shim_next("write");
	if ((e = shim_fail(fd, "write")) != 0) {
		errno = e;
		return -1;
	}
	return next(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*next)(int, const void *, size_t, off_t);
	int e;

	if (next == NULL)
		*(void **)&next = shim_next("pwrite");
	if ((e = shim_fail(fd, "pwrite")) != 0) {
		errno = e;
		return -1;
	}
	return next(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	static ssize_t (*next)(int, const void *, size_t, off64_t);
	int e;

	if (next == NULL)
		*(void **)&next = shim_next("pwrite64");
	if ((e = shim_fail(fd, "pwrite64")) != 0) {
		errno = e;
		return -1;
	}
	return next(fd, buf, n, off);
}

int
fsync(int fd)
{
	static int (*next)(int);
	int e;

	if (next == NULL)
		*(void **)&next = shim_next("fsync");
	if ((e = shim_fail(fd, "fsync")) != 0) {
		errno = e;
		return -1;
	}
	return next(fd);
}

int
fdatasync(int fd)
{
	static int (*next)(int);
	int e;

	if (next == NULL)
		*(void **)&next = shim_next("fdatasync");
	if ((e = shim_fail(fd, "fdatasync")) != 0) {
		errno = e;
		return -1;
	}
	return next(fd);
}
