/*
 * compose.h - building an RFC 5322 / MIME message from command-line options,
 * shared by `mailcli compose` (compose.c) and `mailcli send` (send.c).
 *
 * Life cycle:
 *   compose_init(&o);
 *   for each argv[i]: r = compose_parse_arg(&o, argc, argv, &i, err, sizeof err);
 *       r == 1: consumed (i now points at the last argument used), r == 0: not a
 *       compose option (the caller handles it), r == -1: error in err;
 *   compose_prepare(&o, err, ...)   validates everything (CR/LF, addresses,
 *       files exist and are readable, header names), reads the body (file,
 *       --text or stdin), fixes Date, Message-ID and boundaries, and fills the
 *       envelope. Nothing is written before it returns 0;
 *   compose_size(&o, &n)            exact size in octets of what compose_write
 *       will produce (for SMTP SIZE=), computed without reading attachments;
 *   compose_write(&o, sink, ctx, ...) streams the message, CRLF line endings,
 *       lines <= 998 octets, attachments read in chunks (constant memory);
 *   compose_free(&o).
 *
 * RFC 5322 3.3 (Date), 3.6.4 (Message-ID), 2.2.3 (folding); RFC 2045-2047,
 * RFC 2183 (Content-Disposition), RFC 2231 (parameter continuations).
 * Never writes a header value that contains CR or LF taken from the user.
 */
#ifndef CORREIO_COMPOSE_H
#define CORREIO_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "buf.h"

#define COMPOSE_MAX_BODY	(64u * 1024 * 1024)	/* --body / --text / stdin / --html text */
#define COMPOSE_MAX_ADDRS	1000			/* addresses over --to/--cc/--bcc */
#define COMPOSE_MAX_ATTACH	1000
#define COMPOSE_MAX_HEADERS	100

/* One mailbox: optional display name (UTF-8) and an addr-spec. */
struct compose_addr {
	char	*display;		/* UTF-8, NULL when none */
	char	*addr;			/* "local@domain" */
};

struct compose_addrlist {
	struct compose_addr *v;
	size_t	 n;
};

/* One --attach FILE[;type=T][;name=N]. */
struct compose_attach {
	char	*path;
	char	*type;			/* from ;type= or libmagic (at prepare) */
	char	*name;			/* from ;name= or the file's base name (UTF-8) */
	uint64_t size;			/* from fstat at prepare */
};

struct compose_opts {
	/* from the command line */
	struct compose_addr from;	/* --from (required) */
	struct compose_addrlist to, cc, bcc, reply_to;
	char	*subject;		/* --subject, UTF-8, NULL when none */
	char	**headers;		/* --header "Name: value", verbatim */
	size_t	 nheaders;
	char	*body_path;		/* --body FILE ("-" = stdin) */
	char	*text;			/* --text STRING */
	char	*html_path;		/* --html FILE */
	struct compose_attach *attach;
	size_t	 nattach;
	bool	 deterministic;		/* --deterministic, or SOURCE_DATE_EPOCH set */
	bool	 dry_run;		/* --dry-run */

	/* filled by compose_prepare */
	struct buf body;		/* text body as given (UTF-8) */
	struct buf html;		/* html body as given */
	time_t	 date;
	char	 message_id[320];	/* "<...@domain>" */
	char	 boundary_mixed[72];
	char	 boundary_alt[72];
	/* the SMTP envelope: MAIL FROM and every RCPT TO (to, cc, bcc; duplicates removed) */
	const char *env_from;		/* points into from.addr */
	const char **env_rcpt;		/* each points into an addr of to/cc/bcc */
	size_t	 env_nrcpt;
};

/* A byte sink: returns 0, or -1 to stop writing (compose_write then fails). */
typedef int (*compose_sink)(void *ctx, const void *p, size_t n);

void	compose_init(struct compose_opts *o);
/*
 * Consume the option at argv[*i] if it is one of compose's (--from, --to,
 * --cc, --bcc, --reply-to, --subject, --header, --body, --text, --html,
 * --attach, --deterministic, --dry-run; both "--opt value" and "--opt=value").
 * Returns 1 and leaves *i on the last argument consumed; 0 when argv[*i] is
 * not a compose option; -1 with a message in err (missing value, CR/LF in a
 * value other than --text, which is the body; bad address syntax).
 */
int	compose_parse_arg(struct compose_opts *o, int argc, char **argv, int *i,
	    char *err, size_t errlen);
/* Validate and load everything (see above). Returns 0 or -1 with err. */
int	compose_prepare(struct compose_opts *o, char *err, size_t errlen);
/* The exit status for a compose_prepare failure: 2 (usage) when --from or
 * every recipient is missing, 1 otherwise (a file that cannot be read...). */
int	compose_prepare_status(const struct compose_opts *o);
/* Exact size of the message compose_write produces. Returns 0 or -1. */
int	compose_size(const struct compose_opts *o, uint64_t *size_r);
/* Stream the message into sink. Returns 0, or -1 with err (I/O or sink). */
int	compose_write(const struct compose_opts *o, compose_sink sink, void *ctx,
	    char *err, size_t errlen);
/* compose_write into a stdio stream (fwrite). */
int	compose_write_file(const struct compose_opts *o, FILE *out, char *err, size_t errlen);
/* The --dry-run report: envelope (MAIL FROM, each RCPT TO) beside header From/To/Cc. */
void	compose_print_envelope(FILE *out, const struct compose_opts *o);
/* The option lines for a usage message (shared by compose --help and send --help). */
void	compose_usage_options(FILE *out);
void	compose_free(struct compose_opts *o);

#endif
