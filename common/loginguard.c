/*
 * loginguard.c - the failed-login table and the delay rule (see
 * loginguard.h). A fixed array of LOGINGUARD_SLOTS entries, searched
 * linearly with a hash to skip most key comparisons; a failure costs two
 * searches, a success one. Keys are "p" + address + NUL + account for a
 * pair and "a" + address for an address, lower-cased.
 * Owns: the only rule that turns failures into a delay. Never: grows
 * (memory is fixed at creation), sleeps, or reads the clock itself.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "loginguard.h"

struct lg_entry {
	uint32_t hash;
	uint32_t count;		/* 0: free */
	int64_t	 last;		/* time of the last failure */
	size_t	 keylen;
	char	 key[2 * LOGINGUARD_KEY_MAX + 2];
};

struct loginguard {
	struct lg_entry e[LOGINGUARD_SLOTS];
};

struct loginguard *
loginguard_new(void)
{
	return calloc(1, sizeof(struct loginguard));
}

void
loginguard_free(struct loginguard **g)
{
	free(*g);
	*g = NULL;
}

/* Build the key of addr (and account unless NULL) into k; returns its length. */
static size_t
lg_key(char *k, const char *addr, const char *account)
{
	size_t n = 0, i;

	k[n++] = account != NULL ? 'p' : 'a';
	for (i = 0; addr[i] != '\0' && i < LOGINGUARD_KEY_MAX; i++)
		k[n++] = (char)tolower((unsigned char)addr[i]);
	if (account != NULL) {
		k[n++] = '\0';
		for (i = 0; account[i] != '\0' && i < LOGINGUARD_KEY_MAX; i++)
			k[n++] = (char)tolower((unsigned char)account[i]);
	}
	return n;
}

static uint32_t
lg_hash(const char *k, size_t n)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h;
}

static bool
lg_live(const struct lg_entry *e, const struct limits *lim, int64_t now)
{
	return e->count > 0 && now - e->last <= lim->auth_fail_window;
}

/* The live entry for key, or NULL. With make, a free, expired or the
 * oldest entry is taken for it instead (never NULL then). */
static struct lg_entry *
lg_find(struct loginguard *g, const struct limits *lim, const char *k, size_t n, int64_t now,
    bool make)
{
	uint32_t h = lg_hash(k, n);
	struct lg_entry *e, *victim = NULL;
	size_t i;

	for (i = 0; i < LOGINGUARD_SLOTS; i++) {
		e = &g->e[i];
		if (!lg_live(e, lim, now)) {
			e->count = 0;
			if (victim == NULL || victim->count > 0)
				victim = e;
			continue;
		}
		if (e->hash == h && e->keylen == n && memcmp(e->key, k, n) == 0)
			return e;
		if (victim == NULL || (victim->count > 0 && e->last < victim->last))
			victim = e;
	}
	if (!make)
		return NULL;
	victim->hash = h;
	victim->keylen = n;
	memcpy(victim->key, k, n);
	victim->count = 0;
	victim->last = now;
	return victim;
}

/* Record one failure under key; returns the count. */
static unsigned
lg_bump(struct loginguard *g, const struct limits *lim, const char *addr, const char *account,
    int64_t now)
{
	char k[2 * LOGINGUARD_KEY_MAX + 2];
	size_t n = lg_key(k, addr, account);
	struct lg_entry *e = lg_find(g, lim, k, n, now, true);

	if (e->count < UINT32_MAX / 2)
		e->count++;
	e->last = now;
	return e->count;
}

long
loginguard_failed(struct loginguard *g, const struct limits *lim, const char *addr,
    const char *account, unsigned session_failures, int64_t now)
{
	long max = lim->auth_fail_delay_max, delay;
	unsigned n = session_failures, pair = 0, byaddr = 0;

	if (g != NULL) {
		pair = lg_bump(g, lim, addr, account, now);
		byaddr = lg_bump(g, lim, addr, NULL, now);
	}
	if (pair > n)
		n = pair;
	if (n == 0)
		n = 1;
	/* 1, 2, 4, 8 ... seconds: the pair's (or the session's) own failures */
	delay = n > 30 ? max : 1L << (n - 1);
	/* One address over its ceiling: everything from it waits the longest. */
	if (byaddr > (unsigned long)lim->auth_fail_addr_ceiling)
		delay = max;
	return delay > max ? max : delay;
}

void
loginguard_succeeded(struct loginguard *g, const char *addr, const char *account)
{
	char k[2 * LOGINGUARD_KEY_MAX + 2];
	size_t n, i;
	uint32_t h;

	if (g == NULL)
		return;
	n = lg_key(k, addr, account);
	h = lg_hash(k, n);
	for (i = 0; i < LOGINGUARD_SLOTS; i++)
		if (g->e[i].count > 0 && g->e[i].hash == h && g->e[i].keylen == n &&
		    memcmp(g->e[i].key, k, n) == 0)
			g->e[i].count = 0;
}

unsigned
loginguard_count(struct loginguard *g, const struct limits *lim, const char *addr,
    const char *account, int64_t now)
{
	char k[2 * LOGINGUARD_KEY_MAX + 2];
	size_t n;
	struct lg_entry *e;

	if (g == NULL)
		return 0;
	n = lg_key(k, addr, account);
	e = lg_find(g, lim, k, n, now, false);
	return e != NULL ? e->count : 0;
}
