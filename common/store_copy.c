/*
 * store_copy.c - the copy engine behind `mailcli admin migrate`: a dump of
 * one store (any backend) into a load of another, checked before it is
 * committed. Backend-independent: it sees only the records and the
 * copy_count/dump/load ops of store_backend.h.
 *
 * Steps: refuse a target with any record in it (untouched); begin the load;
 * dump the source into it, hashing on the way each record (SHA-256 of its
 * fields) and each body (SHA-256 of its octets, as the loader reads them);
 * dump the target, inside the load's transaction, and compare kind by kind
 * the count and an order-free sum of the record hashes, and every body's
 * hash by message id; commit only when all agree, else roll back (nothing
 * stays); count the target once more after the commit. Bodies pass in
 * chunks: this file never holds one whole.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "monotime.h"
#include "store_backend.h"

#define COPY_SHA_LEN	32		/* SHA-256 */
#define COPY_CHUNK	(64 * 1024)	/* body octets per read when verifying */
#define COPY_ERR_MAX	STORE_ERR_MAX

static const char *const kind_names[STORE_REC_KINDS] = {
	[STORE_REC_DOMAIN]		= "domains",
	[STORE_REC_ACCOUNT]		= "accounts",
	[STORE_REC_ALIAS]		= "aliases",
	[STORE_REC_MESSAGE]		= "messages",
	[STORE_REC_ENTRY]		= "mailbox entries",
	[STORE_REC_QUEUE]		= "queue items",
	[STORE_REC_SESSION]		= "sessions",
	[STORE_REC_SESSION_ACCOUNT]	= "session accounts",
	[STORE_REC_TRANSCRIPT]		= "transcript rows",
	[STORE_REC_WEBSESSION]		= "web logins",
	[STORE_REC_TOKEN]		= "API tokens",
	[STORE_REC_SEQUENCE]		= "id sequences",
};

const char *
store_copy_kind_name(enum store_rec_kind kind)
{
	return (unsigned)kind < STORE_REC_KINDS ? kind_names[kind] : "records";
}

/* An order-free checksum of a set of records: the sum, in four 64-bit
 * lanes, of each record's SHA-256. */
struct copy_sum {
	uint64_t lane[COPY_SHA_LEN / 8];
};

struct copy_body {
	int64_t		 id;
	unsigned char	 sha[COPY_SHA_LEN];
};

/* One side of the copy: what a dump of it showed. */
struct copy_side {
	int64_t		 counts[STORE_REC_KINDS];
	struct copy_sum	 sums[STORE_REC_KINDS];
	int64_t		 seq[STORE_REC_KINDS];	/* sequence records, by kind */
};

struct copy {
	struct store	*from, *to;
	EVP_MD_CTX	*md;		/* record hashes */
	EVP_MD_CTX	*body_md;	/* the body passing now */
	struct copy_side src, dst;
	struct copy_body *bodies;	/* the source's, by increasing id */
	size_t		 nbodies, capbodies;
	unsigned char	*buf;		/* COPY_CHUNK: verifying bodies */
	store_copy_progress_fn *progress;
	void		*progress_arg;
	struct store_copy_stats stats;
	int64_t		 start_ms;
	bool		 failed;	/* err holds the reason (else the stores') */
	char		 err[COPY_ERR_MAX];
	/* the body being loaded */
	store_body_read_fn *inner_read;
	void		*inner_arg;
	int64_t		 body_pos;
	bool		 body_order_ok;
};

static int
copy_fail(struct copy *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
copy_fail(struct copy *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->failed) {
		va_start(ap, fmt);
		vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
		c->failed = true;
	}
	return -1;
}

/* ---- record hashes ------------------------------------------------------ */

static void
h_int(EVP_MD_CTX *md, int64_t v)
{
	unsigned char b[8];
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)v >> (8 * i));
	EVP_DigestUpdate(md, b, sizeof(b));
}

static void
h_str(EVP_MD_CTX *md, const char *s, size_t len)
{
	h_int(md, (int64_t)len);
	EVP_DigestUpdate(md, s, len);
}

#define H_TEXT(md, s)	h_str((md), (s), strlen(s))

