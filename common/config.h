/*
 * config.h - correio.conf (INI, read with inih) and the command-line
 * overrides every program shares (-c FILE, --store PATH|URI, --listen ADDR:PORT).
 * Sections: [store] [smtpd] [pop3d] [webd] [relay] [tls] [limits]. Unknown keys and
 * bad values are errors naming file, line and key. Every key is documented in
 * docs/correio.conf.5 with its default.
 */
#ifndef CORREIO_CONFIG_H
#define CORREIO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <limits.h>
#include "correio_limits.h"

#define CONFIG_MAX_LISTEN	16
#define CONFIG_MAX_ROUTES	64
#define CONFIG_MAX_NETS		32

enum listen_role {
	ROLE_INBOUND,		/* SMTP port 25 style: local delivery without AUTH */
	ROLE_SUBMISSION,	/* SMTP port 587 style: AUTH required before MAIL */
	ROLE_SMTPS,		/* SMTP implicit TLS (RFC 8314), AUTH required */
	ROLE_POP3,		/* POP3 plaintext with optional STLS */
	ROLE_POP3S,		/* POP3 implicit TLS (RFC 8314) */
	ROLE_HTTP		/* webd: HTTPS with the [tls] certificate, else HTTP */
};

struct listen_spec {
	char	host[64];	/* "127.0.0.1", "::1", "0.0.0.0", "::" */
	char	port[8];
	enum listen_role role;
};

struct route {
	char	domain[256];
	char	host[256];
	char	port[8];
};

struct netmask {
	int	family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int	prefix;
};

struct config {
	char	path[PATH_MAX];		/* file read, or "" */
	/* [store] */
	char	store_path[PATH_MAX];	/* where the store is, as store_open() takes it: a file
					 * ([store] path, SQLite; default var/correio.db) or a
					 * URI ([store] url, PostgreSQL); never holds a password */
	bool	store_is_url;		/* store_path is a URI: store_is_url() */
	char	store_spool[PATH_MAX];	/* [store] spool, "" = the default (config_store_spool()) */
	bool	transcripts;		/* keep session transcripts in the store */
	/* [smtpd] */
	char	hostname[256];		/* name in greeting and Received:, default gethostname() */
	struct listen_spec smtp_listen[CONFIG_MAX_LISTEN];
	size_t	smtp_nlisten;
	int	vrfy_code;		/* 252 (default) or 550/502 */
	bool	smtp_plaintext_auth;	/* allow AUTH without TLS on non-loopback */
	char	user[64];		/* [smtpd] user: drop privileges to it when started as root */
	char	pop3_user[64];		/* [pop3d] user (empty: pop3d uses [smtpd] user) */
	/* [pop3d] */
	struct listen_spec pop3_listen[CONFIG_MAX_LISTEN];
	size_t	pop3_nlisten;
	bool	pop3_plaintext_auth;
	/* [webd] */
	struct listen_spec webd_listen[CONFIG_MAX_LISTEN];
	size_t	webd_nlisten;
	char	webd_teachers[1024];	/* "ana, bea": accounts that see every session */
	char	webd_user[64];		/* [webd] user (empty: the [smtpd] one) */
	/* [relay] */
	struct route routes[CONFIG_MAX_ROUTES];
	size_t	nroutes;
	struct route smarthost;		/* host[0] == 0 when unset */
	bool	smarthost_starttls;
	char	smarthost_user[128];
	char	smarthost_password[128];
	struct netmask trusted[CONFIG_MAX_NETS];
	size_t	ntrusted;
	long	retry_schedule[16];	/* seconds between attempts; last repeats */
	size_t	nretry;
	long	max_queue_age;		/* seconds before a message bounces */
	/* [tls] */
	char	tls_cert[PATH_MAX];	/* PEM certificate chain; "" disables TLS */
	char	tls_key[PATH_MAX];
	/* [limits] */
	struct limits limits;
};

