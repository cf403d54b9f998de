/*
 * clientconf.c - server, login and TLS settings for mailcli's network
 * commands, from defaults, the config file (inih), the environment and flags;
 * the password from MAILCLI_PASSWORD, ~/.netrc or a no-echo prompt.
 * See clientconf.h for the order. Must never: take a password from argv,
 * echo a typed password, or print one.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <ini.h>

#include "clientconf.h"
#include "numparse.h"
#include "strfmt.h"
#include "tls.h"

static int
copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

static const char *tls_names[] = {
	[CLIENTCONF_TLS_OPPORTUNISTIC] = "opportunistic",
	[CLIENTCONF_TLS_REQUIRED] = "required",
	[CLIENTCONF_TLS_OFF] = "off",
	[CLIENTCONF_TLS_IMPLICIT] = "implicit",
};

const char *
clientconf_tls_name(enum clientconf_tls tls)
{
	return tls_names[tls];
}

int
clientconf_parse_tls(const char *s, enum clientconf_tls *tls_r)
{
	size_t i;

	for (i = 0; i < sizeof(tls_names) / sizeof(tls_names[0]); i++)
		if (strcasecmp(s, tls_names[i]) == 0) {
			*tls_r = (enum clientconf_tls)i;
			return 0;
		}
	return -1;
}

static bool
valid_port(const char *p)
{
	uint32_t v;

	return numparse_u32z(p, 65535, &v) == NUMPARSE_OK && v > 0;
}

static int parse_server(const char *s, const char *defport, char *host, size_t hostlen,
    char *port, size_t portlen, bool *explicit_r);

int
clientconf_parse_server(const char *s, const char *defport, char *host, size_t hostlen,
    char *port, size_t portlen)
{
	bool explicit;

	return parse_server(s, defport, host, hostlen, port, portlen, &explicit);
}

static int
parse_server(const char *s, const char *defport, char *host, size_t hostlen,
    char *port, size_t portlen, bool *explicit_r)
{
	const char *colon, *close;
	size_t hl;

	if (*s == '[') {
		close = strchr(s, ']');
		if (close == NULL)
			return -1;
		hl = (size_t)(close - s - 1);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] != '\0' && colon == NULL)
			return -1;
		s++;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL;	/* a bare IPv6 address */
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (strpbrk(host, " \t\r\n/") != NULL)
		return -1;
	if (copy(port, portlen, colon ? colon + 1 : defport) == -1 || !valid_port(port))
		return -1;
	*explicit_r = colon != NULL;
	return 0;
}

static const char *
defport(const struct clientconf *c)
{
	if (c->tls == CLIENTCONF_TLS_IMPLICIT)
		return c->proto == CLIENTCONF_SMTP ? "465" : "995";
	return c->proto == CLIENTCONF_SMTP ? CLIENTCONF_SMTP_PORT : CLIENTCONF_POP3_PORT;
}

/* A setting by name, from whichever source; err names the source. */
static int
set(struct clientconf *c, const char *key, const char *val, const char *source,
    char *err, size_t errlen)
{
	uint32_t v;

	if (strcmp(key, "server") == 0) {
		if (parse_server(val, defport(c), c->host, sizeof(c->host),
		    c->port, sizeof(c->port), &c->port_explicit) == -1) {
			strfmt(err, errlen, "%s: bad server '%s' (HOST or HOST:PORT)", source, val);
			return -1;
		}
		snprintf(c->source, sizeof(c->source), "%.63s", source);
	} else if (strcmp(key, "user") == 0) {
		if (copy(c->user, sizeof(c->user), val) == -1 || strpbrk(val, "\r\n") != NULL) {
			strfmt(err, errlen, "%s: bad user name", source);
			return -1;
		}
	} else if (strcmp(key, "tls") == 0) {
		if (clientconf_parse_tls(val, &c->tls) == -1) {
			strfmt(err, errlen, "%s: tls must be required, opportunistic, off or implicit, "
			    "not '%s'", source, val);
			return -1;
		}
		/* implicit moves the default port to 465/995, whatever the order. */
		if (!c->port_explicit)
			snprintf(c->port, sizeof(c->port), "%s", defport(c));
	} else if (strcmp(key, "cafile") == 0) {
		if (copy(c->cafile, sizeof(c->cafile), val) == -1) {
			strfmt(err, errlen, "%s: cafile path too long", source);
			return -1;
		}
	} else if (strcmp(key, "insecure") == 0) {
		c->insecure = strcasecmp(val, "yes") == 0 || strcasecmp(val, "true") == 0 ||
		    strcmp(val, "1") == 0;
	} else if (strcmp(key, "timeout") == 0) {
		if (numparse_u32z(val, 3600, &v) != NUMPARSE_OK || v < 1) {
			strfmt(err, errlen, "%s: timeout must be 1..3600 seconds, not '%s'", source, val);
			return -1;
		}
		c->timeout = (int)v;
	} else {
		strfmt(err, errlen, "%s: unknown setting '%s'", source, key);
		return -1;
	}
	return 0;
}