/* Add the hash of record r (with body hash sha for a message) to sum. */
static int
record_sum(struct copy *c, const struct store_rec *r, const unsigned char *sha,
    struct copy_sum *sum)
{
	EVP_MD_CTX *md = c->md;
	unsigned char out[COPY_SHA_LEN];
	unsigned int outlen = 0;
	size_t i;
	uint64_t v;

	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		return copy_fail(c, "SHA-256: cannot start a digest");
	h_int(md, r->kind);
	switch (r->kind) {
	case STORE_REC_DOMAIN:
		H_TEXT(md, r->u.domain.name);
		h_int(md, r->u.domain.created);
		break;
	case STORE_REC_ACCOUNT:
		h_int(md, r->u.account.id);
		H_TEXT(md, r->u.account.name);
		H_TEXT(md, r->u.account.hash);
		h_int(md, r->u.account.created);
		h_int(md, r->u.account.teacher);
		break;
	case STORE_REC_ALIAS:
		H_TEXT(md, r->u.alias.address);
		H_TEXT(md, r->u.alias.account);
		h_int(md, r->u.alias.created);
		break;
	case STORE_REC_MESSAGE:
		h_int(md, r->u.message.id);
		h_int(md, r->u.message.size);
		H_TEXT(md, r->u.message.sender);
		H_TEXT(md, r->u.message.session);
		h_int(md, r->u.message.created);
		EVP_DigestUpdate(md, sha, COPY_SHA_LEN);
		break;
	case STORE_REC_ENTRY:
		h_int(md, r->u.entry.id);
		H_TEXT(md, r->u.entry.account);
		h_int(md, r->u.entry.message);
		H_TEXT(md, r->u.entry.uidl);
		h_int(md, r->u.entry.size);
		h_int(md, r->u.entry.arrived);
		h_int(md, r->u.entry.deleted);
		break;
	case STORE_REC_QUEUE:
		h_int(md, r->u.queue.id);
		h_int(md, r->u.queue.message);
		H_TEXT(md, r->u.queue.sender);
		H_TEXT(md, r->u.queue.rcpt);
		h_int(md, r->u.queue.created);
		h_int(md, r->u.queue.next_attempt);
		h_int(md, r->u.queue.attempts);
		H_TEXT(md, r->u.queue.last_error);
		break;
	case STORE_REC_SESSION:
		H_TEXT(md, r->u.session.id);
		H_TEXT(md, r->u.session.proto);
		H_TEXT(md, r->u.session.client);
		h_int(md, r->u.session.started);
		h_int(md, r->u.session.ended);
		H_TEXT(md, r->u.session.user);
		H_TEXT(md, r->u.session.outcome);
		break;
	case STORE_REC_SESSION_ACCOUNT:
		H_TEXT(md, r->u.session_account.session);
		H_TEXT(md, r->u.session_account.account);
		break;
	case STORE_REC_TRANSCRIPT:
		H_TEXT(md, r->u.transcript.session_id);
		h_int(md, r->u.transcript.seq);
		H_TEXT(md, r->u.transcript.proto);
		h_str(md, r->u.transcript.lines, r->u.transcript.len);
		h_int(md, r->u.transcript.time);
		break;
	case STORE_REC_WEBSESSION:
		H_TEXT(md, r->u.websession.id);
		H_TEXT(md, r->u.websession.account);
		H_TEXT(md, r->u.websession.csrf);
		h_int(md, r->u.websession.created);
		h_int(md, r->u.websession.expires);
		break;
	case STORE_REC_TOKEN:
		H_TEXT(md, r->u.token.hash);
		H_TEXT(md, r->u.token.account);
		h_int(md, r->u.token.created);
		break;
	case STORE_REC_SEQUENCE:
		h_int(md, r->u.sequence.of);
		h_int(md, r->u.sequence.last);
		break;
	case STORE_REC_KINDS:
		return copy_fail(c, "a record of an unknown kind");
	}
	if (EVP_DigestFinal_ex(md, out, &outlen) != 1 || outlen != COPY_SHA_LEN)
		return copy_fail(c, "SHA-256: cannot finish a digest");
	for (i = 0; i < COPY_SHA_LEN / 8; i++) {
		memcpy(&v, out + 8 * i, 8);
		sum->lane[i] += v;
	}
	return 0;
}

