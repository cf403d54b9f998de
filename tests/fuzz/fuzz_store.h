/*
 * fuzz_store.h - a scratch store for the session fuzz targets: a SQLite file
 * in /dev/shm (or $TMPDIR) with the domain lab.test, the accounts ana and bob
 * (password "secret", an MD5-crypt hash so that a login costs microseconds,
 * not a yescrypt), an alias, and a few messages in each mailbox, topped up
 * before every input. Removed at exit.
 */
#ifndef CORREIO_FUZZ_STORE_H
#define CORREIO_FUZZ_STORE_H

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "store.h"

static char fuzz_store_path[128];

static void
fuzz_store_remove(void)
{
	char p[160];

	if (fuzz_store_path[0] == '\0')
		return;
	unlink(fuzz_store_path);
	snprintf(p, sizeof(p), "%s-wal", fuzz_store_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", fuzz_store_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-journal", fuzz_store_path);
	unlink(p);
}

/* Deliver one message to account; big makes it 300 KB (back-pressure). */
static void
fuzz_store_deliver(struct store *st, const char *account, int n, bool big)
{
	struct store_delivery *d = store_delivery_new("sender@example.org", "fuzz");
	char text[512];
	int len;

	FUZZ_CHECK(d != NULL);
	FUZZ_CHECK(store_delivery_add_rcpt(d, account) == 0);
	len = snprintf(text, sizeof(text), "From: sender@example.org\r\nTo: %s@lab.test\r\n"
	    "Subject: message %d\r\n\r\nfirst line\r\n.a line with a leading dot\r\n\r\n.\r\n"
	    "last line\r\n", account, n);
	FUZZ_CHECK(store_delivery_body(d, text, (size_t)len) == 0);
	for (int i = 0; big && i < 4000; i++)
		FUZZ_CHECK(store_delivery_body(d, "0123456789012345678901234567890123456789"
		    "01234567890123456789012345678901234567\r\n", 80) == 0);
	FUZZ_CHECK(store_delivery_commit(st, d) == 0);
	store_delivery_free(&d);
}

/* Keep at least three messages for ana and one (big) for bob. */
static void
fuzz_store_top_up(struct store *st)
{
	struct store_msg *msgs;
	size_t n;

	FUZZ_CHECK(store_mailbox_list(st, "ana", &msgs, &n) == 0);
	free(msgs);
	for (; n < 3; n++)
		fuzz_store_deliver(st, "ana", (int)n, false);
	FUZZ_CHECK(store_mailbox_list(st, "bob", &msgs, &n) == 0);
	free(msgs);
	if (n == 0)
		fuzz_store_deliver(st, "bob", 0, true);
}

static struct store *
fuzz_store_create(void)
{
	struct store *st;
	struct crypt_data cd;
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char err[256], hash[128];
	const char *h;

	snprintf(fuzz_store_path, sizeof(fuzz_store_path), "%s/correio-fuzz-%ld.db", dir,
	    (long)getpid());
	fuzz_store_remove();
	atexit(fuzz_store_remove);
	if (store_open(&st, fuzz_store_path, err, sizeof(err)) == -1) {
		fprintf(stderr, "store_open: %s\n", err);
		abort();
	}
	memset(&cd, 0, sizeof(cd));
	h = crypt_r("secret", "$1$fuzzsalt$", &cd);
	FUZZ_CHECK(h != NULL && h[0] == '$');
	snprintf(hash, sizeof(hash), "%s", h);
	FUZZ_CHECK(store_domain_add(st, "lab.test") == 0);
	FUZZ_CHECK(store_user_add(st, "ana", hash) == 0);
	FUZZ_CHECK(store_user_add(st, "bob", hash) == 0);
	FUZZ_CHECK(store_alias_add(st, "postmaster@lab.test", "ana") == 0);
	fuzz_store_top_up(st);
	return st;
}

#endif
