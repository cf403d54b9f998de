/*
 * config.c - correio.conf: defaults, the INI reader (inih) and the value
 * parsers shared with the command line (--listen ADDR:PORT [ROLE]).
 *
 * Every key of every section is in one table below; every limit comes from
 * CORREIO_LIMITS in correio_limits.h with its minimum and maximum. Errors are
 * collected, one per line, as "FILE:LINE: [section] key: reason": unknown
 * sections, unknown keys, bad values, limits out of range, lines too long.
 * Nothing here opens sockets or the store; docs/correio.conf.5 documents
 * every key with the default set in config_defaults().
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "mailaddr.h"
#include "numparse.h"
#include "store.h"

#define CONFIG_LINE_MAX		1024	/* longest line we accept */
#define CONFIG_MAX_ERRORS	20	/* errors reported before giving up */

/* ---- limits table --------------------------------------------------------- */

struct limit_def {
	const char	*key;
	long		 def, min, max;
	const char	*desc;
	size_t		 offset;
};

static const struct limit_def limit_defs[] = {
#define LIMIT_DEF(name, d, lo, hi, text) \
	{ #name, d, lo, hi, text, offsetof(struct limits, name) },
	CORREIO_LIMITS(LIMIT_DEF)
#undef LIMIT_DEF
};
#define NLIMITS	(sizeof(limit_defs) / sizeof(limit_defs[0]))

int
config_limit_info(const char *key, long *def, long *min, long *max, const char **desc)
{
	size_t i;

	for (i = 0; i < NLIMITS; i++) {
		if (strcmp(limit_defs[i].key, key) == 0) {
			if (def)
				*def = limit_defs[i].def;
			if (min)
				*min = limit_defs[i].min;
			if (max)
				*max = limit_defs[i].max;
			if (desc)
				*desc = limit_defs[i].desc;
			return 0;
		}
	}
	return -1;
}

/* ---- defaults ------------------------------------------------------------- */

static const long default_retry[] = { 60, 300, 900, 1800, 3600 };

void
config_defaults(struct config *cfg)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->store_path, sizeof(cfg->store_path), "%s", CONFIG_STORE_DEFAULT);
	cfg->transcripts = false;
	if (gethostname(cfg->hostname, sizeof(cfg->hostname)) != 0 || cfg->hostname[0] == '\0')
		snprintf(cfg->hostname, sizeof(cfg->hostname), "localhost");
	cfg->hostname[sizeof(cfg->hostname) - 1] = '\0';
	cfg->vrfy_code = 252;
	cfg->smtp_plaintext_auth = false;
	cfg->pop3_plaintext_auth = false;
	cfg->smarthost_starttls = true;
	for (i = 0; i < sizeof(default_retry) / sizeof(default_retry[0]); i++)
		cfg->retry_schedule[i] = default_retry[i];
	cfg->nretry = i;
	cfg->max_queue_age = 432000;
	for (i = 0; i < NLIMITS; i++)
		*(long *)((char *)&cfg->limits + limit_defs[i].offset) = limit_defs[i].def;
}

bool
config_is_teacher(const struct config *cfg, const char *account)
{
	const char *p = cfg->webd_teachers, *q;
	size_t n = strlen(account);

	while (*p != '\0') {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		for (q = p; *q != '\0' && *q != ',' && !isspace((unsigned char)*q); q++)
			;
		if (n > 0 && (size_t)(q - p) == n && strncasecmp(p, account, n) == 0)
			return true;
		p = q;
	}
	return false;
}

/* ---- value parsers -------------------------------------------------------- */

static int
parse_bool(const char *v, bool *b)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*b = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*b = false;
			return 0;
		}
	}
	return -1;
}

/* A decimal number filling the whole string: digits only, no sign, at most
 * LONG_MAX (common/numparse.c). 0 or -1. */
static int
parse_long(const char *v, long *out)
{
	uint64_t n;

	if (numparse_u64z(v, LONG_MAX, &n) != NUMPARSE_OK)
		return -1;
	*out = (long)n;
	return 0;
}

static int
parse_port(const char *p, char *dst, size_t len)
{
	long n;

	if (parse_long(p, &n) == -1 || n < 1 || n > 65535)
		return -1;
	snprintf(dst, len, "%ld", n);
	return 0;
}

