/*
 * test_store_copy.c - the copy engine (common/store_copy.c) and the SQLite
 * backend's dump and load (common/store_sqlite_copy.c), SQLite to SQLite:
 * every kind of record arrives, as seen through the public store API (a
 * text snapshot of each store compared whole); UIDLs, entry ids and message
 * ids are kept; a multi-MB body arrives byte for byte; mail delivered after
 * the copy gets fresh ids and UIDLs; a target with anything in it is
 * refused and left as it was; a copy that fails midway (stopped, a load
 * error, a target that changes what it is given) leaves the target empty.
 * The failing targets are the target's backend with one op replaced: this
 * test plays a backend, so it includes store_backend.h.
 *
 * Every case runs on each pair of backends: SQLite -> SQLite, SQLite ->
 * PostgreSQL, PostgreSQL -> SQLite and PostgreSQL -> PostgreSQL, a
 * PostgreSQL store being a new database on the private server ctest starts
 * (tests/pg_server.py: $CORREIO_PG_DIR, or a server's URL in
 * $CORREIO_PG_URL; without either the PostgreSQL pairs are skipped).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "store_backend.h"
#include "store_copy.h"
#include "tmpstore.h"

#define BIG_SIZE	(5 * 1024 * 1024 + 123)	/* the multi-MB body */
#define READ_CHUNK	(64 * 1024)

struct pair {
	struct tmpstore	*src, *dst;	/* a PostgreSQL one: path is its URL, dir "" */
	bool		 src_pg, dst_pg;
	int64_t		 big_id;		/* message id of the big body */
	int64_t		 dropped_id;		/* a message delivered then expunged */
};

/* ---- filling a source ---------------------------------------------------- */

