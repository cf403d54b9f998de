/*
 * tmpstore.h - a fresh store for a unit test: its own directory under
 * $CORREIO_TEST_TMP (or /tmp), made by tmpstore_new() and removed, store
 * closed, by tmpstore_free(). For cmocka setup and teardown functions.
 */
#ifndef CORREIO_TMPSTORE_H
#define CORREIO_TMPSTORE_H

#include <stdbool.h>

struct store;

struct tmpstore {
	char		 dir[512];
	char		 path[600];	/* dir/correio.db */
	struct store	*st;
};

/* A store in a new directory named PREFIX-XXXXXX, with the accounts ana and
 * bob when accounts is true. Fails the running test on any error. */
struct tmpstore *tmpstore_new(const char *prefix, bool accounts);
/* Close the store and remove its directory; 0, or -1 if it stays. */
int	tmpstore_free(struct tmpstore *t);

#endif
