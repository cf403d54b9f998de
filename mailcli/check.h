/*
 * check.h - the server and client graders of `mailcli check` and
 * `mailcli check-client`: check tables, the per-check run context (verdict,
 * explanation, the C:/S: trace of the check, a deadline), the raw wire
 * helpers the checks talk through, and the report card / JSON output.
 *
 *   check_report.c   results, --only / --list, the report card and --json
 *   check_wire.c     raw lines with their endings, bounded by the check's deadline
 *   check_main.c     `mailcli check URL`: options, the shared probe, the run loop
 *   check_smtp.c, check_smtp_data.c   the SMTP battery (RFC 5321 and extensions)
 *   check_pop3.c, check_pop3_msg.c    the POP3 battery (RFC 1939, 2449, 2595)
 *   check_client.c, check_client_smtp.c, check_client_pop3.c   `mailcli check-client`
 *
 * A check never prints: it sets a verdict and an explanation, and the report
 * decides what to show. Every wait is bounded by the check's deadline.
 */
#ifndef CORREIO_MAILCLI_CHECK_H
#define CORREIO_MAILCLI_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "clientconf.h"
#include "clientconn.h"
#include "linebuf.h"

#define CHECK_TIMEOUT_DEFAULT	5	/* seconds per check */
#define CHECK_TRACE_LINES	40	/* trace lines kept in a failure's detail */
#define CHECK_QUIET_MS		300	/* how long "nothing more arrives" is watched */

enum check_verdict {
	CHECK_PASS = 0,
	CHECK_FAIL,
	CHECK_WARN,
	CHECK_SKIP
};

struct check_run;

struct check_def {
	const char *id;		/* stable: "smtp.rcpt.before-mail" */
	const char *title;	/* one line */
	const char *rfc;	/* "RFC 5321 4.1.4" */
	void	(*run)(struct check_run *r);
};

/* ---- options and what the checks learn about the target ---- */

struct check_opts {
	struct clientconf cc;		/* target host/port, --user, --tls, --cafile, --insecure */
	bool	 smtp;			/* target protocol */
	bool	 implicit;		/* smtps:// or pop3s:// */
	int	 timeout;		/* seconds per check */
	char	 from[256];		/* --from */
	char	 to[256];		/* --to */
	bool	 have_smtp;		/* --smtp given (POP3 checks deliver their messages) */
	char	 smtp_host[256];
	char	 smtp_port[16];
	char	 pop3_host[256];	/* --pop3 (SMTP target): where to delete the test messages */
	char	 pop3_port[16];
	bool	 relay_ok;		/* the target is meant to relay */
	bool	 have_password;
	SSL_CTX	*tls;			/* verifying as --cafile/--insecure say; NULL when --tls off */
	char	 runid[24];		/* marks this run's test messages */
};

struct check_state {
	bool	 connected;		/* the first connection worked */
	/* SMTP, from one EHLO at start */
	bool	 esmtp, starttls, pipelining, size, eightbitmime, auth, auth_plain, auth_login;
	bool	 auth_before_tls;	/* AUTH offered on the plaintext connection */
	uint64_t size_max;
	/* POP3, from CAPA and the greeting */
	bool	 capa, stls, top, uidl, user, sasl_plain;
	char	 apop_stamp[256];	/* "<...>" from the greeting, "" when none */
	bool	 delivered;		/* our test messages went in through --smtp */
	bool	 login_ok;		/* --user and the password log in */
};

/* What one check is doing: filled by the runner, used by the check. */
struct check_run {
	const struct check_def *def;
	const struct check_opts *o;
	struct check_state *st;
	enum check_verdict verdict;
	bool	 decided;
	struct buf why;			/* explanation lines */
	FILE	*trace;			/* C:/S: lines of this check (memstream) */
	char	*tracebuf;
	size_t	 tracelen;
	int64_t	 deadline;		/* monotonic ms */
};

/* Verdicts. A fail always wins; otherwise the first verdict stays. The
 * explanation lines accumulate ("expected 503, got 250"). */
