/*
 * clientconn.c - a blocking client connection with bounded waits, plain or
 * TLS (RFC 3207 STARTTLS, RFC 2595 STLS, or implicit TLS), and the C:/S:
 * trace. See clientconn.h for the contract.
 * Must never: block without a time limit, trace a secret, or keep bytes
 * received before a TLS handshake (they could have been injected).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "b64.h"
#include "clientconn.h"
#include "tls.h"
#include "transcript.h"

#define CLIENTCONN_TRACE_MAX	1024	/* characters of one traced line */

static void
conn_err(struct clientconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
conn_err(struct clientconn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* Non-blocking connect bounded by timeout_ms; the socket is left blocking. */
static int
connect_one(struct clientconn *c, const struct addrinfo *ai)
{
	struct pollfd pfd;
	struct timeval tv;
	socklen_t sl;
	int fd, flags, soerr = 0, r;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1)
		return -1;
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		goto fail;
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (r == -1 && errno != EINPROGRESS)
		goto fail;
	if (r == -1) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			r = poll(&pfd, 1, c->timeout_ms);
		while (r == -1 && errno == EINTR);
		if (r == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (r == -1)
			goto fail;
		sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
			goto fail;
		if (soerr != 0) {
			errno = soerr;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, flags) == -1)
		goto fail;
	/* Backstop for waits inside OpenSSL, which polls nothing itself. */
	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (c->timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		goto fail;
	return fd;
fail:
	soerr = errno;
	close(fd);
	errno = soerr;
	return -1;
}

int
clientconn_open(struct clientconn *c, const char *host, const char *port,
    int timeout_s, size_t max_line, FILE *trace)
{
	struct addrinfo hints, *res = NULL, *ai;
	char addr[INET6_ADDRSTRLEN];
	int r, lasterr = 0;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->trace = trace;
	c->trace_server = true;
	c->timeout_ms = (timeout_s > 0 ? timeout_s : 60) * 1000;
	buf_init(&c->out, CLIENTCONN_OUT_MAX + 4096);
	if ((size_t)snprintf(c->host, sizeof(c->host), "%s", host) >= sizeof(c->host)) {
		conn_err(c, "host name too long");
		return -1;
	}
	if (linebuf_init(&c->in, max_line) == -1) {
		conn_err(c, "out of memory");
		return -1;
	}
	/* A peer that closes while we write must give an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	r = getaddrinfo(host, port, &hints, &res);
	if (r == EAI_ADDRFAMILY || r == EAI_NONAME) {
		hints.ai_flags = 0;	/* loopback-only hosts have no "configured" family */
		r = getaddrinfo(host, port, &hints, &res);
	}
	if (r != 0) {
		conn_err(c, "cannot resolve %s port %s: %s", host, port, gai_strerror(r));
		linebuf_free(&c->in);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		c->fd = connect_one(c, ai);
		if (c->fd != -1) {
			const void *a = ai->ai_family == AF_INET6 ?
			    (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr :
			    (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
			if (inet_ntop(ai->ai_family, a, addr, sizeof(addr)) == NULL)
				snprintf(addr, sizeof(addr), "?");
			snprintf(c->peer, sizeof(c->peer), ai->ai_family == AF_INET6 ?
			    "[%s]:%s" : "%s:%s", addr, port);
			break;
		}
		lasterr = errno;
	}
	freeaddrinfo(res);
	if (c->fd == -1) {
		conn_err(c, "cannot connect to %s port %s: %s", host, port,
		    lasterr == ETIMEDOUT ? "timed out" : strerror(lasterr));
		linebuf_free(&c->in);
		return -1;
	}
	clientconn_note(c, "connected to %s", c->peer);
	return 0;
}

void
clientconn_close(struct clientconn *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);	/* best effort: do not wait for the peer's */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	linebuf_free(&c->in);
	buf_free(&c->out);
}

bool
clientconn_is_tls(const struct clientconn *c)
{
	return c->ssl != NULL;
}

static void
ssl_err(struct clientconn *c, const char *what)
{
	char e[256];

	tls_error(e, sizeof(e));
	conn_err(c, "%s: %s", what, e[0] ? e : "connection closed");
}

int
clientconn_starttls(struct clientconn *c, SSL_CTX *ctx)
{
	unsigned char ip[sizeof(struct in6_addr)];
	X509_VERIFY_PARAM *vp;
	long vr;
	bool literal;

	/* RFC 3207 4.2 / RFC 2595 4: nothing the server sent before the
	 * handshake may be used after it. */
	if (linebuf_pending(&c->in) > 0) {
		conn_err(c, "the server sent data before the TLS handshake (possible injection)");
		return -1;
	}
	linebuf_clear(&c->in);
	ERR_clear_error();
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL) {
		ssl_err(c, "TLS");
		return -1;
	}
	literal = inet_pton(AF_INET, c->host, ip) == 1 || inet_pton(AF_INET6, c->host, ip) == 1;
	vp = SSL_get0_param(c->ssl);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* The name is checked even when the context does not verify, so that
	 * probe can report the result; only a verifying context fails on it. */
	if (literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->host) != 1 :
	    SSL_set1_host(c->ssl, c->host) != 1) {
		ssl_err(c, "TLS");
		goto fail;
	}
	if (!literal)
		SSL_set_tlsext_host_name(c->ssl, c->host);
	if (SSL_set_fd(c->ssl, c->fd) != 1) {
		ssl_err(c, "TLS");
		goto fail;
	}
	if (SSL_connect(c->ssl) != 1) {
		vr = SSL_get_verify_result(c->ssl);
		if (vr != X509_V_OK)
			conn_err(c, "TLS handshake with %s failed: certificate not trusted: %s "
			    "(use --cafile FILE to trust its CA, or --insecure)",
			    c->host, X509_verify_cert_error_string(vr));
		else
			ssl_err(c, "TLS handshake failed");
		goto fail;
	}
	clientconn_note(c, "TLS started: %s, %s", SSL_get_version(c->ssl),
	    SSL_get_cipher_name(c->ssl));
	return 0;
fail:
	SSL_free(c->ssl);
	c->ssl = NULL;
	return -1;
}