struct ini_ctx {
	struct clientconf *c;
	const char *path;
	char	*err;
	size_t	 errlen;
	bool	 failed;
	int	 pass;		/* 0: top-level keys, 1: this protocol's section */
};

static int
conf_line(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *x = user;
	const char *mine = x->c->proto == CLIENTCONF_SMTP ? "smtp" : "pop3";
	char source[1200];

	if (x->failed)
		return 0;
	if (section[0] != '\0' && strcasecmp(section, "smtp") != 0 &&
	    strcasecmp(section, "pop3") != 0) {
		strfmt(x->err, x->errlen, "%s: unknown section [%s] (top level, [smtp], [pop3])",
		    x->path, section);
		x->failed = true;
		return 0;
	}
	/* Top-level keys first, then the section, whatever their order in the file. */
	if ((x->pass == 0 && section[0] != '\0') ||
	    (x->pass == 1 && strcasecmp(section, mine) != 0))
		return 1;
	snprintf(source, sizeof(source), "%s [%s]", x->path, section[0] ? section : "top");
	if (set(x->c, name, value, source, x->err, x->errlen) == -1) {
		x->failed = true;
		return 0;
	}
	return 1;
}

static int
load_file(struct clientconf *c, char *err, size_t errlen)
{
	char path[1024];
	const char *p = getenv("MAILCLI_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME"),
	    *home = getenv("HOME");
	struct ini_ctx x = { c, path, err, errlen, false, 0 };
	int r;

	if (p != NULL && *p != '\0')
		snprintf(path, sizeof(path), "%s", p);
	else if (xdg != NULL && *xdg != '\0')
		snprintf(path, sizeof(path), "%s/mailcli/config", xdg);
	else if (home != NULL && *home != '\0')
		snprintf(path, sizeof(path), "%s/.config/mailcli/config", home);
	else
		return 0;
	if (access(path, F_OK) == -1) {
		if (p != NULL && *p != '\0') {
			strfmt(err, errlen, "%s (MAILCLI_CONFIG): %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	for (x.pass = 0; x.pass < 2; x.pass++) {
		r = ini_parse(path, conf_line, &x);
		if (x.failed)
			return -1;
		if (r == -1) {
			strfmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
			return -1;
		}
		if (r > 0) {
			strfmt(err, errlen, "%s:%d: syntax error", path, r);
			return -1;
		}
	}
	return 0;
}

int
clientconf_init(struct clientconf *c, enum clientconf_proto proto, char *err, size_t errlen)
{
	const char *v;

	memset(c, 0, sizeof(*c));
	c->proto = proto;
	c->tls = CLIENTCONF_TLS_OPPORTUNISTIC;
	c->timeout = CLIENTCONF_TIMEOUT;
	snprintf(c->host, sizeof(c->host), "localhost");
	snprintf(c->port, sizeof(c->port), "%s", defport(c));
	snprintf(c->source, sizeof(c->source), "default");
	if (load_file(c, err, errlen) == -1)
		return -1;
	if ((v = getenv("MAILCLI_TLS")) != NULL && *v != '\0' &&
	    set(c, "tls", v, "MAILCLI_TLS", err, errlen) == -1)
		return -1;
	if ((v = getenv("MAILCLI_SERVER")) != NULL && *v != '\0' &&
	    set(c, "server", v, "MAILCLI_SERVER", err, errlen) == -1)
		return -1;
	if ((v = getenv("MAILCLI_USER")) != NULL && *v != '\0' &&
	    set(c, "user", v, "MAILCLI_USER", err, errlen) == -1)
		return -1;
	return 0;
}

int
clientconf_parse_arg(struct clientconf *c, int argc, char **argv, int *i,
    char *err, size_t errlen)
{
	static const struct {
		const char *flag, *key;
		bool	 value;
	} opts[] = {
		{ "--server", "server", true },
		{ "--user", "user", true },
		{ "--tls", "tls", true },
		{ "--cafile", "cafile", true },
		{ "--timeout", "timeout", true },
		{ "--insecure", NULL, false },
		{ "--trace", NULL, false },
		{ "--trace-body", NULL, false },
	};
	const char *a = argv[*i], *val = NULL, *eq;
	size_t k, fl;

	for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		fl = strlen(opts[k].flag);
		if (strncmp(a, opts[k].flag, fl) != 0 || (a[fl] != '\0' && a[fl] != '='))
			continue;
		eq = a[fl] == '=' ? a + fl + 1 : NULL;
		if (!opts[k].value) {
			if (eq != NULL) {
				strfmt(err, errlen, "%s takes no value", opts[k].flag);
				return -1;
			}
			if (strcmp(opts[k].flag, "--insecure") == 0)
				c->insecure = true;
			else if (strcmp(opts[k].flag, "--trace") == 0)
				c->trace = true;
			else
				c->trace = c->trace_body = true;
			return 1;
		}
		if (eq != NULL)
			val = eq;
		else if (*i + 1 < argc)
			val = argv[++*i];
		else {
			strfmt(err, errlen, "%s needs a value", opts[k].flag);
			return -1;
		}
		if (set(c, opts[k].key, val, opts[k].flag, err, errlen) == -1)
			return -1;
		return 1;
	}
	return 0;
}

/*
 * ~/.netrc (ftp(1) format): "machine HOST login USER password PASS", or
 * "default ...". The first entry for our host whose login is ours (or has
 * none) wins; a "default" entry is used when no machine matched.
 */
static int
netrc_lookup(struct clientconf *c, bool *found_r, char *err, size_t errlen)
{
	char path[1024], tok[512], machine[256] = "", login[256] = "", pass[256] = "";
	const char *env = getenv("NETRC"), *home = getenv("HOME");
	char dpass[256] = "";
	bool in_entry = false, is_default = false, have_default = false;
	struct stat st;
	FILE *f;
	int fd;

	*found_r = false;
	if (env != NULL && *env != '\0')
		snprintf(path, sizeof(path), "%s", env);
	else if (home != NULL && *home != '\0')
		snprintf(path, sizeof(path), "%s/.netrc", home);
	else
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		fprintf(stderr, "mailcli: warning: %s is readable by others; chmod 600 it\n", path);
	f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return 0;
	}

#define NETRC_ENTRY_DONE() do {							\
	if (in_entry && pass[0] != '\0' && (login[0] == '\0' || c->user[0] == '\0' ||	\
	    strcmp(login, c->user) == 0)) {					\
		if (!is_default && strcasecmp(machine, c->host) == 0 && !*found_r) {	\
			snprintf(c->password, sizeof(c->password), "%s", pass);	\
			if (c->user[0] == '\0' && login[0] != '\0')		\
				snprintf(c->user, sizeof(c->user), "%s", login);	\
			*found_r = true;					\
		} else if (is_default && !have_default) {			\
			snprintf(dpass, sizeof(dpass), "%s", pass);		\
			have_default = true;					\
		}								\
	}									\
	machine[0] = login[0] = pass[0] = '\0';					\
} while (0)

	while (fscanf(f, "%511s", tok) == 1) {
		if (strcmp(tok, "machine") == 0 || strcmp(tok, "default") == 0) {
			NETRC_ENTRY_DONE();
			in_entry = true;
			is_default = tok[0] == 'd';
			if (!is_default && fscanf(f, "%255s", machine) != 1)
				break;
		} else if (strcmp(tok, "login") == 0) {
			if (fscanf(f, "%255s", login) != 1)
				break;
		} else if (strcmp(tok, "password") == 0) {
			if (fscanf(f, "%255s", pass) != 1)
				break;
		} else if (strcmp(tok, "account") == 0) {
			if (fscanf(f, "%511s", tok) != 1)
				break;
		} else if (strcmp(tok, "macdef") == 0) {
			/* A macro runs to the next empty line. */
			int ch, prev = 0;
			NETRC_ENTRY_DONE();
			in_entry = false;
			while ((ch = fgetc(f)) != EOF && !(ch == '\n' && prev == '\n'))
				prev = ch;
		}
	}
	NETRC_ENTRY_DONE();
