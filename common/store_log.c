/*
 * store_log.c - the front's part of the session log: store_sesslog_apply()
 * gathers a batch's records (many sessions, interleaved) into one share per
 * session (struct store_sesslog_share in store_backend.h: its first record,
 * its events in order, all its lines joined) and hands the shares to the
 * backend, which writes them in one transaction. The gathering is the same
 * for every backend; the backends own only the SQL.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "store_backend.h"

/* A batch being gathered: an open-addressed table of session ids over the
 * shares, in the order of their first records. */
struct gather {
	size_t	*table;			/* cap slots: a share's index, or SIZE_MAX: free */
	size_t	 cap;			/* a power of two, at least twice n */
	struct store_sesslog_share *shares;	/* n at most */
	struct buf *lines;		/* each share's lines, as they are joined */
	size_t	 n;			/* shares in use */
};

/* The share of r's session: found, or made from r (its first record). */
static struct store_sesslog_share *
share_of(struct gather *g, const struct store_sesslog_rec *r)
{
	struct store_sesslog_share *sh;
	uint32_t h = 2166136261u;	/* FNV-1a */
	const unsigned char *c;
	size_t i;

	for (c = (const unsigned char *)r->id; *c != '\0'; c++)
		h = (h ^ *c) * 16777619u;
	for (i = h & (g->cap - 1); g->table[i] != SIZE_MAX; i = (i + 1) & (g->cap - 1))
		if (strcmp(g->shares[g->table[i]].id, r->id) == 0)
			return &g->shares[g->table[i]];
	g->table[i] = g->n;
	sh = &g->shares[g->n];
	sh->id = r->id;
	sh->first = r;
	sh->opened = r->kind == STORE_SESSLOG_OPEN;
	buf_init(&g->lines[g->n], SIZE_MAX);
	g->n++;
	return sh;
}

static bool
is_event(const struct store_sesslog_rec *r)
{
	return r->kind == STORE_SESSLOG_USER || r->kind == STORE_SESSLOG_ACCOUNT ||
	    r->kind == STORE_SESSLOG_CLOSE;
}

/* Join r's lines to its share's, a '\n' between. 0, or -1 out of memory. */
static int
lines_join(struct gather *g, struct store_sesslog_share *sh, const struct store_sesslog_rec *r)
{
	struct buf *b = &g->lines[sh - g->shares];

	if (b->len == 0) {
		sh->proto = r->proto;
		sh->time = r->time;
	} else if (b->data[b->len - 1] != '\n' && buf_append(b, "\n", 1) == -1)
		return -1;
	return buf_append(b, r->text, r->len);
}

/*
 * Two passes over the batch: the first makes the shares, joins the lines
 * and counts each share's events; the second, with each share's events
 * given its place in one array, lists them in order.
 */
static int
gather(struct gather *g, const struct store_sesslog_rec *recs, size_t n,
    const struct store_sesslog_rec **events)
{
	struct store_sesslog_share *sh;
	size_t i, at = 0;

	for (i = 0; i < n; i++) {
		sh = share_of(g, &recs[i]);
		if (is_event(&recs[i]))
			sh->nevents++;
		else if (recs[i].kind == STORE_SESSLOG_LINES &&
		    lines_join(g, sh, &recs[i]) == -1)
			return -1;
	}
	for (i = 0; i < g->n; i++) {
		sh = &g->shares[i];
		sh->events = events + at;
		at += sh->nevents;
		sh->nevents = 0;
		if ((sh->len = g->lines[i].len) > 0) {
			sh->lines = g->lines[i].data;
			if (sh->lines[sh->len - 1] == '\n')
				sh->len--;
		}
	}
	for (i = 0; i < n; i++)
		if (is_event(&recs[i])) {
			sh = share_of(g, &recs[i]);
			sh->events[sh->nevents++] = &recs[i];
		}
	return 0;
}

int
store_sesslog_apply(struct store *st, const struct store_sesslog_rec *recs, size_t n)
{
	struct gather g = { 0 };
	const struct store_sesslog_rec **events;
	size_t i;
	int rc = -1;

	if (n == 0)
		return 0;
	for (g.cap = 16; g.cap < 2 * n; g.cap *= 2)
		;
	g.table = calloc(g.cap, sizeof(*g.table));
	g.shares = calloc(n, sizeof(*g.shares));
	g.lines = calloc(n, sizeof(*g.lines));
	events = calloc(n, sizeof(*events));
	if (g.table == NULL || g.shares == NULL || g.lines == NULL || events == NULL) {
		store_setmsg(st, "out of memory for a session log batch");
		goto out;
	}
	for (i = 0; i < g.cap; i++)
		g.table[i] = SIZE_MAX;
	if (gather(&g, recs, n, events) == -1) {
		store_setmsg(st, "out of memory gathering transcript lines");
		goto out;
	}
	rc = st->ops->sesslog_apply(st, g.shares, g.n);
out:
	for (i = 0; g.lines != NULL && i < g.n; i++)
		buf_free(&g.lines[i]);
	free(g.table);
	free(g.shares);
	free(g.lines);
	free(events);
	return rc;
}