static void
print_name(FILE *out, const char *indent, const char *label, X509_NAME *n)
{
	BIO *b = BIO_new_fp(out, BIO_NOCLOSE);

	if (b == NULL)
		return;
	fprintf(out, "%s%s", indent, label);
	X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
	BIO_flush(b);
	BIO_free(b);
	fprintf(out, "\n");
}

static void
print_time(FILE *out, const char *indent, const char *label, const ASN1_TIME *t)
{
	BIO *b = BIO_new_fp(out, BIO_NOCLOSE);

	if (b == NULL)
		return;
	fprintf(out, "%s%s", indent, label);
	ASN1_TIME_print(b, t);
	BIO_flush(b);
	BIO_free(b);
	fprintf(out, "\n");
}

void
clientconn_print_tls(const struct clientconn *c, FILE *out, const char *indent)
{
	X509 *cert;
	GENERAL_NAMES *sans;
	unsigned char fp[EVP_MAX_MD_SIZE];
	unsigned int fplen = 0, i;
	long vr;
	int n, k;

	if (c->ssl == NULL)
		return;
	fprintf(out, "%sprotocol:   %s, cipher %s\n", indent, SSL_get_version(c->ssl),
	    SSL_get_cipher_name(c->ssl));
	cert = SSL_get1_peer_certificate(c->ssl);
	if (cert == NULL) {
		fprintf(out, "%scertificate: none\n", indent);
		return;
	}
	print_name(out, indent, "subject:    ", X509_get_subject_name(cert));
	print_name(out, indent, "issuer:     ", X509_get_issuer_name(cert));
	print_time(out, indent, "not before: ", X509_get0_notBefore(cert));
	print_time(out, indent, "not after:  ", X509_get0_notAfter(cert));
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (sans != NULL) {
		fprintf(out, "%snames:     ", indent);
		n = sk_GENERAL_NAME_num(sans);
		for (k = 0; k < n; k++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, k);
			if (g->type == GEN_DNS)
				fprintf(out, " DNS:%.*s", ASN1_STRING_length(g->d.dNSName),
				    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
			else if (g->type == GEN_IPADD) {
				char a[INET6_ADDRSTRLEN];
				int len = ASN1_STRING_length(g->d.iPAddress);
				if (inet_ntop(len == 16 ? AF_INET6 : AF_INET,
				    ASN1_STRING_get0_data(g->d.iPAddress), a, sizeof(a)) != NULL)
					fprintf(out, " IP:%s", a);
			}
		}
		fprintf(out, "\n");
		GENERAL_NAMES_free(sans);
	}
	if (X509_digest(cert, EVP_sha256(), fp, &fplen) == 1) {
		fprintf(out, "%ssha256:     ", indent);
		for (i = 0; i < fplen; i++)
			fprintf(out, "%02X%s", fp[i], i + 1 < fplen ? ":" : "\n");
	}
	vr = SSL_get_verify_result(c->ssl);
	fprintf(out, "%sverified:   %s\n", indent, vr == X509_V_OK ? "yes" :
	    X509_verify_cert_error_string(vr));
	X509_free(cert);
}