/*
 * Split "HOST:PORT" or "[V6]:PORT" into host and port. When the port is
 * missing and defport is given, it is used. Returns 0 or -1 with err.
 */
static int
split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen,
    const char *defport, char *err, size_t errlen)
{
	const char *colon, *close;
	size_t n;

	if (*s == '[') {
		if ((close = strchr(s, ']')) == NULL) {
			snprintf(err, errlen, "missing ']' after IPv6 address");
			return -1;
		}
		n = (size_t)(close - s - 1);
		if (close[1] == ':')
			colon = close + 1;
		else if (close[1] == '\0')
			colon = NULL;
		else {
			snprintf(err, errlen, "expected ':PORT' after ']'");
			return -1;
		}
		if (n == 0 || n >= hostlen) {
			snprintf(err, errlen, "bad IPv6 address");
			return -1;
		}
		memcpy(host, s + 1, n);
		host[n] = '\0';
	} else {
		colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon) {
			snprintf(err, errlen, "IPv6 addresses go in brackets: [::1]:PORT");
			return -1;
		}
		n = colon ? (size_t)(colon - s) : strlen(s);
		if (n == 0 || n >= hostlen) {
			snprintf(err, errlen, "missing or too long host");
			return -1;
		}
		memcpy(host, s, n);
		host[n] = '\0';
	}
	if (colon == NULL) {
		if (defport == NULL) {
			snprintf(err, errlen, "missing ':PORT'");
			return -1;
		}
		snprintf(port, portlen, "%s", defport);
		return 0;
	}
	if (parse_port(colon + 1, port, portlen) == -1) {
		snprintf(err, errlen, "bad port '%s' (1-65535)", colon + 1);
		return -1;
	}
	return 0;
}

static const char *const role_names[] = {
	[ROLE_INBOUND] = "inbound",
	[ROLE_SUBMISSION] = "submission",
	[ROLE_SMTPS] = "smtps",
	[ROLE_POP3] = "pop3",
	[ROLE_POP3S] = "pop3s",
	[ROLE_HTTP] = "http",
};

const char *
config_role_name(enum listen_role role)
{
	if ((size_t)role < sizeof(role_names) / sizeof(role_names[0]))
		return role_names[role];
	return "unknown";
}

int
config_parse_listen(const char *spec, enum listen_role default_role,
    struct listen_spec *ls, char *err, size_t errlen)
{
	char addr[128], word[32];
	const char *p = spec, *q;
	unsigned char tmp[16];
	bool pop3 = default_role == ROLE_POP3 || default_role == ROLE_POP3S;
	size_t n;
	int r;

	memset(ls, 0, sizeof(*ls));
	while (isspace((unsigned char)*p))
		p++;
	for (q = p; *q && !isspace((unsigned char)*q); q++)
		;
	n = (size_t)(q - p);
	if (n == 0 || n >= sizeof(addr)) {
		snprintf(err, errlen, "expected ADDR:PORT [ROLE]");
		return -1;
	}
	memcpy(addr, p, n);
	addr[n] = '\0';
	if (split_hostport(addr, ls->host, sizeof(ls->host), ls->port, sizeof(ls->port),
	    NULL, err, errlen) == -1)
		return -1;
	if (strcmp(ls->host, "*") == 0)
		snprintf(ls->host, sizeof(ls->host), "0.0.0.0");
	else if (strcasecmp(ls->host, "localhost") == 0)
		snprintf(ls->host, sizeof(ls->host), "127.0.0.1");
	if (inet_pton(addr[0] == '[' ? AF_INET6 : AF_INET, ls->host, tmp) != 1) {
		snprintf(err, errlen, "'%s' is not an IP%s address", ls->host,
		    addr[0] == '[' ? "v6" : "v4");
		return -1;
	}
	ls->role = default_role;
	p = q;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 0;
	for (q = p; *q && !isspace((unsigned char)*q); q++)
		;
	n = (size_t)(q - p);
	if (n >= sizeof(word)) {
		snprintf(err, errlen, "unknown role");
		return -1;
	}
	memcpy(word, p, n);
	word[n] = '\0';
	if (default_role == ROLE_HTTP) {
		snprintf(err, errlen, "unexpected '%s': a webd listen address takes no role", word);
		return -1;
	}
	while (isspace((unsigned char)*q))
		q++;
	if (*q != '\0') {
		snprintf(err, errlen, "unexpected '%s' after the role", q);
		return -1;
	}
	for (r = pop3 ? ROLE_POP3 : ROLE_INBOUND; r <= (pop3 ? ROLE_POP3S : ROLE_SMTPS); r++) {
		if (strcasecmp(word, role_names[r]) == 0) {
			ls->role = (enum listen_role)r;
			return 0;
		}
	}
	snprintf(err, errlen, "unknown role '%s' (%s)", word,
	    pop3 ? "pop3 or pop3s" : "inbound, submission or smtps");
	return -1;
}

