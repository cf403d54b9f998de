/*
 * clientconf.h - where mailcli's network commands find their server, login
 * and TLS settings. Later sources override earlier ones:
 *   built-in defaults (localhost:2525 for SMTP, localhost:1110 for POP3)
 *   < the config file ($MAILCLI_CONFIG, else $XDG_CONFIG_HOME/mailcli/config,
 *     else ~/.config/mailcli/config; ini: top-level keys, [smtp] and [pop3])
 *   < environment (MAILCLI_SERVER, MAILCLI_USER, MAILCLI_TLS)
 *   < command-line flags (--server, --user, --tls, --cafile, --insecure, ...).
 * The password is never taken from argv: MAILCLI_PASSWORD, then ~/.netrc
 * ($NETRC), then a prompt on the terminal with echo off.
 */
#ifndef CORREIO_CLIENTCONF_H
#define CORREIO_CLIENTCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <openssl/ssl.h>

#define CLIENTCONF_SMTP_PORT	"2525"
#define CLIENTCONF_POP3_PORT	"1110"
#define CLIENTCONF_TIMEOUT	60	/* seconds, default bound on each wait */

enum clientconf_proto {
	CLIENTCONF_SMTP,
	CLIENTCONF_POP3
};

enum clientconf_tls {
	CLIENTCONF_TLS_OPPORTUNISTIC = 0,	/* STARTTLS/STLS when offered (default) */
	CLIENTCONF_TLS_REQUIRED,		/* STARTTLS/STLS or fail */
	CLIENTCONF_TLS_OFF,			/* never */
	CLIENTCONF_TLS_IMPLICIT			/* TLS from the first byte (465, 995) */
};

struct clientconf {
	enum clientconf_proto proto;
	char	 host[256];
	char	 port[16];
	bool	 port_explicit;		/* the port was given, not a default */
	char	 user[256];		/* "" = no login (SMTP) */
	enum clientconf_tls tls;
	char	 cafile[1024];		/* "" = system store */
	bool	 insecure;		/* do not verify the server's certificate */
	int	 timeout;		/* seconds */
	bool	 trace;			/* --trace: C:/S: lines on stdout */
	bool	 trace_body;		/* --trace-body: message text too */
	char	 password[256];		/* filled by clientconf_password */
	char	 source[64];		/* where the server setting came from ("default",
					   "MAILCLI_SERVER", "--server", the file), for messages */
};

/* Defaults, then the config file, then the environment. Returns 0, or -1
 * with a reason (a bad config line, a bad MAILCLI_TLS). */
int	clientconf_init(struct clientconf *c, enum clientconf_proto proto,
	    char *err, size_t errlen);
/*
 * Consume argv[*i] if it is a connection option: --server HOST[:PORT],
 * --user NAME, --tls required|opportunistic|off|implicit, --cafile FILE,
 * --insecure, --timeout SECONDS, --trace, --trace-body ("--opt=value" too).
 * Returns 1 (consumed; *i on the last argument used), 0 (not ours) or -1.
 */
int	clientconf_parse_arg(struct clientconf *c, int argc, char **argv, int *i,
	    char *err, size_t errlen);
/* Split "HOST", "HOST:PORT", "[V6]:PORT" or a bare IPv6 address; port is left
 * as defport when absent. Returns 0 or -1. */
int	clientconf_parse_server(const char *s, const char *defport, char *host, size_t hostlen,
	    char *port, size_t portlen);
/* Parse "required" etc. Returns 0 or -1. */
int	clientconf_parse_tls(const char *s, enum clientconf_tls *tls_r);
const char *clientconf_tls_name(enum clientconf_tls tls);
/* Fill c->password (see above). Returns 0, or -1 with a reason. */
int	clientconf_password(struct clientconf *c, char *err, size_t errlen);
/* The OpenSSL client context these settings ask for (common/tls.h). */
SSL_CTX	*clientconf_tls_ctx(const struct clientconf *c, char *err, size_t errlen);
/* Option lines for usage messages. */
void	clientconf_usage(FILE *out, enum clientconf_proto proto);
/* Wipe the password from memory. */
void	clientconf_free(struct clientconf *c);

#endif