#undef NETRC_ENTRY_DONE
	fclose(f);
	if (!*found_r && have_default) {
		snprintf(c->password, sizeof(c->password), "%s", dpass);
		*found_r = true;
	}
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(dpass, sizeof(dpass));
	explicit_bzero(tok, sizeof(tok));
	(void)err;
	(void)errlen;
	return 0;
}

/* Read a line from the terminal with echo off. */
static int
prompt(struct clientconf *c, char *err, size_t errlen)
{
	struct termios old, quiet;
	FILE *tty;
	size_t n;
	bool restore = false;

	tty = fopen("/dev/tty", "r+e");
	if (tty == NULL) {
		strfmt(err, errlen, "no password for %s@%s: set MAILCLI_PASSWORD, add a ~/.netrc "
		    "entry, or run mailcli on a terminal", c->user, c->host);
		return -1;
	}
	/* unbuffered: no copy of the password is left in a stdio buffer */
	setvbuf(tty, NULL, _IONBF, 0);
	/* Echo goes off before the prompt appears, so nothing typed after
	 * seeing it is echoed or thrown away. */
	if (tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
	}
	fprintf(tty, "Password for %s@%s: ", c->user, c->host);
	fflush(tty);
	if (fgets(c->password, sizeof(c->password), tty) == NULL)
		c->password[0] = '\0';
	if (restore)
		tcsetattr(fileno(tty), TCSANOW, &old);
	fprintf(tty, "\n");
	fclose(tty);
	n = strcspn(c->password, "\r\n");
	c->password[n] = '\0';
	if (n == 0) {
		strfmt(err, errlen, "no password given");
		return -1;
	}
	return 0;
}