void	check_pass(struct check_run *r);
void	check_fail(struct check_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	check_warn(struct check_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	check_skip(struct check_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An explanation line without a verdict. */
void	check_note(struct check_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t	check_now_ms(void);
/* Milliseconds left before the check's deadline (at least 1). */
int	check_left_ms(const struct check_run *r);

/* ---- the report (check_report.c) ---- */

struct check_report;

struct check_report *check_report_new(const char *target);
void	check_report_free(struct check_report **rep);
/* Record a finished run (copies what it needs; the run can be reused). */
void	check_report_add(struct check_report *rep, const struct check_run *r);
/* Print the report card (colour when stdout is a terminal) or the JSON
 * document. Returns the exit status: 0 when nothing failed, else 1. */
int	check_report_print(const struct check_report *rep, bool json);
/* --only: a comma list of ids or id prefixes ("smtp.data"). Returns 0, or
 * -1 (err filled) when a name matches no check in table. */
int	check_only_parse(const char *list, const struct check_def *const *tables,
	    char *err, size_t errlen);
bool	check_only_wants(const char *list, const char *id);
/* --list: id, RFC and title of each check in the tables (NULL-terminated). */
void	check_list_print(FILE *out, const struct check_def *const *tables);
/* Count of checks in a table terminated by a NULL id. */
size_t	check_table_len(const struct check_def *t);
/* Run one check with a fresh run context and add its result to rep. */
void	check_run_one(struct check_report *rep, const struct check_def *d,
	    const struct check_opts *o, struct check_state *st);
/* Escape s as a JSON string body into f. */
void	check_json_string(FILE *f, const char *s);

/* ---- the wire (check_wire.c): raw lines, bounded by the run's deadline ---- */

/* Connect to host:port, tracing into r. Returns 0, or -1 with the reason in
 * c->err; the caller decides the verdict. wire_open_target connects to the
 * target (TLS at once for smtps:// and pop3s://). */
int	wire_open(struct check_run *r, struct clientconn *c, const char *host, const char *port);
int	wire_open_target(struct check_run *r, struct clientconn *c);
void	wire_close(struct clientconn *c);
/* Send exactly these bytes (traced as C: lines, endings shown). 0 or -1. */
int	wire_send(struct check_run *r, struct clientconn *c, const void *p, size_t n);
/* Send one command line with CRLF (secret: masked in the trace). 0 or -1. */
int	wire_cmd(struct check_run *r, struct clientconn *c, bool secret, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/* One line with its ending kind. Returns 0, or -1 (timeout, closed, too long:
 * reason in c->err). */
int	wire_line(struct check_run *r, struct clientconn *c, char **line_r, size_t *len_r,
	    enum line_eol *eol_r);
/* True when the peer sends nothing more within ms (data already buffered
 * counts as something). */
bool	wire_quiet(struct check_run *r, struct clientconn *c, int ms);
/* True when the peer has closed the connection within the deadline. */
bool	wire_closed(struct check_run *r, struct clientconn *c);
/* Start TLS now (after 220 / +OK). 0 or -1. */
int	wire_starttls(struct check_run *r, struct clientconn *c);

struct wire_reply {
	int	 code;			/* 0 when none could be read */
	char	 text[1024];		/* first line, code included ("250 2.0.0 Ok") */
	char	 all[4096];		/* every line, '\n'-separated, codes included */
	size_t	 nlines;
	bool	 crlf;			/* every line ended in CRLF */
	char	 err[256];		/* why code is 0 */
};

/* Read one SMTP reply (RFC 5321 4.2). Returns the code, or -1 (reply.err). */
int	wire_smtp_reply(struct check_run *r, struct clientconn *c, struct wire_reply *rep);
/* Send a command and read its reply: returns the code or -1. */
int	wire_smtp(struct check_run *r, struct clientconn *c, struct wire_reply *rep,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Read a POP3 status line: 1 for +OK, 0 for -ERR, -1 otherwise (rep.err). */
int	wire_pop3_status(struct check_run *r, struct clientconn *c, struct wire_reply *rep);
int	wire_pop3(struct check_run *r, struct clientconn *c, struct wire_reply *rep,
	    bool secret, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/*
 * The rest of a POP3 multi-line response, raw: every line as received (still
 * dot-stuffed) joined with "\r\n" into raw when it ended in CRLF, "\n" when
 * not; the final "." excluded. Returns 0, or -1 (timeout, closed).
 */
int	wire_pop3_multi(struct check_run *r, struct clientconn *c, struct buf *raw);

/* ---- the batteries ---- */

extern const struct check_def check_smtp_table[];	/* check_smtp.c + check_smtp_data.c */
extern const struct check_def check_smtp_data_table[];
extern const struct check_def check_pop3_table[];	/* check_pop3.c + check_pop3_msg.c */
extern const struct check_def check_pop3_msg_table[];

/* SMTP helpers shared by the two SMTP files (check_smtp.c). */
/* Connect, read the 220 and EHLO (HELO when ehlo is false). 0, or -1 after
 * a fail verdict saying why. */
int	smtp_start(struct check_run *r, struct clientconn *c, bool ehlo);
/* MAIL FROM:<from> and RCPT TO:<to>, each expected 250; then DATA, 354.
 * 0, or -1 after a fail verdict. extra: MAIL parameters or "". */
int	smtp_to_data(struct check_run *r, struct clientconn *c, const char *extra);
/* Once before the checks: what EHLO offers, before and after STARTTLS
 * (fills r->st). 0, or -1 when the server cannot be reached. */
int	smtp_learn(struct check_run *r);
/* Our test message's header block (CRLF lines, ending in the empty line). */
void	smtp_test_headers(const struct check_run *r, struct buf *b, const char *what);
/* After the final dot: exactly one reply, nothing more, and the session still
 * answers NOOP. Returns the reply code, or -1 after a fail verdict. */
int	smtp_end_in_step(struct check_run *r, struct clientconn *c, struct wire_reply *rep);

/* POP3 helpers shared by the two POP3 files (check_pop3.c). */
/* Once before the checks: the greeting's APOP stamp, CAPA, whether the login
 * works. 0, or -1 when the server cannot be reached. */
int	pop3_learn(struct check_run *r);
/* Connect and read the greeting. 0, or -1 after a fail verdict. */
int	pop3_start(struct check_run *r, struct clientconn *c);
/* Connect, STLS when offered (unless --tls off), USER/PASS. 0; -1 after a fail
 * verdict; 1 after a skip (no --user). */
int	pop3_login(struct check_run *r, struct clientconn *c);
/* Our test messages in the current session: numbers of those carrying this
 * run's marker and the given tag ("dots", "lines", "dele", ...), found with
 * TOP n 0 (RETR without TOP). Returns how many were found (<= max). */
size_t	pop3_find_ours(struct check_run *r, struct clientconn *c, const char *tag,
	    unsigned long *nums, size_t max);
/* The body the POP3 checks deliver for tag (CRLF lines), for comparisons. */
void	pop3_test_message(const struct check_opts *o, const char *tag, struct buf *b);
/* Deliver the test messages through --smtp; deletes any of ours at the end. */
int	pop3_deliver_all(const struct check_opts *o, char *err, size_t errlen);
void	pop3_cleanup(const struct check_opts *o, FILE *note);

/* ---- check-client (check_client.c, check_client_smtp.c, check_client_pop3.c) ---- */

/* One graded check of a client: the results of every session merged (a
 * failure in any session fails it; the transcript of the first failing
 * session is kept). Indexed like the protocol's table. */
struct cc_grade {
	const struct check_def *table;
	struct check_run *runs;
	size_t	 n;
};

struct cc_opts {
	bool	 pipelining;		/* offer PIPELINING (SMTP) / list it in CAPA (POP3) */
	char	 user[256];		/* POP3: only this user, with password; "" = any */
	char	 password[256];
};

/* One client connection, server side. */
struct cc_session {
	int	 fd;
	struct linebuf in;
	int64_t	 deadline;		/* overall --timeout, monotonic ms */
	FILE	*t;			/* this session's transcript */
	char	*tbuf;
	size_t	 tlen;
	struct cc_grade *g;
	const struct cc_opts *o;
	bool	*failed;		/* checks that failed in this session */
	unsigned number;		/* 1, 2, ... */
};

/* Read one line (with its ending) within the deadline; traced as "C: ".
 * 0, or -1 when the client closed, timed out or sent a line too long. */
int	cc_line(struct cc_session *s, char **line_r, size_t *len_r, enum line_eol *eol_r);
/* True when more bytes from the client are already there (or arrive within
 * ms) before we answered the line just read: the client did not wait. */
bool	cc_more_waiting(struct cc_session *s, int ms);
/* Send one reply line (CRLF added), traced as "S: ". 0 or -1. */
int	cc_reply(struct cc_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send raw bytes (a POP3 body), not traced beyond a summary. 0 or -1. */
int	cc_send(struct cc_session *s, const void *p, size_t n);
/* A verdict for check id in this session: ok passes (unless it failed
 * elsewhere), else fails with the explanation. */
void	cc_result(struct cc_session *s, const char *id, bool ok, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/* Watch for bytes before the greeting; grade id. */
void	cc_greeting_wait(struct cc_session *s, const char *id);

extern const struct check_def check_client_smtp_table[];
extern const struct check_def check_client_pop3_table[];
/* Serve and grade one session. */
void	cc_smtp_session(struct cc_session *s);
void	cc_pop3_session(struct cc_session *s);
/* Grade a received message's form (RFC 5322 header, RFC 2045/2046 MIME). */
void	cc_grade_message(struct cc_session *s, const char *id, const char *msg, size_t len);

#endif
