/*
 * pg_store_bench.c - the PostgreSQL store backend measured through store.h:
 * a large body written (spooled, as smtpd spools it) and read back in
 * 16 KiB pieces (as RETR reads it), with the time and the growth of the
 * process's peak RSS of each; then the commit rate of 4 KB deliveries in
 * batches of 1 and of 32 (group commit), one writer.
 *
 *   python3 tests/pg_server.py start /tmp/pgb      # prints URL
 *   build/tests/bench/pg_store_bench URL [BODY_MB [COUNT]]
 *   python3 tests/pg_server.py stop /tmp/pgb
 *
 * URL should name an empty database (the bench adds an account and mail).
 * BODY_MB defaults to 50, COUNT (deliveries per batch size) to 2000.
 * Spools into $TMPDIR or /tmp.
 *
 * Measured 2026-12-05 on the 2-core development VM (ext4 on a virtual
 * disk, fsync=on, synchronous_commit=on, server and bench on one host,
 * with three other builds running: the figures vary a lot between runs;
 * five runs, median and range):
 *   write 50 MB:  151 MB/s (34-296),  peak RSS +0.4-0.5 MB
 *   read 50 MB:   477 MB/s (75-727),  peak RSS +0.7 MB
 *   4 KB deliveries, batches of 1:    507/s (267-2166)
 *   4 KB deliveries, batches of 32:  3157/s (1848-4377)
 * On a quiet machine (no other build) batches of 1 gave 2488/s and of 32
 * 5199/s: a delivery of a batch costs two round trips, a batch of one
 * three (BEGIN, the delivery, COMMIT with its WAL flush).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define PIECE	65536
#define READ	16384
#define SMALL	4096

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
peak_kb(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(fp);
	return kb;
}

static void
peak_reset(void)
{
	FILE *fp = fopen("/proc/self/clear_refs", "w");

	if (fp != NULL) {
		fputs("5", fp);
		fclose(fp);
	}
}

static void
die(struct store *st, const char *what)
{
	fprintf(stderr, "pg_store_bench: %s: %s\n", what, st ? store_errmsg(st) : "");
	exit(1);
}

static void
large(struct store *st, size_t mb)
{
	size_t len = mb << 20, i, got, total = 0;
	const char *tmp = getenv("TMPDIR");
	struct store_delivery *d = store_delivery_new("", "bench");
	static char piece[PIECE], chunk[READ];
	struct store_msg *m;
	long base, peak;
	double t0, t1;
	size_t n;

	for (i = 0; i < PIECE; i++)
		piece[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('A' + i % 26);
	if (store_delivery_add_rcpt(d, "bench") != 0 ||
	    store_delivery_spool(d, tmp != NULL ? tmp : "/tmp") != 0)
		die(st, "delivery");
	peak_reset();
	base = peak_kb();
	t0 = now_s();
	for (i = 0; i < len; i += PIECE)
		if (store_delivery_body(d, piece, PIECE) != 0)
			die(st, "body");
	if (store_delivery_commit(st, d) != 0)
		die(st, "commit");
	t1 = now_s();
	peak = peak_kb();
	store_delivery_free(&d);
	printf("write %zu MB (spool + commit): %.2f s, %.1f MB/s, peak RSS +%ld KiB\n",
	    mb, t1 - t0, (double)mb / (t1 - t0), peak - base);

	if (store_mailbox_list(st, "bench", &m, &n) != 0 || n == 0)
		die(st, "list");
	peak_reset();
	base = peak_kb();
	t0 = now_s();
	do {
		if (store_msg_read(st, m[n - 1].entry_id, (int64_t)total, chunk, READ, &got) != 0)
			die(st, "read");
		total += got;
	} while (got > 0);
	t1 = now_s();
	peak = peak_kb();
	if (total != len)
		die(st, "short read");
	printf("read %zu MB in %d KiB pieces: %.2f s, %.1f MB/s, peak RSS +%ld KiB\n",
	    mb, READ >> 10, t1 - t0, (double)mb / (t1 - t0), peak - base);
	if (store_mailbox_expunge(st, "bench", &m[n - 1].entry_id, 1) != 0)
		die(st, "expunge");
	free(m);
}

static void
commits(struct store *st, size_t count, size_t batch)
{
	static char body[SMALL];
	struct store_delivery **ds = calloc(batch, sizeof(*ds));
	int *result = calloc(batch, sizeof(*result));
	size_t i, k, done = 0;
	double t0, t1;

	if (ds == NULL || result == NULL)
		die(NULL, "out of memory");
	for (i = 0; i < SMALL; i++)
		body[i] = (i % 64 == 62) ? '\r' : (i % 64 == 63) ? '\n' : 'x';
	t0 = now_s();
	while (done < count) {
		for (k = 0; k < batch; k++) {
			ds[k] = store_delivery_new("sender@example.org", "bench");
			if (ds[k] == NULL || store_delivery_add_rcpt(ds[k], "bench") != 0 ||
			    store_delivery_body(ds[k], body, SMALL) != 0)
				die(st, "delivery");
		}
		if (store_delivery_commit_batch(st, ds, batch, result) != 0)
			die(st, "commit");
		for (k = 0; k < batch; k++) {
			if (result[k] != 0)
				die(st, "a delivery of the batch");
			store_delivery_free(&ds[k]);
		}
		done += batch;
	}
	t1 = now_s();
	printf("%zu deliveries of 4 KB in batches of %zu: %.2f s, %.0f deliveries/s\n",
	    done, batch, t1 - t0, (double)done / (t1 - t0));
	free(ds);
	free(result);
}

int
main(int argc, char **argv)
{
	struct store *st;
	char err[512];
	size_t mb = argc > 2 ? (size_t)atoi(argv[2]) : 50;
	size_t count = argc > 3 ? (size_t)atoi(argv[3]) : 2000;

	if (argc < 2) {
		fprintf(stderr, "usage: pg_store_bench URL [BODY_MB [COUNT]]\n");
		return 2;
	}
	if (store_open(&st, argv[1], err, sizeof(err)) != 0) {
		fprintf(stderr, "pg_store_bench: %s\n", err);
		return 1;
	}
	if (store_user_add(st, "bench", "x") != 0)
		die(st, "account");
	large(st, mb);
	commits(st, count, 1);
	commits(st, count, 32);
	store_close(&st);
	return 0;
}