/* "10.0.0.0/8", "192.168.1.5", "2001:db8::/32" */
static int
parse_cidr(const char *s, struct netmask *nm, char *err, size_t errlen)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	long prefix;
	int maxp;

	memset(nm, 0, sizeof(*nm));
	if (n == 0 || n >= sizeof(addr)) {
		snprintf(err, errlen, "bad network '%s'", s);
		return -1;
	}
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, nm->addr) == 1) {
		nm->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, addr, nm->addr) == 1) {
		nm->family = AF_INET6;
		maxp = 128;
	} else {
		snprintf(err, errlen, "'%s' is not an IP address", addr);
		return -1;
	}
	if (slash == NULL)
		prefix = maxp;
	else if (parse_long(slash + 1, &prefix) == -1 || prefix > maxp) {
		snprintf(err, errlen, "bad prefix length in '%s' (0-%d)", s, maxp);
		return -1;
	}
	nm->prefix = (int)prefix;
	return 0;
}

/* ---- the file reader ------------------------------------------------------ */

enum section {
	SEC_NONE, SEC_STORE, SEC_SMTPD, SEC_POP3D, SEC_WEBD, SEC_RELAY, SEC_TLS, SEC_LIMITS,
	SEC_UNKNOWN
};

static const char *const section_names[] = {
	[SEC_STORE] = "store", [SEC_SMTPD] = "smtpd", [SEC_POP3D] = "pop3d", [SEC_WEBD] = "webd",
	[SEC_RELAY] = "relay", [SEC_TLS] = "tls", [SEC_LIMITS] = "limits",
};

struct loader {
	struct config	*cfg;
	const char	*file;
	FILE		*fp;
	int		 lineno;	/* line the reader returned last */
	enum section	 section;	/* as seen by the reader */
	char		*err;
	size_t		 errlen;
	int		 nerrors;
	bool		 smtp_listen_seen, pop3_listen_seen, webd_listen_seen;
	bool		 trusted_seen, routes_seen;
	int		 store_path_line, store_url_line;	/* [store] path, url set there */
};