int
clientconf_password(struct clientconf *c, char *err, size_t errlen)
{
	const char *v = getenv("MAILCLI_PASSWORD");
	bool found;

	if (v != NULL && *v != '\0') {
		if (copy(c->password, sizeof(c->password), v) == -1) {
			strfmt(err, errlen, "MAILCLI_PASSWORD is too long");
			return -1;
		}
		return 0;
	}
	if (netrc_lookup(c, &found, err, errlen) == -1)
		return -1;
	if (found)
		return 0;
	return prompt(c, err, errlen);
}

SSL_CTX *
clientconf_tls_ctx(const struct clientconf *c, char *err, size_t errlen)
{
	char e[256];
	SSL_CTX *ctx;

	ctx = tls_client_ctx(c->cafile[0] ? c->cafile : NULL, c->insecure, e, sizeof(e));
	if (ctx == NULL)
		strfmt(err, errlen, "TLS set-up failed%s%s: %s", c->cafile[0] ? " with --cafile " : "",
		    c->cafile, e);
	return ctx;
}

void
clientconf_usage(FILE *out, enum clientconf_proto proto)
{
	fprintf(out,
	    "connection options:\n"
	    "  --server HOST[:PORT]   %s server (default localhost:%s; MAILCLI_SERVER)\n"
	    "  --user NAME            log in as NAME (MAILCLI_USER); the password comes from\n"
	    "                         MAILCLI_PASSWORD, ~/.netrc, or a prompt\n"
	    "  --tls MODE             opportunistic (default), required, off, implicit (MAILCLI_TLS)\n"
	    "  --cafile FILE          trust the CA certificates in FILE\n"
	    "  --insecure             do not verify the server's certificate\n"
	    "  --timeout SECONDS      bound on each wait for the server (default %d)\n"
	    "  --trace                print the session: C: client lines, S: server lines\n"
	    "  --trace-body           also print message text in the trace\n"
	    "settings may also be given in ~/.config/mailcli/config (see mailcli(1))\n",
	    proto == CLIENTCONF_SMTP ? "SMTP" : "POP3",
	    proto == CLIENTCONF_SMTP ? CLIENTCONF_SMTP_PORT : CLIENTCONF_POP3_PORT,
	    CLIENTCONF_TIMEOUT);
}

void
clientconf_free(struct clientconf *c)
{
	explicit_bzero(c->password, sizeof(c->password));
}