void
clientconn_trace_line(FILE *f, const char *prefix, const char *line, size_t len)
{
	size_t i, n = len > CLIENTCONN_TRACE_MAX ? CLIENTCONN_TRACE_MAX : len;
	unsigned char ch;

	fputs(prefix, f);
	/* What the peer sent never reaches the terminal as control characters. */
	for (i = 0; i < n; i++) {
		ch = (unsigned char)line[i];
		if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02X", ch);
		else if (ch == 0xc2 && i + 1 < n && (unsigned char)line[i + 1] >= 0x80 &&
		    (unsigned char)line[i + 1] <= 0x9f) {
			fprintf(f, "\\xC2\\x%02X", (unsigned char)line[++i]);	/* a C1 control */
		} else
			fputc(ch, f);
	}
	if (n < len)
		fputs("...", f);
	fputc('\n', f);
	fflush(f);
}

void
clientconn_note(struct clientconn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->trace == NULL)
		return;
	fprintf(c->trace, "   [");
	va_start(ap, fmt);
	vfprintf(c->trace, fmt, ap);
	va_end(ap);
	fprintf(c->trace, "]\n");
	fflush(c->trace);
}

int
clientconn_vcmd(struct clientconn *c, bool secret, const char *fmt, va_list ap)
{
	char line[CLIENTCONN_TRACE_MAX * 4], masked[CLIENTCONN_TRACE_MAX];
	int n, r = -1;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		conn_err(c, "command line too long");
		goto out;
	}
	if (memchr(line, '\r', (size_t)n) != NULL || memchr(line, '\n', (size_t)n) != NULL) {
		conn_err(c, "refusing to send a command containing CR or LF");
		goto out;
	}
	if (c->trace != NULL) {
		transcript_mask(line, (size_t)n, secret, masked, sizeof(masked));
		fprintf(c->trace, "C: %s\n", masked);
		fflush(c->trace);
	}
	line[n++] = '\r';
	line[n++] = '\n';
	r = clientconn_write(c, line, (size_t)n);
out:
	if (secret)
		explicit_bzero(line, sizeof(line));
	return r;
}

int
clientconn_cmd(struct clientconn *c, bool secret, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = clientconn_vcmd(c, secret, fmt, ap);
	va_end(ap);
	return r;
}

void
clientconn_defang(char *s)
{
	unsigned char *u = (unsigned char *)s;

	for (; *u != '\0'; u++)
		if ((*u < 0x20 && *u != '\n') || *u == 0x7f)
			*u = '?';
		else if (*u == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f) {
			u[0] = '?';
			u[1] = '?';
			u++;
		}
}

int
clientconn_sasl_plain(const char *user, const char *password, char *enc, size_t enclen)
{
	char raw[2 * CLIENTCONN_SASL_MAX + 2];
	size_t ul = strlen(user), pl = strlen(password);

	if (ul > CLIENTCONN_SASL_MAX || pl > CLIENTCONN_SASL_MAX ||
	    enclen < b64_encoded_len(ul + pl + 2) + 1)
		return -1;
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, password, pl);
	b64_encode(raw, ul + pl + 2, enc);
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