/* The default store, and the spool of a store that is a URI (its directory). */
#define CONFIG_STORE_DEFAULT	"var/correio.db"
#define CONFIG_SPOOL_DEFAULT	"var"

/* Fill cfg with every default (no listeners). */
void	config_defaults(struct config *cfg);
/* Read a file over the defaults. Returns 0, or -1 with "file:line: key: reason" in err. */
int	config_load(struct config *cfg, const char *path, char *err, size_t errlen);
/*
 * Parse "ADDR:PORT [role]" ("[::1]:2525 submission") into a listen_spec.
 * default_role is used when no role word is given. Returns 0 or -1 with err.
 */
int	config_parse_listen(const char *spec, enum listen_role default_role,
	    struct listen_spec *ls, char *err, size_t errlen);
enum config_daemon { CONFIG_SMTPD, CONFIG_POP3D, CONFIG_WEBD };

/*
 * The command line the daemons share: -c/--config FILE, --store PATH|URI
 * (config_set_store(): replaces the file's [store] path or url),
 * --listen "ADDR:PORT [ROLE]" (repeatable; replaces the file's listen lines;
 * config_parse_listen admits only the daemon's own roles), -v/--verbose (repeatable), -h/--help.
 * Fills cfg (defaults, then the file, then the overrides) and *verbose_r.
 * Returns 0 to run; 1 after printing usage (usage, or config_daemon_usage()
 * when NULL) on stdout (--help, --version: exit 0); 2 after printing it on
 * stderr (a usage error: exit 2); -1 with a reason in err (bad --listen or
 * --store, the file's errors, no listener at all: fatal).
 */
int	config_daemon_args(struct config *cfg, enum config_daemon which, int argc,
	    char **argv, void (*usage)(FILE *), int *verbose_r, char *err, size_t errlen);
/* The daemon's usage: its shared options (-c, --store, --listen, -v, -h, -V). */
void	config_daemon_usage(FILE *f, enum config_daemon which);
/*
 * Make where (a file or a URI, as [store] path / url or --store give it)
 * the store: cfg->store_path and cfg->store_is_url. A URI with a password
 * (user:password@ or a password= parameter) is refused: the password goes
 * in a libpq passfile. Returns 0, or -1 with a reason in err that never
 * repeats the password.
 */
int	config_set_store(struct config *cfg, const char *where, char *err, size_t errlen);
/*
 * where as a log line or message may show it: a file as it is, a URI with
 * any password removed (user:password@ -> user@, a password= parameter
 * dropped). Fills dst (truncated to len) and returns it.
 */
const char *config_store_display(const char *where, char *dst, size_t len);
/*
 * The message for a store_open() failure with err, into msg: "store PATH:
 * err" for a file, "cannot reach the store's database at URI: err" for a
 * URI (shown by config_store_display()).
 */
void	config_store_open_error(const struct config *cfg, const char *err, char *msg,
	    size_t len);
/*
 * The directory where smtpd spools bodies past 64 KiB while it receives
 * them, and whose free space it checks at MAIL: [store] spool; else the
 * store file's directory; else, for a URI store, CONFIG_SPOOL_DEFAULT.
 * Fills dst (truncated to len).
 */
void	config_store_spool(const struct config *cfg, char *dst, size_t len);
/* "inbound", "submission", ... */
const char *config_role_name(enum listen_role role);
/* True when account is named in [webd] teachers (case-insensitive). */
bool	config_is_teacher(const struct config *cfg, const char *account);
/* True when sa (a struct sockaddr *) lies in one of the trusted networks. */
bool	config_is_trusted(const struct config *cfg, const void *sa);
/* True when sa is a loopback address (127/8, ::1, ::ffff:127.x). */
bool	config_is_loopback(const void *sa);
/* Look up a limit's default/min/max by key for docs and tests; -1 if unknown. */
int	config_limit_info(const char *key, long *def, long *min, long *max, const char **desc);

#endif
