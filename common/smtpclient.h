/*
 * smtpclient.h - an SMTP client session (RFC 5321 3, 4.1; EHLO extensions:
 * RFC 3207 STARTTLS, RFC 4954 AUTH with PLAIN (RFC 4616) and LOGIN, RFC 1870
 * SIZE, RFC 2920 PIPELINING, RFC 6152 8BITMIME, RFC 2034 enhanced codes).
 *
 * Blocking, one connection, every wait bounded (clientconn.h). It knows
 * nothing of mailcli's options, so the same code serves `mailcli send` and
 * can serve smtpd's outbound relay (smtpd/relay_session.c) from a delivery worker:
 *
 *   smtpclient_open()  -> greeting          smtpclient_ehlo()   -> capabilities
 *   smtpclient_starttls() (re-EHLO inside)  smtpclient_auth()
 *   smtpclient_envelope()  MAIL + every RCPT, pipelined when offered;
 *                          one result per recipient
 *   smtpclient_data_begin() / _data_write() / _data_end()   dot-stuffed stream
 *   smtpclient_quit(); smtpclient_close()
 *
 * Each step returns 0 on a positive reply, 1 when the server said no (the
 * reply is in s->reply), and -1 when the session is unusable (I/O, timeout,
 * malformed reply; reason in s->err). Never sends a line with CR or LF in it,
 * never traces a secret.
 */
#ifndef CORREIO_SMTPCLIENT_H
#define CORREIO_SMTPCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <openssl/ssl.h>

#include "clientconn.h"
#include "reply.h"

struct evbuffer;

#define SMTPCLIENT_LINE_MAX	4096	/* longest reply line accepted */

/* What EHLO advertised (all false after a HELO fallback). */
struct smtpclient_caps {
	bool	 esmtp;			/* EHLO was accepted */
	bool	 starttls;
	bool	 pipelining;
	bool	 size;
	uint64_t size_max;		/* SIZE n; 0 = no limit announced */
	bool	 eightbitmime;
	bool	 smtputf8;
	bool	 enhancedstatuscodes;
	bool	 auth_plain;
	bool	 auth_login;
	char	 auth[256];		/* the AUTH line's mechanisms as sent */
};

/* A server reply kept for the caller: code, enhanced code, text lines
 * joined by '\n' (truncated to REPLY_TEXT_MAX). Same shape as the server's. */
struct smtpclient_rcpt {
	const char *addr;		/* caller's string */
	struct reply reply;		/* the reply to RCPT TO */
	bool	 accepted;		/* 2xx */
};

struct smtpclient {
	struct clientconn conn;
	struct smtpclient_caps caps;
	struct reply reply;		/* the last complete reply */
	struct reply greeting;		/* the 220 banner */
	struct reply ehlo;		/* the last EHLO/HELO reply */
	char	 err[CLIENTCONN_ERR_MAX];
	bool	 trace_body;		/* trace message lines instead of a summary */
	/* DATA stream state */
	struct dotstuff ds;
	uint64_t data_octets;
	uint64_t data_lines;
	bool	 data_last_cr;
	bool	 in_data;
	struct evbuffer *dotbuf;	/* dot-stuffed bytes on their way to conn */
	char	 body_line[1024];	/* --trace-body: the line being traced */
	size_t	 body_linelen;
};

/* Connect and read the greeting. 0 on 220, 1 on another code (e.g. 554),
 * -1 on failure. s is initialised here; call smtpclient_close in every case. */
int	smtpclient_open(struct smtpclient *s, const char *host, const char *port,
	    int timeout_s, FILE *trace);
/* smtpclient_open() in two steps, for a caller that must see the socket
 * (s->conn.fd) or set its own timeouts before the server speaks: connect
 * (0 or -1; call smtpclient_close in every case), then read the greeting
 * (0 on 220, 1 on another code, -1). */
int	smtpclient_connect(struct smtpclient *s, const char *host, const char *port,
	    int timeout_s, FILE *trace);
int	smtpclient_greeting(struct smtpclient *s);
/* Start TLS at once (port 465, RFC 8314) and read the greeting through it. */
int	smtpclient_open_tls(struct smtpclient *s, const char *host, const char *port,
	    int timeout_s, FILE *trace, SSL_CTX *ctx);
/* EHLO name; on a 5xx reply falls back to HELO (caps then all false). */
int	smtpclient_ehlo(struct smtpclient *s, const char *helo_name);
/* STARTTLS, handshake with ctx (name checked against the host), then EHLO
 * again (RFC 3207 4.2: everything learnt before is forgotten). */
int	smtpclient_starttls(struct smtpclient *s, SSL_CTX *ctx, const char *helo_name);
/* AUTH PLAIN when offered, else LOGIN. 1 with the reply on refusal, -1 when
 * no mechanism we know is offered (err says so). */
int	smtpclient_auth(struct smtpclient *s, const char *user, const char *password);
/*
 * MAIL FROM:<from> (SIZE= when the server has SIZE and size > 0, BODY=8BITMIME
 * when eightbit and offered, SMTPUTF8 when an address is not ASCII: -1 when
 * the server lacks it) and RCPT TO:<..> for each of rcpt[0..n-1],
 * written in one go when PIPELINING was offered, else one by one. Every
 * recipient's reply is stored in rcpt[i]. Returns 0 when MAIL and at least
 * one RCPT were accepted, 1 when MAIL was refused (s->reply) or every
 * recipient was, -1 on failure. After 1 the caller should RSET or QUIT.
 */
int	smtpclient_envelope(struct smtpclient *s, const char *from, uint64_t size,
	    bool eightbit, struct smtpclient_rcpt *rcpt, size_t n);
/* DATA: 0 on 354, 1 on refusal. */
int	smtpclient_data_begin(struct smtpclient *s);
/* Message bytes (any chunking; LF or CRLF line ends; CRLF sent). Signature
 * of compose.h's compose_sink: ctx is the struct smtpclient. 0 or -1. */
int	smtpclient_data_write(void *ctx, const void *p, size_t n);
/* End the message (CRLF . CRLF) and read the verdict: 0 on 250, 1 on refusal. */
int	smtpclient_data_end(struct smtpclient *s);
int	smtpclient_rset(struct smtpclient *s);
/* QUIT and read the 221 (errors ignored: the message is already accepted). */
void	smtpclient_quit(struct smtpclient *s);
void	smtpclient_close(struct smtpclient *s);
/* "550 5.1.1 text" of a reply, first line only, into dst. */
void	smtpclient_reply_str(const struct reply *r, char *dst, size_t len);

#endif