static unsigned char *
big_body(void)
{
	unsigned char *b = malloc(BIG_SIZE);
	uint32_t x = 2463534242u;
	size_t i;

	assert_non_null(b);
	for (i = 0; i < BIG_SIZE; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
	memcpy(b, "Subject: big\r\n\r\n", 16);
	b[100] = '\0';		/* a NUL, a dot line, bare CR: octets, not text */
	memcpy(b + 200, "\r\n.\r\n\r", 6);
	return b;
}

static int64_t
deliver(struct store *st, const char *sender, const char *sid, const char *const *rcpts,
    const char *const *remotes, const void *body, size_t len)
{
	struct store_delivery *d = store_delivery_new(sender, sid);
	int64_t id;

	assert_non_null(d);
	for (; rcpts != NULL && *rcpts != NULL; rcpts++)
		assert_int_equal(store_delivery_add_rcpt(d, *rcpts), 0);
	for (; remotes != NULL && *remotes != NULL; remotes++)
		assert_int_equal(store_delivery_add_remote(d, *remotes), 0);
	assert_int_equal(store_delivery_body(d, body, len), 0);
	if (store_delivery_commit(st, d) != 0)
		fail_msg("commit: %s", store_errmsg(st));
	id = store_delivery_id(d);
	store_delivery_free(&d);
	return id;
}

static void
fill(struct pair *p)
{
	struct store *st = p->src->st;
	static const char *const ana[] = { "ana", NULL }, *const both[] = { "ana", "bob", NULL };
	static const char *const carla[] = { "carla", NULL }, *const bob[] = { "bob", NULL };
	static const char *const far[] = { "x@far.example", "y@far.example", NULL };
	struct store_sesslog_rec recs[] = {
		{ STORE_SESSLOG_OPEN, 1000, "s1", "smtp", "127.0.0.2", 9 },
		{ STORE_SESSLOG_LINES, 1000, "s1", "smtp", "C: HELO x\nS: 250 ok", 19 },
		{ STORE_SESSLOG_ACCOUNT, 1001, "s1", "smtp", "bob", 3 },
		{ STORE_SESSLOG_CLOSE, 1002, "s1", "smtp", "quit", 4 },
		{ STORE_SESSLOG_OPEN, 2000, "p1", "pop3", "127.0.0.1", 9 },
		{ STORE_SESSLOG_USER, 2001, "p1", "pop3", "ana", 3 },
		{ STORE_SESSLOG_LINES, 2001, "p1", "pop3", "C: USER ana\nS: +OK", 18 },
		{ STORE_SESSLOG_LINES, 2002, "p1", "pop3", "C: UIDL\nS: +OK", 14 },
	};
	struct store_queue_item *items;
	struct store_msg *msgs;
	unsigned char *big = big_body();
	size_t n;
	int i;

	assert_int_equal(store_user_add(st, "carla", "$y$hash-carla"), 0);
	assert_int_equal(store_user_set_teacher(st, "ana", true), 0);
	assert_int_equal(store_domain_add(st, "lab.test"), 0);
	assert_int_equal(store_domain_add(st, "Other.Test"), 0);
	assert_int_equal(store_alias_add(st, "turma", "ana"), 0);
	assert_int_equal(store_alias_add(st, "turma", "bob"), 0);
	assert_int_equal(store_alias_add(st, "info@lab.test", "carla"), 0);

	deliver(st, "ana@lab.test", "s1", both, NULL, "Subject: one\r\n\r\nhi\r\n", 20);
	p->dropped_id = deliver(st, "", "s2", carla, NULL, "Subject: gone\r\n\r\n", 17);
	for (i = 0; i < 5; i++)
		deliver(st, "bob@lab.test", "s3", bob, NULL, "Subject: n\r\n\r\nbody\r\n", 20);
	deliver(st, "ana@lab.test", "s4", ana, far, "Subject: out\r\n\r\nfar\r\n", 21);
	p->big_id = deliver(st, "carla@lab.test", "s5", ana, NULL, big, BIG_SIZE);
	deliver(st, "", "", NULL, far, "", 0);	/* an empty body, queued only */
	free(big);

	/* carla's message is expunged: its id is not to be given again. */
	assert_int_equal(store_mailbox_list(st, "carla", &msgs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_mailbox_expunge(st, "carla", &msgs[0].entry_id, 1), 0);
	free(msgs);

	assert_int_equal(store_queue_list(st, -1, &items, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(store_queue_defer(st, items[1].id, 1900000000, "451 4.7.1 try later"), 0);
	assert_int_equal(store_queue_defer(st, items[1].id, 1900000600, "421 busy"), 0);
	free(items);

	assert_int_equal(store_sesslog_apply(st, recs, sizeof(recs) / sizeof(recs[0])), 0);
	assert_int_equal(store_transcript_append(st, "s9", "smtp", "C: EHLO a\nS: 250-x", 18), 0);
	assert_int_equal(store_websession_add(st, "webkey1", "ana", "csrf1", 4000000000), 0);
	assert_int_equal(store_token_add(st, "tokhash1", "bob"), 0);
	assert_int_equal(store_token_add(st, "tokhash2", "ana"), 0);
}

/* ---- PostgreSQL sides: a new database each ------------------------------- */

static char pg_base[512];	/* the server's URL, "" when there is none */
static int pg_counter;

static void
pg_exec(const char *url, const char *q)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", url, PQerrorMessage(c));
	r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", q, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* The database name of a URL made by side_new(). */
static const char *
pg_dbname(const char *url)
{
	return strrchr(url, '/') + 1;
}

/* A fresh store of either backend (with ana and bob when accounts). */
static struct tmpstore *
side_new(bool pg, const char *prefix, bool accounts)
{
	struct tmpstore *t;
	const char *slash;
	char q[128], db[64], err[512];

	if (!pg)
		return tmpstore_new(prefix, accounts);
	assert_non_null(t = calloc(1, sizeof(*t)));
	snprintf(db, sizeof(db), "%s_%ld_%d", prefix, (long)getpid(), ++pg_counter);
	snprintf(q, sizeof(q), "CREATE DATABASE %s", db);
	pg_exec(pg_base, q);
	slash = strrchr(pg_base, '/');
	snprintf(t->path, sizeof(t->path), "%.*s/%s", (int)(slash - pg_base), pg_base, db);
	if (store_open(&t->st, t->path, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	if (accounts) {
		assert_int_equal(store_user_add(t->st, "ana", "$y$hash-ana"), 0);
		assert_int_equal(store_user_add(t->st, "bob", "$y$hash-bob"), 0);
	}
	return t;
}

static void
side_free(struct tmpstore *t)
{
	char q[128];

	if (!store_is_url(t->path)) {
		(void)tmpstore_free(t);
		return;
	}
	store_close(&t->st);
	snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_dbname(t->path));
	pg_exec(pg_base, q);
	free(t);
}

/* A SQL change behind the store's back, for what the API cannot make. */
static void
sql(const char *path, const char *q)
{
	sqlite3 *db;

	if (store_is_url(path)) {
		pg_exec(path, q);
		return;
	}
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", q, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* ---- a store as text, through the public API only ------------------------ */

struct snap {
	FILE		*f;
	struct store	*st;
};

static void
snap_line(void *arg, const char *a, const char *b)
{
	struct snap *s = arg;

	fprintf(s->f, "  %s|%s\n", a, b ? b : "");
}

static void
snap_user(void *arg, const char *name, const char *created)
{
	struct snap *s = arg;
	char hash[256];
	struct store_msg *msgs;
	struct store_msg_info info;
	unsigned char buf[READ_CHUNK];
	uint64_t h;
	int64_t off;
	size_t n, i, got;

	assert_int_equal(store_user_get_hash(s->st, name, hash, sizeof(hash)), 0);
	fprintf(s->f, "user %s %s %s teacher=%d\n", name, created, hash,
	    store_user_is_teacher(s->st, name));
	assert_int_equal(store_mailbox_list(s->st, name, &msgs, &n), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(store_mailbox_entry(s->st, name, msgs[i].entry_id, &info), 0);
		h = 1469598103934665603ull;	/* FNV-1a of the body */
		for (off = 0;; off += (int64_t)got) {
			assert_int_equal(store_msg_read(s->st, msgs[i].entry_id, off, buf,
			    sizeof(buf), &got), 0);
			if (got == 0)
				break;
			for (size_t k = 0; k < got; k++)
				h = (h ^ buf[k]) * 1099511628211ull;
		}
		fprintf(s->f, "  entry %lld size=%lld arrived=%lld uidl=%s session=%s sender=%s"
		    " read=%lld fnv=%016llx\n", (long long)msgs[i].entry_id,
		    (long long)msgs[i].size, (long long)msgs[i].arrived, msgs[i].uidl,
		    info.session, info.sender, (long long)off, (unsigned long long)h);
	}
	free(msgs);
}

static void
snap_session(void *arg, const struct store_session_info *si)
{
	struct snap *s = arg;

	fprintf(s->f, "session %s %s %s %lld %lld user=%s outcome=%s involves-ana=%d\n",
	    si->id, si->proto, si->client, (long long)si->started, (long long)si->ended,
	    si->user, si->outcome, store_session_involves(s->st, si->id, "ana"));
}

/* Everything the store shows, as one malloc'd string. */
static char *
snapshot(struct store *st)
{
	struct snap s = { NULL, st };
	struct store_session_filter all = { .limit = 10000 };
	struct store_queue_item *items;
	char *text = NULL, acc[STORE_NAME_MAX + 1], csrf[STORE_CSRF_MAX + 1];
	size_t len = 0, n, i;
	static const char *const sessions[] = { "s1", "p1", "s9" };
	static const char *const tokens[] = { "tokhash1", "tokhash2" };

	assert_non_null(s.f = open_memstream(&text, &len));
	fprintf(s.f, "users\n");
	assert_int_equal(store_user_list(st, snap_user, &s), 0);
	fprintf(s.f, "domains\n");
	assert_int_equal(store_domain_list(st, snap_line, &s), 0);
	fprintf(s.f, "aliases\n");
	assert_int_equal(store_alias_list(st, snap_line, &s), 0);
	assert_int_equal(store_queue_list(st, -1, &items, &n), 0);
	for (i = 0; i < n; i++)
		fprintf(s.f, "queue %lld msg=%lld <%s> <%s> %lld %lld %d %s size=%lld\n",
		    (long long)items[i].id, (long long)items[i].message_id, items[i].sender,
		    items[i].rcpt, (long long)items[i].created, (long long)items[i].next_attempt,
		    items[i].attempts, items[i].last_error,
		    (long long)store_message_size(st, items[i].message_id));
	free(items);
	fprintf(s.f, "queue max %lld\n", (long long)store_queue_max_id(st));
	assert_int_equal(store_session_list(st, &all, snap_session, &s), 0);
	for (i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++) {
		fprintf(s.f, "transcript %s\n", sessions[i]);
		store_transcript_get(st, sessions[i], snap_line, &s);
	}
	if (store_websession_get(st, "webkey1", 1800000000, acc, csrf) == 0)
		fprintf(s.f, "web login %s %s\n", acc, csrf);
	for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
		if (store_token_get(st, tokens[i], acc) == 0)
			fprintf(s.f, "token %s %s\n", tokens[i], acc);
	fclose(s.f);
	return text;
}

/* ---- fixtures -------------------------------------------------------------- */

/* A pair of stores: the source of one backend (with ana and bob), an empty
 * target of another; a pair with PostgreSQL is skipped without a server. */
static int
pair_new(void **state, bool src_pg, bool dst_pg)
{
	struct pair *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	if ((src_pg || dst_pg) && pg_base[0] == '\0') {
		free(p);
		*state = NULL;
		return 0;
	}
	p->src_pg = src_pg;
	p->dst_pg = dst_pg;
	p->src = side_new(src_pg, "copysrc", true);
	p->dst = side_new(dst_pg, "copydst", false);
	*state = p;
	return 0;
}

static int
setup(void **state)
{
	return pair_new(state, false, false);
}

static int
setup_sqlite_pg(void **state)
{
	return pair_new(state, false, true);
}

static int
setup_pg_sqlite(void **state)
{
	return pair_new(state, true, false);
}

static int
setup_pg_pg(void **state)
{
	return pair_new(state, true, true);
}

static int
teardown(void **state)
{
	struct pair *p = *state;

	if (p == NULL)
		return 0;
	side_free(p->src);
	side_free(p->dst);
	free(p);
	return 0;
}

/* The pair of this case, or a skip when it needs a server there is not. */
#define PAIR(state, p) do {				\
	if ((p = *(state)) == NULL) {			\
		skip();					\
		return;					\
	}						\
} while (0)

/* Is every kind empty in st? */
static void
assert_store_empty(struct store *st)
{
	int64_t counts[STORE_REC_KINDS];
	int k;

	assert_int_equal(st->ops->copy_count(st, counts), 0);
	for (k = 0; k < STORE_REC_KINDS; k++)
		if (k != STORE_REC_SEQUENCE && counts[k] != 0)
			fail_msg("%lld %s left in the target", (long long)counts[k],
			    store_copy_kind_name(k));
}

static int
copy(struct pair *p, struct store_copy_stats *stats, char *err, size_t errlen)
{
	return store_copy(p->src->st, p->dst->st, NULL, NULL, stats, err, errlen);
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_copy_everything(void **state)
{
	struct pair *p;
	struct store_copy_stats stats;
	char err[1024], *a, *b;

	PAIR(state, p);
	fill(p);
	if (copy(p, &stats, err, sizeof(err)) != 0)
		fail_msg("copy: %s", err);
	a = snapshot(p->src->st);
	b = snapshot(p->dst->st);
	assert_string_equal(a, b);
	/* the snapshot saw what it should: not two empty stores */
	assert_non_null(strstr(a, "user ana"));
	assert_non_null(strstr(a, "teacher=1"));
	assert_non_null(strstr(a, "turma|ana"));
	assert_non_null(strstr(a, "421 busy"));
	assert_non_null(strstr(a, "C: UIDL"));
	assert_non_null(strstr(a, "web login ana csrf1"));
	assert_non_null(strstr(a, "token tokhash2 ana"));
	free(a);
	free(b);

	assert_int_equal(stats.counts[STORE_REC_DOMAIN], 2);
	assert_int_equal(stats.counts[STORE_REC_ACCOUNT], 3);
	assert_int_equal(stats.counts[STORE_REC_ALIAS], 3);
	assert_int_equal(stats.counts[STORE_REC_MESSAGE], 9);	/* 10 less the expunged */
	assert_int_equal(stats.counts[STORE_REC_ENTRY], 9);
	assert_int_equal(stats.counts[STORE_REC_QUEUE], 4);
	assert_int_equal(stats.counts[STORE_REC_SESSION], 2);	/* s9 has lines only */
	assert_int_equal(stats.counts[STORE_REC_SESSION_ACCOUNT], 2);
	assert_int_equal(stats.counts[STORE_REC_TRANSCRIPT], 3);	/* p1: one row per batch */
	assert_int_equal(stats.counts[STORE_REC_WEBSESSION], 1);
	assert_int_equal(stats.counts[STORE_REC_TOKEN], 2);
	assert_int_equal(stats.messages_total, 9);
	assert_true(stats.bytes > BIG_SIZE);
}

/* The big body, read back from the target, is the source's byte for byte;
 * and a deleted flag crosses too. */
static void
test_big_body_and_flags(void **state)
{
	struct pair *p;
	struct store_copy_stats stats;
	unsigned char *want = big_body(), *got = malloc(BIG_SIZE + 1);
	struct store_msg *msgs;
	char err[1024];
	size_t n, i, g, off = 0;
	int64_t entry = -1;

	PAIR(state, p);
	assert_non_null(got);
	fill(p);
	/* mark one of bob's entries deleted (no API sets the flag today) */
	sql(p->src->path, p->src_pg ? "UPDATE mailbox SET deleted = true WHERE id ="
	    " (SELECT max(m.id) FROM mailbox m JOIN accounts a ON a.id = m.account"
	    " WHERE a.name = 'bob')" : "UPDATE mailbox SET deleted = 1 WHERE id = (SELECT max(m.id)"
	    " FROM mailbox m JOIN accounts a ON a.id = m.account WHERE a.name = 'bob')");
	if (copy(p, &stats, err, sizeof(err)) != 0)
		fail_msg("copy: %s", err);
	assert_int_equal(store_message_size(p->dst->st, p->big_id), BIG_SIZE);
	assert_int_equal(store_mailbox_list(p->dst->st, "ana", &msgs, &n), 0);
	for (i = 0; i < n; i++)
		if (msgs[i].size == BIG_SIZE)
			entry = msgs[i].entry_id;
	free(msgs);
	assert_true(entry > 0);
	for (;;) {
		assert_int_equal(store_msg_read(p->dst->st, entry, (int64_t)off, got + off,
		    BIG_SIZE + 1 - off, &g), 0);
		if (g == 0)
			break;
		off += g;
	}
	assert_int_equal(off, BIG_SIZE);
	assert_memory_equal(got, want, BIG_SIZE);
	/* bob sees 4 of his 5 in both stores; the deleted one is still there */
	assert_int_equal(store_mailbox_list(p->dst->st, "bob", &msgs, &n), 0);
	assert_int_equal(n, 5);		/* 4 + the one to ana and bob */
	free(msgs);
	assert_int_equal(stats.counts[STORE_REC_ENTRY], 9);
	free(want);
	free(got);
}

/* Mail after the copy: ids above every id the source ever gave (the
 * expunged message's too), UIDLs unlike any copied one. */
static void
test_fresh_ids_after_copy(void **state)
{
	struct pair *p;
	static const char *const ana[] = { "ana", NULL }, *const far[] = { "z@far.example", NULL };
	struct store_copy_stats stats;
	struct store_msg *before, *after;
	struct store_queue_item *items;
	char err[1024];
	size_t nb, na, i, j, nq;
	int64_t id, qmax;

	PAIR(state, p);
	fill(p);
	qmax = store_queue_max_id(p->src->st);
	if (copy(p, &stats, err, sizeof(err)) != 0)
		fail_msg("copy: %s", err);
	assert_int_equal(store_mailbox_list(p->dst->st, "ana", &before, &nb), 0);
	id = deliver(p->dst->st, "bob@lab.test", "s10", ana, far, "Subject: new\r\n\r\n", 16);
	assert_true(id > p->dropped_id);
	assert_true(id > p->big_id + 1);
	assert_int_equal(store_mailbox_list(p->dst->st, "ana", &after, &na), 0);
	assert_int_equal(na, nb + 1);
	for (i = 0; i < nb; i++) {
		assert_int_equal(after[i].entry_id, before[i].entry_id);
		assert_string_equal(after[i].uidl, before[i].uidl);
		assert_true(after[nb].entry_id > before[i].entry_id);
		for (j = 0; j < nb; j++)
			assert_string_not_equal(after[nb].uidl, before[j].uidl);
	}
	free(before);
	free(after);
	assert_int_equal(store_queue_list(p->dst->st, -1, &items, &nq), 0);
	assert_int_equal(nq, 5);
	for (i = 0; i < nq; i++)
		if (items[i].message_id == id)
			assert_true(items[i].id > qmax);
	free(items);
	assert_true(store_queue_max_id(p->dst->st) > qmax);
}

/* A target with anything in it: refused, and left exactly as it was. */
static void
test_not_empty_refused(void **state)
{
	static const struct {
		const char *what;
		int	 kind;
	} cases[] = {
		{ "a domain", 0 }, { "an account", 1 }, { "a transcript", 2 },
		{ "a queue item", 3 }, { "a session", 4 },
	};
	static const char *const far[] = { "x@far.example", NULL };
	struct pair *p;
	struct store_copy_stats stats;
	struct store_sesslog_rec open = { STORE_SESSLOG_OPEN, 5, "old", "smtp", "10.0.0.1", 8 };
	char err[1024], *before, *after;
	size_t i;

	PAIR(state, p);
	fill(p);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tmpstore *t = side_new(p->dst_pg, "copyfull", false);

		switch (cases[i].kind) {
		case 0:
			assert_int_equal(store_domain_add(t->st, "x.test"), 0);
			break;
		case 1:
			assert_int_equal(store_user_add(t->st, "zed", "$y$z"), 0);
			break;
		case 2:
			assert_int_equal(store_transcript_append(t->st, "old", "smtp", "C: x", 4), 0);
			break;
		case 3:
			deliver(t->st, "", "", NULL, far, "x\r\n", 3);
			break;
		case 4:
			assert_int_equal(store_sesslog_apply(t->st, &open, 1), 0);
			break;
		}
		before = snapshot(t->st);
		err[0] = '\0';
		assert_int_equal(store_copy(p->src->st, t->st, NULL, NULL, &stats, err,
		    sizeof(err)), STORE_COPY_NOT_EMPTY);
		if (strstr(err, "not empty") == NULL)
			fail_msg("%s: %s", cases[i].what, err);
		after = snapshot(t->st);
		assert_string_equal(before, after);
		free(before);
		free(after);
		side_free(t);
	}
}

static int
stop_after_three(void *arg, const struct store_copy_stats *so_far)
{
	int *calls = arg;

	(*calls)++;
	return so_far->counts[STORE_REC_MESSAGE] >= 3 ? -1 : 0;
}

/* Stopped midway (a signal in mailcli): nothing is left in the target, and
 * a second copy into the same target then works. */
static void
test_stopped_leaves_empty(void **state)
{
	struct pair *p;
	struct store_copy_stats stats;
	char err[1024], *a, *b;
	int calls = 0;

	PAIR(state, p);
	fill(p);
	assert_int_equal(store_copy(p->src->st, p->dst->st, stop_after_three, &calls, &stats,
	    err, sizeof(err)), -1);
	assert_int_equal(calls, 3);
	assert_non_null(strstr(err, "stopped after 3 messages"));
	assert_store_empty(p->dst->st);
	if (copy(p, &stats, err, sizeof(err)) != 0)
		fail_msg("second copy: %s", err);
	a = snapshot(p->src->st);
	b = snapshot(p->dst->st);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* ---- targets that fail or lie -------------------------------------------- */

static struct store_ops bad_ops;
static const struct store_ops *bad_real;	/* the target's own */
static int bad_mode;		/* which way bad_load_record misbehaves */
static int bad_seen;

enum { BAD_FAIL_4TH_MESSAGE, BAD_UIDL, BAD_BODY, BAD_SKIP_TOKEN };

struct flip {
	store_body_read_fn *read;
	void	*arg;
};

static int
flip_read(void *arg, int64_t offset, void *dst, size_t len, size_t *got_r)
{
	struct flip *f = arg;

	if (f->read(f->arg, offset, dst, len, got_r) == -1)
		return -1;
	if (offset == 0 && *got_r > 0)
		((unsigned char *)dst)[0] ^= 0x20;
	return 0;
}

static int
bad_load_record(struct store *st, const struct store_rec *r)
{
	struct store_rec m = *r;
	struct flip f;

	if (r->kind == STORE_REC_MESSAGE && bad_mode == BAD_FAIL_4TH_MESSAGE && ++bad_seen == 4) {
		store_setmsg(st, "disk on fire");
		return -1;
	}
	if (r->kind == STORE_REC_ENTRY && bad_mode == BAD_UIDL && ++bad_seen == 2)
		m.u.entry.uidl = "1.0000000000";
	if (r->kind == STORE_REC_MESSAGE && bad_mode == BAD_BODY && ++bad_seen == 2) {
		f.read = r->u.message.read;
		f.arg = r->u.message.read_arg;
		m.u.message.read = flip_read;
		m.u.message.read_arg = &f;
	}
	if (r->kind == STORE_REC_TOKEN && bad_mode == BAD_SKIP_TOKEN)
		return 0;
	return bad_real->load_record(st, &m);
}

static void
test_bad_targets_leave_empty(void **state)
{
	static const struct {
		int	 mode;
		const char *says;
	} cases[] = {
		{ BAD_FAIL_4TH_MESSAGE, "target: disk on fire" },
		{ BAD_UIDL, "mailbox entries in the target differ" },
		{ BAD_BODY, "body in the target differs" },
		{ BAD_SKIP_TOKEN, "2 API tokens copied but 0 in the target" },
	};
	struct pair *p;
	struct store_copy_stats stats;
	const struct store_ops *real = NULL;
	char err[1024];
	size_t i;

	PAIR(state, p);
	real = p->dst->st->ops;
	fill(p);
	bad_real = real;
	bad_ops = *real;
	bad_ops.load_record = bad_load_record;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad_mode = cases[i].mode;
		bad_seen = 0;
		p->dst->st->ops = &bad_ops;
		err[0] = '\0';
		assert_int_equal(copy(p, &stats, err, sizeof(err)), -1);
		p->dst->st->ops = real;
		if (strstr(err, cases[i].says) == NULL)
			fail_msg("case %zu: \"%s\", not \"%s\"", i, err, cases[i].says);
		assert_store_empty(p->dst->st);
	}
}

/* A backend without the copy ops: a clean error, not a crash. */
static void
test_backend_without_copy(void **state)
{
	struct pair *p;
	struct store_copy_stats stats;
	const struct store_ops *real = NULL;
	char err[1024];

	PAIR(state, p);
	real = p->dst->st->ops;
	bad_ops = *real;
	bad_ops.name = "imaginary";
	bad_ops.dump = NULL;
	bad_ops.load_begin = NULL;
	p->dst->st->ops = &bad_ops;
	assert_int_equal(copy(p, &stats, err, sizeof(err)), -1);
	p->dst->st->ops = real;
	assert_string_equal(err, "the imaginary backend cannot be copied yet");
	assert_store_empty(p->dst->st);
}

/* An empty source copies to an empty target: nothing, verified. */
static void
test_empty_source(void **state)
{
	struct pair *p;
	struct store_copy_stats stats;
	struct tmpstore *empty = NULL;
	char err[1024];
	int k;

	PAIR(state, p);
	empty = side_new(p->src_pg, "copyempty", false);
	if (store_copy(empty->st, p->dst->st, NULL, NULL, &stats, err, sizeof(err)) != 0)
		fail_msg("copy: %s", err);
	for (k = 0; k < STORE_REC_KINDS; k++)
		if (k != STORE_REC_SEQUENCE)
			assert_int_equal(stats.counts[k], 0);
	assert_store_empty(p->dst->st);
	side_free(empty);
}

#define ALL_CASES(setup_fn)								\
	cmocka_unit_test_setup_teardown(test_copy_everything, setup_fn, teardown),		\
	cmocka_unit_test_setup_teardown(test_big_body_and_flags, setup_fn, teardown),		\
	cmocka_unit_test_setup_teardown(test_fresh_ids_after_copy, setup_fn, teardown),	\
	cmocka_unit_test_setup_teardown(test_not_empty_refused, setup_fn, teardown),		\
	cmocka_unit_test_setup_teardown(test_stopped_leaves_empty, setup_fn, teardown),	\
	cmocka_unit_test_setup_teardown(test_bad_targets_leave_empty, setup_fn, teardown),	\
	cmocka_unit_test_setup_teardown(test_backend_without_copy, setup_fn, teardown),	\
	cmocka_unit_test_setup_teardown(test_empty_source, setup_fn, teardown)

int
main(void)
{
	const struct CMUnitTest sqlite_sqlite[] = { ALL_CASES(setup) };
	const struct CMUnitTest sqlite_pg[] = { ALL_CASES(setup_sqlite_pg) };
	const struct CMUnitTest pg_sqlite[] = { ALL_CASES(setup_pg_sqlite) };
	const struct CMUnitTest pg_pg[] = { ALL_CASES(setup_pg_pg) };
	const char *url = getenv("CORREIO_PG_URL"), *dir = getenv("CORREIO_PG_DIR");
	char path[600];
	FILE *fp;
	int failed = 0;

	if (url != NULL && *url != '\0')
		snprintf(pg_base, sizeof(pg_base), "%s", url);
	else if (dir != NULL && *dir != '\0') {
		snprintf(path, sizeof(path), "%s/url", dir);
		if ((fp = fopen(path, "r")) == NULL || fgets(pg_base, sizeof(pg_base), fp) == NULL) {
			fprintf(stderr, "test_store_copy: no server URL in %s\n", path);
			return 1;
		}
		fclose(fp);
		pg_base[strcspn(pg_base, "\r\n")] = '\0';
	}
	failed += cmocka_run_group_tests_name("sqlite -> sqlite", sqlite_sqlite, NULL, NULL);
	failed += cmocka_run_group_tests_name("sqlite -> postgresql", sqlite_pg, NULL, NULL);
	failed += cmocka_run_group_tests_name("postgresql -> sqlite", pg_sqlite, NULL, NULL);
	failed += cmocka_run_group_tests_name("postgresql -> postgresql", pg_pg, NULL, NULL);
	return failed;
}