int
clientconn_write(struct clientconn *c, const void *p, size_t n)
{
	if (c->out.len + n > CLIENTCONN_OUT_MAX && clientconn_flush(c) == -1)
		return -1;
	while (n > CLIENTCONN_OUT_MAX) {	/* huge single writes go straight out */
		if (buf_append(&c->out, p, CLIENTCONN_OUT_MAX) == -1 || clientconn_flush(c) == -1)
			return -1;
		p = (const char *)p + CLIENTCONN_OUT_MAX;
		n -= CLIENTCONN_OUT_MAX;
	}
	if (buf_append(&c->out, p, n) == -1) {
		conn_err(c, "out of memory");
		return -1;
	}
	return 0;
}

int
clientconn_flush(struct clientconn *c)
{
	size_t off = 0;
	ssize_t w;
	int e;

	while (off < c->out.len) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			w = SSL_write(c->ssl, c->out.data + off, (int)(c->out.len - off));
			if (w <= 0) {
				e = SSL_get_error(c->ssl, (int)w);
				if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
					conn_err(c, "timed out writing to %s", c->host);
				else
					ssl_err(c, "TLS write");
				return -1;
			}
		} else {
			w = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);
			if (w == -1 && errno == EINTR)
				continue;
			if (w == -1) {
				conn_err(c, "writing to %s: %s", c->host,
				    errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
				return -1;
			}
		}
		off += (size_t)w;
	}
	buf_reset(&c->out);
	return 0;
}

/* Read what is available (waiting at most timeout_ms) into the line reader. */
static int
fill(struct clientconn *c)
{
	char tmp[16384];
	struct pollfd pfd;
	size_t room = linebuf_space(&c->in);
	ssize_t r;
	int e;

	if (room > sizeof(tmp))
		room = sizeof(tmp);
	if (c->ssl == NULL || SSL_pending(c->ssl) == 0) {
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		do
			r = poll(&pfd, 1, c->timeout_ms);
		while (r == -1 && errno == EINTR);
		if (r == 0) {
			conn_err(c, "timed out waiting for %s after %d s", c->host, c->timeout_ms / 1000);
			return -1;
		}
		if (r == -1) {
			conn_err(c, "poll: %s", strerror(errno));
			return -1;
		}
	}
	if (c->ssl != NULL) {
		ERR_clear_error();
		r = SSL_read(c->ssl, tmp, (int)room);
		if (r <= 0) {
			e = SSL_get_error(c->ssl, (int)r);
			if (e == SSL_ERROR_ZERO_RETURN)
				conn_err(c, "%s closed the connection", c->host);
			else if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
				conn_err(c, "timed out waiting for %s", c->host);
			else
				ssl_err(c, "TLS read");
			return -1;
		}
	} else {
		do
			r = recv(c->fd, tmp, room, 0);
		while (r == -1 && errno == EINTR);
		if (r == -1) {
			conn_err(c, "reading from %s: %s", c->host, errno == EAGAIN ? "timed out" :
			    strerror(errno));
			return -1;
		}
		if (r == 0) {
			conn_err(c, "%s closed the connection", c->host);
			return -1;
		}
	}
	linebuf_feed(&c->in, tmp, (size_t)r);
	return 0;
}

int
clientconn_readline(struct clientconn *c, char **line_r, size_t *len_r)
{
	enum line_status st;
	enum line_eol eol;

	for (;;) {
		st = linebuf_next(&c->in, line_r, len_r, &eol);
		if (st == LINE_OK) {
			if (c->trace != NULL && c->trace_server)
				clientconn_trace_line(c->trace, "S: ", *line_r, *len_r);
			return 0;
		}
		if (st == LINE_TOO_LONG) {
			conn_err(c, "%s sent a line longer than %zu octets", c->host, c->in.max_line);
			return -1;
		}
		if (fill(c) == -1)
			return -1;
	}
}
