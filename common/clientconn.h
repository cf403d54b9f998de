/*
 * clientconn.h - one blocking client connection (plain TCP, or TLS after
 * STARTTLS/STLS or from the start) with bounded line reads, an output buffer
 * that is flushed in one write (so pipelined commands leave together), a time
 * limit on every wait, and the textbook trace "C: ..." / "S: ..." with
 * secrets masked (common/transcript.h).
 * Used by smtpclient.c and pop3client.c; knows nothing of either protocol.
 * Never prints a password: lines queued as secret are masked in the trace.
 */
#ifndef CORREIO_CLIENTCONN_H
#define CORREIO_CLIENTCONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "linebuf.h"

#define CLIENTCONN_OUT_MAX	(1024 * 1024)	/* bytes queued before a flush is forced */
#define CLIENTCONN_ERR_MAX	512

struct clientconn {
	int	 fd;			/* -1 when closed */
	SSL	*ssl;			/* non-NULL once TLS is up */
	char	 host[256];		/* as given: used for SNI and certificate name checks */
	char	 peer[128];		/* numeric address and port connected to */
	int	 timeout_ms;		/* bound on each wait for the peer */
	struct linebuf in;
	struct buf out;			/* queued bytes not yet written */
	FILE	*trace;			/* NULL: no trace */
	bool	 trace_server;		/* record S: lines (off while reading bodies) */
	char	 err[CLIENTCONN_ERR_MAX];	/* the last failure, for the user */
};

/*
 * Connect to host:port (a name or a literal; every address getaddrinfo gives
 * is tried in turn), each attempt bounded by timeout_s. max_line bounds a
 * received line. Returns 0, or -1 with the reason in c->err. SIGPIPE is set
 * to be ignored for the process (a peer that goes away must give an error).
 */
int	clientconn_open(struct clientconn *c, const char *host, const char *port,
	    int timeout_s, size_t max_line, FILE *trace);
/* Close (sending a TLS close_notify when TLS is up) and free everything. */
void	clientconn_close(struct clientconn *c);

/*
 * Start TLS on the connection with ctx (common/tls.h tls_client_ctx): SNI and
 * the certificate's name are checked against c->host unless the context does
 * not verify. Anything buffered from before the handshake is discarded
 * (RFC 3207 4.2). Returns 0, or -1 with the reason in c->err.
 */
int	clientconn_starttls(struct clientconn *c, SSL_CTX *ctx);
bool	clientconn_is_tls(const struct clientconn *c);
/* Print the peer certificate (subject, issuer, validity, SANs), the protocol,
 * the cipher and the verification result, each line prefixed by indent. */
void	clientconn_print_tls(const struct clientconn *c, FILE *out, const char *indent);

/*
 * Queue one command line (CRLF added) and trace it as "C: line"; when secret,
 * the trace shows transcript_mask()'s form. Nothing is sent until
 * clientconn_flush (or until the queue is full). Returns 0 or -1.
 */
int	clientconn_cmd(struct clientconn *c, bool secret, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* clientconn_cmd with a va_list, for the protocol clients' own wrappers. */
int	clientconn_vcmd(struct clientconn *c, bool secret, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));
/*
 * The SASL PLAIN response (RFC 4616 2: empty authzid NUL user NUL password)
 * in base64 for AUTH PLAIN (SMTP, RFC 4954) and POP3 (RFC 5034). user and
 * password are at most CLIENTCONN_SASL_MAX octets each; enc must hold
 * CLIENTCONN_SASL_ENC bytes. Returns 0, or -1 when one is too long. The
 * caller wipes enc (explicit_bzero) once it is sent.
 */
#define CLIENTCONN_SASL_MAX	255
#define CLIENTCONN_SASL_ENC	((2 * CLIENTCONN_SASL_MAX + 2 + 2) / 3 * 4 + 1)
int	clientconn_sasl_plain(const char *user, const char *password, char *enc, size_t enclen);
/* Queue raw bytes (message text), not traced. Returns 0 or -1. */
int	clientconn_write(struct clientconn *c, const void *p, size_t n);
/* Write everything queued. Returns 0 or -1. */
int	clientconn_flush(struct clientconn *c);
/*
 * Read one line (without its CRLF or LF; NUL-terminated; valid until the next
 * read) and trace it as "S: line" when trace_server is set. Returns 0, or -1
 * on timeout, end of connection, a line longer than the limit, or an error.
 */
int	clientconn_readline(struct clientconn *c, char **line_r, size_t *len_r);
/*
 * Make a server's text harmless to print on a terminal, in place: C0
 * controls (but LF between the lines of a multi-line reply), DEL and the
 * UTF-8 form of C1 controls become '?'. Every reply text and status the
 * protocol clients keep has been through it.
 */
void	clientconn_defang(char *s);
/* Write prefix + line to f, control characters as \xNN, cut at 1024. */
void	clientconn_trace_line(FILE *f, const char *prefix, const char *line, size_t len);
/* Write a note into the trace ("   [TLS started: TLSv1.3 ...]"). */
void	clientconn_note(struct clientconn *c, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