static void
loader_error(struct loader *ld, int line, const char *section, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
loader_error(struct loader *ld, int line, const char *section, const char *key,
    const char *fmt, ...)
{
	char reason[512], msg[1024];
	size_t used;
	va_list ap;

	if (ld->nerrors++ >= CONFIG_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (section && key)
		snprintf(msg, sizeof(msg), "%s:%d: [%s] %s: %s", ld->file, line, section, key, reason);
	else if (section)
		snprintf(msg, sizeof(msg), "%s:%d: [%s]: %s", ld->file, line, section, reason);
	else if (key)
		snprintf(msg, sizeof(msg), "%s:%d: %s: %s", ld->file, line, key, reason);
	else
		snprintf(msg, sizeof(msg), "%s:%d: %s", ld->file, line, reason);
	if (ld->errlen == 0)
		return;
	used = strlen(ld->err);
	if (used > 0 && used + 1 < ld->errlen)
		ld->err[used++] = '\n';
	snprintf(ld->err + used, ld->errlen - used, "%s", msg);
}

static enum section
section_lookup(const char *name)
{
	size_t i;

	for (i = 1; i < sizeof(section_names) / sizeof(section_names[0]); i++)
		if (strcmp(name, section_names[i]) == 0)
			return (enum section)i;
	return SEC_UNKNOWN;
}

/*
 * inih's line reader. Counting lines here gives the handler its line
 * number (the system inih has no INI_HANDLER_LINENO); it also refuses lines
 * longer than inih's buffer (which would otherwise be split silently) and
 * checks section names, which inih does not pass for empty sections.
 */
static char *
loader_read(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	char line[CONFIG_LINE_MAX + 2], *p, *close;
	size_t n;
	int c;

	if (fgets(line, sizeof(line), ld->fp) == NULL)
		return NULL;
	ld->lineno++;
	n = strlen(line);
	if (n > 0 && line[n - 1] != '\n' && !feof(ld->fp)) {
		/* Longer than we accept: report and skip the rest. */
		while ((c = fgetc(ld->fp)) != EOF && c != '\n')
			;
		loader_error(ld, ld->lineno, NULL, NULL, "line longer than %d characters",
		    CONFIG_LINE_MAX);
		snprintf(str, (size_t)num, "\n");
		return str;
	}
	if (n + 1 > (size_t)num) {
		loader_error(ld, ld->lineno, NULL, NULL, "line longer than %d characters", num - 2);
		snprintf(str, (size_t)num, "\n");
		return str;
	}
	p = line;
	if (ld->lineno == 1 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;		/* UTF-8 byte order mark */
	for (; *p != '\n' && isspace((unsigned char)*p); p++)
		;
	/* inih without leading blanks: an indented key is a key, never the
	 * continuation of the previous value (INI_ALLOW_MULTILINE). */
	memcpy(str, p, strlen(p) + 1);
	if (*p == '[') {
		if ((close = strchr(p, ']')) != NULL) {
			*close = '\0';
			ld->section = section_lookup(p + 1);
			if (ld->section == SEC_UNKNOWN)
				loader_error(ld, ld->lineno, p + 1, NULL,
				    "unknown section (store, smtpd, pop3d, webd, relay, tls, limits)");
		}
	}
	return str;
}

static int
set_string(struct loader *ld, const char *sec, const char *key, const char *v,
    char *dst, size_t len)
{
	if (strlen(v) >= len) {
		loader_error(ld, ld->lineno, sec, key, "value longer than %zu characters", len - 1);
		return -1;
	}
	snprintf(dst, len, "%s", v);
	return 0;
}

static void
set_bool(struct loader *ld, const char *sec, const char *key, const char *v, bool *dst)
{
	if (parse_bool(v, dst) == -1)
		loader_error(ld, ld->lineno, sec, key,
		    "'%s' is not a boolean (yes/no, true/false, on/off, 1/0)", v);
}

static void
add_listen(struct loader *ld, const char *sec, const char *v, enum listen_role def,
    struct listen_spec *v_list, size_t *n, bool *seen)
{
	char err[256];
	struct listen_spec ls;

	if (!*seen) {
		*n = 0;
		*seen = true;
	}
	if (config_parse_listen(v, def, &ls, err, sizeof(err)) == -1) {
		loader_error(ld, ld->lineno, sec, "listen", "%s", err);
		return;
	}
	if (*n >= CONFIG_MAX_LISTEN) {
		loader_error(ld, ld->lineno, sec, "listen", "more than %d listen lines",
		    CONFIG_MAX_LISTEN);
		return;
	}
	v_list[(*n)++] = ls;
}

/* HOST[:PORT] (port 25 by default) of a route or the smarthost into r.
 * Returns 0, or -1 with the error reported against key. */
static int
relay_host(struct loader *ld, const char *key, const char *v, struct route *r)
{
	char err[256];

	if (split_hostport(v, r->host, sizeof(r->host), r->port, sizeof(r->port), "25",
	    err, sizeof(err)) == -1) {
		loader_error(ld, ld->lineno, "relay", key, "%s", err);
		return -1;
	}
	if (!valid_host(r->host)) {
		loader_error(ld, ld->lineno, "relay", key, "bad host '%s'", r->host);
		return -1;
	}
	return 0;
}

static void
relay_key(struct loader *ld, const char *key, const char *v)
{
	struct config *cfg = ld->cfg;
	char err[256], domain[256], *tok, *save, copy[CONFIG_LINE_MAX + 1];
	const char *p;
	struct route r;
	long n;
	size_t len;

	if (strcmp(key, "route") == 0) {
		memset(&r, 0, sizeof(r));
		for (p = v; *p && !isspace((unsigned char)*p); p++)
			;
		len = (size_t)(p - v);
		while (isspace((unsigned char)*p))
			p++;
		if (len == 0 || len >= sizeof(domain) || *p == '\0') {
			loader_error(ld, ld->lineno, "relay", key, "expected DOMAIN HOST:PORT");
			return;
		}
		memcpy(domain, v, len);
		domain[len] = '\0';
		if (!valid_domain_name(domain) && strcmp(domain, "*") != 0) {
			loader_error(ld, ld->lineno, "relay", key, "bad domain '%s'", domain);
			return;
		}
		snprintf(r.domain, sizeof(r.domain), "%s", domain);
		if (relay_host(ld, key, p, &r) == -1)
			return;
		if (!ld->routes_seen) {
			cfg->nroutes = 0;
			ld->routes_seen = true;
		}
		if (cfg->nroutes >= CONFIG_MAX_ROUTES) {
			loader_error(ld, ld->lineno, "relay", key, "more than %d routes",
			    CONFIG_MAX_ROUTES);
			return;
		}
		cfg->routes[cfg->nroutes++] = r;
	} else if (strcmp(key, "smarthost") == 0) {
		memset(&r, 0, sizeof(r));
		if (*v == '\0') {
			cfg->smarthost = r;
			return;
		}
		if (relay_host(ld, key, v, &r) == -1)
			return;
		cfg->smarthost = r;
	} else if (strcmp(key, "smarthost_starttls") == 0) {
		set_bool(ld, "relay", key, v, &cfg->smarthost_starttls);
	} else if (strcmp(key, "smarthost_user") == 0) {
		set_string(ld, "relay", key, v, cfg->smarthost_user, sizeof(cfg->smarthost_user));
	} else if (strcmp(key, "smarthost_password") == 0) {
		set_string(ld, "relay", key, v, cfg->smarthost_password,
		    sizeof(cfg->smarthost_password));
	} else if (strcmp(key, "trusted_networks") == 0) {
		if (!ld->trusted_seen) {
			cfg->ntrusted = 0;
			ld->trusted_seen = true;
		}
		snprintf(copy, sizeof(copy), "%s", v);
		for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
			if (cfg->ntrusted >= CONFIG_MAX_NETS) {
				loader_error(ld, ld->lineno, "relay", key, "more than %d networks",
				    CONFIG_MAX_NETS);
				return;
			}
			if (parse_cidr(tok, &cfg->trusted[cfg->ntrusted], err, sizeof(err)) == -1) {
				loader_error(ld, ld->lineno, "relay", key, "%s", err);
				return;
			}
			cfg->ntrusted++;
		}
	} else if (strcmp(key, "retry_schedule") == 0) {
		snprintf(copy, sizeof(copy), "%s", v);
		cfg->nretry = 0;
		for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
			if (cfg->nretry >= sizeof(cfg->retry_schedule) / sizeof(cfg->retry_schedule[0])) {
				loader_error(ld, ld->lineno, "relay", key, "more than %zu intervals",
				    sizeof(cfg->retry_schedule) / sizeof(cfg->retry_schedule[0]));
				break;
			}
			if (parse_long(tok, &n) == -1 || n < 1 || n > 86400 * 7) {
				loader_error(ld, ld->lineno, "relay", key,
				    "'%s' is not a number of seconds (1-604800)", tok);
				break;
			}
			cfg->retry_schedule[cfg->nretry++] = n;
		}
		if (cfg->nretry == 0) {
			if (ld->nerrors == 0)
				loader_error(ld, ld->lineno, "relay", key, "needs at least one interval");
			for (n = 0; n < 5; n++)
				cfg->retry_schedule[n] = default_retry[n];
			cfg->nretry = 5;
		}
	} else if (strcmp(key, "max_queue_age") == 0) {
		if (parse_long(v, &n) == -1 || n < 60 || n > 86400 * 60)
			loader_error(ld, ld->lineno, "relay", key,
			    "'%s' out of range (60-5184000 seconds)", v);
		else
			cfg->max_queue_age = n;
	} else {
		loader_error(ld, ld->lineno, "relay", key, "unknown key");
	}
}

/* [store] path = FILE (SQLite) or url = postgresql://... (PostgreSQL):
 * the same setting, each refusing what belongs to the other. */
static void
store_key(struct loader *ld, const char *key, const char *v)
{
	bool url = strcmp(key, "url") == 0;
	char why[256];

	if (*v == '\0') {
		loader_error(ld, ld->lineno, "store", key, "empty %s", url ? "URL" : "path");
		return;
	}
	if (url && !store_is_url(v)) {
		loader_error(ld, ld->lineno, "store", key, "'%s' is not a postgresql:// URL "
		    "(a SQLite store is [store] path)", v);
		return;
	}
	if (!url && store_is_url(v)) {
		loader_error(ld, ld->lineno, "store", key, "a URL is not a path: a PostgreSQL "
		    "store is [store] url");
		return;
	}
	if (config_set_store(ld->cfg, v, why, sizeof(why)) == -1) {
		loader_error(ld, ld->lineno, "store", key, "%s", why);
		return;
	}
	if (url)
		ld->store_url_line = ld->lineno;
	else
		ld->store_path_line = ld->lineno;
}

static int
loader_handler(void *user, const char *section, const char *key, const char *v)
{
	struct loader *ld = user;
	struct config *cfg = ld->cfg;
	enum section sec = section_lookup(section);
	long n;
	size_t i;

	if (*section == '\0') {
		loader_error(ld, ld->lineno, NULL, key, "key outside of any [section]");
		return 1;
	}
	if (sec == SEC_UNKNOWN)
		return 1;	/* reported once, at the section line */

	switch (sec) {
	case SEC_STORE:
		if (strcmp(key, "path") == 0 || strcmp(key, "url") == 0)
			store_key(ld, key, v);
		else if (strcmp(key, "spool") == 0) {
			if (*v == '\0')
				loader_error(ld, ld->lineno, section, key, "empty path");
			else
				set_string(ld, section, key, v, cfg->store_spool, sizeof(cfg->store_spool));
		} else if (strcmp(key, "transcripts") == 0)
			set_bool(ld, section, key, v, &cfg->transcripts);
		else
			loader_error(ld, ld->lineno, section, key, "unknown key");
		break;
	case SEC_SMTPD:
		if (strcmp(key, "hostname") == 0) {
			if (!valid_host(v))
				loader_error(ld, ld->lineno, section, key, "'%s' is not a host name", v);
			else
				set_string(ld, section, key, v, cfg->hostname, sizeof(cfg->hostname));
		} else if (strcmp(key, "listen") == 0)
			add_listen(ld, section, v, ROLE_INBOUND, cfg->smtp_listen,
			    &cfg->smtp_nlisten, &ld->smtp_listen_seen);
		else if (strcmp(key, "vrfy") == 0) {
			if (parse_long(v, &n) == -1 || (n != 252 && n != 550 && n != 502))
				loader_error(ld, ld->lineno, section, key,
				    "'%s' must be 252, 550 or 502", v);
			else
				cfg->vrfy_code = (int)n;
		} else if (strcmp(key, "plaintext_auth") == 0)
			set_bool(ld, section, key, v, &cfg->smtp_plaintext_auth);
		else if (strcmp(key, "user") == 0)
			set_string(ld, section, key, v, cfg->user, sizeof(cfg->user));
		else
			loader_error(ld, ld->lineno, section, key, "unknown key");
		break;
	case SEC_POP3D:
		if (strcmp(key, "listen") == 0)
			add_listen(ld, section, v, ROLE_POP3, cfg->pop3_listen,
			    &cfg->pop3_nlisten, &ld->pop3_listen_seen);
		else if (strcmp(key, "plaintext_auth") == 0)
			set_bool(ld, section, key, v, &cfg->pop3_plaintext_auth);
		else if (strcmp(key, "user") == 0)
			set_string(ld, section, key, v, cfg->pop3_user, sizeof(cfg->pop3_user));
		else
			loader_error(ld, ld->lineno, section, key, "unknown key");
		break;
	case SEC_WEBD:
		if (strcmp(key, "listen") == 0)
			add_listen(ld, section, v, ROLE_HTTP, cfg->webd_listen,
			    &cfg->webd_nlisten, &ld->webd_listen_seen);
		else if (strcmp(key, "teachers") == 0)
			set_string(ld, section, key, v, cfg->webd_teachers, sizeof(cfg->webd_teachers));
		else if (strcmp(key, "user") == 0)
			set_string(ld, section, key, v, cfg->webd_user, sizeof(cfg->webd_user));
		else
			loader_error(ld, ld->lineno, section, key, "unknown key");
		break;
	case SEC_RELAY:
		relay_key(ld, key, v);
		break;
	case SEC_TLS:
		if (strcmp(key, "cert") == 0)
			set_string(ld, section, key, v, cfg->tls_cert, sizeof(cfg->tls_cert));
		else if (strcmp(key, "key") == 0)
			set_string(ld, section, key, v, cfg->tls_key, sizeof(cfg->tls_key));
		else
			loader_error(ld, ld->lineno, section, key, "unknown key");
		break;
	case SEC_LIMITS:
		for (i = 0; i < NLIMITS; i++)
			if (strcmp(key, limit_defs[i].key) == 0)
				break;
		if (i == NLIMITS) {
			loader_error(ld, ld->lineno, section, key, "unknown limit");
			break;
		}
		if (parse_long(v, &n) == -1) {
			loader_error(ld, ld->lineno, section, key, "'%s' is not a whole number", v);
			break;
		}
		if (n < limit_defs[i].min || n > limit_defs[i].max) {
			loader_error(ld, ld->lineno, section, key, "%ld out of range (%ld-%ld)",
			    n, limit_defs[i].min, limit_defs[i].max);
			break;
		}
		*(long *)((char *)&cfg->limits + limit_defs[i].offset) = n;
		break;
	default:
		break;
	}
	return 1;
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct loader ld;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	ld.file = path;
	ld.err = err;
	ld.errlen = errlen;
	if ((ld.fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(loader_read, &ld, loader_handler, &ld);
	fclose(ld.fp);
	if (rc > 0)
		loader_error(&ld, rc, NULL, NULL, "syntax error (expected [section] or key = value)");
	else if (rc < 0)
		loader_error(&ld, ld.lineno, NULL, NULL, "cannot parse (out of memory)");
	if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0') && ld.nerrors == 0)
		loader_error(&ld, ld.lineno, "tls", cfg->tls_cert[0] ? "key" : "cert",
		    "cert and key must be given together");
	if (ld.store_path_line > 0 && ld.store_url_line > 0)
		loader_error(&ld, ld.store_path_line > ld.store_url_line ? ld.store_path_line :
		    ld.store_url_line, "store", ld.store_path_line > ld.store_url_line ? "path" : "url",
		    "both path (line %d) and url (line %d) are set: the store is a SQLite file "
		    "(path) or a PostgreSQL database (url); keep one", ld.store_path_line,
		    ld.store_url_line);
	if (ld.nerrors > CONFIG_MAX_ERRORS)
		loader_error(&ld, ld.lineno, NULL, NULL, "... and %d more errors",
		    ld.nerrors - CONFIG_MAX_ERRORS);
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	return ld.nerrors ? -1 : 0;
}

/* ---- addresses ------------------------------------------------------------ */

/* The IPv4 address of sa (also for ::ffff:a.b.c.d), or false. */
static bool
sa_ipv4(const struct sockaddr *sa, unsigned char v4[4])
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const struct sockaddr_in6 *s6;

	if (sa->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0) {
			memcpy(v4, s6->sin6_addr.s6_addr + 12, 4);
			return true;
		}
	}
	return false;
}

static bool
prefix_match(const unsigned char *a, const unsigned char *b, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool
config_is_loopback(const void *p)
{
	const struct sockaddr *sa = p;
	unsigned char v4[4];

	if (sa == NULL)
		return false;
	if (sa_ipv4(sa, v4))
		return v4[0] == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)p)->sin6_addr);
	return false;
}

bool
config_is_trusted(const struct config *cfg, const void *p)
{
	const struct sockaddr *sa = p;
	unsigned char v4[4];
	const unsigned char *v6 = NULL;
	bool is4;
	size_t i;

	if (sa == NULL)
		return false;
	is4 = sa_ipv4(sa, v4);
	if (!is4 && sa->sa_family == AF_INET6)
		v6 = ((const struct sockaddr_in6 *)p)->sin6_addr.s6_addr;
	for (i = 0; i < cfg->ntrusted; i++) {
		const struct netmask *nm = &cfg->trusted[i];

		if (nm->family == AF_INET && is4 && prefix_match(nm->addr, v4, nm->prefix))
			return true;
		if (nm->family == AF_INET6 && v6 != NULL && prefix_match(nm->addr, v6, nm->prefix))
			return true;
	}
	return false;
}