/* Count r on side s (and keep a sequence's value). */
static int
side_add(struct copy *c, struct copy_side *s, const struct store_rec *r,
    const unsigned char *sha)
{
	if ((unsigned)r->kind >= STORE_REC_KINDS)
		return copy_fail(c, "a record of an unknown kind (%d)", (int)r->kind);
	if (r->kind == STORE_REC_SEQUENCE) {
		if ((unsigned)r->u.sequence.of >= STORE_REC_KINDS)
			return copy_fail(c, "a sequence of an unknown kind");
		if (r->u.sequence.last > s->seq[r->u.sequence.of])
			s->seq[r->u.sequence.of] = r->u.sequence.last;
	}
	s->counts[r->kind]++;
	return record_sum(c, r, sha, &s->sums[r->kind]);
}

/* ---- the copy: source dump -> target load -------------------------------- */

/* The reader the loader gets: the source's, hashing what passes. */
static int
hashing_read(void *arg, int64_t offset, void *dst, size_t len, size_t *got_r)
{
	struct copy *c = arg;

	if (offset != c->body_pos)
		c->body_order_ok = false;
	if (c->inner_read(c->inner_arg, offset, dst, len, got_r) == -1)
		return copy_fail(c, "source: %s", store_errmsg(c->from));
	if (EVP_DigestUpdate(c->body_md, dst, *got_r) != 1)
		c->body_order_ok = false;
	c->body_pos = offset + (int64_t)*got_r;
	return 0;
}

static int
copy_message(struct copy *c, const struct store_rec *r)
{
	struct store_rec m = *r;
	struct copy_body *b;
	unsigned char sha[COPY_SHA_LEN];
	unsigned int shalen = 0;
	int64_t id = r->u.message.id;

	if (c->nbodies > 0 && id <= c->bodies[c->nbodies - 1].id)
		return copy_fail(c, "message %" PRId64 " dumped out of order", id);
	if (EVP_DigestInit_ex(c->body_md, EVP_sha256(), NULL) != 1)
		return copy_fail(c, "SHA-256: cannot start a digest");
	c->inner_read = r->u.message.read;
	c->inner_arg = r->u.message.read_arg;
	c->body_pos = 0;
	c->body_order_ok = true;
	m.u.message.read = hashing_read;
	m.u.message.read_arg = c;
	if (c->to->ops->load_record(c->to, &m) == -1)
		return copy_fail(c, "target: %s", store_errmsg(c->to));
	if (!c->body_order_ok || c->body_pos != r->u.message.size)
		return copy_fail(c, "message %" PRId64 ": the %s backend did not read its body"
		    " once, in order, whole (%" PRId64 " of %" PRId64 " octets)", id,
		    c->to->ops->name, c->body_pos, r->u.message.size);
	if (EVP_DigestFinal_ex(c->body_md, sha, &shalen) != 1 || shalen != COPY_SHA_LEN)
		return copy_fail(c, "SHA-256: cannot finish a digest");
	if (c->nbodies == c->capbodies) {
		size_t cap = c->capbodies ? c->capbodies * 2 : 1024;

		if ((b = realloc(c->bodies, cap * sizeof(*b))) == NULL)
			return copy_fail(c, "out of memory (%zu message checksums)", cap);
		c->bodies = b;
		c->capbodies = cap;
	}
	c->bodies[c->nbodies].id = id;
	memcpy(c->bodies[c->nbodies].sha, sha, COPY_SHA_LEN);
	c->nbodies++;
	if (side_add(c, &c->src, r, sha) == -1)
		return -1;
	c->stats.bytes += r->u.message.size;
	return 0;
}

