/*
 * config_store.c - where the store is, as the programs are told it: a file
 * ([store] path, SQLite) or a postgresql:// URI ([store] url, PostgreSQL),
 * from the config file or --store. Owns the test "is this a URI", the refusal
 * of a password in a URI (it belongs in a libpq passfile, never in a config
 * or on a command line), the URI as logs may show it, and the spool directory
 * smtpd uses beside either kind. The string goes to store_open() unchanged;
 * nothing here opens the store or touches the file system.
 */
#include <ctype.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "store.h"


/* The part of a URI after "scheme://". */
static const char *
url_rest(const char *uri)
{
	return strstr(uri, "://") + 3;
}

/* Length of the user info ("user" or "user:password") that rest begins
 * with, or 0 when there is none: as libpq reads it, the text before an '@'
 * that comes before any '/'. */
static size_t
url_userinfo_len(const char *rest)
{
	size_t n = strcspn(rest, "@/");

	return rest[n] == '@' ? n : 0;
}

static int
hexval(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/* Is the parameter p (n octets, "key=value") libpq's password? Its key is
 * percent-decoded first, as libpq decodes it. */
static bool
param_is_password(const char *p, size_t n)
{
	static const char want[] = "password";
	size_t i, k = 0;
	char c;

	for (i = 0; i < n && p[i] != '='; i++) {
		c = p[i];
		if (c == '%' && i + 2 < n && isxdigit((unsigned char)p[i + 1]) &&
		    isxdigit((unsigned char)p[i + 2])) {
			c = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
			i += 2;
		}
		if (k >= sizeof(want) - 1 || c != want[k])
			return false;
		k++;
	}
	return k == sizeof(want) - 1;
}

/* The query of a URI ("k=v&k=v" after the '?' past its user info), or NULL. */
static const char *
url_query(const char *uri)
{
	const char *rest = url_rest(uri), *q;

	q = strchr(rest + url_userinfo_len(rest), '?');
	return q ? q + 1 : NULL;
}

/* Does the URI carry a password, in its user info or as a parameter? */
static bool
url_has_password(const char *uri)
{
	const char *rest = url_rest(uri), *q;
	size_t ui = url_userinfo_len(rest), n;

	if (ui > 0 && memchr(rest, ':', ui) != NULL)
		return true;
	for (q = url_query(uri); q != NULL && *q != '\0'; q += n + (q[n] == '&')) {
		n = strcspn(q, "&");
		if (param_is_password(q, n))
			return true;
	}
	return false;
}

int
config_set_store(struct config *cfg, const char *where, char *err, size_t errlen)
{
	if (strlen(where) >= sizeof(cfg->store_path)) {
		snprintf(err, errlen, "longer than %zu characters", sizeof(cfg->store_path) - 1);
		return -1;
	}
	if (store_is_url(where) && url_has_password(where)) {
		snprintf(err, errlen, "a password does not belong in the store's URL: put it in a "
		    "libpq passfile (~/.pgpass of the user the programs run as, or the file "
		    "PGPASSFILE names)");
		return -1;
	}
	snprintf(cfg->store_path, sizeof(cfg->store_path), "%s", where);
	cfg->store_is_url = store_is_url(where);
	return 0;
}

/* Bounded appends into dst[len]: what does not fit is dropped. */
struct strout {
	char	*dst;
	size_t	 len, used;
};

static void
strout_add(struct strout *o, const char *s, size_t n)
{
	if (o->len == 0)
		return;
	if (n > o->len - 1 - o->used)
		n = o->len - 1 - o->used;
	memcpy(o->dst + o->used, s, n);
	o->used += n;
	o->dst[o->used] = '\0';
}

const char *
config_store_display(const char *where, char *dst, size_t len)
{
	struct strout o = { dst, len, 0 };
	const char *rest, *q, *colon, *end;
	size_t ui, n;
	bool first = true;

	if (len > 0)
		dst[0] = '\0';
	if (!store_is_url(where) || !url_has_password(where)) {
		strout_add(&o, where, strlen(where));	/* as written */
		return dst;
	}
	rest = url_rest(where);
	strout_add(&o, where, (size_t)(rest - where));		/* scheme:// */
	if ((ui = url_userinfo_len(rest)) > 0) {
		colon = memchr(rest, ':', ui);
		strout_add(&o, rest, colon ? (size_t)(colon - rest) : ui);
		rest += ui;					/* at the '@' */
	}
	q = url_query(where);
	end = q ? q - 1 : rest + strlen(rest);
	strout_add(&o, rest, (size_t)(end - rest));		/* @host:port/db */
	for (; q != NULL && *q != '\0'; q += n + (q[n] == '&')) {
		n = strcspn(q, "&");
		if (n == 0 || param_is_password(q, n))
			continue;
		strout_add(&o, first ? "?" : "&", 1);
		strout_add(&o, q, n);
		first = false;
	}
	return dst;
}

void
config_store_open_error(const struct config *cfg, const char *err, char *msg, size_t len)
{
	char shown[PATH_MAX];

	config_store_display(cfg->store_path, shown, sizeof(shown));
	if (cfg->store_is_url)
		snprintf(msg, len, "cannot reach the store's database at %s: %s", shown, err);
	else
		snprintf(msg, len, "store %s: %s", shown, err);
}

void
config_store_spool(const struct config *cfg, char *dst, size_t len)
{
	char copy[PATH_MAX];

	if (cfg->store_spool[0] != '\0')
		snprintf(dst, len, "%s", cfg->store_spool);
	else if (cfg->store_is_url)
		snprintf(dst, len, "%s", CONFIG_SPOOL_DEFAULT);
	else {
		snprintf(copy, sizeof(copy), "%s", cfg->store_path);
		snprintf(dst, len, "%s", dirname(copy));
	}
}
