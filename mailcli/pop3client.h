/*
 * pop3client.h - a POP3 client session (RFC 1939; RFC 2449 CAPA and response
 * codes; RFC 2595 STLS; RFC 5034 SASL PLAIN, with USER/PASS as the fallback).
 *
 * Blocking, every wait bounded (clientconn.h). Multi-line responses are
 * streamed line by line to a callback, un-stuffed, so a large message never
 * has to be held whole.
 *
 * Each step returns 0 on +OK, 1 on -ERR (text in p->status, RFC 2449 code
 * in p->resp_code), -1 on failure (reason in p->err): the session is
 * unusable when p->broken is set, else only this command failed (a line
 * callback refused a line; the response was still read to its end).
 * Never traces a password (PASS and AUTH lines are masked).
 */
#ifndef CORREIO_POP3CLIENT_H
#define CORREIO_POP3CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "clientconn.h"

#define POP3CLIENT_LINE_MAX	(1024 * 1024)	/* longest line accepted, in a body too */

struct pop3client_caps {
	bool	 capa;			/* the server answered CAPA */
	bool	 stls;
	bool	 top;
	bool	 uidl;
	bool	 user;
	bool	 pipelining;
	bool	 resp_codes;
	bool	 sasl_plain;
	bool	 sasl_login;
	char	 sasl[128];		/* SASL mechanisms as listed */
	char	 implementation[128];
	char	 expire[32];
	char	 login_delay[32];
};

#define POP3CLIENT_UID_MAX	70	/* RFC 1939 7: a unique-id has 1-70 characters */

/* One entry of LIST/UIDL. */
struct pop3client_msg {
	unsigned long num;
	uint64_t size;
	char	 uid[POP3CLIENT_UID_MAX + 1];	/* "" when unknown */
};

struct pop3client {
	struct clientconn conn;
	struct pop3client_caps caps;
	char	 greeting[512];
	char	 capa_text[2048];	/* the CAPA lines, '\n'-separated, for probe */
	size_t	 capa_lines;
	char	 status[512];		/* text of the last status line */
	char	 resp_code[64];		/* RFC 2449 code of the last -ERR, or "" */
	char	 err[CLIENTCONN_ERR_MAX];
	bool	 trace_body;		/* trace RETR/TOP lines instead of a summary */
	bool	 broken;		/* I/O failed or the server went out of step: only close */
};

/* A body line (un-stuffed, without its CRLF). Return 0, or -1 to fail the
 * command (the rest of the response is still read so the session stays usable). */
typedef int (*pop3client_line_cb)(void *ctx, const char *line, size_t len);

int	pop3client_open(struct pop3client *p, const char *host, const char *port,
	    int timeout_s, FILE *trace);
int	pop3client_open_tls(struct pop3client *p, const char *host, const char *port,
	    int timeout_s, FILE *trace, SSL_CTX *ctx);
/* CAPA: 0 with p->caps filled, 1 when the server has no CAPA (RFC 1939 only). */
int	pop3client_capa(struct pop3client *p);
/* STLS, handshake, then CAPA again (RFC 2595 4). */
int	pop3client_stls(struct pop3client *p, SSL_CTX *ctx);
/* AUTH PLAIN when SASL PLAIN is offered, else USER/PASS. */
int	pop3client_login(struct pop3client *p, const char *user, const char *password);
/* LIST and, when uids is true and UIDL works, UIDL: a malloc'd array in *v_r
 * (free() it), sorted by number. */
int	pop3client_list(struct pop3client *p, bool uids, struct pop3client_msg **v_r, size_t *n_r);
/* TOP num lines: each line to cb. */
int	pop3client_top(struct pop3client *p, unsigned long num, unsigned long lines,
	    pop3client_line_cb cb, void *ctx);
/* RETR num: each line to cb. */
int	pop3client_retr(struct pop3client *p, unsigned long num, pop3client_line_cb cb, void *ctx);
/*
 * Pipelining (RFC 2449 6.6, when p->caps.pipelining): queue commands with
 * pop3client_queue (nothing is sent yet), then collect each response in
 * order with pop3client_response (which sends what is queued first); multi
 * says whether a +OK is followed by a body for cb. Not for secret commands.
 */
int	pop3client_queue(struct pop3client *p, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	pop3client_response(struct pop3client *p, bool multi, pop3client_line_cb cb, void *ctx);
int	pop3client_dele(struct pop3client *p, unsigned long num);
/* QUIT: 0 when the server answered +OK (deletions are then done, RFC 1939 6). */
int	pop3client_quit(struct pop3client *p);
void	pop3client_close(struct pop3client *p);

#endif