static int
copy_record(void *arg, const struct store_rec *r)
{
	struct copy *c = arg;

	if (r->kind == STORE_REC_MESSAGE) {
		if (copy_message(c, r) == -1)
			return -1;
	} else {
		if (c->to->ops->load_record(c->to, r) == -1)
			return copy_fail(c, "target: %s", store_errmsg(c->to));
		if (side_add(c, &c->src, r, NULL) == -1)
			return -1;
	}
	if ((unsigned)r->kind < STORE_REC_KINDS)
		c->stats.counts[r->kind]++;
	if (r->kind == STORE_REC_MESSAGE && c->progress != NULL) {
		c->stats.seconds = (double)(monotime_ms() - c->start_ms) / 1000.0;
		if (c->progress(c->progress_arg, &c->stats) == -1)
			return copy_fail(c, "stopped after %" PRId64 " messages",
			    c->stats.counts[STORE_REC_MESSAGE]);
	}
	return 0;
}

/* ---- the check: target dump, compared ------------------------------------ */

static const struct copy_body *
body_find(const struct copy *c, int64_t id)
{
	size_t lo = 0, hi = c->nbodies, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (c->bodies[mid].id == id)
			return &c->bodies[mid];
		if (c->bodies[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
verify_record(void *arg, const struct store_rec *r)
{
	struct copy *c = arg;
	const struct copy_body *b;
	unsigned char sha[COPY_SHA_LEN];
	unsigned int shalen = 0;
	int64_t off = 0, id;
	size_t got;

	if (r->kind != STORE_REC_MESSAGE)
		return side_add(c, &c->dst, r, NULL);
	id = r->u.message.id;
	if ((b = body_find(c, id)) == NULL)
		return copy_fail(c, "verify: message %" PRId64 " is in the target but was not"
		    " copied", id);
	if (EVP_DigestInit_ex(c->body_md, EVP_sha256(), NULL) != 1)
		return copy_fail(c, "SHA-256: cannot start a digest");
	for (;;) {
		if (r->u.message.read(r->u.message.read_arg, off, c->buf, COPY_CHUNK, &got) == -1)
			return copy_fail(c, "verify: message %" PRId64 ": %s", id,
			    store_errmsg(c->to));
		if (got == 0)
			break;
		EVP_DigestUpdate(c->body_md, c->buf, got);
		off += (int64_t)got;
	}
	if (EVP_DigestFinal_ex(c->body_md, sha, &shalen) != 1 || shalen != COPY_SHA_LEN)
		return copy_fail(c, "SHA-256: cannot finish a digest");
	if (off != r->u.message.size || memcmp(sha, b->sha, COPY_SHA_LEN) != 0)
		return copy_fail(c, "verify: message %" PRId64 ": the body in the target differs"
		    " from the source's (%" PRId64 " octets read, SHA-256 mismatch)", id, off);
	return side_add(c, &c->dst, r, sha);
}

static int
verify(struct copy *c)
{
	struct store_dump_sink sink = { verify_record, c };
	int k, q;

	if (c->to->ops->dump(c->to, &sink) == -1)
		return c->failed ? -1 : copy_fail(c, "verify: %s", store_errmsg(c->to));
	for (k = 0; k < STORE_REC_KINDS; k++) {
		if (k == STORE_REC_SEQUENCE)
			continue;
		if (c->src.counts[k] != c->dst.counts[k])
			return copy_fail(c, "verify: %" PRId64 " %s copied but %" PRId64 " in the"
			    " target", c->src.counts[k], kind_names[k], c->dst.counts[k]);
		if (memcmp(&c->src.sums[k], &c->dst.sums[k], sizeof(c->src.sums[k])) != 0)
			return copy_fail(c, "verify: the %s in the target differ from the"
			    " source's (checksum mismatch)", kind_names[k]);
	}
	for (q = 0; q < STORE_REC_KINDS; q++)
		if (c->dst.seq[q] < c->src.seq[q])
			return copy_fail(c, "verify: the target would give %s ids again"
			    " (sequence %" PRId64 " < %" PRId64 ")", kind_names[q],
			    c->dst.seq[q], c->src.seq[q]);
	return 0;
}

/* ---- the whole ------------------------------------------------------------ */

/* "3 accounts, 1 domains" for the kinds with records in counts. */
static void
describe(const int64_t *counts, char *dst, size_t len)
{
	size_t used = 0;
	int k, n;

	dst[0] = '\0';
	for (k = 0; k < STORE_REC_KINDS; k++) {
		if (k == STORE_REC_SEQUENCE || counts[k] == 0 || used >= len)
			continue;
		n = snprintf(dst + used, len - used, "%s%" PRId64 " %s", used ? ", " : "",
		    counts[k], kind_names[k]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static bool
can_copy(const struct store_ops *ops)
{
	return ops->copy_count != NULL && ops->dump != NULL && ops->load_begin != NULL &&
	    ops->load_record != NULL && ops->load_end != NULL;
}

int
store_copy(struct store *from, struct store *to, store_copy_progress_fn *progress,
    void *arg, struct store_copy_stats *stats_r, char *err, size_t errlen)
{
	struct store_dump_sink sink;
	struct copy c;
	int64_t counts[STORE_REC_KINDS];
	char what[COPY_ERR_MAX];
	bool loading = false;
	int ret = -1, k;

	memset(&c, 0, sizeof(c));
	memset(stats_r, 0, sizeof(*stats_r));
	c.from = from;
	c.to = to;
	c.progress = progress;
	c.progress_arg = arg;
	c.start_ms = monotime_ms();
	if (!can_copy(from->ops) || !can_copy(to->ops)) {
		snprintf(err, errlen, "the %s backend cannot be copied yet",
		    can_copy(from->ops) ? to->ops->name : from->ops->name);
		return -1;
	}

	/* An empty target, or nothing at all. */
	if (to->ops->copy_count(to, counts) == -1) {
		snprintf(err, errlen, "target: %s", store_errmsg(to));
		return -1;
	}
	counts[STORE_REC_SEQUENCE] = 0;
	for (k = 0; k < STORE_REC_KINDS; k++)
		if (counts[k] != 0)
			break;
	if (k < STORE_REC_KINDS) {
		describe(counts, what, sizeof(what));
		snprintf(err, errlen, "the target is not empty (%s): migrate copies only into"
		    " a new, empty store; nothing was changed", what);
		return STORE_COPY_NOT_EMPTY;
	}
	if (from->ops->copy_count(from, counts) == -1) {
		snprintf(err, errlen, "source: %s", store_errmsg(from));
		return -1;
	}
	c.stats.messages_total = counts[STORE_REC_MESSAGE];

	if ((c.md = EVP_MD_CTX_new()) == NULL || (c.body_md = EVP_MD_CTX_new()) == NULL ||
	    (c.buf = malloc(COPY_CHUNK)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (to->ops->load_begin(to) == -1) {
		snprintf(err, errlen, "target: %s", store_errmsg(to));
		goto out;
	}
	loading = true;

	sink.record = copy_record;
	sink.arg = &c;
	if (from->ops->dump(from, &sink) == -1) {
		if (c.failed)
			snprintf(err, errlen, "%s", c.err);
		else
			snprintf(err, errlen, "source: %s", store_errmsg(from));
		goto out;
	}
	if (verify(&c) == -1) {
		snprintf(err, errlen, "%s", c.err);
		goto out;
	}
	loading = false;
	if (to->ops->load_end(to, true) == -1) {
		snprintf(err, errlen, "target: commit: %s", store_errmsg(to));
		goto out;
	}
	/* What the commit left: the same counts. */
	if (to->ops->copy_count(to, counts) == -1) {
		snprintf(err, errlen, "target: after the commit: %s", store_errmsg(to));
		goto out;
	}
	for (k = 0; k < STORE_REC_KINDS; k++) {
		if (k != STORE_REC_SEQUENCE && counts[k] != c.src.counts[k]) {
			snprintf(err, errlen, "target: after the commit: %" PRId64 " %s, not %"
			    PRId64, counts[k], kind_names[k], c.src.counts[k]);
			goto out;
		}
	}
	c.stats.seconds = (double)(monotime_ms() - c.start_ms) / 1000.0;
	*stats_r = c.stats;
	ret = 0;
out:
	if (loading)
		to->ops->load_end(to, false);
	EVP_MD_CTX_free(c.md);
	EVP_MD_CTX_free(c.body_md);
	free(c.bodies);
	free(c.buf);
	return ret;
}
