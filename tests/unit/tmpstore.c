/*
 * tmpstore.c - a fresh store for a unit test (see tmpstore.h).
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "store.h"
#include "tmpstore.h"

struct tmpstore *
tmpstore_new(const char *prefix, bool accounts)
{
	struct tmpstore *t = calloc(1, sizeof(*t));
	const char *base = getenv("CORREIO_TEST_TMP");
	char err[512];

	assert_non_null(t);
	if (base == NULL || *base == '\0')
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(t->dir, sizeof(t->dir), "%s/%s-XXXXXX", base, prefix);
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/correio.db", t->dir);
	if (store_open(&t->st, t->path, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	if (accounts) {
		assert_int_equal(store_user_add(t->st, "ana", "$y$hash-ana"), 0);
		assert_int_equal(store_user_add(t->st, "bob", "$y$hash-bob"), 0);
	}
	return t;
}

int
tmpstore_free(struct tmpstore *t)
{
	char cmd[700];
	int rc = 0;

	store_close(&t->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", t->dir);
		rc = -1;
	}
	free(t);
	return rc;
}
